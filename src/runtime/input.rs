//! Reading partner states (streamed by [`super::stream`]), targets and
//! observed metrics, each validated against the partner schema.

use std::collections::HashMap;
use std::path::Path;

use super::fast::ParseCache;
use super::stream::{Batch, Location, PartnerStream, RawJson, RawRecord};
use super::value::{Completeness, FieldError, Value, from_json, record_from_json};
use crate::model::types::Type;

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
                if let Some(p) = partner {
                    write!(f, ", partner `{p}`")?;
                }
                write!(f, ": {problem}")
            }
        }
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

/// Parse and validate one partner record of `batch`.
pub fn parse_partner(
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
            // Fast path: straight into runtime values. Any problem: re-read
            // the slow way below for a precise message.
            if let Some(v) = super::fast::parse(text, cache) {
                return Ok(v);
            }
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
    };
    let obj = json
        .as_object()
        .ok_or_else(|| invalid(None, "expected a JSON object (one partner state)".into()))?;
    let id = obj.get("id").and_then(|v| v.as_str()).map(str::to_string);
    record_from_json(fields(schema), obj, "", Completeness::Full)
        .map_err(|e: FieldError| invalid(id, e.to_string()))
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

fn read_json(path: &Path) -> Result<serde_json::Value, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
    parse_json(path, &text)
}

fn parse_json(path: &Path, text: &str) -> Result<serde_json::Value, InputError> {
    serde_json::from_str(text).map_err(|e| InputError::Invalid {
        file: path.display().to_string(),
        at: format!("line {}", e.line()),
        partner: None,
        problem: format!("not valid JSON: {e}"),
    })
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
/// `{"all": {...}, "partners": {"ID": {...}}}`.
pub fn read_targets(schema: &Type, path: &Path) -> Result<Targets, InputError> {
    let json = read_json(path)?;
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
    if let Some(all) = obj.get("all") {
        t.all = Some(partial(schema, &file, "`all`", None, all)?);
        t.all_json = Some(all.clone());
    }
    if let Some(per) = obj.get("partners") {
        let per = per.as_object().ok_or_else(|| InputError::Invalid {
            file: file.clone(),
            at: "`partners`".into(),
            partner: None,
            problem: "expected an object of partner id → target".into(),
        })?;
        for (id, v) in per {
            t.partners.insert(
                id.clone(),
                partial(schema, &file, "`partners`", Some(id), v)?,
            );
            t.partners_json.insert(id.clone(), v.clone());
        }
    }
    Ok(t)
}

/// Read observed metrics: `{"ID": {partial partner state}, ...}`.
pub fn read_observed(schema: &Type, path: &Path) -> Result<HashMap<String, Value>, InputError> {
    let text = std::fs::read_to_string(path).map_err(|e| io(path, e))?;
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
    obj.iter()
        .map(|(id, v)| {
            Ok((
                id.clone(),
                partial(schema, &file, "top level", Some(id), v)?,
            ))
        })
        .collect()
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
                out.insert(id, v);
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
            (r#"{"a": {"power": 3}, "a": {"power": 4}}"#, Some("a")),
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
    }
}
