//! FHIR `date` / `dateTime` / `instant` parsing (see the crate docs for the rules).

use crate::json::Value;
use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use crate::util::Issues;

/// A FHIR date at its written precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartialDate {
    Day(NaiveDate),
    Month(i32, u32),
    Year(i32),
}

impl PartialDate {
    /// The first day the value can mean.
    pub fn first(self) -> Option<NaiveDate> {
        match self {
            PartialDate::Day(d) => Some(d),
            PartialDate::Month(y, m) => NaiveDate::from_ymd_opt(y, m, 1),
            PartialDate::Year(y) => NaiveDate::from_ymd_opt(y, 1, 1),
        }
    }
    /// The last day the value can mean.
    pub fn last(self) -> Option<NaiveDate> {
        match self {
            PartialDate::Day(d) => Some(d),
            PartialDate::Month(y, m) => {
                let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                NaiveDate::from_ymd_opt(ny, nm, 1).and_then(|d| d.pred_opt())
            }
            PartialDate::Year(y) => NaiveDate::from_ymd_opt(y, 12, 31),
        }
    }
    pub fn is_partial(self) -> bool {
        !matches!(self, PartialDate::Day(_))
    }
}

/// A parsed `dateTime`: the date as written (local to the writer, offset dropped) and the time of
/// day when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FhirDateTime {
    pub date: PartialDate,
    pub time: Option<NaiveTime>,
}

fn digits(s: &str, n: usize) -> Option<u32> {
    if s.len() == n && n <= 9 && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(s.bytes().fold(0, |acc, b| acc * 10 + u32::from(b - b'0')))
    } else {
        None
    }
}

/// The pieces of `s` between `sep`s, at most `N` of them (`None` when there are more). Why not
/// a `Vec`: every date of every resource is parsed, and two vectors per date were most of a
/// population screening's date parsing.
fn split_upto<const N: usize>(s: &str, sep: char) -> Option<([&str; N], usize)> {
    let mut out = [""; N];
    let mut n = 0;
    for piece in s.split(sep) {
        *out.get_mut(n)? = piece;
        n += 1;
    }
    Some((out, n))
}

/// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]`.
pub fn parse(text: &str) -> Result<FhirDateTime, String> {
    let t = text.trim();
    let (date_part, time_part) = match t.split_once('T') {
        Some((d, tm)) => (d, Some(tm)),
        None => (t, None),
    };
    let bad = || format!("not a FHIR date/dateTime: {text:?}");
    let (parts, count) = split_upto::<3>(date_part, '-').ok_or_else(bad)?;
    let year = digits(parts[0], 4).ok_or_else(bad)? as i32;
    let date = match count {
        1 => PartialDate::Year(year),
        2 => {
            let m = digits(parts[1], 2).ok_or_else(bad)?;
            if !(1..=12).contains(&m) {
                return Err(format!("impossible date {text:?} (month {m})"));
            }
            PartialDate::Month(year, m)
        }
        3 => {
            let m = digits(parts[1], 2).ok_or_else(bad)?;
            let d = digits(parts[2], 2).ok_or_else(bad)?;
            let nd = NaiveDate::from_ymd_opt(year, m, d)
                .ok_or_else(|| format!("impossible date {text:?}"))?;
            PartialDate::Day(nd)
        }
        _ => return Err(bad()),
    };
    let time = match time_part {
        None => None,
        Some(tm) => {
            if date.is_partial() {
                return Err(bad());
            }
            // Strip the zone: Z or ±hh:mm.
            let clock = if let Some(c) = tm.strip_suffix('Z') {
                c
            } else if let Some(pos) = tm.rfind(['+', '-']) {
                let zone = &tm[pos + 1..];
                let ok = zone.len() == 5
                    && zone.as_bytes().get(2) == Some(&b':')
                    && zone
                        .get(..2)
                        .and_then(|h| digits(h, 2))
                        .is_some_and(|h| h <= 14)
                    && zone
                        .get(3..)
                        .and_then(|m| digits(m, 2))
                        .is_some_and(|m| m < 60);
                if !ok {
                    return Err(bad());
                }
                &tm[..pos]
            } else {
                tm
            };
            let (hms, _frac) = match clock.split_once('.') {
                Some((a, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
                    (a, Some(f))
                }
                Some(_) => return Err(bad()),
                None => (clock, None),
            };
            let (hp, count) = split_upto::<3>(hms, ':').ok_or_else(bad)?;
            if count < 2 {
                return Err(bad());
            }
            let h = digits(hp[0], 2).ok_or_else(bad)?;
            let mi = digits(hp[1], 2).ok_or_else(bad)?;
            let se = if count == 3 {
                digits(hp[2], 2).ok_or_else(bad)?
            } else {
                0
            };
            Some(
                NaiveTime::from_hms_opt(h, mi, se)
                    .ok_or_else(|| format!("impossible time {text:?}"))?,
            )
        }
    };
    Ok(FhirDateTime { date, time })
}

/// Which day of a partial date to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    First,
    Last,
}

/// Reads a date-valued element at `field` of `v`; returns the parsed value or records an issue.
pub(crate) fn read(v: &Value, key: &str, field: &str, issues: &mut Issues) -> Option<FhirDateTime> {
    let raw = v.get(key)?;
    let Some(text) = raw.as_str() else {
        issues.add(field, "not a string date");
        return None;
    };
    match parse(text) {
        Ok(dt) => Some(dt),
        Err(e) => {
            issues.add(field, e);
            None
        }
    }
}

/// A calendar day from a date element; partial dates take the first or last day with a note.
pub(crate) fn day(
    v: &Value,
    key: &str,
    field: &str,
    pick: Pick,
    issues: &mut Issues,
) -> Option<NaiveDate> {
    let dt = read(v, key, field, issues)?;
    resolve(dt.date, field, pick, issues)
}

pub(crate) fn resolve(
    date: PartialDate,
    field: &str,
    pick: Pick,
    issues: &mut Issues,
) -> Option<NaiveDate> {
    let d = match pick {
        Pick::First => date.first(),
        Pick::Last => date.last(),
    };
    if date.is_partial() {
        if let Some(d) = d {
            issues.add(
                field,
                format!(
                    "partial date; taken as {} ({} day of the {})",
                    d,
                    if pick == Pick::First { "first" } else { "last" },
                    if matches!(date, PartialDate::Year(_)) {
                        "year"
                    } else {
                        "month"
                    }
                ),
            );
        }
    }
    d
}

/// A date-time (time kept when given, else midnight) from a dateTime/instant element.
pub(crate) fn datetime(
    v: &Value,
    key: &str,
    field: &str,
    pick: Pick,
    issues: &mut Issues,
) -> Option<NaiveDateTime> {
    let dt = read(v, key, field, issues)?;
    let d = resolve(dt.date, field, pick, issues)?;
    Some(d.and_time(dt.time.unwrap_or(NaiveTime::MIN)))
}

/// The point of a `<prefix>[x]` choice that is a dateTime or a Period (Procedure
/// `performed[x]`, DiagnosticReport `effective[x]`): `<prefix>DateTime`; else the end of
/// `<prefix>Period` (§1.2 "end of a period"), or its start with a note when it has no end.
/// `None` when neither is given.
pub(crate) fn point_or_period_end(
    res: &Value,
    prefix: &str,
    issues: &mut Issues,
) -> Option<NaiveDateTime> {
    let at = format!("{prefix}DateTime");
    let period = format!("{prefix}Period");
    if res.get(&at).is_some() {
        datetime(res, &at, &at, Pick::First, issues)
    } else if let Some(p) = res.get(&period) {
        if p.get("end").is_some() {
            datetime(p, "end", &format!("{period}.end"), Pick::Last, issues)
        } else {
            issues.add(format!("{period}.end"), "missing: the start is used");
            datetime(p, "start", &format!("{period}.start"), Pick::First, issues)
        }
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, dd).unwrap_or(NaiveDate::MIN)
    }

    #[test]
    fn full_and_offsets() {
        let p = parse("2023-08-23T10:00:00+09:00").map_err(|e| e.to_string());
        assert_eq!(
            p.as_ref().map(|p| p.date),
            Ok(PartialDate::Day(d(2023, 8, 23)))
        );
        assert_eq!(p.map(|p| p.time), Ok(NaiveTime::from_hms_opt(10, 0, 0)));
        // Late evening with a negative offset keeps the local date as written.
        let p = parse("2024-03-01T23:30:00-05:00").map(|p| p.date);
        assert_eq!(p, Ok(PartialDate::Day(d(2024, 3, 1))));
        let p = parse("2015-02-07T13:28:17.239+02:00").map(|p| p.time);
        assert_eq!(p, Ok(NaiveTime::from_hms_opt(13, 28, 17)));
        assert!(parse("2019-09-16T07:19:07Z").is_ok());
    }

    #[test]
    fn partial_dates() {
        let y = parse("2020").map(|p| p.date);
        assert_eq!(y, Ok(PartialDate::Year(2020)));
        assert_eq!(PartialDate::Year(2020).first(), Some(d(2020, 1, 1)));
        assert_eq!(PartialDate::Year(2020).last(), Some(d(2020, 12, 31)));
        assert_eq!(PartialDate::Month(2024, 2).last(), Some(d(2024, 2, 29)));
        assert_eq!(PartialDate::Month(2023, 12).last(), Some(d(2023, 12, 31)));
    }

    #[test]
    fn impossible_and_garbage() {
        assert!(parse("2023-02-30").is_err());
        assert!(parse("2023-13").is_err());
        assert!(parse("23-01-01").is_err());
        assert!(parse("2023-01-01T25:00:00Z").is_err());
        assert!(parse("2023-01-01T10:00:00+0900").is_err());
        assert!(parse("").is_err());
        assert!(parse("2023-01-01T").is_err());
        assert!(parse("２０２３").is_err());
        // Too many or too few pieces (the splits are bounded, not collected).
        assert!(parse("2023-01-01-01").is_err());
        assert!(parse("2023-01-01T10:00:00:00Z").is_err());
        assert!(parse("2023-01-01T10Z").is_err());
        assert!(parse("-").is_err());
        let hm = parse("2023-01-01T10:30Z").map(|p| p.time);
        assert_eq!(hm, Ok(NaiveTime::from_hms_opt(10, 30, 0)));
        let exact = parse("2023-01-01-01").err();
        assert_eq!(
            exact.as_deref(),
            Some("not a FHIR date/dateTime: \"2023-01-01-01\"")
        );
    }
}
