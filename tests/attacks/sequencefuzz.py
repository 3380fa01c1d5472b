#!/usr/bin/env python3
"""Random sequences of an operator's commands, some killed midway, with the store's
promises checked after every step.

The other scripts attack one command at a time. An operator runs many, in any order, and
a machine can die in the middle of any of them: a plan made, approved by some
authorities, applied, killed, applied again, an old plan replayed, a partner rolled back
or its state replaced, a review decided, a new partner imported, a witness's checkpoint
exported, the operator key replaced, two writers started at once. Each sequence starts
from a new store and takes --steps such steps, chosen at random (a third of the applies,
and some imports and review decisions, SIGKILLed after a random delay; one writer run in eight
with its writes failing past a random byte, as faultfuzz.py does). After every step:

- `pmf lineage verify` passes: whatever was done or killed, the store is one pmf wrote;
- no plan changes a partner twice: under one plan, a partner's walk ends at most once
  (completed, fell back, restricted or unchanged), a rollback or a replacement is
  carried out at most once;
- every change needs what the policy needs: a walk that completes, or a rollback or a
  replacement carried out, records an approval by every authority its plan entry
  requires, each with a signer;
- no command crashes (a signal other than the fuzzer's SIGKILL, exit 101 or above, a
  panic) or exits with a code its command does not use.

At the end of each sequence, every plan made is applied once more (nothing may change),
every witness's checkpoint must still verify (`--checkpoint`), and `audit.py`, which
trusts no pmf binary, must find the whole log intact (chains, Merkle roots, checkpoint
signatures and operator key successions).

  PMF=target/release/pmf PMF_SRC=$PWD python3 sequencefuzz.py --sequences 20 --steps 40 --seed 1
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
import audit as A  # noqa: E402
import common as C  # noqa: E402
import pmfevent as E  # noqa: E402

AUTHORITIES = ("TSC", "ERC", "SCO")
VERSIONS = ("1.5.0", "1.6.0", "1.7.0", "1.9.0", "2.0.0", "2.1.0", "3.0.0")
REGIONS = ("eu", "us", "ap", "af")
# A walk's end, by the outcome its last event records.
FINAL = {"completed", "fell_back", "restricted", "unchanged"}
# What each command may exit with (2 only where its input may be refused as unusable).
CODES = {
    "plan": {0, 1},
    "approve": {0, 1},
    "apply": {0, 1, 3, 4},
    # 2: a partner with no earlier stable version to return to (nothing to plan).
    "rollback": {0, 1, 2},
    "review": {0, 1},
    # A second promotion: a usage error (2), unless refused first for whose decision it is (1).
    "review-again": {1, 2},
    "import": {0, 1},
    "replace": {0, 1},
    "checkpoint": {0},
    "rekey": {0},
    # 1: an authority's approval missing, or the request no longer for this store's key.
    "rekey-approved": {0, 1},
    "export": {0},
}


# The commands that write (the store or a file), some run with their writes failing.
WRITERS = {"plan", "approve", "apply", "rollback", "review", "import", "replace", "checkpoint", "rekey",
           "rekey-approved"}


# Usage errors a command gives on a store an apply killed before its first commit made
# (a schema, no checkpoint, no operator key yet): what it says, by command.
EMPTY_STORE = {
    "checkpoint": "no signed checkpoint yet",
    "rekey": "no operator key yet",
    "rekey-approved": "no operator key yet",
}


def expected(what, rc, err):
    """Whether exit `rc` (with `err` on stderr) is one command `what` gives."""
    return rc in CODES[what] or (rc == 2 and what in EMPTY_STORE and EMPTY_STORE[what] in err)


class Sequence:
    """One sequence: its directory, its plans, its witnesses and its findings."""

    def __init__(self, d, rng, log):
        self.d, self.rng, self.log = d, rng, log
        self.fleet = C.fleet_dir()
        # The fleet's policy, and changes of it: a ceiling moved either way, the reliable band
        # sent to review, SCO's key withdrawn (its approvals then count for nothing). A plan
        # under another policy than the store's governing one changes the governance, with
        # every authority's approval. Commands that name the governing policy are given any.
        fleet_policy = os.path.join(self.fleet, "policy.pmf")
        self.policies = [fleet_policy]
        text = open(fleet_policy).read()
        changes = {
            "power-6": ("override ceiling power <= 7", "override ceiling power <= 6"),
            "power-8": ("override ceiling power <= 7", "override ceiling power <= 8"),
            "reliable-reviewed": ('reliable "Reliable" -> monitor', 'reliable "Reliable" -> review'),
            "no-sco-key": ('key SCO "', '// key SCO "'),
        }
        for name, (old, new) in changes.items():
            assert old in text, f"the fleet policy no longer says {old!r}"
            changed = os.path.join(d, f"policy-{name}.pmf")
            with open(changed, "w") as fh:
                fh.write(text.replace(old, new))
            self.policies.append(changed)
        self.policy = fleet_policy
        # {"path", "hash", "required": {partner: [authorities]}, "versions": {partner: (from, to)}, "kind",
        #  "approvals"}
        self.plans = []
        self.witnesses = []
        self.findings = []
        self.env = dict(os.environ)
        self.steps = 0
        self.killed = 0
        # Writers whose writes failed (exit 2, saying what failed).
        self.write_failures = 0
        # Applies a Ctrl-C stopped between batches (exit 130).
        self.interrupted = 0
        # Final stores audit.py checked without pmf.
        self.logs_audited = 0
        # How much the last check held the store to: changes, and those that needed approvals.
        self.changes = 0
        self.governed = 0
        # Writers refused because another held the store.
        self.contended = 0
        # Proofs the independent verifier checked; reads of the store and the plans.
        self.audited = 0
        self.reads = 0
        # Policies that governed the store (its first included), operator keys replaced.
        self.policy_changes = 0
        self.successions = 0
        self.apply_secs = 0.3
        self.n = 0
        for a in AUTHORITIES:
            shutil.copy(os.path.join(self.fleet, "keys", a + ".key"), os.path.join(d, a + ".key"))
            os.chmod(os.path.join(d, a + ".key"), 0o600)

    def fresh(self, stem, ext="json"):
        self.n += 1
        return f"{stem}-{self.n}.{ext}"

    def run(self, what, args, kill=False):
        """Run pmf ARGS; with `kill`, SIGKILL it after a random delay. Returns (rc, out, err);
        rc is None when the fuzzer killed it."""
        cmd = [C.pmf_bin()] + args
        if not kill and what in WRITERS and self.rng.random() < 0.12:
            return self.run_failing(what, cmd, args)
        if not kill:
            rc, o, e, secs = C.run(cmd, cwd=self.d, env=self.env, timeout=120)
            if what == "apply" and rc in (0, 3, 4):
                self.apply_secs = max(0.05, 0.5 * self.apply_secs + 0.5 * secs)
            self.log.append(f"{what}: pmf {' '.join(args)} -> {rc}")
            if not expected(what, rc, e) and not C.crashed(rc, o, e):
                self.finding(f"pmf {' '.join(args[:2])} exited {rc}", e.strip()[-300:])
            return rc, o, e
        p = subprocess.Popen(cmd, cwd=self.d, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        time.sleep(self.rng.uniform(0, 1.2 * self.apply_secs))
        killed = p.poll() is None
        # One stop in three is a Ctrl-C (SIGINT): `apply` commits the batch it is in and
        # exits 130; other commands end at once, as under SIGKILL.
        ctrl_c = self.rng.random() < 1 / 3
        if killed:
            p.send_signal(signal.SIGINT if ctrl_c else signal.SIGKILL)
        o, e = p.communicate()
        o, e = o.decode("utf-8", "replace"), e.decode("utf-8", "replace")
        if killed and ctrl_c and p.returncode == 130:
            self.interrupted += 1
            self.log.append(f"{what}: pmf {' '.join(args)} -> 130 (Ctrl-C)")
            if what not in ("apply", "plan") or "interrupted:" not in e:
                self.finding(f"pmf {' '.join(args[:2])} exited 130 on Ctrl-C without saying so", e.strip()[-300:])
            return None, o, e
        if killed and p.returncode in (-signal.SIGINT, -signal.SIGKILL):
            self.killed += 1
            self.log.append(f"{what}: pmf {' '.join(args)} -> KILLED")
            return None, o, e
        if killed:
            # Finished as the signal came (a Ctrl-C after the last batch): an exit of its own.
            killed = False
        rc = p.returncode
        self.log.append(f"{what}: pmf {' '.join(args)} -> {rc} (not killed in time)")
        if C.crashed(rc, o, e):
            C.CRASHES.append((" ".join(args)[:300], rc, (e or o)[-400:]))
        elif not expected(what, rc, e):
            self.finding(f"pmf {' '.join(args[:2])} exited {rc}", e.strip()[-300:])
        return rc, o, e

    def run_failing(self, what, cmd, args):
        """Run a writer with its writes failing past a random byte (as faultfuzz.py does:
        RLIMIT_FSIZE, SIGXFSZ ignored), below the store's size: exit 2 saying what failed, or
        what it exits with when the failure missed its work. The sequence goes on from
        whatever the failure left."""
        db = os.path.join(self.d, ".pmf", "state.db")
        size = os.path.getsize(db) if os.path.exists(db) else 400_000
        # Half the time within the first 64 KB, where the log and the shared-memory file grow
        # (a small write's work); else anywhere in the database, where a checkpoint writes.
        limit = self.rng.randint(0, 65_536) if self.rng.random() < 0.5 else self.rng.randint(0, int(size * 1.5))

        def pre():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        p = subprocess.run(cmd, cwd=self.d, env=self.env, capture_output=True, stdin=subprocess.DEVNULL,
                           timeout=120, preexec_fn=pre)
        rc, o, e = p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        self.log.append(f"{what}: pmf {' '.join(args)} (writes failing past {limit} bytes) -> {rc}")
        if C.crashed(rc, o, e):
            C.CRASHES.append((" ".join(args)[:300] + f" (writes failing past {limit} bytes)", rc, (e or o)[-400:]))
        elif rc == 2 and "failed" in e or rc == 2 and "cannot write" in e:
            self.write_failures += 1
        elif not expected(what, rc, e):
            self.finding(f"pmf {' '.join(args[:2])} with writes failing past {limit} bytes exited {rc}",
                         e.strip()[-300:])
        return rc, o, e

    def finding(self, what, detail=""):
        self.findings.append((what, detail, list(self.log[-12:])))

    # ---- what the store holds

    def states(self):
        """The store's partners (state export), as {id: state}; none before a store exists."""
        if not os.path.exists(os.path.join(self.d, ".pmf", "state.db")):
            return {}
        rc, o, e = self.run("export", ["state", "export", "--format", "ndjson"])
        out = {}
        for line in o.splitlines():
            try:
                s = json.loads(line)
                out[s["id"]] = s
            except (ValueError, KeyError, TypeError):
                pass
        return out

    def register(self, path, kind):
        """A plan just written: its hash and, per partner, the authorities it requires."""
        rc, o, e, _ = C.run([C.pmf_bin(), "plan", "show", path, "--format", "json", "--limit", "0"], cwd=self.d,
                            env=self.env)
        if rc != 0:
            self.finding(f"pmf plan show {path} exited {rc}", e.strip()[-300:])
            return
        doc = json.loads(o)
        h = doc["plan"]["hash"]
        required = {e["id"]: list(e.get("approvals_required", [])) for e in doc["partners"]}
        versions = {e["id"]: (e.get("from"), e.get("to")) for e in doc["partners"]}
        self.plans.append({"path": path, "hash": h, "required": required, "versions": versions, "kind": kind,
                           "approvals": None})

    # ---- steps

    def step_plan(self):
        states = self.states()
        if states:
            ids = sorted(states)
            chosen = self.rng.sample(ids, self.rng.randint(1, len(ids)))
            partners = [states[i] for i in chosen]
        else:
            partners = json.load(open(os.path.join(self.fleet, "partners.json")))
        if self.rng.random() < 0.15:
            new = dict(self.rng.choice(json.load(open(os.path.join(self.fleet, "partners.json")))))
            new["id"] = f"n-{self.n:03d}"
            partners.append(new)
        pfile = self.fresh("partners", "ndjson")
        with open(os.path.join(self.d, pfile), "w") as fh:
            for p in partners:
                fh.write(json.dumps(p) + "\n")
        args = ["plan", "--policy", self.pick_policy(), "--partners", pfile, "-o", self.fresh("plan")]
        if self.rng.random() < 0.3:
            args += ["--target", os.path.join(self.fleet, "target.json"), "--observed",
                     os.path.join(self.fleet, "observed.json"), "--subset"]
        else:
            tfile = self.fresh("target")
            target = {"all": {"version": self.rng.choice(VERSIONS)}}
            if self.rng.random() < 0.3:
                # Some partners with a target of their own (a version, a region moved, power).
                own = {}
                for p in self.rng.sample(partners, min(len(partners), self.rng.randint(1, 5))):
                    own[p["id"]] = self.rng.choice(({"version": self.rng.choice(VERSIONS)},
                                                    {"region": self.rng.choice(REGIONS)},
                                                    {"power": self.rng.choice((3, 6, 7, 8))}))
                target = {"all": target["all"], "partners": own}
            with open(os.path.join(self.d, tfile), "w") as fh:
                json.dump(target, fh)
            args += ["--target", tfile]
        if "--observed" not in args and self.rng.random() < 0.3:
            # Metrics measured anywhere from collapse to health: fallbacks, review bands, throttles.
            ofile = self.fresh("observed")
            with open(os.path.join(self.d, ofile), "w") as fh:
                json.dump({p["id"]: {"metrics": {m: self.rng.randint(30, 100) for m in
                                                 ("stability", "compatibility", "sustainability", "ecosystem")}}
                           for p in partners}, fh)
            args += ["--observed", ofile]
        if self.rng.random() < 0.1:
            # Expires while the sequence goes on: its approvals, applies and reviews meet the expiry.
            args += ["--valid-for", "2s"]
        if os.path.exists(os.path.join(self.d, ".pmf", "state.db")):
            args += ["--store", ".pmf/state.db"]
        rc, o, e = self.run("plan", args)
        if rc == 0:
            self.register(args[args.index("-o") + 1], "migrate")

    def step_approve(self):
        if not self.plans:
            return self.step_plan()
        plan = self.rng.choice(self.plans)
        if plan["approvals"] is None:
            plan["approvals"] = self.fresh("approvals")
        for a in self.rng.sample(AUTHORITIES, self.rng.randint(1, 3)):
            self.run("approve", ["approve", plan["path"], "--key", a + ".key", "-o", plan["approvals"], "--yes"])

    def apply_args(self, plan):
        args = ["apply", plan["path"]]
        if plan["approvals"] and os.path.exists(os.path.join(self.d, plan["approvals"])):
            args += ["--approvals", plan["approvals"]]
        if self.rng.random() < 0.1:
            # Another plan's approvals given too: they approve nothing here.
            other = self.rng.choice(self.plans)
            if other["approvals"] and os.path.exists(os.path.join(self.d, other["approvals"])):
                args += ["--approvals", other["approvals"]]
        return args

    def step_apply(self):
        if not self.plans:
            return self.step_plan()
        plan = self.plans[-1] if self.rng.random() < 0.6 else self.rng.choice(self.plans)
        args = self.apply_args(plan)
        if self.rng.random() < 0.1:
            # Observed metrics other than the plan's (or where it had none): refused, naming the file.
            args += ["--observed", os.path.join(self.fleet, "observed.json")]
        rc, _o, _e = self.run("apply", args, kill=self.rng.random() < 0.35)
        if rc in (0, 3, 4) and plan["kind"] == "migrate":
            self.finished_marked(plan)

    def finished_marked(self, plan):
        """An apply that ran to its end leaves its plan marked finished (`@plans`)."""
        rc, o, e, _ = C.run([C.pmf_bin(), "status", "--format", "json"], cwd=self.d, env=self.env)
        if rc != 0:
            return
        listed = [p for p in json.loads(o).get("plans", []) if p.get("plan_hash") == plan["hash"]]
        if not listed or listed[0].get("finished") is not True:
            self.finding(f"apply of plan {plan['hash'][:12]} ran to its end, yet status does not list it finished",
                         json.dumps(listed)[:300])

    def step_rollback(self):
        states = self.states()
        if not states:
            return self.step_plan()
        pid = self.rng.choice(sorted(states))
        out = self.fresh("rollback")
        to = ["--to", self.rng.choice(VERSIONS + ("1.4.0", "1.2.2"))] if self.rng.random() < 0.3 else []
        rc, o, e = self.run("rollback", ["rollback", pid, "--policy", self.pick_policy(), "-o", out] + to)
        if rc == 0:
            self.register(out, "rollback")

    def step_replace(self):
        states = self.states()
        if not states:
            return self.step_plan()
        pid = self.rng.choice(sorted(states))
        state = dict(states[pid])
        state["region"] = self.rng.choice(REGIONS)
        sfile, out = self.fresh("replace", "ndjson"), self.fresh("replacement")
        with open(os.path.join(self.d, sfile), "w") as fh:
            fh.write(json.dumps(state) + "\n")
        rc, o, e = self.run("replace", ["state", "import", sfile, "--policy", self.pick_policy(), "--replace", "--reason",
                                        "sequencefuzz", "-o", out])
        if rc == 0:
            self.register(out, "replace")

    def step_import(self):
        new = dict(self.rng.choice(json.load(open(os.path.join(self.fleet, "partners.json")))))
        new["id"] = f"i-{self.n:03d}"
        held = sorted(self.states())
        if held and self.rng.random() < 0.3:
            # A partner the store holds, imported again without --replace: refused and recorded.
            new["id"] = self.rng.choice(held)
        sfile = self.fresh("import", "ndjson")
        with open(os.path.join(self.d, sfile), "w") as fh:
            fh.write(json.dumps(new) + "\n")
        self.run("import", ["state", "import", sfile, "--policy", self.pick_policy()], kill=self.rng.random() < 0.2)

    def step_review(self):
        rc, o, e, _ = C.run([C.pmf_bin(), "review", "list", "--format", "json"], cwd=self.d, env=self.env)
        try:
            pending = json.loads(o).get("pending", [])
        except ValueError:
            pending = []
        if not pending:
            return self.step_apply()
        chosen = self.rng.choice(pending)
        decision = self.rng.choice(("promote", "abort"))
        # What `review list` offers must be accepted: every paused partner can be aborted, and
        # one not promoted yet promoted (or the refusal recorded, exit 1); a second promotion
        # is a usage error.
        what = "review-again" if decision == "promote" and chosen.get("promoted_by") else "review"
        self.run(what, ["review", decision, chosen["partner"], "--key", self.rng.choice(AUTHORITIES) + ".key",
                        "--policy", self.pick_policy(), "--reason", "sequencefuzz"], kill=self.rng.random() < 0.2)

    def step_checkpoint(self):
        if not os.path.exists(os.path.join(self.d, ".pmf", "state.db")):
            return self.step_plan()
        if self.witnesses and self.rng.random() < 0.3:
            # Over a witness's earlier checkpoint: the log extends it, so it is replaced (exit 1
            # would say the log was rewritten since). The earlier one is kept aside for the end.
            out = self.rng.choice(self.witnesses)
            kept = self.fresh("witness-earlier")
            shutil.copy(os.path.join(self.d, out), os.path.join(self.d, kept))
            self.witnesses.append(kept)
        else:
            out = self.fresh("witness")
        rc, o, e = self.run("checkpoint", ["lineage", "checkpoint", "-o", out])
        if rc == 0 and out not in self.witnesses:
            self.witnesses.append(out)

    def step_rekey(self):
        if not os.path.exists(os.path.join(self.d, ".pmf", "state.db")):
            return self.step_plan()
        key = os.path.join(".pmf", self.fresh("operator", "key"))
        if self.rng.random() < 0.5:
            rc, o, e = self.run("rekey", ["state", "rekey", "--new-key", key, "--reason", "sequencefuzz"],
                                kill=self.rng.random() < 0.3)
            if rc is None:
                # Killed: the store is rekeyed or not, never half; the key it pins says which.
                self.adopt_pinned_key(key)
                return
        else:
            # As when the key in force is lost: a request every authority of the governing
            # policy approves (some of them, at random), carried out with their approvals.
            request, approvals = self.fresh("rekey-request"), self.fresh("rekey-approvals")
            rc, o, e = self.run("rekey", ["state", "rekey", "--new-key", key, "--reason", "sequencefuzz",
                                          "--request", request])
            if rc != 0:
                return
            signers = AUTHORITIES if self.rng.random() < 0.7 else self.rng.sample(AUTHORITIES, 2)
            for a in signers:
                self.run("approve", ["approve", request, "--key", a + ".key", "-o", approvals, "--yes"])
            rc, o, e = self.run("rekey-approved", ["state", "rekey", "--new-key", key, "--approved", request,
                                                   "--approvals", approvals])
        if rc == 0:
            self.env["PMF_OPERATOR_KEY"] = os.path.join(self.d, key)
        elif rc == 2 and self.pins(key):
            self.finding("a rekey said it failed, yet the store pins the new key", e.strip()[-300:])
            self.env["PMF_OPERATOR_KEY"] = os.path.join(self.d, key)

    def pins(self, new_key):
        """Whether the store pins the operator key made at `new_key`."""
        rc, o, e, _ = C.run([C.pmf_bin(), "status", "--format", "json"], cwd=self.d, env=self.env)
        try:
            return json.loads(o)["operator"]["key"] == json.load(open(os.path.join(self.d, new_key)))["public_key"]
        except (ValueError, KeyError, TypeError, OSError):
            return False

    def adopt_pinned_key(self, new_key):
        """After a rekey was killed: go on with the new key if the store pins it."""
        rc, o, e, _ = C.run([C.pmf_bin(), "status", "--format", "json"], cwd=self.d, env=self.env)
        try:
            pinned = json.loads(o)["operator"]["key"]
            made = json.load(open(os.path.join(self.d, new_key)))["public_key"]
        except (ValueError, KeyError, TypeError, OSError):
            return
        if pinned == made:
            self.env["PMF_OPERATOR_KEY"] = os.path.join(self.d, new_key)

    def step_together(self):
        """Two writers at once: an apply and another apply, an import or a review decision. One
        may be refused because the other holds the store ("in use by", exit 2); neither may
        break it."""
        if not self.plans:
            return self.step_plan()
        first = ("apply", self.apply_args(self.rng.choice(self.plans)))
        other = self.rng.choice(("apply", "import"))
        if other == "apply":
            second = ("apply", self.apply_args(self.rng.choice(self.plans)))
        else:
            new = dict(self.rng.choice(json.load(open(os.path.join(self.fleet, "partners.json")))))
            new["id"] = f"t-{self.n:03d}"
            sfile = self.fresh("together", "ndjson")
            with open(os.path.join(self.d, sfile), "w") as fh:
                fh.write(json.dumps(new) + "\n")
            second = ("import", ["state", "import", sfile, "--policy", self.pick_policy()])
        procs = []
        for what, args in (first, second):
            procs.append((what, args, subprocess.Popen([C.pmf_bin()] + args, cwd=self.d, env=self.env,
                                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                       stdin=subprocess.DEVNULL)))
        for what, args, p in procs:
            o, e = p.communicate(timeout=120)
            o, e = o.decode("utf-8", "replace"), e.decode("utf-8", "replace")
            rc = p.returncode
            self.log.append(f"together {what}: pmf {' '.join(args)} -> {rc}")
            if C.crashed(rc, o, e):
                C.CRASHES.append((" ".join(args)[:300], rc, (e or o)[-400:]))
            elif rc == 2 and "in use by" in e:
                self.contended += 1
            elif rc not in CODES[what]:
                self.finding(f"pmf {' '.join(args[:2])} beside another writer exited {rc}", e.strip()[-300:])

    # ---- the promises

    def check(self, final=False):
        db = os.path.join(self.d, ".pmf", "state.db")
        if not os.path.exists(db):
            return True
        rc, o, e, _ = C.run([C.pmf_bin(), "lineage", "verify"], cwd=self.d, env=self.env)
        if rc != 0:
            self.finding("lineage verify does not pass the store", (o + e).strip()[-400:])
            return False
        self.read_back()
        if final:
            # The log as an auditor who trusts no pmf binary checks it.
            try:
                found, _seen = A.audit(db)
            except Exception as ex:  # noqa: BLE001 (a log the audit cannot read is a finding)
                found = [f"the audit could not read the log: {type(ex).__name__}: {ex}"]
            self.logs_audited += 1
            for why in found[:3]:
                self.finding("audit.py (no pmf) finds the log broken that lineage verify passed", why)
            for w in self.witnesses:
                rc, o, e, _ = C.run([C.pmf_bin(), "lineage", "verify", "--checkpoint", w], cwd=self.d, env=self.env)
                if rc != 0:
                    self.finding(f"the store no longer verifies against the witness's {w}", (o + e).strip()[-300:])
            self.audit()
        ok = True
        required_by_plan = {p["hash"]: p for p in self.plans}
        texts = E.texts(db)
        runs = {}  # partner -> [ [events...], ... ]
        self.policy_changes, self.successions = 0, 0
        for _g, pid, _s, ev, _h in E.events(db):
            if pid == "@governance":
                self.policy_changes += 1
            if pid == "@operator":
                self.successions += 1
            if pid.startswith("@"):
                continue
            e = E.decode(ev, texts)
            mine = runs.setdefault(pid, [])
            if e.get("policy_hash") or not mine:
                mine.append([])
            mine[-1].append(e)
        ends = {}
        changes, governed = 0, 0
        for pid, walks in runs.items():
            for walk in walks:
                plan = next((e.get("plan_hash") for e in walk if e.get("plan_hash")), None)
                last = walk[-1]
                outcome = next((e.get("outcome") for e in reversed(walk) if e.get("state")), last.get("outcome"))
                if plan is None:
                    continue
                if outcome in FINAL or outcome in ("rolled_back", "replaced"):
                    ends[(plan, pid)] = ends.get((plan, pid), 0) + 1
                changed = outcome in ("completed", "rolled_back", "replaced")
                p = required_by_plan.get(plan)
                changes += changed
                # A migration or a rollback takes the partner where its plan said, from where it said.
                if outcome in ("completed", "rolled_back") and p is not None and pid in p["versions"]:
                    said = p["versions"][pid]
                    done = next(((e.get("from"), e.get("to")) for e in reversed(walk) if "to" in e or "from" in e),
                                None)
                    if done != said:
                        ok = False
                        self.finding(f"{pid} went {done} under plan {plan[:12]}, which said {said}",
                                     json.dumps(walk)[:400])
                if changed and p is not None and p["required"].get(pid):
                    governed += 1
                    approved = set()
                    for e in walk:
                        signers = {s.split(":", 1)[0] for s in e.get("signers", [])}
                        approved |= set(e.get("approvals", [])) & signers
                    missing = set(p["required"][pid]) - approved
                    if missing:
                        ok = False
                        self.finding(f"{pid} changed ({outcome}) under plan {plan[:12]} with no approval by "
                                     f"{', '.join(sorted(missing))}", json.dumps(walk)[:400])
        self.changes, self.governed = changes, governed
        for (plan, pid), n in ends.items():
            if n > 1:
                ok = False
                self.finding(f"plan {plan[:12]} ended {pid}'s walk {n} times")
        return ok

    def pick_policy(self):
        """The policy the next command names: mostly the last one planned with."""
        if self.rng.random() < 0.15:
            self.policy = self.rng.choice(self.policies)
        return self.policy

    def read_back(self):
        """What an operator and a reviewer read, on whatever the store and the plans hold: the
        store at a glance, what waits, the lineage, a plan shown and two compared, and a new plan
        made from every state the store exports (each must be one pmf can plan from again)."""
        readers = [["status", "--format", "json"], ["review", "list", "--format", "json"],
                   ["lineage", "show", "--format", "json"]]
        a = b = None
        if self.plans:
            readers.append(["plan", "show", self.rng.choice(self.plans)["path"], "--format", "json"])
            a, b = self.rng.choice(self.plans), self.rng.choice(self.plans)
            readers.append(["plan", "diff", a["path"], b["path"]])
        for args in readers:
            rc, o, e, _ = C.run([C.pmf_bin()] + args, cwd=self.d, env=self.env)
            self.reads += 1
            # `plan diff` exits 1 when the plans differ, as diff does.
            if rc != 0 and not (args[:2] == ["plan", "diff"] and rc == 1 and a is not b):
                self.finding(f"pmf {' '.join(args[:2])} exited {rc}", e.strip()[-300:])
        states = self.states()
        if states and self.rng.random() < 0.3:
            pfile, tfile = self.fresh("again", "ndjson"), self.fresh("again-target")
            with open(os.path.join(self.d, pfile), "w") as fh:
                for state in states.values():
                    fh.write(json.dumps(state) + "\n")
            with open(os.path.join(self.d, tfile), "w") as fh:
                json.dump({"all": {"version": self.rng.choice(VERSIONS)}}, fh)
            args = ["plan", "--policy", self.policy, "--partners", pfile, "--target", tfile, "--store",
                    ".pmf/state.db", "-o", self.fresh("again")]
            rc, o, e, _ = C.run([C.pmf_bin()] + args, cwd=self.d, env=self.env)
            self.reads += 1
            # 1: the policy named is not the store's (a plan that would change its governance is
            # made all the same; 1 is a state the policy refuses, which the store should not hold).
            if rc != 0:
                self.finding(f"a plan from every state the store exports exited {rc}", e.strip()[-300:])

    def audit(self):
        """What an auditor holds without pmf: a few partners' events proved included in the
        latest signed checkpoint (and that checkpoint consistent with a witness's), checked by
        the independent verifier of tests/integration/verify_proof.py."""
        verifier = os.path.join(C.src_root(), "tests", "integration", "verify_proof.py")
        for pid in self.rng.sample(sorted(self.states()), min(3, len(self.states()))):
            args = ["lineage", "prove", pid]
            if self.witnesses and self.rng.random() < 0.5:
                args += ["--since", self.rng.choice(self.witnesses)]
            rc, o, e, _ = C.run([C.pmf_bin()] + args, cwd=self.d, env=self.env)
            if rc != 0:
                self.finding(f"pmf {' '.join(args)} exited {rc}", e.strip()[-300:])
                continue
            proof = os.path.join(self.d, self.fresh("proof"))
            with open(proof, "w") as fh:
                fh.write(o)
            rc, o2, e2, _ = C.run([sys.executable, verifier, proof])
            self.audited += 1
            if rc != 0:
                self.finding(f"the independent verifier refuses pmf {' '.join(args)}", (o2 + e2).strip()[-300:])

    def play(self, steps):
        kinds = [(self.step_plan, 5), (self.step_approve, 5), (self.step_apply, 8), (self.step_rollback, 2),
                 (self.step_replace, 2), (self.step_import, 1), (self.step_review, 2), (self.step_checkpoint, 1),
                 (self.step_rekey, 2), (self.step_together, 2)]
        population = [k for k, w in kinds for _ in range(w)]
        self.step_plan()
        for _ in range(steps):
            self.rng.choice(population)()
            self.steps += 1
            if not self.check():
                return
        # Every plan once more, to the end: nothing may change twice.
        for plan in self.plans:
            self.run("apply", self.apply_args(plan))
        self.check(final=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sequences", type=int, default=10)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    T = C.Tally("sequencefuzz")
    d = C.scratch("sequencefuzz")
    total_steps, total_killed, plans, changes, governed, contended, policies, successions = 0, 0, 0, 0, 0, 0, 0, 0
    audited, reads, write_failures, interrupted, logs_audited = 0, 0, 0, 0, 0
    for n in range(args.sequences):
        work = os.path.join(d, f"s{n}")
        os.makedirs(work)
        log = []
        seq = Sequence(work, random.Random(args.seed * 1000 + n), log)
        seq.play(args.steps)
        total_steps += seq.steps
        total_killed += seq.killed
        write_failures += seq.write_failures
        interrupted += seq.interrupted
        logs_audited += seq.logs_audited
        plans += len(seq.plans)
        changes += seq.changes
        governed += seq.governed
        contended += seq.contended
        policies += max(0, seq.policy_changes - 1)
        successions += seq.successions
        audited += seq.audited
        reads += seq.reads
        for what, detail, recent in seq.findings:
            T.add(f"sequence {n} (seed {args.seed}): {what}", False, detail[:200], " | ".join(recent))
        if seq.findings:
            keep = C.finds_dir("sequencefuzz")
            dest = os.path.join(keep, f"seed-{args.seed}-sequence-{n}")
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(work, dest, symlinks=True)
            with open(os.path.join(dest, "steps.log"), "w") as fh:
                fh.write("\n".join(log) + "\n")
            print(f"  sequence {n}: kept in {dest}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"exercised: {total_steps} steps, {total_killed} commands killed, {interrupted} applies stopped by Ctrl-C, "
          f"{write_failures} whose writes failed, "
          f"{contended} refused beside another "
          f"writer, {plans} plans made, {policies} changes of the governing policy, {successions} operator keys "
          f"replaced; at the end, {changes} changes held to their plans ({governed} to the approvals their plans "
          f"required), {audited} proofs checked by the independent verifier, {logs_audited} whole logs by "
          f"audit.py, {reads} reads of the store and its plans")
    T.add(f"{args.sequences} sequences of {args.steps} steps: every promise held after every step",
          all(r["held"] for r in T.rows), f"{total_steps} steps, {total_killed} killed, {changes} changes held, "
          f"{audited} proofs checked")
    return T.finish({"sequences": args.sequences, "steps": args.steps, "seed": args.seed})


if __name__ == "__main__":
    sys.exit(main())
