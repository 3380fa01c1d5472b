//! `pmf approve PLAN --key FILE`: sign a plan's hash for an authority.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError};
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
    /// Sign without asking (the summary is still printed).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Output format of the result (`json`: authority, public key, plan
    /// hash and approvals file); the summary before signing goes to stderr
    /// either way.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// What the signer is shown before signing: the plan, the policy, the
/// partners touched by type and categories, and the approvals it needs.
fn summary(loaded: &crate::runtime::plan::LoadedPlan, authority: &str) -> String {
    use std::collections::BTreeMap;
    let plan = &loaded.plan;
    let mut by_change: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut needs: BTreeMap<&str, usize> = BTreeMap::new();
    let mut mine = 0usize;
    for e in &plan.entries {
        if e.migration.is_none() && e.categories.is_empty() {
            continue;
        }
        let ty = e.migration.clone().unwrap_or_else(|| "no type".into());
        let cats = if e.categories.is_empty() {
            "-".to_string()
        } else {
            e.categories.join("+")
        };
        *by_change.entry((ty, cats)).or_default() += 1;
        for a in &e.approvals_required {
            *needs.entry(a.as_str()).or_default() += 1;
        }
        if e.approvals_required.iter().any(|a| a == authority) {
            mine += 1;
        }
    }
    let mut out = String::new();
    out.push_str(&format!(
        "plan      {}
",
        loaded.hash
    ));
    out.push_str(&format!(
        "policy    {} ({})
",
        plan.header.policy.name, plan.header.policy.hash
    ));
    out.push_str(&format!(
        "made at   {}, {} partners
",
        plan.header.created_at,
        plan.entries.len()
    ));
    out.push_str(
        "changes   type / categories: partners
",
    );
    for ((ty, cats), n) in &by_change {
        out.push_str(&format!(
            "          {ty} / {cats}: {n}
"
        ));
    }
    if needs.is_empty() {
        out.push_str(
            "approvals none needed
",
        );
    } else {
        let list: Vec<String> = needs
            .iter()
            .map(|(a, n)| format!("{a} ({n} partners)"))
            .collect();
        out.push_str(&format!(
            "approvals {}
",
            list.join(", ")
        ));
    }
    out.push_str(&format!(
        "signing as `{authority}`: this signature lets {mine} partners of this plan past preparation
"
    ));
    out
}

/// Run `pmf approve`.
pub fn run(args: &ApproveArgs) -> Result<Exit, CliError> {
    let loaded = read_plan(&args.plan).map_err(UsageError)?;
    let (file, key) = approvals::read_key(&args.key).map_err(UsageError)?;
    let mut out = if args.output.exists() {
        let existing = approvals::read_approvals(&args.output).map_err(UsageError)?;
        if existing.plan_hash != loaded.hash {
            return Err(UsageError(format!(
                "`{}` holds approvals of another plan; write these to another file",
                args.output.display()
            ))
            .into());
        }
        existing
    } else {
        ApprovalsFile {
            format_version: crate::runtime::approvals::APPROVALS_FORMAT,
            plan_hash: loaded.hash.clone(),
            approvals: Vec::new(),
        }
    };
    eprint!("{}", summary(&loaded, &file.authority));
    if !args.yes {
        use std::io::{BufRead, IsTerminal, Write};
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(UsageError(
                "pmf approve asks before it signs: run it in a terminal, or pass `--yes` after reading the summary above".into(),
            ).into());
        }
        eprint!("sign this plan as `{}`? [y/N] ", file.authority);
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = stdin.lock().read_line(&mut answer);
        if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
            eprintln!("pmf: nothing was signed");
            return Ok(Exit::Failure);
        }
    }
    let approval = approvals::sign(&key, &file.authority, &loaded.hash);
    out.approvals
        .retain(|a| !(a.authority == approval.authority && a.public_key == approval.public_key));
    let public_key = approval.public_key.clone();
    out.approvals.push(approval);
    approvals::write_json(&args.output, &out, false).map_err(UsageError)?;
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "authority": file.authority,
            "public_key": public_key,
            "plan_hash": loaded.hash,
            "approvals_file": args.output.display().to_string(),
            "approvals": out.approvals.len(),
        }));
        return Ok(Exit::Success);
    }
    println!(
        "`{}` approves plan {} → {}",
        file.authority,
        &loaded.hash[..12],
        args.output.display()
    );
    Ok(Exit::Success)
}
