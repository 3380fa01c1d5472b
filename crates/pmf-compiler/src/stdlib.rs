//! The embedded standard library: the whole seed as `policy kwanus`.

/// The name of the policy the standard library declares.
pub const KWANUS_NAME: &str = "kwanus";

/// The path under which the standard library appears in diagnostics.
pub const KWANUS_PATH: &str = "<stdlib>/kwanus.pmf";

/// The text of `stdlib/kwanus.pmf`, embedded at build time.
pub const KWANUS_SOURCE: &str = include_str!("../../../stdlib/kwanus.pmf");

#[cfg(test)]
mod tests {
    #[test]
    fn the_embedded_standard_library_declares_its_name() {
        let parsed = pmf_syntax::parse(super::KWANUS_PATH, super::KWANUS_SOURCE);
        let header = parsed.ast.header().expect("a policy header");
        assert_eq!(header.name.name.as_str(), super::KWANUS_NAME);
    }
}
