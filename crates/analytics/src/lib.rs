//! Pure analytics of Rapport: the figures of `analytics.md`.
//!
//! Everything here is a function of data in memory: no I/O, no clock, no
//! database. The store computes [`rapport_domain::PatientAggregates`] per
//! patient as of a date; this crate turns them into
//!
//! - RFM scores and segments ([`rfm`]), revenue concentration
//!   ([`concentration`]) and cohort retention ([`cohorts`]), gathered by
//!   [`analyze`] into the exact shape of `analyze --json`;
//! - lifetime value: BG/NBD ([`bgnbd`]) and Gamma-Gamma ([`gamma_gamma`])
//!   maximum-likelihood fits and predictions, gathered in [`clv`] (summary
//!   CSV, `clv fit --json`, discounted lifetime value);
//! - A/B tests of campaigns ([`abtest`]).
//!
//! Money is integer minor units and summed exactly; scores use the integer
//! formulas of the contract, so they match SQL to the last patient. The
//! model fits reproduce the `lifetimes` 0.11.3 reference figures on CDNOW
//! (see the integration tests).

pub mod abtest;
pub mod analysis;
pub mod bgnbd;
pub mod clv;
pub mod cohorts;
pub mod concentration;
pub mod dashboard;
pub mod gamma_gamma;
mod optim;
pub mod rfm;
pub mod special;
#[cfg(test)]
mod testutil;

pub use analysis::{Analysis, SegmentCounts, analyze, analyze_with_scores, format_minor_units};
pub use bgnbd::{BgNbdFit, BgNbdParams};
pub use clv::{
    ClvFit, ClvFitError, ClvSettings, PatientPrediction, Summary, SummaryCsvError, SummaryTable,
    customer_lifetime_value, fit_clv, fit_clv_from_aggregates, fit_summary_table,
    parse_summary_csv, predict, predict_many, read_summary_csv, summary_from_aggregates,
};
pub use cohorts::{CohortRow, cohort_retention};
pub use gamma_gamma::{GammaGammaFit, GammaGammaParams};
pub use rfm::{RfmScore, Segment, rfm_scores};

/// Why a model could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// No customer (or only zero weights) in the input.
    #[error("no customers to fit")]
    Empty,
    /// A row of the input is not valid for the model (`row` counts from 0
    /// in the input order).
    #[error("row {row}: {reason}")]
    InvalidRow { row: usize, reason: String },
    /// The data cannot identify the model's parameters.
    #[error("the data cannot identify the model: {0}")]
    Degenerate(&'static str),
    /// The optimiser stopped without reaching a maximum.
    #[error("the likelihood maximisation did not converge (largest gradient component {grad:e})")]
    NoConvergence { grad: f64 },
}
