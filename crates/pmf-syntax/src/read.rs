//! Reading an input file whole, never past a bound: a file named by
//! mistake (a device such as `/dev/zero`, a disk image, a log) is refused
//! with a reason instead of read until memory runs out. A leaf module: the
//! crates above read their small inputs (policies, keys, approvals) here.

use std::io::Read;
use std::path::Path;

/// The most bytes a policy file, a `pmf.toml` or a test file may hold
/// (a policy of 100,000 lines is about 5 MiB).
pub const POLICY_FILE_LIMIT: u64 = 64 << 20;

/// The most bytes a key, approvals or checkpoint file may hold.
pub const SMALL_FILE_LIMIT: u64 = 16 << 20;

/// The bytes of the file at `path`, when it holds at most `limit`; else an
/// error of kind [`std::io::ErrorKind::FileTooLarge`] saying so. A device
/// (which may never end) is refused before it is read.
pub fn whole(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    refuse_device(path)?;
    let file = std::fs::File::open(path)?;
    // Room for what the file holds now (a read through `take` has no size
    // hint: growing by doubling copied a 5 MB policy a dozen times).
    let size = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("it holds more than {} MiB", limit >> 20),
        ));
    }
    Ok(bytes)
}

/// An error when `path` names a character or block device: it is not a
/// file pmf reads (`/dev/zero` never ends). Other kinds (a regular file, a
/// pipe, what cannot be looked at) pass: opening them says the rest.
pub fn refuse_device(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(meta) = std::fs::metadata(path) {
            let kind = meta.file_type();
            if kind.is_char_device() || kind.is_block_device() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "it is a device, not a file",
                ));
            }
        }
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_read_up_to_the_bound_and_devices_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, vec![b'x'; 2 << 20]).unwrap();
        assert_eq!(whole(&path, 2 << 20).unwrap().len(), 2 << 20);
        let e = whole(&path, 1 << 20).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::FileTooLarge);
        assert_eq!(e.to_string(), "it holds more than 1 MiB");
        let e = whole(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(e.to_string(), "it is a device, not a file");
        assert_eq!(
            whole(&dir.path().join("missing"), 1).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
