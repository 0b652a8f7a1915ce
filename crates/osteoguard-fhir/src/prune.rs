//! Parsing resources for the reader without the elements it never reads.
//!
//! Why: in population screening, building JSON trees for the kept lines (and dropping them
//! again) was ~30 % of the run's CPU, and most of a Synthea Patient (name, address,
//! telecom, identifier, meta, …) and a good part of every other resource (category, encounter,
//! performer, …) is never looked at. [`parse_for_reading`] skips the members listed in
//! [`NEVER_READ`], at any depth, without allocating them.
//!
//! Invariants (tested in `tests/prune.rs` over every resource of the shared data, and below):
//! * reading pruned resources gives exactly what reading the whole resources gives: no key in
//!   [`NEVER_READ`] is named anywhere in this crate's source, so no mapping, shape check or
//!   choice-type lookup (`value[x]` …) can see the difference;
//! * the one place the reader compares whole resources — "exact duplicate (same type, id and
//!   content)" — still compares whole resources: [`parse_all_for_reading`] parses in full every
//!   resource whose type and id another one in the same batch shares, and every resource that
//!   is not a plain resource (a Bundle, or no string `resourceType`).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::json::{self, Arena, Value};

/// Member names the reader never reads, at any depth ([`NEVER_READ`], sorted), and the test
/// for one of them. Why a `match` rather than a search of the list: the test runs for every
/// member of every kept resource, and a binary search (five string compares) cost more than the
/// pruning saved.
macro_rules! never_read {
    ($($name:literal),* $(,)?) => {
        /// Member names the reader never reads, at any depth (sorted). Adding a name requires
        /// that it appears nowhere in this crate's source as a string literal (a test checks
        /// it); removing one is always safe.
        pub const NEVER_READ: &[&str] = &[$($name),*];

        pub(crate) fn never_read(key: &str) -> bool {
            matches!(key, $($name)|*)
        }
    };
}

never_read!(
    "address",
    "asserter",
    "basedOn",
    "category",
    "communication",
    "contact",
    "derivedFrom",
    "encounter",
    "generalPractitioner",
    "hasMember",
    "identifier",
    "insurance",
    "interpretation",
    "link",
    "location",
    "managingOrganization",
    "maritalStatus",
    "meta",
    "name",
    "partOf",
    "performer",
    "photo",
    "reasonCode",
    "reasonReference",
    "recorder",
    "requester",
    "specimen",
    "supportingInformation",
    "telecom",
);

/// Parses one JSON text as `serde_json::from_slice::<Value>` would — same errors for the same
/// texts: the skipped members are still parsed, only not kept — into the reader's borrowed tree,
/// minus the members named in [`NEVER_READ`] (at any depth).
pub fn parse_for_reading<'a>(
    arena: &'a Arena,
    text: &'a [u8],
) -> Result<Value<'a>, serde_json::Error> {
    json::parse_bytes(arena, text, true, &mut json::Scratch::default())
}

/// Parses a batch of resource texts (e.g. one patient's NDJSON lines) for
/// [`crate::read_parsed`]: pruned as [`parse_for_reading`], except that resources whose
/// `(resourceType, id)` another text of the batch shares are parsed whole, so that the reader's
/// exact-duplicate check compares whole resources as it would have; and a batch holding anything
/// but plain resources (a Bundle, or no string `resourceType`) is parsed whole.
pub fn parse_all_for_reading<'t>(
    arena: &'t Arena,
    texts: &[&'t [u8]],
) -> Vec<Result<Value<'t>, serde_json::Error>> {
    let mut scratch = json::Scratch::default();
    let mut parse =
        |text: &'t [u8], prune: bool| json::parse_bytes(arena, text, prune, &mut scratch);
    let mut out: Vec<Result<Value<'t>, serde_json::Error>> =
        texts.iter().map(|t| parse(t, true)).collect();
    let mut keyed: Vec<((&str, &str), usize)> = Vec::new();
    for (i, r) in out.iter().enumerate() {
        let Ok(v) = r else { continue };
        match v.get("resourceType").and_then(Value::as_str) {
            // A Bundle or a CDS Hooks request holds resources of its own that could share a type
            // and id with the others: the batch is parsed whole, as before.
            Some("Bundle") | None => {
                return texts.iter().map(|t| parse(t, false)).collect();
            }
            Some(ty) => {
                if let Some(id) = v.get("id").and_then(Value::as_str) {
                    keyed.push(((ty, id), i));
                }
            }
        }
    }
    keyed.sort_unstable();
    let mut whole: Vec<usize> = Vec::new();
    for pair in keyed.windows(2) {
        if pair[0].0 == pair[1].0 {
            whole.extend([pair[0].1, pair[1].1]);
        }
    }
    for i in whole {
        out[i] = parse(texts[i], false);
    }
    out
}

/// A never-read member's value: parsed exactly as for a `Value` (strings decoded and checked,
/// numbers converted, same nesting limit), so that a text is rejected exactly when
/// `serde_json::from_slice::<Value>` rejects it — serde's `IgnoredAny` skips more leniently
/// (no UTF-8, surrogate or number-range checks) — but nothing is allocated or kept.
pub(crate) struct Discard;

impl<'de> DeserializeSeed<'de> for Discard {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(DiscardVisitor)
    }
}

struct DiscardVisitor;

impl<'de> Visitor<'de> for DiscardVisitor {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        Discard.deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Discard)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Discard)?.is_some() {
            map.next_value_seed(Discard)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn list_is_sorted_and_unique() {
        assert!(NEVER_READ.windows(2).all(|w| w[0] < w[1]));
    }

    /// The guard behind the list: a name the reader spells out anywhere is not prunable.
    #[test]
    fn no_never_read_name_is_named_by_the_reader() {
        const SOURCES: &[(&str, &str)] = &[
            ("cond.rs", include_str!("cond.rs")),
            ("dates.rs", include_str!("dates.rs")),
            ("input.rs", include_str!("input.rs")),
            ("lib.rs", include_str!("lib.rs")),
            ("med.rs", include_str!("med.rs")),
            ("obs.rs", include_str!("obs.rs")),
            ("shape.rs", include_str!("shape.rs")),
            ("terminology.rs", include_str!("terminology.rs")),
            ("units.rs", include_str!("units.rs")),
            ("util.rs", include_str!("util.rs")),
        ];
        for (file, text) in SOURCES {
            for name in NEVER_READ {
                for quoted in [
                    format!("\"{name}\""),
                    format!("\"{name}."),
                    format!(".{name}\""),
                    format!(".{name}."),
                ] {
                    assert!(
                        !text.contains(&quoted),
                        "{file} names {quoted}: remove {name:?} from NEVER_READ"
                    );
                }
            }
        }
    }

    fn prune_reference(v: &Value) -> Value {
        match v {
            Value::Object(o) => Value::Object(
                o.iter()
                    .filter(|(k, _)| !never_read(k))
                    .map(|(k, x)| (k.clone(), prune_reference(x)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(prune_reference).collect()),
            other => other.clone(),
        }
    }

    #[test]
    fn keeps_everything_else_exactly() {
        let text = br#"{"resourceType":"Observation","id":"o\u0031","meta":{"x":[1,{"y":2}]},
            "category":[{"coding":[{"code":"imaging","display":"Imaging"}]}],
            "code":{"coding":[{"system":"http://loinc.org","code":"38267-1","display":"DXA"}],
                    "text":"T"},"valueQuantity":{"value":-2.7,"unit":"{T-score}"},
            "component":[{"code":{"text":"a","name":"n"},"valueInteger":18446744073709551615}],
            "n":-12,"b":true,"z":null,"dup":1,"dup":2,"esc\u0061ped":"\"q\""}"#;
        let full: Value = serde_json::from_slice(text).expect("valid");
        let arena = json::Arena::new();
        let pruned = parse_for_reading(&arena, text).expect("valid").to_serde();
        assert_eq!(pruned, prune_reference(&full));
        assert!(pruned.get("meta").is_none() && pruned.get("category").is_none());
        assert_eq!(pruned["component"][0]["code"], json!({"text": "a"}));
        assert_eq!(pruned["dup"], json!(2));
        assert_eq!(pruned["escaped"], json!("\"q\""));
    }

    #[test]
    fn rejects_what_serde_json_rejects() {
        for bad in [
            &b"{\"meta\": [1,}"[..],
            b"{\"a\":1} x",
            b"",
            b"{\"name\": \"\xff\"}",
            b"{\"gender\": \"\xff\"}",
            b"{\"gender\": \"a\"}\xff",
            b"{\"meta\":",
            b"{\"meta\": \"\\ud800\"}",
            b"{\"meta\": 1e999}",
            b"{\"meta\": \"a\x01b\"}",
        ] {
            assert!(serde_json::from_slice::<Value>(bad).is_err());
            assert!(
                parse_for_reading(&json::Arena::new(), bad).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn same_type_and_id_and_bundles_are_parsed_whole() {
        let a = br#"{"resourceType":"Observation","id":"1","meta":{"v":"1"}}"#;
        let b = br#"{"resourceType":"Observation","id":"1","meta":{"v":"2"}}"#;
        let c = br#"{"resourceType":"Condition","id":"1","meta":{"v":"3"}}"#;
        let d = br#"{"resourceType":"Bundle","meta":{},"entry":[]}"#;
        let e = br#"{"meta":{"v":"4"}}"#;
        let whole = |t: &[u8]| serde_json::from_slice::<Value>(t).expect("valid");
        let arena = json::Arena::new();
        let got = parse_all_for_reading(&arena, &[&a[..], &b[..], &c[..], b"not json"]);
        let ok: Vec<Value> = got
            .iter()
            .filter_map(|r| r.as_ref().ok().map(json::Value::to_serde))
            .collect();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok[0], whole(a));
        assert_eq!(ok[1], whole(b));
        assert!(ok[2].get("meta").is_none(), "no other Condition/1: pruned");
        assert!(got[3].is_err());
        for other in [&d[..], &e[..]] {
            let got = parse_all_for_reading(&arena, &[&c[..], other]);
            let got: Vec<Option<Value>> = got
                .iter()
                .map(|r| r.as_ref().ok().map(json::Value::to_serde))
                .collect();
            assert_eq!(got[0], Some(whole(c)), "a batch with a Bundle: whole");
            assert_eq!(got[1], Some(whole(other)));
        }
    }
}
