#!/usr/bin/env python3
"""Mutation fuzzing of policies that check: what `pmf check` passes, every other command
must run.

`fuzzcheck.py` throws mutants at `pmf check` and `pmf fmt`; most of them do not check. A
policy that checks is what reaches the compiler's lowering and the runtime: numbers
evaluated (a division by zero, an overflow, a band of no width), paths read from partners
that lack them, ceilings and rules of every kind. This script mutates the fleet policy, or
one time in four its tests, token by token (a number replaced by an extreme one, an
operator or a comparison by another, a path by another, an action or expected outcome by
another, a line removed or repeated), keeps the mutants `pmf check` passes (exit 0:
warnings allowed), and runs each through `pmf plan`
(the fleet's partners, target and observed metrics; `plan show`), `pmf apply` of that plan
on a new store, `pmf test` (the fleet's tests, made for the unmutated policy: failures
expected, crashes not), `pmf graph` (dot, mermaid, json), `pmf doc` and `pmf schema`.

Held: the control (the unmutated policy) runs every command; no command crashes (exit >=
101, a signal, a panic) or runs past --slow seconds; every apply leaves a store `lineage
verify` passes.

  python3 policyfuzz.py --mutants 400 --seed 1
"""

import os
import random
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

TOKEN = re.compile(r"\d+(?:\.\d+)*|[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*|\"(?:[^\"\\\n]|\\.)*\"|//[^\n]*|\.\.=|->|[<>=!]=|\S")
NUMBERS = ["0", "1", "2", "100", "0.0", "0.5", "1e308", "99999999999999999999", "4.0.0", "0.0.0", "999.999.999",
           "-1", "1.0.0-rc.1"]
COMPARE = ["==", "!=", "<", "<=", ">", ">="]
ARITH = ["+", "-", "*", "/"]
ACTIONS = ["restrict", "fallback", "review", "proceed", "monitor"]
# what tests expect (`expect outcome …`, `expect band …`, `expect type …`)
OUTCOMES = ["completed", "fell_back", "restricted", "awaiting_review", "throttled", "unchanged", "stable",
            "reliable", "vulnerable", "soft", "guided", "forced", "none"]
PATHS = ["partner.power", "target.power", "observed.power", "partner.version", "target.version.major",
         "observed.metrics.stability", "partner.capabilities", "target.workflows", "observed.region",
         "partner.intelligence.level", "len(partner.capabilities)", "len(observed.capabilities)", "0"]


def mutate(rng, text):
    toks = [(m.start(), m.end(), m.group()) for m in TOKEN.finditer(text)]
    toks = [t for t in toks if not t[2].startswith("//")]
    for _ in range(rng.randrange(1, 3)):
        k = rng.randrange(7)
        if k == 5:  # a line removed or repeated
            lines = text.split("\n")
            i = rng.randrange(len(lines))
            if rng.randrange(2):
                del lines[i]
            else:
                lines.insert(i, lines[i])
            text = "\n".join(lines)
            toks = [(m.start(), m.end(), m.group()) for m in TOKEN.finditer(text)]
            continue
        pick = {
            0: (lambda t: re.fullmatch(r"\d+(?:\.\d+)*", t), NUMBERS),
            1: (lambda t: t in COMPARE, COMPARE),
            2: (lambda t: t in ARITH, ARITH + COMPARE),
            3: (lambda t: "." in t and t.split(".")[0] in ("partner", "target", "observed"), PATHS),
            4: (lambda t: t in ACTIONS + OUTCOMES, ACTIONS + OUTCOMES),
            6: (lambda t: t in ("and", "or", "not"), ["and", "or", "not", "and not"]),
        }[k]
        cands = [t for t in toks if pick[0](t[2])]
        if not cands:
            continue
        s, e, _old = rng.choice(cands)
        text = text[:s] + rng.choice(pick[1]) + text[e:]
        toks = [(m.start(), m.end(), m.group()) for m in TOKEN.finditer(text)]
    return text


def main():
    args = C.fuzz_arguments(__doc__, "mutants that check (others are skipped)")
    rng = random.Random(args.seed)
    pmf = C.pmf_bin()
    f = C.fleet_dir()
    d = C.scratch("policyfuzz")
    original = open(os.path.join(f, "policy.pmf")).read()
    tests = open(os.path.join(f, "policy.test.pmf")).read()
    inputs = ["--partners", os.path.join(f, "partners.json"), "--target", os.path.join(f, "target.json"),
              "--observed", os.path.join(f, "observed.json")]
    commands = [
        ["plan", "--policy", "policy.pmf"] + inputs + ["-o", "plan.json"],
        ["plan", "show", "plan.json", "--limit", "0"],
        ["apply", "plan.json"],
        ["test", "."],
        ["graph", "policy.pmf", "--format", "dot"],
        ["graph", "policy.pmf", "--format", "mermaid"],
        ["graph", "policy.pmf", "--format", "json"],
        ["doc", "policy.pmf", "-o", "doc"],
        ["schema", "partners", "--policy", "policy.pmf"],
    ]
    T = C.Tally("policyfuzz")

    def case(text, test_text):
        w = os.path.join(d, "w")
        shutil.rmtree(w, ignore_errors=True)
        os.makedirs(w)
        with open(os.path.join(w, "policy.pmf"), "w") as fh:
            fh.write(text)
        with open(os.path.join(w, "policy.test.pmf"), "w") as fh:
            fh.write(test_text)
        return w

    w = case(original, tests)
    bad = []
    for cmd in commands:
        rc, o, e, _ = C.run([pmf] + cmd, cwd=w, timeout=args.slow)
        if rc not in (0, 3, 4):
            bad.append(f"pmf {' '.join(cmd[:2])}: exit {rc}: {e.strip()[-160:]}")
    T.add("control: every command runs on the fleet policy", not bad, f"{len(commands) - len(bad)} of {len(commands)}",
          "; ".join(bad))

    checked, tried, runs, slow, unverified, codes = 0, 0, 0, [], [], {}
    crashes_before = len(C.CRASHES)
    while checked < args.mutants and tried < args.mutants * 40:
        tried += 1
        # The policy, or (one time in four) its tests.
        if rng.randrange(4):
            text, test_text = mutate(rng, original), tests
        else:
            text, test_text = original, mutate(rng, tests)
        if (text, test_text) == (original, tests):
            continue
        w = case(text, test_text)
        rc, o, e, _ = C.run([pmf, "check", "."], cwd=w, timeout=args.slow)
        runs += 1
        if rc != 0:
            continue
        checked += 1
        for cmd in commands:
            if cmd[:2] == ["plan", "show"] or cmd[0] == "apply":
                if not os.path.exists(os.path.join(w, "plan.json")):
                    continue
            rc, o, e, _ = C.run([pmf] + cmd, cwd=w, timeout=args.slow)
            runs += 1
            label = " ".join(cmd[:2]) if cmd[0] in ("plan",) else cmd[0] + (" " + cmd[3] if cmd[0] == "graph" else "")
            codes.setdefault(label, {}).setdefault(rc, 0)
            codes[label][rc] += 1
            if rc == 124:
                slow.append((checked, cmd))
            if cmd[0] == "apply" and rc in (0, 3, 4):
                vrc, doc = C.verify(os.path.join(w, ".pmf", "state.db"), cwd=w)
                if vrc != 0:
                    unverified.append((checked, str(doc.get("problems", doc))[:300]))
            if len(C.CRASHES) > crashes_before:
                crashes_before = len(C.CRASHES)
                keep = C.finds_dir("policyfuzz")
                dest = os.path.join(keep, f"policy-{args.seed}-{checked}")
                shutil.copytree(w, dest, dirs_exist_ok=True)
                print(f"  crash on mutant {checked}: pmf {' '.join(cmd[:3])} -> kept as {dest}")
    T.add(f"{checked} mutants that check (of {tried} made): no crash", not C.CRASHES and checked > 0,
          f"{runs} runs, {len(C.CRASHES)} crashed")
    T.add(f"no command ran past {args.slow:.0f} s", not slow, f"{len(slow)} slow",
          "; ".join(f"mutant {m}: pmf {' '.join(c[:2])}" for m, c in slow[:5]))
    T.add("every apply leaves a store that verifies", not unverified, f"{len(unverified)} did not",
          "; ".join(f"mutant {m}: {p}" for m, p in unverified[:3]))
    for k, v in sorted(codes.items()):
        print(f"  pmf {k:<16} exit codes: " + ", ".join(f"{rc}: {n}" for rc, n in sorted(v.items())))
    C.CRASHES.clear()
    return T.finish({"mutants": checked, "made": tried, "seed": args.seed})


if __name__ == "__main__":
    sys.exit(main())
