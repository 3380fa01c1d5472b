//! The language server (`pmf lsp`): LSP over stdio on the same salsa
//! database as `pmf check`.
//!
//! Only this module knows the Language Server Protocol. It reads the
//! compiler through [`crate::db`] (the queries, the effective policy, the
//! syntax tree and its byte spans) and converts at the edges: byte offsets ↔
//! LSP positions in [`convert`], paths ↔ URIs in [`workspace`], PMF
//! diagnostics ↔ LSP diagnostics in [`diagnostics`].
//!
//! | concern | file |
//! |---|---|
//! | main loop, dispatch, publishing | [`server`] |
//! | positions, line index | [`convert`] |
//! | documents, URIs, workspace files | [`workspace`] |
//! | projects: which files see each other | [`projects`] |
//! | diagnostics | [`diagnostics`] |
//! | names in a file | [`occurrences`] |
//! | text around the cursor | [`context`] |
//! | words' documentation | [`docs`] |
//! | hover | [`hover`] |
//! | definition, references | [`navigation`] |
//! | completion | [`completion`] |
//! | document symbols | [`symbols`] |
//! | code actions | [`actions`] |

pub mod actions;
pub mod completion;
pub mod context;
pub mod convert;
pub mod diagnostics;
pub mod docs;
pub mod hover;
pub mod navigation;
pub mod occurrences;
pub mod projects;
pub mod server;
pub mod symbols;
pub mod transport;
pub mod workspace;

pub use server::{Ending, serve};

/// Serve LSP over stdin/stdout until the client says `exit`.
pub fn run_stdio() -> Result<Ending, String> {
    let (connection, writer) =
        transport::stdio().map_err(|e| format!("cannot start the transport: {e}"))?;
    let ending = serve(&connection);
    // The writer thread ends when the last sender is gone, after writing
    // every answer.
    drop(connection);
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ =
                std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("pmf lsp: {e}\n"));
        }
        Err(_) => {
            let _ = std::io::Write::write_fmt(
                &mut std::io::stderr(),
                format_args!("pmf lsp: the writer thread failed\n"),
            );
        }
    }
    ending
}
