//! Clinical situations → CDS Hooks cards.
//!
//! One card per clinical situation (`osteoguard_core::assessment::situations`: the core groups
//! the findings, writes the < 140-character summary, sets the attention level and chooses the
//! actions, at most one recommended); this module only renders that plan as CDS Hooks 2.0 JSON:
//! `indicator` from the attention level, a Markdown detail with every finding's evidence,
//! missing inputs, notes and citation; the lead guideline as `source`; suggestions with real
//! FHIR actions (draft MedicationRequests / ServiceRequests, or deleting a contraindicated
//! draft order); `links` to the request's HTML report; `overrideReasons`; and four extensions:
//! `org.osteoguard.finding` (the lead finding: code, severity, rule section, as-of date),
//! `org.osteoguard.situation` (situation id, every finding of the card, safety labs first,
//! zoledronate allowed), `org.osteoguard.resources` (the references of the resources the card
//! concerns) and `org.osteoguard.provenance` (engine and knowledge versions, configuration hash,
//! overridden keys: which rules and settings produced the card).
//!
//! *Card identity:* `uuid` is a UUIDv5 of patient reference + lead finding code + the sorted,
//! distinct evidence references, so the same situation on the same evidence keeps its uuid
//! across invocations (EHRs de-duplicate on it; feedback attaches to the lead finding).

use chrono::NaiveDate;
use osteoguard_core::assessment::{
    Attention, PlannedAction, SafetyLab, SituationPlan, SUMMARY_MAX,
};
use osteoguard_core::model::MedicationStatus;
use osteoguard_core::{Assessment, Finding, FindingCode};
use std::borrow::Cow;
use std::fmt::Write;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use uuid::Uuid;

/// Namespace of osteoguard card uuids (fixed forever: changing it changes every card identity).
pub const CARD_NAMESPACE: Uuid = Uuid::from_u128(0x0b5e_09aa_7d1c_5e4f_9a2b_c0de_0000_0001);

pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const LOINC: &str = "http://loinc.org";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const OVERRIDE_SYSTEM: &str = "http://osteoguard.org/fhir/CodeSystem/override-reason";
pub const FINDING_SYSTEM: &str = "http://osteoguard.org/fhir/CodeSystem/finding";

pub struct CardContext<'a> {
    pub patient_id: &'a str,
    /// The same id, shared by the proposed resources' `subject`.
    pub patient: Arc<str>,
    /// [`provenance_json`] of the assessment.
    pub provenance: Arc<RawValue>,
    pub as_of: NaiveDate,
    /// The one assessment every card comes from (for order hooks the core's what-if
    /// assessment; its `draftOrders` are the drafts as sent).
    pub assessment: &'a Assessment,
    /// The absolute URL of this request's HTML report (`links[]` of every card), when the
    /// service publishes reports.
    pub report_url: Option<String>,
    /// What the answer could not check (`hooks::unfetched_note`: optional spine-imaging
    /// templates neither sent nor fetched), noted on every card that proposes spine imaging.
    pub unchecked: Option<String>,
}

impl CardContext<'_> {
    fn patient_ref(&self) -> String {
        format!("Patient/{}", self.patient_id)
    }
}

/// The provenance extension's JSON (members in name order, as `serde_json::Value` prints
/// them), once per request.
pub fn provenance_json(p: &osteoguard_core::Provenance) -> Arc<RawValue> {
    serde_json::to_value(p)
        .and_then(|v| serde_json::value::to_raw_value(&v))
        .map_or_else(|_| Arc::from(RawValue::NULL.to_owned()), Arc::from)
}

fn raw_json<S: serde::Serializer>(v: &Arc<RawValue>, s: S) -> Result<S::Ok, S::Error> {
    v.serialize(s)
}

/// Room for a card's Markdown detail (the seed case's longest is ≈ 4 kB).
const DETAIL_CAPACITY: usize = 4096;

/// The stable identity of a finding's card.
pub fn card_uuid(patient_ref: &str, code: FindingCode, evidence_refs: &[String]) -> Uuid {
    uuid_of(patient_ref, code, evidence_refs.iter().map(String::as_str))
}

/// [`card_uuid`] of borrowed references.
fn uuid_of<'r>(
    patient_ref: &str,
    code: FindingCode,
    evidence_refs: impl Iterator<Item = &'r str>,
) -> Uuid {
    let mut refs: Vec<&str> = evidence_refs.collect();
    refs.sort_unstable();
    refs.dedup();
    let mut name = String::with_capacity(
        patient_ref.len() + 64 + refs.iter().map(|r| r.len() + 1).sum::<usize>(),
    );
    name.push_str(patient_ref);
    name.push('\n');
    name.push_str(code.as_str());
    name.push('\n');
    for (i, r) in refs.iter().enumerate() {
        if i > 0 {
            name.push('\n');
        }
        name.push_str(r);
    }
    Uuid::new_v5(&CARD_NAMESPACE, name.as_bytes())
}

/// The CDS Hooks indicator of the core's attention level (by consequence, issue 17).
pub fn indicator(a: Attention) -> &'static str {
    a.as_str()
}

/// At most `max` characters: whole when it fits, else cut at the last word boundary with an
/// ellipsis (a single over-long word is cut hard). Summaries are written short by the core;
/// this only guards labels.
pub fn clip_words(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max.saturating_sub(1)).collect();
    let cut = match head.rfind(' ') {
        Some(i) if i > 0 => head[..i].trim_end().to_string(),
        _ => head,
    };
    format!("{cut}…")
}

/// Truncates to at most `max` characters, ending with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    clip_words(s, max)
}

/// Guideline label and URL for the first source tag (knowledge.md §1.8) a citation names,
/// from the core's one source table (`osteoguard_core::sources`).
pub fn source_for(citation: &str) -> (&'static str, Option<&'static str>) {
    let first = osteoguard_core::sources::SOURCES
        .iter()
        .filter_map(|s| citation.find(s.tag).map(|pos| (pos, s)))
        .min_by_key(|(pos, _)| *pos);
    match first {
        Some((_, s)) => (s.label, s.url),
        None => ("osteoguard clinical knowledge base", None),
    }
}

/// One of the card's `overrideReasons` (a Coding; members in the JSON's name order).
#[derive(Debug, Clone, Serialize)]
pub struct OverrideReason {
    pub code: &'static str,
    pub display: &'static str,
    pub system: &'static str,
}

const fn reason(code: &'static str, display: &'static str) -> OverrideReason {
    OverrideReason {
        code,
        display,
        system: OVERRIDE_SYSTEM,
    }
}

/// The override reasons every card offers.
pub const OVERRIDE_REASONS: [OverrideReason; 5] = [
    reason("patient-declined", "Patient declined"),
    reason(
        "contraindicated",
        "Not appropriate for this patient (contraindication or goals of care)",
    ),
    reason(
        "already-addressed",
        "Already addressed (outside records or another clinician)",
    ),
    reason("record-incorrect", "The record is incomplete or incorrect"),
    reason("defer", "Will address at a later visit"),
];

// --- the card as serialised -------------------------------------------------------------------
//
// Typed, so the response is written straight from the cards (issue 19: building and dropping a
// `serde_json::Value` tree per card was a third of the service's CPU per request). Members are
// declared in name order (byte order), which is the order `serde_json::Value` objects print
// in: the bytes are what they were (tests/response_bytes.rs).

/// A CDS Hooks 2.0 Card.
#[derive(Debug, Clone, Serialize)]
pub struct Card {
    pub detail: String,
    pub extension: CardExtension,
    pub indicator: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<[Link; 1]>,
    #[serde(rename = "overrideReasons")]
    pub override_reasons: &'static [OverrideReason],
    #[serde(rename = "selectionBehavior", skip_serializing_if = "Option::is_none")]
    pub selection_behavior: Option<&'static str>,
    pub source: CardSource,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<Suggestion>>,
    pub summary: String,
    pub uuid: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Link {
    pub label: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CardSource {
    pub label: &'static str,
    pub topic: Topic,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Topic {
    pub code: &'static str,
    pub display: &'static str,
    pub system: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    pub actions: Vec<Action>,
    #[serde(rename = "isRecommended")]
    pub is_recommended: bool,
    pub label: String,
    pub uuid: String,
}

/// The card's four extensions.
#[derive(Debug, Clone, Serialize)]
pub struct CardExtension {
    #[serde(rename = "org.osteoguard.finding")]
    pub finding: FindingExtension,
    /// The assessment's provenance as JSON (its members in name order), rendered once per
    /// request ([`provenance_json`]) and shared by the request's cards.
    #[serde(rename = "org.osteoguard.provenance", serialize_with = "raw_json")]
    pub provenance: Arc<RawValue>,
    #[serde(rename = "org.osteoguard.resources")]
    pub resources: Vec<String>,
    #[serde(rename = "org.osteoguard.situation")]
    pub situation: SituationExtension,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingExtension {
    #[serde(rename = "asOf")]
    pub as_of: String,
    pub citation: String,
    pub code: &'static str,
    #[serde(rename = "ruleSection")]
    pub rule_section: String,
    pub severity: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SituationExtension {
    pub findings: Vec<CodeSeverity>,
    pub id: &'static str,
    #[serde(rename = "safetyLabsFirst")]
    pub safety_labs_first: Vec<&'static str>,
    #[serde(rename = "zoledronateAllowed")]
    pub zoledronate_allowed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CodeSeverity {
    pub code: &'static str,
    pub severity: &'static str,
}

// --- FHIR resources for suggestions --------------------------------------------------------

struct Med {
    code: Option<(&'static str, &'static str, &'static str)>,
    text: &'static str,
    dose: f64,
    unit: &'static str,
    ucum: &'static str,
    route: (&'static str, &'static str),
    /// `None` = a single administration.
    timing: Option<(f64, f64, &'static str)>,
}

const IV: (&str, &str) = ("47625008", "Intravenous route");
const SC: (&str, &str) = ("34206005", "Subcutaneous route");
const ORAL: (&str, &str) = ("26643006", "Oral route");

const ZOLEDRONATE: Med = Med {
    code: Some((RXNORM, "77655", "zoledronic acid")),
    text: "Zoledronic acid 5 mg IV infusion over ≥ 15 minutes (single dose)",
    dose: 5.0,
    unit: "mg",
    ucum: "mg",
    route: IV,
    timing: None,
};
const ALENDRONATE: Med = Med {
    code: Some((RXNORM, "46041", "alendronate")),
    text: "Alendronate 70 mg orally once weekly",
    dose: 70.0,
    unit: "mg",
    ucum: "mg",
    route: ORAL,
    timing: Some((1.0, 1.0, "wk")),
};
const DENOSUMAB: Med = Med {
    code: Some((RXNORM, "993449", "denosumab")),
    text: "Denosumab 60 mg subcutaneously (single dose; next every 6 months)",
    dose: 60.0,
    unit: "mg",
    ucum: "mg",
    route: SC,
    timing: None,
};
const CALCIUM: Med = Med {
    code: Some((RXNORM, "1897", "calcium carbonate")),
    text: "Calcium 500 mg orally twice daily (adjust to dietary intake; total 1000–1200 mg/day)",
    dose: 500.0,
    unit: "mg",
    ucum: "mg",
    route: ORAL,
    timing: Some((2.0, 1.0, "d")),
};
const VITAMIN_D: Med = Med {
    code: Some((RXNORM, "2418", "cholecalciferol")),
    text: "Cholecalciferol (vitamin D3) 800 IU orally once daily",
    dose: 800.0,
    unit: "IU",
    ucum: "[IU]",
    route: ORAL,
    timing: Some((1.0, 1.0, "d")),
};
const TERIPARATIDE: Med = Med {
    code: Some(("http://www.whocc.no/atc", "H05AA02", "teriparatide")),
    text: "Teriparatide 20 µg subcutaneously once daily",
    dose: 20.0,
    unit: "µg",
    ucum: "ug",
    route: SC,
    timing: Some((1.0, 1.0, "d")),
};

// The suggestions' actions and FHIR resources, typed like the card (issue 19: built as
// `serde_json::Value` trees they were a twelfth of the service's CPU per request). Members in
// name order, optional ones skipped when absent, dates as `YYYY-MM-DD` strings: the bytes the
// `json!` trees printed (tests/response_bytes.rs; `typed_actions_print_the_json_trees_bytes`
// below covers every planned action).

/// One action of a suggestion (CDS Hooks 2.0 Action).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Action {
    Create(Create),
    Delete(Delete),
}

/// `{"type": "create", "description", "resource"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Create {
    pub description: Cow<'static, str>,
    pub resource: Resource,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// `{"type": "delete", "description", "resourceId"}`.
#[derive(Debug, Clone, Serialize)]
pub struct Delete {
    pub description: &'static str,
    #[serde(rename = "resourceId")]
    pub resource_id: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// The FHIR resource a `create` action proposes.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// Boxed: three times the size of a ServiceRequest.
    MedicationRequest(Box<MedicationRequest>),
    ServiceRequest(ServiceRequest),
}

/// A draft `MedicationRequest` (intent `proposal`).
#[derive(Debug, Clone, Serialize)]
pub struct MedicationRequest {
    #[serde(rename = "authoredOn")]
    pub authored_on: NaiveDate,
    #[serde(rename = "dosageInstruction")]
    pub dosage_instruction: [Dosage; 1],
    pub intent: &'static str,
    #[serde(rename = "medicationCodeableConcept")]
    pub medication: Concept,
    pub note: [Note; 1],
    #[serde(rename = "resourceType")]
    pub resource_type: &'static str,
    pub status: &'static str,
    pub subject: Subject,
}

/// A draft `ServiceRequest` (intent `proposal`).
#[derive(Debug, Clone, Serialize)]
pub struct ServiceRequest {
    #[serde(rename = "authoredOn")]
    pub authored_on: NaiveDate,
    pub code: Concept,
    pub intent: &'static str,
    pub note: [Note; 1],
    #[serde(rename = "occurrenceDateTime", skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<NaiveDate>,
    #[serde(rename = "resourceType")]
    pub resource_type: &'static str,
    pub status: &'static str,
    pub subject: Subject,
}

/// A CodeableConcept: at most one coding, and the text.
#[derive(Debug, Clone, Serialize)]
pub struct Concept {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coding: Option<[Coding; 1]>,
    pub text: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coding {
    pub code: &'static str,
    pub display: &'static str,
    pub system: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Dosage {
    #[serde(rename = "doseAndRate")]
    pub dose_and_rate: [DoseAndRate; 1],
    pub route: Route,
    pub text: &'static str,
    pub timing: Timing,
}

#[derive(Debug, Clone, Serialize)]
pub struct DoseAndRate {
    #[serde(rename = "doseQuantity")]
    pub dose_quantity: Quantity,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quantity {
    pub code: &'static str,
    pub system: &'static str,
    pub unit: &'static str,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Route {
    pub coding: [Coding; 1],
}

#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<[NaiveDate; 1]>,
    pub repeat: Repeat,
}

/// `Timing.repeat`: `count` for a single administration, else frequency per period (from the
/// start date when known).
#[derive(Debug, Clone, Serialize)]
pub struct Repeat {
    #[serde(rename = "boundsPeriod", skip_serializing_if = "Option::is_none")]
    pub bounds_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frequency: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<f64>,
    #[serde(rename = "periodUnit", skip_serializing_if = "Option::is_none")]
    pub period_unit: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Period {
    pub start: NaiveDate,
}

/// `{"text": "Proposed by osteoguard (<finding code>)."}`.
#[derive(Debug, Clone, Serialize)]
pub struct Note {
    #[serde(serialize_with = "proposed_by")]
    pub text: FindingCode,
}

fn proposed_by<S: serde::Serializer>(code: &FindingCode, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("Proposed by osteoguard ({}).", code.as_str()))
}

/// `{"reference": "Patient/<id>"}` (the id shared by every resource of the request).
#[derive(Debug, Clone, Serialize)]
pub struct Subject {
    #[serde(serialize_with = "patient_reference")]
    pub reference: Arc<str>,
}

fn patient_reference<S: serde::Serializer>(id: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("Patient/{id}"))
}

/// What every proposed resource of one card shares: the request's patient and date, and the
/// finding the proposal answers.
struct Proposal {
    patient: Arc<str>,
    as_of: NaiveDate,
    code: FindingCode,
}

impl Proposal {
    fn note(&self) -> [Note; 1] {
        [Note { text: self.code }]
    }

    fn subject(&self) -> Subject {
        Subject {
            reference: self.patient.clone(),
        }
    }
}

fn coding((system, code, display): (&'static str, &'static str, &'static str)) -> Coding {
    Coding {
        code,
        display,
        system,
    }
}

fn med_request(p: &Proposal, m: &Med, when: Option<NaiveDate>) -> Resource {
    let repeat = match m.timing {
        Some((f, per, u)) => Repeat {
            bounds_period: when.map(|start| Period { start }),
            count: None,
            frequency: Some(f),
            period: Some(per),
            period_unit: Some(u),
        },
        None => Repeat {
            bounds_period: None,
            count: Some(1),
            frequency: None,
            period: None,
            period_unit: None,
        },
    };
    let event = match (m.timing, when) {
        (None, Some(d)) => Some([d]),
        _ => None,
    };
    Resource::MedicationRequest(Box::new(MedicationRequest {
        authored_on: p.as_of,
        dosage_instruction: [Dosage {
            dose_and_rate: [DoseAndRate {
                dose_quantity: Quantity {
                    code: m.ucum,
                    system: "http://unitsofmeasure.org",
                    unit: m.unit,
                    value: m.dose,
                },
            }],
            route: Route {
                coding: [coding((SNOMED, m.route.0, m.route.1))],
            },
            text: m.text,
            timing: Timing { event, repeat },
        }],
        intent: "proposal",
        medication: Concept {
            coding: m.code.map(|c| [coding(c)]),
            text: m.text,
        },
        note: p.note(),
        resource_type: "MedicationRequest",
        status: "draft",
        subject: p.subject(),
    }))
}

fn service_request(
    p: &Proposal,
    code: Option<(&'static str, &'static str, &'static str)>,
    text: &'static str,
    when: Option<NaiveDate>,
) -> Resource {
    Resource::ServiceRequest(ServiceRequest {
        authored_on: p.as_of,
        code: Concept {
            coding: code.map(|c| [coding(c)]),
            text,
        },
        intent: "proposal",
        note: p.note(),
        occurrence: when,
        resource_type: "ServiceRequest",
        status: "draft",
        subject: p.subject(),
    })
}

fn create(description: impl Into<Cow<'static, str>>, resource: Resource) -> Action {
    Action::Create(Create {
        description: description.into(),
        resource,
        kind: "create",
    })
}

fn ctx_lab(p: &Proposal, when: Option<NaiveDate>) -> Action {
    create(
        "Order serum CTX (fasting morning sample)",
        service_request(
            p,
            Some((
                LOINC,
                "41171-0",
                "Collagen crosslinked C-telopeptide [Mass/volume] in Serum or Plasma",
            )),
            "Serum CTX (fasting, morning)",
            when,
        ),
    )
}

fn dxa_order(p: &Proposal) -> Action {
    create(
        "Order DXA with vertebral fracture assessment",
        service_request(
            p,
            Some((SNOMED, "312681000", "Bone density scan")),
            "DXA (lumbar spine and hip) with vertebral fracture assessment",
            None,
        ),
    )
}

fn lab(p: &Proposal, l: SafetyLab) -> Action {
    create(
        format!("Order {}", l.display()),
        service_request(p, Some((LOINC, l.loinc(), l.display())), l.display(), None),
    )
}

fn deletes(orders: &[String]) -> Vec<Action> {
    orders
        .iter()
        .map(|r| {
            Action::Delete(Delete {
                description: "Remove the zoledronic acid order",
                resource_id: r.clone(),
                kind: "delete",
            })
        })
        .collect()
}

/// `a`, `a and b`, `a, b and c`.
fn words_list(items: &[&str]) -> String {
    match items.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Label and FHIR actions of one planned action (rendering only: what to suggest, and which
/// suggestion is recommended, the core decided).
fn render_action(p: &Proposal, a: &PlannedAction) -> (String, Vec<Action>) {
    use PlannedAction::*;
    let zol = |when: NaiveDate| {
        create(
            "Order zoledronic acid 5 mg IV",
            med_request(p, &ZOLEDRONATE, Some(when)),
        )
    };
    let dmab = |when: NaiveDate| {
        create(
            "Order denosumab 60 mg SC",
            med_request(p, &DENOSUMAB, Some(when)),
        )
    };
    match a {
        SafetyLabs { labs } => {
            let names: Vec<&str> = labs.iter().map(|l| l.short()).collect();
            (
                format!(
                    "Order {} first; the antiresorptive follows once known",
                    words_list(&names)
                ),
                labs.iter().map(|l| lab(p, *l)).collect(),
            )
        }
        CalciumRecheck => (
            "Order calcium, albumin and creatinine".into(),
            [
                SafetyLab::Calcium,
                SafetyLab::Albumin,
                SafetyLab::Creatinine,
            ]
            .into_iter()
            .map(|l| lab(p, l))
            .collect(),
        ),
        ZoledronateTransition { date, ctx_date } => (
            format!("Zoledronic acid 5 mg IV on {date}, CTX 3 and 6 months after (ECTS plan)"),
            vec![zol(*date), ctx_lab(p, *ctx_date)],
        ),
        ZoledronateNow { repeat: false } => (
            "Start zoledronic acid 5 mg IV now".into(),
            vec![zol(p.as_of)],
        ),
        ZoledronateNow { repeat: true } => (
            "Repeat zoledronic acid 5 mg IV (CTX elevated)".into(),
            vec![zol(p.as_of)],
        ),
        ZoledronateYearly => ("Zoledronic acid 5 mg IV yearly".into(), vec![zol(p.as_of)]),
        Alendronate { date } => (
            if *date > p.as_of {
                format!("Alendronate 70 mg weekly from {date}")
            } else {
                "Alendronate 70 mg weekly".into()
            },
            vec![create(
                "Order alendronate 70 mg weekly",
                med_request(p, &ALENDRONATE, Some(*date)),
            )],
        ),
        DenosumabDose { date } => (
            if *date > p.as_of {
                format!("Give denosumab 60 mg SC by {date}")
            } else {
                "Give denosumab 60 mg SC now".into()
            },
            vec![dmab(*date)],
        ),
        RemoveZoledronate { orders } => {
            ("Remove the zoledronic acid order".into(), deletes(orders))
        }
        ReplaceZoledronateWithDenosumab { orders, labs } => {
            let mut v = deletes(orders);
            v.extend(labs.iter().map(|l| lab(p, *l)));
            v.push(create(
                "Order denosumab 60 mg SC instead",
                med_request(p, &DENOSUMAB, Some(p.as_of)),
            ));
            (
                "Replace with denosumab 60 mg SC (check calcium and CKD-MBD first)".into(),
                v,
            )
        }
        Teriparatide => (
            "Teriparatide 20 µg SC daily".into(),
            vec![create(
                "Order teriparatide 20 µg daily",
                med_request(p, &TERIPARATIDE, Some(p.as_of)),
            )],
        ),
        CalciumAndVitaminD => (
            "Calcium 1000–1200 mg/day and vitamin D 800 IU/day".into(),
            vec![
                create(
                    "Order calcium supplement",
                    med_request(p, &CALCIUM, Some(p.as_of)),
                ),
                create(
                    "Order vitamin D3 800 IU daily",
                    med_request(p, &VITAMIN_D, Some(p.as_of)),
                ),
            ],
        ),
        VitaminDRepletion => (
            "Replete vitamin D (cholecalciferol)".into(),
            vec![create(
                "Order vitamin D3",
                med_request(p, &VITAMIN_D, Some(p.as_of)),
            )],
        ),
        Ctx { date } => (
            match date {
                Some(d) if *d > p.as_of => format!("Order serum CTX for {d}"),
                _ => "Order serum CTX".into(),
            },
            vec![ctx_lab(p, *date)],
        ),
        CtxAndWholeSpineMri => (
            "Order serum CTX and whole-spine imaging".into(),
            vec![
                ctx_lab(p, None),
                create(
                    "Order whole-spine MRI (STIR)",
                    service_request(p, None, "MRI whole spine with STIR sequence", None),
                ),
            ],
        ),
        Dxa => (
            "Order DXA with vertebral fracture assessment".into(),
            vec![dxa_order(p)],
        ),
        SpineMri => (
            "Order spine MRI with STIR".into(),
            vec![create(
                "Order spine MRI with STIR",
                service_request(
                    p,
                    None,
                    "MRI spine with STIR sequence (CT if MRI contraindicated)",
                    None,
                ),
            )],
        ),
        AugmentationReferral => (
            "Refer for vertebral augmentation evaluation".into(),
            vec![create(
                "Refer for vertebral augmentation evaluation",
                service_request(p, None, "Referral: vertebral augmentation evaluation", None),
            )],
        ),
    }
}

/// Appends the Markdown detail of one finding to `s` (written in place: no string per line,
/// the texts pushed as they are; the formatting machinery only for dates).
fn detail(s: &mut String, ctx: &CardContext, f: &Finding) {
    s.push_str("**");
    s.push_str(&f.title);
    s.push_str("** — ");
    s.push_str(f.summary.trim());
    s.push_str("\n\n**Recommendation:** ");
    s.push_str(f.recommendation.trim());
    s.push_str("\n\n");
    // Writing to a `String` cannot fail.
    if let Some(d) = f.due {
        let _ = write!(s, "**Due:** {d}\n\n");
    }
    if !f.levels.is_empty() {
        s.push_str("**Vertebral levels:** ");
        for (i, l) in f.levels.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(l);
        }
        s.push_str("\n\n");
    }
    if !f.evidence.is_empty() {
        s.push_str("**Evidence**\n\n");
        for e in &f.evidence {
            s.push_str("- ");
            if let Some(d) = e.date {
                let _ = write!(s, "{d}: ");
            }
            s.push_str(&e.detail);
            s.push_str(" (`");
            s.push_str(&e.reference);
            s.push_str("`)\n");
        }
        s.push('\n');
    }
    if !f.inputs_missing.is_empty() {
        s.push_str("**Missing inputs**\n\n");
        for m in &f.inputs_missing {
            s.push_str("- ");
            s.push_str(m);
            s.push('\n');
        }
        s.push('\n');
    }
    if !f.notes.is_empty() {
        s.push_str("**Notes**\n\n");
        for n in &f.notes {
            s.push_str("- ");
            s.push_str(n);
            s.push('\n');
        }
        s.push('\n');
    }
    s.push_str("**Source:** ");
    s.push_str(&f.citation);
    s.push_str(" (knowledge base ");
    s.push_str(&f.rule_section);
    let _ = write!(
        s,
        "). Evaluated as of {}; fracture-risk category: {}.",
        ctx.as_of, ctx.assessment.fracture_risk.category
    );
}

/// The resources a card concerns: its evidence references (engine-derived facts excluded).
pub fn resources_of(f: &Finding) -> Vec<String> {
    let mut v: Vec<String> = f
        .evidence
        .iter()
        .map(|e| &*e.reference)
        .filter(|r| is_resource(r))
        .map(str::to_string)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Whether an evidence reference names a resource (not an engine-derived fact).
fn is_resource(reference: &str) -> bool {
    reference.contains('/') && !reference.starts_with("osteoguard:")
}

/// Whether one of the plan's suggestions orders spine imaging (the card a note on unchecked
/// imaging records belongs on).
fn proposes_spine_imaging(plan: &SituationPlan) -> bool {
    plan.actions.iter().any(|s| {
        matches!(
            s.action,
            PlannedAction::SpineMri | PlannedAction::CtxAndWholeSpineMri
        )
    })
}

/// The card of one clinical situation (`osteoguard_core::assessment::situations`): the
/// summary, the indicator, the actions and which one is recommended all come from the core's
/// plan; this renders them (CDS Hooks 2.0 Card) with the findings' details and the evidence.
pub fn card(ctx: &CardContext, plan: &SituationPlan, findings: &[&Finding]) -> (Uuid, Card) {
    let evidence_refs = || {
        findings
            .iter()
            .flat_map(|f| f.evidence.iter().map(|e| &*e.reference))
    };
    let uuid = uuid_of(&ctx.patient_ref(), plan.lead, evidence_refs());
    let lead = findings
        .iter()
        .find(|f| f.code == plan.lead)
        .or(findings.first());
    let citation = lead.map(|f| f.citation.as_str()).unwrap_or_default();
    let (label, url) = source_for(citation);
    let mut detail_text = String::with_capacity(DETAIL_CAPACITY);
    if !plan.safety_labs.is_empty() {
        let names: Vec<&str> = plan.safety_labs.iter().map(|l| l.short()).collect();
        let _ = write!(
            detail_text,
            "**Safety first (knowledge base §8):** {} missing or out of date; order {} first — \
             the antiresorptive follows once the results are known.\n\n",
            words_list(&names),
            if names.len() == 1 { "it" } else { "them" }
        );
    }
    for (i, f) in findings.iter().enumerate() {
        if i > 0 {
            detail_text.push_str("\n\n---\n\n");
        }
        detail(&mut detail_text, ctx, f);
    }
    if let Some(note) = ctx
        .unchecked
        .as_deref()
        .filter(|_| proposes_spine_imaging(plan))
    {
        detail_text.push_str("\n\n");
        detail_text.push_str(note);
    }
    let mut resources: Vec<&str> = evidence_refs().filter(|r| is_resource(r)).collect();
    resources.sort_unstable();
    resources.dedup();
    let resources: Vec<String> = resources.into_iter().map(str::to_string).collect();
    let (lead_code, lead_severity, lead_section) = match lead {
        Some(f) => (f.code, f.severity, f.rule_section.clone()),
        None => (plan.lead, plan.severity, String::new()),
    };
    let proposal = Proposal {
        patient: ctx.patient.clone(),
        as_of: ctx.as_of,
        code: plan.lead,
    };
    let suggestions = (!plan.actions.is_empty()).then(|| {
        plan.actions
            .iter()
            .map(|s| {
                let (label, actions) = render_action(&proposal, &s.action);
                let id = Uuid::new_v5(&uuid, s.action.key().as_bytes());
                Suggestion {
                    actions,
                    is_recommended: s.recommended,
                    label: clip_words(&label, SUMMARY_MAX),
                    uuid: id.to_string(),
                }
            })
            .collect::<Vec<_>>()
    });
    let selection_behavior =
        suggestions
            .as_ref()
            .map(|list| if list.len() > 1 { "at-most-one" } else { "any" });
    let c = Card {
        detail: detail_text,
        extension: CardExtension {
            finding: FindingExtension {
                as_of: ctx.as_of.to_string(),
                citation: citation.to_string(),
                code: lead_code.as_str(),
                rule_section: lead_section,
                severity: lead_severity.as_str(),
            },
            provenance: ctx.provenance.clone(),
            resources,
            situation: SituationExtension {
                findings: findings
                    .iter()
                    .map(|f| CodeSeverity {
                        code: f.code.as_str(),
                        severity: f.severity.as_str(),
                    })
                    .collect(),
                id: plan.situation.as_str(),
                safety_labs_first: plan.safety_labs.iter().map(|l| l.loinc()).collect(),
                zoledronate_allowed: plan.zoledronate_allowed,
            },
        },
        indicator: indicator(plan.attention),
        links: ctx.report_url.as_ref().map(|link| {
            [Link {
                label: "Bone-health report (this patient, as of this request)",
                kind: "absolute",
                url: link.clone(),
            }]
        }),
        override_reasons: &OVERRIDE_REASONS,
        selection_behavior,
        source: CardSource {
            label,
            topic: Topic {
                code: lead_code.as_str(),
                display: lead_code.title(),
                system: FINDING_SYSTEM,
            },
            url,
        },
        suggestions,
        summary: clip_words(&plan.summary, SUMMARY_MAX),
        uuid: uuid.to_string(),
    };
    (uuid, c)
}

/// What a card serialised with an empty `detail` starts with (`detail` is its first member).
const EMPTY_DETAIL_HEAD: &[u8] = b"{\"detail\":\"\"";

/// Writes the response body `{"cards":[…]}`: the bytes `serde_json` writes for
/// `{"cards": cards}`, with each card's Markdown `detail` (half of a card's bytes) escaped by
/// [`escape_json_into`] instead of serde_json's byte-by-byte table walk (escaping was 79 % of
/// the card serialisation, issue 19). Each card is serialised with its detail taken out (and
/// put back): `{"detail":""` + the rest, the escaped detail written between the quotes.
pub fn write_cards(out: &mut Vec<u8>, cards: &mut [Card]) -> serde_json::Result<()> {
    out.extend_from_slice(b"{\"cards\":[");
    let mut rest = Vec::new();
    for (i, c) in cards.iter_mut().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let detail = std::mem::take(&mut c.detail);
        rest.clear();
        let written = serde_json::to_writer(&mut rest, &*c);
        c.detail = detail;
        written?;
        match rest.strip_prefix(EMPTY_DETAIL_HEAD) {
            Some(tail) => {
                out.extend_from_slice(&EMPTY_DETAIL_HEAD[..EMPTY_DETAIL_HEAD.len() - 1]);
                escape_json_into(out, &c.detail);
                out.push(b'"');
                out.extend_from_slice(tail);
            }
            // Not reached while `detail` is the first member; serde_json's bytes if it is not.
            None => serde_json::to_writer(&mut *out, &*c)?,
        }
    }
    out.extend_from_slice(b"]}");
    Ok(())
}

/// Appends `s` escaped as the contents of a JSON string, byte for byte what serde_json writes
/// (`\"`, `\\`, `\b \f \n \r \t`, other control bytes as `\u00xx`, everything else as is):
/// the runs between bytes to escape are copied whole. The next byte to escape is exactly where
/// the reader's plain-string scan stops (`osteoguard_fhir::json::plain_end`: `"`, `\` or a control
/// byte, eight bytes at a time), so the one loop serves reading and writing.
pub fn escape_json_into(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let b = s.as_bytes();
    let mut run = 0;
    loop {
        let at = osteoguard_fhir::json::plain_end(b, run);
        out.extend_from_slice(&b[run..at]);
        let Some(&c) = b.get(at) else { break };
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x0c => b'f',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            _ => 0,
        };
        if short != 0 {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ]);
        }
        run = at + 1;
    }
}

/// Maps the reader's status of a draft back to a FHIR status string (for logs and tests).
pub fn status_str(s: MedicationStatus) -> &'static str {
    match s {
        MedicationStatus::Active => "active",
        MedicationStatus::Completed => "completed",
        MedicationStatus::OnHold => "on-hold",
        MedicationStatus::Stopped => "stopped",
        MedicationStatus::Cancelled => "cancelled",
        MedicationStatus::EnteredInError => "entered-in-error",
        MedicationStatus::Draft => "draft",
        MedicationStatus::Intended => "intended",
        MedicationStatus::NotTaken => "not-taken",
        MedicationStatus::InProgress => "in-progress",
        MedicationStatus::NotDone => "not-done",
        MedicationStatus::Unknown => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde_json's escaping of `s` (without the quotes): the oracle.
    fn serde_escaped(s: &str) -> Vec<u8> {
        let quoted = serde_json::to_vec(s).unwrap_or_default();
        quoted[1..quoted.len() - 1].to_vec()
    }

    #[test]
    fn escape_json_into_writes_serde_jsons_bytes() {
        // Every ASCII byte, alone and at every offset of a chunk (0..17 plain bytes before
        // and after), multi-byte characters around it, and the texts cards carry.
        let mut texts: Vec<String> = vec![
            String::new(),
            "plain".into(),
            "**Bold** — “quotes” é ü 𝄞\n\n- list `code`\r\n\ttab \\ \"q\"".into(),
            "\u{7f}\u{1}\u{1f}\u{0}\u{8}\u{c}/".into(),
        ];
        for c in 0u8..0x80 {
            let ch = char::from(c);
            for before in 0..17 {
                for after in [0, 1, 7, 8, 9] {
                    texts.push(format!("{}{ch}{}", "a".repeat(before), "é".repeat(after)));
                }
            }
        }
        for t in &texts {
            let mut ours = Vec::new();
            escape_json_into(&mut ours, t);
            assert_eq!(ours, serde_escaped(t), "{t:?}");
        }
    }

    #[test]
    fn uuid_is_stable_and_order_independent() {
        let a = card_uuid(
            "Patient/p",
            FindingCode::DenosumabOverdue,
            &["B/2".into(), "A/1".into(), "A/1".into()],
        );
        let b = card_uuid(
            "Patient/p",
            FindingCode::DenosumabOverdue,
            &["A/1".into(), "B/2".into()],
        );
        assert_eq!(a, b);
        assert_eq!(a.get_version_num(), 5);
        assert_ne!(
            a,
            card_uuid(
                "Patient/q",
                FindingCode::DenosumabOverdue,
                &["A/1".into(), "B/2".into()]
            )
        );
        assert_ne!(
            a,
            card_uuid(
                "Patient/p",
                FindingCode::DenosumabDueSoon,
                &["A/1".into(), "B/2".into()]
            )
        );
        assert_ne!(
            a,
            card_uuid("Patient/p", FindingCode::DenosumabOverdue, &["A/1".into()])
        );
    }

    #[test]
    fn clip_keeps_at_most_140_chars() {
        let long = "é".repeat(300);
        let c = clip(&long, 140);
        assert_eq!(c.chars().count(), 140);
        assert!(c.ends_with('…'));
        assert_eq!(clip("short", 140), "short");
    }

    /// The `json!` trees the suggestions' resources were built as before they were typed
    /// (1fa2c62), kept as the reference the typed resources must print byte for byte.
    mod as_json_trees {
        use super::super::*;
        use serde_json::{json, Value};

        pub fn med_request(p: &Proposal, m: &Med, when: Option<NaiveDate>) -> Value {
            let mut timing = serde_json::Map::new();
            let mut repeat = serde_json::Map::new();
            match m.timing {
                Some((f, per, u)) => {
                    repeat.insert("frequency".into(), json!(f));
                    repeat.insert("period".into(), json!(per));
                    repeat.insert("periodUnit".into(), json!(u));
                    if let Some(d) = when {
                        repeat.insert("boundsPeriod".into(), json!({"start": d.to_string()}));
                    }
                }
                None => {
                    repeat.insert("count".into(), json!(1));
                }
            }
            timing.insert("repeat".into(), Value::Object(repeat));
            if let (None, Some(d)) = (m.timing, when) {
                timing.insert("event".into(), json!([d.to_string()]));
            }
            let mut concept = json!({"text": m.text});
            if let Some((system, c, display)) = m.code {
                concept["coding"] = json!([{"system": system, "code": c, "display": display}]);
            }
            json!({
                "resourceType": "MedicationRequest",
                "status": "draft",
                "intent": "proposal",
                "subject": {"reference": format!("Patient/{}", p.patient)},
                "authoredOn": p.as_of.to_string(),
                "medicationCodeableConcept": concept,
                "dosageInstruction": [{
                    "text": m.text,
                    "route": {"coding": [{"system": SNOMED, "code": m.route.0, "display": m.route.1}]},
                    "timing": Value::Object(timing),
                    "doseAndRate": [{"doseQuantity": {
                        "value": m.dose, "unit": m.unit, "system": "http://unitsofmeasure.org", "code": m.ucum
                    }}]
                }],
                "note": [{"text": format!("Proposed by osteoguard ({}).", p.code.as_str())}]
            })
        }

        pub fn service_request(
            p: &Proposal,
            coding: Option<(&str, &str, &str)>,
            text: &str,
            when: Option<NaiveDate>,
        ) -> Value {
            let mut concept = json!({"text": text});
            if let Some((system, c, display)) = coding {
                concept["coding"] = json!([{"system": system, "code": c, "display": display}]);
            }
            let mut r = json!({
                "resourceType": "ServiceRequest",
                "status": "draft",
                "intent": "proposal",
                "subject": {"reference": format!("Patient/{}", p.patient)},
                "authoredOn": p.as_of.to_string(),
                "code": concept,
                "note": [{"text": format!("Proposed by osteoguard ({}).", p.code.as_str())}]
            });
            if let Some(d) = when {
                r["occurrenceDateTime"] = json!(d.to_string());
            }
            r
        }

        pub fn create(description: &str, resource: Value) -> Value {
            json!({"type": "create", "description": description, "resource": resource})
        }
    }

    /// Every medication, service request shape, lab and delete prints what its `json!` tree
    /// printed (the response snapshots cover the actions the shared cases plan; this covers
    /// the others).
    #[test]
    fn typed_actions_print_the_json_trees_bytes() {
        use as_json_trees as old;
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        let p = Proposal {
            patient: Arc::from("p-1\"quoted\""),
            as_of: d(2023, 6, 15),
            code: FindingCode::DenosumabOverdue,
        };
        let same = |typed: &Action, tree: &serde_json::Value| {
            assert_eq!(
                serde_json::to_string(typed).unwrap(),
                serde_json::to_string(tree).unwrap()
            );
        };
        let meds = [
            ZOLEDRONATE,
            ALENDRONATE,
            DENOSUMAB,
            CALCIUM,
            VITAMIN_D,
            TERIPARATIDE,
        ];
        for m in &meds {
            for when in [None, Some(d(2023, 7, 1))] {
                same(
                    &create("Order it", med_request(&p, m, when)),
                    &old::create("Order it", old::med_request(&p, m, when)),
                );
            }
        }
        let uncoded = Med {
            code: None,
            ..ZOLEDRONATE
        };
        same(
            &create("x", med_request(&p, &uncoded, None)),
            &old::create("x", old::med_request(&p, &uncoded, None)),
        );
        for coding in [None, Some((LOINC, "41171-0", "CTX"))] {
            for when in [None, Some(d(2023, 9, 15))] {
                same(
                    &create("y", service_request(&p, coding, "Serum CTX", when)),
                    &old::create("y", old::service_request(&p, coding, "Serum CTX", when)),
                );
            }
        }
        for l in [
            SafetyLab::Creatinine,
            SafetyLab::Calcium,
            SafetyLab::Albumin,
            SafetyLab::VitaminD25,
        ] {
            same(
                &lab(&p, l),
                &old::create(
                    &format!("Order {}", l.display()),
                    old::service_request(
                        &p,
                        Some((LOINC, l.loinc(), l.display())),
                        l.display(),
                        None,
                    ),
                ),
            );
        }
        let orders = ["MedicationRequest/draft-0".to_string()];
        let deleted = deletes(&orders);
        assert_eq!(
            serde_json::to_string(&deleted).unwrap(),
            serde_json::to_string(&[serde_json::json!({"type": "delete",
                "description": "Remove the zoledronic acid order", "resourceId": orders[0]})])
            .unwrap()
        );
    }

    #[test]
    fn indicator_mapping() {
        // By consequence (issue 17): the core's attention level, rendered as is; the severity
        // → attention rule (moderate/info → info) is tested in osteoguard-core.
        assert_eq!(indicator(Attention::Critical), "critical");
        assert_eq!(indicator(Attention::Warning), "warning");
        assert_eq!(indicator(Attention::Info), "info");
    }

    #[test]
    fn source_picks_first_named_guideline() {
        assert!(source_for("ECTS-2021; CUMMINGS-2018")
            .0
            .starts_with("ECTS 2021"));
        assert!(source_for("LYU-2020; CUMMINGS-2018").0.contains("Lyu"));
        assert!(source_for("ACR-2022 (conditional)")
            .1
            .unwrap()
            .contains("art.42646"));
        assert_eq!(source_for("Section 1.4").1, None);
    }
}
