//! The checks, one file per family of diagnostics. Each check reads an
//! [`EffectivePolicy`] and returns diagnostics; none does I/O.

pub mod ceilings;
pub mod flow;
pub mod governance;
pub mod health;
pub mod lints;
pub mod migrations;
pub mod names;
pub mod types;

use crate::diagnostics::{Code, Diagnostic, did_you_mean};
use crate::model::EffectivePolicy;
use crate::model::types::{Type, schema};
use crate::syntax::ast::Ident;

/// What every check reads.
pub struct Context<'a> {
    /// The policy being checked.
    pub policy: &'a EffectivePolicy,
    /// The partner schema as a record type.
    pub schema: Type,
}

impl<'a> Context<'a> {
    /// A context for `policy`.
    pub fn new(policy: &'a EffectivePolicy) -> Self {
        Context {
            policy,
            schema: schema(policy),
        }
    }

    /// True when the policy declares category `name`.
    pub fn has_category(&self, name: &str) -> bool {
        self.policy.categories().any(|(_, c)| c.name.name == name)
    }

    /// True when the policy declares authority `name`.
    pub fn has_authority(&self, name: &str) -> bool {
        self.policy.authorities().any(|(_, a)| a.name.name == name)
    }

    /// True when the policy declares migration type `name`.
    pub fn has_migration(&self, name: &str) -> bool {
        self.policy.migrations().any(|(_, m)| m.name.name == name)
    }

    /// Names of the declared categories.
    pub fn category_names(&self) -> Vec<&str> {
        self.policy.categories().map(|(_, c)| c.name.name.as_str()).collect()
    }

    /// Names of the declared authorities.
    pub fn authority_names(&self) -> Vec<&str> {
        self.policy.authorities().map(|(_, a)| a.name.name.as_str()).collect()
    }

    /// Names of the declared migration types.
    pub fn migration_names(&self) -> Vec<&str> {
        self.policy.migrations().map(|(_, m)| m.name.name.as_str()).collect()
    }
}

/// An "unknown X" diagnostic at `ident` with a did-you-mean help.
pub fn unknown(code: Code, file: &str, what: &str, ident: &Ident, candidates: &[&str]) -> Diagnostic {
    let help = did_you_mean(&ident.name, candidates.iter().copied()).or_else(|| {
        if candidates.is_empty() {
            None
        } else {
            let mut list: Vec<&str> = candidates.to_vec();
            list.sort_unstable();
            list.dedup();
            let shown: Vec<String> = list.iter().take(8).map(|c| format!("`{c}`")).collect();
            Some(format!("known {what}s: {}", shown.join(", ")))
        }
    });
    Diagnostic::new(code, file, ident.span, format!("unknown {what} `{}`", ident.name))
        .with_label(format!("no {what} of this name"))
        .with_help_opt(help)
}
