//! The included libraries' functions the measures call: `QICoreCommon` 2.1.000
//! (`toInterval`, `prevalenceInterval`, `abatementInterval`, `earliest`), `FHIRHelpers`
//! 4.4.000 (`ToInterval(Period)`, `ToQuantity`), `CumulativeMedicationDuration` 4.1.000
//! (`medicationRequestPeriod`, `ToDaily`) and `Status` 1.8.000 (the `is…` filters).

use crate::cql::{DateTime, Interval};
use crate::model::{
    CodeableConcept, Condition, MedicationRequest, Observation, Procedure, Quantity, Range,
    ServiceRequest,
};

pub const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
pub const CONDITION_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/condition-ver-status";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";

/// `X + quantity` for a calendar duration (years and months by calendar, weeks and days by
/// days), as used by `toInterval(Quantity)` for ages.
fn add_quantity(d: DateTime, q: &Quantity) -> Option<DateTime> {
    let q = q.to_cql()?;
    let whole = q.value.trunc() as i64;
    match q.unit.as_str() {
        "a" | "year" | "years" => d.add_months(i32::try_from(whole.checked_mul(12)?).ok()?),
        "mo" | "month" | "months" => d.add_months(i32::try_from(whole).ok()?),
        "wk" | "week" | "weeks" => d.add_days(whole.checked_mul(7)?),
        "d" | "day" | "days" => d.add_days(whole),
        _ => None,
    }
}

/// `toInterval()` of an age (`Quantity`): `Interval[birthDate + q, birthDate + q + 1 year)`.
fn age_interval(birth: Option<DateTime>, low: &Quantity, high: &Quantity) -> Option<Interval> {
    let b = birth?;
    let lo = add_quantity(b, low)?;
    let hi = add_quantity(b, high)?.add_months(12)?;
    Some(Interval {
        low: Some(lo),
        high: Some(hi),
        low_closed: true,
        high_closed: false,
    })
}

fn range_interval(birth: Option<DateTime>, r: &Range) -> Option<Interval> {
    age_interval(birth, r.low.as_ref()?, r.high.as_ref()?)
}

/// `toInterval()` of a timing choice: a dateTime is `Interval[x, x]`, a Period goes through
/// `ToInterval(Period)`, an age (Quantity / Range) is read from the birth date.
pub fn choice_interval(
    date_time: Option<&str>,
    period: Option<&crate::model::Period>,
    age: Option<&Quantity>,
    range: Option<&Range>,
    birth: Option<DateTime>,
) -> Option<Interval> {
    if let Some(s) = date_time {
        return DateTime::parse(s).map(Interval::point);
    }
    if let Some(p) = period {
        return Some(p.to_interval());
    }
    if let Some(q) = age {
        return age_interval(birth, q, q);
    }
    range.and_then(|r| range_interval(birth, r))
}

/// `Observation.effective.toInterval()`.
pub fn effective(o: &Observation) -> Option<Interval> {
    let dt = o
        .effective_date_time
        .as_deref()
        .or(o.effective_instant.as_deref());
    choice_interval(dt, o.effective_period.as_ref(), None, None, None)
}

/// `Procedure.performed.toInterval()`.
pub fn performed(p: &Procedure, birth: Option<DateTime>) -> Option<Interval> {
    choice_interval(
        p.performed_date_time.as_deref(),
        p.performed_period.as_ref(),
        p.performed_age.as_ref(),
        p.performed_range.as_ref(),
        birth,
    )
}

/// `abatementInterval()`: a dateTime is `Interval[x, x]`; an age or age range is read from
/// the birth date; a Period is `Interval[low, high)`.
pub fn abatement_interval(c: &Condition, birth: Option<DateTime>) -> Option<Interval> {
    if let Some(s) = c.abatement_date_time.as_deref() {
        return DateTime::parse(s).map(Interval::point);
    }
    if let Some(q) = c.abatement_age.as_ref() {
        return age_interval(birth, q, q);
    }
    if let Some(r) = c.abatement_range.as_ref() {
        return range_interval(birth, r);
    }
    c.abatement_period.as_ref().map(|p| {
        let iv = p.to_interval();
        Interval {
            low_closed: true,
            high_closed: false,
            ..iv
        }
    })
}

/// `isActive()`: clinical status active, recurrence or relapse.
pub fn is_active(c: &Condition) -> bool {
    c.clinical_status.as_ref().is_some_and(|s| {
        ["active", "recurrence", "relapse"]
            .iter()
            .any(|k| s.has(CONDITION_CLINICAL, k))
    })
}

/// `prevalenceInterval()`:
///
/// ```cql
/// if condition.clinicalStatus ~ "active" or ~ "recurrence" or ~ "relapse" then
///   Interval[start of condition.onset.toInterval(), end of condition.abatementInterval()]
/// else
///   (end of condition.abatementInterval()) abatementDate
///     return if abatementDate is null then
///       Interval[start of condition.onset.toInterval(), abatementDate)
///     else
///       Interval[start of condition.onset.toInterval(), abatementDate]
/// ```
pub fn prevalence_interval(c: &Condition, birth: Option<DateTime>) -> Interval {
    let onset = choice_interval(
        c.onset_date_time.as_deref(),
        c.onset_period.as_ref(),
        c.onset_age.as_ref(),
        c.onset_range.as_ref(),
        birth,
    );
    let low = onset.and_then(|i| i.start());
    let abatement_end = abatement_interval(c, birth).and_then(|i| i.end());
    if is_active(c) {
        Interval::closed(low, abatement_end)
    } else {
        Interval {
            low,
            high: abatement_end,
            low_closed: true,
            high_closed: abatement_end.is_some(),
        }
    }
}

/// Status `isAssessmentPerformed`: final/amended/corrected with a `survey` category.
pub fn is_assessment_performed(o: &Observation) -> bool {
    matches!(o.status.as_deref(), Some("final" | "amended" | "corrected"))
        && o.category
            .iter()
            .any(|c| c.has(OBSERVATION_CATEGORY, "survey"))
}

/// Status `isObservationBMI` (and the other vital-sign filters): final/amended/corrected.
pub fn is_final(o: &Observation) -> bool {
    matches!(o.status.as_deref(), Some("final" | "amended" | "corrected"))
}

/// Status `isProcedurePerformed`: `status ~ 'completed'`.
pub fn is_procedure_performed(p: &Procedure) -> bool {
    p.status.as_deref() == Some("completed")
}

/// Status `isDiagnosticStudyOrder` / `isInterventionOrder`: active or completed orders.
pub fn is_order(s: &ServiceRequest) -> bool {
    matches!(s.status.as_deref(), Some("active" | "completed"))
        && s.intent.as_deref() == Some("order")
}

/// Status `isMedicationActive`: `status = 'active' and intent = 'order'`.
pub fn is_medication_active(m: &MedicationRequest) -> bool {
    m.status.as_deref() == Some("active") && m.intent.as_deref() == Some("order")
}

/// Status `isMedicationOrder`: active or completed orders.
pub fn is_medication_order(m: &MedicationRequest) -> bool {
    matches!(m.status.as_deref(), Some("active" | "completed"))
        && m.intent.as_deref() == Some("order")
}

/// CMD `ToDaily(frequency, period)`: doses per day; null for an unknown unit (the library
/// raises a Warning message and returns null).
fn to_daily(frequency: Option<i64>, period: Option<(f64, &str)>) -> Option<f64> {
    let f = frequency? as f64;
    let (value, unit) = period?;
    if value == 0.0 {
        return None;
    }
    let per_hour = f * (24.0 / value);
    Some(match unit {
        "h" | "hour" | "hours" => per_hour,
        "min" | "minute" | "minutes" => per_hour * 60.0,
        "s" | "second" | "seconds" => per_hour * 60.0 * 60.0,
        "d" | "day" | "days" => per_hour / 24.0,
        "wk" | "week" | "weeks" => per_hour / (24.0 * 7.0),
        "mo" | "month" | "months" => per_hour / (24.0 * 30.0),
        "a" | "year" | "years" => per_hour / (24.0 * 365.0),
        _ => return None,
    })
}

/// CMD `medicationRequestPeriod()` (an `Interval<Date>`):
///
/// ```cql
/// startDate: Coalesce(date from start of boundsPeriod, date from R.authoredOn,
///                     date from start of R.dispenseRequest.validityPeriod),
/// totalDaysSupplied: Coalesce(daysSupply, quantity.value / (dose.value * dosesPerDay)) * (1 + refills)
/// return
///   if startDate is not null and totalDaysSupplied is not null then
///     Interval[startDate, startDate + Quantity(totalDaysSupplied - 1, 'day') ]
///   else if startDate is not null and boundsPeriod."high" is not null then
///     Interval[startDate, date from end of boundsPeriod]
///   else null
/// ```
///
/// `singleton from` over several dosage instructions (or several doseAndRate) is a run-time
/// error in CQL; here the period is then null.
pub fn medication_request_period(r: &MedicationRequest) -> Option<Interval> {
    if r.dosage_instruction.len() > 1 {
        return None;
    }
    let dosage = r.dosage_instruction.first();
    if dosage.is_some_and(|d| d.dose_and_rate.len() > 1) {
        return None;
    }
    let dose_and_rate = dosage.and_then(|d| d.dose_and_rate.first());
    let repeat = dosage
        .and_then(|d| d.timing.as_ref())
        .and_then(|t| t.repeat.as_ref());
    let frequency = repeat.and_then(|r| r.frequency_max.or(r.frequency));
    let period = repeat.and_then(|r| Some((r.period?, r.period_unit.as_deref()?)));
    let dose = dose_and_rate.and_then(|d| {
        d.dose_range
            .as_ref()
            .and_then(|r| r.high.as_ref())
            .or(d.dose_quantity.as_ref())
            .and_then(|q| q.value)
    });
    // Coalesce(ToDaily(...), Count(timing.repeat.timeOfDay), 1.0): Count of an absent list is
    // 0, not null, so 1.0 is never reached.
    let doses_per_day = to_daily(frequency, period)
        .unwrap_or_else(|| repeat.map_or(0, |r| r.time_of_day.len()) as f64);
    let bounds = repeat
        .and_then(|r| r.bounds_period.as_ref())
        .map(|p| p.to_interval());
    let dispense = r.dispense_request.as_ref();
    let days_supply = dispense
        .and_then(|d| d.expected_supply_duration.as_ref())
        .and_then(Quantity::to_days);
    let quantity = dispense
        .and_then(|d| d.quantity.as_ref())
        .and_then(|q| q.value);
    let refills = dispense
        .and_then(|d| d.number_of_repeats_allowed)
        .unwrap_or(0);
    let start_date = bounds
        .and_then(|b| b.low)
        .or_else(|| r.authored_on.as_deref().and_then(DateTime::parse))
        .or_else(|| {
            dispense
                .and_then(|d| d.validity_period.as_ref())
                .and_then(|p| p.start.as_deref())
                .and_then(DateTime::parse)
        })
        .map(|d| DateTime::from_date(d.date()));
    let per_supply = days_supply.or_else(|| {
        let q = quantity?;
        let denominator = dose? * doses_per_day;
        (denominator != 0.0).then(|| q / denominator)
    });
    let total = per_supply.map(|d| d * (1 + refills) as f64);
    let start = start_date?;
    match (total, bounds.and_then(|b| b.high)) {
        (Some(t), _) => {
            let end = start.add_days((t - 1.0).trunc() as i64)?;
            Some(Interval::closed(Some(start), Some(end)))
        }
        (None, Some(high)) => Some(Interval::closed(
            Some(start),
            Some(DateTime::from_date(high.date())),
        )),
        (None, None) => None,
    }
}

/// `concept ~ code` on an optional concept.
pub fn has_code(cc: Option<&CodeableConcept>, system: &str, code: &str) -> bool {
    cc.is_some_and(|c| c.has(system, code))
}
