//! A small UCUM subset: enough to decide whether two units measure the same dimension and to
//! convert between them (`g`/`mg`, `wk`/`d`, `[lb_av]`/`kg`, `cm.m`/`m2`). Units outside the table
//! are still comparable with themselves by their exact code. Calendar keywords of FHIRPath
//! (`year`, `month`, `week`, …) map to UCUM time units, except `year` and `month`, which are
//! calendar lengths and so only compare with each other.

use super::dates::CalendarUnit;
use super::decimal::Decimal;

/// Exponents of the base dimensions: metre, gram, second, kelvin, mole, coulomb, candela,
/// and a pseudo-dimension for calendar months (FHIRPath `year`/`month`).
pub type Dims = [i8; 8];

const NONE: Dims = [0; 8];
const LENGTH: Dims = [1, 0, 0, 0, 0, 0, 0, 0];
const MASS: Dims = [0, 1, 0, 0, 0, 0, 0, 0];
const TIME: Dims = [0, 0, 1, 0, 0, 0, 0, 0];
const VOLUME: Dims = [3, 0, 0, 0, 0, 0, 0, 0];
const CALENDAR_MONTH: Dims = [0, 0, 0, 0, 0, 0, 0, 1];

/// A unit reduced to a factor times a product of base dimensions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Canonical {
    pub factor: Decimal,
    pub dims: Dims,
}

/// Atoms that take no prefix, and metric atoms that do (`metric = true`).
const ATOMS: &[(&str, &str, Dims, bool)] = &[
    ("1", "1", NONE, false),
    ("%", "0.01", NONE, false),
    ("m", "1", LENGTH, true),
    ("g", "1", MASS, true),
    ("s", "1", TIME, true),
    ("K", "1", [0, 0, 0, 1, 0, 0, 0, 0], true),
    ("mol", "1", [0, 0, 0, 0, 1, 0, 0, 0], true),
    ("C", "1", [0, 0, 0, 0, 0, 1, 0, 0], true),
    ("cd", "1", [0, 0, 0, 0, 0, 0, 1, 0], true),
    ("L", "0.001", VOLUME, true),
    ("l", "0.001", VOLUME, true),
    ("Pa", "1000", [-1, 1, -2, 0, 0, 0, 0, 0], true),
    ("N", "1000", [1, 1, -2, 0, 0, 0, 0, 0], true),
    ("J", "1000", [2, 1, -2, 0, 0, 0, 0, 0], true),
    ("W", "1000", [2, 1, -3, 0, 0, 0, 0, 0], true),
    ("Hz", "1", [0, 0, -1, 0, 0, 0, 0, 0], true),
    ("eq", "1", [0, 0, 0, 0, 1, 0, 0, 0], true),
    ("min", "60", TIME, false),
    ("h", "3600", TIME, false),
    ("d", "86400", TIME, false),
    ("wk", "604800", TIME, false),
    ("mo", "2629800", TIME, false),
    ("a", "31557600", TIME, false),
    ("[in_i]", "0.0254", LENGTH, false),
    ("[ft_i]", "0.3048", LENGTH, false),
    ("[yd_i]", "0.9144", LENGTH, false),
    ("[mi_i]", "1609.344", LENGTH, false),
    ("[lb_av]", "453.59237", MASS, false),
    ("[oz_av]", "28.349523125", MASS, false),
    ("[gr]", "0.06479891", MASS, false),
    ("mm[Hg]", "133322.387415", [-1, 1, -2, 0, 0, 0, 0, 0], false),
];

const PREFIXES: &[(&str, &str)] = &[
    ("da", "10"),
    ("Y", "1e24"),
    ("Z", "1e21"),
    ("E", "1e18"),
    ("P", "1e15"),
    ("T", "1e12"),
    ("G", "1e9"),
    ("M", "1e6"),
    ("k", "1e3"),
    ("h", "1e2"),
    ("d", "1e-1"),
    ("c", "1e-2"),
    ("m", "1e-3"),
    ("u", "1e-6"),
    ("μ", "1e-6"),
    ("n", "1e-9"),
    ("p", "1e-12"),
    ("f", "1e-15"),
    ("a", "1e-18"),
];

/// The FHIRPath calendar duration keywords (singular and plural) and their unit.
pub fn calendar_keyword(unit: &str) -> Option<CalendarUnit> {
    Some(
        match unit
            .strip_suffix('s')
            .filter(|u| *u != "m" && !u.is_empty())
            .unwrap_or(unit)
        {
            "year" => CalendarUnit::Year,
            "month" => CalendarUnit::Month,
            "week" => CalendarUnit::Week,
            "day" => CalendarUnit::Day,
            "hour" => CalendarUnit::Hour,
            "minute" => CalendarUnit::Minute,
            "second" => CalendarUnit::Second,
            "millisecond" => CalendarUnit::Millisecond,
            _ => return None,
        },
    )
}

/// The UCUM time units that may stand in for calendar durations in date arithmetic
/// (`a` and `mo` are deliberately absent: they are not calendar years and months).
pub fn ucum_calendar_unit(unit: &str) -> Option<CalendarUnit> {
    Some(match unit {
        "wk" => CalendarUnit::Week,
        "d" => CalendarUnit::Day,
        "h" => CalendarUnit::Hour,
        "min" => CalendarUnit::Minute,
        "s" => CalendarUnit::Second,
        "ms" => CalendarUnit::Millisecond,
        _ => return None,
    })
}

fn dec(text: &str) -> Decimal {
    Decimal::parse(text).unwrap_or(Decimal::ONE)
}

fn combine(a: Canonical, b: Canonical, sign: i8) -> Option<Canonical> {
    let factor = if sign > 0 {
        a.factor.checked_mul(b.factor)?
    } else {
        a.factor.checked_div(b.factor)?
    };
    let mut dims = a.dims;
    for (d, e) in dims.iter_mut().zip(b.dims) {
        *d = d.checked_add(sign * e)?;
    }
    Some(Canonical { factor, dims })
}

fn power(c: Canonical, exponent: i8) -> Option<Canonical> {
    let mut result = Canonical {
        factor: Decimal::ONE,
        dims: NONE,
    };
    for _ in 0..exponent.unsigned_abs() {
        result = combine(result, c, 1)?;
    }
    if exponent < 0 {
        combine(
            Canonical {
                factor: Decimal::ONE,
                dims: NONE,
            },
            result,
            -1,
        )
    } else {
        Some(result)
    }
}

fn atom(code: &str) -> Option<Canonical> {
    if let Some((_, factor, dims, _)) = ATOMS.iter().find(|(c, ..)| *c == code) {
        return Some(Canonical {
            factor: dec(factor),
            dims: *dims,
        });
    }
    for (prefix, scale) in PREFIXES {
        if let Some(rest) = code.strip_prefix(prefix)
            && let Some((_, factor, dims, true)) = ATOMS.iter().find(|(c, ..)| *c == rest)
        {
            return Some(Canonical {
                factor: dec(scale).checked_mul(dec(factor))?,
                dims: *dims,
            });
        }
    }
    None
}

/// One component: an annotation, a number, a parenthesised term, or an atom with an exponent.
fn component(text: &str) -> Option<Canonical> {
    let text = strip_annotations(text);
    if text.is_empty() {
        // A bare annotation such as `{beats}` is dimensionless.
        return Some(Canonical {
            factor: Decimal::ONE,
            dims: NONE,
        });
    }
    if let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) {
        return parse_term(inner);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Canonical {
            factor: Decimal::parse(&text)?,
            dims: NONE,
        });
    }
    let split = text
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+')
        .len();
    let (code, exponent) = text.split_at(split);
    let base = atom(code)?;
    if exponent.is_empty() {
        Some(base)
    } else {
        power(base, exponent.parse().ok()?)
    }
}

fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `term := ['/'] component (('.' | '/') component)*`, with parentheses nesting.
fn parse_term(text: &str) -> Option<Canonical> {
    let mut result = Canonical {
        factor: Decimal::ONE,
        dims: NONE,
    };
    let mut sign = 1i8;
    let mut depth = 0usize;
    let mut start = 0usize;
    let bytes = text.as_bytes();
    for i in 0..=bytes.len() {
        let c = bytes.get(i).copied();
        match c {
            Some(b'(') | Some(b'[') | Some(b'{') => depth += 1,
            Some(b')') | Some(b']') | Some(b'}') => depth = depth.checked_sub(1)?,
            Some(b'.') | Some(b'/') | None if depth == 0 => {
                let part = &text[start..i];
                if !part.is_empty() {
                    result = combine(result, component(part)?, sign)?;
                } else if i != 0 || c != Some(b'/') {
                    return None;
                }
                sign = if c == Some(b'/') { -1 } else { 1 };
                start = i + 1;
            }
            _ => {}
        }
    }
    Some(result)
}

/// The canonical form of a quantity's unit: a UCUM code or a FHIRPath calendar keyword.
pub fn canonical(unit: &str) -> Option<Canonical> {
    if let Some(calendar) = calendar_keyword(unit) {
        let (factor, dims) = match calendar {
            CalendarUnit::Year => ("12", CALENDAR_MONTH),
            CalendarUnit::Month => ("1", CALENDAR_MONTH),
            CalendarUnit::Week => ("604800", TIME),
            CalendarUnit::Day => ("86400", TIME),
            CalendarUnit::Hour => ("3600", TIME),
            CalendarUnit::Minute => ("60", TIME),
            CalendarUnit::Second => ("1", TIME),
            CalendarUnit::Millisecond => ("0.001", TIME),
        };
        return Some(Canonical {
            factor: dec(factor),
            dims,
        });
    }
    parse_term(unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixed_and_derived_units_reduce_to_base_dimensions() {
        assert_eq!(canonical("mg").unwrap().factor.to_string(), "0.001");
        assert_eq!(canonical("cm.m").unwrap().dims, canonical("m2").unwrap().dims);
        assert_eq!(canonical("m/m").unwrap().dims, NONE);
        assert_eq!(canonical("mL").unwrap().factor, dec("0.000001"));
        assert_eq!(canonical("{beats}/min").unwrap().dims, [0, 0, -1, 0, 0, 0, 0, 0]);
        assert_eq!(canonical("kg/m2").unwrap().dims, [-2, 1, 0, 0, 0, 0, 0, 0]);
        assert!(canonical("[s]").is_none());
    }

    #[test]
    fn calendar_years_are_not_ucum_years() {
        assert_ne!(canonical("year").unwrap().dims, canonical("a").unwrap().dims);
        assert_eq!(canonical("week").unwrap(), canonical("wk").unwrap());
        assert_eq!(calendar_keyword("days"), Some(CalendarUnit::Day));
        assert_eq!(calendar_keyword("ms"), None);
    }
}
