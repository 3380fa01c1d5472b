//! The compiled policy and the per-partner assessment: detection, the
//! categories a change touches, the approvals it needs, compatibility,
//! sustainability, validation, health and ceilings.

use pmf_syntax::PlacedTexts;

use sha2::{Digest, Sha256};

use super::compile::{Env, Ir, Root, State, Truth, compile, field};
use super::value::Value;
use pmf_compiler::graph::PhaseGraph;
use pmf_compiler::model::EffectivePolicy;
use pmf_compiler::model::types::{Type, schema};
use pmf_syntax::ast::{CompareOp, MigrationItemKind, RuleKind};

pub use pmf_compiler::model::vocabulary::{Action, Verdict};

fn outcome(ir: &Ir, env: &Env<'_>) -> Verdict {
    match ir.truth(env) {
        Truth::True => Verdict::Passed,
        Truth::False => Verdict::Failed,
        Truth::Missing => Verdict::Inconclusive,
        Truth::NotBool | Truth::Error => Verdict::Error,
    }
}

/// Which approvals a migration type asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Approvals {
    /// None.
    None,
    /// The authorities governing the categories touched.
    Governing,
    /// These authorities (indices).
    Named(Vec<usize>),
}

/// A compiled migration type.
#[derive(Clone, Debug)]
pub struct MigrationType {
    /// Name, such as `guided`.
    pub name: String,
    /// Detection condition.
    pub when: Option<Ir>,
    /// Declared reversible.
    pub reversible: bool,
    /// Needs a compatibility mapping.
    pub requires_mapping: bool,
    /// Approvals it needs.
    pub approvals: Approvals,
    /// Categories it may touch (indices); `None` for all.
    pub touches: Option<Vec<usize>>,
}

/// A compiled category.
#[derive(Clone, Debug)]
pub struct Category {
    /// Name, such as `structural`.
    pub name: String,
    /// Field paths (indices) whose change puts a migration in it.
    pub covers: Vec<Box<[usize]>>,
    /// Authority governing it (index).
    pub governor: Option<usize>,
}

/// A compiled compatibility or sustainability rule.
#[derive(Clone, Debug)]
pub struct Rule {
    /// Rule name.
    pub name: String,
    /// What must hold.
    pub condition: Ir,
    /// The action a failure raises, named after `else`; `None` for
    /// `forced` (a forced migration goes on).
    pub action: Option<Action>,
}

/// A compiled validation check.
#[derive(Clone, Debug)]
pub struct Check {
    /// Dimension, such as `version`.
    pub dimension: String,
    /// Check name.
    pub name: String,
    /// What must hold.
    pub condition: Ir,
}

/// A compiled health band.
#[derive(Clone, Debug)]
pub struct Band {
    /// Lowest score.
    pub low: f64,
    /// Highest score.
    pub high: f64,
    /// Status name, such as `at_risk`.
    pub status: String,
    /// Action.
    pub action: Action,
    /// Action as shown to people.
    pub label: String,
}

/// A compiled ceiling.
#[derive(Clone, Debug)]
pub struct Ceiling {
    /// Dotted field name.
    pub field: String,
    /// Field indices.
    pub indices: Box<[usize]>,
    /// `<` or `<=`.
    pub op: CompareOp,
    /// The bound.
    pub value: Value,
}

impl Ceiling {
    /// Whether `v` (the field's value) passes the bound; a value that is
    /// not there (not measured) breaks nothing. A value of another kind
    /// than the bound (which `pmf check` refuses, PMF803, and the schema
    /// rules out) has no order with it, and breaks it: a ceiling fails
    /// closed, never open.
    pub fn broken_by(&self, v: &Value) -> bool {
        if matches!(v, Value::Missing | Value::Absent) {
            return false;
        }
        if std::mem::discriminant(v) != std::mem::discriminant(&self.value) {
            return true;
        }
        if let (Value::Ver(version), Value::Ver(bound)) = (v, &self.value) {
            // By semver precedence (build metadata aside), except that a
            // pre-release of X.Y.Z is held to a bound written without one
            // as X.Y.Z itself: `version < 4.0.0` rules out `4.0.0-rc.1`
            // (semver orders it below 4.0.0), as `<4.0.0` does in Cargo and
            // npm. A bound that names a pre-release compares by precedence.
            let release = |x: &semver::Version| (x.major, x.minor, x.patch);
            let order = if !version.pre.is_empty() && bound.pre.is_empty() {
                release(version).cmp(&release(bound))
            } else {
                version.cmp_precedence(bound)
            };
            return match self.op {
                CompareOp::Le => order.is_gt(),
                _ => order.is_ge(),
            };
        }
        match self.op {
            CompareOp::Le => *v > self.value,
            _ => *v >= self.value,
        }
    }

    /// `FIELD OP BOUND`, as the policy writes it.
    pub fn described(&self) -> String {
        format!(
            "{} {} {}",
            self.field,
            self.op.symbol(),
            scalar_text(&self.value)
        )
    }
}

/// A number's or a version's text (what a ceiling bounds); `…` for others.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::Num(n) => n.to_string(),
        Value::Ver(v) => v.to_string(),
        _ => "…".into(),
    }
}

/// A public key an authority signs approvals with, from a `key` declaration
/// of the effective policy (its parents' keys and its own): the trust root
/// of approvals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorityKey {
    /// The authority the key signs for, such as `TSC`.
    pub authority: String,
    /// The ed25519 public key: 64 lowercase hex digits, without the
    /// `ed25519:` prefix the policy writes (as `pmf keygen` and approvals
    /// write it).
    pub public_key: String,
    /// Who holds the key, such as `Ada Lovelace, TSC chair`.
    pub label: Option<String>,
}

/// A policy ready to run: every expression compiled once.
#[derive(Clone, Debug)]
pub struct CompiledPolicy {
    /// Policy name.
    pub name: String,
    /// SHA-256 (hex) of the effective policy, comments and layout aside.
    pub hash: String,
    /// The partner schema (a record type).
    pub schema: Type,
    /// Authority names.
    pub authorities: Vec<String>,
    /// The authorities' public keys, in declaration order (inherited keys
    /// first). A checked policy declares each key once, for one declared
    /// authority; see [`CompiledPolicy::keys_of`] and
    /// [`CompiledPolicy::authority_of_key`].
    pub keys: Vec<AuthorityKey>,
    /// Categories.
    pub categories: Vec<Category>,
    /// Migration types in declaration order.
    pub migrations: Vec<MigrationType>,
    /// Migration types (indices) in detection order.
    pub detection: Vec<usize>,
    /// The fallback type (the one returning to the previous stable state).
    pub fallback: Option<usize>,
    /// Compatibility rules.
    pub compatibility: Vec<Rule>,
    /// Sustainability rules.
    pub sustainability: Vec<Rule>,
    /// Validation checks.
    pub checks: Vec<Check>,
    /// Health factors: name, weight, source.
    pub factors: Vec<(String, f64, Ir)>,
    /// Health bands.
    pub bands: Vec<Band>,
    /// Ceilings.
    pub ceilings: Vec<Ceiling>,
    /// The phase graph.
    pub graph: PhaseGraph,
    /// The rite of `release`, spoken when an old version is released.
    pub release_rite: Option<String>,
    /// Index of the `id` field.
    pub id_field: usize,
    /// Index of the `version` field.
    pub version_field: usize,
}

/// Why a checked policy cannot run (a usage problem, exit code 2: the
/// policy checked without errors).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotRunnable(pub String);

fn indices(schema: &Type, path: &[&str]) -> Option<Box<[usize]>> {
    let mut ty = schema;
    let mut out = Vec::new();
    for seg in path {
        let Type::Record(fields) = ty else {
            return None;
        };
        out.push(fields.keys().position(|k| k == seg)?);
        ty = fields.get(seg)?;
    }
    Some(out.into())
}

impl CompiledPolicy {
    /// Compile a policy that checked without errors. `sources` gives the
    /// text of every file and where its stable places are, for the policy
    /// hash.
    pub fn compile(
        policy: &EffectivePolicy,
        graph: &PhaseGraph,
        sources: &PlacedTexts,
    ) -> Result<Self, NotRunnable> {
        let schema = schema(policy);
        let field = |name: &str| {
            indices(&schema, &[name])
                .and_then(|i| i.first().copied())
                .ok_or_else(|| {
                    NotRunnable(format!(
                        "the partner schema has no `{name}` field, which the runtime needs"
                    ))
                })
        };
        let id_field = field("id")?;
        let version_field = field("version")?;
        let bad = |what: &str| NotRunnable(format!("cannot compile {what}"));

        let authorities: Vec<String> = policy
            .authorities()
            .map(|(_, a)| a.name.name.to_string())
            .collect();
        let auth_index = |n: &str| authorities.iter().position(|a| a == n);
        // A checked policy has only well-formed keys; any other is left out
        // (it could verify nothing).
        let keys: Vec<AuthorityKey> = policy
            .keys()
            .filter_map(|(_, k)| {
                Some(AuthorityKey {
                    authority: k.authority.name.to_string(),
                    public_key: pmf_compiler::model::keys::parse(&k.key.value).ok()?,
                    label: k.label.as_ref().map(|l| l.value.clone()),
                })
            })
            .collect();
        let categories: Vec<Category> = policy
            .categories()
            .map(|(_, c)| Category {
                name: c.name.name.to_string(),
                covers: c
                    .covers
                    .iter()
                    .filter_map(|p| {
                        let segs: Vec<&str> = p.segments.iter().map(|s| s.name.as_str()).collect();
                        indices(&schema, &segs)
                    })
                    .collect(),
                governor: policy
                    .authorities()
                    .find(|(_, a)| a.governs.iter().any(|g| g.name == c.name.name))
                    .and_then(|(_, a)| auth_index(&a.name.name)),
            })
            .collect();
        let cat_index = |n: &str| categories.iter().position(|c| c.name == n);

        let mut migrations = Vec::new();
        let mut fallback = None;
        for (_, m) in policy.migrations() {
            let mut t = MigrationType {
                name: m.name.name.to_string(),
                when: None,
                reversible: false,
                requires_mapping: false,
                approvals: Approvals::None,
                touches: None,
            };
            for item in &m.items {
                match &item.kind {
                    MigrationItemKind::When(e) => {
                        t.when = Some(compile(e, &schema).ok_or_else(|| bad("a `when`"))?)
                    }
                    MigrationItemKind::Reversible => t.reversible = true,
                    MigrationItemKind::BackwardCompatible => {}
                    MigrationItemKind::RequiresMapping => t.requires_mapping = true,
                    MigrationItemKind::Approve(None) => t.approvals = Approvals::Governing,
                    MigrationItemKind::Approve(Some(list)) => {
                        t.approvals = Approvals::Named(
                            list.iter().filter_map(|a| auth_index(&a.name)).collect(),
                        )
                    }
                    MigrationItemKind::Touches(list) => {
                        t.touches = Some(list.iter().filter_map(|c| cat_index(&c.name)).collect())
                    }
                    MigrationItemKind::To(None) => fallback = Some(migrations.len()),
                    MigrationItemKind::To(Some(_)) => {}
                }
            }
            migrations.push(t);
        }
        let mig_index = |n: &str| migrations.iter().position(|m: &MigrationType| m.name == n);
        let detection: Vec<usize> = match policy.order() {
            Some((_, o)) => o.types.iter().filter_map(|t| mig_index(&t.name)).collect(),
            None => migrations
                .iter()
                .enumerate()
                .filter(|(_, m)| m.when.is_some())
                .map(|(i, _)| i)
                .collect(),
        };

        let mut compatibility = Vec::new();
        let mut sustainability = Vec::new();
        for (_, kind, r) in policy.rules() {
            let action = match r.action.name.as_str() {
                pmf_compiler::model::vocabulary::FORCED => None,
                name => Some(Action::parse(name).ok_or_else(|| {
                    NotRunnable(format!(
                        "rule `{}` names `{name}`, which is no action",
                        r.name.name
                    ))
                })?),
            };
            let rule = Rule {
                name: r.name.name.to_string(),
                condition: compile(&r.condition, &schema).ok_or_else(|| bad("a rule"))?,
                action,
            };
            match kind {
                RuleKind::Compatibility => compatibility.push(rule),
                RuleKind::Sustainability => sustainability.push(rule),
            }
        }
        let checks = policy
            .checks()
            .map(|(_, d, c)| {
                Ok(Check {
                    dimension: d.name.to_string(),
                    name: c.name.name.to_string(),
                    condition: compile(&c.condition, &schema)
                        .ok_or_else(|| bad("a validation check"))?,
                })
            })
            .collect::<Result<Vec<_>, NotRunnable>>()?;
        let (factors, bands) = match policy.health() {
            Some((_, h)) => (
                h.factors
                    .iter()
                    .map(|f| {
                        Ok((
                            f.name.name.to_string(),
                            f.weight.value.0,
                            compile(&f.source, &schema).ok_or_else(|| bad("a health factor"))?,
                        ))
                    })
                    .collect::<Result<Vec<_>, NotRunnable>>()?,
                h.bands
                    .iter()
                    .map(|b| {
                        let action = Action::parse(&b.action.name).ok_or_else(|| {
                            NotRunnable(format!(
                                "band `{}` names `{}`, which is no action",
                                b.status.name, b.action.name
                            ))
                        })?;
                        Ok(Band {
                            low: b.low.value.0,
                            high: b.high.value.0,
                            status: b.status.name.to_string(),
                            action,
                            label: b
                                .label
                                .as_ref()
                                .map(|l| l.value.clone())
                                .unwrap_or_default(),
                        })
                    })
                    .collect::<Result<Vec<_>, NotRunnable>>()?,
            ),
            None => (Vec::new(), Vec::new()),
        };
        let ceilings = policy
            .ceilings()
            .filter_map(|(_, c)| {
                let segs: Vec<&str> = c.field.segments.iter().map(|s| s.name.as_str()).collect();
                let value = match compile(&c.value, &schema)? {
                    Ir::Const(v) => v,
                    Ir::Neg(x) => match *x {
                        Ir::Const(Value::Num(n)) => Value::Num(-n),
                        _ => return None,
                    },
                    _ => return None,
                };
                Some(Ceiling {
                    field: c.field.dotted(),
                    indices: indices(&schema, &segs)?,
                    op: c.op,
                    value,
                })
            })
            .collect();
        let release_rite = policy
            .rites()
            .find(|(_, r)| r.phase.name == pmf_compiler::model::RELEASE_RITE)
            .map(|(_, r)| r.words.value.clone());

        Ok(CompiledPolicy {
            name: policy.name.clone(),
            hash: policy_hash(policy, sources),
            schema,
            authorities,
            keys,
            categories,
            migrations,
            detection,
            fallback,
            compatibility,
            sustainability,
            checks,
            factors,
            bands,
            ceilings,
            graph: graph.clone(),
            release_rite,
            id_field,
            version_field,
        })
    }
}

/// SHA-256 over every item of the effective policy (its key and its text
/// without comments, whitespace folded), in order: a plan pins it.
pub fn policy_hash(policy: &EffectivePolicy, sources: &PlacedTexts) -> String {
    let mut h = Sha256::new();
    h.update(policy.name.as_bytes());
    for item in &policy.items {
        h.update(b"\n");
        h.update(item.key.describe().as_bytes());
        h.update(b"\n");
        let text = sources.text(&item.file).unwrap_or("");
        let span = sources.bytes(&item.file, item.span);
        let mut normalized = String::new();
        pmf_compiler::model::compose::normalize(text, span, |c| normalized.push(c));
        h.update(normalized.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Everything the policy says about one partner's migration.
#[derive(Clone, Debug)]
pub struct Assessment {
    /// Nothing differs between partner and target.
    pub nothing_to_do: bool,
    /// The detected migration type (index).
    pub migration: Option<usize>,
    /// Categories touched (indices).
    pub categories: Vec<usize>,
    /// Authorities whose approval is needed (indices).
    pub approvals: Vec<usize>,
    /// Compatibility rules that fail (indices into the policy's rules).
    pub compatibility_failures: Vec<usize>,
    /// Sustainability rules that fail (indices into the policy's rules).
    pub sustainability_failures: Vec<usize>,
    /// Validation: the outcome of each of the policy's checks, in order.
    pub validation: Vec<Verdict>,
    /// The worst validation outcome.
    pub verdict: Verdict,
    /// Health score, if every factor was observed.
    pub score: Option<f64>,
    /// Band (index), if the score is known.
    pub band: Option<usize>,
    /// Ceilings the target breaks (indices into the policy's ceilings).
    pub ceiling_violations: Vec<usize>,
    /// The resulting action and why.
    pub action: Action,
    /// Why the action was chosen (rendered by [`CompiledPolicy::reason`]).
    pub reason: Reason,
}

impl Assessment {
    /// The health score as plans and the lineage record it (two decimals).
    pub fn shown_score(&self) -> Option<f64> {
        self.score.map(|s| (s * 100.0).round() / 100.0)
    }
}

/// Why an assessment ends in its action; indices point into the policy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Reason {
    /// Partner and target agree.
    AlreadyAtTarget,
    /// Nothing objects.
    AllChecksPass,
    /// The health score (rounded) falls in this band.
    Band(usize, f64),
    /// A health factor was not observed.
    HealthUnknown,
    /// No migration type's detection condition holds.
    NoMigrationType,
    /// Some validation data was not observed.
    ValidationInconclusive,
    /// This validation check failed or could not be evaluated.
    Check(usize, Verdict),
    /// This sustainability rule fails.
    Sustainability(usize),
    /// This compatibility rule fails.
    Compatibility(usize),
    /// The target breaks this ceiling.
    Ceiling(usize),
}

impl CompiledPolicy {
    /// The keys that sign for `authority`, in declaration order (none for an
    /// authority without keys, or one the policy does not declare).
    pub fn keys_of<'a>(&'a self, authority: &'a str) -> impl Iterator<Item = &'a AuthorityKey> {
        self.keys.iter().filter(move |k| k.authority == authority)
    }

    /// The authority that `public_key_hex` (64 hex digits, without the
    /// `ed25519:` prefix; compared without regard to case) signs for, if the
    /// policy declares the key. A checked policy declares a key for one
    /// authority at most (PMF407), so the answer is unique.
    pub fn authority_of_key(&self, public_key_hex: &str) -> Option<&str> {
        self.keys
            .iter()
            .find(|k| k.public_key.eq_ignore_ascii_case(public_key_hex))
            .map(|k| k.authority.as_str())
    }

    /// This policy with every expression [laid](Ir::laid) for states whose
    /// `root` is the partner with `layer` over it. It assesses such states
    /// as `self` does: the plan keeps one for the partners that share the
    /// target for all, and reads through layers only for the others.
    pub fn laid(&self, root: Root, layer: Option<&Value>) -> CompiledPolicy {
        let lay = |ir: &Ir| ir.laid(root, layer);
        let mut out = self.clone();
        for m in &mut out.migrations {
            m.when = m.when.as_ref().map(lay);
        }
        for r in out.compatibility.iter_mut().chain(&mut out.sustainability) {
            r.condition = lay(&r.condition);
        }
        for c in &mut out.checks {
            c.condition = lay(&c.condition);
        }
        for (_, _, ir) in &mut out.factors {
            *ir = lay(ir);
        }
        out
    }

    /// The partner's id.
    pub fn id_of<'v>(&self, partner: &'v Value) -> &'v str {
        match field(partner, &[self.id_field]) {
            Value::Str(s) => s,
            _ => "",
        }
    }

    /// The names of the categories numbered `ids` (as an assessment
    /// numbers them).
    pub fn category_names<'a>(&'a self, ids: &'a [usize]) -> impl Iterator<Item = &'a str> + 'a {
        ids.iter()
            .filter_map(|&c| self.categories.get(c))
            .map(|c| c.name.as_str())
    }

    /// The names of the authorities numbered `ids`.
    pub fn authority_names<'a>(&'a self, ids: &'a [usize]) -> impl Iterator<Item = &'a str> + 'a {
        ids.iter()
            .filter_map(|&i| self.authorities.get(i))
            .map(String::as_str)
    }

    /// The ceilings a whole state breaks, each as `FIELD is V (the ceiling
    /// is FIELD OP BOUND)`: no state the store holds may pass one, whatever
    /// way it comes in (a migration's target, an import, a replacement).
    pub fn ceilings_broken_by(&self, state: &Value) -> Vec<String> {
        let state = State::of(state);
        self.ceilings
            .iter()
            .filter_map(|c| {
                let v = state.get(&c.indices);
                c.broken_by(&v).then(|| {
                    format!(
                        "`{}` is {} (the ceiling is `{}`)",
                        c.field,
                        scalar_text(&v),
                        c.described()
                    )
                })
            })
            .collect()
    }

    /// The partner's version.
    pub fn version_of(&self, partner: &Value) -> Option<semver::Version> {
        match field(partner, &[self.version_field]) {
            Value::Ver(v) => Some((**v).clone()),
            _ => None,
        }
    }

    /// The partner's version as text (`Version`'s `Display`, written
    /// without the formatting machinery: apply names two per partner).
    pub fn version_text_of(&self, partner: &Value) -> Option<pmf_store::lineage::Text> {
        match field(partner, &[self.version_field]) {
            Value::Ver(v) => Some(super::json_out::version_text(v)),
            _ => None,
        }
    }

    /// The band a score falls in (scores are rounded to whole numbers).
    pub fn band_of(&self, score: f64) -> Option<usize> {
        let s = score.round();
        self.bands.iter().position(|b| b.low <= s && s <= b.high)
    }

    /// Assess one partner. `target` is its target laid over the partner;
    /// `observed` holds the metrics measured (or predicted) after transition,
    /// laid over the target.
    pub fn assess(&self, partner: &Value, target: State<'_>, observed: State<'_>) -> Assessment {
        let mut env = Env {
            partner,
            target,
            observed,
            compatible: None,
            sustainable: None,
        };
        let failures = |rules: &[Rule], env: &Env<'_>| -> Vec<usize> {
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| outcome(&r.condition, env) != Verdict::Passed)
                .map(|(r, _)| r)
                .collect()
        };
        let compatibility_failures = failures(&self.compatibility, &env);
        let sustainability_failures = failures(&self.sustainability, &env);
        env.compatible = Some(compatibility_failures.is_empty());
        env.sustainable = Some(sustainability_failures.is_empty());

        let categories: Vec<usize> = self
            .categories
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                c.covers
                    .iter()
                    .any(|p| *field(partner, p) != *target.get(p))
            })
            .map(|(c, _)| c)
            .collect();
        let nothing_to_do = target.same_as_base();
        let migration = if nothing_to_do {
            None
        } else {
            self.detection.iter().copied().find(|&m| {
                self.migrations
                    .get(m)
                    .and_then(|t| t.when.as_ref())
                    .is_some_and(|w| w.truth(&env) == Truth::True)
            })
        };
        let approvals = migration.map_or_else(Vec::new, |m| self.approvals_for(m, &categories));

        let validation: Vec<Verdict> = self
            .checks
            .iter()
            .map(|c| outcome(&c.condition, &env))
            .collect();
        let verdict = validation.iter().copied().max().unwrap_or(Verdict::Passed);
        let score = self.factors.iter().try_fold(0.0, |acc, (_, w, ir)| {
            match ir.eval_ref(&env).as_deref() {
                Ok(Value::Num(n)) => Some(acc + w * n),
                _ => None,
            }
        });
        let band = score.and_then(|s| self.band_of(s));
        let ceiling_violations: Vec<usize> = self
            .ceilings
            .iter()
            .enumerate()
            .filter(|(_, c)| c.broken_by(&target.get(&c.indices)))
            .map(|(c, _)| c)
            .collect();

        let mut a = Assessment {
            nothing_to_do,
            migration,
            categories,
            approvals,
            compatibility_failures,
            sustainability_failures,
            validation,
            verdict,
            score,
            band,
            ceiling_violations,
            action: Action::None,
            reason: Reason::AllChecksPass,
        };
        let (action, reason) = self.decide(&a);
        a.action = action;
        a.reason = reason;
        a
    }

    /// Authorities whose approval type `m` needs for `categories`.
    pub(crate) fn approvals_for(&self, m: usize, categories: &[usize]) -> Vec<usize> {
        let Some(t) = self.migrations.get(m) else {
            return Vec::new();
        };
        let mut out: Vec<usize> = match &t.approvals {
            Approvals::None => Vec::new(),
            Approvals::Named(list) => list.clone(),
            Approvals::Governing => categories
                .iter()
                .filter(|c| t.touches.as_ref().is_none_or(|ts| ts.contains(c)))
                .filter_map(|&c| self.categories.get(c).and_then(|c| c.governor))
                .collect(),
        };
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The action for an assessment: the most severe of what each part asks.
    fn decide(&self, a: &Assessment) -> (Action, Reason) {
        if a.nothing_to_do {
            return (Action::None, Reason::AlreadyAtTarget);
        }
        let mut worst = (Action::Proceed, Reason::AllChecksPass);
        let mut raise = |action: Action, why: Reason| {
            if action > worst.0 {
                worst = (action, why);
            }
        };
        match a.band.and_then(|b| Some((b, self.bands.get(b)?))) {
            Some((b, band)) => raise(
                band.action,
                Reason::Band(b, a.score.map_or(0.0, f64::round)),
            ),
            None => raise(Action::Review, Reason::HealthUnknown),
        }
        if a.migration.is_none() {
            raise(Action::Review, Reason::NoMigrationType);
        }
        match a.verdict {
            Verdict::Passed => {}
            Verdict::Inconclusive => raise(Action::Review, Reason::ValidationInconclusive),
            Verdict::Error | Verdict::Failed => {
                if let Some(c) = a.validation.iter().position(|&o| o == a.verdict) {
                    raise(Action::Fallback, Reason::Check(c, a.verdict));
                }
            }
        }
        for &r in &a.sustainability_failures {
            if let Some(action) = self.sustainability.get(r).and_then(|rule| rule.action) {
                raise(action, Reason::Sustainability(r));
            }
        }
        for &r in &a.compatibility_failures {
            if let Some(action) = self.compatibility.get(r).and_then(|rule| rule.action) {
                raise(action, Reason::Compatibility(r));
            }
        }
        if let Some(&c) = a.ceiling_violations.first() {
            raise(Action::Restrict, Reason::Ceiling(c));
        }
        worst
    }

    /// Why, in words.
    pub fn reason(&self, why: Reason) -> String {
        let mut out = String::new();
        self.write_reason(why, &mut out);
        out
    }

    /// Append why, in words, to `out`.
    pub(crate) fn write_reason(&self, why: Reason, out: &mut String) {
        use std::fmt::Write;
        let _ = match why {
            Reason::AlreadyAtTarget => out.write_str("already at target"),
            Reason::AllChecksPass => out.write_str("all checks pass"),
            Reason::Band(b, score) => {
                out.push_str("health ");
                // Scores are rounded: print them as `f64` prints whole numbers.
                if score.fract() == 0.0 && (0.0..1e15).contains(&score) {
                    crate::json_out::write_u64(score as u64, out);
                } else {
                    let _ = write!(out, "{score}");
                }
                out.push_str(" is in band `");
                match self.bands.get(b) {
                    Some(band) => out.push_str(&band.status),
                    None => {
                        let _ = write!(out, "{}", Named(None, b));
                    }
                }
                out.write_str("`")
            }
            Reason::HealthUnknown => out.write_str("health unknown: a factor was not observed"),
            Reason::NoMigrationType => out.write_str("no migration type matches this change"),
            Reason::ValidationInconclusive => {
                out.write_str("validation inconclusive: data not observed")
            }
            Reason::Check(c, o) => write!(
                out,
                "validation check `{}` {}",
                self.check_name(c),
                o.as_str()
            ),
            Reason::Sustainability(r) => write!(
                out,
                "sustainability rule `{}` fails",
                Named(self.sustainability.get(r).map(|r| r.name.as_str()), r)
            ),
            Reason::Compatibility(r) => write!(
                out,
                "compatibility rule `{}` fails",
                Named(self.compatibility.get(r).map(|r| r.name.as_str()), r)
            ),
            Reason::Ceiling(c) => write!(
                out,
                "the target breaks the ceiling on `{}`",
                Named(self.ceilings.get(c).map(|c| c.field.as_str()), c)
            ),
        };
    }

    /// A validation check's name as `dimension.check`.
    pub(crate) fn check_name(&self, c: usize) -> String {
        match self.checks.get(c) {
            Some(c) => format!("{}.{}", c.dimension, c.name),
            None => format!("#{c}"),
        }
    }
}

/// An item's name, or `#index` for an index the policy has no item at
/// (reasons carry the policy's own indices, so this is not expected).
struct Named<'a>(Option<&'a str>, usize);

impl std::fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(name) => f.write_str(name),
            None => write!(f, "#{}", self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Action, Ceiling, CompareOp, Value};

    #[test]
    fn a_ceiling_fails_closed_on_a_value_it_has_no_order_with() {
        let power = Ceiling {
            field: "power".into(),
            indices: Box::new([0]),
            op: CompareOp::Le,
            value: Value::Num(7.0),
        };
        assert!(!power.broken_by(&Value::Num(7.0)));
        assert!(power.broken_by(&Value::Num(9.0)));
        // Not measured: nothing to hold to the bound.
        assert!(!power.broken_by(&Value::Missing));
        assert!(!power.broken_by(&Value::Absent));
        // A string has no order with a number: broken, whichever way the
        // values' own order would put it.
        assert!(power.broken_by(&Value::Str("9".into())));
        assert!(power.broken_by(&Value::Str("1".into())));
        assert!(power.broken_by(&Value::Bool(false)));
        let text = Ceiling {
            value: Value::Str("7".into()),
            ..power
        };
        assert!(text.broken_by(&Value::Num(1.0)));
    }

    #[test]
    fn a_pre_release_is_held_to_a_version_ceiling_as_its_release() {
        let ver = |s: &str| Value::Ver(std::sync::Arc::new(semver::Version::parse(s).unwrap()));
        let ceiling = |op, bound: &str| Ceiling {
            field: "version".into(),
            indices: Box::new([0]),
            op,
            value: ver(bound),
        };
        // Each version against `FIELD OP BOUND`, broken or not.
        let holds = |op, bound: &str, cases: &[(&str, bool)]| {
            let c = ceiling(op, bound);
            for &(v, broken) in cases {
                assert_eq!(c.broken_by(&ver(v)), broken, "{v} against {op:?} {bound}");
            }
        };
        // Semver orders 4.0.0-rc.1 below 4.0.0; the 4.0.0 line is still
        // what `version < 4.0.0` rules out.
        assert!(ver("4.0.0-rc.1") < ver("4.0.0"));
        let below = [
            ("3.9.9", false),
            ("3.9.0-beta.2", false),
            ("4.0.0-rc.1", true),
            ("4.0.0-alpha", true),
            ("4.0.0", true),
            ("4.1.0-rc.1", true),
            ("3.9.9+build.1", false),
            ("4.0.0+build.1", true),
        ];
        holds(CompareOp::Lt, "4.0.0", &below);
        // Build metadata has no precedence.
        let at_most = [
            ("4.0.0-rc.1", false),
            ("4.0.0", false),
            ("4.0.0+build.7", false),
            ("4.0.1-rc.1", true),
            ("4.0.1", true),
        ];
        holds(CompareOp::Le, "4.0.0", &at_most);
        // A bound that names a pre-release: semver precedence.
        let pre = [("4.0.0-rc.1", false), ("4.0.0-rc.2", true), ("4.0.0", true)];
        holds(CompareOp::Lt, "4.0.0-rc.2", &pre);
    }

    #[test]
    fn every_action_is_listed_at_its_own_index() {
        // Exhaustive: a new variant does not compile until it is placed.
        let index = |a: Action| match a {
            Action::None => 0,
            Action::Proceed => 1,
            Action::Monitor => 2,
            Action::Review => 3,
            Action::Throttle => 4,
            Action::Fallback => 5,
            Action::Restrict => 6,
        };
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(index(*a), i, "{a:?}");
            assert_eq!(*a as usize, i, "{a:?}");
        }
    }
}

#[cfg(test)]
mod laid_tests {
    use super::*;
    use crate::value::{Completeness, from_json};
    use proptest::prelude::*;

    fn fleet() -> (CompiledPolicy, Vec<serde_json::Value>) {
        let dir =
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet"));
        let policy =
            crate::load::load_policy(&[dir.join("policy.pmf")]).expect("fleet policy compiles");
        let partners =
            serde_json::from_str(&std::fs::read_to_string(dir.join("partners.json")).unwrap())
                .unwrap();
        (policy, partners)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// A policy laid (and folded) for a target all partners share
        /// assesses every partner as the policy does through layers: fleet
        /// partners with fields changed at random, under targets that give
        /// random fields.
        #[test]
        fn laid_policies_assess_as_the_policy_does(
            base in 0usize..36,
            version in prop::sample::select(vec!["0.9.0", "1.4.0", "1.6.0", "2.0.0", "3.1.4", "4.0.0"]),
            power in 0u32..12,
            stability in 0u32..=100,
            ecosystem in 0u32..=100,
            capabilities in prop::sample::subsequence(vec!["route", "sense", "plan", "heal"], 0..=4),
            target_version in prop::option::of(prop::sample::select(vec!["1.4.0", "1.6.0", "2.0.0", "4.0.0"])),
            target_capabilities in prop::option::of(prop::sample::subsequence(vec!["route", "sense", "plan"], 0..=3)),
            target_power in prop::option::of(0u32..12),
            target_region in prop::option::of(prop::sample::select(vec!["eu", "us"])),
            target_model in prop::option::of(prop::sample::select(vec!["loom-2", "loom-3"])),
        ) {
            let (policy, partners) = fleet();
            let mut partner = partners[base % partners.len()].clone();
            partner["version"] = version.into();
            partner["power"] = power.into();
            partner["metrics"]["stability"] = stability.into();
            partner["metrics"]["ecosystem"] = ecosystem.into();
            partner["capabilities"] = capabilities.into();
            let mut target = serde_json::json!({});
            if let Some(v) = target_version { target["version"] = v.into(); }
            if let Some(c) = target_capabilities { target["capabilities"] = c.into(); }
            if let Some(p) = target_power { target["power"] = p.into(); }
            if let Some(r) = target_region { target["region"] = r.into(); }
            if let Some(m) = target_model { target["intelligence"] = serde_json::json!({"model": m}); }
            let partner = from_json(&policy.schema, &partner, "", Completeness::Full).unwrap();
            let target = from_json(&policy.schema, &target, "", Completeness::Partial).unwrap();
            let state = State::of(&partner).with(Some(&target));
            let general = policy.assess(&partner, state, state);
            let laid = policy
                .laid(Root::Target, Some(&target))
                .laid(Root::Observed, Some(&target));
            let fast = laid.assess(&partner, state, state);
            prop_assert_eq!(format!("{fast:?}"), format!("{general:?}"));
        }
    }
}
