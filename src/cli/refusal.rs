//! A plan `pmf apply` refuses is said on stderr and recorded in the lineage
//! of the store it was aimed at (the reserved chain `@refused`, see
//! [`crate::store::refused`]), so that an auditor sees the attempt, not
//! only what was applied. Nothing of the plan is applied either way. A
//! store that does not exist, or holds nothing yet, records no refusal:
//! the plan could have changed nothing there.

use std::path::Path;

use super::Exit;
use crate::runtime::plan::{LoadedPlan, now_rfc3339};
use crate::store::refused::Refusal;
use crate::store::{DEFAULT_PATH, Store, StoreError};

/// What a refusal of a plan is recorded with.
pub struct Refuser<'a> {
    /// The store the plan was aimed at.
    pub store: &'a Path,
    /// The operator's key, if not the one beside the store.
    pub operator_key: Option<&'a Path>,
    /// The plan refused.
    pub plan: &'a LoadedPlan,
}

impl Refuser<'_> {
    /// Refuse the plan: say `reason`, then each line of `after`, record
    /// the reason in the store, and fail.
    pub fn refuse(&self, reason: &str, after: &[&str]) -> Exit {
        errln!("pmf: {reason}");
        for line in after {
            errln!("pmf: {line}");
        }
        self.record(reason);
        Exit::Failure
    }

    /// Record `reason` as a refusal of the plan in the store, when the
    /// store exists, and say whether it was recorded.
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
    /// signed event: there is nothing for the plan to have changed).
    fn try_record(&self, reason: &str) -> Result<bool, StoreError> {
        let mut store = Store::open_existing(self.store)?;
        if store.latest_checkpoint()?.is_none() {
            return Ok(false);
        }
        let (operator, made) = store.operator_key(self.operator_key)?;
        if made {
            errln!(
                "pmf: made the operator key `{}` (public key {}); it signs this store's checkpoints: keep it private and keep it",
                operator.path.display(),
                operator.public_hex()
            );
        }
        let mut batch = store.begin(&operator)?;
        batch.refuse(&Refusal {
            plan_hash: self.plan.hash.clone(),
            policy_hash: self.plan.plan.header.policy.hash.clone(),
            reason: reason.to_string(),
            time: now_rfc3339(),
        })?;
        batch.commit()?;
        Ok(true)
    }
}
