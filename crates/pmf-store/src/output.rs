//! Writing the files a command produces. A regular file (or a new one) is
//! written beside itself and renamed over: it is never half-written, and a
//! symbolic link to it stays a link. Anything else a user names as output —
//! `/dev/null`, `/dev/stdout`, a named pipe — is written in place: renaming
//! over it would replace it (run as root, `/dev/null` itself). A name pmf
//! gives a file of its own ([`write_own`]: the memory beside an operator
//! key) is not the user's choice: a link planted under it is replaced by
//! the file, never followed.
//!
//! The file beside is new, with a name of its own per run
//! (`.plan.json.<random>.partial`), created exclusively and never through a
//! symbolic link: a link planted under a name pmf would write (in a shared
//! directory) cannot make it overwrite another file, nor put a private key
//! into a file another user made; and two runs writing the same output
//! never write into one file (the last to finish is the output, whole).
//!
//! A run killed outright (SIGKILL, power loss) leaves its file beside: the
//! next output of the same name removes it, when it is a regular file of
//! the same user, untouched for a minute, whose run (named by the process
//! id in its name, `.plan.json.<pid>-<random>.partial`) is gone. A live
//! run's file is never removed; a link is never followed.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where a command's output goes, and how it gets there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// A regular file, or a new one: written to `tmp`, made durable, then
    /// renamed to `path`.
    Replace {
        /// The file in the end.
        path: PathBuf,
        /// Beside it, until the write is complete.
        tmp: PathBuf,
    },
    /// A device, a pipe or anything else that is not a regular file:
    /// written as it is.
    InPlace(PathBuf),
}

impl Output {
    /// How to write `path`.
    pub fn of(path: &Path) -> Output {
        // A link is followed to what it names, which is replaced: the link
        // stays a link.
        let path = match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
            }
            _ => path.to_path_buf(),
        };
        match std::fs::metadata(&path) {
            Ok(m) if !m.is_file() => Output::InPlace(path),
            _ => Output::replacing(path),
        }
    }

    /// How to write `path`, a name pmf gives a file of its own (the memory
    /// beside an operator key): replaced by a regular file whatever stands
    /// there, a link planted under it never followed.
    pub fn own(path: &Path) -> Output {
        Output::replacing(path.to_path_buf())
    }

    /// `path` written beside itself, then renamed over.
    fn replacing(path: PathBuf) -> Output {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut random = [0u8; 8];
        // No randomness (never seen): the process id alone still
        // makes the name exclusive, which is what keeps it safe.
        let _ = getrandom::fill(&mut random);
        let tag = format!("{}-{}", std::process::id(), hex::encode(random));
        let tmp = path.with_file_name(format!(".{name}.{tag}.partial"));
        remove_leftovers(&path, &name);
        Output::Replace { path, tmp }
    }

    /// The file to write into (`private`: readable by its owner only, for
    /// a new regular file): the temporary file, new (nothing at its name,
    /// not even a link), or the device or pipe as it is.
    pub fn create(&self, private: bool) -> std::io::Result<File> {
        let mut options = std::fs::OpenOptions::new();
        match self {
            Output::Replace { .. } => {
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.custom_flags(libc::O_NOFOLLOW);
                    if private {
                        options.mode(0o600);
                    }
                }
            }
            Output::InPlace(_) => {
                options.write(true).create(true).truncate(true);
            }
        }
        #[cfg(not(unix))]
        let _ = private;
        options.open(self.written())
    }

    /// The path written to while the output is being produced (the
    /// temporary file, or the output itself).
    pub fn written(&self) -> &Path {
        match self {
            Output::Replace { tmp, .. } => tmp,
            Output::InPlace(path) => path,
        }
    }

    /// Whether the output is a regular file, made durable before it is in
    /// place (a device or a pipe has nothing to make durable).
    pub fn durable(&self) -> bool {
        matches!(self, Output::Replace { .. })
    }

    /// Put a complete output in place (`file` was written through
    /// [`Output::create`]; a regular file is synced first).
    pub(crate) fn finish(&self, file: File) -> std::io::Result<()> {
        if self.durable() {
            file.sync_all()?;
        }
        drop(file);
        self.commit()
    }

    /// Put a complete output in place, its file already written, synced
    /// and closed.
    pub fn commit(&self) -> std::io::Result<()> {
        match self {
            Output::Replace { path, tmp } => std::fs::rename(tmp, path),
            Output::InPlace(_) => Ok(()),
        }
    }

    /// Remove what an unfinished output left (never the output itself).
    pub fn abandon(&self) {
        if let Output::Replace { tmp, .. } = self {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

/// How long a leftover must have been untouched before it is removed: a
/// run whose process id this namespace cannot see (another container on
/// a shared volume) may still be writing it.
const LEFTOVER_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// The process that wrote `file_name`, when it is the temporary file of an
/// output named `name` (`.NAME.<pid>-<16 hex digits>.partial`).
fn leftover_of(file_name: &str, name: &str) -> Option<u32> {
    let tag = file_name
        .strip_prefix('.')?
        .strip_prefix(name)?
        .strip_prefix('.')?
        .strip_suffix(".partial")?;
    let (pid, random) = tag.split_once('-')?;
    let hex_digits = random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (hex_digits && digits).then(|| pid.parse().ok()).flatten()
}

/// Whether no process has the id `pid` (as far as this process can tell).
fn gone(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        if pid <= 0 {
            return false;
        }
        // SAFETY: signal 0 sends nothing; it only asks whether the process
        // exists.
        let alive = unsafe { libc::kill(pid, 0) } == 0;
        !alive && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        false
    }
}

/// Remove the temporary files that killed runs left beside `path` (whose
/// file name is `name`): see the module's documentation. Best effort: a
/// file that cannot be listed or removed stays.
fn remove_leftovers(path: &Path, name: &str) {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|f| leftover_of(f, name)) else {
            continue;
        };
        if pid == std::process::id() || !gone(pid) {
            continue;
        }
        // Not followed: a link's metadata is the link's.
        let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
            continue;
        };
        #[cfg(unix)]
        let mine = {
            use std::os::unix::fs::MetadataExt;
            // SAFETY: geteuid has no preconditions.
            meta.uid() == unsafe { libc::geteuid() }
        };
        #[cfg(not(unix))]
        let mine = true;
        let untouched = meta
            .modified()
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age >= LEFTOVER_AGE);
        if meta.file_type().is_file() && mine && untouched {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes an unfinished output's temporary file when dropped before
/// [`Unfinished::done`]: on a panic that unwinds past the writer too,
/// nothing half-written stays behind.
pub struct Unfinished<'o> {
    output: &'o Output,
    done: bool,
}

impl<'o> Unfinished<'o> {
    /// Guard `output` while it is written.
    pub fn new(output: &'o Output) -> Self {
        Unfinished {
            output,
            done: false,
        }
    }

    /// The output was committed or abandoned: nothing left to remove.
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Drop for Unfinished<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.output.abandon();
        }
    }
}

/// Write `bytes` to `path` as the module says (`private`: readable by its
/// owner only).
pub fn write(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    write_to(Output::of(path), bytes, private)
}

/// Write `bytes` to `path`, a name pmf gives a file of its own
/// ([`Output::own`]: a link there is replaced, never followed).
pub fn write_own(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    write_to(Output::own(path), bytes, private)
}

/// Write `bytes` through `output`, whole or not at all.
fn write_to(output: Output, bytes: &[u8], private: bool) -> std::io::Result<()> {
    let result = output.create(private).and_then(|mut file| {
        file.write_all(bytes)?;
        output.finish(file)
    });
    if result.is_err() {
        output.abandon();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_writing_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let output = Output::of(&path);
        let panicked = std::panic::catch_unwind(|| {
            let mut file = output.create(false).unwrap();
            let _unfinished = Unfinished::new(&output);
            file.write_all(b"half").unwrap();
            assert!(output.written().exists());
            panic!("in the middle of writing");
        });
        assert!(panicked.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Marked done, the guard removes nothing.
        write(&path, b"whole", false).unwrap();
        let output = Output::of(&path);
        Unfinished::new(&output).done();
        assert_eq!(std::fs::read(&path).unwrap(), b"whole");
    }

    /// A link planted where the temporary file could be (the name a run
    /// used to take) is never written through: the file it points at is
    /// untouched, the output is a new regular file, and the link stays.
    /// Two outputs of one path never share a temporary file.
    #[test]
    fn a_planted_link_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let path = dir.path().join("plan.json");
        let planted = dir.path().join(".plan.json.partial");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        write(&path, b"the plan", true).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&path).unwrap(), b"the plan");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(
            std::fs::symlink_metadata(&planted)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        let (a, b) = (Output::of(&path), Output::of(&path));
        assert_ne!(a.written(), b.written());
        // A link at the very name chosen: refused, not followed.
        std::os::unix::fs::symlink(&victim, a.written()).unwrap();
        assert!(a.create(false).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    /// A name pmf gives a file of its own (the memory beside an operator
    /// key) is written as a regular file of that name: a link planted
    /// there is replaced, and the file it names is untouched (before, it
    /// was replaced with the memory), as is a link's target named as an
    /// output the user chose, which is written through.
    #[test]
    fn a_link_at_a_name_of_pmf_s_own_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim.txt");
        std::fs::write(&victim, b"precious").unwrap();
        let own = dir.path().join("operator.key.signed-1234.json");
        std::os::unix::fs::symlink(&victim, &own).unwrap();
        write_own(&own, b"remembered", true).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let meta = std::fs::symlink_metadata(&own).unwrap();
        assert!(meta.file_type().is_file());
        assert_eq!(std::fs::read(&own).unwrap(), b"remembered");
        // The user's own output named through a link: written through.
        let chosen = dir.path().join("chosen.json");
        std::os::unix::fs::symlink(&victim, &chosen).unwrap();
        write(&chosen, b"the plan", false).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"the plan");
        assert!(
            std::fs::symlink_metadata(&chosen)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    /// A killed run's file is removed by the next output of its name; a
    /// live run's, a fresh one, another output's, another name's and a
    /// link are not.
    #[test]
    fn leftovers_of_killed_runs_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        // A process that has exited: its id is free (until reused, when
        // its file is merely kept).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let old = std::time::SystemTime::now() - LEFTOVER_AGE * 2;
        let make = |name: &str, age: std::time::SystemTime| {
            let p = dir.path().join(name);
            let f = File::create(&p).unwrap();
            f.set_modified(age).unwrap();
            p
        };
        let killed = make(&format!(".plan.json.{dead}-0123456789abcdef.partial"), old);
        let fresh = make(
            &format!(".plan.json.{dead}-fedcba9876543210.partial"),
            std::time::SystemTime::now(),
        );
        let live = make(
            &format!(".plan.json.{}-0123456789abcdef.partial", std::process::id()),
            old,
        );
        let other = make(
            &format!(".plan.json.bak.{dead}-0123456789abcdef.partial"),
            old,
        );
        let odd = make(&format!(".plan.json.{dead}-0123.partial"), old);
        let victim = make("victim.txt", old);
        let link = dir
            .path()
            .join(format!(".plan.json.{dead}-aaaaaaaaaaaaaaaa.partial"));
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write(&path, b"the plan", false).unwrap();
        assert!(!killed.exists(), "the killed run's file stays");
        for kept in [&fresh, &live, &other, &odd, &victim] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        assert!(
            std::fs::symlink_metadata(&link).is_ok(),
            "the link was removed"
        );
        assert_eq!(
            leftover_of(".plan.json.12-0123456789abcdef.partial", "plan.json"),
            Some(12)
        );
        assert_eq!(
            leftover_of(".plan.json.x-0123456789abcdef.partial", "plan.json"),
            None
        );
        assert_eq!(
            leftover_of("plan.json.12-0123456789abcdef.partial", "plan.json"),
            None
        );
    }

    #[test]
    fn regular_files_are_replaced_and_links_stay_links() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plan.json");
        write(&file, b"one", false).unwrap();
        write(&file, b"two", false).unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        write(&link, b"three", false).unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read(&file).unwrap(), b"three");
        // Nothing is left beside them.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn devices_and_pipes_are_written_in_place_never_replaced() {
        // Only looked at: a mistake here must not cost the machine its
        // `/dev/null` (a named pipe below is written for real).
        let null = Path::new("/dev/null");
        assert_eq!(Output::of(null), Output::InPlace(null.to_path_buf()));
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out.fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write(&fifo, b"through the pipe", false).unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        use std::os::unix::fs::FileTypeExt;
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }
}
