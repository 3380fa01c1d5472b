"""Shared helpers for the PMF attack scripts (python3 stdlib only).

The binary comes from $PMF; the project (for the bundled examples and the
stdlib) from $PMF_SRC, by default the checkout this directory is in (../..).
Every script works in a fresh mktemp directory under $ATTACK_TMP (or the
system's temporary directory), removed at exit unless $KEEP is set.

Every script ends with `Tally.finish()`: a summary table, one line
`SUMMARY <script>: N attacks, H held, F failed`, and exit status 1 when any
attack succeeded (or any pmf run crashed), 0 when all held.
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def pmf_bin():
    p = os.environ.get("PMF")
    if not p:
        sys.exit("set PMF to the pmf binary")
    return os.path.abspath(p)


def src_root():
    return os.path.abspath(os.environ.get("PMF_SRC") or os.path.join(HERE, "..", ".."))


def fleet_dir():
    return os.path.join(src_root(), "examples", "fleet")


def scratch(name):
    """A fresh mktemp directory, removed at exit (also on an exception) unless $KEEP is set."""
    base = os.environ.get("ATTACK_TMP") or None
    d = tempfile.mkdtemp(prefix=f"pmf-{name}-", dir=base)
    atexit.register(cleanup, d)
    return d


def cleanup(d):
    if os.environ.get("KEEP"):
        return
    # make everything removable again (badinputs leaves mode-000 files behind on a failure)
    for dp, dns, fns in os.walk(d):
        for n in dns + fns:
            try:
                os.chmod(os.path.join(dp, n), 0o700, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
    shutil.rmtree(d, ignore_errors=True)


_finds = []


def finds_dir(sub=""):
    """Where inputs that crashed pmf (or were slow) are kept: $CRASH_DIR, else
    $REPORT_DIR/crashers, else a new mktemp directory that is NOT removed (printed)."""
    if not _finds:
        d = os.environ.get("CRASH_DIR") or (os.path.join(os.environ["REPORT_DIR"], "crashers") if os.environ.get("REPORT_DIR") else None)
        if d:
            os.makedirs(d, exist_ok=True)
        else:
            d = tempfile.mkdtemp(prefix="pmf-attack-finds-", dir=os.environ.get("ATTACK_TMP") or None)
        _finds.append(d)
        print(f"inputs that failed are kept in {d}", file=sys.stderr)
    d = os.path.join(_finds[0], sub)
    os.makedirs(d, exist_ok=True)
    return d


# Every pmf run through run() that crashed: (command, rc, tail of its output).
# Tally.finish() counts each as a failed attack, whatever the script expected.
CRASHES = []


def run(args, cwd=None, timeout=120, stdin=None, env=None):
    """Run a command; returns (rc, stdout, stderr, seconds). rc<0: signal; 124: timeout.
    A crash of pmf (see crashed()) is recorded in CRASHES."""
    t0 = time.monotonic()
    try:
        p = subprocess.run(args, cwd=cwd, timeout=timeout, capture_output=True,
                           stdin=stdin if stdin is not None else subprocess.DEVNULL, env=env)
        rc, o, e = p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as ex:
        rc, o, e = 124, (ex.stdout or b"").decode("utf-8", "replace"), (ex.stderr or b"").decode("utf-8", "replace")
    if crashed(rc, o, e):
        CRASHES.append((" ".join(str(a) for a in args)[:300], rc, (e or o)[-400:]))
    return rc, o, e, time.monotonic() - t0


def crashed(rc, out, err):
    """A crash: a signal, exit >= 101 (101 is Rust's panic), a panic message or backtrace,
    or a panic turned into an internal error. A timeout (124) is not a crash."""
    text = out + err
    return (rc < 0 or rc >= 101 and rc != 124 or "panicked" in text or "internal error" in text
            or "stack backtrace" in text or "RUST_BACKTRACE" in text)


class Tally:
    """The results of one script: one row per attack, held or not."""

    def __init__(self, script):
        self.script = script
        self.rows = []

    def add(self, attack, held, result, detail=""):
        """held: the defence held (the attack was detected, refused, or did no harm)."""
        row = {"attack": attack, "held": bool(held), "result": result, "detail": detail}
        self.rows.append(row)
        print(("  held  " if held else "  FAILED") + f" {attack}: {result}" + (f" ({detail[:200]})" if detail and not held else ""))
        sys.stdout.flush()
        return bool(held)

    def finish(self, report=None):
        """Print the table and the summary line; return the exit status (1 when any attack succeeded)."""
        for cmd, rc, tail in CRASHES:
            self.add(f"pmf crashed: {cmd[:120]}", False, f"rc={rc}", tail.strip().replace("\n", " | ")[:300])
        failed = [r for r in self.rows if not r["held"]]
        w = max([len(r["attack"]) for r in self.rows] + [6])
        w = min(w, 80)
        print(f"\n{'attack':<{w}}  verdict  result")
        for r in self.rows:
            print(f"{r['attack'][:w]:<{w}}  {'held   ' if r['held'] else 'FAILED '}  {r['result'][:160]}")
        print(f"SUMMARY {self.script}: {len(self.rows)} attacks, {len(self.rows) - len(failed)} held, {len(failed)} failed")
        if not self.rows:
            print(f"SUMMARY {self.script}: no attack ran: that is a failure")
        for r in failed:
            print(f"  FAILED {r['attack']}: {r['result']} {r['detail'][:400]}")
        write_json_report(self.script, {"rows": self.rows, "report": report})
        sys.stdout.flush()
        return 1 if failed or not self.rows else 0


def fuzz_arguments(doc, mutants_help=None):
    """The arguments of every mutation fuzzer: --mutants, --seed, and --slow (the seconds a
    command may take)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mutants", type=int, default=200, help=mutants_help)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--slow", type=float, default=30.0, help="seconds a command may take")
    return ap.parse_args()


def make_fleet_inputs(d, n, ndjson=True, suffix=""):
    """n partners built from the fleet's partners.json with ids rewritten
    (p-012 -> p-012-00042), and the fleet's target and observed rewritten to
    match. Returns (partners, target, observed) paths."""
    f = fleet_dir()
    base = json.load(open(os.path.join(f, "partners.json")))
    tgt = json.load(open(os.path.join(f, "target.json")))
    obs = json.load(open(os.path.join(f, "observed.json")))
    partners, tparts, observed = [], {}, {}
    k = 0
    while len(partners) < n:
        for p in base:
            if len(partners) >= n:
                break
            nid = f"{p['id']}-{k:05d}{suffix}"
            q = dict(p)
            q["id"] = nid
            partners.append(q)
            if p["id"] in tgt.get("partners", {}):
                tparts[nid] = tgt["partners"][p["id"]]
            if p["id"] in obs:
                observed[nid] = obs[p["id"]]
        k += 1
    pp = os.path.join(d, f"partners{suffix}.json")
    with open(pp, "w") as fh:
        if ndjson:
            for p in partners:
                fh.write(json.dumps(p, separators=(",", ":")) + "\n")
        else:
            json.dump(partners, fh)
    tp = os.path.join(d, f"target{suffix}.json")
    json.dump({"all": tgt["all"], "partners": tparts}, open(tp, "w"))
    op = os.path.join(d, f"observed{suffix}.json")
    json.dump(observed, open(op, "w"))
    return pp, tp, op


def policy_path():
    return os.path.join(fleet_dir(), "policy.pmf")


def plan(d, partners, target, observed, out="plan.json", store=None, subset=False):
    """Plan; `subset`: the partner file is a part of the fleet the target covers."""
    args = [pmf_bin(), "plan", "--policy", policy_path(), "--partners", partners,
            "--target", target, "--observed", observed, "-o", out] + (["--subset"] if subset else [])
    if store:
        args += ["--store", store]
    rc, o, e, _ = run(args, cwd=d, timeout=300)
    if rc != 0:
        raise RuntimeError(f"plan failed rc={rc}: {e}")
    return os.path.join(d, out)


def db_rows(db, sql, args=()):
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def lineage_normal(db):
    """The partners' lineage without times and hashes, one entry per EVENT (rows split,
    event i of a row at global_seq + i, seq + i): [(global_seq, partner, seq, event-json-without-time)].
    The store's own chain (`@governance`, the policy it is governed by) is left out: it is no partner."""
    import pmfevent as E
    out = []
    texts = E.texts(db)  # schema 4: interned events name their texts by id
    # every EVENT, a row split into its events (a RUN row holds a partner's whole walk)
    for g, p, s, ev, _h in E.events(db):
        if p.startswith("@"):
            continue
        e = E.decode(ev, texts)
        e.pop("time", None)
        e.pop("partner", None)
        e.pop("seq", None)
        out.append((g, p, s, json.dumps(e, sort_keys=True)))
    return out


def illumination(db):
    """The outcome counts each `@illumination` event holds, in order (what fallback risks
    are predicted from: a crash or a re-run must count no partner twice)."""
    import pmfevent as E
    texts = E.texts(db)
    return [E.decode(ev, texts).get("detail", "") for _g, p, _s, ev, _h in E.events(db) if p == "@illumination"]


def partner_state(db, partner):
    """A partner's stored state, parsed (packed since schema 4, or JSON text); None when absent."""
    import pmfevent as E
    rows = db_rows(db, "SELECT state FROM partners WHERE id=?", (partner,))
    return E.state_json(rows[0][0], E.texts(db)) if rows else None


def export_state(store, cwd=None):
    rc, o, e, _ = run([pmf_bin(), "state", "export", "--store", store, "--format", "ndjson"], cwd=cwd, timeout=300)
    return rc, sorted(o.splitlines())


def verify(store, cwd=None):
    rc, o, e, _ = run([pmf_bin(), "lineage", "verify", "--store", store, "--format", "json"], cwd=cwd, timeout=300)
    try:
        doc = json.loads(o)
    except Exception:
        doc = {"raw": o + e}
    return rc, doc


TERMINAL = {"completed", "resumed", "restricted", "awaiting_review", "throttled"}


def walk_counts(db):
    """Per partner: (walks started = detection events: its entry, or the stop folded into it, terminal events),
    counted over EVENTS (a RUN row holds a whole walk)."""
    import pmfevent as E
    walks, terms = {}, {}
    texts = E.texts(db)
    for _g, p, _s, ev, _h in E.events(db):  # events, not rows
        e = E.decode(ev, texts)
        if e.get("phase") == "detection":
            walks[p] = walks.get(p, 0) + 1
        if e.get("kind") in TERMINAL:
            terms[p] = terms.get(p, 0) + 1
    return walks, terms


def kill_pid(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def write_json_report(name, doc):
    d = os.environ.get("REPORT_DIR")
    if d:
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, name + ".json"), "w") as fh:
            json.dump(doc, fh, indent=1)
