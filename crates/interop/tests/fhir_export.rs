//! `export fhir`: the resources are valid against the official R4 JSON
//! Schema (checked with Python's `jsonschema` when it is installed) and
//! read back by our own importer to the same values.

use std::path::PathBuf;
use std::process::Command;

use chrono::{NaiveDate, Utc};
use rapport_domain::Money;
use rapport_domain::patient::{PatientFields, Sex, Visit, VisitKind};
use rapport_interop::fhir::read_fhir;
use rapport_interop::fhir_export::{
    claim, doctors_and_departments, encounter, fhir_id, organization, patient, practitioner,
    write_ndjson,
};

fn patients() -> Vec<(String, PatientFields)> {
    vec![
        (
            "P001".to_string(),
            PatientFields {
                name: "张三".into(),
                sex: Some(Sex::Male),
                birth_date: NaiveDate::from_ymd_opt(1980, 2, 29),
                birth_year: Some(1980),
                phone: Some("+8613800000000".into()),
                email: Some("zs@example.cn".into()),
                district: Some("海淀区".into()),
                national_id: Some("never exported".into()),
                ..Default::default()
            },
        ),
        (
            "门诊/002".to_string(),
            PatientFields {
                name: "Ana Gómez".into(),
                sex: Some(Sex::Female),
                birth_year: Some(1975),
                ..Default::default()
            },
        ),
        ("P_3".to_string(), PatientFields::default()),
    ]
}

fn visits() -> Vec<Visit> {
    let now = Utc::now();
    let v = |visit_id: &str,
             patient_id: &str,
             dept: Option<&str>,
             doc: Option<(&str, Option<&str>)>,
             kind| Visit {
        id: 0,
        hospital_id: 1,
        visit_id: visit_id.into(),
        patient_key: 0,
        patient_id: patient_id.into(),
        visit_date: NaiveDate::from_ymd_opt(2025, 5, 17).unwrap(),
        department: dept.map(Into::into),
        doctor_id: doc.map(|d| d.0.into()),
        doctor_name: doc.and_then(|d| d.1.map(Into::into)),
        kind,
        amount: Money(12345),
        created_at: now,
        updated_at: now,
    };
    vec![
        v(
            "V1",
            "P001",
            Some("心内科"),
            Some(("D01", None)),
            VisitKind::Inpatient,
        ),
        v(
            "V2",
            "门诊/002",
            Some("心内科"),
            Some(("D01", Some("李医生"))),
            VisitKind::Telehealth,
        ),
        v("V 3", "P_3", None, None, VisitKind::Checkup),
    ]
}

/// The NDJSON files' contents.
fn export() -> [(String, Vec<u8>); 5] {
    let visits = visits();
    let (docs, depts) = doctors_and_departments(&visits);
    let mut out = [
        ("Patient".to_string(), Vec::new()),
        ("Encounter".to_string(), Vec::new()),
        ("Practitioner".to_string(), Vec::new()),
        ("Organization".to_string(), Vec::new()),
        ("Claim".to_string(), Vec::new()),
    ];
    write_ndjson(
        &mut out[0].1,
        patients().iter().map(|(id, f)| patient(id, f)),
    )
    .unwrap();
    write_ndjson(&mut out[1].1, visits.iter().map(encounter)).unwrap();
    write_ndjson(&mut out[2].1, docs.iter().map(practitioner)).unwrap();
    write_ndjson(&mut out[3].1, depts.iter().map(organization)).unwrap();
    write_ndjson(&mut out[4].1, visits.iter().map(|v| claim(v, "CNY"))).unwrap();
    out
}

#[test]
fn exported_resources_read_back() {
    let all: Vec<u8> = export().into_iter().flat_map(|(_, b)| b).collect();
    let text = String::from_utf8(all.clone()).unwrap();
    assert!(!text.contains("never exported"));
    let batch = read_fhir("export", &all).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(batch.patients.len(), 3);
    for ((pid, f), p) in patients().iter().zip(&batch.patients) {
        assert_eq!(&p.patient_id, pid);
        assert_eq!(p.resource_id, fhir_id(pid));
        assert_eq!(p.name.as_deref().unwrap_or(""), f.name);
        assert_eq!(p.sex, f.sex);
        assert_eq!(p.birth_date, f.birth_date);
        assert_eq!(p.birth_year, f.birth_year);
        assert_eq!(p.phone, f.phone);
        assert_eq!(p.email, f.email);
        assert_eq!(p.district, f.district);
    }
    let visits = visits();
    assert_eq!(batch.encounters.len(), visits.len());
    for (v, e) in visits.iter().zip(&batch.encounters) {
        // The hospital's id and the exact kind come back from our own
        // identifier and type coding; the amount from the Claim.
        assert_eq!(e.visit_id, v.visit_id);
        assert_eq!(batch.encounter_amount(&e.visit_id), Some(v.amount));
        assert_eq!(e.start, Some(v.visit_date));
        assert_eq!(e.patient, fhir_id(&v.patient_id));
        assert_eq!(e.practitioner, v.doctor_id.as_deref().map(fhir_id));
        assert_eq!(e.kind, v.kind);
        assert_eq!(
            rapport_interop::fhir::visit_kind(e.class_code.as_deref()),
            match v.kind {
                VisitKind::Exam | VisitKind::Checkup => VisitKind::Outpatient,
                k => k,
            }
        );
    }
    // One doctor (named by the second visit), one department.
    assert_eq!(batch.practitioners.len(), 1);
    assert_eq!(batch.practitioners[0].name.as_deref(), Some("李医生"));
    assert_eq!(batch.organizations.len(), 1);
    assert_eq!(batch.organizations[0].name.as_deref(), Some("心内科"));
    // The hospital's ids survive even when the FHIR id had to be hashed.
    let (pid, _) = batch.visits().into_iter().nth(1).unwrap();
    assert_eq!(pid, "门诊/002");
}

#[test]
fn exported_resources_are_valid_against_the_r4_schema() {
    let importable = Command::new("python3")
        .args(["-c", "import jsonschema"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !importable {
        println!("skipped: python3 with the jsonschema package is not available");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rapport-interop-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    let mut lines = 0;
    for (name, bytes) in export() {
        lines += bytes.iter().filter(|&&b| b == b'\n').count();
        let path = dir.join(format!("{name}.ndjson"));
        std::fs::write(&path, bytes).unwrap();
        files.push(path);
    }
    let (ok, out) = validate(&files);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{lines} resources")), "{out}");

    // The validator does reject what is invalid (a wrong gender code, an
    // id with a slash), so the check above means something.
    let bad = dir.join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"resourceType\":\"Patient\",\"id\":\"a/b\",\"gender\":\"M\"}\n",
    )
    .unwrap();
    let (ok, out) = validate(&[bad]);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!ok, "{out}");
    assert!(out.contains("gender") && out.contains("id"), "{out}");
}

/// Runs Python's jsonschema over NDJSON files; (success, output).
fn validate(files: &[PathBuf]) -> (bool, String) {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/fhir/schema/fhir.schema.json");
    let script = r##"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
validator = jsonschema.validators.validator_for(schema)(schema)
bad = 0
count = 0
for path in sys.argv[2:]:
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        count += 1
        r = json.loads(line)
        # Validate against the resource's own definition for readable
        # errors, then against the whole schema (the discriminated oneOf).
        sub = {"$ref": "#/definitions/" + r["resourceType"], "definitions": schema["definitions"]}
        for e in jsonschema.validators.validator_for(schema)(sub).iter_errors(r):
            bad += 1
            print(f"{path}:{n}: {list(e.absolute_path)}: {e.message}")
        if not validator.is_valid(r):
            bad += 1
            print(f"{path}:{n}: invalid against the full schema")
print(f"{count} resources")
sys.exit(1 if bad or count == 0 else 0)
"##;
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&schema)
        .args(files)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}
