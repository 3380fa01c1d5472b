//! The syntax layer: splitting, parsing and the syntax tree.
//!
//! Invariant: nothing here knows salsa, the checker, the runtime or the
//! language server. Parsing never fails; it returns a tree and diagnostics.

pub mod ast;
pub mod parser;
pub mod shift;
pub mod slips;
pub mod span;
pub mod split;

pub use parser::{ChunkParse, Parsed, parse, parse_chunk};
pub use span::{LineCol, LineIndex, Span};
