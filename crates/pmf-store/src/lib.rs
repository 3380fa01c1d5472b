//! The embedded store: SQLite at `.pmf/state.db` by default, in WAL mode,
//! with a versioned schema. It keeps partner states, stable versions, the
//! lineage (hash chains, a Merkle tree and signed checkpoints), apply
//! progress and the approvals that were accepted. Every SQL statement of
//! PMF is written in this crate.
//!
//! The crate also holds what the store and the commands above it share
//! about files and time: [`output`] (whole-file writes that are never
//! half-written), [`direct`] (large outputs written past the page cache)
//! and [`clock`].

pub mod batch;
pub mod checkpoint;
pub mod clock;
pub mod direct;
pub mod governance;
pub mod illumination;
pub mod interned;
pub mod key_memory;
pub mod lineage;
pub mod lock;
pub mod merkle;
pub mod output;
mod packed;
pub mod plans;
pub mod refused;
pub mod rekey;
pub mod shown;
pub mod verify;
mod vouch;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use sha2::{Digest, Sha256};

/// (migration type, categories joined by `+`) → (migrations, fallbacks):
/// what the lineage says of past outcomes, for illumination.
pub type OutcomeCounts = HashMap<(String, String), (u64, u64)>;

/// The default store path.
pub const DEFAULT_PATH: &str = ".pmf/state.db";

/// A store problem (always exit code 2: the store, not the policy). Each
/// variant says what failed; its message is what the commands print.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A partner named as one of the store's own chains (`@…`): the
    /// callers refuse such ids first; the store holds to it as well.
    #[error("partner `{0}`: ids that start with `@` are reserved for the store's own records")]
    ReservedId(String),
    /// The store file itself is damaged (SQLite finds it corrupt, or not a
    /// database): what it recorded can no longer be vouched for.
    #[error(
        "the store file is damaged ({0}): what it recorded cannot be vouched for; restore it from a backup and verify it against a witness's checkpoint"
    )]
    Damaged(#[source] rusqlite::Error),
    /// A column holds a value of a kind pmf never writes there (SQLite
    /// takes any value in any column): edited outside pmf.
    #[error(
        "the store holds a value pmf never writes ({0}): edited outside pmf; what it recorded cannot be vouched for"
    )]
    Unwritten(#[source] rusqlite::Error),
    /// The disk the store is on is full.
    #[error("{0}: free some space on its disk")]
    DiskFull(#[source] rusqlite::Error),
    /// A read, write or flush of the store's files failed below SQLite
    /// (a disk failing, a quota or a file size limit reached): SQLite
    /// rolls back the transaction it was in, so the store keeps what was
    /// committed before.
    #[error(
        "{step} failed ({0}): the disk may be failing, or a quota or a file size limit is reached; fix that and run the command again",
        step = io_step(.0)
    )]
    Io(#[source] rusqlite::Error),
    /// SQLite could not allocate memory (the machine's memory, or a limit
    /// such as `ulimit -v`, reached): the transaction it was in is rolled
    /// back.
    #[error(
        "SQLite ran out of memory ({0}): the machine's memory, or a limit such as `ulimit -v`, is reached; free memory or raise the limit, and run the command again"
    )]
    OutOfMemory(#[source] rusqlite::Error),
    /// A row pmf writes is already there (SQLite's uniqueness): pmf never
    /// writes one twice, so it was added outside pmf (a stable version
    /// planted for a partner to come, say).
    #[error(
        "the store already holds a row pmf was about to write ({0}): added outside pmf; `pmf lineage verify` names it"
    )]
    Conflict(#[source] rusqlite::Error),
    /// Another connection kept the database busy past the wait.
    #[error("store: {0}")]
    Busy(#[source] rusqlite::Error),
    /// Any other SQLite failure.
    #[error("store: {0}")]
    Sql(#[source] rusqlite::Error),
    /// A directory the store, its lock or its operator key goes in cannot
    /// be created.
    #[error("cannot create `{}`: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// SQLite cannot open the store file.
    #[error("cannot open the store `{}`: {source}", path.display())]
    Open {
        /// The store file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// The file is an SQLite database, but another program's: pmf never
    /// adds its tables to it (or changes its journal mode).
    #[error(
        "`{}` is an SQLite database but not a PMF store (it holds {objects}): pmf writes only into its own stores; give `--store` a new path",
        path.display()
    )]
    Foreign {
        /// The file.
        path: PathBuf,
        /// The first of what it holds, named.
        objects: String,
    },
    /// The store's file has more than one name (hard links): SQLite keeps
    /// a write-ahead log beside each name, so writers reaching it through
    /// two of them would corrupt it; and a hard link is no backup.
    #[error(
        "the store `{}` is one file with {names} names (hard links): SQLite keeps a write-ahead log beside each name, so writers reaching it through two of them would corrupt it, and a hard link is no backup (it changes with the store); nothing was written; keep one name (`find / -samefile {}` lists them) and back the store up by copying it",
        path.display(),
        path.display()
    )]
    HardLinked {
        /// The store, as named.
        path: PathBuf,
        /// How many names its file has.
        names: u64,
    },
    /// The store's path names something other than a file (a folder, a
    /// device, a pipe): a store is a file pmf makes.
    #[error(
        "`{}` is {kind}, not a store: a store is a file pmf makes; give `--store` the path of one, or a new path",
        path.display()
    )]
    NotAFile {
        /// The path, as given.
        path: PathBuf,
        /// What it names: `a folder`, `a device`, ….
        kind: &'static str,
    },
    /// There is no store where a command that only reads one looked.
    #[error(
        "no store at `{}` (it is created by `pmf apply` or `pmf state import`)",
        path.display()
    )]
    Missing {
        /// Where it looked.
        path: PathBuf,
    },
    /// The store was written by a newer pmf.
    #[error(
        "the store `{}` has schema version {version}, newer than this pmf ({supported}); upgrade pmf",
        path.display()
    )]
    NewerSchema {
        /// The store file.
        path: PathBuf,
        /// Its schema version.
        version: i64,
        /// The newest this pmf knows.
        supported: usize,
    },
    /// A store opened to be read only has an older schema, which only a
    /// command that may write brings up to date.
    #[error(
        "the store `{}` has schema version {version}, older than this pmf's ({current}), and cannot be brought up to date without write access; run pmf once with write access to it",
        path.display()
    )]
    OlderSchema {
        /// The store file.
        path: PathBuf,
        /// Its schema version.
        version: i64,
        /// This pmf's.
        current: usize,
    },
    /// A store read without write access to its directory has a
    /// write-ahead log holding changes, which such a reader cannot read.
    #[error(
        "the store `{}` has changes in its write-ahead log `{}` that cannot be read without write access to its directory (SQLite needs its shared-memory file): it is being written, or its last writer stopped before folding them in; run again once no one writes it, or copy both files into a directory you may write and read the copy with `--store`",
        path.display(),
        wal.display()
    )]
    UnreadableLog {
        /// The store file.
        path: PathBuf,
        /// Its write-ahead log.
        wal: PathBuf,
    },
    /// The lock file cannot be opened (or made).
    #[error("cannot open the lock `{}`: {source}", path.display())]
    OpenLock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operating system refused the lock for another reason than its
    /// being held (that is [`lock::LockError::Held`]).
    #[error("cannot lock `{}`: {source}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A partner's stored row is not the one its lineage recorded.
    #[error(
        "the stored state of partner `{partner}` does not match its lineage (edited outside pmf); `pmf lineage verify` says more"
    )]
    RowEdited {
        /// The partner.
        partner: String,
    },
    /// A partner's last event is not the one its chain hash covers.
    #[error(
        "the last event of partner `{partner}` does not match its chain hash (edited outside pmf); `pmf lineage verify` says more"
    )]
    EventEdited {
        /// The partner.
        partner: String,
    },
    /// The illumination counts the lineage holds cannot be read as pmf
    /// wrote them.
    #[error(
        "the store's illumination counts (`@illumination`) cannot be read from its lineage: {reason}; `pmf lineage verify` says more"
    )]
    IlluminationUnread {
        /// What is wrong.
        reason: String,
    },
    /// A progress row says a plan finished a partner its lineage does not.
    #[error(
        "the store's progress says this plan finished partner `{partner}` (`{outcome}`), but its lineage records no such outcome (edited outside pmf); `pmf lineage verify` says more"
    )]
    ProgressEdited {
        /// The partner.
        partner: String,
        /// The outcome the progress row claims.
        outcome: String,
    },
    /// A partner whose lineage records a state has no row.
    #[error(
        "partner `{partner}` has a lineage but no row in the store (deleted outside pmf): taken for a new partner, its history would be cut off; `pmf lineage verify` says more"
    )]
    RowDeleted {
        /// The partner.
        partner: String,
    },
    /// A partner new to the store (no row, no lineage) of which it holds
    /// stable versions: added outside pmf, for a partner to come.
    #[error(
        "partner `{partner}` is new to the store, yet the store holds stable versions of it (added outside pmf): its first state would join them; `pmf lineage verify` names them"
    )]
    StrayStable {
        /// The partner.
        partner: String,
    },
    /// A partner's row has no lineage at all.
    #[error(
        "partner `{partner}` is in the store with no lineage (inserted outside pmf); `pmf lineage verify` says more"
    )]
    RowWithoutLineage {
        /// The partner.
        partner: String,
    },
    /// The store no longer holds the last checkpoint the operator key
    /// signed for it.
    #[error(
        "the store no longer holds the checkpoint of {size} events this operator key signed for it at {time}: it {latest}, so it was rolled back (events deleted with the checkpoints that covered them, a backup restored, or, after a crash, its write-ahead log (the `-wal` file beside it) removed before it was copied back) or replaced by another history; nothing was written. If a backup was restored on purpose, move `{}` aside to accept what it lost (the key then remembers the store as it is)",
        memory.display()
    )]
    RolledBack {
        /// The size of the checkpoint remembered.
        size: u64,
        /// When it was signed.
        time: String,
        /// Where the store ends now.
        latest: String,
        /// The key's memory file.
        memory: PathBuf,
    },
    /// This machine's clock is behind the store's latest checkpoint.
    #[error(
        "this machine's clock ({now}) is {behind} behind the store's latest checkpoint (signed at {latest}): the times the store records, and the expiry of every plan, approval and request it carries out, are read from this clock; set it right (nothing was written)"
    )]
    ClockBehind {
        /// The time here.
        now: String,
        /// By how much.
        behind: String,
        /// The latest checkpoint's time.
        latest: String,
    },
    /// The log is not the one the latest signed checkpoint vouches for.
    #[error(
        "the store's lineage is not what its signed checkpoints vouch for: {reason} (edited outside pmf); nothing was written; `pmf lineage verify` says more"
    )]
    Unvouched {
        /// Where the log and the checkpoint part.
        reason: String,
    },
    /// Another process wrote to the store after this one read its log: a
    /// second writer the store's lock did not keep out. Nothing of the
    /// transaction that found it was written.
    #[error(
        "another process wrote to the store while this one ran (a second writer the store's lock did not keep out: the store named through another path its lock does not follow, such as a hard link, or its lock file removed); nothing of this transaction was written"
    )]
    WrittenMeanwhile,
    /// The Merkle head kept in the store does not fit its events.
    #[error(
        "the lineage's Merkle head does not fit its events (edited outside pmf); `pmf lineage verify` says more"
    )]
    MerkleHead,
    /// The store's id is gone.
    #[error("the store has no id (edited outside pmf)")]
    NoId,
    /// The sources kept for a policy are not what pmf writes.
    #[error("the sources kept for policy {hash} are unreadable (edited outside pmf): {reason}")]
    KeptPolicy {
        /// The policy's hash.
        hash: String,
        /// Why.
        reason: String,
    },
    /// A partner's stored state is not JSON.
    #[error("stored state of `{partner}` is unreadable: {source}")]
    UnreadableState {
        /// The partner.
        partner: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The store's checkpoints are signed by another operator key than the
    /// one given.
    #[error(
        "this store's checkpoints are signed by operator key {pinned}…, not by `{}` ({given}…); pass `--operator-key` with the store's key",
        path.display()
    )]
    ForeignOperator {
        /// The start of the pinned public key (hex).
        pinned: String,
        /// The key file given.
        path: PathBuf,
        /// The start of its public key (hex).
        given: String,
    },
    /// The key given is one the store retired (`pmf state rekey`).
    #[error(
        "`{}` holds operator key {given}…, which this store retired at {time} (its successor: {by}…; `pmf lineage show @operator`); pass `--operator-key` with the key in force",
        path.display()
    )]
    RetiredOperator {
        /// The key file given.
        path: PathBuf,
        /// The start of its public key (hex).
        given: String,
        /// The start of the key that replaced it (hex).
        by: String,
        /// When it was replaced.
        time: String,
    },
    /// The store's checkpoints are signed, and the key file that signs
    /// them is missing.
    #[error(
        "this store's checkpoints are signed by operator key {pinned}…, and there is no key file at `{}`: pass `--operator-key` with the store's key (a new key would not be the store's; none was made)",
        path.display()
    )]
    LostOperatorKey {
        /// The start of the pinned public key (hex).
        pinned: String,
        /// Where the key file was looked for.
        path: PathBuf,
    },
    /// A new operator key for a store that has none yet.
    #[error(
        "the store has no operator key yet: the first command that writes it makes one (nothing to replace)"
    )]
    NothingToRekey,
    /// A succession of a lost operator key that its approvals do not
    /// carry (a signature that does not hold, a key the governing policy
    /// does not trust, an authority missing).
    #[error("{0}")]
    RekeyRefused(String),
    /// The new operator key is the one in force.
    #[error("`{}` is already the store's operator key", path.display())]
    SameOperatorKey {
        /// The key file given as the new key.
        path: PathBuf,
    },
    /// No operator key file where one was asked for.
    #[error("no operator key at `{}`", path.display())]
    NoOperatorKey {
        /// The key file.
        path: PathBuf,
    },
    /// No randomness to make an operator key with.
    #[error("no randomness available: {0}")]
    NoRandomness(getrandom::Error),
    /// The operator key file cannot be written.
    #[error("cannot write the operator key `{}`: {source}", path.display())]
    WriteOperatorKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operator key file cannot be read.
    #[error("cannot read the operator key `{}`: {source}", path.display())]
    ReadOperatorKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The operator key file given is an authority's private key.
    #[error(
        "`{}` is the private key of authority `{authority}`, not an operator key: an authority's key approves plans and the operator key signs the store's checkpoints, and one must not stand for the other; name the operator's key (`--operator-key`, by default `operator.key` beside the store, made by the store's first write)",
        path.display()
    )]
    AuthorityKeyAsOperator {
        /// The key file.
        path: PathBuf,
        /// The authority it signs for.
        authority: String,
    },
    /// The operator key file is not a key file.
    #[error("`{}` is not an operator key: {source}", path.display())]
    NotAnOperatorKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// The operator key file's secret key is not 32 bytes of hex.
    #[error("`{}` holds no valid secret key", path.display())]
    BadSecretKey {
        /// The key file.
        path: PathBuf,
    },
    /// The operator key file's public key is not its secret key's.
    #[error("`{}`: the public key does not belong to the secret key", path.display())]
    KeyMismatch {
        /// The key file.
        path: PathBuf,
    },
}

impl StoreError {
    /// The store file itself is damaged (not a usage problem: what it
    /// recorded can no longer be vouched for).
    pub fn is_damaged(&self) -> bool {
        matches!(self, StoreError::Damaged(_) | StoreError::Unwritten(_))
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if matches!(
            e,
            rusqlite::Error::InvalidColumnType(..)
                | rusqlite::Error::FromSqlConversionFailure(..)
                | rusqlite::Error::IntegralValueOutOfRange(..)
                | rusqlite::Error::Utf8Error(..)
        ) {
            return StoreError::Unwritten(e);
        }
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
                StoreError::Damaged(e)
            }
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::DiskFull(e),
            Some(rusqlite::ErrorCode::SystemIoFailure) => StoreError::Io(e),
            Some(rusqlite::ErrorCode::OutOfMemory) => StoreError::OutOfMemory(e),
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Conflict(e),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy(e)
            }
            _ => StoreError::Sql(e),
        }
    }
}

/// What an I/O failure SQLite reports was doing, from its extended code:
/// "a write to the store's files", …
fn io_step(e: &rusqlite::Error) -> &'static str {
    use rusqlite::ffi;
    let extended = match e {
        rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
        _ => 0,
    };
    match extended {
        ffi::SQLITE_IOERR_READ | ffi::SQLITE_IOERR_SHORT_READ => "a read of the store's files",
        ffi::SQLITE_IOERR_WRITE => "a write to the store's files",
        ffi::SQLITE_IOERR_FSYNC | ffi::SQLITE_IOERR_DIR_FSYNC => {
            "flushing the store's files to disk"
        }
        ffi::SQLITE_IOERR_TRUNCATE => "truncating the store's files",
        ffi::SQLITE_IOERR_SHMOPEN | ffi::SQLITE_IOERR_SHMSIZE | ffi::SQLITE_IOERR_SHMMAP => {
            "growing the store's shared-memory file (`-shm`)"
        }
        _ => "a read or write of the store's files",
    }
}

/// Schema migrations, in order: `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: the first schema.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
     CREATE TABLE partners (
        id TEXT PRIMARY KEY, state TEXT NOT NULL, version TEXT,
        status TEXT NOT NULL, updated_at TEXT NOT NULL);
     CREATE TABLE stable_versions (
        partner_id TEXT NOT NULL, seq INTEGER NOT NULL, version TEXT, state TEXT NOT NULL,
        PRIMARY KEY (partner_id, seq));
     CREATE TABLE lineage (
        global_seq INTEGER PRIMARY KEY, partner_id TEXT NOT NULL, seq INTEGER NOT NULL,
        event TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
        global_prev TEXT NOT NULL, global_hash TEXT NOT NULL,
        UNIQUE (partner_id, seq));
     CREATE TABLE progress (
        plan_hash TEXT NOT NULL, partner_id TEXT NOT NULL, outcome TEXT NOT NULL,
        PRIMARY KEY (plan_hash, partner_id));
     CREATE TABLE approvals (
        plan_hash TEXT NOT NULL, authority TEXT NOT NULL, public_key TEXT NOT NULL,
        signature TEXT NOT NULL, PRIMARY KEY (plan_hash, authority, public_key));
     CREATE TABLE locks (name TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, started_at TEXT NOT NULL);
     CREATE TABLE outcomes (
        migration TEXT NOT NULL, categories TEXT NOT NULL, total INTEGER NOT NULL, fallbacks INTEGER NOT NULL,
        PRIMARY KEY (migration, categories));",
    // 2: signed checkpoints of the lineage's Merkle tree, and the store's
    // id. Events before this migration are covered by the first checkpoint
    // signed after it; `checkpoints_from` records how many there were.
    "CREATE TABLE checkpoints (
        size INTEGER PRIMARY KEY, root TEXT NOT NULL, time TEXT NOT NULL,
        public_key TEXT NOT NULL, signature TEXT NOT NULL);
     INSERT INTO meta (key, value) VALUES ('store_id', lower(hex(randomblob(16))))
        ON CONFLICT (key) DO NOTHING;
     INSERT INTO meta (key, value) VALUES ('checkpoints_from', (SELECT COUNT(*) FROM lineage))
        ON CONFLICT (key) DO NOTHING;",
    // 3: the lineage's hashes as 32-byte blobs, without the previous hashes
    // each row repeated (the chains link the rows: `verify` recomputes
    // them); events appended from now on are in the compact encoding
    // (`lineage::encode`), and events stored before keep their JSON and the
    // hash rules they were signed with (the Merkle leaves are the same
    // bytes, so every checkpoint signed before still holds). Partners and
    // stable versions are kept by their keys alone (no rowid and second
    // index to write); progress rows name their plan by a number
    // (`plans`, in the order plans were first applied).
    "CREATE TABLE lineage_v3 (
        global_seq INTEGER PRIMARY KEY, partner_id TEXT NOT NULL, seq INTEGER NOT NULL,
        event BLOB NOT NULL, hash BLOB NOT NULL, global_hash BLOB NOT NULL,
        UNIQUE (partner_id, seq));
     INSERT INTO lineage_v3 (global_seq, partner_id, seq, event, hash, global_hash)
        SELECT global_seq, partner_id, seq, event,
               coalesce(unhex(hash), CAST(hash AS BLOB)),
               coalesce(unhex(global_hash), CAST(global_hash AS BLOB))
        FROM lineage ORDER BY global_seq;
     DROP TABLE lineage;
     ALTER TABLE lineage_v3 RENAME TO lineage;
     CREATE TABLE partners_v3 (
        id TEXT PRIMARY KEY, state TEXT NOT NULL, version TEXT,
        status TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
     INSERT INTO partners_v3 SELECT id, state, version, status, updated_at FROM partners;
     DROP TABLE partners;
     ALTER TABLE partners_v3 RENAME TO partners;
     CREATE TABLE stable_versions_v3 (
        partner_id TEXT NOT NULL, seq INTEGER NOT NULL, version TEXT, state TEXT NOT NULL,
        PRIMARY KEY (partner_id, seq)) WITHOUT ROWID;
     INSERT INTO stable_versions_v3 SELECT partner_id, seq, version, state FROM stable_versions;
     DROP TABLE stable_versions;
     ALTER TABLE stable_versions_v3 RENAME TO stable_versions;
     CREATE TABLE plans (id INTEGER PRIMARY KEY, hash TEXT NOT NULL UNIQUE);
     INSERT INTO plans (hash) SELECT plan_hash FROM progress GROUP BY plan_hash ORDER BY MIN(rowid);
     CREATE TABLE progress_v3 (
        plan INTEGER NOT NULL, partner_id TEXT NOT NULL, outcome TEXT NOT NULL,
        PRIMARY KEY (plan, partner_id)) WITHOUT ROWID;
     INSERT INTO progress_v3
        SELECT plans.id, partner_id, outcome FROM progress JOIN plans ON plans.hash = progress.plan_hash;
     DROP TABLE progress;
     ALTER TABLE progress_v3 RENAME TO progress;",
    // 4: the texts rows repeat, numbered in `texts` (`interned`): states
    // packed (`packed`) and events interned (`lineage::encode_interned`);
    // rows stored before keep their form. The lineage without the global
    // chain's column (the Merkle tree whose roots the operator signs binds
    // the events' order).
    "ALTER TABLE lineage DROP COLUMN global_hash;
     DELETE FROM meta WHERE key = 'global_head';
     CREATE TABLE texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
     CREATE TABLE partners_v4 (
        id TEXT PRIMARY KEY, state BLOB NOT NULL, version TEXT,
        status TEXT NOT NULL, updated_at TEXT NOT NULL) WITHOUT ROWID;
     INSERT INTO partners_v4 SELECT id, state, version, status, updated_at FROM partners;
     DROP TABLE partners;
     ALTER TABLE partners_v4 RENAME TO partners;
     CREATE TABLE stable_versions_v4 (
        partner_id TEXT NOT NULL, seq INTEGER NOT NULL, version TEXT, state BLOB NOT NULL,
        PRIMARY KEY (partner_id, seq)) WITHOUT ROWID;
     INSERT INTO stable_versions_v4 SELECT partner_id, seq, version, state FROM stable_versions;
     DROP TABLE stable_versions;
     ALTER TABLE stable_versions_v4 RENAME TO stable_versions;",
    // 5: when each plan applied stops being valid (plan format 5 on), for
    // people (`pmf review` says whether a paused partner's plan can still
    // continue it); `apply` holds the plan file's own expiry, not this.
    "ALTER TABLE plans ADD COLUMN expires_at TEXT;",
    // 6: the sources of each policy that governed the store, by hash (a
    // JSON object, path to text, as a plan carries them): an auditor reads
    // the rules a `governed` event names from the store itself, and
    // `pmf lineage verify` compiles them again to that hash.
    "CREATE TABLE policies (hash TEXT PRIMARY KEY, sources TEXT NOT NULL);",
    // 7: no table changes. The reserved chain `@operator` may hold
    // `operator_rekeyed` events (`pmf state rekey`) and checkpoints may be
    // signed by a key that replaced the first: a pmf that does not know
    // them would read a replaced key as a forged checkpoint, so it is told
    // to upgrade instead.
    "-- the operator key's successions (rekey.rs)",
    // 8: the illumination counts are kept in the lineage, on the reserved
    // chain `@illumination` (illumination.rs), no longer in a table no
    // checkpoint covers: the table's rows are kept as `outcomes_v7` until
    // the first batch that counts carries them into the chain.
    "ALTER TABLE outcomes RENAME TO outcomes_v7;",
    // 9: a partner's row no longer says when it was last written: no
    // command read it and no digest covered it, so anyone could set it to
    // any time, and whoever read the file would take it for a record. When
    // a partner changed is what its lineage says, signed.
    "ALTER TABLE partners DROP COLUMN updated_at;",
    // 10: each checkpoint names the one before it (`checkpoint.rs`,
    // `pmf-checkpoint-v2`): a checkpoint deleted from between two others is
    // seen by `verify`. Those signed before name none.
    "ALTER TABLE checkpoints ADD COLUMN prev TEXT;",
];

/// The size of a write-ahead log's header: a log no longer holds frames.
const WAL_HEADER_BYTES: u64 = 32;

/// The write-ahead log of the store at `path`, when it is a file that
/// holds frames (more than its header).
fn log_with_frames(path: &Path) -> Option<PathBuf> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal = PathBuf::from(wal);
    let m = std::fs::metadata(&wal).ok()?;
    (m.is_file() && m.len() > WAL_HEADER_BYTES).then_some(wal)
}

/// The digest of a partner's stored row, as the lineage records it.
pub fn row_digest(state: &str, version: Option<&str>, status: &str) -> String {
    lineage::hex32(&row_digest_bytes(state, version, status))
}

/// [`row_digest`] as bytes.
pub fn row_digest_bytes(state: &str, version: Option<&str>, status: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pmf-partner-row-v1\0");
    h.update(status.as_bytes());
    h.update(b"\0");
    h.update(version.unwrap_or("").as_bytes());
    h.update(b"\0");
    h.update(state.as_bytes());
    h.finalize().into()
}

/// The digest of a stable version (its number, version and state).
pub fn stable_digest(seq: i64, version: Option<&str>, state: &str) -> String {
    lineage::hex32(&stable_digest_bytes(seq, version, state))
}

/// [`stable_digest`] as bytes.
pub fn stable_digest_bytes(seq: i64, version: Option<&str>, state: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"pmf-stable-v1\0");
    h.update(seq.to_string().as_bytes());
    h.update(b"\0");
    h.update(version.unwrap_or("").as_bytes());
    h.update(b"\0");
    h.update(state.as_bytes());
    h.finalize().into()
}

/// A partner as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPartner {
    /// Partner id.
    pub id: String,
    /// State as canonical JSON.
    pub state: String,
    /// Current version.
    pub version: Option<String>,
    /// `active`, `restricted`, `awaiting_review`, `throttled`.
    pub status: String,
}

/// A stable version as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StableVersion {
    /// Its number in the partner's list, from 1.
    pub seq: i64,
    /// The version.
    pub version: Option<String>,
    /// The state as canonical JSON.
    pub state: String,
}

/// The store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// The store held events before checkpoints existed (schema 1).
    legacy: bool,
    /// The store's texts, as far as this connection has read them.
    texts: std::cell::RefCell<interned::Texts>,
    /// The log as this process last vouched for or signed it.
    vouched: vouch::Vouched,
    /// The store's file, when this process made it: removed again when the
    /// store is closed and no one committed to it (after the connection,
    /// the field before it, is closed).
    made_here: Option<MadeHere>,
}

/// A store file this process made. Unless a batch committed to it (this
/// process's, or another writer's: [`Store`]'s `drop` asks the file), it is
/// removed (with its write-ahead log) when the store is closed: a first
/// command refused (a wrong key, a bad input) leaves no empty store behind
/// that the next command would take for one made on purpose.
struct MadeHere {
    /// The file as it resolves (a store named through a link is made at
    /// the link's target).
    file: PathBuf,
    /// Its inode: only the very file made here is ever removed.
    inode: u64,
    /// Whether it is kept (someone committed to it; or a test keeps it).
    kept: std::cell::Cell<bool>,
}

impl MadeHere {
    /// The file at `path`, made by this process just now.
    fn at(path: &Path) -> Option<MadeHere> {
        let file = std::fs::canonicalize(path).ok()?;
        let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&file).ok()?);
        Some(MadeHere {
            file,
            inode,
            kept: false.into(),
        })
    }
}

impl Drop for Store {
    /// A store this process made is removed (by [`MadeHere`], once the
    /// connection is closed) only when no one committed to it: a batch's
    /// first commit pins the operator key in `meta`, whoever's batch it is
    /// (a second writer the lock did not keep out, its file removed while
    /// held, may have written to the very file).
    fn drop(&mut self) {
        if let Some(made) = &self.made_here
            && !made.kept.get()
        {
            let written: rusqlite::Result<Option<i64>> = self
                .conn
                .query_row("SELECT 1 FROM meta WHERE key = 'operator_key'", [], |r| {
                    r.get(0)
                })
                .optional();
            if !matches!(written, Ok(None)) {
                made.kept.set(true);
            }
        }
    }
}

impl Drop for MadeHere {
    fn drop(&mut self) {
        let same = std::fs::symlink_metadata(&self.file)
            .is_ok_and(|m| std::os::unix::fs::MetadataExt::ino(&m) == self.inode);
        if self.kept.get() || !same {
            return;
        }
        for suffix in ["-wal", "-shm", "-journal", ""] {
            let mut name = self.file.clone().into_os_string();
            name.push(suffix);
            let _ = std::fs::remove_file(name);
        }
    }
}

/// The settings of every connection to a store, none of which writes: a
/// busy timeout, statements kept prepared, a page cache, and stable plans.
fn tune_for_reading(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Apply uses a couple of dozen statements per partner: keep them all
    // prepared (the default cache of 16 would evict and re-parse them).
    conn.set_prepared_statement_cache_capacity(64);
    // A page cache that holds the hot index pages of a large lineage (the
    // default 2 MB re-reads them from the file again and again).
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Temporary tables and sorts stay in memory.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Keep query plans stable: otherwise SQLite re-prepares a statement
    // whenever a new value is bound to a parameter its plan looked at
    // (about an eighth of apply's time went to re-parsing SQL).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(())
}

/// A schema `version` this pmf can read, or the error that says it is
/// newer.
fn not_newer(path: &Path, version: i64) -> Result<(), StoreError> {
    if version as usize > MIGRATIONS.len() {
        return Err(StoreError::NewerSchema {
            path: path.to_path_buf(),
            version,
            supported: MIGRATIONS.len(),
        });
    }
    Ok(())
}

/// `path` as the path of a SQLite `file:` URI: the characters a URI gives
/// a meaning (`%`, `?`, `#`) escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// An error unless `meta` (of `path`, links followed) is a regular file's
/// ([`StoreError::NotAFile`]).
fn not_a_file(path: &Path, meta: &std::fs::Metadata) -> Result<(), StoreError> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a folder"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "something other than a file"
    };
    Err(StoreError::NotAFile {
        path: path.to_path_buf(),
        kind,
    })
}

/// An error when the database behind `conn` is another program's: no
/// schema version of pmf's (`user_version` 0) and yet tables, views,
/// indexes or triggers of its own. Read before any setting is made, so that
/// nothing of it changes. A file SQLite cannot read passes (opening it
/// reports that).
fn refuse_foreign(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let version = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    if version.is_ok_and(|v| v != 0) {
        return Ok(());
    }
    let Ok(mut stmt) = conn.prepare(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name LIMIT 4",
    ) else {
        return Ok(());
    };
    let Ok(rows) = stmt.query_map([], |r| {
        Ok(format!(
            "{} `{}`",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?
        ))
    }) else {
        return Ok(());
    };
    let objects: Vec<String> = rows.filter_map(Result::ok).collect();
    if objects.is_empty() {
        return Ok(());
    }
    Err(StoreError::Foreign {
        path: path.to_path_buf(),
        objects: if objects.len() > 3 {
            let first: Vec<&str> = objects.iter().take(3).map(String::as_str).collect();
            format!("{}, …", first.join(", "))
        } else {
            objects.join(", ")
        },
    })
}

/// Which event of a chain [`Store::stored_at`] reads.
#[derive(Clone, Copy)]
enum ChainEnd {
    /// Its first event.
    First,
    /// Its last event.
    Last,
    /// The event at this position.
    At(u64),
}

impl ChainEnd {
    /// Where this end is in a row of `len` events whose first is at
    /// position `first` of the chain, if the row holds it.
    fn index_in(self, first: i64, len: usize) -> Option<usize> {
        match self {
            ChainEnd::First => (len > 0).then_some(0),
            ChainEnd::Last => len.checked_sub(1),
            ChainEnd::At(seq) => usize::try_from((seq as i64).wrapping_sub(first))
                .ok()
                .filter(|&i| i < len),
        }
    }
}

impl Store {
    /// Open (creating it and its directory if needed) and migrate; a file
    /// with more than one name is refused ([`StoreError::HardLinked`]).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        // A file, written only under one name (see [`StoreError::HardLinked`]).
        if let Ok(meta) = std::fs::metadata(path) {
            not_a_file(path, &meta)?;
            let names = std::os::unix::fs::MetadataExt::nlink(&meta);
            if names > 1 {
                return Err(StoreError::HardLinked {
                    path: path.to_path_buf(),
                    names,
                });
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let new = !path.exists();
        let conn = Connection::open(path).map_err(|source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let made_here = new.then(|| MadeHere::at(path)).flatten();
        refuse_foreign(&conn, path)?;
        tune_for_reading(&conn)?;
        // Larger pages for a new store: the lineage is appended a page at a
        // time, and each page is one write to the WAL and one to the file.
        // (Ignored for an existing store, whose page size is fixed.)
        conn.pragma_update(None, "page_size", 16_384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Every commit is durable before pmf says it is done: the log is
        // synced at each commit (NORMAL would sync it only when copied
        // back, and a power cut could take the last batches an apply had
        // reported, and that the operator key remembers signing).
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store::over(conn, path);
        store.made_here = made_here;
        store.migrate()?;
        store.finish_opening()
    }

    /// Keep the file of a store made by this process, though no batch
    /// committed to it (for tests that write to it outside pmf).
    #[cfg(test)]
    fn keep_made_file(&self) {
        if let Some(made) = &self.made_here {
            made.kept.set(true);
        }
    }

    /// A store over `conn` (its settings made, its schema not yet read).
    fn over(conn: Connection, path: &Path) -> Store {
        Store {
            conn,
            path: path.to_path_buf(),
            legacy: false,
            texts: Default::default(),
            vouched: Default::default(),
            made_here: None,
        }
    }

    /// The store with what it records of itself read (its schema current).
    fn finish_opening(mut self) -> Result<Store, StoreError> {
        self.legacy = self.legacy_events()? > 0;
        Ok(self)
    }

    /// How many events predate signed checkpoints (a store of schema 1's,
    /// covered by the first checkpoint signed after its migration): what
    /// `meta` records (`checkpoints_from`), but never more than the events
    /// written before any checkpoint could be (the log's leading events in
    /// the JSON of schema 1 and 2) or the first checkpoint covers. `meta`
    /// is no part of what is signed: a count raised there would otherwise
    /// pass later events, rows without lineage and edited stable versions
    /// and progress as a legacy store's.
    pub(crate) fn legacy_events(&self) -> Result<u64, StoreError> {
        let recorded: u64 = self
            .meta("checkpoints_from")?
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if recorded == 0 {
            return Ok(0);
        }
        let first_checkpoint: Option<i64> =
            self.conn
                .query_row("SELECT MIN(size) FROM checkpoints", [], |r| r.get(0))?;
        let mut stmt = self
            .conn
            .prepare("SELECT event FROM lineage ORDER BY global_seq LIMIT ?1")?;
        let mut rows = stmt.query([recorded.min(i64::MAX as u64) as i64])?;
        let mut leading_json = 0u64;
        while let Some(r) = rows.next()? {
            if !lineage::is_json(r.get_ref(0)?.as_bytes().unwrap_or_default()) {
                break;
            }
            leading_json += 1;
        }
        let cap = first_checkpoint.map_or(u64::MAX, |s| s.max(0) as u64);
        Ok(recorded.min(leading_json).min(cap))
    }

    /// Open an existing store to read it only: nothing is written, not even
    /// SQLite's shared-memory file where the directory is read-only (an
    /// auditor's copy, a snapshot), where it is then read as immutable.
    /// An older schema is an error (no migration), a newer one too.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let Ok(meta) = std::fs::metadata(path) else {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        };
        not_a_file(path, &meta)?;
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let readable =
            |conn: &Connection| conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
        let mut conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
        if let Err(first) = readable(&conn) {
            // A WAL store in a directory this user cannot write, without
            // a write-ahead log (SQLite reads an existing one without its
            // shared-memory file): the file is read as it is. A log that
            // is there but could not be read (this user may not) and holds
            // frames would be left unread, and what is read could be an
            // older or a torn store, passed as current or reported as
            // tampered: refused instead, naming what reads it.
            if let Some(wal) = log_with_frames(path) {
                // A disk, a quota or a file size limit that failed SQLite
                // (its shared-memory file not grown, a read failed) is said
                // as such, not taken for a directory this user may not write.
                if let rusqlite::Error::SqliteFailure(f, _) = &first
                    && f.code == rusqlite::ErrorCode::SystemIoFailure
                    && f.extended_code != rusqlite::ffi::SQLITE_IOERR_SHMOPEN
                {
                    return Err(StoreError::Io(first));
                }
                return Err(StoreError::UnreadableLog {
                    path: path.to_path_buf(),
                    wal,
                });
            }
            let uri = format!("file:{}?immutable=1", uri_path(path));
            conn = Connection::open_with_flags(uri, flags).map_err(open_error)?;
        }
        tune_for_reading(&conn)?;
        let version = readable(&conn)?;
        not_newer(path, version)?;
        if (version as usize) < MIGRATIONS.len() {
            return Err(StoreError::OlderSchema {
                path: path.to_path_buf(),
                version,
                current: MIGRATIONS.len(),
            });
        }
        Store::over(conn, path).finish_opening()
    }

    /// Open an existing store to read it: read only ([`Store::open_read_only`])
    /// unless its schema is older, which is then brought up to date when
    /// the store may be written.
    pub fn open_to_read(path: &Path) -> Result<Store, StoreError> {
        match Store::open_read_only(path) {
            Err(older @ StoreError::OlderSchema { .. }) => {
                Store::open_existing(path).map_err(|e| match e {
                    foreign @ StoreError::Foreign { .. } => foreign,
                    _ => older,
                })
            }
            other => other,
        }
    }

    /// Open an existing store without creating it.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        Store::open(path)
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bring the schema up to date. Each step runs in an immediate
    /// transaction that re-reads the version first, so processes opening a
    /// new store at once never run a step twice.
    fn migrate(&mut self) -> Result<(), StoreError> {
        loop {
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            not_newer(&self.path, version)?;
            let Some(sql) = MIGRATIONS.get(version as usize) else {
                return Ok(());
            };
            tx.execute_batch(sql)?;
            if version == 1 {
                batch::adopt_legacy_events(&tx)?;
            }
            tx.pragma_update(None, "user_version", version + 1)?;
            tx.commit()?;
        }
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// A partner, if stored.
    pub fn partner(&self, id: &str) -> Result<Option<StoredPartner>, StoreError> {
        read_partner(&self.conn, id, &mut |raw| self.state_text(raw))
    }

    /// A state column's value as text (see [`packed`]): the keys are read
    /// again when a packed state names one this connection has not seen.
    fn state_text(&self, raw: rusqlite::types::ValueRef<'_>) -> Result<String, StoreError> {
        Ok(self
            .with_texts(|texts| packed::state_of(raw, texts))?
            .unwrap_or_else(|| packed::DAMAGED.to_string()))
    }

    /// `read` with the store's texts: when it finds nothing, once more with
    /// the texts read again (another connection may have added some).
    fn with_texts<T>(
        &self,
        read: impl Fn(&interned::Texts) -> Option<T>,
    ) -> Result<Option<T>, StoreError> {
        if let Some(t) = read(&self.texts.borrow()) {
            return Ok(Some(t));
        }
        let fresh = interned::Texts::load(&self.conn)?;
        let t = read(&fresh);
        *self.texts.borrow_mut() = fresh;
        Ok(t)
    }

    /// The policy the store is governed by (the last `governed` event of
    /// [`governance::GOVERNANCE`]), if a plan was applied since stores
    /// began to record it.
    pub fn governing(&self) -> Result<Option<governance::Governing>, StoreError> {
        self.governed_at(ChainEnd::Last)
    }

    /// The policy that governed the store first (its trust root, as its
    /// first `governed` event records it), if any. Read, not verified:
    /// `pmf lineage verify --policy` holds it to a reviewed policy.
    pub fn first_governing(&self) -> Result<Option<governance::Governing>, StoreError> {
        self.governed_at(ChainEnd::First)
    }

    /// The policy a `governed` event at `end` of the governance chain names.
    fn governed_at(&self, end: ChainEnd) -> Result<Option<governance::Governing>, StoreError> {
        let Some((seq, body)) = self.stored_at(governance::GOVERNANCE, end)? else {
            return Ok(None);
        };
        Ok(self
            .read_stored(&body, governance::GOVERNANCE, seq)?
            .as_ref()
            .and_then(governance::Governing::of_event))
    }

    /// The last event of a partner's chain as stored, with its position.
    fn last_stored(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.stored_at(id, ChainEnd::Last)
    }

    /// The first or last event of a partner's chain as stored, with its
    /// position (a row may hold a run of events).
    fn stored_at(&self, id: &str, end: ChainEnd) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .with_end_row(id, end, |first, events| {
                Ok(end.index_in(first, events.len()).and_then(|i| {
                    let (body, _) = events.get(i)?;
                    Some((first.wrapping_add(i as i64) as u64, body.to_vec()))
                }))
            })?
            .flatten())
    }

    /// `read` given the first or last row of a partner's chain, or the
    /// row that holds the event at a position: the position of its first
    /// event, and its events with their hashes (a row may hold a run of
    /// events); `None` for a partner with none.
    fn with_end_row<T>(
        &self,
        id: &str,
        end: ChainEnd,
        read: impl FnOnce(i64, &[(&[u8], [u8; 32])]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let mut stmt = self.conn.prepare_cached(match end {
            ChainEnd::First => {
                "SELECT seq, event, hash FROM lineage WHERE partner_id = ?1 AND seq <= ?2 ORDER BY seq ASC LIMIT 1"
            }
            ChainEnd::Last | ChainEnd::At(_) => {
                "SELECT seq, event, hash FROM lineage WHERE partner_id = ?1 AND seq <= ?2 ORDER BY seq DESC LIMIT 1"
            }
        })?;
        let upto = match end {
            ChainEnd::At(seq) => i64::try_from(seq).unwrap_or(i64::MAX),
            ChainEnd::First | ChainEnd::Last => i64::MAX,
        };
        let mut rows = stmt.query(rusqlite::params![id, upto])?;
        let Some(r) = rows.next()? else {
            return Ok(None);
        };
        let first: i64 = r.get(0)?;
        let events = lineage::row_events(
            r.get_ref(1)?.as_bytes().unwrap_or_default(),
            r.get_ref(2)?.as_bytes().unwrap_or_default(),
        );
        read(first, &events).map(Some)
    }

    /// A stored event read back with the store's texts; `None` when it
    /// cannot be read.
    fn read_stored(
        &self,
        body: &[u8],
        partner: &str,
        seq: u64,
    ) -> Result<Option<lineage::Event>, StoreError> {
        self.with_texts(|texts| lineage::read_event_with(body, partner, seq, texts))
    }

    /// What a stored event says of its partner's run (an unreadable one
    /// says nothing).
    fn last_of(
        &self,
        body: &[u8],
        partner: &str,
        seq: u64,
    ) -> Result<lineage::LastEvent, StoreError> {
        if lineage::is_json(body) {
            return Ok(lineage::LastEvent::of_json(body));
        }
        Ok(self
            .read_stored(body, partner, seq)?
            .map_or_else(lineage::LastEvent::default, lineage::LastEvent::from))
    }

    /// The last event of a partner's lineage, if it has one.
    pub fn last_event(&self, id: &str) -> Result<Option<lineage::LastEvent>, StoreError> {
        self.last_stored(id)?
            .map(|(seq, b)| self.last_of(&b, id, seq))
            .transpose()
    }

    /// A partner with its last event, its stored row held to the digest
    /// the lineage recorded, and that event to its chain hash (which the
    /// signed checkpoints cover, [`Store::vouch_for_log`]): a row or an
    /// event edited outside pmf is an error.
    pub fn bound_partner(
        &self,
        id: &str,
    ) -> Result<Option<(StoredPartner, Option<lineage::LastEvent>)>, StoreError> {
        let row = self.partner(id)?;
        let last = self
            .last_stored_held(id)?
            .map(|(seq, b)| self.last_of(&b, id, seq))
            .transpose()?;
        let Some(p) = row else {
            // A partner whose lineage records a state has a row: one
            // deleted outside pmf would make it a new partner (imported or
            // walked afresh, with no approval of the change).
            if last.as_ref().is_some_and(|l| l.state.is_some()) {
                return Err(StoreError::RowDeleted {
                    partner: id.to_string(),
                });
            }
            return Ok(None);
        };
        check_row(&p, last.as_ref(), self.legacy)?;
        Ok(Some((p, last)))
    }

    /// [`Store::last_stored`], the event held to its chain hash: its
    /// content and its partner's previous event's hash hash to it.
    fn last_stored_held(&self, id: &str) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.stored_held(id, ChainEnd::Last)
    }

    /// The event of a partner's chain at `end` as stored, with its
    /// position, held to its chain hash: its content and the previous
    /// event's hash hash to it. An edited one is an error.
    fn stored_held(&self, id: &str, end: ChainEnd) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        self.with_end_row(id, end, |first, events| {
            let index = end.index_in(first, events.len());
            let Some((index, &(body, hash))) = index.and_then(|i| Some((i, events.get(i)?)))
            else {
                return Ok(None);
            };
            let seq = first.wrapping_add(index as i64) as u64;
            let prev = match index.checked_sub(1).and_then(|i| events.get(i)) {
                Some(&(_, before)) => before,
                None if seq <= 1 => lineage::GENESIS_BYTES,
                // The first event of its row: the previous row's last hash.
                None => self
                    .conn
                    .prepare_cached(
                        "SELECT hash FROM lineage WHERE partner_id = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT 1",
                    )?
                    .query_row(rusqlite::params![id, first], |r| {
                        let hashes = r.get_ref(0)?.as_bytes().unwrap_or_default();
                        Ok(lineage::hash_of(
                            hashes.get(hashes.len().saturating_sub(32)..).unwrap_or_default(),
                        ))
                    })
                    .optional()?
                    .unwrap_or_default(),
            };
            let held =
                self.with_texts(|texts| lineage::chain_hash_of(body, texts, &prev, id, seq))?;
            if held != Some(hash) {
                return Err(StoreError::EventEdited {
                    partner: id.to_string(),
                });
            }
            Ok(Some((seq, body.to_vec())))
        })
        .map(Option::flatten)
    }

    /// A read transaction: what is read while it is held is one snapshot,
    /// under one lock taken once (a statement outside it takes and drops
    /// its own, two system calls each). Dropped, it ends.
    pub fn snapshot(&self) -> Result<Snapshot<'_>, StoreError> {
        Ok(Snapshot {
            _read: self.conn.unchecked_transaction()?,
        })
    }

    /// The store's table of texts as committed (to prepare partners with
    /// before a batch begins; see [`batch::PreparedState`]).
    pub fn texts(&self) -> Result<interned::Texts, StoreError> {
        interned::Texts::load(&self.conn)
    }

    /// Whether the store holds no partner: no row, and no lineage of a
    /// partner (the reserved chains, whose ids start with `@`, aside).
    pub fn holds_no_partner(&self) -> Result<bool, StoreError> {
        Ok(self.conn.query_row(
            "SELECT NOT EXISTS (SELECT 1 FROM partners)
                AND NOT EXISTS (SELECT 1 FROM lineage WHERE partner_id < '@' OR partner_id >= 'A')",
            [],
            |r| r.get(0),
        )?)
    }

    /// Every partner, by id (all held at once: for small stores and
    /// tests; [`Store::each_partner`] reads a fleet one at a time).
    pub fn partners(&self) -> Result<Vec<StoredPartner>, StoreError> {
        let mut out = Vec::new();
        self.each_partner(|p| {
            out.push(p);
            Ok(())
        })?;
        Ok(out)
    }

    /// Call `f` with every partner, by id, one at a time (a store of a
    /// million partners is read in the memory of one); the first error
    /// `f` returns ends the walk and is returned.
    pub fn each_partner(
        &self,
        f: impl FnMut(StoredPartner) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.each_partner_where("", [], f)
    }

    /// [`Store::each_partner`] over the rows `filter` (an SQL `WHERE`
    /// clause, or nothing) with `params` selects.
    fn each_partner_where(
        &self,
        filter: &str,
        params: impl rusqlite::Params,
        mut f: impl FnMut(StoredPartner) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT id, state, version, status FROM partners {filter} ORDER BY id"
        ))?;
        let mut rows = stmt.query(params)?;
        while let Some(r) = rows.next()? {
            f(StoredPartner {
                id: r.get(0)?,
                state: self.state_text(r.get_ref(1)?)?,
                version: r.get(2)?,
                status: r.get(3)?,
            })?;
        }
        Ok(())
    }

    /// Stable versions of a partner, oldest first.
    pub fn stable_versions(&self, id: &str) -> Result<Vec<StableVersion>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, version, state FROM stable_versions WHERE partner_id = ?1 ORDER BY seq",
        )?;
        let mut rows = stmt.query([id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(StableVersion {
                seq: r.get(0)?,
                version: r.get(1)?,
                state: self.state_text(r.get_ref(2)?)?,
            });
        }
        Ok(out)
    }

    /// Outcomes recorded for a plan: partner id → outcome.
    pub fn progress(&self, plan_hash: &str) -> Result<HashMap<String, String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT partner_id, outcome FROM progress WHERE plan = (SELECT id FROM plans WHERE hash = ?1)")?;
        let rows = stmt.query_map([plan_hash], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The store's id (made when the store was, kept by copies of it).
    pub fn id(&self) -> Result<Option<String>, StoreError> {
        self.meta("store_id")
    }

    /// When the plan `plan_hash` stops being valid, as it said when it was
    /// first applied (`None`: it had no expiry, was applied by a pmf that
    /// did not note it, or never here). For people: `apply` holds the plan
    /// file's own expiry.
    pub fn plan_expiry(&self, plan_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT expires_at FROM plans WHERE hash = ?1")?
            .query_row([plan_hash], |r| r.get::<_, Option<String>>(0))
            .optional()?
            .flatten())
    }

    /// Whether a `governed` event of the store names the policy `hash`
    /// (read, not verified: `pmf lineage verify` holds the chain).
    pub fn governed_by(&self, hash: &str) -> Result<bool, StoreError> {
        Ok(self
            .lineage(Some(governance::GOVERNANCE))?
            .iter()
            .filter_map(|stored| governance::Governing::of_event(&stored.event))
            .any(|g| g.policy_hash == hash))
    }

    /// The hashes of the policies whose sources the store keeps, sorted.
    pub fn kept_policies(&self) -> Result<Vec<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT hash FROM policies ORDER BY hash")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The sources (path to text) of a policy that governed the store, as
    /// kept by the `governed` event that named it; `None` when the store
    /// keeps none (a policy that governed it before schema 6). Read, not
    /// verified: `pmf lineage verify` compiles them again to `hash`.
    pub fn kept_policy(
        &self,
        hash: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT sources FROM policies WHERE hash = ?1")?
            .query_row([hash], |r| r.get(0))
            .optional()?;
        text.map(|t| {
            serde_json::from_str(&t).map_err(|e| StoreError::KeptPolicy {
                hash: hash.to_string(),
                reason: e.to_string(),
            })
        })
        .transpose()
    }

    /// The outcome a plan's run recorded for a partner (from the lineage,
    /// the record of truth when `progress` was lost).
    pub fn plan_outcome(&self, id: &str, plan_hash: &str) -> Result<Option<String>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, event, hash FROM lineage WHERE partner_id = ?1 ORDER BY seq DESC",
        )?;
        let mut rows = stmt.query([id])?;
        while let Some(r) = rows.next()? {
            let first: i64 = r.get(0)?;
            let events = lineage::row_events(
                r.get_ref(1)?.as_bytes().unwrap_or_default(),
                r.get_ref(2)?.as_bytes().unwrap_or_default(),
            );
            for (i, (body, _)) in events.iter().enumerate().rev() {
                let e = self.last_of(body, id, first.wrapping_add(i as i64) as u64)?;
                if e.plan_hash.as_deref() == Some(plan_hash) && e.state.is_some() {
                    return Ok(e.outcome);
                }
            }
        }
        Ok(None)
    }

    /// Partners by status: (status, count).
    pub fn status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM partners GROUP BY status ORDER BY status")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Partners whose status is one of `statuses`, by id: only theirs are
    /// read (a fleet's paused few, not its million states).
    pub fn partners_with_status(
        &self,
        statuses: &[&str],
    ) -> Result<Vec<StoredPartner>, StoreError> {
        let marks = vec!["?"; statuses.len()].join(", ");
        let mut out = Vec::new();
        self.each_partner_where(
            &format!("WHERE status IN ({marks})"),
            rusqlite::params_from_iter(statuses),
            |p| {
                out.push(p);
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Plans applied to this store: (plan hash, partners, partners still
    /// paused), oldest first.
    pub fn applied_plans(&self) -> Result<Vec<(String, i64, i64)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT plans.hash, COUNT(*), SUM(outcome IN ('awaiting_review', 'throttled'))
             FROM progress JOIN plans ON plans.id = progress.plan GROUP BY progress.plan ORDER BY progress.plan",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A store meta value.
    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Let a background thread copy the WAL back (apply's long runs); SQLite
    /// checkpoints what is left when the last connection closes.
    pub fn disable_autocheckpoint(&self) -> Result<(), StoreError> {
        self.conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        Ok(())
    }
}

/// A partner's row, read on `conn` (the store's, or a write transaction's),
/// its state made text by `state`.
fn read_partner(
    conn: &Connection,
    id: &str,
    state: &mut dyn FnMut(rusqlite::types::ValueRef<'_>) -> Result<String, StoreError>,
) -> Result<Option<StoredPartner>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, state, version, status FROM partners WHERE id = ?1")?;
    let mut rows = stmt.query([id])?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(StoredPartner {
        id: r.get(0)?,
        state: state(r.get_ref(1)?)?,
        version: r.get(2)?,
        status: r.get(3)?,
    }))
}

/// A read transaction over a store ([`Store::snapshot`]).
pub struct Snapshot<'s> {
    _read: rusqlite::Transaction<'s>,
}

/// Hold a stored row to the digest its last event recorded (events written
/// before digests were recorded bind nothing).
fn check_row(
    p: &StoredPartner,
    last: Option<&lineage::LastEvent>,
    legacy: bool,
) -> Result<(), StoreError> {
    let recorded = last.and_then(|l| l.state.as_deref());
    match recorded {
        Some(d) if d != row_digest(&p.state, p.version.as_deref(), &p.status) => {
            Err(StoreError::RowEdited {
                partner: p.id.clone(),
            })
        }
        None if last.is_none() && !legacy => Err(StoreError::RowWithoutLineage {
            partner: p.id.clone(),
        }),
        _ => Ok(()),
    }
}

impl StoreError {
    /// Whether this error says the store was edited outside pmf: running
    /// the command again meets it again, until the store is restored.
    pub fn edited_outside(&self) -> bool {
        matches!(
            self,
            StoreError::Unwritten(_)
                | StoreError::RowEdited { .. }
                | StoreError::EventEdited { .. }
                | StoreError::IlluminationUnread { .. }
                | StoreError::ProgressEdited { .. }
                | StoreError::RowDeleted { .. }
                | StoreError::RowWithoutLineage { .. }
                | StoreError::Conflict(_)
                | StoreError::StrayStable { .. }
                | StoreError::Unvouched { .. }
                | StoreError::MerkleHead
                | StoreError::NoId
                | StoreError::KeptPolicy { .. }
                | StoreError::UnreadableState { .. }
        )
    }
}

/// Checkpoints a store's WAL in the background (passive checkpoints: they
/// never block the writer) until dropped, on a connection of its own, so
/// the other core copies pages back while apply goes on writing; SQLite
/// checkpoints what is left when the last connection closes.
pub struct WalCheckpointer {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WalCheckpointer {
    /// Start checkpointing the store at `path` every 250 ms.
    pub fn start(path: &Path) -> WalCheckpointer {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let path = path.to_path_buf();
        let thread = std::thread::spawn(move || {
            let Ok(conn) = Connection::open(&path) else {
                return;
            };
            loop {
                match stopped.recv_timeout(std::time::Duration::from_millis(250)) {
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                        // Busy or failed: the next round (or the close) does it.
                        let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
                    }
                    _ => return,
                }
            }
        });
        WalCheckpointer {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for WalCheckpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store opened to be read writes nothing: its file keeps its bytes,
    /// a write through it is refused, and where SQLite cannot make its
    /// shared-memory file (a read-only directory; here a directory in its
    /// place, which stops root too) the file is read as it is. An older
    /// schema is told, not migrated.
    #[test]
    fn a_store_opened_to_read_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = Store::open(&path).unwrap();
            store.keep_made_file();
            store
                .conn
                .execute("INSERT INTO meta (key, value) VALUES ('probe', 'kept')", [])
                .unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        for blocked in [false, true] {
            if blocked {
                for leftover in ["state.db-shm", "state.db-wal"] {
                    let _ = std::fs::remove_file(dir.path().join(leftover));
                }
                std::fs::create_dir(dir.path().join("state.db-shm")).unwrap();
            }
            let store = Store::open_read_only(&path).unwrap();
            assert_eq!(store.meta("probe").unwrap().as_deref(), Some("kept"));
            assert_eq!(store.schema_version().unwrap() as usize, MIGRATIONS.len());
            let write = store
                .conn
                .execute("INSERT INTO meta (key, value) VALUES ('w', 'x')", []);
            assert!(write.is_err(), "blocked {blocked}: a write went through");
            drop(store);
            assert_eq!(std::fs::read(&path).unwrap(), bytes, "blocked {blocked}");
        }
        std::fs::remove_dir(dir.path().join("state.db-shm")).unwrap();
        {
            let store = Store::open(&path).unwrap();
            store.conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let Err(e) = Store::open_read_only(&path) else {
            panic!("an older schema opened read only")
        };
        assert!(
            matches!(e, StoreError::OlderSchema { version: 1, .. }),
            "{e:?}"
        );
    }

    /// Only a log with frames is one a reader without the shared-memory
    /// file would leave unread (SQLite reads an existing log without it;
    /// one it cannot open, such as one this user may not read, is this).
    /// A store written to syncs its log at every commit (FULL): a batch
    /// pmf reported, and the checkpoint the operator key remembers signing
    /// for it, survive a power cut (WAL's NORMAL syncs only when the log is
    /// copied back).
    #[test]
    fn every_commit_is_synced() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.db")).unwrap();
        let level: i64 = store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(level, 2, "synchronous = FULL");
        let mode: String = store
            .conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_log_with_frames_is_told_from_an_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let wal = dir.path().join("state.db-wal");
        assert_eq!(log_with_frames(&path), None);
        std::fs::write(&wal, [0u8; 32]).unwrap();
        assert_eq!(log_with_frames(&path), None);
        std::fs::write(&wal, [0u8; 33]).unwrap();
        assert_eq!(log_with_frames(&path), Some(wal.clone()));
        std::fs::remove_file(&wal).unwrap();
        std::fs::create_dir(&wal).unwrap();
        assert_eq!(log_with_frames(&path), None);
        let e = StoreError::UnreadableLog {
            path: path.clone(),
            wal: wal.clone(),
        };
        assert!(e.to_string().contains("state.db-wal"), "{e}");
    }

    #[test]
    fn a_damaged_store_file_is_the_damaged_kind_with_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
        let Err(e) = Store::open(&path) else {
            panic!("a file of garbage opened as a store")
        };
        assert!(matches!(e, StoreError::Damaged(_)), "{e:?}");
        assert!(e.is_damaged());
        let message = e.to_string();
        assert!(
            message.starts_with("the store file is damaged (")
                && message.ends_with(
                    "): what it recorded cannot be vouched for; restore it from a backup and verify it against a witness's checkpoint"
                ),
            "{message}"
        );
    }

    #[test]
    fn a_value_pmf_never_writes_is_the_store_edited_outside_pmf() {
        // SQLite keeps any value in any column: a blob where pmf writes
        // text is an edit, said as one (it read "store: Invalid column
        // type Blob", exit 2, even from `lineage verify`).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        Store::open(&path).unwrap().keep_made_file();
        let c = Connection::open(&path).unwrap();
        c.execute("INSERT INTO texts (id, text) VALUES (1, x'fffe')", [])
            .unwrap();
        drop(c);
        let store = Store::open(&path).unwrap();
        let Err(e) = store.texts() else {
            panic!("a blob read as a text")
        };
        assert!(matches!(e, StoreError::Unwritten(_)), "{e:?}");
        assert!(e.is_damaged() && e.edited_outside());
        assert!(
            e.to_string()
                .starts_with("the store holds a value pmf never writes ("),
            "{e}"
        );
    }

    #[test]
    fn a_missing_store_is_its_own_kind_and_says_what_makes_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let Err(e) = Store::open_existing(&path) else {
            panic!("opened a store that does not exist")
        };
        assert!(matches!(e, StoreError::Missing { .. }), "{e:?}");
        assert!(!e.is_damaged());
        assert_eq!(
            e.to_string(),
            format!(
                "no store at `{}` (it is created by `pmf apply` or `pmf state import`)",
                path.display()
            )
        );
    }

    #[test]
    fn a_store_of_a_newer_schema_is_refused_by_kind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(Store::open(&path).unwrap());
        let future = MIGRATIONS.len() as i64 + 1;
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", future)
            .unwrap();
        let Err(e) = Store::open(&path) else {
            panic!("opened a store of a newer schema")
        };
        assert!(
            matches!(e, StoreError::NewerSchema { version, .. } if version == future),
            "{e:?}"
        );
        assert!(e.to_string().ends_with("; upgrade pmf"), "{e}");
    }

    #[test]
    fn a_held_lock_is_the_held_kind_naming_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let _held = lock::lock(&path, "apply").unwrap();
        let Err(e) = lock::lock(&path, "review") else {
            panic!("the lock was taken twice")
        };
        let lock::LockError::Held(holder) = &e else {
            panic!("not the held kind: {e:?}")
        };
        assert!(holder.starts_with("`pmf apply` (pid "), "{holder}");
        assert_eq!(e.to_string(), format!("the store is in use by {holder}"));
        assert_eq!(
            lock::holder(&path).unwrap().as_deref(),
            Some(holder.as_str())
        );
    }

    #[test]
    fn sqlite_failures_are_sorted_by_what_failed() {
        use rusqlite::ffi;
        let of =
            |code| StoreError::from(rusqlite::Error::SqliteFailure(ffi::Error::new(code), None));
        assert!(matches!(of(ffi::SQLITE_CORRUPT), StoreError::Damaged(_)));
        assert!(matches!(of(ffi::SQLITE_NOTADB), StoreError::Damaged(_)));
        assert!(matches!(of(ffi::SQLITE_FULL), StoreError::DiskFull(_)));
        assert!(matches!(of(ffi::SQLITE_BUSY), StoreError::Busy(_)));
        assert!(matches!(
            of(ffi::SQLITE_CONSTRAINT),
            StoreError::Conflict(_)
        ));
        assert!(matches!(of(ffi::SQLITE_MISUSE), StoreError::Sql(_)));
        assert!(matches!(of(ffi::SQLITE_IOERR_WRITE), StoreError::Io(_)));
        assert!(matches!(of(ffi::SQLITE_NOMEM), StoreError::OutOfMemory(_)));
        assert!(
            of(ffi::SQLITE_IOERR_WRITE)
                .to_string()
                .starts_with("a write to the store's files failed (")
        );
        assert!(
            of(ffi::SQLITE_IOERR_FSYNC)
                .to_string()
                .starts_with("flushing the store's files to disk failed")
        );
        assert!(
            of(ffi::SQLITE_FULL)
                .to_string()
                .ends_with(": free some space on its disk")
        );
        assert!(of(ffi::SQLITE_BUSY).to_string().starts_with("store: "));
    }
}
