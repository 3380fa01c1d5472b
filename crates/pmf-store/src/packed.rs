//! Partner states in the store's compact encoding (schema 4). A state is
//! canonical JSON (no white space); packed, each token is a tag byte and
//! what it needs, and every object key is a number from the store's table
//! of texts ([`crate::interned`]), so the keys a fleet's states repeat are written
//! once per store instead of once per row.
//!
//! Packing is exact: a text is packed only when unpacking gives back the
//! very same bytes, and any other text is stored as it is (as rows written
//! before schema 4 are). The digests the lineage records are of the text,
//! so a packed row, or a text of the table, edited outside pmf unpacks to
//! another text and is found like any other edited row.
//!
//! Encoding: the byte [`FORMAT`], then the value. A value is one of
//! - `0` null, `1` false, `2` true;
//! - `3` a number as its text (varint length, bytes);
//! - `4` a whole number `N` written without a fraction (varint `N`);
//! - `5` a whole number written `N.0` (varint `N`);
//! - `6` a string as written between its quotes, escapes kept (varint
//!   length, bytes);
//! - `7` an array (varint count, values);
//! - `8` an object (varint count, then each key's number and its value).

use rusqlite::types::ValueRef;

use super::StoreError;
use super::interned::Texts;
use super::lineage::{Reader, put_varint};

/// The first byte of a packed state.
pub(crate) const FORMAT: u8 = 0x01;

/// What a state that does not unpack reads as: never JSON, so neither its
/// digest nor a parse of it passes for the state that was stored.
pub(crate) const DAMAGED: &str = "<a packed state that does not unpack: edited outside pmf>";

/// Nesting deeper than this is stored as text (and a packed state nested
/// deeper does not unpack): packing and unpacking recurse.
const MAX_DEPTH: usize = 200;

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const NUMBER: u8 = 3;
const WHOLE: u8 = 4;
const WHOLE_POINT_ZERO: u8 = 5;
const STRING: u8 = 6;
const ARRAY: u8 = 7;
const OBJECT: u8 = 8;

/// Pack `text` into `out` (cleared first), numbering keys with `key_id`
/// (which may add them to the table). `Ok(false)` when `text` is not
/// canonical JSON that the encoding gives back exactly: store it as text.
pub(crate) fn pack(
    text: &str,
    key_id: &mut dyn FnMut(&str) -> Result<u64, StoreError>,
    out: &mut Vec<u8>,
) -> Result<bool, StoreError> {
    out.clear();
    out.push(FORMAT);
    let mut packer = Packer {
        source: text,
        text: text.as_bytes(),
        at: 0,
        key_id,
        out,
    };
    Ok(packer.value(0)? && packer.at == text.len())
}

/// `text` packed with the numbers `keys` already gives its keys: `None`
/// when a key is not numbered yet, or when the packed bytes would not
/// unpack to the very text. Reads nothing and writes nothing, so states
/// can be packed ahead, on any thread ([`crate::batch::PreparedState`]).
pub(crate) fn prepack(text: &str, keys: &Texts) -> Option<Vec<u8>> {
    let mut missing = false;
    let mut out = Vec::with_capacity(text.len());
    let packed = pack(
        text,
        &mut |key| {
            Ok(keys.id(key).unwrap_or_else(|| {
                missing = true;
                0
            }))
        },
        &mut out,
    )
    .ok()?;
    (packed && !missing && unpacks_to(&out, keys, text)).then_some(out)
}

struct Packer<'t, 'k, 'o> {
    /// The text packed, and its bytes.
    source: &'t str,
    text: &'t [u8],
    at: usize,
    key_id: &'k mut dyn FnMut(&str) -> Result<u64, StoreError>,
    out: &'o mut Vec<u8>,
}

impl<'t> Packer<'t, '_, '_> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn literal(&mut self, word: &[u8], tag: u8) -> bool {
        if self.text.get(self.at..self.at + word.len()) == Some(word) {
            self.at += word.len();
            self.out.push(tag);
            true
        } else {
            false
        }
    }

    /// The text between a string's quotes (escapes kept), the closing
    /// quote consumed.
    fn string(&mut self) -> Option<&'t str> {
        let text: &'t [u8] = self.text;
        let start = self.at + 1;
        let mut i = start;
        loop {
            match text.get(i)? {
                b'\\' => i += 2,
                b'"' => break,
                _ => i += 1,
            }
        }
        self.at = i + 1;
        // Quotes and backslashes are ASCII: the slice is on char boundaries
        // of the original `str` (checked at its ends, not validated again).
        self.source.get(start..i)
    }

    fn number(&mut self) {
        let start = self.at;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.at += 1;
        }
        let t = self.text.get(start..self.at).unwrap_or_default();
        let whole = |d: &[u8]| -> Option<u64> {
            let canonical = matches!(d, [b'0'] | [b'1'..=b'9', ..]);
            if !canonical || !d.iter().all(u8::is_ascii_digit) {
                None
            } else if d.len() <= 19 {
                // Below 10^19: no digit string this short overflows.
                Some(d.iter().fold(0u64, |n, &b| n * 10 + u64::from(b - b'0')))
            } else {
                std::str::from_utf8(d).ok()?.parse().ok()
            }
        };
        if let Some(n) = whole(t) {
            self.out.push(WHOLE);
            put_varint(self.out, n);
        } else if let Some(n) = t.strip_suffix(b".0").and_then(whole) {
            self.out.push(WHOLE_POINT_ZERO);
            put_varint(self.out, n);
        } else {
            self.out.push(NUMBER);
            put_varint(self.out, t.len() as u64);
            self.out.extend_from_slice(t);
        }
    }

    /// Where a container's count of items goes: one byte held for it
    /// (the varint of a count below 128), before its items.
    fn hold_count(&mut self) -> usize {
        self.out.push(0);
        self.out.len() - 1
    }

    /// Write the count of a container's items in the byte held at `at`
    /// ([`Packer::hold_count`]), widened when its varint takes more.
    fn count_at(&mut self, at: usize, count: u64) {
        match (u8::try_from(count), self.out.get_mut(at)) {
            (Ok(n), Some(held)) if n < 0x80 => *held = n,
            _ => {
                let mut n = Vec::with_capacity(4);
                put_varint(&mut n, count);
                self.out.splice(at..at + 1, n);
            }
        }
    }

    /// One value; `Ok(false)` when the text is not one the encoding keeps.
    fn value(&mut self, depth: usize) -> Result<bool, StoreError> {
        if depth > MAX_DEPTH {
            return Ok(false);
        }
        Ok(match self.peek() {
            Some(b'n') => self.literal(b"null", NULL),
            Some(b'f') => self.literal(b"false", FALSE),
            Some(b't') => self.literal(b"true", TRUE),
            Some(b'"') => match self.string() {
                Some(s) => {
                    let b = s.as_bytes();
                    self.out.push(STRING);
                    put_varint(self.out, b.len() as u64);
                    self.out.extend_from_slice(b);
                    true
                }
                None => false,
            },
            Some(b'-' | b'0'..=b'9') => {
                self.number();
                true
            }
            Some(b'[') => {
                self.at += 1;
                self.out.push(ARRAY);
                let items = self.hold_count();
                let mut count = 0u64;
                if self.peek() == Some(b']') {
                    self.at += 1;
                } else {
                    loop {
                        if !self.value(depth + 1)? {
                            return Ok(false);
                        }
                        count += 1;
                        match self.peek() {
                            Some(b',') => self.at += 1,
                            Some(b']') => {
                                self.at += 1;
                                break;
                            }
                            _ => return Ok(false),
                        }
                    }
                }
                self.count_at(items, count);
                true
            }
            Some(b'{') => {
                self.at += 1;
                self.out.push(OBJECT);
                let items = self.hold_count();
                let mut count = 0u64;
                if self.peek() == Some(b'}') {
                    self.at += 1;
                } else {
                    loop {
                        if self.peek() != Some(b'"') {
                            return Ok(false);
                        }
                        let Some(key) = self.string() else {
                            return Ok(false);
                        };
                        let id = (self.key_id)(key)?;
                        put_varint(self.out, id);
                        if self.peek() != Some(b':') {
                            return Ok(false);
                        }
                        self.at += 1;
                        if !self.value(depth + 1)? {
                            return Ok(false);
                        }
                        count += 1;
                        match self.peek() {
                            Some(b',') => self.at += 1,
                            Some(b'}') => {
                                self.at += 1;
                                break;
                            }
                            _ => return Ok(false),
                        }
                    }
                }
                self.count_at(items, count);
                true
            }
            _ => false,
        })
    }
}

/// The text of a packed state, its keys named by `keys`; `None` when the
/// bytes are not a packed state or name a key `keys` does not have.
pub(crate) fn unpack(bytes: &[u8], keys: &Texts) -> Option<String> {
    let mut out = String::with_capacity(bytes.len() * 2);
    unpack_into(bytes, keys, &mut out).then_some(out)
}

/// Whether `bytes` unpack to `text` exactly ([`unpack`]`(bytes, keys) ==
/// Some(text)`), compared as they unpack: nothing is allocated.
pub(crate) fn unpacks_to(bytes: &[u8], keys: &Texts, text: &str) -> bool {
    let mut rest = Expect(text.as_bytes());
    unpack_into(bytes, keys, &mut rest) && rest.0.is_empty()
}

/// Where unpacked text goes: a string, or a comparison with a text.
trait Sink {
    /// Append `s`; false when it does not match.
    fn put(&mut self, s: &str) -> bool;

    /// Append the bytes of a string or a number as stored: false when
    /// they are not UTF-8, or do not match.
    fn put_stored(&mut self, s: &[u8]) -> bool;
}

impl Sink for String {
    fn put(&mut self, s: &str) -> bool {
        self.push_str(s);
        true
    }

    fn put_stored(&mut self, s: &[u8]) -> bool {
        std::str::from_utf8(s).is_ok_and(|s| self.put(s))
    }
}

/// The text still expected.
struct Expect<'t>(&'t [u8]);

impl Sink for Expect<'_> {
    fn put(&mut self, s: &str) -> bool {
        self.put_stored(s.as_bytes())
    }

    /// The bytes expected are UTF-8 (a `str`'s), so bytes equal to them
    /// are too: compared, not validated.
    fn put_stored(&mut self, s: &[u8]) -> bool {
        match self.0.strip_prefix(s) {
            Some(rest) => {
                self.0 = rest;
                true
            }
            None => false,
        }
    }
}

fn unpack_into(bytes: &[u8], keys: &Texts, out: &mut impl Sink) -> bool {
    let mut r = Reader { rest: bytes };
    r.byte() == Some(FORMAT) && unpack_value(&mut r, keys, out, 0).is_some() && r.rest.is_empty()
}

fn unpack_value(r: &mut Reader<'_>, keys: &Texts, out: &mut impl Sink, depth: usize) -> Option<()> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut buf = [0u8; 20];
    let ok = |b: bool| b.then_some(());
    match r.byte()? {
        NULL => ok(out.put("null"))?,
        FALSE => ok(out.put("false"))?,
        TRUE => ok(out.put("true"))?,
        NUMBER => {
            let n = usize::try_from(r.varint()?).ok()?;
            ok(out.put_stored(r.bytes(n)?))?;
        }
        WHOLE => {
            ok(out.put(crate::lineage::decimal(r.varint()?, &mut buf)))?;
        }
        WHOLE_POINT_ZERO => {
            ok(out.put(crate::lineage::decimal(r.varint()?, &mut buf)))?;
            ok(out.put(".0"))?;
        }
        STRING => {
            let n = usize::try_from(r.varint()?).ok()?;
            ok(out.put("\""))?;
            ok(out.put_stored(r.bytes(n)?))?;
            ok(out.put("\""))?;
        }
        ARRAY => {
            let n = r.varint()?;
            ok(out.put("["))?;
            for i in 0..n {
                if i > 0 {
                    ok(out.put(","))?;
                }
                unpack_value(r, keys, out, depth + 1)?;
            }
            ok(out.put("]"))?;
        }
        OBJECT => {
            let n = r.varint()?;
            ok(out.put("{"))?;
            for i in 0..n {
                if i > 0 {
                    ok(out.put(","))?;
                }
                ok(out.put("\""))?;
                ok(out.put(keys.text(r.varint()?)?))?;
                ok(out.put("\":"))?;
                unpack_value(r, keys, out, depth + 1)?;
            }
            ok(out.put("}"))?;
        }
        _ => return None,
    }
    Some(())
}

/// A state column's value as text: text as it is, a packed state
/// unpacked; `None` for a blob that does not unpack with `keys`.
pub(crate) fn state_of(raw: ValueRef<'_>, keys: &Texts) -> Option<String> {
    match raw {
        ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => unpack(b, keys),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pack with a table that numbers keys as they come; returns the
    /// bytes (if packed) and the table.
    fn packed(text: &str) -> (Option<Vec<u8>>, Texts) {
        let mut keys = Texts::default();
        let mut next = 0u64;
        let mut out = Vec::new();
        let ok = {
            let mut number = |k: &str| -> Result<u64, StoreError> {
                Ok(match keys.id(k) {
                    Some(id) => id,
                    None => {
                        next += 1;
                        keys.add(next, k);
                        next
                    }
                })
            };
            pack(text, &mut number, &mut out).unwrap()
        };
        (ok.then_some(out), keys)
    }

    #[test]
    fn canonical_states_round_trip_exactly_and_shrink() {
        let state = r#"{"capabilities":["route","sense"],"id":"b-0000000","intelligence":{"level":3.0,"model":"loom-2"},"metrics":{"compatibility":86.0,"ecosystem":80.0,"stability":88.0,"sustainability":84.0},"permissions":["read","write"],"power":5.0,"region":"eu","strands":["alpha","beta"],"structure":["core","mesh"],"version":"1.6.0","workflows":["sync"]}"#;
        let (bytes, keys) = packed(state);
        let bytes = bytes.expect("a canonical state packs");
        assert_eq!(unpack(&bytes, &keys).as_deref(), Some(state));
        assert!(bytes.len() * 2 < state.len(), "{} bytes", bytes.len());
    }

    /// A container's count is the varint before its items, however many
    /// there are (one byte below 128, more from 128 on), and round trips.
    #[test]
    fn counts_of_every_width_are_varints_before_the_items() {
        for n in [0usize, 1, 2, 127, 128, 129, 300, 16_383, 16_384, 20_000] {
            let items = vec!["0"; n].join(",");
            let mut count = Vec::new();
            put_varint(&mut count, n as u64);
            // An array: its items are whole numbers (WHOLE, 0).
            let array = format!("[{items}]");
            let (bytes, keys) = packed(&array);
            let bytes = bytes.expect("packs");
            let mut expected = vec![FORMAT, ARRAY];
            expected.extend_from_slice(&count);
            expected.extend(std::iter::repeat_n([WHOLE, 0], n).flatten());
            assert_eq!(bytes, expected, "{n} items");
            assert_eq!(unpack(&bytes, &keys).as_deref(), Some(array.as_str()));
            // Nested: an object holding the array, then a key after it.
            let nested = format!(r#"{{"a":[{items}],"b":[[],[{items}]]}}"#);
            let (bytes, keys) = packed(&nested);
            let bytes = bytes.expect("packs");
            assert_eq!(
                unpack(&bytes, &keys).as_deref(),
                Some(nested.as_str()),
                "{n}"
            );
        }
    }

    #[test]
    fn every_kind_of_token_round_trips() {
        for text in [
            "null",
            "true",
            "false",
            "0",
            "0.0",
            "7",
            "18446744073709551615",
            "18446744073709551616",
            "9999999999999999999",
            "10000000000000000000",
            "99999999999999999999",
            "-9999999999999999999.0",
            "-1",
            "-0.0",
            "1.5",
            "1e10",
            "2.50",
            "00",
            "01.0",
            "\"\"",
            r#""a \"quoted\" \\ word \u00e9 and é""#,
            "[]",
            "{}",
            "[[],{},[1,[2,[3]]]]",
            r#"{"a":{"a":{"a":[null,true,false]}},"":1,"\"k\"":"v"}"#,
        ] {
            let (bytes, keys) = packed(text);
            let bytes = bytes.unwrap_or_else(|| panic!("`{text}` did not pack"));
            assert_eq!(unpack(&bytes, &keys).as_deref(), Some(text), "{text}");
        }
    }

    #[test]
    fn text_the_encoding_does_not_keep_is_left_as_text() {
        for text in [
            "",
            " {}",
            "{} ",
            "{\"a\": 1}",
            "[1, 2]",
            "{\"a\"}",
            "[1,]",
            "{1:2}",
            "\"unterminated",
            "nul",
            "[",
            "{\"a\":1",
            "x",
        ] {
            assert!(packed(text).0.is_none(), "`{text}` packed");
        }
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 5), "]".repeat(MAX_DEPTH + 5));
        assert!(packed(&deep).0.is_none());
        let shallow = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        let (bytes, keys) = packed(&shallow);
        assert_eq!(unpack(&bytes.unwrap(), &keys), Some(shallow));
    }

    /// Checking as it unpacks compares the bytes of strings and numbers
    /// without validating them as UTF-8: it still says yes exactly when
    /// unpacking gives the text, for texts with characters of every width,
    /// with every byte changed, and against texts cut inside a character.
    #[test]
    fn checking_agrees_with_unpacking_on_characters_of_every_width() {
        let state = r#"{"é":["aé€😀z","😀",""],"n":-1.5e3,"€":{"ü":"ü"}}"#;
        let (bytes, keys) = packed(state);
        let bytes = bytes.expect("packs");
        let agree = |b: &[u8], text: &str| {
            assert_eq!(
                unpacks_to(b, &keys, text),
                unpack(b, &keys).as_deref() == Some(text),
                "{b:?} against {text:?}"
            );
        };
        agree(&bytes, state);
        for i in 0..bytes.len() {
            for value in [0x00u8, 0x22, 0x41, 0x80, 0x9f, 0xc3, 0xe2, 0xf0, 0xff] {
                let mut b = bytes.clone();
                b[i] = value;
                agree(&b, state);
            }
            agree(&bytes[..i], state);
        }
        for (cut, _) in state.char_indices() {
            agree(&bytes, &state[..cut]);
        }
    }

    #[test]
    fn damaged_bytes_never_unpack_into_a_panic() {
        let state = r#"{"a":[1,2.0,"x",{"b":null}],"c":-3.5}"#;
        let (bytes, keys) = packed(state);
        let bytes = bytes.unwrap();
        assert_eq!(unpack(&bytes, &Texts::default()), None, "keys missing");
        assert!(unpacks_to(&bytes, &keys, state));
        for cut in 0..bytes.len() {
            assert_eq!(unpack(&bytes[..cut], &keys), None, "cut at {cut}");
            assert!(!unpacks_to(&bytes[..cut], &keys, state), "cut at {cut}");
        }
        // The text compared must end where the bytes do, and match all along.
        assert!(!unpacks_to(&bytes, &keys, &format!("{state} ")));
        assert!(!unpacks_to(&bytes, &keys, &state[..state.len() - 1]));
        assert!(!unpacks_to(&bytes, &keys, &state.replace("-3.5", "-3.6")));
        for i in 0..bytes.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] ^= flip;
                // Either not a state, or another text: never the same one.
                assert_ne!(
                    unpack(&b, &keys).as_deref(),
                    Some(state),
                    "byte {i} ^ {flip:#x}"
                );
                assert!(!unpacks_to(&b, &keys, state), "byte {i} ^ {flip:#x}");
            }
        }
        let mut deep = vec![FORMAT];
        deep.extend(std::iter::repeat_n([ARRAY, 1], 100_000).flatten());
        assert_eq!(unpack(&deep, &keys), None);
        assert_eq!(
            unpack(&[FORMAT, ARRAY, 0xff, 0xff, 0xff, 0xff, 0x0f], &keys),
            None
        );
    }

    #[test]
    fn whole_numbers_are_written_as_to_string_writes_them() {
        let mut buf = [0u8; 20];
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ]
        .into_iter()
        .chain((0..64).map(|bit| 1u64 << bit))
        {
            assert_eq!(crate::lineage::decimal(n, &mut buf), n.to_string());
        }
    }

    #[test]
    fn generated_states_round_trip() {
        // A seeded walk over JSON built from the tokens the encoding knows.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        fn generate(next: &mut dyn FnMut(u64) -> u64, depth: usize, out: &mut String) {
            match next(if depth > 4 { 6 } else { 8 }) {
                0 => out.push_str("null"),
                1 => out.push_str(["true", "false"][next(2) as usize]),
                2 => out.push_str(&next(100_000).to_string()),
                3 => out.push_str(&format!("{}.0", next(1000))),
                4 => out.push_str(&format!("{}", (next(2_000_000) as f64 - 1e6) / 8.0)),
                5 => out.push_str(&format!("\"s{}\\n\"", next(50))),
                6 => {
                    out.push('[');
                    for i in 0..next(4) {
                        if i > 0 {
                            out.push(',');
                        }
                        generate(next, depth + 1, out);
                    }
                    out.push(']');
                }
                _ => {
                    out.push('{');
                    for i in 0..next(4) {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(&format!("\"k{}\":", next(6)));
                        generate(next, depth + 1, out);
                    }
                    out.push('}');
                }
            }
        }
        for _ in 0..2_000 {
            let mut text = String::new();
            generate(&mut next, 0, &mut text);
            let (bytes, keys) = packed(&text);
            let bytes = bytes.unwrap_or_else(|| panic!("`{text}` did not pack"));
            assert_eq!(unpack(&bytes, &keys).as_deref(), Some(text.as_str()));
            assert!(unpacks_to(&bytes, &keys, &text));
        }
    }
}
