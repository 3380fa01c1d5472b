//! The canonical layout of a `.pmf` file (`pmf fmt`).
//!
//! The formatter keeps the author's line structure and every comment where
//! it is, and makes everything else canonical: indentation by nesting (two
//! spaces per level, at most 64 levels, brackets counted from the
//! declaration's start; top-level declarations in column 0 and their
//! continuation lines indented), one space around binary operators and
//! after commas and colons, none inside paths, calls and `set<T>`, no
//! trailing whitespace, at most one blank line in a row, one final newline.
//! It only changes white space between tokens, so it never changes meaning,
//! and it is idempotent.

mod tokens;

use tokens::{Tok, TokKind, is_space, tokenize_line};

use crate::split::{MAX_NESTING, TOP_LEVEL_KEYWORDS};

/// Format a whole file.
pub fn format(text: &str) -> String {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out: Vec<String> = Vec::new();
    let mut depth: usize = 0; // `{` nesting
    let mut parens: usize = 0; // `(` and `[` nesting
    let mut in_block_comment = false;
    let mut blank_run = 0;
    for raw in text.lines() {
        if in_block_comment {
            // Inside a multi-line block comment: keep the line as written.
            out.push(raw.trim_end().to_string());
            in_block_comment = still_in_comment(raw);
            continue;
        }
        let line = raw.trim_matches(is_space);
        if line.is_empty() {
            blank_run += 1;
            if blank_run == 1 && !out.is_empty() {
                out.push(String::new());
            }
            continue;
        }
        blank_run = 0;
        let toks = tokenize_line(line);
        // Only a keyword in column 0 starts a declaration (that is how the
        // parser splits files): keep column 0 exactly where it was.
        let at_column_0 = !raw.starts_with(is_space);
        let starts_decl = at_column_0
            && toks.first().is_some_and(|t| {
                t.kind == TokKind::Word && TOP_LEVEL_KEYWORDS.contains(&t.text.as_str())
            });
        if starts_decl {
            // A declaration starts a chunk of its own, whatever brackets
            // the one before left open (it fails to parse): they indent
            // none of its lines.
            depth = 0;
            parens = 0;
        }
        let starts_with_close = matches!(toks.first().map(|t| &t.kind), Some(TokKind::Close('}')));
        let level = if starts_with_close {
            depth.saturating_sub(1)
        } else {
            depth
        };
        let closers_first = toks
            .iter()
            .take_while(|t| matches!(t.kind, TokKind::Close(')') | TokKind::Close(']')))
            .count();
        // Two spaces a level, up to the deepest nesting the parser takes: a
        // run of unclosed brackets (a key held down) cannot make every
        // later line of its declaration megabytes long.
        let mut indent = (level + parens.saturating_sub(closers_first)).min(MAX_NESTING) * 2;
        let is_comment_only = toks
            .iter()
            .all(|t| matches!(t.kind, TokKind::LineComment | TokKind::BlockComment));
        if starts_decl {
            indent = 0;
        } else if indent == 0 && !(at_column_0 && (starts_with_close || is_comment_only)) {
            indent = 2; // a continuation line of a top-level declaration
        }
        let mut body = render(&toks);
        if tokenize_line(&body) != toks {
            // Canonical spacing would glue two tokens into another one
            // (`-` and `>=` into `->=`): keep them apart.
            body = toks
                .iter()
                .map(|t| t.text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
        }
        out.push(format!("{}{}", " ".repeat(indent), body));
        for t in &toks {
            match t.kind {
                TokKind::Open('{') => depth += 1,
                TokKind::Close('}') => depth = depth.saturating_sub(1),
                TokKind::Open(_) => parens += 1,
                TokKind::Close(_) => parens = parens.saturating_sub(1),
                _ => {}
            }
        }
        if ends_in_open_comment(&toks) {
            in_block_comment = true;
        }
    }
    while out.last().is_some_and(String::is_empty) {
        out.pop();
    }
    let mut s = out.join("\n");
    s.push('\n');
    s
}

/// Whether a line that starts inside a block comment ends inside one: its
/// comment may close and another open after it (`*//*`).
fn still_in_comment(line: &str) -> bool {
    match line.find("*/") {
        None => true,
        Some(end) => ends_in_open_comment(&tokenize_line(&line[end + 2..])),
    }
}

/// Whether a line's last token is a block comment that does not close.
fn ends_in_open_comment(toks: &[Tok]) -> bool {
    toks.last().is_some_and(|last| {
        last.kind == TokKind::BlockComment && !(last.text.len() >= 4 && last.text.ends_with("*/"))
    })
}

/// Join a line's tokens with canonical spacing.
fn render(toks: &[Tok]) -> String {
    let mut out = String::new();
    let mut type_angles = 0usize;
    let mut prev = None;
    for (i, t) in toks.iter().enumerate() {
        let space = match prev {
            None => false,
            Some(p) => space_between(p, t, i, toks, &mut type_angles),
        };
        if space {
            out.push(' ');
        }
        out.push_str(&t.text);
        prev = Some(t);
    }
    out
}

fn is_value_end(t: &Tok) -> bool {
    matches!(
        t.kind,
        TokKind::Word | TokKind::Number | TokKind::Str | TokKind::Close(_)
    ) && !matches!(
        t.text.as_str(),
        "and" | "or" | "not" | "in" | "else" | "when" | "from" | "weight"
    )
}

fn space_between(p: &Tok, t: &Tok, i: usize, toks: &[Tok], type_angles: &mut usize) -> bool {
    use TokKind::*;
    // `set<T>`: angle brackets of a type.
    if t.kind == Op && t.text == "<" && p.kind == Word && p.text == "set" {
        *type_angles += 1;
        return false;
    }
    if p.kind == Op
        && p.text == "<"
        && *type_angles > 0
        && i.checked_sub(2)
            .and_then(|j| toks.get(j))
            .is_some_and(|t| t.text == "set")
    {
        return false;
    }
    if t.kind == Op && t.text == ">" && *type_angles > 0 {
        *type_angles -= 1;
        return false;
    }
    if t.kind == LineComment || t.kind == BlockComment || p.kind == BlockComment {
        return true;
    }
    match (&p.kind, &t.kind) {
        (_, Comma) | (_, Colon) => false,
        (Comma, _) | (Colon, _) => true,
        (Dot, _) | (_, Dot) => false,
        (_, Range) | (Range, _) => false,
        (Open('{'), Close('}')) => false,
        (Open('{'), _) | (_, Close('}')) => true,
        (Open(_), _) => false,
        (_, Close(_)) => false,
        (Word, Open('(')) if is_value_end(p) => false, // a call
        (_, Open(_)) => true,
        (Op, Op) => true,
        (Op, _) if p.text == "-" && is_unary(i - 1, toks) => false,
        _ => true,
    }
}

/// True when the `-` at `i` is a sign rather than a subtraction.
fn is_unary(i: usize, toks: &[Tok]) -> bool {
    match i.checked_sub(1).and_then(|j| toks.get(j)) {
        None => true,
        Some(p) => !is_value_end(p),
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_NESTING, format};

    #[test]
    fn unclosed_brackets_indent_at_most_the_deepest_nesting_and_not_past_their_declaration() {
        // Found by lspfuzz: 200,000 `[` on one line indented every later
        // line by 400,000 spaces (a 760 KB file formatted to gigabytes).
        let src = format!(
            "policy p extends kwanus\ncompatibility {{\n  r: len({}\n  x\n}}\nceiling power <= 7\n  // after\n",
            "[".repeat(10_000)
        );
        let formatted = format(&src);
        let widest = 2 * MAX_NESTING;
        let lines: Vec<&str> = formatted.lines().collect();
        assert_eq!(
            lines.get(3),
            Some(&format!("{}x", " ".repeat(widest)).as_str())
        );
        // The next declaration starts afresh: the unclosed brackets before
        // it indent none of its lines.
        assert_eq!(lines.get(5), Some(&"ceiling power <= 7"));
        assert_eq!(lines.get(6), Some(&"  // after"));
        assert_eq!(format(&formatted), formatted);
    }

    #[test]
    fn a_comment_that_closes_and_reopens_on_one_line_is_kept() {
        // Found by the token-soup property test: the line `*//*` closes a
        // comment and opens another, whose `*/` must stay as written.
        let src = "policy fuzz extends kwanus\n/*\n*//*\n*/\n";
        assert_eq!(format(src), src);
    }

    #[test]
    fn canonical_spacing_and_indentation() {
        let src = "policy p   extends kwanus\n\n\n\ncompatibility {\n      keep:target.strands>=partner.strands and len( target.strands )> -1 else fallback // why\n}\npartner {\n  f: set < string >,\n  m: {a:number}\n}\n";
        let want = "policy p extends kwanus\n\ncompatibility {\n  keep: target.strands >= partner.strands and len(target.strands) > -1 else fallback // why\n}\npartner {\n  f: set<string>,\n  m: { a: number }\n}\n";
        assert_eq!(format(src), want);
        assert_eq!(format(want), want);
    }

    #[test]
    fn bands_edges_and_block_comments() {
        let src = "health {\nband 90 ..= 100 stable \"Stable\"->proceed\n}\n/* a\n   kept */\nflow f {\n  a->b max 3\n  a fail->b\n}\n";
        let want = "health {\n  band 90..=100 stable \"Stable\" -> proceed\n}\n/* a\n   kept */\nflow f {\n  a -> b max 3\n  a fail -> b\n}\n";
        assert_eq!(format(src), want);
    }
}
