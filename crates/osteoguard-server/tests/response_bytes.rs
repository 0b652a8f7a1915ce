//! The exact response bytes of the hook services, through the real HTTP service, compared with
//! snapshots written by the service as it was before the request path was rewritten (issue 19:
//! parse once into the reader's arena tree, serialise the cards directly). The snapshots in
//! `tests/snapshots/` were generated at `623e68d` (main before the change) with
//! `OSTEOGUARD_WRITE_SNAPSHOTS=1 cargo test -p osteoguard-server --test response_bytes`; any
//! byte that differs now is a change of behaviour.
//!
//! Covered: the seed case's patient-view at its four dates (complete prefetch), the same with
//! report links (a fixed base URL, the random token masked), and order-sign / order-select with a draft that has
//! neither `id` nor `subject` (the service supplies both before the what-if assessment).

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{json, Value};

const PV: &str = "/cds-services/osteoguard-patient-view";
const OSEL: &str = "/cds-services/osteoguard-order-select";
const OSIGN: &str = "/cds-services/osteoguard-order-sign";

fn snapshot_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(format!("{name}.json"))
}

/// Compares `got` with the snapshot `name` (or writes it when `OSTEOGUARD_WRITE_SNAPSHOTS=1`).
fn check_snapshot(name: &str, got: &[u8]) {
    let path = snapshot_path(name);
    if std::env::var_os("OSTEOGUARD_WRITE_SNAPSHOTS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != got {
        let at = want
            .iter()
            .zip(got)
            .position(|(a, b)| a != b)
            .unwrap_or(want.len().min(got.len()));
        let around = |b: &[u8]| {
            String::from_utf8_lossy(&b[at.saturating_sub(80)..(at + 80).min(b.len())]).into_owned()
        };
        panic!(
            "{name}: response differs from the snapshot at byte {at} (lengths {} / {}):\n  \
             snapshot: …{}…\n  now:      …{}…",
            want.len(),
            got.len(),
            around(&want),
            around(got)
        );
    }
}

/// POSTs `body` (serialised once, as a client would) with a valid token; status and raw bytes.
async fn post_raw(h: &Harness, path: &str, body: &Value) -> (u16, Vec<u8>) {
    let r = h
        .http
        .post(h.url(path))
        .bearer_auth(h.keys.token())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

/// `/reports/<64 hex digits>` → `/reports/TOKEN` (the token is random per request).
fn mask_tokens(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("/reports/") {
        let (head, tail) = rest.split_at(i + "/reports/".len());
        out.push_str(head);
        let token_len = tail.bytes().take_while(u8::is_ascii_hexdigit).count();
        assert_eq!(token_len, 64, "a report token: {}", &tail[..token_len]);
        out.push_str("TOKEN");
        rest = &tail[token_len..];
    }
    out.push_str(rest);
    out.into_bytes()
}

#[tokio::test]
async fn seed_patient_view_bytes_are_unchanged() {
    let h = start_with(|c| c.report_links = false).await;
    let prefetch = prefetch_from(&seed_resources());
    for date in ["2022-12-15", "2023-06-15", "2023-08-23", "2023-09-28"] {
        let (s, bytes) = post_raw(&h, PV, &patient_view("ku-73f", date, prefetch.clone())).await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&bytes));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(!v["cards"].as_array().unwrap().is_empty(), "{date}: cards");
        check_snapshot(&format!("seed-patient-view-{date}"), &bytes);
    }
    h.server.shutdown().await;
}

#[tokio::test]
async fn seed_patient_view_with_report_links_bytes_are_unchanged() {
    let h = start_with(|c| c.report_base_url = Some("https://cds.test".into())).await;
    let req = patient_view("ku-73f", "2023-06-15", prefetch_from(&seed_resources()));
    let (s, bytes) = post_raw(&h, PV, &req).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&bytes));
    let masked = mask_tokens(&bytes);
    assert_ne!(masked, bytes, "the cards link to a report");
    check_snapshot("seed-patient-view-links-2023-06-15", &masked);
    h.server.shutdown().await;
}

#[tokio::test]
async fn order_hook_bytes_are_unchanged() {
    let h = start_with(|c| c.report_links = false).await;
    let mut record = bundle_resources(&read_json(
        workspace().join("examples/example-7-dmab-due-renal.json"),
    ));
    let mut zol = record
        .iter()
        .find(|r| r["id"] == "ex7-zoledronate-order")
        .unwrap()
        .clone();
    record.retain(|r| r["id"] != "ex7-zoledronate-order");
    zol["status"] = json!("draft");
    let z = zol.as_object_mut().unwrap();
    for k in ["id", "subject", "authoredOn"] {
        z.remove(k);
    }
    let entry = json!([{"resource": zol}]);
    for (hook, path) in [("order-sign", OSIGN), ("order-select", OSEL)] {
        let mut ctx = json!({"userId": "PractitionerRole/123", "patientId": "example-7",
            "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": entry}});
        if hook == "order-select" {
            ctx["selections"] = json!(["MedicationRequest/draft-0"]);
        }
        let req = json!({"hook": hook, "hookInstance": "f3b4", "context": ctx,
            "prefetch": prefetch_from(&record), "extension": {"osteoguard.asOf": "2024-09-20"}});
        let (s, bytes) = post_raw(&h, path, &req).await;
        assert_eq!(s, 200, "{}", String::from_utf8_lossy(&bytes));
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(!v["cards"].as_array().unwrap().is_empty(), "{hook}: cards");
        check_snapshot(&format!("example-7-{hook}-draft-without-id"), &bytes);
    }
    h.server.shutdown().await;
}
