//! The domain of Rapport: pure types and rules. No I/O, no async, no SQL,
//! no HTTP. Everything here is data in, data out, and is tested as such.

/// An enum whose values have one canonical spelling (serialised, stored,
/// shown): `ALL`, `as_str`, `from_code`, `expected` and `Display`.
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $text)] $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            /// Parses the canonical spelling (exactly as serialised).
            pub fn from_code(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
            /// The accepted spellings, for error messages.
            pub fn expected() -> String {
                [$($text),+].join(", ")
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub mod aggregates;
pub mod auth;
pub mod consent;
pub mod loyalty;
pub mod money;
pub mod patient;
pub mod segment;
pub mod staff;
pub mod validation;

pub use aggregates::PatientAggregates;
pub use money::Money;
pub use validation::{FieldError, ValidationErrors};
