//! Stores written by older pmf open, verify, read and go on.
//! `tests/fixtures/store-v2/` is a store made by the pmf of schema 2
//! (events as JSON, hashes as hex text; a subset of the fleet: plan, TSC
//! and ERC approvals, apply, a rollback of p-001, a review promoting
//! p-021); `tests/fixtures/store-v3/` one made by the pmf of schema 3
//! (compact events, a global chain column, states as JSON text; the whole
//! fleet: plan, TSC and ERC approvals, apply, a rollback of p-001), with
//! what that pmf showed of it (`lineage-show.txt`, `state-export.json`).
//! Each is kept as its SQL dump with the operator key, the plan, its
//! approvals and a witness's checkpoint.

use std::path::Path;

use pmf::store::Store;
use pmf::store::lineage::EventKind;

use crate::runtime::{code, column, db, pmf, text};

const FIXTURE: &str = "tests/fixtures/store-v2";
const FIXTURE_V3: &str = "tests/fixtures/store-v3";

/// The schema-2 store, rebuilt from its dump in a new directory.
fn old_store() -> tempfile::TempDir {
    store_of(FIXTURE)
}

/// A fixture's store, rebuilt from its dump in a new directory.
fn store_of(fixture: &str) -> tempfile::TempDir {
    let fixture = Path::new(fixture);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".pmf")).unwrap();
    let sql = std::fs::read_to_string(fixture.join("state.sql")).unwrap();
    rusqlite::Connection::open(dir.path().join(".pmf/state.db"))
        .unwrap()
        .execute_batch(&sql)
        .unwrap();
    for f in ["witness.json", "plan.json", "approvals.json"] {
        std::fs::copy(fixture.join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(
        fixture.join("operator.key"),
        dir.path().join(".pmf/operator.key"),
    )
    .unwrap();
    dir
}

fn verify(dir: &Path, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["lineage", "verify"];
    args.extend_from_slice(extra);
    let o = pmf(dir, &args);
    (code(&o), text(&o.stdout))
}

#[test]
fn a_schema_2_store_is_migrated_and_still_verifies() {
    let dir = old_store();
    let version: i64 = db(dir.path())
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2);
    // Opening migrates it; every event signed before still verifies, and
    // the log extends the checkpoint a witness kept before the migration.
    let (c, out) = verify(dir.path(), &["--checkpoint", "witness.json"]);
    assert_eq!(c, 0, "{out}");
    assert!(
        out.contains("lineage intact: 62 events across 9 partners, 3 signed checkpoints"),
        "{out}"
    );
    assert!(
        out.contains("extends the witness's checkpoint of 62 events"),
        "{out}"
    );
    let store = Store::open_existing(&dir.path().join(".pmf/state.db")).unwrap();
    assert_eq!(store.schema_version().unwrap(), 10);
    // Schema 9: a row no longer says when it was written (no digest
    // covered it; the lineage says when).
    let columns: Vec<String> = column(
        &db(dir.path()),
        "SELECT name FROM pragma_table_info('partners')",
    );
    assert_eq!(columns, ["id", "state", "version", "status"]);
    // Schema 4: states stored before keep their text, and read as they
    // were written; the lineage has no global chain column any more.
    let stored_as: Vec<String> = column(
        &db(dir.path()),
        "SELECT DISTINCT typeof(state) FROM partners",
    );
    assert_eq!(stored_as, ["text"]);
    let columns: Vec<String> = column(
        &db(dir.path()),
        "SELECT name FROM pragma_table_info('lineage')",
    );
    assert_eq!(
        columns,
        ["global_seq", "partner_id", "seq", "event", "hash"]
    );
    let p001 = store.partner("p-001").unwrap().unwrap();
    assert!(
        p001.state.starts_with("{\"")
            && serde_json::from_str::<serde_json::Value>(&p001.state).is_ok()
    );
    // The old events read as they were written.
    let events = store.lineage(Some("p-021")).unwrap();
    assert!(events.iter().all(|e| e.event.partner == "p-021"));
    assert_eq!(
        events.last().map(|e| e.event.kind),
        Some(EventKind::ReviewPromoted)
    );
    assert!(events.iter().any(|e| e.event.kind == EventKind::Validated));
    let last = store.last_event("p-014").unwrap().unwrap();
    assert_eq!(last.outcome.as_deref(), Some("awaiting_review"));
    drop(store);
    let shown = text(&pmf(dir.path(), &["lineage", "show", "p-001"]).stdout);
    assert!(shown.contains("rollback") && shown.contains("“"), "{shown}");

    // The plan applied again: p-021, promoted by the review, goes on, its
    // new events (in the compact encoding) chained after its old ones.
    let o = pmf(
        dir.path(),
        &[
            "apply",
            "plan.json",
            "--approvals",
            "approvals.json",
            "--format",
            "json",
        ],
    );
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let store = Store::open_existing(&dir.path().join(".pmf/state.db")).unwrap();
    let events = store.lineage(Some("p-021")).unwrap();
    assert!(events.len() > 1 && events.iter().any(|e| e.event.kind == EventKind::Promoted));
    drop(store);
    // The rows written since are packed; the text ones left still read.
    let kinds: Vec<String> = column(
        &db(dir.path()),
        "SELECT DISTINCT typeof(state) FROM partners ORDER BY 1",
    );
    assert!(kinds.contains(&"blob".to_string()), "{kinds:?}");
    let (c, out) = verify(dir.path(), &["--checkpoint", "witness.json"]);
    assert_eq!(c, 0, "{out}");

    // A proof of a partner with events of both encodings checks out with
    // the independent verifier.
    let o = pmf(dir.path(), &["lineage", "prove", "p-021"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    std::fs::write(dir.path().join("proof.json"), &o.stdout).unwrap();
    let proof: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let formats: Vec<bool> = proof["inclusion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.get("body").is_some())
        .collect();
    assert!(
        formats.contains(&true) && formats.contains(&false),
        "{proof}"
    );
    let verifier = std::path::absolute("tests/integration/verify_proof.py").unwrap();
    let ok = std::process::Command::new("python3")
        .arg(&verifier)
        .arg("proof.json")
        .current_dir(dir.path())
        .output()
        .expect("python3");
    assert_eq!(code(&ok), 0, "{}{}", text(&ok.stdout), text(&ok.stderr));
}

#[test]
fn an_old_event_edited_after_the_migration_is_caught() {
    let dir = old_store();
    let (c, out) = verify(dir.path(), &[]);
    assert_eq!(c, 0, "{out}");
    // A health score of an event written as JSON, changed.
    let changed = db(dir.path())
        .execute(
            "UPDATE lineage SET event = replace(event, '\"health\":66', '\"health\":96')
             WHERE global_seq = (SELECT MIN(global_seq) FROM lineage WHERE event LIKE '%\"health\":66%')",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let (c, out) = verify(dir.path(), &[]);
    assert_eq!(c, 1, "{out}");
    assert!(out.contains("does not match its hash"), "{out}");
}

#[test]
fn an_old_store_edited_before_the_migration_is_still_caught() {
    let dir = old_store();
    // The old layout, edited before pmf opens it: the edit survives the
    // migration and is named.
    db(dir.path())
        .execute_batch(
            "UPDATE lineage SET hash = 'ab' || substr(hash, 3) WHERE global_seq = 20;
             DELETE FROM progress WHERE partner_id = 'p-018';",
        )
        .unwrap();
    let (c, out) = verify(dir.path(), &[]);
    assert_eq!(c, 1, "{out}");
    assert!(out.contains("event #20"), "{out}");
    assert!(out.contains("progress row is missing"), "{out}");
}

/// The first bytes (the encodings' tags) of the lineage's events.
fn event_tags(dir: &Path) -> Vec<u8> {
    column::<i64>(
        &db(dir),
        "SELECT DISTINCT unicode(CAST(substr(event, 1, 1) AS TEXT)) FROM lineage ORDER BY 1",
    )
    .into_iter()
    .map(|t| t as u8)
    .collect()
}

#[test]
fn a_schema_3_store_is_migrated_keeping_every_row_and_what_it_shows() {
    let dir = store_of(FIXTURE_V3);
    let version: i64 = db(dir.path())
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 3);
    let (c, out) = verify(dir.path(), &["--checkpoint", "witness.json"]);
    assert_eq!(c, 0, "{out}");
    // 36 partners: the governance chain is the store's own, not a partner.
    assert!(
        out.contains("lineage intact: 213 events across 36 partners, 2 signed checkpoints"),
        "{out}"
    );
    // The events and states are kept as they were written; what pmf shows
    // of them is what the pmf of schema 3 showed.
    assert_eq!(event_tags(dir.path()), [0x02]);
    let fixture = Path::new(FIXTURE_V3);
    let shown = text(&pmf(dir.path(), &["lineage", "show"]).stdout);
    assert_eq!(
        shown,
        std::fs::read_to_string(fixture.join("lineage-show.txt")).unwrap()
    );
    let exported = text(&pmf(dir.path(), &["state", "export"]).stdout);
    assert_eq!(
        exported,
        std::fs::read_to_string(fixture.join("state-export.json")).unwrap()
    );
    let store = Store::open_existing(&dir.path().join(".pmf/state.db")).unwrap();
    assert_eq!(store.schema_version().unwrap(), 10);
    drop(store);
    // Schema 5: the plans applied before carried no expiry, and none is
    // made up for them.
    let noted: Vec<Option<String>> = column(&db(dir.path()), "SELECT expires_at FROM plans");
    assert!(
        !noted.is_empty() && noted.iter().all(Option::is_none),
        "{noted:?}"
    );
    // Schema 6: the policy that governed it before keeps no text, and
    // none is made up for it; verify says so.
    let kept: Vec<String> = column(&db(dir.path()), "SELECT hash FROM policies");
    assert!(kept.is_empty(), "{kept:?}");
    assert!(
        out.contains("policies that governed the store: 1, the text of 0 kept"),
        "{out}"
    );

    // SCO signs the plan too: the partners that waited for it go on, their
    // new events stored as one run of interned events, chained after their
    // compact ones.
    std::fs::copy("examples/fleet/keys/SCO.key", dir.path().join("SCO.key")).unwrap();
    let o = pmf(
        dir.path(),
        &[
            "approve",
            "plan.json",
            "--key",
            "SCO.key",
            "-o",
            "approvals.json",
            "--yes",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let observed = std::path::absolute("examples/fleet/observed.json").unwrap();
    let o = pmf(
        dir.path(),
        &[
            "apply",
            "plan.json",
            "--approvals",
            "approvals.json",
            "--observed",
            observed.to_str().unwrap(),
        ],
    );
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let tags = event_tags(dir.path());
    assert!(tags.contains(&0x02) && tags.contains(&0x04), "{tags:?}");
    let (c, out) = verify(dir.path(), &["--checkpoint", "witness.json"]);
    assert_eq!(c, 0, "{out}");
    assert!(
        out.contains("extends the witness's checkpoint of 213 events"),
        "{out}"
    );

    // A partner with events of both encodings: its proof holds for an
    // independent verifier.
    let partner: String = db(dir.path())
        .query_row(
            "SELECT partner_id FROM lineage WHERE substr(event, 1, 1) = X'04' AND partner_id NOT LIKE '@%'
             AND partner_id IN (SELECT partner_id FROM lineage WHERE substr(event, 1, 1) = X'02') LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let o = pmf(dir.path(), &["lineage", "prove", &partner]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    std::fs::write(dir.path().join("proof.json"), &o.stdout).unwrap();
    let verifier = std::path::absolute("tests/integration/verify_proof.py").unwrap();
    let ok = std::process::Command::new("python3")
        .arg(&verifier)
        .arg("proof.json")
        .current_dir(dir.path())
        .output()
        .expect("python3");
    assert_eq!(code(&ok), 0, "{}{}", text(&ok.stdout), text(&ok.stderr));
}
