//! DiagnosticReport → a spine-imaging `Procedure` (knowledge.md §7.2 "Imaging: DiagnosticReport /
//! ImagingStudy / Observation for MRI, CT, X-ray spine").
//!
//! A report is spine imaging when a coding of its `code` is a spine MRI / CT / X-ray code
//! ([`terminology::spine_imaging`]: the CPT codes a spine-imaging `Procedure` is recognised by,
//! and LOINC radiology codes). Every other report (laboratory panels, notes) is ignored.
//!
//! Why a `Procedure`: it is the fact the engine already reads for "spine imaging done" (§9
//! `ovcf-imaging-recommended` clause (b), the timeline, the follow-up resolution); see
//! `imaging.rs` for the ImagingStudy counterpart.
//!
//! * Status (conservative): only a report that says the imaging was done and read counts —
//!   `final`, `amended`, `corrected`, `appended` → `completed`. `registered`, `partial`,
//!   `preliminary` → in progress (noted: not counted yet), `cancelled` → not done,
//!   `entered-in-error` → entered in error; `unknown`, an unrecognised or a missing status →
//!   other, with a data-quality issue. None of those suppresses a finding.
//! * Dates: the imaging date is `effective[x]` (`effectiveDateTime`; `effectivePeriod.end`, else
//!   its start with a note), as for a Procedure's `performed[x]`. §1.2 visibility is `issued`,
//!   else `effective[x]` (`Procedure::visible`): a report issued after the as-of date is not part
//!   of the record on that day. A done report without an imaging date is noted: it cannot count
//!   as imaging on or after any day.
//! * Coded findings (`conclusionCode`) are not read: knowledge.md gives no verified code for
//!   bone-marrow oedema, and an oedema finding needs a vertebral level a report-level code does
//!   not carry; the structured `osteoguard-vertebral-edema` Observation is the way (§7.2, §10.4).

use osteoguard_core::model::{Procedure, ProcedureStatus, SourceRef};

use crate::dates::{self, Pick};
use crate::json::Value;
use crate::terminology;
use crate::util::{cc_text, codings, s, Issues};
use crate::Disposition;

pub(crate) struct ReportOutcome {
    pub disposition: Disposition,
    pub item: Option<Procedure>,
}

pub(crate) fn map_diagnostic_report(
    res: &Value,
    reference: &str,
    issues: &mut Issues,
) -> ReportOutcome {
    let ignored = ReportOutcome {
        disposition: Disposition::Ignored,
        item: None,
    };
    let Some(code) = res.get("code") else {
        // A report without a code (required in R4) says nothing a rule could use as imaging.
        return ignored;
    };
    let Some(kind) = codings(code)
        .iter()
        .find_map(|c| terminology::spine_imaging(c.system, c.code))
    else {
        return ignored;
    };
    let status = match s(res, "status") {
        Some("final" | "amended" | "corrected" | "appended") => ProcedureStatus::Completed,
        Some(st @ ("registered" | "partial" | "preliminary")) => {
            issues.add(
                "status",
                format!("{st}: the spine imaging report is not final, not counted as imaging done"),
            );
            ProcedureStatus::InProgress
        }
        Some("cancelled") => ProcedureStatus::NotDone,
        Some("entered-in-error") => ProcedureStatus::EnteredInError,
        Some("unknown") => {
            issues.add(
                "status",
                "unknown: the spine imaging report is not counted as imaging done",
            );
            ProcedureStatus::Other
        }
        Some(other) => {
            issues.add(
                "status",
                format!("unknown DiagnosticReport status {other:?}: not counted as imaging done"),
            );
            ProcedureStatus::Other
        }
        None => {
            issues.add("status", "missing");
            ProcedureStatus::Other
        }
    };
    let performed = dates::point_or_period_end(res, "effective", issues);
    if performed.is_none() && status == ProcedureStatus::Completed {
        issues.add(
            "effective[x]",
            "no imaging date: the spine imaging report is not counted as imaging on any day",
        );
    }
    let issued = dates::day(res, "issued", "issued", Pick::First, issues);
    ReportOutcome {
        disposition: Disposition::Used,
        item: Some(Procedure {
            source: SourceRef::new(reference),
            kind,
            status,
            display: cc_text(code).unwrap_or_default(),
            levels: Vec::new(),
            performed,
            visible: issued,
        }),
    }
}
