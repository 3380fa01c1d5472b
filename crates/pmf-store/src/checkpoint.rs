//! Signed checkpoints of the lineage: every transaction that appends
//! events ends by signing the log's head (its size and Merkle root) with
//! the operator's ed25519 key. The store pins the operator's public key on
//! first use; `pmf lineage checkpoint` exports the latest checkpoint for a
//! witness, and `pmf lineage verify --checkpoint FILE` proves the log still
//! extends it.

use std::path::{Path, PathBuf};

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::merkle::{self, Hash};

/// The name of the format of a checkpoint that names no predecessor (a
/// store's first, and every one signed before schema 10).
pub(crate) const FORMAT: &str = "pmf-checkpoint-v1";

/// The name of the format of a checkpoint chained to the one before it
/// (`prev`).
pub(crate) const FORMAT_CHAINED: &str = "pmf-checkpoint-v2";

/// A signed statement: store `store_id` held `size` events whose Merkle
/// root is `root` at `time` (and, chained, that the checkpoint before it
/// was `prev`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// [`FORMAT`], or [`FORMAT_CHAINED`] when it names `prev`.
    pub format: String,
    /// The store's random id (a checkpoint of one store proves nothing of another).
    pub store_id: String,
    /// Number of events.
    pub size: u64,
    /// Merkle root of those events (hex).
    pub root: String,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// The operator's public key (hex).
    pub public_key: String,
    /// ed25519 signature (hex) of [`Checkpoint::message`].
    pub signature: String,
    /// The checkpoint before it in the store, as [`Checkpoint::chain_digest`]
    /// of its signature: a checkpoint deleted from between two others
    /// breaks the chain. None for a store's first checkpoint, and for those
    /// signed before schema 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
}

impl Checkpoint {
    /// The bytes the operator signs: `pmf-checkpoint-v1\nSTORE_ID\nSIZE\nROOT\nTIME`,
    /// or, chained, `pmf-checkpoint-v2\n…\nTIME\nPREV`.
    pub(crate) fn message(
        store_id: &str,
        size: u64,
        root: &str,
        time: &str,
        prev: Option<&str>,
    ) -> Vec<u8> {
        match prev {
            None => format!("{FORMAT}\n{store_id}\n{size}\n{root}\n{time}").into_bytes(),
            Some(prev) => {
                format!("{FORMAT_CHAINED}\n{store_id}\n{size}\n{root}\n{time}\n{prev}").into_bytes()
            }
        }
    }

    /// What a checkpoint signed after this one names as its predecessor:
    /// the SHA-256 (hex) of this one's signature, which only its message
    /// and key make.
    pub fn chain_digest(&self) -> String {
        Checkpoint::chain_digest_of(&self.signature)
    }

    /// [`Checkpoint::chain_digest`] of a checkpoint whose signature (hex)
    /// is `signature`.
    pub(crate) fn chain_digest_of(signature: &str) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(signature.as_bytes()))
    }

    /// Sign a checkpoint, dated now, chained to `prev` (the
    /// [`Checkpoint::chain_digest`] of the checkpoint before it, if the
    /// store has one).
    pub fn sign(
        key: &OperatorKey,
        store_id: &str,
        size: u64,
        root: &Hash,
        prev: Option<&str>,
    ) -> Checkpoint {
        let time = crate::clock::now_rfc3339();
        Checkpoint::sign_dated(key, store_id, size, &merkle::to_hex(root), &time, prev)
    }

    /// Sign a checkpoint of root `root` (hex) dated `time` (RFC 3339): what
    /// a clock set to `time` signs (the tests set clocks so).
    pub fn sign_dated(
        key: &OperatorKey,
        store_id: &str,
        size: u64,
        root: &str,
        time: &str,
        prev: Option<&str>,
    ) -> Checkpoint {
        let signature = key
            .secret
            .sign(&Checkpoint::message(store_id, size, root, time, prev));
        Checkpoint {
            format: if prev.is_some() {
                FORMAT_CHAINED
            } else {
                FORMAT
            }
            .to_string(),
            store_id: store_id.to_string(),
            size,
            root: root.to_string(),
            time: time.to_string(),
            public_key: key.public_hex(),
            signature: hex::encode(signature.to_bytes()),
            prev: prev.map(str::to_string),
        }
    }

    /// Whether the signature is the public key's over this checkpoint.
    pub fn signature_holds(&self) -> bool {
        let format = if self.prev.is_some() {
            FORMAT_CHAINED
        } else {
            FORMAT
        };
        self.format == format
            && super::verify::signature_holds(
                &self.public_key,
                &self.signature,
                &Checkpoint::message(
                    &self.store_id,
                    self.size,
                    &self.root,
                    &self.time,
                    self.prev.as_deref(),
                ),
            )
    }

    /// Read a checkpoint file.
    pub fn read(path: &Path) -> Result<Checkpoint, String> {
        let text = read_small(path)
            .map_err(|e| format!("cannot read the checkpoint `{}`: {e}", path.display()))?;
        let c: Checkpoint = serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not a checkpoint: {e}", path.display()))?;
        if c.format != FORMAT && c.format != FORMAT_CHAINED {
            return Err(format!(
                "`{}` is a checkpoint of format `{}`; this pmf reads `{FORMAT}` and `{FORMAT_CHAINED}`",
                path.display(),
                c.format
            ));
        }
        Ok(c)
    }
}

/// The text of a small file (a checkpoint, a key): at most 1 MiB, as
/// neither is ever near it; a file named by mistake (a device that never
/// ends, a disk image) is refused, not read until memory runs out.
fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    const LIMIT: u64 = 1 << 20;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(LIMIT + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > LIMIT {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            "it holds more than 1 MiB, more than a checkpoint or a key ever does",
        ));
    }
    Ok(text)
}

/// The operator's signing key: a key file of mode 0600 (by default
/// `operator.key` beside the store), made on first use.
pub struct OperatorKey {
    secret: SigningKey,
    /// Where it was read from.
    pub path: PathBuf,
}

/// The key file's contents.
#[derive(Serialize, Deserialize)]
struct OperatorKeyFile {
    role: String,
    public_key: String,
    secret_key: String,
}

impl crate::Store {
    /// The key that signs this store's checkpoints: the file `given`, else
    /// `operator.key` beside the store. A key is made only for a store that
    /// has pinned none yet: once a store's checkpoints are signed, a missing
    /// key file is an error (a new key would be refused, and nothing is
    /// written). Returns the key and whether it was made now.
    pub fn operator_key(&self, given: Option<&Path>) -> Result<(OperatorKey, bool), StoreError> {
        let path = given.map_or_else(|| OperatorKey::default_path(self.path()), Path::to_path_buf);
        match self.meta("operator_key")? {
            Some(pinned) if !path.exists() => Err(StoreError::LostOperatorKey {
                pinned: pinned.get(..16).unwrap_or(&pinned).to_string(),
                path,
            }),
            _ => OperatorKey::load(&path, true),
        }
    }
}

impl OperatorKey {
    /// The default key path for a store: `operator.key` in its directory.
    pub fn default_path(store: &Path) -> PathBuf {
        store
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("operator.key"), |d| d.join("operator.key"))
    }

    /// Read the key at `path`, or make one there when `create` and absent.
    /// Returns the key and whether it was made now.
    pub fn load(path: &Path, create: bool) -> Result<(OperatorKey, bool), StoreError> {
        if !path.exists() {
            if !create {
                return Err(StoreError::NoOperatorKey {
                    path: path.to_path_buf(),
                });
            }
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(StoreError::NoRandomness)?;
            let key = SigningKey::from_bytes(&secret);
            let file = OperatorKeyFile {
                role: "operator".into(),
                public_key: hex::encode(key.verifying_key().to_bytes()),
                secret_key: hex::encode(secret),
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            // A struct of three strings always serialises.
            let text = serde_json::to_string_pretty(&file).unwrap_or_default() + "\n";
            crate::output::write(path, text.as_bytes(), true).map_err(|source| {
                StoreError::WriteOperatorKey {
                    path: path.to_path_buf(),
                    source,
                }
            })?;
            return Ok((
                OperatorKey {
                    secret: key,
                    path: path.to_path_buf(),
                },
                true,
            ));
        }
        let text = read_small(path).map_err(|source| StoreError::ReadOperatorKey {
            path: path.to_path_buf(),
            source,
        })?;
        let file: OperatorKeyFile = serde_json::from_str(&text).map_err(|source| {
            // An authority's key file (`pmf keygen`) names its authority.
            let authority = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("authority")?.as_str().map(str::to_string))
                .filter(|a| {
                    a.len() <= 64 && a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                });
            match authority {
                Some(authority) => StoreError::AuthorityKeyAsOperator {
                    path: path.to_path_buf(),
                    authority,
                },
                None => StoreError::NotAnOperatorKey {
                    path: path.to_path_buf(),
                    source,
                },
            }
        })?;
        let bytes: [u8; 32] = hex::decode(&file.secret_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| StoreError::BadSecretKey {
                path: path.to_path_buf(),
            })?;
        let secret = SigningKey::from_bytes(&bytes);
        if hex::encode(secret.verifying_key().to_bytes()) != file.public_key {
            return Err(StoreError::KeyMismatch {
                path: path.to_path_buf(),
            });
        }
        Ok((
            OperatorKey {
                secret,
                path: path.to_path_buf(),
            },
            false,
        ))
    }

    /// The key's ed25519 signature (hex) over `message`.
    pub(crate) fn sign_hex(&self, message: &[u8]) -> String {
        hex::encode(self.secret.sign(message).to_bytes())
    }

    /// The public key (hex).
    pub fn public_hex(&self) -> String {
        hex::encode(self.secret.verifying_key().to_bytes())
    }
}
