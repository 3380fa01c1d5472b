#!/usr/bin/env python3
"""Paths an operator (or another user of a shared directory) could point pmf's
writes at: links planted where pmf writes, and outputs named as inputs.

  PMF=path/to/pmf python3 paths.py

Held, per attack: the file the link or the output names keeps its bytes, pmf
exits 0 (it wrote a new file of its own) or 2 (it refused, naming why), and it
never crashes. Exit 1 when an attack succeeded.
"""

import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402

PRECIOUS = "precious bytes\n"


def plan_args(partners, out, store=".pmf/state.db"):
    fleet = C.fleet_dir()
    return [C.pmf_bin(), "plan", "--policy", C.policy_path(), "--partners", partners,
            "--target", os.path.join(fleet, "target.json"), "-o", out, "--store", store]


def fresh(root, name):
    d = os.path.join(root, name)
    os.makedirs(d)
    shutil.copy(os.path.join(C.fleet_dir(), "partners.json"), os.path.join(d, "partners.json"))
    victim = os.path.join(d, "victim.txt")
    open(victim, "w").write(PRECIOUS)
    return d, victim


def untouched(path):
    return open(path).read() == PRECIOUS


def main():
    root = C.scratch("paths")
    T = C.Tally("paths")

    # 1. A link where the plan's temporary file used to be written.
    d, victim = fresh(root, "partial")
    os.symlink(victim, os.path.join(d, ".plan.json.partial"))
    rc, o, e, _ = C.run(plan_args("partners.json", "plan.json"), cwd=d)
    plan = os.path.join(d, "plan.json")
    ok = rc == 0 and untouched(victim) and os.path.isfile(plan) and not os.path.islink(plan)
    T.add("link planted at .plan.json.partial", ok,
          f"rc={rc}, victim {'untouched' if untouched(victim) else 'OVERWRITTEN'}, "
          f"plan.json {'a link' if os.path.islink(plan) else 'a file'}", e[-300:])

    # 2. A link where the store's lock file is written (apply writes its
    # holder's name into it).
    d, victim = fresh(root, "lock")
    rc0, _, e0, _ = C.run(plan_args("partners.json", "plan.json"), cwd=d)
    os.makedirs(os.path.join(d, ".pmf"), exist_ok=True)
    os.symlink(victim, os.path.join(d, ".pmf", "state.db.lock"))
    rc, o, e, _ = C.run([C.pmf_bin(), "apply", "plan.json"], cwd=d)
    ok = rc0 == 0 and rc == 2 and untouched(victim) and "symbolic link" in e
    T.add("link planted at the store's lock file", ok,
          f"rc={rc}, victim {'untouched' if untouched(victim) else 'OVERWRITTEN'}: {e.strip()[:100]}", e0[-200:])

    # 3-5. An output named as one of the command's inputs, with a real store
    # (planned and applied once).
    template, _ = fresh(root, "template")
    rc_p, _, e_p, _ = C.run(plan_args("partners.json", "plan.json"), cwd=template)
    rc_a, _, e_a, _ = C.run([C.pmf_bin(), "apply", "plan.json"], cwd=template)
    if rc_p != 0 or rc_a not in (0, 3, 4):
        T.add("a store to attack", False, f"plan rc={rc_p}, apply rc={rc_a}", (e_p + e_a)[-300:])
        return T.finish()
    for what, out, extra in [
        ("plan -o over its partner file", "partners.json", None),
        ("plan -o over the store (through a link to it)", "db-link", None),
        ("lineage checkpoint -o over the store", ".pmf/state.db", "checkpoint"),
    ]:
        d = os.path.join(root, "out-" + out.replace("/", "_").replace(".", "_") + (extra or ""))
        shutil.copytree(template, d, symlinks=True)
        os.symlink(".pmf/state.db", os.path.join(d, "db-link"))
        named = os.path.realpath(os.path.join(d, out))
        before = open(named, "rb").read()
        if extra == "checkpoint":
            args = [C.pmf_bin(), "lineage", "checkpoint", "-o", out]
        else:
            args = plan_args("partners.json", out)
        rc, o, e, _ = C.run(args, cwd=d)
        kept = open(named, "rb").read() == before
        ok = rc == 2 and kept and "is the file given as" in e
        T.add(what, ok, f"rc={rc}, {'kept' if kept else 'REPLACED'}: {e.strip()[:100]}")

    # 6. Names a killed run's leftover would have (its process gone, an
    # hour old): a link to a victim and a directory are planted under
    # them, beside a real leftover. pmf removes the leftover only: never
    # the link (or what it names), never the directory.
    d, victim = fresh(root, "leftovers")
    child = subprocess.Popen(["true"])
    child.wait()
    dead = child.pid
    old = time.time() - 3600
    leftover = os.path.join(d, f".plan.json.{dead}-0123456789abcdef.partial")
    open(leftover, "w").write("half a plan")
    link = os.path.join(d, f".plan.json.{dead}-aaaaaaaaaaaaaaaa.partial")
    os.symlink(victim, link)
    folder = os.path.join(d, f".plan.json.{dead}-bbbbbbbbbbbbbbbb.partial")
    os.makedirs(folder)
    for p in (leftover, folder):
        os.utime(p, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    rc, o, e, _ = C.run(plan_args("partners.json", "plan.json"), cwd=d)
    ok = (rc == 0 and not os.path.exists(leftover) and os.path.islink(link)
          and os.path.isdir(folder) and untouched(victim))
    T.add("links and directories under a killed run's leftover names", ok,
          f"rc={rc}, leftover {'removed' if not os.path.exists(leftover) else 'KEPT'}, "
          f"link {'kept' if os.path.islink(link) else 'REMOVED'}, directory "
          f"{'kept' if os.path.isdir(folder) else 'REMOVED'}, victim "
          f"{'untouched' if untouched(victim) else 'CHANGED'}", e[-300:])

    # 7. A checkout whose folders loop through links (a link back up the
    # tree, another to a sibling): `pmf check .` must end, finding each
    # policy once, as the language server's scan of the same folder must.
    d = os.path.join(root, "loops")
    os.makedirs(os.path.join(d, "a", "b"))
    shutil.copy(C.policy_path(), os.path.join(d, "a", "policy.pmf"))
    os.symlink("..", os.path.join(d, "a", "b", "up"))
    os.symlink("../a", os.path.join(d, "a", "again"))
    rc, o, e, secs = C.run([C.pmf_bin(), "check", ".", "--format", "json"], cwd=d, timeout=30)
    files = None
    try:
        files = __import__("json").loads(o).get("files")
    except ValueError:
        pass
    T.add("folders that loop through links, checked", rc in (0, 1) and files == 1,
          f"rc={rc} in {secs:.1f} s, files {files}" + (" (TIMED OUT: the walk never ended)" if rc == 124 else ""),
          e[-300:])

    # 8. `--store` naming another program's SQLite database (a typo, a
    # reused path): refused, and the database left byte for byte.
    import sqlite3
    d, victim = fresh(root, "foreign")
    db = os.path.join(d, "notes.db")
    c = sqlite3.connect(db)
    c.execute("CREATE TABLE notes (text TEXT)")
    c.execute("INSERT INTO notes VALUES ('mine')")
    c.commit()
    c.close()
    before = open(db, "rb").read()
    rc_p, _o, e_p, _ = C.run(plan_args("partners.json", "plan.json", store="none.db"), cwd=d)
    rc, o, e, _ = C.run([C.pmf_bin(), "apply", "plan.json", "--store", db], cwd=d)
    same = open(db, "rb").read() == before
    T.add("--store naming another program's SQLite database", rc_p == 0 and rc == 2 and same,
          f"plan rc={rc_p}, apply rc={rc}, database {'unchanged' if same else 'CHANGED'}: {e.strip()[:100]}", (e_p + e)[-300:])

    # 9. `pmf doc -o DIR` into a directory another user made (a shared
    # /tmp): links planted under the names pmf gives its documents. The
    # file a link names keeps its bytes, and nothing is written.
    d, victim = fresh(root, "doc")
    out = os.path.join(d, "policy-doc")
    os.makedirs(out)
    os.symlink(victim, os.path.join(out, "index.html"))
    rc, o, e, _ = C.run([C.pmf_bin(), "doc", C.policy_path(), "-o", out], cwd=d)
    wrote = sorted(n for n in os.listdir(out) if n != "index.html")
    ok = rc == 2 and untouched(victim) and not wrote and "symbolic link" in e
    T.add("pmf doc into a directory with a link planted under its file's name", ok,
          f"rc={rc}, victim {'untouched' if untouched(victim) else 'OVERWRITTEN'}, "
          f"written {wrote}: {e.strip()[:100]}", e[-300:])

    # 10. A link planted under the name of the operator key's memory (the
    # checkpoint it last signed for a store, written after every commit):
    # the file it names keeps its bytes; the memory is a file again.
    d, victim = fresh(root, "memory")
    rc_p, _, e_p, _ = C.run(plan_args("partners.json", "plan.json"), cwd=d)
    rc_a, _, e_a, _ = C.run([C.pmf_bin(), "apply", "plan.json"], cwd=d)
    pmfdir = os.path.join(d, ".pmf")
    memories = [n for n in os.listdir(pmfdir) if ".signed-" in n]
    for n in memories:
        os.remove(os.path.join(pmfdir, n))
        os.symlink(victim, os.path.join(pmfdir, n))
    # A write that signs: the rollback of a completed partner, planned
    # and applied (it needs TSC's approval: given).
    shutil.copy(os.path.join(C.fleet_dir(), "keys", "TSC.key"), os.path.join(d, "TSC.key"))
    os.chmod(os.path.join(d, "TSC.key"), 0o600)
    steps = [
        [C.pmf_bin(), "rollback", "p-001", "--policy", C.policy_path(), "-o", "back.json"],
        [C.pmf_bin(), "approve", "back.json", "--key", "TSC.key", "-o", "back-approvals.json", "--yes"],
        [C.pmf_bin(), "apply", "back.json", "--approvals", "back-approvals.json"],
    ]
    rcs = [C.run(s, cwd=d)[0] for s in steps]
    files = all(os.path.isfile(os.path.join(pmfdir, n)) and not os.path.islink(os.path.join(pmfdir, n))
                for n in memories)
    ok = (rc_p == 0 and rc_a in (0, 3, 4) and len(memories) == 1 and rcs == [0, 0, 0]
          and untouched(victim) and files)
    T.add("link planted under the name of the operator key's memory", ok,
          f"setup rc={rc_p},{rc_a}, memories {len(memories)}, rollback rcs {rcs}, victim "
          f"{'untouched' if untouched(victim) else 'OVERWRITTEN'}, memory "
          f"{'a file again' if files else 'STILL A LINK'}", (e_p + e_a)[-300:])

    return T.finish()


if __name__ == "__main__":
    sys.exit(main())
