//! A writer extends only the log its latest signed checkpoint vouches for.
//!
//! Someone who can write the SQLite file but holds no operator key can
//! rewrite a partner's state and its events consistently: every digest and
//! chain hash recomputed, so the partner's own rows agree with each other.
//! Only the signed checkpoints see it (the Merkle root of the rewritten log
//! is not the signed one). Before a process first writes to a store,
//! [`Store::vouch_for_log`] computes the log's root again from its rows and
//! holds it to the latest checkpoint, signed by the key in force; a partner
//! about to be changed has its last event held to its chain hash
//! ([`Store::bound_partner`]). Together: a plan is applied to the states
//! the operator signed for, or not at all.

use std::cell::RefCell;

use super::checkpoint::Checkpoint;
use super::lineage::row_events;
use super::merkle::{self, Frontier};
use super::{Store, StoreError};

/// The log as this process last found it vouched for or signed it: the
/// latest checkpoint's size and root (`None`: a log with no checkpoint).
pub(crate) type Mark = Option<(u64, String)>;

/// What a vouch makes of a log that moved since this process last read
/// it: vouched for again (a command reading it afresh), or refused
/// ([`StoreError::WrittenMeanwhile`]: a write prepared from what was read).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Moved {
    /// Vouched for again, as any log.
    Vouched,
    /// Refused: another process wrote since.
    Refused,
}

/// The mark of a log whose latest checkpoint is `latest`.
pub(crate) fn mark_of(latest: Option<&Checkpoint>) -> Mark {
    latest.map(|c| (c.size, c.root.clone()))
}

/// What a store remembers of its last check: a log whose latest checkpoint
/// has not moved since is not read again; and whether this process signed
/// that checkpoint (the operator key's memory is then that checkpoint).
#[derive(Default)]
pub(crate) struct Vouched(RefCell<Option<(Mark, bool)>>);

impl Vouched {
    /// Whether the log was vouched for (or signed by this process) at `mark`.
    fn holds(&self, mark: &Mark) -> bool {
        self.0.borrow().as_ref().is_some_and(|(m, _)| m == mark)
    }

    /// Whether this process signed the checkpoint of `mark`.
    pub(crate) fn signed_here(&self, mark: &Mark) -> bool {
        self.0
            .borrow()
            .as_ref()
            .is_some_and(|(m, signed)| *signed && m == mark)
    }

    /// Remember `mark`: this process checked the log there, or (`signed`)
    /// signed it.
    pub(crate) fn set(&self, mark: Mark, signed: bool) {
        *self.0.borrow_mut() = Some((mark, signed));
    }

    /// The mark remembered, if any.
    pub(crate) fn mark(&self) -> Option<Mark> {
        self.0.borrow().as_ref().map(|(m, _)| m.clone())
    }
}

/// An error when this machine's clock is more than
/// [`crate::clock::SKEW_SECS`] behind `latest`, the store's latest
/// checkpoint: a clock set back would revive an expired plan (and date
/// what it writes before what the store already holds).
pub(crate) fn clock_holds(latest: Option<&Checkpoint>) -> Result<(), StoreError> {
    let Some(latest) = latest else {
        return Ok(());
    };
    let now = crate::clock::now_secs();
    match crate::clock::parse_rfc3339(&latest.time) {
        Some(at) if now + crate::clock::SKEW_SECS < at => Err(StoreError::ClockBehind {
            now: crate::clock::rfc3339(now),
            behind: crate::clock::spoken_duration(at - now),
            latest: latest.time.clone(),
        }),
        _ => Ok(()),
    }
}

impl Store {
    /// An error unless the log is the one the latest signed checkpoint
    /// vouches for: as many events, every one's chain hash under its root,
    /// and the checkpoint signed by the operator key in force at its size.
    /// A store with no checkpoint holds no event (or only events written
    /// before checkpoints existed). Reads every row's hashes once per
    /// process and checkpoint: O(events), about a second per million.
    pub fn vouch_for_log(&self) -> Result<(), StoreError> {
        self.vouch(Moved::Vouched).map(|_| ())
    }

    /// [`Store::vouch_for_log`], giving the latest checkpoint it read; a
    /// log that moved since this process last read it is `moved`.
    pub(crate) fn vouch(&self, moved: Moved) -> Result<Option<Checkpoint>, StoreError> {
        // Every read below from one snapshot of the store: a second writer
        // the lock did not keep out (see [`StoreError::WrittenMeanwhile`])
        // committing between two of them must not pass for an edit. (Inside
        // a transaction already open, its snapshot is the one read.)
        let _snapshot = if self.conn.is_autocommit() {
            Some(self.conn.unchecked_transaction()?)
        } else {
            None
        };
        let latest = self.latest_checkpoint()?;
        let mark = mark_of(latest.as_ref());
        // Moved since this process read it (vouched for it, or signed it),
        // not by this process: another one wrote, and what this one read to
        // prepare a write may no longer hold.
        if moved == Moved::Refused && self.vouched.mark().is_some_and(|read| read != mark) {
            return Err(StoreError::WrittenMeanwhile);
        }
        if self.vouched.holds(&mark) {
            return Ok(latest);
        }
        let frontier = self.log_frontier()?;
        let size = frontier.size();
        let unvouched = |reason: String| Err(StoreError::Unvouched { reason });
        match &latest {
            None => {
                // Events a schema-1 store held are covered by the first
                // checkpoint signed after its migration.
                let legacy = self.legacy_events()?;
                if size > legacy {
                    return unvouched(format!(
                        "events #{}–#{size} are under no signed checkpoint",
                        legacy + 1
                    ));
                }
            }
            Some(c) => {
                if c.size != size {
                    return unvouched(format!(
                        "the log holds {size} events, but its latest checkpoint, signed at {}, vouches for {}",
                        c.time, c.size
                    ));
                }
                let in_force = self.operator_key_at(c.size)?;
                if in_force.as_deref() != Some(c.public_key.as_str()) || !c.signature_holds() {
                    return unvouched(format!(
                        "its latest checkpoint (of {} events, dated {}) is not signed by the operator key in force",
                        c.size, c.time
                    ));
                }
                if merkle::to_hex(&frontier.root()) != c.root {
                    return unvouched(format!(
                        "events #1–#{size} do not match the checkpoint signed at {}",
                        c.time
                    ));
                }
            }
        }
        self.vouched.set(mark, false);
        Ok(latest)
    }

    /// The Merkle frontier of the whole log, from every row's chain hashes
    /// in order (a row split into its events as `lineage verify` splits
    /// it). This thread reads; every core hashes whole subtrees of
    /// [`BLOCK_HEIGHT`] levels (hashing is four fifths of the work).
    fn log_frontier(&self) -> Result<Frontier, StoreError> {
        let block = 1usize << BLOCK_HEIGHT;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let (done, roots) = std::sync::mpsc::channel::<(usize, merkle::Hash)>();
        let (to_hash, blocks) =
            std::sync::mpsc::sync_channel::<(usize, Vec<merkle::Hash>)>(workers);
        let blocks = std::sync::Mutex::new(blocks);
        let (tail, sent) = std::thread::scope(|scope| {
            for _ in 0..workers {
                let (blocks, done) = (&blocks, done.clone());
                scope.spawn(move || {
                    loop {
                        let next = blocks
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .recv();
                        let Ok((at, chain_hashes)) = next else {
                            break;
                        };
                        if let Some(root) = merkle::subtree_root(&chain_hashes) {
                            let _ = done.send((at, root));
                        }
                    }
                });
            }
            let read = || -> Result<(Vec<merkle::Hash>, usize), StoreError> {
                let mut stmt = self
                    .conn
                    .prepare("SELECT event, hash FROM lineage ORDER BY global_seq")?;
                let mut rows = stmt.query([])?;
                let mut pending = Vec::with_capacity(block);
                let mut sent = 0;
                while let Some(r) = rows.next()? {
                    let body = r.get_ref(0)?.as_bytes().unwrap_or_default();
                    let hashes = r.get_ref(1)?.as_bytes().unwrap_or_default();
                    for (_, hash) in row_events(body, hashes) {
                        pending.push(hash);
                        if pending.len() == block {
                            let full = std::mem::replace(&mut pending, Vec::with_capacity(block));
                            // The workers outlive this loop: a send fails
                            // only if every one of them is gone.
                            to_hash
                                .send((sent, full))
                                .map_err(|_| StoreError::MerkleHead)?;
                            sent += 1;
                        }
                    }
                }
                Ok((pending, sent))
            };
            let read = read();
            drop(to_hash);
            read
        })?;
        drop(done);
        let mut roots: Vec<(usize, merkle::Hash)> = roots.into_iter().collect();
        roots.sort_unstable_by_key(|&(at, _)| at);
        let mut frontier = Frontier::default();
        if roots.len() != sent || roots.iter().enumerate().any(|(i, &(at, _))| i != at) {
            return Err(StoreError::MerkleHead);
        }
        for (_, root) in roots {
            frontier
                .push_subtree(root, BLOCK_HEIGHT)
                .ok_or(StoreError::MerkleHead)?;
        }
        for hash in tail {
            frontier.push(&hash);
        }
        Ok(frontier)
    }
}

/// Levels of the subtrees the log is hashed in, a task each: 16,384 events
/// (512 KB of chain hashes).
const BLOCK_HEIGHT: u32 = 14;
