//! Fetching what the prefetch did not carry from the CDS client's `fhirServer`, with its
//! `fhirAuthorization` bearer token: one read or search per template, Bundle `next` links
//! followed (same server only, so the token never leaves it), bounded pages, per-request
//! timeout.

use std::time::Duration;

use axum::body::Bytes;
use osteoguard_fhir::json::{self, Arena, Value};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("FHIR server unreachable or timed out ({0})")]
    Unavailable(String),
    #[error("FHIR server answered HTTP {status} for {what}")]
    Status { status: u16, what: String },
    #[error("FHIR server returned something that is not FHIR JSON for {0}")]
    NotFhir(String),
    #[error("more than {0} pages of search results")]
    TooManyPages(usize),
    #[error("fhirServer is not an http(s) URL")]
    BadBase,
}

pub struct FhirClient {
    http: reqwest::Client,
    max_pages: usize,
}

/// `OperationOutcome`s and `null`s stand for "no data", never for a failure (CDS Hooks §prefetch).
pub fn is_absent(v: &Value) -> bool {
    v.is_null() || v.get("resourceType").and_then(Value::as_str) == Some("OperationOutcome")
}

/// The resources of a Bundle (entries that are OperationOutcomes dropped), or the value itself.
/// Nothing is copied: a tree's nodes are slices of its arena, so the values pushed are views.
pub fn resources_of<'a>(v: &Value<'a>, out: &mut Vec<Value<'a>>) {
    if is_absent(v) {
        return;
    }
    if v.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        for e in v
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(r) = e.get("resource") {
                let mode = e.get("search").and_then(|s| s.get("mode"));
                if mode.and_then(Value::as_str) == Some("outcome") {
                    continue;
                }
                resources_of(r, out);
            }
        }
    } else if v.get("resourceType").and_then(Value::as_str).is_some() {
        out.push(v.clone());
    }
}

/// The `next` link of a searchset Bundle.
pub fn next_link<'a>(bundle: &Value<'a>) -> Option<&'a str> {
    bundle
        .get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
}

/// What a fetched page is: `None` when it is not JSON; else whether it names a `resourceType`
/// and its `next` link. (The page is parsed here into a scratch arena; whoever keeps the page
/// parses it again into its own.)
fn inspect(page: &[u8]) -> Option<(bool, Option<String>)> {
    let arena = Arena::new();
    let v = json::parse(&arena, page).ok()?;
    let fhir = v.get("resourceType").and_then(Value::as_str).is_some();
    Some((fhir, next_link(&v).map(str::to_string)))
}

fn base_of(fhir_server: &str) -> Result<String, FetchError> {
    let u = url::Url::parse(fhir_server).map_err(|_| FetchError::BadBase)?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(FetchError::BadBase);
    }
    Ok(fhir_server.trim_end_matches('/').to_string())
}

impl FhirClient {
    pub fn new(timeout: Duration, max_pages: usize) -> Result<FhirClient, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(FhirClient { http, max_pages })
    }

    async fn get(&self, url: &str, token: Option<&str>) -> Result<(u16, Bytes), FetchError> {
        let mut req = self
            .http
            .get(url)
            .header("Accept", "application/fhir+json, application/json");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| FetchError::Unavailable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .await
            .map_err(|e| FetchError::Unavailable(e.without_url().to_string()))?;
        Ok((status, body))
    }

    /// Runs one prefetch query (`Patient/123` or `Observation?patient=123&…`) against
    /// `fhir_server`: the bodies of the pages it took (a search's `next` links followed), each
    /// FHIR JSON. A read that finds nothing (404/410) is absent data (no page), not an error.
    pub async fn query(
        &self,
        fhir_server: &str,
        token: Option<&str>,
        query: &str,
    ) -> Result<Vec<Bytes>, FetchError> {
        let base = base_of(fhir_server)?;
        let url = format!("{base}/{}", query.trim_start_matches('/'));
        let is_read = !query.contains('?');
        let (status, body) = self.get(&url, token).await?;
        let what = query.split('?').next().unwrap_or_default().to_string();
        if is_read && (status == 404 || status == 410) {
            return Ok(Vec::new());
        }
        if !(200..300).contains(&status) {
            return Err(FetchError::Status { status, what });
        }
        let next = match inspect(&body) {
            Some((true, next)) => next,
            _ => return Err(FetchError::NotFhir(what)),
        };
        let mut pages = vec![body];
        if !is_read {
            self.follow(&base, token, next, &mut pages).await?;
        }
        Ok(pages)
    }

    /// Follows `next` links of a searchset Bundle (from a search or from the prefetch),
    /// starting at `next` (the first page's link), appending the body of each further page.
    pub async fn follow(
        &self,
        fhir_server: &str,
        token: Option<&str>,
        mut next: Option<String>,
        pages: &mut Vec<Bytes>,
    ) -> Result<(), FetchError> {
        let base = base_of(fhir_server)?;
        let mut count = 1;
        while let Some(link) = next {
            let link = if link.starts_with("http://") || link.starts_with("https://") {
                link
            } else {
                format!("{base}/{}", link.trim_start_matches('/'))
            };
            if !link.starts_with(&format!("{base}/")) && !link.starts_with(&format!("{base}?")) {
                // Never send the bearer token to another server.
                return Err(FetchError::Status {
                    status: 0,
                    what: "next link outside fhirServer".into(),
                });
            }
            count += 1;
            if count > self.max_pages {
                return Err(FetchError::TooManyPages(self.max_pages));
            }
            let (status, body) = self.get(&link, token).await?;
            if !(200..300).contains(&status) {
                return Err(FetchError::Status {
                    status,
                    what: "next page".into(),
                });
            }
            let Some((_, after)) = inspect(&body) else {
                return Err(FetchError::NotFhir("next page".into()));
            };
            next = after;
            pages.push(body);
        }
        Ok(())
    }
}
