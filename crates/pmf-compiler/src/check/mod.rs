//! The checks, one file per family of diagnostics. Each check reads an
//! [`EffectivePolicy`] and returns diagnostics; none does I/O.

pub mod ceilings;
pub mod flow;
pub mod governance;
pub mod health;
pub mod keys;
pub mod lints;
pub mod migrations;
pub mod names;
pub(crate) mod suppress;
pub(crate) mod test_blocks;
pub mod types;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::model::types::Type;
use crate::model::{EffectivePolicy, ItemNode, Sourced};
use pmf_syntax::ast::Ident;
use pmf_syntax::ast::{self, Authority};
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix, closest};

/// What every check reads: the policy, its schema and name indexes built
/// once so that every lookup is constant time.
pub(crate) struct Context<'a> {
    /// The policy being checked.
    pub policy: &'a EffectivePolicy,
    /// The partner schema as a record type.
    pub schema: Type,
    categories: Vec<&'a str>,
    category_set: HashSet<&'a str>,
    authorities: HashMap<&'a str, &'a Authority>,
    migrations: Vec<&'a str>,
    migration_set: HashSet<&'a str>,
    governors: HashMap<&'a str, Vec<Governor<'a>>>,
    /// The items of each kind the checks look through, in order (what the
    /// policy's accessors give, gathered in one pass: each accessor walks
    /// every item of the policy, tens of thousands).
    kinds: Kinds<'a>,
}

/// The policy's items of the kinds the name, governance and key checks
/// walk, in the policy's order (not the validation checks: a list of them
/// per context, two contexts at once, was a megabyte of a large check).
#[derive(Default)]
struct Kinds<'a> {
    authorities: Vec<(&'a Sourced, &'a Authority)>,
    categories: Vec<(&'a Sourced, &'a ast::Category)>,
    migrations: Vec<(&'a Sourced, &'a ast::Migration)>,
    keys: Vec<(&'a Sourced, &'a ast::Key)>,
    rites: Vec<(&'a Sourced, &'a ast::Rite)>,
}

/// An authority's claim to govern a category: where it is written.
#[derive(Clone, Copy)]
pub(crate) struct Governor<'a> {
    /// The authority's declaration.
    pub item: &'a Sourced,
    /// The authority.
    pub authority: &'a Authority,
    /// The category name in its `governs` list.
    pub entry: &'a Ident,
}

impl<'a> Context<'a> {
    /// A context for `policy`, its schema built here (the database builds
    /// it once for all the check families: [`Context::with_schema`]).
    #[cfg(test)]
    pub fn new(policy: &'a EffectivePolicy) -> Self {
        Context::with_schema(policy, crate::model::types::schema(policy))
    }

    /// The context of `policy` whose schema ([`crate::model::types::schema`]) is built
    /// already (the database builds it once for every check family).
    pub(crate) fn with_schema(policy: &'a EffectivePolicy, schema: Type) -> Self {
        // One pass over the items (a policy has tens of thousands).
        let mut categories: Vec<&str> = Vec::new();
        let mut migrations: Vec<&str> = Vec::new();
        let mut governors: HashMap<&str, Vec<Governor<'a>>> = HashMap::default();
        let mut authorities = HashMap::default();
        let mut kinds = Kinds::default();
        for item in &policy.items {
            let item: &'a Sourced = item;
            match &item.node {
                ItemNode::Category(c) => {
                    categories.push(c.name.name.as_str());
                    kinds.categories.push((item, c));
                }
                ItemNode::Migration(m) => {
                    migrations.push(m.name.name.as_str());
                    kinds.migrations.push((item, m));
                }
                ItemNode::Key(k) => kinds.keys.push((item, k)),
                ItemNode::Rite(r) => kinds.rites.push((item, r)),
                ItemNode::Authority(authority) => {
                    kinds.authorities.push((item, authority));
                    authorities.insert(authority.name.name.as_str(), authority);
                    for entry in &authority.governs {
                        governors
                            .entry(entry.name.as_str())
                            .or_default()
                            .push(Governor {
                                item,
                                authority,
                                entry,
                            });
                    }
                }
                _ => {}
            }
        }
        Context {
            policy,
            schema,
            category_set: categories.iter().copied().collect(),
            categories,
            authorities,
            migration_set: migrations.iter().copied().collect(),
            migrations,
            governors,
            kinds,
        }
    }

    /// The policy's authorities ([`EffectivePolicy::authorities`]).
    pub(crate) fn authorities(&self) -> impl Iterator<Item = (&'a Sourced, &'a Authority)> + '_ {
        self.kinds.authorities.iter().copied()
    }

    /// The policy's categories ([`EffectivePolicy::categories`]).
    pub(crate) fn categories(&self) -> impl Iterator<Item = (&'a Sourced, &'a ast::Category)> + '_ {
        self.kinds.categories.iter().copied()
    }

    /// The policy's migration types ([`EffectivePolicy::migrations`]).
    pub(crate) fn migrations(
        &self,
    ) -> impl Iterator<Item = (&'a Sourced, &'a ast::Migration)> + '_ {
        self.kinds.migrations.iter().copied()
    }

    /// The policy's authority keys ([`EffectivePolicy::keys`]).
    pub(crate) fn keys(&self) -> impl Iterator<Item = (&'a Sourced, &'a ast::Key)> + '_ {
        self.kinds.keys.iter().copied()
    }

    /// The policy's rites ([`EffectivePolicy::rites`]).
    pub(crate) fn rites(&self) -> impl Iterator<Item = (&'a Sourced, &'a ast::Rite)> + '_ {
        self.kinds.rites.iter().copied()
    }

    /// True when the policy declares category `name`.
    pub(crate) fn has_category(&self, name: &str) -> bool {
        self.category_set.contains(name)
    }

    /// The authority called `name`, if declared.
    pub fn authority(&self, name: &str) -> Option<&'a Authority> {
        self.authorities.get(name).copied()
    }

    /// True when the policy declares authority `name`.
    pub(crate) fn has_authority(&self, name: &str) -> bool {
        self.authorities.contains_key(name)
    }

    /// True when the policy declares migration type `name`.
    pub(crate) fn has_migration(&self, name: &str) -> bool {
        self.migration_set.contains(name)
    }

    /// Names of the declared categories, in declaration order.
    pub(crate) fn category_names(&self) -> &[&'a str] {
        &self.categories
    }

    /// Names of the declared authorities.
    pub(crate) fn authority_names(&self) -> Vec<&'a str> {
        self.authorities()
            .map(|(_, a)| a.name.name.as_str())
            .collect()
    }

    /// Names of the declared migration types, in declaration order.
    pub(crate) fn migration_names(&self) -> &[&'a str] {
        &self.migrations
    }

    /// The authorities that claim to govern `category`.
    pub(crate) fn governors_of(&self, category: &str) -> &[Governor<'a>] {
        self.governors.get(category).map_or(&[], Vec::as_slice)
    }
}

/// `category` → `categories`, `phase` → `phases`.
fn plural(what: &str) -> String {
    match what.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{what}s"),
    }
}

/// An "unknown X" diagnostic at `ident`: when a candidate is close, a
/// did-you-mean help and the replacement as a fix; else the candidates.
pub fn unknown(
    code: Code,
    file: &str,
    what: &str,
    ident: &Ident,
    candidates: &[&str],
) -> Diagnostic {
    let close = closest(&ident.name, candidates.iter().copied());
    let help = close.map(|c| format!("did you mean `{c}`?")).or_else(|| {
        if candidates.is_empty() {
            None
        } else {
            let mut list: Vec<&str> = candidates.to_vec();
            list.sort_unstable();
            list.dedup();
            let shown: Vec<String> = list.iter().take(8).map(|c| format!("`{c}`")).collect();
            Some(format!("known {}: {}", plural(what), shown.join(", ")))
        }
    });
    Diagnostic::new(
        code,
        file,
        ident.span,
        format!("unknown {what} `{}`", ident.name),
    )
    .with_label(format!("no {what} of this name"))
    .with_help_opt(help)
    .with_fixes(close.map(|c| Fix::certain(ident.span, c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The items of each kind the context gathers are those the policy's
    /// accessors give, in order, on every example and fixture.
    #[test]
    fn the_kinds_gathered_are_the_policys_accessors() {
        fn same<T>(a: impl Iterator<Item = T>, b: impl Iterator<Item = T>) -> bool
        where
            T: Copy + PartialEq,
        {
            a.eq(b)
        }
        let files = crate::test_files::policies(&["examples", "tests/fixtures"]);
        for path in &files {
            let (session, file) = crate::test_files::session_of(path);
            let policy = &crate::db::resolve(session.db(), session.workspace, file).policy;
            let cx = Context::new(policy);
            let name = path.display();
            assert!(same(cx.authorities(), policy.authorities()), "{name}");
            assert!(same(cx.categories(), policy.categories()), "{name}");
            assert!(same(cx.migrations(), policy.migrations()), "{name}");
            assert!(same(cx.keys(), policy.keys()), "{name}");
            assert!(same(cx.rites(), policy.rites()), "{name}");
        }
        assert!(files.len() > 100);
    }
}
