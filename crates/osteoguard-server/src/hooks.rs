//! One CDS Hooks invocation: parse the request, gather the patient's data (prefetch, else fetch
//! from `fhirServer`), assess — for order hooks the core's what-if assessment of the draft
//! orders as if signed — and turn findings into cards. The service holds no clinical logic.
//!
//! The engine never reads the clock: the as-of date is `extension["osteoguard.asOf"]` (or
//! `context["osteoguard.asOf"]`) when the client sends one (tests, replay), else the date the
//! HTTP edge passes in.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::NaiveDate;
use osteoguard_core::model::SourceRef;
use osteoguard_core::{
    assess_what_if, assess_with_issues, Assessment, Config, Finding, FindingCode, Severity,
};
use serde_json::{Map, Value};

use crate::cards::{self, CardContext};
use crate::discovery::{fill, Hook, PREFETCH};
use crate::fetch::{is_absent, next_link, resources_of, FhirClient};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookError {
    /// 400: the request is not a valid CDS Hooks request for this service.
    #[error("{0}")]
    BadRequest(String),
    /// 412: the data needed could not be obtained (prefetch incomplete, FHIR server failed).
    #[error("{0}")]
    Precondition(String),
    /// 412: the data sent or fetched cannot be the context patient's (another patient's
    /// resources, resources without a subject, no Patient at all): answering with cards, or
    /// with none, would mislead.
    #[error("{0}")]
    Inconsistent(String),
}

/// At most this many characters of a client-supplied value are echoed in a message.
const ECHO_CHARS: usize = 64;

/// `s` cut to [`ECHO_CHARS`] characters (with `…` when cut): messages never echo a huge value.
pub fn clip(s: &str) -> String {
    clip_chars(s, ECHO_CHARS)
}

/// `s` cut to `max` characters, with `…` when cut.
pub fn clip_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Resource types the engine reads from a patient's record: each must name its patient.
const PATIENT_SCOPED: [&str; 6] = [
    "MedicationRequest",
    "MedicationAdministration",
    "MedicationStatement",
    "Observation",
    "Condition",
    "Procedure",
];

/// The patient id a reference points to (`Patient/x`, `…/Patient/x[/_history/n]`,
/// `urn:uuid:x`), or `None` when it names something else.
fn referenced_patient(reference: &str) -> Option<&str> {
    if let Some(id) = reference.strip_prefix("urn:uuid:") {
        return Some(id);
    }
    let mut parts: Vec<&str> = reference.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() >= 4 && parts[parts.len() - 2] == "_history" {
        parts.truncate(parts.len() - 2);
    }
    match parts.as_slice() {
        [.., "Patient", id] => Some(id),
        _ => None,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks one resource found under `source` (e.g. "prefetch `conditions`") against the
/// context patient: a Patient must be that patient; a resource naming a patient must name this
/// one; the clinical types the engine reads must name one.
fn check_resource(source: &str, r: &Value, patient_id: &str) -> Result<(), HookError> {
    let rt = r
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = r.get("id").and_then(Value::as_str).unwrap_or("(no id)");
    let what = format!("{}/{}", clip(rt), clip(id));
    let context = format!("Patient/{}", clip(patient_id));
    if rt == "Patient" {
        if id != patient_id {
            return Err(HookError::Inconsistent(format!(
                "{source}: {what} is not the context patient {context}"
            )));
        }
        return Ok(());
    }
    let reference = r
        .get("subject")
        .or_else(|| r.get("patient"))
        .map(|s| s.get("reference").and_then(Value::as_str));
    match reference {
        None if PATIENT_SCOPED.contains(&rt) => Err(HookError::Inconsistent(format!(
            "{source}: {what} has no subject, so it cannot be attributed to {context}"
        ))),
        None => Ok(()),
        Some(reference) => match reference.and_then(referenced_patient) {
            Some(p) if p == patient_id => Ok(()),
            _ => Err(HookError::Inconsistent(format!(
                "{source}: {what} has subject {}, not the context patient {context}",
                reference.map_or("without a Patient reference".to_string(), |r| format!(
                    "`{}`",
                    clip(r)
                ))
            ))),
        },
    }
}

/// Checks a prefetch value: `null`, an OperationOutcome (absent), a resource or a Bundle whose
/// resources all belong to the context patient; under `patient`, the Patient itself.
fn check_prefetch(key: &str, v: &Value, patient_id: &str) -> Result<(), HookError> {
    let key = clip(key);
    let obj = match v {
        Value::Null => return Ok(()),
        Value::Object(o) => o,
        other => {
            return Err(HookError::BadRequest(format!(
                "prefetch `{key}` must be a FHIR resource, a Bundle or null, not a {}",
                json_kind(other)
            )))
        }
    };
    let Some(rt) = obj.get("resourceType").and_then(Value::as_str) else {
        return Err(HookError::BadRequest(format!(
            "prefetch `{key}` is an object without a `resourceType`: not a FHIR resource"
        )));
    };
    if is_absent(v) {
        return Ok(());
    }
    if key == "patient" && rt != "Patient" {
        return Err(HookError::Inconsistent(format!(
            "prefetch `patient` holds a {}, not the Patient: cards need the patient's demographics",
            clip(rt)
        )));
    }
    check_resources(&format!("prefetch `{key}`"), v, patient_id)
}

/// Checks every resource of `v` (a resource or a Bundle) with [`check_resource`].
fn check_resources(source: &str, v: &Value, patient_id: &str) -> Result<(), HookError> {
    let mut resources = Vec::new();
    resources_of(v, &mut resources);
    resources
        .iter()
        .try_for_each(|r| check_resource(source, r, patient_id))
}

/// The record must hold the context patient's Patient resource: no cards (and no empty card
/// list) are computed without demographics.
fn require_patient(pool: &[Value], patient_id: &str) -> Result<(), HookError> {
    let found = pool.iter().any(|r| {
        r.get("resourceType").and_then(Value::as_str) == Some("Patient")
            && r.get("id").and_then(Value::as_str) == Some(patient_id)
    });
    if found {
        Ok(())
    } else {
        Err(HookError::Inconsistent(format!(
            "no Patient/{} in the prefetch or on the FHIR server: cards need the patient's \
             demographics",
            clip(patient_id)
        )))
    }
}

/// A validated request.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub hook: Hook,
    pub hook_instance: String,
    pub patient_id: String,
    pub as_of: Option<NaiveDate>,
    pub fhir_server: Option<String>,
    pub token: Option<String>,
    pub prefetch: Map<String, Value>,
    /// `context.draftOrders` entries (order hooks).
    pub drafts: Vec<Value>,
}

fn patient_from_ref(v: &Value) -> Option<String> {
    let r = v
        .get("subject")
        .or_else(|| v.get("patient"))?
        .get("reference")?
        .as_str()?;
    r.strip_prefix("Patient/").map(str::to_string)
}

fn parse_date(v: &Value, what: &str) -> Result<NaiveDate, HookError> {
    v.as_str()
        .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok())
        .ok_or_else(|| HookError::BadRequest(format!("{what} must be a date YYYY-MM-DD")))
}

pub fn parse(hook: Hook, body: &Value) -> Result<Parsed, HookError> {
    let bad = |m: &str| HookError::BadRequest(m.to_string());
    let obj = body
        .as_object()
        .ok_or_else(|| bad("request body must be a JSON object"))?;
    let sent_hook = obj
        .get("hook")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`hook` is required"))?;
    if sent_hook != hook.as_str() {
        return Err(HookError::BadRequest(format!(
            "this service answers `{}`, not `{}`",
            hook.as_str(),
            clip(sent_hook)
        )));
    }
    let hook_instance = obj
        .get("hookInstance")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad("`hookInstance` is required"))?
        .to_string();
    let context = obj
        .get("context")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("`context` must be an object"))?;
    let fhir_server = match obj.get("fhirServer") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(bad("`fhirServer` must be a string")),
    };
    let token = obj
        .get("fhirAuthorization")
        .and_then(|a| a.get("access_token"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let prefetch = match obj.get("prefetch") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad("`prefetch` must be an object")),
    };

    let mut drafts = Vec::new();
    if hook.is_order() {
        let d = context
            .get("draftOrders")
            .ok_or_else(|| bad("`context.draftOrders` is required for order hooks"))?;
        if d.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
            return Err(bad("`context.draftOrders` must be a FHIR Bundle"));
        }
        for e in d
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = e.get("resource").filter(|r| r.is_object()) {
                drafts.push(r.clone());
            }
        }
    }
    let patient_id = match context.get("patientId") {
        Some(Value::String(p)) if !p.is_empty() => p.to_string(),
        None | Some(Value::Null) => drafts
            .iter()
            .find_map(patient_from_ref)
            .ok_or_else(|| bad("`context.patientId` is required"))?,
        Some(_) => return Err(bad("`context.patientId` must be a non-empty string")),
    };
    // The Patient first: a different patient is the clearest message.
    let mut entries: Vec<(&String, &Value)> = prefetch.iter().collect();
    entries.sort_by_key(|(k, _)| k.as_str() != "patient");
    for (key, v) in entries {
        check_prefetch(key, v, &patient_id)?;
    }
    let as_of = match obj
        .get("extension")
        .and_then(|e| e.get("osteoguard.asOf"))
        .or_else(|| context.get("osteoguard.asOf"))
    {
        Some(v) => Some(parse_date(v, "osteoguard.asOf")?),
        None => None,
    };
    Ok(Parsed {
        hook,
        hook_instance,
        patient_id,
        as_of,
        fhir_server,
        token,
        prefetch,
        drafts,
    })
}

/// Collects the patient's resources: every prefetch value (null/OperationOutcome = absent),
/// paging through prefetched searchsets, and fetching each template whose data is absent.
pub async fn gather(client: &Arc<FhirClient>, p: &Parsed) -> Result<Vec<Value>, HookError> {
    let mut pool = Vec::new();
    let mut to_follow = Vec::new();
    for v in p.prefetch.values() {
        resources_of(v, &mut pool);
        if next_link(v).is_some() {
            to_follow.push(v.clone());
        }
    }
    let missing: Vec<(&str, String)> = PREFETCH
        .iter()
        .filter(|(k, _)| !matches!(p.prefetch.get(*k), Some(v) if !is_absent(v)))
        .map(|(k, t)| (*k, fill(t, &p.patient_id)))
        .collect();
    if missing.is_empty() && to_follow.is_empty() {
        require_patient(&pool, &p.patient_id)?;
        return Ok(pool);
    }
    let Some(server) = p.fhir_server.clone() else {
        let keys: Vec<&str> = missing.iter().map(|(k, _)| *k).collect();
        return Err(HookError::Precondition(if keys.is_empty() {
            "a prefetched search result has further pages and the request names no fhirServer"
                .into()
        } else {
            format!(
                "prefetch lacks {} and the request names no fhirServer to fetch it from",
                keys.join(", ")
            )
        }));
    };
    let mut set = tokio::task::JoinSet::new();
    for (key, query) in missing {
        let (c, s, t) = (client.clone(), server.clone(), p.token.clone());
        let pid = p.patient_id.clone();
        set.spawn(async move {
            let got = c
                .query(&s, t.as_deref(), &query)
                .await
                .map_err(|e| HookError::Precondition(format!("fetching {key}: {e}")))?;
            let source = format!("`{key}` fetched from fhirServer");
            for r in &got {
                check_resource(&source, r, &pid)?;
            }
            Ok(got)
        });
    }
    for bundle in to_follow {
        let (c, s, t) = (client.clone(), server.clone(), p.token.clone());
        let pid = p.patient_id.clone();
        set.spawn(async move {
            let mut out = Vec::new();
            c.follow(&s, t.as_deref(), &bundle, &mut out)
                .await
                .map_err(|e| HookError::Precondition(format!("paging a prefetched search: {e}")))?;
            for r in &out {
                check_resource("a page of a prefetched search", r, &pid)?;
            }
            Ok(out)
        });
    }
    let mut first_error = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(v)) => pool.extend(v),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error
                    .get_or_insert(HookError::Precondition(format!("fetch task failed: {e}")));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => {
            require_patient(&pool, &p.patient_id)?;
            Ok(pool)
        }
    }
}

fn key_of(r: &Value) -> Option<(String, String)> {
    Some((
        r.get("resourceType")?.as_str()?.to_string(),
        r.get("id")?.as_str()?.to_string(),
    ))
}

/// Removes duplicates by `(resourceType, id)`; later items win (drafts override the record).
fn dedupe(items: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut by_key: BTreeMap<(String, String), Value> = BTreeMap::new();
    let mut anonymous = Vec::new();
    for r in items {
        match key_of(&r) {
            Some(k) => {
                by_key.insert(k, r);
            }
            None => anonymous.push(r),
        }
    }
    by_key.into_values().chain(anonymous).collect()
}

/// Draft orders ready to be read with the record: an `id` when the client sent none and the
/// context patient as subject when missing (so the reader attaches them). Nothing clinical
/// happens here: the core evaluates them as if signed (`osteoguard_core::assess_what_if`,
/// knowledge.md §9 "Order hooks"). Returns the resources and the MedicationRequest references.
fn prepare_drafts(drafts: &[Value], patient_id: &str) -> (Vec<Value>, Vec<SourceRef>) {
    let mut out = Vec::new();
    let mut refs = Vec::new();
    for (i, d) in drafts.iter().enumerate() {
        let mut r = d.clone();
        let Some(obj) = r.as_object_mut() else {
            continue;
        };
        let rt = obj
            .get("resourceType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if !obj.contains_key("id") {
            obj.insert("id".into(), Value::String(format!("draft-{i}")));
        }
        if rt == "MedicationRequest" {
            if !obj.contains_key("subject") {
                obj.insert(
                    "subject".into(),
                    serde_json::json!({"reference": format!("Patient/{patient_id}")}),
                );
            }
            if let Some((_, id)) = key_of(&r) {
                refs.push(SourceRef::new(format!("MedicationRequest/{id}")));
            }
        }
        out.push(r);
    }
    (out, refs)
}

/// Reads `resources` and assesses the context patient; with `drafts` (order hooks) the core's
/// what-if assessment evaluates them as if signed.
fn assess_patient(
    resources: Vec<Value>,
    patient_id: &str,
    drafts: Option<&[SourceRef]>,
    as_of: NaiveDate,
    config: &Config,
) -> Option<Assessment> {
    let read = osteoguard_fhir::read_resources(resources);
    let pd = read.patients.into_iter().find(|p| p.id == patient_id)?;
    Some(match drafts {
        Some(d) => assess_what_if(&pd.record, &pd.issues, d, as_of, config),
        None => assess_with_issues(&pd.record, &pd.issues, as_of, config),
    })
}

/// Publishes the HTML report of an assessment and returns its absolute URL.
pub type PublishReport<'a> = dyn Fn(&Assessment) -> Option<String> + 'a;

/// The result of one evaluation: the response cards and `(uuid, finding code, severity)` of each.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    pub cards: Vec<Value>,
    pub issued: Vec<(String, String, String)>,
}

/// Evaluates one request (CPU only; run it off the async runtime). Every card comes from one
/// core assessment — for order hooks the what-if assessment of the drafts as if signed; the
/// service adds no finding of its own (knowledge.md §9 "Order hooks").
///
/// `report`, when given, publishes the HTML report of the assessment and returns its absolute
/// URL (every card links to it).
pub fn evaluate(
    p: &Parsed,
    resources: Vec<Value>,
    as_of: NaiveDate,
    config: &Config,
    report: Option<&PublishReport<'_>>,
) -> Evaluated {
    let base = dedupe(resources);
    let (draft_resources, draft_refs) = prepare_drafts(&p.drafts, &p.patient_id);
    let order_hook = p.hook.is_order();
    let a = if order_hook {
        let full = dedupe(base.iter().cloned().chain(draft_resources));
        assess_patient(full, &p.patient_id, Some(&draft_refs), as_of, config)
    } else {
        assess_patient(base.clone(), &p.patient_id, None, as_of, config)
    };
    let Some(a) = a else {
        return Evaluated::default();
    };

    let mut findings: Vec<Finding> = a.findings.clone();
    if order_hook {
        // Card selection (not a clinical decision): what the drafts change, or anything urgent
        // at sign time.
        let drafts: BTreeSet<&str> = draft_refs.iter().map(SourceRef::as_str).collect();
        let baseline: BTreeMap<FindingCode, Severity> =
            match assess_patient(base, &p.patient_id, None, as_of, config) {
                Some(b) => b.findings.iter().map(|f| (f.code, f.severity)).collect(),
                None => BTreeMap::new(),
            };
        findings.retain(|f| {
            let cites_draft = f
                .evidence
                .iter()
                .any(|e| drafts.contains(e.reference.as_str()));
            let new_or_worse = !matches!(baseline.get(&f.code), Some(s) if *s >= f.severity);
            let urgent = p.hook == Hook::OrderSign && f.severity >= Severity::High;
            cites_draft || new_or_worse || urgent
        });
    }
    findings.sort_by(|x, y| y.severity.cmp(&x.severity).then(x.code.cmp(&y.code)));

    // One card per clinical situation; grouping, summary, attention and the recommended action
    // are the core's (issue 17).
    let plans = osteoguard_core::assessment::situations(&a, &findings);
    let report_url = report.and_then(|publish| if plans.is_empty() { None } else { publish(&a) });
    let ctx = CardContext {
        patient_id: &p.patient_id,
        as_of,
        assessment: &a,
        report_url,
    };
    let mut out = Evaluated::default();
    for plan in &plans {
        let members: Vec<&Finding> = plan
            .codes
            .iter()
            .filter_map(|c| findings.iter().find(|f| f.code == *c))
            .collect();
        let (uuid, card) = cards::card(&ctx, plan, &members);
        let lead_severity = members
            .iter()
            .find(|f| f.code == plan.lead)
            .map_or(plan.severity, |f| f.severity);
        out.issued.push((
            uuid.to_string(),
            plan.lead.as_str().to_string(),
            lead_severity.as_str().to_string(),
        ));
        out.cards.push(card);
    }
    out
}
