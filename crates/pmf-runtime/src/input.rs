//! Reading partner states (streamed by [`super::stream`]), targets and
//! observed metrics, each validated against the partner schema.
//!
//! Inputs are strict and bounded: a JSON object that names a key twice, a
//! partner id that is empty, padded with white space or holds a control
//! character, a record over [`MAX_RECORD`](super::stream::MAX_RECORD) bytes and a target or observed
//! file over [`MAX_WHOLE_FILE`] bytes are errors. When a partner file has a
//! bad record, the whole file is read again to report every bad record (the
//! first [`MAX_REPORTED`], and how many more).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use super::fast::ParseCache;
use super::keyed::{PartnerEntries, Scanner};
use super::stream::{
    Batch, Location, MAX_RECORD, PartnerStream, RawJson, RawRecord, too_long_message,
};
use super::value::{
    Completeness, FieldError, Value, check_unique_keys, from_json, id_problem, record_from_json,
    shown_id,
};
use pmf_compiler::model::types::Type;

/// How many bad records of one file are reported; the others are counted.
pub const MAX_REPORTED: usize = 20;

/// A problem with an input file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The file cannot be read (exit code 2).
    #[error("{0}")]
    Io(String),
    /// A record does not fit the schema or is not JSON (exit code 1).
    #[error("{file}, {at}{}: {problem}", partner_part(partner.as_deref()))]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line (NDJSON) or record number (JSON array).
        at: String,
        /// The partner id, when it could be read.
        partner: Option<String>,
        /// What is wrong.
        problem: String,
    },
    /// Several bad records of one file (exit code 1): the first
    /// [`MAX_REPORTED`], in file order, each an [`InputError::Invalid`].
    #[error("{}", many(errors, *more, file))]
    Many {
        /// The bad records shown.
        errors: Vec<InputError>,
        /// How many more bad records the file has.
        more: usize,
        /// The file.
        file: String,
    },
}

/// `, partner `ID`` after an [`InputError::Invalid`]'s place, when the
/// partner is known.
fn partner_part(partner: Option<&str>) -> String {
    partner
        .filter(|p| !p.is_empty())
        .map(|p| format!(", partner `{}`", shown_id(p)))
        .unwrap_or_default()
}

/// The message of [`InputError::Many`]: one line per bad record, then the
/// count of those not shown.
fn many(errors: &[InputError], more: usize, file: &str) -> String {
    let mut out = errors
        .iter()
        .map(InputError::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    if more > 0 {
        let s = if more == 1 { "" } else { "s" };
        out.push_str(&format!("\n{file}: {more} more bad record{s} not shown"));
    }
    out
}

impl InputError {
    /// Each bad record's message, in file order (one for most errors), and
    /// the line counting the ones not shown, if any.
    pub fn lines(&self) -> Vec<String> {
        self.to_string().lines().map(str::to_string).collect()
    }
}

pub(super) fn io(path: &Path, e: std::io::Error) -> InputError {
    InputError::Io(format!(
        "cannot read `{}`: {}",
        path.display(),
        pmf_syntax::diagnostics::io_reason(&e)
    ))
}

fn fields(schema: &Type) -> &std::collections::BTreeMap<String, Type> {
    static EMPTY: std::sync::OnceLock<std::collections::BTreeMap<String, Type>> =
        std::sync::OnceLock::new();
    match schema {
        Type::Record(f) => f,
        _ => EMPTY.get_or_init(Default::default),
    }
}

/// A `serde_json` error's message without the place it appends (the place
/// is reported apart).
pub(super) fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// Parse and validate one partner record of `batch`. When it is bad, the
/// error reports every bad record of the file (read again, when it is a
/// regular file; see the module's doc).
pub(crate) fn parse_partner(
    schema: &Type,
    file: &str,
    batch: &Batch,
    raw: &RawRecord,
    cache: &mut ParseCache,
) -> Result<Value, InputError> {
    parse_one(schema, file, batch, raw, cache).map_err(|first| survey_after(schema, file, first))
}

/// Parse and validate one partner record of `batch`, reporting it alone.
fn parse_one(
    schema: &Type,
    file: &str,
    batch: &Batch,
    raw: &RawRecord,
    cache: &mut ParseCache,
) -> Result<Value, InputError> {
    let invalid = |partner: Option<String>, problem: String| InputError::Invalid {
        file: file.to_string(),
        at: raw.at.to_string(),
        partner,
        problem,
    };
    let json = match &raw.json {
        RawJson::Text(range) => {
            let text = &batch.text[range.clone()];
            // Fast path: straight into runtime values (it leaves a duplicate
            // key to the reference path). Any problem: re-read the slow way
            // below for a precise message.
            if let Some(v) = super::fast::parse(text, cache)
                && cache.id_of(&v).is_none_or(|id| id_problem(id).is_none())
            {
                return Ok(v);
            }
            check_unique_keys(text).map_err(|e| invalid(None, json_message(&e)))?;
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| invalid(None, format!("not valid JSON: {e}")))?
        }
        RawJson::NotUtf8 => {
            let what = match raw.at {
                Location::Line(_) => "line",
                Location::Record(_) => "record",
            };
            return Err(invalid(None, format!("the {what} is not valid UTF-8")));
        }
        RawJson::TooLong => return Err(invalid(None, too_long_message(raw.at))),
    };
    let obj = json
        .as_object()
        .ok_or_else(|| invalid(None, "expected a JSON object (one partner state)".into()))?;
    let id = obj.get("id").and_then(|v| v.as_str()).map(str::to_string);
    let value = record_from_json(fields(schema), obj, "", Completeness::Full)
        .map_err(|e: FieldError| invalid(id.clone(), e.to_string()))?;
    if let Some(problem) = cache.id_of(&value).and_then(id_problem) {
        return Err(invalid(id, format!("field `id`: {problem}")));
    }
    Ok(value)
}

/// Gathers the bad records of a file: the first [`MAX_REPORTED`], and a
/// count of the rest.
pub(super) struct Gathered {
    file: String,
    errors: Vec<InputError>,
    more: usize,
}

impl Gathered {
    pub(super) fn new(file: &str) -> Self {
        Gathered {
            file: file.to_string(),
            errors: Vec::new(),
            more: 0,
        }
    }

    pub(super) fn add(&mut self, e: InputError) {
        match e {
            InputError::Many { errors, more, .. } => {
                for e in errors {
                    self.add(e);
                }
                self.more += more;
            }
            e if self.errors.len() < MAX_REPORTED => self.errors.push(e),
            _ => self.more += 1,
        }
    }

    /// The error: none, one, or many.
    pub(super) fn finish(mut self) -> Option<InputError> {
        match (self.errors.len(), self.more) {
            (0, _) => None,
            (1, 0) => self.errors.pop(),
            _ => Some(InputError::Many {
                errors: self.errors,
                more: self.more,
                file: self.file,
            }),
        }
    }
}

/// Every bad record of the partner file `path`: records that are not JSON,
/// do not fit `schema` or have a bad id, and repeated ids. `None` when it
/// has none (or cannot be read again). Reading stops at an error of the
/// stream itself (a line with no end, a broken array).
pub(crate) fn survey_partners(schema: &Type, path: &Path) -> Option<InputError> {
    let mut stream = PartnerStream::open(path).ok()?;
    let name = path.display().to_string();
    let mut cache = ParseCache::new(schema, Completeness::Full);
    let mut seen: HashMap<Box<str>, Location> = HashMap::new();
    let mut gathered = Gathered::new(&name);
    loop {
        let batch = match stream.next_batch(8192) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => batch,
            Err(e) => {
                gathered.add(e);
                break;
            }
        };
        for raw in &batch.records {
            match parse_one(schema, &name, &batch, raw, &mut cache) {
                Err(e) => gathered.add(e),
                Ok(v) => {
                    let Some(id) = cache.id_of(&v) else { continue };
                    if let Some(first) = seen.get(id) {
                        gathered.add(InputError::Invalid {
                            file: name.clone(),
                            at: raw.at.to_string(),
                            partner: Some(id.to_string()),
                            problem: format!(
                                "duplicate partner id (it appears earlier in the file, {first})"
                            ),
                        });
                    } else {
                        seen.insert(id.into(), raw.at);
                    }
                }
            }
        }
    }
    gathered.finish()
}

/// What a bad record of `file` reports: every bad record of the file when
/// it is a regular file that can be read again, or `first` alone. Workers
/// that find bad records of one file at once share one survey of it.
fn survey_after(schema: &Type, file: &str, first: InputError) -> InputError {
    type Surveys = Mutex<Vec<(String, Arc<OnceLock<Option<InputError>>>)>>;
    static SURVEYS: OnceLock<Surveys> = OnceLock::new();
    let path = Path::new(file);
    // A pipe or a device cannot be read again.
    let Ok(meta) = std::fs::metadata(path) else {
        return first;
    };
    if !meta.is_file() {
        return first;
    }
    // One survey per version of the file (a file rewritten and planned
    // again in one process is surveyed again).
    let key = format!("{file}\0{}\0{:?}", meta.len(), meta.modified().ok());
    let cell = {
        let mut surveys = SURVEYS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match surveys.iter().find(|(k, _)| *k == key) {
            Some((_, cell)) => cell.clone(),
            None => {
                // Keep only a few: nothing grows over a long process.
                if surveys.len() >= 16 {
                    surveys.remove(0);
                }
                let cell = Arc::new(OnceLock::new());
                surveys.push((key, cell.clone()));
                cell
            }
        }
    };
    cell.get_or_init(|| survey_partners(schema, path))
        .clone()
        .unwrap_or(first)
}

/// The repeated and bad ids of the partner file `first` (a duplicate id
/// found while planning) names, read again without the schema: each
/// record's `id`, its JSON and nothing else. `None` when the file is not a
/// regular file or shows no such problem.
pub fn survey_ids(first: &InputError) -> Option<InputError> {
    let InputError::Invalid { file, .. } = first else {
        return None;
    };
    let path = Path::new(file);
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return None;
    }
    let mut stream = PartnerStream::open(path).ok()?;
    let mut seen: HashMap<Box<str>, Location> = HashMap::new();
    let mut gathered = Gathered::new(file);
    loop {
        let batch = match stream.next_batch(8192) {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => batch,
            Err(e) => {
                gathered.add(e);
                break;
            }
        };
        for raw in &batch.records {
            let invalid = |partner: Option<&str>, problem: String| InputError::Invalid {
                file: file.clone(),
                at: raw.at.to_string(),
                partner: partner.map(str::to_string),
                problem,
            };
            let RawJson::Text(range) = &raw.json else {
                gathered.add(invalid(None, "the record cannot be read".into()));
                continue;
            };
            #[derive(serde::Deserialize)]
            struct Id {
                id: Option<serde_json::Value>,
            }
            let id = match serde_json::from_str::<Id>(&batch.text[range.clone()]) {
                Ok(Id {
                    id: Some(serde_json::Value::String(id)),
                }) => id,
                _ => {
                    gathered.add(invalid(None, "the record has no string `id`".into()));
                    continue;
                }
            };
            if let Some(problem) = id_problem(&id) {
                gathered.add(invalid(Some(&id), format!("field `id`: {problem}")));
            } else if let Some(earlier) = seen.get(id.as_str()) {
                gathered.add(invalid(
                    Some(&id),
                    format!("duplicate partner id (it appears earlier in the file, {earlier})"),
                ));
            } else {
                seen.insert(id.into(), raw.at);
            }
        }
    }
    gathered.finish()
}

/// Every partner state of `path`, validated against `schema`, in order.
pub fn read_all_partners(schema: &Type, path: &Path) -> Result<Vec<Value>, InputError> {
    let mut stream = PartnerStream::open(path)?;
    let name = path.display().to_string();
    let mut out = Vec::new();
    let mut cache = ParseCache::new(schema, Completeness::Full);
    loop {
        let batch = stream.next_batch(8192)?;
        if batch.is_empty() {
            return Ok(out);
        }
        for raw in &batch.records {
            out.push(parse_partner(schema, &name, &batch, raw, &mut cache)?);
        }
    }
}

/// Targets: one for every partner, and per-partner ones on top.
#[derive(Debug)]
pub struct Targets {
    /// Applies to every partner (a partial record).
    pub all: Option<Value>,
    /// The JSON of `all`, for the plan file.
    pub all_json: Option<serde_json::Value>,
    /// Per partner id (partial records), indexed on disk.
    pub partners: PartnerEntries,
    /// The BLAKE3 (hex) of the file's bytes as read, when it is a regular
    /// file.
    pub blake3: Option<String>,
}

impl Targets {
    /// No target file: nothing changes.
    pub fn none() -> Self {
        Targets {
            all: None,
            all_json: None,
            partners: PartnerEntries::empty(),
            blake3: None,
        }
    }
}

/// Observed metrics by partner id, indexed on disk.
#[derive(Debug)]
pub struct Observed {
    /// Per partner id (partial records).
    pub partners: PartnerEntries,
    /// The BLAKE3 (hex) of the file's bytes as read, when it is a regular
    /// file.
    pub blake3: Option<String>,
}

impl Observed {
    /// No observed metrics.
    pub fn none() -> Self {
        Observed {
            partners: PartnerEntries::empty(),
            blake3: None,
        }
    }
}

fn parse_json(path: &str, text: &str) -> Result<serde_json::Value, InputError> {
    parse_json_at(path, text, (1, 1))
}

/// Parse `text`, which starts at `start` (line, column) of file `path`.
fn parse_json_at(
    path: &str,
    text: &str,
    start: (usize, usize),
) -> Result<serde_json::Value, InputError> {
    let invalid = |e: serde_json::Error, prefix: &str| {
        let (line, column) = super::keyed::shifted(start, (e.line(), e.column()));
        InputError::Invalid {
            file: path.to_string(),
            at: format!("line {line}, column {column}"),
            partner: None,
            problem: format!("{prefix}{}", json_message(&e)),
        }
    };
    check_unique_keys(text).map_err(|e| invalid(e, ""))?;
    serde_json::from_str(text).map_err(|e| invalid(e, "not valid JSON: "))
}

fn partial(
    schema: &Type,
    file: &str,
    at: &str,
    partner: Option<&str>,
    json: &serde_json::Value,
) -> Result<Value, InputError> {
    from_json(schema, json, "", Completeness::Partial).map_err(|e| InputError::Invalid {
        file: file.to_string(),
        at: at.to_string(),
        partner: partner.map(str::to_string),
        problem: e.to_string(),
    })
}

/// Read a target file: a partial partner state for everyone, or
/// `{"all": {...}, "partners": {"ID": {...}}}`. The file is read in blocks:
/// the per-partner targets are indexed on disk (see [`super::keyed`]), the
/// rest (a target for all) is held, up to [`MAX_RECORD`] bytes. Every bad
/// entry is reported (up to [`MAX_REPORTED`]).
pub fn read_targets(schema: &Type, path: &Path) -> Result<Targets, InputError> {
    let mut scan = Scanner::open(path)?;
    let file = scan.name().to_string();
    let expected = "a partial partner state, or {\"all\": …, \"partners\": {\"ID\": …}}";
    let open = scan.open_object(expected)?;
    let mut gathered = Gathered::new(&file);
    let mut partners = None;
    // Members other than an indexed `partners`: key, value's JSON text,
    // and where the value starts.
    let mut held: Vec<(String, String, (usize, usize))> = Vec::new();
    let mut held_bytes = 0usize;
    let mut at = open;
    let mut first = true;
    let end = loop {
        let mut member = match scan.member_head(at, first)? {
            Ok(m) => m,
            Err(end) => break end,
        };
        first = false;
        if member.key == "partners" && partners.is_none() && scan.is_object(member.value.start)? {
            let (entries, end) = scan.entries(schema, member.value.start, &mut gathered)?;
            partners = Some(entries);
            at = end;
            continue;
        }
        scan.read_value(&mut member)?;
        at = member.value.end;
        let start = scan.position(member.value.start);
        let text = scan.value_text(&member)?.to_string();
        held_bytes += member.key.len() + text.len();
        if held_bytes > MAX_RECORD {
            return Err(InputError::Invalid {
                file,
                at: "top level".into(),
                partner: None,
                problem: format!(
                    "the target for all partners is longer than {} MiB, the limit for one record",
                    MAX_RECORD >> 20
                ),
            });
        }
        held.push((member.key, text, start));
    };
    scan.close(end)?;
    let blake3 = Some(scan.blake3());
    let structured = partners.is_some()
        || (!held.is_empty() && held.iter().all(|(k, ..)| k == "all" || k == "partners"));
    if !structured {
        // One partial state for everyone: the members, as one JSON object.
        let mut text = String::from("{");
        for (i, (k, v, _)) in held.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&serde_json::Value::String(k.clone()).to_string());
            text.push(':');
            text.push_str(v);
        }
        text.push('}');
        let json = parse_json(&file, &text)?;
        return Ok(Targets {
            all: Some(partial(schema, &file, "top level", None, &json)?),
            all_json: Some(json),
            partners: PartnerEntries::empty(),
            blake3,
        });
    }
    let mut t = Targets::none();
    t.blake3 = blake3;
    let mut seen_all = false;
    for (key, text, start) in &held {
        let at = format!("`{key}`");
        if key != "all" {
            gathered.add(InputError::Invalid {
                file: file.clone(),
                at: "top level".into(),
                partner: None,
                problem: if key == "partners" && partners.is_some() {
                    "field `partners` is given twice".into()
                } else if key == "partners" {
                    "`partners`: expected an object of partner id → target".into()
                } else {
                    format!(
                        "field `{key}` is not `all` or `partners` (a target file with \
                         `partners` holds only `all` and `partners`)"
                    )
                },
            });
            continue;
        }
        if std::mem::replace(&mut seen_all, true) {
            gathered.add(InputError::Invalid {
                file: file.clone(),
                at: "top level".into(),
                partner: None,
                problem: "field `all` is given twice".into(),
            });
            continue;
        }
        match parse_json_at(&file, text, *start).and_then(|json| {
            let v = partial(schema, &file, &at, None, &json)?;
            Ok((v, json))
        }) {
            Ok((v, json)) => {
                t.all = Some(v);
                t.all_json = Some(json);
            }
            Err(e) => gathered.add(e),
        }
    }
    if let Some(p) = partners {
        t.partners = p;
    }
    match gathered.finish() {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// Read observed metrics: `{"ID": {partial partner state}, ...}`, in blocks,
/// indexed on disk (see [`super::keyed`]). Every bad entry is reported (up
/// to [`MAX_REPORTED`]).
pub fn read_observed(schema: &Type, path: &Path) -> Result<Observed, InputError> {
    let mut scan = Scanner::open(path)?;
    let open = scan.open_object("partner id → observed fields")?;
    let mut gathered = Gathered::new(scan.name());
    let (partners, end) = scan.entries(schema, open - 1, &mut gathered)?;
    scan.close(end)?;
    match gathered.finish() {
        Some(e) => Err(e),
        None => Ok(Observed {
            partners,
            blake3: Some(scan.blake3()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Observed metrics as the reference path reads them: the whole file as
    /// one JSON tree.
    fn reference(schema: &Type, text: &str) -> HashMap<String, Value> {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        json.as_object()
            .unwrap()
            .iter()
            .map(|(id, v)| {
                (
                    id.clone(),
                    partial(schema, "f", "top level", Some(id), v).unwrap(),
                )
            })
            .collect()
    }

    fn indexed(schema: &Type, entries: &PartnerEntries) -> HashMap<String, Value> {
        entries.all(schema).unwrap().into_iter().collect()
    }

    #[test]
    fn observed_metrics_read_by_the_index_as_the_reference_reads_them() {
        let fleet =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet"));
        let policy =
            crate::load::load_policy(&[fleet.join("policy.pmf")]).expect("fleet policy compiles");
        let text = std::fs::read_to_string(fleet.join("observed.json")).unwrap();
        let expected = reference(&policy.schema, &text);
        assert!(
            expected
                .values()
                .any(|v| format!("{v:?}").contains("Missing"))
        );
        let read = read_observed(&policy.schema, &fleet.join("observed.json")).unwrap();
        assert_eq!(indexed(&policy.schema, &read.partners), expected);
        // Looked up one by one, in file order and backwards.
        let mut cache = ParseCache::new(&policy.schema, Completeness::Partial);
        let mut reader = super::super::keyed::EntryReader::default();
        let mut ids: Vec<&String> = expected.keys().collect();
        ids.sort();
        for id in ids.iter().chain(ids.iter().rev()) {
            let got = read
                .partners
                .get(&policy.schema, id, &mut reader, &mut cache)
                .unwrap();
            assert_eq!(got.as_ref(), expected.get(*id), "{id}");
        }
        assert_eq!(
            read.partners
                .get(&policy.schema, "nobody", &mut reader, &mut cache)
                .unwrap(),
            None
        );
        // An entry with an escape in its id, and one the schema refuses.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("observed.json");
        let cases = [
            (r#"{"a\u0062": {"power": 3}}"#, Some("ab")),
            (r#"{"a": {"power": "high"}}"#, None),
        ];
        for (json, id) in cases {
            std::fs::write(&path, json).unwrap();
            let read = read_observed(&policy.schema, &path);
            match id {
                Some(id) => {
                    let read = indexed(&policy.schema, &read.expect(json).partners);
                    assert_eq!(read, reference(&policy.schema, json), "{json}");
                    assert!(read.contains_key(id), "{json}");
                }
                None => assert!(
                    matches!(&read, Err(InputError::Invalid { partner: Some(p), .. }) if p == "a"),
                    "{json}: {read:?}"
                ),
            }
        }
        // An id given twice, a key twice inside an entry, bad ids, broken
        // JSON: refused, with the place.
        let refused = [
            (
                r#"{"a": {"power": 3}, "a": {"power": 4}}"#,
                "the partner id is given twice",
            ),
            (
                "{\"a\": {\"power\": 3,\n \"power\": 4}}",
                "field `power` is given twice",
            ),
            (r#"{"": {"power": 3}}"#, "the id is empty"),
            (
                r#"{"a\u001b[2J": {"power": 3}}"#,
                "control character U+001B",
            ),
            (r#"{"a\u202e": {"power": 3}}"#, "control character U+202E"),
            (r#"{"a": {"power": 3}"#, "ends before the object's closing"),
            (r#"{"a" {"power": 3}}"#, "expected `:` after the key"),
            (
                r#"{"a": {"power": 3}} x"#,
                "text after the object's closing",
            ),
            (r#"{"a": {"power": 3} "b": {}}"#, "expected `,` or `}`"),
            (r#"["a"]"#, "expected a JSON object"),
            ("  ", "the file is empty"),
        ];
        for (json, problem) in refused {
            std::fs::write(&path, json).unwrap();
            let read = read_observed(&policy.schema, &path);
            assert!(
                matches!(&read, Err(InputError::Invalid { problem: p, .. }) if p.contains(problem)),
                "{json}: {read:?}"
            );
        }
    }

    #[test]
    fn targets_read_by_the_index_as_the_reference_reads_them() {
        let fleet =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet"));
        let policy =
            crate::load::load_policy(&[fleet.join("policy.pmf")]).expect("fleet policy compiles");
        let schema = &policy.schema;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("target.json");
        // Plain: one state for all; structured: `all` and `partners`.
        let plain = r#"{"version": "3.0.0", "power": 2}"#;
        std::fs::write(&path, plain).unwrap();
        let t = read_targets(schema, &path).unwrap();
        assert!(t.partners.is_empty());
        let json: serde_json::Value = serde_json::from_str(plain).unwrap();
        assert_eq!(t.all, Some(partial(schema, "f", "", None, &json).unwrap()));
        assert_eq!(t.all_json, Some(json));
        let structured = "{\"partners\": {\"p-1\": {\"power\": 1},\n \"p-2\": {\"version\": \"4.0.0\"}},\n \"all\": {\"version\": \"3.0.0\"}}";
        std::fs::write(&path, structured).unwrap();
        let t = read_targets(schema, &path).unwrap();
        let json: serde_json::Value = serde_json::from_str(structured).unwrap();
        assert_eq!(t.all_json.as_ref(), Some(&json["all"]));
        assert_eq!(
            indexed(schema, &t.partners),
            reference(schema, &json["partners"].to_string())
        );
        assert_eq!(
            t.blake3.as_deref(),
            Some(blake3::hash(structured.as_bytes()).to_hex().as_str())
        );
        // The `partners` object is not one record: larger than the record
        // limit in all, its entries each below it.
        let big = |c: &str| c.repeat(9 << 20);
        let large = format!(
            "{{\"partners\": {{\"p-1\": {{\"region\": \"{}\"}}, \"p-2\": {{\"region\": \"{}\"}}}}}}",
            big("a"),
            big("b")
        );
        std::fs::write(&path, &large).unwrap();
        let t = read_targets(schema, &path).unwrap();
        assert_eq!(t.partners.len(), 2);
        // An unknown field close to a known one is named.
        std::fs::write(&path, r#"{"powr": 3}"#).unwrap();
        let e = read_targets(schema, &path).unwrap_err().to_string();
        assert!(e.contains("field `powr`: expected no such field"), "{e}");
        assert!(e.ends_with("did you mean `power`?"), "{e}");
        // Every bad entry is reported, with its line.
        let bad = "{\"partners\": {\"p-1\": {\"power\": \"x\"},\n \"\": {},\n \"p-3\": {\"power\": 1},\n \"p-3\": {}},\n \"all\": {\"nope\": 1}, \"all\": {}}";
        std::fs::write(&path, bad).unwrap();
        let e = read_targets(schema, &path).unwrap_err().to_string();
        for expected in [
            "line 1, column 22, partner `p-1`",
            "line 2, column 2: partner id: the id is empty",
            "line 4, column 2, partner `p-3`: the partner id is given twice",
            "`all`: field `nope`: expected no such field",
            "field `all` is given twice",
        ] {
            assert!(e.contains(expected), "{expected} not in:\n{e}");
        }
    }
}
