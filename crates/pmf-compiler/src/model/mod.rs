//! The effective policy: what a file means once its parents are fused in.
//!
//! Plain data built from syntax trees; the salsa queries in [`crate::db`]
//! build it, the checks in [`crate::check`] read it.

pub mod compose;
pub mod fixtures;
pub mod keys;
pub mod types;
pub mod vocabulary;

use std::sync::Arc;

use pmf_syntax::Place;
use pmf_syntax::ast::{self, CompactString, RuleKind};

/// What counts as "the same declaration" across a policy and its parents
/// (names inline: most are short enough to need no allocation).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemKey {
    /// `authority NAME`
    Authority(CompactString),
    /// `category NAME`
    Category(CompactString),
    /// A field of the `partner` schema.
    Field(CompactString),
    /// `migration NAME`
    Migration(CompactString),
    /// The detection `order`.
    Order,
    /// A compatibility or sustainability rule.
    Rule(RuleKind, CompactString),
    /// A validation check: dimension and name.
    Check(CompactString, CompactString),
    /// The `health` block.
    Health,
    /// The `flow` block.
    Flow,
    /// A ceiling on a field path.
    Ceiling(CompactString),
    /// The rite of a phase.
    Rite(CompactString),
    /// A public key of an authority: the authority and the key as written.
    /// Keys are additive: composition unites them instead of replacing
    /// one by another (see [`compose::compose`]).
    Key(CompactString, CompactString),
}

impl ItemKey {
    /// How the key reads in a message, such as `migration soft`.
    pub fn describe(&self) -> String {
        match self {
            ItemKey::Authority(n) => format!("authority {n}"),
            ItemKey::Category(n) => format!("category {n}"),
            ItemKey::Field(n) => format!("partner field {n}"),
            ItemKey::Migration(n) => format!("migration {n}"),
            ItemKey::Order => "order".into(),
            ItemKey::Rule(k, n) => format!("{} rule {n}", k.keyword()),
            ItemKey::Check(d, n) => format!("validation check {d}.{n}"),
            ItemKey::Health => "health".into(),
            ItemKey::Flow => "flow".into(),
            ItemKey::Ceiling(f) => format!("ceiling {f}"),
            ItemKey::Rite(p) => format!("rite {p}"),
            ItemKey::Key(a, k) => format!("key {a} {k}"),
        }
    }
}

/// One declared item and where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ItemNode {
    /// An authority.
    Authority(ast::Authority),
    /// A category.
    Category(ast::Category),
    /// A schema field.
    Field(ast::FieldDecl),
    /// A migration type.
    Migration(ast::Migration),
    /// The detection order.
    Order(ast::Order),
    /// A compatibility or sustainability rule.
    Rule(RuleKind, ast::Rule),
    /// A validation check and its dimension.
    Check(ast::Ident, ast::Check),
    /// The health block.
    Health(ast::Health),
    /// The flow.
    Flow(ast::Flow),
    /// A ceiling.
    Ceiling(ast::Ceiling),
    /// A rite.
    Rite(ast::Rite),
    /// A public key of an authority.
    Key(ast::Key),
}

/// An item with its origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced {
    /// Which declaration this is.
    pub key: ItemKey,
    /// The hash of `key` ([`ItemKey::hash_of`]), worked out once when the
    /// item is made: composition indexes every item of a policy by key
    /// after each declaration added or removed.
    pub key_hash: u64,
    /// The file that declared it (shared by the items of a file: one
    /// string per item was a fiftieth of a large check's memory).
    pub file: Arc<str>,
    /// The item's whole span.
    pub span: Place,
    /// The span to point at (its name, or its keyword).
    pub name_span: Place,
    /// `override` keyword, when present.
    pub override_kw: Option<Place>,
    /// What removing `override` removes (the keyword and the blank after
    /// it), or, without one, the empty place where it would be written (the
    /// start of the declaration).
    pub override_place: Place,
    /// The item.
    pub node: ItemNode,
    /// A hash of the item's text without comments and with whitespace
    /// folded, to tell identical definitions from different ones.
    pub fingerprint: u64,
    /// The fields the item reads ([`ItemNode::reads`]), worked out once
    /// when its chunk is parsed: the unused-field lint reads these instead
    /// of walking every expression of the policy again after each edit.
    pub reads: Box<[CompactString]>,
}

impl ItemKey {
    /// The key's hash, as [`Sourced::key_hash`] holds it.
    pub fn hash_of(&self) -> u64 {
        use std::hash::BuildHasher;
        rustc_hash::FxBuildHasher.hash_one(self)
    }
}

/// A policy with all its parents fused in.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct EffectivePolicy {
    /// The policy's name (empty without a header).
    pub name: String,
    /// The file that declares it.
    pub file: String,
    /// The `policy` header's name (where whole-policy diagnostics point).
    pub header_span: Place,
    /// The files of this policy and all its ancestors.
    pub lineage: std::collections::BTreeSet<String>,
    /// Items in order: inherited first, then the policy's own.
    pub items: Vec<Arc<Sourced>>,
    /// The inherited definitions this policy's own `override`s replaced.
    pub overridden: Vec<Arc<Sourced>>,
}

macro_rules! accessor {
    ($(#[$doc:meta])* $fn:ident, $variant:ident, $ty:ty) => {
        $(#[$doc])*
        pub fn $fn(&self) -> impl Iterator<Item = (&Sourced, &$ty)> {
            self.items.iter().filter_map(|s| match &s.node {
                ItemNode::$variant(x) => Some((&**s, x)),
                _ => None,
            })
        }
    };
}

impl Sourced {
    /// True when the item is its declaration's only one, so that writing or
    /// removing `override` before the declaration changes this item alone
    /// (a `partner`, rules or `validation` block declares several).
    pub(crate) fn alone_in_declaration(&self) -> bool {
        !matches!(
            self.node,
            ItemNode::Field(_) | ItemNode::Rule(..) | ItemNode::Check(..)
        )
    }
}

impl EffectivePolicy {
    accessor!(
        /// Authorities.
        authorities, Authority, ast::Authority);
    accessor!(
        /// Categories.
        categories, Category, ast::Category);
    accessor!(
        /// Schema fields.
        fields, Field, ast::FieldDecl);
    accessor!(
        /// Migration types.
        migrations, Migration, ast::Migration);
    accessor!(
        /// Ceilings.
        ceilings, Ceiling, ast::Ceiling);
    accessor!(
        /// Rites.
        rites, Rite, ast::Rite);
    accessor!(
        /// Authority keys: every parent's, then the policy's own.
        keys, Key, ast::Key);

    /// The detection order, if declared.
    pub fn order(&self) -> Option<(&Sourced, &ast::Order)> {
        self.items.iter().find_map(|s| match &s.node {
            ItemNode::Order(o) => Some((&**s, o)),
            _ => None,
        })
    }

    /// The health block, if declared.
    pub fn health(&self) -> Option<(&Sourced, &ast::Health)> {
        self.items.iter().find_map(|s| match &s.node {
            ItemNode::Health(h) => Some((&**s, h)),
            _ => None,
        })
    }

    /// The flow, if declared.
    pub fn flow(&self) -> Option<(&Sourced, &ast::Flow)> {
        self.items.iter().find_map(|s| match &s.node {
            ItemNode::Flow(f) => Some((&**s, f)),
            _ => None,
        })
    }

    /// Compatibility and sustainability rules.
    pub fn rules(&self) -> impl Iterator<Item = (&Sourced, RuleKind, &ast::Rule)> {
        self.items.iter().filter_map(|s| match &s.node {
            ItemNode::Rule(k, r) => Some((&**s, *k, r)),
            _ => None,
        })
    }

    /// Validation checks with their dimension.
    pub fn checks(&self) -> impl Iterator<Item = (&Sourced, &ast::Ident, &ast::Check)> {
        self.items.iter().filter_map(|s| match &s.node {
            ItemNode::Check(d, c) => Some((&**s, d, c)),
            _ => None,
        })
    }

    /// Every expression of the policy, with the file it is written in.
    pub(crate) fn expressions(&self) -> Vec<(&str, ExprRole, &ast::Expr)> {
        let mut out = Vec::new();
        for s in &self.items {
            let file = &*s.file;
            s.node.each_expression(|role, e| out.push((file, role, e)));
        }
        out
    }
}

impl ItemNode {
    /// Whether type checking reads the item: a partner field (the schema)
    /// or an item with expressions.
    pub(crate) fn is_typed(&self) -> bool {
        matches!(
            self,
            ItemNode::Field(_)
                | ItemNode::Migration(_)
                | ItemNode::Rule(..)
                | ItemNode::Check(..)
                | ItemNode::Health(_)
                | ItemNode::Ceiling(_)
        )
    }

    /// Call `f` on each expression of the item, with what it is used for.
    pub(crate) fn each_expression<'a>(&'a self, mut f: impl FnMut(ExprRole, &'a ast::Expr)) {
        match self {
            ItemNode::Migration(m) => {
                for item in &m.items {
                    match &item.kind {
                        ast::MigrationItemKind::When(e) => f(ExprRole::Condition, e),
                        ast::MigrationItemKind::To(Some(e)) => f(ExprRole::Value, e),
                        _ => {}
                    }
                }
            }
            ItemNode::Rule(_, r) => f(ExprRole::Condition, &r.condition),
            ItemNode::Check(_, c) => f(ExprRole::Condition, &c.condition),
            ItemNode::Health(h) => {
                for factor in &h.factors {
                    f(ExprRole::Numeric, &factor.source);
                }
            }
            ItemNode::Ceiling(c) => f(ExprRole::Value, &c.value),
            _ => {}
        }
    }

    /// The partner fields the item reads, sorted and without repeats: the
    /// second segment of every path of two or more segments in its
    /// expressions (`partner.power`, `target.version`), and the first
    /// segment of what a category covers or a ceiling bounds.
    pub(crate) fn reads(&self) -> Box<[CompactString]> {
        let mut out: Vec<CompactString> = Vec::new();
        let mut stack = Vec::new();
        self.each_expression(|_, e| stack.push(e));
        while let Some(e) = stack.pop() {
            match &e.kind {
                ast::ExprKind::Path(segs) => {
                    if let (2.., Some(field)) = (segs.len(), segs.get(1)) {
                        out.push(field.name.clone());
                    }
                }
                ast::ExprKind::Unary(_, x) => stack.push(x),
                ast::ExprKind::Binary(_, a, b) => {
                    stack.push(a);
                    stack.push(b);
                }
                ast::ExprKind::Call(call) => stack.extend(call.args.iter()),
                ast::ExprKind::Set(args) | ast::ExprKind::Chain(_, args) => {
                    stack.extend(args.iter());
                }
                _ => {}
            }
        }
        let first = |p: &ast::FieldPath| p.segments.first().map(|s| s.name.clone());
        match self {
            ItemNode::Category(c) => out.extend(c.covers.iter().filter_map(first)),
            ItemNode::Ceiling(c) => out.extend(first(&c.field)),
            _ => {}
        }
        out.sort_unstable();
        out.dedup();
        out.into_boxed_slice()
    }
}

/// What an expression is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExprRole {
    /// Must be a boolean.
    Condition,
    /// Must be a number or score.
    Numeric,
    /// Any type (checked by its context).
    Value,
}

/// The six validation dimensions of the seed.
pub const DIMENSIONS: [&str; 6] = [
    "version",
    "structure",
    "capability",
    "permission",
    "workflow",
    "intelligence",
];

pub use vocabulary::{ACTIONS, SEED_PHASES, TEST_ACTIONS, TEST_OUTCOMES, TEST_VERDICTS};

/// The rite spoken when an old version is released (not a phase).
pub const RELEASE_RITE: &str = "release";
