//! The runtime's vocabulary, shared by the checks, the runtime, the store's
//! records, the tests and the language server: one enum each for the
//! actions a partner can be given, the verdicts of validation and the
//! outcomes a partner can end with. The lists the checks accept are made
//! from these enums, so a name exists everywhere or nowhere.

use serde::{Deserialize, Serialize};

/// The names (`as_str`) of a list of enum values, as a constant array of
/// `$n` names. Evaluated at compile time: an index out of bounds fails the
/// build, never a run.
macro_rules! names_of {
    ($all:expr, $n:literal) => {{
        let all = $all;
        let mut out = [""; $n];
        let mut i = 0;
        #[allow(clippy::indexing_slicing)]
        while i < all.len() {
            out[i] = all[i].as_str();
            i += 1;
        }
        out
    }};
}

/// What happens to a partner, from mildest to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing to migrate.
    None,
    /// Go ahead.
    Proceed,
    /// Go ahead under standard monitoring.
    Monitor,
    /// Pause until governance reviews it.
    Review,
    /// Slow down: paused until the ecosystem recovers.
    Throttle,
    /// Return to the previous stable state.
    Fallback,
    /// Block the migration and restrict the partner.
    Restrict,
}

impl Action {
    /// Every action, in order of severity: `ALL[a as usize] == a` (a test
    /// holds it, and fails to compile when a variant is added).
    pub const ALL: [Action; 7] = [
        Action::None,
        Action::Proceed,
        Action::Monitor,
        Action::Review,
        Action::Throttle,
        Action::Fallback,
        Action::Restrict,
    ];

    /// The action named `name` in a policy (`none` and `forced` are not
    /// actions a policy gives a partner).
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL
            .into_iter()
            .find(|a| *a != Action::None && a.as_str() == name)
    }

    /// The action as written in a policy.
    pub const fn as_str(self) -> &'static str {
        match self {
            Action::None => "none",
            Action::Proceed => "proceed",
            Action::Monitor => "monitor",
            Action::Review => "review",
            Action::Throttle => "throttle",
            Action::Fallback => "fallback",
            Action::Restrict => "restrict",
        }
    }
}

impl Action {
    /// What the action does, in one line (hover and completion).
    pub const fn doc(self) -> &'static str {
        match self {
            Action::None => "`none`: nothing to migrate (the partner is at its target).",
            Action::Proceed => "`proceed`: the migration goes on (health bands).",
            Action::Monitor => {
                "`monitor`: the migration goes on under standard monitoring (health bands)."
            }
            Action::Review => "`review`: the migration waits for a review (health bands).",
            Action::Throttle => {
                "`throttle`: the migration is slowed (sustainability rules, health bands)."
            }
            Action::Fallback => "`fallback`: the partner returns to its previous stable state.",
            Action::Restrict => {
                "`restrict`: the partner continues, restricted (compatibility rules, health bands)."
            }
        }
    }
}

/// What [`FORCED`] does, in one line.
pub const FORCED_DOC: &str =
    "`forced`: the migration becomes a forced migration (sustainability rules only).";

/// `forced`: a sustainability rule's action that forces a fallback when it
/// fails (not an action a partner is given).
pub const FORCED: &str = "forced";

/// Every action a policy may name: the partner actions (`none` aside) and
/// [`FORCED`].
// Evaluated at compile time: an index out of bounds fails the build.
#[allow(clippy::indexing_slicing)]
pub const ACTIONS: [&str; 7] = {
    let mut out = [FORCED; 7];
    let mut i = 1;
    while i < Action::ALL.len() {
        out[i - 1] = Action::ALL[i].as_str();
        i += 1;
    }
    out
};

/// What a test may expect as the action (`expect action A`): every
/// [`Action`], `none` for nothing to migrate.
pub const TEST_ACTIONS: [&str; 7] = names_of!(Action::ALL, 7);

/// The phases the runtime gives a meaning to: the six seed phases, in
/// flow order, and `fallback`. A flow may declare other phases; a walk
/// passes through them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// A migration type is detected (or none is).
    Detection,
    /// Approvals are checked.
    Preparation,
    /// Compatibility and ceilings are checked; the partner is staged.
    Transition,
    /// Validation checks run.
    Validation,
    /// Health is scored into a band.
    Stabilization,
    /// The partner resumes: the walk ends.
    Continuity,
    /// The partner returns to its previous stable state.
    Fallback,
}

impl Phase {
    /// The seed's six phases, in flow order.
    pub(crate) const SEED: [Phase; 6] = [
        Phase::Detection,
        Phase::Preparation,
        Phase::Transition,
        Phase::Validation,
        Phase::Stabilization,
        Phase::Continuity,
    ];

    /// Every phase with a meaning.
    pub const ALL: [Phase; 7] = [
        Phase::Detection,
        Phase::Preparation,
        Phase::Transition,
        Phase::Validation,
        Phase::Stabilization,
        Phase::Continuity,
        Phase::Fallback,
    ];

    /// The phase's name in a flow.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Detection => "detection",
            Phase::Preparation => "preparation",
            Phase::Transition => "transition",
            Phase::Validation => "validation",
            Phase::Stabilization => "stabilization",
            Phase::Continuity => "continuity",
            Phase::Fallback => "fallback",
        }
    }

    /// The phase called `name`, if the runtime gives it a meaning.
    pub fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// The names of the six seed phases, in flow order.
pub const SEED_PHASES: [&str; 6] = names_of!(Phase::SEED, 6);

/// The verdict of one validation check, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The check holds.
    Passed,
    /// The data it needs was not observed.
    Inconclusive,
    /// It could not be evaluated (such as a division by zero).
    Error,
    /// The check does not hold.
    Failed,
}

impl Verdict {
    /// Every verdict, from best to worst.
    pub const ALL: [Verdict; 4] = [
        Verdict::Passed,
        Verdict::Inconclusive,
        Verdict::Error,
        Verdict::Failed,
    ];

    /// As printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Error => "error",
            Verdict::Failed => "failed",
        }
    }
}

/// Validation verdicts a test may expect (`expect validation V`).
pub const TEST_VERDICTS: [&str; 4] = names_of!(Verdict::ALL, 4);

/// Where a partner ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerOutcome {
    /// Already at its target.
    Unchanged,
    /// Migrated and resumed (continuity).
    Completed,
    /// Returned to its previous stable state.
    FellBack,
    /// Blocked and restricted.
    Restricted,
    /// Paused for governance review.
    AwaitingReview,
    /// Paused until the ecosystem recovers.
    Throttled,
}

impl PartnerOutcome {
    /// Every outcome.
    pub const ALL: [PartnerOutcome; 6] = [
        PartnerOutcome::Unchanged,
        PartnerOutcome::Completed,
        PartnerOutcome::FellBack,
        PartnerOutcome::Restricted,
        PartnerOutcome::AwaitingReview,
        PartnerOutcome::Throttled,
    ];

    /// As stored and printed.
    pub const fn as_str(self) -> &'static str {
        match self {
            PartnerOutcome::Unchanged => "unchanged",
            PartnerOutcome::Completed => "completed",
            PartnerOutcome::FellBack => "fell_back",
            PartnerOutcome::Restricted => "restricted",
            PartnerOutcome::AwaitingReview => "awaiting_review",
            PartnerOutcome::Throttled => "throttled",
        }
    }

    /// Final outcomes are not retried by a re-run of the same plan.
    pub const fn is_final(self) -> bool {
        !matches!(
            self,
            PartnerOutcome::AwaitingReview | PartnerOutcome::Throttled
        )
    }

    /// Partner status after this outcome.
    pub const fn status(self) -> &'static str {
        match self {
            PartnerOutcome::Restricted => "restricted",
            PartnerOutcome::AwaitingReview => "awaiting_review",
            PartnerOutcome::Throttled => "throttled",
            _ => "active",
        }
    }

    /// The outcome stored as `s`.
    pub fn parse(s: &str) -> Option<PartnerOutcome> {
        PartnerOutcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

/// Where a test may expect a partner to end (`expect outcome O`).
pub const TEST_OUTCOMES: [&str; 6] = names_of!(PartnerOutcome::ALL, 6);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_is_made_of_its_enum_in_order() {
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(*a as usize, i);
            assert_eq!(TEST_ACTIONS[i], a.as_str());
        }
        assert_eq!(
            ACTIONS,
            [
                "proceed", "monitor", "review", "throttle", "fallback", "restrict", "forced"
            ]
        );
        assert_eq!(Action::parse("none"), None);
        assert_eq!(Action::parse("review"), Some(Action::Review));
        assert_eq!(TEST_VERDICTS, ["passed", "inconclusive", "error", "failed"]);
        assert_eq!(
            SEED_PHASES,
            [
                "detection",
                "preparation",
                "transition",
                "validation",
                "stabilization",
                "continuity"
            ]
        );
        for p in Phase::ALL {
            assert_eq!(Phase::parse(p.as_str()), Some(p));
        }
        for o in PartnerOutcome::ALL {
            assert_eq!(PartnerOutcome::parse(o.as_str()), Some(o));
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
        for a in Action::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }
}
