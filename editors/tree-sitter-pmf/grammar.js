/**
 * @file Tree-sitter grammar for PMF, the policy language of the KWANUS Partner
 * Migration Framework.
 *
 * This grammar mirrors `grammar/pmf.pest` (the reference) and the chunking of
 * `crates/pmf-syntax/src/split.rs`. `agreement.sh` checks that both accept the same files.
 *
 * How the pest front end's behaviour is reproduced:
 * - Column-0 rule: the external scanner (`src/scanner.c`) emits a zero-width
 *   `_declaration_start` token when a line starts in column 0 with a top-level
 *   keyword. Every declaration after the first must be preceded by it, and the
 *   scanner emits it even where it is not valid, so that such a line inside a
 *   declaration is a syntax error (pest splits the declaration there).
 * - The first declaration must be the `policy` header (PMF003); like pest's
 *   first chunk it may be indented or follow comments on the same line.
 * - Reserved words (`and or not in true false else fail extends governs covers
 *   weight from`) cannot start a path or a call (the `path` reserved-word
 *   set); elsewhere pest's `ident` accepts them, and so does this grammar.
 * - Contextual keywords that pest's ordered choice tries before a name are
 *   decided by the scanner from what follows: `set` before `<`, `phase` before
 *   a name, `max` before a number, and `and`/`or`/`in`/`not` before `:` (then
 *   the name of the next check or test record field, not an operator).
 * - `fixture` and `like` are keywords only where pest's rules expect them (a
 *   top-level `fixture NAME [like BASE] {...}` and `partner|target|observed
 *   like NAME {...}` in a test); elsewhere they are names.
 * - Test blocks: `null` is a keyword only as a whole field value and `none`
 *   only right after `approved` or an expected kind (pest's ordered choice
 *   tries them first there); elsewhere both are names.
 * - Paths and field paths are written without blanks or comments around the
 *   dots (the scanner emits the dots, the names after them and the path's
 *   end); only a single name can be called (`len(...)`, not `a.b(...)`).
 * - Expressions follow pest's flat `unary* primary (infix unary* primary)*`
 *   with the precedence of `crates/pmf-syntax/src/parser.rs`; prefix operators bind
 *   tightest and apply to a primary.
 * - Not mirrored: the front end's depth limits (PMF002: brackets nested more
 *   than 64 deep, expression trees deeper than 128).
 */

/// <reference types="tree-sitter-cli/dsl" />
// @ts-check

const PREC = {
  or: 1,
  and: 2,
  compare: 3,
  add: 4,
  mul: 5,
  unary: 6,
};

const RESERVED = [
  'and', 'or', 'not', 'in', 'true', 'false', 'else', 'fail',
  'extends', 'governs', 'covers', 'weight', 'from',
];

/**
 * One or more `rule`, separated by commas (no trailing comma).
 * @param {RuleOrLiteral} rule
 */
function commaSep1(rule) {
  return seq(rule, repeat(seq(',', rule)));
}

/**
 * Zero or more `rule`, separated by commas, with an optional trailing comma.
 * @param {RuleOrLiteral} rule
 */
function commaSepTrailing(rule) {
  return optional(seq(rule, repeat(seq(',', rule)), optional(',')));
}

module.exports = grammar({
  name: 'pmf',

  word: $ => $.identifier,

  externals: $ => [
    $._declaration_start,
    $._start_of_file,
    $._byte_order_mark,
    $._set_keyword,
    $._phase_keyword,
    $._max_keyword,
    $._operator_word_as_name,
    $._path_dot,
    $._path_field,
    $._path_end,
    $._error_sentinel,
  ],

  extras: $ => [/[ \t\r\n]/, $.comment, $._byte_order_mark],

  reserved: {
    // No word is reserved by default: pest's `ident` accepts every word.
    global: _ => [],
    // ...but a path or a call cannot start with a reserved word.
    path: _ => RESERVED,
  },

  supertypes: $ => [$._expression, $._primary, $._type],

  rules: {
    source_file: $ => seq(
      optional($._start_of_file),
      $.policy_declaration,
      repeat(seq($._declaration_start, $._declaration)),
    ),

    _declaration: $ => choice(
      $.policy_declaration,
      $.authority_declaration,
      $.category_declaration,
      $.partner_declaration,
      $.migration_declaration,
      $.order_declaration,
      $.compatibility_declaration,
      $.sustainability_declaration,
      $.validation_declaration,
      $.health_declaration,
      $.flow_declaration,
      $.ceiling_declaration,
      $.rite_declaration,
      $.key_declaration,
      $.test_declaration,
      $.fixture_declaration,
    ),

    override: _ => 'override',

    // ------------------------------------------------------------ header
    policy_declaration: $ => seq(
      'policy',
      field('name', $.identifier),
      optional($.extends_clause),
    ),

    extends_clause: $ => seq('extends', commaSep1(field('parent', $.identifier))),

    // ------------------------------------------------------------ governance
    authority_declaration: $ => seq(
      optional($.override),
      'authority',
      field('name', $.identifier),
      optional(field('title', $.string)),
      optional($.governs_clause),
    ),

    // `key AUTHORITY "ed25519:<64 hex>" ["label"]`: a public key that signs
    // approvals for the authority. `override` parses (as in pest) and is
    // reported by the checker (PMF704).
    key_declaration: $ => seq(
      optional($.override),
      'key',
      field('authority', $.identifier),
      field('key', $.string),
      optional(field('label', $.string)),
    ),

    governs_clause: $ => seq('governs', commaSep1(field('category', $.identifier))),

    category_declaration: $ => seq(
      optional($.override),
      'category',
      field('name', $.identifier),
      optional(field('title', $.string)),
      optional($.covers_clause),
    ),

    covers_clause: $ => seq('covers', commaSep1(field('field', $.field_path))),

    // Paths are written without blanks or comments around the dots; the
    // scanner emits the dots, the names after them and the end of the path.
    field_path: $ => seq(
      $.identifier,
      repeat(seq(alias($._path_dot, '.'), alias($._path_field, $.identifier))),
      $._path_end,
    ),

    // ------------------------------------------------------------ schema
    partner_declaration: $ => seq(
      optional($.override),
      'partner',
      field('body', $.field_block),
    ),

    field_block: $ => seq('{', repeat($.field_declaration), '}'),

    field_declaration: $ => seq(
      field('name', $.identifier),
      ':',
      field('type', $._type),
      optional(','),
    ),

    _type: $ => choice($.set_type, $.record_type, alias($.identifier, $.type_identifier)),

    // `set` is a keyword only before `<` (a type may be named `set`).
    set_type: $ => seq(alias($._set_keyword, 'set'), '<', field('element', $._type), '>'),

    record_type: $ => seq('{', repeat($.field_declaration), '}'),

    // ------------------------------------------------------------ migration types
    migration_declaration: $ => seq(
      optional($.override),
      'migration',
      field('name', $.identifier),
      optional(field('title', $.string)),
      field('body', $.migration_body),
    ),

    migration_body: $ => seq('{', repeat($._migration_item), '}'),

    _migration_item: $ => choice(
      $.when_clause,
      $.reversible,
      $.backward_compatible,
      $.requires_mapping,
      $.approve_clause,
      $.touches_clause,
      $.to_clause,
    ),

    when_clause: $ => seq('when', field('condition', $._expression)),
    reversible: _ => 'reversible',
    backward_compatible: _ => 'backward_compatible',
    requires_mapping: _ => seq('requires', 'mapping'),
    approve_clause: $ => seq(
      'approve',
      'by',
      choice($.governing, commaSep1(field('authority', $.identifier))),
    ),
    governing: _ => 'governing',
    touches_clause: $ => seq('touches', commaSep1(field('category', $.identifier))),
    to_clause: $ => seq('to', field('target', choice($.previous_stable, $.version))),
    previous_stable: _ => 'previous_stable',

    order_declaration: $ => seq(
      optional($.override),
      'order',
      commaSep1(field('migration', $.identifier)),
    ),

    // ------------------------------------------------------------ rules
    compatibility_declaration: $ => seq(
      optional($.override),
      'compatibility',
      field('body', $.rule_block),
    ),

    sustainability_declaration: $ => seq(
      optional($.override),
      'sustainability',
      field('body', $.rule_block),
    ),

    rule_block: $ => seq('{', repeat($.rule), '}'),

    rule: $ => seq(
      field('name', $.identifier),
      ':',
      field('condition', $._expression),
      'else',
      field('action', $.identifier),
    ),

    validation_declaration: $ => seq(
      optional($.override),
      'validation',
      field('body', $.dimension_block),
    ),

    dimension_block: $ => seq('{', repeat($.dimension), '}'),

    dimension: $ => seq(
      field('name', $.identifier),
      field('body', $.check_block),
    ),

    check_block: $ => seq('{', repeat($.check), '}'),

    // pest reads `and`, `or`, `in` or `not` before a `:` as the name of the
    // next check, not as an operator continuing the previous condition.
    check: $ => seq(
      field('name', choice($.identifier, alias($._operator_word_as_name, $.identifier))),
      ':',
      field('condition', $._expression),
    ),

    // ------------------------------------------------------------ health
    health_declaration: $ => seq(
      optional($.override),
      'health',
      field('body', $.health_block),
    ),

    health_block: $ => seq('{', repeat(choice($.factor, $.band)), '}'),

    factor: $ => seq(
      'factor',
      field('name', $.identifier),
      'weight',
      field('weight', $.signed_number),
      'from',
      field('value', $._expression),
    ),

    band: $ => seq(
      'band',
      field('low', $.signed_number),
      '..=',
      field('high', $.signed_number),
      field('status', $.identifier),
      optional(field('status_label', $.string)),
      '->',
      field('action', $.identifier),
      optional(field('action_label', $.string)),
    ),

    // ------------------------------------------------------------ flow
    flow_declaration: $ => seq(
      optional($.override),
      'flow',
      field('name', $.identifier),
      field('body', $.flow_block),
    ),

    flow_block: $ => seq(
      '{',
      repeat(choice($.phase_declaration, $.failure_edge, $.edge_chain)),
      '}',
    ),

    // `phase` is a keyword only before a name (a phase may be named `phase`).
    phase_declaration: $ => seq(
      alias($._phase_keyword, 'phase'),
      field('name', $.identifier),
      optional($.fallible),
      optional(field('description', $.string)),
    ),

    fallible: _ => 'fallible',

    failure_edge: $ => seq(
      field('from', $.identifier),
      'fail',
      '->',
      field('to', $.edge_target),
    ),

    edge_chain: $ => seq(
      field('from', $.identifier),
      repeat1(seq('->', field('to', $.edge_target))),
    ),

    edge_target: $ => seq(field('phase', $.identifier), optional($.bound)),

    // `max` is a keyword only before a number (a phase may be named `max`).
    bound: $ => seq(alias($._max_keyword, 'max'), field('count', $.integer)),

    // ------------------------------------------------------------ protection and rites
    ceiling_declaration: $ => seq(
      optional($.override),
      'ceiling',
      field('field', $.field_path),
      field('operator', $.comparison_operator),
      field('value', $._expression),
    ),

    comparison_operator: _ => choice('==', '!=', '<=', '>=', '<', '>'),

    rite_declaration: $ => seq(
      optional($.override),
      'rite',
      field('phase', $.identifier),
      field('words', $.string),
    ),

    // ------------------------------------------------------------ tests
    // `test "name" { partner {...} target {...} observed {...} approved A, B
    // expect KIND V }`: a state, the approvals given, and what the run must give.
    test_declaration: $ => seq(
      optional($.override),
      'test',
      field('name', $.string),
      field('body', $.test_block),
    ),

    test_block: $ => seq(
      '{',
      repeat(choice($.test_state, $.approved_clause, $.expect_clause)),
      '}',
    ),

    // `partner`, `target` and `observed` are keywords here, not paths. A
    // state may refine a fixture: `partner like routine { power: 9 }`.
    test_state: $ => seq(
      field('root', choice('partner', 'target', 'observed')),
      optional($.like_clause),
      field('value', $.record_value),
    ),

    // `fixture NAME [like BASE] { fields }`: a named record that test states
    // (and other fixtures) refine field by field. `fixture` and `like` are
    // keywords only here; elsewhere they are names.
    fixture_declaration: $ => seq(
      optional($.override),
      'fixture',
      field('name', $.identifier),
      optional($.like_clause),
      field('value', $.record_value),
    ),

    like_clause: $ => seq('like', field('fixture', $.identifier)),

    record_value: $ => seq('{', repeat(seq($.value_field, optional(','))), '}'),

    // As for checks, `and`, `or`, `in` or `not` before a `:` is the name of
    // the next field, not an operator continuing the previous value.
    value_field: $ => seq(
      field('name', choice($.identifier, alias($._operator_word_as_name, $.identifier))),
      ':',
      field('value', choice($.record_value, $.null, $._expression)),
    ),

    // `null` is a keyword only as a whole value (pest's ordered choice tries it
    // before an expression); inside an expression it is a name.
    null: _ => 'null',

    approved_clause: $ => seq(
      'approved',
      choice($.none, commaSep1(field('authority', $.identifier))),
    ),

    expect_clause: $ => seq(
      'expect',
      field('kind', $.expect_kind),
      choice($.none, commaSep1(field('value', $.identifier))),
    ),

    expect_kind: _ => choice('type', 'band', 'action', 'outcome', 'validation', 'approvals'),

    // `none` is a keyword only right after `approved` or the expected kind.
    none: _ => 'none',

    // ------------------------------------------------------------ expressions
    _expression: $ => choice(
      $.binary_expression,
      $.unary_expression,
      $._primary,
    ),

    binary_expression: $ => {
      /** @type {[number, RuleOrLiteral][]} */
      const table = [
        [PREC.or, 'or'],
        [PREC.and, 'and'],
        [PREC.compare, choice('==', '!=', '<=', '>=', '<', '>', 'in', $.not_in)],
        [PREC.add, choice('+', '-')],
        [PREC.mul, choice('*', '/')],
      ];
      return choice(...table.map(([p, operator]) => prec.left(p, seq(
        field('left', $._expression),
        field('operator', operator),
        field('right', $._expression),
      ))));
    },

    not_in: _ => seq('not', 'in'),

    unary_expression: $ => prec(PREC.unary, seq(
      field('operator', choice('not', '-')),
      field('operand', choice($.unary_expression, $._primary)),
    )),

    _primary: $ => choice(
      $.path,
      $.call_expression,
      $.version,
      $.number,
      $.string,
      $.parenthesized_expression,
      $.set_literal,
      $.boolean,
    ),

    path: $ => seq(
      field('root', reserved('path', $.identifier)),
      repeat(seq(
        alias($._path_dot, '.'),
        field('field', alias($._path_field, $.identifier)),
      )),
      $._path_end,
    ),

    call_expression: $ => seq(
      field('function', reserved('path', $.identifier)),
      field('arguments', $.arguments),
    ),

    arguments: $ => seq('(', commaSepTrailing($._expression), ')'),

    set_literal: $ => seq('[', commaSepTrailing($._expression), ']'),

    parenthesized_expression: $ => seq('(', $._expression, ')'),

    boolean: _ => choice('true', 'false'),

    // ------------------------------------------------------------ tokens
    identifier: _ => /[A-Za-z_][A-Za-z0-9_]*/,

    version: _ => token(/[0-9]+\.[0-9]+(\.[0-9]+)+([-+][0-9A-Za-z.\-]+)*/),

    number: _ => token(/[0-9]+(\.[0-9]+)?/),

    integer: _ => token(/[0-9]+/),

    signed_number: _ => token(/-?[0-9]+(\.[0-9]+)?/),

    string: $ => seq(
      '"',
      repeat(choice($.string_content, $.escape_sequence)),
      token.immediate('"'),
    ),

    string_content: _ => token.immediate(prec(1, /[^"\\\n]+/)),

    escape_sequence: _ => token.immediate(seq('\\', /(.|\n)/)),

    comment: _ => token(choice(
      seq('//', /[^\n]*/),
      seq('/*', /[^*]*\*+([^/*][^*]*\*+)*/, '/'),
    )),
  },
});
