//! Member-gets-member: a member's referral code, enrolment with a code
//! (the abuse rules of `domain::loyalty::referral`), and the referrer's
//! funnel. The reward itself is given by `earning::settle_referral` after
//! the referred patient's first paid visit.

use rapport_domain::ValidationErrors;
use rapport_domain::loyalty::referral::{self, ReferralRefused};
use rapport_store::Tx;
use rapport_store::loyalty::referrals::{self as store, Referral};

use super::member_not_found;
use super::rewards::random_code;
use crate::audit::{self, Actor};
use crate::{App, AppError, Result};

/// Length of a referral code.
pub const REFERRAL_CODE_LEN: usize = 8;

/// A member's code and the invitations they handed out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeView {
    pub code: String,
    pub invited: i64,
}

/// The member's referral code, made on first request.
pub async fn code(app: &App, actor: &Actor, member_id: i64) -> Result<CodeView> {
    let mut tx = app.db.begin().await?;
    rapport_store::loyalty::lock(&mut tx, member_id)
        .await?
        .filter(|m| m.hospital_id == app.hospital_id)
        .ok_or_else(member_not_found)?;
    if let Some((code, invited)) = store::code_of(&mut tx, member_id).await? {
        return Ok(CodeView { code, invited });
    }
    let mut code = random_code(REFERRAL_CODE_LEN);
    while store::code_taken(&mut tx, app.hospital_id, &code).await? {
        code = random_code(REFERRAL_CODE_LEN);
    }
    store::insert_code(&mut tx, app.hospital_id, member_id, &code, app.now()).await?;
    audit::record(
        app,
        &mut tx,
        actor,
        "referral.code",
        Some(("member", member_id)),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(CodeView { code, invited: 0 })
}

/// Counts invitations the member handed out (the top of the funnel).
pub async fn invited(app: &App, actor: &Actor, member_id: i64, count: i64) -> Result<CodeView> {
    if !(1..=1_000).contains(&count) {
        return Err(ValidationErrors::single("count", "out_of_range", "1 to 1,000").into());
    }
    code(app, actor, member_id).await?;
    let mut tx = app.db.begin().await?;
    store::add_invited(&mut tx, member_id, count).await?;
    let (code, invited) = store::code_of(&mut tx, member_id)
        .await?
        .ok_or_else(member_not_found)?;
    tx.commit().await?;
    Ok(CodeView { code, invited })
}

/// Checks a referral for the patient `referred` being enrolled, inside
/// the enrolment's transaction; returns the referrer's member id.
pub(crate) async fn check_enrolment(
    app: &App,
    tx: &mut Tx,
    code: &str,
    referred: i64,
) -> Result<i64> {
    let unknown = || -> AppError {
        ValidationErrors::single(
            "referral_code",
            "unknown_referral_code",
            "no member has this referral code",
        )
        .into()
    };
    if !referral::is_code(code, REFERRAL_CODE_LEN) {
        return Err(unknown());
    }
    let (referrer, referrer_patient, status) = store::owner_of(tx, app.hospital_id, code)
        .await?
        .ok_or_else(unknown)?;
    if status != "active" {
        return Err(AppError::Conflict {
            code: "referrer_inactive",
            message: format!("the referring membership is {status}"),
        });
    }
    let (a, _) = store::party(tx, referrer_patient).await?;
    let (b, paid) = store::party(tx, referred).await?;
    referral::check(&a, &b, paid).map_err(|e: ReferralRefused| AppError::Conflict {
        code: e.code(),
        message: e.to_string(),
    })?;
    Ok(referrer)
}

/// A referrer's funnel.
#[derive(Debug, Clone)]
pub struct Funnel {
    pub code: Option<String>,
    pub invited: i64,
    pub registered: i64,
    pub first_visit: i64,
    pub rewarded: i64,
    pub referrals: Vec<Referral>,
}

pub async fn funnel(app: &App, member_id: i64) -> Result<Funnel> {
    super::get(app, member_id).await?;
    let (code, referrals) = store::funnel(&app.db, member_id).await?;
    let count = |f: &dyn Fn(&str) -> bool| referrals.iter().filter(|r| f(&r.status)).count() as i64;
    Ok(Funnel {
        invited: code.as_ref().map_or(0, |c| c.1),
        code: code.map(|c| c.0),
        registered: referrals.len() as i64,
        first_visit: count(&|s| s != "registered"),
        rewarded: count(&|s| s == "rewarded"),
        referrals,
    })
}

pub use rapport_store::loyalty::referrals::ReferrerRow;

/// The programme's referrers with their funnels, those who brought the
/// most patients first.
pub async fn referrers(app: &App, limit: i64) -> Result<Vec<ReferrerRow>> {
    Ok(store::referrers(&app.db, app.hospital_id, limit.clamp(1, 1_000)).await?)
}
