//! A plan's entry lines read straight into [`PlanEntry`], without serde's
//! generic deserializer: the hot part of reading a plan back (`pmf apply`
//! reads one line per partner).
//!
//! The reader is strict and small, like [`crate::fast`]: it reads a line
//! only as `pmf plan` writes it ([`super::write`]: its fields in their
//! order, no white space, strings without escapes), and answers `None` to
//! anything else, which is then read by serde (the reference), giving the
//! same entry or the error that says what is wrong. Whatever it accepts,
//! serde accepts and reads to the same entry (tests hold it to that, on
//! written plans and on mutations of their lines).
//!
//! The JSON a line carries (its `state`, `target` and `observed`) is
//! checked to be JSON here, by a grammar that is a subset of JSON's (see
//! [`Line::skip_value`]), and kept as text ([`CarriedJson`]) as serde's
//! `RawValue` would keep it: the one pass over it is both the check and
//! the scan for its end.

use super::{CarriedJson, PlanEntry, Prediction};
use crate::engine::Action;
use pmf_store::lineage::Text;

/// How deep the carried JSON may nest here (serde refuses 128 levels; the
/// reference decides anything deeper).
const MAX_DEPTH: u32 = 64;

/// `line` read as the plan entry serde reads from it, or `None` when it is
/// not laid out as `pmf plan` writes entries (serde then reads it).
pub(super) fn read_entry(line: &[u8]) -> Option<PlanEntry> {
    // Serde reads strings as UTF-8 and refuses anything else; checked once
    // here, every slice of the line between ASCII bytes is a `str`.
    let text = std::str::from_utf8(line).ok()?;
    let mut r = Line { text, at: 0 };
    r.word("{\"id\":")?;
    let id = r.string()?.to_string();
    let state_digest = if r.word(",\"state_digest\":").is_some() {
        Some(r.string()?.to_string())
    } else {
        None
    };
    r.word(",\"from\":")?;
    let from = r.text_or_null()?;
    r.word(",\"to\":")?;
    let to = r.text_or_null()?;
    r.word(",\"type\":")?;
    let migration = r.text_or_null()?;
    r.word(",\"categories\":")?;
    let categories = r.texts()?;
    r.word(",\"approvals_required\":")?;
    let approvals_required = r.texts()?;
    r.word(",\"predicted\":{\"score\":")?;
    let score = match r.null() {
        Some(()) => None,
        None => Some(r.number()?),
    };
    r.word(",\"band\":")?;
    let band = r.text_or_null()?;
    r.word(",\"action\":")?;
    let action = r.string()?;
    let action = Action::ALL.into_iter().find(|a| a.as_str() == action)?;
    r.word(",\"reason\":")?;
    let reason = Text::from(r.string()?);
    r.word(",\"validation\":")?;
    let validation = Text::from(r.string()?);
    r.word("},\"fallback_risk\":")?;
    let fallback_risk = r.number()?;
    // An optional field written `null` reads as absent, as serde reads it.
    let target = if r.word(",\"target\":").is_some() && r.null().is_none() {
        // The tree serde would build of it, from the text checked here.
        Some(serde_json::from_str(r.json()?).ok()?)
    } else {
        None
    };
    r.word(",\"state\":")?;
    let state = CarriedJson::checked(r.json()?);
    let observed = if r.word(",\"observed\":").is_some() && r.null().is_none() {
        Some(CarriedJson::checked(r.json()?))
    } else {
        None
    };
    r.word("}")?;
    (r.at == text.len()).then_some(PlanEntry {
        id,
        state_digest,
        from,
        to,
        migration,
        categories,
        approvals_required,
        predicted: Prediction {
            score,
            band,
            action,
            reason,
            validation,
        },
        fallback_risk,
        target,
        state,
        observed,
    })
}

/// A cursor over one entry line.
struct Line<'t> {
    text: &'t str,
    at: usize,
}

impl<'t> Line<'t> {
    fn bytes(&self) -> &'t [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.at).copied()
    }

    /// `word` at the cursor, stepped over.
    fn word(&mut self, word: &str) -> Option<()> {
        let rest = self.bytes().get(self.at..)?;
        rest.starts_with(word.as_bytes())
            .then(|| self.at += word.len())
    }

    fn null(&mut self) -> Option<()> {
        self.word("null")
    }

    /// A string without escapes or control characters (what serde reads
    /// to the same text), its quotes stepped over.
    fn string(&mut self) -> Option<&'t str> {
        self.word("\"")?;
        let start = self.at;
        let rest = self.bytes().get(start..)?;
        // Most strings here are short: a byte at a time beats a search's
        // setup. A backslash, or a control character serde refuses, ends
        // the reading too.
        let len = rest
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if rest.get(len) != Some(&b'"') {
            return None;
        }
        self.at = start + len + 1;
        // Quotes are ASCII: the slice is on the line's char boundaries.
        self.text.get(start..start + len)
    }

    fn text_or_null(&mut self) -> Option<Option<Text>> {
        match self.null() {
            Some(()) => Some(None),
            None => self.string().map(|s| Some(Text::from(s))),
        }
    }

    /// An array of strings.
    fn texts(&mut self) -> Option<Vec<Text>> {
        self.word("[")?;
        let mut texts = Vec::new();
        if self.word("]").is_some() {
            return Some(texts);
        }
        loop {
            texts.push(Text::from(self.string()?));
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(texts);
                }
                _ => return None,
            }
        }
    }

    /// A number (JSON's grammar, [`Line::number_text`]) read as serde
    /// reads it: by serde, to the last bit.
    fn number(&mut self) -> Option<f64> {
        serde_json::from_str(self.number_text()?).ok()
    }

    /// A number as JSON writes it: `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number_text(&mut self) -> Option<&'t str> {
        let start = self.at;
        let digits = |r: &mut Self| {
            let from = r.at;
            while r.peek().is_some_and(|b| b.is_ascii_digit()) {
                r.at += 1;
            }
            r.at > from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if !digits(self) {
                return None;
            }
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.at += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.at += 1;
            }
            if !digits(self) {
                return None;
            }
        }
        self.text.get(start..self.at)
    }

    /// The text of one JSON value at the cursor, stepped over.
    fn json(&mut self) -> Option<&'t str> {
        let start = self.at;
        self.skip_value(0)?;
        self.text.get(start..self.at)
    }

    /// Step over one JSON value, checking it is JSON: objects, arrays,
    /// strings without escapes, numbers, `true`, `false` and `null`, with
    /// no white space and nested at most [`MAX_DEPTH`] deep. That is a
    /// subset of what serde reads as a `RawValue` (anything else is left
    /// to it).
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' | b'[' => {
                if depth >= MAX_DEPTH {
                    return None;
                }
                let object = self.peek() == Some(b'{');
                let close = if object { b'}' } else { b']' };
                self.at += 1;
                if self.peek() == Some(close) {
                    self.at += 1;
                    return Some(());
                }
                loop {
                    if object {
                        self.string()?;
                        self.word(":")?;
                    }
                    self.skip_value(depth + 1)?;
                    match self.peek()? {
                        b',' => self.at += 1,
                        b if b == close => {
                            self.at += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            b't' => self.word("true"),
            b'f' => self.word("false"),
            b'n' => self.null(),
            _ => self.number_text().map(drop),
        }
    }
}

#[cfg(test)]
mod tests;
