//! The syntax layer: splitting, parsing and the syntax tree, the
//! diagnostics every layer reports with (their codes, spans, fixes and
//! rendering), and the formatter.
//!
//! Invariant: nothing here knows salsa, the checker, the runtime or the
//! language server (Cargo enforces it: this crate depends on no other PMF
//! crate). Parsing never fails; it returns a tree and diagnostics.

pub mod ast;
pub mod diagnostics;
pub mod fmt;
pub mod hidden;
pub mod parser;
pub mod place;
pub mod read;
pub mod slips;
pub mod span;
pub mod split;

pub use parser::{ChunkParse, Parsed, accepted_chunks, parse, parse_chunk};
pub use place::{PlaceMap, PlacedTexts};
pub use span::{LineCol, LineIndex, Place, Span};
