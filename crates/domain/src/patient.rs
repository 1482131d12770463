//! Patients and visits: the values a hospital records, parsed (not merely
//! validated) into types that cannot hold nonsense.

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::money::{Money, MoneyError};
use crate::validation::ValidationErrors;

string_enum!(
    /// Administrative sex as hospital systems record it.
    Sex { Male = "M", Female = "F", Unknown = "U" }
);

impl Sex {
    /// Accepts `M`/`F`/`U` in either case and the Chinese `男`/`女`/`未知`.
    pub fn parse_loose(s: &str) -> Option<Self> {
        match s.trim() {
            "M" | "m" | "男" | "male" | "Male" => Some(Sex::Male),
            "F" | "f" | "女" | "female" | "Female" => Some(Sex::Female),
            "U" | "u" | "" | "未知" | "unknown" | "Unknown" => Some(Sex::Unknown),
            _ => None,
        }
    }
}

string_enum!(
    /// What kind of encounter a visit was.
    VisitKind {
        Outpatient = "outpatient",
        Inpatient = "inpatient",
        Exam = "exam",
        Checkup = "checkup",
        Telehealth = "telehealth",
    }
);

string_enum!(
    /// Channels a patient can be reached on.
    Channel { Sms = "sms", Email = "email", Wechat = "wechat", Phone = "phone" }
);

string_enum!(
    /// Languages the platform speaks to patients and staff.
    Language { ZhCn = "zh-CN", En = "en", Es = "es" }
);

/// Parses `YYYY-MM-DD`, `YYYY/MM/DD` or `YYYYMMDD`.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let fmt = if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        "%Y%m%d"
    } else if s.contains('/') {
        "%Y/%m/%d"
    } else {
        "%Y-%m-%d"
    };
    let d = NaiveDate::parse_from_str(s, fmt).ok()?;
    // chrono accepts single-digit months and days; hospital exports use
    // both, which is fine. It also accepts years beyond 9999 only with a
    // sign, so the range below is the only extra check.
    (1800..=9999).contains(&d.year()).then_some(d)
}

/// The earliest date accepted for visits, registration and birth.
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// Normalises a phone number: keeps digits and a leading `+`, drops spaces,
/// dashes, dots and parentheses. Between 5 and 20 digits.
pub fn normalize_phone(s: &str) -> Option<String> {
    let s = s.trim();
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        match c {
            '0'..='9' => out.push(c),
            '+' if i == 0 => out.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return None,
        }
    }
    let digits = out.trim_start_matches('+').len();
    (5..=20).contains(&digits).then_some(out)
}

/// A deliberately simple check: one `@`, something on each side, a dot in
/// the domain, no spaces. Deliverability is the mail server's business.
pub fn normalize_email(s: &str) -> Option<String> {
    let s = s.trim();
    let (local, domain) = s.split_once('@')?;
    let ok = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && s.len() <= 254
        && !s.chars().any(char::is_whitespace);
    ok.then(|| format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// Maximum length of free-text fields such as names and districts.
pub const MAX_TEXT: usize = 200;
/// Maximum length of notes.
pub const MAX_NOTES: usize = 10_000;
/// Maximum length of hospital ids (patients, visits, doctors).
pub const MAX_ID: usize = 64;

/// Checks a hospital-side identifier: non-empty, at most 64 characters, no
/// control characters or surrounding spaces.
pub fn check_external_id(errs: &mut ValidationErrors, field: &str, v: &str) -> bool {
    if v.trim().is_empty() {
        errs.push(field, "required", "must not be empty");
        false
    } else if v.chars().count() > MAX_ID || v.trim() != v || v.chars().any(char::is_control) {
        errs.push(
            field,
            "invalid_id",
            format!("must be at most {MAX_ID} characters, without control characters or surrounding spaces"),
        );
        false
    } else {
        true
    }
}

fn check_text(
    errs: &mut ValidationErrors,
    field: &str,
    v: &Option<String>,
    max: usize,
) -> Option<String> {
    let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    if v.chars().count() > max {
        errs.push(
            field,
            "too_long",
            format!("must be at most {max} characters"),
        );
        return None;
    }
    if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errs.push(field, "invalid_text", "must not contain control characters");
        return None;
    }
    Some(v.to_string())
}

/// The editable fields of a patient, as received (strings, unparsed).
/// `None` means "not given"; for updates, see [`PatientPatch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientInput {
    pub name: Option<String>,
    pub sex: Option<String>,
    pub birth_date: Option<String>,
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub district: Option<String>,
    pub source_channel: Option<String>,
    pub registered_on: Option<String>,
    pub preferred_channel: Option<String>,
    pub preferred_language: Option<String>,
    pub household: Option<String>,
    pub tags: Option<Vec<String>>,
    pub notes: Option<String>,
    pub national_id: Option<String>,
}

/// The parsed, valid fields of a patient.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientFields {
    pub name: String,
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub district: Option<String>,
    pub source_channel: Option<String>,
    pub registered_on: Option<NaiveDate>,
    pub preferred_channel: Option<Channel>,
    pub preferred_language: Option<Language>,
    pub household: Option<String>,
    pub tags: Vec<String>,
    pub notes: Option<String>,
    /// In plain text only in memory: the store keeps it sealed
    /// ([`SealedId`]) and the application opens it for those who may see it.
    pub national_id: Option<String>,
}

impl PatientFields {
    /// Parses every field, collecting all errors. `today` bounds dates.
    pub fn parse(input: &PatientInput, today: NaiveDate) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut out = PatientFields {
            name: check_text(&mut errs, "name", &input.name, MAX_TEXT).unwrap_or_default(),
            district: check_text(&mut errs, "district", &input.district, MAX_TEXT),
            source_channel: check_text(
                &mut errs,
                "source_channel",
                &input.source_channel,
                MAX_TEXT,
            ),
            household: check_text(&mut errs, "household", &input.household, MAX_ID),
            notes: check_text(&mut errs, "notes", &input.notes, MAX_NOTES),
            ..Default::default()
        };
        if let Some(s) = input.sex.as_deref() {
            match Sex::parse_loose(s) {
                Some(v) => out.sex = Some(v),
                None => errs.push(
                    "sex",
                    "invalid_enum",
                    format!("must be one of {}", Sex::expected()),
                ),
            }
        }
        let date_field =
            |errs: &mut ValidationErrors, field: &str, v: &Option<String>| -> Option<NaiveDate> {
                let s = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
                match parse_date(s) {
                    Some(d) if d > today => {
                        errs.push(field, "date_in_future", "must not be in the future");
                        None
                    }
                    Some(d) if d < earliest_date() => {
                        errs.push(field, "date_out_of_range", "must not be before 1900-01-01");
                        None
                    }
                    Some(d) => Some(d),
                    None => {
                        errs.push(field, "invalid_date", "must be a real date as YYYY-MM-DD");
                        None
                    }
                }
            };
        out.birth_date = date_field(&mut errs, "birth_date", &input.birth_date);
        out.registered_on = date_field(&mut errs, "registered_on", &input.registered_on);
        if let Some(y) = input.birth_year {
            if y < 1900 || y > today.year() {
                errs.push(
                    "birth_year",
                    "out_of_range",
                    format!("must be between 1900 and {}", today.year()),
                );
            } else {
                out.birth_year = Some(y);
            }
        }
        if let (Some(d), Some(y)) = (out.birth_date, out.birth_year)
            && d.year() != y
        {
            errs.push("birth_year", "inconsistent", "does not match birth_date");
        }
        if out.birth_year.is_none() {
            out.birth_year = out.birth_date.map(|d| d.year());
        }
        if let Some(p) = input.phone.as_deref().filter(|s| !s.trim().is_empty()) {
            match normalize_phone(p) {
                Some(v) => out.phone = Some(v),
                None => errs.push(
                    "phone",
                    "invalid_phone",
                    "must be 5 to 20 digits, optionally with a leading +",
                ),
            }
        }
        if let Some(e) = input.email.as_deref().filter(|s| !s.trim().is_empty()) {
            match normalize_email(e) {
                Some(v) => out.email = Some(v),
                None => errs.push("email", "invalid_email", "must be an email address"),
            }
        }
        if let Some(n) = input
            .national_id
            .as_deref()
            .filter(|s| !s.trim().is_empty())
        {
            match parse_national_id(n) {
                Ok(v) => out.national_id = Some(v),
                Err(why) => errs.push("national_id", "invalid_national_id", why),
            }
        }
        if let Some(c) = input.preferred_channel.as_deref().filter(|s| !s.is_empty()) {
            match Channel::from_code(c) {
                Some(v) => out.preferred_channel = Some(v),
                None => errs.push(
                    "preferred_channel",
                    "invalid_enum",
                    format!("must be one of {}", Channel::expected()),
                ),
            }
        }
        if let Some(l) = input
            .preferred_language
            .as_deref()
            .filter(|s| !s.is_empty())
        {
            match Language::from_code(l) {
                Some(v) => out.preferred_language = Some(v),
                None => errs.push(
                    "preferred_language",
                    "invalid_enum",
                    format!("must be one of {}", Language::expected()),
                ),
            }
        }
        if let Some(tags) = &input.tags {
            let mut seen = std::collections::BTreeSet::new();
            for (i, t) in tags.iter().enumerate() {
                let t = t.trim();
                if t.is_empty() || t.chars().count() > 50 || t.chars().any(char::is_control) {
                    errs.push(
                        &format!("tags[{i}]"),
                        "invalid_tag",
                        "must be 1 to 50 characters",
                    );
                } else if seen.insert(t.to_string()) {
                    out.tags.push(t.to_string());
                }
            }
            if out.tags.len() > 50 {
                errs.push("tags", "too_many", "at most 50 tags");
            }
        }
        errs.into_result(out)
    }
}

/// A new patient: the hospital's id and the fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPatient {
    pub patient_id: String,
    pub fields: PatientFields,
}

impl NewPatient {
    pub fn parse(
        patient_id: &str,
        input: &PatientInput,
        today: NaiveDate,
    ) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        check_external_id(&mut errs, "patient_id", patient_id);
        let fields = match PatientFields::parse(input, today) {
            Ok(f) => Some(f),
            Err(e) => {
                errs.0.extend(e.0);
                None
            }
        };
        match fields {
            Some(fields) if errs.is_empty() => Ok(NewPatient {
                patient_id: patient_id.to_string(),
                fields,
            }),
            _ => Err(errs),
        }
    }
}

/// A partial update: each field either left alone (`None`), cleared
/// (`Some(None)`), or set (`Some(Some(v))`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatientPatch {
    pub name: Option<Option<String>>,
    pub sex: Option<Option<String>>,
    pub birth_date: Option<Option<String>>,
    pub birth_year: Option<Option<i32>>,
    pub phone: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub district: Option<Option<String>>,
    pub source_channel: Option<Option<String>>,
    pub registered_on: Option<Option<String>>,
    pub preferred_channel: Option<Option<String>>,
    pub preferred_language: Option<Option<String>>,
    pub household: Option<Option<String>>,
    pub tags: Option<Option<Vec<String>>>,
    pub notes: Option<Option<String>>,
    pub national_id: Option<Option<String>>,
}

impl PatientPatch {
    /// Applies the patch to the current fields (as strings) and re-parses
    /// the whole record, so a patch can never produce an invalid patient.
    pub fn apply(
        &self,
        current: &PatientFields,
        today: NaiveDate,
    ) -> Result<PatientFields, ValidationErrors> {
        let mut input = PatientInput {
            name: Some(current.name.clone()),
            sex: current.sex.map(|s| s.as_str().to_string()),
            birth_date: current.birth_date.map(|d| d.to_string()),
            birth_year: current.birth_year,
            phone: current.phone.clone(),
            email: current.email.clone(),
            district: current.district.clone(),
            source_channel: current.source_channel.clone(),
            registered_on: current.registered_on.map(|d| d.to_string()),
            preferred_channel: current.preferred_channel.map(|c| c.as_str().to_string()),
            preferred_language: current.preferred_language.map(|c| c.as_str().to_string()),
            household: current.household.clone(),
            tags: Some(current.tags.clone()),
            notes: current.notes.clone(),
            national_id: current.national_id.clone(),
        };
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = &self.$f { input.$f = v.clone(); } )* };
        }
        set!(
            name,
            sex,
            birth_date,
            phone,
            email,
            district,
            source_channel,
            registered_on,
            preferred_channel,
            preferred_language,
            household,
            tags,
            notes,
            national_id
        );
        if let Some(v) = self.birth_year {
            input.birth_year = v;
        } else if matches!(self.birth_date, Some(Some(_))) {
            // A new birth date decides the year.
            input.birth_year = None;
        }
        if matches!(self.birth_date, Some(None)) && self.birth_year.is_none() {
            input.birth_year = current.birth_year;
        }
        PatientFields::parse(&input, today)
    }
}

/// A visit as received: strings, unparsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitInput {
    pub visit_id: String,
    pub visit_date: String,
    pub department: Option<String>,
    pub doctor_id: Option<String>,
    pub doctor_name: Option<String>,
    pub kind: Option<String>,
    pub amount: String,
}

/// A parsed, valid visit (the patient is resolved by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitFields {
    pub visit_id: String,
    pub visit_date: NaiveDate,
    pub department: Option<String>,
    pub doctor_id: Option<String>,
    pub doctor_name: Option<String>,
    pub kind: VisitKind,
    pub amount: Money,
}

/// Visits may be recorded up to this many days ahead (pre-registered
/// check-ups); anything further is a typo.
pub const MAX_DAYS_AHEAD: u64 = 366;

impl VisitFields {
    pub fn parse(input: &VisitInput, today: NaiveDate) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        check_external_id(&mut errs, "visit_id", &input.visit_id);
        let visit_date = match parse_date(&input.visit_date) {
            None if input.visit_date.trim().is_empty() => {
                errs.push("visit_date", "required", "must not be empty");
                None
            }
            None => {
                errs.push(
                    "visit_date",
                    "invalid_date",
                    "must be a real date as YYYY-MM-DD",
                );
                None
            }
            Some(d) if d < earliest_date() => {
                errs.push(
                    "visit_date",
                    "date_out_of_range",
                    "must not be before 1900-01-01",
                );
                None
            }
            Some(d) if d > today + chrono::Days::new(MAX_DAYS_AHEAD) => {
                errs.push(
                    "visit_date",
                    "date_out_of_range",
                    "must not be more than a year ahead",
                );
                None
            }
            Some(d) => Some(d),
        };
        let kind = match input
            .kind
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            None => Some(VisitKind::Outpatient),
            Some(k) => {
                let k = VisitKind::from_code(&k.to_ascii_lowercase());
                if k.is_none() {
                    errs.push(
                        "kind",
                        "invalid_enum",
                        format!("must be one of {}", VisitKind::expected()),
                    );
                }
                k
            }
        };
        let amount = match Money::parse(&input.amount) {
            Ok(m) => Some(m),
            Err(MoneyError::Negative) => {
                errs.push("amount", "negative_amount", "must not be negative");
                None
            }
            Err(MoneyError::TooLarge) => {
                errs.push("amount", "amount_too_large", "is too large");
                None
            }
            Err(MoneyError::Malformed) if input.amount.trim().is_empty() => {
                errs.push("amount", "required", "must not be empty");
                None
            }
            Err(MoneyError::Malformed) => {
                errs.push(
                    "amount",
                    "invalid_amount",
                    "must be a decimal with at most two places",
                );
                None
            }
        };
        let department = check_text(&mut errs, "department", &input.department, MAX_TEXT);
        let doctor_name = check_text(&mut errs, "doctor_name", &input.doctor_name, MAX_TEXT);
        let doctor_id = input
            .doctor_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        if let Some(d) = doctor_id {
            check_external_id(&mut errs, "doctor_id", d);
        }
        match (visit_date, kind, amount) {
            (Some(visit_date), Some(kind), Some(amount)) if errs.is_empty() => Ok(VisitFields {
                visit_id: input.visit_id.clone(),
                visit_date,
                department,
                doctor_id: doctor_id.map(str::to_string),
                doctor_name,
                kind,
                amount,
            }),
            _ => Err(errs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 6, 30).unwrap()
    }

    #[test]
    fn dates_in_three_formats_and_impossible_ones_rejected() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap();
        assert_eq!(parse_date("2024-02-29"), Some(d));
        assert_eq!(parse_date("2024/02/29"), Some(d));
        assert_eq!(parse_date("20240229"), Some(d));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
    }

    #[test]
    fn phones_and_emails_normalised() {
        assert_eq!(
            normalize_phone("138-1234 5678").as_deref(),
            Some("13812345678")
        );
        assert_eq!(
            normalize_phone("+34 (91) 123 4567").as_deref(),
            Some("+34911234567")
        );
        assert_eq!(normalize_phone("12ab"), None);
        assert_eq!(normalize_phone("1+2345678"), None);
        assert_eq!(
            normalize_email(" Li.Na@Example.COM ").as_deref(),
            Some("Li.Na@example.com")
        );
        assert_eq!(normalize_email("no-at-sign"), None);
        assert_eq!(normalize_email("a@b"), None);
    }

    #[test]
    fn patient_errors_name_every_field() {
        let input = PatientInput {
            sex: Some("X".into()),
            birth_date: Some("2030-01-01".into()),
            phone: Some("abc".into()),
            email: Some("x".into()),
            preferred_language: Some("fr".into()),
            ..Default::default()
        };
        let errs = NewPatient::parse("", &input, today()).unwrap_err();
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "patient_id",
                "sex",
                "birth_date",
                "phone",
                "email",
                "preferred_language"
            ]
        );
    }

    #[test]
    fn chinese_sex_and_birth_year_from_date() {
        let input = PatientInput {
            name: Some(" 王芳 ".into()),
            sex: Some("女".into()),
            birth_date: Some("1980/05/06".into()),
            ..Default::default()
        };
        let p = NewPatient::parse("H001", &input, today()).unwrap();
        assert_eq!(p.fields.name, "王芳");
        assert_eq!(p.fields.sex, Some(Sex::Female));
        assert_eq!(p.fields.birth_year, Some(1980));
    }

    #[test]
    fn national_ids_are_checked() {
        // A published example number with a valid check digit.
        assert_eq!(
            parse_national_id("11010519491231002X"),
            Ok("11010519491231002X".to_string())
        );
        assert_eq!(
            parse_national_id("11010519491231002x"),
            Ok("11010519491231002X".to_string())
        );
        assert!(
            parse_national_id("110105194912310021").is_err(),
            "wrong check digit"
        );
        assert_eq!(parse_national_id("X1234567-L"), Ok("X1234567L".to_string()));
        assert!(parse_national_id("12").is_err());
        assert!(parse_national_id("ab#cd!").is_err());
    }

    #[test]
    fn patch_clears_and_sets_and_revalidates() {
        let current = NewPatient::parse(
            "H1",
            &PatientInput {
                name: Some("Ana".into()),
                phone: Some("13800000000".into()),
                ..Default::default()
            },
            today(),
        )
        .unwrap()
        .fields;
        let patch = PatientPatch {
            phone: Some(None),
            email: Some(Some("ana@example.es".into())),
            ..Default::default()
        };
        let f = patch.apply(&current, today()).unwrap();
        assert_eq!(f.phone, None);
        assert_eq!(f.email.as_deref(), Some("ana@example.es"));
        assert_eq!(f.name, "Ana");
        let bad = PatientPatch {
            email: Some(Some("nope".into())),
            ..Default::default()
        };
        assert_eq!(
            bad.apply(&current, today()).unwrap_err().0[0].field,
            "email"
        );
    }

    #[test]
    fn visit_rejects_negative_amounts_and_bad_kinds() {
        let input = VisitInput {
            visit_id: "V1".into(),
            visit_date: "2026-02-30".into(),
            kind: Some("surgery".into()),
            amount: "-5".into(),
            ..Default::default()
        };
        let errs = VisitFields::parse(&input, today()).unwrap_err();
        let codes: Vec<(&str, &str)> = errs.0.iter().map(|e| (e.field.as_str(), e.code)).collect();
        assert_eq!(
            codes,
            [
                ("visit_date", "invalid_date"),
                ("kind", "invalid_enum"),
                ("amount", "negative_amount")
            ]
        );
        let ok = VisitFields::parse(
            &VisitInput {
                visit_id: "V1".into(),
                visit_date: "20260101".into(),
                amount: "88.8".into(),
                ..Default::default()
            },
            today(),
        )
        .unwrap();
        assert_eq!(ok.amount, Money(8880));
        assert_eq!(ok.kind, VisitKind::Outpatient);
    }
}

/// Parses a national id: an 18-character Chinese resident identity number
/// (17 digits and an ISO 7064 MOD 11-2 check character, validated), or
/// another document number (passport, NIE: 5 to 30 letters and digits).
/// Returns it upper-cased without spaces.
pub fn parse_national_id(s: &str) -> Result<String, &'static str> {
    let v: String = s
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    if !(5..=30).contains(&v.len()) || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err("must be 5 to 30 letters and digits");
    }
    let b = v.as_bytes();
    if b.len() == 18 && b[..17].iter().all(u8::is_ascii_digit) {
        const W: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        const C: &[u8; 11] = b"10X98765432";
        let sum: u32 = b[..17]
            .iter()
            .zip(W)
            .map(|(d, w)| u32::from(d - b'0') * w)
            .sum();
        if b[17] != C[(sum % 11) as usize] {
            return Err("the check digit of this resident identity number is wrong");
        }
    }
    Ok(v)
}

/// A national id as stored: AEAD ciphertext (with the id of the key that
/// sealed it) and a keyed blind index to find equal ids without opening
/// them. Without the key neither reveals anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SealedId {
    pub ciphertext: String,
    pub index: String,
}

/// A stored patient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Patient {
    /// The platform's own id.
    pub id: i64,
    pub hospital_id: i64,
    /// The hospital's id for the patient.
    pub patient_id: String,
    pub fields: PatientFields,
    /// The national id as stored; `fields.national_id` is filled from it
    /// only when the application opens it.
    pub sealed_national_id: Option<SealedId>,
    /// Set when the patient's personal data was erased on request.
    pub erased_at: Option<chrono::DateTime<chrono::Utc>>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// A stored visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Visit {
    pub id: i64,
    pub hospital_id: i64,
    pub visit_id: String,
    /// The platform id of the patient.
    pub patient_key: i64,
    /// The hospital's id of the patient.
    pub patient_id: String,
    pub visit_date: NaiveDate,
    pub department: Option<String>,
    pub doctor_id: Option<String>,
    pub doctor_name: Option<String>,
    pub kind: VisitKind,
    pub amount: Money,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}
