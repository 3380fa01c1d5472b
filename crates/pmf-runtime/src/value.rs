//! Runtime values and their conversion from JSON, checked against the
//! policy's partner schema.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::json_out::{write_f64, write_str, write_version};
use pmf_compiler::model::types::Type;

/// A runtime value. Records keep their fields in schema order (the sorted
/// field names of the record type), so paths compile to indices.
// An 8-byte tag: payloads start 8-aligned, so copying a value moves whole
// words (a one-byte tag left 7 bytes to copy piecewise, which stalled the
// processor on every copy of a partner's fields).
#[derive(Clone, Debug)]
#[repr(u64)]
pub enum Value {
    /// No data: an observed metric that was not measured (`null`).
    Missing,
    /// Not given in a partial record (a target or observed entry): the
    /// field keeps the value it is laid over.
    Absent,
    /// `true` / `false`
    Bool(bool),
    /// A number or score.
    Num(f64),
    /// Text.
    Str(Arc<str>),
    /// A semantic version.
    Ver(Arc<semver::Version>),
    /// A set: sorted, without duplicates.
    Set(Arc<[Value]>),
    /// A record: fields in schema order.
    Rec(Arc<[Value]>),
}

impl Value {
    fn rank(&self) -> u8 {
        match self {
            Value::Missing | Value::Absent => 0,
            Value::Bool(_) => 1,
            Value::Num(_) => 2,
            Value::Str(_) => 3,
            Value::Ver(_) => 4,
            Value::Set(_) => 5,
            Value::Rec(_) => 6,
        }
    }

    /// A copy that shares no allocation with `self`.
    pub(crate) fn deep_clone(&self) -> Value {
        match self {
            Value::Str(s) => Value::Str(Arc::from(&**s)),
            Value::Ver(v) => Value::Ver(Arc::new((**v).clone())),
            Value::Set(items) => Value::Set(items.iter().map(Value::deep_clone).collect()),
            Value::Rec(fields) => Value::Rec(fields.iter().map(Value::deep_clone).collect()),
            other => other.clone(),
        }
    }

    /// Append the value's digest encoding to `out`: a compact binary form
    /// that two values share exactly when they are equal. What a partner's
    /// state digest hashes.
    ///
    /// Each value is a tag byte and then its content; counts, lengths and
    /// version numbers are LEB128 varints, and so is a number that is a
    /// whole number from 0 to 2^53 (tag 7; any other number is its 8 IEEE
    /// bytes, tag 2). A typical partner encodes in about a hundred bytes:
    /// two blocks of SHA-256.
    pub(crate) fn write_digest_bytes(&self, out: &mut Vec<u8>) {
        fn varint(mut n: u64, out: &mut Vec<u8>) {
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
        }
        let text = |s: &str, out: &mut Vec<u8>| {
            varint(s.len() as u64, out);
            out.extend_from_slice(s.as_bytes());
        };
        /// Whole numbers up to here are exact in an f64.
        const EXACT: f64 = (1u64 << 53) as f64;
        match self {
            Value::Missing | Value::Absent => out.push(0),
            Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            // One encoding for zero, as `0 == -0`.
            Value::Num(n) if *n == 0.0 => out.extend_from_slice(&[7, 0]),
            Value::Num(n) if n.fract() == 0.0 && *n > 0.0 && *n <= EXACT => {
                out.push(7);
                varint(*n as u64, out);
            }
            Value::Num(n) => {
                out.push(2);
                out.extend_from_slice(&n.to_bits().to_le_bytes());
            }
            Value::Str(s) => {
                out.push(3);
                text(s, out);
            }
            Value::Ver(v) => {
                out.push(4);
                for part in [v.major, v.minor, v.patch] {
                    varint(part, out);
                }
                text(v.pre.as_str(), out);
                text(v.build.as_str(), out);
            }
            Value::Set(items) | Value::Rec(items) => {
                out.push(if matches!(self, Value::Set(_)) { 5 } else { 6 });
                varint(items.len() as u64, out);
                for item in items.iter() {
                    item.write_digest_bytes(out);
                }
            }
        }
    }

    /// A set from values in any order.
    pub fn set(mut items: Vec<Value>) -> Value {
        items.sort();
        items.dedup();
        Value::Set(items.into())
    }

    /// The value as JSON (the inverse of [`from_json`]).
    pub fn to_json(&self, ty: &Type) -> serde_json::Value {
        match (self, ty) {
            (Value::Missing | Value::Absent, _) => serde_json::Value::Null,
            (Value::Bool(b), _) => (*b).into(),
            (Value::Num(n), _) => {
                serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
            }
            (Value::Str(s), _) => serde_json::Value::String(s.to_string()),
            (Value::Ver(v), _) => serde_json::Value::String(v.to_string()),
            (Value::Set(items), Type::Set(elem)) => items.iter().map(|i| i.to_json(elem)).collect(),
            (Value::Set(items), _) => items.iter().map(|i| i.to_json(&Type::Unknown)).collect(),
            (Value::Rec(fields), Type::Record(names)) => {
                let mut map = serde_json::Map::new();
                for ((name, fty), v) in names.iter().zip(fields.iter()) {
                    if !matches!(v, Value::Missing | Value::Absent) {
                        map.insert(name.clone(), v.to_json(fty));
                    }
                }
                serde_json::Value::Object(map)
            }
            (Value::Rec(_), _) => serde_json::Value::Null,
        }
    }
}

/// Write a record's fields in schema order: a field not given is left out,
/// and so is one not measured, unless `partial` (then it stays `null`).
fn write_record(
    names: &std::collections::BTreeMap<String, Type>,
    fields: &[Value],
    partial: bool,
    out: &mut String,
) {
    out.push('{');
    let mut first = true;
    for ((name, fty), v) in names.iter().zip(fields.iter()) {
        let skip = match v {
            Value::Absent => true,
            Value::Missing => !partial,
            _ => false,
        };
        if skip {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_str(name, out);
        out.push(':');
        if partial {
            v.write_partial(fty, out);
        } else {
            v.write_canonical(fty, out);
        }
    }
    out.push('}');
}

impl Value {
    /// A partial record (a target or observed entry) as JSON: a field not
    /// given is left out, a field given as `null` (not measured) stays
    /// `null`, so that [`from_json`] with [`Completeness::Partial`] reads
    /// back the same value. (The tests' reference for what plans carry.)
    #[cfg(test)]
    pub(crate) fn to_partial_json(&self, ty: &Type) -> serde_json::Value {
        match (self, ty) {
            (Value::Rec(fields), Type::Record(names)) => {
                let mut map = serde_json::Map::new();
                for ((name, fty), v) in names.iter().zip(fields.iter()) {
                    match v {
                        Value::Absent => {}
                        Value::Missing => {
                            map.insert(name.clone(), serde_json::Value::Null);
                        }
                        v => {
                            map.insert(name.clone(), v.to_partial_json(fty));
                        }
                    }
                }
                serde_json::Value::Object(map)
            }
            _ => self.to_json(ty),
        }
    }

    /// Write [`Value::to_partial_json`]'s text without building it.
    pub(crate) fn write_partial(&self, ty: &Type, out: &mut String) {
        match (self, ty) {
            (Value::Rec(fields), Type::Record(names)) => write_record(names, fields, true, out),
            _ => self.write_canonical(ty, out),
        }
    }

    /// Write the value as compact JSON with keys in schema (sorted) order:
    /// the same text as `to_json(ty).to_string()`, without building it.
    pub(crate) fn write_canonical(&self, ty: &Type, out: &mut String) {
        match (self, ty) {
            (Value::Missing | Value::Absent, _) => out.push_str("null"),
            (Value::Bool(b), _) => out.push_str(if *b { "true" } else { "false" }),
            (Value::Num(n), _) => write_f64(*n, out),
            (Value::Str(s), _) => write_str(s, out),
            (Value::Ver(v), _) => {
                out.push('"');
                write_version(v, out);
                out.push('"');
            }
            (Value::Set(items), t) => {
                let elem = match t {
                    Type::Set(e) => &**e,
                    _ => &Type::Unknown,
                };
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_canonical(elem, out);
                }
                out.push(']');
            }
            (Value::Rec(fields), Type::Record(names)) => write_record(names, fields, false, out),
            (Value::Rec(_), _) => out.push_str("null"),
        }
    }
}

/// A shared value's allocation, and the address of its type.
type MemoKey = (usize, usize);

/// The canonical JSON of shared values already written, by the value's
/// allocation and its type: a plan writes every partner's `state`, and the
/// values a worker's parse cache hands out (a region, a set of
/// capabilities, a record of metrics) are the same allocations partner
/// after partner. Only values shared when written (an `Arc` held twice:
/// by the parse cache too) are kept, with a clone that keeps their address
/// from being reused; a test holds the texts equal to
/// [`Value::write_canonical`]'s. Keep one per thread.
#[derive(Default)]
pub struct CanonicalMemo {
    texts: rustc_hash::FxHashMap<MemoKey, (Value, std::ops::Range<usize>)>,
    arena: String,
    /// Per field of the records written through [`CanonicalMemo::write_record`]
    /// (by field index): the key and text of the value it had last, held in
    /// `texts` (neighbouring partners often share it: no lookup then).
    recent: Vec<Option<(MemoKey, std::ops::Range<usize>)>>,
    /// The `"name":` texts of the fields of the record types written (each
    /// type kept alive, so that its address names it).
    prefixes: Vec<(Arc<pmf_compiler::model::types::Fields>, Vec<String>)>,
    /// The length of the longest text written lately: what a new one is
    /// made room for ([`CanonicalMemo::text_of`]).
    longest: usize,
}

impl CanonicalMemo {
    /// Values kept at most (then the memo starts again).
    const ENTRIES: usize = 4096;
    /// Bytes of text kept at most.
    const BYTES: usize = 1 << 20;

    /// The allocation a value shares with another holder, if it does.
    fn shared(v: &Value) -> Option<usize> {
        match v {
            Value::Str(a) if Arc::strong_count(a) > 1 => Some(Arc::as_ptr(a).cast::<u8>() as usize),
            Value::Ver(a) if Arc::strong_count(a) > 1 => Some(Arc::as_ptr(a) as usize),
            Value::Set(a) | Value::Rec(a) if Arc::strong_count(a) > 1 => {
                Some(Arc::as_ptr(a).cast::<Value>() as usize)
            }
            _ => None,
        }
    }

    /// The canonical text of `v` of type `ty`, made in one allocation most
    /// often (room for the longest text written lately).
    pub(crate) fn text_of(&mut self, v: &Value, ty: &Type) -> String {
        let mut out = String::with_capacity(self.longest);
        self.write(v, ty, &mut out);
        // Slowly forgets a long one, so that one large state does not
        // oversize every later text.
        self.longest = out.len().max(self.longest - self.longest / 64);
        out
    }

    /// Append `v` of type `ty` as [`Value::write_canonical`] does.
    pub(crate) fn write(&mut self, v: &Value, ty: &Type, out: &mut String) {
        let Some(at) = Self::shared(v) else {
            match (v, ty) {
                // A record of its own (a partner) may hold shared fields.
                (Value::Rec(fields), Type::Record(names)) => self.write_record(names, fields, out),
                _ => v.write_canonical(ty, out),
            }
            return;
        };
        self.write_shared(v, ty, (at, std::ptr::from_ref(ty) as usize), out);
    }

    /// Append `v`, shared, under `key`; its text's place in the arena.
    fn write_shared(
        &mut self,
        v: &Value,
        ty: &Type,
        key: MemoKey,
        out: &mut String,
    ) -> std::ops::Range<usize> {
        if let Some((_, range)) = self.texts.get(&key) {
            out.push_str(self.arena.get(range.clone()).unwrap_or_default());
            return range.clone();
        }
        let start = out.len();
        v.write_canonical(ty, out);
        let text = out.get(start..).unwrap_or_default();
        if self.texts.len() >= Self::ENTRIES || self.arena.len() + text.len() > Self::BYTES {
            self.texts.clear();
            self.arena.clear();
            self.recent.clear();
        }
        let from = self.arena.len();
        self.arena.push_str(text);
        let range = from..self.arena.len();
        self.texts.insert(key, (v.clone(), range.clone()));
        range
    }

    /// [`write_record`] of a full record, each field through the memo.
    fn write_record(
        &mut self,
        names: &Arc<pmf_compiler::model::types::Fields>,
        fields: &[Value],
        out: &mut String,
    ) {
        let prefixes = match self
            .prefixes
            .iter()
            .position(|(kept, _)| Arc::ptr_eq(kept, names))
        {
            Some(i) => self.prefixes.swap_remove(i).1,
            None => names
                .keys()
                .map(|name| {
                    let mut prefix = String::new();
                    write_str(name, &mut prefix);
                    prefix.push(':');
                    prefix
                })
                .collect(),
        };
        if self.recent.len() < fields.len() {
            self.recent.resize(fields.len(), None);
        }
        out.push('{');
        let mut first = true;
        for (i, ((prefix, fty), v)) in prefixes.iter().zip(names.values()).zip(fields).enumerate() {
            if matches!(v, Value::Absent | Value::Missing) {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(prefix);
            let Some(at) = Self::shared(v) else {
                self.write(v, fty, out);
                continue;
            };
            let key = (at, std::ptr::from_ref(fty) as usize);
            if let Some(Some((last, range))) = self.recent.get(i)
                && *last == key
            {
                out.push_str(self.arena.get(range.clone()).unwrap_or_default());
                continue;
            }
            let range = self.write_shared(v, fty, key, out);
            if let Some(slot) = self.recent.get_mut(i) {
                *slot = Some((key, range));
            }
        }
        out.push('}');
        self.prefixes.push((Arc::clone(names), prefixes));
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Value {}
impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::Num(a), Value::Num(b)) => a.total_cmp(b),
            (Value::Str(a), Value::Str(b)) if Arc::ptr_eq(a, b) => Ordering::Equal,
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Ver(a), Value::Ver(b)) if Arc::ptr_eq(a, b) => Ordering::Equal,
            (Value::Ver(a), Value::Ver(b)) => a.cmp(b),
            (Value::Set(a), Value::Set(b)) | (Value::Rec(a), Value::Rec(b)) => {
                if Arc::ptr_eq(a, b) {
                    // Shared, as a target's unchanged fields are.
                    return Ordering::Equal;
                }
                a.iter().cmp(b.iter())
            }
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }
}

/// Why a JSON value does not fit the schema.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: expected {expected}, found {found}")]
pub struct FieldError {
    /// Dotted path of the field, such as `metrics.stability`.
    pub field: String,
    /// What the schema expects.
    pub expected: String,
    /// What the input has.
    pub found: String,
}

fn describe(json: &serde_json::Value) -> String {
    match json {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => format!("`{b}`"),
        serde_json::Value::Number(n) => format!("the number `{n}`"),
        serde_json::Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            format!("the string \"{short}\"")
        }
        serde_json::Value::Array(_) => "an array".into(),
        serde_json::Value::Object(_) => "an object".into(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// How strictly a record must match its type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completeness {
    /// Every field present (a partner state).
    Full,
    /// Only some fields (a target or observed metrics); absent ones are `Missing`.
    Partial,
}

/// Convert `json` to a value of type `ty`; `path` names it in errors.
pub fn from_json(
    ty: &Type,
    json: &serde_json::Value,
    path: &str,
    completeness: Completeness,
) -> Result<Value, FieldError> {
    convert(ty, json, &mut Path::Root(path), completeness)
}

/// Where a value sits, built into a string only for an error message.
enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn render(&self) -> String {
        match self {
            Path::Root(r) => r.to_string(),
            Path::Field(parent, name) => join(&parent.render(), name),
            Path::Index(parent, i) => format!("{}[{i}]", parent.render()),
        }
    }
}

fn convert(
    ty: &Type,
    json: &serde_json::Value,
    path: &mut Path<'_>,
    completeness: Completeness,
) -> Result<Value, FieldError> {
    let err = |expected: &str| {
        let field = path.render();
        FieldError {
            field: if field.is_empty() {
                "(record)".into()
            } else {
                field
            },
            expected: expected.to_string(),
            found: describe(json),
        }
    };
    if json.is_null() && completeness == Completeness::Partial {
        // In a partial record, `null` says "not measured".
        return Ok(Value::Missing);
    }
    match ty {
        Type::Bool => json
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| err("a boolean")),
        Type::Number => json.as_f64().map(Value::Num).ok_or_else(|| err("a number")),
        Type::Score => match json.as_f64() {
            Some(n) if (0.0..=100.0).contains(&n) => Ok(Value::Num(n)),
            _ => Err(err("a score from 0 to 100")),
        },
        Type::String => json
            .as_str()
            .map(|s| Value::Str(s.into()))
            .ok_or_else(|| err("a string")),
        Type::Version => json
            .as_str()
            .and_then(|s| semver::Version::parse(s).ok())
            .map(|v| Value::Ver(Arc::new(v)))
            .ok_or_else(|| err("a version such as \"1.2.3\"")),
        Type::Set(elem) => {
            let items = json
                .as_array()
                .ok_or_else(|| err(&format!("an array (a `{ty}`)")))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(
                    elem,
                    item,
                    &mut Path::Index(path, i),
                    completeness,
                )?);
            }
            Ok(Value::set(out))
        }
        Type::Record(fields) => {
            let obj = json.as_object().ok_or_else(|| err("an object"))?;
            record(fields, obj, path, completeness)
        }
        Type::Unknown => Err(err("a value of a known type")),
    }
}

/// Convert a JSON object to a record of `fields`.
pub(crate) fn record_from_json(
    fields: &BTreeMap<String, Type>,
    obj: &serde_json::Map<String, serde_json::Value>,
    path: &str,
    completeness: Completeness,
) -> Result<Value, FieldError> {
    record(fields, obj, &mut Path::Root(path), completeness)
}

fn record(
    fields: &BTreeMap<String, Type>,
    obj: &serde_json::Map<String, serde_json::Value>,
    path: &mut Path<'_>,
    completeness: Completeness,
) -> Result<Value, FieldError> {
    if let Some(extra) = obj.keys().find(|k| !fields.contains_key(*k)) {
        let hint = pmf_syntax::diagnostics::closest(extra, fields.keys().map(String::as_str))
            .map(|c| format!("; did you mean `{c}`?"))
            .unwrap_or_default();
        return Err(FieldError {
            field: join(&path.render(), extra),
            expected: "no such field (it is not in the partner schema)".into(),
            found: format!("{}{hint}", describe(&obj[extra])),
        });
    }
    let mut out = Vec::with_capacity(fields.len());
    for (name, fty) in fields {
        match obj.get(name) {
            Some(v) => out.push(convert(fty, v, &mut Path::Field(path, name), completeness)?),
            None if completeness == Completeness::Partial => out.push(Value::Absent),
            None => {
                return Err(FieldError {
                    field: join(&path.render(), name),
                    expected: format!("a `{fty}`"),
                    found: "nothing (the field is missing)".into(),
                });
            }
        }
    }
    Ok(Value::Rec(out.into()))
}

/// Check that no JSON object in `text` names a key twice (at any level):
/// `serde_json` keeps the last of two equal keys without a word, which would
/// let a record say one thing to a reader and another to `pmf`. The error
/// names the key by its dotted path and carries the line and column.
///
/// Call it on text `serde_json` reads (the reference path); it checks
/// nothing else, and leaves any syntax error to that read.
pub(crate) fn check_unique_keys(text: &str) -> Result<(), serde_json::Error> {
    use serde::Deserializer;
    let mut de = serde_json::Deserializer::from_str(text);
    match (&mut de).deserialize_any(Unique { path: "" }) {
        Ok(()) => Ok(()),
        // A syntax error is the reference read's to report, with its own words.
        Err(e) if !e.is_data() => Ok(()),
        Err(e) => Err(e),
    }
}

/// A visitor that walks any JSON value and refuses an object with a key
/// twice; `path` names where it is.
struct Unique<'p> {
    path: &'p str,
}

impl<'de> serde::de::DeserializeSeed<'de> for Unique<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Unique<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let path = format!("{}[{i}]", self.path);
            if seq.next_element_seed(Unique { path: &path })?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let path = join(self.path, &key);
            if !seen.insert(key) {
                return Err(serde::de::Error::custom(format!(
                    "duplicate key: field `{path}` is given twice"
                )));
            }
            map.next_value_seed(Unique { path: &path })?;
        }
        Ok(())
    }
}

/// Why `id` cannot be a partner id, if it cannot: ids are printed in
/// plans, terminals and logs, so an empty one, one with white space at
/// either end, or one with a control character (C0, DEL, C1), a bidi
/// control or a line separator (which could forge or hide output), or
/// longer than [`MAX_ID_BYTES`] is refused.
pub fn id_problem(id: &str) -> Option<String> {
    // Most ids: printable ASCII without spaces, short; nothing to say (a
    // test holds this equal to the whole check).
    if id.len() <= MAX_ID_BYTES
        && !id.is_empty()
        && !id.starts_with(RESERVED_PREFIX)
        && id.bytes().all(|b| b.is_ascii_graphic())
    {
        return None;
    }
    id_problem_checked(id)
}

/// [`id_problem`], every rule checked.
fn id_problem_checked(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("the id is empty".into());
    }
    if id.len() > MAX_ID_BYTES {
        return Some(format!(
            "the id is {} bytes long (the limit is {MAX_ID_BYTES})",
            id.len()
        ));
    }
    if id.trim() != id {
        return Some(if id.trim().is_empty() {
            "the id is only white space".into()
        } else {
            "the id starts or ends with white space".into()
        });
    }
    if let Some(c) = id.chars().find(|&c| is_forbidden_in_id(c)) {
        return Some(format!(
            "the id holds the control character U+{:04X}",
            u32::from(c)
        ));
    }
    if id.starts_with(RESERVED_PREFIX) {
        return Some(
            "ids that start with `@` are reserved for the store's own records (`@governance`, `@refused`)"
                .into(),
        );
    }
    None
}

/// What the ids of the store's own chains start with, and no partner's
/// (a partner named `@governance` would write into the record of the
/// policy that governs the store).
pub const RESERVED_PREFIX: char = '@';

/// `id` as it may be shown in a message: control, bidi and separator
/// characters written as `\u{...}` escapes, and a long id cut short.
pub fn shown_id(id: &str) -> String {
    const SHOWN: usize = 80;
    let mut out = String::with_capacity(id.len().min(SHOWN * 4));
    for (i, c) in id.chars().enumerate() {
        if i == SHOWN {
            out.push('…');
            break;
        }
        if is_forbidden_in_id(c) {
            out.push_str(&format!("\\u{{{:04x}}}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// The longest partner id, in bytes.
pub(crate) const MAX_ID_BYTES: usize = 1024;

/// Control characters (C0, DEL, C1), bidi controls (embeddings,
/// overrides, isolates, marks) and the Unicode line and paragraph
/// separators.
pub(crate) fn is_forbidden_in_id(c: char) -> bool {
    c.is_control() || pmf_syntax::diagnostics::render::is_layout_control(c)
}

/// `base` with every field `over` gives laid on top (recursively).
pub(crate) fn overlay(base: &Value, over: &Value) -> Value {
    match (base, over) {
        (_, Value::Absent) => base.clone(),
        (Value::Rec(b), Value::Rec(o)) => {
            Value::Rec(b.iter().zip(o.iter()).map(|(b, o)| overlay(b, o)).collect())
        }
        _ => over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_quick_id_check_says_what_the_whole_check_says() {
        let mut ids: Vec<String> = (0u8..128).map(|b| char::from(b).to_string()).collect();
        ids.extend((0u8..128).map(|b| format!("p-{}-1", char::from(b))));
        ids.extend(
            [
                "",
                " p",
                "p ",
                "p\u{200E}",
                "caf\u{e9}",
                "p\u{2028}q",
                "\u{a0}",
            ]
            .map(String::from),
        );
        ids.extend(["@governance", "@refused", "@", "p@1"].map(String::from));
        ids.push("x".repeat(MAX_ID_BYTES));
        ids.push("x".repeat(MAX_ID_BYTES + 1));
        for id in &ids {
            assert_eq!(id_problem(id), id_problem_checked(id), "{id:?}");
        }
    }

    #[test]
    fn values_stay_three_words() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
        assert_eq!(std::mem::size_of::<Option<Value>>(), 24);
    }

    #[test]
    fn canonical_text_is_the_json_text() {
        let ty = Type::Record(Arc::new(
            [
                ("a".to_string(), Type::Number),
                ("b".to_string(), Type::Set(Box::new(Type::String))),
                ("c".to_string(), Type::Version),
                ("d".to_string(), Type::String),
            ]
            .into_iter()
            .collect(),
        ));
        let json =
            serde_json::json!({"a": 1.5, "b": ["y", "x\"q"], "c": "1.2.3-rc.1", "d": "tab\there"});
        let v = from_json(&ty, &json, "", Completeness::Full).unwrap();
        let mut text = String::new();
        v.write_canonical(&ty, &mut text);
        assert_eq!(text, v.to_json(&ty).to_string());
    }

    /// The memo's texts are [`Value::write_canonical`]'s, for shared and
    /// unshared values, nested ones, one allocation under two types, and
    /// past the point where the memo starts again.
    #[test]
    fn the_canonical_memo_writes_what_write_canonical_writes() {
        let metrics = Type::Record(Arc::new(
            [
                ("ok".to_string(), Type::Bool),
                ("score".to_string(), Type::Number),
            ]
            .into_iter()
            .collect(),
        ));
        let ty = Type::Record(Arc::new(
            [
                ("caps".to_string(), Type::Set(Box::new(Type::String))),
                ("id".to_string(), Type::String),
                ("m".to_string(), metrics),
                // A record under a type that is not one is written `null`.
                ("n".to_string(), Type::Unknown),
                ("tags".to_string(), Type::Set(Box::new(Type::Unknown))),
                ("v".to_string(), Type::Version),
            ]
            .into_iter()
            .collect(),
        ));
        let caps = Value::set(vec![Value::Str("route".into()), Value::Str("q\"x".into())]);
        let version = Value::Ver(Arc::new(semver::Version::parse("1.2.3-rc.1").unwrap()));
        // What a parse cache holds: every value below is shared with it.
        let mut held = vec![caps.clone(), version.clone()];
        let mut memo = CanonicalMemo::default();
        for i in 0..9000u32 {
            let m = Value::Rec(
                vec![Value::Bool(i % 2 == 0), Value::Num(f64::from(i % 7) / 4.0)].into(),
            );
            let id = Value::Str(format!("p-{i}").into());
            if i % 3 == 0 {
                held.push(m.clone());
                held.push(id.clone());
            }
            let partner = Value::Rec(
                vec![
                    caps.clone(),
                    id,
                    if i % 5 == 0 {
                        Value::Missing
                    } else {
                        m.clone()
                    },
                    m,
                    // The same allocation as `caps`, under another type.
                    caps.clone(),
                    version.clone(),
                ]
                .into(),
            );
            let (mut want, mut got) = (String::new(), String::new());
            partner.write_canonical(&ty, &mut want);
            memo.write(&partner, &ty, &mut got);
            assert_eq!(got, want, "partner {i}");
        }
        assert!(
            held.len() > CanonicalMemo::ENTRIES,
            "the memo started again"
        );
    }

    #[test]
    fn digest_encoding_tells_values_apart_exactly_when_they_differ() {
        let str_set =
            |items: &[&str]| Value::set(items.iter().map(|s| Value::Str((*s).into())).collect());
        let enc = |v: &Value| {
            let mut out = Vec::new();
            v.write_digest_bytes(&mut out);
            out
        };
        let ver = |s: &str| Value::Ver(Arc::new(semver::Version::parse(s).unwrap()));
        let distinct = [
            str_set(&["a", "bc"]),
            str_set(&["ab", "c"]),
            str_set(&["abc"]),
            Value::Rec(vec![Value::Num(1.0), Value::Str("x".into())].into()),
            Value::Rec(vec![Value::Num(1.5), Value::Str("x".into())].into()),
            Value::Set(vec![Value::Num(1.0), Value::Str("x".into())].into()),
            ver("1.2.3"),
            ver("1.2.3-rc.1"),
            ver("1.2.3+b"),
            ver("128.0.300"),
            Value::Bool(true),
            Value::Bool(false),
            Value::Missing,
            // Numbers on both sides of each encoding's edges.
            Value::Num(0.0),
            Value::Num(1.0),
            Value::Num(127.0),
            Value::Num(128.0),
            Value::Num(16_384.0),
            Value::Num((1u64 << 53) as f64),
            Value::Num((1u64 << 53) as f64 + 2.0),
            Value::Num(-1.0),
            Value::Num(0.5),
            Value::Num(1e300),
            Value::Str("x".repeat(127).into()),
            Value::Str("x".repeat(128).into()),
            Value::Str("x".repeat(300).into()),
        ];
        for (i, a) in distinct.iter().enumerate() {
            for (j, b) in distinct.iter().enumerate() {
                assert_eq!(i == j, enc(a) == enc(b), "{a:?} / {b:?}");
            }
        }
        // Equal values encode alike, however they were built.
        assert_eq!(enc(&str_set(&["b", "a", "a"])), enc(&str_set(&["a", "b"])));
        assert_eq!(enc(&Value::Num(0.0)), enc(&Value::Num(-0.0)));
    }
}
