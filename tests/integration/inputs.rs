//! Bad inputs to `pmf plan` (one test per class of bad input: exit code,
//! message, nothing left behind) and `pmf check` at scale and with files
//! it cannot read.

use std::path::Path;
use std::process::{Command, Output};

use super::runtime::{code, fleet, pmf, pmf_piped, text};

/// The fleet's partners as NDJSON lines.
fn fleet_lines() -> Vec<String> {
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    all.iter().map(|p| p.to_string()).collect()
}

/// Plan in `dir` with the fleet's files, `partners`, `target` and
/// `observed` replaced when given (names in `dir`).
fn plan(dir: &Path, partners: &str, target: Option<&str>, observed: Option<&str>) -> Output {
    let policy = fleet("policy.pmf");
    let target = target.map_or_else(|| fleet("target.json"), str::to_string);
    let observed = observed.map_or_else(|| fleet("observed.json"), str::to_string);
    pmf(
        dir,
        &[
            "plan",
            "--policy",
            &policy,
            "--partners",
            partners,
            "--target",
            &target,
            "--observed",
            &observed,
            "-o",
            "plan.json",
            "--store",
            "none.db",
        ],
    )
}

/// The files in `dir` (no plan, no temporary file may be left by a failure).
fn leftovers(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("plan"))
        .collect();
    names.sort();
    names
}

/// Plan with one bad input written as `name`; it must fail with exit 1,
/// leave nothing behind, and its message is returned for a snapshot.
fn refused(name: &str, bytes: &[u8], slot: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    let o = match slot {
        "partners" => plan(dir.path(), name, None, None),
        "target" => {
            std::fs::write(dir.path().join("p.ndjson"), fleet_lines().join("\n")).unwrap();
            plan(dir.path(), "p.ndjson", Some(name), None)
        }
        _ => {
            std::fs::write(dir.path().join("p.ndjson"), fleet_lines().join("\n")).unwrap();
            plan(dir.path(), "p.ndjson", None, Some(name))
        }
    };
    let err = text(&o.stderr);
    assert_eq!(code(&o), 1, "{name}: {err}{}", text(&o.stdout));
    assert!(
        leftovers(dir.path()).is_empty(),
        "{name}: {:?}",
        leftovers(dir.path())
    );
    assert!(err.contains(name), "{name}: the file is not named: {err}");
    err
}

/// NDJSON of the fleet with line `n` (1-based) replaced by `line`.
fn with_line(n: usize, line: &str) -> Vec<u8> {
    let mut lines = fleet_lines();
    lines[n - 1] = line.to_string();
    (lines.join("\n") + "\n").into_bytes()
}

/// The fleet's line `n` with `from` replaced by `to`.
fn edited(n: usize, from: &str, to: &str) -> String {
    let line = &fleet_lines()[n - 1];
    assert!(line.contains(from), "{line}");
    line.replacen(from, to, 1)
}

macro_rules! snapshot {
    ($name:expr, $value:expr) => {
        insta::with_settings!({snapshot_path => "../snapshots/inputs", prepend_module_to_snapshot => false, omit_expression => true}, {
            insta::assert_snapshot!($name, $value);
        });
    };
}

#[test]
fn empty_partner_inputs_are_refused() {
    snapshot!("empty_file", refused("p.ndjson", b"", "partners"));
    snapshot!("blank_file", refused("p.ndjson", b"  \n\n\t\n", "partners"));
    snapshot!("empty_array", refused("p.json", b" [ ]\n", "partners"));
}

#[test]
fn bad_ids_are_refused() {
    let cases = [
        ("id_empty", edited(3, "\"id\":\"p-003\"", "\"id\":\"\"")),
        ("id_blank", edited(3, "\"id\":\"p-003\"", "\"id\":\"  \"")),
        (
            "id_padded",
            edited(3, "\"id\":\"p-003\"", "\"id\":\"p-003 \""),
        ),
        (
            "id_terminal_escapes",
            edited(
                3,
                "\"id\":\"p-003\"",
                "\"id\":\"p-3\\n\\u2713 p-evil completed\\u001b[2K\"",
            ),
        ),
        (
            "id_bidi_override",
            edited(3, "\"id\":\"p-003\"", "\"id\":\"p-\u{202e}300\""),
        ),
        (
            "id_c1_control",
            edited(3, "\"id\":\"p-003\"", "\"id\":\"p-\u{85}003\""),
        ),
    ];
    for (name, line) in cases {
        let err = refused("p.ndjson", &with_line(3, &line), "partners");
        assert!(
            err.contains("line 3") && err.contains("field `id`"),
            "{err}"
        );
        snapshot!(name, err);
    }
}

#[test]
fn duplicate_keys_are_refused_at_any_level() {
    // In a partner: at the top and inside `metrics`.
    let top = fleet_lines()[2].trim_end_matches('}').to_string() + ",\"id\":\"p-999\"}";
    snapshot!(
        "duplicate_key_partner",
        refused("p.ndjson", &with_line(3, &top), "partners")
    );
    let nested = edited(3, "\"stability\":", "\"stability\":1,\"stability\":");
    snapshot!(
        "duplicate_key_partner_nested",
        refused("p.ndjson", &with_line(3, &nested), "partners")
    );
    // In a target: a partner given twice, and a field given twice in `all`.
    snapshot!(
        "duplicate_key_target",
        refused(
            "t.json",
            br#"{"partners": {"p-001": {"version": "2.0.0"}, "p-001": {"version": "3.0.0"}}}"#,
            "target"
        )
    );
    snapshot!(
        "duplicate_key_target_all",
        refused(
            "t.json",
            b"{\"all\": {\"version\": \"1.6.0\",\n  \"version\": \"9.0.0\"}}",
            "target"
        )
    );
    // In observed metrics: a partner twice, and a metric twice.
    snapshot!(
        "duplicate_key_observed",
        refused(
            "o.json",
            br#"{"p-001": {"metrics": {"stability": 1}}, "p-001": {"metrics": {"stability": 99}}}"#,
            "observed"
        )
    );
    snapshot!(
        "duplicate_key_observed_nested",
        refused(
            "o.json",
            br#"{"p-001": {"metrics": {"stability": 1, "stability": 99}}}"#,
            "observed"
        )
    );
}

#[test]
fn bad_ids_as_keys_of_targets_and_observed_are_refused() {
    snapshot!(
        "bad_id_target",
        refused(
            "t.json",
            b"{\"partners\": {\"\": {\"version\": \"2.0.0\"}, \"a\\u001b[31m\": {}}}",
            "target"
        )
    );
    snapshot!(
        "bad_id_observed",
        refused("o.json", b"{\" \": {\"power\": 1}}", "observed")
    );
}

#[test]
fn every_bad_record_is_reported_up_to_twenty_then_counted() {
    // 30 bad records of different kinds, and a duplicate id.
    let mut lines = fleet_lines();
    for (i, line) in lines.iter_mut().enumerate().take(30) {
        *line = match i % 3 {
            0 => line.replacen("\"power\":", "\"power\":\"high\",\"_\":", 1),
            1 => line.replacen("\"id\":\"", "\"id\":\"\\u0007", 1),
            _ => "{not json".to_string(),
        };
    }
    let dup = lines[33].clone();
    lines.push(dup);
    let err = refused("p.ndjson", (lines.join("\n") + "\n").as_bytes(), "partners");
    let reported = err
        .lines()
        .filter(|l| l.contains("p.ndjson, line "))
        .count();
    assert_eq!(reported, 20, "{err}");
    assert!(err.contains("11 more bad records not shown"), "{err}");
    snapshot!("many_bad_records", err);
    // Fewer than the limit: all of them, the duplicate id last.
    let mut lines = fleet_lines();
    lines[1] = "[]".into();
    lines[4] = lines[4].replacen("\"region\":", "\"_\":", 1);
    let dup = lines[7].clone();
    lines.push(dup);
    let err = refused("p.ndjson", (lines.join("\n") + "\n").as_bytes(), "partners");
    snapshot!("three_bad_records", err);
}

#[test]
fn duplicate_ids_are_all_reported() {
    let mut lines = fleet_lines();
    let (a, b) = (lines[1].clone(), lines[2].clone());
    lines.extend([a.clone(), b, a]);
    let err = refused(
        "p.json",
        format!("[{}]", lines.join(",\n")).as_bytes(),
        "partners",
    );
    assert_eq!(err.matches("duplicate partner id").count(), 3, "{err}");
    snapshot!("duplicate_ids", err);
}

/// Run `pmf` in `dir` and return its output and its peak resident memory
/// in bytes (from `wait4`).
#[cfg(target_os = "linux")]
#[allow(clippy::zombie_processes)] // reaped by `wait4`, which also gives its peak memory
fn run_measured(dir: &Path, args: &[&str]) -> (i32, String, u64) {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmf"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run pmf");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let mut status = 0;
    // SAFETY: `rusage` is plain data, filled in by `wait4` for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child spawned above, which nothing else waits for.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, err, usage.ru_maxrss as u64 * 1024)
}

#[test]
#[cfg(target_os = "linux")]
fn a_line_without_end_fails_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    let policy = fleet("policy.pmf");
    let target = fleet("target.json");
    let args = |partners: &'static str| {
        [
            "plan",
            "--policy",
            &policy,
            "--partners",
            partners,
            "--target",
            &target,
            "-o",
            "plan.json",
            "--store",
            "none.db",
        ]
        .map(str::to_string)
    };
    // 20 MiB of a partner's text and no newline, and 1 GiB of zeros (a
    // sparse file: no disk used) as `/dev/zero` gives them.
    let mut long = fleet_lines()[0].clone();
    while long.len() < 20 << 20 {
        long.push(' ');
    }
    std::fs::write(dir.path().join("long.ndjson"), &long).unwrap();
    let zeros = std::fs::File::create(dir.path().join("zeros.ndjson")).unwrap();
    zeros.set_len(1 << 30).unwrap();
    for name in ["long.ndjson", "zeros.ndjson"] {
        let args = args(name);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, err, peak) = run_measured(dir.path(), &args);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains(&format!("{name}, line 1: the line is longer than 16 MiB")),
            "{err}"
        );
        // The limit, a block and the program itself: far below the 1 GiB
        // file (about 73 MiB alone; seen above 200 MiB on a machine loaded
        // by parallel builds, and once at 442 MiB with two fuzz campaigns
        // beside the tests, so the bound leaves room while still failing a
        // reader that takes the whole file).
        assert!(peak < 640 << 20, "{name}: peak memory {} MiB", peak >> 20);
        assert!(
            leftovers(dir.path()).is_empty(),
            "{:?}",
            leftovers(dir.path())
        );
    }
    // A long line among good ones is a bad record like any other.
    let mut lines = fleet_lines();
    lines[1] = format!("{}{}", " ".repeat(17 << 20), lines[1]);
    std::fs::write(dir.path().join("one.ndjson"), lines.join("\n")).unwrap();
    let o = plan(dir.path(), "one.ndjson", None, None);
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("one.ndjson, line 2: the line is longer than 16 MiB"),
        "{}",
        text(&o.stderr)
    );
    assert!(leftovers(dir.path()).is_empty());
}

#[test]
fn target_and_observed_from_dev_zero_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.ndjson"), fleet_lines().join("\n")).unwrap();
    for (target, observed) in [(Some("/dev/zero"), None), (None, Some("/dev/zero"))] {
        let o = plan(dir.path(), "p.ndjson", target, observed);
        assert_eq!(code(&o), 1, "{}", text(&o.stderr));
        assert!(
            text(&o.stderr)
                .contains("/dev/zero, line 1, column 1: not valid JSON: expected a JSON object"),
            "{}",
            text(&o.stderr)
        );
        assert!(leftovers(dir.path()).is_empty());
    }
}

#[test]
fn unreadable_inputs_are_io_errors_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("adir")).unwrap();
    std::fs::write(dir.path().join("p.ndjson"), fleet_lines().join("\n")).unwrap();
    for (partners, target) in [
        ("adir", None),
        ("missing.ndjson", None),
        ("p.ndjson", Some("adir")),
    ] {
        let o = plan(dir.path(), partners, target, None);
        assert_eq!(code(&o), 2, "{}", text(&o.stderr));
        let named = target.unwrap_or(partners);
        assert!(
            text(&o.stderr).contains(&format!("cannot read `{named}`")),
            "{}",
            text(&o.stderr)
        );
        assert!(leftovers(dir.path()).is_empty());
    }
}

// ---- pmf check ----

const BROKEN: &str = "policy broken extends kwanus\n\noverride ceiling power <= \"high\"\n";

fn check_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.pmf"), BROKEN).unwrap();
    std::fs::write(
        dir.path().join("b.pmf"),
        b"policy b\nrite detection \"caf\xe9\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.pmf"),
        BROKEN.replace("broken", "broken_too"),
    )
    .unwrap();
    dir
}

#[test]
fn an_unreadable_file_is_one_diagnostic_among_the_others() {
    let dir = check_dir();
    for format in ["json", "sarif", "junit", "github", "human"] {
        let o = pmf(dir.path(), &["check", "--format", format, "."]);
        assert_eq!(code(&o), 2, "{format}");
        let out = text(&o.stdout);
        assert!(
            text(&o.stderr).contains("`./b.pmf` is not UTF-8 text (invalid byte at offset 28)"),
            "{format}: {}",
            text(&o.stderr)
        );
        assert!(out.contains("PMF005"), "{format}: {out}");
        // The other files' diagnostics are all there.
        assert!(
            out.contains("a.pmf") && out.contains("c.pmf"),
            "{format}: {out}"
        );
        match format {
            "json" => {
                let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!(doc["files"], 3);
                let codes: Vec<&str> = doc["diagnostics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["code"].as_str().unwrap())
                    .collect();
                assert!(codes.contains(&"PMF005") && codes.len() >= 3, "{codes:?}");
                snapshot!("check_unreadable_json", out);
            }
            "sarif" => {
                let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert!(doc["runs"][0]["results"].as_array().unwrap().len() >= 3);
            }
            "junit" => assert!(out.contains("tests=\"3\" failures=\"3\""), "{out}"),
            "github" => assert!(out.contains("::error file=./b.pmf,line=1,col=1,title=PMF005")),
            _ => assert!(out.contains("checked 3 files"), "{out}"),
        }
    }
}

/// `n` rites for phases the flow does not have: one error per line.
fn many_errors(n: usize) -> String {
    let mut text = String::from("policy h extends kwanus\n");
    for i in 0..n {
        text.push_str(&format!("rite r{i} \"x\"\n"));
    }
    text
}

#[test]
fn many_diagnostics_render_with_their_places() {
    let dir = tempfile::tempdir().unwrap();
    let n = 3000;
    std::fs::write(dir.path().join("many.pmf"), many_errors(n)).unwrap();
    // And thousands on one long line, with characters of several bytes.
    let codes = vec!["X"; 3000].join(", ");
    std::fs::write(
        dir.path().join("long.pmf"),
        format!("policy l extends kwanus\n// pmf-allow é→ {codes}: why\nceiling version < 9.0.0\n"),
    )
    .unwrap();
    let o = pmf(
        dir.path(),
        &["check", "--format", "json", "many.pmf", "long.pmf"],
    );
    assert_eq!(code(&o), 1);
    let doc: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    let diags = doc["diagnostics"].as_array().unwrap();
    let in_file = |f: &str| diags.iter().filter(|d| d["file"] == f).collect::<Vec<_>>();
    let many = in_file("many.pmf");
    assert_eq!(many.len(), n);
    for (i, d) in many.iter().enumerate() {
        assert_eq!(d["line"], i + 2, "{d}");
    }
    let long = in_file("long.pmf");
    assert!(long.len() >= 3000, "{}", long.len());
    // Each unknown `X` in place: columns count characters (`é→` are two).
    let columns: Vec<u64> = long
        .iter()
        .filter(|d| {
            d["line"] == 2 && d["end_column"].as_u64() == d["column"].as_u64().map(|c| c + 1)
        })
        .map(|d| d["column"].as_u64().unwrap())
        .collect();
    assert_eq!(columns.len(), 3000, "{long:?}");
    for (i, c) in columns.iter().enumerate() {
        assert_eq!(*c, 17 + 3 * i as u64);
    }
    // Every format renders every diagnostic.
    let human = pmf(dir.path(), &["check", "--format", "human", "many.pmf"]);
    assert_eq!(text(&human.stdout).matches("PMF104").count(), n);
    let github = pmf(dir.path(), &["check", "--format", "github", "many.pmf"]);
    assert_eq!(text(&github.stdout).lines().count(), n);
    let last = text(&github.stdout).lines().last().unwrap().to_string();
    assert!(last.contains(&format!("line={}", n + 1)), "{last}");
}

/// The entries of plan file `path`, as JSON.
fn plan_entries(path: &Path) -> Vec<serde_json::Value> {
    let plan: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    plan["entries"].as_array().unwrap().clone()
}

#[test]
fn per_partner_targets_and_observed_metrics_from_pipes_plan_as_from_files() {
    let dir = tempfile::tempdir().unwrap();
    // Every partner its own target, besides the one for all.
    let partners: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(fleet("partners.json")).unwrap()).unwrap();
    let mut own = serde_json::Map::new();
    for (i, p) in partners.iter().enumerate() {
        let id = p["id"].as_str().unwrap().to_string();
        own.insert(
            id,
            serde_json::json!({"version": format!("{}.0.0", 1 + i % 3)}),
        );
    }
    let target = serde_json::json!({"all": {"version": "1.6.0"}, "partners": own});
    std::fs::write(
        dir.path().join("t.json"),
        serde_json::to_string_pretty(&target).unwrap(),
    )
    .unwrap();
    let o = plan(dir.path(), &fleet("partners.json"), Some("t.json"), None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let from_files = plan_entries(&dir.path().join("plan.json"));
    assert_eq!(from_files.len(), partners.len());
    assert!(from_files.iter().all(|e| e.get("target").is_some()));
    // The same target file through a pipe, then the observed metrics.
    for slot in ["--target", "--observed"] {
        let (target, observed) = match slot {
            "--target" => ("/dev/stdin".to_string(), fleet("observed.json")),
            _ => (
                dir.path().join("t.json").display().to_string(),
                "/dev/stdin".into(),
            ),
        };
        let piped = match slot {
            "--target" => std::fs::read(dir.path().join("t.json")).unwrap(),
            _ => std::fs::read(fleet("observed.json")).unwrap(),
        };
        // A real pipe (not a file redirected): read once, spooled.
        let o = pmf_piped(
            dir.path(),
            &[
                "plan",
                "--policy",
                &fleet("policy.pmf"),
                "--partners",
                &fleet("partners.json"),
                "--target",
                &target,
                "--observed",
                &observed,
                "-o",
                "piped.json",
                "--store",
                "none.db",
            ],
            piped,
        );
        assert_eq!(code(&o), 0, "{slot}: {}", text(&o.stderr));
        assert_eq!(
            plan_entries(&dir.path().join("piped.json")),
            from_files,
            "{slot}"
        );
    }
}

#[test]
fn a_byte_order_mark_is_skipped_in_every_input() {
    let dir = tempfile::tempdir().unwrap();
    let o = plan(dir.path(), &fleet("partners.json"), None, None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let expected = plan_entries(&dir.path().join("plan.json"));
    let bom = |name: &str, bytes: &[u8]| {
        let mut with = b"\xEF\xBB\xBF".to_vec();
        with.extend_from_slice(bytes);
        std::fs::write(dir.path().join(name), with).unwrap();
        name.to_string()
    };
    let array = bom("p.json", &std::fs::read(fleet("partners.json")).unwrap());
    let lines = bom("p.ndjson", fleet_lines().join("\n").as_bytes());
    let target = bom("t.json", &std::fs::read(fleet("target.json")).unwrap());
    let observed = bom("o.json", &std::fs::read(fleet("observed.json")).unwrap());
    for (partners, target, observed) in [
        (array.as_str(), None, None),
        (lines.as_str(), None, None),
        (
            array.as_str(),
            Some(target.as_str()),
            Some(observed.as_str()),
        ),
    ] {
        let o = plan(dir.path(), partners, target, observed);
        assert_eq!(code(&o), 0, "{partners}: {}", text(&o.stderr));
        assert_eq!(plan_entries(&dir.path().join("plan.json")), expected);
    }
    // Columns count from after the mark.
    std::fs::write(dir.path().join("bad.json"), b"\xEF\xBB\xBF{\"p-001\" 1}").unwrap();
    let o = plan(dir.path(), &fleet("partners.json"), None, Some("bad.json"));
    assert_eq!(code(&o), 1);
    assert!(
        text(&o.stderr).contains("bad.json, line 1, column 10"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn a_partner_target_refines_the_one_for_all_and_a_ceiling_restricts_it() {
    let dir = tempfile::tempdir().unwrap();
    // p-001 asks for more power than the fleet's ceiling (power <= 7);
    // p-002 refines only its power: the version comes from `all`.
    std::fs::write(
        dir.path().join("t.json"),
        r#"{"all": {"version": "1.6.0"}, "partners": {"p-001": {"power": 9}, "p-002": {"power": 3}}}"#,
    )
    .unwrap();
    let o = plan(dir.path(), &fleet("partners.json"), Some("t.json"), None);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    let entries = plan_entries(&dir.path().join("plan.json"));
    let entry = |id: &str| entries.iter().find(|e| e["id"] == id).unwrap().clone();
    let (p1, p2) = (entry("p-001"), entry("p-002"));
    assert_eq!(
        p2["target"],
        serde_json::json!({"power": 3.0, "version": "1.6.0"})
    );
    assert_eq!(p2["to"], "1.6.0");
    assert_eq!(
        p1["target"],
        serde_json::json!({"power": 9.0, "version": "1.6.0"})
    );
    assert_eq!(p1["predicted"]["action"], "restrict");
    assert_eq!(
        p1["predicted"]["reason"],
        "the target breaks the ceiling on `power`"
    );
    // Applied, p-001 stays where it is: restricted, power and version kept.
    for a in ["TSC", "ERC", "SCO"] {
        let key = fleet(&format!("keys/{a}.key"));
        let o = pmf(
            dir.path(),
            &["approve", "plan.json", "--key", &key, "--yes"],
        );
        assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    }
    let o = pmf(dir.path(), &["apply", "plan.json", "--format", "json"]);
    // 4: other partners of the fleet wait for review on their observed
    // metrics (a restriction alone is 3).
    assert_eq!(code(&o), 4, "{}", text(&o.stderr));
    let restricted = text(&o.stdout).lines().any(|l| {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        v["event"] == "partner" && v["id"] == "p-001" && v["outcome"] == "restricted"
    });
    assert!(restricted, "{}", text(&o.stdout));
    let o = pmf(dir.path(), &["state", "export"]);
    let states: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let p1 = states.iter().find(|s| s["id"] == "p-001").unwrap();
    assert_eq!(
        (p1["version"].as_str(), p1["power"].as_f64()),
        (Some("1.4.0"), Some(5.0))
    );
    let p2 = states.iter().find(|s| s["id"] == "p-002").unwrap();
    assert_eq!(p2["power"].as_f64(), Some(3.0));
}

/// A target names a partner to change: one for a partner the partner file
/// does not hold (a misspelt id) is refused, unless the plan is of a part
/// of the fleet (`--subset`), where it is left out and named; metrics of
/// partners not planned are left out and named.
#[test]
fn targets_and_metrics_of_partners_not_planned_are_named() {
    let target = b"{\"partners\": {\"p-001\": {\"version\": \"1.6.0\"}, \"p-0O2\": {\"version\": \"2.0.0\"}}}";
    snapshot!(
        "target_of_a_partner_not_planned",
        refused("t.json", target, "target")
    );

    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("p.ndjson"), fleet_lines().join("\n")).unwrap();
    std::fs::write(dir.join("t.json"), target).unwrap();
    let mut observed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet("observed.json")).unwrap()).unwrap();
    for id in ["p-9001", "p-9002"] {
        observed[id] = serde_json::json!({"metrics": {"stability": 1}});
    }
    std::fs::write(dir.join("o.json"), observed.to_string()).unwrap();
    let policy = fleet("policy.pmf");
    let args = [
        "plan",
        "--policy",
        &policy,
        "--partners",
        "p.ndjson",
        "--target",
        "t.json",
        "--observed",
        "o.json",
        "--store",
        "none.db",
        "--format",
        "json",
        "--subset",
    ];
    let o = pmf(dir, &args);
    let err = text(&o.stderr);
    assert_eq!(code(&o), 0, "{err}");
    assert!(
        err.contains(
            "`t.json` has a target for 1 partner not in the partner file (`p-0O2`), not planned"
        ),
        "{err}"
    );
    assert!(
        err.contains("`o.json` has metrics for 2 partners not in the partner file (`p-9001`, `p-9002`), not planned"),
        "{err}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        summary["not_planned"],
        serde_json::json!({"targets": 1, "observed": 2})
    );
    let plan = std::fs::read_to_string(dir.join("plan.json")).unwrap();
    assert!(!plan.contains("p-0O2") && !plan.contains("p-9001"));
    // The plan records what was left out, and its reviewers see it.
    let left_out = "targets of 1 partner and metrics of 2 partners the partner file does not hold";
    let o = pmf(dir, &["plan", "show", "plan.json"]);
    assert!(
        text(&o.stdout).contains(&format!("not planned {left_out}")),
        "{}",
        text(&o.stdout)
    );
    let o = pmf(dir, &["plan", "show", "plan.json", "--format", "json"]);
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        shown["plan"]["not_planned"],
        serde_json::json!({"targets": 1, "observed": 2})
    );
    let key = fleet("keys/TSC.key");
    let o = pmf(dir, &["approve", "plan.json", "--key", &key, "--yes"]);
    assert_eq!(code(&o), 0, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains(&format!("not planned {left_out}")),
        "{}",
        text(&o.stderr)
    );
}

/// A device named where a file belongs (`/dev/zero` never ends) is refused
/// by every command that reads the argument whole, with exit 2 and the
/// reason, before anything is written; so is a policy file past 64 MiB
/// (before, each read until memory ran out).
#[test]
fn devices_and_huge_files_are_refused_not_read_forever() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    crate::runtime::planned(d);
    let policy = fleet("policy.pmf");
    let cases: Vec<Vec<&str>> = vec![
        vec!["check", "/dev/zero"],
        vec!["fmt", "/dev/zero"],
        vec!["plan", "show", "/dev/zero"],
        vec!["approve", "/dev/zero", "--key", "TSC.key", "--yes"],
        vec!["approve", "plan.json", "--key", "/dev/zero", "--yes"],
        vec!["apply", "/dev/zero"],
        vec!["apply", "plan.json", "--approvals", "/dev/zero"],
        vec!["lineage", "verify", "--checkpoint", "/dev/zero"],
        vec!["schema", "partners", "--policy", "/dev/zero"],
        vec![
            "review",
            "promote",
            "p-005",
            "--key",
            "/dev/zero",
            "--policy",
            &policy,
            "--reason",
            "x",
        ],
    ];
    for args in &cases {
        let o = pmf(d, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o.stderr));
        let err = text(&o.stderr);
        assert!(
            err.contains("/dev/zero")
                && (err.contains("it is a device, not a file") || err.contains("more than 1 MiB")),
            "{args:?}: {err}"
        );
    }
    assert!(!d.join(".pmf/state.db").exists(), "nothing was applied");
    let huge = d.join("huge.pmf");
    let file = std::fs::File::create(&huge).unwrap();
    file.set_len((64 << 20) + 1).unwrap();
    let o = pmf(d, &["check", "huge.pmf"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("cannot read `huge.pmf`: it holds more than 64 MiB"),
        "{}",
        text(&o.stderr)
    );
}
