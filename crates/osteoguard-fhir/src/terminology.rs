//! Value sets of knowledge.md §10, matched by system + code (never by display).
//!
//! Medication and VSAC condition codes come from generated tables in `data/` (see
//! `scripts/gen_rxnorm_map.py`); the rest are small explicit tables here.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use osteoguard_core::model::{
    ConditionKind, DxaSite, FractureSite, Ingredient, ObservationKind, ProcedureKind, Route, Side,
    VertebralLevel, VertebralLocation,
};

use crate::units::{product_unit, ProductUnit};

pub const RXNORM: &str = "http://www.nlm.nih.gov/research/umls/rxnorm";
pub const RXNORM_OID: &str = "urn:oid:2.16.840.1.113883.6.88";
pub const ATC: &str = "http://www.whocc.no/atc";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const LOINC: &str = "http://loinc.org";
pub const ICD10CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
pub const ICD10CM_OID: &str = "urn:oid:2.16.840.1.113883.6.90";
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
pub const CPT_OID: &str = "urn:oid:2.16.840.1.113883.6.12";
pub const OSTEOGUARD: &str = "http://osteoguard.org/fhir/CodeSystem/osteoguard";
pub const EXT_FRAX_GC_ADJUSTED: &str =
    "http://osteoguard.org/fhir/StructureDefinition/frax-gc-adjusted";
pub const EXT_FRACTURE_MECHANISM: &str =
    "http://osteoguard.org/fhir/StructureDefinition/fracture-mechanism";

const MED_TSV: &str = include_str!("../data/rxnorm-ingredients.tsv");
const COND_TSV: &str = include_str!("../data/condition-codes.tsv");

/// Route class of a medication product (table column `route`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProductRoute {
    Oral,
    Injection,
    Local,
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedCode {
    pub ingredient: Ingredient,
    pub route: ProductRoute,
    /// Labelled mg per product unit (SCDs only).
    pub strength: Option<(f64, ProductUnit)>,
}

/// Code tables keyed by system, then code: a lookup borrows the `(system, code)` it is given
/// (a `(String, String)` key needed two `String`s built per lookup, for every coding read).
type BySystem<T> = BTreeMap<String, BTreeMap<String, T>>;

/// The entry for `(system, code)` of a [`BySystem`] table.
fn by_system<'t, T>(t: &'t BySystem<T>, system: &str, code: &str) -> Option<&'t T> {
    t.get(system)?.get(code)
}

struct MedTable {
    exact: BySystem<MedCode>,
    prefix: Vec<(String, String, MedCode)>,
}

fn ingredient_from_name(name: &str) -> Option<Ingredient> {
    use Ingredient::*;
    Some(match name {
        "cortisone" => Cortisone,
        "hydrocortisone" => Hydrocortisone,
        "prednisone" => Prednisone,
        "prednisolone" => Prednisolone,
        "methylprednisolone" => Methylprednisolone,
        "triamcinolone" => Triamcinolone,
        "dexamethasone" => Dexamethasone,
        "betamethasone" => Betamethasone,
        "deflazacort" => Deflazacort,
        "fludrocortisone" => Fludrocortisone,
        "budesonide" => Budesonide,
        "other-local-corticosteroid" => OtherLocalCorticosteroid,
        "denosumab" => Denosumab,
        "zoledronic-acid" => ZoledronicAcid,
        "alendronate" => Alendronate,
        "risedronate" => Risedronate,
        "ibandronate" => Ibandronate,
        "teriparatide" => Teriparatide,
        "abaloparatide" => Abaloparatide,
        "romosozumab" => Romosozumab,
        "raloxifene" => Raloxifene,
        "calcium" => Calcium,
        "cholecalciferol" => Cholecalciferol,
        "ergocalciferol" => Ergocalciferol,
        "calcifediol" => Calcifediol,
        "calcitriol" => Calcitriol,
        "alfacalcidol" => Alfacalcidol,
        _ => return None,
    })
}

fn med_table() -> &'static MedTable {
    static T: OnceLock<MedTable> = OnceLock::new();
    T.get_or_init(|| {
        let mut exact = BySystem::new();
        let mut prefix = Vec::new();
        for line in MED_TSV.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 7 {
                continue;
            }
            let Some(ingredient) = ingredient_from_name(f[3]) else {
                continue;
            };
            let route = match f[4] {
                "oral" => ProductRoute::Oral,
                "injection" => ProductRoute::Injection,
                "local" => ProductRoute::Local,
                _ => ProductRoute::Any,
            };
            let strength = match (f[5].parse::<f64>(), product_unit(f[6])) {
                (Ok(mg), Some(u)) if mg.is_finite() && mg > 0.0 => Some((mg, u)),
                _ => None,
            };
            let code = MedCode {
                ingredient,
                route,
                strength,
            };
            if f[2] == "prefix" {
                prefix.push((f[0].to_string(), f[1].to_string(), code));
            } else {
                exact
                    .entry(f[0].to_string())
                    .or_default()
                    .insert(f[1].to_string(), code);
            }
        }
        MedTable { exact, prefix }
    })
}

/// Looks a medication coding up (RxNorm IN/SCD/SBD/GPCK, ATC, SNOMED substance/product).
pub fn medication(system: &str, code: &str) -> Option<MedCode> {
    let t = med_table();
    let sys = if system == RXNORM_OID { RXNORM } else { system };
    if let Some(c) = by_system(&t.exact, sys, code) {
        return Some(*c);
    }
    t.prefix
        .iter()
        .find(|(s, p, _)| s == sys && code.starts_with(p.as_str()))
        .map(|x| x.2)
}

/// Number of rows in the medication table (for tests).
pub fn medication_table_len() -> usize {
    med_table().exact.values().map(BTreeMap::len).sum::<usize>() + med_table().prefix.len()
}

// ---------------------------------------------------------------------------------------------
// Observations (§10.2, §10.4)
// ---------------------------------------------------------------------------------------------

/// What an Observation code means: the kind and, for left/right-specific DXA codes, the side.
pub fn observation(system: &str, code: &str) -> Option<(ObservationKind, Option<Side>)> {
    use DxaSite::*;
    use ObservationKind as K;
    let none = |k| Some((k, None));
    if system == OSTEOGUARD {
        return match code {
            "frax-mof" => none(K::FraxMof),
            "frax-hip" => none(K::FraxHip),
            "vertebral-edema" => none(K::VertebralEdema),
            "genant-grade" => none(K::GenantGrade),
            "lsc" => none(K::Lsc),
            _ => None,
        };
    }
    if system != LOINC {
        return None;
    }
    match code {
        "38267-1" => none(K::TScore(LumbarSpine)),
        "24966-4" => none(K::Bmd(LumbarSpine)),
        "85394-5" => none(K::ZScore(LumbarSpine)),
        "38264-8" => none(K::TScore(TotalHip)),
        "80946-7" => Some((K::TScore(TotalHip), Some(Side::Left))),
        "80945-9" => Some((K::TScore(TotalHip), Some(Side::Right))),
        "38261-4" => none(K::Bmd(TotalHip)),
        "46278-8" => Some((K::Bmd(TotalHip), Some(Side::Left))),
        "46279-6" => Some((K::Bmd(TotalHip), Some(Side::Right))),
        "80933-5" => none(K::ZScore(TotalHip)),
        // Femur codes stand for the femoral neck (§10.2: no neck-specific LOINC confirmed).
        "38263-0" => none(K::TScore(FemoralNeck)),
        "80948-3" => Some((K::TScore(FemoralNeck), Some(Side::Left))),
        "80947-5" => Some((K::TScore(FemoralNeck), Some(Side::Right))),
        "24701-5" => none(K::Bmd(FemoralNeck)),
        "80934-3" => none(K::ZScore(FemoralNeck)),
        // Radius + ulna (Synthea labels 38265-5 "DXA [T-score]": it is still the forearm).
        "38265-5" | "38250-5" => none(K::TScore(Forearm)),
        "24890-6" => none(K::Bmd(Forearm)),
        "90265-0" => none(K::FraxMof),
        "41171-0" => none(K::Ctx),
        "77370-5" => none(K::P1np),
        "98979-8" | "62238-1" | "33914-3" | "48642-3" | "48643-1" => none(K::Egfr),
        "2160-0" | "38483-4" => none(K::Creatinine),
        "17861-6" | "49765-1" => none(K::Calcium),
        "1751-7" => none(K::Albumin),
        "62292-8" | "1989-3" | "14635-7" => none(K::VitaminD25),
        "29463-7" | "3141-9" => none(K::BodyWeight),
        "72514-3" | "38208-5" => none(K::Pain),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Vertebral levels (§10.4)
// ---------------------------------------------------------------------------------------------

/// SNOMED CT body-structure codes of single vertebrae. Empty on purpose: none could be verified
/// (docs/terminology-verification.md §3 "Vertebral body structures T1–L5: not found"); levels are
/// read from `bodySite.text`. Add verified codes here.
const SNOMED_LEVELS: &[(&str, VertebralLevel)] = &[];

pub fn level_from_snomed(code: &str) -> Option<VertebralLevel> {
    SNOMED_LEVELS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, l)| *l)
}

/// What a `bodySite` names, as far as fracture sites go (§10.3 v0.10.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SiteHint {
    Level(VertebralLevel),
    Vertebral,
    Hip,
    Wrist,
    Humerus,
    /// A recognised non-vertebral site not in the fragility list.
    OtherSite,
    /// Text or code not recognised.
    Unrecognised,
}

/// Reads a site from free `bodySite.text` (levels first, then site words).
pub fn site_from_text(text: &str) -> SiteHint {
    if let Some(l) = VertebralLevel::parse(text) {
        return SiteHint::Level(l);
    }
    let t = text.to_ascii_lowercase();
    let has = |w: &[&str]| w.iter().any(|x| t.contains(x));
    if has(&["vertebra", "spine", "lumbar", "thoracic"]) {
        SiteHint::Vertebral
    } else if has(&["hip", "femur", "femoral"]) {
        SiteHint::Hip
    } else if has(&["wrist", "radius", "forearm", "ulna"]) {
        SiteHint::Wrist
    } else if has(&["humerus", "shoulder"]) {
        SiteHint::Humerus
    } else if has(&[
        "ankle", "rib", "clavicle", "pelvis", "foot", "hand", "tibia", "fibula", "skull",
    ]) {
        SiteHint::OtherSite
    } else {
        SiteHint::Unrecognised
    }
}

// ---------------------------------------------------------------------------------------------
// Conditions (§10.3, §10.3a, §7.5-5, §12.9)
// ---------------------------------------------------------------------------------------------

/// A condition code's meaning before `bodySite` is consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CondCode {
    Kind(ConditionKind),
    /// SNOMED 443165006: site decided by bodySite (§10.3 v0.10.1).
    OsteoporoticFractureBySite,
}

/// ICD-10-CM decoding result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcdDecoded {
    pub code: CondCode,
    /// 7th character D/G/K/P/S (subsequent encounter or sequela).
    pub subsequent: bool,
}

fn cond_table() -> &'static BySystem<CondCode> {
    static T: OnceLock<BySystem<CondCode>> = OnceLock::new();
    T.get_or_init(|| {
        let mut m = BySystem::new();
        for line in COND_TSV.lines().filter(|l| !l.starts_with('#')).skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 4 {
                continue;
            }
            let kind = match (f[2], f[3]) {
                ("fracture", "vertebral") => {
                    ConditionKind::Fracture(FractureSite::Vertebral(VertebralLocation::Unspecified))
                }
                ("fracture", "hip") => ConditionKind::Fracture(FractureSite::Hip),
                ("fracture", "wrist") => ConditionKind::Fracture(FractureSite::Wrist),
                ("fracture", "humerus") => ConditionKind::Fracture(FractureSite::Humerus),
                ("fracture", _) => ConditionKind::Fracture(FractureSite::OsteoporoticOther),
                ("osteoporosis", _) => ConditionKind::Osteoporosis,
                ("osteopenia", _) => ConditionKind::Osteopenia,
                ("ckd45", _) => ConditionKind::ChronicKidneyDisease45,
                ("malignancy", _) => ConditionKind::Malignancy,
                _ => continue,
            };
            let sys = if f[0] == ICD10CM { ICD10CM } else { f[0] };
            let code = if sys == ICD10CM {
                icd_normalise(f[1])
            } else {
                f[1].to_string()
            };
            m.entry(sys.to_string())
                .or_default()
                .insert(code, CondCode::Kind(kind));
        }
        m
    })
}

/// SNOMED CT condition codes (explicit, beyond the VSAC tables).
fn snomed_condition(code: &str) -> Option<CondCode> {
    use ConditionKind as C;
    use FractureSite as F;
    Some(match code {
        "443165006" => CondCode::OsteoporoticFractureBySite,
        "64859006" => CondCode::Kind(C::Osteoporosis),
        "312894000" => CondCode::Kind(C::Osteopenia),
        "359817006" | "5913000" => CondCode::Kind(C::Fracture(F::Hip)),
        "263102004" | "65966004" => CondCode::Kind(C::Fracture(F::Wrist)),
        // Other fractures seen in the shared data: recorded, not counted (§10.3a).
        "58150001" | "16114001" | "33737001" => CondCode::Kind(C::Fracture(F::Other)),
        _ => return by_system(cond_table(), SNOMED, code).copied(),
    })
}

/// Upper-cases, trims and inserts the dot after the category (`M8008XA` → `M80.08XA`).
pub fn icd_normalise(code: &str) -> String {
    let c: String = code
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if c.len() > 3 && !c.contains('.') && c.is_ascii() {
        format!("{}.{}", &c[..3], &c[3..])
    } else {
        c
    }
}

/// Decodes an ICD-10-CM code (prefix rules of §10.3 / §10.3a).
pub fn icd10cm(code: &str) -> Option<IcdDecoded> {
    use ConditionKind as C;
    use FractureSite as F;
    use VertebralLevel::*;
    let c = icd_normalise(code);
    if !c.is_ascii() || c.len() < 3 {
        return None;
    }
    let cat = &c[..3];
    // Characters after the dot: index 0 = 4th character, … index 3 = 7th character.
    let sub: Vec<char> = c.get(4..).map(|x| x.chars().collect()).unwrap_or_default();
    let ch = |i: usize| sub.get(i).copied();
    let seventh = ch(3);
    let subsequent = matches!(seventh, Some('D' | 'G' | 'K' | 'P' | 'S'));
    let kind = |k: ConditionKind| {
        Some(IcdDecoded {
            code: CondCode::Kind(k),
            subsequent: false,
        })
    };
    let fracture = |site: FractureSite| {
        Some(IcdDecoded {
            code: CondCode::Kind(C::Fracture(site)),
            subsequent,
        })
    };
    let vertebral = |loc: VertebralLocation| fracture(F::Vertebral(loc));
    match cat {
        // Osteoporosis with current pathological fracture: 5th character = site.
        "M80" => match (ch(0), ch(1)) {
            (Some('0' | '8'), Some('8')) => vertebral(VertebralLocation::Unspecified),
            (Some('0' | '8'), Some('5')) => fracture(F::Hip),
            (Some('0' | '8'), Some('3')) => fracture(F::Wrist),
            (Some('0' | '8'), Some('2')) => fracture(F::Humerus),
            _ => fracture(F::OsteoporoticOther),
        },
        "M81" => kind(C::Osteoporosis),
        // Collapsed vertebra NEC: 5th character = region.
        "M48" if ch(0) == Some('5') => match ch(1) {
            Some('0' | '4' | '5' | '6' | '7') | None => vertebral(VertebralLocation::Unspecified),
            _ => fracture(F::OsteoporoticOther),
        },
        "S32" if ch(0) == Some('0') => {
            let lvl = match ch(1) {
                Some('1') => Some(L1),
                Some('2') => Some(L2),
                Some('3') => Some(L3),
                Some('4') => Some(L4),
                Some('5') => Some(L5),
                _ => None,
            };
            vertebral(lvl.map_or(VertebralLocation::Unspecified, VertebralLocation::Level))
        }
        "S22" if ch(0) == Some('0') => {
            let loc = match ch(1) {
                Some('1') => VertebralLocation::Level(T1),
                Some('2') => VertebralLocation::Level(T2),
                Some('3') => VertebralLocation::Level(T3),
                Some('4') => VertebralLocation::Level(T4),
                Some('5') => VertebralLocation::Pair(T5, T6),
                Some('6') => VertebralLocation::Pair(T7, T8),
                Some('7') => VertebralLocation::Pair(T9, T10),
                Some('8') => VertebralLocation::Pair(T11, T12),
                _ => VertebralLocation::Unspecified,
            };
            vertebral(loc)
        }
        "S72" if matches!(ch(0), Some('0' | '1' | '2')) => fracture(F::Hip),
        "S52" if matches!(ch(0), Some('5' | '6')) => fracture(F::Wrist),
        "S42" if ch(0) == Some('2') => fracture(F::Humerus),
        // Any other fracture category (S02, S12, S22, S32, S42, … S92): recorded, not counted.
        _ if c.starts_with('S')
            && cat.as_bytes().get(2) == Some(&b'2')
            && cat.as_bytes().get(1).is_some_and(|b| b.is_ascii_digit()) =>
        {
            fracture(F::Other)
        }
        // Adrenal insufficiency (E27.1 primary, E27.2 crisis, E27.3 drug-induced, E27.4x other/unspecified).
        "E27" if matches!(ch(0), Some('1' | '2' | '3' | '4')) => kind(C::AdrenalInsufficiency),
        "E23" if ch(0) == Some('0') => kind(C::Hypopituitarism),
        // §7.5-5 exclusions (codes UNVERIFIED: ICD-10-CM chapter structure).
        "M46" if matches!(ch(0), Some('2' | '3' | '4' | '5')) => kind(C::SpinalInfection),
        "G06" if ch(0) == Some('1') => kind(C::SpinalInfection),
        "D65" | "D66" | "D67" | "D68" => kind(C::Coagulopathy),
        "G83" if ch(0) == Some('4') => kind(C::NeurologicalDeficit),
        "G95" if ch(0) == Some('2') => kind(C::NeurologicalDeficit),
        "G99" if ch(0) == Some('2') => kind(C::NeurologicalDeficit),
        _ if cat.starts_with('C') && cat[1..].bytes().all(|b| b.is_ascii_digit()) => {
            kind(C::Malignancy)
        }
        "C7A" | "C7B" => kind(C::Malignancy),
        // §12.9 special populations.
        "N18" if matches!(ch(0), Some('4' | '5' | '6')) => kind(C::ChronicKidneyDisease45),
        "Z99" if ch(0) == Some('2') => kind(C::Dialysis),
        "Z94" => kind(C::Transplant),
        _ if cat.starts_with('O') => kind(C::Pregnancy),
        "Z33" if ch(0) == Some('1') => kind(C::Pregnancy),
        _ => by_system(cond_table(), ICD10CM, &c).map(|k| IcdDecoded {
            code: *k,
            subsequent: false,
        }),
    }
}

/// A Condition coding → its meaning (`subsequent` only for ICD-10-CM fractures).
pub fn condition(system: &str, code: &str) -> Option<IcdDecoded> {
    match system {
        SNOMED => snomed_condition(code).map(|c| IcdDecoded {
            code: c,
            subsequent: false,
        }),
        ICD10CM | ICD10CM_OID => icd10cm(code),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Procedures (§10.3)
// ---------------------------------------------------------------------------------------------

/// CPT / SNOMED procedure codes. SNOMED vertebroplasty/kyphoplasty codes are NOT mapped: the only
/// public source is unreliable and 429616001 is elsewhere a cardiac procedure
/// (docs/terminology-verification.md §3), so a wrong match would invent an augmentation.
pub fn procedure(system: &str, code: &str) -> Option<ProcedureKind> {
    use ProcedureKind::*;
    match system {
        CPT | CPT_OID => Some(match code {
            "22510" | "22511" | "22512" | "22520" | "22521" | "22522" => Vertebroplasty,
            "22513" | "22514" | "22515" | "22523" | "22524" | "22525" => Kyphoplasty,
            // MRI spinal canal: cervical 72141/72142/72156, thoracic 72146/72147/72157,
            // lumbar 72148/72149/72158 (UNVERIFIED beyond knowledge.md §10.3).
            "72141" | "72142" | "72146" | "72147" | "72148" | "72149" | "72156" | "72157"
            | "72158" => SpineMri,
            // CT cervical 72125–72127, thoracic 72128–72130, lumbar 72131–72133.
            "72125" | "72126" | "72127" | "72128" | "72129" | "72130" | "72131" | "72132"
            | "72133" => SpineCt,
            // Radiographs of the spine 72020–72120.
            "72020" | "72040" | "72050" | "72052" | "72070" | "72072" | "72074" | "72080"
            | "72081" | "72082" | "72083" | "72084" | "72100" | "72110" | "72114" | "72120" => {
                SpineXray
            }
            // DXA (UNVERIFIED CPT): axial, appendicular, axial with VFA.
            "77080" | "77081" | "77085" => Dxa,
            _ => return None,
        }),
        SNOMED => match code {
            "312681000" => Some(Dxa),
            _ => None,
        },
        _ => None,
    }
}

/// Spine imaging (knowledge.md §7.2 "DiagnosticReport / ImagingStudy / Observation for MRI, CT,
/// X-ray spine"): the code of a DiagnosticReport or a `procedureCode` of an ImagingStudy that
/// says the spine was imaged, and how. CPT: the spine MRI / CT / X-ray codes a `Procedure` is
/// recognised by ([`procedure`]). LOINC: the radiology (imaging document) codes of spine MRI,
/// CT and radiographs in [`spine_imaging_loinc`].
pub fn spine_imaging(system: &str, code: &str) -> Option<ProcedureKind> {
    match system {
        CPT | CPT_OID => procedure(system, code).filter(|k| k.is_spine_imaging()),
        LOINC => spine_imaging_loinc(code),
        _ => None,
    }
}

/// LOINC radiology codes of spine MRI, CT and radiographs (cervical, thoracic, lumbar, whole
/// spine). Checked on 2026-12-02 against a published list of LOINC radiology codes with their
/// LOINC display names (Microsoft Azure AI Health Insights, "Radiology Insights inference
/// information (rad procedure)", Appendix A); 24967-2, 24968-0 and 24969-8 also against two
/// further public LOINC listings (a French LOINC value set, a LOINC-mapped radiology catalogue).
/// Not checked against loinc.org itself (UNVERIFIED there; docs/spine-imaging.md "Codes").
/// Intrathecal-contrast (myelography) and guidance codes are left out: not a study of the
/// vertebrae.
pub fn spine_imaging_loinc(code: &str) -> Option<ProcedureKind> {
    use ProcedureKind::*;
    Some(match code {
        // MR Cervical spine (plain, W anesthesia, WO and W contrast IV, W contrast IV),
        // MR Lumbar spine (WO and W contrast IV, plain, W anesthesia),
        // MR Thoracic spine (plain, WO and W contrast IV, W contrast IV).
        "24935-9" | "24936-7" | "24937-5" | "24938-3" | "24967-2" | "24968-0" | "24977-1"
        | "24980-5" | "24981-3" | "24982-1" => SpineMri,
        // CT Cervical spine (plain, W contrast IV), CT Lumbar spine (plain, W contrast IV),
        // CT Thoracic spine (plain, W contrast IV), CT Spine W contrast IV.
        "24932-6" | "24933-4" | "24963-1" | "24964-9" | "24978-9" | "24979-7" | "24987-0" => {
            SpineCt
        }
        // XR Spine AP and Lateral; XR Thoracic and lumbar spine (scoliosis views, 2 views);
        // XR Cervical spine (5 views, single view, 3 views, AP and lateral, lateral, swimmers,
        // flexion/extension, views); XR Lumbar spine (lateral, AP and lateral,
        // flexion/extension, views); XR Thoracic spine Views.
        "24928-4" | "24929-2" | "24930-0" | "24984-7" | "24939-1" | "24940-9" | "24941-7"
        | "24942-5" | "24943-3" | "24944-1" | "24945-8" | "24946-6" | "24969-8" | "24970-6"
        | "24971-4" | "24972-2" | "24983-9" => SpineXray,
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Routes (§2.1)
// ---------------------------------------------------------------------------------------------

/// SNOMED CT route codes.
pub fn route_snomed(code: &str) -> Option<Route> {
    Some(match code {
        "26643006" => Route::Oral,
        "47625008" => Route::Intravenous,
        "78421000" => Route::Intramuscular,
        "34206005" => Route::Subcutaneous,
        // nasal, topical, ophthalmic, otic, rectal, intra-articular, respiratory tract,
        // inhalation (UK ext.), vaginal, oromucosal, intralesional
        "46713006" | "6064005" | "54485002" | "10547007" | "37161004" | "12130007"
        | "447694001" | "18679011000001101" | "16857009" | "372473007" | "419231003" => {
            Route::Local
        }
        _ => return None,
    })
}

/// HL7 v3 RouteOfAdministration codes (common ones).
pub fn route_v3(code: &str) -> Option<Route> {
    Some(match code {
        "PO" | "SL" => Route::Oral,
        "IV" | "IVINJ" | "IVINFUS" | "IVPUSH" => Route::Intravenous,
        "IM" | "IMINJ" => Route::Intramuscular,
        "SQ" | "SC" | "SUBCUT" => Route::Subcutaneous,
        "IPINHL" | "ORINHL" | "NASINHL" | "NASINHLC" | "NASAL" | "TOPICAL" | "OPTHALTA"
        | "OTIC" | "RECTAL" | "INTRAARTICULAR" | "IAINJ" | "ORALRINSE" => Route::Local,
        _ => return None,
    })
}

/// Route from free text, word by word (local words win: "oral inhalation" is local).
pub fn route_text(text: &str) -> Option<Route> {
    let t = text.to_ascii_lowercase();
    let words: Vec<&str> = t
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .collect();
    let any = |f: &dyn Fn(&str) -> bool| words.iter().any(|w| f(w));
    if any(&|w| {
        w.starts_with("inhal")
            || w.starts_with("ophthalm")
            || matches!(
                w,
                "nasal"
                    | "intranasal"
                    | "nose"
                    | "topical"
                    | "topically"
                    | "cutaneous"
                    | "skin"
                    | "eye"
                    | "eyes"
                    | "otic"
                    | "ear"
                    | "ears"
                    | "rectal"
                    | "rectally"
                    | "enema"
                    | "intra-articular"
                    | "intraarticular"
                    | "intralesional"
                    | "vaginal"
                    | "oromucosal"
                    | "dental"
                    | "mouthwash"
            )
    }) {
        Some(Route::Local)
    } else if any(&|w| matches!(w, "intravenous" | "intravenously" | "iv")) {
        Some(Route::Intravenous)
    } else if any(&|w| matches!(w, "intramuscular" | "intramuscularly" | "im")) {
        Some(Route::Intramuscular)
    } else if any(&|w| {
        matches!(
            w,
            "subcutaneous" | "subcutaneously" | "subcut" | "sc" | "sq"
        )
    }) {
        Some(Route::Subcutaneous)
    } else if any(&|w| matches!(w, "oral" | "orally" | "po" | "swallow" | "mouth")) {
        Some(Route::Oral)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConditionKind as C;
    use FractureSite as F;
    use VertebralLevel::*;

    fn icd(code: &str) -> Option<(CondCode, bool)> {
        icd10cm(code).map(|d| (d.code, d.subsequent))
    }
    fn vert(loc: VertebralLocation) -> CondCode {
        CondCode::Kind(C::Fracture(F::Vertebral(loc)))
    }

    #[test]
    fn icd_vertebral() {
        assert_eq!(
            icd("M80.08XA"),
            Some((vert(VertebralLocation::Unspecified), false))
        );
        assert_eq!(
            icd("M8008XD"),
            Some((vert(VertebralLocation::Unspecified), true))
        );
        assert_eq!(
            icd("M80.88XS"),
            Some((vert(VertebralLocation::Unspecified), true))
        );
        assert_eq!(
            icd("S32.010A"),
            Some((vert(VertebralLocation::Level(L1)), false))
        );
        assert_eq!(
            icd("S32.059G"),
            Some((vert(VertebralLocation::Level(L5)), true))
        );
        assert_eq!(
            icd("S32.009A"),
            Some((vert(VertebralLocation::Unspecified), false))
        );
        assert_eq!(
            icd("S22.030A"),
            Some((vert(VertebralLocation::Level(T3)), false))
        );
        assert_eq!(
            icd("S22.050A"),
            Some((vert(VertebralLocation::Pair(T5, T6)), false))
        );
        assert_eq!(
            icd("S22.080K"),
            Some((vert(VertebralLocation::Pair(T11, T12)), true))
        );
        assert_eq!(
            icd("M48.56XA"),
            Some((vert(VertebralLocation::Unspecified), false))
        );
        assert_eq!(
            icd("s32.020a"),
            Some((vert(VertebralLocation::Level(L2)), false))
        );
    }

    #[test]
    fn icd_other_sites() {
        assert_eq!(
            icd("S72.001A"),
            Some((CondCode::Kind(C::Fracture(F::Hip)), false))
        );
        assert_eq!(
            icd("S52.501A"),
            Some((CondCode::Kind(C::Fracture(F::Wrist)), false))
        );
        assert_eq!(
            icd("S42.201A"),
            Some((CondCode::Kind(C::Fracture(F::Humerus)), false))
        );
        assert_eq!(
            icd("M80.051A"),
            Some((CondCode::Kind(C::Fracture(F::Hip)), false))
        );
        assert_eq!(
            icd("M80.00XA"),
            Some((CondCode::Kind(C::Fracture(F::OsteoporoticOther)), false))
        );
        assert_eq!(
            icd("S82.001A"),
            Some((CondCode::Kind(C::Fracture(F::Other)), false))
        );
        assert_eq!(
            icd("S32.401A"),
            Some((CondCode::Kind(C::Fracture(F::Other)), false))
        );
        assert_eq!(icd("M81.0"), Some((CondCode::Kind(C::Osteoporosis), false)));
        assert_eq!(
            icd("E27.40"),
            Some((CondCode::Kind(C::AdrenalInsufficiency), false))
        );
        assert_eq!(
            icd("E23.0"),
            Some((CondCode::Kind(C::Hypopituitarism), false))
        );
        assert_eq!(icd("E27.0"), None);
        assert_eq!(icd("M35.3"), None);
        assert_eq!(icd("M06.9"), None);
        assert_eq!(icd("C90.00"), Some((CondCode::Kind(C::Malignancy), false)));
        assert_eq!(
            icd("N18.6"),
            Some((CondCode::Kind(C::ChronicKidneyDisease45), false))
        );
        assert_eq!(icd("M85.80"), Some((CondCode::Kind(C::Osteopenia), false)));
        assert_eq!(icd("é"), None);
    }

    #[test]
    fn tables_load() {
        assert!(medication_table_len() > 100);
        let p = medication(RXNORM, "312617");
        assert_eq!(p.map(|m| m.ingredient), Some(Ingredient::Prednisone));
        assert_eq!(p.and_then(|m| m.strength), Some((5.0, ProductUnit::Count)));
        assert_eq!(
            medication(RXNORM, "2878").map(|m| m.ingredient),
            Some(Ingredient::Cortisone)
        );
        assert_eq!(medication(RXNORM, "3008"), None);
        assert_eq!(
            medication(RXNORM, "351109").map(|m| m.route),
            Some(ProductRoute::Local)
        );
        assert_eq!(
            medication(ATC, "A12AA04").map(|m| m.ingredient),
            Some(Ingredient::Calcium)
        );
        assert_eq!(
            condition(SNOMED, "203450003").map(|d| d.code),
            Some(vert(VertebralLocation::Unspecified))
        );
    }

    /// knowledge.md §10.1 "match also any SCD/SBD whose ingredient is one of these": the teriparatide
    /// pen's product codes (openFDA NDC; docs/terminology-verification.md 1b). Found by the oragc2
    /// differential: an order coded only by them was ignored. The ingredient code stays unverified.
    #[test]
    fn teriparatide_product_codes() {
        for code in ["1435115", "1435117"] {
            assert_eq!(
                medication(RXNORM, code).map(|m| m.ingredient),
                Some(Ingredient::Teriparatide),
                "{code}"
            );
        }
        assert_eq!(medication(RXNORM, "110634"), None);
    }

    #[test]
    fn sites_and_routes() {
        assert_eq!(site_from_text("L1"), SiteHint::Level(L1));
        assert_eq!(site_from_text("l 1"), SiteHint::Level(L1));
        assert_eq!(site_from_text("T12 vertebra"), SiteHint::Level(T12));
        assert_eq!(site_from_text("Left hip"), SiteHint::Hip);
        assert_eq!(site_from_text("lumbar spine"), SiteHint::Vertebral);
        assert_eq!(site_from_text("xyz"), SiteHint::Unrecognised);
        assert_eq!(route_text("Oral inhalation"), Some(Route::Local));
        assert_eq!(route_text("by mouth"), Some(Route::Oral));
        assert_eq!(route_text("Subcutaneous route"), Some(Route::Subcutaneous));
        assert_eq!(route_snomed("26643006"), Some(Route::Oral));
        assert_eq!(route_text("Intravenous route"), Some(Route::Intravenous));
        assert_eq!(route_text("linear"), None);
    }
}
