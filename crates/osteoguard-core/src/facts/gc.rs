//! Glucocorticoid exposure — knowledge.md §2 (ACR-2022 scope, KANIS-2011 bands, STEROID-EQ table).
//!
//! Builds the daily prednisone-equivalent series `PEq(t)` from every systemic glucocorticoid
//! record and derives the §2.5 metrics and §2.6 `gc_qualifying`.
//!
//! How a record becomes exposure:
//! * status filter of §1.6 ([`counts_for_exposure`]); a MedicationRequest or MedicationStatement
//!   with status `unknown` is counted (conservative: the GIOP rules are reminders);
//! * active interval of each dosage line, §2.3 step 4 and §1.6 ([`active_interval`]): a
//!   stopped/completed order without an end runs `stopped_order_default_days` from its start (and
//!   a data-quality note says so), an active one without an end runs to `as_of`;
//! * dose × per-day × §2.2 factor; `asNeeded` lines and local routes are excluded; `Route::Unknown`
//!   counts as systemic; a line without a computable dose or timing makes the record an
//!   *unknown-dose* record (data-insufficient item 1, `gc_qualifying = UNKNOWN` when present);
//! * IM triamcinolone depot is spread over `depot_triamcinolone_spread_days` (§2.4), any other
//!   MedicationAdministration adds `dose × factor` on its date (§2.3 step 6);
//! * a MedicationStatement that duplicates an overlapping MedicationRequest of the same ingredient
//!   and the same daily dose counts once (§2.3 step 5, "keep the larger, not the sum").
//!
//! Days after `as_of` are never computed (§1.2); planned ends after `as_of` are kept only for
//! `planned_total_days`.

use chrono::NaiveDate;
use serde::Serialize;

use super::Input;
use crate::finding::{DataQualityIssue, Evidence, Fixed, Shortest, Ymd};
use crate::model::{
    add_days, days, ConditionKind, Dosage, Ingredient, MedicationRecord, MedicationSource,
    MedicationStatus, Route, SourceRef,
};
use crate::thresholds::Thresholds;
use crate::tri::Tri;

/// Prednisone-equivalence factor of §2.2 (`5 / equivalent mg`); `None` = excluded from PEq.
pub fn peq_factor(i: Ingredient) -> Option<f64> {
    use Ingredient::*;
    match i {
        Cortisone => Some(0.20),
        Hydrocortisone => Some(0.25),
        Prednisone | Prednisolone => Some(1.0),
        Methylprednisolone | Triamcinolone => Some(1.25),
        Dexamethasone => Some(20.0 / 3.0),
        Betamethasone => Some(25.0 / 3.0),
        Deflazacort => Some(5.0 / 6.0),
        // Mineralocorticoid (factor 0) and oral budesonide / local steroids are excluded (§2.1).
        Fludrocortisone | Budesonide | OtherLocalCorticosteroid => None,
        _ => None,
    }
}

/// Floating-point tolerance for threshold comparisons of summed doses (e.g. three hydrocortisone
/// lines summing to exactly 5.0). Not a clinical threshold.
const EPS: f64 = 1e-9;

/// `x ≥ threshold`, tolerant of floating-point summation error.
pub fn at_least(x: f64, threshold: f64) -> bool {
    x >= threshold - EPS
}

/// `x > threshold`, tolerant of floating-point summation error (§12.4: exactly 7.5 is not above).
pub fn above(x: f64, threshold: f64) -> bool {
    x > threshold + EPS
}

/// Guard against absurd historical dates (a start in year 1 would make a 740 000-day series):
/// the series never reaches further back than this. Not a clinical threshold.
const MAX_HISTORY_DAYS: i64 = 36_500;

/// The §2.5 metrics at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct GcExposure {
    /// A systemic GC record reaches within `gc_gap_bridge_days` of `as_of` (§2.6 "present").
    pub present: bool,
    /// `current_daily_peq`; `None` when a GC is present but its dose is not computable.
    pub current_daily_peq: Option<f64>,
    /// `current_daily_peq` from the records whose dose is known: a lower bound when
    /// `current_daily_peq` is `None`, equal to it otherwise.
    pub current_daily_peq_known: f64,
    pub continuous_days_ge_2_5: i64,
    /// Consecutive days ending at `as_of` with PEq ≥ `gc_young_continuing_mg` (gaps bridged), for
    /// the under-40 row B2 of §3.2.
    pub continuous_days_ge_7_5: i64,
    pub days_ge_30_last365: i64,
    pub cumulative_g_last365: f64,
    pub gc_start_date: Option<NaiveDate>,
    /// The active order has no end date (planned long-term, §2.6-2).
    pub open_ended: bool,
    /// Planned total duration of the current course in days, when an end is recorded.
    pub planned_total_days: Option<i64>,
    /// §2.6 `gc_qualifying`.
    pub qualifying: Tri,
    /// §2.5 `physiologic_replacement`.
    pub physiologic_replacement: bool,
    /// Oral budesonide present (excluded from PEq, flagged info, §2.1).
    pub oral_budesonide: bool,
    /// Systemic GC records active within the last 365 days whose dose is not computable
    /// (data-insufficient item 1).
    pub unknown_dose_records: Vec<SourceRef>,
    /// Whether any systemic GC (any dose) was active in the last 365 days.
    pub any_in_last_365: bool,
    /// Ingredients of the systemic GC records present at `as_of` (sorted, unique).
    pub current_ingredients: Vec<Ingredient>,
    /// Records and values used.
    pub evidence: Vec<Evidence>,
    /// Change points of the daily PEq series over the record's span: `(date, mg PEq/day)` where
    /// the value holds from that date until the next point (for the timeline chart).
    pub series: Vec<(NaiveDate, f64)>,
    /// Problems met while interpreting GC records (record, field, problem).
    pub notes: Vec<String>,
    /// The same problems as data-quality issues (a rule copies them into the outcome).
    pub data_quality: Vec<DataQualityIssue>,
}

// ---------------------------------------------------------------------------------------------
// Medication intervals (§1.6, §2.3 step 4) — shared with facts::therapy
// ---------------------------------------------------------------------------------------------

/// §1.6 status filter for exposure.
pub fn counts_for_exposure(m: &MedicationRecord) -> bool {
    use MedicationSource::*;
    use MedicationStatus::*;
    match m.kind {
        Request => matches!(m.status, Active | Completed | OnHold | Stopped | Unknown),
        Statement => matches!(
            m.status,
            Active | Completed | Intended | Stopped | OnHold | Unknown
        ),
        Administration => m.status == Completed,
    }
}

/// The active interval of a medication record or one of its dosage lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveInterval {
    pub start: NaiveDate,
    /// Last day of exposure (inclusive) as recorded or planned — may lie after `as_of`;
    /// `None` = open-ended (runs to `as_of`).
    pub end: Option<NaiveDate>,
    /// The end was not recorded; the §1.6 default span of a stopped/completed order was used.
    pub default_end: bool,
}

impl ActiveInterval {
    /// Last exposed day not after `as_of`.
    pub fn last_day(&self, as_of: NaiveDate) -> NaiveDate {
        self.end.map_or(as_of, |e| e.min(as_of))
    }
    /// Exposure on day `d` (`d` is expected to be ≤ `as_of`).
    pub fn covers(&self, d: NaiveDate) -> bool {
        self.start <= d && self.end.is_none_or(|e| d <= e)
    }
    /// Started on/before `as_of` and its last day is at most `within` days before `as_of`.
    pub fn reaches_within(&self, as_of: NaiveDate, within: i64) -> bool {
        self.start <= as_of && days(self.last_day(as_of), as_of) <= within
    }
}

/// §2.3 step 4 / §1.6: the active interval of `line` of `m` (or of the record when `line` is
/// `None`). `None` when the record has no usable date at all.
pub fn active_interval(
    m: &MedicationRecord,
    line: Option<&Dosage>,
    t: &Thresholds,
) -> Option<ActiveInterval> {
    use MedicationSource::*;
    use MedicationStatus::*;
    let bounds = line.and_then(|l| l.bounds);
    let base_start = match m.kind {
        Request => m.authored,
        Statement | Administration => m.effective.and_then(|p| p.start.or(p.end)),
    };
    let start = bounds
        .and_then(|b| b.start)
        .or(base_start)
        .or(m.validity.and_then(|v| v.start))
        .or(m.visible)?;
    let span = |n: i64| add_days(start, n.max(1) - 1);
    // A statement "still taking" recorded with a single effectiveDateTime is open-ended.
    let statement_end = m.effective.and_then(|p| match (p.start, p.end) {
        (Some(s), Some(e))
            if s == e && matches!(m.status, Active | Intended | OnHold | Unknown) =>
        {
            None
        }
        (_, e) => e,
    });
    let explicit_end = bounds
        .and_then(|b| b.end)
        .or(line.and_then(|l| l.bounds_duration_days).map(span))
        .or(match m.kind {
            Request => m.validity.and_then(|v| v.end),
            Statement => statement_end,
            Administration => m.effective.and_then(|p| p.end),
        });
    let (end, default_end) = match explicit_end {
        Some(e) => (Some(e.max(start)), false),
        None => match (m.kind, m.status) {
            (Request, Stopped | Completed) => match m.expected_supply_days {
                Some(n) => (Some(span(n)), false),
                None => (Some(span(t.stopped_order_default_days)), true),
            },
            (Statement, Stopped | Completed) => {
                (Some(m.visible.unwrap_or(start).max(start)), false)
            }
            (Administration, _) => (Some(start), false),
            _ => (None, false),
        },
    };
    Some(ActiveInterval {
        start,
        end,
        default_end,
    })
}

fn route_label(r: Route) -> &'static str {
    match r {
        Route::Oral => "oral",
        Route::Intravenous => "IV",
        Route::Intramuscular => "IM",
        Route::Subcutaneous => "SC",
        Route::Local => "local",
        Route::Unknown => "route not recorded",
    }
}

fn fmt_end(end: Option<NaiveDate>) -> End {
    End(end)
}

/// The end of a dosing interval in a text: its date, or "open-ended" (written where it is used).
struct End(Option<NaiveDate>);

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(e) => std::fmt::Display::fmt(&Ymd(e), f),
            None => f.write_str("open-ended"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The series
// ---------------------------------------------------------------------------------------------

/// One dose-known contribution to the daily series.
#[derive(Debug, Clone)]
struct Piece {
    source: SourceRef,
    kind: MedicationSource,
    ingredient: Ingredient,
    daily_peq: f64,
    start: NaiveDate,
    /// Inclusive planned end (may be after `as_of`); `None` = open-ended.
    end: Option<NaiveDate>,
}

impl Piece {
    fn interval(&self) -> ActiveInterval {
        ActiveInterval {
            start: self.start,
            end: self.end,
            default_end: false,
        }
    }
}

/// A systemic GC record (or line) whose dose cannot be computed.
#[derive(Debug, Clone)]
struct UnknownDose {
    source: SourceRef,
    ingredient: Ingredient,
    interval: ActiveInterval,
}

/// The GC ingredient of a record that enters PEq (the highest factor when a product has
/// several, conservative), or `None`.
fn counted_ingredient(m: &MedicationRecord) -> Option<(Ingredient, f64)> {
    m.ingredients
        .iter()
        .filter_map(|&i| peq_factor(i).map(|f| (i, f)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
}

struct Collected {
    pieces: Vec<Piece>,
    unknown: Vec<UnknownDose>,
    evidence: Vec<Evidence>,
    notes: Vec<String>,
    data_quality: Vec<DataQualityIssue>,
    oral_budesonide_intervals: Vec<ActiveInterval>,
}

fn collect(input: &Input<'_>) -> Collected {
    let t = input.t;
    let mut c = Collected {
        pieces: Vec::new(),
        unknown: Vec::new(),
        evidence: Vec::new(),
        notes: Vec::new(),
        data_quality: Vec::new(),
        oral_budesonide_intervals: Vec::new(),
    };
    for m in &input.record.medications {
        if !m.ingredients.iter().any(|i| i.is_glucocorticoid()) || !counts_for_exposure(m) {
            continue;
        }
        let Some((ingredient, factor)) = counted_ingredient(m) else {
            // Oral budesonide: recorded, excluded from PEq, flagged (§2.1).
            if m.has(Ingredient::Budesonide) {
                let oral = if m.dosages.is_empty() {
                    m.route == Route::Oral
                } else {
                    m.dosages.iter().any(|l| {
                        l.route == Route::Oral
                            || (l.route == Route::Unknown && m.route == Route::Oral)
                    })
                };
                if oral {
                    if let Some(iv) = active_interval(m, None, t) {
                        c.oral_budesonide_intervals.push(iv);
                    }
                }
            }
            continue;
        };
        let name = ingredient.name();
        if m.kind == MedicationSource::Administration {
            let route = m.route;
            if !route.is_systemic() {
                continue;
            }
            let Some(iv) = active_interval(m, None, t) else {
                c.notes.push(text!(
                    "{}: glucocorticoid administration without a date",
                    m.source
                ));
                c.data_quality.push(DataQualityIssue::new(
                    m.source.as_str(),
                    "MedicationAdministration.effective[x]",
                    "glucocorticoid administration without a usable date: not counted",
                ));
                continue;
            };
            let date = iv.start;
            let administered = match m.administered_mg {
                Some(mg) if implausible(&mut c, m, ingredient, mg, t) => None,
                x => x,
            };
            match administered {
                None => {
                    c.unknown.push(UnknownDose {
                        source: m.source.clone(),
                        ingredient,
                        interval: ActiveInterval {
                            start: date,
                            end: Some(date),
                            default_end: false,
                        },
                    });
                    c.evidence.push(Evidence::new(
                        &m.source,
                        Some(date),
                        text!(
                            "{name} administration ({}), dose not recorded",
                            route_label(route)
                        ),
                    ));
                }
                Some(mg) => {
                    let depot =
                        ingredient == Ingredient::Triamcinolone && route == Route::Intramuscular;
                    let peq = mg * factor;
                    if depot {
                        let spread = t.depot_triamcinolone_spread_days.max(1);
                        c.pieces.push(Piece {
                            source: m.source.clone(),
                            kind: m.kind,
                            ingredient,
                            daily_peq: peq / spread as f64,
                            start: date,
                            end: Some(add_days(date, spread - 1)),
                        });
                        c.evidence.push(Evidence::new(
                            &m.source,
                            Some(date),
                            text!(
                                "{name} {mg} mg IM depot = {} mg PEq, spread over {spread} days ({} mg PEq/day)",
                                Fixed(peq, 1),
                                Fixed(peq / spread as f64, 2)
                            ),
                        ));
                    } else {
                        c.pieces.push(Piece {
                            source: m.source.clone(),
                            kind: m.kind,
                            ingredient,
                            daily_peq: peq,
                            start: date,
                            end: Some(date),
                        });
                        c.evidence.push(Evidence::new(
                            &m.source,
                            Some(date),
                            text!(
                                "{name} {mg} mg {} on {} = {} mg PEq",
                                route_label(route),
                                Ymd(date),
                                Fixed(peq, 1)
                            ),
                        ));
                    }
                }
            }
            continue;
        }

        // MedicationRequest / MedicationStatement.
        if m.dosages.is_empty() {
            if !m.route.is_systemic() {
                continue;
            }
            match active_interval(m, None, t) {
                Some(iv) => {
                    note_default_end(&mut c, m, &iv, t);
                    c.unknown.push(UnknownDose {
                        source: m.source.clone(),
                        ingredient,
                        interval: iv,
                    });
                    c.evidence.push(Evidence::new(
                        &m.source,
                        Some(iv.start),
                        text!(
                            "{name} {} → {}, no dosage: dose not computable",
                            iv.start,
                            fmt_end(iv.end)
                        ),
                    ));
                }
                None => undated(&mut c, m),
            }
            continue;
        }
        let mut systemic_lines = 0usize;
        let mut regular_lines = 0usize;
        let mut record_unknown: Option<ActiveInterval> = None;
        let mut record_interval: Option<ActiveInterval> = None;
        for line in &m.dosages {
            let route = if line.route == Route::Unknown {
                m.route
            } else {
                line.route
            };
            if !route.is_systemic() {
                continue;
            }
            systemic_lines += 1;
            let Some(iv) = active_interval(m, Some(line), t) else {
                continue;
            };
            record_interval = Some(merge(record_interval, iv));
            if line.as_needed {
                // Stress-dose PRN is not chronic exposure (§2.3 step 2).
                continue;
            }
            regular_lines += 1;
            note_default_end(&mut c, m, &iv, t);
            let depot = ingredient == Ingredient::Triamcinolone && route == Route::Intramuscular;
            // A dose above its plausibility bound is UNKNOWN (issue 16), never exposure.
            let dose_mg = match (line.dose_mg, line.per_day) {
                (Some(mg), Some(per_day))
                    if implausible(&mut c, m, ingredient, mg * per_day, t) =>
                {
                    None
                }
                (Some(mg), None) if implausible(&mut c, m, ingredient, mg, t) => None,
                (dose, _) => dose,
            };
            match (dose_mg, line.per_day) {
                (Some(mg), Some(per_day)) => {
                    let daily_peq = mg * per_day * factor;
                    c.pieces.push(Piece {
                        source: m.source.clone(),
                        kind: m.kind,
                        ingredient,
                        daily_peq,
                        start: iv.start,
                        end: iv.end,
                    });
                    c.evidence.push(Evidence::new(
                        &m.source,
                        Some(iv.start),
                        text!(
                            "{name} {} mg × {}/day ({}) = {} mg PEq/day, {} → {}",
                            Shortest(mg),
                            Shortest(per_day),
                            route_label(route),
                            Fixed(daily_peq, 2),
                            Ymd(iv.start),
                            fmt_end(iv.end)
                        ),
                    ));
                }
                (Some(mg), None) if depot => {
                    let spread = t.depot_triamcinolone_spread_days.max(1);
                    let peq = mg * factor;
                    c.pieces.push(Piece {
                        source: m.source.clone(),
                        kind: m.kind,
                        ingredient,
                        daily_peq: peq / spread as f64,
                        start: iv.start,
                        end: Some(add_days(iv.start, spread - 1)),
                    });
                    c.evidence.push(Evidence::new(
                        &m.source,
                        Some(iv.start),
                        text!(
                            "{name} {mg} mg IM depot = {} mg PEq, spread over {spread} days from {}",
                            Fixed(peq, 1),
                            Ymd(iv.start)
                        ),
                    ));
                }
                (Some(mg), None) if m.administered_mg.is_some() => {
                    // A one-off order (timing.event or count = 1, the reader sets
                    // `administered_mg`): one dose on its planned date.
                    let day = m.planned_date().unwrap_or(iv.start);
                    let peq = mg * factor;
                    c.pieces.push(Piece {
                        source: m.source.clone(),
                        kind: m.kind,
                        ingredient,
                        daily_peq: peq,
                        start: day,
                        end: Some(day),
                    });
                    c.evidence.push(Evidence::new(
                        &m.source,
                        Some(day),
                        text!(
                            "{name} {mg} mg single dose ({}) on {} = {} mg PEq",
                            route_label(route),
                            Ymd(day),
                            Fixed(peq, 1)
                        ),
                    ));
                }
                (dose, per_day) => {
                    record_unknown = Some(merge(record_unknown, iv));
                    let why = match (dose, per_day) {
                        (None, None) => "dose and timing not computable",
                        (None, _) => "dose not computable",
                        _ => "no timing (frequency unknown)",
                    };
                    c.evidence.push(Evidence::new(
                        &m.source,
                        Some(iv.start),
                        text!("{name} {} → {}: {why}", Ymd(iv.start), fmt_end(iv.end)),
                    ));
                }
            }
        }
        if systemic_lines == 0 {
            continue;
        }
        if regular_lines == 0 {
            // Only as-needed lines: exposure with an unknown chronic dose (§2.3 step 2).
            match record_interval {
                Some(iv) => {
                    c.unknown.push(UnknownDose {
                        source: m.source.clone(),
                        ingredient,
                        interval: iv,
                    });
                    c.evidence.push(Evidence::new(
                        &m.source,
                        Some(iv.start),
                        text!("{name} as needed only: chronic dose unknown"),
                    ));
                }
                None => undated(&mut c, m),
            }
        } else if let Some(iv) = record_unknown {
            c.unknown.push(UnknownDose {
                source: m.source.clone(),
                ingredient,
                interval: iv,
            });
        } else if record_interval.is_none() {
            undated(&mut c, m);
        }
    }
    c
}

/// The plausibility bound of a daily dose of `i` (mg of the ingredient per day) from the
/// threshold table, with its key; `None` = no bound (no verified label maximum).
fn plausible_max_daily_mg(i: Ingredient, t: &Thresholds) -> Option<(f64, &'static str)> {
    match i {
        Ingredient::Hydrocortisone => Some((
            t.gc_max_daily_mg_hydrocortisone,
            "glucocorticoid.plausible_max_daily_mg.hydrocortisone",
        )),
        Ingredient::Methylprednisolone => Some((
            t.gc_max_daily_mg_methylprednisolone,
            "glucocorticoid.plausible_max_daily_mg.methylprednisolone",
        )),
        Ingredient::Prednisone => Some((
            t.gc_max_daily_mg_prednisone,
            "glucocorticoid.plausible_max_daily_mg.prednisone",
        )),
        Ingredient::Prednisolone => Some((
            t.gc_max_daily_mg_prednisolone,
            "glucocorticoid.plausible_max_daily_mg.prednisolone",
        )),
        Ingredient::Cortisone => Some((
            t.gc_max_daily_mg_cortisone,
            "glucocorticoid.plausible_max_daily_mg.cortisone",
        )),
        Ingredient::Dexamethasone => Some((
            t.gc_max_daily_mg_dexamethasone,
            "glucocorticoid.plausible_max_daily_mg.dexamethasone",
        )),
        Ingredient::Betamethasone => Some((
            t.gc_max_daily_mg_betamethasone,
            "glucocorticoid.plausible_max_daily_mg.betamethasone",
        )),
        Ingredient::Triamcinolone => Some((
            t.gc_max_daily_mg_triamcinolone,
            "glucocorticoid.plausible_max_daily_mg.triamcinolone",
        )),
        Ingredient::Deflazacort => Some((
            t.gc_max_daily_mg_deflazacort,
            "glucocorticoid.plausible_max_daily_mg.deflazacort",
        )),
        // Excluded from PEq (budesonide, fludrocortisone, local steroids): nothing to bound.
        _ => None,
    }
}

/// Is `daily_mg` of `ingredient` above its plausibility bound? Then a data-quality issue names
/// the record and the field (once per record), and the caller treats the dose as unknown.
fn implausible(
    c: &mut Collected,
    m: &MedicationRecord,
    ingredient: Ingredient,
    daily_mg: f64,
    t: &Thresholds,
) -> bool {
    let Some((max, key)) = plausible_max_daily_mg(ingredient, t) else {
        return false;
    };
    if !above(daily_mg, max) {
        return false;
    }
    let field = match m.kind {
        MedicationSource::Request => "MedicationRequest.dosageInstruction.doseAndRate.dose[x]",
        MedicationSource::Statement => "MedicationStatement.dosage.doseAndRate.dose[x]",
        MedicationSource::Administration => "MedicationAdministration.dosage.dose",
    };
    let problem = text!(
        "{} {daily_mg} mg/day is above the plausible maximum of {max} mg/day ({key}; a unit \
         error?): dose treated as unknown",
        ingredient.name()
    );
    c.notes.push(text!("{}: {problem}", m.source));
    let dq = DataQualityIssue::new(m.source.as_str(), field, problem);
    if !c.data_quality.contains(&dq) {
        c.data_quality.push(dq);
    }
    true
}

fn merge(a: Option<ActiveInterval>, b: ActiveInterval) -> ActiveInterval {
    match a {
        None => b,
        Some(a) => ActiveInterval {
            start: a.start.min(b.start),
            end: match (a.end, b.end) {
                (Some(x), Some(y)) => Some(x.max(y)),
                _ => None,
            },
            default_end: a.default_end || b.default_end,
        },
    }
}

fn undated(c: &mut Collected, m: &MedicationRecord) {
    c.notes.push(text!(
        "{}: glucocorticoid record without any usable date: not counted",
        m.source
    ));
    c.data_quality.push(DataQualityIssue::new(
        m.source.as_str(),
        "authoredOn / effective[x]",
        "glucocorticoid record without any usable date: not counted",
    ));
}

fn note_default_end(c: &mut Collected, m: &MedicationRecord, iv: &ActiveInterval, t: &Thresholds) {
    if !iv.default_end {
        return;
    }
    let problem = text!(
        "{} order without a recorded end: counted for {} days from its start {} (knowledge.md §1.6)",
        match m.status {
            MedicationStatus::Completed => "completed",
            _ => "stopped",
        },
        t.stopped_order_default_days,
        iv.start
    );
    c.notes.push(text!("{}: {problem}", m.source));
    let dq = DataQualityIssue::new(
        m.source.as_str(),
        "MedicationRequest.dosageInstruction.timing.repeat.boundsPeriod.end",
        problem,
    );
    if !c.data_quality.contains(&dq) {
        c.data_quality.push(dq);
    }
}

/// The daily PEq series of `n` days as runs of equal days: `runs[k] = (first day, value)`, each
/// run lasting until the next run's first day (the last one until day `n − 1`). Why: the series
/// spans the whole record (years of days for a long course) but changes only where a record
/// starts or ends; stepping it day by day (fill, window counts, continuous runs, change points)
/// was a third of a seed assessment. Every value is the same sum, in the same order, as the
/// day-by-day series gave, so every fact is bit-identical.
struct Series {
    runs: Vec<(usize, f64)>,
    n: usize,
}

/// One dose-known piece as day indices relative to the series' first day: it adds `daily_peq`
/// on days `lo..=hi`, except on the days of `twins` (a request this statement duplicates: those
/// days count once, from the request).
struct Span {
    lo: i64,
    hi: i64,
    daily_peq: f64,
    twins: Vec<(i64, i64)>,
}

impl Series {
    /// The series of `n` days that adding each span day by day, in order, would give.
    fn from_spans(spans: &[Span], n: usize) -> Series {
        // Which spans count is constant between two consecutive bounds: one value per run,
        // summed over the spans in order as the day-by-day series did.
        let mut bounds: Vec<i64> = vec![0];
        for sp in spans {
            bounds.extend([sp.lo, sp.hi + 1]);
            bounds.extend(sp.twins.iter().flat_map(|&(a, b)| [a, b + 1]));
        }
        bounds.retain(|&b| (0..n as i64).contains(&b));
        bounds.sort_unstable();
        bounds.dedup();
        let runs = bounds
            .iter()
            .map(|&i| {
                let mut v = 0.0;
                for sp in spans {
                    if sp.lo <= i && i <= sp.hi && !sp.twins.iter().any(|&(a, b)| a <= i && i <= b)
                    {
                        v += sp.daily_peq;
                    }
                }
                (i as usize, v)
            })
            .collect();
        Series { runs, n }
    }
    /// One past the last day of run `k`.
    fn end(&self, k: usize) -> usize {
        self.runs.get(k + 1).map_or(self.n, |r| r.0)
    }
    /// The value on day `i` (`i < n`).
    fn at(&self, i: usize) -> f64 {
        let k = self.runs.partition_point(|r| r.0 <= i);
        self.runs.get(k.wrapping_sub(1)).map_or(0.0, |r| r.1)
    }
    /// `(first day, one past the last day, value)` of each run, clipped to days `from..n`.
    fn runs_from(&self, from: usize) -> impl Iterator<Item = (usize, usize, f64)> + '_ {
        (0..self.runs.len())
            .map(move |k| (self.runs[k].0.max(from), self.end(k), self.runs[k].1))
            .filter(|(a, b, _)| a < b)
    }
    /// The value of every day from `from` to `n − 1`, in day order.
    fn days_from(&self, from: usize) -> impl Iterator<Item = f64> + '_ {
        self.runs_from(from)
            .flat_map(|(a, b, v)| std::iter::repeat_n(v, b - a))
    }
}

/// The run of days with PEq ≥ `threshold` ending at `as_of` (the last such day within `bridge`
/// days of `as_of`, earlier days joined across gaps of at most `bridge` days). Returns the index
/// of its first day.
fn run_start(series: &Series, threshold: f64, bridge: i64) -> Option<usize> {
    let n = series.n;
    let qualifies = |k: usize| at_least(series.runs[k].1, threshold);
    // The run holding the last qualifying day.
    let mut k = (0..series.runs.len()).rev().find(|&k| qualifies(k))?;
    let last = series.end(k) - 1;
    if (n - 1 - last) as i64 > bridge {
        return None;
    }
    let bridge = bridge.max(0) as usize;
    loop {
        // Back over the qualifying days just before.
        while k > 0 && qualifies(k - 1) {
            k -= 1;
        }
        let start = series.runs[k].0;
        // The closest earlier qualifying day (the last day of the closest earlier qualifying
        // run) joins the run when the gap is at most `bridge` days.
        match (0..k).rev().find(|&m| qualifies(m)) {
            Some(m) if start - (series.end(m) - 1) <= bridge + 1 => k = m,
            _ => return Some(start),
        }
    }
}

pub fn compute(input: &Input<'_>) -> GcExposure {
    let t = input.t;
    let as_of = input.as_of;
    let bridge = t.gc_gap_bridge_days;
    let c = collect(input);
    let mut g = GcExposure {
        current_daily_peq: Some(0.0),
        qualifying: Tri::False,
        notes: c.notes,
        data_quality: c.data_quality,
        ..GcExposure::default()
    };
    g.oral_budesonide = c
        .oral_budesonide_intervals
        .iter()
        .any(|iv| iv.reaches_within(as_of, bridge));

    // Window of the series: earliest record start .. as_of.
    let earliest = c
        .pieces
        .iter()
        .map(|p| p.start)
        .chain(c.unknown.iter().map(|u| u.interval.start))
        .filter(|d| *d <= as_of)
        .min();
    let Some(earliest) = earliest else {
        g.evidence = c.evidence;
        return g;
    };
    let ws = earliest.max(add_days(as_of, -MAX_HISTORY_DAYS));
    let n = (days(ws, as_of) + 1) as usize;

    // Statements that duplicate an overlapping request of the same ingredient and daily dose.
    let requests: Vec<&Piece> = c
        .pieces
        .iter()
        .filter(|p| p.kind == MedicationSource::Request)
        .collect();
    let mut spans: Vec<Span> = Vec::with_capacity(c.pieces.len());
    for p in &c.pieces {
        let from = p.start.max(ws);
        let to = p.end.map_or(as_of, |e| e.min(as_of));
        if from > to {
            continue;
        }
        let twins: Vec<(i64, i64)> = if p.kind == MedicationSource::Statement {
            requests
                .iter()
                .filter(|r| {
                    r.ingredient == p.ingredient && (r.daily_peq - p.daily_peq).abs() <= EPS
                })
                .map(|r| {
                    let iv = r.interval();
                    (days(ws, iv.start), days(ws, iv.last_day(as_of)))
                })
                .collect()
        } else {
            Vec::new()
        };
        let (lo, hi) = (days(ws, from), days(ws, to));
        spans.push(Span {
            lo,
            hi,
            daily_peq: p.daily_peq,
            twins,
        });
    }
    let series = Series::from_spans(&spans, n);

    // current_daily_peq with missed-day tolerance (§2.5).
    let today = series.at(n - 1);
    let current_known = if today > 0.0 {
        today
    } else {
        let prior: Vec<f64> = (1..=bridge.max(0) as usize)
            .filter(|&k| k < n)
            .map(|k| series.at(n - 1 - k))
            .collect();
        if prior.iter().any(|v| *v > 0.0) && bridge > 0 {
            prior.iter().sum::<f64>() / bridge as f64
        } else {
            0.0
        }
    };
    g.current_daily_peq_known = current_known;

    // Presence (§2.6 v0.10) and the 365-day window.
    let window = t.gc_exposure_window_days;
    let lookback = t.gc_unknown_dose_lookback_days;
    let present_pieces: Vec<&Piece> = c
        .pieces
        .iter()
        .filter(|p| p.interval().reaches_within(as_of, bridge))
        .collect();
    let present_unknown: Vec<&UnknownDose> = c
        .unknown
        .iter()
        .filter(|u| u.interval.reaches_within(as_of, bridge))
        .collect();
    g.present = !present_pieces.is_empty() || !present_unknown.is_empty();
    let within =
        |iv: &ActiveInterval, d: i64| iv.start <= as_of && days(iv.last_day(as_of), as_of) < d;
    g.any_in_last_365 = c.pieces.iter().any(|p| within(&p.interval(), window))
        || c.unknown.iter().any(|u| within(&u.interval, window));
    let mut unknown_refs: Vec<SourceRef> = c
        .unknown
        .iter()
        .filter(|u| within(&u.interval, lookback))
        .map(|u| u.source.clone())
        .collect();
    unknown_refs.sort();
    unknown_refs.dedup();
    g.unknown_dose_records = unknown_refs;
    let mut ingredients: Vec<Ingredient> = present_pieces
        .iter()
        .map(|p| p.ingredient)
        .chain(present_unknown.iter().map(|u| u.ingredient))
        .collect();
    ingredients.sort();
    ingredients.dedup();
    g.current_ingredients = ingredients;
    g.current_daily_peq = if present_unknown.is_empty() {
        Some(current_known)
    } else {
        None
    };

    // Window metrics over (as_of − 365, as_of].
    let w = window.max(0) as usize;
    let recent = n.saturating_sub(w);
    g.days_ge_30_last365 = series
        .runs_from(recent)
        .filter(|(_, _, v)| at_least(*v, t.gc_very_high_daily_mg))
        .map(|(a, b, _)| (b - a) as i64)
        .sum();
    g.cumulative_g_last365 = series.days_from(recent).sum::<f64>() / 1000.0;

    // Continuous runs.
    let run = run_start(&series, t.gc_scope_min_peq_mg, bridge);
    g.continuous_days_ge_2_5 = run.map_or(0, |s| (n - s) as i64);
    let run_start_date = run.map(|s| add_days(ws, s as i64));
    g.continuous_days_ge_7_5 =
        run_start(&series, t.gc_young_continuing_mg, bridge).map_or(0, |s| (n - s) as i64);

    // Open-ended / planned duration of the order(s) giving today's dose.
    let covering: Vec<&&Piece> = present_pieces
        .iter()
        .filter(|p| p.interval().covers(as_of))
        .collect();
    g.open_ended = covering.iter().any(|p| p.end.is_none());
    if !g.open_ended {
        if let (Some(start), Some(end)) =
            (run_start_date, covering.iter().filter_map(|p| p.end).max())
        {
            g.planned_total_days = Some(days(start, end) + 1);
        }
    }

    // §2.6 gc_qualifying.
    let long_enough = g.continuous_days_ge_2_5 > t.gc_scope_min_days
        || g.open_ended
        || g.planned_total_days
            .is_some_and(|d| d > t.gc_scope_min_days);
    let known_qualifies = at_least(current_known, t.gc_scope_min_peq_mg) && long_enough;
    g.qualifying = if known_qualifies {
        Tri::True
    } else if !present_unknown.is_empty() {
        Tri::Unknown
    } else {
        Tri::False
    };

    // gc_start_date: current run, or (dose unknown) the start of the current course.
    g.gc_start_date = if g.current_daily_peq.is_none() && !known_qualifies {
        let mut intervals: Vec<ActiveInterval> = c
            .pieces
            .iter()
            .map(|p| p.interval())
            .chain(c.unknown.iter().map(|u| u.interval))
            .filter(|iv| iv.start <= as_of)
            .collect();
        intervals.sort_by_key(|iv| std::cmp::Reverse(iv.last_day(as_of)));
        let mut course_start: Option<NaiveDate> = None;
        for iv in &intervals {
            let joins = match course_start {
                None => iv.reaches_within(as_of, bridge),
                Some(s) => days(iv.last_day(as_of), s) <= bridge + 1,
            };
            if joins {
                course_start = Some(course_start.map_or(iv.start, |s| s.min(iv.start)));
            }
        }
        match (course_start, run_start_date) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    } else {
        run_start_date
    };

    // §2.5 physiologic_replacement.
    let adrenal = input.record.conditions.iter().any(|cond| {
        cond.is_valid()
            && matches!(
                cond.kind,
                ConditionKind::AdrenalInsufficiency | ConditionKind::Hypopituitarism
            )
    });
    let replacement_agents = !g.current_ingredients.is_empty()
        && g.current_ingredients.iter().all(|i| {
            matches!(
                i,
                Ingredient::Hydrocortisone | Ingredient::Cortisone | Ingredient::Prednisolone
            )
        });
    g.physiologic_replacement = adrenal
        && replacement_agents
        && g.current_daily_peq
            .is_some_and(|v| v > 0.0 && !above(v, t.gc_physiologic_max_peq_mg));

    // Evidence: records active within the window (or present).
    let window_start = add_days(as_of, -(window - 1));
    g.evidence = c
        .evidence
        .into_iter()
        .filter(|e| {
            let src = &e.reference;
            c.pieces
                .iter()
                .filter(|p| p.source == *src)
                .any(|p| p.end.is_none_or(|end| end >= window_start))
                || c.unknown
                    .iter()
                    .filter(|u| u.source == *src)
                    .any(|u| u.interval.end.is_none_or(|end| end >= window_start))
        })
        .collect();

    // Change points for the chart (within a run every day has the run's value).
    let mut last: Option<f64> = None;
    for &(i, v) in &series.runs {
        if last.is_none_or(|l| (l - v).abs() > EPS) {
            g.series.push((add_days(ws, i as i64), v));
            last = Some(v);
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{MedicationStatus::*, PatientRecord, Period, Sex};
    use crate::testkit::{d, RecordBuilder};

    fn gc_at(record: &PatientRecord, as_of: &str) -> GcExposure {
        crate::engine::evaluate(record, d(as_of), &Config::default())
            .facts
            .gc
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    /// Three dosage lines of one request (§2.3 mini-example: hydrocortisone 10 + 5 + 5 mg).
    fn hydrocortisone_three_lines(start: &str) -> PatientRecord {
        let mut r = RecordBuilder::new("1950-03-15", Sex::Female)
            .daily_order(
                Ingredient::Hydrocortisone,
                Active,
                start,
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .condition(
                ConditionKind::AdrenalInsufficiency,
                Some((start, start)),
                Some(start),
            )
            .build();
        let line = r.medications[0].dosages[0].clone();
        for mg in [5.0, 5.0] {
            let mut l = line.clone();
            l.dose_mg = Some(mg);
            r.medications[0].dosages.push(l);
        }
        r
    }

    /// Issue 16: hydrocortisone entered in grams (20 g/day read as 20 000 mg) is above its
    /// plausibility bound: the dose is UNKNOWN (data-insufficient, qualifying unknown), not
    /// 5 000 mg PEq/day, and a data-quality issue names the record and field. A site that raises
    /// the bound counts it again.
    #[test]
    fn implausible_hydrocortisone_dose_is_unknown() {
        let mut r = hydrocortisone_three_lines("2015-01-01");
        r.medications[0].dosages.truncate(1);
        r.medications[0].dosages[0].dose_mg = Some(20_000.0);
        let g = gc_at(&r, "2022-12-01");
        assert_eq!(g.current_daily_peq, None, "{g:?}");
        assert_eq!(g.qualifying, Tri::Unknown);
        assert_eq!(
            g.unknown_dose_records,
            vec![r.medications[0].source.clone()]
        );
        assert!(g.series.iter().all(|(_, v)| *v == 0.0), "{:?}", g.series);
        let dq = &g.data_quality;
        assert!(
            dq.iter()
                .any(|i| i.reference == r.medications[0].source.as_str()
                    && i.field.contains("dose")
                    && i.problem.contains("plausible maximum")),
            "{dq:?}"
        );
        // The bound is a threshold: a site may raise it (then the dose counts as recorded).
        let bound = crate::thresholds::defaults::gc_max_daily_mg_hydrocortisone;
        let mut config = Config::default();
        // The highest the table allows (its range) is 20 000 mg/day.
        config.thresholds.gc_max_daily_mg_hydrocortisone = 20_000.0;
        let g = crate::engine::evaluate(&r, d("2022-12-01"), &config)
            .facts
            .gc;
        assert!(
            g.current_daily_peq.is_some_and(|v| v > bound * 0.25),
            "{g:?}"
        );
        // At the bound itself the dose is plausible.
        r.medications[0].dosages[0].dose_mg = Some(bound);
        assert!(gc_at(&r, "2022-12-01").current_daily_peq.is_some());
    }

    /// Issue 16: every agent the engine converts has a plausibility bound from the threshold
    /// table. At the bound the dose counts (its PEq is the dose × the §2.2 factor); just above it
    /// the dose is unknown, with a data-quality entry naming the record, the dose field and the
    /// threshold key.
    #[test]
    fn every_converted_glucocorticoid_has_a_plausibility_bound() {
        let t = crate::thresholds::Thresholds::default();
        let converted: Vec<Ingredient> = [
            Ingredient::Cortisone,
            Ingredient::Hydrocortisone,
            Ingredient::Prednisone,
            Ingredient::Prednisolone,
            Ingredient::Methylprednisolone,
            Ingredient::Triamcinolone,
            Ingredient::Dexamethasone,
            Ingredient::Betamethasone,
            Ingredient::Deflazacort,
            Ingredient::Fludrocortisone,
            Ingredient::Budesonide,
        ]
        .into_iter()
        .filter(|i| peq_factor(*i).is_some())
        .collect();
        assert_eq!(converted.len(), 9, "{converted:?}");
        let order = |i: Ingredient, mg: f64| {
            RecordBuilder::new("1950-03-15", Sex::Female)
                .daily_order(
                    i,
                    Active,
                    "2022-01-01",
                    None,
                    Some(mg),
                    Some(1.0),
                    crate::model::Route::Oral,
                )
                .build()
        };
        for i in converted {
            let (bound, key) = plausible_max_daily_mg(i, &t).unwrap_or_else(|| panic!("{i:?}"));
            let factor = peq_factor(i).unwrap_or_default();
            let at = gc_at(&order(i, bound), "2022-06-01");
            let peq = at
                .current_daily_peq
                .unwrap_or_else(|| panic!("{i:?} at {bound}"));
            assert!(close(peq, bound * factor), "{i:?}: {peq}");
            assert!(at.data_quality.is_empty(), "{i:?}: {:?}", at.data_quality);
            let r = order(i, bound * 1.01);
            let above = gc_at(&r, "2022-06-01");
            assert_eq!(above.current_daily_peq, None, "{i:?} above {bound}");
            assert_eq!(above.qualifying, Tri::Unknown, "{i:?}");
            assert!(
                above
                    .data_quality
                    .iter()
                    .any(|q| q.reference == r.medications[0].source.as_str()
                        && q.field.contains("dose")
                        && q.problem.contains(key)),
                "{i:?}: {:?}",
                above.data_quality
            );
            // Never stricter than 1,250 mg PEq/day (oral pulses for multiple sclerosis).
            assert!(bound * factor >= 1250.0, "{i:?}: {}", bound * factor);
        }
    }

    #[test]
    fn hydrocortisone_replacement_seed() {
        let r = hydrocortisone_three_lines("2015-01-01");
        let g = gc_at(&r, "2022-12-01");
        assert!(close(g.current_daily_peq.unwrap(), 5.0));
        assert!(g.open_ended);
        assert_eq!(g.qualifying, Tri::True);
        assert!(g.physiologic_replacement);
        assert_eq!(g.gc_start_date, Some(d("2015-01-01")));
        assert_eq!(g.series, vec![(d("2015-01-01"), 5.0)]);
        assert_eq!(g.days_ge_30_last365, 0);
        assert!(close(g.cumulative_g_last365, 5.0 * 365.0 / 1000.0));
    }

    #[test]
    fn methylprednisolone_every_other_day() {
        // 16 mg every other day → 8 mg/day × 1.25 = 10 mg PEq/day.
        let r = RecordBuilder::new("1960-01-01", Sex::Male)
            .daily_order(
                Ingredient::Methylprednisolone,
                Active,
                "2024-01-01",
                None,
                Some(16.0),
                Some(0.5),
                Route::Oral,
            )
            .build();
        let g = gc_at(&r, "2024-02-01");
        assert!(close(g.current_daily_peq.unwrap(), 10.0));
    }

    /// 4 mg BID from 2024-01-01 to 2024-01-05.
    fn dexamethasone_five_days() -> PatientRecord {
        RecordBuilder::new("1960-01-01", Sex::Male)
            .daily_order(
                Ingredient::Dexamethasone,
                Completed,
                "2024-01-01",
                Some("2024-01-05"),
                Some(4.0),
                Some(2.0),
                Route::Oral,
            )
            .build()
    }

    #[test]
    fn dexamethasone_five_days_cumulative() {
        // 4 mg BID × 5 days → 53.3 mg PEq/day, 0.267 g.
        let r = dexamethasone_five_days();
        let g = gc_at(&r, "2024-03-01");
        assert!((g.cumulative_g_last365 - 0.2667).abs() < 1e-3);
        assert_eq!(g.days_ge_30_last365, 5);
        assert_eq!(g.current_daily_peq, Some(0.0));
        assert_eq!(g.qualifying, Tri::False);
        assert!(!g.present);
        assert!(g.any_in_last_365);
        assert_eq!(
            g.series,
            vec![(d("2024-01-01"), 8.0 * 20.0 / 3.0), (d("2024-01-06"), 0.0)]
        );
    }

    /// A patient computed after a longer, heavier history on the same thread must not inherit
    /// any of its days (the day-by-day series used to be a buffer reused by the thread).
    #[test]
    fn reused_series_buffer_carries_nothing_over() {
        let short = dexamethasone_five_days();
        let alone = std::thread::spawn({
            let short = short.clone();
            move || gc_at(&short, "2024-03-01")
        })
        .join()
        .expect("fresh thread");
        // A long hydrocortisone history first, on this thread, then the short one.
        let long = hydrocortisone_three_lines("1990-01-01");
        let _ = gc_at(&long, "2024-03-01");
        let after = gc_at(&short, "2024-03-01");
        assert_eq!(after.series, alone.series);
        assert!(close(
            after.cumulative_g_last365,
            alone.cumulative_g_last365
        ));
        assert_eq!(after.days_ge_30_last365, alone.days_ge_30_last365);
        assert_eq!(after.continuous_days_ge_2_5, alone.continuous_days_ge_2_5);
    }

    /// Example 6: pulses + taper; 9.67 g, 122 days ≥ 30 mg.
    fn example6() -> PatientRecord {
        crate::testkit::example_6_record()
    }

    #[test]
    fn example6_very_high_dose() {
        let g = gc_at(&example6(), "2024-09-30");
        assert!(
            (g.cumulative_g_last365 - 9.67).abs() < 0.005,
            "{}",
            g.cumulative_g_last365
        );
        assert_eq!(g.days_ge_30_last365, 122);
        assert_eq!(g.gc_start_date, Some(d("2024-06-01")));
        assert_eq!(g.continuous_days_ge_2_5, 122);
        assert!(close(g.current_daily_peq.unwrap(), 40.0));
        assert_eq!(g.qualifying, Tri::True);
        assert!(!g.physiologic_replacement);
        assert_eq!(
            g.series,
            vec![
                (d("2024-06-01"), 1250.0),
                (d("2024-06-04"), 60.0),
                (d("2024-08-01"), 40.0)
            ]
        );
    }

    #[test]
    fn example5_continuous_days() {
        let r = RecordBuilder::new("1962-05-01", Sex::Male)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-03-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let g = gc_at(&r, "2024-09-15");
        assert_eq!(g.continuous_days_ge_2_5, 199);
        assert_eq!(g.gc_start_date, Some(d("2024-03-01")));
        assert_eq!(g.qualifying, Tri::True);
    }

    /// Example 10: PEq 2.4 mg/day for 400 days is not GC-qualifying.
    #[test]
    fn below_scope_dose_never_qualifies() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisolone,
                Active,
                "2023-01-01",
                None,
                Some(2.4),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let g = gc_at(&r, "2024-02-04");
        assert_eq!(g.qualifying, Tri::False);
        assert_eq!(g.continuous_days_ge_2_5, 0);
    }

    /// Refill chain of stopped 30-day orders (no end recorded): day 90 not qualifying, day 91
    /// qualifying (Example 10).
    fn refill_chain(n: usize) -> PatientRecord {
        let mut b = RecordBuilder::new("1960-01-01", Sex::Female);
        let start = d("2024-01-01");
        for k in 0..n {
            let s = add_days(start, 30 * k as i64).to_string();
            b = b.daily_order(
                Ingredient::Prednisone,
                Stopped,
                &s,
                None,
                Some(2.5),
                Some(1.0),
                Route::Oral,
            );
        }
        let mut r = b.build();
        for m in &mut r.medications {
            // Stopped orders without any end: the §1.6 default applies.
            m.dosages[0].bounds = Some(Period {
                start: m.authored,
                end: None,
            });
        }
        r
    }

    #[test]
    fn two_and_a_half_mg_day_90_and_91() {
        // Day 90 = 2024-03-30 (start 2024-01-01 is day 1).
        let g = gc_at(&refill_chain(3), "2024-03-30");
        assert_eq!(g.continuous_days_ge_2_5, 90);
        assert_eq!(g.planned_total_days, Some(90));
        assert_eq!(g.qualifying, Tri::False);
        assert!(
            !g.data_quality.is_empty(),
            "stopped order end not recorded is noted"
        );
        // Day 91.
        let g = gc_at(&refill_chain(4), "2024-03-31");
        assert_eq!(g.continuous_days_ge_2_5, 91);
        assert_eq!(g.qualifying, Tri::True);
        // Day before: day 89.
        let g = gc_at(&refill_chain(3), "2024-03-29");
        assert_eq!(g.qualifying, Tri::False);
    }

    #[test]
    fn open_ended_order_qualifies_from_day_one() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                Some(2.5),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let g = gc_at(&r, "2024-01-01");
        assert_eq!(g.continuous_days_ge_2_5, 1);
        assert!(g.open_ended);
        assert_eq!(g.qualifying, Tri::True);
    }

    #[test]
    fn planned_end_beyond_90_days_qualifies() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                Some("2024-06-30"),
                Some(5.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let g = gc_at(&r, "2024-01-10");
        assert_eq!(g.planned_total_days, Some(182));
        assert_eq!(g.qualifying, Tri::True);
        // Days after as_of are never counted.
        assert!(close(g.cumulative_g_last365, 0.05));
    }

    #[test]
    fn missed_day_tolerance_and_gap_bridging() {
        // 10 mg until 2024-03-31, restarted 2024-04-06 (5-day gap bridged).
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Completed,
                "2024-01-01",
                Some("2024-03-31"),
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-04-06",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let g = gc_at(&r, "2024-04-10");
        assert_eq!(g.gc_start_date, Some(d("2024-01-01")));
        assert_eq!(g.continuous_days_ge_2_5, 101);
        // As of 2024-04-03 (PEq 0 that day; the restart is not yet visible): mean of the prior
        // 7 days (5 days × 10 mg) = 7.14.
        let g = gc_at(&r, "2024-04-03");
        assert!(close(g.current_daily_peq.unwrap(), 50.0 / 7.0));
        assert!(g.present);
        // 8 days after the end: no longer present.
        let r2 = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Completed,
                "2024-01-01",
                Some("2024-03-31"),
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        assert!(gc_at(&r2, "2024-04-07").present);
        let g = gc_at(&r2, "2024-04-08");
        assert!(!g.present);
        assert_eq!(g.current_daily_peq, Some(0.0));
        assert_eq!(g.continuous_days_ge_2_5, 0);
    }

    #[test]
    fn local_route_and_as_needed_are_excluded() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisolone,
                Active,
                "2024-01-01",
                None,
                Some(20.0),
                Some(1.0),
                Route::Local,
            )
            .build();
        let g = gc_at(&r, "2024-06-01");
        assert!(!g.present);
        assert_eq!(g.qualifying, Tri::False);

        let mut r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Hydrocortisone,
                Active,
                "2024-01-01",
                None,
                Some(20.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        r.medications[0].dosages[0].as_needed = true;
        let g = gc_at(&r, "2024-06-01");
        // As-needed only: present with an unknown chronic dose.
        assert!(g.present);
        assert_eq!(g.current_daily_peq, None);
        assert_eq!(g.qualifying, Tri::Unknown);
        assert_eq!(g.unknown_dose_records.len(), 1);
        assert_eq!(g.gc_start_date, Some(d("2024-01-01")));
    }

    #[test]
    fn unknown_route_counts_as_systemic() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                Some(5.0),
                Some(1.0),
                Route::Unknown,
            )
            .build();
        assert_eq!(gc_at(&r, "2024-06-01").qualifying, Tri::True);
    }

    #[test]
    fn unknown_dose_within_365_days_is_listed() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Completed,
                "2023-01-01",
                Some("2023-01-31"),
                None,
                Some(1.0),
                Route::Oral,
            )
            .build();
        // Ended 2023-01-31: within 365 days of 2024-01-30, not of 2024-01-31.
        let g = gc_at(&r, "2024-01-30");
        assert_eq!(g.unknown_dose_records.len(), 1);
        assert!(!g.present);
        assert_eq!(g.qualifying, Tri::False);
        assert!(gc_at(&r, "2024-01-31").unknown_dose_records.is_empty());
    }

    #[test]
    fn depot_triamcinolone_spread_over_21_days() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .administration(
                Ingredient::Triamcinolone,
                "2024-01-01",
                40.0,
                Route::Intramuscular,
            )
            .build();
        let g = gc_at(&r, "2024-01-10");
        assert!(close(g.current_daily_peq.unwrap(), 50.0 / 21.0));
        let g = gc_at(&r, "2024-03-01");
        assert!(close(g.cumulative_g_last365, 0.05));
        assert_eq!(g.series.last(), Some(&(d("2024-01-22"), 0.0)));
    }

    #[test]
    fn one_off_order_counts_on_its_day() {
        let mut r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Dexamethasone,
                Completed,
                "2024-01-01",
                None,
                Some(8.0),
                None,
                Route::Intravenous,
            )
            .build();
        r.medications[0].administered_mg = Some(8.0);
        r.medications[0].planned_dates = vec![d("2024-01-02")];
        let g = gc_at(&r, "2024-02-01");
        assert!(g.unknown_dose_records.is_empty());
        assert_eq!(g.days_ge_30_last365, 1);
        assert_eq!(g.series[0], (d("2024-01-02"), 8.0 * 20.0 / 3.0));
    }

    #[test]
    fn statement_duplicating_request_counts_once() {
        let mut r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Prednisone,
                Active,
                "2024-01-01",
                None,
                Some(10.0),
                Some(1.0),
                Route::Oral,
            )
            .statement(Ingredient::Prednisone, Active, "2024-01-15", None)
            .build();
        let line = r.medications[0].dosages[0].clone();
        r.medications[1].dosages = vec![Dosage {
            bounds: None,
            ..line
        }];
        let g = gc_at(&r, "2024-02-01");
        assert!(close(g.current_daily_peq.unwrap(), 10.0));
        // A different dose is not a duplicate: it adds.
        r.medications[1].dosages[0].dose_mg = Some(5.0);
        let g = gc_at(&r, "2024-02-01");
        assert!(close(g.current_daily_peq.unwrap(), 15.0));
    }

    #[test]
    fn oral_budesonide_is_flagged_not_counted() {
        let r = RecordBuilder::new("1960-01-01", Sex::Female)
            .daily_order(
                Ingredient::Budesonide,
                Active,
                "2024-01-01",
                None,
                Some(9.0),
                Some(1.0),
                Route::Oral,
            )
            .build();
        let g = gc_at(&r, "2024-06-01");
        assert!(g.oral_budesonide);
        assert!(!g.present);
        assert_eq!(g.qualifying, Tri::False);
    }

    #[test]
    fn replacement_needs_condition_and_low_dose() {
        // Hydrocortisone 40 mg/day = 10 mg PEq: over-replacement, not physiological.
        let mut r = hydrocortisone_three_lines("2015-01-01");
        r.medications[0].dosages[0].dose_mg = Some(30.0);
        let g = gc_at(&r, "2022-12-01");
        assert!(close(g.current_daily_peq.unwrap(), 10.0));
        assert!(!g.physiologic_replacement);
        // Without the adrenal condition: not replacement.
        let mut r = hydrocortisone_three_lines("2015-01-01");
        r.conditions.clear();
        assert!(!gc_at(&r, "2022-12-01").physiologic_replacement);
    }

    /// The day-by-day `run_start` the series-as-runs version replaced (kept as the reference).
    fn run_start_daily(series: &[f64], threshold: f64, bridge: i64) -> Option<usize> {
        let n = series.len();
        let last = (0..n).rev().find(|&i| at_least(series[i], threshold))?;
        if (n - 1 - last) as i64 > bridge {
            return None;
        }
        let bridge = bridge.max(0) as usize;
        let mut start = last;
        loop {
            while start > 0 && at_least(series[start - 1], threshold) {
                start -= 1;
            }
            let joined = (1..=bridge + 1)
                .take_while(|&k| k <= start)
                .map(|k| start - k)
                .find(|&j| at_least(series[j], threshold));
            match joined {
                Some(j) => start = j,
                None => break,
            }
        }
        Some(start)
    }

    proptest::proptest! {
        /// Building the runs from the pieces gives, on every day, the bit-identical value the
        /// day-by-day fill gave (pieces overlapping, twins partly outside the series).
        #[test]
        fn series_from_pieces_is_the_daily_fill(
            n in 1usize..500,
            pieces in proptest::collection::vec(
                (0usize..500, 0usize..200, 0usize..5, proptest::collection::vec((-50i64..550, 0i64..120), 0..3)),
                0..8,
            ),
        ) {
            const PEQ: [f64; 5] = [2.5, 5.0, 7.5, 0.1, 1.0 / 3.0];
            let spans: Vec<Span> = pieces
                .iter()
                .map(|(lo, len, v, twins)| {
                    let lo = (*lo % n) as i64;
                    Span {
                        lo,
                        hi: (lo + *len as i64).min(n as i64 - 1),
                        daily_peq: PEQ[*v],
                        twins: twins.iter().map(|&(a, l)| (a, a + l)).collect(),
                    }
                })
                .collect();
            let mut daily = vec![0.0; n];
            for sp in &spans {
                for i in sp.lo..=sp.hi {
                    if !sp.twins.iter().any(|&(a, b)| a <= i && i <= b) {
                        daily[i as usize] += sp.daily_peq;
                    }
                }
            }
            let series = Series::from_spans(&spans, n);
            for (i, v) in daily.iter().enumerate() {
                proptest::prop_assert_eq!(series.at(i).to_bits(), v.to_bits(), "day {}", i);
            }
        }

        /// The series kept as runs gives what the day-by-day series gave: each day's value, the
        /// continuous run, the window count and sum (bit for bit) and the change points. Runs
        /// may be short or long and two adjacent runs may hold the same value, as in `compute`.
        #[test]
        fn series_as_runs_is_the_daily_series(
            runs in proptest::collection::vec((1usize..60, 0usize..6), 1..25),
            bridge in 0i64..12,
            threshold in 0usize..3,
            window in 1usize..400,
        ) {
            const VALUES: [f64; 6] = [0.0, 2.5, 2.5 - 1e-12, 5.0, 7.5, 30.0];
            let threshold = [2.5, 7.5, 30.0][threshold];
            let mut daily = Vec::new();
            let mut compressed = Vec::new();
            for (len, v) in &runs {
                compressed.push((daily.len(), VALUES[*v]));
                daily.extend(std::iter::repeat_n(VALUES[*v], *len));
            }
            let n = daily.len();
            let series = Series { runs: compressed, n };
            for (i, v) in daily.iter().enumerate() {
                proptest::prop_assert_eq!(series.at(i).to_bits(), v.to_bits());
            }
            proptest::prop_assert_eq!(
                run_start(&series, threshold, bridge),
                run_start_daily(&daily, threshold, bridge)
            );
            let from = n.saturating_sub(window);
            let count: usize = series
                .runs_from(from)
                .filter(|(_, _, v)| at_least(*v, threshold))
                .map(|(a, b, _)| b - a)
                .sum();
            let want = daily[from..].iter().filter(|v| at_least(**v, threshold)).count();
            proptest::prop_assert_eq!(count, want);
            proptest::prop_assert_eq!(
                series.days_from(from).sum::<f64>().to_bits(),
                daily[from..].iter().sum::<f64>().to_bits()
            );
            let points = |values: &mut dyn Iterator<Item = (usize, f64)>| {
                let mut last: Option<f64> = None;
                let mut out = Vec::new();
                for (i, v) in values {
                    if last.is_none_or(|l| (l - v).abs() > EPS) {
                        out.push((i, v));
                        last = Some(v);
                    }
                }
                out
            };
            proptest::prop_assert_eq!(
                points(&mut series.runs.iter().copied()),
                points(&mut daily.iter().copied().enumerate())
            );
        }
    }
}
