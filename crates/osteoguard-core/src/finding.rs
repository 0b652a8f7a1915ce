//! Findings: the public vocabulary of osteoguard (knowledge.md §9).
//!
//! *API boundary:* the kebab-case codes of [`FindingCode`] and the field names of [`Finding`] are
//! part of the `osteoguard.assessment/1` contract. Add, never rename or remove.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::model::SourceRef;

/// Every finding code of knowledge.md §9, in the order of that table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum FindingCode {
    GcBoneProtection,
    GcFractureRiskAssessmentDue,
    OsteoporosisTreatmentIndicated,
    AnabolicTherapyPreferred,
    DenosumabDueSoon,
    DenosumabOverdue,
    DenosumabDiscontinuationWithoutTransition,
    PostDenosumabCtxMonitoring,
    ReboundVertebralFracturesSuspected,
    BmdSignificantLoss,
    AcuteOvcf,
    OvcfRefractoryPainAugmentationCandidate,
    OvcfImagingRecommended,
    NewFractureAfterAugmentation,
    ZoledronateRenalContraindication,
    HypocalcaemiaAntiresorptiveCaution,
    VitaminDDeficiencyAntiresorptiveCaution,
    DataInsufficient,
}

impl FindingCode {
    pub const ALL: [FindingCode; 18] = {
        use FindingCode::*;
        [
            GcBoneProtection,
            GcFractureRiskAssessmentDue,
            OsteoporosisTreatmentIndicated,
            AnabolicTherapyPreferred,
            DenosumabDueSoon,
            DenosumabOverdue,
            DenosumabDiscontinuationWithoutTransition,
            PostDenosumabCtxMonitoring,
            ReboundVertebralFracturesSuspected,
            BmdSignificantLoss,
            AcuteOvcf,
            OvcfRefractoryPainAugmentationCandidate,
            OvcfImagingRecommended,
            NewFractureAfterAugmentation,
            ZoledronateRenalContraindication,
            HypocalcaemiaAntiresorptiveCaution,
            VitaminDDeficiencyAntiresorptiveCaution,
            DataInsufficient,
        ]
    };

    /// The stable string code, e.g. `denosumab-overdue`.
    pub fn as_str(self) -> &'static str {
        use FindingCode::*;
        match self {
            GcBoneProtection => "gc-bone-protection",
            GcFractureRiskAssessmentDue => "gc-fracture-risk-assessment-due",
            OsteoporosisTreatmentIndicated => "osteoporosis-treatment-indicated",
            AnabolicTherapyPreferred => "anabolic-therapy-preferred",
            DenosumabDueSoon => "denosumab-due-soon",
            DenosumabOverdue => "denosumab-overdue",
            DenosumabDiscontinuationWithoutTransition => {
                "denosumab-discontinuation-without-transition"
            }
            PostDenosumabCtxMonitoring => "post-denosumab-ctx-monitoring",
            ReboundVertebralFracturesSuspected => "rebound-vertebral-fractures-suspected",
            BmdSignificantLoss => "bmd-significant-loss",
            AcuteOvcf => "acute-ovcf",
            OvcfRefractoryPainAugmentationCandidate => {
                "ovcf-refractory-pain-augmentation-candidate"
            }
            OvcfImagingRecommended => "ovcf-imaging-recommended",
            NewFractureAfterAugmentation => "new-fracture-after-augmentation",
            ZoledronateRenalContraindication => "zoledronate-renal-contraindication",
            HypocalcaemiaAntiresorptiveCaution => "hypocalcaemia-antiresorptive-caution",
            VitaminDDeficiencyAntiresorptiveCaution => {
                "vitamin-d-deficiency-antiresorptive-caution"
            }
            DataInsufficient => "data-insufficient",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// A short title a clinician recognises.
    pub fn title(self) -> &'static str {
        use FindingCode::*;
        match self {
            GcBoneProtection => "Bone protection on long-term glucocorticoids",
            GcFractureRiskAssessmentDue => "Fracture-risk assessment due",
            OsteoporosisTreatmentIndicated => "Osteoporosis treatment indicated",
            AnabolicTherapyPreferred => "Anabolic therapy preferred",
            DenosumabDueSoon => "Denosumab dose due soon",
            DenosumabOverdue => "Denosumab dose overdue",
            DenosumabDiscontinuationWithoutTransition => {
                "Denosumab stopped without transition therapy"
            }
            PostDenosumabCtxMonitoring => "CTX monitoring after denosumab→zoledronate",
            ReboundVertebralFracturesSuspected => "Rebound vertebral fractures suspected",
            BmdSignificantLoss => "Significant bone density loss",
            AcuteOvcf => "Acute vertebral compression fracture",
            OvcfRefractoryPainAugmentationCandidate => "Vertebral augmentation candidate",
            OvcfImagingRecommended => "Spine imaging recommended",
            NewFractureAfterAugmentation => "New fracture after vertebral augmentation",
            ZoledronateRenalContraindication => "Zoledronate contraindicated (renal)",
            HypocalcaemiaAntiresorptiveCaution => "Hypocalcaemia / CKD caution",
            VitaminDDeficiencyAntiresorptiveCaution => "Vitamin D deficiency caution",
            DataInsufficient => "Data insufficient",
        }
    }
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity scale of knowledge.md §1.7. Ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Moderate,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Moderate => "moderate",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Severity::Info),
            "moderate" => Some(Severity::Moderate),
            "high" => Some(Severity::High),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A whole-day duration as a clinician says it: "6 months" for 182 days, "4 weeks" for 28,
/// otherwise "N days". Months are calendar-average months (30.4375 days, truncated), so 91,
/// 182, 365 and 730 days read as 3, 6, 12 and 24 months.
pub fn days_in_words(days: i64) -> String {
    const DAYS_PER_400_YEARS: i64 = 146_097;
    const MONTHS_PER_400_YEARS: i64 = 4_800;
    let months = (1..=days / 28).find(|m| m * DAYS_PER_400_YEARS / MONTHS_PER_400_YEARS == days);
    match months {
        Some(1) => "1 month".to_string(),
        Some(m) => format!("{m} months"),
        None if days > 0 && days % 7 == 0 => match days / 7 {
            1 => "1 week".to_string(),
            w => format!("{w} weeks"),
        },
        None if days == 1 => "1 day".to_string(),
        None => format!("{days} days"),
    }
}

/// A date written as [`NaiveDate`]'s `Display` writes it (`2023-09-28`; a year outside
/// 0–9999 falls back to that `Display`), but in one `write_str` instead of ten `write_char`s:
/// the engine writes a few dozen dates into its texts per assessment (issue 19).
#[derive(Debug, Clone, Copy)]
pub struct Ymd(pub NaiveDate);

impl std::fmt::Display for Ymd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use chrono::Datelike;
        let d = self.0;
        let Ok(y) = u32::try_from(d.year()) else {
            return std::fmt::Display::fmt(&d, f);
        };
        if y > 9999 {
            return std::fmt::Display::fmt(&d, f);
        }
        let digit = |n: u32| b'0' + (n % 10) as u8;
        let (m, day) = (d.month(), d.day());
        let b = [
            digit(y / 1000),
            digit(y / 100),
            digit(y / 10),
            digit(y),
            b'-',
            digit(m / 10),
            digit(m),
            b'-',
            digit(day / 10),
            digit(day),
        ];
        f.write_str(std::str::from_utf8(&b).map_err(|_| std::fmt::Error)?)
    }
}

/// Bytes reserved for a text written by the `text!` macro: most evidence details, summaries,
/// trace and basis lines fit, so they are written without growing (glibc and most allocators
/// serve a request of this size from the same small-size bins as a shorter one).
const TEXT_CAPACITY: usize = 128;

/// What `text!` expands to: `format!`'s text, with [`TEXT_CAPACITY`] bytes reserved (a
/// literal without arguments is copied as `format!` copies it).
#[doc(hidden)]
pub fn text(args: std::fmt::Arguments<'_>) -> String {
    match args.as_str() {
        Some(s) => s.to_owned(),
        None => {
            let mut out = String::with_capacity(TEXT_CAPACITY);
            // Writing into a `String` cannot fail; a `Display` that fails would have made
            // `format!` panic, here it ends the text.
            let _ = std::fmt::Write::write_fmt(&mut out, args);
            out
        }
    }
}

/// A number with `places` digits after the point (`Fixed(v, places)`), written as
/// `format!("{:.*}", places, v)` writes it (exact
/// decimal value of the `f64`, ties to even, `-` kept on a negative value that rounds to zero),
/// but from the exact integer `m × 2^e × 10^places` instead of `core::fmt`'s exact float path
/// (`dragon::format_exact`, ~1 k instructions per number; issue 19). Values whose scaled
/// integer does not fit 112 bits, infinities and NaN fall back to `core::fmt`. Byte identity:
/// `fixed_is_core_fmt` (proptest over the engine's value range).
#[derive(Debug, Clone, Copy)]
pub struct Fixed(pub f64, pub u32);

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fixed(v, places) = *self;
        let fallback = |f: &mut std::fmt::Formatter<'_>| write!(f, "{:.*}", places as usize, v);
        if !v.is_finite() || places > 6 {
            return fallback(f);
        }
        let bits = v.to_bits();
        let negative = bits >> 63 == 1;
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1u64 << 52) - 1);
        // v = m × 2^e exactly.
        let (m, e) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | (1u64 << 52), biased - 1075)
        };
        let scale = 10u128.pow(places);
        let q = u128::from(m) * scale; // < 2^53 × 10^6 < 2^73
        let rounded: u128 = if e >= 0 {
            if e > 39 {
                return fallback(f);
            }
            q << e
        } else {
            let s = e.unsigned_abs();
            if s >= 127 {
                0 // q < 2^73 ≤ 2^(s-1): below one half
            } else {
                let int = q >> s;
                let rem = q - (int << s);
                let half = 1u128 << (s - 1);
                if rem > half || (rem == half && int & 1 == 1) {
                    int + 1
                } else {
                    int
                }
            }
        };
        // Digits from the right: `places` fraction digits, the point, the integer part.
        let mut buf = [0u8; 48];
        let mut at = buf.len();
        let mut rest = rounded;
        let mut put = |b: u8, at: &mut usize| {
            *at -= 1;
            buf[*at] = b;
        };
        let mut small = u64::try_from(rest).ok();
        for i in 0..=places + 40 {
            if i == places && places > 0 {
                put(b'.', &mut at);
            }
            let digit = match small.as_mut() {
                Some(s) => {
                    let d = (*s % 10) as u8;
                    *s /= 10;
                    d
                }
                None => {
                    let d = (rest % 10) as u8;
                    rest /= 10;
                    if let Ok(s) = u64::try_from(rest) {
                        small = Some(s);
                    }
                    d
                }
            };
            put(b'0' + digit, &mut at);
            if i >= places && small == Some(0) {
                break;
            }
        }
        if negative {
            put(b'-', &mut at);
        }
        f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| std::fmt::Error)?)
    }
}

/// A number written as `{}` writes an `f64` (the shortest decimal that reads back as the same
/// `f64`: `7.5`, `30`, `-2.5`, `0.1`), but without `core::fmt`'s shortest-digits search
/// (Grisu, ~500 instructions per number; the engine writes a few dozen thresholds, doses and
/// values per assessment; issue 19). The fewest places `p ≤ 6` at which `round(v × 10^p) / 10^p`
/// is `v` again are the shortest: that quotient of two exact integers is the correctly rounded
/// value of the decimal, so it is what reading the decimal back gives; below 2^31 two decimals
/// with `p ≤ 6` places are never both read as `v` (its spacing is below 10^-6), so the
/// decimal is unique and [`Fixed`] writes it. Other values fall back to `core::fmt`. Byte
/// identity: `shortest_is_core_fmt` (proptest).
#[derive(Debug, Clone, Copy)]
pub struct Shortest(pub f64);

impl std::fmt::Display for Shortest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const LIMIT: f64 = 2_147_483_648.0; // 2^31
        const SCALES: [f64; 7] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];
        let v = self.0;
        if v.is_finite() && v.abs() < LIMIT {
            for (places, scale) in (0u32..).zip(SCALES) {
                if (v * scale).round() / scale == v {
                    return Fixed(v, places).fmt(f);
                }
            }
        }
        std::fmt::Display::fmt(&v, f)
    }
}

/// One piece of evidence: the resource and the value the rule used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Evidence {
    // The resource (`Type/id`), shared with the record's `SourceRef`, serialised as a string.
    // (A plain comment: a doc comment would become a description in the JSON Schema.)
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub reference: SourceRef,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<NaiveDate>,
}

impl Evidence {
    pub fn new(reference: &SourceRef, date: Option<NaiveDate>, detail: impl Into<String>) -> Self {
        Evidence {
            reference: reference.clone(),
            detail: detail.into(),
            date,
        }
    }
    /// Evidence derived by the engine itself (no single resource), e.g. "age 73 at as-of".
    pub fn derived(detail: impl Into<String>) -> Self {
        static DERIVED: std::sync::OnceLock<SourceRef> = std::sync::OnceLock::new();
        Evidence {
            reference: DERIVED
                .get_or_init(|| SourceRef::new("osteoguard:derived"))
                .clone(),
            detail: detail.into(),
            date: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub title: String,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub recommendation: String,
    pub citation: String,
    /// Full references of the sources the citation names (knowledge.md §1.8).
    #[serde(default)]
    pub references: Vec<String>,
    /// The knowledge.md section the rule implements.
    pub rule_section: String,
    /// `null` when the finding has no due date (always present: a stable schema).
    #[serde(default)]
    pub due: Option<NaiveDate>,
    /// Inputs that were missing (data-insufficient items, or conservative notes).
    #[serde(default)]
    pub inputs_missing: Vec<String>,
    /// Conservative choices, UNVERIFIED thresholds and annotations (§2.8 replacement note …).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Vertebral levels the finding concerns, when any.
    #[serde(default)]
    pub levels: Vec<String>,
    /// Machine-readable trace of how the rule decided, in the specification's own vocabulary
    /// (knowledge.md section, clause and item numbers, named quantities such as `D_last`,
    /// verification status of thresholds). Kept out of `summary`, `recommendation` and `notes`,
    /// which a clinician reads; the JSON keeps it and `--verbose` prints it.
    #[serde(default)]
    pub trace: Vec<String>,
    /// `data-insufficient` only: each missing input with its knowledge.md §9 item number and
    /// the rule that could not decide (machine-readable; `inputsMissing` says it in words).
    /// Absent on every other finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insufficient_items: Vec<InsufficientInput>,
}

/// One input the `data-insufficient` finding reports missing: the item of the closed list of
/// knowledge.md §9 (1 glucocorticoid dose … 9 FRAX invalid), the rule (finding code or fact)
/// that could not decide, and the missing input in words.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct InsufficientInput {
    pub item: u8,
    pub rule: String,
    pub missing: String,
}

/// A dated to-do derived from the findings and schedules.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Task {
    pub code: String,
    pub description: String,
    pub due: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finding: Option<FindingCode>,
}

/// A problem with the record itself (resource, field path, reason).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DataQualityIssue {
    pub reference: String,
    pub field: String,
    pub problem: String,
}

impl DataQualityIssue {
    pub fn new(
        reference: impl Into<String>,
        field: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        DataQualityIssue {
            reference: reference.into(),
            field: field.into(),
            problem: problem.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    //! What clinicians read: no specification vocabulary, and every number a site may change
    //! follows the threshold table.

    use super::*;
    use crate::config::Config;
    use crate::model::PatientRecord;
    use crate::testkit::{d, text_scenarios};
    use crate::thresholds::{ThresholdValue, TABLE};

    /// Codes whose rules the text tests cover: every finding code, each fired by at least one
    /// of [`all_cases`].
    const COVERED: &[FindingCode] = &FindingCode::ALL;

    /// A record, its as-of date and, for an order hook, the draft orders evaluated as if signed.
    struct Case {
        name: &'static str,
        record: PatientRecord,
        as_of: NaiveDate,
        drafts: Vec<SourceRef>,
    }

    impl Case {
        fn assess(&self, config: &Config) -> crate::Assessment {
            if self.drafts.is_empty() {
                crate::assess(&self.record, self.as_of, config)
            } else {
                crate::assess_what_if(&self.record, &[], &self.drafts, self.as_of, config)
            }
        }
    }

    /// The shared text scenarios plus the denosumab, bone-density, CTX, rebound,
    /// data-insufficient and order-hook (clause c) records, so that every code fires somewhere.
    fn all_cases() -> Vec<Case> {
        use crate::model::{
            DxaSite, Ingredient, MedicationStatus, ObservationKind, Route, Sex, VertebralLevel::*,
        };
        use crate::rules::denosumab_discontinuation_without_transition::tests::doses;
        use crate::testkit::RecordBuilder;
        let mut v: Vec<Case> = text_scenarios()
            .into_iter()
            .map(|s| Case {
                name: s.name,
                record: s.record,
                as_of: s.as_of,
                drafts: Vec::new(),
            })
            .collect();
        // Six doses, the last on 2022-10-27, nothing since and no laboratory values: overdue,
        // stopped without transition, safety labs missing.
        v.push(Case {
            name: "denosumab-stopped-no-labs",
            record: doses(6).build(),
            as_of: d("2023-06-15"),
            drafts: Vec::new(),
        });
        // The same course, then two vertebral fractures after the missed dose: rebound.
        v.push(Case {
            name: "rebound",
            record: doses(6)
                .vertebral_fracture(L1, "2023-07-15", "2023-07-17")
                .vertebral_fracture(L2, "2023-07-31", "2023-08-01")
                .build(),
            as_of: d("2023-09-28"),
            drafts: Vec::new(),
        });
        // Zoledronic acid on the due date of the next denosumab dose: CTX monitoring.
        v.push(Case {
            name: "ctx-monitoring",
            record: doses(6)
                .observation(ObservationKind::Creatinine, "2023-04-20", 0.8)
                .observation(ObservationKind::BodyWeight, "2023-04-20", 60.0)
                .observation(ObservationKind::Calcium, "2023-04-20", 9.2)
                .observation(ObservationKind::VitaminD25, "2023-04-20", 30.0)
                .administration(
                    Ingredient::ZoledronicAcid,
                    "2023-04-27",
                    5.0,
                    Route::Intravenous,
                )
                .build(),
            as_of: d("2023-05-20"),
            drafts: Vec::new(),
        });
        // Spine T-score −1.0 → −1.7 in a year: significant bone density loss.
        v.push(Case {
            name: "bmd-loss",
            record: RecordBuilder::new("1958-11-11", Sex::Female)
                .observation(
                    ObservationKind::TScore(DxaSite::LumbarSpine),
                    "2021-06-15",
                    -1.0,
                )
                .observation(
                    ObservationKind::TScore(DxaSite::LumbarSpine),
                    "2022-06-15",
                    -1.7,
                )
                .build(),
            as_of: d("2022-07-01"),
            drafts: Vec::new(),
        });
        // Order hook: a draft order stops denosumab 30 days after the second dose, renal
        // function fresh and adequate (clause c names the transition plan).
        let mut record = doses(2)
            .observation(ObservationKind::Creatinine, "2022-11-20", 0.8)
            .observation(ObservationKind::BodyWeight, "2022-11-20", 50.0)
            .order(
                Ingredient::Denosumab,
                MedicationStatus::Stopped,
                "2000-01-01",
            )
            .build();
        let draft = record.medications.last_mut().map(|m| {
            m.authored = None;
            m.visible = None;
            m.source.clone()
        });
        v.push(Case {
            name: "denosumab-stopped-by-draft",
            record,
            as_of: d("2022-11-26"),
            drafts: draft.into_iter().collect(),
        });
        v
    }

    /// Words of the specification that belong in `trace`, never in clinical text.
    const INTERNAL: &[&str] = &[
        "§",
        "knowledge.md",
        "item ",
        "D_last",
        "UNVERIFIED",
        "from memory",
        "clause",
        "onset_estimated",
        "age_indeterminate",
        "engine convention",
        "row A",
        "row B",
    ];

    fn clinical_text(f: &Finding) -> Vec<&str> {
        let mut v = vec![f.summary.as_str(), f.recommendation.as_str()];
        v.extend(f.notes.iter().map(String::as_str));
        v.extend(f.inputs_missing.iter().map(String::as_str));
        v.extend(f.evidence.iter().map(|e| e.detail.as_str()));
        v
    }

    #[test]
    fn days_read_as_a_clinician_says_them() {
        let cases = [
            (1, "1 day"),
            (7, "1 week"),
            (28, "4 weeks"),
            (30, "1 month"),
            (91, "3 months"),
            (182, "6 months"),
            (365, "12 months"),
            (730, "24 months"),
            (45, "45 days"),
        ];
        for (days, words) in cases {
            assert_eq!(days_in_words(days), words, "{days}");
        }
    }

    /// `Ymd` writes every date as `NaiveDate`'s `Display` does, byte for byte.
    #[test]
    fn ymd_is_naive_date_display() {
        let mut dates = vec![
            NaiveDate::MIN,
            NaiveDate::MAX,
            d("0000-01-01"),
            d("0009-09-09"),
            d("0999-12-31"),
            d("9999-12-31"),
            d("2024-02-29"),
        ];
        dates.extend(NaiveDate::from_ymd_opt(-1, 12, 31));
        dates.extend(NaiveDate::from_ymd_opt(10000, 1, 1));
        let mut day = d("1899-12-25");
        while day < d("2101-01-10") {
            dates.push(day);
            day = crate::model::add_days(day, 13);
        }
        for x in dates {
            assert_eq!(Ymd(x).to_string(), x.to_string());
            assert_eq!(format!("[{}]", Ymd(x)), format!("[{x}]"));
        }
    }

    /// The far ends of `f64`, where the writers fall back to `core::fmt`.
    const EXTREMES: [f64; 9] = [
        1e300,
        f64::MAX,
        f64::MIN,
        f64::MIN_POSITIVE,
        f64::EPSILON,
        5e-324,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];

    /// `Fixed(v, p)` writes a number as `{:.p}` does, byte for byte.
    fn fixed_matches(v: f64) {
        for p in 0..=7 {
            assert_eq!(
                Fixed(v, p).to_string(),
                format!("{v:.*}", p as usize),
                "{v:e} .{p}"
            );
        }
        assert_eq!(format!("[{}]", Fixed(v, 1)), format!("[{v:.1}]"), "{v:e}");
    }

    #[test]
    fn fixed_is_core_fmt_at_the_edges() {
        let mut values = vec![
            0.0,
            -0.0,
            0.05,
            0.15,
            0.25,
            0.35,
            0.5,
            1.5,
            2.5,
            -2.5,
            -0.04,
            -0.05,
            0.0005,
            0.0015,
            0.125,
            1.0 / 3.0,
            9.95,
            99.95,
            999.9995,
            7.5,
            -3.5,
            1e15,
            1e16,
            1e20,
            9.3e25,
        ];
        values.extend(EXTREMES);
        // Every k/1000 and the halves between them in the engine's range, from both sides.
        for k in -20_000..=20_000 {
            let x = f64::from(k) / 1000.0;
            values.extend([x, x + 0.0005, x - 0.0005, x + 0.00005, x + 0.005]);
        }
        for v in values {
            fixed_matches(v);
        }
    }

    /// `Shortest(v)` writes a number as `{}` does, byte for byte.
    fn shortest_matches(v: f64) {
        assert_eq!(Shortest(v).to_string(), v.to_string(), "{v:e}");
        assert_eq!(format!("[{}]", Shortest(v)), format!("[{v}]"), "{v:e}");
    }

    #[test]
    fn shortest_is_core_fmt_at_the_edges() {
        let mut values = vec![
            0.0,
            -0.0,
            0.1,
            0.2,
            0.3,
            0.1 + 0.2,
            1.0 / 3.0,
            2.0 / 3.0,
            7.5,
            -3.5,
            4.5,
            1e-7,
            1.5e-6,
            123_456.789,
            2_147_483_647.5,
            2_147_483_648.0,
            -2_147_483_648.0,
            1e15,
            1e20,
        ];
        values.extend(EXTREMES);
        // Every k/10⁴ in the engine's range, its neighbours, and powers of two (where the
        // rounding interval is lopsided).
        for k in -200_000..=200_000 {
            let x = f64::from(k) / 10_000.0;
            values.extend([x, x.next_up(), x.next_down()]);
        }
        for e in -40..32 {
            let x = 2f64.powi(e);
            values.extend([x, x.next_up(), x.next_down(), -x, x * 1.5]);
        }
        for v in values {
            shortest_matches(v);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn shortest_is_core_fmt(v in -1.0e6f64..1.0e6) {
            shortest_matches(v);
        }
        #[test]
        fn shortest_is_core_fmt_small(v in -10.0f64..10.0) {
            shortest_matches(v);
        }
        /// Decimals with up to 7 places, as thresholds and measured values are written.
        #[test]
        fn shortest_is_core_fmt_decimals(n in -10_000_000_000i64..10_000_000_000, p in 0i32..8) {
            shortest_matches(n as f64 / 10f64.powi(p));
        }
        #[test]
        fn shortest_is_core_fmt_any(bits in proptest::prelude::any::<u64>()) {
            shortest_matches(f64::from_bits(bits));
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// The engine's values: T/Z-scores, FRAX %, doses in mg and g, laboratory values,
        /// clearances, loss percentages — all well within ±10⁶.
        #[test]
        fn fixed_is_core_fmt(v in -1.0e6f64..1.0e6) {
            fixed_matches(v);
        }
        #[test]
        fn fixed_is_core_fmt_small(v in -10.0f64..10.0) {
            fixed_matches(v);
        }
        /// Any bit pattern (subnormals, huge, NaN): the fallback path too.
        #[test]
        fn fixed_is_core_fmt_any(bits in proptest::prelude::any::<u64>()) {
            fixed_matches(f64::from_bits(bits));
        }
    }

    #[test]
    fn clinical_text_carries_no_internal_vocabulary() {
        let config = Config::default();
        let mut seen = std::collections::BTreeSet::new();
        for s in all_cases() {
            let a = s.assess(&config);
            for f in a.findings.iter().filter(|f| COVERED.contains(&f.code)) {
                seen.insert(f.code);
                for text in clinical_text(f) {
                    for word in INTERNAL {
                        assert!(
                            !text.contains(word),
                            "{} in {}: {word:?} in {text:?}",
                            s.name,
                            f.code
                        );
                    }
                }
            }
            for t in a
                .tasks
                .iter()
                .filter(|t| t.finding.is_none_or(|c| COVERED.contains(&c)))
            {
                for word in INTERNAL {
                    assert!(!t.description.contains(word), "{}: {t:?}", s.name);
                }
            }
        }
        let missing: Vec<_> = COVERED.iter().filter(|c| !seen.contains(c)).collect();
        assert!(missing.is_empty(), "no scenario fires {missing:?}");
    }

    /// How a threshold value is written in the text.
    #[derive(Clone, Copy)]
    enum Shown {
        /// As the number itself.
        Number,
        /// A duration in days, as [`days_in_words`] writes it.
        Words,
    }

    fn shown(v: ThresholdValue, how: Shown) -> String {
        match (how, v) {
            (Shown::Words, ThresholdValue::Days(d)) => days_in_words(d),
            _ => v.to_string(),
        }
    }

    /// For every configurable threshold that appears in clinical text: (key, a site's value,
    /// scenario, finding, how the text shows it around `{}`). The text must show the default
    /// under the default configuration and the site's value under the override.
    #[test]
    fn site_overrides_change_the_words() {
        use FindingCode::*;
        let cases: &[(&str, &str, &str, FindingCode, &str, Shown)] = &[
            (
                "bone_protection.calcium_min_mg_per_day",
                "1100",
                "glucocorticoid-fracture",
                GcBoneProtection,
                "calcium {}–",
                Shown::Number,
            ),
            (
                "bone_protection.calcium_max_mg_per_day",
                "1500",
                "glucocorticoid-fracture",
                GcBoneProtection,
                "–{} mg/day",
                Shown::Number,
            ),
            (
                "bone_protection.vitamin_d_min_iu_per_day",
                "700",
                "glucocorticoid-fracture",
                GcBoneProtection,
                "vitamin D {}–",
                Shown::Number,
            ),
            (
                "bone_protection.vitamin_d_max_iu_per_day",
                "1000",
                "glucocorticoid-fracture",
                GcBoneProtection,
                "–{} IU/day",
                Shown::Number,
            ),
            (
                "bone_protection.alcohol_max_drinks_low",
                "0",
                "glucocorticoid-fracture",
                GcBoneProtection,
                "alcohol ≤{}–",
                Shown::Number,
            ),
            (
                "bone_protection.alcohol_max_drinks_high",
                "3",
                "glucocorticoid-fracture",
                GcBoneProtection,
                "–{} drinks/day",
                Shown::Number,
            ),
            (
                "risk.frax_max_age_days",
                "400",
                "glucocorticoid-dxa-overdue",
                GcFractureRiskAssessmentDue,
                "no FRAX within {} days",
                Shown::Number,
            ),
            (
                "spine.conservative_care_min_days",
                "35",
                "refractory-pain",
                OvcfRefractoryPainAugmentationCandidate,
                "refractory to ≥{} of conservative care",
                Shown::Words,
            ),
            (
                "spine.augmentation_pain_min",
                "6",
                "refractory-pain",
                OvcfRefractoryPainAugmentationCandidate,
                "(pain ≥{}/10)",
                Shown::Number,
            ),
            (
                "spine.new_fracture_window_days",
                "400",
                "new-fracture-after-augmentation",
                NewFractureAfterAugmentation,
                "counted for {} days after augmentation",
                Shown::Number,
            ),
            (
                "safety.renal_fresh_days",
                "20",
                "denosumab-stopped-renal",
                ZoledronateRenalContraindication,
                "within {} days of the assessment date",
                Shown::Number,
            ),
            (
                "safety.ckd_fresh_days",
                "200",
                "denosumab-stopped-renal",
                HypocalcaemiaAntiresorptiveCaution,
                "eGFR/creatinine within {} days",
                Shown::Number,
            ),
            (
                "safety.calcium_low_mg_dl",
                "8.2",
                "denosumab-stopped-renal",
                HypocalcaemiaAntiresorptiveCaution,
                "on 2024-09-10 < {}",
                Shown::Number,
            ),
            (
                "safety.vitamin_d_min_ng_ml",
                "15",
                "denosumab-stopped-renal",
                VitaminDDeficiencyAntiresorptiveCaution,
                "deficient (<{} ng/mL)",
                Shown::Number,
            ),
            (
                "denosumab.ctx_first_due_days",
                "120",
                "denosumab-stopped-by-draft",
                DenosumabDiscontinuationWithoutTransition,
                "check CTX at {} and",
                Shown::Words,
            ),
            (
                "denosumab.ctx_second_due_days",
                "210",
                "denosumab-stopped-by-draft",
                DenosumabDiscontinuationWithoutTransition,
                " and {} (",
                Shown::Words,
            ),
            (
                "denosumab.ctx_first_due_days",
                "120",
                "ctx-monitoring",
                PostDenosumabCtxMonitoring,
                "serum CTX at {} and",
                Shown::Words,
            ),
            (
                "denosumab.ctx_second_due_days",
                "210",
                "ctx-monitoring",
                PostDenosumabCtxMonitoring,
                " and {} (due",
                Shown::Words,
            ),
        ];
        let text_of = |config: &Config, scenario: &str, code: FindingCode| -> String {
            let s = all_cases()
                .into_iter()
                .find(|s| s.name == scenario)
                .expect("scenario exists");
            let a = s.assess(config);
            let f = a
                .findings
                .iter()
                .find(|f| f.code == code)
                .unwrap_or_else(|| panic!("{scenario}: {code} fires"));
            clinical_text(f).join("\n")
        };
        for &(key, value, scenario, code, around, how) in cases {
            let spec = TABLE.iter().find(|s| s.key == key).expect("key in table");
            assert!(spec.configurable, "{key}");
            let (group, name) = key.split_once('.').expect("group.name");
            let site = Config::from_toml_str(&format!("[{group}]\n{name} = {value}\n"))
                .unwrap_or_else(|e| panic!("{key}: {e}"));
            let new = site.thresholds.get(key).expect("key");
            assert_ne!(new, spec.default, "{key}: pick a different value");
            let before = text_of(&Config::default(), scenario, code);
            let after = text_of(&site, scenario, code);
            let expect = |v| around.replace("{}", &shown(v, how));
            assert!(before.contains(&expect(spec.default)), "{key}: {before}");
            assert!(after.contains(&expect(new)), "{key}: {after}");
            assert!(!after.contains(&expect(spec.default)), "{key}: {after}");
        }
    }

    /// The string literals of a Rust source (before its test module), with the line they start on.
    fn literals(src: &str) -> Vec<(usize, String)> {
        let body = src.split("#[cfg(test)]").next().unwrap_or_default();
        let chars: Vec<char> = body.chars().collect();
        let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
        while i < chars.len() {
            match chars[i] {
                '\n' => line += 1,
                '/' if chars.get(i + 1) == Some(&'/') => {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    continue;
                }
                '\'' if chars.get(i + 2) == Some(&'\'') => i += 2,
                '\'' if chars.get(i + 1) == Some(&'\\') => {
                    while i + 1 < chars.len() && chars[i + 1] != '\'' {
                        i += 1;
                    }
                    i += 1;
                }
                '"' => {
                    let start = line;
                    let mut lit = String::new();
                    i += 1;
                    while i < chars.len() && chars[i] != '"' {
                        if chars[i] == '\\' {
                            i += 1;
                        }
                        if chars[i] == '\n' {
                            line += 1;
                        }
                        lit.push(chars[i]);
                        i += 1;
                    }
                    out.push((start, lit));
                }
                _ => {}
            }
            i += 1;
        }
        out
    }

    /// "No clinical number outside the threshold table", enforced on the sources of the rules
    /// this branch owns: a string literal (format strings included, `{…}` placeholders removed)
    /// may contain a digit only when it is a specification reference for `rule_section` or
    /// `trace` (it holds "§": the vocabulary test above keeps those out of clinical text), a
    /// citation key of `sources.rs`, or a name that contains a digit (25-OH vitamin D, a unit).
    #[test]
    fn rule_text_has_no_number_literals() {
        const NAMES: &[&str] = &[
            "CKD stage 4–5",
            "25-OH",
            "1.73 m²",
            "/10",
            "ctx-3-months",
            "ctx-6-months",
        ];
        let files = [
            ("acute_ovcf", include_str!("rules/acute_ovcf.rs")),
            (
                "anabolic_therapy_preferred",
                include_str!("rules/anabolic_therapy_preferred.rs"),
            ),
            (
                "bmd_significant_loss",
                include_str!("rules/bmd_significant_loss.rs"),
            ),
            (
                "data_insufficient",
                include_str!("rules/data_insufficient.rs"),
            ),
            (
                "denosumab_common",
                include_str!("rules/denosumab_common.rs"),
            ),
            (
                "denosumab_discontinuation_without_transition",
                include_str!("rules/denosumab_discontinuation_without_transition.rs"),
            ),
            (
                "denosumab_due_soon",
                include_str!("rules/denosumab_due_soon.rs"),
            ),
            (
                "denosumab_overdue",
                include_str!("rules/denosumab_overdue.rs"),
            ),
            (
                "post_denosumab_ctx_monitoring",
                include_str!("rules/post_denosumab_ctx_monitoring.rs"),
            ),
            (
                "rebound_vertebral_fractures_suspected",
                include_str!("rules/rebound_vertebral_fractures_suspected.rs"),
            ),
            (
                "gc_bone_protection",
                include_str!("rules/gc_bone_protection.rs"),
            ),
            (
                "gc_fracture_risk_assessment_due",
                include_str!("rules/gc_fracture_risk_assessment_due.rs"),
            ),
            (
                "hypocalcaemia_antiresorptive_caution",
                include_str!("rules/hypocalcaemia_antiresorptive_caution.rs"),
            ),
            (
                "new_fracture_after_augmentation",
                include_str!("rules/new_fracture_after_augmentation.rs"),
            ),
            (
                "osteoporosis_treatment_indicated",
                include_str!("rules/osteoporosis_treatment_indicated.rs"),
            ),
            (
                "ovcf_imaging_recommended",
                include_str!("rules/ovcf_imaging_recommended.rs"),
            ),
            (
                "ovcf_refractory_pain_augmentation_candidate",
                include_str!("rules/ovcf_refractory_pain_augmentation_candidate.rs"),
            ),
            (
                "vitamin_d_deficiency_antiresorptive_caution",
                include_str!("rules/vitamin_d_deficiency_antiresorptive_caution.rs"),
            ),
            (
                "zoledronate_renal_contraindication",
                include_str!("rules/zoledronate_renal_contraindication.rs"),
            ),
            ("tasks", include_str!("rules/tasks.rs")),
        ];
        let tags: Vec<&str> = crate::sources::SOURCES.iter().map(|s| s.tag).collect();
        let mut offenders = Vec::new();
        for (name, src) in files {
            for (line, lit) in literals(src) {
                let mut text = String::new();
                let mut depth = 0;
                for c in lit.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        _ if depth == 0 => text.push(c),
                        _ => {}
                    }
                }
                if lit.contains('§') {
                    continue;
                }
                for allowed in NAMES.iter().chain(tags.iter()) {
                    text = text.replace(allowed, "");
                }
                if text.chars().any(|c| c.is_ascii_digit()) {
                    offenders.push(format!("rules/{name}.rs:{line}: {lit:?}"));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "number literals in rule text:\n{}",
            offenders.join("\n")
        );
    }

    /// The scanner itself: literals, placeholders and comments.
    #[test]
    fn literal_scanner_finds_strings_not_comments() {
        let src = "let a = \"x {n} 7\"; // \"9\"\nlet c = '\"';\n#[cfg(test)]\nlet z = \"5\";";
        assert_eq!(literals(src), vec![(1, "x {n} 7".to_string())]);
    }
}
