//! Plans: what `pmf plan` predicts for every partner, written as versioned
//! JSON, and what `pmf apply` reads back.
//!
//! This module holds the format (the header, the entries, the totals, the
//! expiry); `write` makes a plan from the partner stream, on every core;
//! `read` reads one back.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::engine::Action;
use super::json_out;
use super::value::Value;
use pmf_store::lineage::Text;

mod entry_line;
mod read;
mod write;

pub use read::{LoadedPlan, read_plan};
pub use write::*;

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
    pub band: Option<Text>,
    /// The action.
    pub action: Action,
    /// Why.
    pub reason: Text,
    /// Worst validation outcome.
    pub validation: Text,
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
    pub from: Option<Text>,
    /// Target version.
    pub to: Option<Text>,
    /// Detected migration type.
    #[serde(rename = "type")]
    pub migration: Option<Text>,
    /// Categories the change touches.
    pub categories: Vec<Text>,
    /// Authorities whose approval is required.
    pub approvals_required: Vec<Text>,
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
/// read back only when apply needs it, never held as a tree. The text is
/// always one JSON value without surrounding white space, as serde's
/// `RawValue` holds it: read through `RawValue`, written from a tree, or
/// checked by the plan's line reader.
#[derive(Debug, Clone, PartialEq)]
pub struct CarriedJson(Box<str>);

impl Serialize for CarriedJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // Written as it is, as a `RawValue` is.
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for CarriedJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<serde_json::value::RawValue>::deserialize(d).map(|raw| CarriedJson(raw.into()))
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
        self.planned_digest_of(&self.state, schema, cache)
    }

    /// [`PlanEntry::planned_digest`], the state it carries being `carried`
    /// (taken out of the entry, [`CarriedJson::take`]).
    pub fn planned_digest_of(
        &self,
        carried: &CarriedJson,
        schema: &pmf_compiler::model::types::Type,
        cache: Option<&mut super::fast::ParseCache>,
    ) -> Result<String, String> {
        match &self.state_digest {
            Some(d) => Ok(d.clone()),
            None => carried
                .read(schema, super::value::Completeness::Full, cache)
                .map(|state| state_digest(&state)),
        }
    }
}

impl CarriedJson {
    /// The JSON of `value`.
    pub fn of(value: &serde_json::Value) -> CarriedJson {
        // A tree's JSON is JSON.
        CarriedJson(value.to_string().into())
    }

    /// JSON text checked to be one JSON value without surrounding white
    /// space ([`entry_line`]).
    fn checked(text: &str) -> CarriedJson {
        CarriedJson(text.into())
    }

    /// Take the text out, leaving `null` in its place: for apply, which
    /// reads each once and need not hold the plan's texts beside the states
    /// read from them.
    pub fn take(&mut self) -> CarriedJson {
        CarriedJson(std::mem::replace(&mut self.0, "null".into()))
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        &self.0
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

pub use pmf_store::clock::{now_secs, spoken_duration};

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
