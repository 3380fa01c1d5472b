//! The policy a store is governed by: whoever writes a policy chooses the
//! keys it trusts, so a store pins the policy of its first plan and takes
//! another only with the approval of the governing policy's authorities.

use std::path::Path;

use crate::runtime::{apply, code, fleet, plan_args, plan_with, planned, pmf, predicted, text};

/// The fleet policy with every authority's key replaced by a key made
/// here (`evil-TSC.key`, …): what an operator who wants to approve alone
/// would write.
fn evil_policy(dir: &Path) -> String {
    let mut policy = std::fs::read_to_string(fleet("policy.pmf")).unwrap();
    for a in ["TSC", "ERC", "SCO"] {
        let key = format!("evil-{a}.key");
        let o = pmf(dir, &["keygen", "--authority", a, "-o", &key]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        let made: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&key)).unwrap()).unwrap();
        let real: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fleet(&format!("keys/{a}.key"))).unwrap(),
        )
        .unwrap();
        policy = policy.replace(
            real["public_key"].as_str().unwrap(),
            made["public_key"].as_str().unwrap(),
        );
    }
    let path = dir.join("evil.pmf");
    std::fs::write(&path, policy).unwrap();
    path.display().to_string()
}

/// Plan the store's current partners (exported) under `policy` into `out`.
fn replan(dir: &Path, policy: &str, out: &str) {
    let o = pmf(dir, &["state", "export", "--format", "ndjson"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    std::fs::write(dir.join("current.ndjson"), &o.stdout).unwrap();
    let (target, observed) = (fleet("target.json"), fleet("observed.json"));
    let o = pmf(
        dir,
        &[
            "plan",
            "--policy",
            policy,
            "--partners",
            "current.ndjson",
            "--target",
            &target,
            "--observed",
            &observed,
            "-o",
            out,
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

fn approve(dir: &Path, plan: &str, key: &str, out: &str) {
    let o = approving(dir, plan, key, out, &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

/// `pmf approve PLAN --key KEY -o OUT --yes EXTRA…` in `dir`.
fn approving(dir: &Path, plan: &str, key: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["approve", plan, "--key", key, "-o", out, "--yes"];
    args.extend_from_slice(extra);
    pmf(dir, &args)
}

/// Sign `plan` with a key its policy does not trust: an endorsement of a
/// change of policy, which `pmf approve` makes only when asked to.
fn endorse(dir: &Path, plan: &str, key: &str, out: &str) {
    let before = std::fs::read(dir.join(out)).ok();
    let o = approving(dir, plan, key, out, &[]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("the plan's policy does not trust this key")
            && err.contains("pass `--endorse`; nothing was signed"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join(out)).ok(), before, "{err}");
    let o = approving(dir, plan, key, out, &["--endorse"]);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains("to endorse a change of policy") && err.contains("lets no partner"),
        "{err}"
    );
}

fn apply_plan(dir: &Path, plan: &str, approvals: &str) -> std::process::Output {
    let observed = fleet("observed.json");
    pmf(
        dir,
        &[
            "apply",
            plan,
            "--observed",
            &observed,
            "--approvals",
            approvals,
        ],
    )
}

fn verify(dir: &Path) -> std::process::Output {
    pmf(dir, &["lineage", "verify"])
}

#[test]
fn a_store_takes_another_policy_only_with_its_governing_authorities_approval() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    planned(dir);
    let o = apply(dir, &["--approvals", "approvals.json"]);
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let o = verify(dir);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));

    // Unchanged partners planned again under the same policy: nothing to
    // do, nothing recorded, and the store still verifies.
    let policy = fleet("policy.pmf");
    replan(dir, &policy, "same.json");
    approve(dir, "same.json", "TSC.key", "same-approvals.json");
    let o = apply_plan(dir, "same.json", "same-approvals.json");
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let o = verify(dir);
    assert_eq!(code(&o), 0, "an honest re-run: {}", text(&o.stdout));

    // The operator's own policy, signed by the operator's own keys: refused.
    let evil = evil_policy(dir);
    replan(dir, &evil, "evil-plan.json");
    for a in ["TSC", "ERC", "SCO"] {
        approve(
            dir,
            "evil-plan.json",
            &format!("evil-{a}.key"),
            "evil-approvals.json",
        );
    }
    let o = apply_plan(dir, "evil-plan.json", "evil-approvals.json");
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains("is not the one this store is governed by")
            && err.contains("missing: `ERC`, `SCO`, `TSC`"),
        "{err}"
    );

    // A review decision by a key only the operator's policy trusts: refused.
    let o = pmf(
        dir,
        &[
            "review",
            "promote",
            "p-021",
            "--key",
            "evil-TSC.key",
            "--policy",
            &evil,
            "--reason",
            "mine",
        ],
    );
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("is not one it trusts for `TSC`"), "{err}");

    // Two of the three governing authorities endorse the change: still
    // refused, naming the third.
    for a in ["TSC", "ERC"] {
        endorse(
            dir,
            "evil-plan.json",
            &format!("{a}.key"),
            "evil-approvals.json",
        );
    }
    let o = apply_plan(dir, "evil-plan.json", "evil-approvals.json");
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(err.contains("missing: `SCO`"), "{err}");

    // All three: the change is applied and recorded, and verifies.
    endorse(dir, "evil-plan.json", "SCO.key", "evil-approvals.json");
    let o = apply_plan(dir, "evil-plan.json", "evil-approvals.json");
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let o = verify(dir);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    let o = pmf(dir, &["lineage", "show", "@governance", "--format", "json"]);
    let shown = text(&o.stdout);
    assert_eq!(shown.matches("\"governed\"").count(), 2, "{shown}");
    // `pmf status` names the policy that governs now and the one that did
    // first (the root an auditor pins).
    let plan_policy = |plan: &str| {
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(plan)).unwrap()).unwrap();
        doc["header"]["policy"]["hash"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let o = pmf(dir, &["status", "--format", "json"]);
    let status: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(status["root_policy"], plan_policy("plan.json"));
    assert_eq!(status["governing_policy"], plan_policy("evil-plan.json"));
    let o = pmf(dir, &["status"]);
    assert!(
        text(&o.stdout).contains(&format!(
            "policy    {} governs; {} governed first",
            &plan_policy("evil-plan.json")[..12],
            &plan_policy("plan.json")[..12]
        )),
        "{}",
        text(&o.stdout)
    );

    // From now on the old keys are the ones refused.
    replan(dir, &policy, "back.json");
    approve(dir, "back.json", "TSC.key", "back-approvals.json");
    let o = apply_plan(dir, "back.json", "back-approvals.json");
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
}

#[test]
fn approvals_files_of_another_format_or_with_unknown_fields_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    planned(dir);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("approvals.json")).unwrap())
            .unwrap();
    let mut newer = file.clone();
    newer["format_version"] = 99.into();
    std::fs::write(dir.join("newer.json"), newer.to_string()).unwrap();
    let mut extra = file.clone();
    extra["approvals"][0]["role"] = "root".into();
    std::fs::write(dir.join("extra.json"), extra.to_string()).unwrap();
    // Fields printed and recorded are what `pmf approve` writes, or refused:
    // an authority that would write to the reader's terminal, a key or a
    // signature of another length.
    let mut escaping = file.clone();
    escaping["approvals"][1]["authority"] = "T\u{1b}[2JSC".into();
    std::fs::write(dir.join("escaping.json"), escaping.to_string()).unwrap();
    let mut short = file.clone();
    short["approvals"][0]["signature"] = "ab".into();
    std::fs::write(dir.join("short.json"), short.to_string()).unwrap();
    for (name, says) in [
        ("newer.json", "of format 99"),
        ("extra.json", "unknown field `role`"),
        (
            "escaping.json",
            "approval 2: the authority \"T\\u{1b}[2JSC\" is not a name the policy language writes",
        ),
        (
            "short.json",
            "approval 1: its signature is not 64 bytes in hex",
        ),
    ] {
        let o = apply(dir, &["--approvals", name]);
        let err = text(&o.stderr);
        assert_eq!(code(&o), 2, "{name}: {err}");
        assert!(err.contains(says), "{name}: {err}");
        assert!(!err.contains('\u{1b}'), "{name}: {err}");
        assert!(
            !dir.join(".pmf/state.db").exists(),
            "{name}: nothing was applied"
        );
    }
}

/// Signers who approve one plan at the same time, into one approvals file,
/// each keep their signature: the file is read again and written back under
/// a lock, never from what it held when a signer started.
#[test]
fn approvals_signed_at_once_are_all_kept() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    for round in 0..4 {
        let out = format!("approvals-{round}.json");
        let signers: Vec<_> = ["TSC", "ERC", "SCO"]
            .iter()
            .map(|authority| {
                let key = fleet(&format!("keys/{authority}.key"));
                std::process::Command::new(env!("CARGO_BIN_EXE_pmf"))
                    .args(["approve", "plan.json", "--key", &key, "-o", &out, "--yes"])
                    .current_dir(dir.path())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .expect("run pmf")
            })
            .collect();
        for signer in signers {
            let o = signer.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        }
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(&out)).unwrap()).unwrap();
        let mut authorities: Vec<&str> = file["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["authority"].as_str().unwrap())
            .collect();
        authorities.sort_unstable();
        assert_eq!(authorities, ["ERC", "SCO", "TSC"], "round {round}");
    }
}

/// What a plan says reaches the signer escaped (an edited plan cannot
/// rewrite the summary they read, or the refusal of its words), and a
/// plan whose header names another policy than the one it carries is not
/// signed.
#[test]
fn the_signer_reads_the_plan_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    let plan = crate::runtime::plan_doc(dir.path());
    let key = fleet("keys/TSC.key");
    let mut edited = plan.clone();
    edited["header"]["policy"]["name"] = "fleet\u{1b}]0;hidden\u{7}".into();
    std::fs::write(dir.path().join("edited.json"), edited.to_string()).unwrap();
    let o = approving(dir.path(), "edited.json", &key, "a.json", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "raw escapes reached the signer: {err:?}"
    );
    assert!(err.contains("fleet\\u{001b}]0;hidden"), "{err}");
    // An entry's words that are not its policy's are refused, as escaped.
    edited["entries"][3]["type"] = "forced\u{1b}[8m".into();
    edited["entries"][3]["to"] = "9.9.9\u{1b}[8m".into();
    std::fs::write(dir.path().join("edited.json"), edited.to_string()).unwrap();
    let o = approving(dir.path(), "edited.json", &key, "e.json", &[]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        !err.contains('\u{1b}'),
        "raw escapes reached the signer: {err:?}"
    );
    assert!(
        err.contains("the plan says to 9.9.9\\u{001b}[8m, type forced\\u{001b}[8m; its policy decides to 1.6.0, type soft"),
        "{err}"
    );
    assert!(!dir.path().join("e.json").exists());
    // The versions the partners go to, the most frequent first; the key
    // (a checkout's copy, readable by anyone) is signed with, and named as
    // exposed, as it is not once only its owner may read it.
    use std::os::unix::fs::PermissionsExt;
    let copy = dir.path().join("TSC-copy.key");
    std::fs::copy(&key, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key = copy.to_str().unwrap().to_string();
    let o = approving(dir.path(), "plan.json", &key, "c.json", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("can be read by others than its owner (mode 644)"),
        "{}",
        text(&o.stderr)
    );
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = approving(dir.path(), "plan.json", &key, "d.json", &[]);
    assert!(!text(&o.stderr).contains("warning"), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("\nto        1.6.0 (24), 2.0.0 (9), 1.9.0 (1), 4.1.0 (1)\n"),
        "{}",
        text(&o.stderr)
    );
    let mut other = plan.clone();
    other["header"]["policy"]["hash"] = "0".repeat(64).into();
    std::fs::write(dir.path().join("other.json"), other.to_string()).unwrap();
    let o = approving(dir.path(), "other.json", &key, "b.json", &[]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("the plan was edited; nothing was signed"));
    assert!(!dir.path().join("b.json").exists());
}

/// A plan under another policy than the store's, signed by the very keys
/// the store trusts, replaces the store's policy: each signer is told so
/// before signing (`pmf approve`), and a plan that does not say so (made
/// against no store, or another one) is refused however it was signed.
#[test]
fn a_change_of_policy_is_told_to_its_signers_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    planned(d);
    apply(d, &["--approvals", "approvals.json"]);
    let governing = |d: &Path| {
        let o = pmf(d, &["status", "--format", "json"]);
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        s["governing_policy"].as_str().unwrap().to_string()
    };
    let before = governing(d);
    // The same keys, a relaxed ceiling: nothing a glance at who signs shows.
    let relaxed = std::fs::read_to_string(fleet("policy.pmf"))
        .unwrap()
        .replace("override ceiling power <= 7", "override ceiling power <= 9");
    std::fs::create_dir(d.join("v2")).unwrap();
    std::fs::write(d.join("v2/policy.pmf"), relaxed).unwrap();
    let o = pmf(d, &["state", "export", "--format", "ndjson"]);
    std::fs::write(d.join("current.ndjson"), &o.stdout).unwrap();
    let plan = |store: &str, out: &str| {
        let target = fleet("target.json");
        pmf(
            d,
            &[
                "plan",
                "--policy",
                "v2/policy.pmf",
                "--partners",
                "current.ndjson",
                "--target",
                &target,
                "--store",
                store,
                "-o",
                out,
            ],
        )
    };

    // Made against no store: its signers cannot be told, and apply refuses it.
    let o = plan("elsewhere.db", "unsaid.json");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("replaces the policy"));
    for a in ["TSC", "ERC", "SCO"] {
        let o = approving(d, "unsaid.json", &format!("{a}.key"), "unsaid-ok.json", &[]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        assert!(!text(&o.stderr).contains("POLICY"), "{}", text(&o.stderr));
    }
    let o = pmf(
        d,
        &["apply", "unsaid.json", "--approvals", "unsaid-ok.json"],
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("but the plan does not say so to its signers (it was made against no store governed by another policy)"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(governing(d), before, "the policy did not change");
    let refused = crate::runtime::refusals(d);
    assert!(
        refused
            .last()
            .is_some_and(|r| r.contains("does not say so to its signers")),
        "{refused:?}"
    );

    // Made against the store: the operator and every signer are told.
    let o = plan(".pmf/state.db", "said.json");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let short = |h: &str| h[..12].to_string();
    assert!(
        text(&o.stderr).contains(&format!(
            "this plan replaces the policy that governs `.pmf/state.db` ({} → ",
            short(&before)
        )),
        "{}",
        text(&o.stderr)
    );
    let shown = pmf(d, &["plan", "show", "said.json"]);
    assert!(
        text(&shown.stdout).contains(&format!(
            "(replaces the store's governing policy {})",
            short(&before)
        )),
        "{}",
        text(&shown.stdout)
    );
    for a in ["TSC", "ERC", "SCO"] {
        let o = approving(d, "said.json", &format!("{a}.key"), "said-ok.json", &[]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(&format!(
                "POLICY    this plan replaces the store's governing policy {before} with "
            )),
            "{a}: {}",
            text(&o.stderr)
        );
    }
    let o = pmf(d, &["apply", "said.json", "--approvals", "said-ok.json"]);
    assert!(matches!(code(&o), 0 | 3), "{}", text(&o.stderr));
    let after = governing(d);
    assert_ne!(after, before, "the announced change is made");
    assert_eq!(code(&verify(d)), 0);

    // `status --policy` says where a checkout of the policy stands: the
    // relaxed one governs now, the fleet's governed before, and the
    // operator's own never did. Both texts are kept by the store.
    let standing = |policy: &str| {
        let o = pmf(d, &["status", "--policy", policy, "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        (
            s["given_policy"]["hash"].as_str().unwrap().to_string(),
            s["given_policy"]["standing"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(standing("v2/policy.pmf"), (after.clone(), "governs".into()));
    assert_eq!(
        standing(&fleet("policy.pmf")),
        (before.clone(), "governed_before".into())
    );
    let evil = evil_policy(d);
    assert_eq!(standing(&evil).1, "never_governed");
    let o = pmf(d, &["status", "--policy", &fleet("policy.pmf")]);
    assert!(
        text(&o.stdout).contains(&format!(
            "given     {} governed the store before, and no longer does: {} governs it now",
            short(&before),
            short(&after)
        )),
        "{}",
        text(&o.stdout)
    );
    for hash in [&before, &after] {
        let o = pmf(d, &["lineage", "policy", hash]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    }
}

/// An error is never silenced: a `// pmf-allow` or a `pmf.toml` level
/// naming one is PMF906, and the error is still reported. Before, a
/// suppression of PMF803 above `override ceiling power <= "7"` (a string:
/// no order with a number) made `pmf check` report no problems and
/// `pmf plan` plan every partner to power 9 under a fleet whose reviewers
/// read "at most 7"; a `pmf.toml` turning PMF803 off made `pmf check`,
/// the CI gate, pass a policy no plan could be made from.
#[test]
fn errors_are_never_silenced() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let fleet_policy = std::fs::read_to_string(fleet("policy.pmf")).unwrap();
    let relaxed = fleet_policy.replace(
        "override ceiling power <= 7",
        "// pmf-allow PMF803: the dashboard reads it as text\noverride ceiling power <= \"7\"",
    );
    assert_ne!(relaxed, fleet_policy);
    std::fs::write(dir.join("policy.pmf"), &relaxed).unwrap();
    std::fs::write(
        dir.join("power9.json"),
        r#"{"version": "1.6.0", "power": 9}"#,
    )
    .unwrap();
    let diagnostics = |o: &std::process::Output| -> Vec<(String, String, u64)> {
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        doc["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                let file = d["file"].as_str().unwrap();
                let file = Path::new(file).file_name().unwrap().to_string_lossy();
                (
                    d["code"].as_str().unwrap().to_string(),
                    file.to_string(),
                    d["line"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let line = relaxed
        .lines()
        .position(|l| l.starts_with("// pmf-allow PMF803"))
        .unwrap() as u64
        + 1;

    // The suppression: PMF906 on it, PMF803 on the ceiling, exit 1.
    let o = pmf(dir, &["check", "--format", "json", "policy.pmf"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert_eq!(
        diagnostics(&o),
        [
            ("PMF906".into(), "policy.pmf".into(), line),
            ("PMF803".into(), "policy.pmf".into(), line + 1),
        ]
    );
    // No plan is made from it.
    let partners = fleet("partners.json");
    let o = pmf(
        dir,
        &plan_args("policy.pmf", &partners, "power9.json", "plan.json", &[]),
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("the policy has errors; nothing was done"));
    assert!(!dir.join("plan.json").exists());

    // The same error turned off, or made a warning, in pmf.toml: PMF906
    // at the line of pmf.toml, and both errors still reported.
    let unsuppressed = relaxed.replace("// pmf-allow PMF803: the dashboard reads it as text\n", "");
    std::fs::write(dir.join("policy.pmf"), &unsuppressed).unwrap();
    for level in ["off", "warning"] {
        std::fs::write(
            dir.join("pmf.toml"),
            format!("[lints]\nPMF902 = \"off\"\nPMF803 = \"{level}\"\n"),
        )
        .unwrap();
        let o = pmf(dir, &["check", "--format", "json", "policy.pmf"]);
        assert_eq!(code(&o), 1, "{level}: {}", text(&o.stdout));
        assert_eq!(
            diagnostics(&o),
            [
                ("PMF906".into(), "pmf.toml".into(), 3),
                ("PMF803".into(), "policy.pmf".into(), line),
            ],
            "{level}"
        );
    }
    // Kept an error: accepted, and the policy's error reported as one.
    std::fs::write(dir.join("pmf.toml"), "[lints]\nPMF803 = \"error\"\n").unwrap();
    let o = pmf(dir, &["check", "--format", "json", "policy.pmf"]);
    assert_eq!(code(&o), 1);
    assert_eq!(
        diagnostics(&o),
        [("PMF803".into(), "policy.pmf".into(), line)]
    );
    // The fleet's own policy, with its real ceiling, restricts them all.
    let o = plan_with(dir, &partners, "power9.json", "plan.json", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let actions = predicted(dir);
    assert!(!actions.is_empty());
    assert!(actions.iter().all(|(a, _)| a == "restrict"), "{actions:?}");
}
