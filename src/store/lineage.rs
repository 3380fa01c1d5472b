//! The lineage: an append-only, hash-chained log of every migration event.
//! Each event carries the hash of the partner's previous event (a chain per
//! partner) and of the previous event overall (the global chain, whose head
//! is kept in `meta`), so that an edited, deleted, reordered or inserted
//! row is found by `verify`.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One lineage event. Absent fields are left out of its JSON.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(default)]
pub struct Event {
    /// Partner id.
    pub partner: String,
    /// Position in the partner's chain, from 1.
    pub seq: u64,
    /// Phase of the flow, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// What happened: `phase_entered`, `approvals_missing`, `validated`,
    /// `health`, `completed`, `fallback`, `restricted`, `awaiting_review`,
    /// `throttled`, `released`, `rollback`, `imported`.
    pub kind: String,
    /// Version before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Version after (or aimed at).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// Migration type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "type")]
    pub migration: Option<String>,
    /// Outcome (validation verdict, or the partner's result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Health score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<f64>,
    /// Health band status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<String>,
    /// Action taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Authorities whose approvals were verified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<String>,
    /// The rite spoken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rite: Option<String>,
    /// Effective policy hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
    /// Plan hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_hash: Option<String>,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// More about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// An event as stored, with its hashes.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Position in the global chain, from 1.
    pub global_seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Hash of the partner's previous event.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

fn sha(prev: &str, body: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    let mut out = String::with_capacity(64);
    crate::runtime::json_out::write_hex(&h.finalize(), &mut out);
    out
}

/// The head of the global chain: the last event overall. Read once per
/// transaction, carried from partner to partner in memory, and written
/// back by [`GlobalHead::save`] before the transaction commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalHead {
    seq: i64,
    hash: String,
}

impl GlobalHead {
    /// The head as stored, read inside `tx`.
    pub fn load(tx: &Connection) -> Result<GlobalHead, StoreError> {
        let head: Option<(i64, String)> = tx
            .prepare_cached(
                "SELECT global_seq, global_hash FROM lineage ORDER BY global_seq DESC LIMIT 1",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (seq, hash) = head.unwrap_or((0, GENESIS.to_string()));
        Ok(GlobalHead { seq, hash })
    }

    /// Record the head (once per transaction, before it commits).
    pub fn save(&self, tx: &Connection) -> Result<(), StoreError> {
        tx.prepare_cached(
            "INSERT INTO meta (key, value) VALUES ('global_head', ?1), ('global_count', ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )?
        .execute(params![self.hash, self.seq.to_string()])?;
        Ok(())
    }
}

/// The heads of the chains an append extends: the partner's last event and
/// the global last event, kept in memory while events are appended.
pub struct Chain {
    partner: String,
    seq: i64,
    prev: String,
    global: GlobalHead,
}

impl Chain {
    /// The chain heads for `partner`, read inside `tx`.
    pub fn load(tx: &Connection, partner: &str) -> Result<Chain, StoreError> {
        let global = GlobalHead::load(tx)?;
        Chain::resume(tx, partner, global)
    }

    /// The chain of `partner` (read inside `tx`), continuing the global
    /// chain from `global`.
    pub fn resume(tx: &Connection, partner: &str, global: GlobalHead) -> Result<Chain, StoreError> {
        let last: Option<(i64, String)> = tx
            .prepare_cached(
                "SELECT seq, hash FROM lineage WHERE partner_id = ?1 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row([partner], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let (seq, prev) = last.unwrap_or((0, GENESIS.to_string()));
        Ok(Chain {
            partner: partner.to_string(),
            seq,
            prev,
            global,
        })
    }

    /// The chain of a partner with no event yet.
    pub fn first(partner: &str, global: GlobalHead) -> Chain {
        Chain {
            partner: partner.to_string(),
            seq: 0,
            prev: GENESIS.to_string(),
            global,
        }
    }

    /// Append `event` (for this chain's partner; its `seq` is assigned).
    /// Returns the event's JSON as stored.
    pub fn append(&mut self, tx: &Connection, event: &mut Event) -> Result<String, StoreError> {
        event.partner.clone_from(&self.partner);
        event.seq = (self.seq + 1) as u64;
        let body = serde_json::to_string(event).map_err(|e| StoreError(e.to_string()))?;
        let hash = sha(&self.prev, &body);
        let global_hash = sha(&self.global.hash, &hash);
        tx.prepare_cached(
            "INSERT INTO lineage (global_seq, partner_id, seq, event, prev_hash, hash, global_prev, global_hash)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![
            self.global.seq + 1,
            self.partner,
            self.seq + 1,
            body,
            self.prev,
            hash,
            self.global.hash,
            global_hash
        ])?;
        self.seq += 1;
        self.global.seq += 1;
        self.prev = hash;
        self.global.hash = global_hash;
        Ok(body)
    }

    /// Record the global head (once per transaction).
    pub fn finish(&self, tx: &Connection) -> Result<(), StoreError> {
        self.global.save(tx)
    }

    /// The global head after this chain's events.
    pub fn into_global(self) -> GlobalHead {
        self.global
    }
}

/// Where the lineage is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Broken {
    /// Global position of the first broken event (or where one is missing).
    pub global_seq: i64,
    /// Its partner, when known.
    pub partner: Option<String>,
    /// Its position in the partner's chain, when known.
    pub seq: Option<i64>,
    /// What is wrong.
    pub reason: String,
}

/// The result of verifying the lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verification {
    /// Events checked.
    pub events: i64,
    /// Partners with a chain.
    pub partners: usize,
    /// The first break, if any.
    pub broken: Option<Broken>,
}

impl Store {
    /// The lineage of one partner (or of all), in order.
    pub fn lineage(&self, partner: Option<&str>) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = "SELECT global_seq, event, prev_hash, hash FROM lineage WHERE (?1 IS NULL OR partner_id = ?1) ORDER BY global_seq";
        let mut stmt = self.conn.prepare(sql)?;
        let rows = stmt.query_map([partner], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (global_seq, body, prev_hash, hash) = row?;
            let event: Event = serde_json::from_str(&body).unwrap_or_else(|_| Event {
                kind: "unreadable".into(),
                detail: Some(body.clone()),
                ..Event::default()
            });
            out.push(StoredEvent {
                global_seq,
                event,
                prev_hash,
                hash,
            });
        }
        Ok(out)
    }

    /// Recompute every hash of both chains and compare with the head.
    pub fn verify(&self) -> Result<Verification, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT global_seq, partner_id, seq, event, prev_hash, hash, global_prev, global_hash FROM lineage ORDER BY global_seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut last_global = (0i64, GENESIS.to_string());
        let mut chains: std::collections::HashMap<String, (i64, String)> =
            std::collections::HashMap::new();
        let mut count = 0i64;
        let broken =
            |global_seq: i64, partner: Option<&str>, seq: Option<i64>, reason: String| Broken {
                global_seq,
                partner: partner.map(str::to_string),
                seq,
                reason,
            };
        let mut first: Option<Broken> = None;
        while let Some(r) = rows.next()? {
            let global_seq: i64 = r.get(0)?;
            let partner: String = r.get(1)?;
            let seq: i64 = r.get(2)?;
            let body: String = r.get(3)?;
            let prev_hash: String = r.get(4)?;
            let hash: String = r.get(5)?;
            let global_prev: String = r.get(6)?;
            let global_hash: String = r.get(7)?;
            count += 1;
            let here = |reason: String| broken(global_seq, Some(&partner), Some(seq), reason);
            let problem = if global_seq != last_global.0 + 1 {
                Some(broken(
                    last_global.0 + 1,
                    None,
                    None,
                    format!(
                        "event {} is missing (the next one is {global_seq})",
                        last_global.0 + 1
                    ),
                ))
            } else if global_prev != last_global.1 || sha(&global_prev, &hash) != global_hash {
                Some(here(
                    "the global chain does not link to the previous event".into(),
                ))
            } else {
                let (last_seq, last_hash) = chains
                    .get(&partner)
                    .cloned()
                    .unwrap_or((0, GENESIS.to_string()));
                let parsed: Option<Event> = serde_json::from_str(&body).ok();
                if seq != last_seq + 1 {
                    Some(here(format!(
                        "partner event {} is missing or out of order (found {seq})",
                        last_seq + 1
                    )))
                } else if prev_hash != last_hash {
                    Some(here(
                        "it does not link to the partner's previous event".into(),
                    ))
                } else if sha(&prev_hash, &body) != hash {
                    Some(here("its content does not match its hash (edited)".into()))
                } else if parsed
                    .as_ref()
                    .is_none_or(|e| e.partner != partner || e.seq as i64 != seq)
                {
                    Some(here("its content names another partner or position".into()))
                } else {
                    None
                }
            };
            if let Some(p) = problem {
                first = Some(p);
                break;
            }
            chains.insert(partner, (seq, hash));
            last_global = (global_seq, global_hash);
        }
        if first.is_none() {
            let head: Option<String> = self
                .conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'global_head'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let recorded: Option<String> = self
                .conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'global_count'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            let recorded = recorded.and_then(|c| c.parse::<i64>().ok()).unwrap_or(0);
            if recorded != count || head.as_deref().unwrap_or(GENESIS) != last_global.1 {
                first = Some(broken(
                    count + 1,
                    None,
                    None,
                    format!(
                        "the lineage ends at event {count} but {recorded} were recorded (events deleted at the end)"
                    ),
                ));
            }
        }
        Ok(Verification {
            events: count,
            partners: chains.len(),
            broken: first,
        })
    }
}
