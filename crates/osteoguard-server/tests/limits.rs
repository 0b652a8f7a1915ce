//! Connection and load limits against the real server on loopback: header and idle timeouts,
//! the connection cap (idle connections make room, busy ones shed 503 + Retry-After), the
//! in-flight cap, and a request still answered while 2,000 idle or partial-header connections
//! are held (slowloris). Every wait is bounded; the bounds are liveness limits, not benchmarks.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PV: &str = "/cds-services/osteoguard-patient-view";
/// Upper bound for anything the server should do "soon" (a close, a shed answer).
const BOUND: Duration = Duration::from_secs(10);

/// Reads until the peer closes (EOF or reset); `None` if it is still open after [`BOUND`].
async fn read_until_closed(s: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let r = tokio::time::timeout(BOUND, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    r.ok().map(|_| String::from_utf8_lossy(&out).into_owned())
}

/// Waits (bounded) until the loopback FHIR server has seen a request naming each patient.
async fn wait_for_fhir_calls(fhir: &FhirServer, patients: &[&str]) {
    tokio::time::timeout(BOUND, async {
        loop {
            let seen = fhir.requests();
            if patients
                .iter()
                .all(|p| seen.iter().any(|r| r.ends_with(&format!("/Patient/{p}"))))
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the slow requests reached the FHIR server");
}

/// Sends `body` from `http` in a task; the status (0 if the request failed).
fn spawn_call(h: &Harness, http: &reqwest::Client, body: Value) -> tokio::task::JoinHandle<u16> {
    let (http, url, token) = (http.clone(), h.url(PV), h.keys.token());
    tokio::spawn(async move {
        http.post(url)
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

#[tokio::test]
async fn partial_header_connection_is_closed_after_the_header_timeout() {
    let h = start_with(|c| {
        c.header_timeout_ms = 300;
        c.idle_timeout_ms = 600_000;
    })
    .await;
    // Trickle a request head one byte at a time and never finish it: every byte is activity,
    // so only the header timeout can close the connection.
    let head = format!(
        "POST {PV} HTTP/1.1\r\nHost: cds.test\r\nX-Padding: {}",
        "a".repeat(10_000)
    );
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    let mut sent = 0;
    let closed = tokio::time::timeout(BOUND, async {
        for b in head.as_bytes() {
            if s.write_all(&[*b]).await.is_err() {
                return true;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
            let mut buf = [0u8; 512];
            match tokio::time::timeout(Duration::from_millis(1), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                _ => {}
            }
        }
        false
    })
    .await;
    assert_eq!(closed, Ok(true), "the trickling connection was closed");
    assert!(sent < head.len(), "closed before the head was complete");

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(h.server.addr).await.unwrap();
    assert!(read_until_closed(&mut silent).await.is_some());

    // The service itself is unaffected.
    let (status, body) = h.call(PV, &nobody_request()).await;
    assert_eq!(status, 200, "{body}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let h = start_with(|c| {
        c.header_timeout_ms = 600_000;
        c.idle_timeout_ms = 300;
    })
    .await;
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: cds.test\r\n\r\n")
        .await
        .unwrap();
    // The answer arrives and then, the connection staying silent, the server closes it.
    let all = read_until_closed(&mut s)
        .await
        .expect("idle keep-alive connection closed");
    assert!(all.starts_with("HTTP/1.1 200"), "{all}");
    assert!(all.contains("\"ok\""), "{all}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn above_the_in_flight_cap_a_request_gets_503_with_retry_after() {
    let fhir = start_fhir(fhir_corpus(), 50).await;
    let h = start_with(|c| {
        c.max_in_flight = 1;
        c.fhir_timeout_ms = 5_000;
    })
    .await;
    // One request waits on the slow FHIR server (3 s) and holds the only slot.
    let slow = spawn_call(&h, &h.http, fetch_all_request("ku-73f", fhir.url("slow")));
    wait_for_fhir_calls(&fhir, &["ku-73f"]).await;

    let r = h.send(PV, &nobody_request()).await;
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers().get("retry-after").unwrap(), "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "overloaded", "{v}");
    assert!(v.get("cards").is_none(), "a refusal carries no cards");

    assert_eq!(slow.await.unwrap(), 200, "the request in flight completes");
    let (status, body) = h.call(PV, &nobody_request()).await;
    assert_eq!(status, 200, "the slot is free again: {body}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_cap_idle_connections_make_room_and_busy_ones_shed() {
    let fhir = start_fhir(fhir_corpus(), 50).await;
    let h = start_with(|c| {
        c.max_connections = 2;
        c.fhir_timeout_ms = 5_000;
    })
    .await;
    // Two idle connections fill the cap; a new request closes the idler one and is served.
    let mut idle1 = TcpStream::connect(h.server.addr).await.unwrap();
    let _idle2 = TcpStream::connect(h.server.addr).await.unwrap();
    let (status, body) = h.call(PV, &nobody_request()).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        read_until_closed(&mut idle1).await.is_some(),
        "the longest-idle connection was closed to make room"
    );

    // Two requests in flight fill the cap with busy connections: a third connection is
    // answered 503 + Retry-After at once and closed.
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut pending = Vec::new();
    for p in ["ku-73f", "example-7"] {
        pending.push(spawn_call(
            &h,
            &http,
            fetch_all_request(p, fhir.url("slow")),
        ));
    }
    wait_for_fhir_calls(&fhir, &["ku-73f", "example-7"]).await;
    let mut s = TcpStream::connect(h.server.addr).await.unwrap();
    let _ = s
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: cds.test\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut s).await.expect("shed and closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"overloaded\""), "{answer}");
    for p in pending {
        assert_eq!(p.await.unwrap(), 200);
    }
    h.server.shutdown().await;
}

/// Slowloris: 2,000 connections held open (half silent, half with a partial request head) and a
/// normal signed request is still answered within 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_answered_while_2000_idle_connections_are_held() {
    // Both ends of every connection live in this process: 2 descriptors each plus a reserve.
    let wanted_conns: u64 = 2_000;
    let limit = osteoguard_server::listener::raise_fd_limit(wanted_conns * 2 + 256).unwrap_or(1024);
    let conns = wanted_conns.min(limit.saturating_sub(256) / 2) as usize;
    if conns < wanted_conns as usize {
        eprintln!("open-file limit {limit}: holding {conns} connections instead of 2,000");
    }
    let h = start().await;
    let mut held = Vec::with_capacity(conns);
    for i in 0..conns {
        let mut s = TcpStream::connect(h.server.addr).await.unwrap();
        if i % 2 == 1 {
            let _ = s
                .write_all(format!("POST {PV} HTTP/1.1\r\nHost: cds.test\r\n").as_bytes())
                .await;
        }
        held.push(s);
    }
    let answered =
        tokio::time::timeout(Duration::from_secs(1), h.call(PV, &nobody_request())).await;
    let (status, body) = answered.expect("answered within 1 s while the connections are held");
    assert_eq!(status, 200, "{body}");
    check_response(&body).unwrap();
    drop(held);
    h.server.shutdown().await;
}
