//! ImagingStudy → `ImagingStudy`, for DXA scans only (knowledge.md §13 KPI 4: "DXA recorded, or
//! a DXA Procedure/ImagingStudy"). A study is a DXA when a `procedureCode` coding is one of the
//! DXA procedure codes a `Procedure` is recognised by (§10.3: [`terminology::procedure`] →
//! `ProcedureKind::Dxa`), or when `modality` or a `series[].modality` is the DICOM modality
//! `BMD` (bone mineral densitometry, DICOM PS3.16 CID 29). Other studies are ignored.

use osteoguard_core::model::{ImagingStudy, ImagingStudyStatus, ProcedureKind, SourceRef};

use crate::dates::{self, Pick};
use crate::json::Value;
use crate::terminology;
use crate::util::{arr, codings, s, Issues};
use crate::Disposition;

/// The DICOM code system (modalities).
const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// DICOM modality "Bone Mineral Densitometry".
const BMD: &str = "BMD";

pub(crate) struct ImagingOutcome {
    pub disposition: Disposition,
    pub item: Option<ImagingStudy>,
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

pub(crate) fn map_imaging_study(
    res: &Value,
    reference: &str,
    issues: &mut Issues,
) -> ImagingOutcome {
    let Some(display) = dxa(res) else {
        return ImagingOutcome {
            disposition: Disposition::Ignored,
            item: None,
        };
    };
    use ImagingStudyStatus::*;
    let status = match s(res, "status") {
        Some("registered") => Registered,
        Some("available") => Available,
        Some("cancelled") => Cancelled,
        Some("entered-in-error") => EnteredInError,
        Some("unknown") => Unknown,
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
    if started.is_none() && matches!(status, Registered | Available) {
        issues.add("started", "missing: no date for the DXA study");
    }
    ImagingOutcome {
        disposition: Disposition::Used,
        item: Some(ImagingStudy {
            source: SourceRef::new(reference),
            status,
            display,
            started,
        }),
    }
}
