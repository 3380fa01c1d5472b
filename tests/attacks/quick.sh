#!/usr/bin/env bash
# The fast subset of the attack suite, for CI:  tests/attacks/quick.sh PMF_BINARY
#
# Runs every attack of tamper.py, approvals.py, badinputs.py and paths.py, and small,
# fixed-seed runs of storefuzz.py, planfuzz.py, policyfuzz.py, sequencefuzz.py, crash.py, concurrency.py,
# fuzzcheck.py and lspfuzz.py
# (sizes below; the campaign sizes are in README.md). Needs python3 (stdlib
# only) and bash; no network. Each script works in its own mktemp directory
# and removes it. Stops at the first script that fails, naming it, and exits 1
# (KEEP_GOING=1 runs them all, then names every one that failed).
# With a debug binary on 2 shared cores it takes about a minute (release: 20 s).
set -uo pipefail
if [ $# -ne 1 ] || [ ! -x "$1" ]; then
  echo "usage: tests/attacks/quick.sh PMF_BINARY" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
PMF="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
PMF_SRC="${PMF_SRC:-$(cd "$here/../.." && pwd)}"
export PMF PMF_SRC
export PYTHONDONTWRITEBYTECODE=1  # leave no __pycache__ in the checkout
command -v python3 >/dev/null || { echo "attacks (quick): python3 is needed" >&2; exit 2; }
log="$(mktemp -t pmf-attacks-quick-XXXXXX)"
trap 'rm -f "$log"' EXIT
total_start=$SECONDS
failed=()

run() { # NAME SCRIPT ARGS...
  local name="$1" start=$SECONDS rc
  shift
  python3 "$here/$@" >"$log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    # the script's summary and its FAILED lines (or the traceback)
    if grep -q '^SUMMARY [a-z0-9-]*:' "$log"; then sed -n '/^SUMMARY [a-z0-9-]*:/,$p' "$log"; else tail -n 40 "$log"; fi
    echo "attacks (quick): $name FAILED (exit $rc): PMF=$PMF PMF_SRC=$PMF_SRC python3 tests/attacks/$*" >&2
    failed+=("$name")
    [ -n "${KEEP_GOING:-}" ] || exit 1
    return
  fi
  echo "$(grep '^SUMMARY [a-z0-9-]*:' "$log" | tail -n 1) ($((SECONDS - start)) s)"
}

run tamper.py       tamper.py
run approvals.py    approvals.py
run badinputs.py    badinputs.py
run paths.py        paths.py
run storefuzz.py    storefuzz.py --mutants 60 --seed 1
run planfuzz.py     planfuzz.py --mutants 150 --seed 1
run policyfuzz.py   policyfuzz.py --mutants 30 --seed 1
run sequencefuzz.py sequencefuzz.py --sequences 4 --steps 30 --seed 1
run faultfuzz.py    faultfuzz.py --trials 40 --seed 1
run crash.py        crash.py --partners 1000 --trials 4 --seed 7
run concurrency.py  concurrency.py --partners 200 --rounds 1
run fuzzcheck.py    fuzzcheck.py --mutants 200 --batch 50 --seed 1 --fmt --slow 30
run lspfuzz.py      lspfuzz.py --edits 500 --seed 1
if [ ${#failed[@]} -ne 0 ]; then
  echo "attacks (quick): failed: ${failed[*]} ($((SECONDS - total_start)) s)" >&2
  exit 1
fi
echo "attacks (quick): all held ($((SECONDS - total_start)) s)"
