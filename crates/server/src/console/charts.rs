//! Charts as SVG drawn on the server: no script, no library, and they
//! print. Each function returns a complete `<svg>` element with a title
//! and a description for screen readers, sized by its `viewBox` so the
//! stylesheet can make it fluid. Colours come from CSS classes, except
//! the heatmap's cells, whose shade is the value.

use std::fmt::Write;

use rapport_analytics::concentration::CurvePoint;

use super::i18n::Tr;

/// Escapes text for SVG/HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn open(out: &mut String, id: &str, w: u32, h: u32, title: &str, desc: &str) {
    let _ = write!(
        out,
        r#"<svg class="chart" id="{id}" viewBox="0 0 {w} {h}" role="img" aria-labelledby="{id}-t {id}-d" xmlns="http://www.w3.org/2000/svg"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(title),
        esc(desc)
    );
}

/// A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten.
pub fn nice_max(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if v <= m * p {
            return m * p;
        }
    }
    10.0 * p
}

/// One month of the revenue and visits chart.
pub struct MonthBar {
    /// `YYYY-MM`.
    pub month: String,
    pub revenue_minor: i64,
    pub visits: i64,
}

/// Revenue per month as bars, visits as a line (right axis).
pub fn months(tr: Tr, id: &str, title: &str, data: &[MonthBar]) -> String {
    let (w, h) = (720.0, 280.0);
    let (left, right, top, bottom) = (64.0, 56.0, 16.0, 40.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    let max_rev = nice_max(
        data.iter()
            .map(|m| m.revenue_minor as f64)
            .fold(0.0, f64::max),
    );
    let max_vis = nice_max(data.iter().map(|m| m.visits as f64).fold(0.0, f64::max));
    let desc = match (data.first(), data.last()) {
        (Some(a), Some(b)) => format!(
            "{} – {}: {} {}, {} {}",
            tr.month(&a.month, false),
            tr.month(&b.month, false),
            tr.t("chart-revenue"),
            tr.money_short(
                data.iter()
                    .map(|m| i128::from(m.revenue_minor))
                    .sum::<i128>()
            ),
            tr.t("chart-visits"),
            tr.num(data.iter().map(|m| m.visits).sum::<i64>()),
        ),
        _ => tr.t("empty-no-visits"),
    };
    let mut s = String::new();
    open(&mut s, id, w as u32, h as u32, title, &desc);
    // Grid and axes.
    for i in 0..=4 {
        let y = top + ph - ph * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text><text class="axis" x="{}" y="{:.1}">{}</text>"#,
            w - right,
            left - 6.0,
            y + 4.0,
            esc(&tr.money_short((max_rev * f64::from(i) / 4.0) as i64)),
            w - right + 6.0,
            y + 4.0,
            esc(&tr.compact(max_vis * f64::from(i) / 4.0)),
        );
    }
    let n = data.len().max(1) as f64;
    let slot = pw / n;
    let bar = (slot * 0.64).max(1.0);
    let mut line = String::new();
    for (i, m) in data.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let bh = ph * m.revenue_minor as f64 / max_rev;
        let y = top + ph - bh;
        let _ = write!(
            s,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" rx="2"><title>{}: {} · {} {}</title></rect>"#,
            esc(&tr.month(&m.month, false)),
            esc(&tr.money(m.revenue_minor)),
            esc(&tr.num(m.visits)),
            esc(&tr.t("chart-visits")),
        );
        let cx = left + slot * (i as f64 + 0.5);
        let cy = top + ph - ph * m.visits as f64 / max_vis;
        let _ = write!(line, "{}{cx:.1},{cy:.1}", if i == 0 { "M" } else { " L" });
        let every = (data.len() / 8).max(1);
        if i % every == 0 || i + 1 == data.len() {
            let _ = write!(
                s,
                r#"<text class="axis" x="{cx:.1}" y="{}" text-anchor="middle">{}</text>"#,
                h - bottom + 18.0,
                esc(&tr.month(&m.month, true))
            );
        }
    }
    if !line.is_empty() {
        let _ = write!(s, r#"<path class="line" d="{line}" fill="none"/>"#);
    }
    // Legend.
    let _ = write!(
        s,
        r#"<g class="legend" transform="translate({left},{})"><rect class="bar" width="10" height="10" y="-9"/><text x="14">{}</text><line class="line" x1="110" x2="128" y1="-4" y2="-4"/><text x="134">{}</text></g>"#,
        h - 6.0,
        esc(&tr.t("chart-revenue")),
        esc(&tr.t("chart-visits")),
    );
    s.push_str("</svg>");
    s
}

/// One bar of a horizontal bar chart.
pub struct HBar {
    pub label: String,
    pub value: u64,
    /// A CSS class for its colour (`seg-champions`).
    pub class: String,
    /// Extra text after the value (a share).
    pub note: String,
}

/// Horizontal bars, largest scale first, one per row.
pub fn hbars(tr: Tr, id: &str, title: &str, data: &[HBar]) -> String {
    let row = 30.0;
    let (w, label_w, value_w) = (480.0, 150.0, 150.0);
    let h = row * data.len().max(1) as f64 + 8.0;
    let max = data.iter().map(|b| b.value).max().unwrap_or(0).max(1) as f64;
    let desc = data
        .iter()
        .map(|b| format!("{} {}", b.label, tr.num(b.value as i64)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = String::new();
    open(&mut s, id, w as u32, h as u32, title, &desc);
    for (i, b) in data.iter().enumerate() {
        let y = 4.0 + row * i as f64;
        let bw = (w - label_w - value_w) * b.value as f64 / max;
        let _ = write!(
            s,
            r#"<text class="label" x="{}" y="{:.1}" text-anchor="end">{}</text><rect class="hbar {}" x="{label_w}" y="{:.1}" width="{bw:.1}" height="{:.1}" rx="3"><title>{}: {} {}</title></rect><text class="value" x="{:.1}" y="{:.1}">{} <tspan class="muted">{}</tspan></text>"#,
            label_w - 10.0,
            y + row / 2.0 + 4.0,
            esc(&b.label),
            esc(&b.class),
            y + 5.0,
            row - 10.0,
            esc(&b.label),
            esc(&tr.num(b.value as i64)),
            esc(&b.note),
            label_w + bw + 8.0,
            y + row / 2.0 + 4.0,
            esc(&tr.num(b.value as i64)),
            esc(&b.note),
        );
    }
    s.push_str("</svg>");
    s
}

/// The Pareto (Lorenz-style) curve: share of revenue held by the top
/// share of patients, with the equality line and the 80/20 point marked.
pub fn pareto(tr: Tr, id: &str, title: &str, curve: &[CurvePoint], top20: f64) -> String {
    let (w, h) = (360.0, 300.0);
    let (left, top, size_w, size_h) = (48.0, 12.0, 296.0, 244.0);
    let x = |p: f64| left + size_w * p;
    let y = |r: f64| top + size_h * (1.0 - r);
    let desc = tr.t1("chart-pareto-desc", "share", tr.pct(top20, 0));
    let mut s = String::new();
    open(&mut s, id, w as u32, h as u32, title, &desc);
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text class="axis" x="{:.1}" y="{:.1}" text-anchor="end">{}</text><text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(1.0),
            y(f),
            y(f),
            left - 6.0,
            y(f) + 4.0,
            esc(&tr.pct(f, 0)),
            x(f),
            top + size_h + 16.0,
            esc(&tr.pct(f, 0)),
        );
    }
    let _ = write!(
        s,
        r#"<line class="equality" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}"/>"#,
        x(0.0),
        y(0.0),
        x(1.0),
        y(1.0)
    );
    let mut d = String::new();
    for (i, p) in curve.iter().enumerate() {
        let _ = write!(
            d,
            "{}{:.1},{:.1}",
            if i == 0 { "M" } else { " L" },
            x(p.patient_share),
            y(p.revenue_share)
        );
    }
    if !d.is_empty() {
        let _ = write!(
            s,
            r#"<path class="area" d="{d} L{:.1},{:.1} Z"/><path class="line" d="{d}" fill="none"/>"#,
            x(1.0),
            y(0.0)
        );
    }
    // The 80/20 point: the top 20 % of patients and their share.
    let (px, py) = (x(0.2), y(top20));
    let _ = write!(
        s,
        r#"<line class="marker-line" x1="{px:.1}" x2="{px:.1}" y1="{:.1}" y2="{py:.1}"/><line class="marker-line" x1="{left}" x2="{px:.1}" y1="{py:.1}" y2="{py:.1}"/><circle class="marker" cx="{px:.1}" cy="{py:.1}" r="5"><title>{}</title></circle><text class="marker-label" x="{:.1}" y="{:.1}">{}</text>"#,
        y(0.0),
        esc(&desc),
        px + 8.0,
        py + 16.0,
        esc(&tr.t1("chart-pareto-point", "share", tr.pct(top20, 0))),
    );
    let _ = write!(
        s,
        r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
        x(0.5),
        h - 4.0,
        esc(&tr.t("chart-pareto-x"))
    );
    s.push_str("</svg>");
    s
}

/// One cohort row of the heatmap.
pub struct CohortLine {
    pub cohort: String,
    pub size: u64,
    pub retention: Vec<Option<f64>>,
}

/// Cohort retention as a heatmap: a row per cohort month, a column per
/// month since the first visit, the shade and the text the share.
pub fn cohorts(tr: Tr, id: &str, title: &str, rows: &[CohortLine]) -> String {
    let cols = 12usize;
    let (label_w, size_w, cell_w, cell_h, head) = (96.0, 72.0, 50.0, 24.0, 24.0);
    let w = label_w + size_w + cell_w * cols as f64 + 4.0;
    let h = head + cell_h * rows.len().max(1) as f64 + 4.0;
    let mut s = String::new();
    open(
        &mut s,
        id,
        w as u32,
        h as u32,
        title,
        &tr.t("chart-cohorts-desc"),
    );
    let _ = write!(
        s,
        r#"<text class="axis" x="{}" y="16" text-anchor="end">{}</text>"#,
        label_w + size_w - 8.0,
        esc(&tr.t("chart-cohort-size"))
    );
    for k in 0..cols {
        let _ = write!(
            s,
            r#"<text class="axis" x="{:.1}" y="16" text-anchor="middle">{}</text>"#,
            label_w + size_w + cell_w * (k as f64 + 0.5),
            esc(&tr.t1("chart-month-offset", "k", k as i64))
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = head + cell_h * i as f64;
        let _ = write!(
            s,
            r#"<text class="label" x="{}" y="{:.1}" text-anchor="end">{}</text><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            label_w - 8.0,
            y + 16.0,
            esc(&tr.month(&r.cohort, false)),
            label_w + size_w - 8.0,
            y + 16.0,
            esc(&tr.num(r.size as i64)),
        );
        for k in 0..cols {
            let x = label_w + size_w + cell_w * k as f64;
            match r.retention.get(k).copied().flatten() {
                Some(v) => {
                    // Shade: from a pale to a deep teal, by the square
                    // root so that small shares stay visible.
                    let t = v.clamp(0.0, 1.0).sqrt();
                    let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
                    let fill = format!(
                        "#{:02x}{:02x}{:02x}",
                        mix(236.0, 15.0),
                        mix(246.0, 118.0),
                        mix(245.0, 110.0)
                    );
                    let ink = if t > 0.55 { "ink-light" } else { "ink-dark" };
                    let _ = write!(
                        s,
                        r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{fill}" rx="2"><title>{} +{k}: {}</title></rect><text class="cell {ink}" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                        cell_w - 2.0,
                        cell_h - 2.0,
                        esc(&tr.month(&r.cohort, false)),
                        esc(&tr.pct(v, 1)),
                        x + cell_w / 2.0 - 1.0,
                        y + 16.0,
                        esc(&tr.pct(v, 0)),
                    );
                }
                None => {
                    let _ = write!(
                        s,
                        r#"<rect class="cell-empty" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" rx="2"/>"#,
                        cell_w - 2.0,
                        cell_h - 2.0,
                    );
                }
            }
        }
    }
    s.push_str("</svg>");
    s
}

/// One stacked column: a month and its parts, in legend order.
pub struct StackedMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub parts: Vec<u64>,
}

/// Columns per month, each split into parts (members per tier), with a
/// legend naming the parts and a CSS class per part (`tier-1`…).
pub fn stacked_months(
    tr: Tr,
    id: &str,
    title: &str,
    legend: &[(String, String)],
    data: &[StackedMonth],
) -> String {
    let (w, h) = (720.0, 280.0);
    let (left, right, top, bottom) = (56.0, 16.0, 16.0, 56.0);
    let pw = w - left - right;
    let ph = h - top - bottom;
    // Counts of people: a scale whose quarters are whole numbers.
    let max = nice_max(
        data.iter()
            .map(|m| m.parts.iter().sum::<u64>() as f64)
            .fold(0.0, f64::max),
    )
    .max(4.0);
    let max = if max < 40.0 {
        (max / 4.0).ceil() * 4.0
    } else {
        max
    };
    let desc = data
        .iter()
        .map(|m| {
            let parts = legend
                .iter()
                .zip(&m.parts)
                .map(|((name, _), n)| format!("{name} {}", tr.num(*n as i64)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("{}: {parts}", tr.month(&m.month, false))
        })
        .collect::<Vec<_>>()
        .join("; ");
    let mut s = String::new();
    open(&mut s, id, w as u32, h as u32, title, &desc);
    for i in 0..=4 {
        let y = top + ph - ph * f64::from(i) / 4.0;
        let _ = write!(
            s,
            r#"<line class="grid" x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            w - right,
            left - 6.0,
            y + 4.0,
            esc(&tr.compact(max * f64::from(i) / 4.0)),
        );
    }
    let n = data.len().max(1) as f64;
    let slot = pw / n;
    let bar = (slot * 0.64).max(1.0);
    for (i, m) in data.iter().enumerate() {
        let x = left + slot * i as f64 + (slot - bar) / 2.0;
        let mut base = top + ph;
        for ((name, class), v) in legend.iter().zip(&m.parts) {
            let bh = ph * *v as f64 / max;
            base -= bh;
            let _ = write!(
                s,
                r#"<rect class="{}" x="{x:.1}" y="{base:.1}" width="{bar:.1}" height="{bh:.1}"><title>{}: {} {}</title></rect>"#,
                esc(class),
                esc(&tr.month(&m.month, false)),
                esc(name),
                esc(&tr.num(*v as i64)),
            );
        }
        let every = (data.len() / 8).max(1);
        if i % every == 0 || i + 1 == data.len() {
            let _ = write!(
                s,
                r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
                left + slot * (i as f64 + 0.5),
                h - bottom + 18.0,
                esc(&tr.month(&m.month, true))
            );
        }
    }
    let mut lx = left;
    for (name, class) in legend {
        let _ = write!(
            s,
            r#"<g class="legend" transform="translate({lx:.1},{})"><rect class="{}" width="10" height="10" y="-9"/><text x="14">{}</text></g>"#,
            h - 8.0,
            esc(class),
            esc(name),
        );
        lx += 24.0 + 8.0 * name.chars().count() as f64;
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::i18n::Locale;

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(180.0), 200.0);
        assert_eq!(nice_max(2400.0), 2500.0);
    }

    #[test]
    fn charts_are_wellformed_and_escaped() {
        let tr = Tr::new(Locale::En);
        let m = months(
            tr,
            "m",
            "A <title>",
            &[
                MonthBar {
                    month: "2026-01".into(),
                    revenue_minor: 10_000,
                    visits: 3,
                },
                MonthBar {
                    month: "2026-02".into(),
                    revenue_minor: 5_000,
                    visits: 5,
                },
            ],
        );
        assert!(m.starts_with("<svg") && m.ends_with("</svg>"));
        assert!(m.contains("A &lt;title&gt;"));
        assert_eq!(
            m.matches("<rect class=\"bar\"").count(),
            3,
            "two months and the legend"
        );
        let p = pareto(
            tr,
            "p",
            "P",
            &[
                CurvePoint {
                    patient_share: 0.0,
                    revenue_share: 0.0,
                },
                CurvePoint {
                    patient_share: 1.0,
                    revenue_share: 1.0,
                },
            ],
            0.8,
        );
        assert!(p.contains("class=\"marker\""));
        let c = cohorts(
            tr,
            "c",
            "C",
            &[CohortLine {
                cohort: "2026-01".into(),
                size: 10,
                retention: vec![Some(1.0), Some(0.2), None],
            }],
        );
        assert_eq!(c.matches("cell-empty").count(), 10);
        assert!(c.contains(">20%<"));
    }
}
