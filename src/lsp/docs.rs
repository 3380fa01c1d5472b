//! Short Markdown documentation of the language's words: keywords, types,
//! roots, built-in names, functions, actions and validation dimensions, for
//! hover and completion. The long form is `docs/language.md`.

/// The documentation of keyword `word`, if it is one.
pub fn keyword(word: &str) -> Option<&'static str> {
    Some(match word {
        "policy" => {
            "`policy NAME [extends PARENT, ...]`\n\nNames the policy and lists its parents. `extends kwanus` builds on the standard library; any other parent is a policy among the files checked together."
        }
        "extends" => {
            "`extends PARENT, ...`\n\nThe parent policies: their declarations are fused into this one (composition by key; redefining an inherited key needs `override`)."
        }
        "override" => {
            "`override DECLARATION`\n\nReplaces what a parent declared under the same composition key. Required to redefine an inherited key (PMF702), forbidden for a key no parent has (PMF703) and before `key` (keys are additive, PMF704)."
        }
        "authority" => {
            "`authority NAME [\"Long name\"] [governs CATEGORY, ...]`\n\nA governing authority: it governs migration categories and approves migrations that touch them."
        }
        "governs" => {
            "`governs CATEGORY, ...`\n\nThe categories an authority governs. Every category is governed by exactly one authority (PMF401, PMF402)."
        }
        "category" => {
            "`category NAME [\"Long name\"] [covers FIELD.PATH, ...]`\n\nA migration category: a dimension of change. A migration touches it when one of the covered partner fields changes."
        }
        "covers" => {
            "`covers FIELD.PATH, ...`\n\nThe partner fields whose change puts a migration in this category."
        }
        "partner" => {
            "`partner { NAME: TYPE ... }` declares fields of the partner schema.\n\nIn an expression, `partner.F` is field `F` of the partner's state before the migration."
        }
        "target" => "`target.F`: field `F` of the desired state (typed by the partner schema).",
        "observed" => {
            "`observed.F`: field `F` as measured after transition (typed by the partner schema)."
        }
        "migration" => {
            "`migration NAME [\"Long name\"] { items }`\n\nA migration type: its detection condition (`when`) and requirements (`reversible`, `backward_compatible`, `requires mapping`, `approve by`, `touches`, `to`)."
        }
        "when" => {
            "`when EXPR`\n\nThe detection condition of a migration type (a `bool`): the type applies when it holds."
        }
        "reversible" => {
            "`reversible`\n\nA migration of this type can be undone. A type named `soft` must be reversible (PMF601)."
        }
        "backward_compatible" => {
            "`backward_compatible`\n\nThe target stays compatible with what used the partner before."
        }
        "requires" | "mapping" => {
            "`requires mapping`\n\nA compatibility mapping must exist before transition."
        }
        "approve" | "by" => {
            "`approve by governing` or `approve by AUTHORITY, ...`\n\nWho must approve a migration of this type: every authority governing a touched category, or exactly the listed ones."
        }
        "governing" => {
            "`approve by governing`\n\nEvery authority that governs a category the migration touches must approve."
        }
        "touches" => {
            "`touches CATEGORY, ...`\n\nThe categories a migration of this type may touch (default: all)."
        }
        "to" => {
            "`to previous_stable` or `to VERSION`\n\nWhere the migration goes: back to the partner's previous stable state (a fallback), or to a fixed version."
        }
        "previous_stable" => {
            "`to previous_stable`\n\nThe migration returns the partner to its previous stable state. A type named `fallback` must say it (PMF602)."
        }
        "order" => {
            "`order TYPE, ...`\n\nThe detection order: the migration types with a `when`, first tried first. Detection takes the first whose condition holds."
        }
        "compatibility" => {
            "`compatibility { NAME: EXPR else ACTION ... }`\n\nRules that must hold between partner and target; actions `fallback` or `restrict`. `compatible` is true when every rule holds."
        }
        "sustainability" => {
            "`sustainability { NAME: EXPR else ACTION ... }`\n\nRules that keep the ecosystem healthy while metrics are observed; actions `forced` or `throttle`. `sustainable` is true when every rule holds."
        }
        "else" => "`EXPR else ACTION`\n\nThe action taken when the rule does not hold.",
        "validation" => {
            "`validation { DIMENSION { NAME: EXPR ... } ... }`\n\nChecks, by dimension, that must pass before stabilization. Dimensions: `version`, `structure`, `capability`, `permission`, `workflow`, `intelligence`."
        }
        "health" => {
            "`health { factor ... band ... }`\n\nThe weighted health score (weights sum to 1) and the score bands (together covering 0..=100 exactly once)."
        }
        "factor" => {
            "`factor NAME weight W from EXPR`\n\nA weighted part of the health score; `EXPR` is a number or score."
        }
        "weight" => {
            "`weight W`\n\nThe factor's weight in the health score: not negative; all weights sum to 1."
        }
        "from" => "`from EXPR`\n\nWhere a health factor's value comes from (a number or score).",
        "band" => {
            "`band LOW..=HIGH STATUS [\"Status\"] -> ACTION [\"Label\"]`\n\nA range of health scores, its status and the action taken."
        }
        "flow" => {
            "`flow NAME { phase ... edges ... }`\n\nThe phases of a migration and the edges between them. The six seed phases are required; every phase is reachable from `detection` and reaches `continuity`."
        }
        "phase" => "`phase NAME [fallible] [\"description\"]`\n\nA phase of the flow.",
        "fallible" => {
            "`fallible`\n\nThe phase can fail: it needs a failure edge (`NAME fail -> OTHER`, PMF505)."
        }
        "fail" => "`A fail -> B`\n\nA failure edge: taken when the fallible phase `A` fails.",
        "max" => {
            "`A -> B max N`\n\nThe edge may be taken at most `N` times for one partner; every cycle needs a bounded edge (PMF506).\n\nAs a function, `max(a, b)` is the larger of two numbers."
        }
        "ceiling" => {
            "`ceiling FIELD.PATH (< | <=) VALUE`\n\nAn upper bound on an ordered partner field (version, number or score), enforced when a plan is made and applied."
        }
        "rite" => {
            "`rite PHASE \"words\"`\n\nThe words spoken when a partner enters `PHASE` (or `release`, when an old version is released)."
        }
        "key" => {
            "`key AUTHORITY \"ed25519:<64 hex digits>\" [\"label\"]`\n\nA public key that signs approvals for `AUTHORITY`: the trust root of `pmf approve` and `pmf apply`. Keys are additive (a policy trusts its parents' keys and its own); a key signs for one authority (PMF407). Only the public key goes here, never the private key."
        }
        "release" => {
            "`rite release \"words\"`\n\nThe rite spoken when an old version is released (not a phase)."
        }
        "and" => "`a and b`: both hold (`bool`).",
        "or" => "`a or b`: either holds (`bool`).",
        "not" => "`not a`: negation (`bool`); `x not in s`: `x` is not an element of the set `s`.",
        "in" => "`x in s`: `x` is an element of the set `s`.",
        "true" | "false" => "A `bool` literal.",
        _ => return builtin(word).or_else(|| type_doc(word)),
    })
}

/// The documentation of a type name.
pub fn type_doc(word: &str) -> Option<&'static str> {
    Some(match word {
        "bool" => "`bool`: `true` or `false`; `and`, `or`, `not`, `==`, `!=`.",
        "number" => "`number`: any number; arithmetic and comparison.",
        "score" => {
            "`score`: a number in 0–100; as `number` (comparing with a literal outside 0–100 is PMF203)."
        }
        "string" => "`string`: text; `==`, `!=`, `in`.",
        "version" => {
            "`version`: a semantic version; compared in semver order; `.major`, `.minor`, `.patch` are numbers."
        }
        "set" => {
            "`set<T>`: a set of `T`; `in`, `not in`, `+` (union), `-` (difference), `<=` (subset), `>=` (superset), `len(...)`."
        }
        _ => return None,
    })
}

/// The documentation of a root, built-in name or function.
pub fn builtin(word: &str) -> Option<&'static str> {
    Some(match word {
        "compatible" => "`compatible`: `bool`, true when every compatibility rule holds.",
        "sustainable" => "`sustainable`: `bool`, true when every sustainability rule holds.",
        "len" => "`len(s: set<T>) -> number`: the number of elements of `s`.",
        "min" => "`min(a: number, b: number) -> number`: the smaller.",
        "abs" => "`abs(n: number) -> number`: the absolute value.",
        _ => return None,
    })
}

/// The documentation of a runtime action.
pub fn action(word: &str) -> Option<&'static str> {
    use crate::model::vocabulary::{Action, FORCED, FORCED_DOC};
    match word {
        FORCED => Some(FORCED_DOC),
        _ => Action::parse(word).map(Action::doc),
    }
}

/// The documentation of a validation dimension.
pub fn dimension(word: &str) -> Option<&'static str> {
    Some(match word {
        "version" => "Validation dimension `version`: the partner reached the target version.",
        "structure" => "Validation dimension `structure`: the partner's structure and identity.",
        "capability" => "Validation dimension `capability`: what the partner can do.",
        "permission" => "Validation dimension `permission`: what the partner may do.",
        "workflow" => "Validation dimension `workflow`: the partner's workflows resumed.",
        "intelligence" => "Validation dimension `intelligence`: how the partner reasons.",
        _ => return None,
    })
}

/// Keywords that start a top-level declaration, with a one-line summary
/// (for completion).
pub const TOP_LEVEL: [(&str, &str); 15] = [
    ("policy", "policy NAME extends PARENT"),
    ("override", "override DECLARATION"),
    ("authority", "authority NAME \"title\" governs CATEGORY"),
    ("category", "category NAME \"title\" covers FIELD"),
    ("partner", "partner { NAME: TYPE }"),
    ("migration", "migration NAME \"title\" { ... }"),
    ("order", "order TYPE, TYPE"),
    ("compatibility", "compatibility { NAME: EXPR else ACTION }"),
    (
        "sustainability",
        "sustainability { NAME: EXPR else ACTION }",
    ),
    ("validation", "validation { DIMENSION { NAME: EXPR } }"),
    ("health", "health { factor ... band ... }"),
    ("flow", "flow NAME { phase ... edges }"),
    ("ceiling", "ceiling FIELD <= VALUE"),
    ("rite", "rite PHASE \"words\""),
    ("key", "key AUTHORITY \"ed25519:...\" \"label\""),
];

/// The items of a migration block (for completion).
pub const MIGRATION_ITEMS: [&str; 8] = [
    "when",
    "reversible",
    "backward_compatible",
    "requires mapping",
    "approve by governing",
    "approve by",
    "touches",
    "to previous_stable",
];
