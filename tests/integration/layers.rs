//! The layers are crates: each crate's `Cargo.toml` names exactly the PMF
//! crates that `docs/architecture.md`'s layer table allows it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Crate name → the PMF crates among its (non-dev) dependencies.
fn manifest_layers() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifests = vec![root.join("Cargo.toml")];
    for entry in std::fs::read_dir(root.join("crates")).unwrap() {
        manifests.push(entry.unwrap().path().join("Cargo.toml"));
    }
    let mut layers = BTreeMap::new();
    for path in manifests {
        let text = std::fs::read_to_string(&path).unwrap();
        let manifest: toml::Table = text.parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_string();
        let deps: BTreeSet<String> = manifest
            .get("dependencies")
            .and_then(|d| d.as_table())
            .map(|d| d.keys().filter(|k| k.starts_with("pmf")).cloned().collect())
            .unwrap_or_default();
        layers.insert(name, deps);
    }
    layers
}

/// The text of docs/architecture.md.
fn architecture() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/architecture.md")).unwrap()
}

/// Crate name → the PMF crates its row of the layer table names.
fn documented_layers(doc: &str) -> BTreeMap<String, BTreeSet<String>> {
    doc.lines()
        .filter(|l| l.starts_with("| `pmf"))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_string();
            let deps = cells[2]
                .split(',')
                .map(|d| d.trim().trim_matches('`'))
                .filter(|d| d.starts_with("pmf"))
                .map(String::from)
                .collect();
            (name, deps)
        })
        .collect()
}

#[test]
fn each_crate_depends_only_on_the_layers_below_it() {
    let manifests = manifest_layers();
    let doc = architecture();
    let documented = documented_layers(&doc);
    assert_eq!(
        manifests.keys().collect::<Vec<_>>(),
        documented.keys().collect::<Vec<_>>(),
        "every crate has a row in docs/architecture.md's layer table, and every row a crate"
    );
    for (name, deps) in &manifests {
        assert_eq!(
            deps, &documented[name],
            "`{name}`'s PMF dependencies differ from its row in docs/architecture.md"
        );
    }
    // The order is a line: each crate may use only crates above it in the
    // table, so no layer reaches up.
    let order: Vec<&String> = documented.keys().collect();
    let row_of = |name: &str| doc.find(&format!("| `{name}` |")).unwrap();
    for name in order {
        for dep in &documented[name] {
            assert!(
                row_of(dep) < row_of(name),
                "`{name}` depends on `{dep}`, which comes after it in the layer table"
            );
        }
    }
}
