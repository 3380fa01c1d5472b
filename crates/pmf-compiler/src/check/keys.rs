//! Authority keys, the trust root of approvals: every `key` names a declared
//! authority (PMF103), is a usable ed25519 public key (PMF405), and signs
//! for exactly one authority, once (PMF406, PMF407).
//!
//! Keys are additive across composition (a policy trusts its parents' keys
//! and its own), so a key listed twice or for two authorities may come from
//! two files: the later declaration is reported, the earlier one labelled.
//!
//! Each code has its own function; [`check`] runs them in a fixed order.

use rustc_hash::FxHashMap as HashMap;

use super::{Context, unknown};
use crate::model::Sourced;
use crate::model::keys::{self, fingerprint};
use pmf_syntax::ast::Key;
use pmf_syntax::diagnostics::{Code, Diagnostic};

/// Run the key checks.
pub(crate) fn check(cx: &Context<'_>) -> Vec<Diagnostic> {
    let repeats = repeats(cx);
    let mut out = unknown_key_authorities(cx);
    out.extend(malformed_keys(cx));
    out.extend(duplicate_keys(&repeats));
    out.extend(keys_of_two_authorities(&repeats));
    out
}

/// PMF103: a key for an authority the policy does not declare.
fn unknown_key_authorities(cx: &Context<'_>) -> Vec<Diagnostic> {
    let authorities = cx.authority_names();
    cx.keys()
        .filter(|(_, k)| !cx.has_authority(&k.authority.name))
        .map(|(s, k)| {
            unknown(
                Code::UnknownAuthority,
                &s.file,
                "authority",
                &k.authority,
                &authorities,
            )
            .with_label("a key must sign for a declared authority")
        })
        .collect()
}

/// PMF405: a key that is no usable ed25519 public key.
fn malformed_keys(cx: &Context<'_>) -> Vec<Diagnostic> {
    cx.keys()
        .filter_map(|(s, k)| {
            let problem = keys::parse(&k.key.value).err()?;
            Some(malformed(s, k, &problem.describe()))
        })
        .collect()
}

/// A well-formed key declared again: the earlier declaration of the same
/// public key it repeats, and whether that one is for the same authority.
struct Repeat<'a> {
    item: &'a Sourced,
    key: &'a Key,
    earlier: (&'a Sourced, &'a Key),
    same_authority: bool,
}

/// The well-formed keys that repeat an earlier declaration of their public
/// key, in item order (inherited first): one that repeats it for the same
/// authority points at that one, else at the first.
fn repeats<'a>(cx: &Context<'a>) -> Vec<Repeat<'a>> {
    let mut out = Vec::new();
    // Well-formed keys by their hex digits, in item order (inherited first).
    let mut seen: HashMap<String, Vec<(&Sourced, &Key)>> = HashMap::default();
    for (s, k) in cx.keys() {
        let Ok(hex) = keys::parse(&k.key.value) else {
            continue;
        };
        let earlier = seen.entry(hex).or_default();
        let same = earlier
            .iter()
            .find(|(_, e)| e.authority.name == k.authority.name);
        if let Some(&first) = same.or(earlier.first()) {
            out.push(Repeat {
                item: s,
                key: k,
                earlier: first,
                same_authority: same.is_some(),
            });
        }
        earlier.push((s, k));
    }
    out
}

/// PMF406: a key declared twice for one authority.
fn duplicate_keys(repeats: &[Repeat<'_>]) -> Vec<Diagnostic> {
    repeats
        .iter()
        .filter(|r| r.same_authority)
        .map(|r| {
            let (s, k, (fs, fk)) = (r.item, r.key, r.earlier);
            let authority = k.authority.name.as_str();
            let short = fingerprint(&k.key.value);
            let help = if fs.file == s.file {
                "remove one of the two declarations".to_string()
            } else {
                "remove this declaration: the key is inherited, and a policy trusts its parents' keys"
                    .to_string()
            };
            Diagnostic::new(
                Code::DuplicateKey,
                &s.file,
                k.key.span,
                format!("key `{short}` is declared twice for `{authority}`"),
            )
            .with_label("declared again here")
            .with_secondary(&fs.file, fk.key.span, "first declared here")
            .with_help(help)
        })
        .collect()
}

/// PMF407: one key declared for two authorities.
fn keys_of_two_authorities(repeats: &[Repeat<'_>]) -> Vec<Diagnostic> {
    repeats
        .iter()
        .filter(|r| !r.same_authority)
        .map(|r| {
            let (s, k, (fs, fk)) = (r.item, r.key, r.earlier);
            let authority = k.authority.name.as_str();
            let short = fingerprint(&k.key.value);
            let other = fk.authority.name.as_str();
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
            ))
        })
        .collect()
}

/// The PMF405 diagnostic for key `k`, which is `what`.
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
