//! Hospitals (sites).

use crate::{Result, Tx, on_tx};

pub async fn rename(tx: &mut Tx, id: i64, name: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE hospitals SET name = $2 WHERE id = $1").bind(id).bind(name).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}

/// The hospital's currency (ISO 4217 code).
pub async fn currency(db: &crate::Db, id: i64) -> Result<String> {
    let r: Option<(String,)> = crate::on_read!(db, p => sqlx::query_as("SELECT currency FROM hospitals WHERE id = $1")
        .bind(id).fetch_optional(p).await?);
    Ok(r.map_or_else(|| "CNY".to_string(), |r| r.0))
}
