//! Plans written, and read back, against their references.

use super::*;
use crate::plan::read::{read_laid_out, read_streamed};
use std::collections::HashMap;

use crate::compile::State;
use crate::engine::Assessment;
use crate::engine::CompiledPolicy;
use crate::fast::ParseCache;
use crate::input::Observed;
use crate::input::{read_all_partners, read_observed, read_targets};
use crate::plan::{
    CarriedJson, InputFile, Plan, PlanEntry, PlanKind, PolicyRef, Prediction, parse_rfc3339,
    read_plan, spoken_duration,
};
use crate::stream::PartnerStream;
use pmf_store::lineage::Text;
use std::path::Path;

/// Targets as the reference reads them: the whole file as one JSON tree.
struct Reference {
    all: Option<Value>,
    /// Per partner: the partial record, and its JSON.
    partners: HashMap<String, (Value, serde_json::Value)>,
}

/// The plan entry for one partner, built as a `PlanEntry` value: what
/// the hand-written line must equal.
fn entry_for(
    policy: &CompiledPolicy,
    history: &History,
    targets: &Reference,
    observed: &HashMap<String, Value>,
    partner: &Value,
) -> (PlanEntry, Assessment) {
    let id = policy.id_of(partner).to_string();
    let own = targets.partners.get(&id);
    let view = State::of(partner).with(own.map(|t| &t.0).or(targets.all.as_ref()));
    let own = own.map(|t| &t.1);
    let a = policy.assess(partner, view, view.with(observed.get(&id)));
    let migration: Option<Text> = a
        .migration
        .map(|m| policy.migrations[m].name.as_str().into());
    let categories: Vec<Text> = a
        .categories
        .iter()
        .map(|&c| policy.categories[c].name.as_str().into())
        .collect();
    let risk = history.fallback_risk(
        migration.as_deref().unwrap_or("none"),
        &categories.join("+"),
        a.action,
    );
    let entry = PlanEntry {
        state_digest: None,
        from: policy.version_of(partner).map(|v| v.to_string().into()),
        to: policy
            .version_of(&view.merged())
            .map(|v| v.to_string().into()),
        migration,
        approvals_required: a
            .approvals
            .iter()
            .map(|&i| policy.authorities[i].as_str().into())
            .collect(),
        predicted: Prediction {
            score: a.score.map(|s| (s * 100.0).round() / 100.0),
            band: a.band.map(|b| policy.bands[b].status.as_str().into()),
            action: a.action,
            reason: policy.reason(a.reason).into(),
            validation: a.verdict.as_str().into(),
        },
        fallback_risk: risk,
        target: own.cloned(),
        state: CarriedJson::of(&partner.to_json(&policy.schema)),
        observed: observed
            .get(&id)
            .map(|o| CarriedJson::of(&o.to_partial_json(&policy.schema))),
        categories,
        id,
    };
    (entry, a)
}

/// A file of the bundled fleet.
fn fleet(f: &str) -> std::path::PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/fleet")).join(f)
}

/// The fleet's policy, compiled.
fn fleet_policy() -> CompiledPolicy {
    crate::load::load_policy(&[fleet("policy.pmf")]).expect("fleet policy compiles")
}

/// Plan `partners` against the fleet's targets into `out`, with
/// `header` and no history.
fn plan_into(
    policy: &CompiledPolicy,
    partners: &Path,
    observed: &Observed,
    header: PlanHeader,
    out: &Path,
) -> Result<Written, PlanError> {
    let targets = read_targets(&policy.schema, &fleet("target.json")).unwrap();
    write_plan(
        PlanInputs {
            policy,
            partners: PartnerStream::open(partners).unwrap(),
            targets: &targets,
            observed,
            history: &History::default(),
            header,
            subset: false,
            review_rows: 0,
            stop: None,
        },
        out,
        |_| {},
    )
}

/// A plan of format 5 is held to its expiry from its last second on;
/// one that carries none, or one pmf does not write, is refused; the
/// formats before expiries have none to hold.
#[test]
fn plans_expire() {
    let policy = fleet_policy();
    let plan = |format_version: u32, expires_at: Option<&str>| Plan {
        format_version,
        header: PlanHeader {
            expires_at: expires_at.map(str::to_string),
            ..blank_header(&policy)
        },
        entries: Vec::new(),
        totals: Totals::default(),
    };
    let at = parse_rfc3339("2026-12-10T00:00:00Z").unwrap();
    let valid = plan(5, Some("2026-12-10T00:00:00Z"));
    assert_eq!(valid.expiry_problem(at - 1), None);
    assert!(
        valid
            .expiry_problem(at)
            .unwrap()
            .starts_with("the plan expired at 2026-12-10T00:00:00Z")
    );
    assert!(
        plan(5, None)
            .expiry_problem(0)
            .unwrap()
            .contains("carries no expiry")
    );
    assert!(
        plan(5, Some("2026-12-10"))
            .expiry_problem(0)
            .unwrap()
            .contains("not a time")
    );
    assert_eq!(plan(4, None).expiry_problem(u64::MAX), None);
    assert_eq!(spoken_duration(7 * 86_400), "7 days");
    assert_eq!(spoken_duration(36 * 3_600), "36 hours");
    assert_eq!(spoken_duration(60), "60 seconds");
    assert_eq!(spoken_duration(1), "1 second");
    assert_eq!(spoken_duration(86_400 + 1), "24 hours");
}

/// A header that binds no file.
fn blank_header(policy: &CompiledPolicy) -> PlanHeader {
    PlanHeader {
        kind: PlanKind::Migrate,
        policy: PolicyRef {
            name: policy.name.clone(),
            hash: policy.hash.clone(),
        },
        created_at: String::new(),
        expires_at: None,
        policy_sources: BTreeMap::new(),
        partners: InputFile {
            file: String::new(),
            blake3: None,
        },
        target: InputFile {
            file: String::new(),
            blake3: None,
        },
        observed: None,
        history: String::new(),
        target_all: None,
        replaces_policy: None,
        store_id: None,
    }
}

/// A plan binds the partner file by the BLAKE3 of the bytes it read,
/// whatever the header it was given said, and the plan hash is the
/// hash of the plan's final bytes: with a small header, and with one
/// longer than the pieces the plan hash takes (policy sources of 9 MB).
#[test]
fn the_header_binds_the_partner_bytes_read() {
    let policy = fleet_policy();
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fleet("partners.json")).unwrap();
    let partners = dir.path().join("partners.json");
    std::fs::write(&partners, &bytes).unwrap();
    let out = dir.path().join("plan.json");
    for sources in [0, 9 << 20] {
        let mut header = blank_header(&policy);
        header.partners.blake3 = Some("not the digest".into());
        header
            .policy_sources
            .insert("big.pmf".into(), "x".repeat(sources));
        let written = plan_into(&policy, &partners, &Observed::none(), header, &out).unwrap();
        let digest = blake3::hash(&bytes).to_hex().to_string();
        assert_eq!(written.partners_blake3.as_ref(), Some(&digest));
        let plan_bytes = std::fs::read(&out).unwrap();
        assert_eq!(written.hash, blake3::hash(&plan_bytes).to_hex().to_string());
        let loaded = read_plan(&out).unwrap();
        assert_eq!(loaded.plan.header.partners.blake3, Some(digest));
        assert_eq!(loaded.hash, written.hash);
        assert!(written.totals.partners > 10);
    }
}

/// Plans as pmf lays them out read with their entries parsed apart
/// exactly as the whole file parses; any other layout is left to the
/// whole-file parse, and what that refuses is never read apart.
#[test]
fn plans_read_line_by_line_as_the_whole_file_reads() {
    let policy = fleet_policy();
    let observed = read_observed(&policy.schema, &fleet("observed.json")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("plan.json");
    plan_into(
        &policy,
        &fleet("partners.json"),
        &observed,
        blank_header(&policy),
        &out,
    )
    .unwrap();
    let written = std::fs::read_to_string(&out).unwrap();
    let whole = |text: &str| {
        serde_json::from_str::<Plan>(text)
            .ok()
            .filter(|p| p.format_version == FORMAT_VERSION)
            .map(|p| serde_json::to_string(&p).unwrap())
    };
    // Read apart from the whole text, and as `read_plan` reads a file: a
    // part at a time (parts that end mid-line, mid-entry, mid-character),
    // hashed as it is read.
    let apart = |text: &str| {
        let laid = read_laid_out(text.as_bytes()).map(|p| serde_json::to_string(&p).unwrap());
        for part in [3, 61, 4096, 1 << 20] {
            let streamed = read_streamed(text.as_bytes(), part).unwrap().map(|l| {
                assert_eq!(l.hash, blake3::hash(text.as_bytes()).to_hex().to_string());
                serde_json::to_string(&l.plan).unwrap()
            });
            assert_eq!(streamed, laid, "read {part} bytes at a time");
        }
        laid
    };
    // As written: read apart, the same plan.
    assert!(apart(&written).is_some());
    assert_eq!(apart(&written), whole(&written));
    let plan: serde_json::Value = serde_json::from_str(&written).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    let (first, last) = (lines[0], lines[lines.len() - 1]);
    let entries = &lines[1..lines.len() - 1];
    let laid = |entries: &[String]| {
        let mut text = first.to_string();
        for (i, e) in entries.iter().enumerate() {
            text.push_str(if i == 0 { "\n" } else { ",\n" });
            text.push_str(e);
        }
        format!("{text}\n{last}\n")
    };
    let plain: Vec<String> = entries
        .iter()
        .map(|e| e.trim_end_matches(',').to_string())
        .collect();
    // Laid out by pmf, however many entries (none, one, all; no final
    // new line).
    for n in [0, 1, plain.len()] {
        let text = laid(&plain[..n]);
        assert!(apart(&text).is_some(), "{n} entries");
        assert_eq!(apart(&text), whole(&text), "{n} entries");
    }
    let unterminated = written.trim_end().to_string();
    assert_eq!(apart(&unterminated), whole(&unterminated));
    // Laid out otherwise, or not a plan this pmf reads: the whole file
    // decides, and what it refuses is refused.
    let deep = |depth: usize| {
        let state = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let entry = plain[0].replacen("\"state\":{", &format!("\"state\":{state},\"was\":{{"), 1);
        let mut all = plain.clone();
        all[0] = entry;
        laid(&all)
    };
    let mut others = vec![
        serde_json::to_string(&plan).unwrap(),
        serde_json::to_string_pretty(&plan).unwrap(),
        written.replace('\n', "\r\n"),
        laid(&plain).replacen("\"entries\":[", "\"extra\":1,\"entries\":[", 1),
        laid(&plain).replacen("{\"format_version\":3,", "{\"format_version\":2,", 1),
        laid(&plain).replacen(
            "{\"format_version\":3,",
            "{\"format_version\":3,\"format_version\":3,",
            1,
        ),
        format!(
            "{}\n,{}",
            &laid(&plain)[..laid(&plain).len() - last.len() - 2],
            last
        ),
        laid(&plain).replace("],\"totals\":", "],\"header\":{},\"totals\":"),
        laid(&plain).replace("\"totals\":{", "\"totals\":{\"x\":"),
        format!("{}garbage\n", laid(&plain)),
        format!("{}\ngarbage\n", laid(&plain)),
        laid(&plain).replacen(",\n", ",\n,\n", 1),
        laid(&plain).replacen(",\n", "\n", 1),
        laid(&plain[..2]).replacen("}\n]", "},\n]", 1),
        laid(&[format!("{} {}", plain[0], plain[1])]),
    ];
    others.extend([120, 125, 126, 127, 128, 200].map(deep));
    for (i, text) in others.iter().enumerate() {
        let apart = apart(text);
        if apart.is_some() {
            assert_eq!(apart, whole(text), "layout {i}");
        }
        if whole(text).is_none() {
            assert_eq!(apart, None, "layout {i}");
        }
    }
}

/// A partner's own target reads and assesses alike kept (laid for,
/// written once: met again, taken as kept) and on its own through
/// layers: fleet partners under 120 distinct targets (past the limit:
/// the spare and the general policy), with a target for all and
/// without, with observed metrics of their own and without.
#[test]
fn own_targets_kept_read_and_assess_as_the_policy_does() {
    let policy = fleet_policy();
    let schema = &policy.schema;
    let partial = |json: serde_json::Value| {
        crate::value::from_json(schema, &json, "", crate::value::Completeness::Partial).unwrap()
    };
    let partners = read_all_partners(schema, &fleet("partners.json")).unwrap();
    let observed = partial(serde_json::json!({"metrics": {"stability": 71, "compatibility": 95}}));
    let all = partial(serde_json::json!({"version": "1.6.0", "power": 5}));
    let versions = ["1.4.0", "1.6.0", "2.0.0", "3.1.0", "4.0.0", "2.5.0"];
    for target_all in [None, Some(&all)] {
        let mut own_targets = OwnTargets::new(&policy);
        assert_eq!(
            own_targets.limit,
            OwnTargets::LIMIT,
            "the fleet's policy is small"
        );
        let mut cache = ParseCache::new(schema, crate::value::Completeness::Partial);
        let mut laid = 0;
        for round in 0..3 {
            for (i, partner) in partners.iter().enumerate() {
                let n = (i * 7 + round * 13) % 120;
                let raw = format!(
                    "{{\"version\": \"{}\", \"region\": \"{}\"{}}}",
                    versions[n % versions.len()],
                    if n % 2 == 0 { "eu" } else { "us" },
                    if n >= versions.len() {
                        format!(", \"power\": {}", n / versions.len())
                    } else {
                        String::new()
                    },
                );
                // The reference: the entry parsed on its own, laid over
                // the target for all, written, assessed through layers.
                let own = partial(serde_json::from_str(&raw).unwrap());
                let value = match target_all {
                    Some(all) => crate::value::overlay(all, &own),
                    None => own,
                };
                let mut text = String::new();
                value.write_partial(schema, &mut text);
                for own_observed in [false, true] {
                    let state = State::of(partner).with(Some(&value));
                    let observed_state = state.with(own_observed.then_some(&observed));
                    let general = policy.assess(partner, state, observed_state);
                    let at = own_targets
                        .read(&raw, schema, &mut cache, target_all)
                        .unwrap();
                    let (kept, kept_text, assessor) =
                        own_targets.target(at, &policy, own_observed).unwrap();
                    assert_eq!((kept, kept_text), (&value, text.as_str()), "{raw}");
                    if !std::ptr::eq(assessor, &policy) {
                        laid += 1;
                    }
                    let state = State::of(partner).with(Some(kept));
                    let observed_state = state.with(own_observed.then_some(&observed));
                    let fast = assessor.assess(partner, state, observed_state);
                    assert_eq!(
                        format!("{fast:?}"),
                        format!("{general:?}"),
                        "partner {i}, target {raw}, own observed {own_observed}"
                    );
                }
            }
        }
        assert_eq!(own_targets.kept.len(), OwnTargets::LIMIT);
        assert!(own_targets.spare.is_some(), "past the limit");
        assert!(laid > 0 && laid < 3 * 2 * partners.len(), "{laid}");
    }
}

/// The id set finds the first id given again, in file order, and
/// knows every id, as a set filled one id at a time does: ids that
/// repeat near and far, twice and more, and every id sharing one hash
/// (the worst case for the sort by hash).
#[test]
fn the_id_set_finds_the_first_repeat_as_a_hash_set_does() {
    for (n, modulus, same_hash) in [
        (0, 1, false),
        (1, 1, false),
        (5000, 0, false),
        (5000, 4999, false),
        (5000, 3001, false),
        (600, 450, true),
    ] {
        let ids: Vec<String> = (0..n)
            .map(|i| {
                let k = if modulus > 0 { i % modulus } else { i };
                format!("p-{}", (k * 7919) % 10007)
            })
            .collect();
        let mut set = IdSet::default();
        if same_hash {
            // One hasher for all: a key nobody chose still spreads ids;
            // here every id is given the same hash by hand below.
            set.places.reserve(ids.len());
            for id in &ids {
                let start = set.text.len() as u64;
                set.places.push((7, (start << 24) | id.len() as u64));
                set.text.push_str(id);
            }
        } else {
            for id in &ids {
                assert!(set.push(id));
            }
        }
        let mut reference = std::collections::HashSet::new();
        let expected = ids.iter().position(|id| !reference.insert(id.as_str()));
        let found = set.seal().map(|r| r.ordinal);
        assert_eq!(found, expected, "{n} ids, modulus {modulus}");
        if !same_hash {
            for id in &ids {
                assert!(set.contains(id));
            }
            assert!(!set.contains("p-none"));
        }
    }
}

/// The plan line written by hand reads back as the entry `entry_for`
/// builds, for every partner of the fleet (every type, band and action).
#[test]
fn hand_written_lines_are_the_serde_entries() {
    let policy = fleet_policy();
    let partners = read_all_partners(&policy.schema, &fleet("partners.json")).unwrap();
    // The fleet's targets (for all, and per partner) read by the index;
    // the reference reads the same file as one JSON tree.
    let targets = read_targets(&policy.schema, &fleet("target.json")).unwrap();
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fleet("target.json")).unwrap()).unwrap();
    let partial = |json: &serde_json::Value| {
        crate::value::from_json(
            &policy.schema,
            json,
            "",
            crate::value::Completeness::Partial,
        )
        .unwrap()
    };
    let reference = Reference {
        all: Some(partial(&file["all"])),
        partners: file["partners"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, json)| {
                // Carried as canonical JSON (sets sorted), like observed
                // metrics.
                // Laid over the target for all.
                let value = crate::value::overlay(&partial(&file["all"]), &partial(json));
                let canonical = value.to_partial_json(&policy.schema);
                (id.clone(), (value, canonical))
            })
            .collect(),
    };
    assert!(reference.partners.len() > 3);
    let observed = read_observed(&policy.schema, &fleet("observed.json")).unwrap();
    let observed_reference: HashMap<String, Value> = observed
        .partners
        .all(&policy.schema)
        .unwrap()
        .into_iter()
        .collect();
    let mut history = History::default();
    history
        .outcomes
        .insert(("soft".into(), "structural".into()), (10, 3));
    let inputs = PlanInputs {
        policy: &policy,
        partners: PartnerStream::empty(),
        targets: &targets,
        observed: &observed,
        history: &history,
        header: blank_header(&policy),
        subset: false,
        review_rows: 0,
        stop: None,
    };
    let mut worker = Worker::new(&policy);
    let assessors = Assessors::new(&policy, targets.all.as_ref());
    let mut entries = Vec::new();
    for partner in &partners {
        let mut line = String::new();
        let mut ids = String::new();
        let counted = write_entry(
            &assessors,
            &inputs,
            targets.all.as_ref(),
            partner,
            &mut worker,
            &mut line,
            &mut ids,
        )
        .unwrap();
        let (expected, a) = entry_for(&policy, &history, &reference, &observed_reference, partner);
        let read: PlanEntry = serde_json::from_str(&line).expect("a plan line is JSON");
        assert_eq!(read, expected);
        // And the plan's line reader reads it, as serde does.
        assert_eq!(
            crate::plan::entry_line::read_entry(line.as_bytes()).as_ref(),
            Some(&read)
        );
        assert_eq!(line, serde_json::to_string(&expected).unwrap());
        assert_eq!(
            (ids.clone(), counted.migration, counted.band, counted.action),
            (expected.id.clone(), a.migration, a.band, a.action)
        );
        entries.push(read);
    }
    // What the lines say is what `plan_claims` decides again from what
    // they carry (the words a signer reads), and an entry edited to
    // need fewer approvals is named.
    let mut plan = Plan {
        format_version: FORMAT_VERSION,
        header: PlanHeader {
            target_all: Some(file["all"].clone()),
            ..blank_header(&policy)
        },
        entries,
        totals: Totals::default(),
    };
    assert_eq!(
        crate::plan_claims::unfounded(&plan, &policy),
        Vec::<String>::new()
    );
    let guided = plan
        .entries
        .iter_mut()
        .find(|e| e.approvals_required == ["TSC"])
        .unwrap();
    guided.approvals_required.clear();
    let id = guided.id.clone();
    assert_eq!(
        crate::plan_claims::unfounded(&plan, &policy),
        [format!(
            "partner `{id}`: the plan says approvals none; its policy decides approvals TSC"
        )]
    );
}
