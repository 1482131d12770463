//! The domain of Rapport: pure types and rules. No I/O, no async, no SQL,
//! no HTTP. Everything here is data in, data out, and is tested as such.

pub mod aggregates;
pub mod auth;
pub mod consent;
pub mod loyalty;
pub mod money;
pub mod patient;
pub mod staff;
pub mod validation;

pub use aggregates::PatientAggregates;
pub use money::Money;
pub use validation::{FieldError, ValidationErrors};
