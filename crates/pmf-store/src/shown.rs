//! Which characters a terminal obeys rather than shows: what pmf never
//! prints raw from a file, a store or a lock (the same set as the syntax
//! layer's `obeyed_by_terminals`, kept here because the store depends on
//! no other PMF crate).

/// Whether a terminal would obey `c` (a C0 control but tab, line end and
/// carriage return, DEL, a C1 control, or a layout control: a
/// bidirectional mark, embedding, override or isolate, a line or paragraph
/// separator).
pub fn obeyed_by_terminals(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || is_layout_control(c)
}

/// Whether `c` changes how text around it is laid out (U+061C, U+200E,
/// U+200F, U+2028–U+202E, U+2066–U+2069).
pub fn is_layout_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_layout_controls_are_obeyed_and_text_is_not() {
        for c in [
            '\u{1b}', '\u{7f}', '\u{85}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{61c}',
        ] {
            assert!(obeyed_by_terminals(c), "{c:?}");
        }
        for c in ['\t', '\n', '\r', 'a', 'é', '“', '\u{a0}', '\u{2030}', '🦀'] {
            assert!(!obeyed_by_terminals(c), "{c:?}");
        }
    }
}
