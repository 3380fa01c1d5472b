//! Plans read for people: a plan file streamed entry by entry, keeping
//! only what `pmf plan show` and `pmf plan diff` print (never a partner's
//! carried state or observed metrics, never the whole plan).
//!
//! The reader runs on a thread of its own and hands entries over in
//! batches; [`PlanStream`] is the pulling end. It reads any JSON layout
//! of a plan (keys in any order, any white space), hashes the bytes as it
//! goes (the plan hash approvals sign), and checks the format version as
//! soon as it is read.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::de::{DeserializeSeed, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::engine::Action;
use super::plan::{
    FORMAT_VERSION, OLDEST_FORMAT_READ, PlanHeader, Prediction, Totals, reads_format,
};

/// What a reviewer sees of one partner's plan entry: everything but the
/// carried state and observed metrics (skipped while reading).
#[derive(Deserialize, Debug, Clone, PartialEq)]
pub struct EntryView {
    /// Partner id.
    pub id: String,
    /// SHA-256 (hex) of the state the entry carries, as written: pmf
    /// writes states canonically, so equal states give equal digests.
    #[serde(rename = "state", deserialize_with = "digest_of_text")]
    pub state_text_digest: String,
    /// Current version.
    pub from: Option<String>,
    /// Target version.
    pub to: Option<String>,
    /// Detected migration type (`None`: nothing matched or nothing to do).
    #[serde(rename = "type")]
    pub migration: Option<String>,
    /// Categories the change touches.
    pub categories: Vec<String>,
    /// Authorities whose approval is required.
    pub approvals_required: Vec<String>,
    /// Predicted outcome.
    pub predicted: Prediction,
    /// Predicted chance of a fallback.
    pub fallback_risk: f64,
    /// A target for this partner only, if any.
    #[serde(default)]
    pub target: Option<serde_json::Value>,
}

/// SHA-256 (hex) of a JSON value's text, as written.
fn digest_of_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    use sha2::Digest;
    let raw: Box<serde_json::value::RawValue> = Deserialize::deserialize(d)?;
    Ok(hex::encode(sha2::Sha256::digest(raw.get().as_bytes())))
}

/// A count, and the mildest action among what was counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Partners counted.
    pub partners: usize,
    /// The mildest action among them, `none` (nothing to migrate) aside
    /// unless it is the only one: for a band, the band's own action
    /// (other rules only ever make a partner's action more severe).
    pub mildest: Option<Action>,
}

impl Tally {
    /// Count a partner whose action is `action`.
    pub fn add(&mut self, action: Action) {
        self.partners += 1;
        self.mildest = Some(match self.mildest {
            None => action,
            Some(Action::None) => action,
            Some(m) if action == Action::None => m,
            Some(m) => m.min(action),
        });
    }
}

/// What the stream yields, in file order.
#[derive(Debug)]
pub enum PlanItem {
    /// The plan's header.
    Header(Box<PlanHeader>),
    /// The next partner's entry.
    Entry(Box<EntryView>),
    /// The totals the plan recorded when it was written.
    Totals(Totals),
}

/// Why a plan could not be read: every case is a usage or I/O problem
/// (exit 2), and the message names the file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanReadError(pub String);

/// Entries handed over at a time (one channel message).
const BATCH: usize = 512;

/// A message from the reading thread.
enum Message {
    Header(Box<PlanHeader>),
    Entries(Vec<EntryView>),
    Totals(Totals),
    /// The end of the file: the BLAKE3 (hex) of its bytes.
    End(String),
    Failed(PlanReadError),
}

/// A plan file being read on a thread of its own: pull its items with
/// [`PlanStream::next_item`] until `None`, then ask for [`PlanStream::hash`].
pub struct PlanStream {
    path: PathBuf,
    rx: Receiver<Message>,
    pending: std::vec::IntoIter<EntryView>,
    hash: Option<String>,
    done: bool,
    /// The header said the plan replaces states: its entries, which have
    /// no migration type, are shown as of type [`REPLACEMENT_TYPE`].
    replacing: bool,
}

/// The type a replacement plan's entries are shown with (they carry none:
/// a replacement is no migration of the flow).
pub const REPLACEMENT_TYPE: &str = "replacement";

impl PlanStream {
    /// Open `path` and start reading it. A file that cannot be opened is
    /// an error at once, naming the path.
    pub fn open(path: &Path) -> Result<PlanStream, PlanReadError> {
        let file = pmf_syntax::read::refuse_device(path)
            .and_then(|()| std::fs::File::open(path))
            .map_err(|e| {
                PlanReadError(format!(
                    "cannot read `{}`: {}",
                    path.display(),
                    pmf_syntax::diagnostics::io_reason(&e)
                ))
            })?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(PlanReadError(format!(
                "cannot read `{}`: it is a directory",
                path.display()
            )));
        }
        let (tx, rx) = sync_channel(4);
        let shown = path.display().to_string();
        let reopen = path.to_path_buf();
        std::thread::spawn(move || read_into(file, &reopen, &shown, &tx));
        Ok(PlanStream {
            path: path.to_path_buf(),
            rx,
            pending: Vec::new().into_iter(),
            hash: None,
            done: false,
            replacing: false,
        })
    }

    /// `e` as shown: a replacement's entry typed [`REPLACEMENT_TYPE`].
    fn entry(&self, mut e: EntryView) -> PlanItem {
        if self.replacing && e.migration.is_none() {
            e.migration = Some(REPLACEMENT_TYPE.to_string());
        }
        PlanItem::Entry(Box::new(e))
    }

    /// The file being read, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next item of the plan, `None` at its end (or after an error).
    pub fn next_item(&mut self) -> Option<Result<PlanItem, PlanReadError>> {
        if let Some(e) = self.pending.next() {
            return Some(Ok(self.entry(e)));
        }
        if self.done {
            return None;
        }
        loop {
            let message = match self.rx.recv() {
                Ok(m) => m,
                Err(_) => {
                    self.done = true;
                    return Some(Err(PlanReadError(format!(
                        "cannot read `{}`: the reader stopped",
                        self.path.display()
                    ))));
                }
            };
            match message {
                Message::Header(h) => {
                    self.replacing = h.kind == crate::plan::PlanKind::Replace;
                    return Some(Ok(PlanItem::Header(h)));
                }
                Message::Totals(t) => return Some(Ok(PlanItem::Totals(t))),
                Message::Entries(batch) => {
                    self.pending = batch.into_iter();
                    if let Some(e) = self.pending.next() {
                        return Some(Ok(self.entry(e)));
                    }
                }
                Message::End(hash) => {
                    self.hash = Some(hash);
                    self.done = true;
                    return None;
                }
                Message::Failed(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
    }

    /// The BLAKE3 (hex) of the whole file, once it was read to its end.
    pub fn hash(&self) -> Option<&str> {
        self.hash.as_deref()
    }
}

/// Hashes what is read through it.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(buf.get(..n).unwrap_or(buf));
        Ok(n)
    }
}

/// Why the reading stopped early, besides a JSON error.
const RECEIVER_GONE: &str = "\u{0}receiver gone";

/// Read the plan in `file` and send its items to `tx`: as `pmf plan`
/// lays it out, a line per entry ([`read_lines`]), else (or from where
/// that layout ends) as any JSON ([`read_json`]).
fn read_into(file: std::fs::File, path: &Path, shown: &str, tx: &SyncSender<Message>) {
    let sent = match read_lines(file, tx) {
        Lines::Done(hash) => {
            let _ = tx.send(Message::End(hash));
            return;
        }
        Lines::ReceiverGone => return,
        Lines::Failed(e) => {
            let _ = tx.send(Message::Failed(PlanReadError(format!(
                "cannot read `{shown}`: {}",
                pmf_syntax::diagnostics::io_reason(&e)
            ))));
            return;
        }
        Lines::OtherLayout(sent) => sent,
    };
    match std::fs::File::open(path) {
        Ok(file) => read_json(file, shown, tx, sent),
        Err(e) => {
            let _ = tx.send(Message::Failed(PlanReadError(format!(
                "cannot read `{shown}`: {}",
                pmf_syntax::diagnostics::io_reason(&e)
            ))));
        }
    }
}

/// What was sent already when [`read_lines`] gave up: [`read_json`]
/// reads the file again and sends only what follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Sent {
    header: bool,
    entries: usize,
}

/// How [`read_lines`] ended.
enum Lines {
    /// The whole plan was sent; the BLAKE3 of the file.
    Done(String),
    /// The file is not laid out as `pmf plan` writes it (from some line
    /// on): read it as JSON, past what was sent.
    OtherLayout(Sent),
    /// The file could not be read.
    Failed(std::io::Error),
    /// Nobody listens any more.
    ReceiverGone,
}

/// The first line of a plan as `pmf plan` writes it, up to its format.
const FIRST_LINE: &[u8] = b"{\"format_version\":";
/// What follows the format (one digit) on the first line, up to the header.
const HEADER_OPEN: &[u8] = b",\"header\":";
/// The end of the first line, after the header.
const ENTRIES_OPEN: &[u8] = b",\"entries\":[";
/// The last line, up to the totals.
const TOTALS_LINE: &[u8] = b"],\"totals\":";

/// Read a plan as `pmf plan` lays it out: the format version, the header
/// and `"entries":[` on the first line, one entry per line (a `,` after
/// each but the last), then `],"totals":{...}}`, each part parsed from its
/// slice (much faster than JSON read from a stream). Anything else is
/// [`Lines::OtherLayout`], and the JSON reader reads the file; a test
/// holds that both send the same items.
fn read_lines(file: std::fs::File, tx: &SyncSender<Message>) -> Lines {
    use std::io::BufRead;
    let mut hashing = Hashing {
        inner: file,
        hasher: blake3::Hasher::new(),
    };
    let mut sent = Sent::default();
    let mut r = std::io::BufReader::with_capacity(1 << 20, &mut hashing);
    let mut line = Vec::new();
    let mut next_line = |line: &mut Vec<u8>| -> std::io::Result<bool> {
        line.clear();
        let n = r.read_until(b'\n', line)?;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        Ok(n > 0)
    };
    macro_rules! read {
        () => {
            match next_line(&mut line) {
                Ok(more) => more,
                Err(e) => return Lines::Failed(e),
            }
        };
    }
    if !read!() {
        return Lines::OtherLayout(sent);
    }
    let header = line
        .strip_prefix(FIRST_LINE)
        .and_then(|l| match l.split_first() {
            Some((&digit, rest)) if reads_format(u64::from(digit.wrapping_sub(b'0'))) => {
                rest.strip_prefix(HEADER_OPEN)
            }
            _ => None,
        })
        .and_then(|l| l.strip_suffix(ENTRIES_OPEN))
        .and_then(|h| serde_json::from_slice::<PlanHeader>(h).ok());
    let Some(header) = header else {
        return Lines::OtherLayout(sent);
    };
    if tx.send(Message::Header(Box::new(header))).is_err() {
        return Lines::ReceiverGone;
    }
    sent.header = true;
    let mut batch = Vec::with_capacity(BATCH);
    // Whether an entry may come next (at the start, or after a `,`), and
    // whether the array may end (at the start, or after an entry without).
    let (mut entry_next, mut end_next) = (true, true);
    loop {
        if !read!() {
            return Lines::OtherLayout(sent);
        }
        if let Some(rest) = line.strip_prefix(TOTALS_LINE) {
            let totals = rest
                .strip_suffix(b"}")
                .and_then(|t| serde_json::from_slice::<Totals>(t).ok());
            let Some(totals) = totals.filter(|_| end_next) else {
                return Lines::OtherLayout(sent);
            };
            // Only white space after the plan.
            loop {
                if !read!() {
                    break;
                }
                if !line.iter().all(u8::is_ascii_whitespace) {
                    return Lines::OtherLayout(sent);
                }
            }
            for m in [Message::Entries(batch), Message::Totals(totals)] {
                if tx.send(m).is_err() {
                    return Lines::ReceiverGone;
                }
            }
            return Lines::Done(hashing.hasher.finalize().to_hex().to_string());
        }
        let (text, comma) = match line.strip_suffix(b",") {
            Some(t) => (t, true),
            None => (line.as_slice(), false),
        };
        let entry = serde_json::from_slice::<EntryView>(text).ok();
        let Some(entry) = entry.filter(|_| entry_next) else {
            return Lines::OtherLayout(sent);
        };
        (entry_next, end_next) = (comma, !comma);
        batch.push(entry);
        if batch.len() == BATCH {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
            if tx.send(Message::Entries(full)).is_err() {
                return Lines::ReceiverGone;
            }
            sent.entries += BATCH;
        }
    }
}

/// Read the plan in `file` as JSON of any layout and send its items to
/// `tx`, past those `sent` already.
fn read_json(file: std::fs::File, shown: &str, tx: &SyncSender<Message>, sent: Sent) {
    let mut hashing = Hashing {
        inner: file,
        hasher: blake3::Hasher::new(),
    };
    let outcome = {
        let mut buffered = std::io::BufReader::with_capacity(1 << 20, &mut hashing);
        let read = {
            let mut de = serde_json::Deserializer::from_reader(&mut buffered);
            de.deserialize_map(PlanVisitor { tx, shown, sent })
                .and_then(|seen| de.end().map(|()| seen))
        };
        // The bytes after the document (white space) belong to the hash too.
        read.and_then(|seen| {
            std::io::copy(&mut buffered, &mut std::io::sink())
                .map(|_| seen)
                .map_err(serde_json::Error::io)
        })
    };
    let message = match outcome {
        Ok(Seen { version: None }) => Message::Failed(PlanReadError(format!(
            "`{shown}` is not a plan (no `format_version`)"
        ))),
        Ok(Seen { version: Some(_) }) => {
            Message::End(hashing.hasher.finalize().to_hex().to_string())
        }
        Err(e) => {
            let text = e.to_string();
            if text.starts_with(RECEIVER_GONE) {
                return;
            }
            if let Some(own) = text.strip_prefix(OWN_MESSAGE) {
                // Our own message, with serde's position after it.
                Message::Failed(PlanReadError(own_message(own)))
            } else if e.is_io() {
                Message::Failed(PlanReadError(format!("cannot read `{shown}`: {text}")))
            } else {
                Message::Failed(PlanReadError(format!("`{shown}` is not a plan: {text}")))
            }
        }
    };
    let _ = tx.send(message);
}

/// Marks an error message that is whole already (not a JSON syntax one).
const OWN_MESSAGE: &str = "\u{1}";

/// A message of ours, without the position serde appends to it.
fn own_message(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text.to_string(),
    }
}

/// What the top-level visitor saw.
struct Seen {
    version: Option<u64>,
}

struct PlanVisitor<'a> {
    tx: &'a SyncSender<Message>,
    shown: &'a str,
    /// What was sent before (by the line reader): not sent again.
    sent: Sent,
}

impl<'de> Visitor<'de> for PlanVisitor<'_> {
    type Value = Seen;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plan (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Seen, A::Error> {
        let shown = self.shown;
        let mut seen = Seen { version: None };
        let send = |m: Message| self.tx.send(m).map_err(|_| A::Error::custom(RECEIVER_GONE));
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format_version" => {
                    let v: serde_json::Value = map.next_value()?;
                    let version = v.as_u64().ok_or_else(|| {
                        A::Error::custom(format!(
                            "{OWN_MESSAGE}`{shown}` is not a plan (its `format_version` is {v})"
                        ))
                    })?;
                    check_version(shown, version)
                        .map_err(|m| A::Error::custom(format!("{OWN_MESSAGE}{m}")))?;
                    seen.version = Some(version);
                }
                "header" => {
                    let header: PlanHeader = map.next_value()?;
                    if !self.sent.header {
                        send(Message::Header(Box::new(header)))?;
                    }
                }
                "entries" => map.next_value_seed(Entries {
                    tx: self.tx,
                    skip: self.sent.entries,
                })?,
                "totals" => {
                    let totals: Totals = map.next_value()?;
                    send(Message::Totals(totals))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(seen)
    }
}

/// The message for a plan of another format than this build reads.
fn check_version(shown: &str, version: u64) -> Result<(), String> {
    if reads_format(version) {
        Ok(())
    } else if version < u64::from(OLDEST_FORMAT_READ) {
        Err(format!(
            "`{shown}` has plan format {version}, made by an older pmf; this pmf reads formats \
             {OLDEST_FORMAT_READ} to {FORMAT_VERSION}: plan again"
        ))
    } else {
        Err(format!(
            "`{shown}` has plan format {version}; this pmf reads formats {OLDEST_FORMAT_READ} to {FORMAT_VERSION}"
        ))
    }
}

/// The `entries` array, sent on in batches as it is read.
struct Entries<'a> {
    tx: &'a SyncSender<Message>,
    /// Entries sent before: read, not sent again.
    skip: usize,
}

impl<'de> DeserializeSeed<'de> for Entries<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Entries<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of plan entries")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut batch = Vec::with_capacity(BATCH);
        let mut skip = self.skip;
        while let Some(entry) = seq.next_element::<EntryView>()? {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            batch.push(entry);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                self.tx
                    .send(Message::Entries(full))
                    .map_err(|_| A::Error::custom(RECEIVER_GONE))?;
            }
        }
        if !batch.is_empty() {
            self.tx
                .send(Message::Entries(batch))
                .map_err(|_| A::Error::custom(RECEIVER_GONE))?;
        }
        Ok(())
    }
}

/// Names from a plan (categories, authorities) as they may be printed:
/// each [`printable`], joined by `, `; `none` for no name.
pub fn printable_list<S: AsRef<str>>(names: &[S]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    names
        .iter()
        .map(|n| printable(n.as_ref()).into_owned())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Text from a plan as it may be printed: control, bidi and separator
/// characters written as `\u{...}` escapes (a plan is a file anyone can
/// edit; its text must not forge or hide output).
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(super::value::is_forbidden_in_id) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if super::value::is_forbidden_in_id(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(text: &str) -> (Vec<String>, Result<Option<String>, String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, text).unwrap();
        let mut stream = PlanStream::open(&path).unwrap();
        let mut seen = Vec::new();
        while let Some(item) = stream.next_item() {
            match item {
                Ok(PlanItem::Header(h)) => seen.push(format!("header {}", h.policy.name)),
                Ok(PlanItem::Entry(e)) => seen.push(format!("entry {}", e.id)),
                Ok(PlanItem::Totals(t)) => seen.push(format!("totals {}", t.partners)),
                Err(e) => return (seen, Err(e.0.replace(&path.display().to_string(), "P"))),
            }
        }
        (seen, Ok(stream.hash().map(str::to_string)))
    }

    const ENTRY: &str = r#"{"id":"ID","from":"1.0.0","to":"2.0.0","type":"soft","categories":["structural"],"approvals_required":["TSC"],"predicted":{"score":90.0,"band":"stable","action":"proceed","reason":"r","validation":"pass"},"fallback_risk":0.1,"state":{"deep":[1,{"x":[]}]},"observed":null}"#;

    fn header() -> &'static str {
        r#"{"kind":"migrate","policy":{"name":"fleet","hash":"h"},"created_at":"t","policy_sources":{},"partners":{"file":"p","blake3":null},"target":{"file":"t","blake3":null},"observed":null,"history":"x","target_all":null}"#
    }

    #[test]
    fn reads_in_any_key_order_and_hashes_every_byte() {
        let text = format!(
            "{{\"totals\":{{\"partners\":2,\"by_type\":{{}},\"by_band\":{{}},\"by_action\":{{}}}},\n \"entries\":[{},\n{}],\"header\":{},\"format_version\":3,\"later\":[1]}}\n\n",
            ENTRY.replace("ID", "a"),
            ENTRY.replace("ID", "b"),
            header()
        );
        let (seen, hash) = items(&text);
        assert_eq!(seen, ["totals 2", "entry a", "entry b", "header fleet"]);
        assert_eq!(
            hash,
            Ok(Some(blake3::hash(text.as_bytes()).to_hex().to_string()))
        );
    }

    #[test]
    fn many_entries_cross_batches_in_order() {
        let entries: Vec<String> = (0..BATCH * 2 + 3)
            .map(|i| ENTRY.replace("ID", &format!("p{i}")))
            .collect();
        let text = format!(
            "{{\"format_version\":3,\"header\":{},\"entries\":[{}]}}",
            header(),
            entries.join(",\n")
        );
        let (seen, hash) = items(&text);
        assert!(hash.is_ok());
        assert_eq!(seen.len(), BATCH * 2 + 4);
        assert_eq!(seen[1], "entry p0");
        assert_eq!(seen[BATCH * 2 + 3], format!("entry p{}", BATCH * 2 + 2));
    }

    #[test]
    fn what_is_not_a_plan_is_named() {
        assert_eq!(
            items("not json").1,
            Err("`P` is not a plan: expected ident at line 1 column 2".into())
        );
        assert_eq!(
            items("[1]").1,
            Err("`P` is not a plan: invalid type: sequence, expected a plan (a JSON object) at line 1 column 1".into())
        );
        assert_eq!(
            items("{\"a\":1}").1,
            Err("`P` is not a plan (no `format_version`)".into())
        );
        assert_eq!(
            items("{\"format_version\":2,\"entries\":[]}").1,
            Err(
                "`P` has plan format 2, made by an older pmf; this pmf reads formats 3 to 5: plan again"
                    .into()
            )
        );
        assert_eq!(
            items("{\"format_version\":\"3\"}").1,
            Err("`P` is not a plan (its `format_version` is \"3\")".into())
        );
        let (seen, e) = items(&format!(
            "{{\"format_version\":3,\"entries\":[{},{{\"id\":1}}]}}",
            ENTRY.replace("ID", "a")
        ));
        assert_eq!(seen, Vec::<String>::new(), "the first batch is not sent");
        assert!(
            e.as_ref()
                .is_err_and(|m| m.starts_with("`P` is not a plan: invalid type: integer `1`")),
            "{e:?}"
        );
        assert!(items("{\"format_version\":3} x").1.is_err());
    }

    /// A plan as `pmf plan` lays it out, with `n` entries.
    fn pmf_layout(n: usize) -> String {
        pmf_layout_of(n, 4)
    }

    /// A plan of format `version` as `pmf plan` lays it out, with `n`
    /// entries (format 3 with a `state_digest` each).
    fn pmf_layout_of(n: usize, version: u32) -> String {
        let entries: Vec<String> = (0..n)
            .map(|i| {
                let entry = ENTRY.replace("ID", &format!("p{i}"));
                if version == 3 {
                    entry.replacen(",\"from\"", ",\"state_digest\":\"d\",\"from\"", 1)
                } else {
                    entry
                }
            })
            .collect();
        format!(
            "{{\"format_version\":{version},\"header\":{},\"entries\":[\n{}\n],\"totals\":{{\"partners\":{n},\"by_type\":{{}},\"by_band\":{{}},\"by_action\":{{}}}}}}\n",
            header(),
            entries.join(",\n")
        )
    }

    /// Every entry `text` gives, and how the line reader ended on it.
    fn read_both_ways(text: &str) -> (Vec<EntryView>, Vec<EntryView>, bool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        std::fs::write(&path, text).unwrap();
        let entries = |rx: std::sync::mpsc::Receiver<Message>| {
            rx.try_iter()
                .flat_map(|m| match m {
                    Message::Entries(batch) => batch,
                    _ => Vec::new(),
                })
                .collect::<Vec<EntryView>>()
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(1 << 16);
        let done = matches!(
            read_lines(std::fs::File::open(&path).unwrap(), &tx),
            Lines::Done(_)
        );
        let by_lines = entries(rx);
        let plan: serde_json::Value = serde_json::from_str(text).unwrap();
        let by_json = plan["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str::<EntryView>(&e.to_string()).unwrap())
            .collect();
        (by_lines, by_json, done)
    }

    /// Plans of every format this build reads are read line by line, and
    /// their entries (the state's digest included) are those the JSON
    /// reader gives; a format it does not read is left to the JSON reader.
    #[test]
    fn the_line_reader_reads_every_format_read() {
        for version in [OLDEST_FORMAT_READ, FORMAT_VERSION] {
            let (by_lines, by_json, done) = read_both_ways(&pmf_layout_of(5, version));
            assert!(done, "format {version}: not read line by line");
            assert_eq!(by_lines.len(), 5);
            assert_eq!(by_lines, by_json, "format {version}");
            assert_eq!(
                by_lines[0].state_text_digest,
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    br#"{"deep":[1,{"x":[]}]}"#
                ))
            );
        }
        let (by_lines, _, done) = read_both_ways(&pmf_layout_of(5, 2));
        assert!(!done && by_lines.is_empty(), "format 2 read line by line");
    }

    /// The line reader (`pmf plan`'s layout) and the JSON reader (any
    /// other, or the rest of a file whose layout changes half-way) send
    /// the same items, and each hashes the whole file.
    #[test]
    fn the_line_reader_answers_as_the_json_reader() {
        let n = BATCH * 2 + 77;
        let lines = pmf_layout(n);
        let (fast, hash) = items(&lines);
        assert_eq!(
            hash,
            Ok(Some(blake3::hash(lines.as_bytes()).to_hex().to_string()))
        );
        assert_eq!(fast.len(), n + 2);
        assert_eq!(fast[0], "header fleet");
        assert_eq!(fast[n + 1], format!("totals {n}"));
        // Any other layout: white space between every token.
        let spaced = lines.replace(",\n", "\n ,\t").replace("\":", "\" :\r\n ");
        let (slow, hash) = items(&spaced);
        assert!(slow == fast, "the JSON reader disagrees");
        assert_eq!(
            hash,
            Ok(Some(blake3::hash(spaced.as_bytes()).to_hex().to_string()))
        );
        // The layout broken after the first batch was sent: an entry cut
        // over two lines, and one with a key in another order.
        for (from, to) in [
            (
                format!("{{\"id\":\"p{}\",", BATCH + 40),
                format!("{{\"id\":\"p{}\",\n", BATCH + 40),
            ),
            ("],\"totals\":".to_string(), "]\n,\"totals\":".to_string()),
            ("\"entries\":[\n".to_string(), "\"entries\":\n[".to_string()),
            ("\n],\"totals\"".to_string(), ",\n],\"totals\"".to_string()),
        ] {
            let broken = lines.replacen(&from, &to, 1);
            assert_ne!(broken, lines);
            let (read, hash) = items(&broken);
            if serde_json::from_str::<serde_json::Value>(&broken).is_ok() {
                assert!(read == fast, "{to:?}: the readers disagree");
                assert_eq!(
                    hash,
                    Ok(Some(blake3::hash(broken.as_bytes()).to_hex().to_string()))
                );
            } else {
                // A trailing comma: not JSON, whichever reader finds it.
                assert!(hash.is_err(), "{to:?}");
            }
        }
        // Trailing white space is the plan's; anything else is not.
        let (read, hash) = items(&format!("{lines}\n  \n"));
        assert_eq!((read.len(), hash.is_ok()), (n + 2, true));
        assert!(items(&format!("{lines}x")).1.is_err());
        // An empty plan.
        let (read, hash) = items(&pmf_layout(0).replace("[\n\n]", "[\n]"));
        assert_eq!(
            (read, hash.is_ok()),
            (
                vec!["header fleet".to_string(), "totals 0".to_string()],
                true
            )
        );
    }

    #[test]
    fn printable_escapes_controls() {
        assert_eq!(printable("p-1"), "p-1");
        assert_eq!(printable("a\u{1b}[2Jb\u{202e}"), "a\\u{001b}[2Jb\\u{202e}");
    }
}
