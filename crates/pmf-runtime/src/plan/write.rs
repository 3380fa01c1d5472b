//! Writing a plan: partners streamed from their file, assessed on every
//! core, written an entry a line with the header's digest patched in last.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;

use crate::compile::{Root, State};
use crate::engine::{Action, CompiledPolicy};
use crate::fast::ParseCache;
use crate::input::{InputError, Observed, Targets, parse_partner};
use crate::json_out;
use crate::keyed::EntryReader;
use crate::stream::{Batch, PartnerStream};
use crate::value::Value;

use super::{FORMAT_VERSION, History, NotPlanned, PlanHeader, Totals};

/// What [`write_entry`] tells the totals about one partner.
struct Counted {
    /// Where the partner's id ends in its chunk's `ids`.
    id_end: usize,
    /// Where the partner's entry is in its chunk's text.
    text: std::ops::Range<usize>,
    /// The authorities that must approve (bit `i`: the policy's authority
    /// `i`); `approvals_beyond` when one is past the 64th.
    approvals: u64,
    approvals_beyond: bool,
    migration: Option<usize>,
    band: Option<usize>,
    action: Action,
    /// The partner had its own entry in the target file.
    targeted: bool,
    /// The partner had observed metrics.
    observed: bool,
}

/// Append one partner's plan line to `out`: the JSON of the [`PlanEntry`]
/// that the plan's serde types describe, written directly (the hot path of
/// `pmf plan`; a test checks the two agree).
fn write_entry(
    assessors: &Assessors<'_>,
    inputs: &PlanInputs<'_>,
    target_all: Option<&Value>,
    partner: &Value,
    worker: &mut Worker,
    out: &mut String,
    ids: &mut String,
) -> Result<Counted, InputError> {
    use json_out::{write_f64, write_str, write_str_array};
    let text_start = out.len();
    let policy = assessors.general;
    let id = policy.id_of(partner);
    // The target and the observed metrics are laid over the partner, not
    // merged into copies of it.
    let schema = &policy.schema;
    let Worker {
        partial,
        targets,
        observed,
        scratch,
        canonical,
        own_targets,
    } = worker;
    // A partner's own target refines the one for all: its fields are laid
    // over it (the plan carries the result).
    let read = (inputs.targets.partners).get_with(id, targets, |raw| {
        own_targets.read(raw, schema, partial, target_all)
    })?;
    let observed = (inputs.observed.partners).get(schema, id, observed, partial)?;
    let own = read.and_then(|at| own_targets.target(at, policy, observed.is_some()));
    let target = State::of(partner).with(own.map(|(value, ..)| value).or(target_all));
    let assessor = match own {
        Some((_, _, laid)) => laid,
        None => assessors.for_partner(observed.is_some()),
    };
    let a = assessor.assess(partner, target, target.with(observed.as_ref()));
    let migration = a
        .migration
        .and_then(|m| policy.migrations.get(m))
        .map(|m| m.name.as_str());

    out.push_str("{\"id\":");
    write_str(id, out);
    out.push_str(",\"from\":");
    let version = |state: State<'_>, out: &mut String| match &*state.get(&[policy.version_field]) {
        Value::Ver(v) => {
            out.push('"');
            json_out::write_version(v, out);
            out.push('"');
        }
        _ => out.push_str("null"),
    };
    version(State::of(partner), out);
    out.push_str(",\"to\":");
    version(target, out);
    out.push_str(",\"type\":");
    match migration {
        Some(m) => write_str(m, out),
        None => out.push_str("null"),
    }
    out.push_str(",\"categories\":");
    write_str_array(policy.category_names(&a.categories), out);
    out.push_str(",\"approvals_required\":");
    write_str_array(policy.authority_names(&a.approvals), out);
    out.push_str(",\"predicted\":{\"score\":");
    match a.shown_score() {
        Some(s) => write_f64(s, out),
        None => out.push_str("null"),
    }
    out.push_str(",\"band\":");
    match a.band.and_then(|b| policy.bands.get(b)) {
        Some(b) => write_str(&b.status, out),
        None => out.push_str("null"),
    }
    out.push_str(",\"action\":\"");
    out.push_str(a.action.as_str());
    out.push_str("\",\"reason\":");
    scratch.text.clear();
    policy.write_reason(a.reason, &mut scratch.text);
    write_str(&scratch.text, out);
    out.push_str(",\"validation\":\"");
    out.push_str(a.verdict.as_str());
    out.push_str("\"},\"fallback_risk\":");
    let joined = &mut scratch.text;
    joined.clear();
    for (i, c) in policy.category_names(&a.categories).enumerate() {
        if i > 0 {
            joined.push('+');
        }
        joined.push_str(c);
    }
    write_f64(
        inputs
            .history
            .fallback_risk(migration.unwrap_or("none"), joined, a.action),
        out,
    );
    if let Some((_, text, _)) = own {
        out.push_str(",\"target\":");
        out.push_str(text);
    }
    out.push_str(",\"state\":");
    canonical.write(partner, &policy.schema, out);
    if let Some(o) = &observed {
        out.push_str(",\"observed\":");
        o.write_partial(&policy.schema, out);
    }
    out.push('}');
    ids.push_str(id);
    Ok(Counted {
        id_end: ids.len(),
        text: text_start..out.len(),
        approvals: a
            .approvals
            .iter()
            .filter(|&&i| i < 64)
            .fold(0, |mask, &i| mask | 1 << i),
        approvals_beyond: a.approvals.iter().any(|&i| i >= 64),
        migration: a.migration,
        band: a.band,
        action: a.action,
        targeted: own.is_some(),
        observed: observed.is_some(),
    })
}

/// The partner ids of a plan, kept compactly: their texts one after the
/// other in an arena, and a (hash, place) pair per id, appended in file
/// order and sorted once planning ends, when repeated ids are found
/// (neighbours of equal hash whose texts are equal). Appending touches no
/// table of a million ids at random: checking each id as it came cost a
/// tenth of a plan's time, in cache misses.
#[derive(Default)]
struct IdSet {
    /// Keyed per run: ids cannot be chosen to share a hash.
    hasher: std::hash::RandomState,
    text: String,
    /// (hash, start << 24 | length) of each id: in file order until
    /// [`IdSet::seal`], then sorted.
    places: Vec<(u64, u64)>,
}

/// The first id given again, in file order.
struct Repeated {
    /// Its place among the ids (0-based).
    ordinal: usize,
}

impl IdSet {
    fn hash(&self, id: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one(id)
    }

    fn slice(text: &str, place: u64) -> &str {
        let (start, len) = ((place >> 24) as usize, (place & 0xff_ffff) as usize);
        text.get(start..start + len).unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.places.is_empty()
    }

    fn reserve(&mut self, ids: usize, bytes: usize) {
        self.places.reserve(ids);
        self.text.reserve(bytes);
    }

    /// Add `id` (checked for repeats by [`IdSet::seal`]); false when it
    /// cannot be packed (an id of 16 MiB, or a terabyte of ids).
    fn push(&mut self, id: &str) -> bool {
        let start = self.text.len() as u64;
        if id.len() >= 1 << 24 || start >= 1 << 40 {
            return false;
        }
        let hash = self.hash(id);
        self.places.push((hash, (start << 24) | id.len() as u64));
        self.text.push_str(id);
        true
    }

    /// Sort the ids and find the first one given again (in file order).
    fn seal(&mut self) -> Option<Repeated> {
        rayon::slice::ParallelSliceMut::par_sort_unstable(&mut self.places[..]);
        let text = &self.text;
        // Within one hash, the ids sorted by text then place: a repeat
        // follows its id's first place.
        let mut first_repeat: Option<u64> = None;
        for same_hash in self.places.chunk_by(|a, b| a.0 == b.0) {
            if same_hash.len() < 2 {
                continue;
            }
            let mut ids: Vec<(&str, u64)> = same_hash
                .iter()
                .map(|&(_, p)| (Self::slice(text, p), p))
                .collect();
            ids.sort_unstable();
            for pair in ids.windows(2) {
                if let [(a, _), (b, later)] = pair
                    && a == b
                    && first_repeat.is_none_or(|f| *later < f)
                {
                    first_repeat = Some(*later);
                }
            }
        }
        let repeat = first_repeat?;
        Some(Repeated {
            ordinal: self.places.iter().filter(|&&(_, p)| p < repeat).count(),
        })
    }

    /// Whether `id` is in the set (once sealed).
    fn contains(&self, id: &str) -> bool {
        let hash = self.hash(id);
        let from = self.places.partition_point(|&(h, _)| h < hash);
        self.places
            .get(from..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .any(|&(_, p)| Self::slice(&self.text, p) == id)
    }
}

/// Buffers [`write_entry`] reuses from partner to partner.
#[derive(Default)]
struct Scratch {
    text: String,
}

/// What a worker thread keeps from partner to partner: the readers of
/// per-partner targets and observed metrics, and buffers.
struct Worker {
    /// Parses the partial records of targets and observed metrics.
    partial: ParseCache,
    /// Reads per-partner targets.
    targets: EntryReader,
    /// Reads observed metrics.
    observed: EntryReader,
    scratch: Scratch,
    /// The canonical texts of the shared values of partners' states.
    canonical: crate::value::CanonicalMemo,
    /// The own targets read, and the policies laid for them.
    own_targets: OwnTargets,
}

impl Worker {
    fn new(policy: &CompiledPolicy) -> Self {
        Worker {
            partial: ParseCache::new(&policy.schema, crate::value::Completeness::Partial),
            targets: EntryReader::default(),
            observed: EntryReader::default(),
            scratch: Scratch::default(),
            canonical: crate::value::CanonicalMemo::default(),
            own_targets: OwnTargets::new(policy),
        }
    }
}

/// Partners' own targets as a worker read them, by the entry's text as the
/// target file gives it: fleets give their partners few distinct targets
/// (a version per wave of a rollout), so each is parsed, laid over the
/// target for all and written as the plan carries it once, and the policy
/// is [laid](CompiledPolicy::laid) for it: assessed without reading
/// through layers, as the partners that share the target for all are. The
/// first [`OwnTargets::LIMIT`] distinct targets a worker meets are kept; a
/// partner with any other is read on its own and assessed by the general
/// policy (a test holds both alike). A laid policy is a copy of the
/// policy: a large policy keeps fewer (about [`OwnTargets::ITEMS`] rules,
/// checks, factors and migration types laid per worker at most).
#[derive(Default)]
struct OwnTargets {
    /// Where in `kept` each entry text's target is.
    by_text: rustc_hash::FxHashMap<Box<str>, usize>,
    kept: Vec<OwnTarget>,
    /// The last target read that is not kept.
    spare: Option<OwnTarget>,
    /// Distinct targets kept at most.
    limit: usize,
}

/// One own target, and the policies laid for it, each made when first
/// needed.
struct OwnTarget {
    /// The entry laid over the target for all.
    value: Value,
    /// It as the plan carries it.
    text: String,
    /// For a partner with observed metrics of its own.
    target: Option<CompiledPolicy>,
    /// For a partner without (its observed state is its target state).
    target_and_observed: Option<CompiledPolicy>,
}

impl OwnTargets {
    /// Distinct targets kept at most, per worker, for a small policy.
    const LIMIT: usize = 64;
    /// Rules, checks, factors and migration types laid at most, per worker.
    const ITEMS: usize = 4096;

    /// For `policy`: as many targets as its size allows.
    fn new(policy: &CompiledPolicy) -> Self {
        let items = policy.migrations.len()
            + policy.compatibility.len()
            + policy.sustainability.len()
            + policy.checks.len()
            + policy.factors.len();
        OwnTargets {
            limit: (Self::ITEMS / items.max(1)).clamp(1, Self::LIMIT),
            ..OwnTargets::default()
        }
    }

    /// Read an entry (`raw`: its value's text in the target file): where it
    /// is kept, or `None` when it is the spare (see [`OwnTargets::target`]).
    fn read(
        &mut self,
        raw: &str,
        schema: &pmf_compiler::model::types::Type,
        cache: &mut ParseCache,
        target_all: Option<&Value>,
    ) -> Result<Option<usize>, String> {
        if let Some(&at) = self.by_text.get(raw) {
            return Ok(Some(at));
        }
        let own = crate::keyed::parse_entry(schema, raw, cache)?;
        let value = match target_all {
            Some(all) => crate::value::overlay(all, &own),
            None => own,
        };
        let mut text = String::new();
        value.write_partial(schema, &mut text);
        let read = OwnTarget {
            value,
            text,
            target: None,
            target_and_observed: None,
        };
        if self.kept.len() < self.limit {
            self.by_text.insert(raw.into(), self.kept.len());
            self.kept.push(read);
            return Ok(Some(self.kept.len() - 1));
        }
        self.spare = Some(read);
        Ok(None)
    }

    /// The target [`OwnTargets::read`] gave (`at`), as the plan carries it,
    /// and the policy to assess its partner with: laid for a kept target,
    /// `general` for the spare.
    fn target<'s>(
        &'s mut self,
        at: Option<usize>,
        general: &'s CompiledPolicy,
        own_observed: bool,
    ) -> Option<(&'s Value, &'s str, &'s CompiledPolicy)> {
        let Some(at) = at else {
            let spare = self.spare.as_ref()?;
            return Some((&spare.value, &spare.text, general));
        };
        let OwnTarget {
            value,
            text,
            target,
            target_and_observed,
        } = self.kept.get_mut(at)?;
        let laid = if own_observed {
            target.get_or_insert_with(|| general.laid(Root::Target, Some(value)))
        } else {
            // Laid for the target, then for the observed state: only the
            // second is kept.
            target_and_observed.get_or_insert_with(|| {
                general
                    .laid(Root::Target, Some(value))
                    .laid(Root::Observed, Some(value))
            })
        };
        Some((value, text, laid))
    }
}

/// One chunk of a batch, evaluated: its plan lines (joined by `,\n`) and
/// what the totals need.
struct Chunk {
    text: String,
    counted: Vec<Counted>,
    /// The partners' ids, one after the other.
    ids: String,
}

/// Partners evaluated together on one core.
const CHUNK: usize = 256;

/// Hex digits of a BLAKE3 digest.
const DIGEST_HEX: usize = 64;

/// Pieces the plan hash takes the written bytes in (the direct writer's
/// chunks).
const PLAN_PIECE: usize = 8 << 20;

/// Chunk texts the writer has written, handed back to the evaluators to
/// fill again: the same few buffers go round, no page of memory is
/// allocated, faulted in and freed per chunk.
#[derive(Default)]
struct TextPool(std::sync::Mutex<Vec<String>>);

impl TextPool {
    /// Buffers kept at most (the rest are freed).
    const KEEP: usize = 256;

    /// An empty buffer for `partners` plan lines of about `line` bytes.
    fn take(&self, partners: usize, line: usize) -> String {
        let want = partners * line + partners * line / 8;
        let reused = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match reused {
            Some(mut text) => {
                text.clear();
                text.reserve(want);
                text
            }
            None => String::with_capacity(want),
        }
    }

    /// Hand `texts` back.
    fn give(&self, texts: impl IntoIterator<Item = String>) {
        let mut pool = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for text in texts {
            if pool.len() >= Self::KEEP {
                break;
            }
            pool.push(text);
        }
    }
}

/// The policy, and copies of it [laid](CompiledPolicy::laid) for the
/// partners that share the target for all (most partners of a plan): they
/// assess alike, the laid ones without reading through layers.
struct Assessors<'p> {
    /// The policy as compiled: for a partner with a target of its own
    /// (through [`OwnTargets`]).
    general: &'p CompiledPolicy,
    /// For a partner with observed metrics of its own: target paths laid.
    target: CompiledPolicy,
    /// For a partner without: target and observed paths laid (its observed
    /// state is its target state).
    target_and_observed: CompiledPolicy,
}

impl<'p> Assessors<'p> {
    fn new(policy: &'p CompiledPolicy, target_all: Option<&Value>) -> Self {
        let target = policy.laid(Root::Target, target_all);
        let target_and_observed = target.laid(Root::Observed, target_all);
        Assessors {
            general: policy,
            target,
            target_and_observed,
        }
    }

    /// The policy to assess a partner without a target of its own with
    /// (one with is assessed as [`OwnTargets::target`] says).
    fn for_partner(&self, own_observed: bool) -> &CompiledPolicy {
        if own_observed {
            &self.target
        } else {
            &self.target_and_observed
        }
    }
}

/// A batch and its chunks evaluated, or the first bad record.
type Evaluated = Result<(Batch, Vec<Chunk>), PlanError>;

/// Evaluate the reader's batches in order on every core, one chunk of
/// partners per task, and hand each on to `out`.
fn evaluate_batches(
    inputs: &PlanInputs<'_>,
    file_name: &str,
    batches: std::sync::mpsc::Receiver<Result<Batch, InputError>>,
    out: std::sync::mpsc::SyncSender<Evaluated>,
    pool: &TextPool,
) {
    let policy = inputs.policy;
    // Parse caches per worker thread (for partners, and for the partial
    // records of targets and observed metrics), kept across batches, each on
    // cache lines of their own (threads writing next to each other slow
    // both down).
    #[repr(align(128))]
    struct Cache(std::sync::Mutex<(ParseCache, Worker)>);
    // Bytes of a plan line, as the last chunk had them (a guess at first):
    // chunk texts are sized once, never grown.
    let line_bytes = std::sync::atomic::AtomicUsize::new(512);
    let new_cache = || {
        Cache(std::sync::Mutex::new((
            ParseCache::new(&policy.schema, crate::value::Completeness::Full),
            Worker::new(policy),
        )))
    };
    let caches: Vec<Cache> = (0..rayon::current_num_threads())
        .map(|_| new_cache())
        .collect();
    // For a thread outside the pool.
    let spare = new_cache();
    let assessors = Assessors::new(policy, inputs.targets.all.as_ref());
    let evaluate = |batch: Result<Batch, InputError>| {
        batch.map_err(PlanError::Input).and_then(|batch| {
            if batch.is_empty() {
                return Ok(None);
            }
            let chunks = batch
                .records
                .par_chunks(CHUNK)
                .map(|records| {
                    let slot = rayon::current_thread_index()
                        .and_then(|i| caches.get(i))
                        .unwrap_or(&spare);
                    let mut guard = slot
                        .0
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let (cache, worker) = &mut *guard;
                    let line = line_bytes.load(std::sync::atomic::Ordering::Relaxed);
                    let mut chunk = Chunk {
                        text: pool.take(records.len(), line),
                        counted: Vec::with_capacity(records.len()),
                        ids: String::with_capacity(records.len() * 16),
                    };
                    // The chunk's own copy: partners share its values, and
                    // the counts of shared ones are not raced for by cores.
                    let target_all = inputs.targets.all.as_ref().map(Value::deep_clone);
                    for raw in records {
                        let partner = parse_partner(&policy.schema, file_name, &batch, raw, cache)?;
                        if !chunk.counted.is_empty() {
                            chunk.text.push_str(",\n");
                        }
                        let counted = write_entry(
                            &assessors,
                            inputs,
                            target_all.as_ref(),
                            &partner,
                            worker,
                            &mut chunk.text,
                            &mut chunk.ids,
                        )?;
                        chunk.counted.push(counted);
                    }
                    line_bytes.store(
                        chunk.text.len() / records.len().max(1) + 1,
                        std::sync::atomic::Ordering::Relaxed,
                    );
                    Ok(chunk)
                })
                .collect::<Vec<Result<Chunk, InputError>>>()
                // The first bad record in file order, whichever core saw it.
                .into_iter()
                .collect::<Result<Vec<Chunk>, InputError>>()
                .map_err(PlanError::Input)?;
            Ok(Some((batch, chunks)))
        })
    };
    // Batches in flight at once: while the last chunks of one are
    // evaluated, the cores that are done take the next one's. (One at a
    // time, the pool idled at every batch's end and hand-over: a fifth of
    // one core's time.)
    const IN_FLIGHT: usize = 2;
    let (done_tx, done_rx) = std::sync::mpsc::channel::<(usize, BatchResult)>();
    let mut batches = batches.into_iter();
    rayon::in_place_scope(|scope| {
        let (mut started, mut handed) = (0, 0);
        let mut reading = true;
        let mut finished = BTreeMap::new();
        loop {
            while reading && started - handed < IN_FLIGHT {
                let Some(batch) = batches.next() else {
                    reading = false;
                    break;
                };
                let (done, evaluate, seq) = (done_tx.clone(), &evaluate, started);
                scope.spawn(move |_| {
                    let _ = done.send((seq, evaluate(batch)));
                });
                started += 1;
            }
            if handed == started {
                return;
            }
            let Ok((seq, evaluated)) = done_rx.recv() else {
                return;
            };
            finished.insert(seq, evaluated);
            // Hand on, in the file's order, every batch that is next.
            while let Some(evaluated) = finished.remove(&handed) {
                handed += 1;
                let stop = !matches!(evaluated, Ok(Some(_)));
                let sent = match evaluated {
                    Ok(None) => true,
                    Ok(Some(done)) => out.send(Ok(done)).is_ok(),
                    Err(e) => out.send(Err(e)).is_ok(),
                };
                if stop || !sent {
                    // The batches still in flight finish unseen.
                    return;
                }
            }
        }
    });
}

/// One batch evaluated: its chunks, nothing at the end of the file, or why
/// it stopped.
type BatchResult = Result<Option<(Batch, Vec<Chunk>)>, PlanError>;

/// What writing a plan produced.
pub struct Written {
    /// Counts.
    pub totals: Totals,
    /// BLAKE3 (hex) of the plan file.
    pub hash: String,
    /// BLAKE3 (hex) of the partner file's bytes as they were read: what the
    /// header binds (`None` only for partners from a pipe planned into a
    /// pipe, which cannot be hashed before the header is written).
    pub partners_blake3: Option<String>,
    /// The first few ids of what [`Totals::not_planned`] counts.
    pub not_planned_ids: NotPlannedIds,
    /// What `pmf plan` shows of the plan, gathered while writing it
    /// (`None` unless [`PlanInputs::review_rows`] asked, or when an entry
    /// needs an authority past the 64th).
    pub review: Option<Review>,
}

/// What a reviewer is shown of a plan as it is written: the counts
/// `pmf plan show` makes of every entry, and its most severe entries (the
/// reference is reading the plan back, as `pmf plan show` does; a test
/// holds the two equal).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Review {
    /// By migration type (`none`).
    pub by_type: BTreeMap<String, crate::plan_view::Tally>,
    /// By predicted band (`unknown`).
    pub by_band: BTreeMap<String, crate::plan_view::Tally>,
    /// Partners each authority must sign for.
    pub authorities: BTreeMap<String, usize>,
    /// Partners that need at least one approval.
    pub needing_approval: usize,
    /// The most severe entries (then in plan order), as written.
    pub most_severe: Vec<String>,
}

/// An entry that may be among the most severe: ordered by its action, the
/// most severe first, then by its place in the plan.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Candidate {
    key: (std::cmp::Reverse<Action>, usize),
    text: String,
}

/// The first few ids, in file order, of the partners the target and
/// observed files hold that the plan does not ([`NotPlanned`] counts them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NotPlannedIds {
    /// With a target of their own.
    pub targets: Vec<String>,
    /// With observed metrics.
    pub observed: Vec<String>,
}

/// How many ids of an input keyed by partner a message names.
const NAMED: usize = 5;

/// `` `a`, `b`, `c` `` and `, …` when there are more than those named.
pub fn id_list(ids: &[String], count: usize) -> String {
    let mut list = ids
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if count > ids.len() {
        list.push_str(", …");
    }
    list
}

/// Inputs of a plan.
pub struct PlanInputs<'a> {
    /// The compiled policy.
    pub policy: &'a CompiledPolicy,
    /// Partner states.
    pub partners: PartnerStream,
    /// Targets.
    pub targets: &'a Targets,
    /// Observed metrics by partner id.
    pub observed: &'a Observed,
    /// Lineage statistics.
    pub history: &'a History,
    /// Header to write.
    pub header: PlanHeader,
    /// The partner file is a part of the fleet the target file covers:
    /// targets of partners not in it are left out (and counted in
    /// [`Totals::not_planned`]) instead of refused.
    pub subset: bool,
    /// Gather a [`Review`] of the plan with this many of its most severe
    /// entries (0: none is gathered).
    pub review_rows: usize,
    /// Set when the planning is to stop (the CLI's Ctrl-C): it stops
    /// between batches, writing nothing ([`PlanError::Stopped`]).
    pub stop: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// A failure while planning.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Bad input (exit 1, or 2 when a file cannot be read: [`InputError`]).
    #[error(transparent)]
    Input(#[from] InputError),
    /// Cannot write the plan (exit 2).
    #[error("{0}")]
    Io(String),
    /// Asked to stop ([`PlanInputs::stop`]): no plan was written, and a
    /// file already at the output is left as it was.
    #[error("interrupted: no plan was written")]
    Stopped,
}

/// Stream partners through the policy into a plan file at `out` (a
/// regular file is written beside itself and renamed: never half-written;
/// a device such as `/dev/null` is written in place, see [`pmf_store::output`]).
///
/// Three stages overlap: a reader thread reads batches, every core
/// evaluates the current batch, and a writer thread writes and hashes the
/// previous one.
pub fn write_plan(
    mut inputs: PlanInputs<'_>,
    out: &Path,
    mut progress: impl FnMut(usize),
) -> Result<Written, PlanError> {
    let output = pmf_store::output::Output::of(out);
    // Named by the output the user gave, not the file beside it the plan
    // is written into first (removed on a failure).
    let named = out.to_path_buf();
    let kept = if output.durable() {
        " (a file already there is left as it was)"
    } else {
        ""
    };
    let io_msg = move |e: std::io::Error| format!("cannot write `{}`: {e}{kept}", named.display());
    let file = output.create(false).map_err(|e| PlanError::Io(io_msg(e)))?;
    // Whatever happens below, even a panic, no `.partial` file stays.
    let unfinished = pmf_store::output::Unfinished::new(&output);
    let durable = output.durable();
    let mut stream = std::mem::replace(&mut inputs.partners, PartnerStream::empty());
    let opening = format!("{{\"format_version\":{FORMAT_VERSION},\"header\":");
    // The header binds the partner file by the BLAKE3 of the bytes read,
    // known once the last partner is. Into a file, the header is written
    // with a stand-in of the digest's length and the digest written over
    // it at the end (where: the one place two stand-ins differ). Into a
    // pipe, which cannot be written twice, a regular partner file is hashed
    // first and the bytes streamed must be those bytes.
    let patchable = file.metadata().is_ok_and(|m| m.is_file());
    let (header, digest_at, expected) = if patchable {
        let mut header_with = |stand_in: char| {
            inputs.header.partners.blake3 = Some(stand_in.to_string().repeat(DIGEST_HEX));
            serde_json::to_string(&inputs.header).map_err(|e| PlanError::Io(e.to_string()))
        };
        let (header, other) = (header_with('0')?, header_with('1')?);
        let at = header
            .bytes()
            .zip(other.bytes())
            .position(|(a, b)| a != b)
            .map(|at| opening.len() + at)
            .ok_or_else(|| {
                PlanError::Io("the plan header has no place for the partner digest".into())
            })?;
        (header, Some(at), None)
    } else {
        let expected = stream.hash_ahead().map_err(PlanError::Input)?;
        inputs.header.partners.blake3 = expected.clone();
        let header =
            serde_json::to_string(&inputs.header).map_err(|e| PlanError::Io(e.to_string()))?;
        (header, None, expected)
    };

    let (read_tx, read_rx) = std::sync::mpsc::sync_channel::<Result<Batch, InputError>>(1);
    let file_name = stream.file().to_string();
    let total_bytes = stream.total_bytes();
    // The BLAKE3 of every byte of the partner file the stream read, set
    // before its last (empty) batch is sent.
    let read_digest = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let digest_of_read = std::sync::Arc::clone(&read_digest);
    let reader = std::thread::spawn(move || {
        loop {
            let mut batch = stream.next_batch(8192);
            let done = batch.as_ref().map_or(true, Batch::is_empty);
            if done && batch.is_ok() {
                let read = stream.read_digest();
                if expected.as_ref().is_some_and(|e| *e != read) {
                    batch = Err(InputError::Invalid {
                        file: stream.file().to_string(),
                        at: "the whole file".into(),
                        partner: None,
                        problem: "the file changed while it was being planned (the bytes read \
                                  are not the ones hashed when planning began); plan again"
                            .into(),
                    });
                }
                let _ = digest_of_read.set(read);
            }
            if read_tx.send(batch).is_err() || done {
                break;
            }
        }
    });
    let (write_tx, write_rx) = std::sync::mpsc::sync_channel::<ToWriter>(1);
    let pool = std::sync::Arc::new(TextPool::default());
    let written_texts = std::sync::Arc::clone(&pool);
    let writer = std::thread::spawn(move || -> std::io::Result<String> {
        // The plan hash: the header's first pieces last (the partner
        // digest is written into it at the end), the rest as written, each
        // 8 MiB chunk whole (an entry at a time, BLAKE3 would compress one
        // block after another).
        let patch = digest_at.map(|at| at..at + DIGEST_HEX);
        let keep = patch.as_ref().map_or(0, |p| p.end);
        let mut hasher = crate::file_digest::HeadLastHasher::new(PLAN_PIECE, keep);
        let mut w = pmf_store::direct::DirectWriter::seen_by(file, |bytes: &[u8]| {
            hasher.update(bytes);
        });
        write!(w, "{opening}{header},\"entries\":[")?;
        let mut first = true;
        for message in write_rx {
            match message {
                ToWriter::Entries(texts) => {
                    for text in &texts {
                        w.write_all(if first { b"\n" } else { b",\n" })?;
                        first = false;
                        w.write_all(text.as_bytes())?;
                    }
                    written_texts.give(texts);
                }
                ToWriter::Totals(totals, partners_digest) => {
                    write!(w, "\n],\"totals\":{totals}}}\n")?;
                    let file = w.finish()?;
                    if let Some(patch) = patch {
                        let digest = partners_digest.as_bytes();
                        match hasher.head_mut().get_mut(patch.clone()) {
                            Some(stand_in) if digest.len() == DIGEST_HEX => {
                                stand_in.copy_from_slice(digest)
                            }
                            _ => {
                                return Err(std::io::Error::other(
                                    "the partner digest has no place in the header",
                                ));
                            }
                        }
                        std::os::unix::fs::FileExt::write_all_at(
                            &file,
                            digest,
                            patch.start as u64,
                        )?;
                    }
                    if durable {
                        file.sync_all()?;
                    }
                    return Ok(hasher.finalize().to_hex().to_string());
                }
            }
        }
        // The planning stopped short (its error is the one reported).
        Err(std::io::Error::other("the plan was not finished"))
    });

    let policy = inputs.policy;
    // The evaluator takes batches from the reader and evaluates each on
    // every core, while this thread counts the previous one and checks its
    // ids: no core waits for the serial part.
    let (eval_tx, eval_rx) = std::sync::mpsc::sync_channel::<Evaluated>(1);
    let mut not_planned_ids = NotPlannedIds::default();
    let mut partners_blake3 = None;
    let mut review = None;
    let outcome = std::thread::scope(|scope| {
        let inputs = &inputs;
        let file_name = file_name.as_str();
        let pool = &*pool;
        scope.spawn(move || evaluate_batches(inputs, file_name, read_rx, eval_tx, pool));
        let mut counts = Counts::new(policy);
        let rows = inputs.review_rows;
        let mut kept = std::collections::BinaryHeap::<Candidate>::with_capacity(rows + 1);
        let mut seen = IdSet::default();
        let named = &mut not_planned_ids;
        let digest = &mut partners_blake3;
        let review = &mut review;
        let stop = inputs.stop.as_deref();
        let outcome = (|| -> Result<Totals, Stopped> {
            for evaluated in &eval_rx {
                if stop.is_some_and(|s| s.load(std::sync::atomic::Ordering::Relaxed)) {
                    return Err(PlanError::Stopped.into());
                }
                let (batch, chunks) = evaluated?;
                if seen.is_empty() && !batch.text.is_empty() {
                    // Size the id set once, from the file's size and the
                    // first batch's bytes per record: no regrowth later.
                    let per_record = batch.text.len() / batch.records.len().max(1);
                    let estimate = total_bytes / per_record.max(1) as u64;
                    let ids = (estimate.min(1 << 26) as usize) * 11 / 10;
                    let id_bytes = chunks
                        .first()
                        .map_or(0, |c| c.ids.len() / c.counted.len().max(1));
                    seen.reserve(ids, ids * id_bytes);
                }
                let mut texts = Vec::with_capacity(chunks.len());
                for (records, chunk) in batch.records.chunks(CHUNK).zip(chunks) {
                    let mut id_start = 0;
                    for (raw, counted) in records.iter().zip(chunk.counted) {
                        counts.add(&counted);
                        if rows > 0 {
                            let key = (std::cmp::Reverse(counted.action), counts.partners);
                            if kept.len() < rows || kept.peek().is_some_and(|c| key < c.key) {
                                let text = chunk.text.get(counted.text.clone()).unwrap_or_default();
                                kept.push(Candidate {
                                    key,
                                    text: text.to_string(),
                                });
                                if kept.len() > rows {
                                    kept.pop();
                                }
                            }
                        }
                        let id = chunk.ids.get(id_start..counted.id_end).unwrap_or_default();
                        id_start = counted.id_end;
                        if !seen.push(id) {
                            return Err(PlanError::Input(InputError::Invalid {
                                file: file_name.to_string(),
                                at: raw.at.to_string(),
                                partner: None,
                                problem: "the partner ids are too long to be held".into(),
                            })
                            .into());
                        }
                    }
                    texts.push(chunk.text);
                }
                write_tx
                    .send(ToWriter::Entries(texts))
                    .map_err(|_| Stopped::WriterGone)?;
                progress(counts.partners);
            }
            // A partner file names each partner once. (Where: the CLI reads
            // a regular file again for every repeat and its line.)
            if let Some(repeated) = seen.seal() {
                return Err(PlanError::Input(InputError::Invalid {
                    file: file_name.to_string(),
                    at: format!("record {}", repeated.ordinal + 1),
                    partner: None,
                    problem: "duplicate partner id (it appears earlier in the file)".into(),
                })
                .into());
            }
            // A target names a partner to change: one for a partner that is
            // not planned (a misspelt id, a partner file of another fleet)
            // would be dropped unseen, so the plan is refused.
            let (targets, observed) = (&inputs.targets.partners, &inputs.observed.partners);
            let not_planned = NotPlanned {
                targets: targets.len().saturating_sub(counts.targeted),
                observed: observed.len().saturating_sub(counts.observed),
            };
            if not_planned.targets > 0 {
                named.targets = targets.ids_not_in(|id| seen.contains(id), NAMED)?;
            }
            if not_planned.observed > 0 {
                named.observed = observed.ids_not_in(|id| seen.contains(id), NAMED)?;
            }
            if not_planned.targets > 0 && !inputs.subset {
                let missing = not_planned.targets;
                return Err(PlanError::Input(InputError::Invalid {
                    file: targets.name().to_string(),
                    at: "the whole file".into(),
                    partner: None,
                    problem: format!(
                        "it gives a target to {missing} partner{} that the partner file does not hold ({}): \
                         a target for a partner that is not planned would be dropped unseen; \
                         fix the ids, or pass `--subset` to plan only the partners given",
                        if missing == 1 { "" } else { "s" },
                        id_list(&named.targets, missing)
                    ),
                }).into());
            }
            // What was planned is what the plan binds: the indexed files
            // did not change meanwhile.
            inputs
                .targets
                .partners
                .unchanged()
                .map_err(PlanError::Input)?;
            inputs
                .observed
                .partners
                .unchanged()
                .map_err(PlanError::Input)?;
            let mut totals = counts.totals(policy);
            totals.not_planned = not_planned;
            *review = if rows > 0 {
                counts.review(policy, std::mem::take(&mut kept))
            } else {
                None
            };
            let trailer =
                serde_json::to_string(&totals).map_err(|e| PlanError::Io(e.to_string()))?;
            let partners_digest = read_digest
                .get()
                .cloned()
                .ok_or_else(|| PlanError::Io(format!("`{file_name}` was not read to its end")))?;
            *digest = if digest_at.is_some() {
                Some(partners_digest.clone())
            } else {
                inputs.header.partners.blake3.clone()
            };
            write_tx
                .send(ToWriter::Totals(trailer, partners_digest))
                .map_err(|_| Stopped::WriterGone)?;
            Ok(totals)
        })();
        // Stop the evaluator (it sees the closed channel) before the scope ends.
        drop(eval_rx);
        outcome
    });
    drop(write_tx);
    let _ = reader.join();
    let written = writer
        .join()
        .map_err(|_| PlanError::Io("the plan writer failed".into()))
        .and_then(|r| r.map_err(|e| PlanError::Io(io_msg(e))));
    unfinished.done();
    match (outcome, written) {
        (Ok(totals), Ok(hash)) => match output.commit() {
            Ok(()) => Ok(Written {
                totals,
                hash,
                partners_blake3,
                not_planned_ids,
                review,
            }),
            Err(e) => {
                output.abandon();
                Err(PlanError::Io(format!(
                    "cannot write `{}`: {e}",
                    out.display()
                )))
            }
        },
        // The writer stopped on an error of its own (a full disk): that
        // error says why, not the planner's failed hand-over.
        (Err(Stopped::WriterGone), Err(e)) | (Err(Stopped::Plan(e)), _) | (Ok(_), Err(e)) => {
            output.abandon();
            Err(e)
        }
        (Err(Stopped::WriterGone), Ok(_)) => {
            output.abandon();
            Err(PlanError::Io("the plan writer stopped".into()))
        }
    }
}

/// Why planning stopped short.
enum Stopped {
    /// A failure of its own.
    Plan(PlanError),
    /// The writer thread is gone: its own error says why.
    WriterGone,
}

impl From<PlanError> for Stopped {
    fn from(e: PlanError) -> Self {
        Stopped::Plan(e)
    }
}

impl From<InputError> for Stopped {
    fn from(e: InputError) -> Self {
        Stopped::Plan(PlanError::Input(e))
    }
}

/// Totals counted by index, named at the end.
struct Counts {
    partners: usize,
    by_type: Vec<usize>,
    by_band: Vec<usize>,
    /// By `Action as usize`.
    by_action: [usize; Action::ALL.len()],
    /// Partners with their own target entry.
    targeted: usize,
    /// Partners with observed metrics.
    observed: usize,
    /// By type and by band as [`bump`] counts them, with the mildest action.
    type_tallies: Vec<crate::plan_view::Tally>,
    band_tallies: Vec<crate::plan_view::Tally>,
    /// By authority that must approve.
    by_authority: [usize; 64],
    needing_approval: usize,
    approvals_beyond: bool,
}

impl Counts {
    fn new(policy: &CompiledPolicy) -> Self {
        Counts {
            partners: 0,
            by_type: vec![0; policy.migrations.len() + 1],
            by_band: vec![0; policy.bands.len() + 1],
            by_action: [0; Action::ALL.len()],
            targeted: 0,
            observed: 0,
            type_tallies: vec![Default::default(); policy.migrations.len() + 1],
            band_tallies: vec![Default::default(); policy.bands.len() + 1],
            by_authority: [0; 64],
            needing_approval: 0,
            approvals_beyond: false,
        }
    }

    fn add(&mut self, r: &Counted) {
        self.partners += 1;
        bump(&mut self.by_type, r.migration);
        bump(&mut self.by_band, r.band);
        if let Some(t) = slot(&mut self.type_tallies, r.migration) {
            t.add(r.action);
        }
        if let Some(t) = slot(&mut self.band_tallies, r.band) {
            t.add(r.action);
        }
        let mut mask = r.approvals;
        while mask != 0 {
            if let Some(n) = self.by_authority.get_mut(mask.trailing_zeros() as usize) {
                *n += 1;
            }
            mask &= mask - 1;
        }
        self.needing_approval += usize::from(r.approvals != 0 || r.approvals_beyond);
        self.approvals_beyond |= r.approvals_beyond;
        if let Some(n) = self.by_action.get_mut(r.action as usize) {
            *n += 1;
        }
        self.targeted += usize::from(r.targeted);
        self.observed += usize::from(r.observed);
    }

    fn totals(&self, policy: &CompiledPolicy) -> Totals {
        let named = |counts: &[usize], name: &dyn Fn(usize) -> String| {
            counts
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (name(i), *n))
                .collect::<BTreeMap<String, usize>>()
        };
        Totals {
            partners: self.partners,
            by_type: named(&self.by_type, &|i| {
                policy
                    .migrations
                    .get(i)
                    .map_or("none".into(), |m| m.name.clone())
            }),
            by_band: named(&self.by_band, &|i| {
                policy
                    .bands
                    .get(i)
                    .map_or("unknown".into(), |b| b.status.clone())
            }),
            // `Action::ALL[a as usize] == a`.
            by_action: Action::ALL
                .iter()
                .zip(self.by_action)
                .filter(|(_, n)| *n > 0)
                .map(|(a, n)| (a.as_str().to_string(), n))
                .collect(),
            // Counted by the caller, once the inputs are all read.
            not_planned: NotPlanned::default(),
        }
    }
}

/// Count one at `i` in `counts`, or in its last slot (no migration type,
/// unknown band) for `None` or an index past the policy's items.
fn bump(counts: &mut [usize], i: Option<usize>) {
    if let Some(n) = slot(counts, i) {
        *n += 1;
    }
}

/// The slot `i` of `counts`, or its last (see [`bump`]).
fn slot<T>(counts: &mut [T], i: Option<usize>) -> Option<&mut T> {
    match i {
        Some(i) if i + 1 < counts.len() => counts.get_mut(i),
        _ => counts.last_mut(),
    }
}

impl Counts {
    /// The review of what was counted, with the most severe entries kept.
    fn review(
        &self,
        policy: &CompiledPolicy,
        kept: std::collections::BinaryHeap<Candidate>,
    ) -> Option<Review> {
        if self.approvals_beyond {
            return None;
        }
        let named = |tallies: &[crate::plan_view::Tally], name: &dyn Fn(usize) -> String| {
            tallies
                .iter()
                .enumerate()
                .filter(|(_, t)| t.partners > 0)
                .map(|(i, t)| (name(i), *t))
                .collect::<BTreeMap<_, _>>()
        };
        Some(Review {
            by_type: named(&self.type_tallies, &|i| {
                policy
                    .migrations
                    .get(i)
                    .map_or("none".into(), |m| m.name.clone())
            }),
            by_band: named(&self.band_tallies, &|i| {
                policy
                    .bands
                    .get(i)
                    .map_or("unknown".into(), |b| b.status.clone())
            }),
            authorities: policy
                .authorities
                .iter()
                .zip(self.by_authority)
                .filter(|(_, n)| *n > 0)
                .map(|(a, n)| (a.clone(), n))
                .collect(),
            needing_approval: self.needing_approval,
            most_severe: kept.into_sorted_vec().into_iter().map(|c| c.text).collect(),
        })
    }
}

/// What the plan writer is handed, in order.
enum ToWriter {
    /// Plan lines (one text per chunk of partners).
    Entries(Vec<String>),
    /// The totals' JSON (the end of the plan), and the partner file's
    /// digest for the header.
    Totals(String, String),
}

#[cfg(test)]
mod tests;
