// External scanner for tree-sitter-pmf: what a context-free lexer cannot decide.
//
// 1. The column-0 rule. The pest front end (crates/pmf-syntax/src/split.rs) cuts a file
//    into chunks at every line that starts, in column 0 and outside comments and
//    strings, with a top-level keyword, and parses each chunk as exactly one
//    declaration. The scanner gives the grammar the same cuts: it emits the
//    zero-width `_declaration_start` token before such a keyword. It emits it
//    even where the grammar does not expect it (inside a declaration), which
//    makes that a syntax error, as the cut makes it one for pest. An indented
//    keyword never starts a declaration. Before the `policy` header
//    (`_start_of_file` is valid only there) the scanner emits nothing but a
//    byte-order mark, which pest skips: the first chunk may start anywhere.
//
// 2. Contextual keywords that pest tries before a name at the same place, and
//    which match only when the right token follows (PEG backtracking):
//      `set`   before `<`          (set<T>; else a type named `set`)
//      `phase` before a name       (else an edge from a phase named `phase`)
//      `max`   before a number     (a bound; else an edge from a phase `max`)
//      `and` `or` `in` `not` before `:` after a check's condition or a test
//                                  record's value: the name of the next check
//                                  or field, not an operator.
//    Comments and blanks may separate the keyword from what follows it.
//
// 3. Paths. pest reads `partner.metrics.stability` as one token: no blank or
//    comment may stand around a dot. The scanner emits the dots and the names
//    after them right where the previous name ends, and a zero-width end of
//    path otherwise (unless a `(` follows: that name is called).
//
// The scanner is stateless. Comments and strings are tokens of the internal
// lexer, so the scanner never runs inside them.

#include "tree_sitter/parser.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum TokenType {
  DECLARATION_START,
  START_OF_FILE,
  BYTE_ORDER_MARK,
  SET_KEYWORD,
  PHASE_KEYWORD,
  MAX_KEYWORD,
  OPERATOR_WORD_AS_NAME,
  PATH_DOT,
  PATH_FIELD,
  PATH_END,
  ERROR_SENTINEL,
};

// Must match TOP_LEVEL_KEYWORDS in crates/pmf-syntax/src/split.rs.
static const char *const TOP_LEVEL_KEYWORDS[] = {
    "policy",        "override",       "authority",  "category", "partner",
    "migration",     "order",          "compatibility", "sustainability",
    "validation",    "health",         "flow",       "ceiling",  "rite",
    "key",           "test",           "fixture",
};

#define MAX_KEYWORD_LEN 16

static bool is_word_char(int32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_';
}

static bool is_name_start(int32_t c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// Skip blanks and comments (the lexer has already marked the token's end).
// Returns false on an unterminated block comment.
static bool skip_trivia(TSLexer *lexer) {
  for (;;) {
    int32_t c = lexer->lookahead;
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      lexer->advance(lexer, false);
    } else if (c == '/') {
      lexer->advance(lexer, false);
      if (lexer->lookahead == '/') {
        while (lexer->lookahead != '\n' && !lexer->eof(lexer)) lexer->advance(lexer, false);
      } else if (lexer->lookahead == '*') {
        lexer->advance(lexer, false);
        bool star = false;
        for (;;) {
          if (lexer->eof(lexer)) return false;
          int32_t d = lexer->lookahead;
          lexer->advance(lexer, false);
          if (star && d == '/') break;
          star = d == '*';
        }
      } else {
        // A lone `/`: not trivia. The caller looks at `lookahead`, which is now
        // past the slash; report a character that matches nothing.
        return false;
      }
    } else {
      return true;
    }
  }
}

void *tree_sitter_pmf_external_scanner_create(void) { return NULL; }

void tree_sitter_pmf_external_scanner_destroy(void *payload) { (void)payload; }

unsigned tree_sitter_pmf_external_scanner_serialize(void *payload, char *buffer) {
  (void)payload;
  (void)buffer;
  return 0;
}

void tree_sitter_pmf_external_scanner_deserialize(void *payload, const char *buffer,
                                                  unsigned length) {
  (void)payload;
  (void)buffer;
  (void)length;
}

bool tree_sitter_pmf_external_scanner_scan(void *payload, TSLexer *lexer,
                                           const bool *valid_symbols) {
  (void)payload;

  // Error recovery asks for every token at once: leave it to the internal lexer.
  if (valid_symbols[ERROR_SENTINEL]) return false;

  // Inside a path (`partner.metrics.stability`): the scanner runs right after
  // the previous name, before any blank or comment could be skipped, so a dot
  // that is not glued to the names around it ends the path.
  if (valid_symbols[PATH_FIELD]) {
    if (!is_name_start(lexer->lookahead)) return false;
    while (is_word_char(lexer->lookahead)) lexer->advance(lexer, false);
    lexer->mark_end(lexer);
    lexer->result_symbol = PATH_FIELD;
    return true;
  }
  if (valid_symbols[PATH_DOT] || valid_symbols[PATH_END]) {
    if (lexer->lookahead == '.' && valid_symbols[PATH_DOT]) {
      lexer->advance(lexer, false);
      lexer->mark_end(lexer);
      if (is_name_start(lexer->lookahead)) {
        lexer->result_symbol = PATH_DOT;
        return true;
      }
      return false;
    }
    if (!valid_symbols[PATH_END]) return false;
    // A name followed by `(` is a call, not a path: leave the `(` to the lexer.
    lexer->mark_end(lexer);
    if (skip_trivia(lexer) && lexer->lookahead == '(') return false;
    lexer->result_symbol = PATH_END;
    return true;
  }

  if (valid_symbols[START_OF_FILE]) {
    // Only the file's first character (the start of the parsed range).
    if (lexer->lookahead == 0xFEFF && valid_symbols[BYTE_ORDER_MARK] &&
        lexer->is_at_included_range_start(lexer)) {
      lexer->advance(lexer, false);
      lexer->mark_end(lexer);
      lexer->result_symbol = BYTE_ORDER_MARK;
      return true;
    }
    return false;
  }

  // Skip blanks; remember whether the last one ended a line. The previous token
  // (or comment) never ends with a newline, so a keyword in column 0 is always
  // preceded by a skipped '\n' here.
  bool at_line_start = false;
  for (;;) {
    int32_t c = lexer->lookahead;
    if (c == '\n') {
      at_line_start = true;
    } else if (c == ' ' || c == '\t' || c == '\r') {
      at_line_start = false;
    } else {
      break;
    }
    lexer->advance(lexer, true);
  }
  lexer->mark_end(lexer);
  char word[MAX_KEYWORD_LEN + 1];
  unsigned len = 0;
  while (is_word_char(lexer->lookahead)) {
    if (len == MAX_KEYWORD_LEN) return false;
    word[len++] = (char)lexer->lookahead;
    lexer->advance(lexer, false);
  }
  word[len] = '\0';
  if (len == 0) return false;

  if (at_line_start) {
    for (size_t i = 0; i < sizeof(TOP_LEVEL_KEYWORDS) / sizeof(TOP_LEVEL_KEYWORDS[0]); i++) {
      if (strcmp(word, TOP_LEVEL_KEYWORDS[i]) == 0) {
        lexer->result_symbol = DECLARATION_START;
        return true;
      }
    }
  }

  enum TokenType candidate;
  if (valid_symbols[SET_KEYWORD] && strcmp(word, "set") == 0) {
    candidate = SET_KEYWORD;
  } else if (valid_symbols[PHASE_KEYWORD] && strcmp(word, "phase") == 0) {
    candidate = PHASE_KEYWORD;
  } else if (valid_symbols[MAX_KEYWORD] && strcmp(word, "max") == 0) {
    candidate = MAX_KEYWORD;
  } else if (valid_symbols[OPERATOR_WORD_AS_NAME] &&
             (strcmp(word, "and") == 0 || strcmp(word, "or") == 0 || strcmp(word, "in") == 0 ||
              strcmp(word, "not") == 0)) {
    candidate = OPERATOR_WORD_AS_NAME;
  } else {
    return false;
  }

  // The token is the word; look past it for what decides.
  lexer->mark_end(lexer);
  if (!skip_trivia(lexer)) return false;
  int32_t next = lexer->lookahead;
  bool ok;
  switch (candidate) {
    case SET_KEYWORD: ok = next == '<'; break;
    case PHASE_KEYWORD: ok = is_name_start(next); break;
    case MAX_KEYWORD: ok = next >= '0' && next <= '9'; break;
    default: ok = next == ':'; break;
  }
  if (!ok) return false;
  lexer->result_symbol = candidate;
  return true;
}
