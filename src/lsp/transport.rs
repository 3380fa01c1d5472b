//! The stdio transport: a reader thread that takes in every message the
//! client sends as soon as it arrives (an unbounded queue, unlike
//! `lsp_server`'s hand-over-one-at-a-time channel), so the main loop sees a
//! `$/cancelRequest` that is waiting behind its request, and a writer
//! thread for the answers.

use std::io::{BufReader, Write};
use std::thread::JoinHandle;

use crossbeam_channel::unbounded;
use lsp_server::{Connection, Message};

/// The connection, and the writer thread to join once it is dropped.
pub fn stdio() -> std::io::Result<(Connection, JoinHandle<std::io::Result<()>>)> {
    let (to_server, from_client) = unbounded::<Message>();
    std::thread::Builder::new()
        .name("pmf-lsp-reader".into())
        .spawn(move || {
            let mut stdin = BufReader::new(std::io::stdin().lock());
            // Ends at end of input, on a malformed message (the main loop
            // then sees the channel close) or after `exit`.
            while let Ok(Some(msg)) = Message::read(&mut stdin) {
                let exit = matches!(&msg, Message::Notification(n) if n.method == "exit");
                if to_server.send(msg).is_err() || exit {
                    break;
                }
            }
        })?;
    let (to_client, answers) = unbounded::<Message>();
    let writer = std::thread::Builder::new()
        .name("pmf-lsp-writer".into())
        .spawn(move || {
            let mut stdout = std::io::stdout().lock();
            for msg in answers {
                msg.write(&mut stdout)?;
                stdout.flush()?;
            }
            Ok(())
        })?;
    Ok((
        Connection {
            sender: to_client,
            receiver: from_client,
        },
        writer,
    ))
}
