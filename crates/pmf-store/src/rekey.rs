//! A new operator key for a store: the key that signs its checkpoints
//! changes only by a recorded succession.
//!
//! A store pins the first operator key that signs it. A key kept on a
//! disk that is retired, moved to a hardware token or suspected of being
//! copied has to be replaced without starting the history again, and
//! without letting whoever can write the store file name a key of their
//! own. So a new key comes in only through the key in force: an
//! `operator_rekeyed` event of the reserved chain [`OPERATOR`] names the
//! old key (`from`) and the new one (`to`), carries the new key's
//! signature over [`rekey_message`] (whoever names a key holds it) and the
//! reason, and is committed alone, under a checkpoint the old key signs.
//! Every later checkpoint is the new key's. `pmf lineage verify` holds
//! each checkpoint (and a witness's) to the key in force at its size
//! ([`Succession::key_for`]) and the store's pinned key to the last
//! succession.

use crate::batch::Batch;
use crate::checkpoint::OperatorKey;
use crate::lineage::{Event, EventKind};
use crate::{Store, StoreError};

/// The reserved chain that records the operator key's successions.
pub const OPERATOR: &str = "@operator";

/// The longest reason recorded, in bytes.
pub const REASON_LIMIT: usize = crate::refused::REASON_LIMIT;

/// What the new key signs: that it follows `old` as the operator key of
/// the store `store_id`.
pub fn rekey_message(store_id: &str, old: &str, new: &str) -> Vec<u8> {
    format!("pmf-operator-rekey-v1\n{store_id}\n{old}\n{new}").into_bytes()
}

/// What an `operator_rekeyed` event records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rekey {
    /// The key in force before (public key, hex).
    pub from: String,
    /// The key in force after (public key, hex).
    pub to: String,
    /// The new key's signature (hex) over [`rekey_message`].
    pub signature: String,
    /// Why, as the operator gave it.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub time: String,
}

impl Rekey {
    /// Its event.
    fn event(&self) -> Event {
        Event {
            kind: EventKind::OperatorRekeyed,
            from: Some(self.from.clone()),
            to: Some(self.to.clone()),
            signature: Some(self.signature.clone()),
            detail: Some(self.reason.clone()),
            time: self.time.clone(),
            ..Event::default()
        }
    }

    /// The succession an event of [`OPERATOR`] records.
    pub fn of_event(e: &Event) -> Option<Rekey> {
        (e.kind == EventKind::OperatorRekeyed).then(|| Rekey {
            from: e.from.clone().unwrap_or_default(),
            to: e.to.clone().unwrap_or_default(),
            signature: e.signature.clone().unwrap_or_default(),
            reason: e.detail.clone().unwrap_or_default(),
            time: e.time.clone(),
        })
    }
}

/// What is wrong with `e`, an event of `chain`, as a succession or beside
/// one: the chain [`OPERATOR`] holds `operator_rekeyed` events that name
/// two keys and nothing a run records, signed by the new key over the
/// store's id; no other chain holds one.
pub fn problem(chain: &str, e: &Event, store_id: &str) -> Option<String> {
    if chain != OPERATOR {
        return (e.kind == EventKind::OperatorRekeyed)
            .then(|| "it records a new operator key outside the operator key's chain".to_string());
    }
    let Some(r) = Rekey::of_event(e) else {
        return Some(format!(
            "the operator key's chain holds a `{}` event",
            e.kind
        ));
    };
    let runs = e.state.is_some()
        || !e.stable.is_empty()
        || !e.signers.is_empty()
        || !e.approvals.is_empty()
        || e.outcome.is_some()
        || e.plan_hash.is_some();
    if runs {
        return Some("a new operator key that names approvals, an outcome or a state".into());
    }
    if r.from == r.to {
        return Some("a new operator key that is the old one".into());
    }
    let signed = crate::verify::signature_holds(
        &r.to,
        &r.signature,
        &rekey_message(store_id, &r.from, &r.to),
    );
    (!signed).then(|| {
        format!(
            "the new operator key {}… did not sign its succession (forged or edited)",
            short(&r.to)
        )
    })
}

/// The start of a key, as messages show it.
fn short(key: &str) -> &str {
    key.get(..16).unwrap_or(key)
}

/// The operator keys of a store in the order they were in force, with
/// where each succession stands in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Succession {
    /// `(global_seq, from, to)` of each `operator_rekeyed` event, in order.
    pub changes: Vec<(i64, String, String)>,
}

impl Succession {
    /// The key that signs a checkpoint of `size` events: the one the last
    /// succession before its last event brought in (a succession's own
    /// checkpoint, which ends at it, is the old key's), else the first
    /// key (the first succession's `from`), else `pinned` (the store's
    /// key, never replaced).
    pub fn key_for<'a>(&'a self, size: u64, pinned: Option<&'a str>) -> Option<&'a str> {
        match self
            .changes
            .iter()
            .rev()
            .find(|(at, _, _)| (*at as u64) < size)
        {
            Some((_, _, to)) => Some(to),
            None => self
                .changes
                .first()
                .map(|(_, from, _)| from.as_str())
                .or(pinned),
        }
    }

    /// What is wrong with a succession at `global_seq` from `from`: the
    /// key it replaces is not the one in force there.
    pub fn follow(&mut self, global_seq: i64, from: &str, to: &str) -> Option<String> {
        let broken = self
            .changes
            .last()
            .filter(|(_, _, last)| last != from)
            .map(|(_, _, last)| {
                format!(
                    "it replaces operator key {}…, but the key in force is {}…",
                    short(from),
                    short(last)
                )
            });
        self.changes
            .push((global_seq, from.to_string(), to.to_string()));
        broken
    }

    /// What is wrong with the store's pinned key: not the key the last
    /// succession brought in.
    pub fn pinned_problem(&self, pinned: Option<&str>) -> Option<String> {
        let (_, _, last) = self.changes.last()?;
        (pinned != Some(last.as_str())).then(|| {
            format!(
                "the store's operator key is {}…, but its last succession brought in {}… (edited outside pmf)",
                pinned.map_or("none", short),
                short(last)
            )
        })
    }
}

impl Store {
    /// Make `new` the key that signs this store's checkpoints from now on,
    /// by the key in force (`old`, which signs the checkpoint that records
    /// the succession), for `reason`. Refused when the store has no key
    /// yet, when `old` is not its key, and when `new` is `old`.
    pub fn rekey(
        &mut self,
        old: &OperatorKey,
        new: &OperatorKey,
        reason: &str,
    ) -> Result<Rekey, StoreError> {
        self.holds_operator(old)?;
        let (from, to) = (old.public_hex(), new.public_hex());
        if from == to {
            return Err(StoreError::SameOperatorKey {
                path: new.path.clone(),
            });
        }
        let mut batch = self.begin(old)?;
        let store_id = batch.store_id().to_string();
        let rekey = Rekey {
            signature: new.sign_hex(&rekey_message(&store_id, &from, &to)),
            from,
            to,
            reason: crate::refused::bounded(reason),
            time: crate::clock::now_rfc3339(),
        };
        batch.record_rekey(&rekey)?;
        batch.commit()?;
        Ok(rekey)
    }

    /// The operator key the store pins (public, hex), if it has one yet.
    pub fn pinned_operator_key(&self) -> Result<Option<String>, StoreError> {
        self.meta("operator_key")
    }

    /// Whether `key` is the one in force: an error naming both when not
    /// (and, for a key the store retired, the key that replaced it), and
    /// when the store has no key yet (nothing to replace).
    pub fn holds_operator(&self, key: &OperatorKey) -> Result<(), StoreError> {
        let given = key.public_hex();
        match self.meta("operator_key")? {
            None => Err(StoreError::NothingToRekey),
            Some(pinned) if pinned != given => {
                let retired = self.rekeys()?.into_iter().find(|(_, r)| r.from == given);
                Err(match retired {
                    Some((_, r)) => StoreError::RetiredOperator {
                        path: key.path.clone(),
                        given: short(&given).to_string(),
                        by: short(&r.to).to_string(),
                        time: r.time,
                    },
                    None => StoreError::ForeignOperator {
                        pinned: short(&pinned).to_string(),
                        path: key.path.clone(),
                        given: short(&given).to_string(),
                    },
                })
            }
            Some(_) => Ok(()),
        }
    }

    /// The successions of the operator key recorded, oldest first, each
    /// with its place in the log.
    pub fn rekeys(&self) -> Result<Vec<(i64, Rekey)>, StoreError> {
        Ok(self
            .lineage(Some(OPERATOR))?
            .iter()
            .filter_map(|stored| Some((stored.global_seq, Rekey::of_event(&stored.event)?)))
            .collect())
    }

    /// The operator key (public, hex) that signs a checkpoint of `size`
    /// events of this store, as its successions say ([`Succession::key_for`]).
    pub fn operator_key_at(&self, size: u64) -> Result<Option<String>, StoreError> {
        let mut succession = Succession::default();
        for (at, r) in self.rekeys()? {
            succession.follow(at, &r.from, &r.to);
        }
        let pinned = self.meta("operator_key")?;
        Ok(succession
            .key_for(size, pinned.as_deref())
            .map(str::to_string))
    }
}

impl Batch<'_> {
    /// Record `rekey` as the next event of [`OPERATOR`] and pin its new
    /// key: the commit is still signed by the old one.
    fn record_rekey(&mut self, rekey: &Rekey) -> Result<(), StoreError> {
        let mut chain = self.chain(OPERATOR)?;
        self.append(&mut chain, &mut rekey.event())?;
        self.pin_operator(&rekey.to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_checkpoint_is_held_to_the_key_in_force_at_its_size() {
        let none = Succession::default();
        assert_eq!(none.key_for(5, Some("k0")), Some("k0"));
        assert_eq!(none.pinned_problem(Some("k0")), None);
        let mut s = Succession::default();
        assert_eq!(s.follow(10, "k1", "k2"), None);
        // The succession's own checkpoint (ending at event 10) is the old
        // key's; every later one the new key's.
        assert_eq!(s.key_for(9, Some("k2")), Some("k1"));
        assert_eq!(s.key_for(10, Some("k2")), Some("k1"));
        assert_eq!(s.key_for(11, Some("k2")), Some("k2"));
        assert!(s.follow(20, "k9", "k3").is_some());
        assert_eq!(s.key_for(21, None), Some("k3"));
        assert_eq!(s.pinned_problem(Some("k3")), None);
        assert!(s.pinned_problem(Some("k2")).is_some());
    }

    #[test]
    fn a_succession_is_signed_by_its_new_key_and_holds_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (old, _) = OperatorKey::load(&dir.path().join("old.key"), true).unwrap();
        let (new, _) = OperatorKey::load(&dir.path().join("new.key"), true).unwrap();
        let (from, to) = (old.public_hex(), new.public_hex());
        let r = Rekey {
            signature: new.sign_hex(&rekey_message("s1", &from, &to)),
            from: from.clone(),
            to: to.clone(),
            reason: "disk retired".into(),
            time: "2026-12-04T00:00:00Z".into(),
        };
        let e = r.event();
        assert_eq!(Rekey::of_event(&e), Some(r.clone()));
        assert_eq!(problem(OPERATOR, &e, "s1"), None);
        // Another store's, or signed by the old key: not the new key's word.
        assert!(problem(OPERATOR, &e, "s2").is_some());
        let by_old = Event {
            signature: Some(old.sign_hex(&rekey_message("s1", &from, &to))),
            ..e.clone()
        };
        assert!(problem(OPERATOR, &by_old, "s1").is_some());
        assert!(problem("p-001", &e, "s1").is_some());
        let approving = Event {
            signers: vec!["TSC:aa".into()],
            ..e.clone()
        };
        assert!(problem(OPERATOR, &approving, "s1").is_some());
        let other = Event {
            kind: EventKind::Completed,
            ..e
        };
        assert!(problem(OPERATOR, &other, "s1").is_some());
        assert_eq!(problem("p-001", &other, "s1"), None);
    }
}
