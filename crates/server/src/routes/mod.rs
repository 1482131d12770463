pub mod analytics;
pub mod dashboard;
pub mod duplicates;
pub mod imports;
pub mod loyalty;
pub mod members;
pub mod patients;
pub mod privacy;
pub mod segments;
pub mod session;
pub mod tokens;
pub mod users;
pub mod visits;

use serde::{Deserialize, Deserializer};

/// Distinguishes a field that is absent (`None`) from one set to null
/// (`Some(None)`), for JSON merge-patch bodies.
pub fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Default page size of list routes.
pub fn default_limit() -> i64 {
    50
}
