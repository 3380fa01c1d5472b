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
//!
//! A key that is lost cannot sign its succession. Then the authorities of
//! the governing policy decide instead, as they decide a change of policy:
//! a [`RekeyRequest`] names the store, the key in force and the new one,
//! the reason and until when it may be carried out; every authority of
//! the governing policy that has keys signs its hash (`pmf approve`) with
//! a key the policy trusts; the succession records the request's text, its
//! hash and the signers (their signatures kept with the store's approvals)
//! and is committed under a checkpoint the new key signs. `verify` holds
//! the request's text to its hash and to the keys the event names, so
//! approvals of one request bring in no other key, and to its expiry.

use crate::batch::Batch;
use crate::checkpoint::OperatorKey;
use crate::lineage::{Event, EventKind};
use crate::{Store, StoreError};

/// The reserved chain that records the operator key's successions.
pub const OPERATOR: &str = "@operator";

/// What the new key signs: that it follows `old` as the operator key of
/// the store `store_id`.
pub fn rekey_message(store_id: &str, old: &str, new: &str) -> Vec<u8> {
    format!("pmf-operator-rekey-v1\n{store_id}\n{old}\n{new}").into_bytes()
}

/// What the authorities sign when the key in force is lost: this store's
/// key `from` is replaced by `to`, for `reason`. Its hash is what their
/// approvals sign (as a plan's), over its canonical JSON ([`RekeyRequest::text`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RekeyRequest {
    /// Always [`REQUEST_FORMAT`].
    pub format: String,
    /// The store.
    pub store_id: String,
    /// The key in force (public, hex).
    pub from: String,
    /// The new key (public, hex).
    pub to: String,
    /// How many times the store's operator key had been replaced when the
    /// request was made: it is carried out on the store as it was then,
    /// once (a later succession, even one back to `from`, voids it).
    pub successions: u64,
    /// Why (at most [`crate::refused::REASON_LIMIT`] bytes, as a refusal's).
    pub reason: String,
    /// Until when it may be carried out (RFC 3339, UTC): its signers
    /// approved it for a time, as a plan's.
    pub expires_at: String,
}

/// The format of a [`RekeyRequest`].
pub const REQUEST_FORMAT: &str = "pmf-rekey-request-v1";

impl RekeyRequest {
    /// The request for `store_id` from `from` to `to` after `successions`
    /// earlier ones, until `expires_at`.
    pub fn new(
        store_id: &str,
        (from, to): (&str, &str),
        successions: u64,
        reason: &str,
        expires_at: &str,
    ) -> Self {
        RekeyRequest {
            format: REQUEST_FORMAT.into(),
            store_id: store_id.into(),
            from: from.into(),
            to: to.into(),
            successions,
            reason: crate::refused::bounded(reason),
            expires_at: expires_at.into(),
        }
    }

    /// Why it may not be carried out at `now` (seconds since the epoch):
    /// its time is over, or it names none pmf writes.
    pub fn expiry_problem(&self, now: u64) -> Option<String> {
        match crate::clock::parse_rfc3339(&self.expires_at) {
            None => Some(format!(
                "the request's expiry `{}` is not a time as pmf writes them",
                self.expires_at.escape_debug()
            )),
            Some(at) => (now >= at).then(|| {
                format!(
                    "the request expired at {}: its approvals were for a time; make a new request and have it approved",
                    self.expires_at
                )
            }),
        }
    }

    /// Why it may not be carried out on a store whose key has been
    /// replaced `successions` times: it was made for another point of
    /// the key's chain (carried out already, or overtaken).
    pub fn replay_problem(&self, successions: u64) -> Option<String> {
        (self.successions != successions).then(|| {
            format!(
                "the request was made when the store's operator key had been replaced {} times; it has now been replaced {} times: a request is carried out once, on the store as it was (make a new one and have it approved)",
                self.successions, successions
            )
        })
    }

    /// Its canonical text: the JSON of its fields in order, and a new line.
    pub fn text(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The SHA-256 (hex) of [`RekeyRequest::text`]: what approvals sign.
    pub fn hash(&self) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(self.text().as_bytes()))
    }

    /// A request read from `text`: `None` unless it is one, in its
    /// canonical text (another layout would hash to another request).
    pub fn parse(text: &str) -> Option<Self> {
        let r: RekeyRequest = serde_json::from_str(text).ok()?;
        (r.format == REQUEST_FORMAT && r.text() == text).then_some(r)
    }
}

/// What an `operator_rekeyed` event records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// For a key in force that was lost: the [`RekeyRequest`] the
    /// authorities approved, and who did (`AUTHORITY:key`, sorted).
    pub approved: Option<(RekeyRequest, Vec<String>)>,
}

impl Rekey {
    /// The authorities that approved it (the key in force lost), by name.
    pub fn approvers(&self) -> Vec<&str> {
        self.approved
            .iter()
            .flat_map(|(_, signers)| signers)
            .map(|s| s.split(':').next().unwrap_or(s))
            .collect()
    }

    /// Its event.
    fn event(&self) -> Event {
        // An approved succession keeps the request's own text (its reason
        // and expiry with it), under its hash.
        let (detail, request, signers) = match &self.approved {
            Some((request, signers)) => (request.text(), Some(request.hash()), signers.clone()),
            None => (self.reason.clone(), None, Vec::new()),
        };
        Event {
            kind: EventKind::OperatorRekeyed,
            from: Some(self.from.as_str().into()),
            to: Some(self.to.as_str().into()),
            signature: Some(self.signature.clone()),
            detail: Some(detail),
            time: self.time.as_str().into(),
            plan_hash: request,
            signers,
            ..Event::default()
        }
    }

    /// The succession an event of [`OPERATOR`] records.
    /// An approved succession whose text is not a request pmf writes reads
    /// as one whose hash matches nothing ([`problem`] says so).
    pub fn of_event(e: &Event) -> Option<Rekey> {
        if e.kind != EventKind::OperatorRekeyed {
            return None;
        }
        let detail = e.detail.clone().unwrap_or_default();
        let approved = e.plan_hash.as_ref().map(|_| {
            let request = RekeyRequest::parse(&detail).unwrap_or_else(|| RekeyRequest {
                reason: detail.clone(),
                ..RekeyRequest::default()
            });
            (request, e.signers.clone())
        });
        Some(Rekey {
            from: e.from.as_deref().unwrap_or_default().to_string(),
            to: e.to.as_deref().unwrap_or_default().to_string(),
            signature: e.signature.clone().unwrap_or_default(),
            reason: approved.as_ref().map_or(detail, |(r, _)| r.reason.clone()),
            time: e.time.to_string(),
            approved,
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
        || !e.approvals.is_empty()
        || e.outcome.is_some()
        || e.plan_hash.is_none() && !e.signers.is_empty();
    if runs {
        return Some(
            "a new operator key that names an outcome, a state or unrequested approvals".into(),
        );
    }
    if r.from == r.to {
        return Some("a new operator key that is the old one".into());
    }
    if let Some((request, signers)) = &r.approved {
        if signers.is_empty() {
            return Some("a new operator key approved by nobody".into());
        }
        let names_it = request.format == REQUEST_FORMAT
            && e.plan_hash.as_deref() == Some(request.hash().as_str())
            && request.store_id == store_id
            && request.from == r.from
            && request.to == r.to;
        if !names_it {
            return Some(
                "its approvals are of another request than the succession it records (edited or forged)"
                    .into(),
            );
        }
        let late = crate::clock::parse_rfc3339(&e.time)
            .is_none_or(|t| request.expiry_problem(t).is_some());
        if late {
            return Some(format!(
                "it carries out a request after its expiry ({})",
                request.expires_at.escape_debug()
            ));
        }
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

/// The start of a key (16 hex digits), as messages show it.
pub fn short(key: &str) -> &str {
    key.get(..16).unwrap_or(key)
}

/// The operator keys of a store in the order they were in force, with
/// where each succession stands in the log.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Succession {
    /// Each `operator_rekeyed` event, in order.
    pub changes: Vec<Change>,
}

/// One succession of the operator key.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Where its event stands in the log.
    pub event: i64,
    /// The key it replaced (public, hex).
    pub from: String,
    /// The key it brought in.
    pub to: String,
    /// Approved by the authorities (the old key was lost): the new key
    /// signs its own checkpoint.
    pub approved: bool,
}

impl Succession {
    /// The key that signs a checkpoint of `size` events: the one the last
    /// succession before its last event brought in (a succession's own
    /// checkpoint, which ends at it, is the old key's), else the first
    /// key (the first succession's `from`), else `pinned` (the store's
    /// key, never replaced).
    pub fn key_for<'a>(&'a self, size: u64, pinned: Option<&'a str>) -> Option<&'a str> {
        // An approved succession's own checkpoint is the new key's (the old
        // one was lost).
        let in_force =
            |c: &&Change| (c.event as u64) < size || c.approved && c.event as u64 == size;
        match self.changes.iter().rev().find(in_force) {
            Some(c) => Some(&c.to),
            None => self.changes.first().map(|c| c.from.as_str()).or(pinned),
        }
    }

    /// What is wrong with a succession at `global_seq` from `from`: the
    /// key it replaces is not the one in force there, or it carries out a
    /// request made for another place in the chain (replayed).
    pub fn follow(&mut self, global_seq: i64, rekey: &Rekey) -> Option<String> {
        let broken = self
            .changes
            .last()
            .filter(|last| last.to != rekey.from)
            .map(|last| {
                format!(
                    "it replaces operator key {}…, but the key in force is {}…",
                    short(&rekey.from),
                    short(&last.to)
                )
            })
            .or_else(|| {
                let (request, _) = rekey.approved.as_ref()?;
                let why = request.replay_problem(self.changes.len() as u64)?;
                Some(format!(
                    "it carries out a request made for another succession ({why})"
                ))
            });
        self.changes.push(Change {
            event: global_seq,
            from: rekey.from.clone(),
            to: rekey.to.clone(),
            approved: rekey.approved.is_some(),
        });
        broken
    }

    /// What is wrong with the store's pinned key: not the key the last
    /// succession brought in.
    pub fn pinned_problem(&self, pinned: Option<&str>) -> Option<String> {
        let last = &self.changes.last()?.to;
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
            approved: None,
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

    /// Make `new` the key that signs this store's checkpoints when the key
    /// in force is lost, as `request` asks: `approvals` (`(authority,
    /// public key, signature)`) of it must include one by a trusted key of
    /// every authority of the governing policy, and the request must name
    /// this store, the key in force and `new`, and not have expired. The
    /// succession is committed under a checkpoint `new` signs.
    /// [`StoreError::RekeyRefused`] says why when it is not carried out.
    pub fn rekey_approved(
        &mut self,
        new: &OperatorKey,
        request: &RekeyRequest,
        approvals: &[(String, String, String)],
    ) -> Result<Rekey, StoreError> {
        let from = self
            .meta("operator_key")?
            .ok_or(StoreError::NothingToRekey)?;
        let to = new.public_hex();
        if from == to {
            return Err(StoreError::SameOperatorKey {
                path: new.path.clone(),
            });
        }
        let store_id = self.meta("store_id")?.ok_or(StoreError::NoId)?;
        let refused = |why: String| Err(StoreError::RekeyRefused(why));
        if request.store_id != store_id {
            return refused(format!(
                "the request is for another store ({}; this one is {store_id})",
                request.store_id.escape_debug()
            ));
        }
        if request.from != from {
            return refused(format!(
                "the request replaces operator key {}…, but the key in force is {}…",
                short(&request.from),
                short(&from)
            ));
        }
        if request.to != to {
            return refused(format!(
                "the request brings in operator key {}…, not `{}` ({}…)",
                short(&request.to),
                new.path.display(),
                short(&to)
            ));
        }
        let successions = self.rekeys()?.len() as u64;
        if let Some(why) = request.replay_problem(successions) {
            return refused(why);
        }
        if let Some(why) = request.expiry_problem(crate::clock::now_secs()) {
            return refused(why);
        }
        let hash = request.hash();
        let governing = self.governing()?.ok_or_else(|| {
            StoreError::RekeyRefused(
                "no policy governs the store yet: no authority can approve a new operator key"
                    .into(),
            )
        })?;
        let mut endorsers: Vec<&(String, String, String)> = Vec::new();
        for a in approvals {
            let (authority, key, signature) = a;
            let message = crate::verify::approval_message(authority, &hash);
            if !crate::verify::signature_holds(key, signature, &message) {
                return Err(StoreError::RekeyRefused(format!(
                    "the approval by `{authority}` (key {}…) is not a signature of this request ({}…)",
                    short(key),
                    short(&hash)
                )));
            }
            if !governing.trusts(authority, key) {
                return Err(StoreError::RekeyRefused(format!(
                    "the approval by `{authority}` is by a key (…{}) the governing policy does not trust",
                    key.get(key.len().saturating_sub(8)..).unwrap_or(key)
                )));
            }
            endorsers.push(a);
        }
        let missing =
            governing.unendorsed(endorsers.iter().map(|(a, k, _)| (a.as_str(), k.as_str())));
        if !missing.is_empty() {
            return Err(StoreError::RekeyRefused(format!(
                "a lost operator key is replaced with the approval of every authority of the governing policy; missing: {}",
                missing
                    .iter()
                    .map(|a| format!("`{a}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        // A policy whose authorities have no keys: nobody can approve
        // (no approval at all would otherwise do).
        if endorsers.is_empty() {
            return Err(StoreError::RekeyRefused(
                "the governing policy trusts no key of any authority: nobody can approve a new operator key".into(),
            ));
        }
        let mut signers: Vec<String> = endorsers
            .iter()
            .map(|(a, k, _)| format!("{a}:{}", k.to_ascii_lowercase()))
            .collect();
        signers.sort();
        signers.dedup();
        let rekey = Rekey {
            signature: new.sign_hex(&rekey_message(&store_id, &from, &to)),
            from: from.clone(),
            to,
            reason: request.reason.clone(),
            time: crate::clock::now_rfc3339(),
            approved: Some((request.clone(), signers)),
        };
        let mut batch = self.begin_pinned(new, &from)?;
        for (authority, key, signature) in endorsers {
            batch.add_approval(&hash, authority, key, signature)?;
        }
        batch.record_rekey(&rekey)?;
        batch.commit()?;
        Ok(rekey)
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
            succession.follow(at, &r);
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
        // An approved change carries a request made after `after` others.
        let approved_after = |from: &str, to: &str, after: Option<u64>| Rekey {
            from: from.into(),
            to: to.into(),
            approved: after.map(|after| {
                let request =
                    RekeyRequest::new("s", (from, to), after, "lost", "2026-12-11T00:00:00Z");
                (request, vec!["TSC:aa".to_string()])
            }),
            ..Rekey::default()
        };
        let change =
            |from: &str, to: &str, approved: bool| approved_after(from, to, approved.then_some(2));
        let mut s = Succession::default();
        assert_eq!(s.follow(10, &change("k1", "k2", false)), None);
        // The succession's own checkpoint (ending at event 10) is the old
        // key's; every later one the new key's.
        assert_eq!(s.key_for(9, Some("k2")), Some("k1"));
        assert_eq!(s.key_for(10, Some("k2")), Some("k1"));
        assert_eq!(s.key_for(11, Some("k2")), Some("k2"));
        assert!(s.follow(20, &change("k9", "k3", false)).is_some());
        assert_eq!(s.key_for(21, None), Some("k3"));
        assert_eq!(s.pinned_problem(Some("k3")), None);
        assert!(s.pinned_problem(Some("k2")).is_some());
        // Approved (the old key lost): its own checkpoint is the new key's.
        assert_eq!(s.follow(30, &change("k3", "k4", true)), None);
        assert_eq!(s.key_for(29, None), Some("k3"));
        assert_eq!(s.key_for(30, None), Some("k4"));
        // The key handed back, and the approved request replayed: it was
        // made for the third succession, not the fifth.
        assert_eq!(s.follow(40, &change("k4", "k3", false)), None);
        let replayed = s.follow(50, &change("k3", "k4", true)).unwrap();
        assert!(
            replayed.contains("made for another succession"),
            "{replayed}"
        );
        let mut fresh = Succession::default();
        assert_eq!(fresh.follow(5, &approved_after("k1", "k2", Some(0))), None);
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
            approved: None,
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

        // Approved (the old key lost): the approvals are of the request the
        // event records, and of no other, carried out before it expired.
        let request = RekeyRequest::new(
            "s1",
            (&from, &to),
            0,
            "disk retired",
            "2026-12-11T00:00:00Z",
        );
        let approved = Rekey {
            approved: Some((request.clone(), vec!["TSC:aa".into()])),
            ..r.clone()
        };
        let e = approved.event();
        assert_eq!(e.plan_hash.as_deref(), Some(request.hash().as_str()));
        assert_eq!(Rekey::of_event(&e), Some(approved.clone()));
        assert_eq!(problem(OPERATOR, &e, "s1"), None);
        assert!(problem(OPERATOR, &e, "s2").is_some());
        let (third, _) = OperatorKey::load(&dir.path().join("third.key"), true).unwrap();
        let other_key = Rekey {
            to: third.public_hex(),
            signature: third.sign_hex(&rekey_message("s1", &from, &third.public_hex())),
            ..approved.clone()
        };
        assert!(problem(OPERATOR, &other_key.event(), "s1").is_some());
        let late = Rekey {
            time: "2026-12-11T00:00:00Z".into(),
            ..approved.clone()
        };
        assert!(problem(OPERATOR, &late.event(), "s1").is_some());
        let edited = Event {
            detail: Some(request.text().replace("disk retired", "disk retired!")),
            ..e.clone()
        };
        assert!(problem(OPERATOR, &edited, "s1").is_some());
        let nobody = Rekey {
            approved: Some((request, Vec::new())),
            ..r.clone()
        };
        assert!(problem(OPERATOR, &nobody.event(), "s1").is_some());
    }

    #[test]
    fn a_request_reads_back_only_in_its_own_words_and_expires() {
        let at = "2026-12-11T00:00:00Z";
        let r = RekeyRequest::new("s1", ("aa", "bb"), 0, "lost", at);
        assert_eq!(RekeyRequest::parse(&r.text()), Some(r.clone()));
        assert_eq!(RekeyRequest::parse(&r.text().replace("  ", "    ")), None);
        assert_ne!(
            r.hash(),
            RekeyRequest::new("s1", ("aa", "cc"), 0, "lost", at).hash()
        );
        assert_ne!(
            r.hash(),
            RekeyRequest::new("s2", ("aa", "bb"), 0, "lost", at).hash()
        );
        assert_ne!(
            r.hash(),
            RekeyRequest::new("s1", ("aa", "bb"), 0, "lost", "2026-12-12T00:00:00Z").hash()
        );
        assert_ne!(
            r.hash(),
            RekeyRequest::new("s1", ("aa", "bb"), 1, "lost", at).hash()
        );
        let expiry = crate::clock::parse_rfc3339(at).unwrap();
        assert_eq!(r.expiry_problem(expiry - 1), None);
        assert!(r.expiry_problem(expiry).is_some());
        assert_eq!(r.replay_problem(0), None);
        assert!(r.replay_problem(1).is_some());
        assert!(
            RekeyRequest::new("s1", ("aa", "bb"), 0, "lost", "soon")
                .expiry_problem(0)
                .is_some()
        );
    }
}
