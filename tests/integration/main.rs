//! Integration tests: one binary (links once) with a module per area.

// Tests and their helpers may unwrap, expect, panic and index: a failing
// test is the point (clippy.toml allows it in `#[test]` functions; the
// helpers beside them are test code too).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod apply_ahead;
mod apply_view;
mod cli;
mod codes;
mod composition;
mod conventions;
mod diagnostics;
mod faults;
mod fmt;
mod governance;
mod illumination;
mod incremental;
mod inputs;
mod integrity;
mod keys;
mod layers;
mod lsp;
mod migration;
mod parser;
mod plan_view;
mod robustness;
mod runtime;
mod support;
mod valid;
