//! pest → syntax tree, with recovery at top-level declarations.

use pest::Parser as _;
use pest::iterators::Pair;
use rayon::prelude::*;

use super::ast::*;
use super::hidden;
use super::slips;
use super::span::{Place, Span};
use super::split::{self, LexProblem, MAX_NESTING};
use crate::diagnostics::{Code, Diagnostic, Fix};

/// The pest parser of `grammar/pmf.pest` and its `Rule`s, generated, kept
/// private to the syntax layer.
mod generated {
    #![allow(missing_docs)]
    #[derive(pest_derive::Parser)]
    #[grammar = "../../grammar/pmf.pest"]
    pub(super) struct PestParser;
}
use generated::{PestParser, Rule};

/// Deepest expression tree the parser builds.
pub(crate) const MAX_EXPR_DEPTH: usize = 128;

/// The result of parsing one file: the tree and the syntax diagnostics.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Parsed {
    /// The syntax tree (declarations that failed to parse are left out).
    pub ast: SourceAst,
    /// Syntax diagnostics (codes PMF001–PMF004 and PMF006).
    pub diagnostics: Vec<Diagnostic>,
}

/// What parsing one chunk alone produced (see [`parse_chunk`]).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChunkParse {
    /// The chunk's declaration (none when it failed to parse, or for a
    /// chunk of only comments).
    pub decls: Vec<Decl>,
    /// Unterminated comments and strings (PMF004) and hidden characters
    /// (PMF006).
    pub lexical: Vec<Diagnostic>,
    /// The other syntax diagnostics of the chunk.
    pub diagnostics: Vec<Diagnostic>,
    /// The chunk's comments.
    pub comments: Vec<Comment>,
    /// The chunk looks like a `policy` header that failed to parse.
    pub broken_header: bool,
}

/// Where the chunks of `text` are (a cheap scan; see [`split`]). Every
/// chunk parses alone with [`parse_chunk`]; together they cover `text`.
pub fn chunk_spans(text: &str) -> Vec<Span> {
    split::split(text).chunks.iter().map(|c| c.span).collect()
}

/// Parse one chunk of a file (a slice that [`chunk_spans`] delimits) on
/// its own, as if it started at byte `at`; `file` names the file in
/// diagnostics. Never fails.
pub fn parse_chunk(file: &str, text: &str, at: usize) -> ChunkParse {
    let split = split::split(text);
    let mut out = ChunkParse::default();
    for problem in &split.problems {
        let (span, what, help) = match problem {
            LexProblem::UnterminatedComment(s) => {
                (*s, "block comment is never closed", "close it with `*/`")
            }
            LexProblem::UnterminatedString(s) => (
                *s,
                "string is not closed on its line",
                "add the closing `\"`; strings cannot span lines",
            ),
        };
        out.lexical.push(
            Diagnostic::new(
                Code::Unterminated,
                file,
                Place::at(span, at),
                format!("unterminated {}", what),
            )
            .with_label("starts here")
            .with_help(help),
        );
    }
    out.lexical
        .extend(super::hidden::hidden_characters(file, text, at));
    let comments: Vec<Place> = split.comments.iter().map(|s| Place::at(*s, at)).collect();
    out.comments = split
        .comments
        .iter()
        .zip(&comments)
        .map(|(s, placed)| Comment {
            text: text[s.range()].to_string(),
            span: *placed,
        })
        .collect();
    for chunk in &split.chunks {
        let r = parse_one(file, text, at, &comments, chunk);
        out.decls.extend(r.decl);
        out.diagnostics.extend(r.diagnostics);
        out.broken_header |= r.broken_header;
    }
    // A chunk holds one declaration: kept for as long as the file is open.
    out.decls.shrink_to_fit();
    out
}

/// `v` without spare capacity. The tree is kept for as long as its file is
/// open, and a vector collected from a filtered iterator, or grown one
/// element at a time, has room for four: a path of two names would take
/// twice its size.
fn tight<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

/// The items of `iter` in a vector with room for as many as its upper
/// bound (the pairs it reads), shrunk only when fewer came: collected
/// from a filter of pairs, the vector grew from four and kept the spare
/// room for as long as the file is open.
fn exact<T>(iter: impl Iterator<Item = T>) -> Vec<T> {
    let (_, most) = iter.size_hint();
    let mut out = Vec::with_capacity(most.unwrap_or(0));
    out.extend(iter);
    tight(out)
}

/// [`tight`] for the operands of a chain (which grows one at a time).
fn tight_chain(mut e: Expr) -> Expr {
    if let ExprKind::Chain(_, operands) = &mut e.kind {
        operands.shrink_to_fit();
    }
    e
}

/// Parse `text`; `file` names the file in diagnostics. Never fails.
pub fn parse(file: &str, text: &str) -> Parsed {
    let spans = chunk_spans(text);
    // Chunks are independent: large files parse them on every core.
    let parse_one = |s: &Span| parse_chunk(file, &text[s.range()], s.start as usize);
    let parts: Vec<ChunkParse> = if spans.len() >= PARALLEL_CHUNKS {
        spans.par_iter().map(parse_one).collect()
    } else {
        spans.iter().map(parse_one).collect()
    };
    assemble(file, parts)
}

/// How many of `chunks` (slices that [`chunk_spans`] delimits) the
/// grammar accepts: pest's own work on each, on every core (as [`parse`]
/// parses a large file), and nothing else (no tree, no diagnostics). The
/// floor under parsing, for benchmarks.
#[doc(hidden)]
pub fn accepted_chunks(chunks: &[&str]) -> usize {
    chunks
        .par_iter()
        .filter(|chunk| PestParser::parse(Rule::chunk, chunk).is_ok())
        .count()
}

/// The file's tree and diagnostics from its chunks, in order, each parsed
/// at the place where it starts in the file (see [`parse_chunk`]).
pub(crate) fn assemble(file: &str, chunks: Vec<ChunkParse>) -> Parsed {
    let mut out = Parsed::default();
    let mut broken_header = false;
    for c in &chunks {
        out.diagnostics.extend(c.lexical.iter().cloned());
    }
    for c in chunks {
        out.ast.comments.extend(c.comments);
        out.ast.decls.extend(c.decls);
        out.diagnostics.extend(c.diagnostics);
        broken_header |= c.broken_header;
    }
    let heads: Vec<DeclHead> = out.ast.decls.iter().map(DeclHead::of).collect();
    out.diagnostics
        .extend(header_diagnostics(file, broken_header, &heads));
    out
}

/// Files with at least this many declarations are parsed in parallel.
const PARALLEL_CHUNKS: usize = 256;

/// What parsing one chunk produced.
struct ChunkResult {
    decl: Option<Decl>,
    diagnostics: Vec<Diagnostic>,
    broken_header: bool,
}

/// Parse `chunk` of `text`, which starts at byte `at` of the file;
/// `comments` are the comments of `text`, placed in the file.
fn parse_one(
    file: &str,
    text: &str,
    at: usize,
    comments: &[Place],
    chunk: &split::Chunk,
) -> ChunkResult {
    let mut result = ChunkResult {
        decl: None,
        diagnostics: Vec::new(),
        broken_header: false,
    };
    // Parse up to an unterminated comment or string (already reported).
    let end = chunk.unterminated_at.unwrap_or(chunk.span.end as usize);
    let mut local = chunk.span.start as usize;
    if text[local..end].starts_with('\u{feff}') {
        local += '\u{feff}'.len_utf8();
    }
    let slice = &text[local..end];
    let offset = at + local;
    if let Some(deep) = chunk.too_deep_at {
        let deep = at + deep;
        result.diagnostics.push(
            Diagnostic::new(
                Code::NestingTooDeep,
                file,
                Place::new(deep, deep + 1),
                format!("brackets nested more than {MAX_NESTING} deep"),
            )
            .with_label("nesting exceeds the limit here")
            .with_help("split the expression into named rules or remove redundant brackets"),
        );
        return result;
    }
    match PestParser::parse(Rule::chunk, slice) {
        Ok(mut pairs) => {
            let mut builder = Builder {
                file,
                comments,
                text: slice,
                offset,
                diagnostics: &mut result.diagnostics,
            };
            if let Some(decl) = pairs
                .next()
                .into_iter()
                .flat_map(|p| p.into_inner())
                .find(|p| p.as_rule() == Rule::declaration)
            {
                result.decl = Some(builder.declaration(decl));
            }
        }
        Err(err) => {
            result.broken_header = strip_leading_trivia(slice).starts_with("policy");
            if chunk.unterminated_at.is_none() {
                result
                    .diagnostics
                    .push(syntax_error(file, offset, slice, &err));
            }
        }
    }
    result
}

/// What the header checks read of a declaration: its kind and where its
/// keyword is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeclHead {
    /// The declaration is a `policy` header.
    pub policy: bool,
    /// Where the declaration starts.
    pub start: usize,
    /// The length of its keyword.
    pub keyword_len: usize,
}

impl DeclHead {
    /// The head of `d`.
    pub fn of(d: &Decl) -> Self {
        DeclHead {
            policy: matches!(d.kind, DeclKind::Policy(_)),
            start: d.span.start as usize,
            keyword_len: d.kind.keyword().len(),
        }
    }

    fn span(&self) -> Place {
        Place::new(self.start, self.start + self.keyword_len)
    }
}

/// Diagnostics about the `policy` header of a file whose declarations are
/// `decls` (a missing, late or second header).
pub fn header_diagnostics(file: &str, broken_header: bool, decls: &[DeclHead]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let first_policy = decls.iter().enumerate().find(|(_, d)| d.policy);
    match first_policy {
        None => {
            if !broken_header {
                let first = decls.first().map_or(Place::new(0, 0), DeclHead::span);
                out.push(
                    Diagnostic::new(Code::MissingHeader, file, first, "file has no `policy` header")
                        .with_label("expected `policy NAME` before this")
                        .with_help("start the file with `policy NAME` (and `extends kwanus` to build on the standard library)"),
                );
            }
        }
        Some((0, first)) => {
            if let Some(second) = decls.iter().skip(1).find(|d| d.policy) {
                let first = first.span();
                out.push(
                    Diagnostic::new(
                        Code::DuplicateDeclaration,
                        file,
                        second.span(),
                        "a file declares one policy",
                    )
                    .with_label("second `policy` header")
                    .with_secondary(file, first, "this file's policy")
                    .with_help("put each policy in a file of its own"),
                );
            }
        }
        Some((_, d)) => {
            // The header is not first, so there is a first declaration.
            let first = decls.first().unwrap_or(d);
            out.push(
                Diagnostic::new(
                    Code::MissingHeader,
                    file,
                    Place::new(d.start, d.start + 6),
                    "the `policy` header must be the first declaration",
                )
                .with_label("header comes too late")
                .with_secondary(file, first.span(), "first declaration is here")
                .with_help("move `policy ...` to the top of the file"),
            );
        }
    }
    out
}

fn friendly(r: &Rule) -> Option<&'static str> {
    Some(match r {
        Rule::EOI => "the end of the declaration",
        Rule::kw_approve => "`approve`",
        Rule::kw_authority => "`authority`",
        Rule::kw_backward_compatible => "`backward_compatible`",
        Rule::kw_band => "`band`",
        Rule::kw_by => "`by`",
        Rule::kw_category => "`category`",
        Rule::kw_ceiling => "`ceiling`",
        Rule::kw_covers => "`covers`",
        Rule::kw_else => "`else`",
        Rule::kw_extends => "`extends`",
        Rule::kw_factor => "`factor`",
        Rule::kw_fail => "`fail`",
        Rule::kw_flow => "`flow`",
        Rule::kw_key => "`key`",
        Rule::kw_from => "`from`",
        Rule::kw_governs => "`governs`",
        Rule::kw_mapping => "`mapping`",
        Rule::kw_max => "`max`",
        Rule::kw_migration => "`migration`",
        Rule::kw_order => "`order`",
        Rule::kw_phase => "`phase`",
        Rule::kw_policy => "`policy`",
        Rule::kw_requires => "`requires`",
        Rule::kw_reversible => "`reversible`",
        Rule::kw_rite => "`rite`",
        Rule::kw_to => "`to`",
        Rule::kw_touches => "`touches`",
        Rule::kw_weight => "`weight`",
        Rule::kw_when => "`when`",
        Rule::declaration | Rule::override_kw => "a declaration",
        Rule::policy_decl => "`policy`",
        Rule::extends_clause => "`extends`",
        Rule::governs_clause => "`governs`",
        Rule::covers_clause => "`covers`",
        Rule::field_decl => "a field `name: type`",
        Rule::type_expr | Rule::named_type | Rule::set_type | Rule::record_type => "a type",
        Rule::when_item => "`when`",
        Rule::reversible_item => "`reversible`",
        Rule::backward_item => "`backward_compatible`",
        Rule::mapping_item => "`requires mapping`",
        Rule::approve_item => "`approve by`",
        Rule::governing_kw => "`governing`",
        Rule::touches_item => "`touches`",
        Rule::to_item => "`to`",
        Rule::previous_stable_kw => "`previous_stable`",
        Rule::rule_item => "a rule `name: condition else action`",
        Rule::dimension => "a validation dimension",
        Rule::check_item => "a check `name: condition`",
        Rule::factor => "`factor`",
        Rule::band => "`band`",
        Rule::phase_decl => "`phase`",
        Rule::fallible_kw => "`fallible`",
        Rule::fail_edge | Rule::edge_chain => "an edge",
        Rule::edge_target => "a phase",
        Rule::bound => "`max`",
        Rule::expr
        | Rule::paren
        | Rule::path_expr
        | Rule::call_args
        | Rule::set_lit
        | Rule::path
        | Rule::boolean => "an expression",
        Rule::not_op | Rule::neg_op => "an expression",
        Rule::or_op
        | Rule::and_op
        | Rule::in_op
        | Rule::not_in_op
        | Rule::add_op
        | Rule::sub_op
        | Rule::mul_op
        | Rule::div_op => "an operator",
        Rule::compare_op => "a comparison operator",
        Rule::version_lit => "a version",
        Rule::number | Rule::integer | Rule::signed_number => "a number",
        Rule::string | Rule::string_body => "a string",
        Rule::ident => "a name",
        Rule::field_path => "a field",
        Rule::kw_test | Rule::test_decl => "`test`",
        Rule::kw_fixture | Rule::fixture_decl => "`fixture`",
        Rule::kw_like | Rule::like_clause => "`like`",
        Rule::kw_partner | Rule::partner_decl => "`partner`",
        Rule::kw_target => "`target`",
        Rule::kw_observed => "`observed`",
        Rule::test_state | Rule::test_root => "`partner`, `target` or `observed`",
        Rule::record_value => "a record `{ field: value }`",
        Rule::value_field => "a field `name: value`",
        Rule::value => "a value",
        Rule::null_kw => "`null`",
        Rule::kw_approved | Rule::approved_item => "`approved`",
        Rule::kw_expect | Rule::expect_item => "`expect`",
        Rule::expect_what => "`type`, `band`, `action`, `outcome`, `validation` or `approvals`",
        Rule::kw_type => "`type`",
        Rule::kw_action => "`action`",
        Rule::kw_outcome => "`outcome`",
        Rule::kw_approvals => "`approvals`",
        Rule::kw_validation | Rule::validation_decl => "`validation`",
        Rule::kw_none => "`none`",
        Rule::compatibility_decl => "`compatibility`",
        Rule::sustainability_decl => "`sustainability`",
        Rule::health_decl => "`health`",
        Rule::authority_decl => "`authority`",
        Rule::category_decl => "`category`",
        Rule::migration_decl => "`migration`",
        Rule::order_decl => "`order`",
        Rule::flow_decl => "`flow`",
        Rule::ceiling_decl => "`ceiling`",
        Rule::rite_decl => "`rite`",
        Rule::key_decl => "`key`",
        _ => return None,
    })
}

/// What pest expected, as the slips read it.
fn expected_flags(positives: &[Rule]) -> slips::Expected {
    let has = |r: Rule| positives.contains(&r);
    slips::Expected {
        comparison: has(Rule::compare_op),
        only_comparison: !positives.is_empty() && positives.iter().all(|r| *r == Rule::compare_op),
        string: has(Rule::string),
        else_kw: has(Rule::kw_else),
        previous_stable: has(Rule::previous_stable_kw),
        band: has(Rule::band),
    }
}

/// `a`, `a or b`, `a, b or c`.
fn one_of(words: &[&str]) -> String {
    match words.split_last() {
        None => String::new(),
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {}", rest.join(", "), last),
    }
}

fn syntax_error(
    file: &str,
    offset: usize,
    slice: &str,
    err: &pest::error::Error<Rule>,
) -> Diagnostic {
    let raw = match err.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    };
    let (pos, found) = token_at(slice, raw);
    let abs = offset + pos;
    let span = if found.is_empty() {
        Place::new(abs, abs)
    } else {
        Place::new(abs, abs + found.len())
    };
    let positives: &[Rule] = match &err.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => positives,
        pest::error::ErrorVariant::CustomError { .. } => &[],
    };
    let mut expected: Vec<&str> = positives.iter().filter_map(friendly).collect();
    expected.sort_unstable();
    expected.dedup();
    let wanted = if expected.is_empty() {
        "the rest of the declaration".to_string()
    } else {
        one_of(&expected)
    };
    let stop = slips::Stop {
        text: slice,
        raw: raw.min(slice.len()),
        pos,
        found,
        wanted: &wanted,
        expected: expected_flags(positives),
        keywords: &expected,
        parses: &|t: &str| PestParser::parse(Rule::chunk, t).is_ok(),
    };
    if let Some(slip) = slips::recognise(&stop) {
        return slip_diagnostic(file, offset, slice, raw, slip);
    }
    let found_text = if found.is_empty() {
        "the end of the declaration".to_string()
    } else if let Some(c) = found.chars().next().filter(|c| hidden::is_hidden(*c)) {
        // Named, never shown: reports do not print what a terminal obeys.
        format!("the hidden character {}", hidden::described(c))
    } else {
        format!("`{found}`")
    };
    let label = if found.is_empty() {
        "the declaration ends here"
    } else {
        "not expected here"
    };
    let mut d = Diagnostic::new(
        Code::SyntaxError,
        file,
        span,
        format!("expected {wanted}, found {found_text}"),
    )
    .with_label(label);
    if found.starts_with(char::is_alphabetic) && is_reserved(found) {
        d = d.with_help(format!(
            "`{found}` is a reserved word and cannot be used as a name"
        ));
    } else if pos == 0 || slice[..pos].trim().is_empty() {
        d = d.with_help("a top-level declaration starts in column 0 with a keyword such as `migration` or `health`");
    } else {
        d = d.with_help(if found.is_empty() {
            format!("the declaration ends too early: {wanted} is still missing")
        } else if expected == ["the end of the declaration"] {
            format!("the declaration is complete before {found_text}: remove it, or look for what is missing before it")
        } else {
            format!("write {wanted} here, or look for a missing or extra token just before it")
        });
    }
    d
}

/// The diagnostic of a recognised slip; its edit becomes a fix when it
/// lets the chunk parse past the place where pest stopped (`raw`).
fn slip_diagnostic(
    file: &str,
    offset: usize,
    slice: &str,
    raw: usize,
    slip: slips::Found,
) -> Diagnostic {
    let mut d = Diagnostic::new(
        Code::SyntaxError,
        file,
        Place::at(slip.span, offset),
        slip.message,
    )
    .with_label(slip.label)
    .with_help(slip.help);
    if let Some((span, message)) = slip.also {
        d = d.with_secondary(file, Place::at(span, offset), message);
    }
    if let Some(edit) = slip.edit
        && edit_holds(slice, raw, slip.slip, &edit)
    {
        let span = Place::at(edit.span, offset);
        d = d.with_fix(if edit.certain {
            Fix::certain(span, edit.replacement)
        } else {
            Fix::maybe(span, edit.replacement)
        });
    }
    d
}

/// True when `edit` lets `slice` parse, or parse further than where pest
/// stopped (`raw`) and past the edit.
fn edit_holds(slice: &str, raw: usize, slip: slips::Slip, edit: &slips::Edit) -> bool {
    let (start, end) = (edit.span.start as usize, edit.span.end as usize);
    if start > end
        || end > slice.len()
        || !slice.is_char_boundary(start)
        || !slice.is_char_boundary(end)
    {
        return false;
    }
    if slip == slips::Slip::IndentedDeclaration {
        // The line becomes a declaration of its own: what is above it
        // must parse alone.
        return PestParser::parse(Rule::chunk, &slice[..start]).is_ok();
    }
    let fixed = format!("{}{}{}", &slice[..start], edit.replacement, &slice[end..]);
    match PestParser::parse(Rule::chunk, &fixed) {
        Ok(_) => true,
        Err(e) => {
            let at = match e.location {
                pest::error::InputLocation::Pos(p) => p,
                pest::error::InputLocation::Span((s, _)) => s,
            };
            at > raw.max(start + edit.replacement.len())
        }
    }
}

fn is_reserved(word: &str) -> bool {
    matches!(
        word,
        "and"
            | "or"
            | "not"
            | "in"
            | "true"
            | "false"
            | "else"
            | "fail"
            | "extends"
            | "governs"
            | "covers"
            | "weight"
            | "from"
    )
}

/// `s` without leading whitespace and comments.
fn strip_leading_trivia(s: &str) -> &str {
    let mut rest = s.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |n| &r[n..]).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |n| &r[n + 2..]).trim_start();
        } else {
            return rest;
        }
    }
}

/// The token at byte `pos` of `s` (a word, or one character), skipping
/// whitespace; returns its offset and text.
fn token_at(s: &str, pos: usize) -> (usize, &str) {
    let start = pos.min(s.len());
    // A hidden character that is white space to Unicode (a form feed, a
    // line separator) is not to the grammar: it is what was found.
    let rest = &s[start..];
    let skipped = rest.len()
        - rest
            .trim_start_matches(|c: char| c.is_whitespace() && !hidden::is_hidden(c))
            .len();
    (start + skipped, token_text(s, start + skipped))
}

fn token_text(s: &str, pos: usize) -> &str {
    let rest = &s[pos.min(s.len())..];
    let Some(c) = rest.chars().next() else {
        return "";
    };
    if c.is_alphanumeric() || c == '_' {
        let end = rest
            .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '.'))
            .unwrap_or(rest.len());
        &rest[..end]
    } else {
        let ops = rest
            .find(|ch: char| !"=<>!-.+*/".contains(ch))
            .unwrap_or(rest.len())
            .min(3);
        &rest[..ops.max(c.len_utf8())]
    }
}

struct Builder<'a> {
    file: &'a str,
    /// Every comment of the file, in order.
    comments: &'a [Place],
    /// The chunk's text.
    text: &'a str,
    offset: usize,
    diagnostics: &'a mut Vec<Diagnostic>,
}

impl Builder<'_> {
    /// The pair's span in the file, without the trailing whitespace and
    /// comments pest keeps when an optional element at its end is absent.
    fn span(&self, pair: &Pair<Rule>) -> Place {
        let s = pair.as_span();
        let start = s.start();
        let mut end = s.end();
        loop {
            end = start + self.text[start..end].trim_end().len();
            let abs_end = (end + self.offset) as u32;
            let found = self.comments.binary_search_by_key(&abs_end, |c| c.end);
            match found.ok().and_then(|i| self.comments.get(i)) {
                Some(c) if c.start as usize >= start + self.offset => {
                    end = c.start as usize - self.offset;
                }
                _ => break,
            }
        }
        Place::new(start + self.offset, end + self.offset)
    }

    /// The span of a pair that cannot end in white space or a comment:
    /// names, literals and the parts of an expression (which end at an
    /// operand, a bracket or a quote; a repetition that read white space
    /// and failed gave it back). What [`Builder::span`] gives for them,
    /// without looking for trivia at their end.
    fn tight_span(&self, pair: &Pair<Rule>) -> Place {
        let s = pair.as_span();
        Place::new(s.start() + self.offset, s.end() + self.offset)
    }

    /// The names of a `path` pair (`partner.version.major`), read from its
    /// text: a path is names joined by dots, with nothing between them
    /// (the grammar reads it as one compound-atomic rule), so each name's
    /// span is where its text is. What [`Builder::idents`] gives for the
    /// path's `ident` pairs, without walking them (a test holds both equal).
    fn path_segments(&self, pair: &Pair<Rule>) -> Vec<Ident> {
        let text = pair.as_str();
        let mut at = pair.as_span().start() + self.offset;
        let mut out = Vec::with_capacity(text.bytes().filter(|&b| b == b'.').count() + 1);
        for name in text.split('.') {
            out.push(Ident {
                name: name.into(),
                span: Place::new(at, at + name.len()),
            });
            at += name.len() + 1;
        }
        out
    }

    fn ident(&self, pair: Pair<Rule>) -> Ident {
        Ident {
            name: pair.as_str().into(),
            span: self.tight_span(&pair),
        }
    }

    /// The names among `pairs`, in a vector with room for all of `pairs`
    /// (collected from a filter, it had room for four, and a name or two
    /// then took a second allocation and a copy to shrink it), shrunk only
    /// when something else was among them.
    fn idents<'i>(&self, pairs: impl Iterator<Item = Pair<'i, Rule>>) -> Vec<Ident> {
        let (_, most) = pairs.size_hint();
        let mut out = Vec::with_capacity(most.unwrap_or(0));
        out.extend(
            pairs
                .filter(|p| p.as_rule() == Rule::ident)
                .map(|p| self.ident(p)),
        );
        tight(out)
    }

    fn string(&self, pair: Pair<Rule>) -> StrLit {
        let span = self.span(&pair);
        let raw = children(pair).next().map_or("", |p| p.as_str());
        StrLit {
            value: unescape(raw),
            span,
        }
    }

    fn number(&self, pair: Pair<Rule>) -> NumLit {
        NumLit {
            value: Number(pair.as_str().parse().unwrap_or(f64::NAN)),
            span: self.span(&pair),
        }
    }

    fn field_path(&self, pair: Pair<Rule>) -> FieldPath {
        let span = self.span(&pair);
        FieldPath {
            segments: self.idents(children(pair)),
            span,
        }
    }

    fn declaration(&mut self, pair: Pair<Rule>) -> Decl {
        let span = self.span(&pair);
        let mut override_kw = None;
        let mut kind = None;
        for inner in children(pair) {
            match inner.as_rule() {
                Rule::override_kw => override_kw = Some(self.span(&inner)),
                _ => kind = Some(self.decl_kind(inner)),
            }
        }
        Decl {
            override_kw,
            // The grammar guarantees one inner declaration; an empty order is harmless.
            kind: kind.unwrap_or(DeclKind::Order(Order { types: Vec::new() })),
            span,
        }
    }

    fn decl_kind(&mut self, pair: Pair<Rule>) -> DeclKind {
        let rule = pair.as_rule();
        let mut inner = children(pair).peekable();
        match rule {
            Rule::policy_decl => {
                let name = inner
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident);
                let parents = inner
                    .next()
                    .map(|p| self.idents(children(p)))
                    .unwrap_or_default();
                DeclKind::Policy(PolicyHeader { name, parents })
            }
            Rule::authority_decl => {
                let name = inner
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident);
                let mut title = None;
                let mut governs = Vec::new();
                for p in inner {
                    match p.as_rule() {
                        Rule::string => title = Some(self.string(p)),
                        Rule::governs_clause => governs = self.idents(children(p)),
                        _ => {}
                    }
                }
                DeclKind::Authority(Authority {
                    name,
                    title,
                    governs,
                })
            }
            Rule::category_decl => {
                let name = inner
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident);
                let mut title = None;
                let mut covers = Vec::new();
                for p in inner {
                    match p.as_rule() {
                        Rule::string => title = Some(self.string(p)),
                        Rule::covers_clause => {
                            covers = exact(children(p).map(|f| self.field_path(f)))
                        }
                        _ => {}
                    }
                }
                DeclKind::Category(Category {
                    name,
                    title,
                    covers,
                })
            }
            Rule::partner_decl => DeclKind::Partner(Schema {
                fields: exact(inner.map(|p| self.field_decl(p))),
            }),
            Rule::migration_decl => {
                let name = inner
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident);
                let mut title = None;
                let mut items = Vec::new();
                for p in inner {
                    if p.as_rule() == Rule::string {
                        title = Some(self.string(p));
                    } else {
                        items.push(self.migration_item(p));
                    }
                }
                DeclKind::Migration(Migration { name, title, items })
            }
            Rule::order_decl => DeclKind::Order(Order {
                types: self.idents(inner),
            }),
            Rule::compatibility_decl | Rule::sustainability_decl => {
                let kind = if rule == Rule::compatibility_decl {
                    RuleKind::Compatibility
                } else {
                    RuleKind::Sustainability
                };
                DeclKind::Rules(RuleBlock {
                    kind,
                    rules: exact(inner.map(|p| self.rule(p))),
                })
            }
            Rule::validation_decl => DeclKind::Validation(Validation {
                dimensions: exact(inner.map(|p| self.dimension(p))),
            }),
            Rule::health_decl => {
                let mut factors = Vec::new();
                let mut bands = Vec::new();
                for p in inner {
                    match p.as_rule() {
                        Rule::factor => factors.push(self.factor(p)),
                        _ => bands.push(self.band(p)),
                    }
                }
                DeclKind::Health(Health { factors, bands })
            }
            Rule::flow_decl => {
                let name = inner
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident);
                let mut phases = Vec::new();
                let mut edges = Vec::new();
                for p in inner {
                    match p.as_rule() {
                        Rule::phase_decl => phases.push(self.phase(p)),
                        Rule::fail_edge => edges.push(self.fail_edge(p)),
                        _ => edges.extend(self.edge_chain(p)),
                    }
                }
                DeclKind::Flow(Flow {
                    name,
                    phases,
                    edges,
                })
            }
            Rule::ceiling_decl => {
                let field = inner
                    .next()
                    .map(|p| self.field_path(p))
                    .unwrap_or(FieldPath {
                        segments: Vec::new(),
                        span: Place::default(),
                    });
                let op_pair = inner.next();
                let (op, op_span) = op_pair
                    .map(|p| (compare_op(p.as_str()), self.span(&p)))
                    .unwrap_or((CompareOp::Lt, Place::default()));
                let value = inner
                    .next()
                    .map(|p| self.expr(p))
                    .unwrap_or_else(|| error_expr(Place::default()));
                DeclKind::Ceiling(Ceiling {
                    field,
                    op,
                    op_span,
                    value: value.into(),
                })
            }
            Rule::test_decl => self.test_decl(inner),
            Rule::fixture_decl => {
                let mut name = None;
                let mut like = None;
                let mut record = None;
                for p in inner {
                    match p.as_rule() {
                        Rule::ident => name = Some(self.ident(p)),
                        Rule::like_clause => like = self.like_clause(p),
                        Rule::record_value => record = Some(self.record_value(p)),
                        _ => {}
                    }
                }
                let name = name.unwrap_or_else(empty_ident);
                DeclKind::Fixture(FixtureDecl {
                    record: record.unwrap_or(RecordValue {
                        fields: Vec::new(),
                        span: name.span,
                    }),
                    name,
                    like,
                })
            }
            Rule::key_decl => {
                let authority = inner
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident);
                let key = inner.next().map(|p| self.string(p)).unwrap_or(StrLit {
                    value: String::new(),
                    span: Place::default(),
                });
                let label = inner.next().map(|p| self.string(p));
                DeclKind::Key(Key {
                    authority,
                    key,
                    label,
                })
            }
            _ => {
                // Rule::rite_decl
                let phase = inner
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident);
                let words = inner.next().map(|p| self.string(p)).unwrap_or(StrLit {
                    value: String::new(),
                    span: Place::default(),
                });
                DeclKind::Rite(Rite { phase, words })
            }
        }
    }

    fn test_decl<'i>(&mut self, inner: impl Iterator<Item = Pair<'i, Rule>>) -> DeclKind {
        let mut name = None;
        let mut states = Vec::new();
        let mut approved = None;
        let mut expects = Vec::new();
        for p in inner {
            match p.as_rule() {
                Rule::string => name = Some(self.string(p)),
                Rule::test_state => {
                    let span = self.span(&p);
                    let mut parts = p.into_inner();
                    let root = match parts
                        .next()
                        .and_then(|r| r.into_inner().next())
                        .map(|k| k.as_rule())
                    {
                        Some(Rule::kw_target) => TestRoot::Target,
                        Some(Rule::kw_observed) => TestRoot::Observed,
                        _ => TestRoot::Partner,
                    };
                    let mut like = None;
                    let mut record = None;
                    for part in parts {
                        match part.as_rule() {
                            Rule::like_clause => like = self.like_clause(part),
                            Rule::record_value => record = Some(self.record_value(part)),
                            _ => {}
                        }
                    }
                    let record = record.unwrap_or(RecordValue {
                        fields: Vec::new(),
                        span,
                    });
                    states.push(TestState {
                        root,
                        like,
                        record,
                        span,
                    });
                }
                Rule::approved_item => {
                    approved = Some(self.idents(p.into_inner()));
                }
                Rule::expect_item => {
                    let span = self.span(&p);
                    let mut what = ExpectWhat::Type;
                    let mut values = Vec::new();
                    for part in p.into_inner() {
                        match part.as_rule() {
                            Rule::expect_what => {
                                what = match part.into_inner().next().map(|k| k.as_rule()) {
                                    Some(Rule::kw_band) => ExpectWhat::Band,
                                    Some(Rule::kw_action) => ExpectWhat::Action,
                                    Some(Rule::kw_outcome) => ExpectWhat::Outcome,
                                    Some(Rule::kw_validation) => ExpectWhat::Validation,
                                    Some(Rule::kw_approvals) => ExpectWhat::Approvals,
                                    _ => ExpectWhat::Type,
                                }
                            }
                            Rule::ident => values.push(self.ident(part)),
                            _ => {}
                        }
                    }
                    expects.push(Expect { what, values, span });
                }
                _ => {}
            }
        }
        DeclKind::Test(TestDecl {
            name: name.unwrap_or(StrLit {
                value: String::new(),
                span: Place::default(),
            }),
            states,
            approved,
            expects,
        })
    }

    /// `like NAME`: the name.
    fn like_clause(&mut self, pair: Pair<Rule>) -> Option<Ident> {
        pair.into_inner()
            .find(|p| p.as_rule() == Rule::ident)
            .map(|p| self.ident(p))
    }

    fn record_value(&mut self, pair: Pair<Rule>) -> RecordValue {
        let span = self.span(&pair);
        let mut fields = Vec::new();
        for f in pair
            .into_inner()
            .filter(|p| p.as_rule() == Rule::value_field)
        {
            let mut parts = f.into_inner();
            let Some(name) = parts.next().map(|p| self.ident(p)) else {
                continue;
            };
            let Some(value) = parts.next().and_then(|v| v.into_inner().next()) else {
                continue;
            };
            let node = match value.as_rule() {
                Rule::record_value => ValueNode::Record(self.record_value(value)),
                Rule::null_kw => ValueNode::Null(self.span(&value)),
                _ => ValueNode::Expr(self.expr(value)),
            };
            fields.push((name, node));
        }
        RecordValue { fields, span }
    }

    fn field_decl(&mut self, pair: Pair<Rule>) -> FieldDecl {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let name = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        let ty = inner.next().map(|p| self.type_expr(p)).unwrap_or(TypeExpr {
            kind: TypeExprKind::Record(Vec::new()),
            span,
        });
        FieldDecl { name, ty, span }
    }

    fn type_expr(&mut self, pair: Pair<Rule>) -> TypeExpr {
        // type_expr wraps exactly one of set_type, record_type, named_type.
        let span = self.span(&pair);
        let Some(inner) = children(pair).next() else {
            return TypeExpr {
                kind: TypeExprKind::Record(Vec::new()),
                span,
            };
        };
        let kind = match inner.as_rule() {
            Rule::set_type => {
                let elem = inner
                    .into_inner()
                    .next()
                    .map(|p| self.type_expr(p))
                    .unwrap_or(TypeExpr {
                        kind: TypeExprKind::Record(Vec::new()),
                        span,
                    });
                TypeExprKind::Set(Box::new(elem))
            }
            Rule::record_type => {
                TypeExprKind::Record(exact(children(inner).map(|p| self.field_decl(p))))
            }
            _ => TypeExprKind::Named(
                inner
                    .into_inner()
                    .next()
                    .map(|p| self.ident(p))
                    .unwrap_or_else(empty_ident),
            ),
        };
        TypeExpr { kind, span }
    }

    fn migration_item(&mut self, pair: Pair<Rule>) -> MigrationItem {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = children(pair);
        let kind = match rule {
            Rule::when_item => MigrationItemKind::When(
                inner
                    .next()
                    .map(|p| self.expr(p))
                    .unwrap_or_else(|| error_expr(span))
                    .into(),
            ),
            Rule::reversible_item => MigrationItemKind::Reversible,
            Rule::backward_item => MigrationItemKind::BackwardCompatible,
            Rule::mapping_item => MigrationItemKind::RequiresMapping,
            Rule::approve_item => {
                let parts: Vec<Pair<Rule>> = inner.collect();
                if parts.iter().any(|p| p.as_rule() == Rule::governing_kw) {
                    MigrationItemKind::Approve(None)
                } else {
                    MigrationItemKind::Approve(Some(self.idents(parts.into_iter())))
                }
            }
            Rule::touches_item => MigrationItemKind::Touches(self.idents(inner)),
            _ => {
                // Rule::to_item
                match inner.next() {
                    Some(p) if p.as_rule() == Rule::version_lit => {
                        let span = self.span(&p);
                        MigrationItemKind::To(Some(Expr {
                            kind: ExprKind::Version(p.as_str().to_string()),
                            span,
                        }))
                    }
                    _ => MigrationItemKind::To(None),
                }
            }
        };
        MigrationItem { kind, span }
    }

    fn rule(&mut self, pair: Pair<Rule>) -> super::ast::Rule {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let name = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        let condition = inner
            .next()
            .map(|p| self.expr(p))
            .unwrap_or_else(|| error_expr(span));
        let action = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        super::ast::Rule {
            name,
            condition: condition.into(),
            action,
            span,
        }
    }

    fn dimension(&mut self, pair: Pair<Rule>) -> Dimension {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let name = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        let checks = exact(inner.map(|p| {
            let span = self.span(&p);
            let mut parts = children(p);
            let name = parts
                .next()
                .map(|p| self.ident(p))
                .unwrap_or_else(empty_ident);
            let condition = parts
                .next()
                .map(|p| self.expr(p))
                .unwrap_or_else(|| error_expr(span));
            Check {
                name,
                condition: condition.into(),
                span,
            }
        }));
        Dimension { name, checks, span }
    }

    fn factor(&mut self, pair: Pair<Rule>) -> Factor {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let name = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        let weight = inner.next().map(|p| self.number(p)).unwrap_or(NumLit {
            value: Number(0.0),
            span,
        });
        let source = inner
            .next()
            .map(|p| self.expr(p))
            .unwrap_or_else(|| error_expr(span));
        Factor {
            name,
            weight,
            source: source.into(),
            span,
        }
    }

    fn band(&mut self, pair: Pair<Rule>) -> Band {
        let span = self.span(&pair);
        let parts: Vec<Pair<Rule>> = children(pair).collect();
        let mut numbers = parts.iter().filter(|p| p.as_rule() == Rule::signed_number);
        let zero = NumLit {
            value: Number(0.0),
            span,
        };
        let low = numbers
            .next()
            .map(|p| self.number(p.clone()))
            .unwrap_or(zero.clone());
        let high = numbers
            .next()
            .map(|p| self.number(p.clone()))
            .unwrap_or(zero);
        let mut idents = parts.iter().filter(|p| p.as_rule() == Rule::ident);
        let status = idents
            .next()
            .map(|p| self.ident(p.clone()))
            .unwrap_or_else(empty_ident);
        let action = idents
            .next()
            .map(|p| self.ident(p.clone()))
            .unwrap_or_else(empty_ident);
        // Strings: one before the arrow is the status label, one after is the action label.
        let mut status_label = None;
        let mut label = None;
        for p in parts.iter().filter(|p| p.as_rule() == Rule::string) {
            if self.span(p).start < action.span.start {
                status_label = Some(self.string(p.clone()));
            } else {
                label = Some(self.string(p.clone()));
            }
        }
        Band {
            low,
            high,
            status,
            status_label,
            action,
            label,
            span,
        }
    }

    fn phase(&mut self, pair: Pair<Rule>) -> PhaseDecl {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let name = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        let mut fallible = false;
        let mut description = None;
        for p in inner {
            match p.as_rule() {
                Rule::fallible_kw => fallible = true,
                _ => description = Some(self.string(p)),
            }
        }
        PhaseDecl {
            name,
            fallible,
            description,
            span,
        }
    }

    fn edge_target(&mut self, pair: Pair<Rule>) -> (Ident, Option<NumLit>) {
        let mut inner = children(pair);
        let to = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        let bound = inner
            .next()
            .and_then(|b| children(b).next())
            .map(|n| self.number(n));
        (to, bound)
    }

    fn fail_edge(&mut self, pair: Pair<Rule>) -> Edge {
        let span = self.span(&pair);
        let mut inner = children(pair);
        let from = inner
            .next()
            .map(|p| self.ident(p))
            .unwrap_or_else(empty_ident);
        let (to, bound) = inner
            .next()
            .map(|p| self.edge_target(p))
            .unwrap_or((empty_ident(), None));
        Edge {
            from,
            to,
            kind: EdgeKind::Failure,
            bound,
            span,
        }
    }

    fn edge_chain(&mut self, pair: Pair<Rule>) -> Vec<Edge> {
        let mut inner = children(pair);
        let Some(first) = inner.next() else {
            return Vec::new();
        };
        let mut from = self.ident(first);
        let mut edges = Vec::new();
        for target in inner {
            let target_span = self.span(&target);
            let (to, bound) = self.edge_target(target);
            edges.push(Edge {
                from: from.clone(),
                to: to.clone(),
                kind: EdgeKind::Next,
                bound,
                span: from.span.cover(target_span),
            });
            from = to;
        }
        edges
    }

    /// Build an expression by precedence climbing over pest's flat list.
    fn expr(&mut self, pair: Pair<Rule>) -> Expr {
        self.expr_deep(pair).0
    }

    /// [`Builder::expr`] and the depth of what it built ([`depth`], found
    /// as the tree is built rather than by walking it again).
    fn expr_deep(&mut self, pair: Pair<Rule>) -> (Expr, usize) {
        let span = self.tight_span(&pair);
        // Room for every pair at once (collected from a filter, the list
        // grew from four, twice for most expressions).
        let pairs = pair.into_inner();
        let mut items: Vec<Pair<Rule>> = Vec::with_capacity(pairs.len());
        items.extend(pairs.filter(|p| !is_keyword_rule(p.as_rule())));
        let mut pos = 0;
        let (e, d) = self.climb(&items, &mut pos, 0);
        if d > MAX_EXPR_DEPTH {
            self.diagnostics.push(
                Diagnostic::new(
                    Code::NestingTooDeep,
                    self.file,
                    span,
                    format!("expression nested more than {MAX_EXPR_DEPTH} deep"),
                )
                .with_label("this expression is too deep")
                .with_help("split it into several named rules"),
            );
            return (error_expr(span), 1);
        }
        (e, d)
    }

    fn climb(&mut self, items: &[Pair<Rule>], pos: &mut usize, min_prec: u8) -> (Expr, usize) {
        let (mut lhs, mut lhs_depth) = self.unary(items, pos);
        while let Some(op_pair) = items.get(*pos) {
            let Some(op) = binary_op(op_pair) else { break };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            *pos += 1;
            let (rhs, rhs_depth) = self.climb(items, pos, prec + 1);
            let span = lhs.span.cover(rhs.span);
            // The depth is checked on what is new: a chain grows by one
            // operand at a time, and walking all of it again for each
            // would be quadratic in its length.
            let too_deep = match (op, &lhs.kind) {
                (BinaryOp::And | BinaryOp::Or, ExprKind::Chain(chained, _)) if *chained == op => {
                    rhs_depth >= MAX_EXPR_DEPTH
                }
                (BinaryOp::And | BinaryOp::Or, _) => lhs_depth.max(rhs_depth) >= MAX_EXPR_DEPTH,
                _ => false,
            };
            (lhs, lhs_depth) = match (op, lhs) {
                // `a or b or c` is one chain, not `(a or b) or c` nested.
                (
                    BinaryOp::And | BinaryOp::Or,
                    Expr {
                        kind: ExprKind::Chain(chained, mut operands),
                        ..
                    },
                ) if chained == op => {
                    operands.push(rhs);
                    (
                        Expr {
                            kind: ExprKind::Chain(op, operands),
                            span,
                        },
                        lhs_depth.max(rhs_depth + 1),
                    )
                }
                (BinaryOp::And | BinaryOp::Or, lhs) => (
                    Expr {
                        kind: ExprKind::Chain(op, vec![lhs, rhs]),
                        span,
                    },
                    lhs_depth.max(rhs_depth) + 1,
                ),
                (op, lhs) => (
                    Expr {
                        kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs)),
                        span,
                    },
                    lhs_depth.max(rhs_depth) + 1,
                ),
            };
            let too_deep = too_deep
                || (!matches!(lhs.kind, ExprKind::Chain(..)) && lhs_depth > MAX_EXPR_DEPTH);
            if too_deep {
                return (tight_chain(lhs), lhs_depth);
            }
        }
        (tight_chain(lhs), lhs_depth)
    }

    fn unary(&mut self, items: &[Pair<Rule>], pos: &mut usize) -> (Expr, usize) {
        let mut ops = Vec::new();
        while let Some(p) = items.get(*pos) {
            match p.as_rule() {
                Rule::not_op => ops.push((UnaryOp::Not, self.tight_span(p))),
                Rule::neg_op => ops.push((UnaryOp::Neg, self.tight_span(p))),
                _ => break,
            }
            *pos += 1;
        }
        let (mut e, d) = match items.get(*pos) {
            Some(p) => {
                *pos += 1;
                self.primary(p.clone())
            }
            None => (error_expr(Place::default()), 1),
        };
        if let Some(&(_, start)) = ops.first()
            && ops.len() > MAX_EXPR_DEPTH
        {
            let span = start.cover(e.span);
            return (nested_error(span, ops.len()), MAX_EXPR_DEPTH + 2);
        }
        let d = d + ops.len();
        for (op, op_span) in ops.into_iter().rev() {
            let span = op_span.cover(e.span);
            e = Expr {
                kind: ExprKind::Unary(op, Box::new(e)),
                span,
            };
        }
        (e, d)
    }

    /// An operand and its depth.
    fn primary(&mut self, pair: Pair<Rule>) -> (Expr, usize) {
        let span = self.tight_span(&pair);
        // Leaves are one level deep; calls and sets one more than their
        // deepest argument.
        let mut depth = 1;
        let mut deepest = |args: Vec<(Expr, usize)>| -> Vec<Expr> {
            depth = 1 + args.iter().map(|(_, d)| *d).max().unwrap_or(0);
            tight(args.into_iter().map(|(e, _)| e).collect())
        };
        let kind = match pair.as_rule() {
            Rule::paren => {
                return pair
                    .into_inner()
                    .next()
                    .map(|p| self.expr_deep(p))
                    .map(|(mut e, d)| {
                        e.span = span;
                        (e, d)
                    })
                    .unwrap_or_else(|| (error_expr(span), 1));
            }
            Rule::path_expr => {
                let mut inner = children(pair);
                let segs = inner
                    .next()
                    .map(|p| self.path_segments(&p))
                    .unwrap_or_default();
                match inner.next() {
                    None => ExprKind::Path(segs),
                    Some(args) => {
                        let args: Vec<(Expr, usize)> =
                            children(args).map(|p| self.expr_deep(p)).collect();
                        let args = deepest(args);
                        match <[Ident; 1]>::try_from(segs) {
                            Ok([name]) => ExprKind::Call(Box::new(Call { name, args })),
                            Err(segs) => {
                                // An error is a leaf, whatever its arguments.
                                depth = 1;
                                let path_span = segs.first().map_or(span, |f| {
                                    f.span.cover(segs.last().map_or(f.span, |l| l.span))
                                });
                                let path: Vec<&str> =
                                    segs.iter().map(|s| s.name.as_str()).collect();
                                self.diagnostics.push(
                                    Diagnostic::new(
                                        Code::SyntaxError,
                                        self.file,
                                        path_span,
                                        format!(
                                            "expected a built-in function, found the path `{}`",
                                            path.join(".")
                                        ),
                                    )
                                    .with_label("a path, not a function")
                                    .with_help("the functions are `len`, `min`, `max` and `abs`"),
                                );
                                ExprKind::Error
                            }
                        }
                    }
                }
            }
            Rule::set_lit => {
                let items: Vec<(Expr, usize)> = children(pair).map(|p| self.expr_deep(p)).collect();
                ExprKind::Set(deepest(items))
            }
            Rule::version_lit => ExprKind::Version(pair.as_str().to_string()),
            Rule::number => ExprKind::Number(Number(pair.as_str().parse().unwrap_or(f64::NAN))),
            Rule::string => ExprKind::Str(self.string(pair).value),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            _ => ExprKind::Error,
        };
        (Expr { kind, span }, depth)
    }
}

/// The children of `pair` without keyword tokens.
fn children(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_keyword_rule(p.as_rule()))
}

fn is_keyword_rule(r: Rule) -> bool {
    matches!(
        r,
        Rule::kw_action
            | Rule::kw_approvals
            | Rule::kw_approved
            | Rule::kw_expect
            | Rule::kw_observed
            | Rule::kw_outcome
            | Rule::kw_partner
            | Rule::kw_target
            | Rule::kw_test
            | Rule::kw_type
            | Rule::kw_validation
            | Rule::kw_approve
            | Rule::kw_authority
            | Rule::kw_backward_compatible
            | Rule::kw_band
            | Rule::kw_by
            | Rule::kw_category
            | Rule::kw_ceiling
            | Rule::kw_covers
            | Rule::kw_else
            | Rule::kw_extends
            | Rule::kw_factor
            | Rule::kw_fail
            | Rule::kw_flow
            | Rule::kw_from
            | Rule::kw_governs
            | Rule::kw_key
            | Rule::kw_mapping
            | Rule::kw_max
            | Rule::kw_migration
            | Rule::kw_order
            | Rule::kw_phase
            | Rule::kw_policy
            | Rule::kw_requires
            | Rule::kw_reversible
            | Rule::kw_rite
            | Rule::kw_to
            | Rule::kw_touches
            | Rule::kw_weight
            | Rule::kw_when
    )
}

fn nested_error(span: Place, _n: usize) -> Expr {
    // Marked by depth; `expr` reports it.
    let mut e = error_expr(span);
    for _ in 0..=MAX_EXPR_DEPTH {
        e = Expr {
            kind: ExprKind::Unary(UnaryOp::Not, Box::new(e)),
            span,
        };
    }
    e
}

/// Depth of an expression tree, counted without recursion.
pub fn depth(e: &Expr) -> usize {
    let mut max = 0;
    let mut stack = vec![(e, 1usize)];
    while let Some((e, d)) = stack.pop() {
        max = max.max(d);
        if d > MAX_EXPR_DEPTH {
            return d;
        }
        match &e.kind {
            ExprKind::Unary(_, x) => stack.push((x, d + 1)),
            ExprKind::Binary(_, a, b) => {
                stack.push((a, d + 1));
                stack.push((b, d + 1));
            }
            ExprKind::Call(call) => stack.extend(call.args.iter().map(|a| (a, d + 1))),
            ExprKind::Set(args) | ExprKind::Chain(_, args) => {
                stack.extend(args.iter().map(|a| (a, d + 1)))
            }
            _ => {}
        }
    }
    max
}

fn binary_op(pair: &Pair<Rule>) -> Option<BinaryOp> {
    Some(match pair.as_rule() {
        Rule::or_op => BinaryOp::Or,
        Rule::and_op => BinaryOp::And,
        Rule::in_op => BinaryOp::In,
        Rule::not_in_op => BinaryOp::NotIn,
        Rule::compare_op => BinaryOp::Compare(compare_op(pair.as_str())),
        Rule::add_op => BinaryOp::Add,
        Rule::sub_op => BinaryOp::Sub,
        Rule::mul_op => BinaryOp::Mul,
        Rule::div_op => BinaryOp::Div,
        _ => return None,
    })
}

fn compare_op(s: &str) -> CompareOp {
    match s {
        "==" => CompareOp::Eq,
        "!=" => CompareOp::Ne,
        "<=" => CompareOp::Le,
        ">=" => CompareOp::Ge,
        ">" => CompareOp::Gt,
        _ => CompareOp::Lt,
    }
}

fn empty_ident() -> Ident {
    Ident {
        name: Default::default(),
        span: Place::default(),
    }
}

fn error_expr(span: Place) -> Expr {
    Expr {
        kind: ExprKind::Error,
        span,
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rules pest never names as expected: silent ones, lookaheads and
    /// the insides of tokens.
    const NEVER_EXPECTED: &[Rule] = &[
        Rule::WHITESPACE,
        Rule::line_comment,
        Rule::block_comment,
        Rule::chunk,
        Rule::migration_item,
        Rule::flow_item,
        Rule::test_item,
        Rule::w,
        Rule::unary,
        Rule::infix,
        Rule::primary,
        Rule::keyword,
    ];

    #[test]
    fn accepted_chunks_counts_the_chunks_the_grammar_accepts_and_no_other() {
        let text = "policy p extends kwanus\n\nauthority A \"A\" governs c\n\nceiling x <=\n";
        let chunks: Vec<&str> = chunk_spans(text).iter().map(|s| &text[s.range()]).collect();
        assert_eq!(chunks.len(), 3, "{chunks:?}");
        let parsed = parse("t.pmf", text);
        assert_eq!(parsed.ast.decls.len(), 2, "{:?}", parsed.diagnostics);
        // The policy header and the authority; not the ceiling without
        // its bound.
        assert_eq!(accepted_chunks(&chunks), 2);
    }

    #[test]
    fn every_rule_pest_can_expect_has_an_expectation_text() {
        let missing: Vec<&Rule> = Rule::all_rules()
            .iter()
            .filter(|r| !NEVER_EXPECTED.contains(r) && friendly(r).is_none())
            .collect();
        assert!(missing.is_empty(), "rules without a text: {missing:?}");
    }

    /// One sample per slip: the text, and what its message must say.
    fn sample(slip: slips::Slip) -> &'static str {
        use slips::Slip::*;
        match slip {
            SingleEquals => "migration m {\n  when partner.power = 2\n}\n",
            ReversedComparison => "migration m {\n  when partner.power =< 2\n}\n",
            OpenRange => "health {\n  band 0..100 ok -> proceed\n}\n",
            VersionPrefix => "ceiling version < v2.0.0\n",
            UnquotedText => "rite detection Change approaches\n",
            LookAlike => "rite detection \u{201C}Change\u{201D}\n",
            FileName => "policy a extends kwanus.pmf\n",
            HyphenatedName => "policy my-fleet\n",
            CeilingOperator => "ceiling power 7\n",
            PreviousStable => "migration m {\n  to previous\n}\n",
            MissingElse => "compatibility {\n  a: partner.power > 1 fallback\n}\n",
            UnclosedBracket => "health {\n  band 0..=100 ok -> proceed\n",
            IndentedDeclaration => "ceiling power <= 7\n  rite detection \"x\"\n",
            DeclarationInBlock => "flow f {\n  phase a\n  rite a \"x\"\n}\n",
            ClosesNothing => "rite a \"x\"\n  a -> b\n}\n",
            MisspeltKeyword => "migration m {\n  reversable\n}\n",
        }
    }

    #[test]
    fn every_slip_is_recognised_and_says_what_was_expected() {
        for &slip in slips::Slip::ALL {
            let text = sample(slip);
            let parsed = parse("f.pmf", text);
            let d = parsed
                .diagnostics
                .iter()
                .find(|d| d.code == Code::SyntaxError)
                .unwrap_or_else(|| panic!("{slip:?}: no PMF001 for {text:?}"));
            assert!(
                d.message.starts_with("expected "),
                "{slip:?}: {}",
                d.message
            );
            assert!(d.help.is_some(), "{slip:?}: no help");
            let split = split::split(text);
            let chunk = split
                .chunks
                .iter()
                .find(|c| PestParser::parse(Rule::chunk, &text[c.span.range()]).is_err())
                .expect("a failing chunk");
            let slice = &text[chunk.span.range()];
            let err = PestParser::parse(Rule::chunk, slice).expect_err("fails");
            let raw = match err.location {
                pest::error::InputLocation::Pos(p) => p,
                pest::error::InputLocation::Span((s, _)) => s,
            };
            let (pos, found) = token_at(slice, raw);
            let positives: &[Rule] = match &err.variant {
                pest::error::ErrorVariant::ParsingError { positives, .. } => positives,
                pest::error::ErrorVariant::CustomError { .. } => &[],
            };
            let stop = slips::Stop {
                text: slice,
                raw,
                pos,
                found,
                wanted: "x",
                expected: expected_flags(positives),
                keywords: &positives.iter().filter_map(friendly).collect::<Vec<_>>(),
                parses: &|t: &str| PestParser::parse(Rule::chunk, t).is_ok(),
            };
            let got = slips::recognise(&stop).map(|f| f.slip);
            assert_eq!(got, Some(slip), "{text:?}");
        }
    }

    #[test]
    fn a_fix_is_kept_only_when_the_chunk_parses_past_it() {
        // `=` in a test record is not a comparison: `==` would not parse.
        let text = "test \"t\" {\n  partner { power = 2 }\n}\n";
        let parsed = parse("f.pmf", text);
        let d = &parsed.diagnostics[0];
        assert_eq!(d.code, Code::SyntaxError);
        assert!(d.fixes.is_empty(), "{d:?}");
        let text = "migration m {\n  when partner.power = 2\n}\n";
        let d = &parse("f.pmf", text).diagnostics[0];
        assert_eq!(d.fixes.len(), 1);
        assert!(d.fixes[0].machine_applicable);
        let fixed = d.fixes[0].apply(text, &crate::PlaceMap::identity());
        assert!(
            parse("f.pmf", &fixed)
                .diagnostics
                .iter()
                .all(|d| d.code != Code::SyntaxError)
        );
    }

    #[test]
    fn a_phase_named_like_a_keyword_is_not_a_declaration_in_a_block() {
        let text = "flow f {\n  phase validation\n  validation fial -> fallback\n}\n";
        let d = &parse("f.pmf", text).diagnostics[0];
        assert!(!d.message.contains("declaration keyword"), "{}", d.message);
        assert!(d.message.starts_with("expected "), "{}", d.message);
    }

    /// pest is built without its stack probe: the nesting bounds of
    /// `split.rs` (brackets, and set types apart) are what keep its
    /// recursion shallow. At the bounds, a chunk parses on a small stack;
    /// past them, however deep, it is PMF002 and never reaches pest.
    #[test]
    fn nesting_at_the_bounds_parses_on_a_small_stack() {
        let run = |text: String| {
            std::thread::Builder::new()
                .stack_size(512 * 1024)
                .spawn(move || parse("f.pmf", &text).diagnostics)
                .expect("spawn")
                .join()
                .expect("no overflow")
        };
        let n = MAX_NESTING;
        let set_type = |n: usize| format!("{}number{}", "set<".repeat(n), ">".repeat(n));
        let record = |n: usize| format!("{}number{}", "{ a: ".repeat(n), " }".repeat(n));
        let at_bounds = format!(
            "policy p\npartner {{\n  x: {}\n  y: {}\n}}\nceiling x < {}1{}\n",
            set_type(n),
            record(n - 1),
            "(".repeat(n),
            ")".repeat(n)
        );
        assert!(run(at_bounds).is_empty());
        for deep in [n + 1, 100_000] {
            let text = format!("policy p\npartner {{\n  x: {}\n}}\n", set_type(deep));
            let codes: Vec<Code> = run(text).iter().map(|d| d.code).collect();
            assert_eq!(codes, vec![Code::NestingTooDeep], "{deep}");
        }
    }

    /// The depth the builder keeps as it climbs is [`depth`] of what it
    /// built, for every expression of these texts.
    #[test]
    fn the_depth_kept_while_building_is_the_depth_of_the_tree() {
        let texts = [
            "a",
            "not -a",
            "a + b * c - d / e",
            "a or b or c and d",
            "len(a) > max(b, c + 1)",
            "[a, [b, c], []] == x",
            "(((a)))",
            "a and (b or (c and not d))",
            "f(a)",
            "a.b(c)",
            "1.2.3 < a.version",
            "not not not a in b",
        ];
        // The expression of `text`, and the depth the builder kept.
        let built = |text: &str| {
            let pair = PestParser::parse(Rule::expr, text)
                .expect("parses")
                .next()
                .expect("an expression");
            let mut diagnostics = Vec::new();
            let mut builder = Builder {
                file: "f.pmf",
                comments: &[],
                text,
                offset: 0,
                diagnostics: &mut diagnostics,
            };
            builder.expr_deep(pair)
        };
        for t in texts {
            let (e, d) = built(t);
            assert_eq!(d, depth(&e), "{t}");
        }
        let chain = |op: &str, n: usize| vec!["a"; n].join(op);
        for n in [2, 127, 128, 129, 300] {
            for text in [
                chain(" + ", n),
                chain(" or ", n),
                format!("{}a{}", "(a + ".repeat(n.min(60)), ")".repeat(n.min(60))),
                format!("{}a", "not ".repeat(n)),
            ] {
                let (e, d) = built(&text);
                let walked = depth(&e);
                assert!(
                    d == walked || (d > MAX_EXPR_DEPTH && walked > MAX_EXPR_DEPTH),
                    "{n}: {d} {walked}"
                );
            }
        }
    }

    /// Every policy of the repository (examples, fixtures, the stdlib).
    fn repository_policies() -> Vec<String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut dirs = vec![
            root.join("examples"),
            root.join("stdlib"),
            root.join("tests"),
        ];
        let mut texts = Vec::new();
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "pmf") {
                    texts.extend(std::fs::read_to_string(&path));
                }
            }
        }
        texts
    }

    /// The shortcuts of the expression builder answer as what they stand
    /// for: a path's names read from its text are the names of its `ident`
    /// pairs, and the span of a name, a literal or a part of an expression
    /// taken as it is is the span [`Builder::span`] trims, on every pair of
    /// every policy of the repository and of these expressions.
    #[test]
    fn the_builder_shortcuts_answer_as_the_pairs() {
        let mut texts = repository_policies();
        assert!(texts.len() > 50);
        for e in [
            "a.b.c",
            "x_1.y2.Z",
            "f(a.b , c)",
            "[ a , b.c ]",
            "( a.b )  ",
            "not  -a.b",
            "a.b /* c */ + d",
            "a.b // c\n  + d",
            "\"s\" in t.u",
            "1.2.3 <= v.w",
        ] {
            texts.push(format!("ceiling f <= {e}\n"));
        }
        let tight = [
            Rule::expr,
            Rule::path_expr,
            Rule::paren,
            Rule::call_args,
            Rule::set_lit,
            Rule::path,
            Rule::ident,
            Rule::number,
            Rule::version_lit,
            Rule::string,
            Rule::boolean,
            Rule::not_op,
            Rule::neg_op,
        ];
        let (mut paths, mut spans) = (0, 0);
        for text in &texts {
            for span in chunk_spans(text) {
                let slice = &text[span.range()];
                let split = split::split(slice);
                let comments: Vec<Place> = split
                    .comments
                    .iter()
                    .map(|s| Place::at(*s, span.start as usize))
                    .collect();
                let Ok(pairs) = PestParser::parse(Rule::chunk, slice) else {
                    continue;
                };
                let mut diagnostics = Vec::new();
                let builder = Builder {
                    file: "f.pmf",
                    comments: &comments,
                    text: slice,
                    offset: span.start as usize,
                    diagnostics: &mut diagnostics,
                };
                for pair in pairs.flatten() {
                    if pair.as_rule() == Rule::path {
                        paths += 1;
                        assert_eq!(
                            builder.path_segments(&pair),
                            builder.idents(children(pair.clone())),
                            "{slice}"
                        );
                    }
                    if tight.contains(&pair.as_rule()) {
                        spans += 1;
                        assert_eq!(builder.tight_span(&pair), builder.span(&pair), "{slice}");
                    }
                }
            }
        }
        assert!(paths > 300 && spans > 3000, "{paths} {spans}");
    }

    #[test]
    fn calling_a_path_says_what_was_expected() {
        let text = "ceiling power <= partner.max(1)\n";
        let d = &parse("f.pmf", text).diagnostics[0];
        assert_eq!(
            d.message,
            "expected a built-in function, found the path `partner.max`"
        );
    }
}
