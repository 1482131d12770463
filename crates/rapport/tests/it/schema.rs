//! Both engines' migrations describe the same tables and columns.

use std::collections::BTreeSet;

use crate::harness::{Engine, TestDb, postgres_url};

#[test]
fn both_migration_folders_list_the_same_versions() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../store/migrations");
    let list = |engine: &str| -> BTreeSet<String> {
        std::fs::read_dir(format!("{dir}/{engine}"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let sqlite = list("sqlite");
    assert_eq!(sqlite, list("postgres"));
    let embedded: BTreeSet<String> = rapport_store::migrate::MIGRATIONS
        .iter()
        .map(|m| format!("{}.sql", m.name))
        .collect();
    assert_eq!(
        sqlite, embedded,
        "every migration file is embedded, and only those"
    );
    for (i, m) in rapport_store::migrate::MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1, "versions are consecutive");
        assert!(m.name.starts_with(&format!("{:04}_", m.version)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_engines_have_the_same_tables_and_columns() {
    if postgres_url().is_none() {
        eprintln!("SKIPPED schema parity: set RAPPORT_TEST_POSTGRES_URL to run it");
        return;
    }
    let s = TestDb::new(Engine::Sqlite).await.unwrap();
    let p = TestDb::new(Engine::Postgres).await.unwrap();
    let (sdb, pdb) = (s.open().await, p.open().await);
    let mut sqlite_cols = BTreeSet::new();
    let mut pg_cols = BTreeSet::new();
    if let rapport_store::Db::Sqlite { read, .. } = &sdb {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(read)
        .await
        .unwrap();
        sqlite_cols.extend(rows);
    }
    if let rapport_store::Db::Postgres(pool) = &pdb {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns WHERE table_schema = current_schema()",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        pg_cols.extend(rows);
    }
    assert!(sqlite_cols.len() > 40, "{sqlite_cols:?}");
    assert_eq!(sqlite_cols, pg_cols);
}
