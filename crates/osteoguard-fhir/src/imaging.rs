//! ImagingStudy → `ImagingStudy` for DXA scans (knowledge.md §13 KPI 4: "DXA recorded, or a DXA
//! Procedure/ImagingStudy"), and → a spine-imaging `Procedure` for spine MRI / CT / X-ray (§7.2
//! "Imaging: DiagnosticReport / ImagingStudy / Observation for MRI, CT, X-ray spine").
//!
//! A study is a DXA when a `procedureCode` coding is one of the DXA procedure codes a
//! `Procedure` is recognised by (§10.3: [`terminology::procedure`] → `ProcedureKind::Dxa`), or
//! when `modality` or a `series[].modality` is the DICOM modality `BMD` (bone mineral
//! densitometry, DICOM PS3.16 CID 29). It is spine imaging when a `procedureCode` coding is a
//! spine MRI / CT / X-ray code ([`terminology::spine_imaging`]: the CPT codes of a spine-imaging
//! `Procedure`, and LOINC radiology codes). Other studies are ignored.
//!
//! Why a spine study becomes a `Procedure` (of kind `SpineMri` / `SpineCt` / `SpineXray`): that
//! is the fact the engine already reads for "spine imaging done" (§9 `ovcf-imaging-recommended`
//! clause (b), the timeline, the follow-up resolution), so every reader of it sees the study
//! without a new model type. Only what says the imaging was done counts (status `available` →
//! `completed`); any other status maps to a procedure status no rule counts, and `unknown` or a
//! missing status adds a data-quality issue. The date is `started`, which is also the study's
//! §1.2 visibility date; a done study without it is noted (it cannot count as imaging after a
//! given day).

use osteoguard_core::model::{
    ImagingStudy, ImagingStudyStatus, Procedure, ProcedureKind, ProcedureStatus, SourceRef,
};

use crate::dates::{self, Pick};
use crate::json::Value;
use crate::terminology;
use crate::util::{arr, cc_text, codings, s, Issues};
use crate::Disposition;

/// The DICOM code system (modalities).
const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// DICOM modality "Bone Mineral Densitometry".
const BMD: &str = "BMD";

pub(crate) struct ImagingOutcome {
    pub disposition: Disposition,
    /// The study as a DXA scan (§13 KPI 4).
    pub item: Option<ImagingStudy>,
    /// The study as spine imaging (§7.2).
    pub spine: Option<Procedure>,
}

fn is_bmd(coding: &Value) -> bool {
    s(coding, "code") == Some(BMD) && s(coding, "system").is_none_or(|sys| sys == DICOM)
}

/// What makes the study a DXA, if anything (for evidence).
fn dxa(res: &Value) -> Option<String> {
    for cc in arr(res, "procedureCode") {
        for c in codings(cc) {
            if terminology::procedure(c.system, c.code) == Some(ProcedureKind::Dxa) {
                return Some(format!("DXA procedure code {}", c.code));
            }
        }
    }
    let series_modalities = arr(res, "series").iter().filter_map(|x| x.get("modality"));
    if arr(res, "modality")
        .iter()
        .chain(series_modalities)
        .any(is_bmd)
    {
        return Some("DICOM modality BMD (bone densitometry)".into());
    }
    None
}

/// The spine-imaging kind of the study and the `procedureCode` that says so.
fn spine<'a, 'j>(res: &'a Value<'j>) -> Option<(ProcedureKind, &'a Value<'j>)> {
    arr(res, "procedureCode").iter().find_map(|cc| {
        codings(cc)
            .iter()
            .find_map(|c| terminology::spine_imaging(c.system, c.code))
            .map(|k| (k, cc))
    })
}

pub(crate) fn map_imaging_study(
    res: &Value,
    reference: &str,
    issues: &mut Issues,
) -> ImagingOutcome {
    let dxa = dxa(res);
    let spine = spine(res);
    if dxa.is_none() && spine.is_none() {
        return ImagingOutcome {
            disposition: Disposition::Ignored,
            item: None,
            spine: None,
        };
    }
    use ImagingStudyStatus::*;
    let status = match s(res, "status") {
        Some("registered") => Registered,
        Some("available") => Available,
        Some("cancelled") => Cancelled,
        Some("entered-in-error") => EnteredInError,
        Some("unknown") => {
            if spine.is_some() {
                issues.add(
                    "status",
                    "unknown: the spine imaging study is not counted as done",
                );
            }
            Unknown
        }
        Some(other) => {
            issues.add("status", format!("unknown ImagingStudy status {other:?}"));
            Unknown
        }
        None => {
            issues.add("status", "missing");
            Unknown
        }
    };
    let started = dates::datetime(res, "started", "started", Pick::First, issues);
    if started.is_none() {
        if dxa.is_some() && matches!(status, Registered | Available) {
            issues.add("started", "missing: no date for the DXA study");
        }
        if spine.is_some() && status == Available {
            issues.add(
                "started",
                "missing: no date for the spine imaging study (not counted as imaging on any day)",
            );
        }
    }
    let spine = spine.map(|(kind, cc)| Procedure {
        source: SourceRef::new(reference),
        kind,
        status: match status {
            Available => ProcedureStatus::Completed,
            Registered => ProcedureStatus::InProgress,
            Cancelled => ProcedureStatus::NotDone,
            EnteredInError => ProcedureStatus::EnteredInError,
            Unknown => ProcedureStatus::Other,
        },
        display: cc_text(cc).unwrap_or_default(),
        levels: Vec::new(),
        performed: started,
        visible: None,
    });
    ImagingOutcome {
        disposition: Disposition::Used,
        item: dxa.map(|display| ImagingStudy {
            source: SourceRef::new(reference),
            status,
            display,
            started,
        }),
        spine,
    }
}
