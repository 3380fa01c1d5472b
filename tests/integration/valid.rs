//! The stdlib, the examples and the valid fixtures check without errors.

use std::path::PathBuf;

use pmf::cli::check::Format;

use crate::support::{check, rendered, sorted_entries};

#[test]
fn stdlib_has_no_errors() {
    let report = check(&[PathBuf::from("stdlib/kwanus.pmf")]);
    let (errors, _) = report.counts();
    assert_eq!(errors, 0, "{}", rendered(&report, Format::Human));
}

#[test]
fn examples_check_clean() {
    let examples = pmf::cli::files::collect(&[PathBuf::from("examples")]).expect("examples");
    assert!(examples.len() >= 3, "{examples:?}");
    let report = check(&[PathBuf::from("examples")]);
    assert!(
        report.diagnostics.is_empty(),
        "{}",
        rendered(&report, Format::Human)
    );
}

#[test]
fn valid_fixtures_have_no_errors() {
    for path in sorted_entries("tests/fixtures/valid") {
        let report = check(std::slice::from_ref(&path));
        let (errors, _) = report.counts();
        assert_eq!(
            errors,
            0,
            "{}:\n{}",
            path.display(),
            rendered(&report, Format::Human)
        );
    }
}

#[test]
fn stdlib_carries_the_seed_exactly() {
    let text = pmf::stdlib::KWANUS_SOURCE;
    for words in [
        "The threads tremble. Change approaches.",
        "The loom adjusts. The pattern loosens.",
        "The weave shifts. The path opens.",
        "The pattern reforms. Harmony returns.",
        "The thread continues. The journey resumes.",
        "The old pattern dissolves. Memory remains.",
        "Optimal Transition",
        "Standard Monitoring",
        "Review Required",
        "Fallback / Throttling",
        "Forced Restriction",
    ] {
        assert!(text.contains(words), "stdlib lacks {words:?}");
    }
}

/// The README's policy is the first a newcomer copies: it checks clean.
#[test]
fn the_readme_policy_checks_clean() {
    let readme = std::fs::read_to_string("README.md").expect("README.md");
    let blocks: Vec<String> = readme
        .split("```pmf\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("\n```").map(|(code, _)| code.to_string()))
        .collect();
    assert!(!blocks.is_empty(), "the README shows no policy");
    for code in blocks {
        let report = pmf::cli::check::check_texts(vec![("README.md.pmf".to_string(), code)]);
        assert!(
            report.diagnostics.is_empty(),
            "{}",
            rendered(&report, Format::Human)
        );
    }
}
