//! Points and ranges in time: `meta.lastUpdated` instants, and the ranges that a FHIR dateTime of
//! partial precision stands for (`2020` is all of that year) as used by `_since` and `_at`.

use crate::error::{Error, Result};
use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike, Utc};
use std::fmt;

/// A UTC instant with millisecond precision, the precision the server stamps and stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(DateTime<Utc>);

impl Instant {
    pub fn now() -> Instant {
        Instant::from_datetime(Utc::now())
    }

    /// Truncates to whole milliseconds so that what is served and what is stored compare equal.
    pub fn from_datetime(at: DateTime<Utc>) -> Instant {
        let ms = at.timestamp_millis();
        Instant(DateTime::from_timestamp_millis(ms).expect("a timestamp from a DateTime is in range"))
    }

    pub fn from_micros(micros: i64) -> Instant {
        Instant::from_datetime(DateTime::from_timestamp_micros(micros).unwrap_or_default())
    }

    pub fn as_micros(self) -> i64 {
        self.0.timestamp_micros()
    }

    pub fn datetime(self) -> DateTime<Utc> {
        self.0
    }

    /// FHIR `instant` form, e.g. `2026-11-22T12:20:47.123Z`.
    pub fn to_fhir(self) -> String {
        self.0.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    }

    /// HTTP-date form for `Last-Modified` (RFC 9110 IMF-fixdate). `httpdate` rather than chrono's
    /// strftime: this runs on every read, and the format-string interpreter showed in profiles.
    pub fn to_http_date(self) -> String {
        let seconds = u64::try_from(self.0.timestamp()).unwrap_or(0);
        httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
    }

    /// Parses an HTTP-date such as `If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT`.
    pub fn parse_http_date(value: &str) -> Option<Instant> {
        DateTime::parse_from_rfc2822(value.trim())
            .ok()
            .map(|t| Instant::from_datetime(t.with_timezone(&Utc)))
    }

    /// The instant truncated to whole seconds, the precision of HTTP dates.
    pub fn whole_seconds(self) -> Instant {
        Instant(self.0.with_nanosecond(0).unwrap_or(self.0))
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_fhir())
    }
}

/// The half-open range `[start, end)` that a FHIR date or dateTime of some precision denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstantRange {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl InstantRange {
    /// Parses `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or a date with a time (`hh:mm`, `hh:mm:ss`, optional
    /// fraction) and a zone (`Z` or `±hh:mm`; UTC when left out). Dates without a time are taken in UTC.
    pub fn parse(value: &str) -> Result<InstantRange> {
        parse_range(value).ok_or_else(|| {
            Error::invalid(format!(
                "'{value}' is not a FHIR date, dateTime or instant (e.g. 2020, 2020-03, 2020-03-01, 2020-03-01T10:00:00Z)"
            ))
        })
    }
}

fn parse_range(value: &str) -> Option<InstantRange> {
    let (date_part, time_part) = match value.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (value, None),
    };
    let fields: Vec<&str> = date_part.split('-').collect();
    let all_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    match (fields.as_slice(), time_part) {
        ([y], None) if all_digits(y, 4) => {
            let start = NaiveDate::from_ymd_opt(y.parse().ok()?, 1, 1)?;
            let end = NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?;
            Some(utc_range(start.and_time(NaiveTime::MIN), end.and_time(NaiveTime::MIN)))
        }
        ([y, m], None) if all_digits(y, 4) && all_digits(m, 2) => {
            let start = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, 1)?;
            let end = if start.month() == 12 {
                NaiveDate::from_ymd_opt(start.year() + 1, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(start.year(), start.month() + 1, 1)?
            };
            Some(utc_range(start.and_time(NaiveTime::MIN), end.and_time(NaiveTime::MIN)))
        }
        ([y, m, d], None) if all_digits(y, 4) && all_digits(m, 2) && all_digits(d, 2) => {
            let start = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            let start = start.and_time(NaiveTime::MIN);
            Some(utc_range(start, start + Duration::days(1)))
        }
        ([y, m, d], Some(time)) if all_digits(y, 4) && all_digits(m, 2) && all_digits(d, 2) => {
            let date = NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)?;
            parse_time_range(date, time)
        }
        _ => None,
    }
}

fn parse_time_range(date: NaiveDate, time: &str) -> Option<InstantRange> {
    // Split off the zone: `Z`, `+hh:mm` or `-hh:mm` at the end.
    let (clock, offset) = if let Some(clock) = time.strip_suffix('Z') {
        (clock, FixedOffset::east_opt(0)?)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let zone = &time[pos..];
        let (sign, rest) = zone.split_at(1);
        let (h, m) = rest.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let seconds = h.parse::<i32>().ok()? * 3600 + m.parse::<i32>().ok()? * 60;
        let offset = if sign == "-" {
            FixedOffset::west_opt(seconds)?
        } else {
            FixedOffset::east_opt(seconds)?
        };
        (&time[..pos], offset)
    } else {
        (time, FixedOffset::east_opt(0)?)
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    let (naive, step) = match parts.as_slice() {
        [h, m] if two_digits(h) && two_digits(m) => (
            NaiveDateTime::new(date, NaiveTime::from_hms_opt(h.parse().ok()?, m.parse().ok()?, 0)?),
            Duration::minutes(1),
        ),
        [h, m, s] if two_digits(h) && two_digits(m) => {
            let (whole, fraction) = match s.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (*s, None),
            };
            if !two_digits(whole) {
                return None;
            }
            let (nanos, step) = match fraction {
                None => (0, Duration::seconds(1)),
                Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
                    let nanos = format!("{f:0<9}").parse::<u32>().ok()?;
                    (nanos, Duration::nanoseconds(10i64.pow(9 - f.len() as u32)))
                }
                Some(_) => return None,
            };
            let t = NaiveTime::from_hms_nano_opt(h.parse().ok()?, m.parse().ok()?, whole.parse().ok()?, nanos)?;
            (NaiveDateTime::new(date, t), step)
        }
        _ => return None,
    };
    let start = offset.from_local_datetime(&naive).single()?.with_timezone(&Utc);
    Some(InstantRange {
        start,
        end: start + step,
    })
}

fn utc_range(start: NaiveDateTime, end: NaiveDateTime) -> InstantRange {
    InstantRange {
        start: Utc.from_utc_datetime(&start),
        end: Utc.from_utc_datetime(&end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(value: &str) -> (String, String) {
        let r = InstantRange::parse(value).unwrap();
        (r.start.to_rfc3339(), r.end.to_rfc3339())
    }

    #[test]
    fn partial_dates_cover_their_whole_period() {
        assert_eq!(
            range("2020"),
            ("2020-01-01T00:00:00+00:00".into(), "2021-01-01T00:00:00+00:00".into())
        );
        assert_eq!(
            range("2020-12"),
            ("2020-12-01T00:00:00+00:00".into(), "2021-01-01T00:00:00+00:00".into())
        );
        assert_eq!(
            range("2020-02-28"),
            ("2020-02-28T00:00:00+00:00".into(), "2020-02-29T00:00:00+00:00".into())
        );
    }

    #[test]
    fn times_respect_zone_and_precision() {
        assert_eq!(range("2020-01-01T10:00:00+02:00").0, "2020-01-01T08:00:00+00:00");
        assert_eq!(range("2020-01-01T10:00:00Z").1, "2020-01-01T10:00:01+00:00");
        let r = InstantRange::parse("2020-01-01T10:00:00.5Z").unwrap();
        assert_eq!((r.end - r.start).num_milliseconds(), 100);
        assert_eq!(range("2020-01-01T10:00-05:00").0, "2020-01-01T15:00:00+00:00");
    }

    #[test]
    fn rejects_malformed_values() {
        for bad in [
            "",
            "20",
            "2020-1",
            "2020-13",
            "2020-02-30",
            "2020-01-01T25:00:00Z",
            "yesterday",
            "2020-01-01T10",
        ] {
            assert!(InstantRange::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn instants_format_for_fhir_and_http_and_round_trip() {
        let t = Instant::from_micros(1_700_000_000_123_456);
        assert_eq!(t.to_fhir(), "2023-11-14T22:13:20.123Z");
        assert_eq!(t.to_http_date(), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(Instant::parse_http_date(&t.to_http_date()), Some(t.whole_seconds()));
        assert_eq!(InstantRange::parse(&t.to_fhir()).unwrap().start, t.datetime());
    }
}
