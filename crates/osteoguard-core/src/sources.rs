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

/// Sources whose tag occurs in `citation`, in table order.
pub fn cited(citation: &str) -> Vec<&'static Source> {
    SOURCES
        .iter()
        .filter(|s| citation.contains(s.tag))
        .collect()
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

    #[test]
    fn tags_are_found_in_citations() {
        let c = cited("ECTS-2021; CUMMINGS-2018");
        let tags: Vec<_> = c.iter().map(|s| s.tag).collect();
        assert_eq!(tags, vec!["ECTS-2021", "CUMMINGS-2018"]);
    }
}
