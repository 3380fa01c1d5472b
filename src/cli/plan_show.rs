//! `pmf plan show PLAN`: a plan as a reviewer reads it — totals by
//! severity, the authorities that must sign, and per partner what changes,
//! why and who signs, filtered by action, type or partner.
//!
//! The plan is streamed: memory holds the totals and the rows shown (the
//! most severe first, at most `--limit`), never the whole plan.

use std::collections::{BTreeMap, BinaryHeap};
use std::io::Write;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use serde::Serialize;

use super::view::{self, Glob, Table, short};
use super::{CliError, Exit, UsageError};
use crate::runtime::engine::Action;
use crate::runtime::plan::PlanHeader;
pub use crate::runtime::plan_view::Tally;
use crate::runtime::plan_view::{EntryView, PlanItem, PlanStream, printable};
use crate::runtime::value::shown_id;

/// Output formats of `plan show` and `plan diff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ViewFormat {
    /// For people, on a terminal.
    Human,
    /// For a pull-request comment.
    Markdown,
    /// For machines.
    Json,
}

/// `--action` values: the names of the runtime's actions, `none` included.
fn action_arg() -> impl clap::builder::TypedValueParser<Value = Action> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(crate::model::TEST_ACTIONS).map(|name| {
        // The parser accepts only these names, so one is always found.
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .unwrap_or(Action::None)
    })
}

/// Which partners to show (all of them when no filter is given).
#[derive(Args, Debug, Clone, Default)]
pub struct FilterArgs {
    /// Only partners with this action (repeat, or separate by commas).
    #[arg(long = "action", value_delimiter = ',', value_parser = action_arg())]
    pub actions: Vec<Action>,
    /// Only partners of this migration type (`none` for no type; repeat,
    /// or separate by commas).
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Only partners whose id matches: an exact id or a glob (`*`, `?`,
    /// `[a-z]`); repeat for several.
    #[arg(long = "partner")]
    pub partners: Vec<String>,
}

/// Arguments of `pmf plan show`.
#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// Which partners to show.
    #[command(flatten)]
    pub filters: FilterArgs,
    /// Rows of the partner table in human and Markdown output, the most
    /// severe first (0: every matching partner, held in memory).
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ViewFormat::Human)]
    pub format: ViewFormat,
}

/// Filters ready to match.
#[derive(Debug, Default)]
pub struct Filters {
    actions: Vec<Action>,
    types: Vec<String>,
    partners: Vec<Glob>,
}

impl Filters {
    /// The filters of the command line; a bad `--partner` pattern is a
    /// usage error naming it.
    pub fn new(args: &FilterArgs) -> Result<Filters, UsageError> {
        let partners = args
            .partners
            .iter()
            .map(|p| {
                Glob::new(p).map_err(|e| {
                    UsageError(format!("bad --partner pattern `{}`: {e}", printable(p)))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Filters {
            actions: args.actions.clone(),
            types: args.types.clone(),
            partners,
        })
    }

    /// Whether no filter was given.
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty() && self.types.is_empty() && self.partners.is_empty()
    }

    /// Whether `e` passes every filter.
    pub fn matches(&self, e: &EntryView) -> bool {
        (self.actions.is_empty() || self.actions.contains(&e.predicted.action))
            && (self.types.is_empty() || self.types.iter().any(|t| t == type_of(e)))
            && (self.partners.is_empty() || self.partners.iter().any(|g| g.matches(&e.id)))
    }

    /// The filters as the command line gave them (for output).
    fn described(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.actions.is_empty() {
            let names: Vec<&str> = self.actions.iter().map(|a| a.as_str()).collect();
            out.push(format!("--action {}", names.join(",")));
        }
        if !self.types.is_empty() {
            out.push(format!("--type {}", printable(&self.types.join(","))));
        }
        for p in &self.partners {
            out.push(format!("--partner {}", printable(p.as_str())));
        }
        out
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "action": self.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            "type": self.types,
            "partner": self.partners.iter().map(Glob::as_str).collect::<Vec<_>>(),
        })
    }
}

/// A partner's migration type, `none` when it has none.
pub fn type_of(e: &EntryView) -> &str {
    e.migration.as_deref().unwrap_or("none")
}

/// A partner's band, `unknown` when its health is unknown.
pub fn band_of(e: &EntryView) -> &str {
    e.predicted.band.as_deref().unwrap_or("unknown")
}

/// Actions from the most severe to the least: `restrict` (blocked), then
/// `fallback` (returns to its stable state), `throttle` (paused),
/// `review` (waits for governance), `monitor`, `proceed`, `none`.
pub fn by_severity() -> impl Iterator<Item = Action> {
    Action::ALL.iter().rev().copied()
}

/// A row of the partner table, as every format shows it.
#[derive(Serialize, Debug, Clone, PartialEq)]
pub struct Row {
    /// Partner id.
    pub id: String,
    /// Current version.
    pub from: Option<String>,
    /// Target version.
    pub to: Option<String>,
    /// Migration type.
    #[serde(rename = "type")]
    pub migration: Option<String>,
    /// Categories touched.
    pub categories: Vec<String>,
    /// Predicted band.
    pub band: Option<String>,
    /// Health score.
    pub score: Option<f64>,
    /// Predicted action.
    pub action: Action,
    /// Why.
    pub reason: String,
    /// Worst validation outcome.
    pub validation: String,
    /// Authorities that must sign.
    pub approvals_required: Vec<String>,
    /// Predicted chance of a fallback.
    pub fallback_risk: f64,
}

impl Row {
    /// The row of an entry.
    pub fn of(e: EntryView) -> Row {
        Row {
            id: e.id,
            from: e.from,
            to: e.to,
            migration: e.migration,
            categories: e.categories,
            band: e.predicted.band.map(Into::into),
            score: e.predicted.score,
            action: e.predicted.action,
            reason: e.predicted.reason.into(),
            validation: e.predicted.validation.into(),
            approvals_required: e.approvals_required,
            fallback_risk: e.fallback_risk,
        }
    }

    /// The cells of the human and Markdown tables, in [`ROW_HEADERS`] order.
    pub fn cells(&self) -> Vec<String> {
        vec![
            self.action.as_str().to_string(),
            shown_id(&self.id),
            change(self.from.as_deref(), self.to.as_deref()),
            printable(self.migration.as_deref().unwrap_or("none")).into_owned(),
            list(&self.categories),
            printable(self.band.as_deref().unwrap_or("unknown")).into_owned(),
            list(&self.approvals_required),
            printable(&self.reason).into_owned(),
        ]
    }
}

/// Column titles of the partner table.
pub const ROW_HEADERS: [&str; 8] = [
    "action",
    "partner",
    "change",
    "type",
    "categories",
    "band",
    "sign",
    "reason",
];

/// `1.4.0 → 1.6.0`, or one version when they are equal, `–` for none.
pub fn change(from: Option<&str>, to: Option<&str>) -> String {
    let v = |v: Option<&str>| printable(v.unwrap_or("–")).into_owned();
    if from == to {
        v(from)
    } else {
        format!("{} → {}", v(from), v(to))
    }
}

/// Items joined by `,`, `–` when there are none.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "–".into()
    } else {
        printable(&items.join(",")).into_owned()
    }
}

/// A row with its place: the heap keeps the most severe, earliest rows.
#[derive(Debug)]
struct Ranked {
    action: Action,
    index: usize,
    row: Row,
}

impl Ranked {
    /// Greater is shown later (evicted first when the heap is full).
    fn key(&self) -> (std::cmp::Reverse<Action>, usize) {
        (std::cmp::Reverse(self.action), self.index)
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
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
        self.key().cmp(&other.key())
    }
}

/// Counts of the partners that match, by action, type, band and authority.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Partners counted.
    pub partners: usize,
    /// By action.
    pub by_action: BTreeMap<Action, usize>,
    /// By migration type (`none`).
    pub by_type: BTreeMap<String, Tally>,
    /// By band (`unknown`).
    pub by_band: BTreeMap<String, Tally>,
    /// Partners each authority must sign for.
    pub authorities: BTreeMap<String, usize>,
    /// Partners that need at least one approval.
    pub needing_approval: usize,
}

impl Counts {
    /// Count `e`.
    pub fn add(&mut self, e: &EntryView) {
        let action = e.predicted.action;
        self.partners += 1;
        *self.by_action.entry(action).or_default() += 1;
        self.by_type
            .entry(type_of(e).to_string())
            .or_default()
            .add(action);
        self.by_band
            .entry(band_of(e).to_string())
            .or_default()
            .add(action);
        for a in &e.approvals_required {
            *self.authorities.entry(a.clone()).or_default() += 1;
        }
        if !e.approvals_required.is_empty() {
            self.needing_approval += 1;
        }
    }

    /// `(action, count)`, the most severe first.
    pub fn actions(&self) -> Vec<(Action, usize)> {
        by_severity()
            .filter_map(|a| self.by_action.get(&a).map(|&n| (a, n)))
            .collect()
    }

    /// Bands from the most severe: by the mildest action of their
    /// partners (the band's own action), then the most partners, then by
    /// name.
    pub fn bands(&self) -> Vec<(&str, usize)> {
        let mut v: Vec<(&String, &Tally)> = self.by_band.iter().collect();
        v.sort_by(|a, b| {
            b.1.mildest
                .cmp(&a.1.mildest)
                .then(b.1.partners.cmp(&a.1.partners))
                .then(a.0.cmp(b.0))
        });
        v.into_iter()
            .map(|(k, t)| (k.as_str(), t.partners))
            .collect()
    }

    /// Migration types, the most partners first, then by name.
    pub fn types(&self) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> = self
            .by_type
            .iter()
            .map(|(k, t)| (k.as_str(), t.partners))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// Authorities, the one signing for most partners first.
    pub fn signers(&self) -> Vec<(&str, usize)> {
        let mut v: Vec<(&str, usize)> = self
            .authorities
            .iter()
            .map(|(k, &n)| (k.as_str(), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// The totals as JSON, each list in its order of severity.
    pub fn json(&self) -> serde_json::Value {
        let named = |v: Vec<(&str, usize)>| {
            v.into_iter()
                .map(|(name, n)| serde_json::json!({"name": name, "partners": n}))
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "partners": self.partners,
            "by_action": named(self.actions().into_iter().map(|(a, n)| (a.as_str(), n)).collect()),
            "by_type": named(self.types()),
            "by_band": named(self.bands()),
            "authorities": named(self.signers()),
            "needing_approval": self.needing_approval,
        })
    }
}

/// What `plan show` learnt from a plan.
#[derive(Debug)]
pub struct Overview {
    /// The plan file, as given.
    pub file: String,
    /// The plan's header.
    pub header: PlanHeader,
    /// BLAKE3 of the file.
    pub hash: String,
    /// Partners in the plan.
    pub plan_partners: usize,
    /// Counts of the partners that match the filters.
    pub counts: Counts,
    /// Rows shown, the most severe first (then in plan order).
    pub rows: Vec<Row>,
    /// Filters, as given.
    pub filters: Vec<String>,
    /// The plan's migration types, with their counts (every partner;
    /// counted only under a `--type` filter).
    pub plan_types: BTreeMap<String, usize>,
    /// Whether each `--partner` pattern matched some partner of the plan.
    pub partner_hits: Vec<bool>,
    /// What the plan's inputs held for partners it does not hold.
    pub not_planned: crate::runtime::plan::NotPlanned,
}

/// What `read` does with the matching entries besides counting them.
pub enum Keep<'w> {
    /// Keep at most this many rows, the most severe first (0: all).
    Rows(usize),
    /// Write the start of the JSON document, then each as a JSON row to
    /// this writer, in plan order, with `,` between them.
    Json(&'w mut dyn Write),
}

/// Read the plan at `path` through `filters`.
pub fn read(
    path: &std::path::Path,
    filters: &Filters,
    mut keep: Keep<'_>,
) -> Result<Overview, CliError> {
    let mut stream = PlanStream::open(path)?;
    // The first item read before any output: a file that is no plan at
    // all fails here.
    let first = stream.next_item().transpose()?;
    let mut header = None;
    let mut counts = Counts::default();
    let mut plan_partners = 0;
    let mut plan_types: BTreeMap<String, usize> = BTreeMap::new();
    let mut partner_hits = vec![false; filters.partners.len()];
    let mut not_planned = crate::runtime::plan::NotPlanned::default();
    let mut heap = BinaryHeap::new();
    let write_error = |e: std::io::Error| UsageError(format!("cannot write the output: {e}"));
    if let Keep::Json(w) = &mut keep {
        w.write_all(b"{\"format_version\":1,\"partners\":[")
            .map_err(write_error)?;
    }
    let mut first = first;
    loop {
        let item = match first.take() {
            Some(item) => item,
            None => match stream.next_item() {
                Some(item) => item?,
                None => break,
            },
        };
        match item {
            PlanItem::Header(h) => header = Some(*h),
            PlanItem::Totals(t) => not_planned = t.not_planned,
            PlanItem::Entry(e) => {
                plan_partners += 1;
                if !filters.types.is_empty() {
                    *plan_types.entry(type_of(&e).to_string()).or_default() += 1;
                }
                for (hit, glob) in partner_hits.iter_mut().zip(&filters.partners) {
                    *hit = *hit || glob.matches(&e.id);
                }
                if !filters.matches(&e) {
                    continue;
                }
                counts.add(&e);
                match &mut keep {
                    Keep::Json(w) => {
                        if counts.partners > 1 {
                            w.write_all(b",").map_err(write_error)?;
                        }
                        w.write_all(b"\n").map_err(write_error)?;
                        // As every report on stdout: what a terminal would obey
                        // (a bidi override a plan's text carries) as `\uXXXX`.
                        super::output::write_json_safe(&mut **w, &Row::of(*e))
                            .map_err(write_error)?;
                    }
                    Keep::Rows(limit) => {
                        heap.push(Ranked {
                            action: e.predicted.action,
                            index: plan_partners,
                            row: Row::of(*e),
                        });
                        if *limit > 0 && heap.len() > *limit {
                            heap.pop();
                        }
                    }
                }
            }
        }
    }
    let header = header
        .ok_or_else(|| UsageError(format!("`{}` is not a plan (no `header`)", path.display())))?;
    Ok(Overview {
        file: path.display().to_string(),
        header,
        hash: stream.hash().unwrap_or_default().to_string(),
        plan_partners,
        counts,
        rows: heap.into_sorted_vec().into_iter().map(|r| r.row).collect(),
        filters: filters.described(),
        plan_types,
        partner_hits,
        not_planned,
    })
}

impl Overview {
    /// The overview of a plan just written, from the [`Review`] gathered
    /// while writing it: what [`read`] with no filter and
    /// `Keep::Rows(review.most_severe.len())` gives (a test holds the two
    /// equal). `None` when an entry kept does not read back.
    ///
    /// [`Review`]: crate::runtime::plan::Review
    pub fn of_review(
        file: &std::path::Path,
        header: PlanHeader,
        hash: &str,
        totals: &crate::runtime::plan::Totals,
        review: &crate::runtime::plan::Review,
    ) -> Option<Overview> {
        let rows = review
            .most_severe
            .iter()
            .map(|text| serde_json::from_str::<EntryView>(text).ok().map(Row::of))
            .collect::<Option<Vec<Row>>>()?;
        let by_action = totals
            .by_action
            .iter()
            .map(|(name, n)| {
                Action::ALL
                    .iter()
                    .find(|a| a.as_str() == name)
                    .map(|a| (*a, *n))
            })
            .collect::<Option<BTreeMap<Action, usize>>>()?;
        Some(Overview {
            file: file.display().to_string(),
            header,
            hash: hash.to_string(),
            plan_partners: totals.partners,
            counts: Counts {
                partners: totals.partners,
                by_action,
                by_type: review.by_type.clone(),
                by_band: review.by_band.clone(),
                authorities: review.authorities.clone(),
                needing_approval: review.needing_approval,
            },
            rows,
            filters: Filters::default().described(),
            plan_types: BTreeMap::new(),
            partner_hits: Vec::new(),
            not_planned: totals.not_planned,
        })
    }
}

/// `restrict 2`, … for a list of counts.
fn items<'a>(v: impl IntoIterator<Item = (&'a str, usize)>) -> Vec<String> {
    v.into_iter()
        .map(|(k, n)| format!("{} {n}", printable(k)))
        .collect()
}

impl Overview {
    /// ` (expired)` when the plan's expiry has passed: it can no longer be
    /// signed or applied.
    fn expired_mark(&self) -> &'static str {
        if self.header.expired(crate::runtime::plan::now_secs()) {
            " (expired: it is no longer signed or applied)"
        } else {
            ""
        }
    }

    /// ` (replaces the store's policy H)`, for a plan that changes the
    /// policy governing the store it was made against.
    fn replaces(&self) -> String {
        self.header
            .replaces_policy
            .as_deref()
            .map(|h| format!(" (replaces the store's governing policy {})", short(h)))
            .unwrap_or_default()
    }

    /// The first line of the human output: the plan and its policy.
    pub fn title(&self) -> String {
        format!(
            "plan {} ({}) · policy `{}` {}{} · {} · made {}{}",
            printable(&self.file),
            short(&self.hash),
            printable(&self.header.policy.name),
            short(&self.header.policy.hash),
            self.replaces(),
            kind(&self.header),
            printable(&self.header.created_at),
            self.header
                .expires_at
                .as_deref()
                .map(|at| format!(", valid to {}{}", printable(at), self.expired_mark()))
                .unwrap_or_default(),
        )
    }

    /// The human output after the title: totals and the partner table.
    /// `width` cuts every line of the table (a terminal's width), `more`
    /// is the hint after a cut table.
    pub fn human_body(&self, width: Option<usize>, more: &str) -> String {
        let c = &self.counts;
        let mut out = String::new();
        let plural = |n: usize| if n == 1 { "partner" } else { "partners" };
        if self.filters.is_empty() {
            out.push_str(&format!("{} {}\n", c.partners, plural(c.partners)));
        } else {
            out.push_str(&format!(
                "{} of {} {} match {}\n",
                c.partners,
                self.plan_partners,
                plural(self.plan_partners),
                self.filters.join(" ")
            ));
        }
        if let Some(left_out) = self.not_planned.described() {
            out.push_str(&format!("  not planned {left_out}\n"));
        }
        if c.partners == 0 {
            return out;
        }
        let line =
            |title: &str, v: Vec<String>| format!("  {title:<11}{}\n", view::joined(&v, 13, width));
        out.push_str(&line(
            "by action",
            items(c.actions().into_iter().map(|(a, n)| (a.as_str(), n))),
        ));
        out.push_str(&line("by type", items(c.types())));
        out.push_str(&line("by band", items(c.bands())));
        if c.authorities.is_empty() {
            out.push_str("  to sign    no approvals needed\n");
        } else {
            let mut signers = items(c.signers());
            if let Some(last) = signers.last_mut() {
                last.push_str(&format!(" ({})", need_approvals(c.needing_approval)));
            }
            out.push_str(&line("to sign", signers));
        }
        out.push('\n');
        let mut table = Table::new(&ROW_HEADERS);
        table.rows = self.rows.iter().map(Row::cells).collect();
        out.push_str(&table.plain(width));
        let hidden = c.partners.saturating_sub(self.rows.len());
        if hidden > 0 {
            let hint = format!("… and {hidden} more {}{more}", plural(hidden));
            out.push_str(&view::wrap_words(&hint, width));
            out.push('\n');
        }
        out
    }

    /// The Markdown output, for a pull-request comment.
    pub fn markdown(&self) -> String {
        let c = &self.counts;
        let mut out = format!(
            "### Plan `{}` · policy `{}`\n\n",
            short(&self.hash),
            view::md(&self.header.policy.name)
        );
        out.push_str(&format!(
            "{} plan made {}{} with policy hash `{}`{}: **{} partners**",
            kind(&self.header),
            view::md(&self.header.created_at),
            self.header
                .expires_at
                .as_deref()
                .map(|at| format!(", valid to {}{},", view::md(at), self.expired_mark()))
                .unwrap_or_default(),
            short(&self.header.policy.hash),
            self.header
                .replaces_policy
                .as_deref()
                .map(|h| format!(
                    " **(replaces the store's governing policy `{}`)**",
                    short(h)
                ))
                .unwrap_or_default(),
            self.plan_partners
        ));
        if !self.filters.is_empty() {
            out.push_str(&format!(
                ", **{} match** {}",
                c.partners,
                view::md(&self.filters.join(" "))
            ));
        }
        out.push_str(".\n\n");
        if c.partners == 0 {
            return out;
        }
        let mut totals = Table::new(&["action", "partners"]);
        totals.rows = c
            .actions()
            .into_iter()
            .map(|(a, n)| vec![a.as_str().to_string(), n.to_string()])
            .collect();
        out.push_str(&totals.markdown());
        out.push('\n');
        let joined = |v: Vec<(&str, usize)>| {
            v.into_iter()
                .map(|(k, n)| format!("{} {n}", view::md(k)))
                .collect::<Vec<_>>()
                .join(" · ")
        };
        out.push_str(&format!(
            "**By type:** {}  \n**By band:** {}\n\n",
            joined(c.types()),
            joined(c.bands())
        ));
        if c.authorities.is_empty() {
            out.push_str("**To sign:** no approvals needed.\n\n");
        } else {
            out.push_str(&format!(
                "**To sign** ({}):\n\n",
                need_approvals(c.needing_approval)
            ));
            let mut signers = Table::new(&["authority", "partners"]);
            signers.rows = c
                .signers()
                .into_iter()
                .map(|(a, n)| vec![a.to_string(), n.to_string()])
                .collect();
            out.push_str(&signers.markdown());
            out.push('\n');
        }
        let mut table = Table::new(&ROW_HEADERS);
        table.rows = self.rows.iter().map(Row::cells).collect();
        let hidden = c.partners.saturating_sub(self.rows.len());
        let long = self.rows.len() > DETAILS_AFTER;
        if long {
            out.push_str(&format!(
                "<details><summary>{} partners, the most severe first</summary>\n\n",
                self.rows.len()
            ));
        }
        out.push_str(&table.markdown());
        if hidden > 0 {
            out.push_str(&format!(
                "\n… and {hidden} more (`pmf plan show --format json` lists them all).\n"
            ));
        }
        if long {
            out.push_str("\n</details>\n");
        }
        out
    }

    /// The JSON fields after `partners` (the caller streamed those).
    pub fn json_tail(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut m = serde_json::Map::new();
        m.insert(
            "plan".into(),
            serde_json::json!({
                "file": self.file,
                "hash": self.hash,
                "kind": kind(&self.header),
                "policy": self.header.policy,
                "created_at": self.header.created_at,
                "expires_at": self.header.expires_at,
                "expired": self.header.expired(crate::runtime::plan::now_secs()),
                "replaces_policy": self.header.replaces_policy,
                "partners": self.plan_partners,
                "not_planned": self.not_planned,
            }),
        );
        m.insert("totals".into(), self.counts.json());
        m
    }
}

/// `1 partner needs approvals`, `2 partners need approvals`.
fn need_approvals(n: usize) -> String {
    if n == 1 {
        "1 partner needs approvals".into()
    } else {
        format!("{n} partners need approvals")
    }
}

/// Rows of a Markdown table beyond which it is folded in `<details>`.
pub const DETAILS_AFTER: usize = 10;

/// `migrate`, `rollback` or `replace`.
pub fn kind(h: &PlanHeader) -> &'static str {
    match h.kind {
        crate::runtime::plan::PlanKind::Migrate => "migrate",
        crate::runtime::plan::PlanKind::Rollback => "rollback",
        crate::runtime::plan::PlanKind::Replace => "replace",
    }
}

/// A `--type` that matched no partner of the plan: likely a typo, exit 1
/// naming the types the plan has.
fn unmatched_types(o: &Overview, filters: &Filters) -> Option<String> {
    let missing: Vec<&String> = filters
        .types
        .iter()
        .filter(|t| !o.plan_types.contains_key(*t))
        .collect();
    if missing.is_empty() {
        return None;
    }
    let has: Vec<String> = o
        .plan_types
        .iter()
        .map(|(t, n)| format!("{} {n}", printable(t)))
        .collect();
    Some(format!(
        "no partner of `{}` has type {} (its types: {})",
        printable(&o.file),
        missing
            .iter()
            .map(|t| format!("`{}`", printable(t)))
            .collect::<Vec<_>>()
            .join(", "),
        if has.is_empty() {
            "none, the plan is empty".to_string()
        } else {
            has.join(", ")
        }
    ))
}

/// `--partner` patterns that matched no partner of the plan: exit 1.
fn unmatched_partners(o: &Overview, filters: &Filters) -> Option<String> {
    let missing: Vec<String> = filters
        .partners
        .iter()
        .zip(&o.partner_hits)
        .filter(|(_, hit)| !**hit)
        .map(|(g, _)| format!("`{}`", printable(g.as_str())))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "no partner of `{}` matches {}",
            printable(&o.file),
            missing.join(", ")
        )
    })
}

/// Run `pmf plan show`.
pub fn run(args: &ShowArgs) -> Result<Exit, CliError> {
    let filters = Filters::new(&args.filters)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let write_error = |e: std::io::Error| UsageError(format!("cannot write the output: {e}"));
    let overview = match args.format {
        ViewFormat::Json => {
            let o = read(&args.plan, &filters, Keep::Json(&mut out))?;
            let mut tail = o.json_tail();
            tail.insert("filters".into(), filters.json());
            tail.insert("matched".into(), o.counts.partners.into());
            let tail = serde_json::to_string(&tail).unwrap_or_default();
            // `{…}` without its braces, after the partners.
            let fields = tail
                .get(1..tail.len().saturating_sub(1))
                .unwrap_or_default();
            writeln!(out, "\n],{}}}", super::output::json_safe(fields)).map_err(write_error)?;
            o
        }
        ViewFormat::Human => {
            let o = read(&args.plan, &filters, Keep::Rows(args.limit))?;
            let width = view::terminal_width();
            let title = o.title();
            let title = match width {
                Some(w) => view::truncate(&title, w),
                None => title,
            };
            write!(
                out,
                "{title}\n{}",
                o.human_body(
                    width,
                    ": narrow with --partner, --action or --type, raise --limit, or see all with --format json"
                )
            )
            .map_err(write_error)?;
            o
        }
        ViewFormat::Markdown => {
            let o = read(&args.plan, &filters, Keep::Rows(args.limit))?;
            write!(out, "{}", o.markdown()).map_err(write_error)?;
            o
        }
    };
    out.flush().map_err(write_error)?;
    if let Some(m) = unmatched_types(&overview, &filters) {
        errln!("pmf: {m}");
        return Ok(Exit::Failure);
    }
    if let Some(m) = unmatched_partners(&overview, &filters) {
        errln!("pmf: {m}");
        return Ok(Exit::Failure);
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::input::{Observed, read_observed, read_targets};
    use crate::runtime::plan::{History, InputFile, PlanInputs, PlanKind, PolicyRef, write_plan};
    use crate::runtime::stream::PartnerStream;

    /// The overview `pmf plan` shows from the review it gathers while
    /// writing is the one `pmf plan show` reads back from the file: on the
    /// fleet (every type, band and action), with and without observed
    /// metrics, keeping fewer rows than the plan has and more.
    #[test]
    fn the_review_gathered_while_writing_is_the_plan_read_back() {
        let fleet = |f: &str| std::path::Path::new("examples/fleet").join(f);
        let policy = crate::runtime::load::load_policy(&[fleet("policy.pmf")]).unwrap();
        let targets = read_targets(&policy.schema, &fleet("target.json")).unwrap();
        let history = History::default();
        let dir = tempfile::tempdir().unwrap();
        for (observed, rows) in [
            (Observed::none(), 5),
            (
                read_observed(&policy.schema, &fleet("observed.json")).unwrap(),
                3,
            ),
            (
                read_observed(&policy.schema, &fleet("observed.json")).unwrap(),
                20,
            ),
            (Observed::none(), 100),
        ] {
            let header = PlanHeader {
                kind: PlanKind::Migrate,
                policy: PolicyRef {
                    name: policy.name.clone(),
                    hash: policy.hash.clone(),
                },
                created_at: "2026-12-03T00:00:00Z".into(),
                expires_at: Some("2026-12-10T00:00:00Z".into()),
                policy_sources: Default::default(),
                partners: InputFile {
                    file: "partners.json".into(),
                    blake3: None,
                },
                target: InputFile {
                    file: "target.json".into(),
                    blake3: None,
                },
                observed: None,
                history: String::new(),
                target_all: None,
                replaces_policy: None,
                store_id: None,
            };
            let out = dir.path().join("plan.json");
            let written = write_plan(
                PlanInputs {
                    policy: &policy,
                    partners: PartnerStream::open(&fleet("partners.json")).unwrap(),
                    targets: &targets,
                    observed: &observed,
                    history: &history,
                    header: header.clone(),
                    subset: false,
                    review_rows: rows,
                    stop: None,
                },
                &out,
                |_| {},
            )
            .unwrap();
            let review = written.review.as_ref().expect("a review was asked for");
            assert_eq!(review.most_severe.len(), rows.min(written.totals.partners));
            // As `pmf plan` shows it: with the partner digest the plan wrote.
            let mut header = header;
            header.partners.blake3 = written.partners_blake3.clone();
            let gathered =
                Overview::of_review(&out, header, &written.hash, &written.totals, review)
                    .expect("the entries kept read back");
            let read_back = read(&out, &Filters::default(), Keep::Rows(rows)).unwrap();
            assert_eq!(format!("{gathered:#?}"), format!("{read_back:#?}"));
            assert!(gathered.counts.needing_approval > 0 && gathered.rows.len() >= 3);
        }
    }
}
