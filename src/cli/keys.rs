//! Private keys as the commands that sign use them: the operator key
//! loaded (and, on a new store, made and said so), and a warning for a key
//! file others than its owner can read.

use std::path::Path;

use crate::runtime::approvals;
use crate::store::checkpoint::OperatorKey;
use crate::store::{Store, StoreError};

/// Warn when the private key at `path`, which signs `what` (`as its
/// authority`, `this store's checkpoints`), may be read by others than its
/// owner (as `ssh` does; a warning, as keys mounted from a secret store may
/// be shared on purpose).
pub fn warn_if_exposed(path: &Path, what: &str) {
    if let Some(mode) = approvals::key_exposed(path) {
        errln!(
            "pmf: warning: the private key `{}` can be read by others than its owner (mode {mode:03o}): anyone who copies it signs {what}; `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
}

/// The operator key that signs `store`'s checkpoints: the one at `given`,
/// or beside the store, made there for a store that has none yet. A key
/// made now is named with its public key (it must be kept: a lost one is
/// replaced only with every authority's approval), and one others can
/// read is warned of.
pub fn operator_key(store: &Store, given: Option<&Path>) -> Result<OperatorKey, StoreError> {
    let (key, made) = store.operator_key(given)?;
    if made {
        errln!(
            "pmf: made the operator key `{}` (public key {}); it signs this store's checkpoints: keep it private and keep it",
            key.path.display(),
            key.public_hex()
        );
    }
    warn_if_exposed(&key.path, "this store's checkpoints");
    Ok(key)
}
