//! Protocol and messages, against the real server on loopback: `Content-Type` (415), the
//! documented JSON error body on 404 / 405 / 408 / 413, bounded messages, and start-up errors
//! that name the path once (no repeated cause).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PV: &str = "/cds-services/osteoguard-patient-view";
const FB: &str = "/cds-services/osteoguard-patient-view/feedback";

/// Asserts the documented error body `{"error": code, "message": …}` and returns the message.
async fn error_body(r: reqwest::Response, status: u16, code: &str) -> String {
    assert_eq!(r.status().as_u16(), status);
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(ct.starts_with("application/json"), "content-type {ct:?}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], code, "{v}");
    let m = v["message"].as_str().unwrap_or_default().to_string();
    assert!(!m.is_empty(), "{v}");
    m
}

#[tokio::test]
async fn post_bodies_must_be_json_else_415() {
    let h = start().await;
    let body = nobody_request().to_string();
    for (path, ct) in [
        (PV, Some("text/plain")),
        (PV, Some("application/x-www-form-urlencoded")),
        (PV, None),
        (FB, Some("text/plain")),
    ] {
        let mut r = h
            .http
            .post(h.url(path))
            .bearer_auth(h.keys.token())
            .body(body.clone());
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        let m = error_body(r.send().await.unwrap(), 415, "unsupported-media-type").await;
        assert!(m.contains("application/json"), "{m}");
        assert!(m.contains(ct.unwrap_or("no Content-Type")), "{m}");
    }
    // JSON with parameters, and a +json type, are accepted.
    for ct in ["application/json; charset=utf-8", "application/fhir+json"] {
        let r = h
            .http
            .post(h.url(PV))
            .bearer_auth(h.keys.token())
            .header("content-type", ct)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{ct}");
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn not_found_and_method_not_allowed_answer_the_json_error_body() {
    let h = start().await;
    let r = h.http.get(h.url("/no/such/path")).send().await.unwrap();
    error_body(r, 404, "not-found").await;
    // An unknown service keeps its own code.
    let (s, v) = h.call("/cds-services/nope", &nobody_request()).await;
    assert_eq!((s, v["error"].as_str()), (404, Some("unknown-service")));

    let r = h.http.get(h.url(PV)).send().await.unwrap();
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(allow.contains("POST"), "Allow: {allow:?}");
    error_body(r, 405, "method-not-allowed").await;
    let r = h.http.delete(h.url("/cds-services")).send().await.unwrap();
    error_body(r, 405, "method-not-allowed").await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn too_large_bodies_answer_413_with_the_json_error_body() {
    let h = start_with(|c| c.body_limit_bytes = 10_000).await;
    let mut req = nobody_request();
    req["context"]["padding"] = json!("x".repeat(20_000));
    // Declared length over the limit.
    let r = h.send(PV, &req).await;
    let m = error_body(r, 413, "payload-too-large").await;
    assert!(m.contains("10000"), "{m}");

    // Chunked (no declared length): the limit is hit while reading.
    let body = req.to_string();
    let mut s = tokio::net::TcpStream::connect(h.server.addr).await.unwrap();
    let head = format!(
        "POST {PV} HTTP/1.1\r\nHost: cds.test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        h.keys.token()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    for chunk in body.as_bytes().chunks(4096) {
        let framed = [
            format!("{:x}\r\n", chunk.len()).as_bytes(),
            chunk,
            b"\r\n".as_slice(),
        ]
        .concat();
        if s.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = s.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"payload-too-large\""), "{answer}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn a_request_timeout_answers_408_with_the_json_error_body() {
    let fhir = start_fhir(fhir_corpus(), 50).await;
    let h = start_with(|c| {
        c.request_timeout_ms = 300;
        c.fhir_timeout_ms = 5_000;
    })
    .await;
    let req = fetch_all_request("ku-73f", fhir.url("slow"));
    let r = h.send(PV, &req).await;
    error_body(r, 408, "request-timeout").await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn messages_are_bounded() {
    let h = start_with(|c| c.body_limit_bytes = 32 * 1024 * 1024).await;
    let mut req = nobody_request();
    req["hook"] = json!("h".repeat(10 * 1024 * 1024));
    let (s, v) = h.call(PV, &req).await;
    assert_eq!(s, 400, "{}", v.to_string().len());
    let m = v["message"].as_str().unwrap();
    assert!(m.contains("patient-view"), "{m}");
    assert!(m.len() < 1024, "message of {} bytes", m.len());
    // A bad content type of 100 kB is not echoed either.
    let r = h
        .http
        .post(h.url(PV))
        .bearer_auth(h.keys.token())
        .header("content-type", format!("text/{}", "p".repeat(100_000)))
        .body(nobody_request().to_string())
        .send()
        .await
        .unwrap();
    let m = error_body(r, 415, "unsupported-media-type").await;
    assert!(m.len() < 1024, "message of {} bytes", m.len());
    h.server.shutdown().await;
}

/// The error chain as `osteoguard` prints it (`{:#}` of an anyhow error).
fn printed(e: osteoguard_server::ServeError) -> String {
    format!("{:#}", anyhow::anyhow!(e))
}

/// No `: `-separated part of the message appears twice in a row.
fn assert_no_repeat(m: &str) {
    let parts: Vec<&str> = m.split(": ").collect();
    for w in parts.windows(2) {
        assert_ne!(w[0], w[1], "repeated cause in {m:?}");
    }
    for p in &parts {
        assert!(
            m.matches(p).count() == 1 || p.len() < 12,
            "{p:?} repeated in {m:?}"
        );
    }
}

#[tokio::test]
async fn an_unusable_db_path_is_named_once_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let keys = shared_keys();
    // A directory that does not exist.
    let mut cfg = base_config(dir.path(), &keys);
    cfg.db = dir.path().join("no-such-dir").join("cds.db");
    let m = printed(osteoguard_server::start(cfg, None).await.err().unwrap());
    assert!(
        m.contains(&dir.path().join("no-such-dir/cds.db").display().to_string()),
        "{m}"
    );
    assert!(m.contains("No such file or directory"), "{m}");
    assert_no_repeat(&m);

    // A path that is a directory.
    let mut cfg = base_config(dir.path(), &keys);
    cfg.db = dir.path().to_path_buf();
    let m = printed(osteoguard_server::start(cfg, None).await.err().unwrap());
    assert!(m.contains(&dir.path().display().to_string()), "{m}");
    assert_no_repeat(&m);

    // A file system this process cannot write (sysfs refuses new files, even to root).
    let ro = std::path::Path::new("/sys/osteoguard-test.db");
    if std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(ro)
        .is_err()
    {
        let mut cfg = base_config(dir.path(), &keys);
        cfg.db = ro.to_path_buf();
        let m = printed(osteoguard_server::start(cfg, None).await.err().unwrap());
        assert!(m.contains("/sys/osteoguard-test.db"), "{m}");
        assert_no_repeat(&m);
    } else {
        eprintln!("/sys is writable here: the read-only case is not exercised");
    }

    // An unreadable configuration file is named once too.
    let args = osteoguard_server::ServeArgs {
        config: Some(dir.path().join("missing.toml")),
        ..Default::default()
    };
    let e = osteoguard_server::ServerConfig::load(&args, &|_| None).unwrap_err();
    let m = format!("{:#}", anyhow::anyhow!(e));
    assert!(m.contains("missing.toml"), "{m}");
    assert_no_repeat(&m);
}
