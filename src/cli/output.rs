//! Standard output for the commands' reports. `print!` panics when a
//! write fails (a full disk, a closed pipe where `SIGPIPE` is ignored): here
//! the first failure is kept, later output is dropped, and [`super::run`]
//! reports it when the command ends (exit 2), so a report that did not
//! reach its reader never passes for a success. A reader that went away
//! (a broken pipe: `pmf lineage show | head`) is not reported, like other
//! Unix tools stop quietly. Messages to stderr (`errln!`) are written
//! when they can be: with stderr full or closed nothing can be said, and
//! the exit code still tells what happened (`eprintln!` would panic, and
//! the panic's own message would abort the process).

use std::io::Write;
use std::sync::Mutex;

/// The first write to stdout that failed.
static FAILED: Mutex<Option<std::io::Error>> = Mutex::new(None);

/// Write `args` to stdout (what `out!` and `outln!` expand to), unless an
/// earlier write failed.
pub fn print(args: std::fmt::Arguments<'_>) {
    let Ok(mut failed) = FAILED.lock() else {
        return;
    };
    if failed.is_none()
        && let Err(e) = std::io::stdout().lock().write_fmt(args)
    {
        *failed = Some(e);
    }
}

/// Keep `e` as stdout's failure, unless one is kept already (for commands
/// that write stdout through a writer of their own).
pub fn failed_with(e: std::io::Error) {
    if let Ok(mut failed) = FAILED.lock()
        && failed.is_none()
    {
        *failed = Some(e);
    }
}

/// Flush stdout and take its failure, if a write failed for another
/// reason than its reader going away.
pub fn failure() -> Option<std::io::Error> {
    if let Err(e) = std::io::stdout().lock().flush() {
        failed_with(e);
    }
    FAILED
        .lock()
        .ok()?
        .take()
        .filter(|e| e.kind() != std::io::ErrorKind::BrokenPipe)
}

/// Write `args` to stderr if it can be written (what `errln!` expands to).
pub fn print_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}
