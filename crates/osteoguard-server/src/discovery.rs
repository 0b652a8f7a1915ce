//! The three CDS services and their prefetch templates (CDS Hooks 2.0 discovery).

use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    PatientView,
    OrderSelect,
    OrderSign,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::PatientView => "patient-view",
            Hook::OrderSelect => "order-select",
            Hook::OrderSign => "order-sign",
        }
    }
    pub fn is_order(self) -> bool {
        !matches!(self, Hook::PatientView)
    }
}

pub struct Service {
    pub id: &'static str,
    pub hook: Hook,
    pub title: &'static str,
    pub description: &'static str,
}

pub const SERVICES: [Service; 3] = [
    Service {
        id: "osteoguard-patient-view",
        hook: Hook::PatientView,
        title: "osteoguard bone health",
        description:
            "Bone-health findings for the open chart: glucocorticoid-induced osteoporosis \
                      (ACR 2022), denosumab schedule and discontinuation (ECTS 2021), vertebral \
                      compression fractures, and antiresorptive safety checks.",
    },
    Service {
        id: "osteoguard-order-select",
        hook: Hook::OrderSelect,
        title: "osteoguard order check (select)",
        description: "Evaluates the selected draft orders as if placed: zoledronic acid with \
                      impaired renal function, glucocorticoid courses that need bone protection, \
                      and denosumab stopped without a transition plan.",
    },
    Service {
        id: "osteoguard-order-sign",
        hook: Hook::OrderSign,
        title: "osteoguard order check (sign)",
        description: "Evaluates the draft orders about to be signed as if placed, and repeats \
                      urgent bone-health findings (denosumab overdue or stopped) before signing.",
    },
];

pub fn service(id: &str) -> Option<&'static Service> {
    SERVICES.iter().find(|s| s.id == id)
}

/// Prefetch key → FHIR query template (the same data serves all three hooks). The last two
/// (spine imaging as reports and studies, knowledge.md §7.2) are [`OPTIONAL_PREFETCH`].
pub const PREFETCH: [(&str, &str); 10] = [
    ("patient", "Patient/{{context.patientId}}"),
    (
        "medicationRequests",
        "MedicationRequest?patient={{context.patientId}}",
    ),
    (
        "medicationAdministrations",
        "MedicationAdministration?patient={{context.patientId}}",
    ),
    (
        "medicationStatements",
        "MedicationStatement?patient={{context.patientId}}",
    ),
    (
        "observationsLab",
        "Observation?patient={{context.patientId}}&category=laboratory,vital-signs",
    ),
    (
        "observationsBone",
        "Observation?patient={{context.patientId}}&category=imaging,procedure,survey,exam",
    ),
    ("conditions", "Condition?patient={{context.patientId}}"),
    ("procedures", "Procedure?patient={{context.patientId}}"),
    (
        "diagnosticReports",
        "DiagnosticReport?patient={{context.patientId}}",
    ),
    (
        "imagingStudies",
        "ImagingStudy?patient={{context.patientId}}",
    ),
];

/// Prefetch keys a request may leave out even without a `fhirServer` (they are fetched when it
/// names one). Why: they were added after clients were set up with the first eight, and what
/// they carry (spine imaging done) can only withdraw a finding (§9 `ovcf-imaging-recommended`
/// clause (b)), so without them a card can be one too many, never one too few.
pub const OPTIONAL_PREFETCH: [&str; 2] = ["diagnosticReports", "imagingStudies"];

/// Fills `{{context.patientId}}` (the only token the templates use).
pub fn fill(template: &str, patient_id: &str) -> String {
    template.replace("{{context.patientId}}", patient_id)
}

pub fn discovery_document() -> Value {
    let prefetch: serde_json::Map<String, Value> = PREFETCH
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let services: Vec<Value> = SERVICES
        .iter()
        .map(|s| {
            json!({
                "hook": s.hook.as_str(),
                "id": s.id,
                "title": s.title,
                "description": s.description,
                "prefetch": prefetch,
                "usageRequirements": "Send the prefetch listed here, or fhirServer with a fhirAuthorization \
                                      bearer token so the service can fetch what is missing. Requests must \
                                      carry a JWT signed by a trusted issuer (ES384 or RS384).",
            })
        })
        .collect();
    json!({ "services": services })
}
