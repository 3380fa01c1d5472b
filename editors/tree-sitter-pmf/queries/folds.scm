; Folds for PMF: every braced block, multi-line expressions and comments.
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
  (comment)
] @fold
