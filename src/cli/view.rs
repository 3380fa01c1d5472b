//! What `pmf plan show` and `pmf plan diff` share: tables for a terminal
//! and for Markdown, display widths, the terminal's width and partner-id
//! globs.

use std::io::IsTerminal;

/// `n` things, the word in the plural unless there is one: `1 partner`,
/// `2 partners`.
pub fn counted(n: impl Into<u64>, what: &str) -> String {
    let n = n.into();
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

/// The first 12 digits of a hash, as messages and tables name a plan,
/// a policy or a store by it.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

/// Columns `c` takes on a terminal: 0 for combining marks and zero-width
/// characters, 2 for East Asian wide and fullwidth characters and most
/// emoji, else 1 (an approximation of Unicode's East Asian Width).
pub fn char_width(c: char) -> usize {
    match u32::from(c) {
        0x0300..=0x036F | 0x200B..=0x200D | 0xFE00..=0xFE0F => 0,
        0x1100..=0x115F
        | 0x2E80..=0x303E
        | 0x3041..=0x33FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xA000..=0xA4CF
        | 0xAC00..=0xD7A3
        | 0xF900..=0xFAFF
        | 0xFE30..=0xFE4F
        | 0xFF00..=0xFF60
        | 0xFFE0..=0xFFE6
        | 0x1F300..=0x1F64F
        | 0x1F900..=0x1F9FF
        | 0x20000..=0x3FFFD => 2,
        _ => 1,
    }
}

/// Columns `text` takes on a terminal.
pub fn width(text: &str) -> usize {
    text.chars().map(char_width).sum()
}

/// `text` cut to at most `max` columns, ending in `…` when it was cut.
pub fn truncate(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w + 1 > max {
            break;
        }
        used += w;
        out.push(c);
    }
    if max > 0 {
        let kept = out.trim_end().len();
        out.truncate(kept);
        out.push('…');
    }
    out
}

/// `text` in lines of at most `max` columns, broken between words (a
/// word longer than a line is cut with `…`); without `max`, as it is.
pub fn wrap_words(text: &str, max: Option<usize>) -> String {
    let Some(max) = max else {
        return text.to_string();
    };
    let mut out = String::new();
    let mut used = 0;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let w = width(word);
        if used > 0 && used + 1 + w > max {
            out.push('\n');
            used = 0;
        }
        if used > 0 {
            out.push(' ');
            used += 1;
        }
        if w > max {
            out.push_str(&truncate(word, max));
            used += max;
        } else {
            out.push_str(word);
            used += w;
        }
    }
    out
}

/// The width of the terminal stdout is, or `None` when stdout is not a
/// terminal (output is then never cut). `COLUMNS` wins when set.
pub fn terminal_width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|&w| w >= 20)
    {
        return Some(w);
    }
    #[cfg(unix)]
    {
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ fills the `winsize` it is given, on a valid
        // descriptor (stdout, a terminal as checked above).
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col >= 20 {
            return Some(usize::from(size.ws_col));
        }
    }
    Some(100)
}

/// A table of text: headers and rows of cells.
#[derive(Debug, Default)]
pub struct Table {
    /// Column titles.
    pub headers: Vec<&'static str>,
    /// Rows, each with one cell per header.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with `headers` and no rows.
    pub fn new(headers: &[&'static str]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Columns padded to their widest cell, two spaces apart, the last one
    /// not padded; with `max`, each line is cut to that many columns
    /// (never wrapped).
    pub fn plain(&self, max: Option<usize>) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        let headers: Vec<String> = self.headers.iter().map(|h| h.to_uppercase()).collect();
        for row in std::iter::once(&headers).chain(&self.rows) {
            let mut line = String::new();
            for ((i, cell), w) in row.iter().enumerate().take(columns).zip(&widths) {
                line.push_str(cell);
                if i + 1 < columns {
                    line.push_str(&" ".repeat(w - width(cell) + 2));
                }
            }
            let line = line.trim_end();
            match max {
                Some(max) => out.push_str(&truncate(line, max)),
                None => out.push_str(line),
            }
            out.push('\n');
        }
        out
    }

    /// A GitHub-flavoured Markdown table (cells escaped).
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| ");
        out.push_str(&self.headers.join(" | "));
        out.push_str(" |\n|");
        out.push_str(&"---|".repeat(self.headers.len()));
        out.push('\n');
        for row in &self.rows {
            out.push('|');
            for cell in row {
                out.push(' ');
                out.push_str(&md(cell));
                out.push_str(" |");
            }
            out.push('\n');
        }
        out
    }
}

/// `text` escaped for a Markdown table cell or paragraph: Markdown's
/// punctuation backslash-escaped, HTML's `<`, `>` and `&` as entities, so
/// a partner id or reason can never open a link, a tag or a new cell.
pub fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '#' | '~' | '!' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `items` (`name count`) joined by ` · `, in lines of at most `max`
/// columns after an indent of `indent` columns (broken between items,
/// never inside one).
pub fn joined(items: &[String], indent: usize, max: Option<usize>) -> String {
    let Some(max) = max else {
        return items.join(" · ");
    };
    let mut out = String::new();
    let mut used = indent;
    for (i, item) in items.iter().enumerate() {
        let w = width(item);
        if i > 0 {
            if used + 3 + w > max {
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                used = indent;
            } else {
                out.push_str(" · ");
                used += 3;
            }
        }
        out.push_str(item);
        used += w;
    }
    out
}

/// A pattern for partner ids: `*` (any text), `?` (any one character),
/// `[abc]`, `[a-z]`, `[!a-z]` (one character of, or not of, a set) and
/// `\` (the next character as itself); any other character matches
/// itself, so an exact id is a pattern too.
#[derive(Debug, Clone)]
pub struct Glob {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone)]
enum Token {
    Char(char),
    Any,
    Star,
    Set {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl Glob {
    /// Read `pattern`; an unclosed or empty `[` set, or a `\` at the end,
    /// is an error saying so.
    pub fn new(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("the pattern is empty".into());
        }
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            tokens.push(match c {
                '*' => {
                    if matches!(tokens.last(), Some(Token::Star)) {
                        continue;
                    }
                    Token::Star
                }
                '?' => Token::Any,
                '\\' => Token::Char(
                    chars
                        .next()
                        .ok_or("`\\` at the end escapes nothing (write `\\\\` for a backslash)")?,
                ),
                '[' => {
                    let negated = chars.next_if(|&c| c == '!' || c == '^').is_some();
                    let mut ranges = Vec::new();
                    let mut closed = false;
                    while let Some(c) = chars.next() {
                        if c == ']' && !ranges.is_empty() {
                            closed = true;
                            break;
                        }
                        let c = if c == '\\' {
                            chars.next().ok_or("`[` is not closed by `]`")?
                        } else {
                            c
                        };
                        if chars.peek() == Some(&'-') {
                            chars.next();
                            match chars.next() {
                                Some(']') => {
                                    ranges.push((c, c));
                                    ranges.push(('-', '-'));
                                    closed = true;
                                    break;
                                }
                                Some(end) if end >= c => ranges.push((c, end)),
                                Some(end) => {
                                    return Err(format!(
                                        "the range `{c}-{end}` is backwards (write `{end}-{c}`)"
                                    ));
                                }
                                None => break,
                            }
                        } else {
                            ranges.push((c, c));
                        }
                    }
                    if !closed {
                        return Err("`[` is not closed by `]`".into());
                    }
                    Token::Set { negated, ranges }
                }
                c => Token::Char(c),
            });
        }
        Ok(Glob {
            text: pattern.to_string(),
            tokens,
        })
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `id` matches the whole pattern.
    pub fn matches(&self, id: &str) -> bool {
        if self.tokens.iter().all(|t| matches!(t, Token::Char(_))) {
            // An exact id (the common case): no characters to collect.
            return self.tokens.len() == id.chars().count()
                && self
                    .tokens
                    .iter()
                    .zip(id.chars())
                    .all(|(t, c)| matches!(t, Token::Char(k) if *k == c));
        }
        let text: Vec<char> = id.chars().collect();
        let (mut t, mut p) = (0, 0);
        // Where the last `*` was, and the text position it resumes from:
        // one star's backtracking is enough (linear in practice).
        let mut star: Option<(usize, usize)> = None;
        while let Some(&c) = text.get(t) {
            let step = match self.tokens.get(p) {
                Some(Token::Star) => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                Some(Token::Any) => true,
                Some(Token::Char(k)) => *k == c,
                Some(Token::Set { negated, ranges }) => {
                    let inside = ranges.iter().any(|&(a, b)| a <= c && c <= b);
                    inside != *negated
                }
                None => false,
            };
            if step {
                t += 1;
                p += 1;
            } else if let Some((sp, st)) = star {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            } else {
                return false;
            }
        }
        self.tokens.iter().skip(p).all(|k| matches!(k, Token::Star))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_whole_ids() {
        let m = |p: &str, id: &str| Glob::new(p).unwrap().matches(id);
        assert!(m("p-001", "p-001"));
        assert!(!m("p-001", "p-0011"));
        assert!(m("p-0*", "p-012"));
        assert!(m("*", ""));
        assert!(m("*-1?", "p-12"));
        assert!(!m("*-1?", "p-1"));
        assert!(m("p-0[1-2]*", "p-019"));
        assert!(!m("p-0[!1-2]*", "p-019"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "x"));
        assert!(m("[]x]", "]"));
        assert!(m("[a-]", "-"));
    }

    #[test]
    fn bad_globs_say_why() {
        assert_eq!(Glob::new("p-[0").unwrap_err(), "`[` is not closed by `]`");
        assert_eq!(
            Glob::new("[z-a]").unwrap_err(),
            "the range `z-a` is backwards (write `a-z`)"
        );
        assert!(Glob::new("x\\").is_err());
        assert!(Glob::new("").is_err());
    }

    #[test]
    fn tables_line_up_and_cut_without_wrapping() {
        let mut t = Table::new(&["action", "partner", "reason"]);
        t.rows.push(vec![
            "restrict".into(),
            "p-1".into(),
            "a long reason".into(),
        ]);
        t.rows.push(vec!["none".into(), "日本".into(), "".into()]);
        assert_eq!(
            t.plain(None),
            "ACTION    PARTNER  REASON\nrestrict  p-1      a long reason\nnone      日本\n"
        );
        assert_eq!(
            t.plain(Some(24)),
            "ACTION    PARTNER  REAS…\nrestrict  p-1      a lo…\nnone      日本\n"
        );
        assert_eq!(truncate("日本語", 4), "日…");
        assert_eq!(
            t.markdown(),
            "| action | partner | reason |\n|---|---|---|\n| restrict | p-1 | a long reason |\n| none | 日本 |  |\n"
        );
    }

    #[test]
    fn words_wrap_between_words() {
        assert_eq!(
            wrap_words("… and 32 more partners: narrow with --partner", Some(20)),
            "… and 32 more\npartners: narrow\nwith --partner"
        );
        assert_eq!(wrap_words("a verylongword b", Some(6)), "a\nveryl…\nb");
        assert_eq!(wrap_words("a  b", None), "a  b");
        assert_eq!(truncate("ab   cd", 5), "ab…");
    }

    #[test]
    fn markdown_cells_cannot_break_out() {
        assert_eq!(
            md("a|b <img> [x](y) `c`"),
            "a\\|b &lt;img&gt; \\[x\\]\\(y\\) \\`c\\`"
        );
    }

    #[test]
    fn lists_break_between_items() {
        let items: Vec<String> = ["restrict 2", "fallback 5", "review 6"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            joined(&items, 4, None),
            "restrict 2 · fallback 5 · review 6"
        );
        assert_eq!(
            joined(&items, 4, Some(30)),
            "restrict 2 · fallback 5\n    review 6"
        );
    }
}
