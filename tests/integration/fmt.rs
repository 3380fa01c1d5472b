//! The formatter is idempotent and never changes what a policy means.

use std::path::PathBuf;

use pmf::db::Session;
use pmf::fmt::format;
use proptest::prelude::*;

fn codes(path: &str, text: &str) -> Vec<&'static str> {
    let mut s = Session::default();
    let f = s.set_file(path, text.to_string());
    let mut c: Vec<&'static str> = s.check(f).iter().map(|d| d.code.id()).collect();
    c.sort_unstable();
    c
}

fn corpus() -> Vec<PathBuf> {
    pmf::cli::files::collect(&[
        PathBuf::from("stdlib"),
        PathBuf::from("examples"),
        PathBuf::from("tests/fixtures"),
    ])
    .expect("corpus")
}

#[test]
fn formatting_is_idempotent_and_keeps_meaning_on_every_policy() {
    let mut problems = Vec::new();
    for path in corpus() {
        let text = std::fs::read_to_string(&path).unwrap();
        let once = format(&text);
        let twice = format(&once);
        let name = path.display().to_string();
        if once != twice {
            problems.push(format!("{name}: not idempotent"));
        }
        if codes(&name, &text) != codes(&name, &once) {
            problems.push(format!(
                "{name}: diagnostics changed: {:?} → {:?}",
                codes(&name, &text),
                codes(&name, &once)
            ));
        }
        let comments = |t: &str| {
            pmf::syntax::parse(&name, t)
                .ast
                .comments
                .iter()
                .map(|c| c.text.trim().to_string())
                .collect::<Vec<_>>()
        };
        if comments(&text) != comments(&once) {
            problems.push(format!("{name}: comments changed"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn stdlib_and_examples_are_formatted() {
    let paths =
        pmf::cli::files::collect(&[PathBuf::from("stdlib"), PathBuf::from("examples")]).unwrap();
    let unformatted: Vec<String> = paths
        .iter()
        .filter(|p| {
            let t = std::fs::read_to_string(p).unwrap();
            format(&t) != t
        })
        .map(|p| p.display().to_string())
        .collect();
    assert!(unformatted.is_empty(), "run `pmf fmt` on: {unformatted:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_token_soup_formats_idempotently_and_keeps_meaning(parts in prop::collection::vec(prop::sample::select(crate::support::TOKEN_SOUP), 0..80)) {
        let text = format!("policy fuzz extends kwanus\n{}", parts.concat());
        let once = format(&text);
        prop_assert_eq!(format(&once), once.clone());
        prop_assert_eq!(codes("f.pmf", &text), codes("f.pmf", &once));
    }
}
