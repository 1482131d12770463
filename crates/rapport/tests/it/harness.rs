//! Test harness: a fresh database per test (a temporary SQLite file, or a
//! fresh schema on the PostgreSQL server named by
//! `RAPPORT_TEST_POSTGRES_URL`), the real HTTP server on 127.0.0.1:0, and
//! a client. Scenarios are written once and run on both engines by
//! [`both_engines!`].

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use rapport_app::{App, Db, Options};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server for tests, if configured.
pub fn postgres_url() -> Option<String> {
    std::env::var("RAPPORT_TEST_POSTGRES_URL")
        .ok()
        .filter(|s| !s.is_empty())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Where a test's database lives; removes it on drop (SQLite) or leaves
/// a uniquely named schema behind in a per-run database (PostgreSQL).
pub struct TestDb {
    pub url: String,
    pub _engine: Engine,
    pub _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> Option<TestDb> {
        match engine {
            Engine::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("rapport.db").display());
                Some(TestDb {
                    url,
                    _engine: engine,
                    _dir: Some(dir),
                })
            }
            Engine::Postgres => {
                let base = postgres_url()?;
                let schema = format!(
                    "t_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos())
                        .unwrap_or(0)
                );
                let admin = sqlx::PgPool::connect(&base)
                    .await
                    .expect("connect to RAPPORT_TEST_POSTGRES_URL");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                let sep = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
                Some(TestDb {
                    url,
                    _engine: engine,
                    _dir: None,
                })
            }
        }
    }

    pub async fn open(&self) -> Db {
        Db::open(
            Some(&self.url),
            std::path::Path::new("."),
            &Options { max_connections: 8 },
        )
        .await
        .expect("open test database")
    }
}

/// A running server on a fresh database.
pub struct TestApp {
    pub _db: TestDb,
    pub app: App,
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    /// A token with the admin role.
    pub admin: String,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl TestApp {
    pub async fn spawn(engine: Engine) -> Option<TestApp> {
        Self::spawn_with(engine, |app| app).await
    }

    /// Like [`TestApp::spawn`], with the `App` adjusted before it serves
    /// (a controllable clock, secure cookies).
    pub async fn spawn_with(engine: Engine, adjust: impl FnOnce(App) -> App) -> Option<TestApp> {
        let db = TestDb::new(engine).await?;
        // A data key of its own, as the binary loads from its key file.
        let keys =
            rapport_app::crypto::DataKeys::parse(&rapport_app::crypto::DataKeys::generate_line())
                .expect("key");
        let app = adjust(App::new(db.open().await).with_keys(keys));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = app.clone();
        tokio::spawn(async move {
            let _ = rapport_server::serve(served, listener, async {
                let _ = rx.await;
            })
            .await;
        });
        let (_, admin) = rapport_app::tokens::create(&app, "admin", "test admin")
            .await
            .expect("token");
        Some(TestApp {
            _db: db,
            app,
            addr,
            client: reqwest::Client::new(),
            admin,
            _shutdown: tx,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn token(&self, role: &str) -> String {
        rapport_app::tokens::create(&self.app, role, &format!("test {role}"))
            .await
            .expect("token")
            .1
    }

    /// Sends a request with the admin token and returns status and JSON.
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.call_as(&self.admin.clone(), method, path, body).await
    }

    pub async fn call_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(m, self.url(path)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let ct = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = res.text().await.expect("body");
        if status >= 400 {
            assert_eq!(
                ct, "application/problem+json",
                "error {status} without problem+json: {text}"
            );
        }
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, v)
    }

    /// Registers a patient and returns its platform id.
    pub async fn patient(&self, patient_id: &str, name: &str) -> i64 {
        let (s, b) = self
            .call("POST", "/api/v1/patients", Some(serde_json::json!({"patient_id": patient_id, "name": name, "phone": "13812345678"})))
            .await;
        assert_eq!(s, 201, "{b}");
        b["id"].as_i64().expect("id")
    }

    pub async fn visit(&self, visit_id: &str, patient_id: &str, date: &str, amount: &str) -> Value {
        let (s, b) = self
            .call(
                "POST",
                "/api/v1/visits",
                Some(serde_json::json!({"visit_id": visit_id, "patient_id": patient_id, "visit_date": date,
                    "department": "Cardiology", "doctor_id": "D01", "doctor_name": "Dr. Li", "kind": "outpatient", "amount": amount})),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        b
    }
}

/// Runs a scenario `async fn name(engine: Engine)` as two tests,
/// `sqlite::name` and `postgres::name`. Without a PostgreSQL server the
/// second one reports itself skipped on stderr and passes.
#[macro_export]
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name($crate::harness::Engine::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if $crate::harness::postgres_url().is_none() {
                    eprintln!("SKIPPED postgres::{}: set RAPPORT_TEST_POSTGRES_URL to run it", stringify!($name));
                    return;
                }
                super::$name($crate::harness::Engine::Postgres).await
            })*
        }
    };
}
