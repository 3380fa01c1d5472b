//! The one diagnostic type of PMF, its codes and its renderers.
//!
//! Message style: lowercase, no final period, user text in backticks,
//! suggestions (`did you mean ...`) in the help, and the edit they propose
//! as a [`Fix`].

pub mod codes;
pub mod config;
pub mod render;

pub use codes::Code;

use crate::{Place, PlaceMap};

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// The policy is wrong; `pmf check` exits 1.
    Error,
    /// Probably a mistake; fails only under `--deny-warnings`.
    Warning,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// A labelled place in a source file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Label {
    /// The file's path as given to the compiler.
    pub file: String,
    /// The place.
    pub span: Place,
    /// What the place has to do with the diagnostic.
    pub message: String,
}

/// A change of the text that resolves a diagnostic: replace `span` (in the
/// file of the diagnostic's primary place) with `replacement`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fix {
    /// The text to replace (empty to insert at its start).
    pub span: Place,
    /// What to put there (empty to delete).
    pub replacement: String,
    /// The fix certainly does what the user meant, so a tool may apply it
    /// without asking (an editor marks it as the preferred quick fix).
    pub machine_applicable: bool,
}

impl Fix {
    /// A fix a tool may apply without asking.
    pub fn certain(span: Place, replacement: impl Into<String>) -> Self {
        Fix {
            span,
            replacement: replacement.into(),
            machine_applicable: true,
        }
    }

    /// A fix to offer but not to apply unasked.
    pub fn maybe(span: Place, replacement: impl Into<String>) -> Self {
        Fix {
            span,
            replacement: replacement.into(),
            machine_applicable: false,
        }
    }

    /// `text` with the fix applied (`places` maps the fix's place into
    /// `text`; `text` unchanged when it does not lie on character
    /// boundaries).
    pub fn apply(&self, text: &str, places: &PlaceMap) -> String {
        let bytes = places.bytes(self.span);
        let (start, end) = (bytes.start as usize, bytes.end as usize);
        if start > end || !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len() + self.replacement.len());
        out.push_str(&text[..start]);
        out.push_str(&self.replacement);
        out.push_str(&text[end..]);
        out
    }
}

/// A problem found in a policy.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Diagnostic {
    /// Stable code, such as `PMF303`.
    pub code: Code,
    /// Error or warning.
    pub severity: Severity,
    /// One-line message.
    pub message: String,
    /// The primary place.
    pub primary: Label,
    /// Other places involved.
    pub labels: Vec<Label>,
    /// A suggested fix, in words.
    pub help: Option<String>,
    /// Fixes as text edits in the primary place's file (the language
    /// server offers them as quick fixes).
    pub fixes: Vec<Fix>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(code: Code, file: &str, span: Place, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            severity: code.default_severity(),
            message: message.into(),
            primary: Label {
                file: file.to_string(),
                span,
                message: String::new(),
            },
            labels: Vec::new(),
            help: None,
            fixes: Vec::new(),
        }
    }

    /// Set the primary label's text.
    pub fn with_label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }

    /// Add a secondary label.
    pub fn with_secondary(mut self, file: &str, span: Place, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            file: file.to_string(),
            span,
            message: message.into(),
        });
        self
    }

    /// Set the help text.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Set the help text when there is one.
    pub fn with_help_opt(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// Add a fix.
    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fixes.push(fix);
        self
    }

    /// Propose `replacement` for the text at `at` (when there is one): the
    /// help becomes ``did you mean `replacement`?`` and the replacement a
    /// machine-applicable fix. Without one, the diagnostic is unchanged.
    pub fn with_suggestion(mut self, at: Place, replacement: Option<&str>) -> Self {
        if let Some(r) = replacement {
            self.help = Some(format!("did you mean `{r}`?"));
            self.fixes.push(Fix::certain(at, r));
        }
        self
    }

    /// Add fixes (none when the iterator is empty).
    pub fn with_fixes(mut self, fixes: impl IntoIterator<Item = Fix>) -> Self {
        self.fixes.extend(fixes);
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Sort key: file, position, code.
    pub(crate) fn sort_key(&self) -> (&str, u32, u32, &'static str) {
        (
            &self.primary.file,
            self.primary.span.start,
            self.primary.span.end,
            self.code.id(),
        )
    }
}

/// Sort diagnostics by place and drop exact duplicates.
pub fn sort_and_dedup(diags: &mut Vec<Diagnostic>) {
    diags.sort_by(|a, b| {
        a.sort_key()
            .cmp(&b.sort_key())
            .then_with(|| a.message.cmp(&b.message))
    });
    diags.dedup();
}

/// The longest name (in bytes) a suggestion is looked for, or made, with.
/// Comparing two names costs the product of their lengths: a 100,000-byte
/// name compared with every name of a large policy took seconds per
/// diagnostic, and no name that long is a typo of a declared one.
pub const LONGEST_SUGGESTED: usize = 64;

/// The candidate closest to `name`, when it is close enough to be a typo
/// (neither longer than [`LONGEST_SUGGESTED`]).
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    if name.len() > LONGEST_SUGGESTED {
        return None;
    }
    let chars = name.chars().count();
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        if c == name || c.len() > LONGEST_SUGGESTED {
            continue;
        }
        // One letter off in a short name (`TCS` for `TSC`: two swapped) is
        // a typo that Jaro-Winkler alone scores low (an edit distance of one
        // needs lengths at most one apart).
        let swapped = name.len() >= 3
            && chars.abs_diff(c.chars().count()) <= 1
            && strsim::osa_distance(name, c) == 1;
        let score = strsim::jaro_winkler(name, c).max(if swapped { 0.85 } else { 0.0 });
        if score >= 0.8 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A short reason for an I/O error, as messages word it.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{LONGEST_SUGGESTED, closest};

    #[test]
    fn a_typo_is_suggested_and_an_overlong_name_never_is() {
        let names = ["TSC", "ERC", "SCO", "stability", "héllo"];
        assert_eq!(closest("TCS", names), Some("TSC"));
        assert_eq!(closest("stabilty", names), Some("stability"));
        // One character off, though not one byte off.
        assert_eq!(closest("h😀llo", names), Some("héllo"));
        assert_eq!(closest("zzzz", names), None);
        // Found by lspfuzz: a 100,000-byte name, compared with every name
        // of a large policy, took seconds per diagnostic.
        let long = format!("stability{}", "x".repeat(100_000));
        assert_eq!(closest(&long, names), None);
        // Names of up to the limit are compared; longer ones are not.
        let near = |len: usize| {
            let name = "y".repeat(len);
            let typo = format!("{}z", "y".repeat(len - 1));
            closest(&typo, [name.as_str()]).map(str::len)
        };
        assert_eq!(near(LONGEST_SUGGESTED), Some(LONGEST_SUGGESTED));
        assert_eq!(near(LONGEST_SUGGESTED + 1), None);
    }
}
