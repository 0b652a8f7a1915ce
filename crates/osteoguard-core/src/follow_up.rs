//! Follow-up between two screening runs: the status of each finding of a patient
//! (knowledge.md §1.4, §1.7, §9; issue 22).
//!
//! [`follow_up`] is pure: the previous run's open findings of one patient, the as-of date of
//! that run and this run's [`Assessment`] give the status and the reason of every current finding
//! and of every previous finding that is no longer present. `osteoguard screen` calls it per
//! patient; the Spark path calls the same function.
//!
//! Statuses:
//! * **new** — not flagged in the previous run (nor a finding of the same topic);
//! * **persisting** — same code, same severity;
//! * **escalated** — same code with a higher severity, or a graver finding of the same topic
//!   ([`TOPICS`]) replaced the previous one (e.g. due-soon → overdue);
//! * **de-escalated** — same code with a lower severity, or a milder finding of the same topic
//!   replaced it without positive evidence;
//! * **resolved** — gone, with positive evidence named in the reason (a dose given, a transition
//!   started, a newer acceptable renal result, a DXA done …), or — only for findings that are
//!   neither critical nor a safety check — gone while every input the rule reads was available;
//! * **recheck-needed** — gone because its data aged out of a window or became unknown (the
//!   reason names what to re-measure), or a critical / safety finding gone without positive
//!   evidence. A critical or safety finding never becomes "resolved" without evidence.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::assessment::Assessment;
use crate::finding::{FindingCode, Severity};
use crate::rules::safety::ZoledronateRenal;

/// The status of a (patient, finding) between two runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    New,
    Persisting,
    Escalated,
    DeEscalated,
    Resolved,
    RecheckNeeded,
}

impl Status {
    pub const ALL: [Status; 6] = [
        Status::New,
        Status::Persisting,
        Status::Escalated,
        Status::DeEscalated,
        Status::Resolved,
        Status::RecheckNeeded,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Persisting => "persisting",
            Status::Escalated => "escalated",
            Status::DeEscalated => "de-escalated",
            Status::Resolved => "resolved",
            Status::RecheckNeeded => "recheck-needed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A "same topic" chain: findings that supersede one another as a situation grows graver,
/// mildest first, with the specification section that defines the progression.
#[derive(Debug, Clone, Copy)]
pub struct Topic {
    pub name: &'static str,
    pub section: &'static str,
    pub chain: &'static [FindingCode],
}

/// The reason every finding of a first screening run (no previous run) is `new`.
pub const FIRST_RUN_REASON: &str = "first screening run";

/// The supersession chains (a finding later in a chain supersedes an earlier one).
pub const TOPICS: &[Topic] = &[
    Topic {
        name: "denosumab schedule",
        section: "knowledge.md §5.1, §5.2, §5.5; §9 denosumab-due-soon, denosumab-overdue, \
                  denosumab-discontinuation-without-transition, rebound-vertebral-fractures-suspected",
        chain: &[
            FindingCode::DenosumabDueSoon,
            FindingCode::DenosumabOverdue,
            FindingCode::DenosumabDiscontinuationWithoutTransition,
            FindingCode::ReboundVertebralFracturesSuspected,
        ],
    },
    Topic {
        name: "glucocorticoid bone health",
        section: "knowledge.md §2.6, §4.1; §9 gc-bone-protection, gc-fracture-risk-assessment-due",
        chain: &[
            FindingCode::GcBoneProtection,
            FindingCode::GcFractureRiskAssessmentDue,
        ],
    },
    Topic {
        name: "pharmacotherapy",
        section: "knowledge.md §4.2; §9 osteoporosis-treatment-indicated, anabolic-therapy-preferred",
        chain: &[
            FindingCode::OsteoporosisTreatmentIndicated,
            FindingCode::AnabolicTherapyPreferred,
        ],
    },
    Topic {
        name: "vertebral fracture",
        section: "knowledge.md §7.4, §7.5, §7.7; §9 ovcf-imaging-recommended, acute-ovcf, \
                  ovcf-refractory-pain-augmentation-candidate",
        chain: &[
            FindingCode::OvcfImagingRecommended,
            FindingCode::AcuteOvcf,
            FindingCode::OvcfRefractoryPainAugmentationCandidate,
        ],
    },
];

/// The safety checks of knowledge.md §8 and the findings about harm already happening: they are
/// never "resolved" without positive evidence, whatever their severity.
pub const SAFETY: &[FindingCode] = &[
    FindingCode::ZoledronateRenalContraindication,
    FindingCode::HypocalcaemiaAntiresorptiveCaution,
    FindingCode::VitaminDDeficiencyAntiresorptiveCaution,
    FindingCode::DenosumabDiscontinuationWithoutTransition,
    FindingCode::ReboundVertebralFracturesSuspected,
    FindingCode::NewFractureAfterAugmentation,
];

/// What the previous run listed for a patient (open findings only: not resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousFinding {
    /// The finding code as stored (a code this version no longer knows is kept as text).
    pub code: String,
    pub severity: Severity,
    pub due: Option<NaiveDate>,
}

/// The previous run as far as one patient is concerned.
#[derive(Debug, Clone, Copy)]
pub struct Previous<'a> {
    pub as_of: NaiveDate,
    pub findings: &'a [PreviousFinding],
}

/// The status of a current finding, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub code: FindingCode,
    pub status: Status,
    pub reason: String,
}

/// A previous finding that is no longer present: resolved or recheck-needed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gone {
    pub code: String,
    pub severity: Severity,
    pub due: Option<NaiveDate>,
    pub status: Status,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowUp {
    /// One per finding of the assessment, in its order.
    pub current: Vec<Decision>,
    /// The previous findings no longer present (those superseded by a current finding of the
    /// same topic are part of that finding's decision instead).
    pub gone: Vec<Gone>,
}

fn topic_of(code: FindingCode) -> Option<(&'static Topic, usize)> {
    TOPICS
        .iter()
        .find_map(|t| t.chain.iter().position(|c| *c == code).map(|i| (t, i)))
}

/// Whether `code` is a critical-or-safety finding at `severity`.
pub fn needs_evidence(code: Option<FindingCode>, severity: Severity) -> bool {
    severity == Severity::Critical || code.is_none_or(|c| SAFETY.contains(&c))
}

/// The statuses of one patient's findings between two runs (see the module doc).
pub fn follow_up(previous: Option<Previous<'_>>, a: &Assessment) -> FollowUp {
    let Some(prev) = previous else {
        return FollowUp {
            current: a
                .findings
                .iter()
                .map(|f| Decision {
                    code: f.code,
                    status: Status::New,
                    reason: FIRST_RUN_REASON.into(),
                })
                .collect(),
            gone: Vec::new(),
        };
    };
    let since = prev.as_of;
    let mut superseded: Vec<&str> = Vec::new();
    let mut current = Vec::with_capacity(a.findings.len());
    for f in &a.findings {
        let same = prev.findings.iter().find(|p| p.code == f.code.as_str());
        let d = match same {
            Some(p) if f.severity > p.severity => Decision {
                code: f.code,
                status: Status::Escalated,
                reason: format!("severity rose from {} to {}", p.severity, f.severity),
            },
            Some(p) if f.severity < p.severity => Decision {
                code: f.code,
                status: Status::DeEscalated,
                reason: format!("severity fell from {} to {}", p.severity, f.severity),
            },
            Some(_) => Decision {
                code: f.code,
                status: Status::Persisting,
                reason: format!("also flagged in the run as of {since}"),
            },
            None => chain_decision(f.code, prev, a, &mut superseded),
        };
        current.push(d);
    }
    let present: Vec<&str> = a.findings.iter().map(|f| f.code.as_str()).collect();
    let gone = prev
        .findings
        .iter()
        .filter(|p| !present.contains(&p.code.as_str()) && !superseded.contains(&p.code.as_str()))
        .map(|p| gone_decision(p, since, a))
        .collect();
    FollowUp { current, gone }
}

/// A current finding whose code was not flagged before: new, or the successor of a previous
/// finding of the same topic.
fn chain_decision<'p>(
    code: FindingCode,
    prev: Previous<'p>,
    a: &Assessment,
    superseded: &mut Vec<&'p str>,
) -> Decision {
    let Some((topic, at)) = topic_of(code) else {
        return new_decision(code, prev.as_of);
    };
    let present: Vec<FindingCode> = a.findings.iter().map(|f| f.code).collect();
    // The previous finding of the topic that no longer fires (the graver one wins).
    let before = prev
        .findings
        .iter()
        .filter_map(|p| {
            let c = FindingCode::parse(&p.code)?;
            let i = topic.chain.iter().position(|x| *x == c)?;
            (!present.contains(&c)).then_some((i, p))
        })
        .max_by_key(|(i, _)| *i);
    match before {
        Some((i, p)) if i < at => {
            superseded.push(p.code.as_str());
            Decision {
                code,
                status: Status::Escalated,
                reason: format!(
                    "supersedes {} ({}) of the run as of {} ({})",
                    p.code, p.severity, prev.as_of, topic.name
                ),
            }
        }
        // A milder finding of the topic: when the graver one went away with positive evidence
        // (a dose given …) that one is resolved and this one is new; otherwise this one is a
        // de-escalation of it.
        Some((_, p)) if positive_evidence(FindingCode::parse(&p.code), prev.as_of, a).is_none() => {
            superseded.push(p.code.as_str());
            let status = Status::DeEscalated;
            Decision {
                code,
                status,
                reason: format!(
                    "replaces {} ({}) of the run as of {} ({}) without evidence that it was acted on",
                    p.code, p.severity, prev.as_of, topic.name
                ),
            }
        }
        _ => new_decision(code, prev.as_of),
    }
}

fn new_decision(code: FindingCode, since: NaiveDate) -> Decision {
    Decision {
        code,
        status: Status::New,
        reason: format!("not flagged in the run as of {since}"),
    }
}

/// Positive evidence, dated after the previous run, that a finding no longer holds.
fn positive_evidence(
    code: Option<FindingCode>,
    since: NaiveDate,
    a: &Assessment,
) -> Option<String> {
    use FindingCode::*;
    let code = code?;
    let dmab_dose = a.denosumab.doses.iter().filter(|d| **d > since).max();
    let transition = a.denosumab.transition.filter(|d| *d > since).map(|d| {
        format!(
            "transition to {} started on {d}",
            a.denosumab
                .transition_agent
                .as_deref()
                .unwrap_or("another agent")
        )
    });
    let antiresorptive = a
        .timeline
        .antiresorptive_doses
        .iter()
        .filter(|d| d.date > since)
        .max_by_key(|d| d.date)
        .map(|d| format!("{} given on {} ({})", d.agent, d.date, d.reference));
    match code {
        DenosumabDueSoon | DenosumabOverdue | DenosumabDiscontinuationWithoutTransition => {
            dmab_dose
                .map(|d| format!("denosumab dose given on {d}"))
                .or(transition)
        }
        ReboundVertebralFracturesSuspected => transition,
        ZoledronateRenalContraindication => (a.zoledronate_renal == ZoledronateRenal::Acceptable)
            .then(|| {
                "a renal result within the freshness window now allows zoledronic acid".into()
            }),
        GcBoneProtection | OsteoporosisTreatmentIndicated | AnabolicTherapyPreferred => {
            antiresorptive
        }
        GcFractureRiskAssessmentDue => a
            .bone_density
            .latest_dxa
            .filter(|d| *d > since)
            .map(|d| format!("DXA done on {d}")),
        OvcfImagingRecommended | AcuteOvcf | OvcfRefractoryPainAugmentationCandidate => a
            .timeline
            .procedures
            .iter()
            .filter(|p| p.date > since)
            .max_by_key(|p| p.date)
            .map(|p| format!("{:?} on {} ({})", p.kind, p.date, p.reference)),
        _ => None,
    }
}

/// What the data-insufficient finding says is missing for `code`, when it does.
fn missing_for(code: &str, a: &Assessment) -> Vec<String> {
    a.findings
        .iter()
        .filter(|f| f.code == FindingCode::DataInsufficient)
        .flat_map(|f| f.insufficient_items.iter())
        .filter(|i| i.rule == code)
        .map(|i| i.missing.clone())
        .collect()
}

fn gone_decision(p: &PreviousFinding, since: NaiveDate, a: &Assessment) -> Gone {
    let code = FindingCode::parse(&p.code);
    let (status, reason) = if let Some(ev) = positive_evidence(code, since, a) {
        (Status::Resolved, ev)
    } else {
        let missing = missing_for(&p.code, a);
        if !missing.is_empty() {
            (
                Status::RecheckNeeded,
                format!(
                    "no longer evaluable, data aged out or unknown: re-measure — {}",
                    missing.join("; ")
                ),
            )
        } else if code == Some(FindingCode::DataInsufficient) {
            (
                Status::Resolved,
                "the missing inputs are now recorded".to_string(),
            )
        } else if needs_evidence(code, p.severity) {
            (
                Status::RecheckNeeded,
                format!(
                    "no longer flagged, but no evidence since {since} that it was acted on \
                     ({} finding): review the record before closing",
                    if p.severity == Severity::Critical {
                        "critical"
                    } else {
                        "safety"
                    }
                ),
            )
        } else {
            (
                Status::Resolved,
                "criteria no longer met, evaluated with every input it reads available".to_string(),
            )
        }
    };
    Gone {
        code: p.code.clone(),
        severity: p.severity,
        due: p.due,
        status,
        reason,
    }
}

#[cfg(test)]
mod tests {
    //! The branches the two-run scenarios of `osteoguard-screen` (tests/worklist.rs) do not
    //! reach with real exports: a patient with nothing flagged now.

    use super::*;
    use crate::model::{Patient, PatientRecord, Sex, SourceRef};
    use crate::{assess, Config};

    fn nothing_flagged() -> Assessment {
        let patient = Patient {
            source: SourceRef::new("Patient/p"),
            birth_date: "1990-01-01".parse().ok(),
            sex: Sex::Male,
            deceased: None,
        };
        let a = assess(
            &PatientRecord::new(patient),
            "2024-06-30".parse().unwrap(),
            &Config::default(),
        );
        assert!(a.findings.is_empty(), "{:?}", a.findings);
        a
    }

    fn prev(code: &str, severity: Severity) -> PreviousFinding {
        PreviousFinding {
            code: code.into(),
            severity,
            due: None,
        }
    }

    fn gone(findings: &[PreviousFinding]) -> Vec<Gone> {
        let a = nothing_flagged();
        let f = follow_up(
            Some(Previous {
                as_of: "2024-03-31".parse().unwrap(),
                findings,
            }),
            &a,
        );
        assert!(f.current.is_empty());
        f.gone
    }

    #[test]
    fn critical_or_safety_findings_gone_without_evidence_need_a_recheck() {
        let g = gone(&[
            prev("acute-ovcf", Severity::Critical),
            prev(
                "vitamin-d-deficiency-antiresorptive-caution",
                Severity::High,
            ),
            prev("a-code-of-a-later-release", Severity::Info),
        ]);
        assert_eq!(g.len(), 3);
        for x in &g {
            assert_eq!(x.status, Status::RecheckNeeded, "{x:?}");
            assert!(x.reason.contains("no evidence since 2024-03-31"), "{x:?}");
        }
    }

    #[test]
    fn other_findings_gone_with_every_input_available_are_resolved() {
        let g = gone(&[
            prev("gc-bone-protection", Severity::Moderate),
            prev("data-insufficient", Severity::Moderate),
        ]);
        assert_eq!(g[0].status, Status::Resolved);
        assert!(g[0].reason.starts_with("criteria no longer met"));
        assert_eq!(g[1].status, Status::Resolved);
        assert_eq!(g[1].reason, "the missing inputs are now recorded");
    }

    #[test]
    fn without_a_previous_run_everything_is_new() {
        let f = follow_up(None, &nothing_flagged());
        assert!(f.current.is_empty() && f.gone.is_empty());
        assert_eq!(Status::parse("recheck-needed"), Some(Status::RecheckNeeded));
        assert!(Status::ALL
            .iter()
            .all(|s| Status::parse(s.as_str()) == Some(*s)));
    }

    #[test]
    fn topics_are_disjoint_chains_with_their_sections() {
        let mut seen = Vec::new();
        for t in TOPICS {
            assert!(t.section.contains("knowledge.md §"), "{}", t.name);
            assert!(t.chain.len() >= 2);
            for c in t.chain {
                assert!(!seen.contains(c), "{c} in two topics");
                seen.push(*c);
            }
        }
    }
}
