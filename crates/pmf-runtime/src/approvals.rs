//! Approvals: ed25519 keys held by authorities and signatures over a
//! plan's hash. The trust root is the policy: an approval counts only when
//! its authority is one the policy names and its key one the policy lists
//! for that authority (`key AUTHORITY "ed25519:…"`), so adding a key is a
//! reviewed policy change that the policy hash, and every plan, pins.

use std::path::Path;

use ed25519_dalek::{Signer, SigningKey};

use super::engine::CompiledPolicy;
use serde::{Deserialize, Serialize};

/// A private key file (`pmf keygen -o FILE`).
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct KeyFile {
    /// The authority the key signs for.
    pub authority: String,
    /// Public key (hex).
    pub public_key: String,
    /// Secret key (hex). Keep this file private.
    pub secret_key: String,
}

/// One signed approval.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// The approving authority.
    pub authority: String,
    /// The public key that signed (hex).
    pub public_key: String,
    /// Signature (hex) of [`message`].
    pub signature: String,
}

/// An approvals file (`pmf approve PLAN --key FILE -o FILE`). A field it
/// does not know, or another format version, is refused: a file is read
/// as what it says, or not at all.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsFile {
    /// Always [`APPROVALS_FORMAT`].
    pub format_version: u32,
    /// The plan hash signed.
    pub plan_hash: String,
    /// The approvals.
    pub approvals: Vec<Approval>,
}

pub use pmf_store::verify::approval_message as message;

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<T, String> {
    let bytes = pmf_syntax::read::whole(path, pmf_syntax::read::SMALL_FILE_LIMIT).map_err(|e| {
        format!(
            "cannot read {what} `{}`: {}",
            path.display(),
            pmf_syntax::diagnostics::io_reason(&e)
        )
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("`{}` is not a valid {what}: {e}", path.display()))
}

/// Write `value` as JSON, never half-written ([`pmf_store::output`]).
pub fn write_json<T: Serialize>(path: &Path, value: &T, private: bool) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())? + "\n";
    pmf_store::output::write(path, text.as_bytes(), private)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Make a new key for `authority`.
pub fn generate(authority: &str) -> Result<KeyFile, String> {
    if let Some(why) = authority_problem(authority) {
        return Err(format!("--authority: {why}"));
    }
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("no randomness available: {e}"))?;
    let key = SigningKey::from_bytes(&secret);
    Ok(KeyFile {
        authority: authority.to_string(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        secret_key: hex::encode(secret),
    })
}

/// Read a private key file.
pub fn read_key(path: &Path) -> Result<(KeyFile, SigningKey), String> {
    let file: KeyFile = read_json::<serde_json::Value>(path, "key file").and_then(|v| {
        // A store's operator key (`"role": "operator"`) is no authority's.
        if v.get("role").and_then(|r| r.as_str()) == Some("operator") {
            return Err(format!(
                "`{}` is an operator key (it signs a store's checkpoints), not an authority's: sign with the key of an authority the policy trusts (`pmf keygen --authority NAME` makes one)",
                path.display()
            ));
        }
        serde_json::from_value(v)
            .map_err(|e| format!("`{}` is not a valid key file: {e}", path.display()))
    })?;
    if let Some(why) = authority_problem(&file.authority) {
        return Err(format!("`{}`: {why}", path.display()));
    }
    let bytes: [u8; 32] = hex::decode(&file.secret_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| format!("`{}` holds no valid secret key", path.display()))?;
    let key = SigningKey::from_bytes(&bytes);
    if hex::encode(key.verifying_key().to_bytes()) != file.public_key {
        return Err(format!(
            "`{}`: the public key does not belong to the secret key",
            path.display()
        ));
    }
    Ok((file, key))
}

/// The permission bits of the private key file at `path` that let users
/// other than its owner read or write it (`None` when there are none, or
/// they cannot be read): a key anyone on the machine can copy signs for
/// anyone.
pub fn key_exposed(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode();
        Some(mode & 0o777).filter(|m| m & 0o077 != 0)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Sign `plan_hash` for the key's authority.
pub fn sign(key: &SigningKey, authority: &str, plan_hash: &str) -> Approval {
    Approval {
        authority: authority.to_string(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        signature: hex::encode(key.sign(&message(authority, plan_hash)).to_bytes()),
    }
}

/// The format version of approvals files this build reads and writes.
pub const APPROVALS_FORMAT: u32 = 1;

/// Read an approvals file (of format [`APPROVALS_FORMAT`] only).
pub fn read_approvals(path: &Path) -> Result<ApprovalsFile, String> {
    let file: ApprovalsFile = read_json(path, "approvals file")?;
    if file.format_version != APPROVALS_FORMAT {
        return Err(format!(
            "`{}` is an approvals file of format {}; this pmf reads format {APPROVALS_FORMAT}",
            path.display(),
            file.format_version
        ));
    }
    // What a file says is printed and recorded: a field that is not what
    // `pmf approve` writes is refused, never shown as it is.
    for (n, a) in file.approvals.iter().enumerate() {
        let problem = authority_problem(&a.authority)
            .or_else(|| hex_problem("public key", &a.public_key, 32))
            .or_else(|| hex_problem("signature", &a.signature, 64));
        if let Some(why) = problem {
            return Err(format!(
                "`{}`: approval {}: {why} (`pmf approve` writes no such approval)",
                path.display(),
                n + 1
            ));
        }
    }
    Ok(file)
}

/// Why `name` cannot be an authority's name (`None`: it can): a name as
/// the policy language writes one (a letter or `_`, then letters, digits
/// and `_`), at most 64 characters.
pub fn authority_problem(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let starts = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let named = starts && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') && name.len() <= 64;
    (!named).then(|| {
        format!(
            "the authority \"{}\" is not a name the policy language writes (a letter or `_`, then letters, digits and `_`, at most 64)",
            name.chars().take(80).collect::<String>().escape_debug()
        )
    })
}

/// Why `text` is not `bytes` bytes in hex, as `what` must be.
fn hex_problem(what: &str, text: &str, bytes: usize) -> Option<String> {
    let hex = text.len() == bytes * 2 && text.bytes().all(|b| b.is_ascii_hexdigit());
    (!hex).then(|| format!("its {what} is not {bytes} bytes in hex"))
}

/// True when `a` is a valid signature of `plan_hash` by its key, whatever
/// policy trusts it (a change of policy is endorsed by the keys of the
/// policy it replaces).
pub fn signature_holds(a: &Approval, plan_hash: &str) -> bool {
    pmf_store::verify::signature_holds(
        &a.public_key.to_ascii_lowercase(),
        &a.signature,
        &message(&a.authority, plan_hash),
    )
}

/// Why an approval is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It signs another plan.
    #[error("it approves another plan")]
    OtherPlan,
    /// The policy names no such authority.
    #[error("the policy names no such authority")]
    UnknownAuthority,
    /// The policy lists its key for no authority.
    #[error(
        "its key is not one the policy trusts (declare it with `key AUTHORITY \"ed25519:…\"` in the policy, a reviewed change)"
    )]
    UntrustedKey,
    /// The policy lists its key for another authority.
    #[error("the policy lists its key for `{0}`, not for this authority")]
    WrongAuthority(String),
    /// The signature does not verify.
    #[error("the signature does not verify (forged or corrupted)")]
    Forged,
}

/// Whether `policy` trusts `public_key` to sign for `authority`.
pub fn trusted(policy: &CompiledPolicy, authority: &str, public_key: &str) -> Result<(), Refusal> {
    if !policy.authorities.iter().any(|a| a == authority) {
        return Err(Refusal::UnknownAuthority);
    }
    match policy.authority_of_key(public_key) {
        None => Err(Refusal::UntrustedKey),
        Some(owner) if owner != authority => Err(Refusal::WrongAuthority(owner.to_string())),
        Some(_) => Ok(()),
    }
}

/// Check one approval of `plan_hash` against the keys `policy` trusts.
pub fn verify(
    policy: &CompiledPolicy,
    plan_hash: &str,
    file_plan_hash: &str,
    a: &Approval,
) -> Result<(), Refusal> {
    if file_plan_hash != plan_hash {
        return Err(Refusal::OtherPlan);
    }
    trusted(policy, &a.authority, &a.public_key)?;
    if pmf_store::verify::signature_holds(
        &a.public_key.to_ascii_lowercase(),
        &a.signature,
        &message(&a.authority, plan_hash),
    ) {
        Ok(())
    } else {
        Err(Refusal::Forged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_names_and_keys_and_signatures_hex() {
        for ok in ["TSC", "_x", "a1_B", &"A".repeat(64)] {
            assert_eq!(authority_problem(ok), None, "{ok}");
        }
        for bad in [
            "",
            "1TSC",
            "T SC",
            "T-SC",
            "TSC\u{1b}[2J",
            "é",
            &"A".repeat(65),
        ] {
            let why = authority_problem(bad).expect(bad);
            assert!(!why.contains('\u{1b}'), "{why}");
        }
        assert_eq!(hex_problem("key", &"aB".repeat(32), 32), None);
        assert!(hex_problem("key", &"ab".repeat(31), 32).is_some());
        assert!(hex_problem("key", &"zz".repeat(32), 32).is_some());
        assert!(generate("no name").is_err());
    }
}
