; Highlights for PMF. Capture names follow the nvim-treesitter conventions.
; Patterns are written so that no two capture the same node: the result is the
; same whether the first match wins (tree-sitter-highlight, Helix, Zed) or the
; last one does (Neovim).

; ---------------------------------------------------------------- comments
(comment) @comment

; ---------------------------------------------------------------- keywords
[
  "policy"
  "authority"
  "category"
  "partner"
  "migration"
  "order"
  "compatibility"
  "sustainability"
  "validation"
  "health"
  "flow"
  "ceiling"
  "rite"
  "key"
  "test"
] @keyword

(override) @keyword.modifier

[
  "extends"
  "governs"
  "covers"
] @keyword

; migration items
[
  "when"
  "requires"
  "mapping"
  "approve"
  "by"
  "touches"
  "to"
] @keyword

[
  (reversible)
  (backward_compatible)
  (fallible)
] @keyword.modifier

[
  (governing)
  (previous_stable)
] @constant.builtin

; health
[
  "factor"
  "weight"
  "from"
  "band"
] @keyword

; flow
[
  "phase"
  "fail"
  "max"
] @keyword

"else" @keyword.conditional

; tests (`partner`, `band` and `validation` are in the lists above)
[
  "target"
  "observed"
  "approved"
  "expect"
  "type"
  "action"
  "outcome"
  "approvals"
  "fixture"
  "like"
] @keyword

[
  (none)
  (null)
] @keyword

; ---------------------------------------------------------------- operators
(binary_expression
  operator: [
    "and"
    "or"
    "in"
  ] @keyword.operator)

(not_in) @keyword.operator

(unary_expression
  operator: "not" @keyword.operator)

(binary_expression
  operator: [
    "=="
    "!="
    "<="
    ">="
    "<"
    ">"
    "+"
    "-"
    "*"
    "/"
  ] @operator)

(unary_expression
  operator: "-" @operator)

(comparison_operator) @operator

[
  "->"
  "..="
] @operator

; ---------------------------------------------------------------- punctuation
[
  "{"
  "}"
  "("
  ")"
  "["
  "]"
] @punctuation.bracket

(set_type
  [
    "<"
    ">"
  ] @punctuation.bracket)

[
  ":"
  ","
  "."
] @punctuation.delimiter

; ---------------------------------------------------------------- literals
(string) @string

(escape_sequence) @string.escape

[
  (number)
  (signed_number)
  (integer)
] @number

(version) @string.special

(boolean) @boolean

; ---------------------------------------------------------------- types
"set" @type.builtin

((type_identifier) @type.builtin
  (#any-of? @type.builtin "bool" "number" "score" "string" "version"))

((type_identifier) @type
  (#not-any-of? @type "bool" "number" "score" "string" "version"))

; ---------------------------------------------------------------- names in expressions
((path
  root: (identifier) @variable.builtin)
  (#any-of? @variable.builtin "partner" "target" "observed"))

((path
  .
  root: (identifier) @constant.builtin .)
  (#any-of? @constant.builtin "compatible" "sustainable"))

((path
  root: (identifier) @variable
  (identifier))
  (#not-any-of? @variable "partner" "target" "observed"))

((path
  .
  root: (identifier) @variable .)
  (#not-any-of? @variable "partner" "target" "observed" "compatible" "sustainable"))

(path
  field: (identifier) @variable.member)

((call_expression
  function: (identifier) @function.builtin)
  (#any-of? @function.builtin "len" "min" "max" "abs"))

((call_expression
  function: (identifier) @function.call)
  (#not-any-of? @function.call "len" "min" "max" "abs"))

; ---------------------------------------------------------------- declaration names
(policy_declaration
  name: (identifier) @module)

(extends_clause
  parent: (identifier) @module)

(authority_declaration
  name: (identifier) @constant)

(approve_clause
  authority: (identifier) @constant)

(key_declaration
  authority: (identifier) @constant)

(category_declaration
  name: (identifier) @type.definition)

[
  (governs_clause
    category: (identifier) @type)
  (touches_clause
    category: (identifier) @type)
]

(field_path
  (identifier) @variable.member)

(field_declaration
  name: (identifier) @property)

(migration_declaration
  name: (identifier) @type.definition)

(order_declaration
  migration: (identifier) @type)

(rule
  name: (identifier) @function)

(check
  name: (identifier) @function)

(dimension
  name: (identifier) @module)

(factor
  name: (identifier) @property)

(band
  status: (identifier) @constant)

(flow_declaration
  name: (identifier) @type.definition)

(phase_declaration
  name: (identifier) @label)

(edge_chain
  from: (identifier) @label)

(failure_edge
  from: (identifier) @label)

(edge_target
  phase: (identifier) @label)

(rite_declaration
  phase: (identifier) @label)

(value_field
  name: (identifier) @property)

(fixture_declaration
  name: (identifier) @type.definition)

(like_clause
  fixture: (identifier) @type)

(approved_clause
  authority: (identifier) @constant)

(expect_clause
  kind: (expect_kind
    "type")
  value: (identifier) @type)

(expect_clause
  kind: (expect_kind
    [
      "band"
      "approvals"
    ])
  value: (identifier) @constant)

; ---------------------------------------------------------------- actions
((rule
  action: (identifier) @constant.builtin)
  (#any-of? @constant.builtin "proceed" "monitor" "review" "fallback" "throttle" "restrict" "forced"))

((band
  action: (identifier) @constant.builtin)
  (#any-of? @constant.builtin "proceed" "monitor" "review" "fallback" "throttle" "restrict" "forced"))

((rule
  action: (identifier) @constant)
  (#not-any-of? @constant "proceed" "monitor" "review" "fallback" "throttle" "restrict" "forced"))

((band
  action: (identifier) @constant)
  (#not-any-of? @constant "proceed" "monitor" "review" "fallback" "throttle" "restrict" "forced"))

((expect_clause
  kind: (expect_kind
    "action")
  value: (identifier) @constant.builtin)
  (#any-of? @constant.builtin "proceed" "monitor" "review" "fallback" "throttle" "restrict" "forced"))

((expect_clause
  kind: (expect_kind
    "action")
  value: (identifier) @constant)
  (#not-any-of? @constant "proceed" "monitor" "review" "fallback" "throttle" "restrict" "forced"))

((expect_clause
  kind: (expect_kind
    "outcome")
  value: (identifier) @constant.builtin)
  (#any-of? @constant.builtin "completed" "fell_back" "restricted" "awaiting_review" "throttled" "unchanged"))

((expect_clause
  kind: (expect_kind
    "outcome")
  value: (identifier) @constant)
  (#not-any-of? @constant "completed" "fell_back" "restricted" "awaiting_review" "throttled" "unchanged"))

((expect_clause
  kind: (expect_kind
    "validation")
  value: (identifier) @constant.builtin)
  (#any-of? @constant.builtin "passed" "inconclusive" "error" "failed"))

((expect_clause
  kind: (expect_kind
    "validation")
  value: (identifier) @constant)
  (#not-any-of? @constant "passed" "inconclusive" "error" "failed"))
