//! Reading JSON straight into runtime values, guided by the schema: no
//! intermediate JSON tree, no generic deserializer.
//!
//! The reader is strict and deliberately small: it accepts a line only when
//! it is certain the result equals what the reference path
//! (`value::from_json` over `serde_json::Value`) gives. Anything unusual —
//! an escape in a string, a duplicate or unknown key, a missing field, a
//! number that is not a small whole number, deep nesting, any syntax error —
//! makes it answer `None`, and the caller re-reads the record the reference
//! way, which either gives the same value or a precise message.
//!
//! Partners share most of their field values (the same sets, versions and
//! names over and over), so a [`ParseCache`] keeps the values already read
//! by their JSON text: a repeated value costs a scan and a lookup, and the
//! partners that share it share one allocation.

use std::cell::Cell;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use super::value::{Completeness, Value};
use pmf_compiler::model::types::Type;

/// The schema laid out for reading: a record's fields in a flat list (in
/// schema order, the order of a record value's fields).
#[derive(Debug)]
enum Layout {
    /// A boolean, number, score, string or version.
    Scalar(Type),
    /// A set of elements.
    Set(Box<Layout>),
    /// A record's fields, and the index of the field that came first in the
    /// last record read.
    Record(Vec<Field>, Cell<usize>),
}

/// One field of a record layout.
#[derive(Debug)]
struct Field {
    name: String,
    layout: Layout,
    /// The field's slot in [`ParseCache::fields`], when its values are worth
    /// caching (the ones that allocate).
    slot: Option<usize>,
    /// The index of the field that followed this one in the last record
    /// read: records of one file usually list their fields in one order.
    next: Cell<usize>,
}

impl Layout {
    /// The layout of `ty`; cacheable fields take the next slots of `slots`.
    fn of(ty: &Type, slots: &mut usize) -> Layout {
        match ty {
            Type::Set(elem) => Layout::Set(Box::new(Layout::of(elem, slots))),
            Type::Record(fields) => Layout::Record(
                fields
                    .iter()
                    .map(|(name, ty)| {
                        let layout = Layout::of(ty, slots);
                        let slot = layout.cacheable().then(|| {
                            *slots += 1;
                            *slots - 1
                        });
                        Field {
                            name: name.clone(),
                            layout,
                            slot,
                            next: Cell::new(0),
                        }
                    })
                    .collect(),
                Cell::new(0),
            ),
            other => Layout::Scalar(other.clone()),
        }
    }

    fn cacheable(&self) -> bool {
        match self {
            Layout::Scalar(ty) => matches!(ty, Type::String | Type::Version),
            Layout::Set(_) | Layout::Record(..) => true,
        }
    }
}

/// A schema's layout and the values already read, by field and JSON text,
/// for records of one completeness (a value read from a partial record may
/// hold `null`s a full one must refuse). Keep one per thread.
pub struct ParseCache {
    layout: Layout,
    completeness: Completeness,
    fields: Vec<FieldCache>,
    /// The index of the `id` field in a record of the schema, if it has one.
    id_field: Option<usize>,
}

/// One field's values; a field whose values rarely repeat (an id) stops
/// being cached.
#[derive(Default)]
struct FieldCache {
    values: FxHashMap<Box<str>, Value>,
    /// The text and value the field had last: neighbouring records often
    /// repeat it, and it is compared before anything is scanned or hashed.
    last_text: String,
    last: Option<Value>,
    hits: u32,
    misses: u32,
}

impl FieldCache {
    /// Entries one field keeps at most.
    const LIMIT: usize = 512;

    fn worth_it(&self) -> bool {
        self.misses < Self::LIMIT as u32 || self.hits >= self.misses
    }
}

impl ParseCache {
    /// An empty cache for records of `schema` and `completeness`.
    pub fn new(schema: &Type, completeness: Completeness) -> Self {
        let mut slots = 0;
        let layout = Layout::of(schema, &mut slots);
        let id_field = match schema {
            Type::Record(fields) => fields.keys().position(|k| k == "id"),
            _ => None,
        };
        ParseCache {
            layout,
            completeness,
            fields: (0..slots).map(|_| FieldCache::default()).collect(),
            id_field,
        }
    }

    /// The `id` of a record read with this cache (or by the reference path
    /// against the same schema), when it is a string.
    pub fn id_of<'v>(&self, record: &'v Value) -> Option<&'v str> {
        match (record, self.id_field) {
            (Value::Rec(fields), Some(i)) => match fields.get(i) {
                Some(Value::Str(s)) => Some(s),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Parse `text` as a record of the cache's schema and completeness, or
/// `None` when the fast path cannot vouch for the result (see the module's
/// doc).
pub fn parse(text: &str, cache: &mut ParseCache) -> Option<Value> {
    let mut reader = Reader {
        text,
        pos: 0,
        partial: cache.completeness == Completeness::Partial,
        depth: 0,
    };
    reader.ws();
    let v = reader.value(&cache.layout, &mut cache.fields)?;
    reader.ws();
    (reader.pos == text.len()).then_some(v)
}

/// How deep arrays and objects may nest on the fast path (`serde_json`
/// refuses 128 levels; the reference path decides anything deeper).
const MAX_DEPTH: u32 = 64;

/// A cursor over one JSON text.
struct Reader<'t> {
    text: &'t str,
    pos: usize,
    /// Whether `null` and absent fields are allowed (a partial record).
    partial: bool,
    depth: u32,
}

impl<'t> Reader<'t> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Skip JSON white space.
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// After an item of an array or object: `Some(false)` past a comma (more
    /// to come), `Some(true)` past `close`, `None` at anything else.
    fn closed(&mut self, close: u8) -> Option<bool> {
        self.ws();
        let b = self.peek()?;
        self.pos += 1;
        if b == b',' {
            self.ws();
            Some(false)
        } else {
            (b == close).then_some(true)
        }
    }

    /// A string without escapes or control characters, at the cursor.
    fn string(&mut self) -> Option<&'t str> {
        self.eat(b'"')?;
        let start = self.pos;
        let bytes = self.text.as_bytes();
        loop {
            match *bytes.get(self.pos)? {
                b'"' => break,
                b'\\' | 0..=0x1f => return None,
                _ => self.pos += 1,
            }
        }
        let s = &self.text[start..self.pos];
        self.pos += 1;
        Some(s)
    }

    /// A literal word (`true`, `false`, `null`) at the cursor.
    fn literal(&mut self, word: &str) -> Option<()> {
        let rest = self.text.as_bytes().get(self.pos..)?;
        rest.starts_with(word.as_bytes())
            .then(|| self.pos += word.len())
    }

    /// A number at the cursor. Whole numbers of up to 15 digits are read
    /// here (exactly representable); any other number is read by
    /// `serde_json`, so its value is the reference path's to the last bit.
    fn number(&mut self) -> Option<f64> {
        let start = self.pos;
        let bytes = self.text.as_bytes();
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = bytes.get(self.pos) {
            self.pos += 1;
        }
        let token = &self.text[start..self.pos];
        let digits = token.as_bytes();
        let whole = !digits.is_empty()
            && digits.len() <= 15
            && digits.iter().all(u8::is_ascii_digit)
            && !matches!(digits, [b'0', _, ..]);
        if whole {
            let n = digits
                .iter()
                .fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            return Some(n as f64);
        }
        serde_json::from_str::<f64>(token).ok()
    }

    /// Move past one JSON value of any shape (its text is checked later, by
    /// a cache hit on text read before or by reading it).
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'[' | b'{' => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return None;
                }
                let close = if self.peek()? == b'[' { b']' } else { b'}' };
                self.pos += 1;
                self.ws();
                if self.eat(close).is_none() {
                    loop {
                        if close == b'}' {
                            self.string()?;
                            self.ws();
                            self.eat(b':')?;
                            self.ws();
                        }
                        self.skip_value()?;
                        if self.closed(close)? {
                            break;
                        }
                    }
                }
                self.depth -= 1;
                Some(())
            }
            b'-' | b'0'..=b'9' => self.number().map(drop),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => None,
        }
    }

    /// A value of `layout` at the cursor.
    fn value(&mut self, layout: &Layout, cache: &mut [FieldCache]) -> Option<Value> {
        if self.peek()? == b'n' {
            // In a partial record, `null` says "not measured".
            self.literal("null")?;
            return self.partial.then_some(Value::Missing);
        }
        match layout {
            Layout::Scalar(ty) => self.scalar(ty),
            Layout::Set(elem) => self.set(elem, cache),
            Layout::Record(fields, first) => self.record(fields, first, cache),
        }
    }

    fn scalar(&mut self, ty: &Type) -> Option<Value> {
        match (ty, self.peek()?) {
            (Type::String, b'"') => Some(Value::Str(self.string()?.into())),
            (Type::Version, b'"') => {
                let v = semver::Version::parse(self.string()?).ok()?;
                Some(Value::Ver(Arc::new(v)))
            }
            (Type::Bool, b't') => self.literal("true").map(|()| Value::Bool(true)),
            (Type::Bool, b'f') => self.literal("false").map(|()| Value::Bool(false)),
            (Type::Number, b'-' | b'0'..=b'9') => self.number().map(Value::Num),
            (Type::Score, b'-' | b'0'..=b'9') => {
                let n = self.number()?;
                (0.0..=100.0).contains(&n).then_some(Value::Num(n))
            }
            _ => None,
        }
    }

    fn set(&mut self, elem: &Layout, cache: &mut [FieldCache]) -> Option<Value> {
        self.eat(b'[')?;
        self.ws();
        let mut items = Vec::new();
        if self.eat(b']').is_none() {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return None;
            }
            loop {
                items.push(self.value(elem, cache)?);
                if self.closed(b']')? {
                    break;
                }
            }
            self.depth -= 1;
        }
        Some(Value::set(items))
    }

    fn record(
        &mut self,
        fields: &[Field],
        first: &Cell<usize>,
        cache: &mut [FieldCache],
    ) -> Option<Value> {
        // Records of up to 32 fields collect on the stack: one allocation,
        // the record's own.
        const ON_STACK: usize = 32;
        let n = fields.len();
        let mut stack: [Option<Value>; ON_STACK] = [const { None }; ON_STACK];
        let mut heap: Vec<Option<Value>> = Vec::new();
        let slots: &mut [Option<Value>] = if n <= ON_STACK {
            stack.get_mut(..n)?
        } else {
            heap.resize(n, None);
            &mut heap
        };
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_none() {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return None;
            }
            // Try the field that came next last time first.
            let mut hint = first;
            loop {
                let key = self.string()?;
                let guess = hint.get();
                let i = if fields.get(guess).is_some_and(|f| f.name == key) {
                    guess
                } else {
                    let i = fields.iter().position(|f| f.name == key)?;
                    hint.set(i);
                    i
                };
                let field = fields.get(i)?;
                hint = &field.next;
                let slot = slots.get_mut(i)?;
                if slot.is_some() {
                    return None;
                }
                self.ws();
                self.eat(b':')?;
                self.ws();
                *slot = Some(self.field_value(field, cache)?);
                if self.closed(b'}')? {
                    break;
                }
            }
            self.depth -= 1;
        }
        if !self.partial && slots.iter().any(Option::is_none) {
            return None;
        }
        let values: Arc<[Value]> = slots
            .iter_mut()
            .map(|slot| slot.take().unwrap_or(Value::Absent))
            .collect();
        Some(Value::Rec(values))
    }

    /// One field's value, through the cache when the field has a slot.
    fn field_value(&mut self, field: &Field, cache: &mut [FieldCache]) -> Option<Value> {
        let Some(slot) = field
            .slot
            .filter(|&s| cache.get(s).is_some_and(FieldCache::worth_it))
        else {
            return self.value(&field.layout, cache);
        };
        let start = self.pos;
        let entry = cache.get_mut(slot)?;
        if let Some(v) = &entry.last {
            // The text read last for this field, here again and ended (a
            // number ends where no digit, sign, point or exponent follows):
            // the value is that text's.
            let rest = self.text.as_bytes().get(start..)?;
            let len = entry.last_text.len();
            if rest.starts_with(entry.last_text.as_bytes())
                && matches!(
                    rest.get(len),
                    Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                )
            {
                self.pos += len;
                entry.hits += 1;
                return Some(v.clone());
            }
        }
        self.skip_value()?;
        let text = &self.text[start..self.pos];
        let entry = cache.get_mut(slot)?;
        if let Some(v) = entry.values.get(text) {
            entry.hits += 1;
            entry.last_text.clear();
            entry.last_text.push_str(text);
            entry.last = Some(v.clone());
            return Some(v.clone());
        }
        entry.misses += 1;
        let mut inner = Reader {
            text,
            pos: 0,
            partial: self.partial,
            depth: self.depth,
        };
        let v = inner.value(&field.layout, cache)?;
        if inner.pos != text.len() {
            return None;
        }
        let entry = cache.get_mut(slot)?;
        if entry.values.len() < FieldCache::LIMIT {
            entry.values.insert(text.into(), v.clone());
            entry.last_text.clear();
            entry.last_text.push_str(text);
            entry.last = Some(v.clone());
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_json;

    fn schema() -> Type {
        let record = |fields: &[(&str, Type)]| {
            Type::Record(Arc::new(
                fields
                    .iter()
                    .map(|(n, t)| ((*n).to_string(), t.clone()))
                    .collect(),
            ))
        };
        record(&[
            ("id", Type::String),
            ("version", Type::Version),
            ("power", Type::Number),
            ("ok", Type::Bool),
            ("tags", Type::Set(Box::new(Type::String))),
            (
                "metrics",
                record(&[("stability", Type::Score), ("load", Type::Number)]),
            ),
            (
                "nested",
                Type::Set(Box::new(Type::Set(Box::new(Type::Number)))),
            ),
        ])
    }

    /// The reference path's answer for `text`.
    fn reference(text: &str, completeness: Completeness) -> Option<Value> {
        crate::value::check_unique_keys(text).ok()?;
        let json: serde_json::Value = serde_json::from_str(text).ok()?;
        from_json(&schema(), &json, "", completeness).ok()
    }

    const GOOD: &str = r#"{"id":"a","version":"1.2.3","power":5,"ok":true,"tags":["b","a","b"],"metrics":{"stability":88,"load":0.5},"nested":[[2,1],[]]}"#;

    /// Texts the fast path must either read as the reference does or leave
    /// to it.
    fn cases() -> Vec<String> {
        let mut cases = vec![
            GOOD.to_string(),
            format!(" \t\r\n{GOOD} \r\n"),
            GOOD.replace(":5,", ":-0,"),
            GOOD.replace(":5,", ":1e400,"),
            GOOD.replace(":5,", ":1.5e3,"),
            GOOD.replace(":5,", ":123456789012345678901,"),
            GOOD.replace(":5,", ":012,"),
            GOOD.replace(":5,", ":5x,"),
            GOOD.replace(":5,", ":-,"),
            GOOD.replace(":5,", ":null,"),
            GOOD.replace(":5,", ":\"5\","),
            GOOD.replace(":88,", ":101,"),
            GOOD.replace(":88,", ":100.0,"),
            GOOD.replace("\"a\",\"b\"]", "\"a\\u0062\",\"b\"]"),
            GOOD.replace("\"a\",\"b\"]", "\"a\tb\"]"),
            GOOD.replace("\"a\",\"b\"]", "\"é\",\"b\"]"),
            GOOD.replace("true", "tru"),
            GOOD.replace("true", "truex"),
            GOOD.replace("true", "false"),
            GOOD.replace("1.2.3", "1.2"),
            GOOD.replace("\"id\":\"a\",", ""),
            GOOD.replace("\"id\":\"a\",", "\"id\":\"a\",\"id\":\"b\","),
            GOOD.replace("\"id\":\"a\",", "\"id\":\"a\",\"extra\":1,"),
            GOOD.replace("\"id\"", "\"i\\u0064\""),
            GOOD.replace("[[2,1],[]]", "[[2,1],[],]"),
            GOOD.replace("[[2,1],[]]", "[[2,1] , [ ] ]"),
            GOOD.replace("{\"stability\"", "{ \"stability\" "),
            GOOD.replace("\"load\":0.5}", "\"load\":0.5,}"),
            GOOD.replace(",\"ok\"", "\"ok\""),
            format!("{GOOD}{{}}"),
            format!("[{GOOD}]"),
            String::new(),
            "null".into(),
            "{}".into(),
        ];
        // Field order that differs from the schema's.
        cases.push(
            r#"{"nested":[],"metrics":{"load":1,"stability":0},"tags":[],"ok":false,"power":0,"version":"0.0.1","id":""}"#
                .into(),
        );
        // Deep nesting.
        cases.push(GOOD.replace(
            "[[2,1],[]]",
            &format!("{}{}", "[".repeat(200), "]".repeat(200)),
        ));
        // Every prefix of a good line.
        cases.extend((0..GOOD.len()).map(|n| GOOD[..n].to_string()));
        cases
    }

    #[test]
    fn the_fast_path_never_disagrees_with_the_reference() {
        let ty = schema();
        for completeness in [Completeness::Full, Completeness::Partial] {
            // A warm cache too: values read before must not change answers.
            let mut cache = ParseCache::new(&ty, completeness);
            for _ in 0..2 {
                for text in cases() {
                    let fast = parse(&text, &mut cache);
                    let slow = reference(&text, completeness);
                    if let Some(v) = &fast {
                        assert_eq!(Some(v), slow.as_ref(), "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_duplicate_key_is_refused_by_both_paths() {
        let ty = schema();
        for text in [
            GOOD.replace("\"id\":\"a\",", "\"id\":\"a\",\"id\":\"a\","),
            GOOD.replace("\"load\":0.5}", "\"load\":0.5,\"load\":0.5}"),
            GOOD.replace("\"id\":\"a\",", "\"id\":\"a\",\"i\\u0064\":\"b\","),
        ] {
            for completeness in [Completeness::Full, Completeness::Partial] {
                let mut cache = ParseCache::new(&ty, completeness);
                assert_eq!(parse(&text, &mut cache), None, "{text}");
                assert_eq!(reference(&text, completeness), None, "{text}");
            }
            let err = crate::value::check_unique_keys(&text).unwrap_err();
            assert!(err.to_string().contains("is given twice"), "{err}");
        }
    }

    #[test]
    fn the_fast_path_reads_ordinary_lines_itself() {
        let mut cache = ParseCache::new(&schema(), Completeness::Full);
        for _ in 0..3 {
            let fast = parse(GOOD, &mut cache);
            assert_eq!(fast, reference(GOOD, Completeness::Full));
            assert!(fast.is_some());
        }
        let partial = r#"{"power":null,"metrics":{"load":2}}"#;
        let mut cache = ParseCache::new(&schema(), Completeness::Partial);
        assert_eq!(
            parse(partial, &mut cache),
            reference(partial, Completeness::Partial)
        );
        assert!(parse(partial, &mut cache).is_some());
    }

    /// A field's value is taken from the text it had last only when that
    /// text is all of the value here: a longer number, a longer set or a
    /// longer string starting alike read as what they are.
    #[test]
    fn the_text_a_field_had_last_is_taken_only_whole() {
        let ty = schema();
        let mut cache = ParseCache::new(&ty, Completeness::Full);
        let variants = [
            GOOD.to_string(),
            GOOD.replace("\"power\":5,", "\"power\":55,"),
            GOOD.replace("\"power\":5,", "\"power\":5.5,"),
            GOOD.replace("\"power\":5,", "\"power\":5e1,"),
            GOOD.replace("\"power\":5,", "\"power\":5 ,"),
            GOOD.replace(
                "\"tags\":[\"b\",\"a\",\"b\"]",
                "\"tags\":[\"b\",\"a\",\"b\",\"c\"]",
            ),
            GOOD.replace("\"version\":\"1.2.3\"", "\"version\":\"1.2.3-rc.1\""),
            GOOD.replace("\"load\":0.5}", "\"load\":0.55}"),
        ];
        for first in &variants {
            for then in &variants {
                let _ = parse(first, &mut cache);
                let read = parse(then, &mut cache);
                assert!(read.is_some(), "{then}");
                assert_eq!(
                    read,
                    reference(then, Completeness::Full),
                    "{first} then {then}"
                );
            }
        }
    }

    /// One edit of a text: where, how much to remove, what to insert.
    type Edit = (usize, usize, &'static str);

    fn edited(base: &str, edits: &[Edit]) -> String {
        let mut text = base.to_string();
        for &(at, remove, insert) in edits {
            let mut at = at % (text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            let mut end = (at + remove).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            text.replace_range(at..end, insert);
        }
        text
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Random edits of good lines, with the bytes JSON cares about:
        /// whatever the fast path reads, the reference reads alike.
        #[test]
        fn edited_lines_never_read_differently(
            edits in proptest::collection::vec(
                (
                    0usize..200,
                    0usize..4,
                    proptest::sample::select(vec![
                        "", "{", "}", "[", "]", "\"", ",", ":", "\\", " ", "\n", "0", "1",
                        "-", ".", "e", "9", "null", "true", "\"id\"", "\"a\"", "1.2.3",
                        "\"power\":", "[]", "{}", "\u{e9}",
                    ]),
                ),
                1..4,
            ),
            partial in proptest::bool::ANY,
        ) {
            let completeness = if partial { Completeness::Partial } else { Completeness::Full };
            let ty = schema();
            let mut cache = ParseCache::new(&ty, completeness);
            // Warm the cache with the good line, then read the edited one.
            let _ = parse(GOOD, &mut cache);
            let text = edited(GOOD, &edits);
            if let Some(v) = parse(&text, &mut cache) {
                proptest::prop_assert_eq!(Some(v), reference(&text, completeness), "{}", text);
            }
        }

        /// Records built from values of every kind, right and wrong, in any
        /// field order and spacing, fields missing or twice: whatever the
        /// fast path reads, the reference reads alike.
        #[test]
        fn generated_records_never_read_differently(
            fields in proptest::collection::vec((0usize..7, 0usize..12), 0..10),
            spaces in proptest::collection::vec(
                proptest::sample::select(vec!["", " ", "\n", "\t", "\r\n"]),
                40,
            ),
            partial in proptest::bool::ANY,
        ) {
            let completeness = if partial { Completeness::Partial } else { Completeness::Full };
            let names = ["id", "version", "power", "ok", "tags", "metrics", "nested"];
            // Values by field: some right, some wrong for it.
            let values: [&[&str]; 7] = [
                &["\"a\"", "\"\u{e9}\"", "\"\"", "\"a\\\"b\"", "7", "null"],
                &["\"1.2.3\"", "\"1.2.3-rc.1+b\"", "\"1.2\"", "\"01.2.3\"", "1", "null"],
                &["0", "-0", "5", "1e2", "1.5", "-1", "123456789012345678", "0.1", "\"5\"", "null"],
                &["true", "false", "1", "null", "\"true\""],
                &["[]", "[\"b\",\"a\"]", "[\"a\",\"a\"]", "[1]", "[\"a\",]", "null", "{}"],
                &[
                    "{\"stability\":88,\"load\":0.5}",
                    "{\"load\":1,\"stability\":100}",
                    "{\"stability\":101,\"load\":0}",
                    "{\"stability\":null,\"load\":null}",
                    "{\"stability\":1}",
                    "{}",
                    "[]",
                ],
                &["[]", "[[2,1],[]]", "[[1,1]]", "[[\"x\"]]", "[[]", "null"],
            ];
            let mut space = spaces.iter().cycle();
            let mut text = String::from(*space.next().unwrap());
            text.push('{');
            for (i, (field, value)) in fields.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let options = values[*field];
                text.push_str(space.next().unwrap());
                text.push_str(&format!("\"{}\"", names[*field]));
                text.push_str(space.next().unwrap());
                text.push(':');
                text.push_str(options[value % options.len()]);
                text.push_str(space.next().unwrap());
            }
            text.push('}');
            let ty = schema();
            let mut cache = ParseCache::new(&ty, completeness);
            let fast = parse(&text, &mut cache);
            let slow = reference(&text, completeness);
            if let Some(v) = &fast {
                proptest::prop_assert_eq!(Some(v), slow.as_ref(), "{}", text);
            }
        }
    }
}
