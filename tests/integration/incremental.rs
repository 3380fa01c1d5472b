//! salsa incrementality: after one file of a multi-file policy is edited,
//! the other files are not parsed again.

use pmf::db::{Database, Session};

fn parses(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|e| e.starts_with("parse_file("))
        .cloned()
        .collect()
}

#[test]
fn editing_one_file_reparses_only_that_file() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let base = session.set_file("base.pmf", "policy base extends kwanus\n\npartner {\n  region: string\n}\n\ncompatibility {\n  region_kept: target.region == partner.region else restrict\n}\n".into());
    let child = session.set_file(
        "child.pmf",
        "policy child extends base\n\noverride ceiling power <= 7\n".into(),
    );
    let other = session.set_file("other.pmf", "policy other extends kwanus\n".into());
    for f in [base, child, other] {
        assert!(session.check(f).iter().all(|d| !d.is_error()));
    }
    let first = parses(&log.lock().unwrap());
    assert_eq!(
        first.len(),
        4,
        "stdlib and three files parsed once: {first:?}"
    );
    log.lock().unwrap().clear();

    session.set_file(
        "child.pmf",
        "policy child extends base\n\noverride ceiling power <= \"x\"\n".into(),
    );
    let diags: Vec<_> = [base, child, other]
        .iter()
        .flat_map(|f| session.check(*f))
        .collect();
    assert!(diags.iter().any(|d| d.code.id() == "PMF803"), "{diags:?}");
    let second = parses(&log.lock().unwrap());
    assert_eq!(
        second.len(),
        1,
        "only the edited file is parsed again: {second:?}"
    );
    let executed = log.lock().unwrap().clone();
    // Checks of files that do not depend on child.pmf do not run again.
    let rechecked: Vec<&String> = executed
        .iter()
        .filter(|e| e.starts_with("check_file("))
        .collect();
    assert_eq!(rechecked.len(), 1, "{executed:?}");
}

#[test]
fn editing_a_parent_rechecks_its_children() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let base = session.set_file("base.pmf", "policy base extends kwanus\n".into());
    let child_text = "policy child extends base\n\npartner {\n  region: string\n}\n\ncompatibility {\n  region_kept: target.region == partner.region else restrict\n}\n";
    let child = session.set_file("child.pmf", child_text.into());
    assert!(
        session.check(child).is_empty(),
        "{:?}",
        session.check(child)
    );
    log.lock().unwrap().clear();
    session.set_file(
        "base.pmf",
        "policy base extends kwanus\n\npartner {\n  region: string\n}\n".into(),
    );
    let _ = session.check(base);
    let diags = session.check(child);
    assert!(diags.iter().any(|d| d.code.id() == "PMF702"), "{diags:?}");
    assert_eq!(parses(&log.lock().unwrap()).len(), 1);
}
