//! Authority keys, the trust root of approvals: composition (keys are
//! additive), the key checks with snapshots, what `CompiledPolicy` exposes,
//! and the policy hash.

use std::path::{Path, PathBuf};

use pmf::cli::check::Format;
use pmf::db::Session;
use pmf::runtime::engine::{AuthorityKey, CompiledPolicy};

use crate::support::{check, codes, rendered, sorted_entries, stem};

const A: &str = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
const T: &str = "10d1a5bbb8f749687f48b01e84e73f3d41ad2d199fa91288a668cf19c163bf14";
const E: &str = "140a7ec715083e4c98b2027f468c4cc6976c5d0b9ebd03b06f88698cc71740ef";
const S: &str = "2d3b17155b4b483c8a100e861ed21eed61666676805d6e052122c76ea08bbf10";

/// Error codes of every file, by file.
fn check_all(files: &[(&str, &str)]) -> Vec<(String, &'static str)> {
    let mut session = Session::default();
    let handles: Vec<_> = files
        .iter()
        .map(|(p, t)| session.set_file(p, t.to_string()))
        .collect();
    let mut out: Vec<(String, &'static str)> = handles
        .iter()
        .flat_map(|f| session.check(*f))
        .filter(|d| d.is_error())
        .map(|d| (d.primary.file.clone(), d.code.id()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Write `files` into a fresh directory and load the policy they define,
/// as `pmf plan` does.
fn load(files: &[(&str, &str)]) -> CompiledPolicy {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, text)| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write policy");
            p
        })
        .collect();
    match pmf::cli::policy::load(&paths) {
        Ok(p) => p,
        Err(_) => panic!("the policy does not load"),
    }
}

fn key(authority: &str, hex: &str, label: Option<&str>) -> AuthorityKey {
    AuthorityKey {
        authority: authority.into(),
        public_key: hex.into(),
        label: label.map(Into::into),
    }
}

fn base() -> String {
    format!("policy base extends kwanus\n\nkey TSC \"ed25519:{A}\" \"Ada Lovelace, TSC chair\"\n")
}

#[test]
fn keys_of_every_parent_are_united_and_a_diamond_counts_once() {
    let eu = format!("policy eu extends base\n\nkey ERC \"ed25519:{E}\" \"Grace Hopper, ERC\"\n");
    let audited = format!("policy audited extends base\n\nkey SCO \"ed25519:{S}\"\n");
    let child = format!("policy child extends eu, audited\n\nkey TSC \"ed25519:{T}\"\n");
    let files = [
        ("base.pmf", base()),
        ("eu.pmf", eu),
        ("audited.pmf", audited),
        ("child.pmf", child),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    assert_eq!(check_all(&files), vec![]);
    let policy = load(&files);
    assert_eq!(
        policy.keys,
        vec![
            key("TSC", A, Some("Ada Lovelace, TSC chair")),
            key("ERC", E, Some("Grace Hopper, ERC")),
            key("SCO", S, None),
            key("TSC", T, None),
        ]
    );
    let tsc: Vec<&str> = policy
        .keys_of("TSC")
        .map(|k| k.public_key.as_str())
        .collect();
    assert_eq!(tsc, vec![A, T]);
    assert_eq!(policy.keys_of("ERC").count(), 1);
    assert_eq!(policy.keys_of("NOBODY").count(), 0);
    assert_eq!(policy.authority_of_key(S), Some("SCO"));
    assert_eq!(policy.authority_of_key(&E.to_uppercase()), Some("ERC"));
    assert_eq!(policy.authority_of_key(&A[1..]), None);
    assert_eq!(policy.authority_of_key(&format!("ed25519:{A}")), None);
}

#[test]
fn a_policy_without_keys_has_none() {
    let policy = load(&[("p.pmf", "policy p extends kwanus\n")]);
    assert!(policy.keys.is_empty());
    assert_eq!(policy.authority_of_key(A), None);
}

#[test]
fn restating_or_overriding_an_inherited_key_is_reported_in_the_child() {
    let restated = format!("policy child extends base\n\nkey TSC \"ed25519:{A}\"\n");
    assert_eq!(
        check_all(&[("base.pmf", &base()), ("child.pmf", &restated)]),
        vec![("child.pmf".to_string(), "PMF406")]
    );
    let moved = format!("policy child extends base\n\nkey SCO \"ed25519:{A}\"\n");
    assert_eq!(
        check_all(&[("base.pmf", &base()), ("child.pmf", &moved)]),
        vec![("child.pmf".to_string(), "PMF407")]
    );
    let overridden = format!("policy child extends base\n\noverride key TSC \"ed25519:{T}\"\n");
    assert_eq!(
        check_all(&[("base.pmf", &base()), ("child.pmf", &overridden)]),
        vec![("child.pmf".to_string(), "PMF704")]
    );
}

#[test]
fn parents_that_give_one_key_to_two_authorities_are_reported_in_the_child() {
    let eu = format!("policy eu extends kwanus\n\nkey TSC \"ed25519:{A}\"\n");
    let us = format!("policy us extends kwanus\n\nkey SCO \"ed25519:{A}\"\n");
    let same = format!("policy us extends kwanus\n\nkey TSC \"ed25519:{A}\"\n");
    let child = "policy child extends eu, us\n";
    // Each parent is fine alone; their fusion is not.
    assert_eq!(
        check_all(&[("eu.pmf", &eu), ("us.pmf", &us), ("child.pmf", child)]),
        vec![("child.pmf".to_string(), "PMF407")]
    );
    // Two parents declaring one key alike give the child one key.
    assert_eq!(
        check_all(&[("eu.pmf", &eu), ("us.pmf", &same), ("child.pmf", child)]),
        vec![]
    );
    let policy = load(&[("eu.pmf", &eu), ("us.pmf", &same), ("child.pmf", child)]);
    assert_eq!(policy.keys, vec![key("TSC", A, None)]);
}

fn hash_of(text: &str) -> String {
    load(&[("p.pmf", text)]).hash
}

#[test]
fn a_key_is_part_of_the_policy_hash() {
    let without = hash_of("policy p extends kwanus\n");
    let with = hash_of(&format!(
        "policy p extends kwanus\n\nkey TSC \"ed25519:{A}\" \"Ada\"\n"
    ));
    let other_key = hash_of(&format!(
        "policy p extends kwanus\n\nkey TSC \"ed25519:{T}\" \"Ada\"\n"
    ));
    let other_authority = hash_of(&format!(
        "policy p extends kwanus\n\nkey SCO \"ed25519:{A}\" \"Ada\"\n"
    ));
    let relabelled = hash_of(&format!(
        "policy p extends kwanus\n\nkey TSC \"ed25519:{A}\" \"Ada Lovelace\"\n"
    ));
    let hashes = [&without, &with, &other_key, &other_authority, &relabelled];
    for (i, a) in hashes.iter().enumerate() {
        for b in &hashes[i + 1..] {
            assert_ne!(a, b, "two different policies share a hash");
        }
    }
    // Layout and comments are not part of it.
    let relaid = hash_of(&format!(
        "policy p extends kwanus\n\n// the chair\nkey   TSC \"ed25519:{A}\"\n  \"Ada\"\n"
    ));
    assert_eq!(with, relaid);
    // A parent's key change reaches the child's hash.
    let child = "policy child extends base\n";
    let before = load(&[("base.pmf", &base()), ("child.pmf", child)]).hash;
    let rotated = format!(
        "policy base extends kwanus\n\nkey TSC \"ed25519:{T}\" \"Ada Lovelace, TSC chair\"\n"
    );
    let after = load(&[("base.pmf", &rotated), ("child.pmf", child)]).hash;
    assert_ne!(before, after);
}

#[test]
fn key_fixtures_report_and_match_their_snapshots() {
    let mut failures = Vec::new();
    for path in sorted_entries("tests/fixtures/keys") {
        let name = stem(&path);
        let report = check(std::slice::from_ref(&path));
        if codes(&report).is_empty() {
            failures.push(format!("{name}: reports nothing"));
        }
        insta::with_settings!({
            snapshot_path => "../snapshots/keys",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(name.clone(), rendered(&report, Format::Human));
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_fleet_example_declares_one_key_per_authority() {
    let policy = match pmf::cli::policy::load(&[Path::new("examples/fleet/policy.pmf").into()]) {
        Ok(p) => p,
        Err(_) => panic!("the fleet policy does not load"),
    };
    for authority in ["TSC", "ERC", "SCO"] {
        let keys: Vec<&AuthorityKey> = policy.keys_of(authority).collect();
        assert_eq!(keys.len(), 1, "{authority}");
        let file = format!("examples/fleet/keys/{authority}.key");
        let text = std::fs::read_to_string(&file).expect("demo key file");
        let key: serde_json::Value = serde_json::from_str(&text).expect("key file is JSON");
        assert_eq!(key["authority"], authority);
        assert_eq!(key["public_key"], keys[0].public_key.as_str(), "{file}");
    }
}
