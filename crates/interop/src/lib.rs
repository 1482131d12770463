//! Hospital files in and out, as pure functions: bytes in, records out.
//!
//! This crate is the parsing half of `import`/`export`: it knows file
//! formats and turns them into the domain's input types (`PatientInput`,
//! `VisitInput`, `NewPatient`, `VisitFields`) or, for FHIR, into small
//! mapped records. It never touches a database, the network or the clock:
//! the caller (the application) decides what to upsert, inside its own
//! transaction, and passes `today` where validation needs it. Validation
//! itself stays in `rapport-domain`; this crate only locates errors (file,
//! row, column; bundle entry or NDJSON line).
//!
//! - [`fhir`]: FHIR R4 Bundle / resource / NDJSON (gzip too) → [`fhir::FhirBatch`].
//! - [`fhir_export`]: Patient, Encounter, Practitioner, Organization as NDJSON.
//! - [`csv`]: `patients.csv` / `visits.csv`, streamed row by row.
//! - [`decimal`]: exact decimal amounts, rounded once to minor units.

pub mod csv;
pub mod decimal;
pub mod fhir;
pub mod fhir_export;
pub mod table;
pub mod xlsx;
