//! The apply lock: one row naming its holder (pid, host, start time),
//! taken atomically, released on every path by a guard, and detected as
//! stale when its holder is a dead process on this host.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};

/// Who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Process id.
    pub pid: i64,
    /// Host name.
    pub host: String,
    /// When it was taken.
    pub started_at: String,
}

impl Holder {
    /// True when the holder is a process of this host that no longer runs.
    pub fn is_dead(&self) -> bool {
        self.host == this_host() && !process_alive(self.pid)
    }
}

/// Why a lock could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockError {
    /// Another live process holds it.
    Held(Holder),
    /// A dead process left it.
    Stale(Holder),
    /// The store failed.
    Store(StoreError),
}

impl From<rusqlite::Error> for LockError {
    fn from(e: rusqlite::Error) -> Self {
        LockError::Store(e.into())
    }
}

/// This machine's host name.
pub fn this_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

fn process_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks whether the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A held lock; dropping it releases the lock (through a connection of its
/// own, so the store stays free for the work the lock protects).
pub struct LockGuard {
    path: std::path::PathBuf,
    name: String,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Ok(conn) = rusqlite::Connection::open(&self.path) {
            let _ = conn.busy_timeout(std::time::Duration::from_secs(5));
            let _ = conn.execute(
                "DELETE FROM locks WHERE name = ?1 AND pid = ?2",
                params![self.name, i64::from(std::process::id())],
            );
        }
    }
}

impl Store {
    /// The holder of lock `name`, if any.
    pub fn lock_holder(&self, name: &str) -> Result<Option<Holder>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT pid, host, started_at FROM locks WHERE name = ?1",
                [name],
                |r| {
                    Ok(Holder {
                        pid: r.get(0)?,
                        host: r.get(1)?,
                        started_at: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Take lock `name` or say who holds it.
    pub fn lock(&self, name: &str) -> Result<LockGuard, LockError> {
        let inserted = self.conn.execute(
            "INSERT INTO locks (name, pid, host, started_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
            params![name, i64::from(std::process::id()), this_host(), crate::runtime::plan::now_rfc3339()],
        )?;
        if inserted == 1 {
            return Ok(LockGuard {
                path: self.path().to_path_buf(),
                name: name.to_string(),
            });
        }
        match self.lock_holder(name).map_err(LockError::Store)? {
            Some(h) if h.is_dead() => Err(LockError::Stale(h)),
            Some(h) => Err(LockError::Held(h)),
            // Released in between: try once more.
            None => self.lock(name),
        }
    }

    /// Remove lock `name` whoever holds it; returns the holder removed.
    pub fn clear_lock(&self, name: &str) -> Result<Option<Holder>, StoreError> {
        let holder = self.lock_holder(name)?;
        self.conn
            .execute("DELETE FROM locks WHERE name = ?1", [name])?;
        Ok(holder)
    }
}
