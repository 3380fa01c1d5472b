//! PMF: a policy language and toolchain for governed partner migrations.
//!
//! The layers are crates, so Cargo enforces their order (see
//! `docs/architecture.md` for the invariants):
//!
//! 1. `pmf-syntax` — [`syntax`] (split → pest → tree), [`diagnostics`],
//!    [`fmt`];
//! 2. `pmf-compiler` — [`db`] (salsa queries: parse → resolve → check →
//!    phase graph), [`model`], [`check`], [`graph`], [`stdlib`];
//! 3. `pmf-store` — [`store`], with [`output`] and [`clock`];
//! 4. `pmf-runtime` — [`runtime`]: plans and their application;
//! 5. this crate — the commands ([`cli`]), the language server ([`lsp`])
//!    and the governance document ([`doc`]).
//!
//! The lower layers are re-exported under their module names, so
//! `pmf::db`, `pmf::runtime`, … name the same items as the crates do.

pub mod cli;
pub mod doc;
pub mod lsp;

pub use pmf_compiler::{check, db, graph, model, stdlib};
pub use pmf_runtime as runtime;
pub use pmf_store as store;
pub use pmf_store::{clock, output};
pub use pmf_syntax as syntax;
pub use pmf_syntax::{diagnostics, fmt};
