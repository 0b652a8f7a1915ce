//! The assessment as FHIR R4 resources, in one `collection` Bundle:
//!
//! * a **Device** — osteoguard itself, with its engine version — the author of everything else;
//! * per finding a **DetectedIssue**: `code` from the osteoguard finding CodeSystem, severity
//!   mapped (critical and high → `high`, moderate → `moderate`, info → `low`), `implicated` and
//!   `evidence.detail` referencing the record entries, `detail` = the summary, `mitigation`
//!   with the recommendation text, `identifiedDateTime` = the as-of date, `author` = the Device;
//! * per task a **Task** (`for` the patient, `authoredOn` = as-of, `restriction.period.end` =
//!   the due date, `reasonReference` → its finding's DetectedIssue when that finding is listed);
//! * one **RiskAssessment** for the fracture-risk category, its basis as `basis` references
//!   and `note`s.
//!
//! Provenance: every resource carries the assessment's provenance stamp as `meta.tag`s
//! (engine and version, knowledge version, configuration hash) — no separate Provenance
//! resource, whose required `recorded` instant would need the wall clock the engine never
//! reads. See docs/fhir-output.md.

use std::collections::BTreeSet;

use osteoguard_core::{Assessment, Finding, Severity, Task};
use serde_json::{json, Value};

/// The osteoguard finding CodeSystem (also used by the CDS Hooks cards).
pub const FINDING_SYSTEM: &str = "http://osteoguard.org/fhir/CodeSystem/finding";
/// Task codes.
pub const TASK_SYSTEM: &str = "http://osteoguard.org/fhir/CodeSystem/task";
/// Fracture-risk categories.
pub const RISK_SYSTEM: &str = "http://osteoguard.org/fhir/CodeSystem/fracture-risk-category";
/// Provenance tags (`engine`, `knowledge`, `config`).
pub const PROVENANCE_SYSTEM: &str = "http://osteoguard.org/fhir/CodeSystem/provenance";

const DEVICE_ID: &str = "osteoguard";

/// DetectedIssue.severity (`high | moderate | low`).
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "high",
        Severity::Moderate => "moderate",
        Severity::Info => "low",
    }
}

/// A FHIR id (`[A-Za-z0-9\-\.]{1,64}`) from any text.
fn fhir_id(s: &str) -> String {
    let mut id: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    id.truncate(64);
    id
}

fn meta(a: &Assessment) -> Value {
    let p = &a.provenance;
    json!({"tag": [
        {"system": PROVENANCE_SYSTEM, "code": format!("engine:{}/{}", p.engine, p.engine_version)},
        {"system": PROVENANCE_SYSTEM, "code": format!("knowledge:{}", p.knowledge_version)},
        {"system": PROVENANCE_SYSTEM, "code": format!("config:{}", p.config_hash)},
    ]})
}

fn device(a: &Assessment) -> Value {
    json!({
        "resourceType": "Device",
        "id": DEVICE_ID,
        "meta": meta(a),
        "status": "active",
        "deviceName": [{"name": a.provenance.engine, "type": "manufacturer-name"}],
        "version": [{"value": a.provenance.engine_version}],
    })
}

fn detected_issue_id(i: usize, f: &Finding) -> String {
    fhir_id(&format!("{}-{}", i + 1, f.code.as_str()))
}

fn detected_issue(a: &Assessment, i: usize, f: &Finding) -> Value {
    let implicated: BTreeSet<&str> = f.evidence.iter().map(|e| e.reference.as_str()).collect();
    let mut issue = json!({
        "resourceType": "DetectedIssue",
        "id": detected_issue_id(i, f),
        "meta": meta(a),
        "status": "final",
        "code": {
            "coding": [{"system": FINDING_SYSTEM, "code": f.code.as_str(), "display": f.title}],
            "text": f.title,
        },
        "severity": severity(f.severity),
        "patient": {"reference": a.patient.reference},
        "identifiedDateTime": a.as_of.to_string(),
        "author": {"reference": format!("Device/{DEVICE_ID}")},
        "detail": f.summary,
        "mitigation": [{"action": {"text": f.recommendation}}],
    });
    if !implicated.is_empty() {
        issue["implicated"] = implicated
            .iter()
            .map(|r| json!({"reference": r}))
            .collect::<Vec<_>>()
            .into();
        issue["evidence"] = json!([{
            "detail": f.evidence.iter()
                .map(|e| json!({"reference": e.reference, "display": e.detail}))
                .collect::<Vec<_>>(),
        }]);
    }
    issue
}

fn task(a: &Assessment, i: usize, t: &Task) -> Value {
    let mut v = json!({
        "resourceType": "Task",
        "id": fhir_id(&format!("task-{}-{}", i + 1, t.code)),
        "meta": meta(a),
        "status": "requested",
        "intent": "proposal",
        "code": {"coding": [{"system": TASK_SYSTEM, "code": t.code}], "text": t.description},
        "description": t.description,
        "for": {"reference": a.patient.reference},
        "authoredOn": a.as_of.to_string(),
        "requester": {"reference": format!("Device/{DEVICE_ID}")},
    });
    if let Some(due) = t.due {
        v["restriction"] = json!({"period": {"end": due.to_string()}});
    }
    let reason = t.finding.and_then(|code| {
        a.findings
            .iter()
            .enumerate()
            .find(|(_, f)| f.code == code)
            .map(|(j, f)| detected_issue_id(j, f))
    });
    if let Some(id) = reason {
        v["reasonReference"] = json!({"reference": format!("DetectedIssue/{id}")});
    }
    v
}

fn risk_assessment(a: &Assessment) -> Value {
    let r = &a.fracture_risk;
    let basis: BTreeSet<&str> = r.evidence.iter().map(|e| e.reference.as_str()).collect();
    let mut v = json!({
        "resourceType": "RiskAssessment",
        "id": "fracture-risk",
        "meta": meta(a),
        "status": "final",
        "subject": {"reference": a.patient.reference},
        "occurrenceDateTime": a.as_of.to_string(),
        "performer": {"reference": format!("Device/{DEVICE_ID}")},
        "prediction": [{
            "outcome": {"text": "osteoporotic fracture"},
            "qualitativeRisk": {
                "coding": [{"system": RISK_SYSTEM, "code": r.category}],
                "text": r.category,
            },
        }],
    });
    if !basis.is_empty() {
        v["basis"] = basis
            .iter()
            .map(|b| json!({"reference": b}))
            .collect::<Vec<_>>()
            .into();
    }
    if !r.basis.is_empty() {
        v["note"] = r
            .basis
            .iter()
            .map(|b| json!({"text": b}))
            .collect::<Vec<_>>()
            .into();
    }
    v
}

/// Every resource of the assessment, in Bundle order: Device, DetectedIssues, Tasks,
/// RiskAssessment.
pub fn resources(a: &Assessment) -> Vec<Value> {
    let mut out = vec![device(a)];
    out.extend(
        a.findings
            .iter()
            .enumerate()
            .map(|(i, f)| detected_issue(a, i, f)),
    );
    out.extend(a.tasks.iter().enumerate().map(|(i, t)| task(a, i, t)));
    out.push(risk_assessment(a));
    out
}

/// The `collection` Bundle as a JSON value.
pub fn bundle(a: &Assessment) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": "collection",
        "meta": meta(a),
        "entry": resources(a).into_iter().map(|r| json!({"resource": r})).collect::<Vec<_>>(),
    })
}

/// Pretty-printed Bundle with a trailing newline (deterministic: same assessment, same bytes).
pub fn render(a: &Assessment) -> String {
    match serde_json::to_string_pretty(&bundle(a)) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}
