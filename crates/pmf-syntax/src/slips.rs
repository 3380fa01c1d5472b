//! The usual slips behind a syntax error (PMF001): where pest stopped, the
//! text often shows what the author meant (`=` for `==`, a typographic
//! quote, a file name where a policy name goes, ...). [`recognise`] names
//! the slip, says what was expected and proposes the edit that fixes it.
//!
//! Everything here reads one chunk's text; the parser checks that a
//! proposed edit really lets the chunk parse before it calls it certain.

use super::span::Span;
use super::split::TOP_LEVEL_KEYWORDS;

/// A slip the parser recognises and explains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slip {
    /// `a = b` where the comparison `a == b` is meant.
    SingleEquals,
    /// `=<` or `=>` for `<=` or `>=`.
    ReversedComparison,
    /// `90..100` in a band, where `90..=100` is meant.
    OpenRange,
    /// `v1.2.3`: a version with a `v` prefix.
    VersionPrefix,
    /// Words without quotes where a string goes (rites, labels).
    UnquotedText,
    /// A Unicode character that looks like an ASCII one: typographic
    /// quotes, a no-break space, an en dash, ...
    LookAlike,
    /// A file name (`kwanus.pmf`) where a policy name goes.
    FileName,
    /// A name with a hyphen (`my-fleet`).
    HyphenatedName,
    /// `ceiling FIELD VALUE` without `<` or `<=`.
    CeilingOperator,
    /// `to previous` for `to previous_stable`.
    PreviousStable,
    /// A rule `name: condition ACTION` without `else`.
    MissingElse,
    /// A bracket still open where the declaration ends (often because a
    /// line in column 0 started a new declaration inside the block).
    UnclosedBracket,
    /// A top-level declaration indented outside any block.
    IndentedDeclaration,
    /// A top-level declaration inside a block that was never closed.
    DeclarationInBlock,
    /// A closing bracket of a block opened before the declaration: a line
    /// of that block started in column 0 with a keyword.
    ClosesNothing,
    /// A keyword spelt wrong (`reversable`).
    MisspeltKeyword,
}

impl Slip {
    /// Every slip.
    pub const ALL: &'static [Slip] = &[
        Slip::SingleEquals,
        Slip::ReversedComparison,
        Slip::OpenRange,
        Slip::VersionPrefix,
        Slip::UnquotedText,
        Slip::LookAlike,
        Slip::FileName,
        Slip::HyphenatedName,
        Slip::CeilingOperator,
        Slip::PreviousStable,
        Slip::MissingElse,
        Slip::UnclosedBracket,
        Slip::IndentedDeclaration,
        Slip::DeclarationInBlock,
        Slip::ClosesNothing,
        Slip::MisspeltKeyword,
    ];

    /// What the parser expected where the slip is (the `expected ...` of
    /// the message, when the slip does not name it more precisely).
    pub fn expected(self) -> &'static str {
        match self {
            Slip::SingleEquals => "`==`",
            Slip::ReversedComparison => "`<=` or `>=`",
            Slip::OpenRange => "`..=`",
            Slip::VersionPrefix => "a version such as `1.2.3`",
            Slip::UnquotedText => "a string in double quotes",
            Slip::LookAlike => "an ASCII character",
            Slip::FileName => "a policy name",
            Slip::HyphenatedName => "a name (letters, digits and `_`)",
            Slip::CeilingOperator => "`<` or `<=`",
            Slip::PreviousStable => "`previous_stable` or a version",
            Slip::MissingElse => "`else` before the action",
            Slip::UnclosedBracket => "a closing bracket",
            Slip::IndentedDeclaration => "a declaration in column 0",
            Slip::DeclarationInBlock => "the block to be closed first",
            Slip::ClosesNothing => "the rest of the declaration",
            Slip::MisspeltKeyword => "a keyword",
        }
    }
}

/// What the parser expected where it stopped, as far as slips care.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expected {
    /// A comparison operator (`==`, `<=`, ...).
    pub comparison: bool,
    /// Only a comparison operator (a ceiling's).
    pub only_comparison: bool,
    /// A string.
    pub string: bool,
    /// `else`.
    pub else_kw: bool,
    /// `previous_stable`.
    pub previous_stable: bool,
    /// A health band.
    pub band: bool,
}

/// An edit of the chunk's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// The text to replace, in the chunk.
    pub span: Span,
    /// The new text.
    pub replacement: String,
    /// The edit is what the author meant whenever it lets the chunk parse.
    pub certain: bool,
}

/// A recognised slip, in the chunk's offsets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// Which slip.
    pub slip: Slip,
    /// The slip's place.
    pub span: Span,
    /// The message (`expected ..., found ...`).
    pub message: String,
    /// The primary label.
    pub label: String,
    /// The help.
    pub help: String,
    /// A further place and what it has to do with the slip.
    pub also: Option<(Span, String)>,
    /// The edit that fixes it.
    pub edit: Option<Edit>,
}

/// Where the parser stopped in a chunk's `text`.
#[derive(Clone, Copy)]
pub struct Stop<'a> {
    /// The chunk's text.
    pub text: &'a str,
    /// Where pest stopped.
    pub raw: usize,
    /// Where the unexpected token starts (after white space).
    pub pos: usize,
    /// The unexpected token (empty at the end of the chunk).
    pub found: &'a str,
    /// What pest expected there, in words (`` `when` or a string ``).
    pub wanted: &'a str,
    /// What pest expected there, as flags.
    pub expected: Expected,
    /// The keywords pest expected there (`when`, `reversible`, ...).
    pub keywords: &'a [&'a str],
    /// True when a text parses as one declaration.
    pub parses: &'a dyn Fn(&str) -> bool,
}

/// The slip that explains why the parser stopped at `stop`, if it is one
/// of the usual ones.
pub(crate) fn recognise(stop: &Stop<'_>) -> Option<Found> {
    look_alike(stop)
        .or_else(|| unclosed(stop))
        .or_else(|| layout(stop))
        .or_else(|| equals(stop))
        .or_else(|| open_range(stop))
        .or_else(|| version_prefix(stop))
        .or_else(|| file_name(stop))
        .or_else(|| hyphenated(stop))
        .or_else(|| previous(stop))
        .or_else(|| ceiling(stop))
        .or_else(|| misspelt(stop))
        .or_else(|| missing_else(stop))
        .or_else(|| unquoted(stop))
        .or_else(|| closes_nothing(stop))
}

fn found(slip: Slip, span: Span, message: String, label: &str, help: String) -> Found {
    Found {
        slip,
        span,
        message,
        label: label.to_string(),
        help,
        also: None,
        edit: None,
    }
}

fn edit(span: Span, replacement: impl Into<String>, certain: bool) -> Option<Edit> {
    Some(Edit {
        span,
        replacement: replacement.into(),
        certain,
    })
}

/// A character that looks like an ASCII one, its name, the ASCII text it
/// looks like and that text's name.
struct LookAlike {
    ch: char,
    name: &'static str,
    ascii: &'static str,
    ascii_name: &'static str,
}

const fn la(
    ch: char,
    name: &'static str,
    ascii: &'static str,
    ascii_name: &'static str,
) -> LookAlike {
    LookAlike {
        ch,
        name,
        ascii,
        ascii_name,
    }
}

const QUOTE: &str = "Quotation Mark";
const SPACE: &str = "Space";
const HYPHEN: &str = "Hyphen-Minus";

static LOOK_ALIKES: &[LookAlike] = &[
    la('\u{201C}', "Left Double Quotation Mark", "\"", QUOTE),
    la('\u{201D}', "Right Double Quotation Mark", "\"", QUOTE),
    la('\u{201E}', "Double Low-9 Quotation Mark", "\"", QUOTE),
    la(
        '\u{201F}',
        "Double High-Reversed-9 Quotation Mark",
        "\"",
        QUOTE,
    ),
    la('\u{2033}', "Double Prime", "\"", QUOTE),
    la('\u{FF02}', "Fullwidth Quotation Mark", "\"", QUOTE),
    la('\u{2018}', "Left Single Quotation Mark", "\"", QUOTE),
    la('\u{2019}', "Right Single Quotation Mark", "\"", QUOTE),
    la('\u{00A0}', "No-Break Space", " ", SPACE),
    la('\u{2002}', "En Space", " ", SPACE),
    la('\u{2003}', "Em Space", " ", SPACE),
    la('\u{2007}', "Figure Space", " ", SPACE),
    la('\u{2009}', "Thin Space", " ", SPACE),
    la('\u{202F}', "Narrow No-Break Space", " ", SPACE),
    la('\u{3000}', "Ideographic Space", " ", SPACE),
    la('\u{200B}', "Zero Width Space", "", "nothing"),
    la('\u{2060}', "Word Joiner", "", "nothing"),
    la('\u{FEFF}', "Zero Width No-Break Space", "", "nothing"),
    la('\u{2010}', "Hyphen", "-", HYPHEN),
    la('\u{2011}', "Non-Breaking Hyphen", "-", HYPHEN),
    la('\u{2012}', "Figure Dash", "-", HYPHEN),
    la('\u{2013}', "En Dash", "-", HYPHEN),
    la('\u{2014}', "Em Dash", "-", HYPHEN),
    la('\u{2212}', "Minus Sign", "-", HYPHEN),
    la(
        '\u{2192}',
        "Rightwards Arrow",
        "->",
        "Hyphen-Minus, Greater-Than Sign",
    ),
    la(
        '\u{2264}',
        "Less-Than Or Equal To",
        "<=",
        "Less-Than Sign, Equals Sign",
    ),
    la(
        '\u{2265}',
        "Greater-Than Or Equal To",
        ">=",
        "Greater-Than Sign, Equals Sign",
    ),
    la(
        '\u{2260}',
        "Not Equal To",
        "!=",
        "Exclamation Mark, Equals Sign",
    ),
    la('\u{FF1A}', "Fullwidth Colon", ":", "Colon"),
    la('\u{FF0C}', "Fullwidth Comma", ",", "Comma"),
    la('\u{2024}', "One Dot Leader", ".", "Full Stop"),
    la(
        '\u{0430}',
        "Cyrillic Small Letter A",
        "a",
        "Latin Small Letter A",
    ),
    la(
        '\u{0435}',
        "Cyrillic Small Letter Ie",
        "e",
        "Latin Small Letter E",
    ),
    la(
        '\u{043E}',
        "Cyrillic Small Letter O",
        "o",
        "Latin Small Letter O",
    ),
    la(
        '\u{0440}',
        "Cyrillic Small Letter Er",
        "p",
        "Latin Small Letter P",
    ),
    la(
        '\u{0441}',
        "Cyrillic Small Letter Es",
        "c",
        "Latin Small Letter C",
    ),
    la(
        '\u{0445}',
        "Cyrillic Small Letter Ha",
        "x",
        "Latin Small Letter X",
    ),
    la(
        '\u{0456}',
        "Cyrillic Small Letter Byelorussian-Ukrainian I",
        "i",
        "Latin Small Letter I",
    ),
    la(
        '\u{03BF}',
        "Greek Small Letter Omicron",
        "o",
        "Latin Small Letter O",
    ),
];

fn look_alike_of(c: char) -> Option<&'static LookAlike> {
    LOOK_ALIKES.iter().find(|l| l.ch == c)
}

/// How a character is shown in a message: itself, or only its code point
/// when it is white space or invisible.
fn shown(c: char) -> String {
    if c.is_whitespace() || matches!(c, '\u{200B}' | '\u{2060}' | '\u{FEFF}') {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("`{c}`")
    }
}

fn look_alike(stop: &Stop<'_>) -> Option<Found> {
    // The token, or the white space pest stopped in front of.
    let from = stop.raw.min(stop.pos);
    let (at, c) = stop.text[from..]
        .char_indices()
        .take_while(|(i, _)| from + i <= stop.pos)
        .map(|(i, c)| (from + i, c))
        .find(|(_, c)| look_alike_of(*c).is_some())
        .or_else(|| look_alike_on_line(stop.text, stop.pos))?;
    let l = look_alike_of(c)?;
    let (span, replacement) = look_alike_edit(stop.text, at, l);
    let single_quote = matches!(c, '\u{2018}' | '\u{2019}');
    let ascii_shown = if single_quote {
        "'\''".to_string()
    } else if l.ascii.is_empty() {
        "nothing".to_string()
    } else if l.ascii == " " {
        "' '".to_string()
    } else {
        format!("'{}'", l.ascii)
    };
    let mut help = format!(
        "Unicode character '{c}' (U+{:04X}, {}) looks like {ascii_shown} ({}), but it is not",
        u32::from(c),
        l.name,
        if single_quote {
            "Apostrophe"
        } else {
            l.ascii_name
        }
    );
    if l.ascii == "\"" {
        help.push_str("; strings are written between straight double quotes `\"`");
    }
    let expected = if l.ascii.is_empty() || l.ascii == " " {
        stop.wanted.to_string()
    } else if c.is_alphabetic() {
        format!("the ASCII letter `{}`", l.ascii)
    } else {
        format!("`{}`", l.ascii)
    };
    let mut f = found(
        Slip::LookAlike,
        Span::new(at, at + c.len_utf8()),
        format!("expected {expected}, found {}", shown(c)),
        "looks like ASCII, but is not",
        help,
    );
    f.edit = edit(span, replacement, true);
    Some(f)
}

/// The first look-alike character from `pos` to the end of its line,
/// outside strings and comments (pest may stop at the start of the item
/// that holds it).
fn look_alike_on_line(text: &str, pos: usize) -> Option<(usize, char)> {
    let mut in_string = false;
    let mut prev = '\0';
    for (i, c) in text[pos..].char_indices() {
        match c {
            '\n' => return None,
            '"' if prev != '\\' => in_string = !in_string,
            '/' if !in_string && prev == '/' => return None,
            _ if !in_string && look_alike_of(c).is_some() => return Some((pos + i, c)),
            _ => {}
        }
        prev = c;
    }
    None
}

/// The edit that turns the look-alike `l` at `at` into ASCII: a typographic
/// string with both its quotes; a word with all its look-alike letters.
fn look_alike_edit(text: &str, at: usize, l: &LookAlike) -> (Span, String) {
    let c = l.ch;
    let after = at + c.len_utf8();
    if l.ascii == "\"" {
        let line_end = text[after..].find('\n').map_or(text.len(), |n| after + n);
        let closing = text[after..line_end]
            .char_indices()
            .find(|(_, ch)| *ch == '"' || look_alike_of(*ch).is_some_and(|x| x.ascii == "\""));
        if let Some((i, close)) = closing {
            let inner = &text[after..after + i];
            let end = after + i + close.len_utf8();
            return (Span::new(at, end), format!("\"{inner}\""));
        }
        return (Span::new(at, after), "\"".to_string());
    }
    if c.is_alphabetic() {
        let end = text[at..]
            .char_indices()
            .find(|(_, ch)| {
                !(ch.is_ascii_alphanumeric()
                    || *ch == '_'
                    || look_alike_of(*ch).is_some_and(|x| {
                        x.ascii.len() == 1 && x.ascii.chars().all(|a| a.is_ascii_alphabetic())
                    }))
            })
            .map_or(text.len(), |(i, _)| at + i);
        let replacement: String = text[at..end]
            .chars()
            .map(|ch| look_alike_of(ch).map_or(ch.to_string(), |x| x.ascii.to_string()))
            .collect();
        return (Span::new(at, end), replacement);
    }
    (Span::new(at, after), l.ascii.to_string())
}

/// The brackets still open at `upto` in `text` (strings and comments
/// skipped), outermost first.
pub(crate) fn open_brackets(text: &str, upto: usize) -> Vec<(usize, u8)> {
    let bytes = text.as_bytes();
    let upto = upto.min(bytes.len());
    let mut stack: Vec<(usize, u8)> = Vec::new();
    // The byte at `i` when it is before `upto`.
    let at = |i: usize| bytes.get(i).copied().filter(|_| i < upto);
    let mut i = 0;
    while let Some(b) = at(i) {
        match b {
            b'"' => {
                i += 1;
                while let Some(c) = at(i)
                    && c != b'"'
                    && c != b'\n'
                {
                    i += if c == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(upto, |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..].find("*/").map_or(upto, |n| i + 2 + n + 2);
            }
            b @ (b'(' | b'[' | b'{') => {
                stack.push((i, b));
                i += 1;
            }
            b @ (b')' | b']' | b'}') => {
                let open = match b {
                    b')' => b'(',
                    b']' => b'[',
                    _ => b'{',
                };
                // A closer closes its opener and whatever is open inside it.
                if let Some(k) = stack.iter().rposition(|(_, o)| *o == open) {
                    stack.truncate(k);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    stack
}

fn closer(open: u8) -> char {
    match open {
        b'(' => ')',
        b'[' => ']',
        _ => '}',
    }
}

const COLUMN_0_RULE: &str = "a line that starts in column 0 with a top-level keyword (`rite`, `health`, `partner`, ...) starts a new declaration";

fn unclosed(stop: &Stop<'_>) -> Option<Found> {
    if !stop.found.is_empty() {
        return unclosed_on_line(stop);
    }
    let open = open_brackets(stop.text, stop.text.len());
    let &(at, b) = open.last()?;
    let close = closer(b);
    let b = char::from(b);
    let end = stop.text.trim_end().len();
    let closing: String = open.iter().rev().map(|(_, o)| closer(*o)).collect();
    let mut f = found(
        Slip::UnclosedBracket,
        Span::new(stop.pos, stop.pos),
        format!("expected `{close}` to close the `{b}`, found the end of the declaration"),
        "the declaration ends here",
        format!(
            "{COLUMN_0_RULE} and ends the one above: if the line where this declaration ends belongs inside the block, indent it; otherwise close the block above it with `{close}`"
        ),
    );
    f.also = Some((Span::new(at, at + 1), format!("this `{b}` is never closed")));
    f.edit = edit(Span::new(end, end), format!("\n{closing}"), false);
    Some(f)
}

/// A `(` or `[` opened earlier on the line where the parser stopped and
/// not closed before it: the closer is missing before the token.
fn unclosed_on_line(stop: &Stop<'_>) -> Option<Found> {
    let start = line_start(stop.text, stop.pos);
    let &(at, b) = open_brackets(stop.text, stop.pos)
        .last()
        .filter(|(at, b)| *at >= start && matches!(b, b'(' | b'['))?;
    let close = closer(b);
    let b = char::from(b);
    let before = stop.text[..stop.pos].trim_end().len();
    let mut f = found(
        Slip::UnclosedBracket,
        Span::new(stop.pos, stop.pos + stop.found.len()),
        format!(
            "expected `{close}` to close the `{b}`, found `{}`",
            stop.found
        ),
        "the bracket should be closed before this",
        format!("close the `{b}` with `{close}` where what it groups ends"),
    );
    f.also = Some((Span::new(at, at + 1), format!("this `{b}` is never closed")));
    f.edit = edit(Span::new(before, before), close.to_string(), false);
    Some(f)
}

/// The first closing bracket of `text` that closes nothing in it (strings
/// and comments skipped).
fn stray_closer(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                while let Some(&c) = bytes.get(i)
                    && c != b'"'
                    && c != b'\n'
                {
                    i += if c == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 1);
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return Some(i),
            },
            _ => {}
        }
        i += 1;
    }
    None
}

fn closes_nothing(stop: &Stop<'_>) -> Option<Found> {
    let at = stray_closer(stop.text)?;
    if at < stop.pos {
        return None;
    }
    let head = stop.text.trim_start();
    let first_line = head.lines().next().unwrap_or_default().trim_end();
    let close = char::from(*stop.text.as_bytes().get(at)?);
    let found_text = if stop.found.is_empty() {
        "the end of the declaration".to_string()
    } else {
        format!("`{}`", stop.found)
    };
    let mut f = found(
        Slip::ClosesNothing,
        Span::new(stop.pos, stop.pos + stop.found.len()),
        format!("expected {}, found {found_text}", stop.wanted),
        "not expected here",
        format!(
            "{COLUMN_0_RULE}, and this declaration's `{close}` closes nothing in it: if `{first_line}` belongs inside the block above, indent it; otherwise remove the `{close}`"
        ),
    );
    f.also = Some((
        Span::new(at, at + 1),
        format!("this `{close}` closes a block opened before this declaration"),
    ));
    Some(f)
}

/// The start of the line that holds `pos`.
fn line_start(text: &str, pos: usize) -> usize {
    text[..pos.min(text.len())].rfind('\n').map_or(0, |n| n + 1)
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn layout(stop: &Stop<'_>) -> Option<Found> {
    let text = stop.text;
    let start = line_start(text, stop.pos);
    let indent = text[start..].len() - text[start..].trim_start_matches([' ', '\t']).len();
    let kw_at = start + indent;
    if indent == 0 || kw_at == 0 {
        return None;
    }
    let rest = &text[kw_at..];
    let kw = TOP_LEVEL_KEYWORDS.iter().find(|kw| {
        rest.starts_with(**kw)
            && !rest
                .as_bytes()
                .get(kw.len())
                .copied()
                .is_some_and(is_word_byte)
    })?;
    // The keyword itself, or the token right after it, stopped the parser.
    let after_kw = kw_at + kw.len();
    let next = after_kw
        + (text[after_kw..].len() - text[after_kw..].trim_start_matches([' ', '\t']).len());
    if stop.pos != kw_at && stop.pos != next {
        return None;
    }
    // A phase may be called `validation`: the line must be a declaration.
    let line_end = text[kw_at..].find('\n').map_or(text.len(), |n| kw_at + n);
    if !((stop.parses)(&text[kw_at..line_end]) || (stop.parses)(&text[kw_at..])) {
        return None;
    }
    let kw_span = Span::new(kw_at, after_kw);
    let open = open_brackets(text, start);
    match open.last() {
        None => {
            let mut f = found(
                Slip::IndentedDeclaration,
                kw_span,
                format!("expected {}, found an indented `{kw}`", stop.wanted),
                "indented, so read as part of the declaration above",
                format!(
                    "{COLUMN_0_RULE}; an indented one is read as part of the declaration above: remove the indentation of this line"
                ),
            );
            f.edit = edit(Span::new(start, kw_at), "", true);
            Some(f)
        }
        Some(&(at, b)) => {
            let b = char::from(b);
            let mut f = found(
                Slip::DeclarationInBlock,
                kw_span,
                format!(
                    "expected {} inside the `{b}`, found the declaration keyword `{kw}`",
                    stop.wanted
                ),
                "a top-level declaration inside a block",
                format!(
                    "`{kw}` declares at the top level, but the `{b}` above is still open: close the block above with `{}`, then start this declaration in column 0 ({COLUMN_0_RULE})",
                    closer(b as u8)
                ),
            );
            f.also = Some((Span::new(at, at + 1), format!("this `{b}` is still open")));
            Some(f)
        }
    }
}

fn equals(stop: &Stop<'_>) -> Option<Found> {
    let rest = &stop.text[stop.pos..];
    if !stop.expected.comparison || !rest.starts_with('=') || rest.starts_with("==") {
        return None;
    }
    if let Some(op) = ["=<", "=>"].iter().find(|op| rest.starts_with(**op)) {
        let right: String = op.chars().rev().collect();
        let mut f = found(
            Slip::ReversedComparison,
            Span::new(stop.pos, stop.pos + 2),
            format!("expected `{right}`, found `{op}`"),
            "the two characters are the wrong way round",
            format!("the comparison is written `{right}`, with `=` last"),
        );
        f.edit = edit(f.span, right, true);
        return Some(f);
    }
    let mut f = found(
        Slip::SingleEquals,
        Span::new(stop.pos, stop.pos + 1),
        "expected `==`, found `=`".to_string(),
        "`=` is not an operator",
        "equality is compared with `==`; PMF has no assignment".to_string(),
    );
    f.edit = edit(f.span, "==", true);
    Some(f)
}

fn open_range(stop: &Stop<'_>) -> Option<Found> {
    if !stop.expected.band {
        return None;
    }
    let start = stop.raw.min(stop.pos);
    let line_end = stop.text[start..]
        .find('\n')
        .map_or(stop.text.len(), |n| start + n);
    let line = &stop.text[start..line_end];
    let at = line
        .match_indices("..")
        .map(|(i, _)| start + i)
        .find(|i| !stop.text[i + 2..].starts_with('='))?;
    let mut f = found(
        Slip::OpenRange,
        Span::new(at, at + 2),
        "expected `..=`, found `..`".to_string(),
        "a band's range includes its upper bound",
        "a band's scores are written `LOW..=HIGH`, both bounds included".to_string(),
    );
    f.edit = edit(f.span, "..=", true);
    Some(f)
}

/// The word of `text` around `pos` made of bytes that `part` accepts.
fn word_around(text: &str, pos: usize, part: impl Fn(u8) -> bool) -> Span {
    let bytes = text.as_bytes();
    let mut start = pos.min(bytes.len());
    while let Some(&b) = start.checked_sub(1).and_then(|j| bytes.get(j))
        && part(b)
    {
        start -= 1;
    }
    let mut end = pos.min(bytes.len());
    while bytes.get(end).is_some_and(|&b| part(b)) {
        end += 1;
    }
    Span::new(start, end)
}

fn version_prefix(stop: &Stop<'_>) -> Option<Found> {
    let w = word_around(stop.text, stop.pos, |b| is_word_byte(b) || b == b'.');
    let word = &stop.text[w.range()];
    let digits = word.strip_prefix(['v', 'V'])?;
    let parts: Vec<&str> = digits.split('.').collect();
    if parts.len() < 2
        || !parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mut f = found(
        Slip::VersionPrefix,
        w,
        format!("expected a version such as `{digits}`, found `{word}`"),
        "versions have no `v` prefix",
        format!("write the version without its `v`: `{digits}`"),
    );
    f.edit = edit(Span::new(w.start as usize, w.start as usize + 1), "", true);
    Some(f)
}

fn file_name(stop: &Stop<'_>) -> Option<Found> {
    let w = word_around(stop.text, stop.pos, |b| {
        is_word_byte(b) || matches!(b, b'.' | b'/' | b'-' | b'"')
    });
    let word = &stop.text[w.range()];
    let bare = word.trim_matches('"');
    let stem = bare.strip_suffix(".pmf")?;
    let name = stem.rsplit('/').next().unwrap_or(stem).replace('-', "_");
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.bytes().all(is_word_byte);
    if !valid {
        return None;
    }
    let mut f = found(
        Slip::FileName,
        w,
        format!("expected a policy name, found the file name `{bare}`"),
        "a file name, not a policy name",
        format!(
            "a policy is named by the name in its `policy` header, not by its file: write `{name}`"
        ),
    );
    f.edit = edit(w, name, true);
    Some(f)
}

fn hyphenated(stop: &Stop<'_>) -> Option<Found> {
    let bytes = stop.text.as_bytes();
    let p = stop.pos;
    if bytes.get(p) != Some(&b'-')
        || !p
            .checked_sub(1)
            .and_then(|j| bytes.get(j))
            .is_some_and(|&b| is_word_byte(b))
        || !bytes.get(p + 1).is_some_and(u8::is_ascii_alphabetic)
        || stop.expected.comparison
    {
        return None;
    }
    let w = word_around(stop.text, p, |b| is_word_byte(b) || b == b'-');
    let word = &stop.text[w.range()];
    let name = word.replace('-', "_");
    if !name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let mut f = found(
        Slip::HyphenatedName,
        w,
        format!("expected a name, found `{word}`"),
        "names cannot contain `-`",
        format!("names are made of letters, digits and `_`: write `{name}`"),
    );
    f.edit = edit(w, name, true);
    Some(f)
}

fn previous(stop: &Stop<'_>) -> Option<Found> {
    if !stop.expected.previous_stable || !stop.found.starts_with("prev") {
        return None;
    }
    let span = Span::new(stop.pos, stop.pos + stop.found.len());
    let mut f = found(
        Slip::PreviousStable,
        span,
        format!(
            "expected `previous_stable` or a version, found `{}`",
            stop.found
        ),
        "not a target of `to`",
        "a migration goes back `to previous_stable` (the last stable version) or to a version"
            .to_string(),
    );
    f.edit = edit(span, "previous_stable", true);
    Some(f)
}

fn ceiling(stop: &Stop<'_>) -> Option<Found> {
    let head = stop.text.trim_start();
    let head = head.strip_prefix("override").map_or(head, str::trim_start);
    if !stop.expected.only_comparison || !head.starts_with("ceiling") || stop.found.is_empty() {
        return None;
    }
    let mut f = found(
        Slip::CeilingOperator,
        Span::new(stop.pos, stop.pos + stop.found.len()),
        format!("expected `<` or `<=`, found `{}`", stop.found),
        "the ceiling's operator is missing",
        "a ceiling is an upper bound: `ceiling FIELD <= VALUE` (or `<` to leave the value itself out)".to_string(),
    );
    f.edit = edit(Span::new(stop.pos, stop.pos), "<= ", false);
    Some(f)
}

fn missing_else(stop: &Stop<'_>) -> Option<Found> {
    if !stop.expected.else_kw
        || !stop.found.starts_with(|c: char| c.is_ascii_alphabetic())
        || !stop.found.bytes().all(is_word_byte)
    {
        return None;
    }
    let span = Span::new(stop.pos, stop.pos + stop.found.len());
    let mut f = found(
        Slip::MissingElse,
        span,
        format!("expected `else` before the action, found `{}`", stop.found),
        "`else` is missing before this action",
        format!(
            "a rule reads `name: condition else action`: write `else {}`",
            stop.found
        ),
    );
    f.edit = edit(Span::new(stop.pos, stop.pos), "else ", true);
    Some(f)
}

fn misspelt(stop: &Stop<'_>) -> Option<Found> {
    if !stop.found.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    let words = stop
        .keywords
        .iter()
        .filter_map(|k| k.strip_prefix('`')?.strip_suffix('`'))
        .filter(|k| !k.contains(' '));
    let keyword = crate::diagnostics::closest(stop.found, words)?;
    let span = Span::new(stop.pos, stop.pos + stop.found.len());
    let mut f = found(
        Slip::MisspeltKeyword,
        span,
        format!("expected {}, found `{}`", stop.wanted, stop.found),
        "not a keyword here",
        format!("did you mean `{keyword}`?"),
    );
    f.edit = edit(span, keyword, true);
    Some(f)
}

/// Words that end unquoted text (what may follow a label).
const AFTER_LABEL: &[&str] = &["governs", "covers", "fallible"];

fn unquoted(stop: &Stop<'_>) -> Option<Found> {
    if !stop.expected.string || !stop.found.starts_with(|c: char| c.is_alphabetic()) {
        return None;
    }
    let text = stop.text;
    let line_end = text[stop.pos..]
        .find('\n')
        .map_or(text.len(), |n| stop.pos + n);
    let mut end = line_end;
    for stopper in ["//", "/*", "{", "->", "\""] {
        if let Some(n) = text[stop.pos..end].find(stopper) {
            end = stop.pos + n;
        }
    }
    let mut words_end = stop.pos;
    for (i, word) in text[stop.pos..end].split(' ').scan(stop.pos, |at, w| {
        let start = *at;
        *at += w.len() + 1;
        Some((start, w))
    }) {
        if AFTER_LABEL.contains(&word) {
            break;
        }
        if !word.is_empty() {
            words_end = i + word.len();
        }
    }
    let words = text[stop.pos..words_end].trim_end();
    if words.is_empty() {
        return None;
    }
    let span = Span::new(stop.pos, stop.pos + words.len());
    let quoted = format!("\"{}\"", words.replace('\\', "\\\\").replace('"', "\\\""));
    let mut f = found(
        Slip::UnquotedText,
        span,
        format!("expected a string in double quotes, found `{}`", stop.found),
        "words without quotes",
        format!("text such as a rite or a label is a string: write {quoted}"),
    );
    f.edit = edit(span, quoted, true);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slip_has_an_expectation_text() {
        for slip in Slip::ALL {
            assert!(!slip.expected().is_empty(), "{slip:?}");
        }
    }

    #[test]
    fn brackets_skip_strings_and_comments() {
        let text = "a { \"}\" // }\n ( ] /* ) */ [";
        let open: Vec<u8> = open_brackets(text, text.len())
            .iter()
            .map(|(_, b)| *b)
            .collect();
        assert_eq!(open, vec![b'{', b'(', b'[']);
        assert_eq!(open_brackets("{ ( }", 5), Vec::new());
    }

    #[test]
    fn look_alikes_are_named_with_their_code_points() {
        let text = "rite a \u{201C}words\u{201D}\n";
        let stop = Stop {
            text,
            raw: 7,
            pos: 7,
            found: "\u{201C}words",
            wanted: "a string",
            expected: Expected {
                string: true,
                ..Expected::default()
            },
            keywords: &[],
            parses: &|_| false,
        };
        let f = recognise(&stop).expect("a slip");
        assert_eq!(f.slip, Slip::LookAlike);
        assert!(f.help.contains("'\u{201C}' (U+201C, Left Double Quotation Mark) looks like '\"' (Quotation Mark), but it is not"), "{}", f.help);
        let e = f.edit.expect("an edit");
        assert_eq!(&text[e.span.range()], "\u{201C}words\u{201D}");
        assert_eq!(e.replacement, "\"words\"");
    }
}
