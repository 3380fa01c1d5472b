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

/// What a [`DirectWriter`] shows every byte it writes to, in order, a whole
/// chunk at a time (a hasher given 8 MiB at once hashes it on every SIMD
/// lane, where an entry at a time hashes one block after another).
pub type SeenBy = fn(&[u8]);

/// A buffered writer of one file that writes whole chunks with `O_DIRECT`
/// where it can, and falls back to ordinary writes where it cannot. Call
/// [`DirectWriter::finish`] to write the rest: dropping it loses what is
/// still buffered. `S` sees every byte written, in order, just before it
/// is written.
pub struct DirectWriter<S: FnMut(&[u8]) = SeenBy> {
    file: File,
    seen_by: S,
    /// `CHUNK + ALIGN` bytes: the chunk is the aligned part from `start`.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    /// Whether the file is open with `O_DIRECT`.
    direct: bool,
    /// Bytes written to the file so far.
    written: u64,
    /// Bytes already handed to the disk by `sync_file_range`.
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
        let buf = vec![0u8; CHUNK + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN).min(ALIGN);
        let mut writer = DirectWriter {
            file,
            seen_by,
            buf,
            start,
            filled: 0,
            direct: false,
            written: 0,
            handed: 0,
        };
        let regular = writer.file.metadata().is_ok_and(|m| m.is_file());
        writer.direct = regular && writer.set_direct(true);
        writer
    }

    /// Whether whole chunks are written direct (the file system took
    /// `O_DIRECT`; it may still refuse a write, see the module).
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Write what is buffered and give the file back, for the caller to
    /// sync.
    pub fn finish(mut self) -> std::io::Result<File> {
        // The tail is not a whole number of blocks: it goes through the
        // page cache.
        if self.direct && !self.set_direct(false) {
            return Err(std::io::Error::other(
                "cannot turn direct writes off for the end of the file",
            ));
        }
        self.direct = false;
        self.write_buffered()?;
        Ok(self.file)
    }

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

    /// Write the buffer's filled part and empty it: direct while the file
    /// takes it, else through the page cache.
    fn write_buffered(&mut self) -> std::io::Result<()> {
        let filled = self.buf.get(self.start..self.start + self.filled);
        (self.seen_by)(filled.unwrap_or_default());
        let mut done = 0;
        while done < self.filled {
            let from = self.start + done;
            let to = self.start + self.filled;
            let part = self.buf.get(from..to).unwrap_or_default();
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
        self.filled = 0;
        if !self.direct {
            self.hand_to_disk();
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
            let room = CHUNK - self.filled;
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            let at = self.start + self.filled;
            if let Some(into) = self.buf.get_mut(at..at + now.len()) {
                into.copy_from_slice(now);
            }
            self.filled += now.len();
            bytes = later;
            if self.filled == CHUNK {
                self.write_buffered()?;
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
        w.start += 1;
        let bytes: Vec<u8> = (0..CHUNK * 2 + 10).map(|i| (i % 256) as u8).collect();
        w.write_all(&bytes).unwrap();
        assert!(!w.is_direct(), "the refused direct write turned it off");
        w.finish().unwrap().sync_all().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
