//! The guideline and evidence sources of knowledge.md §1.8, by tag.
//!
//! Rules cite tags (`ECTS-2021; CUMMINGS-2018`); the engine attaches the full reference of every
//! tag a finding cites (`Finding::references`), so a reader never has to look a tag up.

/// One source: tag, label, full reference and a URL. A DOI link wherever the DOI was checked
/// against a public record (docs/sources.md says where); otherwise the article's record page or,
/// when no record could be confirmed, the journal's own page (never a search URL for a paper,
/// which can point at the wrong one). The prescribing-information links are the label's
/// DailyMed page by set id (one label, not a search).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Source {
    pub tag: &'static str,
    /// Short label for cards and links.
    pub label: &'static str,
    pub reference: &'static str,
    pub url: Option<&'static str>,
}

pub const SOURCES: &[Source] = &[
    Source {
        tag: "ACR-2022",
        label: "ACR 2022 Guideline for the Prevention and Treatment of Glucocorticoid-Induced Osteoporosis",
        reference: "Humphrey MB, Russell L, Danila MI, et al. 2022 American College of Rheumatology Guideline for the Prevention and Treatment of Glucocorticoid-Induced Osteoporosis. Arthritis Rheumatol 2023;75(12):2088–2102.",
        url: Some("https://doi.org/10.1002/art.42646"),
    },
    Source {
        tag: "ACR-2017",
        label: "ACR 2017 Guideline for the Prevention and Treatment of Glucocorticoid-Induced Osteoporosis",
        reference: "Buckley L, Guyatt G, Fink HA, et al. 2017 American College of Rheumatology Guideline for the Prevention and Treatment of Glucocorticoid-Induced Osteoporosis. Arthritis Rheumatol 2017;69(8):1521–1537.",
        url: Some("https://doi.org/10.1002/art.40137"),
    },
    Source {
        tag: "KANIS-2011",
        label: "Adjustment of FRAX for glucocorticoid dose (Kanis et al., Osteoporos Int 2011)",
        reference: "Kanis JA, Johansson H, Oden A, McCloskey EV. Guidance for the adjustment of FRAX according to the dose of glucocorticoids. Osteoporos Int 2011;22(3):809–816.",
        url: Some("https://doi.org/10.1007/s00198-010-1524-7"),
    },
    Source {
        tag: "ECTS-2021",
        label: "ECTS 2021 position statement: discontinuation of denosumab (Tsourdi et al., JCEM 2021)",
        reference: "Tsourdi E, Zillikens MC, Meier C, et al. Fracture risk and management of discontinuation of denosumab therapy: a systematic review and position statement by ECTS. J Clin Endocrinol Metab 2021;106(1):264–281.",
        url: Some("https://pure.au.dk/portal/en/publications/fracture-risk-and-management-of-discontinuation-of-denosumab-therapy(30703304-af07-450f-b284-5d1c9ae31a62).html"),
    },
    Source {
        tag: "ECTS-2017",
        label: "ECTS 2017 position statement: discontinuation of denosumab (Tsourdi et al., Bone 2017)",
        reference: "Tsourdi E, Langdahl B, Cohen-Solal M, et al. Discontinuation of denosumab therapy for osteoporosis: a systematic review and position statement by ECTS. Bone 2017;105:11–17.",
        url: Some("https://www.sciencedirect.com/journal/bone"),
    },
    Source {
        tag: "CUMMINGS-2018",
        label: "Vertebral fractures after discontinuation of denosumab (Cummings et al., JBMR 2018)",
        reference: "Cummings SR, Ferrari S, Eastell R, et al. Vertebral fractures after discontinuation of denosumab: a post hoc analysis of the randomized placebo-controlled FREEDOM trial and its extension. J Bone Miner Res 2018;33(2):190–198.",
        url: Some("https://academic.oup.com/jbmr"),
    },
    Source {
        tag: "LYU-2020",
        label: "Delayed denosumab injections and fracture risk (Lyu et al., Ann Intern Med 2020)",
        reference: "Lyu H, Yoshida K, Zhao SS, et al. Delayed denosumab injections and fracture risk among patients with osteoporosis: a population-based cohort study. Ann Intern Med 2020;173(7):516–526.",
        url: Some("https://doi.org/10.7326/M20-0882"),
    },
    Source {
        tag: "PROLIA-PI",
        label: "Denosumab (Prolia) prescribing information",
        reference: "Prolia (denosumab) US Prescribing Information / EU SmPC: 60 mg SC every 6 months; boxed warning for severe hypocalcaemia in advanced CKD.",
        url: Some("https://dailymed.nlm.nih.gov/dailymed/drugInfo.cfm?setid=49e5afe9-a0c7-40c4-af9f-f287a80c5c88"),
    },
    Source {
        tag: "RECLAST-PI",
        label: "Zoledronic acid (Reclast) prescribing information: CrCl < 35 mL/min contraindication",
        reference: "Reclast/Aclasta (zoledronic acid 5 mg) US Prescribing Information: contraindicated with CrCl < 35 mL/min and in acute renal impairment (FDA Drug Safety Communication, 2011).",
        url: Some("https://dailymed.nlm.nih.gov/dailymed/lookup.cfm?setid=5a9b3737-9ce6-4a89-b76e-6aab79eba9cf"),
    },
    Source {
        tag: "ISCD",
        label: "ISCD Official Positions (least significant change)",
        reference: "International Society for Clinical Densitometry, Official Positions: least significant change = 2.77 × precision error.",
        url: None,
    },
    Source {
        tag: "WHO-1994",
        label: "WHO 1994 diagnostic categories for osteoporosis",
        reference: "WHO Study Group. Assessment of fracture risk and its application to screening for postmenopausal osteoporosis. WHO Technical Report Series 843, 1994.",
        url: None,
    },
    Source {
        tag: "GENANT-1993",
        label: "Genant semiquantitative vertebral fracture assessment (JBMR 1993)",
        reference: "Genant HK, Wu CY, van Kuijk C, Nevitt MC. Vertebral fracture assessment using a semiquantitative technique. J Bone Miner Res 1993;8(9):1137–1148.",
        url: Some("https://doi.org/10.1002/jbmr.5650080915"),
    },
    Source {
        tag: "ACR-AC-VCF",
        label: "ACR Appropriateness Criteria: Management of Vertebral Compression Fractures",
        reference: "ACR Appropriateness Criteria: Management of Vertebral Compression Fractures.",
        url: None,
    },
    Source {
        tag: "PVA-TIMING",
        label: "Vertebral augmentation timing and MRI criteria (expert panel)",
        reference: "Expert-panel definitions of fracture age for vertebral augmentation: < 6 weeks, 6 weeks–3 months, > 3 months; MRI oedema as 'positive MRI'.",
        url: None,
    },
    Source {
        tag: "STEROID-EQ",
        label: "Glucocorticoid equivalence tables (Meikle & Tyler 1977)",
        reference: "Meikle AW, Tyler FH. Potency and duration of action of glucocorticoids. Am J Med 1977;63:200–207 (standard equivalence tables).",
        url: None,
    },
    Source {
        tag: "SEED",
        label: "Case report: rebound vertebral fractures after denosumab discontinuation in GIOP",
        reference: "Case report: rebound vertebral fractures after denosumab discontinuation in glucocorticoid-induced osteoporosis treated with multilevel vertebroplasty (shared/seed/case-report.txt).",
        url: None,
    },
    Source {
        tag: "OSTEOGUARD-SPEC",
        label: "osteoguard clinical specification: unknown is never a silent negative",
        reference: "osteoguard Clinical Knowledge Specification v0.10.3 (engine convention): a rule that cannot decide for want of data says what is missing instead of staying silent (three-valued logic).",
        url: None,
    },
];

/// The full reference of every source as a finding lists it (`reference url`), in table order,
/// rendered once per process instead of once per finding.
pub fn reference_lines() -> &'static [String] {
    static LINES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    LINES.get_or_init(|| {
        SOURCES
            .iter()
            .map(|s| match s.url {
                Some(url) => format!("{} {}", s.reference, url),
                None => s.reference.to_string(),
            })
            .collect()
    })
}

/// The references `citation` names ([`cited`]), as [`reference_lines`] writes them.
pub fn cited_references(citation: &str) -> Vec<String> {
    let lines = reference_lines();
    cited_mask(citation)
        .iter()
        .zip(lines)
        .filter(|(h, _)| **h)
        .map(|(_, l)| l.clone())
        .collect()
}

/// Whether `c` may occur in a tag (every tag is made of these, a test checks it).
fn tag_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// Sources whose tag occurs in `citation`, in table order.
///
/// The same as testing `citation.contains(tag)` for every tag, without that search per tag
/// (it was ~6 % of a seed assessment): a tag is made of tag characters only, so it can occur
/// only inside one maximal run of them; a run that *is* a tag is looked up, any other run is
/// searched for every tag.
pub fn cited(citation: &str) -> Vec<&'static Source> {
    SOURCES
        .iter()
        .zip(cited_mask(citation))
        .filter_map(|(s, h)| h.then_some(s))
        .collect()
}

/// The length of the shortest tag of [`SOURCES`].
const SHORTEST_TAG: usize = {
    let mut i = 0;
    let mut shortest = usize::MAX;
    while i < SOURCES.len() {
        if SOURCES[i].tag.len() < shortest {
            shortest = SOURCES[i].tag.len();
        }
        i += 1;
    }
    shortest
};

/// The set of ASCII characters of `s` (bit `c` for byte `c` below 128), to rule a tag out
/// of a run before searching for it.
fn char_set(s: &str) -> u128 {
    s.bytes()
        .filter(|b| b.is_ascii())
        .fold(0, |set, b| set | (1u128 << b))
}

/// [`char_set`] of each tag of [`SOURCES`], in table order (tags are ASCII: a test checks it).
fn tag_sets() -> &'static [u128] {
    static SETS: std::sync::OnceLock<Vec<u128>> = std::sync::OnceLock::new();
    SETS.get_or_init(|| SOURCES.iter().map(|s| char_set(s.tag)).collect())
}

/// For each source of [`SOURCES`], whether `citation` names its tag.
fn cited_mask(citation: &str) -> [bool; SOURCES.len()] {
    let mut hit = [false; SOURCES.len()];
    for run in citation
        .split(|c: char| !c.is_ascii() || !tag_char(c as u8))
        .filter(|r| !r.is_empty())
    {
        match SOURCES.iter().position(|s| s.tag == run) {
            Some(i) => hit[i] = true,
            // A run shorter than the shortest tag contains none; a longer one ("details",
            // "UNVERIFIED", "fracture-risk" …) is searched only for the tags that are shorter
            // and whose every character occurs in it.
            None if run.len() < SHORTEST_TAG => {}
            None => {
                let present = char_set(run);
                for (i, (s, set)) in SOURCES.iter().zip(tag_sets()).enumerate() {
                    hit[i] |= s.tag.len() < run.len() && set & !present == 0 && run.contains(s.tag);
                }
            }
        }
    }
    hit
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Papers link to the paper (a DOI or a record page) or, unconfirmed, to the journal:
    /// never to a literature search.
    #[test]
    fn no_paper_links_to_a_search() {
        for s in SOURCES {
            if let Some(url) = s.url {
                assert!(!url.contains("pubmed.ncbi.nlm.nih.gov/?term"), "{}", s.tag);
                assert!(!url.contains("search"), "{}: a search, not a record", s.tag);
                assert!(url.starts_with("https://"), "{}", s.tag);
            }
        }
        let tags: Vec<_> = SOURCES.iter().map(|s| s.tag).collect();
        let mut unique = tags.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(tags.len(), unique.len(), "each reference once");
    }

    /// Rules cite by key: every tag a rule's citation names is in the table, and a citation
    /// holds no copy of a full reference.
    #[test]
    fn rules_cite_by_key() {
        use crate::rules::*;
        let citations = [
            acute_ovcf::CITATION,
            anabolic_therapy_preferred::CITATION,
            bmd_significant_loss::CITATION,
            data_insufficient::CITATION,
            denosumab_discontinuation_without_transition::CITATION,
            denosumab_due_soon::CITATION,
            denosumab_overdue::CITATION,
            gc_bone_protection::CITATION,
            gc_fracture_risk_assessment_due::CITATION,
            hypocalcaemia_antiresorptive_caution::CITATION,
            new_fracture_after_augmentation::CITATION,
            osteoporosis_treatment_indicated::CITATION,
            ovcf_imaging_recommended::CITATION,
            ovcf_refractory_pain_augmentation_candidate::CITATION,
            post_denosumab_ctx_monitoring::CITATION,
            rebound_vertebral_fractures_suspected::CITATION,
            vitamin_d_deficiency_antiresorptive_caution::CITATION,
            zoledronate_renal_contraindication::CITATION,
        ];
        assert_eq!(citations.len(), crate::FindingCode::ALL.len());
        for c in citations {
            assert!(!c.contains("knowledge.md") && !c.contains('§'), "{c}");
            assert!(!cited(c).is_empty(), "{c}");
            for s in SOURCES {
                assert!(!c.contains(s.reference), "{c} copies {}", s.tag);
            }
            assert!(!c.contains(" et al"), "{c}");
        }
    }

    /// [`cited`] finds exactly the tags `str::contains` finds, whatever surrounds them.
    #[test]
    fn cited_is_contains_per_tag() {
        for s in SOURCES {
            assert!(s.tag.bytes().all(tag_char), "{}", s.tag);
        }
        let by_contains = |c: &str| -> Vec<&'static str> {
            SOURCES
                .iter()
                .filter(|s| c.contains(s.tag))
                .map(|s| s.tag)
                .collect()
        };
        let mut texts: Vec<String> = vec![
            String::new(),
            "ECTS-2021; CUMMINGS-2018".into(),
            "ECTS-2021a; XECTS-2017 LYU-2020,PROLIA-PI".into(),
            "ACR-2022/ACR-2017 (KANIS-2011) — SEED§OSTEOGUARD-SPEC".into(),
            "seed; acr-2022; ISCDX WHO-1994WHO-1994".into(),
            "GENANT-1993ACR-AC-VCF PVA-TIMING·STEROID-EQ RECLAST-PI".into(),
            "ECTS-2021 (details UNVERIFIED); ACR-2022 (initial and repeat fracture-risk)".into(),
            "xSEEDy ISCDISCD DSEE-D ACR-2022x2 zACR-AC-VCF".into(),
        ];
        texts.extend(SOURCES.iter().map(|s| s.tag.to_string()));
        texts.extend(SOURCES.iter().map(|s| format!("x{}é", s.tag)));
        for c in texts {
            let got: Vec<&str> = cited(&c).iter().map(|s| s.tag).collect();
            assert_eq!(got, by_contains(&c), "{c:?}");
        }
    }

    #[test]
    fn tags_are_found_in_citations() {
        let c = cited("ECTS-2021; CUMMINGS-2018");
        let tags: Vec<_> = c.iter().map(|s| s.tag).collect();
        assert_eq!(tags, vec!["ECTS-2021", "CUMMINGS-2018"]);
    }
}
