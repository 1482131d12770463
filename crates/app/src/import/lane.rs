//! The import's transaction, with one chunk's visits on their way in
//! while the next chunk is prepared.
//!
//! A chunk's insert is the server's work and its preparation (keys,
//! filters, aggregates) the importer's: done one after the other, each
//! waits for the other. The insert is sent off on a task of its own with
//! the transaction, and the next chunk is prepared meanwhile; whatever
//! needs the database next waits for the insert to land first
//! ([`Lane::tx`]), so statements still run in the order they were
//! issued and every read sees every row written before it.

use rapport_store::import as store;
use rapport_store::{StoreError, Tx};
use tokio::task::JoinHandle;

use crate::AppError;

type Flight = JoinHandle<(Tx, Result<u64, StoreError>)>;

pub(super) struct Lane {
    /// The transaction, unless an insert holds it.
    tx: Option<Tx>,
    flight: Option<Flight>,
    /// Visits the landed inserts wrote.
    landed: u64,
}

impl Lane {
    pub fn new(tx: Tx) -> Self {
        Lane {
            tx: Some(tx),
            flight: None,
            landed: 0,
        }
    }

    /// The transaction, once the insert in flight has landed. An insert
    /// that failed fails here; one that panicked panics here.
    pub async fn tx(&mut self) -> Result<&mut Tx, AppError> {
        if let Some(flight) = self.flight.take() {
            let (tx, written) = match flight.await {
                Ok(landed) => landed,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(AppError::Internal(format!("visits insert: {e}"))),
            };
            self.tx = Some(tx);
            self.landed += written?;
        }
        self.tx
            .as_mut()
            .ok_or_else(|| AppError::Internal("the import's transaction was lost".into()))
    }

    /// Sends visits' rows (from [`store::visit_values`]) off to be
    /// inserted, once the insert before has landed.
    pub async fn send_visits(
        &mut self,
        rows: Vec<Vec<rapport_store::bulk::Value>>,
    ) -> Result<(), AppError> {
        self.tx().await?;
        let Some(mut tx) = self.tx.take() else {
            return Err(AppError::Internal(
                "the import's transaction was lost".into(),
            ));
        };
        self.flight = Some(tokio::spawn(async move {
            let written = store::write_visit_values(&mut tx, &rows).await;
            (tx, written)
        }));
        Ok(())
    }

    /// The transaction back, with the visits the inserts wrote.
    pub async fn finish(mut self) -> Result<(Tx, u64), AppError> {
        self.tx().await?;
        match self.tx.take() {
            Some(tx) => Ok((tx, self.landed)),
            None => Err(AppError::Internal(
                "the import's transaction was lost".into(),
            )),
        }
    }
}
