//! `pmf test [PATHS] [--policy FILE|DIR|NAME]... [--filter PATTERN] [--coverage]
//! [--min-coverage N] [--format human|json|junit]`: run the `test`
//! declarations of policies.
//!
//! `--filter` keeps the tests whose name contains the pattern and counts
//! the others as filtered out (as `cargo test` does); a filter that keeps
//! no test is exit 1, since a CI step that runs nothing is most likely
//! wrong. Coverage of a filtered run is partial: it is reported as such and
//! `--min-coverage` is not enforced.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::check::{Format, check_paths, render};
use super::{CliError, Exit, UsageError};
use crate::db;
use crate::diagnostics::render::HumanStyle;
use crate::runtime::engine::CompiledPolicy;
use crate::runtime::testing::{Coverage, TestRun, coverage, run_test};
use crate::syntax::LineIndex;

/// Output formats of `pmf test`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TestFormat {
    /// For people.
    Human,
    /// One JSON document.
    Json,
    /// JUnit XML.
    Junit,
}

/// Arguments of `pmf test`.
#[derive(Args, Debug)]
pub struct TestArgs {
    /// Files or directories (recursively `*.pmf`); default `.`.
    pub paths: Vec<PathBuf>,
    /// The policy whose tests run, as `pmf plan` names it: a file or
    /// directory (like PATHS), or a policy's name, which keeps the test
    /// files that are that policy or extend it. Repeatable.
    #[arg(long, num_args = 1.., value_name = "FILE|DIR|NAME")]
    pub policy: Vec<PathBuf>,
    /// Run only the tests whose name contains PATTERN (a case-sensitive
    /// substring); the others are counted as filtered out. A filter that
    /// keeps no test fails (exit 1).
    #[arg(long, value_name = "PATTERN")]
    pub filter: Option<String>,
    /// Report which types, bands, rules, phases and edges the tests exercised.
    #[arg(long)]
    pub coverage: bool,
    /// Fail when coverage (percent, per tested policy) is below this.
    #[arg(long)]
    pub min_coverage: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub format: TestFormat,
}

/// A failed expectation: line, column, message.
type Located = (usize, usize, String);

/// One test: name, line, what running it found, its failures located.
type TestLine = (String, usize, TestRun, Vec<Located>);

struct FileResult {
    file: String,
    policy: String,
    tests: Vec<TestLine>,
    coverage: Coverage,
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Run `pmf test`.
pub fn run(args: &TestArgs) -> Result<Exit, CliError> {
    let (mut paths, names) = super::policy::selectors(&args.policy);
    paths.extend(args.paths.iter().cloned());
    let report = check_paths(&paths)?;
    let (errors, _) = report.counts();
    if errors > 0 {
        err!(
            "{}",
            render(
                &report,
                Format::Human,
                HumanStyle {
                    color: false,
                    width: 100
                }
            )
        );
        errln!("pmf: the policies have errors; no test was run");
        return Ok(Exit::Failure);
    }
    let session = &report.session;
    let sources = session.placed_texts();
    let mut results = Vec::new();
    let mut filtered_out = 0usize;
    let mut declared_by: Vec<String> = Vec::new();
    for &file in session.workspace.files(session.db()) {
        let path = file.path(session.db()).clone();
        if path == crate::stdlib::KWANUS_PATH {
            continue;
        }
        // The states refined from the file's fixtures, in stable places
        // (the check above read the same expansion and reported its
        // problems: none, or nothing runs).
        let declared = db::stable_tests(session.db(), file).tests.clone();
        let chunks = db::parse_file(session.db(), file);
        if declared.is_empty() {
            continue;
        }
        if !names.is_empty() {
            // A name keeps the tests of that policy: its own file's, and
            // those of the files that extend it.
            let header = db::stable_header(session.db(), file);
            let Some(header) = header.as_ref() else {
                continue;
            };
            declared_by.push(header.name.name.to_string());
            let named = names.iter().any(|n| {
                header.name.name.as_str() == n
                    || header.parents.iter().any(|p| p.name.as_str() == n)
            });
            if !named {
                continue;
            }
        }
        let total_here = declared.len();
        let tests: Vec<_> = declared
            .into_iter()
            .filter(|t| {
                args.filter
                    .as_deref()
                    .is_none_or(|f| t.name.value.contains(f))
            })
            .collect();
        filtered_out += total_here - tests.len();
        if tests.is_empty() {
            continue;
        }
        let resolved = db::resolve(session.db(), session.workspace, file);
        let (graph, _) = db::phase_graph(session.db(), session.workspace, file);
        let Some(graph) = graph.as_ref() else {
            continue;
        };
        let policy =
            CompiledPolicy::compile(&resolved.policy, graph, &sources).map_err(|source| {
                CliError::NotRunnable {
                    file: path.clone(),
                    source,
                }
            })?;
        let text = sources.text(&path).unwrap_or_default();
        let index = LineIndex::new(text);
        let at = |offset: u32| {
            let lc = index.line_col(text, offset as usize);
            (lc.line, lc.column)
        };
        let mut runs = Vec::new();
        for t in &tests {
            let run = run_test(&policy, t);
            let failures = run
                .failures
                .iter()
                .map(|f| {
                    let (l, c) = at(chunks.place(f.span).start);
                    (l, c, f.message.clone())
                })
                .collect();
            let line = at(chunks.place(t.name.span).start).0;
            runs.push((t.name.value.clone(), line, run, failures));
        }
        let cov = coverage(&policy, runs.iter().map(|r| &r.2));
        results.push(FileResult {
            file: path,
            policy: policy.name.clone(),
            tests: runs,
            coverage: cov,
        });
    }
    if results.is_empty() && filtered_out > 0 {
        errln!(
            "pmf: no test name contains `{}` ({filtered_out} tests filtered out); nothing was run",
            args.filter.as_deref().unwrap_or_default()
        );
        return Ok(Exit::Failure);
    }
    if results.is_empty() {
        if !names.is_empty() {
            declared_by.sort();
            declared_by.dedup();
            return Err(UsageError(format!(
                "no tests of a policy named `{}` (the files hold tests of {})",
                names.join("`, `"),
                if declared_by.is_empty() {
                    "no policy".to_string()
                } else {
                    declared_by
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ))
            .into());
        }
        return Err(UsageError("no `test` declarations found".into()).into());
    }
    // Coverage is complete only when every test ran.
    let partial = filtered_out > 0;
    let total: usize = results.iter().map(|r| r.tests.len()).sum();
    let failed: usize = results
        .iter()
        .flat_map(|r| &r.tests)
        .filter(|t| !t.2.failures.is_empty())
        .count();
    let below: Vec<&FileResult> = args
        .min_coverage
        .filter(|_| !partial)
        .map(|min| {
            results
                .iter()
                .filter(|r| r.coverage.percent < min)
                .collect()
        })
        .unwrap_or_default();
    match args.format {
        TestFormat::Human => {
            for r in &results {
                outln!("{} (policy `{}`)", r.file, r.policy);
                for (name, line, run, failures) in &r.tests {
                    if failures.is_empty() {
                        outln!("  ✓ {name}");
                    } else {
                        outln!("  ✗ {name} ({}:{line})", r.file);
                        for (l, c, m) in failures {
                            outln!("      {}:{l}:{c}: {m}", r.file);
                        }
                    }
                    let _ = run;
                }
                if args.coverage || args.min_coverage.is_some() {
                    let c = &r.coverage;
                    let part = |name: &str, p: &crate::runtime::testing::Part| {
                        let missing = if p.missing.is_empty() {
                            String::new()
                        } else {
                            format!(" (not exercised: {})", p.missing.join(", "))
                        };
                        outln!("    {name:<7} {}/{}{missing}", p.covered, p.total);
                    };
                    if partial {
                        outln!(
                            "  coverage {}% (partial: of the tests --filter kept)",
                            c.percent
                        );
                    } else {
                        outln!("  coverage {}%", c.percent);
                    }
                    part("types", &c.types);
                    part("bands", &c.bands);
                    part("rules", &c.rules);
                    part("phases", &c.phases);
                    part("edges", &c.edges);
                }
            }
            if args.filter.is_some() {
                outln!(
                    "{total} tests: {} passed, {failed} failed, {filtered_out} filtered out",
                    total - failed
                );
            } else {
                outln!("{total} tests: {} passed, {failed} failed", total - failed);
            }
            if partial && args.min_coverage.is_some() {
                outln!(
                    "note: --min-coverage is not enforced: --filter left {filtered_out} tests out, so coverage is partial"
                );
            }
            for r in &below {
                outln!(
                    "coverage of `{}` is {}%, below --min-coverage {}",
                    r.file,
                    r.coverage.percent,
                    args.min_coverage.unwrap_or(0.0)
                );
            }
        }
        TestFormat::Json => {
            let doc = serde_json::json!({
                "format_version": 1,
                "tests": total,
                "passed": total - failed,
                "failed": failed,
                "filtered_out": filtered_out,
                "coverage_complete": !partial,
                "files": results.iter().map(|r| serde_json::json!({
                    "file": r.file,
                    "policy": r.policy,
                    "coverage": r.coverage,
                    "tests": r.tests.iter().map(|(name, line, _, failures)| serde_json::json!({
                        "name": name,
                        "line": line,
                        "passed": failures.is_empty(),
                        "failures": failures.iter().map(|(l, c, m)| serde_json::json!({"line": l, "column": c, "message": m})).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            });
            super::print_json(&doc);
        }
        TestFormat::Junit => {
            outln!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            outln!("<testsuites name=\"pmf test\" tests=\"{total}\" failures=\"{failed}\">");
            for r in &results {
                let f = r.tests.iter().filter(|t| !t.3.is_empty()).count();
                outln!(
                    "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">",
                    xml(&r.file),
                    r.tests.len()
                );
                for (name, _, _, failures) in &r.tests {
                    out!(
                        "    <testcase classname=\"{}\" name=\"{}\"",
                        xml(&r.policy),
                        xml(name)
                    );
                    if let Some((_, _, first)) = failures.first() {
                        let body: Vec<String> = failures
                            .iter()
                            .map(|(l, c, m)| format!("{}:{l}:{c}: {m}", r.file))
                            .collect();
                        outln!(
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                            xml(first),
                            xml(&body.join("\n"))
                        );
                    } else {
                        outln!("/>");
                    }
                }
                outln!("  </testsuite>");
            }
            outln!("</testsuites>");
        }
    }
    Ok(if failed > 0 || !below.is_empty() {
        Exit::Failure
    } else {
        Exit::Success
    })
}
