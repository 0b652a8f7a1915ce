//! What an operator runs by hand: `serve --insecure-dev --cors-origin ...` with no configuration
//! file, README's curl request (`examples/patient-view-request.json`, generated here so it never
//! drifts), and log colouring.

mod common;

use std::ffi::OsStr;

use common::*;
use osteoguard_server::{ServeArgs, ServerConfig};
use serde_json::Value;

const PV: &str = "/cds-services/osteoguard-patient-view";
const SANDBOX: &str = "https://sandbox.cds-hooks.org";

/// `osteoguard serve --insecure-dev --port 0 --db DIR/x.db [--cors-origin ...]`, as parsed.
fn dev_args(dir: &std::path::Path, cors: &[&str]) -> ServeArgs {
    ServeArgs {
        config: None,
        port: Some(0),
        db: Some(dir.join("dev.db")),
        insecure_dev: true,
        cors_origins: cors.iter().map(|s| s.to_string()).collect(),
        ..ServeArgs::default()
    }
}

async fn preflight(addr: std::net::SocketAddr, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("http://{addr}{PV}"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn cors_origin_flag_lets_a_sandbox_preflight_succeed_without_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let no_env = |_: &str| None;
    // With the flag: the listed origin's pre-flight succeeds, another origin gets no CORS grant.
    let cfg = ServerConfig::load(&dev_args(dir.path(), &[SANDBOX]), &no_env).unwrap();
    assert_eq!(cfg.cors_origins, vec![SANDBOX.to_string()]);
    let s = osteoguard_server::start(cfg, None).await.unwrap();
    let r = preflight(s.addr, SANDBOX).await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers().get("access-control-allow-origin").unwrap(),
        SANDBOX
    );
    let methods = r
        .headers()
        .get("access-control-allow-methods")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(methods.contains("POST"), "{methods}");
    let other = preflight(s.addr, "https://evil.example").await;
    assert!(other.headers().get("access-control-allow-origin").is_none());
    s.shutdown().await;

    // Without it (and no configuration) there is no CORS at all: what the flag is for.
    let dir2 = tempfile::tempdir().unwrap();
    let cfg = ServerConfig::load(&dev_args(dir2.path(), &[]), &no_env).unwrap();
    assert!(cfg.cors_origins.is_empty());
    let s = osteoguard_server::start(cfg, None).await.unwrap();
    let r = preflight(s.addr, SANDBOX).await;
    assert!(r.headers().get("access-control-allow-origin").is_none());
    s.shutdown().await;
}

#[test]
fn cors_origin_flags_replace_the_configured_and_environment_origins() {
    let dir = tempfile::tempdir().unwrap();
    let env = |k: &str| (k == "OSTEOGUARD_CORS_ORIGINS").then(|| "https://a.test".to_string());
    let cfg = ServerConfig::load(&dev_args(dir.path(), &[]), &env).unwrap();
    assert_eq!(cfg.cors_origins, vec!["https://a.test".to_string()]);
    let cfg = ServerConfig::load(
        &dev_args(dir.path(), &["https://b.test", "https://c.test"]),
        &env,
    )
    .unwrap();
    assert_eq!(
        cfg.cors_origins,
        vec!["https://b.test".to_string(), "https://c.test".to_string()]
    );
}

#[test]
fn log_colour_only_on_a_terminal_without_no_color() {
    use osteoguard_server::log_colour;
    assert!(log_colour(true, None));
    assert!(
        log_colour(true, Some(OsStr::new(""))),
        "empty NO_COLOR is unset"
    );
    assert!(!log_colour(true, Some(OsStr::new("1"))));
    assert!(!log_colour(false, None));
    assert!(!log_colour(false, Some(OsStr::new("1"))));
}

/// README's and docs/cds-hooks.md's curl example posts `examples/patient-view-request.json`:
/// the seed case as a complete prefetch, as of 2023-06-15. Regenerated here from the seed case
/// with the same builder the other tests use; if the file differs it is rewritten and the test
/// fails (commit the new file).
#[tokio::test]
async fn example_patient_view_request_is_current_and_gives_the_critical_card() {
    let request = patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources()));
    let text = format!("{}\n", serde_json::to_string_pretty(&request).unwrap());
    let path = workspace().join("examples/patient-view-request.json");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != text {
        std::fs::write(&path, &text).unwrap();
        panic!(
            "{} was out of date and has been regenerated: commit it",
            path.display()
        );
    }
    // And it does what the README says, on a dev server as started there.
    let dir = tempfile::tempdir().unwrap();
    let cfg = ServerConfig::load(&dev_args(dir.path(), &[]), &|_| None).unwrap();
    let s = osteoguard_server::start(cfg, None).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}{PV}", s.addr))
        .header("Content-Type", "application/json")
        .body(on_disk)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    check_response(&body).unwrap();
    assert_eq!(body["cards"][0]["indicator"], "critical", "{body:#}");
    assert!(card_codes(&body)
        .iter()
        .any(|c| c == "denosumab-discontinuation-without-transition"));
    s.shutdown().await;
}
