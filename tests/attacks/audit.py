#!/usr/bin/env python3
"""An auditor's check of a store's log that trusts no pmf binary (python3 stdlib only).

`pmf lineage verify` is pmf checking itself: an auditor handed a store by its operator
may not trust the binary that says "intact". This script checks the log from the store
file alone, from docs/security.md and the RFCs, sharing no code with pmf (the encodings
are read by `pmfevent.py`, written from the same documents):

- every event's chain hash (`pmf-event-v2`, or the JSON events of old stores), each
  partner's chain from the genesis hash, positions without gaps;
- the Merkle tree over the events' hashes in log order (RFC 6962: leaf
  `sha256(0x00 || hash)`, node `sha256(0x01 || left || right)`): its root at every
  signed checkpoint's size is the root the checkpoint states;
- every checkpoint's Ed25519 signature (RFC 8032, in pure Python below) over its
  message (`pmf-checkpoint-v1\\nSTORE_ID\\nSIZE\\nROOT\\nTIME`, or `-v2` with `\\nPREV`),
  and the chain of checkpoints (`prev` = SHA-256 of the previous one's signature);
- the operator keys: every checkpoint is signed by the key in force at its size, which
  changes only at an `operator_rekeyed` event of `@operator` naming the old key and
  the new one, signed by the new key (`pmf-operator-rekey-v1\\nSTORE_ID\\nOLD\\nNEW`);
  the key the store pins is the last one;
- who decided: the keys each governing policy trusts (its `governed` event, held to the
  `key` declarations of the policy text the store keeps), every approval an event names
  stored with a valid signature of its plan by a key the policy then governing trusts,
  every review decision signed over the event it follows, every change of policy
  endorsed by each authority of the policy it replaces, every lost operator key's
  succession approved by each authority of the governing policy.

- the tables pmf reads states from: every partner's row is the state, version and status
  its lineage last recorded (`pmf-partner-row-v1`), and none is gone; every stable
  version is one its lineage recorded (`pmf-stable-v1`).

- progress: every run's row says the outcome its lineage last recorded under that plan,
  and none is gone (what `apply` skips as done).

- the plans carried out (`@plans`): only `plan_begun` and `plan_finished` events there
  and nowhere else, each naming a plan, its policy and `N partners` (`1 partner`); each plan begun
  once, finished once after it over the same count; no plan walked more partners than
  it was begun with.

What it does not check (pmf verify does): that each walk had the approvals its policy
required (that needs the policy compiled), and the illumination counts.

  python3 tests/attacks/audit.py .pmf/state.db      # exit 0 when the log holds, 1 naming each problem
"""

import hashlib
import json
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pmfevent as E  # noqa: E402

# ---- Ed25519 verification (RFC 8032, section 5.1), in extended coordinates ----

P = 2 ** 255 - 19
L = 2 ** 252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _add(a, b):
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(k, point):
    acc = (0, 1, 1, 0)
    while k:
        if k & 1:
            acc = _add(acc, point)
        point = _add(point, point)
        k >>= 1
    return acc


def _decode(s):
    """A point from its 32-byte encoding, or None."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P) % P
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


_BY = 4 * pow(5, P - 2, P) % P
BASE = _decode(_BY.to_bytes(32, "little"))


def _same(a, b):
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def ed25519_verify(public_key, message, signature):
    """Whether `signature` (64 bytes) is `public_key`'s (32 bytes) over `message`."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    a, r = _decode(public_key), _decode(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    return _same(_mul(s, BASE), _add(r, _mul(h, a)))


# ---- the Merkle tree (RFC 6962), grown a leaf at a time ----

def _node(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """The roots of the perfect subtrees of the leaves so far, largest first."""

    def __init__(self):
        self.peaks = []  # [(height, hash)]
        self.size = 0

    def push(self, chain_hash):
        item = (0, hashlib.sha256(b"\x00" + chain_hash).digest())
        while self.peaks and self.peaks[-1][0] == item[0]:
            height, left = self.peaks.pop()
            item = (height + 1, _node(left, item[1]))
        self.peaks.append(item)
        self.size += 1

    def root(self):
        if not self.peaks:
            return hashlib.sha256(b"").digest()
        acc = self.peaks[-1][1]
        for _h, peak in reversed(self.peaks[:-1]):
            acc = _node(peak, acc)
        return acc


# ---- who decided: approvals, review decisions, changes of policy ----

KEY_DECLARATION = re.compile(r'\bkey\s+([A-Za-z_][A-Za-z0-9_]*)\s+"ed25519:([0-9a-fA-F]{64})"')


def declared_keys(sources):
    """The (authority, key) pairs a policy's kept text declares (`key AUTH "ed25519:HEX"`,
    line comments left out)."""
    keys = set()
    for text in sources.values():
        for authority, key in KEY_DECLARATION.findall(re.sub(r"//[^\n]*", "", text)):
            keys.add((authority, key.lower()))
    return keys


def _signers(e):
    return [tuple(s.split(":", 1)) if ":" in s else (s, "") for s in e.get("signers") or []]


class Governance:
    """The policy governing the store as the log goes (its `governed` events), and every
    decision the log names held to it: each approval stored with a valid signature
    (`pmf-approval-v1\nAUTHORITY\nPLAN`) by a key the governing policy trusts, each
    review decision signed over the event it follows (`pmf-review-v1\n…`), each change
    of policy endorsed by every authority of the policy it replaces, and each lost
    operator key's succession approved by every authority of the governing policy."""

    def __init__(self, approvals, kept):
        self.approvals, self.kept = approvals, kept
        self.trusted = None  # {(authority, key)} of the governing policy
        self.plans = {}  # partner -> the plan its walk runs

    def signed(self, plan, authority, key):
        signature = self.approvals.get((plan, authority, key.lower()))
        return signature is not None and ed25519_verify(
            _hex(key), f"pmf-approval-v1\n{authority}\n{plan}".encode(), _hex(signature))

    def every_authority(self, plan, signers):
        """The authorities of the governing policy that did not approve `plan` among `signers`."""
        endorsed = {a for a, k in signers if (a, k.lower()) in self.trusted and self.signed(plan, a, k)}
        return sorted({a for a, _k in self.trusted} - endorsed)

    def follow(self, partner, e, prev_hash, count):
        kind = e.get("kind")
        if partner == "@governance" and kind == "governed":
            trusted = {(a, k.lower()) for a, k in _signers(e)}
            problems = []
            text = self.kept.get(e.get("policy_hash"))
            if text is not None:
                count["policies"] += 1
                try:
                    declared = declared_keys(json.loads(text))
                except ValueError:
                    declared = None
                if declared != trusted:
                    problems.append("the keys its policy's kept text declares are not the keys it records")
            if self.trusted is not None and self.trusted:
                missing = self.every_authority(e.get("plan_hash", ""), [(a, k) for (a, k), _s in
                                               ((key[1:], sig) for key, sig in self.approvals.items()
                                                if key[0] == e.get("plan_hash"))])
                if missing:
                    problems.append(f"a change of policy not endorsed by {', '.join(missing)} of the policy it "
                                    "replaces")
            self.trusted = trusted
            return problems
        if partner.startswith("@") and partner != "@operator" or self.trusted is None:
            return []
        problems = []
        if partner == "@operator":
            if e.get("plan_hash"):
                # A lost key's succession: every authority approved the request.
                count["approvals"] += len(_signers(e))
                missing = self.every_authority(e["plan_hash"], _signers(e))
                if missing and self.trusted:
                    problems.append(f"a lost operator key replaced without the approval of {', '.join(missing)}")
            return problems
        if e.get("plan_hash"):
            self.plans[partner] = e["plan_hash"]
        plan = self.plans.get(partner, "")
        if e.get("signature"):
            # A review decision, signed over the event it follows.
            count["reviews"] += 1
            (authority, key), = _signers(e)[:1] or [("", "")]
            message = f"pmf-review-v1\n{authority}\n{partner}\n{kind}\n{e.get('plan_hash', '')}\n{prev_hash}"
            if not ed25519_verify(_hex(key), message.encode(), _hex(e["signature"])):
                problems.append(f"its review decision by `{authority}` has no valid signature")
            if (authority, key.lower()) not in self.trusted:
                problems.append(f"its review decision is by a key of `{authority}` the governing policy does not trust")
            return problems
        for authority, key in _signers(e):
            count["approvals"] += 1
            if not self.signed(plan, authority, key):
                problems.append(f"its approval by `{authority}` is not stored with a valid signature of its plan")
            if (authority, key.lower()) not in self.trusted:
                problems.append(f"its approval by `{authority}` is by a key the governing policy does not trust")
        return problems


# ---- the audit ----

def plan_mark(partner, e, marks):
    """What is wrong with event `e` of `partner` as a mark of a plan begun or finished."""
    kind = e.get("kind")
    is_mark = kind in ("plan_begun", "plan_finished")
    if partner != "@plans":
        return ["it marks a plan outside `@plans`"] if is_mark else []
    if not is_mark:
        return [f"`@plans` holds a `{kind}` event"]
    plan, count = e.get("plan_hash"), re.fullmatch(r"([0-9]+) partners?", e.get("detail") or "")
    if count and e["detail"] != f"{int(count.group(1))} partner{'' if int(count.group(1)) == 1 else 's'}":
        count = None  # written exactly `1 partner`, `N partners`
    if not plan or not e.get("policy_hash") or not count:
        return ["a mark of a plan that names no plan, no policy or no count of partners"]
    if any(e.get(f) for f in ("state", "stable", "signers", "approvals", "signature", "outcome")):
        return ["a mark of a plan that names approvals, an outcome or a state"]
    count = int(count.group(1))
    if kind == "plan_begun":
        if plan in marks:
            return [f"plan {plan[:12]} begun a second time"]
        marks[plan] = [count, False]
        return []
    if plan not in marks:
        return [f"plan {plan[:12]} finished, never begun"]
    if marks[plan][1]:
        return [f"plan {plan[:12]} finished a second time"]
    marks[plan][1] = True
    return [] if marks[plan][0] == count else [f"plan {plan[:12]} finished over {count} partners, begun over "
                                              f"{marks[plan][0]}"]


def _hex(text):
    try:
        return bytes.fromhex(text or "")
    except ValueError:
        return b""


def audit(db):
    """The problems of the store file `db`'s log ([] when it holds), and what was checked."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    problems = []
    try:
        meta = dict(c.execute("SELECT key, value FROM meta").fetchall())
        store_id = meta.get("store_id", "")
        texts = E.texts(c)
        checkpoints = c.execute(
            "SELECT size, root, time, public_key, signature, prev FROM checkpoints ORDER BY size").fetchall()
        events = E.events(c)
        stored_approvals = {(p, a, k.lower()): sig for p, a, k, sig in
                            c.execute("SELECT plan_hash, authority, public_key, signature FROM approvals")}
        try:
            kept = dict(c.execute("SELECT hash, sources FROM policies").fetchall())
        except sqlite3.OperationalError:
            kept = {}  # a store before schema 6 keeps no policy text
        rows = c.execute("SELECT id, state, version, status FROM partners").fetchall()
        progress = c.execute("SELECT p.hash, g.partner_id, g.outcome FROM progress g "
                             "LEFT JOIN plans p ON p.id = g.plan").fetchall()
        stables = c.execute("SELECT partner_id, seq, version, state FROM stable_versions").fetchall()
    finally:
        c.close()
    decisions = {"approvals": 0, "reviews": 0, "policies": 0}
    # Chains, positions, successions; who decided what, under which policy.
    heads, positions, successions = {}, {}, []
    governance = Governance(stored_approvals, kept)
    recorded, listed = {}, {}  # partner -> its last state digest; the stable digests its events list
    runs = {}  # (plan, partner) -> the outcome its run under that plan last recorded
    frontier = Frontier()
    roots = {}
    marks = {}  # plan -> [partners it was begun with, finished]
    wanted = {size for size, *_rest in checkpoints}
    for n, (g, partner, seq, body, stored) in enumerate(events, 1):
        if g != n:
            problems.append(f"event #{n}: stored at log position {g}")
        if seq != positions.get(partner, 0) + 1:
            problems.append(f"event #{g}: `{partner}`'s event {seq} follows its event {positions.get(partner, 0)}")
        positions[partner] = seq
        computed = E.stored_hash(heads.get(partner, E.GENESIS), partner, seq, body, texts)
        if computed != bytes(stored):
            problems.append(f"event #{g} (`{partner}` {seq}): its chain hash is not the hash of its content "
                            "and the partner's previous event")
        try:
            e = E.decode(body, texts)
        except Exception as ex:  # noqa: BLE001 (an undecodable event is a finding, not a crash)
            problems.append(f"event #{g}: it does not decode ({ex})")
            e = {}
        problems.extend(f"event #{g} (`{partner}` {seq}): {why}" for why in
                        governance.follow(partner, e, heads.get(partner, E.GENESIS).hex(), decisions))
        problems.extend(f"event #{g} (`{partner}` {seq}): {why}" for why in plan_mark(partner, e, marks))
        if e.get("state"):
            recorded[partner] = e["state"]
        if e.get("plan_hash") and e.get("outcome") and not partner.startswith("@"):
            runs[(e["plan_hash"], partner)] = e["outcome"]
        listed.setdefault(partner, set()).update(e.get("stable") or [])
        heads[partner] = bytes(stored)
        frontier.push(bytes(stored))
        if frontier.size in wanted:
            roots[frontier.size] = frontier.root()
        if partner == "@operator":
            try:
                e = E.decode(body, texts)
            except Exception as ex:  # noqa: BLE001 (an undecodable event is a finding, not a crash)
                problems.append(f"event #{g}: an `@operator` event that does not decode ({ex})")
                continue
            successions.append((g, e.get("from", ""), e.get("to", ""), bool(e.get("plan_hash")),
                                e.get("signature", "")))
    if int(meta.get("global_count", len(events)) or 0) != len(events):
        problems.append(f"the store says it holds {meta.get('global_count')} events; its log holds {len(events)}")
    # Successions: each names the key in force, and the new key signed it.
    for g, old, new, _approved, signature in successions:
        message = f"pmf-operator-rekey-v1\n{store_id}\n{old}\n{new}".encode()
        if not ed25519_verify(_hex(new), message, _hex(signature)):
            problems.append(f"event #{g}: the succession to operator key {new[:12]}… is not signed by that key")
    for (g, _old, new, _a, _s), (g2, old2, _new2, _a2, _s2) in zip(successions, successions[1:]):
        if old2 != new:
            problems.append(f"event #{g2}: the succession replaces key {old2[:12]}…, but the key in force is "
                            f"{new[:12]}… (since event #{g})")

    def key_for(size):
        in_force = [s for s in successions if s[0] < size or s[3] and s[0] == size]
        if in_force:
            return in_force[-1][2]
        return successions[0][1] if successions else meta.get("operator_key", "")

    # Checkpoints: root, key, signature, chain.
    before = None
    for size, root, time, public_key, signature, prev in checkpoints:
        where = f"the checkpoint of {size} events (signed {time})"
        if size > len(events):
            problems.append(f"{where}: the log holds only {len(events)} events")
        elif roots.get(size) != _hex(root):
            problems.append(f"{where}: the log's Merkle root at that size is not the one it states")
        if public_key != key_for(size):
            problems.append(f"{where}: signed by key {public_key[:12]}…, not the operator key in force there "
                            f"({key_for(size)[:12]}…)")
        if prev is None:
            message = f"pmf-checkpoint-v1\n{store_id}\n{size}\n{root}\n{time}"
            if before is not None and before[1] is not None:
                problems.append(f"{where}: unchained, after a chained checkpoint")
        else:
            message = f"pmf-checkpoint-v2\n{store_id}\n{size}\n{root}\n{time}\n{prev}"
            if before is None or prev != hashlib.sha256(before[0].encode()).hexdigest():
                problems.append(f"{where}: it follows a checkpoint the store no longer holds")
        if not ed25519_verify(_hex(public_key), message.encode(), _hex(signature)):
            problems.append(f"{where}: its signature is not the operator key's over what it states")
        before = (signature, prev)
    if not checkpoints and events:
        problems.append(f"{len(events)} events and no signed checkpoint")
    elif checkpoints and checkpoints[-1][0] != len(events):
        problems.append(f"events #{checkpoints[-1][0] + 1}–#{len(events)} are under no signed checkpoint")
    # The tables pmf reads states from, held to what the log recorded.
    for pid, raw, version, status in rows:
        try:
            state = E.unpack_state(raw, texts)
        except Exception:  # noqa: BLE001 (an unreadable state is a finding)
            state = None
        digest = hashlib.sha256(b"pmf-partner-row-v1\0" + f"{status}\0{version or ''}\0".encode()
                                + (state or "").encode()).hexdigest()
        if pid not in recorded:
            problems.append(f"partner `{pid}` has a row but its lineage records no state")
        elif state is None or digest != recorded[pid]:
            problems.append(f"partner `{pid}`'s row is not the state, version and status its lineage last recorded")
    held = {r[0] for r in rows}
    for pid in sorted(set(recorded) - held):
        if not pid.startswith("@"):
            problems.append(f"partner `{pid}`'s lineage records a state, but its row is gone")
    for pid, seq, version, raw in stables:
        try:
            state = E.unpack_state(raw, texts)
        except Exception:  # noqa: BLE001
            state = ""
        digest = hashlib.sha256(b"pmf-stable-v1\0" + f"{seq}\0{version or ''}\0".encode()
                                + state.encode()).hexdigest()
        if digest not in listed.get(pid, ()):
            problems.append(f"partner `{pid}`'s stable version #{seq} is not one its lineage recorded")
    # Progress: what `apply` skips as done is what the lineage says each run ended in.
    claimed = {}
    for plan, pid, outcome in progress:
        claimed[(plan, pid)] = outcome
        if runs.get((plan, pid)) != outcome:
            problems.append(f"partner `{pid}`'s progress under plan {str(plan)[:12]} says `{outcome}`; its lineage "
                            f"says {runs.get((plan, pid)) and '`' + runs[(plan, pid)] + '`' or 'no run of it'}")
    for plan, pid in sorted(set(runs) - set(claimed)):
        problems.append(f"partner `{pid}`'s run of plan {plan[:12]} is in its lineage, but its progress row is gone")
    walked = {}
    for plan, _pid in runs:
        walked[plan] = walked.get(plan, 0) + 1
    for plan, n in sorted(walked.items()):
        if plan in marks and n > marks[plan][0]:
            problems.append(f"plan {plan[:12]} walked {n} partners, but was begun over {marks[plan][0]}")
    pinned = meta.get("operator_key")
    if successions and pinned != successions[-1][2]:
        problems.append(f"the store pins operator key {str(pinned)[:12]}…, not the last succession's "
                        f"{successions[-1][2][:12]}…")
    return problems, {"events": len(events), "checkpoints": len(checkpoints), "successions": len(successions),
                      "partners": len([p for p in positions if not p.startswith("@")]),
                      "plans": len(marks), "finished": sum(1 for m in marks.values() if m[1]), **decisions}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: audit.py STORE.db")
    problems, seen = audit(sys.argv[1])
    for p in problems[:50]:
        print(f"problem: {p}")
    if len(problems) > 50:
        print(f"… and {len(problems) - 50} more")
    if problems:
        return 1
    print(f"log intact (checked without pmf): {seen['events']} events of {seen['partners']} partners, "
          f"{seen['checkpoints']} signed checkpoints, {seen['successions']} operator key successions, "
          f"{seen['approvals']} approvals and {seen['reviews']} review decisions by trusted keys, "
          f"{seen['policies']} kept policies declaring the keys the log records, "
          f"{seen['plans']} plans marked begun ({seen['finished']} finished)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
