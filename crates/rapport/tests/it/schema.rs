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

/// A bulk load grows SQLite's log to the size of what it wrote; once the
/// log restarts it is cut back to 256 MiB, whichever connection restarts
/// it, instead of staying that large on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_log_shrinks_after_a_bulk_load() {
    use rapport_store::bulk::{Value, write_rows};
    let tdb = TestDb::new(Engine::Sqlite).await.unwrap();
    let db = tdb.open().await;
    let rapport_store::Db::Sqlite { write, .. } = &db else {
        unreachable!("an SQLite test database");
    };
    sqlx::query("CREATE TABLE ballast (b TEXT)")
        .execute(write)
        .await
        .unwrap();
    let wal =
        std::path::PathBuf::from(tdb.url.trim_start_matches("sqlite://")).with_extension("db-wal");
    let size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    const MIB: u64 = 1 << 20;
    // 288 MiB of distinct text in one bulk transaction.
    let mut tx = db.begin_bulk().await.unwrap();
    for i in 0..36 {
        let row = vec![Value::from(format!("{i:08}").repeat(MIB as usize))];
        write_rows(&mut tx, "ballast", &["b"], &[row])
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    assert!(size() > 288 * MIB, "the load's log: {} bytes", size());
    // Once the checkpointer has copied the log into the database (it
    // looks every 250 ms), the next write restarts the log; here a write
    // of the other connection.
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        sqlx::query("INSERT INTO ballast VALUES ('x')")
            .execute(write)
            .await
            .unwrap();
        if size() <= 256 * MIB {
            break;
        }
    }
    assert!(size() <= 256 * MIB, "the log after: {} bytes", size());
}
