//! Authority keys: the form of a public key in a `key` declaration.
//!
//! A key is written `"ed25519:"` followed by the 32 bytes of an ed25519
//! public key as 64 lowercase hex digits. [`parse`] accepts exactly that
//! form, and only keys that can verify a signature: a point on the curve
//! that is not of small order (a weak key, which `verify_strict` refuses).

use ed25519_dalek::VerifyingKey;

use pmf_syntax::ast::Key;

/// Hex digits in a public key (32 bytes).
pub(crate) const HEX_DIGITS: usize = 64;

/// Why a key's text is not a usable ed25519 public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyProblem {
    /// The text does not start with `ed25519:`.
    MissingPrefix,
    /// The digits after the prefix are not 64 (the count found).
    WrongLength(usize),
    /// A character that is not a lowercase hex digit.
    NotHex(char),
    /// 32 bytes that are not the encoding of a point on the curve.
    NotOnCurve,
    /// A point of small order: no signature made with it can be trusted.
    Weak,
}

impl KeyProblem {
    /// What is wrong, as a diagnostic label (lowercase, no final period).
    pub fn describe(&self) -> String {
        match self {
            KeyProblem::MissingPrefix => "missing the `ed25519:` prefix".into(),
            KeyProblem::WrongLength(n) => format!(
                "{n} hex digit{} after `ed25519:`, expected {HEX_DIGITS}",
                if *n == 1 { "" } else { "s" }
            ),
            KeyProblem::NotHex(c) if c.is_ascii_hexdigit() => {
                format!("`{c}` is an uppercase hex digit; keys are written in lowercase")
            }
            KeyProblem::NotHex(c) => format!("`{c}` is not a hex digit"),
            KeyProblem::NotOnCurve => "these 32 bytes are not a valid ed25519 public key".into(),
            KeyProblem::Weak => {
                "a weak key of small order, which can never sign an approval".into()
            }
        }
    }
}

/// The public key of `text` (such as `ed25519:3d40...660c`) as 64 lowercase
/// hex digits without the prefix, or why it is not one.
pub fn parse(text: &str) -> Result<String, KeyProblem> {
    let hex_text = text
        .strip_prefix(Key::PREFIX)
        .ok_or(KeyProblem::MissingPrefix)?;
    if let Some(c) = hex_text
        .chars()
        .find(|c| !matches!(c, '0'..='9' | 'a'..='f'))
    {
        return Err(KeyProblem::NotHex(c));
    }
    if hex_text.len() != HEX_DIGITS {
        return Err(KeyProblem::WrongLength(hex_text.len()));
    }
    let bytes: [u8; 32] = hex::decode(hex_text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(KeyProblem::WrongLength(hex_text.len()))?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyProblem::NotOnCurve)?;
    if key.is_weak() {
        return Err(KeyProblem::Weak);
    }
    Ok(hex_text.to_string())
}

/// A key's short form for messages and hover: `ed25519:` and the first 16
/// hex digits, such as `ed25519:3d4017c3e843895a…` (the text as written
/// when it is shorter).
pub fn fingerprint(text: &str) -> String {
    match text.strip_prefix(Key::PREFIX) {
        Some(hex_text) if hex_text.chars().count() > 16 => {
            let short: String = hex_text.chars().take(16).collect();
            format!("{}{short}…", Key::PREFIX)
        }
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "ed25519:3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";

    #[test]
    fn accepts_a_public_key() {
        assert_eq!(parse(GOOD).as_deref(), Ok(&GOOD[8..]));
        assert_eq!(fingerprint(GOOD), "ed25519:3d4017c3e843895a…");
    }

    #[test]
    fn names_what_is_wrong() {
        assert_eq!(parse(&GOOD[8..]), Err(KeyProblem::MissingPrefix));
        assert_eq!(parse(&GOOD[..70]), Err(KeyProblem::WrongLength(62)));
        assert_eq!(
            parse(&GOOD.replace("3d40", "3D40")),
            Err(KeyProblem::NotHex('D'))
        );
        assert_eq!(
            parse(&GOOD.replace("3d40", "3g40")),
            Err(KeyProblem::NotHex('g'))
        );
        // The identity point decodes but has small order.
        let identity = format!("ed25519:01{}", "0".repeat(62));
        assert_eq!(parse(&identity), Err(KeyProblem::Weak));
        // y = 2 is not the y-coordinate of a curve point.
        let off_curve = format!("ed25519:02{}", "0".repeat(62));
        assert_eq!(parse(&off_curve), Err(KeyProblem::NotOnCurve));
        assert_eq!(fingerprint("rsa:abc"), "rsa:abc");
    }
}
