//! `pmf apply` prepares partners ahead of the batch that writes them
//! (`prepare_partner` with the texts the store numbered, on a thread of its
//! own, then `record_partner`). Held here to the reference, `apply_partner`,
//! which does everything in the batch: both write the same rows, texts and
//! events (times aside), first on an empty store, then walking stored
//! partners again.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use pmf::runtime::apply::{
    ApplyBatch, ApplyInputs, Start, apply_partner, current_states, prepare_partner, record_partner,
    target_for_all,
};
use pmf::runtime::approvals;
use pmf::store::Store;
use pmf::store::checkpoint::OperatorKey;
use pmf::store::interned::Texts;

use super::runtime::{code, events_at, fleet, plan_with, pmf, text};

/// Partners in the generated fleet: more than three batches.
const PARTNERS: usize = 3_500;
/// Partners per batch, as `pmf apply` commits them.
const BATCH: usize = 1024;

/// Apply the plan at `plan` to the store at `store` with `approved`, in
/// batches; `ahead`: prepared with the texts committed two batches before
/// (none for the first two), else by the reference. Returns how many
/// partners had their rows made ahead.
fn apply(dir: &Path, store: &Path, approved: &[&str], ahead: bool) -> usize {
    let policy = pmf::runtime::load::load_policy(&[fleet("policy.pmf").into()]).expect("policy");
    let loaded = pmf::runtime::plan::read_plan(&dir.join("plan.json")).expect("plan");
    let observed = HashMap::new();
    let approved: HashSet<String> = approved.iter().map(|a| a.to_string()).collect();
    // The fleet's demo keys sign the plan.
    let approvals: Vec<_> = approved
        .iter()
        .map(|a| {
            let (_, key) = approvals::read_key(fleet(&format!("keys/{a}.key")).as_ref()).unwrap();
            approvals::sign(&key, a, &loaded.hash)
        })
        .collect();
    let signers: HashMap<String, Vec<String>> = approvals
        .iter()
        .map(|a| (a.authority.clone(), vec![a.public_key.clone()]))
        .collect();
    let inputs = ApplyInputs {
        policy: &policy,
        plan: &loaded,
        observed: &observed,
        approved: &approved,
        signers: &signers,
    };
    let mut store = Store::open(store).expect("store");
    let (key, _) = OperatorKey::load(&dir.join("operator.key"), true).expect("key");
    let progress = store.progress(&loaded.hash).expect("progress");
    let carried = loaded
        .plan
        .entries
        .iter()
        .map(|e| e.state.clone())
        .collect();
    let current = current_states(&store, &inputs, progress, carried).expect("current states");
    let mut lit = store.illumination().expect("illumination");
    let target_all = target_for_all(&inputs);
    let mut committed = vec![Texts::default(), Texts::default()];
    let (mut ready, mut sealed_ahead, mut shed_count) = (0, 0, 0);
    let mut shed_every_other = false;
    // One memo through the whole run, as each `pmf apply` thread keeps.
    let mut memo = pmf::runtime::value::CanonicalMemo::default();
    let starts = loaded
        .plan
        .entries
        .chunks(BATCH)
        .zip(current.starts.chunks(BATCH));
    for (chunk, chunk_starts) in starts {
        let known = committed[committed.len() - 2].clone();
        let mut batch = store.begin(&key).expect("begin");
        for a in &approvals {
            batch
                .add_approval(&loaded.hash, &a.authority, &a.public_key, &a.signature)
                .expect("approval");
        }
        let mut shared = ApplyBatch::begin(&inputs);
        for (entry, start) in chunk.iter().zip(chunk_starts) {
            let Start::Walk {
                state,
                last: prior,
                absent,
            } = start
            else {
                continue;
            };
            let (prior, absent) = (prior.as_deref(), *absent);
            if ahead {
                let prepared = prepare_partner(
                    &inputs,
                    target_all.as_ref(),
                    entry,
                    state,
                    prior,
                    absent.then_some(&known),
                    &mut memo,
                )
                .expect("prepared");
                let mut prepared = prepared;
                ready += usize::from(prepared.is_ready());
                // Events sealed ahead are shown before they are written
                // (`pmf apply --format json`): recording them changes none.
                let shown = prepared.sealed_events().map(json_of);
                // Every other partner drops what recording does not read
                // where it was prepared, as `pmf apply` does: the stores
                // compared below must not tell.
                let shed = shed_every_other && prepared.shed();
                shed_every_other = !shed_every_other;
                let recorded = record_partner(&mut batch, &inputs, &mut shared, prepared, absent)
                    .expect("recorded");
                if let Some(shown) = shown {
                    sealed_ahead += 1;
                    if shed {
                        assert!(recorded.events.is_empty(), "{}", entry.id);
                        shed_count += 1;
                    } else {
                        assert_eq!(shown, json_of(&recorded.events), "{}", entry.id);
                    }
                }
            } else {
                apply_partner(
                    &mut batch,
                    &inputs,
                    &mut shared,
                    entry,
                    state,
                    prior,
                    absent,
                )
                .expect("applied");
            }
        }
        shared
            .finish(&mut batch, &policy, &loaded.hash, &mut lit)
            .expect("outcomes");
        committed.push(batch.texts());
        batch.commit().expect("commit");
    }
    assert!(
        !ahead || sealed_ahead >= ready,
        "{sealed_ahead} shown ahead"
    );
    // Most partners complete: every other one of those was shed.
    assert!(!ahead || shed_count * 4 >= ready, "{shed_count} shed");
    ready
}

/// Events as `pmf apply --format json` shows them.
fn json_of(events: &[pmf::store::lineage::Event]) -> String {
    let mut json = Vec::new();
    for e in events {
        e.write_json(&mut json);
        json.push(b'\n');
    }
    String::from_utf8(json).expect("UTF-8")
}

/// Every row of `table` in the store at `store`, in order, each column as
/// SQLite gives it.
fn rows(store: &Path, table: &str, order: &str) -> Vec<Vec<rusqlite::types::Value>> {
    let c = rusqlite::Connection::open(store).unwrap();
    let mut stmt = c
        .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
        .unwrap();
    let width = stmt.column_count();
    stmt.query_map([], |r| (0..width).map(|i| r.get(i)).collect())
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// What the two stores must hold alike: every table but the times.
fn same_stores(reference: &Path, ahead: &Path) {
    for (table, order) in [
        ("texts", "id"),
        ("stable_versions", "partner_id, seq"),
        ("progress", "plan, partner_id"),
        ("plans", "id"),
    ] {
        assert_eq!(
            rows(reference, table, order),
            rows(ahead, table, order),
            "{table}"
        );
    }
    // A partner's row, but when it was written.
    let partners = |store| {
        rows(store, "partners", "id")
            .into_iter()
            .map(|r| r[..4].to_vec())
            .collect::<Vec<_>>()
    };
    assert_eq!(partners(reference), partners(ahead), "partners");
    let events = |store| {
        events_at(store)
            .into_iter()
            .map(|(global, mut e)| {
                e.time.clear();
                (global, e)
            })
            .collect::<Vec<_>>()
    };
    let (want, got) = (events(reference), events(ahead));
    assert!(want.len() > PARTNERS, "{} events", want.len());
    assert_eq!(want, got, "events");
}

#[test]
fn partners_prepared_ahead_write_what_the_reference_writes() {
    let dir = tempfile::tempdir().unwrap();
    let base: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let partners: Vec<serde_json::Value> = (0..PARTNERS)
        .map(|i| {
            let mut p = base[i % base.len()].clone();
            p["id"] = format!("g-{i:05}").into();
            p
        })
        .collect();
    std::fs::write(
        dir.path().join("partners.json"),
        serde_json::to_string(&partners).unwrap(),
    )
    .unwrap();
    // The fleet's targets, each partner's given to every partner made
    // from it.
    let mut target: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet("target.json")).unwrap()).unwrap();
    let own = target["partners"].take();
    target["partners"] = (0..PARTNERS)
        .filter_map(|i| {
            let t = own.get(base[i % base.len()]["id"].as_str()?)?;
            Some((format!("g-{i:05}"), t.clone()))
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    std::fs::write(dir.path().join("target.json"), target.to_string()).unwrap();
    let o = plan_with(dir.path(), "partners.json", "target.json", "plan.json", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let (reference, ahead) = (dir.path().join("reference.db"), dir.path().join("ahead.db"));

    // An empty store: every partner absent. The first two batches have no
    // texts yet (so nothing is made ahead); the rest have them.
    assert_eq!(apply(dir.path(), &reference, &["TSC", "ERC"], false), 0);
    let ready = apply(dir.path(), &ahead, &["TSC", "ERC"], true);
    assert!(
        ready > PARTNERS - 2 * BATCH - 100,
        "{ready} partners made ahead"
    );
    same_stores(&reference, &ahead);

    // The same plan again with SCO's approval too: the partners that waited
    // for it are stored now, so they are walked again over their rows.
    apply(dir.path(), &reference, &["TSC", "ERC", "SCO"], false);
    apply(dir.path(), &ahead, &["TSC", "ERC", "SCO"], true);
    same_stores(&reference, &ahead);

    for store in [&reference, &ahead] {
        let o = pmf(
            dir.path(),
            &["lineage", "verify", "--store", store.to_str().unwrap()],
        );
        assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    }
}

/// A batch defers the rows every partner writes (its row, its stable
/// versions, its run, its progress) and inserts them table by table: what
/// the batch reads before it commits still sees them, and the commit
/// writes them all.
#[test]
fn a_batch_reads_the_rows_it_deferred_and_commits_them() {
    use pmf::store::lineage::{Event, EventKind};
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("state.db")).expect("store");
    let (key, _) = OperatorKey::load(&dir.path().join("operator.key"), true).expect("key");
    let state = r#"{"id":"p-1","power":5.0}"#;
    let moved = r#"{"id":"p-1","power":6.0}"#;
    let mut batch = store.begin(&key).expect("begin");
    // A run of one event for partner `p-1`: its chain read, then its row,
    // its stable version `seq`, the event and its progress.
    let run = |batch: &mut pmf::store::batch::Batch<'_>, seq, state, version, kind, outcome| {
        let mut chain = batch.chain("p-1").unwrap();
        let row = batch
            .put_partner("p-1", state, Some(version), "active")
            .unwrap();
        let stable = batch.push_stable("p-1", seq, Some(version), state).unwrap();
        let mut event = Event {
            kind,
            state: Some(row),
            stable: vec![stable],
            plan_hash: Some("plan-1".into()),
            outcome: Some("completed".into()),
            time: pmf::store::clock::now_rfc3339().into(),
            ..Event::default()
        };
        batch.append(&mut chain, &mut event).unwrap();
        batch.set_progress("plan-1", "p-1", outcome).unwrap();
    };
    // A partner first seen: its row, its first stable version, one event.
    run(
        &mut batch,
        1,
        state,
        "1.0.0",
        EventKind::Unchanged,
        "unchanged",
    );
    // Read back before the commit: the row, the next stable number and
    // the chain's head are those just written.
    let read = batch
        .partner("p-1")
        .unwrap()
        .expect("the row deferred is read");
    assert_eq!(
        (
            read.state.as_str(),
            read.version.as_deref(),
            read.status.as_str()
        ),
        (state, Some("1.0.0"), "active")
    );
    assert_eq!(batch.next_stable_seq("p-1").unwrap(), 2);
    // The chain goes on from the run deferred (from the start, its second
    // run would take its first event's place and the commit would fail).
    run(
        &mut batch,
        2,
        moved,
        "1.1.0",
        EventKind::Completed,
        "completed",
    );
    batch.commit().expect("commit");
    // Committed: the last row written, both stable versions, both runs,
    // the last progress; and the store verifies.
    let read = store.partner("p-1").unwrap().expect("committed");
    assert_eq!(
        (read.state.as_str(), read.version.as_deref()),
        (moved, Some("1.1.0"))
    );
    assert_eq!(
        store
            .progress("plan-1")
            .unwrap()
            .get("p-1")
            .map(String::as_str),
        Some("completed")
    );
    let checked = store.verify(None).expect("verify");
    assert_eq!(checked.broken, None, "{:?}", checked.problems);
    assert_eq!((checked.events, checked.partners), (2, 1));
    let c = rusqlite::Connection::open(dir.path().join("state.db")).unwrap();
    let stable: i64 = c
        .query_row("SELECT count(*) FROM stable_versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stable, 2);
}
