//! Customer lifetime value: per-patient summaries, the summary CSV of
//! `clv fit --summary`, the combined BG/NBD + Gamma-Gamma fit (`clv fit
//! --json`) and the discounted lifetime value of `lifetimes`.
//!
//! The period is whatever unit the summaries use: the platform's own data
//! are in days ([`summary_from_aggregates`]), the CDNOW reference data in
//! weeks. Lifetime value steps month by month, so it needs the number of
//! periods in a month ([`ClvSettings::periods_per_month`]): 30 for days (as
//! `lifetimes` does with `freq='D'`), 4.345 for weeks.

use std::io::Read;

use chrono::{Datelike, NaiveDate};
use rapport_domain::PatientAggregates;
use serde::{Deserialize, Serialize};

use crate::FitError;
use crate::bgnbd::{self, BgNbdFit, BgNbdParams};
use crate::gamma_gamma::{self, GammaGammaFit, GammaGammaParams};

/// The RFM summary of one customer in the form the models take
/// (`lifetimes.utils.summary_data_from_transaction_data`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Repeat purchase periods (`visit_days - 1` for days).
    pub frequency: f64,
    /// Time between the first and the last purchase.
    pub recency: f64,
    /// Time between the first purchase and the end of observation.
    #[serde(rename = "T")]
    pub t: f64,
    /// Mean spend of the repeat purchases (0 without repeat purchase), in
    /// major currency units.
    pub monetary_value: f64,
}

/// The summary of a patient in days as of `as_of` (`analytics.md`):
/// `frequency = visit_days - 1`, `recency = last - first`,
/// `T = as_of - first`, `monetary_value = (monetary - first_day_monetary) /
/// (visit_days - 1) / 100` (major units; 0 when `frequency = 0`).
pub fn summary_from_aggregates(agg: &PatientAggregates, as_of: NaiveDate) -> Summary {
    let first = i64::from(agg.first_visit.num_days_from_ce());
    let last = i64::from(agg.last_visit.num_days_from_ce());
    let now = i64::from(as_of.num_days_from_ce());
    let frequency = agg.visit_days - 1;
    let monetary_value = if frequency > 0 {
        (agg.monetary - agg.first_day_monetary) as f64 / frequency as f64 / 100.0
    } else {
        0.0
    };
    Summary {
        frequency: frequency as f64,
        recency: (last - first) as f64,
        t: (now - first) as f64,
        monetary_value,
    }
}

/// Parsed summary CSV.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryTable {
    pub rows: Vec<Summary>,
    /// Whether the file had a `monetary_value` column.
    pub has_monetary: bool,
}

/// A summary CSV that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SummaryCsvError {
    #[error("the summary file is empty (no header)")]
    Empty,
    #[error("line 1: missing column `{0}` (the header needs frequency, recency and T)")]
    MissingColumn(&'static str),
    #[error("line 1: column `{0}` appears twice")]
    DuplicateColumn(String),
    #[error("line {line}, column `{column}`: {message}")]
    Invalid {
        /// Line number in the file, from 1 (the header).
        line: usize,
        column: String,
        message: String,
    },
    #[error("reading the summary file: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads a summary CSV (see [`parse_summary_csv`]).
pub fn read_summary_csv<R: Read>(mut reader: R) -> Result<SummaryTable, SummaryCsvError> {
    let mut text = String::new();
    reader.read_to_string(&mut text)?;
    parse_summary_csv(&text)
}

/// Parses the summary CSV of `clv fit --summary`: a header with at least
/// `frequency`, `recency` and `T`, optionally `monetary_value`, other
/// columns ignored; comma-separated, no embedded commas (fields may be
/// wrapped in double quotes); blank lines skipped; UTF-8 BOM and CRLF
/// accepted. Values must be finite, `frequency` a non-negative integer,
/// `0 <= recency <= T`, and `monetary_value >= 0`.
pub fn parse_summary_csv(text: &str) -> Result<SummaryTable, SummaryCsvError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(SummaryCsvError::Empty);
    };
    let names: Vec<&str> = header.split(',').map(clean).collect();
    let find = |want: &'static str| -> Result<Option<usize>, SummaryCsvError> {
        let hits: Vec<usize> = names
            .iter()
            .enumerate()
            .filter(|(_, n)| n.eq_ignore_ascii_case(want))
            .map(|(i, _)| i)
            .collect();
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0])),
            _ => Err(SummaryCsvError::DuplicateColumn(want.to_string())),
        }
    };
    let col_f = find("frequency")?.ok_or(SummaryCsvError::MissingColumn("frequency"))?;
    let col_r = find("recency")?.ok_or(SummaryCsvError::MissingColumn("recency"))?;
    let col_t = find("T")?.ok_or(SummaryCsvError::MissingColumn("T"))?;
    let col_m = find("monetary_value")?;
    let mut rows = Vec::new();
    for (line, l) in lines {
        let fields: Vec<&str> = l.split(',').map(clean).collect();
        let get = |col: usize, name: &str| -> Result<f64, SummaryCsvError> {
            let invalid = |message: String| SummaryCsvError::Invalid {
                line,
                column: name.to_string(),
                message,
            };
            let raw = fields
                .get(col)
                .ok_or_else(|| invalid("missing value (the row is too short)".to_string()))?;
            let v: f64 = raw
                .parse()
                .map_err(|_| invalid(format!("`{raw}` is not a number")))?;
            if !v.is_finite() {
                return Err(invalid(format!("`{raw}` is not a finite number")));
            }
            Ok(v)
        };
        let frequency = get(col_f, "frequency")?;
        let recency = get(col_r, "recency")?;
        let t = get(col_t, "T")?;
        let monetary_value = match col_m {
            Some(c) => get(c, "monetary_value")?,
            None => 0.0,
        };
        let invalid = |column: &str, message: &str| SummaryCsvError::Invalid {
            line,
            column: column.to_string(),
            message: message.to_string(),
        };
        if frequency < 0.0 || frequency.fract() != 0.0 {
            return Err(invalid("frequency", "must be a non-negative integer"));
        }
        if recency < 0.0 {
            return Err(invalid("recency", "must not be negative"));
        }
        if t < recency {
            return Err(invalid("T", "must not be less than recency"));
        }
        if monetary_value < 0.0 {
            return Err(invalid("monetary_value", "must not be negative"));
        }
        rows.push(Summary {
            frequency,
            recency,
            t,
            monetary_value,
        });
    }
    Ok(SummaryTable {
        rows,
        has_monetary: col_m.is_some(),
    })
}

fn clean(field: &str) -> &str {
    let f = field.trim();
    f.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(f)
}

/// The output of `clv fit --json`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClvFit {
    pub bgnbd: BgNbdFit,
    /// Present when monetary values are known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma_gamma: Option<GammaGammaFit>,
}

/// Which of the two models failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClvFitError {
    #[error("BG/NBD: {0}")]
    BgNbd(FitError),
    #[error("Gamma-Gamma: {0}")]
    GammaGamma(FitError),
}

/// Fits BG/NBD on every summary and, when `with_monetary`, Gamma-Gamma on
/// those with `frequency > 0` and `monetary_value > 0`.
pub fn fit_clv(rows: &[Summary], with_monetary: bool) -> Result<ClvFit, ClvFitError> {
    let bgnbd = bgnbd::fit(rows.iter().map(|s| (s.frequency, s.recency, s.t)))
        .map_err(ClvFitError::BgNbd)?;
    let gamma_gamma = if with_monetary {
        Some(
            gamma_gamma::fit(rows.iter().map(|s| (s.frequency, s.monetary_value)))
                .map_err(ClvFitError::GammaGamma)?,
        )
    } else {
        None
    };
    Ok(ClvFit { bgnbd, gamma_gamma })
}

/// [`fit_clv`] on a parsed summary CSV.
pub fn fit_summary_table(table: &SummaryTable) -> Result<ClvFit, ClvFitError> {
    fit_clv(&table.rows, table.has_monetary)
}

/// Both models fitted on the platform's patients, in days, as of `as_of`
/// (the aggregates must be computed as of that date).
pub fn fit_clv_from_aggregates(
    aggs: &[PatientAggregates],
    as_of: NaiveDate,
) -> Result<ClvFit, ClvFitError> {
    let rows: Vec<Summary> = aggs
        .iter()
        .map(|a| summary_from_aggregates(a, as_of))
        .collect();
    fit_clv(&rows, true)
}

/// Settings of [`customer_lifetime_value`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClvSettings {
    /// Horizon in months.
    pub months: u32,
    /// Monthly discount rate `d`; month `m` is discounted by `(1 + d)^m`.
    pub monthly_discount: f64,
    /// Periods of the data in a month: 30 for days, 4.345 for weeks.
    pub periods_per_month: f64,
}

impl ClvSettings {
    /// `lifetimes`' defaults for day data: 12 months, 1 % a month, 30 days.
    pub const DAYS_12_MONTHS: ClvSettings = ClvSettings {
        months: 12,
        monthly_discount: 0.01,
        periods_per_month: 30.0,
    };
}

/// Discounted lifetime value of a customer over `settings.months` months
/// (`lifetimes`' `customer_lifetime_value`): for each month `m`, the
/// expected purchases in that month (BG/NBD) times the expected spend per
/// purchase (Gamma-Gamma), divided by `(1 + d)^m`.
pub fn customer_lifetime_value(
    bgnbd: &BgNbdParams,
    gamma_gamma: &GammaGammaParams,
    summary: &Summary,
    settings: &ClvSettings,
) -> f64 {
    let spend = gamma_gamma.expected_average_spend(summary.frequency, summary.monetary_value);
    let mut clv = 0.0;
    let mut previous = 0.0;
    for m in 1..=settings.months {
        let horizon = f64::from(m) * settings.periods_per_month;
        let cumulative =
            bgnbd.expected_purchases(horizon, summary.frequency, summary.recency, summary.t);
        clv += spend * (cumulative - previous) / (1.0 + settings.monthly_discount).powi(m as i32);
        previous = cumulative;
    }
    clv
}

/// The per-patient predictions of the scores export.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PatientPrediction {
    /// Probability that the patient is still active.
    pub p_alive: f64,
    /// Expected visit days in the next `horizon` periods.
    pub expected_visits: f64,
    /// Lifetime value (`None` without a Gamma-Gamma fit).
    pub clv: Option<f64>,
}

/// P(alive), expected visits in the next `horizon` periods and lifetime
/// value of one patient from a fit (for the scores export in days:
/// `horizon = 90.0`, [`ClvSettings::DAYS_12_MONTHS`]).
pub fn predict(
    fit: &ClvFit,
    summary: &Summary,
    horizon: f64,
    settings: &ClvSettings,
) -> PatientPrediction {
    let bg = fit.bgnbd.params();
    PatientPrediction {
        p_alive: bg.p_alive(summary.frequency, summary.recency, summary.t),
        expected_visits: bg.expected_purchases(
            horizon,
            summary.frequency,
            summary.recency,
            summary.t,
        ),
        clv: fit
            .gamma_gamma
            .map(|gg| customer_lifetime_value(&bg, &gg.params(), summary, settings)),
    }
}

/// [`predict`] for many patients, aligned with `summaries`. Identical
/// `(frequency, recency, T)` histories share the BG/NBD work (the lifetime
/// value is the Gamma-Gamma spend times a discounted sum of expected
/// purchases that depends on the history only), and the distinct histories
/// are split over `threads` scoped threads (1 = the calling thread only).
pub fn predict_many(
    fit: &ClvFit,
    summaries: &[Summary],
    horizon: f64,
    settings: &ClvSettings,
    threads: usize,
) -> Vec<PatientPrediction> {
    let bg = fit.bgnbd.params();
    let key = |s: &Summary| {
        let tx = if s.frequency == 0.0 { 0.0 } else { s.recency };
        (s.frequency.to_bits(), tx.to_bits(), s.t.to_bits())
    };
    let mut order: Vec<u32> = (0..summaries.len() as u32).collect();
    order.sort_unstable_by_key(|&i| key(&summaries[i as usize]));
    // Distinct histories and, per patient, the index of its history.
    let mut distinct: Vec<Summary> = Vec::new();
    let mut which = vec![0u32; summaries.len()];
    let mut last = None;
    for &i in &order {
        let s = &summaries[i as usize];
        let k = key(s);
        if last != Some(k) {
            distinct.push(*s);
            last = Some(k);
        }
        which[i as usize] = (distinct.len() - 1) as u32;
    }
    drop(order);
    // Per history: (p_alive, expected visits in horizon, discounted
    // expected purchases over the CLV months).
    let work = |chunk: &[Summary]| -> Vec<(f64, f64, f64)> {
        chunk
            .iter()
            .map(|s| {
                let (x, tx, t) = (s.frequency, s.recency, s.t);
                let mut discounted = 0.0;
                if fit.gamma_gamma.is_some() {
                    let mut previous = 0.0;
                    for m in 1..=settings.months {
                        let cumulative = bg.expected_purchases(
                            f64::from(m) * settings.periods_per_month,
                            x,
                            tx,
                            t,
                        );
                        discounted += (cumulative - previous)
                            / (1.0 + settings.monthly_discount).powi(m as i32);
                        previous = cumulative;
                    }
                }
                (
                    bg.p_alive(x, tx, t),
                    bg.expected_purchases(horizon, x, tx, t),
                    discounted,
                )
            })
            .collect()
    };
    let threads = threads.clamp(1, 64);
    let per_history: Vec<(f64, f64, f64)> = if threads == 1 || distinct.len() < 10_000 {
        work(&distinct)
    } else {
        let size = distinct.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = distinct
                .chunks(size)
                .map(|c| scope.spawn(move || work(c)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    summaries
        .iter()
        .zip(&which)
        .map(|(s, &w)| {
            let (p_alive, expected_visits, discounted) = per_history[w as usize];
            PatientPrediction {
                p_alive,
                expected_visits,
                clv: fit.gamma_gamma.map(|gg| {
                    gg.params()
                        .expected_average_spend(s.frequency, s.monetary_value)
                        * discounted
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn summary_in_days() {
        // Visits: Jan 1 (30.00 + 10.00), Jan 11 (5.50), Mar 1 (14.50) 2024.
        let agg = PatientAggregates::from_visits([
            (d("2024-01-01"), 3000),
            (d("2024-01-01"), 1000),
            (d("2024-01-11"), 550),
            (d("2024-03-01"), 1450),
        ])
        .unwrap();
        let s = summary_from_aggregates(&agg, d("2024-03-31"));
        // frequency 2 repeat days; recency Jan 1 -> Mar 1 = 31 + 29 = 60;
        // T = 90; monetary_value = (5.50 + 14.50) / 2 = 10.00.
        assert_eq!(
            s,
            Summary {
                frequency: 2.0,
                recency: 60.0,
                t: 90.0,
                monetary_value: 10.0
            }
        );
        let one = PatientAggregates::from_visits([(d("2024-03-31"), 100)]).unwrap();
        assert_eq!(
            summary_from_aggregates(&one, d("2024-03-31")),
            Summary {
                frequency: 0.0,
                recency: 0.0,
                t: 0.0,
                monetary_value: 0.0
            }
        );
    }

    #[test]
    fn csv_parsing() {
        let t = parse_summary_csv(
            "\u{feff}id,T,recency,frequency\r\n7,38.86,30.43,2\r\n\r\n\"8\",10,0,0\n",
        )
        .unwrap();
        assert!(!t.has_monetary);
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.rows[0].t, 38.86);
        assert_eq!(t.rows[0].recency, 30.43);
        assert_eq!(t.rows[0].frequency, 2.0);
        let t = parse_summary_csv("frequency,recency,T,monetary_value\n1,2,3,4.5\n").unwrap();
        assert!(t.has_monetary);
        assert_eq!(t.rows[0].monetary_value, 4.5);
        let e = parse_summary_csv("frequency,recency\n").unwrap_err();
        assert!(matches!(e, SummaryCsvError::MissingColumn("T")), "{e}");
        let e = parse_summary_csv("frequency,recency,T\n1,2,3\n1,x,3\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "line 3, column `recency`: `x` is not a number"
        );
        let e = parse_summary_csv("frequency,recency,T\n1,2\n").unwrap_err();
        assert!(matches!(e, SummaryCsvError::Invalid { line: 2, ref column, .. } if column == "T"));
        let e = parse_summary_csv("frequency,recency,T\n1.5,2,3\n").unwrap_err();
        assert!(matches!(e, SummaryCsvError::Invalid { ref column, .. } if column == "frequency"));
        let e = parse_summary_csv("frequency,recency,T\n1,4,3\n").unwrap_err();
        assert!(matches!(e, SummaryCsvError::Invalid { ref column, .. } if column == "T"));
        let e = parse_summary_csv("frequency,recency,T\n1,2,NaN\n").unwrap_err();
        assert!(matches!(e, SummaryCsvError::Invalid { .. }));
        assert!(matches!(
            parse_summary_csv("\n\n"),
            Err(SummaryCsvError::Empty)
        ));
        assert!(matches!(
            parse_summary_csv("T,frequency,recency,t\n"),
            Err(SummaryCsvError::DuplicateColumn(_))
        ));
        let t = read_summary_csv("frequency,recency,T\n0,0,5\n".as_bytes()).unwrap();
        assert_eq!(t.rows.len(), 1);
    }

    #[test]
    fn clv_fit_json_shape() {
        let fit = ClvFit {
            bgnbd: BgNbdFit {
                r: 1.0,
                alpha: 2.0,
                a: 3.0,
                b: 4.0,
                log_likelihood: -5.0,
                customers: 6,
                evaluations: 99,
            },
            gamma_gamma: None,
        };
        let v = serde_json::to_value(fit).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"bgnbd": {"r": 1.0, "alpha": 2.0, "a": 3.0, "b": 4.0,
                "log_likelihood": -5.0, "customers": 6}})
        );
        let with = ClvFit {
            gamma_gamma: Some(GammaGammaFit {
                p: 1.0,
                q: 2.0,
                gamma: 3.0,
                log_likelihood: -4.0,
                customers: 5,
                evaluations: 7,
            }),
            ..fit
        };
        let v = serde_json::to_value(with).unwrap();
        assert_eq!(
            v["gamma_gamma"],
            serde_json::json!({"p": 1.0, "q": 2.0, "gamma": 3.0, "log_likelihood": -4.0, "customers": 5})
        );
        let back: ClvFit = serde_json::from_value(v).unwrap();
        assert_eq!(back.gamma_gamma.map(|g| g.p), Some(1.0));
    }

    #[test]
    fn batch_predictions_equal_single_ones() {
        let fit = ClvFit {
            bgnbd: BgNbdFit {
                r: 0.6,
                alpha: 80.0,
                a: 1.2,
                b: 5.0,
                log_likelihood: 0.0,
                customers: 0,
                evaluations: 0,
            },
            gamma_gamma: Some(GammaGammaFit {
                p: 3.0,
                q: 2.5,
                gamma: 200.0,
                log_likelihood: 0.0,
                customers: 0,
                evaluations: 0,
            }),
        };
        let mut rng = crate::testutil::Rng::new(5);
        let rows: Vec<Summary> = (0..30_000)
            .map(|_| {
                let t = f64::from(rng.below(400));
                let x = f64::from(rng.below(4));
                let tx = if x > 0.0 {
                    f64::from(rng.below(t as u32 + 1))
                } else {
                    0.0
                };
                Summary {
                    frequency: x,
                    recency: tx,
                    t,
                    monetary_value: if x > 0.0 {
                        f64::from(rng.below(500))
                    } else {
                        0.0
                    },
                }
            })
            .collect();
        let settings = ClvSettings::DAYS_12_MONTHS;
        for threads in [1, 3] {
            let many = predict_many(&fit, &rows, 90.0, &settings, threads);
            for (s, p) in rows.iter().zip(&many).step_by(97) {
                let one = predict(&fit, s, 90.0, &settings);
                assert_eq!(one.p_alive, p.p_alive);
                assert_eq!(one.expected_visits, p.expected_visits);
                let (a, b) = (one.clv.unwrap(), p.clv.unwrap());
                assert!((a - b).abs() <= 1e-12 * a.abs().max(1.0), "{a} vs {b}");
            }
        }
    }
}
