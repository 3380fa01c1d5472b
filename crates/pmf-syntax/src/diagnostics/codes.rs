//! The registry of diagnostic codes. Every code has a page
//! `docs/codes/CODE.md`, embedded in the binary for `pmf explain`.

use super::Severity;

macro_rules! codes {
    ($( $variant:ident = $id:literal, $sev:ident, $family:literal, $summary:literal; )*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $(
                #[doc = $summary]
                $variant,
            )*
        }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as printed, such as `PMF303`.
            pub fn id(self) -> &'static str {
                match self { $(Code::$variant => $id,)* }
            }

            /// Severity unless configured otherwise.
            pub fn default_severity(self) -> Severity {
                match self { $(Code::$variant => Severity::$sev,)* }
            }

            /// The family of checks the code belongs to.
            pub fn family(self) -> &'static str {
                match self { $(Code::$variant => $family,)* }
            }

            /// One-line summary.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }

            /// The code's documentation page (Markdown).
            pub fn page(self) -> &'static str {
                match self {
                    $(Code::$variant => include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/codes/", $id, ".md")),)*
                }
            }
        }
    };
}

codes! {
    SyntaxError = "PMF001", Error, "syntax", "syntax error";
    NestingTooDeep = "PMF002", Error, "syntax", "expression or block nested too deeply";
    MissingHeader = "PMF003", Error, "syntax", "missing or misplaced `policy` header";
    Unterminated = "PMF004", Error, "syntax", "unterminated comment or string";
    UnreadableFile = "PMF005", Error, "files", "file cannot be read";
    HiddenCharacter = "PMF006", Error, "syntax", "hidden control or text-direction character";

    DuplicateDeclaration = "PMF101", Error, "names", "duplicate declaration";
    UnknownCategory = "PMF102", Error, "names", "unknown category";
    UnknownAuthority = "PMF103", Error, "names", "unknown authority";
    UnknownPhase = "PMF104", Error, "names", "unknown phase";
    UnknownMigration = "PMF105", Error, "names", "unknown migration type";
    UnknownField = "PMF106", Error, "names", "unknown field";
    UnknownIdentifier = "PMF107", Error, "names", "unknown identifier or function";
    UnknownParent = "PMF108", Error, "names", "unknown parent policy";
    CyclicExtends = "PMF109", Error, "names", "policy extends itself";
    UnknownDimension = "PMF110", Error, "names", "unknown validation dimension";
    UnknownExpectation = "PMF111", Error, "names", "test expects a band, action, outcome or verdict that does not exist";
    UnknownFixture = "PMF112", Error, "names", "unknown fixture";
    CyclicFixture = "PMF113", Error, "names", "fixture refines itself";
    StandardLibraryReplaced = "PMF114", Warning, "names", "a policy replaces the standard library";

    TypeMismatch = "PMF201", Error, "types", "operator or value of the wrong type";
    ConditionNotBool = "PMF202", Error, "types", "condition is not a boolean";
    ScoreOutOfRange = "PMF203", Error, "types", "score outside 0–100";
    MalformedVersion = "PMF204", Error, "types", "malformed version literal";
    WrongArity = "PMF205", Error, "types", "wrong number of arguments";
    UnknownType = "PMF206", Error, "types", "unknown type";
    TestStateMismatch = "PMF207", Error, "types", "test state does not fit the partner schema";

    NegativeWeight = "PMF301", Error, "health", "negative health weight";
    WeightsDoNotSumToOne = "PMF302", Error, "health", "health weights do not sum to 1";
    BandGap = "PMF303", Error, "health", "health bands leave a gap";
    BandOverlap = "PMF304", Error, "health", "health bands overlap";
    UnknownAction = "PMF305", Error, "health", "unknown action";
    InvalidBand = "PMF306", Error, "health", "band bounds outside 0..=100 or reversed";
    MissingHealth = "PMF307", Error, "health", "policy has no health block";

    UngovernedCategory = "PMF401", Error, "governance", "category governed by no authority";
    DoublyGovernedCategory = "PMF402", Error, "governance", "category governed by more than one authority";
    ApproverGovernsNothingTouched = "PMF403", Error, "governance", "approver governs none of the categories the migration can touch";
    MissingApprover = "PMF404", Error, "governance", "touched category has no approving authority";
    MalformedKey = "PMF405", Error, "governance", "malformed authority key";
    DuplicateKey = "PMF406", Error, "governance", "key declared twice for an authority";
    KeyOfTwoAuthorities = "PMF407", Error, "governance", "one key declared for two authorities";

    MissingSeedPhase = "PMF501", Error, "flow", "flow lacks a seed phase";
    UnreachablePhase = "PMF502", Error, "flow", "phase unreachable from detection";
    ContinuityUnreachable = "PMF503", Error, "flow", "continuity unreachable from phase";
    StabilizationNotValidated = "PMF504", Error, "flow", "stabilization not dominated by validation";
    MissingFailureEdge = "PMF505", Error, "flow", "fallible phase without a failure edge";
    UnboundedCycle = "PMF506", Error, "flow", "cycle without a bound";
    MissingFlow = "PMF507", Error, "flow", "policy has no flow";

    SoftNotReversible = "PMF601", Error, "migrations", "soft migration is not reversible";
    FallbackTarget = "PMF602", Error, "migrations", "fallback does not target the previous stable state";
    OrderIncomplete = "PMF603", Error, "migrations", "detection order undefined or incomplete";
    OrderInvalidEntry = "PMF604", Error, "migrations", "detection order lists a type twice or one that cannot be detected";
    NeverChosen = "PMF605", Error, "migrations", "migration type can never be chosen";
    ActionNotAllowed = "PMF606", Error, "migrations", "action not allowed here";
    ShadowedMigration = "PMF607", Warning, "migrations", "migration type shadowed by one tried before it";

    ParentConflict = "PMF701", Error, "composition", "parents define the same declaration differently";
    OverrideRequired = "PMF702", Error, "composition", "redefinition of a parent's declaration without `override`";
    NothingToOverride = "PMF703", Error, "composition", "`override` of a declaration no parent has";
    OverrideOfKey = "PMF704", Error, "composition", "`override` of a key";

    CeilingField = "PMF801", Error, "ceilings", "ceiling on a field that has no order";
    CeilingOperator = "PMF802", Error, "ceilings", "ceiling is not an upper bound";
    CeilingValue = "PMF803", Error, "ceilings", "ceiling value of the wrong type";

    MissingRite = "PMF901", Warning, "lints", "phase without a rite";
    UnusedDeclaration = "PMF902", Warning, "lints", "unused declaration";
    DimensionNotCovered = "PMF903", Warning, "lints", "validation dimension without checks";
    UnknownCodeInConfig = "PMF904", Error, "lints", "unknown code in `pmf.toml` or a suppression";
    SuppressionWithoutReason = "PMF905", Error, "lints", "suppression without a reason";
    ErrorNotSilenceable = "PMF906", Error, "lints", "an error cannot be silenced";
    UnknownSettingInConfig = "PMF907", Error, "lints", "unknown setting in `pmf.toml`";
}

impl Code {
    /// Whether `pmf.toml` or a `// pmf-allow` suppression may turn the
    /// code off or make it a warning: only the codes that are warnings
    /// unless configured otherwise. An error says the policy does not
    /// mean what it seems to (a ceiling of the wrong type bounds nothing),
    /// so it is never silenced: a policy with one is never planned.
    pub fn can_be_silenced(self) -> bool {
        self.default_severity() == Severity::Warning
    }

    /// The code whose id is `id` (case-insensitive).
    pub fn from_id(id: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.id().eq_ignore_ascii_case(id))
    }
}
