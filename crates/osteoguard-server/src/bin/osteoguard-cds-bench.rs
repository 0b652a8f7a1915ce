//! Load benchmark of the CDS Hooks service, loopback only, bounded in time.
//!
//! ```text
//! cargo run --release -p osteoguard-server --bin osteoguard-cds-bench -- [--seconds 10] [--clients 64] [--sustain 60]
//! ```
//!
//! 1. Starts the service in-process on 127.0.0.1 (insecure-dev: JWT verification is not part
//!    of the measurement; a temporary SQLite file), and asks it once for the seed case's
//!    patient-view (prefetch, as-of 2023-06-15) to learn the response body.
//! 2. Restarts it with `/bench/static` serving exactly that body (same size, static JSON).
//! 3. Closed loop, `--clients` concurrent clients, `--seconds` each after a 2 s warm-up: the
//!    static endpoint, then patient-view. Reports p50/p99 latency, throughput, and the ratios.
//! 4. Open loop: short probes at falling fractions of the closed-loop throughput until one runs
//!    with 0 errors and keeps up; then `--sustain` seconds at that rate, reporting errors and
//!    latency measured from each request's scheduled send time.
//!
//! With `--serve DIR` it only serves, for an external load tool (`scripts/bench-cds.sh` drives
//! `wrk` with it): the service on `127.0.0.1:--port` with `/bench/static` serving the seed
//! patient-view's response bytes; `DIR/request.json` is the request body, `DIR/response.json`
//! the response, `DIR/pid` this process. With `--secure` every call needs an ES384 JWT: a
//! P-384 key is generated, its JWKS configured as the trusted issuer's (a file: cached), and
//! `--tokens N` signed tokens, each with its own `jti` (a token is accepted once), are written
//! one a line to `DIR/tokens.txt`. `DIR/ready` appears when it listens; it serves until killed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use osteoguard_server::ServerConfig;
use serde_json::{json, Value};

/// The allocator of the `osteoguard` binary, so the service is measured as shipped
/// (ARCHITECTURE.md "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    seconds: u64,
    clients: usize,
    sustain: u64,
    seed: PathBuf,
    serve: Option<PathBuf>,
    port: u16,
    secure: bool,
    tokens: usize,
}

fn args() -> Args {
    let mut a = Args {
        seconds: 10,
        clients: 64,
        sustain: 60,
        seed: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json"),
        serve: None,
        port: 8097,
        secure: false,
        tokens: 50_000,
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let next = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--seconds" => a.seconds = next.parse().unwrap_or(a.seconds),
            "--clients" => a.clients = next.parse().unwrap_or(a.clients),
            "--sustain" => a.sustain = next.parse().unwrap_or(a.sustain),
            "--seed" => a.seed = PathBuf::from(next),
            "--serve" => a.serve = Some(PathBuf::from(next)),
            "--port" => a.port = next.parse().unwrap_or(a.port),
            "--tokens" => a.tokens = next.parse().unwrap_or(a.tokens),
            "--secure" => {
                a.secure = true;
                i += 1;
                continue;
            }
            other => {
                eprintln!("unknown argument {other}");
                std::process::exit(2);
            }
        }
        i += 2;
    }
    a.seconds = a.seconds.clamp(1, 120);
    a.sustain = a.sustain.clamp(1, 300);
    a.clients = a.clients.clamp(1, 1024);
    a
}

fn searchset(items: Vec<Value>) -> Value {
    let entry: Vec<Value> = items.into_iter().map(|r| json!({"resource": r})).collect();
    json!({"resourceType": "Bundle", "type": "searchset", "total": entry.len(), "entry": entry})
}

/// The seed bundle as a complete patient-view prefetch.
fn seed_request(path: &PathBuf) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| {
        eprintln!("{}: {e}", path.display());
        std::process::exit(2)
    });
    let b: Value = serde_json::from_str(&text).unwrap_or_default();
    let all: Vec<Value> = b["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect();
    let of = |ty: &str| -> Vec<Value> {
        all.iter()
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
    let patient = of("Patient").into_iter().next().unwrap_or(Value::Null);
    let id = patient["id"].as_str().unwrap_or("ku-73f").to_string();
    json!({
        "hook": "patient-view",
        "hookInstance": "bench",
        "context": {"userId": "Practitioner/bench", "patientId": id},
        "extension": {"osteoguard.asOf": "2023-06-15"},
        "prefetch": {
            "patient": patient,
            "medicationRequests": searchset(of("MedicationRequest")),
            "medicationAdministrations": searchset(of("MedicationAdministration")),
            "medicationStatements": searchset(of("MedicationStatement")),
            "observationsLab": searchset(obs.iter().filter(|r| is_lab(r)).cloned().collect()),
            "observationsBone": searchset(obs.iter().filter(|r| !is_lab(r)).cloned().collect()),
            "conditions": searchset(of("Condition")),
            "procedures": searchset(of("Procedure")),
        }
    })
}

#[derive(Clone, Copy)]
enum Target {
    Static,
    PatientView,
}

struct Client {
    http: reqwest::Client,
    base: String,
    body: Arc<Vec<u8>>,
}

impl Client {
    async fn once(&self, t: Target) -> bool {
        let r = match t {
            Target::Static => {
                self.http
                    .get(format!("{}/bench/static", self.base))
                    .send()
                    .await
            }
            Target::PatientView => {
                self.http
                    .post(format!(
                        "{}/cds-services/osteoguard-patient-view",
                        self.base
                    ))
                    .header("content-type", "application/json")
                    .body(self.body.as_ref().clone())
                    .send()
                    .await
            }
        };
        match r {
            Ok(resp) => {
                let ok = resp.status().is_success();
                ok && resp.bytes().await.is_ok()
            }
            Err(_) => false,
        }
    }
}

struct Stats {
    ok: u64,
    errors: u64,
    secs: f64,
    lat_us: Vec<u64>,
}

impl Stats {
    fn pct(&self, p: f64) -> f64 {
        if self.lat_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.lat_us.len() as f64 - 1.0) * p).round() as usize;
        self.lat_us[i] as f64 / 1000.0
    }
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs
    }
}

async fn closed_loop(c: Arc<Client>, t: Target, clients: usize, dur: Duration) -> Stats {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while start.elapsed() < dur {
                let t0 = Instant::now();
                if c.once(t).await {
                    lat.push(t0.elapsed().as_micros() as u64);
                } else {
                    errors += 1;
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((l, e)) = t.await {
            all.extend(l);
            errors += e;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    Stats {
        ok: all.len() as u64,
        errors,
        secs,
        lat_us: all,
    }
}

/// Open loop at `rate` req/s for `dur`; requests beyond `max_in_flight` count as errors.
async fn open_loop(c: Arc<Client>, rate: f64, dur: Duration, max_in_flight: usize) -> Stats {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let in_flight = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u64>();
    let mut n: u64 = 0;
    loop {
        let scheduled = start + interval.mul_f64(n as f64);
        if scheduled.duration_since(start) >= dur {
            break;
        }
        tokio::time::sleep_until(scheduled.into()).await;
        n += 1;
        if in_flight.load(Ordering::Relaxed) as usize >= max_in_flight {
            errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let (c, tx, inf, err) = (c.clone(), tx.clone(), in_flight.clone(), errors.clone());
        tokio::spawn(async move {
            if c.once(Target::PatientView).await {
                let _ = tx.send(scheduled.elapsed().as_micros() as u64);
            } else {
                err.fetch_add(1, Ordering::Relaxed);
            }
            inf.fetch_sub(1, Ordering::Relaxed);
        });
    }
    drop(tx);
    let mut lat = Vec::new();
    while let Some(l) = rx.recv().await {
        lat.push(l);
    }
    lat.sort_unstable();
    Stats {
        ok: lat.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        secs: dur.as_secs_f64(),
        lat_us: lat,
    }
}

fn config(db: &std::path::Path) -> ServerConfig {
    ServerConfig {
        port: 0,
        db: db.to_path_buf(),
        insecure_dev: true,
        bench_endpoint: true,
        request_timeout_ms: 30_000,
        // The benchmark measures throughput up to 1,024 clients, not load shedding.
        max_in_flight: 1024,
        max_connections: 4096,
        ..ServerConfig::default()
    }
}

fn main() {
    let a = args();
    // The runtime `osteoguard serve` runs on (blocking pool capped).
    let rt = osteoguard_server::runtime().unwrap_or_else(|e| {
        eprintln!("runtime: {e}");
        std::process::exit(1)
    });
    match a.serve.clone() {
        Some(dir) => rt.block_on(serve_only(a, dir)),
        None => rt.block_on(run(a)),
    }
}

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("{what}: {e}");
    std::process::exit(1)
}

const BENCH_ISS: &str = "https://ehr.bench";
const BENCH_BASE: &str = "https://cds.bench";

/// A P-384 key: the JWKS (public) and the signing key.
fn bench_key() -> (Value, jsonwebtoken::EncodingKey) {
    use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let kp =
        EcdsaKeyPair::generate(&ECDSA_P384_SHA384_FIXED_SIGNING).unwrap_or_else(|e| fail("key", e));
    let pkcs8 = kp.to_pkcs8v1().unwrap_or_else(|e| fail("key", e));
    let public = kp.public_key().as_ref();
    if public.len() != 97 {
        fail("key", "unexpected P-384 public key length");
    }
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "bench-1", "use": "sig",
        "alg": "ES384", "x": b64(&public[1..49]), "y": b64(&public[49..97])}]});
    (jwks, jsonwebtoken::EncodingKey::from_ec_der(pkcs8.as_ref()))
}

/// `--serve DIR`: serve the seed patient-view and its static twin until killed.
async fn serve_only(a: Args, dir: PathBuf) {
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail("dir", e));
    let db = dir.join("cds.db");
    let body = serde_json::to_vec(&seed_request(&a.seed)).unwrap_or_else(|e| fail("request", e));
    // The response, learned from an unsigned service on a free port.
    let s = osteoguard_server::start(config(&db), None)
        .await
        .unwrap_or_else(|e| fail("server", e));
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/cds-services/osteoguard-patient-view",
            s.addr
        ))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let response = match response {
        Ok(r) => r.bytes().await.unwrap_or_default(),
        Err(e) => fail("seed patient-view", e),
    };
    s.shutdown().await;
    let mut cfg = config(&db);
    cfg.port = a.port;
    if a.secure {
        let (jwks, key) = bench_key();
        let jwks_path = dir.join("jwks.json");
        std::fs::write(&jwks_path, jwks.to_string()).unwrap_or_else(|e| fail("jwks", e));
        cfg.insecure_dev = false;
        cfg.base_url = BENCH_BASE.into();
        cfg.trusted_issuers = vec![osteoguard_server::TrustedIssuer {
            iss: BENCH_ISS.into(),
            jwks_file: Some(jwks_path),
            jwks_url: None,
            jku: Vec::new(),
        }];
        let now = jsonwebtoken::get_current_timestamp() as i64;
        let aud = format!("{BENCH_BASE}/cds-services");
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES384);
        header.kid = Some("bench-1".into());
        let mut tokens = String::new();
        for n in 0..a.tokens {
            let claims = json!({"iss": BENCH_ISS, "sub": "bench", "aud": aud, "iat": now,
                "exp": now + 1800, "jti": format!("bench-{now}-{n}")});
            let t =
                jsonwebtoken::encode(&header, &claims, &key).unwrap_or_else(|e| fail("sign", e));
            tokens.push_str(&t);
            tokens.push('\n');
        }
        std::fs::write(dir.join("tokens.txt"), tokens).unwrap_or_else(|e| fail("tokens", e));
    }
    std::fs::write(dir.join("request.json"), &body).unwrap_or_else(|e| fail("request", e));
    std::fs::write(dir.join("response.json"), &response).unwrap_or_else(|e| fail("response", e));
    let s = osteoguard_server::start(cfg, Some(response))
        .await
        .unwrap_or_else(|e| fail("server", e));
    std::fs::write(dir.join("pid"), std::process::id().to_string())
        .unwrap_or_else(|e| fail("pid", e));
    std::fs::write(dir.join("ready"), s.addr.to_string()).unwrap_or_else(|e| fail("ready", e));
    println!("serving on {} (secure: {})", s.addr, a.secure);
    let _ = tokio::signal::ctrl_c().await;
    s.shutdown().await;
}

async fn run(a: Args) {
    let db = std::env::temp_dir().join(format!("osteoguard-bench-{}.db", std::process::id()));
    let body = Arc::new(serde_json::to_vec(&seed_request(&a.seed)).unwrap_or_default());
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| {
            eprintln!("client: {e}");
            std::process::exit(1)
        });

    // 1. Learn the patient-view response.
    let s = osteoguard_server::start(config(&db), None)
        .await
        .unwrap_or_else(|e| {
            eprintln!("server: {e}");
            std::process::exit(1)
        });
    let resp = http
        .post(format!(
            "http://{}/cds-services/osteoguard-patient-view",
            s.addr
        ))
        .header("content-type", "application/json")
        .body(body.as_ref().clone())
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let response = match resp {
        Ok(r) => r.bytes().await.unwrap_or_default(),
        Err(e) => {
            eprintln!("seed patient-view failed: {e}");
            std::process::exit(1)
        }
    };
    let cards: Value = serde_json::from_slice(&response).unwrap_or_default();
    s.shutdown().await;

    // 2. Same server with the static twin of that body.
    let s = osteoguard_server::start(config(&db), Some(response.clone()))
        .await
        .unwrap_or_else(|e| {
            eprintln!("server: {e}");
            std::process::exit(1)
        });
    let c = Arc::new(Client {
        http,
        base: format!("http://{}", s.addr),
        body,
    });
    println!(
        "osteoguard CDS Hooks load benchmark — loopback {}, {} clients, {} s per endpoint, {} CPU(s)",
        s.addr,
        a.clients,
        a.seconds,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );
    println!(
        "request {} bytes (seed prefetch), response {} bytes, {} cards",
        c.body.len(),
        response.len(),
        cards["cards"].as_array().map_or(0, |v| v.len())
    );

    // 3. Closed loop.
    let mut results = Vec::new();
    for (name, t) in [
        ("static JSON (same bytes)", Target::Static),
        ("patient-view (seed prefetch)", Target::PatientView),
    ] {
        let _ = closed_loop(c.clone(), t, a.clients, Duration::from_secs(2)).await;
        let st = closed_loop(c.clone(), t, a.clients, Duration::from_secs(a.seconds)).await;
        println!(
            "{name:<30} p50 {:>8.2} ms  p99 {:>8.2} ms  {:>9.0} req/s  errors {}",
            st.pct(0.5),
            st.pct(0.99),
            st.rps(),
            st.errors
        );
        results.push(st);
    }
    let (st, pv) = (&results[0], &results[1]);
    println!(
        "ratio patient-view / static: p50 ×{:.2}  p99 ×{:.2}  throughput ×{:.3}",
        pv.pct(0.5) / st.pct(0.5),
        pv.pct(0.99) / st.pct(0.99),
        pv.rps() / st.rps()
    );

    // 4. Highest sustained rate with 0 errors: probe 5 s at falling fractions of the
    //    closed-loop throughput; run the full period at the first that keeps up; if that run
    //    has errors, step down and try again (at most three full runs).
    let max_in_flight = a.clients * 4;
    let mut full_runs = 0;
    let mut done = false;
    for frac in [0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2] {
        let rate = (pv.rps() * frac).max(1.0);
        let probe = open_loop(c.clone(), rate, Duration::from_secs(5), max_in_flight).await;
        let keeps_up = probe.ok as f64 >= 0.99 * rate * 5.0 && probe.pct(0.99) < 1000.0;
        println!(
            "probe {rate:>8.0} req/s: ok {} errors {} p99 {:.2} ms{}",
            probe.ok,
            probe.errors,
            probe.pct(0.99),
            if probe.errors == 0 && keeps_up {
                "  ✓"
            } else {
                ""
            }
        );
        if probe.errors != 0 || !keeps_up {
            continue;
        }
        full_runs += 1;
        let st = open_loop(
            c.clone(),
            rate,
            Duration::from_secs(a.sustain),
            max_in_flight,
        )
        .await;
        println!(
            "sustained {rate:.0} req/s for {} s: {} ok, {} errors, p50 {:.2} ms, p99 {:.2} ms, achieved {:.0} req/s",
            a.sustain,
            st.ok,
            st.errors,
            st.pct(0.5),
            st.pct(0.99),
            st.rps()
        );
        if st.errors == 0 {
            println!(
                "highest sustained rate with 0 errors: {rate:.0} req/s ({:.0}% of closed-loop throughput)",
                frac * 100.0
            );
            done = true;
            break;
        }
        if full_runs >= 3 {
            break;
        }
    }
    if !done {
        println!("no rate ran the full period with 0 errors");
    }
    s.shutdown().await;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}
