//! Small helpers for walking FHIR resources (the reader's `json::Value` tree) and collecting
//! data-quality issues.

use crate::json::Value;
use osteoguard_core::DataQualityIssue;

/// Largest magnitude accepted for any numeric input (doses, values, frequencies). Anything larger
/// is treated as garbage (guards overflow in conversions).
pub(crate) const MAX_ABS: f64 = 1.0e12;

/// The string at `key`, if it is a string.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// The array at `key` (empty when missing or not an array).
pub(crate) fn arr<'a, 'j>(v: &'a Value<'j>, key: &str) -> &'a [Value<'j>] {
    match v.get(key) {
        Some(Value::Array(a)) => a,
        _ => &[],
    }
}

/// A finite number within [`MAX_ABS`].
pub(crate) fn num(v: &Value) -> Option<f64> {
    let x = v.as_f64()?;
    if x.is_finite() && x.abs() <= MAX_ABS {
        Some(x)
    } else {
        None
    }
}

/// Why `v` (the value of a Quantity, or absent) is not a usable number.
pub(crate) fn num_problem(v: Option<&Value>) -> String {
    match v {
        None => "no usable numeric value: missing".into(),
        Some(Value::Number(n)) => {
            format!("no usable numeric value: {n} is out of range (|value| > {MAX_ABS:e})")
        }
        Some(Value::String(x)) if x.chars().count() > 40 => {
            let short: String = x.chars().take(40).collect();
            format!("no usable numeric value: the string {short:?}… is not a JSON number")
        }
        Some(x) => format!("no usable numeric value: {x} is not a JSON number"),
    }
}

/// One `Coding` of a CodeableConcept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Coding<'a> {
    pub system: &'a str,
    pub code: &'a str,
    pub display: Option<&'a str>,
}

/// The codings of a CodeableConcept (entries without a code are skipped; a missing system is
/// `""`, which matches no terminology table).
pub(crate) fn codings<'a>(cc: &'a Value<'_>) -> Vec<Coding<'a>> {
    arr(cc, "coding")
        .iter()
        .filter_map(|c| {
            Some(Coding {
                system: s(c, "system").unwrap_or("").trim(),
                code: s(c, "code")?.trim(),
                display: s(c, "display"),
            })
        })
        .collect()
}

/// `text`, else the first coding display.
pub(crate) fn cc_text(cc: &Value) -> Option<String> {
    if let Some(t) = s(cc, "text") {
        return Some(t.to_string());
    }
    arr(cc, "coding")
        .iter()
        .find_map(|c| s(c, "display"))
        .map(str::to_string)
}

/// Collects the issues met while mapping one resource.
#[derive(Debug, Clone)]
pub(crate) struct Issues {
    pub reference: String,
    pub list: Vec<DataQualityIssue>,
}

impl Issues {
    pub fn new(reference: impl Into<String>) -> Self {
        Issues {
            reference: reference.into(),
            list: Vec::new(),
        }
    }
    /// Drops the generic "missing / not usable" issues on fields whose wrong JSON shape was
    /// already reported (the shape issue says more).
    pub fn retain_specific(&mut self, wrong_shape: &[String]) {
        if wrong_shape.is_empty() {
            return;
        }
        self.list.retain(|i| {
            !(wrong_shape.contains(&i.field)
                && (matches!(i.problem.as_str(), "missing" | "not a string date")
                    || i.problem.starts_with("no usable numeric value")))
        });
    }
    pub fn add(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.list.push(DataQualityIssue::new(
            self.reference.clone(),
            field,
            problem,
        ));
    }
}

/// Joins a field path: `join("dosage[0]", "route")` = `dosage[0].route`.
pub(crate) fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_string()
    } else {
        format!("{prefix}.{field}")
    }
}

/// The first key of the form `<prefix><Suffix>` present in `v` (FHIR choice types `value[x]`).
pub(crate) fn choice<'a, 'j>(v: &'a Value<'j>, prefix: &str) -> Option<(&'a str, &'a Value<'j>)> {
    let obj = v.as_object()?;
    obj.iter().find_map(|(k, val)| {
        let rest = k.strip_prefix(prefix)?;
        if rest.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            Some((k, val))
        } else {
            None
        }
    })
}
