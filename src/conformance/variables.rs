//! `${…}` in a script's values: its variables, the `--var` values, and Touchstone's built-ins
//! (`${CURRENTDATE}`, `${CURRENTDATETIME}` with optional offsets, `${DATE, base, unit, ±N}`,
//! `${UUID}`, `${UUID-NODASH}`). A variable's name may itself be made of variables.

use chrono::{DateTime, Datelike, FixedOffset, Months, NaiveDate, TimeDelta, Utc};

/// The longest text a substitution may produce: values come from the server under test, which
/// must not be able to make the engine build gigabytes.
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

/// Replaces every `${…}` in `text`, asking `lookup` for names that are not built-ins; a name
/// neither knows is an error naming it. One pass, left to right: a `${…}` inside a name is
/// replaced first (`${${which}}`), and a value, once inserted, is never scanned again, so a value
/// that happens to contain `${` stays as it is.
pub fn substitute(
    text: &str,
    now: DateTime<Utc>,
    lookup: &mut dyn FnMut(&str) -> Result<Option<String>, String>,
) -> Result<String, String> {
    let (out, rest) = expand(text, now, lookup, false)?;
    debug_assert!(rest.is_empty());
    Ok(out)
}

/// Expands `text` up to its end or, `inside` a name, up to the `}` that closes it; returns the
/// expansion and what follows that `}`.
fn expand<'t>(
    text: &'t str,
    now: DateTime<Utc>,
    lookup: &mut dyn FnMut(&str) -> Result<Option<String>, String>,
    inside: bool,
) -> Result<(String, &'t str), String> {
    let mut out = String::new();
    let mut rest = text;
    loop {
        let open = rest.find("${");
        let close = if inside { rest.find('}') } else { None };
        match (open, close) {
            (Some(o), Some(c)) if c < o => {
                out.push_str(&rest[..c]);
                return Ok((out, &rest[c + 1..]));
            }
            (None, Some(c)) => {
                out.push_str(&rest[..c]);
                return Ok((out, &rest[c + 1..]));
            }
            (Some(o), _) => {
                out.push_str(&rest[..o]);
                let (name, after) = expand(&rest[o + 2..], now, lookup, true)?;
                let name = name.trim();
                let value = match builtin(name, now, lookup)? {
                    Some(value) => value,
                    None => lookup(name)?.ok_or_else(|| format!("variable '{name}' has no value"))?,
                };
                out.push_str(&value);
                if out.len() > MAX_OUTPUT {
                    return Err("the text grows past 16 MiB once its variables are replaced".to_owned());
                }
                rest = after;
            }
            (None, None) if inside => return Err(format!("'${{{text}' has no closing '}}'")),
            (None, None) => {
                out.push_str(rest);
                return Ok((out, ""));
            }
        }
    }
}

fn builtin(
    name: &str,
    now: DateTime<Utc>,
    lookup: &mut dyn FnMut(&str) -> Result<Option<String>, String>,
) -> Result<Option<String>, String> {
    let parts: Vec<&str> = name.split(',').map(str::trim).collect();
    let value = match parts[0] {
        "UUID" if parts.len() == 1 => uuid::Uuid::new_v4().to_string(),
        "UUID-NODASH" if parts.len() == 1 => uuid::Uuid::new_v4().simple().to_string(),
        "CURRENTDATE" => date_text(offset(now.fixed_offset(), &parts[1..])?, false),
        "CURRENTDATETIME" => date_text(offset(now.fixed_offset(), &parts[1..])?, true),
        "DATE" | "DATETIME" if parts.len() >= 2 => {
            let base = match parts[1] {
                "T" | "TODAY" | "NOW" => now.fixed_offset(),
                given => {
                    let text = lookup(given)?.unwrap_or_else(|| given.to_owned());
                    parse_date(&text).ok_or_else(|| format!("'{text}' in ${{{name}}} is not a date"))?
                }
            };
            date_text(offset(base, &parts[2..])?, parts[0] == "DATETIME")
        }
        _ => return Ok(None),
    };
    Ok(Some(value))
}

/// Applies `unit, ±N` pairs: units `y`/`Y` years, `M` months, `d`/`D` days, `H`/`h` hours,
/// `m` minutes, `s`/`S` seconds (Touchstone's letters of `yyMMddHHmmss`).
fn offset(mut at: DateTime<FixedOffset>, pairs: &[&str]) -> Result<DateTime<FixedOffset>, String> {
    if !pairs.len().is_multiple_of(2) {
        return Err(format!(
            "a date offset needs a unit and a number: '{}'",
            pairs.join(", ")
        ));
    }
    for pair in pairs.chunks(2) {
        let amount: i64 = pair[1]
            .trim_start_matches('+')
            .parse()
            .map_err(|_| format!("'{}' is not a whole number of {}", pair[1], pair[0]))?;
        let too_far = || format!("the date offset {} {} leaves the calendar", pair[1], pair[0]);
        let delta = |make: fn(i64) -> Option<TimeDelta>| make(amount).ok_or_else(too_far);
        at = match pair[0] {
            "y" | "Y" => add_months(at, amount.checked_mul(12).ok_or_else(too_far)?)?,
            "M" => add_months(at, amount)?,
            "d" | "D" => at.checked_add_signed(delta(TimeDelta::try_days)?).ok_or_else(too_far)?,
            "H" | "h" => at
                .checked_add_signed(delta(TimeDelta::try_hours)?)
                .ok_or_else(too_far)?,
            "m" => at
                .checked_add_signed(delta(TimeDelta::try_minutes)?)
                .ok_or_else(too_far)?,
            "s" | "S" => at
                .checked_add_signed(delta(TimeDelta::try_seconds)?)
                .ok_or_else(too_far)?,
            unit => return Err(format!("'{unit}' is not a date unit (y, M, d, H, m, s)")),
        };
    }
    Ok(at)
}

fn add_months(at: DateTime<FixedOffset>, months: i64) -> Result<DateTime<FixedOffset>, String> {
    let magnitude = Months::new(u32::try_from(months.unsigned_abs()).map_err(|_| "offset too large".to_owned())?);
    let moved = if months >= 0 {
        at.checked_add_months(magnitude)
    } else {
        at.checked_sub_months(magnitude)
    };
    moved.ok_or_else(|| "the date offset leaves the calendar".to_owned())
}

fn date_text(at: DateTime<FixedOffset>, with_time: bool) -> String {
    if with_time {
        at.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
    } else {
        format!("{:04}-{:02}-{:02}", at.year(), at.month(), at.day())
    }
}

fn parse_date(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok().or_else(|| {
        let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
        Some(date.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2024-01-31T10:00:00Z").unwrap().to_utc()
    }

    fn run(text: &str) -> Result<String, String> {
        substitute(text, now(), &mut |name| {
            Ok(match name {
                "id" => Some("p1".to_owned()),
                "which" => Some("id".to_owned()),
                "birth" => Some("2000-02-29".to_owned()),
                _ => None,
            })
        })
    }

    #[test]
    fn variables_built_ins_and_nesting() {
        assert_eq!(run("/Patient/${id}/_history").unwrap(), "/Patient/p1/_history");
        assert_eq!(run("${${which}}").unwrap(), "p1");
        assert_eq!(run("${CURRENTDATE}").unwrap(), "2024-01-31");
        assert_eq!(run("${CURRENTDATE, M, 1}").unwrap(), "2024-02-29");
        assert_eq!(run("${CURRENTDATETIME, H, -1}").unwrap(), "2024-01-31T09:00:00+00:00");
        assert_eq!(run("${DATE, T, D, -31}").unwrap(), "2023-12-31");
        assert_eq!(run("${DATE, birth, Y, 1}").unwrap(), "2001-02-28");
        assert_eq!(run("${UUID}").unwrap().len(), 36);
        assert_eq!(run("no variables").unwrap(), "no variables");
    }

    #[test]
    fn unknown_names_and_bad_offsets_are_errors_that_say_which() {
        assert_eq!(run("${nope}").unwrap_err(), "variable 'nope' has no value");
        assert!(run("${CURRENTDATE, W, 1}").unwrap_err().contains("'W'"));
        assert!(run("${CURRENTDATE, d}").is_err());
        assert!(run("${CURRENTDATE, d, 100000000000}").unwrap_err().contains("calendar"));
        assert!(run("${CURRENTDATE, Y, 9223372036854775807}").is_err());
        assert!(run("${id").unwrap_err().contains("no closing"));
    }

    #[test]
    fn a_value_is_never_scanned_again() {
        let mut lookup = |name: &str| -> Result<Option<String>, String> {
            Ok(match name {
                "loop" => Some("${loop}".to_owned()),
                "a" => Some("x".to_owned()),
                _ => None,
            })
        };
        assert_eq!(substitute("[${loop}]", now(), &mut lookup).unwrap(), "[${loop}]");
        assert_eq!(substitute("${a}}${a}", now(), &mut lookup).unwrap(), "x}x");
    }
}
