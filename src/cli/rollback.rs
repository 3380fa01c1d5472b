//! `pmf rollback PARTNER [--to VERSION]`: a fallback migration to the
//! previous stable (or named) version, recorded as a new lineage revision
//! (roll forward, never a rewrite), with the rite of release.

use std::path::PathBuf;

use clap::Args;

use super::plan::OutputFormat;
use super::{Exit, UsageError, policy};
use crate::runtime::plan::now_rfc3339;
use crate::store::checkpoint::OperatorKey;
use crate::store::lineage::Event;
use crate::store::{DEFAULT_PATH, Store};

/// Arguments of `pmf rollback`.
#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The partner to roll back.
    pub partner: String,
    /// The stable version to return to (default: the one before the current).
    #[arg(long)]
    pub to: Option<String>,
    /// The store.
    #[arg(long, default_value = DEFAULT_PATH)]
    pub store: PathBuf,
    /// Policy files whose rites to speak (default: the standard library's).
    #[arg(long, num_args = 1..)]
    pub policy: Vec<PathBuf>,
    /// The operator's key, which signs the lineage's checkpoints (default:
    /// `operator.key` beside the store).
    #[arg(long, env = "PMF_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Run `pmf rollback`.
pub fn run(args: &RollbackArgs) -> Result<Exit, UsageError> {
    let (rites, policy_hash) = if args.policy.is_empty() {
        (kwanus_rites(), None)
    } else {
        match policy::load(&args.policy) {
            Ok(p) => {
                let fallback = p
                    .graph
                    .index("fallback")
                    .and_then(|i| p.graph.phases[i].rite.clone());
                ((fallback, p.release_rite.clone()), Some(p.hash.clone()))
            }
            Err(f) => return f.exit(),
        }
    };
    let _lock = crate::store::lock::lock(&args.store, "rollback")
        .map_err(|e| UsageError(format!("{e}; nothing was rolled back")))?;
    let mut store = Store::open_existing(&args.store).map_err(|e| UsageError(e.0))?;
    let (current, last) = store
        .bound_partner(&args.partner)
        .map_err(|e| UsageError(e.0))?
        .ok_or_else(|| UsageError(format!("no partner `{}` in the store", args.partner)))?;
    let stable = store
        .stable_versions(&args.partner)
        .map_err(|e| UsageError(e.0))?;
    // Stable versions are bound to the lineage: one edited outside pmf is
    // never installed.
    let verification = store.verify(None).map_err(|e| UsageError(e.0))?;
    if let Some(b) = verification
        .problems
        .iter()
        .find(|b| b.partner.as_deref() == Some(args.partner.as_str()))
    {
        return Err(UsageError(format!(
            "partner `{}` cannot be rolled back: {}; nothing was rolled back",
            args.partner, b.reason
        )));
    }
    let chosen = match &args.to {
        Some(v) => stable
            .iter()
            .rev()
            .find(|s| s.version.as_deref() == Some(v.as_str()))
            .cloned()
            .ok_or_else(|| {
                let known: Vec<String> = stable.iter().filter_map(|s| s.version.clone()).collect();
                UsageError(format!(
                    "partner `{}` was never stable at {v}; its stable versions: {}",
                    args.partner,
                    known.join(", ")
                ))
            })?,
        None => {
            if last
                .as_ref()
                .is_some_and(|l| l.outcome.as_deref() == Some("rolled_back"))
            {
                return Err(UsageError(format!(
                    "partner `{}` was just rolled back to {}; rolling back again would not go further back but forth: name the version with `--to VERSION`",
                    args.partner,
                    current.version.as_deref().unwrap_or("its previous state")
                )));
            }
            stable
                .iter()
                .rev()
                .find(|s| s.version != current.version || s.state != current.state)
                .cloned()
                .ok_or_else(|| {
                    UsageError(format!(
                        "partner `{}` has no earlier stable version",
                        args.partner
                    ))
                })?
        }
    };
    if chosen.version == current.version && chosen.state == current.state {
        return Err(UsageError(format!(
            "partner `{}` is already at {}: nothing to roll back",
            args.partner,
            chosen.version.as_deref().unwrap_or("that state")
        )));
    }
    let operator_path = args
        .operator_key
        .clone()
        .unwrap_or_else(|| OperatorKey::default_path(&args.store));
    let (operator, _) = OperatorKey::load(&operator_path, true).map_err(|e| UsageError(e.0))?;
    let now = now_rfc3339();
    let base = Event {
        partner: args.partner.clone(),
        from: current.version.clone(),
        to: chosen.version.clone(),
        migration: Some("fallback".into()),
        policy_hash,
        time: now.clone(),
        ..Event::default()
    };
    let mut batch = store.begin(&operator).map_err(|e| UsageError(e.0))?;
    let seq = batch
        .next_stable_seq(&args.partner)
        .map_err(|e| UsageError(e.0))?;
    let stable_digest = batch
        .push_stable(&args.partner, seq, chosen.version.as_deref(), &chosen.state)
        .map_err(|e| UsageError(e.0))?;
    let state_digest = batch
        .put_partner(
            &args.partner,
            &chosen.state,
            chosen.version.as_deref(),
            "active",
        )
        .map_err(|e| UsageError(e.0))?;
    let mut events = vec![
        Event {
            kind: "rollback".into(),
            phase: Some("fallback".into()),
            rite: rites.0.clone(),
            detail: Some("roll back to a previous stable version".into()),
            ..base.clone()
        },
        Event {
            kind: "released".into(),
            rite: rites.1.clone(),
            detail: current
                .version
                .as_ref()
                .map(|v| format!("version {v} released")),
            ..base.clone()
        },
        Event {
            kind: "completed".into(),
            outcome: Some("rolled_back".into()),
            state: Some(state_digest),
            stable: vec![stable_digest],
            ..base.clone()
        },
    ];
    let mut chain = batch.chain(&args.partner).map_err(|e| UsageError(e.0))?;
    let mut stored = Vec::with_capacity(events.len());
    for e in &mut events {
        stored.push(batch.append(&mut chain, e).map_err(|e| UsageError(e.0))?);
    }
    batch.commit().map_err(|e| UsageError(e.0))?;
    match args.format {
        OutputFormat::Json => {
            let mut out = std::io::stdout().lock();
            for json in &stored {
                let _ = super::apply::write_lineage_line(&mut out, json);
            }
        }
        OutputFormat::Human => {
            println!(
                "↩ {} rolled back {} → {}",
                args.partner,
                current.version.unwrap_or_default(),
                chosen.version.unwrap_or_default()
            );
            for words in [&rites.0, &rites.1].into_iter().flatten() {
                println!("    “{words}”");
            }
        }
    }
    Ok(Exit::Success)
}

/// The fallback and release rites of the standard library.
fn kwanus_rites() -> (Option<String>, Option<String>) {
    let parsed = crate::syntax::parse(crate::stdlib::KWANUS_PATH, crate::stdlib::KWANUS_SOURCE);
    let rite = |phase: &str| {
        parsed.ast.decls.iter().find_map(|d| match &d.kind {
            crate::syntax::ast::DeclKind::Rite(r) if r.phase.name == phase => {
                Some(r.words.value.clone())
            }
            _ => None,
        })
    };
    (rite("fallback"), rite("release"))
}
