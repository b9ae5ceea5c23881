//! Search (search.html): every parameter type, modifiers, prefixes, chains, _has, includes,
//! sorting, paging, totals and subsets, on both backends.

use crate::harness::TestApp;
use serde_json::{Value, json};

crate::on_both_backends!(
    strings_match_prefix_without_case_or_accents_and_exact_and_contains,
    tokens_match_code_system_text_and_not,
    dates_compare_ranges_by_precision_and_prefix,
    numbers_and_quantities_compare_with_prefixes_and_units,
    references_match_by_type_id_bare_id_url_and_type_modifier,
    commas_are_or_repeats_are_and_and_escapes_work,
    missing_finds_resources_without_a_value,
    chains_and_reverse_chains_follow_references,
    includes_and_revincludes_add_entries_once,
    sort_orders_by_several_keys_and_direction,
    paging_neither_repeats_nor_skips_while_writes_happen,
    previous_links_walk_back,
    unsorted_pages_of_one_parameter_walk_both_ways,
    sorted_pages_walk_both_ways_over_repeated_and_missing_values,
    totals_summary_and_elements,
    post_search_gives_the_same_results_as_get,
    system_and_compartment_searches,
    unknown_parameters_are_ignored_or_refused_when_strict,
    malformed_values_are_400_naming_the_parameter,
    updates_and_deletes_change_what_is_found,
    id_and_last_updated,
    common_parameters_tag_profile_security_and_source,
    composites_match_components_within_one_element,
    text_and_content_search_words,
    reference_identifier_and_identifier_of_type,
    in_and_not_in_use_value_sets_stored_here,
    list_finds_the_entries_of_a_list,
    paging_by_a_number_keeps_every_digit_of_the_cursor,
);
crate::on_both_backends!(with |c| c.search_max_count = 3; included_resources_are_capped_with_a_warning);
crate::on_both_backends!(with |c| c.search_default_total_limit = 3; a_default_total_is_given_only_for_few_matches);

fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == "match")
                .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .map(|l| l["url"].as_str().unwrap().to_owned())
}

async fn search(app: &TestApp, query: &str) -> Value {
    let reply = app.get(query).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    let bundle = reply.json();
    assert_eq!(bundle["type"], "searchset");
    bundle
}

/// The ids matching `query`, sorted.
async fn found(app: &TestApp, query: &str) -> Vec<String> {
    sorted(ids(&search(app, query).await))
}

fn strings(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| (*s).to_owned()).collect()
}

async fn put(app: &TestApp, resource: Value) {
    let path = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap(),
        resource["id"].as_str().unwrap()
    );
    let reply = app.put(&path, &resource).await;
    assert!(reply.status == 200 || reply.status == 201, "{path}: {}", reply.text);
}

async fn patients(app: &TestApp) {
    put(
        app,
        json!({"resourceType": "Organization", "id": "acme", "name": "Acme Health"}),
    )
    .await;
    put(
        app,
        json!({"resourceType": "Organization", "id": "zeta", "name": "Zeta Care"}),
    )
    .await;
    put(app, json!({"resourceType": "Patient", "id": "p1", "gender": "male", "active": true,
        "name": [{"family": "Müller", "given": ["Hans"]}], "birthDate": "1970-05-17",
        "identifier": [{"system": "urn:mrn", "value": "111"}], "managingOrganization": {"reference": "Organization/acme"}}))
    .await;
    put(app, json!({"resourceType": "Patient", "id": "p2", "gender": "female",
        "name": [{"family": "Mullins", "given": ["Ann"]}], "birthDate": "1985",
        "identifier": [{"system": "urn:other", "value": "111"}], "managingOrganization": {"reference": "Organization/zeta"}}))
    .await;
    put(
        app,
        json!({"resourceType": "Patient", "id": "p3", "gender": "female", "active": false,
        "name": [{"family": "Smith", "given": ["Zoë", "Anne"]}], "birthDate": "1985-03-02",
        "identifier": [{"value": "333"}]}),
    )
    .await;
}

async fn observations(app: &TestApp) {
    patients(app).await;
    let observation = |id: &str, patient: &str, code: &str, value: f64, unit: &str, when: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": "Body weight"}], "text": "Weight"},
            "subject": {"reference": format!("Patient/{patient}")},
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
            "effectiveDateTime": when})
    };
    put(
        app,
        observation("o1", "p1", "29463-7", 80.0, "kg", "2020-01-10T10:00:00Z"),
    )
    .await;
    put(app, observation("o2", "p1", "29463-7", 82.5, "kg", "2021-06-01")).await;
    put(app, observation("o3", "p2", "8302-2", 170.0, "cm", "2021-06-15")).await;
    put(app, observation("o4", "p3", "29463-7", 60.0, "kg", "2019")).await;
}

async fn strings_match_prefix_without_case_or_accents_and_exact_and_contains(app: TestApp) {
    patients(&app).await;
    assert_eq!(found(&app, "Patient?name=mul").await, strings(&["p1", "p2"]));
    assert_eq!(found(&app, "Patient?name=MUELLER").await, Vec::<String>::new());
    assert_eq!(
        found(&app, "Patient?name=muller").await,
        strings(&["p1"]),
        "accents are ignored"
    );
    assert_eq!(
        found(&app, "Patient?family=zoe").await,
        Vec::<String>::new(),
        "family is not given"
    );
    assert_eq!(found(&app, "Patient?given=zoe").await, strings(&["p3"]));
    assert_eq!(found(&app, "Patient?name:exact=Müller").await, strings(&["p1"]));
    assert_eq!(found(&app, "Patient?name:exact=muller").await, Vec::<String>::new());
    assert_eq!(found(&app, "Patient?name:contains=ll").await, strings(&["p1", "p2"]));
    assert_eq!(found(&app, "Patient?name:contains=nn").await, strings(&["p2", "p3"]));
    assert_eq!(found(&app, "Organization?name=acme%20he").await, strings(&["acme"]));
}

async fn tokens_match_code_system_text_and_not(app: TestApp) {
    patients(&app).await;
    assert_eq!(found(&app, "Patient?gender=female").await, strings(&["p2", "p3"]));
    assert_eq!(found(&app, "Patient?identifier=111").await, strings(&["p1", "p2"]));
    assert_eq!(found(&app, "Patient?identifier=urn:mrn|111").await, strings(&["p1"]));
    assert_eq!(found(&app, "Patient?identifier=|333").await, strings(&["p3"]));
    assert_eq!(found(&app, "Patient?identifier=urn:other|").await, strings(&["p2"]));
    assert_eq!(found(&app, "Patient?active=true").await, strings(&["p1"]));
    assert_eq!(
        found(&app, "Patient?gender:not=male").await,
        strings(&["p2", "p3"]),
        ":not includes resources without the value"
    );
    assert_eq!(found(&app, "Patient?active:not=true").await, strings(&["p2", "p3"]));
    observations(&app).await;
    assert_eq!(found(&app, "Observation?code:text=body").await.len(), 4);
    assert_eq!(found(&app, "Observation?code:text=weight").await.len(), 4);
    assert_eq!(
        found(&app, "Observation?code=http://loinc.org|8302-2").await,
        strings(&["o3"])
    );
}

async fn dates_compare_ranges_by_precision_and_prefix(app: TestApp) {
    patients(&app).await;
    assert_eq!(found(&app, "Patient?birthdate=1985").await, strings(&["p2", "p3"]));
    assert_eq!(found(&app, "Patient?birthdate=1985-03").await, strings(&["p3"]));
    assert_eq!(found(&app, "Patient?birthdate=1985-03-02").await, strings(&["p3"]));
    assert_eq!(
        found(&app, "Patient?birthdate=1985-03-02T10:00:00Z").await,
        Vec::<String>::new(),
        "a day is not contained in one second"
    );
    assert_eq!(found(&app, "Patient?birthdate=gt1980").await, strings(&["p2", "p3"]));
    assert_eq!(
        found(&app, "Patient?birthdate=lt1985-03-01").await,
        strings(&["p1", "p2"])
    );
    assert_eq!(
        found(&app, "Patient?birthdate=ge1985-03-02").await,
        strings(&["p2", "p3"])
    );
    assert_eq!(found(&app, "Patient?birthdate=le1970-05-17").await, strings(&["p1"]));
    assert_eq!(found(&app, "Patient?birthdate=ne1985").await, strings(&["p1"]));
    assert_eq!(found(&app, "Patient?birthdate=sa1984").await, strings(&["p2", "p3"]));
    assert_eq!(found(&app, "Patient?birthdate=eb1985").await, strings(&["p1"]));
    assert_eq!(found(&app, "Patient?birthdate=ap1970-05-17").await, strings(&["p1"]));
    put(
        &app,
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
        "class": {"code": "AMB"}, "period": {"start": "2020-01-01T08:00:00Z"}}),
    )
    .await;
    assert_eq!(
        found(&app, "Encounter?date=gt2030").await,
        strings(&["e1"]),
        "a period without an end runs on"
    );
    assert_eq!(found(&app, "Encounter?date=lt2020").await, Vec::<String>::new());
}

async fn numbers_and_quantities_compare_with_prefixes_and_units(app: TestApp) {
    observations(&app).await;
    assert_eq!(found(&app, "Observation?value-quantity=80").await, strings(&["o1"]));
    assert_eq!(found(&app, "Observation?value-quantity=82").await, Vec::<String>::new());
    assert_eq!(found(&app, "Observation?value-quantity=82.5").await, strings(&["o2"]));
    assert_eq!(
        found(&app, "Observation?value-quantity=gt80").await,
        strings(&["o2", "o3"])
    );
    assert_eq!(
        found(&app, "Observation?value-quantity=ge80").await,
        strings(&["o1", "o2", "o3"])
    );
    assert_eq!(
        found(&app, "Observation?value-quantity=lt80||kg").await,
        strings(&["o4"])
    );
    assert_eq!(
        found(&app, "Observation?value-quantity=gt50|http://unitsofmeasure.org|kg").await,
        strings(&["o1", "o2", "o4"])
    );
    assert_eq!(
        found(&app, "Observation?value-quantity=ap165||cm").await,
        strings(&["o3"])
    );
    assert_eq!(
        found(&app, "Observation?value-quantity=eb83").await,
        strings(&["o1", "o4"]),
        "eb: ends before the whole range [82.5, 83.5), so 82.5 is not below it"
    );
    put(
        &app,
        json!({"resourceType": "RiskAssessment", "id": "r1", "status": "final", "subject": {"reference": "Patient/p1"},
        "prediction": [{"probabilityDecimal": 0.25}]}),
    )
    .await;
    assert_eq!(found(&app, "RiskAssessment?probability=gt0.2").await, strings(&["r1"]));
    assert_eq!(
        found(&app, "RiskAssessment?probability=sa0").await,
        Vec::<String>::new(),
        "sa0 means at or above 0.5, the end of 0's range"
    );
    assert_eq!(found(&app, "RiskAssessment?probability=sa0.2").await, strings(&["r1"]));
    assert_eq!(found(&app, "RiskAssessment?probability=0.25").await, strings(&["r1"]));
    assert_eq!(
        found(&app, "RiskAssessment?probability=lt0.2").await,
        Vec::<String>::new()
    );
}

async fn references_match_by_type_id_bare_id_url_and_type_modifier(app: TestApp) {
    observations(&app).await;
    assert_eq!(
        found(&app, "Observation?subject=Patient/p1").await,
        strings(&["o1", "o2"])
    );
    assert_eq!(found(&app, "Observation?patient=p1").await, strings(&["o1", "o2"]));
    assert_eq!(found(&app, "Observation?subject=p1").await, strings(&["o1", "o2"]));
    assert_eq!(found(&app, "Observation?subject:Patient=p2").await, strings(&["o3"]));
    assert_eq!(found(&app, "Observation?subject:Group=p2").await, Vec::<String>::new());
    let absolute = format!("Observation?subject={}", app.url("Patient/p3"));
    assert_eq!(found(&app, &absolute).await, strings(&["o4"]));
    assert_eq!(
        found(&app, "Patient?organization=Organization/acme").await,
        strings(&["p1"])
    );
}

async fn commas_are_or_repeats_are_and_and_escapes_work(app: TestApp) {
    patients(&app).await;
    assert_eq!(found(&app, "Patient?name=smith,hans").await, strings(&["p1", "p3"]));
    assert_eq!(found(&app, "Patient?name=mul&gender=female").await, strings(&["p2"]));
    assert_eq!(found(&app, "Patient?name=mul&name=hans").await, strings(&["p1"]));
    put(
        &app,
        json!({"resourceType": "Patient", "id": "p4", "name": [{"family": "Doe, Jr"}]}),
    )
    .await;
    assert_eq!(found(&app, "Patient?family=doe%5C,%20jr").await, strings(&["p4"]));
    assert_eq!(
        found(&app, "Patient?family=doe,%20jr").await,
        strings(&["p4"]),
        "doe OR ' jr'"
    );
    assert_eq!(found(&app, "Patient?family=jr").await, Vec::<String>::new());
}

async fn missing_finds_resources_without_a_value(app: TestApp) {
    patients(&app).await;
    assert_eq!(found(&app, "Patient?active:missing=true").await, strings(&["p2"]));
    assert_eq!(
        found(&app, "Patient?active:missing=false").await,
        strings(&["p1", "p3"])
    );
    assert_eq!(found(&app, "Patient?organization:missing=true").await, strings(&["p3"]));
}

async fn chains_and_reverse_chains_follow_references(app: TestApp) {
    observations(&app).await;
    assert_eq!(found(&app, "Observation?subject.name=smith").await, strings(&["o4"]));
    assert_eq!(
        found(&app, "Observation?subject:Patient.gender=female").await,
        strings(&["o3", "o4"])
    );
    assert_eq!(
        found(&app, "Observation?patient.organization.name=zeta").await,
        strings(&["o3"])
    );
    assert_eq!(
        found(&app, "Observation?subject.identifier=urn:mrn|111").await,
        strings(&["o1", "o2"])
    );
    assert_eq!(
        found(&app, "Patient?_has:Observation:patient:code=8302-2").await,
        strings(&["p2"])
    );
    assert_eq!(
        found(&app, "Patient?_has:Observation:subject:value-quantity=lt70").await,
        strings(&["p3"])
    );
    assert_eq!(
        found(
            &app,
            "Organization?_has:Patient:organization:_has:Observation:patient:code=29463-7"
        )
        .await,
        strings(&["acme"]),
        "nested _has"
    );
}

async fn includes_and_revincludes_add_entries_once(app: TestApp) {
    observations(&app).await;
    let bundle = search(&app, "Observation?code=29463-7&_include=Observation:subject").await;
    let entries = bundle["entry"].as_array().unwrap();
    let included: Vec<&str> = entries
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(sorted(ids(&bundle)), strings(&["o1", "o2", "o4"]));
    let mut included = included;
    included.sort();
    assert_eq!(
        included,
        vec!["p1", "p3"],
        "p1 once though two observations point at it"
    );
    assert_eq!(bundle["total"], 3, "included resources are not counted");

    let bundle = search(&app, "Patient?_id=p1&_revinclude=Observation:subject").await;
    let included: Vec<&str> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        sorted(included.iter().map(|s| (*s).to_owned()).collect()),
        strings(&["o1", "o2"])
    );

    let bundle = search(
        &app,
        "Observation?_id=o3&_include=Observation:patient&_include:iterate=Patient:organization",
    )
    .await;
    let mut included: Vec<String> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["search"]["mode"] == "include")
        .map(|e| e["resource"]["id"].as_str().unwrap().to_owned())
        .collect();
    included.sort();
    assert_eq!(included, strings(&["p2", "zeta"]));
    let bundle = search(&app, "Observation?_id=o3&_include=Observation:subject:Group").await;
    assert_eq!(
        bundle["entry"].as_array().unwrap().len(),
        1,
        "the target type restricts"
    );
}

async fn sort_orders_by_several_keys_and_direction(app: TestApp) {
    patients(&app).await;
    assert_eq!(
        ids(&search(&app, "Patient?_sort=birthdate").await),
        strings(&["p1", "p2", "p3"])
    );
    assert_eq!(
        ids(&search(&app, "Patient?_sort=-birthdate").await),
        strings(&["p2", "p3", "p1"]),
        "descending compares the ends of the ranges: 1985 ends after 1985-03-02"
    );
    assert_eq!(
        ids(&search(&app, "Patient?_sort=family").await),
        strings(&["p1", "p2", "p3"])
    );
    assert_eq!(
        ids(&search(&app, "Patient?_sort=-family").await),
        strings(&["p3", "p2", "p1"])
    );
    assert_eq!(
        ids(&search(&app, "Patient?_sort=gender,-_id").await),
        strings(&["p3", "p2", "p1"])
    );
    assert_eq!(
        ids(&search(&app, "Patient?_sort=active").await),
        strings(&["p3", "p1", "p2"]),
        "false < true, and a resource without a value sorts last"
    );
    observations(&app).await;
    assert_eq!(
        ids(&search(&app, "Observation?_sort=-value-quantity").await),
        strings(&["o3", "o2", "o1", "o4"])
    );
    assert_eq!(
        ids(&search(&app, "Observation?_sort=date").await),
        strings(&["o4", "o1", "o2", "o3"])
    );
}

async fn paging_neither_repeats_nor_skips_while_writes_happen(app: TestApp) {
    for n in 0..25 {
        put(
            &app,
            json!({"resourceType": "Patient", "id": format!("q{n:02}"), "name": [{"family": format!("F{}", n % 5)}]}),
        )
        .await;
    }
    for query in [
        "Patient?_count=4",
        "Patient?_count=4&_sort=family,-_id",
        "Patient?_count=3&_sort=-_lastUpdated",
    ] {
        let mut seen = Vec::new();
        let mut bundle = search(&app, query).await;
        assert_eq!(bundle["total"], 25, "{query}: the first page counts");
        let mut page = 0;
        loop {
            let page_ids = ids(&bundle);
            assert!(page_ids.len() <= 4);
            seen.extend(page_ids);
            // A write between pages: a new resource (after the cursor or before it) and a changed one.
            page += 1;
            put(
                &app,
                json!({"resourceType": "Patient", "id": format!("new{page}"), "name": [{"family": "A"}]}),
            )
            .await;
            let Some(next) = link(&bundle, "next") else { break };
            assert!(next.starts_with(&app.base), "{next}");
            let reply = app.send(app.client.get(&next)).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            bundle = reply.json();
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "{query}: a resource was repeated: {seen:?}");
        let originals = seen.iter().filter(|id| id.starts_with('q')).count();
        assert_eq!(
            originals, 25,
            "{query}: every resource there from the start is seen once: {seen:?}"
        );
        for n in 1..=page {
            app.delete(&format!("Patient/new{n}")).await;
        }
    }
}

async fn previous_links_walk_back(app: TestApp) {
    for n in 0..7 {
        put(
            &app,
            json!({"resourceType": "Patient", "id": format!("r{n}"), "birthDate": format!("200{n}")}),
        )
        .await;
    }
    let first = search(&app, "Patient?_count=3&_sort=-birthdate").await;
    assert_eq!(ids(&first), strings(&["r6", "r5", "r4"]));
    assert!(link(&first, "previous").is_none());
    let second = app.send(app.client.get(link(&first, "next").unwrap())).await.json();
    assert_eq!(ids(&second), strings(&["r3", "r2", "r1"]));
    let third = app.send(app.client.get(link(&second, "next").unwrap())).await.json();
    assert_eq!(ids(&third), strings(&["r0"]));
    assert!(link(&third, "next").is_none());
    let back = app.send(app.client.get(link(&third, "previous").unwrap())).await.json();
    assert_eq!(ids(&back), strings(&["r3", "r2", "r1"]));
    let back = app.send(app.client.get(link(&back, "previous").unwrap())).await.json();
    assert_eq!(ids(&back), strings(&["r6", "r5", "r4"]));
    assert!(link(&back, "previous").is_none());
    let reply = app.get("Patient?_page_after=%5B%22x%22%5D").await;
    reply.assert_outcome(400, "invalid");
}

/// One parameter, no sort: the page's rids come from the parameter's index rows (two per patient
/// here, given and family), so duplicates, deleted resources and other types must not show.
async fn unsorted_pages_of_one_parameter_walk_both_ways(app: TestApp) {
    for n in 0..7 {
        put(
            &app,
            json!({"resourceType": "Patient", "id": format!("p{n}"),
                   "name": [{"family": "Andersen", "given": ["Anna"]}]}),
        )
        .await;
        if n == 2 {
            put(
                &app,
                json!({"resourceType": "Patient", "id": "gone", "name": [{"family": "Andrews"}]}),
            )
            .await;
            assert_eq!(app.delete("Patient/gone").await.status, 204);
            put(
                &app,
                json!({"resourceType": "Practitioner", "id": "d0", "name": [{"family": "Andersen"}]}),
            )
            .await;
            put(
                &app,
                json!({"resourceType": "Patient", "id": "other", "name": [{"family": "Zed"}]}),
            )
            .await;
        }
    }
    let first = search(&app, "Patient?name=an&_count=3").await;
    assert_eq!(ids(&first), strings(&["p0", "p1", "p2"]));
    assert_eq!(first["total"], 7, "counted from index rows, each patient once");
    assert!(link(&first, "previous").is_none());
    let second = app.send(app.client.get(link(&first, "next").unwrap())).await.json();
    assert_eq!(ids(&second), strings(&["p3", "p4", "p5"]));
    let third = app.send(app.client.get(link(&second, "next").unwrap())).await.json();
    assert_eq!(ids(&third), strings(&["p6"]));
    assert!(link(&third, "next").is_none());
    let back = app.send(app.client.get(link(&third, "previous").unwrap())).await.json();
    assert_eq!(ids(&back), strings(&["p3", "p4", "p5"]));
    let back = app.send(app.client.get(link(&back, "previous").unwrap())).await.json();
    assert_eq!(ids(&back), strings(&["p0", "p1", "p2"]));
    assert!(link(&back, "previous").is_none());
    let count = search(&app, "Patient?name=an&_summary=count").await;
    assert_eq!(count["total"], 7);
}

async fn sorted_pages_walk_both_ways_over_repeated_and_missing_values(app: TestApp) {
    // A resource sorts by its smallest value ascending and its largest descending; resources
    // without a value come last either way, in the order they were created.
    let families: [&[&str]; 10] = [
        &["Adams"],
        &["Baker", "Young"],
        &["Clark", "Clark"],
        &[],
        &["Clark"],
        &[],
        &["Davis"],
        &["Adams"],
        &["Zed"],
        &["Evans"],
    ];
    for (n, names) in families.iter().enumerate() {
        let name: Vec<Value> = names.iter().map(|f| json!({"family": f})).collect();
        let mut patient = json!({"resourceType": "Patient", "id": format!("s{n}")});
        if !name.is_empty() {
            patient["name"] = json!(name);
        }
        put(&app, patient).await;
    }
    let expected = [
        ("family", ["s0", "s7", "s1", "s2", "s4", "s6", "s9", "s8", "s3", "s5"]),
        ("-family", ["s8", "s1", "s9", "s6", "s2", "s4", "s0", "s7", "s3", "s5"]),
    ];
    for (sort, order) in expected {
        let mut pages = vec![search(&app, &format!("Patient?_count=3&_sort={sort}")).await];
        while let Some(next) = link(pages.last().unwrap(), "next") {
            pages.push(app.send(app.client.get(next)).await.json());
        }
        let forward: Vec<String> = pages.iter().flat_map(ids).collect();
        assert_eq!(forward, strings(&order), "_sort={sort}, following next links");
        let mut backward = ids(pages.last().unwrap());
        let mut page = pages.last().unwrap().clone();
        while let Some(previous) = link(&page, "previous") {
            page = app.send(app.client.get(previous)).await.json();
            let mut earlier = ids(&page);
            earlier.append(&mut backward);
            backward = earlier;
        }
        assert_eq!(backward, strings(&order), "_sort={sort}, following previous links");
    }
}

async fn totals_summary_and_elements(app: TestApp) {
    patients(&app).await;
    let bundle = search(&app, "Patient?_summary=count").await;
    assert_eq!(bundle["total"], 3);
    assert!(bundle.get("entry").is_none());
    let bundle = search(&app, "Patient?gender=female&_summary=count").await;
    assert_eq!(bundle["total"], 2);
    let bundle = search(&app, "Patient?_count=1").await;
    assert_eq!(bundle["total"], 3, "counted on the first page");
    let bundle = search(&app, "Patient?_count=1&_total=none").await;
    assert!(bundle.get("total").is_none());
    let second = app.send(app.client.get(link(&bundle, "next").unwrap())).await.json();
    assert!(second.get("total").is_none());
    let bundle = search(&app, "Patient?_count=1&_total=accurate").await;
    let second = app.send(app.client.get(link(&bundle, "next").unwrap())).await.json();
    assert_eq!(second["total"], 3, "_total=accurate counts on every page");

    let bundle = search(&app, "Patient?_id=p1&_elements=birthDate").await;
    let patient = &bundle["entry"][0]["resource"];
    assert_eq!(patient["birthDate"], "1970-05-17");
    assert!(patient.get("name").is_none() && patient.get("gender").is_none());
    assert_eq!(patient["meta"]["tag"][0]["code"], "SUBSETTED");
    let bundle = search(&app, "Patient?_id=p1&_summary=true").await;
    let patient = &bundle["entry"][0]["resource"];
    assert!(patient.get("name").is_some() && patient.get("birthDate").is_some());
    assert_eq!(patient["meta"]["tag"][0]["code"], "SUBSETTED");
    let full = app.get("Patient/p1").await.json();
    assert!(full["meta"].get("tag").is_none(), "the stored resource is untouched");
}

async fn post_search_gives_the_same_results_as_get(app: TestApp) {
    patients(&app).await;
    let reply = app
        .send(
            app.client
                .post(app.url("Patient/_search?gender=female"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("name=smi"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(sorted(ids(&reply.json())), strings(&["p3"]));
    let reply = app
        .send(
            app.client
                .post(app.url("Patient/_search"))
                .header("content-type", "application/json")
                .body("{}"),
        )
        .await;
    reply.assert_outcome(415, "not-supported");
}

async fn system_and_compartment_searches(app: TestApp) {
    observations(&app).await;
    let bundle = search(&app, "?_type=Patient,Organization&_count=100").await;
    assert_eq!(ids(&bundle).len(), 5);
    let bundle = search(&app, "?_type=Observation&code=8302-2").await;
    assert_eq!(ids(&bundle), strings(&["o3"]));
    let reply = app.get("").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["total"], 9, "every resource");
    assert_eq!(found(&app, "Patient/p1/Observation").await, strings(&["o1", "o2"]));
    assert_eq!(found(&app, "Patient/p1/Observation?date=2021").await, strings(&["o2"]));
    assert_eq!(found(&app, "Patient/p1/*").await, strings(&["o1", "o2"]));
    app.get("Patient/p1/CodeSystem").await.assert_outcome(404, "not-found");
}

async fn unknown_parameters_are_ignored_or_refused_when_strict(app: TestApp) {
    patients(&app).await;
    let bundle = search(&app, "Patient?shoe-size=42&gender=male").await;
    assert_eq!(ids(&bundle), strings(&["p1"]));
    let this = link(&bundle, "self").unwrap();
    assert!(this.contains("gender=male") && !this.contains("shoe-size"), "{this}");
    let outcome = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("an outcome entry names what was ignored");
    assert_eq!(outcome["resource"]["issue"][0]["expression"][0], "shoe-size");
    let reply = app
        .send(
            app.client
                .get(app.url("Patient?shoe-size=42"))
                .header("prefer", "handling=strict"),
        )
        .await;
    let outcome = reply.assert_outcome(400, "invalid");
    assert_eq!(outcome["issue"][0]["expression"][0], "shoe-size");
    let reply = app
        .send(
            app.client
                .get(app.url("Patient?birthdate:exact=2000"))
                .header("prefer", "handling=strict"),
        )
        .await;
    reply.assert_outcome(400, "invalid");
}

async fn malformed_values_are_400_naming_the_parameter(app: TestApp) {
    for (query, parameter) in [
        ("Patient?birthdate=19x0", "birthdate"),
        ("Patient?birthdate=gt", "birthdate"),
        ("Observation?value-quantity=heavy", "value-quantity"),
        ("Patient?active:missing=perhaps", "active:missing"),
        ("Patient?_count=many", "_count"),
        ("Patient?_lastUpdated=yesterday", "_lastUpdated"),
        ("Patient?_has:Nothing:x:y=1", "_has:Nothing:x:y"),
        ("?_type=Unicorn", "_type"),
    ] {
        let reply = app.get(query).await;
        let outcome = reply.assert_outcome(400, "invalid");
        assert_eq!(outcome["issue"][0]["expression"][0], parameter, "{query}");
    }
}

async fn updates_and_deletes_change_what_is_found(app: TestApp) {
    patients(&app).await;
    assert_eq!(found(&app, "Patient?name=smith").await, strings(&["p3"]));
    put(
        &app,
        json!({"resourceType": "Patient", "id": "p3", "name": [{"family": "Jones"}]}),
    )
    .await;
    assert_eq!(
        found(&app, "Patient?name=smith").await,
        Vec::<String>::new(),
        "old index rows go"
    );
    assert_eq!(found(&app, "Patient?name=jones").await, strings(&["p3"]));
    app.delete("Patient/p3").await;
    assert_eq!(found(&app, "Patient?name=jones").await, Vec::<String>::new());
    assert_eq!(
        found(&app, "Patient?gender:not=male").await,
        strings(&["p2"]),
        "deleted resources are never found"
    );
    put(
        &app,
        json!({"resourceType": "Patient", "id": "p3", "name": [{"family": "Jones"}]}),
    )
    .await;
    assert_eq!(
        found(&app, "Patient?name=jones").await,
        strings(&["p3"]),
        "a revived resource is indexed"
    );
}

async fn id_and_last_updated(app: TestApp) {
    patients(&app).await;
    assert_eq!(found(&app, "Patient?_id=p1,p3").await, strings(&["p1", "p3"]));
    let p1 = app.get("Patient/p1").await.json();
    let stamp = p1["meta"]["lastUpdated"].as_str().unwrap().to_owned();
    let encoded = stamp.replace('+', "%2B");
    assert!(
        found(&app, &format!("Patient?_lastUpdated=ge{encoded}"))
            .await
            .contains(&"p1".to_owned())
    );
    assert_eq!(
        found(&app, &format!("Patient?_lastUpdated=lt{encoded}")).await,
        Vec::<String>::new()
    );
    assert_eq!(found(&app, "Patient?_lastUpdated=gt2000-01-01").await.len(), 3);
    assert_eq!(found(&app, "Patient?_lastUpdated=lt2000-01-01").await.len(), 0);
}

async fn common_parameters_tag_profile_security_and_source(app: TestApp) {
    put(
        &app,
        json!({"resourceType": "Patient", "id": "m1", "meta": {
        "tag": [{"system": "urn:tags", "code": "vip"}],
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
        "profile": ["http://example.org/StructureDefinition/my-patient"],
        "source": "urn:uuid:0b3c8a1e-8c0c-4d39-9d7a-0d0c6a2b1f10"}}),
    )
    .await;
    put(
        &app,
        json!({"resourceType": "Observation", "id": "m2", "status": "final", "code": {"text": "x"},
        "meta": {"tag": [{"system": "urn:tags", "code": "vip"}]}}),
    )
    .await;
    put(&app, json!({"resourceType": "Patient", "id": "m3"})).await;
    assert_eq!(found(&app, "Patient?_tag=urn:tags|vip").await, strings(&["m1"]));
    assert_eq!(found(&app, "Patient?_security=R").await, strings(&["m1"]));
    assert_eq!(
        found(
            &app,
            "Patient?_profile=http://example.org/StructureDefinition/my-patient"
        )
        .await,
        strings(&["m1"])
    );
    assert_eq!(
        found(&app, "Patient?_source=urn:uuid:0b3c8a1e-8c0c-4d39-9d7a-0d0c6a2b1f10").await,
        strings(&["m1"])
    );
    assert_eq!(
        found(&app, "?_tag=vip").await,
        strings(&["m1", "m2"]),
        "system search over every type"
    );
    let bundle = search(&app, "Patient?_query=anything").await;
    assert_eq!(
        ids(&bundle),
        strings(&["m1", "m3"]),
        "an unsearchable parameter is ignored, not empty"
    );
}

async fn composites_match_components_within_one_element(app: TestApp) {
    let blood_pressure = |id: &str, systolic: f64, diastolic: f64| {
        let component = |code: &str, value: f64| {
            json!({"code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}})
        };
        json!({"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [component("8480-6", systolic), component("8462-4", diastolic)]})
    };
    put(&app, blood_pressure("bp-high", 150.0, 95.0)).await;
    put(&app, blood_pressure("bp-normal", 118.0, 76.0)).await;
    // Diastolic 130 > systolic threshold: only a match across components, which must not count.
    put(&app, blood_pressure("bp-odd", 90.0, 130.0)).await;
    assert_eq!(
        found(
            &app,
            "Observation?component-code-value-quantity=http://loinc.org|8480-6$gt140"
        )
        .await,
        strings(&["bp-high"])
    );
    assert_eq!(
        found(&app, "Observation?component-code-value-quantity=8480-6$gt100").await,
        strings(&["bp-high", "bp-normal"]),
        "the diastolic 130 of bp-odd is not its systolic value"
    );
    assert_eq!(
        found(
            &app,
            "Observation?component-code-value-quantity=8462-4$lt80,8480-6$lt100"
        )
        .await,
        strings(&["bp-normal", "bp-odd"]),
        "commas are OR between whole composite values"
    );
    assert_eq!(
        found(
            &app,
            "Observation?component-code-value-quantity=8480-6$gt100|http://unitsofmeasure.org|mm[Hg]"
        )
        .await,
        strings(&["bp-high", "bp-normal"])
    );
    put(
        &app,
        json!({"resourceType": "Observation", "id": "weight", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 80, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
    )
    .await;
    assert_eq!(
        found(&app, "Observation?code-value-quantity=http://loinc.org|29463-7$ge80").await,
        strings(&["weight"])
    );
    assert!(
        found(&app, "Observation?code-value-quantity=29463-7$gt80")
            .await
            .is_empty()
    );
    assert_eq!(
        found(&app, "Observation?code-value-quantity:missing=false").await,
        strings(&["weight"])
    );
    assert_eq!(
        found(&app, "Observation?code-value-quantity:missing=true").await,
        strings(&["bp-high", "bp-normal", "bp-odd"]),
        "a code without a value quantity is no code-value-quantity"
    );
    let reply = app.get("Observation?code-value-quantity=29463-7").await;
    let outcome = reply.assert_outcome(400, "invalid");
    assert_eq!(outcome["issue"][0]["expression"][0], "code-value-quantity");
}

async fn text_and_content_search_words(app: TestApp) {
    put(&app, json!({"resourceType": "Patient", "id": "narrated",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Allergic to <b>penicillin</b>; lives in Zürich</p></div>"},
        "name": [{"family": "Quimby"}]}))
    .await;
    put(
        &app,
        json!({"resourceType": "Patient", "id": "plain", "name": [{"family": "Penrose"}],
        "address": [{"city": "Zurich"}]}),
    )
    .await;
    assert_eq!(found(&app, "Patient?_text=penicillin").await, strings(&["narrated"]));
    assert_eq!(
        found(&app, "Patient?_text=PENICIL").await,
        strings(&["narrated"]),
        "word prefix, any case"
    );
    assert!(
        found(&app, "Patient?_text=quimby").await.is_empty(),
        "_text is the narrative only"
    );
    assert_eq!(found(&app, "Patient?_content=quimby").await, strings(&["narrated"]));
    assert_eq!(
        found(&app, "Patient?_content=zurich").await,
        strings(&["narrated", "plain"])
    );
    assert_eq!(
        found(&app, "Patient?_content=zurich%20penrose").await,
        strings(&["plain"]),
        "every word of a value must be found"
    );
    assert_eq!(
        found(&app, "Patient?_content=quimby,penrose").await,
        strings(&["narrated", "plain"])
    );
    assert_eq!(found(&app, "Patient?_content:contains=nros").await, strings(&["plain"]));
    assert!(found(&app, "Patient?_content:exact=penro").await.is_empty());
    assert_eq!(found(&app, "Patient?_content:exact=penrose").await, strings(&["plain"]));
    // Ids, references and dates are searched by their own parameters, not as words.
    put(
        &app,
        json!({"resourceType": "Patient", "id": "e0d2-17f4", "birthDate": "1961-04-05",
        "generalPractitioner": [{"reference": "Practitioner/a9c1", "display": "Dr Quill"}]}),
    )
    .await;
    for absent in ["e0d2", "17f4", "a9c1", "practitioner", "1961", "04"] {
        assert!(
            found(&app, &format!("Patient?_content={absent}")).await.is_empty(),
            "{absent}"
        );
    }
    assert_eq!(found(&app, "Patient?_content=quill").await, strings(&["e0d2-17f4"]));
}

async fn reference_identifier_and_identifier_of_type(app: TestApp) {
    put(
        &app,
        json!({"resourceType": "Patient", "id": "typed",
        "identifier": [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]},
            "system": "urn:hospital", "value": "A-1"},
            {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]},
            "system": "urn:ssn", "value": "999"}]}),
    )
    .await;
    put(
        &app,
        json!({"resourceType": "Patient", "id": "untyped",
        "identifier": [{"system": "urn:hospital", "value": "A-2"}]}),
    )
    .await;
    let mr = "http://terminology.hl7.org/CodeSystem/v2-0203|MR";
    assert_eq!(
        found(&app, &format!("Patient?identifier:of-type={mr}|A-1")).await,
        strings(&["typed"])
    );
    assert!(
        found(&app, &format!("Patient?identifier:of-type={mr}|999"))
            .await
            .is_empty(),
        "999 is the SS number"
    );
    assert!(
        found(&app, &format!("Patient?identifier:of-type={mr}|A-2"))
            .await
            .is_empty()
    );
    assert_eq!(
        found(&app, "Patient?identifier=A-1").await,
        strings(&["typed"]),
        "the of-type rows do not change plain searches"
    );
    let reply = app.get("Patient?identifier:of-type=MR|A-1").await;
    assert_eq!(
        reply.assert_outcome(400, "invalid")["issue"][0]["expression"][0],
        "identifier:of-type"
    );

    put(
        &app,
        json!({"resourceType": "Observation", "id": "by-identifier", "status": "final",
        "code": {"text": "x"}, "subject": {"identifier": {"system": "urn:hospital", "value": "A-1"}}}),
    )
    .await;
    put(
        &app,
        json!({"resourceType": "Observation", "id": "by-reference", "status": "final",
        "code": {"text": "x"}, "subject": {"reference": "Patient/typed"}}),
    )
    .await;
    assert_eq!(
        found(&app, "Observation?subject:identifier=urn:hospital|A-1").await,
        strings(&["by-identifier"])
    );
    assert!(
        found(&app, "Observation?subject:identifier=urn:other|A-1")
            .await
            .is_empty()
    );
    assert_eq!(
        found(&app, "Observation?subject=Patient/typed").await,
        strings(&["by-reference"])
    );
}

async fn in_and_not_in_use_value_sets_stored_here(app: TestApp) {
    observations(&app).await;
    put(&app, json!({"resourceType": "ValueSet", "id": "weights", "url": "http://example.org/vs/weights",
        "status": "active", "compose": {"include": [{"system": "http://loinc.org", "concept": [{"code": "29463-7"}]}]}}))
    .await;
    put(
        &app,
        json!({"resourceType": "ValueSet", "id": "all-loinc", "url": "http://example.org/vs/all-loinc",
        "status": "active", "compose": {"include": [{"valueSet": ["http://example.org/vs/weights"]},
            {"system": "http://loinc.org"}]}}),
    )
    .await;
    put(
        &app,
        json!({"resourceType": "ValueSet", "id": "filtered", "url": "http://example.org/vs/filtered",
        "status": "active", "compose": {"include": [{"system": "http://loinc.org",
            "filter": [{"property": "COMPONENT", "op": "=", "value": "x"}]}]}}),
    )
    .await;
    assert_eq!(
        found(&app, "Observation?code:in=http://example.org/vs/weights").await,
        strings(&["o1", "o2", "o4"])
    );
    assert_eq!(
        found(&app, "Observation?code:in=ValueSet/weights").await,
        strings(&["o1", "o2", "o4"])
    );
    assert_eq!(
        found(&app, "Observation?code:not-in=http://example.org/vs/weights").await,
        strings(&["o3"])
    );
    assert_eq!(
        found(&app, "Observation?code:in=http://example.org/vs/all-loinc")
            .await
            .len(),
        4
    );
    let reply = app.get("Observation?code:in=http://example.org/vs/nowhere").await;
    let outcome = reply.assert_outcome(400, "invalid");
    assert_eq!(outcome["issue"][0]["expression"][0], "code:in");
    app.get("Observation?code:in=http://example.org/vs/filtered")
        .await
        .assert_outcome(400, "invalid");
    // Searching by the whole system would find the excluded code too.
    put(
        &app,
        json!({"resourceType": "ValueSet", "id": "loinc-but-weight", "url": "http://example.org/vs/loinc-but-weight",
        "status": "active", "compose": {"include": [{"system": "http://loinc.org"}],
            "exclude": [{"system": "http://loinc.org", "concept": [{"code": "29463-7"}]}]}}),
    )
    .await;
    let reply = app.get("Observation?code:not-in=ValueSet/loinc-but-weight").await;
    let outcome = reply.assert_outcome(400, "invalid");
    assert_eq!(outcome["issue"][0]["expression"][0], "code:not-in");
}

async fn list_finds_the_entries_of_a_list(app: TestApp) {
    patients(&app).await;
    put(
        &app,
        json!({"resourceType": "List", "id": "ward", "status": "current", "mode": "working",
        "entry": [{"item": {"reference": "Patient/p1"}}, {"item": {"reference": "Patient/p3"}},
            {"item": {"reference": "Organization/acme"}}]}),
    )
    .await;
    assert_eq!(found(&app, "Patient?_list=ward").await, strings(&["p1", "p3"]));
    assert_eq!(found(&app, "Organization?_list=ward").await, strings(&["acme"]));
    assert!(found(&app, "Patient?_list=nowhere").await.is_empty());
    app.delete("List/ward").await;
    assert!(
        found(&app, "Patient?_list=ward").await.is_empty(),
        "a deleted list has no entries"
    );
    let bundle = search(&app, "Patient?_list=$current-problems").await;
    assert_eq!(ids(&bundle).len(), 3, "a functional list is ignored, with a warning");
}

/// With a small maximum page size, which also caps included resources.
async fn included_resources_are_capped_with_a_warning(app: TestApp) {
    put(&app, json!({"resourceType": "Patient", "id": "hub"})).await;
    for n in 0..5 {
        put(
            &app,
            json!({"resourceType": "Observation", "id": format!("o{n}"), "status": "final",
            "code": {"text": "x"}, "subject": {"reference": "Patient/hub"}}),
        )
        .await;
    }
    let bundle = search(&app, "Patient?_id=hub&_revinclude=Observation:subject").await;
    let entries = bundle["entry"].as_array().unwrap();
    let included = entries.iter().filter(|e| e["search"]["mode"] == "include").count();
    assert_eq!(included, 3, "capped at the maximum page size");
    let outcome = entries
        .iter()
        .find(|e| e["search"]["mode"] == "outcome")
        .expect("a warning says so");
    assert!(
        outcome["resource"]["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("only the first 3")
    );
    let bundle = search(&app, "Observation?_id=o1,o2&_include=Observation:subject").await;
    assert!(
        !bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["search"]["mode"] == "outcome"),
        "no warning when everything fits"
    );
}

async fn paging_by_a_number_keeps_every_digit_of_the_cursor(app: TestApp) {
    // Values that differ only in the 16th and 17th significant digits.
    for (id, value) in [("a", "1.0000000000000004"), ("b", "1.0000000000000002"), ("c", "1.0")] {
        let body = format!(
            r#"{{"resourceType": "Observation", "id": "{id}", "status": "final", "code": {{"text": "x"}},
                "valueQuantity": {{"value": {value}, "unit": "mg"}}}}"#
        );
        let reply = app
            .send(
                app.client
                    .put(app.url(&format!("Observation/{id}")))
                    .header("content-type", "application/fhir+json")
                    .body(body),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let mut seen = Vec::new();
    let mut next = Some(app.url("Observation?_sort=value-quantity&_count=1"));
    while let Some(url) = next {
        let reply = app.send(app.client.get(&url)).await;
        let bundle = reply.json();
        seen.extend(ids(&bundle));
        next = link(&bundle, "next");
        assert!(seen.len() <= 3, "pages repeat: {seen:?}");
    }
    assert_eq!(seen, strings(&["c", "b", "a"]));
}

/// Counting stops after the limit (3 here), so a broad search's first page does not count every
/// match.
async fn a_default_total_is_given_only_for_few_matches(app: TestApp) {
    for n in 0..4 {
        put(
            &app,
            json!({"resourceType": "Patient", "id": format!("p{n}"), "gender": "male"}),
        )
        .await;
    }
    put(&app, json!({"resourceType": "Patient", "id": "f", "gender": "female"})).await;
    let bundle = search(&app, "Patient?gender=male&_count=1").await;
    assert!(
        bundle.get("total").is_none(),
        "4 matches are over the limit of 3: {bundle}"
    );
    assert!(link(&bundle, "next").is_some());
    let bundle = search(&app, "Patient?_count=1&_id=p0,p1,p2").await;
    assert_eq!(bundle["total"], 3, "3 matches are within the limit");
    let bundle = search(&app, "Patient?gender=male&_count=1&_total=accurate").await;
    assert_eq!(bundle["total"], 4, "_total=accurate counts past the limit");
    let bundle = search(&app, "Patient?gender=male&_count=1&_total=estimate").await;
    assert_eq!(bundle["total"], 4);
    let bundle = search(&app, "Patient?gender=male&_summary=count").await;
    assert_eq!(bundle["total"], 4, "_summary=count always counts");
    let bundle = search(&app, "Patient?gender=male").await;
    assert_eq!(bundle["total"], 4, "a result that fits on the page is its own total");
}
