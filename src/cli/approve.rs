//! `pmf approve PLAN --key FILE`: sign a plan's hash for an authority (or
//! the hash of a request for a new operator key, `pmf state rekey
//! --request`).

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Exit, OutputFormat, UsageError, policy};
use crate::runtime::approvals::{self, ApprovalsFile};
use crate::runtime::plan::{PlanKind, read_plan};
use crate::store::rekey::RekeyRequest;

/// Arguments of `pmf approve`.
#[derive(Args, Debug)]
pub struct ApproveArgs {
    /// The plan to approve (or a request for a new operator key).
    pub plan: PathBuf,
    /// The authority's private key (`pmf keygen`).
    #[arg(long)]
    pub key: PathBuf,
    /// The approvals file to add the signature to (created if absent).
    #[arg(short = 'o', long = "output", default_value = "approvals.json")]
    pub output: PathBuf,
    /// Sign with a key the plan's policy does not trust for the authority:
    /// the signature lets no partner past preparation, and only endorses a
    /// change of policy for a store whose governing policy trusts the key.
    #[arg(long)]
    pub endorse: bool,
    /// Sign without asking (the summary is still printed).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Output format of the result (`json`: authority, public key, plan
    /// hash and approvals file); the summary before signing goes to stderr
    /// either way.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
}

/// Versions named in the signer's summary (the most frequent first).
const SHOWN_VERSIONS: usize = 6;

/// The fallback risks a migration plan predicts, and what they were
/// predicted from (the outcome counts its `history` names, which `pmf
/// apply` holds each risk to).
fn risk_line(plan: &crate::runtime::plan::Plan) -> String {
    use crate::store::illumination::{Named, named};
    let highest = plan
        .entries
        .iter()
        .map(|e| e.fallback_risk)
        .fold(0.0f64, f64::max);
    let likely = plan
        .entries
        .iter()
        .filter(|e| e.fallback_risk >= 0.5)
        .count();
    let from = match named(&plan.header.history) {
        Named::Nothing => "from the policy alone (the plan read no outcome counts)".to_string(),
        Named::At(0, _) => {
            "from the outcome counts of the store's table of schema 7 (not yet in its lineage)"
                .to_string()
        }
        Named::At(seq, _) => {
            format!("from the outcome counts of event {seq} of the store's `@illumination`")
        }
        Named::Unreadable(seq) => format!(
            "from the outcome counts of event {} of the store's `@illumination`",
            crate::runtime::plan_view::printable(seq)
        ),
        Named::Earlier(_) => "from outcome counts an earlier pmf read".to_string(),
    };
    format!(
        "risk      fallback risk up to {highest} ({likely} partners at 0.5 or more), predicted {from}; `pmf apply` holds every risk to what it was predicted from"
    )
}

/// What the signer is shown before signing: the plan, the policy, the
/// partners touched by type and categories, the versions they go to, and
/// the approvals it needs.
fn summary(
    loaded: &crate::runtime::plan::LoadedPlan,
    needs: &std::collections::BTreeMap<&str, usize>,
) -> String {
    use crate::runtime::plan_view::printable;
    use std::collections::BTreeMap;
    use std::fmt::Write;
    // A plan is a file anyone can edit: what it says is shown with its
    // control characters escaped, so that it cannot rewrite the summary the
    // signer reads.
    let plan = &loaded.plan;
    let mut by_change: BTreeMap<(String, String), usize> = BTreeMap::new();
    for e in &plan.entries {
        if e.migration.is_none() && e.categories.is_empty() {
            continue;
        }
        let ty = e
            .migration
            .as_deref()
            .map_or("no type".into(), |t| printable(t).into_owned());
        let cats = if e.categories.is_empty() {
            "-".to_string()
        } else {
            printable(&e.categories.join("+")).into_owned()
        };
        *by_change.entry((ty, cats)).or_default() += 1;
    }
    // Writing into a String cannot fail.
    let mut out = String::new();
    let _ = writeln!(out, "plan      {}", loaded.hash);
    let _ = writeln!(
        out,
        "policy    {} ({})",
        printable(&plan.header.policy.name),
        printable(&plan.header.policy.hash)
    );
    let _ = writeln!(
        out,
        "made at   {}, {} partners",
        printable(&plan.header.created_at),
        plan.entries.len()
    );
    if let Some(expires_at) = &plan.header.expires_at {
        let left = crate::runtime::plan::parse_rfc3339(expires_at)
            .and_then(|at| at.checked_sub(crate::runtime::plan::now_secs()))
            .map(|secs| format!(" (in {})", crate::runtime::plan::spoken_duration(secs)))
            .unwrap_or_default();
        let _ = writeln!(out, "valid to  {}{left}", printable(expires_at));
    }
    let _ = match &plan.header.store_id {
        Some(id) => writeln!(
            out,
            "store     {} (the plan applies to that store only)",
            printable(id)
        ),
        None => writeln!(
            out,
            "store     any (made against no store: the plan applies to whichever store holds the states it carries)"
        ),
    };
    if let Some(replaced) = &plan.header.replaces_policy {
        // Whoever signs it endorses the change, if the replaced policy
        // trusts their key: said before anything else the plan does.
        let _ = writeln!(
            out,
            "POLICY    this plan replaces the store's governing policy {} with {}: a signature by a key the replaced policy trusts endorses that change, which every one of its authorities must endorse",
            printable(replaced),
            printable(&plan.header.policy.hash)
        );
    }
    match plan.header.kind {
        PlanKind::Migrate => {}
        PlanKind::Rollback => {
            let _ = writeln!(
                out,
                "kind      rollback: partners return to an earlier stable version"
            );
        }
        PlanKind::Replace => {
            // What a replacement sets is whatever the file said: no check
            // of the flow ran on it, which is why every authority signs.
            let new = plan
                .entries
                .iter()
                .filter(|e| e.state.text() == "null")
                .count();
            let _ = writeln!(
                out,
                "kind      replace: partner states set as the plan says, outside the migration flow (no check of the flow ran)"
            );
            let _ = writeln!(
                out,
                "changes   {} replaced, {new} imported",
                plan.entries.len() - new
            );
            let reasons: std::collections::BTreeSet<&str> = plan
                .entries
                .iter()
                .map(|e| e.predicted.reason.as_str())
                .collect();
            for reason in reasons {
                let _ = writeln!(out, "reason    {}", printable(reason));
            }
        }
    }
    if plan.header.kind == PlanKind::Migrate && !plan.entries.is_empty() {
        let _ = writeln!(out, "{}", risk_line(plan));
    }
    if plan.header.kind != PlanKind::Replace {
        let _ = writeln!(out, "changes   type / categories: partners");
        for ((ty, cats), n) in &by_change {
            let _ = writeln!(out, "          {ty} / {cats}: {n}");
        }
    }
    // Where the partners go: what a signature lets them reach.
    let mut to: BTreeMap<String, usize> = BTreeMap::new();
    for e in plan.entries.iter().filter(|e| e.to != e.from) {
        *to.entry(
            e.to.as_deref()
                .map_or("-".into(), |v| printable(v).into_owned()),
        )
        .or_default() += 1;
    }
    if !to.is_empty() {
        let mut most: Vec<(&String, &usize)> = to.iter().collect();
        most.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let shown: Vec<String> = most
            .iter()
            .take(SHOWN_VERSIONS)
            .map(|(v, n)| format!("{v} ({n})"))
            .collect();
        let more = most.len().saturating_sub(SHOWN_VERSIONS);
        let _ = writeln!(
            out,
            "to        {}{}",
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more versions (`pmf plan show` lists them)")
            } else {
                String::new()
            }
        );
    }
    if let Some(left_out) = plan.totals.not_planned.described() {
        let _ = writeln!(out, "not planned {left_out}");
    }
    if needs.is_empty() {
        let _ = writeln!(out, "approvals none needed");
    } else {
        let list: Vec<String> = needs
            .iter()
            .map(|(a, n)| format!("{} ({n} partners)", printable(a)))
            .collect();
        let _ = writeln!(out, "approvals {}", list.join(", "));
    }
    out
}

/// How many partners of the plan wait for each authority's approval.
fn needs(loaded: &crate::runtime::plan::LoadedPlan) -> std::collections::BTreeMap<&str, usize> {
    let mut out = std::collections::BTreeMap::new();
    for a in loaded
        .plan
        .entries
        .iter()
        .flat_map(|e| &e.approvals_required)
    {
        *out.entry(a.as_str()).or_default() += 1;
    }
    out
}

/// Run `pmf approve`.
pub fn run(args: &ApproveArgs) -> Result<Exit, CliError> {
    if let Some(request) = rekey_request(&args.plan)? {
        return approve_request(args, &request);
    }
    let loaded = read_plan(&args.plan).map_err(UsageError)?;
    let (file, key) = approvals::read_key(&args.key).map_err(UsageError)?;
    super::keys::warn_if_exposed(&args.key, "as its authority");
    // An expired plan is not signed: apply would refuse it.
    if let Some(why) = loaded.plan.expiry_problem(crate::runtime::plan::now_secs()) {
        errln!("pmf: {why}; nothing was signed");
        return Ok(Exit::Failure);
    }
    // Refused before the summary when it holds another plan's approvals.
    approvals_of(&args.output, &loaded.hash)?;
    // What the signature is worth: only a key the plan's own policy trusts
    // for the authority lets partners past preparation. Any other key can
    // only endorse a change of policy (counted by a store whose governing
    // policy trusts it), and signs only when asked to.
    let policy = match policy::load_sources(&loaded.plan.header.policy_sources) {
        Ok(l) => l.policy,
        Err(f) => return f.exit(),
    };
    // The summary names the policy by the header's hash: it must be the
    // hash of the policy the plan carries (apply refuses it otherwise), or
    // the signer would read of one policy and sign a plan of another.
    if loaded.plan.header.policy.hash != policy.hash {
        errln!(
            "pmf: the plan's header names policy {} but the policy it carries is {}: the plan was edited; nothing was signed",
            crate::runtime::plan_view::printable(&loaded.plan.header.policy.hash),
            policy.hash
        );
        return Ok(Exit::Failure);
    }
    // What the summary shows comes from the plan's words: they must be
    // what its policy decides, or the signer would approve what they were
    // not shown (apply decides again and never takes them from the plan).
    let unfounded = match loaded.plan.header.kind {
        PlanKind::Migrate => crate::runtime::plan_claims::unfounded(&loaded.plan, &policy),
        PlanKind::Rollback => super::rollback::unfounded(&loaded.plan, &policy),
        PlanKind::Replace => super::replace::unfounded(&loaded.plan, &policy),
    };
    if !unfounded.is_empty() {
        errln!(
            "pmf: the plan does not say what its policy decides (it was edited, or made by another pmf); nothing was signed:"
        );
        for line in &unfounded {
            errln!("  - {line}");
        }
        return Ok(Exit::Failure);
    }
    let trust = approvals::trusted(&policy, &file.authority, &file.public_key);
    let needs = needs(&loaded);
    err!("{}", summary(&loaded, &needs));
    match (&trust, args.endorse) {
        (Ok(()), _) if loaded.plan.header.kind == PlanKind::Replace => {
            errln!(
                "signing as `{}`: this signature is one of the {} a replacement needs (every authority of the policy), for all {} partners of this plan",
                file.authority,
                needs.len(),
                loaded.plan.entries.len()
            )
        }
        (Ok(()), _) => errln!(
            "signing as `{}`: this signature lets {} partners of this plan past preparation",
            file.authority,
            needs.get(file.authority.as_str()).copied().unwrap_or(0)
        ),
        (Err(why), true) => errln!(
            "signing as `{}` to endorse a change of policy: the plan's policy does not trust this key ({why}), so this signature lets no partner past preparation; a store governed by a policy that trusts it counts it toward the change",
            file.authority
        ),
        (Err(why), false) => {
            errln!(
                "pmf: the plan's policy does not trust this key for `{}`: {why}; its signature would let no partner of this plan past preparation",
                file.authority
            );
            errln!(
                "pmf: to endorse a change of policy as an authority of the store's governing policy, pass `--endorse`; nothing was signed"
            );
            return Ok(Exit::Failure);
        }
    }
    if !confirmed(args, "plan", &file.authority)? {
        return Ok(Exit::Failure);
    }
    let approval = approvals::sign(&key, &file.authority, &loaded.hash);
    let public_key = approval.public_key.clone();
    let out = add_signature(&args.output, &loaded.hash, approval)?;
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "authority": file.authority,
            "public_key": public_key,
            "plan_hash": loaded.hash,
            "expires_at": loaded.plan.header.expires_at,
            "replaces_policy": loaded.plan.header.replaces_policy,
            "store_id": loaded.plan.header.store_id,
            "approvals_file": args.output.display().to_string(),
            "approvals": out.approvals.len(),
            "endorsement_only": trust.is_err(),
        }));
        return Ok(Exit::Success);
    }
    outln!(
        "`{}` approves plan {} → {}",
        file.authority,
        &loaded.hash[..12],
        args.output.display()
    );
    Ok(Exit::Success)
}

/// The request for a new operator key at `path`, if the file is one (its
/// first bytes say so; a plan is never read whole here).
fn rekey_request(path: &std::path::Path) -> Result<Option<RekeyRequest>, UsageError> {
    use std::io::Read;
    const LIMIT: u64 = 64 << 10;
    let cannot = |e: std::io::Error| {
        UsageError(format!(
            "cannot read `{}`: {}",
            path.display(),
            crate::syntax::diagnostics::io_reason(&e)
        ))
    };
    crate::syntax::read::refuse_device(path).map_err(cannot)?;
    let mut head = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(LIMIT)
        .read_to_end(&mut head)
        .map_err(cannot)?;
    let text = String::from_utf8_lossy(&head);
    if !text.contains(crate::store::rekey::REQUEST_FORMAT) || !text.starts_with('{') {
        return Ok(None);
    }
    match RekeyRequest::parse(&text) {
        Some(r) => Ok(Some(r)),
        // A request by its first field, whatever follows: read as `pmf
        // state rekey` reads one, which says why it is not.
        None if text
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains(crate::store::rekey::REQUEST_FORMAT)) =>
        {
            super::rekey::read_request(path)
                .map(Some)
                .map_err(|e| UsageError(format!("{}; nothing was signed", e.0)))
        }
        None => Ok(None),
    }
}

/// Sign a request for a new operator key: the summary names the store,
/// the lost key, the new one and the reason, each as the request says.
fn approve_request(args: &ApproveArgs, request: &RekeyRequest) -> Result<Exit, CliError> {
    let (file, key) = approvals::read_key(&args.key).map_err(UsageError)?;
    super::keys::warn_if_exposed(&args.key, "as its authority");
    let hash = request.hash();
    // An expired request is not signed: it could no longer be carried out.
    if let Some(why) = request.expiry_problem(crate::runtime::plan::now_secs()) {
        errln!("pmf: {why}; nothing was signed");
        return Ok(Exit::Failure);
    }
    approvals_of(&args.output, &hash)?;
    let shown = crate::runtime::plan_view::printable;
    errln!("request   a new operator key (sha256 {hash})");
    errln!("store     {}", shown(&request.store_id));
    errln!(
        "replaces  operator key {} (the key in force, lost)",
        shown(&request.from)
    );
    errln!("by        operator key {}", shown(&request.to));
    errln!(
        "once      after {} earlier replacement(s) of the store's key, and never again",
        request.successions
    );
    errln!("reason    {}", shown(&request.reason));
    errln!("valid to  {}", shown(&request.expires_at));
    errln!(
        "signing as `{}`: the store counts this signature when the governing policy trusts this key for `{}`; every authority of that policy must approve",
        file.authority,
        file.authority
    );
    if !confirmed(args, "request", &file.authority)? {
        return Ok(Exit::Failure);
    }
    let out = add_signature(
        &args.output,
        &hash,
        approvals::sign(&key, &file.authority, &hash),
    )?;
    if args.format == OutputFormat::Json {
        super::print_json(&serde_json::json!({
            "format_version": 1,
            "authority": file.authority,
            "public_key": file.public_key,
            "request_hash": hash,
            "store_id": request.store_id,
            "approvals_file": args.output.display().to_string(),
            "approvals": out.approvals.len(),
        }));
        return Ok(Exit::Success);
    }
    outln!(
        "`{}` approves the new operator key request {} → {}",
        file.authority,
        super::view::short(&hash),
        args.output.display()
    );
    Ok(Exit::Success)
}

/// Whether the signer said yes to signing the `what` as `authority`
/// (`--yes` says it beforehand; without a terminal, a usage error). A no
/// is said on stderr.
fn confirmed(args: &ApproveArgs, what: &str, authority: &str) -> Result<bool, UsageError> {
    use std::io::{BufRead, IsTerminal, Write};
    if args.yes {
        return Ok(true);
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(UsageError(
            "pmf approve asks before it signs: run it in a terminal, or pass `--yes` after reading the summary above".into(),
        ));
    }
    err!("sign this {what} as `{authority}`? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = stdin.lock().read_line(&mut answer);
    let yes = matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes");
    if !yes {
        errln!("pmf: nothing was signed");
    }
    Ok(yes)
}

/// Add `approval` of `hash` to the approvals file at `output` (replacing
/// an earlier one by the same authority and key), and the file as written.
/// Other signers may have added theirs since the file was first read
/// (while this one read the summary): it is read again and written back
/// under a lock of its directory, so that no signature replaces another's.
fn add_signature(
    output: &std::path::Path,
    hash: &str,
    approval: approvals::Approval,
) -> Result<ApprovalsFile, UsageError> {
    let _signers = lock_directory_of(output);
    let mut out = approvals_of(output, hash)?;
    out.approvals
        .retain(|a| !(a.authority == approval.authority && a.public_key == approval.public_key));
    out.approvals.push(approval);
    approvals::write_json(output, &out, false).map_err(UsageError)?;
    Ok(out)
}

/// The approvals file at `path` as it is now (empty when there is none),
/// refused when it holds approvals of another plan than `plan_hash`.
fn approvals_of(path: &std::path::Path, plan_hash: &str) -> Result<ApprovalsFile, UsageError> {
    if !path.exists() {
        return Ok(ApprovalsFile {
            format_version: crate::runtime::approvals::APPROVALS_FORMAT,
            plan_hash: plan_hash.to_string(),
            approvals: Vec::new(),
        });
    }
    let existing = approvals::read_approvals(path).map_err(UsageError)?;
    if existing.plan_hash != plan_hash {
        return Err(UsageError(format!(
            "`{}` holds approvals of another plan; write these to another file",
            path.display()
        )));
    }
    Ok(existing)
}

/// An exclusive lock of the directory `file` is in, held until dropped
/// (released when its descriptor closes): signers of one approvals file
/// read and write it one after the other. Where the directory cannot be
/// locked, none is held: the file is still read again just before it is
/// written.
fn lock_directory_of(file: &std::path::Path) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let handle = std::fs::File::open(dir).ok()?;
    // SAFETY: flock on a descriptor this function owns; no memory involved.
    let locked = unsafe { libc::flock(handle.as_raw_fd(), libc::LOCK_EX) } == 0;
    locked.then_some(handle)
}
