//! `pmf state rekey`: a new operator key for a store, by the key in force.
//!
//! The key in force signs the checkpoint that records the succession (an
//! `operator_rekeyed` event of the store's `@operator` chain, see
//! `store::rekey`), and the new key signs that it follows it; every later
//! checkpoint is the new key's. A store whose key is lost cannot be
//! rekeyed this way (nobody could tell its owner from whoever can write
//! the store file), and neither can a store that has no key yet.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError};
use crate::store::Store;
use crate::store::checkpoint::OperatorKey;

/// Arguments of `pmf state rekey`.
#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// The new operator key: a key file (`role: operator`), made there if
    /// no file is.
    #[arg(long)]
    pub new_key: PathBuf,
    /// Why the key is replaced (recorded in the lineage).
    #[arg(long)]
    pub reason: String,
    /// The key in force (default: `operator.key` beside the store).
    #[arg(long, env = "PMF_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,
    /// The store.
    #[arg(long, default_value = crate::store::DEFAULT_PATH)]
    pub store: PathBuf,
    /// Output format (`json`: the keys before and after, the reason and
    /// the time).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Run `pmf state rekey`.
pub fn run(args: &RekeyArgs) -> Result<Exit, CliError> {
    if args.reason.trim().is_empty() {
        return Err(UsageError(
            "--reason: say why the operator key is replaced (it is recorded in the lineage)".into(),
        )
        .into());
    }
    if !args.store.is_file() {
        return Err(UsageError(format!(
            "no store at `{}` (nothing to rekey)",
            args.store.display()
        ))
        .into());
    }
    super::files::refuse_output_over(
        &args.new_key,
        "the new operator key",
        &[(args.store.as_path(), "--store")],
    )?;
    let _lock = crate::store::lock::lock(&args.store, "state rekey")?;
    let mut store = Store::open(&args.store)?;
    if store.pinned_operator_key()?.is_none() {
        return Err(crate::store::StoreError::NothingToRekey.into());
    }
    // The key in force, checked before a new key is made: a refusal
    // leaves no key file behind.
    let (old, _) = store.operator_key(args.operator_key.as_deref())?;
    store.holds_operator(&old)?;
    let (new, made) = OperatorKey::load(&args.new_key, true)?;
    let rekey = match store.rekey(&old, &new, &args.reason) {
        Ok(r) => r,
        Err(e) => {
            if made {
                let _ = std::fs::remove_file(&new.path);
            }
            return Err(e.into());
        }
    };
    if made {
        errln!(
            "pmf: made the operator key `{}` (public key {}): keep it private and keep it",
            new.path.display(),
            rekey.to
        );
    }
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "store": args.store.display().to_string(),
            "from": rekey.from,
            "to": rekey.to,
            "key_file": new.path.display().to_string(),
            "reason": rekey.reason,
            "time": rekey.time,
        }));
        return Ok(Exit::Success);
    }
    outln!(
        "operator key {}… signed its succession: from now on `{}` ({}…) signs this store's checkpoints, and {}… signs none",
        short(&rekey.from),
        new.path.display(),
        short(&rekey.to),
        short(&rekey.from)
    );
    outln!(
        "the commands that write the store need the new key: {}",
        where_it_goes(&args.store, &new.path)
    );
    Ok(Exit::Success)
}

/// How the commands find the new key.
fn where_it_goes(store: &Path, key: &Path) -> String {
    let default = OperatorKey::default_path(store);
    if same_file(key, &default) {
        "it is at the default place beside the store".into()
    } else {
        format!(
            "pass `--operator-key {}` (or set PMF_OPERATOR_KEY), or put it at `{}` in place of the old key",
            key.display(),
            default.display()
        )
    }
}

/// Whether two paths name one file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The start of a key, as messages show it.
fn short(key: &str) -> &str {
    key.get(..16).unwrap_or(key)
}
