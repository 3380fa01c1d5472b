//! The global allocator: mimalloc, with an allocation that fails (the
//! machine's memory, or a limit such as `ulimit -v`, reached) ending the
//! process with a clear message and exit code 2, instead of Rust's abort
//! (exit 134, "memory allocation of N bytes failed", and with
//! `RUST_BACKTRACE` set a backtrace).
//!
//! The process ends at once (`_exit`): no destructor runs, as after a
//! crash. That is safe where a crash is: a store's uncommitted transaction
//! is rolled back by SQLite when it is next opened, its lock is released
//! with the process, and an output written beside itself is never renamed
//! into place (its leftover is removed by the next output of that name).
//! Nothing here allocates: the message is formatted into a buffer on the
//! stack and written with `write(2)`.

use std::alloc::{GlobalAlloc, Layout};

/// mimalloc (the compiler allocates many small nodes; it is markedly faster
/// than the system allocator on large policies), ending the process cleanly
/// when an allocation fails.
pub struct Allocator;

// SAFETY: every method forwards to mimalloc's, with the same arguments and
// contract; a null result ends the process instead of being returned.
unsafe impl GlobalAlloc for Allocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        let p = unsafe { mimalloc::MiMalloc.alloc(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) };
        if p.is_null() {
            out_of_memory(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by this allocator with `layout`.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        let p = unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) };
        if p.is_null() {
            out_of_memory(new_size);
        }
        p
    }
}

/// Say that `size` bytes could not be allocated, and end the process with
/// exit code 2 (a problem of the machine, not of the user's input).
fn out_of_memory(size: usize) -> ! {
    use std::io::Write;
    // Formatted into a buffer on the stack: `io::Write` for a byte slice
    // and the formatting of an integer allocate nothing.
    let mut message = [0u8; 512];
    let capacity = message.len();
    let mut rest = &mut message[..];
    let _ = writeln!(
        rest,
        "pmf: out of memory: allocating {size} bytes failed (the machine's memory, or a limit such as `ulimit -v`, is reached). \
pmf stopped at once, as after a crash: what it committed to a store is kept and whole, \
what it had not is not written. Free memory or raise the limit, and run the command again"
    );
    let at = capacity - rest.len();
    // SAFETY: `write` and `_exit` are async-signal-safe and allocate
    // nothing; the buffer outlives the call.
    unsafe {
        let _ = libc::write(libc::STDERR_FILENO, message.as_ptr().cast(), at);
        libc::_exit(2)
    }
}
