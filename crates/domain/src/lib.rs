//! The domain of Rapport: pure types and rules. No I/O, no async, no SQL,
//! no HTTP. Everything here is data in, data out, and is tested as such.

pub mod aggregates;

pub use aggregates::PatientAggregates;
