//! One byte scanner per NDJSON line for pass 1: it checks the line is one JSON value and reads
//! the top-level members the routing decision needs ([`crate::route::Peek`]: `resourceType`,
//! `id`, the `subject` / `patient` / `beneficiary` reference, `code.coding`,
//! `component[].code.coding`, `medicationCodeableConcept.coding`, whether there is a
//! `medicationReference`) in the same pass.
//!
//! Why: pass 1 used to look at a line up to three times — a byte-level guess for the lines no
//! rule reads (`route::fast_ignored`, with a `serde_json` tokenisation to check the line is
//! JSON), then a `serde_json` peek of the lines it could not drop — and pass 2 parses the kept
//! lines again. The scanner does the work of all three pass-1 looks in one tokenisation and
//! builds nothing but the peeked fields (strings borrowed from the line).
//!
//! Exactness: it answers only where it is certain to read what `serde_json::from_str::<Peek>`
//! reads — the same acceptance (a line it reads is one JSON value by `serde_json`'s rules) and
//! the same fields. Wherever it is unsure (a watched string or member name with an escape, a
//! duplicate watched member, a watched member of an unexpected type, nesting deeper than
//! [`MAX_DEPTH`], a top level that is not an object, anything `serde_json` would refuse) it
//! returns `None`, and the caller takes the old path (`route::fast_ignored`, `route::peek`,
//! `route::decide_slow`), which decides, or refuses the run with the parser's message. Tests:
//! `tests/scan.rs` compares it with `route::peek` on every line of the shared exports, of a
//! synthetic export, and on every truncation and byte edit of a sample of them.

use std::borrow::Cow;

use crate::route::{CodeableConcept, Coding, Component, Peek, Reference};

/// Deepest nesting the scanner follows; deeper lines go to the old path (which has no limit
/// for skipped values). FHIR resources are rarely deeper than 10.
pub const MAX_DEPTH: usize = 64;

/// The routing fields of `line`, when the scanner is certain the line is one JSON object and
/// reads them as `route::peek` does; `None` when unsure (see the module doc).
pub fn peek_members(line: &[u8]) -> Option<Peek<'_>> {
    // `simdutf8` accepts exactly what `std::str::from_utf8` accepts (a line it refuses takes
    // the old path, whose UTF-8 check words the error), with 16/32-byte vector steps: the
    // standard check of every line was ~1.5 % of a screening's instructions.
    let text = simdutf8::basic::from_utf8(line).ok()?;
    let mut s = Scanner {
        b: text.as_bytes(),
        s: text,
        i: 0,
    };
    s.ws();
    let mut p = Peek {
        resource_type: None,
        id: None,
        subject: None,
        patient: None,
        beneficiary: None,
        code: None,
        component: None,
        medication_codeable_concept: None,
        medication_reference: None,
    };
    // Watched members seen (a duplicate one makes `serde_json` refuse the peek).
    let mut seen = [false; 9];
    s.object(|s, key| {
        let k = match key {
            "resourceType" => 0,
            "id" => 1,
            "subject" => 2,
            "patient" => 3,
            "beneficiary" => 4,
            "code" => 5,
            "component" => 6,
            "medicationCodeableConcept" => 7,
            "medicationReference" => 8,
            // A string value (most top-level members no rule routes on) is skipped here,
            // without `skip_value`'s set-up.
            _ if s.peek() == Some(b'"') => return s.string().map(|_| ()),
            _ => return s.skip_value(),
        };
        if std::mem::replace(&mut seen[k], true) {
            return None;
        }
        match k {
            0 => p.resource_type = s.opt_str()?,
            1 => p.id = s.opt_str()?,
            2 => p.subject = s.opt_reference()?,
            3 => p.patient = s.opt_reference()?,
            4 => p.beneficiary = s.opt_reference()?,
            5 => p.code = s.opt_concept()?,
            6 => p.component = s.opt_components()?,
            7 => p.medication_codeable_concept = s.opt_concept()?,
            _ => {
                p.medication_reference = if s.null()? {
                    None
                } else {
                    s.skip_value()?;
                    Some(serde::de::IgnoredAny)
                }
            }
        }
        Some(())
    })?;
    s.ws();
    (s.i == s.b.len()).then_some(p)
}

struct Scanner<'a> {
    b: &'a [u8],
    s: &'a str,
    i: usize,
}

/// The first byte at or after `i` that ends a run of plain string bytes (`"`, `\` or a control
/// character below 0x20), or `b.len()`: eight bytes at a time, the loop the reader's direct JSON
/// builder uses too ([`osteoguard_fhir::json::plain_end`]).
///
/// Tried and measured (callgrind, 2 000 patients, `scr4`): `memchr2` to the next `"` or `\`
/// and a second, vectorised pass for control characters cost +72 % in this function (its
/// set-up per call outweighs the vector steps: most strings of a FHIR line are 5–20 bytes);
/// 16-byte SSE2 steps +10 % (a `#[target_feature]` function is not inlined into its caller, so
/// every string paid a call). The eight-byte loop stays.
#[inline(always)]
fn plain_end(b: &[u8], i: usize) -> usize {
    osteoguard_fhir::json::plain_end(b, i)
}

impl<'a> Scanner<'a> {
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

    /// At a value: `Some(true)` after consuming `null`, `Some(false)` when the value is not
    /// `null` (nothing consumed), `None` when it starts with `n` but is not `null`.
    fn null(&mut self) -> Option<bool> {
        if self.peek()? == b'n' {
            self.literal(b"null")?;
            Some(true)
        } else {
            Some(false)
        }
    }

    /// A string at `"`, checked as `serde_json` checks a string it skips (no control character,
    /// valid escapes). `Some(Some(text))` when it has no escape, `Some(None)` when it has one.
    ///
    /// Inlined into its callers. Why: it runs ~40 times per line on strings of 5–20 bytes, and
    /// as a call each string paid its prologue (six registers saved, the loop's five 64-bit
    /// constants loaded): inlined, the scan took 50 M fewer instructions of its 599 M
    /// (callgrind, 2 000 patients, `scr4`).
    #[inline(always)]
    fn string(&mut self) -> Option<Option<&'a str>> {
        if self.peek()? != b'"' {
            return None;
        }
        self.i += 1;
        let start = self.i;
        let mut plain = true;
        loop {
            let j = plain_end(self.b, self.i);
            match self.b.get(j)? {
                b'"' => {
                    self.i = j + 1;
                    return Some(if plain {
                        osteoguard_fhir::json::between(self.s, start, j)
                    } else {
                        None
                    });
                }
                b'\\' => {
                    plain = false;
                    self.i = j + 2;
                    match self.b.get(j + 1)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 4;
                        }
                        _ => return None,
                    }
                }
                _ => return None, // a control character
            }
        }
    }

    fn number(&mut self) -> Option<()> {
        let digits = |s: &mut Self| {
            let start = s.i;
            while let Some(b'0'..=b'9') = s.peek() {
                s.i += 1;
            }
            s.i > start
        };
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return None;
                }
            }
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !digits(self) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        Some(())
    }

    /// Skips one value (at its first byte), checking it as `serde_json`'s `IgnoredAny` does.
    fn skip_value(&mut self) -> Option<()> {
        // Open containers, innermost last.
        let mut stack = [0u8; MAX_DEPTH];
        let mut depth = 0;
        loop {
            // A value starts here.
            self.ws();
            match self.peek()? {
                open @ (b'{' | b'[') => {
                    self.i += 1;
                    self.ws();
                    let close = if open == b'{' { b'}' } else { b']' };
                    if self.peek()? == close {
                        self.i += 1;
                    } else {
                        *stack.get_mut(depth)? = open;
                        depth += 1;
                        if open == b'{' {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    self.string()?;
                }
                b't' => self.literal(b"true")?,
                b'f' => self.literal(b"false")?,
                b'n' => self.literal(b"null")?,
                b'-' | b'0'..=b'9' => self.number()?,
                _ => return None,
            }
            // A value ended: close what it ends, or go on after a comma.
            loop {
                let Some(top) = depth.checked_sub(1) else {
                    return Some(());
                };
                self.ws();
                match (self.peek()?, stack[top]) {
                    (b',', open) => {
                        self.i += 1;
                        if open == b'{' {
                            self.ws();
                            self.member_name()?;
                        }
                        break;
                    }
                    (b'}', b'{') | (b']', b'[') => {
                        self.i += 1;
                        depth = top;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// A member name of a skipped object and its `:` (any valid string). Inlined into
    /// [`Self::skip_value`], its one caller: it runs for every member of every skipped object.
    #[inline(always)]
    fn member_name(&mut self) -> Option<()> {
        self.string()?;
        self.ws();
        (self.peek()? == b':').then(|| self.i += 1)
    }

    /// An object whose members `member` reads (it must consume the value). Member names with
    /// an escape are not compared (unsure): `serde_json` would decode them first.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.peek()? != b'{' {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()??;
            self.ws();
            if self.peek()? != b':' {
                return None;
            }
            self.i += 1;
            self.ws();
            member(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An array whose elements `element` reads (at each element's first byte).
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.peek()? != b'[' {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            element(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `Option<Cow<str>>`: `null` or a string without escapes (one with an escape: unsure).
    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        if self.null()? {
            return Some(None);
        }
        Some(Some(Cow::Borrowed(self.string()??)))
    }

    /// `Option<Reference>`.
    fn opt_reference(&mut self) -> Option<Option<Reference<'a>>> {
        if self.null()? {
            return Some(None);
        }
        let mut reference = None;
        let mut seen = false;
        self.object(|s, key| match key {
            "reference" if !std::mem::replace(&mut seen, true) => {
                reference = s.opt_str()?;
                Some(())
            }
            "reference" => None,
            _ => s.skip_value(),
        })?;
        Some(Some(Reference { reference }))
    }

    /// `Option<CodeableConcept>`.
    fn opt_concept(&mut self) -> Option<Option<CodeableConcept<'a>>> {
        if self.null()? {
            return Some(None);
        }
        let mut coding = None;
        let mut seen = false;
        self.object(|s, key| match key {
            "coding" if !std::mem::replace(&mut seen, true) => {
                coding = s.opt_codings()?;
                Some(())
            }
            "coding" => None,
            _ => s.skip_value(),
        })?;
        Some(Some(CodeableConcept { coding }))
    }

    /// `Option<Vec<Coding>>`.
    fn opt_codings(&mut self) -> Option<Option<Vec<Coding<'a>>>> {
        if self.null()? {
            return Some(None);
        }
        let mut out = Vec::new();
        self.array(|s| {
            let (mut system, mut code) = (None, None);
            let (mut seen_system, mut seen_code) = (false, false);
            s.object(|s, key| match key {
                "system" if !std::mem::replace(&mut seen_system, true) => {
                    system = s.opt_str()?;
                    Some(())
                }
                "code" if !std::mem::replace(&mut seen_code, true) => {
                    code = s.opt_str()?;
                    Some(())
                }
                "system" | "code" => None,
                _ => s.skip_value(),
            })?;
            out.push(Coding { system, code });
            Some(())
        })?;
        Some(Some(out))
    }

    /// `Option<Vec<Component>>`.
    fn opt_components(&mut self) -> Option<Option<Vec<Component<'a>>>> {
        if self.null()? {
            return Some(None);
        }
        let mut out = Vec::new();
        self.array(|s| {
            let mut code = None;
            let mut seen = false;
            s.object(|s, key| match key {
                "code" if !std::mem::replace(&mut seen, true) => {
                    code = s.opt_concept()?;
                    Some(())
                }
                "code" => None,
                _ => s.skip_value(),
            })?;
            out.push(Component { code });
            Some(())
        })?;
        Some(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::plain_end;

    /// The first byte that is `"`, `\\` or below 0x20, one byte at a time.
    fn naive(b: &[u8], i: usize) -> usize {
        (i..b.len())
            .find(|&k| matches!(b[k], b'"' | b'\\' | 0..=0x1f))
            .unwrap_or(b.len())
    }

    /// The eight-byte loop finds what a byte-by-byte search finds: every
    /// stopping byte (and near misses: 0x20, 0x7f, 0x80, 0xff, `!`, `#`, `[`, `]`) at every
    /// position of lines of every length up to 40, from every start.
    #[test]
    fn plain_end_finds_the_first_quote_backslash_or_control_character() {
        let stops = [b'"', b'\\', 0x00, 0x01, 0x1f, b'\n'];
        let near = [0x20u8, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']', b'a'];
        for len in 0..40 {
            for &fill in &near {
                let plain = vec![fill; len];
                for start in 0..=len {
                    assert_eq!(plain_end(&plain, start), len);
                }
                for at in 0..len {
                    for &stop in &stops {
                        let mut b = plain.clone();
                        b[at] = stop;
                        // A second stop later must not matter.
                        if at + 3 < len {
                            b[at + 3] = b'"';
                        }
                        for start in 0..=len {
                            let want = naive(&b, start);
                            assert_eq!(plain_end(&b, start), want, "{b:?} from {start}");
                        }
                    }
                }
            }
        }
    }
}
