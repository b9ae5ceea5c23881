//! Quantity parameters: the value's precision range with system, code and unit, from Quantity and
//! its specialisations (Age, Duration, Distance, Count, SimpleQuantity, MoneyQuantity) and Money
//! (its currency as an ISO 4217 code).

use crate::fhirpath::Item;
use crate::search::IndexValue;
use serde_json::Value;

use super::number::precision_range;
use super::text;

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    let Some((object, type_name)) = super::object(item) else {
        return;
    };
    let Some((low, high)) = object
        .get("value")
        .and_then(Value::as_number)
        .and_then(|n| precision_range(&n.to_string()))
    else {
        return;
    };
    let value = if type_name == Some("Money") {
        IndexValue::Quantity {
            low,
            high,
            system: Some("urn:iso:std:iso:4217".into()),
            code: text(object, "currency"),
            unit: text(object, "currency"),
        }
    } else {
        IndexValue::Quantity {
            low,
            high,
            system: text(object, "system"),
            code: text(object, "code"),
            unit: text(object, "unit"),
        }
    };
    push(value);
}
