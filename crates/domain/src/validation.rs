//! Validation errors that name the field at fault, so every interface (API,
//! file import, console) can point at it.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field as the caller named it (`phone`, `visit_date`).
    pub field: String,
    /// A stable machine-readable code (`required`, `invalid_date`).
    pub code: &'static str,
    /// A readable sentence.
    pub message: String,
}

/// One or more field errors.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error)]
#[error("{}", self.summary())]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    pub fn push(&mut self, field: &str, code: &'static str, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.to_string(),
            code,
            message: message.into(),
        });
    }

    pub fn single(field: &str, code: &'static str, message: impl Into<String>) -> Self {
        let mut e = Self::default();
        e.push(field, code, message);
        e
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(v)` when no error was pushed.
    pub fn into_result<T>(self, v: T) -> Result<T, Self> {
        if self.0.is_empty() { Ok(v) } else { Err(self) }
    }

    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    }
}
