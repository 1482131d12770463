//! The migration runner. Migrations are embedded in the binary, one list
//! per engine with the same versions, applied in order, each in its own
//! transaction, with a checksum so an edited migration is caught.

use sha2::{Digest, Sha256};

use crate::{Db, StoreError, Tx, on_tx};

pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

macro_rules! migrations {
    ($($v:literal $name:literal),* $(,)?) => {
        &[$(Migration {
            version: $v,
            name: $name,
            sqlite: include_str!(concat!("../migrations/sqlite/", $name, ".sql")),
            postgres: include_str!(concat!("../migrations/postgres/", $name, ".sql")),
        }),*]
    };
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = migrations![
    1 "0001_core",
    2 "0002_scores",
    3 "0003_staff",
    4 "0004_privacy",
    5 "0005_import",
    6 "0006_loyalty",
    7 "0007_segments",
    8 "0008_console",
    9 "0009_loyalty_rules",
    10 "0010_lots_by_member",
];

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version BIGINT PRIMARY KEY,
    name TEXT NOT NULL,
    checksum TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

fn checksum(sql: &str) -> String {
    let d = Sha256::digest(sql.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Applies every missing migration.
pub async fn run(db: &Db) -> Result<(), StoreError> {
    let mut tx = db.begin().await?;
    // Serialise concurrent starts of several instances on one PostgreSQL;
    // on SQLite `BEGIN IMMEDIATE` already does.
    if let Tx::Postgres(t) = &mut tx {
        sqlx::query("SELECT pg_advisory_xact_lock(7273017)")
            .execute(&mut **t)
            .await?;
    }
    on_tx!(&mut tx, c => sqlx::raw_sql(CREATE_TABLE).execute(&mut *c).await.map(|_| ()))?;
    let applied: Vec<(i64, String)> = on_tx!(&mut tx, c => {
        sqlx::query_as("SELECT version, checksum FROM schema_migrations ORDER BY version")
            .fetch_all(&mut *c)
            .await?
    });
    let engine = tx.engine();
    for m in MIGRATIONS {
        let sql = match engine {
            crate::Engine::Sqlite => m.sqlite,
            crate::Engine::Postgres => m.postgres,
        };
        let sum = checksum(sql);
        if let Some((_, have)) = applied.iter().find(|(v, _)| *v == m.version) {
            if *have != sum {
                return Err(StoreError::Config(format!(
                    "migration {} was changed after it was applied; restore it and add a new migration instead",
                    m.name
                )));
            }
            continue;
        }
        tracing::info!(migration = m.name, "applying migration");
        on_tx!(&mut tx, c => {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *c).await?;
            sqlx::query("INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                .bind(m.version)
                .bind(m.name)
                .bind(&sum)
                .bind(chrono::Utc::now().to_rfc3339())
                .execute(&mut *c)
                .await
                .map(|_| ())
        })?;
    }
    if let Some(newest) = applied.iter().map(|(v, _)| *v).max()
        && newest > MIGRATIONS.last().map(|m| m.version).unwrap_or(0)
    {
        return Err(StoreError::Config(format!(
            "the database has migration {newest}, newer than this program knows; upgrade rapport"
        )));
    }
    tx.commit().await
}
