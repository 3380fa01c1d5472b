//! The store's table of texts (`texts`, schema 4): each text a store
//! repeats from row to row (the keys of packed states, and the phases,
//! versions, rites, hashes of plans and policies, and signers of events)
//! is written once and named by its number everywhere else.
//!
//! What is hashed and signed is always the text itself: a packed state's
//! digest is of its JSON, an event's chain hash of its compact encoding
//! with the texts in place ([`crate::lineage::expand`]). So a text of the
//! table edited outside pmf changes what every row naming it reads as,
//! and `verify` finds those rows.

use rusqlite::Connection;
use rustc_hash::FxHashMap;

use super::StoreError;

/// The texts of a store's table, by number and by text. The maps hash
/// with FxHash: their keys are the store's own texts, looked up for every
/// key of every state and every text of every event that apply writes.
#[derive(Debug, Default, Clone)]
pub struct Texts {
    ids: FxHashMap<Box<str>, u64>,
    texts: FxHashMap<u64, Box<str>>,
}

impl Texts {
    /// Every text of the store's table (read on `conn`).
    pub fn load(conn: &Connection) -> Result<Texts, StoreError> {
        let mut texts = Texts::default();
        let mut stmt = conn.prepare_cached("SELECT id, text FROM texts")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let text: String = r.get(1)?;
            texts.add(id as u64, &text);
        }
        Ok(texts)
    }

    /// The number of `text`, if the table has it.
    pub fn id(&self, text: &str) -> Option<u64> {
        self.ids.get(text).copied()
    }

    /// The text numbered `id`.
    pub fn text(&self, id: u64) -> Option<&str> {
        self.texts.get(&id).map(|k| &**k)
    }

    /// Remember that `text` is numbered `id`.
    pub(crate) fn add(&mut self, id: u64, text: &str) {
        self.ids.insert(text.into(), id);
        self.texts.insert(id, text.into());
    }

    /// The number of `text` on the write transaction `tx`, added to the
    /// table (and to `self`) when it is new.
    pub(crate) fn intern(&mut self, tx: &Connection, text: &str) -> Result<u64, StoreError> {
        if let Some(id) = self.id(text) {
            return Ok(id);
        }
        let id: i64 = tx
            .prepare_cached("INSERT INTO texts (text) VALUES (?1) RETURNING id")?
            .query_row([text], |r| r.get(0))?;
        self.add(id as u64, text);
        Ok(id as u64)
    }
}
