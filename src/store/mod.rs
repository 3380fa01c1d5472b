//! The embedded store: SQLite at `.pmf/state.db` by default, in WAL mode,
//! with a versioned schema. It keeps partner states, stable versions, the
//! lineage, apply progress, approvals and locks.

pub mod lineage;
pub mod lock;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::runtime::plan::History;

/// The default store path.
pub const DEFAULT_PATH: &str = ".pmf/state.db";

/// A store problem (always exit code 2: the store, not the policy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError(format!("store: {e}"))
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
];

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

/// The store.
pub struct Store {
    /// The SQLite connection.
    pub conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating it and its directory if needed) and migrate.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| StoreError(format!("cannot create `{}`: {e}", dir.display())))?;
        }
        let conn = Connection::open(path)
            .map_err(|e| StoreError(format!("cannot open the store `{}`: {e}", path.display())))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // Apply uses a couple of dozen statements per partner: keep them all
        // prepared (the default cache of 16 would evict and re-parse them).
        conn.set_prepared_statement_cache_capacity(64);
        // Larger pages for a new store: the lineage is appended a page at a
        // time, and each page is one write to the WAL and one to the file.
        // (Ignored for an existing store, whose page size is fixed.)
        conn.pragma_update(None, "page_size", 16_384)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // A page cache that holds the hot index pages of a large lineage
        // (the default 2 MB re-reads them from the file again and again).
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
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    /// Open an existing store without creating it.
    pub fn open_existing(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError(format!(
                "no store at `{}` (it is created by `pmf apply` or `pmf state import`)",
                path.display()
            )));
        }
        Store::open(path)
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version as usize > MIGRATIONS.len() {
            return Err(StoreError(format!(
                "the store `{}` has schema version {version}, newer than this pmf ({}); upgrade pmf",
                self.path.display(),
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// A partner, if stored.
    pub fn partner(&self, id: &str) -> Result<Option<StoredPartner>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, state, version, status FROM partners WHERE id = ?1")?
            .query_row([id], |r| {
                Ok(StoredPartner {
                    id: r.get(0)?,
                    state: r.get(1)?,
                    version: r.get(2)?,
                    status: r.get(3)?,
                })
            })
            .optional()?)
    }

    /// Every partner, by id.
    pub fn partners(&self) -> Result<Vec<StoredPartner>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, state, version, status FROM partners ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok(StoredPartner {
                id: r.get(0)?,
                state: r.get(1)?,
                version: r.get(2)?,
                status: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stable versions of a partner, oldest first: (version, state).
    pub fn stable_versions(&self, id: &str) -> Result<Vec<(Option<String>, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT version, state FROM stable_versions WHERE partner_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Fallback statistics for plans.
    pub fn history(&self) -> Result<History, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT migration, categories, total, fallbacks FROM outcomes")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                (r.get::<_, i64>(2)? as u64, r.get::<_, i64>(3)? as u64),
            ))
        })?;
        Ok(History {
            outcomes: rows.collect::<Result<HashMap<_, _>, _>>()?,
        })
    }

    /// Outcomes recorded for a plan: partner id → outcome.
    pub fn progress(&self, plan_hash: &str) -> Result<HashMap<String, String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT partner_id, outcome FROM progress WHERE plan_hash = ?1")?;
        let rows = stmt.query_map([plan_hash], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Import partner states (canonical JSON by id) as current and stable,
    /// in one transaction; existing partners are replaced.
    pub fn import(
        &mut self,
        partners: &[(String, Option<String>, String)],
    ) -> Result<usize, StoreError> {
        let now = crate::runtime::plan::now_rfc3339();
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO partners (id, state, version, status, updated_at) VALUES (?1, ?2, ?3, 'active', ?4)
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, version = excluded.version, updated_at = excluded.updated_at",
            )?;
            let mut stable = tx.prepare_cached(
                "INSERT INTO stable_versions (partner_id, seq, version, state)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM stable_versions WHERE partner_id = ?1), ?2, ?3)",
            )?;
            for (id, version, state) in partners {
                put.execute(params![id, state, version, now])?;
                stable.execute(params![id, version, state])?;
            }
        }
        tx.commit()?;
        Ok(partners.len())
    }
}
