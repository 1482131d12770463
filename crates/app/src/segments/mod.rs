//! Saved segments: define, change and delete them; count their members
//! (live, for an unsaved rule set, and recorded over time); list and export
//! the members.
//!
//! The rules are parsed by `rapport_domain::segment` and compiled to SQL by
//! the store. Relative dates in the rules (`{"days_ago": 30}`, ages,
//! recency) are resolved against today in the hospital's zone, each time a
//! segment is counted or listed. Definitions changing and exports are in
//! the audit log.

pub mod export;

use chrono::NaiveDate;
use rapport_domain::ValidationErrors;
use rapport_domain::segment::Rule;
use rapport_store::segments::{self as store};
pub use rapport_store::segments::{CountRow, Member, SegmentRow};
use serde_json::{Value, json};

use crate::audit::{self, Actor};
use crate::patients::Page;
use crate::{App, AppError, Result, StoreError};

/// Longest segment name and description, in characters.
pub const MAX_NAME: usize = 100;
pub const MAX_DESCRIPTION: usize = 1000;
/// Most members one page lists.
pub const MAX_PAGE: i64 = 500;
/// Most history entries one request returns.
pub const MAX_HISTORY: i64 = 1000;

/// A segment as received (create and replace).
#[derive(Debug, Clone)]
pub struct SegmentInput {
    pub name: String,
    pub description: Option<String>,
    /// The rule set as JSON (see `rapport_domain::segment`).
    pub rules: Value,
}

/// A saved segment with its parsed rules and latest recorded count.
#[derive(Debug, Clone)]
pub struct Segment {
    pub row: SegmentRow,
    pub rules: Rule,
    pub latest: Option<CountRow>,
}

/// Why a count was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// After a scores refresh (nightly or asked for).
    Refresh,
    /// Asked for by a user.
    Request,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Refresh => "refresh",
            Reason::Request => "request",
        }
    }
}

/// Parses a rule set given in a request (`rules` names it in errors).
pub fn parse_rules(rules: &Value) -> Result<Rule> {
    Ok(Rule::parse(rules, "rules")?)
}

fn parse_input(input: &SegmentInput) -> Result<(String, Option<String>, Rule)> {
    let mut errs = ValidationErrors::default();
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        errs.push(
            "name",
            "invalid_text",
            format!("must be 1 to {MAX_NAME} characters, no control characters"),
        );
    }
    let description = input
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    if description
        .as_deref()
        .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION)
    {
        errs.push(
            "description",
            "too_long",
            format!("must be at most {MAX_DESCRIPTION} characters"),
        );
    }
    let rules = match Rule::parse(&input.rules, "rules") {
        Ok(r) => Some(r),
        Err(e) => {
            errs.0.extend(e.0);
            None
        }
    };
    let rules = errs.into_result(rules)?;
    Ok((name, description, rules.unwrap_or(Rule::All(Vec::new()))))
}

fn name_taken(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict(_) => AppError::Conflict {
            code: "segment_exists",
            message: "a segment with this name exists".into(),
        },
        e => e.into(),
    }
}

fn rules_of(row: &SegmentRow) -> Result<Rule> {
    let json: Value = serde_json::from_str(&row.rules)
        .map_err(|e| StoreError::Corrupt(format!("segment {} rules: {e}", row.id)))?;
    Rule::parse(&json, "rules").map_err(|e| {
        AppError::Store(StoreError::Corrupt(format!(
            "segment {} rules: {}",
            row.id,
            e.summary()
        )))
    })
}

pub async fn create(app: &App, actor: &Actor, input: &SegmentInput) -> Result<Segment> {
    let (name, description, rules) = parse_input(input)?;
    let text = rules.to_json().to_string();
    let now = app.now();
    let mut tx = app.db.begin().await?;
    let id = store::insert(
        &mut tx,
        app.hospital_id,
        &name,
        description.as_deref(),
        &text,
        &actor.who,
        now,
    )
    .await
    .map_err(name_taken)?;
    audit::record(
        app,
        &mut tx,
        actor,
        "segment.create",
        Some(("segment", id)),
        Some(json!({"name": name}).to_string()),
    )
    .await?;
    tx.commit().await?;
    get(app, id).await
}

/// Replaces a segment's name, description and rules.
pub async fn update(app: &App, actor: &Actor, id: i64, input: &SegmentInput) -> Result<Segment> {
    let (name, description, rules) = parse_input(input)?;
    let text = rules.to_json().to_string();
    let mut tx = app.db.begin().await?;
    let old = store::lock(&mut tx, id)
        .await?
        .filter(|s| s.hospital_id == app.hospital_id)
        .ok_or(AppError::NotFound("segment"))?;
    store::update(&mut tx, id, &name, description.as_deref(), &text, app.now())
        .await
        .map_err(name_taken)?;
    let mut changed = Vec::new();
    if old.name != name {
        changed.push("name");
    }
    if old.description != description {
        changed.push("description");
    }
    if old.rules != text {
        changed.push("rules");
    }
    audit::record(
        app,
        &mut tx,
        actor,
        "segment.update",
        Some(("segment", id)),
        Some(json!({"name": name, "fields": changed}).to_string()),
    )
    .await?;
    tx.commit().await?;
    get(app, id).await
}

/// Deletes a segment and its count history.
pub async fn delete(app: &App, actor: &Actor, id: i64) -> Result<()> {
    let mut tx = app.db.begin().await?;
    let old = store::lock(&mut tx, id)
        .await?
        .filter(|s| s.hospital_id == app.hospital_id)
        .ok_or(AppError::NotFound("segment"))?;
    store::delete(&mut tx, id).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "segment.delete",
        Some(("segment", id)),
        Some(json!({"name": old.name}).to_string()),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn row(app: &App, id: i64) -> Result<SegmentRow> {
    store::get(&app.db, id)
        .await?
        .filter(|s| s.hospital_id == app.hospital_id)
        .ok_or(AppError::NotFound("segment"))
}

pub async fn get(app: &App, id: i64) -> Result<Segment> {
    let row = row(app, id).await?;
    let rules = rules_of(&row)?;
    let latest = store::history(&app.db, id, 1).await?.pop();
    Ok(Segment { row, rules, latest })
}

/// Every segment of the hospital, by name, with its latest count.
pub async fn list(app: &App) -> Result<Vec<Segment>> {
    let rows = store::list(&app.db, app.hospital_id).await?;
    let mut latest: std::collections::HashMap<i64, CountRow> =
        store::latest_counts(&app.db, app.hospital_id)
            .await?
            .into_iter()
            .map(|c| (c.segment_id, c))
            .collect();
    rows.into_iter()
        .map(|row| {
            Ok(Segment {
                rules: rules_of(&row)?,
                latest: latest.remove(&row.id),
                row,
            })
        })
        .collect()
}

/// The number of patients a rule set selects today.
pub async fn count_rules(app: &App, rules: &Rule) -> Result<(i64, NaiveDate)> {
    let today = app.today();
    let n = store::count(&app.db, app.hospital_id, rules, today).await?;
    Ok((n, today))
}

/// The live size of a saved segment (not recorded).
pub async fn count(app: &App, id: i64) -> Result<(i64, NaiveDate)> {
    let s = get(app, id).await?;
    count_rules(app, &s.rules).await
}

/// Counts a saved segment now and records the count in its history.
pub async fn record_count(app: &App, id: i64, reason: Reason) -> Result<CountRow> {
    let s = get(app, id).await?;
    let (patients, as_of) = count_rules(app, &s.rules).await?;
    let mut c = CountRow {
        id: 0,
        segment_id: id,
        // Microseconds: what both engines store.
        counted_at: chrono::SubsecRound::trunc_subsecs(app.now(), 6),
        as_of,
        patients,
        reason: reason.as_str().into(),
    };
    let mut tx = app.db.begin().await?;
    // The segment may have been deleted meanwhile.
    if store::lock(&mut tx, id).await?.is_none() {
        return Err(AppError::NotFound("segment"));
    }
    c.id = store::insert_count(&mut tx, app.hospital_id, &c).await?;
    tx.commit().await?;
    Ok(c)
}

/// Counts every saved segment (one pass over the patients per 40
/// segments) and records the counts; returns how many were recorded.
/// After a refresh it first brings the scores' statistics up to date.
pub async fn record_all(app: &App, reason: Reason) -> Result<usize> {
    if reason == Reason::Refresh {
        store::analyze_scores(&app.db).await?;
    }
    let segments = list(app).await?;
    if segments.is_empty() {
        return Ok(0);
    }
    let today = app.today();
    let rules: Vec<Rule> = segments.iter().map(|s| s.rules.clone()).collect();
    let counts = store::count_many(&app.db, app.hospital_id, &rules, today).await?;
    let counted_at = chrono::SubsecRound::trunc_subsecs(app.now(), 6);
    let mut tx = app.db.begin().await?;
    let mut done = 0;
    for (s, n) in segments.iter().zip(counts) {
        // Skip a segment deleted since it was listed.
        if store::lock(&mut tx, s.row.id).await?.is_none() {
            continue;
        }
        let c = CountRow {
            id: 0,
            segment_id: s.row.id,
            counted_at,
            as_of: today,
            patients: n,
            reason: reason.as_str().into(),
        };
        store::insert_count(&mut tx, app.hospital_id, &c).await?;
        done += 1;
    }
    tx.commit().await?;
    Ok(done)
}

/// The latest `limit` recorded counts of a segment, oldest first.
pub async fn history(app: &App, id: i64, limit: i64) -> Result<Vec<CountRow>> {
    row(app, id).await?;
    Ok(store::history(&app.db, id, limit.clamp(1, MAX_HISTORY)).await?)
}

/// A page of members, by platform id; `after` is the previous page's
/// cursor.
pub async fn members(app: &App, id: i64, after: Option<i64>, limit: i64) -> Result<Page<Member>> {
    let s = get(app, id).await?;
    let want = limit.clamp(1, MAX_PAGE);
    let mut items = store::members(
        &app.db,
        app.hospital_id,
        &s.rules,
        app.today(),
        (after.unwrap_or(0), i64::MAX),
        want + 1,
    )
    .await?;
    let next_cursor = if items.len() as i64 > want {
        items.truncate(want as usize);
        items.last().map(|m| m.patient.id.to_string())
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
