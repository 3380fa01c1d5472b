//! `pmf keygen --authority NAME -o FILE`: an ed25519 key for an authority,
//! its public key registered in the keyring.

use std::path::PathBuf;

use clap::Args;

use super::{Exit, UsageError};
use crate::runtime::approvals::{self, DEFAULT_KEYRING};

/// Arguments of `pmf keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// The authority the key signs for, such as `TSC`.
    #[arg(long)]
    pub authority: String,
    /// Where to write the private key (mode 0600).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
    /// The keyring to register the public key in.
    #[arg(long, default_value = DEFAULT_KEYRING)]
    pub keyring: PathBuf,
}

/// Run `pmf keygen`.
pub fn run(args: &KeygenArgs) -> Result<Exit, UsageError> {
    if args.output.exists() {
        return Err(UsageError(format!(
            "`{}` exists; keygen never overwrites a key",
            args.output.display()
        )));
    }
    let key = approvals::generate(&args.authority).map_err(UsageError)?;
    approvals::write_json(&args.output, &key, true).map_err(UsageError)?;
    let mut ring = approvals::read_keyring(&args.keyring).map_err(UsageError)?;
    let keys = ring.authorities.entry(args.authority.clone()).or_default();
    if !keys.contains(&key.public_key) {
        keys.push(key.public_key.clone());
    }
    approvals::write_json(&args.keyring, &ring, false).map_err(UsageError)?;
    println!(
        "key for `{}` written to {} (public key {}), registered in {}",
        args.authority,
        args.output.display(),
        key.public_key,
        args.keyring.display()
    );
    Ok(Exit::Success)
}
