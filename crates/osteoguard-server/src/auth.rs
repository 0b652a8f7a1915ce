//! JWT bearer-token verification as CDS Hooks 2.0 §"Trusting CDS Clients" requires.
//!
//! A CDS client signs a short-lived JWT with its private key; this service checks it with the
//! client's public key (JWKS). Accepted: `ES384` and `RS384` only (the two algorithms the spec
//! names). Rejected, each with its own reason: a missing or malformed token, `alg: none`, any
//! other algorithm (an `HS*` token "signed" with a public key is the classic confusion attack),
//! an issuer that is not configured, a `jku` not on the allow-list, an unknown key id, a bad
//! signature, an expired or not-yet-valid token (`exp`, `nbf`, `iat` in the future beyond the
//! clock-skew leeway), a wrong audience, a missing `iss`/`sub`/`aud`/`exp`/`iat`/`jti`, and a
//! replayed `jti` (remembered in SQLite until the token expires).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::ServerConfig;
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("algorithm {0:?} is not accepted (ES384 or RS384 required)")]
    AlgorithmNotAllowed(String),
    #[error("issuer is not trusted")]
    UnknownIssuer,
    #[error("jku is not on the allow-list")]
    JkuNotAllowed,
    #[error("no matching key in the issuer's JWKS")]
    UnknownKey,
    #[error("cannot obtain the issuer's keys: {0}")]
    KeysUnavailable(String),
    #[error("signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token is not yet valid")]
    NotYetValid,
    #[error("audience does not name this service")]
    WrongAudience,
    #[error("required claim `{0}` is missing or invalid")]
    MissingClaim(String),
    #[error("token id (jti) was already used")]
    Replayed,
    #[error("replay store unavailable")]
    Store,
}

impl AuthError {
    /// A short stable code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::AlgorithmNotAllowed(_) => "alg-not-allowed",
            AuthError::UnknownIssuer => "unknown-issuer",
            AuthError::JkuNotAllowed => "jku-not-allowed",
            AuthError::UnknownKey => "unknown-key",
            AuthError::KeysUnavailable(_) => "keys-unavailable",
            AuthError::BadSignature => "bad-signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not-yet-valid",
            AuthError::WrongAudience => "wrong-audience",
            AuthError::MissingClaim(_) => "missing-claim",
            AuthError::Replayed => "replayed",
            AuthError::Store => "store",
        }
    }
}

/// What a verified token tells about the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub iss: String,
    pub sub: String,
}

impl Client {
    pub fn label(&self) -> String {
        format!("{}#{}", self.iss, self.sub)
    }
}

struct Issuer {
    static_keys: Option<JwkSet>,
    jwks_url: Option<String>,
    jku: Vec<String>,
}

pub struct Verifier {
    issuers: HashMap<String, Issuer>,
    jku_allow: Vec<String>,
    audiences: Vec<String>,
    leeway: u64,
    cache_ttl: Duration,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, (Instant, Arc<JwkSet>)>>,
}

const ALLOWED: [&str; 2] = ["ES384", "RS384"];

fn b64_json(part: &str) -> Result<Value, AuthError> {
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed("not base64url".into()))?;
    serde_json::from_slice(&bytes).map_err(|_| AuthError::Malformed("not JSON".into()))
}

impl Verifier {
    pub fn new(cfg: &ServerConfig) -> Result<Verifier, String> {
        let mut issuers = HashMap::new();
        for i in &cfg.trusted_issuers {
            let static_keys = match &i.jwks_file {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .map_err(|e| format!("{}: cannot read JWKS: {e}", p.display()))?;
                    Some(
                        serde_json::from_str::<JwkSet>(&text)
                            .map_err(|e| format!("{}: not a JWKS: {e}", p.display()))?,
                    )
                }
                None => None,
            };
            issuers.insert(
                i.iss.clone(),
                Issuer {
                    static_keys,
                    jwks_url: i.jwks_url.clone(),
                    jku: i.jku.clone(),
                },
            );
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.fhir_timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Verifier {
            issuers,
            jku_allow: cfg.jku_allow_list.clone(),
            audiences: cfg.accepted_audiences(),
            leeway: cfg.clock_skew_secs,
            cache_ttl: Duration::from_secs(cfg.jwks_cache_secs),
            http,
            cache: Mutex::new(HashMap::new()),
        })
    }

    async fn fetch_jwks(&self, url: &str) -> Result<Arc<JwkSet>, AuthError> {
        {
            let cache = self.cache.lock().await;
            if let Some((at, set)) = cache.get(url) {
                if at.elapsed() < self.cache_ttl {
                    return Ok(set.clone());
                }
            }
        }
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(AuthError::KeysUnavailable(format!(
                "HTTP {}",
                resp.status()
            )));
        }
        let set: JwkSet = resp
            .json()
            .await
            .map_err(|e| AuthError::KeysUnavailable(e.without_url().to_string()))?;
        let set = Arc::new(set);
        self.cache
            .lock()
            .await
            .insert(url.to_string(), (Instant::now(), set.clone()));
        Ok(set)
    }

    /// Verifies `token` completely, then records its `jti` (a second use is a replay).
    pub async fn verify(&self, token: &str, store: &Arc<Store>) -> Result<Client, AuthError> {
        let parts: Vec<&str> = token.split('.').collect();
        if parts.len() != 3 {
            return Err(AuthError::Malformed(
                "expected three dot-separated parts".into(),
            ));
        }
        let header = b64_json(parts[0])?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::Malformed("header has no alg".into()))?
            .to_string();
        if !ALLOWED.contains(&alg.as_str()) {
            return Err(AuthError::AlgorithmNotAllowed(alg));
        }
        let algorithm = if alg == "ES384" {
            Algorithm::ES384
        } else {
            Algorithm::RS384
        };
        let unverified = b64_json(parts[1])?;
        let iss = unverified
            .get("iss")
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::MissingClaim("iss".into()))?
            .to_string();
        let issuer = self.issuers.get(&iss).ok_or(AuthError::UnknownIssuer)?;

        // Keys: a `jku` only from the allow-list; else the issuer's configured JWKS.
        let keys: Arc<JwkSet> = if let Some(jku) = header.get("jku").and_then(Value::as_str) {
            if !(self.jku_allow.iter().any(|a| a == jku) || issuer.jku.iter().any(|a| a == jku)) {
                return Err(AuthError::JkuNotAllowed);
            }
            self.fetch_jwks(jku).await?
        } else if let Some(k) = &issuer.static_keys {
            Arc::new(k.clone())
        } else if let Some(url) = &issuer.jwks_url {
            self.fetch_jwks(url).await?
        } else {
            return Err(AuthError::UnknownKey);
        };
        let kid = header.get("kid").and_then(Value::as_str);
        let candidates: Vec<&Jwk> = keys
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.common.key_id.as_deref() == kid)
            .filter(|k| {
                matches!(
                    (&k.algorithm, algorithm),
                    (AlgorithmParameters::EllipticCurve(_), Algorithm::ES384)
                        | (AlgorithmParameters::RSA(_), Algorithm::RS384)
                )
            })
            .collect();
        if candidates.is_empty() {
            return Err(AuthError::UnknownKey);
        }

        let mut v = Validation::new(algorithm);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.validate_exp = true;
        v.set_audience(&self.audiences);
        v.set_issuer(&[iss.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);

        let mut last = AuthError::BadSignature;
        let mut claims: Option<Value> = None;
        for k in candidates {
            let Ok(key) = DecodingKey::from_jwk(k) else {
                continue;
            };
            match jsonwebtoken::decode::<Value>(token, &key, &v) {
                Ok(d) => {
                    claims = Some(d.claims);
                    break;
                }
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as K;
                    last = match e.kind() {
                        K::ExpiredSignature => AuthError::Expired,
                        K::ImmatureSignature => AuthError::NotYetValid,
                        K::InvalidAudience => AuthError::WrongAudience,
                        K::InvalidIssuer => AuthError::UnknownIssuer,
                        K::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
                        K::InvalidSignature => AuthError::BadSignature,
                        K::InvalidAlgorithm => AuthError::AlgorithmNotAllowed(alg.clone()),
                        other => AuthError::Malformed(format!("{other:?}")),
                    };
                    // A signature failure may just mean "other key"; claim errors are final.
                    if last != AuthError::BadSignature {
                        return Err(last);
                    }
                }
            }
        }
        let claims = claims.ok_or(last)?;

        let now = jsonwebtoken::get_current_timestamp() as i64;
        let iat = claims
            .get("iat")
            .and_then(Value::as_i64)
            .ok_or_else(|| AuthError::MissingClaim("iat".into()))?;
        if iat > now + self.leeway as i64 {
            return Err(AuthError::NotYetValid);
        }
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or_else(|| AuthError::MissingClaim("exp".into()))?;
        let jti = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| AuthError::MissingClaim("jti".into()))?
            .to_string();
        let sub = claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();

        let store = store.clone();
        let (iss2, leeway) = (iss.clone(), self.leeway as i64);
        let fresh = tokio::task::spawn_blocking(move || {
            store.check_and_record_jti(&iss2, &jti, exp, now, leeway)
        })
        .await
        .map_err(|_| AuthError::Store)?
        .map_err(|_| AuthError::Store)?;
        if !fresh {
            return Err(AuthError::Replayed);
        }
        Ok(Client { iss, sub })
    }
}
