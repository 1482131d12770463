//! `rapport check`: every stored invariant verified against its facts.

use rapport_store::check::AggregateMismatch;

use crate::{App, Result};

/// The outcome of one invariant check.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub name: &'static str,
    /// How many records were verified.
    pub checked: u64,
    /// One line per violation (at most [`MAX_REPORTED`]).
    pub problems: Vec<String>,
    /// All violations, also those not listed.
    pub violations: u64,
}

pub const MAX_REPORTED: usize = 20;

fn describe(m: &AggregateMismatch) -> String {
    match (&m.stored, &m.recomputed) {
        (None, Some(r)) => format!(
            "patient {}: aggregates missing (visits say {} visits)",
            m.patient_key, r.visits
        ),
        (Some(_), None) => format!(
            "patient {}: aggregates stored but the patient has no visits",
            m.patient_key
        ),
        (s, r) => format!(
            "patient {}: stored {:?} but visits give {:?}",
            m.patient_key, s, r
        ),
    }
}

/// Runs every check.
pub async fn run(app: &App) -> Result<Vec<CheckResult>> {
    let (patients, mismatches) = rapport_store::check::aggregates(&app.db).await?;
    let mut out = vec![CheckResult {
        name: "patient aggregates",
        checked: patients,
        violations: mismatches.len() as u64,
        problems: mismatches.iter().take(MAX_REPORTED).map(describe).collect(),
    }];
    let (keys, broken) = rapport_store::check::references(&app.db).await?;
    out.push(CheckResult {
        name: "foreign keys",
        checked: keys,
        violations: broken.len() as u64,
        problems: broken.into_iter().take(MAX_REPORTED).collect(),
    });
    out.push(sealed_ids(app).await?);
    out.push(crate::loyalty::jobs::check_ledgers(app).await?);
    let (checked, problems) = rapport_store::loyalty::check::reasons(&app.db).await?;
    out.push(CheckResult {
        name: "points reasons (visit earns, vouchers)",
        checked,
        violations: problems.len() as u64,
        problems: problems.into_iter().take(MAX_REPORTED).collect(),
    });
    Ok(out)
}

/// Every sealed national id opens with the configured keys (a key file
/// that lost a key, or the wrong key file, shows up here).
async fn sealed_ids(app: &App) -> Result<CheckResult> {
    let sealed = rapport_store::patients::sealed_national_ids(&app.db).await?;
    let mut problems = Vec::new();
    let mut violations = 0;
    for (id, s) in &sealed {
        if let Err(e) = app.keys.open(s) {
            violations += 1;
            if problems.len() < MAX_REPORTED {
                problems.push(format!("patient {id}: national id does not open: {e}"));
            }
        }
    }
    Ok(CheckResult {
        name: "sealed national ids",
        checked: sealed.len() as u64,
        problems,
        violations,
    })
}
