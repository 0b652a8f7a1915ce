//! JSON shape check of the elements the reader maps: a present element of the wrong JSON type
//! (a string where FHIR has a number, an object where it has an array, …) is reported with its
//! field path instead of being read as absent.
//!
//! One table, per resource type: `path` uses `[]` for "every element of this array". Only the
//! elements some mapping reads are listed; others are not the reader's business.

use std::cmp::Ordering;

use crate::json::{name_cmp, Value};

use crate::util::Issues;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Str,
    Num,
    Bool,
    Obj,
    Arr,
}

use Want::*;

const CODING: &[(&str, Want)] = &[
    ("coding", Arr),
    ("coding[]", Obj),
    ("coding[].system", Str),
    ("coding[].code", Str),
    ("text", Str),
];

const QUANTITY: &[(&str, Want)] = &[
    ("value", Num),
    ("unit", Str),
    ("code", Str),
    ("system", Str),
];

const PERIOD: &[(&str, Want)] = &[("start", Str), ("end", Str)];

/// Elements read from a Dosage (MedicationRequest.dosageInstruction[], MedicationStatement.dosage[]).
const DOSAGE: &[(&str, Want)] = &[
    ("timing", Obj),
    ("timing.event", Arr),
    ("timing.event[]", Str),
    ("timing.repeat", Obj),
    ("timing.repeat.frequency", Num),
    ("timing.repeat.frequencyMax", Num),
    ("timing.repeat.period", Num),
    ("timing.repeat.periodUnit", Str),
    ("timing.repeat.count", Num),
    ("timing.repeat.when", Arr),
    ("timing.repeat.timeOfDay", Arr),
    ("timing.repeat.boundsPeriod", Obj),
    ("timing.repeat.boundsDuration", Obj),
    ("timing.repeat.boundsDuration.value", Num),
    ("timing.code", Obj),
    ("doseAndRate", Arr),
    ("doseAndRate[]", Obj),
    ("doseAndRate[].doseQuantity", Obj),
    ("doseAndRate[].doseRange", Obj),
    ("doseAndRate[].doseRange.low", Obj),
    ("doseAndRate[].doseRange.high", Obj),
    ("route", Obj),
    ("asNeededBoolean", Bool),
    ("asNeededCodeableConcept", Obj),
    ("sequence", Num),
];

/// `(path, want)` rows plus nested row sets (CodeableConcept, Quantity, Period, Dosage) at a path.
struct Rows {
    flat: &'static [(&'static str, Want)],
    nested: &'static [(&'static str, &'static [(&'static str, Want)])],
}

const COMMON: Rows = Rows {
    flat: &[
        ("id", Str),
        ("status", Str),
        ("subject", Obj),
        ("subject.reference", Str),
        ("patient", Obj),
        ("patient.reference", Str),
        ("contained", Arr),
        ("code", Obj),
    ],
    nested: &[("code", CODING)],
};

fn rows(ty: &str) -> Option<Rows> {
    Some(match ty {
        "Patient" => Rows {
            flat: &[
                ("gender", Str),
                ("birthDate", Str),
                ("deceasedDateTime", Str),
                ("deceasedBoolean", Bool),
            ],
            nested: &[],
        },
        "MedicationRequest" => Rows {
            flat: &[
                ("intent", Str),
                ("authoredOn", Str),
                ("medicationCodeableConcept", Obj),
                ("medicationReference", Obj),
                ("medicationReference.reference", Str),
                ("dosageInstruction", Arr),
                ("dosageInstruction[]", Obj),
                ("dispenseRequest", Obj),
                ("dispenseRequest.validityPeriod", Obj),
                ("dispenseRequest.expectedSupplyDuration", Obj),
                ("dispenseRequest.expectedSupplyDuration.value", Num),
            ],
            nested: &[
                ("medicationCodeableConcept", CODING),
                ("dosageInstruction[]", DOSAGE),
                ("dosageInstruction[].doseAndRate[].doseQuantity", QUANTITY),
                ("dosageInstruction[].doseAndRate[].doseRange.low", QUANTITY),
                ("dosageInstruction[].doseAndRate[].doseRange.high", QUANTITY),
                ("dosageInstruction[].timing.repeat.boundsPeriod", PERIOD),
                ("dispenseRequest.validityPeriod", PERIOD),
            ],
        },
        "MedicationStatement" => Rows {
            flat: &[
                ("medicationCodeableConcept", Obj),
                ("medicationReference", Obj),
                ("medicationReference.reference", Str),
                ("dosage", Arr),
                ("dosage[]", Obj),
                ("effectiveDateTime", Str),
                ("effectivePeriod", Obj),
                ("dateAsserted", Str),
            ],
            nested: &[
                ("medicationCodeableConcept", CODING),
                ("dosage[]", DOSAGE),
                ("dosage[].doseAndRate[].doseQuantity", QUANTITY),
                ("effectivePeriod", PERIOD),
            ],
        },
        "MedicationAdministration" => Rows {
            flat: &[
                ("medicationCodeableConcept", Obj),
                ("medicationReference", Obj),
                ("medicationReference.reference", Str),
                ("dosage", Obj),
                ("dosage.dose", Obj),
                ("dosage.route", Obj),
                ("effectiveDateTime", Str),
                ("effectivePeriod", Obj),
            ],
            nested: &[
                ("medicationCodeableConcept", CODING),
                ("dosage.dose", QUANTITY),
                ("effectivePeriod", PERIOD),
            ],
        },
        "Observation" => Rows {
            flat: &[
                ("effectiveDateTime", Str),
                ("effectiveInstant", Str),
                ("effectivePeriod", Obj),
                ("issued", Str),
                ("valueQuantity", Obj),
                ("valueCodeableConcept", Obj),
                ("component", Arr),
                ("component[]", Obj),
                ("component[].code", Obj),
                ("component[].valueQuantity", Obj),
            ],
            nested: &[
                ("valueQuantity", QUANTITY),
                ("component[].code", CODING),
                ("component[].valueQuantity", QUANTITY),
                ("effectivePeriod", PERIOD),
            ],
        },
        "Condition" => Rows {
            flat: &[
                ("onsetDateTime", Str),
                ("onsetPeriod", Obj),
                ("recordedDate", Str),
                ("abatementDateTime", Str),
                ("clinicalStatus", Obj),
                ("verificationStatus", Obj),
                ("bodySite", Arr),
                ("bodySite[]", Obj),
            ],
            nested: &[
                ("clinicalStatus", CODING),
                ("verificationStatus", CODING),
                ("onsetPeriod", PERIOD),
            ],
        },
        "Procedure" => Rows {
            flat: &[
                ("performedDateTime", Str),
                ("performedPeriod", Obj),
                ("bodySite", Arr),
                ("bodySite[]", Obj),
            ],
            nested: &[("performedPeriod", PERIOD)],
        },
        _ => return None,
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            let more = if short.len() < s.len() { "…" } else { "" };
            format!("a string ({short:?}{more})")
        }
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn wanted(w: Want) -> &'static str {
    match w {
        Str => "a string",
        Num => "a number",
        Bool => "a boolean",
        Obj => "an object",
        Arr => "an array",
    }
}

fn fits(v: &Value, w: Want) -> bool {
    matches!(
        (v, w),
        (Value::String(_), Str)
            | (Value::Number(_), Num)
            | (Value::Bool(_), Bool)
            | (Value::Object(_), Obj)
            | (Value::Array(_), Arr)
    )
}

/// The rows of one resource type compiled into a tree of keys, so that a resource is checked
/// in one walk of its own elements. Why: re-walking from the root for every row (splitting the
/// path each time, one map lookup per step) was 8 % of a screening run's CPU.
#[derive(Default)]
struct Node {
    /// Checks on the value at this node: `(row number, wanted type)`.
    wants: Vec<(usize, Want)>,
    /// Object members, sorted by name (`json::name_cmp`, `str`'s order): a slice, so that the
    /// merge walk of [`for_each_member`] steps through it without a B-tree iterator.
    keys: Vec<(&'static str, Node)>,
    /// Elements of an array (`[]` in a row path).
    items: Option<Box<Node>>,
}

impl Node {
    /// Adds the row whose path is the concatenation of `parts` (`["a.b[]", "c"]` = `a.b[].c`).
    fn insert(&mut self, row: usize, parts: &[&'static str], w: Want) {
        let mut at = self;
        for seg in parts.iter().flat_map(|p| p.split('.')) {
            let (key, each) = match seg.strip_suffix("[]") {
                Some(k) => (k, true),
                None => (seg, false),
            };
            let i = match at.keys.binary_search_by(|(k, _)| name_cmp(k, key)) {
                Ok(i) => i,
                Err(i) => {
                    at.keys.insert(i, (key, Node::default()));
                    i
                }
            };
            at = &mut at.keys[i].1;
            if each {
                at = at.items.get_or_insert_with(Box::default);
            }
        }
        at.wants.push((row, w));
    }
}

/// One step of a concrete field path.
#[derive(Clone, Copy)]
enum Seg<'p> {
    Key(&'p str),
    Idx(usize),
}

fn render(trail: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for s in trail {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Idx(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// One wrong shape: the row that found it, the field path, the problem.
type Report = (usize, String, String);

/// Checks `v` against `node` and everything below it; `trail` is the concrete path so far
/// (rendered only when something is reported: no allocation on the common, clean path).
fn walk(v: &Value, node: &'static Node, trail: &mut Vec<Seg<'static>>, out: &mut Vec<Report>) {
    for &(row, w) in &node.wants {
        if v.is_null() {
            out.push((
                row,
                render(trail),
                "null is not allowed in FHIR JSON: read as absent".into(),
            ));
        } else if !fits(v, w) {
            out.push((
                row,
                render(trail),
                format!("wrong JSON type: {}, expected {}", describe(v), wanted(w)),
            ));
        }
    }
    if let (Some(items), Value::Array(elems)) = (&node.items, v) {
        for (i, e) in elems.iter().enumerate() {
            trail.push(Seg::Idx(i));
            walk(e, items, trail, out);
            trail.pop();
        }
    }
    if let Value::Object(obj) = v {
        for_each_member(obj, &node.keys, |key, x, child| {
            trail.push(Seg::Key(key));
            walk(x, child, trail, out);
            trail.pop();
        });
    }
}

/// Calls `f` for every member of `obj` that `keys` lists, in the object's order. Both iterate in
/// sorted key order (a `json::Map` keeps its members sorted), so one merge pass finds them
/// without a lookup per member.
fn for_each_member<'v, 'j>(
    obj: &'v crate::json::Map<'j>,
    keys: &'static [(&'static str, Node)],
    mut f: impl FnMut(&'static str, &'v Value<'j>, &'static Node),
) {
    let mut want = keys.iter().peekable();
    for (k, x) in obj.iter() {
        while want
            .next_if(|(w, _)| name_cmp(w, k) == Ordering::Less)
            .is_some()
        {}
        if let Some((w, child)) = want.peek() {
            if *w == k {
                f(w, x, child);
            }
        }
    }
}

fn table(ty: &str) -> Option<&'static Node> {
    use std::collections::BTreeMap;
    use std::sync::OnceLock;
    static T: OnceLock<BTreeMap<&'static str, Node>> = OnceLock::new();
    let t = T.get_or_init(|| {
        let mut t = BTreeMap::new();
        for ty in [
            "Patient",
            "MedicationRequest",
            "MedicationStatement",
            "MedicationAdministration",
            "Observation",
            "Condition",
            "Procedure",
        ] {
            let mut root = Node::default();
            let mut row = 0;
            for rs in [Some(COMMON), rows(ty)].into_iter().flatten() {
                for (path, w) in rs.flat {
                    root.insert(row, &[path], *w);
                    row += 1;
                }
                for (at, sub) in rs.nested {
                    for (path, w) in *sub {
                        root.insert(row, &[at, path], *w);
                        row += 1;
                    }
                }
            }
            t.insert(ty, root);
        }
        t
    });
    t.get(ty)
}

/// Segments of a field path the trail is allocated for at once (the tables' deepest paths,
/// e.g. `dosageInstruction[].timing.repeat.boundsDuration.value`, are 6–7 deep).
const TRAIL_CAPACITY: usize = 8;

/// Checks one resource; wrong shapes become issues (in the order of the resource's top-level
/// keys, then of the table's rows). Returns the field paths found wrong.
pub(crate) fn check(v: &Value, ty: &str, issues: &mut Issues) -> Vec<String> {
    let (Some(root), Some(obj)) = (table(ty), v.as_object()) else {
        return Vec::new();
    };
    let mut bad = Vec::new();
    // Room for the deepest path of the tables (no growth step on the common path).
    let mut trail = Vec::with_capacity(TRAIL_CAPACITY);
    let mut found = Vec::new();
    for_each_member(obj, &root.keys, |name, x, node| {
        trail.push(Seg::Key(name));
        walk(x, node, &mut trail, &mut found);
        trail.pop();
        // Nothing found is the common case: no sort, no drain.
        if found.is_empty() {
            return;
        }
        found.sort_by_key(|r| r.0);
        for (_, field, problem) in found.drain(..) {
            issues.add(&field, problem);
            bad.push(field);
        }
    });
    bad.sort();
    bad.dedup();
    bad
}

/// Whether a wrong shape at `field` hides what the resource is or whose it is (then an
/// otherwise "ignored" resource is reported as not understood).
pub(crate) fn is_identity(field: &str) -> bool {
    [
        "code",
        "medicationCodeableConcept",
        "medicationReference",
        "subject",
        "patient",
        "resourceType",
    ]
    .iter()
    .any(|k| field == *k || field.starts_with(&format!("{k}.")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn member_walk_finds_exactly_the_listed_members() {
        let Some(root) = table("MedicationRequest") else {
            panic!("table");
        };
        let v = json!({"authoredOn": "2020", "aaa": 1, "intent": "order", "zzz": 2,
            "dosageInstruction": [], "id": "x", "status": "active", "subject": {}});
        let arena = crate::json::Arena::new();
        let v = Value::from_serde(&arena, &v);
        let Some(obj) = v.as_object() else {
            panic!("object");
        };
        let mut got = Vec::new();
        for_each_member(obj, &root.keys, |k, _, _| got.push(k));
        let want: Vec<&str> = obj
            .iter()
            .map(|(k, _)| k)
            .filter(|k| root.keys.iter().any(|(n, _)| n == k))
            .collect();
        assert_eq!(got, want);
        assert_eq!(
            got,
            [
                "authoredOn",
                "dosageInstruction",
                "id",
                "intent",
                "status",
                "subject"
            ]
        );
    }

    #[test]
    fn wrong_shapes_are_named() {
        let v = json!({"resourceType": "MedicationRequest", "status": 5,
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": "5"}}]}],
            "code": {"coding": {"code": "x"}}});
        let arena = crate::json::Arena::new();
        let v = Value::from_serde(&arena, &v);
        let mut is = Issues::new("MedicationRequest/x");
        let bad = check(&v, "MedicationRequest", &mut is);
        assert_eq!(
            bad,
            vec![
                "code.coding",
                "dosageInstruction[0].doseAndRate[0].doseQuantity.value",
                "status"
            ]
        );
        assert!(is.list.iter().any(|i| i.field == "status"
            && i.problem == "wrong JSON type: a number (5), expected a string"));
        assert!(is_identity("code.coding"));
        assert!(!is_identity("codeX"));
    }
}
