//! Programme indicators — knowledge.md §13: the eleven patient-level fracture-liaison KPIs of
//! the IOF Capture the Fracture Working Group (Javaid et al., Osteoporos Int 2020), computed
//! from the record.
//!
//! Per patient: [`index::find_index`] decides whether the patient has an *index* (sentinel)
//! fracture in the reporting period; for a patient who does, [`kpis`] answers each KPI with a
//! [`KpiStatus`] (TRUE / FALSE / UNKNOWN / PENDING / EXCLUDED) and the evidence it read.
//! [`aggregate`] turns the per-patient answers into proportions with their levels.
//!
//! How each KPI is read from FHIR is osteoguard's encoding, **UNVERIFIED as a mapping** (§13:
//! a registry abstracts these by hand; we derive them). The reading of the record is the one
//! the rules use (`PatientRecord`, §10 value sets); what the patient model does not carry
//! (Encounters, the codes of Observations / Procedures / ServiceRequests for the site-mapped
//! falls-risk and exercise value sets) comes in as [`Item`]s from the caller.
//!
//! Like the rest of the core this reads no clock: the as-of date and the period are inputs, and
//! the record is taken as it was visible on the as-of date (§1.2).

pub mod aggregate;
pub mod index;
pub mod kpis;

use chrono::NaiveDate;
use serde::Serialize;

use crate::config::{Config, SiteCode};
use crate::engine::visible_at;
use crate::model::PatientRecord;

pub use index::{find_index, IndexOutcome};

/// KPI 5's default falls-risk assessment code: SNOMED CT 414191008 "fall risk assessment"
/// (knowledge.md §13, **UNVERIFIED** code). Sites add codes in `[programme] falls_risk_codes`.
pub const FALLS_RISK_DEFAULT: (&str, &str) = ("http://snomed.info/sct", "414191008");

/// The reporting period `[start, end]` (both days included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReportingPeriod {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl ReportingPeriod {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.start <= d && d <= self.end
    }
}

/// The resource type of an [`Item`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum ItemKind {
    Encounter,
    Observation,
    Procedure,
    ServiceRequest,
}

/// A resource the patient model leaves out but a KPI reads: an Encounter (KPI 8), or the codes
/// of an Observation / Procedure / ServiceRequest (KPIs 5, 7, 8). The caller reads them from
/// FHIR; `status` is the FHIR status as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// `Type/id`.
    pub source: String,
    pub kind: ItemKind,
    /// `code` (and Encounter `type`) codings.
    pub codes: Vec<SiteCode>,
    /// Encounter `period.start`, Observation `effective[x]`, Procedure `performed[x]`,
    /// ServiceRequest `authoredOn`; `None` when absent or unreadable.
    pub date: Option<NaiveDate>,
    /// The §1.2 visibility date when it differs from `date`: Observation `issued` ("which date
    /// decides visibility is the date the information entered the record"). `None` = `date`.
    pub visible: Option<NaiveDate>,
    pub status: Option<String>,
    /// ServiceRequest `doNotPerform`.
    pub do_not_perform: bool,
}

/// Whether an [`Item`] documents something that happened (or was asked for), by its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// It counts.
    Counts,
    /// It does not (planned, cancelled, entered in error, not done ...).
    Void,
    /// Its status is `unknown` or absent: whether it happened cannot be told (§1.4, UNKNOWN).
    Unknown,
}

impl Item {
    /// Whether the item counts, by its FHIR status (§1.6 where it names the resource):
    /// * Observation: `final`, `amended`, `corrected`, `preliminary` (§1.6); `registered`,
    ///   `cancelled`, `entered-in-error` do not count;
    /// * Procedure: `completed` (§1.6); `preparation`, `in-progress`, `on-hold`, `stopped`,
    ///   `not-done`, `entered-in-error` do not;
    /// * Encounter (not named in §1.6): a contact took place when it is `arrived`, `triaged`,
    ///   `in-progress`, `onleave` or `finished`; `planned`, `cancelled`, `entered-in-error` are
    ///   no contact (§13 KPI 8 "any contact after the index");
    /// * ServiceRequest (KPI 7 "a referral"): made when `active`, `on-hold` or `completed`; a
    ///   `draft` (not yet issued), `revoked`, `entered-in-error` one or a do-not-perform request is
    ///   no referral.
    ///
    /// An `unknown` or absent status is [`Standing::Unknown`], never "no" (§1.4).
    pub fn standing(&self) -> Standing {
        if self.do_not_perform {
            // a request *not* to do it, whatever its status
            return Standing::Void;
        }
        let Some(status) = self.status.as_deref() else {
            return Standing::Unknown;
        };
        if status == "unknown" {
            return Standing::Unknown;
        }
        let counts = match self.kind {
            ItemKind::Observation => {
                matches!(status, "final" | "amended" | "corrected" | "preliminary")
            }
            ItemKind::Procedure => status == "completed",
            ItemKind::Encounter => matches!(
                status,
                "arrived" | "triaged" | "in-progress" | "onleave" | "finished"
            ),
            ItemKind::ServiceRequest => matches!(status, "active" | "on-hold" | "completed"),
        };
        if counts {
            Standing::Counts
        } else {
            Standing::Void
        }
    }
    /// Whether the item counts ([`Item::standing`] is [`Standing::Counts`]).
    pub fn counts(&self) -> bool {
        self.standing() == Standing::Counts
    }
    /// The date that decides visibility on the as-of date (§1.2).
    pub fn visible_date(&self) -> Option<NaiveDate> {
        self.visible.or(self.date)
    }
    /// Whether one of its codings is in `set`.
    pub fn coded_in(&self, set: &[SiteCode]) -> bool {
        self.codes.iter().any(|c| set.contains(c))
    }
}

/// What one patient's KPI evaluation reads.
#[derive(Debug, Clone, Copy)]
pub struct ProgrammeInput<'a> {
    pub record: &'a PatientRecord,
    pub items: &'a [Item],
}

/// The answer of one KPI for one patient (§13, three-valued logic §1.4 plus the §13 rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KpiStatus {
    True,
    False,
    /// The record cannot tell (never counted as FALSE).
    Unknown,
    /// The KPI's window has not ended at `as_of`: left out of the denominator (§13).
    Pending,
    /// The patient died before the window ended (KPIs 7–10, §13): left out.
    Excluded,
}

/// One KPI's answer with what it read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KpiResult {
    /// 1–10 (KPI 11 is computed over patients, [`aggregate`]).
    pub kpi: u8,
    pub status: KpiStatus,
    /// `Type/id` of the resources that decided it (or `finding:<code>@<date>` for KPI 6).
    pub evidence: Vec<String>,
    /// Why, in words.
    pub reason: String,
}

/// One patient's programme evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientProgramme {
    /// `Patient/id`.
    pub patient: String,
    pub index: IndexOutcome,
    /// KPIs 1–10 in order when the patient has an index fracture; empty otherwise.
    pub kpis: Vec<KpiResult>,
}

impl PatientProgramme {
    pub fn kpi(&self, n: u8) -> Option<&KpiResult> {
        self.kpis.iter().find(|k| k.kpi == n)
    }
}

/// Evaluates one patient: the index fracture, then KPIs 1–10 (knowledge.md §13). The record is
/// read as visible on `as_of`; `items` dated after `as_of` are ignored likewise.
pub fn evaluate_patient(
    input: &ProgrammeInput<'_>,
    period: ReportingPeriod,
    as_of: NaiveDate,
    config: &Config,
) -> PatientProgramme {
    evaluate_patient_with(input, period, as_of, config, Death::AsRecorded)
}

/// What the record says of the patient's death beyond `Patient.deceasedDateTime` (which the
/// patient model carries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Death {
    /// The death date of the patient model, if any, is all there is.
    AsRecorded,
    /// `deceasedBoolean: true` without a date: the patient died, when is not recorded.
    Undated,
}

/// [`evaluate_patient`], told whether the patient died on an unrecorded date (§13 deceased
/// rule, §1.4): such a patient may have died before a window ended, so a KPI 7–10 answer that
/// is not TRUE is UNKNOWN (not FALSE; excluded cannot be told either).
pub fn evaluate_patient_with(
    input: &ProgrammeInput<'_>,
    period: ReportingPeriod,
    as_of: NaiveDate,
    config: &Config,
    death: Death,
) -> PatientProgramme {
    let record = visible_at(input.record, as_of);
    let items: Vec<Item> = input
        .items
        .iter()
        .filter(|i| i.visible_date().is_none_or(|d| d <= as_of))
        .cloned()
        .collect();
    let index = find_index(&record, period);
    let kpis = match &index {
        IndexOutcome::Index(ix) => kpis::evaluate(
            &kpis::KpiInput {
                record: &record,
                items: &items,
                index: ix,
                as_of,
                config,
                death_undated: death == Death::Undated && ix.deceased.is_none(),
            },
            &kpis::KPIS,
        ),
        _ => Vec::new(),
    };
    PatientProgramme {
        patient: input.record.patient.source.to_string(),
        index,
        kpis,
    }
}

#[cfg(test)]
mod tests;
