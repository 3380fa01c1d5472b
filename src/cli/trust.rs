//! The trust root a project pins: `[trust] root_policy` in the `pmf.toml`
//! of the project a store lives in names the policy that must govern the
//! store first (every later policy is held to approved changes from it).
//!
//! Without a pin, whoever writes a store first chooses the policy that
//! governs it, and only an auditor who runs `pmf lineage verify --policy`
//! with the reviewed files finds out otherwise. With one, reviewed in the
//! project's repository once, `apply` and `state import` refuse to govern
//! a new store by any other policy, and they and `review` refuse to write
//! a store whose root is another; `lineage verify` holds the store to it
//! unless `--policy` names the root to hold it to.

use std::path::{Path, PathBuf};

use super::{CliError, UsageError};
use crate::store::{Store, StoreError};

/// A trust root pinned by a project's `pmf.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedRoot {
    /// The policy hash (lowercase hex).
    pub hash: String,
    /// The `pmf.toml` that pins it.
    pub file: PathBuf,
}

/// The trust root pinned by the project `store` lives in (the nearest
/// `pmf.toml` at or above the store's folder), if it pins one. A
/// `pmf.toml` that cannot be read, or whose pin is not a hash, is a usage
/// error.
pub fn pinned(store: &Path) -> Result<Option<PinnedRoot>, CliError> {
    let folder = match store.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(root) = super::files::project_root(folder) else {
        return Ok(None);
    };
    let hash = super::files::trust_root(&root).map_err(|e| UsageError(e.0))?;
    Ok(hash.map(|hash| PinnedRoot {
        hash,
        file: root.join(super::files::PROJECT_FILE),
    }))
}

/// Why `store` may not be written under `proposed` (a policy hash) when
/// `pin` is its project's trust root: it was first governed by another
/// policy, or, governed by none yet, `proposed` would govern it and is
/// not the root.
pub fn problem(
    store: &Store,
    proposed: &str,
    pin: &PinnedRoot,
) -> Result<Option<String>, StoreError> {
    let first = store.first_governing()?.map(|g| g.policy_hash);
    Ok(match first {
        Some(root) if root == pin.hash => None,
        Some(root) => Some(format!(
            "the store was first governed by policy {root}, but `{}` pins the project's trust root to policy {}: it is not the project's store, or it was started under an unreviewed policy (`pmf lineage verify` says so too)",
            pin.file.display(),
            pin.hash
        )),
        None if proposed == pin.hash => None,
        None => Some(format!(
            "no policy governs the store yet, and this one ({proposed}) would; `{}` pins the project's trust root to policy {}: the store is first governed by the reviewed policy (plan with it, or change the pin where it is reviewed)",
            pin.file.display(),
            pin.hash
        )),
    })
}
