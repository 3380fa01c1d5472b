//! The compiler: salsa queries over policy files ([`db`]: parse → resolve
//! → check → phase graph), the resolved policy model ([`model`]), the
//! check families ([`check`]), the phase graph ([`graph`]) and the
//! embedded standard library ([`stdlib`]); which files make a project
//! ([`project`]).
//!
//! Depends only on the syntax layer (`pmf-syntax`); knows nothing of the
//! runtime, the store, the CLI or the language server.

// No input may make the library panic: errors are values.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod check;
pub mod db;
pub mod graph;
pub mod model;
pub mod project;
pub mod stdlib;
