//! Reading JSON straight into runtime values, guided by the schema: no
//! intermediate JSON tree. On any error the caller re-reads the record the
//! slow way (`value::from_json`) for a precise message.
//!
//! Partners share most of their field values (the same sets, versions and
//! names over and over), so a [`ParseCache`] keeps the values already read
//! by their JSON text: a repeated value costs a scan and a lookup, and the
//! partners that share it share one allocation.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::value::{Completeness, Value};
use crate::model::types::Type;

/// The schema laid out for reading: a record's fields in a flat list (in
/// schema order, the order of a record value's fields).
#[derive(Debug)]
enum Layout {
    /// A boolean, number, score, string or version.
    Scalar(Type),
    /// A set of elements.
    Set(Box<Layout>),
    /// A record: field names and layouts.
    Record(Vec<(String, Layout)>),
}

impl Layout {
    fn of(ty: &Type) -> Layout {
        match ty {
            Type::Set(elem) => Layout::Set(Box::new(Layout::of(elem))),
            Type::Record(fields) => Layout::Record(
                fields
                    .iter()
                    .map(|(name, ty)| (name.clone(), Layout::of(ty)))
                    .collect(),
            ),
            other => Layout::Scalar(other.clone()),
        }
    }

    /// Whether values of this layout are worth caching: the ones that
    /// allocate.
    fn cacheable(&self) -> bool {
        match self {
            Layout::Scalar(ty) => matches!(ty, Type::String | Type::Version),
            Layout::Set(_) | Layout::Record(_) => true,
        }
    }
}

/// A schema's layout and the values already read, by field and JSON text.
/// Keep one per thread.
pub struct ParseCache {
    layout: Layout,
    fields: RefCell<FxHashMap<usize, FieldCache>>,
}

/// One field's values; a field whose values rarely repeat (an id) stops
/// being cached.
#[derive(Default)]
struct FieldCache {
    values: FxHashMap<Box<str>, Value>,
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
    /// An empty cache for values of `schema`.
    pub fn new(schema: &Type) -> Self {
        ParseCache {
            layout: Layout::of(schema),
            fields: RefCell::default(),
        }
    }
}

/// Parse `text` as a value of the cache's schema, or `None` when it does
/// not fit.
pub fn parse(text: &str, completeness: Completeness, cache: &ParseCache) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Seed {
        layout: &cache.layout,
        completeness,
        cache,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(v)
}

/// A seed that reads a value of one layout.
#[derive(Clone, Copy)]
struct Seed<'a> {
    layout: &'a Layout,
    completeness: Completeness,
    cache: &'a ParseCache,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.layout {
            Layout::Record(fields) => d.deserialize_map(RecordVisitor { fields, seed: self }),
            Layout::Set(elem) => d.deserialize_seq(SetVisitor {
                seed: Seed {
                    layout: elem,
                    ..self
                },
            }),
            Layout::Scalar(ty) => d.deserialize_any(ScalarVisitor {
                ty,
                partial: self.completeness == Completeness::Partial,
            }),
        }
    }
}

/// Read one field's value through the cache.
fn cached_field<'de, A: MapAccess<'de>>(map: &mut A, seed: Seed<'_>) -> Result<Value, A::Error> {
    let key = seed.layout as *const Layout as usize;
    let enabled = seed
        .cache
        .fields
        .borrow()
        .get(&key)
        .is_none_or(FieldCache::worth_it);
    if !enabled {
        return map.next_value_seed(seed);
    }
    let raw: &'de RawValue = map.next_value()?;
    let text = raw.get();
    {
        let mut fields = seed.cache.fields.borrow_mut();
        let field = fields.entry(key).or_default();
        if let Some(v) = field.values.get(text) {
            field.hits += 1;
            return Ok(v.clone());
        }
        field.misses += 1;
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let v = seed
        .deserialize(&mut de)
        .map_err(|_| de::Error::custom("value"))?;
    let mut fields = seed.cache.fields.borrow_mut();
    let field = fields.entry(key).or_default();
    if field.values.len() < FieldCache::LIMIT {
        field.values.insert(text.into(), v.clone());
    }
    Ok(v)
}

struct ScalarVisitor<'a> {
    ty: &'a Type,
    partial: bool,
}

impl<'de> Visitor<'de> for ScalarVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a `{}`", self.ty)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        match self.ty {
            Type::Bool => Ok(Value::Bool(v)),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        match self.ty {
            Type::Number => Ok(Value::Num(v)),
            Type::Score if (0.0..=100.0).contains(&v) => Ok(Value::Num(v)),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.visit_f64(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.visit_f64(v as f64)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        match self.ty {
            Type::String => Ok(Value::Str(v.into())),
            Type::Version => semver::Version::parse(v)
                .map(|v| Value::Ver(Arc::new(v)))
                .map_err(|_| E::custom("version")),
            _ => Err(E::custom("type")),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        if self.partial {
            Ok(Value::Missing)
        } else {
            Err(E::custom("null"))
        }
    }
}

struct SetVisitor<'a> {
    /// The elements' seed.
    seed: Seed<'a>,
}

impl<'de> Visitor<'de> for SetVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(4));
        while let Some(v) = seq.next_element_seed(self.seed)? {
            items.push(v);
        }
        Ok(Value::set(items))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        if self.seed.completeness == Completeness::Partial {
            Ok(Value::Missing)
        } else {
            Err(E::custom("null"))
        }
    }
}

struct RecordVisitor<'a> {
    fields: &'a [(String, Layout)],
    /// The record's own seed (its completeness and cache).
    seed: Seed<'a>,
}

impl<'de> Visitor<'de> for RecordVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        // Records of up to 32 fields collect on the stack: one allocation,
        // the record's own.
        const ON_STACK: usize = 32;
        let n = self.fields.len();
        let mut stack: [Option<Value>; ON_STACK] = [const { None }; ON_STACK];
        let mut heap: Vec<Option<Value>> = Vec::new();
        let slots: &mut [Option<Value>] = if n <= ON_STACK {
            &mut stack[..n]
        } else {
            heap.resize(n, None);
            &mut heap
        };
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            let Some(i) = self.fields.iter().position(|(k, _)| *k == key) else {
                return Err(de::Error::custom("unknown field"));
            };
            if slots[i].is_some() {
                return Err(de::Error::custom("duplicate field"));
            }
            let layout = &self.fields[i].1;
            let seed = Seed {
                layout,
                ..self.seed
            };
            slots[i] = Some(if layout.cacheable() {
                cached_field(&mut map, seed)?
            } else {
                map.next_value_seed(seed)?
            });
        }
        let partial = self.seed.completeness == Completeness::Partial;
        if !partial && slots.iter().any(Option::is_none) {
            return Err(de::Error::custom("missing field"));
        }
        let fields: Arc<[Value]> = slots
            .iter_mut()
            .map(|slot| slot.take().unwrap_or(Value::Absent))
            .collect();
        Ok(Value::Rec(fields))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        if self.seed.completeness == Completeness::Partial {
            Ok(Value::Missing)
        } else {
            Err(E::custom("null"))
        }
    }
}
