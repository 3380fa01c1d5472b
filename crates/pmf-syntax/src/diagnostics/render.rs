//! Rendering diagnostics: miette's graphical reports for people, and the
//! documented JSON and GitHub annotation formats for machines.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, OnceLock};

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};
use serde::Serialize;

use super::{Diagnostic, Label, Severity};
use crate::{Place, PlaceMap, PlacedTexts, Span};

/// A source text and its index, shared by every diagnostic in it.
pub(crate) type Indexed = (Arc<str>, Arc<SourceIndex>);

/// Source texts by file path, for rendering.
pub trait SourceLookup {
    /// The text of `file`, if known.
    fn source(&self, file: &str) -> Option<&str>;

    /// The byte range of `file`'s text that `place` names. The default is
    /// for texts never cut into chunks, whose places are their byte offsets.
    fn bytes(&self, file: &str, place: Place) -> Span {
        let _ = file;
        PlaceMap::identity().bytes(place)
    }

    /// The text of `file` and its index. The default indexes the text on
    /// every call; [`IndexedSources`] indexes each file once, which is what
    /// keeps rendering many diagnostics linear.
    fn indexed(&self, file: &str) -> Option<Indexed> {
        self.source(file).map(|t| {
            let shown = shown_text(t);
            let index = Arc::new(SourceIndex::new(&shown));
            (Arc::from(shown.as_ref()), index)
        })
    }
}

/// Whether `c` changes how text around it is laid out though it is not
/// a control character: a bidirectional mark, override or isolate (which
/// reorder what a reader sees), or a line or paragraph separator.
pub fn is_layout_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// Whether `c` must not reach a terminal as it is: a control character
/// (tab and line ends aside), a C1 control, or a layout control.
pub fn obeyed_by_terminals(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || is_layout_control(c)
}

/// `text` as a report may show it: each character a terminal would obey
/// (an escape sequence in a hostile policy, a bidirectional override)
/// replaced by one visible character of as many bytes (`?`, `¿`, `�`), so
/// that every byte offset, and so every span, stays where it was, and
/// every column too (as many `?` as bytes counted a 3-byte override as 3
/// columns, and put every later place on its line 2 columns too far).
pub fn shown_text(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(obeyed_by_terminals) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if obeyed_by_terminals(c) {
            out.push(match c.len_utf8() {
                1 => '?',
                2 => '\u{bf}',
                3 => '\u{fffd}',
                _ => '\u{1f6ab}',
            });
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

impl SourceLookup for BTreeMap<String, String> {
    fn source(&self, file: &str) -> Option<&str> {
        self.get(file).map(String::as_str)
    }
}

/// Source texts indexed once each (when first asked for), for rendering
/// any number of diagnostics in time linear in their number.
#[derive(Default)]
pub struct IndexedSources {
    files: HashMap<String, IndexedText>,
}

/// One text, its place map and (once asked for) its index.
struct IndexedText {
    text: Arc<str>,
    places: PlaceMap,
    index: OnceLock<Arc<SourceIndex>>,
}

impl IndexedSources {
    /// The texts of `sources`, by path, never cut into chunks (their places
    /// are their byte offsets).
    pub fn new(sources: BTreeMap<String, String>) -> Self {
        IndexedSources {
            files: sources
                .into_iter()
                .map(|(path, text)| (path, IndexedText::new(text, PlaceMap::identity())))
                .collect(),
        }
    }

    /// The texts of `sources` with their place maps.
    pub fn placed(sources: PlacedTexts) -> Self {
        IndexedSources {
            files: sources
                .into_files()
                .map(|(path, text, places)| (path, IndexedText::new(text, places)))
                .collect(),
        }
    }
}

impl IndexedText {
    fn new(text: String, places: PlaceMap) -> Self {
        IndexedText {
            text: Arc::from(shown_text(&text).as_ref()),
            places,
            index: OnceLock::new(),
        }
    }
}

impl SourceLookup for IndexedSources {
    fn source(&self, file: &str) -> Option<&str> {
        self.files.get(file).map(|t| &*t.text)
    }

    fn bytes(&self, file: &str, place: Place) -> Span {
        match self.files.get(file) {
            Some(t) => t.places.bytes(place),
            None => PlaceMap::identity().bytes(place),
        }
    }

    fn indexed(&self, file: &str) -> Option<Indexed> {
        let t = self.files.get(file)?;
        let index = t.index.get_or_init(|| Arc::new(SourceIndex::new(&t.text)));
        Some((t.text.clone(), index.clone()))
    }
}

/// How to draw human reports.
#[derive(Clone, Copy, Debug)]
pub struct HumanStyle {
    /// Use ANSI colours.
    pub color: bool,
    /// Wrap width in columns.
    pub width: usize,
}

/// Render one diagnostic as miette draws it.
pub fn human(diag: &Diagnostic, sources: &dyn SourceLookup, style: HumanStyle) -> String {
    let theme = if style.color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(style.width)
        .with_links(false);
    let report = MietteReport::new(diag, sources);
    let mut out = String::new();
    if handler.render_report(&mut out, &report).is_err() {
        out = format!(
            "{}[{}]: {}\n",
            diag.severity.as_str(),
            diag.code.id(),
            diag.message
        );
    }
    out
}

/// A diagnostic seen through miette's trait, with its sources attached.
#[derive(Debug)]
struct MietteReport {
    code: &'static str,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    source: Option<IndexedSource>,
    labels: Vec<LabeledSpan>,
    related: Vec<MietteReport>,
}

impl MietteReport {
    fn new(diag: &Diagnostic, sources: &dyn SourceLookup) -> Self {
        let mut report = Self::at(
            diag.code.id(),
            diag.severity,
            diag.message.clone(),
            diag.help.clone(),
            &diag.primary,
            sources,
        );
        for label in &diag.labels {
            if label.file == diag.primary.file {
                report.labels.push(labeled(label, false, sources));
            } else {
                let mut other = Self::at(
                    "",
                    Severity::Warning,
                    format!("see `{}`", label.file),
                    None,
                    label,
                    sources,
                );
                other.severity = miette::Severity::Advice;
                report.related.push(other);
            }
        }
        report
    }

    fn at(
        code: &'static str,
        severity: Severity,
        message: String,
        help: Option<String>,
        label: &Label,
        sources: &dyn SourceLookup,
    ) -> Self {
        // A message may quote the source (a string, a name): shown, not
        // obeyed, as the source is.
        let message = shown_text(&message).into_owned();
        let help = help.map(|h| shown_text(&h).into_owned());
        let source = sources
            .indexed(&label.file)
            .map(|(text, index)| IndexedSource {
                name: label.file.clone(),
                text,
                index,
            });
        let labels = if source.is_some() {
            vec![labeled(label, true, sources)]
        } else {
            Vec::new()
        };
        MietteReport {
            code,
            severity: match severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            message,
            help,
            source,
            labels,
            related: Vec::new(),
        }
    }
}

fn labeled(label: &Label, primary: bool, sources: &dyn SourceLookup) -> LabeledSpan {
    let len = sources.source(&label.file).map_or(0, |t| t.len());
    let bytes = sources.bytes(&label.file, label.span);
    let start = (bytes.start as usize).min(len);
    let end = (bytes.end as usize).min(len).max(start);
    let span = SourceSpan::new(start.into(), end - start);
    let text = if label.message.is_empty() {
        None
    } else {
        Some(label.message.clone())
    };
    if primary {
        LabeledSpan::new_primary_with_span(text, span)
    } else {
        LabeledSpan::new_with_span(text, span)
    }
}

impl fmt::Display for MietteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for MietteReport {}

impl miette::Diagnostic for MietteReport {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.code.is_empty() {
            None
        } else {
            Some(Box::new(self.code))
        }
    }
    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h.clone()) as Box<dyn fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.source.as_ref().map(|s| s as &dyn miette::SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.labels.is_empty() {
            None
        } else {
            Some(Box::new(self.labels.iter().cloned()))
        }
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}

/// A place in the documented JSON format (1-based, columns in characters).
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct JsonPlace {
    /// Start line.
    pub line: usize,
    /// Start column.
    pub column: usize,
    /// End line.
    pub end_line: usize,
    /// End column.
    pub end_column: usize,
}

/// A secondary label in the JSON format.
#[derive(Serialize, Debug, Clone)]
pub struct JsonLabel {
    /// Label text (prefixed with the file's path when it lies in another file).
    pub message: String,
    /// Where.
    #[serde(flatten)]
    pub place: JsonPlace,
}

/// One diagnostic in the JSON format.
#[derive(Serialize, Debug, Clone)]
pub struct JsonDiagnostic {
    /// File path.
    pub file: String,
    /// `error` or `warning`.
    pub severity: &'static str,
    /// Code such as `PMF303`.
    pub code: &'static str,
    /// Message.
    pub message: String,
    /// Where.
    #[serde(flatten)]
    pub place: JsonPlace,
    /// Help, or null.
    pub help: Option<String>,
    /// Secondary labels.
    pub labels: Vec<JsonLabel>,
}

/// The whole `--format json` document.
#[derive(Serialize, Debug, Clone)]
pub struct JsonReport {
    /// Always 1 for this shape.
    pub format_version: u32,
    /// Number of files checked.
    pub files: usize,
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
    /// Every diagnostic.
    pub diagnostics: Vec<JsonDiagnostic>,
}

/// Line/column of a place in `file` (1:1 when the source is unknown).
pub fn place(sources: &dyn SourceLookup, file: &str, place: Place) -> JsonPlace {
    match sources.indexed(file) {
        Some((text, index)) => {
            let span = sources.bytes(file, place);
            let (line, column) = index.place(&text, span.start as usize);
            let (end_line, end_column) = index.place(&text, span.end as usize);
            JsonPlace {
                line,
                column,
                end_line,
                end_column,
            }
        }
        None => JsonPlace {
            line: 1,
            column: 1,
            end_line: 1,
            end_column: 1,
        },
    }
}

/// One diagnostic in the JSON shape.
pub(crate) fn json_diagnostic(diag: &Diagnostic, sources: &dyn SourceLookup) -> JsonDiagnostic {
    JsonDiagnostic {
        file: diag.primary.file.clone(),
        severity: diag.severity.as_str(),
        code: diag.code.id(),
        message: diag.message.clone(),
        place: place(sources, &diag.primary.file, diag.primary.span),
        help: diag.help.clone(),
        labels: diag
            .labels
            .iter()
            .map(|l| JsonLabel {
                message: if l.file == diag.primary.file {
                    l.message.clone()
                } else {
                    format!("{}: {}", l.file, l.message)
                },
                place: place(sources, &l.file, l.span),
            })
            .collect(),
    }
}

/// The `--format json` document for a check run.
pub fn json_report(files: usize, diags: &[Diagnostic], sources: &dyn SourceLookup) -> JsonReport {
    JsonReport {
        format_version: 1,
        files,
        errors: diags.iter().filter(|d| d.is_error()).count(),
        warnings: diags.iter().filter(|d| !d.is_error()).count(),
        diagnostics: diags.iter().map(|d| json_diagnostic(d, sources)).collect(),
    }
}

/// One GitHub Actions workflow command for a diagnostic.
pub fn github(diag: &Diagnostic, sources: &dyn SourceLookup) -> String {
    let p = place(sources, &diag.primary.file, diag.primary.span);
    let level = match diag.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let mut message = diag.message.clone();
    if let Some(help) = &diag.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    format!(
        "::{level} file={},line={},col={},title={}::{}",
        escape_property(&diag.primary.file),
        p.line,
        p.column,
        diag.code.id(),
        escape_data(&message)
    )
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// SARIF 2.1.0 (as accepted by GitHub code scanning): one run, every code
/// as a rule, every diagnostic as a result. Serialised straight from these
/// types (fields in the order of their names, as a JSON tree would sort
/// them), with no tree of the whole log in memory.
pub fn sarif(diags: &[Diagnostic], sources: &dyn SourceLookup) -> SarifLog {
    use crate::diagnostics::Code;
    use serde_json::json;
    let rules: Vec<serde_json::Value> = Code::ALL
        .iter()
        .map(|c| {
            json!({
                "id": c.id(),
                "name": format!("{c:?}"),
                "shortDescription": {"text": c.summary()},
                "help": {"text": c.summary(), "markdown": c.page()},
                "defaultConfiguration": {"level": sarif_level(c.default_severity())},
                "properties": {"tags": [c.family()]},
            })
        })
        .collect();
    let location = |file: &str, span: Place| {
        let p = place(sources, file, span);
        SarifPhysical {
            artifact_location: SarifArtifact {
                uri: file.to_string(),
            },
            region: SarifRegion {
                end_column: p.end_column,
                end_line: p.end_line,
                start_column: p.column,
                start_line: p.line,
            },
        }
    };
    let results = diags
        .iter()
        .map(|d| {
            let mut text = d.message.clone();
            if let Some(h) = &d.help {
                text.push_str(&format!("\nhelp: {h}"));
            }
            // SARIF's fixes are proposed edits; only certain ones go in.
            let fixes = d
                .fixes
                .iter()
                .filter(|f| f.machine_applicable)
                .map(|f| {
                    let at = location(&d.primary.file, f.span);
                    SarifFix {
                        artifact_changes: vec![SarifChange {
                            artifact_location: at.artifact_location,
                            replacements: vec![SarifReplacement {
                                deleted_region: at.region,
                                inserted_content: SarifText {
                                    text: f.replacement.clone(),
                                },
                            }],
                        }],
                        description: SarifText {
                            text: if f.replacement.is_empty() {
                                "remove the text".to_string()
                            } else {
                                format!("write `{}`", f.replacement)
                            },
                        },
                    }
                })
                .collect();
            SarifResult {
                fixes,
                level: sarif_level(d.severity),
                locations: vec![SarifLocation {
                    physical_location: location(&d.primary.file, d.primary.span),
                }],
                message: SarifText { text },
                related_locations: d
                    .labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| SarifRelated {
                        id: i + 1,
                        message: SarifText {
                            text: l.message.clone(),
                        },
                        physical_location: location(&l.file, l.span),
                    })
                    .collect(),
                rule_id: d.code.id(),
                rule_index: Code::ALL.iter().position(|c| *c == d.code),
            }
        })
        .collect();
    SarifLog {
        schema: "https://json.schemastore.org/sarif-2.1.0.json",
        runs: vec![SarifRun {
            results,
            tool: SarifTool {
                driver: SarifDriver {
                    information_uri: "https://github.com/pmf/pmf",
                    name: "pmf",
                    rules,
                    version: env!("CARGO_PKG_VERSION"),
                },
            },
        }],
        version: "2.1.0",
    }
}

/// A SARIF log (see [`sarif`]).
#[derive(Serialize, Debug)]
pub struct SarifLog {
    #[serde(rename = "$schema")]
    schema: &'static str,
    runs: Vec<SarifRun>,
    version: &'static str,
}

#[derive(Serialize, Debug)]
struct SarifRun {
    results: Vec<SarifResult>,
    tool: SarifTool,
}

#[derive(Serialize, Debug)]
struct SarifTool {
    driver: SarifDriver,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifDriver {
    information_uri: &'static str,
    name: &'static str,
    rules: Vec<serde_json::Value>,
    version: &'static str,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fixes: Vec<SarifFix>,
    level: &'static str,
    locations: Vec<SarifLocation>,
    message: SarifText,
    related_locations: Vec<SarifRelated>,
    rule_id: &'static str,
    rule_index: Option<usize>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifFix {
    artifact_changes: Vec<SarifChange>,
    description: SarifText,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifChange {
    artifact_location: SarifArtifact,
    replacements: Vec<SarifReplacement>,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifReplacement {
    deleted_region: SarifRegion,
    inserted_content: SarifText,
}

#[derive(Serialize, Debug)]
struct SarifText {
    text: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: SarifPhysical,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifRelated {
    id: usize,
    message: SarifText,
    physical_location: SarifPhysical,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifPhysical {
    artifact_location: SarifArtifact,
    region: SarifRegion,
}

#[derive(Serialize, Debug)]
struct SarifArtifact {
    uri: String,
}

#[derive(Serialize, Debug)]
#[serde(rename_all = "camelCase")]
struct SarifRegion {
    end_column: usize,
    end_line: usize,
    start_column: usize,
    start_line: usize,
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: one test case per checked file, failing when the file has
/// errors (warnings go to its output).
pub fn junit(files: &[String], diags: &[Diagnostic], sources: &dyn SourceLookup) -> String {
    // The diagnostics of each file, grouped once (not searched per file).
    let mut by_file: HashMap<&str, Vec<&Diagnostic>> = HashMap::new();
    for d in diags {
        by_file.entry(d.primary.file.as_str()).or_default().push(d);
    }
    let failures = files
        .iter()
        .filter(|f| {
            by_file
                .get(f.as_str())
                .is_some_and(|ds| ds.iter().any(|d| d.is_error()))
        })
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"pmf check\" tests=\"{}\" failures=\"{failures}\">\n  <testsuite name=\"pmf check\" tests=\"{}\" failures=\"{failures}\">\n",
        files.len(),
        files.len()
    );
    for f in files {
        out.push_str(&format!(
            "    <testcase classname=\"pmf.check\" name=\"{}\">\n",
            xml(f)
        ));
        let mine: &[&Diagnostic] = by_file.get(f.as_str()).map_or(&[], Vec::as_slice);
        let describe = |d: &Diagnostic| {
            let p = place(sources, &d.primary.file, d.primary.span);
            let help = d
                .help
                .as_ref()
                .map(|h| format!(" (help: {h})"))
                .unwrap_or_default();
            format!(
                "{}:{}:{}: {} {}: {}{help}",
                d.primary.file,
                p.line,
                p.column,
                d.severity.as_str(),
                d.code.id(),
                d.message
            )
        };
        let errors: Vec<String> = mine
            .iter()
            .filter(|d| d.is_error())
            .map(|d| describe(d))
            .collect();
        if let Some(first) = mine.iter().find(|d| d.is_error()) {
            out.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                xml(&format!(
                    "{} error(s); first: {}",
                    errors.len(),
                    first.message
                )),
                first.code.id(),
                xml(&errors.join("\n"))
            ));
        }
        let warnings: Vec<String> = mine
            .iter()
            .filter(|d| !d.is_error())
            .map(|d| describe(d))
            .collect();
        if !warnings.is_empty() {
            out.push_str(&format!(
                "      <system-out>{}</system-out>\n",
                xml(&warnings.join("\n"))
            ));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// Where lines start in a source text, and how many characters precede
/// each byte (by checkpoints), so that a place's line and column cost a
/// binary search and a short count, however long the file or its lines.
/// A place's line ends at `\n` (as everywhere else in PMF), and its column
/// counts characters; miette's snippets end lines at `\n`, `\r\n` or a
/// lone `\r`, so the index keeps both.
#[derive(Debug)]
pub struct SourceIndex {
    /// Byte offsets where lines start (the first is 0), lines as miette
    /// counts them.
    line_starts: Vec<usize>,
    /// Byte offsets where lines ending at `\n` start, for places.
    newline_starts: Vec<usize>,
    /// Characters before byte `i * CHECKPOINT`, for each `i`.
    chars_before: Vec<usize>,
}

/// Bytes between two character-count checkpoints.
const CHECKPOINT: usize = 256;

impl SourceIndex {
    /// Index `text` (one pass).
    pub fn new(text: &str) -> Self {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => {
                    i += 1;
                    line_starts.push(i + 1);
                }
                b'\r' | b'\n' => line_starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        let mut newline_starts = vec![0];
        newline_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let mut chars_before = Vec::with_capacity(bytes.len() / CHECKPOINT + 1);
        let mut chars = 0;
        for block in bytes.chunks(CHECKPOINT) {
            chars_before.push(chars);
            chars += count_chars(block);
        }
        chars_before.push(chars);
        SourceIndex {
            line_starts,
            newline_starts,
            chars_before,
        }
    }

    /// The 0-based line (as miette counts lines) of byte `offset`.
    fn line_of(&self, offset: usize) -> usize {
        match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// Where 0-based `line` starts (the end of the text past the last line).
    fn line_start(&self, line: usize, text: &str) -> usize {
        self.line_starts.get(line).copied().unwrap_or(text.len())
    }

    /// Characters in `text` before byte `offset`.
    fn chars_before(&self, text: &str, offset: usize) -> usize {
        let block = offset / CHECKPOINT;
        let start = block * CHECKPOINT;
        self.chars_before.get(block).copied().unwrap_or(0)
            + count_chars(text.as_bytes().get(start..offset).unwrap_or_default())
    }

    /// The 1-based line and character column of byte `offset` of `text`
    /// (clamped to the text).
    pub fn place(&self, text: &str, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = match self.newline_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.newline_starts.get(line).copied().unwrap_or(0);
        let column = self.chars_before(text, offset)
            - self.chars_before(text, start)
            - bom_before(text, start, offset)
            + 1;
        (line + 1, column)
    }
}

/// 1 when the characters of `text` from `line_start` to `offset` begin with
/// a byte-order mark (the file's first line), which is not a column.
fn bom_before(text: &str, line_start: usize, offset: usize) -> usize {
    crate::span::bom_before(text, line_start, offset)
}

/// Characters in UTF-8 `bytes` (cut anywhere): bytes that do not continue
/// a character.
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count()
}

/// A line longer than this (in bytes) is shown only around a span.
const LONG_LINE: usize = 4096;

/// Bytes shown on each side of a span on a long line.
const SHOWN_AROUND: usize = 160;

/// The char boundary of `text` at or before `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// The char boundary of `text` at or after `at` (at most its length).
fn ceil_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at += 1;
    }
    at
}

/// A file's text for miette, read through its [`SourceIndex`]: a label's
/// lines are found by a binary search and only they are scanned (miette's
/// own reading of a `String` scans from the start of the file, for every
/// diagnostic).
#[derive(Debug, Clone)]
struct IndexedSource {
    name: String,
    text: Arc<str>,
    index: Arc<SourceIndex>,
}

impl miette::SourceCode for IndexedSource {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        // A window of whole lines around the span, wide enough for the
        // context miette asks for, read by miette's own reader: the same
        // contents as reading the whole text, moved to the window's place.
        let text = &*self.text;
        let end = span.offset() + span.len();
        if end > text.len() {
            // Not in the text (labels are clamped to it before they get here).
            return Err(miette::MietteError::OutOfBounds);
        }
        let start_line = self.index.line_of(span.offset());
        let end_line = self.index.line_of(end);
        let first = start_line.saturating_sub(context_lines_before + 1);
        let last = end_line + context_lines_after + 2;
        let mut from = self.index.line_start(first, text);
        let mut to = self.index.line_start(last, text).max(from);
        // On a very long line (a generated file, one line of thousands of
        // codes), only some characters around the span are shown: drawing
        // the whole line for each of its diagnostics would make the output
        // grow with the square of their number. The lines around it are
        // then left out too.
        let line_start = self.index.line_start(start_line, text);
        let line_end = self.index.line_start(start_line + 1, text);
        if line_end - line_start > LONG_LINE && span.offset() - line_start > SHOWN_AROUND {
            from = floor_boundary(text, span.offset() - SHOWN_AROUND);
        }
        let end_line_end = self.index.line_start(end_line + 1, text);
        let end_line_start = self.index.line_start(end_line, text);
        if end_line_end - end_line_start > LONG_LINE && end_line_end - end > SHOWN_AROUND {
            to = ceil_boundary(text, end + SHOWN_AROUND);
        }
        let window = text
            .as_bytes()
            .get(from..to)
            .ok_or(miette::MietteError::OutOfBounds)?;
        let inner = window.read_span(
            &SourceSpan::new((span.offset() - from).into(), span.len()),
            context_lines_before,
            context_lines_after,
        )?;
        // Lines before the window (it starts on a line's start, or inside
        // the span's line: miette counted none of them), and, inside a
        // line, the bytes of it left out (miette counts columns in bytes,
        // and gives one only without lines of context).
        let before = self.index.line_of(from);
        let column = if context_lines_before == 0 {
            // The column of the header `file:line:col`: in characters, as
            // the JSON places count it (miette would count bytes).
            let line_start = self.index.line_start(start_line, text);
            self.index.chars_before(text, span.offset())
                - self.index.chars_before(text, line_start)
                - bom_before(text, line_start, span.offset())
        } else {
            inner.column()
        };
        let moved = miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            SourceSpan::new((inner.span().offset() + from).into(), inner.span().len()),
            inner.line() + before,
            column,
            inner.line_count() + before,
        )
        .with_language("pmf");
        Ok(Box::new(moved))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a terminal would obey never reaches it from a source or a
    /// message: escapes, C1 controls and bidirectional overrides become one
    /// visible character of as many bytes, so every span still points where
    /// it did, and every column counts as in the source.
    /// A place after a hidden character on its line is at the column the
    /// source has (lspfuzz, seed 42: `pmf check` put a line separator after
    /// a right-to-left override 2 columns further than the language
    /// server did, as the override counted 3).
    #[test]
    fn places_after_hidden_characters_keep_their_columns() {
        let text = "policy x\n// ab\u{202e}(\u{2028}cd\n";
        let sources: BTreeMap<String, String> = [("f.pmf".to_string(), text.to_string())]
            .into_iter()
            .collect();
        let at = |c: char| {
            let start = text.find(c).unwrap();
            let p = place(&sources, "f.pmf", Place::new(start, start + c.len_utf8()));
            (p.line, p.column, p.end_column)
        };
        assert_eq!(at('\u{202e}'), (2, 6, 7));
        assert_eq!(at('\u{2028}'), (2, 8, 9));
        assert_eq!(at('d'), (2, 10, 11));
    }

    #[test]
    fn reports_show_the_source_never_obey_it() {
        let text = "policy e extends kwanus\nrite r \"a\u{1b}[2Jb\u{9b}c\u{202e}d\"\tend\r\n";
        let shown = shown_text(text);
        assert_eq!(shown.len(), text.len());
        assert!(!shown.chars().any(obeyed_by_terminals));
        assert!(
            shown.contains("a?[2Jb\u{bf}c\u{fffd}d\"\tend\r\n"),
            "{shown}"
        );
        assert_eq!(shown.chars().count(), text.chars().count());
        for c in ['\u{7f}', '\u{9b}', '\u{61c}', '\u{202e}', '\u{2028}'] {
            let one = c.to_string();
            assert_eq!(shown_text(&one).len(), one.len(), "{c:?}");
            assert_eq!(shown_text(&one).chars().count(), 1, "{c:?}");
        }
        assert!(matches!(
            shown_text("plain\ttext\n"),
            std::borrow::Cow::Borrowed(_)
        ));
        let at = text.find('b').unwrap();
        let diag = Diagnostic::new(
            super::super::Code::SyntaxError,
            "e.pmf",
            Place::at(Span::new(at, at + 1), 0),
            "bad \u{1b}]0;title\u{7} here".to_string(),
        );
        let sources = BTreeMap::from([("e.pmf".to_string(), text.to_string())]);
        for color in [false, true] {
            let out = human(&diag, &sources, HumanStyle { color, width: 100 });
            assert!(
                !out.contains("\u{1b}[2J") && !out.contains("\u{1b}]0"),
                "{out:?}"
            );
            assert!(
                !out.contains('\u{9b}') && !out.contains('\u{202e}'),
                "{out:?}"
            );
            if !color {
                assert!(!out.contains('\u{1b}'), "{out:?}");
            }
            assert!(out.contains("a?[2Jb"), "{out}");
        }
    }
    use crate::LineIndex;

    /// Texts with every kind of line end, multi-byte characters and long
    /// lines (past several character checkpoints).
    fn texts() -> Vec<String> {
        let long: String = "aé→".repeat(400);
        vec![
            String::new(),
            "one line".into(),
            "a\nb\r\nc\rd\n\n".into(),
            format!("{long}\n{long}\r\n\r{long}"),
            "é\n→\r\n".repeat(300),
            format!("\n\n{long}"),
        ]
    }

    /// Byte offsets to ask about: every one of a short text, a spread of a
    /// long one, and one past the end.
    fn offsets(text: &str) -> Vec<usize> {
        let step = (text.len() / 300).max(1);
        (0..=text.len() + 1)
            .step_by(step)
            .chain([text.len()])
            .collect()
    }

    #[test]
    fn places_are_the_line_index_places() {
        for text in texts() {
            let index = SourceIndex::new(&text);
            let reference = LineIndex::new(&text);
            for offset in offsets(&text) {
                let expected = reference.line_col(&text, offset.min(text.len()));
                assert_eq!(
                    index.place(&text, offset),
                    (expected.line, expected.column),
                    "{text:?} at {offset}"
                );
            }
        }
    }

    /// What a `SpanContents` says, to compare two of them.
    fn contents(c: &dyn miette::SpanContents<'_>) -> (Vec<u8>, usize, usize, usize, usize, usize) {
        (
            c.data().to_vec(),
            c.span().offset(),
            c.span().len(),
            c.line(),
            c.column(),
            c.line_count(),
        )
    }

    /// The 0-based column of byte `offset` in characters from the start of
    /// its line as miette counts lines (after `\n` or `\r`), a byte-order
    /// mark not counted: what the header `file:line:col` shows, less one.
    fn char_column(text: &str, offset: usize) -> usize {
        let bytes = text.as_bytes();
        let start = (0..offset)
            .rev()
            .find(|&i| bytes[i] == b'\n' || (bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n')))
            .map_or(0, |i| i + 1);
        let bom = usize::from(start == 0 && bytes[..offset].starts_with("\u{feff}".as_bytes()));
        // Characters begun before `offset` (it may fall inside one).
        let begun = bytes[start..offset]
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count();
        begun - bom
    }

    /// [`contents`] with the column replaced by `column`.
    fn with_column(
        mut c: (Vec<u8>, usize, usize, usize, usize, usize),
        column: usize,
    ) -> (Vec<u8>, usize, usize, usize, usize, usize) {
        c.4 = column;
        c
    }

    #[test]
    fn the_header_column_counts_characters_and_no_byte_order_mark() {
        use miette::SourceCode;
        let text = "\u{feff}policy p extends kwnus\n// é → 𝄞 x\n";
        let source = IndexedSource {
            name: "f.pmf".into(),
            text: Arc::from(text),
            index: Arc::new(SourceIndex::new(text)),
        };
        let at = |needle: &str| {
            let offset = text.find(needle).unwrap_or_default();
            let c = source.read_span(&SourceSpan::new(offset.into(), 1), 0, 0);
            c.map(|c| (c.line() + 1, c.column() + 1)).ok()
        };
        assert_eq!(at("kwnus"), Some((1, 18)));
        assert_eq!(at("x\n"), Some((2, 10)));
        assert_eq!(
            source.index.place(text, text.find("kwnus").unwrap_or(0)),
            (1, 18)
        );
        assert_eq!(LineIndex::new(text).line_col(text, 3).column, 1);
    }

    #[test]
    fn spans_on_a_very_long_line_are_shown_around_themselves() {
        use miette::SourceCode;
        let line: String = "é, X".repeat(20_000);
        let text = format!("policy p\n{line}\nend\n");
        let source = IndexedSource {
            name: "f.pmf".into(),
            text: Arc::from(text.as_str()),
            index: Arc::new(SourceIndex::new(&text)),
        };
        for offset in [9, 9 + 100, 9 + line.len() / 2, 9 + line.len() - 3] {
            let offset = floor_boundary(&text, offset);
            let span = SourceSpan::new(offset.into(), 1);
            let whole = text.as_bytes().read_span(&span, 0, 0).unwrap();
            let window = source.read_span(&span, 0, 0).unwrap();
            // The place is the whole text's, the text around it short.
            assert_eq!(
                (window.line(), window.column()),
                (whole.line(), char_column(&text, offset))
            );
            assert_eq!(window.span().offset(), offset);
            let around = source.read_span(&span, 1, 1).unwrap();
            assert!(around.line() <= 1);
            assert!(
                around.data().len() <= 2 * SHOWN_AROUND + 8,
                "{}",
                around.data().len()
            );
            assert!(around.span().offset() <= offset);
            assert!(around.span().offset() + around.span().len() > offset);
        }
    }

    #[test]
    fn windows_read_as_miette_reads_the_whole_text() {
        use miette::SourceCode;
        for text in texts() {
            let source = IndexedSource {
                name: "f.pmf".into(),
                text: Arc::from(text.as_str()),
                index: Arc::new(SourceIndex::new(&text)),
            };
            for start in offsets(&text).into_iter().filter(|&s| s <= text.len()) {
                for len in [0, 1, 3, 700].map(|l: usize| l.min(text.len() - start)) {
                    for context in [0, 1, 2] {
                        let span = SourceSpan::new(start.into(), len);
                        let whole = text.as_bytes().read_span(&span, context, context);
                        let window = source.read_span(&span, context, context);
                        match (whole, window) {
                            (Ok(whole), Ok(window)) => {
                                // Without context (the header's place),
                                // the column is in characters.
                                let expected = if context == 0 {
                                    with_column(contents(&*whole), char_column(&text, start))
                                } else {
                                    contents(&*whole)
                                };
                                assert_eq!(
                                    contents(&*window),
                                    expected,
                                    "{text:?} {start}+{len} ±{context}"
                                );
                                assert_eq!(window.name(), Some("f.pmf"));
                            }
                            (Err(_), Err(_)) => {}
                            (whole, window) => panic!(
                                "{text:?} {start}+{len} ±{context}: {:?} / {:?}",
                                whole.is_ok(),
                                window.is_ok()
                            ),
                        }
                    }
                }
            }
        }
    }
}
