; Scopes, definitions and references for PMF (nvim-treesitter conventions).
; A policy is one scope; a flow's phases are local to its block, and the
; edges of the block refer to them.

(source_file) @local.scope

(flow_block) @local.scope

(policy_declaration
  name: (identifier) @local.definition.namespace)

(authority_declaration
  name: (identifier) @local.definition.constant)

(category_declaration
  name: (identifier) @local.definition.type)

(migration_declaration
  name: (identifier) @local.definition.type)

(flow_declaration
  name: (identifier) @local.definition.type)

(fixture_declaration
  name: (identifier) @local.definition.type)

(field_declaration
  name: (identifier) @local.definition.field)

(rule
  name: (identifier) @local.definition.function)

(check
  name: (identifier) @local.definition.function)

(factor
  name: (identifier) @local.definition.field)

(phase_declaration
  name: (identifier) @local.definition.label)

; references
(edge_chain
  from: (identifier) @local.reference)

(failure_edge
  from: (identifier) @local.reference)

(edge_target
  phase: (identifier) @local.reference)

(governs_clause
  category: (identifier) @local.reference)

(touches_clause
  category: (identifier) @local.reference)

(approve_clause
  authority: (identifier) @local.reference)

(key_declaration
  authority: (identifier) @local.reference)

(approved_clause
  authority: (identifier) @local.reference)

(expect_clause
  kind: (expect_kind
    "approvals")
  value: (identifier) @local.reference)

(expect_clause
  kind: (expect_kind
    "type")
  value: (identifier) @local.reference)

(order_declaration
  migration: (identifier) @local.reference)

(rite_declaration
  phase: (identifier) @local.reference)

(like_clause
  fixture: (identifier) @local.reference)
