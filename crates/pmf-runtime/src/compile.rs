//! Expressions compiled once per policy into an evaluable form: paths are
//! resolved to field indices and operators to the operation for their
//! operand types, so evaluating a partner never looks at the syntax tree.

use std::borrow::Cow;
use std::sync::Arc;

use super::value::Value;
use pmf_compiler::model::types::Type;
use pmf_syntax::ast::{BinaryOp, CompareOp, Expr, ExprKind, UnaryOp};

/// Which state a path reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// The partner before the migration.
    Partner,
    /// The desired state.
    Target,
    /// Metrics measured after the transition.
    Observed,
}

/// A part of a version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VersionPart {
    /// `.major`
    Major,
    /// `.minor`
    Minor,
    /// `.patch`
    Patch,
}

/// A compiled expression.
#[derive(Clone, Debug)]
pub enum Ir {
    /// A literal.
    Const(Value),
    /// A field of a state, by indices into nested records.
    Path(Root, Box<[usize]>, Option<VersionPart>),
    /// All compatibility rules hold.
    Compatible,
    /// All sustainability rules hold.
    Sustainable,
    /// `not x`
    Not(Box<Ir>),
    /// `-x`
    Neg(Box<Ir>),
    /// `a and b`
    And(Box<Ir>, Box<Ir>),
    /// `a or b`
    Or(Box<Ir>, Box<Ir>),
    /// `a and b and c ...`: a chain, evaluated as `(a and b) and c` is,
    /// without a level of nesting per operand.
    All(Box<[Ir]>),
    /// `a or b or c ...`: a chain, evaluated as `(a or b) or c` is.
    Any(Box<[Ir]>),
    /// A comparison.
    Compare(CompareOp, Box<Ir>, Box<Ir>),
    /// `x in set` (negated for `not in`).
    In(bool, Box<Ir>, Box<Ir>),
    /// `+`: sum of numbers, union of sets.
    Add(Box<Ir>, Box<Ir>),
    /// `-`: difference of numbers or of sets.
    Sub(Box<Ir>, Box<Ir>),
    /// `*`
    Mul(Box<Ir>, Box<Ir>),
    /// `/`
    Div(Box<Ir>, Box<Ir>),
    /// `len(set)`
    Len(Box<Ir>),
    /// `min(a, b)`
    Min(Box<Ir>, Box<Ir>),
    /// `max(a, b)`
    Max(Box<Ir>, Box<Ir>),
    /// `abs(n)`
    Abs(Box<Ir>),
}

/// Why an expression could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EvalError {
    /// Division by zero.
    #[error("division by zero")]
    DivideByZero,
    /// Operand types the checker should have rejected.
    #[error("operands of the wrong type for {0}")]
    Type(&'static str),
}

/// A state seen through partial states laid over it (a target over the
/// partner, observed metrics over that): a field is read from the top layer
/// that gives it, as if the layers had been merged with
/// [`overlay`](super::value::overlay), without building the merged record.
#[derive(Clone, Copy, Debug)]
pub struct State<'a> {
    /// The full state at the bottom.
    base: &'a Value,
    /// Partial states over it, bottom first (`None`: no layer).
    layers: [Option<&'a Value>; 2],
}

/// Where walking a path through one layer ends.
enum Walk<'a> {
    /// The layer gives this value.
    Found(&'a Value),
    /// The layer leaves it to the layers below.
    Absent,
}

fn walk<'a>(mut v: &'a Value, indices: &[usize]) -> Walk<'a> {
    for &i in indices {
        match v {
            Value::Absent => return Walk::Absent,
            Value::Rec(fields) => match fields.get(i) {
                Some(f) => v = f,
                None => return Walk::Found(&Value::Missing),
            },
            _ => return Walk::Found(&Value::Missing),
        }
    }
    match v {
        Value::Absent => Walk::Absent,
        v => Walk::Found(v),
    }
}

impl<'a> State<'a> {
    /// A full state, with nothing over it.
    pub fn of(base: &'a Value) -> Self {
        State {
            base,
            layers: [None, None],
        }
    }

    /// This state with the partial state `top` laid over it (`None`: as
    /// is). It holds two partial layers (a target and observed metrics, all
    /// the runtime lays); a third would replace the second.
    pub fn with(self, top: Option<&'a Value>) -> Self {
        let Some(top) = top else { return self };
        match self.layers {
            [None, _] => State {
                layers: [Some(top), None],
                ..self
            },
            [Some(first), None] => State {
                layers: [Some(first), Some(top)],
                ..self
            },
            // Not used by the runtime (two layers at most); keep the newest.
            [Some(first), Some(_)] => State {
                layers: [Some(first), Some(top)],
                ..self
            },
        }
    }

    /// The field at `indices`, read in place; `None` when it is a record
    /// that partial layers only partly give (it must be merged: [`State::get`]).
    pub fn get_ref(&self, indices: &[usize]) -> Option<&'a Value> {
        for layer in self.layers.iter().rev().flatten() {
            if let Walk::Found(v) = walk(layer, indices) {
                return match v {
                    // A layer's record may leave fields to the layers below.
                    Value::Rec(_) => None,
                    v => Some(v),
                };
            }
        }
        Some(field(self.base, indices))
    }

    /// The field at `indices`, merged from the layers when it has to be.
    pub fn get(&self, indices: &[usize]) -> Cow<'a, Value> {
        match self.get_ref(indices) {
            Some(v) => Cow::Borrowed(v),
            None => {
                let mut merged = field(self.base, indices).clone();
                for layer in self.layers.iter().flatten() {
                    if let Walk::Found(v) = walk(layer, indices) {
                        merged = super::value::overlay(&merged, v);
                    }
                }
                Cow::Owned(merged)
            }
        }
    }

    /// The state as one value (merged when there are layers).
    pub(crate) fn merged(&self) -> Cow<'a, Value> {
        self.get(&[])
    }

    /// Whether the layers change nothing of the base.
    pub(crate) fn same_as_base(&self) -> bool {
        self.layers
            .iter()
            .flatten()
            .all(|layer| keeps(self.base, layer))
    }
}

/// Whether laying `over` on `base` leaves `base` as it is.
fn keeps(base: &Value, over: &Value) -> bool {
    match (base, over) {
        (_, Value::Absent) => true,
        (Value::Rec(b), Value::Rec(o)) => b.iter().zip(o.iter()).all(|(b, o)| keeps(b, o)),
        _ => base == over,
    }
}

/// The states an expression reads.
pub(crate) struct Env<'a> {
    /// The partner before the migration.
    pub partner: &'a Value,
    /// The desired state (the target laid over the partner).
    pub target: State<'a>,
    /// Observed metrics over the desired state (fields may be `Missing`).
    pub observed: State<'a>,
    /// Whether all compatibility rules hold, once known.
    pub compatible: Option<bool>,
    /// Whether all sustainability rules hold, once known.
    pub sustainable: Option<bool>,
}

/// Compile a checked expression; `schema` is the partner record type.
/// Returns `None` for an expression the checker rejected.
pub fn compile(expr: &Expr, schema: &Type) -> Option<Ir> {
    let b = |e: &Expr| compile(e, schema).map(Box::new);
    Some(match &expr.kind {
        ExprKind::Bool(v) => Ir::Const(Value::Bool(*v)),
        ExprKind::Number(n) => Ir::Const(Value::Num(n.0)),
        ExprKind::Str(s) => Ir::Const(Value::Str(s.as_str().into())),
        ExprKind::Version(v) => Ir::Const(Value::Ver(Arc::new(semver::Version::parse(v).ok()?))),
        ExprKind::Error => return None,
        ExprKind::Set(items) => {
            let mut consts = Vec::new();
            for i in items {
                match compile(i, schema)? {
                    Ir::Const(v) => consts.push(v),
                    _ => return None,
                }
            }
            Ir::Const(Value::set(consts))
        }
        ExprKind::Path(segs) => {
            let (first, rest) = segs.split_first()?;
            let root = match first.name.as_str() {
                "partner" => Root::Partner,
                "target" => Root::Target,
                "observed" => Root::Observed,
                "compatible" => return Some(Ir::Compatible),
                "sustainable" => return Some(Ir::Sustainable),
                _ => return None,
            };
            let mut ty = schema;
            let mut indices = Vec::new();
            let mut part = None;
            for seg in rest {
                match ty {
                    Type::Record(fields) => {
                        let i = fields.keys().position(|k| k == seg.name.as_str())?;
                        indices.push(i);
                        ty = fields.get(seg.name.as_str())?;
                    }
                    Type::Version if part.is_none() => {
                        part = Some(match seg.name.as_str() {
                            "major" => VersionPart::Major,
                            "minor" => VersionPart::Minor,
                            "patch" => VersionPart::Patch,
                            _ => return None,
                        });
                    }
                    _ => return None,
                }
            }
            Ir::Path(root, indices.into(), part)
        }
        ExprKind::Call(call) => {
            let (name, args) = (&call.name, &call.args);
            let arg = |i: usize| args.get(i).and_then(|a| compile(a, schema)).map(Box::new);
            match (name.name.as_str(), args.len()) {
                ("len", 1) => Ir::Len(arg(0)?),
                ("min", 2) => Ir::Min(arg(0)?, arg(1)?),
                ("max", 2) => Ir::Max(arg(0)?, arg(1)?),
                ("abs", 1) => Ir::Abs(arg(0)?),
                _ => return None,
            }
        }
        ExprKind::Chain(op, operands) => {
            let operands = operands
                .iter()
                .map(|e| compile(e, schema))
                .collect::<Option<Box<[Ir]>>>()?;
            match op {
                BinaryOp::Or => Ir::Any(operands),
                _ => Ir::All(operands),
            }
        }
        ExprKind::Unary(UnaryOp::Not, x) => Ir::Not(b(x)?),
        ExprKind::Unary(UnaryOp::Neg, x) => Ir::Neg(b(x)?),
        ExprKind::Binary(op, l, r) => {
            let (l, r) = (b(l)?, b(r)?);
            match op {
                BinaryOp::And => Ir::And(l, r),
                BinaryOp::Or => Ir::Or(l, r),
                BinaryOp::Compare(c) => Ir::Compare(*c, l, r),
                BinaryOp::In => Ir::In(false, l, r),
                BinaryOp::NotIn => Ir::In(true, l, r),
                BinaryOp::Add => Ir::Add(l, r),
                BinaryOp::Sub => Ir::Sub(l, r),
                BinaryOp::Mul => Ir::Mul(l, r),
                BinaryOp::Div => Ir::Div(l, r),
            }
        }
    })
}

/// The field of `v` at `indices` (nested records), or `Missing`.
pub fn field<'v>(mut v: &'v Value, indices: &[usize]) -> &'v Value {
    for &i in indices {
        match v {
            Value::Rec(fields) => match fields.get(i) {
                Some(f) => v = f,
                None => return &Value::Missing,
            },
            _ => return &Value::Missing,
        }
    }
    v
}

/// Whether sorted set `a` is a subset of sorted set `b` (one merge pass).
fn subset(a: &[Value], b: &[Value]) -> bool {
    if std::ptr::eq(a, b) {
        return true;
    }
    let mut rest = b.iter();
    'items: for x in a {
        for y in rest.by_ref() {
            match y.cmp(x) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => continue 'items,
                std::cmp::Ordering::Greater => return false,
            }
        }
        return false;
    }
    true
}

impl Ir {
    /// Evaluate in `env`. Missing data gives `Missing` (except where a
    /// boolean operator decides without it: `false and ?` is `false`).
    pub(crate) fn eval(&self, env: &Env<'_>) -> Result<Value, EvalError> {
        self.eval_ref(env).map(Cow::into_owned)
    }

    /// Evaluate in `env`, borrowing constants and fields of the states
    /// instead of cloning them (no reference counting per partner).
    pub(crate) fn eval_ref<'e>(&'e self, env: &Env<'e>) -> Result<Cow<'e, Value>, EvalError> {
        use Value::{Bool, Missing, Num};
        let own = |v: Value| Ok(Cow::Owned(v));
        let num2 = |a: &'e Ir,
                    b: &'e Ir,
                    f: fn(f64, f64) -> Result<f64, EvalError>|
         -> Result<Cow<'e, Value>, EvalError> {
            match (&*a.eval_ref(env)?, &*b.eval_ref(env)?) {
                (Num(x), Num(y)) => f(*x, *y).map(|n| Cow::Owned(Num(n))),
                (Missing, _) | (_, Missing) => own(Missing),
                _ => Err(EvalError::Type("arithmetic")),
            }
        };
        let v = match self {
            Ir::Const(v) => return Ok(Cow::Borrowed(v)),
            Ir::Path(root, indices, part) => {
                let state = match root {
                    Root::Partner => State::of(env.partner),
                    Root::Target => env.target,
                    Root::Observed => env.observed,
                };
                let v = match state.get(indices) {
                    Cow::Borrowed(v) => v,
                    Cow::Owned(v) => return Ok(Cow::Owned(v)),
                };
                match (part, v) {
                    (_, Value::Absent) => Missing,
                    (None, v) => return Ok(Cow::Borrowed(v)),
                    (Some(p), Value::Ver(ver)) => Num(match p {
                        VersionPart::Major => ver.major,
                        VersionPart::Minor => ver.minor,
                        VersionPart::Patch => ver.patch,
                    } as f64),
                    (Some(_), _) => Missing,
                }
            }
            // The logic is `truth`'s: one definition of three-valued logic.
            Ir::Compatible
            | Ir::Sustainable
            | Ir::Not(_)
            | Ir::And(..)
            | Ir::Or(..)
            | Ir::All(_)
            | Ir::Any(_) => match self.truth(env) {
                Truth::True => Bool(true),
                Truth::False => Bool(false),
                Truth::Missing => Missing,
                Truth::NotBool | Truth::Error => return Err(EvalError::Type("logic")),
            },
            Ir::Neg(x) => match &*x.eval_ref(env)? {
                Num(n) => Num(-n),
                Missing => Missing,
                _ => return Err(EvalError::Type("`-`")),
            },
            Ir::Compare(op, a, b) => {
                // Most comparisons are between fields and constants: read
                // them in place.
                if let (Some(x), Some(y)) = (a.leaf(env), b.leaf(env)) {
                    return own(compare(*op, x, y));
                }
                let (x, y) = (a.eval_ref(env)?, b.eval_ref(env)?);
                compare(*op, &x, &y)
            }
            Ir::In(negated, item, set) => match (&*item.eval_ref(env)?, &*set.eval_ref(env)?) {
                (Missing, _) | (_, Missing) => Missing,
                (x, Value::Set(s)) => Bool(s.binary_search(x).is_ok() != *negated),
                _ => return Err(EvalError::Type("`in`")),
            },
            Ir::Add(a, b) => match (&*a.eval_ref(env)?, &*b.eval_ref(env)?) {
                (Num(x), Num(y)) => Num(x + y),
                (Value::Set(s), Value::Set(t)) => union(s, t),
                (Missing, _) | (_, Missing) => Missing,
                _ => return Err(EvalError::Type("`+`")),
            },
            Ir::Sub(a, b) => match (&*a.eval_ref(env)?, &*b.eval_ref(env)?) {
                (Num(x), Num(y)) => Num(x - y),
                (Value::Set(s), Value::Set(t)) => Value::Set(
                    s.iter()
                        .filter(|x| t.binary_search(x).is_err())
                        .cloned()
                        .collect(),
                ),
                (Missing, _) | (_, Missing) => Missing,
                _ => return Err(EvalError::Type("`-`")),
            },
            Ir::Mul(a, b) => return num2(a, b, |x, y| Ok(x * y)),
            Ir::Div(a, b) => {
                return num2(a, b, |x, y| {
                    if y == 0.0 {
                        Err(EvalError::DivideByZero)
                    } else {
                        Ok(x / y)
                    }
                });
            }
            Ir::Min(a, b) => return num2(a, b, |x, y| Ok(x.min(y))),
            Ir::Max(a, b) => return num2(a, b, |x, y| Ok(x.max(y))),
            Ir::Abs(x) => match &*x.eval_ref(env)? {
                Num(n) => Num(n.abs()),
                Missing => Missing,
                _ => return Err(EvalError::Type("`abs`")),
            },
            Ir::Len(x) => match &*x.eval_ref(env)? {
                Value::Set(s) => Num(s.len() as f64),
                Missing => Missing,
                _ => return Err(EvalError::Type("`len`")),
            },
        };
        own(v)
    }
}

impl Ir {
    /// This expression with what it computes from constants alone computed
    /// once: an operation on constants becomes its value (unless it fails,
    /// such as a division by zero, which stays to fail per partner), a
    /// logic operator whose left side decides becomes that side, and a
    /// comparison of a partner field with itself becomes its answer. The
    /// last needs the partner to be a full record (a field of it is never
    /// missing), as partner states are.
    pub fn folded(&self) -> Ir {
        self.map_operands(&|x| x.folded()).fold_node()
    }

    /// This node with each operand replaced by `f` of it (a leaf as is).
    fn map_operands(&self, f: &impl Fn(&Ir) -> Ir) -> Ir {
        let b = |x: &Ir| Box::new(f(x));
        match self {
            Ir::Const(_) | Ir::Path(..) | Ir::Compatible | Ir::Sustainable => self.clone(),
            Ir::Not(x) => Ir::Not(b(x)),
            Ir::Neg(x) => Ir::Neg(b(x)),
            Ir::Len(x) => Ir::Len(b(x)),
            Ir::Abs(x) => Ir::Abs(b(x)),
            Ir::And(x, y) => Ir::And(b(x), b(y)),
            Ir::Or(x, y) => Ir::Or(b(x), b(y)),
            Ir::All(xs) => Ir::All(xs.iter().map(f).collect()),
            Ir::Any(xs) => Ir::Any(xs.iter().map(f).collect()),
            Ir::Compare(op, x, y) => Ir::Compare(*op, b(x), b(y)),
            Ir::In(negated, x, y) => Ir::In(*negated, b(x), b(y)),
            Ir::Add(x, y) => Ir::Add(b(x), b(y)),
            Ir::Sub(x, y) => Ir::Sub(b(x), b(y)),
            Ir::Mul(x, y) => Ir::Mul(b(x), b(y)),
            Ir::Div(x, y) => Ir::Div(b(x), b(y)),
            Ir::Min(x, y) => Ir::Min(b(x), b(y)),
            Ir::Max(x, y) => Ir::Max(b(x), b(y)),
        }
    }

    /// The node's operands (none for a leaf).
    fn operands(&self) -> Vec<&Ir> {
        match self {
            Ir::Const(_) | Ir::Path(..) | Ir::Compatible | Ir::Sustainable => Vec::new(),
            Ir::Not(x) | Ir::Neg(x) | Ir::Len(x) | Ir::Abs(x) => vec![x],
            Ir::All(xs) | Ir::Any(xs) => xs.iter().collect(),
            Ir::And(x, y)
            | Ir::Or(x, y)
            | Ir::Compare(_, x, y)
            | Ir::In(_, x, y)
            | Ir::Add(x, y)
            | Ir::Sub(x, y)
            | Ir::Mul(x, y)
            | Ir::Div(x, y)
            | Ir::Min(x, y)
            | Ir::Max(x, y) => vec![x, y],
        }
    }

    /// [`Ir::folded`] for this node alone, its operands folded already.
    fn fold_node(self) -> Ir {
        if matches!(
            self,
            Ir::Const(_) | Ir::Path(..) | Ir::Compatible | Ir::Sustainable
        ) {
            return self;
        }
        let ir = self;
        let constant = |x: &Ir| matches!(x, Ir::Const(_));
        // `false and ...` is false, `true or ...` is true, whatever the
        // right side would have come to.
        let ir = match ir {
            Ir::And(x, _) if matches!(*x, Ir::Const(Value::Bool(false))) => return *x,
            Ir::Or(x, _) if matches!(*x, Ir::Const(Value::Bool(true))) => return *x,
            Ir::All(xs) if matches!(xs.first(), Some(Ir::Const(Value::Bool(false)))) => {
                return Ir::Const(Value::Bool(false));
            }
            Ir::Any(xs) if matches!(xs.first(), Some(Ir::Const(Value::Bool(true)))) => {
                return Ir::Const(Value::Bool(true));
            }
            ir => ir,
        };
        if let Ir::Compare(op, x, y) = &ir
            && let (Ir::Path(Root::Partner, i, p), Ir::Path(Root::Partner, j, q)) = (&**x, &**y)
            && i == j
            && p == q
        {
            return Ir::Const(Value::Bool(matches!(
                op,
                CompareOp::Eq | CompareOp::Le | CompareOp::Ge
            )));
        }
        if ir.operands().into_iter().all(constant) {
            // Constants read no state: any env will do.
            let none = Value::Missing;
            let env = Env {
                partner: &none,
                target: State::of(&none),
                observed: State::of(&none),
                compatible: None,
                sustainable: None,
            };
            if let Ok(v) = ir.eval(&env) {
                return Ir::Const(v);
            }
        }
        ir
    }
}

/// Whether `v` holds no `Absent` anywhere: laid over any state, it is what
/// that state's field becomes.
fn complete(v: &Value) -> bool {
    match v {
        Value::Absent => false,
        Value::Rec(fields) => fields.iter().all(complete),
        _ => true,
    }
}

impl Ir {
    /// This expression specialised for states whose `root` is the partner
    /// with `layer` laid over it (`None`: the partner itself, as is). A path
    /// of `root` that the layer gives in full becomes a constant, one that
    /// it leaves becomes a path of the partner, and one it gives in part
    /// stays; what that leaves constant is [folded](Ir::folded). Evaluated
    /// in an env whose `root` state is that one, and whose partner is a
    /// full record, it gives what `self` gives, without reading through
    /// layers per partner.
    pub fn laid(&self, root: Root, layer: Option<&Value>) -> Ir {
        match self {
            Ir::Path(r, indices, part) if *r == root => {
                let given = match layer {
                    None => Walk::Absent,
                    Some(layer) => walk(layer, indices),
                };
                match given {
                    Walk::Absent => Ir::Path(Root::Partner, indices.clone(), *part),
                    Walk::Found(v) if complete(v) => Ir::Const(match (part, v) {
                        (None, v) => v.clone(),
                        (Some(p), Value::Ver(ver)) => Value::Num(match p {
                            VersionPart::Major => ver.major,
                            VersionPart::Minor => ver.minor,
                            VersionPart::Patch => ver.patch,
                        } as f64),
                        (Some(_), _) => Value::Missing,
                    }),
                    Walk::Found(_) => self.clone(),
                }
            }
            _ => self.map_operands(&|x| x.laid(root, layer)).fold_node(),
        }
    }
}

/// What a condition comes to: three-valued logic, plus the two ways of not
/// being a truth value at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Truth {
    /// It holds.
    True,
    /// It does not hold.
    False,
    /// Data it needs is missing.
    Missing,
    /// It evaluated to something that is not a boolean.
    NotBool,
    /// It could not be evaluated (such as a division by zero).
    Error,
}

impl Truth {
    /// The truth of a value (`None`: the evaluation failed).
    fn of(v: Option<&Value>) -> Truth {
        match v {
            Some(Value::Bool(true)) => Truth::True,
            Some(Value::Bool(false)) => Truth::False,
            Some(Value::Missing) => Truth::Missing,
            Some(_) => Truth::NotBool,
            None => Truth::Error,
        }
    }

    fn from_bool(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }
}

/// `left and right`, three-valued; `right` is evaluated only when `left`
/// does not decide.
fn and(left: Truth, right: impl FnOnce() -> Truth) -> Truth {
    connective(Truth::False, Truth::True, left, right)
}

/// `left or right`, three-valued; `right` is evaluated only when `left`
/// does not decide.
fn or(left: Truth, right: impl FnOnce() -> Truth) -> Truth {
    connective(Truth::True, Truth::False, left, right)
}

/// A three-valued connective: `decisive` on either side decides it (`False`
/// for `and`, `True` for `or`), `other` on both sides gives `other`, an
/// error wins over everything, and a missing value leaves it missing.
fn connective(decisive: Truth, other: Truth, left: Truth, right: impl FnOnce() -> Truth) -> Truth {
    match left {
        Truth::Error => Truth::Error,
        left if left == decisive => decisive,
        left => match (left, right()) {
            (_, Truth::Error) => Truth::Error,
            (_, right) if right == decisive => decisive,
            (left, right) if left == other && right == other => other,
            (Truth::Missing, _) | (_, Truth::Missing) => Truth::Missing,
            _ => Truth::Error,
        },
    }
}

impl Ir {
    /// Evaluate a condition: the same answer as [`Ir::eval`] gives, as a
    /// [`Truth`], without building values for the logic in between.
    pub(crate) fn truth(&self, env: &Env<'_>) -> Truth {
        match self {
            Ir::Compatible => env.compatible.map_or(Truth::Missing, Truth::from_bool),
            Ir::Sustainable => env.sustainable.map_or(Truth::Missing, Truth::from_bool),
            Ir::Not(x) => match x.truth(env) {
                Truth::True => Truth::False,
                Truth::False => Truth::True,
                Truth::Missing => Truth::Missing,
                Truth::NotBool | Truth::Error => Truth::Error,
            },
            Ir::And(a, b) => and(a.truth(env), || b.truth(env)),
            Ir::Or(a, b) => or(a.truth(env), || b.truth(env)),
            // A chain folds from the left: the same answer as the nested
            // `(a and b) and c`, with no recursion per operand.
            Ir::All(xs) => match xs.split_first() {
                Some((first, rest)) => rest
                    .iter()
                    .fold(first.truth(env), |acc, x| and(acc, || x.truth(env))),
                None => Truth::True,
            },
            Ir::Any(xs) => match xs.split_first() {
                Some((first, rest)) => rest
                    .iter()
                    .fold(first.truth(env), |acc, x| or(acc, || x.truth(env))),
                None => Truth::False,
            },
            Ir::Compare(op, a, b) => match (a.leaf(env), b.leaf(env)) {
                (Some(x), Some(y)) => Truth::of(Some(&compare(*op, x, y))),
                _ => match (a.eval_ref(env), b.eval_ref(env)) {
                    (Ok(x), Ok(y)) => Truth::of(Some(&compare(*op, &x, &y))),
                    _ => Truth::Error,
                },
            },
            Ir::Const(v) => Truth::of(Some(v)),
            Ir::Path(_, _, None) => match self.leaf(env) {
                Some(v) => Truth::of(Some(v)),
                None => Truth::Missing,
            },
            _ => Truth::of(self.eval_ref(env).as_deref().ok()),
        }
    }

    /// A constant or a whole field, read in place (`None` for anything to
    /// compute, or a field that a partial state leaves absent).
    #[inline]
    fn leaf<'e>(&'e self, env: &Env<'e>) -> Option<&'e Value> {
        match self {
            Ir::Const(v) => Some(v),
            Ir::Path(root, indices, None) => {
                let v = match root {
                    Root::Partner => Some(field(env.partner, indices)),
                    Root::Target => env.target.get_ref(indices),
                    Root::Observed => env.observed.get_ref(indices),
                };
                match v {
                    Some(Value::Absent) | None => None,
                    v => v,
                }
            }
            _ => None,
        }
    }
}

/// `x op y`, `Missing` when either is.
fn compare(op: CompareOp, x: &Value, y: &Value) -> Value {
    if matches!(x, Value::Missing) || matches!(y, Value::Missing) {
        return Value::Missing;
    }
    let holds = match (x, y, op) {
        (Value::Set(s), Value::Set(t), CompareOp::Le) => subset(s, t),
        (Value::Set(s), Value::Set(t), CompareOp::Lt) => s.len() < t.len() && subset(s, t),
        (Value::Set(s), Value::Set(t), CompareOp::Ge) => subset(t, s),
        (Value::Set(s), Value::Set(t), CompareOp::Gt) => t.len() < s.len() && subset(t, s),
        (_, _, CompareOp::Eq) => x == y,
        (_, _, CompareOp::Ne) => x != y,
        (_, _, CompareOp::Lt) => x < y,
        (_, _, CompareOp::Le) => x <= y,
        (_, _, CompareOp::Gt) => x > y,
        (_, _, CompareOp::Ge) => x >= y,
    };
    Value::Bool(holds)
}

/// The union of two sorted sets, merged in order (no re-sorting).
fn union(s: &[Value], t: &[Value]) -> Value {
    let mut out = Vec::with_capacity(s.len() + t.len());
    let (mut s, mut t) = (s, t);
    while let ([x, s_rest @ ..], [y, t_rest @ ..]) = (s, t) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => {
                out.push(x.clone());
                s = s_rest;
            }
            std::cmp::Ordering::Greater => {
                out.push(y.clone());
                t = t_rest;
            }
            std::cmp::Ordering::Equal => {
                out.push(x.clone());
                s = s_rest;
                t = t_rest;
            }
        }
    }
    out.extend_from_slice(s);
    out.extend_from_slice(t);
    Value::Set(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{read_all_partners, read_observed};
    use crate::value::overlay;

    /// Folding keeps every answer, failures included.
    /// A chain (`All`, `Any`) answers as the nested binary tree the parser
    /// used to build, `(a and b) and c`, for every mix of true, false,
    /// missing, non-boolean and failing operands; folded too.
    #[test]
    fn chains_answer_as_nested_binary_trees() {
        let operand = |k: usize| match k {
            0 => Ir::Const(Value::Bool(true)),
            1 => Ir::Const(Value::Bool(false)),
            2 => Ir::Const(Value::Missing),
            3 => Ir::Const(Value::Num(1.0)),
            _ => Ir::Compare(
                CompareOp::Gt,
                Box::new(Ir::Div(
                    Box::new(Ir::Const(Value::Num(1.0))),
                    Box::new(Ir::Const(Value::Num(0.0))),
                )),
                Box::new(Ir::Const(Value::Num(0.0))),
            ),
        };
        let partner = Value::Rec(vec![Value::Num(5.0)].into());
        let env = Env {
            partner: &partner,
            target: State::of(&partner),
            observed: State::of(&partner),
            compatible: None,
            sustainable: None,
        };
        for len in 2..=4u32 {
            for mut code in 0..5usize.pow(len) {
                let mut operands = Vec::new();
                for _ in 0..len {
                    operands.push(operand(code % 5));
                    code /= 5;
                }
                for any in [false, true] {
                    let nested = operands.iter().skip(1).fold(operands[0].clone(), |acc, x| {
                        let (l, r) = (Box::new(acc), Box::new(x.clone()));
                        if any { Ir::Or(l, r) } else { Ir::And(l, r) }
                    });
                    let chain = if any {
                        Ir::Any(operands.clone().into())
                    } else {
                        Ir::All(operands.clone().into())
                    };
                    assert_eq!(chain.truth(&env), nested.truth(&env), "{chain:?}");
                    assert_eq!(chain.eval(&env), nested.eval(&env), "{chain:?}");
                    let folded = chain.clone().folded();
                    assert_eq!(folded.truth(&env), nested.truth(&env), "{chain:?}");
                }
            }
        }
    }

    #[test]
    fn folding_computes_constants_once_and_keeps_failures() {
        let num = |n: f64| Box::new(Ir::Const(Value::Num(n)));
        let boolean = |b: bool| Box::new(Ir::Const(Value::Bool(b)));
        let power = || Box::new(Ir::Path(Root::Partner, vec![0].into(), None));
        let divide_by_zero = || Box::new(Ir::Div(num(1.0), num(0.0)));
        let failing = || Box::new(Ir::Compare(CompareOp::Gt, divide_by_zero(), num(0.0)));
        let cases: Vec<(Ir, Option<Value>)> = vec![
            // Constants fold.
            (
                Ir::Compare(CompareOp::Lt, num(1.0), num(2.0)),
                Some(Value::Bool(true)),
            ),
            (Ir::Add(num(1.0), num(2.0)), Some(Value::Num(3.0))),
            (Ir::Not(boolean(false)), Some(Value::Bool(true))),
            (
                Ir::Compare(CompareOp::Eq, Box::new(Ir::Const(Value::Missing)), num(1.0)),
                Some(Value::Missing),
            ),
            // A failure stays, to fail per partner.
            (*divide_by_zero(), None),
            (*failing(), None),
            (Ir::And(boolean(true), failing()), None),
            // The left side decides.
            (Ir::And(boolean(false), failing()), Some(Value::Bool(false))),
            (Ir::Or(boolean(true), failing()), Some(Value::Bool(true))),
            // A partner field compared with itself.
            (
                Ir::Compare(CompareOp::Ge, power(), power()),
                Some(Value::Bool(true)),
            ),
            (
                Ir::Compare(CompareOp::Lt, power(), power()),
                Some(Value::Bool(false)),
            ),
            // Anything reading a partner stays.
            (Ir::Compare(CompareOp::Lt, power(), num(2.0)), None),
        ];
        let partner = Value::Rec(vec![Value::Num(5.0)].into());
        let env = Env {
            partner: &partner,
            target: State::of(&partner),
            observed: State::of(&partner),
            compatible: None,
            sustainable: None,
        };
        for (ir, folds_to) in cases {
            let folded = ir.clone().folded();
            match (&folded, &folds_to) {
                (Ir::Const(v), Some(expected)) => assert_eq!(v, expected, "{ir:?}"),
                (_, None) => assert!(!matches!(folded, Ir::Const(_)), "{ir:?} -> {folded:?}"),
                _ => panic!("{ir:?} did not fold: {folded:?}"),
            }
            assert_eq!(folded.eval(&env), ir.eval(&env), "{ir:?}");
            assert_eq!(folded.truth(&env), ir.truth(&env), "{ir:?}");
        }
    }

    /// `truth` answers what `eval` answers, for every condition of the
    /// fleet's policy over every fleet partner, before and after the
    /// compatibility and sustainability verdicts are known.
    #[test]
    fn truth_agrees_with_eval() {
        let fleet = |f: &str| {
            std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet"))
                .join(f)
        };
        let policy =
            crate::load::load_policy(&[fleet("policy.pmf")]).expect("fleet policy compiles");
        let partners = read_all_partners(&policy.schema, &fleet("partners.json")).unwrap();
        let observed: std::collections::HashMap<String, Value> =
            read_observed(&policy.schema, &fleet("observed.json"))
                .unwrap()
                .partners
                .all(&policy.schema)
                .unwrap()
                .into_iter()
                .collect();
        let targets = crate::input::read_targets(&policy.schema, &fleet("target.json")).unwrap();
        let own_targets: std::collections::HashMap<String, Value> = targets
            .partners
            .all(&policy.schema)
            .unwrap()
            .into_iter()
            .collect();
        assert!(!own_targets.is_empty(), "the fleet has per-partner targets");
        let target_of = |id: &str| own_targets.get(id).or(targets.all.as_ref());
        let conditions: Vec<&Ir> = policy
            .compatibility
            .iter()
            .chain(&policy.sustainability)
            .map(|r| &r.condition)
            .chain(policy.checks.iter().map(|c| &c.condition))
            .chain(policy.migrations.iter().filter_map(|m| m.when.as_ref()))
            .collect();
        assert!(conditions.len() > 20);
        let mut seen = std::collections::HashSet::new();
        for partner in &partners {
            let id = policy.id_of(partner).to_string();
            let target = target_of(&id).map_or(partner.clone(), |t| overlay(partner, t));
            let obs = observed
                .get(&id)
                .map_or(target.clone(), |o| overlay(&target, o));
            // Layers read as the merged copies do.
            let layered = State::of(partner).with(target_of(&id));
            let layered_obs = layered.with(observed.get(&id));
            assert_eq!(*layered.merged(), target);
            assert_eq!(*layered_obs.merged(), obs);
            assert_eq!(layered.same_as_base(), target == *partner);
            for verdicts in [None, Some(true), Some(false)] {
                let merged = Env {
                    partner,
                    target: State::of(&target),
                    observed: State::of(&obs),
                    compatible: verdicts,
                    sustainable: verdicts.map(|v| !v),
                };
                let env = Env {
                    target: layered,
                    observed: layered_obs,
                    ..merged
                };
                for c in &conditions {
                    let truth = c.truth(&env);
                    assert_eq!(truth, Truth::of(c.eval(&merged).as_ref().ok()), "{c:?}");
                    assert_eq!(c.eval(&env), c.eval(&merged), "{c:?}");
                    seen.insert(format!("{truth:?}"));
                    // Laid for this partner's layers, it answers alike.
                    let layer = target_of(&id);
                    let mut laid = c.laid(Root::Target, layer);
                    if !observed.contains_key(&id) {
                        laid = laid.laid(Root::Observed, layer);
                    }
                    assert_eq!(laid.truth(&env), truth, "{c:?} laid as {laid:?}");
                    assert_eq!(laid.eval(&env), c.eval(&env), "{c:?} laid as {laid:?}");
                }
            }
        }
        // The fleet exercises every truth a checked policy can produce.
        for t in ["True", "False", "Missing", "Error"] {
            assert!(seen.contains(t), "no condition came to {t}");
        }
    }
}
