//! Splitting one line into tokens for the formatter (linear in the line).

/// The kinds of token the formatter spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokKind {
    /// A name or keyword.
    Word,
    /// A number or version.
    Number,
    /// A string literal.
    Str,
    /// `// ...` to the end of the line.
    LineComment,
    /// `/* ... */` (possibly unterminated on this line).
    BlockComment,
    /// `{`, `(`, `[`.
    Open(char),
    /// `}`, `)`, `]`.
    Close(char),
    /// `,`
    Comma,
    /// `:`
    Colon,
    /// `.` in a path.
    Dot,
    /// `..=`
    Range,
    /// Any operator, `->` included.
    Op,
}

/// A token and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tok {
    /// Kind.
    pub kind: TokKind,
    /// Text as written.
    pub text: String,
}

/// White space as the grammar has it (`WHITESPACE` in `grammar/pmf.pest`).
pub(crate) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Tokens of one (trimmed) line.
pub(crate) fn tokenize_line(line: &str) -> Vec<Tok> {
    let bytes = line.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut push = |kind, from: usize, to: usize| {
        out.push(Tok {
            kind,
            text: line[from..to].to_string(),
        })
    };
    while i < bytes.len() {
        let rest = &line[i..];
        let c = rest.chars().next().unwrap_or(' ');
        // Only what the grammar skips is white space: a no-break space is
        // a token (a syntax error the formatter must keep).
        if is_space(c) {
            i += 1;
            continue;
        }
        if rest.starts_with("//") {
            push(TokKind::LineComment, i, i + rest.trim_end().len());
            break;
        }
        if let Some(body) = rest.strip_prefix("/*") {
            // The closing `*/` comes after the opening `/*` (not overlapping it).
            let end = body.find("*/").map_or(rest.len(), |e| e + 4);
            push(TokKind::BlockComment, i, i + end);
            i += end;
            continue;
        }
        if c == '"' {
            let mut j = i + 1;
            while let Some(&b) = bytes.get(j) {
                match b {
                    b'\\' => j += 2,
                    b'"' => {
                        j += 1;
                        break;
                    }
                    _ => j += 1,
                }
            }
            let mut j = j.min(bytes.len());
            while !line.is_char_boundary(j) {
                j += 1;
            }
            push(TokKind::Str, i, j);
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let len = rest
                .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                .unwrap_or(rest.len());
            push(TokKind::Word, i, i + len);
            i += len;
            continue;
        }
        if c.is_ascii_digit() {
            // Numbers and versions: digits, dots between digits, and a
            // pre-release or build suffix glued to a version.
            let mut j = i;
            let mut dots = 0;
            while let Some(&b) = bytes.get(j) {
                let ok = b.is_ascii_alphanumeric()
                    || (b == b'.' && bytes.get(j + 1).is_some_and(u8::is_ascii_digit))
                    || ((b == b'-' || b == b'+') && dots >= 2);
                if !ok {
                    break;
                }
                if b == b'.' {
                    dots += 1;
                }
                j += 1;
            }
            push(TokKind::Number, i, j);
            i = j;
            continue;
        }
        if rest.starts_with("..=") {
            push(TokKind::Range, i, i + 3);
            i += 3;
            continue;
        }
        if ["->", "==", "!=", "<=", ">="]
            .iter()
            .any(|op| rest.starts_with(op))
        {
            push(TokKind::Op, i, i + 2);
            i += 2;
            continue;
        }
        let kind = match c {
            '{' | '(' | '[' => TokKind::Open(c),
            '}' | ')' | ']' => TokKind::Close(c),
            ',' => TokKind::Comma,
            ':' => TokKind::Colon,
            '.' => TokKind::Dot,
            _ => TokKind::Op,
        };
        push(kind, i, i + c.len_utf8());
        i += c.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::tokenize_line;

    #[test]
    fn a_long_line_is_tokenized_in_linear_time() {
        let line = "a + ".repeat(200_000);
        let toks = tokenize_line(&line);
        assert_eq!(toks.len(), 400_000);
    }
}
