//! Reading inputs (files, directories, NDJSON, gzip, CDS Hooks requests) into a flat list of
//! resources. Bundles are expanded here; mapping happens in `lib.rs`.

use std::io::{BufRead, Read};
use std::path::Path;

use crate::json::{Arena, Value};
use osteoguard_core::DataQualityIssue;

use crate::util::s;
use crate::{ReadError, ReadLimits};

/// Largest decompressed gzip member accepted (guards gzip bombs).
const MAX_GZ_BYTES: u64 = 1 << 30;
/// The most a stream (standard input) may hold in all.
pub const MAX_STREAM_BYTES: u64 = 1 << 30;
/// Deepest Bundle-in-Bundle / directory nesting followed.
const MAX_DEPTH: usize = 32;

/// One resource as read, with where it came from.
pub(crate) struct Raw<'a> {
    pub value: Value<'a>,
    pub full_url: Option<String>,
    pub origin: Origin,
}

/// Where a resource was read, as messages name it: a location (`file:line`, `… entry[i]`), or
/// the position of a value given to [`crate::read_parsed`] (`resources[i]`), written out only
/// when a message names it (the CDS service reads every request's resources this way).
pub(crate) enum Origin {
    At(String),
    Parsed(usize),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::At(at) => f.write_str(at),
            Origin::Parsed(i) => write!(f, "resources[{i}]"),
        }
    }
}

pub(crate) struct Collector<'a> {
    /// Where the trees of texts read by the collector live.
    arena: &'a Arena,
    /// Largest NDJSON line or JSON document read.
    limits: ReadLimits,
    pub raws: Vec<Raw<'a>>,
    /// File-level problems (they end in `ReadOutput::unattached`).
    pub notes: Vec<DataQualityIssue>,
    /// Objects that cannot be read without losing records (a Bundle-shaped object with another
    /// `resourceType`): an error for a file, a data-quality issue for parsed values.
    pub refused: Vec<ReadError>,
}

impl<'a> Collector<'a> {
    pub fn new(arena: &'a Arena, limits: ReadLimits) -> Self {
        Collector {
            arena,
            limits,
            raws: Vec::new(),
            notes: Vec::new(),
            refused: Vec::new(),
        }
    }

    /// The first refused object as the error of the whole read.
    pub fn check_refused(&mut self) -> Result<(), ReadError> {
        match self.refused.is_empty() {
            true => Ok(()),
            false => Err(self.refused.swap_remove(0)),
        }
    }

    fn note(&mut self, location: &str, field: &str, problem: impl Into<String>) {
        self.notes
            .push(DataQualityIssue::new(location, field, problem));
    }

    /// Adds a parsed JSON value: a resource, a Bundle (expanded), an array of those, a CDS Hooks
    /// request/prefetch object, or a Bulk Data manifest (skipped). `Err` = not FHIR.
    pub fn add_value(
        &mut self,
        v: Value<'a>,
        full_url: Option<String>,
        origin: Origin,
        depth: usize,
    ) -> Result<(), String> {
        if depth > MAX_DEPTH {
            self.note(&origin.to_string(), "", "nesting too deep: not read");
            return Ok(());
        }
        match v {
            Value::Null => Ok(()),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let o = || format!("{origin}[{i}]");
                    if let Err(e) = self.add_value(item.clone(), None, Origin::At(o()), depth + 1) {
                        self.note(&o(), "", e);
                    }
                }
                Ok(())
            }
            Value::Object(map) => {
                match map.get("resourceType") {
                    Some(Value::String(t)) if *t == "Bundle" => {
                        let entries = map.get("entry").and_then(Value::as_array).unwrap_or(&[]);
                        for (i, e) in entries.iter().enumerate() {
                            let fu = s(e, "fullUrl").map(str::to_string);
                            let o = || format!("{origin} entry[{i}]");
                            if let Some(r) = e.get("resource") {
                                if let Err(err) =
                                    self.add_value(r.clone(), fu, Origin::At(o()), depth + 1)
                                {
                                    self.note(&o(), "resource", err);
                                }
                            }
                        }
                        Ok(())
                    }
                    Some(Value::String(t)) if !t.is_empty() && bundle_shaped(map.get("entry")) => {
                        // A Bundle under another name: its entries would silently be lost.
                        let id = match map.get("id") {
                            Some(Value::String(i)) => Some(&i[..]),
                            _ => None,
                        };
                        let at = crate::whereabouts::named(&t[..], id, "resourceType");
                        let shown: String = t.chars().take(crate::whereabouts::MAX_NAME).collect();
                        self.refused.push(ReadError::NotFhir {
                            location: origin.to_string(),
                            message: format!(
                                "resourceType {shown:?} on a Bundle-shaped object (entry[].resource): \
                                 its entries would be lost; expected \"Bundle\"{at}"
                            ),
                        });
                        Ok(())
                    }
                    Some(Value::String(t)) if !t.is_empty() => {
                        self.raws.push(Raw {
                            value: Value::Object(map),
                            full_url,
                            origin,
                        });
                        Ok(())
                    }
                    Some(_) => Err("resourceType is not a string".into()),
                    None => {
                        let prefetch = map.get("prefetch");
                        let context = map.get("context");
                        if map.contains_key("transactionTime") && map.contains_key("output") {
                            // Bulk Data manifest: the files are read from the directory.
                            return Ok(());
                        }
                        let mut any = false;
                        if let Some(Value::Object(p)) = prefetch {
                            any = true;
                            for (k, val) in p.iter() {
                                let o = || format!("{origin} prefetch.{k}");
                                if let Err(e) =
                                    self.add_value(val.clone(), None, Origin::At(o()), depth + 1)
                                {
                                    self.note(&o(), "", e);
                                }
                            }
                        }
                        if let Some(Value::Object(c)) = context {
                            any = true;
                            for k in ["draftOrders", "medications"] {
                                if let Some(val) = c.get(k) {
                                    let o = || format!("{origin} context.{k}");
                                    if let Err(e) = self.add_value(
                                        val.clone(),
                                        None,
                                        Origin::At(o()),
                                        depth + 1,
                                    ) {
                                        self.note(&o(), "", e);
                                    }
                                }
                            }
                        }
                        if any {
                            Ok(())
                        } else {
                            Err("no resourceType (not a FHIR resource, Bundle or CDS Hooks request)".into())
                        }
                    }
                }
            }
            _ => Err("not a JSON object".into()),
        }
    }

    /// One JSON document (resource, Bundle, CDS Hooks request). Falls back to NDJSON when the
    /// document holds several lines of objects.
    pub fn add_json_bytes(
        &mut self,
        bytes: &[u8],
        location: &str,
        lenient: bool,
    ) -> Result<(), ReadError> {
        let text = utf8(bytes, location, 0)?;
        if text.trim_start_matches('\u{feff}').trim().is_empty() {
            return Err(ReadError::Json {
                location: location.to_string(),
                message: "empty file (no JSON document) (resource none, field: the whole document)"
                    .into(),
            });
        }
        match crate::json::parse_copy(self.arena, text) {
            Ok(v) => self.add_top(v, text.as_bytes(), location, lenient),
            Err(e) => {
                if e.is_syntax() && e.to_string().starts_with("trailing characters") {
                    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
                    if lines > 1 {
                        return self.add_ndjson_bytes(bytes, location, lenient);
                    }
                }
                Err(json_error(location, None, text, &e))
            }
        }
    }

    fn add_top(
        &mut self,
        v: Value<'a>,
        text: &[u8],
        location: &str,
        lenient: bool,
    ) -> Result<(), ReadError> {
        match self.add_value(v, None, Origin::At(location.to_string()), 0) {
            Ok(()) => Ok(()),
            Err(message) if lenient => {
                self.note(location, "", format!("skipped: {message}"));
                Ok(())
            }
            Err(message) => Err(ReadError::NotFhir {
                location: location.to_string(),
                message: not_fhir_message(message, text),
            }),
        }
    }

    /// NDJSON: one resource per line; blank lines allowed.
    pub fn add_ndjson_bytes(
        &mut self,
        bytes: &[u8],
        location: &str,
        lenient: bool,
    ) -> Result<(), ReadError> {
        self.add_ndjson_reader(bytes, location, lenient, None)
    }

    /// NDJSON from a stream, one line in memory at a time: a line longer than
    /// [`ReadLimits::max_line_bytes`] is an error naming the file and line, found after reading
    /// at most that many bytes of it (a 3 GB line, or `/dev/zero`, never lands in memory).
    /// `total` caps the bytes of the whole stream (decompressed gzip).
    fn add_ndjson_reader(
        &mut self,
        mut r: impl BufRead,
        location: &str,
        lenient: bool,
        total: Option<(u64, &str)>,
    ) -> Result<(), ReadError> {
        let max = self.limits.max_line_bytes;
        let mut not_fhir: Vec<usize> = Vec::new();
        let mut first_err = None;
        let mut any = false;
        let mut line = Vec::new();
        let mut read_so_far = 0u64;
        for n in 1.. {
            line.clear();
            let got = (&mut r)
                .take(max.saturating_add(1))
                .read_until(b'\n', &mut line)
                .map_err(|e| ReadError::Io {
                    path: format!("{location}:{n}"),
                    cause: e,
                })?;
            if got == 0 {
                break;
            }
            read_so_far += got as u64;
            if let Some((cap, what)) = total {
                if read_so_far > cap {
                    return Err(ReadError::Refused {
                        location: format!("{location}:{n}"),
                        message: what.to_string(),
                    });
                }
            }
            let body = line.strip_suffix(b"\n").unwrap_or(&line);
            if body.len() as u64 > max {
                return Err(ReadError::Refused {
                    location: format!("{location}:{n}"),
                    message: format!(
                        "the line is longer than {} (the limit of one resource; raise it with --max-line-mb){}",
                        ReadLimits::describe(max),
                        crate::whereabouts_of_unread_line()
                    ),
                });
            }
            let text = utf8(body, location, n)?;
            let text = text.trim_start_matches('\u{feff}').trim();
            if text.is_empty() {
                continue;
            }
            any = true;
            let v = crate::json::parse_copy(self.arena, text)
                .map_err(|e| json_error(location, Some(n), text, &e))?;
            let o = Origin::At(format!("{location}:{n}"));
            if let Err(e) = self.add_value(v, None, o, 0) {
                not_fhir.push(n);
                if first_err.is_none() {
                    first_err = Some(not_fhir_message(e, text.as_bytes()));
                }
            }
        }
        if !any {
            self.note(location, "", "no resources (empty NDJSON file)");
        }
        if let Some(e) = first_err {
            if !lenient {
                return Err(ReadError::NotFhir {
                    location: format!("{location}:{}", not_fhir[0]),
                    message: e,
                });
            }
            self.note(
                location,
                "",
                format!(
                    "{} line(s) are not FHIR resources and were skipped (first: line {}: {e})",
                    not_fhir.len(),
                    not_fhir[0]
                ),
            );
        }
        Ok(())
    }

    /// A stream (standard input), bounded as files are: read whole while it is at most one
    /// document's limit ([`ReadLimits::max_line_bytes`]) — a Bundle, a resource or short
    /// NDJSON; longer, it must be NDJSON, read one line at a time with the same per-line limit
    /// and at most [`MAX_STREAM_BYTES`] in all. Gzip data is refused (the stream has no name
    /// to say it is compressed).
    pub fn add_stream(&mut self, r: impl Read, location: &str) -> Result<(), ReadError> {
        let max = self.limits.max_line_bytes;
        let io = |cause| ReadError::Io {
            path: location.to_string(),
            cause,
        };
        let mut r = std::io::BufReader::with_capacity(1 << 16, r);
        let mut head = Vec::new();
        (&mut r)
            .take(max.saturating_add(1))
            .read_to_end(&mut head)
            .map_err(io)?;
        if head.starts_with(&[0x1f, 0x8b]) {
            return Err(ReadError::Refused {
                location: location.to_string(),
                message: "gzip data; decompress it first (gzip -dc FILE | osteoguard ...)".into(),
            });
        }
        if head.len() as u64 <= max {
            return self.add_json_bytes(&head, location, false);
        }
        // Longer than one document may be: only NDJSON (the first line a whole JSON value).
        let first = head
            .split(|b| *b == b'\n')
            .find(|l| !l.iter().all(u8::is_ascii_whitespace))
            .unwrap_or_default();
        let is_value = |l: &[u8]| serde_json::from_slice::<serde::de::IgnoredAny>(l).is_ok();
        if first.len() == head.len() || !is_value(first) {
            return Err(ReadError::Refused {
                location: format!("{location}:1"),
                message: format!(
                    "the JSON document is larger than {} (the limit of one document; raise it with --max-line-mb) (resource not read, field: the whole document)",
                    ReadLimits::describe(max)
                ),
            });
        }
        self.add_ndjson_reader(
            std::io::Cursor::new(head).chain(r),
            location,
            false,
            Some((
                MAX_STREAM_BYTES,
                "standard input exceeds 1 GiB (the limit of a stream)",
            )),
        )
    }

    /// A file or a directory (recursively; a Bulk Data export is a directory of NDJSON files).
    pub fn add_path(&mut self, path: &Path, lenient: bool, depth: usize) -> Result<(), ReadError> {
        let loc = path.display().to_string();
        let io = |cause| ReadError::Io {
            path: loc.clone(),
            cause,
        };
        if path.is_dir() {
            if depth > MAX_DEPTH {
                self.note(&loc, "", "directory nesting too deep: not read");
                return Ok(());
            }
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for p in entries {
                if p.is_dir() {
                    self.add_path(&p, true, depth + 1)?;
                    continue;
                }
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if is_fhir_file(name) {
                    self.add_path(&p, true, depth + 1)?;
                } else {
                    self.note(
                        &p.display().to_string(),
                        "",
                        "skipped: not a .json / .ndjson file",
                    );
                }
            }
            return Ok(());
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let meta = regular_file(path)?;
        let file = std::fs::File::open(path).map_err(io)?;
        let gz = name.ends_with(".gz");
        let stem = name.strip_suffix(".gz").unwrap_or(name);
        let max = self.limits.max_line_bytes;
        if stem.ends_with(".ndjson") || stem.ends_with(".jsonl") {
            return if gz {
                let d = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(file));
                self.add_ndjson_reader(
                    std::io::BufReader::with_capacity(1 << 16, d),
                    &loc,
                    lenient,
                    Some((MAX_GZ_BYTES, "decompressed size exceeds 1 GiB")),
                )
            } else {
                self.add_ndjson_reader(
                    std::io::BufReader::with_capacity(1 << 16, file),
                    &loc,
                    lenient,
                    None,
                )
            };
        }
        // One JSON document: read whole, up to the limit.
        let too_large = || {
            ReadError::Refused {
            location: format!("{loc}:1"),
            message: format!(
                "the JSON document is larger than {} (the limit of one document; raise it with --max-line-mb) (resource not read, field: the whole document)",
                ReadLimits::describe(max)
            ),
        }
        };
        if !gz && meta.len() > max {
            return Err(too_large());
        }
        let mut bytes = Vec::new();
        let cap = if gz { max.min(MAX_GZ_BYTES) } else { max };
        let reader: Box<dyn Read> = if gz {
            Box::new(flate2::read::MultiGzDecoder::new(std::io::BufReader::new(
                file,
            )))
        } else {
            Box::new(file)
        };
        reader
            .take(cap.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io)?;
        if bytes.len() as u64 > cap {
            return Err(too_large());
        }
        self.add_json_bytes(&bytes, &loc, lenient)
    }
}

/// The metadata of `path` (symlinks followed) when it is a regular file; a device (a symlink to
/// `/dev/zero`), a FIFO or a socket is refused: reading it may never end.
pub fn regular_file(path: &Path) -> Result<std::fs::Metadata, ReadError> {
    let meta = std::fs::metadata(path).map_err(|cause| ReadError::Io {
        path: path.display().to_string(),
        cause,
    })?;
    if meta.is_file() {
        return Ok(meta);
    }
    Err(ReadError::Refused {
        location: path.display().to_string(),
        message: format!(
            "not a regular file ({}): only regular files are read",
            file_kind(&meta)
        ),
    })
}

/// What kind of non-regular file `meta` describes (for the error).
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    let _ = meta;
    "not a file"
}

/// `entry` with `entry[].resource`: the shape of a Bundle (no other resource type has it;
/// `List.entry` holds `item`).
fn bundle_shaped(entry: Option<&Value<'_>>) -> bool {
    entry
        .and_then(Value::as_array)
        .is_some_and(|es| es.iter().any(|e| e.get("resource").is_some()))
}

fn is_fhir_file(name: &str) -> bool {
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    stem.ends_with(".json") || stem.ends_with(".ndjson") || stem.ends_with(".jsonl")
}

/// UTF-8 check naming the file and line (`line` 0 = whole document: the line is computed).
fn utf8<'a>(bytes: &'a [u8], location: &str, line: usize) -> Result<&'a str, ReadError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = e.valid_up_to();
        let n = if line > 0 {
            line
        } else {
            bytes[..valid].iter().filter(|b| **b == b'\n').count() + 1
        };
        let what = if line > 0 { "line" } else { "file" };
        let at = crate::whereabouts(bytes, Some(valid), None);
        ReadError::Json {
            location: format!("{location}:{n}"),
            message: format!("invalid UTF-8 at byte {valid} of the {what}{at}"),
        }
    })
}

/// A serde_json error as `file:line:column` + the reason (`line` = the NDJSON line, whose own
/// line number is always 1).
/// A "not FHIR" message with the resource and field it concerns: the field is `resourceType`
/// when the message is about it, otherwise the whole value.
fn not_fhir_message(message: String, text: &[u8]) -> String {
    let field = if message.contains("resourceType") {
        "resourceType"
    } else {
        "the whole value"
    };
    let at = crate::whereabouts(text, None, Some(field));
    format!("{message}{at}")
}

fn json_error(location: &str, line: Option<usize>, text: &str, e: &serde_json::Error) -> ReadError {
    let said = e.to_string();
    let reason = match said.rfind(" at line ") {
        Some(p) => &said[..p],
        None => said.as_str(),
    };
    let (l, c) = (line.unwrap_or(e.line()), e.column());
    let hint = match e.classify() {
        serde_json::error::Category::Eof => " (the file is truncated)",
        _ => "",
    };
    // Where the parser stopped: column `c` of line `l` of `text`.
    let upto = text
        .split_inclusive('\n')
        .take(l.saturating_sub(if line.is_some() { l } else { 1 }))
        .map(str::len)
        .sum::<usize>()
        + c;
    let field = match e.classify() {
        serde_json::error::Category::Syntax if reason.starts_with("trailing characters") => {
            Some("after the end of the resource (a second JSON value)")
        }
        _ => None,
    };
    let at = crate::whereabouts(text.as_bytes(), Some(upto), field);
    ReadError::Json {
        location: format!("{location}:{l}:{c}"),
        message: format!("{reason}{hint}{at}"),
    }
}
