//! Recording who did what. Changes are recorded in the transaction that
//! makes them; reads (the 360° view) go through a buffered writer that
//! inserts in batches every 200 ms, so that reading a patient does not
//! cost a database write each time. `flush` waits for the buffer.

use rapport_domain::auth::Role;
use rapport_store::audit::{self as store};
pub use rapport_store::audit::{AuditEntry, AuditQuery};
use rapport_store::bulk::{self, Value};
use rapport_store::{Db, Tx};
use tokio::sync::{mpsc, oneshot};

use crate::{App, Result};

/// Who is acting, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `token:3 HIS sync`, `user:admin`, `cli`, `system`.
    pub who: String,
    pub role: Option<Role>,
    pub ip: Option<String>,
}

impl Actor {
    /// The command line, run by whoever holds the server's files.
    pub fn cli() -> Self {
        Actor {
            who: "cli".into(),
            role: None,
            ip: None,
        }
    }

    pub fn system(job: &str) -> Self {
        Actor {
            who: format!("system:{job}"),
            role: None,
            ip: None,
        }
    }

    fn entry(
        &self,
        app: &App,
        action: &str,
        subject: Option<(&str, i64)>,
        outcome: &str,
        detail: Option<String>,
    ) -> AuditEntry {
        AuditEntry {
            id: 0,
            hospital_id: app.hospital_id,
            at: app.now(),
            actor: self.who.clone(),
            role: self.role.map(|r| r.as_str().to_string()),
            action: action.to_string(),
            subject_type: subject.map(|s| s.0.to_string()),
            subject_id: subject.map(|s| s.1),
            outcome: outcome.to_string(),
            ip: self.ip.clone(),
            detail,
        }
    }
}

/// Records a change in the transaction that makes it.
pub async fn record(
    app: &App,
    tx: &mut Tx,
    actor: &Actor,
    action: &str,
    subject: Option<(&str, i64)>,
    detail: Option<String>,
) -> Result<()> {
    store::append(tx, &actor.entry(app, action, subject, "ok", detail)).await?;
    Ok(())
}

/// Records a read or a refused attempt through the buffer.
pub fn note(
    app: &App,
    actor: &Actor,
    action: &str,
    subject: Option<(&str, i64)>,
    outcome: &str,
    detail: Option<String>,
) {
    let e = actor.entry(app, action, subject, outcome, detail);
    app.audit.send(Msg::Entry(Box::new(e)));
}

/// Waits until every buffered entry is in the database.
pub async fn flush(app: &App) {
    let (tx, rx) = oneshot::channel();
    app.audit.send(Msg::Flush(tx));
    let _ = rx.await;
}

pub async fn list(app: &App, mut q: AuditQuery) -> Result<Vec<AuditEntry>> {
    flush(app).await;
    q.hospital_id = app.hospital_id;
    Ok(store::list(&app.db, &q).await?)
}

pub(crate) enum Msg {
    Entry(Box<AuditEntry>),
    Flush(oneshot::Sender<()>),
}

/// The buffered writer's handle.
#[derive(Clone)]
pub(crate) struct AuditBuffer(Option<mpsc::UnboundedSender<Msg>>);

impl AuditBuffer {
    /// Starts the writer on the current tokio runtime (none outside one:
    /// entries are then dropped with a warning, which only happens in
    /// synchronous unit tests).
    pub(crate) fn start(db: Db) -> Self {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return AuditBuffer(None);
        };
        let (tx, rx) = mpsc::unbounded_channel();
        handle.spawn(run(db, rx));
        AuditBuffer(Some(tx))
    }

    fn send(&self, m: Msg) {
        match &self.0 {
            Some(tx) => {
                if tx.send(m).is_err() {
                    tracing::warn!("audit writer stopped; an entry was not recorded");
                }
            }
            None => tracing::warn!("no audit writer; an entry was not recorded"),
        }
    }
}

const COLUMNS: &[&str] = &[
    "hospital_id",
    "at",
    "actor",
    "role",
    "action",
    "subject_type",
    "subject_id",
    "outcome",
    "ip",
    "detail",
];

async fn write(db: &Db, batch: &mut Vec<AuditEntry>) {
    if batch.is_empty() {
        return;
    }
    let rows: Vec<Vec<Value>> = batch
        .drain(..)
        .map(|e| {
            vec![
                e.hospital_id.into(),
                e.at.into(),
                e.actor.into(),
                e.role.into(),
                e.action.into(),
                e.subject_type.into(),
                e.subject_id.into(),
                e.outcome.into(),
                e.ip.into(),
                e.detail.into(),
            ]
        })
        .collect();
    let result = async {
        let mut tx = db.begin().await?;
        bulk::insert_rows(&mut tx, "audit_log", COLUMNS, &rows).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, lost = rows.len(), "could not write audit entries");
    }
}

async fn run(db: Db, mut rx: mpsc::UnboundedReceiver<Msg>) {
    let mut batch = Vec::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        tokio::select! {
            m = rx.recv() => match m {
                Some(Msg::Entry(e)) => {
                    batch.push(*e);
                    if batch.len() >= 1000 {
                        write(&db, &mut batch).await;
                    }
                }
                Some(Msg::Flush(ack)) => {
                    write(&db, &mut batch).await;
                    let _ = ack.send(());
                }
                None => {
                    write(&db, &mut batch).await;
                    return;
                }
            },
            _ = tick.tick() => write(&db, &mut batch).await,
        }
    }
}

impl Actor {
    /// The actor for an authenticated caller, with the address it came from.
    pub fn from_principal(p: &crate::principal::Principal, ip: Option<String>) -> Self {
        let who = match &p.kind {
            crate::principal::PrincipalKind::Token { token_id } => {
                format!("token:{token_id} ({})", p.name)
            }
            crate::principal::PrincipalKind::User { login, .. } => format!("user:{login}"),
        };
        Actor {
            who,
            role: Some(p.role),
            ip,
        }
    }
}

/// Records an action that has no transaction of its own (an export to a
/// file, say), durably, before returning.
pub async fn record_now(
    app: &App,
    actor: &Actor,
    action: &str,
    detail: Option<String>,
) -> Result<()> {
    let mut tx = app.db.begin().await?;
    record(app, &mut tx, actor, action, None, detail).await?;
    tx.commit().await?;
    Ok(())
}
