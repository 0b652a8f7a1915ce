//! One CDS Hooks invocation: parse the request, gather the patient's data (prefetch, else fetch
//! from `fhirServer`), assess — for order hooks the core's what-if assessment of the draft
//! orders as if signed — and turn findings into cards. The service holds no clinical logic.
//!
//! The engine never reads the clock: the as-of date is `extension["osteoguard.asOf"]` (or
//! `context["osteoguard.asOf"]`) when the client sends one (tests, replay), else the date the
//! HTTP edge passes in.
//!
//! The request is parsed once, into the FHIR reader's own tree (`osteoguard_fhir::json`: nodes
//! in an arena, strings borrowed from the request bytes), and everything here — the checks, the
//! prefetch's resources, the draft orders, the reading — works on views of that tree: no
//! `serde_json::Value` of the request and no copy of a prefetch subtree (issue 19). When data
//! must be fetched, [`prefetched`] returns a [`FetchPlan`] instead; the caller awaits
//! [`fetch`] (no tree is held across an await: the arena is not `Sync`), then parses the
//! request again with the pages ([`with_pages`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Bytes;

use chrono::NaiveDate;
use osteoguard_core::model::SourceRef;
use osteoguard_core::{
    assess_what_if, assess_with_issues, Assessment, Config, DataQualityIssue, Finding, FindingCode,
    Severity,
};
use osteoguard_fhir::json::{self, Arena, Map, Value};

use crate::cards::{self, CardContext};
use crate::discovery::{fill, Hook, OPTIONAL_PREFETCH, PREFETCH};
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

/// Members of [`osteoguard_fhir::NEVER_READ`] the service reads in a request itself (a
/// searchset's `link`: [`next_link`]); every other member of that list is left out of the
/// request's tree (`osteoguard_fhir::json::parse_pruned_keeping`), since neither the reader nor
/// this service reads it.
pub const REQUEST_KEEPS: &[&str] = &["link"];

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
    // The last four non-empty segments, last first (no list of every segment: this runs for
    // every resource of every request).
    let mut last = [""; 4];
    let mut n = 0;
    for part in reference.rsplit('/').filter(|p| !p.is_empty()).take(4) {
        last[n] = part;
        n += 1;
    }
    let (kind, id) = if n == 4 && last[1] == "_history" {
        (last[3], last[2])
    } else {
        (last[1], last[0])
    };
    (n >= 2 && kind == "Patient").then_some(id)
}

fn json_kind(v: &Value<'_>) -> &'static str {
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
fn check_resource(source: &str, r: &Value<'_>, patient_id: &str) -> Result<(), HookError> {
    let rt = r
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = r.get("id").and_then(Value::as_str).unwrap_or("(no id)");
    // The message parts, written only when a check fails.
    let what = || format!("{}/{}", clip(rt), clip(id));
    let context = || format!("Patient/{}", clip(patient_id));
    if rt == "Patient" {
        if id != patient_id {
            return Err(HookError::Inconsistent(format!(
                "{source}: {} is not the context patient {}",
                what(),
                context()
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
            "{source}: {} has no subject, so it cannot be attributed to {}",
            what(),
            context()
        ))),
        None => Ok(()),
        Some(reference) => match reference.and_then(referenced_patient) {
            Some(p) if p == patient_id => Ok(()),
            _ => Err(HookError::Inconsistent(format!(
                "{source}: {} has subject {}, not the context patient {}",
                what(),
                reference.map_or("without a Patient reference".to_string(), |r| format!(
                    "`{}`",
                    clip(r)
                )),
                context()
            ))),
        },
    }
}

/// Checks a prefetch value: `null`, an OperationOutcome (absent), a resource or a Bundle whose
/// resources all belong to the context patient; under `patient`, the Patient itself.
fn check_prefetch(key: &str, v: &Value<'_>, patient_id: &str) -> Result<(), HookError> {
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
fn check_resources(source: &str, v: &Value<'_>, patient_id: &str) -> Result<(), HookError> {
    let mut resources = Vec::new();
    resources_of(v, &mut resources);
    resources
        .iter()
        .try_for_each(|r| check_resource(source, r, patient_id))
}

/// The record must hold the context patient's Patient resource: no cards (and no empty card
/// list) are computed without demographics.
fn require_patient(pool: &[Value<'_>], patient_id: &str) -> Result<(), HookError> {
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

/// A validated request: views of the request's tree.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    pub hook: Hook,
    pub hook_instance: &'a str,
    pub patient_id: &'a str,
    pub as_of: Option<NaiveDate>,
    pub fhir_server: Option<&'a str>,
    pub token: Option<&'a str>,
    /// Empty when the request has none.
    pub prefetch: Map<'a>,
    /// `context.draftOrders` entries (order hooks).
    pub drafts: Vec<&'a Value<'a>>,
}

fn patient_from_ref<'a>(v: &Value<'a>) -> Option<&'a str> {
    let r = v
        .get("subject")
        .or_else(|| v.get("patient"))?
        .get("reference")?
        .as_str()?;
    r.strip_prefix("Patient/")
}

fn parse_date(v: &Value<'_>, what: &str) -> Result<NaiveDate, HookError> {
    v.as_str()
        .and_then(|s| NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok())
        .ok_or_else(|| HookError::BadRequest(format!("{what} must be a date YYYY-MM-DD")))
}

pub fn parse<'a>(hook: Hook, body: &Value<'a>) -> Result<Parsed<'a>, HookError> {
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
        .ok_or_else(|| bad("`hookInstance` is required"))?;
    let context = obj
        .get("context")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("`context` must be an object"))?;
    let fhir_server = match obj.get("fhirServer") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(*s),
        Some(_) => return Err(bad("`fhirServer` must be a string")),
    };
    let token = obj
        .get("fhirAuthorization")
        .and_then(|a| a.get("access_token"))
        .and_then(Value::as_str);
    let prefetch = match obj.get("prefetch") {
        None | Some(Value::Null) => Map::default(),
        Some(Value::Object(m)) => *m,
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
                drafts.push(r);
            }
        }
    }
    let patient_id = match context.get("patientId") {
        Some(Value::String(p)) if !p.is_empty() => *p,
        None | Some(Value::Null) => drafts
            .iter()
            .find_map(|d| patient_from_ref(d))
            .ok_or_else(|| bad("`context.patientId` is required"))?,
        Some(_) => return Err(bad("`context.patientId` must be a non-empty string")),
    };
    // The Patient first: a different patient is the clearest message.
    let mut entries: Vec<(&str, &Value)> = prefetch.iter().collect();
    entries.sort_by_key(|(k, _)| *k != "patient");
    for (key, v) in entries {
        check_prefetch(key, v, patient_id)?;
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

/// What the prefetch did not carry: the templates to fetch and the prefetched searches with
/// further pages, from `server` with the request's token.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    server: String,
    token: Option<String>,
    patient_id: String,
    /// `(prefetch key, query)` of each template whose data is absent.
    missing: Vec<(&'static str, String)>,
    /// The `next` link of each prefetched searchset that has further pages.
    follow: Vec<String>,
}

/// The patient's resources as far as the prefetch carries them.
pub enum Gathered<'a> {
    /// Every required template's data is in the prefetch: the resources (views of the
    /// request's tree), and the optional templates the answer is without.
    Complete(Vec<Value<'a>>, Vec<Unfetched>),
    /// Something must be fetched first.
    Fetch(FetchPlan),
}

/// An optional template ([`OPTIONAL_PREFETCH`]: spine imaging as DiagnosticReport or
/// ImagingStudy, knowledge.md §7.2) whose data the answer is without. What it would carry can
/// only withdraw a card, so the request is answered; but unknown is not "no" (§1.6): the
/// assessment's `dataQuality` names it, and a card proposing spine imaging says that imaging
/// recorded that way was not checked ([`unfetched_note`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unfetched {
    /// The prefetch key (a member of [`OPTIONAL_PREFETCH`]).
    pub key: &'static str,
    pub why: Absence,
}

/// Why an optional template's data is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Absence {
    /// Not in the prefetch (left out, `null` or an OperationOutcome) and no `fhirServer`.
    NotSent,
    /// The `fhirServer` failed or refused its query.
    Refused,
}

/// The resource type an optional template searches, with its article.
fn searched_type(key: &str) -> &'static str {
    match key {
        "diagnosticReports" => "a DiagnosticReport",
        "imagingStudies" => "an ImagingStudy",
        _ => "a resource",
    }
}

/// `a`, `a and b`, `a, b and c`; `sep` between the last two.
fn join_words(items: &[String], sep: &str) -> String {
    match items.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{}{sep}{last}", rest.join(", ")),
        None => String::new(),
    }
}

/// Why the answer is without `u`'s templates (all of one [`Absence`] in practice: `NotSent`
/// only without a `fhirServer`, `Refused` only with one).
fn absence_reason(u: &[Unfetched]) -> String {
    let keys = |why: Absence| -> Vec<String> {
        u.iter()
            .filter(|x| x.why == why)
            .map(|x| format!("`{}`", x.key))
            .collect()
    };
    let mut parts = Vec::new();
    let not_sent = keys(Absence::NotSent);
    if !not_sent.is_empty() {
        parts.push(format!(
            "prefetch {} not sent, and no fhirServer to fetch {} from",
            join_words(&not_sent, " and "),
            if not_sent.len() == 1 { "it" } else { "them" }
        ));
    }
    let refused = keys(Absence::Refused);
    if !refused.is_empty() {
        parts.push(format!(
            "the fhirServer did not return {}",
            join_words(&refused, " and ")
        ));
    }
    parts.join("; ")
}

/// The Markdown note a card proposing spine imaging carries when the answer is without
/// optional templates (`None` when it has them all): which records were not checked, why, and
/// what that means for the imaging it suggests. The card itself stays as it is.
pub fn unfetched_note(u: &[Unfetched]) -> Option<String> {
    if u.is_empty() {
        return None;
    }
    let types: Vec<String> = u.iter().map(|x| searched_type(x.key).to_string()).collect();
    Some(format!(
        "**Not checked:** spine imaging recorded as {} ({}). A spine MRI, CT or X-ray \
         documented only that way was not seen, so the imaging suggested here may already have \
         been done: check the chart before ordering it.",
        join_words(&types, " or "),
        absence_reason(u)
    ))
}

/// The assessment's `dataQuality` entries for the templates the answer is without: one per
/// template, naming its query, its prefetch key and what could not be checked.
pub fn unfetched_issues(u: &[Unfetched], patient_id: &str) -> Vec<DataQualityIssue> {
    u.iter()
        .map(|x| {
            let query = PREFETCH
                .iter()
                .find(|(k, _)| *k == x.key)
                .map_or_else(String::new, |(_, t)| fill(t, patient_id));
            let why = match x.why {
                Absence::NotSent => "not in the prefetch, and no fhirServer to fetch it from",
                Absence::Refused => "the fhirServer did not return it",
            };
            DataQualityIssue::new(
                query,
                format!("prefetch.{}", x.key),
                format!(
                    "{why}: spine imaging recorded as {} was not checked, so a recommendation \
                     of spine imaging may concern imaging already done",
                    searched_type(x.key)
                ),
            )
        })
        .collect()
}

/// The place of an optional key in [`OPTIONAL_PREFETCH`] (the order notes name them in).
fn optional_rank(key: &str) -> usize {
    OPTIONAL_PREFETCH
        .iter()
        .position(|k| *k == key)
        .unwrap_or(usize::MAX)
}

/// The resources of every prefetch value (null/OperationOutcome = absent), in key order, and
/// the `next` links of prefetched searchsets.
fn prefetch_resources<'a>(p: &Parsed<'a>) -> (Vec<Value<'a>>, Vec<String>) {
    let mut pool = Vec::new();
    let mut follow = Vec::new();
    for (_, v) in p.prefetch.iter() {
        resources_of(v, &mut pool);
        if let Some(next) = next_link(v) {
            follow.push(next.to_string());
        }
    }
    (pool, follow)
}

/// Collects the patient's resources from the prefetch, or says what to fetch: each template
/// whose data is absent and each prefetched searchset's further pages.
pub fn prefetched<'a>(p: &Parsed<'a>) -> Result<Gathered<'a>, HookError> {
    let (pool, follow) = prefetch_resources(p);
    let sent = |k: &str| matches!(p.prefetch.get(k), Some(v) if !is_absent(v));
    let missing: Vec<(&'static str, String)> = PREFETCH
        .iter()
        .filter(|(k, _)| !sent(k))
        // Without a server to fetch from, an optional template's data is done without.
        .filter(|(k, _)| p.fhir_server.is_some() || !OPTIONAL_PREFETCH.contains(k))
        .map(|(k, t)| (*k, fill(t, p.patient_id)))
        .collect();
    if missing.is_empty() && follow.is_empty() {
        require_patient(&pool, p.patient_id)?;
        // Done without, but said (unknown is not "no").
        let unfetched = OPTIONAL_PREFETCH
            .iter()
            .filter(|k| !sent(k))
            .map(|key| Unfetched {
                key,
                why: Absence::NotSent,
            })
            .collect();
        return Ok(Gathered::Complete(pool, unfetched));
    }
    let Some(server) = p.fhir_server else {
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
    Ok(Gathered::Fetch(FetchPlan {
        server: server.to_string(),
        token: p.token.map(str::to_string),
        patient_id: p.patient_id.to_string(),
        missing,
        follow,
    }))
}

/// Checks every resource of fetched pages against the context patient (each page parsed into
/// a scratch arena; [`with_pages`] parses the pages kept).
fn check_pages(source: &str, pages: &[Bytes], patient_id: &str) -> Result<(), HookError> {
    for page in pages {
        let arena = Arena::new();
        let v = json::parse(&arena, page)
            .map_err(|_| HookError::Precondition(format!("{source}: not FHIR JSON")))?;
        let mut resources = Vec::new();
        resources_of(&v, &mut resources);
        for r in &resources {
            check_resource(source, r, patient_id)?;
        }
    }
    Ok(())
}

/// What [`fetch`] brought.
#[derive(Debug, Clone, Default)]
pub struct Fetched {
    /// The bodies of the pages.
    pub pages: Vec<Bytes>,
    /// The optional templates the `fhirServer` did not answer (in [`OPTIONAL_PREFETCH`] order).
    pub unfetched: Vec<Unfetched>,
}

/// Fetches what `plan` names (all queries at once): the bodies of the pages, every resource
/// on them checked against the context patient, and the optional templates the server refused.
pub async fn fetch(client: &Arc<FhirClient>, plan: FetchPlan) -> Result<Fetched, HookError> {
    let mut set = tokio::task::JoinSet::new();
    for (key, query) in plan.missing {
        let (c, s, t) = (client.clone(), plan.server.clone(), plan.token.clone());
        let pid = plan.patient_id.clone();
        set.spawn(async move {
            let got = match c.query(&s, t.as_deref(), &query).await {
                Ok(got) => got,
                // An optional template the server does not answer (e.g. a token without that
                // type's scope) is done without, as when a request without fhirServer omits it.
                // Logged, not silent: the operator sees which template the server refused.
                Err(e) if OPTIONAL_PREFETCH.contains(&key) => {
                    tracing::warn!(
                        prefetch = key,
                        error = %e,
                        "optional prefetch not fetched; answering without it"
                    );
                    return Ok((Vec::new(), Some(key)));
                }
                Err(e) => return Err(HookError::Precondition(format!("fetching {key}: {e}"))),
            };
            check_pages(&format!("`{key}` fetched from fhirServer"), &got, &pid)?;
            Ok((got, None))
        });
    }
    for next in plan.follow {
        let (c, s, t) = (client.clone(), plan.server.clone(), plan.token.clone());
        let pid = plan.patient_id.clone();
        set.spawn(async move {
            let mut out = Vec::new();
            c.follow(&s, t.as_deref(), Some(next), &mut out)
                .await
                .map_err(|e| HookError::Precondition(format!("paging a prefetched search: {e}")))?;
            check_pages("a page of a prefetched search", &out, &pid)?;
            Ok((out, None))
        });
    }
    let mut fetched = Fetched::default();
    let mut first_error = None;
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok((v, refused))) => {
                fetched.pages.extend(v);
                if let Some(key) = refused {
                    fetched.unfetched.push(Unfetched {
                        key,
                        why: Absence::Refused,
                    });
                }
            }
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error
                    .get_or_insert(HookError::Precondition(format!("fetch task failed: {e}")));
            }
        }
    }
    // Tasks finish in any order; the notes name the templates in a fixed one.
    fetched.unfetched.sort_by_key(|u| optional_rank(u.key));
    match first_error {
        Some(e) => Err(e),
        None => Ok(fetched),
    }
}

/// The patient's resources: the prefetch's and those of the fetched `pages` (parsed into
/// `arena`), which must include the context patient's Patient.
pub fn with_pages<'a>(
    arena: &'a Arena,
    p: &Parsed<'a>,
    pages: &'a [Bytes],
) -> Result<Vec<Value<'a>>, HookError> {
    let (mut pool, _) = prefetch_resources(p);
    for page in pages {
        let v = json::parse(arena, page)
            .map_err(|_| HookError::Precondition("a fetched page is not FHIR JSON".into()))?;
        resources_of(&v, &mut pool);
    }
    require_patient(&pool, p.patient_id)?;
    Ok(pool)
}

fn key_of<'a>(r: &Value<'a>) -> Option<(&'a str, &'a str)> {
    Some((r.get("resourceType")?.as_str()?, r.get("id")?.as_str()?))
}

/// Removes duplicates by `(resourceType, id)`; later items win (drafts override the record).
/// The kept resources in key order, then those without a key: what a `BTreeMap` of the keyed
/// ones gives, from one sort of a `Vec` (no node per resource, keys compared in line).
fn dedupe<'a>(items: impl IntoIterator<Item = Value<'a>>) -> Vec<Value<'a>> {
    let mut keyed: Vec<((&'a str, &'a str), usize, Value<'a>)> = Vec::new();
    let mut anonymous = Vec::new();
    for (seq, r) in items.into_iter().enumerate() {
        match key_of(&r) {
            Some(k) => keyed.push((k, seq, r)),
            None => anonymous.push(r),
        }
    }
    let order = |a: (&str, &str), b: (&str, &str)| {
        json::name_cmp(a.0, b.0).then_with(|| json::name_cmp(a.1, b.1))
    };
    keyed.sort_unstable_by(|a, b| order(a.0, b.0).then(a.1.cmp(&b.1)));
    let mut out = Vec::with_capacity(keyed.len() + anonymous.len());
    let mut it = keyed.into_iter().peekable();
    while let Some((k, _, r)) = it.next() {
        // The last of equal keys is the one sent last.
        if it
            .peek()
            .is_some_and(|(next, _, _)| order(*next, k).is_eq())
        {
            continue;
        }
        out.push(r);
    }
    out.extend(anonymous);
    out
}

/// Draft orders ready to be read with the record: an `id` when the client sent none and the
/// context patient as subject when missing (so the reader attaches them). Nothing clinical
/// happens here: the core evaluates them as if signed (`osteoguard_core::assess_what_if`,
/// knowledge.md §9 "Order hooks"). Returns the resources and the MedicationRequest references.
/// A draft that needs a member added is rebuilt (as JSON text, parsed into `arena`); the others
/// are read as sent.
fn prepare_drafts<'a>(
    arena: &'a Arena,
    drafts: &[&'a Value<'a>],
    patient_id: &str,
) -> (Vec<Value<'a>>, Vec<SourceRef>) {
    let mut out = Vec::new();
    let mut refs = Vec::new();
    for (i, d) in drafts.iter().enumerate() {
        let Some(obj) = d.as_object() else {
            continue;
        };
        let is_request =
            obj.get("resourceType").and_then(Value::as_str) == Some("MedicationRequest");
        let add_id = !obj.contains_key("id");
        let add_subject = is_request && !obj.contains_key("subject");
        let r = if add_id || add_subject {
            let mut owned = d.to_serde();
            if let Some(o) = owned.as_object_mut() {
                if add_id {
                    o.insert("id".into(), serde_json::Value::String(format!("draft-{i}")));
                }
                if add_subject {
                    o.insert(
                        "subject".into(),
                        serde_json::json!({"reference": format!("Patient/{patient_id}")}),
                    );
                }
            }
            let text: &'a str = arena.alloc_str(&owned.to_string());
            match json::parse(arena, text.as_bytes()) {
                Ok(v) => v,
                Err(_) => continue,
            }
        } else {
            (*d).clone()
        };
        if is_request {
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
/// `extra` are data-quality issues of the request itself (absent optional templates).
fn assess_patient(
    resources: Vec<Value<'_>>,
    patient_id: &str,
    drafts: Option<&[SourceRef]>,
    extra: &[DataQualityIssue],
    as_of: NaiveDate,
    config: &Config,
) -> Option<Assessment> {
    let read = osteoguard_fhir::read_parsed(resources);
    let mut pd = read.patients.into_iter().find(|p| p.id == patient_id)?;
    pd.issues.extend_from_slice(extra);
    Some(match drafts {
        Some(d) => assess_what_if(&pd.record, &pd.issues, d, as_of, config),
        None => assess_with_issues(&pd.record, &pd.issues, as_of, config),
    })
}

/// Publishes the HTML report of an assessment and returns its absolute URL.
pub type PublishReport<'a> = dyn Fn(&Arc<Assessment>) -> Option<String> + 'a;

/// The result of one evaluation: the response cards and `(uuid, finding code, severity)` of each.
#[derive(Debug, Clone, Default)]
pub struct Evaluated {
    pub cards: Vec<cards::Card>,
    pub issued: Vec<(String, String, String)>,
}

/// Evaluates one request (CPU only; run it off the async runtime). Every card comes from one
/// core assessment — for order hooks the what-if assessment of the drafts as if signed; the
/// service adds no finding of its own (knowledge.md §9 "Order hooks").
///
/// `unfetched` are the optional templates the answer is without: named in the assessment's
/// `dataQuality`, and noted on every card that proposes spine imaging ([`unfetched_note`]).
///
/// `report`, when given, publishes the HTML report of the assessment and returns its absolute
/// URL (every card links to it).
pub fn evaluate<'a>(
    arena: &'a Arena,
    p: &Parsed<'a>,
    resources: Vec<Value<'a>>,
    unfetched: &[Unfetched],
    as_of: NaiveDate,
    config: &Config,
    report: Option<&PublishReport<'_>>,
) -> Evaluated {
    let base = dedupe(resources);
    let (draft_resources, draft_refs) = prepare_drafts(arena, &p.drafts, p.patient_id);
    let order_hook = p.hook.is_order();
    let extra = unfetched_issues(unfetched, p.patient_id);
    // The record without the drafts is read again only for order hooks (their baseline).
    let (a, base) = if order_hook {
        let full = dedupe(base.iter().cloned().chain(draft_resources));
        let a = assess_patient(full, p.patient_id, Some(&draft_refs), &extra, as_of, config);
        (a, base)
    } else {
        let a = assess_patient(base, p.patient_id, None, &extra, as_of, config);
        (a, Vec::new())
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
            match assess_patient(base, p.patient_id, None, &extra, as_of, config) {
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
    // Shared with the report store (no copy of the assessment).
    let a = Arc::new(a);
    let report_url = report.and_then(|publish| if plans.is_empty() { None } else { publish(&a) });
    let ctx = CardContext {
        patient_id: p.patient_id,
        patient: Arc::from(p.patient_id),
        provenance: cards::provenance_json(&a.provenance),
        as_of,
        assessment: &a,
        report_url,
        unchecked: unfetched_note(unfetched),
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

#[cfg(test)]
mod tests {
    use super::{dedupe, key_of, referenced_patient};
    use osteoguard_fhir::json::{self, Arena, Value};
    use std::collections::BTreeMap;

    /// The deduplication before it sorted a `Vec` (kept as the oracle): a `BTreeMap` by key,
    /// later items replacing earlier ones, then the items without a key.
    fn dedupe_by_btree<'a>(items: Vec<Value<'a>>) -> Vec<Value<'a>> {
        let mut by_key: BTreeMap<(&str, &str), Value<'a>> = BTreeMap::new();
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

    #[test]
    fn dedupe_keeps_the_last_of_each_key_in_key_order_as_the_btree_did() {
        let arena = Arena::new();
        // Types and ids chosen so that name order and length order disagree ("Z" < "a",
        // "b" < "ab" is false), with repeats, items without a key, and a draft after the record.
        let texts = [
            r#"{"resourceType":"Observation","id":"b","v":1}"#,
            r#"{"resourceType":"Condition","id":"ab","v":2}"#,
            r#"{"resourceType":"Observation","id":"b","v":3}"#,
            r#"{"resourceType":"Observation"}"#,
            r#"{"resourceType":"Condition","id":"a","v":4}"#,
            r#"{"resourceType":"Condition","id":"Z","v":5}"#,
            r#"{"id":"nothing"}"#,
            r#"{"resourceType":"Observation","id":"b","v":6}"#,
            r#"{"resourceType":"Condition","id":"ab","v":7}"#,
            r#"{"resourceType":"MedicationRequest","id":"draft-0","v":8}"#,
            r#"{"resourceType":"MedicationRequest","id":"draft-0","v":9}"#,
        ];
        let all: Vec<Value> = texts
            .iter()
            .filter_map(|t| json::parse(&arena, t.as_bytes()).ok())
            .collect();
        assert_eq!(all.len(), texts.len());
        // Every prefix and every rotation: orders and repeats of all kinds.
        for n in 0..=all.len() {
            for r in 0..all.len() {
                let mut items = all[..n].to_vec();
                items.rotate_left(r.min(n));
                let ours: Vec<String> = dedupe(items.clone())
                    .iter()
                    .map(|v| v.to_string())
                    .collect();
                let theirs: Vec<String> = dedupe_by_btree(items)
                    .iter()
                    .map(|v| v.to_string())
                    .collect();
                assert_eq!(ours, theirs, "prefix {n}, rotation {r}");
            }
        }
    }

    #[test]
    fn referenced_patient_reads_relative_absolute_versioned_and_urn_references() {
        for (reference, want) in [
            ("Patient/p-1", Some("p-1")),
            ("https://fhir.example/r4/Patient/p-1", Some("p-1")),
            ("Patient/p-1/_history/3", Some("p-1")),
            (
                "https://fhir.example/r4/Patient/p-1/_history/3",
                Some("p-1"),
            ),
            ("Patient//p-1/", Some("p-1")),
            ("urn:uuid:5c1e", Some("5c1e")),
            ("Group/g-1", None),
            ("Group/g-1/_history/2", None),
            ("Patient/", None),
            ("p-1", None),
            ("x/_history/2", None),
            ("", None),
        ] {
            assert_eq!(referenced_patient(reference), want, "{reference}");
        }
    }
}
