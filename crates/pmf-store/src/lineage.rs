//! The lineage: an append-only, hash-chained log of every migration event.
//! Each event carries the hash of the partner's previous event (a chain per
//! partner); the events' hashes, in the log's order, are the leaves of a
//! Merkle tree ([`super::merkle`]) whose root every writing transaction
//! signs ([`super::checkpoint`]), which binds that order. Events
//! are appended by [`super::batch::Batch`] and checked by
//! [`super::verify`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::interned::Texts;
use super::{Store, StoreError};

/// A short text of an event (a phase, a version, a type, a time…): kept
/// inline up to 24 bytes, so that an event is made and copied without
/// allocating for them.
pub type Text = compact_str::CompactString;

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
    pub phase: Option<Text>,
    /// What happened.
    pub kind: EventKind,
    /// Version before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Text>,
    /// Version after (or aimed at).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Text>,
    /// Migration type.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[serde(rename = "type")]
    pub migration: Option<Text>,
    /// Outcome (validation verdict, or the partner's result).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Text>,
    /// Health score.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<f64>,
    /// Health band status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub band: Option<Text>,
    /// Action taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<Text>,
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
    pub time: Text,
    /// More about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The categories of change the migration touches, maybe none (on a
    /// paused walk's last event: what a review decision that ends the walk
    /// counts its outcome under, for illumination).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    /// Until when the plan a paused walk waits on may continue it (RFC
    /// 3339, on a paused walk's last event): what `pmf review` judges a
    /// promotion by, signed with the walk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
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
    /// The store is governed by a policy from here on (the reserved chain
    /// [`crate::governance::GOVERNANCE`]).
    Governed,
    /// `pmf apply` refused a plan and applied nothing of it (the reserved
    /// chain [`crate::refused::REFUSED`]).
    Refused,
    /// The store's operator key was replaced (the reserved chain
    /// [`crate::rekey::OPERATOR`]).
    OperatorRekeyed,
    /// The illumination counts after a batch of `pmf apply` (the reserved
    /// chain [`crate::illumination::ILLUMINATION`]).
    OutcomesCounted,
    /// A plan's first batch committed (the reserved chain `@plans`, with
    /// how many partners the plan holds).
    PlanBegun,
    /// A run of a plan reached its last partner (`@plans`).
    PlanFinished,
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
            EventKind::Governed => "governed",
            EventKind::Refused => "refused",
            EventKind::OperatorRekeyed => "operator_rekeyed",
            EventKind::OutcomesCounted => "outcomes_counted",
            EventKind::PlanBegun => "plan_begun",
            EventKind::PlanFinished => "plan_finished",
            EventKind::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// Whether it changes or approves anything: a state or stable version
    /// recorded, approvals or a signed decision named, an outcome given.
    /// The store's own records (a refusal, an illumination count) do none.
    pub fn changes_anything(&self) -> bool {
        self.state.is_some()
            || !self.stable.is_empty()
            || !self.signers.is_empty()
            || !self.approvals.is_empty()
            || self.signature.is_some()
            || self.outcome.is_some()
    }

    /// The event's JSON, as serde writes it (the same fields in the same
    /// order, absent ones left out), appended to `out`: apply's
    /// `--format json` writes a line per event. The characters a terminal
    /// would obey are escaped (`\uXXXX`, which serde leaves raw: the same
    /// JSON value). A test holds it equal to `serde_json::to_string` with
    /// those escaped.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"partner\":");
        json_str(out, &self.partner);
        out.extend_from_slice(b",\"seq\":");
        out.extend_from_slice(decimal(self.seq, &mut [0u8; 20]).as_bytes());
        let field = |out: &mut Vec<u8>, name: &str, v: Option<&str>| {
            if let Some(v) = v {
                out.extend_from_slice(b",\"");
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
                json_str(out, v);
            }
        };
        // A list, written even when empty.
        let all = |out: &mut Vec<u8>, name: &str, v: &[String]| {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":[");
            for (i, s) in v.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                json_str(out, s);
            }
            out.push(b']');
        };
        // A list, left out when empty.
        let list = |out: &mut Vec<u8>, name: &str, v: &[String]| {
            if !v.is_empty() {
                all(out, name, v);
            }
        };
        field(out, "phase", self.phase.as_deref());
        out.extend_from_slice(b",\"kind\":\"");
        out.extend_from_slice(self.kind.as_str().as_bytes());
        out.push(b'"');
        field(out, "from", self.from.as_deref());
        field(out, "to", self.to.as_deref());
        field(out, "type", self.migration.as_deref());
        field(out, "outcome", self.outcome.as_deref());
        if let Some(h) = self.health {
            out.extend_from_slice(b",\"health\":");
            // Numbers as serde writes them (shortest round trip; `null`
            // when not finite).
            if serde_json::to_writer(&mut *out, &h).is_err() {
                out.extend_from_slice(b"null");
            }
        }
        field(out, "band", self.band.as_deref());
        field(out, "action", self.action.as_deref());
        list(out, "approvals", &self.approvals);
        field(out, "rite", self.rite.as_deref());
        field(out, "policy_hash", self.policy_hash.as_deref());
        field(out, "plan_hash", self.plan_hash.as_deref());
        field(out, "state", self.state.as_deref());
        list(out, "stable", &self.stable);
        list(out, "signers", &self.signers);
        field(out, "signature", self.signature.as_deref());
        field(out, "waits", self.waits.as_deref());
        out.extend_from_slice(b",\"time\":");
        json_str(out, &self.time);
        field(out, "detail", self.detail.as_deref());
        if let Some(categories) = &self.categories {
            all(out, "categories", categories);
        }
        field(out, "expires_at", self.expires_at.as_deref());
        out.push(b'}');
    }
}

/// A whole number in decimal, as `to_string` writes it, in `buf` (no
/// allocation).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    // A u64 has at most 20 digits.
    let mut at = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        at -= 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(buf.get(at..).unwrap_or_default()).unwrap_or_default()
}

/// Whether `bytes` hold a byte JSON escapes (a control character, `"`
/// or `\`): eight bytes at a time, as one 64-bit word (a byte's high bit
/// marks a match), the rest one by one.
pub fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // Below 0x20 (the high bit of a byte of `x` clear, and of `x -
        // 0x20` set), `"` (0x22) or `\\` (0x5c): a zero byte of `x ^ c`.
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        if control | zero_in(x ^ (ONES * 0x22)) | zero_in(x ^ (ONES * 0x5c)) != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// A JSON string as serde_json writes it (`"` and `\` escaped, control
/// characters as `\b \t \n \f \r` or `\u00xx`, the rest as is), but for
/// the characters a terminal would obey ([`crate::shown`]: DEL, C1
/// controls, bidirectional overrides), which serde_json leaves raw: those
/// are written as `\uXXXX`, the same JSON string, so that a line apply
/// prints never drives the terminal it is read on.
fn json_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let bytes = s.as_bytes();
    // Most texts need no escape: they are copied whole.
    if !needs_escape(bytes) && bytes.is_ascii() && !bytes.contains(&0x7f) {
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: &[u8] = match c {
            '"' => b"\\\"",
            '\\' => b"\\\\",
            '\n' => b"\\n",
            '\r' => b"\\r",
            '\t' => b"\\t",
            '\u{8}' => b"\\b",
            '\u{c}' => b"\\f",
            // Every other control character, DEL, C1 and layout controls.
            c if crate::shown::obeyed_by_terminals(c) => b"",
            _ => continue,
        };
        out.extend_from_slice(bytes.get(start..i).unwrap_or_default());
        if escape.is_empty() {
            // Every such character is in the Basic Multilingual Plane:
            // four hex digits.
            let n = u32::from(c);
            let digit = |shift: u32| {
                HEX.get(((n >> shift) & 15) as usize)
                    .copied()
                    .unwrap_or(b'0')
            };
            out.extend_from_slice(&[b'\\', b'u', digit(12), digit(8), digit(4), digit(0)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + c.len_utf8();
    }
    out.extend_from_slice(bytes.get(start..).unwrap_or_default());
    out.push(b'"');
}

/// An event as stored, with its hashes.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct StoredEvent {
    /// Position in the log, from 1.
    pub global_seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Hash of the partner's previous event (hex).
    pub prev_hash: String,
    /// This event's hash (hex).
    pub hash: String,
}

/// The chain hash of an event stored as JSON (stores of schema 2 and
/// before): SHA-256 (hex) of the previous hash (hex), a newline and the
/// event's JSON. Only the tests use the hex form; the store uses
/// [`chain_digest`].
#[cfg(test)]
fn chain_hash(prev: &str, body: &str) -> String {
    hex32(&chain_digest(prev, body))
}

/// The chain hash of an event stored as JSON, as bytes (the event's Merkle
/// leaf input): SHA-256 of the previous hash (hex), a newline and the
/// event's JSON.
pub(crate) fn chain_digest(prev: &str, body: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(body.as_bytes());
    h.finalize().into()
}

/// The chain hash of an event in the compact encoding (its Merkle leaf
/// input): SHA-256 of `pmf-event-v2` and a zero byte, the partner's
/// previous hash (32 bytes), the event's position and the partner id's
/// length (varints), the partner id and the stored bytes.
pub(crate) fn event_digest(prev: &[u8; 32], partner: &str, seq: u64, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pmf-event-v2\0");
    h.update(prev);
    // The two varints, on the stack (ten bytes each at most).
    let mut varints = [0u8; 20];
    let mut len = 0;
    for mut n in [seq, partner.len() as u64] {
        loop {
            let byte = if n >= 0x80 { (n as u8) | 0x80 } else { n as u8 };
            if let Some(slot) = varints.get_mut(len) {
                *slot = byte;
            }
            len += 1;
            n >>= 7;
            if n == 0 {
                break;
            }
        }
    }
    h.update(varints.get(..len).unwrap_or_default());
    h.update(partner.as_bytes());
    h.update(body);
    h.finalize().into()
}

/// Whether a stored event is JSON (written before schema 3).
pub fn is_json(body: &[u8]) -> bool {
    body.first() == Some(&b'{')
}

/// The chain hash of a stored event, by its encoding, after `prev`.
pub fn stored_digest(prev: &[u8; 32], partner: &str, seq: u64, body: &[u8]) -> [u8; 32] {
    if is_json(body) {
        chain_digest(&hex32(prev), &String::from_utf8_lossy(body))
    } else {
        event_digest(prev, partner, seq, body)
    }
}

/// The chain hash of a stored event as `verify` computes it: of its
/// expansion ([`expand`]) after `prev`; `None` when `texts` does not
/// expand it.
pub fn chain_hash_of(
    body: &[u8],
    texts: &Texts,
    prev: &[u8; 32],
    partner: &str,
    seq: u64,
) -> Option<[u8; 32]> {
    let read = (body.first() == Some(&INTERNED))
        .then(|| decode_with(body, partner, seq, texts))
        .flatten();
    chain_hash_read(body, read.as_ref(), prev, partner, seq)
}

/// [`chain_hash_of`] for an event already read: `read` is what
/// [`read_event_with`] gave for the same body, partner and position (an
/// interned event's hash covers its compact encoding, made again from what
/// was read, so `verify` decodes each event once, not twice).
pub fn chain_hash_read(
    body: &[u8],
    read: Option<&Event>,
    prev: &[u8; 32],
    partner: &str,
    seq: u64,
) -> Option<[u8; 32]> {
    if body.first() != Some(&INTERNED) {
        return Some(stored_digest(prev, partner, seq, body));
    }
    let mut compact = Vec::with_capacity(body.len() * 2);
    encode(read?, &mut compact);
    Some(stored_digest(prev, partner, seq, &compact))
}

/// A stored event read back (JSON or compact), with the partner and
/// position of its row; `None` when it cannot be read.
pub fn read_event(body: &[u8], partner: &str, seq: u64) -> Option<Event> {
    read_event_with(body, partner, seq, &Texts::default())
}

/// A stored event read back (JSON, compact or interned, its texts named
/// by `texts`), with the partner and position of its row; `None` when it
/// cannot be read.
pub fn read_event_with(body: &[u8], partner: &str, seq: u64, texts: &Texts) -> Option<Event> {
    if is_json(body) {
        serde_json::from_slice(body).ok()
    } else {
        decode_with(body, partner, seq, texts)
    }
}

/// The bytes an event's chain hash covers: an interned event's compact
/// encoding, its texts in place (`None` when it does not read with
/// `texts`); any other stored event as it is.
pub fn expand<'b>(body: &'b [u8], texts: &Texts) -> Option<std::borrow::Cow<'b, [u8]>> {
    if body.first() != Some(&INTERNED) {
        return Some(std::borrow::Cow::Borrowed(body));
    }
    let e = decode_with(body, "", 0, texts)?;
    let mut out = Vec::with_capacity(body.len() * 2);
    encode(&e, &mut out);
    Some(std::borrow::Cow::Owned(out))
}

/// A 32-byte hash column (a hash of another length reads as zeros, which
/// no chain hash is: `verify` reports it).
pub fn hash_of(bytes: &[u8]) -> [u8; 32] {
    bytes.try_into().unwrap_or([0; 32])
}

/// The hash before the first event, as bytes.
pub const GENESIS_BYTES: [u8; 32] = [0; 32];

/// Lowercase hex of 32 bytes, by table (`hex::encode` goes char by char).
pub fn hex32(bytes: &[u8; 32]) -> String {
    let mut out = [0u8; 64];
    let (pairs, _) = out.as_chunks_mut::<2>();
    for (pair, &b) in pairs.iter_mut().zip(bytes) {
        *pair = hex_pair(b);
    }
    // Only ASCII digits were written (checked a word at a time, not
    // through `from_utf8_lossy`'s chunks: this is on apply's hot path).
    std::str::from_utf8(&out).unwrap_or_default().to_owned()
}

/// Lowercase hex of any bytes, by table (reading a lineage back writes
/// every digest it holds so).
fn lower_hex(bytes: &[u8]) -> String {
    let mut out = Vec::with_capacity(bytes.len() * 2);
    out.extend(bytes.iter().flat_map(|&b| hex_pair(b)));
    String::from_utf8(out).unwrap_or_default()
}

/// The two lowercase hex digits of a byte.
fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // A nibble is below 16: the default is never taken.
    let digit = |n: u8| DIGITS.get(usize::from(n)).copied().unwrap_or(b'0');
    [digit(b >> 4), digit(b & 15)]
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
    /// Its migration type, if any.
    #[serde(rename = "type")]
    pub migration: Option<String>,
    /// The categories a paused walk's migration touches.
    pub categories: Option<Vec<String>>,
    /// Until when the plan a paused walk waits on may continue it.
    pub expires_at: Option<String>,
}

impl LastEvent {
    /// What an event stored as JSON says (an unreadable one says nothing).
    pub(crate) fn of_json(body: &[u8]) -> LastEvent {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

impl From<Event> for LastEvent {
    fn from(e: Event) -> LastEvent {
        LastEvent {
            kind: e.kind,
            outcome: e.outcome.map(Text::into_string),
            plan_hash: e.plan_hash,
            state: e.state,
            waits: e.waits,
            detail: e.detail,
            migration: e.migration.map(Text::into_string),
            categories: e.categories,
            expires_at: e.expires_at,
        }
    }
}

/// One stored event as it is in the store, for proofs.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    /// Position in the log, from 1.
    pub global_seq: i64,
    /// Position in the partner's chain, from 1.
    pub seq: i64,
    /// The bytes its chain hash covers (JSON, or the compact encoding;
    /// an interned event expanded, see [`expand`]).
    pub body: Vec<u8>,
    /// Hash of the partner's previous event.
    pub prev_hash: [u8; 32],
    /// This event's hash.
    pub hash: [u8; 32],
}

impl Store {
    /// The lineage of one partner (or of all), in order.
    pub fn lineage(&self, partner: Option<&str>) -> Result<Vec<StoredEvent>, StoreError> {
        let mut out = Vec::new();
        self.each_event(partner, |e| {
            out.push(e);
            Ok(())
        })?;
        Ok(out)
    }

    /// Call `f` with each event of [`Store::lineage`], in order, one at a
    /// time (a fleet's millions of events are never all held); the first
    /// error `f` returns ends the walk and is returned.
    pub fn each_event(
        &self,
        partner: Option<&str>,
        mut f: impl FnMut(StoredEvent) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let sql = "SELECT global_seq, partner_id, seq, event, hash FROM lineage WHERE (?1 IS NULL OR partner_id = ?1) ORDER BY global_seq";
        let texts = Texts::load(&self.conn)?;
        let mut stmt = self.conn.prepare(sql)?;
        let mut rows = stmt.query([partner])?;
        // Each chain's last hash: what its next event follows.
        let mut heads: std::collections::HashMap<String, [u8; 32]> = Default::default();
        while let Some(r) = rows.next()? {
            let first_global: i64 = r.get(0)?;
            let id: String = r.get(1)?;
            let first_seq: i64 = r.get(2)?;
            let row = r.get_ref(3)?.as_bytes().unwrap_or_default();
            let hashes = r.get_ref(4)?.as_bytes().unwrap_or_default();
            for (i, (body, hash)) in row_events(row, hashes).into_iter().enumerate() {
                let (global_seq, seq) = (
                    first_global.wrapping_add(i as i64),
                    first_seq.wrapping_add(i as i64),
                );
                let event =
                    read_event_with(body, &id, seq as u64, &texts).unwrap_or_else(|| Event {
                        partner: id.clone(),
                        seq: seq as u64,
                        kind: EventKind::Unknown,
                        detail: Some(String::from_utf8_lossy(body).into_owned()),
                        ..Event::default()
                    });
                let prev = heads.insert(id.clone(), hash).unwrap_or(GENESIS_BYTES);
                f(StoredEvent {
                    global_seq,
                    event,
                    prev_hash: hex32(&prev),
                    hash: hex32(&hash),
                })?;
            }
        }
        Ok(())
    }

    /// One partner's events as their chain hashes cover them, in order.
    pub fn raw_events(&self, partner: &str) -> Result<Vec<RawEvent>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT global_seq, seq, event, hash FROM lineage WHERE partner_id = ?1 ORDER BY seq",
        )?;
        let texts = Texts::load(&self.conn)?;
        let mut rows = stmt.query([partner])?;
        let mut out = Vec::new();
        let mut prev = GENESIS_BYTES;
        while let Some(r) = rows.next()? {
            let (first_global, first_seq): (i64, i64) = (r.get(0)?, r.get(1)?);
            let row = r.get_ref(2)?.as_bytes().unwrap_or_default();
            let hashes = r.get_ref(3)?.as_bytes().unwrap_or_default();
            for (i, (stored, hash)) in row_events(row, hashes).into_iter().enumerate() {
                out.push(RawEvent {
                    global_seq: first_global.wrapping_add(i as i64),
                    seq: first_seq.wrapping_add(i as i64),
                    body: expand(stored, &texts).unwrap_or(stored.into()).into_owned(),
                    prev_hash: prev,
                    hash,
                });
                prev = hash;
            }
        }
        Ok(out)
    }
}

/// The first byte of an event in the compact encoding (an event stored as
/// JSON, as stores of schema 2 and before hold them, begins with `{`).
pub(crate) const COMPACT: u8 = 0x02;

/// The first byte of an event stored interned ([`encode_interned`]).
pub(crate) const INTERNED: u8 = 0x03;

/// The first byte of a row holding a run of a partner's events (schema 4):
/// their count, then each stored event (its length, its bytes); the row's
/// `hash` holds their chain hashes, 32 bytes each, in order. A row of one
/// event holds it as it is.
pub const RUN: u8 = 0x04;

/// The events of one lineage row (`body` its `event` column, `hashes` its
/// `hash` column), each with its chain hash, in order: the events of a run
/// ([`RUN`]), or the row's one event. A run that does not split into as
/// many events as it has hashes is one event that no hash fits (`verify`
/// reports it there).
pub fn row_events<'b>(body: &'b [u8], hashes: &'b [u8]) -> Vec<(&'b [u8], [u8; 32])> {
    if body.first() == Some(&RUN)
        && let Some(events) = split_run(body, hashes)
    {
        return events;
    }
    if body.first() == Some(&RUN) {
        return vec![(body, [0; 32])];
    }
    vec![(body, hash_of(hashes))]
}

/// A row's `event` column holding `events` (stored events, in order): the
/// one event as it is, or a run of them ([`RUN`]); the inverse of
/// [`row_events`] (its `hash` column is their hashes, one after the other).
pub fn row_of(events: &[&[u8]]) -> Vec<u8> {
    match events {
        [one] => one.to_vec(),
        _ => {
            let mut out = vec![RUN];
            put_varint(&mut out, events.len() as u64);
            for e in events {
                put_varint(&mut out, e.len() as u64);
                out.extend_from_slice(e);
            }
            out
        }
    }
}

fn split_run<'b>(body: &'b [u8], hashes: &'b [u8]) -> Option<Vec<(&'b [u8], [u8; 32])>> {
    let mut r = Reader { rest: body };
    r.byte()?;
    let n = usize::try_from(r.varint()?).ok()?;
    let (chunks, rest) = hashes.as_chunks::<32>();
    if chunks.len() != n || !rest.is_empty() || n < 2 {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    for hash in chunks {
        let len = usize::try_from(r.varint()?).ok()?;
        out.push((r.bytes(len)?, *hash));
    }
    r.rest.is_empty().then_some(out)
}

/// Every kind, by its code in the compact encoding (its place here).
const KINDS: [EventKind; 27] = [
    EventKind::Unknown,
    EventKind::PhaseEntered,
    EventKind::ApprovalsMissing,
    EventKind::Approved,
    EventKind::Validated,
    EventKind::Health,
    EventKind::PhaseFailed,
    EventKind::Fallback,
    EventKind::Resumed,
    EventKind::Completed,
    EventKind::Released,
    EventKind::Restricted,
    EventKind::AwaitingReview,
    EventKind::Throttled,
    EventKind::Promoted,
    EventKind::Unchanged,
    EventKind::Rollback,
    EventKind::Imported,
    EventKind::Replaced,
    EventKind::ReviewPromoted,
    EventKind::ReviewAborted,
    EventKind::Governed,
    EventKind::Refused,
    EventKind::OperatorRekeyed,
    EventKind::OutcomesCounted,
    EventKind::PlanBegun,
    EventKind::PlanFinished,
];

/// An unsigned LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A string: its length shifted left once, the low bit set when the text
/// is lowercase hex of at least 16 digits, an even number (then kept as
/// the bytes it spells: a digest takes 32 bytes, not 64); then the bytes.
/// Hex is decoded as it is checked, in one pass.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    if b.len() >= 16 && b.len().is_multiple_of(2) {
        let start = out.len();
        out.reserve(b.len() / 2 + 10);
        put_varint(out, (((b.len() / 2) as u64) << 1) | 1);
        let digit = |c: u8| LOWER_HEX.get(usize::from(c)).copied().unwrap_or(NOT_HEX);
        let spelled = b.chunks_exact(2).all(|pair| match pair {
            &[hi, lo] => {
                let (hi, lo) = (digit(hi), digit(lo));
                let hex = (hi | lo) & NOT_HEX == 0;
                out.push((hi << 4) | lo);
                hex
            }
            _ => false,
        });
        if spelled {
            return;
        }
        out.truncate(start);
    }
    put_varint(out, (b.len() as u64) << 1);
    out.extend_from_slice(b);
}

/// What [`LOWER_HEX`] gives a byte that is no lowercase hex digit.
const NOT_HEX: u8 = 0x10;

/// The value of each lowercase hex digit; [`NOT_HEX`] for other bytes.
// Evaluated at compile time: an index out of bounds fails the build.
#[allow(clippy::indexing_slicing)]
const LOWER_HEX: [u8; 256] = {
    let mut table = [NOT_HEX; 256];
    let mut c = 0;
    while c < 10 {
        table[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        table[b'a' as usize + c] = 10 + c as u8;
        c += 1;
    }
    table
};

fn put_list(out: &mut Vec<u8>, list: &[String]) {
    put_varint(out, list.len() as u64);
    for s in list {
        put_str(out, s);
    }
}

/// An event's compact encoding (what its chain hash covers, and what
/// stores of schema 3 keep): the
/// tag [`COMPACT`], the kind's code, a bit per optional field present (and
/// one when the time is kept as seconds), the time, then each field present
/// in the order of [`Event`]. Strings are
/// length-prefixed (lowercase hex kept as its bytes), a health score is 8
/// bytes (IEEE 754, little-endian). The partner and its position are not
/// repeated: they are the row's, and the chain hash covers them.
pub fn encode(e: &Event, out: &mut Vec<u8>) {
    out.push(COMPACT);
    let mut plain = |out: &mut Vec<u8>, s: &str| -> Result<(), StoreError> {
        put_str(out, s);
        Ok(())
    };
    // Writing strings as they are cannot fail.
    let _ = write_event(e, out, &mut plain);
}

/// An event as a store of schema 4 keeps it: the compact encoding under
/// the tag [`INTERNED`], with the texts that events repeat (phases,
/// versions, migration types, outcomes, bands, actions, authorities,
/// rites, policy and plan hashes, signers, details) each written as its
/// number in the store's table ([`crate::interned`]) by `intern`. Times,
/// digests of states, signatures and what a partner waits for stay in
/// place. [`expand`] gives back the compact encoding the chain hash covers.
pub(crate) fn encode_interned(
    e: &Event,
    out: &mut Vec<u8>,
    intern: &mut dyn FnMut(&str) -> Result<u64, StoreError>,
) -> Result<(), StoreError> {
    out.push(INTERNED);
    let mut by_number = |out: &mut Vec<u8>, s: &str| -> Result<(), StoreError> {
        put_varint(out, intern(s)?);
        Ok(())
    };
    write_event(e, out, &mut by_number)
}

/// An event's compact encoding ([`encode`], what its chain hash covers)
/// into `plain`, and its stored form ([`encode_interned`]) into `interned`,
/// made from it in the same pass: the bytes between the texts events repeat
/// are copied, each repeated text written as its number by `intern`.
/// `texts` is room for where each repeated text is in `plain` and its
/// number (cleared here; kept by the caller across events, as it was a
/// fiftieth of apply's work to make anew for each).
pub(crate) fn encode_both(
    e: &Event,
    plain: &mut Vec<u8>,
    interned: &mut Vec<u8>,
    texts: &mut Vec<(usize, usize, u64)>,
    intern: &mut dyn FnMut(&str) -> Result<u64, StoreError>,
) -> Result<(), StoreError> {
    let first = plain.len();
    plain.push(COMPACT);
    texts.clear();
    let mut in_place = |out: &mut Vec<u8>, s: &str| -> Result<(), StoreError> {
        let start = out.len();
        put_str(out, s);
        texts.push((start, out.len(), intern(s)?));
        Ok(())
    };
    write_event(e, plain, &mut in_place)?;
    interned.push(INTERNED);
    let mut copied = first + 1;
    for &(start, end, id) in texts.iter() {
        interned.extend_from_slice(plain.get(copied..start).unwrap_or_default());
        put_varint(interned, id);
        copied = end;
    }
    interned.extend_from_slice(plain.get(copied..).unwrap_or_default());
    Ok(())
}

/// How [`write_event`] writes a repeated text: in place, or by number.
type WriteText<'a> = dyn FnMut(&mut Vec<u8>, &str) -> Result<(), StoreError> + 'a;

/// The compact encoding after its tag, the repeated texts written by
/// `text` (in place, or by number).
fn write_event(e: &Event, out: &mut Vec<u8>, text: &mut WriteText<'_>) -> Result<(), StoreError> {
    let code = KINDS.iter().position(|k| *k == e.kind).unwrap_or(0);
    out.push(code as u8);
    let strs: [Option<&str>; 5] = [
        e.phase.as_deref(),
        e.from.as_deref(),
        e.to.as_deref(),
        e.migration.as_deref(),
        e.outcome.as_deref(),
    ];
    let more: [Option<&str>; 2] = [e.band.as_deref(), e.action.as_deref()];
    let hashes: [Option<&str>; 3] = [
        e.rite.as_deref(),
        e.policy_hash.as_deref(),
        e.plan_hash.as_deref(),
    ];
    let mut flags = 0u64;
    let mut bit = 0;
    let mut mark = |present: bool| {
        if present {
            flags |= 1 << bit;
        }
        bit += 1;
    };
    for s in strs {
        mark(s.is_some());
    }
    mark(e.health.is_some());
    for s in more {
        mark(s.is_some());
    }
    mark(!e.approvals.is_empty());
    for s in hashes {
        mark(s.is_some());
    }
    mark(e.state.is_some());
    mark(!e.stable.is_empty());
    mark(!e.signers.is_empty());
    mark(e.signature.is_some());
    mark(e.waits.is_some());
    mark(e.detail.is_some());
    // A time as pmf writes it is kept as its seconds (bit 18).
    let secs = crate::clock::parse_rfc3339_again(&e.time);
    mark(secs.is_some());
    mark(e.categories.is_some());
    mark(e.expires_at.is_some());
    put_varint(out, flags);
    match secs {
        Some(n) => put_varint(out, n),
        None => put_str(out, &e.time),
    }
    for s in strs.into_iter().flatten() {
        text(out, s)?;
    }
    if let Some(h) = e.health {
        out.extend_from_slice(&h.to_le_bytes());
    }
    for s in more.into_iter().flatten() {
        text(out, s)?;
    }
    fn list(
        out: &mut Vec<u8>,
        list: &[String],
        text: &mut WriteText<'_>,
    ) -> Result<(), StoreError> {
        put_varint(out, list.len() as u64);
        for s in list {
            text(out, s)?;
        }
        Ok(())
    }
    if !e.approvals.is_empty() {
        list(out, &e.approvals, text)?;
    }
    for s in hashes.into_iter().flatten() {
        text(out, s)?;
    }
    if let Some(s) = &e.state {
        put_str(out, s);
    }
    if !e.stable.is_empty() {
        put_list(out, &e.stable);
    }
    if !e.signers.is_empty() {
        list(out, &e.signers, text)?;
    }
    for s in [&e.signature, &e.waits].into_iter().flatten() {
        put_str(out, s);
    }
    if let Some(s) = &e.detail {
        text(out, s)?;
    }
    if let Some(categories) = &e.categories {
        list(out, categories, text)?;
    }
    if let Some(s) = &e.expires_at {
        text(out, s)?;
    }
    Ok(())
}

/// Reads the compact encoding back.
pub(crate) struct Reader<'a> {
    /// What is left to read.
    pub(crate) rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// One byte.
    pub(crate) fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    /// A varint ([`put_varint`]).
    pub(crate) fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    /// `n` bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        let rest: &'a [u8] = self.rest;
        let (b, rest) = rest.split_at_checked(n)?;
        self.rest = rest;
        Some(b)
    }

    fn string(&mut self) -> Option<String> {
        let h = self.varint()?;
        let n = usize::try_from(h >> 1).ok()?;
        let b = self.bytes(n)?;
        if h & 1 == 1 {
            Some(lower_hex(b))
        } else {
            String::from_utf8(b.to_vec()).ok()
        }
    }

    fn list(&mut self) -> Option<Vec<String>> {
        let n = self.varint()?;
        (0..n).map(|_| self.string()).collect()
    }
}

/// An event from its compact encoding, with the partner and position of
/// its row; `None` when the bytes are not one.
#[cfg(test)]
pub(crate) fn decode(bytes: &[u8], partner: &str, seq: u64) -> Option<Event> {
    decode_with(bytes, partner, seq, &Texts::default())
}

/// An event from its compact or interned encoding (the interned texts
/// named by `texts`), with the partner and position of its row; `None`
/// when the bytes are not one, or name a text `texts` does not have.
pub(crate) fn decode_with(bytes: &[u8], partner: &str, seq: u64, texts: &Texts) -> Option<Event> {
    let mut r = Reader { rest: bytes };
    let interned = match r.byte()? {
        COMPACT => false,
        INTERNED => true,
        _ => return None,
    };
    let text = |r: &mut Reader<'_>| -> Option<String> {
        if interned {
            texts.text(r.varint()?).map(str::to_string)
        } else {
            r.string()
        }
    };
    let text_list = |r: &mut Reader<'_>| -> Option<Vec<String>> {
        let n = r.varint()?;
        (0..n).map(|_| text(r)).collect()
    };
    let kind = *KINDS.get(usize::from(r.byte()?))?;
    let flags = r.varint()?;
    let has = |bit: u32| (flags >> bit) & 1 == 1;
    let time = if has(18) {
        crate::clock::rfc3339_again(r.varint()?)
    } else {
        Text::from(r.string()?)
    };
    let opt = |bit: u32, r: &mut Reader<'_>| -> Option<Option<String>> {
        if has(bit) {
            r.string().map(Some)
        } else {
            Some(None)
        }
    };
    let opt_text = |bit: u32, r: &mut Reader<'_>| -> Option<Option<String>> {
        if has(bit) {
            text(r).map(Some)
        } else {
            Some(None)
        }
    };
    // A short text kept inline ([`Text`]).
    let short = |t: Option<String>| t.map(Text::from);
    let phase = short(opt_text(0, &mut r)?);
    let from = short(opt_text(1, &mut r)?);
    let to = short(opt_text(2, &mut r)?);
    let migration = short(opt_text(3, &mut r)?);
    let outcome = short(opt_text(4, &mut r)?);
    let health = if has(5) {
        let b: [u8; 8] = r.bytes(8)?.try_into().ok()?;
        Some(f64::from_le_bytes(b))
    } else {
        None
    };
    let band = short(opt_text(6, &mut r)?);
    let action = short(opt_text(7, &mut r)?);
    let approvals = if has(8) {
        text_list(&mut r)?
    } else {
        Vec::new()
    };
    let rite = opt_text(9, &mut r)?;
    let policy_hash = opt_text(10, &mut r)?;
    let plan_hash = opt_text(11, &mut r)?;
    let state = opt(12, &mut r)?;
    let stable = if has(13) { r.list()? } else { Vec::new() };
    let signers = if has(14) {
        text_list(&mut r)?
    } else {
        Vec::new()
    };
    let signature = opt(15, &mut r)?;
    let waits = opt(16, &mut r)?;
    let detail = opt_text(17, &mut r)?;
    let categories = if has(19) {
        Some(text_list(&mut r)?)
    } else {
        None
    };
    let expires_at = opt_text(20, &mut r)?;
    if !r.rest.is_empty() || flags >> 21 != 0 {
        return None;
    }
    Some(Event {
        partner: partner.to_string(),
        seq,
        phase,
        kind,
        from,
        to,
        migration,
        outcome,
        health,
        band,
        action,
        approvals,
        rite,
        policy_hash,
        plan_hash,
        state,
        stable,
        signers,
        signature,
        waits,
        time,
        detail,
        categories,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A string as the compact encoding wrote it before hex was decoded
    /// as it was checked: the reference [`put_str`] must equal.
    fn put_str_reference(out: &mut Vec<u8>, s: &str) {
        let b = s.as_bytes();
        let hex = b.len() >= 16
            && b.len().is_multiple_of(2)
            && b.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'));
        if hex {
            put_varint(out, (((b.len() / 2) as u64) << 1) | 1);
            let nibble = |c: u8| if c <= b'9' { c - b'0' } else { c - b'a' + 10 };
            for pair in b.chunks_exact(2) {
                out.push((nibble(pair[0]) << 4) | nibble(pair[1]));
            }
        } else {
            put_varint(out, (b.len() as u64) << 1);
            out.extend_from_slice(b);
        }
    }

    /// The stored form made beside the compact encoding, by copying the
    /// bytes between the repeated texts, is the one written on its own;
    /// the compact encoding is [`encode`]'s. Every field present or absent,
    /// texts in hex or not, times as seconds or not, numbers of every width.
    #[test]
    fn both_encodings_in_one_pass_are_the_encodings_alone() {
        let mut events = vec![full(), Event::default()];
        let mut e = full();
        e.time = "yesterday".into();
        e.health = None;
        e.approvals.clear();
        e.rite = Some("ab".repeat(40));
        e.detail = None;
        events.push(e);
        for drop_field in 0..8 {
            let mut e = full();
            match drop_field {
                0 => e.phase = None,
                1 => e.from = None,
                2 => e.to = None,
                3 => e.migration = None,
                4 => e.policy_hash = None,
                5 => e.stable.clear(),
                6 => e.signers.clear(),
                _ => e.outcome = Some("0123456789abcdef".into()),
            }
            events.push(e);
        }
        let mut numbers = std::collections::HashMap::new();
        for (k, e) in events.iter().enumerate() {
            let mut number = |t: &str| -> Result<u64, StoreError> {
                let next = numbers.len() as u64 * 1000 + k as u64;
                Ok(*numbers.entry(t.to_string()).or_insert(next))
            };
            let (mut plain, mut interned) = (vec![9u8], vec![]);
            encode_both(e, &mut plain, &mut interned, &mut Vec::new(), &mut number).unwrap();
            let mut alone = vec![9u8];
            encode(e, &mut alone);
            assert_eq!(plain, alone, "event {k}: the compact encoding");
            let mut stored = Vec::new();
            encode_interned(e, &mut stored, &mut number).unwrap();
            assert_eq!(interned, stored, "event {k}: the stored form");
        }
    }

    /// The chain hash of an event, as it was taken with its head built in a
    /// vector: positions and partner ids of every varint width.
    #[test]
    fn event_digests_are_the_reference_digests() {
        let reference = |prev: &[u8; 32], partner: &str, seq: u64, body: &[u8]| {
            let mut head = b"pmf-event-v2\0".to_vec();
            head.extend_from_slice(prev);
            put_varint(&mut head, seq);
            put_varint(&mut head, partner.len() as u64);
            let mut h = Sha256::new();
            h.update(&head);
            h.update(partner.as_bytes());
            h.update(body);
            let digest: [u8; 32] = h.finalize().into();
            digest
        };
        let prev = [0x5au8; 32];
        for seq in [
            0,
            1,
            127,
            128,
            300,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            for len in [0usize, 1, 127, 128, 5000] {
                let partner = "p".repeat(len);
                assert_eq!(
                    event_digest(&prev, &partner, seq, b"body"),
                    reference(&prev, &partner, seq, b"body"),
                    "seq {seq}, id of {len} bytes"
                );
            }
        }
    }

    #[test]
    fn strings_are_written_as_the_reference_writes_them() {
        let alphabet: Vec<char> = "0123456789abcdefABCDEFgz-:é\"".chars().collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut cases: Vec<String> = vec![
            String::new(),
            "0".repeat(15),
            "0".repeat(16),
            "f".repeat(17),
            "ab".repeat(32),
            format!("{}G", "a".repeat(63)),
            format!("G{}", "a".repeat(63)),
            "AB".repeat(8),
        ];
        for _ in 0..20_000 {
            let len = next(80);
            // Mostly hex digits, so that long hex texts come up.
            let text: String = (0..len)
                .map(|_| {
                    alphabet[if next(10) < 9 {
                        next(16)
                    } else {
                        next(alphabet.len())
                    }]
                })
                .collect();
            cases.push(text);
        }
        for text in &cases {
            let (mut got, mut want) = (vec![7u8], vec![7u8]);
            put_str(&mut got, text);
            put_str_reference(&mut want, text);
            assert_eq!(got, want, "{text:?}");
        }
    }

    fn full() -> Event {
        Event {
            partner: "p-1".into(),
            seq: 7,
            phase: Some("stabilization".into()),
            kind: EventKind::Health,
            from: Some("1.4.0".into()),
            to: Some("1.6.0".into()),
            migration: Some("soft".into()),
            outcome: Some("awaiting_review".into()),
            health: Some(66.25),
            band: Some("vulnerable".into()),
            action: Some("review".into()),
            approvals: vec!["TSC".into(), "ERC".into()],
            rite: Some("The pattern holds.".into()),
            policy_hash: Some("ab".repeat(32)),
            plan_hash: Some("0f".repeat(32)),
            state: Some("9c".repeat(32)),
            stable: vec!["11".repeat(32), "22".repeat(32)],
            signers: vec![format!("TSC:{}", "cd".repeat(32))],
            signature: Some("ee".repeat(64)),
            waits: Some("01".repeat(32)),
            time: "2026-12-03T14:00:00Z".into(),
            detail: Some("health band requires review — “quoted”".into()),
            categories: Some(vec!["structural".into(), "permission".into()]),
            expires_at: Some("2026-12-10T14:00:00Z".into()),
        }
    }

    #[test]
    fn the_compact_encoding_reads_back_what_was_written() {
        let bare = Event {
            partner: "x".into(),
            seq: 1,
            kind: EventKind::PhaseEntered,
            time: "t".into(),
            ..Event::default()
        };
        // Hex-looking text that is not lowercase hex, or too short, stays text.
        let odd = Event {
            detail: Some("ABCDEF0123456789abcdef".into()),
            outcome: Some("abcd".into()),
            from: Some("0123456789abcdef0".into()),
            ..bare.clone()
        };
        // Categories recorded, none touched, reads back as such (not as
        // none recorded).
        let none_touched = Event {
            categories: Some(Vec::new()),
            ..bare.clone()
        };
        for e in [full(), bare, odd, none_touched] {
            let mut body = Vec::new();
            encode(&e, &mut body);
            assert_eq!(body.first(), Some(&COMPACT));
            assert!(!is_json(&body));
            assert_eq!(decode(&body, &e.partner, e.seq).as_ref(), Some(&e));
            // A byte more, or one fewer, is not an event.
            let mut longer = body.clone();
            longer.push(0);
            assert_eq!(decode(&longer, &e.partner, e.seq), None);
            assert_eq!(decode(&body[..body.len() - 1], &e.partner, e.seq), None);
        }
        // Digests take half the bytes they take in JSON; the whole, about half.
        let mut body = Vec::new();
        encode(&full(), &mut body);
        let json = serde_json::to_string(&full()).unwrap();
        assert!(
            body.len() * 3 < json.len() * 2,
            "{} vs {}",
            body.len(),
            json.len()
        );
    }

    #[test]
    fn the_escape_scan_agrees_with_a_byte_by_byte_one() {
        let slow = |b: &[u8]| b.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\');
        // Every byte at every position of texts of every length up to 20,
        // around plain ones.
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut text = vec![b'a'; len];
                    text[at] = b;
                    assert_eq!(needs_escape(&text), slow(&text), "{b:#x} at {at} of {len}");
                }
            }
            assert!(!needs_escape(&vec![b'~'; len]));
        }
    }

    #[test]
    fn events_are_written_as_serde_writes_them() {
        let odd = Event {
            detail: Some("quote \" backslash \\ tab \t nl \n cr \r bs \u{8} ff \u{c} nul \u{0} us \u{1f} del \u{7f} é “x” 🦀 csi \u{9b}31m rlo \u{202e}txt\u{202c} isolate \u{2066}\u{2069} alm \u{61c} ls \u{2028} nbsp \u{a0}".into()),
            approvals: vec!["\u{85}TSC".into()],
            health: Some(92.0),
            rite: Some(String::new()),
            ..full()
        };
        let small = Event {
            health: Some(1e-7),
            approvals: vec!["a\"b".into()],
            ..Event::default()
        };
        // Categories recorded, none touched: written as an empty list.
        let none_touched = Event {
            categories: Some(Vec::new()),
            ..Event::default()
        };
        for e in [full(), odd, small, none_touched, Event::default()] {
            let mut out = Vec::new();
            e.write_json(&mut out);
            let written = String::from_utf8(out).unwrap();
            let serde = serde_json::to_string(&e).unwrap();
            assert_eq!(written, obeyed_escaped(&serde));
            // The same JSON value, with nothing a terminal obeys left raw.
            assert_eq!(
                serde_json::from_str::<serde_json::Value>(&written).unwrap(),
                serde_json::from_str::<serde_json::Value>(&serde).unwrap()
            );
            assert!(!written.chars().any(crate::shown::obeyed_by_terminals));
        }
        for h in [f64::NAN, f64::INFINITY, 66.25, 1e21, -0.0] {
            let e = Event {
                health: Some(h),
                ..Event::default()
            };
            let mut out = Vec::new();
            e.write_json(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&e).unwrap(),
                "{h}"
            );
        }
    }

    /// JSON as serde_json writes it, with every character a terminal would
    /// obey (only strings hold them) written as `\uXXXX`.
    fn obeyed_escaped(json: &str) -> String {
        json.chars()
            .map(|c| {
                if crate::shown::obeyed_by_terminals(c) {
                    format!("\\u{:04x}", u32::from(c))
                } else {
                    c.to_string()
                }
            })
            .collect()
    }

    /// `hex32` (by table, on apply's hot path) writes what `hex::encode`
    /// does, for every byte value in every position.
    #[test]
    fn digests_are_written_in_hex_as_the_hex_crate_writes_them() {
        for start in 0..=255u8 {
            let mut bytes = [0u8; 32];
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = start.wrapping_add((i as u8).wrapping_mul(37));
            }
            assert_eq!(hex32(&bytes), hex::encode(bytes));
            for len in [0, 1, 17, 31, 32] {
                let some = bytes.get(..len).unwrap_or_default();
                assert_eq!(lower_hex(some), hex::encode(some));
            }
        }
    }

    #[test]
    fn every_kind_has_its_own_code() {
        for (i, k) in KINDS.iter().enumerate() {
            assert_eq!(KINDS.iter().position(|x| x == k), Some(i));
        }
        // Every variant is listed: its JSON name reads back through the list.
        for k in KINDS {
            let e = Event {
                kind: k,
                ..Event::default()
            };
            let mut body = Vec::new();
            encode(&e, &mut body);
            assert_eq!(decode(&body, "", 0).map(|d| d.kind), Some(k));
        }
        assert_eq!(KINDS.len(), 27);
    }

    #[test]
    fn an_interned_event_reads_back_and_expands_to_the_bytes_hashed() {
        let bare = Event {
            partner: "x".into(),
            seq: 1,
            kind: EventKind::PhaseEntered,
            time: "t".into(),
            ..Event::default()
        };
        let mut texts = Texts::default();
        let mut next = 0u64;
        let mut sizes = Vec::new();
        for e in [full(), bare.clone(), full(), bare] {
            let mut stored = Vec::new();
            encode_interned(&e, &mut stored, &mut |t| {
                Ok(texts.id(t).unwrap_or_else(|| {
                    next += 1;
                    texts.add(next, t);
                    next
                }))
            })
            .unwrap();
            let mut compact = Vec::new();
            encode(&e, &mut compact);
            assert_eq!(stored[0], INTERNED);
            assert_eq!(
                decode_with(&stored, &e.partner, e.seq, &texts).as_ref(),
                Some(&e)
            );
            assert_eq!(expand(&stored, &texts).as_deref(), Some(&compact[..]));
            assert_eq!(expand(&compact, &texts).as_deref(), Some(&compact[..]));
            // Read once, its chain hash is that of its expansion (and a
            // compact event's is that of its bytes, read or not).
            let prev = [7u8; 32];
            let hashed = stored_digest(&prev, &e.partner, e.seq, &compact);
            let read = read_event_with(&stored, &e.partner, e.seq, &texts);
            for (body, read) in [(&stored, read.as_ref()), (&compact, None)] {
                assert_eq!(
                    chain_hash_read(body, read, &prev, &e.partner, e.seq),
                    Some(hashed)
                );
                assert_eq!(
                    chain_hash_of(body, &texts, &prev, &e.partner, e.seq),
                    Some(hashed)
                );
            }
            // Without its texts it does not read, and does not expand.
            if e.rite.is_some() {
                assert_eq!(
                    chain_hash_of(&stored, &Texts::default(), &prev, &e.partner, e.seq),
                    None
                );
                assert_eq!(
                    decode_with(&stored, &e.partner, e.seq, &Texts::default()),
                    None
                );
                assert_eq!(expand(&stored, &Texts::default()), None);
                sizes.push((stored.len(), compact.len()));
            }
            for cut in 0..stored.len() {
                assert_eq!(decode_with(&stored[..cut], &e.partner, e.seq, &texts), None);
            }
        }
        // The repeated texts are written once, in the table.
        assert!(sizes.iter().all(|(s, c)| s * 2 < *c), "{sizes:?}");
        assert_eq!(next, 17, "each text numbered once");
    }

    #[test]
    fn a_row_holds_one_event_or_a_run_and_splits_back() {
        let events: Vec<Vec<u8>> = (0..5u8).map(|i| vec![INTERNED, i, i, i]).collect();
        let hashes: Vec<[u8; 32]> = (0..5u8).map(|i| [i + 1; 32]).collect();
        for n in 1..=5 {
            let parts: Vec<&[u8]> = events[..n].iter().map(Vec::as_slice).collect();
            let row = row_of(&parts);
            assert_eq!(row[0], if n == 1 { INTERNED } else { RUN });
            let hash_column: Vec<u8> = hashes[..n].concat();
            let split = row_events(&row, &hash_column);
            let expected: Vec<(&[u8], [u8; 32])> = parts
                .iter()
                .copied()
                .zip(hashes[..n].iter().copied())
                .collect();
            assert_eq!(split, expected);
        }
        // A run that does not split into as many events as it has hashes
        // is one event no hash fits.
        let parts: Vec<&[u8]> = events.iter().map(Vec::as_slice).collect();
        let row = row_of(&parts);
        let all: Vec<u8> = hashes.concat();
        for (body, hash_column) in [
            (&row[..row.len() - 1], &all[..]),
            (&row[..], &all[..all.len() - 32]),
            (&row[..], &all[..all.len() - 1]),
            (&row[..2], &all[..]),
            (&[RUN][..], &all[..]),
        ] {
            assert_eq!(row_events(body, hash_column), vec![(body, [0; 32])]);
        }
        let mut longer = row.clone();
        longer.push(0);
        assert_eq!(row_events(&longer, &all), vec![(&longer[..], [0; 32])]);
    }

    #[test]
    fn the_hashes_cover_the_partner_the_position_and_the_bytes() {
        let mut body = Vec::new();
        encode(&full(), &mut body);
        let prev = [3u8; 32];
        let h = event_digest(&prev, "p-1", 7, &body);
        assert_ne!(h, event_digest(&prev, "p-2", 7, &body));
        assert_ne!(h, event_digest(&prev, "p-1", 8, &body));
        assert_ne!(h, event_digest(&[4u8; 32], "p-1", 7, &body));
        let mut other = body.clone();
        other[3] ^= 1;
        assert_ne!(h, event_digest(&prev, "p-1", 7, &other));
        // A JSON event keeps the hash it was signed with.
        let json = br#"{"partner":"p-1","seq":1,"kind":"unchanged","time":"t"}"#;
        assert_eq!(
            hex32(&stored_digest(&GENESIS_BYTES, "p-1", 1, json)),
            chain_hash(&hex32(&GENESIS_BYTES), std::str::from_utf8(json).unwrap())
        );
    }
}
