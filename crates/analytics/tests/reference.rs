//! The figures of `shared/data` reproduced from the data: CDNOW fits and
//! predictions against `lifetimes` 0.11.3, A/B tests against scipy /
//! statsmodels. Reference values are read from the JSON files, never typed
//! in here, except where `shared/data/README.md` states them.

use rapport_analytics::abtest::{
    sample_size_per_arm, sample_size_per_arm_arcsine, two_proportion_ztest,
};
use rapport_analytics::bgnbd::{self, BgNbdParams};
use rapport_analytics::clv::{ClvSettings, customer_lifetime_value, fit_summary_table};
use rapport_analytics::gamma_gamma::{self, GammaGammaParams};
use rapport_analytics::{SummaryTable, parse_summary_csv};
use std::collections::BTreeMap;

use chrono::NaiveDate;
use rapport_analytics::summary_from_aggregates;
use rapport_domain::PatientAggregates;
use serde_json::Value;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/");

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{DATA}{path}"))
        .unwrap_or_else(|e| panic!("reading {DATA}{path}: {e}"))
}

fn json(path: &str) -> Value {
    serde_json::from_str(&read(path)).expect("valid JSON")
}

fn table(path: &str) -> SummaryTable {
    parse_summary_csv(&read(path)).expect("valid summary CSV")
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// `got` equals `want` to `digits` significant digits (relative error
/// below half a unit of the last digit).
fn assert_sig(got: f64, want: f64, digits: i32, what: &str) {
    let tol = 0.5 * 10f64.powi(1 - digits) * want.abs();
    assert!(
        (got - want).abs() <= tol,
        "{what}: got {got}, want {want} ({digits} significant digits)"
    );
}

fn assert_rel(got: f64, want: f64, rel: f64, what: &str) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "{what}: got {got}, want {want} (relative {:e})",
        ((got - want) / want).abs()
    );
}

fn bgnbd_reference() -> (Value, BgNbdParams) {
    let r = json("reference/cdnow_lifetimes_results.json");
    let p = &r["bgnbd"]["params"];
    let params = BgNbdParams {
        r: num(&p["r"]),
        alpha: num(&p["alpha"]),
        a: num(&p["a"]),
        b: num(&p["b"]),
    };
    (r, params)
}

fn gamma_gamma_reference(r: &Value) -> GammaGammaParams {
    let p = &r["gamma_gamma"]["params"];
    GammaGammaParams {
        p: num(&p["p"]),
        q: num(&p["q"]),
        gamma: num(&p["v"]),
    }
}

#[test]
fn bgnbd_fit_on_cdnow() {
    let (reference, want) = bgnbd_reference();
    let t = table("cdnow/cdnow_customers_summary.csv");
    assert!(!t.has_monetary);
    let fit = fit_summary_table(&t).expect("fit");
    assert!(fit.gamma_gamma.is_none());
    // README: r = 0.2426, alpha = 4.4135, a = 0.7929, b = 2.4258 ...
    assert_sig(fit.bgnbd.r, 0.2426, 4, "r");
    assert_sig(fit.bgnbd.alpha, 4.4135, 5, "alpha");
    assert_sig(fit.bgnbd.a, 0.7929, 4, "a");
    assert_sig(fit.bgnbd.b, 2.4258, 5, "b");
    // ... and much closer to lifetimes' own optimum than that.
    assert_rel(fit.bgnbd.r, want.r, 1e-5, "r vs lifetimes");
    assert_rel(fit.bgnbd.alpha, want.alpha, 1e-5, "alpha vs lifetimes");
    assert_rel(fit.bgnbd.a, want.a, 1e-5, "a vs lifetimes");
    assert_rel(fit.bgnbd.b, want.b, 1e-5, "b vs lifetimes");
    // Total log-likelihood (paper eq. 6): -9582.43.
    assert!(
        (fit.bgnbd.log_likelihood - (-9582.43)).abs() < 0.01,
        "{}",
        fit.bgnbd.log_likelihood
    );
    let eq6 = num(&reference["bgnbd"]["total_ll_recomputed_eq6"]);
    assert!(
        (fit.bgnbd.log_likelihood - eq6).abs() < 1e-6,
        "{} vs {eq6}",
        fit.bgnbd.log_likelihood
    );
    assert_eq!(
        fit.bgnbd.customers,
        reference["bgnbd"]["n_customers"].as_u64().unwrap()
    );
    assert_eq!(fit.bgnbd.customers as usize, t.rows.len());
}

#[test]
fn bgnbd_likelihood_at_published_parameters() {
    let (reference, _) = bgnbd_reference();
    let t = table("cdnow/cdnow_customers_summary.csv");
    // The published estimates of the 2005 paper.
    let published = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    let ll = bgnbd::total_log_likelihood(
        &published,
        t.rows.iter().map(|s| (s.frequency, s.recency, s.t)),
    );
    let want = num(&reference["bgnbd"]["total_ll_at_published_params"]);
    assert!((ll - want).abs() < 1e-8, "{ll} vs {want}");
}

#[test]
fn bgnbd_predictions_match_lifetimes() {
    let (reference, params) = bgnbd_reference();
    let b = &reference["bgnbd"];
    for c in b["customers_1_10"].as_array().expect("customers") {
        let (x, tx, t) = (num(&c["frequency"]), num(&c["recency"]), num(&c["T"]));
        let id = &c["ID"];
        // The JSON rounds to six decimals.
        for (h, key) in [
            (1.0, "E_purchases_next_1wk"),
            (10.0, "E_purchases_next_10wk"),
            (39.0, "E_purchases_next_39wk"),
        ] {
            let got = params.expected_purchases(h, x, tx, t);
            assert!(
                (got - num(&c[key])).abs() <= 5e-7,
                "customer {id} {key}: {got} vs {}",
                c[key]
            );
        }
        let pa = params.p_alive(x, tx, t);
        assert!(
            (pa - num(&c["P_alive"])).abs() <= 5e-7,
            "customer {id} P_alive: {pa} vs {}",
            c["P_alive"]
        );
    }
    // Unrounded check value.
    let got = params.expected_purchases(39.0, 2.0, 30.43, 38.86);
    assert_rel(
        got,
        num(&b["check_cond_exp_x2_tx30.43_T38.86_t39"]),
        1e-12,
        "E[Y(39)] customer 1",
    );
    // Expected purchases of a new customer, E[X(t)].
    for (t, want) in b["check_E_X_t"].as_object().expect("E_X_t") {
        let t: f64 = t.parse().expect("horizon");
        assert_rel(
            params.expected_purchases_new(t),
            num(want),
            1e-12,
            &format!("E[X({t})]"),
        );
    }
    // Summed over every customer.
    let table = table("cdnow/cdnow_customers_summary.csv");
    let sum: f64 = table
        .rows
        .iter()
        .map(|s| params.expected_purchases(39.0, s.frequency, s.recency, s.t))
        .sum();
    assert_rel(
        sum,
        num(&b["sum_E_Y39_all_customers"]),
        1e-11,
        "sum of E[Y(39)]",
    );
}

#[test]
fn bgnbd_customer_1_with_our_own_fit() {
    // README: customer 1 (2, 30.43, 38.86): 1.2259 purchases in 39 weeks,
    // P(alive) 0.7266, with the parameters fitted here.
    let fit = fit_summary_table(&table("cdnow/cdnow_customers_summary.csv")).expect("fit");
    let p = fit.bgnbd.params();
    assert_sig(
        p.expected_purchases(39.0, 2.0, 30.43, 38.86),
        1.2259,
        5,
        "E[Y(39)]",
    );
    assert_sig(p.p_alive(2.0, 30.43, 38.86), 0.7266, 4, "P(alive)");
}

#[test]
fn bgnbd_figures_at_published_parameters() {
    let (reference, _) = bgnbd_reference();
    let at = &reference["bgnbd"]["at_published_params"];
    let p = BgNbdParams {
        r: 0.243,
        alpha: 4.414,
        a: 0.793,
        b: 2.426,
    };
    assert_rel(
        p.prob_purchases(2.0, 10),
        num(&at["P(X(2)=10)"]),
        1e-10,
        "P(X(2)=10)",
    );
    assert_rel(
        p.prob_purchases(39.0, 0),
        num(&at["P(X(39)=0)"]),
        1e-12,
        "P(X(39)=0)",
    );
    assert_rel(
        p.expected_purchases(39.0, 2.0, 30.43, 38.86),
        num(&at["E[Y(39)|x=2,tx=30.43,T=38.86]"]),
        1e-12,
        "E[Y]",
    );
    assert_rel(
        p.expected_purchases(39.0, 7.0, 29.43, 38.86),
        num(&at["E[Y(39)|x=7,tx=29.43,T=38.86]"]),
        1e-12,
        "E[Y] x=7",
    );
    assert_rel(
        p.expected_purchases(39.0, 0.0, 0.0, 38.86),
        num(&at["E[Y(39)|x=0,tx=0,T=38.86]"]),
        1e-12,
        "E[Y] x=0",
    );
    assert_rel(
        p.p_alive(2.0, 30.43, 38.86),
        num(&at["P_alive(x=2,tx=30.43,T=38.86)"]),
        1e-12,
        "P_alive",
    );
    assert_rel(
        p.p_alive(7.0, 29.43, 38.86),
        num(&at["P_alive(x=7,tx=29.43,T=38.86)"]),
        1e-12,
        "P_alive x=7",
    );
    // The probabilities of 0..=200 purchases in 39 weeks sum to 1 and their
    // mean is E[X(39)].
    let probs: Vec<f64> = (0..=200).map(|n| p.prob_purchases(39.0, n)).collect();
    let total: f64 = probs.iter().sum();
    let mean: f64 = probs.iter().enumerate().map(|(n, q)| n as f64 * q).sum();
    assert!((total - 1.0).abs() < 1e-9, "{total}");
    assert_rel(
        mean,
        p.expected_purchases_new(39.0),
        1e-8,
        "mean of P(X(39)=n)",
    );
}

/// The CDNOW transactions by customer ("id in sample"), amounts in cents.
fn cdnow_transactions() -> BTreeMap<u32, Vec<(NaiveDate, i64)>> {
    let mut out: BTreeMap<u32, Vec<(NaiveDate, i64)>> = BTreeMap::new();
    for line in read("cdnow/CDNOW_sample.txt")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split_whitespace().collect();
        let id: u32 = f[1].parse().expect("id");
        let date = NaiveDate::parse_from_str(f[2], "%Y%m%d").expect("date");
        let (dollars, cents) = f[4].split_once('.').expect("two decimals");
        let amount =
            dollars.parse::<i64>().expect("dollars") * 100 + cents.parse::<i64>().expect("cents");
        out.entry(id).or_default().push((date, amount));
    }
    out
}

fn calibration_end() -> NaiveDate {
    NaiveDate::from_ymd_opt(1997, 9, 30).expect("date")
}

#[test]
fn summaries_from_raw_transactions_match_the_published_summary() {
    // PatientAggregates over the calibration period (to 1997-09-30), then
    // summary_from_aggregates in days: divided by 7 it is the weekly
    // summary shipped with lifetimes (rounded there to two decimals), and
    // the repeat-day mean spend is its monetary_value.
    let tx = cdnow_transactions();
    let published = table("cdnow/cdnow_summary_with_monetary.csv").rows;
    assert_eq!(tx.len(), published.len());
    let end = calibration_end();
    let mut day_rows = Vec::new();
    for ((_, visits), want) in tx.iter().zip(&published) {
        let calib: Vec<(NaiveDate, i64)> = visits.iter().copied().filter(|v| v.0 <= end).collect();
        let agg = PatientAggregates::from_visits(calib).expect("at least the first purchase");
        let s = summary_from_aggregates(&agg, end);
        assert_eq!(s.frequency, want.frequency);
        assert!(
            (s.recency / 7.0 - want.recency).abs() <= 0.005 + 1e-9,
            "{s:?} vs {want:?}"
        );
        assert!(
            (s.t / 7.0 - want.t).abs() <= 0.005 + 1e-9,
            "{s:?} vs {want:?}"
        );
        assert!(
            (s.monetary_value - want.monetary_value).abs() <= 0.005 + 1e-9,
            "{s:?} vs {want:?}"
        );
        day_rows.push(s);
    }
    // The same model in days: r is unit-free, alpha is in days (about 7x
    // the weekly one; the weekly data are rounded, hence the tolerance), and
    // the likelihood differs by sum(x) ln 7 plus the rounding.
    let fit = rapport_analytics::fit_clv(&day_rows, true).expect("fit in days");
    let weekly =
        fit_summary_table(&table("cdnow/cdnow_summary_with_monetary.csv")).expect("fit in weeks");
    assert_rel(fit.bgnbd.r, weekly.bgnbd.r, 2e-3, "r in days");
    assert_rel(
        fit.bgnbd.alpha / 7.0,
        weekly.bgnbd.alpha,
        2e-3,
        "alpha in days / 7",
    );
    assert_rel(fit.bgnbd.a, weekly.bgnbd.a, 2e-3, "a in days");
    assert_rel(fit.bgnbd.b, weekly.bgnbd.b, 2e-3, "b in days");
    let gg = fit.gamma_gamma.expect("monetary");
    let gw = weekly.gamma_gamma.expect("monetary");
    assert_rel(gg.p, gw.p, 1e-3, "p");
    assert_rel(gg.gamma, gw.gamma, 1e-3, "gamma");
}

#[test]
fn bgnbd_cumulative_repeat_forecast_of_the_paper() {
    // Cumulative repeat purchases of the cohort forecast for week 39 (the
    // end of calibration) and week 78: each customer, born at week
    // w = (first purchase - 1997-01-01) / 7, contributes E[X(39 - w)] and
    // E[X(78 - w)].
    let checks = json("reference/cdnow_paper_checks.json");
    let (_, reference) = bgnbd_reference();
    let own = fit_summary_table(&table("cdnow/cdnow_customers_summary.csv"))
        .expect("fit")
        .bgnbd
        .params();
    let start = NaiveDate::from_ymd_opt(1997, 1, 1).expect("date");
    let births: Vec<f64> = cdnow_transactions()
        .values()
        .map(|v| {
            let first = v.iter().map(|t| t.0).min().expect("a purchase");
            (first - start).num_days() as f64 / 7.0
        })
        .collect();
    for (params, tol) in [(reference, 1e-11), (own, 1e-6)] {
        let week39: f64 = births
            .iter()
            .map(|w| params.expected_purchases_new(39.0 - w))
            .sum();
        let week78: f64 = births
            .iter()
            .map(|w| params.expected_purchases_new(78.0 - w))
            .sum();
        assert_rel(
            week39,
            num(&checks["cum_repeat_week39_pred"]),
            tol,
            "week 39",
        );
        assert_rel(
            week78,
            num(&checks["cum_repeat_week78_pred"]),
            tol,
            "week 78",
        );
    }
}

#[test]
fn gamma_gamma_fit_on_cdnow() {
    let (reference, _) = bgnbd_reference();
    let want = gamma_gamma_reference(&reference);
    let t = table("cdnow/cdnow_summary_with_monetary.csv");
    assert!(t.has_monetary);
    let fit = fit_summary_table(&t).expect("fit");
    let gg = fit.gamma_gamma.expect("monetary values are known");
    // README: p = 6.2488, q = 3.7446, gamma = 15.4477.
    assert_sig(gg.p, 6.2488, 5, "p");
    assert_sig(gg.q, 3.7446, 5, "q");
    assert_sig(gg.gamma, 15.4477, 6, "gamma");
    assert_rel(gg.p, want.p, 1e-6, "p vs lifetimes");
    assert_rel(gg.q, want.q, 1e-6, "q vs lifetimes");
    assert_rel(gg.gamma, want.gamma, 1e-6, "gamma vs lifetimes");
    let g = &reference["gamma_gamma"];
    assert_eq!(gg.customers, g["n_repeat_customers"].as_u64().unwrap());
    assert!((gg.log_likelihood - num(&g["total_ll_from_lifetimes"])).abs() < 1e-6);
    // The BG/NBD part is the same as on the file without monetary values.
    assert_sig(fit.bgnbd.r, 0.2426, 4, "r");
    // Direct sum of the per-customer likelihoods agrees.
    let direct = gamma_gamma::total_log_likelihood(
        &gg.params(),
        t.rows.iter().map(|s| (s.frequency, s.monetary_value)),
    );
    assert!((direct - gg.log_likelihood).abs() < 1e-8);
}

#[test]
fn gamma_gamma_expected_spend_matches_lifetimes() {
    let (reference, _) = bgnbd_reference();
    let gg = gamma_gamma_reference(&reference);
    let g = &reference["gamma_gamma"];
    let rows = table("cdnow/cdnow_summary_with_monetary.csv").rows;
    for (id, want) in g["cond_exp_avg_profit_customers_1_10"]
        .as_object()
        .expect("map")
    {
        let i: usize = id.parse().expect("id");
        let s = rows[i - 1];
        let got = gg.expected_average_spend(s.frequency, s.monetary_value);
        assert!(
            (got - num(want)).abs() <= 5e-7,
            "customer {id}: {got} vs {want}"
        );
    }
    let mean = rows
        .iter()
        .map(|s| gg.expected_average_spend(s.frequency, s.monetary_value))
        .sum::<f64>()
        / rows.len() as f64;
    assert_rel(
        mean,
        num(&g["cond_exp_avg_profit_mean_all"]),
        1e-12,
        "mean expected spend",
    );
}

#[test]
fn lifetime_value_in_weeks_matches_lifetimes() {
    let (reference, bg) = bgnbd_reference();
    let gg = gamma_gamma_reference(&reference);
    let clv = &reference["clv"];
    assert!(clv["settings"].as_str().unwrap().contains("freq='W'"));
    // Week data: a month is 4.345 weeks (lifetimes' factor for freq='W').
    let settings = ClvSettings {
        months: 12,
        monthly_discount: 0.01,
        periods_per_month: 4.345,
    };
    let rows = table("cdnow/cdnow_summary_with_monetary.csv").rows;
    for (id, want) in clv["customers_1_10"].as_object().expect("map") {
        let i: usize = id.parse().expect("id");
        let got = customer_lifetime_value(&bg, &gg, &rows[i - 1], &settings);
        assert!(
            (got - num(want)).abs() <= 5e-7,
            "customer {id}: {got} vs {want}"
        );
    }
    let sum: f64 = rows
        .iter()
        .map(|s| customer_lifetime_value(&bg, &gg, s, &settings))
        .sum();
    assert_rel(sum, num(&clv["sum_all"]), 1e-10, "sum of CLV");
}

#[test]
fn ab_test_matches_scipy_and_statsmodels() {
    let r = json("reference/abtest_scipy_statsmodels.json");
    let z = &r["ztest_250of1000_vs_200of1000"];
    let t = two_proportion_ztest(250, 1000, 200, 1000).expect("valid counts");
    let sm = z["statsmodels_proportions_ztest"].as_array().expect("pair");
    assert_rel(t.z, num(&sm[0]), 1e-13, "z");
    assert_rel(t.p_value, num(&sm[1]), 1e-12, "p");
    assert_rel(t.z, num(&z["z_manual_pooled"]), 1e-13, "z");
    // README: z = 2.677398, p = 0.0074196.
    assert!((t.z - 2.677398).abs() < 5e-7 && (t.p_value - 0.0074196).abs() < 5e-8);
    // The chi-square test without continuity correction is the square of
    // the pooled z-test, with the same p-value.
    let chi2 = &z["chi2_contingency_no_yates"];
    assert_rel(t.z * t.z, num(&chi2["chi2"]), 1e-13, "chi2 = z^2");
    assert_rel(t.p_value, num(&chi2["p"]), 1e-12, "chi2 p");
    let ci = z["wald_ci95_diff"].as_array().expect("pair");
    assert_rel(t.ci_low, num(&ci[0]), 1e-12, "Wald low");
    assert_rel(t.ci_high, num(&ci[1]), 1e-12, "Wald high");
    assert_eq!(t.difference, 0.25 - 0.2);
    let ss = &r["sample_size_20_to_25"];
    let pooled = sample_size_per_arm(0.20, 0.05, 0.05, 0.8).expect("valid design");
    assert_rel(
        pooled,
        num(&ss["n_per_arm_pooled_normal_formula"]),
        1e-12,
        "pooled sample size",
    );
    let arcsine = sample_size_per_arm_arcsine(0.20, 0.05, 0.05, 0.8).expect("valid design");
    assert_rel(
        arcsine,
        num(&ss["n_per_arm_arcsine(statsmodels NormalIndPower)"]),
        1e-8,
        "arcsine sample size",
    );
}
