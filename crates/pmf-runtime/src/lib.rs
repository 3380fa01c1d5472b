//! The runtime: compiled policies, plans, and their application to partner
//! states with a lineage on the store.
//!
//! Depends on the compiler (`pmf-compiler`) for the checked policy and on
//! the store (`pmf-store`); never on the CLI or the language server.

pub mod apply;
pub mod approvals;
pub mod compile;
pub mod engine;
pub mod fast;
pub mod file_digest;
pub mod input;
pub mod json_out;
pub mod keyed;
pub mod load;
pub mod plan;
pub mod plan_claims;
pub mod plan_view;
pub mod schema;
pub mod shared_batch;
pub mod stream;
pub mod testing;
pub mod value;
