//! Characters a reader never sees as pmf reads them (PMF006): control
//! characters (tab and line ends aside), which a terminal obeys (an escape
//! sequence recolours or rewrites what a reviewer sees), and bidirectional
//! controls and line separators, which reorder or break the text around
//! them in an editor or a code review ("Trojan Source", CVE-2021-42574).
//! A policy is read by people before it governs: what they read must be
//! what pmf reads.

use super::span::{Place, Span};
use crate::diagnostics::render::obeyed_by_terminals;
use crate::diagnostics::{Code, Diagnostic, Fix};

/// Most runs of hidden characters reported in one chunk; the last one
/// reported says how many more follow.
const MOST_PER_CHUNK: usize = 16;

/// Whether a byte may start a hidden character: a C0 control but tab and
/// line ends, DEL, or the first byte of a C1 control (`0xC2`), of U+061C
/// (`0xD8`) or of a bidirectional control or separator (`0xE2`).
const fn may_start(b: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || matches!(b, 0x7f | 0xc2 | 0xd8 | 0xe2)
}

/// [`may_start`] of every byte, looked up rather than compared.
// Evaluated at compile time: an index out of bounds fails the build.
#[allow(clippy::indexing_slicing)]
const MAY_START: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = may_start(b as u8);
        b += 1;
    }
    table
};

/// Whether `c` is a hidden character (see the module's documentation).
pub fn is_hidden(c: char) -> bool {
    obeyed_by_terminals(c)
}

/// `c` by code point and name, such as `U+202E (Right-to-Left Override)`.
pub fn described(c: char) -> String {
    format!("U+{:04X} ({})", c as u32, name(c))
}

/// The hidden character at byte `at` of `text`, if there is one.
fn hidden_at(text: &str, at: usize) -> Option<char> {
    let c = text.get(at..)?.chars().next()?;
    is_hidden(c).then_some(c)
}

/// The name a reader knows `c` by, after its code point.
fn name(c: char) -> &'static str {
    const C0: [&str; 32] = [
        "Null",
        "Start of Heading",
        "Start of Text",
        "End of Text",
        "End of Transmission",
        "Enquiry",
        "Acknowledge",
        "Bell",
        "Backspace",
        "Character Tabulation",
        "Line Feed",
        "Line Tabulation",
        "Form Feed",
        "Carriage Return",
        "Shift Out",
        "Shift In",
        "Data Link Escape",
        "Device Control One",
        "Device Control Two",
        "Device Control Three",
        "Device Control Four",
        "Negative Acknowledge",
        "Synchronous Idle",
        "End of Transmission Block",
        "Cancel",
        "End of Medium",
        "Substitute",
        "Escape",
        "Information Separator Four",
        "Information Separator Three",
        "Information Separator Two",
        "Information Separator One",
    ];
    match c {
        '\u{7f}' => "Delete",
        '\u{80}'..='\u{9f}' => "a C1 control",
        '\u{061c}' => "Arabic Letter Mark",
        '\u{200e}' => "Left-to-Right Mark",
        '\u{200f}' => "Right-to-Left Mark",
        '\u{2028}' => "Line Separator",
        '\u{2029}' => "Paragraph Separator",
        '\u{202a}' => "Left-to-Right Embedding",
        '\u{202b}' => "Right-to-Left Embedding",
        '\u{202c}' => "Pop Directional Formatting",
        '\u{202d}' => "Left-to-Right Override",
        '\u{202e}' => "Right-to-Left Override",
        '\u{2066}' => "Left-to-Right Isolate",
        '\u{2067}' => "Right-to-Left Isolate",
        '\u{2068}' => "First Strong Isolate",
        '\u{2069}' => "Pop Directional Isolate",
        _ => C0.get(c as usize).copied().unwrap_or("a control character"),
    }
}

/// What `c` does to a reader, for the label.
fn effect(c: char) -> &'static str {
    if c.is_control() {
        "a terminal acts on this character; editors and reviews hide it"
    } else if matches!(c, '\u{2028}' | '\u{2029}') {
        "an editor breaks the line here; pmf does not"
    } else {
        "this character reorders how the text around it is shown"
    }
}

/// The hidden characters of `text` (a chunk that starts at byte `at` of
/// `file`), a diagnostic for each run of them (at most
/// [`MOST_PER_CHUNK`]).
pub fn hidden_characters(file: &str, text: &str, at: usize) -> Vec<Diagnostic> {
    let bytes = text.as_bytes();
    let mut runs: Vec<(usize, usize, char)> = Vec::new();
    let mut i = 0;
    while let Some(step) = bytes.get(i..).and_then(|rest| {
        rest.iter()
            .position(|&b| MAY_START.get(usize::from(b)).copied().unwrap_or(false))
    }) {
        i += step;
        let Some(c) = hidden_at(text, i) else {
            i += 1;
            continue;
        };
        let end = i + c.len_utf8();
        match runs.last_mut() {
            Some(run) if run.1 == i => run.1 = end,
            _ => runs.push((i, end, c)),
        }
        i = end;
    }
    let total = runs.len();
    runs.iter()
        .take(MOST_PER_CHUNK)
        .enumerate()
        .map(|(n, &(start, end, c))| {
            let span = Span::new(start, end);
            let more = if n + 1 == MOST_PER_CHUNK && total > MOST_PER_CHUNK {
                format!(
                    " ({} more in this declaration are not listed)",
                    total - MOST_PER_CHUNK
                )
            } else {
                String::new()
            };
            let count = text.get(start..end).map_or(1, |s| s.chars().count());
            let what = if count > 1 {
                format!(
                    "hidden character {} and {} more after it",
                    described(c),
                    count - 1
                )
            } else {
                format!("hidden character {}", described(c))
            };
            Diagnostic::new(Code::HiddenCharacter, file, Place::at(span, at), what)
                .with_label(effect(c))
                .with_help(format!(
                    "remove it: what a reviewer reads must be what pmf reads{more}"
                ))
                .with_fix(Fix::maybe(Place::at(span, at), ""))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<(u32, u32, String)> {
        hidden_characters("a.pmf", text, 0)
            .into_iter()
            .map(|d| (d.primary.span.start, d.primary.span.end, d.message))
            .collect()
    }

    #[test]
    fn controls_and_bidirectional_characters_are_found_and_named() {
        assert_eq!(
            found("a \u{1b}[31m b \u{202e}c\u{2066}\u{2069}"),
            vec![
                (2, 3, "hidden character U+001B (Escape)".to_string()),
                (
                    10,
                    13,
                    "hidden character U+202E (Right-to-Left Override)".to_string()
                ),
                (
                    14,
                    20,
                    "hidden character U+2066 (Left-to-Right Isolate) and 1 more after it"
                        .to_string()
                ),
            ]
        );
        assert_eq!(
            found("\u{85}\u{7f}\u{c}\u{2028}\u{61c}"),
            vec![(
                0,
                9,
                "hidden character U+0085 (a C1 control) and 4 more after it".to_string()
            )]
        );
    }

    #[test]
    fn ordinary_text_has_none() {
        // Tabs, line ends, typographic quotes and other characters that
        // share a first byte with a hidden one.
        assert!(found("a\tb\r\n“c” – é ‰ \u{2030} \u{600} \u{200d}").is_empty());
    }

    #[test]
    fn spans_are_placed_in_the_file_and_runs_are_capped() {
        let d = hidden_characters("a.pmf", "x\u{7}", 100);
        assert_eq!((d[0].primary.span.start, d[0].primary.span.end), (101, 102));
        let many = "\u{7} ".repeat(40);
        let d = hidden_characters("a.pmf", &many, 0);
        assert_eq!(d.len(), MOST_PER_CHUNK);
        assert!(
            d.last()
                .and_then(|d| d.help.as_deref())
                .is_some_and(|h| h.contains("24 more")),
            "{d:?}"
        );
    }
}
