//! Writing JSON text by hand for the hot paths (plan lines, canonical
//! states): the same text `serde_json` writes, without building values or
//! going through a generic serializer.

use std::fmt::Write;

/// Append `s` as a JSON string literal.
pub fn write_str(s: &str, out: &mut String) {
    if !pmf_store::lineage::needs_escape(s.as_bytes()) {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        // Rare: let serde_json do the escaping.
        let _ = write!(out, "{}", serde_json::Value::String(s.to_string()));
    }
}

/// Append a number as `serde_json` writes an `f64` (`null` when not finite).
/// Whole numbers (`88.0`) and hundredths below ten million (`85.75`, the
/// plan's rounded scores) take a fast path: the double nearest a decimal
/// of at most nine digits prints as that decimal, its shortest form.
pub(crate) fn write_f64(n: f64, out: &mut String) {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    if n.fract() == 0.0 && n.abs() < EXACT && !(n == 0.0 && n.is_sign_negative()) {
        if n < 0.0 {
            out.push('-');
        }
        write_u64(n.abs() as u64, out);
        out.push_str(".0");
        return;
    }
    let hundredths = (n.abs() * 100.0).round();
    if n.abs() >= 0.01 && n.abs() < 1e7 && hundredths / 100.0 == n.abs() {
        let k = hundredths as u64;
        if n < 0.0 {
            out.push('-');
        }
        write_u64(k / 100, out);
        out.push('.');
        let (tenths, rest) = (k / 10 % 10, k % 10);
        out.push(char::from(b'0' + tenths as u8));
        if rest != 0 {
            out.push(char::from(b'0' + rest as u8));
        }
        return;
    }
    match serde_json::Number::from_f64(n) {
        Some(num) => {
            let _ = write!(out, "{num}");
        }
        None => out.push_str("null"),
    }
}

/// Append a whole number in decimal.
pub(crate) fn write_u64(n: u64, out: &mut String) {
    out.push_str(pmf_store::lineage::decimal(n, &mut [0u8; 20]));
}

/// Append a semantic version as its text (`1.2.3-rc.1+build`).
pub(crate) fn write_version(v: &semver::Version, out: &mut String) {
    put_version(v, |s| out.push_str(s));
}

/// A version as [`write_version`] writes it, as a compact text (inline
/// up to 24 bytes: no allocation for most versions).
pub(crate) fn version_text(v: &semver::Version) -> pmf_store::lineage::Text {
    let mut t = pmf_store::lineage::Text::default();
    put_version(v, |s| t.push_str(s));
    t
}

/// A version's text, a piece at a time, to `put`.
fn put_version(v: &semver::Version, mut put: impl FnMut(&str)) {
    let mut buf = [0u8; 20];
    put(pmf_store::lineage::decimal(v.major, &mut buf));
    put(".");
    put(pmf_store::lineage::decimal(v.minor, &mut buf));
    put(".");
    put(pmf_store::lineage::decimal(v.patch, &mut buf));
    if !v.pre.is_empty() {
        put("-");
        put(v.pre.as_str());
    }
    if !v.build.is_empty() {
        put("+");
        put(v.build.as_str());
    }
}

/// Append `bytes` in lower-case hexadecimal.
pub(crate) fn write_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // A nibble is below 16: the default is never taken.
    let digit = |n: u8| char::from(DIGITS.get(usize::from(n)).copied().unwrap_or(b'0'));
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(digit(b >> 4));
        out.push(digit(b & 15));
    }
}

/// Append `items` as a JSON array of strings.
pub(crate) fn write_str_array<'a>(items: impl IntoIterator<Item = &'a str>, out: &mut String) {
    out.push('[');
    for (i, s) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(s, out);
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_serde_json() {
        for n in [
            0.0,
            -0.0,
            1.0,
            -3.0,
            85.8,
            0.1,
            1e21,
            1e15,
            9_007_199_254_740_993.0,
            -2.5e-7,
            f64::NAN,
            f64::INFINITY,
        ] {
            let mut ours = String::new();
            write_f64(n, &mut ours);
            let theirs = serde_json::to_string(&n).unwrap();
            assert_eq!(ours, theirs, "{n}");
        }
        // Every hundredth as the plan rounds scores, over the fast path's
        // range and past its edges.
        let hundredths = (0..=20_000)
            .chain((0..2_000).map(|i| 999_990_000 + i))
            .chain((0..2_000).map(|i| i * 499_979));
        for k in hundredths {
            for n in [k as f64 / 100.0, -(k as f64) / 100.0] {
                let n = (n * 100.0).round() / 100.0;
                let mut ours = String::new();
                write_f64(n, &mut ours);
                assert_eq!(ours, serde_json::to_string(&n).unwrap(), "{n}");
            }
        }
    }

    #[test]
    fn strings_and_hex_match_serde_json() {
        for s in [
            "plain",
            "quo\"te",
            "back\\slash",
            "tab\there",
            "ünï",
            "\u{1}",
            "a text longer than one word of eight bytes",
            "a text longer than eight \" with a quote",
            "0123456789abcdef\\",
            "01234567\u{1f}89",
            "ünïcödé text, long enough: “quoted” 🦀",
        ] {
            let mut ours = String::new();
            write_str(s, &mut ours);
            assert_eq!(ours, serde_json::to_string(s).unwrap());
        }
        for v in [
            "1.2.3",
            "0.0.0-rc.1+b.7",
            "10.20.30+meta",
            "18446744073709551615.0.1-a.very.long.prerelease.identifier+and.build",
        ] {
            let v = semver::Version::parse(v).unwrap();
            let mut ours = String::new();
            write_version(&v, &mut ours);
            assert_eq!(ours, v.to_string());
            assert_eq!(version_text(&v), v.to_string());
        }
        let mut hex_text = String::new();
        write_hex(&[0, 15, 16, 255], &mut hex_text);
        assert_eq!(hex_text, hex::encode([0u8, 15, 16, 255]));
    }
}
