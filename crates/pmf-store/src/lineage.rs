//! The lineage: an append-only, hash-chained log of every migration event.
//! Each event carries the hash of the partner's previous event (a chain per
//! partner) and of the previous event overall (the global chain); the
//! events are also the leaves of a Merkle tree ([`super::merkle`]) whose
//! root every writing transaction signs ([`super::checkpoint`]). Events
//! are appended by [`super::batch::Batch`] and checked by
//! [`super::verify`].

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
    /// What happened.
    pub kind: EventKind,
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
    /// Digest of the partner's stored row (state, version, status) after
    /// the command: on the last event a command writes for a partner, so
    /// that `verify` can hold the `partners` table to the lineage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Digests of the stable versions the command recorded, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stable: Vec<String>,
    /// The approvals verified (`AUTHORITY:public key`), each stored with
    /// its signature and re-verified by `verify`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub signers: Vec<String>,
    /// A review decision's ed25519 signature (hex) by the key in `signers`,
    /// over [`super::verify::review_message`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// What a paused partner waits for (a digest of the approvals it had):
    /// a re-run of the same plan walks it again only when this changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits: Option<String>,
    /// When (RFC 3339, UTC).
    pub time: String,
    /// More about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// What a lineage event records. One list for every module that writes
/// or reads events (the JSON name is the snake_case of the variant).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A phase of the flow was entered (its rite spoken).
    PhaseEntered,
    /// Preparation found approvals missing.
    ApprovalsMissing,
    /// Preparation verified every approval needed.
    Approved,
    /// Validation's verdict.
    Validated,
    /// Stabilization's health score, band and action.
    Health,
    /// A phase failed: the failure edge is taken.
    PhaseFailed,
    /// The partner returned to its previous stable state.
    Fallback,
    /// Continuity after a fallback.
    Resumed,
    /// The migration completed (or a rollback did).
    Completed,
    /// The old version was released (its rite spoken).
    Released,
    /// Stopped: the partner is restricted.
    Restricted,
    /// Stopped: the partner waits for governance review.
    AwaitingReview,
    /// Stopped: the partner waits for the ecosystem to recover.
    Throttled,
    /// A review pause passed on an authority's decision.
    Promoted,
    /// Already at its target (a partner first seen, or whose status changed).
    Unchanged,
    /// A rollback began (a fallback migration to a stable version).
    Rollback,
    /// A partner's state imported (`pmf state import`).
    Imported,
    /// A partner's state replaced (`pmf state import --replace`).
    Replaced,
    /// An authority promoted a paused partner (`pmf review promote`).
    ReviewPromoted,
    /// An authority aborted a paused partner's migration (`pmf review abort`).
    ReviewAborted,
    /// A kind this pmf does not know (a newer pmf wrote it), or an event
    /// whose JSON cannot be read.
    #[default]
    #[serde(other)]
    Unknown,
}

impl EventKind {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::PhaseEntered => "phase_entered",
            EventKind::ApprovalsMissing => "approvals_missing",
            EventKind::Approved => "approved",
            EventKind::Validated => "validated",
            EventKind::Health => "health",
            EventKind::PhaseFailed => "phase_failed",
            EventKind::Fallback => "fallback",
            EventKind::Resumed => "resumed",
            EventKind::Completed => "completed",
            EventKind::Released => "released",
            EventKind::Restricted => "restricted",
            EventKind::AwaitingReview => "awaiting_review",
            EventKind::Throttled => "throttled",
            EventKind::Promoted => "promoted",
            EventKind::Unchanged => "unchanged",
            EventKind::Rollback => "rollback",
            EventKind::Imported => "imported",
            EventKind::Replaced => "replaced",
            EventKind::ReviewPromoted => "review_promoted",
            EventKind::ReviewAborted => "review_aborted",
            EventKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

/// The chain hash of an event: SHA-256 (hex) of the previous hash, a
/// newline and the event's JSON.
pub fn chain_hash(prev: &str, body: &str) -> String {
    hex32(&chain_digest(prev, body))
}

/// The bytes of [`chain_hash`] (the event's Merkle leaf input).
pub fn chain_digest(prev: &str, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().into()
}

/// Lowercase hex of 32 bytes, by table (`hex::encode` goes char by char:
/// a few percent of apply, which writes two of these per event).
pub fn hex32(bytes: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // A nibble is below 16: the default is never taken.
    let digit = |n: u8| DIGITS.get(usize::from(n)).copied().unwrap_or(b'0');
    let mut out = [0u8; 64];
    let (pairs, _) = out.as_chunks_mut::<2>();
    for ([hi, lo], b) in pairs.iter_mut().zip(bytes) {
        *hi = digit(b >> 4);
        *lo = digit(b & 15);
    }
    // Only ASCII digits were written.
    String::from_utf8_lossy(&out).into_owned()
}

/// What a command left as a partner's last event, read to hold the stored
/// row to the lineage and to run each partner once per plan.
#[derive(Deserialize, Debug, Clone, Default, PartialEq)]
#[serde(default)]
pub struct LastEvent {
    /// The event's kind.
    pub kind: EventKind,
    /// Its outcome, if any.
    pub outcome: Option<String>,
    /// The plan it ran (last events of `apply` carry it).
    pub plan_hash: Option<String>,
    /// The partner row's digest after it.
    pub state: Option<String>,
    /// What the partner waits for, when paused.
    pub waits: Option<String>,
    /// Why.
    pub detail: Option<String>,
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
                kind: EventKind::Unknown,
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

    /// One partner's events as stored: (global position, JSON, previous
    /// hash, hash), in order.
    pub fn raw_events(
        &self,
        partner: &str,
    ) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT global_seq, event, prev_hash, hash FROM lineage WHERE partner_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([partner], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
