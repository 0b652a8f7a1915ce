//! # osteoguard-server — CDS Hooks 2.0 service
//!
//! `osteoguard serve` runs three CDS services over the osteoguard engine (`patient-view`,
//! `order-select`, `order-sign`), the feedback endpoint, `/healthz`, and stores issued cards,
//! feedback and the JWT replay cache in an embedded SQLite file. See `docs/cds-hooks.md`.
//!
//! Connections are accepted by [`listener`] (header and idle timeouts, connection cap with
//! eviction of idle connections and 503 shedding). Layers, outermost first: tracing (no patient
//! data at `info`), CORS (configured origins), in-flight cap (503 + `Retry-After` above it),
//! request-body limit, per-request timeout; then JWT verification ([`auth`]) on every
//! service call and feedback post (discovery and `/healthz` are public), then the hook
//! pipeline ([`hooks`]): parse → prefetch or fetch ([`fetch`]) → FHIR reader → engine →
//! cards ([`cards`]).

pub mod auth;
pub mod cards;
pub mod config;
pub mod discovery;
pub mod fetch;
pub mod hooks;
pub mod listener;
pub mod metrics;
pub mod reports;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use config::{ServerConfig, TrustedIssuer};

#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file (TOML): `[server]` table plus threshold overrides.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Port to listen on (default 8085; env OSTEOGUARD_PORT).
    #[arg(long)]
    pub port: Option<u16>,
    /// SQLite database file (default osteoguard.db; env OSTEOGUARD_DB).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Accept unsigned requests (local testing only; never the default; loopback only).
    #[arg(long)]
    pub insecure_dev: bool,
    /// Open connections at most (default 1024); at the cap the longest-idle one is closed.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Requests processed at once at most (default 64); above it 503 with Retry-After.
    #[arg(long)]
    pub max_in_flight: Option<usize>,
    /// Milliseconds to receive a complete request head (default 10000).
    #[arg(long)]
    pub header_timeout_ms: Option<u64>,
    /// Milliseconds after which a silent connection with no request in flight is closed
    /// (default 30000).
    #[arg(long)]
    pub idle_timeout_ms: Option<u64>,
    /// Allow this browser origin (CORS), e.g. an EHR sandbox; repeatable; replaces the
    /// configuration's `cors_origins` (env OSTEOGUARD_CORS_ORIGINS); `*` allows any.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum ReportFormat {
    /// A table per finding code.
    #[default]
    Text,
    /// The same rates as JSON.
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct FeedbackReportArgs {
    /// SQLite database file (default: the one `serve` uses).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Configuration file whose `[server] db` to read.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The cause is part of the message and not also a `source` (printing the chain would
    /// repeat it).
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        addr: SocketAddr,
        cause: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

/// Shared state of the running service.
#[derive(Clone)]
pub struct AppState {
    pub cfg: Arc<ServerConfig>,
    pub store: Arc<store::Store>,
    verifier: Option<Arc<auth::Verifier>>,
    fhir: Arc<fetch::FhirClient>,
    bench_body: Option<Bytes>,
    reports: Arc<reports::ReportStore>,
    /// Issued cards, written by a background thread in batches.
    cards: Arc<store::CardLog>,
}

/// At most this many characters of message in an error body.
const MAX_MESSAGE_CHARS: usize = 512;

/// The documented error body `{"error": code, "message": …}` (message bounded).
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let message = hooks::clip_chars(message, MAX_MESSAGE_CHARS);
    (status, Json(json!({"error": code, "message": message}))).into_response()
}

/// Error responses produced outside the handlers (unknown path, wrong method, body limit,
/// timeout) get the documented JSON error body; their other headers (`Allow`, …) are kept.
async fn json_errors(body_limit: usize, resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not-found", "no such endpoint".to_string()),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method-not-allowed",
            "method not allowed on this endpoint (see the Allow header)".to_string(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "request-timeout",
            "the request took longer than request_timeout_ms".to_string(),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload-too-large",
            format!("the request body exceeds body_limit_bytes ({body_limit} bytes)"),
        ),
        s => (
            "error",
            s.canonical_reason().unwrap_or("request failed").to_string(),
        ),
    };
    let (parts, _) = resp.into_parts();
    let mut out = error(status, code, &message);
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().append(k.clone(), v.clone());
        }
    }
    out
}

/// POST bodies must be JSON (`application/json`, or a `+json` type); else the 415 answer.
fn refuse_non_json(headers: &HeaderMap) -> Option<Response> {
    let sent = headers
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let essence = sent
        .as_deref()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        return None;
    }
    let what = match sent {
        Some(v) => format!("`{}`", hooks::clip(&v)),
        None => "no Content-Type".to_string(),
    };
    Some(error(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        &format!("the body must be application/json, not {what}"),
    ))
}

/// The load-shedding answer: `503` with `Retry-After`.
fn overloaded(retry_after_secs: u64, message: &str) -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "overloaded", message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    r
}

fn unauthorized(e: &auth::AuthError) -> Response {
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", &e.to_string());
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer error=\"invalid_token\""),
    );
    r
}

/// Verifies the bearer JWT (unless `--insecure-dev`); returns the client label.
async fn authorize(st: &AppState, headers: &HeaderMap) -> Result<String, Response> {
    let Some(verifier) = &st.verifier else {
        return Ok("insecure-dev".into());
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        tracing::info!(reason = "missing", "request rejected");
        metrics::jwt_rejected("missing");
        return Err(unauthorized(&auth::AuthError::Missing));
    };
    match verifier.verify(token, &st.store).await {
        Ok(c) => Ok(c.label()),
        Err(e) => {
            tracing::info!(reason = e.code(), "request rejected");
            metrics::jwt_rejected(e.code());
            Err(unauthorized(&e))
        }
    }
}

async fn discovery_handler() -> Json<Value> {
    Json(discovery::discovery_document())
}

async fn healthz(State(st): State<AppState>) -> Response {
    let store = st.store.clone();
    match tokio::task::spawn_blocking(move || store.feedback_count()).await {
        Ok(Ok(_)) => Json(json!({"status": "ok"})).into_response(),
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy",
            "database unavailable",
        ),
    }
}

async fn bench_static(State(st): State<AppState>) -> Response {
    match &st.bench_body {
        Some(b) => ([(header::CONTENT_TYPE, "application/json")], b.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A refused hook request: 400 or 412 with the message; the log names the code only (the
/// message may carry identifiers).
fn hook_refusal(service: &str, e: &hooks::HookError) -> Response {
    let (status, code) = match e {
        hooks::HookError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request"),
        hooks::HookError::Precondition(_) => (StatusCode::PRECONDITION_FAILED, "data-unavailable"),
        hooks::HookError::Inconsistent(_) => (StatusCode::PRECONDITION_FAILED, "data-inconsistent"),
    };
    tracing::info!(
        service,
        status = status.as_u16(),
        reason = code,
        "hook request refused"
    );
    error(status, code, &e.to_string())
}

/// One hook request, as the blocking part of the handler needs it.
struct HookJob {
    hook: discovery::Hook,
    service: &'static str,
    body: Bytes,
    /// The as-of date when the request names none (the HTTP edge is the only place that reads
    /// the clock).
    today: chrono::NaiveDate,
    cfg: Arc<ServerConfig>,
    /// Where the cards' report links point (docs/cds-hooks.md "Links"), when they link.
    link_base: Option<String>,
    reports: Arc<reports::ReportStore>,
}

/// How far [`answer`] got.
enum Step {
    /// The response body and what it holds.
    Answered(Vec<u8>, hooks::Evaluated),
    /// The prefetch lacks data: fetch it, then answer again with the pages.
    Fetch(hooks::FetchPlan),
}

/// Why [`answer`] gives no cards.
enum Refusal {
    NotJson,
    Hook(hooks::HookError),
    Internal,
}

impl Refusal {
    fn response(&self, service: &str) -> Response {
        match self {
            Refusal::NotJson => error(StatusCode::BAD_REQUEST, "bad-request", "body is not JSON"),
            Refusal::Hook(e) => hook_refusal(service, e),
            Refusal::Internal => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "evaluation failed",
            ),
        }
    }
}

/// The response buffer reserved per card (a card with its suggestions and provenance is 5–8 kB
/// of JSON): one allocation for the common response.
const RESPONSE_BYTES_PER_CARD: usize = 8 << 10;

thread_local! {
    /// The request tree's arena of this (blocking) thread, reset for each request instead of a
    /// fresh chunk of twice the body per request (issue 19): after the first request a thread
    /// allocates nothing for the tree.
    static ARENA: std::cell::RefCell<osteoguard_fhir::json::Arena> =
        std::cell::RefCell::new(osteoguard_fhir::json::Arena::new());
}

/// A thread keeps at most this much arena between requests: after a larger request its arena
/// is freed (RSS stays bounded by threads × this, however large a request was).
const ARENA_KEEP_BYTES: usize = 1 << 20;

/// [`answer_in`] with this thread's arena, reset first and sized for the request's tree (one
/// chunk, as `Arena::with_capacity(2 × body)` gave).
fn answer(job: &HookJob, fetched: Option<&hooks::Fetched>) -> Result<Step, Refusal> {
    let need = job.body.len().saturating_mul(2);
    ARENA.with(|cell| match cell.try_borrow_mut() {
        Ok(mut arena) => {
            arena.reset();
            if arena.chunk_capacity() < need {
                *arena = osteoguard_fhir::json::Arena::with_capacity(need);
            }
            let r = answer_in(&arena, job, fetched);
            if arena.allocated_bytes() > ARENA_KEEP_BYTES {
                *arena = osteoguard_fhir::json::Arena::new();
            }
            r
        }
        // Not reached (`answer` does not call itself); a fresh arena keeps it correct.
        Err(_) => answer_in(
            &osteoguard_fhir::json::Arena::with_capacity(need),
            job,
            fetched,
        ),
    })
}

/// Parses the request once into the FHIR reader's arena tree, checks it, gathers the
/// resources (the prefetch's, and the pages `fetched` for it), assesses and renders the
/// response body (CPU only: runs off the async runtime). Without `fetched`, a request whose prefetch
/// lacks data comes back as [`Step::Fetch`].
fn answer_in(
    arena: &osteoguard_fhir::json::Arena,
    job: &HookJob,
    fetched: Option<&hooks::Fetched>,
) -> Result<Step, Refusal> {
    // Members the reader never reads are left out of the tree (a fifth of the seed request:
    // `category`, `identifier`, …), except `link`, where `hooks` finds a prefetched searchset's
    // next page. The reader's exact-duplicate check never sees two resources of one type and id
    // here: `hooks::evaluate` keeps one of each before reading.
    let json = osteoguard_fhir::json::parse_pruned_keeping(arena, &job.body, hooks::REQUEST_KEEPS)
        .map_err(|_| Refusal::NotJson)?;
    let parsed = hooks::parse(job.hook, &json).map_err(Refusal::Hook)?;
    tracing::debug!(service = job.service, hook_instance = %parsed.hook_instance, patient = %parsed.patient_id, "hook request");
    let (resources, unfetched) = match fetched {
        None => match hooks::prefetched(&parsed).map_err(Refusal::Hook)? {
            hooks::Gathered::Complete(r, u) => (r, u),
            hooks::Gathered::Fetch(plan) => return Ok(Step::Fetch(plan)),
        },
        Some(f) => (
            hooks::with_pages(arena, &parsed, &f.pages).map_err(Refusal::Hook)?,
            f.unfetched.clone(),
        ),
    };
    let as_of = parsed.as_of.unwrap_or(job.today);
    let publish = |a: &Arc<osteoguard_core::Assessment>| -> Option<String> {
        let base = job.link_base.as_deref()?;
        let token = job.reports.publish_assessment(a.clone());
        Some(format!("{base}/reports/{token}"))
    };
    let mut evaluated = hooks::evaluate(
        arena,
        &parsed,
        resources,
        &unfetched,
        as_of,
        &job.cfg.engine,
        Some(&publish),
    );
    // Written straight into a buffer sized for the cards (the seed's two cards are 15.6 kB): no
    // growth by doubling, each step copying what was written so far.
    let mut body = Vec::with_capacity(RESPONSE_BYTES_PER_CARD * evaluated.cards.len().max(1));
    cards::write_cards(&mut body, &mut evaluated.cards).map_err(|_| Refusal::Internal)?;
    Ok(Step::Answered(body, evaluated))
}

/// [`answer`] on a blocking thread.
async fn answer_blocking(
    job: &Arc<HookJob>,
    fetched: Option<hooks::Fetched>,
) -> Result<Step, Refusal> {
    let job = job.clone();
    tokio::task::spawn_blocking(move || answer(&job, fetched.as_ref()))
        .await
        .unwrap_or(Err(Refusal::Internal))
}

async fn hook_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let Some(svc) = discovery::service(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown-service",
            "no such CDS service",
        );
    };
    let client = match authorize(&st, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = refuse_non_json(&headers) {
        return r;
    }
    let cfg = st.cfg.clone();
    // Where the cards' report links point (docs/cds-hooks.md "Links").
    let link_base = if cfg.report_links {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(str::to_string);
        reports::link_base(cfg.report_base_url.as_deref(), host.as_deref())
    } else {
        None
    };
    let job = Arc::new(HookJob {
        hook: svc.hook,
        service: svc.id,
        body,
        today: chrono::Local::now().date_naive(),
        cfg,
        link_base,
        reports: st.reports.clone(),
    });
    let (response, evaluated) = match answer_blocking(&job, None).await {
        Ok(Step::Answered(b, e)) => (b, e),
        Ok(Step::Fetch(plan)) => {
            let fetched = match hooks::fetch(&st.fhir, plan).await {
                Ok(f) => f,
                Err(e) => return hook_refusal(svc.id, &e),
            };
            match answer_blocking(&job, Some(fetched)).await {
                Ok(Step::Answered(b, e)) => (b, e),
                Ok(Step::Fetch(_)) => return Refusal::Internal.response(svc.id),
                Err(r) => return r.response(svc.id),
            }
        }
        Err(r) => return r.response(svc.id),
    };
    if !evaluated.issued.is_empty() {
        st.cards.record(store::IssuedCards {
            service: svc.id,
            cards: evaluated.issued,
            now: chrono::Utc::now().to_rfc3339(),
        });
    }
    tracing::info!(
        service = svc.id,
        client = %client,
        cards = evaluated.cards.len(),
        ms = started.elapsed().as_millis() as u64,
        "hook answered"
    );
    metrics::cards_returned(svc.id, evaluated.cards.iter().map(|c| c.indicator));
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        response,
    )
        .into_response()
}

fn parse_feedback(body: &Value) -> Result<Vec<store::FeedbackRow>, String> {
    let items = body
        .get("feedback")
        .and_then(Value::as_array)
        .ok_or("`feedback` must be an array")?;
    let mut rows = Vec::new();
    for (i, f) in items.iter().enumerate() {
        let s = |k: &str| f.get(k).and_then(Value::as_str).map(str::to_string);
        let card = s("card")
            .filter(|c| !c.is_empty())
            .ok_or(format!("feedback[{i}].card is required"))?;
        let outcome = s("outcome").ok_or(format!("feedback[{i}].outcome is required"))?;
        if outcome != "accepted" && outcome != "overridden" {
            return Err(format!(
                "feedback[{i}].outcome must be `accepted` or `overridden`"
            ));
        }
        let ts =
            s("outcomeTimestamp").ok_or(format!("feedback[{i}].outcomeTimestamp is required"))?;
        if chrono::DateTime::parse_from_rfc3339(&ts).is_err() {
            return Err(format!(
                "feedback[{i}].outcomeTimestamp must be an ISO 8601 instant"
            ));
        }
        let accepted: Vec<String> = f
            .get("acceptedSuggestions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.get("id").and_then(Value::as_str).map(str::to_string))
            .collect();
        let reason = f.pointer("/overrideReason/reason");
        let rs = |k: &str| {
            reason
                .and_then(|r| r.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        rows.push(store::FeedbackRow {
            card_uuid: card,
            outcome,
            accepted_suggestions: accepted,
            override_reason_system: rs("system"),
            override_reason_code: rs("code"),
            override_reason_display: rs("display"),
            user_comment: f
                .pointer("/overrideReason/userComment")
                .and_then(Value::as_str)
                .map(str::to_string),
            outcome_timestamp: ts,
        });
    }
    Ok(rows)
}

async fn feedback_handler(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(svc) = discovery::service(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown-service",
            "no such CDS service",
        );
    };
    let client = match authorize(&st, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Some(r) = refuse_non_json(&headers) {
        return r;
    }
    let json: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return error(StatusCode::BAD_REQUEST, "bad-request", "body is not JSON"),
    };
    let rows = match parse_feedback(&json) {
        Ok(r) => r,
        Err(m) => return error(StatusCode::BAD_REQUEST, "bad-request", &m),
    };
    let outcomes = metrics::feedback_outcomes(rows.iter().map(|r| r.outcome.as_str()));
    let store = st.store.clone();
    let now = chrono::Utc::now().to_rfc3339();
    let client2 = client.clone();
    let res =
        tokio::task::spawn_blocking(move || store.record_feedback(svc.id, &client2, &rows, &now))
            .await;
    match res {
        Ok(Ok((inserted, repeats))) => {
            tracing::info!(service = svc.id, client = %client, inserted, repeats, "feedback stored");
            metrics::feedback_stored(svc.id, outcomes);
            Json(json!({"stored": inserted, "repeats": repeats})).into_response()
        }
        _ => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "feedback could not be stored",
        ),
    }
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .max_age(Duration::from_secs(600)),
    )
}

/// `GET /reports/<token>`: the HTML report a card links to, while it lives; else 404 (an
/// expired and a never-issued token look the same).
async fn report_handler(State(st): State<AppState>, Path(token): Path<String>) -> Response {
    match st.reports.get(&token) {
        Some(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                ),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            html.as_str().to_owned(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such report (reports expire)",
        ),
    }
}

/// Builds the router for `state` (no listener): used by [`start`] and tests.
pub fn router(state: AppState) -> Router {
    let cfg = state.cfg.clone();
    let mut app = Router::new()
        .route("/cds-services", get(discovery_handler))
        .route("/cds-services/{id}", post(hook_handler))
        .route("/cds-services/{id}/feedback", post(feedback_handler))
        .route("/healthz", get(healthz))
        .route("/reports/{token}", get(report_handler))
        .route("/metrics", get(metrics::handler));
    if state.bench_body.is_some() {
        app = app.route("/bench/static", get(bench_static));
    }
    let app = app
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(cfg.request_timeout_ms),
        ))
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(cfg.body_limit_bytes));
    let body_limit = cfg.body_limit_bytes;
    let app = app.layer(axum::middleware::map_response(move |r: Response| {
        json_errors(body_limit, r)
    }));
    // Requests in flight are capped; above the cap the request is refused at once (503 +
    // Retry-After) rather than queued. The body is read inside, so the cap bounds buffering too.
    let retry_after = cfg.retry_after_secs;
    let mut app = app.layer(
        tower::ServiceBuilder::new()
            .layer(HandleErrorLayer::new(
                move |_: tower::BoxError| async move {
                    tracing::debug!(status = 503, "in-flight limit reached: request shed");
                    overloaded(retry_after, "too many requests in flight; retry later")
                },
            ))
            .load_shed()
            .concurrency_limit(cfg.max_in_flight.max(1)),
    );
    if let Some(c) = cors_layer(&cfg.cors_origins) {
        app = app.layer(c);
    }
    app.layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
}

/// Opens the store and builds the state. Refuses to run without trusted issuers unless
/// `insecure_dev`, and refuses `insecure_dev` on a non-loopback address.
pub fn build_state(cfg: ServerConfig, bench_body: Option<Bytes>) -> Result<AppState, ServeError> {
    if cfg.insecure_dev && !cfg.bind.is_loopback() {
        return Err(ServeError::Setup(format!(
            "--insecure-dev accepts unsigned requests and is allowed only on a loopback address, not {}",
            cfg.bind
        )));
    }
    let verifier = if cfg.insecure_dev {
        None
    } else {
        if cfg.trusted_issuers.is_empty() {
            return Err(ServeError::Setup(
                "no trusted JWT issuers configured: add [[server.trusted_issuers]] (iss + jwks_file or \
                 jwks_url) to the configuration, or use --insecure-dev for local testing"
                    .into(),
            ));
        }
        Some(Arc::new(
            auth::Verifier::new(&cfg).map_err(ServeError::Setup)?,
        ))
    };
    let store = Arc::new(store::Store::open(&cfg.db)?);
    let cards = Arc::new(
        store::CardLog::start(store.clone())
            .map_err(|e| ServeError::Setup(format!("card log thread: {e}")))?,
    );
    let fhir = Arc::new(
        fetch::FhirClient::new(
            Duration::from_millis(cfg.fhir_timeout_ms),
            cfg.fhir_max_pages,
        )
        .map_err(ServeError::Setup)?,
    );
    let bench_body = if cfg.bench_endpoint { bench_body } else { None };
    let reports = Arc::new(reports::ReportStore::new(Duration::from_secs(
        cfg.report_ttl_secs,
    )));
    Ok(AppState {
        reports,
        cards,
        cfg: Arc::new(cfg),
        store,
        verifier,
        fhir,
        bench_body,
    })
}

/// A service running on a tokio runtime (tests, the bench binary, [`serve`]).
pub struct RunningServer {
    pub addr: SocketAddr,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    cards: Arc<store::CardLog>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, writes the queued card records, and
    /// waits.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
        let cards = self.cards;
        let _ = tokio::task::spawn_blocking(move || cards.close()).await;
    }
}

/// Binds `cfg.bind:cfg.port` (port 0 = any free port) and serves until shut down.
pub async fn start(
    cfg: ServerConfig,
    bench_body: Option<Bytes>,
) -> Result<RunningServer, ServeError> {
    let addr = SocketAddr::new(cfg.bind, cfg.port);
    let limits = listener::Limits {
        max_connections: cfg.max_connections,
        header_timeout: Duration::from_millis(cfg.header_timeout_ms),
        idle_timeout: Duration::from_millis(cfg.idle_timeout_ms),
        retry_after_secs: cfg.retry_after_secs,
    };
    let state = build_state(cfg, bench_body)?;
    let cards = state.cards.clone();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|cause| ServeError::Bind { addr, cause })?;
    let addr = listener
        .local_addr()
        .map_err(|cause| ServeError::Bind { addr, cause })?;
    let app = router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(listener::run(listener, app, limits, rx));
    Ok(RunningServer {
        addr,
        shutdown: tx,
        task,
        cards,
    })
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("OSTEOGUARD_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("OSTEOGUARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(log_colour(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
            std::env::var_os("NO_COLOR").as_deref(),
        ))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Whether logs on stderr get ANSI colours: only on a terminal, and not when `NO_COLOR` is set
/// to a non-empty value (<https://no-color.org>).
pub fn log_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The service's runtime: tokio's multi-threaded scheduler with its blocking pool (the hook
/// evaluations, SQLite calls) capped at [`blocking_threads`]. The evaluation is CPU-bound, so
/// threads beyond a few per core only queue in the kernel instead of in the pool; and with
/// mimalloc each thread keeps its own heap: tokio's default cap (512 threads, reached when
/// requests pile up under load) held 1.4 GB resident in a measured run.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads())
        .build()
}

/// Blocking threads at most: four per core, at least 16 (SQLite calls may wait on the store).
pub fn blocking_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (4 * cores).max(16)
}

/// File descriptors kept beyond `max_connections` (database, logs, outgoing FHIR calls).
const FD_RESERVE: u64 = 256;

/// `osteoguard serve`.
pub fn serve(args: ServeArgs) -> Result<(), ServeError> {
    init_tracing();
    let cfg = ServerConfig::load(&args, &|k| std::env::var(k).ok())?;
    // Room for every allowed connection plus the database, logs and outgoing FHIR calls.
    let wanted = cfg.max_connections as u64 + FD_RESERVE;
    match listener::raise_fd_limit(wanted) {
        Ok(n) if n < wanted => tracing::warn!(
            limit = n,
            wanted,
            "open-file limit below max_connections + reserve: lower --max-connections or raise `ulimit -n`"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    let rt = runtime().map_err(|e| ServeError::Setup(e.to_string()))?;
    rt.block_on(async move {
        if cfg.insecure_dev {
            tracing::warn!("INSECURE DEV MODE: requests are accepted without a signed JWT");
        }
        let (db, base) = (cfg.db.display().to_string(), cfg.discovery_url());
        let server = start(cfg, None).await?;
        tracing::info!(addr = %server.addr, db = %db, discovery = %base, "osteoguard CDS Hooks service listening");
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests");
        server.shutdown().await;
        Ok(())
    })
}

/// `osteoguard feedback-report`: acceptance and override rates per finding code.
pub fn feedback_report(args: FeedbackReportArgs) -> Result<(), ServeError> {
    let serve_args = ServeArgs {
        config: args.config.clone(),
        db: args.db.clone(),
        ..ServeArgs::default()
    };
    let cfg = ServerConfig::load(&serve_args, &|k| std::env::var(k).ok())?;
    if !cfg.db.exists() {
        return Err(ServeError::Setup(format!(
            "{}: no such database (run `osteoguard serve` first or pass --db)",
            cfg.db.display()
        )));
    }
    let store = store::Store::open(&cfg.db)?;
    let rows = store.report()?;
    let text = match args.format {
        ReportFormat::Json => serde_json::to_string_pretty(&json!({"findings": rows}))
            .map_err(|e| ServeError::Setup(e.to_string()))?,
        ReportFormat::Text => render_report(&rows),
    };
    println!("{text}");
    Ok(())
}

/// The text table of `feedback-report`.
pub fn render_report(rows: &[store::ReportRow]) -> String {
    let pct = |x: Option<f64>| x.map_or("—".to_string(), |v| format!("{:.0}%", v * 100.0));
    let mut s = format!(
        "{:<46} {:>7} {:>8} {:>8} {:>10} {:>8} {:>9}  top override reasons\n",
        "finding code", "cards", "feedback", "accepted", "overridden", "accept%", "override%"
    );
    for r in rows {
        let reasons: Vec<String> = r
            .override_reasons
            .iter()
            .take(3)
            .map(|(c, n)| format!("{c} ×{n}"))
            .collect();
        s.push_str(&format!(
            "{:<46} {:>7} {:>8} {:>8} {:>10} {:>8} {:>9}  {}\n",
            r.finding_code,
            r.cards_issued,
            r.feedback,
            r.accepted,
            r.overridden,
            pct(r.acceptance_rate),
            pct(r.override_rate),
            reasons.join(", ")
        ));
    }
    if rows.is_empty() {
        s.push_str("(no cards issued and no feedback yet)\n");
    }
    s
}
