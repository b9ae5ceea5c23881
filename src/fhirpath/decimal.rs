//! FHIRPath `Decimal`: an exact base-10 number that remembers how many fractional digits it was
//! written with (`1.50` has scale 2), because equivalence, `precision()` and the boundary functions
//! depend on the written precision and FHIR decimals must never pass through binary floating point.

use std::cmp::Ordering;
use std::fmt;

/// Largest scale we keep; FHIRPath only requires 8 fractional digits, a few more absorb rounding.
const MAX_SCALE: u32 = 28;

/// `mantissa / 10^scale`.
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

fn pow10(exp: u32) -> Option<i128> {
    10i128.checked_pow(exp)
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { mantissa: 0, scale: 0 };
    pub const ONE: Decimal = Decimal { mantissa: 1, scale: 0 };

    /// `mantissa / 10^scale`.
    pub fn new(mantissa: i128, scale: u32) -> Decimal {
        Decimal { mantissa, scale }
    }

    /// An integer, with scale 0.
    pub fn from_i64(value: i64) -> Decimal {
        Decimal::new(value as i128, 0)
    }

    /// Parses `-12.340`, `1e3`, `1.5E-2` as written (exponents shift the scale, never round).
    pub fn parse(text: &str) -> Option<Decimal> {
        let text = text.trim();
        let (number, exponent) = match text.find(['e', 'E']) {
            Some(at) => (&text[..at], text[at + 1..].parse::<i32>().ok()?),
            None => (text, 0),
        };
        let (negative, digits) = match number.as_bytes().first()? {
            b'-' => (true, &number[1..]),
            b'+' => (false, &number[1..]),
            _ => (false, number),
        };
        let (int_part, frac_part) = match digits.split_once('.') {
            Some((i, f)) if !f.is_empty() => (i, f),
            Some(_) => return None,
            None => (digits, ""),
        };
        if int_part.is_empty() || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int_part.bytes().chain(frac_part.bytes()) {
            mantissa = mantissa.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        if negative {
            mantissa = -mantissa;
        }
        let mut scale = frac_part.len() as i64 - exponent as i64;
        while scale < 0 {
            mantissa = mantissa.checked_mul(10)?;
            scale += 1;
        }
        if scale > MAX_SCALE as i64 + 10 {
            return None;
        }
        Some(Decimal::new(mantissa, scale as u32).limit_scale())
    }

    /// The shortest decimal that round-trips `value`; `None` for NaN and infinities.
    pub fn from_f64(value: f64) -> Option<Decimal> {
        if !value.is_finite() {
            return None;
        }
        // Shortest round-trip text, so 0.1f64 becomes 0.1 and not 0.1000000000000000055…
        Decimal::parse(&format!("{value:?}")).map(|d| d.normalized())
    }

    /// The nearest `f64` (for the transcendental functions only).
    pub fn to_f64(self) -> f64 {
        self.to_string().parse().unwrap_or(f64::NAN)
    }

    /// Number of fractional digits as written.
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// Whether the value is zero, whatever its scale.
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// Whether the value is below zero.
    pub fn is_negative(self) -> bool {
        self.mantissa < 0
    }

    /// Drops trailing fractional zeros (`2.500` → `2.5`, `1.0` → `1`).
    pub fn normalized(self) -> Decimal {
        let mut d = self;
        while d.scale > 0 && d.mantissa % 10 == 0 {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        d
    }

    fn limit_scale(self) -> Decimal {
        if self.scale > MAX_SCALE {
            self.round(MAX_SCALE)
        } else {
            self
        }
    }

    /// The mantissa at a larger scale, if it fits.
    fn rescaled(self, scale: u32) -> Option<i128> {
        debug_assert!(scale >= self.scale);
        self.mantissa.checked_mul(pow10(scale - self.scale)?)
    }

    fn aligned(self, other: Decimal) -> Option<(i128, i128, u32)> {
        let scale = self.scale.max(other.scale);
        Some((self.rescaled(scale)?, other.rescaled(scale)?, scale))
    }

    /// Exact sum at the larger scale; `None` on overflow.
    pub fn checked_add(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other)?;
        Some(Decimal::new(a.checked_add(b)?, scale))
    }

    /// Exact difference at the larger scale; `None` on overflow.
    pub fn checked_sub(self, other: Decimal) -> Option<Decimal> {
        self.checked_add(-other)
    }

    /// Exact product (scales add, capped at 28 digits by rounding); `None` on overflow.
    pub fn checked_mul(self, other: Decimal) -> Option<Decimal> {
        let mut product = Decimal::new(self.mantissa.checked_mul(other.mantissa)?, self.scale + other.scale);
        if product.scale > MAX_SCALE {
            product = product.round(MAX_SCALE);
        }
        Some(product)
    }

    /// Division keeps up to 16 fractional digits beyond the operands' and drops trailing zeros,
    /// so `1 / 2` is `0.5` and `1.2 / 1.8` is `0.6666666666666667`.
    pub fn checked_div(self, other: Decimal) -> Option<Decimal> {
        if other.mantissa == 0 {
            return None;
        }
        let target = 16u32;
        // self/other = (ma * 10^k / mb) * 10^-(sa + k - sb): k = target + 1 + sb gives at least
        // target + 1 fractional digits, unless the mantissa would overflow first.
        let k = target + 1 + other.scale;
        let mut numerator = self.mantissa;
        let mut shift = 0u32;
        while shift < k {
            match numerator.checked_mul(10) {
                Some(n) => numerator = n,
                None => break,
            }
            shift += 1;
        }
        let quotient = numerator / other.mantissa;
        let result_scale = self.scale as i64 + shift as i64 - other.scale as i64;
        let mut result = if result_scale < 0 {
            Decimal::new(quotient.checked_mul(pow10((-result_scale) as u32)?)?, 0)
        } else {
            Decimal::new(quotient, result_scale as u32)
        };
        if result.scale > target {
            result = result.round(target);
        }
        Some(result.normalized())
    }

    /// Truncated division (`div`).
    pub fn checked_div_trunc(self, other: Decimal) -> Option<Decimal> {
        let (a, b, _) = self.aligned(other)?;
        if b == 0 {
            return None;
        }
        Some(Decimal::new(a / b, 0))
    }

    /// Remainder of truncated division (`mod`): sign follows the dividend.
    pub fn checked_rem(self, other: Decimal) -> Option<Decimal> {
        let (a, b, scale) = self.aligned(other)?;
        if b == 0 {
            return None;
        }
        Some(Decimal::new(a % b, scale))
    }

    /// The absolute value, same scale.
    pub fn abs(self) -> Decimal {
        Decimal::new(self.mantissa.abs(), self.scale)
    }

    /// Rounds half away from zero to `digits` fractional digits (never adds digits).
    pub fn round(self, digits: u32) -> Decimal {
        if digits >= self.scale {
            return self;
        }
        let divisor = pow10(self.scale - digits).unwrap_or(i128::MAX);
        let quotient = self.mantissa / divisor;
        let remainder = self.mantissa % divisor;
        let adjust = if remainder.abs() * 2 >= divisor {
            self.mantissa.signum()
        } else {
            0
        };
        Decimal::new(quotient + adjust, digits)
    }

    /// Sets the scale to exactly `digits`, padding with zeros or truncating toward zero.
    pub fn with_scale_truncated(self, digits: u32) -> Option<Decimal> {
        if digits >= self.scale {
            Some(Decimal::new(self.rescaled(digits)?, digits))
        } else {
            Some(Decimal::new(self.mantissa / pow10(self.scale - digits)?, digits))
        }
    }

    /// Pads with zeros up to `digits` fractional digits; never drops digits.
    pub fn with_scale_at_least(self, digits: u32) -> Option<Decimal> {
        if digits > self.scale {
            self.with_scale_truncated(digits)
        } else {
            Some(self)
        }
    }

    /// Toward zero, scale 0.
    pub fn trunc(self) -> Decimal {
        self.with_scale_truncated(0).unwrap_or(self)
    }

    /// Toward negative infinity, scale 0.
    pub fn floor(self) -> Decimal {
        let t = self.trunc();
        if self.is_negative() && t.cmp_value(self) != Ordering::Equal {
            Decimal::new(t.mantissa - 1, 0)
        } else {
            t
        }
    }

    /// Toward positive infinity, scale 0.
    pub fn ceiling(self) -> Decimal {
        let t = self.trunc();
        if !self.is_negative() && t.cmp_value(self) != Ordering::Equal {
            Decimal::new(t.mantissa + 1, 0)
        } else {
            t
        }
    }

    /// The integer value when there is no fractional part.
    pub fn to_i64_exact(self) -> Option<i64> {
        let n = self.normalized();
        if n.scale == 0 {
            i64::try_from(n.mantissa).ok()
        } else {
            None
        }
    }

    /// The integer part, if it fits.
    pub fn to_i64_trunc(self) -> Option<i64> {
        i64::try_from(self.trunc().mantissa).ok()
    }

    /// Numeric comparison, ignoring the written precision.
    pub fn cmp_value(self, other: Decimal) -> Ordering {
        match self.aligned(other) {
            Some((a, b, _)) => a.cmp(&b),
            None => self.to_f64().partial_cmp(&other.to_f64()).unwrap_or(Ordering::Equal),
        }
    }

    /// Equivalence: equal after rounding both to the precision of the less precise operand.
    pub fn equivalent(self, other: Decimal) -> bool {
        let digits = self.scale.min(other.scale);
        self.round(digits).cmp_value(other.round(digits)) == Ordering::Equal
    }

    /// Number of digits a value was written with after the point.
    pub fn precision(self) -> u32 {
        self.scale
    }
}

impl std::ops::Neg for Decimal {
    type Output = Decimal;

    fn neg(self) -> Decimal {
        Decimal::new(-self.mantissa, self.scale)
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Decimal) -> bool {
        self.cmp_value(*other) == Ordering::Equal
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let scale = self.scale as usize;
        if scale == 0 {
            return write!(f, "{sign}{digits}");
        }
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Decimal {
        Decimal::parse(text).unwrap()
    }

    #[test]
    fn parsing_keeps_written_precision() {
        assert_eq!(d("1.50").to_string(), "1.50");
        assert_eq!(d("-0.0034").to_string(), "-0.0034");
        assert_eq!(d("1e3").to_string(), "1000");
        assert_eq!(d("1.5E-2").to_string(), "0.015");
        assert_eq!(d("1234567890987654321.0").to_string(), "1234567890987654321.0");
        assert!(Decimal::parse("1.").is_none());
        assert!(Decimal::parse("1.a").is_none());
        assert!(Decimal::parse(".5").is_none());
    }

    #[test]
    fn equality_ignores_trailing_zeros_but_equivalence_rounds() {
        assert_eq!(d("1.10"), d("1.1"));
        assert!(d("1.2").checked_div(d("1.8")).unwrap().equivalent(d("0.67")));
        assert!(!d("1.2").checked_div(d("1.8")).unwrap().equivalent(d("0.6")));
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(d("1.2").checked_add(d("1.8")).unwrap(), d("3.0"));
        assert_eq!(d("1.8").checked_sub(d("1.2")).unwrap().to_string(), "0.6");
        assert_eq!(d("1.2").checked_mul(d("1.8")).unwrap().to_string(), "2.16");
        assert_eq!(d("1").checked_div(d("2")).unwrap().to_string(), "0.5");
        assert_eq!(d("2").checked_div(d("2")).unwrap().to_string(), "1");
        assert_eq!(d("2.2").checked_rem(d("1.8")).unwrap(), d("0.4"));
        assert_eq!(d("2.2").checked_div_trunc(d("1.8")).unwrap(), d("1"));
        assert!(d("1").checked_div(d("0")).is_none());
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(d("3.14159").round(3).to_string(), "3.142");
        assert_eq!(d("-1.5").round(0).to_string(), "-2");
        assert_eq!(d("-2.1").floor().to_string(), "-3");
        assert_eq!(d("-1.1").ceiling().to_string(), "-1");
        assert_eq!(d("-1.56").trunc().to_string(), "-1");
    }
}
