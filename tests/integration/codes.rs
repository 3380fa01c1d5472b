//! Codes and their pages are one-to-one, and each page's examples do what
//! the page says: the failing one reports the code, the fixed one does not.

use std::collections::BTreeSet;
use std::path::PathBuf;

use pmf::diagnostics::Code;

use crate::support::{check, codes, sorted_entries, stem};

#[test]
fn codes_and_pages_are_one_to_one() {
    let pages: BTreeSet<String> = sorted_entries("docs/codes")
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .map(|p| stem(p))
        .collect();
    let ids: BTreeSet<String> = Code::ALL.iter().map(|c| c.id().to_string()).collect();
    assert_eq!(pages, ids);
    assert!(Code::ALL.len() >= 30);
}

#[test]
fn each_page_is_titled_with_its_code_and_summary() {
    for code in Code::ALL {
        let first = code.page().lines().next().unwrap_or_default();
        assert_eq!(
            first,
            format!("# {}: {}", code.id(), code.summary()),
            "page of {}",
            code.id()
        );
    }
}

/// The ```pmf <tag> blocks of a page.
fn blocks<'a>(page: &'a str, tag: &str) -> Vec<&'a str> {
    let fence = format!("```pmf {tag}\n");
    let mut out = Vec::new();
    let mut rest = page;
    while let Some(start) = rest.find(&fence) {
        let body = &rest[start + fence.len()..];
        let end = body.find("\n```").map_or(body.len(), |e| e + 1);
        out.push(&body[..end]);
        rest = &body[end..];
    }
    out
}

fn check_text(dir: &std::path::Path, text: &str) -> pmf::cli::check::Report {
    let path: PathBuf = dir.join("example.pmf");
    std::fs::write(&path, text).expect("write example");
    check(&[path])
}

#[test]
fn page_examples_fail_and_pass_as_documented() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut problems = Vec::new();
    for code in Code::ALL {
        let id = code.id();
        for text in blocks(code.page(), "failing") {
            let report = check_text(dir.path(), text);
            if !codes(&report).contains(&id) {
                problems.push(format!(
                    "{id}: failing example reports {:?}",
                    codes(&report)
                ));
            }
        }
        for text in blocks(code.page(), "fixed") {
            let report = check_text(dir.path(), text);
            let (errors, _) = report.counts();
            if codes(&report).contains(&id) || errors > 0 {
                problems.push(format!("{id}: fixed example reports {:?}", codes(&report)));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
