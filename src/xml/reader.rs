//! XML → JSON, streaming with quick-xml. Every element must be known to the type model; values are
//! typed by it (booleans and numbers become JSON booleans and numbers, numbers keeping their
//! written text); XHTML narrative is taken as its exact source text.

use crate::error::{Error, Result};
use crate::model::structure::{TypeDef, TypeKind, TypeModel};
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Reader, XmlVersion};
use serde_json::{Map, Value};

/// Reads a FHIR XML resource into FHIR JSON.
pub fn from_xml(text: &str) -> Result<Value> {
    let mut parser = Parser::new(text);
    let (event, _) = parser.next()?;
    match event {
        Event::Start(start) => parser.resource(&start, false, "").map(Value::Object),
        Event::Empty(start) => parser.resource(&start, true, "").map(Value::Object),
        Event::Eof => Err(Error::structure("the XML document has no root element")),
        _ => Err(Error::structure("unexpected content before the root element")),
    }
}

/// The deepest nesting of elements read, as JSON bodies are limited to 128 levels: the reader
/// recurses per element, and a body of a few megabytes could otherwise nest deep enough to
/// exhaust the stack.
const MAX_DEPTH: usize = 128;

struct Parser<'a> {
    reader: Reader<&'a [u8]>,
    text: &'a str,
    /// Elements open around the one being read.
    depth: usize,
}

fn malformed(e: impl std::fmt::Display) -> Error {
    Error::structure(format!("the body is not well-formed XML: {e}"))
}

fn local_name(start: &BytesStart<'_>) -> Result<String> {
    Ok(start.local_name().as_ref().to_owned())
}

/// The attribute `name` of an element, unescaped and normalised as XML prescribes.
fn attribute(start: &BytesStart<'_>, name: &str) -> Result<Option<String>> {
    for attribute in start.attributes() {
        let attribute = attribute.map_err(malformed)?;
        if attribute.key.as_ref() == name {
            return Ok(Some(
                attribute
                    .normalized_value(XmlVersion::Implicit1_0)
                    .map_err(malformed)?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Parser<'a> {
        let mut reader = Reader::from_str(text);
        reader.config_mut().trim_text(true);
        Parser { reader, text, depth: 0 }
    }

    /// The next event that matters, with the byte offset where it starts.
    fn next(&mut self) -> Result<(Event<'a>, usize)> {
        loop {
            let start = self.reader.buffer_position() as usize;
            let event = self.reader.read_event().map_err(malformed)?;
            match event {
                Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => continue,
                other => return Ok((other, start)),
            }
        }
    }

    fn resource(&mut self, start: &BytesStart<'_>, empty: bool, path: &str) -> Result<Map<String, Value>> {
        let name = local_name(start)?;
        if path.is_empty() && attribute(start, "xmlns")?.as_deref() != Some(super::FHIR_NS) {
            return Err(Error::structure(format!(
                "the root element must be in the FHIR namespace ({})",
                super::FHIR_NS
            )));
        }
        let model = TypeModel::r4();
        let Some(type_def) = model
            .get(&name)
            .filter(|t| t.kind == TypeKind::Resource && !t.is_abstract)
        else {
            return Err(Error::invalid(format!("<{name}> is not a FHIR resource type")).at(path.to_owned()));
        };
        let mut object = Map::new();
        object.insert("resourceType".into(), Value::String(name.clone()));
        if !empty {
            let path = if path.is_empty() {
                name
            } else {
                format!("{path}.{name}")
            };
            self.children(&mut object, type_def, &path)?;
        }
        Ok(object)
    }

    /// Reads child elements into `object` until the end tag of the enclosing element.
    fn children(&mut self, object: &mut Map<String, Value>, type_def: &TypeDef, path: &str) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(Error::structure(format!("the XML nests elements deeper than {MAX_DEPTH} levels")).at(path));
        }
        let read = self.children_within(object, type_def, path);
        self.depth -= 1;
        read
    }

    fn children_within(&mut self, object: &mut Map<String, Value>, type_def: &TypeDef, path: &str) -> Result<()> {
        loop {
            let (event, offset) = self.next()?;
            match event {
                Event::End(_) => break,
                Event::Start(start) => self.element(object, type_def, &start, false, offset, path)?,
                Event::Empty(start) => self.element(object, type_def, &start, true, offset, path)?,
                Event::Eof => return Err(Error::structure(format!("the XML ends inside {path}"))),
                _ => {
                    return Err(Error::structure(format!(
                        "unexpected text in {path}: FHIR XML has values in attributes"
                    ))
                    .at(path));
                }
            }
        }
        drop_all_null_arrays(object);
        Ok(())
    }

    fn element(
        &mut self,
        object: &mut Map<String, Value>,
        type_def: &TypeDef,
        start: &BytesStart<'_>,
        empty: bool,
        offset: usize,
        path: &str,
    ) -> Result<()> {
        let model = TypeModel::r4();
        let name = local_name(start)?;
        let child_path = format!("{path}.{name}");
        let Some((element, element_type)) = type_def.resolve(&name) else {
            return Err(Error::structure(format!("unknown element <{name}> in {}", type_def.name)).at(child_path));
        };
        let (array, element_type) = (element.array, element_type.to_owned());
        if element_type == "xhtml" {
            if !empty {
                self.skip_element()?;
            }
            let end = self.reader.buffer_position() as usize;
            let xhtml = canonical_xhtml(self.text[offset..end].trim_start());
            return insert(object, array, &name, Value::String(xhtml), &child_path);
        }
        if model.is_primitive(&element_type) {
            let value = attribute(start, "value")?
                .map(|v| primitive_value(&element_type, v, &child_path))
                .transpose()?;
            let mut extra = Map::new();
            if let Some(id) = attribute(start, "id")? {
                extra.insert("id".into(), Value::String(id));
            }
            if !empty {
                let primitive = model.get(&element_type).expect("primitive types are in the model");
                let mut children = Map::new();
                self.children(&mut children, primitive, &child_path)?;
                if let Some(extensions) = children.remove("extension") {
                    extra.insert("extension".into(), extensions);
                }
                if let Some(other) = children.keys().next() {
                    return Err(
                        Error::structure(format!("<{other}> is not allowed in a primitive element")).at(child_path),
                    );
                }
            }
            if value.is_none() && extra.is_empty() {
                return Err(Error::structure(format!("<{name}> has neither a value nor extensions")).at(child_path));
            }
            let extra = (!extra.is_empty()).then_some(Value::Object(extra));
            return insert_primitive(object, array, &name, value, extra, &child_path);
        }
        if model.is_a(&element_type, "Resource") {
            if empty {
                return Err(Error::structure(format!("<{name}> must contain a resource")).at(child_path));
            }
            let (event, _) = self.next()?;
            let resource = match event {
                Event::Start(inner) => self.resource(&inner, false, &child_path)?,
                Event::Empty(inner) => self.resource(&inner, true, &child_path)?,
                _ => return Err(Error::structure(format!("<{name}> must contain a resource")).at(child_path)),
            };
            match self.next()?.0 {
                Event::End(_) => {}
                _ => return Err(Error::structure(format!("<{name}> may contain only one resource")).at(child_path)),
            }
            return insert(object, array, &name, Value::Object(resource), &child_path);
        }
        let Some(complex) = model.get(&element_type) else {
            return Err(Error::internal(format!("type {element_type} missing from the model")));
        };
        let mut child = Map::new();
        for attribute_name in ["id", "url"] {
            if complex.element(attribute_name).is_some()
                && let Some(value) = attribute(start, attribute_name)?
            {
                child.insert(attribute_name.into(), Value::String(value));
            }
        }
        if !empty {
            self.children(&mut child, complex, &child_path)?;
        }
        insert(object, array, &name, Value::Object(child), &child_path)
    }

    /// Skips to the end tag matching the start tag just read (for XHTML, which is kept as text).
    fn skip_element(&mut self) -> Result<()> {
        let mut depth = 1usize;
        while depth > 0 {
            match self.reader.read_event().map_err(malformed)? {
                Event::Start(_) => depth += 1,
                Event::End(_) => depth -= 1,
                Event::Eof => return Err(Error::structure("the XML ends inside the narrative")),
                _ => {}
            }
        }
        Ok(())
    }
}

/// The narrative's XHTML as FHIR JSON carries it: numeric character references (`&#39;`) become
/// the characters they stand for, except the ones XML requires escaped (`<`, `>`, `&`, `"`), which
/// is how HL7's own JSON writes narrative. Line ends are normalised to `\n`, as an XML parser
/// must (XML 1.0 §2.11), since the narrative is taken as source text rather than parsed.
fn canonical_xhtml(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw.as_str();
    while let Some(at) = rest.find("&#") {
        out.push_str(&rest[..at]);
        let candidate = &rest[at..];
        let decoded = candidate.find(';').and_then(|end| {
            let number = &candidate[2..end];
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
                .filter(|c| !matches!(c, '<' | '>' | '&' | '"'))
                .map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, length)) => {
                out.push(c);
                rest = &candidate[length..];
            }
            None => {
                out.push_str("&#");
                rest = &candidate[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A primitive's JSON value: booleans and numbers by their FHIR type, the rest as strings.
fn primitive_value(type_name: &str, text: String, path: &str) -> Result<Value> {
    let bad = |what: &str| Error::invalid(format!("'{text}' is not a valid {what}")).at(path.to_owned());
    match type_name {
        "boolean" => match text.as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(bad("boolean")),
        },
        "integer" | "positiveInt" | "unsignedInt" | "decimal" => {
            let integer = type_name != "decimal";
            if !is_json_number(&text, integer) {
                return Err(bad(type_name));
            }
            serde_json::from_str::<serde_json::Number>(&text)
                .map(Value::Number)
                .map_err(|_| bad(type_name))
        }
        _ => Ok(Value::String(text)),
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, without fraction or exponent for integers.
fn is_json_number(text: &str, integer: bool) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (unsigned, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let whole_ok = digits(whole) && (whole == "0" || !whole.starts_with('0'));
    let rest_ok = fraction.is_none_or(digits) && exponent.is_none_or(digits);
    whole_ok && rest_ok && (!integer || (fraction.is_none() && exponent.is_none()))
}

fn insert(object: &mut Map<String, Value>, array: bool, name: &str, value: Value, path: &str) -> Result<()> {
    if array {
        match object.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
            Value::Array(items) => items.push(value),
            _ => unreachable!("array elements are only ever inserted as arrays"),
        }
        return Ok(());
    }
    if object.contains_key(name) {
        return Err(Error::structure(format!("<{name}> may appear only once here")).at(path.to_owned()));
    }
    object.insert(name.to_owned(), value);
    Ok(())
}

/// A primitive and its `_name` sibling (id, extensions). In arrays both lists stay aligned, with
/// nulls where one side is missing; lists that end up all null are dropped afterwards.
fn insert_primitive(
    object: &mut Map<String, Value>,
    array: bool,
    name: &str,
    value: Option<Value>,
    extra: Option<Value>,
    path: &str,
) -> Result<()> {
    let extra_name = format!("_{name}");
    if array {
        insert(object, true, name, value.unwrap_or(Value::Null), path)?;
        return insert(object, true, &extra_name, extra.unwrap_or(Value::Null), path);
    }
    if let Some(value) = value {
        insert(object, false, name, value, path)?;
    }
    if let Some(extra) = extra {
        insert(object, false, &extra_name, extra, path)?;
    }
    Ok(())
}

fn drop_all_null_arrays(object: &mut Map<String, Value>) {
    object.retain(
        |_, value| !matches!(value, Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_null)),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_not_a_stack_overflow() {
        let nested = |levels: usize| {
            format!(
                r#"<Patient xmlns="http://hl7.org/fhir">{}{}</Patient>"#,
                r#"<extension url="a">"#.repeat(levels),
                "</extension>".repeat(levels)
            )
        };
        let refused = from_xml(&nested(200_000)).unwrap_err();
        assert!(refused.to_string().contains("deeper than 128"), "{refused}");
        assert!(from_xml(&nested(MAX_DEPTH - 1)).is_ok());
        assert!(from_xml(&nested(MAX_DEPTH + 1)).is_err());
    }

    #[test]
    fn a_narrative_carriage_return_survives_json_to_xml_and_back() {
        let resource = serde_json::json!({"resourceType": "Patient", "text": {"status": "generated",
            "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">a\r\nb</div>"}});
        let xml = crate::xml::to_xml(&resource).unwrap();
        assert_eq!(from_xml(&xml).unwrap(), resource);
    }

    #[test]
    fn reads_primitives_choices_extensions_and_narrative() {
        let xml = r#"<?xml version="1.0"?>
            <Patient xmlns="http://hl7.org/fhir">
              <id value="p1"/>
              <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Hi &amp; bye</p></div></text>
              <active value="true"/>
              <name><given value="A"/><given id="g2"><extension url="http://x"><valueInteger value="7"/></extension></given></name>
              <birthDate value="1970-01-01"><extension url="http://t"><valueDecimal value="1.50"/></extension></birthDate>
              <deceasedBoolean value="false"/>
            </Patient>"#;
        let value = from_xml(xml).unwrap();
        // Parsed from text (not `json!`) so that 1.50 keeps its written precision.
        let expected: Value = serde_json::from_str(
            r#"{"resourceType": "Patient", "id": "p1",
                "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Hi &amp; bye</p></div>"},
                "active": true,
                "name": [{"given": ["A", null], "_given": [null, {"id": "g2", "extension": [{"url": "http://x", "valueInteger": 7}]}]}],
                "birthDate": "1970-01-01",
                "_birthDate": {"extension": [{"url": "http://t", "valueDecimal": 1.50}]},
                "deceasedBoolean": false}"#,
        )
        .unwrap();
        assert_eq!(value, expected);
        assert!(value.to_string().contains("1.50"), "decimal text is kept");
    }

    #[test]
    fn rejects_unknown_elements_wrong_namespace_and_bad_values() {
        let unknown = from_xml(r#"<Patient xmlns="http://hl7.org/fhir"><foo value="1"/></Patient>"#).unwrap_err();
        assert_eq!(unknown.issues[0].expression.as_deref(), Some("Patient.foo"));
        assert!(from_xml(r#"<Patient><active value="true"/></Patient>"#).is_err());
        let bad = from_xml(r#"<Patient xmlns="http://hl7.org/fhir"><active value="yes"/></Patient>"#).unwrap_err();
        assert_eq!(bad.issues[0].expression.as_deref(), Some("Patient.active"));
        assert!(from_xml(r#"<Patient xmlns="http://hl7.org/fhir"><active value="true"></Patient>"#).is_err());
        assert!(
            from_xml(r#"<Patient xmlns="http://hl7.org/fhir"><gender value="x"/><gender value="y"/></Patient>"#)
                .is_err()
        );
    }

    #[test]
    fn narrative_character_references_become_characters_except_markup() {
        assert_eq!(
            canonical_xhtml("a &#39;b&#x27; &#60; &#38; &amp; &#34;"),
            "a 'b' &#60; &#38; &amp; &#34;"
        );
        assert_eq!(canonical_xhtml("&#notanumber; &#"), "&#notanumber; &#");
        assert_eq!(canonical_xhtml("<p>a\r\nb\rc</p>"), "<p>a\nb\nc</p>");
        assert_eq!(
            canonical_xhtml("<p>a&#13;\nb</p>"),
            "<p>a\r\nb</p>",
            "an escaped carriage return stays"
        );
    }

    #[test]
    fn numbers_follow_json_grammar() {
        assert!(is_json_number("-1.50e+3", false));
        assert!(!is_json_number("1.5", true));
        assert!(!is_json_number("01", false));
        assert!(!is_json_number(".5", false));
        assert!(!is_json_number("1.", false));
    }
}
