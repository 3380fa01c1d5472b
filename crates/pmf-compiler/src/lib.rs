//! The compiler: salsa queries over policy files ([`db`]: parse → resolve
//! → check → phase graph), the resolved policy model ([`model`]), the
//! check families ([`check`]), the phase graph ([`graph`]) and the
//! embedded standard library ([`stdlib`]); which files make a project
//! ([`project`]).
//!
//! Depends only on the syntax layer (`pmf-syntax`); knows nothing of the
//! runtime, the store, the CLI or the language server.

pub mod check;
pub mod db;
pub mod graph;
pub mod model;
pub mod project;
pub mod sections;
pub mod stdlib;
#[cfg(test)]
mod test_files;
