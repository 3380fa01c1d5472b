//! Plans: what `pmf plan` predicts for every partner, written as versioned
//! JSON, and what `pmf apply` reads back.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::compile::{Root, State};
use super::engine::{Action, CompiledPolicy};
use super::fast::ParseCache;
use super::input::{InputError, Observed, Targets, parse_partner};
use super::json_out;
use super::keyed::EntryReader;
use super::stream::{Batch, PartnerStream};
use super::value::Value;

/// The plan format this build writes. Format 4 drops format 3's
/// `state_digest`: an entry's state is the `state` it carries, so its digest
/// is taken from that when needed. Format 5 adds the header's `expires_at`
/// (a pmf that does not know it must not read the plan, or it would apply
/// the plan past its expiry).
pub const FORMAT_VERSION: u32 = 5;

/// The oldest plan format this build still reads (a plan made by the pmf
/// before an upgrade still applies, or resumes).
pub const OLDEST_FORMAT_READ: u32 = 3;

/// Whether this build reads plans of format `version`.
pub fn reads_format(version: u64) -> bool {
    (u64::from(OLDEST_FORMAT_READ)..=u64::from(FORMAT_VERSION)).contains(&version)
}

/// The policy a plan was made with.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    /// Policy name.
    pub name: String,
    /// Effective policy hash.
    pub hash: String,
}

/// What a plan does.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum PlanKind {
    /// Migrate partners to their target through the flow.
    #[default]
    Migrate,
    /// Return partners to an earlier stable version (`pmf rollback`): a
    /// fallback migration that needs the approvals its change requires.
    Rollback,
    /// Replace partner states outside the flow (`pmf state import
    /// --replace`): needs the approval of every authority of the policy.
    Replace,
}

/// An input file as the plan saw it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct InputFile {
    /// The path as given to `pmf plan` (for people: apply never reads it).
    pub file: String,
    /// BLAKE3 (hex) of its bytes; `None` when it was not a regular file
    /// (a pipe), whose content the plan carries all the same.
    pub blake3: Option<String>,
}

/// Everything a plan was made from, bound by digest, and what `apply`
/// needs of it, carried: a plan applies from any directory or machine
/// that has the store, and an input that differs is refused by name.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanHeader {
    /// What the plan does: migrate partners to a target (`migrate`), or
    /// return them to an earlier stable version (`rollback`).
    #[serde(default)]
    pub kind: PlanKind,
    /// The policy.
    pub policy: PolicyRef,
    /// When the plan was made (RFC 3339, UTC).
    pub created_at: String,
    /// When the plan stops being valid (RFC 3339, UTC): it is neither
    /// signed nor applied after (format 5 on; an older plan has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The policy's source files (name → text, the standard library
    /// aside): `apply` compiles these unless given `--policy`, whose hash
    /// must then match.
    pub policy_sources: BTreeMap<String, String>,
    /// The partner states (each entry carries its partner's state).
    pub partners: InputFile,
    /// The target file (the target is carried: `target_all` and entries).
    pub target: InputFile,
    /// The observed metrics file, if any (each entry carries its metrics).
    pub observed: Option<InputFile>,
    /// SHA-256 of the store's outcome counts the fallback risks came from.
    pub history: String,
    /// The hash of the policy that governed the store `pmf plan` read, when
    /// it is not the plan's own: applying the plan to that store replaces
    /// its governing policy, which every authority of the replaced policy
    /// must endorse. Carried so that signers are told (`pmf approve` shows
    /// it), and held by `apply`: a plan that changes a store's policy
    /// without saying so is refused. `None`: the plan changes no policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces_policy: Option<String>,
    /// The id of the store the plan was made against, when one existed:
    /// the plan (and so its approvals) applies to that store only, as a
    /// saved plan applies to the state it was made from. `None`: made
    /// against no store (a new store's first plan), it applies to any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_id: Option<String>,
    /// The target for every partner (a partial state), if any.
    pub target_all: Option<serde_json::Value>,
}

/// What the plan predicts for a partner.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Prediction {
    /// Health score, when every factor is known.
    pub score: Option<f64>,
    /// Band status, such as `reliable`.
    pub band: Option<String>,
    /// The action.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Worst validation outcome.
    pub validation: String,
}

/// One partner's line of a plan.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PlanEntry {
    /// Partner id.
    pub id: String,
    /// Format 3 only: SHA-256 of the partner's state when planned (format
    /// 4 takes it from `state`, [`PlanEntry::planned_digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_digest: Option<String>,
    /// Current version.
    pub from: Option<String>,
    /// Target version.
    pub to: Option<String>,
    /// Detected migration type.
    #[serde(rename = "type")]
    pub migration: Option<String>,
    /// Categories the change touches.
    pub categories: Vec<String>,
    /// Authorities whose approval is required.
    pub approvals_required: Vec<String>,
    /// Predicted outcome.
    pub predicted: Prediction,
    /// Predicted chance of a fallback, learned from the lineage.
    pub fallback_risk: f64,
    /// A target for this partner only (a partial state), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<serde_json::Value>,
    /// The partner's state when planned (what apply starts from when the
    /// store does not hold the partner yet).
    pub state: CarriedJson,
    /// The partner's observed metrics, if the plan had any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<CarriedJson>,
}

/// JSON a plan carries as text (a partner's state, its observed metrics):
/// read back only when apply needs it, never held as a tree.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(transparent)]
pub struct CarriedJson(pub Box<serde_json::value::RawValue>);

impl PartialEq for CarriedJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl PlanEntry {
    /// The digest ([`state_digest`]) of the state the partner had when
    /// planned: format 3's `state_digest`, else that of the `state` it
    /// carries, read against `schema`.
    pub fn planned_digest(
        &self,
        schema: &pmf_compiler::model::types::Type,
        cache: Option<&mut super::fast::ParseCache>,
    ) -> Result<String, String> {
        match &self.state_digest {
            Some(d) => Ok(d.clone()),
            None => self
                .state
                .read(schema, super::value::Completeness::Full, cache)
                .map(|state| state_digest(&state)),
        }
    }
}

impl CarriedJson {
    /// The JSON of `value`.
    pub fn of(value: &serde_json::Value) -> CarriedJson {
        CarriedJson(
            serde_json::value::to_raw_value(value)
                .unwrap_or_else(|_| Box::<serde_json::value::RawValue>::default()),
        )
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    /// Read it against `schema`: the fast reader when it can vouch for the
    /// text (a full state, as plans write it), else the reference path.
    pub fn read(
        &self,
        schema: &pmf_compiler::model::types::Type,
        completeness: super::value::Completeness,
        cache: Option<&mut super::fast::ParseCache>,
    ) -> Result<Value, String> {
        if let Some(v) = cache.and_then(|c| super::fast::parse(self.text(), c)) {
            return Ok(v);
        }
        let json: serde_json::Value =
            serde_json::from_str(self.text()).map_err(|e| e.to_string())?;
        super::value::from_json(schema, &json, "", completeness).map_err(|e| e.to_string())
    }
}

/// Counts per type, band and action.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Partners in the plan.
    pub partners: usize,
    /// By migration type (`none` when nothing matched or nothing to do).
    pub by_type: BTreeMap<String, usize>,
    /// By predicted band (`unknown` when health is unknown).
    pub by_band: BTreeMap<String, usize>,
    /// By predicted action.
    pub by_action: BTreeMap<String, usize>,
    /// What the inputs held for partners the plan does not hold (absent
    /// when nothing: plans without it read as such).
    #[serde(default, skip_serializing_if = "NotPlanned::is_nothing")]
    pub not_planned: NotPlanned,
}

/// Entries of the target and observed files for partners that are not in
/// the partner file (a plan of a part of a fleet, `pmf plan --subset`).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NotPlanned {
    /// Partners with a target of their own that were not planned.
    pub targets: usize,
    /// Partners with observed metrics that were not planned.
    pub observed: usize,
}

impl NotPlanned {
    /// Whether the inputs held nothing for partners not planned.
    pub fn is_nothing(&self) -> bool {
        self.targets == 0 && self.observed == 0
    }

    /// What a reviewer is told (`targets of 2 partners and metrics of 1
    /// partner the partner file does not hold`), or `None`.
    pub fn described(&self) -> Option<String> {
        let count = |n: usize, what: &str| match n {
            0 => None,
            1 => Some(format!("{what} of 1 partner")),
            n => Some(format!("{what} of {n} partners")),
        };
        let parts: Vec<String> = [
            count(self.targets, "targets"),
            count(self.observed, "metrics"),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty())
            .then(|| format!("{} the partner file does not hold", parts.join(" and ")))
    }
}

/// How long a plan stays valid when its maker does not say (`--valid-for`).
pub const DEFAULT_VALIDITY_SECS: u64 = 7 * 86_400;

/// The longest a plan may be made valid for.
pub const MAX_VALIDITY_SECS: u64 = 90 * 86_400;

/// The seconds since the epoch now (0 if the clock is before it).
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `secs` as people say it, to the largest unit that fits twice
/// (`7 days`, `36 hours`, `90 minutes`, `1 second`).
pub fn spoken_duration(secs: u64) -> String {
    let (n, unit) = match secs {
        s if s >= 2 * 86_400 => (s / 86_400, "day"),
        s if s >= 2 * 3_600 => (s / 3_600, "hour"),
        s if s >= 2 * 60 => (s / 60, "minute"),
        s => (s, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// The expiry of a plan made now and valid for `valid_for` seconds.
pub fn expires_after(valid_for: u64) -> String {
    rfc3339(now_secs().saturating_add(valid_for))
}

/// A whole plan file.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Always [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Inputs.
    pub header: PlanHeader,
    /// One entry per partner, in input order.
    pub entries: Vec<PlanEntry>,
    /// Counts.
    pub totals: Totals,
}

/// Fallback counts of past migrations, by type and categories: the seed's
/// illumination (predictive intelligence).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// (type, categories joined by `+`) → (migrations, fallbacks).
    pub outcomes: HashMap<(String, String), (u64, u64)>,
}

impl History {
    /// Predicted fallback chance: past fallbacks of the same kind of
    /// migration, smoothed toward what the policy itself predicts.
    pub fn fallback_risk(&self, migration: &str, categories: &str, predicted: Action) -> f64 {
        let prior = if predicted >= Action::Fallback {
            0.9
        } else {
            0.1
        };
        let (n, f) = if self.outcomes.is_empty() {
            (0, 0)
        } else {
            self.outcomes
                .get(&(migration.to_string(), categories.to_string()))
                .copied()
                .unwrap_or((0, 0))
        };
        let weight = 2.0;
        let risk = (f as f64 + weight * prior) / (n as f64 + weight);
        (risk * 1000.0).round() / 1000.0
    }
}

/// SHA-256 (hex) of a partner state (of its digest encoding,
/// [`Value::write_digest_bytes`]).
pub fn state_digest(state: &Value) -> String {
    let mut bytes = Vec::new();
    state.write_digest_bytes(&mut bytes);
    let mut out = String::with_capacity(64);
    json_out::write_hex(&Sha256::digest(bytes.as_slice()), &mut out);
    out
}

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
    canonical: super::value::CanonicalMemo,
    /// The own targets read, and the policies laid for them.
    own_targets: OwnTargets,
}

impl Worker {
    fn new(policy: &CompiledPolicy) -> Self {
        Worker {
            partial: ParseCache::new(&policy.schema, super::value::Completeness::Partial),
            targets: EntryReader::default(),
            observed: EntryReader::default(),
            scratch: Scratch::default(),
            canonical: super::value::CanonicalMemo::default(),
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
        let own = super::keyed::parse_entry(schema, raw, cache)?;
        let value = match target_all {
            Some(all) => super::value::overlay(all, &own),
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
            ParseCache::new(&policy.schema, super::value::Completeness::Full),
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
    pub by_type: BTreeMap<String, super::plan_view::Tally>,
    /// By predicted band (`unknown`).
    pub by_band: BTreeMap<String, super::plan_view::Tally>,
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
    let written_to = output.written().to_path_buf();
    let io_msg = move |e: std::io::Error| format!("cannot write `{}`: {e}", written_to.display());
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
        let mut hasher = super::file_digest::HeadLastHasher::new(PLAN_PIECE, keep);
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
        let outcome = (|| -> Result<Totals, Stopped> {
            for evaluated in &eval_rx {
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
    type_tallies: Vec<super::plan_view::Tally>,
    band_tallies: Vec<super::plan_view::Tally>,
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
        let named = |tallies: &[super::plan_view::Tally], name: &dyn Fn(usize) -> String| {
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

/// A plan read back, with the hash of its bytes.
pub struct LoadedPlan {
    /// The plan.
    pub plan: Plan,
    /// BLAKE3 (hex) of the file: what approvals sign (`b3sum plan.json`).
    pub hash: String,
}

/// Read a plan file.
pub fn read_plan(path: &Path) -> Result<LoadedPlan, String> {
    // However large a plan may be, a device is none (`/dev/zero` never ends).
    let bytes = pmf_syntax::read::refuse_device(path)
        .and_then(|()| std::fs::read(path))
        .map_err(|e| {
            format!(
                "cannot read `{}`: {}",
                path.display(),
                pmf_syntax::diagnostics::io_reason(&e)
            )
        })?;
    let hash = blake3::hash(&bytes).to_hex().to_string();
    // As pmf lays plans out, its entries parsed on every core; else
    // straight into a plan; only when that fails, look at why.
    if let Some(plan) = read_laid_out(&bytes) {
        return Ok(LoadedPlan { plan, hash });
    }
    if let Ok(plan) = serde_json::from_slice::<Plan>(&bytes)
        && reads_format(plan.format_version.into())
    {
        return Ok(LoadedPlan { plan, hash });
    }
    #[derive(Deserialize)]
    struct Versioned {
        format_version: Option<serde_json::Value>,
    }
    let versioned: Versioned = serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{}` is not a plan: {e}", path.display()))?;
    match versioned.format_version.as_ref().and_then(|v| v.as_u64()) {
        Some(v) if reads_format(v) => {}
        Some(v) if v < u64::from(OLDEST_FORMAT_READ) => {
            return Err(format!(
                "`{}` has plan format {v}, made by an older pmf; this pmf reads formats \
                 {OLDEST_FORMAT_READ} to {FORMAT_VERSION} (which bind every input and carry what apply needs): plan again",
                path.display()
            ));
        }
        Some(v) => {
            return Err(format!(
                "`{}` has plan format {v}; this pmf reads formats {OLDEST_FORMAT_READ} to {FORMAT_VERSION}",
                path.display()
            ));
        }
        None => {
            return Err(format!(
                "`{}` is not a plan (no `format_version`)",
                path.display()
            ));
        }
    }
    match serde_json::from_slice::<Plan>(&bytes) {
        Ok(plan) => Ok(LoadedPlan { plan, hash }),
        Err(e) => Err(format!("`{}` is not a valid plan: {e}", path.display())),
    }
}

/// A plan laid out as [`write_plan`] writes it: its format and header on
/// the first line, which ends `"entries":[`; an entry a line, each but the
/// last followed by a comma; then `],"totals":…}`. Each part is parsed by
/// serde as the whole file would be, the entries on every core. `None`
/// when the file is laid out otherwise, or any part does not parse, or
/// the format is not this pmf's: the whole file is then parsed at once
/// (the reference, which also says what is wrong).
fn read_laid_out(bytes: &[u8]) -> Option<Plan> {
    use rayon::prelude::*;
    /// The first line's fields, and only those.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Head {
        format_version: u32,
        header: PlanHeader,
    }
    /// The last line's field, and only that.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tail {
        totals: Totals,
    }
    const OPEN: &[u8] = b",\"entries\":[";
    const CLOSE: &[u8] = b"],\"totals\":";
    let first = bytes.iter().position(|&b| b == b'\n')?;
    let (head, rest) = (bytes.get(..first)?, bytes.get(first + 1..)?);
    let head = head.strip_suffix(OPEN)?;
    let head: Head = serde_json::from_slice(&[head, b"}"].concat()).ok()?;
    if !reads_format(head.format_version.into()) {
        return None;
    }
    // The tail: the last line (a new line may end the file).
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    let (entries, tail) = match memchr::memrchr(b'\n', rest) {
        Some(at) => (rest.get(..at)?, rest.get(at + 1..)?),
        None => (rest.get(..0)?, rest),
    };
    let tail = tail.strip_prefix(CLOSE)?;
    let tail: Tail = serde_json::from_slice(&[b"{\"totals\":", tail].concat()).ok()?;
    // Lines found with memchr (SIMD): a byte at a time, this serial step
    // was a fiftieth of applying 100,000 partners.
    let lines: Vec<&[u8]> = if entries.is_empty() {
        Vec::new()
    } else {
        let mut lines = Vec::with_capacity(entries.len() / 256);
        let mut start = 0;
        for end in memchr::memchr_iter(b'\n', entries).chain([entries.len()]) {
            lines.push(entries.get(start..end)?);
            start = end + 1;
        }
        lines
    };
    let last = lines.len().saturating_sub(1);
    let entries = lines
        .par_iter()
        .enumerate()
        .map(|(i, line)| {
            // A comma after each entry but the last.
            let line = if i < last {
                line.strip_suffix(b",")?
            } else {
                line
            };
            serde_json::from_slice::<PlanEntry>(line).ok()
        })
        .collect::<Option<Vec<PlanEntry>>>()?;
    Some(Plan {
        format_version: head.format_version,
        header: head.header,
        entries,
        totals: tail.totals,
    })
}

pub use pmf_store::clock::{now_rfc3339, parse_rfc3339, rfc3339};

impl PlanHeader {
    /// Whether the plan's expiry has passed at `now` (seconds since the
    /// epoch); false when it carries none it can read ([`Plan::expiry_problem`]
    /// says what is wrong then).
    pub fn expired(&self, now: u64) -> bool {
        self.expires_at
            .as_deref()
            .and_then(parse_rfc3339)
            .is_some_and(|at| now >= at)
    }
}

impl Plan {
    /// Why the plan may no longer be signed or applied at `now` (seconds
    /// since the epoch): its validity ended, or a plan of a format that
    /// carries an expiry carries none (or one pmf does not write). Plans
    /// of the formats before expiries (3 and 4) have none to hold.
    pub fn expiry_problem(&self, now: u64) -> Option<String> {
        if self.format_version < 5 {
            return None;
        }
        let Some(expires_at) = &self.header.expires_at else {
            return Some(
                "the plan carries no expiry (`expires_at`), which its format requires".into(),
            );
        };
        let Some(expiry) = parse_rfc3339(expires_at) else {
            return Some(format!(
                "the plan's expiry `{}` is not a time as pmf writes them",
                expires_at.escape_debug()
            ));
        };
        (now >= expiry).then(|| {
            format!(
                "the plan expired at {expires_at} (made at {}): a new plan needs new approvals",
                self.header.created_at.escape_debug()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Assessment;
    use crate::input::{read_all_partners, read_observed, read_targets};

    /// Targets as the reference reads them: the whole file as one JSON tree.
    struct Reference {
        all: Option<Value>,
        /// Per partner: the partial record, and its JSON.
        partners: HashMap<String, (Value, serde_json::Value)>,
    }

    /// The plan entry for one partner, built as a `PlanEntry` value: what
    /// the hand-written line must equal.
    fn entry_for(
        policy: &CompiledPolicy,
        history: &History,
        targets: &Reference,
        observed: &HashMap<String, Value>,
        partner: &Value,
    ) -> (PlanEntry, Assessment) {
        let id = policy.id_of(partner).to_string();
        let own = targets.partners.get(&id);
        let view = State::of(partner).with(own.map(|t| &t.0).or(targets.all.as_ref()));
        let own = own.map(|t| &t.1);
        let a = policy.assess(partner, view, view.with(observed.get(&id)));
        let migration = a.migration.map(|m| policy.migrations[m].name.clone());
        let categories: Vec<String> = a
            .categories
            .iter()
            .map(|&c| policy.categories[c].name.clone())
            .collect();
        let risk = history.fallback_risk(
            migration.as_deref().unwrap_or("none"),
            &categories.join("+"),
            a.action,
        );
        let entry = PlanEntry {
            state_digest: None,
            from: policy.version_of(partner).map(|v| v.to_string()),
            to: policy.version_of(&view.merged()).map(|v| v.to_string()),
            migration,
            approvals_required: a
                .approvals
                .iter()
                .map(|&i| policy.authorities[i].clone())
                .collect(),
            predicted: Prediction {
                score: a.score.map(|s| (s * 100.0).round() / 100.0),
                band: a.band.map(|b| policy.bands[b].status.clone()),
                action: a.action,
                reason: policy.reason(a.reason),
                validation: a.verdict.as_str().to_string(),
            },
            fallback_risk: risk,
            target: own.cloned(),
            state: CarriedJson::of(&partner.to_json(&policy.schema)),
            observed: observed
                .get(&id)
                .map(|o| CarriedJson::of(&o.to_partial_json(&policy.schema))),
            categories,
            id,
        };
        (entry, a)
    }

    /// A file of the bundled fleet.
    fn fleet(f: &str) -> std::path::PathBuf {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet")).join(f)
    }

    /// The fleet's policy, compiled.
    fn fleet_policy() -> CompiledPolicy {
        crate::load::load_policy(&[fleet("policy.pmf")]).expect("fleet policy compiles")
    }

    /// Plan `partners` against the fleet's targets into `out`, with
    /// `header` and no history.
    fn plan_into(
        policy: &CompiledPolicy,
        partners: &Path,
        observed: &Observed,
        header: PlanHeader,
        out: &Path,
    ) -> Result<Written, PlanError> {
        let targets = read_targets(&policy.schema, &fleet("target.json")).unwrap();
        write_plan(
            PlanInputs {
                policy,
                partners: PartnerStream::open(partners).unwrap(),
                targets: &targets,
                observed,
                history: &History::default(),
                header,
                subset: false,
                review_rows: 0,
            },
            out,
            |_| {},
        )
    }

    /// A plan of format 5 is held to its expiry from its last second on;
    /// one that carries none, or one pmf does not write, is refused; the
    /// formats before expiries have none to hold.
    #[test]
    fn plans_expire() {
        let policy = fleet_policy();
        let plan = |format_version: u32, expires_at: Option<&str>| Plan {
            format_version,
            header: PlanHeader {
                expires_at: expires_at.map(str::to_string),
                ..blank_header(&policy)
            },
            entries: Vec::new(),
            totals: Totals::default(),
        };
        let at = parse_rfc3339("2026-12-10T00:00:00Z").unwrap();
        let valid = plan(5, Some("2026-12-10T00:00:00Z"));
        assert_eq!(valid.expiry_problem(at - 1), None);
        assert!(
            valid
                .expiry_problem(at)
                .unwrap()
                .starts_with("the plan expired at 2026-12-10T00:00:00Z")
        );
        assert!(
            plan(5, None)
                .expiry_problem(0)
                .unwrap()
                .contains("carries no expiry")
        );
        assert!(
            plan(5, Some("2026-12-10"))
                .expiry_problem(0)
                .unwrap()
                .contains("not a time")
        );
        assert_eq!(plan(4, None).expiry_problem(u64::MAX), None);
        assert_eq!(spoken_duration(7 * 86_400), "7 days");
        assert_eq!(spoken_duration(36 * 3_600), "36 hours");
        assert_eq!(spoken_duration(60), "60 seconds");
        assert_eq!(spoken_duration(1), "1 second");
        assert_eq!(spoken_duration(86_400 + 1), "24 hours");
    }

    /// A header that binds no file.
    fn blank_header(policy: &CompiledPolicy) -> PlanHeader {
        PlanHeader {
            kind: PlanKind::Migrate,
            policy: PolicyRef {
                name: policy.name.clone(),
                hash: policy.hash.clone(),
            },
            created_at: String::new(),
            expires_at: None,
            policy_sources: BTreeMap::new(),
            partners: InputFile {
                file: String::new(),
                blake3: None,
            },
            target: InputFile {
                file: String::new(),
                blake3: None,
            },
            observed: None,
            history: String::new(),
            target_all: None,
            replaces_policy: None,
            store_id: None,
        }
    }

    /// A plan binds the partner file by the BLAKE3 of the bytes it read,
    /// whatever the header it was given said, and the plan hash is the
    /// hash of the plan's final bytes: with a small header, and with one
    /// longer than the pieces the plan hash takes (policy sources of 9 MB).
    #[test]
    fn the_header_binds_the_partner_bytes_read() {
        let policy = fleet_policy();
        let dir = tempfile::tempdir().unwrap();
        let bytes = std::fs::read(fleet("partners.json")).unwrap();
        let partners = dir.path().join("partners.json");
        std::fs::write(&partners, &bytes).unwrap();
        let out = dir.path().join("plan.json");
        for sources in [0, 9 << 20] {
            let mut header = blank_header(&policy);
            header.partners.blake3 = Some("not the digest".into());
            header
                .policy_sources
                .insert("big.pmf".into(), "x".repeat(sources));
            let written = plan_into(&policy, &partners, &Observed::none(), header, &out).unwrap();
            let digest = blake3::hash(&bytes).to_hex().to_string();
            assert_eq!(written.partners_blake3.as_ref(), Some(&digest));
            let plan_bytes = std::fs::read(&out).unwrap();
            assert_eq!(written.hash, blake3::hash(&plan_bytes).to_hex().to_string());
            let loaded = read_plan(&out).unwrap();
            assert_eq!(loaded.plan.header.partners.blake3, Some(digest));
            assert_eq!(loaded.hash, written.hash);
            assert!(written.totals.partners > 10);
        }
    }

    /// Plans as pmf lays them out read with their entries parsed apart
    /// exactly as the whole file parses; any other layout is left to the
    /// whole-file parse, and what that refuses is never read apart.
    #[test]
    fn plans_read_line_by_line_as_the_whole_file_reads() {
        let policy = fleet_policy();
        let observed = read_observed(&policy.schema, &fleet("observed.json")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("plan.json");
        plan_into(
            &policy,
            &fleet("partners.json"),
            &observed,
            blank_header(&policy),
            &out,
        )
        .unwrap();
        let written = std::fs::read_to_string(&out).unwrap();
        let whole = |text: &str| {
            serde_json::from_str::<Plan>(text)
                .ok()
                .filter(|p| p.format_version == FORMAT_VERSION)
                .map(|p| serde_json::to_string(&p).unwrap())
        };
        let apart =
            |text: &str| read_laid_out(text.as_bytes()).map(|p| serde_json::to_string(&p).unwrap());
        // As written: read apart, the same plan.
        assert!(apart(&written).is_some());
        assert_eq!(apart(&written), whole(&written));
        let plan: serde_json::Value = serde_json::from_str(&written).unwrap();
        let lines: Vec<&str> = written.lines().collect();
        let (first, last) = (lines[0], lines[lines.len() - 1]);
        let entries = &lines[1..lines.len() - 1];
        let laid = |entries: &[String]| {
            let mut text = first.to_string();
            for (i, e) in entries.iter().enumerate() {
                text.push_str(if i == 0 { "\n" } else { ",\n" });
                text.push_str(e);
            }
            format!("{text}\n{last}\n")
        };
        let plain: Vec<String> = entries
            .iter()
            .map(|e| e.trim_end_matches(',').to_string())
            .collect();
        // Laid out by pmf, however many entries (none, one, all; no final
        // new line).
        for n in [0, 1, plain.len()] {
            let text = laid(&plain[..n]);
            assert!(apart(&text).is_some(), "{n} entries");
            assert_eq!(apart(&text), whole(&text), "{n} entries");
        }
        let unterminated = written.trim_end().to_string();
        assert_eq!(apart(&unterminated), whole(&unterminated));
        // Laid out otherwise, or not a plan this pmf reads: the whole file
        // decides, and what it refuses is refused.
        let deep = |depth: usize| {
            let state = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            let entry =
                plain[0].replacen("\"state\":{", &format!("\"state\":{state},\"was\":{{"), 1);
            let mut all = plain.clone();
            all[0] = entry;
            laid(&all)
        };
        let mut others = vec![
            serde_json::to_string(&plan).unwrap(),
            serde_json::to_string_pretty(&plan).unwrap(),
            written.replace('\n', "\r\n"),
            laid(&plain).replacen("\"entries\":[", "\"extra\":1,\"entries\":[", 1),
            laid(&plain).replacen("{\"format_version\":3,", "{\"format_version\":2,", 1),
            laid(&plain).replacen(
                "{\"format_version\":3,",
                "{\"format_version\":3,\"format_version\":3,",
                1,
            ),
            format!(
                "{}\n,{}",
                &laid(&plain)[..laid(&plain).len() - last.len() - 2],
                last
            ),
            laid(&plain).replace("],\"totals\":", "],\"header\":{},\"totals\":"),
            laid(&plain).replace("\"totals\":{", "\"totals\":{\"x\":"),
            format!("{}garbage\n", laid(&plain)),
            format!("{}\ngarbage\n", laid(&plain)),
            laid(&plain).replacen(",\n", ",\n,\n", 1),
            laid(&plain).replacen(",\n", "\n", 1),
            laid(&plain[..2]).replacen("}\n]", "},\n]", 1),
            laid(&[format!("{} {}", plain[0], plain[1])]),
        ];
        others.extend([120, 125, 126, 127, 128, 200].map(deep));
        for (i, text) in others.iter().enumerate() {
            let apart = apart(text);
            if apart.is_some() {
                assert_eq!(apart, whole(text), "layout {i}");
            }
            if whole(text).is_none() {
                assert_eq!(apart, None, "layout {i}");
            }
        }
    }

    /// A partner's own target reads and assesses alike kept (laid for,
    /// written once: met again, taken as kept) and on its own through
    /// layers: fleet partners under 120 distinct targets (past the limit:
    /// the spare and the general policy), with a target for all and
    /// without, with observed metrics of their own and without.
    #[test]
    fn own_targets_kept_read_and_assess_as_the_policy_does() {
        let policy = fleet_policy();
        let schema = &policy.schema;
        let partial = |json: serde_json::Value| {
            crate::value::from_json(schema, &json, "", crate::value::Completeness::Partial).unwrap()
        };
        let partners = read_all_partners(schema, &fleet("partners.json")).unwrap();
        let observed =
            partial(serde_json::json!({"metrics": {"stability": 71, "compatibility": 95}}));
        let all = partial(serde_json::json!({"version": "1.6.0", "power": 5}));
        let versions = ["1.4.0", "1.6.0", "2.0.0", "3.1.0", "4.0.0", "2.5.0"];
        for target_all in [None, Some(&all)] {
            let mut own_targets = OwnTargets::new(&policy);
            assert_eq!(
                own_targets.limit,
                OwnTargets::LIMIT,
                "the fleet's policy is small"
            );
            let mut cache = ParseCache::new(schema, crate::value::Completeness::Partial);
            let mut laid = 0;
            for round in 0..3 {
                for (i, partner) in partners.iter().enumerate() {
                    let n = (i * 7 + round * 13) % 120;
                    let raw = format!(
                        "{{\"version\": \"{}\", \"region\": \"{}\"{}}}",
                        versions[n % versions.len()],
                        if n % 2 == 0 { "eu" } else { "us" },
                        if n >= versions.len() {
                            format!(", \"power\": {}", n / versions.len())
                        } else {
                            String::new()
                        },
                    );
                    // The reference: the entry parsed on its own, laid over
                    // the target for all, written, assessed through layers.
                    let own = partial(serde_json::from_str(&raw).unwrap());
                    let value = match target_all {
                        Some(all) => crate::value::overlay(all, &own),
                        None => own,
                    };
                    let mut text = String::new();
                    value.write_partial(schema, &mut text);
                    for own_observed in [false, true] {
                        let state = State::of(partner).with(Some(&value));
                        let observed_state = state.with(own_observed.then_some(&observed));
                        let general = policy.assess(partner, state, observed_state);
                        let at = own_targets
                            .read(&raw, schema, &mut cache, target_all)
                            .unwrap();
                        let (kept, kept_text, assessor) =
                            own_targets.target(at, &policy, own_observed).unwrap();
                        assert_eq!((kept, kept_text), (&value, text.as_str()), "{raw}");
                        if !std::ptr::eq(assessor, &policy) {
                            laid += 1;
                        }
                        let state = State::of(partner).with(Some(kept));
                        let observed_state = state.with(own_observed.then_some(&observed));
                        let fast = assessor.assess(partner, state, observed_state);
                        assert_eq!(
                            format!("{fast:?}"),
                            format!("{general:?}"),
                            "partner {i}, target {raw}, own observed {own_observed}"
                        );
                    }
                }
            }
            assert_eq!(own_targets.kept.len(), OwnTargets::LIMIT);
            assert!(own_targets.spare.is_some(), "past the limit");
            assert!(laid > 0 && laid < 3 * 2 * partners.len(), "{laid}");
        }
    }

    /// The id set finds the first id given again, in file order, and
    /// knows every id, as a set filled one id at a time does: ids that
    /// repeat near and far, twice and more, and every id sharing one hash
    /// (the worst case for the sort by hash).
    #[test]
    fn the_id_set_finds_the_first_repeat_as_a_hash_set_does() {
        for (n, modulus, same_hash) in [
            (0, 1, false),
            (1, 1, false),
            (5000, 0, false),
            (5000, 4999, false),
            (5000, 3001, false),
            (600, 450, true),
        ] {
            let ids: Vec<String> = (0..n)
                .map(|i| {
                    let k = if modulus > 0 { i % modulus } else { i };
                    format!("p-{}", (k * 7919) % 10007)
                })
                .collect();
            let mut set = IdSet::default();
            if same_hash {
                // One hasher for all: a key nobody chose still spreads ids;
                // here every id is given the same hash by hand below.
                set.places.reserve(ids.len());
                for id in &ids {
                    let start = set.text.len() as u64;
                    set.places.push((7, (start << 24) | id.len() as u64));
                    set.text.push_str(id);
                }
            } else {
                for id in &ids {
                    assert!(set.push(id));
                }
            }
            let mut reference = std::collections::HashSet::new();
            let expected = ids.iter().position(|id| !reference.insert(id.as_str()));
            let found = set.seal().map(|r| r.ordinal);
            assert_eq!(found, expected, "{n} ids, modulus {modulus}");
            if !same_hash {
                for id in &ids {
                    assert!(set.contains(id));
                }
                assert!(!set.contains("p-none"));
            }
        }
    }

    /// The plan line written by hand reads back as the entry `entry_for`
    /// builds, for every partner of the fleet (every type, band and action).
    #[test]
    fn hand_written_lines_are_the_serde_entries() {
        let policy = fleet_policy();
        let partners = read_all_partners(&policy.schema, &fleet("partners.json")).unwrap();
        // The fleet's targets (for all, and per partner) read by the index;
        // the reference reads the same file as one JSON tree.
        let targets = read_targets(&policy.schema, &fleet("target.json")).unwrap();
        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fleet("target.json")).unwrap()).unwrap();
        let partial = |json: &serde_json::Value| {
            crate::value::from_json(
                &policy.schema,
                json,
                "",
                crate::value::Completeness::Partial,
            )
            .unwrap()
        };
        let reference = Reference {
            all: Some(partial(&file["all"])),
            partners: file["partners"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(id, json)| {
                    // Carried as canonical JSON (sets sorted), like observed
                    // metrics.
                    // Laid over the target for all.
                    let value = crate::value::overlay(&partial(&file["all"]), &partial(json));
                    let canonical = value.to_partial_json(&policy.schema);
                    (id.clone(), (value, canonical))
                })
                .collect(),
        };
        assert!(reference.partners.len() > 3);
        let observed = read_observed(&policy.schema, &fleet("observed.json")).unwrap();
        let observed_reference: HashMap<String, Value> = observed
            .partners
            .all(&policy.schema)
            .unwrap()
            .into_iter()
            .collect();
        let mut history = History::default();
        history
            .outcomes
            .insert(("soft".into(), "structural".into()), (10, 3));
        let inputs = PlanInputs {
            policy: &policy,
            partners: PartnerStream::empty(),
            targets: &targets,
            observed: &observed,
            history: &history,
            header: blank_header(&policy),
            subset: false,
            review_rows: 0,
        };
        let mut worker = Worker::new(&policy);
        let assessors = Assessors::new(&policy, targets.all.as_ref());
        let mut entries = Vec::new();
        for partner in &partners {
            let mut line = String::new();
            let mut ids = String::new();
            let counted = write_entry(
                &assessors,
                &inputs,
                targets.all.as_ref(),
                partner,
                &mut worker,
                &mut line,
                &mut ids,
            )
            .unwrap();
            let (expected, a) =
                entry_for(&policy, &history, &reference, &observed_reference, partner);
            let read: PlanEntry = serde_json::from_str(&line).expect("a plan line is JSON");
            assert_eq!(read, expected);
            assert_eq!(line, serde_json::to_string(&expected).unwrap());
            assert_eq!(
                (ids.clone(), counted.migration, counted.band, counted.action),
                (expected.id.clone(), a.migration, a.band, a.action)
            );
            entries.push(read);
        }
        // What the lines say is what `plan_claims` decides again from what
        // they carry (the words a signer reads), and an entry edited to
        // need fewer approvals is named.
        let mut plan = Plan {
            format_version: FORMAT_VERSION,
            header: PlanHeader {
                target_all: Some(file["all"].clone()),
                ..blank_header(&policy)
            },
            entries,
            totals: Totals::default(),
        };
        assert_eq!(
            crate::plan_claims::unfounded(&plan, &policy),
            Vec::<String>::new()
        );
        let guided = plan
            .entries
            .iter_mut()
            .find(|e| e.approvals_required == ["TSC"])
            .unwrap();
        guided.approvals_required.clear();
        let id = guided.id.clone();
        assert_eq!(
            crate::plan_claims::unfounded(&plan, &policy),
            [format!(
                "partner `{id}`: the plan says approvals none; its policy decides approvals TSC"
            )]
        );
    }
}
