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
}
