//! The types of PMF values and the partner schema as a record type.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use std::fmt;
use std::sync::Arc;

use super::EffectivePolicy;
use pmf_syntax::ast::{TypeExpr, TypeExprKind};

/// A PMF type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `true` / `false`
    Bool,
    /// Any number.
    Number,
    /// A number in 0..=100.
    Score,
    /// Text.
    String,
    /// A semantic version.
    Version,
    /// A set of values of one type.
    Set(Box<Type>),
    /// Named fields.
    Record(Arc<Fields>),
    /// Unknown (an error already reported, or the element of `[]`); fits anything.
    Unknown,
}

impl Type {
    /// True for `number` and `score`.
    pub(crate) fn is_numeric(&self) -> bool {
        matches!(self, Type::Number | Type::Score | Type::Unknown)
    }

    /// True when values of the two types can be compared for equality.
    pub fn compatible(&self, other: &Type) -> bool {
        match (self, other) {
            (Type::Unknown, _) | (_, Type::Unknown) => true,
            (a, b) if a.is_numeric() && b.is_numeric() => true,
            (Type::Set(a), Type::Set(b)) => a.compatible(b),
            (Type::Record(a), Type::Record(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|((ka, ta), (kb, tb))| ka == kb && ta.compatible(tb))
            }
            (a, b) => a == b,
        }
    }

    /// True when `<`, `<=`, `>`, `>=` apply to the type.
    pub fn is_ordered(&self) -> bool {
        matches!(
            self,
            Type::Number | Type::Score | Type::Version | Type::Unknown
        )
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Bool => f.write_str("bool"),
            Type::Number => f.write_str("number"),
            Type::Score => f.write_str("score"),
            Type::String => f.write_str("string"),
            Type::Version => f.write_str("version"),
            Type::Set(t) => write!(f, "set<{t}>"),
            Type::Record(fields) => {
                f.write_str("{ ")?;
                for (i, (k, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {t}")?;
                }
                f.write_str(" }")
            }
            Type::Unknown => f.write_str("unknown"),
        }
    }
}

/// The fields of a record type in name order (the map it derefs to), with
/// a hash index for lookups by name: type inference looks up every segment
/// of every path, and in a schema of thousands of fields the ordered map's
/// string comparisons were a tenth of a check.
#[derive(Clone, Debug, Default)]
pub struct Fields {
    by_name: BTreeMap<String, Type>,
    index: FxHashMap<String, Type>,
}

impl Fields {
    /// The type of field `name`.
    pub fn get(&self, name: &str) -> Option<&Type> {
        self.index.get(name)
    }

    /// True when the record has a field `name`.
    pub fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

impl std::ops::Deref for Fields {
    type Target = BTreeMap<String, Type>;

    fn deref(&self) -> &Self::Target {
        &self.by_name
    }
}

impl PartialEq for Fields {
    fn eq(&self, other: &Self) -> bool {
        self.by_name == other.by_name
    }
}

impl Eq for Fields {}

impl From<BTreeMap<String, Type>> for Fields {
    fn from(by_name: BTreeMap<String, Type>) -> Self {
        let index = by_name
            .iter()
            .map(|(k, t)| (k.clone(), t.clone()))
            .collect();
        Fields { by_name, index }
    }
}

impl FromIterator<(String, Type)> for Fields {
    fn from_iter<I: IntoIterator<Item = (String, Type)>>(iter: I) -> Self {
        Fields::from(iter.into_iter().collect::<BTreeMap<_, _>>())
    }
}

/// The names of the built-in scalar types.
pub const TYPE_NAMES: [&str; 5] = ["bool", "number", "score", "string", "version"];

/// The type a written type denotes (`Unknown` for an unknown name).
pub fn lower(ty: &TypeExpr) -> Type {
    match &ty.kind {
        TypeExprKind::Named(n) => match n.name.as_str() {
            "bool" => Type::Bool,
            "number" => Type::Number,
            "score" => Type::Score,
            "string" => Type::String,
            "version" => Type::Version,
            _ => Type::Unknown,
        },
        TypeExprKind::Set(t) => Type::Set(Box::new(lower(t))),
        TypeExprKind::Record(fields) => Type::Record(Arc::new(
            fields
                .iter()
                .map(|f| (f.name.name.to_string(), lower(&f.ty)))
                .collect(),
        )),
    }
}

/// The partner schema of an effective policy as one record type.
pub fn schema(policy: &EffectivePolicy) -> Type {
    Type::Record(Arc::new(
        policy
            .fields()
            .map(|(_, f)| (f.name.name.to_string(), lower(&f.ty)))
            .collect(),
    ))
}

/// The type of the field at `path` in `record`, if every segment exists.
pub fn field_type<'a>(record: &'a Type, path: &[&str]) -> Option<&'a Type> {
    let mut current = record;
    for seg in path {
        match current {
            Type::Record(fields) => current = fields.get(seg)?,
            _ => return None,
        }
    }
    Some(current)
}
