//! The `pmf` binary: exit codes, formats and colour.

use std::path::Path;
use std::process::{Command, Output};

fn pmf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmf"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("run pmf")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

const CLEAN: &str = "policy clean extends kwanus\n\noverride ceiling power <= 7\n";
const BROKEN: &str = "policy broken extends kwanus\n\noverride ceiling power <= \"high\"\n";
const WARNS: &str = "policy warns extends kwanus\n\nauthority IDLE \"Idle Board\"\n";

#[test]
fn clean_policy_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "clean.pmf", CLEAN);
    let o = pmf(&["check", &f]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("checked 1 file: no problems"));
}

#[test]
fn errors_exit_one_warnings_only_under_deny() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.pmf", BROKEN);
    assert_eq!(code(&pmf(&["check", &broken])), 1);
    let warns = write(dir.path(), "warns.pmf", WARNS);
    assert_eq!(code(&pmf(&["check", &warns])), 0);
    assert_eq!(code(&pmf(&["check", "--deny-warnings", &warns])), 1);
}

#[test]
fn usage_and_io_problems_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(code(&pmf(&["check", "/definitely/not/here.pmf"])), 2);
    assert_eq!(code(&pmf(&["check", "--format", "yaml", "x.pmf"])), 2);
    assert_eq!(code(&pmf(&["frobnicate"])), 2);
    assert_eq!(code(&pmf(&["explain", "PMF999"])), 2);
    let bad = dir.path().join("latin1.pmf");
    std::fs::write(&bad, b"policy p\nrite detection \"caf\xe9\"\n").unwrap();
    let o = pmf(&["check", &bad.display().to_string()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not UTF-8"));
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(
        code(&pmf(&["check", &empty.path().display().to_string()])),
        2
    );
}

/// `pmf check --format json DIR`: its exit code and its one JSON document.
fn check_json(dir: &std::path::Path) -> (i32, serde_json::Value) {
    let o = pmf(&["check", "--format", "json", &dir.display().to_string()]);
    let doc = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    (code(&o), doc)
}

#[test]
fn directories_are_searched_recursively() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
    write(&dir.path().join("a"), "one.pmf", CLEAN);
    write(&dir.path().join("a/b"), "two.pmf", BROKEN);
    write(&dir.path().join("a/b"), "notes.txt", "not a policy");
    let (exit, doc) = check_json(dir.path());
    assert_eq!(exit, 1);
    assert_eq!(doc["files"], 2);
}

/// A folder reached twice through links (a link back up the tree, a
/// second link to a folder) is walked once: the walk ends, and each file
/// is found once (before, `pmf check .` and the language server's
/// workspace scan never ended on a loop of links).
#[test]
fn links_that_loop_are_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    std::fs::create_dir_all(a.join("b")).unwrap();
    write(&a, "one.pmf", CLEAN);
    write(&a.join("b"), "two.pmf", BROKEN);
    std::os::unix::fs::symlink("..", a.join("b/up")).unwrap();
    std::os::unix::fs::symlink("../a", a.join("again")).unwrap();
    std::os::unix::fs::symlink(".", a.join("b/here")).unwrap();
    let (exit, doc) = check_json(dir.path());
    assert_eq!(exit, 1);
    assert_eq!(doc["files"], 2, "{doc}");
    assert_eq!(doc["errors"], 1, "{doc}");
}

#[test]
fn json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "broken.pmf", BROKEN);
    let o = pmf(&["check", "--format", "json", &f]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("one JSON document");
    assert_eq!(doc["format_version"], 1);
    assert_eq!(doc["files"], 1);
    assert_eq!(doc["errors"], 1);
    assert_eq!(doc["warnings"], 0);
    let d = &doc["diagnostics"][0];
    let keys: Vec<&str> = d.as_object().unwrap().keys().map(String::as_str).collect();
    let mut want = vec![
        "file",
        "severity",
        "code",
        "message",
        "line",
        "column",
        "end_line",
        "end_column",
        "help",
        "labels",
    ];
    want.sort_unstable();
    let mut got = keys.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(d["code"], "PMF803");
    assert_eq!(d["severity"], "error");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(3), Some(27))
    );
    assert_eq!(
        (d["end_line"].as_u64(), d["end_column"].as_u64()),
        (Some(3), Some(33))
    );
}

#[test]
fn json_columns_count_characters() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "u.pmf",
        "policy u extends kwanus\n\noverride /* ñandú → */ ceiling power <= \"x\"\n",
    );
    let o = pmf(&["check", "--format", "json", &f]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    // `"x"` starts at character 41 of line 3 (byte 45: ñ, ú and → take 4 more bytes).
    let d = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "PMF803")
        .expect("PMF803");
    assert_eq!(d["column"], 41);
}

#[test]
fn github_format_prints_workflow_commands() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "broken.pmf", BROKEN);
    let o = pmf(&["check", "--format", "github", &f]);
    let out = stdout(&o);
    let line = out.lines().next().expect("one line");
    assert!(
        line.starts_with(&format!("::error file={f},line=3,col=27,title=PMF803::")),
        "{line}"
    );
    let w = write(dir.path(), "warns.pmf", WARNS);
    let out = stdout(&pmf(&["check", "--format", "github", &w]));
    assert!(out.starts_with("::warning file="), "{out}");
}

#[test]
fn colour_only_when_asked_or_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(dir.path(), "broken.pmf", BROKEN);
    // Not a terminal: no escape codes.
    assert!(!stdout(&pmf(&["check", &f])).contains('\u{1b}'));
    assert!(stdout(&pmf(&["--color", "always", "check", &f])).contains('\u{1b}'));
    let o = Command::new(env!("CARGO_BIN_EXE_pmf"))
        .args(["check", &f])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&o.stdout).contains('\u{1b}'));
}

#[test]
fn explain_prints_the_page_and_lists_codes() {
    let o = pmf(&["explain", "PMF303"]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).starts_with("# PMF303: health bands leave a gap"));
    let o = pmf(&["explain", "pmf303"]);
    assert_eq!(code(&o), 0);
    let list = stdout(&pmf(&["explain", "--list"]));
    assert_eq!(list.lines().count(), pmf::diagnostics::Code::ALL.len());
    let o = pmf(&["explain", "PMF330"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("did you mean"));
}

#[test]
fn human_output_snapshot() {
    let o = pmf(&["check", "tests/fixtures/diagnostics/PMF303.pmf"]);
    assert_eq!(code(&o), 1);
    insta::with_settings!({
        snapshot_path => "../snapshots/cli",
        prepend_module_to_snapshot => false,
        omit_expression => true,
    }, {
        insta::assert_snapshot!("check_human_pmf303", stdout(&o));
    });
}

#[test]
fn sarif_and_junit_reports() {
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.pmf", BROKEN);
    let clean = write(dir.path(), "clean.pmf", CLEAN);
    let o = pmf(&["check", "--format", "sarif", &broken, &clean]);
    assert_eq!(code(&o), 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("SARIF is JSON");
    assert_eq!(doc["version"], "2.1.0");
    let run = &doc["runs"][0];
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        pmf::diagnostics::Code::ALL.len()
    );
    let result = &run["results"][0];
    assert_eq!(result["ruleId"], "PMF803");
    assert_eq!(result["level"], "error");
    let region = &result["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_u64(), region["startColumn"].as_u64()),
        (Some(3), Some(27))
    );
    let rule = &run["tool"]["driver"]["rules"][result["ruleIndex"].as_u64().unwrap() as usize];
    assert_eq!(rule["id"], "PMF803");

    // A slip's certain fix travels as a SARIF fix.
    let slip = write(
        dir.path(),
        "slip.pmf",
        "policy slip extends kwanus\n\noverride ceiling power =< 7\n",
    );
    let o = pmf(&["check", "--format", "sarif", &slip]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("SARIF is JSON");
    let result = &doc["runs"][0]["results"][0];
    assert_eq!(
        result["message"]["text"]
            .as_str()
            .map(|t| t.starts_with("expected `<=`, found `=<`")),
        Some(true),
        "{result}"
    );
    let change = &result["fixes"][0]["artifactChanges"][0];
    assert_eq!(change["replacements"][0]["insertedContent"]["text"], "<=");
    assert_eq!(
        change["replacements"][0]["deletedRegion"],
        serde_json::json!({"startLine": 3, "startColumn": 24, "endLine": 3, "endColumn": 26})
    );

    let o = pmf(&["check", "--format", "junit", &broken, &clean]);
    assert_eq!(code(&o), 1);
    let xml = stdout(&o);
    assert!(xml.starts_with("<?xml"));
    assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
    assert!(xml.contains("type=\"PMF803\""), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 2);
}

/// `fmt --diff` shows a policy's text as `check` does: an escape sequence
/// in a comment (a pull request's file, printed in a CI log) is shown as
/// `?`, never obeyed; before, the diff carried it to the terminal as it was.
#[test]
fn fmt_diff_never_obeys_what_the_policy_holds() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = "policy m extends kwanus\n// hi \u{1b}[2J \u{202e}there\nceiling   power <= 7\n";
    let f = write(dir.path(), "m.pmf", hostile);
    let o = pmf(&["fmt", "--diff", &f]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
    assert!(
        stdout(&o).contains(" // hi ?[2J \u{fffd}there\n"),
        "{}",
        stdout(&o)
    );
    assert!(!stdout(&o).contains(['\u{1b}', '\u{202e}']));
}

#[test]
fn fmt_check_diff_and_write() {
    let dir = tempfile::tempdir().unwrap();
    let messy = "policy m   extends kwanus\n\n\n\noverride ceiling power<=7 // tight\n";
    let f = write(dir.path(), "m.pmf", messy);
    let o = pmf(&["fmt", "--check", &f]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("m.pmf"));
    let o = pmf(&["fmt", "--diff", &f]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("+override ceiling power <= 7 // tight"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        messy,
        "--check and --diff change nothing"
    );
    assert_eq!(code(&pmf(&["fmt", &f])), 0);
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        "policy m extends kwanus\n\noverride ceiling power <= 7 // tight\n"
    );
    assert_eq!(code(&pmf(&["fmt", "--check", &f])), 0);
}

#[test]
fn graph_formats() {
    for format in ["mermaid", "dot", "json"] {
        let o = pmf(&["graph", "--format", format, "stdlib/kwanus.pmf"]);
        assert_eq!(code(&o), 0);
        insta::with_settings!({snapshot_path => "../snapshots/cli", prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(format!("graph_{format}"), stdout(&o));
        });
    }
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.pmf", BROKEN);
    assert_eq!(code(&pmf(&["graph", &broken])), 1);
}

#[test]
fn pmf_toml_sets_levels_and_rejects_unknown_codes() {
    let dir = tempfile::tempdir().unwrap();
    let warns = write(dir.path(), "warns.pmf", WARNS);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pmf"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // Warnings only: exit 0.
    assert_eq!(code(&run(&["check", &warns])), 0);
    // The nearest pmf.toml raises PMF902 to an error.
    std::fs::write(dir.path().join("pmf.toml"), "[lints]\nPMF902 = \"error\"\n").unwrap();
    let o = run(&["check", "--format", "json", &warns]);
    assert_eq!(code(&o), 1);
    assert!(stdout(&o).contains("\"severity\": \"error\""));
    // Off: nothing reported.
    std::fs::write(dir.path().join("pmf.toml"), "[lints]\nPMF902 = \"off\"\n").unwrap();
    let o = run(&["check", &warns]);
    assert_eq!(code(&o), 0);
    assert!(stdout(&o).contains("no problems"), "{}", stdout(&o));
    // An unknown code is itself an error, pointing into pmf.toml.
    std::fs::write(dir.path().join("pmf.toml"), "[lints]\nPMF9O2 = \"off\"\n").unwrap();
    let o = run(&["check", "--format", "json", &warns]);
    assert_eq!(code(&o), 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let d = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["code"] == "PMF904")
        .expect("PMF904");
    assert!(d["file"].as_str().unwrap().ends_with("pmf.toml"));
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(2), Some(1))
    );
    // A table or a setting pmf does not read is an error at its key, with
    // the setting it most likely meant; it cannot be turned off.
    std::fs::write(
        dir.path().join("pmf.toml"),
        "[lints]\nPMF907 = \"off\"\n\n[turst]\nroot_policy = \"ab\"\n\n[project]\nexclud = []\n",
    )
    .unwrap();
    let o = run(&["check", "--format", "json", &warns]);
    assert_eq!(code(&o), 1);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let unknown: Vec<(u64, u64, String)> = doc["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["code"] == "PMF907")
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["help"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        unknown,
        [
            (4, 2, "did you mean `trust`?".to_string()),
            (8, 1, "did you mean `exclude`?".to_string())
        ],
        "{}",
        stdout(&o)
    );
    // A level that is not error|warning|off, or broken TOML: a usage error.
    std::fs::write(dir.path().join("pmf.toml"), "[lints]\nPMF902 = \"loud\"\n").unwrap();
    assert_eq!(code(&run(&["check", &warns])), 2);
}

/// A policy's words are text in its documents: markup in a rite (a pull
/// request anyone may send) never becomes HTML in the published Markdown or
/// HTML, where a static site generator would run it.
#[test]
fn doc_shows_markup_in_a_policy_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.pmf");
    std::fs::write(
        &policy,
        "policy xss extends kwanus\n\noverride rite detection \"The <script>alert(1)</script> threads & <img src=x onerror=alert(2)>\"\n",
    )
    .unwrap();
    let out = dir.path().join("doc");
    let o = pmf(&["doc", policy.to_str().unwrap(), "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    for file in ["policy.md", "index.html"] {
        let text = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(
            text.contains("The &lt;script&gt;alert") && text.contains("threads &amp; &lt;img"),
            "{file}: {text}"
        );
        assert!(
            !text.contains("<script>alert") && !text.contains("<img src=x"),
            "{file}"
        );
    }
}

/// The files `pmf doc` names itself in its output directory are replaced
/// only when they are files: a link planted under one of those names (in
/// a directory others can write to) had the file it names replaced with
/// the document; a pipe there would have been written to.
#[test]
fn doc_never_writes_through_a_link_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("doc");
    std::fs::create_dir(&out).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "kept").unwrap();
    std::os::unix::fs::symlink(&victim, out.join("policy.md")).unwrap();
    let doc = || {
        pmf(&[
            "doc",
            "examples/fleet/policy.pmf",
            "-o",
            out.to_str().unwrap(),
        ])
    };
    let o = doc();
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("policy.md` is a symbolic link: `pmf doc` writes its own files into")
            && said.contains("nothing was written"),
        "{said}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "kept");
    assert!(!out.join("index.html").exists(), "nothing is written");
    std::fs::remove_file(out.join("policy.md")).unwrap();
    let fifo = out.join("flow.svg");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let o = doc();
    assert_eq!(code(&o), 2, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("flow.svg` is not a regular file"));
    // Files there (an earlier document) are replaced.
    std::fs::remove_file(&fifo).unwrap();
    assert_eq!(code(&doc()), 0);
    assert_eq!(code(&doc()), 0);
    assert!(
        std::fs::read_to_string(out.join("policy.md"))
            .unwrap()
            .contains("## Rites")
    );
}

#[test]
fn doc_writes_html_markdown_and_the_flow() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("doc");
    let o = pmf(&[
        "doc",
        "examples/fleet/policy.pmf",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("policy.md")).unwrap();
    for section in [
        "## Migration categories",
        "## Governance",
        "## Approval keys",
        "## Migration types",
        "## The flow",
        "## Migration health",
        "## Compatibility rules",
        "## Validation",
        "## Ceilings",
        "## Rites",
    ] {
        assert!(md.contains(section), "no {section}");
    }
    // The seed's health table, and links back to source lines.
    assert!(
        md.contains("| 90–100 | Stable | proceed | Optimal Transition |"),
        "{md}"
    );
    assert!(md.contains("policy.pmf#L"));
    assert!(md.contains("kwanus (stdlib) line"));
    // The hash a board pins as the project's trust root: the one plans
    // under this policy carry.
    let o = pmf(&[
        "doc",
        "examples/fleet/policy.pmf",
        "-o",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let hash = serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["policy_hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(hash.len(), 64);
    assert!(md.contains(&format!("Policy hash `{hash}`")), "{md}");
    let o = pmf(&[
        "plan",
        "--policy",
        "examples/fleet/policy.pmf",
        "--partners",
        "examples/fleet/partners.json",
        "--target",
        "examples/fleet/target.json",
        "-o",
        dir.path().join("plan.json").to_str().unwrap(),
        "--store",
        dir.path().join("none.db").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let plan = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    assert!(plan.contains(&format!("\"hash\":\"{hash}\"")));
    // The fleet's keys, with who holds them.
    assert!(
        md.contains("| TSC | ed25519:") && md.contains("| demo key, Technical Steering Council |"),
        "{md}"
    );
    let svg = std::fs::read_to_string(out.join("flow.svg")).unwrap();
    assert_eq!(svg.matches("class=\"phase\"").count(), 7);
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("The threads tremble. Change approaches."));
    // A policy with errors gets no document.
    let broken = write(dir.path(), "broken.pmf", BROKEN);
    assert_eq!(
        code(&pmf(&[
            "doc",
            &broken,
            "-o",
            dir.path().join("x").to_str().unwrap()
        ])),
        1
    );
}

#[test]
fn pmf_test_runs_policy_tests_with_coverage() {
    let o = pmf(&["test", "stdlib/", "--coverage", "--min-coverage", "100"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stdout(&o).contains("coverage 100%"), "{}", stdout(&o));
    let o = pmf(&["test", "--format", "json", "stdlib/", "examples/"]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(doc["failed"], 0);
    assert!(doc["tests"].as_u64().unwrap() >= 20);

    // A failing test names the expectation, what happened, and where.
    let dir = tempfile::tempdir().unwrap();
    let f = write(
        dir.path(),
        "t.pmf",
        "policy t extends kwanus\n\ntest \"wrong type\" {\n  partner {\n    id: \"p\"\n    version: 1.0.0\n    structure: []\n    capabilities: []\n    permissions: []\n    workflows: []\n    intelligence: { model: \"m\", level: 1 }\n    strands: []\n    power: 1\n    metrics: { stability: 95, compatibility: 95, sustainability: 95, ecosystem: 95 }\n  }\n  target { version: 2.0.0 }\n  expect type soft\n}\n",
    );
    let o = pmf(&["test", &f]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains(":17:3: expected type `soft`, got `guided`"),
        "{}",
        stdout(&o)
    );
    let o = pmf(&["test", "--format", "junit", &f]);
    assert!(
        stdout(&o).contains("<failure message=\"expected type `soft`, got `guided`\""),
        "{}",
        stdout(&o)
    );
    // Coverage below the threshold fails.
    let o = pmf(&["test", &f, "--min-coverage", "90"]);
    assert_eq!(code(&o), 1);
    // No tests at all is a usage problem.
    assert_eq!(code(&pmf(&["test", "examples/fleet/policy.pmf"])), 2);
}

#[test]
fn stdlib_prints_the_embedded_standard_library_and_diagnostics_point_to_it() {
    let o = pmf(&["stdlib"]);
    assert_eq!(code(&o), 0);
    let source = std::fs::read_to_string("stdlib/kwanus.pmf").unwrap();
    assert_eq!(stdout(&o), source);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kwanus.pmf");
    let o = pmf(&["stdlib", "-o", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), source);
    // The written copy checks like the embedded one.
    let o = pmf(&["check", out.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    // A diagnostic that points into the standard library says how to read it.
    let o = pmf(&["check", "tests/fixtures/diagnostics/PMF702.pmf"]);
    let shown = stdout(&o);
    assert!(shown.contains("<stdlib>/kwanus.pmf"), "{shown}");
    assert!(shown.contains("`pmf stdlib` prints it"), "{shown}");
    let o = pmf(&["check", &write(dir.path(), "clean.pmf", CLEAN)]);
    assert!(!stdout(&o).contains("pmf stdlib"));
    let o = pmf(&[
        "stdlib",
        "-o",
        dir.path().join("no/such/dir/k.pmf").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
}

#[test]
fn schema_describes_the_input_files_of_a_policy() {
    let policy = "examples/fleet/policy.pmf";
    for kind in ["partners", "target", "observed"] {
        let o = pmf(&["schema", kind, "--policy", policy]);
        assert_eq!(code(&o), 0, "{kind}");
        let schema: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
        assert_eq!(
            schema["$schema"],
            "https://json-schema.org/draft/2020-12/schema"
        );
        insta::with_settings!({snapshot_path => "../snapshots/cli", prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!(format!("schema_fleet_{kind}"), stdout(&o));
        });
    }
    // The partner record: every field required, the fleet's own included.
    let o = pmf(&["schema", "partners", "--policy", policy]);
    let schema: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let partner = &schema["$defs"]["partner"];
    let required: Vec<&str> = partner["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(required.contains(&"region") && required.contains(&"version"));
    assert_eq!(partner["additionalProperties"], false);
    // docs/inputs.md shows the minimal example's schema as pmf prints it.
    let docs = std::fs::read_to_string("docs/inputs.md").unwrap();
    let shown = docs
        .split("```json schema-of-minimal-observed\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("docs/inputs.md shows the schema");
    let o = pmf(&["schema", "observed", "--policy", "examples/minimal.pmf"]);
    assert_eq!(format!("{shown}\n"), stdout(&o));
    // A policy with errors is exit 1; a missing kind is a usage error.
    let dir = tempfile::tempdir().unwrap();
    let broken = write(dir.path(), "broken.pmf", BROKEN);
    assert_eq!(code(&pmf(&["schema", "target", "--policy", &broken])), 1);
    assert_eq!(code(&pmf(&["schema", "--policy", policy])), 2);
}

/// Whether `v` satisfies `s`, for the part of JSON Schema `pmf schema`
/// writes (`pattern` aside).
fn satisfies(root: &serde_json::Value, s: &serde_json::Value, v: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    if let Some(r) = s["$ref"].as_str() {
        let name = r.trim_start_matches("#/$defs/");
        return satisfies(root, &root["$defs"][name], v);
    }
    if let Some(any) = s["anyOf"].as_array() {
        return any.iter().any(|s| satisfies(root, s, v));
    }
    match s["type"].as_str() {
        None => true,
        Some("null") => v.is_null(),
        Some("boolean") => v.is_boolean(),
        Some("string") => v.is_string(),
        Some("number") => v.as_f64().is_some_and(|n| {
            s["minimum"].as_f64().is_none_or(|m| n >= m)
                && s["maximum"].as_f64().is_none_or(|m| n <= m)
        }),
        Some("array") => v.as_array().is_some_and(|items| {
            items.len() as u64 >= s["minItems"].as_u64().unwrap_or(0)
                && items.iter().all(|i| satisfies(root, &s["items"], i))
        }),
        Some("object") => v.as_object().is_some_and(|o| {
            let props = s["properties"].as_object();
            let required = s["required"].as_array().cloned().unwrap_or_default();
            o.len() as u64 >= s["minProperties"].as_u64().unwrap_or(0)
                && required.iter().all(|k| o.contains_key(k.as_str().unwrap()))
                && o.iter().all(|(k, x)| match props.and_then(|p| p.get(k)) {
                    Some(p) => satisfies(root, p, x),
                    None => match &s["additionalProperties"] {
                        J::Bool(allowed) => *allowed,
                        J::Null => true,
                        extra => satisfies(root, extra, x),
                    },
                })
        }),
        Some(other) => panic!("type {other} not handled"),
    }
}

#[test]
fn the_fleet_inputs_satisfy_their_schemas_and_mistakes_do_not() {
    let policy = "examples/fleet/policy.pmf";
    let schema = |kind: &str| -> serde_json::Value {
        serde_json::from_str(&stdout(&pmf(&["schema", kind, "--policy", policy]))).unwrap()
    };
    let file = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(format!("examples/fleet/{name}")).unwrap())
            .unwrap()
    };
    for (kind, name) in [
        ("partners", "partners.json"),
        ("target", "target.json"),
        ("observed", "observed.json"),
    ] {
        let s = schema(kind);
        let mut v = file(name);
        assert!(satisfies(&s, &s, &v), "{name}");
        // One partner with an unknown field, or a metric of the wrong type:
        // refused by the schema as by pmf.
        match kind {
            "partners" => v[0]["regoin"] = "eu".into(),
            "target" => v["all"]["version"] = 2.into(),
            _ => v["p-001"]["metrics"]["stability"] = "high".into(),
        }
        assert!(!satisfies(&s, &s, &v), "{name} changed");
    }
    // One partner alone is an NDJSON line of the partners file.
    let s = schema("partners");
    assert!(satisfies(&s, &s, &file("partners.json")[0]));
    assert!(!satisfies(&s, &s, &serde_json::json!([])));
}

#[test]
fn doc_links_reach_the_sources_from_any_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("p")).unwrap();
    std::fs::copy("examples/minimal.pmf", work.join("p/minimal.pmf")).unwrap();
    for out in ["../doc", "./out/../doc2", "p/../../doc3"] {
        let o = Command::new(env!("CARGO_BIN_EXE_pmf"))
            .args(["doc", "p/minimal.pmf", "-o", out])
            .current_dir(&work)
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{out}: {}", String::from_utf8_lossy(&o.stderr));
        let written = work.join(out);
        let md = std::fs::read_to_string(written.join("policy.md")).unwrap();
        let hrefs: Vec<&str> = md
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
            .filter(|h| h.contains(".pmf#L"))
            .collect();
        assert!(!hrefs.is_empty(), "{out}: no source link");
        for href in hrefs {
            let file = href.split('#').next().unwrap();
            assert!(written.join(file).is_file(), "{out}: {href} leads nowhere");
        }
    }
}

#[test]
fn the_policy_run_is_never_a_test_file_and_a_name_picks_one() {
    let plan = |policy: &[&str]| {
        let mut args = vec!["plan"];
        for p in policy {
            args.extend(["--policy", p]);
        }
        args.extend([
            "--partners",
            "examples/fleet/partners.json",
            "--target",
            "examples/fleet/target.json",
            "-o",
            "/dev/null",
        ]);
        pmf(&args)
    };
    // The fleet's directory holds the policy and its tests (which extend
    // it): the policy is planned, not its tests.
    let o = plan(&["examples/fleet"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("with policy `fleet`"), "{}", stdout(&o));
    // Several policies: refused, naming them and how to pick one.
    let o = plan(&["examples"]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(err.contains("several policies given"), "{err}");
    assert!(!err.contains(".test.pmf"), "{err}");
    assert!(err.contains("`--policy fleet`"), "{err}");
    // A name picks one; a name that is not there says what is.
    let o = plan(&["examples", "fleet"]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout(&o).contains("with policy `fleet`"));
    let o = plan(&["examples", "fleeet"]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("no policy named `fleeet`") && err.contains("did you mean `fleet`?"),
        "{err}"
    );
    // pmf doc of a policy and its tests documents the policy.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("doc");
    let o = pmf(&[
        "doc",
        "examples/minimal.pmf",
        "examples/minimal.test.pmf",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", String::from_utf8_lossy(&o.stderr));
    let md = std::fs::read_to_string(out.join("policy.md")).unwrap();
    assert!(md.starts_with("# Migration policy `minimal`\n"), "{md}");
}

#[test]
fn a_test_policy_is_never_suggested_as_its_own_parent() {
    let dir = tempfile::tempdir().unwrap();
    let tests = dir.path().join("minimal.test.pmf");
    std::fs::copy("examples/minimal.test.pmf", &tests).unwrap();
    let o = pmf(&["check", tests.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    let out = stdout(&o);
    assert!(out.contains("unknown parent policy `minimal`"), "{out}");
    assert!(!out.contains("did you mean `minimal_tests`"), "{out}");
}

#[test]
fn projects_keep_their_names_apart_and_exclude_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Two projects that each name a policy `fleet`, and a fixture folder
    // of broken files that the outer project excludes.
    for p in ["a", "b"] {
        std::fs::create_dir_all(root.join(p)).unwrap();
        std::fs::write(root.join(p).join("pmf.toml"), "").unwrap();
        write(
            &root.join(p),
            "fleet.pmf",
            "policy fleet extends kwanus\n\noverride ceiling power <= 7\n",
        );
    }
    std::fs::create_dir_all(root.join("fixtures/deep")).unwrap();
    write(&root.join("fixtures/deep"), "broken.pmf", BROKEN);
    std::fs::write(
        root.join("pmf.toml"),
        "[project]\nexclude = [\"fixtures\"]\n",
    )
    .unwrap();
    let o = pmf(&["check", root.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).contains("checked 2 files: no problems"),
        "{}",
        stdout(&o)
    );
    // Without the projects, the two `fleet`s collide.
    std::fs::remove_file(root.join("a/pmf.toml")).unwrap();
    std::fs::remove_file(root.join("b/pmf.toml")).unwrap();
    let o = pmf(&["check", root.to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    assert!(
        stdout(&o).contains("declared by two files"),
        "{}",
        stdout(&o)
    );
    // An excluded folder named on the command line is checked.
    let o = pmf(&["check", root.join("fixtures").to_str().unwrap()]);
    assert_eq!(code(&o), 1);
    // A bad `exclude` is a usage error naming the file.
    std::fs::write(root.join("pmf.toml"), "[project]\nexclude = \"fixtures\"\n").unwrap();
    let o = pmf(&["check", root.to_str().unwrap()]);
    assert_eq!(code(&o), 2);
    assert!(String::from_utf8_lossy(&o.stderr).contains("must be a list of folders"));
}

#[test]
fn the_repository_root_checks_as_one_project() {
    // `pmf check .` in the repository: the stdlib and the examples, not the
    // broken fixtures nor the editors' samples (pmf.toml excludes them).
    let o = pmf(&["check", "."]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(
        stdout(&o).contains(": 0 errors,") || stdout(&o).contains("no problems"),
        "{}",
        stdout(&o)
    );
}
