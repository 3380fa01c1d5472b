//! The `pmf` binary: runs the CLI on a thread with a generous stack and
//! turns any panic into an internal-error message with exit code 2.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Like other Unix tools, stop quietly when the reader of stdout goes away
    // (`pmf lineage show | head`). `pmf apply` opts out: it keeps recording in
    // the store and only stops printing.
    // SAFETY: restoring the default action of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::panic::set_hook(Box::new(|info| {
        use std::io::Write;
        // Not `eprintln!`: with stderr full it would panic inside the hook,
        // and the process would abort.
        let _ = writeln!(
            std::io::stderr(),
            "pmf: internal error: {info}\nThis is a bug in pmf; please report it with the input that caused it."
        );
    }));
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let worker = std::thread::Builder::new()
        .name("pmf".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(move || pmf::cli::run(args));
    match worker.map(|h| h.join()) {
        Ok(Ok(exit)) => exit.into(),
        _ => pmf::cli::Exit::Usage.into(),
    }
}

/// mimalloc: the compiler allocates many small nodes; it is markedly faster
/// than the system allocator on large policies.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
