//! JWT verification and the other transport protections, against the real server on a
//! loopback port with keys generated here and a real SQLite replay store.

mod common;

use common::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const PV: &str = "/cds-services/osteoguard-patient-view";

fn request() -> Value {
    // Nothing to fetch: a complete prefetch of a patient with no other data.
    patient_view(
        "nobody",
        "2023-06-15",
        prefetch_from(&[
            json!({"resourceType": "Patient", "id": "nobody", "gender": "female", "birthDate": "1950-01-01"}),
        ]),
    )
}

async fn expect_401(h: &Harness, token: Option<&str>, why: &str) -> Value {
    let (status, body) = h.post(PV, token, &request()).await;
    assert_eq!(status, 401, "{why}: {body}");
    assert_eq!(body["error"], "unauthorized", "{why}");
    assert!(
        body.get("cards").is_none(),
        "{why}: a rejection carries no cards"
    );
    body
}

#[tokio::test]
async fn valid_es384_and_rs384_tokens_are_accepted() {
    let h = start().await;
    let (s, b) = h.post(PV, Some(&h.keys.token()), &request()).await;
    assert_eq!(s, 200, "{b}");
    check_response(&b).unwrap();
    let t = sign(Algorithm::RS384, "rsa-1", &h.keys.rsa, &claims());
    let (s, b) = h.post(PV, Some(&t), &request()).await;
    assert_eq!(s, 200, "{b}");
    // An audience naming the exact service endpoint is also accepted.
    let mut c = claims();
    c["aud"] = json!(format!("{AUD}/osteoguard-patient-view"));
    let (s, _) = h
        .post(
            PV,
            Some(&sign(Algorithm::ES384, "ec-1", &h.keys.ec, &c)),
            &request(),
        )
        .await;
    assert_eq!(s, 200);
    h.server.shutdown().await;
}

#[tokio::test]
async fn missing_and_malformed_tokens_are_rejected() {
    let h = start().await;
    let b = expect_401(&h, None, "no Authorization header").await;
    assert!(b["message"].as_str().unwrap().contains("missing"));
    expect_401(&h, Some("not-a-jwt"), "garbage").await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn alg_none_is_rejected() {
    let h = start().await;
    let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let body = b64(claims().to_string().as_bytes());
    let b = expect_401(&h, Some(&format!("{header}.{body}.")), "alg none").await;
    assert!(b["message"].as_str().unwrap().contains("none"), "{b}");
    h.server.shutdown().await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_rejected() {
    let h = start().await;
    // The algorithm-confusion attack: HMAC keyed with the (public) EC key bytes and the JWK text.
    for secret in [
        h.keys.ec_public.clone(),
        h.keys.ec_jwk.to_string().into_bytes(),
    ] {
        let mut hd = Header::new(Algorithm::HS256);
        hd.kid = Some("ec-1".into());
        let t = jsonwebtoken::encode(&hd, &claims(), &EncodingKey::from_secret(&secret)).unwrap();
        let b = expect_401(&h, Some(&t), "HS256 with public key").await;
        assert!(b["message"].as_str().unwrap().contains("HS256"), "{b}");
    }
    let mut hd = Header::new(Algorithm::HS384);
    hd.kid = Some("ec-1".into());
    let t = jsonwebtoken::encode(&hd, &claims(), &EncodingKey::from_secret(b"x")).unwrap();
    expect_401(&h, Some(&t), "HS384").await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_rejected() {
    let h = start().await;
    let n = now();
    let mut c = claims();
    c["iat"] = json!(n - 1000);
    c["exp"] = json!(n - 600);
    let b = expect_401(
        &h,
        Some(&sign(Algorithm::ES384, "ec-1", &h.keys.ec, &c)),
        "expired",
    )
    .await;
    assert!(b["message"].as_str().unwrap().contains("expired"));

    let mut c = claims();
    c["nbf"] = json!(n + 600);
    c["exp"] = json!(n + 900);
    let b = expect_401(
        &h,
        Some(&sign(Algorithm::ES384, "ec-1", &h.keys.ec, &c)),
        "nbf in future",
    )
    .await;
    assert!(b["message"].as_str().unwrap().contains("not yet valid"));

    let mut c = claims();
    c["iat"] = json!(n + 600);
    c["exp"] = json!(n + 900);
    expect_401(
        &h,
        Some(&sign(Algorithm::ES384, "ec-1", &h.keys.ec, &c)),
        "iat in future",
    )
    .await;
    h.server.shutdown().await;
}

#[tokio::test]
async fn wrong_audience_and_unknown_issuer_are_rejected() {
    let h = start().await;
    let mut c = claims();
    c["aud"] = json!("https://other.example.org/cds-services");
    let b = expect_401(
        &h,
        Some(&sign(Algorithm::ES384, "ec-1", &h.keys.ec, &c)),
        "aud",
    )
    .await;
    assert!(b["message"].as_str().unwrap().contains("audience"));

    let mut c = claims();
    c["iss"] = json!("https://evil.example.org");
    let b = expect_401(
        &h,
        Some(&sign(Algorithm::ES384, "ec-1", &h.keys.ec, &c)),
        "iss",
    )
    .await;
    assert!(b["message"].as_str().unwrap().contains("issuer"));
    h.server.shutdown().await;
}

#[tokio::test]
async fn replayed_jti_is_rejected() {
    let h = start().await;
    let t = h.keys.token();
    let (s, _) = h.post(PV, Some(&t), &request()).await;
    assert_eq!(s, 200);
    let b = expect_401(&h, Some(&t), "replay").await;
    assert!(b["message"].as_str().unwrap().contains("jti"));
    // The replay cache is the SQLite file itself.
    let conn = rusqlite::Connection::open(h.db()).unwrap();
    let n: i64 = conn
        .query_row("SELECT COUNT(*) FROM jwt_replay", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1);
    h.server.shutdown().await;
}

#[tokio::test]
async fn missing_claims_bad_signature_and_unknown_key_are_rejected() {
    let h = start().await;
    for claim in ["jti", "sub", "iat", "aud", "exp"] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(claim);
        expect_401(
            &h,
            Some(&sign(Algorithm::ES384, "ec-1", &h.keys.ec, &c)),
            claim,
        )
        .await;
    }
    // Signed by a key the issuer never published, under the published kid.
    let (other, _, _) = ec_key("ec-1");
    expect_401(
        &h,
        Some(&sign(Algorithm::ES384, "ec-1", &other, &claims())),
        "bad signature",
    )
    .await;
    let (other, _, _) = ec_key("ec-unknown");
    let b = expect_401(
        &h,
        Some(&sign(Algorithm::ES384, "ec-unknown", &other, &claims())),
        "kid",
    )
    .await;
    assert!(b["message"].as_str().unwrap().contains("key"));
    h.server.shutdown().await;
}

#[tokio::test]
async fn jku_is_used_only_from_the_allow_list() {
    // A JWKS host on loopback publishing a second key.
    let (k2, jwk2, _) = ec_key("ec-jku");
    let jwks = json!({"keys": [jwk2]});
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let j = jwks.clone();
            async move { axum::Json(j) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jku = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let allowed = jku.clone();
    let h = start_with(move |c| c.jku_allow_list = vec![allowed]).await;
    let mut hd = Header::new(Algorithm::ES384);
    hd.kid = Some("ec-jku".into());
    hd.jku = Some(jku.clone());
    let t = jsonwebtoken::encode(&hd, &claims(), &k2).unwrap();
    let (s, b) = h.post(PV, Some(&t), &request()).await;
    assert_eq!(s, 200, "allow-listed jku: {b}");

    hd.jku = Some(format!("{jku}?evil=1"));
    let t = jsonwebtoken::encode(&hd, &claims(), &k2).unwrap();
    let b = expect_401(&h, Some(&t), "jku not allowed").await;
    assert!(b["message"].as_str().unwrap().contains("jku"));
    h.server.shutdown().await;
}

#[tokio::test]
async fn feedback_requires_a_token_too() {
    let h = start().await;
    let fb = read_json(shared_data().join("cds-hooks/feedback-accepted.json"));
    let (s, _) = h
        .post("/cds-services/osteoguard-patient-view/feedback", None, &fb)
        .await;
    assert_eq!(s, 401);
    h.server.shutdown().await;
}

#[tokio::test]
async fn insecure_dev_is_explicit_and_loopback_only() {
    // Without issuers and without --insecure-dev the service refuses to start.
    let dir = tempfile::tempdir().unwrap();
    let cfg = osteoguard_server::ServerConfig {
        port: 0,
        db: dir.path().join("x.db"),
        ..Default::default()
    };
    assert!(!cfg.insecure_dev, "never the default");
    let e = osteoguard_server::start(cfg.clone(), None)
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("trusted JWT issuers"), "{e}");
    // --insecure-dev on a non-loopback address is refused.
    let mut c2 = cfg.clone();
    c2.insecure_dev = true;
    c2.bind = "0.0.0.0".parse().unwrap();
    let e = osteoguard_server::start(c2, None).await.err().unwrap();
    assert!(e.to_string().contains("loopback"), "{e}");
    // On loopback it accepts unsigned requests.
    let mut c3 = cfg;
    c3.insecure_dev = true;
    let s = osteoguard_server::start(c3, None).await.unwrap();
    let r = reqwest::Client::new()
        .post(format!("http://{}{PV}", s.addr))
        .json(&request())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    s.shutdown().await;
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let h = start_with(|c| c.cors_origins = vec!["https://sandbox.cds-hooks.org".into()]).await;
    let pre = |origin: &'static str| {
        h.http
            .request(reqwest::Method::OPTIONS, h.url(PV))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
    };
    let r = pre("https://sandbox.cds-hooks.org").await.unwrap();
    assert_eq!(
        r.headers().get("access-control-allow-origin").unwrap(),
        "https://sandbox.cds-hooks.org"
    );
    let allow = r
        .headers()
        .get("access-control-allow-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allow.contains("authorization"), "{allow}");
    let r = pre("https://evil.example.org").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    let r = h
        .http
        .get(h.url("/cds-services"))
        .header("Origin", "https://sandbox.cds-hooks.org")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers().get("access-control-allow-origin").unwrap(),
        "https://sandbox.cds-hooks.org"
    );
    h.server.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let h = start_with(|c| c.body_limit_bytes = 10_000).await;
    let mut req = request();
    req["context"]["padding"] = json!("x".repeat(20_000));
    let t = h.keys.token();
    let r = h
        .http
        .post(h.url(PV))
        .bearer_auth(t)
        .json(&req)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 413);
    h.server.shutdown().await;
}
