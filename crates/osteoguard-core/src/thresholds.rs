//! Every clinical threshold of osteoguard, in one auditable table.
//!
//! Each row names the constant the rules read, its default, unit, allowed range, the
//! knowledge.md section and guideline it comes from, and whether a site may override it
//! (only thresholds the specification marks as configurable, a convention, or UNVERIFIED).
//! The [`Thresholds`] struct, its defaults, the rule catalogue and the configuration
//! validator are all generated from this one table, so they cannot disagree.

use serde::Serialize;

/// The type of a threshold value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ThresholdValue {
    Days(i64),
    Number(f64),
}

impl ThresholdValue {
    pub fn as_f64(self) -> f64 {
        match self {
            ThresholdValue::Days(d) => d as f64,
            ThresholdValue::Number(n) => n,
        }
    }
}

impl std::fmt::Display for ThresholdValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ThresholdValue::Days(d) => write!(f, "{d}"),
            ThresholdValue::Number(n) => write!(f, "{n}"),
        }
    }
}

/// One row of the threshold table, as shown to a governance committee.
#[derive(Debug, Clone, Serialize)]
pub struct ThresholdSpec {
    /// Configuration key, `group.name` (a TOML table and key).
    pub key: &'static str,
    pub default: ThresholdValue,
    pub unit: &'static str,
    pub min: f64,
    pub max: f64,
    /// knowledge.md section.
    pub section: &'static str,
    /// Guideline tag of knowledge.md §1.8, with its verification state.
    pub source: &'static str,
    /// May a site override it?
    pub configurable: bool,
    pub meaning: &'static str,
    /// Finding codes whose rules read it.
    pub used_by: &'static [&'static str],
}

trait FromThreshold: Sized {
    fn from_value(v: ThresholdValue) -> Self;
    fn to_value(self) -> ThresholdValue;
    fn is_days() -> bool;
}
impl FromThreshold for i64 {
    fn from_value(v: ThresholdValue) -> Self {
        match v {
            ThresholdValue::Days(d) => d,
            ThresholdValue::Number(n) => n as i64,
        }
    }
    fn to_value(self) -> ThresholdValue {
        ThresholdValue::Days(self)
    }
    fn is_days() -> bool {
        true
    }
}
impl FromThreshold for f64 {
    fn from_value(v: ThresholdValue) -> Self {
        v.as_f64()
    }
    fn to_value(self) -> ThresholdValue {
        ThresholdValue::Number(self)
    }
    fn is_days() -> bool {
        false
    }
}

macro_rules! threshold_table {
    ($( $field:ident : $ty:ident = $default:expr ; key $key:literal ; unit $unit:literal ;
        range $min:literal ..= $max:literal ; $section:literal ; $source:literal ;
        configurable $conf:literal ; used_by [$($used:literal),*] ; $meaning:literal ; )*) => {
        /// The effective thresholds of one evaluation (defaults, possibly overridden by a site).
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct Thresholds {
            $( #[doc = $meaning] pub $field: $ty, )*
        }

        /// Named default constants, for tests and documentation.
        pub mod defaults {
            $( #[doc = $meaning] #[allow(non_upper_case_globals)] pub const $field: $ty = $default; )*
        }

        impl Default for Thresholds {
            fn default() -> Self {
                Thresholds { $( $field: defaults::$field, )* }
            }
        }

        /// The table itself, in source order.
        pub const TABLE: &[ThresholdSpec] = &[
            $( ThresholdSpec {
                key: $key,
                default: threshold_default!($ty, $default),
                unit: $unit,
                min: $min as f64,
                max: $max as f64,
                section: $section,
                source: $source,
                configurable: $conf,
                meaning: $meaning,
                used_by: &[$($used),*],
            }, )*
        ];

        impl Thresholds {
            /// The current value of a key, or `None` for an unknown key.
            pub fn get(&self, key: &str) -> Option<ThresholdValue> {
                match key {
                    $( $key => Some(FromThreshold::to_value(self.$field)), )*
                    _ => None,
                }
            }

            /// Whether the key holds whole days (integers).
            pub fn is_days(key: &str) -> Option<bool> {
                match key {
                    $( $key => Some(<$ty as FromThreshold>::is_days()), )*
                    _ => None,
                }
            }

            /// Sets a key without validation (validation lives in [`crate::config`]).
            pub(crate) fn set_unchecked(&mut self, key: &str, v: ThresholdValue) -> bool {
                match key {
                    $( $key => { self.$field = <$ty as FromThreshold>::from_value(v); true } )*
                    _ => false,
                }
            }
        }
    };
}

macro_rules! threshold_default {
    (i64, $d:expr) => {
        ThresholdValue::Days($d)
    };
    (f64, $d:expr) => {
        ThresholdValue::Number($d)
    };
}

threshold_table! {
    // ---- §1.6 medication exposure conventions -------------------------------------------------
    stopped_order_default_days: i64 = 30; key "exposure.stopped_order_default_days"; unit "days";
        range 1 ..= 365; "§1.6"; "engine convention (v0.10)"; configurable true; used_by ["gc-bone-protection"];
        "Span of a stopped/completed MedicationRequest with no recorded end";
    // ---- §2 glucocorticoid exposure ---------------------------------------------------------------
    gc_scope_min_peq_mg: f64 = 2.5; key "glucocorticoid.scope_min_peq_mg_per_day"; unit "mg PEq/day";
        range 0 ..= 100; "§2.6"; "ACR-2022 (verified)"; configurable false; used_by ["gc-bone-protection", "gc-fracture-risk-assessment-due"];
        "Minimum current prednisone-equivalent dose for GIOP rules";
    gc_scope_min_days: i64 = 90; key "glucocorticoid.scope_min_days"; unit "days";
        range 1 ..= 365; "§2.6"; "ACR-2022 (verified: >3 months)"; configurable false; used_by ["gc-bone-protection", "gc-fracture-risk-assessment-due"];
        "Exposure must last more than this many days";
    gc_gap_bridge_days: i64 = 7; key "glucocorticoid.gap_bridge_days"; unit "days";
        range 0 ..= 60; "§2.5"; "engine convention"; configurable true; used_by ["gc-bone-protection"];
        "Gaps up to this many days do not break a continuous course; also the presence window";
    gc_high_dose_peq_mg: f64 = 7.5; key "glucocorticoid.high_dose_peq_mg_per_day"; unit "mg PEq/day";
        range 0 ..= 100; "§2.7, §3.3, §12.4"; "KANIS-2011 / ACR-2017 (> 7.5)"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "Above this dose FRAX is adjusted upward";
    gc_very_high_daily_mg: f64 = 30.0; key "glucocorticoid.very_high_daily_peq_mg"; unit "mg PEq/day";
        range 0 ..= 1000; "§2.7"; "ACR-2022"; configurable false; used_by ["anabolic-therapy-preferred"];
        "Very-high-dose day threshold";
    gc_very_high_days: i64 = 30; key "glucocorticoid.very_high_days"; unit "days";
        range 1 ..= 365; "§2.7"; "ACR-2022 (> 30 days)"; configurable false; used_by ["anabolic-therapy-preferred"];
        "More than this many very-high-dose days in 365 makes risk very high";
    gc_very_high_cumulative_g: f64 = 5.0; key "glucocorticoid.very_high_cumulative_g_per_year"; unit "g PEq";
        range 0 ..= 100; "§2.7"; "ACR-2022"; configurable false; used_by ["anabolic-therapy-preferred"];
        "Cumulative dose in 365 days that makes risk very high";
    gc_young_continuing_mg: f64 = 7.5; key "glucocorticoid.young_continuing_peq_mg"; unit "mg PEq/day";
        range 0 ..= 100; "§3.2 B2"; "ACR-2022 (<40 y)"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "Continuing dose for the under-40 moderate row";
    gc_young_continuing_days: i64 = 182; key "glucocorticoid.young_continuing_days"; unit "days";
        range 1 ..= 730; "§3.2 B2"; "ACR-2022 (≥6 months)"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "Duration for the under-40 moderate row";
    gc_physiologic_max_peq_mg: f64 = 7.5; key "glucocorticoid.physiologic_replacement_max_peq_mg"; unit "mg PEq/day";
        range 0 ..= 30; "§2.5, §2.8"; "Endocrine Society 2016 (UNVERIFIED)"; configurable true; used_by ["gc-bone-protection"];
        "Upper bound of physiological replacement in adrenal insufficiency";
    depot_triamcinolone_spread_days: i64 = 21; key "glucocorticoid.depot_spread_days"; unit "days";
        range 1 ..= 90; "§2.4, §12.7"; "engine convention (UNVERIFIED)"; configurable true; used_by ["gc-bone-protection"];
        "IM triamcinolone depot is spread over this many days";
    gc_unknown_dose_lookback_days: i64 = 365; key "glucocorticoid.unknown_dose_lookback_days"; unit "days";
        range 1 ..= 3650; "§9 data-insufficient (1)"; "engine convention (v0.10)"; configurable false; used_by ["data-insufficient"];
        "A GC record with unknown dose this recent is reported";
    gc_exposure_window_days: i64 = 365; key "glucocorticoid.exposure_window_days"; unit "days";
        range 365 ..= 365; "§2.5, §2.7"; "ACR-2022 (≥ 5 g in 1 year; > 30 days at ≥ 30 mg)"; configurable false; used_by ["osteoporosis-treatment-indicated", "anabolic-therapy-preferred"];
        "Window of days_ge_30_last365 and cumulative_g_last365";
    // ---- §3 fracture risk ---------------------------------------------------------------------------
    adult_min_age: i64 = 18; key "risk.adult_min_age_years"; unit "years";
        range 0 ..= 30; "§3.5"; "ACR-2022"; configurable false; used_by ["gc-bone-protection"];
        "No category under this age";
    frax_min_age: i64 = 40; key "risk.frax_min_age_years"; unit "years";
        range 18 ..= 60; "§3.2"; "ACR-2022"; configurable false; used_by ["gc-fracture-risk-assessment-due"];
        "FRAX-based table from this age";
    t_very_high: f64 = -3.5; key "risk.t_score_very_high"; unit "SD";
        range -6 ..= 0; "§3.2 A1"; "ACR-2022 (secondary reproduction)"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "T-score at or below which risk is very high";
    t_high: f64 = -2.5; key "risk.t_score_high"; unit "SD";
        range -6 ..= 0; "§3.2 A2, §6.1"; "ACR-2022; WHO-1994"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "T-score at or below which risk is high (osteoporosis)";
    t_moderate: f64 = -1.0; key "risk.t_score_moderate"; unit "SD";
        range -6 ..= 0; "§3.2 A3, §6.1"; "ACR-2022; WHO-1994"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "T-score at or below which risk is moderate (low bone mass)";
    frax_mof_very_high: f64 = 30.0; key "risk.frax_mof_very_high_pct"; unit "%";
        range 0 ..= 100; "§3.2 A1"; "ACR-2022"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "GC-adjusted FRAX MOF very-high threshold";
    frax_hip_very_high: f64 = 4.5; key "risk.frax_hip_very_high_pct"; unit "%";
        range 0 ..= 100; "§3.2 A1"; "ACR-2022"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "GC-adjusted FRAX hip very-high threshold";
    frax_mof_high: f64 = 20.0; key "risk.frax_mof_high_pct"; unit "%";
        range 0 ..= 100; "§3.2 A2"; "ACR-2022"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "GC-adjusted FRAX MOF high threshold";
    frax_hip_high: f64 = 3.0; key "risk.frax_hip_high_pct"; unit "%";
        range 0 ..= 100; "§3.2 A2"; "ACR-2022"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "GC-adjusted FRAX hip high threshold";
    frax_mof_moderate: f64 = 10.0; key "risk.frax_mof_moderate_pct"; unit "%";
        range 0 ..= 100; "§3.2 A3"; "ACR-2022"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "GC-adjusted FRAX MOF moderate threshold";
    frax_hip_moderate: f64 = 1.0; key "risk.frax_hip_moderate_pct"; unit "%";
        range 0 ..= 100; "§3.2 A3"; "ACR-2022 (exactly 1.0 % counted moderate: conservative)"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "GC-adjusted FRAX hip moderate threshold";
    frax_mof_gc_multiplier: f64 = 1.15; key "risk.frax_mof_gc_multiplier"; unit "×";
        range 1 ..= 2; "§3.3"; "ACR-2017 / KANIS-2011 all ages"; configurable true; used_by ["osteoporosis-treatment-indicated"];
        "MOF multiplier when current dose > 7.5 mg PEq/day";
    frax_hip_gc_multiplier: f64 = 1.20; key "risk.frax_hip_gc_multiplier"; unit "×";
        range 1 ..= 2; "§3.3"; "ACR-2017 / KANIS-2011 all ages"; configurable true; used_by ["osteoporosis-treatment-indicated"];
        "Hip multiplier when current dose > 7.5 mg PEq/day";
    frax_max_age_days: i64 = 365; key "risk.frax_max_age_days"; unit "days";
        range 30 ..= 1095; "§3.4"; "ACR-2017/2022"; configurable true; used_by ["gc-fracture-risk-assessment-due"];
        "FRAX older than this is not used";
    young_z_threshold: f64 = -3.0; key "risk.young_z_score"; unit "SD";
        range -6 ..= 0; "§3.2 B2"; "ACR-2022 (<40 y)"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "Z-score below which a young adult on high dose is moderate risk";
    young_bmd_loss_interval_days: i64 = 400; key "risk.young_bmd_loss_interval_days"; unit "days";
        range 180 ..= 730; "§3.1"; "engine convention"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "Maximum DXA interval for 'BMD loss > LSC within 1 year'";
    // ---- §4 treatment ------------------------------------------------------------------------------
    zoledronate_active_days: i64 = 365; key "therapy.zoledronate_active_days"; unit "days";
        range 180 ..= 1095; "§4.3"; "RECLAST-PI schedule"; configurable true; used_by ["osteoporosis-treatment-indicated"];
        "Zoledronate counts as active this long after an infusion";
    ibandronate_iv_active_days: i64 = 120; key "therapy.ibandronate_iv_active_days"; unit "days";
        range 90 ..= 365; "§4.3"; "label schedule"; configurable true; used_by ["osteoporosis-treatment-indicated"];
        "IV ibandronate counts as active this long";
    oral_fill_grace_days: i64 = 30; key "therapy.oral_fill_grace_days"; unit "days";
        range 0 ..= 180; "§4.3"; "engine convention"; configurable true; used_by ["osteoporosis-treatment-indicated"];
        "Grace after the supply of an oral prescription ends";
    baseline_dxa_days: i64 = 182; key "assessment.baseline_dxa_days"; unit "days";
        range 30 ..= 365; "§4.4"; "ACR-2022 (within 6 months)"; configurable false; used_by ["gc-fracture-risk-assessment-due"];
        "Baseline DXA due within this many days of GC start";
    dxa_lookback_before_gc_days: i64 = 365; key "assessment.dxa_lookback_before_gc_days"; unit "days";
        range 0 ..= 1095; "§9 gc-fracture-risk-assessment-due (a)"; "engine convention"; configurable true; used_by ["gc-fracture-risk-assessment-due"];
        "A DXA this long before GC start counts as the baseline";
    dxa_repeat_days: i64 = 730; key "assessment.dxa_repeat_days"; unit "days";
        range 365 ..= 1095; "§4.4"; "ACR-2022 (1–2 y)"; configurable true; used_by ["gc-fracture-risk-assessment-due"];
        "Repeat DXA interval while on GC";
    anabolic_course_days: i64 = 730; key "therapy.anabolic_course_days"; unit "days";
        range 365 ..= 1095; "§9 anabolic-therapy-preferred"; "teriparatide label (24 months)"; configurable false; used_by ["anabolic-therapy-preferred"];
        "A completed anabolic course";
    anabolic_dmab_lookback_days: i64 = 730; key "therapy.anabolic_denosumab_lookback_days"; unit "days";
        range 0 ..= 1825; "§9 anabolic-therapy-preferred"; "engine convention"; configurable false; used_by ["anabolic-therapy-preferred"];
        "No anabolic suggestion within this long of a denosumab dose";
    treatment_b_min_age: i64 = 50; key "therapy.who_treatment_min_age_years"; unit "years";
        range 40 ..= 70; "§9 osteoporosis-treatment-indicated (b)"; "WHO-1994"; configurable false; used_by ["osteoporosis-treatment-indicated"];
        "Clause (b) applies from this age";
    planned_order_window_days: i64 = 90; key "safety.planned_order_window_days"; unit "days";
        range 7 ..= 365; "§8"; "engine convention (v0.10.1)"; configurable true; used_by ["zoledronate-renal-contraindication"];
        "An unfulfilled order older than this is stale, not planned";
    // ---- §5 denosumab ------------------------------------------------------------------------------
    dmab_due_days: i64 = 182; key "denosumab.due_days"; unit "days";
        range 150 ..= 200; "§5.1"; "PROLIA-PI (6 months)"; configurable false; used_by ["denosumab-due-soon"];
        "Next denosumab dose due this many days after the last";
    dmab_due_soon_start_days: i64 = 154; key "denosumab.due_soon_start_days"; unit "days";
        range 120 ..= 182; "§5.1"; "engine convention (4 weeks before due)"; configurable true; used_by ["denosumab-due-soon"];
        "Reminder window opens";
    dmab_grace_end_days: i64 = 210; key "denosumab.grace_end_days"; unit "days";
        range 182 ..= 294; "§5.1, §12.11"; "LYU-2020 (on time = within 4 weeks)"; configurable true; used_by ["denosumab-due-soon", "denosumab-overdue", "denosumab-discontinuation-without-transition", "osteoporosis-treatment-indicated"];
        "Last on-time day; overdue after it; also how long denosumab counts as active therapy (§4.3)";
    dmab_long_delay_days: i64 = 294; key "denosumab.long_delay_days"; unit "days";
        range 211 ..= 400; "§5.1, §12.11"; "LYU-2020 (> 16 weeks late)"; configurable true; used_by ["denosumab-overdue", "denosumab-discontinuation-without-transition"];
        "Beyond this, overdue is critical";
    dmab_distinct_dose_days: i64 = 60; key "denosumab.distinct_dose_days"; unit "days";
        range 1 ..= 120; "§5.1"; "engine convention"; configurable false; used_by ["denosumab-due-soon"];
        "Doses closer than this are one administration";
    dmab_oncology_min_mg: f64 = 100.0; key "denosumab.oncology_min_dose_mg"; unit "mg";
        range 61 ..= 120; "§5.1"; "PROLIA-PI 60 mg vs XGEVA 120 mg"; configurable false; used_by ["denosumab-due-soon", "denosumab-overdue"];
        "A denosumab dose at or above this is the oncology (Xgeva) regimen, excluded from the schedule";
    dmab_many_doses: i64 = 4; key "denosumab.critical_dose_count"; unit "doses";
        range 2 ..= 20; "§9 denosumab-discontinuation-without-transition"; "ECTS-2021"; configurable true; used_by ["denosumab-discontinuation-without-transition"];
        "At least this many doses makes stopping critical";
    rebound_window_start_days: i64 = 183; key "denosumab.rebound_window_start_days"; unit "days";
        range 150 ..= 365; "§5.5, §12.12"; "CUMMINGS-2018 (conservative opening)"; configurable true; used_by ["rebound-vertebral-fractures-suspected"];
        "Rebound window opens";
    rebound_window_end_days: i64 = 730; key "denosumab.rebound_window_end_days"; unit "days";
        range 365 ..= 1095; "§5.5, §12.12"; "engine convention"; configurable true; used_by ["rebound-vertebral-fractures-suspected"];
        "Rebound window closes";
    on_treatment_dxa_days: i64 = 30; key "denosumab.on_treatment_dxa_days"; unit "days";
        range 0 ..= 182; "§9 rebound-vertebral-fractures-suspected"; "engine convention (v0.10)"; configurable false; used_by ["rebound-vertebral-fractures-suspected"];
        "A DXA up to this long after the last dose is 'on treatment'";
    ctx_limit_ng_l: f64 = 280.0; key "denosumab.ctx_limit_ng_per_l"; unit "ng/L";
        range 50 ..= 1000; "§5.4, §12.10"; "ECTS-2021 monitoring literature (UNVERIFIED)"; configurable true; used_by ["post-denosumab-ctx-monitoring", "rebound-vertebral-fractures-suspected"];
        "CTX above min(lab upper limit, this) is elevated";
    ctx_first_due_days: i64 = 91; key "denosumab.ctx_first_due_days"; unit "days";
        range 30 ..= 182; "§5.3, §9"; "ECTS-2021 (UNVERIFIED detail)"; configurable true; used_by ["post-denosumab-ctx-monitoring"];
        "First CTX after zoledronate";
    ctx_second_due_days: i64 = 182; key "denosumab.ctx_second_due_days"; unit "days";
        range 91 ..= 365; "§5.3, §9"; "ECTS-2021 (UNVERIFIED detail)"; configurable true; used_by ["post-denosumab-ctx-monitoring"];
        "Second CTX after zoledronate";
    ctx_first_window_days: i64 = 77; key "denosumab.ctx_first_window_days"; unit "days";
        range 30 ..= 182; "§9 post-denosumab-ctx-monitoring"; "engine convention"; configurable true; used_by ["post-denosumab-ctx-monitoring"];
        "A CTX from this day counts as the first check";
    ctx_second_window_days: i64 = 168; key "denosumab.ctx_second_window_days"; unit "days";
        range 91 ..= 365; "§9 post-denosumab-ctx-monitoring"; "engine convention"; configurable true; used_by ["post-denosumab-ctx-monitoring"];
        "A CTX from this day counts as the second check";
    ctx_meaningful_after_days: i64 = 60; key "denosumab.ctx_meaningful_after_days"; unit "days";
        range 0 ..= 182; "§9 post-denosumab-ctx-monitoring"; "engine convention"; configurable true; used_by ["post-denosumab-ctx-monitoring"];
        "Only CTX later than this after zoledronate is judged";
    ctx_monitoring_span_days: i64 = 365; key "denosumab.ctx_monitoring_span_days"; unit "days";
        range 182 ..= 730; "§9 post-denosumab-ctx-monitoring"; "engine convention"; configurable true; used_by ["post-denosumab-ctx-monitoring"];
        "Monitoring lasts this long after zoledronate";
    // ---- §6 bone density ---------------------------------------------------------------------------
    lsc_spine_pct: f64 = 5.3; key "bmd.lsc_lumbar_spine_pct"; unit "%";
        range 0.5 ..= 15; "§6.2, §12.15"; "ISCD (defaults UNVERIFIED)"; configurable true; used_by ["bmd-significant-loss"];
        "Default least significant change, lumbar spine";
    lsc_total_hip_pct: f64 = 5.0; key "bmd.lsc_total_hip_pct"; unit "%";
        range 0.5 ..= 15; "§6.2, §12.15"; "ISCD (defaults UNVERIFIED)"; configurable true; used_by ["bmd-significant-loss"];
        "Default least significant change, total hip";
    lsc_femoral_neck_pct: f64 = 6.9; key "bmd.lsc_femoral_neck_pct"; unit "%";
        range 0.5 ..= 15; "§6.2, §12.15"; "ISCD (defaults UNVERIFIED)"; configurable true; used_by ["bmd-significant-loss"];
        "Default least significant change, femoral neck";
    t_drop_significant: f64 = 0.5; key "bmd.t_score_drop_significant"; unit "SD";
        range 0.1 ..= 2; "§6.2"; "engine convention (≈ LSC)"; configurable true; used_by ["bmd-significant-loss"];
        "T-score-only fallback: significant decrease";
    t_drop_large: f64 = 1.0; key "bmd.t_score_drop_large"; unit "SD";
        range 0.2 ..= 3; "§9 bmd-significant-loss"; "engine convention"; configurable true; used_by ["bmd-significant-loss"];
        "T-score-only fallback: large decrease (high severity)";
    lsc_large_multiple: f64 = 2.0; key "bmd.large_loss_lsc_multiple"; unit "× LSC";
        range 1 ..= 5; "§9 bmd-significant-loss"; "engine convention"; configurable true; used_by ["bmd-significant-loss"];
        "A loss of this many LSCs is high severity";
    bmd_min_interval_days: i64 = 180; key "bmd.min_interval_days"; unit "days";
        range 60 ..= 730; "§6.2"; "ISCD principle"; configurable true; used_by ["bmd-significant-loss"];
        "Serial DXA closer than this are not compared";
    who_min_age: i64 = 50; key "bmd.who_t_score_min_age_years"; unit "years";
        range 18 ..= 70; "§6.1"; "WHO-1994 (T-score categories from 50 y; younger adults by Z-score)"; configurable false; used_by ["bmd-significant-loss"];
        "WHO T-score categories apply from this age";
    dxa_stale_days: i64 = 730; key "bmd.stale_days"; unit "days";
        range 365 ..= 1825; "§3.1"; "ACR-2022"; configurable true; used_by ["gc-fracture-risk-assessment-due"];
        "A T-score older than this is flagged stale";
    // ---- §7 vertebral fractures --------------------------------------------------------------------
    acute_max_days: i64 = 42; key "spine.acute_max_days"; unit "days";
        range 14 ..= 90; "§7.1, §7.4"; "PVA-TIMING (< 6 weeks)"; configurable false; used_by ["acute-ovcf"];
        "Fracture or oedema this recent is acute";
    subacute_max_days: i64 = 90; key "spine.subacute_max_days"; unit "days";
        range 43 ..= 180; "§7.1, §7.4"; "PVA-TIMING (6 weeks–3 months)"; configurable false; used_by ["acute-ovcf"];
        "Fracture or oedema this recent is subacute";
    mri_before_onset_days: i64 = 7; key "spine.mri_before_onset_days"; unit "days";
        range 0 ..= 30; "§7.5-2"; "engine convention (v0.10)"; configurable false; used_by ["ovcf-refractory-pain-augmentation-candidate"];
        "An MRI this many days before onset still confirms it";
    augmentation_pain_min: f64 = 7.0; key "spine.augmentation_pain_min"; unit "/10";
        range 3 ..= 10; "§7.5-3, §12.5"; "SEED; trials used 5–7"; configurable true; used_by ["ovcf-refractory-pain-augmentation-candidate"];
        "Pain at or above which augmentation is considered";
    conservative_care_min_days: i64 = 28; key "spine.conservative_care_min_days"; unit "days";
        range 7 ..= 90; "§7.5-4, §12.5"; "SEED (one month)"; configurable true; used_by ["ovcf-refractory-pain-augmentation-candidate"];
        "Conservative care must have lasted this long";
    pain_recent_days: i64 = 7; key "spine.pain_recent_days"; unit "days";
        range 1 ..= 30; "§7.5-3, §9"; "engine convention"; configurable true; used_by ["ovcf-refractory-pain-augmentation-candidate", "ovcf-imaging-recommended"];
        "A pain score this recent describes pain now";
    imaging_pain_min: f64 = 5.0; key "spine.imaging_pain_min"; unit "/10";
        range 1 ..= 10; "§9 ovcf-imaging-recommended"; "engine convention (v0.10)"; configurable true; used_by ["ovcf-imaging-recommended"];
        "Pain at or above which unconfirmed fractures need imaging";
    imaging_pain_high: f64 = 7.0; key "spine.imaging_pain_high"; unit "/10";
        range 1 ..= 10; "§9 ovcf-imaging-recommended"; "engine convention (§9 severity: high if (a) and pain ≥ 7)"; configurable false; used_by ["ovcf-imaging-recommended"];
        "Pain at or above which an unconfirmed unhealed fracture makes imaging high severity";
    imaging_pain_rise: f64 = 3.0; key "spine.post_augmentation_pain_rise"; unit "points";
        range 1 ..= 10; "§9 ovcf-imaging-recommended (b)"; "engine convention"; configurable true; used_by ["ovcf-imaging-recommended"];
        "Pain rise after augmentation that needs re-imaging";
    new_fracture_window_days: i64 = 365; key "spine.new_fracture_window_days"; unit "days";
        range 30 ..= 730; "§7.6, §12.13"; "engine convention (rates UNVERIFIED)"; configurable true; used_by ["new-fracture-after-augmentation"];
        "Window after augmentation for new fractures";
    new_fracture_early_days: i64 = 90; key "spine.new_fracture_early_days"; unit "days";
        range 7 ..= 365; "§9 new-fracture-after-augmentation"; "engine convention"; configurable true; used_by ["new-fracture-after-augmentation"];
        "An early new fracture is high severity";
    // ---- §8 safety ---------------------------------------------------------------------------------
    zoledronate_min_crcl: f64 = 35.0; key "safety.zoledronate_min_crcl_ml_min"; unit "mL/min";
        range 30 ..= 60; "§8"; "RECLAST-PI (verified)"; configurable false; used_by ["zoledronate-renal-contraindication"];
        "Zoledronate contraindicated below this CrCl (or eGFR fallback)";
    renal_fresh_days: i64 = 30; key "safety.renal_fresh_days"; unit "days";
        range 1 ..= 180; "§8"; "engine convention (UNVERIFIED)"; configurable true; used_by ["zoledronate-renal-contraindication", "hypocalcaemia-antiresorptive-caution"];
        "Creatinine/eGFR/calcium must be this recent";
    calcium_low_mg_dl: f64 = 8.5; key "safety.calcium_low_mg_dl"; unit "mg/dL";
        range 7 ..= 9.5; "§8"; "PROLIA-PI / RECLAST-PI"; configurable true; used_by ["hypocalcaemia-antiresorptive-caution"];
        "Corrected calcium below this is hypocalcaemia";
    albumin_pair_days: i64 = 30; key "safety.albumin_calcium_pair_days"; unit "days";
        range 0 ..= 90; "§8"; "engine convention"; configurable true; used_by ["hypocalcaemia-antiresorptive-caution"];
        "An albumin this close to the calcium is used for correction";
    vitamin_d_min_ng_ml: f64 = 20.0; key "safety.vitamin_d_min_ng_ml"; unit "ng/mL";
        range 10 ..= 40; "§8"; "IOM cut-off (UNVERIFIED)"; configurable true; used_by ["vitamin-d-deficiency-antiresorptive-caution"];
        "25-OH vitamin D below this is deficient";
    vitamin_d_fresh_days: i64 = 365; key "safety.vitamin_d_fresh_days"; unit "days";
        range 30 ..= 730; "§8"; "engine convention"; configurable true; used_by ["vitamin-d-deficiency-antiresorptive-caution"];
        "25-OH vitamin D must be this recent";
    dmab_ckd_egfr_min: f64 = 30.0; key "safety.denosumab_ckd_egfr_min"; unit "mL/min/1.73m2";
        range 15 ..= 60; "§8"; "PROLIA-PI (verified boxed warning)"; configurable false; used_by ["hypocalcaemia-antiresorptive-caution"];
        "Denosumab boxed warning below this eGFR";
    ckd_fresh_days: i64 = 365; key "safety.ckd_fresh_days"; unit "days";
        range 30 ..= 730; "§8"; "engine convention (v0.10)"; configurable true; used_by ["hypocalcaemia-antiresorptive-caution"];
        "eGFR/creatinine this recent counts for the CKD check";
    weight_fresh_days: i64 = 365; key "safety.weight_fresh_days"; unit "days";
        range 30 ..= 730; "§8"; "engine convention"; configurable true; used_by ["zoledronate-renal-contraindication"];
        "Body weight this recent is used for Cockcroft–Gault";
    dmab_occurrence_window_days: i64 = 28; key "safety.denosumab_occurrence_window_days"; unit "days";
        range 0 ..= 90; "§8"; "engine convention"; configurable true; used_by ["hypocalcaemia-antiresorptive-caution"];
        "An ordered denosumab occurrence this soon makes it 'due'";
    // ---- issue 16: plausibility bounds of a glucocorticoid daily dose (mg of the ingredient) ----
    // Above the bound, a dose is a data error (grams entered as milligrams …) and is treated as
    // UNKNOWN (data-insufficient), never as exposure. Each bound is the highest daily amount a
    // product label allows; see docs/dose-plausibility.md. Ingredients without a verified label
    // bound have no row (no bound).
    gc_max_daily_mg_hydrocortisone: f64 = 6000.0; key "glucocorticoid.plausible_max_daily_mg.hydrocortisone"; unit "mg/day";
        range 240 ..= 20000; "§2.3"; "SOLU-CORTEF / A-HYDROCORT label: 100–500 mg IV, repeatable every 2 h (500 mg × 12)"; configurable true; used_by ["data-insufficient"];
        "A hydrocortisone dose above this per day is implausible: treated as unknown";
    gc_max_daily_mg_methylprednisolone: f64 = 27000.0; key "glucocorticoid.plausible_max_daily_mg.methylprednisolone"; unit "mg/day";
        range 1000 ..= 60000; "§2.3"; "SOLU-MEDROL label: 30 mg/kg IV, repeatable every 4 h for 48 h (180 mg/kg/day at 150 kg)"; configurable true; used_by ["data-insufficient"];
        "A methylprednisolone dose above this per day is implausible: treated as unknown";
}

/// The knowledge.md version these thresholds implement.
pub const KNOWLEDGE_VERSION: &str = "0.10.2";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_is_within_its_stated_range() {
        let t = Thresholds::default();
        for spec in TABLE {
            let v = t.get(spec.key).expect("key in table").as_f64();
            assert!(
                v >= spec.min && v <= spec.max,
                "{} default {v} outside {}..={}",
                spec.key,
                spec.min,
                spec.max
            );
            assert_eq!(spec.default.as_f64(), v, "{}", spec.key);
        }
    }

    #[test]
    fn keys_are_unique() {
        let mut keys: Vec<_> = TABLE.iter().map(|s| s.key).collect();
        keys.sort();
        let n = keys.len();
        keys.dedup();
        assert_eq!(n, keys.len());
    }
}
