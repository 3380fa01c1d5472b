//! The illumination counts: how many migrations of each type, over each
//! set of categories, completed or fell back. `pmf plan` predicts every
//! partner's fallback risk from them, and the plan's signers read those
//! risks.
//!
//! The counts are kept in the lineage, not in a table beside it. Each
//! batch of `pmf apply` that completes or falls back a partner appends an
//! `outcomes_counted` event to the reserved chain [`ILLUMINATION`]. The
//! event holds the counts after the batch, so the chain's last event holds
//! them all, and the signed checkpoints cover it like every event.
//!
//! - `plan` reads that last event, held to its chain hash, and names it
//!   in the plan: `history` is `SEQ:DIGEST` ([`Illumination::name`]).
//! - `apply` holds the plan's risks to the counts of the event it names
//!   ([`crate::Store::illumination_named`]).
//! - `pmf lineage verify` holds the chain to these events only, and each
//!   count to never fall ([`Followed`]).
//!
//! Stores of schema 7 and before counted outcomes in an unsigned table
//! (`outcomes_v7` since schema 8). The first batch that counts carries its
//! rows into the chain as an event with no plan hash. Until then they are
//! read as the counts at position 0.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::batch::Batch;
use crate::lineage::{Event, EventKind};
use crate::{OutcomeCounts, Store, StoreError};

/// The reserved chain that records the illumination counts.
pub const ILLUMINATION: &str = "@illumination";

/// The counts a store's lineage holds, and the event that holds them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Illumination {
    /// The event's position on [`ILLUMINATION`]; 0 for counts no event
    /// holds yet (those of a store of schema 7, or none).
    pub seq: u64,
    /// (type, categories joined by `+`) → (migrations, fallbacks).
    pub counts: OutcomeCounts,
}

impl Illumination {
    /// What a plan records of the counts it read: `SEQ:DIGEST`.
    pub fn name(&self) -> String {
        format!("{}:{}", self.seq, digest(&self.counts))
    }
}

impl Illumination {
    /// Migrations counted, and fallbacks among them, over every kind.
    pub fn totals(&self) -> (u64, u64) {
        self.counts
            .values()
            .fold((0, 0), |(t, f), (t2, f2)| (t + t2, f + f2))
    }
}

/// What a plan's `history` names ([`Illumination::name`], or what an
/// earlier pmf wrote there).
#[derive(Debug, PartialEq, Eq)]
pub enum Named<'h> {
    /// No counts: the plan read none (made against no store, or against
    /// one that had counted nothing).
    Nothing,
    /// The counts at this position of [`ILLUMINATION`] (0: those of a
    /// store's table of schema 7), with their digest.
    At(u64, &'h str),
    /// A digest alone: a plan of a pmf before schema 8.
    Earlier(&'h str),
    /// A position that is not a number.
    Unreadable(&'h str),
}

/// What `history` names.
pub fn named(history: &str) -> Named<'_> {
    let (seq, wanted) = match history.split_once(':') {
        Some((seq, d)) => (Some(seq), d),
        None => (None, history),
    };
    if wanted.is_empty() || wanted == digest(&OutcomeCounts::new()) {
        return Named::Nothing;
    }
    match seq.map(|s| (s, s.parse::<u64>())) {
        None => Named::Earlier(wanted),
        Some((_, Ok(seq))) => Named::At(seq, wanted),
        Some((seq, Err(_))) => Named::Unreadable(seq),
    }
}

/// SHA-256 (hex) of `counts`, in order: what plans made before schema 8
/// recorded as their `history`, and the second part of
/// [`Illumination::name`].
pub fn digest(counts: &OutcomeCounts) -> String {
    let mut h = Sha256::new();
    for ((m, c), (t, f)) in sorted(counts) {
        h.update(format!("{m}\0{c}\0{t}\0{f}\n").as_bytes());
    }
    hex::encode(h.finalize())
}

/// `counts` in order.
fn sorted(counts: &OutcomeCounts) -> BTreeMap<&(String, String), &(u64, u64)> {
    counts.iter().collect()
}

/// The counts as an event's `detail` records them, for people as much as
/// for pmf: `TYPE/CATEGORIES: N migrated, F fell back`, in order, joined
/// by `; ` (type and category names are identifiers, so none of these
/// separators is in a name).
fn text_of(counts: &OutcomeCounts) -> String {
    sorted(counts)
        .into_iter()
        .map(|((m, c), (t, f))| format!("{m}/{c}: {t} migrated, {f} fell back"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The counts a `detail` records, or why it records none.
fn counts_of_text(text: &str) -> Result<OutcomeCounts, String> {
    let mut out = OutcomeCounts::new();
    for count in text.split("; ").filter(|c| !c.is_empty()) {
        let unread = || format!("a count it cannot read (`{}`)", count.escape_debug());
        let (kind, numbers) = count.split_once(": ").ok_or_else(unread)?;
        let (m, c) = kind.split_once('/').ok_or_else(unread)?;
        let (t, f) = numbers
            .strip_suffix(" fell back")
            .and_then(|n| n.split_once(" migrated, "))
            .ok_or_else(unread)?;
        let (Ok(t), Ok(f)) = (t.parse::<u64>(), f.parse::<u64>()) else {
            return Err(unread());
        };
        if f > t {
            return Err(format!(
                "more fallbacks than migrations ({f} of {t}) of `{m}` over `{c}`"
            ));
        }
        if out.insert((m.to_string(), c.to_string()), (t, f)).is_some() {
            return Err(format!("`{m}` over `{c}` counted twice"));
        }
    }
    Ok(out)
}

/// The counts an `outcomes_counted` event holds, or why it holds none.
pub fn counts_of(e: &Event) -> Result<OutcomeCounts, String> {
    if e.kind != EventKind::OutcomesCounted {
        return Err(format!("the illumination chain holds a `{}` event", e.kind));
    }
    counts_of_text(e.detail.as_deref().unwrap_or_default())
}

/// The event that records `counts` after a batch of `plan_hash` (none:
/// the counts carried from a store's table of schema 7).
fn event(plan_hash: Option<&str>, counts: &OutcomeCounts) -> Event {
    Event {
        kind: EventKind::OutcomesCounted,
        plan_hash: plan_hash.map(str::to_string),
        detail: Some(text_of(counts)),
        time: crate::clock::now_rfc3339().into(),
        ..Event::default()
    }
}

/// What is wrong with `e`, an event of `chain`, as an illumination count
/// or beside one: only [`ILLUMINATION`] holds `outcomes_counted` events,
/// and they approve and change nothing.
pub fn misplaced(chain: &str, e: &Event) -> Option<String> {
    if chain != ILLUMINATION {
        return (e.kind == EventKind::OutcomesCounted)
            .then(|| "it records illumination counts outside their chain".to_string());
    }
    e.changes_anything()
        .then(|| "an illumination count that names approvals, an outcome or a state".into())
}

/// The illumination chain followed event by event (`pmf lineage verify`):
/// each event's counts readable, none below the one before it, and only
/// the first without a plan (the counts carried from schema 7).
#[derive(Default)]
pub struct Followed {
    last: Option<OutcomeCounts>,
    /// What the last event followed added, by migration type.
    added: BTreeMap<String, (u64, u64)>,
}

impl Followed {
    /// Follow `e`, the next event of [`ILLUMINATION`]; what is wrong with
    /// it, if anything.
    pub fn follow(&mut self, e: &Event) -> Option<String> {
        let counts = match counts_of(e) {
            Ok(c) => c,
            Err(why) => return Some(why),
        };
        if let Some(why) = misplaced(ILLUMINATION, e) {
            return Some(why);
        }
        let first = self.last.is_none();
        let before = self.last.replace(counts);
        self.added.clear();
        if e.plan_hash.is_none() && !first {
            return Some("illumination counts that name no plan after the first".into());
        }
        let now = self.last.as_ref()?;
        let fell = before.iter().flatten().find(|(k, (t, f))| {
            now.get(*k)
                .is_none_or(|(t2, f2)| t2 < t || f2 < f || t2 - f2 < t - f)
        });
        if let Some(((m, c), (t, f))) = fell {
            let (t2, f2) = now.get(&(m.clone(), c.clone())).copied().unwrap_or((0, 0));
            return Some(format!(
                "the count of `{m}` over `{c}` fell from {t} ({f} fell back) to {t2} ({f2} fell back): counts only grow"
            ));
        }
        for ((m, c), (t, f)) in now {
            let (t0, f0) = before
                .as_ref()
                .and_then(|b| b.get(&(m.clone(), c.clone())))
                .copied()
                .unwrap_or((0, 0));
            let added = self.added.entry(m.clone()).or_default();
            added.0 += t - t0;
            added.1 += f - f0;
        }
        None
    }

    /// What the last event followed added to the counts before it, by
    /// migration type (over every set of categories): migrations, and
    /// fallbacks among them.
    pub fn added(&self) -> &BTreeMap<String, (u64, u64)> {
        &self.added
    }
}

impl Batch<'_> {
    /// Add `added` to `lit` (the counts as the batch before left them) and
    /// record the sum as the next event of [`ILLUMINATION`] for
    /// `plan_hash`. Counts no event held yet (a store's table of schema 7)
    /// are first carried into the chain by an event of their own.
    pub fn count_outcomes(
        &mut self,
        lit: &mut Illumination,
        plan_hash: &str,
        added: impl IntoIterator<Item = ((String, String), (u64, u64))>,
    ) -> Result<(), StoreError> {
        let mut chain = self.chain(ILLUMINATION)?;
        if lit.seq == 0 && !lit.counts.is_empty() {
            self.append(&mut chain, &mut event(None, &lit.counts))?;
            self.forget_counts_of_schema_7()?;
        }
        let mut counts = lit.counts.clone();
        for (key, (total, fallbacks)) in added {
            let c = counts.entry(key).or_default();
            c.0 += total;
            c.1 += fallbacks;
        }
        let mut e = event(Some(plan_hash), &counts);
        self.append(&mut chain, &mut e)?;
        *lit = Illumination { seq: e.seq, counts };
        Ok(())
    }
}

impl Store {
    /// The counts the store's lineage holds: those of the last event of
    /// [`ILLUMINATION`], held to its chain hash, or before there is one,
    /// those of a store's table of schema 7 (position 0).
    pub fn illumination(&self) -> Result<Illumination, StoreError> {
        Ok(match self.held_counts(None)? {
            Some((seq, _, counts)) => Illumination { seq, counts },
            None => Illumination {
                seq: 0,
                counts: self.counts_of_schema_7()?,
            },
        })
    }

    /// The counts a plan's `history` names, if the store's lineage holds
    /// them; otherwise why not. A plan that read no counts (made against
    /// no store, or one that had none) names the empty counts, which hold
    /// anywhere. A plan of a pmf before schema 8 names only a digest: it
    /// holds when it is the digest of the counts the store holds now or
    /// carried from its table.
    pub fn illumination_named(
        &self,
        name: &str,
    ) -> Result<Result<OutcomeCounts, String>, StoreError> {
        let (seq, wanted) = match named(name) {
            Named::Nothing => return Ok(Ok(OutcomeCounts::new())),
            Named::Earlier(wanted) => {
                let held = [self.illumination()?.counts, self.counts_at_zero()?];
                return Ok(held
                    .into_iter()
                    .find(|c| digest(c) == wanted)
                    .ok_or_else(|| "the store's lineage holds no such counts (the plan was made by an earlier pmf, against other counts)".to_string()));
            }
            Named::Unreadable(seq) => {
                return Ok(Err(format!(
                    "it names no position of `{ILLUMINATION}` (`{}`)",
                    seq.escape_debug()
                )));
            }
            Named::At(seq, wanted) => (seq, wanted),
        };
        let counts = if seq == 0 {
            self.counts_at_zero()?
        } else {
            match self.held_counts(Some(seq))? {
                Some((at, _, counts)) if at == seq => counts,
                _ => {
                    return Ok(Err(format!(
                        "the store's lineage holds no event #{seq} of `{ILLUMINATION}`"
                    )));
                }
            }
        };
        Ok(if digest(&counts) == wanted {
            Ok(counts)
        } else {
            Err(format!(
                "event #{seq} of `{ILLUMINATION}` holds other counts than the plan was made from"
            ))
        })
    }

    /// The counts at position 0: those carried from a table of schema 7
    /// (the chain's first event, when it names no plan, or the table
    /// while nothing was carried); none otherwise.
    fn counts_at_zero(&self) -> Result<OutcomeCounts, StoreError> {
        Ok(match self.held_counts(Some(1))? {
            Some((_, None, counts)) => counts,
            Some(_) => OutcomeCounts::new(),
            None => self.counts_of_schema_7()?,
        })
    }

    /// The event of [`ILLUMINATION`] at `at` (its last when `None`), held
    /// to its chain hash: its position, plan and counts.
    #[allow(clippy::type_complexity)]
    fn held_counts(
        &self,
        at: Option<u64>,
    ) -> Result<Option<(u64, Option<String>, OutcomeCounts)>, StoreError> {
        let unread = |reason: String| StoreError::IlluminationUnread { reason };
        let end = at.map_or(crate::ChainEnd::Last, crate::ChainEnd::At);
        let held = match self.stored_held(ILLUMINATION, end) {
            Err(StoreError::EventEdited { .. }) => {
                return Err(unread(
                    "its event does not match its chain hash (edited outside pmf)".into(),
                ));
            }
            other => other?,
        };
        let Some((seq, body)) = held else {
            return Ok(None);
        };
        let e = self
            .read_stored(&body, ILLUMINATION, seq)?
            .ok_or_else(|| unread(format!("event #{seq} cannot be read")))?;
        let counts = counts_of(&e).map_err(|why| unread(format!("event #{seq}: {why}")))?;
        Ok(Some((seq, e.plan_hash, counts)))
    }

    /// The rows of a store's table of schema 7 not yet carried into the
    /// lineage.
    fn counts_of_schema_7(&self) -> Result<OutcomeCounts, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT migration, categories, total, fallbacks FROM outcomes_v7")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                (r.get::<_, i64>(2)? as u64, r.get::<_, i64>(3)? as u64),
            ))
        })?;
        Ok(rows.collect::<Result<OutcomeCounts, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(rows: &[(&str, &str, u64, u64)]) -> OutcomeCounts {
        rows.iter()
            .map(|(m, c, t, f)| ((m.to_string(), c.to_string()), (*t, *f)))
            .collect()
    }

    #[test]
    fn counts_round_trip_through_their_event() {
        let c = counts(&[("soft", "structural+behavioral", 12, 3), ("hard", "", 1, 0)]);
        let e = event(Some("ab"), &c);
        assert_eq!(
            e.detail.as_deref(),
            Some(
                "hard/: 1 migrated, 0 fell back; soft/structural+behavioral: 12 migrated, 3 fell back"
            )
        );
        assert_eq!(counts_of(&e), Ok(c.clone()));
        assert_eq!(misplaced(ILLUMINATION, &e), None);
        assert!(misplaced("p-001", &e).is_some());
        // The digest is the one plans of schema 7 recorded: order-free.
        let mut h = Sha256::new();
        h.update(b"hard\0\x001\x000\nsoft\0structural+behavioral\x0012\x003\n");
        let expected = hex::encode(h.finalize());
        assert_eq!(digest(&c), expected);
        assert_eq!(
            Illumination { seq: 4, counts: c }.name(),
            format!("4:{expected}")
        );
    }

    #[test]
    fn what_a_history_names_is_read_once() {
        let none = digest(&OutcomeCounts::new());
        assert_eq!(named(""), Named::Nothing);
        assert_eq!(named(&format!("0:{none}")), Named::Nothing);
        assert_eq!(named(&none), Named::Nothing);
        assert_eq!(named("7:ab"), Named::At(7, "ab"));
        assert_eq!(named("ab"), Named::Earlier("ab"));
        assert_eq!(named("x:ab"), Named::Unreadable("x"));
        let lit = Illumination {
            seq: 3,
            counts: counts(&[("soft", "s", 5, 2), ("hard", "", 1, 1)]),
        };
        assert_eq!(lit.totals(), (6, 3));
    }

    #[test]
    fn unreadable_or_impossible_counts_are_named() {
        let read = |text: &str| {
            counts_of(&Event {
                kind: EventKind::OutcomesCounted,
                detail: Some(text.into()),
                ..Event::default()
            })
        };
        assert!(read("soft/x: 1 migrated").is_err());
        assert!(read("soft: 1 migrated, 0 fell back").is_err());
        assert!(
            read("soft/x: 1 migrated, 2 fell back")
                .unwrap_err()
                .contains("more fallbacks")
        );
        assert!(
            read("soft/x: 2 migrated, 1 fell back; soft/x: 3 migrated, 1 fell back")
                .unwrap_err()
                .contains("twice")
        );
        assert!(read("soft/x: -1 migrated, 0 fell back").is_err());
        assert_eq!(read(""), Ok(OutcomeCounts::new()));
        assert_eq!(
            read("hard/: 1 migrated, 0 fell back; soft/a+b: 5 migrated, 2 fell back"),
            Ok(counts(&[("hard", "", 1, 0), ("soft", "a+b", 5, 2)]))
        );
        let other = Event {
            kind: EventKind::Completed,
            ..Event::default()
        };
        assert!(counts_of(&other).is_err());
    }

    #[test]
    fn the_chain_is_followed_counts_only_growing() {
        let at = |plan: Option<&str>, rows: &[(&str, &str, u64, u64)]| event(plan, &counts(rows));
        let mut f = Followed::default();
        assert_eq!(f.follow(&at(None, &[("soft", "s", 2, 1)])), None);
        assert_eq!(f.follow(&at(Some("p"), &[("soft", "s", 3, 1)])), None);
        assert_eq!(
            f.follow(&at(Some("p"), &[("soft", "s", 3, 1), ("hard", "", 1, 1)])),
            None
        );
        assert_eq!(
            f.added(),
            &BTreeMap::from([("hard".to_string(), (1, 1)), ("soft".to_string(), (0, 0))])
        );
        // A fallback turned into a success, a count dropped, a plan missing.
        let fell = f.follow(&at(Some("p"), &[("soft", "s", 3, 0), ("hard", "", 1, 1)]));
        assert!(fell.is_some_and(|w| w.contains("fell from 3 (1 fell back)")));
        let mut f = Followed::default();
        f.follow(&at(Some("p"), &[("soft", "s", 3, 1)]));
        assert!(f.follow(&at(Some("p"), &[])).is_some());
        assert!(
            f.follow(&at(None, &[]))
                .is_some_and(|w| w.contains("no plan"))
        );
        let approving = Event {
            signers: vec!["TSC:aa".into()],
            ..at(Some("p"), &[])
        };
        assert!(Followed::default().follow(&approving).is_some());
    }
}
