//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use pmf::cli::check::{Format, Report, check_paths, render};
use pmf::diagnostics::render::HumanStyle;

/// The fixed style of every human snapshot.
pub const SNAPSHOT_STYLE: HumanStyle = HumanStyle {
    color: false,
    width: 80,
};

/// Check `paths` exactly as `pmf check` does.
pub fn check(paths: &[PathBuf]) -> Report {
    match check_paths(paths) {
        Ok(r) => r,
        Err(e) => panic!("check failed: {e}"),
    }
}

/// Render a report in `format` with the snapshot style.
pub fn rendered(report: &Report, format: Format) -> String {
    render(report, format, SNAPSHOT_STYLE)
}

/// Entries of a directory, sorted.
pub fn sorted_entries(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .collect();
    v.sort();
    v
}

/// The file stem of a path as text.
pub fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string()
}

/// Codes reported in `report`.
pub fn codes(report: &Report) -> Vec<&'static str> {
    report.diagnostics.iter().map(|d| d.code.id()).collect()
}

/// Fragments of the language (keywords, paths, operators, literals, layout,
/// comments, non-ASCII) that property tests glue into arbitrary policies.
pub const TOKEN_SOUP: &[&str] = &[
    "policy ",
    "extends ",
    "kwanus",
    "override ",
    "authority ",
    "category ",
    "partner ",
    "migration ",
    "order ",
    "compatibility ",
    "sustainability ",
    "validation ",
    "health ",
    "flow ",
    "ceiling ",
    "rite ",
    "key ",
    "\"ed25519:3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c\"",
    "governs ",
    "covers ",
    "when ",
    "reversible",
    "approve by ",
    "governing",
    "touches ",
    "to ",
    "previous_stable",
    "factor ",
    "weight ",
    "from ",
    "band ",
    "phase ",
    "fallible",
    "fail ",
    "max ",
    "else ",
    "and ",
    "or ",
    "not ",
    "in ",
    "partner.",
    "target.",
    "observed.",
    "version",
    "metrics.stability",
    "strands",
    "power",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "<",
    "<=",
    ">=",
    "==",
    "->",
    "..=",
    ",",
    ":",
    "+",
    "-",
    "*",
    "/",
    "\"s\"",
    "\"",
    "1.2.3",
    "01.2.3",
    "0.35",
    "100",
    "-5",
    "\n",
    "\n  ",
    " ",
    "//c\n",
    "/*",
    "*/",
    "ñ",
    "→",
    "\t",
    "soft",
    "fallback",
    "detection",
];
