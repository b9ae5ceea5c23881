//! End-to-end tests of the engine on small FHIR resources (HL7's suite lives in
//! `tests/fhirpath_suite.rs`; these pin the FHIR-specific behaviour that suite barely touches).

use super::*;
use serde_json::json;

fn render(items: &[Item<'_>]) -> Vec<String> {
    items.iter().map(|i| i.to_string()).collect()
}

fn eval(expression: &str, resource: &Value) -> Vec<String> {
    let expr = Expression::parse(expression).unwrap();
    render(&expr.evaluate(resource, &Context::new()).unwrap())
}

const MODEL: &str = r#"{"fhirVersion":"4.0.1","types":{
    "Patient":{"kind":"resource","base":"DomainResource","elements":{
        "birthDate":{"types":["date"],"array":false,"min":0,"choice":false},
        "deceased":{"types":["boolean","dateTime"],"array":false,"min":0,"choice":true},
        "name":{"types":["HumanName"],"array":true,"min":0,"choice":false}}},
    "HumanName":{"kind":"complex-type","base":"Element","elements":{
        "given":{"types":["string"],"array":true,"min":0,"choice":false}}},
    "DomainResource":{"kind":"resource","base":"Resource","elements":{}},
    "Resource":{"kind":"resource","base":null,"elements":{}}
}}"#;

fn patient() -> Value {
    json!({
        "resourceType": "Patient",
        "id": "p",
        "birthDate": "1974-12-25",
        "_birthDate": {"extension": [{"url": "http://example.org/time", "valueDateTime": "1974-12-25T14:35:45-05:00"}]},
        "name": [{"given": ["Peter", null, "Jim"], "_given": [null, {"id": "g2", "extension": [{"url": "x"}]}, null]}],
        "deceasedBoolean": false,
        "contained": [{"resourceType": "Organization", "id": "org", "name": "Acme"}],
        "managingOrganization": {"reference": "#org"}
    })
}

#[test]
fn arrays_flatten_and_primitives_keep_their_underscore_part() {
    let p = patient();
    assert_eq!(eval("name.given", &p), ["Peter", "", "Jim"]);
    assert_eq!(eval("name.given.select(hasValue())", &p), ["true", "false", "true"]);
    assert_eq!(eval("name.given[1].id", &p), ["g2"]);
    assert_eq!(eval("birthDate.extension.url", &p), ["http://example.org/time"]);
    assert_eq!(
        eval("Patient.birthDate.extension('http://example.org/time').value", &p),
        ["1974-12-25T14:35:45-05:00"]
    );
}

#[test]
fn the_first_identifier_may_name_the_resource_type() {
    let p = patient();
    assert_eq!(eval("Patient.id", &p), ["p"]);
    assert!(eval("Observation.id", &p).is_empty());
    assert_eq!(eval("id", &p), ["p"]);
}

#[test]
fn choice_elements_are_found_without_a_model() {
    // Parsed from text: json!() would pass 1.50 through f64.
    let obs: Value = serde_json::from_str(
        r#"{"resourceType":"Observation","valueQuantity":{"value":1.50,"unit":"mg","code":"mg"}}"#,
    )
    .unwrap();
    assert_eq!(eval("Observation.value.value", &obs), ["1.50"]);
    assert_eq!(eval("Observation.value is Quantity", &obs), ["true"]);
    assert_eq!(eval("Observation.value = 1.5 'mg'", &obs), ["true"]);
    assert_eq!(eval("Observation.value > 1000 'ug'", &obs), ["true"]);
    assert_eq!(eval("Patient.deceased", &patient()), ["false"]);
}

#[test]
fn decimals_from_json_keep_their_written_precision() {
    let obs: Value = serde_json::from_str(r#"{"resourceType":"Observation","valueDecimal":0.10}"#).unwrap();
    assert_eq!(eval("value", &obs), ["0.10"]);
    assert_eq!(eval("value.precision()", &obs), ["2"]);
    assert_eq!(eval("value = 0.1", &obs), ["true"]);
    assert_eq!(eval("value + 0.2", &obs), ["0.30"]);
}

#[test]
fn untyped_dates_compare_with_date_literals() {
    let p = patient();
    assert_eq!(eval("birthDate < @2000-01-01", &p), ["true"]);
    assert_eq!(eval("birthDate = @1974-12", &p), Vec::<String>::new());
    assert_eq!(eval("birthDate + 1 year", &p), ["1975-12-25"]);
}

#[test]
fn the_model_types_elements_and_strict_mode_rejects_unknown_ones() {
    let model = JsonModel::from_json(MODEL).unwrap();
    let p = patient();
    let ctx = Context::new().with_model(&model);
    let typed = Expression::parse("birthDate").unwrap();
    let result = typed.evaluate(&p, &ctx).unwrap();
    assert_eq!(result[0].type_name().1, "date");
    assert!(matches!(result[0].to_system(), Some(Item::Date(_))));
    let is_date = Expression::parse("Patient.birthDate.is(date) and Patient.is(Resource)").unwrap();
    assert_eq!(is_date.evaluate_boolean(&p, &ctx), Ok(Some(true)));

    let unknown = Expression::parse("name.given1").unwrap();
    assert!(unknown.evaluate(&p, &ctx).unwrap().is_empty());
    let strict = Context::new().with_model(&model).strict(true);
    assert!(unknown.evaluate(&p, &strict).is_err());
}

#[test]
fn resolve_finds_contained_resources_bundle_entries_and_asks_the_resolver() {
    let p = patient();
    assert_eq!(eval("managingOrganization.resolve().name", &p), ["Acme"]);
    let bundle = json!({"resourceType": "Bundle", "entry": [
        {"fullUrl": "http://x/Patient/1", "resource": {"resourceType": "Patient", "id": "1", "gender": "male"}},
        {"resource": {"resourceType": "Observation", "subject": {"reference": "Patient/1"}}}
    ]});
    assert_eq!(
        eval("entry.resource.ofType(Observation).subject.resolve().gender", &bundle),
        ["male"]
    );

    let elsewhere = json!({"resourceType": "Practitioner", "id": "d", "active": true});
    let resolver = |reference: &str| (reference == "Practitioner/d").then_some(&elsewhere);
    let ctx = Context::new().with_resolver(&resolver);
    let obs = json!({"resourceType": "Observation", "performer": [{"reference": "Practitioner/d"}]});
    let expr = Expression::parse("performer.resolve().active").unwrap();
    assert_eq!(render(&expr.evaluate(&obs, &ctx).unwrap()), ["true"]);
}

#[test]
fn reference_stubs_answer_type_questions_about_unresolvable_references() {
    let obs = json!({"resourceType": "Observation", "subject": {"reference": "Patient/123"}});
    let expr = Expression::parse("subject.where(resolve() is Patient).reference").unwrap();
    assert!(expr.evaluate(&obs, &Context::new()).unwrap().is_empty());
    let ctx = Context::new().with_reference_stubs(true);
    assert_eq!(render(&expr.evaluate(&obs, &ctx).unwrap()), ["Patient/123"]);
}

#[test]
fn variables_and_external_constants() {
    let p = patient();
    let ctx = Context::new().with_variable("who", vec![Item::string("Jim")]);
    let expr =
        Expression::parse("name.given contains %who and %resource.id = 'p' and %ucum.startsWith('http')").unwrap();
    assert_eq!(expr.evaluate_boolean(&p, &ctx), Ok(Some(true)));
    assert!(
        Expression::parse("%missing")
            .unwrap()
            .evaluate(&p, &Context::new())
            .is_err()
    );
}

#[test]
fn logic_is_three_valued_and_equality_differs_from_equivalence() {
    let empty = json!({});
    assert!(eval("{} and true", &empty).is_empty());
    assert_eq!(eval("{} and false", &empty), ["false"]);
    assert_eq!(eval("{} implies true", &empty), ["true"]);
    assert_eq!(eval("'Abc  d' = 'abc d'", &empty), ["false"]);
    assert_eq!(eval("'Abc  d' ~ 'abc d'", &empty), ["true"]);
    assert_eq!(eval("1.5 ~ 1.50", &empty), ["true"]);
    assert!(eval("@2012-04-15 = @2012-04-15T10:00:00", &empty).is_empty());
    assert_eq!(eval("@2012-04-15 ~ @2012-04-15T10:00:00", &empty), ["false"]);
}

#[test]
fn date_arithmetic_uses_calendar_durations() {
    let empty = json!({});
    assert_eq!(eval("@2019-01-31 + 1 month", &empty), ["2019-02-28"]);
    assert_eq!(
        eval("@2019-03-01T10:00:00Z - 90 minutes", &empty),
        ["2019-03-01T08:30:00Z"]
    );
    assert!(
        Expression::parse("@2019-01-01 + 1 'mo'")
            .unwrap()
            .evaluate(&empty, &Context::new())
            .is_err()
    );
}

#[test]
fn now_is_fixed_by_the_context() {
    let fixed = chrono::DateTime::parse_from_rfc3339("2024-02-29T23:30:00+02:00").unwrap();
    let ctx = Context::new().with_now(fixed);
    let empty = json!({});
    let today = Expression::parse("today()").unwrap();
    assert_eq!(render(&today.evaluate(&empty, &ctx).unwrap()), ["2024-02-29"]);
    let now = Expression::parse("now()").unwrap();
    assert_eq!(
        render(&now.evaluate(&empty, &ctx).unwrap()),
        ["2024-02-29T23:30:00.000+02:00"]
    );
}

#[test]
fn errors_are_reported_not_swallowed() {
    let p = patient();
    assert!(
        Expression::parse("name.given.single()")
            .unwrap()
            .evaluate(&p, &Context::new())
            .is_err()
    );
    assert!(
        Expression::parse("'a' - 'b'")
            .unwrap()
            .evaluate(&p, &Context::new())
            .is_err()
    );
    assert!(Expression::parse("name.foo(").is_err());
    assert!(Expression::parse("@2019-13-01").is_err());
}
