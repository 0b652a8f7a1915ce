//! The timeline chart: stacked lanes over one shared time axis — glucocorticoid dose (step
//! line), antiresorptive doses with the period each covers and the overdue gaps, DXA T-scores,
//! fractures and procedures, pain scores — and the as-of date as a vertical line.
//!
//! Stable hooks for tests: `data-injection` (one per antiresorptive dose), `data-gap`,
//! `data-fracture`, `data-procedure`, `data-tscore`, `data-pain` — on the overview chart only, so
//! each record item is counted once — and `data-as-of`.

use chrono::NaiveDate;
use maud::{html, Markup};
use osteoguard_core::assessment::TimelineDose;
use osteoguard_core::model::{DxaSite, ProcedureKind};
use osteoguard_core::Assessment;

use super::svg::{add_days, fmt_num, text_width, LinearScale, Num, TimeScale};

const WIDTH: f64 = 1200.0;
const X0: f64 = 170.0;
const X1: f64 = 1170.0;
const LANE_GAP: f64 = 12.0;
/// Font size of mark labels (CSS `.lbl`).
const LABEL_PX: f64 = 11.0;
const MAX_LABEL_ROWS: usize = 10;

// The clinical numbers the chart draws — GC dose lines (knowledge.md §2: the course threshold
// and the higher-dose band), T-score lines (osteoporosis, very-high-risk band), the days one
// denosumab dose covers and the grace after its due date (§5.1, LYU-2020: a dose given within
// the grace is on time, its short gap shaded lightly and not labelled overdue) — come from the
// assessment (`displayThresholds`, the core's threshold table), never from literals here.

/// The whole-record date range: from the earliest dated item to `max(timeline.end, asOf)`.
pub fn record_range(a: &Assessment) -> (NaiveDate, NaiveDate) {
    let dates = all_dates(a);
    let start = dates.iter().min().copied().unwrap_or(a.as_of).min(a.as_of);
    let end = dates.iter().max().copied().unwrap_or(a.as_of).max(a.as_of);
    (start, end)
}

fn all_dates(a: &Assessment) -> Vec<NaiveDate> {
    let t = &a.timeline;
    let mut v: Vec<NaiveDate> = Vec::new();
    v.extend(t.start);
    v.extend(t.end);
    v.extend(a.glucocorticoid.series.iter().map(|(d, _)| *d));
    v.extend(a.bone_density.t_scores.iter().map(|p| p.date));
    v.extend(t.fractures.iter().filter_map(|f| f.onset));
    v.extend(t.procedures.iter().map(|p| p.date));
    v.extend(t.antiresorptive_doses.iter().map(|d| d.date));
    v.extend(t.pain.iter().map(|p| p.date));
    v.extend(a.denosumab.doses.iter().copied());
    v.extend(a.denosumab.transition);
    v
}

/// Antiresorptive doses: the timeline's, plus any denosumab dose of the denosumab summary the
/// timeline lacks (so a marker exists for every injection either source knows).
pub fn doses(a: &Assessment) -> Vec<TimelineDose> {
    let mut v = a.timeline.antiresorptive_doses.clone();
    for d in &a.denosumab.doses {
        if !v.iter().any(|x| is_denosumab(&x.agent) && x.date == *d) {
            v.push(TimelineDose {
                agent: "denosumab".into(),
                date: *d,
                covers_days: a.display_thresholds.denosumab_cover_days,
                reference: "".into(),
            });
        }
    }
    v.sort_by(|x, y| (x.date, &x.agent, &x.reference).cmp(&(y.date, &y.agent, &y.reference)));
    v
}

fn is_denosumab(agent: &str) -> bool {
    agent.eq_ignore_ascii_case("denosumab")
}

/// An uncovered stretch after a denosumab dose's cover ran out.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// Ended by the as-of date rather than by a dose or transition.
    pub open: bool,
    /// No transition therapy documented (open gaps only).
    pub no_transition: bool,
    /// Days after the due date a dose is still on time (the assessment's display thresholds).
    pub grace_days: i64,
}

impl Gap {
    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days()
    }
    /// A closed gap within the 4-week grace: the next dose was on time.
    pub fn within_grace(&self) -> bool {
        !self.open && self.days() <= self.grace_days
    }
    pub fn label(&self) -> String {
        let mut s = format!("denosumab overdue {} days", self.days());
        if self.no_transition {
            s.push_str(" · no transition");
        }
        s
    }
}

/// Denosumab gaps: between consecutive doses when the next came after the cover ended, and after
/// the last dose until the transition (or the first other antiresorptive dose after it) or the
/// as-of date.
pub fn denosumab_gaps(a: &Assessment, doses: &[TimelineDose]) -> Vec<Gap> {
    let dm: Vec<&TimelineDose> = doses.iter().filter(|d| is_denosumab(&d.agent)).collect();
    let mut gaps = Vec::new();
    for w in dm.windows(2) {
        let due = add_days(w[0].date, w[0].covers_days);
        if w[1].date > due {
            gaps.push(Gap {
                from: due,
                to: w[1].date,
                open: false,
                no_transition: false,
                grace_days: a.display_thresholds.denosumab_grace_days,
            });
        }
    }
    if let Some(last) = dm.last() {
        let due = add_days(last.date, last.covers_days);
        let other_after = doses
            .iter()
            .filter(|d| !is_denosumab(&d.agent) && d.date > last.date)
            .map(|d| d.date)
            .min();
        let transition = a
            .denosumab
            .transition
            .filter(|t| *t >= last.date)
            .or(other_after);
        let (to, open) = match transition {
            Some(t) if t <= a.as_of => (t, false),
            _ => (a.as_of, true),
        };
        if to > due {
            gaps.push(Gap {
                from: due,
                to,
                open,
                no_transition: open,
                grace_days: a.display_thresholds.denosumab_grace_days,
            });
        }
    }
    gaps
}

/// Glucocorticoid dose axis: linear up to 10 mg/day over 60 % of the lane, compressed above,
/// so that the 2.5 and 7.5 mg/day lines stay apart even next to a pulse.
struct GcScale {
    top: f64,
    bottom_px: f64,
    top_px: f64,
}

impl GcScale {
    fn y(&self, v: f64) -> f64 {
        let v = if v.is_finite() {
            v.clamp(0.0, self.top)
        } else {
            0.0
        };
        let span = self.bottom_px - self.top_px;
        if self.top <= 10.0 {
            return self.bottom_px - span * v / self.top.max(1.0);
        }
        let knee = 0.6 * span;
        if v <= 10.0 {
            self.bottom_px - knee * v / 10.0
        } else {
            self.bottom_px - knee - (span - knee) * (v - 10.0) / (self.top - 10.0)
        }
    }
}

struct Chart<'a> {
    a: &'a Assessment,
    s: TimeScale,
    detail: bool,
    id: &'static str,
}

/// One label to place: anchor x, text, CSS class.
struct Label {
    x: f64,
    text: String,
    class: &'static str,
}

/// Where a label went: `(row, text x, anchored at its end)`.
type Placement = (usize, f64, bool);

/// Greedy row assignment: each label goes to the first row where it overlaps nothing.
/// Returns `(row, x_text, anchor_end)` per label (row `None` = no room, not drawn).
fn place_labels(labels: &[Label]) -> (Vec<Option<Placement>>, usize) {
    let mut rows: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut out = Vec::new();
    for l in labels {
        let w = text_width(&l.text, LABEL_PX);
        let (lo, hi, end) = if l.x + 4.0 + w <= X1 {
            (l.x - 2.0, l.x + 4.0 + w, false)
        } else {
            (l.x - 4.0 - w, l.x + 2.0, true)
        };
        let row = rows
            .iter()
            .position(|r| r.iter().all(|(a, b)| hi + 6.0 < *a || lo > *b + 6.0));
        let row = match row {
            Some(r) => Some(r),
            None if rows.len() < MAX_LABEL_ROWS => {
                rows.push(Vec::new());
                Some(rows.len() - 1)
            }
            None => None,
        };
        if let Some(r) = row {
            rows[r].push((lo, hi));
            let tx = if end { l.x - 4.0 } else { l.x + 4.0 };
            out.push(Some((r, tx, end)));
        } else {
            out.push(None);
        }
    }
    (out, rows.len())
}

fn procedure_word(k: ProcedureKind) -> &'static str {
    match k {
        ProcedureKind::Vertebroplasty => "vertebroplasty",
        ProcedureKind::Kyphoplasty => "kyphoplasty",
        ProcedureKind::SpineMri => "MRI spine",
        ProcedureKind::SpineCt => "CT spine",
        ProcedureKind::SpineXray => "X-ray spine",
        ProcedureKind::Dxa => "DXA",
    }
}

fn site_class(s: DxaSite) -> &'static str {
    match s {
        DxaSite::LumbarSpine => "site-spine",
        DxaSite::TotalHip => "site-hip",
        DxaSite::FemoralNeck => "site-neck",
        DxaSite::Forearm => "site-forearm",
    }
}

/// A marker shape centred on `(x, y)` with radius `r`.
fn shape(kind: &str, x: f64, y: f64, r: f64) -> Markup {
    match kind {
        "square" => {
            html! { rect x=(Num(x - r)) y=(Num(y - r)) width=(Num(2.0 * r)) height=(Num(2.0 * r)) {} }
        }
        "diamond" => html! {
            polygon points={ (fmt_num(x)) "," (fmt_num(y - r * 1.3)) " " (fmt_num(x + r * 1.3)) "," (fmt_num(y)) " "
                (fmt_num(x)) "," (fmt_num(y + r * 1.3)) " " (fmt_num(x - r * 1.3)) "," (fmt_num(y)) } {}
        },
        "triangle" => html! {
            polygon points={ (fmt_num(x)) "," (fmt_num(y - r * 1.2)) " " (fmt_num(x + r * 1.1)) "," (fmt_num(y + r * 0.8)) " "
                (fmt_num(x - r * 1.1)) "," (fmt_num(y + r * 0.8)) } {}
        },
        _ => html! { circle cx=(Num(x)) cy=(Num(y)) r=(Num(r)) {} },
    }
}

fn agent_style(agent: &str) -> (&'static str, &'static str) {
    let a = agent.to_ascii_lowercase();
    if a == "denosumab" {
        ("circle", "ag-dmab")
    } else if a.contains("zoledron") {
        ("diamond", "ag-zol")
    } else if a.contains("ibandron") {
        ("square", "ag-iban")
    } else {
        ("triangle", "ag-other")
    }
}

/// Which value labels to draw: each `(x, baseline y, text)` is kept when its box overlaps no
/// label kept before it (the value stays in the marker's tooltip), so labels never collide.
fn keep_value_labels(labels: &[(f64, f64, String)]) -> Vec<bool> {
    let mut kept: Vec<(f64, f64, f64, f64)> = Vec::new();
    labels
        .iter()
        .map(|(x, y, t)| {
            let b = (
                *x - 1.0,
                *x + text_width(t, LABEL_PX) + 1.0,
                *y - LABEL_PX,
                *y + 3.0,
            );
            let free = kept
                .iter()
                .all(|k| b.1 <= k.0 || b.0 >= k.1 || b.3 <= k.2 || b.2 >= k.3);
            if free {
                kept.push(b);
            }
            free
        })
        .collect()
}

/// Horizontal offset of a T-score marker so that readings drawn at (nearly) the same place —
/// one scan's spine and hip — sit side by side instead of one hiding the other.
fn dodge(
    pts: &[osteoguard_core::assessment::TScorePoint],
    p: &osteoguard_core::assessment::TScorePoint,
    s: &TimeScale,
    r: f64,
) -> f64 {
    let x = s.x(p.date);
    let mut near: Vec<&osteoguard_core::assessment::TScorePoint> = pts
        .iter()
        .filter(|q| (s.x(q.date) - x).abs() < 2.0 * r)
        .collect();
    if near.len() < 2 {
        return 0.0;
    }
    near.sort_by(|a, b| (a.site, a.date, &a.reference).cmp(&(b.site, b.date, &b.reference)));
    let k = near.iter().position(|q| std::ptr::eq(*q, p)).unwrap_or(0) as f64;
    let n = near.len() as f64;
    (k - (n - 1.0) / 2.0) * (2.0 * r + 2.0)
}

fn site_shape(s: DxaSite) -> &'static str {
    match s {
        DxaSite::LumbarSpine => "circle",
        DxaSite::TotalHip => "square",
        DxaSite::FemoralNeck => "triangle",
        DxaSite::Forearm => "diamond",
    }
}

/// Days before the first antiresorptive dose or fracture the main chart starts (issue 17: the
/// clinically relevant window opens one year before; a display choice, not a clinical rule).
const WINDOW_LEAD_DAYS: i64 = 365;

/// The clinically relevant window: from one year before the first antiresorptive dose or the
/// first dated fracture (whichever is earlier) to the end of the record (≥ as-of); the whole
/// record when it has neither, or when the window would start before the record does.
pub fn relevant_window(a: &Assessment) -> (NaiveDate, NaiveDate) {
    let (start, end) = record_range(a);
    let first_dose = doses(a).iter().map(|d| d.date).min();
    let first_fracture = a.timeline.fractures.iter().filter_map(|f| f.onset).min();
    match first_dose.into_iter().chain(first_fracture).min() {
        Some(d) => (add_days(d, -WINDOW_LEAD_DAYS).max(start).min(a.as_of), end),
        None => (start, end),
    }
}

/// Renders, in order: a compact strip over the whole record (when the relevant window is
/// shorter) with the window shaded; the main chart over the relevant window; and, when that
/// spans more than ~18 months, a chart zoomed on the 12 months before the as-of date.
///
/// Test hooks count each record item once: items inside the window carry them on the main
/// chart, items before it on the strip.
pub fn render(a: &Assessment) -> Markup {
    let (start, end) = record_range(a);
    let (w0, w1) = relevant_window(a);
    let windowed = w0 > start;
    let overview = Chart {
        a,
        s: TimeScale::new(w0, w1, X0, X1, 30),
        detail: false,
        id: "tl",
    };
    let zoom = ((w1 - w0).num_days() > 540).then(|| Chart {
        a,
        s: TimeScale::new(add_days(a.as_of, -365), a.as_of, X0, X1, 30),
        detail: true,
        id: "tlz",
    });
    let undated: Vec<String> = a
        .timeline
        .fractures
        .iter()
        .filter(|f| f.onset.is_none())
        .map(|f| format!("{} fracture ({})", f.site, f.reference))
        .collect();
    html! {
        @if windowed {
            figure.chart.history data-chart="history" {
                figcaption { "Whole record, " (start) " to " (end) " — the shaded part is charted below" }
                (strip(a, (start, end), (w0, w1), overview.s.start))
            }
        }
        figure.chart data-chart="overview" data-from=(w0) data-to=(w1) {
            figcaption {
                @if windowed {
                    "From " (w0) " (one year before the first antiresorptive dose or fracture) to " (w1)
                } @else {
                    "Whole record, " (start) " to " (end)
                }
            }
            (overview.svg())
        }
        @if let Some(z) = zoom {
            figure.chart data-chart="detail" {
                figcaption { "Detail: the 12 months before " (a.as_of) }
                (z.svg())
            }
        }
        @if !undated.is_empty() {
            p.undated { "Not on the chart (no date): "
                @for (i, u) in undated.iter().enumerate() {
                    @if i > 0 { "; " } (u)
                }
            }
        }
    }
}

/// The compact whole-record strip: doses, fractures and procedures, DXA and pain as small
/// marks on three rows, the relevant window shaded, the as-of line. Items dated before the
/// main chart's (padded) start carry the test hooks here; the main chart carries the others.
fn strip(
    a: &Assessment,
    (start, end): (NaiveDate, NaiveDate),
    (w0, w1): (NaiveDate, NaiveDate),
    main_start: NaiveDate,
) -> Markup {
    let s = TimeScale::new(start, end, X0, X1, 30);
    // The main chart shows (and hooks) everything from its padded start on.
    let before = |d: NaiveDate| d < main_start;
    let hook = |d: NaiveDate| before(d).then_some(());
    let (r1, r2, r3) = (18.0, 36.0, 54.0);
    let bottom = 64.0;
    let height = bottom + 22.0;
    let ds = doses(a);
    let gaps: Vec<Gap> = denosumab_gaps(a, &ds)
        .into_iter()
        .filter(|g| !g.within_grace())
        .collect();
    let wx0 = s.x_clamped(w0);
    let wx1 = s.x_clamped(w1);
    html! {
        svg.timeline.strip xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (Num(WIDTH)) " " (Num(height)) }
            width="100%" role="img" aria-label="Whole-record strip" {
            g.axis {
                @for (d, label) in s.ticks() {
                    @let x = s.x(d);
                    line.grid x1=(Num(x)) x2=(Num(x)) y1="6" y2=(Num(bottom)) {}
                    text.axis-lbl x=(Num(x)) y=(Num(bottom + 16.0)) text-anchor="middle" { (label) }
                }
                line.baseline x1=(Num(X0)) x2=(Num(X1)) y1=(Num(bottom)) y2=(Num(bottom)) {}
            }
            rect.strip-window x=(Num(wx0)) y="4" width=(Num((wx1 - wx0).max(1.0))) height=(Num(bottom - 4.0)) {}
            text.strip-lbl x="8" y=(Num(r1 + 4.0)) { "antiresorptive" }
            text.strip-lbl x="8" y=(Num(r2 + 4.0)) { "fractures, procedures" }
            text.strip-lbl x="8" y=(Num(r3 + 4.0)) { "DXA, pain" }
            @for g in &gaps {
                @let x0 = s.x_clamped(g.from);
                @let x1 = s.x_clamped(g.to);
                rect.gap-band x=(Num(x0)) y=(Num(r1 - 7.0)) width=(Num((x1 - x0).max(1.0))) height="14" {}
            }
            @for d in &ds {
                @let (kind, class) = agent_style(&d.agent);
                g class={ "injection " (class) } data-injection=[hook(d.date).map(|_| &d.agent)] data-date=[hook(d.date).map(|_| d.date)] data-ref=[hook(d.date).map(|_| d.reference.as_str())] {
                    title { (d.agent) " " (d.date) }
                    (shape(kind, s.x_clamped(d.date), r1, 3.5))
                }
            }
            @for f in &a.timeline.fractures {
                @if let Some(d) = f.onset {
                    g.event.ev-fracture data-fracture=[hook(d).map(|_| &f.site)] data-date=[hook(d).map(|_| d)] data-ref=[hook(d).map(|_| f.reference.as_str())] {
                        title { (f.site) " fracture " (d) }
                        (shape("triangle", s.x_clamped(d), r2, 4.0))
                    }
                }
            }
            @for p in &a.timeline.procedures {
                @let label = if p.levels.is_empty() { procedure_word(p.kind).to_string() } else { format!("{} {}", p.levels.join(", "), procedure_word(p.kind)) };
                g class={ "event " (if p.kind.is_augmentation() { "ev-augment" } else { "ev-imaging" }) }
                    data-procedure=[hook(p.date).map(|_| &label)] data-date=[hook(p.date).map(|_| p.date)] data-ref=[hook(p.date).map(|_| p.reference.as_str())] {
                    title { (label) " " (p.date) }
                    (shape(if p.kind.is_augmentation() { "square" } else { "circle" }, s.x_clamped(p.date), r2, 3.0))
                }
            }
            @for t in &a.bone_density.t_scores {
                g class={ "tscore " (site_class(t.site)) } data-tscore=[hook(t.date).map(|_| fmt_num(t.value))] data-site=[hook(t.date).map(|_| t.site.label())] data-date=[hook(t.date).map(|_| t.date)] {
                    title { (t.site.label()) " T-score " (t.value) " on " (t.date) }
                    (shape(site_shape(t.site), s.x_clamped(t.date), r3, 3.0))
                }
            }
            @for p in &a.timeline.pain {
                g class={ "pain " @if p.value >= a.display_thresholds.pain_high_min { "pain-hi" } @else { "pain-lo" } } data-pain=[hook(p.date).map(|_| fmt_num(p.value))] data-date=[hook(p.date).map(|_| p.date)] {
                    title { "pain " (p.value) "/10 on " (p.date) }
                    circle cx=(Num(s.x_clamped(p.date))) cy=(Num(r3)) r="2" {}
                }
            }
            @let ax = s.x(a.as_of);
            g.as-of { line x1=(Num(ax)) x2=(Num(ax)) y1="4" y2=(Num(bottom)) {} }
        }
    }
}

impl Chart<'_> {
    fn svg(&self) -> Markup {
        let mut y = 26.0;
        let (gc, h) = self.gc_lane(y);
        y += h + LANE_GAP;
        let (ar, h) = self.antiresorptive_lane(y);
        y += h + LANE_GAP;
        let (ts, h) = self.tscore_lane(y);
        y += h + LANE_GAP;
        let (ev, h) = self.events_lane(y);
        y += h + LANE_GAP;
        let (pain, h) = self.pain_lane(y);
        y += h;
        let bottom = y;
        let height = bottom + 30.0;
        let ax = self.s.x(self.a.as_of);
        let as_of_label = format!("as of {}", self.a.as_of);
        let as_of_end = ax + text_width(&as_of_label, 12.0) > WIDTH - 4.0;
        let clip = format!("{}-clip", self.id);
        let gaps: Vec<Gap> = denosumab_gaps(self.a, &doses(self.a))
            .into_iter()
            .filter(|g| !g.within_grace())
            .collect();
        let fx_dates: Vec<NaiveDate> = self
            .a
            .timeline
            .fractures
            .iter()
            .filter_map(|f| f.onset)
            .filter(|d| self.s.contains(*d))
            .collect();
        html! {
            svg.timeline xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (Num(WIDTH)) " " (Num(height)) }
                width="100%" role="img" aria-label="Timeline chart" data-detail=(self.detail) {
                defs {
                    clipPath id=(clip) { rect x=(Num(X0)) y="0" width=(Num(X1 - X0)) height=(Num(height)) {} }
                    pattern id={ (self.id) "-hatch" } patternUnits="userSpaceOnUse" width="8" height="8" patternTransform="rotate(45)" {
                        rect width="8" height="8" fill="#fde2e0" {}
                        line x1="0" y1="0" x2="0" y2="8" stroke="#e8837a" stroke-width="3" {}
                    }
                }
                // Grid and axis.
                g.axis {
                    @for (d, label) in self.s.ticks() {
                        @let x = self.s.x(d);
                        line.grid x1=(Num(x)) x2=(Num(x)) y1="22" y2=(Num(bottom)) {}
                        line.tick x1=(Num(x)) x2=(Num(x)) y1=(Num(bottom)) y2=(Num(bottom + 5.0)) {}
                        text.axis-lbl x=(Num(x)) y=(Num(bottom + 18.0)) text-anchor="middle" { (label) }
                    }
                    line.baseline x1=(Num(X0)) x2=(Num(X1)) y1=(Num(bottom)) y2=(Num(bottom)) {}
                }
                (gc) (ar) (ts) (ev) (pain)
                // The overdue gaps tint every lane, and each fracture is a guide line through
                // every lane, so that what happened during a gap reads at a glance.
                g.overlays clip-path=(self.clip()) {
                    @for g in &gaps {
                        @let gx0 = self.s.x_clamped(g.from);
                        @let gx1 = self.s.x_clamped(g.to);
                        rect.gap-band x=(Num(gx0)) y="22" width=(Num((gx1 - gx0).max(1.0))) height=(Num(bottom - 22.0)) {}
                    }
                    @for fd in &fx_dates {
                        line.fx-guide x1=(Num(self.s.x(*fd))) x2=(Num(self.s.x(*fd))) y1="22" y2=(Num(bottom)) {}
                    }
                }
                g.as-of data-as-of=(self.a.as_of) {
                    line x1=(Num(ax)) x2=(Num(ax)) y1="16" y2=(Num(bottom)) {}
                    text x=(Num(if as_of_end { ax - 4.0 } else { ax + 4.0 })) y="14"
                        text-anchor=(if as_of_end { "end" } else { "start" }) { (as_of_label) }
                }
            }
        }
    }

    /// The value of a `data-*` test hook: present in the overview chart only, so that a hook
    /// selector counts each record item once.
    fn hook<T>(&self, v: T) -> Option<T> {
        (!self.detail).then_some(v)
    }

    fn clip(&self) -> String {
        format!("url(#{}-clip)", self.id)
    }

    fn frame(&self, y: f64, h: f64, title: &str, sub: &[(&str, &str, &str)]) -> Markup {
        html! {
            rect.lane x=(Num(X0)) y=(Num(y)) width=(Num(X1 - X0)) height=(Num(h)) {}
            text.lane-title x="8" y=(Num(y + 14.0)) { (title) }
            @for (i, (shape_kind, class, label)) in sub.iter().enumerate() {
                @let ly = y + 30.0 + 14.0 * i as f64;
                g class={ "legend " (class) } {
                    (shape(shape_kind, 14.0, ly - 4.0, 4.0))
                    text.legend-lbl x="24" y=(Num(ly)) { (label) }
                }
            }
        }
    }

    fn empty(&self, y: f64, h: f64, text: &str) -> Markup {
        html! { text.empty x=(Num(X0 + 12.0)) y=(Num(y + h / 2.0 + 4.0)) { (text) } }
    }

    fn gc_lane(&self, y: f64) -> (Markup, f64) {
        let h = 110.0;
        let series = &self.a.glucocorticoid.series;
        // The series restricted to the window: the value in force at its start, then changes.
        let mut pts: Vec<(NaiveDate, f64)> = Vec::new();
        if let Some((_, v)) = series.iter().rev().find(|(d, _)| *d < self.s.start) {
            pts.push((self.s.start, *v));
        }
        pts.extend(
            series
                .iter()
                .filter(|(d, _)| *d >= self.s.start && *d <= self.s.end)
                .copied(),
        );
        let max = pts.iter().map(|(_, v)| *v).fold(0.0_f64, f64::max);
        let top = ((max * 1.15).clamp(10.0, 60.0) / 5.0).ceil() * 5.0;
        let ys = GcScale {
            top,
            bottom_px: y + h - 6.0,
            top_px: y + 8.0,
        };
        let mut path = String::new();
        let mut area = String::new();
        let end = self
            .a
            .as_of
            .max(pts.last().map(|(d, _)| *d).unwrap_or(self.a.as_of))
            .min(self.s.end);
        for (i, (d, v)) in pts.iter().enumerate() {
            let x = self.s.x_clamped(*d);
            let yy = ys.y(*v);
            if i == 0 {
                path.push_str(&format!("M{},{}", fmt_num(x), fmt_num(yy)));
                area.push_str(&format!(
                    "M{},{} L{},{}",
                    fmt_num(x),
                    fmt_num(ys.y(0.0)),
                    fmt_num(x),
                    fmt_num(yy)
                ));
            } else {
                path.push_str(&format!(" H{} V{}", fmt_num(x), fmt_num(yy)));
                area.push_str(&format!(" H{} V{}", fmt_num(x), fmt_num(yy)));
            }
        }
        if !pts.is_empty() {
            let xe = self.s.x_clamped(end);
            path.push_str(&format!(" H{}", fmt_num(xe)));
            area.push_str(&format!(" H{} V{} Z", fmt_num(xe), fmt_num(ys.y(0.0))));
        }
        let clipped: Vec<(NaiveDate, f64)> = pts
            .iter()
            .filter(|(d, v)| *v > top && self.s.contains(*d))
            .copied()
            .collect();
        let m = html! {
            g.lane-gc {
                (self.frame(y, h, "Glucocorticoid", &[]))
                text.legend-lbl x="8" y=(Num(y + 30.0)) { "prednisone-eq mg/day" }
                @if top > 10.0 {
                    text.legend-lbl x="8" y=(Num(y + 44.0)) { "(compressed > 10)" }
                    line.scale-break x1=(Num(X0)) x2=(Num(X1)) y1=(Num(ys.y(10.0))) y2=(Num(ys.y(10.0))) {}
                    text.ytick x=(Num(X0 - 4.0)) y=(Num(ys.y(10.0) + 4.0)) text-anchor="end" { "10" }
                }
                text.ytick x=(Num(X0 - 4.0)) y=(Num(ys.y(0.0) + 4.0)) text-anchor="end" { "0" }
                text.ytick x=(Num(X0 - 4.0)) y=(Num(ys.y(top) + 4.0)) text-anchor="end" { (fmt_num(top)) }
                @for (i, t) in self.a.display_thresholds.gc_dose_lines_mg_per_day.iter().copied().enumerate() {
                    line class={ "thr thr-gc-" (fmt_num(t * 10.0)) " thr-" (i + 1) } x1=(Num(X0)) x2=(Num(X1)) y1=(Num(ys.y(t))) y2=(Num(ys.y(t))) {}
                    text.thr-lbl x=(Num(X0 - 4.0)) y=(Num(ys.y(t) + 4.0)) text-anchor="end" { (fmt_num(t)) }
                }
                @if series.is_empty() {
                    (self.empty(y, h, "no glucocorticoid recorded"))
                } @else if pts.is_empty() {
                    (self.empty(y, h, "none in this period"))
                } @else {
                    g clip-path=(self.clip()) {
                        path.gc-area d=(area) {}
                        path.gc-line d=(path) data-gc-series=[self.hook(series.len())] {}
                        @for (d, v) in &clipped {
                            text.lbl x=(Num(self.s.x(*d) + 3.0)) y=(Num(y + 18.0)) { "↑" (fmt_num(*v)) }
                        }
                    }
                }
            }
        };
        (m, h)
    }

    fn antiresorptive_lane(&self, y: f64) -> (Markup, f64) {
        let doses = doses(self.a);
        let gaps = denosumab_gaps(self.a, &doses);
        let labels: Vec<Label> = gaps
            .iter()
            .filter(|g| !g.within_grace() && g.to >= self.s.start && g.from <= self.s.end)
            .map(|g| Label {
                x: self.s.x_clamped(g.from),
                text: g.label(),
                class: "gap-lbl",
            })
            .collect();
        let (placed, rows) = place_labels(&labels);
        let label_h = 14.0 * rows.max(1) as f64;
        let row_dm = y + label_h + 16.0;
        let row_other = row_dm + 26.0;
        let h = row_other - y + 16.0;
        let has_other = doses.iter().any(|d| !is_denosumab(&d.agent));
        let r = if doses.len() > 60 { 3.5 } else { 5.5 };
        let mut legend: Vec<(&str, &str, &str)> = vec![("circle", "ag-dmab", "denosumab")];
        if has_other {
            legend.push(("diamond", "ag-zol", "zoledronate"));
        }
        if doses.iter().any(|d| agent_style(&d.agent).1 == "ag-iban") {
            legend.push(("square", "ag-iban", "ibandronate"));
        }
        if gaps.iter().any(|g| !g.within_grace()) {
            legend.push(("square", "gap-leg", "overdue gap"));
        }
        let m = html! {
            g.lane-ar {
                (self.frame(y, h, "Antiresorptive", &legend))
                @if doses.is_empty() {
                    (self.empty(y, h, "no antiresorptive dose recorded"))
                }
                g clip-path=(self.clip()) {
                    @for g in &gaps {
                        @let x0 = self.s.x_clamped(g.from);
                        @let x1 = self.s.x_clamped(g.to);
                        rect.gap.grace[g.within_grace()] x=(Num(x0)) y=(Num(y + 1.0)) width=(Num((x1 - x0).max(1.0))) height=(Num(h - 2.0))
                            fill=(if g.within_grace() { "#fbe3e0".to_string() } else { format!("url(#{}-hatch)", self.id) })
                            data-gap=[self.hook("denosumab")] data-from=[self.hook(g.from)] data-to=[self.hook(g.to)] data-days=[self.hook(g.days())] data-open=[self.hook(g.open)] {
                            title {
                                @if g.within_grace() { "next denosumab dose " (g.days()) " days after due (within the " (g.grace_days) "-day grace)" }
                                @else { (g.label()) }
                                ", " (g.from) " to " (g.to)
                            }
                        }
                    }
                    @for d in &doses {
                        @let (_, class) = agent_style(&d.agent);
                        @let row = if is_denosumab(&d.agent) { row_dm } else { row_other };
                        @let xs = self.s.x_clamped(d.date);
                        @let xe = self.s.x_clamped(add_days(d.date, d.covers_days.max(0)));
                        rect class={ "cover " (class) } x=(Num(xs)) y=(Num(row - 7.0)) width=(Num((xe - xs).max(0.0))) height="14" {}
                    }
                }
                @for d in &doses {
                    @let (kind, class) = agent_style(&d.agent);
                    @let row = if is_denosumab(&d.agent) { row_dm } else { row_other };
                    @if self.s.contains(d.date) {
                        g class={ "injection " (class) } data-injection=[self.hook(&d.agent)] data-date=[self.hook(d.date)] data-ref=[self.hook(d.reference.as_str())] {
                            title { (d.agent) " " (d.date) " (covers " (d.covers_days) " days) " (d.reference.as_str()) }
                            (shape(kind, self.s.x(d.date), row, r))
                        }
                    }
                }
                @for (l, p) in labels.iter().zip(&placed) {
                    @if let Some((row, tx, end)) = p {
                        text class={ "lbl " (l.class) } x=(Num(*tx)) y=(Num(y + 13.0 + 14.0 * *row as f64))
                            text-anchor=(if *end { "end" } else { "start" }) { (l.text) }
                    }
                }
            }
        };
        (m, h)
    }

    fn tscore_lane(&self, y: f64) -> (Markup, f64) {
        let h = 130.0;
        let pts = &self.a.bone_density.t_scores;
        let min = pts.iter().map(|p| p.value).fold(f64::INFINITY, f64::min);
        let max = pts
            .iter()
            .map(|p| p.value)
            .fold(f64::NEG_INFINITY, f64::max);
        let lo = if min.is_finite() {
            (min - 0.5).min(-4.5).floor()
        } else {
            -5.0
        };
        let hi = if max.is_finite() {
            (max + 0.5).max(0.0).ceil()
        } else {
            0.0
        };
        let ys = LinearScale::new(lo, hi, y + h - 8.0, y + 8.0);
        let mut sites: Vec<DxaSite> = pts.iter().map(|p| p.site).collect();
        sites.sort();
        sites.dedup();
        let legend: Vec<(&str, &str, &str)> = sites
            .iter()
            .map(|s| (site_shape(*s), site_class(*s), s.label()))
            .collect();
        let shown: Vec<&osteoguard_core::assessment::TScorePoint> =
            pts.iter().filter(|p| self.s.contains(p.date)).collect();
        let visible = shown.len();
        // Spine values above their marker, the other sites below.
        let value_y = |p: &osteoguard_core::assessment::TScorePoint, yy: f64| {
            if p.site == DxaSite::LumbarSpine {
                yy - 6.0
            } else {
                yy + 14.0
            }
        };
        let marker_r = if visible > 60 { 2.5 } else { 5.0 };
        let keep = keep_value_labels(
            &shown
                .iter()
                .map(|p| {
                    let x = self.s.x(p.date) + dodge(pts, p, &self.s, marker_r);
                    (x + 7.0, value_y(p, ys.y(p.value)), fmt_num(p.value))
                })
                .collect::<Vec<_>>(),
        );
        let show_values = visible <= 16;
        let r = if visible > 60 { 2.5 } else { 5.0 };
        let m = html! {
            g.lane-tscore {
                (self.frame(y, h, "DXA T-score", &legend))
                text.ytick x=(Num(X0 - 4.0)) y=(Num(ys.y(hi) + 4.0)) text-anchor="end" { (fmt_num(hi)) }
                text.ytick x=(Num(X0 - 4.0)) y=(Num(ys.y(lo) + 4.0)) text-anchor="end" { (fmt_num(lo)) }
                @for (i, t) in self.a.display_thresholds.t_score_lines.iter().copied().enumerate() {
                    line class={ "thr thr-t" (fmt_num(-t * 10.0)) " thr-" (i + 1) } x1=(Num(X0)) x2=(Num(X1)) y1=(Num(ys.y(t))) y2=(Num(ys.y(t))) {}
                    text.thr-lbl x=(Num(X0 - 4.0)) y=(Num(ys.y(t) + 4.0)) text-anchor="end" { (fmt_num(t)) }
                }
                @if pts.is_empty() {
                    (self.empty(y, h, "no DXA T-score recorded"))
                } @else if visible == 0 {
                    (self.empty(y, h, "none in this period"))
                }
                g clip-path=(self.clip()) {
                    @for s in &sites {
                        @let line: Vec<String> = pts.iter().filter(|p| p.site == *s)
                            .map(|p| format!("{},{}", fmt_num(self.s.x(p.date)), fmt_num(ys.y(p.value)))).collect();
                        polyline class={ "tline " (site_class(*s)) } points=(line.join(" ")) {}
                    }
                }
                @for (p, keep) in shown.iter().zip(&keep) {
                    @let x = self.s.x(p.date) + dodge(pts, p, &self.s, r);
                    @let yy = ys.y(p.value);
                    g class={ "tscore " (site_class(p.site)) } data-tscore=[self.hook(fmt_num(p.value))] data-site=[self.hook(p.site.label())] data-date=[self.hook(p.date)] {
                        title { (p.site.label()) " T-score " (p.value) " on " (p.date) " " (p.reference) }
                        (shape(site_shape(p.site), x, yy, r))
                        @if show_values && *keep {
                            text.lbl.val x=(Num(x + 7.0)) y=(Num(value_y(p, yy))) { (fmt_num(p.value)) }
                        }
                    }
                }
            }
        };
        (m, h)
    }

    fn events_lane(&self, y: f64) -> (Markup, f64) {
        struct Ev<'b> {
            date: NaiveDate,
            label: String,
            class: &'static str,
            kind: &'static str,
            reference: &'b str,
            labelled: bool,
            site: String,
            /// Label parts: `L2` + `fracture`; same-day events of one kind share a label.
            prefix: String,
            word: &'static str,
        }
        let mut evs: Vec<Ev> = Vec::new();
        for f in &self.a.timeline.fractures {
            if let Some(d) = f.onset {
                evs.push(Ev {
                    date: d,
                    label: format!("{} fracture", f.site),
                    class: "ev-fracture",
                    kind: "fracture",
                    reference: &f.reference,
                    labelled: true,
                    site: f.site.clone(),
                    prefix: f.site.clone(),
                    word: "fracture",
                });
            }
        }
        for p in &self.a.timeline.procedures {
            let word = procedure_word(p.kind);
            let label = if p.levels.is_empty() {
                word.to_string()
            } else {
                format!("{} {}", p.levels.join(", "), word)
            };
            let aug = p.kind.is_augmentation();
            evs.push(Ev {
                date: p.date,
                label,
                class: if aug { "ev-augment" } else { "ev-imaging" },
                kind: "procedure",
                reference: &p.reference,
                labelled: aug || self.detail,
                site: p.levels.join(","),
                prefix: p.levels.join(", "),
                word,
            });
        }
        evs.sort_by(|a, b| (a.date, a.kind, &a.label).cmp(&(b.date, b.kind, &b.label)));
        let any_dated = !evs.is_empty();
        evs.retain(|e| self.s.contains(e.date));
        let mut labels: Vec<Label> = Vec::new();
        let mut last: Option<(NaiveDate, &str, Vec<String>)> = None;
        let flush = |labels: &mut Vec<Label>, l: Option<(NaiveDate, &str, Vec<String>)>| {
            if let Some((date, word, prefixes)) = l {
                let prefix = prefixes
                    .into_iter()
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>();
                let text = if prefix.is_empty() {
                    word.to_string()
                } else {
                    format!("{} {word}", prefix.join(", "))
                };
                let class = match word {
                    "fracture" => "ev-fracture",
                    "vertebroplasty" | "kyphoplasty" => "ev-augment",
                    _ => "ev-imaging",
                };
                labels.push(Label {
                    x: self.s.x(date),
                    text,
                    class,
                });
            }
        };
        for e in evs.iter().filter(|e| e.labelled) {
            match &mut last {
                Some((d, w, prefixes)) if *d == e.date && *w == e.word => {
                    if !prefixes.contains(&e.prefix) {
                        prefixes.push(e.prefix.clone());
                    }
                }
                _ => {
                    flush(&mut labels, last.take());
                    last = Some((e.date, e.word, vec![e.prefix.clone()]));
                }
            }
        }
        flush(&mut labels, last.take());
        let (placed, rows) = place_labels(&labels);
        let mark_y = y + 14.0;
        let first_row = y + 38.0;
        let row_h = 15.0;
        let h = (first_row - y) + row_h * rows.max(1) as f64;
        let hidden = placed.iter().filter(|p| p.is_none()).count();
        let legend: [(&str, &str, &str); 3] = [
            ("triangle", "ev-fracture", "fracture"),
            ("square", "ev-augment", "augmentation"),
            ("circle", "ev-imaging", "imaging"),
        ];
        let m = html! {
            g.lane-events {
                (self.frame(y, h, "Fractures & procedures", &legend))
                @if !any_dated {
                    (self.empty(y, h, "no dated fracture or procedure"))
                } @else if evs.is_empty() {
                    (self.empty(y, h, "none in this period"))
                }
                @for (l, p) in labels.iter().zip(&placed) {
                    @if let Some((row, tx, end)) = p {
                        @let ly = first_row + row_h * *row as f64;
                        line.leader x1=(Num(l.x)) x2=(Num(l.x)) y1=(Num(mark_y + 6.0)) y2=(Num(ly - 3.0)) {}
                        text class={ "lbl " (l.class) } x=(Num(*tx)) y=(Num(ly)) text-anchor=(if *end { "end" } else { "start" }) { (l.text) }
                    }
                }
                @for e in &evs {
                    @let x = self.s.x(e.date);
                    @if e.kind == "fracture" {
                        g class={ "event " (e.class) } data-fracture=[self.hook(&e.site)] data-date=[self.hook(e.date)] data-ref=[self.hook(e.reference)] {
                            title { (e.label) " " (e.date) " " (e.reference) }
                            (shape("triangle", x, mark_y, 6.5))
                        }
                    } @else {
                        g class={ "event " (e.class) } data-procedure=[self.hook(&e.label)] data-date=[self.hook(e.date)] data-ref=[self.hook(e.reference)] {
                            title { (e.label) " " (e.date) " " (e.reference) }
                            @if e.class == "ev-augment" {
                                (shape("square", x, mark_y, 5.0))
                            } @else {
                                (shape("circle", x, mark_y, 3.0))
                            }
                        }
                    }
                }
                @if hidden > 0 {
                    text.legend-lbl x="8" y=(Num(y + h - 4.0)) { "+" (hidden) " labels hidden" }
                }
            }
        };
        (m, h)
    }

    fn pain_lane(&self, y: f64) -> (Markup, f64) {
        let h = 74.0;
        let pts: Vec<_> = self
            .a
            .timeline
            .pain
            .iter()
            .filter(|p| self.s.contains(p.date))
            .collect();
        let ys = LinearScale::new(0.0, 10.0, y + h - 8.0, y + 10.0);
        let line: Vec<String> = self
            .a
            .timeline
            .pain
            .iter()
            .map(|p| format!("{},{}", fmt_num(self.s.x(p.date)), fmt_num(ys.y(p.value))))
            .collect();
        let show_values = pts.len() <= 20;
        let r = if pts.len() > 60 { 2.0 } else { 4.0 };
        let high = self.a.display_thresholds.pain_high_min;
        // A value label never crosses the as-of line: it goes to the left of its point then.
        let ax = self.s.x(self.a.as_of);
        let label_x = |p: &&osteoguard_core::assessment::TimelinePain| {
            let x = self.s.x(p.date);
            let w = text_width(&fmt_num(p.value), LABEL_PX);
            if x + 5.0 <= ax + 2.0 && x + 5.0 + w >= ax - 2.0 {
                x - 5.0 - w
            } else {
                x + 5.0
            }
        };
        let keep = keep_value_labels(
            &pts.iter()
                .map(|p| (label_x(p), ys.y(p.value) - 5.0, fmt_num(p.value)))
                .collect::<Vec<_>>(),
        );
        let hi_label = format!("pain ≥ {}", fmt_num(high));
        let lo_label = format!("pain < {}", fmt_num(high));
        let pain_legend: [(&str, &str, &str); 2] = [
            ("circle", "pain-hi", hi_label.as_str()),
            ("circle", "pain-lo", lo_label.as_str()),
        ];
        let m = html! {
            g.lane-pain {
                (self.frame(y, h, "Pain (0–10)", &pain_legend))
                text.ytick x=(Num(X0 - 4.0)) y=(Num(ys.y(10.0) + 4.0)) text-anchor="end" { "10" }
                text.ytick x=(Num(X0 - 4.0)) y=(Num(ys.y(0.0) + 4.0)) text-anchor="end" { "0" }
                @if self.a.timeline.pain.is_empty() {
                    (self.empty(y, h, "no pain score recorded"))
                } @else if pts.is_empty() {
                    (self.empty(y, h, "none in this period"))
                }
                g clip-path=(self.clip()) {
                    polyline.pain-line points=(line.join(" ")) {}
                }
                @for (p, keep) in pts.iter().zip(&keep) {
                    @let x = self.s.x(p.date);
                    @let yy = ys.y(p.value);
                    g class={ "pain " @if p.value >= high { "pain-hi" } @else { "pain-lo" } } data-pain=[self.hook(fmt_num(p.value))] data-date=[self.hook(p.date)] {
                        title { "pain " (p.value) "/10 on " (p.date) " " (p.reference.as_str()) }
                        circle cx=(Num(x)) cy=(Num(yy)) r=(Num(r)) {}
                        @if show_values && *keep {
                            text.lbl.val x=(Num(label_x(p))) y=(Num(yy - 5.0)) { (fmt_num(p.value)) }
                        }
                    }
                }
            }
        };
        (m, h)
    }
}
