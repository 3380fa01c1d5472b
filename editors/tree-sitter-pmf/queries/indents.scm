; Indentation for PMF (nvim-treesitter conventions): the inside of a block is
; indented one level, and a closing bracket goes back to the opening line's.
[
  (field_block)
  (record_type)
  (migration_body)
  (rule_block)
  (dimension_block)
  (check_block)
  (health_block)
  (flow_block)
  (test_block)
  (record_value)
  (arguments)
  (set_literal)
  (parenthesized_expression)
] @indent.begin

[
  "}"
  ")"
  "]"
] @indent.branch @indent.end

(comment) @indent.auto
