//! Where in a line a problem is, as far as its text shows it: every rejection names the file,
//! the resource and the field (issue 16). Read from the raw bytes, so it works on text that is
//! not valid JSON; bounded (a type, id or member name longer than [`MAX_NAME`] is not quoted),
//! so a 10 MB id is never echoed.

/// The longest resource type, id or member name quoted in a message.
pub const MAX_NAME: usize = 64;

/// ` (resource Observation/o, field subject)`: the resource of `text` (its `resourceType` and
/// `id` members, when the text shows them) and the field — `field` when the caller knows it,
/// otherwise the last member name before byte `upto` (where the parser stopped).
pub fn whereabouts(text: &[u8], upto: Option<usize>, field: Option<&str>) -> String {
    let resource = match (
        string_member(text, "resourceType"),
        string_member(text, "id"),
    ) {
        (Some(t), Some(i)) => format!("{t}/{i}"),
        (Some(t), None) => t,
        _ => "unknown".to_string(),
    };
    let field = match field {
        Some(f) => f.to_string(),
        None => last_key(&text[..upto.unwrap_or(text.len()).min(text.len())])
            .unwrap_or_else(|| "unknown".to_string()),
    };
    format!(" (resource {resource}, field {field})")
}

/// ` (resource T/id, field F)` from values already parsed (bounded like [`whereabouts`]).
pub(crate) fn named(resource_type: &str, id: Option<&str>, field: &str) -> String {
    let t = name(resource_type.as_bytes()).unwrap_or_else(|| "unknown".to_string());
    let resource = match id.and_then(|i| name(i.as_bytes())) {
        Some(i) => format!("{t}/{i}"),
        None => t,
    };
    format!(" (resource {resource}, field {field})")
}

/// The same for a line too long to be read: neither is known.
pub fn whereabouts_of_unread_line() -> &'static str {
    " (resource not read, field: the whole line)"
}

fn skip_ws(text: &[u8], mut i: usize) -> usize {
    while i < text.len() && text[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The end (index of the closing quote) of the string whose opening quote is at `start`.
fn string_end(text: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < text.len() {
        match text[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn name(bytes: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(bytes).ok()?;
    (!s.is_empty() && s.len() <= MAX_NAME && !s.contains(['\\', '\n', '\r'])).then(|| s.to_string())
}

/// The string value of the first member `key` in `text` (any depth: a best effort).
fn string_member(text: &[u8], key: &str) -> Option<String> {
    let pattern = format!("\"{key}\"");
    let mut from = 0;
    let pattern = pattern.as_bytes();
    while let Some(p) = text[from..]
        .windows(pattern.len())
        .position(|w| w == pattern)
    {
        let after = from + p + pattern.len();
        let colon = skip_ws(text, after);
        if text.get(colon) == Some(&b':') {
            let open = skip_ws(text, colon + 1);
            if text.get(open) == Some(&b'"') {
                let end = string_end(text, open)?;
                return name(&text[open + 1..end]);
            }
            return None;
        }
        from = after;
    }
    None
}

/// The last member name (`"name"` followed by `:`) in `text`.
fn last_key(text: &[u8]) -> Option<String> {
    let mut last = None;
    let mut i = 0;
    while i < text.len() {
        if text[i] != b'"' {
            i += 1;
            continue;
        }
        let Some(end) = string_end(text, i) else {
            break;
        };
        let after = skip_ws(text, end + 1);
        if text.get(after) == Some(&b':') {
            last = Some((i + 1, end));
        }
        i = end + 1;
    }
    last.and_then(|(a, b)| name(&text[a..b]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resource_and_field() {
        let t = br#"{"resourceType":"Observation","id":"o","subject":{"reference":"Pat"#;
        assert_eq!(
            whereabouts(t, None, None),
            " (resource Observation/o, field reference)"
        );
        assert_eq!(
            whereabouts(t, Some(30), None),
            " (resource Observation/o, field resourceType)"
        );
        assert_eq!(
            whereabouts(b"[[[[", None, None),
            " (resource unknown, field unknown)"
        );
        assert_eq!(
            whereabouts(br#"{"id":"x"}"#, None, Some("resourceType")),
            " (resource unknown, field resourceType)"
        );
        // A huge id is not echoed.
        let long = format!(
            r#"{{"resourceType":"Patient","id":"{}"}}"#,
            "x".repeat(1000)
        );
        assert_eq!(
            whereabouts(long.as_bytes(), None, None),
            " (resource Patient, field id)"
        );
    }
}
