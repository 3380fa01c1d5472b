#!/usr/bin/env python3
"""Mutation fuzzing of the store file: every command that reads or writes a store, on
stores edited at random behind pmf's back.

A store is a file anyone with write access can edit, and a copy of it is what an
auditor is handed: whatever it holds, pmf must answer with a diagnostic (exit 1 or 2),
never a crash (exit >= 101, a signal, a panic), a hang or an abort on an allocation
sized by a corrupt length. `tamper.py` holds the store to its lineage with attacks
written by hand; this script throws random ones at every reader and writer.

The store is the fleet story's (a migration with approvals, reviews waiting, a
rollback, a refused plan, a checkpoint, a replaced operator key). Each mutant edits
1-3 cells or rows of it (a byte flipped, a blob cut or grown, a length made huge, a
value of another type, a text made long or invalid UTF-8, a row deleted or
duplicated), then runs `lineage verify`, `lineage show`, `lineage prove`,
`lineage checkpoint`, `status`, `state export`, `review list`, `plan` against it,
`rollback`, `review abort` and `review promote`, `apply` of an approved plan and
`state import`.

Held: no command crashed or ran past --slow seconds, and `lineage verify` passed no
mutant whose log `audit.py` (an audit that trusts no pmf binary) finds broken. Reported,
not failed: how many
mutants `lineage verify` passed (an edit of a cell the log does not cover, such as the
lock holder's name, or one that leaves the same value).

  python3 storefuzz.py --mutants 400 --seed 1
"""

import json
import os
import random
import shutil
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audit as A  # noqa: E402
import common as C  # noqa: E402


def audited(db):
    """What the independent audit (audit.py) finds wrong with the log of `db`."""
    try:
        return A.audit(db)[0]
    except Exception as ex:  # noqa: BLE001 (a log it cannot read is a finding)
        return [f"the audit could not read the log: {type(ex).__name__}: {ex}"]


def build(d):
    """The fleet story's store in d/base (and the inputs its commands take)."""
    f = C.fleet_dir()
    pmf = C.pmf_bin()
    base = os.path.join(d, "base")
    os.makedirs(base)

    def ok(args, codes=(0,)):
        rc, o, e, _ = C.run([pmf] + args, cwd=base)
        assert rc in codes, (args, rc, e)

    for a in ("TSC", "ERC", "SCO"):
        shutil.copy(os.path.join(f, "keys", a + ".key"), os.path.join(base, a + ".key"))
        os.chmod(os.path.join(base, a + ".key"), 0o600)
    policy = os.path.join(f, "policy.pmf")
    inputs = ["--policy", policy, "--partners", os.path.join(f, "partners.json"),
              "--target", os.path.join(f, "target.json"), "--observed", os.path.join(f, "observed.json")]
    ok(["plan"] + inputs + ["-o", "plan.json"])
    for a in ("TSC", "ERC"):
        ok(["approve", "plan.json", "--key", a + ".key", "-o", "approvals.json", "--yes"])
    ok(["apply", "plan.json", "--approvals", "approvals.json", "--observed", os.path.join(f, "observed.json")], (0, 3, 4))
    ok(["rollback", "p-001", "--policy", policy, "-o", "rb.json"])
    ok(["approve", "rb.json", "--key", "TSC.key", "-o", "rb-approvals.json", "--yes"])
    ok(["apply", "rb.json"], (1,))  # refused (no approvals): recorded in @refused
    ok(["apply", "rb.json", "--approvals", "rb-approvals.json"])
    ok(["lineage", "checkpoint", "-o", "witness.json"])
    ok(["state", "rekey", "--new-key", ".pmf/operator-2.key", "--reason", "fuzz"])
    # A second plan against the store, approved by all three: what `apply` runs on a mutant.
    rc, o, e, _ = C.run([pmf, "state", "export", "--format", "ndjson"], cwd=base)
    assert rc == 0, e
    with open(os.path.join(base, "current.ndjson"), "w") as fh:
        fh.write(o)
    ok(["plan", "--policy", policy, "--partners", "current.ndjson", "--target", os.path.join(f, "target.json"),
        "--store", ".pmf/state.db", "-o", "again.json"])
    for a in ("TSC", "ERC", "SCO"):
        ok(["approve", "again.json", "--key", a + ".key", "-o", "again-approvals.json", "--yes"])
    first = json.load(open(os.path.join(f, "partners.json")))[0]
    first["id"] = "fuzz-new"
    with open(os.path.join(base, "new.ndjson"), "w") as fh:
        fh.write(json.dumps(first) + "\n")
    # Everything in the write-ahead log goes into the file: mutants edit the file alone.
    c = sqlite3.connect(os.path.join(base, ".pmf", "state.db"))
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.close()
    return base


def cells(db):
    """Every (table, rowid, column, value) of the store, and every (table, rowid)."""
    c = sqlite3.connect(db)
    out, rows = [], []
    for (t,) in c.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'").fetchall():
        cols = [r[1] for r in c.execute(f"PRAGMA table_info({t})")]
        try:
            data = c.execute(f"SELECT rowid, * FROM {t}").fetchall()
        except sqlite3.OperationalError:  # WITHOUT ROWID
            data = [(None,) + r for r in c.execute(f"SELECT * FROM {t}").fetchall()]
        for r in data:
            rows.append((t, cols, r))
            for i, col in enumerate(cols):
                out.append((t, cols, r, col, r[i + 1]))
    c.close()
    return out, rows


def mutate_value(rng, v):
    """A value edited the way a careless or hostile hand would: same type first, then others."""
    if isinstance(v, bytes) and v:
        b = bytearray(v)
        k = rng.randrange(9)
        i = rng.randrange(len(b))
        if k == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif k == 1:
            b[i] = rng.choice([0, 0x7F, 0x80, 0xFF])
        elif k == 2:
            del b[i:]
        elif k == 3:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif k == 4:  # a length or count made huge (varint)
            b[i:i + 1] = b"\xff" * rng.randrange(1, 11) + b"\x7f"
        elif k == 5:
            del b[i:i + rng.randrange(1, 32)]
        elif k == 6:
            j = rng.randrange(len(b))
            b[i], b[j] = b[j], b[i]
        elif k == 7:
            b = bytearray(rng.randrange(256) for _ in range(len(b)))
        else:
            b = b + b
        return bytes(b)
    if isinstance(v, str) and v:
        k = rng.randrange(7)
        i = rng.randrange(len(v))
        if k == 0:
            return v[:i] + chr(rng.choice([0, 0x1b, 0x7f, 0x202e, ord("\"")])) + v[i + 1:]
        if k == 1:
            return v[:i]
        if k == 2:
            return v + "x" * rng.choice([1, 100, 1 << 20])
        if k == 3:
            return v.encode()[:i] + b"\xff\xfe"  # not UTF-8, stored as a blob
        if k == 4:
            return str(rng.choice([-1, 0, 1, 2 ** 63 - 1, 10 ** 30]))
        if k == 5:
            return v[::-1]
        return ""
    if isinstance(v, int):
        return rng.choice([0, -1, 1, v + 1, v - 1, 2 ** 63 - 1, -(2 ** 63), v * 1000, rng.randrange(-1000, 1000)])
    if isinstance(v, float):
        return rng.choice([float("nan"), float("inf"), -1.0, 1e308, 0.0])
    return rng.choice([None, 0, "", b"", b"\x00" * 40, "x" * 64, -1, 2 ** 62])


def mutate(rng, db, all_cells, all_rows):
    """Apply 1-3 edits to db; returns what was done."""
    did = []
    c = sqlite3.connect(db)
    c.execute("PRAGMA foreign_keys=OFF")
    for _ in range(rng.randrange(1, 4)):
        k = rng.randrange(10)
        try:
            if k < 8:
                t, cols, r, col, v = rng.choice(all_cells)
                nv = mutate_value(rng, v) if rng.randrange(6) else mutate_value(rng, rng.choice([None, 5, "t", b"b"]))
                if r[0] is not None:
                    c.execute(f"UPDATE {t} SET \"{col}\"=? WHERE rowid=?", (nv, r[0]))
                else:
                    where = " AND ".join(f"\"{x}\" IS ?" for x in cols)
                    c.execute(f"UPDATE {t} SET \"{col}\"=? WHERE {where}", (nv,) + tuple(r[1:]))
                did.append(f"{t}.{col} of row {r[0]}: {short(v)} -> {short(nv)}")
            elif k == 8:
                t, cols, r = rng.choice(all_rows)
                if r[0] is not None:
                    c.execute(f"DELETE FROM {t} WHERE rowid=?", (r[0],))
                else:
                    where = " AND ".join(f"\"{x}\" IS ?" for x in cols)
                    c.execute(f"DELETE FROM {t} WHERE {where}", tuple(r[1:]))
                did.append(f"{t}: row {r[0]} deleted")
            else:
                t, cols, r = rng.choice(all_rows)
                vals = list(r[1:])
                i = rng.randrange(len(vals))
                vals[i] = mutate_value(rng, vals[i])
                c.execute(f"INSERT OR REPLACE INTO {t} VALUES ({','.join('?' * len(vals))})", vals)
                did.append(f"{t}: row {r[0]} copied with {cols[i]} edited")
        except sqlite3.Error as ex:
            did.append(f"(edit refused by SQLite: {ex})")
    c.commit()
    c.close()
    return did


def short(v):
    s = repr(v)
    return s if len(s) < 40 else s[:37] + "..."


def commands(f):
    policy = os.path.join(f, "policy.pmf")
    inputs = ["--policy", policy, "--partners", os.path.join(f, "partners.json"),
              "--target", os.path.join(f, "target.json")]
    return [
        ["lineage", "verify", "--format", "json"],
        ["lineage", "verify", "--checkpoint", "witness.json"],
        ["lineage", "show"],
        ["lineage", "show", "p-012", "--format", "json"],
        ["lineage", "prove", "p-012"],
        ["lineage", "checkpoint", "-o", "w2.json"],
        ["status", "--format", "json"],
        ["state", "export", "--format", "ndjson"],
        ["review", "list"],
        ["plan"] + inputs + ["--store", ".pmf/state.db", "-o", "p2.json"],
        ["rollback", "p-003", "--policy", policy, "-o", "rb2.json"],
        ["review", "abort", "p-007", "--key", "TSC.key", "--policy", policy, "--reason", "fuzz",
         "--operator-key", ".pmf/operator-2.key"],
        ["review", "promote", "p-005", "--key", "TSC.key", "--policy", policy, "--reason", "fuzz",
         "--operator-key", ".pmf/operator-2.key"],
        ["apply", "again.json", "--approvals", "again-approvals.json", "--operator-key", ".pmf/operator-2.key"],
        ["state", "import", "new.ndjson", "--policy", policy, "--operator-key", ".pmf/operator-2.key"],
    ]


def main():
    args = C.fuzz_arguments(__doc__)
    rng = random.Random(args.seed)
    d = C.scratch("storefuzz")
    base = build(d)
    db = os.path.join(base, ".pmf", "state.db")
    all_cells, all_rows = cells(db)
    T = C.Tally("storefuzz")
    cmds = commands(C.fleet_dir())
    # The control: on the store as pmf left it, every command does its job.
    control = os.path.join(d, "control")
    shutil.copytree(base, control, symlinks=True)
    bad = [f"audit.py: {why}" for why in audited(os.path.join(control, ".pmf", "state.db"))]
    for cmd in cmds:
        rc, o, e, _ = C.run([C.pmf_bin()] + cmd, cwd=control, timeout=args.slow)
        if rc not in (0, 3, 4):
            bad.append(f"pmf {' '.join(cmd[:3])}: exit {rc}: {e.strip()[-200:]}")
    T.add("control: every command succeeds on the unedited store, and audit.py finds its log intact", not bad,
          f"{len(cmds) - len(bad)} of {len(cmds)}",
          "; ".join(bad))
    crashes_before = 0
    codes = {}
    passed_verify, slow, runs, wrote_on_refused = 0, [], 0, 0
    audit_failed, missed = 0, []
    for m in range(args.mutants):
        work = os.path.join(d, "m")
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work, symlinks=True)
        did = mutate(rng, os.path.join(work, ".pmf", "state.db"), all_cells, all_rows)
        # The log as an auditor without pmf sees it, before any command writes.
        found = audited(os.path.join(work, ".pmf", "state.db"))
        audit_failed += bool(found)
        verdict = {}
        for cmd in cmds:
            rc, o, e, secs = C.run([C.pmf_bin()] + cmd, cwd=work, timeout=args.slow)
            runs += 1
            verdict[cmd[0] + " " + cmd[1]] = rc
            codes.setdefault(cmd[0] + " " + cmd[1], {}).setdefault(rc, 0)
            codes[cmd[0] + " " + cmd[1]][rc] += 1
            if rc == 124:
                slow.append((m, cmd, did))
            if cmd[:2] == ["lineage", "verify"] and cmd[2] == "--format" and rc == 0 and found:
                # pmf vouched for a log an audit that trusts no pmf finds broken.
                missed.append((m, did, found[0]))
            if cmd[:2] == ["lineage", "verify"] and cmd[2] == "--format" and rc == 0:
                passed_verify += 1
                if os.environ.get("SHOW_PASSED"):
                    print(f"  verify passed mutant {m}: {'; '.join(did)}")
            if cmd[0] in ("apply", "state", "review") and cmd[1] in ("again.json", "import", "abort", "promote") \
                    and rc in (0, 3, 4) \
                    and verdict.get("lineage verify") == 1:
                wrote_on_refused += 1
                if os.environ.get("SHOW_WRITES"):
                    print(f"  wrote on a store verify refuses: mutant {m}: pmf {' '.join(cmd[:2])} exit {rc} after {'; '.join(did)}")
            if len(C.CRASHES) > crashes_before:
                crashes_before = len(C.CRASHES)
                keep = C.finds_dir("storefuzz")
                dest = os.path.join(keep, f"mutant-{args.seed}-{m}")
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(work, dest, symlinks=True)
                print(f"  crash on mutant {m} ({'; '.join(did)}): pmf {' '.join(cmd)} -> kept in {dest}")
    T.add(f"{args.mutants} mutated stores x {len(cmds)} commands: no crash", not C.CRASHES,
          f"{runs} runs, {len(C.CRASHES)} crashed")
    T.add("lineage verify passed no log the independent audit (audit.py) finds broken", not missed,
          f"{audit_failed} of {args.mutants} mutants broke the log as the audit sees it; verify passed "
          f"{len(missed)} of them",
          "; ".join(f"mutant {m}: {'; '.join(did)}: {why}" for m, did, why in missed[:5]))
    T.add(f"no command ran past {args.slow:.0f} s", not slow, f"{len(slow)} slow",
          "; ".join(f"mutant {m}: pmf {' '.join(c[:3])} ({'; '.join(did)})" for m, c, did in slow[:5]))
    for k, v in sorted(codes.items()):
        print(f"  pmf {k:<18} exit codes: " + ", ".join(f"{rc}: {n}" for rc, n in sorted(v.items())))
    print(f"lineage verify passed {passed_verify} of {args.mutants} mutants (edits the log does not cover, or no change)")
    print(f"writes made on a store verify refuses: {wrote_on_refused} (a writer checks the log's root and what it reads; "
          "SHOW_WRITES=1 lists them, SHOW_PASSED=1 the mutants verify passed)")
    C.CRASHES.clear()  # each was counted above
    return T.finish({"mutants": args.mutants, "seed": args.seed, "verify_passed": passed_verify,
                     "writes_on_refused": wrote_on_refused})


if __name__ == "__main__":
    sys.exit(main())
