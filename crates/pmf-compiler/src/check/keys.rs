//! Authority keys, the trust root of approvals: every `key` names a declared
//! authority (PMF103), is a usable ed25519 public key (PMF405), and signs
//! for exactly one authority, once (PMF406, PMF407).
//!
//! Keys are additive across composition (a policy trusts its parents' keys
//! and its own), so a key listed twice or for two authorities may come from
//! two files: the later declaration is reported, the earlier one labelled.

use rustc_hash::FxHashMap as HashMap;

use super::{Context, unknown};
use crate::model::Sourced;
use crate::model::keys::{self, fingerprint};
use pmf_syntax::ast::Key;
use pmf_syntax::diagnostics::{Code, Diagnostic};

/// Run the key checks.
pub fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let authorities = cx.authority_names();
    // Well-formed keys by their hex digits, in item order (inherited first).
    let mut seen: HashMap<String, Vec<(&Sourced, &Key)>> = HashMap::default();
    for (s, k) in cx.policy.keys() {
        if !cx.has_authority(&k.authority.name) {
            out.push(
                unknown(
                    Code::UnknownAuthority,
                    &s.file,
                    "authority",
                    &k.authority,
                    &authorities,
                )
                .with_label("a key must sign for a declared authority"),
            );
        }
        match keys::parse(&k.key.value) {
            Err(problem) => out.push(malformed(s, k, &problem.describe())),
            Ok(hex) => {
                let earlier = seen.entry(hex).or_default();
                if let Some(d) = repeated(s, k, earlier) {
                    out.push(d);
                }
                earlier.push((s, k));
            }
        }
    }
    out
}

fn malformed(s: &Sourced, k: &Key, what: &str) -> Diagnostic {
    Diagnostic::new(
        Code::MalformedKey,
        &s.file,
        k.key.span,
        format!("malformed key for authority `{}`", k.authority.name),
    )
    .with_label(what)
    .with_help(format!(
        "write `\"{}<64 lowercase hex digits>\"`: the `public_key` of the file `pmf keygen` writes",
        Key::PREFIX
    ))
}

/// The diagnostic for key `k` when `earlier` declarations hold the same
/// public key: for the same authority (PMF406) or another one (PMF407).
fn repeated(s: &Sourced, k: &Key, earlier: &[(&Sourced, &Key)]) -> Option<Diagnostic> {
    let authority = k.authority.name.as_str();
    let short = fingerprint(&k.key.value);
    if let Some((fs, fk)) = earlier
        .iter()
        .find(|(_, e)| e.authority.name == k.authority.name)
    {
        let help = if fs.file == s.file {
            "remove one of the two declarations".to_string()
        } else {
            "remove this declaration: the key is inherited, and a policy trusts its parents' keys"
                .to_string()
        };
        return Some(
            Diagnostic::new(
                Code::DuplicateKey,
                &s.file,
                k.key.span,
                format!("key `{short}` is declared twice for `{authority}`"),
            )
            .with_label("declared again here")
            .with_secondary(&fs.file, fk.key.span, "first declared here")
            .with_help(help),
        );
    }
    let (fs, fk) = earlier.first()?;
    let other = fk.authority.name.as_str();
    Some(
        Diagnostic::new(
            Code::KeyOfTwoAuthorities,
            &s.file,
            k.key.span,
            format!("key `{short}` is declared for both `{other}` and `{authority}`"),
        )
        .with_label(format!("declared for `{authority}` here"))
        .with_secondary(&fs.file, fk.key.span, format!("declared for `{other}` here"))
        .with_help(format!(
            "a key signs for exactly one authority: give `{authority}` a key of its own (`pmf keygen --authority {authority}`)"
        )),
    )
}
