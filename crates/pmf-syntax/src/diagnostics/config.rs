//! `pmf.toml`: the level of each code (`error`, `warning` or `off`).
//!
//! ```toml
//! [lints]
//! PMF901 = "off"
//! PMF902 = "error"
//! ```

use std::collections::BTreeMap;

use super::{Code, Diagnostic, Severity, closest};
use crate::Place;

/// What a code is configured to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Reported as an error.
    Error,
    /// Reported as a warning.
    Warning,
    /// Not reported.
    Off,
}

/// Lint levels read from a `pmf.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Code → level.
    pub levels: BTreeMap<Code, Level>,
}

/// Parse `text` (the file `file`): the config, and diagnostics about
/// unknown codes. A file that is not valid TOML, or a level that is not
/// `error`, `warning` or `off`, is an `Err` (a usage problem).
pub fn parse(file: &str, text: &str) -> Result<(Config, Vec<Diagnostic>), String> {
    let table: toml::Table = text
        .parse()
        .map_err(|e| format!("`{file}` is not valid TOML: {e}"))?;
    let mut config = Config::default();
    let mut diags = Vec::new();
    let Some(lints) = table.get("lints") else {
        return Ok((config, diags));
    };
    let lints = lints
        .as_table()
        .ok_or_else(|| format!("`{file}`: `lints` must be a table"))?;
    for (key, value) in lints {
        let level = match value.as_str() {
            Some("error") => Level::Error,
            Some("warning") => Level::Warning,
            Some("off") => Level::Off,
            _ => {
                return Err(format!(
                    "`{file}`: `{key}` must be \"error\", \"warning\" or \"off\""
                ));
            }
        };
        match Code::from_id(key) {
            Some(code) => {
                config.levels.insert(code, level);
            }
            None => {
                let at = text.find(key.as_str()).unwrap_or(0);
                let close = closest(&key.to_ascii_uppercase(), Code::ALL.iter().map(|c| c.id()));
                diags.push(
                    Diagnostic::new(
                        Code::UnknownCodeInConfig,
                        file,
                        Place::new(at, at + key.len()),
                        format!("unknown code `{key}` in `pmf.toml`"),
                    )
                    .with_label("no such code")
                    .with_help("`pmf explain --list` lists every code")
                    .with_suggestion(Place::new(at, at + key.len()), close),
                );
            }
        }
    }
    Ok((config, diags))
}

impl Config {
    /// Apply the levels: drop what is off, set the severity of the rest.
    /// Problems with the configuration itself are never silenced.
    pub fn apply(&self, diags: &mut Vec<Diagnostic>) {
        diags.retain_mut(|d| match self.levels.get(&d.code) {
            _ if d.code == Code::UnknownCodeInConfig
                || d.code == Code::SuppressionWithoutReason =>
            {
                true
            }
            Some(Level::Off) => false,
            Some(Level::Error) => {
                d.severity = Severity::Error;
                true
            }
            Some(Level::Warning) => {
                d.severity = Severity::Warning;
                true
            }
            None => true,
        });
    }
}

/// The `pmf.toml` nearest to `dir` (itself or an ancestor), if any.
pub fn find(dir: &std::path::Path) -> Option<std::path::PathBuf> {
    dir.ancestors()
        .map(|d| d.join("pmf.toml"))
        .find(|p| p.is_file())
}
