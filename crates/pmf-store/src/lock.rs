//! The store's write lock: an OS lock (`flock`) on `STORE.lock`, held for
//! the life of the process that took it. The kernel releases it when the
//! process ends however it ends (also `kill -9`), so a dead holder never
//! blocks anyone. The file also names its holder (pid, host, start time,
//! command) for the message another process gets.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::{Store, StoreError};

/// Why a lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds it: its description.
    #[error("the store is in use by {0}")]
    Held(String),
    /// The lock file cannot be used.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// This machine's host name.
pub(crate) fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// A held lock; dropping it (or the process ending) releases it.
///
/// Dropped while no store is at the path it guards (a command refused
/// before it made one, or whose first write was refused and the store it
/// made removed), it removes its lock file first, and the folders made
/// for it when they are empty: a refused command leaves nothing behind.
/// A process that opened the file meanwhile finds, once it holds the
/// lock, that the file is no longer the store's lock, and opens it again
/// ([`lock`]).
pub struct LockGuard {
    file: File,
    /// The lock file (`STORE.lock`, beside the store it guards).
    path: PathBuf,
    /// The folders made for the lock file, innermost first.
    made: Vec<PathBuf>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // `STORE.lock` guards `STORE`.
        let no_store = std::fs::symlink_metadata(self.path.with_extension(""))
            .is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
        // Only the file this guard locks: one put in its place is not ours.
        if no_store && is_the_file_at(&self.file, &self.path) {
            if std::fs::remove_file(&self.path).is_err() {
                return;
            }
            for dir in &self.made {
                if std::fs::remove_dir(dir).is_err() {
                    break;
                }
            }
        }
    }
}

/// Whether `file` is the file at `path` (not followed if a link).
fn is_the_file_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}

/// The lock file of a store: beside the file its path resolves to, so
/// that the store named through a link (a linked file or folder) or
/// another path (`..`) takes the same lock. Links are followed by hand:
/// a new store named through a link is not made yet.
pub(crate) fn lock_path(store: &Path) -> PathBuf {
    let mut path = store.to_path_buf();
    // As many links as the system follows in one path.
    for _ in 0..40 {
        let Ok(target) = std::fs::read_link(&path) else {
            break;
        };
        path = match path.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    let resolved = path
        .file_name()
        .and_then(|name| {
            let dir = path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::canonicalize(dir).ok().map(|d| d.join(name))
        })
        .unwrap_or(path);
    let mut name = resolved.into_os_string();
    name.push(".lock");
    PathBuf::from(name)
}

/// Open (or make) the lock file at `path`, and its folder; the folders
/// made for it are added to `made`, innermost first.
fn open(path: &Path, made: &mut Vec<PathBuf>) -> Result<File, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.as_os_str().is_empty() && std::fs::symlink_metadata(d).is_err())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        for d in missing {
            if !made.contains(&d) {
                made.push(d);
            }
        }
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    open_with(path, options)
}

/// Open the lock file at `path` with `options`, never through a link: the
/// holder's name is written into the lock file, and a link planted there
/// must not carry it into another file.
fn open_with(path: &Path, mut options: OpenOptions) -> Result<File, StoreError> {
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW);
    options.open(path).map_err(|source| StoreError::OpenLock {
        path: path.to_path_buf(),
        source: if source.raw_os_error() == Some(libc::ELOOP) {
            std::io::Error::other(
                "it is a symbolic link, which pmf never writes through: remove it",
            )
        } else {
            source
        },
    })
}

/// Take the lock of the store at `store` for `command`, or say who holds it.
pub fn lock(store: &Path, command: &str) -> Result<LockGuard, LockError> {
    let path = lock_path(store);
    let mut made = Vec::new();
    // A holder that made no store removes the lock file as it lets go: a
    // file opened just before is then locked in vain, and opened again.
    let mut tries = 0;
    let mut file = loop {
        tries += 1;
        let mut file = match open(&path, &mut made) {
            // Its folder removed meanwhile (by such a holder): again.
            Err(StoreError::OpenLock { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound && tries < LOCK_TRIES =>
            {
                continue;
            }
            opened => opened?,
        };
        // SAFETY: flock on a descriptor this function owns; no memory involved.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r != 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(LockError::Held(describe_holder(&mut file)));
            }
            return Err(LockError::Store(StoreError::Lock { path, source: err }));
        }
        if is_the_file_at(&file, &path) {
            break file;
        }
        if tries >= LOCK_TRIES {
            return Err(LockError::Store(StoreError::Lock {
                path,
                source: std::io::Error::other("the lock file was replaced each time it was taken"),
            }));
        }
    };
    let about = format!(
        "`pmf {command}` (pid {} on {}, since {})",
        std::process::id(),
        this_host(),
        crate::clock::now_rfc3339()
    );
    // The description is only for messages: failing to write it is harmless.
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(about.as_bytes());
    let _ = file.flush();
    Ok(LockGuard { file, path, made })
}

/// How many times [`lock`] opens a lock file that a holder removed as it
/// let go, before it gives up.
const LOCK_TRIES: u32 = 100;

/// How much of the lock file is read for its holder's description.
const HOLDER_BYTES: u64 = 1024;

/// The holder's description as it may be printed: a character a terminal
/// would obey (an escape sequence, a carriage return, a bidirectional
/// override: the file is written by whoever holds the lock) written as a
/// `\u{...}` escape, so that it cannot forge or hide what pmf says.
fn shown_holder(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || crate::shown::is_layout_control(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The holder's description from the lock file. A holder writes it just
/// after taking the lock, so an empty file, or one naming a process that is
/// gone (the previous holder's), is read again for up to a second (on a
/// loaded machine the holder may wait that long to be scheduled).
fn describe_holder(file: &mut File) -> String {
    let mut last = String::new();
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(1) {
        let mut bytes = Vec::new();
        let _ = file.rewind();
        // A holder writes a line; a file made larger (by anyone who can
        // write the store's folder) is read no further.
        let _ = Read::by_ref(file)
            .take(HOLDER_BYTES)
            .read_to_end(&mut bytes);
        let text = shown_holder(String::from_utf8_lossy(&bytes).trim());
        let pid = text
            .split_once("(pid ")
            .and_then(|(_, rest)| rest.split(' ').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok());
        // SAFETY: signal 0 only asks whether the process exists.
        let alive = pid.is_some_and(|p| p > 0 && unsafe { libc::kill(p, 0) } == 0);
        if alive {
            return text;
        }
        last = text;
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    if last.is_empty() {
        "another process".to_string()
    } else {
        last
    }
}

/// Who holds the lock of the store at `store`, if anyone does.
///
/// Asked without writing anything: the lock file is opened to be read and
/// tried shared, so that a user who may only read the store (an auditor)
/// can ask, and the file keeps its holder's name.
pub fn holder(store: &Path) -> Result<Option<String>, StoreError> {
    let path = lock_path(store);
    if !path.exists() {
        return Ok(None);
    }
    let mut options = OpenOptions::new();
    options.read(true);
    let mut file = open_with(&path, options)?;
    // SAFETY: flock on a descriptor this function owns; no memory involved.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) };
    if r == 0 {
        // Nobody holds it (released when the file closes).
        return Ok(None);
    }
    let err = std::io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        return Ok(Some(describe_holder(&mut file)));
    }
    Err(StoreError::Lock { path, source: err })
}

impl Store {
    /// Take this store's write lock for `command`.
    pub fn lock(&self, command: &str) -> Result<LockGuard, LockError> {
        lock(self.path(), command)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock let go while no store is there removes its file and the
    /// folders made for it (a folder that was there stays); a process that
    /// opened the file before holds a file that is no longer the lock. With
    /// a store made, the lock file stays.
    #[test]
    fn a_lock_let_go_with_no_store_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("a/b/state.db");
        let file = dir.path().join("a/b/state.db.lock");
        let held = lock(&store, "apply").unwrap();
        let early = File::open(&file).unwrap();
        assert!(is_the_file_at(&early, &file));
        drop(held);
        assert!(!dir.path().join("a").exists());
        assert!(!is_the_file_at(&early, &file));
        // Taken again, the lock is the file named now, not the early one.
        let again = lock(&store, "apply").unwrap();
        assert!(!is_the_file_at(&early, &file) && is_the_file_at(&again.file, &file));
        std::fs::write(&store, b"").unwrap();
        drop(again);
        assert!(file.exists(), "a store there: the lock file stays");
        std::fs::create_dir(dir.path().join("kept")).unwrap();
        drop(lock(&dir.path().join("kept/state.db"), "apply").unwrap());
        assert!(dir.path().join("kept").is_dir());
        assert_eq!(
            std::fs::read_dir(dir.path().join("kept")).unwrap().count(),
            0
        );
    }

    /// Lockers racing on a store that is never made (each lock removes
    /// its file as it lets go) never hold the lock two at once: a file
    /// opened before its holder removed it is never taken for the lock.
    #[test]
    fn lockers_racing_on_a_lock_file_removed_never_hold_it_together() {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("sub/state.db");
        let inside = AtomicBool::new(false);
        let taken = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..2_000 {
                        let Ok(held) = lock(&store, "apply") else {
                            continue;
                        };
                        assert!(!inside.swap(true, Ordering::SeqCst), "two holders");
                        taken.fetch_add(1, Ordering::Relaxed);
                        std::thread::yield_now();
                        inside.store(false, Ordering::SeqCst);
                        drop(held);
                    }
                });
            }
        });
        assert!(taken.load(Ordering::Relaxed) > 0);
        // The last holder removed the file (the folder is removed by the
        // locker that made it, when it is empty then).
        assert!(!dir.path().join("sub/state.db.lock").exists());
    }

    /// The store named through a link to its file or its folder, or
    /// through `..`, takes the lock of the file the path resolves to: a
    /// second writer is refused however it names the store, made or not.
    #[test]
    fn a_store_named_through_a_link_takes_the_same_lock() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("data");
        std::fs::create_dir(&real).unwrap();
        let store = real.join("state.db");
        std::os::unix::fs::symlink(&store, dir.path().join("alias.db")).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("linked")).unwrap();
        std::os::unix::fs::symlink("alias.db", dir.path().join("chained.db")).unwrap();
        let names = [
            dir.path().join("alias.db"),
            dir.path().join("chained.db"),
            dir.path().join("linked/state.db"),
            dir.path().join("linked/../data/state.db"),
        ];
        // Not made yet (the links dangle), then made.
        for made in [false, true] {
            if made {
                std::fs::write(&store, b"").unwrap();
            }
            let held = lock(&store, "apply").unwrap();
            for name in &names {
                assert_eq!(lock_path(name), lock_path(&store), "{}", name.display());
                match lock(name, "apply") {
                    Err(LockError::Held(by)) => assert!(by.contains("`pmf apply`"), "{by}"),
                    other => panic!("{}: {:?}", name.display(), other.map(|_| ())),
                }
                assert!(holder(name).unwrap().is_some(), "{}", name.display());
            }
            drop(held);
            let through_link = lock(&names[0], "review").unwrap();
            assert!(matches!(lock(&store, "apply"), Err(LockError::Held(_))));
            drop(through_link);
        }
        assert_eq!(
            lock_path(&store),
            std::fs::canonicalize(&real).unwrap().join("state.db.lock")
        );
    }
}
