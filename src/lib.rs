//! PMF: a policy language and toolchain for governed partner migrations.
//!
//! Pipeline: [`syntax`] (split → pest → tree) → [`db`] (salsa queries:
//! parse → resolve → check → phase graph) → [`diagnostics`] rendering.
//! See `docs/architecture.md` for the invariants.

// No input may make the library panic: errors are values. Tests may
// unwrap, expect and panic (clippy.toml); indexing is not denied yet.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod check;
pub mod cli;
pub mod clock;
pub mod db;
pub mod diagnostics;
pub mod doc;
pub mod fmt;
pub mod graph;
pub mod lsp;
pub mod model;
pub mod output;
pub mod runtime;
pub mod stdlib;
pub mod store;
pub mod syntax;
