//! Condition and Procedure mapping (knowledge.md §1.2, §1.6, §7.2, §10.3, §10.3a, §10.4).

use crate::json::Value;
use osteoguard_core::model::{
    Condition, ConditionKind, FractureMechanism, FractureSite, Period, Procedure, ProcedureStatus,
    SourceRef, Verification, VertebralLevel, VertebralLocation,
};

use crate::dates::{self, Pick};
use crate::terminology::{
    self, CondCode, SiteHint, EXT_FRACTURE_MECHANISM, ICD10CM, ICD10CM_OID, SNOMED,
};
use crate::util::{arr, cc_text, codings, s, Issues};
use crate::Disposition;

/// Reads a list-valued `bodySite` (Condition, Procedure). A single object is the wrong R4 shape:
/// not used, with a note (§10.4 v0.10.2).
fn body_sites(res: &Value, ty: &str, issues: &mut Issues) -> Vec<SiteHint> {
    let Some(bs) = res.get("bodySite") else {
        return Vec::new();
    };
    let Some(list) = bs.as_array() else {
        issues.add(
            "bodySite",
            format!("wrong JSON shape: R4 {ty}.bodySite is a list of CodeableConcepts; not used (§10.4)"),
        );
        return Vec::new();
    };
    list.iter()
        .map(|cc| {
            if let Some(l) = codings(cc)
                .iter()
                .filter(|c| c.system == SNOMED)
                .find_map(|c| terminology::level_from_snomed(c.code))
            {
                return SiteHint::Level(l);
            }
            match s(cc, "text") {
                Some(t) => terminology::site_from_text(t),
                None => SiteHint::Unrecognised,
            }
        })
        .collect()
}

fn levels(hints: &[SiteHint]) -> Vec<VertebralLevel> {
    let mut v: Vec<VertebralLevel> = hints
        .iter()
        .filter_map(|h| match h {
            SiteHint::Level(l) => Some(*l),
            _ => None,
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

fn verification(res: &Value, issues: &mut Issues) -> Verification {
    let Some(vs) = res.get("verificationStatus") else {
        return Verification::Unknown;
    };
    if let Some(c) = codings(vs).first() {
        return match c.code {
            "confirmed" => Verification::Confirmed,
            "provisional" => Verification::Provisional,
            "unconfirmed" => Verification::Unconfirmed,
            "differential" => Verification::Differential,
            "refuted" => Verification::Refuted,
            "entered-in-error" => Verification::EnteredInError,
            other => {
                issues.add("verificationStatus", format!("unknown code {other:?}"));
                Verification::Unknown
            }
        };
    }
    Verification::Unknown
}

/// Resolves the vertebral location of a fracture code with the bodySite levels.
fn locate(
    code_loc: VertebralLocation,
    lv: &[VertebralLevel],
    issues: &mut Issues,
) -> VertebralLocation {
    match code_loc {
        VertebralLocation::Level(l) => {
            if lv.iter().any(|x| *x != l) {
                issues.add(
                    "bodySite",
                    format!("levels differ from the code's level {l}; the code is used"),
                );
            }
            code_loc
        }
        VertebralLocation::Pair(a, b) => match lv {
            [] => code_loc,
            [x] if *x == a || *x == b => VertebralLocation::Level(*x),
            _ => {
                issues.add(
                    "bodySite",
                    format!("does not resolve the code's level pair {a}–{b}; the pair is kept"),
                );
                code_loc
            }
        },
        VertebralLocation::Unspecified => match lv {
            [] => code_loc,
            [x] => VertebralLocation::Level(*x),
            [x, ..] => {
                issues.add(
                    "bodySite",
                    format!("several levels on one Condition; only {x} is used (record one Condition per level)"),
                );
                VertebralLocation::Level(*x)
            }
        },
    }
}

pub(crate) struct CondOutcome {
    pub disposition: Disposition,
    pub item: Option<Condition>,
}

pub(crate) fn map_condition(res: &Value, reference: &str, issues: &mut Issues) -> CondOutcome {
    let Some(code) = res.get("code") else {
        issues.add("code", "missing");
        return CondOutcome {
            disposition: Disposition::NotUnderstood,
            item: None,
        };
    };
    // ICD-10-CM first (it carries levels and the 7th character), then SNOMED CT.
    let cs = codings(code);
    let decoded = cs
        .iter()
        .filter(|c| c.system == ICD10CM || c.system == ICD10CM_OID)
        .chain(
            cs.iter()
                .filter(|c| c.system != ICD10CM && c.system != ICD10CM_OID),
        )
        .find_map(|c| terminology::condition(c.system, c.code));
    let Some(decoded) = decoded else {
        return CondOutcome {
            disposition: Disposition::Ignored,
            item: None,
        };
    };
    let hints = body_sites(res, "Condition", issues);
    let lv = levels(&hints);
    let kind = match decoded.code {
        CondCode::Kind(ConditionKind::Fracture(FractureSite::Vertebral(loc))) => {
            ConditionKind::Fracture(FractureSite::Vertebral(locate(loc, &lv, issues)))
        }
        CondCode::Kind(k) => k,
        CondCode::OsteoporoticFractureBySite => {
            // §10.3 v0.10.1: vertebral when bodySite is vertebral, absent or unrecognised.
            let named = hints.iter().find_map(|h| match h {
                SiteHint::Hip => Some(FractureSite::Hip),
                SiteHint::Wrist => Some(FractureSite::Wrist),
                SiteHint::Humerus => Some(FractureSite::Humerus),
                SiteHint::OtherSite => Some(FractureSite::OsteoporoticOther),
                _ => None,
            });
            let vertebral_named = hints
                .iter()
                .any(|h| matches!(h, SiteHint::Level(_) | SiteHint::Vertebral));
            match named {
                Some(site) if !vertebral_named => ConditionKind::Fracture(site),
                _ => ConditionKind::Fracture(FractureSite::Vertebral(locate(
                    VertebralLocation::Unspecified,
                    &lv,
                    issues,
                ))),
            }
        }
    };
    // onset[x]: a partial date becomes the period it covers.
    let onset = if res.get("onsetDateTime").is_some() {
        dates::read(res, "onsetDateTime", "onsetDateTime", issues).and_then(|dt| {
            if dt.date.is_partial() {
                issues.add(
                    "onsetDateTime",
                    "partial date: onset taken as the period it covers (first to last day)",
                );
            }
            let p = Period {
                start: dt.date.first(),
                end: dt.date.last(),
            };
            p.start.map(|_| p)
        })
    } else if let Some(p) = res.get("onsetPeriod") {
        Some(crate::med::period(p, "onsetPeriod", issues))
            .filter(|p| p.start.is_some() || p.end.is_some())
    } else {
        for k in ["onsetString", "onsetAge", "onsetRange"] {
            if res.get(k).is_some() {
                issues.add(k, "onset not given as a date: ignored");
            }
        }
        None
    };
    let recorded = dates::day(res, "recordedDate", "recordedDate", Pick::First, issues);
    let visible = recorded.or(onset.and_then(|o| o.start));
    let mechanism = arr(res, "extension").iter().find_map(|e| {
        if s(e, "url") != Some(EXT_FRACTURE_MECHANISM) {
            return None;
        }
        match s(e, "valueCode") {
            Some("traumatic") => Some(FractureMechanism::Traumatic),
            Some("fragility") => Some(FractureMechanism::Fragility),
            other => {
                issues.add(
                    "extension(fracture-mechanism)",
                    format!("unknown value {other:?}"),
                );
                None
            }
        }
    });
    CondOutcome {
        disposition: Disposition::Used,
        item: Some(Condition {
            source: SourceRef::new(reference),
            kind,
            display: cc_text(code).unwrap_or_default(),
            verification: verification(res, issues),
            onset,
            recorded,
            visible,
            mechanism,
            subsequent_encounter: decoded.subsequent,
        }),
    }
}

pub(crate) struct ProcOutcome {
    pub disposition: Disposition,
    pub item: Option<Procedure>,
}

pub(crate) fn map_procedure(res: &Value, reference: &str, issues: &mut Issues) -> ProcOutcome {
    let Some(code) = res.get("code") else {
        issues.add("code", "missing");
        return ProcOutcome {
            disposition: Disposition::NotUnderstood,
            item: None,
        };
    };
    let Some(kind) = codings(code)
        .iter()
        .find_map(|c| terminology::procedure(c.system, c.code))
    else {
        return ProcOutcome {
            disposition: Disposition::Ignored,
            item: None,
        };
    };
    let status = match s(res, "status") {
        Some("completed") => ProcedureStatus::Completed,
        Some("in-progress") => ProcedureStatus::InProgress,
        Some("not-done") => ProcedureStatus::NotDone,
        Some("entered-in-error") => ProcedureStatus::EnteredInError,
        Some(_) => ProcedureStatus::Other,
        None => {
            issues.add("status", "missing");
            ProcedureStatus::Other
        }
    };
    let performed = dates::point_or_period_end(res, "performed", issues);
    if res.get("performedDateTime").is_none() && res.get("performedPeriod").is_none() {
        for k in ["performedString", "performedAge", "performedRange"] {
            if res.get(k).is_some() {
                issues.add(k, "performed not given as a date: ignored");
            }
        }
    }
    if performed.is_none() && status == ProcedureStatus::Completed {
        issues.add("performed[x]", "no performed date");
    }
    let hints = body_sites(res, "Procedure", issues);
    let lv = levels(&hints);
    if kind.is_augmentation() && lv.is_empty() {
        issues.add(
            "bodySite",
            "no vertebral level recognised for the augmentation",
        );
    }
    ProcOutcome {
        disposition: Disposition::Used,
        item: Some(Procedure {
            source: SourceRef::new(reference),
            kind,
            status,
            display: cc_text(code).unwrap_or_default(),
            levels: lv,
            performed,
            visible: None,
        }),
    }
}
