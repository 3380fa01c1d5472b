//! salsa incrementality: after one file of a multi-file policy is edited,
//! the other files are not parsed again.

use pmf::db::{Database, Session, SourceFile};
use salsa::plumbing::AsId;

/// The sections cut into chunks again (each section once a file is new,
/// then only the sections an edit reached).
fn parses(log: &[String]) -> Vec<String> {
    log.iter()
        .filter(|e| e.starts_with("section_chunks("))
        .cloned()
        .collect()
}

/// What [`parses`] logs for the sections of `files`.
fn sections_of(session: &Session, files: &[SourceFile]) -> Vec<String> {
    files
        .iter()
        .flat_map(|f| f.sections(session.db()).iter())
        .map(|s| format!("section_chunks({:?})", s.as_id()))
        .collect()
}

#[test]
fn editing_one_file_reparses_only_that_file() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let base = session.set_file("base.pmf", "policy base extends kwanus\n\npartner {\n  region: string\n}\n\ncompatibility {\n  region_kept: target.region == partner.region else restrict\n}\n".into());
    let child = session.set_file(
        "child.pmf",
        "policy child extends base\n\noverride ceiling power <= 7\n".into(),
    );
    let other = session.set_file("other.pmf", "policy other extends kwanus\n".into());
    for f in [base, child, other] {
        assert!(session.check(f).iter().all(|d| !d.is_error()));
    }
    let first = parses(&log.lock().unwrap());
    assert_eq!(
        first,
        sections_of(&session, &[session.stdlib, base, child, other]),
        "stdlib and three files parsed once"
    );
    log.lock().unwrap().clear();

    session.set_file(
        "child.pmf",
        "policy child extends base\n\noverride ceiling power <= \"x\"\n".into(),
    );
    let diags: Vec<_> = [base, child, other]
        .iter()
        .flat_map(|f| session.check(*f))
        .collect();
    assert!(diags.iter().any(|d| d.code.id() == "PMF803"), "{diags:?}");
    let second = parses(&log.lock().unwrap());
    assert_eq!(
        second,
        sections_of(&session, &[child]),
        "only the edited file is parsed again"
    );
    let executed = log.lock().unwrap().clone();
    // Checks of files that do not depend on child.pmf do not run again.
    let rechecked: Vec<&String> = executed
        .iter()
        .filter(|e| e.starts_with("check_file("))
        .collect();
    assert_eq!(rechecked.len(), 1, "{executed:?}");
}

#[test]
fn editing_a_parent_rechecks_its_children() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let base = session.set_file("base.pmf", "policy base extends kwanus\n".into());
    let child_text = "policy child extends base\n\npartner {\n  region: string\n}\n\ncompatibility {\n  region_kept: target.region == partner.region else restrict\n}\n";
    let child = session.set_file("child.pmf", child_text.into());
    assert!(
        session.check(child).is_empty(),
        "{:?}",
        session.check(child)
    );
    log.lock().unwrap().clear();
    session.set_file(
        "base.pmf",
        "policy base extends kwanus\n\npartner {\n  region: string\n}\n".into(),
    );
    let _ = session.check(base);
    let diags = session.check(child);
    assert!(diags.iter().any(|d| d.code.id() == "PMF702"), "{diags:?}");
    assert_eq!(parses(&log.lock().unwrap()), sections_of(&session, &[base]));
}

fn executed(log: &[String], query: &str) -> usize {
    log.iter()
        .filter(|e| e.starts_with(&format!("{query}(")))
        .count()
}

/// `diags` as `pmf check --format json` shows them (lines, columns and
/// bytes, whatever stable places the session laid the files out at).
fn shown(session: &Session, diags: &[pmf::diagnostics::Diagnostic]) -> String {
    use pmf::diagnostics::render::{IndexedSources, json_report};
    let sources = IndexedSources::placed(session.placed_texts());
    serde_json::to_string(&json_report(1, diags, &sources)).unwrap()
}

/// A policy of several declarations; the last ones have errors, so their
/// diagnostics sit after every edit below.
const MANY: &str = "policy many extends kwanus\n\n\
authority Ops \"Operations\" governs region_cat\n\
category region_cat \"Regions\" covers region\n\
// the partner schema\n\
partner {\n  region: string\n  tier: number\n}\n\n\
compatibility {\n  region_kept: target.region == partner.region else restrict\n}\n\n\
sustainability {\n  tier_floor: observed.tier >= 2 else throttle\n}\n\n\
compatibility {\n  broken: target.nowhere == partner.region else restrict\n}\n\
ceiling tier <= \"high\"\n";

#[test]
fn editing_one_declaration_reparses_only_its_chunk() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let file = session.set_file("many.pmf", MANY.into());
    let before = session.check(file);
    assert!(before.iter().any(|d| d.is_error()), "{before:?}");
    log.lock().unwrap().clear();

    // One character inside the `category` declaration (its title): every
    // later declaration moves one byte.
    let edited = MANY.replace("\"Regions\"", "\"Regionss\"");
    session.set_file("many.pmf", edited.clone());
    let after = session.check(file);
    {
        let log = log.lock().unwrap();
        assert_eq!(
            executed(&log, "placed"),
            1,
            "only the edited chunk is parsed: {log:?}"
        );
        assert_eq!(executed(&log, "section_chunks"), 1, "{log:?}");
    }
    let mut fresh = Session::default();
    let fresh_file = fresh.set_file("many.pmf", edited.clone());
    assert_eq!(after, fresh.check(fresh_file));
    // The diagnostics after the edit moved with their declarations.
    let at = edited.find("nowhere").unwrap() as u32;
    let places = &pmf::db::parse_file(session.db(), file).places;
    assert!(
        after
            .iter()
            .any(|d| places.bytes(d.primary.span).start == at),
        "{after:?}"
    );
    // In stable places nothing moved: the diagnostics themselves are equal.
    assert_eq!(before, after);
}

#[test]
fn an_edit_in_a_comment_runs_no_check() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let file = session.set_file("many.pmf", MANY.into());
    let _ = session.check(file);
    for (i, edit) in ["// the partner schemaa\n", "// the partner schem\n"]
        .into_iter()
        .enumerate()
    {
        log.lock().unwrap().clear();
        let edited = MANY.replace("// the partner schema\n", edit);
        session.set_file("many.pmf", edited.clone());
        let diags = session.check(file);
        let log = log.lock().unwrap().clone();
        assert_eq!(executed(&log, "placed"), 1, "edit {i}: {log:?}");
        for query in [
            "resolve",
            "type_check",
            "phase_graph",
            "policy_checks",
            "lints",
            "stable_check",
        ] {
            assert_eq!(executed(&log, query), 0, "edit {i}: {query} ran: {log:?}");
        }
        let mut fresh = Session::default();
        let fresh_file = fresh.set_file("many.pmf", edited);
        assert_eq!(diags, fresh.check(fresh_file), "edit {i}");
    }
}

/// `MANY` checked, then `edited` checked in the same session.
struct Edited {
    /// The queries that ran for the edit.
    log: Vec<String>,
    /// The diagnostics before and after it.
    before: Vec<pmf::diagnostics::Diagnostic>,
    after: Vec<pmf::diagnostics::Diagnostic>,
    /// The diagnostics after it, as shown, and those of `edited` checked
    /// in a fresh session.
    shown: (String, String),
}

fn edit_many(edited: &str) -> Edited {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let file = session.set_file("many.pmf", MANY.into());
    let before = session.check(file);
    log.lock().unwrap().clear();
    session.set_file("many.pmf", edited.to_string());
    let after = session.check(file);
    let log = log.lock().unwrap().clone();
    let mut alone = Session::default();
    let alone_file = alone.set_file("many.pmf", edited.to_string());
    let shown = (
        shown(&session, &after),
        shown(&alone, &alone.check(alone_file)),
    );
    Edited {
        log,
        before,
        after,
        shown,
    }
}

#[test]
fn a_declaration_added_at_the_end_is_the_only_one_parsed() {
    let e = edit_many(&format!("{MANY}rite continuity \"carry on\"\n"));
    assert_eq!(executed(&e.log, "placed"), 1, "{:?}", e.log);
    assert_eq!(e.shown.0, e.shown.1);
}

#[test]
fn a_declaration_that_no_expression_reads_runs_no_type_check() {
    let e = edit_many(&format!(
        "{MANY}authority Sec \"Security\" governs region_cat\n"
    ));
    assert_eq!(executed(&e.log, "resolve"), 1, "{:?}", e.log);
    assert_eq!(executed(&e.log, "typed_items"), 1, "{:?}", e.log);
    assert_eq!(executed(&e.log, "type_check"), 0, "{:?}", e.log);
    // Its findings (`target.nowhere`, a string bound on a number) are
    // still reported.
    let typed = |d: &[pmf::diagnostics::Diagnostic]| {
        use pmf::diagnostics::Code;
        d.iter()
            .filter(|d| matches!(d.code, Code::UnknownField | Code::CeilingValue))
            .count()
    };
    assert_eq!(typed(&e.after), typed(&e.before));
    assert!(typed(&e.after) > 0, "{:?}", e.after);
    assert_eq!(e.shown.0, e.shown.1);
}

#[test]
fn a_declaration_added_in_the_middle_moves_no_other_declaration() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let file = session.set_file("many.pmf", MANY.into());
    let before = session.check(file);
    for round in 0..3 {
        log.lock().unwrap().clear();
        let edited = MANY.replacen(
            "compatibility {",
            "authority Sec \"Security\" governs region_cat\n\ncompatibility {",
            1,
        );
        session.set_file("many.pmf", edited.clone());
        let diags = session.check(file);
        {
            let log = log.lock().unwrap();
            // Only the new declaration is parsed (the first time: later
            // rounds find it parsed), and the chunks after it keep their
            // stable places, so no expression is type-checked again.
            let parsed = if round == 0 { 1 } else { 0 };
            assert_eq!(executed(&log, "placed"), parsed, "round {round}: {log:?}");
            assert_eq!(executed(&log, "type_check"), 0, "round {round}: {log:?}");
        }
        let mut alone = Session::default();
        let alone_file = alone.set_file("many.pmf", edited);
        assert_eq!(
            shown(&session, &diags),
            shown(&alone, &alone.check(alone_file))
        );
        // And removed again: the first diagnostics, in the first places.
        session.set_file("many.pmf", MANY.into());
        assert_eq!(session.check(file), before, "round {round}");
    }
    // Added between a declaration and the comment that follows it (which
    // goes with the declaration's chunk, so that chunk is split): the
    // split chunk keeps its place (its text is then the one the rules had
    // before the comment was written, at the same place: parsed already),
    // and no expression is type-checked again.
    let text = MANY.replacen(
        "sustainability {",
        "// rules that follow\nsustainability {",
        1,
    );
    session.set_file("many.pmf", text.clone());
    let _ = session.check(file);
    log.lock().unwrap().clear();
    let edited = text.replacen(
        "// rules that follow",
        "authority Sec \"Security\" governs region_cat\n// rules that follow",
        1,
    );
    session.set_file("many.pmf", edited.clone());
    let diags = session.check(file);
    {
        let log = log.lock().unwrap();
        assert_eq!(executed(&log, "placed"), 1, "{log:?}");
        assert_eq!(executed(&log, "type_check"), 0, "{log:?}");
    }
    let mut alone = Session::default();
    let alone_file = alone.set_file("many.pmf", edited);
    assert_eq!(
        shown(&session, &diags),
        shown(&alone, &alone.check(alone_file))
    );
}

/// Every fixture, edited in its middle: the database's tree, effective
/// policy and diagnostics equal a fresh session's of the same text.
#[test]
fn edited_fixtures_equal_fresh_sessions() {
    let mut paths: Vec<std::path::PathBuf> = ["tests/fixtures/diagnostics", "tests/fixtures/valid"]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pmf"))
        .collect();
    paths.sort();
    assert!(paths.len() > 10);
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut session = Session::default();
        let file = session.set_file("f.pmf", text.clone());
        let _ = session.check(file);
        let mut at = text.len() / 2;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        let mut history = vec![text.clone()];
        for edited in [
            format!("{}\n{}", &text[..at], &text[at..]),
            format!("// x\n{text}"),
            text.clone(),
        ] {
            session.set_file("f.pmf", edited.clone());
            history.push(edited.clone());
            let diags = session.check(file);
            // A fresh database given the same texts in turn lays the file
            // out at the same stable places, and computes everything anew.
            let mut fresh = Session::default();
            let mut fresh_file = None;
            for t in &history {
                fresh_file = Some(fresh.set_file("f.pmf", t.clone()));
            }
            let fresh_file = fresh_file.unwrap();
            assert_eq!(diags, fresh.check(fresh_file), "{}", path.display());
            // Shown, they are those of the text checked on its own.
            let mut alone = Session::default();
            let alone_file = alone.set_file("f.pmf", edited.clone());
            assert_eq!(
                shown(&session, &diags),
                shown(&alone, &alone.check(alone_file)),
                "{}",
                path.display()
            );
            assert_eq!(
                pmf::db::resolve(session.db(), session.workspace, file),
                pmf::db::resolve(fresh.db(), fresh.workspace, fresh_file),
                "{}",
                path.display()
            );
            // What the editor maps from stable places (definition, hover)
            // lands where a parse of the whole text puts the declarations.
            let (db, ws) = (session.db(), session.workspace);
            let parsed = pmf::syntax::parse("f.pmf", &edited);
            let whole = pmf::model::compose::items_of("f.pmf", &edited, &parsed.ast);
            let stable = pmf::db::stable_items(db, file);
            assert_eq!(stable.len(), whole.len(), "{}", path.display());
            for (s, a) in stable.iter().zip(&whole) {
                assert_eq!(s.key, a.key);
                // A text parsed whole has its places at its bytes.
                let bytes = |p| pmf::syntax::PlaceMap::identity().bytes(p);
                assert_eq!(pmf::db::offsets(db, ws, &s.file, s.span), bytes(a.span));
                assert_eq!(
                    pmf::db::offsets(db, ws, &s.file, s.name_span),
                    bytes(a.name_span)
                );
            }
        }
    }
}

/// Chunks interned long ago (a file left alone while another is edited
/// many times) are still found, and checks stay right.
#[test]
fn a_file_left_alone_through_many_revisions_is_not_parsed_again() {
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let many = session.set_file("many.pmf", MANY.into());
    let other = session.set_file("other.pmf", "policy other extends kwanus\n".into());
    let before = session.check(many);
    for i in 0..20 {
        session.set_file(
            "other.pmf",
            format!("policy other extends kwanus\n// revision {i}\n"),
        );
        let _ = session.check(other);
    }
    log.lock().unwrap().clear();
    // An edit at the end of `many.pmf`: the chunks before it are reused.
    let edited = format!("{MANY}// the end\n");
    session.set_file("many.pmf", edited.clone());
    let after = session.check(many);
    let log = log.lock().unwrap().clone();
    assert_eq!(executed(&log, "placed"), 1, "{log:?}");
    assert_eq!(before, after);
    let mut fresh = Session::default();
    let fresh_file = fresh.set_file("many.pmf", edited);
    assert_eq!(after, fresh.check(fresh_file));
}

/// Diagnostics with labels in other files (conflicting parents) follow
/// edits that move the parents' declarations.
#[test]
fn labels_in_edited_parents_equal_fresh_sessions() {
    let eu = "policy eu extends kwanus\n\noverride ceiling power <= 7\n";
    let strict = "policy strict extends kwanus\n\noverride ceiling power <= 5\n";
    let child = "policy child extends eu, strict\n\noverride ceiling power <= \"x\"\n";
    let lone = "policy lone extends eu, strict\n";
    let mut texts = vec![
        ("eu.pmf", eu.to_string()),
        ("strict.pmf", strict.to_string()),
        ("child.pmf", child.to_string()),
        ("lone.pmf", lone.to_string()),
    ];
    let mut session = Session::default();
    for (p, t) in &texts {
        session.set_file(p, t.clone());
    }
    let check_all = |s: &Session| -> Vec<pmf::diagnostics::Diagnostic> {
        ["eu.pmf", "strict.pmf", "child.pmf", "lone.pmf"]
            .iter()
            .flat_map(|p| s.check(s.file(p).unwrap()))
            .collect()
    };
    let first = check_all(&session);
    assert!(
        first
            .iter()
            .any(|d| d.labels.iter().any(|l| l.file == "eu.pmf")),
        "{first:?}"
    );
    for round in 0..3 {
        for i in 0..texts.len() {
            let path = texts[i].0;
            let text = &mut texts[i].1;
            let cut = text.find('\n').unwrap() + 1;
            text.insert_str(cut, &format!("// edit {round}\n\n"));
            session.set_file(path, text.clone());
            let mut fresh = Session::default();
            for (p, t) in &texts {
                fresh.set_file(p, t.clone());
            }
            assert_eq!(
                shown(&session, &check_all(&session)),
                shown(&fresh, &check_all(&fresh)),
                "round {round}, {path}"
            );
        }
    }
}

/// A policy whose migration, ceiling, flow and test checks each find
/// something, so that an edit that changes their findings shows.
const FAMILIES: &str = "policy families extends kwanus\n\n\
authority Ops \"Operations\" governs region_cat\n\
category region_cat \"Regions\" covers region\n\
partner {\n  region: string\n  tier: number\n}\n\n\
migration early \"Early\" {\n  when partner.tier > 2\n  touches region_cat\n  approve by Ops\n}\n\n\
migration late \"Late\" {\n  when partner.tier > 3\n  touches region_cat\n  approve by Ops\n}\n\n\
override order forced, guided, early, late, soft\n\n\
compatibility {\n  region_kept: target.region == partner.region else restrict\n}\n\n\
ceiling tier <= \"high\"\n\n\
rite continuity \"carry on\"\n\n\
fixture base {\n  id: \"p\"\n  tier: 1\n}\n\n\
test \"kept\" {\n  partner like bsae { tier: 2 }\n  target { version: 1.5.0 }\n  expect outcome completed\n}\n";

/// Declarations added, changed and removed in the middle of `FAMILIES`, in
/// turn, in one session: after each, the diagnostics equal those of a
/// fresh session given the same texts (and, shown, those of the text
/// checked alone), whether the edit reaches the migration, ceiling, flow
/// and test checks (which then run again) or not (an authority and a
/// category: they do not).
#[test]
fn checks_behind_firewalls_follow_every_edit() {
    let added = "authority Zz \"Added\" governs zz\ncategory zz \"Added\" covers power\n";
    let edits: Vec<(String, &[&str])> = vec![
        (
            FAMILIES.replacen("partner {", &format!("{added}partner {{"), 1),
            &[
                "migration_checks",
                "ceiling_checks",
                "phase_graph",
                "stable_tests",
                "policy_schema",
            ],
        ),
        // A migration type the order misses, one that shadows `late`.
        (
            FAMILIES.replacen(
                "compatibility {",
                "migration wide \"Wide\" {\n  when partner.tier > 1\n}\n\ncompatibility {",
                1,
            ),
            &[
                "phase_graph",
                "stable_tests",
                "ceiling_checks",
                "policy_schema",
            ],
        ),
        (
            FAMILIES.replace("partner.tier > 3", "partner.tier > 1"),
            &[
                "phase_graph",
                "stable_tests",
                "ceiling_checks",
                "policy_schema",
            ],
        ),
        // No order of its own: the inherited one misses both types.
        (
            FAMILIES.replace("override order forced, guided, early, late, soft\n", ""),
            &[
                "phase_graph",
                "stable_tests",
                "ceiling_checks",
                "policy_schema",
            ],
        ),
        (
            FAMILIES.replace("else restrict", "else throttle"),
            &[
                "phase_graph",
                "stable_tests",
                "ceiling_checks",
                "policy_schema",
            ],
        ),
        (
            FAMILIES.replace(
                "ceiling tier <= \"high\"",
                "ceiling tier <= 4\nceiling region <= 2",
            ),
            &[
                "phase_graph",
                "stable_tests",
                "migration_checks",
                "policy_schema",
            ],
        ),
        (
            FAMILIES.replace("  tier: number\n", "  tier: string\n"),
            &["phase_graph", "stable_tests", "migration_checks"],
        ),
        (
            FAMILIES.replace("rite continuity", "rite continuityy"),
            &[
                "stable_tests",
                "migration_checks",
                "ceiling_checks",
                "policy_schema",
            ],
        ),
        (
            FAMILIES.replace("like bsae", "like base"),
            &[
                "phase_graph",
                "migration_checks",
                "ceiling_checks",
                "policy_schema",
            ],
        ),
        (
            FAMILIES.replacen("fixture base", &format!("{added}fixture base"), 1),
            &[
                "migration_checks",
                "ceiling_checks",
                "phase_graph",
                "stable_tests",
                "policy_schema",
            ],
        ),
    ];
    let (db, log) = Database::with_execution_log();
    let mut session = Session::new(db);
    let file = session.set_file("families.pmf", FAMILIES.into());
    let first = session.check(file);
    assert!(first.iter().any(|d| d.is_error()), "{first:?}");
    let mut history = vec![FAMILIES.to_string()];
    let mut findings = std::collections::BTreeSet::new();
    for (i, (edited, not_run)) in edits.into_iter().enumerate() {
        // Each edit is made to `FAMILIES`, checked first.
        session.set_file("families.pmf", FAMILIES.into());
        history.push(FAMILIES.into());
        assert_eq!(session.check(file), first, "before edit {i}");
        log.lock().unwrap().clear();
        session.set_file("families.pmf", edited.clone());
        history.push(edited.clone());
        let diags = session.check(file);
        let executions = log.lock().unwrap().clone();
        for query in not_run {
            assert_eq!(
                executed(&executions, query),
                0,
                "edit {i}: {query} ran: {executions:?}"
            );
        }
        let mut fresh = Session::default();
        let mut fresh_file = None;
        for t in &history {
            fresh_file = Some(fresh.set_file("families.pmf", t.clone()));
        }
        assert_eq!(diags, fresh.check(fresh_file.unwrap()), "edit {i}");
        let mut alone = Session::default();
        let alone_file = alone.set_file("families.pmf", edited);
        assert_eq!(
            shown(&session, &diags),
            shown(&alone, &alone.check(alone_file)),
            "edit {i}"
        );
        findings.extend(diags.iter().map(|d| d.code.id().to_string()));
    }
    // The edits reached each family's findings.
    for code in ["PMF112", "PMF603", "PMF606", "PMF607", "PMF801", "PMF803"] {
        assert!(findings.contains(code), "{code} never found: {findings:?}");
    }
}

/// A policy of a few hundred chunks (several sections), of every kind of
/// declaration `MANY` has.
fn sectioned() -> String {
    let mut out = MANY.to_string();
    for i in 0..120 {
        out.push_str(&format!(
            "authority A{i} \"A\" governs c{i}\ncategory c{i} \"C\" covers region\n// {i}\n"
        ));
    }
    out
}

/// What an edit writes: a token, a line of tokens, or nothing.
fn edit_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop::collection::vec(prop::sample::select(crate::support::TOKEN_SOUP), 0..4)
        .prop_map(|v| v.concat())
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// A session edited again and again shows, after every edit of a
    /// sequence, what a fresh session shows for the same text, and its
    /// chunks, put together from its sections, cover the text in order.
    #[test]
    fn every_edit_of_a_sequence_shows_what_a_fresh_session_shows(
        edits in proptest::collection::vec((0.0f64..1.0, 0usize..400, edit_text()), 1..5)
    ) {
        let mut text = sectioned();
        let mut session = Session::default();
        let file = session.set_file("edited.pmf", text.clone());
        let _ = session.check(file);
        for (at, len, with) in edits {
            let mut start = (at * text.len() as f64) as usize;
            while !text.is_char_boundary(start) { start -= 1; }
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) { end -= 1; }
            text.replace_range(start..end, &with);
            session.set_file("edited.pmf", text.clone());
            let diags = session.check(file);
            let mut fresh = Session::default();
            let fresh_file = fresh.set_file("edited.pmf", text.clone());
            proptest::prop_assert_eq!(
                shown(&session, &diags),
                shown(&fresh, &fresh.check(fresh_file))
            );
            let chunks = pmf::db::parse_file(session.db(), file);
            let mut at = 0;
            for c in &chunks.chunks {
                let chunk = c.placed.text(session.db()).as_str();
                proptest::prop_assert_eq!(c.start as usize, at);
                proptest::prop_assert_eq!(&text[at..at + chunk.len()], chunk);
                at += chunk.len();
            }
            proptest::prop_assert_eq!(at, text.len());
        }
    }
}
