//! Writing a large output straight to the disk.
//!
//! A plan of a million partners is about 600 MB. It is synced before it is
//! renamed into place ([`crate::output`]), so the page cache gains nothing
//! from holding it. Copying it there costs a core the whole time the plan is
//! written (a cold page cache under a virtual machine costs most: 1.0–1.5 s
//! of system time for 600 MB here, against 0.1 s written direct).
//!
//! [`DirectWriter`] fills an aligned buffer and writes it with `O_DIRECT`,
//! so the disk reads it from the process's own memory. Where the file
//! system refuses direct I/O (tmpfs, some network file systems, another
//! OS), or for the unaligned tail, it writes through the page cache and
//! hands the disk what it wrote every 16 MiB (`sync_file_range`), so the
//! final sync does not find the whole file dirty. The bytes written are
//! the same either way.

use std::fs::File;
use std::io::Write;

/// Direct writes must start at an offset, and come from an address, that
/// is a multiple of this (a page: above every common logical block size).
const ALIGN: usize = 4096;

/// Bytes gathered before each write (a multiple of [`ALIGN`]).
const CHUNK: usize = 8 << 20;

/// Writes through the page cache are handed to the disk every this many
/// bytes.
const WRITEBACK_STEP: u64 = 16 << 20;

/// Direct writes are made durable every this many bytes (`fdatasync`), on
/// the thread that writes them, while the caller goes on: a disk with a
/// write cache (a virtual machine's) otherwise keeps them all for the
/// caller's final sync, which waited 0.9 s here for a 600 MB plan.
const SYNC_STEP: u64 = 64 << 20;

/// What a [`DirectWriter`] shows every byte it writes to, in order, a whole
/// chunk at a time (a hasher given 8 MiB at once hashes it on every SIMD
/// lane, where an entry at a time hashes one block after another).
pub type SeenBy = fn(&[u8]);

/// A buffered writer of one file that writes whole chunks with `O_DIRECT`
/// where it can, and falls back to ordinary writes where it cannot. Call
/// [`DirectWriter::finish`] to write the rest: dropping it loses what is
/// still buffered. `S` sees every byte written, in order, just before it
/// is written.
///
/// From the second chunk on, whole chunks are written by a thread of their
/// own while the next one fills (two chunks in all). A direct write waits
/// for the disk, and the caller used to wait with it: a 1M-partner plan's
/// cores stood idle about a second here, for 600 MB at 370 MB/s.
pub struct DirectWriter<S: FnMut(&[u8]) = SeenBy> {
    seen_by: S,
    /// The chunk being filled.
    chunk: Chunk,
    /// Where whole chunks go.
    disk: Writing,
}

/// A buffer of `CHUNK + ALIGN` bytes: its chunk is the aligned part from
/// `start`, `filled` bytes of it so far.
struct Chunk {
    buf: Vec<u8>,
    start: usize,
    filled: usize,
}

impl Chunk {
    fn new() -> Chunk {
        let buf = vec![0u8; CHUNK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        Chunk {
            buf,
            start,
            filled: 0,
        }
    }

    /// The bytes filled.
    fn bytes(&self) -> &[u8] {
        self.buf
            .get(self.start..self.start + self.filled)
            .unwrap_or_default()
    }
}

/// Where a writer's whole chunks are written.
enum Writing {
    /// On the caller's thread, until the first whole chunk.
    Here(Disk),
    /// On the caller's thread for good: no thread could be started.
    Alone(Disk),
    /// On a thread of their own.
    Thread(DiskThread),
    /// Nowhere: a write failed, and its error was returned.
    Failed,
}

/// The thread that writes whole chunks in the order they are sent and
/// hands each back once written. It ends at the first failure, which its
/// join returns.
struct DiskThread {
    to_disk: std::sync::mpsc::SyncSender<Chunk>,
    written: std::sync::mpsc::Receiver<Chunk>,
    thread: std::thread::JoinHandle<std::io::Result<Disk>>,
}

impl DiskThread {
    /// Wait for the chunks sent to be written: the file, or why the thread
    /// stopped.
    fn join(self) -> std::io::Result<Disk> {
        drop(self.to_disk);
        self.thread.join().unwrap_or_else(|_| Err(stopped()))
    }

    /// Why the thread took no more chunks.
    fn failure(self) -> std::io::Error {
        self.join().err().unwrap_or_else(stopped)
    }
}

/// The error of a writer whose earlier write failed (and said why).
fn failed_before() -> std::io::Error {
    std::io::Error::other("an earlier write failed")
}

/// The error of a disk thread that ended without one.
fn stopped() -> std::io::Error {
    std::io::Error::other("the thread writing the file stopped")
}

/// The file and how it is written.
struct Disk {
    file: File,
    /// Whether the file is open with `O_DIRECT`.
    direct: bool,
    /// Bytes written to the file so far.
    written: u64,
    /// Bytes already handed to the disk by `sync_file_range`, or made
    /// durable by `fdatasync` when written direct.
    handed: u64,
}

impl DirectWriter {
    /// Write `file` (opened for writing, empty), direct if it is a regular
    /// file and its file system lets it. (A pipe is never made direct: on
    /// a pipe, `O_DIRECT` means packets, which a reader could cut short.)
    pub fn new(file: File) -> DirectWriter {
        DirectWriter::seen_by(file, |_| {})
    }
}

impl<S: FnMut(&[u8])> DirectWriter<S> {
    /// As [`DirectWriter::new`], showing every byte to `seen_by` (in whole
    /// chunks, the tail last) before it is written.
    pub fn seen_by(file: File, seen_by: S) -> DirectWriter<S> {
        let mut disk = Disk {
            file,
            direct: false,
            written: 0,
            handed: 0,
        };
        let regular = disk.file.metadata().is_ok_and(|m| m.is_file());
        disk.direct = regular && disk.set_direct(true);
        DirectWriter {
            seen_by,
            chunk: Chunk::new(),
            disk: Writing::Here(disk),
        }
    }

    /// Write what is buffered and give the file back, for the caller to
    /// sync.
    pub fn finish(self) -> std::io::Result<File> {
        self.close().map(|disk| disk.file)
    }

    /// Write every chunk, then the tail through the page cache (it is not
    /// a whole number of blocks).
    fn close(mut self) -> std::io::Result<Disk> {
        let mut disk = match std::mem::replace(&mut self.disk, Writing::Failed) {
            Writing::Here(disk) | Writing::Alone(disk) => disk,
            Writing::Thread(thread) => thread.join()?,
            Writing::Failed => return Err(failed_before()),
        };
        if disk.direct && !disk.set_direct(false) {
            return Err(std::io::Error::other(
                "cannot turn direct writes off for the end of the file",
            ));
        }
        disk.direct = false;
        (self.seen_by)(self.chunk.bytes());
        disk.write_chunk(self.chunk.bytes())?;
        Ok(disk)
    }

    /// Show the whole chunk, have it written, and go on with an empty one.
    /// After a failure, every write fails.
    fn write_whole_chunk(&mut self) -> std::io::Result<()> {
        (self.seen_by)(self.chunk.bytes());
        self.disk = match std::mem::replace(&mut self.disk, Writing::Failed) {
            Writing::Here(disk) => self.start_thread(disk)?,
            Writing::Alone(disk) => self.write_here(disk)?,
            Writing::Thread(thread) => {
                // The other chunk, once written, is the one to fill.
                let Ok(empty) = thread.written.recv() else {
                    return Err(thread.failure());
                };
                let full = std::mem::replace(&mut self.chunk, empty);
                if thread.to_disk.send(full).is_err() {
                    return Err(thread.failure());
                }
                Writing::Thread(thread)
            }
            Writing::Failed => return Err(failed_before()),
        };
        Ok(())
    }

    /// Start the thread that writes `disk`, hand it the whole chunk and
    /// make the second one. Where no thread can be started, the chunk is
    /// written here, as every later one will be.
    fn start_thread(&mut self, disk: Disk) -> std::io::Result<Writing> {
        let (to_disk, chunks) = std::sync::mpsc::sync_channel::<Chunk>(1);
        let (give_back, written) = std::sync::mpsc::sync_channel::<Chunk>(1);
        let (give_disk, disk_given) = std::sync::mpsc::sync_channel::<Disk>(1);
        let spawned = std::thread::Builder::new()
            .name("pmf-disk".into())
            .spawn(move || {
                let mut disk = disk_given.recv().map_err(|_| stopped())?;
                for mut chunk in chunks {
                    disk.write_chunk(chunk.bytes())?;
                    chunk.filled = 0;
                    // The writer is gone once it failed or finished; it
                    // sends nothing more.
                    let _ = give_back.send(chunk);
                }
                Ok(disk)
            });
        let Ok(thread) = spawned else {
            return self.write_here(disk);
        };
        let thread = DiskThread {
            to_disk,
            written,
            thread,
        };
        let full = std::mem::replace(&mut self.chunk, Chunk::new());
        if give_disk.send(disk).is_err() || thread.to_disk.send(full).is_err() {
            return Err(thread.failure());
        }
        Ok(Writing::Thread(thread))
    }

    /// Write the whole chunk on this thread, as every later one, and go on
    /// filling it.
    fn write_here(&mut self, mut disk: Disk) -> std::io::Result<Writing> {
        disk.write_chunk(self.chunk.bytes())?;
        self.chunk.filled = 0;
        Ok(Writing::Alone(disk))
    }
}

impl Disk {
    /// Turn `O_DIRECT` on or off; whether that took.
    #[cfg(target_os = "linux")]
    fn set_direct(&self, on: bool) -> bool {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this writer owns, reading and
        // setting its status flags only.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 {
                return false;
            }
            let flags = if on {
                flags | libc::O_DIRECT
            } else {
                flags & !libc::O_DIRECT
            };
            libc::fcntl(fd, libc::F_SETFL, flags) == 0
        }
    }

    /// Direct writes are Linux's here; elsewhere every write is buffered.
    #[cfg(not(target_os = "linux"))]
    fn set_direct(&self, on: bool) -> bool {
        !on
    }

    /// Write `bytes` (a whole chunk, or the tail once direct writes are
    /// off): direct while the file takes it, else through the page cache.
    fn write_chunk(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut done = 0;
        while let Some(part) = bytes.get(done..).filter(|rest| !rest.is_empty()) {
            match self.file.write(part) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The file system refused a direct write (or a short one
                // left the rest unaligned): the rest goes through the
                // page cache.
                Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                    if !self.set_direct(false) {
                        return Err(e);
                    }
                    self.direct = false;
                }
                Err(e) => return Err(e),
            }
        }
        if self.direct {
            self.make_durable()
        } else {
            self.hand_to_disk();
            Ok(())
        }
    }

    /// Every [`SYNC_STEP`] bytes written direct, make them durable: the
    /// caller's final sync then finds little left to do.
    fn make_durable(&mut self) -> std::io::Result<()> {
        if self.written >= self.handed + SYNC_STEP {
            self.file.sync_data()?;
            self.handed = self.written;
        }
        Ok(())
    }

    /// Start writeback of what went through the page cache since the last
    /// step (a hint: failing, it changes nothing).
    fn hand_to_disk(&mut self) {
        if self.written < self.handed + WRITEBACK_STEP {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            // SAFETY: a valid open descriptor and a range inside the file;
            // the call only schedules writeback of pages already written.
            unsafe {
                libc::sync_file_range(
                    self.file.as_raw_fd(),
                    self.handed as libc::off64_t,
                    (self.written - self.handed) as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
            }
        }
        self.handed = self.written;
    }
}

impl<S: FnMut(&[u8])> Write for DirectWriter<S> {
    fn write(&mut self, mut bytes: &[u8]) -> std::io::Result<usize> {
        let total = bytes.len();
        while !bytes.is_empty() {
            let chunk = &mut self.chunk;
            let room = CHUNK - chunk.filled;
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            let at = chunk.start + chunk.filled;
            if let Some(into) = chunk.buf.get_mut(at..at + now.len()) {
                into.copy_from_slice(now);
            }
            chunk.filled += now.len();
            bytes = later;
            if chunk.filled == CHUNK {
                self.write_whole_chunk()?;
            }
        }
        Ok(total)
    }

    /// Nothing is written before a chunk is full or the writer finishes:
    /// a partial chunk cannot be written direct.
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes of every length around the chunk's edges come back whole,
    /// direct or not.
    #[test]
    fn what_is_written_is_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0,
            1,
            ALIGN - 1,
            ALIGN + 7,
            CHUNK - 1,
            CHUNK,
            CHUNK + 1,
            3 * CHUNK + 4099,
        ] {
            let path = dir.path().join(format!("out-{len}"));
            let bytes: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut seen = Vec::new();
            let mut showings = 0;
            let mut w = DirectWriter::seen_by(File::create(&path).unwrap(), |b: &[u8]| {
                seen.extend_from_slice(b);
                showings += 1;
            });
            // Written in pieces of odd sizes, as a plan's lines are.
            for piece in bytes.chunks(4093) {
                w.write_all(piece).unwrap();
            }
            let file = w.finish().unwrap();
            file.sync_all().unwrap();
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "length {len}");
            // What is written is shown once, in order, a chunk at a time.
            assert_eq!(seen, bytes, "length {len}");
            assert_eq!(showings, len / CHUNK + 1, "length {len}");
        }
    }

    /// A file system that refuses direct writes gets ordinary ones: a
    /// writer that cannot write direct writes the same bytes.
    #[test]
    fn a_refused_direct_write_falls_back_to_the_page_cache() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let mut w = DirectWriter::new(File::create(&path).unwrap());
        // An unaligned start makes the first direct write fail with
        // EINVAL, as a file system without direct I/O would.
        w.chunk.start += 1;
        let bytes: Vec<u8> = (0..CHUNK * 2 + 10).map(|i| (i % 256) as u8).collect();
        w.write_all(&bytes).unwrap();
        let disk = w.close().unwrap();
        assert!(!disk.direct, "the refused direct write turned it off");
        disk.file.sync_all().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }

    /// A write the disk fails is reported, from the write that finds it
    /// or from `finish`, never lost on the thread that wrote; and nothing
    /// is written after it.
    #[test]
    fn a_failed_write_is_reported_and_the_writer_stays_failed() {
        let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut w = DirectWriter::new(full);
        let bytes = vec![7u8; CHUNK * 3 + 5];
        let error = match w.write_all(&bytes) {
            Err(e) => {
                assert!(
                    w.write_all(b"more").is_err(),
                    "a failed writer takes no more"
                );
                assert!(w.finish().is_err(), "nor finishes");
                e
            }
            Ok(()) => w.finish().expect_err("the full device fails the writes"),
        };
        assert_eq!(error.kind(), std::io::ErrorKind::StorageFull, "{error}");
    }
}
