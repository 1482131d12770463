//! Hospitals (sites).

use crate::{Result, Tx, on_tx};

pub async fn rename(tx: &mut Tx, id: i64, name: &str) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE hospitals SET name = $2 WHERE id = $1").bind(id).bind(name).execute(&mut *c).await.map(|_| ()))?;
    Ok(())
}
