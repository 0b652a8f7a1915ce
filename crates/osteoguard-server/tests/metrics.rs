//! `GET /metrics` on the real server (loopback, signed JWTs, real SQLite): the Prometheus text
//! format with request counts and latency histograms by service and status, cards by indicator,
//! feedback by outcome and JWT rejections by reason. The registry is per process and tests in
//! this binary run in parallel, so each check compares a series before and after its own calls.

mod common;

use common::*;

const PV: &str = "/cds-services/osteoguard-patient-view";

/// The value of the series `name{labels}` (labels in the exposition's sorted order), 0 if absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse::<f64>().ok())?
        })
        .unwrap_or(0.0)
}

async fn scrape(h: &Harness) -> String {
    let r = h.http.get(h.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let ct = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.unwrap()
}

#[tokio::test]
async fn metrics_are_exposed() {
    let h = start().await;
    let before = scrape(&h).await;
    let req = patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources()));

    // One answered hook call: a 200, its cards by indicator.
    let (status, body) = h.call(PV, &req).await;
    assert_eq!(status, 200, "{body}");
    let critical = body["cards"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["indicator"] == "critical")
        .count() as f64;
    assert!(critical >= 1.0);
    // Two refusals: no token, and a token that is not a JWT.
    assert_eq!(h.post(PV, None, &req).await.0, 401);
    assert_eq!(h.post(PV, Some("not.a.jwt"), &req).await.0, 401);
    // Feedback: one accepted item on a card just issued.
    let fb = serde_json::json!({"feedback": [{"card": body["cards"][0]["uuid"],
        "outcome": "accepted", "outcomeTimestamp": "2023-06-15T10:00:00Z"}]});
    let (fs, fbody) = h
        .call("/cds-services/osteoguard-patient-view/feedback", &fb)
        .await;
    assert_eq!(fs, 200, "{fbody}");

    let after = scrape(&h).await;
    let delta = |series: &str| sample(&after, series) - sample(&before, series);
    let ok = r#"endpoint="hook",service="osteoguard-patient-view",status="200""#;
    assert!(delta(&format!("osteoguard_http_requests_total{{{ok}}}")) >= 1.0);
    assert!(
        delta(&format!(
            "osteoguard_http_requests_total{{{}}}",
            r#"endpoint="hook",service="osteoguard-patient-view",status="401""#
        )) >= 2.0
    );
    // The histogram: a count and +Inf bucket for the 200s, and seconds summed.
    assert!(
        delta(&format!(
            "osteoguard_http_request_duration_seconds_count{{{ok}}}"
        )) >= 1.0
    );
    assert!(
        delta(&format!(
            "osteoguard_http_request_duration_seconds_bucket{{{ok},le=\"+Inf\"}}"
        )) >= 1.0
    );
    assert!(
        sample(
            &after,
            &format!("osteoguard_http_request_duration_seconds_sum{{{ok}}}")
        ) > 0.0
    );
    assert!(
        delta(
            r#"osteoguard_cds_cards_total{indicator="critical",service="osteoguard-patient-view"}"#
        ) >= critical
    );
    assert!(
        delta(
            r#"osteoguard_cds_feedback_total{outcome="accepted",service="osteoguard-patient-view"}"#
        ) >= 1.0
    );
    assert!(delta(r#"osteoguard_jwt_rejections_total{reason="missing"}"#) >= 1.0);
    assert!(delta(r#"osteoguard_jwt_rejections_total{reason="malformed"}"#) >= 1.0);
    // Every series is documented with HELP and TYPE.
    for name in [
        "osteoguard_http_requests_total",
        "osteoguard_http_request_duration_seconds",
        "osteoguard_cds_cards_total",
        "osteoguard_cds_feedback_total",
        "osteoguard_jwt_rejections_total",
    ] {
        assert!(after.contains(&format!("# HELP {name} ")), "{name}");
        assert!(after.contains(&format!("# TYPE {name} ")), "{name}");
    }
    // No patient data in the metrics.
    assert!(!after.contains("ku-73f"));
}

#[tokio::test]
async fn unknown_paths_do_not_create_series() {
    let h = start().await;
    for i in 0..5 {
        let r = h
            .http
            .get(h.url(&format!("/no-such-thing-{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let text = scrape(&h).await;
    assert!(!text.contains("no-such-thing"));
    assert!(
        sample(
            &text,
            r#"osteoguard_http_requests_total{endpoint="other",service="-",status="404"}"#
        ) >= 5.0
    );
}
