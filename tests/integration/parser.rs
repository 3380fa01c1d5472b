//! Parser behaviour: spans, recovery at top-level declarations, bounded
//! nesting and lexical errors.

use pmf::diagnostics::Code;
use pmf::syntax::ast::{DeclKind, ExprKind, MigrationItemKind};
use pmf::syntax::{Place, PlaceMap, parse};

/// The text at `place` of a text parsed whole (its places are its bytes).
fn at(text: &str, place: Place) -> &str {
    &text[PlaceMap::identity().bytes(place).range()]
}

fn codes(text: &str) -> Vec<Code> {
    parse("t.pmf", text)
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

#[test]
fn every_node_has_the_span_of_its_text() {
    let text = "policy fleet extends kwanus, base\n\nmigration soft \"Soft\" {\n  when target.version.major == partner.version.major\n  reversible\n}\n";
    let parsed = parse("t.pmf", text);
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    let header = parsed.ast.header().expect("header");
    assert_eq!(at(text, header.name.span), "fleet");
    assert_eq!(at(text, header.parents[1].span), "base");
    let DeclKind::Migration(m) = &parsed.ast.decls[1].kind else {
        panic!("not a migration")
    };
    assert_eq!(
        at(text, parsed.ast.decls[1].span),
        &text[text.find("migration").unwrap()..text.len() - 1]
    );
    let MigrationItemKind::When(e) = &m.items[0].kind else {
        panic!("not a when")
    };
    assert_eq!(
        at(text, e.span),
        "target.version.major == partner.version.major"
    );
    let ExprKind::Binary(_, lhs, _) = &e.kind else {
        panic!("not binary")
    };
    assert_eq!(at(text, lhs.span), "target.version.major");
    assert_eq!(at(text, m.items[1].span), "reversible");
}

#[test]
fn precedence_and_associativity() {
    let text = "policy p\nceiling power < 1 + 2 * 3 - 4\n";
    let parsed = parse("t.pmf", text);
    let DeclKind::Ceiling(c) = &parsed.ast.decls[1].kind else {
        panic!()
    };
    // (1 + (2 * 3)) - 4
    let ExprKind::Binary(op, lhs, rhs) = &c.value.kind else {
        panic!()
    };
    assert_eq!(op.symbol(), "-");
    assert_eq!(at(text, lhs.span), "1 + 2 * 3");
    assert_eq!(at(text, rhs.span), "4");
}

#[test]
fn recovers_at_top_level_declarations() {
    let text = "policy p extends kwanus\nmigration a {\n  when ==\n}\nceiling power <= 7\nhealth {\n  band 1..= x\n}\nrite detection \"ok\"\nauthority 12\n";
    let parsed = parse("t.pmf", text);
    let syntax: Vec<_> = parsed
        .diagnostics
        .iter()
        .filter(|d| d.code == Code::SyntaxError)
        .collect();
    assert_eq!(syntax.len(), 3, "{syntax:#?}");
    let kinds: Vec<&str> = parsed.ast.decls.iter().map(|d| d.kind.keyword()).collect();
    assert_eq!(kinds, ["policy", "ceiling", "rite"]);
}

#[test]
fn syntax_error_points_at_the_offending_token() {
    let text = "policy p\norder forced guided\n";
    let d = &parse("t.pmf", text).diagnostics[0];
    assert_eq!(d.code, Code::SyntaxError);
    assert_eq!(at(text, d.primary.span), "guided");
}

#[test]
fn hundred_thousand_parentheses_are_an_error_not_a_crash() {
    let n = 100_000;
    let text = format!(
        "policy p\nceiling power < {}1{}\n",
        "(".repeat(n),
        ")".repeat(n)
    );
    assert_eq!(codes(&text), vec![Code::NestingTooDeep]);
}

#[test]
fn deep_unary_and_binary_chains_are_bounded() {
    let nots = format!(
        "policy p\ncompatibility {{\n  r: {}true else fallback\n}}\n",
        "not ".repeat(100_000)
    );
    assert_eq!(codes(&nots), vec![Code::NestingTooDeep]);
    let sums = format!("policy p\nceiling power < 1{}\n", " + 1".repeat(100_000));
    assert_eq!(codes(&sums), vec![Code::NestingTooDeep]);
    let sets = format!(
        "policy p\nceiling power < {}1{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    assert_eq!(codes(&sets), vec![Code::NestingTooDeep]);
}

/// A rule whose condition is `expr`.
fn rule(expr: &str) -> String {
    format!("policy p\ncompatibility {{\n  r: {expr} else fallback\n}}\n")
}

#[test]
fn long_boolean_chains_are_not_deep_nesting() {
    let terms =
        |n: usize| -> Vec<String> { (0..n).map(|i| format!("partner.power == {i}")).collect() };
    // 140 terms: more than the depth limit, yet one level of nesting.
    for op in [" or ", " and "] {
        let text = rule(&terms(140).join(op));
        assert_eq!(codes(&text), vec![], "{op}");
        let parsed = parse("t.pmf", &text);
        let found = format!("{:?}", parsed.ast);
        assert!(found.contains("Chain("), "{op}: not a chain");
    }
    // `and` binds tighter: an `or` chain of `and` chains is three levels.
    let mixed: Vec<String> = terms(140)
        .chunks(2)
        .map(|pair| pair.join(" and "))
        .collect();
    assert_eq!(codes(&rule(&mixed.join(" or "))), vec![]);
    // A hundred thousand terms: linear, and still legal.
    let started = std::time::Instant::now();
    assert_eq!(codes(&rule(&terms(100_000).join(" or "))), vec![]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
}

#[test]
fn real_nesting_still_counts_toward_the_depth_limit() {
    // 140 `not`s and 140 sums nest 140 deep; chains nested in parentheses
    // count one level each (45 levels of `not not (... or ...)` are 135
    // deep, within the bracket limit of 64).
    let nots = rule(&format!("{}true", "not ".repeat(140)));
    assert_eq!(codes(&nots), vec![Code::NestingTooDeep]);
    let sums = format!("policy p\nceiling power < 1{}\n", " + 1".repeat(140));
    assert_eq!(codes(&sums), vec![Code::NestingTooDeep]);
    let nested = (0..45).fold("true".to_string(), |inner, i| {
        format!("not not (partner.power == {i} or {inner})")
    });
    assert_eq!(codes(&rule(&nested)), vec![Code::NestingTooDeep]);
    let shallow = (0..40).fold("true".to_string(), |inner, i| {
        format!("not not (partner.power == {i} or {inner})")
    });
    assert_eq!(codes(&rule(&shallow)), vec![]);
}

#[test]
fn unterminated_comment_and_string() {
    assert_eq!(
        codes("policy p\n/* never closed\n"),
        vec![Code::Unterminated]
    );
    assert_eq!(
        codes("policy p\nrite detection \"open\n"),
        vec![Code::Unterminated]
    );
}

#[test]
fn header_must_exist_and_come_first() {
    assert_eq!(codes("ceiling power <= 7\n"), vec![Code::MissingHeader]);
    assert_eq!(
        codes("ceiling power <= 7\npolicy p\n"),
        vec![Code::MissingHeader]
    );
    assert_eq!(codes(""), vec![Code::MissingHeader]);
}

#[test]
fn keywords_need_a_boundary() {
    // `notable` is a name, not `not able`; `reversiblex` is not `reversible`.
    let parsed = parse(
        "t.pmf",
        "policy p\ncompatibility {\n  r: notable.x else fallback\n}\n",
    );
    assert!(parsed.diagnostics.is_empty(), "{:?}", parsed.diagnostics);
    assert_eq!(
        codes("policy p\nmigration m {\n  reversiblex\n}\n"),
        vec![Code::SyntaxError]
    );
}

#[test]
fn comments_are_kept_for_the_formatter() {
    let parsed = parse("t.pmf", "// head\npolicy p /* inline */\n// tail\n");
    let texts: Vec<&str> = parsed
        .ast
        .comments
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(texts, ["// head", "/* inline */", "// tail"]);
}
