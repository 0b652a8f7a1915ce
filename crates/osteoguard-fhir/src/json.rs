//! The JSON tree the reader maps from: `serde_json::Value`'s shape and methods, but strings and
//! member names borrow from the text they were parsed from (`Cow`), and an object is a sorted
//! vector of members instead of a `BTreeMap`.
//!
//! Why: building `serde_json::Value`s — a `String` per member name and per string, a B-tree node
//! per object — and dropping them again was the largest single cost of reading a population
//! (BENCHMARKS.md, "Population screening"). The reader only looks things up; it never needs
//! owned copies.
//!
//! Invariants, so that reading is exactly what it was with `serde_json::Value`:
//! * an object's members are sorted by name and unique, the last of duplicate names winning —
//!   `serde_json::Map`'s (`BTreeMap`'s) iteration order and semantics;
//! * numbers are `serde_json::Number`, built as serde_json builds them;
//! * equality is structural, as `serde_json::Value`'s; `Display` is serde_json's compact JSON.
//!
//! `tests/prune.rs` checks, for every text of the shared data, that the tree equals and prints
//! as serde_json's `Value` of the same text, and that reading it gives what reading the
//! `serde_json::Value` gives. When this module replaced `serde_json::Value` in the reader, the
//! `Debug` of every `ReadOutput` over the shared data (read by directory, by file and from
//! values) was byte-identical before and after (BENCHMARKS.md, "FHIR reading").

use std::borrow::Cow;
use std::cmp::Ordering;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON value (see the module doc).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Map<'a>),
}

/// `str`'s order (bytes, then length), compared in line. Why: member names are a few bytes
/// long, and `str::cmp` calls `memcmp` for every comparison — sorting each object's members
/// and the shape check's walk over them made `memcmp` 4 % of a population screening's
/// instructions.
#[inline]
pub(crate) fn name_cmp(a: &str, b: &str) -> Ordering {
    for (x, y) in a.bytes().zip(b.bytes()) {
        if x != y {
            return x.cmp(&y);
        }
    }
    a.len().cmp(&b.len())
}

/// Objects with at most this many members are searched linearly (see `Map::position`).
const LINEAR_LOOKUP_MAX: usize = 16;

/// A JSON object: members sorted by name, names unique.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Map<'a> {
    members: Vec<(Cow<'a, str>, Value<'a>)>,
}

impl<'a> Map<'a> {
    /// From members in text order: sorted by name, the last of equal names kept.
    fn from_members(mut members: Vec<(Cow<'a, str>, Value<'a>)>) -> Self {
        if members
            .windows(2)
            .any(|w| name_cmp(&w[0].0, &w[1].0) != Ordering::Less)
        {
            // Stable: equal names keep their text order, so the last one is last.
            members.sort_by(|a, b| name_cmp(&a.0, &b.0));
            let mut out: Vec<(Cow<'a, str>, Value<'a>)> = Vec::with_capacity(members.len());
            for m in members {
                match out.last_mut() {
                    Some(last) if last.0 == m.0 => *last = m,
                    _ => out.push(m),
                }
            }
            members = out;
        }
        Map { members }
    }

    /// Where `key` is. Objects up to [`LINEAR_LOOKUP_MAX`] members are scanned comparing
    /// lengths first, so a name is compared byte by byte only when the length matches. Why: a
    /// binary search calls `memcmp` at every step; in the population profile the lookups of the
    /// reader (a FHIR object has a dozen members or fewer) were 3 % of all CPU, mostly `memcmp`
    /// (callgrind: 2.4 % fewer instructions for the whole screening with the scan).
    fn position(&self, key: &str) -> Option<usize> {
        if self.members.len() <= LINEAR_LOOKUP_MAX {
            self.members
                .iter()
                .position(|(k, _)| k.len() == key.len() && k.as_bytes() == key.as_bytes())
        } else {
            self.members
                .binary_search_by(|(k, _)| name_cmp(k, key))
                .ok()
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.position(key).map(|i| &self.members[i].1)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        self.position(key).map(|i| &mut self.members[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    pub fn remove(&mut self, key: &str) -> Option<Value<'a>> {
        self.position(key).map(|i| self.members.remove(i).1)
    }

    /// Members in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value<'a>)> {
        self.members.iter().map(|(k, v)| (k.as_ref(), v))
    }
}

impl<'a> IntoIterator for Map<'a> {
    type Item = (Cow<'a, str>, Value<'a>);
    type IntoIter = std::vec::IntoIter<(Cow<'a, str>, Value<'a>)>;
    fn into_iter(self) -> Self::IntoIter {
        self.members.into_iter()
    }
}

impl<'a> Value<'a> {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        match self {
            Value::Object(m) => m.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value<'a>> {
        match self {
            Value::Object(m) => m.get_mut(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value<'a>>> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map<'a>> {
        match self {
            Value::Object(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn is_object(&self) -> bool {
        matches!(self, Value::Object(_))
    }

    /// Takes the value out, leaving `null`.
    pub fn take(&mut self) -> Value<'a> {
        std::mem::take(self)
    }

    /// The same value as a `serde_json::Value` (messages, tests).
    pub fn to_serde(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Value::Number(n.clone()),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::Array(a) => serde_json::Value::Array(a.iter().map(Value::to_serde).collect()),
            Value::Object(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, v)| (k.to_string(), v.to_serde()))
                    .collect(),
            ),
        }
    }

    /// A view of a `serde_json::Value` (strings and names borrowed from it).
    pub fn from_serde(v: &'a serde_json::Value) -> Value<'a> {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(Cow::Borrowed(s)),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from_serde).collect()),
            // serde_json's map iterates sorted with unique names: already a valid `Map`.
            serde_json::Value::Object(m) => Value::Object(Map::from_members(
                m.iter()
                    .map(|(k, v)| (Cow::Borrowed(k.as_str()), Value::from_serde(v)))
                    .collect(),
            )),
        }
    }

    /// The same value owning all its strings.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Null => Value::Null,
            Value::Bool(b) => Value::Bool(b),
            Value::Number(n) => Value::Number(n),
            Value::String(s) => Value::String(Cow::Owned(s.into_owned())),
            Value::Array(a) => Value::Array(a.into_iter().map(Value::into_owned).collect()),
            Value::Object(m) => Value::Object(Map {
                members: m
                    .members
                    .into_iter()
                    .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                    .collect(),
            }),
        }
    }
}

impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only messages print JSON: exactly what serde_json prints.
        fmt::Display::fmt(&self.to_serde(), f)
    }
}

/// Parses one JSON text into a tree borrowing from it: what `serde_json::from_slice::<Value>`
/// would read, and failing where it fails.
pub fn parse(text: &[u8]) -> Result<Value<'_>, serde_json::Error> {
    parse_bytes(text, false)
}

/// Why validate the whole text first: parsing from a `&str` skips serde_json's UTF-8 check of
/// every string, and one pass over the line is cheaper than one per string. A text that is not
/// UTF-8 is parsed from bytes, so it fails exactly where and how it would have.
pub(crate) fn parse_bytes(text: &[u8], prune: bool) -> Result<Value<'_>, serde_json::Error> {
    let build = Build {
        prune,
        owned: false,
    };
    match std::str::from_utf8(text) {
        Ok(t) => whole(serde_json::Deserializer::from_str(t), build),
        Err(_) => whole(serde_json::Deserializer::from_slice(text), build),
    }
}

/// Parses one whole JSON text into a tree that owns its strings (for input that does not outlive
/// the reading, e.g. a file of a directory), nothing pruned.
pub(crate) fn parse_owned(text: &str) -> Result<Value<'static>, serde_json::Error> {
    let build = Build {
        prune: false,
        owned: true,
    };
    // Every string is already owned: this moves them (and rebuilds the containers in place).
    whole(serde_json::Deserializer::from_str(text), build).map(Value::into_owned)
}

/// One value that must be the whole input (trailing whitespace only).
fn whole<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    build: Build,
) -> Result<Value<'de>, serde_json::Error> {
    let v = build.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Builds a [`Value`] as serde_json's own visitor builds a `serde_json::Value` (numbers, last
/// duplicate name wins), borrowing strings the text holds unescaped.
#[derive(Clone, Copy)]
struct Build {
    prune: bool,
    /// Copy every string (no borrowing from the text).
    owned: bool,
}

impl<'de> DeserializeSeed<'de> for Build {
    type Value = Value<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build {
    type Value = Value<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value<'de>, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value<'de>, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value<'de>, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value<'de>, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'de>, E> {
        Ok(Value::String(if self.owned {
            Cow::Owned(s.to_owned())
        } else {
            Cow::Borrowed(s)
        }))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Value<'de>, E> {
        Ok(Value::String(Cow::Owned(s)))
    }
    fn visit_none<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value<'de>, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value<'de>, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
        let mut members = Vec::new();
        while let Some(key) = map.next_key_seed(Name {
            prune: self.prune,
            owned: self.owned,
        })? {
            match key {
                Some(k) => {
                    let v = map.next_value_seed(self)?;
                    members.push((k, v));
                }
                None => map.next_value_seed(crate::prune::Discard)?,
            }
        }
        Ok(Value::Object(Map::from_members(members)))
    }
}

/// A member name: `None` for a pruned one (not kept).
struct Name {
    prune: bool,
    owned: bool,
}

impl<'de> DeserializeSeed<'de> for Name {
    type Value = Option<Cow<'de, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Name {
    type Value = Option<Cow<'de, str>>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        if self.prune && crate::prune::never_read(s) {
            Ok(None)
        } else if self.owned {
            Ok(Some(Cow::Owned(s.to_owned())))
        } else {
            Ok(Some(Cow::Borrowed(s)))
        }
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok((!(self.prune && crate::prune::never_read(s))).then(|| Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok((!(self.prune && crate::prune::never_read(&s))).then_some(Cow::Owned(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The in-line name order is `str`'s order.
        #[test]
        fn name_order_is_str_order(a in ".{0,6}", b in ".{0,6}") {
            prop_assert_eq!(name_cmp(&a, &b), a.cmp(&b));
        }

        /// Lookups (linear for small objects, binary search for large ones) find exactly what
        /// serde_json's map finds, duplicates resolved the same way (last wins).
        #[test]
        fn lookups_agree_with_serde_json(
            names in proptest::collection::vec("[a-dA-D]{0,4}", 0..40),
            probes in proptest::collection::vec("[a-dA-D]{0,4}", 0..20),
        ) {
            let text = format!(
                "{{{}}}",
                names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{n:?}:{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let ours = parse(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let theirs: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let map = ours.as_object().ok_or_else(|| TestCaseError::fail("not an object"))?;
            for key in names.iter().chain(&probes) {
                prop_assert_eq!(
                    map.get(key).and_then(Value::as_i64),
                    theirs.get(key).and_then(serde_json::Value::as_i64),
                    "key {:?}", key
                );
                prop_assert_eq!(map.contains_key(key), theirs.get(key).is_some());
            }
        }
    }
}
