//! `pmf lineage show [PARTNER]` and `pmf lineage verify`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::plan::OutputFormat;
use super::{CliError, Exit, UsageError};
use crate::store::checkpoint::Checkpoint;
use crate::store::lineage::{self, hex32};
use crate::store::merkle;
use crate::store::{DEFAULT_PATH, Store};

/// Arguments of `pmf lineage`.
#[derive(Args, Debug)]
pub struct LineageArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: LineageCommand,
}

/// Lineage subcommands.
#[derive(Subcommand, Debug)]
pub enum LineageCommand {
    /// Show the lineage of one partner, or of all.
    Show {
        /// The partner (default: all).
        partner: Option<String>,
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Recompute every hash, Merkle root and signature, and hold the
    /// current state to the lineage; exit 1 naming the first problem.
    Verify {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// A checkpoint a witness kept (`pmf lineage checkpoint`): the log
        /// must still extend it.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
        /// The policy the team reviewed (files, directories, or a policy's
        /// name among them): the store must have been governed by it first
        /// (its trust root), every later policy by approved changes from it.
        #[arg(long, num_args = 1.., value_name = "FILE|DIR|NAME")]
        policy: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Export the latest signed checkpoint (size, Merkle root, signature)
    /// for a witness: another team, a CI artifact, a git repository.
    Checkpoint {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Where to write it (default: standard output).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// The text of a policy that governed the store, as the store keeps it
    /// (by its hash, or the first 12 characters or more of it, as
    /// `pmf status` and the lineage show it), and whether it compiles to
    /// that hash.
    Policy {
        /// The policy's hash, or a prefix of it.
        hash: String,
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
    },
    /// Proofs for an auditor, against the latest signed checkpoint: that
    /// each event of PARTNER is in the log (inclusion), and with `--since`
    /// that the log extends an earlier checkpoint (consistency), as JSON.
    Prove {
        /// The partner whose events to prove.
        partner: Option<String>,
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// An earlier checkpoint to prove consistency with.
        #[arg(long)]
        since: Option<PathBuf>,
    },
}

/// Events shown as they are read: a line each (human), or the JSON
/// document `{"events": [...], "format_version": 1}` laid out as
/// serde_json's pretty printer lays out the whole.
enum ShownEvents {
    Json(super::output::StreamedArray),
    Lines(usize),
}

impl ShownEvents {
    fn new(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Json => {
                ShownEvents::Json(super::output::StreamedArray::new("{\n  \"events\": ", 1))
            }
            OutputFormat::Human => ShownEvents::Lines(0),
        }
    }

    fn event(&mut self, e: &crate::store::lineage::StoredEvent) {
        match self {
            // Through a JSON value, as the whole document was: its keys
            // sorted.
            ShownEvents::Json(array) => array.element(&serde_json::to_value(e).unwrap_or_default()),
            ShownEvents::Lines(count) => {
                outln!("{}", event_line(e));
                *count += 1;
            }
        }
    }

    fn finish(self) {
        match self {
            ShownEvents::Json(array) => {
                array.finish();
                outln!(",\n  \"format_version\": 1\n}}");
            }
            ShownEvents::Lines(count) => outln!("{count} events"),
        }
    }
}

/// One event as `lineage show` prints it: what a store holds is shown,
/// never obeyed (a control character in it is written as an escape).
fn event_line(e: &crate::store::lineage::StoredEvent) -> String {
    let ev = &e.event;
    let mut line = format!(
        "#{:<5} {:<12} {:>3} {:<16} {:<14}",
        e.global_seq,
        ev.partner,
        ev.seq,
        ev.kind,
        ev.phase.clone().unwrap_or_default()
    );
    if let (Some(f), Some(t)) = (&ev.from, &ev.to) {
        line.push_str(&format!(" {f} → {t}"));
    }
    if let Some(t) = &ev.migration {
        line.push_str(&format!(" [{t}]"));
    }
    if let Some(o) = &ev.outcome {
        line.push_str(&format!(" {o}"));
    }
    if let Some(h) = ev.health {
        line.push_str(&format!(
            " health {h} {}",
            ev.band.clone().unwrap_or_default()
        ));
    }
    if let Some(r) = &ev.rite {
        line.push_str(&format!(" “{r}”"));
    }
    // An approved succession of the operator key keeps its request's
    // text: its reason and who approved.
    let rekey = crate::store::rekey::Rekey::of_event(ev);
    if let Some((r, (request, _))) = rekey.as_ref().and_then(|r| Some((r, r.approved.as_ref()?))) {
        line.push_str(&format!(
            " — {} (the key in force lost: approved by {} of request {}…, valid to {})",
            r.reason,
            r.approvers().join(", "),
            super::view::short(&request.hash()),
            request.expires_at
        ));
    } else if let Some(d) = &ev.detail {
        line.push_str(&format!(" — {d}"));
    }
    crate::runtime::plan_view::printable(line.trim_end()).to_string()
}

/// Hold `v` to the trust root an auditor pinned (`pinned`, a policy hash):
/// the store must have been governed first by that policy. Every later
/// change of policy is already held to the approval of the one it replaced,
/// so the whole chain then leads back to the reviewed policy.
fn root_problem(v: &mut crate::store::verify::Verification, pinned: &str, by: &str) {
    let short = super::view::short;
    let problem = match &v.root_policy {
        Some((_, root)) if root == pinned => return,
        Some((at, root)) => crate::store::verify::Broken {
            global_seq: *at,
            partner: Some(crate::store::governance::GOVERNANCE.to_string()),
            seq: None,
            reason: format!(
                "the store was first governed by policy {}, not by {by} ({}): its trust root is another policy",
                short(root),
                short(pinned)
            ),
        },
        None => crate::store::verify::Broken {
            global_seq: 0,
            partner: None,
            seq: None,
            reason: format!(
                "no policy governs the store, so nothing ties it to {by} ({})",
                short(pinned)
            ),
        },
    };
    if v.broken.is_none() {
        v.broken = Some(problem.clone());
    }
    v.problems.insert(0, problem);
}

/// Hold the sources the store kept of each policy that governed it to the
/// hash its `governed` event records (compiled again): a text edited
/// outside pmf would show an auditor other rules than those in force, and
/// a text deleted would hide them (its event says it was kept). The hashes
/// whose text is kept and compiles to them; a problem for each that does
/// not (a store keeps none for a policy that governed it before schema 6,
/// and its event says none was kept).
fn kept_policies(
    store: &Store,
    v: &mut crate::store::verify::Verification,
) -> std::collections::BTreeSet<String> {
    let mut kept = std::collections::BTreeSet::new();
    for (at, hash, promised) in v.policies.clone() {
        if kept.contains(&hash) {
            continue;
        }
        // A table of texts dropped or damaged is a finding too, not a
        // reason to stop verifying.
        let found = match store.kept_policy(&hash) {
            Ok(found) => found.map(|sources| super::policy::hash_of_kept(&sources)),
            Err(e) => Some(Err(format!("it cannot be read ({e})"))),
        };
        let reason = match found {
            None if !promised => continue,
            None => format!(
                "the text of policy {}, which the store kept when it came to govern, is gone (deleted outside pmf)",
                super::view::short(&hash)
            ),
            Some(Ok(h)) if h == hash => {
                kept.insert(hash);
                continue;
            }
            Some(Ok(h)) => format!(
                "the text the store keeps of policy {} compiles to {}: it is not the policy the store was governed by (edited outside pmf)",
                super::view::short(&hash),
                super::view::short(&h)
            ),
            Some(Err(why)) => format!(
                "the text the store keeps of policy {}: {why} (edited outside pmf)",
                super::view::short(&hash)
            ),
        };
        let problem = crate::store::verify::Broken {
            global_seq: at,
            partner: Some(crate::store::governance::GOVERNANCE.to_string()),
            seq: None,
            reason,
        };
        if v.broken.is_none() {
            v.broken = Some(problem.clone());
        }
        v.problems.push(problem);
    }
    kept
}

/// Run `pmf lineage`.
pub fn run(args: &LineageArgs) -> Result<Exit, CliError> {
    match &args.command {
        LineageCommand::Show {
            partner,
            store,
            format,
        } => {
            let store = Store::open_to_read(store)?;
            let mut shown = ShownEvents::new(*format);
            match partner {
                // One partner's chain: read whole, so that a partner the
                // store does not know is an error before anything is shown.
                Some(p) => {
                    let events = store.lineage(Some(p))?;
                    // A store's own chain (`@refused`, `@governance`) may be empty.
                    if events.is_empty() && !p.starts_with('@') && store.partner(p)?.is_none() {
                        return Err(UsageError(format!("no partner `{p}` in the store")).into());
                    }
                    events.iter().for_each(|e| shown.event(e));
                }
                // The whole log, an event at a time as it is read: a
                // fleet's millions of events are never all held.
                None => store.each_event(None, |e| {
                    shown.event(&e);
                    Ok(())
                })?,
            }
            shown.finish();
            Ok(Exit::Success)
        }
        LineageCommand::Verify {
            store,
            checkpoint,
            policy,
            format,
        } => {
            let witness = match checkpoint {
                Some(p) => Some(Checkpoint::read(p).map_err(UsageError)?),
                None => None,
            };
            // The trust root an auditor pins from outside the store: the
            // policy given, else the one the store's project pins.
            let pinned = if policy.is_empty() {
                super::trust::pinned(store)?.map(|pin| {
                    let by = format!("the policy `{}` pins", pin.file.display());
                    (pin.hash, by)
                })
            } else {
                match super::policy::load(policy) {
                    Ok(p) => Some((p.hash, "the policy given".to_string())),
                    Err(f) => return f.exit(),
                }
            };
            // Without a witness's checkpoint, the one the operator key
            // beside the store remembers signing stands for it (a store
            // rolled back behind it is seen); `remembered` names its file.
            let verified = Store::open_to_read(store).and_then(|s| {
                let (witness, remembered) = match &witness {
                    Some(w) => (Some(w.clone()), None),
                    None => match s
                        .key_memory(&crate::store::checkpoint::OperatorKey::default_path(store))?
                    {
                        Some(crate::store::key_memory::Memory {
                            file,
                            checkpoint: Some(c),
                            ..
                        }) => (Some(c), Some(file)),
                        _ => (None, None),
                    },
                };
                let mut v = s.verify(witness.as_ref())?;
                let kept = kept_policies(&s, &mut v);
                Ok((v, kept, witness, remembered))
            });
            let (mut v, kept, witness, remembered) = match verified {
                Ok(v) => v,
                // Not a usage problem: the lineage cannot be vouched for.
                Err(e) if e.is_damaged() => {
                    let broken = crate::store::verify::Broken {
                        global_seq: 0,
                        partner: None,
                        seq: None,
                        reason: e.to_string(),
                    };
                    match format {
                        OutputFormat::Json => outln!(
                            "{}",
                            serde_json::json!({"format_version": 2, "intact": false, "broken": broken, "problems": [broken]})
                        ),
                        OutputFormat::Human => {
                            outln!("lineage broken at event #0 (the whole store): {e}")
                        }
                    }
                    return Ok(Exit::Failure);
                }
                Err(e) => return Err(e.into()),
            };
            if let Some((pinned, by)) = &pinned {
                root_problem(&mut v, pinned, by);
            }
            match format {
                OutputFormat::Json => outln!(
                    "{}",
                    serde_json::json!({"format_version": 2, "intact": v.broken.is_none(), "root_policy": v.root_policy.as_ref().map(|(_, h)| h), "governing_policy": v.governing_policy, "policies": v.policies.iter().map(|(at, h, _)| serde_json::json!({"event": at, "hash": h, "kept": kept.contains(h)})).collect::<Vec<_>>(), "events": v.events, "partners": v.partners, "checkpoints": v.checkpoints, "approvals": v.approvals, "latest_checkpoint": v.latest, "witness": witness.as_ref().map(|w| serde_json::json!({"size": w.size, "root": w.root, "time": w.time, "remembered_by_key": remembered.as_ref().map(|f| f.display().to_string())})), "operator_successions": v.successions.changes, "illumination": {"events": v.illumination.0, "plans_held": v.illumination.1}, "plans": {"begun": v.plans.0, "finished": v.plans.1}, "broken": v.broken, "problems": v.problems})
                ),
                OutputFormat::Human => match &v.broken {
                    None => {
                        outln!(
                            "lineage intact: {} events across {} partners, {} signed checkpoints, {} approvals verified; current state matches the lineage",
                            v.events,
                            v.partners,
                            v.checkpoints,
                            v.approvals
                        );
                        if let Some(w) = &witness {
                            let whose = match &remembered {
                                Some(file) => format!(
                                    "the checkpoint the operator key remembers signing (`{}`)",
                                    file.display()
                                ),
                                None => "the witness's checkpoint".to_string(),
                            };
                            outln!(
                                "the log extends {whose} of {} events signed at {}",
                                w.size,
                                w.time
                            );
                        }
                        if !v.policies.is_empty() {
                            outln!(
                                "policies that governed the store: {}, the text of {} kept and compiled again to its hash (`pmf lineage policy HASH` prints it)",
                                v.policies.len(),
                                v.policies
                                    .iter()
                                    .filter(|(_, h, _)| kept.contains(h))
                                    .count()
                            );
                        }
                        if v.illumination.0 > 0 {
                            outln!(
                                "illumination counts: {} event{} of `@illumination`, each count only growing, held to what the walks of {} plan{} record",
                                v.illumination.0,
                                if v.illumination.0 == 1 { "" } else { "s" },
                                v.illumination.1,
                                if v.illumination.1 == 1 { "" } else { "s" }
                            );
                        }
                        if v.plans.0 > 0 {
                            let (begun, finished) = v.plans;
                            outln!(
                                "plans carried out: {begun} marked begun on `@plans`, {finished} of them finished{}; none walked more partners than it was begun with",
                                match begun - finished {
                                    0 => String::new(),
                                    n => format!(
                                        " ({n} unfinished: `pmf status` names {})",
                                        if n == 1 { "it" } else { "them" }
                                    ),
                                }
                            );
                        }
                        if let Some(last) = v.successions.changes.last() {
                            let (at, from, to) = (last.event, &last.from, &last.to);
                            let how = if last.approved {
                                "with the approval of the governing policy's authorities (the key in force was lost)"
                            } else {
                                "by the key in force"
                            };
                            let times = match v.successions.changes.len() {
                                1 => format!("once, {how}, at"),
                                n => format!("{n} times, the last {how}, at"),
                            };
                            outln!(
                                "the operator key was replaced {times} event #{at} ({}… → {}…; `pmf lineage show @operator`)",
                                super::view::short(from),
                                super::view::short(to)
                            );
                        }
                        if let (Some((pinned, by)), Some((at, _))) = (&pinned, &v.root_policy) {
                            outln!(
                                "its trust root is {by} ({}), governing since event #{at}",
                                super::view::short(pinned)
                            );
                        }
                    }
                    Some(_) => {
                        for b in v.problems.iter().take(20) {
                            let who = match (&b.partner, b.seq) {
                                (Some(p), Some(s)) => format!(" (partner `{p}`, event {s})"),
                                (Some(p), None) => format!(" (partner `{p}`)"),
                                _ => String::new(),
                            };
                            outln!(
                                "lineage broken at event #{}{who}: {}",
                                b.global_seq,
                                b.reason
                            );
                        }
                        if v.problems.len() > 20 {
                            outln!("... and {} more problems", v.problems.len() - 20);
                        }
                        if let Some(file) = &remembered {
                            outln!(
                                "(the witness's checkpoint is the one the operator key remembers signing: `{}`)",
                                file.display()
                            );
                        }
                    }
                },
            }
            Ok(if v.broken.is_none() {
                Exit::Success
            } else {
                Exit::Failure
            })
        }
        LineageCommand::Checkpoint { store, output } => {
            if let Some(path) = output {
                let inputs = [(store.as_path(), "--store")];
                super::files::refuse_output_over(path, "the checkpoint", &inputs)?;
            }
            let store = Store::open_to_read(store)?;
            let latest = store.latest_checkpoint()?.ok_or_else(|| {
                UsageError("the store has no signed checkpoint yet (nothing was applied)".into())
            })?;
            // A witness keeps what it is given: only a checkpoint that holds
            // (the log's root, signed by the operator key in force) is
            // handed out, or the witness would hold the store to nothing.
            store.vouch_for_log().map_err(|e| {
                CliError::from(e).then("no checkpoint was exported: `pmf lineage verify` says more")
            })?;
            // A checkpoint (strings and a number) always serialises.
            let text = serde_json::to_string_pretty(&latest).unwrap_or_default() + "\n";
            // A witness's earlier checkpoint is evidence: it is replaced only
            // by one of the same store whose log extends it.
            if let Some(path) = output
                && let Some(refusal) = replaces_evidence(&store, &latest, path)?
            {
                return Ok(refusal);
            }
            match output {
                Some(path) => {
                    crate::output::write(path, text.as_bytes(), false).map_err(|e| {
                        UsageError(format!("cannot write `{}`: {e}", path.display()))
                    })?;
                    errln!(
                        "checkpoint of {} events (root {}…) written to {}",
                        latest.size,
                        latest.root.get(..16).unwrap_or(&latest.root),
                        path.display()
                    );
                }
                None => out!("{text}"),
            }
            Ok(Exit::Success)
        }
        LineageCommand::Policy { hash, store } => {
            let store = Store::open_to_read(store)?;
            let hashes = store.kept_policies()?;
            let matching: Vec<&String> = hashes
                .iter()
                .filter(|h| hash.len() >= 12 && h.starts_with(hash.as_str()))
                .collect();
            let [full] = matching.as_slice() else {
                return Err(UsageError(match matching.len() {
                    0 => format!(
                        "the store keeps no policy whose hash starts with `{}` (give 12 characters or more; it keeps {}: {})",
                        crate::runtime::plan_view::printable(hash),
                        hashes.len(),
                        hashes.iter().map(|h| super::view::short(h)).collect::<Vec<_>>().join(", ")
                    ),
                    n => format!("{n} kept policies start with `{hash}`: give more of the hash"),
                })
                .into());
            };
            let sources = store.kept_policy(full)?.unwrap_or_default();
            for (path, text) in &sources {
                outln!(
                    "// ==== {} ====",
                    crate::diagnostics::render::shown_text(path)
                );
                out!("{}", crate::diagnostics::render::shown_text(text));
                if !text.ends_with('\n') {
                    outln!();
                }
            }
            Ok(match super::policy::hash_of_kept(&sources) {
                Ok(h) if h == **full => {
                    errln!(
                        "pmf: policy {full}: {} files, as the store keeps them; they compile to its hash",
                        sources.len()
                    );
                    Exit::Success
                }
                Ok(h) => {
                    errln!(
                        "pmf: policy {full}: these files compile to {h}, not to its hash: they were edited outside pmf (`pmf lineage verify` says so too)"
                    );
                    Exit::Failure
                }
                Err(why) => {
                    errln!("pmf: policy {full}: these files {why}: they were edited outside pmf");
                    Exit::Failure
                }
            })
        }
        LineageCommand::Prove {
            partner,
            store,
            since,
        } => {
            let earlier = match since {
                Some(p) => Some(Checkpoint::read(p).map_err(UsageError)?),
                None => None,
            };
            let store = Store::open_to_read(store)?;
            let latest = store
                .latest_checkpoint()?
                .ok_or_else(|| UsageError("the store has no signed checkpoint yet".into()))?;
            let tree = store.tree()?;
            let hex_all = |p: Vec<merkle::Hash>| p.iter().map(merkle::to_hex).collect::<Vec<_>>();
            let mut inclusion = Vec::new();
            if let Some(p) = partner {
                let events = store.lineage(Some(p))?;
                if events.is_empty() {
                    return Err(UsageError(format!("no partner `{p}` in the lineage")).into());
                }
                let raw = store.raw_events(p)?;
                for ev in raw {
                    // A position past the latest checkpoint (or none a log
                    // can hold, from an edited row) has no proof.
                    let Some(index) = ev
                        .global_seq
                        .checked_sub(1)
                        .and_then(|i| u64::try_from(i).ok())
                        .filter(|&i| i < latest.size)
                    else {
                        continue;
                    };
                    let proof = tree
                        .inclusion_proof(index, latest.size)
                        .map(hex_all)
                        .unwrap_or_default();
                    let (prev_hash, hash) = (hex32(&ev.prev_hash), hex32(&ev.hash));
                    inclusion.push(if lineage::is_json(&ev.body) {
                        // Written before schema 3: the event is its JSON.
                        serde_json::json!({
                            "global_seq": ev.global_seq, "leaf_index": index,
                            "event": String::from_utf8_lossy(&ev.body),
                            "prev_hash": prev_hash, "hash": hash, "proof": proof,
                        })
                    } else {
                        // The compact encoding: the bytes hashed, and the
                        // event they encode as JSON, to read.
                        let event = lineage::read_event(&ev.body, p, ev.seq as u64)
                            .and_then(|e| serde_json::to_string(&e).ok())
                            .unwrap_or_default();
                        serde_json::json!({
                            "global_seq": ev.global_seq, "leaf_index": index,
                            "format": "pmf-event-v2", "partner": p, "seq": ev.seq,
                            "body": hex::encode(&ev.body), "event": event,
                            "prev_hash": prev_hash, "hash": hash, "proof": proof,
                        })
                    });
                }
            }
            // A proof that the log extends a checkpoint it does not extend
            // (forged, of another store, or from before a rewrite) is no
            // proof: say so, as `verify` would.
            if let Some(e) = &earlier {
                let departs = if e.store_id != latest.store_id {
                    Some("it is of another store".to_string())
                } else if !e.signature_holds() {
                    Some("it has no valid signature".to_string())
                } else if store.operator_key_at(e.size)?.as_deref() != Some(e.public_key.as_str()) {
                    Some(
                        "it is signed by another key than the store's operator key in force then"
                            .to_string(),
                    )
                } else {
                    tree.root_of(e.size)
                        .filter(|root| merkle::to_hex(root) != e.root)
                        .map(|_| {
                            format!(
                                "the log no longer extends it: events #1–#{} were rewritten",
                                e.size
                            )
                        })
                };
                if let Some(why) = departs {
                    errln!(
                        "pmf: the earlier checkpoint of {} events signed at {}: {why}; no proof is given (`pmf lineage verify --checkpoint FILE` says where the log departs from it)",
                        e.size,
                        e.time
                    );
                    return Ok(Exit::Failure);
                }
            }
            let consistency = match &earlier {
                Some(e) => {
                    let proof = tree
                        .consistency_proof(e.size, latest.size)
                        .ok_or_else(|| {
                            UsageError(format!(
                                "the earlier checkpoint covers {} events, more than the log's latest checkpoint ({}): the log was truncated",
                                e.size, latest.size
                            ))
                        })?;
                    Some(
                        serde_json::json!({"first": e.size, "first_root": e.root, "second": latest.size, "second_root": latest.root, "proof": hex_all(proof)}),
                    )
                }
                None => None,
            };
            let doc = serde_json::json!({
                "format": "pmf-proof-v1",
                "checkpoint": latest,
                "inclusion": inclusion,
                "consistency": consistency,
            });
            super::print_json(&doc);
            Ok(Exit::Success)
        }
    }
}

/// Whether `lineage checkpoint -o PATH` would write over a checkpoint that
/// is evidence: of another store (exit 2), or one the store's log no longer
/// extends (a rewrite or a truncation since it was exported: exit 1).
/// `None` when PATH holds no checkpoint, or one that `latest` extends.
fn replaces_evidence(
    store: &Store,
    latest: &Checkpoint,
    path: &std::path::Path,
) -> Result<Option<Exit>, CliError> {
    if !path.is_file() {
        return Ok(None);
    }
    let Ok(held) = Checkpoint::read(path) else {
        return Ok(None);
    };
    if held.store_id != latest.store_id {
        return Err(UsageError(format!(
            "`{}` holds a checkpoint of another store ({}): a witness of that store keeps it; nothing was written over it",
            path.display(),
            crate::runtime::plan_view::printable(&held.store_id)
        ))
        .into());
    }
    let extends = held.size <= latest.size
        && store
            .tree()?
            .root_of(held.size)
            .is_some_and(|root| crate::store::merkle::to_hex(&root) == held.root);
    if extends {
        return Ok(None);
    }
    errln!(
        "pmf: the store's log no longer extends the checkpoint `{}` holds ({} events, signed at {}): it was rewritten or cut since; the file is evidence of it, and nothing was written over it (`pmf lineage verify --checkpoint {}` says more)",
        path.display(),
        held.size,
        crate::runtime::plan_view::printable(&held.time),
        path.display()
    );
    Ok(Some(Exit::Failure))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::verify::Verification;

    fn verification(root: Option<(i64, &str)>) -> Verification {
        Verification {
            events: 3,
            partners: 2,
            checkpoints: 1,
            approvals: 0,
            latest: None,
            broken: None,
            problems: Vec::new(),
            root_policy: root.map(|(at, h)| (at, h.to_string())),
            governing_policy: root.map(|(_, h)| h.to_string()),
            policies: root
                .map(|(at, h)| (at, h.to_string(), true))
                .into_iter()
                .collect(),
            successions: Default::default(),
            illumination: (0, 0),
            plans: (0, 0),
        }
    }

    /// A store first governed by the pinned policy passes; by another, or
    /// by none, it is broken at the governing event (or at the start).
    #[test]
    fn the_trust_root_is_held_to_the_pinned_policy() {
        let mut v = verification(Some((1, "aaaa")));
        root_problem(&mut v, "aaaa", "the policy given");
        assert!(v.broken.is_none() && v.problems.is_empty());
        let mut v = verification(Some((4, "bbbb")));
        root_problem(&mut v, "aaaa", "the policy given");
        let broken = v.broken.expect("another root");
        assert_eq!(broken.global_seq, 4);
        assert!(
            broken
                .reason
                .contains("first governed by policy bbbb, not by the policy given"),
            "{}",
            broken.reason
        );
        let mut v = verification(None);
        root_problem(&mut v, "aaaa", "the policy given");
        assert!(
            v.broken
                .is_some_and(|b| b.reason.starts_with("no policy governs the store")),
        );
    }
}
