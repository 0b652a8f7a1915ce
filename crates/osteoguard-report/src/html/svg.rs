//! The small typed SVG layer under the charts: numbers that can never print as `NaN`, and the
//! date and value scales.
//!
//! Markup itself is written with maud (so every record string is escaped); this module only
//! owns geometry. Why not plotters' SVG backend: the report needs stable `data-*` attributes,
//! `<title>` tooltips and CSS classes on individual marks (the browser test and print styles
//! address them), which plotters' anonymous drawing primitives do not carry.

use chrono::{Datelike, NaiveDate};
use maud::{Markup, PreEscaped, Render};

/// A coordinate or length in SVG user units. Renders with at most one decimal; a non-finite
/// value (which a scale never produces, but belt and braces) renders as `0`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Num(pub f64);

impl Render for Num {
    fn render(&self) -> Markup {
        PreEscaped(fmt_num(self.0))
    }
}

/// Formats a number for SVG: finite, one decimal at most, no `-0`.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let r = (v * 10.0).round() / 10.0;
    if r == 0.0 {
        return "0".into();
    }
    if r.fract() == 0.0 {
        format!("{}", r as i64)
    } else {
        format!("{r:.1}")
    }
}

/// Linear map from a date interval onto `[x0, x1]`. A zero-length (or inverted) interval is
/// widened so that the map is always defined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale {
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub x0: f64,
    pub x1: f64,
}

impl TimeScale {
    /// `start..end` padded by 2 % of the span on each side (at least 3 days); a span shorter
    /// than `min_days` is widened symmetrically to `min_days`.
    pub fn new(start: NaiveDate, end: NaiveDate, x0: f64, x1: f64, min_days: i64) -> Self {
        let (mut s, mut e) = if end < start {
            (end, start)
        } else {
            (start, end)
        };
        let span = (e - s).num_days();
        if span < min_days {
            let widen = min_days - span;
            s = add_days(s, -(widen / 2));
            e = add_days(e, widen - widen / 2);
        }
        let pad = ((e - s).num_days() / 50).max(3);
        TimeScale {
            start: add_days(s, -pad),
            end: add_days(e, pad),
            x0,
            x1,
        }
    }

    pub fn span_days(&self) -> i64 {
        (self.end - self.start).num_days().max(1)
    }

    /// Pixels per day.
    pub fn px_per_day(&self) -> f64 {
        (self.x1 - self.x0) / self.span_days() as f64
    }

    pub fn x(&self, d: NaiveDate) -> f64 {
        let days = (d - self.start).num_days() as f64;
        self.x0 + days * self.px_per_day()
    }

    /// `x` clamped to the plot area.
    pub fn x_clamped(&self, d: NaiveDate) -> f64 {
        self.x(d).clamp(self.x0, self.x1)
    }

    pub fn contains(&self, d: NaiveDate) -> bool {
        d >= self.start && d <= self.end
    }

    /// Axis ticks `(date, label, major)`: weeks, months, years or multi-year steps depending on
    /// the span, thinned so that labels never sit closer than ~60 px.
    pub fn ticks(&self) -> Vec<(NaiveDate, String)> {
        let span = self.span_days();
        let mut out: Vec<(NaiveDate, String)> = Vec::new();
        if span <= 75 {
            let mut d = self.start;
            // First Monday on or after start.
            while d.weekday().num_days_from_monday() != 0 {
                d = add_days(d, 1);
            }
            while d <= self.end {
                out.push((d, d.format("%-d %b").to_string()));
                d = add_days(d, 7);
            }
        } else if span <= 800 {
            let mut y = self.start.year();
            let mut m = self.start.month();
            while let Some(d) = NaiveDate::from_ymd_opt(y, m, 1) {
                if d > self.end {
                    break;
                }
                if d >= self.start {
                    let label = if m == 1 || out.is_empty() {
                        d.format("%b %Y").to_string()
                    } else {
                        d.format("%b").to_string()
                    };
                    out.push((d, label));
                }
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        } else {
            let step = match span {
                0..=5000 => 1,
                5001..=9000 => 2,
                _ => 5,
            };
            let mut y = self.start.year();
            while y <= self.end.year() {
                if y % step == 0 {
                    if let Some(d) = NaiveDate::from_ymd_opt(y, 1, 1) {
                        if d >= self.start && d <= self.end {
                            out.push((d, y.to_string()));
                        }
                    }
                }
                y += 1;
            }
        }
        // Thin: keep every k-th so that labels are ≥ 60 px apart.
        let px = self.px_per_day();
        if out.len() > 1 {
            let gap_days = (out[1].0 - out[0].0).num_days().max(1) as f64;
            let k = (60.0 / (gap_days * px)).ceil().max(1.0) as usize;
            if k > 1 {
                out = out.into_iter().step_by(k).collect();
            }
        }
        out
    }
}

/// Linear map from a value interval onto pixel rows `[y_bottom, y_top]` (SVG y grows down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearScale {
    pub lo: f64,
    pub hi: f64,
    pub y_bottom: f64,
    pub y_top: f64,
}

impl LinearScale {
    pub fn new(lo: f64, hi: f64, y_bottom: f64, y_top: f64) -> Self {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        LinearScale {
            lo,
            hi,
            y_bottom,
            y_top,
        }
    }
    pub fn y(&self, v: f64) -> f64 {
        let v = if v.is_finite() { v } else { self.lo };
        let t = ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0);
        self.y_bottom + t * (self.y_top - self.y_bottom)
    }
}

pub fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    d.checked_add_signed(chrono::Duration::days(n)).unwrap_or(d)
}

/// Rough width of `text` in px at `font_px` (bold sans-serif averages under ~0.6 em per glyph).
pub fn text_width(text: &str, font_px: f64) -> f64 {
    text.chars().count() as f64 * font_px * 0.6
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn zero_length_span_is_widened() {
        let s = TimeScale::new(d("2023-09-28"), d("2023-09-28"), 0.0, 1000.0, 30);
        assert!(s.span_days() >= 30);
        let x = s.x(d("2023-09-28"));
        assert!(x.is_finite() && x > 0.0 && x < 1000.0);
        assert!(!s.ticks().is_empty());
    }

    #[test]
    fn inverted_span_is_ordered() {
        let s = TimeScale::new(d("2024-01-01"), d("2020-01-01"), 0.0, 1000.0, 30);
        assert!(s.start < s.end);
    }

    #[test]
    fn thirty_years_gives_few_ticks() {
        let s = TimeScale::new(d("1993-01-01"), d("2023-09-28"), 0.0, 1000.0, 30);
        let t = s.ticks();
        assert!(t.len() >= 4 && t.len() <= 17, "{t:?}");
    }

    #[test]
    fn numbers_never_print_nan() {
        assert_eq!(fmt_num(f64::NAN), "0");
        assert_eq!(fmt_num(f64::INFINITY), "0");
        assert_eq!(fmt_num(-0.01), "0");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(12.0), "12");
        let l = LinearScale::new(f64::NAN, 3.0, 100.0, 0.0);
        assert!(l.y(f64::NAN).is_finite());
    }
}
