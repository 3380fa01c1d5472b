#!/usr/bin/env bash
# The whole PMF story on the bundled fleet: check → plan → approve → apply →
# trust root pinned → lineage → rollback (planned, approved; an edited copy refused and recorded; applied) →
# checkpoint → operator key replaced → verify (by pmf, and by an audit without pmf) → status, with the
# default embedded store (.pmf/state.db)
# in a fresh working directory. Run from anywhere:  examples/fleet/story.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ -z "${PMF:-}" ]; then
  cargo build --release --quiet --manifest-path "$root/Cargo.toml"
  PMF="$root/target/release/pmf"
fi
work="$root/target/fleet-story"
rm -rf "$work" && mkdir -p "$work" && cd "$work"
step() { printf '\n\033[1m$ pmf %s\033[0m\n' "$*"; }

step check "$here/policy.pmf"
"$PMF" check "$here/policy.pmf"

step plan --policy policy.pmf --partners partners.json --target target.json --observed observed.json
"$PMF" plan --policy "$here/policy.pmf" --partners "$here/partners.json" \
  --target "$here/target.json" --observed "$here/observed.json" -o plan.json

step "approve: TSC and ERC sign the plan with the keys the policy trusts; SCO does not (its migrations wait for review)"
# Demo keys (examples/fleet/keys/README.md); real private keys never live in a repository.
# A private key is readable by its owner only (pmf warns otherwise): copied so.
install -m 600 "$here/keys/TSC.key" "$here/keys/ERC.key" .
"$PMF" approve plan.json --key TSC.key -o approvals.json --yes
"$PMF" approve plan.json --key ERC.key -o approvals.json --yes

step "pin the trust root: the project's pmf.toml names the reviewed policy's hash (its stores are governed first by it)"
hash=$(sed -n '1s/.*"policy":{"name":"[^"]*","hash":"\([0-9a-f]\{64\}\)".*/\1/p' plan.json)
printf '[trust]\nroot_policy = "%s"\n' "$hash" > pmf.toml
cat pmf.toml

step apply plan.json --approvals approvals.json --observed observed.json
status=0
"$PMF" apply plan.json --approvals approvals.json --observed "$here/observed.json" || status=$?
echo "(apply exit code $status: 3 means some partners fell back or were restricted, 4 that some still wait: see pmf review list)"

step lineage show p-012
"$PMF" lineage show p-012

step "rollback p-001 --policy policy.pmf -o rollback.json   (a rollback is planned and approved like any migration)"
"$PMF" rollback p-001 --policy "$here/policy.pmf" -o rollback.json

step "approve rollback.json: TSC signs the reverse change (it governs what it touches)"
"$PMF" approve rollback.json --key TSC.key -o rollback-approvals.json --yes

step "apply rollback-edited.json   (a copy edited to need no approval: refused, and the attempt recorded)"
sed 's/"approvals_required":\["TSC"\]/"approvals_required":[]/' rollback.json > rollback-edited.json
if "$PMF" apply rollback-edited.json; then
  echo "the edited rollback was applied: that is a bug" >&2
  exit 1
fi

step apply rollback.json --approvals rollback-approvals.json
"$PMF" apply rollback.json --approvals rollback-approvals.json

step "lineage checkpoint -o witness.json   (a witness keeps the signed head)"
"$PMF" lineage checkpoint -o witness.json

step "state rekey --new-key .pmf/operator-2.key --reason ...   (the key in force signs its successor's succession)"
"$PMF" state rekey --new-key .pmf/operator-2.key --reason "the operator key moves to a new machine"

step lineage verify --checkpoint witness.json
"$PMF" lineage verify --checkpoint witness.json

# An auditor handed the store need not trust this pmf binary: audit.py checks the whole
# log from the file alone (Python's standard library, no pmf code).
printf '\n\033[1m$ python3 tests/attacks/audit.py .pmf/state.db   (an auditor, without pmf)\033[0m\n'
if command -v python3 >/dev/null; then
  PYTHONDONTWRITEBYTECODE=1 python3 "$root/tests/attacks/audit.py" .pmf/state.db
else
  echo "(python3 is not installed: skipped)"
fi

step status
"$PMF" status
echo
echo "store: $work/.pmf/state.db"
