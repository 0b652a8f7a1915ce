//! `gc-bone-protection` — knowledge.md §9. (Rule not yet implemented.)

use crate::engine::{Ctx, Outcome};

pub fn evaluate(ctx: &Ctx<'_>, out: &mut Outcome) {
    let _ = (ctx, out);
}
