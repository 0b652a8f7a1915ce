//! The evaluation pipeline: visible record → facts → rules (in a fixed order) → findings.
//!
//! Rule order matters only where the specification makes one rule read another's result
//! (knowledge.md §9 "Firing order / interactions"):
//! * `osteoporosis-treatment-indicated` is suppressed by `denosumab-discontinuation-without-transition`;
//! * `rebound-vertebral-fractures-suspected` reads `bmd-significant-loss` facts;
//! * the §8 safety checks run after every rule that can recommend zoledronate;
//! * `data-insufficient` is assembled last from the items every rule contributed.

use std::borrow::Cow;
use std::collections::BTreeSet;

use chrono::{Datelike, NaiveDate};

use crate::config::Config;
use crate::facts::{self, Input};
use serde::Serialize;

use crate::finding::{DataQualityIssue, Evidence, Finding, FindingCode, Severity, Task};
use crate::model::{
    Ingredient, Keep, MedicationSource, MedicationStatus, PatientRecord, SourceRef,
};
use crate::rules;

/// The named quantities of the specification (knowledge.md §2–§8), computed once per
/// evaluation. One struct for [`Ctx`] (what rules read), [`Evaluation`] (what outputs read) and
/// the test harness; both dereference to it, so `ctx.dmab` and `ev.dmab` read the same field.
#[derive(Debug, Default)]
pub struct Facts {
    pub gc: facts::gc::GcExposure,
    pub spine: facts::spine::SpineFacts,
    pub dxa: facts::dxa::DxaFacts,
    pub dmab: facts::denosumab::DenosumabCourse,
    pub therapy: facts::therapy::TherapyFacts,
    pub risk: facts::risk::RiskAssessment,
}

impl Facts {
    /// Every fact, in dependency order.
    pub fn compute(input: &Input<'_>) -> Facts {
        let gc = facts::gc::compute(input);
        let spine = facts::spine::compute(input);
        let dxa = facts::dxa::compute(input, &spine);
        let dmab = facts::denosumab::compute(input);
        let therapy = facts::therapy::compute(input, &dmab);
        let risk = facts::risk::compute(input, &gc, &spine, &dxa, &therapy);
        Facts {
            gc,
            spine,
            dxa,
            dmab,
            therapy,
            risk,
        }
    }
}

/// Everything a rule may read: the input, the [`Facts`] (through `Deref`) and the drafts.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub input: Input<'a>,
    pub facts: Facts,
    /// The draft orders of an order-select / order-sign context (empty otherwise): the record
    /// holds them "as if signed" (§9 "Order hooks", v0.10.3).
    pub drafts: Vec<DraftOrder>,
}

impl std::ops::Deref for Ctx<'_> {
    type Target = Facts;
    fn deref(&self) -> &Facts {
        &self.facts
    }
}

impl std::ops::DerefMut for Ctx<'_> {
    fn deref_mut(&mut self) -> &mut Facts {
        &mut self.facts
    }
}

impl<'a> Ctx<'a> {
    pub fn as_of(&self) -> NaiveDate {
        self.input.as_of
    }
    pub fn t(&self) -> &crate::thresholds::Thresholds {
        self.input.t
    }
    pub fn age(&self) -> Option<i64> {
        self.input.age
    }
    pub fn record(&self) -> &PatientRecord {
        self.input.record
    }
    pub fn is_female(&self) -> bool {
        self.input.record.patient.sex == crate::model::Sex::Female
    }
}

/// One item of the single `data-insufficient` finding (closed list of §9).
#[derive(Debug, Clone, PartialEq)]
pub struct InsufficientItem {
    /// Item number 1–9 of the §9 `data-insufficient` row.
    pub item: u8,
    /// The rule (finding code or fact) that could not be evaluated.
    pub rule: String,
    /// The missing input, in words.
    pub missing: String,
    pub evidence: Vec<Evidence>,
}

/// What rules write to.
#[derive(Debug, Default)]
pub struct Outcome {
    pub findings: Vec<Finding>,
    pub insufficient: Vec<InsufficientItem>,
    pub tasks: Vec<Task>,
    pub data_quality: Vec<DataQualityIssue>,
}

impl Outcome {
    pub fn fired(&self, code: FindingCode) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }
    pub fn get(&self, code: FindingCode) -> Option<&Finding> {
        self.findings.iter().find(|f| f.code == code)
    }
    pub fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }
    pub fn insufficient(&mut self, item: u8, rule: impl Into<String>, missing: impl Into<String>) {
        self.insufficient.push(InsufficientItem {
            item,
            rule: rule.into(),
            missing: missing.into(),
            evidence: Vec::new(),
        });
    }
}

impl Finding {
    /// Starts a finding; the title comes from the code.
    pub fn new(
        code: FindingCode,
        severity: Severity,
        summary: impl Into<String>,
        recommendation: impl Into<String>,
        citation: impl Into<String>,
        rule_section: impl Into<String>,
    ) -> Self {
        Finding {
            code,
            severity,
            title: code.title().to_string(),
            summary: summary.into(),
            evidence: Vec::new(),
            recommendation: recommendation.into(),
            citation: citation.into(),
            references: Vec::new(),
            rule_section: rule_section.into(),
            due: None,
            inputs_missing: Vec::new(),
            notes: Vec::new(),
            levels: Vec::new(),
            trace: Vec::new(),
            insufficient_items: Vec::new(),
        }
    }
    /// Appends evidence. The first list is collected as it is (a `Vec` is taken over, not
    /// copied); later ones are appended.
    pub fn with_evidence(mut self, e: impl IntoIterator<Item = Evidence>) -> Self {
        if self.evidence.is_empty() {
            self.evidence = e.into_iter().collect();
        } else {
            self.evidence.extend(e);
        }
        self
    }
    pub fn with_due(mut self, due: Option<NaiveDate>) -> Self {
        self.due = due;
        self
    }
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }
    pub fn with_levels(mut self, levels: impl IntoIterator<Item = String>) -> Self {
        self.levels.extend(levels);
        self
    }
    /// Adds a line to the machine-readable trace (spec vocabulary stays out of the clinical text).
    pub fn with_trace(mut self, line: impl Into<String>) -> Self {
        self.trace.push(line.into());
        self
    }
}

/// Completed years from `birth` to `as_of` (§1.2).
pub fn age_at(birth: NaiveDate, as_of: NaiveDate) -> i64 {
    let mut years = i64::from(as_of.year()) - i64::from(birth.year());
    if (as_of.month(), as_of.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

/// Whether an item with this visibility date is part of the record on `as_of` (§1.2): items
/// without any usable date stay (rules treat their dates as unknown).
fn seen(d: Option<NaiveDate>, as_of: NaiveDate) -> bool {
    d.is_none_or(|d| d <= as_of)
}

/// The record as it looked on `as_of` (§1.2): items whose visibility date is after `as_of` are
/// removed. Items without any usable date stay (rules treat their dates as unknown).
pub fn visible_at(record: &PatientRecord, as_of: NaiveDate) -> PatientRecord {
    record.canonical_copy(&Keep {
        medication: &|m| seen(m.visible, as_of),
        observation: &|o| seen(o.visible, as_of),
        condition: &|c| seen(c.visible, as_of),
        procedure: &|p| seen(p.visible_date(), as_of),
        dispense: &|d| seen(d.date(), as_of),
        imaging_study: &|i| seen(i.date(), as_of),
    })
}

/// [`visible_at`] in place, for a caller that owns the record and needs nothing after `as_of`
/// (population screening): afterwards the assessment uses the record as it is, without a copy.
/// The order of what remains is kept.
pub fn hide_after(record: &mut PatientRecord, as_of: NaiveDate) {
    record.medications.retain(|m| seen(m.visible, as_of));
    record.observations.retain(|o| seen(o.visible, as_of));
    record.conditions.retain(|c| seen(c.visible, as_of));
    record.procedures.retain(|p| seen(p.visible_date(), as_of));
    record.dispenses.retain(|d| seen(d.date(), as_of));
    record.imaging_studies.retain(|i| seen(i.date(), as_of));
}

/// [`visible_at`] without the copy when there is nothing to hide: the record itself when every
/// item is visible on `as_of` and the lists are already canonical. Why: in a population screen
/// `as_of` is usually after all the data, and copying each record (twice per assessment) was a
/// fifth of the engine's time.
pub fn visible_view(record: &PatientRecord, as_of: NaiveDate) -> Cow<'_, PatientRecord> {
    let all_seen = record.medications.iter().all(|m| seen(m.visible, as_of))
        && record.observations.iter().all(|o| seen(o.visible, as_of))
        && record.conditions.iter().all(|c| seen(c.visible, as_of))
        && record
            .procedures
            .iter()
            .all(|p| seen(p.visible_date(), as_of))
        && record.dispenses.iter().all(|d| seen(d.date(), as_of))
        && record.imaging_studies.iter().all(|i| seen(i.date(), as_of));
    if all_seen && record.is_canonical() {
        Cow::Borrowed(record)
    } else {
        Cow::Owned(visible_at(record, as_of))
    }
}

/// A draft order of an order-select / order-sign context (knowledge.md §9 "Order hooks",
/// v0.10.3). The record holds it "as if signed"; this keeps what the client sent.
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DraftOrder {
    pub reference: SourceRef,
    pub ingredients: Vec<Ingredient>,
    /// The status as sent (before `draft` became `active`).
    pub status: MedicationStatus,
}

impl DraftOrder {
    /// The draft sets its agent to `stopped`, `completed` or `cancelled` (§9 clause (c)).
    pub fn stops(&self) -> bool {
        matches!(
            self.status,
            MedicationStatus::Stopped | MedicationStatus::Completed | MedicationStatus::Cancelled
        )
    }
    pub fn has(&self, i: Ingredient) -> bool {
        self.ingredients.contains(&i)
    }
}

/// The record with the draft orders `drafts` (MedicationRequests already in `record`) "as if
/// signed" (§9 "Order hooks", v0.10.3): status `draft` becomes `active`, other statuses (e.g.
/// `stopped`) are kept, and a missing `authoredOn` is `as_of`. Returns the drafts as sent.
pub fn as_if_signed(
    record: &PatientRecord,
    drafts: &[SourceRef],
    as_of: NaiveDate,
) -> (PatientRecord, Vec<DraftOrder>) {
    let mut r = record.clone();
    let mut sent = Vec::new();
    for m in r
        .medications
        .iter_mut()
        .filter(|m| m.kind == MedicationSource::Request && drafts.contains(&m.source))
    {
        sent.push(DraftOrder {
            reference: m.source.clone(),
            ingredients: m.ingredients.clone(),
            status: m.status,
        });
        m.signed_draft = true;
        if m.status == MedicationStatus::Draft {
            m.status = MedicationStatus::Active;
        }
        if m.authored.is_none() {
            m.authored = Some(as_of);
        }
        if m.visible.is_none() {
            m.visible = Some(as_of);
        }
    }
    sent.sort_by(|a, b| a.reference.cmp(&b.reference));
    (r, sent)
}

/// Result of [`evaluate`]: the facts (through `Deref`) and the outcome, before rendering.
#[derive(Debug)]
pub struct Evaluation {
    pub facts: Facts,
    pub outcome: Outcome,
    pub age: Option<i64>,
    /// The draft orders of a what-if evaluation ([`evaluate_what_if`]); empty otherwise.
    pub drafts: Vec<DraftOrder>,
    /// The §8 renal verdict for zoledronic acid at `as_of`.
    pub zoledronate_renal: rules::safety::ZoledronateRenal,
}

/// Runs every rule over `record` at `as_of`.
pub fn evaluate(record: &PatientRecord, as_of: NaiveDate, config: &Config) -> Evaluation {
    evaluate_with_drafts(record, as_of, config, Vec::new())
}

/// The what-if evaluation of the order hooks (knowledge.md §9 "Order hooks", v0.10.3): the
/// draft orders `drafts` (MedicationRequests of `record`) are evaluated as if signed
/// ([`as_if_signed`]) and the whole assessment runs at `as_of`, clause (c) of
/// `denosumab-discontinuation-without-transition` and the §8 safety checks included.
pub fn evaluate_what_if(
    record: &PatientRecord,
    drafts: &[SourceRef],
    as_of: NaiveDate,
    config: &Config,
) -> Evaluation {
    let (signed, sent) = as_if_signed(record, drafts, as_of);
    evaluate_with_drafts(&signed, as_of, config, sent)
}

fn evaluate_with_drafts(
    record: &PatientRecord,
    as_of: NaiveDate,
    config: &Config,
    drafts: Vec<DraftOrder>,
) -> Evaluation {
    evaluate_visible(&visible_view(record, as_of), as_of, config, drafts)
}

/// [`evaluate`] of a record already as visible on `as_of` ([`visible_view`]), for a caller
/// that needs the visible record too (the assessment's timeline): one view per assessment.
/// Why: a record with items after `as_of`, or out of canonical order, is copied by the view,
/// and the copy was made twice per assessment (a quarter of the 20-year benchmark record's).
pub(crate) fn evaluate_visible(
    visible: &PatientRecord,
    as_of: NaiveDate,
    config: &Config,
    drafts: Vec<DraftOrder>,
) -> Evaluation {
    let age = visible.patient.birth_date.map(|b| age_at(b, as_of));
    let input = Input {
        record: visible,
        as_of,
        t: &config.thresholds,
        age,
    };
    let ctx = Ctx {
        facts: Facts::compute(&input),
        input,
        drafts,
    };
    let mut out = Outcome::default();
    rules::run_all(&ctx, &mut out);
    let zoledronate_renal = rules::safety::zoledronate_renal_status(&ctx);

    // Site configuration may switch findings off (issue: governance); data-insufficient items of
    // a disabled rule are still reported, since the data problem remains.
    out.findings
        .retain(|f| !config.disabled_findings.contains(&f.code));
    for f in &mut out.findings {
        f.references = crate::sources::cited_references(&f.citation);
    }
    sort_findings(&mut out.findings);
    out.tasks
        .sort_by(|a, b| (a.due, &a.code).cmp(&(b.due, &b.code)));
    out.tasks.dedup();
    let dq: BTreeSet<_> = out.data_quality.drain(..).collect();
    out.data_quality = dq.into_iter().collect();

    Evaluation {
        facts: ctx.facts,
        outcome: out,
        age,
        drafts: ctx.drafts,
        zoledronate_renal,
    }
}

impl std::ops::Deref for Evaluation {
    type Target = Facts;
    fn deref(&self) -> &Facts {
        &self.facts
    }
}

/// Most severe first, then earliest due, then the §9 table order.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| match (a.due, b.due) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.code.cmp(&b.code))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn visible_view_is_visible_at_without_the_copy() {
        let mut r = crate::testkit::example_6_record();
        for as_of in [
            "2024-05-31",
            "2024-06-01",
            "2024-06-02",
            "2024-12-01",
            "2030-01-01",
        ] {
            let view = visible_view(&r, d(as_of));
            assert_eq!(*view, visible_at(&r, d(as_of)), "{as_of}");
        }
        r.canonicalise();
        assert!(matches!(
            visible_view(&r, d("2030-01-01")),
            Cow::Borrowed(_)
        ));
        assert!(matches!(visible_view(&r, d("2024-06-01")), Cow::Owned(_)));
        let mut hidden = r.clone();
        hide_after(&mut hidden, d("2024-06-01"));
        assert_eq!(hidden, visible_at(&r, d("2024-06-01")));
        // Out of canonical order: copied and sorted, never borrowed as it is.
        r.medications.reverse();
        assert!(!r.is_canonical());
        let view = visible_view(&r, d("2030-01-01"));
        assert!(matches!(view, Cow::Owned(_)));
        assert_eq!(*view, visible_at(&r, d("2030-01-01")));
    }

    /// The record with every list reversed: out of canonical order.
    fn scrambled(r: &PatientRecord) -> PatientRecord {
        fn scramble<T>(v: &mut [T]) {
            v.reverse();
        }
        let mut s = r.clone();
        scramble(&mut s.medications);
        scramble(&mut s.observations);
        scramble(&mut s.conditions);
        scramble(&mut s.procedures);
        scramble(&mut s.dispenses);
        scramble(&mut s.imaging_studies);
        s
    }

    /// `visible_at` (the kept items ordered by reference, then cloned once) is the visible items
    /// cloned and then `canonicalise`d, in order or not, at dates that hide items or none.
    #[test]
    fn visible_at_is_the_visible_items_canonicalised() {
        let mut records = vec![crate::testkit::example_6_record()];
        records.extend(
            crate::testkit::text_scenarios()
                .into_iter()
                .map(|s| s.record),
        );
        let as_ofs = [
            "2015-01-01",
            "2022-06-30",
            "2023-09-28",
            "2024-06-02",
            "2030-01-01",
        ];
        for r in records {
            for record in [r.clone(), scrambled(&r)] {
                for as_of in as_ofs.map(d) {
                    let mut expected = record.clone();
                    hide_after(&mut expected, as_of);
                    expected.canonicalise();
                    assert_eq!(visible_at(&record, as_of), expected, "{as_of}");
                    assert_eq!(*visible_view(&record, as_of), expected, "{as_of}");
                }
            }
        }
    }

    /// A record out of canonical order is assessed as the same record in order.
    #[test]
    fn out_of_order_record_assesses_as_the_sorted_one() {
        let config = Config::default();
        for s in crate::testkit::text_scenarios() {
            let json = |x: &PatientRecord| {
                serde_json::to_string(&crate::assess(x, s.as_of, &config)).unwrap()
            };
            let mut sorted = s.record.clone();
            sorted.canonicalise();
            let out_of_order = scrambled(&sorted);
            assert!(
                !out_of_order.is_canonical() || sorted.observations.len() < 2,
                "{}",
                s.name
            );
            assert_eq!(json(&out_of_order), json(&sorted), "{}", s.name);
        }
    }

    /// Hiding what is after as-of beforehand changes nothing in the assessment.
    #[test]
    fn assessment_of_the_hidden_record_is_the_same() {
        let r = crate::testkit::example_6_record();
        let config = Config::default();
        for as_of in ["2024-05-31", "2024-06-02", "2024-12-01", "2030-01-01"] {
            let mut hidden = r.clone();
            hide_after(&mut hidden, d(as_of));
            let json = |x: &PatientRecord| {
                serde_json::to_value(crate::assess(x, d(as_of), &config)).unwrap()
            };
            assert_eq!(json(&r), json(&hidden), "{as_of}");
        }
    }

    #[test]
    fn age_is_completed_years() {
        assert_eq!(age_at(d("1950-03-15"), d("2023-03-14")), 72);
        assert_eq!(age_at(d("1950-03-15"), d("2023-03-15")), 73);
        assert_eq!(age_at(d("1950-03-15"), d("2022-12-01")), 72);
    }
}
