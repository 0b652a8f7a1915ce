//! Service configuration: the `[server]` table of the shared `osteoguard.toml`, overridden by
//! `OSTEOGUARD_*` environment variables, overridden by command-line flags.
//!
//! ```toml
//! [server]
//! bind = "127.0.0.1"
//! port = 8085
//! db = "osteoguard.db"
//! base_url = "https://cds.example.org"     # public URL of this service; JWT `aud` is checked against it
//! cors_origins = ["https://sandbox.cds-hooks.org"]
//! body_limit_bytes = 4194304
//! request_timeout_ms = 15000
//! fhir_timeout_ms = 5000
//! fhir_max_pages = 50
//! max_connections = 1024
//! max_in_flight = 64
//! header_timeout_ms = 10000
//! idle_timeout_ms = 30000
//! retry_after_secs = 1
//! report_links = true                      # cards link to the request's HTML report
//! report_ttl_secs = 900                    # how long a report URL serves (then 404)
//! report_base_url = "https://cds.example.org"  # else base_url when set, else the request's Host
//! jku_allow_list = ["https://ehr.example.org/.well-known/jwks.json"]
//!
//! [[server.trusted_issuers]]
//! iss = "https://ehr.example.org"
//! jwks_url = "https://ehr.example.org/.well-known/jwks.json"   # or jwks_file = "ehr-jwks.json"
//! ```
//!
//! The threshold tables of the same file (`[denosumab]`, `[findings]` …) are read by
//! [`osteoguard_core::Config`]; `[server]` and `[screen]` are skipped there.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ServeArgs;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The cause is in the message, not also a `source` (the printed chain would repeat it).
    #[error("{path}: cannot read: {cause}")]
    Io { path: String, cause: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("environment variable {name}={value:?}: {message}")]
    Env {
        name: String,
        value: String,
        message: String,
    },
    #[error("thresholds: {0}")]
    Engine(osteoguard_core::ConfigError),
}

impl From<osteoguard_core::ConfigError> for ConfigError {
    fn from(e: osteoguard_core::ConfigError) -> Self {
        ConfigError::Engine(e)
    }
}

/// One trusted JWT issuer (a CDS client / EHR) and where its public keys are.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    pub iss: String,
    /// A JWKS document on disk (read at start-up).
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL (fetched on first use, cached for `jwks_cache_secs`).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// `jku` header values this issuer may use (in addition to the global allow-list).
    #[serde(default)]
    pub jku: Vec<String>,
}

/// The `[server]` table as written in the file (all optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServerTable {
    bind: Option<IpAddr>,
    port: Option<u16>,
    db: Option<PathBuf>,
    base_url: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    trusted_issuers: Vec<TrustedIssuer>,
    #[serde(default)]
    jku_allow_list: Vec<String>,
    cors_origins: Option<Vec<String>>,
    body_limit_bytes: Option<usize>,
    request_timeout_ms: Option<u64>,
    fhir_timeout_ms: Option<u64>,
    fhir_max_pages: Option<usize>,
    clock_skew_secs: Option<u64>,
    jwks_cache_secs: Option<u64>,
    bench_endpoint: Option<bool>,
    max_connections: Option<usize>,
    max_in_flight: Option<usize>,
    header_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    retry_after_secs: Option<u64>,
    report_links: Option<bool>,
    report_ttl_secs: Option<u64>,
    report_base_url: Option<String>,
}

/// The effective service configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub bind: IpAddr,
    pub port: u16,
    pub db: PathBuf,
    /// Public base URL (scheme://host[:port][/prefix]) without a trailing slash.
    pub base_url: String,
    /// Extra accepted JWT `aud` values.
    pub audiences: Vec<String>,
    pub trusted_issuers: Vec<TrustedIssuer>,
    pub jku_allow_list: Vec<String>,
    /// Allowed browser origins; `["*"]` allows any (sandboxes); empty = no CORS headers.
    pub cors_origins: Vec<String>,
    pub body_limit_bytes: usize,
    pub request_timeout_ms: u64,
    pub fhir_timeout_ms: u64,
    pub fhir_max_pages: usize,
    pub clock_skew_secs: u64,
    pub jwks_cache_secs: u64,
    /// Accept requests without a JWT (local testing only; never the default).
    pub insecure_dev: bool,
    /// Serve `GET /bench/static` (a static JSON body for the load benchmark's baseline).
    pub bench_endpoint: bool,
    /// Open connections at most; at the cap the longest-idle one is closed, else 503.
    pub max_connections: usize,
    /// Requests being processed at most; above it `503` with `Retry-After`.
    pub max_in_flight: usize,
    /// Time to receive a complete request head, from when the connection waits for one.
    pub header_timeout_ms: u64,
    /// A connection with no request in flight that sends nothing this long is closed.
    pub idle_timeout_ms: u64,
    /// `Retry-After` (seconds) of a load-shedding `503`.
    pub retry_after_secs: u64,
    /// Every card links (`links[]`) to the request's HTML report, served at
    /// `/reports/<random token>` for [`Self::report_ttl_secs`] (docs/cds-hooks.md).
    pub report_links: bool,
    /// Seconds a report URL serves; afterwards (and for any unknown token) `404`.
    pub report_ttl_secs: u64,
    /// The base the report links start with: `report_base_url`, else `base_url` when
    /// configured, else (`None`) `http://` + the request's `Host` header.
    pub report_base_url: Option<String>,
    /// Thresholds and switched-off findings for the engine.
    pub engine: osteoguard_core::Config,
}

pub const DEFAULT_PORT: u16 = 8085;

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: DEFAULT_PORT,
            db: PathBuf::from("osteoguard.db"),
            base_url: format!("http://localhost:{DEFAULT_PORT}"),
            audiences: Vec::new(),
            trusted_issuers: Vec::new(),
            jku_allow_list: Vec::new(),
            cors_origins: Vec::new(),
            body_limit_bytes: 4 * 1024 * 1024,
            request_timeout_ms: 15_000,
            fhir_timeout_ms: 5_000,
            fhir_max_pages: 50,
            clock_skew_secs: 60,
            jwks_cache_secs: 300,
            insecure_dev: false,
            bench_endpoint: false,
            max_connections: 1024,
            max_in_flight: 64,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 30_000,
            retry_after_secs: 1,
            report_links: true,
            report_ttl_secs: 900,
            report_base_url: None,
            engine: osteoguard_core::Config::default(),
        }
    }
}

impl ServerConfig {
    /// The URL of the discovery endpoint, also the default JWT audience.
    pub fn discovery_url(&self) -> String {
        format!("{}/cds-services", self.base_url)
    }

    /// Every accepted `aud`: the discovery URL, each service endpoint URL, and extras.
    pub fn accepted_audiences(&self) -> Vec<String> {
        let base = self.discovery_url();
        let mut v = vec![base.clone(), format!("{base}/")];
        for s in crate::discovery::SERVICES {
            v.push(format!("{base}/{}", s.id));
        }
        v.extend(self.audiences.iter().cloned());
        v
    }

    /// Defaults ← file (`--config` or `OSTEOGUARD_CONFIG`) ← environment ← flags.
    pub fn load(
        args: &ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut cfg = ServerConfig::default();
        let file = args
            .config
            .clone()
            .or_else(|| env("OSTEOGUARD_CONFIG").map(PathBuf::from));
        let mut base_url_set = false;
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Io {
                path: path.display().to_string(),
                cause: e,
            })?;
            base_url_set = cfg.apply_toml(&text, path)?;
        }
        base_url_set |= cfg.apply_env(env)?;
        if let Some(p) = args.port {
            cfg.port = p;
        }
        if let Some(db) = &args.db {
            cfg.db = db.clone();
        }
        cfg.insecure_dev = args.insecure_dev;
        if !args.cors_origins.is_empty() {
            cfg.cors_origins = args.cors_origins.clone();
        }
        if let Some(v) = args.max_connections {
            cfg.max_connections = v;
        }
        if let Some(v) = args.max_in_flight {
            cfg.max_in_flight = v;
        }
        if let Some(v) = args.header_timeout_ms {
            cfg.header_timeout_ms = v;
        }
        if let Some(v) = args.idle_timeout_ms {
            cfg.idle_timeout_ms = v;
        }
        cfg.check_limits().map_err(|message| ConfigError::Invalid {
            path: "command line / environment".into(),
            message,
        })?;
        if !base_url_set {
            cfg.base_url = format!("http://localhost:{}", cfg.port);
        } else if cfg.report_base_url.is_none() {
            cfg.report_base_url = Some(cfg.base_url.clone());
        }
        Ok(cfg)
    }

    /// Every connection limit must be positive (0 would refuse everything or never time out).
    pub fn check_limits(&self) -> Result<(), String> {
        for (name, v) in [
            ("max_connections", self.max_connections as u64),
            ("max_in_flight", self.max_in_flight as u64),
            ("header_timeout_ms", self.header_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ] {
            if v == 0 {
                return Err(format!("server.{name} must be greater than 0"));
            }
        }
        Ok(())
    }

    /// Applies a TOML file; returns whether it set `base_url`.
    pub fn apply_toml(&mut self, text: &str, path: &Path) -> Result<bool, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        };
        self.engine = osteoguard_core::Config::from_toml_str_allowing(text, &["server", "screen"])?;
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| invalid(e.to_string()))?;
        let Some(server) = table.get("server") else {
            return Ok(false);
        };
        let t: ServerTable = server
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| invalid(format!("[server]: {}", e.message())))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let rel = |p: PathBuf| if p.is_absolute() { p } else { dir.join(p) };
        if let Some(v) = t.bind {
            self.bind = v;
        }
        if let Some(v) = t.port {
            self.port = v;
        }
        if let Some(v) = t.db {
            self.db = rel(v);
        }
        let base_set = t.base_url.is_some();
        if let Some(v) = t.base_url {
            self.base_url =
                normalise_base(&v).map_err(|m| invalid(format!("server.base_url: {m}")))?;
        }
        self.audiences = t.audiences;
        self.trusted_issuers = t
            .trusted_issuers
            .into_iter()
            .map(|mut i| {
                i.jwks_file = i.jwks_file.map(rel);
                i
            })
            .collect();
        for i in &self.trusted_issuers {
            if i.jwks_file.is_none() && i.jwks_url.is_none() {
                return Err(invalid(format!(
                    "server.trusted_issuers: issuer {:?} needs jwks_file or jwks_url",
                    i.iss
                )));
            }
        }
        self.jku_allow_list = t.jku_allow_list;
        if let Some(v) = t.cors_origins {
            self.cors_origins = v;
        }
        if let Some(v) = t.body_limit_bytes {
            self.body_limit_bytes = v;
        }
        if let Some(v) = t.request_timeout_ms {
            self.request_timeout_ms = v;
        }
        if let Some(v) = t.fhir_timeout_ms {
            self.fhir_timeout_ms = v;
        }
        if let Some(v) = t.fhir_max_pages {
            self.fhir_max_pages = v;
        }
        if let Some(v) = t.clock_skew_secs {
            self.clock_skew_secs = v;
        }
        if let Some(v) = t.jwks_cache_secs {
            self.jwks_cache_secs = v;
        }
        if let Some(v) = t.bench_endpoint {
            self.bench_endpoint = v;
        }
        if let Some(v) = t.max_connections {
            self.max_connections = v;
        }
        if let Some(v) = t.max_in_flight {
            self.max_in_flight = v;
        }
        if let Some(v) = t.header_timeout_ms {
            self.header_timeout_ms = v;
        }
        if let Some(v) = t.idle_timeout_ms {
            self.idle_timeout_ms = v;
        }
        if let Some(v) = t.retry_after_secs {
            self.retry_after_secs = v;
        }
        if let Some(v) = t.report_links {
            self.report_links = v;
        }
        if let Some(v) = t.report_ttl_secs {
            self.report_ttl_secs = v;
        }
        if let Some(v) = t.report_base_url {
            self.report_base_url = Some(
                normalise_base(&v).map_err(|m| invalid(format!("server.report_base_url: {m}")))?,
            );
        }
        self.check_limits().map_err(invalid)?;
        Ok(base_set)
    }

    /// Applies `OSTEOGUARD_*` variables; returns whether `OSTEOGUARD_BASE_URL` was set.
    pub fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Result<bool, ConfigError> {
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            v.trim().parse().map_err(|e: T::Err| ConfigError::Env {
                name: name.into(),
                value: v.into(),
                message: e.to_string(),
            })
        }
        if let Some(v) = env("OSTEOGUARD_BIND") {
            self.bind = parse("OSTEOGUARD_BIND", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_PORT") {
            self.port = parse("OSTEOGUARD_PORT", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_DB") {
            self.db = PathBuf::from(v);
        }
        let mut base_set = false;
        if let Some(v) = env("OSTEOGUARD_BASE_URL") {
            self.base_url = normalise_base(&v).map_err(|m| ConfigError::Env {
                name: "OSTEOGUARD_BASE_URL".into(),
                value: v.clone(),
                message: m,
            })?;
            base_set = true;
        }
        if let Some(v) = env("OSTEOGUARD_CORS_ORIGINS") {
            self.cors_origins = split_list(&v);
        }
        if let Some(v) = env("OSTEOGUARD_JKU_ALLOW_LIST") {
            self.jku_allow_list = split_list(&v);
        }
        if let Some(v) = env("OSTEOGUARD_BODY_LIMIT_BYTES") {
            self.body_limit_bytes = parse("OSTEOGUARD_BODY_LIMIT_BYTES", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_REQUEST_TIMEOUT_MS") {
            self.request_timeout_ms = parse("OSTEOGUARD_REQUEST_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_FHIR_TIMEOUT_MS") {
            self.fhir_timeout_ms = parse("OSTEOGUARD_FHIR_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_MAX_CONNECTIONS") {
            self.max_connections = parse("OSTEOGUARD_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_MAX_IN_FLIGHT") {
            self.max_in_flight = parse("OSTEOGUARD_MAX_IN_FLIGHT", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_HEADER_TIMEOUT_MS") {
            self.header_timeout_ms = parse("OSTEOGUARD_HEADER_TIMEOUT_MS", &v)?;
        }
        if let Some(v) = env("OSTEOGUARD_IDLE_TIMEOUT_MS") {
            self.idle_timeout_ms = parse("OSTEOGUARD_IDLE_TIMEOUT_MS", &v)?;
        }
        // One trusted issuer from the environment: `OSTEOGUARD_TRUSTED_ISSUER=<iss>` plus
        // `OSTEOGUARD_JWKS_FILE` or `OSTEOGUARD_JWKS_URL` (container deployments).
        if let Some(iss) = env("OSTEOGUARD_TRUSTED_ISSUER") {
            let jwks_file = env("OSTEOGUARD_JWKS_FILE").map(PathBuf::from);
            let jwks_url = env("OSTEOGUARD_JWKS_URL");
            if jwks_file.is_none() && jwks_url.is_none() {
                return Err(ConfigError::Env {
                    name: "OSTEOGUARD_TRUSTED_ISSUER".into(),
                    value: iss,
                    message: "needs OSTEOGUARD_JWKS_FILE or OSTEOGUARD_JWKS_URL".into(),
                });
            }
            self.trusted_issuers.retain(|i| i.iss != iss);
            self.trusted_issuers.push(TrustedIssuer {
                iss,
                jwks_file,
                jwks_url,
                jku: Vec::new(),
            });
        }
        Ok(base_set)
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn normalise_base(v: &str) -> Result<String, String> {
    let u = url::Url::parse(v.trim()).map_err(|e| e.to_string())?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err("must be an http(s) URL".into());
    }
    Ok(v.trim().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ServeArgs {
        ServeArgs::default()
    }

    #[test]
    fn defaults_are_secure_and_local() {
        let c = ServerConfig::load(&args(), &|_| None).unwrap();
        assert!(!c.insecure_dev);
        assert_eq!(c.bind.to_string(), "127.0.0.1");
        assert_eq!(c.base_url, format!("http://localhost:{DEFAULT_PORT}"));
        assert!(c.trusted_issuers.is_empty());
    }

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osteoguard.toml");
        std::fs::write(
            &path,
            r#"
[denosumab]
grace_end_days = 240

[server]
port = 9000
db = "cds.db"
base_url = "https://cds.example.org/"
cors_origins = ["https://sandbox.cds-hooks.org"]

[[server.trusted_issuers]]
iss = "https://ehr.example.org"
jwks_file = "keys.json"
"#,
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path.clone());
        let c = ServerConfig::load(&a, &|_| None).unwrap();
        assert_eq!(c.port, 9000);
        assert_eq!(c.db, dir.path().join("cds.db"));
        assert_eq!(c.base_url, "https://cds.example.org");
        assert_eq!(c.engine.thresholds.dmab_grace_end_days, 240);
        assert_eq!(
            c.trusted_issuers[0].jwks_file.as_deref(),
            Some(dir.path().join("keys.json").as_path())
        );
        let env = |k: &str| match k {
            "OSTEOGUARD_PORT" => Some("9100".to_string()),
            "OSTEOGUARD_DB" => Some("/tmp/x.db".to_string()),
            _ => None,
        };
        let c = ServerConfig::load(&a, &env).unwrap();
        assert_eq!((c.port, c.db.clone()), (9100, PathBuf::from("/tmp/x.db")));
        a.port = Some(9200);
        let c = ServerConfig::load(&a, &env).unwrap();
        assert_eq!(c.port, 9200);
    }

    #[test]
    fn connection_limits_from_file_env_and_flags() {
        let d = ServerConfig::default();
        assert!(d.max_connections > 0 && d.max_in_flight > 0);
        assert!(d.header_timeout_ms > 0 && d.idle_timeout_ms > 0);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("osteoguard.toml");
        std::fs::write(
            &path,
            "[server]\nmax_connections = 300\nmax_in_flight = 7\nheader_timeout_ms = 1500\n\
             idle_timeout_ms = 2500\nretry_after_secs = 3\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path.clone());
        let c = ServerConfig::load(&a, &|_| None).unwrap();
        assert_eq!(
            (c.max_connections, c.max_in_flight, c.header_timeout_ms),
            (300, 7, 1500)
        );
        assert_eq!((c.idle_timeout_ms, c.retry_after_secs), (2500, 3));
        let env = |k: &str| (k == "OSTEOGUARD_MAX_IN_FLIGHT").then(|| "9".to_string());
        assert_eq!(ServerConfig::load(&a, &env).unwrap().max_in_flight, 9);
        a.max_in_flight = Some(11);
        a.header_timeout_ms = Some(700);
        let c = ServerConfig::load(&a, &env).unwrap();
        assert_eq!((c.max_in_flight, c.header_timeout_ms), (11, 700));
        // Zero would refuse everything or never time out.
        a.max_connections = Some(0);
        let e = ServerConfig::load(&a, &env).unwrap_err();
        assert!(e.to_string().contains("max_connections"), "{e}");
        std::fs::write(&path, "[server]\nidle_timeout_ms = 0\n").unwrap();
        let e = ServerConfig::load(&args_with(path), &|_| None).unwrap_err();
        assert!(e.to_string().contains("idle_timeout_ms"), "{e}");
    }

    fn args_with(config: PathBuf) -> ServeArgs {
        let mut a = args();
        a.config = Some(config);
        a
    }

    #[test]
    fn unknown_server_key_and_bad_env_are_refused() {
        let mut c = ServerConfig::default();
        let e = c
            .apply_toml("[server]\nprot = 1\n", Path::new("x.toml"))
            .unwrap_err();
        assert!(e.to_string().contains("prot"), "{e}");
        let e = c
            .apply_env(&|k| (k == "OSTEOGUARD_PORT").then(|| "eighty".to_string()))
            .unwrap_err();
        assert!(e.to_string().contains("OSTEOGUARD_PORT"), "{e}");
    }
}
