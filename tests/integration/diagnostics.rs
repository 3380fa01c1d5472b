//! One fixture per diagnostic code (`CODE.pmf`, or a directory `CODE`,
//! whose `pmf.toml`, if any, configures its check),
//! and more for some codes (`CODE.what.pmf`: PMF001 has one per slip it
//! explains), with insta snapshots of the rendered report (no colour,
//! width 80) and of the JSON document.

use std::collections::BTreeSet;

use pmf::cli::check::Format;
use pmf::diagnostics::Code;

use crate::support::{check, codes, rendered, sorted_entries, stem};

const FIXTURES: &str = "tests/fixtures/diagnostics";

/// The code a fixture is for: its name up to the first `.`.
fn code_of(fixture: &str) -> String {
    fixture.split('.').next().unwrap_or_default().to_string()
}

#[test]
fn every_code_has_a_fixture() {
    let have: BTreeSet<String> = sorted_entries(FIXTURES)
        .iter()
        .map(|p| code_of(&stem(p)))
        .collect();
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
        let name = stem(&path);
        let code = code_of(&name);
        let mut report = check(std::slice::from_ref(&path));
        // A fixture folder's own `pmf.toml` is its configuration (as
        // `pmf check --config FOLDER/pmf.toml FOLDER` reads it).
        let config = path.join("pmf.toml");
        if config.is_file() {
            pmf::cli::check::apply_config(&mut report, Some(&config)).expect("pmf.toml");
        }
        if !codes(&report).contains(&code.as_str()) {
            failures.push(format!("{name}: reported {:?}", codes(&report)));
        }
        insta::with_settings!({
            snapshot_path => "../snapshots/diagnostics",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name.clone(), rendered(&report, Format::Human));
            insta::assert_snapshot!(format!("{name}.json"), rendered(&report, Format::Json));
        });
    }
    assert!(
        failures.is_empty(),
        "fixtures that miss their code:\n{}",
        failures.join("\n")
    );
}

/// The PMF001 fixtures: `PMF001.pmf` and one per slip.
fn syntax_fixtures() -> Vec<std::path::PathBuf> {
    sorted_entries(FIXTURES)
        .into_iter()
        .filter(|p| code_of(&stem(p)) == "PMF001" && p.is_file())
        .collect()
}

/// Slips whose fix is a guess (where a bracket closes, `<` or `<=`), or
/// that have no single edit that fixes them.
const NO_CERTAIN_FIX: &[&str] = &[
    "PMF001",
    "PMF001.ceiling-operator",
    "PMF001.column-0-in-block",
    "PMF001.declaration-in-block",
    "PMF001.unclosed-brace",
    "PMF001.unclosed-paren",
];

#[test]
fn every_syntax_error_says_what_was_expected() {
    let mut problems = Vec::new();
    for path in syntax_fixtures() {
        let report = check(std::slice::from_ref(&path));
        let json: serde_json::Value =
            serde_json::from_str(&rendered(&report, Format::Json)).expect("json");
        for d in json["diagnostics"].as_array().into_iter().flatten() {
            let message = d["message"].as_str().unwrap_or_default();
            if d["code"] == "PMF001" && !message.starts_with("expected ") {
                problems.push(format!("{}: {message}", stem(&path)));
            }
            if d["code"] == "PMF001" && !d["help"].is_string() {
                problems.push(format!("{}: no help", stem(&path)));
            }
        }
        let sarif = rendered(&report, Format::Sarif);
        if !sarif.contains("\"text\": \"expected ") && !sarif.contains("\"text\":\"expected ") {
            problems.push(format!("{}: SARIF without the expectation", stem(&path)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn each_fix_of_a_slip_removes_its_diagnostic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut problems = Vec::new();
    for path in syntax_fixtures() {
        let name = stem(&path);
        let text = std::fs::read_to_string(&path).expect("fixture");
        let report = check(std::slice::from_ref(&path));
        let slips: Vec<_> = report
            .diagnostics
            .iter()
            .filter(|d| d.code == Code::SyntaxError)
            .collect();
        let certain = slips
            .iter()
            .flat_map(|d| &d.fixes)
            .filter(|f| f.machine_applicable)
            .count();
        if certain == 0 && !NO_CERTAIN_FIX.contains(&name.as_str()) {
            problems.push(format!("{name}: no machine-applicable fix"));
        }
        let texts = report.session.placed_texts();
        let places = texts
            .map(&path.display().to_string())
            .expect("checked file");
        for d in &slips {
            for fix in &d.fixes {
                let fixed = fix.apply(&text, places);
                assert_ne!(fixed, text, "{name}: the fix changes nothing");
                let fixed_path = dir.path().join(path.file_name().expect("name"));
                std::fs::write(&fixed_path, &fixed).expect("write");
                let after = check(std::slice::from_ref(&fixed_path));
                if after
                    .diagnostics
                    .iter()
                    .any(|a| a.code == d.code && a.message == d.message)
                {
                    problems.push(format!(
                        "{name}: `{}` still reported after the fix:\n{fixed}",
                        d.message
                    ));
                }
                let syntax_left = codes(&after).contains(&"PMF001");
                if fix.machine_applicable && slips.len() == 1 && syntax_left {
                    problems.push(format!("{name}: a syntax error is left after the fix"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_declaration_dropped_by_recovery_causes_no_warnings() {
    let path = std::path::PathBuf::from(FIXTURES).join("PMF001.dropped-declaration.pmf");
    let report = check(std::slice::from_ref(&path));
    assert_eq!(codes(&report), vec!["PMF001"]);
    // Without the migration, the warning is due: it was held back only
    // because the migration that uses `OPS` failed to parse.
    let text = std::fs::read_to_string(&path).expect("fixture");
    let cut = text.find("override migration").expect("the migration");
    let dir = tempfile::tempdir().expect("tempdir");
    let without = dir.path().join("without.pmf");
    std::fs::write(&without, &text[..cut]).expect("write");
    let after = check(&[without]);
    assert_eq!(codes(&after), vec!["PMF902"]);
}

/// Copy the fixture at `path` (a file or a directory) into `dir`; the copy.
fn copy_fixture(path: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    let to = dir.join(path.file_name().expect("name"));
    if path.is_dir() {
        std::fs::create_dir_all(&to).expect("mkdir");
        for entry in sorted_entries(path.to_str().expect("utf-8 path")) {
            std::fs::copy(&entry, to.join(entry.file_name().expect("name"))).expect("copy");
        }
    } else {
        std::fs::copy(path, &to).expect("copy");
    }
    to
}

/// Every fix a diagnostic marks machine-applicable does what it says: with
/// it applied, the policy is checked again and the diagnostic is gone, and
/// the fix broke nothing else into a syntax error. A help that proposes a
/// name (`did you mean`) carries it as a fix, so no tool has to read it out
/// of the help's words.
#[test]
fn each_certain_fix_of_every_fixture_removes_its_diagnostic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut problems = Vec::new();
    let mut applied = 0;
    for path in sorted_entries(FIXTURES) {
        let name = stem(&path);
        let work = dir.path().join(&name);
        let copy = copy_fixture(&path, &{
            std::fs::create_dir_all(&work).expect("mkdir");
            work.clone()
        });
        let report = check(std::slice::from_ref(&copy));
        let syntax_before = codes(&report).iter().filter(|c| **c == "PMF001").count();
        for d in &report.diagnostics {
            if d.help
                .as_deref()
                .is_some_and(|h| h.contains("did you mean `"))
                && d.fixes.is_empty()
            {
                problems.push(format!(
                    "{name}: `{}` proposes a name without a fix",
                    d.message
                ));
            }
            for fix in d.fixes.iter().filter(|f| f.machine_applicable) {
                // A fresh copy for each fix.
                std::fs::remove_dir_all(&work).expect("clean");
                std::fs::create_dir_all(&work).expect("mkdir");
                let copy = copy_fixture(&path, &work);
                let file = std::path::PathBuf::from(&d.primary.file);
                let text = std::fs::read_to_string(&file).expect("fixture text");
                let texts = report.session.placed_texts();
                let places = texts.map(&d.primary.file).expect("checked file");
                let fixed = fix.apply(&text, places);
                if fixed == text {
                    problems.push(format!("{name}: a fix of `{}` changes nothing", d.message));
                    continue;
                }
                std::fs::write(&file, &fixed).expect("write");
                applied += 1;
                let after = check(std::slice::from_ref(&copy));
                if after
                    .diagnostics
                    .iter()
                    .any(|a| a.code == d.code && a.message == d.message)
                {
                    problems.push(format!(
                        "{name}: `{}` still reported after its fix:\n{fixed}",
                        d.message
                    ));
                }
                let syntax_after = codes(&after).iter().filter(|c| **c == "PMF001").count();
                if d.code != Code::SyntaxError && syntax_after > syntax_before {
                    problems.push(format!(
                        "{name}: the fix of `{}` makes a syntax error:\n{fixed}",
                        d.message
                    ));
                }
            }
        }
        std::fs::remove_dir_all(&work).expect("clean");
    }
    assert!(applied > 20, "only {applied} fixes applied");
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
