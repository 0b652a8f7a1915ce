//! MedicationRequest / MedicationStatement / MedicationAdministration → `MedicationRecord`
//! (knowledge.md §1.2, §1.6, §2.1–2.3, §10.1); MedicationDispense → `MedicationDispense` (§13).

use crate::json::Value;
use chrono::NaiveDate;
use osteoguard_core::model::{
    DispenseStatus, Dosage, Ingredient, MedicationDispense, MedicationRecord, MedicationSource,
    MedicationStatus, Period, Route, SourceRef,
};

use crate::dates::{self, Pick};
use crate::terminology::{self, MedCode, ProductRoute, SNOMED};
use crate::units::{self, ProductUnit};
use crate::util::{arr, cc_text, codings, join, num, num_problem, s, Issues};
use crate::Disposition;

/// How `medication[x]` was resolved by the reader.
pub(crate) enum MedSource<'a> {
    /// `medicationCodeableConcept`.
    Concept(&'a Value<'a>),
    /// A resolved `Medication` resource (contained or in the input).
    Resource(&'a Value<'a>),
    /// A reference that could not be resolved.
    Unresolved(String),
    Missing,
}

/// What the product tells about dose computation.
struct Product {
    ingredients: Vec<Ingredient>,
    route: ProductRoute,
    /// mg of the (single) recognised ingredient per product unit.
    strength: Option<(f64, ProductUnit, String)>,
    display: String,
}

fn product(med: &MedSource<'_>, issues: &mut Issues) -> Option<Product> {
    let (concept, medication) = match med {
        MedSource::Concept(cc) => (Some(*cc), None),
        MedSource::Resource(m) => (m.get("code"), Some(*m)),
        MedSource::Unresolved(_) | MedSource::Missing => return None,
    };
    let mut codes: Vec<MedCode> = Vec::new();
    if let Some(cc) = concept {
        codes.extend(
            codings(cc)
                .iter()
                .filter_map(|c| terminology::medication(c.system, c.code)),
        );
    }
    let mut strength: Option<(f64, ProductUnit, String)> = None;
    let mut strength_candidates = Vec::new();
    // Ingredient codes first; strengths are read only for recognised products.
    let ings: &[Value] = medication.map(|m| arr(m, "ingredient")).unwrap_or(&[]);
    let mut recognised_ing = Vec::new();
    for ing in ings {
        let item_codes: Vec<MedCode> = ing
            .get("itemCodeableConcept")
            .map(|cc| {
                codings(cc)
                    .iter()
                    .filter_map(|c| terminology::medication(c.system, c.code))
                    .collect()
            })
            .unwrap_or_default();
        recognised_ing.push(!item_codes.is_empty());
        codes.extend(item_codes);
    }
    if codes.is_empty() {
        return None;
    }
    for (i, ing) in ings.iter().enumerate() {
        if let Some(st) = ing.get("strength") {
            let field = format!("medication.ingredient[{i}].strength");
            if recognised_ing[i] || ings.len() == 1 {
                if let Some(x) = ratio_mg_per_unit(st, &field, issues) {
                    strength_candidates.push((x.0, x.1, format!("Medication {field}")));
                }
            }
        }
    }
    let mut ingredients: Vec<Ingredient> = codes.iter().map(|c| c.ingredient).collect();
    ingredients.sort();
    ingredients.dedup();
    let route = if codes.iter().any(|c| c.route == ProductRoute::Local)
        || ingredients.contains(&Ingredient::OtherLocalCorticosteroid)
    {
        ProductRoute::Local
    } else if let Some(c) = codes.iter().find(|c| c.route != ProductRoute::Any) {
        c.route
    } else {
        ProductRoute::Any
    };
    if ingredients.len() == 1 {
        if strength_candidates.len() == 1 {
            strength = strength_candidates.pop();
        } else if let Some((mg, u)) = codes.iter().find_map(|c| c.strength) {
            strength = Some((mg, u, "the labelled strength of the coded product".into()));
        }
    }
    let display = concept
        .and_then(cc_text)
        .or_else(|| medication.and_then(|m| s(m, "id")).map(str::to_string))
        .unwrap_or_default();
    Some(Product {
        ingredients,
        route,
        strength,
        display,
    })
}

/// `numerator` mass per `denominator` product unit.
fn ratio_mg_per_unit(r: &Value, field: &str, issues: &mut Issues) -> Option<(f64, ProductUnit)> {
    let n = r.get("numerator")?;
    let nv = n.get("value").and_then(num)?;
    let nu = units::quantity_unit(n).unwrap_or("");
    let Some(f) =
        units::mass_factor_mg(nu).or_else(|| s(n, "unit").and_then(units::mass_factor_mg))
    else {
        issues.add(
            join(field, "numerator.unit"),
            format!("unknown unit {nu:?}"),
        );
        return None;
    };
    let (dv, du) = match r.get("denominator") {
        Some(d) => (
            d.get("value").and_then(num).unwrap_or(1.0),
            units::quantity_unit(d).unwrap_or("1"),
        ),
        None => (1.0, "1"),
    };
    let Some(pu) = units::product_unit(du) else {
        issues.add(
            join(field, "denominator.unit"),
            format!("unknown unit {du:?}"),
        );
        return None;
    };
    if dv <= 0.0 {
        issues.add(join(field, "denominator.value"), "not positive");
        return None;
    }
    let mg = nv * f / dv;
    mg.is_finite().then_some((mg, pu))
}

/// A dose Quantity → mg of the ingredient.
fn dose_to_mg(q: &Value, field: &str, p: &Product, issues: &mut Issues) -> Option<f64> {
    let Some(v) = q.get("value").and_then(num) else {
        issues.add(join(field, "value"), num_problem(q.get("value")));
        return None;
    };
    if v < 0.0 {
        issues.add(join(field, "value"), format!("negative dose {v}"));
        return None;
    }
    let code = units::quantity_unit(q);
    let human = s(q, "unit");
    for u in [code, human].into_iter().flatten() {
        if let Some(f) = units::mass_factor_mg(u) {
            return Some(v * f);
        }
    }
    if let Some(u) = [code, human]
        .into_iter()
        .flatten()
        .find(|u| units::is_iu(u))
    {
        if p.ingredients.len() == 1
            && matches!(
                p.ingredients[0],
                Ingredient::Cholecalciferol | Ingredient::Ergocalciferol
            )
        {
            return Some(v * 0.000_025);
        }
        issues.add(
            join(field, "unit"),
            format!("unit {u:?} cannot be converted to mg for {}", p.display),
        );
        return None;
    }
    let product_unit = match code.or(human) {
        None => None,
        Some(u) => match [code, human]
            .into_iter()
            .flatten()
            .find_map(units::product_unit)
        {
            Some(pu) => Some(pu),
            None => {
                issues.add(join(field, "unit"), format!("unknown unit {u:?}"));
                return None;
            }
        },
    };
    let Some((mg, su, from)) = &p.strength else {
        issues.add(
            join(field, "unit"),
            format!(
                "dose in product units ({}) but the strength is unknown: dose not computable",
                code.or(human).unwrap_or("no unit")
            ),
        );
        return None;
    };
    let pu = product_unit.unwrap_or(*su);
    if pu != *su {
        issues.add(
            join(field, "unit"),
            format!("dose unit does not match the strength unit of {from}: dose not computable"),
        );
        return None;
    }
    if product_unit.is_none() {
        issues.add(
            join(field, "unit"),
            format!("no unit: read as {v} product unit(s) × {mg} mg ({from})"),
        );
    }
    Some(v * mg)
}

/// More administrations per day than this (one a minute) is garbage, not a regimen.
const MAX_PER_DAY: f64 = 1440.0;

/// `timing` → administrations per day (§2.3 step 2).
fn per_day(timing: &Value, field: &str, issues: &mut Issues) -> Option<f64> {
    let rep = timing.get("repeat");
    if let Some(r) = rep {
        // A frequency/period that is present but not a usable number is not "once".
        for key in ["frequencyMax", "frequency", "period"] {
            if let Some(x) = r.get(key) {
                if num(x).is_none() {
                    issues.add(
                        join(field, &format!("repeat.{key}")),
                        format!("not a usable number ({x}): daily dose not computable"),
                    );
                    return None;
                }
            }
        }
        let freq = r
            .get("frequencyMax")
            .and_then(num)
            .or_else(|| r.get("frequency").and_then(num));
        let period = r.get("period").and_then(num);
        if freq.is_some() || period.is_some() {
            let f = freq.unwrap_or(1.0);
            let Some(p) = period else {
                issues.add(
                    join(field, "repeat.period"),
                    "frequency without period: daily dose not computable",
                );
                return None;
            };
            let unit = s(r, "periodUnit").unwrap_or("");
            let days = match unit {
                "s" => p / 86_400.0,
                "min" => p / 1440.0,
                "h" => p / 24.0,
                "d" => p,
                "wk" => p * 7.0,
                "mo" => p * 30.0,
                "a" => p * 365.0,
                _ => {
                    issues.add(
                        join(field, "repeat.periodUnit"),
                        format!("unknown period unit {unit:?}"),
                    );
                    return None;
                }
            };
            if days <= 0.0 || f < 0.0 {
                issues.add(join(field, "repeat.period"), "period must be positive");
                return None;
            }
            let x = f / days;
            if !x.is_finite() || x > MAX_PER_DAY {
                issues.add(
                    join(field, "repeat"),
                    format!("implausible timing: {f} per {p} {unit} ({x:e} per day): daily dose not computable"),
                );
                return None;
            }
            return Some(x);
        }
        let when = arr(r, "when").len();
        if when > 0 {
            return Some(when as f64);
        }
        let tod = arr(r, "timeOfDay").len();
        if tod > 0 {
            return Some(tod as f64);
        }
    }
    if let Some(code) = timing.get("code") {
        let mut keys: Vec<String> = codings(code)
            .iter()
            .map(|c| c.code.to_ascii_uppercase())
            .collect();
        if let Some(t) = s(code, "text") {
            keys.push(t.trim().to_ascii_uppercase());
        }
        for k in &keys {
            let x = match k.as_str() {
                "BID" => 2.0,
                "TID" => 3.0,
                "QID" => 4.0,
                "QD" | "QAM" | "QPM" | "AM" | "PM" | "QHS" => 1.0,
                "Q2D" | "QOD" => 0.5,
                "WK" | "QWK" => 1.0 / 7.0,
                "Q4H" => 6.0,
                "Q6H" => 4.0,
                "Q8H" => 3.0,
                "Q12H" => 2.0,
                "MO" => 1.0 / 30.0,
                _ => continue,
            };
            return Some(x);
        }
        issues.add(join(field, "code"), "timing code not recognised");
    }
    None
}

/// Duration → whole days (rounded up).
fn duration_days(d: &Value, field: &str, issues: &mut Issues) -> Option<i64> {
    let v = d.get("value").and_then(num)?;
    let unit = units::quantity_unit(d).unwrap_or("");
    let f = match unit {
        "d" | "day" | "days" => 1.0,
        "wk" | "week" | "weeks" => 7.0,
        "mo" | "month" | "months" => 30.0,
        "a" | "year" | "years" => 365.0,
        "h" | "hour" | "hours" => 1.0 / 24.0,
        _ => {
            issues.add(join(field, "unit"), format!("unknown unit {unit:?}"));
            return None;
        }
    };
    let days = (v * f).ceil();
    if !(0.0..=1.0e6).contains(&days) {
        issues.add(field, format!("implausible duration {v} {unit}"));
        return None;
    }
    Some(days as i64)
}

pub(crate) fn period(p: &Value, field: &str, issues: &mut Issues) -> Period {
    let start = dates::day(p, "start", &join(field, "start"), Pick::First, issues);
    let end = dates::day(p, "end", &join(field, "end"), Pick::Last, issues);
    if let (Some(a), Some(b)) = (start, end) {
        if b < a {
            issues.add(field, "period ends before it starts");
        }
    }
    Period { start, end }
}

fn route_of(cc: &Value) -> Option<Route> {
    for c in codings(cc) {
        let r = if c.system == SNOMED {
            terminology::route_snomed(c.code)
        } else if c.system.ends_with("v3-RouteOfAdministration") {
            terminology::route_v3(c.code)
        } else {
            None
        };
        if r.is_some() {
            return r;
        }
    }
    s(cc, "text").and_then(terminology::route_text).or_else(|| {
        codings(cc)
            .iter()
            .find_map(|c| c.display.and_then(terminology::route_text))
    })
}

fn resolve_route(route: Option<&Value>, field: &str, p: &Product, issues: &mut Issues) -> Route {
    if p.route == ProductRoute::Local {
        return Route::Local;
    }
    match route {
        Some(r) => route_of(r).unwrap_or_else(|| {
            issues.add(
                join(field, "route"),
                "route not recognised: counted as systemic",
            );
            Route::Unknown
        }),
        None if p.route == ProductRoute::Oral => Route::Oral,
        None => Route::Unknown,
    }
}

fn dosage(d: &Value, field: &str, p: &Product, issues: &mut Issues) -> Dosage {
    let dar = arr(d, "doseAndRate");
    let pick = dar
        .iter()
        .position(|x| {
            x.get("type")
                .is_some_and(|t| codings(t).iter().any(|c| c.code == "ordered"))
        })
        .unwrap_or(0);
    let mut dose_mg = None;
    if let Some(x) = dar.get(pick) {
        let base = format!("{field}.doseAndRate[{pick}]");
        if let Some(q) = x.get("doseQuantity") {
            dose_mg = dose_to_mg(q, &format!("{base}.doseQuantity"), p, issues);
        } else if let Some(r) = x.get("doseRange") {
            if let Some(h) = r.get("high") {
                dose_mg = dose_to_mg(h, &format!("{base}.doseRange.high"), p, issues);
            } else if let Some(l) = r.get("low") {
                issues.add(
                    format!("{base}.doseRange"),
                    "no high end: the low end is used",
                );
                dose_mg = dose_to_mg(l, &format!("{base}.doseRange.low"), p, issues);
            }
        }
    }
    let timing = d.get("timing");
    let per_day = timing.and_then(|t| per_day(t, &join(field, "timing"), issues));
    let as_needed = d
        .get("asNeededBoolean")
        .and_then(Value::as_bool)
        .unwrap_or(false)
        || d.get("asNeededCodeableConcept").is_some();
    let rep = timing.and_then(|t| t.get("repeat"));
    let bounds = rep
        .and_then(|r| r.get("boundsPeriod"))
        .map(|b| period(b, &join(field, "timing.repeat.boundsPeriod"), issues));
    let bounds_duration_days = rep
        .and_then(|r| r.get("boundsDuration"))
        .and_then(|b| duration_days(b, &join(field, "timing.repeat.boundsDuration"), issues));
    if rep.is_some_and(|r| r.get("boundsRange").is_some()) {
        issues.add(
            join(field, "timing.repeat.boundsRange"),
            "boundsRange is not read",
        );
    }
    Dosage {
        dose_mg,
        per_day,
        as_needed,
        bounds,
        bounds_duration_days,
        route: resolve_route(d.get("route"), field, p, issues),
        sequence: d.get("sequence").and_then(Value::as_i64),
    }
}

fn status(kind: MedicationSource, st: Option<&str>, issues: &mut Issues) -> MedicationStatus {
    use MedicationStatus::*;
    let Some(st) = st else {
        issues.add("status", "missing");
        return Unknown;
    };
    match st {
        "active" => Active,
        "completed" => Completed,
        "on-hold" => OnHold,
        "stopped" => Stopped,
        "cancelled" => Cancelled,
        "entered-in-error" => EnteredInError,
        "draft" => Draft,
        "intended" => Intended,
        "not-taken" => NotTaken,
        "in-progress" => InProgress,
        "not-done" => NotDone,
        "unknown" => Unknown,
        other => {
            issues.add("status", format!("unknown {kind:?} status {other:?}"));
            Unknown
        }
    }
}

/// Whether `medication[x]` names a product (a concept or a resolved Medication); if not, says
/// why in `issues` (the resource is then not understood).
fn resolved(med: &MedSource<'_>, issues: &mut Issues) -> bool {
    match med {
        MedSource::Missing => {
            issues.add(
                "medication[x]",
                "no medicationCodeableConcept or medicationReference",
            );
            false
        }
        MedSource::Unresolved(r) => {
            issues.add(
                "medicationReference",
                format!("Medication {r:?} not found in the input"),
            );
            false
        }
        MedSource::Concept(_) | MedSource::Resource(_) => true,
    }
}

pub(crate) struct MedOutcome {
    pub disposition: Disposition,
    pub record: Option<MedicationRecord>,
}

/// Maps one medication resource. `ty` is the resourceType.
pub(crate) fn map(
    res: &Value,
    ty: &str,
    reference: &str,
    med: MedSource<'_>,
    issues: &mut Issues,
) -> MedOutcome {
    let kind = match ty {
        "MedicationRequest" => MedicationSource::Request,
        "MedicationStatement" => MedicationSource::Statement,
        _ => MedicationSource::Administration,
    };
    let ignored = MedOutcome {
        disposition: Disposition::Ignored,
        record: None,
    };
    let not_understood = MedOutcome {
        disposition: Disposition::NotUnderstood,
        record: None,
    };
    if !resolved(&med, issues) {
        return not_understood;
    }
    let Some(p) = product(&med, issues) else {
        return ignored;
    };
    if kind == MedicationSource::Request {
        if let Some(intent) = s(res, "intent") {
            if !matches!(
                intent,
                "order" | "plan" | "original-order" | "filler-order" | "instance-order"
            ) {
                issues.add(
                    "intent",
                    format!("intent {intent:?} is not an order (§1.6): not used"),
                );
                return ignored;
            }
        }
    }
    let status = status(kind, s(res, "status"), issues);
    let mut authored = None;
    let mut effective = None;
    let mut validity = None;
    let mut expected_supply_days = None;
    let mut administered_mg = None;
    let mut route = Route::Unknown;
    let mut dosages = Vec::new();
    let mut planned_dates: Vec<NaiveDate> = Vec::new();
    let mut visible;
    match kind {
        MedicationSource::Request => {
            authored = dates::day(res, "authoredOn", "authoredOn", Pick::First, issues);
            for (i, d) in arr(res, "dosageInstruction").iter().enumerate() {
                let field = format!("dosageInstruction[{i}]");
                dosages.push(dosage(d, &field, &p, issues));
                if let Some(t) = d.get("timing") {
                    for (j, ev) in arr(t, "event").iter().enumerate() {
                        let f = format!("{field}.timing.event[{j}]");
                        let day = ev.as_str().and_then(|e| match dates::parse(e) {
                            Ok(dt) => dates::resolve(dt.date, &f, Pick::First, issues),
                            Err(e) => {
                                issues.add(&f, e);
                                None
                            }
                        });
                        if let Some(day) = day {
                            planned_dates.push(day);
                        }
                    }
                    let one_off = !arr(t, "event").is_empty()
                        || t.get("repeat")
                            .and_then(|r| r.get("count"))
                            .and_then(Value::as_i64)
                            == Some(1);
                    if one_off && arr(res, "dosageInstruction").len() == 1 {
                        administered_mg = dosages.last().and_then(|d| d.dose_mg);
                    }
                }
            }
            if let Some(dr) = res.get("dispenseRequest") {
                validity = dr
                    .get("validityPeriod")
                    .map(|v| period(v, "dispenseRequest.validityPeriod", issues));
                expected_supply_days = dr.get("expectedSupplyDuration").and_then(|d| {
                    duration_days(d, "dispenseRequest.expectedSupplyDuration", issues)
                });
            }
            visible = authored;
            if visible.is_none() {
                let fallback = dosages
                    .iter()
                    .filter_map(|d| d.bounds.and_then(|b| b.start))
                    .min()
                    .or(validity.and_then(|v| v.start));
                let why = if res.get("authoredOn").is_some() {
                    "not usable"
                } else {
                    "missing"
                };
                if fallback.is_some() {
                    issues.add(
                        "authoredOn",
                        format!("{why}: visibility taken from the start of the order"),
                    );
                } else {
                    issues.add("authoredOn", format!("{why}: no visibility date"));
                }
                visible = fallback;
            }
        }
        MedicationSource::Statement => {
            effective = effective_period(res, issues);
            for (i, d) in arr(res, "dosage").iter().enumerate() {
                dosages.push(dosage(d, &format!("dosage[{i}]"), &p, issues));
            }
            visible = dates::day(res, "dateAsserted", "dateAsserted", Pick::First, issues)
                .or(effective.and_then(|e| e.start));
        }
        MedicationSource::Administration => {
            effective = effective_period(res, issues);
            if let Some(d) = res.get("dosage") {
                if let Some(q) = d.get("dose") {
                    administered_mg = dose_to_mg(q, "dosage.dose", &p, issues);
                }
                route = resolve_route(d.get("route"), "dosage", &p, issues);
            } else {
                route = resolve_route(None, "dosage", &p, issues);
            }
            visible = effective.and_then(|e| e.end.or(e.start));
            if visible.is_none() {
                issues.add("effective[x]", "missing: no administration date");
            }
        }
    }
    if kind != MedicationSource::Administration {
        route = match dosages.first() {
            Some(first) if dosages.iter().all(|d| d.route == first.route) => first.route,
            Some(_) => Route::Unknown,
            None => resolve_route(None, "", &p, issues),
        };
    }
    MedOutcome {
        disposition: Disposition::Used,
        record: Some(MedicationRecord {
            source: SourceRef::new(reference),
            kind,
            status,
            ingredients: p.ingredients,
            display: p.display,
            visible,
            authored,
            effective,
            validity,
            expected_supply_days,
            administered_mg,
            route,
            dosages,
            planned_dates: {
                planned_dates.sort();
                planned_dates.dedup();
                planned_dates
            },
            signed_draft: false,
        }),
    }
}

fn effective_period(res: &Value, issues: &mut Issues) -> Option<Period> {
    if res.get("effectiveDateTime").is_some() {
        let dt = dates::read(res, "effectiveDateTime", "effectiveDateTime", issues)?;
        let start = dates::resolve(dt.date, "effectiveDateTime", Pick::First, issues);
        let end = dt.date.last();
        return Some(Period { start, end });
    }
    res.get("effectivePeriod")
        .map(|p| period(p, "effectivePeriod", issues))
}

pub(crate) struct DispenseOutcome {
    pub disposition: Disposition,
    pub record: Option<MedicationDispense>,
}

/// Maps a MedicationDispense of a §10.1 product (knowledge.md §13 KPI 9: a dose "dispensed").
/// Its date is `whenHandedOver`, else `whenPrepared` ([`MedicationDispense::date`]); a
/// dispense with neither stays in the record undated (the KPI answers UNKNOWN, never FALSE).
pub(crate) fn map_dispense(
    res: &Value,
    reference: &str,
    med: MedSource<'_>,
    issues: &mut Issues,
) -> DispenseOutcome {
    let outcome = |disposition| DispenseOutcome {
        disposition,
        record: None,
    };
    if !resolved(&med, issues) {
        return outcome(Disposition::NotUnderstood);
    }
    let Some(p) = product(&med, issues) else {
        return outcome(Disposition::Ignored);
    };
    use DispenseStatus::*;
    let status = match s(res, "status") {
        Some("preparation") => Preparation,
        Some("in-progress") => InProgress,
        Some("cancelled") => Cancelled,
        Some("on-hold") => OnHold,
        Some("completed") => Completed,
        Some("entered-in-error") => EnteredInError,
        Some("stopped") => Stopped,
        Some("declined") => Declined,
        Some("unknown") => Unknown,
        Some(other) => {
            issues.add(
                "status",
                format!("unknown MedicationDispense status {other:?}"),
            );
            Unknown
        }
        None => {
            issues.add("status", "missing");
            Unknown
        }
    };
    let when_handed_over = dates::day(res, "whenHandedOver", "whenHandedOver", Pick::First, issues);
    let when_prepared = dates::day(res, "whenPrepared", "whenPrepared", Pick::First, issues);
    let days_supply = res
        .get("daysSupply")
        .and_then(|d| duration_days(d, "daysSupply", issues));
    if status == Completed && when_handed_over.is_none() && when_prepared.is_none() {
        issues.add(
            "whenHandedOver",
            "missing (and no whenPrepared): no dispense date",
        );
    }
    DispenseOutcome {
        disposition: Disposition::Used,
        record: Some(MedicationDispense {
            source: SourceRef::new(reference),
            status,
            ingredients: p.ingredients,
            display: p.display,
            when_handed_over,
            when_prepared,
            days_supply,
        }),
    }
}
