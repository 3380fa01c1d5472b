//! `pmf state rekey`: a new operator key for a store.
//!
//! By the key in force: it signs the checkpoint that records the
//! succession (an `operator_rekeyed` event of the store's `@operator`
//! chain, see `store::rekey`), and the new key signs that it follows it;
//! every later checkpoint is the new key's.
//!
//! When the key in force is lost, nobody could tell its owner from whoever
//! can write the store file: the authorities of the governing policy
//! decide. `--request FILE` writes what they sign (`pmf approve FILE`),
//! valid for `--valid-for`, and `--approved FILE --approvals FILE` carries
//! it out with their approvals, under a checkpoint the new key signs.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError};
use crate::store::Store;
use crate::store::checkpoint::OperatorKey;
use crate::store::rekey::{RekeyRequest, short};

/// Arguments of `pmf state rekey`.
#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// The new operator key: a key file (`role: operator`), made there if
    /// no file is.
    #[arg(long)]
    pub new_key: PathBuf,
    /// Why the key is replaced (recorded in the lineage; an approved
    /// request carries its own).
    #[arg(
        long,
        required_unless_present = "approved",
        conflicts_with = "approved"
    )]
    pub reason: Option<String>,
    /// The key in force (default: `operator.key` beside the store). Not
    /// with `--request` or `--approved` (the key in force is lost), where
    /// `PMF_OPERATOR_KEY` set in the environment is ignored.
    #[arg(long, env = "PMF_OPERATOR_KEY")]
    pub operator_key: Option<PathBuf>,
    /// The key in force is lost: write the request the authorities of the
    /// governing policy approve (`pmf approve FILE`) here, and rekey
    /// nothing.
    #[arg(long, conflicts_with = "approved")]
    pub request: Option<PathBuf>,
    /// How long the request may be carried out (`36h`, `7d`; at most 90
    /// days), as a plan's validity.
    #[arg(long, value_name = "DURATION", default_value = "7d", value_parser = super::plan::validity, requires = "request")]
    pub valid_for: u64,
    /// The key in force is lost: carry out this request (`--request`),
    /// with its approvals.
    #[arg(long, requires = "approvals")]
    pub approved: Option<PathBuf>,
    /// The approvals of the request (`pmf approve`), one by every
    /// authority of the governing policy (repeatable).
    #[arg(long, requires = "approved")]
    pub approvals: Vec<PathBuf>,
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
    let reason = args.reason.as_deref().unwrap_or_default();
    if args.approved.is_none() && reason.trim().is_empty() {
        return Err(UsageError(
            "--reason: say why the operator key is replaced (it is recorded in the lineage)".into(),
        )
        .into());
    }
    // A lost key's succession signs nothing with the key in force: naming
    // it is a mistake, unless the environment names it for every command
    // (clap would count the variable as the option given).
    if (args.request.is_some() || args.approved.is_some())
        && let Some(key) = &args.operator_key
        && std::env::var_os("PMF_OPERATOR_KEY").is_none_or(|env| key.as_os_str() != env)
    {
        return Err(UsageError(format!(
            "--operator-key `{}` has no use with --request or --approved: they replace a key in force that is lost",
            key.display()
        ))
        .into());
    }
    // The approved request, read (and its form checked) before the store
    // is opened.
    let approved = match &args.approved {
        Some(path) => Some(read_request(path)?),
        None => None,
    };
    if !args.store.is_file() {
        return Err(UsageError(format!(
            "no store at `{}` (nothing to rekey)",
            args.store.display()
        ))
        .into());
    }
    if let Some(out) = &args.request {
        super::files::refuse_output_over(
            out,
            "the request",
            &[
                (args.store.as_path(), "--store"),
                (args.new_key.as_path(), "--new-key"),
            ],
        )?;
    }
    // Every approvals file is read before the store is opened.
    let approvals = args
        .approvals
        .iter()
        .map(|p| crate::runtime::approvals::read_approvals(p).map(|f| (p, f)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(UsageError)?;
    let _lock = crate::store::lock::lock(&args.store, "state rekey")?;
    let mut store = Store::open(&args.store)?;
    let Some(pinned) = store.pinned_operator_key()? else {
        return Err(crate::store::StoreError::NothingToRekey.into());
    };
    // The key in force (unless it is lost), checked before a new key is
    // made: a refusal leaves no key file behind.
    let old = if args.request.is_none() && approved.is_none() {
        let old = super::keys::operator_key(&store, args.operator_key.as_deref())?;
        store.holds_operator(&old)?;
        Some(old)
    } else {
        None
    };
    let (new, made) = OperatorKey::load(&args.new_key, true)?;
    // A key made here and left unused is removed again, on an error and on
    // a panic (a thread that cannot start) alike.
    let mut unused = UnusedKey {
        path: made.then(|| new.path.clone()),
    };
    if let Some(out) = &args.request {
        let store_id = store.id()?.unwrap_or_default();
        let request = RekeyRequest::new(
            &store_id,
            (&pinned, &new.public_hex()),
            store.rekeys()?.len() as u64,
            reason,
            &crate::runtime::plan::expires_after(args.valid_for),
        );
        let written = write_request(args, out, &request, &new, made);
        if written.is_ok() {
            unused.keep();
        }
        return written;
    }
    let result = match (&old, &approved) {
        (Some(old), _) => store.rekey(old, &new, reason),
        (None, None) => Err(crate::store::StoreError::NothingToRekey),
        (None, Some(request)) => {
            let given: Vec<(String, String, String)> = approvals
                .iter()
                .flat_map(|(_, f)| f.approvals.iter())
                .map(|a| {
                    (
                        a.authority.clone(),
                        a.public_key.clone(),
                        a.signature.clone(),
                    )
                })
                .collect();
            store.rekey_approved(&new, request, &given)
        }
    };
    match result {
        Ok(rekey) => {
            unused.keep();
            // The checkpoint the succession's commit signed (the latest,
            // under the lock), for the JSON to hand to a witness.
            let signed = store.latest_checkpoint()?;
            Ok(report(args, &rekey, &new, made, signed))
        }
        Err(crate::store::StoreError::RekeyRefused(why)) => {
            errln!("pmf: {why}; nothing was written");
            Ok(Exit::Failure)
        }
        Err(e) => Err(e.into()),
    }
}

/// A new operator key made by this run, removed when the run drops it
/// unused.
struct UnusedKey {
    /// The key file, until it is kept.
    path: Option<std::path::PathBuf>,
}

impl UnusedKey {
    /// The key is in use (pinned, or named by a request): keep it.
    fn keep(&mut self) {
        self.path = None;
    }
}

impl Drop for UnusedKey {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The request for a new operator key at `path`, as `--request` wrote it.
pub fn read_request(path: &Path) -> Result<RekeyRequest, UsageError> {
    let cannot = |e: std::io::Error| {
        UsageError(format!(
            "cannot read the request `{}`: {}",
            path.display(),
            crate::syntax::diagnostics::io_reason(&e)
        ))
    };
    // A request is a few hundred bytes (its reason at most 2 KiB).
    let bytes = crate::syntax::read::whole(path, 1 << 20).map_err(cannot)?;
    let text = String::from_utf8_lossy(&bytes);
    RekeyRequest::parse(&text).ok_or_else(|| {
        UsageError(format!(
            "`{}` is not a request for a new operator key as `pmf state rekey --request` writes it (edited?)",
            path.display()
        ))
    })
}

/// Write `request` to `out` for the authorities to approve.
fn write_request(
    args: &RekeyArgs,
    out: &Path,
    request: &RekeyRequest,
    new: &OperatorKey,
    made: bool,
) -> Result<Exit, CliError> {
    if request.from == request.to {
        return Err(crate::store::StoreError::SameOperatorKey {
            path: new.path.clone(),
        }
        .into());
    }
    super::files::write_text(out, &request.text())?;
    if made {
        told_made(new, &request.to);
    }
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "request": out.display().to_string(),
            "request_hash": request.hash(),
            "from": request.from,
            "to": request.to,
            "successions": request.successions,
            "reason": request.reason,
            "expires_at": request.expires_at,
        }));
    } else {
        outln!(
            "request {}… written to `{}`: operator key {}… (lost) to be replaced by `{}` ({}…), valid to {}; every authority of the governing policy approves it (`pmf approve {} --key KEY -o approvals.json`), then `pmf state rekey --new-key {} --approved {} --approvals approvals.json`",
            short(&request.hash()),
            out.display(),
            short(&request.from),
            new.path.display(),
            short(&request.to),
            request.expires_at,
            out.display(),
            new.path.display(),
            out.display()
        );
    }
    Ok(Exit::Success)
}

/// Say that the new key was made, and where.
fn told_made(new: &OperatorKey, public: &str) {
    errln!(
        "pmf: made the operator key `{}` (public key {public}): keep it private and keep it",
        new.path.display()
    );
}

/// Say what the succession did, and how the commands find the new key.
fn report(
    args: &RekeyArgs,
    rekey: &crate::store::rekey::Rekey,
    new: &OperatorKey,
    made: bool,
    signed: Option<crate::store::checkpoint::Checkpoint>,
) -> Exit {
    if made {
        told_made(new, &rekey.to);
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
            "approved_by": rekey.approved.as_ref().map(|(_, signers)| signers),
            "checkpoint": signed,
        }));
        return Exit::Success;
    }
    let by = match rekey.approved {
        None => format!("operator key {}… signed its succession", short(&rekey.from)),
        Some(_) => format!(
            "{} approved the succession of the lost operator key {}…",
            rekey
                .approvers()
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(", "),
            short(&rekey.from)
        ),
    };
    outln!(
        "{by}: from now on `{}` ({}…) signs this store's checkpoints, and {}… signs none",
        new.path.display(),
        short(&rekey.to),
        short(&rekey.from)
    );
    outln!(
        "the commands that write the store need the new key: {}",
        where_it_goes(&args.store, &new.path)
    );
    Exit::Success
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
