//! Splitting one line into tokens for the formatter.

/// The kinds of token the formatter spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokKind {
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
pub struct Tok {
    /// Kind.
    pub kind: TokKind,
    /// Text as written.
    pub text: String,
}

/// Tokens of one (trimmed) line.
pub fn tokenize_line(line: &str) -> Vec<Tok> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let push = |out: &mut Vec<Tok>, kind, text: String| out.push(Tok { kind, text });
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let rest: String = chars[i..].iter().collect();
        if rest.starts_with("//") {
            push(&mut out, TokKind::LineComment, rest.trim_end().to_string());
            break;
        }
        if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            let text: String = rest[..end].to_string();
            i += text.chars().count();
            push(&mut out, TokKind::BlockComment, text);
            continue;
        }
        if c == '"' {
            let mut j = i + 1;
            while j < chars.len() {
                match chars[j] {
                    '\\' => j += 2,
                    '"' => {
                        j += 1;
                        break;
                    }
                    _ => j += 1,
                }
            }
            let j = j.min(chars.len());
            push(&mut out, TokKind::Str, chars[i..j].iter().collect());
            i = j;
            continue;
        }
        if c.is_ascii_alphabetic() || c == '_' {
            let mut j = i;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            push(&mut out, TokKind::Word, chars[i..j].iter().collect());
            i = j;
            continue;
        }
        if c.is_ascii_digit() {
            // Numbers and versions: digits, dots between digits, and a
            // pre-release or build suffix glued to a version.
            let mut j = i;
            while j < chars.len()
                && (chars[j].is_ascii_alphanumeric()
                    || (chars[j] == '.' && chars.get(j + 1).is_some_and(|n| n.is_ascii_digit()))
                    || ((chars[j] == '-' || chars[j] == '+')
                        && chars[i..j].iter().filter(|&&d| d == '.').count() >= 2))
            {
                j += 1;
            }
            push(&mut out, TokKind::Number, chars[i..j].iter().collect());
            i = j;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let three: String = chars[i..(i + 3).min(chars.len())].iter().collect();
        if three == "..=" {
            push(&mut out, TokKind::Range, three);
            i += 3;
            continue;
        }
        if matches!(two.as_str(), "->" | "==" | "!=" | "<=" | ">=") {
            push(&mut out, TokKind::Op, two);
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
        push(&mut out, kind, c.to_string());
        i += 1;
    }
    out
}
