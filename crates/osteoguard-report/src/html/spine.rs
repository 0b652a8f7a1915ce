//! The spine diagram: T1–L5, each vertebra coloured by its state at the as-of date, labelled,
//! with a legend that explains every glyph. Each level is
//! `<g data-level="L3" data-state="acute" data-recent="true|false">`: a fracture or augmentation
//! dated within `displayThresholds.recentSpineEventDays` of the as-of date is *recent* (thick
//! red outline and a "new" tag), so the 2023 rebound levels stand apart from a 2022 cement.

use maud::{html, Markup};
use osteoguard_core::facts::spine::LevelState;
use osteoguard_core::model::VertebralLevel;
use osteoguard_core::Assessment;

use super::svg::{fmt_num, Num};

const STATES: [LevelState; 6] = [
    LevelState::Intact,
    LevelState::Acute,
    LevelState::Subacute,
    LevelState::Chronic,
    LevelState::Augmented,
    LevelState::Unknown,
];

fn state_label(s: LevelState) -> &'static str {
    match s {
        LevelState::Unknown => "unknown",
        LevelState::Intact => "intact",
        LevelState::Acute => "acute fracture",
        LevelState::Subacute => "subacute fracture",
        LevelState::Chronic => "chronic fracture",
        LevelState::Augmented => "augmented (cement)",
    }
}

/// The drawn body of one vertebra: the box, a crack for fractured states, a cement blob for
/// augmented ones (so the states stay apart in greyscale print too).
fn body(state: LevelState, cx: f64, y: f64, w: f64, h: f64) -> Markup {
    let x = cx - w / 2.0;
    let crack = format!(
        "{},{} {},{} {},{} {},{} {},{}",
        fmt_num(x + 3.0),
        fmt_num(y + h * 0.45),
        fmt_num(x + w * 0.3),
        fmt_num(y + h * 0.65),
        fmt_num(x + w * 0.5),
        fmt_num(y + h * 0.35),
        fmt_num(x + w * 0.7),
        fmt_num(y + h * 0.65),
        fmt_num(x + w - 3.0),
        fmt_num(y + h * 0.45)
    );
    html! {
        rect.vbody x=(Num(x)) y=(Num(y)) width=(Num(w)) height=(Num(h)) rx="5" {}
        @match state {
            LevelState::Acute | LevelState::Subacute | LevelState::Chronic => {
                polyline.crack points=(crack) {}
            }
            LevelState::Augmented => {
                ellipse.cement cx=(Num(cx)) cy=(Num(y + h / 2.0)) rx=(Num(w * 0.28)) ry=(Num(h * 0.3)) {}
            }
            _ => {}
        }
    }
}

/// Whether a level's fracture or augmentation is recent (within the display window of as-of).
fn is_recent(a: &Assessment, state: LevelState, since: Option<chrono::NaiveDate>) -> bool {
    let eventful = !matches!(state, LevelState::Intact | LevelState::Unknown);
    let window = a.display_thresholds.recent_spine_event_days;
    match since {
        Some(d) if eventful => d <= a.as_of && (a.as_of - d).num_days() <= window,
        _ => false,
    }
}

/// The "recent" mark: a thick outline around the body and a small "new" tag at its right.
fn recent_mark(cx: f64, y: f64, w: f64, h: f64) -> Markup {
    let x = cx - w / 2.0;
    html! {
        rect.recent-ring x=(Num(x - 3.0)) y=(Num(y - 3.0)) width=(Num(w + 6.0)) height=(Num(h + 6.0)) rx="7" {}
        text.recent-tag x=(Num(x + w + 6.0)) y=(Num(y + h / 2.0 + 4.0)) { "new" }
    }
}

pub fn render(a: &Assessment) -> Markup {
    let cx = 130.0;
    let mut y = 16.0;
    let mut rows = Vec::new();
    for (i, level) in VertebralLevel::ALL.iter().enumerate() {
        let lumbar = i >= 12;
        let h = if lumbar { 27.0 } else { 20.0 };
        let w = 44.0 + 44.0 * (i as f64 / 16.0);
        let entry = a.spine.iter().find(|l| l.level == level.label());
        let state = entry.map(|l| l.state).unwrap_or(LevelState::Unknown);
        let since = entry.and_then(|l| l.since);
        rows.push((level.label(), state, since, y, w, h));
        y += h + 5.0;
    }
    let legend_y = y + 16.0;
    let recent_legend_y = legend_y + 3.0 * 22.0 + 4.0;
    let height = recent_legend_y + 2.0 * 22.0 + 8.0;
    let window = a.display_thresholds.recent_spine_event_days;
    html! {
        svg.spine xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 440 " (Num(height)) }
            width="440" role="img" aria-label="Spine diagram T1 to L5" {
            @for (label, state, since, y, w, h) in &rows {
                @let recent = is_recent(a, *state, *since);
                g class={ "vertebra st-" (state.as_str()) @if recent { " recent" } } data-level=(label) data-state=(state.as_str())
                    data-since=[since] data-recent=(recent) {
                    title { (label) ": " (state_label(*state)) @if let Some(d) = since { " since " (d) } @if recent { " (recent)" } }
                    (body(*state, cx, *y, *w, *h))
                    @if recent { (recent_mark(cx, *y, *w, *h)) }
                    text.vlabel x=(Num(cx - w / 2.0 - 8.0)) y=(Num(y + h / 2.0 + 4.0)) text-anchor="end" { (label) }
                    @if *state != LevelState::Unknown {
                        text.vstate x=(Num(cx + 52.0 + if recent { 26.0 } else { 0.0 })) y=(Num(y + h / 2.0 + 4.0)) {
                            (state_label(*state))
                            @if let Some(d) = since { tspan.since { " · " (d) } }
                        }
                    }
                }
            }
            g.legend {
                @for (i, s) in STATES.iter().enumerate() {
                    @let lx = 10.0 + 215.0 * (i % 2) as f64;
                    @let ly = legend_y + 22.0 * (i / 2) as f64;
                    g class={ "legend-item st-" (s.as_str()) } {
                        (body(*s, lx + 18.0, ly - 12.0, 36.0, 16.0))
                        text.legend-lbl x=(Num(lx + 42.0)) y=(Num(ly)) { (state_label(*s)) }
                    }
                }
                // Recent versus old: the same state, with and without the recent mark.
                g.legend-item.st-augmented.recent data-legend="recent" {
                    (body(LevelState::Augmented, 28.0, recent_legend_y - 12.0, 36.0, 16.0))
                    (recent_mark(28.0, recent_legend_y - 12.0, 36.0, 16.0))
                    text.legend-lbl x="80" y=(Num(recent_legend_y)) {
                        "new: fractured or augmented ≤ " (window) " days before as-of"
                    }
                }
                g.legend-item.st-augmented data-legend="old" {
                    (body(LevelState::Augmented, 28.0, recent_legend_y + 10.0, 36.0, 16.0))
                    text.legend-lbl x="80" y=(Num(recent_legend_y + 22.0)) {
                        "older: no mark"
                    }
                }
            }
        }
    }
}
