#!/usr/bin/env python3
"""Mutation fuzzing of the files an operator or a signer is handed: plans, approvals files,
witnesses' checkpoints, and the partner, target and observed files plans are made from.

A plan file travels from whoever planned to every signer and back to whoever applies; an
approvals file and a checkpoint are read from wherever they were kept. Each may be edited,
cut short or replaced by anyone on the way. Whatever they hold, pmf must answer with a
diagnostic (exit 1 or 2) or do its job, never crash (exit >= 101, a signal, a panic) or
hang. `approvals.py` edits them by hand, with a purpose; this script edits them at random:
bytes (a flip, a span cut or repeated, a JSON token or a huge number inserted) and values
(a field dropped, added, or given a value of another type, a long or control-character
text, deep nesting).

On the fleet story's store (see storefuzz.py) each mutant runs:
- a migration plan and a rollback plan: `plan show` (text and JSON), `plan diff`, `approve`
  and `apply` (on a copy of the store);
- an approvals file: `apply` of the plan it approves;
- a witness's checkpoint: `lineage verify --checkpoint` and `lineage prove --since`;
- a partner, target or observed file: `plan` against the store, then `apply` of that plan.

Held: the control (every command on the unedited files) succeeds; no command crashed or
ran past --slow seconds; and no apply of a mutated plan or approvals file was accepted
with fewer approvals than its partners need (`pmf lineage verify` holds the store after
each accepted apply).

  python3 planfuzz.py --mutants 400 --seed 1
"""

import json
import os
import random
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import storefuzz as S  # noqa: E402

TOKENS = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"null", b"true", b"1e999", b"-0", b"18446744073709551616",
          b'"\\ud800"', b'"\\u0000"', b"\xff", b"\x00", b"[" * 200, b"{\"a\":" * 50]


def byte_mutant(rng, data):
    b = bytearray(data)
    k = rng.randrange(6)
    i = rng.randrange(len(b) + 1)
    if k == 0 and b:
        b[min(i, len(b) - 1)] ^= 1 << rng.randrange(8)
    elif k == 1:
        del b[i:i + rng.choice([1, 2, 10, 100, 5000])]
    elif k == 2:
        j = min(len(b), i + rng.choice([1, 10, 100, 2000]))
        b[i:i] = b[i:j] * rng.choice([1, 2, 50])
    elif k == 3:
        b[i:i] = rng.choice(TOKENS)
    elif k == 4:
        del b[i:]
    else:
        j = rng.randrange(len(b) + 1)
        b[i:i] = b"\n" if rng.randrange(2) else b" "
        b[j:j] = rng.choice(TOKENS)
    return bytes(b)


def weird_value(rng):
    return rng.choice([None, True, 0, -1, 2 ** 63, -(2 ** 63) - 1, 1e308, 0.5, "", "x" * 100000,
                       "\x1b[2J", "\u202e", "p-012", "../../etc/passwd", "ed25519:" + "00" * 32,
                       [], {}, [None] * 3, {"a": {"b": {"c": []}}}, "2026-13-45T99:99:99Z", "00" * 32])


def paths(v, prefix=()):
    """Every path into a JSON value (lists capped for speed)."""
    out = [prefix]
    if isinstance(v, dict):
        for k, x in v.items():
            out += paths(x, prefix + (k,))
    elif isinstance(v, list):
        for i, x in enumerate(v[:6]):
            out += paths(x, prefix + (i,))
    return out


def value_mutant(rng, data, ndjson):
    """Parse, edit a value at a random path, write back (a line at a time for NDJSON-like plans)."""
    try:
        if ndjson:
            lines = data.split(b"\n")
            n = rng.randrange(len(lines))
            doc = json.loads(lines[n]) if lines[n].strip() else None
        else:
            doc = json.loads(data)
    except ValueError:
        return byte_mutant(rng, data)
    if doc is None:
        return byte_mutant(rng, data)
    ps = [p for p in paths(doc) if p]
    if not ps:
        return byte_mutant(rng, data)
    p = rng.choice(ps)
    parent = doc
    for k in p[:-1]:
        parent = parent[k]
    k = rng.randrange(4)
    if k == 0 and isinstance(parent, dict):
        del parent[p[-1]]
    elif k == 1 and isinstance(parent, dict):
        parent["unknown_" + str(rng.randrange(100))] = weird_value(rng)
    else:
        parent[p[-1]] = weird_value(rng)
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=rng.randrange(2) == 0).encode()
    if ndjson:
        lines[n] = text
        return b"\n".join(lines)
    return text


def main():
    args = C.fuzz_arguments(__doc__)
    rng = random.Random(args.seed)
    d = C.scratch("planfuzz")
    base = S.build(d)
    pmf = C.pmf_bin()
    policy = C.policy_path()
    for name in ("target.json", "observed.json"):
        shutil.copy(os.path.join(C.fleet_dir(), name), os.path.join(base, name))
    key = ["--operator-key", ".pmf/operator-2.key"]
    # What each kind of file is, and the commands run on a mutant M of it.
    kinds = {
        "plan": ("again.json", True, [
            ["plan", "show", "M", "--limit", "0"],
            ["plan", "show", "M", "--format", "json"],
            ["plan", "diff", "again.json", "M"],
            ["approve", "M", "--key", "TSC.key", "-o", "fuzz-approvals.json", "--yes"],
            ["apply", "M", "--approvals", "again-approvals.json"] + key,
        ]),
        "rollback plan": ("rb.json", True, [
            ["plan", "show", "M"],
            ["approve", "M", "--key", "TSC.key", "-o", "fuzz-approvals.json", "--yes"],
            ["apply", "M", "--approvals", "rb-approvals.json"] + key,
        ]),
        "approvals": ("again-approvals.json", False, [
            ["apply", "again.json", "--approvals", "M"] + key,
        ]),
        "checkpoint": ("witness.json", False, [
            ["lineage", "verify", "--checkpoint", "M"],
            ["lineage", "prove", "p-012", "--since", "M"],
        ]),
        # The inputs of a plan: what an operator is sent to plan from.
        "partner file": ("current.ndjson", True, [
            ["plan", "--policy", policy, "--partners", "M", "--target", "target.json", "--observed",
             "observed.json", "--store", ".pmf/state.db", "-o", "fz.json"],
            ["apply", "fz.json"] + key,
        ]),
        "target file": ("target.json", False, [
            ["plan", "--policy", policy, "--partners", "current.ndjson", "--target", "M", "--observed",
             "observed.json", "--store", ".pmf/state.db", "-o", "fz.json"],
            ["apply", "fz.json"] + key,
        ]),
        "observed file": ("observed.json", False, [
            ["plan", "--policy", policy, "--partners", "current.ndjson", "--target", "target.json", "--observed",
             "M", "--store", ".pmf/state.db", "-o", "fz.json"],
            ["apply", "fz.json"] + key,
        ]),
    }
    T = C.Tally("planfuzz")

    def fresh():
        w = os.path.join(d, "m")
        shutil.rmtree(w, ignore_errors=True)
        shutil.copytree(base, w, symlinks=True)
        return w

    # The control: the unedited files. The rollback plan was applied in the story: a
    # re-run reports it done (exit 0).
    bad = []
    for kind, (name, _nd, cmds) in kinds.items():
        w = fresh()
        shutil.copy(os.path.join(w, name), os.path.join(w, "M"))
        for cmd in cmds:
            rc, o, e, _ = C.run([pmf] + cmd, cwd=w, timeout=args.slow)
            if rc not in (0, 3, 4):
                bad.append(f"{kind}: pmf {' '.join(cmd[:3])}: exit {rc}: {e.strip()[-200:]}")
    T.add("control: every command succeeds on the unedited files", not bad,
          f"{sum(len(c) for _n, _x, c in kinds.values()) - len(bad)} runs succeeded", "; ".join(bad))

    codes, slow, unverified, crashes_before, runs = {}, [], [], len(C.CRASHES), 0
    for m in range(args.mutants):
        kind = rng.choice(list(kinds))
        name, ndjson, cmds = kinds[kind]
        w = fresh()
        data = open(os.path.join(w, name), "rb").read()
        mutant = byte_mutant(rng, data) if rng.randrange(2) else value_mutant(rng, data, ndjson)
        with open(os.path.join(w, "M"), "wb") as fh:
            fh.write(mutant)
        for cmd in cmds:
            rc, o, e, _ = C.run([pmf] + cmd, cwd=w, timeout=args.slow)
            runs += 1
            label = f"{kind}: {' '.join(cmd[:2])}"
            codes.setdefault(label, {}).setdefault(rc, 0)
            codes[label][rc] += 1
            if rc == 124:
                slow.append((m, kind, cmd))
            if cmd[0] == "apply" and rc in (0, 3, 4):
                vrc, doc = C.verify(os.path.join(w, ".pmf", "state.db"), cwd=w)
                if vrc != 0:
                    unverified.append((m, kind, str(doc.get("problems", doc))[:300]))
            if len(C.CRASHES) > crashes_before:
                crashes_before = len(C.CRASHES)
                keep = C.finds_dir("planfuzz")
                dest = os.path.join(keep, f"{kind.replace(' ', '-')}-{args.seed}-{m}")
                os.makedirs(dest, exist_ok=True)
                shutil.copy(os.path.join(w, "M"), dest)
                print(f"  crash on mutant {m} ({kind}): pmf {' '.join(cmd)} -> kept in {dest}")
    T.add(f"{args.mutants} mutated files: no crash", not C.CRASHES, f"{runs} runs, {len(C.CRASHES)} crashed")
    T.add(f"no command ran past {args.slow:.0f} s", not slow, f"{len(slow)} slow",
          "; ".join(f"mutant {m} ({k}): pmf {' '.join(c[:3])}" for m, k, c in slow[:5]))
    T.add("every apply a mutated file was accepted for leaves a store that verifies", not unverified,
          f"{len(unverified)} did not", "; ".join(f"mutant {m} ({k}): {p}" for m, k, p in unverified[:3]))
    for k, v in sorted(codes.items()):
        print(f"  {k:<28} exit codes: " + ", ".join(f"{rc}: {n}" for rc, n in sorted(v.items())))
    C.CRASHES.clear()  # each was counted above
    return T.finish({"mutants": args.mutants, "seed": args.seed, "codes": {k: {str(a): b for a, b in v.items()}
                                                                          for k, v in codes.items()}})


if __name__ == "__main__":
    sys.exit(main())
