//! Write transactions. A [`Batch`] appends events to the lineage (both hash
//! chains and the Merkle tree) together with the rows they describe, and
//! commits them with a checkpoint signed by the operator: a crash loses the
//! whole batch or nothing, and no event is ever committed unsigned.

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::checkpoint::{Checkpoint, OperatorKey};
use super::interned::Texts;
use super::lineage::{
    Event, GENESIS_BYTES, RUN, encode_both, encode_interned, event_digest, hash_of, hex32,
    put_varint,
};
use super::merkle::{self, Frontier};
use super::packed;
use super::{Store, StoreError, row_digest, stable_digest};

/// The head of the whole log: its last event's number and the Merkle
/// tree's right edge. Read once per transaction, carried in memory from
/// event to event, written back before the commit.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LogHead {
    seq: i64,
    frontier: Frontier,
}

impl LogHead {
    fn load(tx: &Connection) -> Result<LogHead, StoreError> {
        // The last row's first event, and its events.
        let seq: i64 = tx
            .prepare_cached(
                "SELECT global_seq + max(length(hash) / 32, 1) - 1 FROM lineage ORDER BY global_seq DESC LIMIT 1",
            )?
            .query_row([], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let peaks: Option<String> = tx
            .prepare_cached("SELECT value FROM meta WHERE key = 'merkle_peaks'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        let peaks = peaks.unwrap_or_default();
        let parsed: Option<Vec<merkle::Hash>> = peaks
            .len()
            .is_multiple_of(64)
            .then(|| {
                (0..peaks.len() / 64)
                    .map(|i| peaks.get(i * 64..(i + 1) * 64).and_then(merkle::from_hex))
                    .collect()
            })
            .flatten();
        let frontier = parsed
            .and_then(|p| Frontier::from_parts(seq as u64, p))
            .ok_or(StoreError::MerkleHead)?;
        Ok(LogHead { seq, frontier })
    }

    fn save(&self, tx: &Connection) -> Result<(), StoreError> {
        let peaks: String = self.frontier.peaks().iter().map(merkle::to_hex).collect();
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('global_count', ?1), ('merkle_peaks', ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![self.seq.to_string(), peaks])?;
        Ok(())
    }
}

/// Migration 1 → 2: the Merkle head of the events already there (they are
/// covered by the first checkpoint signed after the migration).
pub(super) fn adopt_legacy_events(tx: &Connection) -> Result<(), StoreError> {
    let mut frontier = Frontier::default();
    let mut seq = 0i64;
    {
        let mut stmt = tx.prepare("SELECT global_seq, hash FROM lineage ORDER BY global_seq")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let hash: String = r.get(1)?;
            frontier.push(&merkle::from_hex(&hash).unwrap_or_default());
            seq = r.get(0)?;
        }
    }
    LogHead { seq, frontier }.save(tx)
}

/// A partner's chain while events are appended to it.
pub struct PartnerChain {
    partner: String,
    seq: i64,
    prev: [u8; 32],
}

impl PartnerChain {
    /// The chain of a partner known to have no event yet.
    pub fn start(partner: &str) -> PartnerChain {
        PartnerChain {
            partner: partner.to_string(),
            seq: 0,
            prev: GENESIS_BYTES,
        }
    }

    /// The hash of the partner's last event, in hex (what a review
    /// decision signs).
    pub fn head(&self) -> String {
        hex32(&self.prev)
    }

    /// Seal `events` onto this chain, in order: each gets the chain's
    /// partner and its next position, and the chain hash of its compact
    /// encoding ([`super::lineage::encode`]). Their stored form is made
    /// too when `texts` numbers every text they repeat (else
    /// [`Batch::append_sealed`] numbers the new ones). Reads and writes
    /// nothing: a partner's run can be sealed on any thread, then
    /// appended; [`Batch::append_all`] does both at once.
    pub fn seal(&mut self, events: &mut [Event], texts: &Texts) -> SealedRun {
        let first_seq = self.seq.wrapping_add(1);
        let mut hashes = Vec::with_capacity(32 * events.len());
        let mut buf = Vec::with_capacity(256);
        // The stored form, made in the same pass, kept when `texts` numbers
        // every text the events repeat.
        let mut row = RowFrame::new(events.len());
        let mut one = Vec::with_capacity(128);
        let mut places = Vec::with_capacity(16);
        let mut missing = false;
        for event in events.iter_mut() {
            event.partner.clone_from(&self.partner);
            event.seq = self.seq.wrapping_add(1) as u64;
            buf.clear();
            one.clear();
            let mut intern = |t: &str| {
                Ok(texts.id(t).unwrap_or_else(|| {
                    missing = true;
                    0
                }))
            };
            // Numbering from `texts` cannot fail.
            let _ = encode_both(event, &mut buf, &mut one, &mut places, &mut intern);
            row.push(&one);
            let hash = event_digest(&self.prev, &self.partner, event.seq, &buf);
            hashes.extend_from_slice(&hash);
            self.seq = self.seq.wrapping_add(1);
            self.prev = hash;
        }
        SealedRun {
            partner: self.partner.clone(),
            first_seq,
            stored: (!missing).then(|| row.into_bytes()),
            hashes,
        }
    }
}

/// `events` as one row of the lineage: each interned
/// ([`super::lineage::encode_interned`], its texts numbered by `intern`),
/// framed by [`RowFrame`].
fn stored_row(
    events: &[Event],
    intern: &mut dyn FnMut(&str) -> Result<u64, StoreError>,
) -> Result<Vec<u8>, StoreError> {
    let mut row = RowFrame::new(events.len());
    let mut one = Vec::with_capacity(128);
    for event in events {
        one.clear();
        encode_interned(event, &mut one, intern)?;
        row.push(&one);
    }
    Ok(row.into_bytes())
}

/// A row of the lineage being framed: one interned event as it is, several
/// as a run ([`RUN`]: their count, then each with its length).
struct RowFrame {
    stored: Vec<u8>,
    run: bool,
}

impl RowFrame {
    /// The frame of a row of `events` events.
    fn new(events: usize) -> RowFrame {
        let run = events > 1;
        let mut stored = Vec::with_capacity(48 * events + 4);
        if run {
            stored.push(RUN);
            put_varint(&mut stored, events as u64);
        }
        RowFrame { stored, run }
    }

    /// Append one interned event.
    fn push(&mut self, one: &[u8]) {
        if self.run {
            put_varint(&mut self.stored, one.len() as u64);
        }
        self.stored.extend_from_slice(one);
    }

    fn into_bytes(self) -> Vec<u8> {
        self.stored
    }
}

/// A partner's run of events sealed by [`PartnerChain::seal`], ready to
/// be appended as one row of the lineage by [`Batch::append_sealed`].
pub struct SealedRun {
    partner: String,
    first_seq: i64,
    /// The row's stored form, when every text was numbered when sealed.
    stored: Option<Vec<u8>>,
    /// The events' chain hashes, 32 bytes each, in order.
    hashes: Vec<u8>,
}

impl SealedRun {
    /// Whether its stored form was made when sealed (every text it
    /// repeats was numbered).
    pub fn is_stored(&self) -> bool {
        self.stored.is_some()
    }

    /// Whether the run has no event (it writes no row).
    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }
}

/// The size and root of the latest checkpoint, read in the transaction
/// `tx`. A head that moved since this process vouched for it is another
/// process's write when it moved to that checkpoint's (which the next
/// vouch holds to its key, as every one); anything else was edited
/// outside pmf.
fn latest_mark(tx: &rusqlite::Connection) -> Result<crate::vouch::Mark, StoreError> {
    let latest: Option<(i64, String)> = tx
        .query_row(
            "SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(latest.map(|(size, root)| (size as u64, root)))
}

/// A state to store: its canonical text, and its packed form when it was
/// packed ahead against the texts numbered so far ([`PreparedState::new`]).
/// Either way the store keeps it packed only when the packed bytes give
/// back the very text.
#[derive(Clone, Debug)]
pub struct PreparedState {
    text: String,
    packed: Option<Vec<u8>>,
}

impl PreparedState {
    /// `text`, packed ahead when `texts` numbers each of its keys. Reads
    /// and writes nothing, so it runs on any thread.
    pub fn new(text: String, texts: Option<&Texts>) -> PreparedState {
        let packed = texts.and_then(|t| packed::prepack(&text, t));
        PreparedState { text, packed }
    }

    /// The state's canonical text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether it was packed ahead.
    pub fn is_packed(&self) -> bool {
        self.packed.is_some()
    }
}

/// Rows a batch defers ([`Batch::deferred`]), each table's in order.
#[derive(Default)]
struct Deferred {
    partners: Vec<[Value; 4]>,
    stable: Vec<[Value; 4]>,
    lineage: Vec<[Value; 5]>,
    progress: Vec<[Value; 3]>,
}

/// A write transaction on the store; see the module documentation.
pub struct Batch<'s> {
    /// The transaction. Read and written through [`Batch::tx`], which
    /// first inserts the rows [`Batch::deferred`] holds; only the rows
    /// deferred and the table of texts (which nothing deferred is read
    /// with) are written to it directly.
    tx: Transaction<'s>,
    /// Rows of the tables every partner writes (its row, its stable
    /// versions, its run of the lineage, its progress), inserted table by
    /// table, each with one statement, when the batch next reads or
    /// writes anything else or commits: a statement taken from the cache
    /// for each row cost more than the row's insert.
    deferred: std::cell::RefCell<Deferred>,
    head: LogHead,
    operator: &'s OperatorKey,
    store_id: String,
    appended: bool,
    /// The store's texts, and those this batch added.
    texts: std::cell::RefCell<Texts>,
    /// The stored form of the state being written (one buffer, reused).
    packing: std::cell::RefCell<Vec<u8>>,
    /// The last state stored and its stored form (a partner's row and its
    /// new stable version are most often the same state).
    last_state: std::cell::RefCell<Option<(String, rusqlite::types::Value)>>,
    /// The plan progress was last recorded for, and its number.
    plan: Option<(String, i64)>,
    /// Where the store remembers the log this process signed.
    vouched: &'s crate::vouch::Vouched,
}

impl Store {
    /// Begin a write transaction whose commit is signed by `operator`. The
    /// store pins the first operator key it sees; another key is refused.
    pub fn begin<'s>(&'s mut self, operator: &'s OperatorKey) -> Result<Batch<'s>, StoreError> {
        // A key this store retired (`pmf state rekey`): say by which one
        // it was replaced (the transaction below refuses it either way).
        self.holds_operator(operator).or_else(|e| match e {
            StoreError::NothingToRekey => Ok(()),
            e => Err(e),
        })?;
        let mine = operator.public_hex();
        self.begin_pinned(operator, &mine)
    }

    /// [`Store::begin`], the store's pinned key held to `pinned` (the
    /// signing key's own, or for a succession the authorities approved,
    /// the lost key it replaces), or pinned to the signing key when the
    /// store has none yet.
    pub(crate) fn begin_pinned<'s>(
        &'s mut self,
        operator: &'s OperatorKey,
        expected: &str,
    ) -> Result<Batch<'s>, StoreError> {
        let mine = operator.public_hex();
        // Only the log the latest signed checkpoint vouches for is extended,
        // only as this process last read it, and only by a clock that has
        // not gone back.
        let latest = self.vouch(crate::vouch::Moved::Refused)?;
        crate::vouch::clock_holds(latest.as_ref())?;
        // Nor one rolled back behind what the key last signed for it (the
        // checkpoint this process signed last, if it is the latest).
        if !self
            .vouched
            .signed_here(&crate::vouch::mark_of(latest.as_ref()))
        {
            self.holds_what_key_signed(operator)?;
        }
        let vouched = &self.vouched;
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let pinned: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'operator_key'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        match pinned {
            Some(k) if k != expected => {
                return Err(StoreError::ForeignOperator {
                    pinned: k.get(..16).unwrap_or(&k).to_string(),
                    path: operator.path.clone(),
                    given: mine.get(..16).unwrap_or(&mine).to_string(),
                });
            }
            Some(_) => {}
            None => {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES ('operator_key', ?1)",
                    [&mine],
                )?;
            }
        }
        let store_id: String = tx
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or(StoreError::NoId)?;
        let head = LogHead::load(&tx)?;
        // The head kept to extend the log is the one vouched for.
        if let Some(mark) = vouched.mark() {
            let here = (head.seq as u64, merkle::to_hex(&head.frontier.root()));
            let latest = match &mark {
                // The head this process vouched for, unmoved: nothing to read.
                Some(m) if *m == here => None,
                _ => Some(latest_mark(&tx)?),
            };
            // Moved: a head that is not the one vouched for, or a log that
            // had no checkpoint when vouched and has one now.
            if let Some(latest) = latest
                && (mark.is_some() || latest.is_some())
            {
                return Err(if latest != mark && latest.as_ref() == Some(&here) {
                    StoreError::WrittenMeanwhile
                } else {
                    StoreError::MerkleHead
                });
            }
        }
        let texts = Texts::load(&tx)?;
        Ok(Batch {
            tx,
            deferred: Default::default(),
            head,
            operator,
            store_id,
            appended: false,
            texts: texts.into(),
            packing: Vec::with_capacity(512).into(),
            last_state: None.into(),
            plan: None,
            vouched,
        })
    }
}

impl Batch<'_> {
    /// The id of the store written.
    pub(crate) fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Pin `key` (public, hex) as the store's operator key: from the next
    /// transaction on, only it signs (this one is still signed by the key
    /// it began with).
    pub(crate) fn pin_operator(&self, key: &str) -> Result<(), StoreError> {
        self.tx()?.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'operator_key'",
            [key],
        )?;
        Ok(())
    }

    /// The chain of `partner`, to append its events to.
    pub fn chain(&self, partner: &str) -> Result<PartnerChain, StoreError> {
        let last: Option<(i64, Vec<u8>)> = self
            .tx()?
            .prepare_cached(
                "SELECT seq, hash FROM lineage WHERE partner_id = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([partner], |r| {
                Ok((r.get(0)?, r.get_ref(1)?.as_bytes()?.to_vec()))
            })
            .optional()?;
        // A row of a run holds its events' hashes one after the other: the
        // chain goes on from the last.
        let (seq, prev) = last.map_or((0, GENESIS_BYTES), |(s, h)| {
            let n = (h.len() / 32).max(1);
            (
                s.wrapping_add(n as i64 - 1),
                hash_of(h.get(h.len().saturating_sub(32)..).unwrap_or(&h)),
            )
        });
        Ok(PartnerChain {
            partner: partner.to_string(),
            seq,
            prev,
        })
    }

    /// Append `event` to `chain` (its partner and position are set here);
    /// see [`Batch::append_all`].
    pub fn append(
        &mut self,
        chain: &mut PartnerChain,
        event: &mut Event,
    ) -> Result<(), StoreError> {
        self.append_all(chain, std::slice::from_mut(event))
    }

    /// Append `events` to `chain` in order (their partner and positions
    /// are set here) as one row of the lineage: each stored interned
    /// ([`super::lineage::encode_interned`]; several as a run,
    /// [`super::lineage::RUN`]), each with the chain hash of its compact
    /// encoding ([`super::lineage::encode`]), a leaf of the Merkle tree.
    /// A partner's walk is one row however many events it has. The same
    /// as [`PartnerChain::seal`] then [`Batch::append_sealed`].
    pub fn append_all(
        &mut self,
        chain: &mut PartnerChain,
        events: &mut [Event],
    ) -> Result<(), StoreError> {
        let sealed = self.seal(chain, events);
        self.append_sealed(sealed, events)
    }

    /// Seal `events` onto `chain` with the texts this batch numbers
    /// ([`PartnerChain::seal`]).
    pub fn seal(&self, chain: &mut PartnerChain, events: &mut [Event]) -> SealedRun {
        chain.seal(events, &self.texts.borrow())
    }

    /// The texts this batch numbers (the store's and those it added), to
    /// prepare later partners with ([`PreparedState::new`],
    /// [`PartnerChain::seal`]).
    pub fn texts(&self) -> Texts {
        self.texts.borrow().clone()
    }

    /// Append a run sealed by [`PartnerChain::seal`] (`events` are the
    /// events it sealed; they may be dropped once its stored form is made)
    /// as one row of the lineage, its hashes pushed onto the Merkle tree.
    /// The texts the run repeats that were not numbered when it was sealed
    /// are numbered here. A run of no event writes nothing.
    pub fn append_sealed(&mut self, sealed: SealedRun, events: &[Event]) -> Result<(), StoreError> {
        if sealed.is_empty() {
            return Ok(());
        }
        let stored = match sealed.stored {
            Some(stored) => stored,
            // Texts numbered since it was sealed, or new ones.
            None => {
                let mut texts = self.texts.borrow_mut();
                let tx = &self.tx;
                stored_row(events, &mut |t| texts.intern(tx, t))?
            }
        };
        let global_seq = self.head.seq.wrapping_add(1);
        for hash in sealed.hashes.chunks_exact(32) {
            self.head.frontier.push(hash);
            self.head.seq = self.head.seq.wrapping_add(1);
        }
        self.deferred.get_mut().lineage.push([
            Value::Integer(global_seq),
            Value::Text(sealed.partner),
            Value::Integer(sealed.first_seq),
            Value::Blob(stored),
            Value::Blob(sealed.hashes),
        ]);
        self.appended = true;
        Ok(())
    }

    /// Record that the store is governed by `governing` from here on,
    /// through the plan `plan_hash`, endorsed by `endorsers`
    /// (`AUTHORITY:key` of the policy it replaces, each approval stored
    /// with [`Batch::add_approval`]); see [`crate::governance`].
    pub fn govern(
        &mut self,
        governing: &crate::governance::Governing,
        sources: &std::collections::BTreeMap<String, String>,
        plan_hash: &str,
        endorsers: Vec<String>,
        time: &str,
    ) -> Result<(), StoreError> {
        // The rules behind the hash, for whoever audits the store (the
        // first text kept for a hash stays: another one differs only in
        // comments and layout, which the hash leaves out).
        // (A map of texts always serializes.)
        let text = serde_json::to_string(sources).unwrap_or_default();
        self.tx()?
            .prepare_cached("INSERT OR IGNORE INTO policies (hash, sources) VALUES (?1, ?2)")?
            .execute([governing.policy_hash.as_str(), text.as_str()])?;
        let mut chain = self.chain(crate::governance::GOVERNANCE)?;
        let mut event = Event {
            kind: super::lineage::EventKind::Governed,
            policy_hash: Some(governing.policy_hash.clone()),
            plan_hash: Some(plan_hash.to_string()),
            signers: governing.signers(),
            approvals: endorsers,
            time: time.into(),
            detail: Some(crate::governance::TEXT_KEPT.to_string()),
            ..Event::default()
        };
        self.append(&mut chain, &mut event)
    }

    /// A partner, if stored.
    pub fn partner(&self, id: &str) -> Result<Option<super::StoredPartner>, StoreError> {
        let texts = self.texts.borrow();
        super::read_partner(self.tx()?, id, &mut |raw| {
            Ok(packed::state_of(raw, &texts).unwrap_or_else(|| packed::DAMAGED.to_string()))
        })
    }

    /// `state` as the store keeps it: packed ([`packed`]), its new keys
    /// added to the table, or as text when the encoding would not give it
    /// back exactly. A state packed ahead (`packed`, see
    /// [`PreparedState::new`]) was already checked so.
    fn stored_state(&self, state: &str, packed: Option<Vec<u8>>) -> Result<Value, StoreError> {
        if let Some(packed) = packed {
            return Ok(Value::Blob(packed));
        }
        let mut last = self.last_state.borrow_mut();
        if let Some((text, stored)) = &*last
            && text == state
        {
            return Ok(stored.clone());
        }
        let mut texts = self.texts.borrow_mut();
        let mut out = self.packing.borrow_mut();
        let tx = &self.tx;
        let packed = packed::pack(state, &mut |key| texts.intern(tx, key), &mut out)?;
        // Packed only when it unpacks to the very text: nothing stored is
        // ever changed by its encoding.
        let stored = if packed && packed::unpacks_to(&out, &texts, state) {
            Value::Blob(out.clone())
        } else {
            Value::Text(state.to_string())
        };
        *last = Some((state.to_string(), stored.clone()));
        Ok(stored)
    }

    /// The transaction, every row deferred inserted first: what reads it
    /// or writes anything but deferred rows goes through here.
    fn tx(&self) -> Result<&Connection, StoreError> {
        self.insert_deferred()?;
        Ok(&self.tx)
    }

    /// Insert the rows deferred, table by table, each table's with one
    /// statement, in the order they were deferred.
    fn insert_deferred(&self) -> Result<(), StoreError> {
        let mut deferred = self.deferred.borrow_mut();
        // A table with no row deferred takes no statement.
        fn insert<const N: usize>(
            tx: &Connection,
            sql: &str,
            rows: &mut Vec<[Value; N]>,
        ) -> Result<(), StoreError> {
            if rows.is_empty() {
                return Ok(());
            }
            let mut stmt = tx.prepare_cached(sql)?;
            for row in rows.drain(..) {
                stmt.execute(rusqlite::params_from_iter(row))?;
            }
            Ok(())
        }
        let Deferred {
            partners,
            stable,
            lineage,
            progress,
        } = &mut *deferred;
        insert(
            &self.tx,
            "INSERT INTO stable_versions (partner_id, seq, version, state) VALUES (?1, ?2, ?3, ?4)",
            stable,
        )?;
        insert(
            &self.tx,
            "INSERT INTO partners (id, state, version, status) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version,
               status = excluded.status",
            partners,
        )?;
        insert(
            &self.tx,
            "INSERT INTO lineage (global_seq, partner_id, seq, event, hash)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            lineage,
        )?;
        insert(
            &self.tx,
            "INSERT INTO progress (plan, partner_id, outcome) VALUES (?1, ?2, ?3)
             ON CONFLICT (plan, partner_id) DO UPDATE SET outcome = excluded.outcome",
            progress,
        )
    }

    /// Write a partner's row; returns the digest its last event records.
    pub fn put_partner(
        &self,
        id: &str,
        state: &str,
        version: Option<&str>,
        status: &str,
    ) -> Result<String, StoreError> {
        self.write_partner(id, state, None, version, status)?;
        Ok(row_digest(state, version, status))
    }

    /// [`Batch::put_partner`] of a state prepared ahead (its digest was
    /// taken then: [`crate::row_digest`]); its packed form is kept as it
    /// is, not copied.
    pub fn put_prepared_partner(
        &self,
        id: &str,
        state: PreparedState,
        version: Option<&str>,
        status: &str,
    ) -> Result<(), StoreError> {
        self.write_partner(id, &state.text, state.packed, version, status)
    }

    fn write_partner(
        &self,
        id: &str,
        state: &str,
        packed: Option<Vec<u8>>,
        version: Option<&str>,
        status: &str,
    ) -> Result<(), StoreError> {
        // A partner row under a reserved name would put its events on one
        // of the store's own chains (the governing policy's record).
        if id.starts_with('@') {
            return Err(StoreError::ReservedId(id.to_string()));
        }
        let state = self.stored_state(state, packed)?;
        self.deferred.borrow_mut().partners.push([
            Value::Text(id.to_string()),
            state,
            version.map_or(Value::Null, |v| Value::Text(v.to_string())),
            Value::Text(status.to_string()),
        ]);
        Ok(())
    }

    /// The number the partner's next stable version gets.
    pub fn next_stable_seq(&self, id: &str) -> Result<i64, StoreError> {
        Ok(self
            .tx()?
            .prepare_cached(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM stable_versions WHERE partner_id = ?1",
            )?
            .query_row([id], |r| r.get(0))?)
    }

    /// Record stable version `seq` of a partner; returns the digest its
    /// event records.
    pub fn push_stable(
        &self,
        id: &str,
        seq: i64,
        version: Option<&str>,
        state: &str,
    ) -> Result<String, StoreError> {
        self.write_stable(id, seq, version, state, None)?;
        Ok(stable_digest(seq, version, state))
    }

    /// [`Batch::push_stable`] of a state prepared ahead (its digest was
    /// taken then: [`crate::stable_digest`]); its packed form is kept as
    /// it is, not copied.
    pub fn push_prepared_stable(
        &self,
        id: &str,
        seq: i64,
        version: Option<&str>,
        state: PreparedState,
    ) -> Result<(), StoreError> {
        self.write_stable(id, seq, version, &state.text, state.packed)
    }

    fn write_stable(
        &self,
        id: &str,
        seq: i64,
        version: Option<&str>,
        state: &str,
        packed: Option<Vec<u8>>,
    ) -> Result<(), StoreError> {
        let state = self.stored_state(state, packed)?;
        self.deferred.borrow_mut().stable.push([
            Value::Text(id.to_string()),
            Value::Integer(seq),
            version.map_or(Value::Null, |v| Value::Text(v.to_string())),
            state,
        ]);
        Ok(())
    }

    /// Record when the plan `plan_hash` stops being valid (`expires_at`,
    /// RFC 3339), as it said when it was first applied.
    pub fn note_plan_expiry(
        &mut self,
        plan_hash: &str,
        expires_at: &str,
    ) -> Result<(), StoreError> {
        self.tx()?
            .prepare_cached(
                "INSERT INTO plans (hash, expires_at) VALUES (?1, ?2)
                 ON CONFLICT (hash) DO UPDATE SET expires_at = coalesce(plans.expires_at, excluded.expires_at)",
            )?
            .execute([plan_hash, expires_at])?;
        Ok(())
    }

    /// Record where a partner ended in a plan.
    pub fn set_progress(
        &mut self,
        plan_hash: &str,
        id: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        let plan = match &self.plan {
            Some((hash, n)) if hash == plan_hash => *n,
            _ => {
                self.tx()?
                    .prepare_cached(
                        "INSERT INTO plans (hash) VALUES (?1) ON CONFLICT (hash) DO NOTHING",
                    )?
                    .execute([plan_hash])?;
                let n: i64 = self
                    .tx()?
                    .prepare_cached("SELECT id FROM plans WHERE hash = ?1")?
                    .query_row([plan_hash], |r| r.get(0))?;
                self.plan = Some((plan_hash.to_string(), n));
                n
            }
        };
        self.deferred.get_mut().progress.push([
            Value::Integer(plan),
            Value::Text(id.to_string()),
            Value::Text(outcome.to_string()),
        ]);
        Ok(())
    }

    /// Drop the rows of a store's table of schema 7 (the illumination
    /// counts), once carried into the lineage
    /// ([`crate::illumination::ILLUMINATION`]).
    pub(crate) fn forget_counts_of_schema_7(&self) -> Result<(), StoreError> {
        self.tx()?.execute("DELETE FROM outcomes_v7", [])?;
        Ok(())
    }

    /// Keep an accepted approval (its signature is verified again by
    /// `pmf lineage verify` for every event that names it).
    pub fn add_approval(
        &self,
        plan_hash: &str,
        authority: &str,
        public_key: &str,
        signature: &str,
    ) -> Result<(), StoreError> {
        self.tx()?
            .prepare_cached(
                "INSERT INTO approvals (plan_hash, authority, public_key, signature) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (plan_hash, authority, public_key) DO UPDATE SET signature = excluded.signature",
            )?
            .execute(params![plan_hash, authority, public_key.to_ascii_lowercase(), signature])?;
        Ok(())
    }

    /// Commit: the log's head is saved and, when events were appended, a
    /// checkpoint of the new head is signed and stored in the same
    /// transaction. Returns the checkpoint signed, if any.
    pub fn commit(self) -> Result<Option<Checkpoint>, StoreError> {
        self.insert_deferred()?;
        let checkpoint = if self.appended {
            self.head.save(&self.tx)?;
            // Chained to the checkpoint before it: one deleted from between
            // two others is seen.
            let before: Option<String> = self
                .tx
                .prepare_cached("SELECT signature FROM checkpoints ORDER BY size DESC LIMIT 1")?
                .query_row([], |r| r.get(0))
                .optional()?;
            let prev = before.as_deref().map(Checkpoint::chain_digest_of);
            let c = Checkpoint::sign(
                self.operator,
                &self.store_id,
                self.head.seq as u64,
                &self.head.frontier.root(),
                prev.as_deref(),
            );
            self.tx
                .prepare_cached(
                    "INSERT INTO checkpoints (size, root, time, public_key, signature, prev) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![c.size as i64, c.root, c.time, c.public_key, c.signature, c.prev])?;
            Some(c)
        } else {
            None
        };
        self.tx.commit()?;
        // The log this process signed needs no check before its next batch,
        // and the key remembers it.
        if let Some(c) = &checkpoint {
            self.vouched.set(crate::vouch::mark_of(Some(c)), true);
            crate::key_memory::remember(self.operator, c);
        }
        Ok(checkpoint)
    }
}
