//! FHIRPath `Date`, `DateTime` and `Time` with partial precision (`2019`, `2019-01`,
//! `2019-01-01T10`, …): parsing from literals and FHIR JSON, the comparison rules (values of
//! different precision or with and without a timezone can be incomparable, which surfaces as an
//! empty result), and arithmetic with calendar durations.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use std::cmp::Ordering;
use std::fmt;

/// How much of a date/time was written. Seconds and milliseconds compare as one precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Precision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

/// A date or date-time; a FHIRPath `Date` is one whose precision is at most `Day` and that has no
/// offset. Fields below the precision are zero (months and days are then 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTime {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millisecond: u32,
    pub precision: Precision,
    /// Offset from UTC in minutes; `None` when no timezone was written.
    pub offset: Option<i32>,
}

/// A time of day; precision is `Hour` or finer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millisecond: u32,
    pub precision: Precision,
}

/// The calendar units a quantity can add to a date/time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CalendarUnit {
    Year,
    Month,
    Week,
    Day,
    Hour,
    Minute,
    Second,
    Millisecond,
}

fn digits(text: &str, len: usize) -> Option<u32> {
    if text.len() == len && text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

/// Days in `month` (1–12) of `year`, leap years included.
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `hh[:mm[:ss[.fff]]]` (no timezone), the time part shared by `Time` and `DateTime`.
fn parse_clock(text: &str) -> Option<Time> {
    let mut t = Time {
        hour: 0,
        minute: 0,
        second: 0,
        millisecond: 0,
        precision: Precision::Hour,
    };
    let mut parts = text.splitn(3, ':');
    t.hour = digits(parts.next()?, 2).filter(|h| *h < 24)?;
    if let Some(m) = parts.next() {
        t.minute = digits(m, 2).filter(|m| *m < 60)?;
        t.precision = Precision::Minute;
    }
    if let Some(s) = parts.next() {
        let (sec, frac) = match s.split_once('.') {
            Some((sec, frac)) => (sec, Some(frac)),
            None => (s, None),
        };
        t.second = digits(sec, 2).filter(|s| *s < 60)?;
        t.precision = Precision::Second;
        if let Some(frac) = frac {
            if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Milliseconds are the finest precision FHIRPath keeps; further digits are truncated.
            let ms = format!("{:0<3}", &frac[..frac.len().min(3)]);
            t.millisecond = ms.parse().ok()?;
            t.precision = Precision::Millisecond;
        }
    }
    Some(t)
}

fn parse_offset(text: &str) -> Option<i32> {
    if text == "Z" {
        return Some(0);
    }
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = text[1..].split_once(':')?;
    let (h, m) = (digits(h, 2)?, digits(m, 2)?);
    if h > 14 || m > 59 {
        return None;
    }
    Some(sign * (h * 60 + m) as i32)
}

impl DateTime {
    fn date_only(year: i32, month: u32, day: u32, precision: Precision) -> DateTime {
        DateTime {
            year,
            month,
            day,
            hour: 0,
            minute: 0,
            second: 0,
            millisecond: 0,
            precision,
            offset: None,
        }
    }

    /// Parses `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub fn parse_date(text: &str) -> Option<DateTime> {
        let mut parts = text.splitn(3, '-');
        let year = digits(parts.next()?, 4)? as i32;
        let mut d = DateTime::date_only(year, 1, 1, Precision::Year);
        if let Some(m) = parts.next() {
            d.month = digits(m, 2).filter(|m| (1..=12).contains(m))?;
            d.precision = Precision::Month;
        }
        if let Some(day) = parts.next() {
            d.day = digits(day, 2).filter(|day| *day >= 1 && *day <= days_in_month(year, d.month))?;
            d.precision = Precision::Day;
        }
        Some(d)
    }

    /// Parses a FHIR/FHIRPath date-time: a date, optionally `T` and a time, optionally an offset.
    /// `2015T` (a literal's way of saying "a DateTime of year precision") is accepted too.
    pub fn parse_datetime(text: &str) -> Option<DateTime> {
        let (date, rest) = match text.split_once('T') {
            Some((date, rest)) => (date, Some(rest)),
            None => (text, None),
        };
        let mut dt = DateTime::parse_date(date)?;
        let Some(rest) = rest.filter(|r| !r.is_empty()) else {
            return Some(dt);
        };
        if dt.precision != Precision::Day {
            return None;
        }
        let tz_at = rest.find(['Z', '+', '-']);
        let (clock, tz) = match tz_at {
            Some(at) => (&rest[..at], Some(&rest[at..])),
            None => (rest, None),
        };
        let t = parse_clock(clock)?;
        dt.hour = t.hour;
        dt.minute = t.minute;
        dt.second = t.second;
        dt.millisecond = t.millisecond;
        dt.precision = t.precision;
        if let Some(tz) = tz {
            dt.offset = Some(parse_offset(tz)?);
        }
        Some(dt)
    }

    /// The same instant expressed in UTC (only meaningful when an offset is present).
    fn to_utc(self) -> DateTime {
        let Some(offset) = self.offset.filter(|o| *o != 0) else {
            return self;
        };
        let Some(naive) = self.naive() else {
            return self;
        };
        let shifted = naive - Duration::minutes(offset as i64);
        DateTime {
            offset: Some(0),
            ..DateTime::from_naive(shifted, self.precision, self.offset)
        }
    }

    fn naive(&self) -> Option<NaiveDateTime> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day)?.and_hms_milli_opt(
            self.hour,
            self.minute,
            self.second,
            self.millisecond,
        )
    }

    fn from_naive(n: NaiveDateTime, precision: Precision, offset: Option<i32>) -> DateTime {
        DateTime {
            year: n.year(),
            month: n.month(),
            day: n.day(),
            hour: n.hour(),
            minute: n.minute(),
            second: n.second(),
            millisecond: n.nanosecond() / 1_000_000,
            precision,
            offset,
        }
    }

    /// FHIRPath comparison: `None` when the values are incomparable (different precision with
    /// equal common parts, or a timezone on one side only).
    pub fn compare(&self, other: &DateTime) -> Option<Ordering> {
        let (mut a, mut b) = (*self, *other);
        if a.precision >= Precision::Hour && b.precision >= Precision::Hour {
            match (a.offset, b.offset) {
                (Some(_), Some(_)) => {
                    a = a.to_utc();
                    b = b.to_utc();
                }
                (None, None) => {}
                _ => return None,
            }
        }
        let pa = a.precision.min(Precision::Second);
        let pb = b.precision.min(Precision::Second);
        let common = pa.min(pb);
        let fields = [
            (Precision::Year, a.year as i64, b.year as i64),
            (Precision::Month, a.month as i64, b.month as i64),
            (Precision::Day, a.day as i64, b.day as i64),
            (Precision::Hour, a.hour as i64, b.hour as i64),
            (Precision::Minute, a.minute as i64, b.minute as i64),
            (
                Precision::Second,
                (a.second * 1000 + a.millisecond) as i64,
                (b.second * 1000 + b.millisecond) as i64,
            ),
        ];
        for (precision, x, y) in fields {
            if precision > common {
                break;
            }
            match x.cmp(&y) {
                Ordering::Equal => {}
                unequal => return Some(unequal),
            }
        }
        if pa == pb { Some(Ordering::Equal) } else { None }
    }

    /// Adds `amount` calendar units (negative to subtract). `None` when the result is out of range.
    pub fn add(&self, amount: i64, unit: CalendarUnit) -> Option<DateTime> {
        let mut r = *self;
        match unit {
            CalendarUnit::Year => {
                r.year = i32::try_from(r.year as i64 + amount).ok()?;
                r.day = r.day.min(days_in_month(r.year, r.month));
            }
            CalendarUnit::Month => {
                let months = r.year as i64 * 12 + (r.month as i64 - 1) + amount;
                r.year = i32::try_from(months.div_euclid(12)).ok()?;
                r.month = months.rem_euclid(12) as u32 + 1;
                r.day = r.day.min(days_in_month(r.year, r.month));
            }
            _ if self.precision <= Precision::Day => {
                // A date has no clock: time units count only in whole days.
                let days = match unit {
                    CalendarUnit::Week => amount.checked_mul(7)?,
                    CalendarUnit::Day => amount,
                    CalendarUnit::Hour => amount / 24,
                    CalendarUnit::Minute => amount / (24 * 60),
                    CalendarUnit::Second => amount / 86_400,
                    _ => amount / 86_400_000,
                };
                let date =
                    NaiveDate::from_ymd_opt(r.year, r.month, r.day)?.checked_add_signed(Duration::try_days(days)?)?;
                r = DateTime::date_only(date.year(), date.month(), date.day(), r.precision);
                r.offset = self.offset;
            }
            _ => {
                let duration = match unit {
                    CalendarUnit::Week => Duration::try_weeks(amount)?,
                    CalendarUnit::Day => Duration::try_days(amount)?,
                    CalendarUnit::Hour => Duration::try_hours(amount)?,
                    CalendarUnit::Minute => Duration::try_minutes(amount)?,
                    CalendarUnit::Second => Duration::try_seconds(amount)?,
                    _ => Duration::try_milliseconds(amount)?,
                };
                let n = self.naive()?.checked_add_signed(duration)?;
                r = DateTime::from_naive(n, self.precision, self.offset);
            }
        }
        Some(r)
    }

    fn fmt_date(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}", self.year)?;
        if self.precision >= Precision::Month {
            write!(f, "-{:02}", self.month)?;
        }
        if self.precision >= Precision::Day {
            write!(f, "-{:02}", self.day)?;
        }
        Ok(())
    }
}

/// Writes the date part, then (for date-times with a clock) `T`, the clock and the offset.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_date(f)?;
        if self.precision >= Precision::Hour {
            write!(f, "T")?;
            let t = Time {
                hour: self.hour,
                minute: self.minute,
                second: self.second,
                millisecond: self.millisecond,
                precision: self.precision,
            };
            write!(f, "{t}")?;
            match self.offset {
                Some(0) => write!(f, "Z")?,
                Some(o) => write!(
                    f,
                    "{}{:02}:{:02}",
                    if o < 0 { '-' } else { '+' },
                    o.abs() / 60,
                    o.abs() % 60
                )?,
                None => {}
            }
        }
        Ok(())
    }
}

impl Time {
    /// Parses `hh[:mm[:ss[.fff]]]`; a timezone is not allowed on a time.
    pub fn parse(text: &str) -> Option<Time> {
        parse_clock(text)
    }

    /// A millisecond-precision time from chrono.
    pub fn from_chrono(t: NaiveTime) -> Time {
        Time {
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
            millisecond: t.nanosecond() / 1_000_000 % 1000,
            precision: Precision::Millisecond,
        }
    }

    /// Ordering; `None` when the precisions differ and the common parts are equal.
    pub fn compare(&self, other: &Time) -> Option<Ordering> {
        let as_date = |t: &Time| DateTime {
            year: 2000,
            month: 1,
            day: 1,
            hour: t.hour,
            minute: t.minute,
            second: t.second,
            millisecond: t.millisecond,
            precision: t.precision,
            offset: None,
        };
        as_date(self).compare(&as_date(other))
    }

    /// Adds time units, wrapping around midnight; calendar units above hours are not allowed.
    pub fn add(&self, amount: i64, unit: CalendarUnit) -> Option<Time> {
        let ms_per = match unit {
            CalendarUnit::Hour => 3_600_000,
            CalendarUnit::Minute => 60_000,
            CalendarUnit::Second => 1000,
            CalendarUnit::Millisecond => 1,
            _ => return None,
        };
        let day = 86_400_000i64;
        let current = ((self.hour * 60 + self.minute) * 60 + self.second) as i64 * 1000 + self.millisecond as i64;
        let total = (current + amount.checked_mul(ms_per)? % day).rem_euclid(day);
        Some(Time {
            hour: (total / 3_600_000) as u32,
            minute: (total / 60_000 % 60) as u32,
            second: (total / 1000 % 60) as u32,
            millisecond: (total % 1000) as u32,
            precision: self.precision,
        })
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.hour)?;
        if self.precision >= Precision::Minute {
            write!(f, ":{:02}", self.minute)?;
        }
        if self.precision >= Precision::Second {
            write!(f, ":{:02}", self.second)?;
        }
        if self.precision >= Precision::Millisecond {
            write!(f, ".{:03}", self.millisecond)?;
        }
        Ok(())
    }
}

/// Formats a `DateTime` that holds a FHIRPath `Date`.
pub struct DisplayDate<'d>(pub &'d DateTime);

impl fmt::Display for DisplayDate<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_date(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(text: &str) -> DateTime {
        DateTime::parse_datetime(text).unwrap()
    }

    #[test]
    fn parses_partial_precision() {
        assert_eq!(dt("2015").precision, Precision::Year);
        assert_eq!(dt("2015T").precision, Precision::Year);
        assert_eq!(dt("2015-02-04T14").precision, Precision::Hour);
        assert_eq!(dt("2015-02-04T14:34:28.123+10:00").offset, Some(600));
        assert_eq!(
            dt("2015-02-04T14:34:28.123+10:00").to_string(),
            "2015-02-04T14:34:28.123+10:00"
        );
        assert!(DateTime::parse_datetime("2015-02-30").is_none());
        assert!(Time::parse("14:34:28Z").is_none());
    }

    #[test]
    fn different_precision_is_incomparable_when_common_parts_are_equal() {
        assert_eq!(dt("2018-03").compare(&dt("2018-03-01")), None);
        assert_eq!(dt("2018-03").compare(&dt("2018-04-01")), Some(Ordering::Less));
        assert_eq!(
            dt("2012-04-15T15:30:31").compare(&dt("2012-04-15T15:30:31.0")),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn offsets_are_normalised_and_a_missing_offset_is_incomparable() {
        assert_eq!(
            dt("2017-11-05T01:30:00.0-04:00").compare(&dt("2017-11-05T00:30:00.0-05:00")),
            Some(Ordering::Equal)
        );
        assert_eq!(
            dt("2017-11-05T01:30:00.0-04:00").compare(&dt("2017-11-05T01:15:00.0-05:00")),
            Some(Ordering::Less)
        );
        assert_eq!(dt("2012-04-15T15:00:00Z").compare(&dt("2012-04-15T10:00:00")), None);
    }

    #[test]
    fn month_arithmetic_clamps_to_the_end_of_the_month() {
        assert_eq!(
            dt("2019-01-31").add(1, CalendarUnit::Month).unwrap().to_string(),
            "2019-02-28"
        );
        assert_eq!(
            dt("1973-12-25").add(7, CalendarUnit::Day).unwrap().to_string(),
            "1974-01-01"
        );
        assert_eq!(
            dt("1974-12-25").add(-1, CalendarUnit::Month).unwrap().to_string(),
            "1974-11-25"
        );
        assert_eq!(
            dt("1973-12-25T00:00:00.000+10:00")
                .add(10, CalendarUnit::Millisecond)
                .unwrap()
                .to_string(),
            "1973-12-25T00:00:00.010+10:00"
        );
    }
}
