//! `pmf rollback PARTNER [--to VERSION]`: a fallback migration to the
//! previous stable (or named) version, recorded as a new lineage revision
//! (roll forward, never a rewrite), with the rite of release.

use std::path::PathBuf;

use clap::Args;

use super::plan::OutputFormat;
use super::{Exit, UsageError, policy};
use crate::runtime::plan::now_rfc3339;
use crate::store::lineage::{self, Event};
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
    let mut store = Store::open_existing(&args.store).map_err(|e| UsageError(e.0))?;
    let _lock = store.lock("apply").map_err(|e| match e {
        crate::store::lock::LockError::Held(h) | crate::store::lock::LockError::Stale(h) => {
            UsageError(format!(
                "the store is locked by pid {} on {} since {}",
                h.pid, h.host, h.started_at
            ))
        }
        crate::store::lock::LockError::Store(e) => UsageError(e.0),
    })?;
    let current = store
        .partner(&args.partner)
        .map_err(|e| UsageError(e.0))?
        .ok_or_else(|| UsageError(format!("no partner `{}` in the store", args.partner)))?;
    let stable = store
        .stable_versions(&args.partner)
        .map_err(|e| UsageError(e.0))?;
    let chosen = match &args.to {
        Some(v) => stable
            .iter()
            .rev()
            .find(|(ver, _)| ver.as_deref() == Some(v.as_str()))
            .cloned()
            .ok_or_else(|| {
                let known: Vec<String> = stable.iter().filter_map(|(v, _)| v.clone()).collect();
                UsageError(format!(
                    "partner `{}` was never stable at {v}; its stable versions: {}",
                    args.partner,
                    known.join(", ")
                ))
            })?,
        None => stable
            .iter()
            .rev()
            .find(|(ver, state)| *ver != current.version || *state != current.state)
            .cloned()
            .ok_or_else(|| {
                UsageError(format!(
                    "partner `{}` has no earlier stable version",
                    args.partner
                ))
            })?,
    };
    let now = now_rfc3339();
    let base = Event {
        partner: args.partner.clone(),
        from: current.version.clone(),
        to: chosen.0.clone(),
        migration: Some("fallback".into()),
        policy_hash,
        time: now.clone(),
        ..Event::default()
    };
    let tx = store
        .conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| UsageError(e.to_string()))?;
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
            ..base.clone()
        },
    ];
    let mut chain = lineage::Chain::load(&tx, &args.partner).map_err(|e| UsageError(e.0))?;
    let mut stored = Vec::with_capacity(events.len());
    for e in &mut events {
        stored.push(chain.append(&tx, e).map_err(|e| UsageError(e.0))?);
    }
    chain.finish(&tx).map_err(|e| UsageError(e.0))?;
    let apply = || -> rusqlite::Result<()> {
        tx.execute(
            "UPDATE partners SET state = ?2, version = ?3, status = 'active', updated_at = ?4 WHERE id = ?1",
            rusqlite::params![args.partner, chosen.1, chosen.0, now],
        )?;
        tx.execute(
            "INSERT INTO stable_versions (partner_id, seq, version, state)
             VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM stable_versions WHERE partner_id = ?1), ?2, ?3)",
            rusqlite::params![args.partner, chosen.0, chosen.1],
        )?;
        Ok(())
    };
    apply().map_err(|e| UsageError(e.to_string()))?;
    tx.commit().map_err(|e| UsageError(e.to_string()))?;
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
                chosen.0.unwrap_or_default()
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
