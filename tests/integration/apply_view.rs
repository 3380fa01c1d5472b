//! `pmf apply`'s human output: a line per partner, ending with why, for a
//! few partners; a summary of outcomes by reason and the partners that
//! need attention for many; lines cut to a terminal's width, never
//! wrapped, and nothing cut in a pipe.

use std::path::Path;
use std::process::Output;

use super::runtime::{code, fleet, planned, pmf, text};

/// `o`'s stdout with the plan's hash (as printed, 12 digits) replaced.
fn redacted(dir: &Path, o: &Output) -> String {
    let bytes = std::fs::read(dir.join("plan.json")).unwrap();
    let hash = blake3::hash(&bytes).to_hex().to_string();
    text(&o.stdout).replace(&hash[..12], "<plan hash>")
}

fn apply_human(dir: &Path, extra: &[&str]) -> Output {
    let observed = fleet("observed.json");
    let mut args = vec![
        "apply",
        "plan.json",
        "--approvals",
        "approvals.json",
        "--observed",
        observed.as_str(),
    ];
    args.extend_from_slice(extra);
    pmf(dir, &args)
}

/// The fleet copied `copies` times over (`n` partners, ids `q-00000` on),
/// with its target and observed metrics renamed alike, planned into
/// `dir/plan.json` and approved by TSC and ERC.
fn large_fleet(dir: &Path, n: usize) {
    let read = |f: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(fleet(f)).unwrap()).unwrap()
    };
    let partners = read("partners.json");
    let partners = partners.as_array().unwrap();
    let target = read("target.json");
    let observed = read("observed.json");
    let mut many = Vec::new();
    let mut own = serde_json::Map::new();
    let mut seen = serde_json::Map::new();
    for i in 0..n {
        let mut p = partners[i % partners.len()].clone();
        let old = p["id"].as_str().unwrap().to_string();
        let id = format!("q-{i:05}");
        p["id"] = id.clone().into();
        many.push(p);
        if let Some(t) = target["partners"].get(&old) {
            own.insert(id.clone(), t.clone());
        }
        if let Some(m) = observed.get(&old) {
            seen.insert(id, m.clone());
        }
    }
    let write = |f: &str, v: serde_json::Value| std::fs::write(dir.join(f), v.to_string()).unwrap();
    write("many.json", serde_json::Value::Array(many));
    write(
        "target.json",
        serde_json::json!({"all": target["all"], "partners": own}),
    );
    write("observed.json", serde_json::Value::Object(seen));
    let o = pmf(
        dir,
        &[
            "plan",
            "--policy",
            &fleet("policy.pmf"),
            "--partners",
            "many.json",
            "--target",
            "target.json",
            "--observed",
            "observed.json",
            "-o",
            "plan.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    for a in ["TSC", "ERC"] {
        std::fs::copy(
            fleet(&format!("keys/{a}.key")),
            dir.join(format!("{a}.key")),
        )
        .unwrap();
        let o = pmf(
            dir,
            &[
                "approve",
                "plan.json",
                "--key",
                &format!("{a}.key"),
                "--yes",
            ],
        );
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    }
}

fn many_apply(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "apply",
        "plan.json",
        "--approvals",
        "approvals.json",
        "--observed",
        "observed.json",
    ];
    args.extend_from_slice(extra);
    pmf(dir, &args)
}

fn snapshot(name: &str, shown: &str) {
    insta::with_settings!({snapshot_path => "../snapshots/apply_view", prepend_module_to_snapshot => false, omit_expression => true}, {
        insta::assert_snapshot!(name, shown);
    });
}

/// Partner lines: what `pmf apply` printed for each partner (not the
/// phases `-v` adds, nor the totals).
fn partner_lines(shown: &str) -> Vec<&str> {
    shown
        .lines()
        .filter(|l| {
            ["✓ ", "= ", "↩ ", "✗ ", "⏸ "]
                .iter()
                .any(|m| l.starts_with(m))
        })
        .collect()
}

#[test]
fn a_few_partners_get_a_line_each_that_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    planned(d);
    let o = apply_human(d, &[]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let shown = redacted(d, &o);
    assert_eq!(partner_lines(&shown).len(), 36, "{shown}");
    // No phases without -v.
    assert!(!shown.contains("    detection"), "{shown}");
    snapshot("fleet_human", &shown);
    // A re-run says what was done before and what still waits.
    let again = apply_human(d, &[]);
    assert_eq!(code(&again), 4, "{}", text(&again.stderr));
    snapshot("fleet_human_rerun", &redacted(d, &again));
}

#[test]
fn verbose_shows_every_phase_of_every_partner() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    planned(d);
    let o = apply_human(d, &["-v"]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let shown = text(&o.stdout);
    assert_eq!(partner_lines(&shown).len(), 36, "{shown}");
    // Every partner that moved entered detection.
    assert_eq!(shown.matches("\n    detection ").count(), 35, "{shown}");
    assert!(
        shown.contains("✗ p-019          1.4.0 → 1.6.0 soft: restricted: the target breaks the ceiling on `power`\n"),
        "{shown}"
    );
}

#[test]
fn many_partners_are_summarised_by_outcome_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    large_fleet(d, 300);
    let o = many_apply(d, &[]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let shown = redacted(d, &o);
    // Stderr is not a terminal here: no progress bar.
    assert!(
        !text(&o.stderr).contains("partners applied"),
        "{}",
        text(&o.stderr)
    );
    // The partners that need attention, at most 20 of them.
    assert_eq!(partner_lines(&shown).len(), 20, "{shown}");
    snapshot("many_human", &shown);

    // JSON is unchanged but for a reason on every partner line.
    let json = many_apply(d, &["--format", "json"]);
    let partners: Vec<serde_json::Value> = text(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "partner")
        .collect();
    assert_eq!(partners.len(), 300);
    assert!(
        partners.iter().all(|p| p["reason"].is_string()),
        "{partners:?}"
    );
    // -v lists every partner, however many.
    let all = many_apply(d, &["-v"]);
    assert_eq!(partner_lines(&text(&all.stdout)).len(), 300);
}

/// The JSON reason of each partner is the reason of its human line.
#[test]
fn json_partner_lines_carry_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    planned(d);
    let o = apply_human(d, &["--format", "json"]);
    let reasons: std::collections::BTreeMap<String, String> = text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "partner")
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(reasons.len(), 36);
    assert_eq!(reasons["p-001"], "completed");
    assert_eq!(reasons["p-005"], "health 66 is in band `vulnerable`");
    assert_eq!(reasons["p-014"], "awaiting approval by SCO");
    assert_eq!(reasons["p-019"], "the target breaks the ceiling on `power`");
    assert_eq!(reasons["p-024"], "already at its target");
}

/// On a terminal (a pseudo-terminal made by `script`) with 40 columns, no
/// line is wider than the terminal; in a pipe, nothing is cut.
#[test]
fn on_a_narrow_terminal_lines_are_cut_not_wrapped() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("`script` (util-linux) is not installed: no pseudo-terminal to test on");
        return;
    }
    let pmf_bin = env!("CARGO_BIN_EXE_pmf");
    let few = tempfile::tempdir().unwrap();
    planned(few.path());
    let many = tempfile::tempdir().unwrap();
    large_fleet(many.path(), 120);
    let observed = fleet("observed.json");
    for (dir, observed) in [
        (few.path(), observed.as_str()),
        (many.path(), "observed.json"),
    ] {
        let args = format!("apply plan.json --approvals approvals.json --observed {observed}");
        let o = std::process::Command::new("script")
            .args(["-qec", &format!("{pmf_bin} {args}"), "/dev/null"])
            .current_dir(dir)
            .env("COLUMNS", "40")
            .env_remove("NO_COLOR")
            .output()
            .expect("run script");
        let shown = text(&o.stdout).replace('\r', "");
        // The progress bar (on the terminal's stderr) is redrawn after
        // erasing its line: each drawing must fit too.
        let lines: Vec<&str> = shown
            .lines()
            .flat_map(|l| l.split("\u{1b}[2K"))
            .map(str::trim_end)
            .filter(|l| !l.starts_with("pmf: made the operator key"))
            .collect();
        assert!(lines.len() > 5, "{shown}");
        for line in &lines {
            assert!(
                line.chars().count() <= 40,
                "a line wider than 40 columns: {line:?}\n{shown}"
            );
        }
        assert!(shown.contains('…'), "something was cut: {shown}");
        if dir == many.path() {
            assert!(shown.contains("/120 applied"), "a progress bar: {shown}");
        }
    }
    // In a pipe, COLUMNS cuts nothing.
    let o = pmf(
        few.path(),
        &["apply", "plan.json", "--approvals", "approvals.json"],
    );
    let shown = text(&o.stdout);
    assert!(
        shown.lines().any(|l| l.chars().count() > 40) && !shown.contains('…'),
        "{shown}"
    );
}
