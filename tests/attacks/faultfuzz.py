#!/usr/bin/env python3
"""Every command that writes, run with its writes failing at a random byte: nothing the
user stored may be lost or half-written, and running the command again must finish it
as if nothing had failed.

A disk fills, a quota or a file size limit is reached, in the middle of any write.
`diskfull.sh` fills a tmpfs under one apply (it needs root); this script needs no root:
each trial runs one writer with RLIMIT_FSIZE set to a random size (SIGXFSZ ignored, as a
shell's `ulimit -f` with the signal trapped), so that every write past that offset fails
with EFBIG, wherever it falls: the store's database, its write-ahead log, its lock, the
operator key, a plan, an approvals file, a witness's checkpoint, a formatted policy. The
size is drawn below what the same command wrote when nothing failed, so the failure
lands inside its work. A quarter of the trials (`--memory`) limit the address space
instead (RLIMIT_AS, as `ulimit -v`, from 64 MB to 1 GB), so that an allocation or a
thread's start fails: pmf must say so and exit 2, never abort (exit 134) or panic. An
allocation that fails stops pmf at once, as a crash does (nothing can unwind out of an
allocator), so there alone a `.partial` file may stay beside an output: the next output
of that name removes it, as after a crash.

The writers: `apply` (onto a new store, of 2,500 partners in three batches onto a new
store, onto one holding partners, resuming the partners an approval was missing for, a
second plan), `apply` of a rollback plan and of a
replacement plan, `state import` of new partners, `review promote` and `abort`, `state
rekey`, `lineage checkpoint -o`, `plan -o`, `rollback -o`, `state import --replace -o`,
`approve -o` (adding a signature to an approvals file), `keygen -o` and `fmt`.

Each trial starts from a copy of one prepared directory (a store the fleet's plan was
applied to with two of three approvals, its plans and approvals). Checked:

- no crash (a signal, exit 101 or above, a panic), and the command exits as it does when
  nothing fails, or 2 (an I/O problem) with a message that names what failed;
- `pmf lineage verify` passes on the store the failure left (or there is none, where the
  command was to make it);
- every file the command writes holds what it held before, or (on success) a whole new
  one; no `.partial` file is left beside it;
- run again with nothing failing, the command exits as it did when nothing failed, and
  the store ends as it would have: the same partner states (`state export`) and, partner
  by partner, the same lineage events (times and hashes aside). No partner is walked twice.

  PMF=target/release/pmf PMF_SRC=$PWD python3 tests/attacks/faultfuzz.py --trials 200 --seed 1
"""

import argparse
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

AUTHORITIES = ("TSC", "ERC", "SCO")
STORE = os.path.join(".pmf", "state.db")
# Files of SQLite's and the store's own beside the database: not outputs of a command.
STORE_SIDE = {"state.db-wal", "state.db-shm", "state.db.lock"}


def limited(limit):
    """A preexec_fn: writes past `limit` bytes of any file fail with EFBIG; or, for a
    limit ("memory", n), allocations past n bytes of address space fail (RLIMIT_AS, as
    `ulimit -v` makes it)."""

    def pre():
        if isinstance(limit, tuple):
            resource.setrlimit(resource.RLIMIT_AS, (limit[1], limit[1]))
            return
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def pmf(d, args, limit=None, env=None):
    """Run pmf ARGS in `d` (writes failing past `limit` bytes); (rc, out, err)."""
    cmd = [C.pmf_bin()] + args
    try:
        p = subprocess.run(cmd, cwd=d, capture_output=True, stdin=subprocess.DEVNULL, timeout=120, env=env,
                           preexec_fn=limited(limit) if limit is not None else None)
        rc, o, e = p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as ex:
        rc, o, e = 124, (ex.stdout or b"").decode("utf-8", "replace"), (ex.stderr or b"").decode("utf-8", "replace")
    if C.crashed(rc, o, e):
        C.CRASHES.append((" ".join(args)[:300] + (f" (limit {limit})" if limit is not None else ""), rc,
                          (e or o)[-400:]))
    return rc, o, e


def must(d, args):
    rc, o, e = pmf(d, args)
    if rc not in (0, 3, 4):
        raise RuntimeError(f"pmf {' '.join(args)} failed rc={rc}: {e}")
    return o


def snapshot(d, store=True):
    """Every file under `d` (relative path -> bytes); without `store`, the store's database
    and its side files left out."""
    out = {}
    for dp, _dns, fns in os.walk(d):
        for n in fns:
            p = os.path.join(dp, n)
            rel = os.path.relpath(p, d)
            if not store and (rel == STORE or n in STORE_SIDE):
                continue
            with open(p, "rb") as fh:
                out[rel] = fh.read()
    return out


def files(d):
    """Every file under `d` but the store's own (relative path -> bytes)."""
    return snapshot(d, store=False)


def written(before, after):
    """The size of the largest file a command wrote (changed or made), from snapshots taken
    before and after it: writes past it are where its work is."""
    return max([len(b) for rel, b in after.items() if before.get(rel) != b] + [0])


def store_view(d):
    """What the store holds, times and hashes aside: its partners' states, and each partner's
    lineage events in order. None when there is no store."""
    db = os.path.join(d, STORE)
    if not os.path.exists(db):
        return None
    rc, states = C.export_state(db, cwd=d)
    per = {}
    for _g, p, _s, ev in C.lineage_normal(db):
        per.setdefault(p, []).append(ev)
    return {"export_rc": rc, "states": states, "lineage": per}


def prepare(d):
    """The directory every trial starts from: keys, the fleet's plan applied with two of three
    approvals (so partners completed, await an approval or a review), and the inputs of every
    writer."""
    fleet = C.fleet_dir()
    for a in AUTHORITIES:
        shutil.copy(os.path.join(fleet, "keys", a + ".key"), os.path.join(d, a + ".key"))
        os.chmod(os.path.join(d, a + ".key"), 0o600)
    policy = C.policy_path()
    observed = os.path.join(fleet, "observed.json")
    must(d, ["plan", "--policy", policy, "--partners", os.path.join(fleet, "partners.json"), "--target",
             os.path.join(fleet, "target.json"), "--observed", observed, "-o", "plan.json"])
    for a in ("TSC", "ERC"):
        must(d, ["approve", "plan.json", "--key", a + ".key", "-o", "approvals.json", "--yes"])
    shutil.copy(os.path.join(d, "approvals.json"), os.path.join(d, "approvals-all.json"))
    must(d, ["approve", "plan.json", "--key", "SCO.key", "-o", "approvals-all.json", "--yes"])
    must(d, ["apply", "plan.json", "--approvals", "approvals.json", "--observed", observed])
    # A second plan, from what the store holds, to another version: every authority signs.
    states = [json.loads(line) for line in must(d, ["state", "export", "--format", "ndjson"]).splitlines()]
    with open(os.path.join(d, "held.ndjson"), "w") as fh:
        for s in states:
            fh.write(json.dumps(s) + "\n")
    with open(os.path.join(d, "target2.json"), "w") as fh:
        json.dump({"version": "1.7.0"}, fh)
    must(d, ["plan", "--policy", policy, "--partners", "held.ndjson", "--target", "target2.json", "--store", STORE,
             "-o", "plan2.json"])
    for a in AUTHORITIES:
        must(d, ["approve", "plan2.json", "--key", a + ".key", "-o", "approvals2.json", "--yes"])
    shutil.copy(os.path.join(d, "approvals2.json"), os.path.join(d, "approvals2-erc.json"))
    # A rollback of a completed partner and a replacement of another, both approved by all.
    completed = [s["id"] for s in states if s.get("version") == "1.6.0"]
    must(d, ["rollback", completed[0], "--policy", policy, "-o", "rollback.json"])
    for a in AUTHORITIES:
        must(d, ["approve", "rollback.json", "--key", a + ".key", "-o", "rollback-approvals.json", "--yes"])
    moved = dict(next(s for s in states if s["id"] == completed[1]))
    moved["region"] = "ap" if moved.get("region") != "ap" else "eu"
    with open(os.path.join(d, "moved.ndjson"), "w") as fh:
        fh.write(json.dumps(moved) + "\n")
    must(d, ["state", "import", "moved.ndjson", "--policy", policy, "--replace", "--reason", "faultfuzz", "-o",
             "replace.json"])
    for a in AUTHORITIES:
        must(d, ["approve", "replace.json", "--key", a + ".key", "-o", "replace-approvals.json", "--yes"])
    # A plan of 2,500 partners: an apply of three batches, so that a failure can land
    # between two commits.
    big_partners, big_target, big_observed = C.make_fleet_inputs(d, 2500, suffix="-big")
    must(d, ["plan", "--policy", policy, "--partners", big_partners, "--target", big_target, "--observed",
             big_observed, "-o", "big-plan.json"])
    # New partners to import.
    base = json.load(open(os.path.join(fleet, "partners.json")))
    with open(os.path.join(d, "new.ndjson"), "w") as fh:
        for i, p in enumerate(base[:12]):
            q = dict(p)
            q["id"] = f"n-{i:03d}"
            fh.write(json.dumps(q) + "\n")
    # A witness's earlier checkpoint (the log extends it: exporting over it replaces it).
    must(d, ["lineage", "checkpoint", "-o", "witness.json"])
    # A policy to format, and the partners review holds.
    with open(policy) as fh:
        text = fh.read()
    with open(os.path.join(d, "messy.pmf"), "w") as fh:
        fh.write(text.replace("\n  ", "\n      ").replace(" {", "   {"))
    pending = json.loads(must(d, ["review", "list", "--format", "json"])).get("pending", [])
    return {"policy": policy, "observed": observed, "pending": [p["partner"] for p in pending],
            "completed": completed, "big_observed": big_observed}


def writers(ctx):
    """Each writer: (name, args, whether it needs the prepared store, the files it writes)."""
    policy, observed = ctx["policy"], ctx["observed"]
    out = [
        ("apply onto a new store", ["apply", "plan.json", "--approvals", "approvals.json", "--observed", observed],
         False, []),
        ("apply of 2,500 partners (three batches) onto a new store",
         ["apply", "big-plan.json", "--observed", ctx["big_observed"]], False, []),
        ("apply resuming partners an approval was missing for",
         ["apply", "plan.json", "--approvals", "approvals-all.json", "--observed", observed], True, []),
        ("apply of a second plan", ["apply", "plan2.json", "--approvals", "approvals2.json"], True, []),
        ("apply of a rollback plan", ["apply", "rollback.json", "--approvals", "rollback-approvals.json"], True, []),
        ("apply of a replacement plan", ["apply", "replace.json", "--approvals", "replace-approvals.json"], True, []),
        ("state import of new partners", ["state", "import", "new.ndjson", "--policy", policy], True, []),
        ("state rekey", ["state", "rekey", "--new-key", ".pmf/next.key", "--reason", "faultfuzz"], True,
         [".pmf/next.key"]),
        ("lineage checkpoint -o over a witness's earlier one", ["lineage", "checkpoint", "-o", "witness.json"], True,
         ["witness.json"]),
        ("plan -o over an earlier plan",
         ["plan", "--policy", policy, "--partners", "held.ndjson", "--target", "target2.json", "--store", STORE,
          "-o", "plan2.json"], True, ["plan2.json"]),
        ("rollback -o", ["rollback", ctx["completed"][2], "--policy", policy, "-o", "rollback.json"], True,
         ["rollback.json"]),
        ("state import --replace -o",
         ["state", "import", "moved.ndjson", "--policy", policy, "--replace", "--reason", "again", "-o",
          "replace.json"], True, ["replace.json"]),
        ("approve -o adding a signature", ["approve", "plan.json", "--key", "SCO.key", "-o", "approvals.json",
                                           "--yes"], False, ["approvals.json"]),
        ("keygen -o", ["keygen", "--authority", "TSC", "-o", "fresh.key"], False, ["fresh.key"]),
        ("fmt in place", ["fmt", "messy.pmf"], False, ["messy.pmf"]),
    ]
    for p in ctx["pending"][:2]:
        out.append((f"review promote {p}", ["review", "promote", p, "--key", "TSC.key", "--policy", policy,
                                            "--reason", "faultfuzz"], True, []))
        out.append((f"review abort {p}", ["review", "abort", p, "--key", "ERC.key", "--policy", policy,
                                          "--reason", "faultfuzz"], True, []))
    return out


def whole(path, data):
    """Whether `data` (the bytes of `path` after a success) is a whole file of its kind."""
    if path.endswith(".pmf"):
        return data.endswith(b"\n") and b"policy" in data
    try:
        json.loads(data)
        return True
    except ValueError:
        return False


def trial(base, work, rng, name, args, needs_store, outputs, tally, stats, memory):
    ref, hit = os.path.join(work, "ref"), os.path.join(work, "hit")
    for p in (ref, hit):
        shutil.rmtree(p, ignore_errors=True)
        shutil.copytree(base, p, symlinks=True)
        if not needs_store:
            shutil.rmtree(os.path.join(p, ".pmf"), ignore_errors=True)
    before = files(hit)
    untouched = snapshot(ref)
    ref_rc, _o, ref_err = pmf(ref, args)
    size = written(untouched, snapshot(ref))
    # Below what the command wrote when nothing failed, so that the failure lands in its work
    # (1 in 8 at a few bytes: the first write fails).
    if rng.random() < memory:
        # Address space from 64 MB to 1 GB (log-uniform): pmf reserves stacks and arenas
        # first, so most of these fail as it starts, some in its work.
        limit = ("memory", int(2 ** rng.uniform(26, 30)))
        what = f"{name} (memory limited to {limit[1] >> 20} MB)"
    else:
        limit = rng.randint(0, 256) if rng.random() < 0.125 else rng.randint(0, max(1, size))
        what = f"{name} (writes failing past {limit} of {size} bytes)"
    rc, _o, err = pmf(hit, args, limit=limit)
    stats["runs"] += 1
    problems = []
    if rc not in (ref_rc, 2):
        problems.append(f"exit {rc} (without the failure: {ref_rc}): {err.strip()[-300:]}")
    if rc == 2 and rc != ref_rc:
        stats["failed"] += 1
        stats["memory"] += isinstance(limit, tuple)
        stats["kinds"].add(name)
        last = err.strip().splitlines()[-1] if err.strip() else ""
        stats["messages"][last[:160]] = stats["messages"].get(last[:160], 0) + 1
        if not err.strip():
            problems.append("exit 2 with no message")
        elif not any(w in err for w in ("cannot", "failed", "disk", "File too large", "space", "error", "memory")):
            problems.append(f"exit 2 without naming what failed: {err.strip()[-300:]}")
    after = files(hit)
    stopped = "pmf: out of memory: allocating" in err
    for rel in sorted(set(after) - set(before)):
        if rel.endswith(".partial") and not stopped:
            problems.append(f"left `{rel}` behind")
    for rel in outputs:
        old, new = before.get(rel), after.get(rel)
        if new == old:
            continue
        if rc != ref_rc:
            problems.append(f"`{rel}` changed although the command failed (exit {rc})")
        elif new is None or not whole(rel, new):
            problems.append(f"`{rel}` is not a whole file ({0 if new is None else len(new)} bytes)")
    for rel in sorted(set(before) - set(after)):
        problems.append(f"`{rel}` is gone")
    if os.path.exists(os.path.join(hit, STORE)):
        vrc, doc = C.verify(STORE, cwd=hit)
        if vrc != 0:
            problems.append(f"lineage verify exit {vrc} after the failure: {json.dumps(doc)[:300]}")
    elif needs_store:
        problems.append("the store is gone")
    # Again with nothing failing: as if nothing had failed.
    again_rc, _o, again_err = pmf(hit, args) if rc != ref_rc else (rc, "", "")
    if again_rc != ref_rc:
        problems.append(f"run again, exit {again_rc} (without the failure: {ref_rc}): {again_err.strip()[-300:]}")
    if not outputs or needs_store:
        a, b = store_view(ref), store_view(hit)
        rekey = args[:2] == ["state", "rekey"]
        if (a is None) != (b is None):
            problems.append("a store exists on one side only")
        elif a is not None:
            if a["states"] != b["states"]:
                problems.append("the partners' states differ from a run with nothing failing")
            if a["lineage"] != b["lineage"] and not rekey:
                diff = sorted(p for p in set(a["lineage"]) | set(b["lineage"])
                              if a["lineage"].get(p) != b["lineage"].get(p))
                problems.append(f"the lineage of {len(diff)} partners differs from a run with nothing failing: "
                                f"{diff[:4]}")
            vrc, doc = C.verify(STORE, cwd=hit)
            if vrc != 0:
                problems.append(f"lineage verify exit {vrc} after the run again: {json.dumps(doc)[:300]}")
            walks, _terms = C.walk_counts(os.path.join(hit, STORE))
            ref_walks, _ = C.walk_counts(os.path.join(ref, STORE))
            twice = sorted(p for p, n in walks.items() if n > ref_walks.get(p, 0))
            if twice:
                problems.append(f"partners walked more often than without the failure: {twice[:5]}")
    tally.add(what, not problems, "held" if not problems else problems[0], "; ".join(problems[1:]))
    if problems:
        keep = C.finds_dir("faultfuzz")
        dest = os.path.join(keep, f"{len(os.listdir(keep)):03d}")
        shutil.copytree(hit, dest, symlinks=True)
        with open(os.path.join(dest, "WHAT.txt"), "w") as fh:
            fh.write(f"{what}\npmf {' '.join(args)}\nexit {rc}: {err}\nwithout the failure: {ref_rc}: {ref_err}\n"
                     + "\n".join(problems) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", help="only the writers whose name holds this text")
    ap.add_argument("--memory", type=float, default=0.25,
                    help="the share of trials whose memory (address space) is limited instead")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    d = C.scratch("faultfuzz")
    base = os.path.join(d, "base")
    os.makedirs(base)
    ctx = prepare(base)
    choices = [w for w in writers(ctx) if not a.only or a.only in w[0]]
    tally = C.Tally("faultfuzz")
    stats = {"runs": 0, "failed": 0, "kinds": set(), "messages": {}, "memory": 0}
    t0 = time.monotonic()
    # Every writer once, then at random.
    order = choices + [rng.choice(choices) for _ in range(max(0, a.trials - len(choices)))]
    for name, args, needs_store, outputs in order[:max(a.trials, 1)]:
        trial(base, d, rng, name, args, needs_store, outputs, tally, stats, a.memory)
    print(f"{stats['runs']} writers run with writes failing or memory limited, {stats['failed']} of them failed by "
          f"it (exit 2; {stats['memory']} for memory) and "
          f"were run again; {len(stats['kinds'])} of {len(choices)} kinds of writer failed at least once; "
          f"{time.monotonic() - t0:.0f} s")
    if os.environ.get("SHOW_MESSAGES"):
        for m, n in sorted(stats["messages"].items(), key=lambda kv: -kv[1]):
            print(f"{n:4d}  {m}")
    never = sorted({c[0] for c in choices} - stats["kinds"])
    if never:
        print(f"never failed: {', '.join(never)}")
    sys.exit(tally.finish({"seed": a.seed, "trials": a.trials, "runs": stats["runs"], "failed": stats["failed"],
                           "kinds_failed": sorted(stats["kinds"])}))


if __name__ == "__main__":
    main()
