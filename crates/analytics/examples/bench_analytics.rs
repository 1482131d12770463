//! Times the analytics on a million synthetic patients.
//!
//! `cargo run --release -p rapport-analytics --example bench_analytics [N]`
//!
//! Patients are simulated deterministically (xorshift, no RNG crate): first
//! visits spread over five years, BG/NBD-like visiting (gamma-distributed
//! rates, geometric dropout), and heavy-tailed spend (log-normal amounts
//! with occasional very large inpatient bills).

use std::time::Instant;

use chrono::{Days, NaiveDate};
use rapport_analytics::clv::{ClvSettings, predict, predict_many};
use rapport_analytics::{
    analyze, bgnbd, fit_clv, gamma_gamma, rfm_scores, summary_from_aggregates,
};
use rapport_domain::PatientAggregates;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn uniform(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
    /// Gamma(shape, 1) by Marsaglia & Tsang.
    fn gamma(&mut self, shape: f64) -> f64 {
        if shape < 1.0 {
            let u = self.uniform();
            return self.gamma(shape + 1.0) * u.powf(1.0 / shape);
        }
        let d = shape - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v > 0.0 && self.uniform().ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }
}

fn synthesize(n: usize, as_of: NaiveDate) -> Vec<PatientAggregates> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let span = 5 * 365;
    let start = as_of - Days::new(span);
    let mut visits: Vec<(NaiveDate, i64)> = Vec::new();
    (0..n)
        .map(|_| {
            visits.clear();
            let first = rng.next() % (span + 1);
            let age = (span - first) as f64;
            // Visit rate per day ~ Gamma(0.6) / 90, dropout ~ Beta-ish.
            let rate = rng.gamma(0.6) / 90.0;
            let drop = rng.uniform() * 0.4;
            let mut t = 0.0;
            let mut day = first;
            loop {
                // Amount: log-normal around 300.00, 2 % large bills.
                let mut amount = (30_000.0 * (0.9 * rng.normal()).exp()) as i64;
                if rng.uniform() < 0.02 {
                    amount *= 20 + (rng.next() % 80) as i64;
                }
                visits.push((start + Days::new(day), amount));
                if rng.uniform() < 0.1 {
                    // A second visit the same day (exam after consultation).
                    visits.push((start + Days::new(day), amount / 3));
                }
                t += -rng.uniform().ln() / rate.max(1e-9);
                if t > age || (visits.len() > 1 && rng.uniform() < drop) {
                    break;
                }
                day = first + t as u64;
            }
            PatientAggregates::from_sorted(&visits)
        })
        .collect()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let as_of = NaiveDate::from_ymd_opt(2026, 6, 30).expect("valid date");
    let t = Instant::now();
    let aggs = synthesize(n, as_of);
    println!(
        "synthesised {n} patients in {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let analysis = analyze(&aggs, as_of);
    let t_analyze = t.elapsed().as_secs_f64();
    println!(
        "analyze: {t_analyze:.3} s  (revenue {}, top20 {:.4}, gini {:.4}, {} cohorts, segments {:?})",
        analysis.revenue,
        analysis.top20_share,
        analysis.gini,
        analysis.cohorts.len(),
        analysis.segments
    );

    let t = Instant::now();
    let scores = rfm_scores(&aggs, as_of);
    println!(
        "rfm_scores (per-patient r, f, m, segment): {:.3} s ({} scores)",
        t.elapsed().as_secs_f64(),
        scores.len()
    );

    let t = Instant::now();
    let summaries: Vec<_> = aggs
        .iter()
        .map(|a| summary_from_aggregates(a, as_of))
        .collect();
    println!("summaries: {:.3} s", t.elapsed().as_secs_f64());

    distinct(&summaries);
    let t = Instant::now();
    let bg =
        bgnbd::fit(summaries.iter().map(|s| (s.frequency, s.recency, s.t))).expect("BG/NBD fit");
    let t_bg = t.elapsed().as_secs_f64();
    println!(
        "BG/NBD fit: {t_bg:.3} s  (r {:.4}, alpha {:.4}, a {:.4}, b {:.4}, LL {:.2}, {} evaluations)",
        bg.r, bg.alpha, bg.a, bg.b, bg.log_likelihood, bg.evaluations
    );

    let t = Instant::now();
    let gg = gamma_gamma::fit(summaries.iter().map(|s| (s.frequency, s.monetary_value)))
        .expect("Gamma-Gamma fit");
    let t_gg = t.elapsed().as_secs_f64();
    println!(
        "Gamma-Gamma fit: {t_gg:.3} s  (p {:.4}, q {:.4}, gamma {:.4}, LL {:.2}, {} customers, {} evaluations)",
        gg.p, gg.q, gg.gamma, gg.log_likelihood, gg.customers, gg.evaluations
    );
    println!("BG/NBD + Gamma-Gamma: {:.3} s", t_bg + t_gg);

    let t = Instant::now();
    let fit = fit_clv(&summaries, true).expect("fit");
    println!(
        "fit_clv (both, from summaries): {:.3} s",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut total_clv = 0.0;
    let mut total_expected = 0.0;
    for s in &summaries {
        let p = predict(&fit, s, 90.0, &ClvSettings::DAYS_12_MONTHS);
        total_expected += p.expected_visits;
        total_clv += p.clv.unwrap_or(0.0);
    }
    println!(
        "per-patient p_alive, expected_visits_90d, clv_12m one by one: {:.3} s (sum expected 90d {:.0}, sum CLV {:.0})",
        t.elapsed().as_secs_f64(),
        total_expected,
        total_clv
    );
    for threads in [1, 2] {
        let t = Instant::now();
        let all = predict_many(
            &fit,
            &summaries,
            90.0,
            &ClvSettings::DAYS_12_MONTHS,
            threads,
        );
        let clv: f64 = all.iter().map(|p| p.clv.unwrap_or(0.0)).sum();
        println!(
            "predict_many ({threads} thread(s)): {:.3} s (sum CLV {clv:.0})",
            t.elapsed().as_secs_f64()
        );
    }
}
/// Prints how far identical (x, t_x, T) histories compress.
fn distinct(summaries: &[rapport_analytics::Summary]) {
    let mut k: Vec<(u64, u64, u64)> = summaries
        .iter()
        .map(|s| {
            (
                s.frequency.to_bits(),
                if s.frequency == 0.0 {
                    0
                } else {
                    s.recency.to_bits()
                },
                s.t.to_bits(),
            )
        })
        .collect();
    k.sort_unstable();
    k.dedup();
    let zero = k.iter().filter(|x| x.0 == 0).count();
    println!("distinct triples {} (x=0: {zero})", k.len());
}
