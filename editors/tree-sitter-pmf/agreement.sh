#!/usr/bin/env bash
# Grammar agreement: the tree-sitter grammar must accept exactly the files the
# pest grammar (the reference, grammar/pmf.pest) accepts.
#
# Usage: editors/tree-sitter-pmf/agreement.sh PATH/TO/pmf
#
# Every `.pmf` file under stdlib/, examples/, tests/fixtures/valid/ and
# tests/fixtures/diagnostics/ is parsed by both front ends, one file at a time
# (files of a fixture directory too):
#   pest accepts        `pmf check FILE --format json` reports no PMF001, PMF002,
#                       PMF003 or PMF004 (the syntax codes; any other code, such
#                       as an unknown parent of a lone fixture file, is ignored)
#   tree-sitter accepts `tree-sitter parse -q FILE` reports no ERROR or MISSING
# The script fails when one accepts a file the other rejects, unless the file is
# in ALLOW below with the reason; an allowed file that no longer differs fails
# too, so the list stays true.
#
# Needs `tree-sitter` on PATH (0.27.1); generates the parser if it is missing.
set -uo pipefail

# Files on which the two front ends are known to differ, with the reason.
# Paths are relative to the repository root.
declare -A ALLOW=(
  [tests/fixtures/diagnostics/PMF002.pmf]="pest rejects on purpose (PMF002): the expression tree is deeper than the front end's limit of 128 (and brackets may nest at most 64 deep); tree-sitter has no depth limit"
)

if [[ $# -ne 1 ]]; then
  echo "usage: $0 PATH/TO/pmf" >&2
  exit 2
fi
pmf=$1
if [[ ! -x $pmf ]]; then
  echo "agreement: pmf binary not found or not executable: $pmf" >&2
  exit 2
fi
pmf=$(cd "$(dirname "$pmf")" && pwd)/$(basename "$pmf")

grammar_dir=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$grammar_dir/../.." && pwd)
cd "$grammar_dir"

if ! command -v tree-sitter >/dev/null; then
  echo "agreement: tree-sitter is not on PATH" >&2
  exit 2
fi
if [[ ! -f src/parser.c ]]; then
  tree-sitter generate --js-runtime native || { echo "agreement: tree-sitter generate failed" >&2; exit 1; }
fi

mapfile -t files < <(cd "$root" && find stdlib examples tests/fixtures/valid tests/fixtures/diagnostics \
  -type f -name '*.pmf' 2>/dev/null | LC_ALL=C sort)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "agreement: no .pmf files found under $root" >&2
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pest: 0 accepts, 1 rejects; exits the script if pmf misbehaves.
pest_accepts() {
  local file=$1 out status
  out=$("$pmf" check "$root/$file" --format json 2>"$tmp/pmf.err")
  status=$?
  if [[ $status -gt 1 || $out != *'"diagnostics"'* ]]; then
    echo "agreement: \`pmf check $file --format json\` failed (exit $status):" >&2
    cat "$tmp/pmf.err" >&2
    exit 1
  fi
  if grep -Eq '"code": *"PMF00[1-4]"' <<<"$out"; then
    grep -Eo '"code": *"PMF00[1-4]"' <<<"$out" | grep -Eo 'PMF00[1-4]' | sort -u | paste -sd, - >"$tmp/pest.codes"
    return 1
  fi
  return 0
}

# tree-sitter: 0 accepts, 1 rejects.
ts_accepts() {
  local file=$1 out status
  out=$(tree-sitter parse -q "$root/$file" 2>&1)
  status=$?
  if [[ $status -ne 0 || $out == *ERROR* || $out == *MISSING* ]]; then
    grep -Eo '\((ERROR|MISSING)[^)]*\)' <<<"$out" | head -1 >"$tmp/ts.first"
    return 1
  fi
  return 0
}

agree=0
allowed=0
failures=()
for file in "${files[@]}"; do
  if pest_accepts "$file"; then pest=accepts; else pest="rejects ($(cat "$tmp/pest.codes"))"; fi
  if ts_accepts "$file"; then ts=accepts; else ts="rejects $(cat "$tmp/ts.first")"; fi
  same=false
  [[ ${pest%% *} == "${ts%% *}" ]] && same=true
  reason=${ALLOW[$file]:-}
  if $same && [[ -z $reason ]]; then
    agree=$((agree + 1))
    printf '  ok       %-55s both %s\n' "$file" "${pest%% *}"
  elif ! $same && [[ -n $reason ]]; then
    allowed=$((allowed + 1))
    printf '  allowed  %-55s pest %s, tree-sitter %s\n' "$file" "$pest" "$ts"
    printf '           reason: %s\n' "$reason"
  elif $same; then
    failures+=("$file: in the allow-list but both now ${pest%% *} it; remove it from ALLOW in $0")
  else
    failures+=("$file: pest $pest, tree-sitter $ts")
  fi
done

echo "agreement: ${#files[@]} files, $agree agree, $allowed allowed differences, ${#failures[@]} failures"
if [[ ${#failures[@]} -gt 0 ]]; then
  printf 'DISAGREE %s\n' "${failures[@]}"
  exit 1
fi
