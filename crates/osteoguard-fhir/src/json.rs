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
    let text_str = std::str::from_utf8(text);
    if let Ok(t) = text_str {
        if let Some(v) = direct(arena, t, prune, scratch) {
            return Ok(v);
        }
        scratch.clear();
    }
    let build = Build {
        prune,
        arena,
        scratch,
    };
    match text_str {
        Ok(t) => whole(serde_json::Deserializer::from_str(t), build),
        Err(_) => whole(serde_json::Deserializer::from_slice(text), build),
    }
}

/// The tree of `text` built straight from its bytes, without serde's visitor — or `None` where
/// this builder is not certain to build what [`Build`] builds: any escape in a string or name, a
/// control character in a string, a number other than a plain non-negative integer of at most
/// 18 digits that `serde_json` does not convert itself (below), nesting deeper than
/// [`DIRECT_MAX_DEPTH`], anything that is not JSON. The caller then parses `text` with
/// `serde_json` as before, which builds the tree or words the error.
///
/// Why: the visitor (a `MapAccess` / `SeqAccess` call per member and item, a seed per value, the
/// member names through `Name`) was most of pass 2's parse of the kept lines in population
/// screening, 13 % of its instructions (BENCHMARKS.md, "Population screening", `scr4`).
///
/// Exactly what [`Build`] builds (test `direct_builds_what_serde_json_builds` here, and
/// `tests/prune.rs` over the shared data): unescaped strings and names borrowed from `text`;
/// members sorted by [`sort_members`] (the last of equal names wins); a pruned member's value
/// checked as [`crate::prune::Discard`] checks it, by the same rules as a kept one; numbers with a
/// fraction, an exponent or a sign, and longer integers, converted by `serde_json` itself from
/// their text (`serde_json::from_str::<Number>`), so they are the same `Number`s and fail where
/// they fail.
fn direct<'a>(
    arena: &'a Arena,
    text: &'a str,
    prune: Prune,
    scratch: &mut Scratch<'a>,
) -> Option<Value<'a>> {
    let mut d = Direct {
        b: text.as_bytes(),
        s: text,
        i: 0,
        arena,
        prune,
        scratch,
    };
    d.ws();
    let v = d.value(0)?;
    d.ws();
    (d.i == d.b.len()).then_some(v)
}

/// Deepest nesting [`direct`] builds (`serde_json` refuses beyond 128; deeper texts are left to
/// it).
const DIRECT_MAX_DEPTH: usize = 100;

/// The first byte at or after `i` that is `"`, `\\` or a control character below 0x20, or
/// `b.len()`; eight bytes at a time (a byte `x` is flagged by `(x - c) & !x & 0x80` when it is
/// below `c`, or equal to `c` after `x ^ c`; a borrow can only flag bytes after a truly flagged
/// one, so the lowest flagged byte is exact). Shared with population screening's byte scanner
/// (`osteoguard_screen::scan`), where a vector loop was tried and measured slower on the many
/// short strings of FHIR (BENCHMARKS.md, `scr4`).
#[inline(always)]
pub fn plain_end(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(bytes) = b.get(i..i + 8) {
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        let w = u64::from_le_bytes(a);
        let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
        let q = w ^ (ONES * u64::from(b'"'));
        let q = q.wrapping_sub(ONES) & !q;
        let e = w ^ (ONES * u64::from(b'\\'));
        let e = e.wrapping_sub(ONES) & !e;
        let m = (ctrl | q | e) & HIGH;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < b.len() && !matches!(b[i], b'"' | b'\\' | 0..=0x1f) {
        i += 1;
    }
    i
}

/// Powers of ten that are exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The `Number` of a JSON number's text when it is a common one, converted here as `serde_json`
/// converts it; `None` for any other text (the caller lets `serde_json` convert it, or refuse it).
///
/// Common: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?` with at most 15 digits before the
/// exponent and a decimal exponent of at most 22 either way, and not a negative zero. An integer
/// is `serde_json`'s `u64` (non-negative) or `i64` (negative). A number with a fraction or an
/// exponent is the `f64` nearest to its value: `serde_json` computes it as the digits (exact in an
/// `f64` below 2^53) times or divided by an exact power of ten — one correctly rounded operation
/// on exact operands, so the nearest `f64` whichever way it is computed (with or without
/// `serde_json`'s `float_roundtrip`).
fn plain_number(t: &[u8]) -> Option<Number> {
    let (negative, t) = match t.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, t),
    };
    let int_end = t
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(t.len());
    let (int, rest) = t.split_at(int_end);
    if int.is_empty() || (int[0] == b'0' && int.len() > 1) {
        return None;
    }
    let (frac, rest) = match rest.split_first() {
        Some((b'.', rest)) => {
            let end = rest
                .iter()
                .position(|b| !b.is_ascii_digit())
                .unwrap_or(rest.len());
            if end == 0 {
                return None;
            }
            rest.split_at(end)
        }
        _ => (&rest[..0], rest),
    };
    let exp: i32 = match rest.split_first() {
        None => 0,
        Some((b'e' | b'E', rest)) => {
            let (neg, digits) = match rest.split_first()? {
                (b'-', d) => (true, d),
                (b'+', d) => (false, d),
                _ => (false, rest),
            };
            if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let e = digits
                .iter()
                .fold(0i32, |e, d| e * 10 + i32::from(d - b'0'));
            if neg {
                -e
            } else {
                e
            }
        }
        Some(_) => return None,
    };
    if int.len() + frac.len() > 15 {
        return None;
    }
    let significand = int
        .iter()
        .chain(frac)
        .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    if frac.is_empty() && rest.is_empty() {
        return match (negative, significand) {
            (false, n) => Some(Number::from(n)),
            // `-0` is a float in serde_json.
            (true, 0) => None,
            (true, n) => i64::try_from(n).ok().map(|n| Number::from(-n)),
        };
    }
    let exp = exp - i32::try_from(frac.len()).ok()?;
    let pow = *POW10.get(usize::try_from(exp.unsigned_abs()).ok()?)?;
    // `significand` < 10^15 < 2^53: exact.
    #[allow(clippy::cast_precision_loss)]
    let f = significand as f64;
    let f = if exp >= 0 { f * pow } else { f / pow };
    if negative && significand == 0 {
        return None;
    }
    Number::from_f64(if negative { -f } else { f })
}

/// `s[start..end]` when both are character boundaries (they are, between two quotes of a
/// `str`). Why not `s.get(start..end)`: it was not inlined, and its call was 2 % of a
/// screening's instructions (callgrind, 2 000 patients) for strings of ~13 bytes.
#[inline(always)]
pub fn between(s: &str, start: usize, end: usize) -> Option<&str> {
    s.split_at_checked(end)?
        .0
        .split_at_checked(start)
        .map(|(_, t)| t)
}

/// [`direct`]'s state: the text, where it is, and where the tree goes.
struct Direct<'s, 'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
    arena: &'a Arena,
    prune: Prune,
    scratch: &'s mut Scratch<'a>,
}

impl<'a> Direct<'_, 'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A string at `"` without escapes or control characters, borrowed from the text.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let end = plain_end(self.b, start);
        if *self.b.get(end)? != b'"' {
            return None;
        }
        self.i = end + 1;
        between(self.s, start, end)
    }

    /// A number, as `serde_json` reads it into a `Value` (see [`direct`]).
    fn number(&mut self) -> Option<Number> {
        let start = self.i;
        while let Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') = self.peek() {
            self.i += 1;
        }
        let t = self.s.get(start..self.i)?;
        match plain_number(t.as_bytes()) {
            Some(n) => Some(n),
            None => serde_json::from_str::<Number>(t).ok(),
        }
    }

    /// The value at `self.i` (after whitespace).
    fn value(&mut self, depth: usize) -> Option<Value<'a>> {
        match self.peek()? {
            b'"' => self.string().map(Value::String),
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b't' => self.literal(b"true").map(|()| Value::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Value::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Value::Null),
            b'-' | b'0'..=b'9' => self.number().map(Value::Number),
            _ => None,
        }
    }

    /// A pruned member's value: read by the same rules as [`Self::value`] (so it fails where
    /// that fails), nothing built.
    fn skip(&mut self, depth: usize) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(|_| ()),
            open @ (b'{' | b'[') => {
                if depth + 1 > DIRECT_MAX_DEPTH {
                    return None;
                }
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.peek()? == close {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        if self.peek()? != b':' {
                            return None;
                        }
                        self.i += 1;
                        self.ws();
                    }
                    self.skip(depth + 1)?;
                    self.ws();
                    match self.peek()? {
                        b',' => self.i += 1,
                        c if c == close => {
                            self.i += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(|_| ()),
            _ => None,
        }
    }

    fn array(&mut self, depth: usize) -> Option<Value<'a>> {
        if depth > DIRECT_MAX_DEPTH {
            return None;
        }
        self.i += 1;
        self.ws();
        let start = self.scratch.items.len();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                let v = self.value(depth)?;
                self.scratch.items.push(v);
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b']' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let items = self.arena.alloc_slice_clone(&self.scratch.items[start..]);
        self.scratch.items.truncate(start);
        Some(Value::Array(items))
    }

    fn object(&mut self, depth: usize) -> Option<Value<'a>> {
        if depth > DIRECT_MAX_DEPTH {
            return None;
        }
        self.i += 1;
        self.ws();
        let start = self.scratch.members.len();
        if self.peek()? == b'}' {
            self.i += 1;
        } else {
            loop {
                self.ws();
                let name = self.string()?;
                self.ws();
                if self.peek()? != b':' {
                    return None;
                }
                self.i += 1;
                self.ws();
                if self.prune.drops(name) {
                    self.skip(depth)?;
                } else {
                    let v = self.value(depth)?;
                    self.scratch.members.push((name, v));
                }
                self.ws();
                match self.peek()? {
                    b',' => self.i += 1,
                    b'}' => {
                        self.i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        let kept = sort_members(&mut self.scratch.members[start..]);
        let members = self
            .arena
            .alloc_slice_clone(&self.scratch.members[start..start + kept]);
        self.scratch.members.truncate(start);
        Some(Value::Object(Map { members }))
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

    /// `text` as it was parsed before [`direct`]: serde_json's deserializer and [`Build`].
    fn by_serde<'a>(
        arena: &'a Arena,
        text: &'a str,
        prune: Prune,
    ) -> Result<Value<'a>, serde_json::Error> {
        let build = Build {
            prune,
            arena,
            scratch: &mut Scratch::default(),
        };
        whole(serde_json::Deserializer::from_str(text), build)
    }

    /// Where [`direct`] answers, it builds what serde_json builds (nothing pruned, and pruned),
    /// and [`parse_with`] gives serde_json's result and error either way. Returns whether
    /// [`direct`] answered (pruned or not: they must agree).
    fn direct_agrees(text: &str) -> bool {
        let mut answered = None;
        for prune in [Prune::Nothing, Prune::NeverRead] {
            let arena = Arena::new();
            let mut scratch = Scratch::default();
            let ours = direct(&arena, text, prune, &mut scratch);
            let theirs = by_serde(&arena, text, prune);
            if let Some(ours) = &ours {
                let theirs = theirs
                    .as_ref()
                    .unwrap_or_else(|e| panic!("built a text serde_json refuses ({e}): {text}"));
                assert_eq!(ours, theirs, "{text}");
                assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
                assert!(scratch.members.is_empty() && scratch.items.is_empty());
            }
            let via = parse_with(&arena, text.as_bytes(), prune, &mut scratch);
            match (&via, &theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                _ => panic!("{text}: {via:?} / {theirs:?}"),
            }
            assert!(answered.is_none_or(|a| a == ours.is_some()), "{text}");
            answered = Some(ours.is_some());
        }
        answered == Some(true)
    }

    /// A JSON number's text (and some that are not numbers).
    fn number_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "-?(0|[1-9][0-9]{0,20})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
            "-?[0-9]{1,4}",
            "-?[0-9]{0,3}\\.?[0-9]{0,3}[eE]?[+-]?[0-9]{0,2}",
            any::<f64>().prop_map(|f| f.to_string()),
            any::<i64>().prop_map(|i| i.to_string()),
            any::<u64>().prop_map(|i| i.to_string()),
        ]
    }

    /// A JSON string's text: plain, or with escapes and characters outside ASCII.
    fn string_text() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[a-zA-Z0-9 é/:.-]{0,12}".prop_map(|s| format!("\"{s}\"")),
            1 => any::<String>().prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
            1 => "[a-z\\\\\"\u{1}\t]{0,6}".prop_map(|s| format!("\"{s}\"")),
        ]
    }

    /// A member name: the pruned ones, the read ones, duplicates of both.
    fn name_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("\"meta\"".to_string()),
            Just("\"name\"".to_string()),
            Just("\"id\"".to_string()),
            Just("\"code\"".to_string()),
            "[a-c]{1,2}".prop_map(|s| format!("\"{s}\"")),
            Just("\"na\\u006de\"".to_string()),
        ]
    }

    /// JSON texts (most of them valid), with whitespace between tokens.
    fn json_text() -> impl Strategy<Value = String> {
        let ws = || prop_oneof![4 => Just(""), 1 => Just(" "), 1 => Just("\n\t\r ")];
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            number_text(),
            string_text(),
        ];
        leaf.prop_recursive(5, 64, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec((ws(), inner.clone()), 0..6).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(w, v)| format!("{w}{v}{w}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                proptest::collection::vec((ws(), name_text(), inner), 0..6).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(w, k, v)| format!("{w}{k}{w}:{w}{v}{w}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Generated JSON: where the direct builder answers, it builds what serde_json builds.
        #[test]
        fn direct_builds_what_serde_json_builds(text in json_text()) {
            let answered = direct_agrees(&text);
            // It answers for every text without escapes, long numbers or odd number forms.
            if !text.contains('\\')
                && !text.contains(|c: char| c < ' ' && !matches!(c, '\n' | '\t' | '\r'))
                && serde_json::from_str::<serde_json::Value>(&text).is_ok()
                && !text.contains(['e', 'E'])
                && !text.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() > 15)
            {
                prop_assert!(answered, "{}", text);
            }
        }

        /// The same texts cut short or with one byte changed.
        #[test]
        fn direct_refuses_what_serde_json_refuses(
            text in json_text(),
            at in any::<proptest::sample::Index>(),
            byte in prop_oneof![
                Just(b'"'), Just(b'\\'), Just(b'}'), Just(b']'), Just(b','), Just(b':'),
                Just(b'0'), Just(b'-'), Just(b'.'), Just(b'e'), Just(b' '), Just(1u8), Just(b'x')
            ],
        ) {
            let k = at.index(text.len() + 1);
            if let Some(cut) = text.get(..k) {
                direct_agrees(cut);
            }
            let mut edited = text.clone().into_bytes();
            if k < edited.len() {
                edited[k] = byte;
                if let Ok(edited) = std::str::from_utf8(&edited) {
                    direct_agrees(edited);
                }
            }
        }

        /// A number is the `Number` serde_json makes of it, or left to serde_json.
        #[test]
        fn numbers_are_serde_jsons(t in number_text()) {
            if let Some(n) = plain_number(t.as_bytes()) {
                let theirs = serde_json::from_str::<Number>(&t);
                prop_assert!(theirs.is_ok(), "{}", t);
                let theirs = theirs.map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(&n, &theirs, "{}", t);
                prop_assert_eq!(n.to_string(), theirs.to_string(), "{}", t);
            }
            direct_agrees(&format!("[{t}]"));
        }

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

    /// Hand-made texts at the edges of what the direct builder reads.
    #[test]
    fn odd_texts_are_built_as_serde_json_builds_them_or_left_to_it() {
        let answered = [
            r#"{"b":1,"a":2,"b":3}"#,
            r#" { "meta" : { "x" : [1, 2.5, -3, 1e2, -0.0, 0] } , "id" : "x" } "#,
            r#"[0, -1, 1.5, 2E-3, 123456789012345, -123456789012345, 1e22, 1e-22, 0.1]"#,
            r#"{"name":[{"given":["é"]}],"name":1}"#,
            "[]",
            "{}",
            r#""plain""#,
            // Numbers `plain_number` leaves to serde_json's own conversion.
            r#"{"a":-0}"#,
            r#"{"a":12345678901234567890}"#,
            r#"{"a":1234567890123456}"#,
            r#"{"a":1e23}"#,
        ];
        for t in answered {
            assert!(direct_agrees(t), "{t}");
        }
        let left = [
            r#"{"a":"\n"}"#,
            r#"{"\u0061":1}"#,
            r#"{"a":1e400}"#,
            r#"{"meta":1e400}"#,
            r#"{"meta":"\ud800"}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":1}{"b":2}"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":[1,]}"#,
            r#"{"a":tru}"#,
            "{\"a\":\"x\u{1}y\"}",
            "\u{feff}{}",
            "",
        ];
        for t in left {
            assert!(!direct_agrees(t), "{t}");
        }
        let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
        assert!(!direct_agrees(&deep));
        let deeper = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        assert!(!direct_agrees(&deeper));
        let fine = format!("{}1{}", "[".repeat(90), "]".repeat(90));
        assert!(direct_agrees(&fine));
    }

    /// Every text of the shared data (each NDJSON line, each JSON file): the direct builder
    /// builds what serde_json builds, and answers for nearly all of them.
    #[test]
    fn direct_builds_every_shared_text_as_serde_json_does() {
        use std::io::Read;
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        if !dir.is_dir() {
            assert!(
                std::env::var_os("OSTEOGUARD_ALLOW_NO_SHARED").is_some(),
                "{} not found (OSTEOGUARD_ALLOW_NO_SHARED=1 to skip)",
                dir.display()
            );
            return;
        }
        let mut stack = vec![dir];
        let (mut texts, mut answered) = (0usize, 0usize);
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let name = p.to_string_lossy().to_string();
                if p.is_dir() {
                    stack.push(p);
                    continue;
                }
                let mut bytes = Vec::new();
                let f = std::fs::File::open(&p).unwrap();
                if name.ends_with(".gz") {
                    flate2::read::MultiGzDecoder::new(f)
                        .read_to_end(&mut bytes)
                        .unwrap();
                } else {
                    std::io::BufReader::new(f).read_to_end(&mut bytes).unwrap();
                }
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                let pieces: Vec<&str> = if name.contains(".ndjson") {
                    text.lines().filter(|l| !l.trim().is_empty()).collect()
                } else if name.contains(".json") {
                    vec![text]
                } else {
                    continue;
                };
                for t in pieces {
                    texts += 1;
                    answered += usize::from(direct_agrees(t));
                }
            }
        }
        assert!(texts > 10_000, "{texts} texts");
        assert!(
            answered * 100 >= texts * 90,
            "answered {answered} of {texts}"
        );
    }
}
