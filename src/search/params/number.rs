//! Number parameters: the range a number stands for by its written precision (`1.5` is
//! `[1.45, 1.55)`, `100` is `[99.5, 100.5)`).

use crate::fhirpath::Item;
use crate::search::IndexValue;
use crate::search::extract::primitive_text;

/// `[low, high)` of a decimal written as `text`.
pub fn precision_range(text: &str) -> Option<(f64, f64)> {
    let value: f64 = text.parse().ok()?;
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().ok()?),
        None => (text, 0),
    };
    let decimals = mantissa.split_once('.').map_or(0, |(_, f)| f.len() as i32);
    let half = 0.5 * 10f64.powi(exponent - decimals);
    Some((value - half, value + half))
}

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    if let Some((low, high)) = primitive_text(item).as_deref().and_then(precision_range) {
        push(IndexValue::Number { low, high });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn precision_gives_the_range() {
        let (low, high) = super::precision_range("1.5").unwrap();
        assert!((low - 1.45).abs() < 1e-9 && (high - 1.55).abs() < 1e-9);
        assert_eq!(super::precision_range("100"), Some((99.5, 100.5)));
        // Three significant digits: precise to the unit.
        assert_eq!(super::precision_range("1.00e2"), Some((99.5, 100.5)));
        let (low, high) = super::precision_range("1.000e2").unwrap();
        assert!((low - 99.95).abs() < 1e-9 && (high - 100.05).abs() < 1e-9);
    }
}
