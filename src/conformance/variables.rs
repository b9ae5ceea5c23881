//! `${…}` in a script's values: its variables, the `--var` values, and Touchstone's built-ins
//! (`${CURRENTDATE}`, `${CURRENTDATETIME}` with optional offsets, `${DATE, base, unit, ±N}`,
//! `${UUID}`, `${UUID-NODASH}`). The innermost `${…}` is replaced first, so a variable's name may
//! itself be made of variables.

use chrono::{DateTime, Datelike, Duration, FixedOffset, Months, NaiveDate, Utc};

/// How many replacements one text may need before it is taken for a loop.
const MAX_REPLACEMENTS: usize = 1000;

/// Replaces every `${…}` in `text`, asking `lookup` for names that are not built-ins; a name
/// neither knows is an error naming it.
pub fn substitute(
    text: &str,
    now: DateTime<Utc>,
    lookup: &mut dyn FnMut(&str) -> Result<Option<String>, String>,
) -> Result<String, String> {
    let mut text = text.to_owned();
    for _ in 0..MAX_REPLACEMENTS {
        let Some((start, end)) = innermost(&text) else {
            return Ok(text);
        };
        let name = text[start + 2..end].trim().to_owned();
        let value = match builtin(&name, now, lookup)? {
            Some(value) => value,
            None => lookup(&name)?.ok_or_else(|| format!("variable '{name}' has no value"))?,
        };
        text.replace_range(start..=end, &value);
    }
    Err(format!("too many variables to replace in '{text}'"))
}

/// The first `${` whose `}` comes before any other `${`: (index of `$`, index of `}`).
fn innermost(text: &str) -> Option<(usize, usize)> {
    let mut open = None;
    for (i, c) in text.char_indices() {
        if c == '$' && text[i + 1..].starts_with('{') {
            open = Some(i);
        } else if c == '}'
            && let Some(start) = open
        {
            return Some((start, i));
        }
    }
    None
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
        at = match pair[0] {
            "y" | "Y" => add_months(at, amount * 12)?,
            "M" => add_months(at, amount)?,
            "d" | "D" => at + Duration::days(amount),
            "H" | "h" => at + Duration::hours(amount),
            "m" => at + Duration::minutes(amount),
            "s" | "S" => at + Duration::seconds(amount),
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
    }
}
