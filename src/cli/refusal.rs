//! A change the store refuses (a plan `pmf apply` refuses, states `pmf
//! state import` refuses) is said on stderr and recorded in the lineage of
//! the store it was aimed at (the reserved chain `@refused`, see
//! [`crate::store::refused`]), so that an auditor sees the attempt, not
//! only what was applied. Nothing of it is applied either way. A store
//! that does not exist, or holds nothing yet, records no refusal: the
//! change could have changed nothing there. The caller holds the store's
//! lock.

use std::path::Path;

use super::Exit;
use crate::runtime::plan::{LoadedPlan, now_rfc3339};
use crate::store::refused::Refusal;
use crate::store::{DEFAULT_PATH, Store, StoreError};

/// `head: ` and the first five of `items` (`; `-separated), with how many
/// more there are: a reason to record when a refusal names many things.
pub fn listed(head: &str, items: &[String]) -> String {
    let mut reason = format!(
        "{head}: {}",
        items.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
    );
    if items.len() > 5 {
        reason.push_str(&format!("; and {} more", items.len() - 5));
    }
    reason
}

/// What a refusal is recorded with.
pub struct Refuser<'a> {
    /// The store the change was aimed at.
    pub store: &'a Path,
    /// The operator's key, if not the one beside the store.
    pub operator_key: Option<&'a Path>,
    /// The refused plan's hash (`None`: not a plan).
    pub plan_hash: Option<String>,
    /// The policy hash the change was made under.
    pub policy_hash: String,
    /// What the reason is prefixed with in the record (what was refused,
    /// when the plan hash does not say it).
    pub prefix: String,
}

impl<'a> Refuser<'a> {
    /// The refuser of `plan`, aimed at `store`.
    pub fn of_plan(
        store: &'a Path,
        operator_key: Option<&'a Path>,
        plan: &LoadedPlan,
    ) -> Refuser<'a> {
        Refuser {
            store,
            operator_key,
            plan_hash: Some(plan.hash.clone()),
            policy_hash: plan.plan.header.policy.hash.clone(),
            prefix: String::new(),
        }
    }

    /// Refuse: say `reason`, then each line of `after`, record the reason
    /// in the store, and fail.
    pub fn refuse(&self, reason: &str, after: &[&str]) -> Exit {
        errln!("pmf: {reason}");
        for line in after {
            errln!("pmf: {line}");
        }
        self.record(reason);
        Exit::Failure
    }

    /// Record `reason` as a refusal in the store, when the store exists,
    /// and say whether it was recorded.
    pub fn record(&self, reason: &str) {
        if !self.store.exists() {
            return;
        }
        match self.try_record(reason) {
            Ok(false) => {}
            Ok(true) => {
                let store = if self.store == Path::new(DEFAULT_PATH) {
                    String::new()
                } else {
                    format!(" --store {}", self.store.display())
                };
                errln!(
                    "pmf: the refusal is recorded in the store's lineage (`pmf lineage show @refused{store}`)"
                );
            }
            Err(e) => errln!("pmf: the refusal could not be recorded in the store: {e}"),
        }
    }

    /// Record `reason`; `false` when the store holds nothing yet (no
    /// signed event: there is nothing the change could have changed).
    fn try_record(&self, reason: &str) -> Result<bool, StoreError> {
        let mut store = Store::open_existing(self.store)?;
        if store.latest_checkpoint()?.is_none() {
            return Ok(false);
        }
        // A store with a signed checkpoint has pinned its operator key: none
        // is made here (a missing one is an error).
        let operator = super::keys::operator_key(&store, self.operator_key)?;
        let mut batch = store.begin(&operator)?;
        batch.refuse(&Refusal {
            plan_hash: self.plan_hash.clone(),
            policy_hash: self.policy_hash.clone(),
            reason: format!("{}{reason}", self.prefix),
            time: now_rfc3339(),
        })?;
        batch.commit()?;
        Ok(true)
    }
}
