//! The entries of a large keyed file scanned in regions, one per core at a
//! time: the fast path of [`Scanner::entries`] for a regular file of valid
//! entries, one to a line, as machine-written files are.
//!
//! A region starts after a line end, where the file is taken to be between
//! two members of the object (a raw line end is never inside a JSON
//! string, but it may be inside a value written over several lines). Each
//! region scans members from there as the serial scan would, and stops at
//! the first member that starts in the next region. The guess is then
//! checked from the front: region 0 starts where the serial scan would;
//! each next region counts only if its first member starts exactly where
//! the region before it found its next member (from that byte on, both
//! scans read the same member the same way). A mismatch, or anything a
//! scan would report (a bad id, bad JSON, an entry the schema refuses, an
//! entry too long to pack), gives up the regions: the serial scan then
//! runs as before and reports what it finds, in order. The index built is
//! the one the serial scan builds (a test holds them equal).

use std::fs::File;
use std::io::Seek;

use super::{MemberChecker, PartnerEntries, Scanner, pack};
use pmf_compiler::model::types::Type;

/// Keyed files (from the object's start) smaller than this are scanned in
/// one pass.
pub(super) const PARALLEL_FROM: u64 = 8 << 20;

/// Regions per thread: a thread that finishes early takes another.
const REGIONS_PER_THREAD: usize = 2;

/// How far past a region's nominal start its first line end is looked
/// for (no line end there: the region joins the one before).
const LINE_SEARCH: usize = 64 << 10;

/// How one region's scan ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stop {
    /// At the first member starting at or after the region's end: here.
    Next(u64),
    /// At the object's closing `}`: just after it.
    Closed(u64),
}

/// What one region's scan found (its members' places went to the shared
/// index).
struct Region {
    /// Where its first member starts (`None`: the object closed first).
    first_at: Option<u64>,
    /// How many members it indexed.
    members: usize,
    stop: Stop,
}

/// Bytes a region's scanner reads at a time (a region is scanned while
/// others are: its buffer is kept small).
const REGION_BLOCK: usize = 128 << 10;

/// Places a region gathers before it adds them to the shared index.
const FLUSH: usize = 4096;

/// Bytes of the file a member is guessed to take, to size the index once.
const GUESSED_MEMBER: u64 = 32;

/// Index the members of the object whose `{` is at `open` into `entries`
/// (empty) region by region, on every core, when the file from `open` has
/// `from` bytes or more; where the object ends, or `None` when the regions
/// gave up (nothing is indexed then).
pub(super) fn scan(
    serial: &Scanner,
    entries: &mut PartnerEntries,
    schema: &Type,
    open: u64,
    from: u64,
) -> Option<u64> {
    let (len, _) = serial.identity?;
    let threads = rayon::current_num_threads();
    if serial.spool.is_some() || len.saturating_sub(open) < from || threads < 2 {
        return None;
    }
    let starts = region_starts(&serial.input, open, len, threads * REGIONS_PER_THREAD)?;
    // Every region adds its places to one index, in any order (sealing
    // sorts them): no second copy of them is ever held.
    let guess = ((len - open) / GUESSED_MEMBER) as usize;
    let index = std::sync::Mutex::new(Vec::with_capacity(guess));
    let regions: Vec<Option<Region>> = {
        use rayon::prelude::*;
        let (shared, index) = (&*entries, &index);
        (0..starts.len())
            .into_par_iter()
            .map(|k| {
                let start = *starts.get(k)?;
                let end = starts.get(k + 1).copied().unwrap_or(u64::MAX);
                scan_region(&serial.input, shared, index, schema, start, end)
            })
            .collect()
    };
    // Checked from the front: each region must start where the one before
    // it stopped, and only the regions up to the object's end count.
    let mut members = 0;
    let mut expected: Option<u64> = None;
    for region in regions {
        let region = region?;
        if let Some(at) = expected
            && region.first_at != Some(at)
        {
            return None;
        }
        members += region.members;
        match region.stop {
            Stop::Closed(after) => {
                let places = index.into_inner().ok()?;
                // Regions past the object's end (text after it) scanned
                // what is not its members: give up.
                if places.len() != members {
                    return None;
                }
                entries.len = members;
                entries.places = places;
                return Some(after);
            }
            Stop::Next(at) => expected = Some(at),
        }
    }
    None
}

/// Where each region starts: just after the object's `{`, then after the
/// first line end past each `parts`-th of the rest.
fn region_starts(file: &File, open: u64, len: u64, parts: usize) -> Option<Vec<u64>> {
    use std::os::unix::fs::FileExt;
    let first = open + 1;
    let mut starts = vec![first];
    let span = len - first;
    let mut window = vec![0u8; LINE_SEARCH];
    for k in 1..parts as u64 {
        let from = first + span * k / parts as u64;
        if from <= *starts.last()? {
            continue;
        }
        let n = file.read_at(&mut window, from).ok()?;
        let Some(newline) = window.get(..n)?.iter().position(|&b| b == b'\n') else {
            continue;
        };
        let start = from + newline as u64 + 1;
        if start < len && start > *starts.last()? {
            starts.push(start);
        }
    }
    Some(starts)
}

/// A scanner of the file `file` is open on, reading on its own from
/// `start` (the same file, not the same name: the file a name gives may
/// have been replaced meanwhile).
fn scanner_at(file: &File, start: u64) -> Option<Scanner> {
    let mut input = reopen(file)?;
    input.seek(std::io::SeekFrom::Start(start)).ok()?;
    let path = std::path::Path::new("");
    Some(Scanner::reading(
        path,
        input,
        None,
        None,
        start,
        REGION_BLOCK,
    ))
}

/// The same open file with a read position of its own.
#[cfg(target_os = "linux")]
fn reopen(file: &File) -> Option<File> {
    use std::os::fd::AsRawFd;
    File::open(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

/// Elsewhere, no regions: the serial scan.
#[cfg(not(target_os = "linux"))]
fn reopen(_: &File) -> Option<File> {
    None
}

/// Scan the members from `start` (just after the object's `{`, or a guess)
/// to the first member that starts at or after `end`; `None` at anything
/// the serial scan would report.
fn scan_region(
    file: &File,
    entries: &PartnerEntries,
    index: &std::sync::Mutex<Vec<(u64, u64)>>,
    schema: &Type,
    start: u64,
    end: u64,
) -> Option<Region> {
    let mut scan = scanner_at(file, start)?;
    let mut checker = MemberChecker::new(schema);
    let mut places = Vec::with_capacity(FLUSH);
    let mut members = 0;
    let mut flush = |places: &mut Vec<(u64, u64)>| -> Option<()> {
        members += places.len();
        index.lock().ok()?.extend(places.drain(..));
        Some(())
    };
    let mut first_at = None;
    let mut at = start;
    // The first member of a region is read as the object's first: the
    // comma before it is the region before's (the guess checked later).
    let mut leading = true;
    loop {
        let member = match scan.member(at, leading).ok()? {
            Ok(member) => member,
            Err(after) => {
                flush(&mut places)?;
                return Some(Region {
                    first_at,
                    members,
                    stop: Stop::Closed(after),
                });
            }
        };
        if leading {
            first_at = Some(member.at);
        }
        leading = false;
        if member.at >= end {
            flush(&mut places)?;
            return Some(Region {
                first_at,
                members,
                stop: Stop::Next(member.at),
            });
        }
        at = member.value.end;
        checker.check(&mut scan, &member).ok()?;
        let packed = pack(member.at, member.value.end - member.at)?;
        places.push((entries.hash(&member.key), packed));
        if places.len() == FLUSH {
            flush(&mut places)?;
        }
    }
}

/// Read on to `end` as the serial scan would have (the bytes hashed, the
/// lines counted as they are dropped), without looking at them.
pub(super) fn skip_to(serial: &mut Scanner, end: u64) -> Result<(), crate::input::InputError> {
    loop {
        let held = serial.base + serial.buf.len() as u64;
        serial.keep = held.min(end);
        if held > end || !serial.fill()? {
            break;
        }
    }
    serial.keep = end;
    Ok(())
}
