//! `pmf.toml`: the level of each code (`error`, `warning` or `off`), and
//! every setting held to those pmf knows (PMF907).
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
    let mut diags = unknown_settings(file, text, &table);
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

/// The tables of a `pmf.toml` and the settings each holds (`None`: any
/// key, as `[lints]` names codes).
pub const SETTINGS: &[(&str, Option<&[&str]>)] = &[
    ("project", Some(&["exclude"])),
    ("trust", Some(&["root_policy"])),
    ("lints", None),
];

/// The tables of [`SETTINGS`], as messages list them: `` `project`, `trust`, `lints` ``.
pub fn tables_listed() -> String {
    SETTINGS
        .iter()
        .map(|(t, _)| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// PMF907 for each key of `table` (the file `file`, text `text`) that is
/// not a setting pmf knows: a typo in a setting (`[turst]`) would
/// otherwise read as no setting, and a trust root pinned there as none.
fn unknown_settings(file: &str, text: &str, table: &toml::Table) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let mut unknown = |key: &str, known: &[&str], within: Option<&str>| {
        let at = key_offset(text, key);
        let (what, known_list) = match within {
            None => (
                format!("unknown table `{key}` in `pmf.toml`"),
                format!("its tables are {}", tables_listed()),
            ),
            Some(t) => (
                format!("unknown setting `{t}.{key}` in `pmf.toml`"),
                format!(
                    "`[{t}]` holds {}",
                    known
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
        diags.push(
            Diagnostic::new(
                Code::UnknownSettingInConfig,
                file,
                Place::new(at, at + key.len()),
                what,
            )
            .with_label("pmf reads no such setting")
            .with_help(format!(
                "{known_list}; a setting pmf does not read would change nothing unseen (a trust root pinned under a misspelt table pins none)"
            ))
            .with_suggestion(
                Place::new(at, at + key.len()),
                super::closest(key, known.iter().copied()),
            ),
        );
    };
    let tables: Vec<&str> = SETTINGS.iter().map(|(t, _)| *t).collect();
    for (key, value) in table {
        match SETTINGS.iter().find(|(t, _)| t == key) {
            None => unknown(key, &tables, None),
            Some((t, Some(keys))) => {
                for inner in value.as_table().into_iter().flat_map(|v| v.keys()) {
                    if !keys.contains(&inner.as_str()) {
                        unknown(inner, keys, Some(t));
                    }
                }
            }
            Some((_, None)) => {}
        }
    }
    diags
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
                || d.code == Code::UnknownSettingInConfig
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

    /// Every table and setting pmf does not read is named at its key, with
    /// the one it most likely meant; those it reads pass.
    #[test]
    fn a_setting_pmf_does_not_read_is_named() {
        let text = "[project]\nexclude = []\nexclud = []\n\n[trust]\nroot_policy = \"ab\"\nroot = 1\n\n[turst]\nroot_policy = \"ab\"\n\n[lints]\nPMF902 = \"off\"\n\n[tool]\nx = 1\n";
        let (config, diags) = parse("pmf.toml", text).unwrap();
        let named: Vec<(&str, Option<&str>)> = diags
            .iter()
            .filter(|d| d.code == Code::UnknownSettingInConfig)
            .map(|d| {
                let span = d.primary.span.start as usize..d.primary.span.end as usize;
                (&text[span], d.fixes.first().map(|f| f.replacement.as_str()))
            })
            .collect();
        assert_eq!(
            named,
            [
                ("exclud", Some("exclude")),
                ("tool", None),
                ("root", Some("root_policy")),
                ("turst", Some("trust")),
            ]
        );
        assert_eq!(diags.len(), 4);
        assert_eq!(
            config.levels.keys().copied().collect::<Vec<_>>(),
            [Code::UnusedDeclaration]
        );
        // Never silenced by a level.
        let mut reported = diags.clone();
        let mut off = Config::default();
        off.levels.insert(Code::UnknownSettingInConfig, Level::Off);
        off.apply(&mut reported);
        assert_eq!(reported.len(), 4);
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
