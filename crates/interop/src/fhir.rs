//! Reading FHIR R4 JSON into the records Rapport keeps.
//!
//! Accepted input: a `Bundle` (any type: transaction, collection,
//! searchset, batch…), a single resource, or NDJSON (one resource per
//! line; in fact any sequence of JSON values), optionally gzip-compressed
//! (detected by its magic bytes, not by the file name).
//!
//! Several sources can be fed to one [`FhirReader`] (a folder of files):
//! references are resolved only in [`FhirReader::finish`], once every
//! resource is known, so a patient bundle may point at an organisation that
//! came in another file. References resolve whether they are written as
//! `urn:uuid:…` (a Bundle `fullUrl`), relative (`Patient/123`), absolute
//! (`https://host/fhir/Patient/123`, `…/_history/2` ignored) or conditional
//! (`Patient?identifier=system|value`). A reference that names nothing we
//! read is an error carrying the position of the resource that holds it
//! (source, NDJSON line, bundle entry index), because silently dropping a
//! visit's patient would lose money.
//!
//! Unlike CSV, FHIR input is held in memory until `finish`: references
//! may point forward or into another file, so nothing can be mapped
//! before everything is read. Bundles and NDJSON exports of a hospital's
//! patients are megabytes, not gigabytes; a bulk export far larger would
//! need a two-pass reader (index ids first, then map), not done yet.
//!
//! Resources are returned in input order; one read twice (the same
//! Organization in several patient bundles) appears twice, and the
//! caller's upsert keeps the last.
//!
//! Only Patient, Practitioner, Organization, Encounter, Claim and
//! ExplanationOfBenefit are mapped; every other type is counted in
//! [`FhirBatch::ignored`]. Amounts are decimals parsed from the JSON
//! number's text (see [`crate::decimal`]), never floats.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Read;

use chrono::NaiveDate;
use rapport_domain::Money;
use rapport_domain::patient::{PatientInput, Sex, VisitInput, VisitKind};
use serde_json::Value;

use crate::decimal::Amount;

/// Where a resource was found: the source's name, the 1-based line where
/// its JSON value starts, and its 0-based index in `Bundle.entry` when it
/// came from a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub source: String,
    pub line: usize,
    pub entry: Option<usize>,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)?;
        if let Some(e) = self.entry {
            write!(f, ": entry[{e}]")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FhirError {
    #[error("{source_name}: {message}")]
    Read {
        source_name: String,
        message: String,
    },
    #[error("{position}: {message}")]
    Resource { position: Position, message: String },
}

/// A FHIR Patient, mapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirPatient {
    /// `Patient.id` (what references point at).
    pub resource_id: String,
    /// The hospital's id: the MRN-typed identifier, else the first
    /// identifier, else the resource id.
    pub patient_id: String,
    pub name: Option<String>,
    pub sex: Option<Sex>,
    pub birth_date: Option<NaiveDate>,
    /// From a partial `birthDate` (`1970` or `1970-05`) or the full date.
    pub birth_year: Option<i32>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub district: Option<String>,
    pub city: Option<String>,
}

impl FhirPatient {
    /// The domain's unparsed input; validate with `NewPatient::parse`.
    /// `district` falls back to the city.
    pub fn input(&self) -> PatientInput {
        PatientInput {
            name: self.name.clone(),
            sex: self.sex.map(|s| s.as_str().to_string()),
            birth_date: self.birth_date.map(|d| d.to_string()),
            birth_year: if self.birth_date.is_some() {
                None
            } else {
                self.birth_year
            },
            phone: self.phone.clone(),
            email: self.email.clone(),
            district: self.district.clone().or_else(|| self.city.clone()),
            ..Default::default()
        }
    }
}

/// A Practitioner (doctor) or Organization (hospital, department).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirNamed {
    pub resource_id: String,
    pub name: Option<String>,
}

/// An Encounter, mapped to a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirEncounter {
    /// The resource's id (what references name).
    pub resource_id: String,
    /// `Encounter.id`, used as the visit id.
    pub visit_id: String,
    /// `Patient.id` of the subject (resolved).
    pub patient: String,
    /// The date of `period.start` as written (its local date, not
    /// converted to UTC: the hospital's calendar day).
    pub start: Option<NaiveDate>,
    /// `period.start` as written.
    pub start_text: Option<String>,
    /// `class.code` as written (`AMB`, `EMER`, …).
    pub class_code: Option<String>,
    /// AMB, EMER, HH → outpatient; IMP, ACUTE, NONAC → inpatient;
    /// VR → telehealth; anything else or missing → outpatient.
    pub kind: VisitKind,
    /// `Organization.id` of `serviceProvider`.
    pub organization: Option<String>,
    /// `Practitioner.id` of the first participant that is a practitioner.
    pub practitioner: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargeSource {
    Claim,
    ExplanationOfBenefit,
}

/// Money from a Claim or an ExplanationOfBenefit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirCharge {
    pub source: ChargeSource,
    pub resource_id: String,
    /// `Encounter.id` from `item.encounter`, or for an EOB without one,
    /// from the Claim it references.
    pub encounter: Option<String>,
    /// `Claim.total`; for an EOB, `total` with category `submitted`.
    /// Exact: round sums with [`Amount::to_money`], once.
    pub total: Option<Amount>,
    /// `ExplanationOfBenefit.payment.amount`.
    pub payment: Option<Amount>,
    /// The exact sum of `item.net`, when any item has one.
    pub items_net: Option<Amount>,
}

/// Everything read from one or more sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FhirBatch {
    pub patients: Vec<FhirPatient>,
    pub practitioners: Vec<FhirNamed>,
    pub organizations: Vec<FhirNamed>,
    pub encounters: Vec<FhirEncounter>,
    pub charges: Vec<FhirCharge>,
    /// Every resource read, by type (bundles themselves not counted).
    pub resource_counts: BTreeMap<String, usize>,
    /// Resources of types not mapped, by type.
    pub ignored: BTreeMap<String, usize>,
}

impl FhirBatch {
    /// The billed amount of an encounter: the exact sum over its Claims of
    /// `total` (or the items' `net` when a claim has no total), rounded
    /// once to minor units, half to even. `None` only on overflow.
    pub fn encounter_amount(&self, visit_id: &str) -> Option<Money> {
        let rid = self
            .encounters
            .iter()
            .find(|e| e.visit_id == visit_id)
            .map_or(visit_id, |e| e.resource_id.as_str());
        self.charges
            .iter()
            .filter(|c| c.source == ChargeSource::Claim && c.encounter.as_deref() == Some(rid))
            .map(|c| c.total.or(c.items_net).unwrap_or_default())
            .try_fold(Amount::default(), Amount::checked_add)?
            .to_money()
    }

    /// Each encounter as the domain's visit input, with the patient's
    /// hospital id. Validate with `VisitFields::parse`; an encounter
    /// without a start date gives an empty `visit_date`, which the domain
    /// rejects as required.
    pub fn visits(&self) -> Vec<(String, VisitInput)> {
        let patients: HashMap<&str, &FhirPatient> = self
            .patients
            .iter()
            .map(|p| (p.resource_id.as_str(), p))
            .collect();
        let orgs: HashMap<&str, &FhirNamed> = self
            .organizations
            .iter()
            .map(|o| (o.resource_id.as_str(), o))
            .collect();
        let docs: HashMap<&str, &FhirNamed> = self
            .practitioners
            .iter()
            .map(|o| (o.resource_id.as_str(), o))
            .collect();
        self.encounters
            .iter()
            .map(|e| {
                let pid = patients
                    .get(e.patient.as_str())
                    .map_or_else(|| e.patient.clone(), |p| p.patient_id.clone());
                // An overflowing sum becomes an empty amount, which the
                // domain rejects.
                let amount = self
                    .encounter_amount(&e.visit_id)
                    .map(|m| rapport_domain::money::format_minor(i128::from(m.minor())))
                    .unwrap_or_default();
                let input = VisitInput {
                    visit_id: e.visit_id.clone(),
                    visit_date: e.start.map(|d| d.to_string()).unwrap_or_default(),
                    department: e
                        .organization
                        .as_deref()
                        .and_then(|o| orgs.get(o))
                        .and_then(|o| o.name.clone()),
                    doctor_id: e.practitioner.clone(),
                    doctor_name: e
                        .practitioner
                        .as_deref()
                        .and_then(|d| docs.get(d))
                        .and_then(|d| d.name.clone()),
                    kind: Some(e.kind.as_str().to_string()),
                    amount,
                };
                (pid, input)
            })
            .collect()
    }
}

/// A parsed resource waiting for references to be resolved.
struct Pending {
    position: Position,
    full_url: Option<String>,
    /// `id`, or for a resource without one (common in transaction
    /// bundles, where the server assigns ids) the tail of its `fullUrl`
    /// (`urn:uuid:X` → `X`), so it can still be referenced and upserted.
    id: Option<String>,
    resource: Value,
}

fn effective_id(resource: &Value, full_url: Option<&str>) -> Option<String> {
    nonempty(str_at(resource, "id")).or_else(|| {
        let u = full_url?;
        let tail = u
            .strip_prefix("urn:uuid:")
            .or_else(|| u.strip_prefix("urn:oid:"))
            .unwrap_or_else(|| u.trim_end_matches('/').rsplit('/').next().unwrap_or(u));
        nonempty(Some(tail))
    })
}

/// Accumulates sources, then resolves and maps in [`FhirReader::finish`].
#[derive(Default)]
pub struct FhirReader {
    pending: Vec<Pending>,
}

/// Reads one source (see [`FhirReader::add`]) and finishes.
pub fn read_fhir(source: &str, bytes: &[u8]) -> Result<FhirBatch, FhirError> {
    let mut r = FhirReader::new();
    r.add(source, bytes)?;
    r.finish()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl FhirReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one source: JSON (a Bundle or a resource), NDJSON, or either
    /// gzip-compressed. `source` names it in errors.
    pub fn add(&mut self, source: &str, bytes: &[u8]) -> Result<(), FhirError> {
        let read_err = |message: String| FhirError::Read {
            source_name: source.to_string(),
            message,
        };
        let unzipped;
        let bytes = if bytes.starts_with(&[0x1f, 0x8b]) {
            let mut out = Vec::new();
            flate2::read::MultiGzDecoder::new(bytes)
                .read_to_end(&mut out)
                .map_err(|e| read_err(format!("gzip: {e}")))?;
            unzipped = out;
            &unzipped[..]
        } else {
            bytes
        };
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
        let mut offset = 0usize;
        let mut line = 1usize;
        loop {
            // The value starts at the first non-whitespace byte after the
            // previous value; count lines up to there.
            let start = offset
                + bytes[offset..]
                    .iter()
                    .take_while(|b| b.is_ascii_whitespace())
                    .count();
            line += bytes[offset..start].iter().filter(|&&b| b == b'\n').count();
            let Some(next) = stream.next() else { break };
            let value = next.map_err(|e| FhirError::Resource {
                position: Position {
                    source: source.to_string(),
                    line,
                    entry: None,
                },
                message: format!("invalid JSON: {e}"),
            })?;
            let end = stream.byte_offset();
            let position = Position {
                source: source.to_string(),
                line,
                entry: None,
            };
            self.add_value(position, value)?;
            line += bytes[start..end].iter().filter(|&&b| b == b'\n').count();
            offset = end;
        }
        Ok(())
    }

    fn add_value(&mut self, position: Position, value: Value) -> Result<(), FhirError> {
        let err = |position: &Position, message: &str| FhirError::Resource {
            position: position.clone(),
            message: message.to_string(),
        };
        let Some(rt) = str_at(&value, "resourceType") else {
            return Err(err(&position, "not a FHIR resource (no resourceType)"));
        };
        if rt == "Bundle" {
            let Value::Object(mut map) = value else {
                unreachable!("has a resourceType key")
            };
            let entries = match map.remove("entry") {
                Some(Value::Array(a)) => a,
                None => Vec::new(),
                Some(_) => return Err(err(&position, "Bundle.entry is not an array")),
            };
            for (i, mut e) in entries.into_iter().enumerate() {
                let pos = Position {
                    entry: Some(i),
                    ..position.clone()
                };
                let full_url = nonempty(str_at(&e, "fullUrl"));
                match e.get_mut("resource").map(Value::take) {
                    // Entries without a resource (a DELETE in a
                    // transaction, a searchset outcome) carry nothing.
                    None => continue,
                    Some(r) if str_at(&r, "resourceType") == Some("Bundle") => {
                        self.add_value(pos, r)?;
                    }
                    Some(r) => {
                        if str_at(&r, "resourceType").is_none() {
                            return Err(err(&pos, "entry resource has no resourceType"));
                        }
                        self.pending.push(Pending {
                            position: pos,
                            id: effective_id(&r, full_url.as_deref()),
                            full_url,
                            resource: r,
                        });
                    }
                }
            }
            return Ok(());
        }
        self.pending.push(Pending {
            position,
            full_url: None,
            id: effective_id(&value, None),
            resource: value,
        });
        Ok(())
    }

    /// Resolves references and maps every resource.
    pub fn finish(self) -> Result<FhirBatch, FhirError> {
        let index = Index::build(&self.pending);
        let mut batch = FhirBatch::default();
        // Claims first by id, so EOBs can borrow their encounter.
        let mut claim_encounter: HashMap<String, Option<String>> = HashMap::new();
        let mut eobs = Vec::new();
        for p in &self.pending {
            let r = &p.resource;
            let rt = str_at(r, "resourceType").unwrap_or_default();
            *batch.resource_counts.entry(rt.to_string()).or_default() += 1;
            let id = p.id.clone().unwrap_or_default();
            let ctx = Ctx {
                index: &index,
                position: &p.position,
                rt,
                id: &id,
            };
            match rt {
                "Patient" => batch.patients.push(map_patient(r, &id)),
                "Practitioner" => batch.practitioners.push(FhirNamed {
                    resource_id: id.clone(),
                    name: human_name(array(r, "name")),
                }),
                "Organization" => batch.organizations.push(FhirNamed {
                    resource_id: id.clone(),
                    name: nonempty(str_at(r, "name")),
                }),
                "Encounter" => batch.encounters.push(map_encounter(&ctx, r)?),
                "Claim" => {
                    let c = map_charge(&ctx, r, ChargeSource::Claim)?;
                    claim_encounter.insert(id.clone(), c.encounter.clone());
                    batch.charges.push(c);
                }
                "ExplanationOfBenefit" => eobs.push(p),
                other => *batch.ignored.entry(other.to_string()).or_default() += 1,
            }
        }
        for p in eobs {
            let r = &p.resource;
            let id = p.id.clone().unwrap_or_default();
            let ctx = Ctx {
                index: &index,
                position: &p.position,
                rt: "ExplanationOfBenefit",
                id: &id,
            };
            let mut c = map_charge(&ctx, r, ChargeSource::ExplanationOfBenefit)?;
            if c.encounter.is_none()
                && let Some(claim) = r.get("claim")
                && let Some(claim_id) = ctx.reference(claim, "claim", &["Claim"])?
            {
                c.encounter = claim_encounter.get(&claim_id).cloned().flatten();
            }
            batch.charges.push(c);
        }
        Ok(batch)
    }
}

/// What references can point at.
struct Index {
    /// `fullUrl` → (type, id).
    by_url: HashMap<String, (String, String)>,
    /// (type, id) known.
    by_id: HashMap<(String, String), ()>,
    /// (type, system, value) → id.
    by_identifier: HashMap<(String, String, String), String>,
}

impl Index {
    fn build(pending: &[Pending]) -> Self {
        let mut ix = Index {
            by_url: HashMap::new(),
            by_id: HashMap::new(),
            by_identifier: HashMap::new(),
        };
        for p in pending {
            let rt = str_at(&p.resource, "resourceType")
                .unwrap_or_default()
                .to_string();
            let Some(id) = p.id.clone() else {
                continue;
            };
            if let Some(u) = &p.full_url {
                ix.by_url.insert(u.clone(), (rt.clone(), id.clone()));
            }
            for ident in array(&p.resource, "identifier") {
                if let Some(v) = str_at(ident, "value") {
                    let sys = str_at(ident, "system").unwrap_or_default();
                    ix.by_identifier
                        .insert((rt.clone(), sys.to_string(), v.to_string()), id.clone());
                }
            }
            ix.by_id.insert((rt, id), ());
        }
        ix
    }

    /// Resolves a reference string to (type, id).
    fn resolve(&self, reference: &str) -> Option<(String, String)> {
        if let Some(hit) = self.by_url.get(reference) {
            return Some(hit.clone());
        }
        if reference.starts_with("urn:") {
            return None;
        }
        if let Some((path, query)) = reference.split_once('?') {
            let rt = path.rsplit('/').next()?;
            // Only `identifier=` is understood; other search parameters
            // cannot be resolved without a server.
            let value = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("identifier="))?;
            let (sys, val) = value.split_once('|').unwrap_or(("", value));
            return self
                .by_identifier
                .get(&(rt.to_string(), sys.to_string(), val.to_string()))
                .map(|id| (rt.to_string(), id.clone()));
        }
        let mut parts: Vec<&str> = reference.trim_end_matches('/').split('/').collect();
        if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
            parts.truncate(parts.len() - 2);
        }
        let [.., rt, id] = parts.as_slice() else {
            return None;
        };
        let key = (rt.to_string(), id.to_string());
        self.by_id.contains_key(&key).then_some(key)
    }
}

struct Ctx<'a> {
    index: &'a Index,
    position: &'a Position,
    rt: &'a str,
    id: &'a str,
}

impl Ctx<'_> {
    fn error(&self, message: String) -> FhirError {
        FhirError::Resource {
            position: self.position.clone(),
            message: format!("{}/{}: {message}", self.rt, self.id),
        }
    }

    /// Resolves `{"reference": …}` at `field`. `Ok(None)` when the element
    /// has no `reference` (display only) or points at a type outside
    /// `types`; an error when the reference names nothing we read.
    fn reference(
        &self,
        element: &Value,
        field: &str,
        types: &[&str],
    ) -> Result<Option<String>, FhirError> {
        let Some(reference) = str_at(element, "reference") else {
            return Ok(None);
        };
        if reference.starts_with('#') {
            // A contained resource: not something we map.
            return Ok(None);
        }
        match self.index.resolve(reference) {
            Some((rt, id)) if types.contains(&rt.as_str()) => Ok(Some(id)),
            Some(_) => Ok(None),
            None => Err(self.error(format!("{field}: unresolvable reference {reference:?}"))),
        }
    }
}

/// `Patient.name` / `Practitioner.name`: the `official` name, else the
/// first. Chinese (CJK) names are family + given without a space (`张三`);
/// others "given family".
fn human_name(names: &[Value]) -> Option<String> {
    let name = names
        .iter()
        .find(|n| str_at(n, "use") == Some("official"))
        .or_else(|| names.first())?;
    let family = str_at(name, "family").unwrap_or_default().trim();
    let given: Vec<&str> = array(name, "given")
        .iter()
        .filter_map(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let cjk = family
        .chars()
        .chain(given.iter().flat_map(|g| g.chars()))
        .any(is_cjk);
    let joined = if cjk {
        format!("{family}{}", given.concat())
    } else {
        let mut parts = given.clone();
        if !family.is_empty() {
            parts.push(family);
        }
        parts.join(" ")
    };
    nonempty(Some(&joined)).or_else(|| nonempty(str_at(name, "text")))
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0x20000..=0x3134F)
}

fn map_patient(r: &Value, id: &str) -> FhirPatient {
    let idents = array(r, "identifier");
    let has_value = |i: &&Value| nonempty(str_at(i, "value")).is_some();
    let is_mrn = |i: &&Value| {
        i.get("type")
            .map(|t| array(t, "coding"))
            .is_some_and(|c| c.iter().any(|c| str_at(c, "code") == Some("MR")))
    };
    let patient_id = idents
        .iter()
        .filter(has_value)
        .find(is_mrn)
        .or_else(|| idents.iter().find(has_value))
        .and_then(|i| nonempty(str_at(i, "value")))
        .unwrap_or_else(|| id.to_string());
    let sex = str_at(r, "gender").map(|g| match g {
        "male" => Sex::Male,
        "female" => Sex::Female,
        _ => Sex::Unknown,
    });
    let birth = str_at(r, "birthDate").unwrap_or_default();
    let birth_date = NaiveDate::parse_from_str(birth, "%Y-%m-%d").ok();
    let birth_year = birth.get(..4).and_then(|y| y.parse::<i32>().ok());
    let telecom = |system: &str| {
        array(r, "telecom")
            .iter()
            .filter(|t| str_at(t, "system") == Some(system))
            .find_map(|t| nonempty(str_at(t, "value")))
    };
    let addresses = array(r, "address");
    let address = addresses
        .iter()
        .find(|a| str_at(a, "use") == Some("home"))
        .or_else(|| addresses.first());
    FhirPatient {
        resource_id: id.to_string(),
        patient_id,
        name: human_name(array(r, "name")),
        sex,
        birth_date,
        birth_year,
        phone: telecom("phone"),
        email: telecom("email"),
        district: address.and_then(|a| nonempty(str_at(a, "district"))),
        city: address.and_then(|a| nonempty(str_at(a, "city"))),
    }
}

/// Maps `Encounter.class.code` (v3 ActCode) to a visit kind.
pub fn visit_kind(class_code: Option<&str>) -> VisitKind {
    match class_code {
        Some("IMP" | "ACUTE" | "NONAC") => VisitKind::Inpatient,
        Some("VR") => VisitKind::Telehealth,
        _ => VisitKind::Outpatient,
    }
}

fn map_encounter(ctx: &Ctx<'_>, r: &Value) -> Result<FhirEncounter, FhirError> {
    let patient = match r.get("subject") {
        Some(s) => ctx.reference(s, "subject", &["Patient"])?,
        None => None,
    };
    let Some(patient) = patient else {
        return Err(ctx.error("subject: must reference a Patient".to_string()));
    };
    let start_text = r.get("period").and_then(|p| nonempty(str_at(p, "start")));
    let start = start_text
        .as_deref()
        .and_then(|s| s.get(..10))
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
    // R4 `class` is a Coding; tolerate a CodeableConcept too.
    let class_code = r.get("class").and_then(|c| {
        str_at(c, "code")
            .or_else(|| array(c, "coding").first().and_then(|c| str_at(c, "code")))
            .map(str::to_string)
    });
    let organization = match r.get("serviceProvider") {
        Some(s) => ctx.reference(s, "serviceProvider", &["Organization"])?,
        None => None,
    };
    let mut practitioner = None;
    for (i, p) in array(r, "participant").iter().enumerate() {
        if let Some(ind) = p.get("individual") {
            let found = ctx.reference(
                ind,
                &format!("participant[{i}].individual"),
                &["Practitioner"],
            )?;
            practitioner = practitioner.or(found);
        }
    }
    // Our own export names the hospital's visit id and the exact kind,
    // which `class` alone cannot tell apart (exam, check-up).
    let own_id = array(r, "identifier")
        .iter()
        .find(|i| str_at(i, "system") == Some(crate::fhir_export::VISIT_SYSTEM))
        .and_then(|i| nonempty(str_at(i, "value")));
    let own_kind = array(r, "type")
        .iter()
        .flat_map(|t| array(t, "coding"))
        .find(|c| str_at(c, "system") == Some(crate::fhir_export::VISIT_KIND_SYSTEM))
        .and_then(|c| str_at(c, "code"))
        .and_then(VisitKind::from_code);
    Ok(FhirEncounter {
        resource_id: ctx.id.to_string(),
        visit_id: own_id.unwrap_or_else(|| ctx.id.to_string()),
        patient,
        start,
        start_text,
        kind: own_kind.unwrap_or_else(|| visit_kind(class_code.as_deref())),
        class_code,
        organization,
        practitioner,
    })
}

/// A `Money` element's `value`, exactly.
fn money(ctx: &Ctx<'_>, field: &str, m: Option<&Value>) -> Result<Option<Amount>, FhirError> {
    let Some(v) = m.and_then(|m| m.get("value")) else {
        return Ok(None);
    };
    let Value::Number(n) = v else {
        return Err(ctx.error(format!("{field}: not a number")));
    };
    Amount::parse(&n.to_string())
        .map(Some)
        .ok_or_else(|| ctx.error(format!("{field}: amount {n} out of range")))
}

fn map_charge(ctx: &Ctx<'_>, r: &Value, source: ChargeSource) -> Result<FhirCharge, FhirError> {
    let mut encounter = None;
    let mut items_net: Option<Amount> = None;
    for (i, item) in array(r, "item").iter().enumerate() {
        for (j, e) in array(item, "encounter").iter().enumerate() {
            let found = ctx.reference(e, &format!("item[{i}].encounter[{j}]"), &["Encounter"])?;
            encounter = encounter.or(found);
        }
        if let Some(net) = money(ctx, &format!("item[{i}].net"), item.get("net"))? {
            items_net = Some(
                items_net
                    .unwrap_or_default()
                    .checked_add(net)
                    .ok_or_else(|| ctx.error("item.net: sum out of range".to_string()))?,
            );
        }
    }
    let (total, payment) = match source {
        ChargeSource::Claim => (money(ctx, "total", r.get("total"))?, None),
        ChargeSource::ExplanationOfBenefit => {
            let submitted = array(r, "total").iter().find(|t| {
                t.get("category")
                    .map(|c| array(c, "coding"))
                    .is_some_and(|c| c.iter().any(|c| str_at(c, "code") == Some("submitted")))
            });
            (
                money(ctx, "total.amount", submitted.and_then(|t| t.get("amount")))?,
                money(
                    ctx,
                    "payment.amount",
                    r.get("payment").and_then(|p| p.get("amount")),
                )?,
            )
        }
    };
    Ok(FhirCharge {
        source,
        resource_id: ctx.id.to_string(),
        encounter,
        total,
        payment,
        items_net,
    })
}
