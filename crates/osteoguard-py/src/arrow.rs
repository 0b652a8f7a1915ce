//! Arrow columns as their buffers: what the Spark job hands the engine and gets back, so that
//! no Python code touches a line (Python passes a batch's buffers in and wraps the returned
//! buffers with `pyarrow.Array.from_buffers`: a few calls per batch, none per line).
//!
//! Only the layouts the job uses: `utf8` / `large_utf8` and `binary` / `large_binary` (offsets
//! and data, optional validity) in and out, and `int64` / `int8` out. Layout: the Arrow
//! columnar format, little-endian, validity bit `i` of byte `i / 8` set when the slot is valid.
//!
//! Why buffers and not the `arrow` crate's pyarrow bridge: that bridge is tied to one pyo3
//! version each, none of them this crate's (0.30); the buffers are the stable interface.
//!
//! *Invariant:* every input is checked (offsets in range and non-decreasing, UTF-8 valid) when
//! an array is made, so reading a slot never panics on a malformed batch.

use crate::PyEngineError;

fn bad(what: &str) -> PyEngineError {
    PyEngineError::Arrow(what.to_string())
}

/// The offsets of a variable-size array: 32-bit (`utf8`, `binary`) or 64-bit (`large_*`).
#[derive(Debug, Clone, Copy)]
pub enum Offsets<'a> {
    I32(&'a [u8]),
    I64(&'a [u8]),
}

impl<'a> Offsets<'a> {
    pub fn new(buf: &'a [u8], large: bool) -> Self {
        if large {
            Offsets::I64(buf)
        } else {
            Offsets::I32(buf)
        }
    }
    fn width(&self) -> usize {
        match self {
            Offsets::I32(_) => 4,
            Offsets::I64(_) => 8,
        }
    }
    fn bytes(&self) -> &'a [u8] {
        match self {
            Offsets::I32(b) | Offsets::I64(b) => b,
        }
    }
    /// Offset `i` (no bounds check beyond the slice's own: callers validated the length).
    fn at(&self, i: usize) -> Option<usize> {
        match self {
            Offsets::I32(b) => {
                let v = i32::from_le_bytes(b.get(i * 4..i * 4 + 4)?.try_into().ok()?);
                usize::try_from(v).ok()
            }
            Offsets::I64(b) => {
                let v = i64::from_le_bytes(b.get(i * 8..i * 8 + 8)?.try_into().ok()?);
                usize::try_from(v).ok()
            }
        }
    }
    /// Checks `len + 1` offsets from `offset`: present, non-decreasing, the last `<= limit`.
    fn check(&self, offset: usize, len: usize, limit: usize) -> Result<(), PyEngineError> {
        if len == 0 {
            // An empty array may come without offsets (Arrow writers omit the buffer).
            return Ok(());
        }
        if self.bytes().len() < (offset + len + 1) * self.width() {
            return Err(bad("offsets buffer too short"));
        }
        let mut prev = self.at(offset).ok_or_else(|| bad("negative offset"))?;
        for i in offset + 1..=offset + len {
            let v = self.at(i).ok_or_else(|| bad("negative offset"))?;
            if v < prev {
                return Err(bad("decreasing offsets"));
            }
            prev = v;
        }
        if prev > limit {
            return Err(bad("offset past the end of the data"));
        }
        Ok(())
    }
}

fn valid(validity: Option<&[u8]>, i: usize) -> bool {
    validity.is_none_or(|v| v.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0))
}

/// What every variable-size array has: `len` slots from slot `offset`, their offsets and
/// validity — checked once, when the array is made, against the `limit` its data allows.
#[derive(Debug, Clone, Copy)]
struct Slots<'a> {
    offsets: Offsets<'a>,
    validity: Option<&'a [u8]>,
    offset: usize,
    len: usize,
}

impl<'a> Slots<'a> {
    fn new(
        offsets: Offsets<'a>,
        validity: Option<&'a [u8]>,
        offset: usize,
        len: usize,
        limit: usize,
    ) -> Result<Self, PyEngineError> {
        offsets.check(offset, len, limit)?;
        if validity.is_some_and(|v| v.len() * 8 < offset + len) {
            return Err(bad("validity buffer too short"));
        }
        Ok(Slots {
            offsets,
            validity,
            offset,
            len,
        })
    }
    fn bounds(&self, i: usize) -> Option<(usize, usize)> {
        Some((
            self.offsets.at(self.offset + i)?,
            self.offsets.at(self.offset + i + 1)?,
        ))
    }
    /// The range of slot `i`; `None` when null or out of range.
    fn slot(&self, i: usize) -> Option<(usize, usize)> {
        if i >= self.len || !valid(self.validity, self.offset + i) {
            return None;
        }
        self.bounds(i)
    }
}

/// A `utf8` / `large_utf8` array: `len` slots from slot `offset`; its data is UTF-8 and every
/// slot starts and ends on a character boundary.
#[derive(Debug, Clone, Copy)]
pub struct StrArray<'a> {
    slots: Slots<'a>,
    data: &'a str,
}

impl<'a> StrArray<'a> {
    pub fn new(
        offsets: Offsets<'a>,
        data: &'a [u8],
        validity: Option<&'a [u8]>,
        offset: usize,
        len: usize,
    ) -> Result<Self, PyEngineError> {
        let slots = Slots::new(offsets, validity, offset, len, data.len())?;
        let data = std::str::from_utf8(data).map_err(|_| bad("string data is not UTF-8"))?;
        for i in 0..len {
            let (s, e) = slots.bounds(i).ok_or_else(|| bad("offset out of range"))?;
            if !data.is_char_boundary(s) || !data.is_char_boundary(e) {
                return Err(bad("string slot splits a UTF-8 character"));
            }
        }
        Ok(StrArray { slots, data })
    }
    pub fn len(&self) -> usize {
        self.slots.len
    }
    pub fn is_empty(&self) -> bool {
        self.slots.len == 0
    }
    /// Slot `i`; `None` when null (or out of range).
    pub fn get(&self, i: usize) -> Option<&'a str> {
        let (s, e) = self.slots.slot(i)?;
        self.data.get(s..e)
    }
}

/// A `binary` / `large_binary` array (the Spark job's blobs): `len` slots from slot `offset`.
#[derive(Debug, Clone, Copy)]
pub struct BinArray<'a> {
    slots: Slots<'a>,
    data: &'a [u8],
}

impl<'a> BinArray<'a> {
    pub fn new(
        offsets: Offsets<'a>,
        data: &'a [u8],
        validity: Option<&'a [u8]>,
        offset: usize,
        len: usize,
    ) -> Result<Self, PyEngineError> {
        let slots = Slots::new(offsets, validity, offset, len, data.len())?;
        Ok(BinArray { slots, data })
    }
    pub fn len(&self) -> usize {
        self.slots.len
    }
    pub fn is_empty(&self) -> bool {
        self.slots.len == 0
    }
    /// Slot `i`; a null slot reads as empty.
    pub fn get(&self, i: usize) -> &'a [u8] {
        self.slots
            .slot(i)
            .and_then(|(s, e)| self.data.get(s..e))
            .unwrap_or(&[])
    }
}

/// A column being built: its buffers, in the layout `pyarrow.Array.from_buffers` takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    /// `utf8`, `binary`, `int64` or `int8`.
    pub kind: &'static str,
    pub len: usize,
    pub null_count: usize,
    /// Validity bitmap, when there is a null.
    pub validity: Option<Vec<u8>>,
    /// `int32` offsets (`utf8`) or the values (`int64`, `int8`).
    pub values: Vec<u8>,
    /// String data (`utf8` and `binary` only).
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
struct Bits {
    bytes: Vec<u8>,
    nulls: usize,
}

impl Bits {
    fn push(&mut self, i: usize, ok: bool) {
        if i.is_multiple_of(8) {
            self.bytes.push(0);
        }
        if ok {
            if let Some(b) = self.bytes.last_mut() {
                *b |= 1 << (i % 8);
            }
        } else {
            self.nulls += 1;
        }
    }
}

/// Builds a `utf8` column (32-bit offsets: a batch's strings stay far below 2 GiB; checked),
/// or with [`StrBuilder::binary`] a `binary` one.
#[derive(Debug)]
pub struct StrBuilder {
    name: String,
    kind: &'static str,
    offsets: Vec<u8>,
    data: Vec<u8>,
    bits: Bits,
    len: usize,
}

impl StrBuilder {
    pub fn new(name: &str) -> Self {
        StrBuilder {
            name: name.to_string(),
            kind: "utf8",
            offsets: 0i32.to_le_bytes().to_vec(),
            data: Vec::new(),
            bits: Bits::default(),
            len: 0,
        }
    }
    /// A `binary` column (bytes pushed with [`StrBuilder::push_bytes`]).
    pub fn binary(name: &str) -> Self {
        StrBuilder {
            kind: "binary",
            ..Self::new(name)
        }
    }
    pub fn push(&mut self, v: Option<&str>) -> Result<(), PyEngineError> {
        self.push_raw(v.map(str::as_bytes))
    }
    /// Pushes bytes into a `binary` column (a `utf8` one refuses them: use [`StrBuilder::push`]).
    pub fn push_bytes(&mut self, v: Option<&[u8]>) -> Result<(), PyEngineError> {
        if self.kind != "binary" {
            return Err(bad("bytes pushed into a utf8 column"));
        }
        self.push_raw(v)
    }
    fn push_raw(&mut self, v: Option<&[u8]>) -> Result<(), PyEngineError> {
        self.bits.push(self.len, v.is_some());
        self.data.extend_from_slice(v.unwrap_or(&[]));
        let end =
            i32::try_from(self.data.len()).map_err(|_| bad("a batch's strings exceed 2 GiB"))?;
        self.offsets.extend_from_slice(&end.to_le_bytes());
        self.len += 1;
        Ok(())
    }
    pub fn finish(self) -> Column {
        Column {
            name: self.name,
            kind: self.kind,
            len: self.len,
            null_count: self.bits.nulls,
            validity: (self.bits.nulls > 0).then_some(self.bits.bytes),
            values: self.offsets,
            data: self.data,
        }
    }
}

/// Builds an `int64` (with nulls) or `int8` column.
#[derive(Debug)]
pub struct IntBuilder {
    name: String,
    kind: &'static str,
    values: Vec<u8>,
    bits: Bits,
    len: usize,
}

impl IntBuilder {
    pub fn int64(name: &str) -> Self {
        IntBuilder {
            name: name.to_string(),
            kind: "int64",
            values: Vec::new(),
            bits: Bits::default(),
            len: 0,
        }
    }
    pub fn int8(name: &str) -> Self {
        IntBuilder {
            kind: "int8",
            ..Self::int64(name)
        }
    }
    pub fn push(&mut self, v: Option<i64>) {
        self.bits.push(self.len, v.is_some());
        let v = v.unwrap_or(0);
        if self.kind == "int8" {
            self.values
                .extend_from_slice(&(i8::try_from(v).unwrap_or(i8::MAX)).to_le_bytes());
        } else {
            self.values.extend_from_slice(&v.to_le_bytes());
        }
        self.len += 1;
    }
    pub fn finish(self) -> Column {
        Column {
            name: self.name,
            kind: self.kind,
            len: self.len,
            null_count: self.bits.nulls,
            validity: (self.bits.nulls > 0).then_some(self.bits.bytes),
            values: self.values,
            data: Vec::new(),
        }
    }
}
