//! `GET /metrics`: the service's counters in the Prometheus text exposition format (the
//! `prometheus` crate's registry and encoder). See docs/operations.md for the series.
//!
//! One registry per process (what a scrape of the process should see). Every label takes values
//! from a small fixed set (service ids, endpoint names, HTTP status codes, card indicators,
//! feedback outcomes, JWT rejection reasons), never from request data, so the number of series
//! stays bounded whatever clients send. No patient data is ever a label.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

use crate::discovery;

struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    cards: IntCounterVec,
    feedback: IntCounterVec,
    jwt_rejections: IntCounterVec,
}

/// Request-duration histogram buckets, seconds (from a fast prefetch-only call to a slow FHIR
/// fetch near the request timeout).
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let registry = Registry::new_custom(Some("osteoguard".into()), None)
            .unwrap_or_else(|_| Registry::new());
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)
                .unwrap_or_else(|e| unreachable_metric(name, &e));
            // Registration fails only for a duplicate name, which these fixed names are not.
            let _ = registry.register(Box::new(c.clone()));
            c
        };
        let requests = counter(
            "http_requests_total",
            "HTTP requests answered, by CDS service, endpoint and status code.",
            &["service", "endpoint", "status"],
        );
        let cards = counter(
            "cds_cards_total",
            "CDS cards returned, by CDS service and card indicator.",
            &["service", "indicator"],
        );
        let feedback = counter(
            "cds_feedback_total",
            "Feedback items stored, by CDS service and outcome.",
            &["service", "outcome"],
        );
        let jwt_rejections = counter(
            "jwt_rejections_total",
            "Requests refused by JWT verification, by reason.",
            &["reason"],
        );
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by CDS service, endpoint and status code.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["service", "endpoint", "status"],
        )
        .unwrap_or_else(|e| unreachable_metric("http_request_duration_seconds", &e));
        let _ = registry.register(Box::new(latency.clone()));
        Metrics {
            registry,
            requests,
            latency,
            cards,
            feedback,
            jwt_rejections,
        }
    })
}

/// The metric definitions above are constants; `prometheus` rejects only invalid names or label
/// sets, which a test (`metrics_are_exposed`) would catch at once.
fn unreachable_metric(name: &str, e: &prometheus::Error) -> ! {
    panic!("metric {name} is invalid: {e}")
}

/// `(service, endpoint)` labels of a request path; unknown paths and services collapse to fixed
/// values so clients cannot create series.
pub fn route_labels(path: &str) -> (&'static str, &'static str) {
    let service = |id: &str| discovery::service(id).map_or("unknown", |s| s.id);
    match path.trim_end_matches('/') {
        "/cds-services" => ("-", "discovery"),
        "/healthz" => ("-", "healthz"),
        "/metrics" => ("-", "metrics"),
        p => match p.strip_prefix("/cds-services/") {
            Some(rest) => match rest.split_once('/') {
                None => (service(rest), "hook"),
                Some((id, "feedback")) => (service(id), "feedback"),
                Some(_) => ("-", "other"),
            },
            None => ("-", "other"),
        },
    }
}

/// Middleware (outermost but tracing): counts every answered request and observes its duration
/// up to the response head (bodies are buffered JSON).
pub async fn track(req: Request, next: Next) -> Response {
    let (service, endpoint) = route_labels(req.uri().path());
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let m = metrics();
    let labels = [service, endpoint, status.as_str()];
    m.requests.with_label_values(&labels).inc();
    m.latency
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    res
}

/// Cards returned by a hook call, by indicator (`info`, `warning`, `critical`).
pub fn cards_returned<'a>(service: &str, indicators: impl Iterator<Item = &'a str>) {
    let m = metrics();
    for indicator in indicators {
        let indicator = Some(indicator)
            .filter(|i| matches!(*i, "info" | "warning" | "critical"))
            .unwrap_or("other");
        m.cards.with_label_values(&[service, indicator]).inc();
    }
}

/// Outcomes of a feedback post (`accepted` / `overridden`; parsing refuses anything else).
pub fn feedback_outcomes<'a>(outcomes: impl Iterator<Item = &'a str>) -> [u64; 2] {
    let mut n = [0u64; 2];
    for o in outcomes {
        match o {
            "accepted" => n[0] += 1,
            _ => n[1] += 1,
        }
    }
    n
}

/// Feedback items stored (counted once the store has accepted the post).
pub fn feedback_stored(service: &str, [accepted, overridden]: [u64; 2]) {
    let m = metrics();
    m.feedback
        .with_label_values(&[service, "accepted"])
        .inc_by(accepted);
    m.feedback
        .with_label_values(&[service, "overridden"])
        .inc_by(overridden);
}

/// A request refused by JWT verification (`reason` = `AuthError::code`).
pub fn jwt_rejected(reason: &'static str) {
    metrics().jwt_rejections.with_label_values(&[reason]).inc();
}

/// The exposition text of every series.
pub fn render() -> Result<String, prometheus::Error> {
    let mut buf = Vec::new();
    TextEncoder::new().encode(&metrics().registry.gather(), &mut buf)?;
    String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
}

/// `GET /metrics`.
pub async fn handler() -> Response {
    match render() {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(
            route_labels("/cds-services/osteoguard-patient-view"),
            ("osteoguard-patient-view", "hook")
        );
        assert_eq!(
            route_labels("/cds-services/osteoguard-order-sign/feedback"),
            ("osteoguard-order-sign", "feedback")
        );
        assert_eq!(route_labels("/cds-services/x-y-z"), ("unknown", "hook"));
        assert_eq!(route_labels("/cds-services"), ("-", "discovery"));
        assert_eq!(route_labels("/metrics"), ("-", "metrics"));
        assert_eq!(route_labels("/anything/else"), ("-", "other"));
        assert_eq!(route_labels("/cds-services/a/b/c"), ("-", "other"));
    }

    #[test]
    fn feedback_outcomes_are_counted() {
        let n = feedback_outcomes(["accepted", "overridden", "accepted"].into_iter());
        assert_eq!(n, [2, 1]);
    }
}
