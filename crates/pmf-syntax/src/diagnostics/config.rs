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
            Some(code) if level != Level::Error && !code.can_be_silenced() => {
                let at = key_offset(text, key);
                diags.push(not_silenceable(
                    file,
                    Place::new(at, at + key.len()),
                    code,
                    "set it to \"error\" or remove the line",
                ));
            }
            Some(code) => {
                config.levels.insert(code, level);
            }
            None => {
                let at = key_offset(text, key);
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

/// Where `key` is written in `text` (a `pmf.toml`): the first line that
/// starts with it, else its first occurrence.
fn key_offset(text: &str, key: &str) -> usize {
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start().len();
        if line.trim_start().starts_with(key) {
            return at + indent;
        }
        at += line.len();
    }
    text.find(key).unwrap_or(0)
}

/// PMF906: `code` is an error, which `place` (in `file`) tries to turn off
/// or make a warning; `fix` says what to write instead.
pub fn not_silenceable(file: &str, place: Place, code: Code, fix: &str) -> Diagnostic {
    let warnings: Vec<&str> = Code::ALL
        .iter()
        .filter(|c| c.can_be_silenced())
        .map(|c| c.id())
        .collect();
    Diagnostic::new(
        Code::ErrorNotSilenceable,
        file,
        place,
        format!("`{}` is an error and cannot be silenced", code.id()),
    )
    .with_label(format!("{}: {}", code.id(), code.summary()))
    .with_help(format!(
        "an error means the policy does not say what it seems to, and no plan is made from it: fix what it reports ({fix}); only warnings can be turned off or silenced ({})",
        warnings.join(", ")
    ))
}

impl Config {
    /// Apply the levels: drop what is off, set the severity of the rest.
    /// Problems with the configuration itself are never silenced, nor is
    /// any error ([`Code::can_be_silenced`]): it may only be kept an error.
    pub fn apply(&self, diags: &mut Vec<Diagnostic>) {
        diags.retain_mut(|d| match self.levels.get(&d.code) {
            _ if d.code == Code::UnknownCodeInConfig
                || d.code == Code::SuppressionWithoutReason
                || d.code == Code::ErrorNotSilenceable =>
            {
                true
            }
            Some(_) if !d.code.can_be_silenced() => {
                d.severity = Severity::Error;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn diagnostic(code: Code) -> Diagnostic {
        Diagnostic::new(code, "p.pmf", Place::new(0, 1), "m")
    }

    #[test]
    fn only_warnings_are_turned_off_or_made_warnings() {
        let text = "[lints]\nPMF902 = \"off\"\n  PMF803 = \"off\"\nPMF102 = \"warning\"\nPMF101 = \"error\"\n";
        let (config, diags) = parse("pmf.toml", text).unwrap();
        let refused: Vec<(Code, usize)> = diags
            .iter()
            .map(|d| (d.code, d.primary.span.start as usize))
            .collect();
        let at = |key: &str| text.find(key).unwrap();
        assert_eq!(
            refused,
            [
                (Code::ErrorNotSilenceable, at("PMF102")),
                (Code::ErrorNotSilenceable, at("PMF803")),
            ]
        );
        assert_eq!(
            config.levels.keys().copied().collect::<Vec<_>>(),
            [Code::DuplicateDeclaration, Code::UnusedDeclaration]
        );
        // A config made in code is held to the same rule when applied.
        let mut forced = Config::default();
        forced.levels.insert(Code::CeilingValue, Level::Off);
        forced.levels.insert(Code::UnknownCategory, Level::Warning);
        forced.levels.insert(Code::UnusedDeclaration, Level::Off);
        let mut diags = vec![
            diagnostic(Code::CeilingValue),
            diagnostic(Code::UnknownCategory),
            diagnostic(Code::UnusedDeclaration),
        ];
        forced.apply(&mut diags);
        let kept: Vec<(Code, Severity)> = diags.iter().map(|d| (d.code, d.severity)).collect();
        assert_eq!(
            kept,
            [
                (Code::CeilingValue, Severity::Error),
                (Code::UnknownCategory, Severity::Error),
            ]
        );
    }
}
