//! Short-lived HTML reports the cards link to (issue 17).
//!
//! A hook call that returns cards renders the patient's HTML report from the same assessment
//! and keeps it in memory under a random token (two UUIDv4: 244 random bits from the operating
//! system's generator). `GET /reports/<token>` serves it until the configured lifetime ends;
//! afterwards, and for any token never issued, the answer is `404` with no body that would tell
//! the two apart. The URL holds no patient data; the page is served with `no-store`, no
//! referrer and a content security policy that forbids scripts and network access.
//!
//! Memory is bounded: expired reports are dropped whenever one is added, and above
//! [`MAX_REPORTS`] the oldest go first.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Reports kept at most (the oldest are dropped first).
pub const MAX_REPORTS: usize = 2048;

struct Entry {
    html: Arc<String>,
    issued: Instant,
    expires: Instant,
}

/// The in-memory report store.
pub struct ReportStore {
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

/// A token: 64 hex digits, random.
pub fn new_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

/// Whether `t` has the form of a token (anything else is refused before any lookup).
pub fn is_token(t: &str) -> bool {
    t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit())
}

impl ReportStore {
    pub fn new(ttl: Duration) -> Self {
        ReportStore {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps `html` for the lifetime and returns its token.
    pub fn publish(&self, html: String) -> String {
        let token = new_token();
        let now = Instant::now();
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.retain(|_, e| e.expires > now);
        while map.len() >= MAX_REPORTS {
            let oldest = map
                .iter()
                .min_by_key(|(_, e)| e.issued)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => {
                    map.remove(&k);
                }
                None => break,
            }
        }
        map.insert(
            token.clone(),
            Entry {
                html: Arc::new(html),
                issued: now,
                expires: now + self.ttl,
            },
        );
        token
    }

    /// The report under `token` while it lives.
    pub fn get(&self, token: &str) -> Option<Arc<String>> {
        if !is_token(token) {
            return None;
        }
        let now = Instant::now();
        let mut map = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        match map.get(token) {
            Some(e) if e.expires > now => Some(e.html.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }
}

/// The base the report links start with: the configured one, else `http://` + the request's
/// `Host` when it is a plain host[:port] (anything else: no link).
pub fn link_base(configured: Option<&str>, host: Option<&str>) -> Option<String> {
    if let Some(b) = configured {
        return Some(b.trim_end_matches('/').to_string());
    }
    let h = host?.trim();
    let plain = !h.is_empty()
        && h.len() <= 255
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    plain.then(|| format!("http://{h}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_well_formed() {
        let a = new_token();
        let b = new_token();
        assert!(is_token(&a) && is_token(&b));
        assert_ne!(a, b);
        assert!(!is_token("../etc/passwd"));
    }

    #[test]
    fn a_report_lives_for_its_lifetime_only() {
        let live = ReportStore::new(Duration::from_secs(3600));
        let t = live.publish("<p>x</p>".into());
        assert_eq!(
            live.get(&t).as_deref().map(String::as_str),
            Some("<p>x</p>")
        );
        assert!(live.get(&new_token()).is_none());
        // Lifetime zero: expired as soon as issued.
        let dead = ReportStore::new(Duration::ZERO);
        let t = dead.publish("<p>x</p>".into());
        assert!(dead.get(&t).is_none());
    }

    #[test]
    fn link_base_prefers_configuration_and_refuses_odd_hosts() {
        assert_eq!(
            link_base(Some("https://cds.example.org/"), Some("evil")).as_deref(),
            Some("https://cds.example.org")
        );
        assert_eq!(
            link_base(None, Some("127.0.0.1:8085")).as_deref(),
            Some("http://127.0.0.1:8085")
        );
        assert_eq!(link_base(None, Some("a b/c")), None);
        assert_eq!(link_base(None, None), None);
    }
}
