//! Value sets from VSAC expansion bundles (a FHIR `Bundle` of `ValueSet`s with
//! `expansion.contains`), as the measures' CQL names them by canonical URL. The two measures'
//! bundles are embedded at build time from the shared data (see `build.rs`); any bundle can be
//! read at run time with [`ValueSets::from_bundle_json`].

use std::collections::{HashMap, HashSet};

use serde::Deserialize;

use crate::model::CodeableConcept;
use crate::MeasureError;

/// Code lists by value set URL: code system → codes of each expansion.
#[derive(Clone, Debug, Default)]
pub struct ValueSets {
    sets: HashMap<String, Codes>,
}

type Codes = HashMap<String, HashSet<String>>;

#[derive(Deserialize)]
struct Bundle {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    resource: Option<ValueSet>,
}

#[derive(Deserialize)]
struct ValueSet {
    url: Option<String>,
    expansion: Option<Expansion>,
}

#[derive(Deserialize)]
struct Expansion {
    #[serde(default)]
    contains: Vec<Contains>,
}

#[derive(Deserialize)]
struct Contains {
    system: Option<String>,
    code: Option<String>,
    #[serde(default)]
    contains: Vec<Contains>,
}

fn flatten(c: &[Contains], out: &mut Codes) {
    for x in c {
        if let (Some(s), Some(k)) = (&x.system, &x.code) {
            out.entry(s.clone()).or_default().insert(k.clone());
        }
        flatten(&x.contains, out);
    }
}

impl ValueSets {
    /// Reads a Bundle of expanded ValueSets; value sets without an expansion are an error
    /// (a measure cannot be evaluated against an unexpanded value set).
    pub fn from_bundle_json(text: &str) -> Result<Self, MeasureError> {
        let b: Bundle =
            serde_json::from_str(text).map_err(|e| MeasureError::ValueSets(e.to_string()))?;
        let mut out = Self::default();
        for vs in b.entry.into_iter().filter_map(|e| e.resource) {
            let url = vs
                .url
                .ok_or_else(|| MeasureError::ValueSets("a ValueSet without url".into()))?;
            let exp = vs
                .expansion
                .ok_or_else(|| MeasureError::ValueSets(format!("{url}: no expansion")))?;
            let mut codes = Codes::new();
            flatten(&exp.contains, &mut codes);
            let set = out.sets.entry(url).or_default();
            for (system, c) in codes {
                set.entry(system).or_default().extend(c);
            }
        }
        Ok(out)
    }

    /// Adds every value set of `other` (used to read several bundles).
    pub fn merge(&mut self, other: ValueSets) {
        for (url, codes) in other.sets {
            let set = self.sets.entry(url).or_default();
            for (system, c) in codes {
                set.entry(system).or_default().extend(c);
            }
        }
    }

    /// Whether the set is known (its expansion was read).
    pub fn contains_set(&self, url: &str) -> bool {
        self.sets.contains_key(url)
    }

    /// `concept in "Value Set"`: some coding of the concept is in the expansion.
    pub fn has(&self, url: &str, concept: Option<&CodeableConcept>) -> bool {
        let (Some(set), Some(cc)) = (self.sets.get(url), concept) else {
            return false;
        };
        cc.coding.iter().any(|c| match (&c.system, &c.code) {
            (Some(s), Some(k)) => set
                .get(s.as_str())
                .is_some_and(|codes| codes.contains(k.as_str())),
            _ => false,
        })
    }

    /// Number of value sets held.
    pub fn len(&self) -> usize {
        self.sets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }
}
