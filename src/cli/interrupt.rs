//! Ctrl-C (SIGINT) and SIGTERM during a long command that writes. The
//! first asks it to stop where what it did is whole: `apply` commits the
//! batch it is in and stops (the next run resumes after it), `plan` stops
//! writing and removes the file it began. A second one ends the process at
//! once, as a crash does (the store's unfinished transaction is rolled back
//! when it is next opened). Exit code 130, as shells report an interrupt.
//!
//! Commands that only read, and those that write in one short transaction,
//! keep the signals' default action: they end at once, and nothing is half
//! done.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether Ctrl-C or SIGTERM asked the command to stop.
#[derive(Clone, Debug)]
pub struct Interrupt(Arc<AtomicBool>);

impl Interrupt {
    /// Take over SIGINT and SIGTERM: the first sets the flag, a second
    /// (once the flag is set) ends the process with 130 (SIGINT) or 143
    /// (SIGTERM). Where a handler cannot be installed, the signal keeps its
    /// default action (the process ends at once, as before).
    pub fn watch() -> Interrupt {
        let flag = Arc::new(AtomicBool::new(false));
        for (signal, status) in [
            (signal_hook::consts::SIGINT, 130),
            (signal_hook::consts::SIGTERM, 143),
        ] {
            // The shutdown first: it acts only once the flag is set, so
            // only on the second signal.
            if signal_hook::flag::register_conditional_shutdown(signal, status, Arc::clone(&flag))
                .is_ok()
            {
                let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
            }
        }
        Interrupt(flag)
    }

    /// Whether the command was asked to stop.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// The flag itself, for a library that polls it (it knows nothing of
    /// signals).
    pub fn shared(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.0)
    }
}
