#!/usr/bin/env python3
"""Crash safety of `pmf apply`: SIGKILL at random moments, then resume.

  PMF=path/to/pmf python3 crash.py [--partners 20000] [--trials 32] [--kills 1] [--seed 1] [--budget 900]

An uninterrupted apply of N partners is the reference. Each trial applies the
same plan on a fresh store, SIGKILLs it after a random delay in [0, T] (T = the
reference's wall time; with --kills K it kills K resumes in a row), then runs
apply again until it finishes. `pmf state unlock` is run only when the resume
refuses because of the dead holder, and that is recorded. The trial holds when:
the resume finishes (exit 0, 3 or 4), state export == reference, lineage
(minus times and hashes) == reference, `pmf lineage verify` exits 0, no
partner's walk appears twice and no partner has two terminal events. The
reference itself must verify and walk every partner exactly once (else the
walk count would prove nothing; a partner with nothing to migrate has one `unchanged` event). Exit 1 when any trial did not hold.
"""

import argparse
import json
import os
import random
import subprocess
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


def apply_args(d, store):
    return [C.pmf_bin(), "apply", os.path.join(d, "plan.json"), "--approvals", os.path.join(d, "approvals.json"),
            "--observed", os.path.join(d, "observed.json"),
            "--store", store, "--format", "json"]


def collapse_repeats(events_by_partner):
    """A partner's events with a repeated walk removed: walks are split at
    each detection event (its entry, or the stop folded into it); a walk equal to the previous one is dropped."""
    out = {}
    for p, evs in events_by_partner.items():
        walks, cur = [], []
        for e in evs:
            d = json.loads(e)
            if d.get("phase") == "detection" and cur:
                walks.append(cur)
                cur = []
            cur.append(d)
        if cur:
            walks.append(cur)
        kept = []
        for w in walks:
            strip = [{k: v for k, v in x.items() if k != "seq"} for x in w]
            if kept and kept[-1][0] == strip:
                continue
            kept.append((strip, w))
        out[p] = [json.dumps({k: v for k, v in x.items() if k != "seq"}, sort_keys=True) for _, w in kept for x in w]
    return out


def by_partner(lin):
    d = {}
    for _g, p, _s, ev in lin:
        d.setdefault(p, []).append(ev)
    return d


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--partners", type=int, default=20000)
    ap.add_argument("--trials", type=int, default=32)
    ap.add_argument("--kills", type=int, default=1, help="SIGKILLs per trial (the resumes are killed too)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--budget", type=float, default=900, help="stop starting trials after this many seconds")
    a = ap.parse_args()
    rnd = random.Random(a.seed)
    d = C.scratch("crash")
    t_start = time.monotonic()
    print(f"scratch {d}")
    pp, tp, op = C.make_fleet_inputs(d, a.partners)
    C.plan(d, pp, tp, op)
    for auth in ("TSC", "ERC"):
        shutil.copy(os.path.join(C.fleet_dir(), "keys", auth + ".key"), os.path.join(d, auth + ".key"))
        C.run([C.pmf_bin(), "approve", os.path.join(d, "plan.json"), "--key", os.path.join(d, auth + ".key"),
               "-o", os.path.join(d, "approvals.json"), "--yes"], cwd=d)

    ref = os.path.join(d, "ref.db")
    t0 = time.monotonic()
    rc, _o, e, _ = C.run(apply_args(d, ref), cwd=d, timeout=600)
    t_ref = time.monotonic() - t0
    assert rc in (0, 3, 4), (rc, e)
    ref_export = C.export_state(ref, d)[1]
    ref_lin = C.lineage_normal(ref)
    ref_counts = C.illumination(ref)
    ref_by = by_partner(ref_lin)
    ref_coll = collapse_repeats(ref_by)
    vrc, _ = C.verify(ref, d)
    ref_walks, _t = C.walk_counts(ref)
    print(f"reference: {a.partners} partners, {len(ref_lin)} events, apply {t_ref:.2f}s, verify rc={vrc}")
    T = C.Tally(f"crash-k{a.kills}")
    unchanged = {p for p, evs in ref_by.items() if all(json.loads(e).get("kind") == "unchanged" for e in evs)}
    T.add("control: the uninterrupted reference verifies and walks every partner exactly once",
          vrc == 0 and ref_walks and set(ref_walks) | unchanged == set(ref_by) and len(ref_by) == a.partners
          and set(ref_walks.values()) == {1} and len(ref_export) == a.partners,
          f"verify rc={vrc}, partners walked {len(ref_walks)} + with nothing to migrate {len(unchanged)} of {a.partners}, "
          f"walks per partner {sorted(set(ref_walks.values()))}")
    for suf in ("", "-wal", "-shm"):
        if os.path.exists(ref + suf):
            os.remove(ref + suf)

    results = []
    for t in range(a.trials):
        if time.monotonic() - t_start > a.budget:
            print("budget spent; stopping")
            break
        store = os.path.join(d, f"t{t}.db")
        kills, unlocks, runs, progress_at_kill, messages = [], 0, 0, [], []
        # the killed runs
        for k in range(a.kills):
            delay = rnd.uniform(0.0, t_ref)
            p = subprocess.Popen(apply_args(d, store), cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(delay)
            finished_before = p.poll() is not None
            C.kill_pid(p.pid)
            p.wait()
            p.stderr.close()
            kills.append(round(delay, 3) if not finished_before else f"{delay:.3f}(already done)")
            try:
                progress_at_kill.append(C.db_rows(store, "SELECT count(*) FROM progress")[0][0])
            except Exception as ex:  # store not created yet
                progress_at_kill.append(f"none ({type(ex).__name__})")
            # before the next kill, the lock of the dead holder must be cleared
            if k + 1 < a.kills:
                rc, o, e, _ = C.run([C.pmf_bin(), "state", "unlock", "--store", store], cwd=d)
                unlocks += "cleared" in o
        # resume until done (bounded)
        final_rc = None
        for attempt in range(4):
            rc, o, e, _ = C.run(apply_args(d, store), cwd=d, timeout=600)
            runs += 1
            if rc in (0, 3, 4):
                final_rc = rc
                break
            messages.append(e.strip()[:300])
            if "no longer running" in e or "locked by" in e:
                urc, uo, ue, _ = C.run([C.pmf_bin(), "state", "unlock", "--store", store], cwd=d)
                unlocks += 1
                continue
            break
        res = {"trial": t, "kills_at_s": kills, "progress_rows_at_kill": progress_at_kill,
               "unlocks": unlocks, "resume_runs": runs, "resume_rc": final_rc, "refusals": messages}
        if final_rc is None:
            res["held"] = False
            res["why"] = "resume never completed"
        else:
            exp = C.export_state(store, d)[1]
            lin = C.lineage_normal(store)
            vrc, vdoc = C.verify(store, d)
            walks, terms = C.walk_counts(store)
            twice = sorted(p for p, n in walks.items() if n > 1)
            tterms = sorted(p for p, n in terms.items() if n > 1)
            lby = by_partner(lin)
            relaxed = collapse_repeats(lby) == ref_coll
            res.update({
                "export_equal": exp == ref_export,
                "lineage_equal": lin == ref_lin,
                "counts_equal": C.illumination(store) == ref_counts,
                "lineage_events": len(lin), "reference_events": len(ref_lin),
                "lineage_equal_after_collapsing_repeated_walks": relaxed,
                "verify_rc": vrc,
                "partners_walked_twice": len(twice), "partners_with_2plus_terminal_events": len(tterms),
                "example_twice": twice[:3],
            })
            if twice:
                kinds = {}
                for p in twice:
                    last = [json.loads(x) for x in lby[p]]
                    term = [x["kind"] for x in last if x.get("kind") in C.TERMINAL]
                    kinds[term[0] if term else "?"] = kinds.get(term[0] if term else "?", 0) + 1
                res["twice_by_first_outcome"] = kinds
            res["held"] = bool(res["export_equal"] and res["lineage_equal"] and res["counts_equal"] and vrc == 0
                               and not twice and not tterms)
        results.append(res)
        print(json.dumps(res))
        sys.stdout.flush()
        for suf in ("", "-wal", "-shm"):
            try:
                os.remove(store + suf)
            except FileNotFoundError:
                pass
    held = sum(r["held"] for r in results)
    summary = {
        "partners": a.partners, "reference_apply_s": round(t_ref, 2), "trials": len(results), "held": held,
        "export_equal": sum(bool(r.get("export_equal")) for r in results),
        "lineage_equal": sum(bool(r.get("lineage_equal")) for r in results),
        "counts_equal": sum(bool(r.get("counts_equal")) for r in results),
        "lineage_equal_relaxed": sum(bool(r.get("lineage_equal_after_collapsing_repeated_walks")) for r in results),
        "verify_ok": sum(r.get("verify_rc") == 0 for r in results),
        "no_double_walks": sum(r.get("partners_walked_twice") == 0 for r in results),
        "needed_unlock": sum(r["unlocks"] > 0 for r in results),
        "results": results,
    }
    print("SUMMARY " + json.dumps({k: v for k, v in summary.items() if k != "results"}))
    for r in results:
        why = r.get("why") or ", ".join(k for k, bad in (("export differs", not r.get("export_equal")), ("lineage differs", not r.get("lineage_equal")),
                                                         ("illumination counts differ", not r.get("counts_equal")),
                                                         (f"verify rc={r.get('verify_rc')}", r.get("verify_rc") != 0),
                                                         (f"{r.get('partners_walked_twice')} partners walked twice", r.get("partners_walked_twice")),
                                                         (f"{r.get('partners_with_2plus_terminal_events')} partners with 2+ terminal events",
                                                          r.get("partners_with_2plus_terminal_events"))) if bad)
        T.add(f"trial {r['trial']}: SIGKILL at {r['kills_at_s']} s, resume", r["held"],
              f"resume rc={r['resume_rc']} after {r['resume_runs']} run(s)" + (f"; {why}" if why else "; equal to the reference, verifies"),
              "; ".join(r.get("refusals", []))[:300])
    return T.finish(summary)


if __name__ == "__main__":
    sys.exit(main())
