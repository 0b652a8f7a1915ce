//! The ten per-patient KPIs of knowledge.md §13 as one table ([`KPIS`]): each row quotes its
//! §13 row, names its window (constants in `thresholds.rs`) and points to the function that
//! reads the record. KPI 11 (data completeness) is computed over patients in
//! [`super::aggregate`].
//!
//! The §13 rules applied to every row by [`evaluate`]:
//! * **Pending** — "a patient whose day-84/112/364 window has not yet ended at `as_of` is
//!   pending for that KPI (left out of its denominator, reported as pending), never FALSE". A
//!   window `[day 0, day N]` has ended when `as_of` is *after* day N (on day N itself the day is
//!   not over: conservative, the answer could still change).
//! * **Deceased** — "a patient who died (Patient.deceased) before the window ended is left out
//!   of KPIs 7–10": died on or before day N (and on or before `as_of`) → EXCLUDED.
//! * **Unknown is not "no"** (§1.4): a KPI is UNKNOWN when the record holds a relevant item it
//!   cannot date or whose status is unknown, or when the source of the answer is absent
//!   altogether (no exercise value set configured; no Encounter at all for the patient).

use chrono::NaiveDate;

use super::index::IndexFracture;
use super::{Item, ItemKind, KpiResult, KpiStatus, Standing, FALLS_RISK_DEFAULT};
use crate::config::{Config, SiteCode};
use crate::engine::{evaluate as evaluate_rules, visible_at};
use crate::facts::therapy::route_of;
use crate::finding::FindingCode;
use crate::model::{
    add_days, days, DispenseStatus, ImagingStudyStatus, Ingredient, MedicationRecord,
    MedicationSource, MedicationStatus, Observation, ObservationKind, PatientRecord, ProcedureKind,
    ProcedureStatus, Route,
};
use crate::thresholds::{
    KPI_ASSESSMENT_WINDOW_DAYS, KPI_DENOSUMAB_LOOKBACK_DAYS, KPI_FOLLOW_UP_WINDOW_DAYS,
    KPI_FRAX_MAX_PERCENT, KPI_FRAX_MIN_PERCENT, KPI_MONITORED_FIRST_DAY, KPI_ONE_YEAR_DAY,
    KPI_ZOLEDRONATE_LOOKBACK_DAYS,
};
use crate::tri::Tri;

/// What a KPI function reads.
pub struct KpiInput<'a> {
    /// The record as visible on `as_of`.
    pub record: &'a PatientRecord,
    pub items: &'a [Item],
    pub index: &'a IndexFracture,
    pub as_of: NaiveDate,
    pub config: &'a Config,
    /// The patient died on a date the record does not give (`deceasedBoolean`).
    pub death_undated: bool,
}

impl KpiInput<'_> {
    /// Whether `d` lies in days `from..=to` after day 0.
    fn in_days(&self, d: NaiveDate, from: i64, to: i64) -> bool {
        let n = days(self.index.onset, d);
        from <= n && n <= to
    }
}

/// A KPI function's answer before the pending / deceased rules.
pub struct Answer {
    pub value: Tri,
    pub evidence: Vec<String>,
    pub reason: String,
}

/// One row of the §13 table.
pub struct KpiDef {
    pub number: u8,
    pub title: &'static str,
    /// The §13 row, quoted.
    pub spec: &'static str,
    /// The window's last day (day N after the index); `None` = the period itself (KPIs 1, 2).
    pub window_end_day: Option<i64>,
    /// Whether the §13 deceased rule applies (KPIs 7–10).
    pub deceased_rule: bool,
    /// A count rather than a proportion (KPI 1): reported without a level.
    pub is_count: bool,
    pub read: fn(&KpiInput<'_>) -> Answer,
}

/// The §13 table, KPIs 1–10.
pub const KPIS: [KpiDef; 10] = [
    KpiDef {
        number: 1,
        title: "Identification, non-spinal",
        spec: "number of index fractures that are non-vertebral (a count; the expected caseload is a site setting, optional) | period | 10.3a codes",
        window_end_day: None,
        deceased_rule: false,
        is_count: true,
        read: kpi1_non_spinal,
    },
    KpiDef {
        number: 2,
        title: "Identification, spine",
        spec: "proportion of index fractures that are vertebral | period | 7.2 codes, levels or not",
        window_end_day: None,
        deceased_rule: false,
        is_count: false,
        read: kpi2_spine,
    },
    KpiDef {
        number: 3,
        title: "Fracture-risk assessment",
        spec: "FRAX (3.4) or DXA (6) recorded | day 0–84 | Observation dates",
        window_end_day: Some(KPI_ASSESSMENT_WINDOW_DAYS),
        deceased_rule: false,
        is_count: false,
        read: kpi3_risk_assessment,
    },
    KpiDef {
        number: 4,
        title: "DXA",
        spec: "DXA recorded (or a DXA Procedure/ImagingStudy) | day 0–84 | 10.2/10.3 codes",
        window_end_day: Some(KPI_ASSESSMENT_WINDOW_DAYS),
        deceased_rule: false,
        is_count: false,
        read: kpi4_dxa,
    },
    KpiDef {
        number: 5,
        title: "Falls-risk assessment",
        spec: "a falls-risk assessment recorded (SNOMED 414191008 \"fall risk assessment\" — UNVERIFIED code; or an Observation/Procedure whose code a site maps in configuration) | day 0–112 | site-mappable value set",
        window_end_day: Some(KPI_FOLLOW_UP_WINDOW_DAYS),
        deceased_rule: false,
        is_count: false,
        read: kpi5_falls_risk,
    },
    KpiDef {
        number: 6,
        title: "Anti-osteoporosis medication recommended",
        spec: "an AOM order (MedicationRequest any status but entered-in-error, 4.3 agents) authored, or osteoguard's `osteoporosis-treatment-indicated` / `denosumab-*` finding raised | day 0–112 | 10.1",
        window_end_day: Some(KPI_FOLLOW_UP_WINDOW_DAYS),
        deceased_rule: false,
        is_count: false,
        read: kpi6_aom_recommended,
    },
    KpiDef {
        number: 7,
        title: "Strength and balance exercise started",
        spec: "a referral/procedure for exercise or physiotherapy (site-mapped value set; none by default → UNKNOWN) | day 0–112 | site-mappable",
        window_end_day: Some(KPI_FOLLOW_UP_WINDOW_DAYS),
        deceased_rule: true,
        is_count: false,
        read: kpi7_exercise,
    },
    KpiDef {
        number: 8,
        title: "Monitored",
        spec: "any contact after the index: an Encounter (any class) or a follow-up observation | day 1–112 | Encounter dates",
        window_end_day: Some(KPI_FOLLOW_UP_WINDOW_DAYS),
        deceased_rule: true,
        is_count: false,
        read: kpi8_monitored,
    },
    KpiDef {
        number: 9,
        title: "Anti-osteoporosis medication started",
        spec: "first AOM dose given or dispensed (MedicationAdministration/MedicationDispense), or an active oral AOM order with start in the window | day 0–112 | 4.3",
        window_end_day: Some(KPI_FOLLOW_UP_WINDOW_DAYS),
        deceased_rule: true,
        is_count: false,
        read: kpi9_aom_started,
    },
    KpiDef {
        number: 10,
        title: "Anti-osteoporosis medication at one year",
        spec: "active AOM (4.3) on day 364, or a denosumab dose within the 7 months before it, or zoledronate within 12 months before it | day 364 | 4.3, 5.1",
        window_end_day: Some(KPI_ONE_YEAR_DAY),
        deceased_rule: true,
        is_count: false,
        read: kpi10_aom_one_year,
    },
];

/// The row of KPI `n` (1–10).
pub fn def(n: u8) -> Option<&'static KpiDef> {
    KPIS.iter().find(|k| k.number == n)
}

/// Applies the deceased and pending rules, then the row's reading.
pub fn evaluate(input: &KpiInput<'_>, table: &[KpiDef]) -> Vec<KpiResult> {
    table
        .iter()
        .map(|k| {
            if let Some(end_day) = k.window_end_day {
                let end = add_days(input.index.onset, end_day);
                if let Some(died) = input.index.deceased {
                    if k.deceased_rule && died <= end && died <= input.as_of {
                        return KpiResult {
                            kpi: k.number,
                            status: KpiStatus::Excluded,
                            evidence: vec![],
                            reason: format!(
                                "died on {died}, before the window ended (day {end_day}, {end})"
                            ),
                        };
                    }
                }
                if input.as_of <= end {
                    return KpiResult {
                        kpi: k.number,
                        status: KpiStatus::Pending,
                        evidence: vec![],
                        reason: format!(
                            "window ends on day {end_day} ({end}), after the as-of date"
                        ),
                    };
                }
            }
            let mut a = (k.read)(input);
            if k.deceased_rule && input.death_undated && a.value != Tri::True {
                // §13 deceased rule with no death date: the patient may have died before the
                // window ended (excluded) or after (the answer stands) — UNKNOWN, never FALSE.
                a.value = Tri::Unknown;
                a.reason = format!(
                    "{}; the patient died on a date the record does not give, possibly before the window ended",
                    a.reason
                );
            }
            KpiResult {
                kpi: k.number,
                status: match a.value {
                    Tri::True => KpiStatus::True,
                    Tri::False => KpiStatus::False,
                    Tri::Unknown => KpiStatus::Unknown,
                },
                evidence: a.evidence,
                reason: a.reason,
            }
        })
        .collect()
}

/// TRUE with the evidence found, else UNKNOWN when undated candidates exist, else FALSE.
fn decide(found: Vec<String>, undated: Vec<String>, yes: &str, no: &str) -> Answer {
    if !found.is_empty() {
        Answer {
            value: Tri::True,
            evidence: found,
            reason: yes.to_string(),
        }
    } else if !undated.is_empty() {
        Answer {
            value: Tri::Unknown,
            evidence: undated,
            reason: format!("{no}, but relevant items have no usable date or status"),
        }
    } else {
        Answer {
            value: Tri::False,
            evidence: vec![],
            reason: no.to_string(),
        }
    }
}

fn kpi1_non_spinal(i: &KpiInput<'_>) -> Answer {
    Answer {
        value: Tri::from_bool(!i.index.vertebral),
        evidence: vec![i.index.source.clone()],
        reason: if i.index.vertebral {
            "the index fracture is vertebral".into()
        } else {
            "the index fracture is non-vertebral".into()
        },
    }
}

fn kpi2_spine(i: &KpiInput<'_>) -> Answer {
    Answer {
        value: Tri::from_bool(i.index.vertebral),
        evidence: vec![i.index.source.clone()],
        reason: if i.index.vertebral {
            "the index fracture is vertebral".into()
        } else {
            "the index fracture is non-vertebral".into()
        },
    }
}

/// Observations of `kinds`, completed DXA procedures and DXA ImagingStudies (status available
/// or registered: the study exists; status unknown → UNKNOWN), dated in days `0..=to`.
fn observed(i: &KpiInput<'_>, kinds: fn(ObservationKind) -> bool, to: i64) -> Answer {
    let mut found = Vec::new();
    let mut undated = Vec::new();
    for o in i.record.observations.iter() {
        if !kinds(o.kind) || !o.status.is_usable() || !usable_value(o) {
            continue;
        }
        match o.date() {
            Some(d) if i.in_days(d, 0, to) => found.push(o.source.to_string()),
            Some(_) => {}
            None => undated.push(o.source.to_string()),
        }
    }
    for p in i.record.procedures.iter() {
        if p.kind != ProcedureKind::Dxa || p.status != ProcedureStatus::Completed {
            continue;
        }
        match p.date() {
            Some(d) if i.in_days(d, 0, to) => found.push(p.source.to_string()),
            Some(_) => {}
            None => undated.push(p.source.to_string()),
        }
    }
    for s in i.record.imaging_studies.iter() {
        let unknown = match s.status {
            ImagingStudyStatus::Available | ImagingStudyStatus::Registered => false,
            // status unknown: UNKNOWN when dated in the window or undated; one dated outside the
            // window cannot make the window's answer
            ImagingStudyStatus::Unknown => true,
            ImagingStudyStatus::Cancelled | ImagingStudyStatus::EnteredInError => continue,
        };
        Filed {
            found: &mut found,
            undated: &mut undated,
        }
        .file(
            i,
            s.source.as_str(),
            s.date(),
            counts_unless(unknown),
            0,
            to,
        );
    }
    decide(
        found,
        undated,
        &format!("recorded within day 0–{to}"),
        &format!("none recorded within day 0–{to}"),
    )
}

/// §3.4: a FRAX value outside 0–100 % (after the reader's unit conversion), or none, is
/// ignored — it is not a FRAX (§13 KPI 3 "FRAX (3.4)"). Other kinds: any recorded result.
fn usable_value(o: &Observation) -> bool {
    match o.kind {
        ObservationKind::FraxMof | ObservationKind::FraxHip => o
            .value
            .is_some_and(|v| (KPI_FRAX_MIN_PERCENT..=KPI_FRAX_MAX_PERCENT).contains(&v)),
        _ => true,
    }
}

fn is_dxa(k: ObservationKind) -> bool {
    matches!(
        k,
        ObservationKind::TScore(_) | ObservationKind::ZScore(_) | ObservationKind::Bmd(_)
    )
}

fn kpi3_risk_assessment(i: &KpiInput<'_>) -> Answer {
    fn frax_or_dxa(k: ObservationKind) -> bool {
        is_dxa(k) || matches!(k, ObservationKind::FraxMof | ObservationKind::FraxHip)
    }
    observed(i, frax_or_dxa, KPI_ASSESSMENT_WINDOW_DAYS)
}

fn kpi4_dxa(i: &KpiInput<'_>) -> Answer {
    observed(i, is_dxa, KPI_ASSESSMENT_WINDOW_DAYS)
}

/// Where a record dated `date` goes for a window of days `from..=to`: under `found` when it
/// counts and is dated in the window; under `undated` when it has no date, or when its status is
/// unknown (§1.4: it may have happened) and it is dated in the window; nowhere when it is void
/// or dated outside the window (it cannot make the window's answer).
struct Filed<'v> {
    found: &'v mut Vec<String>,
    undated: &'v mut Vec<String>,
}

impl Filed<'_> {
    fn file(
        &mut self,
        i: &KpiInput<'_>,
        source: &str,
        date: Option<NaiveDate>,
        standing: Standing,
        from: i64,
        to: i64,
    ) {
        let in_window = date.map(|d| i.in_days(d, from, to));
        match (standing, in_window) {
            (Standing::Void, _) | (_, Some(false)) => {}
            (Standing::Counts, Some(true)) => self.found.push(source.to_string()),
            (Standing::Unknown, _) | (Standing::Counts, None) => {
                self.undated.push(source.to_string())
            }
        }
    }
}

/// Files an item (its date and [`Item::standing`]) for days `from..=to`.
fn sort_item(
    i: &KpiInput<'_>,
    it: &Item,
    from: i64,
    to: i64,
    found: &mut Vec<String>,
    undated: &mut Vec<String>,
) {
    Filed { found, undated }.file(i, &it.source, it.date, it.standing(), from, to);
}

/// [`Standing::Unknown`] when `unknown`, else [`Standing::Counts`].
fn counts_unless(unknown: bool) -> Standing {
    if unknown {
        Standing::Unknown
    } else {
        Standing::Counts
    }
}

/// Items of `kinds` coded in `set`, dated in days `from..=to`.
fn coded(i: &KpiInput<'_>, kinds: &[ItemKind], set: &[SiteCode], from: i64, to: i64) -> Answer {
    let mut found = Vec::new();
    let mut undated = Vec::new();
    for it in i.items {
        if !kinds.contains(&it.kind) || !it.coded_in(set) {
            continue;
        }
        sort_item(i, it, from, to, &mut found, &mut undated);
    }
    decide(
        found,
        undated,
        &format!("recorded within day {from}–{to}"),
        &format!("none recorded within day {from}–{to}"),
    )
}

/// KPI 5's value set: the default code plus the site's.
pub fn falls_risk_codes(config: &Config) -> Vec<SiteCode> {
    let mut set = vec![SiteCode {
        system: FALLS_RISK_DEFAULT.0.to_string(),
        code: FALLS_RISK_DEFAULT.1.to_string(),
    }];
    set.extend(config.programme.falls_risk.iter().cloned());
    set.sort();
    set.dedup();
    set
}

fn kpi5_falls_risk(i: &KpiInput<'_>) -> Answer {
    coded(
        i,
        &[ItemKind::Observation, ItemKind::Procedure],
        &falls_risk_codes(i.config),
        0,
        KPI_FOLLOW_UP_WINDOW_DAYS,
    )
}

/// The finding codes that count as "AOM recommended" (KPI 6).
fn recommends_aom(code: FindingCode) -> bool {
    code == FindingCode::OsteoporosisTreatmentIndicated || code.as_str().starts_with("denosumab-")
}

fn kpi6_aom_recommended(i: &KpiInput<'_>) -> Answer {
    let to = KPI_FOLLOW_UP_WINDOW_DAYS;
    let mut found = Vec::new();
    let mut undated = Vec::new();
    for m in i.record.medications.iter() {
        if m.kind != MedicationSource::Request
            || m.status == MedicationStatus::EnteredInError
            || !m.ingredients.iter().any(|g| g.is_osteoporosis_agent())
        {
            continue;
        }
        match m.authored.or(m.visible) {
            Some(d) if i.in_days(d, 0, to) => found.push(m.source.to_string()),
            Some(_) => {}
            None => undated.push(m.source.to_string()),
        }
    }
    // osteoguard's own findings, evaluated on day 0, on each day the record changed within the
    // window, and on the window's last day (the window has ended: `as_of` is after it).
    let end = add_days(i.index.onset, to);
    let mut dates: Vec<NaiveDate> = vec![i.index.onset, end];
    dates.extend(
        i.record
            .medications
            .iter()
            .filter_map(|m| m.visible)
            .chain(i.record.observations.iter().filter_map(|o| o.visible))
            .chain(i.record.conditions.iter().filter_map(|c| c.visible))
            .chain(i.record.procedures.iter().filter_map(|p| p.date()))
            .filter(|d| i.in_days(*d, 0, to)),
    );
    dates.sort();
    dates.dedup();
    for d in dates {
        let ev = evaluate_rules(&visible_at(i.record, d), d, i.config);
        let mut codes: Vec<&str> = ev
            .outcome
            .findings
            .iter()
            .filter(|f| recommends_aom(f.code))
            .map(|f| f.code.as_str())
            .collect();
        codes.sort();
        codes.dedup();
        found.extend(codes.into_iter().map(|c| format!("finding:{c}@{d}")));
        if !found.is_empty() {
            break;
        }
    }
    decide(
        found,
        undated,
        &format!("an AOM order or an osteoguard treatment finding within day 0–{to}"),
        &format!("no AOM order and no osteoguard treatment finding within day 0–{to}"),
    )
}

fn kpi7_exercise(i: &KpiInput<'_>) -> Answer {
    let set = &i.config.programme.exercise;
    if set.is_empty() {
        return Answer {
            value: Tri::Unknown,
            evidence: vec![],
            reason:
                "no exercise / physiotherapy value set is configured ([programme] exercise_codes)"
                    .into(),
        };
    }
    coded(
        i,
        &[ItemKind::ServiceRequest, ItemKind::Procedure],
        set,
        0,
        KPI_FOLLOW_UP_WINDOW_DAYS,
    )
}

fn kpi8_monitored(i: &KpiInput<'_>) -> Answer {
    let (from, to) = (KPI_MONITORED_FIRST_DAY, KPI_FOLLOW_UP_WINDOW_DAYS);
    let mut found = Vec::new();
    let mut undated = Vec::new();
    for it in i.items {
        if !matches!(it.kind, ItemKind::Encounter | ItemKind::Observation) {
            continue;
        }
        sort_item(i, it, from, to, &mut found, &mut undated);
    }
    for o in i.record.observations.iter() {
        if let Some(d) = o.date() {
            if o.status.is_usable() && i.in_days(d, from, to) {
                found.push(o.source.to_string());
            }
        }
    }
    found.sort();
    found.dedup();
    let mut a = decide(
        found,
        undated,
        &format!("a contact within day {from}–{to}"),
        &format!("no Encounter or observation within day {from}–{to}"),
    );
    if a.value == Tri::False && !i.items.iter().any(|it| it.kind == ItemKind::Encounter) {
        a.value = Tri::Unknown;
        a.reason =
            "the input holds no Encounter for this patient at all: contacts cannot be told".into();
    }
    a
}

/// An oral anti-osteoporosis agent (§4.3): alendronate, risedronate, raloxifene, ibandronate
/// unless intravenous.
fn is_oral_aom(m: &MedicationRecord) -> bool {
    m.ingredients.iter().any(|g| match g {
        Ingredient::Alendronate | Ingredient::Risedronate | Ingredient::Raloxifene => true,
        Ingredient::Ibandronate => route_of(m) != Route::Intravenous,
        _ => false,
    })
}

fn kpi9_aom_started(i: &KpiInput<'_>) -> Answer {
    let to = KPI_FOLLOW_UP_WINDOW_DAYS;
    let mut found = Vec::new();
    let mut undated = Vec::new();
    for m in i.record.medications.iter() {
        if !m.ingredients.iter().any(|g| g.is_osteoporosis_agent()) {
            continue;
        }
        let order_start = || {
            m.dosages
                .iter()
                .filter_map(|l| l.bounds.and_then(|b| b.start))
                .min()
                .or(m.authored)
        };
        // A dose given, or an active oral order starting, in the window → TRUE. The same with
        // status unknown (an administration that may have been given, an oral order or
        // statement that may be active) → UNKNOWN (§1.4), but only when it is dated in the
        // window or undated: one dated outside cannot make the window's answer.
        let (date, unknown) = match (m.kind, m.status) {
            (MedicationSource::Administration, MedicationStatus::Completed) => {
                (m.administration_date(), false)
            }
            (MedicationSource::Administration, MedicationStatus::Unknown) => {
                (m.administration_date(), true)
            }
            (MedicationSource::Request, MedicationStatus::Active) if is_oral_aom(m) => {
                (order_start(), false)
            }
            (
                MedicationSource::Request | MedicationSource::Statement,
                MedicationStatus::Unknown,
            ) if is_oral_aom(m) => (order_start().or(m.visible), true),
            _ => continue,
        };
        Filed {
            found: &mut found,
            undated: &mut undated,
        }
        .file(i, m.source.as_str(), date, counts_unless(unknown), 0, to);
    }
    // Dispensed: a completed MedicationDispense, dated whenHandedOver, else whenPrepared
    // (`MedicationDispense::date`); status unknown or no date → UNKNOWN. Not yet handed over
    // (preparation, in-progress, on-hold) or not dispensed (cancelled, declined, stopped,
    // entered-in-error): not a dispense.
    for m in i.record.dispenses.iter() {
        if !m.ingredients.iter().any(|g| g.is_osteoporosis_agent()) {
            continue;
        }
        let unknown = match m.status {
            DispenseStatus::Completed => false,
            // status unknown: it may have been handed over — UNKNOWN when dated in the window
            // or undated; one dated outside the window cannot make the window's answer
            DispenseStatus::Unknown => true,
            _ => continue,
        };
        Filed {
            found: &mut found,
            undated: &mut undated,
        }
        .file(
            i,
            m.source.as_str(),
            m.date(),
            counts_unless(unknown),
            0,
            to,
        );
    }
    decide(
        found,
        undated,
        &format!(
            "an AOM dose given or dispensed, or an active oral AOM order starting, within day 0–{to}"
        ),
        &format!(
            "no AOM dose given or dispensed and no active oral AOM order starting within day 0–{to}"
        ),
    )
}

fn kpi10_aom_one_year(i: &KpiInput<'_>) -> Answer {
    let day = add_days(i.index.onset, KPI_ONE_YEAR_DAY);
    let ev = evaluate_rules(&visible_at(i.record, day), day, i.config);
    let mut found: Vec<String> = ev
        .facts
        .therapy
        .active_agents
        .iter()
        .map(|a| a.source.to_string())
        .collect();
    // §1.2: "7 months" and "12 months" are fixed day counts (thresholds.rs), never calendar
    // months.
    let dmab_from = add_days(day, -KPI_DENOSUMAB_LOOKBACK_DAYS);
    let zol_from = add_days(day, -KPI_ZOLEDRONATE_LOOKBACK_DAYS);
    found.extend(
        ev.facts
            .therapy
            .denosumab_doses
            .iter()
            .filter(|(d, _)| dmab_from <= *d && *d <= day)
            .map(|(_, s)| s.to_string()),
    );
    // An administration in a lookback whose status is unknown may be a dose (§1.4, §4.3 "if
    // therapy status cannot be determined → UNKNOWN"): never "no".
    let mut unknown_dose = Vec::new();
    for m in i.record.medications.iter() {
        if m.kind != MedicationSource::Administration {
            continue;
        }
        let from = if m.has(Ingredient::ZoledronicAcid) {
            zol_from
        } else if m.has(Ingredient::Denosumab) {
            dmab_from
        } else {
            continue;
        };
        let Some(d) = m.administration_date() else {
            continue;
        };
        if !(from <= d && d <= day) {
            continue;
        }
        match m.status {
            MedicationStatus::Completed if m.has(Ingredient::ZoledronicAcid) => {
                found.push(m.source.to_string())
            }
            MedicationStatus::Unknown => unknown_dose.push(m.source.to_string()),
            _ => {}
        }
    }
    found.sort();
    found.dedup();
    // An order or statement of unknown status whose stated end (every dosage's bounds) is
    // before day 364 cannot concern day 364, whatever its status (§4.3 "covering as_of").
    let ended_before = |source: &str| {
        i.record.medications.iter().any(|m| {
            m.source.as_str() == source
                && !m.dosages.is_empty()
                && m.dosages
                    .iter()
                    .all(|l| l.bounds.and_then(|b| b.end).is_some_and(|end| end < day))
        })
    };
    let mut undated: Vec<String> = if ev.facts.therapy.active == Tri::Unknown {
        ev.facts
            .therapy
            .unknown_status
            .iter()
            .chain(&ev.facts.therapy.unknown_fill_span)
            .map(|s| s.to_string())
            .filter(|s| !ended_before(s))
            .collect()
    } else {
        Vec::new()
    };
    undated.extend(unknown_dose);
    let mut a = decide(
        found,
        undated,
        &format!("anti-osteoporosis therapy active on day {KPI_ONE_YEAR_DAY} ({day})"),
        &format!("no anti-osteoporosis therapy active on day {KPI_ONE_YEAR_DAY} ({day})"),
    );
    if a.value == Tri::Unknown {
        a.reason = format!(
            "therapy on day {KPI_ONE_YEAR_DAY} ({day}) is unknown: an order, statement or dispense has status unknown, or a recent fill has no days' supply"
        );
    }
    a
}
