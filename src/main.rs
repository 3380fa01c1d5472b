//! The `pmf` binary: runs the CLI on a thread with a generous stack and
//! turns any panic into an internal-error message with exit code 2.

use std::process::ExitCode;

mod out_of_memory;

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
        let said = info.to_string();
        let _ = if out_of_threads(&said) {
            // std's and rayon's words are for Rust programmers: the
            // operating system's reason is what the user needs.
            let why = ["Resource temporarily unavailable", "Cannot allocate memory"]
                .into_iter()
                .find(|w| said.contains(w))
                .unwrap_or("the operating system refused it");
            no_thread(why)
        } else {
            writeln!(
                std::io::stderr(),
                "pmf: internal error: {said}\nThis is a bug in pmf; please report it with the input that caused it."
            )
        };
    }));
    // Rayon's pool is started here, where a thread that cannot start is said
    // plainly, rather than by the first parallel loop (a panic).
    if let Err(e) = rayon::ThreadPoolBuilder::new().build_global() {
        let _ = no_thread(&e.to_string());
        return pmf::cli::Exit::Usage.into();
    }
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let worker = std::thread::Builder::new()
        .name("pmf".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(move || pmf::cli::run(args));
    match worker {
        // The panic hook said why.
        Ok(handle) => handle.join().unwrap_or(pmf::cli::Exit::Usage).into(),
        Err(e) => {
            let _ = no_thread(&e.to_string());
            pmf::cli::Exit::Usage.into()
        }
    }
}

/// Whether a panic's message says a thread could not be started (std's
/// `spawn`, or rayon's pool): the machine's limits, not a bug.
fn out_of_threads(said: &str) -> bool {
    said.contains("failed to spawn thread") || said.contains("ThreadPoolBuildError")
}

/// Say on stderr that a thread cannot be started, `why` being the error
/// (`writeln!`, not `eprintln!`, which would panic with stderr full).
fn no_thread(why: &str) -> std::io::Result<()> {
    use std::io::Write;
    writeln!(
        std::io::stderr(),
        "pmf: cannot start a thread ({why}): the machine's memory or its limits (such as `ulimit -v` or `ulimit -u`) are reached; nothing more was done (what was committed to a store is kept); free memory or raise the limit, and run the command again"
    )
}

/// mimalloc, with an allocation failure a clear message and exit code 2
/// (see [`out_of_memory`]).
#[global_allocator]
static GLOBAL: out_of_memory::Allocator = out_of_memory::Allocator;
