//! `pmf keygen --authority NAME -o FILE`: an ed25519 key for an authority.
//! Nothing is registered: the key counts once its public half is declared
//! in the policy (`key NAME "ed25519:…"`), a change that goes through review.

use std::path::PathBuf;

use clap::Args;

use super::{Exit, UsageError};
use crate::runtime::approvals;

/// Arguments of `pmf keygen`.
#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// The authority the key signs for, such as `TSC`.
    #[arg(long)]
    pub authority: String,
    /// Where to write the private key (mode 0600).
    #[arg(short = 'o', long = "output")]
    pub output: PathBuf,
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
    println!(
        "private key for `{}` written to {} (keep it private; never commit it)",
        args.authority,
        args.output.display()
    );
    println!("to trust it, add this line to the policy and have the change reviewed:");
    println!();
    println!("key {} \"ed25519:{}\"", args.authority, key.public_key);
    Ok(Exit::Success)
}
