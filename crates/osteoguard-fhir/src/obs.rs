//! Observation → `Observation` items (knowledge.md §1.3, §3.4, §6, §7.2, §10.2, §10.4).

use crate::json::Value;
use chrono::NaiveDateTime;
use osteoguard_core::model::{
    Observation, ObservationKind, ObservationStatus, Side, SourceRef, VertebralLevel,
};

use crate::dates::{self, Pick};
use crate::terminology::{self, EXT_FRAX_GC_ADJUSTED, SNOMED};
use crate::units;
use crate::util::{arr, choice, codings, join, num, num_problem, s, Issues};
use crate::Disposition;

pub(crate) struct ObsOutcome {
    pub disposition: Disposition,
    pub items: Vec<Observation>,
}

fn status(st: Option<&str>, issues: &mut Issues) -> ObservationStatus {
    use ObservationStatus::*;
    match st {
        Some("final") => Final,
        Some("amended") => Amended,
        Some("corrected") => Corrected,
        Some("preliminary") => Preliminary,
        Some("registered") => Registered,
        Some("cancelled") => Cancelled,
        Some("entered-in-error") => EnteredInError,
        Some("unknown") => Unknown,
        Some(other) => {
            issues.add("status", format!("unknown status {other:?}"));
            Unknown
        }
        None => {
            issues.add("status", "missing");
            Unknown
        }
    }
}

/// The recognised kind of a CodeableConcept, with its LOINC code and side.
fn kind_of(cc: &Value) -> Option<(ObservationKind, Option<Side>, String)> {
    codings(cc).iter().find_map(|c| {
        terminology::observation(c.system, c.code).map(|(k, side)| (k, side, c.code.to_string()))
    })
}

/// Level / side from the Observation `bodySite` (one CodeableConcept in R4).
fn body_site(res: &Value, issues: &mut Issues) -> (Option<VertebralLevel>, Option<Side>, bool) {
    let Some(bs) = res.get("bodySite") else {
        return (None, None, false);
    };
    if !bs.is_object() {
        issues.add(
            "bodySite",
            "wrong JSON shape: R4 Observation.bodySite is one CodeableConcept; not used (§10.4)",
        );
        return (None, None, true);
    }
    let mut level = codings(bs)
        .iter()
        .filter(|c| c.system == SNOMED)
        .find_map(|c| terminology::level_from_snomed(c.code));
    let text = s(bs, "text").unwrap_or("");
    if level.is_none() {
        level = VertebralLevel::parse(text);
    }
    let lower = text.to_ascii_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).collect();
    let side = if words.contains(&"left") {
        Some(Side::Left)
    } else if words.contains(&"right") {
        Some(Side::Right)
    } else {
        None
    };
    (level, side, true)
}

/// A numeric value[x] → (value, unit) or a reason.
enum Val {
    Num(f64, Option<String>, Option<String>),
    Bool(bool),
    None,
}

fn value_of(container: &Value, base: &str, issues: &mut Issues) -> (Val, String) {
    let Some((key, v)) = choice(container, "value") else {
        let field = join(base, "value[x]");
        if let Some(dar) = container.get("dataAbsentReason") {
            let why = codings(dar)
                .first()
                .map(|c| c.code.to_string())
                .unwrap_or_default();
            issues.add(&field, format!("no value (dataAbsentReason {why:?})"));
        }
        return (Val::None, field);
    };
    let field = join(base, key);
    let val = match key {
        "valueQuantity" => match v.get("value").and_then(num) {
            Some(x) => {
                let code = units::quantity_unit(v).map(str::to_string);
                let human = s(v, "unit").map(str::to_string);
                if let Some(cmp) = s(v, "comparator") {
                    issues.add(
                        join(&field, "comparator"),
                        format!("value is {cmp}{x}; the bound {x} is used"),
                    );
                }
                Val::Num(x, code, human)
            }
            None => {
                issues.add(join(&field, "value"), num_problem(v.get("value")));
                Val::None
            }
        },
        "valueInteger" => match num(v) {
            Some(x) => Val::Num(x, None, None),
            None => Val::None,
        },
        "valueBoolean" => match v.as_bool() {
            Some(b) => Val::Bool(b),
            None => Val::None,
        },
        "valueCodeableConcept" => {
            let yes = codings(v)
                .iter()
                .any(|c| (c.system == SNOMED && c.code == "373066001") || c.code == "Y");
            let no = codings(v)
                .iter()
                .any(|c| (c.system == SNOMED && c.code == "373067005") || c.code == "N");
            match (yes, no) {
                (true, false) => Val::Bool(true),
                (false, true) => Val::Bool(false),
                _ => {
                    issues.add(&field, "coded value not understood");
                    Val::None
                }
            }
        }
        "valueString" => match v
            .as_str()
            .map(str::trim)
            .and_then(|t| t.parse::<f64>().ok())
        {
            Some(x) if x.is_finite() && x.abs() <= crate::util::MAX_ABS => {
                issues.add(&field, "numeric value given as a string, without unit");
                Val::Num(x, None, None)
            }
            _ => {
                issues.add(&field, "string value not understood");
                Val::None
            }
        },
        other => {
            issues.add(&field, format!("{other} not understood for this code"));
            Val::None
        }
    };
    (val, field)
}

fn convert(
    kind: ObservationKind,
    loinc: &str,
    x: f64,
    code: Option<&str>,
    human: Option<&str>,
    field: &str,
    issues: &mut Issues,
) -> Option<(f64, bool)> {
    let first = units::convert(kind, loinc, x, code);
    let r = match (&first, human) {
        (Err(_), Some(h)) if Some(h) != code => units::convert(kind, loinc, x, Some(h)).or(first),
        _ => first,
    };
    match r {
        Ok((v, pct)) if v.is_finite() => Some((v, pct)),
        Ok(_) => {
            issues.add(field, "value out of range");
            None
        }
        Err(e) => {
            issues.add(join(field, "unit"), e.describe(&format!("{kind:?}")));
            None
        }
    }
}

fn frax_gc_entered(res: &Value) -> Option<bool> {
    for c in arr(res, "component") {
        let Some(code) = c.get("code") else { continue };
        let mut texts: Vec<String> = codings(code)
            .iter()
            .filter_map(|x| x.display.map(str::to_ascii_lowercase))
            .collect();
        if let Some(t) = s(code, "text") {
            texts.push(t.to_ascii_lowercase());
        }
        if texts.iter().any(|t| t.contains("glucocorticoid")) {
            if let Some(b) = c.get("valueBoolean").and_then(Value::as_bool) {
                return Some(b);
            }
        }
    }
    for n in arr(res, "note") {
        let t = s(n, "text").unwrap_or("").to_ascii_lowercase();
        for (pat, val) in [
            ("glucocorticoids = yes", true),
            ("glucocorticoids: yes", true),
            ("glucocorticoids = no", false),
            ("glucocorticoids: no", false),
        ] {
            if t.contains(pat) {
                return Some(val);
            }
        }
    }
    None
}

fn frax_gc_adjusted(res: &Value) -> bool {
    arr(res, "extension").iter().any(|e| {
        s(e, "url") == Some(EXT_FRAX_GC_ADJUSTED)
            && e.get("valueBoolean").and_then(Value::as_bool) == Some(true)
    })
}

/// `device` — the Device resource the Observation's `device` references, resolved by the caller
/// (a contained `#id` Device or a Device in the input): DXA scans are compared by its
/// `manufacturer` (§6.2, v0.10.3).
pub(crate) fn map(
    res: &Value,
    device: Option<&Value>,
    reference: &str,
    issues: &mut Issues,
) -> ObsOutcome {
    let Some(code) = res.get("code") else {
        issues.add("code", "missing");
        return ObsOutcome {
            disposition: Disposition::NotUnderstood,
            items: Vec::new(),
        };
    };
    // Candidates: the Observation itself, then any component with a recognised code.
    let mut cands: Vec<(ObservationKind, Option<Side>, String, &Value, String)> = Vec::new();
    if let Some((k, side, lc)) = kind_of(code) {
        cands.push((k, side, lc, res, String::new()));
    }
    for (i, comp) in arr(res, "component").iter().enumerate() {
        if let Some((k, side, lc)) = comp.get("code").and_then(kind_of) {
            let main_has_value = cands
                .first()
                .is_some_and(|c| c.0 == k && choice(res, "value").is_some());
            if !main_has_value {
                cands.push((k, side, lc, comp, format!("component[{i}]")));
            }
        }
    }
    // A panel without its own value whose components carry the values (eGFR f205).
    if choice(res, "value").is_none()
        && cands.len() > 1
        && cands.iter().skip(1).any(|c| c.0 == cands[0].0)
    {
        cands.remove(0);
    }
    if cands.is_empty() {
        return ObsOutcome {
            disposition: Disposition::Ignored,
            items: Vec::new(),
        };
    }
    let status = status(s(res, "status"), issues);
    let effective: Option<NaiveDateTime> = if res.get("effectiveDateTime").is_some() {
        dates::datetime(
            res,
            "effectiveDateTime",
            "effectiveDateTime",
            Pick::First,
            issues,
        )
    } else if res.get("effectiveInstant").is_some() {
        dates::datetime(
            res,
            "effectiveInstant",
            "effectiveInstant",
            Pick::First,
            issues,
        )
    } else if let Some(p) = res.get("effectivePeriod") {
        if p.get("end").is_some() {
            dates::datetime(p, "end", "effectivePeriod.end", Pick::Last, issues)
        } else {
            dates::datetime(p, "start", "effectivePeriod.start", Pick::First, issues)
        }
    } else {
        if res.get("effectiveTiming").is_some() {
            issues.add("effectiveTiming", "not read");
        }
        None
    };
    let issued = dates::day(res, "issued", "issued", Pick::First, issues);
    let visible = issued.or(effective.map(|t| t.date()));
    if visible.is_none() {
        issues.add("effective[x]", "no effective or issued date");
    }
    let device_manufacturer = device
        .and_then(|d| s(d, "manufacturer"))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string);
    let device = res.get("device").and_then(|d| {
        s(d, "display")
            .or_else(|| s(d, "reference"))
            .map(str::to_string)
    });
    let (level, bs_side, _) = body_site(res, issues);
    let mut items = Vec::new();
    for (kind, side, loinc, container, base) in cands {
        let (val, field) = value_of(container, &base, issues);
        let mut value = None;
        let mut flag = None;
        let mut lsc_is_percent = false;
        match (kind, val) {
            (ObservationKind::VertebralEdema, Val::Bool(b)) => flag = Some(b),
            (ObservationKind::VertebralEdema, Val::Num(..)) => {
                issues.add(&field, "vertebral-edema needs valueBoolean");
            }
            (_, Val::Bool(_)) => issues.add(&field, "boolean value for a numeric code"),
            (k, Val::Num(x, code, human)) => {
                if let Some((v, pct)) = convert(
                    k,
                    &loinc,
                    x,
                    code.as_deref(),
                    human.as_deref(),
                    &field,
                    issues,
                ) {
                    value = Some(v);
                    lsc_is_percent = pct;
                }
            }
            (_, Val::None) => {}
        }
        if kind == ObservationKind::GenantGrade {
            if let Some(v) = value {
                if !(0.0..=3.0).contains(&v) || v.fract() != 0.0 {
                    issues.add(&field, format!("Genant grade {v} is not 0–3"));
                    value = None;
                }
            }
        }
        if matches!(
            kind,
            ObservationKind::VertebralEdema | ObservationKind::GenantGrade
        ) && level.is_none()
        {
            issues.add(
                "bodySite",
                "no vertebral level recognised (bodySite.text \"T1\"…\"L5\"): not used",
            );
            continue;
        }
        let (mut low, mut high) = (None, None);
        if let Some(rr) = arr(container, "referenceRange").first() {
            let base_rr = join(&base, "referenceRange[0]");
            for (key, slot) in [("low", &mut low), ("high", &mut high)] {
                if let Some(q) = rr.get(key) {
                    if let Some(x) = q.get("value").and_then(num) {
                        let f = join(&base_rr, key);
                        *slot = convert(
                            kind,
                            &loinc,
                            x,
                            units::quantity_unit(q),
                            s(q, "unit"),
                            &f,
                            issues,
                        )
                        .map(|v| v.0);
                    }
                }
            }
        }
        let is_frax = matches!(kind, ObservationKind::FraxMof | ObservationKind::FraxHip);
        items.push(Observation {
            source: SourceRef::new(reference),
            kind,
            status,
            value,
            flag,
            effective,
            visible,
            reference_low: low,
            reference_high: high,
            device: device.clone(),
            device_manufacturer: device_manufacturer.clone(),
            side: side.or(bs_side),
            level,
            frax_gc_adjusted: is_frax && frax_gc_adjusted(res),
            frax_gc_entered: if is_frax { frax_gc_entered(res) } else { None },
            lsc_is_percent,
        });
    }
    let disposition = if items.is_empty() {
        Disposition::NotUnderstood
    } else {
        Disposition::Used
    };
    ObsOutcome { disposition, items }
}
