#!/usr/bin/env bash
# Headless highlighting test of the vim syntax: opens test/sample.pmf and checks
# the syntax group at chosen positions (see test.vim). Exits non-zero on any
# mismatch. Needs vim with +syntax and +eval.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
command -v vim >/dev/null || { echo "vim test: vim is not installed" >&2; exit 2; }

result=$(mktemp)
trap 'rm -f "$result"' EXIT
export PMF_VIM_RESULT=$result
vim -Nu NONE -i NONE -es \
  -c "set rtp^=$here" \
  -c 'filetype plugin indent on' \
  -c 'syntax on' \
  -c "edit $here/test/sample.pmf" \
  -c "source $here/test.vim" \
  -c 'qa!' </dev/null || true

if [[ ! -s $result ]]; then
  echo "vim test: no result written (vim failed before the checks)" >&2
  exit 1
fi
grep -v '^ok ' "$result" || true
if grep -q '^FAIL' "$result"; then
  exit 1
fi
