//! JSON shape check of the elements the reader maps: a present element of the wrong JSON type
//! (a string where FHIR has a number, an object where it has an array, …) is reported with its
//! field path instead of being read as absent.
//!
//! One table, per resource type: `path` uses `[]` for "every element of this array". Only the
//! elements some mapping reads are listed; others are not the reader's business.

use serde_json::Value;

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

/// Visits every value at `path` (`a.b[].c`) below `v`; `trail` is the concrete path so far
/// (rendered only when something is reported: no allocation on the common, clean path).
fn visit<'a, 'p>(
    v: &'a Value,
    path: &'p str,
    trail: &mut Vec<Seg<'p>>,
    f: &mut dyn FnMut(&'a Value, &[Seg<'p>]),
) {
    let (head, rest) = match path.split_once('.') {
        Some((h, r)) => (h, Some(r)),
        None => (path, None),
    };
    let (key, each) = match head.strip_suffix("[]") {
        Some(k) => (k, true),
        None => (head, false),
    };
    let Some(x) = v.get(key) else { return };
    trail.push(Seg::Key(key));
    let mut go = |x: &'a Value, trail: &mut Vec<Seg<'p>>| match rest {
        None => f(x, trail),
        Some(r) => visit(x, r, trail, f),
    };
    if each {
        if let Value::Array(items) = x {
            for (i, it) in items.iter().enumerate() {
                trail.push(Seg::Idx(i));
                go(it, trail);
                trail.pop();
            }
        }
    } else {
        go(x, trail);
    }
    trail.pop();
}

/// Rows of one resource type, flattened (nested sets expanded once) and grouped by their first
/// key, so that a resource is checked by walking its own keys.
type Table = std::collections::BTreeMap<String, Vec<(String, Want)>>;

fn table(ty: &str) -> Option<&'static Table> {
    use std::collections::BTreeMap;
    use std::sync::OnceLock;
    static T: OnceLock<BTreeMap<&'static str, Table>> = OnceLock::new();
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
            let mut flat = Vec::new();
            for rs in [Some(COMMON), rows(ty)].into_iter().flatten() {
                for (path, w) in rs.flat {
                    flat.push((path.to_string(), *w));
                }
                for (at, sub) in rs.nested {
                    for (path, w) in *sub {
                        flat.push((format!("{at}.{path}"), *w));
                    }
                }
            }
            let mut by_key: Table = BTreeMap::new();
            for (path, w) in flat {
                let first = path.split(['.', '[']).next().unwrap_or("").to_string();
                by_key.entry(first).or_default().push((path, w));
            }
            t.insert(ty, by_key);
        }
        t
    });
    t.get(ty)
}

/// Checks one resource; wrong shapes become issues. Returns the field paths found wrong.
pub(crate) fn check(v: &Value, ty: &str, issues: &mut Issues) -> Vec<String> {
    let (Some(table), Some(obj)) = (table(ty), v.as_object()) else {
        return Vec::new();
    };
    let mut bad = Vec::new();
    let mut trail = Vec::new();
    for key in obj.keys() {
        let Some(rows) = table.get(key) else { continue };
        for (path, w) in rows {
            visit(v, path, &mut trail, &mut |x, at| {
                if x.is_null() {
                    let field = render(at);
                    issues.add(&field, "null is not allowed in FHIR JSON: read as absent");
                    bad.push(field);
                } else if !fits(x, *w) {
                    let field = render(at);
                    issues.add(
                        &field,
                        format!("wrong JSON type: {}, expected {}", describe(x), wanted(*w)),
                    );
                    bad.push(field);
                }
            });
        }
    }
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
    fn wrong_shapes_are_named() {
        let v = json!({"resourceType": "MedicationRequest", "status": 5,
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": "5"}}]}],
            "code": {"coding": {"code": "x"}}});
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
