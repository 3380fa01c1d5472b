//! `pmf plan show` and `pmf plan diff` on the bundled fleet: every format,
//! the filters, the diff of a plan made after a policy, target and fleet
//! change, and what is refused.

use std::path::Path;
use std::process::Output;

use super::runtime::{code, fleet, pmf, text};

/// Snapshot `value` under `tests/snapshots/plan_view`.
macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots/plan_view", prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// Plan the fleet into `dir/out` with `policy`, `target` and `partners`.
fn plan(dir: &Path, out: &str, policy: &str, partners: &str, target: &str) {
    let o = pmf(
        dir,
        &[
            "plan",
            "--policy",
            policy,
            "--partners",
            partners,
            "--target",
            target,
            "--observed",
            &fleet("observed.json"),
            "--subset",
            "-o",
            out,
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

/// The fleet planned as it ships, into `dir/plan.json`.
fn fleet_plan(dir: &Path) {
    plan(
        dir,
        "plan.json",
        &fleet("policy.pmf"),
        &fleet("partners.json"),
        &fleet("target.json"),
    );
}

/// `text` with what differs from run to run (creation times, plan and
/// policy hashes) of the plans in `dir` replaced by names.
fn redacted(dir: &Path, text: &str) -> String {
    let mut out = text.to_string();
    let mut policies: Vec<String> = Vec::new();
    let mut plans: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json") && p.is_file())
        .collect();
    plans.sort();
    for p in plans {
        let bytes = std::fs::read(&p).unwrap();
        let Ok(plan) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            continue;
        };
        if !matches!(plan["format_version"].as_u64(), Some(4 | 5)) {
            continue;
        }
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        let hash = blake3::hash(&bytes).to_hex().to_string();
        let policy = plan["header"]["policy"]["hash"]
            .as_str()
            .unwrap()
            .to_string();
        if !policies.contains(&policy) {
            policies.push(policy.clone());
        }
        let number = policies.iter().position(|p| *p == policy).unwrap_or(0) + 1;
        let policy_name = format!("<policy {number}>");
        let created = plan["header"]["created_at"].as_str().unwrap().to_string();
        if let Some(expires) = plan["header"]["expires_at"].as_str() {
            out = out.replace(expires, "<expires at>");
        }
        out = out
            .replace(&hash, &format!("<{name} hash>"))
            .replace(&hash[..12], &format!("<{name} hash>"))
            .replace(&policy, &policy_name)
            .replace(&policy[..12], &policy_name)
            .replace(&created, "<created at>");
    }
    out
}

fn stdout(dir: &Path, o: &Output) -> String {
    redacted(dir, &text(&o.stdout))
}

#[test]
fn plan_show_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fleet_plan(d);
    let o = pmf(d, &["plan", "show", "plan.json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    snap!("show_human", stdout(d, &o));

    let o = pmf(d, &["plan", "show", "plan.json", "--format", "markdown"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    snap!("show_markdown", stdout(d, &o));

    let o = pmf(
        d,
        &[
            "plan",
            "show",
            "plan.json",
            "--format",
            "json",
            "--action",
            "restrict",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let shown: serde_json::Value =
        serde_json::from_str(&text(&o.stdout)).expect("one JSON document");
    snap!(
        "show_json_restrict",
        redacted(d, &serde_json::to_string_pretty(&shown).unwrap())
    );
}

/// The totals `plan show` counts from the entries are the ones the plan
/// recorded, and its JSON lists every partner in plan order.
#[test]
fn plan_show_counts_what_the_plan_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fleet_plan(d);
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("plan.json")).unwrap()).unwrap();
    let o = pmf(d, &["plan", "show", "plan.json", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let shown: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    let ids = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&shown["partners"]), ids(&plan["entries"]));
    let counted = |list: &serde_json::Value| -> std::collections::BTreeMap<String, u64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["name"].as_str().unwrap().to_string(),
                    t["partners"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let recorded = |m: &serde_json::Value| -> std::collections::BTreeMap<String, u64> {
        m.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect()
    };
    let totals = &shown["totals"];
    assert_eq!(
        counted(&totals["by_action"]),
        recorded(&plan["totals"]["by_action"])
    );
    assert_eq!(
        counted(&totals["by_type"]),
        recorded(&plan["totals"]["by_type"])
    );
    assert_eq!(
        counted(&totals["by_band"]),
        recorded(&plan["totals"]["by_band"])
    );
    // Actions from the most severe.
    let order: Vec<&str> = totals["by_action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "restrict", "fallback", "throttle", "review", "monitor", "proceed", "none"
        ]
    );
    assert_eq!(
        shown["plan"]["hash"],
        blake3::hash(&std::fs::read(d.join("plan.json")).unwrap())
            .to_hex()
            .as_str()
    );
}

#[test]
fn plan_show_filters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fleet_plan(d);
    let o = pmf(
        d,
        &[
            "plan",
            "show",
            "plan.json",
            "--action",
            "restrict,fallback",
            "--type",
            "forced",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    snap!("show_human_action_type", stdout(d, &o));

    // A glob and an exact id; the table cut at two rows.
    let o = pmf(
        d,
        &[
            "plan",
            "show",
            "plan.json",
            "--partner",
            "p-01[0-4]",
            "--partner",
            "p-025",
            "--limit",
            "2",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    snap!("show_human_partner_limit", stdout(d, &o));

    let o = pmf(
        d,
        &[
            "plan",
            "show",
            "plan.json",
            "--type",
            "none",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    snap!("show_markdown_type_none", stdout(d, &o));
}

/// The human output of `pmf plan` is the plan as `plan show` shows it,
/// its first twenty partners.
#[test]
fn plan_prints_the_plan_for_a_reviewer() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = pmf(
        d,
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
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    snap!("plan_human", stdout(d, &o));
}

/// A second fleet plan after a change: the power ceiling raised and the
/// reliable band narrowed in the policy, p-001 given a target of its own,
/// p-036 gone, p-100 new, p-002 moved to the end of the partner file.
fn changed_plan(d: &Path) {
    let policy = std::fs::read_to_string(fleet("policy.pmf"))
        .unwrap()
        .replace("override ceiling power <= 7", "override ceiling power <= 9")
        .replace("band 75..=89 reliable", "band 82..=89 reliable")
        .replace("band 60..=74 vulnerable", "band 60..=81 vulnerable");
    std::fs::write(d.join("policy2.pmf"), policy).unwrap();
    let mut target: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet("target.json")).unwrap()).unwrap();
    target["partners"]["p-001"] = serde_json::json!({"version": "2.0.0"});
    std::fs::write(d.join("target2.json"), target.to_string()).unwrap();
    let mut partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let moved = partners.remove(1);
    let mut new = partners.pop().unwrap();
    assert_eq!(new["id"], "p-036");
    new["id"] = "p-100".into();
    partners.push(moved);
    partners.push(new);
    std::fs::write(
        d.join("partners2.json"),
        serde_json::to_string(&partners).unwrap(),
    )
    .unwrap();
    plan(
        d,
        "after.json",
        "policy2.pmf",
        "partners2.json",
        "target2.json",
    );
}

#[test]
fn plan_diff_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fleet_plan(d);
    changed_plan(d);
    let o = pmf(d, &["plan", "diff", "plan.json", "after.json"]);
    assert_eq!(code(&o), 1, "differences are exit 1: {}", text(&o.stderr));
    snap!("diff_human", stdout(d, &o));

    let o = pmf(
        d,
        &[
            "plan",
            "diff",
            "plan.json",
            "after.json",
            "--format",
            "markdown",
        ],
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    snap!("diff_markdown", stdout(d, &o));

    let o = pmf(
        d,
        &[
            "plan",
            "diff",
            "plan.json",
            "after.json",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 1, "{}", text(&o.stderr));
    let diff: serde_json::Value =
        serde_json::from_str(&text(&o.stdout)).expect("one JSON document");
    snap!(
        "diff_json",
        redacted(d, &serde_json::to_string_pretty(&diff).unwrap())
    );
    assert_eq!(diff["summary"]["changed"], 4);
    assert_eq!(diff["summary"]["added"], 1);
    assert_eq!(diff["summary"]["removed"], 1);
    // The moved partner is matched by id, not reported as removed and added.
    let statuses: Vec<(String, String)> = diff["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().into(),
                p["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        !statuses.iter().any(|(id, _)| id == "p-002"),
        "{statuses:?}"
    );
}

/// Plans that predict every partner alike are no difference, even made at
/// another time or with the partners in another order: exit 0.
#[test]
fn plan_diff_of_alike_plans_is_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fleet_plan(d);
    let mut partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    partners.reverse();
    std::fs::write(
        d.join("reversed.json"),
        serde_json::to_string(&partners).unwrap(),
    )
    .unwrap();
    plan(
        d,
        "again.json",
        &fleet("policy.pmf"),
        "reversed.json",
        &fleet("target.json"),
    );
    let o = pmf(d, &["plan", "diff", "plan.json", "again.json"]);
    assert_eq!(code(&o), 0, "{}{}", text(&o.stdout), text(&o.stderr));
    snap!("diff_human_alike", stdout(d, &o));
    let o = pmf(
        d,
        &["plan", "diff", "plan.json", "plan.json", "--format", "json"],
    );
    assert_eq!(code(&o), 0);
    let diff: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(diff["summary"]["differs"], false);
    assert_eq!(diff["partners"], serde_json::json!([]));
}

#[test]
fn what_is_not_a_plan_or_a_filter_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fleet_plan(d);
    let mut old: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("plan.json")).unwrap()).unwrap();
    old["format_version"] = 2.into();
    std::fs::write(d.join("old.json"), old.to_string()).unwrap();
    let target = fleet("target.json");
    let policy = fleet("policy.pmf");
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["plan", "show", "missing.json"],
            2,
            "pmf: cannot read `missing.json`: no such file or directory".into(),
        ),
        (
            vec!["plan", "show", "."],
            2,
            "pmf: cannot read `.`: it is a directory".into(),
        ),
        (
            vec!["plan", "show", &target],
            2,
            format!("pmf: `{target}` is not a plan (no `format_version`)"),
        ),
        (
            vec!["plan", "show", &policy, "--format", "json"],
            2,
            format!("pmf: `{policy}` is not a plan: expected value at line 1 column 1"),
        ),
        (
            vec!["plan", "show", "old.json"],
            2,
            "pmf: `old.json` has plan format 2, made by an older pmf; this pmf reads formats 3 to 5: plan again".into(),
        ),
        (
            vec!["plan", "diff", "plan.json", "missing.json"],
            2,
            "pmf: cannot read `missing.json`: no such file or directory".into(),
        ),
        (
            vec!["plan", "diff", &target, "plan.json", "--format", "json"],
            2,
            format!("pmf: `{target}` is not a plan (no `format_version`)"),
        ),
        (
            vec!["plan", "show", "plan.json", "--partner", "p-[0"],
            2,
            "pmf: bad --partner pattern `p-[0`: `[` is not closed by `]`".into(),
        ),
        (
            vec!["plan", "show", "plan.json", "--type", "sofft"],
            1,
            "pmf: no partner of `plan.json` has type `sofft` (its types: forced 8, guided 10, none 1, soft 17)".into(),
        ),
        (
            vec!["plan", "show", "plan.json", "--partner", "p-999", "--partner", "p-0*"],
            1,
            "pmf: no partner of `plan.json` matches `p-999`".into(),
        ),
    ];
    for (args, expected, message) in cases {
        let o = pmf(d, &args);
        assert_eq!(code(&o), expected, "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stderr).trim_end(), message, "{args:?}");
        if expected == 2 {
            assert_eq!(text(&o.stdout), "", "{args:?}: nothing on stdout");
        }
    }
    // An action that is not one is clap's usage error.
    let o = pmf(d, &["plan", "show", "plan.json", "--action", "bogus"]);
    assert_eq!(code(&o), 2);
    assert!(text(&o.stderr).contains("invalid value 'bogus' for '--action"));
}

/// A plan is a file anyone can edit: ids and reasons with control
/// characters are shown escaped, and Markdown cells cannot be broken out of.
#[test]
fn edited_plans_cannot_forge_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fleet_plan(d);
    let mut plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("plan.json")).unwrap()).unwrap();
    plan["entries"][0]["id"] = "p-\u{1b}[2J|<b>".into();
    plan["entries"][0]["predicted"]["reason"] = "ok\u{202e}\nfake line".into();
    std::fs::write(d.join("edited.json"), plan.to_string()).unwrap();
    let o = pmf(d, &["plan", "show", "edited.json", "--partner", "p-?*"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let shown = text(&o.stdout);
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
        "{shown}"
    );
    assert!(shown.contains("p-\\u{001b}[2J|<b>"), "{shown}");
    assert!(shown.contains("ok\\u{202e}\\u{000a}fake line"), "{shown}");
    let o = pmf(d, &["plan", "show", "edited.json", "--format", "markdown"]);
    let shown = text(&o.stdout);
    assert!(shown.contains("p-\\\\u{001b}\\[2J\\|&lt;b&gt;"), "{shown}");
    // JSON, of `show` and of `diff`: JSON's own escape (serde_json writes a
    // bidi override raw), reading back the very text.
    for args in [
        &["plan", "show", "edited.json", "--format", "json"][..],
        &[
            "plan",
            "diff",
            "plan.json",
            "edited.json",
            "--format",
            "json",
        ][..],
    ] {
        let o = pmf(d, args);
        let shown = text(&o.stdout);
        assert!(!shown.contains(['\u{1b}', '\u{202e}']), "{args:?}: {shown}");
        let doc: serde_json::Value = serde_json::from_str(&shown).unwrap();
        if args[1] == "show" {
            assert!(shown.contains("ok\\u202e\\nfake line"), "{shown}");
            assert!(doc.to_string().contains("ok\u{202e}\\nfake line"), "{doc}");
        }
    }
}

/// A plan larger than the reader's batches: counted whole, the table cut.
#[test]
fn large_plans_show_a_bounded_table() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let mut lines = String::new();
    for i in 0..3000 {
        let mut p = partners[i % partners.len()].clone();
        p["id"] = format!("q-{i:05}").into();
        lines.push_str(&p.to_string());
        lines.push('\n');
    }
    std::fs::write(d.join("many.ndjson"), lines).unwrap();
    plan(
        d,
        "many.json",
        &fleet("policy.pmf"),
        "many.ndjson",
        &fleet("target.json"),
    );
    let o = pmf(d, &["plan", "show", "many.json", "--limit", "5"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let shown = text(&o.stdout);
    assert!(shown.contains("\n3000 partners\n"), "{shown}");
    // The fleet's targets and metrics name none of these partners.
    assert!(
        shown.contains("not planned targets of 14 partners and metrics of 35 partners"),
        "{shown}"
    );
    // Title, count, what was not planned, four totals, a blank line, the
    // header and five rows.
    assert_eq!(shown.lines().count(), 8 + 1 + 5 + 1, "{shown}");
    assert!(shown.contains("… and 2995 more partners"), "{shown}");
    let o = pmf(d, &["plan", "diff", "many.json", "many.json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

/// On a terminal (a pseudo-terminal made by `script`), no line of the
/// output is wider than the terminal: tables are cut, lists and hints
/// broken between items and words.
#[test]
fn on_a_terminal_lines_never_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("`script` (util-linux) is not installed: no pseudo-terminal to test on");
        return;
    }
    fleet_plan(d);
    changed_plan(d);
    let pmf_bin = env!("CARGO_BIN_EXE_pmf");
    for args in [
        "plan show plan.json --limit 4",
        "plan diff plan.json after.json",
    ] {
        let o = std::process::Command::new("script")
            .args(["-qec", &format!("{pmf_bin} {args}"), "/dev/null"])
            .current_dir(d)
            .env("COLUMNS", "60")
            .env_remove("NO_COLOR")
            .output()
            .expect("run script");
        let shown = text(&o.stdout).replace('\r', "");
        assert!(shown.lines().count() > 5, "{args}: {shown}");
        for line in shown.lines() {
            assert!(
                line.chars().count() <= 60,
                "{args}: a line wider than 60 columns: {line:?}\n{shown}"
            );
        }
        assert!(shown.contains('…'), "{args}: something was cut: {shown}");
    }
}
