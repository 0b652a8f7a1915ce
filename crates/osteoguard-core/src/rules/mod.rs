//! One module per finding code of knowledge.md §9.
//!
//! Each module opens with the recommendation it implements, its source and strength, then its
//! named criteria (inclusion / exclusion predicates) and reads its thresholds from
//! [`crate::thresholds::Thresholds`] — never a literal. Tests sit beside each rule.
//!
//! [`run_all`] fixes the order (see [`crate::engine`] for why order matters).

use crate::engine::{Ctx, Outcome};

pub mod acute_ovcf;
pub mod anabolic_therapy_preferred;
pub mod bmd_significant_loss;
pub mod data_insufficient;
pub mod denosumab_common;
pub mod denosumab_discontinuation_without_transition;
pub mod denosumab_due_soon;
pub mod denosumab_overdue;
pub mod gc_bone_protection;
pub mod gc_fracture_risk_assessment_due;
pub mod hypocalcaemia_antiresorptive_caution;
pub mod new_fracture_after_augmentation;
pub mod osteoporosis_treatment_indicated;
pub mod ovcf_imaging_recommended;
pub mod ovcf_refractory_pain_augmentation_candidate;
pub mod post_denosumab_ctx_monitoring;
pub mod rebound_vertebral_fractures_suspected;
pub mod safety;
pub mod tasks;
pub mod vitamin_d_deficiency_antiresorptive_caution;
pub mod zoledronate_renal_contraindication;

#[cfg(test)]
mod text_thresholds_tests;
#[cfg(test)]
mod v0_10_3_tests;

/// Evaluates every rule in dependency order.
pub fn run_all(ctx: &Ctx<'_>, out: &mut Outcome) {
    // GIOP (§2, §4)
    gc_bone_protection::evaluate(ctx, out);
    gc_fracture_risk_assessment_due::evaluate(ctx, out);
    // Denosumab schedule and transition (§5)
    denosumab_due_soon::evaluate(ctx, out);
    denosumab_overdue::evaluate(ctx, out);
    denosumab_discontinuation_without_transition::evaluate(ctx, out);
    post_denosumab_ctx_monitoring::evaluate(ctx, out);
    // Bone density (§6) before rebound, which reads it
    bmd_significant_loss::evaluate(ctx, out);
    rebound_vertebral_fractures_suspected::evaluate(ctx, out);
    // Vertebral fractures (§7)
    acute_ovcf::evaluate(ctx, out);
    ovcf_refractory_pain_augmentation_candidate::evaluate(ctx, out);
    ovcf_imaging_recommended::evaluate(ctx, out);
    new_fracture_after_augmentation::evaluate(ctx, out);
    // Treatment (§4) after discontinuation, which suppresses it
    osteoporosis_treatment_indicated::evaluate(ctx, out);
    anabolic_therapy_preferred::evaluate(ctx, out);
    // Safety (§8) after every rule that can recommend zoledronate
    zoledronate_renal_contraindication::evaluate(ctx, out);
    hypocalcaemia_antiresorptive_caution::evaluate(ctx, out);
    vitamin_d_deficiency_antiresorptive_caution::evaluate(ctx, out);
    // Assembled last
    data_insufficient::evaluate(ctx, out);
    tasks::derive(ctx, out);
}
