//! CMS249 "Appropriate Use of DXA Scans in Women Under 65 Years Who Do Not Meet the Risk
//! Factor Profile for Osteoporotic Fracture", library `AppropriateDXAScansForWomenUnder65FHIR`
//! version 0.2.001 (QI-Core 4.1.1). Proportion measure, inverse (lower is better).
//!
//! Every `define` of the library is one function below, its CQL quoted above it; the
//! included libraries' functions are in [`crate::qicore`]. The supplemental data elements
//! (SDE Ethnicity / Payer / Race / Sex) do not change population membership and are not
//! computed.

use crate::cql::{
    before, cumulative_duration_days, included_in, intersect_dates, is_true, point_in,
    same_or_before, DateTime, Interval, Precision, Quantity,
};
use crate::model::{
    Condition, Encounter, MedicationRequest, Observation, Procedure, ServiceRequest,
};
use crate::qicore::{self, has_code};
use crate::{Ctx, Population};

macro_rules! vsac {
    ($oid:literal) => {
        concat!("http://cts.nlm.nih.gov/fhir/ValueSet/", $oid)
    };
}

const AMENORRHEA: &str = vsac!("2.16.840.1.113883.3.464.1003.1022");
const ANKYLOSING_SPONDYLITIS: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1045");
const AROMATASE_INHIBITORS: &str = vsac!("2.16.840.1.113883.3.464.1003.196.12.1265");
const BILATERAL_OOPHORECTOMY: &str = vsac!("2.16.840.1.113883.3.526.3.471");
const BONE_MARROW_TRANSPLANT: &str = vsac!("2.16.840.1.113883.3.666.5.336");
const CHEMOTHERAPY: &str = vsac!("2.16.840.1.113883.3.526.3.485");
const CHRONIC_LIVER_DISEASE: &str = vsac!("2.16.840.1.113883.3.464.1003.199.12.1035");
const CHRONIC_MALNUTRITION: &str = vsac!("2.16.840.1.113883.3.464.1003.199.12.1036");
const CUSHINGS_SYNDROME: &str = vsac!("2.16.840.1.113883.3.464.1003.117.12.1009");
const DXA_SCAN: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1051");
const EATING_DISORDERS: &str = vsac!("2.16.840.1.113883.3.464.1003.1039");
const EHLERS_DANLOS_SYNDROME: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1047");
const END_STAGE_RENAL_DISEASE: &str = vsac!("2.16.840.1.113883.3.526.3.353");
const EVIDENCE_OF_BILATERAL_OOPHORECTOMY: &str = vsac!("2.16.840.1.113883.3.464.1003.1048");
const GASTRIC_BYPASS_SURGERY: &str = vsac!("2.16.840.1.113883.3.464.1003.198.12.1050");
const GLUCOCORTICOIDS_ORAL_ONLY: &str = vsac!("2.16.840.1.113883.3.464.1003.196.12.1266");
const HISTORY_OF_HIP_FRACTURE_IN_PARENT: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1040");
const HYPERPARATHYROIDISM: &str = vsac!("2.16.840.1.113883.3.464.1003.117.12.1016");
const HYPERTHYROIDISM: &str = vsac!("2.16.840.1.113883.3.464.1003.117.12.1015");
const KIDNEY_TRANSPLANT: &str = vsac!("2.16.840.1.113883.3.464.1003.109.12.1012");
const LUPUS: &str = vsac!("2.16.840.1.113883.3.464.1003.117.12.1010");
const MAJOR_TRANSPLANT: &str = vsac!("2.16.840.1.113883.3.464.1003.198.12.1075");
const MALABSORPTION_SYNDROMES: &str = vsac!("2.16.840.1.113883.3.464.1003.199.12.1050");
const MARFANS_SYNDROME: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1048");
const MULTIPLE_MYELOMA: &str = vsac!("2.16.840.1.113883.3.464.1003.1011");
const OFFICE_VISIT: &str = vsac!("2.16.840.1.113883.3.464.1003.101.12.1001");
const OSTEOGENESIS_IMPERFECTA: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1044");
const OSTEOPENIA: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1049");
const OSTEOPOROSIS_WITHOUT_CURRENT_FRACTURE: &str =
    vsac!("2.16.840.1.113883.3.464.1003.113.12.1038");
const OSTEOPOROSIS_WITH_CURRENT_FRACTURE: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1050");
const OUTPATIENT_CONSULTATION: &str = vsac!("2.16.840.1.113883.3.464.1003.101.12.1008");
const PREMATURE_MENOPAUSE: &str = vsac!("2.16.840.1.113883.3.464.1003.1013");
const PREVENTIVE_ESTABLISHED_18_UP: &str = vsac!("2.16.840.1.113883.3.464.1003.101.12.1025");
const PREVENTIVE_INITIAL_18_UP: &str = vsac!("2.16.840.1.113883.3.464.1003.101.12.1023");
const PSORIATIC_ARTHRITIS: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1046");
const RHEUMATOID_ARTHRITIS: &str = vsac!("2.16.840.1.113883.3.464.1003.113.12.1005");
const TELEPHONE_VISITS: &str = vsac!("2.16.840.1.113883.3.464.1003.101.12.1080");
const TYPE_1_DIABETES: &str = vsac!("2.16.840.1.113883.3.464.1003.103.12.1020");
const UNILATERAL_OOPHORECTOMY_LEFT: &str = vsac!("2.16.840.1.113883.3.464.1003.1028");
const UNILATERAL_OOPHORECTOMY_RIGHT: &str = vsac!("2.16.840.1.113883.3.464.1003.1032");
const UNILATERAL_OOPHORECTOMY_UNSPECIFIED: &str = vsac!("2.16.840.1.113883.3.464.1003.1035");
const VIRTUAL_ENCOUNTER: &str = vsac!("2.16.840.1.113883.3.464.1003.101.12.1089");

const LOINC: &str = "http://loinc.org";
const SNOMEDCT: &str = "http://snomed.info/sct";
const CPT: &str = "http://www.ama-assn.org/go/cpt";

// The measure's own literals, named as the CQL names them.
/// `AgeInYearsAt(...) in Interval[50, 63]`
const AGE_LOW: i32 = 50;
const AGE_HIGH: i32 = 63;
/// `"Glucocorticoid Active Medication Days" >= 90`
const GLUCOCORTICOID_DAYS: i64 = 90;
/// `FirstBMI.value as Quantity <= 20 'kg/m2'`
const BMI_AT_MOST: f64 = 20.0;
/// `AverageDrinks.value as Quantity > 2 '{drinks}/d'`
const DRINKS_ABOVE: f64 = 2.0;
/// `FRAX.value >= 8.4 '%'`
const FRAX_AT_LEAST: f64 = 8.4;
/// `ORAI.value as Integer >= 9`
const ORAI_AT_LEAST: i64 = 9;
/// `OSIRIS.value as Quantity < 1.0`
const OSIRIS_BELOW: f64 = 1.0;
/// `OST.value as Quantity < 2.0`
const OST_BELOW: f64 = 2.0;

/// Every population definition evaluated raw (before the proportion-measure cascade).
pub(crate) fn evaluate(cx: &Ctx) -> Vec<(Population, bool)> {
    vec![
        (Population::InitialPopulation, initial_population(cx)),
        (Population::Denominator, denominator(cx)),
        (Population::DenominatorExclusion, denominator_exclusions(cx)),
        (Population::Numerator, numerator(cx)),
        (Population::NumeratorExclusion, numerator_exclusion(cx)),
    ]
}

/// ```cql
/// define "Initial Population":
///   AgeInYearsAt(date from start of "Measurement Period") in Interval[50, 63]
///     and Patient.gender = 'female'
///     and exists "Qualifying Encounter"
/// ```
pub fn initial_population(cx: &Ctx) -> bool {
    let age = cx.age_at_start();
    age.is_some_and(|a| (AGE_LOW..=AGE_HIGH).contains(&a))
        && cx.rec.patient.gender.as_deref() == Some("female")
        && qualifying_encounter(cx).next().is_some()
}

/// ```cql
/// define "Qualifying Encounter":
///   ( ( [Encounter: "Office Visit"]
///       union [Encounter: "Preventive Care Services Established Office Visit, 18 and Up"]
///       union ( [Encounter] E where exists ( ( E.type ) T
///               where T ~ "Unlisted preventive medicine service" ) )
///       union [Encounter: "Preventive Care Services Initial Office Visit, 18 and Up"]
///       union [Encounter: "Outpatient Consultation"]
///       union [Encounter: "Virtual Encounter"]
///       union [Encounter: "Telephone Visits"]
///   ).isEncounterPerformed ( ) ) ValidEncounters
///     where ValidEncounters.period.toInterval ( ) during day of "Measurement Period"
/// ```
pub fn qualifying_encounter<'a>(cx: &'a Ctx) -> impl Iterator<Item = &'a Encounter> + 'a {
    const TYPES: [&str; 6] = [
        OFFICE_VISIT,
        PREVENTIVE_ESTABLISHED_18_UP,
        PREVENTIVE_INITIAL_18_UP,
        OUTPATIENT_CONSULTATION,
        VIRTUAL_ENCOUNTER,
        TELEPHONE_VISITS,
    ];
    cx.rec.encounters.iter().filter(move |e| {
        let typed = e
            .type_
            .iter()
            .any(|t| TYPES.iter().any(|vs| cx.vs.has(vs, Some(t))) || t.has(CPT, "99429"));
        typed
            && matches!(
                e.status.as_deref(),
                Some("finished" | "arrived" | "triaged" | "in-progress" | "onleave")
            )
            && is_true(included_in(
                e.period.as_ref().map(|p| p.to_interval()).as_ref(),
                Some(&cx.mp),
                Some(Precision::Day),
            ))
    })
}

/// ```cql
/// define "Denominator":
///   "Initial Population"
/// ```
pub fn denominator(cx: &Ctx) -> bool {
    initial_population(cx)
}

/// ```cql
/// define "Denominator Exclusions":
///   "Has Risk Factor Active During the Measurement Period"
///     or "Has Risk Factor Any Time in History Prior to Measurement Period"
///     or "Has Risk Factor Any Time in History or During Measurement Period"
/// ```
pub fn denominator_exclusions(cx: &Ctx) -> bool {
    has_risk_factor_active_during_the_measurement_period(cx)
        || has_risk_factor_any_time_in_history_prior_to_measurement_period(cx)
        || has_risk_factor_any_time_in_history_or_during_measurement_period(cx)
}

/// ```cql
/// define "Has Risk Factor Active During the Measurement Period":
///   "First BMI in Measurement Period Less Than or Equal to 20 kg m2" is not null
///     or "First Average Number of Drinks Assessments Indicating More Than Two Per Day" is not null
/// ```
pub fn has_risk_factor_active_during_the_measurement_period(cx: &Ctx) -> bool {
    first_bmi_in_measurement_period_less_than_or_equal_to_20_kg_m2(cx).is_some()
        || first_average_number_of_drinks_assessments_indicating_more_than_two_per_day(cx).is_some()
}

/// ```cql
/// define "First BMI in Measurement Period Less Than or Equal to 20 kg m2":
///   "First BMI in Measurement Period" FirstBMI
///     where FirstBMI.value as Quantity <= 20 'kg/m2'
/// ```
pub fn first_bmi_in_measurement_period_less_than_or_equal_to_20_kg_m2<'a>(
    cx: &'a Ctx,
) -> Option<&'a Observation> {
    let bound = Quantity {
        value: BMI_AT_MOST,
        unit: "kg/m2".into(),
    };
    first_bmi_in_measurement_period(cx).filter(|o| {
        o.value_quantity
            .as_ref()
            .and_then(|q| q.to_cql())
            .and_then(|q| q.compare(&bound))
            .is_some_and(|c| c.is_le())
    })
}

/// The BMI profile (`http://hl7.org/fhir/StructureDefinition/bmi`) fixes the code to LOINC
/// 39156-5; an Observation conforms when it carries that code or claims the profile.
fn is_bmi(o: &Observation) -> bool {
    has_code(o.code.as_ref(), LOINC, "39156-5")
        || o.meta.as_ref().is_some_and(|m| {
            m.profile
                .iter()
                .any(|p| p == "http://hl7.org/fhir/StructureDefinition/bmi")
        })
}

/// ```cql
/// define "First BMI in Measurement Period":
///   First(((["observation-bmi"]).isObservationBMI()) BMIRatio
///       where BMIRatio.effective.toInterval() during "Measurement Period"
///         and BMIRatio.value as Quantity is not null
///       sort by start of effective.toInterval()
///   )
/// ```
pub fn first_bmi_in_measurement_period<'a>(cx: &'a Ctx) -> Option<&'a Observation> {
    let rows = cx.rec.observations.iter().filter(|o| {
        is_bmi(o)
            && qicore::is_final(o)
            && is_true(included_in(
                qicore::effective(o).as_ref(),
                Some(&cx.mp),
                None,
            ))
            && o.value_quantity.as_ref().and_then(|q| q.to_cql()).is_some()
    });
    first_by_start(rows, |o| qicore::effective(o).and_then(|i| i.start()))
}

/// `First(... sort by start of X)`: the row with the earliest sort key; rows whose key is null
/// sort first, as CQL sorts nulls ascending first. Ties keep the input order.
fn first_by_start<'a, T>(
    rows: impl Iterator<Item = &'a T>,
    key: impl Fn(&T) -> Option<DateTime>,
) -> Option<&'a T> {
    let mut best: Option<(&T, Option<DateTime>)> = None;
    for r in rows {
        let k = key(r);
        best = match best {
            None => Some((r, k)),
            Some((b, bk)) => {
                let earlier = match (k, bk) {
                    (None, Some(_)) => true,
                    (Some(a), Some(b)) => a.lt(&b, None) == Some(true),
                    _ => false,
                };
                if earlier {
                    Some((r, k))
                } else {
                    Some((b, bk))
                }
            }
        };
    }
    best.map(|(r, _)| r)
}

/// ```cql
/// define "First Average Number of Drinks Assessments Indicating More Than Two Per Day":
///   First((([Observation: "Alcoholic drinks per day"]).isAssessmentPerformed()) AverageDrinks
///       where start of AverageDrinks.effective.toInterval() during "Measurement Period"
///         and AverageDrinks.value as Quantity > 2 '{drinks}/d'
///       sort by start of effective.toInterval()
///   )
/// ```
pub fn first_average_number_of_drinks_assessments_indicating_more_than_two_per_day<'a>(
    cx: &'a Ctx,
) -> Option<&'a Observation> {
    let bound = Quantity {
        value: DRINKS_ABOVE,
        unit: "{drinks}/d".into(),
    };
    let rows = cx.rec.observations.iter().filter(|o| {
        has_code(o.code.as_ref(), LOINC, "74013-4")
            && qicore::is_assessment_performed(o)
            && is_true(point_in(
                qicore::effective(o).and_then(|i| i.start()),
                Some(&cx.mp),
                None,
            ))
            && o.value_quantity
                .as_ref()
                .and_then(|q| q.to_cql())
                .and_then(|q| q.compare(&bound))
                .is_some_and(|c| c.is_gt())
    });
    first_by_start(rows, |o| qicore::effective(o).and_then(|i| i.start()))
}

fn conditions_in<'a>(cx: &'a Ctx, vs: &'a str) -> impl Iterator<Item = &'a Condition> + 'a {
    cx.rec
        .conditions
        .iter()
        .filter(move |c| cx.vs.has(vs, c.code.as_ref()))
}

fn procedures_in<'a>(cx: &'a Ctx, vs: &'a str) -> impl Iterator<Item = &'a Procedure> + 'a {
    cx.rec
        .procedures
        .iter()
        .filter(move |p| cx.vs.has(vs, p.code.as_ref()))
}

fn medications_in<'a>(
    cx: &'a Ctx,
    vs: &'a str,
) -> impl Iterator<Item = &'a MedicationRequest> + 'a {
    cx.rec
        .medication_requests
        .iter()
        .filter(move |m| cx.vs.has(vs, m.medication_codeable_concept.as_ref()))
}

/// ```cql
/// define "Has Risk Factor Any Time in History Prior to Measurement Period":
///   exists ( ( [Condition: "Osteoporosis Without Current Fracture"] OsteoporosisDiagnosis
///         where OsteoporosisDiagnosis.prevalenceInterval ( ) starts before start of "Measurement Period" )
///       union ( [Condition: "Osteopenia"] OsteopeniaDiagnosis
///           where OsteopeniaDiagnosis.prevalenceInterval ( ) starts before start of "Measurement Period" )
///       union ( ( ( ( [Procedure: "Gastric Bypass Surgery"] ).isProcedurePerformed ( ) ) GastricBypass
///             where GastricBypass.performed.toInterval ( ) ends before start of "Measurement Period" )
///           union ( ( ( [MedicationRequest: "Aromatase Inhibitors"] ).isMedicationActive ( ) ) AromataseInhibitorActive
///               where CMD."MedicationRequestPeriod" ( AromataseInhibitorActive ) starts before start of "Measurement Period" )
///           union ( ( ( [MedicationRequest: "Aromatase Inhibitors"] ).isMedicationOrder ( ) ) AromataseInhibitorOrder
///               where AromataseInhibitorOrder.authoredOn.toInterval ( ) before start of "Measurement Period" )
///           union ( ( [Observation: "History of hip fracture in parent"] ).isAssessmentPerformed ( ) ) ParentFractureHistory
///             where start of ParentFractureHistory.effective.toInterval ( ) before start of "Measurement Period" ) )
/// ```
pub fn has_risk_factor_any_time_in_history_prior_to_measurement_period(cx: &Ctx) -> bool {
    let mp_start = cx.mp.start();
    let birth = cx.birth;
    let diagnosis_before = |vs| {
        conditions_in(cx, vs).any(|c| {
            is_true(before(
                qicore::prevalence_interval(c, birth).start(),
                mp_start,
                None,
            ))
        })
    };
    diagnosis_before(OSTEOPOROSIS_WITHOUT_CURRENT_FRACTURE)
        || diagnosis_before(OSTEOPENIA)
        || procedures_in(cx, GASTRIC_BYPASS_SURGERY).any(|p| {
            qicore::is_procedure_performed(p)
                && is_true(before(
                    qicore::performed(p, birth).and_then(|i| i.end()),
                    mp_start,
                    None,
                ))
        })
        || medications_in(cx, AROMATASE_INHIBITORS).any(|m| {
            qicore::is_medication_active(m)
                && is_true(before(
                    qicore::medication_request_period(m).and_then(|i| i.start()),
                    mp_start,
                    None,
                ))
        })
        || medications_in(cx, AROMATASE_INHIBITORS).any(|m| {
            qicore::is_medication_order(m)
                && is_true(before(
                    m.authored_on.as_deref().and_then(DateTime::parse),
                    mp_start,
                    None,
                ))
        })
        || cx.rec.observations.iter().any(|o| {
            cx.vs
                .has(HISTORY_OF_HIP_FRACTURE_IN_PARENT, o.code.as_ref())
                && qicore::is_assessment_performed(o)
                && is_true(before(
                    qicore::effective(o).and_then(|i| i.start()),
                    mp_start,
                    None,
                ))
        })
}

/// ```cql
/// define "Has Risk Factor Any Time in History or During Measurement Period":
///   "Has 90 or More Active Glucocorticoid Medication Days"
///     or exists ( [Condition: "Osteoporosis With Current Fracture"]
///         union [Condition: "Malabsorption Syndromes"] union [Condition: "Chronic Malnutrition"]
///         union [Condition: "Chronic Liver Disease"] union [Condition: "Rheumatoid Arthritis"]
///         union [Condition: "Hyperthyroidism"] union [Condition: "Type 1 Diabetes"]
///         union [Condition: "End Stage Renal Disease"] union [Condition: "Osteogenesis Imperfecta"]
///         union [Condition: "Ankylosing Spondylitis"] union [Condition: "Psoriatic Arthritis"]
///         union [Condition: "Ehlers Danlos Syndrome"] union [Condition: "Cushings Syndrome"]
///         union [Condition: "Hyperparathyroidism"] union [Condition: "Marfan's Syndrome"]
///         union [Condition: "Lupus"] union [Condition: "Multiple Myeloma"]
///         union [Condition: "Premature Menopause"] union [Condition: "Eating Disorders"]
///         union [Condition: "Amenorrhea"]
///     ).diagnosisInPatientHistory ( )
///     or exists ( [Procedure: "Chemotherapy"] ).procedureInPatientHistory ( )
///     or "Has Double or Bilateral Oophorectomy"
///     or "Has Organ Transplants"
/// ```
pub fn has_risk_factor_any_time_in_history_or_during_measurement_period(cx: &Ctx) -> bool {
    const DIAGNOSES: [&str; 20] = [
        OSTEOPOROSIS_WITH_CURRENT_FRACTURE,
        MALABSORPTION_SYNDROMES,
        CHRONIC_MALNUTRITION,
        CHRONIC_LIVER_DISEASE,
        RHEUMATOID_ARTHRITIS,
        HYPERTHYROIDISM,
        TYPE_1_DIABETES,
        END_STAGE_RENAL_DISEASE,
        OSTEOGENESIS_IMPERFECTA,
        ANKYLOSING_SPONDYLITIS,
        PSORIATIC_ARTHRITIS,
        EHLERS_DANLOS_SYNDROME,
        CUSHINGS_SYNDROME,
        HYPERPARATHYROIDISM,
        MARFANS_SYNDROME,
        LUPUS,
        MULTIPLE_MYELOMA,
        PREMATURE_MENOPAUSE,
        EATING_DISORDERS,
        AMENORRHEA,
    ];
    has_90_or_more_active_glucocorticoid_medication_days(cx)
        || cx.rec.conditions.iter().any(|c| {
            DIAGNOSES.iter().any(|vs| cx.vs.has(vs, c.code.as_ref()))
                && diagnosis_in_patient_history(cx, c)
        })
        || procedures_in(cx, CHEMOTHERAPY).any(|p| procedure_in_patient_history(cx, p))
        || has_double_or_bilateral_oophorectomy(cx)
        || has_organ_transplants(cx)
}

/// ```cql
/// define "Has 90 or More Active Glucocorticoid Medication Days":
///   "Glucocorticoid Active Medication Days" >= 90
/// ```
pub fn has_90_or_more_active_glucocorticoid_medication_days(cx: &Ctx) -> bool {
    glucocorticoid_active_medication_days(cx) >= GLUCOCORTICOID_DAYS
}

/// ```cql
/// define "Glucocorticoid Active Medication Days":
///   ( ( ( ( [MedicationRequest: "Glucocorticoids (oral only)"] ).isMedicationActive ( ) ) OralGlucocorticoid
///       where ( OralGlucocorticoid ).medicationRequestPeriod ( ) starts before end of "Measurement Period" ) Glucocorticoid
///       return ( Glucocorticoid ).medicationRequestPeriod ( )
///         intersect Interval[Patient.birthDate, date from end of "Measurement Period"]
///   ).cumulativeDuration ( )
/// ```
pub fn glucocorticoid_active_medication_days(cx: &Ctx) -> i64 {
    let mp_end = cx.mp.end();
    let window = Interval::closed(cx.birth, mp_end.map(|e| DateTime::from_date(e.date())));
    let periods: Vec<Interval> = medications_in(cx, GLUCOCORTICOIDS_ORAL_ONLY)
        .filter(|m| qicore::is_medication_active(m))
        .filter_map(qicore::medication_request_period)
        .filter(|p| is_true(before(p.start(), mp_end, None)))
        .filter_map(|p| intersect_dates(&p, &window))
        .collect();
    cumulative_duration_days(&periods)
}

/// ```cql
/// define "Has Organ Transplants":
///   exists ( [Procedure: "Major Transplant"]
///       union [Procedure: "Kidney Transplant"]
///       union [Procedure: "Bone Marrow Transplant"]
///   ).procedureInPatientHistory ( )
/// ```
pub fn has_organ_transplants(cx: &Ctx) -> bool {
    [MAJOR_TRANSPLANT, KIDNEY_TRANSPLANT, BONE_MARROW_TRANSPLANT]
        .into_iter()
        .any(|vs| procedures_in(cx, vs).any(|p| procedure_in_patient_history(cx, p)))
}

/// ```cql
/// define "Has Double or Bilateral Oophorectomy":
///   exists ( ( [Procedure: "Bilateral Oophorectomy"] ).procedureInPatientHistory ( ) )
///     or exists ( ( [Procedure: "Evidence of Bilateral Oophorectomy"] ).procedureInPatientHistory ( ) )
///     or ( exists ( ( ( [Procedure: "Unilateral Oophorectomy, Unspecified Laterality"] UnilateralOophorectomy
///               where exists ( UnilateralOophorectomy.bodySite C where C ~ "Right (qualifier value)" ) )
///             union [Procedure: "Unilateral Oophorectomy Right"]
///         ).procedureInPatientHistory ( ) )
///         and exists ( ( ( [Procedure: "Unilateral Oophorectomy, Unspecified Laterality"] UnilateralOophorectomy
///                 where exists ( UnilateralOophorectomy.bodySite D where D ~ "Left (qualifier value)" ) )
///               union [Procedure: "Unilateral Oophorectomy Left"]
///           ).procedureInPatientHistory ( ) ) )
/// ```
pub fn has_double_or_bilateral_oophorectomy(cx: &Ctx) -> bool {
    let in_history = |vs| procedures_in(cx, vs).any(|p| procedure_in_patient_history(cx, p));
    let side = |vs, site_code: &str| {
        procedures_in(cx, UNILATERAL_OOPHORECTOMY_UNSPECIFIED)
            .filter(|p| p.body_site.iter().any(|c| c.has(SNOMEDCT, site_code)))
            .chain(procedures_in(cx, vs))
            .any(|p| procedure_in_patient_history(cx, p))
    };
    in_history(BILATERAL_OOPHORECTOMY)
        || in_history(EVIDENCE_OF_BILATERAL_OOPHORECTOMY)
        || (side(UNILATERAL_OOPHORECTOMY_RIGHT, "24028007")
            && side(UNILATERAL_OOPHORECTOMY_LEFT, "7771000"))
}

/// ```cql
/// define "Numerator":
///   exists "DXA Scan Order During Measurement Period"
/// ```
pub fn numerator(cx: &Ctx) -> bool {
    dxa_scan_order_during_measurement_period(cx)
        .next()
        .is_some()
}

/// ```cql
/// define "DXA Scan Order During Measurement Period":
///   ( ( [ServiceRequest: "DXA (Dual energy Xray Absorptiometry) Scan"] ).isDiagnosticStudyOrder ( ) ) DXA
///     where DXA.authoredOn.toInterval ( ) during "Measurement Period"
///     sort by authoredOn asc
/// ```
///
/// Returned unsorted; [`first_dxa_scan_order`] takes `First` of the sorted list.
pub fn dxa_scan_order_during_measurement_period<'a>(
    cx: &'a Ctx,
) -> impl Iterator<Item = &'a ServiceRequest> + 'a {
    cx.rec.service_requests.iter().filter(move |s| {
        cx.vs.has(DXA_SCAN, s.code.as_ref())
            && qicore::is_order(s)
            && is_true(point_in(
                s.authored_on.as_deref().and_then(DateTime::parse),
                Some(&cx.mp),
                None,
            ))
    })
}

/// `First("DXA Scan Order During Measurement Period")` (sorted by `authoredOn asc`).
pub fn first_dxa_scan_order<'a>(cx: &'a Ctx) -> Option<&'a ServiceRequest> {
    first_by_start(dxa_scan_order_during_measurement_period(cx), |s| {
        s.authored_on.as_deref().and_then(DateTime::parse)
    })
}

/// ```cql
/// define "Numerator Exclusion":
///   exists "Osteoporosis Fracture Risk Assessment Prior to First DXA Scan"
/// ```
pub fn numerator_exclusion(cx: &Ctx) -> bool {
    osteoporosis_fracture_risk_assessment_prior_to_first_dxa_scan(cx)
        .next()
        .is_some()
}

/// ```cql
/// define "Osteoporosis Fracture Risk Assessment Prior to First DXA Scan":
///   ( ( ( ( [Observation: "Major osteoporotic fracture 10-year probability [Likelihood] Fracture Risk Assessment"] ).isAssessmentPerformed ( ) ) FRAX
///       where FRAX.value >= 8.4 '%' )
///     union ( ( ( [Observation: "Osteoporosis Risk Assessment Instrument"] ).isAssessmentPerformed ( ) ) ORAI
///         where ORAI.value as Integer >= 9 )
///     union ( ( ( [Observation: "Osteoporosis Index of Risk panel"] ).isAssessmentPerformed ( ) ) OSIRIS
///         where OSIRIS.value as Quantity < 1.0 )
///     union ( ( ( [Observation: "Osteoporosis Self-Assessment Tool"] ).isAssessmentPerformed ( ) ) OST
///         where OST.value as Quantity < 2.0 ) ) RiskAssessment
///     where start of RiskAssessment.effective.toInterval ( ) before First("DXA Scan Order During Measurement Period").authoredOn
/// ```
pub fn osteoporosis_fracture_risk_assessment_prior_to_first_dxa_scan<'a>(
    cx: &'a Ctx,
) -> impl Iterator<Item = &'a Observation> + 'a {
    let first_dxa = first_dxa_scan_order(cx)
        .and_then(|s| s.authored_on.as_deref())
        .and_then(DateTime::parse);
    let quantity = |o: &Observation| o.value_quantity.as_ref().and_then(|q| q.to_cql());
    let below = move |o: &Observation, bound: f64| {
        let b = Quantity {
            value: bound,
            unit: "1".into(),
        };
        quantity(o)
            .and_then(|q| q.compare(&b))
            .is_some_and(|c| c.is_lt())
    };
    cx.rec.observations.iter().filter(move |o| {
        let code = o.code.as_ref();
        let qualifies = if has_code(code, LOINC, "90265-0") {
            let b = Quantity {
                value: FRAX_AT_LEAST,
                unit: "%".into(),
            };
            quantity(o)
                .and_then(|q| q.compare(&b))
                .is_some_and(|c| c.is_ge())
        } else if has_code(code, LOINC, "98139-9") {
            o.value_integer.is_some_and(|v| v >= ORAI_AT_LEAST)
        } else if has_code(code, LOINC, "98133-2") {
            below(o, OSIRIS_BELOW)
        } else if has_code(code, LOINC, "98146-4") {
            below(o, OST_BELOW)
        } else {
            false
        };
        qualifies
            && qicore::is_assessment_performed(o)
            && is_true(before(
                qicore::effective(o).and_then(|i| i.start()),
                first_dxa,
                None,
            ))
    })
}

/// ```cql
/// define fluent function "procedureInPatientHistory"(Procedure List<"Procedure">):
///   ( ( Procedure ).isProcedurePerformed ( ) ) Proc
///     where Proc.performed.toInterval ( ) ends on or before day of end of "Measurement Period"
/// ```
pub fn procedure_in_patient_history(cx: &Ctx, p: &Procedure) -> bool {
    qicore::is_procedure_performed(p)
        && is_true(same_or_before(
            qicore::performed(p, cx.birth).and_then(|i| i.end()),
            cx.mp.end(),
            Some(Precision::Day),
        ))
}

/// ```cql
/// define fluent function "diagnosisInPatientHistory"(Condition List<"Condition">):
///   ( Condition ) Dx
///     where Dx.prevalenceInterval ( ) starts on or before day of end of "Measurement Period"
/// ```
pub fn diagnosis_in_patient_history(cx: &Ctx, c: &Condition) -> bool {
    is_true(same_or_before(
        qicore::prevalence_interval(c, cx.birth).start(),
        cx.mp.end(),
        Some(Precision::Day),
    ))
}
