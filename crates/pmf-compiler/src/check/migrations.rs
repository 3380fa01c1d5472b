//! Migration types: soft is reversible, fallback returns to the previous
//! stable state, detection tries types in a defined order, every type can be
//! chosen, and rules name actions their block allows.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use std::hash::{Hash, Hasher};

use rustc_hash::{FxHashMap as HashMap, FxHashSet};

use super::Context;
use super::health::{action_not_allowed, unknown_action};
use crate::model::Sourced;
use pmf_syntax::Place;
use pmf_syntax::ast::{
    BinaryOp, CompareOp, Expr, ExprKind, Ident, Migration, MigrationItemKind, Order, RuleKind,
};
use pmf_syntax::diagnostics::{Code, Diagnostic, Fix, closest};

/// Actions a compatibility rule may take.
pub const COMPATIBILITY_ACTIONS: [&str; 2] = ["fallback", "restrict"];
/// Actions a sustainability rule may take.
pub const SUSTAINABILITY_ACTIONS: [&str; 2] = ["forced", "throttle"];

/// Run the migration-type checks.
pub(crate) fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let detection = Detection::of(cx);
    let mut out = soft_not_reversible(cx);
    out.extend(fallback_not_previous_stable(cx));
    out.extend(never_chosen(cx));
    if let Some((s, order)) = cx.policy.order() {
        out.extend(invalid_order_entries(cx, &detection, s, order));
        out.extend(shadowed_migrations(&detection, s, order));
        out.extend(missing_from_order(cx, &detection, s, order));
    } else {
        out.extend(no_order(cx, &detection));
    }
    out.extend(unknown_rule_actions(cx));
    out.extend(rule_actions_not_allowed(cx));
    out
}

/// What detection can try: the types with a `when`, and their conditions.
struct Detection<'a> {
    /// The migration types with a `when` condition.
    detectable: FxHashSet<&'a str>,
    /// The detection condition of each detectable type (the last `when`
    /// counts, as in the runtime), and its shape.
    conditions: HashMap<&'a str, (&'a Expr, Shape)>,
}

impl<'a> Detection<'a> {
    fn of(cx: &Context<'a>) -> Self {
        let mut detectable = FxHashSet::default();
        let mut whens: Vec<(&'a str, &'a Expr)> = Vec::new();
        for (_, m) in cx.policy.migrations() {
            let when = m.items.iter().rev().find_map(|i| match &i.kind {
                MigrationItemKind::When(e) => Some(e),
                _ => None,
            });
            if let Some(when) = when {
                detectable.insert(m.name.name.as_str());
                whens.push((m.name.name.as_str(), &**when));
            }
        }
        // What each condition offers, and how many conditions offer each
        // key: a condition's needs are taken from its rarest operand.
        let offered: Vec<Vec<u64>> = whens.iter().map(|(_, e)| offers(e)).collect();
        let mut frequency: HashMap<u64, usize> = HashMap::default();
        for keys in &offered {
            for k in keys {
                *frequency.entry(*k).or_default() += 1;
            }
        }
        let frequency = |k: u64| frequency.get(&k).copied().unwrap_or(0);
        let mut conditions = HashMap::default();
        for ((name, when), offers) in whens.into_iter().zip(offered) {
            let needs = needs(when, &frequency);
            // As before: a later `when` of the same name replaces an earlier one.
            conditions.insert(name, (when, Shape { needs, offers }));
        }
        Detection {
            detectable,
            conditions,
        }
    }

    /// True when type `earlier`, tried first, leaves none to `later`.
    fn shadows(&self, earlier: &str, later: &str) -> bool {
        match (self.conditions.get(earlier), self.conditions.get(later)) {
            (Some((a, sa)), Some((b, sb))) => sa.may_be_implied_by(sb) && implies(b, a),
            _ => false,
        }
    }

    /// The pairs (earlier, later) of `order` where the earlier type
    /// shadows the later one.
    fn shadowed_pairs<'o>(&self, order: &[&'o str]) -> Vec<(&'o str, &'o str)> {
        let mut tried = Tried::new(self);
        let mut out = Vec::new();
        for &later in order {
            if !self.detectable.contains(later) || tried.has(later) {
                continue;
            }
            out.extend(
                tried
                    .shadowing(later)
                    .into_iter()
                    .filter_map(|i| tried.names.get(i))
                    .map(|earlier| (*earlier, later)),
            );
            tried.push(later);
        }
        out
    }

    /// [`proposed_order`] from `listed`, and whether it shadows nothing.
    fn proposal(
        &self,
        cx: &Context<'a>,
        listed: impl Iterator<Item = &'a str>,
    ) -> (Vec<&'a str>, bool) {
        let proposal = proposed_order(listed, cx.migration_names(), &self.detectable, &|a, b| {
            self.shadows(a, b)
        });
        let certain = self.shadowed_pairs(&proposal).is_empty();
        (proposal, certain)
    }
}

/// Detectable types in the order detection tries them, each once, indexed
/// by what their conditions need ([`Shape`]): the types that may shadow a
/// later one are found without trying every earlier type.
struct Tried<'d, 'a, 'o> {
    detection: &'d Detection<'a>,
    /// The types, in order.
    names: Vec<&'o str>,
    listed: FxHashSet<&'o str>,
    /// Key → the types (indexes into `names`, ascending) whose conditions
    /// need it.
    by_need: HashMap<u64, Vec<usize>>,
    /// The types whose conditions any condition may imply.
    anything: Vec<usize>,
}

impl<'d, 'a, 'o> Tried<'d, 'a, 'o> {
    fn new(detection: &'d Detection<'a>) -> Self {
        Tried {
            detection,
            names: Vec::new(),
            listed: FxHashSet::default(),
            by_need: HashMap::default(),
            anything: Vec::new(),
        }
    }

    fn has(&self, name: &str) -> bool {
        self.listed.contains(name)
    }

    /// Try `name` after the others.
    fn push(&mut self, name: &'o str) {
        let at = self.names.len();
        self.names.push(name);
        self.listed.insert(name);
        match self.detection.conditions.get(name).map(|(_, s)| &s.needs) {
            Some(Some(needs)) => {
                for k in needs {
                    self.by_need.entry(*k).or_default().push(at);
                }
            }
            Some(None) => self.anything.push(at),
            None => {}
        }
    }

    /// The tried types that shadow `later`, in the order they are tried.
    fn shadowing(&self, later: &str) -> Vec<usize> {
        let mut candidates = self.anything.clone();
        if let Some((_, shape)) = self.detection.conditions.get(later) {
            for k in &shape.offers {
                if let Some(at) = self.by_need.get(k) {
                    candidates.extend_from_slice(at);
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|&i| {
            self.names
                .get(i)
                .is_some_and(|earlier| self.detection.shadows(earlier, later))
        });
        candidates
    }
}

/// The migration type's block declares an item of this kind.
fn has(m: &Migration, f: fn(&MigrationItemKind) -> bool) -> bool {
    m.items.iter().any(|i| f(&i.kind))
}

/// The migration type's `to` item: its place and its target.
fn target(m: &Migration) -> Option<(Place, &Option<Expr>)> {
    m.items.iter().find_map(|i| match &i.kind {
        MigrationItemKind::To(t) => Some((i.span, t)),
        _ => None,
    })
}

/// PMF601: the `soft` migration is not declared `reversible`.
fn soft_not_reversible(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .migrations()
        .filter(|(_, m)| {
            m.name.name == "soft" && !has(m, |k| matches!(k, MigrationItemKind::Reversible))
        })
        .map(|(s, m)| {
            Diagnostic::new(Code::SoftNotReversible, &s.file, m.name.span, "soft migration is not declared `reversible`")
                .with_label("a soft migration must be reversible")
                .with_help("add `reversible` to the block; a change that cannot be undone is a guided or forced migration")
                .with_fixes(m.items.iter().map(|i| i.span).max_by_key(|s| s.end).map(|last| {
                    Fix::certain(
                        Place {
                            start: last.end,
                            end: last.end,
                        },
                        "\n  reversible",
                    )
                }))
        })
        .collect()
}

/// PMF602: the `fallback` migration targets a fixed version, or nothing.
fn fallback_not_previous_stable(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .migrations()
        .filter(|(_, m)| m.name.name == "fallback")
        .filter_map(|(s, m)| match target(m) {
            Some((_, None)) => None,
            Some((span, Some(_))) => Some(
                Diagnostic::new(Code::FallbackTarget, &s.file, span, "fallback targets a fixed version")
                    .with_label("not the previous stable state")
                    .with_help("write `to previous_stable`: a fallback returns each partner to its own last stable version")
                    .with_fix(Fix::certain(span, "to previous_stable")),
            ),
            None => Some(
                Diagnostic::new(Code::FallbackTarget, &s.file, m.name.span, "fallback migration does not say where it returns")
                    .with_label("no `to previous_stable`")
                    .with_help("add `to previous_stable`"),
            ),
        })
        .collect()
}

/// PMF605: a migration type with neither `when` nor `to`.
fn never_chosen(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .migrations()
        .filter(|(_, m)| {
            !has(m, |k| matches!(k, MigrationItemKind::When(_))) && target(m).is_none()
        })
        .map(|(s, m)| {
            Diagnostic::new(
                Code::NeverChosen,
                &s.file,
                m.name.span,
                format!(
                    "migration `{}` has no `when` and no `to`: it can never be chosen",
                    m.name.name
                ),
            )
            .with_label("never detected, never a fallback")
            .with_help(
                "add a detection condition `when ...`, or `to previous_stable` for a fallback",
            )
        })
        .collect()
}

/// PMF604: the detection order lists a type twice, or one with no `when`.
fn invalid_order_entries(
    cx: &Context<'_>,
    detection: &Detection<'_>,
    s: &Sourced,
    order: &Order,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut seen: HashMap<&str, &Ident> = HashMap::default();
    let mut previous = Place::default();
    for t in &order.types {
        let before = std::mem::replace(&mut previous, t.span);
        if let Some(first) = seen.get(t.name.as_str()) {
            let previous = before;
            out.push(
                Diagnostic::new(
                    Code::OrderInvalidEntry,
                    &s.file,
                    t.span,
                    format!("`{}` is listed twice in the detection order", t.name),
                )
                .with_label("listed again here")
                .with_secondary(&s.file, first.span, "first listed here")
                .with_help("list each migration type once: remove this entry")
                .with_fix(Fix::certain(
                    Place {
                        start: previous.end,
                        end: t.span.end,
                    },
                    "",
                )),
            );
            continue;
        }
        seen.insert(&t.name, t);
        if cx.has_migration(&t.name) && !detection.detectable.contains(&t.name.as_str()) {
            out.push(
                Diagnostic::new(
                    Code::OrderInvalidEntry,
                    &s.file,
                    t.span,
                    format!(
                        "`{}` has no `when` condition and cannot be detected",
                        t.name
                    ),
                )
                .with_label("never tried by detection")
                .with_help(format!(
                    "remove `{}` from the order, or give it a `when` condition",
                    t.name
                )),
            );
        }
    }
    out
}

/// PMF607: a type listed in the order that one tried before it shadows.
fn shadowed_migrations(detection: &Detection<'_>, s: &Sourced, order: &Order) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let detectable = &detection.detectable;
    let shadows = |earlier: &str, later: &str| detection.shadows(earlier, later);
    // Detectable types listed, in order, once each: a later one that
    // an earlier one shadows is never detected.
    let mut tried = Tried::new(detection);
    let mut tried_idents: Vec<&Ident> = Vec::new();
    for t in &order.types {
        let name = t.name.as_str();
        if !detectable.contains(&name) || tried.has(name) {
            continue;
        }
        let first = tried.shadowing(name).first().copied();
        if let Some(earlier) = first.and_then(|i| tried_idents.get(i)) {
            let mut d = Diagnostic::new(
                Code::ShadowedMigration,
                &s.file,
                t.span,
                format!(
                    "migration `{name}` can never be detected: `{}`, tried before it, holds whenever it does",
                    earlier.name
                ),
            )
            .with_label(format!("shadowed by `{}`", earlier.name))
            .with_secondary(&s.file, earlier.span, "tried first");
            let names: Vec<&str> = order.types.iter().map(|t| t.name.as_str()).collect();
            let mut moved: Vec<&str> = names.iter().copied().filter(|n| *n != name).collect();
            let at = moved
                .iter()
                .position(|n| *n == earlier.name.as_str())
                .unwrap_or(0);
            moved.insert(at, name);
            // The move helps when it shadows nothing new and leaves
            // nothing shadowing this type.
            let before = detection.shadowed_pairs(&names);
            let after = detection.shadowed_pairs(&moved);
            let helps = after.iter().all(|p| before.contains(p) && p.1 != name);
            if helps {
                d = d
                    .with_help(format!(
                        "try `{name}` before `{}`: `{}order {}`",
                        earlier.name,
                        if s.override_kw.is_some() {
                            "override "
                        } else {
                            ""
                        },
                        moved.join(", ")
                    ))
                    .with_fixes(list_fix(order, &moved));
            } else if shadows(name, &earlier.name) {
                d = d.with_help(format!(
                    "the two conditions hold together: narrow `{}`'s `when` so that it excludes `{name}`, or remove one of them",
                    earlier.name
                ));
            } else {
                d = d.with_help(format!(
                    "narrow `{}`'s `when` so that it excludes `{name}`, or try `{name}` first",
                    earlier.name
                ));
            }
            out.push(d);
        }
        tried.push(name);
        tried_idents.push(t);
    }
    out
}

/// PMF603: a type with a `when` condition that the detection order misses.
fn missing_from_order(
    cx: &Context<'_>,
    detection: &Detection<'_>,
    s: &Sourced,
    order: &Order,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let listed: FxHashSet<&str> = order.types.iter().map(|t| t.name.as_str()).collect();
    let (proposal, certain) = detection.proposal(cx, order.types.iter().map(|t| t.name.as_str()));
    for (ms, m) in cx.policy.migrations() {
        let name = m.name.name.as_str();
        if detection.detectable.contains(&name) && !listed.contains(name) {
            // Reported where the fix goes: at the migration, unless
            // it is inherited and this file's own order misses it.
            let at_order = s.file != ms.file && *s.file == *cx.policy.file;
            let inherited = s.file != ms.file && !at_order;
            let fix = if inherited {
                // A new `override order` after this declaration.
                Some(Fix {
                    span: Place {
                        start: ms.span.end,
                        end: ms.span.end,
                    },
                    replacement: format!("\n\noverride order {}", proposal.join(", ")),
                    machine_applicable: certain,
                })
            } else {
                list_fix(order, &proposal).map(|f| Fix {
                    machine_applicable: certain,
                    ..f
                })
            };
            let message = format!(
                "migration `{name}` has a `when` condition but is missing from the detection order"
            );
            let d = if at_order {
                Diagnostic::new(Code::OrderIncomplete, &s.file, s.name_span, message)
                    .with_label(format!("detection never tries `{name}`"))
                    .with_secondary(&ms.file, m.name.span, "declared here")
            } else {
                Diagnostic::new(Code::OrderIncomplete, &ms.file, m.name.span, message)
                    .with_label("detection never tries this type")
                    .with_secondary(&s.file, s.name_span, "the detection order")
            };
            out.push(
                d.with_help(format!(
                    "{}order {}`",
                    if inherited || s.override_kw.is_some() {
                        if inherited {
                            "the order is inherited: write `override "
                        } else {
                            "write `override "
                        }
                    } else {
                        "write `"
                    },
                    proposal.join(", ")
                ))
                .with_fixes(fix),
            );
        }
    }
    out
}

/// PMF603: two or more types have a `when` condition and no `order` says
/// which is tried first.
fn no_order(cx: &Context<'_>, detection: &Detection<'_>) -> Option<Diagnostic> {
    if detection.detectable.len() < 2 {
        return None;
    }
    let (proposal, certain) = detection.proposal(cx, std::iter::empty());
    // After the file's last declaration of its own.
    let own = cx.policy.file.as_str();
    let last = cx
        .policy
        .items
        .iter()
        .filter(|i| *i.file == *own)
        .map(|i| i.span.end)
        .max();
    let fix = last.map(|end| Fix {
        span: Place { start: end, end },
        replacement: format!("\n\norder {}", proposal.join(", ")),
        machine_applicable: certain,
    });
    Some(
        Diagnostic::new(
            Code::OrderIncomplete,
            &cx.policy.file,
            cx.policy.header_span,
            format!("{} migration types have `when` conditions but no `order` says which is tried first", detection.detectable.len()),
        )
        .with_label("detection order undefined")
        .with_help(format!("add `order {}`", proposal.join(", ")))
        .with_fixes(fix),
    )
}

/// The actions a rule of `kind` may take, and how messages name the rule.
fn rule_actions(kind: RuleKind) -> (&'static [&'static str], &'static str) {
    match kind {
        RuleKind::Compatibility => (&COMPATIBILITY_ACTIONS, "a compatibility rule"),
        RuleKind::Sustainability => (&SUSTAINABILITY_ACTIONS, "a sustainability rule"),
    }
}

/// PMF305: a compatibility or sustainability rule names no action.
fn unknown_rule_actions(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .rules()
        .filter_map(|(s, kind, rule)| unknown_action(&s.file, &rule.action, rule_actions(kind).0))
        .collect()
}

/// PMF606: a rule takes an action its block does not allow.
fn rule_actions_not_allowed(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.policy
        .rules()
        .filter_map(|(s, kind, rule)| {
            let (allowed, place) = rule_actions(kind);
            action_not_allowed(&s.file, &rule.action, allowed, place)
        })
        .collect()
}

/// The fix that replaces the list of `order` with `names`.
fn list_fix(order: &Order, names: &[&str]) -> Option<Fix> {
    let (first, last) = (order.types.first()?, order.types.last()?);
    Some(Fix::certain(first.span.cover(last.span), names.join(", ")))
}

/// A detection order that lists every detectable type once: the listed
/// ones in their order (a name that is not a detectable type replaced by
/// the missing type it is closest to, else dropped), then each missing type
/// where nothing before it shadows it (before the first type that would).
fn proposed_order<'a>(
    listed: impl Iterator<Item = &'a str>,
    declared: &[&'a str],
    detectable: &rustc_hash::FxHashSet<&'a str>,
    shadows: &impl Fn(&str, &str) -> bool,
) -> Vec<&'a str> {
    let mut missing: Vec<&str> = declared
        .iter()
        .copied()
        .filter(|n| detectable.contains(n))
        .collect();
    let listed: Vec<&str> = listed.collect();
    let listed_once: FxHashSet<&str> = listed.iter().copied().collect();
    missing.retain(|n| !listed_once.contains(n));
    missing.dedup();
    let mut out: Vec<&str> = Vec::new();
    let mut in_out: FxHashSet<&str> = FxHashSet::default();
    for name in listed {
        if in_out.contains(name) {
            continue;
        }
        if detectable.contains(&name) {
            out.push(name);
            in_out.insert(name);
        } else if let Some(c) = closest(name, missing.iter().copied()) {
            missing.retain(|m| *m != c);
            out.push(c);
            in_out.insert(c);
        }
    }
    for name in missing {
        match out.iter().position(|e| shadows(e, name)) {
            Some(at) => out.insert(at, name),
            None => out.push(name),
        }
    }
    out
}

/// True when `b` holding means that `a` holds (so a type with condition `a`
/// tried first leaves none to one with condition `b`), as far as that can
/// be told from the two conditions' shapes; false when it cannot.
pub(crate) fn implies(b: &Expr, a: &Expr) -> bool {
    if matches!(a.kind, ExprKind::Bool(true)) || same(a, b) {
        return true;
    }
    // `x and y and ...` holds only when every operand holds.
    if let ExprKind::Chain(BinaryOp::And, xs) = &b.kind
        && xs.iter().any(|x| implies(x, a))
    {
        return true;
    }
    match &a.kind {
        ExprKind::Chain(BinaryOp::And, xs) => xs.iter().all(|x| implies(b, x)),
        // `x or ...` holds when `x` does (the rest is not evaluated).
        ExprKind::Chain(BinaryOp::Or, xs) => xs.first().is_some_and(|x| implies(b, x)),
        ExprKind::Binary(BinaryOp::Compare(op_a), pa, ca) => match &b.kind {
            ExprKind::Binary(BinaryOp::Compare(op_b), pb, cb) if same(pa, pb) => {
                match (number(ca), number(cb)) {
                    (Some(ca), Some(cb)) => within(*op_b, cb, *op_a, ca),
                    _ => false,
                }
            }
            _ => false,
        },
        _ => false,
    }
}

fn number(e: &Expr) -> Option<f64> {
    match &e.kind {
        ExprKind::Number(n) => Some(n.0),
        _ => None,
    }
}

/// True when every `x` with `x op_b cb` has `x op_a ca`.
fn within(op_b: CompareOp, cb: f64, op_a: CompareOp, ca: f64) -> bool {
    use CompareOp::*;
    match (op_b, op_a) {
        (Eq, _) => match op_a {
            Eq => cb == ca,
            Ne => cb != ca,
            Lt => cb < ca,
            Le => cb <= ca,
            Gt => cb > ca,
            Ge => cb >= ca,
        },
        (Ge, Ge) | (Gt, Gt) | (Gt, Ge) => cb >= ca,
        (Ge, Gt) => cb > ca,
        (Le, Le) | (Lt, Lt) | (Lt, Le) => cb <= ca,
        (Le, Lt) => cb < ca,
        _ => false,
    }
}

/// What [`implies`] can match between two conditions, as hashes of their
/// shapes ([`shape_hash`]: equal for expressions that [`same`] finds
/// alike). `implies(b, a)` can hold only when `a`'s needs are `None` or
/// meet `b`'s offers: a quick test that rules out most pairs of conditions
/// without comparing them (it never rules out a pair that `implies` would
/// accept, so it changes no finding).
struct Shape {
    /// Keys one of which `b` must offer for `implies(b, a)` to hold; `None`
    /// when it may hold whatever `b` is.
    needs: Option<Vec<u64>>,
    /// The keys `b` offers, sorted.
    offers: Vec<u64>,
}

impl Shape {
    /// False when `implies(b, a)` cannot hold (`self` is `a`'s shape).
    fn may_be_implied_by(&self, b: &Shape) -> bool {
        self.needs
            .as_ref()
            .is_none_or(|needs| needs.iter().any(|k| b.offers.binary_search(k).is_ok()))
    }
}

/// The keys `b` offers: its own shape, the place it compares with a number
/// (when it does) and, for `x and y and ...`, what every operand offers
/// (each case of [`implies`] that can hold on `b` matches one of them).
fn offers(b: &Expr) -> Vec<u64> {
    fn walk(b: &Expr, out: &mut Vec<u64>) {
        out.push(shape_hash(b));
        match &b.kind {
            ExprKind::Binary(BinaryOp::Compare(_), p, c) if number(c).is_some() => {
                out.push(compared_hash(p));
            }
            ExprKind::Chain(BinaryOp::And, xs) => {
                for x in xs {
                    walk(x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(b, &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// The keys one of which a condition `b` must offer for `implies(b, a)` to
/// hold (`None`: it may hold whatever `b` is), following the cases of
/// [`implies`]; of the operands of `x and y and ...`, every one must be
/// implied, so the one whose keys are rarest (`frequency`) is taken.
fn needs(a: &Expr, frequency: &impl Fn(u64) -> usize) -> Option<Vec<u64>> {
    let mut out = match &a.kind {
        ExprKind::Bool(true) => return None,
        ExprKind::Chain(BinaryOp::And, xs) => xs
            .iter()
            .filter_map(|x| needs(x, frequency))
            .min_by_key(|n| n.iter().map(|k| frequency(*k)).sum::<usize>())?,
        ExprKind::Chain(BinaryOp::Or, xs) => match xs.first() {
            Some(x) => needs(x, frequency)?,
            None => Vec::new(),
        },
        ExprKind::Binary(BinaryOp::Compare(_), p, c) if number(c).is_some() => {
            vec![compared_hash(p)]
        }
        _ => Vec::new(),
    };
    out.push(shape_hash(a));
    Some(out)
}

/// A hash of an expression's shape: equal for two expressions that
/// [`same`] finds alike.
fn shape_hash(e: &Expr) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    hash_shape(e, &mut h);
    h.finish()
}

/// A hash of the place a comparison with a number compares.
fn compared_hash(p: &Expr) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    h.write_u8(0xc0);
    hash_shape(p, &mut h);
    h.finish()
}

fn hash_shape(e: &Expr, h: &mut rustc_hash::FxHasher) {
    std::mem::discriminant(&e.kind).hash(h);
    match &e.kind {
        ExprKind::Bool(x) => x.hash(h),
        ExprKind::Number(x) => x.hash(h),
        ExprKind::Str(x) | ExprKind::Version(x) => x.hash(h),
        ExprKind::Path(x) => {
            x.len().hash(h);
            for p in x {
                p.name.as_str().hash(h);
            }
        }
        ExprKind::Call(call) => {
            call.name.name.as_str().hash(h);
            hash_all(&call.args, h);
        }
        ExprKind::Set(xs) => hash_all(xs, h),
        ExprKind::Unary(o, x) => {
            o.hash(h);
            hash_shape(x, h);
        }
        ExprKind::Binary(o, x, y) => {
            o.hash(h);
            hash_shape(x, h);
            hash_shape(y, h);
        }
        ExprKind::Chain(o, xs) => {
            o.hash(h);
            hash_all(xs, h);
        }
        ExprKind::Error => {}
    }
}

fn hash_all(xs: &[Expr], h: &mut rustc_hash::FxHasher) {
    xs.len().hash(h);
    for x in xs {
        hash_shape(x, h);
    }
}

/// The two expressions are written alike (their places aside).
fn same(a: &Expr, b: &Expr) -> bool {
    match (&a.kind, &b.kind) {
        (ExprKind::Bool(x), ExprKind::Bool(y)) => x == y,
        (ExprKind::Number(x), ExprKind::Number(y)) => x == y,
        (ExprKind::Str(x), ExprKind::Str(y)) | (ExprKind::Version(x), ExprKind::Version(y)) => {
            x == y
        }
        (ExprKind::Path(x), ExprKind::Path(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| p.name == q.name)
        }
        (ExprKind::Call(f), ExprKind::Call(g)) => {
            let (x, y) = (&f.args, &g.args);
            f.name.name == g.name.name
                && x.len() == y.len()
                && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (ExprKind::Set(x), ExprKind::Set(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (ExprKind::Unary(o, x), ExprKind::Unary(p, y)) => o == p && same(x, y),
        (ExprKind::Binary(o, x1, x2), ExprKind::Binary(p, y1, y2)) => {
            o == p && same(x1, y1) && same(x2, y2)
        }
        (ExprKind::Chain(o, x), ExprKind::Chain(p, y)) => {
            o == p && x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{Shape, implies, needs, offers};
    use pmf_syntax::ast::{DeclKind, Expr, MigrationItemKind};

    /// The `when` of a migration whose condition is `text`.
    fn when(text: &str) -> Expr {
        let source = format!("policy p\nmigration m \"M\" {{\n  when {text}\n}}\n");
        let parsed = pmf_syntax::parse("t.pmf", &source);
        assert!(
            parsed.diagnostics.is_empty(),
            "{text}: {:?}",
            parsed.diagnostics
        );
        parsed
            .ast
            .decls
            .iter()
            .find_map(|d| match &d.kind {
                DeclKind::Migration(m) => m.items.iter().find_map(|i| match &i.kind {
                    MigrationItemKind::When(e) => Some((**e).clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no when in {text}"))
    }

    #[test]
    fn a_later_condition_is_shadowed_only_when_it_implies_the_earlier() {
        let cases = [
            // (later, earlier, shadowed)
            ("partner.power > 3", "true", true),
            ("partner.power > 3", "partner.power > 3", true),
            ("partner.power > 3 and compatible", "compatible", true),
            (
                "compatible and partner.power > 3",
                "partner.power > 3",
                true,
            ),
            ("partner.power >= 20", "partner.power >= 10", true),
            ("partner.power > 10", "partner.power >= 10", true),
            ("partner.power == 4", "partner.power < 5", true),
            ("partner.power <= 2", "partner.power < 3", true),
            ("compatible", "compatible or sustainable", true),
            (
                "compatible and sustainable",
                "sustainable and compatible",
                true,
            ),
            // Not implied, or not decidable from the shapes.
            ("partner.power >= 10", "partner.power >= 20", false),
            ("partner.power >= 10", "partner.power > 10", false),
            ("partner.power < 3", "partner.power <= 2", false),
            ("compatible", "sustainable or compatible", false),
            ("compatible or sustainable", "compatible", false),
            ("compatible", "compatible and sustainable", false),
            ("target.power > 3", "partner.power > 3", false),
            ("partner.power != 3", "partner.power > 3", false),
        ];
        for (later, earlier, shadowed) in cases {
            assert_eq!(
                implies(&when(later), &when(earlier)),
                shadowed,
                "`{later}` after `{earlier}`"
            );
        }
    }

    fn shape(e: &Expr) -> Shape {
        Shape {
            needs: needs(e, &|_| 0),
            offers: offers(e),
        }
    }

    #[test]
    fn the_quick_test_of_shapes_never_rules_out_an_implication() {
        let conditions = [
            "true",
            "true and true",
            "partner.power > 3",
            "partner.power >= 10",
            "partner.power >= 20",
            "partner.power > 10",
            "partner.power == 4",
            "partner.power < 5",
            "partner.power <= 2",
            "partner.power != 3",
            "target.power > 3",
            "compatible",
            "sustainable",
            "compatible and sustainable",
            "sustainable and compatible",
            "compatible or sustainable",
            "sustainable or compatible",
            "(compatible or sustainable) and partner.power > 3",
            "compatible and partner.power > 3",
            "partner.power > 3 and compatible",
            "true and compatible",
            "compatible and (true or sustainable)",
            "not compatible or target.version < partner.version",
            "target.version.major > partner.version.major",
            "len(partner.strands) > 2 and \"a\" in partner.strands",
            "len(partner.strands) >= 3",
        ];
        let exprs: Vec<Expr> = conditions.iter().map(|c| when(c)).collect();
        let mut implied = 0;
        for (a, ta) in exprs.iter().zip(conditions) {
            for (b, tb) in exprs.iter().zip(conditions) {
                if implies(b, a) {
                    implied += 1;
                    assert!(
                        shape(a).may_be_implied_by(&shape(b)),
                        "`{tb}` implies `{ta}` but the shapes rule it out"
                    );
                }
            }
        }
        // The cases are not all trivial: many pairs imply each other.
        assert!(implied > conditions.len() * 2, "{implied}");
    }
}
