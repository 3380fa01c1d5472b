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
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use super::fast::ParseCache;
use super::stream::{Batch, Location, PartnerStream, RawJson, RawRecord, too_long_message};
use super::value::{
    Completeness, FieldError, Value, check_unique_keys, from_json, id_problem, record_from_json,
    shown_id,
};
use crate::model::types::Type;

/// How many bad records of one file are reported; the others are counted.
pub const MAX_REPORTED: usize = 20;

/// The largest target or observed-metrics file, in bytes (they are read
/// whole; a larger one is an error found after reading this much).
pub const MAX_WHOLE_FILE: usize = 1 << 30;

/// A problem with an input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The file cannot be read (exit code 2).
    Io(String),
    /// A record does not fit the schema or is not JSON (exit code 1).
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
    Many {
        /// The bad records shown.
        errors: Vec<InputError>,
        /// How many more bad records the file has.
        more: usize,
        /// The file.
        file: String,
    },
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Io(m) => f.write_str(m),
            InputError::Invalid {
                file,
                at,
                partner,
                problem,
            } => {
                write!(f, "{file}, {at}")?;
                if let Some(p) = partner.as_deref().filter(|p| !p.is_empty()) {
                    write!(f, ", partner `{}`", shown_id(p))?;
                }
                write!(f, ": {problem}")
            }
            InputError::Many { errors, more, file } => {
                for (i, e) in errors.iter().enumerate() {
                    if i > 0 {
                        f.write_str("\n")?;
                    }
                    write!(f, "{e}")?;
                }
                if *more > 0 {
                    let s = if *more == 1 { "" } else { "s" };
                    write!(f, "\n{file}: {more} more bad record{s} not shown")?;
                }
                Ok(())
            }
        }
    }
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
        crate::cli::files::io_reason(&e)
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
fn json_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&suffix).unwrap_or(&text).to_string()
}

/// Parse and validate one partner record of `batch`. When it is bad, the
/// error reports every bad record of the file (read again, when it is a
/// regular file; see the module's doc).
pub fn parse_partner(
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
struct Gathered {
    file: String,
    errors: Vec<InputError>,
    more: usize,
}

impl Gathered {
    fn new(file: &str) -> Self {
        Gathered {
            file: file.to_string(),
            errors: Vec::new(),
            more: 0,
        }
    }

    fn add(&mut self, e: InputError) {
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
    fn finish(mut self) -> Option<InputError> {
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
pub fn survey_partners(schema: &Type, path: &Path) -> Option<InputError> {
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
#[derive(Clone, Debug, Default)]
pub struct Targets {
    /// Applies to every partner (a partial record).
    pub all: Option<Value>,
    /// Per partner id (partial records).
    pub partners: HashMap<String, Value>,
    /// The JSON of `all`, for the plan file.
    pub all_json: Option<serde_json::Value>,
    /// The JSON of each per-partner target, for the plan file.
    pub partners_json: HashMap<String, serde_json::Value>,
}

impl Targets {
    /// The partial target of partner `id`.
    pub fn for_partner(&self, id: &str) -> Option<&Value> {
        self.partners.get(id).or(self.all.as_ref())
    }
}

/// The text of a target or observed file, read whole but never more than
/// [`MAX_WHOLE_FILE`] bytes of it; a file that does not start like a JSON
/// object is refused after its first block (`/dev/zero` is not read on).
fn read_whole(path: &Path) -> Result<String, InputError> {
    let file_name = path.display().to_string();
    let invalid = |at: String, problem: String| InputError::Invalid {
        file: file_name.clone(),
        at,
        partner: None,
        problem,
    };
    let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let size = file.metadata().map_or(0, |m| m.len() as usize);
    let mut bytes = Vec::with_capacity(size.min(MAX_WHOLE_FILE) + 1);
    let mut reader = file.take(MAX_WHOLE_FILE as u64 + 1);
    let mut checked = false;
    loop {
        let before = bytes.len();
        let n = (&mut reader)
            .take(1 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| io(path, e))?;
        if !checked {
            match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{') => checked = true,
                Some(_) => {
                    return Err(invalid(
                        "line 1".into(),
                        "not valid JSON: expected a JSON object".into(),
                    ));
                }
                None if n == 0 => {
                    return Err(invalid(
                        "line 1".into(),
                        "the file is empty (expected a JSON object)".into(),
                    ));
                }
                None => {}
            }
        }
        if bytes.len() > MAX_WHOLE_FILE {
            return Err(invalid(
                "the whole file".into(),
                format!(
                    "the file is larger than {} MiB, the limit for a target or observed file",
                    MAX_WHOLE_FILE >> 20
                ),
            ));
        }
        if n == 0 || bytes.len() == before {
            break;
        }
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..valid]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        invalid(format!("line {line}"), "the file is not valid UTF-8".into())
    })
}

fn parse_json(path: &Path, text: &str) -> Result<serde_json::Value, InputError> {
    let invalid = |e: serde_json::Error, prefix: &str| InputError::Invalid {
        file: path.display().to_string(),
        at: format!("line {}, column {}", e.line(), e.column()),
        partner: None,
        problem: format!("{prefix}{}", json_message(&e)),
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

/// The error for a bad partner id used as a key of `file`, if it is bad.
fn bad_id_key(file: &str, at: &str, id: &str) -> Option<InputError> {
    id_problem(id).map(|problem| InputError::Invalid {
        file: file.to_string(),
        at: at.to_string(),
        partner: Some(id.to_string()),
        problem: format!("partner id: {problem}"),
    })
}

/// Read a target file: a partial partner state for everyone, or
/// `{"all": {...}, "partners": {"ID": {...}}}`. Every bad entry is
/// reported (up to [`MAX_REPORTED`]).
pub fn read_targets(schema: &Type, path: &Path) -> Result<Targets, InputError> {
    let text = read_whole(path)?;
    let json = parse_json(path, &text)?;
    drop(text);
    let file = path.display().to_string();
    let obj = json.as_object().ok_or_else(|| InputError::Invalid {
        file: file.clone(),
        at: "top level".into(),
        partner: None,
        problem: "expected a JSON object".into(),
    })?;
    let structured = !obj.is_empty() && obj.keys().all(|k| k == "all" || k == "partners");
    let mut t = Targets::default();
    if !structured {
        t.all = Some(partial(schema, &file, "top level", None, &json)?);
        t.all_json = Some(json.clone());
        return Ok(t);
    }
    let mut gathered = Gathered::new(&file);
    if let Some(all) = obj.get("all") {
        match partial(schema, &file, "`all`", None, all) {
            Ok(v) => t.all = Some(v),
            Err(e) => gathered.add(e),
        }
        t.all_json = Some(all.clone());
    }
    if let Some(per) = obj.get("partners") {
        let per = per.as_object().ok_or_else(|| InputError::Invalid {
            file: file.clone(),
            at: "`partners`".into(),
            partner: None,
            problem: "expected an object of partner id → target".into(),
        })?;
        t.partners.reserve(per.len());
        t.partners_json.reserve(per.len());
        for (id, v) in per {
            if let Some(e) = bad_id_key(&file, "`partners`", id) {
                gathered.add(e);
                continue;
            }
            match partial(schema, &file, "`partners`", Some(id), v) {
                Ok(value) => {
                    t.partners.insert(id.clone(), value);
                    t.partners_json.insert(id.clone(), v.clone());
                }
                Err(e) => gathered.add(e),
            }
        }
    }
    match gathered.finish() {
        Some(e) => Err(e),
        None => Ok(t),
    }
}

/// Read observed metrics: `{"ID": {partial partner state}, ...}`. Every bad
/// entry is reported (up to [`MAX_REPORTED`]).
pub fn read_observed(schema: &Type, path: &Path) -> Result<HashMap<String, Value>, InputError> {
    let text = read_whole(path)?;
    // Fast: entry by entry straight into values, with no JSON tree of the
    // whole file (a million entries would take gigabytes).
    if let Some(observed) = observed_fast(schema, &text) {
        return Ok(observed);
    }
    // Any problem: the reference path, and its precise message.
    let json = parse_json(path, &text)?;
    let file = path.display().to_string();
    let obj = json.as_object().ok_or_else(|| InputError::Invalid {
        file: file.clone(),
        at: "top level".into(),
        partner: None,
        problem: "expected an object of partner id → observed fields".into(),
    })?;
    let mut gathered = Gathered::new(&file);
    let mut out = HashMap::with_capacity(obj.len());
    for (id, v) in obj {
        if let Some(e) = bad_id_key(&file, "top level", id) {
            gathered.add(e);
            continue;
        }
        match partial(schema, &file, "top level", Some(id), v) {
            Ok(value) => {
                out.insert(id.clone(), value);
            }
            Err(e) => gathered.add(e),
        }
    }
    match gathered.finish() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Observed metrics read entry by entry with the fast reader, or `None`
/// when any entry needs the reference path.
fn observed_fast(schema: &Type, text: &str) -> Option<HashMap<String, Value>> {
    use serde::de::{Deserializer, Error, MapAccess, Visitor};
    struct Entries<'c>(&'c mut ParseCache);
    impl<'de> Visitor<'de> for Entries<'_> {
        type Value = HashMap<String, Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object of partner id → observed fields")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = HashMap::with_capacity(map.size_hint().unwrap_or(0));
            while let Some(id) = map.next_key::<String>()? {
                let raw: &'de serde_json::value::RawValue = map.next_value()?;
                let v = super::fast::parse(raw.get(), self.0)
                    .ok_or_else(|| A::Error::custom("left to the reference path"))?;
                // A bad id, or one given twice: the reference path says so.
                if id_problem(&id).is_some() || out.insert(id, v).is_some() {
                    return Err(A::Error::custom("left to the reference path"));
                }
            }
            Ok(out)
        }
    }
    let mut cache = ParseCache::new(schema, Completeness::Partial);
    let mut de = serde_json::Deserializer::from_str(text);
    let observed = (&mut de).deserialize_map(Entries(&mut cache)).ok()?;
    de.end().ok()?;
    Some(observed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fleet's observed metrics as the reference path reads them.
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

    #[test]
    fn observed_metrics_read_fast_as_the_reference_reads_them() {
        let fleet = std::path::Path::new("examples/fleet");
        let policy = crate::cli::policy::load(&[fleet.join("policy.pmf")])
            .ok()
            .expect("fleet policy compiles");
        let text = std::fs::read_to_string(fleet.join("observed.json")).unwrap();
        let expected = reference(&policy.schema, &text);
        assert!(
            expected
                .values()
                .any(|v| format!("{v:?}").contains("Missing"))
        );
        let fast = observed_fast(&policy.schema, &text).expect("the fleet's file is read fast");
        assert_eq!(fast, expected);
        // An entry with an escape, a duplicate id (the last one counts) and
        // one the schema refuses: the fast reader leaves each to the
        // reference path, which reads the same or explains.
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
                    let read = read.expect(json);
                    assert_eq!(read, reference(&policy.schema, json), "{json}");
                    assert!(read.contains_key(id), "{json}");
                }
                None => assert!(
                    matches!(&read, Err(InputError::Invalid { partner: Some(p), .. }) if p == "a"),
                    "{json}: {read:?}"
                ),
            }
        }
        // An id given twice, at the top or inside an entry, and a bad id:
        // refused by both paths, with the place.
        let refused = [
            (
                r#"{"a": {"power": 3}, "a": {"power": 4}}"#,
                "field `a` is given twice",
            ),
            (
                "{\"a\": {\"power\": 3,\n \"power\": 4}}",
                "field `a.power` is given twice",
            ),
            (r#"{"": {"power": 3}}"#, "the id is empty"),
            (
                r#"{"a\u001b[2J": {"power": 3}}"#,
                "control character U+001B",
            ),
            (r#"{"a\u202e": {"power": 3}}"#, "control character U+202E"),
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
}
