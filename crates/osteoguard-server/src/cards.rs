//! Findings → CDS Hooks cards.
//!
//! One card per finding: `critical` → `critical`, `high`/`moderate` → `warning`, `info` → `info`;
//! a ≤ 140-character summary, a Markdown detail with the evidence, missing inputs, notes and
//! citation; the guideline as `source`; suggestions with real FHIR actions (draft
//! MedicationRequests / ServiceRequests, or deleting a contraindicated draft order);
//! `overrideReasons`; and three extensions: `org.osteoguard.finding` (code, severity, rule
//! section, as-of date), `org.osteoguard.resources` (the references of the resources the card
//! concerns) and `org.osteoguard.provenance` (engine and knowledge versions, configuration hash,
//! overridden keys: which rules and settings produced the card).
//!
//! *Card identity:* `uuid` is a UUIDv5 of patient reference + finding code + the sorted, distinct
//! evidence references, so the same finding on the same evidence keeps its uuid across
//! invocations (EHRs de-duplicate on it; feedback attaches to the finding).

use chrono::NaiveDate;
use osteoguard_core::model::{Ingredient, MedicationStatus};
use osteoguard_core::rules::safety::ZoledronateRenal;
use osteoguard_core::{Assessment, Finding, FindingCode, Severity};
use serde_json::{json, Value};
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
    pub as_of: NaiveDate,
    /// The one assessment every card comes from (for order hooks the core's what-if
    /// assessment; its `draftOrders` are the drafts as sent).
    pub assessment: &'a Assessment,
    /// order-select / order-sign: the clinician is about to sign, so zoledronic acid is offered
    /// only when the assessment's renal verdict allows it (knowledge.md §8).
    pub order_hook: bool,
}

impl CardContext<'_> {
    fn patient_ref(&self) -> String {
        format!("Patient/{}", self.patient_id)
    }
}

/// The stable identity of a finding's card.
pub fn card_uuid(patient_ref: &str, code: FindingCode, evidence_refs: &[String]) -> Uuid {
    let mut refs: Vec<&str> = evidence_refs.iter().map(String::as_str).collect();
    refs.sort_unstable();
    refs.dedup();
    let name = format!("{patient_ref}\n{}\n{}", code.as_str(), refs.join("\n"));
    Uuid::new_v5(&CARD_NAMESPACE, name.as_bytes())
}

pub fn indicator(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High | Severity::Moderate => "warning",
        Severity::Info => "info",
    }
}

/// Truncates to at most `max` characters, ending with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out = out.trim_end().to_string();
    out.push('…');
    out
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

fn override_reasons() -> Value {
    let r = |code: &str, display: &str| json!({"system": OVERRIDE_SYSTEM, "code": code, "display": display});
    json!([
        r("patient-declined", "Patient declined"),
        r(
            "contraindicated",
            "Not appropriate for this patient (contraindication or goals of care)"
        ),
        r(
            "already-addressed",
            "Already addressed (outside records or another clinician)"
        ),
        r("record-incorrect", "The record is incomplete or incorrect"),
        r("defer", "Will address at a later visit"),
    ])
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

fn med_request(ctx: &CardContext, m: &Med, when: Option<NaiveDate>, code: FindingCode) -> Value {
    let mut timing = serde_json::Map::new();
    let mut repeat = serde_json::Map::new();
    match m.timing {
        Some((f, p, u)) => {
            repeat.insert("frequency".into(), json!(f));
            repeat.insert("period".into(), json!(p));
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
        "subject": {"reference": ctx.patient_ref()},
        "authoredOn": ctx.as_of.to_string(),
        "medicationCodeableConcept": concept,
        "dosageInstruction": [{
            "text": m.text,
            "route": {"coding": [{"system": SNOMED, "code": m.route.0, "display": m.route.1}]},
            "timing": Value::Object(timing),
            "doseAndRate": [{"doseQuantity": {
                "value": m.dose, "unit": m.unit, "system": "http://unitsofmeasure.org", "code": m.ucum
            }}]
        }],
        "note": [{"text": format!("Proposed by osteoguard ({}).", code.as_str())}]
    })
}

fn service_request(
    ctx: &CardContext,
    coding: Option<(&str, &str, &str)>,
    text: &str,
    when: Option<NaiveDate>,
    code: FindingCode,
) -> Value {
    let mut concept = json!({"text": text});
    if let Some((system, c, display)) = coding {
        concept["coding"] = json!([{"system": system, "code": c, "display": display}]);
    }
    let mut r = json!({
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "proposal",
        "subject": {"reference": ctx.patient_ref()},
        "authoredOn": ctx.as_of.to_string(),
        "code": concept,
        "note": [{"text": format!("Proposed by osteoguard ({}).", code.as_str())}]
    });
    if let Some(d) = when {
        r["occurrenceDateTime"] = json!(d.to_string());
    }
    r
}

fn create(description: &str, resource: Value) -> Value {
    json!({"type": "create", "description": description, "resource": resource})
}

struct Suggestion {
    key: &'static str,
    label: String,
    recommended: bool,
    actions: Vec<Value>,
}

fn ctx_lab(ctx: &CardContext, code: FindingCode, when: Option<NaiveDate>) -> Value {
    create(
        "Order serum CTX (fasting morning sample)",
        service_request(
            ctx,
            Some((
                LOINC,
                "41171-0",
                "Collagen crosslinked C-telopeptide [Mass/volume] in Serum or Plasma",
            )),
            "Serum CTX (fasting, morning)",
            when,
            code,
        ),
    )
}

fn dxa_order(ctx: &CardContext, code: FindingCode) -> Value {
    create(
        "Order DXA with vertebral fracture assessment",
        service_request(
            ctx,
            Some((SNOMED, "312681000", "Bone density scan")),
            "DXA (lumbar spine and hip) with vertebral fracture assessment",
            None,
            code,
        ),
    )
}

fn lab(ctx: &CardContext, code: FindingCode, loinc: &'static str, display: &'static str) -> Value {
    create(
        &format!("Order {display}"),
        service_request(ctx, Some((LOINC, loinc, display)), display, None, code),
    )
}

/// Zoledronate transition date and its two CTX dates, as the core's denosumab schedule states
/// them (knowledge.md §5.3); as-of when no dose is dated.
fn transition_dates(ctx: &CardContext) -> (NaiveDate, Option<NaiveDate>) {
    match &ctx.assessment.denosumab.schedule {
        Some(s) => (s.transition_due, Some(s.transition_ctx_due[0])),
        None => (ctx.as_of, None),
    }
}

fn draft_refs_with(ctx: &CardContext, i: Ingredient) -> Vec<String> {
    ctx.assessment
        .draft_orders
        .iter()
        .filter(|d| d.has(i))
        .map(|d| d.reference.as_str().to_string())
        .collect()
}

fn suggestions_for(ctx: &CardContext, f: &Finding) -> (Vec<Suggestion>, bool) {
    use FindingCode::*;
    let code = f.code;
    let zol = |ctx: &CardContext, when| {
        create(
            "Order zoledronic acid 5 mg IV",
            med_request(ctx, &ZOLEDRONATE, when, code),
        )
    };
    match code {
        DenosumabDiscontinuationWithoutTransition => {
            let (t, first_ctx) = transition_dates(ctx);
            let mut v = Vec::new();
            if ctx.assessment.zoledronate_renal == ZoledronateRenal::Unknown {
                v.push(Suggestion {
                    key: "renal-function",
                    label: "Check renal function (creatinine) before choosing the transition agent"
                        .into(),
                    recommended: true,
                    actions: vec![lab(
                        ctx,
                        code,
                        "2160-0",
                        "Creatinine [Mass/volume] in Serum or Plasma",
                    )],
                });
            }
            v.extend([
                Suggestion {
                    key: "zoledronate-transition",
                    label: format!(
                        "Zoledronic acid 5 mg IV on {t}, CTX 3 and 6 months after (ECTS plan)"
                    ),
                    recommended: true,
                    actions: vec![zol(ctx, Some(t)), ctx_lab(ctx, code, first_ctx)],
                },
                Suggestion {
                    key: "alendronate-transition",
                    label: "Alendronate 70 mg weekly (shorter denosumab courses / lower risk)"
                        .into(),
                    recommended: false,
                    actions: vec![create(
                        "Order alendronate 70 mg weekly",
                        med_request(ctx, &ALENDRONATE, Some(t), code),
                    )],
                },
                Suggestion {
                    key: "denosumab-continue",
                    label: "Continue denosumab: give the next 60 mg dose now".into(),
                    recommended: false,
                    actions: vec![create(
                        "Order denosumab 60 mg SC",
                        med_request(ctx, &DENOSUMAB, Some(ctx.as_of), code),
                    )],
                },
            ]);
            (v, true)
        }
        DenosumabOverdue | DenosumabDueSoon => {
            let due = f.due.unwrap_or(ctx.as_of).max(ctx.as_of);
            (
                vec![
                    Suggestion {
                        key: "denosumab-dose",
                        label: format!("Give denosumab 60 mg SC ({due})"),
                        recommended: true,
                        actions: vec![create(
                            "Order denosumab 60 mg SC",
                            med_request(ctx, &DENOSUMAB, Some(due), code),
                        )],
                    },
                    Suggestion {
                        key: "zoledronate-transition",
                        label: "Stop denosumab with a zoledronic acid transition (ECTS plan)"
                            .into(),
                        recommended: false,
                        actions: {
                            let (t, first_ctx) = transition_dates(ctx);
                            vec![zol(ctx, Some(t)), ctx_lab(ctx, code, first_ctx)]
                        },
                    },
                ],
                true,
            )
        }
        PostDenosumabCtxMonitoring => {
            let mut v = vec![Suggestion {
                key: "ctx",
                label: "Order serum CTX".into(),
                recommended: true,
                actions: vec![ctx_lab(ctx, code, f.due)],
            }];
            if f.severity >= Severity::High {
                v.push(Suggestion {
                    key: "zoledronate-repeat",
                    label: "Repeat zoledronic acid 5 mg IV (CTX elevated)".into(),
                    recommended: true,
                    actions: vec![zol(ctx, Some(ctx.as_of))],
                });
            }
            (v, false)
        }
        ReboundVertebralFracturesSuspected => {
            let mut v = Vec::new();
            if ctx.assessment.denosumab.transition.is_none() {
                v.push(Suggestion {
                    key: "zoledronate-now",
                    label: "Start zoledronic acid 5 mg IV now".into(),
                    recommended: true,
                    actions: vec![zol(ctx, Some(ctx.as_of))],
                });
            }
            v.push(Suggestion {
                key: "ctx-and-imaging",
                label: "Order serum CTX and whole-spine imaging".into(),
                recommended: true,
                actions: vec![
                    ctx_lab(ctx, code, None),
                    create(
                        "Order whole-spine MRI (STIR)",
                        service_request(
                            ctx,
                            None,
                            "MRI whole spine with STIR sequence",
                            None,
                            code,
                        ),
                    ),
                ],
            });
            (v, false)
        }
        GcBoneProtection => (
            vec![Suggestion {
                key: "calcium-vitamin-d",
                label: "Calcium 1000–1200 mg/day and vitamin D 800 IU/day".into(),
                recommended: true,
                actions: vec![
                    create(
                        "Order calcium supplement",
                        med_request(ctx, &CALCIUM, Some(ctx.as_of), code),
                    ),
                    create(
                        "Order vitamin D3 800 IU daily",
                        med_request(ctx, &VITAMIN_D, Some(ctx.as_of), code),
                    ),
                ],
            }],
            false,
        ),
        GcFractureRiskAssessmentDue => (
            vec![Suggestion {
                key: "dxa",
                label: "Order DXA with vertebral fracture assessment".into(),
                recommended: true,
                actions: vec![dxa_order(ctx, code)],
            }],
            false,
        ),
        OsteoporosisTreatmentIndicated => (
            vec![
                Suggestion {
                    key: "alendronate",
                    label: "Alendronate 70 mg weekly".into(),
                    recommended: false,
                    actions: vec![create(
                        "Order alendronate 70 mg weekly",
                        med_request(ctx, &ALENDRONATE, Some(ctx.as_of), code),
                    )],
                },
                Suggestion {
                    key: "zoledronate",
                    label: "Zoledronic acid 5 mg IV yearly".into(),
                    recommended: false,
                    actions: vec![zol(ctx, Some(ctx.as_of))],
                },
            ],
            true,
        ),
        AnabolicTherapyPreferred => (
            vec![Suggestion {
                key: "teriparatide",
                label: "Teriparatide 20 µg SC daily".into(),
                recommended: true,
                actions: vec![create(
                    "Order teriparatide 20 µg daily",
                    med_request(ctx, &TERIPARATIDE, Some(ctx.as_of), code),
                )],
            }],
            false,
        ),
        OvcfImagingRecommended | AcuteOvcf => (
            vec![Suggestion {
                key: "mri",
                label: "Order spine MRI with STIR".into(),
                recommended: code == OvcfImagingRecommended,
                actions: vec![create(
                    "Order spine MRI with STIR",
                    service_request(
                        ctx,
                        None,
                        "MRI spine with STIR sequence (CT if MRI contraindicated)",
                        None,
                        code,
                    ),
                )],
            }],
            false,
        ),
        OvcfRefractoryPainAugmentationCandidate => (
            vec![Suggestion {
                key: "augmentation-referral",
                label: "Refer for vertebral augmentation evaluation".into(),
                recommended: true,
                actions: vec![create(
                    "Refer for vertebral augmentation evaluation",
                    service_request(
                        ctx,
                        None,
                        "Referral: vertebral augmentation evaluation",
                        None,
                        code,
                    ),
                )],
            }],
            false,
        ),
        ZoledronateRenalContraindication => {
            let drafts = draft_refs_with(ctx, Ingredient::ZoledronicAcid);
            let mut targets = drafts.clone();
            if targets.is_empty() {
                // patient-view: an existing (planned) zoledronate order named in the evidence.
                targets = f
                    .evidence
                    .iter()
                    .filter(|e| e.reference.starts_with("MedicationRequest/"))
                    .map(|e| e.reference.clone())
                    .collect();
                targets.sort();
                targets.dedup();
            }
            let deletes: Vec<Value> = targets
                .iter()
                .map(|r| {
                    json!({"type": "delete", "description": "Remove the zoledronic acid order", "resourceId": r})
                })
                .collect();
            let mut v = Vec::new();
            if !deletes.is_empty() {
                v.push(Suggestion {
                    key: "remove-zoledronate",
                    label: "Remove the zoledronic acid order".into(),
                    recommended: false,
                    actions: deletes.clone(),
                });
                let mut replace = deletes;
                replace.push(create(
                    "Order denosumab 60 mg SC instead",
                    med_request(ctx, &DENOSUMAB, Some(ctx.as_of), code),
                ));
                v.push(Suggestion {
                    key: "replace-with-denosumab",
                    label: "Replace with denosumab 60 mg SC (check calcium and CKD-MBD first)"
                        .into(),
                    recommended: true,
                    actions: replace,
                });
            }
            (v, true)
        }
        HypocalcaemiaAntiresorptiveCaution => (
            vec![Suggestion {
                key: "calcium-labs",
                label: "Order calcium, albumin and creatinine".into(),
                recommended: true,
                actions: vec![
                    lab(
                        ctx,
                        code,
                        "17861-6",
                        "Calcium [Mass/volume] in Serum or Plasma",
                    ),
                    lab(
                        ctx,
                        code,
                        "1751-7",
                        "Albumin [Mass/volume] in Serum or Plasma",
                    ),
                    lab(
                        ctx,
                        code,
                        "2160-0",
                        "Creatinine [Mass/volume] in Serum or Plasma",
                    ),
                ],
            }],
            false,
        ),
        VitaminDDeficiencyAntiresorptiveCaution => (
            vec![Suggestion {
                key: "vitamin-d",
                label: "Replete vitamin D (cholecalciferol)".into(),
                recommended: true,
                actions: vec![create(
                    "Order vitamin D3",
                    med_request(ctx, &VITAMIN_D, Some(ctx.as_of), code),
                )],
            }],
            false,
        ),
        DataInsufficient => {
            let text = f.inputs_missing.join(" ").to_lowercase();
            let mut actions = Vec::new();
            if text.contains("creatinine") || text.contains("egfr") || text.contains("renal") {
                actions.push(lab(
                    ctx,
                    code,
                    "2160-0",
                    "Creatinine [Mass/volume] in Serum or Plasma",
                ));
            }
            if text.contains("calcium") {
                actions.push(lab(
                    ctx,
                    code,
                    "17861-6",
                    "Calcium [Mass/volume] in Serum or Plasma",
                ));
            }
            if text.contains("25-oh") || text.contains("vitamin d") {
                actions.push(lab(
                    ctx,
                    code,
                    "62292-8",
                    "25-hydroxyvitamin D2+D3 [Mass/volume] in Serum or Plasma",
                ));
            }
            if text.contains("ctx") {
                actions.push(ctx_lab(ctx, code, None));
            }
            if actions.is_empty() {
                (Vec::new(), false)
            } else {
                (
                    vec![Suggestion {
                        key: "missing-labs",
                        label: "Order the missing laboratory tests".into(),
                        recommended: true,
                        actions,
                    }],
                    false,
                )
            }
        }
        BmdSignificantLoss | NewFractureAfterAugmentation => (Vec::new(), false),
    }
}

fn detail(ctx: &CardContext, f: &Finding) -> String {
    let mut s = String::new();
    s.push_str(&format!("**{}** — {}\n\n", f.title, f.summary.trim()));
    s.push_str(&format!(
        "**Recommendation:** {}\n\n",
        f.recommendation.trim()
    ));
    if let Some(d) = f.due {
        s.push_str(&format!("**Due:** {d}\n\n"));
    }
    if !f.levels.is_empty() {
        s.push_str(&format!(
            "**Vertebral levels:** {}\n\n",
            f.levels.join(", ")
        ));
    }
    if !f.evidence.is_empty() {
        s.push_str("**Evidence**\n\n");
        for e in &f.evidence {
            match e.date {
                Some(d) => s.push_str(&format!("- {d}: {} (`{}`)\n", e.detail, e.reference)),
                None => s.push_str(&format!("- {} (`{}`)\n", e.detail, e.reference)),
            }
        }
        s.push('\n');
    }
    if !f.inputs_missing.is_empty() {
        s.push_str("**Missing inputs**\n\n");
        for m in &f.inputs_missing {
            s.push_str(&format!("- {m}\n"));
        }
        s.push('\n');
    }
    if !f.notes.is_empty() {
        s.push_str("**Notes**\n\n");
        for n in &f.notes {
            s.push_str(&format!("- {n}\n"));
        }
        s.push('\n');
    }
    s.push_str(&format!(
        "**Source:** {} (knowledge base {}). Evaluated as of {}; fracture-risk category: {}.",
        f.citation, f.rule_section, ctx.as_of, ctx.assessment.fracture_risk.category
    ));
    s
}

/// The resources a card concerns: its evidence references (engine-derived facts excluded).
pub fn resources_of(f: &Finding) -> Vec<String> {
    let mut v: Vec<String> = f
        .evidence
        .iter()
        .map(|e| e.reference.clone())
        .filter(|r| r.contains('/') && !r.starts_with("osteoguard:"))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Whether a card may offer zoledronic acid (knowledge.md §8), from the assessment alone: never
/// when it is renally contraindicated; at order time (order hooks) only when a fresh renal value
/// allows it.
pub fn zoledronate_may_be_offered(ctx: &CardContext) -> bool {
    let contraindicated = ctx.assessment.zoledronate_renal == ZoledronateRenal::Contraindicated
        || ctx
            .assessment
            .findings
            .iter()
            .any(|f| f.code == FindingCode::ZoledronateRenalContraindication);
    let unknown_at_order_time =
        ctx.order_hook && ctx.assessment.zoledronate_renal == ZoledronateRenal::Unknown;
    !(contraindicated || unknown_at_order_time)
}

/// Builds the card for one finding.
pub fn card(ctx: &CardContext, f: &Finding) -> (Uuid, Value) {
    let evidence_refs: Vec<String> = f.evidence.iter().map(|e| e.reference.clone()).collect();
    let uuid = card_uuid(&ctx.patient_ref(), f.code, &evidence_refs);
    let (label, url) = source_for(&f.citation);
    let summary_text = if f.summary.trim().is_empty() {
        f.title.clone()
    } else {
        format!("{}: {}", f.title, f.summary.trim())
    };
    let mut c = json!({
        "uuid": uuid.to_string(),
        "summary": clip(&summary_text, 140),
        "detail": detail(ctx, f),
        "indicator": indicator(f.severity),
        "source": {
            "label": label,
            "topic": {"system": FINDING_SYSTEM, "code": f.code.as_str(), "display": f.code.title()}
        },
        "overrideReasons": override_reasons(),
        "extension": {
            "org.osteoguard.finding": {
                "code": f.code.as_str(),
                "severity": f.severity.as_str(),
                "ruleSection": f.rule_section,
                "citation": f.citation,
                "asOf": ctx.as_of.to_string(),
            },
            "org.osteoguard.resources": resources_of(f),
            "org.osteoguard.provenance": ctx.assessment.provenance,
        }
    });
    if let Some(u) = url {
        c["source"]["url"] = json!(u);
    }
    let (mut suggestions, mut alternatives) = suggestions_for(ctx, f);
    // Never suggest what the record contraindicates: with zoledronate renally contraindicated
    // (or, at order time, renal function unknown), no card offers a zoledronic-acid order (the
    // contraindication card itself offers the alternatives). Suggestions that only *delete* a
    // zoledronate draft stay.
    if !zoledronate_may_be_offered(ctx) && f.code != FindingCode::ZoledronateRenalContraindication {
        suggestions.retain(|s| !s.key.contains("zoledron"));
        alternatives = alternatives && suggestions.len() > 1;
    }
    if !suggestions.is_empty() {
        let list: Vec<Value> = suggestions
            .into_iter()
            .map(|s| {
                let id = Uuid::new_v5(&uuid, s.key.as_bytes());
                json!({
                    "label": clip(&s.label, 140),
                    "uuid": id.to_string(),
                    "isRecommended": s.recommended,
                    "actions": s.actions,
                })
            })
            .collect();
        let behaviour = if alternatives && list.len() > 1 {
            "at-most-one"
        } else {
            "any"
        };
        c["suggestions"] = Value::Array(list);
        c["selectionBehavior"] = json!(behaviour);
    }
    (uuid, c)
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

    #[test]
    fn indicator_mapping() {
        assert_eq!(indicator(Severity::Critical), "critical");
        assert_eq!(indicator(Severity::High), "warning");
        assert_eq!(indicator(Severity::Moderate), "warning");
        assert_eq!(indicator(Severity::Info), "info");
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
