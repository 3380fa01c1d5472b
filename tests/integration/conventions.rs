//! The conventions users of other policy tools expect: shell completions,
//! `pmf init`, `pmf test --filter`, `--format json` on every command that
//! reports, and `--policy` naming the policy everywhere.

use std::path::Path;
use std::process::Output;

use super::runtime::{apply, code, fleet, planned, pmf, text};

/// `o`'s stdout with `dir` (as given and as the real path) replaced by `<DIR>`.
fn redacted(dir: &Path, o: &Output) -> String {
    let mut out = text(&o.stdout);
    if let Ok(real) = std::fs::canonicalize(dir) {
        out = out.replace(&real.display().to_string(), "<DIR>");
    }
    out.replace(&dir.display().to_string(), "<DIR>")
}

fn snapshot(name: &str, shown: &str) {
    insta::with_settings!({
        snapshot_path => "../snapshots/cli",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!(name, shown);
    });
}

/// The output parsed as the one JSON document it must be.
fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {}", text(&o.stdout)))
}

#[test]
fn completions_cover_every_subcommand_and_refuse_unknown_shells() {
    let here = Path::new(".");
    let o = pmf(here, &["completions", "bash"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let script = text(&o.stdout);
    for command in [
        "check",
        "explain",
        "fmt",
        "graph",
        "doc",
        "test",
        "plan",
        "apply",
        "keygen",
        "approve",
        "lineage",
        "rollback",
        "state",
        "review",
        "status",
        "schema",
        "stdlib",
        "lsp",
        "init",
        "completions",
    ] {
        assert!(
            script.contains(&format!("pmf,{command})")),
            "bash completions lack `{command}`"
        );
    }
    // A subcommand's own flags are completed too.
    assert!(script.contains("--filter"), "no --filter of pmf test");
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let o = pmf(here, &["completions", shell]);
        assert_eq!(code(&o), 0, "{shell}");
        assert!(text(&o.stdout).contains("rollback"), "{shell}");
    }
    let o = pmf(here, &["completions", "tcsh"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("possible values"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn init_makes_a_project_that_checks_tests_and_plans() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("Acme Fleet-2");
    let o = pmf(tmp.path(), &["init", "Acme Fleet-2"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    snapshot("init_human", &redacted(tmp.path(), &o));
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    assert_eq!(
        written,
        [
            "acme_fleet_2.pmf",
            "acme_fleet_2.test.pmf",
            "observed.json",
            "partners.json",
            "pmf.toml",
            "target.json"
        ]
    );
    let toml: toml::Table = std::fs::read_to_string(dir.join("pmf.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(toml["project"].is_table());
    // The commands it prints next all succeed, from the project's folder.
    let o = pmf(&dir, &["check", "--deny-warnings"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("checked 2 files: no problems"));
    let o = pmf(&dir, &["fmt", "--check"]);
    assert_eq!(
        code(&o),
        0,
        "the scaffold is formatted: {}",
        text(&o.stdout)
    );
    let o = pmf(&dir, &["test", "--format", "json"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    let doc = json(&o);
    assert_eq!(
        (doc["tests"].as_u64(), doc["failed"].as_u64()),
        (Some(3), Some(0))
    );
    let o = pmf(
        &dir,
        &[
            "plan",
            "--policy",
            "acme_fleet_2.pmf",
            "--partners",
            "partners.json",
            "--target",
            "target.json",
            "--observed",
            "observed.json",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["policy"]["name"], "acme_fleet_2");
    assert_eq!(doc["totals"]["partners"], 2);
    assert_eq!(doc["totals"]["by_action"]["restrict"], 1);
    assert!(dir.join("plan.json").is_file());
    // The policy's name and the project's folder may be chosen; JSON says
    // what was written.
    let o = pmf(
        tmp.path(),
        &["init", "other", "--name", "orbit", "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["policy"], "orbit");
    assert_eq!(doc["directory"], "other");
    assert_eq!(doc["files"][1], "orbit.pmf");
    assert_eq!(doc["next"][0], "cd other");
    let o = pmf(&tmp.path().join("other"), &["test", "--policy", "orbit"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
}

#[test]
fn init_never_overwrites_and_writes_nothing_on_a_clash() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("target.json"), "{}\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "mine\n").unwrap();
    let o = pmf(dir, &["init", ".", "--name", "fleet"]);
    assert_eq!(code(&o), 2);
    let err = text(&o.stderr);
    assert!(
        err.contains("`./target.json` already exists") && err.contains("nothing was written"),
        "{err}"
    );
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["notes.txt", "target.json"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("target.json")).unwrap(),
        "{}\n"
    );
    // Unrelated files are no clash.
    std::fs::remove_file(dir.join("target.json")).unwrap();
    let o = pmf(dir, &["init", "--name", "fleet"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(!text(&o.stdout).contains("cd "), "{}", text(&o.stdout));
    // A name that is no identifier, or the standard library's, is refused.
    let o = pmf(dir, &["init", "x", "--name", "9lives"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("such as `p_9lives`"),
        "{}",
        text(&o.stderr)
    );
    let o = pmf(dir, &["init", "y", "--name", "kwanus"]);
    assert_eq!(code(&o), 2);
    assert!(!dir.join("x").exists() && !dir.join("y").exists());
    // A file where the folder should be.
    let o = pmf(dir, &["init", "notes.txt"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("not a directory"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn init_names_the_policy_after_its_folder() {
    use pmf::cli::init::policy_name_from;
    assert_eq!(policy_name_from("Acme Fleet-2"), "acme_fleet_2");
    assert_eq!(policy_name_from("2024"), "p_2024");
    assert_eq!(policy_name_from("--"), "project");
    assert_eq!(policy_name_from("ñandú"), "and");
}

#[test]
fn test_filter_runs_the_tests_whose_name_contains_it() {
    let here = Path::new(".");
    let o = pmf(here, &["test", "examples/", "--filter", "restrict"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    snapshot("test_filter_human", &text(&o.stdout));
    let o = pmf(
        here,
        &[
            "test",
            "examples/",
            "--filter",
            "restrict",
            "--format",
            "json",
        ],
    );
    let doc = json(&o);
    let names: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["tests"].as_array().unwrap())
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.is_empty() && names.iter().all(|n| n.contains("restrict")),
        "{names:?}"
    );
    assert_eq!(doc["tests"].as_u64(), Some(names.len() as u64));
    assert!(doc["filtered_out"].as_u64().unwrap() > 0);
    assert_eq!(doc["coverage_complete"], false);
    // Partial coverage: --min-coverage is not enforced, and says so.
    let o = pmf(
        here,
        &[
            "test",
            "examples/",
            "--filter",
            "restrict",
            "--min-coverage",
            "100",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("note: --min-coverage is not enforced"));
    assert!(text(&o.stdout).contains("(partial: of the tests --filter kept)"));
    // A filter that keeps every test leaves coverage whole, and the gate on.
    let o = pmf(
        here,
        &[
            "test",
            "stdlib/",
            "--filter",
            "",
            "--min-coverage",
            "100",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stdout));
    let doc = json(&o);
    assert_eq!(
        (
            doc["filtered_out"].as_u64(),
            doc["coverage_complete"].as_bool()
        ),
        (Some(0), Some(true))
    );
    // A filter that keeps nothing: exit 1, saying so.
    let o = pmf(here, &["test", "examples/", "--filter", "no such test"]);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("no test name contains `no such test`")
            && text(&o.stderr).contains("nothing was run"),
        "{}",
        text(&o.stderr)
    );
    assert!(o.stdout.is_empty());
}

#[test]
fn every_command_names_the_policy_with_dash_dash_policy() {
    let here = Path::new(".");
    // graph and doc take the policy positionally, as before, or with
    // --policy (a file, a directory and a name among them).
    let positional = pmf(
        here,
        &["graph", "--format", "json", "examples/fleet/policy.pmf"],
    );
    assert_eq!(code(&positional), 0);
    for by in [
        vec!["--policy", "examples/fleet/policy.pmf"],
        vec!["--policy", "examples/fleet"],
        vec!["--policy", "examples", "fleet"],
        vec!["--policy", "examples", "--policy", "fleet"],
    ] {
        let mut args = vec!["graph", "--format", "json"];
        args.extend(&by);
        let o = pmf(here, &args);
        assert_eq!(code(&o), 0, "{by:?}: {}", text(&o.stderr));
        assert_eq!(o.stdout, positional.stdout, "{by:?}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("doc");
    let o = pmf(
        here,
        &[
            "doc",
            "--policy",
            "examples",
            "minimal",
            "-o",
            out.to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["policy"], "minimal");
    assert_eq!(
        doc["files"],
        serde_json::json!(["index.html", "policy.md", "flow.svg"])
    );
    assert!(out.join("policy.md").is_file());
    // Neither: a usage error.
    assert_eq!(code(&pmf(here, &["graph"])), 2);
    assert_eq!(code(&pmf(here, &["doc"])), 2);
    // pmf test: --policy adds files and directories, and a name keeps the
    // tests of that policy.
    let o = pmf(
        here,
        &["test", "--policy", "examples", "fleet", "--format", "json"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    let files: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, ["examples/fleet/policy.test.pmf"]);
    let o = pmf(here, &["test", "--policy", "examples", "flet"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o.stderr).contains("no tests of a policy named `flet`"),
        "{}",
        text(&o.stderr)
    );
    // schema takes names too.
    let o = pmf(
        here,
        &["schema", "target", "--policy", "examples", "minimal"],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
}

#[test]
fn explain_fmt_and_keygen_report_in_json() {
    let here = Path::new(".");
    let o = pmf(here, &["explain", "PMF303", "--format", "json"]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["code"], "PMF303");
    assert_eq!(doc["title"], "PMF303: health bands leave a gap");
    assert_eq!(doc["severity"], "error");
    assert!(doc["text"].as_str().unwrap().starts_with("# PMF303"));
    let o = pmf(here, &["explain", "--list", "--format", "json"]);
    let doc = json(&o);
    assert_eq!(
        doc["codes"].as_array().unwrap().len(),
        pmf::diagnostics::Code::ALL.len()
    );
    assert!(doc["codes"][0]["summary"].is_string());

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::write(dir.join("m.pmf"), "policy m   extends kwanus\n").unwrap();
    std::fs::write(dir.join("ok.pmf"), "policy ok extends kwanus\n").unwrap();
    let o = pmf(dir, &["fmt", "--check", "--format", "json"]);
    assert_eq!(code(&o), 1);
    let doc = json(&o);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["files"], 2);
    assert_eq!(doc["changed"], serde_json::json!(["./m.pmf"]));
    assert_eq!(doc["written"], false);
    let o = pmf(dir, &["fmt", "--format", "json"]);
    assert_eq!(code(&o), 0);
    assert_eq!(json(&o)["written"], true);
    let o = pmf(dir, &["fmt", "--check", "--format", "json"]);
    assert_eq!(
        (code(&o), json(&o)["changed"].as_array().map(Vec::len)),
        (0, Some(0))
    );
    assert_eq!(code(&pmf(dir, &["fmt", "--diff", "--format", "json"])), 2);

    let o = pmf(
        dir,
        &[
            "keygen",
            "--authority",
            "TSC",
            "-o",
            "tsc.key",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("tsc.key")).unwrap()).unwrap();
    assert_eq!(doc["authority"], "TSC");
    assert_eq!(doc["key_file"], "tsc.key");
    assert_eq!(
        doc["public_key"].as_str().unwrap(),
        format!("ed25519:{}", key["public_key"].as_str().unwrap())
    );
    assert_eq!(
        doc["policy_line"].as_str().unwrap(),
        format!("key TSC \"{}\"", doc["public_key"].as_str().unwrap())
    );
}

#[test]
fn approve_review_rollback_and_state_report_in_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    planned(dir);
    let o = pmf(
        dir,
        &[
            "approve",
            "plan.json",
            "--key",
            "SCO.key",
            "--yes",
            "-o",
            "sco.json",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    let hash = blake3::hash(&std::fs::read(dir.join("plan.json")).unwrap())
        .to_hex()
        .to_string();
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["authority"], "SCO");
    assert_eq!(doc["plan_hash"], hash);
    assert_eq!(doc["approvals_file"], "sco.json");
    assert_eq!(doc["approvals"], 1);
    assert!(doc["public_key"].is_string());

    let o = apply(dir, &["--approvals", "approvals.json"]);
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let policy = fleet("policy.pmf");
    let o = pmf(
        dir,
        &[
            "review", "promote", "p-021", "--key", "TSC.key", "--policy", &policy, "--reason",
            "CAB-7", "--format", "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["decision"], "promoted");
    assert_eq!(doc["authority"], "TSC");
    assert_eq!(doc["partner"], "p-021");
    assert_eq!(doc["plan_hash"], hash);

    let o = pmf(
        dir,
        &[
            "rollback", "p-001", "--policy", &policy, "-o", "rb.json", "--format", "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(
        (doc["from"].as_str(), doc["to"].as_str()),
        (Some("1.6.0"), Some("1.4.0"))
    );

    let o = pmf(dir, &["state", "unlock", "--format", "json"]);
    assert_eq!(code(&o), 0);
    let doc = json(&o);
    assert_eq!(
        (doc["locked"].as_bool(), doc["holder"].is_null()),
        (Some(false), true)
    );

    let o = pmf(
        dir,
        &[
            "state",
            "import",
            &fleet("partners.json"),
            "--policy",
            &policy,
            "--store",
            "other.db",
            "--format",
            "json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let doc = json(&o);
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["imported"], 36);
    assert_eq!(doc["replaced"], 0);
    assert!(doc["store"].as_str().unwrap().ends_with("other.db"));
}
