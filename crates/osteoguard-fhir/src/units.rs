//! UCUM (and common non-UCUM spellings) to the canonical units of knowledge.md §1.3.

use crate::json::Value;
use osteoguard_core::model::ObservationKind;

use crate::util::s;

/// Normalises a unit string for lookup: lower case, no spaces/braces/underscores/carets,
/// `µ`/`μ` → `u`, `²` → `2`. `{T-score}` → `t-score`, `mL/min/{1.73_m2}` → `ml/min/1.73m2`,
/// `[lb_av]` → `[lbav]`.
pub fn norm(unit: &str) -> String {
    unit.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '{' | '}' | '_' | '^' | '\u{200b}'))
        .map(|c| match c {
            'µ' | 'μ' => 'u',
            '²' => '2',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// The unit of a Quantity: UCUM `code` when present, else the human `unit`.
pub fn quantity_unit<'v>(q: &'v Value<'_>) -> Option<&'v str> {
    s(q, "code")
        .filter(|c| !c.trim().is_empty())
        .or_else(|| s(q, "unit").filter(|u| !u.trim().is_empty()))
}

/// Mass in mg: `mg`, `g`, `ug`/`µg`/`mcg`, `ng`, `kg`.
pub fn mass_factor_mg(unit: &str) -> Option<f64> {
    match norm(unit).as_str() {
        "mg" | "milligram" | "milligrams" => Some(1.0),
        "g" | "gram" | "grams" => Some(1000.0),
        "ug" | "mcg" | "microgram" | "micrograms" => Some(0.001),
        "ng" => Some(1.0e-6),
        "kg" => Some(1.0e6),
        _ => None,
    }
}

/// Units that count product units (tablets, capsules, …) or volume (mL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductUnit {
    Count,
    Ml,
}

pub fn product_unit(unit: &str) -> Option<ProductUnit> {
    match norm(unit).as_str() {
        "tbl" | "tab" | "tablet" | "tablets" | "cap" | "capsule" | "capsules" | "packet"
        | "sachet" | "each" | "ea" | "unit" | "dose" | "1" => Some(ProductUnit::Count),
        "ml" | "milliliter" | "millilitre" => Some(ProductUnit::Ml),
        _ => None,
    }
}

/// International units (vitamin D: 1 IU = 0.025 µg).
pub fn is_iu(unit: &str) -> bool {
    matches!(norm(unit).as_str(), "[iu]" | "iu" | "[i'u]")
}

/// Why a value could not be converted.
#[derive(Debug, Clone, PartialEq)]
pub enum UnitError {
    Missing,
    Unknown(String),
}

impl UnitError {
    pub fn describe(&self, what: &str) -> String {
        match self {
            UnitError::Missing => format!("no unit given for {what}"),
            UnitError::Unknown(u) => format!("unknown unit {u:?} for {what}"),
        }
    }
}

/// Converts `value` in `unit` to the canonical unit of `kind` (knowledge.md §1.3). `loinc` is the
/// Observation code (plain `mL/min` is accepted as eGFR only for 33914-3, the Synthea quirk).
/// Returns the value and, for LSC, whether it is a percentage.
pub fn convert(
    kind: ObservationKind,
    loinc: &str,
    value: f64,
    unit: Option<&str>,
) -> Result<(f64, bool), UnitError> {
    use ObservationKind as K;
    let raw = unit.unwrap_or("");
    let u = norm(raw);
    let unknown = || {
        if u.is_empty() {
            UnitError::Missing
        } else {
            UnitError::Unknown(raw.to_string())
        }
    };
    let f = match kind {
        K::TScore(_) | K::ZScore(_) => match u.as_str() {
            "" | "t-score" | "z-score" | "sd" | "1" | "score" | "{sd}" => 1.0,
            _ => return Err(unknown()),
        },
        K::Bmd(_) => match u.as_str() {
            "g/cm2" => 1.0,
            "mg/cm2" => 0.001,
            _ => return Err(unknown()),
        },
        K::FraxMof | K::FraxHip => match u.as_str() {
            "%" | "percent" => 1.0,
            "1" | "" if value <= 1.0 => 100.0,
            "1" | "" => 1.0,
            _ => return Err(unknown()),
        },
        K::Ctx => match u.as_str() {
            "ng/l" | "pg/ml" => 1.0,
            "ng/ml" | "ug/l" => 1000.0,
            _ => return Err(unknown()),
        },
        K::P1np => match u.as_str() {
            "ug/l" | "ng/ml" => 1.0,
            "ng/l" | "pg/ml" => 0.001,
            _ => return Err(unknown()),
        },
        K::Egfr => match u.as_str() {
            "ml/min/1.73m2" | "ml/min/1.73" => 1.0,
            "ml/min" if loinc == "33914-3" => 1.0,
            _ => return Err(unknown()),
        },
        K::Creatinine => match u.as_str() {
            "mg/dl" => 1.0,
            "umol/l" => 1.0 / 88.4,
            "mmol/l" => 1000.0 / 88.4,
            _ => return Err(unknown()),
        },
        K::Calcium => match u.as_str() {
            "mg/dl" => 1.0,
            "mmol/l" => 4.008,
            _ => return Err(unknown()),
        },
        K::Albumin => match u.as_str() {
            "g/dl" => 1.0,
            "g/l" => 0.1,
            "mg/dl" => 0.001,
            _ => return Err(unknown()),
        },
        K::VitaminD25 => match u.as_str() {
            "ng/ml" | "ug/l" => 1.0,
            "nmol/l" => 1.0 / 2.496,
            _ => return Err(unknown()),
        },
        K::BodyWeight => match u.as_str() {
            "kg" => 1.0,
            "[lbav]" | "lb" | "lbs" => 0.453_592_37,
            "g" => 0.001,
            _ => return Err(unknown()),
        },
        K::Pain => match u.as_str() {
            "" | "1" | "score" | "/10" | "{0-10}" | "0-10" => 1.0,
            "mm" => 0.1,
            _ => return Err(unknown()),
        },
        K::GenantGrade => match u.as_str() {
            "" | "1" | "score" | "grade" => 1.0,
            _ => return Err(unknown()),
        },
        K::Lsc => {
            return match u.as_str() {
                "%" | "percent" => Ok((value, true)),
                "g/cm2" => Ok((value, false)),
                "mg/cm2" => Ok((value * 0.001, false)),
                _ => Err(unknown()),
            }
        }
        K::VertebralEdema => return Err(unknown()),
    };
    Ok((value * f, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use osteoguard_core::model::DxaSite;

    fn c(kind: ObservationKind, v: f64, u: &str) -> Option<f64> {
        convert(kind, "", v, if u.is_empty() { None } else { Some(u) })
            .ok()
            .map(|x| x.0)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn masses() {
        assert_eq!(mass_factor_mg("mg"), Some(1.0));
        assert_eq!(mass_factor_mg("g"), Some(1000.0));
        assert_eq!(mass_factor_mg("ug"), Some(0.001));
        assert_eq!(mass_factor_mg("µg"), Some(0.001));
        assert_eq!(mass_factor_mg("mcg"), Some(0.001));
        assert_eq!(mass_factor_mg("tabs"), None);
        assert_eq!(product_unit("tabs"), None);
        assert_eq!(product_unit("{tbl}"), Some(ProductUnit::Count));
        assert_eq!(product_unit("TAB"), Some(ProductUnit::Count));
        assert_eq!(product_unit("mL"), Some(ProductUnit::Ml));
        assert!(is_iu("[IU]"));
    }

    #[test]
    fn labs() {
        use ObservationKind as K;
        assert!(close(c(K::Creatinine, 88.4, "umol/L"), 1.0));
        assert!(close(c(K::Creatinine, 88.4, "µmol/L"), 1.0));
        assert!(close(c(K::Calcium, 2.5, "mmol/L"), 10.02));
        assert!(close(c(K::Albumin, 40.0, "g/L"), 4.0));
        assert!(close(c(K::VitaminD25, 49.92, "nmol/L"), 20.0));
        assert!(close(c(K::Ctx, 0.3, "ng/mL"), 300.0));
        assert!(close(c(K::Ctx, 300.0, "pg/mL"), 300.0));
        assert!(close(c(K::Egfr, 45.0, "mL/min/{1.73_m2}"), 45.0));
        assert!(close(c(K::Egfr, 45.0, "mL/min/1.73m2"), 45.0));
        assert!(c(K::Egfr, 45.0, "mL/min").is_none());
        assert_eq!(
            convert(K::Egfr, "33914-3", 45.0, Some("mL/min")).map(|x| x.0),
            Ok(45.0)
        );
        assert!(close(c(K::BodyWeight, 100.0, "[lb_av]"), 45.359237));
        assert!(close(c(K::Pain, 70.0, "mm"), 7.0));
        assert!(close(c(K::FraxMof, 0.35, "1"), 35.0));
        assert!(close(c(K::FraxMof, 35.0, "%"), 35.0));
        assert!(close(c(K::Bmd(DxaSite::TotalHip), 800.0, "mg/cm2"), 0.8));
        assert!(close(c(K::Bmd(DxaSite::TotalHip), 0.8, "g/cm²"), 0.8));
        assert!(close(
            c(K::TScore(DxaSite::Forearm), -2.5, "{T-score}"),
            -2.5
        ));
        assert_eq!(
            convert(K::Creatinine, "", 1.0, Some("tabs")),
            Err(UnitError::Unknown("tabs".into()))
        );
        assert_eq!(
            convert(K::Creatinine, "", 1.0, None),
            Err(UnitError::Missing)
        );
        assert_eq!(convert(K::Lsc, "", 3.0, Some("%")), Ok((3.0, true)));
    }
}
