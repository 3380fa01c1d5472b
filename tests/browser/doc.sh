#!/usr/bin/env bash
# `pmf doc` in headless Chromium: the page loads without console errors and
# the flow diagram is drawn. Usage: tests/browser/doc.sh PATH/TO/pmf
set -euo pipefail
pmf="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
root="$(cd "$(dirname "$0")/../.." && pwd)"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "doc test: chromium is not installed (.ci/run installs Debian's chromium)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$pmf" doc "$root/examples/fleet/policy.pmf" -o "$work/doc" >/dev/null
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
       --disable-background-networking --disable-component-update --disable-sync
       --user-data-dir="$work/profile" --enable-logging=stderr --v=0)
timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$work/doc/index.html" >"$work/dom.html" 2>"$work/console.log" || true
fail=0
if ! grep -q 'data-flow-drawn="yes"' "$work/dom.html"; then
  echo "doc test: the flow diagram was not drawn"; fail=1
fi
phases="$(grep -o 'data-flow-phases="[0-9]*"' "$work/dom.html" | head -1 | grep -o '[0-9]*' || echo 0)"
if [ "$phases" != "7" ]; then
  echo "doc test: expected 7 phases in the diagram, found $phases"; fail=1
fi
if grep -E 'CONSOLE|Uncaught' "$work/console.log" >/dev/null; then
  echo "doc test: console messages:"; grep -E 'CONSOLE|Uncaught' "$work/console.log"; fail=1
fi
for section in "Migration categories" "Migration types" "The flow" "Migration health" "Governance" "Ceilings" "Rites"; do
  grep -q "<h2>$section</h2>" "$work/dom.html" || { echo "doc test: section '$section' missing"; fail=1; }
done
grep -q 'href="[^"]*policy.pmf#L[0-9]*"' "$work/dom.html" || { echo "doc test: no link back to a source line"; fail=1; }
[ "$fail" = 0 ] && echo "doc test: page loads without console errors; the diagram is drawn ($phases phases)"
exit "$fail"
