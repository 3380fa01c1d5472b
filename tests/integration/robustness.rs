//! Property tests: no input makes the parser or the checker panic.

use pmf::db::Session;
use proptest::prelude::*;

fn tokens() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(crate::support::TOKEN_SOUP), 0..120)
        .prop_map(|v| v.concat())
}

fn check_text(text: &str) {
    let mut session = Session::default();
    let f = session.set_file("fuzz.pmf", text.to_string());
    let diags = session.check(f);
    for d in diags {
        assert!(!d.message.is_empty());
    }
}

/// The slips PMF001 explains, for the property below.
const SLIP_SOUP: &[&str] = &[
    " = ",
    "=>",
    "=<",
    "..",
    "v1.2.3",
    "\u{201C}",
    "\u{201D}",
    "\u{2018}",
    "\u{a0}",
    "\u{2013}",
    "\u{2192}",
    "\u{2264}",
    "\u{0430}",
    "\u{200B}",
    ".pmf",
    "-",
    "previous",
    "\n  rite ",
    "\nrite ",
    "\n  ",
    "{",
    "(",
    "[",
    "}",
    "words",
    " ",
    "\"",
];

fn slips() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(SLIP_SOUP), 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check_text(&text);
    }

    #[test]
    fn token_soup_never_panics(text in tokens()) {
        check_text(&format!("policy fuzz extends kwanus\n{text}"));
    }

    #[test]
    fn mutated_stdlib_never_panics(cut in 0usize..8000, len in 0usize..200, insert in tokens()) {
        let src = pmf::stdlib::KWANUS_SOURCE;
        let mut start = cut.min(src.len());
        while !src.is_char_boundary(start) { start -= 1; }
        let mut end = (start + len).min(src.len());
        while !src.is_char_boundary(end) { end -= 1; }
        let text = format!("{}{}{}", &src[..start], insert, &src[end..]).replace("policy kwanus", "policy mutant");
        check_text(&text);
    }

    /// Slips pasted into the stdlib: nothing panics, every syntax error
    /// says what was expected, and every fix lies on character boundaries
    /// and changes the text.
    #[test]
    fn slips_are_explained_and_their_fixes_apply(cut in 0usize..8000, insert in slips()) {
        let src = pmf::stdlib::KWANUS_SOURCE;
        let mut at = cut.min(src.len());
        while !src.is_char_boundary(at) { at -= 1; }
        let text = format!("{}{}{}", &src[..at], insert, &src[at..]).replace("policy kwanus", "policy mutant");
        let mut session = Session::default();
        let f = session.set_file("slip.pmf", text.clone());
        let places = &pmf::db::parse_file(session.db(), f).places;
        for d in session.check(f) {
            if d.code == pmf::diagnostics::Code::SyntaxError {
                prop_assert!(d.message.starts_with("expected "), "{}", d.message);
                prop_assert!(d.help.is_some());
            }
            for fix in &d.fixes {
                let bytes = places.bytes(fix.span);
                let (s, e) = (bytes.start as usize, bytes.end as usize);
                prop_assert!(s <= e && e <= text.len());
                prop_assert!(text.is_char_boundary(s) && text.is_char_boundary(e));
                prop_assert_ne!(fix.apply(&text, places), text.clone());
            }
        }
    }
}
