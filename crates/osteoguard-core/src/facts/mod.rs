//! Derived clinical facts, computed once per evaluation from the record and the as-of date.
//!
//! Facts are *not* findings: they are the named intermediate quantities of knowledge.md
//! (`current_daily_peq`, `D_last`, per-level spine state, `min_T_hip_spine`, the risk category …)
//! that several rules read. Each module states the section it implements.
//!
//! Order of computation (see [`crate::engine`]): gc, spine, dxa, denosumab, therapy, risk.

pub mod denosumab;
pub mod dxa;
pub mod gc;
pub mod labs;
pub mod risk;
pub mod spine;
pub mod therapy;

use chrono::NaiveDate;

use crate::model::PatientRecord;
use crate::thresholds::Thresholds;

/// What every fact computation reads: the record *as visible at* `as_of` (items dated later are
/// already removed, knowledge.md §1.2), the as-of date, the thresholds and the age.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub record: &'a PatientRecord,
    pub as_of: NaiveDate,
    pub t: &'a Thresholds,
    /// Completed years at `as_of` (§1.2); `None` without a birth date.
    pub age: Option<i64>,
}
