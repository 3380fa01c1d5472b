//! Composition of several parents: diamonds, three-way merges, conflicts,
//! `override`, and diagnostics reported in the policy that causes them.

use pmf::db::Session;

fn check_all(files: &[(&str, &str)]) -> Vec<(String, &'static str)> {
    let mut session = Session::default();
    let handles: Vec<_> = files
        .iter()
        .map(|(p, t)| session.set_file(p, t.to_string()))
        .collect();
    let mut out: Vec<(String, &'static str)> = handles
        .iter()
        .flat_map(|f| session.check(*f))
        .filter(|d| d.is_error())
        .map(|d| (d.primary.file.clone(), d.code.id()))
        .collect();
    out.sort();
    out.dedup();
    out
}

const EU: &str = "policy eu extends kwanus\n\noverride ceiling power <= 7\n";
const AUDITED: &str =
    "policy audited extends kwanus\n\nrite validation \"Every dimension is verified.\"\n";
const STRICT: &str = "policy strict extends kwanus\n\noverride ceiling power <= 5\n";

#[test]
fn a_diamond_over_the_stdlib_is_not_a_conflict() {
    let child = "policy child extends eu, audited\n";
    assert_eq!(
        check_all(&[
            ("eu.pmf", EU),
            ("audited.pmf", AUDITED),
            ("child.pmf", child)
        ]),
        vec![]
    );
}

#[test]
fn a_parent_refinement_wins_over_the_common_ancestor() {
    // `eu` overrides kwanus's power ceiling; `audited` keeps kwanus's: eu wins.
    let mut session = Session::default();
    session.set_file("eu.pmf", EU.into());
    session.set_file("audited.pmf", AUDITED.into());
    let child = session.set_file("child.pmf", "policy child extends audited, eu\n".into());
    assert!(session.check(child).iter().all(|d| !d.is_error()));
    let resolved = pmf::db::resolve(session.db(), session.workspace, child);
    let (_, ceiling) = resolved
        .policy
        .ceilings()
        .find(|(_, c)| c.field.dotted() == "power")
        .expect("power ceiling");
    assert_eq!(pmf::check::types::literal_number(&ceiling.value), Some(7.0));
}

#[test]
fn two_different_refinements_conflict_until_the_child_chooses() {
    let child = "policy child extends eu, strict\n";
    assert_eq!(
        check_all(&[("eu.pmf", EU), ("strict.pmf", STRICT), ("child.pmf", child)]),
        vec![("child.pmf".to_string(), "PMF701")]
    );
    let chosen = "policy child extends eu, strict\n\noverride ceiling power <= 5\n";
    assert_eq!(
        check_all(&[
            ("eu.pmf", EU),
            ("strict.pmf", STRICT),
            ("child.pmf", chosen)
        ]),
        vec![]
    );
}

#[test]
fn redefinition_needs_override_and_override_needs_a_parent_definition() {
    let redefine = "policy p extends kwanus\n\nceiling power <= 7\n";
    assert_eq!(
        check_all(&[("p.pmf", redefine)]),
        vec![("p.pmf".to_string(), "PMF702")]
    );
    let nothing =
        "policy p extends kwanus\n\noverride ceiling load <= 7\n\npartner {\n  load: number\n}\n";
    assert_eq!(
        check_all(&[("p.pmf", nothing)]),
        vec![("p.pmf".to_string(), "PMF703")]
    );
}

#[test]
fn findings_caused_by_a_child_are_reported_in_the_child() {
    // Dropping `governs` from ERC leaves kwanus's workflow category ungoverned:
    // kwanus itself is fine, so the error belongs to the child.
    let child = "policy p extends kwanus\n\noverride authority ERC \"Execution Review Council\"\n";
    assert_eq!(
        check_all(&[("p.pmf", child)]),
        vec![("p.pmf".to_string(), "PMF401")]
    );
}

#[test]
fn an_unknown_parent_is_the_only_error() {
    let child = "policy p extends kwanu\n\noverride ceiling power <= 7\n";
    assert_eq!(
        check_all(&[("p.pmf", child)]),
        vec![("p.pmf".to_string(), "PMF108")]
    );
}

#[test]
fn cyclic_extends_is_reported_without_hanging() {
    let a = "policy a extends b\n";
    let b = "policy b extends a\n";
    let found = check_all(&[("a.pmf", a), ("b.pmf", b)]);
    assert_eq!(
        found,
        vec![
            ("a.pmf".to_string(), "PMF109"),
            ("b.pmf".to_string(), "PMF109")
        ]
    );
}

/// A file that declares `policy kwanus` replaces the standard library for
/// the policies checked with it (a "vendored copy" could relax any rule
/// of it): unless it is the standard library's own text (line ends aside),
/// a warning on its header naming the first line that differs.
#[test]
fn a_policy_that_replaces_the_standard_library_is_named() {
    let stdlib = pmf::stdlib::KWANUS_SOURCE;
    let relaxed = stdlib.replace("ceiling power <= 10", "ceiling power <= 100");
    assert_ne!(relaxed, stdlib);
    let relaxed_line = stdlib
        .lines()
        .position(|l| l.starts_with("ceiling power <= 10"))
        .unwrap()
        + 1;
    let crlf = stdlib.replace('\n', "\r\n");
    for (kwanus, expected) in [
        (relaxed.as_str(), Some(relaxed_line)),
        (stdlib, None),
        (crlf.as_str(), None),
    ] {
        let mut session = Session::default();
        let child = session.set_file("fleet.pmf", EU.to_string());
        let copy = session.set_file("vendor/kwanus.pmf", kwanus.to_string());
        let mut found = Vec::new();
        for f in [child, copy] {
            for d in session.check(f) {
                if d.code.id() == "PMF114" {
                    found.push((
                        d.primary.file.clone(),
                        d.is_error(),
                        d.primary.message.clone(),
                    ));
                }
            }
        }
        match expected {
            Some(line) => assert_eq!(
                found,
                [(
                    "vendor/kwanus.pmf".to_string(),
                    false,
                    format!("differs from the standard library from line {line}")
                )]
            ),
            None => assert!(found.is_empty(), "{found:?}"),
        }
    }
}
