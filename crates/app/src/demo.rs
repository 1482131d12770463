//! The demo hospital: a realistic synthetic patient base.
//!
//! Each patient registers on a date in the five years before the end date
//! (more in recent years, as a growing hospital sees), then visits as a
//! Poisson process with a personal rate drawn from a Gamma distribution and
//! may drop out after each visit with a personal probability drawn from a
//! Beta distribution: the very process BG/NBD assumes, so the lifetime
//! value figures have something true to find. Spend per visit depends on
//! the kind of visit and is log-normal, which with the heavy-tailed visit
//! counts gives the concentration real hospitals see (a fifth of the
//! patients bring most of the revenue). The same seed and end date always
//! give the same hospital.

use chrono::{DateTime, Days, NaiveDate, Utc};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rapport_domain::PatientAggregates;
use rapport_domain::patient::{Channel, Language, Sex, VisitKind};
use rapport_store::bulk::{self, Value};

use crate::{App, Result};

/// What to generate.
#[derive(Debug, Clone)]
pub struct DemoSpec {
    pub patients: u64,
    pub seed: u64,
    /// The last day with visits (today for a live demo).
    pub end: NaiveDate,
    /// Years of history before `end`.
    pub years: u32,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DemoReport {
    pub patients: u64,
    pub visits: u64,
    pub departments: u64,
    pub doctors: u64,
    /// Total spend, minor units.
    pub revenue: i64,
}

struct Department {
    name: &'static str,
    weight: f64,
    doctors: u32,
}

const DEPARTMENTS: &[Department] = &[
    Department {
        name: "Internal Medicine",
        weight: 14.0,
        doctors: 12,
    },
    Department {
        name: "Cardiology",
        weight: 7.0,
        doctors: 7,
    },
    Department {
        name: "Gastroenterology",
        weight: 6.0,
        doctors: 6,
    },
    Department {
        name: "Endocrinology",
        weight: 5.0,
        doctors: 5,
    },
    Department {
        name: "General Surgery",
        weight: 6.0,
        doctors: 8,
    },
    Department {
        name: "Orthopedics",
        weight: 6.0,
        doctors: 7,
    },
    Department {
        name: "Obstetrics & Gynecology",
        weight: 9.0,
        doctors: 9,
    },
    Department {
        name: "Pediatrics",
        weight: 9.0,
        doctors: 8,
    },
    Department {
        name: "Dermatology",
        weight: 6.0,
        doctors: 5,
    },
    Department {
        name: "Ophthalmology",
        weight: 5.0,
        doctors: 5,
    },
    Department {
        name: "ENT",
        weight: 4.0,
        doctors: 4,
    },
    Department {
        name: "Stomatology",
        weight: 7.0,
        doctors: 8,
    },
    Department {
        name: "Traditional Chinese Medicine",
        weight: 5.0,
        doctors: 6,
    },
    Department {
        name: "Rehabilitation",
        weight: 3.0,
        doctors: 4,
    },
    Department {
        name: "Oncology",
        weight: 2.0,
        doctors: 4,
    },
    Department {
        name: "Health Check-up Center",
        weight: 0.0,
        doctors: 6,
    },
];
const CHECKUP_DEPT: usize = 15;

const SURNAMES: &[(&str, &str, f64)] = &[
    ("王", "wang", 7.1),
    ("李", "li", 7.0),
    ("张", "zhang", 6.7),
    ("刘", "liu", 5.4),
    ("陈", "chen", 4.5),
    ("杨", "yang", 3.1),
    ("黄", "huang", 2.2),
    ("赵", "zhao", 2.0),
    ("吴", "wu", 2.0),
    ("周", "zhou", 1.9),
    ("徐", "xu", 1.5),
    ("孙", "sun", 1.4),
    ("马", "ma", 1.3),
    ("朱", "zhu", 1.3),
    ("胡", "hu", 1.2),
    ("郭", "guo", 1.2),
    ("何", "he", 1.1),
    ("林", "lin", 1.0),
    ("高", "gao", 1.0),
    ("罗", "luo", 0.9),
    ("郑", "zheng", 0.9),
    ("梁", "liang", 0.8),
    ("谢", "xie", 0.7),
    ("宋", "song", 0.6),
    ("唐", "tang", 0.6),
    ("许", "xu", 0.6),
    ("韩", "han", 0.5),
    ("冯", "feng", 0.5),
    ("邓", "deng", 0.5),
    ("曹", "cao", 0.5),
    ("彭", "peng", 0.5),
    ("曾", "zeng", 0.5),
    ("肖", "xiao", 0.5),
    ("田", "tian", 0.4),
    ("董", "dong", 0.4),
    ("袁", "yuan", 0.4),
    ("潘", "pan", 0.4),
    ("于", "yu", 0.4),
    ("蒋", "jiang", 0.4),
    ("蔡", "cai", 0.4),
    ("欧阳", "ouyang", 0.1),
    ("司马", "sima", 0.02),
];
const GIVEN_M: &[(&str, &str)] = &[
    ("伟", "wei"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("勇", "yong"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("刚", "gang"),
    ("平", "ping"),
    ("辉", "hui"),
    ("鹏", "peng"),
    ("华", "hua"),
    ("建", "jian"),
    ("国", "guo"),
    ("志", "zhi"),
    ("文", "wen"),
    ("浩", "hao"),
    ("宇", "yu"),
    ("子", "zi"),
    ("俊", "jun"),
    ("博", "bo"),
    ("然", "ran"),
    ("轩", "xuan"),
    ("睿", "rui"),
    ("东", "dong"),
    ("海", "hai"),
];
const GIVEN_F: &[(&str, &str)] = &[
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("艳", "yan"),
    ("娟", "juan"),
    ("霞", "xia"),
    ("秀", "xiu"),
    ("英", "ying"),
    ("玲", "ling"),
    ("红", "hong"),
    ("婷", "ting"),
    ("雪", "xue"),
    ("慧", "hui"),
    ("琳", "lin"),
    ("欣", "xin"),
    ("怡", "yi"),
    ("佳", "jia"),
    ("雨", "yu"),
    ("梦", "meng"),
    ("思", "si"),
    ("晓", "xiao"),
    ("洁", "jie"),
    ("颖", "ying"),
    ("萱", "xuan"),
    ("悦", "yue"),
    ("月", "yue"),
];
const EN_FIRST_M: &[&str] = &[
    "James", "John", "Robert", "Michael", "David", "William", "Thomas", "Daniel", "Oliver",
    "George",
];
const EN_FIRST_F: &[&str] = &[
    "Mary",
    "Emma",
    "Olivia",
    "Sarah",
    "Emily",
    "Charlotte",
    "Jessica",
    "Sophie",
    "Grace",
    "Hannah",
];
const EN_LAST: &[&str] = &[
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Davies", "Evans", "Walker", "Clark",
    "Wright", "Miller", "Moore",
];
const ES_FIRST_M: &[&str] = &[
    "José",
    "Antonio",
    "Manuel",
    "Francisco",
    "Javier",
    "Carlos",
    "Miguel",
    "Alejandro",
    "Pablo",
    "Diego",
];
const ES_FIRST_F: &[&str] = &[
    "María", "Carmen", "Lucía", "Ana", "Laura", "Isabel", "Sofía", "Elena", "Paula", "Marta",
];
const ES_LAST: &[&str] = &[
    "García",
    "Rodríguez",
    "González",
    "Fernández",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Gómez",
    "Martín",
    "Jiménez",
    "Ruiz",
];
const DISTRICTS: &[(&str, f64)] = &[
    ("浦东新区", 22.0),
    ("闵行区", 10.0),
    ("徐汇区", 8.0),
    ("宝山区", 8.0),
    ("松江区", 7.0),
    ("嘉定区", 6.0),
    ("杨浦区", 6.0),
    ("静安区", 5.0),
    ("普陀区", 5.0),
    ("长宁区", 4.0),
    ("虹口区", 4.0),
    ("青浦区", 4.0),
    ("奉贤区", 4.0),
    ("黄浦区", 3.0),
    ("金山区", 3.0),
    ("崇明区", 1.0),
];
const CHANNELS: &[(&str, f64)] = &[
    ("walk_in", 28.0),
    ("wechat", 16.0),
    ("partner_referral", 14.0),
    ("online_search", 12.0),
    ("member_referral", 8.0),
    ("douyin", 6.0),
    ("insurance", 6.0),
    ("community_event", 5.0),
    ("dianping", 5.0),
];

fn pick_weighted<'a, T>(rng: &mut SmallRng, items: &'a [T], weight: impl Fn(&T) -> f64) -> &'a T {
    let total: f64 = items.iter().map(&weight).sum();
    let mut x = rng.random::<f64>() * total;
    for it in items {
        x -= weight(it);
        if x <= 0.0 {
            return it;
        }
    }
    &items[items.len() - 1]
}

fn pick<'a, T>(rng: &mut SmallRng, items: &'a [T]) -> &'a T {
    &items[rng.random_range(0..items.len())]
}

fn std_normal(rng: &mut SmallRng) -> f64 {
    // Box–Muller; one of the pair is enough here.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// Gamma(shape, 1) by Marsaglia and Tsang, with the boost for shape < 1.
fn gamma(rng: &mut SmallRng, shape: f64) -> f64 {
    if shape < 1.0 {
        let u: f64 = rng.random::<f64>().max(1e-300);
        return gamma(rng, shape + 1.0) * u.powf(1.0 / shape);
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = std_normal(rng);
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u: f64 = rng.random();
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

fn beta(rng: &mut SmallRng, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    x / (x + y)
}

fn exponential(rng: &mut SmallRng, rate: f64) -> f64 {
    let u: f64 = rng.random::<f64>().max(1e-300);
    -u.ln() / rate
}

/// A log-normal amount in yuan with the given median, rounded to fen.
fn amount(rng: &mut SmallRng, median: f64, sigma: f64) -> i64 {
    let v = median * (sigma * std_normal(rng)).exp();
    (v * 100.0).round().max(100.0) as i64
}

fn visit_amount(rng: &mut SmallRng, kind: VisitKind, vip: bool) -> i64 {
    let m = if vip { 2.5 } else { 1.0 };
    match kind {
        VisitKind::Outpatient => amount(rng, 260.0 * m, 0.8),
        VisitKind::Exam => amount(rng, 520.0 * m, 0.7),
        VisitKind::Checkup => {
            let packages = [880.0, 1580.0, 2680.0, 4880.0, 8800.0];
            let i = if vip {
                rng.random_range(2..5)
            } else {
                rng.random_range(0..4)
            };
            (packages[i] * 100.0) as i64
        }
        VisitKind::Inpatient => amount(rng, 14_000.0 * m, 0.9),
        VisitKind::Telehealth => amount(rng, 60.0 * m, 0.5),
    }
}

struct GenPatient {
    row: Vec<Value>,
    visits: Vec<(NaiveDate, usize, u32, VisitKind, i64)>,
}

struct Generator {
    rng: SmallRng,
    spec: DemoSpec,
    start: NaiveDate,
    span_days: u64,
    household_seq: u64,
    last_household: Option<(String, String, String)>,
}

impl Generator {
    fn new(spec: DemoSpec) -> Self {
        let span_days = u64::from(spec.years) * 365 + u64::from(spec.years / 4);
        let start = spec.end - Days::new(span_days);
        Generator {
            rng: SmallRng::seed_from_u64(spec.seed),
            spec,
            start,
            span_days,
            household_seq: 0,
            last_household: None,
        }
    }

    fn patient(&mut self, n: u64, hospital_id: i64, now: DateTime<Utc>) -> GenPatient {
        let rng = &mut self.rng;
        let culture = rng.random::<f64>();
        let female = rng.random::<f64>() < 0.53;
        let sex = if female { Sex::Female } else { Sex::Male };
        // Families: a share of patients join the household of the previous one.
        let join_household = self.last_household.is_some() && rng.random::<f64>() < 0.18;
        let (name, email_user, language, phone) = if culture < 0.86 {
            let (surname, sur_py) = if join_household {
                let h = self
                    .last_household
                    .as_ref()
                    .map(|h| h.1.clone())
                    .unwrap_or_default();
                SURNAMES
                    .iter()
                    .find(|s| s.0 == h)
                    .map(|s| (s.0, s.1))
                    .unwrap_or(("王", "wang"))
            } else {
                let s = pick_weighted(rng, SURNAMES, |s| s.2);
                (s.0, s.1)
            };
            let pool = if female { GIVEN_F } else { GIVEN_M };
            let g1 = pick(rng, pool);
            let (given, given_py) = if rng.random::<f64>() < 0.7 {
                let g2 = pick(rng, pool);
                (format!("{}{}", g1.0, g2.0), format!("{}{}", g1.1, g2.1))
            } else {
                (g1.0.to_string(), g1.1.to_string())
            };
            let prefix = pick(
                rng,
                &[
                    "139", "138", "137", "136", "135", "158", "159", "186", "188", "177", "133",
                    "153", "189", "180",
                ],
            );
            let phone = format!("{prefix}{:08}", rng.random_range(0..100_000_000u32));
            (
                format!("{surname}{given}"),
                format!("{sur_py}.{given_py}"),
                Language::ZhCn,
                phone,
            )
        } else if culture < 0.93 {
            let first = pick(rng, if female { ES_FIRST_F } else { ES_FIRST_M });
            let last = pick(rng, ES_LAST);
            let last2 = pick(rng, ES_LAST);
            let phone = format!("+346{:08}", rng.random_range(0..100_000_000u32));
            let user = format!("{}.{}", first.to_lowercase(), last.to_lowercase())
                .replace(['á', 'à'], "a")
                .replace('é', "e")
                .replace('í', "i")
                .replace('ó', "o")
                .replace('ú', "u");
            (format!("{first} {last} {last2}"), user, Language::Es, phone)
        } else {
            let first = pick(rng, if female { EN_FIRST_F } else { EN_FIRST_M });
            let last = pick(rng, EN_LAST);
            let phone = format!("+447{:09}", rng.random_range(0..1_000_000_000u32));
            (
                format!("{first} {last}"),
                format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
                Language::En,
                phone,
            )
        };
        let age_years = (gamma(rng, 3.2) * 12.5).min(98.0) as u64;
        let registered =
            self.start + Days::new((self.span_days as f64 * rng.random::<f64>().powf(0.7)) as u64);
        let birth_date = registered
            .checked_sub_days(Days::new(age_years * 365 + rng.random_range(0..365)))
            .unwrap_or(registered);
        let email = (rng.random::<f64>() < 0.45).then(|| {
            let domain = match language {
                Language::ZhCn => *pick(
                    rng,
                    &["qq.com", "163.com", "126.com", "sina.com", "foxmail.com"],
                ),
                Language::Es => *pick(rng, &["gmail.com", "hotmail.es", "yahoo.es"]),
                Language::En => *pick(rng, &["gmail.com", "outlook.com", "yahoo.co.uk"]),
            };
            format!("{email_user}{}@{domain}", n % 1000)
        });
        let channel = match (language, rng.random::<f64>()) {
            (Language::ZhCn, x) if x < 0.55 => Channel::Wechat,
            (_, x) if x < 0.75 => Channel::Sms,
            (_, x) if x < 0.85 => Channel::Phone,
            _ if email.is_some() => Channel::Email,
            _ => Channel::Sms,
        };
        let household = if join_household {
            self.last_household.as_ref().map(|h| h.0.clone())
        } else if rng.random::<f64>() < 0.25 {
            self.household_seq += 1;
            Some(format!("HH{:07}", self.household_seq))
        } else {
            None
        };
        let district = pick_weighted(rng, DISTRICTS, |d| d.1).0;
        let phone = if join_household && rng.random::<f64>() < 0.4 {
            // Children often share a parent's phone.
            self.last_household
                .as_ref()
                .map(|h| h.2.clone())
                .unwrap_or(phone)
        } else {
            phone
        };
        if let Some(h) = &household {
            let surname = SURNAMES
                .iter()
                .find(|s| name.starts_with(s.0))
                .map(|s| s.0.to_string())
                .unwrap_or_default();
            self.last_household = Some((h.clone(), surname, phone.clone()));
        }
        let source = pick_weighted(rng, CHANNELS, |c| c.1).0;

        // The visit process.
        let chronic = rng.random::<f64>() < 0.12;
        let vip = rng.random::<f64>() < 0.03;
        let lambda = gamma(rng, 0.55) / if chronic { 40.0 } else { 160.0 };
        let p_drop = beta(rng, 1.0, if chronic { 12.0 } else { 4.0 });
        let home_dept = DEPARTMENTS
            .iter()
            .position(|d| std::ptr::eq(d, pick_weighted(rng, DEPARTMENTS, |d| d.weight)))
            .unwrap_or(0);
        let mut visits = Vec::new();
        let mut day = registered;
        loop {
            let kind = if visits.is_empty() && rng.random::<f64>() < 0.12 {
                VisitKind::Checkup
            } else {
                let x = rng.random::<f64>();
                match x {
                    x if x < 0.66 => VisitKind::Outpatient,
                    x if x < 0.82 => VisitKind::Exam,
                    x if x < 0.89 => VisitKind::Checkup,
                    x if x < 0.95 => VisitKind::Telehealth,
                    _ => VisitKind::Inpatient,
                }
            };
            let dept = if kind == VisitKind::Checkup {
                CHECKUP_DEPT
            } else if rng.random::<f64>() < 0.7 {
                home_dept
            } else {
                let d = pick_weighted(rng, DEPARTMENTS, |d| d.weight);
                DEPARTMENTS
                    .iter()
                    .position(|x| std::ptr::eq(x, d))
                    .unwrap_or(0)
            };
            let doctor = rng.random_range(0..DEPARTMENTS[dept].doctors);
            let amt = visit_amount(rng, kind, vip);
            visits.push((day, dept, doctor, kind, amt));
            if rng.random::<f64>() < p_drop {
                break;
            }
            let gap = exponential(rng, lambda).ceil().max(1.0);
            if gap > 4000.0 {
                break;
            }
            day = day + Days::new(gap as u64);
            if day > self.spec.end {
                break;
            }
            if kind == VisitKind::Inpatient && rng.random::<f64>() < 0.8 {
                // A follow-up outpatient visit after discharge.
                let f = day;
                let amt = visit_amount(rng, VisitKind::Outpatient, vip);
                visits.push((f, dept, doctor, VisitKind::Outpatient, amt));
            }
        }
        visits.sort_by_key(|v| v.0);
        let mut tags = Vec::new();
        if chronic {
            tags.push("chronic");
        }
        if vip {
            tags.push("vip");
        }
        if age_years < 14 {
            tags.push("pediatric");
        }
        let row: Vec<Value> = vec![
            (n as i64).into(),
            hospital_id.into(),
            format!("P{n:08}").into(),
            name.into(),
            sex.as_str().into(),
            birth_date.into(),
            Value::Int(Some(i64::from(chrono::Datelike::year(&birth_date)))),
            phone.into(),
            email.into(),
            district.into(),
            source.into(),
            registered.into(),
            channel.as_str().into(),
            language.as_str().into(),
            household.into(),
            serde_json_tags(&tags).into(),
            now.into(),
            now.into(),
        ];
        GenPatient { row, visits }
    }
}

fn serde_json_tags(tags: &[&str]) -> String {
    serde_json::to_string(tags).unwrap_or_else(|_| "[]".into())
}

const PATIENT_COLUMNS: &[&str] = &[
    "id",
    "hospital_id",
    "patient_id",
    "name",
    "sex",
    "birth_date",
    "birth_year",
    "phone",
    "email",
    "district",
    "source_channel",
    "registered_on",
    "preferred_channel",
    "preferred_language",
    "household",
    "tags",
    "created_at",
    "updated_at",
];
const VISIT_COLUMNS: &[&str] = &[
    "id",
    "hospital_id",
    "visit_id",
    "patient_key",
    "visit_date",
    "department_id",
    "doctor_id",
    "kind",
    "amount",
    "created_at",
    "updated_at",
];
const AGG_COLUMNS: &[&str] = &[
    "patient_key",
    "hospital_id",
    "first_visit",
    "last_visit",
    "visits",
    "visit_days",
    "monetary",
    "first_day_monetary",
    "months_with_visits",
    "cohort_mask",
];

/// Patients per transaction: large enough to amortise commits, small
/// enough to keep memory flat.
const BATCH: u64 = 20_000;

/// Whether the database already holds patients (the demo then leaves it).
pub async fn has_data(app: &App) -> Result<bool> {
    Ok(rapport_store::patients::count(&app.db).await? > 0)
}

/// Fills an empty database with the demo hospital. `progress` is called
/// after every batch with the patients written so far.
pub async fn generate(
    app: &App,
    spec: &DemoSpec,
    mut progress: impl FnMut(u64),
) -> Result<DemoReport> {
    let now = app.now();
    let hid = app.hospital_id;
    let mut report = DemoReport::default();

    // Departments and doctors first, with ids the visits can reference.
    let mut tx = app.db.begin().await?;
    rapport_store::hospitals::rename(&mut tx, hid, "Rapport Demo Specialty Hospital").await?;
    let dept_base = bulk::max_id(&mut tx, "departments").await?;
    let doctor_base = bulk::max_id(&mut tx, "doctors").await?;
    let mut dept_rows = Vec::new();
    let mut doctor_rows = Vec::new();
    let mut doctor_ids: Vec<Vec<i64>> = Vec::new();
    let mut rng = SmallRng::seed_from_u64(spec.seed ^ 0x5eed);
    let mut next_doctor = doctor_base;
    for (i, d) in DEPARTMENTS.iter().enumerate() {
        let dept_id = dept_base + i as i64 + 1;
        dept_rows.push(vec![dept_id.into(), hid.into(), d.name.into()]);
        let mut ids = Vec::new();
        for _ in 0..d.doctors {
            next_doctor += 1;
            let female = rng.random::<bool>();
            let s = pick_weighted(&mut rng, SURNAMES, |s| s.2).0;
            let g = pick(&mut rng, if female { GIVEN_F } else { GIVEN_M }).0;
            let g2 = pick(&mut rng, if female { GIVEN_F } else { GIVEN_M }).0;
            doctor_rows.push(vec![
                next_doctor.into(),
                hid.into(),
                format!("D{next_doctor:04}").into(),
                format!("{s}{g}{g2}").into(),
                dept_id.into(),
            ]);
            ids.push(next_doctor);
        }
        doctor_ids.push(ids);
    }
    bulk::insert_rows(
        &mut tx,
        "departments",
        &["id", "hospital_id", "name"],
        &dept_rows,
    )
    .await?;
    bulk::insert_rows(
        &mut tx,
        "doctors",
        &["id", "hospital_id", "code", "name", "department_id"],
        &doctor_rows,
    )
    .await?;
    bulk::sync_id_sequence(&mut tx, "departments").await?;
    bulk::sync_id_sequence(&mut tx, "doctors").await?;
    let patient_base = bulk::max_id(&mut tx, "patients").await?;
    let mut visit_id = bulk::max_id(&mut tx, "visits").await?;
    tx.commit().await?;
    report.departments = dept_rows.len() as u64;
    report.doctors = doctor_rows.len() as u64;

    let mut generator = Generator::new(spec.clone());
    let mut written = 0;
    while written < spec.patients {
        let n = BATCH.min(spec.patients - written);
        let mut patients = Vec::with_capacity(n as usize);
        let mut visits = Vec::with_capacity(n as usize * 4);
        let mut aggs = Vec::with_capacity(n as usize);
        for i in 0..n {
            let key = patient_base + (written + i) as i64 + 1;
            let mut g = generator.patient(key as u64, hid, now);
            g.row[0] = key.into();
            patients.push(g.row);
            let dated: Vec<(NaiveDate, i64)> = g.visits.iter().map(|v| (v.0, v.4)).collect();
            if let Some(a) = PatientAggregates::from_visits(dated) {
                let mut row = vec![key.into(), hid.into()];
                row.extend(rapport_store::patients::aggregate_values(&a));
                aggs.push(row);
            }
            for (date, dept, doctor, kind, amt) in g.visits {
                visit_id += 1;
                report.revenue += amt;
                visits.push(vec![
                    visit_id.into(),
                    hid.into(),
                    format!("V{visit_id:010}").into(),
                    key.into(),
                    date.into(),
                    (dept_base + dept as i64 + 1).into(),
                    doctor_ids[dept][doctor as usize].into(),
                    kind.as_str().into(),
                    amt.into(),
                    now.into(),
                    now.into(),
                ]);
            }
        }
        let mut tx = app.db.begin().await?;
        bulk::insert_rows(&mut tx, "patients", PATIENT_COLUMNS, &patients).await?;
        report.visits += bulk::insert_rows(&mut tx, "visits", VISIT_COLUMNS, &visits).await?;
        bulk::insert_rows(&mut tx, "patient_aggregates", AGG_COLUMNS, &aggs).await?;
        tx.commit().await?;
        written += n;
        report.patients = written;
        progress(written);
    }
    let mut tx = app.db.begin().await?;
    bulk::sync_id_sequence(&mut tx, "patients").await?;
    bulk::sync_id_sequence(&mut tx, "visits").await?;
    tx.commit().await?;
    bulk::analyze(&app.db).await?;
    Ok(report)
}
