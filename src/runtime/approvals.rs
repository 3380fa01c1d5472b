//! Approvals: ed25519 keys held by authorities, signatures over a plan's
//! hash, and a keyring of the authorities' public keys.

use std::collections::BTreeMap;
use std::path::Path;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The default keyring path.
pub const DEFAULT_KEYRING: &str = ".pmf/keyring.json";

/// A private key file (`pmf keygen -o FILE`).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KeyFile {
    /// The authority the key signs for.
    pub authority: String,
    /// Public key (hex).
    pub public_key: String,
    /// Secret key (hex). Keep this file private.
    pub secret_key: String,
}

/// Public keys of the authorities.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct Keyring {
    /// Authority → public keys (hex).
    pub authorities: BTreeMap<String, Vec<String>>,
}

/// One signed approval.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    /// The approving authority.
    pub authority: String,
    /// The public key that signed (hex).
    pub public_key: String,
    /// Signature (hex) of [`message`].
    pub signature: String,
}

/// An approvals file (`pmf approve PLAN --key FILE -o FILE`).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub struct ApprovalsFile {
    /// Always 1.
    pub format_version: u32,
    /// The plan hash signed.
    pub plan_hash: String,
    /// The approvals.
    pub approvals: Vec<Approval>,
}

/// What an authority signs: its name bound to the plan hash.
pub fn message(authority: &str, plan_hash: &str) -> Vec<u8> {
    format!("pmf-approval-v1\n{authority}\n{plan_hash}").into_bytes()
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path, what: &str) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read {what} `{}`: {}",
            path.display(),
            crate::cli::files::io_reason(&e)
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| format!("`{}` is not a valid {what}: {e}", path.display()))
}

/// Write `value` as JSON, never half-written ([`crate::output`]).
pub fn write_json<T: Serialize>(path: &Path, value: &T, private: bool) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())? + "\n";
    crate::output::write(path, text.as_bytes(), private)
        .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
}

/// Make a new key for `authority`.
pub fn generate(authority: &str) -> Result<KeyFile, String> {
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
    let file: KeyFile = read_json(path, "key file")?;
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

/// Sign `plan_hash` for the key's authority.
pub fn sign(key: &SigningKey, authority: &str, plan_hash: &str) -> Approval {
    Approval {
        authority: authority.to_string(),
        public_key: hex::encode(key.verifying_key().to_bytes()),
        signature: hex::encode(key.sign(&message(authority, plan_hash)).to_bytes()),
    }
}

/// Read a keyring (an absent file is an empty keyring).
pub fn read_keyring(path: &Path) -> Result<Keyring, String> {
    if !path.exists() {
        return Ok(Keyring::default());
    }
    read_json(path, "keyring")
}

/// Read an approvals file.
pub fn read_approvals(path: &Path) -> Result<ApprovalsFile, String> {
    read_json(path, "approvals file")
}

/// Why an approval is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// It signs another plan.
    OtherPlan,
    /// Its key is in no authority's keyring entry.
    UnknownKey,
    /// Its key belongs to another authority.
    WrongAuthority(String),
    /// The signature does not verify.
    Forged,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::OtherPlan => f.write_str("it approves another plan"),
            Refusal::UnknownKey => f.write_str("its key is not in the keyring"),
            Refusal::WrongAuthority(owner) => write!(f, "its key belongs to `{owner}`"),
            Refusal::Forged => f.write_str("the signature does not verify (forged or corrupted)"),
        }
    }
}

/// Check one approval of `plan_hash` against the keyring.
pub fn verify(
    keyring: &Keyring,
    plan_hash: &str,
    file_plan_hash: &str,
    a: &Approval,
) -> Result<(), Refusal> {
    if file_plan_hash != plan_hash {
        return Err(Refusal::OtherPlan);
    }
    let owned = keyring
        .authorities
        .get(&a.authority)
        .is_some_and(|keys| keys.iter().any(|k| k.eq_ignore_ascii_case(&a.public_key)));
    if !owned {
        return Err(
            match keyring
                .authorities
                .iter()
                .find(|(_, keys)| keys.iter().any(|k| k.eq_ignore_ascii_case(&a.public_key)))
            {
                Some((owner, _)) => Refusal::WrongAuthority(owner.clone()),
                None => Refusal::UnknownKey,
            },
        );
    }
    let key: [u8; 32] = hex::decode(&a.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Refusal::Forged)?;
    let sig: [u8; 64] = hex::decode(&a.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or(Refusal::Forged)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| Refusal::Forged)?;
    key.verify_strict(
        &message(&a.authority, plan_hash),
        &Signature::from_bytes(&sig),
    )
    .map_err(|_| Refusal::Forged)
}
