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

/// A ```pmf block of a document, with the line above its fence.
struct Block {
    doc: String,
    line: usize,
    above: String,
    code: String,
}

/// Every ```pmf block of README.md and docs/*.md.
fn doc_blocks() -> Vec<Block> {
    let mut docs = vec![PathBuf::from("README.md")];
    docs.extend(
        sorted_entries("docs")
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "md")),
    );
    let mut blocks = Vec::new();
    for doc in docs {
        let text = std::fs::read_to_string(&doc).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            if lines[i] == "```pmf" {
                let start = i;
                let end = (i + 1..lines.len())
                    .find(|&j| lines[j] == "```")
                    .unwrap_or_else(|| panic!("{}:{}: unclosed block", doc.display(), i + 1));
                blocks.push(Block {
                    doc: doc.display().to_string(),
                    line: start + 1,
                    above: if start > 0 {
                        lines[start - 1].to_string()
                    } else {
                        String::new()
                    },
                    code: lines[start + 1..end].join("\n") + "\n",
                });
                i = end;
            }
            i += 1;
        }
    }
    blocks
}

/// Every ```pmf block of the README and the docs is true: whole policies
/// (a block that starts with `policy`) check without errors together with
/// the other whole policies of their document (they may extend each other);
/// a fragment checks without errors inside a policy that extends the
/// standard library (restating one of its declarations, PMF702, aside);
/// a block marked `<!-- pmf: syntax only -->` (a lone header shown as
/// syntax) only parses.
#[test]
fn every_pmf_block_of_the_docs_is_true() {
    let blocks = doc_blocks();
    assert!(blocks.len() > 20, "{} blocks", blocks.len());
    let mut wholes: std::collections::BTreeMap<String, Vec<(String, String)>> = Default::default();
    for b in &blocks {
        let name = format!("{}:{}.pmf", b.doc, b.line);
        if b.above.trim() == "<!-- pmf: syntax only -->" {
            let parsed = pmf::syntax::parser::parse(&name, &b.code);
            assert!(
                parsed.diagnostics.is_empty(),
                "{name}: {:?}",
                parsed.diagnostics
            );
            continue;
        }
        let starts_policy = b
            .code
            .lines()
            .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with("//"))
            .is_some_and(|l| l.starts_with("policy "));
        if starts_policy {
            wholes
                .entry(b.doc.clone())
                .or_default()
                .push((name, b.code.clone()));
            continue;
        }
        let wrapped = format!("policy doc_fragment extends kwanus\n\n{}", b.code);
        let report = pmf::cli::check::check_texts(vec![(name.clone(), wrapped)]);
        let errors: Vec<_> = report
            .diagnostics
            .iter()
            .filter(|d| d.is_error() && d.code.id() != "PMF702")
            .collect();
        assert!(
            errors.is_empty(),
            "{name}:\n{}",
            rendered(&report, Format::Human)
        );
    }
    assert!(!wholes.is_empty());
    for (doc, files) in wholes {
        let report = pmf::cli::check::check_texts(files);
        let (errors, _) = report.counts();
        assert_eq!(errors, 0, "{doc}:\n{}", rendered(&report, Format::Human));
    }
}
