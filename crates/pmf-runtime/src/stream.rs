//! Partner files read in large blocks: NDJSON by whole lines, a JSON array
//! by whole elements. Each record is handed on as a range of its batch's
//! text, so memory does not grow with the file.

use std::io::{BufRead, BufReader, Read, Seek};
use std::path::Path;

use super::input::{InputError, io};

/// The UTF-8 byte-order mark.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Where a record is in its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// A line of an NDJSON file (1-based).
    Line(usize),
    /// An element of a JSON array (1-based).
    Record(usize),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// One partner record as read: where it was, and its JSON.
pub struct RawRecord {
    /// Where it is.
    pub at: Location,
    /// The record's JSON.
    pub json: RawJson,
}

/// A record's JSON: its text in its batch, or why there is none.
pub enum RawJson {
    /// An NDJSON line or a JSON array's element: a byte range of
    /// [`Batch::text`].
    Text(std::ops::Range<usize>),
    /// A line or element that is not UTF-8.
    NotUtf8,
    /// A line longer than [`MAX_RECORD`] bytes (its text is not kept).
    TooLong,
}

/// The largest record, in bytes: an NDJSON line or an element of a JSON
/// array. A longer one is an error, found without holding more than about
/// this much of it in memory (a stream with no newline at all, such as
/// `/dev/zero`, fails after reading this much).
pub(crate) const MAX_RECORD: usize = 16 << 20;

/// A record that is too long, as a message.
pub(crate) fn too_long_message(at: Location) -> String {
    let what = match at {
        Location::Line(_) => "line",
        Location::Record(_) => "record",
    };
    format!(
        "the {what} is longer than {} MiB, the limit for one partner record",
        MAX_RECORD >> 20
    )
}

/// Records read together: NDJSON lines share one block of text.
#[derive(Default)]
pub struct Batch {
    /// The text the lines' ranges point into.
    pub text: String,
    /// The records, in file order.
    pub records: Vec<RawRecord>,
}

impl Batch {
    /// Whether the batch holds no record (the end of the stream).
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Streams partner records from a JSON array or NDJSON file, in batches.
pub struct PartnerStream {
    file: String,
    kind: StreamKind,
}

enum StreamKind {
    Lines(LineReader),
    Array(ArrayReader),
    Empty,
}

/// NDJSON read in large blocks; a block ends after its last whole line and
/// the rest is carried into the next one.
struct LineReader {
    file: std::fs::File,
    /// BLAKE3 of every byte read so far (a byte-order mark included).
    read: blake3::Hasher,
    /// Bytes read but not yet handed out (a partial last line).
    carry: Vec<u8>,
    /// Lines handed out so far.
    line: usize,
    /// Records (lines that are not blank) handed out so far.
    records: usize,
    eof: bool,
}

/// How many bytes a batch of NDJSON aims at: about 3,000 partners of the
/// fleet's, enough to keep every core busy. Six batches and their plan
/// lines are in flight in `pmf plan`; at 2 MiB they held 20 MB more of a
/// 1M-partner plan's peak (105 MB) for no time gained.
const BLOCK: usize = 1 << 20;

/// How many bytes to read next: at least [`BLOCK`], or as many as
/// `pending` (what is not handed out yet) when that is more, so a record
/// larger than a block is read in ever larger steps; but never more than
/// takes a record of `pending` bytes one byte past [`MAX_RECORD`].
fn next_read(pending: usize) -> usize {
    BLOCK
        .max(pending)
        .min((MAX_RECORD + 1).saturating_sub(pending).max(1))
}

/// Append `want` bytes of `file` to `bytes` (fewer at its end), hashing
/// them into `read`. True at the end of the file.
fn read_block(
    file: &mut std::fs::File,
    read: &mut blake3::Hasher,
    bytes: &mut Vec<u8>,
    want: usize,
    name: &str,
) -> Result<bool, InputError> {
    bytes.reserve(want);
    let before = bytes.len();
    let n = file
        .take(want as u64)
        .read_to_end(bytes)
        .map_err(|e| InputError::Io(format!("cannot read `{name}`: {e}")))?;
    read.update(bytes.get(before..).unwrap_or_default());
    Ok(n == 0)
}

impl LineReader {
    fn next_batch(&mut self, max: usize, name: &str) -> Result<Batch, InputError> {
        let mut bytes = std::mem::take(&mut self.carry);
        // Read until the block is full and holds a whole line, or the file ends.
        let end = loop {
            if bytes.len() >= BLOCK || self.eof {
                if let Some(i) = bytes.iter().rposition(|&b| b == b'\n') {
                    break i + 1;
                }
                if self.eof {
                    break bytes.len();
                }
                // No newline at all: one line so far, and too long already.
                if bytes.len() > MAX_RECORD {
                    let at = Location::Line(self.line + 1);
                    return Err(InputError::Invalid {
                        file: name.to_string(),
                        at: at.to_string(),
                        partner: None,
                        problem: format!("{} (no newline ends it)", too_long_message(at)),
                    });
                }
            }
            let want = next_read(bytes.len());
            self.eof = read_block(&mut self.file, &mut self.read, &mut bytes, want, name)?;
        };
        self.carry = bytes.split_off(end);
        let mut batch = Batch::default();
        // Lines that are not UTF-8 (by their place in the block) are kept
        // as empty lines in the text and reported as such.
        let mut not_utf8: Vec<usize> = Vec::new();
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let bytes = e.into_bytes();
                let mut text = String::with_capacity(bytes.len());
                for (n, line) in bytes.split_inclusive(|&b| b == b'\n').enumerate() {
                    match std::str::from_utf8(line) {
                        Ok(l) => text.push_str(l),
                        Err(_) => {
                            not_utf8.push(n);
                            text.push('\n');
                        }
                    }
                }
                text
            }
        };
        let mut at = 0;
        for (n, line) in text.split_inclusive('\n').enumerate() {
            let range = at..at + line.len();
            at += line.len();
            self.line += 1;
            let json = if not_utf8.binary_search(&n).is_ok() {
                RawJson::NotUtf8
            } else if line.len() > MAX_RECORD {
                RawJson::TooLong
            } else if line.trim().is_empty() {
                continue;
            } else {
                RawJson::Text(range)
            };
            self.records += 1;
            batch.records.push(RawRecord {
                at: Location::Line(self.line),
                json,
            });
            if batch.records.len() >= max {
                // Hand the rest back for the next batch.
                let mut text = text;
                let mut rest = text.split_off(at).into_bytes();
                rest.extend_from_slice(&self.carry);
                self.carry = rest;
                batch.text = text;
                return Ok(batch);
            }
        }
        if batch.is_empty() && self.records == 0 && self.eof && self.carry.is_empty() {
            return Err(InputError::Invalid {
                file: name.to_string(),
                at: "line 1".into(),
                partner: None,
                problem:
                    "no partner states: the file is empty or blank (at least one partner is needed)"
                        .into(),
            });
        }
        batch.text = text;
        Ok(batch)
    }
}

impl PartnerStream {
    /// Open `path`: a JSON array or NDJSON, both streamed in blocks.
    pub fn open(path: &Path) -> Result<Self, InputError> {
        let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let mut reader = BufReader::with_capacity(1 << 16, file);
        // A UTF-8 byte-order mark (Windows editors write one) is skipped,
        // as RFC 8259 allows.
        let bom = reader.fill_buf().map_err(|e| io(path, e))?.starts_with(BOM);
        if bom {
            reader.consume(BOM.len());
        }
        // Lines of white space before the first record (counted for a pipe,
        // which is not read again).
        let mut blank_lines = 0;
        let first = loop {
            let buf = reader.fill_buf().map_err(|e| io(path, e))?;
            match buf.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(&b) => break Some(b),
                None if buf.is_empty() => break None,
                None => {
                    let n = buf.len();
                    blank_lines += buf.iter().filter(|&&b| b == b'\n').count();
                    reader.consume(n);
                }
            }
        };
        // Start again from the top (after a byte-order mark), reading in
        // blocks of our own; a pipe goes on from the bytes read so far.
        let pending = reader.buffer().to_vec();
        let mut file = reader.into_inner();
        let start = if bom { BOM.len() as u64 } else { 0 };
        let mut read = blake3::Hasher::new();
        if bom {
            read.update(BOM);
        }
        let (carry, skipped_lines) = match file.seek(std::io::SeekFrom::Start(start)) {
            Ok(_) => (Vec::new(), 0),
            Err(e) if e.raw_os_error() == Some(libc::ESPIPE) => {
                read.update(&pending);
                (pending, blank_lines)
            }
            Err(e) => return Err(io(path, e)),
        };
        let kind = if first == Some(b'[') {
            StreamKind::Array(ArrayReader {
                file,
                read,
                carry,
                expect: Expect::Open,
                records: 0,
                line: 1 + skipped_lines,
                eof: false,
            })
        } else {
            StreamKind::Lines(LineReader {
                file,
                read,
                carry,
                line: skipped_lines,
                records: 0,
                eof: false,
            })
        };
        Ok(PartnerStream {
            file: path.display().to_string(),
            kind,
        })
    }

    /// A stream with nothing in it.
    pub fn empty() -> Self {
        PartnerStream {
            file: String::new(),
            kind: StreamKind::Empty,
        }
    }

    /// The file's name as given.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// BLAKE3 (hex) of the bytes read so far: once the stream has handed
    /// out its last batch, of the whole file as it was read.
    pub(crate) fn read_digest(&self) -> String {
        match &self.kind {
            StreamKind::Lines(r) => r.read.finalize().to_hex().to_string(),
            StreamKind::Array(r) => r.read.finalize().to_hex().to_string(),
            StreamKind::Empty => blake3::Hasher::new().finalize().to_hex().to_string(),
        }
    }

    /// The BLAKE3 (hex) of a regular file's bytes, hashed on every core
    /// without moving the stream (`None` for a pipe, which can be read
    /// only once).
    pub(crate) fn hash_ahead(&self) -> Result<Option<String>, InputError> {
        let Some(file) = self.handle() else {
            return Ok(None);
        };
        let cannot =
            |e: std::io::Error| InputError::Io(format!("cannot read `{}`: {e}", self.file));
        let meta = file.metadata().map_err(cannot)?;
        if !meta.is_file() {
            return Ok(None);
        }
        super::file_digest::blake3_hex(file, meta.len())
            .map(Some)
            .map_err(cannot)
    }

    /// The size of the file in bytes (0 when unknown).
    pub(crate) fn total_bytes(&self) -> u64 {
        self.handle()
            .and_then(|file| file.metadata().ok())
            .map_or(0, |m| m.len())
    }

    /// The file the stream reads (none for an empty stream).
    fn handle(&self) -> Option<&std::fs::File> {
        match &self.kind {
            StreamKind::Lines(r) => Some(&r.file),
            StreamKind::Array(r) => Some(&r.file),
            StreamKind::Empty => None,
        }
    }

    /// The next batch of at most `max` records (empty at the end).
    pub(crate) fn next_batch(&mut self, max: usize) -> Result<Batch, InputError> {
        match &mut self.kind {
            StreamKind::Array(reader) => reader.next_batch(max, &self.file),
            StreamKind::Lines(reader) => reader.next_batch(max, &self.file),
            StreamKind::Empty => Ok(Batch::default()),
        }
    }
}

/// A JSON array read in large blocks, element by element: each element's
/// text is one record, read like an NDJSON line (bounded memory, the same
/// fast reader). The scan only finds where elements start and end; each
/// element's JSON is checked when it is read.
struct ArrayReader {
    file: std::fs::File,
    /// BLAKE3 of every byte read so far (a byte-order mark included).
    read: blake3::Hasher,
    /// Bytes read but not scanned yet (from the start of an element that a
    /// block cut off).
    carry: Vec<u8>,
    /// What comes next in the array.
    expect: Expect,
    /// Elements handed out so far.
    records: usize,
    /// The line `carry` starts on (1-based), for messages.
    line: usize,
    eof: bool,
}

/// Where a scan is in a JSON array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    /// The opening `[`.
    Open,
    /// The first element, or `]` (an empty array).
    FirstOrClose,
    /// An element (after a comma).
    Element,
    /// `,` or `]` after an element.
    CommaOrClose,
    /// Nothing but white space: the array is closed.
    End,
}

/// The end of the JSON value starting at `bytes[start]`, if `bytes` holds
/// all of it: strings and brackets are followed, nothing else is checked.
pub(super) fn value_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = start;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                i += 1;
                loop {
                    match *bytes.get(i)? {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b'[' | b'{' => depth += 1,
            b']' | b'}' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            b',' | b']' | b'}' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

impl ArrayReader {
    fn next_batch(&mut self, max: usize, name: &str) -> Result<Batch, InputError> {
        let mut bytes = std::mem::take(&mut self.carry);
        let mut ranges: Vec<std::ops::Range<usize>> = Vec::new();
        // Where the scan stands: everything before `at` is handed out.
        let mut at = 0;
        loop {
            // Scan what is there.
            while ranges.len() < max {
                while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
                    at += 1;
                }
                let Some(&b) = bytes.get(at) else { break };
                let fail = |problem: String, at: usize| {
                    let line = self.line + bytes.iter().take(at).filter(|&&b| b == b'\n').count();
                    Err(InputError::Invalid {
                        file: name.to_string(),
                        at: format!("line {line}"),
                        partner: None,
                        problem,
                    })
                };
                match (self.expect, b) {
                    (Expect::Open, b'[') => self.expect = Expect::FirstOrClose,
                    (Expect::FirstOrClose | Expect::CommaOrClose, b']') => {
                        self.expect = Expect::End;
                    }
                    (Expect::CommaOrClose, b',') => self.expect = Expect::Element,
                    (Expect::FirstOrClose | Expect::Element, _) => {
                        let Some(end) = value_end(&bytes, at) else {
                            break;
                        };
                        if end == at {
                            return fail(
                                format!(
                                    "not a valid JSON array: expected a record after record {}",
                                    self.records
                                ),
                                at,
                            );
                        }
                        ranges.push(at..end);
                        self.records += 1;
                        self.expect = Expect::CommaOrClose;
                        at = end;
                        continue;
                    }
                    (Expect::CommaOrClose, _) => {
                        return fail(
                            format!(
                                "not a valid JSON array: expected `,` or `]` after record {}",
                                self.records
                            ),
                            at,
                        );
                    }
                    (Expect::End, _) => {
                        return fail("not a valid JSON array: text after its `]`".into(), at);
                    }
                    (Expect::Open, _) => {
                        return fail("not a valid JSON array: no `[`".into(), at);
                    }
                }
                at += 1;
            }
            // A batch holds what one block gave; read on only for a first
            // element that is not all there yet (it may be larger than a
            // block) or when nothing was there to scan.
            if !ranges.is_empty() || self.eof {
                break;
            }
            let pending = bytes.len() - at;
            if pending > MAX_RECORD {
                let line = self.line + bytes.iter().take(at).filter(|&&b| b == b'\n').count();
                return Err(InputError::Invalid {
                    file: name.to_string(),
                    at: format!("line {line}"),
                    partner: None,
                    problem: format!(
                        "{} (record {})",
                        too_long_message(Location::Record(self.records + 1)),
                        self.records + 1
                    ),
                });
            }
            self.eof = read_block(
                &mut self.file,
                &mut self.read,
                &mut bytes,
                next_read(pending),
                name,
            )?;
        }
        if self.eof && ranges.is_empty() && self.expect != Expect::End {
            let line = self.line + bytes.iter().filter(|&&b| b == b'\n').count();
            return Err(InputError::Invalid {
                file: name.to_string(),
                at: format!("line {line}"),
                partner: None,
                problem: format!(
                    "not a valid JSON array: the file ends before its `]` (after record {})",
                    self.records
                ),
            });
        }
        if ranges.is_empty() && self.expect == Expect::End && self.records == 0 {
            return Err(InputError::Invalid {
                file: name.to_string(),
                at: "line 1".into(),
                partner: None,
                problem: "no partner states: the array is empty (at least one partner is needed)"
                    .into(),
            });
        }
        // Everything from `at` on is scanned again with the next batch.
        self.carry = bytes.split_off(at);
        self.line += bytes.iter().filter(|&&b| b == b'\n').count();
        let first = self.records - ranges.len();
        let mut batch = Batch::default();
        match String::from_utf8(bytes) {
            Ok(text) => {
                batch.text = text;
                for (i, range) in ranges.into_iter().enumerate() {
                    let json = if range.len() > MAX_RECORD {
                        RawJson::TooLong
                    } else {
                        RawJson::Text(range)
                    };
                    batch.records.push(RawRecord {
                        at: Location::Record(first + i + 1),
                        json,
                    });
                }
            }
            Err(e) => {
                // Keep the elements that are UTF-8; report the others.
                let bytes = e.into_bytes();
                for (i, range) in ranges.into_iter().enumerate() {
                    let json = match bytes.get(range).map(std::str::from_utf8) {
                        Some(Ok(element)) => {
                            let start = batch.text.len();
                            batch.text.push_str(element);
                            RawJson::Text(start..batch.text.len())
                        }
                        // Not UTF-8 (the ranges are the scan's own, in `bytes`).
                        Some(Err(_)) | None => RawJson::NotUtf8,
                    };
                    batch.records.push(RawRecord {
                        at: Location::Record(first + i + 1),
                        json,
                    });
                }
            }
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Arrays of any JSON values, spaced any way, read in batches of any
        /// size: the records are the array's elements, in order.
        #[test]
        fn arrays_stream_as_their_elements(
            elements in proptest::collection::vec(
                proptest::sample::select(vec![
                    "{}", "[]", "1", "-2.5e3", "true", "null", "\"\"", "\"]\"", "\"a,b\"",
                    "\"q\\\"]\"", "\"\\\\\"", "{\"a\":[1,{\"b\":\"}\"}]}", "[[],[[]]]",
                    "{\"id\":\"x\",\"s\":\"[{\"}", "\"\u{e9}\"",
                ]),
                0..12,
            ),
            spaces in proptest::collection::vec(
                proptest::sample::select(vec!["", " ", "\n", "\t", "\r\n"]),
                30,
            ),
            max in 1usize..4,
        ) {
            let mut space = spaces.iter().cycle();
            let mut text = format!("{}[", space.next().unwrap());
            for (i, e) in elements.iter().enumerate() {
                if i > 0 {
                    text.push_str(space.next().unwrap());
                    text.push(',');
                }
                text.push_str(space.next().unwrap());
                text.push_str(e);
            }
            text.push_str(space.next().unwrap());
            text.push(']');
            text.push_str(space.next().unwrap());
            let expected: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("array.json");
            std::fs::write(&path, &text).unwrap();
            let mut stream = PartnerStream::open(&path).unwrap();
            if expected.is_empty() {
                // No partner at all is an error, not an empty plan.
                let refused = matches!(
                    stream.next_batch(max),
                    Err(InputError::Invalid { problem, .. }) if problem.contains("array is empty")
                );
                proptest::prop_assert!(refused, "{}", text);
                return Ok(());
            }
            let mut read = Vec::new();
            loop {
                let batch = stream.next_batch(max).unwrap();
                if batch.is_empty() {
                    break;
                }
                proptest::prop_assert!(batch.records.len() <= max);
                for r in &batch.records {
                    let RawJson::Text(range) = &r.json else {
                        panic!("an element read as not UTF-8");
                    };
                    read.push(serde_json::from_str::<serde_json::Value>(&batch.text[range.clone()]).unwrap());
                    proptest::prop_assert_eq!(r.at, Location::Record(read.len()));
                }
            }
            proptest::prop_assert_eq!(read, expected, "{}", text);
        }
    }
}
