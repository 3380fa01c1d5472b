//! `pmf approve PLAN --key FILE`: sign a plan's hash for an authority.

use std::path::PathBuf;

use clap::Args;

use super::{Exit, UsageError};
use crate::runtime::approvals::{self, ApprovalsFile};
use crate::runtime::plan::read_plan;

/// Arguments of `pmf approve`.
#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The plan to approve.
    pub plan: PathBuf,
    /// The authority's private key (`pmf keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// The approvals file to add the signature to (created if absent).
    #[arg(short = 'o', long = "output", default_value = "approvals.json")]
    pub output: PathBuf,
}

/// Run `pmf approve`.
pub fn run(args: &ApproveArgs) -> Result<Exit, UsageError> {
    let loaded = read_plan(&args.plan).map_err(UsageError)?;
    let (file, key) = approvals::read_key(&args.key).map_err(UsageError)?;
    let mut out = if args.output.exists() {
        let existing = approvals::read_approvals(&args.output).map_err(UsageError)?;
        if existing.plan_hash != loaded.hash {
            return Err(UsageError(format!(
                "`{}` holds approvals of another plan; write these to another file",
                args.output.display()
            )));
        }
        existing
    } else {
        ApprovalsFile {
            format_version: 1,
            plan_hash: loaded.hash.clone(),
            approvals: Vec::new(),
        }
    };
    let approval = approvals::sign(&key, &file.authority, &loaded.hash);
    out.approvals
        .retain(|a| !(a.authority == approval.authority && a.public_key == approval.public_key));
    out.approvals.push(approval);
    approvals::write_json(&args.output, &out, false).map_err(UsageError)?;
    println!(
        "`{}` approves plan {} → {}",
        file.authority,
        &loaded.hash[..12],
        args.output.display()
    );
    Ok(Exit::Success)
}
