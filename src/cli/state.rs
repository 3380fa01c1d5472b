//! `pmf state import|export|unlock`: partner states in the store.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::plan::input_failure_then;
use super::refusal::Refuser;
use super::{CliError, Exit, OutputFormat, policy};
use crate::runtime::input::read_all_partners;
use crate::runtime::plan::now_rfc3339;
use crate::store::lineage::{Event, EventKind};
use crate::store::{DEFAULT_PATH, Store};

/// Arguments of `pmf state`.
#[derive(Args, Debug)]
pub struct StateArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: StateCommand,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One JSON array.
    Json,
    /// One partner per line.
    Ndjson,
}

/// State subcommands.
#[derive(Subcommand, Debug)]
pub enum StateCommand {
    /// Import partner states (JSON array or NDJSON), checked against the policy's schema.
    Import {
        /// The partner states.
        file: PathBuf,
        /// The policy, for the schema: files, directories, or a policy's
        /// name among them (repeatable).
        #[arg(long, num_args = 1.., required = true, value_name = "FILE|DIR|NAME")]
        policy: Vec<PathBuf>,
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Replace partners the store already holds (needs `--reason`, and
        /// `-o` to plan it when the policy has authorities: each must
        /// approve the replacement before `pmf apply` carries it out).
        #[arg(long, requires = "reason")]
        replace: bool,
        /// Why the states are imported or replaced (recorded in the lineage).
        #[arg(long)]
        reason: Option<String>,
        /// The operator's key, which signs the lineage's checkpoints.
        #[arg(long, env = "PMF_OPERATOR_KEY")]
        operator_key: Option<PathBuf>,
        /// Write the replacement plan here (with `--replace`) instead of
        /// importing: it is approved with `pmf approve` and carried out by
        /// `pmf apply`.
        #[arg(short = 'o', long = "output", requires = "replace")]
        output: Option<PathBuf>,
        /// How long the replacement plan may be signed and applied (`36h`,
        /// `7d`; at most 90 days; with `-o`).
        #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = super::plan::validity)]
        valid_for: u64,
        /// Output format (`json`: the store and the partners imported and
        /// replaced).
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
    /// Export every partner's current state.
    Export {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
    },
    /// Sign the store's checkpoints with a new operator key from now on:
    /// the key in force signs the succession, recorded in the lineage.
    Rekey(super::rekey::RekeyArgs),
    /// Say who holds the store's lock. The lock is the operating system's:
    /// it ends with its holder, so there is nothing to clear by hand.
    Unlock {
        /// The store.
        #[arg(long, default_value = DEFAULT_PATH)]
        store: PathBuf,
        /// Output format (`json`: whether the store is locked, and by whom).
        #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
        format: OutputFormat,
    },
}

/// Run `pmf state`.
pub fn run(args: &StateArgs) -> Result<Exit, CliError> {
    match &args.command {
        StateCommand::Import {
            file,
            policy,
            store,
            replace,
            reason,
            operator_key,
            output,
            valid_for,
            format,
        } => {
            if let Some(out) = output {
                let mut inputs = vec![(store.as_path(), "--store"), (file.as_path(), "the states")];
                inputs.extend(policy.iter().map(|p| (p.as_path(), "--policy")));
                super::files::refuse_output_over(out, "the replacement plan", &inputs)?;
            }
            let loaded = match policy::load_checked(policy) {
                Ok(p) => p,
                Err(f) => return f.exit(),
            };
            let sources = policy::own_sources(&loaded);
            let kept = policy::kept_sources(&loaded);
            let policy = loaded.policy;
            let partners = match read_all_partners(&policy.schema, file) {
                Ok(p) => p,
                Err(e) => return input_failure_then(e, "nothing was imported"),
            };
            let _lock = crate::store::lock::lock(store, "state import")
                .map_err(|e| CliError::from(e).then("nothing was imported"))?;
            // An import refused is recorded in the store's lineage, naming
            // the file by its BLAKE3.
            let refuser = || -> Result<Refuser<'_>, CliError> {
                let states = super::plan::input_file(file)?;
                Ok(Refuser {
                    store,
                    operator_key: operator_key.as_deref(),
                    plan_hash: None,
                    policy_hash: policy.hash.clone(),
                    prefix: format!(
                        "state import of `{}`{}: ",
                        states.file,
                        states
                            .blake3
                            .map(|h| format!(" (BLAKE3 {h})"))
                            .unwrap_or_default()
                    ),
                })
            };
            // No state the store holds passes a ceiling, however it comes
            // in: a migration to it is restricted, and so is an import.
            let broken: Vec<String> = partners
                .iter()
                .flat_map(|v| {
                    let id = crate::runtime::value::shown_id(policy.id_of(v));
                    policy
                        .ceilings_broken_by(v)
                        .into_iter()
                        .map(move |b| format!("partner `{id}`: {b}"))
                })
                .collect();
            if !broken.is_empty() {
                let why = "these states pass the policy's ceilings, which no partner's state may (a ceiling is raised by a reviewed change of the policy)";
                errln!("pmf: {why}:");
                for b in broken.iter().take(20) {
                    errln!("  - {b}");
                }
                if broken.len() > 20 {
                    errln!("  - … and {} more", broken.len() - 20);
                }
                errln!("pmf: nothing was imported");
                refuser()?.record(&super::refusal::listed(why, &broken));
                return Ok(Exit::Failure);
            }
            let mut db = Store::open(store)?;
            // States are read against the policy that governs the store:
            // another one's schema (or another one's authorities, for a
            // replacement) does not count.
            let proposed = policy::governing(&policy);
            let governing = db.governing()?;
            if let Some(g) = governing.as_ref().filter(|g| **g != proposed) {
                let reason = format!(
                    "the store is governed by policy {}, not by the one given ({}): import with the governing policy (a change of policy is applied with an approved migration plan); nothing was imported",
                    super::view::short(&g.policy_hash),
                    super::view::short(&proposed.policy_hash)
                );
                return Ok(refuser()?.refuse(&reason, &[]));
            }
            if let Some(pin) = super::trust::pinned(store)?
                && let Some(why) = super::trust::problem(&db, &proposed.policy_hash, &pin)?
            {
                drop(db);
                return Ok(refuser()?.refuse(&format!("{why}; nothing was imported"), &[]));
            }
            let mut held = Vec::new();
            // Partners the store holds with the very states given (an
            // import run again, after a crash that hid its success): they
            // change nothing, and are left as they are.
            let mut unchanged = std::collections::HashSet::new();
            for v in &partners {
                let id = policy.id_of(v);
                // Held to its lineage: a row deleted outside pmf is not a
                // new partner to import.
                if let Some((stored, _)) = db.bound_partner(id)? {
                    // The canonical text the store keeps (not the JSON
                    // value, which compares to a string as a JSON string).
                    let given = v.to_json(&policy.schema).to_string();
                    if !*replace && stored.state == given {
                        unchanged.insert(id.to_string());
                    } else {
                        held.push(id.to_string());
                    }
                }
            }
            let approvers = super::replace::required(&policy);
            if let Some(out) = output {
                return super::replace::plan(&super::replace::Planned {
                    store_path: store,
                    store: &db,
                    policy: &policy,
                    sources,
                    states: super::plan::input_file(file)?,
                    partners: &partners,
                    reason: reason.as_deref().unwrap_or_default(),
                    output: out,
                    valid_for: *valid_for,
                    format: *format,
                });
            }
            if !held.is_empty() && *replace && !approvers.is_empty() {
                let reason = format!(
                    "replacing the state of {} partners the store holds is a governed change: every authority of the policy ({}) must approve it",
                    held.len(),
                    approvers.join(", ")
                );
                return Ok(refuser()?.refuse(
                    &reason,
                    &["plan it with `-o replace.json`, have it approved (`pmf approve replace.json --key KEY -o approvals.json`) and apply it (`pmf apply replace.json --approvals approvals.json`); nothing was imported"],
                ));
            }
            if !held.is_empty() && !replace {
                let reason = format!(
                    "the store already holds {} of these partners ({}{}); importing would rewrite their current state outside any migration",
                    held.len(),
                    held.iter()
                        .take(5)
                        .map(|h| format!("`{h}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    if held.len() > 5 { ", …" } else { "" }
                );
                return Ok(refuser()?.refuse(
                    &reason,
                    &["plan and apply a migration instead, or pass `--replace --reason TEXT` (recorded in the lineage); nothing was imported"],
                ));
            }
            let new = partners.len() - unchanged.len();
            if new == 0 {
                // Said only of a record the signed checkpoints vouch for (as
                // an import is written only onto such a log).
                db.vouch_for_log()?;
                if *format == OutputFormat::Json {
                    super::print_json(&serde_json::json!({
                        "format_version": 1,
                        "store": db.path().display().to_string(),
                        "imported": 0,
                        "replaced": 0,
                        "unchanged": unchanged.len(),
                    }));
                } else {
                    let these = match unchanged.len() {
                        1 => "this partner with this very state".to_string(),
                        n => format!("these {n} partners with these very states"),
                    };
                    outln!(
                        "nothing to import: {} already holds {these} (imported by an earlier run)",
                        db.path().display(),
                    );
                }
                return Ok(Exit::Success);
            }
            let operator = super::keys::operator_key(&db, operator_key.as_deref())?;
            let mut batch = db.begin(&operator)?;
            // The first import governs the store by its policy, as the first
            // plan applied does: from here on, another policy needs the
            // approval of this one's authorities, and replacing a state the
            // approval of all of them.
            if governing.is_none() {
                let states = super::plan::input_file(file)?;
                let origin = format!(
                    "import of `{}`{}",
                    states.file,
                    states
                        .blake3
                        .map(|h| format!(", BLAKE3 {h}"))
                        .unwrap_or_default()
                );
                batch.govern(&proposed, &kept, &origin, Vec::new(), &now_rfc3339())?;
            }
            for v in partners
                .iter()
                .filter(|v| !unchanged.contains(policy.id_of(v)))
            {
                let id = policy.id_of(v);
                let version = policy.version_of(v).map(|v| v.to_string());
                let state = v.to_json(&policy.schema).to_string();
                let existed = batch.partner(id)?;
                let seq = batch.next_stable_seq(id)?;
                if existed.is_none() && seq != 1 {
                    return Err(crate::store::StoreError::StrayStable {
                        partner: id.to_string(),
                    }
                    .into());
                }
                let stable = batch.push_stable(id, seq, version.as_deref(), &state)?;
                let digest = batch.put_partner(id, &state, version.as_deref(), "active")?;
                let mut event = Event {
                    kind: if existed.is_some() {
                        EventKind::Replaced
                    } else {
                        EventKind::Imported
                    },
                    from: existed.and_then(|p| p.version).map(Into::into),
                    to: version.map(Into::into),
                    detail: reason.clone(),
                    state: Some(digest),
                    stable: vec![stable],
                    time: now_rfc3339().into(),
                    ..Event::default()
                };
                let mut chain = batch.chain(id)?;
                batch.append(&mut chain, &mut event)?;
            }
            let signed = batch.commit()?;
            if *format == OutputFormat::Json {
                super::print_json(&serde_json::json!({
                    "format_version": 1,
                    "store": db.path().display().to_string(),
                    "imported": new,
                    "replaced": held.len(),
                    "unchanged": unchanged.len(),
                    "checkpoint": signed,
                }));
                return Ok(Exit::Success);
            }
            let mut notes = Vec::new();
            if !held.is_empty() {
                notes.push(format!("{} replaced", held.len()));
            }
            if !unchanged.is_empty() {
                notes.push(format!(
                    "{} already held with these very states, left as they are",
                    unchanged.len()
                ));
            }
            outln!(
                "imported {} into {}{}",
                super::view::counted(new as u64, "partner"),
                db.path().display(),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", notes.join("; "))
                }
            );
            Ok(Exit::Success)
        }
        StateCommand::Export { store, format } => {
            let store = Store::open_to_read(store)?;
            // A partner at a time, as it is read: a fleet's states are
            // never all held.
            let mut array = super::output::StreamedArray::new("", 0);
            store.each_partner(|p| {
                let state: serde_json::Value =
                    serde_json::from_str(&p.state).unwrap_or(serde_json::Value::Null);
                match format {
                    ExportFormat::Json => array.element(&state),
                    ExportFormat::Ndjson => outln!("{state}"),
                }
                Ok(())
            })?;
            if *format == ExportFormat::Json {
                array.finish();
                outln!();
            }
            Ok(Exit::Success)
        }
        StateCommand::Rekey(rekey) => super::rekey::run(rekey),
        StateCommand::Unlock { store, format } => {
            let holder = crate::store::lock::holder(store)?;
            if *format == OutputFormat::Json {
                super::print_json(&serde_json::json!({
                    "format_version": 1,
                    "store": store.display().to_string(),
                    "locked": holder.is_some(),
                    "holder": holder,
                }));
                return Ok(Exit::Success);
            }
            match holder {
                None => {
                    outln!("the store is not locked (its lock ends with the process that holds it)")
                }
                Some(h) => {
                    outln!("the store is in use by {h}; its lock ends when that process ends")
                }
            }
            Ok(Exit::Success)
        }
    }
}
