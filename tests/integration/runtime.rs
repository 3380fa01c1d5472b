//! Runtime scenarios on the bundled fleet: plan, apply, approvals, stale
//! plans, locks, tampering, crash and resume, rollback.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const FLEET: &str = "examples/fleet";

pub(crate) fn pmf(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmf"))
        .args(args)
        .current_dir(dir)
        .env_remove("NO_COLOR")
        .output()
        .expect("run pmf")
}

pub(crate) fn fleet(file: &str) -> String {
    std::path::absolute(Path::new(FLEET).join(file))
        .unwrap()
        .display()
        .to_string()
}

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

/// Assert that `o` exited with `expected` and said `needle` on stderr.
pub(crate) fn exits_saying(o: &Output, expected: i32, needle: &str) {
    let err = text(&o.stderr);
    assert_eq!(code(o), expected, "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
}

pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Plan the fleet in `dir` and have TSC and ERC approve it.
pub(crate) fn planned(dir: &Path) {
    let o = pmf(
        dir,
        &[
            "plan",
            "--policy",
            &fleet("policy.pmf"),
            "--partners",
            &fleet("partners.json"),
            "--target",
            &fleet("target.json"),
            "--observed",
            &fleet("observed.json"),
            "-o",
            "plan.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    // The fleet policy trusts its demo keys (`key TSC "ed25519:…"`).
    for a in ["TSC", "ERC", "SCO"] {
        std::fs::copy(
            fleet(&format!("keys/{a}.key")),
            dir.join(format!("{a}.key")),
        )
        .unwrap();
    }
    for a in ["TSC", "ERC"] {
        assert_eq!(
            code(&pmf(
                dir,
                &[
                    "approve",
                    "plan.json",
                    "--key",
                    &format!("{a}.key"),
                    "--yes"
                ]
            )),
            0
        );
    }
}

/// Plan the fleet's policy and target over a partners file in `dir`.
fn plan_local(dir: &Path, partners: &str) -> Output {
    plan_into(dir, partners, "plan.json", &[])
}

/// Plan the fleet's policy and target over `partners` into `out`.
fn plan_into(dir: &Path, partners: &str, out: &str, extra: &[&str]) -> Output {
    plan_with(dir, partners, &fleet("target.json"), out, extra)
}

/// The arguments of `pmf plan` of the fleet's policy over `partners` with
/// `target` into `out`, then `extra`.
pub(crate) fn plan_args<'a>(
    policy: &'a str,
    partners: &'a str,
    target: &'a str,
    out: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "plan",
        "--policy",
        policy,
        "--partners",
        partners,
        "--target",
        target,
        "-o",
        out,
    ];
    args.extend_from_slice(extra);
    args
}

/// Plan the fleet's policy over `partners` with `target` into `out`.
pub(crate) fn plan_with(
    dir: &Path,
    partners: &str,
    target: &str,
    out: &str,
    extra: &[&str],
) -> Output {
    let policy = fleet("policy.pmf");
    pmf(dir, &plan_args(&policy, partners, target, out, extra))
}

/// `pmf ARGS` in `dir` with `input` written to its stdin through a real
/// pipe (not a file redirected), stdout and stderr kept.
pub(crate) fn pmf_piped(dir: &Path, args: &[&str], input: Vec<u8>) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmf"))
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pmf");
    let mut stdin = child.stdin.take().expect("stdin");
    // pmf may stop reading early (a bad record): what it did not read is
    // not the test's concern.
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let o = child.wait_with_output().expect("run pmf");
    feeder.join().expect("feeder");
    o
}

pub(crate) fn apply(dir: &Path, extra: &[&str]) -> Output {
    let observed = fleet("observed.json");
    let mut args = vec![
        "apply",
        "plan.json",
        "--observed",
        observed.as_str(),
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    pmf(dir, &args)
}

/// Roll `partner` back through the governed flow: plan it, have every
/// authority of the fleet sign it, apply it. Returns the apply's output
/// (or the planning's, when planning was refused).
pub(crate) fn rollback(dir: &Path, partner: &str, extra: &[&str]) -> Output {
    let policy = fleet("policy.pmf");
    let mut args = vec![
        "rollback",
        partner,
        "--policy",
        policy.as_str(),
        "-o",
        "rollback.json",
    ];
    args.extend_from_slice(extra);
    let planned = pmf(dir, &args);
    if code(&planned) != 0 {
        return planned;
    }
    let _ = std::fs::remove_file(dir.join("rollback-approvals.json"));
    for a in ["TSC", "ERC", "SCO"] {
        let o = pmf(
            dir,
            &[
                "approve",
                "rollback.json",
                "--key",
                &format!("{a}.key"),
                "-o",
                "rollback-approvals.json",
                "--yes",
            ],
        );
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    }
    pmf(
        dir,
        &[
            "apply",
            "rollback.json",
            "--approvals",
            "rollback-approvals.json",
        ],
    )
}

/// Partner id → outcome, from apply's NDJSON.
pub(crate) fn outcomes(o: &Output) -> BTreeMap<String, String> {
    text(&o.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "partner")
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

pub(crate) fn db(dir: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(".pmf/state.db")).expect("open store")
}

/// The first column of every row `sql` selects on `c`.
pub(crate) fn column<T: rusqlite::types::FromSql>(c: &rusqlite::Connection, sql: &str) -> Vec<T> {
    c.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every lineage event of the store at `store`, read back by pmf (events
/// are stored in a compact binary encoding): (global position, event).
pub(crate) fn events_at(store: &Path) -> Vec<(i64, pmf::store::lineage::Event)> {
    pmf::store::Store::open_existing(store)
        .expect("open store")
        .lineage(None)
        .expect("lineage")
        .into_iter()
        .map(|e| (e.global_seq, e.event))
        .collect()
}

/// Partners with more than one event `counted` in the store at `store`.
pub(crate) fn partners_with_several(
    store: &Path,
    counted: impl Fn(&pmf::store::lineage::Event) -> bool,
) -> Vec<String> {
    let mut n: BTreeMap<String, usize> = BTreeMap::new();
    for (_, e) in events_at(store) {
        if counted(&e) {
            *n.entry(e.partner).or_default() += 1;
        }
    }
    n.into_iter()
        .filter(|(_, c)| *c > 1)
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn the_fleet_hits_every_outcome() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    let plan = plan_doc(dir.path());
    assert_eq!(plan["format_version"], 5);
    let totals = &plan["totals"];
    for t in ["soft", "guided", "forced"] {
        assert!(
            totals["by_type"][t].as_u64().unwrap() > 0,
            "no {t} migration: {totals}"
        );
    }
    for b in ["stable", "reliable", "vulnerable", "at_risk", "unstable"] {
        assert!(
            totals["by_band"][b].as_u64().unwrap() > 0,
            "no {b} band: {totals}"
        );
    }
    for a in [
        "proceed", "monitor", "review", "fallback", "restrict", "throttle",
    ] {
        assert!(
            totals["by_action"][a].as_u64().unwrap() > 0,
            "no {a} action: {totals}"
        );
    }
    let o = apply(dir.path(), &["--approvals", "approvals.json"]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    insta::with_settings!({snapshot_path => "../snapshots/runtime", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_json_snapshot!("fleet_outcomes", outcomes(&o));
    });
    let v = pmf(dir.path(), &["lineage", "verify"]);
    assert_eq!(code(&v), 0, "{}", text(&v.stdout));
    // Every validation outcome appears in the lineage.
    let events = text(&pmf(dir.path(), &["lineage", "show", "--format", "json"]).stdout);
    for outcome in ["\"passed\"", "\"failed\"", "\"inconclusive\"", "\"error\""] {
        assert!(
            events.contains(&format!("\"outcome\": {outcome}")),
            "no validation {outcome}"
        );
    }
}

#[test]
fn a_rerun_resumes_and_never_applies_twice() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    let first = apply(dir.path(), &["--approvals", "approvals.json"]);
    let events_after_first: i64 = db(dir.path())
        .query_row("SELECT COUNT(*) FROM lineage", [], |r| r.get(0))
        .unwrap();
    let second = apply(dir.path(), &["--approvals", "approvals.json"]);
    assert_eq!(outcomes(&first), outcomes(&second));
    let paused: i64 = db(dir.path())
        .query_row(
            "SELECT COUNT(*) FROM progress WHERE outcome IN ('awaiting_review', 'throttled')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let events_after_second: i64 = db(dir.path())
        .query_row("SELECT COUNT(*) FROM lineage", [], |r| r.get(0))
        .unwrap();
    // Nothing changed for the paused partners: nobody is walked again, and
    // the run says what is still pending and why.
    assert!(paused > 0);
    assert_eq!(events_after_second, events_after_first);
    let pending: Vec<serde_json::Value> = text(&second.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "partner" && v["pending"].is_string())
        .collect();
    assert_eq!(pending.len() as i64, paused, "{}", text(&second.stdout));
    assert!(
        pending
            .iter()
            .any(|v| v["pending"].as_str().unwrap().contains("SCO")),
        "{pending:?}"
    );
    // A new approval is what the partners waiting for SCO waited for: they
    // (and only they) are walked again.
    assert_eq!(
        code(&pmf(
            dir.path(),
            &["approve", "plan.json", "--key", "SCO.key", "--yes"]
        )),
        0
    );
    let third = apply(dir.path(), &["--approvals", "approvals.json"]);
    let walked: Vec<String> = text(&third.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "partner" && v["skipped"] == false)
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert!(!walked.is_empty(), "{}", text(&third.stdout));
    for id in &walked {
        assert_ne!(outcomes(&third)[id], "unchanged");
    }
    assert!(walked.len() < pending.len(), "{walked:?}");
    let completed_twice = partners_with_several(&dir.path().join(".pmf/state.db"), |e| {
        e.kind == pmf::store::lineage::EventKind::Completed
    });
    assert_eq!(completed_twice, Vec::<String>::new());
    assert_eq!(code(&pmf(dir.path(), &["lineage", "verify"])), 0);
}

#[test]
fn missing_and_invalid_approvals() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    // Without approvals, guided migrations wait for review.
    let o = apply(dir.path(), &[]);
    let out = outcomes(&o);
    assert_eq!(out["p-010"], "awaiting_review");
    assert!(text(&o.stdout).contains("approvals missing: TSC"));

    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("approvals.json")).unwrap())
            .unwrap();
    let write = |name: &str, v: &serde_json::Value| {
        std::fs::write(dir.path().join(name), v.to_string()).unwrap()
    };
    let mut forged = good.clone();
    let sig = forged["approvals"][0]["signature"]
        .as_str()
        .unwrap()
        .to_string();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    forged["approvals"][0]["signature"] = flipped.into();
    write("forged.json", &forged);
    let o = pmf(
        dir.path(),
        &["apply", "plan.json", "--approvals", "forged.json"],
    );
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("forged"), "{}", text(&o.stderr));

    let mut wrong = good.clone();
    wrong["approvals"][1]["authority"] = "TSC".into(); // ERC's key claiming TSC
    write("wrong.json", &wrong);
    let o = pmf(
        dir.path(),
        &["apply", "plan.json", "--approvals", "wrong.json"],
    );
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("lists its key for `ERC`"),
        "{}",
        text(&o.stderr)
    );

    // A key the policy does not list (made with keygen, never declared)
    // approves nothing, whoever runs apply; so does an authority the policy
    // does not name.
    let o = pmf(
        dir.path(),
        &["keygen", "--authority", "SCO", "-o", "mallory.key"],
    );
    assert_eq!(code(&o), 0);
    assert!(
        text(&o.stdout).contains("key SCO \"ed25519:"),
        "keygen prints the policy line: {}",
        text(&o.stdout)
    );
    assert!(!dir.path().join(".pmf/keyring.json").exists());
    // `pmf approve` says what such a signature is worth and makes none
    // unless asked for an endorsement, which lets no partner past either.
    let mallory = [
        "approve",
        "plan.json",
        "--key",
        "mallory.key",
        "-o",
        "mallory.json",
        "--yes",
    ];
    let o = pmf(dir.path(), &mallory);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(
            "the plan's policy does not trust this key for `SCO`: its key is not one the policy trusts"
        ),
        "{}",
        text(&o.stderr)
    );
    assert!(!dir.path().join("mallory.json").exists());
    let o = pmf(dir.path(), &[&mallory[..], &["--endorse"]].concat());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = pmf(
        dir.path(),
        &["apply", "plan.json", "--approvals", "mallory.json"],
    );
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("not one the policy trusts"),
        "{}",
        text(&o.stderr)
    );
    let o = pmf(
        dir.path(),
        &["keygen", "--authority", "ROOT", "-o", "root.key"],
    );
    assert_eq!(code(&o), 0);
    pmf(
        dir.path(),
        &[
            "approve",
            "plan.json",
            "--key",
            "root.key",
            "-o",
            "root.json",
            "--yes",
            "--endorse",
        ],
    );
    let o = pmf(
        dir.path(),
        &["apply", "plan.json", "--approvals", "root.json"],
    );
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("names no such authority"),
        "{}",
        text(&o.stderr)
    );
    // The approver is shown what they sign, and asked.
    let o = pmf(
        dir.path(),
        &["approve", "plan.json", "--key", "SCO.key", "-o", "x.json"],
    );
    assert_eq!(code(&o), 2, "no terminal and no --yes: nothing signed");
    assert!(!dir.path().join("x.json").exists());
    let shown = text(&o.stderr);
    for part in ["plan ", "policy    fleet", "guided / ", "SCO ("] {
        assert!(shown.contains(part), "`{part}` not in:\n{shown}");
    }
}

/// The hash `pmf plan` reports, which approvals sign, is the BLAKE3 of
/// the plan file's bytes (what `b3sum plan.json` prints).
#[test]
fn the_plan_hash_is_the_blake3_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let o = plan_into(
        dir.path(),
        &fleet("partners.json"),
        "plan.json",
        &["--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let summary: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    let bytes = std::fs::read(dir.path().join("plan.json")).unwrap();
    assert_eq!(
        summary["plan_hash"].as_str(),
        Some(blake3::hash(&bytes).to_hex().as_str())
    );
}

/// Output that is not a regular file (`-o /dev/null`, a named pipe) is
/// written in place: the plan is not written beside it and renamed over it,
/// which would replace the device or the pipe.
#[test]
fn plans_go_into_pipes_and_devices_without_replacing_them() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("plan.fifo");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let o = plan_into(dir.path(), &fleet("partners.json"), "plan.fifo", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let plan: serde_json::Value = serde_json::from_str(&reader.join().unwrap()).unwrap();
    assert_eq!(plan["format_version"], 5);
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    // Nothing was left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    // A pipe cannot be written twice: the partner file was hashed first,
    // and the header binds it all the same.
    let partners = std::fs::read(fleet("partners.json")).unwrap();
    let digest = blake3::hash(&partners).to_hex().to_string();
    assert_eq!(plan["header"]["partners"]["blake3"], digest.as_str());

    // Into a file, partners from a pipe are bound too: by the digest of
    // the bytes piped, written into the header once they are all read.
    let policy = fleet("policy.pmf");
    let target = fleet("target.json");
    let args = plan_args(&policy, "/dev/stdin", &target, "piped.json", &[]);
    let o = pmf_piped(dir.path(), &args, partners.clone());
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let bytes = std::fs::read(dir.path().join("piped.json")).unwrap();
    let piped: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(piped["header"]["partners"]["blake3"], digest.as_str());
    assert_eq!(piped["entries"], plan["entries"]);
    // The plan hash is of the bytes as they ended up.
    let o = pmf(
        dir.path(),
        &["plan", "show", "piped.json", "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        shown["plan"]["hash"],
        blake3::hash(&bytes).to_hex().as_str()
    );
}

/// A plan of format 3 (made by the pmf before format 4 dropped the
/// entries' `state_digest`) still applies, and its digests still bind the
/// states it carries: one that disagrees is a stale plan.
#[test]
fn plans_of_format_3_still_apply_and_their_digests_still_bind() {
    let dir = tempfile::tempdir().unwrap();
    let plan = std::fs::read_to_string("tests/fixtures/store-v3/plan.json").unwrap();
    assert!(plan.starts_with("{\"format_version\":3,"));
    let digest =
        "\"state_digest\":\"e117f741001eb7897a082b695175cdc66da1a39213a2a5bf9932d4f24235da42\"";
    assert!(plan.contains(digest), "the fixture's digest of p-001");
    let other = format!("\"state_digest\":\"{}\"", "0".repeat(64));
    std::fs::write(
        dir.path().join("edited.json"),
        plan.replacen(digest, &other, 1),
    )
    .unwrap();
    let o = pmf(dir.path(), &["apply", "edited.json"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("partner `p-001` changed since planning"),
        "{err}"
    );
    assert_eq!(err.matches("changed since planning").count(), 1, "{err}");
    assert!(!dir.path().join(".pmf/state.db").exists() || lineage_rows(dir.path()) == 0);

    std::fs::write(dir.path().join("plan.json"), &plan).unwrap();
    let o = pmf(dir.path(), &["apply", "plan.json", "--format", "json"]);
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let partners = text(&o.stdout)
        .lines()
        .filter(|l| l.starts_with("{\"event\":\"partner\""))
        .count();
    assert_eq!(partners, 36, "every partner of the plan is applied");
    let o = pmf(dir.path(), &["lineage", "verify"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
}

/// The lineage rows of the store in `dir` that record what was applied
/// (not the plans refused: see [`refusals`]).
pub(crate) fn lineage_rows(dir: &Path) -> i64 {
    db(dir)
        .query_row(
            "SELECT COUNT(*) FROM lineage WHERE partner_id != '@refused'",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

/// Why `pmf apply` refused plans for the store in `dir`, as its lineage
/// records (the chain `@refused`), oldest first.
pub(crate) fn refusals(dir: &Path) -> Vec<String> {
    let store = dir.join(".pmf/state.db");
    if !store.exists() {
        return Vec::new();
    }
    events_at(&store)
        .into_iter()
        .filter(|(_, e)| e.partner == "@refused")
        .map(|(_, e)| {
            assert_eq!(e.kind, pmf::store::lineage::EventKind::Refused);
            e.detail.unwrap_or_default()
        })
        .collect()
}

#[test]
fn stale_plans_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let partners = dir.path().join("partners.json");
    std::fs::copy(fleet("partners.json"), &partners).unwrap();
    let o = plan_local(dir.path(), "partners.json");
    assert_eq!(code(&o), 0);
    let changed =
        std::fs::read_to_string(&partners)
            .unwrap()
            .replacen("\"power\": 5", "\"power\": 6", 1);
    std::fs::write(&partners, changed).unwrap();
    // The plan carries the states it was made from: a changed file does not
    // matter, a changed store does.
    let o = pmf(
        dir.path(),
        &[
            "state",
            "import",
            "partners.json",
            "--policy",
            &fleet("policy.pmf"),
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let events_before = lineage_rows(dir.path());
    let o = pmf(dir.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("partner `p-001` changed since planning"),
        "{}",
        text(&o.stderr)
    );
    // Only p-001: every other stored state is the one the plan carries.
    assert_eq!(
        text(&o.stderr).matches("changed since planning").count(),
        1,
        "{}",
        text(&o.stderr)
    );
    assert_eq!(
        lineage_rows(dir.path()),
        events_before,
        "nothing was applied"
    );
    // The attempt is recorded, for an auditor, with why it was refused.
    assert!(
        text(&o.stderr).contains("the refusal is recorded in the store's lineage"),
        "{}",
        text(&o.stderr)
    );
    let refused = refusals(dir.path());
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].starts_with("the plan is stale: partner `p-001` changed since planning"),
        "{refused:?}"
    );
    let o = pmf(dir.path(), &["lineage", "verify"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));

    let policy = dir.path().join("policy.pmf");
    let text_policy = std::fs::read_to_string(fleet("policy.pmf"))
        .unwrap()
        .replace("override ceiling power <= 7", "override ceiling power <= 8");
    std::fs::write(&policy, text_policy).unwrap();
    let o = pmf(
        dir.path(),
        &["apply", "plan.json", "--policy", "policy.pmf"],
    );
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("the policy changed since planning"),
        "{}",
        text(&o.stderr)
    );
    let refused = refusals(dir.path());
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(
        refused[1].contains("the policy changed since planning"),
        "{refused:?}"
    );

    // A plan of an older format (it neither binds nor carries its inputs) is refused
    // with a way forward, never applied with digests that cannot match.
    let old = std::fs::read_to_string(dir.path().join("plan.json"))
        .unwrap()
        .replacen("\"format_version\":5", "\"format_version\":2", 1);
    std::fs::write(dir.path().join("old.json"), old).unwrap();
    let o = pmf(dir.path(), &["apply", "old.json"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("plan format 2, made by an older pmf")
            && text(&o.stderr).contains("plan again"),
        "{}",
        text(&o.stderr)
    );
    // A file that is not a plan this pmf reads is a usage error: there is
    // no plan to record as refused.
    assert_eq!(refusals(dir.path()).len(), 2);
}

#[test]
fn invalid_partner_records_name_partner_field_expected_and_found() {
    let dir = tempfile::tempdir().unwrap();
    let bad = std::fs::read_to_string(fleet("partners.json"))
        .unwrap()
        .replacen("\"stability\": 88", "\"stability\": \"high\"", 1);
    std::fs::write(dir.path().join("partners.json"), bad).unwrap();
    let o = plan_local(dir.path(), "partners.json");
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(
        err.contains("partner `p-001`")
            && err.contains("metrics.stability")
            && err.contains("expected a score")
            && err.contains("\"high\""),
        "{err}"
    );
    assert!(!dir.path().join("plan.json").exists());
    // NDJSON, one line broken.
    std::fs::write(dir.path().join("p.ndjson"), "{\"id\": \"x\"\nnot json\n").unwrap();
    let o = pmf(
        dir.path(),
        &[
            "plan",
            "--policy",
            &fleet("policy.pmf"),
            "--partners",
            "p.ndjson",
            "--target",
            &fleet("target.json"),
        ],
    );
    assert_eq!(code(&o), 1);
    assert_eq!(
        code(&pmf(
            dir.path(),
            &[
                "plan",
                "--policy",
                &fleet("policy.pmf"),
                "--partners",
                "nope.json",
                "--target",
                &fleet("target.json")
            ]
        )),
        2
    );
}

#[test]
fn a_second_apply_fails_fast_naming_the_holder_and_a_dead_holder_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    assert_eq!(code(&apply(dir.path(), &[])), 4);
    let lock = dir.path().join(".pmf/state.db.lock");
    // The holder's name is the lock file's text, which whoever holds the
    // lock writes: what a terminal would obey in it is shown escaped
    // (before, it cleared the screen and turned the line around).
    std::fs::write(&lock, "apply (pid 999999 \u{1b}[2J\r\u{202e}forged)\n").unwrap();
    // A live holder: `flock` holding the store's lock while it runs.
    let mut holder = Command::new("flock")
        .args([
            "--exclusive",
            "--no-fork",
            lock.to_str().unwrap(),
            "sleep",
            "60",
        ])
        .spawn()
        .expect("flock(1) from util-linux");
    let started = std::time::Instant::now();
    let o = loop {
        let o = apply(dir.path(), &[]);
        if code(&o) == 2 || started.elapsed().as_secs() > 20 {
            break o;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("in use by") && text(&o.stderr).contains("resumes"),
        "{}",
        text(&o.stderr)
    );
    let escaped = "(pid 999999 \\u{001b}[2J\\u{000d}\\u{202e}forged)";
    assert!(text(&o.stderr).contains(escaped), "{}", text(&o.stderr));
    let o = pmf(dir.path(), &["status"]);
    assert!(text(&o.stdout).contains(escaped), "{}", text(&o.stdout));
    for said in [&o.stdout, &o.stderr] {
        assert!(
            !text(said).contains(['\u{1b}', '\r', '\u{202e}']),
            "{}",
            text(said)
        );
    }
    // The store named through a link to it, or to its folder, is the same
    // store under the same lock (before, `alias.db.lock` was taken and two
    // applies ran at once).
    std::os::unix::fs::symlink(".pmf/state.db", dir.path().join("alias.db")).unwrap();
    std::os::unix::fs::symlink(".pmf", dir.path().join("linked")).unwrap();
    for store in ["alias.db", "linked/state.db", "linked/../.pmf/state.db"] {
        let o = apply(
            dir.path(),
            &["--store", store, "--operator-key", ".pmf/operator.key"],
        );
        assert_eq!(code(&o), 2, "{store}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("in use by"),
            "{store}: {}",
            text(&o.stderr)
        );
    }
    // kill -9: the lock ends with its holder; nothing to clear by hand.
    holder.kill().unwrap();
    holder.wait().unwrap();
    assert_eq!(code(&apply(dir.path(), &[])), 4);
    let o = pmf(dir.path(), &["state", "unlock"]);
    assert_eq!(code(&o), 0);
    assert!(
        text(&o.stdout).contains("not locked"),
        "{}",
        text(&o.stdout)
    );
}

/// The operator key a write makes for a new store is named, whichever
/// command made it (before, `state import` made it unsaid), and a key file
/// others can read is warned of at every write, as an authority's is.
#[test]
fn a_new_operator_key_is_named_and_an_exposed_one_warned_of() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let import = |file: &str| {
        pmf(
            dir.path(),
            &["state", "import", file, "--policy", &fleet("policy.pmf")],
        )
    };
    let o = import(&fleet("partners.json"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("pmf: made the operator key `.pmf/operator.key` (public key ")
            && text(&o.stdout).contains("imported 36 partners into .pmf/state.db"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let key = dir.path().join(".pmf/operator.key");
    for (n, mode) in [(1, 0o644), (2, 0o600)] {
        let mut one = partners[0].clone();
        one["id"] = serde_json::json!(format!("new-{n}"));
        let file = dir.path().join(format!("new-{n}.json"));
        std::fs::write(&file, serde_json::to_string(&vec![one]).unwrap()).unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let o = import(file.to_str().unwrap());
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        assert!(
            text(&o.stdout).contains("imported 1 partner into"),
            "{}",
            text(&o.stdout)
        );
        let warned = "pmf: warning: the private key `.pmf/operator.key` can be read by others than its owner (mode 644): anyone who copies it signs this store's checkpoints; `chmod 600 .pmf/operator.key`";
        assert_eq!(
            text(&o.stderr).contains(warned),
            mode == 0o644,
            "{}",
            text(&o.stderr)
        );
        assert!(!text(&o.stderr).contains("made the operator key"));
        let again = import(file.to_str().unwrap());
        assert!(
            text(&again.stdout).contains("already holds this partner with this very state"),
            "{}",
            text(&again.stdout)
        );
    }
}

/// An authority's key given as the operator key, or the operator key
/// given to sign as an authority, is named for what it is (before: serde's
/// "missing field `role`" and "unknown field `role`").
#[test]
fn an_authority_key_and_the_operator_key_do_not_stand_for_each_other() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    let o = pmf(
        dir.path(),
        &[
            "state",
            "import",
            &fleet("partners.json"),
            "--policy",
            &fleet("policy.pmf"),
            "--operator-key",
            "TSC.key",
        ],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr)
            .contains("`TSC.key` is the private key of authority `TSC`, not an operator key"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(code(&apply(dir.path(), &[])), 4);
    let o = pmf(
        dir.path(),
        &[
            "approve",
            "plan.json",
            "--key",
            ".pmf/operator.key",
            "-o",
            "more.json",
            "--yes",
        ],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("`.pmf/operator.key` is an operator key (it signs a store's checkpoints), not an authority's"),
        "{}",
        text(&o.stderr)
    );
    assert!(!dir.path().join("more.json").exists());
}

/// A first write refused after the store's file was opened (here: an
/// authority's key given as the operator key) leaves no store behind, also
/// where the store is named through a link; before, an empty store with
/// its schema was left, which the next command took for one made on
/// purpose. A store that holds what a batch committed is kept.
#[test]
fn a_first_write_refused_leaves_no_store_behind() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    std::fs::create_dir(dir.path().join("real")).unwrap();
    std::os::unix::fs::symlink("real/state.db", dir.path().join("alias.db")).unwrap();
    let partners = fleet("partners.json");
    let policy = fleet("policy.pmf");
    for store in [".pmf/state.db", "alias.db"] {
        let import = [
            "state",
            "import",
            &partners,
            "--policy",
            &policy,
            "--store",
            store,
            "--operator-key",
            "TSC.key",
        ];
        let apply = [
            "apply",
            "plan.json",
            "--store",
            store,
            "--operator-key",
            "TSC.key",
        ];
        for args in [&import[..], &apply[..]] {
            let o = pmf(dir.path(), args);
            assert_eq!(code(&o), 2, "{args:?}: {}", text(&o.stderr));
            assert!(
                text(&o.stderr).contains("is the private key of authority `TSC`"),
                "{}",
                text(&o.stderr)
            );
            for made in ["", "-wal", "-shm", ".lock"] {
                for file in [".pmf/state.db", "real/state.db"] {
                    let file = dir.path().join(format!("{file}{made}"));
                    assert!(!file.exists(), "{args:?} left {}", file.display());
                }
            }
            // Nor the lock file, nor the folder made for it (before, both
            // were left: a store seemed to be there).
            assert!(!dir.path().join(".pmf").exists(), "{args:?} left .pmf");
            assert!(dir.path().join("real").is_dir(), "the operator's folder");
        }
    }
    assert!(
        std::fs::symlink_metadata(dir.path().join("alias.db")).is_ok(),
        "the link is the operator's: kept"
    );
    // Once a batch commits, the store is kept, whatever fails after it.
    let o = pmf(dir.path(), &["apply", "plan.json", "--store", "alias.db"]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    assert!(dir.path().join("real/state.db").exists());
    let o = pmf(
        dir.path(),
        &[
            "apply",
            "plan.json",
            "--store",
            "alias.db",
            "--operator-key",
            "TSC.key",
        ],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    let o = pmf(dir.path(), &["lineage", "verify", "--store", "alias.db"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

/// A plan made against a store, applied where there is none (another
/// folder, a mistyped `--store`), makes no new store: before, an empty one
/// was made there, named "this one" in the refusal, and the hint was to
/// plan again against it.
#[test]
fn a_plan_made_against_a_store_makes_none_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    assert_eq!(code(&apply(dir.path(), &[])), 4);
    // A rollback plan is made against the store the apply made.
    let policy = fleet("policy.pmf");
    let o = pmf(
        dir.path(),
        &["rollback", "p-001", "--policy", &policy, "-o", "back.json"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = pmf(
        dir.path(),
        &["apply", "back.json", "--store", "elsewhere/state.db"],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(
            "there is no store at `elsewhere/state.db`, and the plan was made against store "
        ) && text(&o.stderr).contains("no store was made"),
        "{}",
        text(&o.stderr)
    );
    // Nothing at all: no lock file, no folder (before, both were left).
    assert!(!dir.path().join("elsewhere").exists());
}

/// A partner's own text (a field value) with characters a terminal would
/// obey is kept as it is, and printed escaped: `state export` writes JSON's
/// `\u202e` (serde_json leaves bidi overrides and C1 controls raw), which
/// reads back the very value.
#[test]
fn exported_states_escape_what_a_terminal_would_obey() {
    let dir = tempfile::tempdir().unwrap();
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let mut p = partners[0].clone();
    p["region"] = "eu\u{202e}\u{9b}".into();
    std::fs::write(
        dir.path().join("one.json"),
        serde_json::to_string(&[&p]).unwrap(),
    )
    .unwrap();
    let o = pmf(
        dir.path(),
        &[
            "state",
            "import",
            "one.json",
            "--policy",
            &fleet("policy.pmf"),
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = pmf(dir.path(), &["state", "export"]);
    let out = text(&o.stdout);
    assert!(out.contains(r#""region": "eu\u202e\u009b""#), "{out}");
    assert!(!out.contains(['\u{202e}', '\u{9b}']));
    let back: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(back[0]["region"], p["region"]);
}

/// A store path that names a folder, a device or a pipe is said to be no
/// store, by the commands that write and those that read (before: "unable
/// to open database file", "disk I/O error", or a schema to bring up to
/// date with write access).
#[test]
fn a_store_path_that_is_no_file_is_named_so() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    for (store, kind) in [
        ("folder", "a folder"),
        ("/dev/null", "a device"),
        ("pipe", "a pipe"),
    ] {
        for args in [
            &["status", "--store", store][..],
            &["lineage", "verify", "--store", store][..],
            &[
                "state",
                "import",
                &fleet("partners.json"),
                "--policy",
                &fleet("policy.pmf"),
                "--store",
                store,
            ][..],
        ] {
            let o = pmf(dir.path(), args);
            assert_eq!(code(&o), 2, "{args:?}: {}", text(&o.stderr));
            assert!(
                text(&o.stderr).contains(&format!("`{store}` is {kind}, not a store")),
                "{args:?}: {}",
                text(&o.stderr)
            );
        }
    }
}

/// A store whose file has a second name (a hard link: `cp -al` taken for a
/// backup) is written under neither: SQLite keeps a write-ahead log beside
/// each name, so two writers would corrupt it. Reading it is harmless.
#[test]
fn a_store_with_two_names_is_read_but_never_written() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    assert_eq!(code(&apply(dir.path(), &[])), 4);
    let store = dir.path().join(".pmf/state.db");
    let before = std::fs::read(&store).unwrap();
    std::fs::hard_link(&store, dir.path().join("snapshot.db")).unwrap();
    for (what, o) in [
        ("apply", apply(dir.path(), &[])),
        ("rollback", rollback(dir.path(), "p-001", &[])),
        (
            "import",
            pmf(
                dir.path(),
                &[
                    "state",
                    "import",
                    &fleet("partners.json"),
                    "--policy",
                    &fleet("policy.pmf"),
                ],
            ),
        ),
    ] {
        assert_eq!(code(&o), 2, "{what}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("2 names (hard links)")
                && text(&o.stderr).contains("nothing was written"),
            "{what}: {}",
            text(&o.stderr)
        );
    }
    assert_eq!(std::fs::read(&store).unwrap(), before);
    for read in [&["status"][..], &["lineage", "verify"][..]] {
        let o = pmf(dir.path(), read);
        assert_eq!(code(&o), 0, "{read:?}: {}", text(&o.stderr));
    }
    // One name again: written as before (the apply finds nothing left to do).
    std::fs::remove_file(dir.path().join("snapshot.db")).unwrap();
    assert_eq!(code(&apply(dir.path(), &[])), 4);
}

fn tampered(edit: &str) -> Output {
    tampered_with(|c| c.execute_batch(edit).unwrap())
}

fn tampered_with(edit: impl Fn(&rusqlite::Connection)) -> Output {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    apply(dir.path(), &["--approvals", "approvals.json"]);
    edit(&db(dir.path()));
    let o = pmf(dir.path(), &["lineage", "verify"]);
    assert_eq!(code(&o), 1, "not detected\n{}", text(&o.stdout));
    o
}

/// The row of the lineage that holds event `#global_seq`: its first
/// event's number, its events and their hashes.
pub(crate) fn row_with(
    c: &rusqlite::Connection,
    global_seq: i64,
) -> (i64, Vec<Vec<u8>>, Vec<[u8; 32]>) {
    let (first, body, hashes): (i64, Vec<u8>, Vec<u8>) = c
        .query_row(
            "SELECT global_seq, event, hash FROM lineage WHERE global_seq <= ?1 ORDER BY global_seq DESC LIMIT 1",
            [global_seq],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    let (events, hashes) = pmf::store::lineage::row_events(&body, &hashes)
        .into_iter()
        .map(|(e, h)| (e.to_vec(), h))
        .unzip();
    (first, events, hashes)
}

/// The first event's number of the lineage's row `n` (from 0).
fn nth_row(c: &rusqlite::Connection, n: i64) -> i64 {
    c.query_row(
        "SELECT global_seq FROM lineage ORDER BY global_seq LIMIT 1 OFFSET ?1",
        [n],
        |r| r.get(0),
    )
    .unwrap()
}

#[test]
fn tampering_with_the_lineage_is_detected() {
    // Event #10's kind changed (the byte after the encoding's tag), inside
    // the row (a partner's run) that holds it.
    let o = tampered_with(|c| {
        let (first, mut events, _) = row_with(c, 10);
        let event = &mut events[(10 - first) as usize];
        event[1] ^= 1;
        let parts: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        c.execute(
            "UPDATE lineage SET event = ?1 WHERE global_seq = ?2",
            rusqlite::params![pmf::store::lineage::row_of(&parts), first],
        )
        .unwrap();
    });
    assert!(
        text(&o.stdout).contains("broken at event #10"),
        "{}",
        text(&o.stdout)
    );
    // A row (a partner's whole run) deleted.
    tampered_with(|c| {
        let g = nth_row(c, 3);
        c.execute("DELETE FROM lineage WHERE global_seq = ?1", [g])
            .unwrap();
    });
    // A row's events replaced by the next row's.
    tampered_with(|c| {
        let (a, b) = (nth_row(c, 4), nth_row(c, 5));
        c.execute(
            "UPDATE lineage SET event = (SELECT event FROM lineage WHERE global_seq = ?2) WHERE global_seq = ?1",
            [a, b],
        )
        .unwrap();
    });
    // A row copied past the end.
    tampered_with(|c| {
        let g = nth_row(c, 2);
        c.execute(
            "INSERT INTO lineage (global_seq, partner_id, seq, event, hash)
             SELECT 100000, partner_id, seq + 100, event, hash FROM lineage WHERE global_seq = ?1",
            [g],
        )
        .unwrap();
    });
    // One event cut from the end of a run: the row no longer splits.
    tampered_with(|c| {
        let g = nth_row(c, 6);
        c.execute(
            "UPDATE lineage SET hash = substr(hash, 1, length(hash) - 32) WHERE global_seq = ?1",
            [g],
        )
        .unwrap();
    });
    tampered("DELETE FROM lineage WHERE global_seq = (SELECT MAX(global_seq) FROM lineage);");
}

#[test]
fn rollback_rolls_forward_to_the_previous_stable_version() {
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    apply(dir.path(), &["--approvals", "approvals.json"]);
    // A rollback is planned, names who must approve it, and without those
    // approvals changes nothing.
    let o = pmf(
        dir.path(),
        &[
            "rollback",
            "p-001",
            "--policy",
            &fleet("policy.pmf"),
            "-o",
            "rb.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("1.6.0 → 1.4.0")
            && text(&o.stdout).contains("needs the approval of TSC"),
        "{}",
        text(&o.stdout)
    );
    let o = pmf(dir.path(), &["apply", "rb.json"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("needs the approval of TSC"),
        "{}",
        text(&o.stderr)
    );
    // An approval of another plan does not count.
    let o = pmf(
        dir.path(),
        &["apply", "rb.json", "--approvals", "approvals.json"],
    );
    assert_eq!(code(&o), 1);
    let o = rollback(dir.path(), "p-001", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("1.6.0 → 1.4.0"));
    let version: String = db(dir.path())
        .query_row("SELECT version FROM partners WHERE id = 'p-001'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, "1.4.0");
    let released = text(&pmf(dir.path(), &["lineage", "show", "p-001"]).stdout);
    assert!(released.contains("The old pattern dissolves. Memory remains."));
    assert_eq!(code(&pmf(dir.path(), &["lineage", "verify"])), 0);
    // The same rollback plan applied again: done once, nothing more.
    let before = lineage_rows(dir.path());
    let o = pmf(
        dir.path(),
        &[
            "apply",
            "rollback.json",
            "--approvals",
            "rollback-approvals.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("nothing to do (1 partner rolled back by an earlier run)"),
        "{}",
        text(&o.stdout)
    );
    assert_eq!(lineage_rows(dir.path()), before);
    assert_eq!(code(&rollback(dir.path(), "p-001", &["--to", "9.9.9"])), 2);
    assert_eq!(code(&rollback(dir.path(), "nobody", &[])), 2);
}

#[test]
fn killed_mid_run_a_rerun_completes_the_work() {
    let dir = tempfile::tempdir().unwrap();
    // Many partners so that the kill lands mid-run.
    let base: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let mut lines = String::new();
    for i in 0..5000 {
        let mut p = base[i % 8].clone();
        p["id"] = format!("n-{i:05}").into();
        lines.push_str(&p.to_string());
        lines.push('\n');
    }
    std::fs::write(dir.path().join("many.ndjson"), lines).unwrap();
    std::fs::write(dir.path().join("target.json"), "{\"version\": \"1.6.0\"}").unwrap();
    let o = pmf(
        dir.path(),
        &[
            "plan",
            "--policy",
            &fleet("policy.pmf"),
            "--partners",
            "many.ndjson",
            "--target",
            "target.json",
            "-o",
            "plan.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmf"))
        .args(["apply", "plan.json", "--format", "json"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let store = dir.path().join(".pmf/state.db");
    let started = std::time::Instant::now();
    loop {
        let progressed = store.exists()
            && rusqlite::Connection::open(&store)
                .and_then(|c| {
                    c.query_row("SELECT COUNT(*) FROM progress", [], |r| r.get::<_, i64>(0))
                })
                .unwrap_or(0)
                > 50;
        if progressed || started.elapsed().as_secs() > 60 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // SAFETY-free: kill -9 through the standard library.
    child.kill().unwrap();
    child.wait().unwrap();
    let done_before: i64 = db(dir.path())
        .query_row("SELECT COUNT(*) FROM progress", [], |r| r.get(0))
        .unwrap();
    assert!(
        done_before < 5000,
        "the run finished before the kill; nothing was tested"
    );
    // The dead holder's lock ended with it: the re-run needs no unlock.
    let o = pmf(dir.path(), &["apply", "plan.json", "--format", "json"]);
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let conn = db(dir.path());
    let done: i64 = conn
        .query_row("SELECT COUNT(*) FROM progress", [], |r| r.get(0))
        .unwrap();
    assert_eq!(done, 5000);
    // A walk has one event in detection (its entry, or the stop folded
    // into it): two would be a partner walked twice.
    let twice = partners_with_several(&dir.path().join(".pmf/state.db"), |e| {
        e.phase.as_deref() == Some("detection")
    })
    .len();
    assert_eq!(twice, 0, "a partner was applied twice");
    assert_eq!(code(&pmf(dir.path(), &["lineage", "verify"])), 0);
}

/// The plan's entries, without the header (which names the input file).
fn plan_entries(dir: &Path) -> serde_json::Value {
    plan_doc(dir)["entries"].clone()
}

/// `plan.json` of `dir`, as JSON.
pub(crate) fn plan_doc(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("plan.json")).unwrap()).unwrap()
}

/// The action and reason `plan.json` of `dir` predicts for each partner.
pub(crate) fn predicted(dir: &Path) -> Vec<(String, String)> {
    plan_doc(dir)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let said = |k: &str| e["predicted"][k].as_str().unwrap().to_string();
            (said("action"), said("reason"))
        })
        .collect()
}

#[test]
fn json_arrays_stream_element_by_element() {
    let dir = tempfile::tempdir().unwrap();
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    // Ids with brackets, commas and escaped quotes inside their strings,
    // which the element scan must step over.
    let mut tricky = partners.clone();
    tricky[1]["id"] = "p-\"],[{x}\\".into();
    tricky[2]["id"] = "p-]".into();
    // The same partners as NDJSON (the reference) and as an array laid out
    // oddly: white space everywhere, and one element longer than the
    // reader's blocks.
    let ndjson: String = tricky.iter().map(|p| format!("{p}\n")).collect();
    std::fs::write(dir.path().join("p.ndjson"), &ndjson).unwrap();
    let o = plan_local(dir.path(), "p.ndjson");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let expected = plan_entries(dir.path());
    let mut array = String::from(" \n[ \r\n");
    for (i, p) in tricky.iter().enumerate() {
        let element = p.to_string();
        if i == 3 {
            let pad = "\n ".repeat(3 << 19);
            array.push_str(&element.replacen(',', &format!(",{pad}"), 1));
        } else {
            array.push_str(&element);
        }
        if i + 1 < tricky.len() {
            array.push_str(if i % 2 == 0 { " ,\n\t" } else { "," });
        }
    }
    array.push_str("\n]\n\n");
    std::fs::write(dir.path().join("p.json"), &array).unwrap();
    std::fs::remove_file(dir.path().join("plan.json")).unwrap();
    let o = plan_local(dir.path(), "p.json");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(plan_entries(dir.path()), expected);

    // Broken arrays: exit 1, naming where, and no plan.
    let (element, other) = (partners[0].to_string(), partners[1].to_string());
    let broken: [(&str, Vec<u8>, &str); 6] = [
        (
            "no comma",
            format!("[{element}\n{other}]").into_bytes(),
            "line 2: not a valid JSON array: expected `,` or `]` after record 1",
        ),
        (
            "not closed",
            format!("[{element},\n{other}\n").into_bytes(),
            "line 3: not a valid JSON array: the file ends before its `]` (after record 2)",
        ),
        (
            "trailing text",
            format!("[{element}]\nmore").into_bytes(),
            "line 2: not a valid JSON array: text after its `]`",
        ),
        (
            "trailing comma",
            format!("[{element},\n]").into_bytes(),
            "line 2: not a valid JSON array: expected a record after record 1",
        ),
        (
            "not UTF-8",
            [format!("[{element},").as_bytes(), b"{\"id\": \"\xff\"}]"].concat(),
            "record 2: the record is not valid UTF-8",
        ),
        (
            "not a record",
            format!("[{element}, 7]").into_bytes(),
            "record 2: expected a JSON object",
        ),
    ];
    for (what, bytes, message) in broken {
        std::fs::write(dir.path().join("bad.json"), &bytes).unwrap();
        std::fs::remove_file(dir.path().join("plan.json")).ok();
        let o = plan_local(dir.path(), "bad.json");
        assert_eq!(code(&o), 1, "{what}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(&format!("bad.json, {message}")),
            "{what}: {}",
            text(&o.stderr)
        );
        assert!(!dir.path().join("plan.json").exists(), "{what}");
    }
}

#[test]
fn ndjson_read_in_blocks_plans_like_the_json_array() {
    let dir = tempfile::tempdir().unwrap();
    let o = plan_local(dir.path(), &fleet("partners.json"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let from_array = plan_entries(dir.path());

    // The same partners as NDJSON: blank lines, CRLF endings, and one record
    // longer than the reader's blocks (padded with JSON whitespace).
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let mut ndjson = String::from("\n");
    for (i, p) in partners.iter().enumerate() {
        let line = p.to_string();
        if i == 3 {
            let pad = " ".repeat(3 << 20);
            ndjson.push_str(&line.replacen(',', &format!(",{pad}"), 1));
        } else {
            ndjson.push_str(&line);
        }
        ndjson.push_str(if i % 2 == 0 { "\r\n" } else { "\n\n" });
    }
    std::fs::write(dir.path().join("p.ndjson"), &ndjson).unwrap();
    let o = plan_local(dir.path(), "p.ndjson");
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(plan_entries(dir.path()), from_array);

    // A line that is not UTF-8 is the user's mistake: exit 1, naming the line.
    let mut bytes = ndjson.clone().into_bytes();
    bytes.extend_from_slice(b"{\"id\": \"\xff\"}\n");
    std::fs::write(dir.path().join("bad.ndjson"), &bytes).unwrap();
    std::fs::remove_file(dir.path().join("plan.json")).unwrap();
    let o = plan_local(dir.path(), "bad.ndjson");
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let lines = ndjson.matches('\n').count() + 1;
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("line {lines}")) && err.contains("not valid UTF-8"),
        "{err}"
    );
    assert!(!dir.path().join("plan.json").exists());

    // A partner id seen before, however far back, is refused by line.
    let mut dup = ndjson.clone();
    dup.push_str(&partners[0].to_string());
    dup.push('\n');
    std::fs::write(dir.path().join("dup.ndjson"), &dup).unwrap();
    let o = plan_local(dir.path(), "dup.ndjson");
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!("line {lines}")) && err.contains("duplicate partner id"),
        "{err}"
    );
}

/// A link planted in the output's directory under the name a plan's
/// temporary file used to have cannot make `pmf plan` overwrite the file it
/// points at, nor make the plan a link to it; nor can one on the store's
/// lock file carry the lock holder's name into another file.
#[test]
fn a_planted_link_never_redirects_what_pmf_writes() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(".plan.json.partial")).unwrap();
    let o = plan_local(dir.path(), &fleet("partners.json"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    let plan = std::fs::symlink_metadata(dir.path().join("plan.json")).unwrap();
    assert!(plan.file_type().is_file());
    // The store's lock file.
    std::fs::create_dir(dir.path().join(".pmf")).unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(".pmf/state.db.lock")).unwrap();
    let o = pmf(dir.path(), &["apply", "plan.json"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is a symbolic link"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// An output named as one of the command's inputs is refused before
/// anything is read or written (exit 2): renamed over it, a plan would
/// have replaced the partner file it was made from, or the store itself.
#[test]
fn an_output_over_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let partners = dir.path().join("p.json");
    std::fs::copy(fleet("partners.json"), &partners).unwrap();
    let before = std::fs::read(&partners).unwrap();
    let o = plan_into(dir.path(), "p.json", "p.json", &[]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("is the file given as `--partners`"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(std::fs::read(&partners).unwrap(), before);
    // The store, through another name for it.
    std::fs::create_dir(dir.path().join(".pmf")).unwrap();
    std::fs::write(dir.path().join(".pmf/state.db"), "the store").unwrap();
    std::os::unix::fs::symlink(".pmf/state.db", dir.path().join("db-link")).unwrap();
    let o = plan_into(dir.path(), "p.json", "db-link", &[]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("`--store`"), "{}", text(&o.stderr));
    let o = pmf(
        dir.path(),
        &["lineage", "checkpoint", "-o", ".pmf/state.db"],
    );
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("`--store`"), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".pmf/state.db")).unwrap(),
        "the store"
    );
}

/// The commands that read a store write nothing to it: an auditor's
/// read-only copy verifies (here SQLite cannot make its shared-memory file,
/// as in a read-only directory), and asking who holds the lock leaves the
/// lock file's holder name as it was.
#[test]
fn reading_a_store_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let o = plan_local(dir.path(), &fleet("partners.json"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let o = pmf(dir.path(), &["apply", "plan.json"]);
    assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
    let store = dir.path().join(".pmf/state.db");
    let lock = dir.path().join(".pmf/state.db.lock");
    let (db, holder) = (
        std::fs::read(&store).unwrap(),
        std::fs::read(&lock).unwrap(),
    );
    for leftover in ["state.db-shm", "state.db-wal"] {
        let _ = std::fs::remove_file(dir.path().join(".pmf").join(leftover));
    }
    std::fs::create_dir(dir.path().join(".pmf/state.db-shm")).unwrap();
    for args in [
        &["lineage", "verify"][..],
        &["status"],
        &["lineage", "show", "p-001"],
        &["state", "export"],
        &["review", "list"],
        &["lineage", "checkpoint"],
    ] {
        let o = pmf(dir.path(), args);
        assert_eq!(code(&o), 0, "{args:?}: {}", text(&o.stderr));
    }
    assert_eq!(std::fs::read(&store).unwrap(), db, "the store's bytes");
    assert_eq!(
        std::fs::read(&lock).unwrap(),
        holder,
        "the lock holder's name"
    );

    // A change that sits only in the write-ahead log (its writer stopped
    // before folding it in: the connection below is never closed) is read
    // though the shared-memory file cannot be made: here a tamper, which
    // must be found, not passed by reading the store file without its log.
    std::fs::remove_dir(dir.path().join(".pmf/state.db-shm")).unwrap();
    let writer = rusqlite::Connection::open(&store).unwrap();
    writer
        .execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             UPDATE partners SET version = '9.9.9' WHERE id = (SELECT min(id) FROM partners);",
        )
        .unwrap();
    std::mem::forget(writer);
    let _ = std::fs::remove_file(dir.path().join(".pmf/state.db-shm"));
    std::fs::create_dir(dir.path().join(".pmf/state.db-shm")).unwrap();
    let db = std::fs::read(&store).unwrap();
    let o = pmf(dir.path(), &["lineage", "verify"]);
    assert_eq!(code(&o), 1, "{}", text(&o.stdout));
    assert_eq!(std::fs::read(&store).unwrap(), db, "the store's bytes");
}

/// A plan edited to name a partner by an id `pmf plan` would refuse
/// (control characters), or to give one partner's state to another id, is
/// refused by `apply` with nothing applied: an edit cannot put a partner in
/// the store under another's name, nor an id that rewrites the terminal of
/// whoever reads the lineage.
#[test]
fn apply_refuses_ids_a_plan_was_edited_to_carry() {
    let dir = tempfile::tempdir().unwrap();
    let o = plan_local(dir.path(), &fleet("partners.json"));
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let plan = plan_doc(dir.path());
    for (id, says) in [
        (
            "p-001\u{1b}[2K\rHIDDEN",
            "the id holds the control character U+001B",
        ),
        ("p-999", "carries the state of partner `p-001`"),
    ] {
        let mut edited = plan.clone();
        edited["entries"][0]["id"] = id.into();
        std::fs::write(dir.path().join("edited.json"), edited.to_string()).unwrap();
        let o = pmf(dir.path(), &["apply", "edited.json"]);
        assert_eq!(code(&o), 1, "{id:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(err.contains(says), "{id:?}: {err}");
        assert!(
            !err.contains('\u{1b}'),
            "the id was printed as it is: {err:?}"
        );
        let o = pmf(dir.path(), &["state", "export"]);
        let held: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        assert!(
            held.as_array().is_none_or(|a| a.is_empty()),
            "{id:?}: something was applied: {held}"
        );
    }
}

/// Partners are evaluated several batches at once: whichever batch a core
/// finishes first, the bad records are reported in the file's order, and
/// the plan is not written.
#[test]
fn bad_records_are_reported_in_order_whichever_batch_finishes_first() {
    let dir = tempfile::tempdir().unwrap();
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    // Four batches of the reader (8,192 records each) and a bit.
    let good = |i: usize| {
        let mut p = partners[i % partners.len()].clone();
        p["id"] = format!("p-{i:06}").into();
        p.to_string()
    };
    let bad = |i: usize| format!("{{\"id\": \"p-{i:06}\", \"version\": 7}}");
    for bad_lines in [vec![9_000, 20_000], vec![20_000], vec![30_001, 8_193]] {
        let lines: Vec<String> = (1..=33_000)
            .map(|line| {
                if bad_lines.contains(&line) {
                    bad(line)
                } else {
                    good(line)
                }
            })
            .collect();
        std::fs::write(dir.path().join("p.ndjson"), lines.join("\n")).unwrap();
        let o = plan_local(dir.path(), "p.ndjson");
        assert_eq!(code(&o), 1, "{bad_lines:?}: {}", text(&o.stderr));
        // Every bad record is named, in the file's order.
        let err = text(&o.stderr);
        let mut sorted = bad_lines.clone();
        sorted.sort_unstable();
        let at: Vec<usize> = sorted
            .iter()
            .map(|line| {
                err.find(&format!("p.ndjson, line {line},"))
                    .unwrap_or(usize::MAX)
            })
            .collect();
        assert!(
            at.windows(2).all(|w| w[0] < w[1]) && at[sorted.len() - 1] < usize::MAX,
            "{bad_lines:?}: {err}"
        );
        assert!(!dir.path().join("plan.json").exists(), "{bad_lines:?}");
        // From a pipe, which cannot be read again for every bad record,
        // the planner's own error names the first.
        let policy = fleet("policy.pmf");
        let target = fleet("target.json");
        let args = plan_args(&policy, "/dev/stdin", &target, "plan.json", &[]);
        let o = pmf_piped(dir.path(), &args, lines.join("\n").into_bytes());
        assert_eq!(code(&o), 1, "{bad_lines:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains(&format!("/dev/stdin, line {},", sorted[0])),
            "{bad_lines:?}: {err}"
        );
        assert_eq!(err.matches(", line ").count(), 1, "{bad_lines:?}: {err}");
        assert!(!dir.path().join("plan.json").exists(), "{bad_lines:?}");
    }
    // Without them, the same file plans (the fleet's target names partners
    // of its own: `--subset`).
    let lines: Vec<String> = (1..=33_000).map(good).collect();
    std::fs::write(dir.path().join("p.ndjson"), lines.join("\n")).unwrap();
    let o = plan_into(dir.path(), "p.ndjson", "plan.json", &["--subset"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert_eq!(
        plan_entries(dir.path()).as_array().map(Vec::len),
        Some(33_000)
    );
}

/// A condition of 20,000 alternatives is checked and run by `pmf test`
/// (one chain: neither the checker nor the runtime recurses per term).
#[test]
fn a_long_chain_is_checked_and_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = std::fs::read_to_string("tests/fixtures/valid/long_chain.pmf").expect("fixture");
    let many: Vec<String> = (0..20_000)
        .map(|i| format!("partner.id == \"p-{i}\""))
        .collect();
    let start = fixture.find("listed_partner: ").expect("rule") + "listed_partner: ".len();
    let end = fixture.find(" else restrict").expect("rule");
    let policy = format!(
        "{}{}{}",
        &fixture[..start],
        many.join(" or "),
        &fixture[end..]
    );
    std::fs::write(dir.path().join("long.pmf"), policy).expect("write");
    let out = pmf(dir.path(), &["test", "long.pmf"]);
    assert_eq!(code(&out), 0, "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 passed"),
        "{}",
        text(&out.stdout)
    );
}

/// A plan written where there is no room (`/dev/full`: every write fails
/// with ENOSPC) fails with exit 2 naming why, whether the writer fails at
/// its last write (a small plan) or in the middle, while partners are still
/// being planned (a plan larger than the writer's 8 MiB chunk): never the
/// bare "the plan writer stopped".
#[test]
fn a_plan_onto_a_full_device_says_why_it_failed() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("no /dev/full here: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let base: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    std::fs::write(dir.path().join("target.json"), "{\"version\": \"1.6.0\"}").unwrap();
    for n in [10, 30_000] {
        let mut lines = String::new();
        for i in 0..n {
            let mut p = base[i % base.len()].clone();
            p["id"] = format!("f-{i:05}").into();
            lines.push_str(&p.to_string());
            lines.push('\n');
        }
        std::fs::write(dir.path().join("p.ndjson"), lines).unwrap();
        let o = plan_with(dir.path(), "p.ndjson", "target.json", "/dev/full", &[]);
        let err = text(&o.stderr);
        assert_eq!(code(&o), 2, "{n} partners: {err}");
        assert!(
            err.contains("cannot write `/dev/full`") && err.contains("No space left on device"),
            "{n} partners: {err}"
        );
    }
}

/// A report written to a full device (`/dev/full`) fails with exit 2 and
/// says why: never a panic ("internal error"), never the exit of a success;
/// with stderr full as well, the exit code is still the command's.
/// `apply` still records its whole run in the store (a rerun finds every
/// partner done); a reader that goes away (`| head`) stops it quietly.
#[test]
fn reports_onto_a_full_device_fail_with_exit_2() {
    if !std::path::Path::new("/dev/full").exists() {
        eprintln!("no /dev/full here: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    planned(dir.path());
    let into_full = |args: &[&str]| {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        Command::new(env!("CARGO_BIN_EXE_pmf"))
            .args(args)
            .current_dir(dir.path())
            .stdout(full)
            .output()
            .unwrap()
    };
    let observed = fleet("observed.json");
    let policy = fleet("policy.pmf");
    let commands: [&[&str]; 7] = [
        &[
            "apply",
            "plan.json",
            "--observed",
            &observed,
            "--format",
            "json",
        ],
        &["lineage", "verify"],
        &["lineage", "show"],
        &["state", "export"],
        &["status"],
        &["check", &policy],
        &["plan", "show", "plan.json"],
    ];
    for args in commands {
        let o = into_full(args);
        let err = text(&o.stderr);
        assert_eq!(code(&o), 2, "{args:?}: {err}");
        assert!(
            err.contains("cannot write the output") && err.contains("No space left on device"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("internal error"), "{args:?}: {err}");
    }
    // With stderr full too, nothing can be said, but the exit code still
    // tells what happened (`eprintln!` would abort the process: 134).
    std::fs::write(dir.path().join("bad.pmf"), "policy x extends nowhere\n").unwrap();
    let quiet: [(&[&str], i32); 3] = [
        (&["check", "bad.pmf"], 1),
        (&["lineage", "verify", "--store", "missing/state.db"], 2),
        (&["status"], 2),
    ];
    for (args, expected) in quiet {
        let full = || {
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap()
        };
        let o = Command::new(env!("CARGO_BIN_EXE_pmf"))
            .args(args)
            .current_dir(dir.path())
            .stdout(full())
            .stderr(full())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(expected), "{args:?}: {:?}", o.status);
    }
    // The apply whose report was lost recorded its run: a rerun finds each
    // partner done or still pending as before.
    let again = apply(dir.path(), &[]);
    let summary = text(&again.stdout);
    assert!(summary.contains("\"skipped\":"), "{summary}");
    let plan = plan_doc(dir.path());
    let partners = plan["entries"].as_array().unwrap().len();
    let line = summary.lines().last().unwrap();
    let last: serde_json::Value = serde_json::from_str(line).unwrap();
    let (skipped, pending) = (last["skipped"].as_u64(), last["still_pending"].as_u64());
    assert_eq!(
        skipped.unwrap() + pending.unwrap(),
        partners as u64,
        "{line}"
    );
    assert!(skipped.unwrap() > 0, "{line}");
}

/// Partners read from a pipe (`--partners /dev/stdin`) plan as the same
/// file does, NDJSON after blank lines and a JSON array alike (a pipe cannot
/// be read twice: the stream goes on from the bytes read to tell the two
/// apart); a repeated id in a pipe is refused naming its record.
#[test]
fn partners_from_a_pipe_plan_as_the_file_does() {
    let dir = tempfile::tempdir().unwrap();
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let ndjson: String = partners.iter().map(|p| format!("{p}\n")).collect();
    let array = serde_json::to_string_pretty(&partners).unwrap();
    let repeated = format!("{ndjson}{}\n", partners[2]);
    let policy = fleet("policy.pmf");
    let target = fleet("target.json");
    let piped = |input: &str, out: &str| {
        let args = plan_args(&policy, "/dev/stdin", &target, out, &[]);
        pmf_piped(dir.path(), &args, input.as_bytes().to_vec())
    };
    let entries = |file: &str| {
        let plan: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(file)).unwrap()).unwrap();
        plan["entries"].clone()
    };
    std::fs::write(dir.path().join("p.ndjson"), &ndjson).unwrap();
    let o = plan_into(dir.path(), "p.ndjson", "file.json", &[]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    for (what, input) in [("ndjson", format!("\n \n{ndjson}")), ("array", array)] {
        let o = piped(&input, "piped.json");
        assert_eq!(code(&o), 0, "{what}: {}", text(&o.stderr));
        assert_eq!(entries("piped.json"), entries("file.json"), "{what}");
    }
    let o = piped(&repeated, "repeated.json");
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{err}");
    assert!(
        err.contains(&format!("record {}", partners.len() + 1))
            && err.contains("duplicate partner id"),
        "{err}"
    );
    assert!(!dir.path().join("repeated.json").exists());
}

/// A partner no metrics were observed for is validated and scored on its
/// target state, and its record says so: without it, `validated passed`
/// and `health 85.8` read as measured to whoever audits the lineage.
#[test]
fn the_lineage_says_when_no_metrics_were_observed() {
    let details = |dir: &Path, partner: &str| -> Vec<(String, String)> {
        let o = pmf(dir, &["lineage", "show", partner, "--format", "json"]);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        doc["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "validated" || e["kind"] == "health")
            .map(|e| {
                (
                    e["kind"].as_str().unwrap().to_string(),
                    e["detail"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    const NOT_OBSERVED: &str = "no metrics observed: the target state stood for them";
    for observed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let mut extra = Vec::new();
        let metrics = fleet("observed.json");
        if observed {
            extra.extend(["--observed", metrics.as_str()]);
        }
        let o = plan_into(dir, &fleet("partners.json"), "plan.json", &extra);
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
        let o = pmf(dir, &["apply", "plan.json"]);
        assert!(matches!(code(&o), 0 | 3 | 4), "{}", text(&o.stderr));
        // The operator is told too (with the fleet's metrics, the one
        // partner without any, p-024, is already at its target).
        let told = text(&o.stderr);
        assert_eq!(
            told.contains("the plan carries no observed metrics for 35 of the partners walked"),
            !observed,
            "{told}"
        );
        assert_eq!(told.contains("observed metrics for"), !observed, "{told}");
        let p001 = details(dir, "p-001");
        assert_eq!(
            p001.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            ["validated", "health"]
        );
        for (kind, detail) in &p001 {
            assert_eq!(detail.contains(NOT_OBSERVED), !observed, "{kind}: {detail}");
        }
        // The band's words stay first.
        let health = &p001[1].1;
        assert!(
            health.starts_with(if observed {
                "Optimal Transition"
            } else {
                "Standard Monitoring"
            }),
            "{health}"
        );
        let o = pmf(dir, &["lineage", "verify"]);
        assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    }
}
