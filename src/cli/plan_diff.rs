//! `pmf plan diff A B`: what changed between two plans of the same fleet
//! (before and after a policy or target change): partners whose
//! prediction changed, partners added or removed, and the totals.
//!
//! Both plans are read side by side, as streams. Partners in the same
//! order (plans made from the same partner file) are compared as they
//! come and forgotten; a partner out of place is held (its view, not its
//! state) until its match comes in the other plan, so memory grows only
//! with the partners out of place — at worst an index by id of one plan.
//!
//! Exit codes follow `diff`: 0 when every partner is predicted alike in
//! both plans, 1 when some partner differs, 2 for usage or I/O problems.

use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::plan_show::{Counts, ViewFormat, kind, list};
use super::view::short;
use super::view::{self, Table};
use super::{CliError, Exit, UsageError};
use crate::runtime::engine::Action;
use crate::runtime::plan::PlanHeader;
use crate::runtime::plan_view::{EntryView, PlanItem, PlanStream, printable};
use crate::runtime::value::shown_id;

/// Arguments of `pmf plan diff`.
#[derive(Args, Debug)]
pub struct DiffArgs {
    /// The plan before (say, made with the current policy).
    pub before: PathBuf,
    /// The plan after (say, made with the proposed policy).
    pub after: PathBuf,
    /// Rows of the table of differing partners in human and Markdown
    /// output, the most severe first (0: all of them, held in memory).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ViewFormat::Human)]
    pub format: ViewFormat,
}

/// How a partner differs between the plans.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In both plans, predicted differently.
    Changed,
    /// Only in the plan after.
    Added,
    /// Only in the plan before.
    Removed,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Changed => "changed",
            Status::Added => "added",
            Status::Removed => "removed",
        }
    }
}

/// One field of a partner's entry that differs.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// `from`, `to` (versions), `type`, `categories`, `band`, `action`,
    /// `reason`, `validation`, `sign` (authorities), `target` or `state`
    /// (its digest); for an added or removed partner, `change` (from → to),
    /// `type`, `band` and `sign`.
    pub field: &'static str,
    /// As the plan before has it.
    pub before: String,
    /// As the plan after has it.
    pub after: String,
}

/// A partner that differs.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct DiffRow {
    /// Partner id.
    pub id: String,
    /// How it differs.
    pub status: Status,
    /// Its action in the plan before (none when added).
    pub action_before: Option<Action>,
    /// Its action in the plan after (none when removed).
    pub action_after: Option<Action>,
    /// The fields that differ (changed partners), or what the partner's
    /// entry says (added and removed ones: `before` or `after` empty).
    pub changes: Vec<FieldChange>,
}

impl DiffRow {
    fn severity(&self) -> Action {
        self.action_before
            .max(self.action_after)
            .unwrap_or(Action::None)
    }

    fn action_cell(&self) -> String {
        match (self.action_before, self.action_after) {
            (Some(a), Some(b)) if a == b => a.as_str().to_string(),
            (Some(a), Some(b)) => format!("{} → {}", a.as_str(), b.as_str()),
            (Some(a), None) | (None, Some(a)) => a.as_str().to_string(),
            (None, None) => "–".into(),
        }
    }

    fn what_cell(&self) -> String {
        self.changes
            .iter()
            .map(|c| match self.status {
                Status::Changed => format!("{} {} → {}", c.field, c.before, c.after),
                Status::Added => format!("{} {}", c.field, c.after),
                Status::Removed => format!("{} {}", c.field, c.before),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn cells(&self) -> Vec<String> {
        vec![
            shown_id(&self.id),
            self.status.as_str().to_string(),
            self.action_cell(),
            self.what_cell(),
        ]
    }
}

/// Column titles of the table of differing partners.
const DIFF_HEADERS: [&str; 4] = ["partner", "status", "action", "what changed"];

/// Names of the fields a reviewer compares, in the order of a
/// [`Packed`] partner's text (`sign`: the authorities; `state`: the
/// SHA-256 of the state the entry carries).
const FIELDS: [&str; 11] = [
    "from",
    "to",
    "type",
    "categories",
    "band",
    "action",
    "reason",
    "validation",
    "sign",
    "target",
    "state",
];

/// A partner as the diff compares it: its [`FIELDS`] as printable text in
/// one string, apart by NUL (which printable text never holds). It is all
/// that is held of a partner out of place (a few hundred bytes).
struct Packed {
    /// Its place in its plan.
    place: usize,
    action: Action,
    text: Box<str>,
}

impl Packed {
    fn of(e: &EntryView, place: usize) -> Packed {
        let version = |v: &Option<String>| printable(v.as_deref().unwrap_or("–")).into_owned();
        let values = [
            version(&e.from),
            version(&e.to),
            printable(e.migration.as_deref().unwrap_or("none")).into_owned(),
            list(&e.categories),
            printable(e.predicted.band.as_deref().unwrap_or("unknown")).into_owned(),
            e.predicted.action.as_str().to_string(),
            printable(&e.predicted.reason).into_owned(),
            printable(&e.predicted.validation).into_owned(),
            list(&e.approvals_required),
            e.target.as_ref().map_or("–".to_string(), |t| {
                printable(&t.to_string()).into_owned()
            }),
            printable(short(&e.state_text_digest)).into_owned(),
        ];
        Packed {
            place,
            action: e.predicted.action,
            text: values.join("\0").into_boxed_str(),
        }
    }

    /// `(field, value)` for every field.
    fn fields(&self) -> impl Iterator<Item = (&'static str, &str)> {
        FIELDS.iter().copied().zip(self.text.split('\0'))
    }

    fn value(&self, field: &str) -> &str {
        self.fields()
            .find(|(f, _)| *f == field)
            .map_or("", |(_, v)| v)
    }
}

/// The fields that differ between `a` and `b` (the same partner).
fn compare(a: &Packed, b: &Packed) -> Vec<FieldChange> {
    a.fields()
        .zip(b.fields())
        .filter(|((_, x), (_, y))| x != y)
        .map(|((field, before), (_, after))| FieldChange {
            field,
            before: before.to_string(),
            after: after.to_string(),
        })
        .collect()
}

/// What an added or removed partner's entry says, briefly: its change of
/// version, type, band and signers.
fn described(p: &Packed) -> Vec<(&'static str, String)> {
    let (from, to) = (p.value("from"), p.value("to"));
    let change = if from == to {
        from.to_string()
    } else {
        format!("{from} → {to}")
    };
    let mut v = vec![("change", change)];
    for field in ["type", "band", "sign"] {
        v.push((field, p.value(field).to_string()));
    }
    v
}

/// A differing partner with its place, for the heap of rows shown.
struct Ranked {
    key: (std::cmp::Reverse<Action>, usize),
    row: DiffRow,
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// The differing partners: kept (the most severe, at most a limit) or
/// written as JSON as they are found.
struct Sink<'w> {
    limit: usize,
    heap: BinaryHeap<Ranked>,
    json: Option<&'w mut dyn Write>,
    found: usize,
    changed: usize,
    added: usize,
    removed: usize,
}

impl Sink<'_> {
    fn push(&mut self, row: DiffRow) -> Result<(), CliError> {
        self.found += 1;
        match row.status {
            Status::Changed => self.changed += 1,
            Status::Added => self.added += 1,
            Status::Removed => self.removed += 1,
        }
        let write_error = |e: std::io::Error| UsageError(format!("cannot write the output: {e}"));
        if let Some(w) = &mut self.json {
            if self.found > 1 {
                w.write_all(b",").map_err(write_error)?;
            }
            w.write_all(b"\n").map_err(write_error)?;
            // As every report on stdout: what a terminal would obey (a bidi
            // override a plan's text carries) as `\uXXXX`.
            super::output::write_json_safe(&mut **w, &row).map_err(write_error)?;
            return Ok(());
        }
        self.heap.push(Ranked {
            key: (std::cmp::Reverse(row.severity()), self.found),
            row,
        });
        if self.limit > 0 && self.heap.len() > self.limit {
            self.heap.pop();
        }
        Ok(())
    }
}

/// One side of the diff: its stream, header and counts.
struct Side {
    stream: PlanStream,
    /// The first item, read ahead by [`Side::start`].
    first: Option<PlanItem>,
    header: Option<PlanHeader>,
    counts: Counts,
    partners: usize,
}

impl Side {
    fn open(path: &std::path::Path) -> Result<Side, CliError> {
        Ok(Side {
            stream: PlanStream::open(path)?,
            first: None,
            header: None,
            counts: Counts::default(),
            partners: 0,
        })
    }

    /// Read the first item: a file that is no plan at all fails here,
    /// before any output.
    fn start(&mut self) -> Result<(), CliError> {
        self.first = self.stream.next_item().transpose()?;
        Ok(())
    }

    /// The next entry (counted), `None` at the end.
    fn next_entry(&mut self) -> Result<Option<EntryView>, CliError> {
        loop {
            let item = match self.first.take() {
                Some(item) => item,
                None => match self.stream.next_item() {
                    Some(item) => item?,
                    None => break,
                },
            };
            match item {
                PlanItem::Header(h) => self.header = Some(*h),
                PlanItem::Totals(_) => {}
                PlanItem::Entry(e) => {
                    self.partners += 1;
                    self.counts.add(&e);
                    return Ok(Some(*e));
                }
            }
        }
        Ok(None)
    }

    fn header(&self) -> Result<&PlanHeader, CliError> {
        self.header.as_ref().ok_or_else(|| {
            UsageError(format!(
                "`{}` is not a plan (no `header`)",
                self.stream.path().display()
            ))
            .into()
        })
    }

    fn file(&self) -> String {
        self.stream.path().display().to_string()
    }

    fn json(&self) -> Result<serde_json::Value, CliError> {
        let h = self.header()?;
        Ok(serde_json::json!({
            "file": self.file(),
            "hash": self.stream.hash().unwrap_or_default(),
            "kind": kind(h),
            "policy": h.policy,
            "created_at": h.created_at,
            "expires_at": h.expires_at,
            "partners": self.partners,
        }))
    }
}

/// Partners held until their match comes: id → partner.
type Held = HashMap<Box<str>, Packed>;

/// What the diff found, besides the rows.
struct Outcome {
    before: Side,
    after: Side,
    rows: Vec<DiffRow>,
    changed: usize,
    added: usize,
    removed: usize,
    /// Differences of the plans' headers (policy, kind, target for all).
    header_changes: Vec<FieldChange>,
}

impl Outcome {
    fn differs(&self) -> bool {
        self.changed + self.added + self.removed > 0
    }

    fn unchanged(&self) -> usize {
        self.after
            .partners
            .saturating_sub(self.changed + self.added)
    }
}

/// Hold `e` from one side, or compare it with its match from the other.
fn meet(
    e: EntryView,
    place: usize,
    mine: &mut Held,
    theirs: &mut Held,
    mine_is_before: bool,
    path: &std::path::Path,
    sink: &mut Sink<'_>,
) -> Result<(), CliError> {
    let packed = Packed::of(&e, place);
    match theirs.remove(e.id.as_str()) {
        Some(other) => {
            let (a, b) = if mine_is_before {
                (&packed, &other)
            } else {
                (&other, &packed)
            };
            emit_pair(e.id, a, b, sink)
        }
        None => {
            if mine.contains_key(e.id.as_str()) {
                return Err(UsageError(format!(
                    "`{}` is not a valid plan: partner `{}` appears twice",
                    path.display(),
                    shown_id(&e.id)
                ))
                .into());
            }
            mine.insert(e.id.into_boxed_str(), packed);
            Ok(())
        }
    }
}

fn emit_pair(id: String, a: &Packed, b: &Packed, sink: &mut Sink<'_>) -> Result<(), CliError> {
    if a.text == b.text {
        return Ok(());
    }
    sink.push(DiffRow {
        id,
        status: Status::Changed,
        action_before: Some(a.action),
        action_after: Some(b.action),
        changes: compare(a, b),
    })
}

fn lone(id: &str, p: &Packed, status: Status) -> DiffRow {
    let changes = described(p)
        .into_iter()
        .map(|(field, text)| match status {
            Status::Removed => FieldChange {
                field,
                before: text,
                after: String::new(),
            },
            _ => FieldChange {
                field,
                before: String::new(),
                after: text,
            },
        })
        .collect();
    DiffRow {
        id: id.to_string(),
        status,
        action_before: (status == Status::Removed).then_some(p.action),
        action_after: (status == Status::Added).then_some(p.action),
        changes,
    }
}

/// Compare the plans.
fn diff(args: &DiffArgs, json: Option<&mut dyn Write>) -> Result<Outcome, CliError> {
    let mut before = Side::open(&args.before)?;
    let mut after = Side::open(&args.after)?;
    before.start()?;
    after.start()?;
    let write_error = |e: std::io::Error| UsageError(format!("cannot write the output: {e}"));
    let mut json = json;
    if let Some(w) = &mut json {
        w.write_all(b"{\"format_version\":1,\"partners\":[")
            .map_err(write_error)?;
    }
    let mut sink = Sink {
        limit: args.limit,
        heap: BinaryHeap::new(),
        json,
        found: 0,
        changed: 0,
        added: 0,
        removed: 0,
    };
    let (mut held_before, mut held_after) = (Held::new(), Held::new());
    loop {
        let a = before.next_entry()?;
        let b = after.next_entry()?;
        match (a, b) {
            (None, None) => break,
            (Some(a), Some(b))
                if a.id == b.id && held_before.is_empty() && held_after.is_empty() =>
            {
                let (pa, pb) = (
                    Packed::of(&a, before.partners),
                    Packed::of(&b, after.partners),
                );
                emit_pair(b.id, &pa, &pb, &mut sink)?
            }
            (a, b) => {
                if let Some(a) = a {
                    let place = before.partners;
                    meet(
                        a,
                        place,
                        &mut held_before,
                        &mut held_after,
                        true,
                        &args.before,
                        &mut sink,
                    )?;
                }
                if let Some(b) = b {
                    let place = after.partners;
                    meet(
                        b,
                        place,
                        &mut held_after,
                        &mut held_before,
                        false,
                        &args.after,
                        &mut sink,
                    )?;
                }
            }
        }
    }
    for (held, status) in [(held_before, Status::Removed), (held_after, Status::Added)] {
        let mut lones: Vec<(Box<str>, Packed)> = held.into_iter().collect();
        lones.sort_by_key(|(_, p)| p.place);
        for (id, p) in lones {
            sink.push(lone(&id, &p, status))?;
        }
    }
    let header_changes = {
        let (a, b) = (before.header()?, after.header()?);
        let mut v = Vec::new();
        let mut field = |field: &'static str, x: String, y: String| {
            if x != y {
                v.push(FieldChange {
                    field,
                    before: x,
                    after: y,
                });
            }
        };
        field("kind", kind(a).into(), kind(b).into());
        field(
            "policy",
            printable(&a.policy.name).into_owned(),
            printable(&b.policy.name).into_owned(),
        );
        field(
            "policy hash",
            short(&a.policy.hash).into(),
            short(&b.policy.hash).into(),
        );
        let all = |h: &PlanHeader| {
            h.target_all.as_ref().map_or("–".to_string(), |t| {
                printable(&t.to_string()).into_owned()
            })
        };
        field("target for all", all(a), all(b));
        v
    };
    Ok(Outcome {
        rows: std::mem::take(&mut sink.heap)
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.row)
            .collect(),
        changed: sink.changed,
        added: sink.added,
        removed: sink.removed,
        before,
        after,
        header_changes,
    })
}

/// `restrict 2 → 3 (+1)` lines of the totals that changed, each list in
/// its order of severity.
fn changed_totals(o: &Outcome) -> Vec<(String, Vec<String>)> {
    let (a, b) = (&o.before.counts, &o.after.counts);
    let delta = |x: usize, y: usize| {
        if y >= x {
            format!("+{}", y - x)
        } else {
            format!("-{}", x - y)
        }
    };
    let line = |names: Vec<String>, x: &dyn Fn(&str) -> usize, y: &dyn Fn(&str) -> usize| {
        names
            .into_iter()
            .filter(|n| x(n) != y(n))
            .map(|n| {
                format!(
                    "{} {} → {} ({})",
                    printable(&n),
                    x(&n),
                    y(&n),
                    delta(x(&n), y(&n))
                )
            })
            .collect::<Vec<_>>()
    };
    let mut out = Vec::new();
    let actions: Vec<String> = super::plan_show::by_severity()
        .map(|a| a.as_str().to_string())
        .collect();
    let count = |c: &Counts, n: &str| {
        Action::ALL
            .iter()
            .find(|a| a.as_str() == n)
            .and_then(|a| c.by_action.get(a).copied())
            .unwrap_or(0)
    };
    out.push((
        "by action".to_string(),
        line(actions, &|n| count(a, n), &|n| count(b, n)),
    ));
    let union = |x: Vec<(&str, usize)>, y: Vec<(&str, usize)>| {
        let mut names: Vec<String> = Vec::new();
        for (n, _) in y.into_iter().chain(x) {
            if !names.iter().any(|m| m == n) {
                names.push(n.to_string());
            }
        }
        names
    };
    let tally = |m: &std::collections::BTreeMap<String, super::plan_show::Tally>, n: &str| {
        m.get(n).map_or(0, |t| t.partners)
    };
    out.push((
        "by type".to_string(),
        line(
            union(a.types(), b.types()),
            &|n| tally(&a.by_type, n),
            &|n| tally(&b.by_type, n),
        ),
    ));
    out.push((
        "by band".to_string(),
        line(
            union(a.bands(), b.bands()),
            &|n| tally(&a.by_band, n),
            &|n| tally(&b.by_band, n),
        ),
    ));
    let signs = |c: &Counts, n: &str| c.authorities.get(n).copied().unwrap_or(0);
    out.push((
        "to sign".to_string(),
        line(union(a.signers(), b.signers()), &|n| signs(a, n), &|n| {
            signs(b, n)
        }),
    ));
    out.retain(|(_, v)| !v.is_empty());
    out
}

/// The human output.
fn human(o: &Outcome, width: Option<usize>) -> String {
    let cut = |line: String| match width {
        Some(w) => view::truncate(&line, w),
        None => line,
    };
    let side = |s: &Side| {
        format!(
            "{} ({}, {} partners)",
            printable(&s.file()),
            short(s.stream.hash().unwrap_or_default()),
            s.partners
        )
    };
    let mut out = cut(format!(
        "plan diff {} → {}",
        side(&o.before),
        side(&o.after)
    ));
    out.push('\n');
    for c in &o.header_changes {
        out.push_str(&cut(format!("  {:<16}{} → {}", c.field, c.before, c.after)));
        out.push('\n');
    }
    if !o.differs() {
        out.push_str("no partner differs: every partner is predicted alike in both plans\n");
        return out;
    }
    out.push_str(&format!(
        "{} changed · {} added · {} removed · {} unchanged\n",
        o.changed,
        o.added,
        o.removed,
        o.unchanged()
    ));
    for (title, items) in changed_totals(o) {
        out.push_str(&format!(
            "  {title:<11}{}\n",
            view::joined(&items, 13, width)
        ));
    }
    out.push('\n');
    let mut table = Table::new(&DIFF_HEADERS);
    table.rows = o.rows.iter().map(DiffRow::cells).collect();
    out.push_str(&table.plain(width));
    let hidden = (o.changed + o.added + o.removed).saturating_sub(o.rows.len());
    if hidden > 0 {
        let hint = format!("… and {hidden} more: raise --limit, or see all with --format json");
        out.push_str(&view::wrap_words(&hint, width));
        out.push('\n');
    }
    out
}

/// The Markdown output.
fn markdown(o: &Outcome) -> String {
    let mut out = format!(
        "### Plan diff `{}` → `{}`\n\n",
        short(o.before.stream.hash().unwrap_or_default()),
        short(o.after.stream.hash().unwrap_or_default())
    );
    for c in &o.header_changes {
        out.push_str(&format!(
            "- {}: `{}` → `{}`\n",
            c.field,
            c.before.replace('`', "'"),
            c.after.replace('`', "'")
        ));
    }
    if !o.header_changes.is_empty() {
        out.push('\n');
    }
    if !o.differs() {
        out.push_str("No partner differs: every partner is predicted alike in both plans.\n");
        return out;
    }
    out.push_str(&format!(
        "**{} changed** · **{} added** · **{} removed** · {} unchanged\n\n",
        o.changed,
        o.added,
        o.removed,
        o.unchanged()
    ));
    let totals = changed_totals(o);
    if !totals.is_empty() {
        let mut t = Table::new(&["totals", "before → after"]);
        t.rows = totals
            .into_iter()
            .flat_map(|(title, items)| items.into_iter().map(move |i| vec![title.clone(), i]))
            .collect();
        out.push_str(&t.markdown());
        out.push('\n');
    }
    let mut table = Table::new(&DIFF_HEADERS);
    table.rows = o.rows.iter().map(DiffRow::cells).collect();
    let long = o.rows.len() > super::plan_show::DETAILS_AFTER;
    if long {
        out.push_str(&format!(
            "<details><summary>{} partners that differ, the most severe first</summary>\n\n",
            o.rows.len()
        ));
    }
    out.push_str(&table.markdown());
    let hidden = (o.changed + o.added + o.removed).saturating_sub(o.rows.len());
    if hidden > 0 {
        out.push_str(&format!(
            "\n… and {hidden} more (`pmf plan diff --format json` lists them all).\n"
        ));
    }
    if long {
        out.push_str("\n</details>\n");
    }
    out
}

/// Run `pmf plan diff`.
pub fn run(args: &DiffArgs) -> Result<Exit, CliError> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let write_error = |e: std::io::Error| UsageError(format!("cannot write the output: {e}"));
    let outcome = match args.format {
        ViewFormat::Json => {
            let o = diff(args, Some(&mut out))?;
            let mut tail = serde_json::Map::new();
            tail.insert(
                "plans".into(),
                serde_json::json!({"before": o.before.json()?, "after": o.after.json()?}),
            );
            tail.insert(
                "header_changes".into(),
                serde_json::to_value(&o.header_changes).unwrap_or_default(),
            );
            tail.insert(
                "summary".into(),
                serde_json::json!({
                    "changed": o.changed,
                    "added": o.added,
                    "removed": o.removed,
                    "unchanged": o.unchanged(),
                    "differs": o.differs(),
                }),
            );
            tail.insert(
                "totals".into(),
                serde_json::json!({"before": o.before.counts.json(), "after": o.after.counts.json()}),
            );
            let tail = serde_json::to_string(&tail).unwrap_or_default();
            let fields = tail
                .get(1..tail.len().saturating_sub(1))
                .unwrap_or_default();
            writeln!(out, "\n],{}}}", super::output::json_safe(fields)).map_err(write_error)?;
            o
        }
        ViewFormat::Human => {
            let o = diff(args, None)?;
            write!(out, "{}", human(&o, view::terminal_width())).map_err(write_error)?;
            o
        }
        ViewFormat::Markdown => {
            let o = diff(args, None)?;
            write!(out, "{}", markdown(&o)).map_err(write_error)?;
            o
        }
    };
    out.flush().map_err(write_error)?;
    Ok(if outcome.differs() {
        Exit::Failure
    } else {
        Exit::Success
    })
}
