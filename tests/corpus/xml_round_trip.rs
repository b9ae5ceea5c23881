//! Every official R4 example survives JSON → XML → JSON unchanged, through the project's converter.

use serde_json::Value;

#[test]
fn every_official_example_survives_json_to_xml_and_back() {
    let Some(dir) = crate::shared("fhir-r4/examples-4.0.1") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && !p.ends_with("package.json"))
        .collect();
    files.sort();
    assert!(files.len() > 700);
    let mut failures = Vec::new();
    for path in &files {
        let original: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let outcome = fhir_server::xml::to_xml(&original)
            .and_then(|xml| fhir_server::xml::from_xml(&xml).map(|back| (xml, back)));
        match outcome {
            Ok((_, back)) if back == original => {}
            Ok((xml, back)) => failures.push(format!(
                "{}: differs after the round trip\n{}\n{back}",
                path.display(),
                &xml[..xml.len().min(400)]
            )),
            Err(e) => failures.push(format!("{}: {e:?}", path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples did not survive:\n{}",
        failures.len(),
        files.len(),
        failures.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// XML that HL7 wrote reads into the same JSON as HL7's JSON of the same resource: the FHIRPath
/// suite's XML inputs that are unchanged copies of R4 examples (its observation-example.xml is not:
/// the suite adds an extension to it).
#[test]
fn hl7_xml_reads_as_the_official_json_of_the_same_resource() {
    let (Some(inputs), Some(examples)) = (
        crate::shared("fhir-test-cases/fhirpath"),
        crate::shared("fhir-r4/examples-4.0.1"),
    ) else {
        return;
    };
    let twins = [
        ("patient-example.xml", "Patient-example.json"),
        ("questionnaire-example.xml", "Questionnaire-3141.json"),
    ];
    for (xml_name, json_name) in twins {
        let read = fhir_server::xml::from_xml(&std::fs::read_to_string(inputs.join(xml_name)).unwrap())
            .unwrap_or_else(|e| panic!("{xml_name}: {e:?}"));
        let official: Value =
            serde_json::from_str(&std::fs::read_to_string(examples.join(json_name)).unwrap()).unwrap();
        assert_eq!(read, official, "{xml_name} differs from {json_name}");
    }
    // The other XML inputs must at least read, and survive a round trip through XML.
    let others = [
        "observation-example.xml",
        "parameters-example-types.xml",
        "patient-example-period.xml",
        "valueset-example-expansion.xml",
        "codesystem-example.xml",
    ];
    for name in others {
        let read = fhir_server::xml::from_xml(&std::fs::read_to_string(inputs.join(name)).unwrap())
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let again = fhir_server::xml::from_xml(&fhir_server::xml::to_xml(&read).unwrap()).unwrap();
        assert_eq!(again, read, "{name} changed on a round trip");
    }
}
