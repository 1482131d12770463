//! Saved segments: a named rule set that picks patients by their profile,
//! their per-patient aggregates, their stored scores and their consent.
//!
//! A rule set arrives as JSON and is parsed here into a typed tree
//! ([`Rule`]) that can only hold conditions that make sense: a known field
//! (a closed enum, [`Field`]), an operator that suits the field's kind, and
//! values of the field's type. Every error names its path in the JSON
//! (`rules.all[2].value`). The store compiles the tree to SQL; this module
//! knows nothing of SQL.
//!
//! The JSON form:
//!
//! ```json
//! {"all": [
//!   {"field": "sex", "op": "=", "value": "F"},
//!   {"any": [
//!     {"field": "rfm_segment", "op": "in", "value": ["champions", "loyal"]},
//!     {"field": "monetary", "op": ">=", "value": "5000.00"}
//!   ]},
//!   {"field": "last_visit", "op": ">=", "value": {"days_ago": 180}},
//!   {"field": "consent.sms.marketing", "op": "=", "value": true}
//! ]}
//! ```
//!
//! Semantics (the store must follow them, and the tests check it):
//!
//! - `all` is AND, `any` is OR; an empty `all` matches every patient, an
//!   empty `any` none.
//! - A comparison (`=`, `!=`, `<`, …, `in`, `not_in`, `between`, `prefix`)
//!   never matches an unknown (null) value; `is_null` / `is_not_null` test
//!   for it. A patient without visits has `visits`, `visit_days` and
//!   `monetary` 0 and no `first_visit`, `last_visit` or `recency_days`; a
//!   patient without stored scores has every score unknown.
//! - `between` includes both ends. Dates are `YYYY-MM-DD` or
//!   `{"days_ago": N}` (today minus N days, today in the hospital's zone).
//! - `age` is whole years today, from the birth date, or from the birth
//!   year when the date is unknown (`today.year - birth_year`).
//! - `recency_days` is days from the last visit to today.
//! - `tags`: `contains` one tag, `contains_any` / `contains_all` of a list
//!   (exact, case-sensitive); `is_null` means no tags.
//! - `consent.CHANNEL.PURPOSE` is true when the decision in force (the
//!   latest) for that channel and purpose grants consent; no decision is
//!   false.

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value as Json, json};

use crate::consent::Purpose;
use crate::money::{Money, format_minor};
use crate::patient::Channel;
use crate::validation::ValidationErrors;

/// Deepest nesting of groups.
pub const MAX_DEPTH: usize = 6;
/// Most conditions in one rule set.
pub const MAX_CONDITIONS: usize = 50;
/// Most values in one list (`in`, `not_in`, `contains_any`, `contains_all`).
pub const MAX_LIST: usize = 200;
/// Most values in one rule set, all lists together (bounds the
/// parameters of the compiled SQL).
pub const MAX_VALUES: usize = 2000;
/// Longest text value, in characters.
pub const MAX_TEXT: usize = 100;
/// Largest `days_ago`.
pub const MAX_DAYS_AGO: i64 = 36_500;

/// The nine RFM segment names (`analytics.md`).
pub const RFM_SEGMENTS: &[&str] = &[
    "champions",
    "loyal",
    "potential_loyalist",
    "new",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "hibernating",
    "lost",
];

const SEXES: &[&str] = &["M", "F", "U"];

/// Where a field's value lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The patient's profile.
    Patient,
    /// The per-patient aggregates (absent before the first visit).
    Aggregates,
    /// The stored scores of the last refresh (absent for patients the
    /// refresh did not find active).
    Scores,
    /// The consent decisions.
    Consents,
}

/// The type of a field's values, which decides its operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Int,
    Float,
    /// A decimal amount with two places, held in minor units.
    Money,
    Text,
    Date,
    Bool,
    /// One of a fixed set of codes.
    Choice(&'static [&'static str]),
    Tags,
}

/// A field a condition can test. The set is closed: the store maps each
/// one to a column expression of its own, never to caller text.
///
/// Membership (`member`, `tier`) joins this list, with `Source::Members`,
/// once the members table exists: one variant each here, in
/// [`Field::NAMED`] and in the store's column mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Sex,
    BirthYear,
    Age,
    District,
    SourceChannel,
    RegisteredOn,
    HasHousehold,
    Tags,
    Visits,
    VisitDays,
    Monetary,
    FirstVisit,
    LastVisit,
    RecencyDays,
    RScore,
    FScore,
    MScore,
    RfmSegment,
    PAlive,
    ExpectedVisits90d,
    Clv12m,
    ChurnRisk,
    /// Consent in force for a channel and purpose.
    Consent(Channel, Purpose),
}

impl Field {
    /// Every field with a fixed name (consent fields are `consent.CHANNEL.PURPOSE`).
    pub const NAMED: &'static [(&'static str, Field)] = &[
        ("sex", Field::Sex),
        ("birth_year", Field::BirthYear),
        ("age", Field::Age),
        ("district", Field::District),
        ("source_channel", Field::SourceChannel),
        ("registered_on", Field::RegisteredOn),
        ("has_household", Field::HasHousehold),
        ("tags", Field::Tags),
        ("visits", Field::Visits),
        ("visit_days", Field::VisitDays),
        ("monetary", Field::Monetary),
        ("first_visit", Field::FirstVisit),
        ("last_visit", Field::LastVisit),
        ("recency_days", Field::RecencyDays),
        ("r_score", Field::RScore),
        ("f_score", Field::FScore),
        ("m_score", Field::MScore),
        ("rfm_segment", Field::RfmSegment),
        ("p_alive", Field::PAlive),
        ("expected_visits_90d", Field::ExpectedVisits90d),
        ("clv_12m", Field::Clv12m),
        ("churn_risk", Field::ChurnRisk),
    ];

    pub fn parse(s: &str) -> Option<Field> {
        if let Some(rest) = s.strip_prefix("consent.") {
            let (ch, pu) = rest.split_once('.')?;
            return Some(Field::Consent(
                Channel::from_code(ch)?,
                Purpose::from_code(pu)?,
            ));
        }
        Self::NAMED.iter().find(|(n, _)| *n == s).map(|(_, f)| *f)
    }

    pub fn name(self) -> String {
        match self {
            Field::Consent(c, p) => format!("consent.{}.{}", c.as_str(), p.as_str()),
            f => Self::NAMED
                .iter()
                .find(|(_, g)| *g == f)
                .map(|(n, _)| (*n).to_string())
                .unwrap_or_default(),
        }
    }

    pub fn kind(self) -> Kind {
        use Field::*;
        match self {
            Sex => Kind::Choice(SEXES),
            RfmSegment => Kind::Choice(RFM_SEGMENTS),
            BirthYear | Age | Visits | VisitDays | RecencyDays | RScore | FScore | MScore => {
                Kind::Int
            }
            District | SourceChannel => Kind::Text,
            RegisteredOn | FirstVisit | LastVisit => Kind::Date,
            HasHousehold | ChurnRisk | Consent(..) => Kind::Bool,
            Tags => Kind::Tags,
            Monetary | Clv12m => Kind::Money,
            PAlive | ExpectedVisits90d => Kind::Float,
        }
    }

    pub fn source(self) -> Source {
        use Field::*;
        match self {
            Sex | BirthYear | Age | District | SourceChannel | RegisteredOn | HasHousehold
            | Tags => Source::Patient,
            Visits | VisitDays | Monetary | FirstVisit | LastVisit | RecencyDays => {
                Source::Aggregates
            }
            RScore | FScore | MScore | RfmSegment | PAlive | ExpectedVisits90d | Clv12m
            | ChurnRisk => Source::Scores,
            Consent(..) => Source::Consents,
        }
    }

    /// Whether the value can be unknown (`is_null` makes sense).
    pub fn nullable(self) -> bool {
        !matches!(
            self,
            Field::HasHousehold
                | Field::Visits
                | Field::VisitDays
                | Field::Monetary
                | Field::Consent(..)
        )
    }

    /// The value of a field when its source row is absent: 0 for the
    /// visit counters and spend, unknown for everything else.
    fn value_when_absent(self) -> Option<Scalar> {
        match self {
            Field::Visits | Field::VisitDays => Some(Scalar::Int(0)),
            Field::Monetary => Some(Scalar::Money(0)),
            _ => None,
        }
    }
}

/// An operator. Which operators a field takes depends on its [`Kind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Between,
    IsNull,
    IsNotNull,
    Prefix,
    Contains,
    ContainsAny,
    ContainsAll,
}

impl Op {
    pub const ALL: &'static [(&'static str, Op)] = &[
        ("=", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        ("<=", Op::Le),
        (">", Op::Gt),
        (">=", Op::Ge),
        ("in", Op::In),
        ("not_in", Op::NotIn),
        ("between", Op::Between),
        ("is_null", Op::IsNull),
        ("is_not_null", Op::IsNotNull),
        ("prefix", Op::Prefix),
        ("contains", Op::Contains),
        ("contains_any", Op::ContainsAny),
        ("contains_all", Op::ContainsAll),
    ];

    pub fn parse(s: &str) -> Option<Op> {
        Self::ALL.iter().find(|(n, _)| *n == s).map(|(_, o)| *o)
    }

    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, o)| *o == self)
            .map(|(n, _)| *n)
            .unwrap_or("")
    }

    /// The operators a field takes.
    pub fn allowed(field: Field) -> Vec<Op> {
        use Op::*;
        let mut ops = match field.kind() {
            Kind::Int | Kind::Money | Kind::Date => {
                vec![Eq, Ne, Lt, Le, Gt, Ge, In, NotIn, Between]
            }
            Kind::Float => vec![Lt, Le, Gt, Ge, Between],
            Kind::Text => vec![Eq, Ne, In, NotIn, Prefix],
            Kind::Choice(_) => vec![Eq, Ne, In, NotIn],
            Kind::Bool => vec![Eq, Ne],
            Kind::Tags => vec![Contains, ContainsAny, ContainsAll],
        };
        if field.nullable() {
            ops.extend([IsNull, IsNotNull]);
        }
        ops
    }
}

/// A date as a rule states it: fixed, or relative to the day it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateValue {
    On(NaiveDate),
    DaysAgo(i64),
}

impl DateValue {
    pub fn resolve(self, today: NaiveDate) -> NaiveDate {
        match self {
            DateValue::On(d) => d,
            DateValue::DaysAgo(n) => today - chrono::Duration::days(n),
        }
    }
}

/// One value of a condition, typed by its field's kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Int(i64),
    Float(f64),
    /// Minor units.
    Money(i64),
    Text(String),
    Date(DateValue),
    Bool(bool),
}

/// One test of one field.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: Field,
    pub op: Op,
    /// One value for `=`, `!=`, `<`, `<=`, `>`, `>=`, `prefix`, `contains`;
    /// two for `between` (low, high); one or more for the list operators;
    /// none for `is_null`, `is_not_null`.
    pub values: Vec<Scalar>,
}

/// A rule set: conditions combined by nested AND / OR groups.
#[derive(Debug, Clone, PartialEq)]
pub enum Rule {
    All(Vec<Rule>),
    Any(Vec<Rule>),
    Cond(Condition),
}

impl Rule {
    /// Parses a rule set; `path` names the JSON value in errors (`rules`).
    pub fn parse(json: &Json, path: &str) -> Result<Rule, ValidationErrors> {
        let mut p = Parser {
            errs: ValidationErrors::default(),
            conditions: 0,
        };
        let rule = p.rule(json, path, 0);
        if p.conditions > MAX_CONDITIONS {
            p.errs.push(
                path,
                "too_many_conditions",
                format!("at most {MAX_CONDITIONS} conditions"),
            );
        }
        let values: usize = rule
            .as_ref()
            .map(|r| r.conditions().iter().map(|c| c.values.len()).sum())
            .unwrap_or(0);
        if values > MAX_VALUES {
            p.errs.push(
                path,
                "too_many_values",
                format!("at most {MAX_VALUES} values in all"),
            );
        }
        match rule {
            Some(r) if p.errs.is_empty() => Ok(r),
            _ => {
                if p.errs.is_empty() {
                    p.errs.push(path, "invalid_rule", "is not a valid rule set");
                }
                Err(p.errs)
            }
        }
    }

    /// The canonical JSON form (what [`Rule::parse`] reads back).
    pub fn to_json(&self) -> Json {
        match self {
            Rule::All(v) => json!({"all": v.iter().map(Rule::to_json).collect::<Vec<_>>()}),
            Rule::Any(v) => json!({"any": v.iter().map(Rule::to_json).collect::<Vec<_>>()}),
            Rule::Cond(c) => {
                let mut m = Map::new();
                m.insert("field".into(), Json::String(c.field.name()));
                m.insert("op".into(), Json::String(c.op.as_str().into()));
                let one = |s: &Scalar| match s {
                    Scalar::Int(i) => json!(i),
                    Scalar::Float(f) => json!(f),
                    Scalar::Money(m) => json!(format_minor(i128::from(*m))),
                    Scalar::Text(t) => json!(t),
                    Scalar::Date(DateValue::On(d)) => json!(d.format("%Y-%m-%d").to_string()),
                    Scalar::Date(DateValue::DaysAgo(n)) => json!({"days_ago": n}),
                    Scalar::Bool(b) => json!(b),
                };
                match c.op {
                    Op::IsNull | Op::IsNotNull => {}
                    Op::In | Op::NotIn | Op::Between | Op::ContainsAny | Op::ContainsAll => {
                        m.insert(
                            "value".into(),
                            Json::Array(c.values.iter().map(one).collect()),
                        );
                    }
                    _ => {
                        if let Some(v) = c.values.first() {
                            m.insert("value".into(), one(v));
                        }
                    }
                }
                Json::Object(m)
            }
        }
    }

    /// Every condition, depth first.
    pub fn conditions(&self) -> Vec<&Condition> {
        let mut out = Vec::new();
        fn walk<'a>(r: &'a Rule, out: &mut Vec<&'a Condition>) {
            match r {
                Rule::All(v) | Rule::Any(v) => v.iter().for_each(|r| walk(r, out)),
                Rule::Cond(c) => out.push(c),
            }
        }
        walk(self, &mut out);
        out
    }

    /// Whether any condition reads `source`.
    pub fn uses(&self, source: Source) -> bool {
        self.conditions().iter().any(|c| c.field.source() == source)
    }

    /// Whether the rule can only match a patient who has a row in
    /// `source` (aggregates or scores): then the store may read that
    /// table alone, or join it with an inner join.
    pub fn requires(&self, source: Source) -> bool {
        match self {
            Rule::All(v) => v.iter().any(|r| r.requires(source)),
            // An empty `any` matches nobody, so it "requires" anything.
            Rule::Any(v) => v.iter().all(|r| r.requires(source)),
            Rule::Cond(c) => c.field.source() == source && !c.matches_absent(),
        }
    }
}

impl Condition {
    /// Whether the condition holds for a patient without a row in the
    /// field's source table (see [`Field::value_when_absent`]).
    pub fn matches_absent(&self) -> bool {
        let Some(v) = self.field.value_when_absent() else {
            return self.op == Op::IsNull;
        };
        let key = |s: &Scalar| match s {
            Scalar::Int(i) | Scalar::Money(i) => Some(*i),
            _ => None,
        };
        let (Some(x), vals) = (key(&v), &self.values) else {
            return false;
        };
        let at = |i: usize| vals.get(i).and_then(key);
        match self.op {
            Op::Eq => at(0) == Some(x),
            Op::Ne => at(0).is_some_and(|a| x != a),
            Op::Lt => at(0).is_some_and(|a| x < a),
            Op::Le => at(0).is_some_and(|a| x <= a),
            Op::Gt => at(0).is_some_and(|a| x > a),
            Op::Ge => at(0).is_some_and(|a| x >= a),
            Op::In => vals.iter().any(|s| key(s) == Some(x)),
            Op::NotIn => vals.iter().all(|s| key(s) != Some(x)),
            Op::Between => at(0).is_some_and(|a| a <= x) && at(1).is_some_and(|b| x <= b),
            Op::IsNotNull => true,
            _ => false,
        }
    }
}

/// The inclusive age ranges an age condition selects (`hi = None`: no
/// upper end); empty when it selects nobody. Ages are whole years, 0 or
/// more.
pub fn age_ranges(c: &Condition) -> Vec<(i64, Option<i64>)> {
    let v = |i: usize| match c.values.get(i) {
        Some(Scalar::Int(n)) => *n,
        _ => 0,
    };
    let keep = |r: Vec<(i64, Option<i64>)>| -> Vec<(i64, Option<i64>)> {
        r.into_iter()
            .map(|(lo, hi)| (lo.max(0), hi))
            .filter(|(lo, hi)| hi.is_none_or(|h| h >= *lo))
            .collect()
    };
    match c.op {
        Op::Eq => keep(vec![(v(0), Some(v(0)))]),
        Op::Ne => keep(vec![(0, Some(v(0) - 1)), (v(0) + 1, None)]),
        Op::Lt => keep(vec![(0, Some(v(0) - 1))]),
        Op::Le => keep(vec![(0, Some(v(0)))]),
        Op::Gt => keep(vec![(v(0) + 1, None)]),
        Op::Ge => keep(vec![(v(0), None)]),
        Op::Between => keep(vec![(v(0), Some(v(1)))]),
        Op::In => keep(
            c.values
                .iter()
                .filter_map(|s| match s {
                    Scalar::Int(n) => Some((*n, Some(*n))),
                    _ => None,
                })
                .collect(),
        ),
        Op::NotIn => {
            let mut excluded: Vec<i64> = c
                .values
                .iter()
                .filter_map(|s| match s {
                    Scalar::Int(n) if *n >= 0 => Some(*n),
                    _ => None,
                })
                .collect();
            excluded.sort_unstable();
            excluded.dedup();
            let mut out = Vec::new();
            let mut lo = 0;
            for x in excluded {
                if x > lo {
                    out.push((lo, Some(x - 1)));
                }
                lo = x + 1;
            }
            out.push((lo, None));
            out
        }
        _ => Vec::new(),
    }
}

/// The latest birth date of someone aged at least `age` on `today`:
/// `today` minus `age` years (29 February becomes 28 February in a common
/// year).
pub fn born_on_or_before(today: NaiveDate, age: i64) -> NaiveDate {
    let year = i64::from(today.year()) - age;
    let year = i32::try_from(year.clamp(-200_000, 200_000)).unwrap_or(0);
    NaiveDate::from_ymd_opt(year, today.month(), today.day())
        .or_else(|| NaiveDate::from_ymd_opt(year, today.month(), today.day() - 1))
        .unwrap_or(NaiveDate::MIN)
}

struct Parser {
    errs: ValidationErrors,
    conditions: usize,
}

fn type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

impl Parser {
    fn rule(&mut self, json: &Json, path: &str, depth: usize) -> Option<Rule> {
        let Json::Object(m) = json else {
            self.errs.push(
                path,
                "invalid_type",
                format!(
                    "must be an object: a group {{\"all\": [...]}} or {{\"any\": [...]}}, or a condition; got {}",
                    type_name(json)
                ),
            );
            return None;
        };
        let group = m
            .keys()
            .find(|k| *k == "all" || *k == "any")
            .map(String::as_str);
        if let Some(kind) = group {
            for k in m.keys().filter(|k| k.as_str() != kind) {
                self.errs.push(
                    &format!("{path}.{k}"),
                    "unknown_field",
                    format!("a group has only the member {kind:?}"),
                );
            }
            let path = format!("{path}.{kind}");
            if depth >= MAX_DEPTH {
                self.errs.push(
                    &path,
                    "too_deep",
                    format!("groups nest at most {MAX_DEPTH} deep"),
                );
                return None;
            }
            let Some(items) = m[kind].as_array() else {
                self.errs.push(
                    &path,
                    "invalid_type",
                    format!("must be an array of rules; got {}", type_name(&m[kind])),
                );
                return None;
            };
            let children: Vec<Option<Rule>> = items
                .iter()
                .enumerate()
                .map(|(i, r)| self.rule(r, &format!("{path}[{i}]"), depth + 1))
                .collect();
            let children: Option<Vec<Rule>> = children.into_iter().collect();
            let children = children?;
            return Some(if kind == "all" {
                Rule::All(children)
            } else {
                Rule::Any(children)
            });
        }
        self.conditions += 1;
        self.condition(m, path).map(Rule::Cond)
    }

    fn condition(&mut self, m: &Map<String, Json>, path: &str) -> Option<Condition> {
        let before = self.errs.0.len();
        for k in m.keys() {
            if !matches!(k.as_str(), "field" | "op" | "value") {
                self.errs.push(
                    &format!("{path}.{k}"),
                    "unknown_field",
                    "a condition has the members field, op and value (or is a group: all, any)",
                );
            }
        }
        let field = match m.get("field") {
            None => {
                self.errs.push(
                    &format!("{path}.field"),
                    "required",
                    "is required (or use a group: all, any)",
                );
                None
            }
            Some(Json::String(s)) => {
                let f = Field::parse(s);
                if f.is_none() {
                    let names: Vec<&str> = Field::NAMED.iter().map(|(n, _)| *n).collect();
                    self.errs.push(
                        &format!("{path}.field"),
                        "unknown_field_name",
                        format!(
                            "unknown field {s:?}; known: {}, consent.CHANNEL.PURPOSE",
                            names.join(", ")
                        ),
                    );
                }
                f
            }
            Some(other) => {
                self.errs.push(
                    &format!("{path}.field"),
                    "invalid_type",
                    format!("must be a string; got {}", type_name(other)),
                );
                None
            }
        };
        let op = match m.get("op") {
            None => {
                self.errs
                    .push(&format!("{path}.op"), "required", "is required");
                None
            }
            Some(Json::String(s)) => {
                let o = Op::parse(s);
                if o.is_none() {
                    let names: Vec<&str> = Op::ALL.iter().map(|(n, _)| *n).collect();
                    self.errs.push(
                        &format!("{path}.op"),
                        "unknown_op",
                        format!("unknown operator {s:?}; known: {}", names.join(", ")),
                    );
                }
                o
            }
            Some(other) => {
                self.errs.push(
                    &format!("{path}.op"),
                    "invalid_type",
                    format!("must be a string; got {}", type_name(other)),
                );
                None
            }
        };
        let (field, op) = (field?, op?);
        let allowed = Op::allowed(field);
        if !allowed.contains(&op) {
            let names: Vec<&str> = allowed.iter().map(|o| o.as_str()).collect();
            self.errs.push(
                &format!("{path}.op"),
                "invalid_op",
                format!(
                    "{} does not apply to {}; use one of {}",
                    op.as_str(),
                    field.name(),
                    names.join(", ")
                ),
            );
            return None;
        }
        let vpath = format!("{path}.value");
        let value = m.get("value");
        let values = match op {
            Op::IsNull | Op::IsNotNull => {
                if value.is_some_and(|v| !v.is_null()) {
                    self.errs
                        .push(&vpath, "unexpected", "takes no value with this operator");
                }
                Vec::new()
            }
            Op::In | Op::NotIn | Op::ContainsAny | Op::ContainsAll | Op::Between => {
                let Some(Json::Array(items)) = value else {
                    self.errs.push(
                        &vpath,
                        if value.is_none() {
                            "required"
                        } else {
                            "invalid_type"
                        },
                        if op == Op::Between {
                            "must be an array of two values [low, high]".to_string()
                        } else {
                            format!("must be an array of 1 to {MAX_LIST} values")
                        },
                    );
                    return None;
                };
                if op == Op::Between && items.len() != 2 {
                    self.errs.push(
                        &vpath,
                        "invalid_value",
                        "must be an array of two values [low, high]",
                    );
                    return None;
                }
                if items.is_empty() || items.len() > MAX_LIST {
                    self.errs.push(
                        &vpath,
                        "invalid_length",
                        format!("must hold 1 to {MAX_LIST} values"),
                    );
                    return None;
                }
                let vals: Vec<Option<Scalar>> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| self.scalar(field, op, v, &format!("{vpath}[{i}]")))
                    .collect();
                vals.into_iter().collect::<Option<Vec<_>>>()?
            }
            _ => match value {
                None => {
                    self.errs.push(&vpath, "required", "is required");
                    return None;
                }
                Some(v) => vec![self.scalar(field, op, v, &vpath)?],
            },
        };
        if op == Op::Between
            && let [a, b] = values.as_slice()
            && !ordered(a, b)
        {
            self.errs.push(
                &vpath,
                "invalid_range",
                "the low end must not be above the high end",
            );
        }
        (self.errs.0.len() == before).then_some(Condition { field, op, values })
    }

    fn scalar(&mut self, field: Field, op: Op, v: &Json, path: &str) -> Option<Scalar> {
        let mut bad = |code: &'static str, msg: String| {
            self.errs.push(path, code, msg);
            None
        };
        match field.kind() {
            Kind::Int => match v.as_i64() {
                Some(n) if field == Field::Age && !(0..=200).contains(&n) => {
                    bad("out_of_range", "must be an age from 0 to 200".into())
                }
                Some(n) if !(-1_000_000..=1_000_000_000).contains(&n) => {
                    bad("out_of_range", "is out of range".into())
                }
                Some(n) => Some(Scalar::Int(n)),
                None => bad(
                    "invalid_type",
                    format!("must be a whole number; got {}", type_name(v)),
                ),
            },
            Kind::Float => match v.as_f64() {
                Some(f) if f.is_finite() => Some(Scalar::Float(f)),
                _ => bad(
                    "invalid_type",
                    format!("must be a number; got {}", type_name(v)),
                ),
            },
            Kind::Money => {
                let text = match v {
                    Json::String(s) => s.clone(),
                    Json::Number(n) => n.to_string(),
                    other => {
                        return bad(
                            "invalid_type",
                            format!(
                                "must be an amount such as \"120.50\"; got {}",
                                type_name(other)
                            ),
                        );
                    }
                };
                match Money::parse(&text) {
                    Ok(m) => Some(Scalar::Money(m.minor())),
                    Err(e) => bad("invalid_amount", e.to_string()),
                }
            }
            Kind::Text | Kind::Tags => match v {
                Json::String(s) => {
                    let t = s.trim();
                    if t.is_empty() && op != Op::Eq && op != Op::Ne {
                        bad("invalid_text", "must not be empty".into())
                    } else if t.chars().count() > MAX_TEXT || t.chars().any(char::is_control) {
                        bad(
                            "invalid_text",
                            format!("must be at most {MAX_TEXT} characters, no control characters"),
                        )
                    } else {
                        Some(Scalar::Text(t.to_string()))
                    }
                }
                other => bad(
                    "invalid_type",
                    format!("must be a string; got {}", type_name(other)),
                ),
            },
            Kind::Choice(codes) => match v.as_str() {
                Some(s) if codes.contains(&s) => Some(Scalar::Text(s.to_string())),
                _ => bad(
                    "invalid_enum",
                    format!("must be one of {}", codes.join(", ")),
                ),
            },
            Kind::Bool => match v {
                Json::Bool(b) => Some(Scalar::Bool(*b)),
                other => bad(
                    "invalid_type",
                    format!("must be true or false; got {}", type_name(other)),
                ),
            },
            Kind::Date => match v {
                Json::String(s) => match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
                    Ok(d) if (1800..=9999).contains(&d.year()) => {
                        Some(Scalar::Date(DateValue::On(d)))
                    }
                    _ => bad("invalid_date", "must be a date YYYY-MM-DD".into()),
                },
                Json::Object(m) if m.len() == 1 && m.contains_key("days_ago") => {
                    match m["days_ago"].as_i64() {
                        Some(n) if (0..=MAX_DAYS_AGO).contains(&n) => {
                            Some(Scalar::Date(DateValue::DaysAgo(n)))
                        }
                        _ => bad(
                            "invalid_date",
                            format!("days_ago must be a whole number from 0 to {MAX_DAYS_AGO}"),
                        ),
                    }
                }
                _ => bad(
                    "invalid_date",
                    "must be a date YYYY-MM-DD or {\"days_ago\": N}".into(),
                ),
            },
        }
    }
}

/// Whether `a <= b` for two values of one kind (relative dates compare
/// the other way round: more days ago is earlier; a fixed date and a
/// relative one are not compared).
fn ordered(a: &Scalar, b: &Scalar) -> bool {
    match (a, b) {
        (Scalar::Int(x), Scalar::Int(y)) | (Scalar::Money(x), Scalar::Money(y)) => x <= y,
        (Scalar::Float(x), Scalar::Float(y)) => x <= y,
        (Scalar::Date(DateValue::On(x)), Scalar::Date(DateValue::On(y))) => x <= y,
        (Scalar::Date(DateValue::DaysAgo(x)), Scalar::Date(DateValue::DaysAgo(y))) => x >= y,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Json) -> Result<Rule, ValidationErrors> {
        Rule::parse(&v, "rules")
    }

    fn fields(e: &ValidationErrors) -> Vec<(&str, &str)> {
        e.0.iter().map(|f| (f.field.as_str(), f.code)).collect()
    }

    #[test]
    fn parses_and_round_trips() {
        let j = json!({"all": [
            {"field": "sex", "op": "=", "value": "F"},
            {"any": [
                {"field": "rfm_segment", "op": "in", "value": ["champions", "loyal"]},
                {"field": "monetary", "op": ">=", "value": "5000"}
            ]},
            {"field": "last_visit", "op": ">=", "value": {"days_ago": 180}},
            {"field": "registered_on", "op": "between", "value": ["2024-01-01", "2024-12-31"]},
            {"field": "consent.sms.marketing", "op": "=", "value": true},
            {"field": "tags", "op": "contains_all", "value": ["vip", "chronic"]},
            {"field": "p_alive", "op": "<", "value": 0.5},
            {"field": "district", "op": "is_not_null"},
            {"field": "clv_12m", "op": ">", "value": 12.5}
        ]});
        let r = parse(j).unwrap();
        assert_eq!(r.conditions().len(), 10);
        let back = r.to_json();
        assert_eq!(back["all"][1]["any"][1]["value"], "5000.00");
        assert_eq!(back["all"][8]["value"], "12.50");
        assert_eq!(parse(back.clone()).unwrap(), r);
        assert_eq!(parse(back.clone()).unwrap().to_json(), back);
        assert_eq!(
            r.conditions()[5].field,
            Field::Consent(Channel::Sms, Purpose::Marketing)
        );
    }

    #[test]
    fn every_error_names_its_path() {
        let e = parse(json!({"all": [
            {"field": "sex", "op": "=", "value": "X"},
            {"field": "nope", "op": "="},
            {"any": [{"field": "visits", "op": "prefix", "value": "1"}]},
            {"field": "age", "op": "between", "value": [40, 30]},
            {"field": "monetary", "op": "in", "value": ["1", "abc"]},
            {"field": "last_visit", "op": ">", "value": "2024-02-30"},
            {"field": "district", "op": "=", "value": "A", "extra": 1},
            {"field": "visits", "op": "is_null"},
            {"all": 3},
            7
        ]}))
        .unwrap_err();
        assert_eq!(
            fields(&e),
            vec![
                ("rules.all[0].value", "invalid_enum"),
                ("rules.all[1].field", "unknown_field_name"),
                ("rules.all[2].any[0].op", "invalid_op"),
                ("rules.all[3].value", "invalid_range"),
                ("rules.all[4].value[1]", "invalid_amount"),
                ("rules.all[5].value", "invalid_date"),
                ("rules.all[6].extra", "unknown_field"),
                ("rules.all[7].op", "invalid_op"),
                ("rules.all[8].all", "invalid_type"),
                ("rules.all[9]", "invalid_type"),
            ]
        );
        let e = parse(json!("all")).unwrap_err();
        assert_eq!(fields(&e), vec![("rules", "invalid_type")]);
        let e = parse(json!({"field": "visits", "op": ">="})).unwrap_err();
        assert_eq!(fields(&e), vec![("rules.value", "required")]);
        let e = parse(json!({"field": "visits", "op": "in", "value": []})).unwrap_err();
        assert_eq!(fields(&e), vec![("rules.value", "invalid_length")]);
    }

    #[test]
    fn limits_depth_and_size() {
        let mut j = json!({"field": "visits", "op": ">", "value": 1});
        for _ in 0..=MAX_DEPTH {
            j = json!({"all": [j]});
        }
        let e = parse(j).unwrap_err();
        assert_eq!(e.0[0].code, "too_deep");
        let many: Vec<Json> = (0..=MAX_CONDITIONS)
            .map(|_| json!({"field": "visits", "op": ">", "value": 1}))
            .collect();
        let e = parse(json!({ "all": many })).unwrap_err();
        assert_eq!(fields(&e), vec![("rules", "too_many_conditions")]);
        let list: Vec<i64> = (0..MAX_LIST as i64).collect();
        let wide: Vec<Json> = (0..=MAX_VALUES / MAX_LIST)
            .map(|_| json!({"field": "visits", "op": "in", "value": list}))
            .collect();
        let e = parse(json!({ "all": wide })).unwrap_err();
        assert_eq!(fields(&e), vec![("rules", "too_many_values")]);
    }

    #[test]
    fn requires_follows_null_rejection() {
        let r = |j: Json| parse(j).unwrap();
        assert!(r(json!({"field": "visits", "op": ">=", "value": 1})).requires(Source::Aggregates));
        assert!(!r(json!({"field": "visits", "op": "<", "value": 2})).requires(Source::Aggregates));
        assert!(
            !r(json!({"field": "monetary", "op": "not_in", "value": ["1"]}))
                .requires(Source::Aggregates)
        );
        assert!(
            r(json!({"field": "last_visit", "op": "is_not_null"})).requires(Source::Aggregates)
        );
        assert!(!r(json!({"field": "last_visit", "op": "is_null"})).requires(Source::Aggregates));
        let mixed = r(json!({"any": [
            {"field": "r_score", "op": ">=", "value": 4},
            {"field": "sex", "op": "=", "value": "F"}
        ]}));
        assert!(!mixed.requires(Source::Scores));
        let both = r(json!({"all": [
            {"field": "r_score", "op": ">=", "value": 4},
            {"field": "sex", "op": "=", "value": "F"}
        ]}));
        assert!(both.requires(Source::Scores));
        assert!(!both.requires(Source::Aggregates));
        assert!(both.uses(Source::Patient));
    }

    #[test]
    fn ages_become_ranges() {
        let c = |op: Op, vals: &[i64]| Condition {
            field: Field::Age,
            op,
            values: vals.iter().map(|v| Scalar::Int(*v)).collect(),
        };
        assert_eq!(age_ranges(&c(Op::Eq, &[30])), vec![(30, Some(30))]);
        assert_eq!(
            age_ranges(&c(Op::Ne, &[30])),
            vec![(0, Some(29)), (31, None)]
        );
        assert_eq!(age_ranges(&c(Op::Lt, &[0])), vec![]);
        assert_eq!(age_ranges(&c(Op::Ge, &[65])), vec![(65, None)]);
        assert_eq!(
            age_ranges(&c(Op::NotIn, &[0, 2, 3])),
            vec![(1, Some(1)), (4, None)]
        );
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(born_on_or_before(d("2030-02-28"), 30), d("2000-02-28"));
        assert_eq!(born_on_or_before(d("2032-02-29"), 1), d("2031-02-28"));
    }
}
