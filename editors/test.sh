#!/usr/bin/env bash
# Tests of the editor support in editors/. Usage: editors/test.sh PATH/TO/pmf
#
# Installs what it needs when missing (npm packages from package-lock.json,
# tree-sitter-cli 0.27.1 through cargo, vim and a C compiler through apt-get),
# then runs every suite and reports each failure at the end:
#   vscode       TextMate assertion tests, client and manifest tests
#   tree-sitter  generate, corpus and highlight tests, query validation
#   helix        Helix's queries are up to date with the grammar's
#   agreement    the tree-sitter and pest grammars accept the same files, both
#                the repository's .pmf files and 3000 generated and mutated ones
#   snippets     every VS Code snippet expands to a policy both parsers accept
#   vim          headless highlighting test
# It builds nothing in Rust: the pmf binary is the first argument.
set -uo pipefail

TREE_SITTER_VERSION=0.27.1

if [[ $# -ne 1 ]]; then
  echo "usage: $0 PATH/TO/pmf   (e.g. target/debug/pmf)" >&2
  exit 2
fi
if [[ ! -x $1 ]]; then
  echo "editors: pmf binary not found or not executable: $1 (build it first)" >&2
  exit 2
fi
pmf=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
editors=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$editors/.." && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

die() {
  echo "editors: $*" >&2
  exit 1
}

apt_install() {
  local sudo=
  [[ $(id -u) -ne 0 ]] && command -v sudo >/dev/null && sudo=sudo
  command -v apt-get >/dev/null || die "cannot install $* (no apt-get); install it and rerun"
  echo "== installing $* with apt-get"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" \
    || die "apt-get install $* failed"
}

# ---------------------------------------------------------------- tools
command -v npm >/dev/null || apt_install nodejs npm
command -v cc >/dev/null || apt_install gcc libc6-dev
command -v vim >/dev/null || apt_install vim

if [[ $(tree-sitter --version 2>/dev/null) != "tree-sitter $TREE_SITTER_VERSION" ]]; then
  command -v cargo >/dev/null || die "cargo is needed to install tree-sitter-cli"
  echo "== installing tree-sitter-cli $TREE_SITTER_VERSION (cargo install, about 2 minutes)"
  cargo install --locked --force "tree-sitter-cli@$TREE_SITTER_VERSION" \
    || die "cargo install tree-sitter-cli@$TREE_SITTER_VERSION failed"
fi

# A private tree-sitter configuration: no warning about parser directories, and
# nothing read from or written to the user's own.
ts_home=$(mktemp -d)
trap 'rm -rf "$ts_home"' EXIT
mkdir -p "$ts_home/parsers"
printf '{"parser-directories": ["%s"]}\n' "$ts_home/parsers" >"$ts_home/config.json"
export TREE_SITTER_DIR=$ts_home
export NO_COLOR=1

# ---------------------------------------------------------------- suites
failures=()
step() {
  local name=$1
  shift
  echo
  echo "== $name"
  if "$@"; then
    echo "-- $name: ok"
  else
    echo "-- $name: FAILED"
    failures+=("$name")
  fi
}

vscode_install() {
  cd "$editors/vscode" && npm ci --no-audit --no-fund --loglevel=error
}
vscode_grammar() { cd "$editors/vscode" && npm run -s test:grammar; }
vscode_client() { cd "$editors/vscode" && npm run -s test:client; }

ts_generate() { cd "$editors/tree-sitter-pmf" && tree-sitter generate --js-runtime native; }
ts_test() { cd "$editors/tree-sitter-pmf" && tree-sitter test; }
ts_queries() {
  cd "$editors/tree-sitter-pmf" || return 1
  local query ok=0
  for query in queries/*.scm; do
    if tree-sitter query -q "$query" "$root/stdlib/kwanus.pmf" >/dev/null; then
      echo "query $query: ok"
    else
      echo "query $query: INVALID"
      ok=1
    fi
  done
  return $ok
}

agreement() { "$editors/tree-sitter-pmf/agreement.sh" "$pmf"; }
fuzz() { node "$editors/tree-sitter-pmf/fuzz-agreement.js" "$pmf" 3000 1; }

helix_queries() {
  local dir ok=0 query
  dir=$(mktemp -d)
  "$editors/helix/make-queries.sh" "$dir" || return 1
  if ! diff -ru "$editors/helix/queries/pmf" "$dir"; then
    echo "editors/helix/queries/pmf is out of date: run editors/helix/make-queries.sh"
    ok=1
  fi
  cd "$editors/tree-sitter-pmf" || return 1
  for query in "$editors"/helix/queries/pmf/*.scm; do
    tree-sitter query -q "$query" "$root/stdlib/kwanus.pmf" >/dev/null || { echo "query $query: INVALID"; ok=1; }
  done
  rm -rf "$dir"
  [[ $ok -eq 0 ]] && echo "helix queries up to date and valid"
  return $ok
}

snippets() {
  local dir file out ok=0
  dir=$(mktemp -d)
  node "$editors/vscode/scripts/expand-snippets.js" "$dir" || return 1
  cd "$editors/tree-sitter-pmf" || return 1
  for file in "$dir"/*.pmf; do
    out=$("$pmf" check "$file" --format json 2>&1)
    if grep -Eq '"code": *"PMF00[1-4]"' <<<"$out" || [[ $out != *'"diagnostics"'* ]]; then
      echo "snippet $(basename "$file"): pest rejects it"
      grep -E '"(code|message|line)"' <<<"$out" | head -6
      ok=1
    fi
    if ! tree-sitter parse -q "$file" >/dev/null 2>&1; then
      echo "snippet $(basename "$file"): tree-sitter rejects it"
      tree-sitter parse -q "$file" 2>&1 | head -3
      ok=1
    fi
  done
  [[ $ok -eq 0 ]] && echo "$(ls "$dir" | wc -l) expanded snippets accepted by both parsers"
  rm -rf "$dir"
  return $ok
}

vim_test() { "$editors/vim/test.sh"; }

generated=false
step "tree-sitter: generate" ts_generate && generated=true
if $generated; then
  step "tree-sitter: corpus and highlight tests" ts_test
  step "tree-sitter: queries" ts_queries
  step "helix: queries" helix_queries
  step "agreement: tree-sitter and pest accept the same files" agreement
  step "agreement: generated and mutated policies" fuzz
fi
if step "vscode: npm ci" vscode_install; then
  step "vscode: TextMate grammar tests" vscode_grammar
  step "vscode: client and manifest tests" vscode_client
  $generated && step "snippets: both parsers accept every expansion" snippets
fi
step "vim: highlighting test" vim_test

echo
if [[ ${#failures[@]} -gt 0 ]]; then
  echo "editors: ${#failures[@]} failed:"
  printf '  %s\n' "${failures[@]}"
  exit 1
fi
echo "editors: all suites passed"
