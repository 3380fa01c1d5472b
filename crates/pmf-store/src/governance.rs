//! The policy a store is governed by, and how it may change.
//!
//! A plan carries its policy, and the policy says which keys approve: so
//! whoever writes the policy chooses the trust root. A store therefore pins
//! the policy of the first plan applied to it: a `governed` event of the
//! reserved chain [`GOVERNANCE`] records its hash and the keys it trusts,
//! by authority. A plan under another policy (a key rotated, a rule
//! changed, a key swapped for the operator's own) is applied only with the
//! approval of the governing policy's authorities: for each authority that
//! has keys, one signature of the new plan by one of its pinned keys. The
//! change is then recorded as the next `governed` event, with those
//! endorsements, and `pmf lineage verify` holds every run, approval and
//! review decision after it to the policy in force.

use std::collections::{BTreeMap, BTreeSet};

use crate::lineage::{Event, EventKind};

/// The reserved chain that records the governing policy (no partner id
/// starts with `@`: plans refuse such ids).
pub const GOVERNANCE: &str = "@governance";

/// What a `governed` event says when the store kept the policy's text
/// with it (schema 6 on): the event is signed with the rest of the log,
/// so a text deleted afterwards is missed by `pmf lineage verify`, not
/// taken for a policy that governed before texts were kept.
pub const TEXT_KEPT: &str = "policy text kept";

/// The policy a store is governed by.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Governing {
    /// The policy's hash (as a plan pins it).
    pub policy_hash: String,
    /// Public keys (lowercase hex) by authority.
    pub keys: BTreeMap<String, BTreeSet<String>>,
}

impl Governing {
    /// A governing policy from its hash and `(authority, key)` pairs.
    pub fn new<'a>(policy_hash: &str, keys: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut out = Governing {
            policy_hash: policy_hash.to_string(),
            keys: BTreeMap::new(),
        };
        for (authority, key) in keys {
            out.keys
                .entry(authority.to_string())
                .or_default()
                .insert(key.to_ascii_lowercase());
        }
        out
    }

    /// The governing policy a `governed` event records.
    pub fn of_event(e: &Event) -> Option<Self> {
        if e.kind != EventKind::Governed {
            return None;
        }
        let keys = e.signers.iter().filter_map(|s| s.split_once(':'));
        Some(Governing::new(e.policy_hash.as_deref()?, keys))
    }

    /// The `signers` of its event: `AUTHORITY:key`, sorted.
    pub fn signers(&self) -> Vec<String> {
        self.keys
            .iter()
            .flat_map(|(a, keys)| keys.iter().map(move |k| format!("{a}:{k}")))
            .collect()
    }

    /// True when `key` signs for `authority` under this policy.
    pub fn trusts(&self, authority: &str, key: &str) -> bool {
        self.keys
            .get(authority)
            .is_some_and(|keys| keys.contains(&key.to_ascii_lowercase()))
    }

    /// The authorities (with keys) whose approval a change of policy
    /// needs, and that `endorsers` (`(authority, key)` with a valid
    /// signature of the new plan) leave without one.
    pub fn unendorsed<'a>(
        &self,
        endorsers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Vec<String> {
        let endorsed: BTreeSet<&str> = endorsers
            .into_iter()
            .filter(|(a, k)| self.trusts(a, k))
            .map(|(a, _)| a)
            .collect();
        self.keys
            .iter()
            .filter(|(a, keys)| !keys.is_empty() && !endorsed.contains(a.as_str()))
            .map(|(a, _)| a.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_needs_one_pinned_key_of_every_authority() {
        let g = Governing::new("p1", [("TSC", "AA"), ("TSC", "bb"), ("ERC", "cc")]);
        assert!(g.trusts("TSC", "aa"));
        assert!(!g.trusts("ERC", "aa"));
        assert_eq!(g.unendorsed([]), ["ERC", "TSC"]);
        assert_eq!(g.unendorsed([("TSC", "bb")]), ["ERC"]);
        // A key of another authority, or one not pinned, endorses nothing.
        assert_eq!(g.unendorsed([("ERC", "bb"), ("TSC", "dd")]), ["ERC", "TSC"]);
        assert!(g.unendorsed([("TSC", "aa"), ("ERC", "CC")]).is_empty());
        // A policy without keys governs nothing a change could need.
        assert!(Governing::new("p0", []).unendorsed([]).is_empty());
    }

    #[test]
    fn a_governed_event_round_trips() {
        let g = Governing::new("p1", [("TSC", "aa"), ("ERC", "cc")]);
        let e = Event {
            kind: EventKind::Governed,
            policy_hash: Some("p1".into()),
            signers: g.signers(),
            ..Event::default()
        };
        assert_eq!(Governing::of_event(&e), Some(g));
    }
}
