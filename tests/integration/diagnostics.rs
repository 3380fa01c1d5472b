//! One fixture per diagnostic code, with insta snapshots of the rendered
//! report (no colour, width 80) and of the JSON document.

use std::collections::BTreeSet;

use pmf::cli::check::Format;
use pmf::diagnostics::Code;

use crate::support::{check, codes, rendered, sorted_entries, stem};

const FIXTURES: &str = "tests/fixtures/diagnostics";

#[test]
fn every_code_has_a_fixture() {
    let have: BTreeSet<String> = sorted_entries(FIXTURES).iter().map(|p| stem(p)).collect();
    // A file that cannot be read (PMF005) has no text to be a fixture: the
    // fixtures are read as UTF-8 by other tests; tests/integration/inputs.rs
    // makes one and checks it in every format.
    let want: BTreeSet<String> = Code::ALL
        .iter()
        .filter(|c| **c != Code::UnreadableFile)
        .map(|c| c.id().to_string())
        .collect();
    let missing: Vec<&String> = want.difference(&have).collect();
    let extra: Vec<&String> = have.difference(&want).collect();
    assert!(missing.is_empty(), "codes without a fixture: {missing:?}");
    assert!(extra.is_empty(), "fixtures for no code: {extra:?}");
}

#[test]
fn each_fixture_reports_its_code_and_matches_its_snapshots() {
    let mut failures = Vec::new();
    for path in sorted_entries(FIXTURES) {
        let code = stem(&path);
        let report = check(std::slice::from_ref(&path));
        if !codes(&report).contains(&code.as_str()) {
            failures.push(format!("{code}: reported {:?}", codes(&report)));
        }
        insta::with_settings!({
            snapshot_path => "../snapshots/diagnostics",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(code.clone(), rendered(&report, Format::Human));
            insta::assert_snapshot!(format!("{code}.json"), rendered(&report, Format::Json));
        });
    }
    assert!(
        failures.is_empty(),
        "fixtures that miss their code:\n{}",
        failures.join("\n")
    );
}
