//! # osteoguard-report — one assessment, three renderings
//!
//! What goes in: an [`osteoguard_core::Assessment`]. What comes out: text a clinician reads in
//! 30 seconds ([`text`]), the `osteoguard.assessment/1` JSON ([`json`]) and a self-contained
//! HTML report with a timeline chart and spine diagram ([`html`]). All three are fed from the
//! same results model (ripgrep's printer crate keeps its formats apart the same way).

pub mod fhir;
pub mod html;
pub mod json;
pub mod text;
