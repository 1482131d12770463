//! The console's languages: Fluent messages (`locales/*.ftl`, embedded),
//! the locale of a request, and numbers, money and dates written the way
//! each locale writes them. Templates call [`Tr::t`] with a message id;
//! a test checks that every id used exists in every language.

use std::sync::LazyLock;

use axum::http::{HeaderMap, header};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

/// A language of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Locale {
    ZhCn,
    En,
    Es,
}

impl Locale {
    pub const ALL: [Locale; 3] = [Locale::ZhCn, Locale::En, Locale::Es];

    /// The BCP 47 tag (`lang` attribute, stored choice).
    pub fn code(self) -> &'static str {
        match self {
            Locale::ZhCn => "zh-CN",
            Locale::En => "en",
            Locale::Es => "es",
        }
    }

    /// The language's own name, for the switch.
    pub fn native_name(self) -> &'static str {
        match self {
            Locale::ZhCn => "中文（简体）",
            Locale::En => "English",
            Locale::Es => "Español",
        }
    }

    pub fn from_code(s: &str) -> Option<Locale> {
        Locale::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(s.trim()))
    }

    /// The locale for a language range of `Accept-Language` (`zh-TW`
    /// still reads Chinese; `es-MX` Spanish).
    fn from_range(range: &str) -> Option<Locale> {
        let primary = range.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "zh" => Some(Locale::ZhCn),
            "en" => Some(Locale::En),
            "es" => Some(Locale::Es),
            _ => None,
        }
    }

    /// The best of our locales for an `Accept-Language` header (by `q`,
    /// then order), or `None`.
    pub fn negotiate(accept: &str) -> Option<Locale> {
        let mut best: Option<(f32, usize, Locale)> = None;
        for (i, item) in accept.split(',').enumerate() {
            let mut parts = item.split(';');
            let range = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            if q <= 0.0 {
                continue;
            }
            if let Some(l) = Locale::from_range(range)
                && best.is_none_or(|(bq, bi, _)| q > bq || (q == bq && i < bi))
            {
                best = Some((q, i, l));
            }
        }
        best.map(|b| b.2)
    }

    /// The locale of a request from someone not logged in: the language
    /// cookie, else the browser's languages, else Chinese.
    pub fn of_request(headers: &HeaderMap) -> Locale {
        cookie(headers, LANG_COOKIE)
            .and_then(Locale::from_code)
            .or_else(|| Locale::from_accept(headers))
            .unwrap_or(Locale::ZhCn)
    }

    pub fn from_accept(headers: &HeaderMap) -> Option<Locale> {
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .and_then(Locale::negotiate)
    }

    fn source(self) -> &'static str {
        match self {
            Locale::ZhCn => include_str!("../../locales/zh-CN.ftl"),
            Locale::En => include_str!("../../locales/en.ftl"),
            Locale::Es => include_str!("../../locales/es.ftl"),
        }
    }
}

/// The cookie that remembers the language of the login page.
pub const LANG_COOKIE: &str = "rapport_lang";

/// The value of a cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

struct Bundles([FluentBundle<FluentResource>; 3]);

fn bundle(locale: Locale) -> FluentBundle<FluentResource> {
    let id = locale
        .code()
        .parse()
        .unwrap_or_else(|_| unic_langid::LanguageIdentifier::default());
    let mut b = FluentBundle::new_concurrent(vec![id]);
    b.set_use_isolating(false);
    let res = FluentResource::try_new(locale.source().to_string())
        .unwrap_or_else(|(_, errs)| panic!("{}.ftl does not parse: {errs:?}", locale.code()));
    b.add_resource(res)
        .unwrap_or_else(|errs| panic!("{}.ftl has duplicate ids: {errs:?}", locale.code()));
    b
}

static BUNDLES: LazyLock<Bundles> =
    LazyLock::new(|| Bundles([bundle(Locale::ZhCn), bundle(Locale::En), bundle(Locale::Es)]));

/// The message ids of a locale's file, in file order.
pub fn message_ids(locale: Locale) -> Vec<String> {
    let res = FluentResource::try_new(locale.source().to_string()).unwrap_or_else(|(r, _)| r);
    res.entries()
        .filter_map(|e| match e {
            fluent_syntax::ast::Entry::Message(m) => Some(m.id.name.to_string()),
            _ => None,
        })
        .collect()
}

/// Translates and formats for one request's locale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tr {
    pub locale: Locale,
}

impl Tr {
    pub fn new(locale: Locale) -> Self {
        Tr { locale }
    }

    fn bundle(&self) -> &'static FluentBundle<FluentResource> {
        let i = match self.locale {
            Locale::ZhCn => 0,
            Locale::En => 1,
            Locale::Es => 2,
        };
        &BUNDLES.0[i]
    }

    fn format(&self, key: &str, args: Option<&FluentArgs>) -> String {
        let b = self.bundle();
        let Some(pattern) = b.get_message(key).and_then(|m| m.value()) else {
            tracing::warn!(key, locale = self.locale.code(), "missing console message");
            return key.to_string();
        };
        let mut errors = Vec::new();
        let s = b.format_pattern(pattern, args, &mut errors).into_owned();
        if !errors.is_empty() {
            tracing::warn!(key, ?errors, "console message did not format cleanly");
        }
        s
    }

    /// Whether the message `key` exists.
    pub fn has(&self, key: &str) -> bool {
        self.bundle().has_message(key)
    }

    /// The message `key`.
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The message `key` with one argument.
    pub fn t1<'a>(&self, key: &str, name: &'a str, value: impl Into<FluentValue<'a>>) -> String {
        let mut args = FluentArgs::new();
        args.set(name, value);
        self.format(key, Some(&args))
    }

    /// The message `key` with named arguments.
    pub fn args(&self, key: &str, args: &FluentArgs) -> String {
        self.format(key, Some(args))
    }

    /// The message `key` with a count (`$count`, for plurals) and a
    /// pre-formatted `$n`.
    pub fn count(&self, key: &str, count: i64) -> String {
        let mut args = FluentArgs::new();
        args.set("count", count);
        args.set("n", self.num(count));
        self.format(key, Some(&args))
    }

    /// A whole number with the locale's grouping.
    pub fn num(&self, n: impl Into<i128>) -> String {
        let n: i128 = n.into();
        let digits = n.unsigned_abs().to_string();
        let sign = if n < 0 { "-" } else { "" };
        format!("{sign}{}", self.group(&digits))
    }

    fn group(&self, digits: &str) -> String {
        let sep = match self.locale {
            Locale::Es => '.',
            _ => ',',
        };
        // Spanish does not group four-digit numbers.
        if digits.len() <= 3 || (self.locale == Locale::Es && digits.len() == 4) {
            return digits.to_string();
        }
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(sep);
            }
            out.push(c);
        }
        out
    }

    fn decimal_sep(&self) -> char {
        match self.locale {
            Locale::Es => ',',
            _ => '.',
        }
    }

    /// A decimal with `places` places.
    pub fn dec(&self, v: f64, places: usize) -> String {
        if !v.is_finite() {
            return "–".into();
        }
        let s = format!("{:.*}", places, v.abs());
        let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
        let sign = if v < 0.0 && s.bytes().any(|b| matches!(b, b'1'..=b'9')) {
            "-"
        } else {
            ""
        };
        let mut out = format!("{sign}{}", self.group(int));
        if !frac.is_empty() {
            out.push(self.decimal_sep());
            out.push_str(frac);
        }
        out
    }

    /// A share (0.0–1.0) as a percentage.
    pub fn pct(&self, share: f64, places: usize) -> String {
        let n = self.dec(share * 100.0, places);
        match self.locale {
            Locale::Es => format!("{n}\u{a0}%"),
            _ => format!("{n}%"),
        }
    }

    /// Money in minor units of CNY: `¥1,234.50`, `1234,50 CN¥`.
    pub fn money(&self, minor: impl Into<i128>) -> String {
        let minor: i128 = minor.into();
        let sign = if minor < 0 { "-" } else { "" };
        let abs = minor.unsigned_abs();
        let int = self.group(&(abs / 100).to_string());
        let frac = abs % 100;
        let dec = self.decimal_sep();
        match self.locale {
            Locale::ZhCn => format!("{sign}¥{int}{dec}{frac:02}"),
            Locale::En => format!("{sign}CN¥{int}{dec}{frac:02}"),
            Locale::Es => format!("{sign}{int}{dec}{frac:02}\u{a0}CN¥"),
        }
    }

    /// Money rounded to a short form for cards and axes: `¥1.2M`,
    /// `¥120.5万`, `1,2\u{a0}M\u{a0}CN¥`.
    pub fn money_short(&self, minor: impl Into<i128>) -> String {
        let major = minor.into() as f64 / 100.0;
        let n = self.compact(major);
        match self.locale {
            Locale::ZhCn => format!("¥{n}"),
            Locale::En => format!("CN¥{n}"),
            Locale::Es => format!("{n}\u{a0}CN¥"),
        }
    }

    /// A number in short form: `1.2K`, `3.4M` (`1.2万`, `3.4亿` in Chinese).
    pub fn compact(&self, v: f64) -> String {
        let a = v.abs();
        let steps: &[(f64, &str)] = match self.locale {
            Locale::ZhCn => &[(1e8, "亿"), (1e4, "万")],
            Locale::En => &[(1e9, "B"), (1e6, "M"), (1e3, "K")],
            Locale::Es => &[
                (1e9, "\u{a0}mil\u{a0}M"),
                (1e6, "\u{a0}M"),
                (1e3, "\u{a0}mil"),
            ],
        };
        for (size, suffix) in steps {
            if a >= *size {
                let x = v / size;
                let places = if x.abs() >= 100.0 { 0 } else { 1 };
                return format!("{}{suffix}", self.dec(x, places));
            }
        }
        self.dec(v, 0)
    }

    /// A calendar date: `Nov 22, 2026`, `2026年11月22日`, `22 nov 2026`.
    pub fn date(&self, d: NaiveDate) -> String {
        let (y, m, day) = (d.year(), d.month0() as usize, d.day());
        match self.locale {
            Locale::ZhCn => format!("{y}年{}月{day}日", m + 1),
            Locale::En => format!("{} {day}, {y}", EN_MONTHS[m]),
            Locale::Es => format!("{day} {} {y}", ES_MONTHS[m]),
        }
    }

    /// An optional date, or a dash.
    pub fn opt_date(&self, d: Option<NaiveDate>) -> String {
        d.map(|d| self.date(d)).unwrap_or_else(|| "–".into())
    }

    /// An instant in the hospital's time (UTC+8): date and minutes.
    pub fn datetime(&self, t: DateTime<Utc>) -> String {
        let local = t + chrono::Duration::hours(rapport_app::analytics::HOSPITAL_UTC_OFFSET_HOURS);
        format!(
            "{} {}",
            self.date(local.date_naive()),
            local.format("%H:%M")
        )
    }

    /// A month `YYYY-MM` in full (`Nov 2026`) or for an axis (`Nov`; the
    /// year is added in January).
    pub fn month(&self, ym: &str, short: bool) -> String {
        let Some((y, m)) = ym.split_once('-') else {
            return ym.to_string();
        };
        let (Ok(y), Ok(m)) = (y.parse::<i32>(), m.parse::<usize>()) else {
            return ym.to_string();
        };
        if !(1..=12).contains(&m) {
            return ym.to_string();
        }
        let with_year = !short || m == 1;
        match (self.locale, with_year) {
            (Locale::ZhCn, true) => format!("{y}年{m}月"),
            (Locale::ZhCn, false) => format!("{m}月"),
            (Locale::En, true) => format!("{} {y}", EN_MONTHS[m - 1]),
            (Locale::En, false) => EN_MONTHS[m - 1].to_string(),
            (Locale::Es, true) => format!("{} {y}", ES_MONTHS[m - 1]),
            (Locale::Es, false) => ES_MONTHS[m - 1].to_string(),
        }
    }
}

const EN_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const ES_MONTHS: [&str; 12] = [
    "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_money_and_dates_per_locale() {
        let (zh, en, es) = (
            Tr::new(Locale::ZhCn),
            Tr::new(Locale::En),
            Tr::new(Locale::Es),
        );
        assert_eq!(en.num(1234567), "1,234,567");
        assert_eq!(es.num(1234567), "1.234.567");
        assert_eq!(es.num(1234), "1234");
        assert_eq!(en.num(-12), "-12");
        assert_eq!(zh.money(123456789), "¥1,234,567.89");
        assert_eq!(en.money(5), "CN¥0.05");
        assert_eq!(es.money(123456), "1234,56\u{a0}CN¥");
        assert_eq!(es.money(1234567), "12.345,67\u{a0}CN¥");
        assert_eq!(en.pct(0.1234, 1), "12.3%");
        assert_eq!(es.pct(0.5, 0), "50\u{a0}%");
        assert_eq!(zh.compact(1_234_567.0), "123万");
        assert_eq!(en.compact(1_234_567.0), "1.2M");
        assert_eq!(en.money_short(123_456_789), "CN¥1.2M");
        let d: NaiveDate = "2026-01-05".parse().unwrap();
        assert_eq!(en.date(d), "Jan 5, 2026");
        assert_eq!(zh.date(d), "2026年1月5日");
        assert_eq!(es.date(d), "5 ene 2026");
        assert_eq!(en.month("2026-11", true), "Nov");
        assert_eq!(zh.month("2027-01", true), "2027年1月");
        assert_eq!(en.dec(-0.001, 1), "0.0");
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(
            Locale::negotiate("es-MX,es;q=0.9,en;q=0.8"),
            Some(Locale::Es)
        );
        assert_eq!(Locale::negotiate("fr-FR, en;q=0.5"), Some(Locale::En));
        assert_eq!(
            Locale::negotiate("en;q=0.4, zh-TW;q=0.8"),
            Some(Locale::ZhCn)
        );
        assert_eq!(Locale::negotiate("fr, de"), None);
        assert_eq!(Locale::negotiate("es;q=0, en"), Some(Locale::En));
        assert_eq!(Locale::negotiate(""), None);
    }

    #[test]
    fn plurals_follow_the_locale() {
        let en = Tr::new(Locale::En);
        assert_eq!(en.count("patients-count", 1), "1 patient");
        assert_eq!(en.count("patients-count", 1200), "1,200 patients");
        assert_eq!(Tr::new(Locale::Es).count("patients-count", 1), "1 paciente");
    }
}

/// Every message id exists in every language, and every id the console
/// uses exists: literal ids in the templates and the console's code, and
/// the ids it builds from enumerations (segments, roles, channels…).
#[cfg(test)]
mod key_tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    fn ids(l: Locale) -> BTreeSet<String> {
        message_ids(l).into_iter().collect()
    }

    fn files(dir: &Path, ext: &str, out: &mut Vec<(String, String)>) {
        for e in std::fs::read_dir(dir).expect("dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                files(&p, ext, out);
            } else if p.extension().is_some_and(|x| x == ext) {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).expect("read"),
                ));
            }
        }
    }

    /// String literals of the form `"word-word…"` (lowercase, digits,
    /// dashes) in `text`.
    fn dashed_literals(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, part) in text.split('"').enumerate() {
            if i % 2 == 1
                && part.contains('-')
                && !part.starts_with('-')
                && !part.ends_with('-')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                out.push(part.to_string());
            }
        }
        out
    }

    #[test]
    fn every_language_has_every_message() {
        let en = ids(Locale::En);
        assert!(en.len() > 200, "the English file is complete");
        for l in Locale::ALL {
            let have = ids(l);
            let missing: Vec<_> = en.difference(&have).collect();
            let extra: Vec<_> = have.difference(&en).collect();
            assert!(missing.is_empty(), "{} lacks {missing:?}", l.code());
            assert!(
                extra.is_empty(),
                "{} has ids English lacks: {extra:?}",
                l.code()
            );
            // And each message formats without errors.
            let tr = Tr::new(l);
            for id in &have {
                assert!(!tr.t(id).is_empty(), "{}: {id}", l.code());
            }
        }
    }

    #[test]
    fn every_message_the_console_uses_exists() {
        let en = ids(Locale::En);
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut sources = Vec::new();
        files(&root.join("templates/console"), "html", &mut sources);
        files(&root.join("src/console"), "rs", &mut sources);
        // An id is any dashed literal whose first word starts some
        // message id (`kpi-…`, `error-…`); other dashed literals (CSS
        // classes, element ids) use other first words.
        let prefixes: BTreeSet<&str> = en.iter().filter_map(|k| k.split('-').next()).collect();
        let mut used = 0;
        for (path, text) in &sources {
            // Templates name ids only inside t("…") calls.
            let candidates: Vec<String> = if path.ends_with(".html") {
                text.split("t(\"")
                    .skip(1)
                    .chain(text.split("t1(\"").skip(1))
                    .filter_map(|s| s.split('"').next())
                    .map(str::to_string)
                    .collect()
            } else {
                dashed_literals(text)
                    .into_iter()
                    .filter(|s| prefixes.contains(s.split('-').next().unwrap_or("")))
                    .collect()
            };
            for id in candidates {
                // Ids built with format! end in a dash before the value.
                if id.ends_with('-') {
                    continue;
                }
                used += 1;
                assert!(
                    en.contains(&id),
                    "{path} uses the unknown message id {id:?}"
                );
            }
        }
        assert!(used > 150, "the scan found the ids ({used})");
        // Ids built from enumerations.
        let mut built = Vec::new();
        for s in rapport_analytics::Segment::ALL {
            built.push(format!("segment-{}", s.as_str().replace('_', "-")));
        }
        for r in rapport_domain::auth::Role::ALL {
            built.push(super::super::role_key(*r));
        }
        for c in rapport_domain::patient::Channel::ALL {
            built.push(format!("channel-{}", c.as_str()));
        }
        for p in rapport_domain::consent::Purpose::ALL {
            built.push(format!("purpose-{}", p.as_str()));
        }
        for k in rapport_domain::patient::VisitKind::ALL {
            built.push(format!("kind-{}", k.as_str()));
        }
        for p in super::super::PAGES {
            built.push(p.title.to_string());
        }
        for id in built {
            assert!(en.contains(&id), "missing message id {id:?}");
        }
    }
}
