//! What an operator key remembers: the last checkpoint it signed for each
//! store, kept beside the key (`KEY.signed-STORE_ID.json`, readable by its
//! owner only) as a witness's checkpoint is kept.
//!
//! A store can be rolled back to an earlier signed checkpoint without any
//! key: the events after it and the checkpoints that cover them deleted,
//! its rows and Merkle head put back as they were (a backup restored is
//! the same thing). Its log is then the one its latest remaining
//! checkpoint vouches for. The key's memory is not: before a write,
//! [`Store::holds_what_key_signed`] asks that the store still hold the
//! checkpoint the key last signed for it. Where the key is kept apart from
//! the store (`--operator-key`), someone who can write the store only
//! cannot roll it back unseen; a restore made on purpose is accepted by
//! moving the memory file aside. A memory that is missing or unreadable
//! (a crash while it was written) remembers nothing: deleting it is what
//! accepting a restore is.

use std::path::PathBuf;

use rusqlite::OptionalExtension;

use super::checkpoint::{Checkpoint, OperatorKey};
use super::{Store, StoreError};

/// Where `key` keeps the last checkpoint it signed for store `store_id`.
pub fn memory_path(key: &OperatorKey, store_id: &str) -> PathBuf {
    memory_beside(&key.path, store_id)
}

/// Where the key at `key_path` keeps the last checkpoint it signed for
/// store `store_id`.
pub fn memory_beside(key_path: &std::path::Path, store_id: &str) -> PathBuf {
    let mut name = key_path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".signed-{store_id}.json"));
    key_path.with_file_name(name)
}

/// Remember `checkpoint` as the last one `key` signed for its store. A
/// memory that cannot be written (a key kept on a read-only mount) leaves
/// the change as committed and remembers the first such failure for
/// [`unkept`]: the store is as sound as before, only not guarded so.
pub(crate) fn remember(key: &OperatorKey, checkpoint: &Checkpoint) {
    let path = memory_path(key, &checkpoint.store_id);
    // A struct of strings and a number always serialises.
    let text = serde_json::to_string_pretty(checkpoint).unwrap_or_default() + "\n";
    // The file's name is pmf's: a link planted under it is replaced, never
    // written through (it would have any file it names replaced).
    if let Err(e) = crate::output::write_own(&path, text.as_bytes(), true) {
        let _ = UNKEPT.set(format!("cannot write `{}`: {e}", path.display()));
    }
}

/// The first memory this process could not write, and why.
static UNKEPT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Why the operator key could not remember a checkpoint it signed in this
/// process, if it could not (for the command to warn: a store rolled back
/// behind that checkpoint would not be seen).
pub fn unkept() -> Option<&'static str> {
    UNKEPT.get().map(String::as_str)
}

/// The last checkpoint `key` signed for store `store_id`, as remembered:
/// `None` when nothing is remembered, or what is cannot be read or is not
/// a checkpoint `key` signed for that store.
fn remembered(key: &OperatorKey, store_id: &str) -> Option<Checkpoint> {
    read_memory(&memory_path(key, store_id), store_id).filter(|c| c.public_key == key.public_hex())
}

/// The checkpoint in memory file `file`, if it is one of store `store_id`
/// with a signature that holds (by whichever key).
fn read_memory(file: &std::path::Path, store_id: &str) -> Option<Checkpoint> {
    Checkpoint::read(file)
        .ok()
        .filter(|c| c.store_id == store_id && c.signature_holds())
}

/// What the key at a path remembers of a store, for `pmf status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memory {
    /// The memory file.
    pub file: PathBuf,
    /// The checkpoint remembered, if one the store's operator key signed
    /// for it is.
    pub checkpoint: Option<Checkpoint>,
    /// Whether the store holds that checkpoint.
    pub held: bool,
    /// The file holds a checkpoint of this store signed by another key
    /// than the one in force (one the store retired): not remembered.
    pub of_another_key: bool,
}

impl Store {
    /// What the key at `key_path` remembers of this store: the checkpoint
    /// its memory file holds, when signed for this store by the operator
    /// key it pins (the secret key is not read), and whether the store
    /// still holds it. `None` for a store with no id or no key yet.
    pub fn key_memory(&self, key_path: &std::path::Path) -> Result<Option<Memory>, StoreError> {
        let (Some(store_id), Some(pinned)) = (self.meta("store_id")?, self.pinned_operator_key()?)
        else {
            return Ok(None);
        };
        let file = memory_beside(key_path, &store_id);
        let read = read_memory(&file, &store_id);
        let of_another_key = read.as_ref().is_some_and(|c| c.public_key != pinned);
        let checkpoint = read.filter(|c| c.public_key == pinned);
        let held = match &checkpoint {
            Some(c) => self.holds_checkpoint(c)?,
            None => false,
        };
        Ok(Some(Memory {
            file,
            checkpoint,
            held,
            of_another_key,
        }))
    }

    /// Whether the store holds a checkpoint of `c`'s size and root.
    fn holds_checkpoint(&self, c: &Checkpoint) -> Result<bool, StoreError> {
        let held: Option<String> = self
            .conn
            .prepare_cached("SELECT root FROM checkpoints WHERE size = ?1")?
            .query_row([c.size as i64], |r| r.get(0))
            .optional()?;
        Ok(held.as_deref() == Some(c.root.as_str()))
    }

    /// An error when the store no longer holds the last checkpoint `key`
    /// signed for it (same size, same root): it was rolled back, or
    /// replaced by another history under the same id.
    pub fn holds_what_key_signed(&self, key: &OperatorKey) -> Result<(), StoreError> {
        let Some(store_id) = self.meta("store_id")? else {
            return Ok(());
        };
        let Some(last) = remembered(key, &store_id) else {
            return Ok(());
        };
        if self.holds_checkpoint(&last)? {
            return Ok(());
        }
        let latest = self.latest_checkpoint()?;
        Err(StoreError::RolledBack {
            size: last.size,
            time: last.time,
            latest: latest.map_or_else(
                || "holds no checkpoint".to_string(),
                |c| {
                    format!(
                        "ends at its checkpoint of {} events signed at {}",
                        c.size, c.time
                    )
                },
            ),
            memory: memory_path(key, &store_id),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_remembers_per_store_only_what_it_signed() {
        let dir = tempfile::tempdir().unwrap();
        let (key, _) = OperatorKey::load(&dir.path().join("operator.key"), true).unwrap();
        let (other, _) = OperatorKey::load(&dir.path().join("other.key"), true).unwrap();
        assert_eq!(
            memory_path(&key, "abc"),
            dir.path().join("operator.key.signed-abc.json")
        );
        assert!(remembered(&key, "abc").is_none());
        let signed = Checkpoint::sign(&key, "abc", 7, &[3; 32], None);
        remember(&key, &signed);
        assert_eq!(remembered(&key, "abc"), Some(signed.clone()));
        assert!(remembered(&key, "other-store").is_none());
        // Another key's checkpoint, or one edited, is remembered as nothing.
        let foreign = Checkpoint::sign(&other, "abc", 9, &[4; 32], None);
        remember(&key, &foreign);
        assert!(remembered(&key, "abc").is_none());
        let mut edited = signed;
        edited.size = 8;
        remember(&key, &edited);
        assert!(remembered(&key, "abc").is_none());
        std::fs::write(memory_path(&key, "abc"), "").unwrap();
        assert!(remembered(&key, "abc").is_none());
        // A key whose directory is gone cannot remember: the first failure
        // is kept for the command to warn of.
        let (gone, _) = OperatorKey::load(&dir.path().join("gone/operator.key"), true).unwrap();
        std::fs::remove_dir_all(dir.path().join("gone")).unwrap();
        remember(&gone, &Checkpoint::sign(&gone, "abc", 7, &[3; 32], None));
        assert!(unkept().is_some_and(|why| why.contains("gone/operator.key.signed-abc.json")));
    }
}
