//! Member-gets-member: referral codes, the referrals made with them and
//! their progress (registered, first paid visit, referrer rewarded).

use chrono::{DateTime, Utc};
use rapport_domain::loyalty::referral::Party;

use super::rules::in_json_ids;
use crate::query::{FromAnyRow, Id};
use crate::{AnyRow, Db, Result, StoreError, Tx, on_read, on_tx};

/// A member's referral code and the invitations they handed out.
pub async fn code_of(tx: &mut Tx, member_id: i64) -> Result<Option<(String, i64)>> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT code, invited FROM loyalty_referral_codes WHERE member_id = $1")
        .bind(member_id).fetch_optional(&mut *c).await?))
}

pub async fn code_taken(tx: &mut Tx, hospital_id: i64, code: &str) -> Result<bool> {
    let r: Option<(i64,)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT member_id FROM loyalty_referral_codes WHERE hospital_id = $1 AND code = $2")
        .bind(hospital_id).bind(code).fetch_optional(&mut *c).await?);
    Ok(r.is_some())
}

pub async fn insert_code(
    tx: &mut Tx,
    hospital_id: i64,
    member_id: i64,
    code: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query("INSERT INTO loyalty_referral_codes (member_id, hospital_id, code, invited, created_at) \
                                VALUES ($1, $2, $3, 0, $4)")
        .bind(member_id).bind(hospital_id).bind(code).bind(now).execute(&mut *c).await.map(|_| ()))
    .map_err(|e| StoreError::unique(e, "referral code"))?;
    Ok(())
}

/// Counts invitations a member handed out.
pub async fn add_invited(tx: &mut Tx, member_id: i64, n: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE loyalty_referral_codes SET invited = invited + $2 WHERE member_id = $1")
        .bind(member_id).bind(n).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// The member owning a code: `(member id, patient key, status)`.
pub async fn owner_of(
    tx: &mut Tx,
    hospital_id: i64,
    code: &str,
) -> Result<Option<(i64, i64, String)>> {
    Ok(on_tx!(tx, c => sqlx::query_as(
        "SELECT m.id, m.patient_key, m.status FROM loyalty_referral_codes r JOIN loyalty_members m ON m.id = r.member_id \
         WHERE r.hospital_id = $1 AND r.code = $2")
        .bind(hospital_id).bind(code).fetch_optional(&mut *c).await?))
}

/// A patient as the referral rules see them, with their paid visits.
pub async fn party(tx: &mut Tx, patient_key: i64) -> Result<(Party, i64)> {
    let r: Option<(Option<String>, Option<String>, i64)> = on_tx!(tx, c => sqlx::query_as(
        "SELECT p.phone, p.household, (SELECT COUNT(*) FROM visits v WHERE v.patient_key = p.id AND v.amount > 0) \
         FROM patients p WHERE p.id = $1")
        .bind(patient_key).fetch_optional(&mut *c).await?);
    let (phone, household, paid) = r.ok_or(StoreError::NotFound("patient"))?;
    Ok((
        Party {
            patient_key,
            phone,
            household,
        },
        paid,
    ))
}

pub async fn insert(
    tx: &mut Tx,
    hospital_id: i64,
    referrer: i64,
    code: &str,
    referred_patient: i64,
    referred_member: i64,
    now: DateTime<Utc>,
) -> Result<i64> {
    let r: (i64,) = on_tx!(tx, c => sqlx::query_as(
        "INSERT INTO loyalty_referrals (hospital_id, referrer_member_id, code, referred_patient_key, referred_member_id, \
         status, registered_at) VALUES ($1, $2, $3, $4, $5, 'registered', $6) RETURNING id")
        .bind(hospital_id).bind(referrer).bind(code).bind(referred_patient).bind(referred_member).bind(now)
        .fetch_one(&mut *c).await)
    .map_err(|e| StoreError::unique(e, "referral"))?;
    Ok(r.0)
}

/// A referral waiting for the referred patient's first paid visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub id: i64,
    pub referrer_member_id: i64,
    pub code: String,
    pub referred_patient_key: i64,
}

impl FromAnyRow for Pending {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(Pending {
            id: r.col("id")?,
            referrer_member_id: r.col("referrer_member_id")?,
            code: r.col("code")?,
            referred_patient_key: r.col("referred_patient_key")?,
        })
    }
}

/// The referrals still waiting among the patients `keys`.
pub async fn pending_of(tx: &mut Tx, hospital_id: i64, keys: &[i64]) -> Result<Vec<Pending>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, referrer_member_id, code, referred_patient_key FROM loyalty_referrals \
         WHERE hospital_id = $1 AND status = 'registered' AND {} ORDER BY id",
        in_json_ids(tx, "referred_patient_key", 2)
    );
    let list = serde_json::to_string(keys).unwrap_or_else(|_| "[]".into());
    tx.fetch(&sql, &[hospital_id.into(), list.into()]).await
}

/// Records the first paid visit, and the reward when one was given.
pub async fn settle(
    tx: &mut Tx,
    id: i64,
    visit_key: i64,
    reward: Option<(i64, i64)>,
    at: DateTime<Utc>,
) -> Result<()> {
    let (status, seq, points) = match reward {
        Some((seq, points)) => ("rewarded", Some(seq), Some(points)),
        None => ("first_visit", None, None),
    };
    tx.exec(
        "UPDATE loyalty_referrals SET status = $2, first_visit_key = $3, first_visit_at = $4, rewarded_seq = $5, \
         rewarded_points = $6, rewarded_at = CASE WHEN $5 IS NULL THEN NULL ELSE $4 END \
         WHERE id = $1 AND status = 'registered'",
        &[
            id.into(),
            status.into(),
            visit_key.into(),
            at.into(),
            seq.into(),
            points.into(),
        ],
    )
    .await?;
    Ok(())
}

/// A referral settled by a visit: the referred patient's first paid one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    pub id: i64,
    pub referrer_member_id: i64,
    pub code: String,
    /// The referrer's reward (an earn at this position of their ledger),
    /// when one was given.
    pub rewarded_seq: Option<i64>,
}

impl FromAnyRow for Settled {
    fn from_any(r: &impl AnyRow) -> Result<Self> {
        Ok(Settled {
            id: r.col("id")?,
            referrer_member_id: r.col("referrer_member_id")?,
            code: r.col("code")?,
            rewarded_seq: r.col("rewarded_seq")?,
        })
    }
}

/// The referral of `patient_key` that `visit_key` settled, if any.
pub async fn settled_by(
    tx: &mut Tx,
    hospital_id: i64,
    patient_key: i64,
    visit_key: i64,
) -> Result<Option<Settled>> {
    tx.fetch_opt(
        "SELECT id, referrer_member_id, code, rewarded_seq FROM loyalty_referrals \
         WHERE hospital_id = $1 AND referred_patient_key = $2 AND first_visit_key = $3",
        &[hospital_id.into(), patient_key.into(), visit_key.into()],
    )
    .await
}

/// Puts a settled referral back to waiting for a first paid visit.
pub async fn reopen(tx: &mut Tx, id: i64) -> Result<()> {
    tx.exec(
        "UPDATE loyalty_referrals SET status = 'registered', first_visit_key = NULL, first_visit_at = NULL, \
         rewarded_seq = NULL, rewarded_points = NULL, rewarded_at = NULL WHERE id = $1",
        &[id.into()],
    )
    .await?;
    Ok(())
}

/// The patient's earliest paid visit other than `except`, if any.
pub async fn first_paid_visit(tx: &mut Tx, patient_key: i64, except: i64) -> Result<Option<i64>> {
    let r: Option<Id> = tx
        .fetch_opt(
            "SELECT id FROM visits WHERE patient_key = $1 AND id <> $2 AND amount > 0 \
             ORDER BY visit_date, id LIMIT 1",
            &[patient_key.into(), except.into()],
        )
        .await?;
    Ok(r.map(|r| r.0))
}

/// A referral as the funnel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub id: i64,
    pub referred_patient_key: i64,
    pub referred_member_id: Option<i64>,
    pub status: String,
    pub registered_at: DateTime<Utc>,
    pub first_visit_at: Option<DateTime<Utc>>,
    pub rewarded_points: Option<i64>,
    pub rewarded_at: Option<DateTime<Utc>>,
}

/// A referrer's funnel: their code, invitations handed out, and every
/// referral made with the code (newest first, at most 500).
pub async fn funnel(db: &Db, member_id: i64) -> Result<(Option<(String, i64)>, Vec<Referral>)> {
    on_read!(db, p => {
        let code: Option<(String, i64)> = sqlx::query_as(
            "SELECT code, invited FROM loyalty_referral_codes WHERE member_id = $1")
            .bind(member_id).fetch_optional(p).await?;
        let rows = sqlx::query(
            "SELECT id, referred_patient_key, referred_member_id, status, registered_at, first_visit_at, \
             rewarded_points, rewarded_at FROM loyalty_referrals WHERE referrer_member_id = $1 ORDER BY id DESC LIMIT 500")
            .bind(member_id).fetch_all(p).await?;
        let list = rows.iter().map(|r| Ok(Referral {
            id: r.col("id")?,
            referred_patient_key: r.col("referred_patient_key")?,
            referred_member_id: r.col("referred_member_id")?,
            status: r.col("status")?,
            registered_at: r.col("registered_at")?,
            first_visit_at: r.col("first_visit_at")?,
            rewarded_points: r.col("rewarded_points")?,
            rewarded_at: r.col("rewarded_at")?,
        })).collect::<Result<Vec<_>>>()?;
        Ok((code, list))
    })
}

/// One referrer's funnel as the programme's overview lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferrerRow {
    pub member_id: i64,
    pub patient_key: i64,
    pub code: String,
    pub invited: i64,
    pub registered: i64,
    pub first_visit: i64,
    pub rewarded: i64,
}

/// Every member with a referral code and their funnel, those who brought
/// the most patients first (at most `limit`).
pub async fn referrers(db: &Db, hospital_id: i64, limit: i64) -> Result<Vec<ReferrerRow>> {
    on_read!(db, p => {
        let rows = sqlx::query(
            "SELECT c.member_id, m.patient_key, c.code, c.invited, \
                    COUNT(r.id) AS registered, \
                    COUNT(CASE WHEN r.status <> 'registered' THEN 1 END) AS first_visit, \
                    COUNT(CASE WHEN r.status = 'rewarded' THEN 1 END) AS rewarded \
             FROM loyalty_referral_codes c \
             JOIN loyalty_members m ON m.id = c.member_id \
             LEFT JOIN loyalty_referrals r ON r.referrer_member_id = c.member_id \
             WHERE c.hospital_id = $1 \
             GROUP BY c.member_id, m.patient_key, c.code, c.invited \
             ORDER BY registered DESC, c.member_id LIMIT $2")
            .bind(hospital_id).bind(limit).fetch_all(p).await?;
        rows.iter().map(|r| Ok(ReferrerRow {
            member_id: r.col("member_id")?,
            patient_key: r.col("patient_key")?,
            code: r.col("code")?,
            invited: r.col("invited")?,
            registered: r.col("registered")?,
            first_visit: r.col("first_visit")?,
            rewarded: r.col("rewarded")?,
        })).collect::<Result<Vec<_>>>()
    })
}
