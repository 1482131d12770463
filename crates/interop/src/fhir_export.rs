//! Writing FHIR R4 resources (NDJSON, one resource per line) from the
//! domain's records: `export fhir DIR` writes `Patient.ndjson`,
//! `Encounter.ndjson`, `Practitioner.ndjson`, `Organization.ndjson`.
//!
//! Choices, and why:
//!
//! - **Ids.** FHIR ids are `[A-Za-z0-9-.]{1,64}`; hospital ids may hold
//!   anything (`门诊/001`, underscores). An id that fits is used as is;
//!   otherwise it becomes `h-` and a 64-bit FNV-1a hash of the text
//!   (deterministic, so re-exports and references agree). The hospital's
//!   id is always kept verbatim in `identifier`, under the systems below,
//!   so an importer (ours included) gets it back.
//! - **Departments** are Organizations whose id derives from the
//!   department's name (visits carry only the name).
//! - **Names** go in `name.text`: Rapport stores one name string and
//!   guessing a family/given split would be wrong for half the world.
//! - **Privacy.** National ids, notes and tags are never exported.
//! - **Money** is not part of these four resources (Claims are not
//!   exported yet).

use std::io::{self, Write};

use rapport_domain::patient::{PatientFields, Sex, Visit, VisitKind};
use serde_json::{Map, Value, json};

/// `identifier.system` for the hospital's patient ids.
pub const PATIENT_SYSTEM: &str = "urn:rapport:patient-id";
/// `identifier.system` for visit ids.
pub const VISIT_SYSTEM: &str = "urn:rapport:visit-id";
/// `Encounter.type` coding system for the visit's kind.
pub const VISIT_KIND_SYSTEM: &str = "urn:rapport:visit-kind";
/// `identifier.system` for doctor ids.
pub const DOCTOR_SYSTEM: &str = "urn:rapport:doctor-id";
/// `identifier.system` for department names.
pub const DEPARTMENT_SYSTEM: &str = "urn:rapport:department";

/// A doctor as the visits name them (the domain has no doctor record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Doctor {
    pub doctor_id: String,
    pub name: Option<String>,
}

/// A department, known by its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Department {
    pub name: String,
}

/// A valid FHIR id for a hospital id (see the module docs).
pub fn fhir_id(raw: &str) -> String {
    let fits = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if fits {
        raw.to_string()
    } else {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in raw.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        format!("h-{h:016x}")
    }
}

/// The Organization id of a department.
pub fn department_id(name: &str) -> String {
    fhir_id(&format!("dept-{name}"))
}

fn identifier(system: &str, value: &str) -> Value {
    json!({"system": system, "value": value})
}

/// A Patient resource.
pub fn patient(patient_id: &str, f: &PatientFields) -> Value {
    let mut r = Map::new();
    r.insert("resourceType".into(), "Patient".into());
    r.insert("id".into(), fhir_id(patient_id).into());
    r.insert(
        "identifier".into(),
        json!([{
            "use": "usual",
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                "code": "MR"
            }]},
            "system": PATIENT_SYSTEM,
            "value": patient_id
        }]),
    );
    if !f.name.is_empty() {
        r.insert("name".into(), json!([{"text": f.name}]));
    }
    let mut telecom = Vec::new();
    if let Some(p) = &f.phone {
        telecom.push(json!({"system": "phone", "value": p}));
    }
    if let Some(e) = &f.email {
        telecom.push(json!({"system": "email", "value": e}));
    }
    if !telecom.is_empty() {
        r.insert("telecom".into(), telecom.into());
    }
    if let Some(s) = f.sex {
        let g = match s {
            Sex::Male => "male",
            Sex::Female => "female",
            Sex::Unknown => "unknown",
        };
        r.insert("gender".into(), g.into());
    }
    // FHIR dates may be partial: a birth year alone is `YYYY`.
    if let Some(d) = f.birth_date {
        r.insert("birthDate".into(), d.to_string().into());
    } else if let Some(y) = f.birth_year {
        r.insert("birthDate".into(), format!("{y:04}").into());
    }
    if let Some(d) = &f.district {
        r.insert("address".into(), json!([{"district": d}]));
    }
    Value::Object(r)
}

/// The v3 ActCode of a visit kind: exams and check-ups are ambulatory.
pub fn class_code(kind: VisitKind) -> &'static str {
    match kind {
        VisitKind::Inpatient => "IMP",
        VisitKind::Telehealth => "VR",
        VisitKind::Outpatient | VisitKind::Exam | VisitKind::Checkup => "AMB",
    }
}

/// An Encounter resource for a stored visit.
pub fn encounter(v: &Visit) -> Value {
    let mut r = Map::new();
    r.insert("resourceType".into(), "Encounter".into());
    r.insert("id".into(), fhir_id(&v.visit_id).into());
    r.insert(
        "identifier".into(),
        json!([identifier(VISIT_SYSTEM, &v.visit_id)]),
    );
    r.insert("status".into(), "finished".into());
    r.insert(
        "class".into(),
        json!({
            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
            "code": class_code(v.kind)
        }),
    );
    r.insert(
        "subject".into(),
        json!({"reference": format!("Patient/{}", fhir_id(&v.patient_id))}),
    );
    if let Some(d) = &v.doctor_id {
        r.insert(
            "participant".into(),
            json!([{"individual": {"reference": format!("Practitioner/{}", fhir_id(d))}}]),
        );
    }
    r.insert(
        "type".into(),
        json!([{"coding": [{"system": VISIT_KIND_SYSTEM, "code": v.kind.as_str()}]}]),
    );
    r.insert("period".into(), json!({"start": v.visit_date.to_string()}));
    if let Some(d) = &v.department {
        r.insert(
            "serviceProvider".into(),
            json!({"reference": format!("Organization/{}", department_id(d)), "display": d}),
        );
    }
    Value::Object(r)
}

/// A Claim resource carrying a visit's amount (`total`, and the one
/// item's `net`), tied to its Encounter, so that the money travels with
/// the visits (FHIR's Encounter has no amount).
pub fn claim(v: &Visit, currency: &str) -> Value {
    let amount: Value = crate::decimal::json_number(v.amount.minor());
    let money = json!({"value": amount, "currency": currency});
    let encounter = format!("Encounter/{}", fhir_id(&v.visit_id));
    json!({
        "resourceType": "Claim",
        "id": fhir_id(&format!("claim-{}", v.visit_id)),
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "professional"}]},
        "use": "claim",
        "patient": {"reference": format!("Patient/{}", fhir_id(&v.patient_id))},
        "created": v.visit_date.to_string(),
        "provider": {"display": v.department.clone().unwrap_or_else(|| "hospital".into())},
        "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"}]},
        "insurance": [{"sequence": 1, "focal": true, "coverage": {"display": "self-pay"}}],
        "item": [{
            "sequence": 1,
            "encounter": [{"reference": encounter}],
            "productOrService": {"text": v.kind.as_str()},
            "net": money.clone()
        }],
        "total": money
    })
}

/// A Practitioner resource.
pub fn practitioner(d: &Doctor) -> Value {
    let mut r = json!({
        "resourceType": "Practitioner",
        "id": fhir_id(&d.doctor_id),
        "identifier": [identifier(DOCTOR_SYSTEM, &d.doctor_id)],
    });
    if let Some(n) = d.name.as_deref().filter(|n| !n.trim().is_empty()) {
        r["name"] = json!([{"text": n}]);
    }
    r
}

/// An Organization resource for a department.
pub fn organization(d: &Department) -> Value {
    json!({
        "resourceType": "Organization",
        "id": department_id(&d.name),
        "identifier": [identifier(DEPARTMENT_SYSTEM, &d.name)],
        "name": d.name,
    })
}

/// The distinct doctors and departments named by visits, in first-seen
/// order (a doctor's name is the first non-empty one seen).
pub fn doctors_and_departments<'a>(
    visits: impl IntoIterator<Item = &'a Visit>,
) -> (Vec<Doctor>, Vec<Department>) {
    let mut doctors: Vec<Doctor> = Vec::new();
    let mut departments: Vec<Department> = Vec::new();
    let mut seen_doc = std::collections::HashMap::new();
    let mut seen_dept = std::collections::HashSet::new();
    for v in visits {
        if let Some(id) = &v.doctor_id {
            match seen_doc.get(id) {
                Some(&i) => {
                    let d: &mut Doctor = &mut doctors[i];
                    if d.name.is_none() {
                        d.name.clone_from(&v.doctor_name);
                    }
                }
                None => {
                    seen_doc.insert(id.clone(), doctors.len());
                    doctors.push(Doctor {
                        doctor_id: id.clone(),
                        name: v.doctor_name.clone(),
                    });
                }
            }
        }
        if let Some(d) = &v.department
            && seen_dept.insert(d.clone())
        {
            departments.push(Department { name: d.clone() });
        }
    }
    (doctors, departments)
}

/// Writes resources as NDJSON (one compact JSON object and `\n` each).
/// Returns how many were written.
pub fn write_ndjson<W: Write>(
    mut w: W,
    resources: impl IntoIterator<Item = Value>,
) -> io::Result<usize> {
    let mut n = 0;
    for r in resources {
        serde_json::to_writer(&mut w, &r)?;
        w.write_all(b"\n")?;
        n += 1;
    }
    w.flush()?;
    Ok(n)
}
