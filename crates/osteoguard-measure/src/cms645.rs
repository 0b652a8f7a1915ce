//! CMS645 "Bone Density Evaluation for Patients with Prostate Cancer and Receiving Androgen
//! Deprivation Therapy", library `BoneDensityProstateCancerAndrogenDeprivationTherapyFHIR`
//! version 1.4.000 (QI-Core 4.1.1). Proportion measure.
//!
//! Every `define` of the library is one function below, its CQL quoted above it. The two
//! negation defines ("No Bone Density Scan Ordered/Performed Due to Patient Refusal") are not
//! referenced by any population: the library's "Denominator Exception" is the literal `false`
//! (the measure developer commented the negation logic out, citing cql-execution issue 296),
//! so they are not implemented. The supplemental data elements are not computed.

use crate::cql::{
    included_in, is_true, or, overlaps, point_in, same_or_after, DateTime, Interval, Precision,
};
use crate::model::{Condition, MedicationRequest, ServiceRequest};
use crate::qicore::{self, has_code, CONDITION_CLINICAL, CONDITION_VERIFICATION};
use crate::{Ctx, Population};

const ADT_FOR_UROLOGY_CARE: &str =
    "http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113762.1.4.1151.48";
const DEXA_FOR_UROLOGY_CARE: &str =
    "http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113762.1.4.1151.38";
const OFFICE_VISIT: &str =
    "http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113883.3.464.1003.101.12.1001";
const PROSTATE_CANCER: &str = "http://cts.nlm.nih.gov/fhir/ValueSet/2.16.840.1.113883.3.526.3.319";

const SNOMEDCT: &str = "http://snomed.info/sct";
/// `code "Injection of leuprolide acetate for twelve month period (regime/therapy)"`
const LEUPROLIDE_TWELVE_MONTHS: &str = "456381000124102";

// The measure's own literals, named as the CQL names them.
/// `start of "Measurement Period" - 3 months`
const ADT_WINDOW_MONTHS_BEFORE: i32 = 3;
/// `start of "Measurement Period" + 9 months`
const ADT_WINDOW_MONTHS_AFTER: i32 = 9;
/// `DEXAOrdered.authoredOn 3 months or less on or after day of ...`
const DEXA_MONTHS_AFTER_ADT: i32 = 3;
/// `DEXAOrdered.authoredOn 2 years or less before day of ...`
const DEXA_YEARS_BEFORE_ADT: i32 = 2;

/// Every population definition evaluated raw (before the proportion-measure cascade).
pub(crate) fn evaluate(cx: &Ctx) -> Vec<(Population, bool)> {
    vec![
        (Population::InitialPopulation, initial_population(cx)),
        (Population::Denominator, denominator(cx)),
        (Population::Numerator, numerator(cx)),
        (Population::DenominatorException, denominator_exception(cx)),
    ]
}

/// ```cql
/// define "Initial Population":
///   "Has Qualifying Encounter"
///     and exists "Order for 12 Months of ADT in 3 Months Before to 9 Months After Start of Measurement Period"
/// ```
pub fn initial_population(cx: &Ctx) -> bool {
    has_qualifying_encounter(cx) && !order_for_12_months_of_adt(cx).is_empty()
}

/// ```cql
/// define "Denominator":
///   "Initial Population"
/// ```
pub fn denominator(cx: &Ctx) -> bool {
    initial_population(cx)
}

/// ```cql
/// define "Numerator":
///   "Has Baseline DEXA Scan Two Years Prior to the Start of or Less than Three Months After the Start of ADT"
/// ```
pub fn numerator(cx: &Ctx) -> bool {
    has_baseline_dexa_scan(cx)
}

/// ```cql
/// define "Denominator Exception":
///     //placeholder
///   false
/// ```
pub fn denominator_exception(_cx: &Ctx) -> bool {
    false
}

/// `X 3 months or less on or after day of A or X 2 years or less before day of A`, which the
/// translator writes as `In(X, Interval[A, A + 3 months], day) or
/// In(X, Interval[A - 2 years, A), day)`.
fn within_baseline_window(x: Option<DateTime>, adt: Option<DateTime>) -> bool {
    let Some(a) = adt else { return false };
    let after = Interval::closed(Some(a), a.add_months(DEXA_MONTHS_AFTER_ADT));
    let before = Interval {
        low: a.add_months(-12 * DEXA_YEARS_BEFORE_ADT),
        high: Some(a),
        low_closed: true,
        high_closed: false,
    };
    is_true(or(
        point_in(x, Some(&after), Some(Precision::Day)),
        point_in(x, Some(&before), Some(Precision::Day)),
    ))
}

/// ```cql
/// define "Has Baseline DEXA Scan Two Years Prior to the Start of or Less than Three Months After the Start of ADT":
///   exists ( ( [ServiceRequest: "DEXA Dual Energy Xray Absorptiometry, Bone Density for Urology Care"] DEXAOrdered
///         with "Order for 12 Months of ADT in 3 Months Before to 9 Months After Start of Measurement Period" OrderTwelveMonthsADT
///           such that DEXAOrdered.authoredOn 3 months or less on or after day of OrderTwelveMonthsADT.authoredOn
///             or DEXAOrdered.authoredOn 2 years or less before day of OrderTwelveMonthsADT.authoredOn
///         where DEXAOrdered.status in { 'active', 'completed' }
///           and DEXAOrdered.intent = 'order'
///           and DEXAOrdered.doNotPerform is not true )
///       union ( [Observation: "DEXA Dual Energy Xray Absorptiometry, Bone Density for Urology Care"] DEXAPerformed
///           with "Order for 12 Months of ADT in 3 Months Before to 9 Months After Start of Measurement Period" OrderTwelveMonthsADT
///             such that DEXAPerformed.effective.toInterval ( ) 3 months or less on or after day of OrderTwelveMonthsADT.authoredOn
///               or DEXAPerformed.effective.toInterval ( ) 2 years or less before day of OrderTwelveMonthsADT.authoredOn
///           where DEXAPerformed.status in { 'final', 'amended', 'corrected' } ) )
/// ```
///
/// For the Observation the left operand is an interval; the translator compares its start.
pub fn has_baseline_dexa_scan(cx: &Ctx) -> bool {
    let orders = order_for_12_months_of_adt(cx);
    let order_dates: Vec<Option<DateTime>> = orders
        .iter()
        .map(|o| o.authored_on.as_deref().and_then(DateTime::parse))
        .collect();
    let ordered = cx.rec.service_requests.iter().any(|s| {
        cx.vs.has(DEXA_FOR_UROLOGY_CARE, s.code.as_ref())
            && matches!(s.status.as_deref(), Some("active" | "completed"))
            && s.intent.as_deref() == Some("order")
            && s.do_not_perform != Some(true)
            && {
                let x = s.authored_on.as_deref().and_then(DateTime::parse);
                order_dates.iter().any(|a| within_baseline_window(x, *a))
            }
    });
    ordered
        || cx.rec.observations.iter().any(|o| {
            cx.vs.has(DEXA_FOR_UROLOGY_CARE, o.code.as_ref()) && qicore::is_final(o) && {
                let x = qicore::effective(o).and_then(|i| i.start());
                order_dates.iter().any(|a| within_baseline_window(x, *a))
            }
        })
}

/// `Interval[start of "Measurement Period" - 3 months, start of "Measurement Period" + 9 months]`
fn adt_window(cx: &Ctx) -> Interval {
    let s = cx.mp.start();
    Interval::closed(
        s.and_then(|s| s.add_months(-ADT_WINDOW_MONTHS_BEFORE)),
        s.and_then(|s| s.add_months(ADT_WINDOW_MONTHS_AFTER)),
    )
}

/// ```cql
/// define "First ADT in 3 Months Before to 9 Months After Start of Measurement Period":
///   First(("Androgen Deprivation Therapy for Urology Care Medication Active Start Dates"
///       union "Androgen Deprivation Therapy for Urology Care Medication Order Start Dates") ADTDateTime
///       with "Prostate Cancer Diagnosis" ProstateCancer
///         such that ADTDateTime during day of ProstateCancer.prevalenceInterval()
///           and ADTDateTime during day of Interval[start of "Measurement Period" - 3 months, start of "Measurement Period" + 9 months]
///       sort ascending
///   )
/// ```
pub fn first_adt(cx: &Ctx) -> Option<DateTime> {
    let window = adt_window(cx);
    let dx: Vec<Interval> = prostate_cancer_diagnosis(cx)
        .map(|c| qicore::prevalence_interval(c, cx.birth))
        .collect();
    let day = Some(Precision::Day);
    adt_medication_active_start_dates(cx)
        .chain(adt_medication_order_start_dates(cx))
        .flatten()
        .filter(|t| {
            dx.iter().any(|p| is_true(point_in(Some(*t), Some(p), day)))
                && is_true(point_in(Some(*t), Some(&window), day))
        })
        .fold(None, |best: Option<DateTime>, t| match best {
            Some(b) if b.lt(&t, None) != Some(false) => Some(b),
            _ => Some(t),
        })
}

/// ```cql
/// define "Order for 12 Months of ADT in 3 Months Before to 9 Months After Start of Measurement Period":
///   [ServiceRequest: "Injection of leuprolide acetate for twelve month period (regime/therapy)"] OrderTwelveMonthADT
///     with "First ADT in 3 Months Before to 9 Months After Start of Measurement Period" FirstADTMP
///       such that OrderTwelveMonthADT.authoredOn on or after day of FirstADTMP
///         and OrderTwelveMonthADT.authoredOn during day of Interval[start of "Measurement Period" - 3 months, start of "Measurement Period" + 9 months]
///         and OrderTwelveMonthADT.status in { 'active', 'completed' }
///         and OrderTwelveMonthADT.intent = 'order'
///         and OrderTwelveMonthADT.doNotPerform is not true
/// ```
pub fn order_for_12_months_of_adt<'a>(cx: &'a Ctx) -> Vec<&'a ServiceRequest> {
    let Some(first) = first_adt(cx) else {
        return Vec::new();
    };
    let window = adt_window(cx);
    let day = Some(Precision::Day);
    cx.rec
        .service_requests
        .iter()
        .filter(|s| {
            let authored = s.authored_on.as_deref().and_then(DateTime::parse);
            has_code(s.code.as_ref(), SNOMEDCT, LEUPROLIDE_TWELVE_MONTHS)
                && is_true(same_or_after(authored, Some(first), day))
                && is_true(point_in(authored, Some(&window), day))
                && matches!(s.status.as_deref(), Some("active" | "completed"))
                && s.intent.as_deref() == Some("order")
                && s.do_not_perform != Some(true)
        })
        .collect()
}

fn adt_requests<'a>(cx: &'a Ctx) -> impl Iterator<Item = &'a MedicationRequest> + 'a {
    cx.rec.medication_requests.iter().filter(move |m| {
        cx.vs
            .has(ADT_FOR_UROLOGY_CARE, m.medication_codeable_concept.as_ref())
            && matches!(m.status.as_deref(), Some("active" | "completed"))
            && matches!(
                m.intent.as_deref(),
                Some(
                    "order" | "original-order" | "reflex-order" | "filler-order" | "instance-order"
                )
            )
    })
}

/// `firstMedicationPeriod: First((collapse(X.dosageInstruction.timing.repeat.bounds DoseTime
/// return DoseTime.toInterval())) DrugPeriods sort by start of $this)`: the collapsed bounds
/// period that starts first. Only `boundsPeriod` is read (`boundsDuration`/`boundsRange` are
/// ages relative to nothing here).
fn first_medication_period(m: &MedicationRequest) -> Option<Interval> {
    let mut periods: Vec<Interval> = m
        .dosage_instruction
        .iter()
        .filter_map(|d| d.timing.as_ref()?.repeat.as_ref()?.bounds_period.as_ref())
        .map(|p| p.to_interval())
        .collect();
    if periods.is_empty() {
        return None;
    }
    // Sort by start (unknown starts first, as CQL sorts nulls first), then collapse the head.
    periods.sort_by(|a, b| match (a.low, b.low) {
        (None, None) => std::cmp::Ordering::Equal,
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (Some(x), Some(y)) => x.compare(&y, None).unwrap_or(std::cmp::Ordering::Equal),
    });
    let mut first = periods[0];
    for p in &periods[1..] {
        if is_true(overlaps(Some(&first), Some(p), None)) {
            if is_true(crate::cql::before(first.end(), p.end(), None)) {
                first.high = p.high;
                first.high_closed = p.high_closed;
            }
        } else {
            break;
        }
    }
    Some(first)
}

/// `NormalizeInterval(pointInTime, dateTimeInterval).earliest()`:
///
/// ```cql
/// define function NormalizeInterval(pointInTime DateTime, dateTimeInterval Interval<DateTime>):
///   if pointInTime is not null then Interval[pointInTime, pointInTime]
///     else if dateTimeInterval is not null then dateTimeInterval
///     else null as Interval<DateTime>
/// ```
fn normalize_interval_earliest(point: Option<DateTime>, iv: Option<Interval>) -> Option<DateTime> {
    match (point, iv) {
        (Some(p), _) => Some(p),
        (None, Some(i)) => i.earliest(),
        (None, None) => None,
    }
}

/// ```cql
/// define "Androgen Deprivation Therapy for Urology Care Medication Active Start Dates":
///   [MedicationRequest: "Androgen deprivation therapy for Urology Care"] ADTActive
///     let firstMedicationPeriod: First((collapse(ADTActive.dosageInstruction.timing.repeat.bounds DoseTime
///           return DoseTime.toInterval())) DrugPeriods sort by start of $this),
///     firstMedicationEvent: First((ADTActive.dosageInstruction.timing dosageTiming
///         return First(dosageTiming.event dosageTimingEvents sort ascending)) firstEvents
///         sort ascending),
///     medicationDateTime: NormalizeInterval(firstMedicationEvent, firstMedicationPeriod).earliest ( )
///     where ADTActive.status in { 'active', 'completed' }
///       and ADTActive.intent in { 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order' }
///     return medicationDateTime
/// ```
pub fn adt_medication_active_start_dates<'a>(
    cx: &'a Ctx,
) -> impl Iterator<Item = Option<DateTime>> + 'a {
    adt_requests(cx).map(|m| {
        let first_event = m
            .dosage_instruction
            .iter()
            .filter_map(|d| d.timing.as_ref())
            .flat_map(|t| t.event.iter())
            .filter_map(|e| DateTime::parse(e))
            .fold(None, |best: Option<DateTime>, t| match best {
                Some(b) if b.lt(&t, None) != Some(false) => Some(b),
                _ => Some(t),
            });
        normalize_interval_earliest(first_event, first_medication_period(m))
    })
}

/// ```cql
/// define "Androgen Deprivation Therapy for Urology Care Medication Order Start Dates":
///   [MedicationRequest: "Androgen deprivation therapy for Urology Care"] ADTOrder
///     let firstMedicationPeriod: First((collapse(ADTOrder.dosageInstruction.timing.repeat.bounds DoseTime
///           return DoseTime.toInterval())) DrugPeriods sort by start of $this),
///     medicationDateTime: NormalizeInterval(ADTOrder.authoredOn, firstMedicationPeriod).earliest ( )
///     where ADTOrder.status in { 'active', 'completed' }
///       and ADTOrder.intent in { 'order', 'original-order', 'reflex-order', 'filler-order', 'instance-order' }
///     return medicationDateTime
/// ```
pub fn adt_medication_order_start_dates<'a>(
    cx: &'a Ctx,
) -> impl Iterator<Item = Option<DateTime>> + 'a {
    adt_requests(cx).map(|m| {
        normalize_interval_earliest(
            m.authored_on.as_deref().and_then(DateTime::parse),
            first_medication_period(m),
        )
    })
}

/// ```cql
/// define "Has Qualifying Encounter":
///   exists ( ["Encounter": "Office Visit"] OfficeVisit
///       where OfficeVisit.period during "Measurement Period"
///         and OfficeVisit.status = 'finished' )
/// ```
pub fn has_qualifying_encounter(cx: &Ctx) -> bool {
    cx.rec.encounters.iter().any(|e| {
        e.type_.iter().any(|t| cx.vs.has(OFFICE_VISIT, Some(t)))
            && e.status.as_deref() == Some("finished")
            && is_true(included_in(
                e.period.as_ref().map(|p| p.to_interval()).as_ref(),
                Some(&cx.mp),
                None,
            ))
    })
}

/// ```cql
/// define "Prostate Cancer Diagnosis":
///   [Condition: "Prostate Cancer"] ProstateCancer
///     where ProstateCancer.prevalenceInterval ( ) overlaps "Measurement Period"
///       and ProstateCancer.clinicalStatus ~ QICoreCommon."active"
///       and ProstateCancer.verificationStatus ~ QICoreCommon."confirmed"
/// ```
pub fn prostate_cancer_diagnosis<'a>(cx: &'a Ctx) -> impl Iterator<Item = &'a Condition> + 'a {
    cx.rec.conditions.iter().filter(move |c| {
        cx.vs.has(PROSTATE_CANCER, c.code.as_ref())
            && is_true(overlaps(
                Some(&qicore::prevalence_interval(c, cx.birth)),
                Some(&cx.mp),
                None,
            ))
            && has_code(c.clinical_status.as_ref(), CONDITION_CLINICAL, "active")
            && has_code(
                c.verification_status.as_ref(),
                CONDITION_VERIFICATION,
                "confirmed",
            )
    })
}
