//! The line reader against serde, its reference: on entries as `pmf plan`
//! writes them (serde's writer lays them out alike: the plan writer's
//! tests hold it) and on those lines mutated.

use super::*;
use proptest::prelude::*;

/// What serde reads from `line` (the reference).
fn reference(line: &[u8]) -> Option<PlanEntry> {
    serde_json::from_slice(line).ok()
}

/// Texts as plans hold them: mostly plain, sometimes with what serde
/// escapes (quotes, backslashes, controls) or non-ASCII text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z0-9 .`+-]{0,12}",
        1 => "[a-z\"\\\\\u{0}-\u{1f}\u{7f}é→\u{2028}]{0,6}",
    ]
}

/// A JSON value of any shape, nested a few levels.
fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value as J;
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        any::<i64>().prop_map(J::from),
        any::<u64>().prop_map(J::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(J::from),
        (0u32..1000).prop_map(|n| J::from(f64::from(n) / 10.0)),
        text().prop_map(J::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(J::Array),
            prop::collection::vec((text(), inner), 0..5)
                .prop_map(|fields| J::Object(fields.into_iter().collect())),
        ]
    })
}

fn opt_text() -> impl Strategy<Value = Option<Text>> {
    prop::option::of(text().prop_map(Text::from))
}

fn texts() -> impl Strategy<Value = Vec<Text>> {
    prop::collection::vec(text().prop_map(Text::from), 0..4)
}

fn number() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..10_001).prop_map(|n| f64::from(n) / 100.0),
        any::<f64>().prop_filter("finite", |f| f.is_finite()),
    ]
}

fn entry() -> impl Strategy<Value = PlanEntry> {
    (
        (
            text(),
            prop::option::of("[0-9a-f]{64}"),
            opt_text(),
            opt_text(),
            opt_text(),
        ),
        (texts(), texts()),
        (
            prop::option::of(number()),
            opt_text(),
            prop::sample::select(Action::ALL.to_vec()),
            text(),
            text(),
        ),
        number(),
        prop::option::of(json()),
        json(),
        prop::option::of(json()),
    )
        .prop_map(
            |(
                (id, state_digest, from, to, migration),
                (categories, approvals_required),
                (score, band, action, reason, validation),
                fallback_risk,
                target,
                state,
                observed,
            )| PlanEntry {
                id,
                state_digest,
                from,
                to,
                migration,
                categories,
                approvals_required,
                predicted: Prediction {
                    score,
                    band,
                    action,
                    reason: reason.into(),
                    validation: validation.into(),
                },
                fallback_risk,
                target,
                state: CarriedJson::of(&state),
                observed: observed.as_ref().map(CarriedJson::of),
            },
        )
}

/// Whether serde wrote `line` with an escape (which the reader leaves to
/// serde).
fn escaped(line: &str) -> bool {
    line.contains('\\')
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// A line as written reads as serde reads it (serde's own numbers do
    /// not always read back to the bit: the reader's are serde's), and by
    /// the reader whenever it holds no escape.
    #[test]
    fn written_lines_read_as_serde_reads_them(entry in entry()) {
        let line = serde_json::to_string(&entry).unwrap();
        let read = read_entry(line.as_bytes());
        prop_assert_eq!(read.is_some(), !escaped(&line), "{}", line);
        if read.is_some() {
            prop_assert_eq!(read, reference(line.as_bytes()));
        }
    }

    /// A written line changed anywhere (a byte replaced, removed or added,
    /// a part cut out or repeated) reads as serde reads it, or is left to
    /// serde.
    #[test]
    fn changed_lines_read_as_serde_reads_them_or_not_at_all(
        entry in entry(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..5, any::<u8>(), 0usize..12), 1..4),
    ) {
        let mut line = serde_json::to_string(&entry).unwrap().into_bytes();
        const BYTES: &[u8] = b"{}[],:\"\\ 0123456789.-+eEtrufalsn\x00\x1f\x7f\xc3\xa9\xff";
        for (at, how, byte, len) in edits {
            let i = at.index(line.len() + 1);
            let byte = BYTES[usize::from(byte) % BYTES.len()];
            match how {
                0 if i < line.len() => line[i] = byte,
                1 if i < line.len() => {
                    line.remove(i);
                }
                2 => line.insert(i, byte),
                3 => {
                    let end = (i + len).min(line.len());
                    line.drain(i..end);
                }
                _ => {
                    let end = (i + len).min(line.len());
                    let part = line[i..end].to_vec();
                    line.splice(i..i, part);
                }
            }
        }
        if let Some(read) = read_entry(&line) {
            prop_assert_eq!(Some(read), reference(&line), "{}", String::from_utf8_lossy(&line));
        }
    }
}

/// Lines laid out otherwise than `pmf plan` writes them are left to serde,
/// even when serde reads them.
#[test]
fn other_layouts_are_left_to_serde() {
    let line = r#"{"id":"a","from":"1.0.0","to":"1.1.0","type":"soft","categories":["structural"],"approvals_required":[],"predicted":{"score":85.8,"band":"reliable","action":"monitor","reason":"r","validation":"passed"},"fallback_risk":0.1,"state":{"id":"a","n":[1,2.5,-0.0,1e3,true,false,null,{}]}}"#;
    let entry = read_entry(line.as_bytes()).expect("as pmf writes it");
    assert_eq!(Some(entry), reference(line.as_bytes()));
    for other in [
        // White space, fields in another order, a field repeated or
        // unknown, an optional field left out, an escape.
        line.replacen(":", ": ", 1),
        format!("{line} "),
        line.replacen(
            r#""id":"a","from":"1.0.0""#,
            r#""from":"1.0.0","id":"a""#,
            1,
        ),
        line.replacen(r#""id":"a","#, r#""id":"a","id":"a","#, 1),
        line.replacen(r#""id":"a","#, r#""id":"a","x":1,"#, 1),
        line.replacen(r#""type":"soft","#, "", 1),
        line.replacen(r#""reason":"r""#, r#""reason":"\u0072""#, 1),
        line.replacen("[1,", "[01,", 1),
        line.replacen("[1,", "[1.,", 1),
        line.replacen("1e3", "1e", 1),
        line.replacen("85.8", "1e999", 1),
        line.replacen("monitor", "wait", 1),
    ] {
        assert_eq!(read_entry(other.as_bytes()), None, "{other}");
    }
    // Nested past the reader's depth: serde decides.
    let deep = |n: usize| {
        line.replacen(
            r#""state":{"#,
            &format!(r#""state":{{"d":{}{},"#, "[".repeat(n), "]".repeat(n)),
            1,
        )
    };
    assert!(read_entry(deep(MAX_DEPTH as usize - 2).as_bytes()).is_some());
    assert_eq!(read_entry(deep(MAX_DEPTH as usize).as_bytes()), None);
}
