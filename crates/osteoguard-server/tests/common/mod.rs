//! Test harness: keys generated per test run, real signed JWTs, a loopback FHIR server built
//! from the shared data, the service on a loopback port with a real SQLite file, and a checker
//! of the CDS Hooks 2.0 response shape.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use osteoguard_server::{RunningServer, ServerConfig, TrustedIssuer};
use serde_json::{json, Value};

pub const AUD: &str = "https://cds.test/cds-services";
pub const ISS: &str = "https://ehr.test";
pub const FHIR_TOKEN: &str = "fhir-access-token-xyz";

pub fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `$OSTEOGUARD_SHARED/data`, else `../shared/data` beside the checkout.
pub fn shared_data() -> PathBuf {
    match std::env::var_os("OSTEOGUARD_SHARED") {
        Some(p) => PathBuf::from(p).join("data"),
        None => workspace().join("../shared/data"),
    }
}

pub fn read_json(p: impl AsRef<std::path::Path>) -> Value {
    let p = p.as_ref();
    serde_json::from_str(
        &std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

// --- keys and tokens --------------------------------------------------------------------------

pub struct Keys {
    pub ec: EncodingKey,
    pub ec_jwk: Value,
    pub rsa: EncodingKey,
    pub rsa_jwk: Value,
    /// The raw EC public point (for the HS256-with-public-key attack).
    pub ec_public: Vec<u8>,
}

pub fn ec_key(kid: &str) -> (EncodingKey, Value, Vec<u8>) {
    let kp = EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap();
    let pkcs8 = kp.to_pkcs8v1().unwrap();
    let public = kp.public_key().as_ref().to_vec();
    assert_eq!(public.len(), 97);
    let jwk = json!({"kty": "EC", "crv": "P-384", "kid": kid, "use": "sig", "alg": "ES384",
                     "x": b64(&public[1..49]), "y": b64(&public[49..97])});
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk, public)
}

pub fn rsa_key(kid: &str) -> (EncodingKey, Value) {
    let kp = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&kp).unwrap();
    let body = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let public = kp.public_key();
    let jwk = json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS384",
                     "n": b64(public.modulus().big_endian_without_leading_zero()),
                     "e": b64(public.exponent().big_endian_without_leading_zero())});
    (EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(), jwk)
}

pub fn keys() -> Keys {
    let (ec, ec_jwk, ec_public) = ec_key("ec-1");
    let (rsa, rsa_jwk) = rsa_key("rsa-1");
    Keys {
        ec,
        ec_jwk,
        rsa,
        rsa_jwk,
        ec_public,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

static JTI: AtomicUsize = AtomicUsize::new(0);

pub fn claims() -> Value {
    let n = now();
    json!({"iss": ISS, "sub": "client-1", "aud": AUD, "iat": n, "exp": n + 300,
           "jti": format!("jti-{}-{}", n, JTI.fetch_add(1, Ordering::SeqCst))})
}

pub fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut h = Header::new(alg);
    h.kid = Some(kid.to_string());
    jsonwebtoken::encode(&h, claims, key).unwrap()
}

impl Keys {
    pub fn token(&self) -> String {
        sign(Algorithm::ES384, "ec-1", &self.ec, &claims())
    }
}

// --- the loopback FHIR server -----------------------------------------------------------------

#[derive(Default)]
pub struct FhirState {
    pub resources: Vec<Value>,
    pub page_size: usize,
    pub requests: Mutex<Vec<String>>,
    pub bad_token: AtomicUsize,
}

pub struct FhirServer {
    pub base: String,
    pub state: Arc<FhirState>,
}

impl FhirServer {
    /// `{base}/fhir` serves normally, `{base}/fail` answers 500, `{base}/slow` waits 3 s.
    pub fn url(&self, mode: &str) -> String {
        format!("{}/{mode}", self.base)
    }
    pub fn requests(&self) -> Vec<String> {
        self.state.requests.lock().unwrap().clone()
    }
}

fn subject_id(r: &Value) -> Option<String> {
    let s = r
        .get("subject")
        .or_else(|| r.get("patient"))?
        .get("reference")?
        .as_str()?;
    Some(
        s.trim_start_matches("Patient/")
            .trim_start_matches("urn:uuid:")
            .to_string(),
    )
}

async fn fhir_handler(
    State(st): State<Arc<FhirState>>,
    Path((mode, rest)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let page_note = q
        .get("_page")
        .map(|p| format!("?_page={p}"))
        .unwrap_or_default();
    st.requests
        .lock()
        .unwrap()
        .push(format!("{mode}/{rest}{page_note}"));
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {FHIR_TOKEN}"))
    {
        st.bad_token.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "no token").into_response();
    }
    match mode.as_str() {
        "fail" => return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        "slow" => tokio::time::sleep(Duration::from_secs(3)).await,
        _ => {}
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let ty = parts[0];
    if parts.len() == 2 {
        return match st
            .resources
            .iter()
            .find(|r| r["resourceType"] == ty && r["id"] == parts[1])
        {
            Some(r) => Json(r.clone()).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                Json(json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]})),
            )
                .into_response(),
        };
    }
    let patient = q.get("patient").cloned().unwrap_or_default();
    let cats: Vec<&str> = q
        .get("category")
        .map(|c| c.split(',').collect())
        .unwrap_or_default();
    let matching: Vec<&Value> = st
        .resources
        .iter()
        .filter(|r| r["resourceType"] == ty)
        .filter(|r| subject_id(r).as_deref() == Some(patient.as_str()))
        .filter(|r| {
            cats.is_empty()
                || r["category"].as_array().into_iter().flatten().any(|c| {
                    c["coding"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|k| cats.contains(&k["code"].as_str().unwrap_or("")))
                })
        })
        .collect();
    let page: usize = q.get("_page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let size = st.page_size.max(1);
    let chunk: Vec<Value> = matching
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|r| json!({"fullUrl": format!("http://{host}/{mode}/{}/{}", ty, r["id"].as_str().unwrap_or("")), "resource": r, "search": {"mode": "match"}}))
        .collect();
    let mut links = vec![];
    if page * size < matching.len() {
        let mut params: Vec<String> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "_page")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        params.sort();
        params.push(format!("_page={}", page + 1));
        links.push(json!({"relation": "next", "url": format!("http://{host}/{mode}/{ty}?{}", params.join("&"))}));
    }
    Json(
        json!({"resourceType": "Bundle", "type": "searchset", "total": matching.len(),
                "link": links, "entry": chunk}),
    )
    .into_response()
}

pub async fn start_fhir(resources: Vec<Value>, page_size: usize) -> FhirServer {
    let state = Arc::new(FhirState {
        resources,
        page_size,
        ..Default::default()
    });
    let app = Router::new()
        .route("/{mode}/{*rest}", get(fhir_handler))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FhirServer {
        base: format!("http://{addr}"),
        state,
    }
}

/// Every resource of a Bundle file (transaction bundles included).
pub fn bundle_resources(b: &Value) -> Vec<Value> {
    b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

/// The seed case, the worked examples and one Synthea record from the shared data.
pub fn fhir_corpus() -> Vec<Value> {
    let mut v = bundle_resources(&read_json(workspace().join("examples/seed-case.json")));
    v.extend(bundle_resources(&read_json(
        workspace().join("examples/example-7-dmab-due-renal.json"),
    )));
    let dir = shared_data().join("synthea-r4-bundles");
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("Willia_Runolfsdottir") && name.ends_with(".json") {
                v.extend(bundle_resources(&read_json(e.path())));
            }
        }
    }
    v
}

// --- prefetch --------------------------------------------------------------------------------

pub fn searchset(items: Vec<Value>) -> Value {
    let entry: Vec<Value> = items.into_iter().map(|r| json!({"resource": r})).collect();
    json!({"resourceType": "Bundle", "type": "searchset", "total": entry.len(), "entry": entry})
}

/// A complete prefetch (one key per discovery template) from a patient's resources.
pub fn prefetch_from(resources: &[Value]) -> Value {
    let of = |ty: &str| -> Vec<Value> {
        resources
            .iter()
            .filter(|r| r["resourceType"] == ty)
            .cloned()
            .collect()
    };
    let is_lab = |r: &Value| {
        r["category"].as_array().into_iter().flatten().any(|c| {
            c["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["code"] == "laboratory" || k["code"] == "vital-signs")
        })
    };
    let obs = of("Observation");
    json!({
        "patient": of("Patient").into_iter().next().unwrap_or(Value::Null),
        "medicationRequests": searchset(of("MedicationRequest")),
        "medicationAdministrations": searchset(of("MedicationAdministration")),
        "medicationStatements": searchset(of("MedicationStatement")),
        "observationsLab": searchset(obs.iter().filter(|r| is_lab(r)).cloned().collect()),
        "observationsBone": searchset(obs.iter().filter(|r| !is_lab(r)).cloned().collect()),
        "conditions": searchset(of("Condition")),
        "procedures": searchset(of("Procedure")),
    })
}

pub fn seed_resources() -> Vec<Value> {
    bundle_resources(&read_json(workspace().join("examples/seed-case.json")))
}

/// A patient-view for a patient with a Patient resource and nothing else (nothing to fetch).
pub fn nobody_request() -> Value {
    patient_view(
        "nobody",
        "2023-06-15",
        prefetch_from(&[
            json!({"resourceType": "Patient", "id": "nobody", "gender": "female", "birthDate": "1950-01-01"}),
        ]),
    )
}

/// A patient-view without prefetch: everything is fetched from `fhir_base` with the token.
pub fn fetch_all_request(patient: &str, fhir_base: String) -> Value {
    let mut req = patient_view(patient, "2023-06-15", json!({}));
    req["fhirServer"] = json!(fhir_base);
    req["fhirAuthorization"] = json!({"access_token": FHIR_TOKEN, "token_type": "Bearer",
        "expires_in": 300, "scope": "patient/*.read", "subject": "osteoguard"});
    req
}

pub fn patient_view(patient: &str, as_of: &str, prefetch: Value) -> Value {
    json!({
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/example", "patientId": patient},
        "prefetch": prefetch,
        "extension": {"osteoguard.asOf": as_of},
    })
}

// --- the service under test ------------------------------------------------------------------

pub struct Harness {
    pub server: RunningServer,
    pub keys: Arc<Keys>,
    pub dir: tempfile::TempDir,
    pub http: reqwest::Client,
}

impl Harness {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.addr)
    }
    pub fn db(&self) -> PathBuf {
        self.dir.path().join("cds.db")
    }
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut r = self.http.post(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        (status, v)
    }
    /// GET `path` (no token); its body as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        self.http
            .get(self.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
    /// POST JSON with a fresh valid ES384 token; the raw response.
    pub async fn send(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(self.keys.token())
            .json(body)
            .send()
            .await
            .unwrap()
    }
    /// POST with a fresh valid ES384 token.
    pub async fn call(&self, path: &str, body: &Value) -> (u16, Value) {
        let t = self.keys.token();
        self.post(path, Some(&t), body).await
    }
}

pub fn base_config(dir: &std::path::Path, keys: &Keys) -> ServerConfig {
    let jwks = json!({"keys": [keys.ec_jwk, keys.rsa_jwk]});
    let jwks_path = dir.join("jwks.json");
    std::fs::write(&jwks_path, jwks.to_string()).unwrap();
    ServerConfig {
        port: 0,
        db: dir.join("cds.db"),
        base_url: "https://cds.test".into(),
        trusted_issuers: vec![TrustedIssuer {
            iss: ISS.into(),
            jwks_file: Some(jwks_path),
            jwks_url: None,
            jku: Vec::new(),
        }],
        fhir_timeout_ms: 1500,
        request_timeout_ms: 10_000,
        ..ServerConfig::default()
    }
}

static KEYS: std::sync::OnceLock<Arc<Keys>> = std::sync::OnceLock::new();

pub fn shared_keys() -> Arc<Keys> {
    KEYS.get_or_init(|| Arc::new(keys())).clone()
}

pub async fn start_with(edit: impl FnOnce(&mut ServerConfig)) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let keys = shared_keys();
    let mut cfg = base_config(dir.path(), &keys);
    edit(&mut cfg);
    let server = osteoguard_server::start(cfg, None).await.unwrap();
    Harness {
        server,
        keys,
        dir,
        http: reqwest::Client::new(),
    }
}

pub async fn start() -> Harness {
    start_with(|_| {}).await
}

// --- CDS Hooks 2.0 response shape ------------------------------------------------------------

fn coding_ok(c: &Value) -> Result<(), String> {
    if !c["code"].is_string() || !c["system"].is_string() {
        return Err(format!("Coding needs code and system: {c}"));
    }
    Ok(())
}

/// Checks the required fields and allowed values of a CDS Service response (spec 2.0 §Card
/// attributes, §Suggestion, §Action, §Link, §overrideReasons), and validates it against the
/// JSON Schema written from the specification (schemas/cds-hooks/cards-response.schema.json).
pub fn check_response(v: &Value) -> Result<(), String> {
    validate_cds("cards-response.schema.json", v)?;
    let cards = v["cards"].as_array().ok_or("`cards` array is required")?;
    for c in cards {
        let summary = c["summary"].as_str().ok_or("card.summary is required")?;
        if summary.chars().count() > 140 || summary.is_empty() {
            return Err(format!("summary must be 1–140 characters: {summary:?}"));
        }
        let ind = c["indicator"]
            .as_str()
            .ok_or("card.indicator is required")?;
        if !["info", "warning", "critical"].contains(&ind) {
            return Err(format!("bad indicator {ind}"));
        }
        if !c["source"]["label"].is_string() {
            return Err("card.source.label is required".into());
        }
        if let Some(u) = c.get("uuid") {
            uuid::Uuid::parse_str(u.as_str().ok_or("uuid must be a string")?)
                .map_err(|e| e.to_string())?;
        }
        if let Some(d) = c.get("detail") {
            d.as_str().ok_or("detail must be a string")?;
        }
        if let Some(s) = c.get("suggestions") {
            let s = s.as_array().ok_or("suggestions must be an array")?;
            let sb = c["selectionBehavior"]
                .as_str()
                .ok_or("selectionBehavior is required with suggestions")?;
            if !["at-most-one", "any"].contains(&sb) {
                return Err(format!("bad selectionBehavior {sb}"));
            }
            for sug in s {
                sug["label"]
                    .as_str()
                    .ok_or("suggestion.label is required")?;
                if let Some(u) = sug.get("uuid") {
                    uuid::Uuid::parse_str(u.as_str().unwrap_or("")).map_err(|e| e.to_string())?;
                }
                for a in sug["actions"].as_array().into_iter().flatten() {
                    let ty = a["type"].as_str().ok_or("action.type is required")?;
                    a["description"]
                        .as_str()
                        .ok_or("action.description is required")?;
                    match ty {
                        "create" | "update" => {
                            if !a["resource"]["resourceType"].is_string() {
                                return Err("create/update action needs a resource".into());
                            }
                        }
                        "delete" => {
                            a["resourceId"]
                                .as_str()
                                .ok_or("delete action needs resourceId")?;
                        }
                        other => return Err(format!("bad action type {other}")),
                    }
                }
            }
        }
        if let Some(o) = c.get("overrideReasons") {
            for r in o.as_array().ok_or("overrideReasons must be an array")? {
                coding_ok(r)?;
            }
        }
        for l in c["links"].as_array().into_iter().flatten() {
            l["label"].as_str().ok_or("link.label is required")?;
            l["url"].as_str().ok_or("link.url is required")?;
            let t = l["type"].as_str().ok_or("link.type is required")?;
            if !["absolute", "smart"].contains(&t) {
                return Err(format!("bad link type {t}"));
            }
        }
        if let Some(e) = c.get("extension") {
            e.as_object().ok_or("extension must be an object")?;
        }
    }
    Ok(())
}

/// The finding codes of a card: the lead (`org.osteoguard.finding`) first, then every other
/// finding of its clinical situation (`org.osteoguard.situation.findings`).
pub fn codes_of(c: &Value) -> Vec<String> {
    let mut v = vec![c["extension"]["org.osteoguard.finding"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()];
    for f in c["extension"]["org.osteoguard.situation"]["findings"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(code) = f["code"].as_str() {
            if !v.iter().any(|x| x == code) {
                v.push(code.to_string());
            }
        }
    }
    v
}

/// Every finding code the response's cards carry (each card's lead first).
pub fn card_codes(v: &Value) -> Vec<String> {
    v["cards"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(codes_of)
        .collect()
}

/// The card that carries finding `code` (as its lead or within its clinical situation).
pub fn find_card<'a>(v: &'a Value, code: &str) -> Option<&'a Value> {
    v["cards"]
        .as_array()?
        .iter()
        .find(|c| codes_of(c).iter().any(|x| x == code))
}

// --- JSON Schemas written from the CDS Hooks 2.0 specification (schemas/cds-hooks/) ----------

/// Resolves the schemas' relative `$ref`s to the files of schemas/cds-hooks/ (no network).
struct LocalSchemas;

impl jsonschema::Retrieve for LocalSchemas {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let name = uri
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let path = workspace().join("schemas/cds-hooks").join(&name);
        let text = std::fs::read_to_string(&path)?;
        Ok(serde_json::from_str(&text)?)
    }
}

/// The validator of `schemas/cds-hooks/<name>`.
pub fn cds_schema(name: &str) -> jsonschema::Validator {
    let schema = read_json(workspace().join("schemas/cds-hooks").join(name));
    jsonschema::options()
        .with_retriever(LocalSchemas)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{name} is not a valid JSON Schema: {e}"))
}

/// Validates `v` against `schemas/cds-hooks/<name>`; the errors, one per line.
pub fn validate_cds(name: &str, v: &Value) -> Result<(), String> {
    let errors: Vec<String> = cds_schema(name)
        .iter_errors(v)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{name}: {}", errors.join("\n")))
    }
}
