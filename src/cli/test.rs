//! `pmf test [PATHS] [--coverage] [--min-coverage N] [--format human|json|junit]`:
//! run the `test` declarations of policies.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::check::{Format, check_paths, render};
use super::{Exit, UsageError};
use crate::db;
use crate::diagnostics::render::HumanStyle;
use crate::model::fixtures::expand_tests;
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
pub fn run(args: &TestArgs) -> Result<Exit, UsageError> {
    let report = check_paths(&args.paths)?;
    let (errors, _) = report.counts();
    if errors > 0 {
        eprint!(
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
        eprintln!("pmf: the policies have errors; no test was run");
        return Ok(Exit::Failure);
    }
    let session = &report.session;
    let sources = session.sources();
    let mut results = Vec::new();
    for &file in session.workspace.files(&session.db) {
        let path = file.path(&session.db).clone();
        if path == crate::stdlib::KWANUS_PATH {
            continue;
        }
        let parsed = db::syntax_tree(&session.db, file);
        // The states refined from the file's fixtures; their problems were
        // reported by the check above (none, or nothing runs).
        let tests = expand_tests(&path, parsed.ast.decls.iter().map(|d| &d.kind)).tests;
        if tests.is_empty() {
            continue;
        }
        let resolved = db::resolve(&session.db, session.workspace, file);
        let (graph, _) = db::phase_graph(&session.db, session.workspace, file);
        let Some(graph) = graph.as_ref() else {
            continue;
        };
        let policy = CompiledPolicy::compile(&resolved.policy, graph, &sources)
            .map_err(|e| UsageError(format!("{path}: {}", e.0)))?;
        let text = sources.get(&path).cloned().unwrap_or_default();
        let index = LineIndex::new(&text);
        let at = |offset: u32| {
            let lc = index.line_col(&text, offset as usize);
            (lc.line, lc.column)
        };
        let mut runs = Vec::new();
        for t in &tests {
            let run = run_test(&policy, t);
            let failures = run
                .failures
                .iter()
                .map(|f| {
                    let (l, c) = at(f.span.start);
                    (l, c, f.message.clone())
                })
                .collect();
            runs.push((t.name.value.clone(), at(t.name.span.start).0, run, failures));
        }
        let cov = coverage(&policy, runs.iter().map(|r| &r.2));
        results.push(FileResult {
            file: path,
            policy: policy.name.clone(),
            tests: runs,
            coverage: cov,
        });
    }
    if results.is_empty() {
        return Err(UsageError("no `test` declarations found".into()));
    }
    let total: usize = results.iter().map(|r| r.tests.len()).sum();
    let failed: usize = results
        .iter()
        .flat_map(|r| &r.tests)
        .filter(|t| !t.2.failures.is_empty())
        .count();
    let below: Vec<&FileResult> = args
        .min_coverage
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
                println!("{} (policy `{}`)", r.file, r.policy);
                for (name, line, run, failures) in &r.tests {
                    if failures.is_empty() {
                        println!("  ✓ {name}");
                    } else {
                        println!("  ✗ {name} ({}:{line})", r.file);
                        for (l, c, m) in failures {
                            println!("      {}:{l}:{c}: {m}", r.file);
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
                        println!("    {name:<7} {}/{}{missing}", p.covered, p.total);
                    };
                    println!("  coverage {}%", c.percent);
                    part("types", &c.types);
                    part("bands", &c.bands);
                    part("rules", &c.rules);
                    part("phases", &c.phases);
                    part("edges", &c.edges);
                }
            }
            println!("{total} tests: {} passed, {failed} failed", total - failed);
            for r in &below {
                println!(
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
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        TestFormat::Junit => {
            println!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            println!("<testsuites name=\"pmf test\" tests=\"{total}\" failures=\"{failed}\">");
            for r in &results {
                let f = r.tests.iter().filter(|t| !t.3.is_empty()).count();
                println!(
                    "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\">",
                    xml(&r.file),
                    r.tests.len()
                );
                for (name, _, _, failures) in &r.tests {
                    print!(
                        "    <testcase classname=\"{}\" name=\"{}\"",
                        xml(&r.policy),
                        xml(name)
                    );
                    if failures.is_empty() {
                        println!("/>");
                    } else {
                        let body: Vec<String> = failures
                            .iter()
                            .map(|(l, c, m)| format!("{}:{l}:{c}: {m}", r.file))
                            .collect();
                        println!(
                            ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                            xml(&failures[0].2),
                            xml(&body.join("\n"))
                        );
                    }
                }
                println!("  </testsuite>");
            }
            println!("</testsuites>");
        }
    }
    Ok(if failed > 0 || !below.is_empty() {
        Exit::Failure
    } else {
        Exit::Success
    })
}
