//! `pmf lineage verify`: everything the store says is held to what was
//! signed. The hash chains are recomputed; the Merkle root at every signed
//! checkpoint is recomputed and the checkpoint's signature checked against
//! the store's operator key; the current rows (`partners`,
//! `stable_versions`) are held to the digests their last events recorded;
//! every approval an event names is verified again; and, given a witness's
//! checkpoint, the log must still extend it.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::Serialize;

use super::checkpoint::{Checkpoint, FORMAT, FORMAT_CHAINED};
use super::governance::{GOVERNANCE, Governing};
use super::illumination::{self, ILLUMINATION};
use super::interned::Texts;
use super::lineage::{
    EventKind, GENESIS_BYTES, chain_hash_read, hex32, is_json, read_event_with, row_events,
};
use super::merkle::{self, Frontier, Tree};
use super::plans::{self, PLANS};
use super::refused::{self, REFUSED};
use super::rekey::{self, OPERATOR, Rekey, Succession};
use super::{Store, StoreError, row_digest_bytes, stable_digest_bytes};

/// What an authority signs: its name bound to the plan hash.
pub fn approval_message(authority: &str, plan_hash: &str) -> Vec<u8> {
    format!("pmf-approval-v1\n{authority}\n{plan_hash}").into_bytes()
}

/// What an authority signs to decide a paused partner's review: the
/// decision bound to the partner, its plan and its last event.
pub fn review_message(
    authority: &str,
    partner: &str,
    decision: &str,
    plan_hash: &str,
    prev_hash: &str,
) -> Vec<u8> {
    format!("pmf-review-v1\n{authority}\n{partner}\n{decision}\n{plan_hash}\n{prev_hash}")
        .into_bytes()
}

/// What is wrong with the approvals of a lost operator key's succession
/// (`signers`, `AUTHORITY:key`, of the request `request`): each must be
/// stored with a valid signature by a key `governing` trusts, and every
/// authority of it that has keys must be among them.
fn approved_succession_problems(
    approvals: &HashMap<(String, String, String), String>,
    governing: Option<&Governing>,
    request: &str,
    signers: &[String],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut endorsers = Vec::new();
    for signer in signers {
        let (authority, key) = signer.split_once(':').unwrap_or((signer, ""));
        let signed = stored_approval(approvals, request, authority, key);
        if signed && governing.is_some_and(|g| g.trusts(authority, key)) {
            endorsers.push((authority, key));
        } else {
            problems.push(format!(
                "its approval by `{authority}` is {}",
                if signed {
                    "by a key the governing policy does not trust"
                } else {
                    "not stored with a valid signature"
                }
            ));
        }
    }
    let missing = match governing {
        Some(g) => g.unendorsed(endorsers),
        None => vec!["a governing policy".to_string()],
    };
    if !missing.is_empty() {
        problems.push(format!(
            "a lost operator key is replaced with the approval of every authority of the governing policy; missing: {}",
            missing.join(", ")
        ));
    }
    problems
}

/// Whether `approvals` (the store's, by plan, authority and key) holds a
/// valid signature of `plan` by `key` for `authority`.
fn stored_approval(
    approvals: &HashMap<(String, String, String), String>,
    plan: &str,
    authority: &str,
    key: &str,
) -> bool {
    approvals
        .get(&(plan.to_string(), authority.to_string(), key.to_string()))
        .is_some_and(|sig| signature_holds(key, sig, &approval_message(authority, plan)))
}

/// Whether `signature` (hex) is `public_key`'s (hex) over `message`.
pub fn signature_holds(public_key: &str, signature: &str, message: &[u8]) -> bool {
    let key: Option<[u8; 32]> = hex::decode(public_key).ok().and_then(|b| b.try_into().ok());
    let sig: Option<[u8; 64]> = hex::decode(signature).ok().and_then(|b| b.try_into().ok());
    let (Some(key), Some(sig)) = (key, sig) else {
        return false;
    };
    VerifyingKey::from_bytes(&key).is_ok_and(|k| {
        k.verify_strict(message, &Signature::from_bytes(&sig))
            .is_ok()
    })
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// Global position of the first event concerned (or where one is missing).
    pub global_seq: i64,
    /// Its partner, when known.
    pub partner: Option<String>,
    /// Its position in the partner's chain, when known.
    pub seq: Option<i64>,
    /// What is wrong.
    pub reason: String,
}

/// The result of verifying the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Events checked.
    pub events: i64,
    /// Partners with a chain (the store's reserved chains, whose names
    /// start with `@`, are not partners).
    pub partners: usize,
    /// Signed checkpoints checked.
    pub checkpoints: usize,
    /// Approvals verified again.
    pub approvals: usize,
    /// The latest signed checkpoint.
    pub latest: Option<Checkpoint>,
    /// The first problem, if any.
    pub broken: Option<Broken>,
    /// Every problem found (the first one is `broken`).
    pub problems: Vec<Broken>,
    /// The policy that first governed the store (its trust root) and the
    /// event that records it, if any governs it.
    pub root_policy: Option<(i64, String)>,
    /// The policy that governs it now.
    pub governing_policy: Option<String>,
    /// Every policy that governed it, in order: the `governed` event that
    /// records it, its hash, and whether the event says the store kept its
    /// text ([`crate::governance::TEXT_KEPT`]).
    pub policies: Vec<(i64, String, bool)>,
    /// The operator key's successions (`pmf state rekey`), in order.
    pub successions: Succession,
    /// The illumination counts checked: events of `@illumination`, and
    /// the plans whose walks they were held to.
    pub illumination: (u64, usize),
    /// The plans marked on `@plans`: begun, and of them finished.
    pub plans: (usize, usize),
}

/// What the lineage recorded of one partner (held for every partner
/// until the tables are checked: digests as bytes, the plan by number).
#[derive(Default)]
struct Recorded {
    seq: i64,
    hash: [u8; 32],
    state: Option<Digest>,
    stable: Vec<Digest>,
    legacy: bool,
    /// The store holds its row (found by the row check).
    in_store: bool,
    /// The last plan named (an index into the plans met).
    plan: Option<u32>,
    last_global: i64,
    /// Per plan applied to the partner (an index into the plans met), the
    /// outcome its last state-bearing event of that plan records and
    /// where: what the partner's `progress` row must say.
    outcomes: Vec<PlanOutcome>,
}

/// A digest an event records: its 32 bytes when it is written as pmf
/// writes digests (64 lowercase hex digits), else its text as it is (which
/// no digest pmf computes equals).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Digest {
    Bytes([u8; 32]),
    Text(Box<str>),
}

impl Digest {
    fn of(text: &str) -> Digest {
        match lower_hex32(text) {
            Some(bytes) => Digest::Bytes(bytes),
            None => Digest::Text(text.into()),
        }
    }

    /// Whether it is `text`, as the event wrote it.
    #[cfg(test)]
    fn is(&self, text: &str) -> bool {
        *self == Digest::of(text)
    }
}

/// The 32 bytes of `text` when it is 64 lowercase hex digits.
fn lower_hex32(text: &str) -> Option<[u8; 32]> {
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let (pairs, []) = text.as_bytes().as_chunks::<2>() else {
        return None;
    };
    if pairs.len() != 32 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (b, &[hi, lo]) in bytes.iter_mut().zip(pairs) {
        *b = nibble(hi)? << 4 | nibble(lo)?;
    }
    Some(bytes)
}

/// The number of `name` among the names met (plans, migration types),
/// given one if new: what is held for every partner is a number.
fn numbered(numbers: &mut HashMap<String, u32>, names: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&n) = numbers.get(name) {
        return n;
    }
    let n = names.len() as u32;
    numbers.insert(name.to_string(), n);
    names.push(name.to_string());
    n
}

/// What the lineage records of one plan's run on one partner.
#[derive(Debug, Default)]
struct PlanOutcome {
    plan: u32,
    outcome: Option<String>,
    /// The migration type its last event names (a number of the types
    /// met; `apply`'s walks name one, a review decision's events do not).
    migration: Option<u32>,
    global_seq: i64,
    seq: i64,
    legacy: bool,
    /// Its `progress` row was found (by the progress check).
    matched: bool,
}

/// What the illumination counts say the partners' runs did, held to what
/// the runs record: per plan and migration type, the migrations its walks
/// (by `apply`) completed or fell back, and the fallbacks among them. A
/// run a review decision aborted names no migration type, and is not
/// counted, as `apply` does not count it.
/// Plans run before the counts were kept in the lineage (with a run older
/// than the counts carried from a table of schema 7, or than checkpoints)
/// are not held. Also says how many plans were held.
fn illumination_problems(
    partners: &HashMap<String, Recorded>,
    told: &HashMap<(u32, u32), (u64, u64)>,
    told_at: &HashMap<u32, i64>,
    carried_at: Option<i64>,
    (plan_names, type_names): (&[String], &[String]),
) -> (Vec<Broken>, usize) {
    let mut done: HashMap<(u32, u32), (u64, u64)> = HashMap::new();
    let mut done_at: HashMap<u32, i64> = HashMap::new();
    let mut older: std::collections::HashSet<u32> = Default::default();
    for run in partners.values().flat_map(|rec| &rec.outcomes) {
        if run.legacy || carried_at.is_some_and(|c| run.global_seq < c) {
            older.insert(run.plan);
            continue;
        }
        let fell_back = match run.outcome.as_deref() {
            Some("completed") => false,
            Some("fell_back") => true,
            _ => continue,
        };
        let Some(m) = run.migration else {
            continue;
        };
        let sum = done.entry((run.plan, m)).or_default();
        sum.0 += 1;
        sum.1 += u64::from(fell_back);
        let last = done_at.entry(run.plan).or_default();
        *last = (*last).max(run.global_seq);
    }
    let keys: std::collections::BTreeSet<&(u32, u32)> = done
        .keys()
        .chain(told.keys())
        .filter(|(plan, _)| !older.contains(plan))
        .collect();
    let held = keys
        .iter()
        .map(|(plan, _)| plan)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut out = Vec::new();
    for key @ (plan, m) in keys {
        let (runs, fell) = done.get(key).copied().unwrap_or_default();
        let (counted, counted_fell) = told.get(key).copied().unwrap_or_default();
        if (runs, fell) != (counted, counted_fell) {
            let name = plan_names.get(*plan as usize).map_or("", String::as_str);
            let m = type_names.get(*m as usize).map_or("", String::as_str);
            let place = told_at
                .get(plan)
                .or(done_at.get(plan))
                .copied()
                .unwrap_or(0);
            out.push(at(
                place,
                format!(
                    "the illumination counts say plan {} migrated {counted} partners by `{m}` ({counted_fell} fell back), but its walks record {runs} ({fell} fell back)",
                    name.get(..12).unwrap_or(name)
                ),
            ));
        }
    }
    (out, held)
}

fn at(global_seq: i64, reason: String) -> Broken {
    Broken {
        global_seq,
        partner: None,
        seq: None,
        reason,
    }
}

impl Store {
    /// Every signed checkpoint, oldest first.
    pub(crate) fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.read_checkpoints("ORDER BY size")
    }

    /// The latest signed checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.read_checkpoints("ORDER BY size DESC LIMIT 1")?.pop())
    }

    fn read_checkpoints(&self, order: &str) -> Result<Vec<Checkpoint>, StoreError> {
        let store_id = self.meta("store_id")?.unwrap_or_default();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT size, root, time, public_key, signature, prev FROM checkpoints {order}"
        ))?;
        let rows = stmt.query_map([], |r| {
            let prev: Option<String> = r.get(5)?;
            Ok(Checkpoint {
                format: if prev.is_some() {
                    FORMAT_CHAINED
                } else {
                    FORMAT
                }
                .to_string(),
                store_id: store_id.clone(),
                size: r.get::<_, i64>(0)? as u64,
                root: r.get(1)?,
                time: r.get(2)?,
                public_key: r.get(3)?,
                signature: r.get(4)?,
                prev,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The Merkle tree of the whole lineage: its leaves are the chain
    /// hashes of every event, in order, hashed as each row is read.
    pub fn tree(&self) -> Result<Tree, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT event, hash FROM lineage ORDER BY global_seq")?;
        let mut rows = stmt.query([])?;
        let mut leaves = Vec::new();
        while let Some(r) = rows.next()? {
            let row = r.get_ref(0)?.as_bytes().unwrap_or_default();
            let hashes = r.get_ref(1)?.as_bytes().unwrap_or_default();
            leaves.extend(
                row_events(row, hashes)
                    .into_iter()
                    .map(|(_, h)| merkle::leaf_hash(&h)),
            );
        }
        Ok(Tree::of_leaf_hashes(leaves))
    }

    /// Verify the whole store, and that the log extends `witness` if given.
    pub fn verify(&self, witness: Option<&Checkpoint>) -> Result<Verification, StoreError> {
        // One snapshot: the log, the checkpoints and the tables as one
        // commit left them (an apply may be writing), read under one lock.
        let _snapshot = self.snapshot()?;
        let mut problems: Vec<Broken> = Vec::new();
        let store_id = self.meta("store_id")?;
        let operator = self.meta("operator_key")?;
        // Events before checkpoints: as many as the log can hold, whatever
        // `meta` says (a count raised there is reported below).
        let legacy_count = self.legacy_events()? as i64;
        let legacy_recorded: i64 = self
            .meta("checkpoints_from")?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let checkpoints = self.checkpoints()?;
        let approvals = self.approval_rows()?;
        let mut next_checkpoint = checkpoints.iter().peekable();
        let mut last_good_size = 0u64;

        let texts = Texts::load(&self.conn)?;
        let mut stmt = self.conn.prepare(
            "SELECT global_seq, partner_id, seq, event, hash FROM lineage ORDER BY global_seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut last_global = 0i64;
        let mut partners: HashMap<String, Recorded> = HashMap::new();
        let mut frontier = Frontier::default();
        let mut count = 0i64;
        let mut approvals_checked = 0usize;
        let mut verified: HashMap<(String, String, String), bool> = HashMap::new();
        let mut chain_broken = false;
        let mut plans: HashMap<String, u32> = HashMap::new();
        // The partners each rollback or replacement plan changed.
        let mut carried_out: std::collections::HashSet<(String, u32)> = Default::default();
        let mut plan_names: Vec<String> = Vec::new();
        let mut governing: Option<Governing> = None;
        // The first governing policy (the store's trust root), and where.
        let mut root: Option<(i64, String)> = None;
        let mut policies: Vec<(i64, String, bool)> = Vec::new();
        // The operator keys in force, in order (each checkpoint is held to
        // the one in force at its size).
        let mut succession = Succession::default();
        // The plans marked begun and finished (`@plans`).
        let mut plan_marks = plans::Followed::default();
        let mut illuminated = illumination::Followed::default();
        // What the illumination counts say each plan's runs added, by
        // migration type (plan number, type) → (migrations, fallbacks), and
        // where the last event of each plan is; where counts carried from
        // a table of schema 7 begin.
        let mut told: HashMap<(u32, u32), (u64, u64)> = HashMap::new();
        let mut types: HashMap<String, u32> = HashMap::new();
        let mut type_names: Vec<String> = Vec::new();
        let mut told_at: HashMap<u32, i64> = HashMap::new();
        let mut carried_at: Option<i64> = None;
        let mut counted_events = 0u64;
        // Until when each plan may continue a walk, as its paused walks
        // record it, and where first (the store's note is held to it).
        let mut expiries: HashMap<String, (String, i64)> = HashMap::new();
        while let Some(r) = rows.next()? {
            let first_global: i64 = r.get(0)?;
            let partner: String = r.get(1)?;
            let first_seq: i64 = r.get(2)?;
            let row = r.get_ref(3)?.as_bytes().unwrap_or_default();
            let hashes = r.get_ref(4)?.as_bytes().unwrap_or_default();
            // A row holds one event, or a partner's run of them: its
            // partner's record is found once for them all.
            let events = row_events(row, hashes);
            if events.is_empty() {
                continue;
            }
            let known = partners.entry(partner.clone()).or_default();
            for (i, (body, hash)) in events.into_iter().enumerate() {
                // Positions come from the rows: edited, they may be anything.
                let (global_seq, seq) = (
                    first_global.wrapping_add(i as i64),
                    first_seq.wrapping_add(i as i64),
                );
                count += 1;
                frontier.push(&hash);
                let here = |reason: String| Broken {
                    global_seq,
                    partner: Some(partner.clone()),
                    seq: Some(seq),
                    reason,
                };
                let parsed = read_event_with(body, &partner, seq as u64, &texts);
                if let Some(e) = &parsed
                    && let (Some(plan), Some(until)) = (&e.plan_hash, &e.expires_at)
                {
                    match expiries.get(plan) {
                        Some((first, _)) if first != until => problems.push(here(format!(
                            "it records plan {} expiring at {until}, an earlier walk of it at {first}: edited outside pmf",
                            plan.get(..12).unwrap_or(plan)
                        ))),
                        Some(_) => {}
                        None => {
                            expiries.insert(plan.clone(), (until.clone(), global_seq));
                        }
                    }
                }
                let prev = if known.seq == 0 {
                    GENESIS_BYTES
                } else {
                    known.hash
                };
                if !chain_broken {
                    let problem = if global_seq != last_global.wrapping_add(1) {
                        Some(at(
                            last_global.saturating_add(1),
                            format!(
                                "event #{} is missing (the next one is #{global_seq})",
                                last_global.saturating_add(1)
                            ),
                        ))
                    } else if seq != known.seq.wrapping_add(1) {
                        Some(here(format!(
                            "partner event {} is missing or out of order (found {seq})",
                            known.seq.saturating_add(1)
                        )))
                    } else if chain_hash_read(body, parsed.as_ref(), &prev, &partner, seq as u64)
                        != Some(hash)
                    {
                        Some(here(
                        "its content does not match its hash (edited, or not linked to the partner's previous event)".into(),
                    ))
                    } else if parsed.as_ref().is_none_or(|e| {
                        is_json(body) && (e.partner != partner || e.seq as i64 != seq)
                    }) {
                        Some(here("its content names another partner or position".into()))
                    } else {
                        None
                    };
                    if let Some(p) = problem {
                        problems.push(p);
                        chain_broken = true;
                    }
                }
                known.seq = seq;
                known.hash = hash;
                known.last_global = global_seq;
                known.legacy |= global_seq <= legacy_count;
                if let Some(e) = &parsed {
                    // The governing policy: each change endorsed by the one it
                    // replaced; every run, approval and review decision held
                    // to the one in force.
                    if partner == OPERATOR || e.kind == EventKind::OperatorRekeyed {
                        // A new operator key: signed by itself, replacing the
                        // key in force; it changes no partner.
                        let id = store_id.as_deref().unwrap_or_default();
                        if let Some(why) = rekey::problem(&partner, e, id) {
                            problems.push(here(why));
                        } else if let Some(r) = Rekey::of_event(e) {
                            if let Some(why) = succession.follow(global_seq, &r) {
                                problems.push(here(why));
                            }
                            // The key in force was lost: every authority of
                            // the governing policy approved the request, by
                            // a key it trusts, with a stored signature.
                            if let Some((request, signers)) = &r.approved {
                                approvals_checked += signers.len();
                                let found = approved_succession_problems(
                                    &approvals,
                                    governing.as_ref(),
                                    &request.hash(),
                                    signers,
                                );
                                problems.extend(found.into_iter().map(&here));
                            }
                        }
                    } else if partner == REFUSED || e.kind == EventKind::Refused {
                        // A refused plan approved and changed nothing; its
                        // policy may well be another than the governing one.
                        if let Some(why) = refused::problem(&partner, e) {
                            problems.push(here(why));
                        }
                    } else if partner == ILLUMINATION || e.kind == EventKind::OutcomesCounted {
                        // Counts of outcomes, for illumination: they approve
                        // and change nothing, and only grow.
                        let why = if partner == ILLUMINATION {
                            counted_events += 1;
                            let why = illuminated.follow(e);
                            match e.plan_hash.as_deref() {
                                Some(plan) if why.is_none() => {
                                    let n = numbered(&mut plans, &mut plan_names, plan);
                                    for (m, (t, f)) in illuminated.added() {
                                        let m = numbered(&mut types, &mut type_names, m);
                                        let sum = told.entry((n, m)).or_default();
                                        sum.0 += t;
                                        sum.1 += f;
                                    }
                                    told_at.insert(n, global_seq);
                                }
                                None => carried_at = carried_at.or(Some(global_seq)),
                                Some(_) => {}
                            }
                            why
                        } else {
                            illumination::misplaced(&partner, e)
                        };
                        if let Some(why) = why {
                            problems.push(here(why));
                        }
                    } else if partner == PLANS
                        || matches!(e.kind, EventKind::PlanBegun | EventKind::PlanFinished)
                    {
                        // Marks of plans begun and finished: they approve and
                        // change nothing; each plan begun once, then finished
                        // once over the same count.
                        let why = plans::problem(&partner, e)
                            .or_else(|| (partner == PLANS).then(|| plan_marks.follow(e)).flatten());
                        if let Some(why) = why {
                            problems.push(here(why));
                        }
                    } else if partner == GOVERNANCE {
                        let plan = e.plan_hash.clone().unwrap_or_default();
                        if let Some(h) = e.policy_hash.as_deref()
                            && e.kind == EventKind::Governed
                        {
                            let kept = e.detail.as_deref() == Some(crate::governance::TEXT_KEPT);
                            policies.push((global_seq, h.to_string(), kept));
                        }
                        match (Governing::of_event(e), &governing) {
                            (None, _) => problems.push(here(format!(
                                "the governance chain holds a `{}` event",
                                e.kind
                            ))),
                            (Some(new), Some(old)) if new != *old => {
                                let mut endorsers = Vec::new();
                                for endorser in &e.approvals {
                                    let (authority, key) =
                                        endorser.split_once(':').unwrap_or((endorser, ""));
                                    let id = (plan.clone(), authority.to_string(), key.to_string());
                                    let ok = *verified.entry(id).or_insert_with(|| {
                                        stored_approval(&approvals, &plan, authority, key)
                                    });
                                    approvals_checked += 1;
                                    if ok {
                                        endorsers.push((authority, key));
                                    }
                                }
                                let missing = old.unendorsed(endorsers);
                                if !missing.is_empty() {
                                    problems.push(here(format!(
                                    "the store's governing policy changed (to {}) without the approval of {} under the policy it replaced",
                                    new.policy_hash.get(..12).unwrap_or(&new.policy_hash),
                                    missing
                                        .iter()
                                        .map(|a| format!("`{a}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                )));
                                }
                                governing = Some(new);
                            }
                            (Some(new), old) => {
                                if old.is_none() {
                                    root = Some((global_seq, new.policy_hash.clone()));
                                }
                                governing = Some(new);
                            }
                        }
                    } else if let Some(g) = &governing {
                        if let Some(h) = e.policy_hash.as_deref().filter(|h| *h != g.policy_hash) {
                            problems.push(here(format!(
                            "it runs under policy {} but the store is governed by {} (no approved change of policy records it)",
                            h.get(..12).unwrap_or(h),
                            g.policy_hash.get(..12).unwrap_or(&g.policy_hash)
                        )));
                        }
                        for signer in &e.signers {
                            let (authority, key) = signer.split_once(':').unwrap_or((signer, ""));
                            if !g.trusts(authority, key) {
                                problems.push(here(format!(
                                "it names an approval or decision by `{authority}` with a key (…{}) the governing policy does not trust",
                                key.get(key.len().saturating_sub(8)..).unwrap_or(key)
                            )));
                            }
                        }
                    }
                    // A partner is imported once: a held one's state is
                    // changed by an approved plan. A second import follows a
                    // row deleted outside pmf (events stored as JSON predate
                    // that rule).
                    if e.kind == EventKind::Imported && known.state.is_some() && !is_json(body) {
                        problems.push(here(format!(
                            "partner `{partner}` is imported again, though its lineage already records its state (its row deleted outside pmf, then imported: a held partner's state is changed only by an approved plan)"
                        )));
                    }
                    // An approved rollback or replacement is carried out
                    // once per partner: a second run used its approvals again.
                    if matches!(
                        e.kind,
                        EventKind::Rollback | EventKind::Replaced | EventKind::Imported
                    ) && let Some(plan) = e.plan_hash.as_deref()
                    {
                        let n = numbered(&mut plans, &mut plan_names, plan);
                        if !carried_out.insert((partner.clone(), n)) {
                            problems.push(here(format!(
                                "plan {} changes partner `{partner}` a second time (a rollback or replacement is carried out once: its approvals were used again)",
                                plan.get(..12).unwrap_or(plan)
                            )));
                        }
                    }
                    if let Some(plan) = &e.plan_hash {
                        known.plan = Some(numbered(&mut plans, &mut plan_names, plan));
                    }
                    if let Some(state) = &e.state {
                        known.state = Some(Digest::of(state));
                        // A run that ends with an outcome (a rollback records
                        // none, and keeps no progress).
                        if let (Some(plan), Some(_)) =
                            (known.plan.filter(|_| e.plan_hash.is_some()), &e.outcome)
                        {
                            let run = PlanOutcome {
                                plan,
                                outcome: e.outcome.as_deref().map(str::to_string),
                                migration: e
                                    .migration
                                    .as_deref()
                                    .map(|m| numbered(&mut types, &mut type_names, m)),
                                global_seq,
                                seq,
                                legacy: global_seq <= legacy_count,
                                matched: false,
                            };
                            match known.outcomes.iter_mut().find(|o| o.plan == plan) {
                                Some(o) => *o = run,
                                None => {
                                    // Most partners run one plan: room for one.
                                    known.outcomes.reserve_exact(1);
                                    known.outcomes.push(run);
                                }
                            }
                        }
                    }
                    known.stable.reserve_exact(e.stable.len());
                    known.stable.extend(e.stable.iter().map(|d| Digest::of(d)));
                    if let Some(sig) = e.signature.as_ref().filter(|_| partner != OPERATOR) {
                        // A review decision, signed over the event it follows.
                        let signer = e.signers.first().map(String::as_str).unwrap_or("");
                        let (authority, key) = signer.split_once(':').unwrap_or((signer, ""));
                        let plan = e.plan_hash.clone().unwrap_or_default();
                        let message = review_message(
                            authority,
                            &partner,
                            e.kind.as_str(),
                            &plan,
                            &hex32(&prev),
                        );
                        approvals_checked += 1;
                        if !signature_holds(key, sig, &message) {
                            problems.push(here(format!(
                                "its review decision by `{authority}` has no valid signature"
                            )));
                        }
                    }
                    for signer in e
                        .signers
                        .iter()
                        .filter(|_| e.signature.is_none() && partner != GOVERNANCE)
                    {
                        approvals_checked += 1;
                        let (authority, key) = signer.split_once(':').unwrap_or((signer, ""));
                        let plan = known
                            .plan
                            .and_then(|n| plan_names.get(n as usize))
                            .cloned()
                            .unwrap_or_default();
                        let id = (plan.clone(), authority.to_string(), key.to_string());
                        // Each stored approval is verified once, however many
                        // events name it.
                        let ok = *verified
                            .entry(id)
                            .or_insert_with(|| stored_approval(&approvals, &plan, authority, key));
                        if !ok {
                            problems.push(here(format!(
                            "it names an approval by `{authority}` (key {}…) of plan {} that is not stored with a valid signature",
                            key.get(..16).unwrap_or(key),
                            plan.get(..12).unwrap_or(&plan)
                        )));
                        }
                    }
                }
                last_global = global_seq;
                while let Some(c) = next_checkpoint.peek() {
                    if c.size as i64 > count {
                        break;
                    }
                    if c.size as i64 == count {
                        if merkle::to_hex(&frontier.root()) == c.root {
                            last_good_size = c.size;
                        } else {
                            problems.push(at(
                            (last_good_size as i64).saturating_add(1),
                            format!(
                                "events #{}–#{} do not match the checkpoint signed at {} (rewritten after it was signed)",
                                last_good_size.saturating_add(1),
                                c.size,
                                c.time
                            ),
                        ));
                        }
                    }
                    next_checkpoint.next();
                }
                if let Some(w) = witness
                    && w.size as i64 == count
                    && merkle::to_hex(&frontier.root()) != w.root
                {
                    problems.push(at(
                    1,
                    format!(
                        "the log no longer extends the witness's checkpoint of {} events signed at {}: events #1–#{} were rewritten",
                        w.size, w.time, w.size
                    ),
                ));
                }
            }
        }
        drop(rows);
        drop(stmt);

        // Checkpoints: signed by the operator key in force at their size,
        // none beyond the log, and every event covered.
        if let Some(why) = succession.pinned_problem(operator.as_deref()) {
            problems.push(at(count, why));
        }
        // Each checkpoint is dated no earlier than the one before it (and
        // than a witness's of fewer events), as far as clocks differ.
        let dated_before = |c: &Checkpoint, earlier: &Checkpoint| -> Option<String> {
            let (at, before) = (
                crate::clock::parse_rfc3339(&c.time)?,
                crate::clock::parse_rfc3339(&earlier.time)?,
            );
            (at + crate::clock::SKEW_SECS < before)
                .then(|| crate::clock::spoken_duration(before - at))
        };
        for pair in checkpoints.windows(2) {
            if let [earlier, c] = pair
                && let Some(by) = dated_before(c, earlier)
            {
                problems.push(at(
                    (earlier.size as i64).saturating_add(1),
                    format!(
                        "the checkpoint of {} events is dated {}, {by} before the checkpoint of {} events it follows ({}): the clock that signed it was set back, and the expiry of what it carried out was read from that clock",
                        c.size, c.time, earlier.size, earlier.time
                    ),
                ));
            }
        }
        if let Some(w) = witness
            && let Some((c, by)) = checkpoints
                .iter()
                .filter(|c| c.size > w.size)
                .find_map(|c| Some((c, dated_before(c, w)?)))
        {
            problems.push(at(
                (w.size as i64).saturating_add(1),
                format!(
                    "the checkpoint of {} events is dated {}, {by} before the witness's checkpoint of {} events ({}): the clock that signed it was set back",
                    c.size, c.time, w.size, w.time
                ),
            ));
        }
        for c in &checkpoints {
            if Some(&c.store_id) != store_id.as_ref() || !c.signature_holds() {
                problems.push(at(
                    c.size as i64,
                    format!(
                        "the checkpoint of {} events signed at {} has no valid signature",
                        c.size, c.time
                    ),
                ));
            } else if succession.key_for(c.size, operator.as_deref()) != Some(c.public_key.as_str())
            {
                problems.push(at(
                    c.size as i64,
                    format!(
                        "the checkpoint of {} events signed at {} is signed by another key than the store's operator key in force then",
                        c.size, c.time
                    ),
                ));
            }
            if c.size as i64 > count {
                problems.push(at(
                    count + 1,
                    format!(
                        "the log ends at event #{count} but a checkpoint signed at {} covers {} events: events #{}–#{} were removed",
                        c.time,
                        c.size,
                        count + 1,
                        c.size
                    ),
                ));
                break;
            }
        }
        if legacy_recorded > legacy_count {
            problems.push(at(
                legacy_count + 1,
                format!(
                    "the store's head says its first {legacy_recorded} events predate signed checkpoints, but only {legacy_count} can (edited: the events after them are held as any others)"
                ),
            ));
        }
        let covered = checkpoints.last().map_or(0, |c| c.size as i64);
        if count > covered.max(legacy_count) {
            problems.push(at(
                covered.max(legacy_count) + 1,
                format!(
                    "events #{}–#{count} are covered by no signed checkpoint (written outside pmf)",
                    covered.max(legacy_count) + 1
                ),
            ));
        }
        let recorded_count: i64 = self
            .meta("global_count")?
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        if recorded_count != count {
            problems.push(at(
                count + 1,
                format!(
                    "the lineage ends at event #{count} but its head records {recorded_count} events (events deleted at the end, or the head edited)"
                ),
            ));
        }
        // The Merkle head writers extend the log from (`meta.merkle_peaks`)
        // is the log's: an edited one is refused by every writer.
        let peaks: String = frontier.peaks().iter().map(merkle::to_hex).collect();
        if count > 0 && self.meta("merkle_peaks")?.as_deref() != Some(peaks.as_str()) {
            problems.push(at(
                count + 1,
                "the Merkle head the store keeps to extend its log does not fit its events (edited outside pmf): no write can go on from it".to_string(),
            ));
        }
        if let Some(w) = witness {
            if Some(&w.store_id) != store_id.as_ref() {
                problems.push(at(
                    1,
                    "the witness's checkpoint is of another store".to_string(),
                ));
            } else if !w.signature_holds() {
                problems.push(at(
                    1,
                    "the witness's checkpoint has no valid signature".to_string(),
                ));
            } else if succession.key_for(w.size, operator.as_deref()) != Some(w.public_key.as_str())
            {
                problems.push(at(
                    1,
                    "the witness's checkpoint is signed by another key than the store's operator key in force then (the store was re-keyed outside pmf and re-signed)".to_string(),
                ));
            }
            if w.size as i64 > count {
                problems.push(at(
                    count + 1,
                    format!(
                        "the log ends at event #{count} but the witness's checkpoint signed at {} covers {} events: the log was truncated",
                        w.time, w.size
                    ),
                ));
            }
        }

        // Each checkpoint names the one before it (from schema 10): one
        // deleted from between two others breaks the chain. Once chained,
        // every later checkpoint is.
        let mut chained = false;
        for (i, c) in checkpoints.iter().enumerate() {
            let before = i.checked_sub(1).and_then(|b| checkpoints.get(b));
            match &c.prev {
                Some(prev) => {
                    chained = true;
                    if before.is_none_or(|b| b.chain_digest() != *prev) {
                        problems.push(at(
                            c.size as i64,
                            format!(
                                "the checkpoint of {} events signed at {} follows one the store no longer holds: a checkpoint was deleted from before it",
                                c.size, c.time
                            ),
                        ));
                    }
                }
                None if chained => problems.push(at(
                    c.size as i64,
                    format!(
                        "the checkpoint of {} events signed at {} names no checkpoint before it, after checkpoints that did: it was not signed by pmf",
                        c.size, c.time
                    ),
                )),
                None => {}
            }
        }
        // The store's note of each plan's expiry (what `pmf review` reads
        // for walks an earlier pmf paused) is what the walks record.
        for (plan, (until, first)) in &expiries {
            // A plan noted with no time, or not noted (a walk written
            // through the library, not `pmf apply`), misleads nobody:
            // review reads the walk's record.
            let noted = self.plan_expiry(plan)?;
            if noted.as_deref().is_some_and(|n| n != until) {
                problems.push(at(
                    *first,
                    format!(
                        "the store notes plan {} expiring at {}, but its paused walks record {until} (edited outside pmf)",
                        plan.get(..12).unwrap_or(plan),
                        noted.as_deref().unwrap_or("no time")
                    ),
                ));
            }
        }

        let mut plans_held = 0;
        if counted_events > 0 {
            let (found, held) = illumination_problems(
                &partners,
                &told,
                &told_at,
                carried_at,
                (&plan_names, &type_names),
            );
            problems.extend(found);
            plans_held = held;
        }
        // No plan walks more partners than it was begun with.
        let mut walked: HashMap<u32, (u64, i64)> = HashMap::new();
        for (id, known) in &partners {
            if id.starts_with('@') {
                continue;
            }
            for o in &known.outcomes {
                let n = walked.entry(o.plan).or_default();
                n.0 += 1;
                n.1 = n.1.max(o.global_seq);
            }
        }
        let mut over: Vec<Broken> = walked
            .into_iter()
            .filter_map(|(plan, (n, last))| {
                let name = plan_names.get(plan as usize)?;
                let begun = plan_marks.partners(name).filter(|b| n > *b)?;
                Some(at(
                    last,
                    format!(
                        "plan {} walked {n} partners, but was begun over {begun} (partners added outside pmf)",
                        name.get(..12).unwrap_or(name)
                    ),
                ))
            })
            .collect();
        over.sort_by_key(|b| b.global_seq);
        problems.extend(over);
        // Current rows held to the lineage.
        self.check_rows(&mut partners, legacy_count > 0, &mut problems)?;
        self.check_progress(&mut partners, &plans, &mut problems)?;

        let broken = problems.first().cloned();
        Ok(Verification {
            events: count,
            partners: partners.keys().filter(|p| !p.starts_with('@')).count(),
            checkpoints: checkpoints.len(),
            approvals: approvals_checked,
            latest: checkpoints.last().cloned(),
            broken,
            problems,
            root_policy: root,
            governing_policy: governing.map(|g| g.policy_hash),
            policies,
            successions: succession,
            illumination: (counted_events, plans_held),
            plans: plan_marks.counts(),
        })
    }

    fn approval_rows(&self) -> Result<HashMap<(String, String, String), String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT plan_hash, authority, public_key, signature FROM approvals")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get(1)?, r.get(2)?),
                r.get::<_, String>(3)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every `progress` row (what a re-run of a plan skips) says what the
    /// lineage records of that plan's run on that partner, and every run the
    /// lineage records has its row: a row deleted, inserted or edited is
    /// reported, though apply itself falls back on the lineage.
    fn check_progress(
        &self,
        recorded: &mut HashMap<String, Recorded>,
        plans: &HashMap<String, u32>,
        problems: &mut Vec<Broken>,
    ) -> Result<(), StoreError> {
        let short = |plan: &str| plan.get(..12).unwrap_or(plan).to_string();
        let mut stmt = self.conn.prepare(
            "SELECT coalesce(plans.hash, CAST(progress.plan AS TEXT)), partner_id, outcome
             FROM progress LEFT JOIN plans ON plans.id = progress.plan ORDER BY 1, 2",
        )?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let plan: String = r.get(0)?;
            let partner: String = r.get(1)?;
            let outcome: String = r.get(2)?;
            let run = plans.get(&plan).and_then(|&p| {
                recorded
                    .get_mut(&partner)
                    .and_then(|rec| rec.outcomes.iter_mut().find(|o| o.plan == p))
            });
            let Some(run) = run else {
                problems.push(Broken {
                    global_seq: 0,
                    partner: Some(partner.clone()),
                    seq: None,
                    reason: format!(
                        "partner `{partner}` has a progress row for plan {} (`{outcome}`) but no lineage event of that plan (inserted)",
                        short(&plan)
                    ),
                });
                continue;
            };
            run.matched = true;
            if !run.legacy && run.outcome.as_deref() != Some(outcome.as_str()) {
                problems.push(Broken {
                    global_seq: run.global_seq,
                    partner: Some(partner.clone()),
                    seq: Some(run.seq),
                    reason: format!(
                        "the progress row of partner `{partner}` for plan {} says `{outcome}`, but its lineage records `{}` (edited)",
                        short(&plan),
                        run.outcome.as_deref().unwrap_or("no outcome")
                    ),
                });
            }
        }
        let names: HashMap<u32, &str> = plans.iter().map(|(k, v)| (*v, k.as_str())).collect();
        let mut missing: Vec<Broken> = Vec::new();
        for (partner, rec) in recorded.iter() {
            for run in rec.outcomes.iter().filter(|o| !o.legacy) {
                if !run.matched {
                    missing.push(Broken {
                        global_seq: run.global_seq,
                        partner: Some(partner.clone()),
                        seq: Some(run.seq),
                        reason: format!(
                            "partner `{partner}`'s run of plan {} is in the lineage but its progress row is missing (deleted)",
                            short(names.get(&run.plan).copied().unwrap_or_default())
                        ),
                    });
                }
            }
        }
        missing.sort_by_key(|b| b.global_seq);
        problems.extend(missing);
        Ok(())
    }

    fn check_rows(
        &self,
        recorded: &mut HashMap<String, Recorded>,
        legacy_store: bool,
        problems: &mut Vec<Broken>,
    ) -> Result<(), StoreError> {
        // One partner at a time: a fleet's states are never all held.
        self.each_partner(|p| {
            let Some(rec) = recorded.get_mut(&p.id) else {
                if !legacy_store {
                    problems.push(Broken {
                        global_seq: 0,
                        partner: Some(p.id.clone()),
                        seq: None,
                        reason: format!(
                            "partner `{}` is in the store but has no lineage (inserted, or its history erased)",
                            p.id
                        ),
                    });
                }
                return Ok(());
            };
            rec.in_store = true;
            if let Some(d) = &rec.state
                && *d != Digest::Bytes(row_digest_bytes(&p.state, p.version.as_deref(), &p.status))
            {
                problems.push(Broken {
                    global_seq: rec.last_global,
                    partner: Some(p.id.clone()),
                    seq: Some(rec.seq),
                    reason: format!(
                        "the stored state of partner `{}` is not the one its lineage records at event {} (edited)",
                        p.id, rec.seq
                    ),
                });
            }
            if !rec.legacy {
                let rows: Vec<Digest> = self
                    .stable_versions(&p.id)?
                    .iter()
                    .map(|s| {
                        Digest::Bytes(stable_digest_bytes(s.seq, s.version.as_deref(), &s.state))
                    })
                    .collect();
                if rows != rec.stable {
                    problems.push(Broken {
                        global_seq: rec.last_global,
                        partner: Some(p.id.clone()),
                        seq: Some(rec.seq),
                        reason: format!(
                            "the stable versions of partner `{}` are not those its lineage records (edited, added or removed)",
                            p.id
                        ),
                    });
                }
            }
            Ok(())
        })?;
        // Stable versions of a partner the store does not hold: no partner
        // visited above owns them (a row planted for a partner to come,
        // whose first write they would block or join).
        if !legacy_store {
            let mut stmt = self.conn.prepare(
                "SELECT partner_id, COUNT(*) FROM stable_versions
                 WHERE partner_id NOT IN (SELECT id FROM partners) GROUP BY partner_id",
            )?;
            let orphans =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for orphan in orphans {
                let (id, n) = orphan?;
                problems.push(Broken {
                    global_seq: recorded.get(&id).map_or(0, |r| r.last_global),
                    partner: Some(id.clone()),
                    seq: None,
                    reason: format!(
                        "{n} stable versions of `{id}`, a partner the store does not hold (added outside pmf)"
                    ),
                });
            }
        }
        for (id, rec) in recorded.iter() {
            if rec.state.is_some() && !rec.in_store {
                problems.push(Broken {
                    global_seq: rec.last_global,
                    partner: Some(id.clone()),
                    seq: Some(rec.seq),
                    reason: format!(
                        "partner `{id}` has a lineage but is not in the store (deleted)"
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Digest;

    /// A recorded digest is its text: held as bytes only when written as
    /// pmf writes digests, so it equals exactly the texts it did as text.
    #[test]
    fn a_recorded_digest_equals_exactly_its_own_text() {
        let hex = "ab".repeat(32);
        assert!(matches!(Digest::of(&hex), Digest::Bytes(_)));
        let texts = [
            hex.clone(),
            hex.to_uppercase(),
            "ab".repeat(31),
            format!("{hex} "),
            String::new(),
            "zz".repeat(32),
        ];
        for a in &texts {
            for b in &texts {
                assert_eq!(Digest::of(a).is(b), a == b, "{a:?} and {b:?}");
            }
        }
        // The bytes read are the hex crate's, for every digit in every
        // place; one digit off the lowercase alphabet, or one too many or
        // too few, and it is a text.
        for start in 0..=255u8 {
            let bytes: [u8; 32] =
                std::array::from_fn(|i| start.wrapping_add((i as u8).wrapping_mul(59)));
            let text = hex::encode(bytes);
            assert_eq!(Digest::of(&text), Digest::Bytes(bytes));
            for (at, bad) in [(0, 'g'), (63, 'G'), (start as usize % 64, 'A'), (5, '/')] {
                let mut edited = text.clone().into_bytes();
                edited[at] = bad as u8;
                let edited = String::from_utf8(edited).unwrap();
                assert_eq!(Digest::of(&edited), Digest::Text(edited.clone().into()));
            }
            for cut in [&text[..62], &format!("{text}0")] {
                assert!(matches!(Digest::of(cut), Digest::Text(_)), "{cut}");
            }
        }
    }
}
