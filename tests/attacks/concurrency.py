#!/usr/bin/env python3
"""Concurrent applies on one store.

  PMF=path/to/pmf python3 concurrency.py [--partners 4000] [--rounds 3]

Scenarios (each on its own store, repeated --rounds times):
  same-fresh   8 applies of one plan started at once on a store that does not exist yet
  same-warm    8 applies of one plan at once on an existing store
  diff-fresh   8 applies of 8 different plans (disjoint partners) at once, new store
  diff-warm    8 applies of 8 different plans at once, existing store
  overlap-warm 8 applies of 8 different plans over the same partners (8 target versions)
  readers      `lineage verify`, `status`, `review list` over and over while an apply writes:
               each must read one commit's store (no false tamper report, no failure)
Expected: one proceeds at a time; the others fail fast (exit 2) naming the
holder, or are refused as stale (exit 1: another plan changed their partners
first), or they serialize. Held when: no crash, every refusal is one of those
two, no partner walked twice, the lineage verifies, and after re-running the
refused ones one by one, the lineage still verifies and the store equals a
sequential run (same and diff scenarios; overlap has no single sequential
order). Exit 1 when any scenario did not hold.
"""

import argparse
import json
import random
import re
import os
import subprocess
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


def apply_cmd(d, plan, store):
    return [C.pmf_bin(), "apply", plan, "--store", store, "--observed", os.path.join(d, "observed_all.json"),
            "--approvals", os.path.join(d, os.path.basename(plan) + ".appr")]


def launch_all(cmds, cwd):
    procs = []
    t0 = time.monotonic()
    for c in cmds:
        procs.append((subprocess.Popen(c, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), time.monotonic()))
    out = []
    for p, ts in procs:
        try:
            _, err = p.communicate(timeout=600)
        except subprocess.TimeoutExpired:
            C.kill_pid(p.pid)
            _, err = p.communicate()
        out.append({"rc": p.returncode, "secs": round(time.monotonic() - ts, 2), "err": err.decode("utf-8", "replace").strip()})
    return out, time.monotonic() - t0


def classify(r):
    if r["rc"] in (0, 3, 4):
        return "proceeded"
    e = r["err"]
    if r["rc"] == 2 and ("locked by pid" in e or re.search(r"in use by `pmf \w+` \(pid \d+", e)):
        return "refused: lock holder named"
    if "database is locked" in e or "busy" in e.lower():
        return "refused: `database is locked` (holder not named)"
    if r["rc"] == 1 and "stale" in e:
        return "refused: plan stale (another plan applied first)"
    if "already exists" in e:
        return "failed: schema race (" + e.split("store:")[-1].strip()[:60] + ")"
    return f"other rc={r['rc']}: {e[:100]}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partners", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    d = C.scratch("concurrency")
    pmf = C.pmf_bin()
    # one plan over all partners, and 8 plans over disjoint eighths
    pp, tp, op = C.make_fleet_inputs(d, a.partners)
    os.rename(op, os.path.join(d, "observed_all.json"))
    op = os.path.join(d, "observed_all.json")
    for auth in ("TSC", "ERC"):
        shutil.copy(os.path.join(C.fleet_dir(), "keys", auth + ".key"), os.path.join(d, auth + ".key"))
    lines = open(pp).read().splitlines()
    plans = {"same": C.plan(d, pp, tp, op, "plan_all.json")}
    eighth = len(lines) // 8
    for i in range(8):
        part = os.path.join(d, f"part{i}.ndjson")
        open(part, "w").write("\n".join(lines[i * eighth:(i + 1) * eighth]) + "\n")
        plans[f"p{i}"] = C.plan(d, part, tp, op, f"plan_{i}.json", subset=True)
    tgt = json.load(open(tp))
    for i in range(8):
        t = json.loads(json.dumps(tgt))
        t["all"]["version"] = f"1.6.{i + 1}"
        tpi = os.path.join(d, f"target_v{i}.json")
        json.dump(t, open(tpi, "w"))
        plans[f"v{i}"] = C.plan(d, pp, tpi, op, f"plan_v{i}.json")
    warm = os.path.join(d, "warm.ndjson")
    open(warm, "w").write(lines[0].replace('"id":"', '"id":"warm-', 1) + "\n")
    plans["warm"] = C.plan(d, warm, tp, op, "plan_warm.json", subset=True)
    for p in plans.values():
        for auth in ("TSC", "ERC"):
            C.run([pmf, "approve", p, "--key", os.path.join(d, auth + ".key"), "-o", p + ".appr", "--yes"], cwd=d)

    def new_store(name, warm_it):
        s = os.path.join(d, name + ".db")
        for suf in ("", "-wal", "-shm"):
            if os.path.exists(s + suf):
                os.remove(s + suf)
        if warm_it:
            rc, o, e, _ = C.run(apply_cmd(d, plans["warm"], s), cwd=d)
            assert rc in (0, 3, 4), e
        return s

    def last_counts(store):
        """The outcome counts the store's lineage ends with (in any order of the applies, the
        same partners completed or fell back: the same counts)."""
        every = C.illumination(store)
        return every[-1] if every else ""

    # sequential references, fresh and warm
    refs = {}
    counts = {}
    for w in ("fresh", "warm"):
        s = new_store(f"ref_same_{w}", w == "warm")
        C.run(apply_cmd(d, plans["same"], s), cwd=d)
        refs[("same", w)] = C.export_state(s, d)[1]
        counts[("same", w)] = last_counts(s)
        s = new_store(f"ref_diff_{w}", w == "warm")
        for i in range(8):
            C.run(apply_cmd(d, plans[f"p{i}"], s), cwd=d)
        refs[("diff", w)] = C.export_state(s, d)[1]
        counts[("diff", w)] = last_counts(s)

    report = []
    T = C.Tally("concurrency")
    for rnd in range(a.rounds):
        for scen in ("same-fresh", "same-warm", "diff-fresh", "diff-warm", "overlap-warm"):
            kind, w = scen.split("-")
            store = new_store(f"{scen}-{rnd}", w == "warm")
            key = {"same": lambda i: "same", "diff": lambda i: f"p{i}", "overlap": lambda i: f"v{i}"}[kind]
            cmds = [apply_cmd(d, plans[key(i)], store) for i in range(8)]
            res, wall = launch_all(cmds, d)
            classes = {}
            for r in res:
                k = classify(r)
                classes[k] = classes.get(k, 0) + 1
            refused_secs = [r["secs"] for r in res if r["rc"] not in (0, 3, 4)]
            walks, terms = C.walk_counts(store) if os.path.exists(store) else ({}, {})
            twice = sum(n > 1 for n in walks.values())
            vrc, vdoc = C.verify(store, d) if os.path.exists(store) else (None, {})
            # finish: re-run every command one by one (the plans are idempotent for final outcomes)
            leftover_lock = None
            for i, (c, r) in enumerate(zip(cmds, res)):
                if r["rc"] not in (0, 3, 4):
                    rc, o, e, _ = C.run(c, cwd=d)
                    if rc == 2 and "no longer running" in e:
                        leftover_lock = e.strip()[:150]
                        C.run([pmf, "state", "unlock", "--store", store], cwd=d)
                        rc, o, e, _ = C.run(c, cwd=d)
            exp = C.export_state(store, d)[1]
            walks2, _ = C.walk_counts(store)
            vrc2, _ = C.verify(store, d)
            row = {"round": rnd, "scenario": scen, "wall_s": round(wall, 2), "outcomes": classes,
                   "refused_secs": refused_secs, "partners_walked_twice": twice, "verify_rc": vrc,
                   "verify_broken": vdoc.get("broken"),
                   "after_sequential_rerun": {"export_equals_sequential": exp == refs[(kind, w)] if (kind, w) in refs else None,
                                              "counts_equal_sequential": last_counts(store) == counts[(kind, w)] if (kind, w) in counts else None,
                                              "verify_rc": vrc2, "stale_lock_left": leftover_lock},
                   "sample_errors": sorted({r["err"].splitlines()[0][:200] for r in res if r["rc"] not in (0, 3, 4) and r["err"]})[:4]}
            report.append(row)
            print(json.dumps(row))
            sys.stdout.flush()
            bad = {k: n for k, n in classes.items() if not k.startswith(("proceeded", "refused: lock holder named", "refused: plan stale"))}
            eq = row["after_sequential_rerun"]["export_equals_sequential"]
            problems = ([f"unexpected outcomes {bad}"] if bad else []) + ([f"{twice} partners walked twice"] if twice else []) + \
                ([f"verify rc={vrc}"] if vrc != 0 else []) + ([f"verify after the re-runs rc={vrc2}"] if vrc2 != 0 else []) + \
                (["store differs from the sequential run"] if eq is False else []) + \
                (["illumination counts differ from the sequential run"]
                 if row["after_sequential_rerun"]["counts_equal_sequential"] is False else []) + \
                ([] if "proceeded" in classes else ["none proceeded"])
            T.add(f"round {rnd} {scen}: 8 applies at once", not problems,
                  f"{classes.get('proceeded', 0)} proceeded, {sum(n for k, n in classes.items() if k != 'proceeded')} refused"
                  + (f"; {'; '.join(problems)}" if problems else "; no double walk, verifies" + ("" if eq is None else ", equals sequential")),
                  "; ".join(row["sample_errors"])[:300])
            for suf in ("", "-wal", "-shm"):
                if os.path.exists(store + suf):
                    os.remove(store + suf)
        readers_while_applying(T, d, pmf, new_store(f"readers-{rnd}", True), apply_cmd(d, plans["same"], ""), rnd, report)
        for way in ("link", "lock file removed"):
            lock_bypassed(T, d, way, rnd, report, new_store, plans, refs, counts)
    return T.finish(report)


# What a writer must never say of a store another pmf process wrote to: that it was edited.
EDIT_CLAIMS = ("edited outside pmf", "added outside pmf", "until it is restored")


def lock_bypassed(T, d, way, rnd, report, new_store, plans, refs, counts):
    """A second apply the store's lock does not see: the store named through a link to it
    (new and existing stores), or the lock file removed while the first apply holds it. The
    lock follows the link (the second is refused naming the holder); past a removed lock
    file, a writer that finds the log moved under it stops ("another process wrote to the
    store"), a plan may be refused as stale, or it goes on. Held when each ends in one of
    those ways, one of them proceeds, neither calls the store edited
    (so nobody restores a backup over good work), no partner is walked twice, the store
    verifies, and after running again whichever stopped it equals a sequential run. Past a
    removed lock file either may be the one that stops (the one whose next batch begins
    after the other's commit); one of them always goes on."""
    outcomes, problems, samples = {}, [], []
    trials = 6
    for t in range(trials):
        warm = t % 2 == 1
        store = new_store(f"bypass-{rnd}-{t}", warm)
        first = subprocess.Popen(apply_cmd(d, plans["same"], store), cwd=d, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        other = store
        if way == "link":
            other = os.path.join(d, f"bypass-{rnd}-{t}-link.db")
            if os.path.lexists(other):
                os.remove(other)
            os.symlink(os.path.basename(store), other)
        # Once the first holds its lock (its file made), at a moment of its run.
        for _ in range(2000):
            if os.path.exists(store + ".lock") or first.poll() is not None:
                break
            time.sleep(0.001)
        time.sleep(random.uniform(0.0, 0.08))
        if way == "lock file removed" and os.path.exists(store + ".lock"):
            os.remove(store + ".lock")
        second_cmd = apply_cmd(d, plans["same"], other)
        rc, _, err, _ = C.run(second_cmd, cwd=d)
        _, first_err = first.communicate(timeout=600)
        first_err = first_err.decode("utf-8", "replace")
        def ended(rc, err):
            k = classify({"rc": rc, "err": err.strip()})
            if rc == 2 and "another process wrote to the store while this one ran" in err:
                k = "stopped: another process wrote meanwhile"
            return k
        r = {"rc": rc, "err": err.strip()}
        k, k_first = ended(rc, err), ended(first.returncode, first_err)
        outcomes[k] = outcomes.get(k, 0) + 1
        if k_first != "proceeded":
            outcomes["first " + k_first] = outcomes.get("first " + k_first, 0) + 1
        # Whichever of the two began a batch after the other's commit stops; the other
        # goes on: each ends in one of these ways, and one of them proceeds.
        for who, kk in (("first", k_first), ("second", k)):
            if not kk.startswith(("proceeded", "refused: lock holder named", "refused: plan stale", "stopped:")):
                problems.append(f"the {who} ended so: {kk}")
        if "proceeded" not in (k, k_first):
            problems.append(f"neither proceeded: the first {k_first}, the second {k}")
        if way == "link" and not {k, k_first} <= {"refused: lock holder named", "proceeded"}:
            # Through a link the lock is the same: one is refused naming the other, or
            # runs after it.
            problems.append(f"through a link: the first {k_first}, the second {k}")
        for text in (err, first_err):
            if any(c in text for c in EDIT_CLAIMS):
                problems.append("a writer called the store edited: " + text.strip().splitlines()[-1][:200])
        if not os.path.exists(store):
            # A writer removed a store it thought it had made and written nothing to,
            # while the other had committed to it (the other's work lost).
            problems.append("the store is gone after both ended: " + " / ".join(
                t.strip().splitlines()[-1][:120] for t in (first_err, err) if t.strip()))
            continue
        walks, _ = C.walk_counts(store)
        if any(n > 1 for n in walks.values()):
            problems.append(f"{sum(n > 1 for n in walks.values())} partners walked twice")
        vrc, _ = C.verify(store, d)
        if vrc != 0:
            problems.append(f"verify rc={vrc}")
        # Run again whichever stopped: the store then equals a sequential run.
        for who, code, cmd in (("first", first.returncode, apply_cmd(d, plans["same"], store)),
                               ("second", rc, second_cmd)):
            if code not in (0, 3, 4):
                rc2, _, err2, _ = C.run(cmd, cwd=d)
                if rc2 not in (0, 3, 4):
                    problems.append(f"the {who} run again failed (rc={rc2}): {err2.strip()[:160]}")
        w = "warm" if warm else "fresh"
        if C.export_state(store, d)[1] != refs[("same", w)]:
            problems.append("the store differs from a sequential run")
        if counts[("same", w)] != (C.illumination(store) or [""])[-1]:
            problems.append("its illumination counts differ from a sequential run")
        samples.append(r["err"].splitlines()[-1][:160] if r["err"] else "")
        for suf in ("", "-wal", "-shm", ".lock"):
            if os.path.exists(store + suf):
                os.remove(store + suf)
        if os.path.lexists(other) and other != store:
            os.remove(other)
    row = {"round": rnd, "scenario": f"lock bypassed: {way}", "outcomes": outcomes, "problems": problems[:5]}
    report.append(row)
    print(json.dumps(row))
    T.add(f"round {rnd} a second apply past the lock ({way}), {trials} times", not problems,
          ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())) + (f"; {problems[0]}" if problems else
                                                                            "; never called the store edited, no double walk, verifies, equals sequential"),
          "; ".join(sorted(set(samples)))[:300])


def readers_while_applying(T, d, pmf, store, cmd, rnd, report):
    """`lineage verify`, `status` and `review list` run over and over while an apply writes
    the store: each reads one commit's store (a snapshot), so none reports a tamper or fails
    that a commit between two of its reads would fake (before, verify said `events deleted
    at the end, or the head edited` and `progress row ... inserted`)."""
    cmd = cmd[:cmd.index("--store") + 1] + [store] + cmd[cmd.index("--store") + 2:]
    apply_p = subprocess.Popen(cmd, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    reads, bad = 0, []
    while apply_p.poll() is None or reads < 3:
        for args in (["lineage", "verify"], ["status"], ["review", "list"]):
            rc, o, e, _ = C.run([pmf] + args + ["--store", store], cwd=d)
            reads += 1
            if rc != 0:
                bad.append(f"{' '.join(args)} rc={rc}: {(o or e).strip().splitlines()[0][:160] if (o or e).strip() else ''}")
        if apply_p.poll() is not None and reads >= 3:
            break
    _, err = apply_p.communicate()
    row = {"round": rnd, "scenario": "readers-while-applying", "reads": reads, "apply_rc": apply_p.returncode,
           "failed_reads": bad[:5]}
    report.append(row)
    print(json.dumps(row))
    held = apply_p.returncode in (0, 3, 4) and not bad
    T.add(f"round {rnd} readers while an apply writes: verify, status, review list", held,
          f"{reads} reads, apply rc={apply_p.returncode}" + (f"; {len(bad)} failed: {bad[0]}" if bad else "; every read held"),
          err.decode("utf-8", "replace").strip()[:200])


if __name__ == "__main__":
    sys.exit(main())
