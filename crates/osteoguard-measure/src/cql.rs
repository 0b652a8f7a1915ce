//! The slice of CQL's type system the two measures use, with CQL's semantics
//! (CQL 1.5 specification, "Types" and "Operators"):
//!
//! * [`DateTime`] keeps the precision it was written with. Comparing two values compares
//!   component by component down to the coarser precision; if they are equal there and the
//!   precisions differ, the result is unknown (`None`), never a guess. Seconds and
//!   milliseconds count as one precision ("combined as a single precision using a decimal").
//!   Values are compared in UTC; [`DateTime::date`] (`date from`) uses the value's own offset.
//! * [`Interval`] has closed or open boundaries. A *closed* null boundary is the minimum or
//!   maximum value of the point type (an ongoing condition, an observation period with only a
//!   start); an *open* null boundary is unknown.
//! * Three-valued logic: `Option<bool>`, with [`and`] / [`or`] as CQL defines them; a `where`
//!   clause keeps a row only when its condition is `Some(true)` ([`is_true`]).

use std::cmp::Ordering;

use chrono::{
    Datelike, Duration, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, Timelike,
};

/// Precision of a [`DateTime`]; `Second` covers seconds and milliseconds (CQL compares them as
/// one decimal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

/// A CQL DateTime (or Date, when `precision <= Day`): an instant in UTC, the offset it was
/// written with, and its precision. Unspecified components are stored as their minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    utc: NaiveDateTime,
    offset_seconds: i32,
    precision: Precision,
}

impl DateTime {
    /// The minimum DateTime (a closed null low boundary).
    pub fn min_value() -> Self {
        Self::from_date(NaiveDate::MIN).with_precision(Precision::Second)
    }

    /// The maximum DateTime (a closed null high boundary).
    pub fn max_value() -> Self {
        Self {
            utc: NaiveDate::MAX.and_time(NaiveTime::MIN) + Duration::milliseconds(86_399_999),
            offset_seconds: 0,
            precision: Precision::Second,
        }
    }

    /// A Date (day precision, no offset).
    pub fn from_date(d: NaiveDate) -> Self {
        Self {
            utc: d.and_time(NaiveTime::MIN),
            offset_seconds: 0,
            precision: Precision::Day,
        }
    }

    /// A millisecond-precision UTC DateTime.
    pub fn from_utc(utc: NaiveDateTime) -> Self {
        Self {
            utc,
            offset_seconds: 0,
            precision: Precision::Second,
        }
    }

    fn with_precision(mut self, p: Precision) -> Self {
        self.precision = p;
        self
    }

    /// Parses a FHIR `date`, `dateTime` or `instant` (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
    /// `YYYY-MM-DDThh:mm(:ss(.fff))(Z|±hh:mm)`). A time without an offset is read as UTC.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        let (date_part, time_part) = match s.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s, None),
        };
        let mut it = date_part.split('-');
        let year: i32 = it.next()?.parse().ok()?;
        let month: Option<u32> = it.next().map(str::parse).transpose().ok()?;
        let day: Option<u32> = it.next().map(str::parse).transpose().ok()?;
        if it.next().is_some() {
            return None;
        }
        let date = NaiveDate::from_ymd_opt(year, month.unwrap_or(1), day.unwrap_or(1))?;
        let Some(t) = time_part else {
            let precision = match (month, day) {
                (None, _) => Precision::Year,
                (Some(_), None) => Precision::Month,
                (Some(_), Some(_)) => Precision::Day,
            };
            return Some(Self {
                utc: date.and_time(NaiveTime::MIN),
                offset_seconds: 0,
                precision,
            });
        };
        day?;
        let (clock, offset) = split_offset(t)?;
        let mut parts = clock.split(':');
        let hour: u32 = parts.next()?.parse().ok()?;
        let minute: Option<u32> = parts.next().map(str::parse).transpose().ok()?;
        let sec_text = parts.next();
        let (second, milli) = match sec_text {
            None => (None, 0),
            Some(sec) => {
                let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
                let whole: u32 = whole.parse().ok()?;
                let mut ms = 0u32;
                for (i, c) in frac.chars().take(3).enumerate() {
                    let d = c.to_digit(10)?;
                    ms += d * 10u32.pow(2 - i as u32);
                }
                (Some(whole), ms)
            }
        };
        let precision = match (minute, second) {
            (None, _) => Precision::Hour,
            (Some(_), None) => Precision::Minute,
            (Some(_), Some(_)) => Precision::Second,
        };
        let time =
            NaiveTime::from_hms_milli_opt(hour, minute.unwrap_or(0), second.unwrap_or(0), milli)?;
        let local = date.and_time(time);
        Some(Self {
            utc: local - Duration::seconds(i64::from(offset)),
            offset_seconds: offset,
            precision,
        })
    }

    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// `date from X`: the calendar date in the value's own offset.
    pub fn date(&self) -> NaiveDate {
        self.local().date()
    }

    fn local(&self) -> NaiveDateTime {
        self.utc + Duration::seconds(i64::from(self.offset_seconds))
    }

    /// The value written back as FHIR text (in UTC, at its precision).
    pub fn to_fhir(&self) -> String {
        let l = self.local();
        match self.precision {
            Precision::Year => format!("{:04}", l.year()),
            Precision::Month => format!("{:04}-{:02}", l.year(), l.month()),
            Precision::Day => l.format("%Y-%m-%d").to_string(),
            _ => {
                let off = FixedOffset::east_opt(self.offset_seconds)
                    .map(|o| o.to_string())
                    .unwrap_or_else(|| "+00:00".into());
                format!("{}{}", l.format("%Y-%m-%dT%H:%M:%S%.3f"), off)
            }
        }
    }

    /// The comparison key at a precision (UTC components down to `p`).
    fn key(&self, p: Precision) -> (i32, u32, u32, u32, u32, i64) {
        let u = self.utc;
        let mut k = (u.year(), 0, 0, 0, 0, 0);
        if p >= Precision::Month {
            k.1 = u.month();
        }
        if p >= Precision::Day {
            k.2 = u.day();
        }
        if p >= Precision::Hour {
            k.3 = u.hour();
        }
        if p >= Precision::Minute {
            k.4 = u.minute();
        }
        if p >= Precision::Second {
            k.5 = i64::from(u.second()) * 1000 + i64::from(u.and_utc().timestamp_subsec_millis());
        }
        k
    }

    /// CQL comparison, optionally "at precision": `None` when the values are equal at the
    /// coarser precision but differ in precision (and `at` does not stop above that).
    pub fn compare(&self, other: &Self, at: Option<Precision>) -> Option<Ordering> {
        let limit = at.unwrap_or(Precision::Second);
        let common = self.precision.min(other.precision).min(limit);
        match self.key(common).cmp(&other.key(common)) {
            Ordering::Equal => {
                let a = self.precision.min(limit);
                let b = other.precision.min(limit);
                (a == b).then_some(Ordering::Equal)
            }
            o => Some(o),
        }
    }

    pub fn lt(&self, o: &Self, at: Option<Precision>) -> Option<bool> {
        self.compare(o, at).map(|c| c == Ordering::Less)
    }

    pub fn le(&self, o: &Self, at: Option<Precision>) -> Option<bool> {
        self.compare(o, at).map(|c| c != Ordering::Greater)
    }

    /// `X + n months` (also years as 12 months): the day is clamped to the month's end, as
    /// CQL's date arithmetic specifies.
    pub fn add_months(&self, n: i32) -> Option<Self> {
        let l = self.local();
        let moved = if n >= 0 {
            l.checked_add_months(Months::new(n.unsigned_abs()))?
        } else {
            l.checked_sub_months(Months::new(n.unsigned_abs()))?
        };
        Some(Self {
            utc: moved - Duration::seconds(i64::from(self.offset_seconds)),
            ..*self
        })
    }

    /// `X + n days`.
    pub fn add_days(&self, n: i64) -> Option<Self> {
        Some(Self {
            utc: self.utc.checked_add_signed(Duration::try_days(n)?)?,
            ..*self
        })
    }

    /// The successor at millisecond precision (for open boundaries).
    fn successor(&self) -> Self {
        Self {
            utc: self.utc + Duration::milliseconds(1),
            ..*self
        }
    }

    fn predecessor(&self) -> Self {
        Self {
            utc: self.utc - Duration::milliseconds(1),
            ..*self
        }
    }
}

/// Splits `hh:mm:ss.fffZ` / `...+05:00` into the clock text and the offset in seconds.
fn split_offset(t: &str) -> Option<(&str, i32)> {
    if let Some(clock) = t.strip_suffix('Z') {
        return Some((clock, 0));
    }
    if let Some(i) = t.rfind(['+', '-']) {
        let (clock, off) = t.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        let secs = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
        return Some((clock, sign * secs));
    }
    Some((t, 0))
}

/// A CQL `Interval<DateTime>` (or `Interval<Date>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interval {
    pub low: Option<DateTime>,
    pub high: Option<DateTime>,
    pub low_closed: bool,
    pub high_closed: bool,
}

impl Interval {
    /// `Interval[low, high]`.
    pub fn closed(low: Option<DateTime>, high: Option<DateTime>) -> Self {
        Self {
            low,
            high,
            low_closed: true,
            high_closed: true,
        }
    }

    /// `Interval[p, p]`.
    pub fn point(p: DateTime) -> Self {
        Self::closed(Some(p), Some(p))
    }

    /// `start of X`: the low value; a closed null low is the minimum value, an open null low
    /// is unknown.
    pub fn start(&self) -> Option<DateTime> {
        match (self.low, self.low_closed) {
            (Some(l), true) => Some(l),
            (Some(l), false) => Some(l.successor()),
            (None, true) => Some(DateTime::min_value()),
            (None, false) => None,
        }
    }

    /// `end of X`: the high value; a closed null high is the maximum value, an open null high
    /// is unknown.
    pub fn end(&self) -> Option<DateTime> {
        match (self.high, self.high_closed) {
            (Some(h), true) => Some(h),
            (Some(h), false) => Some(h.predecessor()),
            (None, true) => Some(DateTime::max_value()),
            (None, false) => None,
        }
    }

    /// `hasStart()` (QICoreCommon): a known, non-minimum start.
    pub fn has_start(&self) -> bool {
        self.low.is_some()
    }

    /// `earliest()` (QICoreCommon): the start if the interval has one, else its end.
    pub fn earliest(&self) -> Option<DateTime> {
        if self.has_start() {
            self.start()
        } else {
            self.end()
        }
    }
}

/// CQL `and` (three-valued).
pub fn and(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(false), _) | (_, Some(false)) => Some(false),
        (Some(true), Some(true)) => Some(true),
        _ => None,
    }
}

/// CQL `or` (three-valued).
pub fn or(a: Option<bool>, b: Option<bool>) -> Option<bool> {
    match (a, b) {
        (Some(true), _) | (_, Some(true)) => Some(true),
        (Some(false), Some(false)) => Some(false),
        _ => None,
    }
}

/// A `where` clause keeps a row only when its condition is true (not false, not null).
pub fn is_true(v: Option<bool>) -> bool {
    v == Some(true)
}

fn le(a: Option<DateTime>, b: Option<DateTime>, at: Option<Precision>) -> Option<bool> {
    a?.le(&b?, at)
}

fn lt(a: Option<DateTime>, b: Option<DateTime>, at: Option<Precision>) -> Option<bool> {
    a?.lt(&b?, at)
}

/// `point during [precision of] interval` (CQL `In`).
pub fn point_in(p: Option<DateTime>, iv: Option<&Interval>, at: Option<Precision>) -> Option<bool> {
    let iv = iv?;
    let p = p?;
    and(le(iv.start(), Some(p), at), le(Some(p), iv.end(), at))
}

/// `a during [precision of] b` for intervals (CQL `IncludedIn`).
pub fn included_in(
    a: Option<&Interval>,
    b: Option<&Interval>,
    at: Option<Precision>,
) -> Option<bool> {
    let (a, b) = (a?, b?);
    and(le(b.start(), a.start(), at), le(a.end(), b.end(), at))
}

/// `a overlaps [precision of] b`.
pub fn overlaps(a: Option<&Interval>, b: Option<&Interval>, at: Option<Precision>) -> Option<bool> {
    let (a, b) = (a?, b?);
    and(le(a.start(), b.end(), at), le(b.start(), a.end(), at))
}

/// `X before [precision of] Y` for two points.
pub fn before(a: Option<DateTime>, b: Option<DateTime>, at: Option<Precision>) -> Option<bool> {
    lt(a, b, at)
}

/// `X on or before [precision of] Y` (CQL `SameOrBefore`) for two points.
pub fn same_or_before(
    a: Option<DateTime>,
    b: Option<DateTime>,
    at: Option<Precision>,
) -> Option<bool> {
    le(a, b, at)
}

/// `X on or after [precision of] Y` (CQL `SameOrAfter`) for two points.
pub fn same_or_after(
    a: Option<DateTime>,
    b: Option<DateTime>,
    at: Option<Precision>,
) -> Option<bool> {
    le(b, a, at)
}

/// `Interval<Date>` intersection (`intersect`): null when the intervals do not overlap.
pub fn intersect_dates(a: &Interval, b: &Interval) -> Option<Interval> {
    let (a_lo, a_hi, b_lo, b_hi) = (a.start()?, a.end()?, b.start()?, b.end()?);
    let lo = if a_lo.lt(&b_lo, None)? { b_lo } else { a_lo };
    let hi = if a_hi.lt(&b_hi, None)? { a_hi } else { b_hi };
    lo.le(&hi, None)?
        .then_some(Interval::closed(Some(lo), Some(hi)))
}

/// CMD `cumulativeDuration`: `collapse Intervals per day`, then the sum of
/// `difference in days between start and end + 1` over the collapsed intervals.
/// Null intervals are dropped, as `collapse` drops them.
pub fn cumulative_duration_days(intervals: &[Interval]) -> i64 {
    let mut days: Vec<(NaiveDate, NaiveDate)> = intervals
        .iter()
        .filter_map(|iv| Some((iv.start()?.date(), iv.end()?.date())))
        .filter(|(s, e)| s <= e)
        .collect();
    days.sort();
    let mut total = 0;
    let mut current: Option<(NaiveDate, NaiveDate)> = None;
    for (s, e) in days {
        current = match current {
            // `per day`: intervals meeting on consecutive days collapse into one.
            Some((cs, ce)) if s <= ce.succ_opt().unwrap_or(ce) => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += (ce - cs).num_days() + 1;
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += (ce - cs).num_days() + 1;
    }
    total
}

/// `AgeInYearsAt(asOf)`: whole calendar years from the birth date to `as_of`.
pub fn age_in_years_at(birth: NaiveDate, as_of: NaiveDate) -> i32 {
    let mut years = as_of.year() - birth.year();
    if (as_of.month(), as_of.day()) < (birth.month(), birth.day()) {
        years -= 1;
    }
    years
}

/// A CQL System.Quantity: a decimal and a UCUM unit (`'1'` when the FHIR Quantity has none).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantity {
    pub value: f64,
    pub unit: String,
}

impl Quantity {
    /// CQL quantity comparison: only quantities with the same unit compare (this layer does no
    /// UCUM conversion); different units give null, as incomparable units do in CQL.
    pub fn compare(&self, other: &Quantity) -> Option<Ordering> {
        if self.unit != other.unit {
            return None;
        }
        self.value.partial_cmp(&other.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> DateTime {
        DateTime::parse(s).expect(s)
    }

    #[test]
    fn parses_every_fhir_precision_and_offsets() {
        assert_eq!(dt("2025").precision(), Precision::Year);
        assert_eq!(dt("2025-03").precision(), Precision::Month);
        assert_eq!(dt("2025-03-04").precision(), Precision::Day);
        assert_eq!(
            dt("2025-03-04T08:00:00+00:00").precision(),
            Precision::Second
        );
        // 23:30 at -05:00 is 04:30 UTC next day; `date from` keeps the written date.
        let x = dt("2025-03-04T23:30:00.000-05:00");
        assert_eq!(x.date(), NaiveDate::from_ymd_opt(2025, 3, 4).expect("date"));
        assert_eq!(
            x.compare(&dt("2025-03-05T04:30:00Z"), None),
            Some(Ordering::Equal)
        );
        assert!(DateTime::parse("2025-13-01").is_none());
        assert!(DateTime::parse("garbage").is_none());
    }

    #[test]
    fn differing_precision_equal_prefix_is_unknown() {
        let day = dt("2025-01-01");
        let ms = dt("2025-01-01T00:00:00.000Z");
        assert_eq!(day.compare(&ms, None), None);
        assert_eq!(day.lt(&ms, None), None);
        // ... but "at day precision" they are the same day.
        assert_eq!(
            day.compare(&ms, Some(Precision::Day)),
            Some(Ordering::Equal)
        );
        // A different day decides at the coarser precision.
        assert_eq!(dt("2024-12-31").lt(&ms, None), Some(true));
        // Seconds and milliseconds are one precision.
        assert_eq!(
            dt("2025-02-01T08:00:00+00:00").compare(&dt("2025-02-01T08:00:00.000Z"), None),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn null_boundaries_closed_is_min_max_open_is_unknown() {
        let start = dt("2025-05-01T10:00:00Z");
        let ongoing = Interval::closed(Some(start), None);
        assert_eq!(ongoing.end(), Some(DateTime::max_value()));
        let unknown_end = Interval {
            high_closed: false,
            ..ongoing
        };
        assert_eq!(unknown_end.end(), None);
        let mp = Interval::closed(
            Some(dt("2025-01-01T00:00:00.000Z")),
            Some(dt("2025-12-31T23:59:59.999Z")),
        );
        assert_eq!(included_in(Some(&ongoing), Some(&mp), None), Some(false));
        assert_eq!(overlaps(Some(&ongoing), Some(&mp), None), Some(true));
        assert_eq!(overlaps(Some(&unknown_end), Some(&mp), None), None);
        assert_eq!(
            Interval::closed(None, Some(start)).start(),
            Some(DateTime::min_value())
        );
    }

    #[test]
    fn during_day_of_includes_both_edge_days() {
        let mp = Interval::closed(
            Some(dt("2025-01-01T00:00:00.000Z")),
            Some(dt("2025-12-31T23:59:59.999Z")),
        );
        let day = Some(Precision::Day);
        assert_eq!(point_in(Some(dt("2025-01-01")), Some(&mp), day), Some(true));
        assert_eq!(
            point_in(Some(dt("2025-12-31T23:59:59.999Z")), Some(&mp), day),
            Some(true)
        );
        assert_eq!(
            point_in(Some(dt("2026-01-01T00:00:00.000Z")), Some(&mp), day),
            Some(false)
        );
        assert_eq!(
            point_in(Some(dt("2024-12-31T23:59:59.999Z")), Some(&mp), day),
            Some(false)
        );
        // Without a precision, a day-precision value on the first day is uncertain.
        assert_eq!(point_in(Some(dt("2025-01-01")), Some(&mp), None), None);
    }

    #[test]
    fn month_arithmetic_clamps_to_month_end() {
        assert_eq!(dt("2025-11-30").add_months(3), Some(dt("2026-02-28")));
        assert_eq!(dt("2024-02-29").add_months(-24), Some(dt("2022-02-28")));
        assert_eq!(
            dt("2025-01-01T00:00:00.000Z").add_months(-3),
            Some(dt("2024-10-01T00:00:00.000Z"))
        );
    }

    #[test]
    fn cumulative_duration_collapses_per_day() {
        let d = |a: &str, b: &str| Interval::closed(Some(dt(a)), Some(dt(b)));
        // Jan 2 .. Apr 1 2025 inclusive is 90 days.
        assert_eq!(
            cumulative_duration_days(&[d("2025-01-02", "2025-04-01")]),
            90
        );
        // Overlapping and adjacent days are counted once.
        assert_eq!(
            cumulative_duration_days(&[
                d("2025-01-01", "2025-01-10"),
                d("2025-01-05", "2025-01-12"),
                d("2025-01-13", "2025-01-13"),
                d("2025-02-01", "2025-02-01"),
            ]),
            14
        );
        assert_eq!(cumulative_duration_days(&[]), 0);
    }

    #[test]
    fn age_counts_whole_years_on_the_birthday() {
        let b = NaiveDate::from_ymd_opt(1975, 1, 1).expect("date");
        let at = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("date");
        assert_eq!(age_in_years_at(b, at(2025, 1, 1)), 50);
        assert_eq!(age_in_years_at(b, at(2024, 12, 31)), 49);
        let leap = at(1964, 2, 29);
        assert_eq!(age_in_years_at(leap, at(2025, 2, 28)), 60);
        assert_eq!(age_in_years_at(leap, at(2025, 3, 1)), 61);
    }

    #[test]
    fn three_valued_logic() {
        assert_eq!(and(None, Some(false)), Some(false));
        assert_eq!(and(None, Some(true)), None);
        assert_eq!(or(None, Some(true)), Some(true));
        assert_eq!(or(None, Some(false)), None);
        assert!(!is_true(None));
    }
}
