//! FHIRPath `Quantity`: a decimal value with a UCUM unit or a calendar duration keyword.
//! Equality, equivalence and ordering convert through [`units`](super::units) when both units
//! measure the same dimension; otherwise the quantities are incomparable (an empty result).

use super::dates::CalendarUnit;
use super::decimal::Decimal;
use super::units::{self, calendar_keyword};
use std::cmp::Ordering;
use std::fmt;

#[derive(Clone, Debug)]
pub struct Quantity {
    pub value: Decimal,
    /// A UCUM code (`mg`, `1`, `[lb_av]`) or a calendar keyword as written (`days`, `week`).
    pub unit: String,
}

impl Quantity {
    /// A quantity of `value` in `unit` (a UCUM code or calendar keyword).
    pub fn new(value: Decimal, unit: impl Into<String>) -> Quantity {
        Quantity {
            value,
            unit: unit.into(),
        }
    }

    /// The calendar unit this quantity can add to a date, if any. UCUM `a` and `mo` are refused
    /// because their lengths are averages, not calendar years and months.
    pub fn calendar_unit(&self) -> Option<CalendarUnit> {
        calendar_keyword(&self.unit).or_else(|| units::ucum_calendar_unit(&self.unit))
    }

    /// `other`'s value expressed in this quantity's unit, when the dimensions agree.
    pub fn convert_to_unit_of(&self, other: &Quantity) -> Option<Decimal> {
        if self.unit == other.unit {
            return Some(other.value);
        }
        let mine = units::canonical(&self.unit)?;
        let theirs = units::canonical(&other.unit)?;
        if mine.dims != theirs.dims {
            return None;
        }
        other.value.checked_mul(theirs.factor)?.checked_div(mine.factor)
    }

    /// Whether the two units measure the same dimension.
    pub fn comparable(&self, other: &Quantity) -> bool {
        self.convert_to_unit_of(other).is_some()
    }

    /// Ordering after conversion; `None` when the units measure different things.
    pub fn compare(&self, other: &Quantity) -> Option<Ordering> {
        if self.unit == other.unit {
            return Some(self.value.cmp_value(other.value));
        }
        let mine = units::canonical(&self.unit)?;
        let theirs = units::canonical(&other.unit)?;
        if mine.dims != theirs.dims {
            return None;
        }
        let a = self.value.checked_mul(mine.factor)?;
        let b = other.value.checked_mul(theirs.factor)?;
        Some(a.cmp_value(b))
    }

    /// `=`: `None` when the units are not comparable.
    pub fn equals(&self, other: &Quantity) -> Option<bool> {
        self.compare(other).map(|o| o == Ordering::Equal)
    }

    /// Equivalence compares at the precision of the less precise value.
    pub fn equivalent(&self, other: &Quantity) -> bool {
        match self.convert_to_unit_of(other) {
            Some(converted) => {
                let digits = self.value.scale().min(other.value.scale());
                self.value.round(digits) == converted.round(digits)
            }
            None => false,
        }
    }

    /// Sum (`sign` 1) or difference (`sign` -1) in this quantity's unit.
    pub fn add(&self, other: &Quantity, sign: i8) -> Option<Quantity> {
        let converted = self.convert_to_unit_of(other)?;
        let converted = if sign < 0 { -converted } else { converted };
        Some(Quantity::new(self.value.checked_add(converted)?, self.unit.clone()))
    }

    /// Product; the unit is the UCUM product of both units.
    pub fn multiply(&self, other: &Quantity) -> Option<Quantity> {
        let unit = match (self.unit.as_str(), other.unit.as_str()) {
            ("1", u) | (u, "1") => u.to_owned(),
            (a, b) => format!("({}).({})", ucum_code(a)?, ucum_code(b)?),
        };
        Some(Quantity::new(self.value.checked_mul(other.value)?, unit))
    }

    /// Quotient; the unit is the UCUM quotient of both units.
    pub fn divide(&self, other: &Quantity) -> Option<Quantity> {
        let unit = match (self.unit.as_str(), other.unit.as_str()) {
            (a, b) if a == b => "1".to_owned(),
            (a, "1") => a.to_owned(),
            (a, b) => format!("({})/({})", ucum_code(a)?, ucum_code(b)?),
        };
        Some(Quantity::new(self.value.checked_div(other.value)?, unit))
    }
}

/// Calendar keywords become UCUM codes when units are combined; years and months have none.
fn ucum_code(unit: &str) -> Option<&str> {
    Some(match calendar_keyword(unit) {
        None => unit,
        Some(CalendarUnit::Week) => "wk",
        Some(CalendarUnit::Day) => "d",
        Some(CalendarUnit::Hour) => "h",
        Some(CalendarUnit::Minute) => "min",
        Some(CalendarUnit::Second) => "s",
        Some(CalendarUnit::Millisecond) => "ms",
        Some(_) => return None,
    })
}

/// `1 'wk'` for UCUM units, `1 week` for calendar keywords.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if calendar_keyword(&self.unit).is_some() {
            write!(f, "{} {}", self.value, self.unit)
        } else {
            write!(f, "{} '{}'", self.value, self.unit)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(value: &str, unit: &str) -> Quantity {
        Quantity::new(Decimal::parse(value).unwrap(), unit)
    }

    #[test]
    fn equality_converts_units_and_equivalence_rounds() {
        assert_eq!(q("4.0000", "g").equals(&q("4000.0", "mg")), Some(true));
        assert_eq!(q("4", "g").equals(&q("4040", "mg")), Some(false));
        assert!(q("4", "g").equivalent(&q("4040", "mg")));
        assert_eq!(q("7", "days").equals(&q("1", "week")), Some(true));
        assert_eq!(q("1", "mo").equals(&q("1", "month")), None);
    }

    #[test]
    fn products_and_quotients_carry_units() {
        let area = q("2.0", "cm").multiply(&q("2.0", "m")).unwrap();
        assert_eq!(area.equals(&q("0.040", "m2")), Some(true));
        let density = q("4.0", "g").divide(&q("2.0", "m")).unwrap();
        assert_eq!(density.equals(&q("2", "g/m")), Some(true));
        assert_eq!(
            q("1.0", "m").divide(&q("1.0", "m")).unwrap().equals(&q("1", "1")),
            Some(true)
        );
    }
}
