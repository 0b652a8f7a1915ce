//! Dated tasks: next denosumab dose, CTX at 3 and 6 months after transition, DXA re-check,
//! reassessment (knowledge.md §4.4, §5.1, §5.3).

use crate::engine::{Ctx, Outcome};

pub fn derive(ctx: &Ctx<'_>, out: &mut Outcome) {
    let _ = (ctx, out);
}
