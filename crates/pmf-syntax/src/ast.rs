//! The syntax tree of one `.pmf` file. Every node carries its byte span.
//!
//! The tree is plain data: it knows nothing of salsa, the checker, the runtime
//! or the language server.

use std::sync::Arc;

pub use compact_str::CompactString;

use super::span::Place;

/// A name as written in the source.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Ident {
    /// The name's text (stored inline when short: names rarely need the heap).
    pub name: CompactString,
    /// Where it was written.
    pub span: Place,
}

/// A string literal (escapes resolved).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct StrLit {
    /// The unescaped value.
    pub value: String,
    /// Where it was written, quotes included.
    pub span: Place,
}

/// A numeric literal, compared bit for bit so the tree can be `Eq`.
#[derive(Clone, Copy, Debug)]
pub struct Number(pub f64);

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}
impl Eq for Number {}
impl std::hash::Hash for Number {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state)
    }
}

/// A numeric literal with its span.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NumLit {
    /// The value.
    pub value: Number,
    /// Where it was written.
    pub span: Place,
}

/// A parsed file: the header, the declarations and the comments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SourceAst {
    /// Every declaration in source order (the header included).
    pub decls: Vec<Decl>,
    /// Every comment, in source order (kept for the formatter).
    pub comments: Vec<Comment>,
}

impl SourceAst {
    /// The first `policy` header of the file, if any.
    pub fn header(&self) -> Option<&PolicyHeader> {
        self.decls.iter().find_map(|d| match &d.kind {
            DeclKind::Policy(h) => Some(h),
            _ => None,
        })
    }
}

/// A comment and its span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    /// The comment text, delimiters included.
    pub text: String,
    /// Where it was written.
    pub span: Place,
}

/// One top-level declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decl {
    /// `override` keyword span, when the declaration replaces a parent's.
    pub override_kw: Option<Place>,
    /// What is declared.
    pub kind: DeclKind,
    /// The whole declaration.
    pub span: Place,
}

/// The kinds of top-level declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeclKind {
    /// `policy NAME extends A, B`
    Policy(PolicyHeader),
    /// `authority NAME "title" governs c1, c2`
    Authority(Authority),
    /// `category NAME "title" covers field, field`
    Category(Category),
    /// `partner { field: type ... }`
    Partner(Schema),
    /// `migration NAME "title" { items }`
    Migration(Migration),
    /// `order a, b, c`
    Order(Order),
    /// `compatibility { rules }` or `sustainability { rules }`
    Rules(RuleBlock),
    /// `validation { dimension { checks } }`
    Validation(Validation),
    /// `health { factors and bands }`
    Health(Health),
    /// `flow NAME { phases and edges }`
    Flow(Flow),
    /// `ceiling field < value`
    Ceiling(Ceiling),
    /// `rite phase "words"`
    Rite(Rite),
    /// `key AUTHORITY "ed25519:..." "label"`
    Key(Key),
    /// `test "name" { ... }`: a test of the policy, run by `pmf test`.
    Test(TestDecl),
    /// `fixture NAME [like BASE] { ... }`: a named record for tests.
    Fixture(FixtureDecl),
}

impl DeclKind {
    /// The keyword that introduces this declaration.
    pub fn keyword(&self) -> &'static str {
        match self {
            DeclKind::Policy(_) => "policy",
            DeclKind::Authority(_) => "authority",
            DeclKind::Category(_) => "category",
            DeclKind::Partner(_) => "partner",
            DeclKind::Migration(_) => "migration",
            DeclKind::Order(_) => "order",
            DeclKind::Rules(r) => r.kind.keyword(),
            DeclKind::Validation(_) => "validation",
            DeclKind::Health(_) => "health",
            DeclKind::Flow(_) => "flow",
            DeclKind::Ceiling(_) => "ceiling",
            DeclKind::Rite(_) => "rite",
            DeclKind::Key(_) => "key",
            DeclKind::Test(_) => "test",
            DeclKind::Fixture(_) => "fixture",
        }
    }
}

/// `policy NAME extends A, B`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyHeader {
    /// The policy's name.
    pub name: Ident,
    /// Parent policies, in order.
    pub parents: Vec<Ident>,
}

/// `authority NAME "title" governs c1, c2`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authority {
    /// Short name, such as `TSC`.
    pub name: Ident,
    /// Long name.
    pub title: Option<StrLit>,
    /// Categories this authority governs.
    pub governs: Vec<Ident>,
}

/// `category NAME "title" covers field, field`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Category {
    /// Short name, such as `structural`.
    pub name: Ident,
    /// Long name.
    pub title: Option<StrLit>,
    /// Partner fields whose change puts a migration in this category.
    pub covers: Vec<FieldPath>,
}

/// A dotted path of schema field names, such as `metrics.stability`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    /// The segments.
    pub segments: Vec<Ident>,
    /// The whole path.
    pub span: Place,
}

impl FieldPath {
    /// The path as written, segments joined by dots.
    pub fn dotted(&self) -> String {
        let names: Vec<&str> = self.segments.iter().map(|s| s.name.as_str()).collect();
        names.join(".")
    }
}

/// `partner { ... }`: the schema of a partner state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// The fields.
    pub fields: Vec<FieldDecl>,
}

/// `name: type`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDecl {
    /// Field name.
    pub name: Ident,
    /// Field type.
    pub ty: TypeExpr,
    /// The whole field.
    pub span: Place,
}

/// A type as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeExpr {
    /// Which type.
    pub kind: TypeExprKind,
    /// Where it was written.
    pub span: Place,
}

/// The shapes of a written type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeExprKind {
    /// `bool`, `number`, `score`, `string`, `version` (or an unknown name).
    Named(Ident),
    /// `set<T>`
    Set(Box<TypeExpr>),
    /// `{ a: T, b: U }`
    Record(Vec<FieldDecl>),
}

/// `migration NAME "title" { ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// Type name, such as `soft`.
    pub name: Ident,
    /// Long name.
    pub title: Option<StrLit>,
    /// Requirements and conditions, in source order.
    pub items: Vec<MigrationItem>,
}

/// One line of a migration type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationItem {
    /// What the line says.
    pub kind: MigrationItemKind,
    /// The whole line.
    pub span: Place,
}

/// The requirements a migration type can state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationItemKind {
    /// `when EXPR`: the detection condition.
    When(Arc<Expr>),
    /// `reversible`
    Reversible,
    /// `backward_compatible`
    BackwardCompatible,
    /// `requires mapping`
    RequiresMapping,
    /// `approve by governing` (`None`) or `approve by A, B`.
    Approve(Option<Vec<Ident>>),
    /// `touches c1, c2`: the categories this type can touch.
    Touches(Vec<Ident>),
    /// `to previous_stable` (`None`) or `to 1.2.3`.
    To(Option<Expr>),
}

/// `order a, b, c`: the order in which detection tries migration types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Order {
    /// Migration type names, first tried first.
    pub types: Vec<Ident>,
}

/// Which rule block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleKind {
    /// `compatibility { ... }`
    Compatibility,
    /// `sustainability { ... }`
    Sustainability,
}

impl RuleKind {
    /// The block's keyword.
    pub fn keyword(self) -> &'static str {
        match self {
            RuleKind::Compatibility => "compatibility",
            RuleKind::Sustainability => "sustainability",
        }
    }
}

/// `compatibility { ... }` or `sustainability { ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleBlock {
    /// Which block.
    pub kind: RuleKind,
    /// The rules.
    pub rules: Vec<Rule>,
}

/// `name: EXPR else ACTION`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Rule name.
    pub name: Ident,
    /// What must hold.
    pub condition: Arc<Expr>,
    /// What happens when it does not.
    pub action: Ident,
    /// The whole rule.
    pub span: Place,
}

/// `validation { dimension { name: EXPR } }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validation {
    /// Checks grouped by dimension.
    pub dimensions: Vec<Dimension>,
}

/// `version { ... }`: the checks of one validation dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dimension {
    /// Dimension name.
    pub name: Ident,
    /// The checks.
    pub checks: Vec<Check>,
    /// The whole group.
    pub span: Place,
}

/// `name: EXPR`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// Check name.
    pub name: Ident,
    /// What must hold.
    pub condition: Arc<Expr>,
    /// The whole check.
    pub span: Place,
}

/// `health { factor ...  band ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// Weighted factors of the score.
    pub factors: Vec<Factor>,
    /// Score bands.
    pub bands: Vec<Band>,
}

/// `factor NAME weight W from EXPR`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Factor {
    /// Factor name.
    pub name: Ident,
    /// Its weight in the score.
    pub weight: NumLit,
    /// Where its value comes from.
    pub source: Arc<Expr>,
    /// The whole factor.
    pub span: Place,
}

/// `band LO..=HI status "Status" -> action "Label"`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    /// Lowest score in the band.
    pub low: NumLit,
    /// Highest score in the band.
    pub high: NumLit,
    /// Status name, such as `stable`.
    pub status: Ident,
    /// Status as shown to people, such as "At Risk".
    pub status_label: Option<StrLit>,
    /// Runtime action.
    pub action: Ident,
    /// Action as shown to people, such as "Optimal Transition".
    pub label: Option<StrLit>,
    /// The whole band.
    pub span: Place,
}

/// `flow NAME { ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flow {
    /// Flow name.
    pub name: Ident,
    /// Declared phases.
    pub phases: Vec<PhaseDecl>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// `phase NAME fallible "description"`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PhaseDecl {
    /// Phase name.
    pub name: Ident,
    /// True when the phase can fail.
    pub fallible: bool,
    /// What happens in the phase.
    pub description: Option<StrLit>,
    /// The whole line.
    pub span: Place,
}

/// Whether an edge is taken on success or on failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EdgeKind {
    /// Taken when the phase completes.
    Next,
    /// Taken when the phase fails.
    Failure,
}

/// `a -> b` or `a fail -> b`, with an optional `max N` bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edge {
    /// Source phase.
    pub from: Ident,
    /// Target phase.
    pub to: Ident,
    /// Success or failure edge.
    pub kind: EdgeKind,
    /// How many times the edge may be taken for one partner.
    pub bound: Option<NumLit>,
    /// The edge's text.
    pub span: Place,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// `ceiling field OP VALUE`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ceiling {
    /// The bounded partner field.
    pub field: FieldPath,
    /// The comparison.
    pub op: CompareOp,
    /// Operator span.
    pub op_span: Place,
    /// The bound.
    pub value: Arc<Expr>,
}

/// `rite phase "words"`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rite {
    /// Phase (or `release`).
    pub phase: Ident,
    /// The words spoken.
    pub words: StrLit,
}

/// `key AUTHORITY "ed25519:<64 lowercase hex>" ["label"]`: a public key
/// that signs approvals for an authority (the trust root of approvals).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    /// The authority the key signs for.
    pub authority: Ident,
    /// The public key as written, such as `ed25519:3d40...660c` (its form
    /// is checked by `check::keys` (PMF405), not by the grammar).
    pub key: StrLit,
    /// Who holds the key, such as `"Ada Lovelace, TSC chair"`.
    pub label: Option<StrLit>,
}

impl Key {
    /// The prefix of every public key (`model::keys::parse` reads the rest).
    pub const PREFIX: &'static str = "ed25519:";
}

/// An expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expr {
    /// Its shape.
    pub kind: ExprKind,
    /// Where it was written.
    pub span: Place,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `not`
    Not,
    /// `-`
    Neg,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// A comparison.
    Compare(CompareOp),
    /// `in`
    In,
    /// `not in`
    NotIn,
    /// `+` (numbers: sum; sets: union)
    Add,
    /// `-` (numbers: difference; sets: difference)
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
}

impl BinaryOp {
    /// The operator as written.
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Or => "or",
            BinaryOp::And => "and",
            BinaryOp::Compare(c) => c.symbol(),
            BinaryOp::In => "in",
            BinaryOp::NotIn => "not in",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
        }
    }

    /// Binding strength: higher binds tighter.
    pub(crate) fn precedence(self) -> u8 {
        match self {
            BinaryOp::Or => 1,
            BinaryOp::And => 2,
            BinaryOp::Compare(_) | BinaryOp::In | BinaryOp::NotIn => 3,
            BinaryOp::Add | BinaryOp::Sub => 4,
            BinaryOp::Mul | BinaryOp::Div => 5,
        }
    }
}

/// A call of a built-in function: `len(partner.strands)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    /// The function's name.
    pub name: Ident,
    /// The arguments.
    pub args: Vec<Expr>,
}

/// The shapes of an expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExprKind {
    /// `true` / `false`
    Bool(bool),
    /// `42`, `0.35`
    Number(Number),
    /// `"text"`
    Str(String),
    /// `1.2.3` as written (validated by the checker).
    Version(String),
    /// `partner.version.major`, `compatible`
    Path(Vec<Ident>),
    /// `len(partner.strands)` (boxed: calls are few, and every other shape
    /// of expression is at most half the size of a call's name and
    /// arguments, so an expression node takes 40 bytes instead of 64)
    Call(Box<Call>),
    /// `["a", "b"]`
    Set(Vec<Expr>),
    /// `not x`, `-x`
    Unary(UnaryOp, Box<Expr>),
    /// `a + b`
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
    /// `a or b or c`, `a and b and c`: two or more operands of one boolean
    /// operator (`BinaryOp::And` or `BinaryOp::Or`), evaluated left to
    /// right as `(a or b) or c` is. A chain is one level of nesting however
    /// long it is, so a long chain is not a deep expression.
    Chain(BinaryOp, Vec<Expr>),
    /// Placeholder for an expression that could not be built (already reported).
    Error,
}

/// `test "name" { partner {...} target {...} observed {...} approved ... expect ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDecl {
    /// The test's name.
    pub name: StrLit,
    /// The states it starts from.
    pub states: Vec<TestState>,
    /// `approved A, B` (`Some(vec![])` for `approved none`); absent: every
    /// approval the migration needs is granted.
    pub approved: Option<Vec<Ident>>,
    /// What it expects.
    pub expects: Vec<Expect>,
}

/// Which state a test block gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestRoot {
    /// The partner before the migration.
    Partner,
    /// The target (a partial state).
    Target,
    /// Observed metrics (a partial state; `null` = not measured).
    Observed,
}

/// `partner [like FIXTURE] { ... }` inside a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestState {
    /// Which state.
    pub root: TestRoot,
    /// `like FIXTURE`: the fixture whose fields this state refines.
    pub like: Option<Ident>,
    /// Its fields.
    pub record: RecordValue,
    /// The whole block.
    pub span: Place,
}

/// `fixture NAME [like BASE] { name: value, ... }`: a named record that
/// test states (`partner like NAME { ... }`) and other fixtures refine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureDecl {
    /// The fixture's name.
    pub name: Ident,
    /// `like BASE`: the fixture it refines.
    pub like: Option<Ident>,
    /// Its fields.
    pub record: RecordValue,
}

/// `{ name: value, ... }`
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordValue {
    /// Fields in order.
    pub fields: Vec<(Ident, ValueNode)>,
    /// The braces and what is between them.
    pub span: Place,
}

/// A value in a test state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueNode {
    /// A nested record.
    Record(RecordValue),
    /// `null`: not measured.
    Null(Place),
    /// A literal expression.
    Expr(Expr),
}

/// What an `expect` line checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectWhat {
    /// The detected migration type.
    Type,
    /// The health band.
    Band,
    /// The action.
    Action,
    /// Where the partner ends (`completed`, `fell_back`, ...).
    Outcome,
    /// The worst validation outcome.
    Validation,
    /// The approvals required.
    Approvals,
}

impl ExpectWhat {
    /// As written.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectWhat::Type => "type",
            ExpectWhat::Band => "band",
            ExpectWhat::Action => "action",
            ExpectWhat::Outcome => "outcome",
            ExpectWhat::Validation => "validation",
            ExpectWhat::Approvals => "approvals",
        }
    }
}

/// `expect type soft`, `expect approvals TSC, SCO`, `expect band none`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// What is checked.
    pub what: ExpectWhat,
    /// The expected names (empty for `none`).
    pub values: Vec<Ident>,
    /// The whole line.
    pub span: Place,
}
