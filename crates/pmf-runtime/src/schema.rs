//! JSON Schemas (draft 2020-12) of the runtime's input files, made from a
//! policy's partner schema: the partner states, the target and the observed
//! metrics that `pmf plan` reads (see docs/inputs.md). They say what the
//! reader accepts; the reader's own rules that a schema cannot state (ids
//! without control characters, no key given twice, records of at most
//! 16 MiB) are in their descriptions.

use serde_json::{Value as Json, json};

use crate::value::Completeness;
use pmf_compiler::model::types::Type;

/// Which input file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// Partner states: a JSON array of records, or NDJSON (one per line).
    Partners,
    /// The target: a partial state for all, or `{"all": …, "partners": {"ID": …}}`.
    Target,
    /// Observed metrics: `{"ID": partial state}`, `null` for not measured.
    Observed,
}

impl InputKind {
    /// The kind's name, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            InputKind::Partners => "partners",
            InputKind::Target => "target",
            InputKind::Observed => "observed",
        }
    }
}

const DRAFT: &str = "https://json-schema.org/draft/2020-12/schema";

/// The schema of one value of type `ty`; in a partial record every field
/// may be left out or `null` (not measured).
fn of_type(ty: &Type, completeness: Completeness) -> Json {
    let plain = match ty {
        Type::Bool => json!({"type": "boolean"}),
        Type::Number => json!({"type": "number"}),
        Type::Score => json!({"type": "number", "minimum": 0, "maximum": 100}),
        Type::String => json!({"type": "string"}),
        Type::Version => json!({
            "type": "string",
            "pattern": r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$",
            "description": "a semantic version, such as \"1.2.3\"",
        }),
        Type::Set(elem) => json!({"type": "array", "items": of_type(elem, completeness)}),
        Type::Record(fields) => {
            let properties: serde_json::Map<String, Json> = fields
                .iter()
                .map(|(name, t)| (name.clone(), of_type(t, completeness)))
                .collect();
            let mut record = json!({
                "type": "object",
                "properties": properties,
                "additionalProperties": false,
            });
            if completeness == Completeness::Full
                && let Some(record) = record.as_object_mut()
            {
                record.insert("required".into(), fields.keys().cloned().collect());
            }
            record
        }
        Type::Unknown => json!({}),
    };
    match (completeness, ty) {
        // A partial record leaves fields out; `null` marks one not measured.
        (Completeness::Partial, Type::Record(_)) | (Completeness::Full, _) => plain,
        (Completeness::Partial, _) => json!({"anyOf": [plain, {"type": "null"}]}),
    }
}

/// The partner id's rules that a schema states only in words.
const ID_RULES: &str = "Partner ids are not empty, have no white space at either end, are at \
                        most 1,024 bytes and hold no control, bidi-control or line-separator \
                        character. No object may give a key twice.";

/// The JSON Schema of the `kind` input file of a policy named `policy`
/// whose partner schema is `schema`.
pub fn input_schema(policy: &str, schema: &Type, kind: InputKind) -> Json {
    let full = of_type(schema, Completeness::Full);
    let partial = of_type(schema, Completeness::Partial);
    let title = format!("pmf {} file of policy `{policy}`", kind.as_str());
    match kind {
        InputKind::Partners => json!({
            "$schema": DRAFT,
            "title": title,
            "description": format!(
                "Partner states: a JSON array of at least one partner, or NDJSON (one \
                 partner per line; each line is a `partner`). Each record is at most 16 MiB. \
                 {ID_RULES}"
            ),
            "$defs": {"partner": full},
            "anyOf": [
                {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/partner"}},
                {"$ref": "#/$defs/partner"},
            ],
        }),
        InputKind::Target => json!({
            "$schema": DRAFT,
            "title": title,
            "description": format!(
                "The target: one partial partner state for every partner, or `all` and \
                 `partners`, where a partner's own target refines `all`. Each entry is at \
                 most 16 MiB. {ID_RULES}"
            ),
            "$defs": {"target": partial},
            "anyOf": [
                {"$ref": "#/$defs/target"},
                {
                    "type": "object",
                    "properties": {
                        "all": {"$ref": "#/$defs/target"},
                        "partners": {
                            "type": "object",
                            "additionalProperties": {"$ref": "#/$defs/target"},
                        },
                    },
                    "additionalProperties": false,
                    "minProperties": 1,
                },
            ],
        }),
        InputKind::Observed => json!({
            "$schema": DRAFT,
            "title": title,
            "description": format!(
                "Observed metrics by partner id: partial partner states, where `null` marks \
                 a metric that was not measured (its checks are inconclusive). Each entry is \
                 at most 16 MiB. {ID_RULES}"
            ),
            "type": "object",
            "additionalProperties": partial,
        }),
    }
}
