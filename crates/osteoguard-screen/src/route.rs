//! Pass-1 routing: a cheap look at each NDJSON line (resource type, patient, codes) that decides
//! where the raw line goes, *without* building a `serde_json::Value`.
//!
//! The one decision function is [`decide`]. It keeps every resource a rule can read and drops
//! (counting them as "ignored", never silently) the types and codes no rule reads. It is
//! deliberately conservative: when in doubt (unknown or missing code system, unparsable or
//! missing code, a medication given by reference) the line is kept and the FHIR reader decides.
//! Every "ignored" here asks the reader's own value sets (`osteoguard_fhir::terminology`), and a
//! test over the shared Synthea exports checks the reader ignores each line routed as ignored.

use std::borrow::Cow;
use std::sync::LazyLock;

use memchr::memmem::Finder;

use serde::Deserialize;

/// Code systems the reader matches Observations and Procedures on (knowledge.md §10); the
/// relevance decision asks the reader's own value sets (`osteoguard_fhir::terminology`), so the
/// filter can never drop a code the reader would map.
use osteoguard_fhir::terminology::{CPT, CPT_OID, LOINC, OSTEOGUARD, SNOMED};

#[derive(Debug, PartialEq, Deserialize)]
pub struct Coding<'a> {
    #[serde(borrow, default)]
    pub system: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub code: Option<Cow<'a, str>>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub struct CodeableConcept<'a> {
    #[serde(borrow, default)]
    pub coding: Option<Vec<Coding<'a>>>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub struct Reference<'a> {
    #[serde(borrow, default)]
    pub reference: Option<Cow<'a, str>>,
}

#[derive(Debug, PartialEq, Deserialize)]
pub struct Component<'a> {
    #[serde(borrow, default)]
    pub code: Option<CodeableConcept<'a>>,
}

/// The fields pass 1 looks at. Everything else in the line is skipped by the tokenizer
/// (no allocation, no `Value`).
#[derive(Debug, PartialEq, Deserialize)]
pub struct Peek<'a> {
    #[serde(rename = "resourceType", borrow, default)]
    pub resource_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    pub subject: Option<Reference<'a>>,
    #[serde(borrow, default)]
    pub patient: Option<Reference<'a>>,
    #[serde(borrow, default)]
    pub beneficiary: Option<Reference<'a>>,
    #[serde(borrow, default)]
    pub code: Option<CodeableConcept<'a>>,
    #[serde(borrow, default)]
    pub component: Option<Vec<Component<'a>>>,
    #[serde(rename = "medicationCodeableConcept", borrow, default)]
    pub medication_codeable_concept: Option<CodeableConcept<'a>>,
    /// Only whether it is there: a referenced Medication is joined in pass 2, so the line is
    /// always kept.
    #[serde(rename = "medicationReference", default)]
    pub medication_reference: Option<serde::de::IgnoredAny>,
}

/// Where a line goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Append to the shard of this patient id.
    Patient(String),
    /// A `Medication` resource (no patient): kept in the medication store, joined in pass 2.
    /// A `Device` goes there too, under the key `Device/<id>` (Medication keys have no `/`):
    /// the reader compares DXA scans by the manufacturer of the Device an Observation
    /// references (knowledge.md §6.2), so pass 2 joins the Devices a patient's Observations name.
    Medication(String),
    /// No rule reads it (counted per type as ignored).
    Ignored,
    /// A resource a rule could read but without a usable patient reference (counted).
    Unattached,
}

/// The patient id a reference points to: `Patient/x`, `…/Patient/x/_history/1`, `urn:uuid:x`.
pub fn patient_id_of(reference: &str) -> Option<&str> {
    if let Some(rest) = reference.strip_prefix("urn:uuid:") {
        return valid_id(rest);
    }
    let idx = reference.rfind("Patient/")?;
    if idx > 0 && !reference[..idx].ends_with('/') {
        return None; // e.g. "RelatedPatient/x"
    }
    let rest = &reference[idx + "Patient/".len()..];
    valid_id(rest.split('/').next().unwrap_or(rest))
}

/// Shard file lines are `id \t json`: ids with control characters are not accepted.
fn valid_id(id: &str) -> Option<&str> {
    if id.is_empty() || id.bytes().any(|b| b < 0x20) {
        None
    } else {
        Some(id)
    }
}

fn any_coding(cc: Option<&CodeableConcept<'_>>, f: &dyn Fn(&str, &str) -> bool) -> bool {
    cc.and_then(|c| c.coding.as_ref()).is_some_and(|cs| {
        cs.iter().any(|c| match (&c.system, &c.code) {
            (Some(s), Some(k)) => f(s, k),
            _ => false,
        })
    })
}

fn has_coding(cc: Option<&CodeableConcept<'_>>) -> bool {
    match cc.and_then(|c| c.coding.as_ref()) {
        Some(c) => !c.is_empty(),
        None => false,
    }
}

/// Could the reader use an Observation with this code (or component codes)?
fn observation_relevant(p: &Peek<'_>) -> bool {
    let f = |s: &str, c: &str| {
        s == OSTEOGUARD
            || osteoguard_fhir::terminology::observation(s, c).is_some()
            || !is_known_system(s)
    };
    // No coding at all: keep (the reader reports it as not understood).
    let uncoded = !has_coding(p.code.as_ref());
    uncoded
        || any_coding(p.code.as_ref(), &f)
        || p.component
            .as_ref()
            .is_some_and(|cs| cs.iter().any(|c| any_coding(c.code.as_ref(), &f)))
}

fn procedure_relevant(p: &Peek<'_>) -> bool {
    let uncoded = !has_coding(p.code.as_ref());
    uncoded
        || any_coding(p.code.as_ref(), &|s, c| {
            osteoguard_fhir::terminology::procedure(s, c).is_some() || !is_known_system(s)
        })
}

/// Could the reader use a DiagnosticReport with this code? It reads spine-imaging reports only
/// (knowledge.md §7.2: `osteoguard_fhir::terminology::spine_imaging`, CPT and LOINC), so a
/// report coded only in listed systems, none of the codes a spine-imaging one, is certainly
/// ignored (the laboratory panels that are most reports of an EHR export).
fn diagnostic_report_relevant(p: &Peek<'_>) -> bool {
    !has_coding(p.code.as_ref())
        || any_coding(p.code.as_ref(), &|s, c| {
            osteoguard_fhir::terminology::spine_imaging(s, c).is_some() || !is_known_system(s)
        })
}

/// Is any coding of `cc` one of an unlisted system (or without a system)? Such a coding could be
/// one the reader maps under a system this filter does not know, so the line is kept.
fn any_unknown_system(cc: Option<&CodeableConcept<'_>>, known: &dyn Fn(&str) -> bool) -> bool {
    cc.and_then(|c| c.coding.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| !c.system.as_deref().is_some_and(known)))
}

/// Could the reader use a Condition with this code? It maps Conditions on their codings only
/// (ICD-10-CM first, then SNOMED CT: `osteoguard_fhir::terminology::condition`), so a Condition
/// all of whose codings are of those systems and none of them mapped is certainly ignored.
/// Why filter here: in Synthea-like records half of the Conditions (e.g. "Prediabetes") are
/// read by no rule, and every kept line costs a full parse in pass 2.
fn condition_relevant(p: &Peek<'_>) -> bool {
    use osteoguard_fhir::terminology::{ICD10CM, ICD10CM_OID};
    let cc = p.code.as_ref();
    !has_coding(cc)
        || any_unknown_system(cc, &|s| matches!(s, SNOMED | ICD10CM | ICD10CM_OID))
        || any_coding(cc, &|s, c| {
            osteoguard_fhir::terminology::condition(s, c).is_some()
        })
}

/// Could the reader use a medication resource (request, statement, administration, dispense)?
/// Kept when the medication is a reference (joined in pass 2), missing or uncoded (the reader
/// reports it), of an unlisted system, or a coding the reader's medication table maps.
fn medication_relevant(p: &Peek<'_>) -> bool {
    use osteoguard_fhir::terminology::{ATC, RXNORM, RXNORM_OID};
    let cc = p.medication_codeable_concept.as_ref();
    p.medication_reference.is_some()
        || !has_coding(cc)
        || any_unknown_system(cc, &|s| matches!(s, RXNORM | RXNORM_OID | ATC | SNOMED))
        || any_coding(cc, &|s, c| {
            osteoguard_fhir::terminology::medication(s, c).is_some()
        })
}

/// Systems whose relevant codes are fully listed above; codes of any other system are kept.
fn is_known_system(s: &str) -> bool {
    matches!(s, LOINC | SNOMED | CPT | CPT_OID | OSTEOGUARD)
        || s.starts_with("http://terminology.hl7.org/")
}

/// Resource types the reader maps into the patient model, or reads beside it (`Device`: the
/// manufacturer of the scanner of a DXA Observation). ImagingStudy (DXA scans, spine imaging)
/// and DiagnosticReport (spine imaging, knowledge.md §7.2) are read too.
pub fn type_is_read(ty: &str) -> bool {
    matches!(
        ty,
        "Patient"
            | "Observation"
            | "Condition"
            | "Procedure"
            | "ImagingStudy"
            | "DiagnosticReport"
            | "MedicationRequest"
            | "MedicationStatement"
            | "MedicationAdministration"
            | "MedicationDispense"
            | "Medication"
            | "Device"
    )
}

/// THE routing decision (see the module doc). `p` is the peeked line.
pub fn decide(p: &Peek<'_>) -> Decision {
    let ty = p.resource_type.as_deref().unwrap_or("");
    // A type no rule reads is ignored — unless it is no FHIR type at all ("Observationz"): then
    // it goes to its patient and the reader reports it as not understood.
    if !type_is_read(ty) && osteoguard_fhir::is_resource_type(ty) {
        return Decision::Ignored;
    }
    match ty {
        "Patient" => {
            return match p.id.as_deref().and_then(valid_id) {
                Some(id) => Decision::Patient(id.to_string()),
                None => Decision::Unattached,
            }
        }
        "Medication" => {
            return match p.id.as_deref().and_then(valid_id) {
                Some(id) => Decision::Medication(id.to_string()),
                None => Decision::Unattached,
            }
        }
        "Device" => {
            return match p.id.as_deref().and_then(valid_id) {
                Some(id) => Decision::Medication(format!("Device/{id}")),
                None => Decision::Ignored,
            }
        }
        "Observation" if !observation_relevant(p) => return Decision::Ignored,
        "Procedure" if !procedure_relevant(p) => return Decision::Ignored,
        "Condition" if !condition_relevant(p) => return Decision::Ignored,
        "DiagnosticReport" if !diagnostic_report_relevant(p) => return Decision::Ignored,
        "MedicationRequest"
        | "MedicationStatement"
        | "MedicationAdministration"
        | "MedicationDispense"
            if !medication_relevant(p) =>
        {
            return Decision::Ignored
        }
        _ => {}
    }
    let r = p
        .subject
        .as_ref()
        .or(p.patient.as_ref())
        .or(p.beneficiary.as_ref())
        .and_then(|r| r.reference.as_deref())
        .and_then(patient_id_of);
    match r {
        Some(id) => Decision::Patient(id.to_string()),
        None => Decision::Unattached,
    }
}

/// Peeks a line; `None` when it is not a JSON object of the expected shape (the caller falls
/// back to a full parse so that nothing is lost).
pub fn peek(line: &[u8]) -> Option<Peek<'_>> {
    // From `&str` when the line is UTF-8 (one check of the line instead of one per string, as
    // in `osteoguard_fhir::parse_for_reading`); from bytes otherwise, failing as before.
    match std::str::from_utf8(line) {
        Ok(text) => serde_json::from_str::<Peek<'_>>(text).ok(),
        Err(_) => serde_json::from_slice::<Peek<'_>>(line).ok(),
    }
}

/// Fallback for lines the narrow peek could not read (odd shapes, duplicate keys): a full
/// parse, then the same decision on the same fields.
pub fn decide_slow(line: &[u8]) -> Option<(String, Decision)> {
    let v: serde_json::Value = serde_json::from_slice(line).ok()?;
    let ty = v.get("resourceType")?.as_str()?.to_string();
    // Rebuild a Peek from the Value via a round trip of just the needed fields.
    let mut slim = serde_json::Map::new();
    for k in [
        "resourceType",
        "id",
        "subject",
        "patient",
        "beneficiary",
        "code",
        "component",
        "medicationCodeableConcept",
        "medicationReference",
    ] {
        if let Some(x) = v.get(k) {
            slim.insert(k.to_string(), x.clone());
        }
    }
    let text = serde_json::to_vec(&serde_json::Value::Object(slim)).ok()?;
    let d = match serde_json::from_slice::<Peek<'_>>(&text) {
        Ok(p) => decide(&p),
        // Still odd (e.g. subject is not an object): keep it when its type is read, so the
        // reader reports the problem; patient unknown → unattached.
        Err(_) if type_is_read(&ty) => Decision::Unattached,
        Err(_) => Decision::Ignored,
    };
    Some((ty, d))
}

// ---------------------------------------------------------------------------------------------
// Byte-level fast path
// ---------------------------------------------------------------------------------------------

const UCUM: &str = "http://unitsofmeasure.org";

/// Reads the JSON string value after the key that ends at `at` (`"key"` already matched):
/// `None` if the value is not a plain string (object, escape sequences …).
fn string_value_after(line: &[u8], mut at: usize) -> Option<Result<&[u8], ()>> {
    while at < line.len() && line[at].is_ascii_whitespace() {
        at += 1;
    }
    if line.get(at) != Some(&b':') {
        return Some(Err(())); // the word appeared inside a string, not as a key
    }
    at += 1;
    while at < line.len() && line[at].is_ascii_whitespace() {
        at += 1;
    }
    if line.get(at) != Some(&b'"') {
        return Some(Err(())); // e.g. `"code": {` — a CodeableConcept, not a code
    }
    let start = at + 1;
    let len = memchr::memchr(b'"', &line[start..])?;
    let v = &line[start..start + len];
    if v.contains(&b'\\') {
        return None;
    }
    Some(Ok(v))
}

/// Decides *without parsing* that a line is certainly ignored, and returns its resource type.
///
/// Used before [`peek`] so the ~85 % of lines no rule reads cost a prefix compare and a few
/// `memmem` scans instead of a JSON tokenisation. It only answers when it is sure (otherwise
/// `None`, and the line is peeked):
/// * the line starts with `{"resourceType":"T"` (the top-level type: it is the first key) and
///   `T` is a type the reader does not map; or
/// * `T` is Observation / Procedure / DiagnosticReport, every `"system"` value in the line is one whose relevant
///   codes are all listed here (LOINC, SNOMED CT, CPT, UCUM, terminology.hl7.org), at least one
///   is the type's coding system, and no `"code"` value anywhere in the line is a relevant code
///   — so no coding of the resource (code or component) can be one the reader maps.
///
/// Either way the line must still be one JSON value: a truncated line, or two objects on one
/// line, is not ignored but falls through to the full decision, which refuses the run as
/// `assess` refuses the file (bad input is reported, never counted away). Checking costs a
/// UTF-8 check and a tokenisation that builds nothing (`IgnoredAny`).
pub fn fast_ignored(line: &[u8]) -> Option<&str> {
    let ty = ignored_by_bytes(line)?;
    let text = std::str::from_utf8(line).ok()?;
    serde_json::from_str::<serde::de::IgnoredAny>(text).ok()?;
    Some(ty)
}

/// [`fast_ignored`]'s decision from the bytes alone, before the line is checked as JSON.
fn ignored_by_bytes(line: &[u8]) -> Option<&str> {
    const PREFIX: &[u8] = b"{\"resourceType\":\"";
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    let rest = line[start..].strip_prefix(PREFIX)?;
    let end = memchr::memchr(b'"', rest)?;
    let ty = std::str::from_utf8(&rest[..end]).ok()?;
    if !type_is_read(ty) {
        // Not a FHIR type (a typo): the full decision keeps it (see `decide`).
        return osteoguard_fhir::is_resource_type(ty).then_some(ty);
    }
    /// The resource types the byte-level test knows, by the system their `code` is in.
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Observation,
        Procedure,
        Report,
    }
    let kind = match ty {
        "Observation" => Kind::Observation,
        "Procedure" => Kind::Procedure,
        "DiagnosticReport" => Kind::Report,
        _ => return None,
    };
    let observation = kind == Kind::Observation;
    // Built once: constructing a searcher per line was a sixth of this function.
    static SYSTEM: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"system\""));
    static CODE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"code\""));
    let mut own_system = false;
    for pos in SYSTEM.find_iter(line) {
        match string_value_after(line, pos + 8)? {
            Err(()) => return None,
            Ok(v) => {
                let v = std::str::from_utf8(v).ok()?;
                match v {
                    LOINC if observation => own_system = true,
                    SNOMED | CPT | CPT_OID if kind == Kind::Procedure => own_system = true,
                    LOINC | SNOMED | CPT | CPT_OID if kind == Kind::Report => own_system = true,
                    LOINC | SNOMED | CPT | CPT_OID | UCUM => {}
                    _ if v.starts_with("http://terminology.hl7.org/") => {}
                    _ => return None,
                }
            }
        }
    }
    if !own_system {
        return None;
    }
    for pos in CODE.find_iter(line) {
        match string_value_after(line, pos + 6)? {
            Err(()) => {}
            Ok(v) => {
                let v = std::str::from_utf8(v).ok()?;
                // Any `code` value that the reader would map under the line's own system
                // keeps the line (conservative: the full decision then looks closer).
                let relevant = match kind {
                    Kind::Observation => {
                        osteoguard_fhir::terminology::observation(LOINC, v).is_some()
                    }
                    Kind::Procedure => {
                        osteoguard_fhir::terminology::procedure(CPT, v).is_some()
                            || osteoguard_fhir::terminology::procedure(SNOMED, v).is_some()
                    }
                    Kind::Report => {
                        osteoguard_fhir::terminology::spine_imaging(LOINC, v).is_some()
                            || osteoguard_fhir::terminology::spine_imaging(CPT, v).is_some()
                    }
                };
                if relevant {
                    return None;
                }
            }
        }
    }
    Some(ty)
}

/// Why a line is not one JSON value, worded as `assess` words it: `(column, "not valid JSON:
/// reason (resource …, field …)")`; `None` when it is one. One wording for `screen`'s pass 1 and
/// the Spark job's router (`osteoguard-py`), so a refused line reads the same on every path.
pub fn not_json_line(line: &[u8]) -> Option<(usize, String)> {
    let e = serde_json::from_slice::<serde::de::IgnoredAny>(line).err()?;
    let text = e.to_string();
    let reason = text.rfind(" at line ").map_or(&text[..], |p| &text[..p]);
    let second = reason
        .starts_with("trailing characters")
        .then_some("after the end of the resource (a second JSON value)");
    Some((
        e.column(),
        format!(
            "not valid JSON: {reason}{}",
            osteoguard_fhir::whereabouts(line, Some(e.column()), second)
        ),
    ))
}

/// A line as text, or why it is not UTF-8 in `assess`'s words (`not valid JSON: invalid UTF-8
/// at byte N of the line (resource …, field …)`); shared as [`not_json_line`] is.
pub fn utf8_line(line: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(line).map_err(|e| {
        let valid = e.valid_up_to();
        format!(
            "not valid JSON: invalid UTF-8 at byte {valid} of the line{}",
            osteoguard_fhir::whereabouts(line, Some(valid), None)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(line: &str) -> Decision {
        decide(&peek(line.as_bytes()).unwrap())
    }

    #[test]
    fn references() {
        assert_eq!(patient_id_of("Patient/p1"), Some("p1"));
        assert_eq!(patient_id_of("urn:uuid:abc"), Some("abc"));
        assert_eq!(
            patient_id_of("http://x/fhir/Patient/p1/_history/2"),
            Some("p1")
        );
        assert_eq!(patient_id_of("Group/g"), None);
        assert_eq!(patient_id_of("RelatedPatient/x"), None);
    }

    #[test]
    fn decisions() {
        assert_eq!(
            d(r#"{"resourceType":"Patient","id":"p1"}"#),
            Decision::Patient("p1".into())
        );
        assert_eq!(
            d(r#"{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/p1"}}"#),
            Decision::Ignored
        );
        assert_eq!(
            d(
                r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"}}"#
            ),
            Decision::Ignored
        );
        assert_eq!(
            d(
                r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"33914-3"}]},"subject":{"reference":"Patient/p1"}}"#
            ),
            Decision::Patient("p1".into())
        );
        // Component code recognised: kept.
        assert_eq!(
            d(
                r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"1-1"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"38267-1"}]}}],"subject":{"reference":"urn:uuid:p1"}}"#
            ),
            Decision::Patient("p1".into())
        );
        // Unknown system: kept (conservative).
        assert_eq!(
            d(
                r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://lab/x","code":"1"}]},"subject":{"reference":"Patient/p1"}}"#
            ),
            Decision::Patient("p1".into())
        );
        assert_eq!(
            d(
                r#"{"resourceType":"Procedure","code":{"coding":[{"system":"http://snomed.info/sct","code":"430193006"}]},"subject":{"reference":"Patient/p1"}}"#
            ),
            Decision::Ignored
        );
        assert_eq!(
            d(r#"{"resourceType":"Medication","id":"m1"}"#),
            Decision::Medication("m1".into())
        );
        assert_eq!(
            d(r#"{"resourceType":"Condition","subject":{"reference":"Group/1"}}"#),
            Decision::Unattached
        );
        assert_eq!(
            d(r#"{"resourceType":"Condition","subject":{"reference":"Patient/a\tb"}}"#),
            Decision::Unattached
        );
    }

    #[test]
    fn conditions_and_medications_no_rule_reads_are_ignored() {
        let subj = r#""subject":{"reference":"Patient/p1"}"#;
        let kept = Decision::Patient("p1".into());
        let cond = |coding: &str| {
            d(&format!(
                r#"{{"resourceType":"Condition","code":{{"coding":[{coding}]}},{subj}}}"#
            ))
        };
        // Prediabetes (SNOMED 15777000): no rule reads it.
        assert_eq!(
            cond(r#"{"system":"http://snomed.info/sct","code":"15777000"}"#),
            Decision::Ignored
        );
        // Vertebral fracture, ICD-10-CM S32.010A: kept.
        assert_eq!(
            cond(r#"{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"S32.010A"}"#),
            kept
        );
        // A mapped code next to an unmapped one: kept.
        assert_eq!(
            cond(
                r#"{"system":"http://snomed.info/sct","code":"15777000"},{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"M80.08XA"}"#
            ),
            kept
        );
        // Unknown system, or none: kept.
        assert_eq!(cond(r#"{"system":"http://local/dx","code":"1"}"#), kept);
        assert_eq!(cond(r#"{"code":"15777000"}"#), kept);
        assert_eq!(
            d(&format!(
                r#"{{"resourceType":"Condition","code":{{"text":"back pain"}},{subj}}}"#
            )),
            kept
        );
        let med = |ty: &str, m: &str| d(&format!(r#"{{"resourceType":"{ty}",{m},{subj}}}"#));
        let rx = |code: &str| {
            format!(
                r#""medicationCodeableConcept":{{"coding":[{{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"{code}"}}]}}"#
            )
        };
        // Amoxicillin 250 MG (RxNorm 308182): ignored; prednisone 5 MG tablet (312617): kept.
        assert_eq!(med("MedicationRequest", &rx("308182")), Decision::Ignored);
        assert_eq!(med("MedicationRequest", &rx("312617")), kept);
        assert_eq!(
            med("MedicationAdministration", &rx("308182")),
            Decision::Ignored
        );
        // By reference (joined later), missing, or unknown system: kept.
        assert_eq!(
            med(
                "MedicationRequest",
                r#""medicationReference":{"reference":"Medication/m1"}"#
            ),
            kept
        );
        assert_eq!(med("MedicationStatement", r#""status":"active""#), kept);
        assert_eq!(
            med(
                "MedicationRequest",
                r#""medicationCodeableConcept":{"coding":[{"system":"http://local/drugs","code":"9"}]}"#
            ),
            kept
        );
    }

    /// The fast path never ignores what the full decision keeps.
    #[test]
    fn fast_path_agrees_with_decide() {
        let lines = [
            r#"{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"Patient/p1"},"valueQuantity":{"value":1,"system":"http://unitsofmeasure.org","code":"/min"}}"#,
            r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"33914-3"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"1-1"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"38267-1"}]}}],"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://lab/x","code":"1"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Observation","code":{"text":"no coding"},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://osteoguard.org/fhir/CodeSystem/osteoguard","code":"frax-mof"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Procedure","code":{"coding":[{"system":"http://snomed.info/sct","code":"430193006"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Procedure","code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"22511"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Procedure","code":{"coding":[{"system":"http://snomed.info/sct","code":"312681000"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"38\u0032\u0036\u0037-1"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"Condition","code":{"coding":[{"system":"http://snomed.info/sct","code":"38341003"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"  {"resourceType" : "Encounter"}"#,
            // DiagnosticReport (knowledge.md §7.2): a lipid panel is ignored; a spine MRI by CPT
            // or LOINC, an uncoded report and one of an unlisted system are kept.
            r#"{"resourceType":"DiagnosticReport","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0074","code":"LAB"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"57698-3"}]},"subject":{"reference":"Patient/p1"},"presentedForm":[{"contentType":"text/plain","data":"TGlwaWQ="}]}"#,
            r#"{"resourceType":"DiagnosticReport","status":"final","code":{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"72148"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"DiagnosticReport","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"24968-0"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"DiagnosticReport","status":"final","code":{"text":"MRI L-spine"},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"DiagnosticReport","status":"final","code":{"coding":[{"system":"http://radiology.local/codes","code":"MRLS"}]},"subject":{"reference":"Patient/p1"}}"#,
            r#"{"resourceType":"ImagingStudy","status":"available","procedureCode":[{"coding":[{"system":"http://www.ama-assn.org/go/cpt","code":"72148"}]}],"subject":{"reference":"Patient/p1"}}"#,
        ];
        for l in lines {
            let full = d(l);
            if let Some(ty) = fast_ignored(l.as_bytes()) {
                assert_eq!(
                    full,
                    Decision::Ignored,
                    "fast path ignored a kept line: {l}"
                );
                assert_eq!(
                    Some(ty),
                    peek(l.as_bytes()).unwrap().resource_type.as_deref()
                );
            }
        }
        assert_eq!(fast_ignored(lines[0].as_bytes()), Some("Encounter"));
        assert_eq!(fast_ignored(lines[1].as_bytes()), Some("Observation"));
        assert_eq!(fast_ignored(lines[7].as_bytes()), Some("Procedure"));
        assert_eq!(fast_ignored(lines[2].as_bytes()), None);
        assert_eq!(fast_ignored(lines[10].as_bytes()), None);
        assert_eq!(fast_ignored(lines[13].as_bytes()), Some("DiagnosticReport"));
        for kept in &lines[14..] {
            assert_eq!(fast_ignored(kept.as_bytes()), None, "{kept}");
            assert_eq!(d(kept), Decision::Patient("p1".into()), "{kept}");
        }
        assert_eq!(d(lines[13]), Decision::Ignored);
    }

    /// A line the bytes alone would drop is still checked as JSON (docs/screen.md, "What pass 1
    /// checks of a line it drops"): truncated, two objects, or invalid UTF-8 is not ignored.
    #[test]
    fn a_dropped_line_must_still_be_one_json_value() {
        let enc = r#"{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/p1"}}"#;
        let obs = r#"{"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":"Patient/p1"}}"#;
        for whole in [enc, obs] {
            let ty = fast_ignored(whole.as_bytes());
            assert!(ty.is_some(), "{whole}");
            let truncated = &whole[..whole.len() - 5];
            assert_eq!(fast_ignored(truncated.as_bytes()), None, "{truncated}");
            assert!(peek(truncated.as_bytes()).is_none());
            let two = format!("{whole}{whole}");
            assert_eq!(fast_ignored(two.as_bytes()), None, "{two}");
            assert!(peek(two.as_bytes()).is_none());
            let mut bad_utf8 = whole.as_bytes().to_vec();
            bad_utf8.splice(40..40, [0xff, 0xfe]);
            assert_eq!(fast_ignored(&bad_utf8), None);
            assert_eq!(
                ignored_by_bytes(truncated.as_bytes()),
                ty,
                "only the JSON check"
            );
        }
    }

    #[test]
    fn escaped_strings_and_fallback() {
        assert_eq!(
            d(r#"{"resourceType":"Patient","id":"p\u0031"}"#),
            Decision::Patient("p1".into())
        );
        // Duplicate key: narrow peek fails, slow path decides.
        let line = br#"{"resourceType":"Condition","subject":{"reference":"Patient/p1"},"subject":{"reference":"Patient/p1"}}"#;
        assert!(peek(line).is_none());
        assert_eq!(
            decide_slow(line).map(|x| x.1),
            Some(Decision::Patient("p1".into()))
        );
        assert!(decide_slow(b"not json").is_none());
    }
}
