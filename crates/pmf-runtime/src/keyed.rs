//! Files keyed by partner id — observed metrics `{"ID": {…}, …}` and the
//! `partners` part of a target file — scanned once in blocks and indexed
//! on disk. The index keeps where each entry is, never its text: memory
//! grows by 16 bytes a partner, not with the file, and an entry is read
//! back and parsed when its partner is planned.
//!
//! The scan checks every entry (its id, its JSON, the schema) and reports
//! every bad one, up to [`MAX_REPORTED`](super::input::MAX_REPORTED); a
//! file that passed the scan reads back the same, unless it changed on disk
//! in the meantime, which [`PartnerEntries::unchanged`] tells. A pipe is
//! spooled to an unnamed temporary file (gone with the process).

use std::borrow::Cow;
use std::fs::File;
use std::hash::BuildHasher;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::fast::ParseCache;
use super::input::{Gathered, InputError, io};
use super::stream::{BOM, MAX_RECORD, value_end};
use super::value::{Completeness, Value, check_unique_keys, from_json, id_problem};
use pmf_compiler::model::types::Type;

mod regions;

/// How many bytes the scan reads at a time.
const BLOCK: usize = 1 << 20;

/// Entry texts found good kept per scan: a fleet gives its partners few
/// distinct targets, each checked once.
const GOOD_KEPT: usize = 1024;

/// How far ahead an entry may start, after the one read before it, for the
/// reader to take it as reading forward (and read a window, not one entry).
const GAP: u64 = 4 << 10;

/// How many bytes a forward read takes at once.
const WINDOW: usize = 64 << 10;

/// Bits of a packed place that hold the entry's length: any entry within
/// the record limit fits.
const LEN_BITS: u32 = 25;

/// Where an entry is: its first byte (the `"` of its id) and its length up
/// to the end of its value, packed as 39 + 25 bits when they fit (files up
/// to 512 GiB).
fn pack(offset: u64, len: u64) -> Option<u64> {
    (offset < 1 << (64 - LEN_BITS) && len < 1 << LEN_BITS).then_some(offset << LEN_BITS | len)
}

fn unpack(packed: u64) -> (u64, u64) {
    (packed >> LEN_BITS, packed & ((1 << LEN_BITS) - 1))
}

/// The entries of a JSON object keyed by partner id, indexed on disk.
pub struct PartnerEntries {
    /// The file as given, for messages.
    name: String,
    /// The bytes the offsets point into (the file, or a pipe's spool).
    file: Option<File>,
    /// Length and modification time of a regular file when it was scanned.
    identity: Option<(u64, Option<std::time::SystemTime>)>,
    hasher: std::hash::RandomState,
    /// (keyed hash of the id, packed place), one per id, sorted once the
    /// scan ends: 16 bytes an entry, no load factor.
    places: Vec<(u64, u64)>,
    /// Where in `places` each bucket of hashes starts (a bucket: the
    /// hashes whose top `bucket_bits` bits are its number), and where the
    /// last ends: as the hashes are uniform, about two entries a bucket,
    /// so a lookup reads one slot here and one cache line of `places`
    /// (an interpolation search read three or four far apart, each a
    /// cache miss once lookups are scattered). 1 to 2 bytes an entry.
    directory: Vec<u32>,
    /// The bits of a hash that number its bucket.
    bucket_bits: u32,
    /// Ids whose hash another id has too, and entries too far or too long
    /// to pack: (offset, length).
    others: rustc_hash::FxHashMap<Box<str>, (u64, u64)>,
    len: usize,
    /// Lookups the file's order did not answer (entries asked for out of
    /// the file's order: a positioned read each).
    scattered: std::sync::atomic::AtomicUsize,
    /// The whole file, read once lookups proved scattered and the file
    /// fits [`WHOLE_BUDGET`] (`None`: it does not, or could not be read).
    whole: std::sync::OnceLock<Option<Vec<u8>>>,
    /// Tests: every id hashes alike (every lookup goes through `others`).
    #[cfg(test)]
    collide: bool,
}

/// Lookups out of the file's order after which a keyed file is read whole.
const SCATTERED_AFTER: usize = 4096;

/// Bytes of keyed files held whole at most, in all (a target file of a
/// million partners is 35 MB).
const WHOLE_BUDGET: u64 = 48 << 20;

/// Bytes of keyed files held whole so far.
static HELD_WHOLE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Drop for PartnerEntries {
    fn drop(&mut self) {
        if let Some(Some(whole)) = self.whole.get() {
            HELD_WHOLE.fetch_sub(whole.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl std::fmt::Debug for PartnerEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartnerEntries")
            .field("name", &self.name)
            .field("len", &self.len)
            .finish()
    }
}

/// A reader of entries, one per thread: it reads a window ahead when
/// entries are asked for in file order, and single entries otherwise.
#[derive(Default)]
pub struct EntryReader {
    /// Never shrinks (its bytes are not zeroed again for every read).
    buf: Vec<u8>,
    /// How many bytes of `buf` hold the file's.
    held: usize,
    /// The file offset of `buf[0]`.
    start: u64,
    /// Where the entry read last ends.
    next: u64,
}

impl EntryReader {
    /// Where the entry that follows the one read last is, when the bytes
    /// held show it whole and it is `id`'s: entries asked for in the
    /// file's order (a target file in the partners' order) are found
    /// without the index. The place is the one the index holds (the scan
    /// measured entries the same way, and ids are unique).
    fn following(&self, id: &str) -> Option<(u64, u64)> {
        let from = usize::try_from(self.next.checked_sub(self.start)?).ok()?;
        let held = self.buf.get(..self.held)?;
        let skip_ws = |mut i: usize| {
            while held.get(i).is_some_and(u8::is_ascii_whitespace) {
                i += 1;
            }
            i
        };
        let comma = skip_ws(from);
        if held.get(comma) != Some(&b',') {
            return None;
        }
        let key = skip_ws(comma + 1);
        if held.get(key) != Some(&b'"') {
            return None;
        }
        let key_end = value_end(held, key)?;
        if decode_key(held.get(key..key_end)?)? != id {
            return None;
        }
        let colon = skip_ws(key_end);
        if held.get(colon) != Some(&b':') {
            return None;
        }
        let value = skip_ws(colon + 1);
        let end = value_end(held, value)?;
        // A value cut off where the bytes held end is not known whole.
        if end >= held.len() {
            return None;
        }
        Some((self.start + key as u64, (end - key) as u64))
    }

    fn read<'b>(&'b mut self, file: &File, offset: u64, len: u64) -> std::io::Result<&'b [u8]> {
        let end = offset + len;
        let held = self.start..self.start + self.held as u64;
        let forward = offset >= self.next && offset - self.next <= GAP;
        self.next = end;
        if offset < held.start || end > held.end {
            let want = if forward {
                (len as usize).max(WINDOW)
            } else {
                len as usize
            };
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            let mut got = 0;
            // `buf` holds at least `want` bytes.
            while let Some(dst) = self.buf.get_mut(got..want)
                && !dst.is_empty()
            {
                match file.read_at(dst, offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            self.held = got;
            self.start = offset;
            if (got as u64) < len {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file is shorter than when it was read",
                ));
            }
        }
        let from = (offset - self.start) as usize;
        self.buf.get(from..from + len as usize).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the entry is not in the bytes read",
            )
        })
    }
}

impl PartnerEntries {
    /// No entries.
    pub fn empty() -> Self {
        PartnerEntries {
            name: String::new(),
            file: None,
            identity: None,
            hasher: std::hash::RandomState::new(),
            places: Vec::new(),
            directory: vec![0, 0],
            bucket_bits: 0,
            others: Default::default(),
            len: 0,
            scattered: Default::default(),
            whole: std::sync::OnceLock::new(),
            #[cfg(test)]
            collide: false,
        }
    }

    /// The whole file, when lookups have proved scattered (`scattered`:
    /// this one is) and it fits what is left of [`WHOLE_BUDGET`]: read once,
    /// for every thread, instead of a positioned read per lookup.
    fn whole(&self, scattered: bool) -> Option<&[u8]> {
        use std::sync::atomic::Ordering::Relaxed;
        if let Some(whole) = self.whole.get() {
            return whole.as_deref();
        }
        if !scattered || self.scattered.fetch_add(1, Relaxed) < SCATTERED_AFTER {
            return None;
        }
        self.whole
            .get_or_init(|| {
                let file = self.file.as_ref()?;
                let len = file.metadata().ok()?.len();
                let held = HELD_WHOLE.fetch_add(len, Relaxed);
                if held + len > WHOLE_BUDGET {
                    HELD_WHOLE.fetch_sub(len, Relaxed);
                    return None;
                }
                let mut bytes = vec![0u8; usize::try_from(len).ok()?];
                // A file that cannot be read whole is read entry by entry
                // (which reports why).
                file.read_exact_at(&mut bytes, 0).ok()?;
                Some(bytes)
            })
            .as_deref()
    }

    fn hash(&self, id: &str) -> u64 {
        #[cfg(test)]
        if self.collide {
            return 7;
        }
        self.hasher.hash_one(id)
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entry of partner `id`, read back and parsed as a partial record
    /// with `cache` (of [`Completeness::Partial`]).
    pub fn get(
        &self,
        schema: &Type,
        id: &str,
        reader: &mut EntryReader,
        cache: &mut ParseCache,
    ) -> Result<Option<Value>, InputError> {
        self.get_with(id, reader, |value| parse_entry(schema, value, cache))
    }

    /// The entry of partner `id`: `read` is given its value's text as the
    /// file has it, and says what it holds, or why it is not a partial
    /// record (the scan found it good: the file changed since).
    pub fn get_with<T>(
        &self,
        id: &str,
        reader: &mut EntryReader,
        read: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, InputError> {
        let Some(file) = &self.file else {
            return Ok(None);
        };
        // The entry after the one read last, when it is `id`'s (a file in
        // the partners' order); else where the index says, looked up only
        // then.
        let indexed = || self.find(self.hash(id)).map(unpack);
        let other = || self.others.get(id).copied();
        let following = reader.following(id);
        let whole = self.whole(following.is_none());
        let places = (following.into_iter())
            .chain(std::iter::once_with(indexed).flatten())
            .chain(std::iter::once_with(other).flatten());
        for (offset, len) in places {
            let bytes = match whole {
                Some(whole) => usize::try_from(offset)
                    .ok()
                    .zip(usize::try_from(offset + len).ok())
                    .and_then(|(from, to)| whole.get(from..to))
                    .ok_or_else(|| self.changed("an entry is not where it was"))?,
                None => reader
                    .read(file, offset, len)
                    .map_err(|e| self.changed(&e.to_string()))?,
            };
            let Some((key, value)) = split_entry(bytes) else {
                return Err(self.changed("an entry is not where it was"));
            };
            if key == id {
                return read(value).map(Some).map_err(|p| self.changed(&p));
            }
        }
        Ok(None)
    }

    /// Every entry as (id, partial record), in file order: for
    /// tests and small files (it holds them all).
    pub fn all(&self, schema: &Type) -> Result<Vec<(String, Value)>, InputError> {
        let mut cache = ParseCache::new(schema, Completeness::Partial);
        let mut out = Vec::with_capacity(self.len);
        self.each_entry(|key, value| {
            let value =
                parse_partial(schema, value, &mut cache).map_err(|r| self.changed(&r.problem))?;
            out.push((key.into_owned(), value));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Call `f` with each entry's id and value text, in file order, while
    /// it returns true.
    fn each_entry(
        &self,
        mut f: impl FnMut(Cow<'_, str>, &str) -> Result<bool, InputError>,
    ) -> Result<(), InputError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let mut places = (self.places.iter().map(|e| unpack(e.1)))
            .chain(self.others.values().copied())
            .collect::<Vec<_>>();
        places.sort_unstable();
        let mut reader = EntryReader::default();
        for (offset, len) in places {
            let bytes = reader
                .read(file, offset, len)
                .map_err(|e| self.changed(&e.to_string()))?;
            let (key, value) =
                split_entry(bytes).ok_or_else(|| self.changed("an entry is not where it was"))?;
            if !f(key, value)? {
                break;
            }
        }
        Ok(())
    }

    /// The file as given, for messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Up to `max` ids of entries, in file order, that `known` does not
    /// hold (reads every entry's id back: for the rare file that names
    /// partners that were not planned).
    pub fn ids_not_in(
        &self,
        known: impl Fn(&str) -> bool,
        max: usize,
    ) -> Result<Vec<String>, InputError> {
        let mut out = Vec::new();
        if max == 0 {
            return Ok(out);
        }
        self.each_entry(|key, _| {
            if !known(&key) {
                out.push(key.into_owned());
            }
            Ok(out.len() < max)
        })?;
        Ok(out)
    }

    /// An error unless the file is as it was when it was scanned (same
    /// length and modification time): what was planned is what the plan
    /// binds.
    pub fn unchanged(&self) -> Result<(), InputError> {
        let (Some(file), Some(identity)) = (&self.file, self.identity) else {
            return Ok(());
        };
        let now = file
            .metadata()
            .map(|m| (m.len(), m.modified().ok()))
            .map_err(|e| self.changed(&e.to_string()))?;
        if now == identity {
            Ok(())
        } else {
            Err(self.changed("its size or modification time is not what it was"))
        }
    }

    fn changed(&self, why: &str) -> InputError {
        InputError::Invalid {
            file: self.name.clone(),
            at: "the whole file".into(),
            partner: None,
            problem: format!("the file changed while it was being planned ({why}); plan again"),
        }
    }

    /// The packed place of the entry whose id hashes to `hash`, if one
    /// does (the caller compares ids): its bucket's range in the
    /// directory, bisected.
    fn find(&self, hash: u64) -> Option<u64> {
        let bucket = bucket_of(hash, self.bucket_bits);
        let from = *self.directory.get(bucket)? as usize;
        let to = *self.directory.get(bucket + 1)? as usize;
        let run = self.places.get(from..to)?;
        let at = run.binary_search_by_key(&hash, |e| e.0).ok()?;
        run.get(at).map(|e| e.1)
    }

    /// Index the sorted places by bucket: about two entries a bucket.
    fn build_directory(&mut self) {
        let n = self.places.len();
        // ⌊log2 n⌋ - 1 bits: between 2 and 4 entries a bucket on average;
        // one bucket when the places outnumber a u32 index.
        self.bucket_bits = match u32::try_from(n) {
            Ok(n) if n >= 4 => n.ilog2() - 1,
            _ => 0,
        };
        let buckets = 1usize << self.bucket_bits;
        let mut directory = Vec::with_capacity(buckets + 1);
        let mut at = 0usize;
        for bucket in 0..buckets {
            while self
                .places
                .get(at)
                .is_some_and(|e| bucket_of(e.0, self.bucket_bits) < bucket)
            {
                at += 1;
            }
            directory.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        directory.push(u32::try_from(n).unwrap_or(u32::MAX));
        self.directory = directory;
    }

    /// Record where `id`'s entry is (checked for repeats by
    /// [`PartnerEntries::seal`]); `Err` when an entry too long to pack
    /// repeats an id.
    fn insert(&mut self, id: &str, offset: u64, len: u64) -> Result<(), ()> {
        match pack(offset, len) {
            Some(p) => self.places.push((self.hash(id), p)),
            None => {
                if self.others.insert(id.into(), (offset, len)).is_some() {
                    return Err(());
                }
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Sort the places by hash; move the entries of hashes given more than
    /// once to `others`, by id. Returns the ids given again, with where
    /// each repeat starts (in file order).
    fn seal(&mut self) -> Result<Vec<(u64, String)>, InputError> {
        // On every core: nothing else runs while the scan ends.
        rayon::slice::ParallelSliceMut::par_sort_unstable(&mut self.places[..]);
        let mut repeats = Vec::new();
        let mut shared: Vec<(u64, u64)> = Vec::new();
        for same_hash in self.places.chunk_by(|a, b| a.0 == b.0) {
            if same_hash.len() > 1 {
                shared.extend(same_hash);
            }
        }
        if shared.is_empty() {
            self.build_directory();
            return Ok(repeats);
        }
        let mut reader = EntryReader::default();
        // Sorted by (hash, place): the first entry of an id is its first
        // in the file; a repeat is reported, and not indexed.
        for &(_, packed) in &shared {
            let (offset, len) = unpack(packed);
            let file = self.file.as_ref().ok_or_else(|| self.changed("no file"))?;
            let bytes = reader
                .read(file, offset, len)
                .map_err(|e| self.changed(&e.to_string()))?;
            let id = split_entry(bytes)
                .ok_or_else(|| self.changed("an entry is not where it was"))?
                .0
                .into_owned();
            match self.others.entry(id.into_boxed_str()) {
                std::collections::hash_map::Entry::Occupied(o) => {
                    repeats.push((offset, o.key().to_string()));
                    self.len -= 1;
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert((offset, len));
                }
            }
        }
        let moved: rustc_hash::FxHashSet<u64> = shared.iter().map(|e| e.0).collect();
        self.places.retain(|e| !moved.contains(&e.0));
        self.build_directory();
        repeats.sort_unstable();
        Ok(repeats)
    }
}

/// The bucket of `hash` in a directory of `bits` bits: its top bits.
fn bucket_of(hash: u64, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        (hash >> (64 - bits)) as usize
    }
}

/// The 1-based line and column (in characters) of each of `offsets`
/// (sorted) in `file`, read again from its start: for messages about
/// entries found wrong after the scan.
fn positions(file: &File, offsets: &[u64]) -> std::io::Result<Vec<(usize, usize)>> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut buf = vec![0u8; BLOCK];
    let (mut at, mut line, mut column) = (0u64, 1usize, 1usize);
    let mut wanted = offsets.iter().peekable();
    while wanted.peek().is_some() {
        let n = file.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        for &b in buf.iter().take(n) {
            while wanted.next_if(|&&o| o == at).is_some() {
                out.push((line, column));
            }
            if b == b'\n' {
                line += 1;
                column = 1;
            } else if b & 0xC0 != 0x80 {
                column += 1;
            }
            at += 1;
        }
    }
    out.extend(wanted.map(|_| (line, column)));
    Ok(out)
}

/// The problem of an id given twice.
fn given_twice() -> String {
    "the partner id is given twice".into()
}

/// An entry's text `"ID" : VALUE` as its id and the value's text.
fn split_entry(bytes: &[u8]) -> Option<(Cow<'_, str>, &str)> {
    let key_end = value_end(bytes, 0)?;
    let key = decode_key(bytes.get(..key_end)?)?;
    let rest = bytes.get(key_end..)?;
    let colon = rest.iter().position(|b| !b.is_ascii_whitespace())?;
    if rest.get(colon) != Some(&b':') {
        return None;
    }
    let value = std::str::from_utf8(rest.get(colon + 1..)?).ok()?;
    Some((key, value.trim_start()))
}

/// A JSON string's value, from its text with the quotes.
fn decode_key(raw: &[u8]) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.iter().all(|&b| b != b'\\' && b >= 0x20) {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    }
    serde_json::from_slice::<String>(raw).ok().map(Cow::Owned)
}

/// Why a record was refused, and where in its text (1-based line and
/// column) when the JSON reader said.
struct Refusal {
    problem: String,
    at: Option<(usize, usize)>,
}

impl From<Refusal> for String {
    fn from(r: Refusal) -> String {
        r.problem
    }
}

/// An entry's value as a partial record (of `cache`'s completeness,
/// [`Completeness::Partial`]), or why it is not one.
pub fn parse_entry(schema: &Type, text: &str, cache: &mut ParseCache) -> Result<Value, String> {
    parse_partial(schema, text, cache).map_err(|r| r.problem)
}

/// Parse a partial record: the fast reader, or the reference path and its
/// precise message.
fn parse_partial(schema: &Type, text: &str, cache: &mut ParseCache) -> Result<Value, Refusal> {
    if let Some(v) = super::fast::parse(text, cache) {
        return Ok(v);
    }
    let json_error = |e: serde_json::Error, prefix: &str| Refusal {
        problem: format!("{prefix}{}", super::input::json_message(&e)),
        at: Some((e.line(), e.column())),
    };
    check_unique_keys(text).map_err(|e| json_error(e, ""))?;
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| json_error(e, "not valid JSON: "))?;
    from_json(schema, &json, "", Completeness::Partial).map_err(|e| Refusal {
        problem: e.to_string(),
        at: None,
    })
}

/// A JSON object read in blocks, by absolute offsets into the file. Bytes
/// before `keep` may be dropped; a value is held whole while it is read
/// (at most [`MAX_RECORD`] bytes of it).
pub(super) struct Scanner {
    path: std::path::PathBuf,
    /// The file as given, for messages.
    name: String,
    input: File,
    /// A pipe's bytes, kept to be read back.
    spool: Option<File>,
    hasher: blake3::Hasher,
    identity: Option<(u64, Option<std::time::SystemTime>)>,
    /// Bytes read at a time ([`BLOCK`], less for a region).
    block: usize,
    buf: Vec<u8>,
    /// The file offset of `buf[0]`.
    base: u64,
    keep: u64,
    eof: bool,
    /// Lines counted up to `counted` (a file offset): 1-based line there,
    /// and where that line starts.
    line: usize,
    line_start: u64,
    /// Characters of the line at `line_start` before `base`, when it began
    /// before the bytes held.
    line_before: usize,
    counted: u64,
}

/// Characters (not bytes) of UTF-8 `bytes`.
fn characters(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b & 0xC0 != 0x80).count()
}

impl Scanner {
    /// Open `path`; a file that is not regular (a pipe) is spooled.
    pub(super) fn open(path: &Path) -> Result<Self, InputError> {
        let input = File::open(path).map_err(|e| io(path, e))?;
        let meta = input.metadata().map_err(|e| io(path, e))?;
        let regular = meta.is_file();
        let spool = if regular {
            None
        } else {
            Some(tempfile::tempfile().map_err(|e| spool_error(path, e))?)
        };
        let identity = regular.then(|| (meta.len(), meta.modified().ok()));
        Ok(Scanner::reading(path, input, spool, identity, 0, BLOCK))
    }

    /// The file's name as given.
    pub(super) fn name(&self) -> &str {
        &self.name
    }

    /// The BLAKE3 (hex) of the bytes read (a regular file's or a pipe's),
    /// once all are scanned.
    pub(super) fn blake3(&self) -> String {
        self.hasher.finalize().to_hex().to_string()
    }

    /// Read the next block; false at the end of the file.
    fn fill(&mut self) -> Result<bool, InputError> {
        if self.eof {
            return Ok(false);
        }
        // Drop what is no longer needed, counting its lines first.
        let drop = (self.keep - self.base) as usize;
        if drop >= self.block {
            self.count_lines(self.keep);
            // The characters of the current line about to be dropped.
            let new_base = self.base + drop as u64;
            self.line_before = if self.line_start >= new_base {
                0
            } else {
                let from = (self.line_start.max(self.base) - self.base) as usize;
                let before = if self.line_start < self.base {
                    self.line_before
                } else {
                    0
                };
                before + characters(self.buf.get(from..drop).unwrap_or_default())
            };
            self.buf.drain(..drop);
            self.base = new_base;
        }
        let before = self.buf.len();
        let n = (&mut self.input)
            .take(self.block as u64)
            .read_to_end(&mut self.buf)
            .map_err(|e| io(&self.path, e))?;
        // What was just read (the buffer only grew).
        let fresh = self.buf.get(before..).unwrap_or_default();
        self.hasher.update(fresh);
        if let Some(spool) = &mut self.spool {
            spool
                .write_all(fresh)
                .map_err(|e| spool_error(&self.path, e))?;
        }
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The byte at `at`, reading on as needed; `None` at the end.
    fn byte(&mut self, at: u64) -> Result<Option<u8>, InputError> {
        loop {
            let i = (at - self.base) as usize;
            if let Some(&b) = self.buf.get(i) {
                return Ok(Some(b));
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// The first byte at or after `at` that is not white space, and where.
    fn skip_ws(&mut self, mut at: u64) -> Result<(u64, Option<u8>), InputError> {
        loop {
            match self.byte(at)? {
                Some(b) if b.is_ascii_whitespace() => at += 1,
                b => return Ok((at, b)),
            }
        }
    }

    /// Where the JSON value starting at `at` ends (strings and brackets are
    /// followed; its JSON is checked when it is parsed). The value must
    /// fit, with everything kept before it, in [`MAX_RECORD`] bytes.
    fn value(&mut self, at: u64, what: &str) -> Result<u64, InputError> {
        loop {
            let i = (at - self.base) as usize;
            let end = match value_end(&self.buf, i) {
                Some(end) if end < self.buf.len() || self.eof => Some(end),
                None if self.eof => Some(self.buf.len()),
                _ => None,
            };
            let held = end.unwrap_or(self.buf.len()) as u64 + self.base - self.keep;
            if held > MAX_RECORD as u64 {
                return Err(self.invalid(
                    at,
                    None,
                    format!(
                        "{what} is longer than {} MiB, the limit for one record",
                        MAX_RECORD >> 20
                    ),
                ));
            }
            if let Some(end) = end {
                return Ok(self.base + end as u64);
            }
            self.fill()?;
        }
    }

    /// The bytes of `range` (held: it is after `keep`).
    fn text(&self, range: std::ops::Range<u64>) -> &[u8] {
        let from = (range.start - self.base) as usize;
        let to = (range.end - self.base) as usize;
        self.buf
            .get(from..to.min(self.buf.len()))
            .unwrap_or_default()
    }

    /// Count lines up to offset `at` (offsets asked for never go back).
    fn count_lines(&mut self, at: u64) {
        if at > self.counted {
            let from = (self.counted - self.base) as usize;
            let to = ((at - self.base) as usize).min(self.buf.len());
            let bytes = self.buf.get(from..to).unwrap_or_default();
            self.line += bytes.iter().filter(|&&b| b == b'\n').count();
            if let Some(last) = bytes.iter().rposition(|&b| b == b'\n') {
                self.line_start = self.base + (from + last + 1) as u64;
            }
            self.counted = at;
        }
    }

    /// The 1-based line and column (in characters) of offset `at`.
    pub(super) fn position(&mut self, at: u64) -> (usize, usize) {
        self.count_lines(at);
        let from = (self.line_start.max(self.base) - self.base) as usize;
        let to = ((at - self.base) as usize).min(self.buf.len());
        // A line that began before the bytes held: its characters dropped
        // count too.
        let dropped = if self.line_start < self.base {
            self.line_before
        } else {
            0
        };
        let column = dropped + characters(self.buf.get(from..to).unwrap_or_default());
        (self.line, column + 1)
    }

    /// An error about the record at `at`.
    fn invalid(&mut self, at: u64, partner: Option<&str>, problem: String) -> InputError {
        let position = self.position(at);
        self.invalid_at(position, partner, problem)
    }

    fn invalid_at(
        &self,
        (line, column): (usize, usize),
        partner: Option<&str>,
        problem: String,
    ) -> InputError {
        InputError::Invalid {
            file: self.name.clone(),
            at: format!("line {line}, column {column}"),
            partner: partner.map(str::to_string),
            problem,
        }
    }

    /// An error about a value starting at `at`, refused at a place inside
    /// it (line and column in its text) when the refusal says where.
    fn refused(&mut self, at: u64, partner: &str, refusal: Refusal) -> InputError {
        let start = self.position(at);
        let position = refusal.at.map_or(start, |inner| shifted(start, inner));
        self.invalid_at(position, Some(partner), refusal.problem)
    }

    /// The start of the object: the file's first `{`, or an error naming
    /// what the file should hold.
    pub(super) fn open_object(&mut self, expected: &str) -> Result<u64, InputError> {
        // A UTF-8 byte-order mark is skipped, as RFC 8259 allows.
        let mut start = 0;
        for (i, &b) in BOM.iter().enumerate() {
            if self.byte(i as u64)? != Some(b) {
                start = 0;
                break;
            }
            start = BOM.len() as u64;
        }
        // Columns count from after it.
        self.counted = start;
        self.line_start = start;
        match self.skip_ws(start)? {
            (at, Some(b'{')) => Ok(at + 1),
            (at, Some(_)) => Err(self.invalid(
                at,
                None,
                format!("not valid JSON: expected a JSON object ({expected})"),
            )),
            (at, None) => Err(self.invalid(
                at,
                None,
                format!("the file is empty (expected a JSON object: {expected})"),
            )),
        }
    }

    /// After the closing `}` at `at`: nothing but white space.
    pub(super) fn close(&mut self, at: u64) -> Result<(), InputError> {
        match self.skip_ws(at)? {
            (_, None) => {
                self.keep = at;
                Ok(())
            }
            (at, Some(_)) => Err(self.invalid(
                at,
                None,
                "not valid JSON: text after the object's closing `}`".into(),
            )),
        }
    }

    /// The next member of the object at `at` (just after its `{` or a
    /// member): `Err` at its `}` (with where after it), or the key and its
    /// value's range.
    pub(super) fn member(
        &mut self,
        at: u64,
        first: bool,
    ) -> Result<Result<Member, u64>, InputError> {
        let mut member = match self.member_head(at, first)? {
            Ok(m) => m,
            Err(end) => return Ok(Err(end)),
        };
        member.value.end = self.value(member.value.start, "the entry")?;
        Ok(Ok(member))
    }

    /// [`Scanner::member`] up to the start of its value: the value's range
    /// is empty, at its start (the value is not read).
    pub(super) fn member_head(
        &mut self,
        at: u64,
        first: bool,
    ) -> Result<Result<Member, u64>, InputError> {
        self.keep = at;
        let (at, b) = self.skip_ws(at)?;
        let at = match (first, b) {
            (_, Some(b'}')) if first => return Ok(Err(at + 1)),
            (true, Some(b'"')) => at,
            (false, Some(b'}')) => return Ok(Err(at + 1)),
            (false, Some(b',')) => match self.skip_ws(at + 1)? {
                (at, Some(b'"')) => at,
                (at, _) => {
                    return Err(self.invalid(
                        at,
                        None,
                        "not valid JSON: expected a key (a string) after `,`".into(),
                    ));
                }
            },
            (_, None) => {
                return Err(self.invalid(
                    at,
                    None,
                    "not valid JSON: the file ends before the object's closing `}`".into(),
                ));
            }
            (true, _) => {
                return Err(self.invalid(
                    at,
                    None,
                    "not valid JSON: expected a key (a string) or `}`".into(),
                ));
            }
            (false, _) => {
                return Err(self.invalid(
                    at,
                    None,
                    "not valid JSON: expected `,` or `}` after a value".into(),
                ));
            }
        };
        self.keep = at;
        let key_end = self.value(at, "a key")?;
        let key = match decode_key(self.text(at..key_end)) {
            Some(k) => k.into_owned(),
            None => {
                return Err(self.invalid(at, None, "not valid JSON: a key is not a string".into()));
            }
        };
        let (colon, b) = self.skip_ws(key_end)?;
        if b != Some(b':') {
            return Err(self.invalid(
                colon,
                Some(&key),
                "not valid JSON: expected `:` after the key".into(),
            ));
        }
        let (start, b) = self.skip_ws(colon + 1)?;
        if matches!(b, None | Some(b',' | b'}' | b']')) {
            return Err(self.invalid(
                start,
                Some(&key),
                "not valid JSON: expected a value after `:`".into(),
            ));
        }
        Ok(Ok(Member {
            key,
            at,
            value: start..start,
        }))
    }

    /// Read the value of a member from [`Scanner::member_head`].
    pub(super) fn read_value(&mut self, member: &mut Member) -> Result<(), InputError> {
        member.value.end = self.value(member.value.start, "the entry")?;
        Ok(())
    }

    /// A member's value as text: UTF-8, or an error.
    pub(super) fn value_text(&mut self, member: &Member) -> Result<&str, InputError> {
        if std::str::from_utf8(self.text(member.value.clone())).is_err() {
            return Err(self.invalid(
                member.value.start,
                Some(&member.key),
                "the value is not valid UTF-8".into(),
            ));
        }
        let bytes = self.text(member.value.clone());
        Ok(std::str::from_utf8(bytes).unwrap_or_default())
    }

    /// Read and index the entries of the object whose `{` is at `open`,
    /// checking each against `schema`; bad entries go to `gathered`.
    /// Returns the entries and where the object ends.
    pub(super) fn entries(
        &mut self,
        schema: &Type,
        open: u64,
        gathered: &mut Gathered,
    ) -> Result<(PartnerEntries, u64), InputError> {
        let from = regions::PARALLEL_FROM;
        self.entries_into(PartnerEntries::empty(), schema, open, gathered, from)
    }

    /// [`Scanner::entries`], into `entries` (empty); in regions on every
    /// core when the object's bytes are `regions_from` or more.
    fn entries_into(
        &mut self,
        mut entries: PartnerEntries,
        schema: &Type,
        open: u64,
        gathered: &mut Gathered,
        regions_from: u64,
    ) -> Result<(PartnerEntries, u64), InputError> {
        entries.name = self.name.clone();
        entries.file = Some(self.backing()?);
        entries.identity = self.identity;
        // A large file of good entries is indexed on every core, and read
        // on to its object's end here (hashed, its lines counted).
        if let Some(end) = regions::scan(self, &mut entries, schema, open, regions_from) {
            regions::skip_to(self, end)?;
            return self.sealed(entries, end, gathered);
        }
        let mut checker = MemberChecker::new(schema);
        let mut at = open + 1;
        let mut first = true;
        loop {
            let member = match self.member(at, first)? {
                Ok(m) => m,
                Err(end) => {
                    at = end;
                    break;
                }
            };
            first = false;
            at = member.value.end;
            if let Err(e) = checker.check(self, &member) {
                gathered.add(e);
                continue;
            }
            if entries
                .insert(&member.key, member.at, member.value.end - member.at)
                .is_err()
            {
                let e = self.invalid(member.at, Some(&member.key), given_twice());
                gathered.add(e);
            }
        }
        self.sealed(entries, at, gathered)
    }

    /// A scanner of `input`, reading from `start`, `block` bytes at a time.
    fn reading(
        path: &Path,
        input: File,
        spool: Option<File>,
        identity: Option<(u64, Option<std::time::SystemTime>)>,
        start: u64,
        block: usize,
    ) -> Scanner {
        Scanner {
            path: path.to_path_buf(),
            name: path.display().to_string(),
            input,
            spool,
            // A pipe's bytes are hashed as they are spooled: the plan binds
            // what it read either way.
            hasher: blake3::Hasher::new(),
            identity,
            block,
            buf: Vec::new(),
            base: start,
            keep: start,
            eof: false,
            line: 1,
            line_start: start,
            line_before: 0,
            counted: start,
        }
    }

    /// `entries` sealed, with their repeated ids reported; and where the
    /// object ends (`end`).
    fn sealed(
        &mut self,
        mut entries: PartnerEntries,
        end: u64,
        gathered: &mut Gathered,
    ) -> Result<(PartnerEntries, u64), InputError> {
        let repeats = entries.seal()?;
        if !repeats.is_empty() {
            let offsets: Vec<u64> = repeats.iter().map(|r| r.0).collect();
            let file = entries
                .file
                .as_ref()
                .ok_or_else(|| entries.changed("no file"))?;
            let places = positions(file, &offsets).map_err(|e| entries.changed(&e.to_string()))?;
            for ((_, id), place) in repeats.iter().zip(places) {
                gathered.add(self.invalid_at(place, Some(id), given_twice()));
            }
        }
        Ok((entries, end))
    }

    /// Whether the value at `at` is an object.
    pub(super) fn is_object(&mut self, at: u64) -> Result<bool, InputError> {
        Ok(self.byte(at)? == Some(b'{'))
    }

    /// A second handle on the bytes scanned (the file, or the spool).
    fn backing(&self) -> Result<File, InputError> {
        self.spool
            .as_ref()
            .unwrap_or(&self.input)
            .try_clone()
            .map_err(|e| io(&self.path, e))
    }
}

/// What the scan checks of each member: its id, that its value is UTF-8,
/// and that the schema takes it (each distinct good text once).
pub(super) struct MemberChecker<'s> {
    schema: &'s Type,
    cache: ParseCache,
    /// Entry texts found good: a fleet gives its partners few distinct
    /// targets, each checked once.
    good: rustc_hash::FxHashSet<Box<str>>,
}

impl<'s> MemberChecker<'s> {
    pub(super) fn new(schema: &'s Type) -> Self {
        MemberChecker {
            schema,
            cache: ParseCache::new(schema, Completeness::Partial),
            good: Default::default(),
        }
    }

    /// The member's first problem, as the scan reports it.
    pub(super) fn check(&mut self, scan: &mut Scanner, member: &Member) -> Result<(), InputError> {
        if let Some(problem) = id_problem(&member.key) {
            return Err(scan.invalid(
                member.at,
                Some(&member.key),
                format!("partner id: {problem}"),
            ));
        }
        let text = scan.value_text(member)?;
        // A text read before is as good as it was then.
        if self.good.contains(text) {
            return Ok(());
        }
        match parse_partial(self.schema, text, &mut self.cache) {
            Ok(_) => {
                if self.good.len() < GOOD_KEPT {
                    self.good.insert(text.into());
                }
                Ok(())
            }
            Err(refusal) => Err(scan.refused(member.value.start, &member.key, refusal)),
        }
    }
}

/// The place in a file of `inner` (line and column in a text) when the
/// text starts at `start` of the file.
pub(super) fn shifted(start: (usize, usize), inner: (usize, usize)) -> (usize, usize) {
    match inner {
        (0 | 1, column) => (start.0, start.1 + column.max(1) - 1),
        (line, column) => (start.0 + line - 1, column),
    }
}

/// Spooling a pipe failed.
fn spool_error(path: &Path, e: std::io::Error) -> InputError {
    InputError::Io(format!(
        "cannot spool `{}` to a temporary file: {}",
        path.display(),
        pmf_syntax::diagnostics::io_reason(&e)
    ))
}

/// One member of a JSON object, as scanned.
pub(super) struct Member {
    /// The key, decoded.
    pub key: String,
    /// Where the key starts.
    pub at: u64,
    /// Where the value is.
    pub value: std::ops::Range<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmf_compiler::model::types::Type;
    use std::collections::{BTreeMap, HashMap};

    fn schema() -> Type {
        Type::Record(std::sync::Arc::new(
            BTreeMap::from([
                ("power".to_string(), Type::Number),
                ("region".to_string(), Type::String),
            ])
            .into(),
        ))
    }

    /// Index `text` as an observed-metrics file; `collide` makes every id
    /// hash alike.
    fn index(path: &Path, text: &str, collide: bool) -> Result<PartnerEntries, InputError> {
        std::fs::write(path, text).unwrap();
        let mut scan = Scanner::open(path)?;
        let open = scan.open_object("test")?;
        let mut gathered = Gathered::new("test");
        let mut entries = PartnerEntries::empty();
        entries.collide = collide;
        let serial = u64::MAX;
        let (entries, end) =
            scan.entries_into(entries, &schema(), open - 1, &mut gathered, serial)?;
        scan.close(end)?;
        match gathered.finish() {
            Some(e) => Err(e),
            None => Ok(entries),
        }
    }

    /// What a scan of `text` (an observed-metrics file) leaves: the index
    /// (length, places sorted, ids apart), the scanner's digest and where
    /// it stands at the object's end; or every error, as reported.
    fn scanned(path: &Path, text: &str, regions_from: u64) -> Result<String, String> {
        std::fs::write(path, text).unwrap();
        let mut scan = Scanner::open(path).map_err(|e| e.to_string())?;
        let open = scan.open_object("test").map_err(|e| e.to_string())?;
        let mut gathered = Gathered::new("test");
        let (entries, end) = scan
            .entries_into(
                PartnerEntries::empty(),
                &schema(),
                open - 1,
                &mut gathered,
                regions_from,
            )
            .map_err(|e| e.to_string())?;
        let closed = scan.close(end).map_err(|e| e.to_string());
        if let Some(e) = gathered.finish() {
            return Err(e.to_string());
        }
        closed?;
        // Each index hashes ids under keys of its own: compared by place.
        let mut places: Vec<(u64, u64)> = entries.places.iter().map(|&(_, p)| unpack(p)).collect();
        places.sort_unstable();
        let mut others: Vec<_> = entries
            .others
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect();
        others.sort();
        Ok(format!(
            "{} entries, {} places (BLAKE3 {}), others {others:?}, end {end} at {:?}, file {:?}",
            entries.len,
            places.len(),
            blake3::hash(format!("{places:?}").as_bytes()),
            scan.position(end),
            scan.blake3(),
        ))
    }

    /// The regions' index is the serial scan's, whatever the file's shape:
    /// one entry a line (the regions hold), values over several lines,
    /// commas first, repeated ids, bad entries and text after the object
    /// (the regions give up, or stop where the serial scan does); and a
    /// file of one entry a line is indexed by the regions, not given up.
    #[test]
    fn entries_scanned_in_regions_are_the_serial_scans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        let entry = |i: usize| {
            format!(
                "\"p-{i:05}\": {{\"power\": {}, \"region\": \"r{}\"}}",
                i % 9,
                i % 4
            )
        };
        let lines = |n: usize, sep: &str| {
            let body: Vec<String> = (0..n).map(entry).collect();
            format!("{{\n{}\n}}\n", body.join(sep))
        };
        let pretty = (0..2000)
            .map(|i| {
                format!(
                    "\"p-{i:05}\": {{\n  \"power\": {},\n  \"region\": \"r\"\n}}",
                    i % 9
                )
            })
            .collect::<Vec<_>>()
            .join(",\n");
        let mut twice = lines(3000, ",\n");
        twice = twice.replace("\"p-02500\"", "\"p-00007\"");
        let mut bad = lines(3000, ",\n");
        bad = bad.replace(
            "\"p-01500\": {\"power\": 6",
            "\"p-01500\": {\"power\": \"six\"",
        );
        let cases = [
            ("one a line", lines(3000, ",\n")),
            ("one a line, CRLF", lines(3000, ",\r\n")),
            ("several a line", lines(3000, ", ")),
            ("over several lines", format!("{{{pretty}}}")),
            ("commas first", lines(3000, "\n, ")),
            ("an id twice", twice),
            ("a bad entry", bad),
            ("text after it", lines(3000, ",\n") + "{\"p-1\": {}}\n"),
            ("the reader's tests", file(3000)),
            ("empty", "{\n}\n".to_string()),
        ];
        for (what, text) in cases {
            let serial = scanned(&path, &text, u64::MAX);
            let regions = scanned(&path, &text, 0);
            assert_eq!(regions, serial, "{what}");
            // Where the object ends is told by line and column in
            // characters, however long its last line (the reference: the
            // text itself).
            if let Ok(found) = &serial {
                let end = text.trim_end().len();
                let line = text[..end].matches('\n').count() + 1;
                let column = text[..end].rsplit('\n').next().unwrap().chars().count() + 1;
                assert!(
                    found.contains(&format!("at ({line}, {column})")),
                    "{what}: {found}"
                );
            }
        }
        // The regions did the work for a file of one entry a line.
        let text = lines(3000, ",\n");
        std::fs::write(&path, &text).unwrap();
        let mut scan = Scanner::open(&path).unwrap();
        let open = scan.open_object("test").unwrap();
        let mut entries = PartnerEntries::empty();
        let end = regions::scan(&scan, &mut entries, &schema(), open - 1, 0);
        assert_eq!(end, Some(text.trim_end().len() as u64));
        assert_eq!(entries.len, 3000);
    }

    fn reference(text: &str) -> HashMap<String, Value> {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        json.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let v = from_json(&schema(), v, "", Completeness::Partial).unwrap();
                (k.clone(), v)
            })
            .collect()
    }

    /// A file of `n` entries, some spread over lines, some with escapes,
    /// one larger than a scan block.
    fn file(n: usize) -> String {
        let mut text = String::from("{");
        for i in 0..n {
            if i > 0 {
                text.push_str(if i % 3 == 0 { ",\n  " } else { "," });
            }
            let region = if i == n / 2 {
                "x".repeat(BLOCK + 17)
            } else {
                format!("r\\u00e9{}", i % 7)
            };
            text.push_str(&format!(
                "\"p-{i:05}\": {{\"power\": {}, \"region\": \"{region}\"}}",
                i % 10
            ));
        }
        text.push('}');
        text
    }

    fn looked_up(entries: &PartnerEntries, ids: &[String]) -> HashMap<String, Value> {
        let mut cache = ParseCache::new(&schema(), Completeness::Partial);
        let mut reader = EntryReader::default();
        ids.iter()
            .filter_map(|id| {
                let v = entries.get(&schema(), id, &mut reader, &mut cache).unwrap();
                v.map(|v| (id.clone(), v))
            })
            .collect()
    }

    /// Every hash indexed is found through its bucket, whatever the
    /// number of places (none, fewer than a bucket's worth, a power of
    /// two, hashes at both ends of the range); none other is.
    #[test]
    fn the_directory_finds_each_place_and_only_those() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for n in [0usize, 1, 2, 3, 4, 5, 7, 8, 9, 1000, 1024, 4099] {
            let mut entries = PartnerEntries::empty();
            let mut hashes: Vec<u64> = (0..n).map(|_| next()).collect();
            if n >= 2 {
                hashes[0] = 0;
                hashes[1] = u64::MAX;
            }
            entries.places = hashes.iter().map(|&h| (h, h ^ 1)).collect();
            entries.places.sort_unstable();
            entries.build_directory();
            assert_eq!(entries.directory.len(), (1 << entries.bucket_bits) + 1);
            for &h in &hashes {
                assert_eq!(entries.find(h), Some(h ^ 1), "{n} places, hash {h:#x}");
            }
            for _ in 0..1000 {
                let h = next();
                if !hashes.contains(&h) {
                    assert_eq!(entries.find(h), None);
                }
            }
        }
    }

    #[test]
    fn entries_read_back_as_the_reference_reads_the_file_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        let text = file(3000);
        let expected = reference(&text);
        for collide in [false, true] {
            let entries = index(&path, &text, collide).unwrap();
            assert_eq!(entries.len(), 3000);
            let mut ids: Vec<String> = expected.keys().cloned().collect();
            ids.sort();
            // In file order (each entry found after the one before, not
            // through the index), every other one in file order (the next
            // entry is not the one asked for), backwards, and scattered.
            assert_eq!(looked_up(&entries, &ids), expected);
            let halves: [Vec<String>; 2] =
                [0, 1].map(|r| ids.iter().skip(r).step_by(2).cloned().collect());
            let mut both = looked_up(&entries, &halves[0]);
            both.extend(looked_up(&entries, &halves[1]));
            assert_eq!(both, expected);
            ids.reverse();
            assert_eq!(looked_up(&entries, &ids), expected);
            let scattered: Vec<String> = (0..3000)
                .map(|i| format!("p-{:05}", (i * 1237) % 3000))
                .chain(["p-99999".to_string(), "nobody".to_string()])
                .collect();
            assert_eq!(looked_up(&entries, &scattered), expected);
            // So many lookups out of order: the last ones read the file
            // held whole.
            assert!(
                matches!(entries.whole.get(), Some(Some(_))),
                "the file was read whole"
            );
            let all: HashMap<String, Value> = entries.all(&schema()).unwrap().into_iter().collect();
            assert_eq!(all, expected);
            entries.unchanged().unwrap();
        }
    }

    /// Bad entries are reported in the file's order (repeated ids last,
    /// once every entry is indexed), each at its own line and column, also
    /// after an entry larger than a block made the scan drop the bytes
    /// before it.
    #[test]
    fn bad_entries_are_reported_in_order_at_their_places() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        let n = 4096 * 2 + 500;
        // (index, kind): a bad id, a value the schema refuses, and a
        // repeat of an earlier id; at batch ends too.
        let bad: Vec<(usize, &str)> = vec![
            (2, "schema"),
            (3, "id"),
            (4096 - 1, "schema"),
            (4096, "id"),
            (4096 + 1, "twice"),
            (4096 + 777, "schema"),
            (4096 * 2 - 1, "twice"),
            (4096 * 2 + 400, "schema"),
        ];
        let mut text = String::from("{");
        // Where each bad entry's error points: its id's `"`, or its value.
        let mut expected = Vec::new();
        for i in 0..n {
            if i > 0 {
                text.push_str(if i % 3 == 0 { ",\n  " } else { ", " });
            }
            let kind = bad.iter().find(|(at, _)| *at == i).map(|(_, k)| *k);
            let id = match kind {
                Some("id") => format!(" p-{i:05}"),
                Some("twice") => "p-00000".to_string(),
                _ => format!("p-{i:05}"),
            };
            let key_at = text.len();
            text.push_str(&format!("\"{id}\": "));
            let value_at = text.len();
            // Larger than a block, after bad entries: the scan drops
            // their bytes.
            let region = if i == 4 {
                "x".repeat(BLOCK + 17)
            } else {
                "r\\u00e9".into()
            };
            match kind {
                Some("schema") => text.push_str("{\"power\": \"high\"}"),
                _ => text.push_str(&format!(
                    "{{\"power\": {}, \"region\": \"{region}\"}}",
                    i % 10
                )),
            }
            let place = |at: usize| {
                let before = &text[..at];
                let line = before.matches('\n').count() + 1;
                let column = before[before.rfind('\n').map_or(0, |l| l + 1)..]
                    .chars()
                    .count()
                    + 1;
                format!("line {line}, column {column}")
            };
            match kind {
                Some("id") => expected.push((place(key_at), id, "partner id:")),
                Some("schema") => expected.push((place(value_at), id, "power")),
                Some("twice") => expected.push((place(key_at), id, "given twice")),
                _ => {}
            }
        }
        text.push('}');
        // Repeated ids are found once every entry is indexed: last.
        expected.sort_by_key(|(_, _, says)| *says == "given twice");
        let e = index(&path, &text, false).unwrap_err();
        let InputError::Many { errors, more, .. } = e else {
            panic!("{e}")
        };
        assert_eq!(more, 0);
        let got: Vec<(String, String, String)> = errors
            .iter()
            .map(|e| match e {
                InputError::Invalid {
                    at,
                    partner,
                    problem,
                    ..
                } => (
                    at.clone(),
                    partner.clone().unwrap_or_default(),
                    problem.clone(),
                ),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(got.len(), expected.len(), "{got:#?}");
        for ((at, id, problem), (want_at, want_id, says)) in got.iter().zip(&expected) {
            assert_eq!((at, id), (want_at, want_id), "{problem}");
            assert!(problem.contains(says), "{problem}");
        }
    }

    #[test]
    fn a_repeated_id_is_refused_even_when_hashes_collide() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        for collide in [false, true] {
            let e = index(
                &path,
                r#"{"a": {"power": 1}, "b": {}, "a": {"power": 2}, "b": {}}"#,
                collide,
            )
            .unwrap_err()
            .to_string();
            assert_eq!(e.matches("the partner id is given twice").count(), 2, "{e}");
        }
    }

    #[test]
    fn a_file_changed_after_its_scan_is_told() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        let entries = index(&path, r#"{"a": {"power": 1}}"#, false).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, r#"{"a": {"power": 2}, "b": {"power": 3}}"#).unwrap();
        let e = entries.unchanged().unwrap_err().to_string();
        assert!(
            e.contains("the file changed while it was being planned"),
            "{e}"
        );
    }

    #[test]
    fn an_entry_over_the_record_limit_is_refused_without_reading_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.json");
        let text = format!(
            "{{\"a\": {{\"region\": \"{}\"}}, \"b\": {{}}}}",
            "x".repeat(MAX_RECORD + 1)
        );
        let e = index(&path, &text, false).unwrap_err().to_string();
        assert!(e.contains("the entry is longer than 16 MiB"), "{e}");
    }
}
