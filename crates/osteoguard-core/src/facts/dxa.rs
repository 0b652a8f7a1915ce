//! Bone density — knowledge.md §6 (WHO-1994 categories, ISCD least significant change).
//!
//! Interpretations:
//! * Serial comparison (§6.2) uses lumbar spine, total hip and femoral neck; the forearm is used
//!   for categorisation only when no hip/spine T-score exists (§6.3) and never for monitoring.
//! * "The latest two comparable scans" (§9 "latest two DXA at the same site"): for each
//!   monitoring site the later scan is that site's latest scan (a site not re-measured at the
//!   most recent DXA keeps its own latest pair); the earlier scan is the most recent one of the
//!   same site dated ≥ `bmd_min_interval_days` before it that is comparable (older scans are
//!   tried when the newest candidate is not comparable, e.g. another device). Item 6
//!   (`comparison_possible`, `comparison_notes`) concerns the most recent DXA date only.
//! * Devices are compared by the referenced Device's manufacturer when the reader found one
//!   (v0.10.3: a contained `#dxa` Device or a Device in the input), else by their full identity
//!   (trimmed, case-insensitive): then a different model of the same manufacturer is refused too
//!   (conservative — a refused comparison surfaces as data-insufficient item 6 instead of a
//!   possibly false loss).
//! * `comparison_possible` is `None` when fewer than two DXA dates exist *or* no DXA is dated
//!   ≥ 180 days before the latest one (a short interval is not a data gap, §6.2 noise rule).
//! * Facility LSC (§6.2): an `Lsc` Observation belonging to the later scan's result (same
//!   reference, or `<reference>#…`), else one dated on the later scan's date with a compatible
//!   device and a single value that day; otherwise the site default (`t.lsc_*`). An LSC in
//!   g/cm² is converted to percent of the earlier BMD.
//! * Hip sides (§6.3): both sides at both dates → mean of both; else a side present at both;
//!   an uncoded side compares with any; left-only vs right-only is not comparable.

use chrono::NaiveDate;
use serde::Serialize;

use super::spine::SpineFacts;
use super::Input;
use crate::finding::{Evidence, Fixed};
use crate::model::{
    days, ConditionKind, DxaSite, FractureSite, ObservationKind, Side, SourceRef, VertebralLevel,
    VertebralLocation,
};
use crate::tri::Tri;

/// Floating-point tolerance for "decrease ≥ LSC" comparisons (values are entered to 0.001).
const NUMERIC_TOLERANCE: f64 = 1e-9;

/// Sites used for serial monitoring, in reporting priority (§6.3).
const MONITORING_SITES: [DxaSite; 3] = [
    DxaSite::LumbarSpine,
    DxaSite::TotalHip,
    DxaSite::FemoralNeck,
];

/// A T-score (or Z-score) reading used for categorisation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScoreReading {
    pub source: SourceRef,
    pub site: DxaSite,
    pub date: NaiveDate,
    pub value: f64,
    /// Older than `dxa_stale_days` (still used, flagged, §3.1).
    pub stale: bool,
}

/// WHO-1994 categories (§6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum WhoCategory {
    Normal,
    LowBoneMass,
    Osteoporosis,
    SevereOsteoporosis,
}

/// A significant change between two comparable scans (§6.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BmdChange {
    pub site: DxaSite,
    pub earlier: NaiveDate,
    pub later: NaiveDate,
    /// Percent change of BMD (negative = loss); `None` when T-score based.
    pub pct_change: Option<f64>,
    /// T-score change (negative = loss) when T-scores are known at both.
    pub t_change: Option<f64>,
    pub lsc_pct: Option<f64>,
    /// T-score fallback used (`approximate_t_based`).
    pub approximate_t_based: bool,
    /// Loss ≥ LSC (or ≥ 0.5 T).
    pub significant_loss: bool,
    /// Loss ≥ 2× LSC (or ≥ 1.0 T).
    pub large_loss: bool,
    pub later_t: Option<f64>,
    pub evidence: Vec<Evidence>,
}

impl BmdChange {
    /// One-line description, e.g. "total hip BMD 0.800 → 0.752 g/cm² (−6.0 %; LSC 5.0 %)".
    pub fn describe(&self) -> String {
        let site = self.site.label();
        match (self.pct_change, self.approximate_t_based) {
            (Some(p), false) => text!(
                "{site} BMD {} → {} ({}; LSC {}){}",
                self.earlier,
                self.later,
                signed_pct(p),
                self.lsc_pct
                    .map(|l| text!("{} %", Fixed(l, 1)))
                    .unwrap_or_else(|| "unknown".into()),
                self.t_change
                    .map(|t| text!(", ΔT {t:+.1}"))
                    .unwrap_or_default()
            ),
            _ => text!(
                "{site} T-score {} → {} (ΔT {}; approximate, T-score based)",
                self.earlier,
                self.later,
                self.t_change
                    .map(|t| text!("{t:+.1}"))
                    .unwrap_or_else(|| "unknown".into())
            ),
        }
    }
}

fn signed_pct(p: f64) -> String {
    text!("{p:+.1} %")
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct DxaFacts {
    /// Most recent T-score per site (lumbar spine, total hip, femoral neck; forearm only when
    /// none of those exists), §3.1 / §6.3.
    pub latest_t: Vec<ScoreReading>,
    /// `min_T_hip_spine` (§3.1).
    pub min_t: Option<ScoreReading>,
    /// `Z_hip_spine` (§3.1, for age < 40).
    pub min_z: Option<ScoreReading>,
    /// Dates of every DXA result (BMD, T or Z), ascending.
    pub dxa_dates: Vec<NaiveDate>,
    pub latest_dxa: Option<NaiveDate>,
    pub who: Option<WhoCategory>,
    /// `bmd-significant-loss` for the latest two comparable scans (§6.2; §9).
    pub latest_change: Option<BmdChange>,
    /// Whether the most recent DXA could be validly compared with any earlier DXA ≥ 180 days
    /// before it (data-insufficient item 6); `None` when fewer than 2 scans exist.
    pub comparison_possible: Option<bool>,
    /// Why a comparison was refused (device mismatch, spine confounded …).
    pub comparison_notes: Vec<String>,
    /// Time series for charts: every T-score `(date, site, value, source)`.
    pub t_series: Vec<(NaiveDate, DxaSite, f64, SourceRef)>,
    /// Every valid comparison of the latest scan, one per site (`latest_change` is the most
    /// significant of them).
    pub changes: Vec<BmdChange>,
}

// ---- scans --------------------------------------------------------------------------------------

/// BMD and T-score of one site, side and date.
#[derive(Debug, Clone, Default)]
struct SideReading {
    side: Option<Side>,
    bmd: Option<(f64, SourceRef)>,
    t: Option<(f64, SourceRef)>,
    device: Option<String>,
}

/// Everything measured at one site on one date.
#[derive(Debug, Clone)]
struct Scan {
    site: DxaSite,
    date: NaiveDate,
    sides: Vec<SideReading>,
}

impl Scan {
    fn side(&self, side: Option<Side>) -> Option<&SideReading> {
        self.sides.iter().find(|r| r.side == side)
    }
}

/// The values compared for one scan after side matching.
#[derive(Debug, Clone)]
struct Compared {
    bmd: Option<f64>,
    t: Option<f64>,
    device: Option<String>,
    sources: Vec<SourceRef>,
}

impl Compared {
    fn one(r: &SideReading) -> Self {
        Compared {
            bmd: r.bmd.as_ref().map(|b| b.0),
            t: r.t.as_ref().map(|t| t.0),
            device: r.device.clone(),
            sources: r
                .bmd
                .iter()
                .map(|b| b.1.clone())
                .chain(r.t.iter().map(|t| t.1.clone()))
                .collect(),
        }
    }
    fn mean(rs: &[&SideReading]) -> Self {
        let parts: Vec<Compared> = rs.iter().map(|r| Compared::one(r)).collect();
        let mean = |xs: Vec<Option<f64>>| -> Option<f64> {
            let n = xs.len() as f64;
            let v: Option<Vec<f64>> = xs.into_iter().collect();
            v.filter(|v| !v.is_empty())
                .map(|v| v.iter().sum::<f64>() / n)
        };
        Compared {
            bmd: mean(parts.iter().map(|p| p.bmd).collect()),
            t: mean(parts.iter().map(|p| p.t).collect()),
            device: parts.iter().find_map(|p| p.device.clone()),
            sources: parts.into_iter().flat_map(|p| p.sources).collect(),
        }
    }
}

fn scans(input: &Input<'_>) -> Vec<Scan> {
    let mut out: Vec<Scan> = Vec::new();
    // Where the scan of each (site, date) is in `out`: a search of `out` for every observation
    // made this loop quadratic in the number of scans (20 years of monthly DXA).
    let mut index: std::collections::BTreeMap<(DxaSite, NaiveDate), usize> =
        std::collections::BTreeMap::new();
    for o in input
        .record
        .observations
        .iter()
        .filter(|o| o.status.is_usable())
    {
        let (site, is_bmd) = match o.kind {
            ObservationKind::Bmd(s) => (s, true),
            ObservationKind::TScore(s) => (s, false),
            _ => continue,
        };
        let (Some(value), Some(date)) = (o.value, o.date()) else {
            continue;
        };
        let idx = *index.entry((site, date)).or_insert_with(|| {
            out.push(Scan {
                site,
                date,
                sides: Vec::new(),
            });
            out.len() - 1
        });
        let scan = &mut out[idx];
        let reading = match scan.sides.iter().position(|r| r.side == o.side) {
            Some(i) => &mut scan.sides[i],
            None => {
                scan.sides.push(SideReading {
                    side: o.side,
                    ..SideReading::default()
                });
                let last = scan.sides.len() - 1;
                &mut scan.sides[last]
            }
        };
        if is_bmd {
            reading.bmd = Some((value, o.source.clone()));
        } else {
            reading.t = Some((value, o.source.clone()));
        }
        if let Some(id) = o.device_identity() {
            reading.device = Some(id.to_string());
        }
    }
    out.sort_by_key(|a| (a.site, a.date));
    for s in &mut out {
        s.sides.sort_by_key(|r| r.side);
    }
    out
}

/// §6.3 "compare like with like": returns the values to compare, or why sides do not match.
fn match_sides(e: &Scan, l: &Scan) -> Result<(Compared, Compared), String> {
    let both = |s: &Scan| match (s.side(Some(Side::Left)), s.side(Some(Side::Right))) {
        (Some(a), Some(b)) => Some(Compared::mean(&[a, b])),
        _ => None,
    };
    if let (Some(a), Some(b)) = (both(e), both(l)) {
        return Ok((a, b));
    }
    for side in [Some(Side::Left), Some(Side::Right), None] {
        if let (Some(a), Some(b)) = (e.side(side), l.side(side)) {
            return Ok((Compared::one(a), Compared::one(b)));
        }
    }
    // An uncoded side compares with any reading of the other scan.
    let any = |s: &Scan| -> Compared {
        let all: Vec<&SideReading> = s.sides.iter().collect();
        match s.side(None) {
            Some(r) => Compared::one(r),
            None => Compared::mean(&all),
        }
    };
    if e.side(None).is_some() || l.side(None).is_some() {
        return Ok((any(e), any(l)));
    }
    Err(text!(
        "{} {} → {}: different sides measured, not comparable",
        e.site.label(),
        e.date,
        l.date
    ))
}

fn same_device(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.trim().eq_ignore_ascii_case(b.trim()),
        _ => true,
    }
}

/// The facility LSC in percent for a comparison whose later scan is `later` (§6.2).
fn facility_lsc(
    input: &Input<'_>,
    later: &Compared,
    later_date: NaiveDate,
    earlier_bmd: f64,
) -> Option<(f64, SourceRef)> {
    let lsc: Vec<_> = input
        .record
        .observations
        .iter()
        .filter(|o| o.kind == ObservationKind::Lsc && o.status.is_usable())
        .filter_map(|o| o.value.filter(|v| *v > 0.0).map(|v| (o, v)))
        .collect();
    let to_pct = |o: &crate::model::Observation, v: f64| {
        if o.lsc_is_percent {
            v
        } else {
            v / earlier_bmd * 100.0
        }
    };
    let belongs = |o: &crate::model::Observation| {
        later
            .sources
            .iter()
            .any(|s| o.source == *s || o.source.as_str().starts_with(&text!("{}#", s.as_str())))
    };
    if let Some((o, v)) = lsc.iter().find(|(o, _)| belongs(o)) {
        return Some((to_pct(o, *v), o.source.clone()));
    }
    // The same-day fallback is for a standalone LSC Observation. An LSC given as a component of
    // another result (e.g. the femoral-neck BMD) is that site's LSC, not this one's (§6.2 LSC is
    // site-specific, as its defaults are); found by the oradm2 differential (a hip LSC of 3.0 %
    // made a femoral-neck loss of 6.90 % "≥ 2× LSC").
    let component_of_a_result = |o: &crate::model::Observation| {
        input
            .record
            .observations
            .iter()
            .any(|m| m.kind != ObservationKind::Lsc && m.source == o.source)
    };
    let same_day: Vec<_> = lsc
        .iter()
        .filter(|(o, _)| {
            o.date() == Some(later_date)
                && same_device(&o.device_identity().map(str::to_string), &later.device)
                && !component_of_a_result(o)
        })
        .collect();
    let first = same_day.first()?;
    let unique = same_day
        .iter()
        .all(|(o, v)| *v == first.1 && o.lsc_is_percent == first.0.lsc_is_percent);
    unique.then(|| (to_pct(first.0, first.1), first.0.source.clone()))
}

fn default_lsc_pct(input: &Input<'_>, site: DxaSite) -> Option<f64> {
    match site {
        DxaSite::LumbarSpine => Some(input.t.lsc_spine_pct),
        DxaSite::TotalHip => Some(input.t.lsc_total_hip_pct),
        DxaSite::FemoralNeck => Some(input.t.lsc_femoral_neck_pct),
        DxaSite::Forearm => None,
    }
}

/// A vertebral fracture or augmentation without a recorded level, present by `date`: it may
/// lie in L1–L4, so spine validity cannot be shown (§6.2, §12.14 conservative choice).
fn unlocated_vertebral_event_by(spine: &SpineFacts, date: NaiveDate) -> Option<String> {
    let fracture = spine.fractures.iter().find(|f| {
        f.location == VertebralLocation::Unspecified
            && (f.prevalent_unknown_age || f.onset_for_windows.is_none_or(|o| o <= date))
    });
    if let Some(f) = fracture {
        return Some(text!("vertebral fracture {}, level not recorded", f.source));
    }
    spine
        .unlocated_augmentations
        .iter()
        .find(|a| a.date <= date)
        .map(|a| text!("augmentation {}, level not recorded", a.source))
}

/// A vertebral fracture known only from a follow-up code (§10.3: 7th character D/G/K/S, no new
/// fracture event) is still a fracture the patient has (as for §3.1 and the discontinuation
/// severity). At L1–L4, or without a level (§7.2: it may lie in L1–L4), it confounds the spine
/// like a fractured level (§6.2) when its date (onset start, else `recordedDate`, as §6.2 reads a
/// level-less fracture) is on or before `date`, and at every date when undated (age unknown, as
/// §7.4 step 2's prevalent fracture). Found by the oradm2 differential.
fn followup_vertebral_fracture_by(input: &Input<'_>, date: NaiveDate) -> Option<String> {
    input
        .record
        .conditions
        .iter()
        .filter(|c| c.subsequent_encounter && c.is_valid())
        .find_map(|c| {
            let ConditionKind::Fracture(FractureSite::Vertebral(loc)) = c.kind else {
                return None;
            };
            let lumbar = match loc {
                VertebralLocation::Level(v) => v.is_lumbar_1_to_4(),
                VertebralLocation::Pair(a, b) => a.is_lumbar_1_to_4() || b.is_lumbar_1_to_4(),
                VertebralLocation::Unspecified => true,
            };
            let when = c.onset.and_then(|p| p.start.or(p.end)).or(c.recorded);
            (lumbar && when.is_none_or(|w| w <= date))
                .then(|| text!("vertebral fracture {} {}, follow-up code", c.source, loc))
        })
}

/// §6.2: compares two scans of one site; `Err` says why the comparison is not valid.
fn compare(input: &Input<'_>, spine: &SpineFacts, e: &Scan, l: &Scan) -> Result<BmdChange, String> {
    let t = input.t;
    if e.site == DxaSite::LumbarSpine {
        let confounded: Vec<VertebralLevel> = spine
            .fractured_or_augmented_on(l.date)
            .into_iter()
            .filter(|v| v.is_lumbar_1_to_4())
            .collect();
        if let Some(why) = unlocated_vertebral_event_by(spine, l.date)
            .or_else(|| followup_vertebral_fracture_by(input, l.date))
        {
            return Err(text!(
                "lumbar spine {} → {}: spine BMD possibly confounded ({why})",
                e.date,
                l.date
            ));
        }
        if !confounded.is_empty() {
            let levels: Vec<&str> = confounded.iter().map(|v| v.label()).collect();
            return Err(text!(
                "lumbar spine {} → {}: spine BMD confounded by fracture/cement ({})",
                e.date,
                l.date,
                levels.join(", ")
            ));
        }
    }
    let (a, b) = match_sides(e, l)?;
    if !same_device(&a.device, &b.device) {
        return Err(text!(
            "{} {} → {}: different DXA devices ({} vs {}), not comparable",
            e.site.label(),
            e.date,
            l.date,
            a.device.as_deref().unwrap_or("?"),
            b.device.as_deref().unwrap_or("?")
        ));
    }
    let t_change = a.t.zip(b.t).map(|(x, y)| y - x);
    let mut evidence: Vec<Evidence> = Vec::new();
    let describe = |c: &Compared| -> String {
        let mut parts = Vec::new();
        if let Some(v) = c.bmd {
            parts.push(text!("BMD {} g/cm²", Fixed(v, 3)));
        }
        if let Some(v) = c.t {
            parts.push(text!("T {}", Fixed(v, 1)));
        }
        parts.join(", ")
    };
    for (scan, c) in [(e, &a), (l, &b)] {
        for s in c.sources.iter().take(1) {
            evidence.push(Evidence::new(
                s,
                Some(scan.date),
                text!("DXA {} {}: {}", scan.site.label(), scan.date, describe(c)),
            ));
        }
    }
    let base = BmdChange {
        site: e.site,
        earlier: e.date,
        later: l.date,
        pct_change: None,
        t_change,
        lsc_pct: None,
        approximate_t_based: false,
        significant_loss: false,
        large_loss: false,
        // §9 "high if the later scan T ≤ −2.5" is a diagnostic threshold: §6.3 takes the lower
        // T-score when both hips were measured that day (the comparison itself is like with like).
        later_t: l
            .sides
            .iter()
            .filter_map(|s| s.t.as_ref().map(|(v, _)| *v))
            .min_by(f64::total_cmp)
            .or(b.t),
        evidence,
    };
    match (a.bmd.filter(|v| *v > 0.0), b.bmd) {
        (Some(old), Some(new)) => {
            let pct = (new - old) / old * 100.0;
            let (lsc, lsc_source) = match facility_lsc(input, &b, l.date, old) {
                Some((v, s)) => (Some(v), Some(s)),
                None => (default_lsc_pct(input, e.site), None),
            };
            let mut change = base;
            if let Some(s) = lsc_source {
                change.evidence.push(Evidence::new(
                    &s,
                    Some(l.date),
                    text!("facility LSC {} %", Fixed(lsc.unwrap_or_default(), 1)),
                ));
            }
            let loss = -pct;
            change.pct_change = Some(pct);
            change.lsc_pct = lsc;
            change.significant_loss = lsc.is_some_and(|lsc| loss + NUMERIC_TOLERANCE >= lsc);
            change.large_loss =
                lsc.is_some_and(|lsc| loss + NUMERIC_TOLERANCE >= t.lsc_large_multiple * lsc);
            Ok(change)
        }
        _ => match t_change {
            Some(dt) => {
                let drop = -dt;
                let mut change = base;
                change.approximate_t_based = true;
                change.significant_loss = drop + NUMERIC_TOLERANCE >= t.t_drop_significant;
                change.large_loss = drop + NUMERIC_TOLERANCE >= t.t_drop_large;
                Ok(change)
            }
            None => Err(text!(
                "{} {} → {}: no BMD or T-score measured at both scans",
                e.site.label(),
                e.date,
                l.date
            )),
        },
    }
}

/// The most telling change: a large loss, then a significant loss, then site priority.
fn most_significant(changes: &[BmdChange]) -> Option<&BmdChange> {
    changes
        .iter()
        .find(|c| c.large_loss)
        .or_else(|| changes.iter().find(|c| c.significant_loss))
        .or_else(|| changes.first())
}

/// `bmd-significant-loss` restricted to pairs whose earlier scan is dated ≤ `earlier_max` and
/// later scan > `later_after` (used by the rebound rule, §9). TRUE = significant loss found;
/// FALSE = a valid pair exists and shows no significant loss; UNKNOWN = no valid pair.
pub fn loss_between(
    input: &Input<'_>,
    spine: &SpineFacts,
    earlier_max: NaiveDate,
    later_after: NaiveDate,
) -> (Tri, Option<BmdChange>) {
    let all = scans(input);
    let mut valid: Vec<BmdChange> = Vec::new();
    for site in MONITORING_SITES {
        let of_site: Vec<&Scan> = all.iter().filter(|s| s.site == site).collect();
        for l in of_site.iter().rev().filter(|s| s.date > later_after) {
            for e in of_site.iter().rev().filter(|s| {
                s.date <= earlier_max && days(s.date, l.date) >= input.t.bmd_min_interval_days
            }) {
                if let Ok(c) = compare(input, spine, e, l) {
                    valid.push(c);
                }
            }
        }
    }
    if valid.iter().any(|c| c.significant_loss) {
        (Tri::True, most_significant(&valid).cloned())
    } else if let Some(first) = valid.first() {
        (Tri::False, Some(first.clone()))
    } else {
        (Tri::Unknown, None)
    }
}

// ---- categorisation -----------------------------------------------------------------------------

/// Latest score per site (lower of same-day readings, e.g. left/right hip), forearm only when
/// no hip/spine score exists (§6.3).
fn latest_scores(input: &Input<'_>, z: bool) -> Vec<ScoreReading> {
    let mut per_site: Vec<ScoreReading> = Vec::new();
    for o in input
        .record
        .observations
        .iter()
        .filter(|o| o.status.is_usable())
    {
        let site = match (o.kind, z) {
            (ObservationKind::TScore(s), false) | (ObservationKind::ZScore(s), true) => s,
            _ => continue,
        };
        let (Some(value), Some(date)) = (o.value, o.date()) else {
            continue;
        };
        // Built only when it is kept.
        let reading = || ScoreReading {
            source: o.source.clone(),
            site,
            date,
            value,
            stale: days(date, input.as_of) > input.t.dxa_stale_days,
        };
        match per_site.iter_mut().find(|r| r.site == site) {
            Some(r) if (date, -value) > (r.date, -r.value) => *r = reading(),
            Some(_) => {}
            None => per_site.push(reading()),
        }
    }
    per_site.sort_by_key(|r| r.site);
    if per_site.iter().any(|r| r.site != DxaSite::Forearm) {
        per_site.retain(|r| r.site != DxaSite::Forearm);
    }
    per_site
}

fn lowest(readings: &[ScoreReading]) -> Option<ScoreReading> {
    readings
        .iter()
        .fold(None::<&ScoreReading>, |best, r| match best {
            Some(b) if b.value <= r.value => Some(b),
            _ => Some(r),
        })
        .cloned()
}

/// Any fragility fracture on record (§6.1 "severe"): vertebral events, augmentations, or a
/// non-vertebral fragility fracture, excluding those explicitly marked traumatic.
fn has_fragility_fracture(spine: &SpineFacts) -> bool {
    spine.fractures.iter().any(|f| !f.traumatic)
        || !spine.augmentations.is_empty()
        || !spine.unlocated_augmentations.is_empty()
        || spine
            .other_fractures
            .iter()
            .any(|f| f.site.is_fragility_site() && !f.traumatic)
}

/// WHO-1994 (§6.1), for adults ≥ 50 (younger adults are judged by Z-score; `None`).
fn who_category(
    input: &Input<'_>,
    spine: &SpineFacts,
    min_t: Option<&ScoreReading>,
) -> Option<WhoCategory> {
    let t = input.t;
    if input.age.is_some_and(|a| a < t.who_min_age) {
        return None;
    }
    let v = min_t?.value;
    Some(if v <= t.t_high {
        if has_fragility_fracture(spine) {
            WhoCategory::SevereOsteoporosis
        } else {
            WhoCategory::Osteoporosis
        }
    } else if v < t.t_moderate {
        WhoCategory::LowBoneMass
    } else {
        WhoCategory::Normal
    })
}

pub fn compute(input: &Input<'_>, spine: &SpineFacts) -> DxaFacts {
    let mut facts = DxaFacts::default();
    let t = input.t;

    let mut dates: Vec<NaiveDate> = Vec::new();
    for o in input
        .record
        .observations
        .iter()
        .filter(|o| o.status.is_usable())
    {
        let (Some(v), Some(date)) = (o.value, o.date()) else {
            continue;
        };
        match o.kind {
            ObservationKind::TScore(site) => {
                facts.t_series.push((date, site, v, o.source.clone()));
                dates.push(date);
            }
            ObservationKind::ZScore(_) | ObservationKind::Bmd(_) => dates.push(date),
            _ => {}
        }
    }
    dates.sort();
    dates.dedup();
    facts
        .t_series
        .sort_by(|a, b| (a.0, a.1, &a.3).cmp(&(b.0, b.1, &b.3)));
    facts.latest_dxa = dates.last().copied();
    facts.dxa_dates = dates;

    facts.latest_t = latest_scores(input, false);
    facts.min_t = lowest(&facts.latest_t);
    facts.min_z = lowest(&latest_scores(input, true));
    facts.who = who_category(input, spine, facts.min_t.as_ref());

    // §6.2 serial comparison. §9 `bmd-significant-loss` compares "the latest two DXA at the same
    // site": each monitoring site from its own latest scan, so a site not re-measured at the most
    // recent DXA keeps its latest pair. Data-insufficient item 6 (`comparison_possible`) concerns
    // the most recent DXA only, and so do the comparison notes.
    let Some(latest) = facts.latest_dxa.filter(|_| facts.dxa_dates.len() >= 2) else {
        return facts;
    };
    let has_earlier = facts
        .dxa_dates
        .iter()
        .any(|d| days(*d, latest) >= t.bmd_min_interval_days);
    if !has_earlier {
        facts.comparison_notes.push(text!(
            "no earlier DXA at least {} days before {latest}",
            t.bmd_min_interval_days
        ));
    }
    let all = scans(input);
    let mut measured_now = false;
    let mut latest_compared = false;
    for site in MONITORING_SITES {
        // `scans` is sorted by (site, date): the last of the site is its latest scan.
        let Some(later) = all.iter().rev().find(|s| s.site == site) else {
            continue;
        };
        let is_latest = later.date == latest;
        measured_now |= is_latest;
        let candidates: Vec<&Scan> = all
            .iter()
            .filter(|s| s.site == site && days(s.date, later.date) >= t.bmd_min_interval_days)
            .rev()
            .collect();
        if candidates.is_empty() {
            if is_latest && has_earlier {
                facts.comparison_notes.push(text!(
                    "{}: no earlier scan at least {} days before {latest}",
                    site.label(),
                    t.bmd_min_interval_days
                ));
            }
            continue;
        }
        for earlier in candidates {
            match compare(input, spine, earlier, later) {
                Ok(c) => {
                    latest_compared |= is_latest;
                    facts.changes.push(c);
                    break;
                }
                Err(reason) => {
                    let confounded = reason.contains("confounded");
                    if is_latest {
                        facts.comparison_notes.push(reason);
                    }
                    if confounded {
                        // Every earlier spine scan is confounded by the same later levels.
                        break;
                    }
                }
            }
        }
    }
    if !has_earlier {
        facts.latest_change = most_significant(&facts.changes).cloned();
        return facts;
    }
    if !measured_now {
        facts.comparison_notes.push(text!(
            "latest DXA {latest} has no lumbar spine or hip result to compare"
        ));
    }
    facts.comparison_possible = Some(latest_compared);
    facts.latest_change = most_significant(&facts.changes).cloned();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::model::{ObservationKind::*, ProcedureKind, Sex, VertebralLevel::*};
    use crate::testkit::{d, RecordBuilder};

    fn patient() -> RecordBuilder {
        RecordBuilder::new("1950-03-15", Sex::Female)
    }

    fn dxa_at(b: RecordBuilder, as_of: &str) -> DxaFacts {
        crate::engine::evaluate(&b.build(), d(as_of), &Config::default())
            .facts
            .dxa
    }

    fn device(b: RecordBuilder, name: &str) -> RecordBuilder {
        b.with_last_observation(|o| o.device = Some(name.to_string()))
    }

    #[test]
    fn latest_t_per_site_and_min() {
        let b = patient()
            .observation(TScore(DxaSite::LumbarSpine), "2021-01-01", -3.0)
            .observation(TScore(DxaSite::LumbarSpine), "2022-01-01", -2.0)
            .observation(TScore(DxaSite::TotalHip), "2022-01-01", -2.6)
            .observation(TScore(DxaSite::Forearm), "2022-01-01", -4.0);
        let f = dxa_at(b, "2022-02-01");
        assert_eq!(f.latest_t.len(), 2);
        assert_eq!(f.min_t.as_ref().map(|r| r.site), Some(DxaSite::TotalHip));
        assert_eq!(f.who, Some(WhoCategory::Osteoporosis));
        assert_eq!(f.dxa_dates.len(), 2);
    }

    #[test]
    fn forearm_only_when_no_hip_or_spine_and_stale_flag() {
        let b = patient().observation(TScore(DxaSite::Forearm), "2020-01-01", -2.0);
        let f = dxa_at(b, "2022-01-01"); // 731 days
        assert_eq!(f.min_t.as_ref().map(|r| r.site), Some(DxaSite::Forearm));
        assert!(f.min_t.as_ref().is_some_and(|r| r.stale));
        assert_eq!(f.who, Some(WhoCategory::LowBoneMass));
        let b = patient().observation(TScore(DxaSite::Forearm), "2020-01-01", -2.0);
        assert!(!dxa_at(b, "2021-12-31").min_t.is_some_and(|r| r.stale)); // 730 days
    }

    #[test]
    fn who_severe_needs_fragility_fracture() {
        let b = patient()
            .observation(TScore(DxaSite::TotalHip), "2022-01-01", -2.5)
            .vertebral_fracture(T10, "2021-01-01", "2021-01-01");
        assert_eq!(
            dxa_at(b, "2022-02-01").who,
            Some(WhoCategory::SevereOsteoporosis)
        );
    }

    #[test]
    fn example_9_hip_bmd_loss_six_percent() {
        let b = patient();
        let b = device(
            b.observation(Bmd(DxaSite::TotalHip), "2022-10-01", 0.800),
            "GE Lunar",
        );
        let b = device(
            b.observation(TScore(DxaSite::TotalHip), "2022-10-01", -1.6),
            "GE Lunar",
        );
        let b = device(
            b.observation(Bmd(DxaSite::TotalHip), "2024-10-01", 0.752),
            "GE Lunar",
        );
        let b = device(
            b.observation(TScore(DxaSite::TotalHip), "2024-10-01", -2.0),
            "GE Lunar",
        );
        let f = dxa_at(b, "2024-10-15");
        let c = f.latest_change.as_ref().expect("a change");
        assert!((c.pct_change.unwrap_or_default() + 6.0).abs() < 1e-6);
        assert!(c.significant_loss && !c.large_loss && !c.approximate_t_based);
        assert_eq!(c.lsc_pct, Some(5.0));
        assert_eq!(f.comparison_possible, Some(true));
    }

    #[test]
    fn interval_179_days_not_compared_180_compared() {
        let b = |later: &str| {
            patient()
                .observation(Bmd(DxaSite::TotalHip), "2023-01-01", 1.000)
                .observation(Bmd(DxaSite::TotalHip), later, 0.900)
        };
        let f = dxa_at(b("2023-06-29"), "2023-07-01"); // 179 d
        assert_eq!(f.comparison_possible, None);
        assert!(f.latest_change.is_none());
        let f = dxa_at(b("2023-06-30"), "2023-07-01"); // 180 d
        assert_eq!(f.comparison_possible, Some(true));
        assert!(f.latest_change.is_some_and(|c| c.large_loss));
    }

    #[test]
    fn t_score_fallback_boundary() {
        let b = |later: f64| {
            patient()
                .observation(TScore(DxaSite::LumbarSpine), "2021-06-15", -2.0)
                .observation(TScore(DxaSite::LumbarSpine), "2022-06-15", later)
        };
        let c = dxa_at(b(-2.4), "2022-07-01").latest_change.expect("change");
        assert!(!c.significant_loss && c.approximate_t_based);
        let c = dxa_at(b(-2.5), "2022-07-01").latest_change.expect("change");
        assert!(c.significant_loss && !c.large_loss);
        let c = dxa_at(b(-3.0), "2022-07-01").latest_change.expect("change");
        assert!(c.large_loss);
    }

    #[test]
    fn device_mismatch_is_not_comparable() {
        let b = patient();
        let b = device(
            b.observation(Bmd(DxaSite::TotalHip), "2022-01-01", 0.8),
            "Hologic",
        );
        let b = device(
            b.observation(Bmd(DxaSite::TotalHip), "2023-01-01", 0.7),
            "GE Lunar",
        );
        let f = dxa_at(b, "2023-02-01");
        assert_eq!(f.comparison_possible, Some(false));
        assert!(f.latest_change.is_none());
        assert!(f.comparison_notes.iter().any(|n| n.contains("devices")));
    }

    /// v0.10.3 §6.2: scans are compared by the referenced Device's manufacturer when known.
    #[test]
    fn devices_compared_by_manufacturer() {
        let scan = |b: RecordBuilder, date: &str, bmd: f64, device: &str, maker: &str| {
            let (device, maker) = (device.to_string(), maker.to_string());
            b.observation(Bmd(DxaSite::TotalHip), date, bmd)
                .with_last_observation(move |o| {
                    o.device = Some(device);
                    o.device_manufacturer = Some(maker);
                })
        };
        // The same contained reference text "#dxa", different manufacturers: not comparable.
        let b = scan(patient(), "2022-01-01", 0.8, "#dxa", "GE Healthcare");
        let b = scan(b, "2023-01-01", 0.7, "#dxa", "Hologic");
        let f = dxa_at(b, "2023-02-01");
        assert_eq!(f.comparison_possible, Some(false));
        assert!(f.changes.is_empty());
        assert!(f
            .comparison_notes
            .iter()
            .any(|n| n.contains("GE Healthcare vs Hologic")));
        // Different models, one manufacturer (case and spaces aside): comparable.
        let b = scan(
            patient(),
            "2022-01-01",
            0.8,
            "Lunar Prodigy",
            "GE Healthcare",
        );
        let b = scan(b, "2023-01-01", 0.7, "Lunar iDXA", " ge healthcare");
        let f = dxa_at(b, "2023-02-01");
        assert_eq!(f.comparison_possible, Some(true));
        assert!(f.latest_change.is_some_and(|c| c.significant_loss));
    }

    #[test]
    fn facility_lsc_in_grams_is_used() {
        let b = patient()
            .observation(Bmd(DxaSite::TotalHip), "2022-01-01", 1.000)
            .observation(Bmd(DxaSite::TotalHip), "2023-01-01", 0.970)
            .observation(Lsc, "2023-01-01", 0.025)
            .with_last_observation(|o| o.lsc_is_percent = false);
        let c = dxa_at(b, "2023-02-01").latest_change.expect("change");
        assert_eq!(c.lsc_pct.map(|v| (v * 10.0).round()), Some(25.0));
        assert!(c.significant_loss); // 3.0 % ≥ 2.5 %
    }

    #[test]
    fn spine_confounded_by_fracture_at_later_scan() {
        let b = || {
            patient()
                .observation(TScore(DxaSite::LumbarSpine), "2021-06-15", -2.7)
                .observation(TScore(DxaSite::LumbarSpine), "2022-06-15", -2.7)
                .vertebral_fracture(L4, "2022-08-01", "2022-08-01")
                .procedure(ProcedureKind::Vertebroplasty, &[L4], "2022-08-16")
        };
        // Example 2: the pair predates the fracture → valid, no loss.
        let f = dxa_at(b(), "2023-06-15");
        assert_eq!(f.comparison_possible, Some(true));
        assert!(f.latest_change.is_some_and(|c| !c.significant_loss));
        // A later scan after the fracture is confounded.
        let b2 = b()
            .observation(TScore(DxaSite::LumbarSpine), "2023-07-20", -3.7)
            .observation(TScore(DxaSite::TotalHip), "2023-07-20", -3.8);
        let f = dxa_at(b2, "2023-08-23");
        assert_eq!(f.comparison_possible, Some(false));
        assert!(f.comparison_notes.iter().any(|n| n.contains("confounded")));
    }

    #[test]
    fn spine_refused_when_a_fracture_level_is_not_recorded() {
        let b = patient()
            .observation(TScore(DxaSite::LumbarSpine), "2021-06-15", -2.0)
            .condition(
                crate::model::ConditionKind::Fracture(crate::model::FractureSite::Vertebral(
                    VertebralLocation::Unspecified,
                )),
                Some(("2022-01-01", "2022-01-01")),
                Some("2022-01-01"),
            )
            .observation(TScore(DxaSite::LumbarSpine), "2022-06-15", -2.9);
        let f = dxa_at(b, "2022-07-01");
        assert_eq!(f.comparison_possible, Some(false));
        assert!(f
            .comparison_notes
            .iter()
            .any(|n| n.contains("level not recorded")));
    }

    #[test]
    fn hip_sides_like_with_like() {
        let b = patient()
            .observation(Bmd(DxaSite::TotalHip), "2022-01-01", 0.9)
            .with_last_observation(|o| o.side = Some(Side::Left))
            .observation(Bmd(DxaSite::TotalHip), "2023-01-01", 0.8)
            .with_last_observation(|o| o.side = Some(Side::Right));
        assert_eq!(dxa_at(b, "2023-02-01").comparison_possible, Some(false));
        let b = patient()
            .observation(Bmd(DxaSite::TotalHip), "2022-01-01", 0.9)
            .with_last_observation(|o| o.side = Some(Side::Left))
            .observation(Bmd(DxaSite::TotalHip), "2022-01-01", 0.7)
            .with_last_observation(|o| o.side = Some(Side::Right))
            .observation(Bmd(DxaSite::TotalHip), "2023-01-01", 0.8)
            .with_last_observation(|o| o.side = Some(Side::Left));
        let c = dxa_at(b, "2023-02-01").latest_change.expect("left vs left");
        assert!(c.pct_change.is_some_and(|p| p < -11.0));
    }

    #[test]
    fn loss_between_three_valued() {
        let b = patient()
            .observation(Bmd(DxaSite::TotalHip), "2022-01-01", 1.0)
            .observation(Bmd(DxaSite::TotalHip), "2023-01-01", 0.9);
        let r = b.build();
        let cfg = Config::default();
        let input = Input {
            record: &r,
            as_of: d("2023-02-01"),
            t: &cfg.thresholds,
            age: Some(72),
        };
        let spine = SpineFacts::default();
        assert_eq!(
            loss_between(&input, &spine, d("2022-01-01"), d("2022-06-01")).0,
            Tri::True
        );
        assert_eq!(
            loss_between(&input, &spine, d("2021-12-31"), d("2022-06-01")).0,
            Tri::Unknown
        );
        assert_eq!(
            loss_between(&input, &spine, d("2022-01-01"), d("2023-01-01")).0,
            Tri::Unknown
        );
    }
}
