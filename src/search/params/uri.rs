//! Uri parameters: the uri, url or canonical as written.

use crate::fhirpath::Item;
use crate::search::IndexValue;
use crate::search::extract::primitive_text;

pub fn extract(item: &Item<'_>, push: &mut impl FnMut(IndexValue)) {
    if let Some(uri) = primitive_text(item) {
        push(IndexValue::Uri { uri: uri.into_owned() });
    }
}
