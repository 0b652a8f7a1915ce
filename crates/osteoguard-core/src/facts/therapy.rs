//! Active and planned osteoporosis pharmacotherapy, supplements — knowledge.md §4.3 and §8
//! ("planned").

use chrono::NaiveDate;
use serde::Serialize;

use super::denosumab::DenosumabCourse;
use super::Input;
use crate::model::{Ingredient, SourceRef};
use crate::tri::Tri;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentUse {
    pub agent: Ingredient,
    pub source: SourceRef,
    /// Date of the dose or start that makes it active/planned.
    pub date: Option<NaiveDate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Default)]
pub struct TherapyFacts {
    /// Active osteoporosis pharmacotherapy on `as_of` (§4.3): TRUE with evidence, FALSE, or
    /// UNKNOWN (e.g. a MedicationStatement with status unknown).
    pub active: Tri,
    pub active_agents: Vec<AgentUse>,
    /// Planned orders (§8: status draft/active, authored within 90 days, not fulfilled, not
    /// what makes the agent active).
    pub planned: Vec<AgentUse>,
    /// Unfulfilled orders older than the planned window (reported in dataQuality).
    pub stale_orders: Vec<AgentUse>,
    /// Calcium supplement active on `as_of` (§9 gc-bone-protection).
    pub calcium_active: bool,
    /// Vitamin D supplement active on `as_of`.
    pub vitamin_d_active: bool,
    /// Cumulative teriparatide/abaloparatide days (completed anabolic course ≥ 730).
    pub anabolic_days: i64,
    /// A denosumab administration within the last 730 days.
    pub denosumab_within_lookback: bool,
}

impl TherapyFacts {
    pub fn is_active(&self, agent: Ingredient) -> bool {
        self.active_agents.iter().any(|a| a.agent == agent)
    }
    pub fn is_planned(&self, agent: Ingredient) -> bool {
        self.planned.iter().any(|a| a.agent == agent)
    }
}

pub fn compute(input: &Input<'_>, dmab: &DenosumabCourse) -> TherapyFacts {
    let _ = (input, dmab);
    TherapyFacts::default()
}
