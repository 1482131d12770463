//! FHIR reading against outside data: the Synthea bundles (answers in
//! `MANIFEST.json`, computed by another tool) and the official HL7 R4
//! examples.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use rapport_domain::patient::Sex;
use rapport_interop::decimal::Amount;
use rapport_interop::fhir::{ChargeSource, FhirBatch, FhirCharge, FhirReader, read_fhir};
use serde_json::Value;

fn data() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fhir")
}

fn manifest() -> serde_json::Map<String, Value> {
    let text = std::fs::read_to_string(data().join("MANIFEST.json")).unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_object()
        .unwrap()
        .clone()
}

/// Dollars as written in the manifest to cents, independently of the
/// crate's decimal code (the manifest's sums have at most two places).
fn cents(v: &Value) -> i64 {
    (v.as_f64().unwrap() * 100.0).round() as i64
}

/// The exact sum of one amount over the charges of one kind, rounded once.
fn sum(batch: &FhirBatch, source: ChargeSource, f: impl Fn(&FhirCharge) -> Option<Amount>) -> i64 {
    batch
        .charges
        .iter()
        .filter(|c| c.source == source)
        .filter_map(f)
        .try_fold(Amount::default(), Amount::checked_add)
        .unwrap()
        .to_money()
        .unwrap()
        .minor()
}

#[test]
fn synthea_bundles_match_the_manifest() {
    let manifest = manifest();
    assert!(manifest.len() >= 7);
    for (file, expect) in &manifest {
        let bytes = std::fs::read(data().join(file)).unwrap();
        let batch = read_fhir(file, &bytes).unwrap_or_else(|e| panic!("{e}"));
        let counts: BTreeMap<String, usize> = expect["resource_counts"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap() as usize))
            .collect();
        assert_eq!(batch.resource_counts, counts, "{file}");
        assert_eq!(
            batch.resource_counts.values().sum::<usize>() as u64,
            expect["entries"].as_u64().unwrap(),
            "{file}"
        );
        let mapped = [
            "Patient",
            "Practitioner",
            "Organization",
            "Encounter",
            "Claim",
            "ExplanationOfBenefit",
        ];
        for (t, n) in &counts {
            if !mapped.contains(&t.as_str()) {
                assert_eq!(batch.ignored.get(t), Some(n), "{file} {t}");
            }
        }
        assert_eq!(
            batch.patients.len(),
            counts.get("Patient").copied().unwrap_or(0)
        );
        assert_eq!(
            batch.encounters.len(),
            counts.get("Encounter").copied().unwrap_or(0)
        );
        assert_eq!(
            batch.practitioners.len(),
            counts.get("Practitioner").copied().unwrap_or(0)
        );
        assert_eq!(
            batch.organizations.len(),
            counts.get("Organization").copied().unwrap_or(0)
        );
        let Some(claim_sum) = expect.get("claim_total_sum") else {
            continue;
        };
        assert_eq!(
            sum(&batch, ChargeSource::Claim, |c| c.total),
            cents(claim_sum),
            "{file}"
        );
        let without_total = batch
            .charges
            .iter()
            .filter(|c| c.source == ChargeSource::Claim && c.total.is_none())
            .count() as u64;
        assert_eq!(
            without_total,
            expect["claims_without_total"].as_u64().unwrap()
        );
        assert_eq!(
            sum(&batch, ChargeSource::ExplanationOfBenefit, |c| c.payment),
            cents(&expect["eob_payment_sum"]),
            "{file}"
        );
        assert_eq!(
            sum(&batch, ChargeSource::ExplanationOfBenefit, |c| c.total),
            cents(&expect["eob_submitted_total_sum"]),
            "{file}"
        );
        // Every claim is tied to an encounter, so the visits' amounts add
        // up to the claims' total (Synthea's claim totals have no noise).
        let visits: i64 = batch
            .encounters
            .iter()
            .map(|e| batch.encounter_amount(&e.visit_id).unwrap().minor())
            .sum();
        assert_eq!(visits, cents(claim_sum), "{file}");
        assert!(
            batch.charges.iter().all(|c| c.encounter.is_some()),
            "{file}"
        );

        let starts: Vec<chrono::DateTime<chrono::FixedOffset>> = batch
            .encounters
            .iter()
            .map(|e| {
                chrono::DateTime::parse_from_rfc3339(e.start_text.as_deref().unwrap()).unwrap()
            })
            .collect();
        let first =
            chrono::DateTime::parse_from_rfc3339(expect["encounter_first_start"].as_str().unwrap())
                .unwrap();
        let last =
            chrono::DateTime::parse_from_rfc3339(expect["encounter_last_start"].as_str().unwrap())
                .unwrap();
        assert_eq!(starts.iter().min(), Some(&first));
        assert_eq!(starts.iter().max(), Some(&last));
        let mut classes: BTreeMap<String, u64> = BTreeMap::new();
        for e in &batch.encounters {
            *classes.entry(e.class_code.clone().unwrap()).or_default() += 1;
        }
        let expect_classes: BTreeMap<String, u64> = expect["encounter_class_counts"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        assert_eq!(classes, expect_classes, "{file}");

        let p = &batch.patients[0];
        let ep = &expect["patient"];
        assert_eq!(p.resource_id, ep["id"].as_str().unwrap());
        let sex = match ep["gender"].as_str().unwrap() {
            "male" => Sex::Male,
            "female" => Sex::Female,
            _ => Sex::Unknown,
        };
        assert_eq!(p.sex, Some(sex));
        assert_eq!(
            p.birth_date.map(|d| d.to_string()).as_deref(),
            ep["birthDate"].as_str()
        );
        // The manifest's name drops Synthea's numeric suffixes
        // (`Alberto639`): compare letters only.
        let letters = |s: &str| {
            s.chars()
                .filter(|c| !c.is_ascii_digit())
                .collect::<String>()
        };
        assert_eq!(
            letters(p.name.as_deref().unwrap()),
            ep["name"].as_str().unwrap()
        );
        // Every encounter belongs to the bundle's patient.
        assert!(batch.encounters.iter().all(|e| e.patient == p.resource_id));
        for (pid, v) in batch.visits() {
            assert_eq!(pid, p.patient_id);
            assert!(!v.visit_date.is_empty());
        }
    }
}

/// Rewrites a bundle as NDJSON with relative references (`Type/id`)
/// instead of the bundle's `urn:uuid:` full URLs.
fn bundle_to_ndjson(bytes: &[u8]) -> String {
    let bundle: Value = serde_json::from_slice(bytes).unwrap();
    let entries = bundle["entry"].as_array().unwrap();
    let mut text: Vec<String> = entries
        .iter()
        .map(|e| serde_json::to_string(&e["resource"]).unwrap())
        .collect();
    for e in entries {
        let url = e["fullUrl"].as_str().unwrap();
        let rel = format!(
            "{}/{}",
            e["resource"]["resourceType"].as_str().unwrap(),
            e["resource"]["id"].as_str().unwrap()
        );
        for line in &mut text {
            *line = line.replace(&format!("\"{url}\""), &format!("\"{rel}\""));
        }
    }
    text.join("\n") + "\n"
}

fn first_synthea_patient() -> (String, Vec<u8>) {
    let name = manifest()
        .keys()
        .find(|k| manifest()[*k].get("claim_total_sum").is_some())
        .unwrap()
        .clone();
    let bytes = std::fs::read(data().join(&name)).unwrap();
    (name, bytes)
}

#[test]
fn ndjson_and_gzip_give_the_same_records_as_the_bundle() {
    let (name, bytes) = first_synthea_patient();
    let from_bundle = read_fhir(&name, &bytes).unwrap();
    let ndjson = bundle_to_ndjson(&bytes);
    let from_ndjson = read_fhir("x.ndjson", ndjson.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(from_ndjson, from_bundle);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(ndjson.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(read_fhir("x.ndjson.gz", &gz).unwrap(), from_bundle);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    assert_eq!(read_fhir("x.json.gz", &gz).unwrap(), from_bundle);
}

#[test]
fn references_resolve_in_every_spelling() {
    let lines = [
        r#"{"resourceType":"Patient","id":"p1","identifier":[{"system":"urn:hosp","value":"H-1"}],"name":[{"family":"张","given":["三"]}],"gender":"female"}"#,
        r#"{"resourceType":"Organization","id":"o1","name":"心内科"}"#,
        r#"{"resourceType":"Practitioner","id":"d1","name":[{"family":"Li","given":["Wei"]}]}"#,
        r#"{"resourceType":"Encounter","id":"e1","class":{"code":"IMP"},"subject":{"reference":"Patient?identifier=urn:hosp|H-1"},"serviceProvider":{"reference":"https://fhir.example.org/r4/Organization/o1/_history/3"},"participant":[{"individual":{"reference":"Practitioner/d1"}}],"period":{"start":"2024-03-05T23:30:00+08:00"}}"#,
        r#"{"resourceType":"Claim","id":"c1","item":[{"encounter":[{"reference":"Encounter/e1"}],"net":{"value":10.005}},{"net":{"value":2.005}}]}"#,
        r#"{"resourceType":"ExplanationOfBenefit","id":"x1","claim":{"reference":"Claim/c1"},"payment":{"amount":{"value":7}}}"#,
    ];
    let batch =
        read_fhir("t.ndjson", lines.join("\n").as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let p = &batch.patients[0];
    assert_eq!(p.patient_id, "H-1");
    assert_eq!(p.name.as_deref(), Some("张三"));
    assert_eq!(p.sex, Some(Sex::Female));
    let e = &batch.encounters[0];
    assert_eq!(e.patient, "p1");
    assert_eq!(e.organization.as_deref(), Some("o1"));
    assert_eq!(e.practitioner.as_deref(), Some("d1"));
    assert_eq!(
        e.start.map(|d| d.to_string()).as_deref(),
        Some("2024-03-05")
    );
    assert_eq!(e.kind.as_str(), "inpatient");
    // No total: the items' net added exactly (10.005 + 2.005 = 12.01),
    // not rounded one by one (half to even: 10.00 + 2.00 = 12.00).
    assert_eq!(batch.encounter_amount("e1").map(|m| m.minor()), Some(1201));
    let eob = batch
        .charges
        .iter()
        .find(|c| c.resource_id == "x1")
        .unwrap();
    assert_eq!(eob.encounter.as_deref(), Some("e1"));
    assert_eq!(
        eob.payment.and_then(|a| a.to_money()).map(|m| m.minor()),
        Some(700)
    );
    let (pid, v) = &batch.visits()[0];
    assert_eq!(pid, "H-1");
    assert_eq!(v.amount, "12.01");
    assert_eq!(v.department.as_deref(), Some("心内科"));
    assert_eq!(v.doctor_name.as_deref(), Some("Wei Li"));
}

#[test]
fn resources_without_ids_take_them_from_the_full_url() {
    let bundle = r#"{"resourceType":"Bundle","type":"transaction","entry":[
        {"fullUrl":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a",
         "resource":{"resourceType":"Patient","gender":"male"},
         "request":{"method":"POST","url":"Patient"}},
        {"fullUrl":"http://example.org/fhir/Encounter/enc-9",
         "resource":{"resourceType":"Encounter","class":{"code":"VR"},
                     "subject":{"reference":"urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"}},
         "request":{"method":"POST","url":"Encounter"}},
        {"request":{"method":"DELETE","url":"Patient/old"}}]}"#;
    let batch = read_fhir("t.json", bundle.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        batch.patients[0].resource_id,
        "61ebe359-bfdc-4613-8bf2-c5e300945f0a"
    );
    // No identifier: the hospital id falls back to the resource id.
    assert_eq!(batch.patients[0].patient_id, batch.patients[0].resource_id);
    assert_eq!(batch.encounters[0].visit_id, "enc-9");
    assert_eq!(batch.encounters[0].patient, batch.patients[0].resource_id);
    assert_eq!(batch.encounters[0].kind.as_str(), "telehealth");
}

#[test]
fn unresolvable_references_name_the_position() {
    let ndjson = concat!(
        "{\"resourceType\":\"Patient\",\"id\":\"p1\"}\n",
        "\n",
        "{\"resourceType\":\"Encounter\",\"id\":\"e1\",\"subject\":{\"reference\":\"Patient/nope\"}}\n",
    );
    let err = read_fhir("v.ndjson", ndjson.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("v.ndjson:3:"), "{err}");
    assert!(err.contains("Patient/nope"), "{err}");

    let bundle = r#"{"resourceType":"Bundle","type":"collection","entry":[
        {"fullUrl":"urn:uuid:a","resource":{"resourceType":"Patient","id":"a"}},
        {"resource":{"resourceType":"Claim","id":"c","item":[{"encounter":[{"reference":"urn:uuid:zzz"}]}]}}]}"#;
    let err = read_fhir("b.json", bundle.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("b.json:1: entry[1]"), "{err}");
}

/// Counts resources by type the way the reader should: bundles by their
/// entries' resources (recursively), anything else as itself.
fn count_types(v: &Value, counts: &mut BTreeMap<String, usize>) {
    let t = v["resourceType"].as_str().unwrap();
    if t == "Bundle" {
        for e in v["entry"].as_array().into_iter().flatten() {
            if e.get("resource").is_some() {
                count_types(&e["resource"], counts);
            }
        }
    } else {
        *counts.entry(t.to_string()).or_default() += 1;
    }
}

fn hl7_files() -> Vec<(String, Vec<u8>, Value)> {
    let dir = data().join("hl7-r4-examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|f| {
            let bytes = std::fs::read(&f).unwrap();
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            // `package.json` is the npm package's metadata, not FHIR.
            v.get("resourceType")?;
            Some((f.file_name()?.to_str()?.to_string(), bytes, v))
        })
        .collect()
}

#[test]
fn hl7_examples_of_the_mapped_types_parse() {
    let mapped = ["Patient", "Encounter", "Practitioner", "Organization"];
    let mut reader = FhirReader::new();
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (name, bytes, v) in hl7_files() {
        if !mapped.contains(&v["resourceType"].as_str().unwrap()) {
            continue;
        }
        count_types(&v, &mut expected);
        reader.add(&name, &bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    let batch = reader.finish().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(batch.resource_counts, expected);
    assert!(batch.ignored.is_empty());
    assert_eq!(batch.patients.len(), expected["Patient"]);
    assert_eq!(batch.encounters.len(), expected["Encounter"]);
    assert_eq!(batch.practitioners.len(), expected["Practitioner"]);
    assert_eq!(batch.organizations.len(), expected["Organization"]);
    let example = batch
        .patients
        .iter()
        .find(|p| p.resource_id == "example")
        .unwrap();
    // Patient/example: MRN identifier 12345, "Peter James Chalmers".
    assert_eq!(example.patient_id, "12345");
    assert_eq!(example.name.as_deref(), Some("Peter James Chalmers"));
}

#[test]
fn the_whole_hl7_examples_folder_parses_and_counts_what_it_ignores() {
    let mapped = [
        "Patient",
        "Encounter",
        "Practitioner",
        "Organization",
        "Claim",
        "ExplanationOfBenefit",
    ];
    let mut reader = FhirReader::new();
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    for (name, bytes, v) in hl7_files() {
        count_types(&v, &mut expected);
        reader.add(&name, &bytes).unwrap_or_else(|e| panic!("{e}"));
    }
    // References cross files (Encounter-f001 → Patient-f001.json), so the
    // folder is one reader; alone, such a file is an error.
    let batch = reader.finish().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(batch.resource_counts, expected);
    let ignored: BTreeMap<String, usize> = expected
        .iter()
        .filter(|(t, _)| !mapped.contains(&t.as_str()))
        .map(|(t, n)| (t.clone(), *n))
        .collect();
    assert!(!ignored.is_empty());
    assert_eq!(batch.ignored, ignored);

    let (name, bytes, _) = hl7_files()
        .into_iter()
        .find(|(n, _, _)| n == "Encounter-f001.json")
        .unwrap();
    let err = read_fhir(&name, &bytes).unwrap_err().to_string();
    assert!(err.contains("Patient/f001"), "{err}");
}
