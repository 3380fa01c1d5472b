//! Changes the store refused: plans `pmf apply` refused, and states `pmf
//! state import` refused. A refusal changes nothing, but an auditor should
//! still see the attempt: each one is a `refused` event of the reserved
//! chain [`REFUSED`] (no partner id starts with `@`), written in a
//! transaction of its own and covered by the signed checkpoints like any
//! other event. It records the plan's hash (an import has none), the policy
//! hash, why it was refused and when. `pmf lineage verify` holds the chain
//! to these events only, and no refusal to any other chain.

use crate::batch::Batch;
use crate::lineage::{Event, EventKind};
use crate::{Store, StoreError};

/// The reserved chain that records refused plans.
pub const REFUSED: &str = "@refused";

/// The longest reason recorded, in bytes (a longer one is cut, and says
/// so): a refusal names what was wrong, not every partner it was wrong for.
pub const REASON_LIMIT: usize = 2048;

/// What a refusal records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The refused plan's hash (of the file as it was given); `None` for
    /// what is not a plan (an import).
    pub plan_hash: Option<String>,
    /// The policy hash the plan names (or the import was given).
    pub policy_hash: String,
    /// Why it was refused, as the operator was told.
    pub reason: String,
    /// When (RFC 3339, UTC).
    pub time: String,
}

impl Refusal {
    /// Its event (the reason cut to [`REASON_LIMIT`]).
    fn event(&self) -> Event {
        Event {
            kind: EventKind::Refused,
            plan_hash: self.plan_hash.clone(),
            policy_hash: Some(self.policy_hash.clone()),
            detail: Some(bounded(&self.reason)),
            time: self.time.as_str().into(),
            ..Event::default()
        }
    }

    /// The refusal an event of [`REFUSED`] records.
    pub fn of_event(e: &Event) -> Option<Refusal> {
        (e.kind == EventKind::Refused).then(|| Refusal {
            plan_hash: e.plan_hash.clone(),
            policy_hash: e.policy_hash.clone().unwrap_or_default(),
            reason: e.detail.clone().unwrap_or_default(),
            time: e.time.to_string(),
        })
    }
}

/// `reason` cut at a character boundary to at most [`REASON_LIMIT`] bytes.
pub(crate) fn bounded(reason: &str) -> String {
    if reason.len() <= REASON_LIMIT {
        return reason.to_string();
    }
    const CUT: &str = " … (cut)";
    let mut end = REASON_LIMIT - CUT.len();
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{CUT}", reason.get(..end).unwrap_or_default())
}

/// What is wrong with `e`, an event of `chain`, as a refusal or beside
/// one: the refusals' chain holds `refused` events that approve and change
/// nothing, and no other chain holds one.
pub fn problem(chain: &str, e: &Event) -> Option<String> {
    if chain != REFUSED {
        return (e.kind == EventKind::Refused)
            .then(|| "it records a refused plan outside the chain of refusals".to_string());
    }
    if e.kind != EventKind::Refused {
        return Some(format!("the chain of refusals holds a `{}` event", e.kind));
    }
    e.changes_anything()
        .then(|| "a refusal that names approvals, an outcome or a state".to_string())
}

impl Batch<'_> {
    /// Record `refusal` as the next event of [`REFUSED`].
    pub fn refuse(&mut self, refusal: &Refusal) -> Result<(), StoreError> {
        let mut chain = self.chain(REFUSED)?;
        self.append(&mut chain, &mut refusal.event())
    }
}

impl Store {
    /// How many plans were refused, and the last refusal, if any.
    pub fn refusals(&self) -> Result<(u64, Option<Refusal>), StoreError> {
        let Some((seq, body)) = self.stored_at(REFUSED, crate::ChainEnd::Last)? else {
            return Ok((0, None));
        };
        let last = self.read_stored(&body, REFUSED, seq)?;
        Ok((seq, last.as_ref().and_then(Refusal::of_event)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_partner_row_takes_a_reserved_name() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        let (key, made) = store.operator_key(None).unwrap();
        assert!(made);
        let batch = store.begin(&key).unwrap();
        for id in [REFUSED, crate::governance::GOVERNANCE, "@x"] {
            assert!(
                matches!(
                    batch.put_partner(id, "{}", None, "active"),
                    Err(StoreError::ReservedId(_))
                ),
                "{id}"
            );
        }
        assert!(batch.put_partner("p-1", "{}", None, "active").is_ok());
    }

    /// A second writer the lock did not keep out (two handles on one
    /// store here) is named as such, not as an edit: the handle that read
    /// the log before the other wrote writes nothing, and a handle that
    /// reads it afresh writes on.
    #[test]
    fn a_write_after_another_writer_s_is_refused_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut first = Store::open(&path).unwrap();
        let (key, _) = first.operator_key(None).unwrap();
        // A refusal recorded through `store`, in a transaction of its own.
        let refuse = |store: &mut Store, reason: &str| -> Result<(), StoreError> {
            let mut batch = store.begin(&key)?;
            batch.refuse(&Refusal {
                plan_hash: None,
                policy_hash: "cd".repeat(32),
                reason: reason.into(),
                time: "2026-12-04T00:00:00Z".into(),
            })?;
            batch.commit().map(|_| ())
        };
        refuse(&mut first, "one").unwrap();
        // Another handle reads the log, then the first writes again.
        let mut second = Store::open(&path).unwrap();
        second.vouch_for_log().unwrap();
        refuse(&mut first, "two").unwrap();
        let e = refuse(&mut second, "lost").unwrap_err();
        assert!(matches!(e, StoreError::WrittenMeanwhile), "{e}");
        assert!(!e.edited_outside());
        assert_eq!(second.refusals().unwrap().0, 2);
        // The first handle signed what it wrote: it writes on.
        refuse(&mut first, "three").unwrap();
        // Read afresh, the log is the one its checkpoints vouch for.
        let mut third = Store::open(&path).unwrap();
        third.vouch_for_log().unwrap();
        refuse(&mut third, "four").unwrap();
        assert_eq!(third.refusals().unwrap().0, 4);
    }

    /// A store this process made and wrote nothing to is removed when it
    /// is closed, unless another writer (past the lock: its file removed
    /// while held) committed to the very file meanwhile; found by
    /// `concurrency.py`, where the removal lost that writer's store.
    #[test]
    fn a_store_made_here_is_removed_only_when_no_one_wrote_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let refusal = Refusal {
            plan_hash: None,
            policy_hash: "cd".repeat(32),
            reason: "one".into(),
            time: "2026-12-04T00:00:00Z".into(),
        };
        // Made, nothing written: removed.
        let made = Store::open(&path).unwrap();
        let (key, _) = made.operator_key(None).unwrap();
        drop(made);
        assert!(!path.exists());
        // Made here, written by another handle: kept.
        let made = Store::open(&path).unwrap();
        let mut other = Store::open(&path).unwrap();
        let mut batch = other.begin(&key).unwrap();
        batch.refuse(&refusal).unwrap();
        batch.commit().unwrap();
        drop(made);
        assert!(path.exists());
        assert_eq!(other.refusals().unwrap().0, 1);
        drop(other);
        assert_eq!(Store::open(&path).unwrap().refusals().unwrap().0, 1);
    }

    #[test]
    fn a_refusal_round_trips_and_a_long_reason_is_cut() {
        let r = Refusal {
            plan_hash: Some("ab".repeat(32)),
            policy_hash: "cd".repeat(32),
            reason: "the plan expired".into(),
            time: "2026-12-04T00:00:00Z".into(),
        };
        let e = r.event();
        assert_eq!(Refusal::of_event(&e), Some(r.clone()));
        assert_eq!(problem(REFUSED, &e), None);
        assert!(problem("p-001", &e).is_some());
        assert!(problem(crate::governance::GOVERNANCE, &e).is_some());
        let approving = Event {
            signers: vec!["TSC:aa".into()],
            ..e.clone()
        };
        assert!(problem(REFUSED, &approving).is_some());
        let other = Event {
            kind: EventKind::Completed,
            ..e
        };
        assert!(problem(REFUSED, &other).is_some());
        assert_eq!(problem("p-001", &other), None);

        let long = "é".repeat(REASON_LIMIT);
        let cut = bounded(&long);
        assert!(cut.len() <= REASON_LIMIT && cut.ends_with("(cut)"), "{cut}");
        assert_eq!(bounded("short"), "short");
    }
}
