//! The embedded standard library: the whole seed as `policy kwanus`.

/// The path under which the standard library appears in diagnostics.
pub const KWANUS_PATH: &str = "<stdlib>/kwanus.pmf";

/// The text of `stdlib/kwanus.pmf`, embedded at build time.
pub const KWANUS_SOURCE: &str = include_str!("../../../stdlib/kwanus.pmf");
