//! The JSON tree the reader maps from: `serde_json::Value`'s shape and methods, but every node
//! lives in an [`Arena`] (a bump allocator) and strings and member names borrow from the text
//! they were parsed from; an object is a sorted slice of members instead of a `BTreeMap`.
//!
//! Why: building `serde_json::Value`s — a `String` per member name and per string, a B-tree node
//! per object — and dropping them again was the largest single cost of reading a population
//! (BENCHMARKS.md, "Population screening"). The reader only looks things up; it never needs
//! owned copies. With the nodes in an arena, a tree costs no allocation per object or array and
//! no walk to free it: the arena is reset (population screening: once per patient) or dropped.
//!
//! Invariants, so that reading is exactly what it was with `serde_json::Value`:
//! * an object's members are sorted by name and unique, the last of duplicate names winning —
//!   `serde_json::Map`'s (`BTreeMap`'s) iteration order and semantics;
//! * numbers are `serde_json::Number`, built as serde_json builds them;
//! * equality is structural, as `serde_json::Value`'s; `Display` is serde_json's compact JSON;
//! * a tree needs no `Drop` (checked at compile time below): the arena never runs destructors.
//!
//! `tests/prune.rs` checks, for every text of the shared data, that the tree equals and prints
//! as serde_json's `Value` of the same text, and that reading it gives what reading the
//! `serde_json::Value` gives. When this module replaced `serde_json::Value` in the reader, the
//! `Debug` of every `ReadOutput` over the shared data (read by directory, by file and from
//! values) was byte-identical before and after (BENCHMARKS.md, "FHIR reading"); the same check
//! was repeated when the nodes moved into the arena.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// Where the nodes of trees live (`bumpalo::Bump`): reset it to reuse its memory for the next
/// trees, drop it to free them all at once.
pub type Arena = bumpalo::Bump;

/// A JSON value (see the module doc).
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value<'a> {
    #[default]
    Null,
    Bool(bool),
    Number(Number),
    String(&'a str),
    Array(&'a [Value<'a>]),
    Object(Map<'a>),
}

// The arena never runs destructors: a tree must not own anything that needs one.
const _: () = assert!(!std::mem::needs_drop::<Value<'static>>());

/// `str`'s order (bytes, then length), compared in line. Why: member names are a few bytes
/// long, and `str::cmp` calls `memcmp` for every comparison — sorting each object's members
/// and the shape check's walk over them made `memcmp` 4 % of a population screening's
/// instructions.
#[inline]
pub fn name_cmp(a: &str, b: &str) -> Ordering {
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
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Map<'a> {
    members: &'a [(&'a str, Value<'a>)],
}

/// Sorts members given in text order by name and keeps the last of equal names (serde_json's
/// semantics); returns how many are kept (at the front).
fn sort_members(members: &mut [(&str, Value<'_>)]) -> usize {
    if !members
        .windows(2)
        .any(|w| name_cmp(w[0].0, w[1].0) != Ordering::Less)
    {
        return members.len();
    }
    // Stable: equal names keep their text order, so the last one is last.
    members.sort_by(|a, b| name_cmp(a.0, b.0));
    let mut kept = 0;
    for i in 0..members.len() {
        if kept > 0 && members[kept - 1].0 == members[i].0 {
            members.swap(kept - 1, i);
        } else {
            members.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

impl<'a> Map<'a> {
    /// Where `key` is. Objects up to [`LINEAR_LOOKUP_MAX`] members are scanned (`str`'s `==`
    /// compares lengths first, so a name is compared byte by byte only when the length matches).
    /// Why: a
    /// binary search calls `memcmp` at every step; in the population profile the lookups of the
    /// reader (a FHIR object has a dozen members or fewer) were 3 % of all CPU, mostly `memcmp`
    /// (callgrind: 2.4 % fewer instructions for the whole screening with the scan).
    fn position(&self, key: &str) -> Option<usize> {
        if self.members.len() <= LINEAR_LOOKUP_MAX {
            self.members.iter().position(|(k, _)| *k == key)
        } else {
            self.members
                .binary_search_by(|(k, _)| name_cmp(k, key))
                .ok()
        }
    }

    pub fn get(&self, key: &str) -> Option<&'a Value<'a>> {
        let members = self.members;
        self.position(key).map(|i| &members[i].1)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_some()
    }

    /// Members in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Value<'a>)> {
        self.members.iter().map(|(k, v)| (*k, v))
    }
}

impl<'a> Value<'a> {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&'a Value<'a>> {
        match self {
            Value::Object(m) => m.get(key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&'a str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&'a [Value<'a>]> {
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

    /// A view of a `serde_json::Value`: strings and names borrowed from it, the nodes in `arena`.
    pub fn from_serde(arena: &'a Arena, v: &'a serde_json::Value) -> Value<'a> {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(s),
            serde_json::Value::Array(a) => Value::Array(
                arena.alloc_slice_fill_iter(a.iter().map(|x| Value::from_serde(arena, x))),
            ),
            // serde_json's map iterates sorted with unique names: already a valid `Map`.
            serde_json::Value::Object(m) => Value::Object(Map {
                members: arena.alloc_slice_fill_iter(
                    m.iter()
                        .map(|(k, x)| (k.as_str(), Value::from_serde(arena, x))),
                ),
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

/// Parses one JSON text into a tree borrowing from it, its nodes in `arena`: what
/// `serde_json::from_slice::<Value>` would read, and failing where it fails.
pub fn parse<'a>(arena: &'a Arena, text: &'a [u8]) -> Result<Value<'a>, serde_json::Error> {
    parse_bytes(arena, text, false, &mut Scratch::default())
}

/// [`parse`] without the members the reader never reads ([`crate::NEVER_READ`], at any depth)
/// except those named in `keep`: for a caller that reads the same text itself and needs some of
/// those members (the CDS service reads a searchset's `link`). Fails where [`parse`] fails (the
/// members left out are still parsed, only not kept). Reading the resources of the tree gives
/// what reading the whole tree gives, except the reader's exact-duplicate check, which compares
/// whole resources: the caller must not pass it two resources of one type and id.
pub fn parse_pruned_keeping<'a>(
    arena: &'a Arena,
    text: &'a [u8],
    keep: &'static [&'static str],
) -> Result<Value<'a>, serde_json::Error> {
    parse_with(arena, text, Prune::Keeping(keep), &mut Scratch::default())
}

/// Which member names a parse leaves out.
#[derive(Clone, Copy)]
pub(crate) enum Prune {
    /// None: the whole text.
    Nothing,
    /// [`crate::NEVER_READ`].
    NeverRead,
    /// [`crate::NEVER_READ`] but these.
    Keeping(&'static [&'static str]),
}

impl Prune {
    #[inline]
    fn drops(self, name: &str) -> bool {
        match self {
            Prune::Nothing => false,
            Prune::NeverRead => crate::prune::never_read(name),
            Prune::Keeping(keep) => crate::prune::never_read(name) && !keep.contains(&name),
        }
    }
}

/// Why validate the whole text first: parsing from a `&str` skips serde_json's UTF-8 check of
/// every string, and one pass over the line is cheaper than one per string. A text that is not
/// UTF-8 is parsed from bytes, so it fails exactly where and how it would have.
pub(crate) fn parse_bytes<'a>(
    arena: &'a Arena,
    text: &'a [u8],
    prune: bool,
    scratch: &mut Scratch<'a>,
) -> Result<Value<'a>, serde_json::Error> {
    let prune = if prune {
        Prune::NeverRead
    } else {
        Prune::Nothing
    };
    parse_with(arena, text, prune, scratch)
}

/// [`parse_bytes`] with any [`Prune`].
fn parse_with<'a>(
    arena: &'a Arena,
    text: &'a [u8],
    prune: Prune,
    scratch: &mut Scratch<'a>,
) -> Result<Value<'a>, serde_json::Error> {
    scratch.clear();
    let build = Build {
        prune,
        arena,
        scratch,
    };
    match std::str::from_utf8(text) {
        Ok(t) => whole(serde_json::Deserializer::from_str(t), build),
        Err(_) => whole(serde_json::Deserializer::from_slice(text), build),
    }
}

/// Parses one whole JSON text that does not outlive the reading (e.g. a file of a directory),
/// nothing pruned: the text is first copied into `arena`, and the tree borrows from the copy.
pub(crate) fn parse_copy<'a>(arena: &'a Arena, text: &str) -> Result<Value<'a>, serde_json::Error> {
    let text: &'a str = arena.alloc_str(text);
    let build = Build {
        prune: Prune::Nothing,
        arena,
        scratch: &mut Scratch::default(),
    };
    whole(serde_json::Deserializer::from_str(text), build)
}

/// One value that must be the whole input (trailing whitespace only).
fn whole<'a, R: serde_json::de::Read<'a>>(
    mut de: serde_json::Deserializer<R>,
    build: Build<'_, 'a>,
) -> Result<Value<'a>, serde_json::Error> {
    let v = build.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Stacks the members and items of the objects and arrays being parsed, shared by all levels of
/// one parse (and reused across the texts of a batch): JSON does not say how many members an
/// object has, and the arena wants each object's members as one slice of the final size.
#[derive(Default)]
pub(crate) struct Scratch<'a> {
    members: Vec<(&'a str, Value<'a>)>,
    items: Vec<Value<'a>>,
}

impl Scratch<'_> {
    /// Forgets what a failed parse left (a parse that succeeds leaves nothing).
    fn clear(&mut self) {
        self.members.clear();
        self.items.clear();
    }
}

/// Builds a [`Value`] as serde_json's own visitor builds a `serde_json::Value` (numbers, last
/// duplicate name wins), borrowing strings the text holds unescaped and putting the others in
/// the arena.
struct Build<'s, 'a> {
    prune: Prune,
    arena: &'a Arena,
    scratch: &'s mut Scratch<'a>,
}

impl<'a> Build<'_, 'a> {
    /// The seed for a nested value, stacking on the same scratch.
    fn nested(&mut self) -> Build<'_, 'a> {
        Build {
            prune: self.prune,
            arena: self.arena,
            scratch: &mut *self.scratch,
        }
    }
}

impl<'a> DeserializeSeed<'a> for Build<'_, 'a> {
    type Value = Value<'a>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Value<'a>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'a> Visitor<'a> for Build<'_, 'a> {
    type Value = Value<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value<'a>, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Value<'a>, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Value<'a>, E> {
        Ok(Value::Number(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Value<'a>, E> {
        Ok(Number::from_f64(n).map_or(Value::Null, Value::Number))
    }
    fn visit_borrowed_str<E>(self, s: &'a str) -> Result<Value<'a>, E> {
        Ok(Value::String(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value<'a>, E> {
        Ok(Value::String(self.arena.alloc_str(s)))
    }
    fn visit_none<E>(self) -> Result<Value<'a>, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value<'a>, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'a>>(self, d: D) -> Result<Value<'a>, D::Error> {
        self.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'a>>(mut self, mut seq: A) -> Result<Value<'a>, A::Error> {
        let start = self.scratch.items.len();
        while let Some(v) = seq.next_element_seed(self.nested())? {
            self.scratch.items.push(v);
        }
        let items = self.arena.alloc_slice_clone(&self.scratch.items[start..]);
        self.scratch.items.truncate(start);
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'a>>(mut self, mut map: A) -> Result<Value<'a>, A::Error> {
        let start = self.scratch.members.len();
        while let Some(key) = map.next_key_seed(Name {
            prune: self.prune,
            arena: self.arena,
        })? {
            match key {
                Some(k) => {
                    let v = map.next_value_seed(self.nested())?;
                    self.scratch.members.push((k, v));
                }
                None => map.next_value_seed(crate::prune::Discard)?,
            }
        }
        let kept = sort_members(&mut self.scratch.members[start..]);
        let members = self
            .arena
            .alloc_slice_clone(&self.scratch.members[start..start + kept]);
        self.scratch.members.truncate(start);
        Ok(Value::Object(Map { members }))
    }
}

/// A member name: `None` for a pruned one (not kept).
struct Name<'a> {
    prune: Prune,
    arena: &'a Arena,
}

impl<'a> DeserializeSeed<'a> for Name<'a> {
    type Value = Option<&'a str>;
    fn deserialize<D: Deserializer<'a>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'a> Visitor<'a> for Name<'a> {
    type Value = Option<&'a str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, s: &'a str) -> Result<Self::Value, E> {
        Ok((!self.prune.drops(s)).then_some(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok((!self.prune.drops(s)).then(|| &*self.arena.alloc_str(s)))
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
            let arena = Arena::new();
            let ours = parse(&arena, text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let theirs: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            // Same members, same order, the last of duplicate names kept.
            prop_assert_eq!(ours.to_serde(), theirs.clone());
            let kept: Vec<&str> = ours
                .as_object()
                .map(|m| m.iter().map(|(k, _)| k).collect())
                .unwrap_or_default();
            prop_assert!(kept.windows(2).all(|w| w[0] < w[1]), "sorted, unique: {:?}", kept);
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
