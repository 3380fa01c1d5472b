//! Illumination: the fallback risks a plan shows its signers come from
//! outcome counts the store's lineage holds (events of `@illumination`,
//! covered by the signed checkpoints), never from a table anyone who can
//! write the store file could edit; and `apply` holds a plan's risks to
//! the counts the plan names.

use std::path::Path;
use std::process::Output;

use pmf::store::illumination::{self, ILLUMINATION};
use pmf::store::interned::Texts;
use pmf::store::lineage::{EventKind, read_event_with};
use rusqlite::Connection;

use crate::integrity::{
    again_refused, detected, explode, forget_key_memory, held, plan_again, put_event, recompute,
    story, verify,
};
use crate::runtime::{code, column, db, events_at, fleet, plan_with, pmf, refusals, text};

/// The counts of the last event of `@illumination` in the store in `d`,
/// with its position.
fn last_counts(d: &Path) -> (u64, pmf::store::OutcomeCounts) {
    let (_, e) = events_at(&d.join(".pmf/state.db"))
        .into_iter()
        .rfind(|(_, e)| e.partner == ILLUMINATION)
        .expect("an illumination event");
    (e.seq, illumination::counts_of(&e).expect("counts"))
}

/// The `history` a plan file in `d` names.
fn history_of(d: &Path, plan: &str) -> String {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join(plan)).unwrap()).unwrap();
    doc["header"]["history"].as_str().unwrap().to_string()
}

/// Apply `plan` in `d` with the approvals of every authority.
fn apply_again(d: &Path, plan: &str) -> Output {
    pmf(d, &["apply", plan, "--approvals", "again-approvals.json"])
}

/// Edit the last `@illumination` event of the store `c` is open on in
/// place (its chain hash kept): every count of it made `counts`
/// (`N migrated, F fell back`).
fn edit_last_counts(c: &Connection, counts: &str) {
    explode(c);
    let (g, seq, body): (i64, i64, Vec<u8>) = c
        .query_row(
            "SELECT global_seq, seq, event FROM lineage WHERE partner_id = ?1 ORDER BY seq DESC LIMIT 1",
            [ILLUMINATION],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let texts = Texts::load(c).unwrap();
    let mut e = read_event_with(&body, ILLUMINATION, seq as u64, &texts).unwrap();
    let detail = e.detail.take().unwrap_or_default();
    let edited = detail
        .split("; ")
        .map(|count| {
            let (kind, _) = count.split_once(": ").unwrap();
            format!("{kind}: {counts}")
        })
        .collect::<Vec<_>>()
        .join("; ");
    assert_ne!(edited, detail);
    e.detail = Some(edited);
    put_event(c, g, &e);
}

/// Each batch that completes or falls back partners records the counts
/// after it on `@illumination`; a plan names the event it read them from,
/// and applies; `verify` holds the chain.
#[test]
fn fallback_risks_come_from_counts_the_lineage_holds() {
    let dir = story();
    let d = dir.path();
    // The story's apply completed and fell back partners of the fleet.
    let (seq, counts) = last_counts(d);
    assert_eq!(seq, 1, "one batch");
    let total: u64 = counts.values().map(|(t, _)| t).sum();
    let fallbacks: u64 = counts.values().map(|(_, f)| f).sum();
    assert!(total > 0 && fallbacks > 0, "{counts:?}");
    // The story's plan was made before the store: it read no counts.
    assert_eq!(
        history_of(d, "plan.json"),
        format!("0:{}", illumination::digest(&Default::default()))
    );
    let o = pmf(d, &["status"]);
    assert!(
        text(&o.stdout).contains(&format!(
            "outcomes  {total} migrations counted ({fallbacks} fell back) over {} kinds of migration, by event 1 of `@illumination`",
            counts.len()
        )),
        "{}",
        text(&o.stdout)
    );
    plan_again(d);
    assert_eq!(
        history_of(d, "again.json"),
        format!("1:{}", illumination::digest(&counts))
    );
    let o = apply_again(d, "again.json");
    assert!(
        !text(&o.stderr).contains("fallback risk"),
        "{}",
        text(&o.stderr)
    );
    assert!(refusals(d).is_empty(), "{:?}", refusals(d));
    // The second apply counted on from the first.
    let (seq, after) = last_counts(d);
    assert_eq!(seq, 2);
    for (key, (t, f)) in &counts {
        let (t2, f2) = after[key];
        assert!(t2 >= *t && f2 >= *f, "{key:?}");
    }
    let o = verify(d, &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains(
            "illumination counts: 2 events of `@illumination`, each count only growing, held to what the walks of 2 plans record"
        ),
        "{}",
        text(&o.stdout)
    );
}

/// A plan whose risks were edited before it was signed (a risky migration
/// made to look safe) applies nothing, and the refusal is recorded.
#[test]
fn a_plan_whose_fallback_risks_were_edited_applies_nothing() {
    let dir = story();
    let d = dir.path();
    plan_again(d);
    let plan = std::fs::read_to_string(d.join("again.json")).unwrap();
    let line = plan
        .lines()
        .find(|l| l.starts_with("{\"id\":\"p-012\""))
        .unwrap();
    let risk = line
        .split("\"fallback_risk\":")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap();
    let edited = plan.replacen(
        line,
        &line.replacen(
            &format!("\"fallback_risk\":{risk}"),
            "\"fallback_risk\":0.001",
            1,
        ),
        1,
    );
    assert_ne!(edited, plan);
    std::fs::write(d.join("edited.json"), edited).unwrap();
    for a in ["TSC", "ERC", "SCO"] {
        let key = format!("{a}.key");
        let o = pmf(
            d,
            &[
                "approve",
                "edited.json",
                "--key",
                &key,
                "--yes",
                "-o",
                "edited-approvals.json",
            ],
        );
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        // The signer is told where the risks come from, and who holds them.
        let shown = format!("{}{}", text(&o.stdout), text(&o.stderr));
        assert!(
            shown.contains("risk      fallback risk up to ")
                && shown.contains("predicted from the outcome counts of event 1 of the store's `@illumination`; `pmf apply` holds every risk to what it was predicted from"),
            "{shown}"
        );
    }
    let before = held(d);
    let o = pmf(
        d,
        &[
            "apply",
            "edited.json",
            "--approvals",
            "edited-approvals.json",
        ],
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("the plan's fallback risks are not those the counts it names predict")
            && err.contains(&format!(
                "partner `p-012`: the plan says fallback risk 0.001; the counts it names predict {risk}"
            )),
        "{err}"
    );
    // Nothing applied but the refusal, which names the partner.
    let (partners, events) = held(d);
    assert_eq!((partners, events), (before.0, before.1 + 1));
    assert!(refusals(d).last().is_some_and(|r| r.contains("p-012")));
    // The control: the plan as `pmf plan` wrote it applies.
    let o = apply_again(d, "again.json");
    assert!(
        !text(&o.stderr).contains("fallback risk"),
        "{}",
        text(&o.stderr)
    );
}

/// Counts edited in the store are never read as history: edited in place
/// (the chain hash kept), `plan` refuses to read them; rewritten with
/// every hash recomputed, the plan made from them applies nothing; made to
/// fall, or to say more than the partners' walks record, by someone who
/// holds the operator key, `verify` names it.
#[test]
fn counts_edited_in_the_store_are_never_read_as_history() {
    // Every migration a success: risks near nothing.
    let dir = story();
    let d = dir.path();
    let c = db(d);
    edit_last_counts(&c, "1000 migrated, 0 fell back");
    drop(c);
    std::fs::write(d.join("target2.json"), r#"{"version": "2.1.0"}"#).unwrap();
    let o = pmf(d, &["state", "export", "--format", "ndjson"]);
    std::fs::write(d.join("current.ndjson"), &o.stdout).unwrap();
    let o = plan_with(d, "current.ndjson", "target2.json", "again.json", &[]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(
            "the store's illumination counts (`@illumination`) cannot be read from its lineage: its event does not match its chain hash"
        ),
        "{}",
        text(&o.stderr)
    );
    detected(d, &[], "its content does not match its hash");
    // `status` says so, and still reports the rest.
    let o = pmf(d, &["status"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout)
            .contains("outcomes  the store's illumination counts (`@illumination`) cannot be read"),
        "{}",
        text(&o.stdout)
    );

    // Rewritten consistently, without the key: the plan reads the forged
    // counts, and apply refuses the store they were forged in.
    let dir = story();
    let d = dir.path();
    let c = db(d);
    edit_last_counts(&c, "1000 migrated, 0 fell back");
    recompute(&c, None);
    drop(c);
    again_refused(d, "is not what its signed checkpoints vouch for");

    // Made to fall and signed again with the operator key (its memory
    // erased too): the chain says the counts fell. (The second apply's
    // event is edited: the first has none before it to fall from.)
    let dir = story();
    let d = dir.path();
    plan_again(d);
    let o = apply_again(d, "again.json");
    assert!(refusals(d).is_empty(), "{}", text(&o.stderr));
    let c = db(d);
    edit_last_counts(&c, "0 migrated, 0 fell back");
    recompute(&c, Some(&key_of(d)));
    drop(c);
    forget_key_memory(d);
    detected(d, &[], "counts only grow");

    // Made to grow past what the partners' walks record, signed again
    // with the key: the counts no longer say what the runs did.
    let dir = story();
    let d = dir.path();
    let c = db(d);
    edit_last_counts(&c, "1000 migrated, 0 fell back");
    recompute(&c, Some(&key_of(d)));
    drop(c);
    forget_key_memory(d);
    detected(
        d,
        &[],
        "migrated 1000 partners by `soft` (0 fell back), but its walks record",
    );
}

/// The operator key beside the store in `d`.
fn key_of(d: &Path) -> pmf::store::checkpoint::OperatorKey {
    pmf::store::checkpoint::OperatorKey::load(&d.join(".pmf/operator.key"), false)
        .unwrap()
        .0
}

/// A store of schema 7 counted outcomes in a table no checkpoint covered:
/// its counts are read as position 0 until the first apply that counts
/// carries them into the lineage (an event that names no plan), and the
/// table is then read no more.
#[test]
fn counts_of_a_schema_7_store_are_carried_into_the_lineage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A store that holds the fleet and no counts yet, made a store of
    // schema 7 with a table of counts (as pmf 7 kept them).
    let o = pmf(
        d,
        &[
            "state",
            "import",
            &fleet("partners.json"),
            "--policy",
            &fleet("policy.pmf"),
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let c = db(d);
    c.execute_batch(
        "ALTER TABLE outcomes_v7 RENAME TO outcomes;
         INSERT INTO outcomes VALUES ('soft', 'structural', 40, 30);
         ALTER TABLE partners ADD COLUMN updated_at TEXT NOT NULL DEFAULT '';
         ALTER TABLE checkpoints DROP COLUMN prev;
         PRAGMA user_version = 7;",
    )
    .unwrap();
    drop(c);
    for a in ["TSC", "ERC", "SCO"] {
        std::fs::copy(fleet(&format!("keys/{a}.key")), d.join(format!("{a}.key"))).unwrap();
    }
    let o = pmf(d, &["status"]);
    assert!(
        text(&o.stdout).contains("outcomes  40 migrations counted (30 fell back) over 1 kind of migration, in the table of schema 7"),
        "{}",
        text(&o.stdout)
    );
    plan_again(d);
    let carried: pmf::store::OutcomeCounts =
        [(("soft".to_string(), "structural".to_string()), (40, 30))].into();
    assert_eq!(
        history_of(d, "again.json"),
        format!("0:{}", illumination::digest(&carried))
    );
    let o = apply_again(d, "again.json");
    assert!(refusals(d).is_empty(), "{}", text(&o.stderr));
    let events: Vec<_> = events_at(&d.join(".pmf/state.db"))
        .into_iter()
        .map(|(_, e)| e)
        .filter(|e| e.partner == ILLUMINATION)
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].plan_hash, None);
    assert_eq!(illumination::counts_of(&events[0]), Ok(carried.clone()));
    assert!(events[1].plan_hash.is_some());
    let c = db(d);
    assert_eq!(column::<i64>(&c, "SELECT COUNT(*) FROM outcomes_v7"), [0]);
    // Rows put back in the old table count for nothing now.
    c.execute(
        "INSERT INTO outcomes_v7 VALUES ('soft', 'structural', 1000, 0)",
        [],
    )
    .unwrap();
    drop(c);
    let (seq, counts) = last_counts(d);
    std::fs::remove_file(d.join("again-approvals.json")).unwrap();
    plan_again(d);
    assert_eq!(
        history_of(d, "again.json"),
        format!("{seq}:{}", illumination::digest(&counts))
    );
    let o = verify(d, &["--format", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    // The plan applied across the carry is not held (its first batch's
    // walks come before the carried counts); the counts are followed.
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["illumination"]["events"], 2, "{v}");
}

/// A migration a review decision aborts is a fallback the counts include,
/// under the type and categories its paused walk names (before, an abort
/// was counted nowhere: the risks of the migrations review held back were
/// understated); `verify` holds the counts to the walks, the abort's
/// included.
#[test]
fn a_migration_a_review_aborts_is_counted_as_a_fallback() {
    let dir = story();
    let d = dir.path();
    let (seq, before) = last_counts(d);
    let events = events_at(&d.join(".pmf/state.db"));
    let (_, paused) = events.iter().rfind(|(_, e)| e.partner == "p-005").unwrap();
    assert_eq!(paused.kind, EventKind::AwaitingReview);
    assert_eq!(paused.migration.as_deref(), Some("soft"));
    assert_eq!(
        paused.categories.as_deref(),
        Some(&["structural".to_string()][..])
    );
    let policy = fleet("policy.pmf");
    let o = pmf(
        d,
        &[
            "review",
            "abort",
            "p-005",
            "--key",
            "TSC.key",
            "--policy",
            &policy,
            "--reason",
            "too risky",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let (after_seq, after) = last_counts(d);
    assert_eq!(after_seq, seq + 1);
    let key = ("soft".to_string(), "structural".to_string());
    let (total, fell) = before.get(&key).copied().unwrap_or_default();
    assert_eq!(after.get(&key).copied(), Some((total + 1, fell + 1)));
    assert_eq!(after.len(), before.len());
    for (k, v) in &before {
        if *k != key {
            assert_eq!(after.get(k), Some(v), "{k:?}");
        }
    }
    let o = verify(d, &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    // The next plan predicts from them.
    plan_again(d);
    assert!(
        history_of(d, "again.json").starts_with(&format!("{after_seq}:")),
        "{}",
        history_of(d, "again.json")
    );
}
