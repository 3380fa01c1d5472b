#!/usr/bin/env python3
"""Tampering with the store (SQLite) behind pmf's back.

  PMF=path/to/pmf python3 tamper.py

Builds the fleet story's store (36 partners, TSC+ERC approvals, apply, a
planned and TSC-approved rollback of p-001), then for each attack edits a copy
with sqlite3 and runs `pmf lineage verify`. Held = verify exits 1 naming the
place (`#N`), pmf never crashes, and for the attacks that go on to use the
edited store: `rollback` never installs an edited stable version, a re-apply
after `progress` was deleted walks no partner twice.

The consistent rewrites recompute the hashes exactly as the store does since
schema 3 (docs/security.md, pmfevent.py): compact binary events,
  hash        = sha256("pmf-event-v2" 0 prev varint(seq) varint(len(partner)) partner body)
  global_hash = sha256("pmf-global-v2" 0 previous_global_hash hash)
  meta.global_head = last global_hash (hex), meta.global_count = number of rows
(they are then caught by the operator-signed checkpoints).

Two controls keep the verdicts honest: the untouched store must verify (exit
0), and so must the store after an honest second plan applied on it.
"""

import json
import os
import shutil
import sqlite3
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402
import pmfevent as E  # noqa: E402

def rechain(c, start_gseq=1):
    """Recompute every hash from global_seq start_gseq on (both chains) and the meta head (schema 3 rules)."""
    rows = c.execute("SELECT global_seq, partner_id, seq, event FROM lineage ORDER BY global_seq").fetchall()
    heads, gprev = {}, E.GENESIS
    for g, p, s, ev in rows:
        prev = heads.get(p, E.GENESIS)
        if g >= start_gseq:
            h = E.chain(prev, p, s, ev)
            gh = E.glink(gprev, h)
            c.execute("UPDATE lineage SET hash=?, global_hash=? WHERE global_seq=?", (h, gh, g))
        else:
            h, gh = c.execute("SELECT hash, global_hash FROM lineage WHERE global_seq=?", (g,)).fetchone()
        heads[p] = bytes(h)
        gprev = bytes(gh)
    c.execute("UPDATE meta SET value=? WHERE key='global_head'", (gprev.hex(),))
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(len(rows)),))


def renumber(c):
    """Make global_seq 1..n again and every partner's seq 1..k (a compact event holds neither)."""
    rows = c.execute("SELECT global_seq, partner_id, event FROM lineage ORDER BY global_seq").fetchall()
    c.execute("DELETE FROM lineage")
    per = {}
    for i, (g, p, ev) in enumerate(rows, 1):
        per[p] = per.get(p, 0) + 1
        c.execute("INSERT INTO lineage VALUES (?,?,?,?,?,?)", (i, p, per[p], ev, b"", b""))


def build(d):
    f = C.fleet_dir()
    pmf = C.pmf_bin()
    C.run([pmf, "plan", "--policy", os.path.join(f, "policy.pmf"), "--partners", os.path.join(f, "partners.json"),
           "--target", os.path.join(f, "target.json"), "--observed", os.path.join(f, "observed.json"), "-o", "plan.json"], cwd=d)
    for a in ("TSC", "ERC", "SCO"):
        shutil.copy(os.path.join(f, "keys", a + ".key"), os.path.join(d, a + ".key"))
    for a in ("TSC", "ERC"):
        C.run([pmf, "approve", "plan.json", "--key", a + ".key", "-o", "approvals.json", "--yes"], cwd=d)
    rc, o, e, _ = C.run([pmf, "apply", "plan.json", "--approvals", "approvals.json", "--observed", os.path.join(f, "observed.json")], cwd=d)
    assert rc in (0, 3, 4), e
    rc, o, e, _ = C.run([pmf, "rollback", "p-001", "--policy", os.path.join(f, "policy.pmf"), "-o", "rb.json"], cwd=d)
    assert rc == 0, e
    C.run([pmf, "approve", "rb.json", "--key", "TSC.key", "-o", "rb-approvals.json", "--yes"], cwd=d)
    rc, o, e, _ = C.run([pmf, "apply", "rb.json", "--approvals", "rb-approvals.json"], cwd=d)
    assert rc == 0, e
    return os.path.join(d, ".pmf", "state.db")


def q(c, sql, *a):
    return c.execute(sql, a).fetchall()


# Each attack: (name, what, function(conn, workdir) -> note or None)
def a_edit_text(c, d):
    healths = [(g, ev) for g, ev in q(c, "SELECT global_seq, event FROM lineage ORDER BY global_seq") if E.decode(ev)["kind"] == "health"]
    g, ev = healths[3]
    e = E.decode(ev)
    e["health"] = 99.0
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (E.encode(e), g))
    return f"event #{g}: health -> 99"


def a_edit_whitespace(c, d):
    g, ev = q(c, "SELECT global_seq, event FROM lineage ORDER BY global_seq LIMIT 1 OFFSET 100")[0]
    e = E.decode(ev)
    # The same event, its time written as text instead of seconds (bit 18 cleared).
    r = E.R(bytes(ev))
    r.byte()
    r.byte()
    flags = r.varint()
    r.varint()
    end = r.i
    same = bytes(ev[:2]) + E.varint(flags & ~(1 << 18)) + E.put_str(e["time"]) + bytes(ev[end:])
    assert E.decode(same) == e
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (same, g))
    return f"event #{g}: re-encoded with its time as text (same event value, other bytes)"


def a_edit_partner_col(c, d):
    c.execute("UPDATE lineage SET partner_id='p-999' WHERE global_seq=(SELECT global_seq FROM lineage WHERE partner_id='p-003' LIMIT 1 OFFSET 2)")
    return "partner_id column of p-003's 3rd event set to p-999"


def a_edit_prev_col(c, d):
    c.execute("UPDATE lineage SET hash=? WHERE global_seq=50", (bytes.fromhex("ab" * 32),))
    return "hash column of #50 (schema 3 keeps no prev_hash column)"


def a_delete_middle(c, d):
    c.execute("DELETE FROM lineage WHERE global_seq=150")
    return "deleted #150"


def a_delete_middle_renumbered(c, d):
    c.execute("DELETE FROM lineage WHERE global_seq=150")
    n = q(c, "SELECT count(*) FROM lineage")[0][0]
    # close the gap in global_seq (not the hashes)
    c.execute("UPDATE lineage SET global_seq = global_seq - 1 WHERE global_seq > 150")
    return f"deleted #150 and renumbered global_seq ({n} rows)"


def a_delete_last(c, d):
    c.execute("DELETE FROM lineage WHERE global_seq=(SELECT max(global_seq) FROM lineage)")
    return "deleted the last event"


def a_delete_last3(c, d):
    c.execute("DELETE FROM lineage WHERE global_seq > (SELECT max(global_seq) - 3 FROM lineage)")
    return "deleted the last 3 events"


def a_delete_last3_fix_meta(c, d):
    c.execute("DELETE FROM lineage WHERE global_seq > (SELECT max(global_seq) - 3 FROM lineage)")
    h, n = q(c, "SELECT global_hash, (SELECT count(*) FROM lineage) FROM lineage ORDER BY global_seq DESC LIMIT 1")[0]
    c.execute("UPDATE meta SET value=? WHERE key='global_head'", (bytes(h).hex(),))
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(n),))
    return "deleted the last 3 events (p-001's rollback) and set meta head/count to the new last row"


def a_wipe_all(c, d):
    c.execute("DELETE FROM lineage")
    c.execute("DELETE FROM meta WHERE key IN ('global_head','global_count')")
    return "deleted every lineage row and the meta head/count (partners kept)"


def a_swap_rows(c, d):
    r1 = q(c, "SELECT partner_id, seq, event, hash, global_hash FROM lineage WHERE global_seq=20")[0]
    r2 = q(c, "SELECT partner_id, seq, event, hash, global_hash FROM lineage WHERE global_seq=200")[0]
    # UNIQUE(partner_id, seq): move one out of the way first
    c.execute("UPDATE lineage SET partner_id='__tmp', seq=-1 WHERE global_seq=20")
    c.execute("UPDATE lineage SET partner_id=?, seq=?, event=?, hash=?, global_hash=? WHERE global_seq=200", r1)
    c.execute("UPDATE lineage SET partner_id=?, seq=?, event=?, hash=?, global_hash=? WHERE global_seq=20", r2)
    return "swapped rows #20 and #200 (all columns but global_seq)"


def a_swap_adjacent_same_partner(c, d):
    (g1, e1), (g2, e2) = q(c, "SELECT global_seq, event FROM lineage WHERE partner_id='p-012' ORDER BY seq LIMIT 2 OFFSET 3")
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (e2, g1))
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (e1, g2))
    return f"swapped the event texts of p-012's events 4 and 5 (#{g1}, #{g2})"


def a_insert_forged_end(c, d):
    g, p = q(c, "SELECT max(global_seq), 'p-007' FROM lineage")[0]
    s = q(c, "SELECT max(seq) FROM lineage WHERE partner_id='p-007'")[0][0]
    ev = E.encode({"kind": "approved", "approvals": ["SCO"], "time": "2026-01-01T00:00:00Z"})
    c.execute("INSERT INTO lineage VALUES (?,?,?,?,?,?)", (g + 1, "p-007", s + 1, ev, bytes.fromhex("cd" * 32), bytes.fromhex("01" * 32)))
    return "appended a forged `approved by SCO` event with made-up hashes"


def a_insert_forged_middle(c, d):
    c.execute("UPDATE lineage SET global_seq = global_seq + 1000000 WHERE global_seq > 100")
    c.execute("UPDATE lineage SET global_seq = global_seq - 1000000 + 1 WHERE global_seq > 1000000")
    ev = E.encode({"kind": "completed", "time": "2026-01-01T00:00:00Z"})
    prev_g = bytes(q(c, "SELECT global_hash FROM lineage WHERE global_seq=100")[0][0])
    h = E.chain(E.GENESIS, "zz-forged", 1, ev)
    c.execute("INSERT INTO lineage VALUES (101,'zz-forged',1,?,?,?)", (ev, h, E.glink(prev_g, h)))
    return "inserted a forged event (correct own hashes) as #101, later rows shifted by one"


def a_forged_append_consistent(c, d):
    g = q(c, "SELECT max(global_seq) FROM lineage")[0][0]
    s, prev = q(c, "SELECT seq, hash FROM lineage WHERE partner_id='p-007' ORDER BY seq DESC LIMIT 1")[0]
    gprev = bytes(q(c, "SELECT global_hash FROM lineage WHERE global_seq=?", g)[0][0])
    ev = E.encode({"phase": "preparation", "kind": "approved", "approvals": ["SCO"], "time": "2026-12-01T00:00:00Z"})
    h = E.chain(bytes(prev), "p-007", s + 1, ev)
    gh = E.glink(gprev, h)
    c.execute("INSERT INTO lineage VALUES (?,?,?,?,?,?)", (g + 1, "p-007", s + 1, ev, h, gh))
    c.execute("UPDATE meta SET value=? WHERE key='global_head'", (gh.hex(),))
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(g + 1),))
    return "appended a forged `approved by SCO` event to p-007 with correct hashes and meta"


def a_rewrite_partner_consistent(c, d):
    # p-012's history: pretend it was approved by SCO and completed cleanly at a health of 97
    rows = q(c, "SELECT global_seq, event FROM lineage WHERE partner_id='p-012' ORDER BY seq")
    first_g = rows[0][0]
    for g, ev in rows:
        e = E.decode(ev)
        if "health" in e:
            e["health"] = 97.0
            e["band"] = "stable"
            e["action"] = "proceed"
        if e.get("kind") in ("approvals_missing",):
            e["kind"] = "approved"
            e.pop("detail", None)
            e["approvals"] = ["TSC", "ERC", "SCO"]
        if e.get("outcome") in ("fell_back", "awaiting_review", "restricted", "throttled"):
            e["outcome"] = "completed"
        c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (E.encode(e), g))
    rechain(c, first_g)
    return f"rewrote every event of p-012 (health, approvals, outcome) and recomputed both chains from #{first_g} and the meta head"


def a_erase_partner_consistent(c, d):
    c.execute("DELETE FROM lineage WHERE partner_id='p-019'")
    renumber(c)
    rechain(c, 1)
    return "deleted p-019's whole history, renumbered, recomputed every hash"


def a_meta_head(c, d):
    c.execute("UPDATE meta SET value=? WHERE key='global_head'", ("00" * 32,))
    return "meta.global_head changed"


def a_meta_count(c, d):
    c.execute("UPDATE meta SET value='5' WHERE key='global_count'")
    return "meta.global_count set to 5"


def a_meta_deleted(c, d):
    c.execute("DELETE FROM meta")
    return "meta rows deleted (lineage kept)"


def a_partner_state(c, d):
    st = json.loads(q(c, "SELECT state FROM partners WHERE id='p-020'")[0][0])
    st["permissions"] = st.get("permissions", []) + ["admin"]
    st["power"] = 99.0
    c.execute("UPDATE partners SET state=?, version='9.9.9' WHERE id='p-020'", (json.dumps(st, separators=(",", ":"), sort_keys=True),))
    return "partners row of p-020: +admin permission, power 99, version 9.9.9"


def a_partner_status(c, d):
    c.execute("UPDATE partners SET status='active' WHERE status='restricted'")
    return "every restricted partner set back to active"


def a_partner_delete(c, d):
    c.execute("DELETE FROM partners WHERE id='p-021'")
    return "partners row of p-021 deleted"


def a_partner_insert(c, d):
    c.execute("INSERT INTO partners VALUES ('ghost-1', ?, '1.6.0', 'active', '2026-01-01T00:00:00Z')",
              (q(c, "SELECT state FROM partners WHERE id='p-020'")[0][0].replace("p-020", "ghost-1"),))
    return "a partner with no lineage inserted"


def a_stable_versions(c, d):
    st = json.loads(q(c, "SELECT state FROM stable_versions WHERE partner_id='p-002' ORDER BY seq LIMIT 1")[0][0])
    st["permissions"] = ["read", "write", "admin"]
    c.execute("UPDATE stable_versions SET state=? WHERE partner_id='p-002' AND seq=1", (json.dumps(st, separators=(",", ":"), sort_keys=True),))
    return "p-002's first stable version gets `admin`; then `pmf rollback p-002` is run"


def a_progress_delete(c, d):
    c.execute("DELETE FROM progress")
    return "progress rows deleted; then the same plan is applied again"


def a_corrupt_page(c, d):
    return None  # done on the file, below


def a_corrupt_partners_page(c, d):
    return None  # done on the file, below


def pages_of(db, table):
    try:
        return [r[0] for r in C.db_rows(db, "SELECT pageno FROM dbstat WHERE name=? AND pagetype='leaf' ORDER BY pageno", (table,))]
    except Exception:
        return []


ATTACKS = [
    ("edit event text", a_edit_text),
    ("edit event: another encoding of the same event", a_edit_whitespace),
    ("edit partner_id column", a_edit_partner_col),
    ("edit the hash column (schema 2: prev_hash)", a_edit_prev_col),
    ("delete a middle row", a_delete_middle),
    ("delete a middle row + renumber global_seq", a_delete_middle_renumbered),
    ("delete the last row", a_delete_last),
    ("delete the last 3 rows", a_delete_last3),
    ("delete the last 3 rows + fix meta head/count", a_delete_last3_fix_meta),
    ("delete every lineage row + meta head/count", a_wipe_all),
    ("swap two rows (#20 <-> #200)", a_swap_rows),
    ("swap two adjacent events of one partner", a_swap_adjacent_same_partner),
    ("insert forged row at end (made-up hashes)", a_insert_forged_end),
    ("insert forged row in the middle (own hashes ok)", a_insert_forged_middle),
    ("append forged event, hashes + meta recomputed", a_forged_append_consistent),
    ("rewrite a partner's history, all hashes recomputed", a_rewrite_partner_consistent),
    ("erase a partner's history, all hashes recomputed", a_erase_partner_consistent),
    ("edit meta.global_head", a_meta_head),
    ("edit meta.global_count", a_meta_count),
    ("delete meta", a_meta_deleted),
    ("partners: edit state/version", a_partner_state),
    ("partners: restricted -> active", a_partner_status),
    ("partners: delete a row", a_partner_delete),
    ("partners: insert a row with no lineage", a_partner_insert),
    ("stable_versions: edit, then rollback", a_stable_versions),
    ("progress: delete, then re-apply", a_progress_delete),
    ("corrupt a lineage page of the file", a_corrupt_page),
    ("corrupt the partners page of the file", a_corrupt_partners_page),
]


def copy_case(d, db, w):
    os.makedirs(os.path.join(w, ".pmf"))
    for suf in ("", "-wal", "-shm"):
        if os.path.exists(db + suf):
            shutil.copy(db + suf, os.path.join(w, ".pmf", "state.db" + suf))
    for fn_ in ("plan.json", "approvals.json", "TSC.key", "ERC.key", "SCO.key"):
        shutil.copy(os.path.join(d, fn_), w)
    shutil.copy(os.path.join(d, ".pmf", "operator.key"), os.path.join(w, ".pmf"))
    return os.path.join(w, ".pmf", "state.db")


def verify_msg(pmf, w):
    rc, o, e, _ = C.run([pmf, "lineage", "verify"], cwd=w)
    return rc, (o + e).strip().replace("\n", " | ")


def control_replan(pmf, w):
    """An honest second plan on the store (the partners as the store holds them, the
    same target: most are already there), approved by TSC and ERC and applied."""
    f = C.fleet_dir()
    rc, cur, e, _ = C.run([pmf, "state", "export", "--format", "ndjson"], cwd=w)
    assert rc == 0, e
    open(os.path.join(w, "current.ndjson"), "w").write(cur)
    rc, o, e, _ = C.run([pmf, "plan", "--policy", C.policy_path(), "--partners", "current.ndjson", "--target",
                         os.path.join(f, "target.json"), "--observed", os.path.join(f, "observed.json"), "-o", "plan2.json"], cwd=w)
    assert rc == 0, e
    for a in ("TSC", "ERC"):
        rc, o, e, _ = C.run([pmf, "approve", "plan2.json", "--key", a + ".key", "-o", "approvals2.json", "--yes"], cwd=w)
        assert rc == 0, e
    rc, o, e, _ = C.run([pmf, "apply", "plan2.json", "--approvals", "approvals2.json"], cwd=w)
    return rc, o.strip().splitlines()[-1] if o.strip() else e.strip()[:200]


def main():
    T = C.Tally("tamper")
    rows = []
    try:
        attacks(T, rows)
    except Exception as ex:  # a setup step failed: what ran so far is still reported
        T.add("the script ran to its end (a setup step failed)", False, f"{type(ex).__name__}: {str(ex)[:200]}",
              traceback.format_exc()[-400:])
    print()
    for r in rows:
        print(json.dumps(r))
    return T.finish(rows)


def attacks(T, rows):
    d = C.scratch("tamper")
    db = build(d)
    pmf = C.pmf_bin()

    # controls: no tampering, verify must pass (else every "detected" below means nothing)
    w = os.path.join(d, "control-clean")
    copy_case(d, db, w)
    rc, msg = verify_msg(pmf, w)
    T.add("control: the untouched store verifies", rc == 0, f"verify rc={rc}", msg[:300])
    w = os.path.join(d, "control-replan")
    store = copy_case(d, db, w)
    arc, summary = control_replan(pmf, w)
    rc, msg = verify_msg(pmf, w)
    walks, _t = C.walk_counts(store)
    T.add("control: an honest second plan (partners mostly at target) applied, the store still verifies",
          arc in (0, 3, 4) and rc == 0, f"apply rc={arc}, verify rc={rc}",
          f"apply: {summary[:160]}; verify: {msg[:400]}; reproduce: examples/fleet story, then `pmf state export --format ndjson > cur.ndjson`, "
          "`pmf plan --policy examples/fleet/policy.pmf --partners cur.ndjson --target examples/fleet/target.json --observed "
          "examples/fleet/observed.json -o plan2.json`, approve TSC+ERC, apply, `pmf lineage verify`")

    for i, (name, fn) in enumerate(ATTACKS):
        w = os.path.join(d, f"case{i:02d}")
        store = copy_case(d, db, w)
        before_export = C.export_state(store, w)[1]
        if fn in (a_corrupt_page, a_corrupt_partners_page):
            table = "lineage" if fn is a_corrupt_page else "partners"
            pages = pages_of(store, table) or [4]
            page = pages[len(pages) // 2]
            psize = C.db_rows(store, "PRAGMA page_size")[0][0]
            with open(store, "r+b") as fh:
                fh.seek(psize * (page - 1) + min(2000, psize // 4))
                fh.write(bytes(range(256)) * 16)
            note = f"4096 bytes overwritten inside page {page} ({table}) of state.db"
        else:
            c = sqlite3.connect(store)
            note = fn(c, w)
            c.commit()
            c.close()
        extra, harm = "", ""
        if fn is a_stable_versions:
            # the edited stable version must never be installed: plan the rollback, approve it, apply it
            rc, o, e, _ = C.run([pmf, "rollback", "p-002", "--policy", C.policy_path(), "-o", "rb2.json"], cwd=w)
            extra = f"rollback plan rc={rc} ({(e or o).strip()[:120]})"
            if rc == 0:
                for a in ("TSC", "ERC", "SCO"):
                    C.run([pmf, "approve", "rb2.json", "--key", a + ".key", "-o", "rb2-approvals.json", "--yes"], cwd=w)
                rc, o, e, _ = C.run([pmf, "apply", "rb2.json", "--approvals", "rb2-approvals.json"], cwd=w)
                extra += f"; its apply rc={rc} ({(e or o).strip()[:120]})"
            st = C.db_rows(store, "SELECT state FROM partners WHERE id='p-002'")[0][0]
            extra += f"; p-002 now has admin: {'admin' in st}"
            if "admin" in st:
                harm = "the edited stable version (with `admin`) was installed"
        if fn is a_progress_delete:
            rc, o, e, _ = C.run([pmf, "apply", "plan.json", "--approvals", "approvals.json", "--observed",
                                 os.path.join(C.fleet_dir(), "observed.json")], cwd=w)
            walks, _t = C.walk_counts(store)
            twice = sorted(p for p, n in walks.items() if n > 1)
            extra = f"re-apply rc={rc} ({e.strip()[:160]}); partners walked twice: {len(twice)}"
            if twice:
                harm = f"partners walked twice after the re-apply: {twice[:5]}"
        rc, msg = verify_msg(pmf, w)
        after_export = C.export_state(store, w)
        detected = rc == 1
        named = detected and "#" in msg
        if fn in (a_corrupt_page, a_corrupt_partners_page):
            extra = f"state export rc={after_export[0]}, changed={after_export[1] != before_export}"
        rows.append({"attack": name, "what": note, "verify_rc": rc, "message": msg[:300], "detected": detected,
                     "names_place": named, "export_changed": after_export[1] != before_export, "after": extra})
        result = f"verify rc={rc}" + (", named" if named else (", place not named" if detected else ", NOT detected"))
        if harm:
            result += "; " + harm
        T.add(name, named and not harm, result, f"{note}; {msg[:240]}; {extra}")


if __name__ == "__main__":
    sys.exit(main())
