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
//! [`MAX_REPORTS`] the oldest go first (reports expire in the order they were issued: one
//! lifetime for all, so both are a pop from the front of the issue order).
//!
//! A hook call keeps the assessment, not the page: the HTML is rendered when the link is first
//! opened (most links never are; rendering every report at issue time was a fifth of the
//! service's CPU per request, issue 19), from the same assessment, so it is the same page.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use osteoguard_core::Assessment;

/// Reports kept at most (the oldest are dropped first).
pub const MAX_REPORTS: usize = 2048;

/// A report: its page, or the assessment it is rendered from on first use.
struct Content {
    assessment: Option<Arc<Assessment>>,
    html: OnceLock<Arc<String>>,
}

impl Content {
    fn html(&self) -> Arc<String> {
        self.html
            .get_or_init(|| {
                Arc::new(
                    self.assessment
                        .as_ref()
                        .map(|a| osteoguard_report::html::render(a))
                        .unwrap_or_default(),
                )
            })
            .clone()
    }
}

struct Entry {
    content: Arc<Content>,
    expires: Instant,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    /// Tokens in the order issued (= the order they expire).
    order: VecDeque<(Instant, String)>,
}

/// The in-memory report store.
pub struct ReportStore {
    ttl: Duration,
    entries: Mutex<Entries>,
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
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Keeps `html` for the lifetime and returns its token.
    pub fn publish(&self, html: String) -> String {
        self.keep(Content {
            assessment: None,
            html: OnceLock::from(Arc::new(html)),
        })
    }

    /// Keeps the report of `assessment` (rendered when first asked for) for the lifetime and
    /// returns its token. The assessment may be shared (`Arc`): the hook keeps no copy.
    pub fn publish_assessment(&self, assessment: impl Into<Arc<Assessment>>) -> String {
        self.keep(Content {
            assessment: Some(assessment.into()),
            html: OnceLock::new(),
        })
    }

    fn keep(&self, content: Content) -> String {
        let token = new_token();
        let now = Instant::now();
        let mut e = match self.entries.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Entries { map, order } = &mut *e;
        while let Some((expires, t)) = order.front() {
            if *expires > now && map.len() < MAX_REPORTS {
                break;
            }
            map.remove(t);
            order.pop_front();
        }
        let expires = now + self.ttl;
        map.insert(
            token.clone(),
            Entry {
                content: Arc::new(content),
                expires,
            },
        );
        order.push_back((expires, token.clone()));
        token
    }

    /// The report under `token` while it lives.
    pub fn get(&self, token: &str) -> Option<Arc<String>> {
        if !is_token(token) {
            return None;
        }
        let now = Instant::now();
        let content = {
            let mut e = match self.entries.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            match e.map.get(token) {
                Some(entry) if entry.expires > now => entry.content.clone(),
                Some(_) => {
                    e.map.remove(token);
                    return None;
                }
                None => return None,
            }
        };
        // Rendered (once) outside the lock.
        Some(content.html())
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

    /// A kept assessment is served as exactly the page rendering it gives, every time.
    #[test]
    fn a_kept_assessment_serves_the_page_it_renders() {
        let seed =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/seed-case.json");
        let read = osteoguard_fhir::read_path(&seed).unwrap();
        let pd = read.patient("ku-73f").unwrap();
        let as_of = chrono::NaiveDate::from_ymd_opt(2023, 6, 15).unwrap();
        let a = osteoguard_core::assess_with_issues(
            &pd.record,
            &pd.issues,
            as_of,
            &osteoguard_core::Config::default(),
        );
        let page = osteoguard_report::html::render(&a);
        assert!(page.contains("Patient/ku-73f"));
        let store = ReportStore::new(Duration::from_secs(3600));
        let t = store.publish_assessment(a);
        for _ in 0..2 {
            assert_eq!(store.get(&t).as_deref(), Some(&page));
        }
        let dead = ReportStore::new(Duration::ZERO);
        let expired = dead.publish_assessment(osteoguard_core::assess_with_issues(
            &pd.record,
            &pd.issues,
            as_of,
            &osteoguard_core::Config::default(),
        ));
        assert!(dead.get(&expired).is_none());
    }

    #[test]
    fn above_the_cap_the_oldest_go_first() {
        let store = ReportStore::new(Duration::from_secs(3600));
        let tokens: Vec<String> = (0..=MAX_REPORTS)
            .map(|i| store.publish(format!("<p>{i}</p>")))
            .collect();
        assert!(store.get(&tokens[0]).is_none(), "the oldest is dropped");
        for (i, t) in tokens.iter().enumerate().skip(1).step_by(97) {
            assert_eq!(
                store.get(t).as_deref().map(String::as_str),
                Some(format!("<p>{i}</p>").as_str())
            );
        }
        let last = tokens.last().map(String::as_str).unwrap_or_default();
        assert!(store.get(last).is_some());
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
