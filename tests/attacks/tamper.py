#!/usr/bin/env python3
"""Tampering with the store (SQLite) behind pmf's back.

  PMF=path/to/pmf python3 tamper.py

Builds the fleet story's store (36 partners, TSC+ERC approvals, apply, a
planned and TSC-approved rollback of p-001), then for each attack edits a copy
with sqlite3 and runs `pmf lineage verify`. Held = verify exits 1 naming the
place (`#N`), pmf never crashes, and for the attacks that go on to use the
edited store: `rollback` never installs an edited stable version, a re-apply
after `progress` was deleted walks no partner twice.

The store is schema 4 (docs/security.md, pmfevent.py): events are stored
interned (tag 0x03: the compact encoding with its repeated texts as ids into
the `texts` table), states packed (object keys as ids into `texts`). The
consistent rewrites recompute the hashes exactly as the store does:
  hash = sha256("pmf-event-v2" 0 prev varint(seq) varint(len(partner)) partner compact)
where `compact` is the event's COMPACT encoding (an interned body expanded
with the texts, pmfevent.expand), and meta.global_count = number of rows.
There is no global chain column and no meta.global_head any more: the order
of the rows is bound by the Merkle tree over the `hash` column whose roots the
operator signs (`checkpoints`), so rows swapped across partners, and the
consistent rewrites, are caught by the checkpoint ("events #a-#b do not match
the checkpoint signed at ...") rather than by a global link. The texts table
and the packed states are attacked too: an edited text changes every event
(hash) and state (the lineage's row digests are of the JSON text) naming it.

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
    """Recompute every partner chain hash from global_seq start_gseq on (over the bodies
    expanded to the compact encoding) and meta.global_count (schema 4 rules; there is no
    global chain or head to recompute: only the signed checkpoints bind the order)."""
    texts = E.texts(c)
    rows = c.execute("SELECT global_seq, partner_id, seq, event FROM lineage ORDER BY global_seq").fetchall()
    heads = {}
    for g, p, s, ev in rows:
        prev = heads.get(p, E.GENESIS)
        if g >= start_gseq:
            h = E.stored_hash(prev, p, s, ev, texts)
            c.execute("UPDATE lineage SET hash=? WHERE global_seq=?", (h, g))
        else:
            h = c.execute("SELECT hash FROM lineage WHERE global_seq=?", (g,)).fetchone()[0]
        heads[p] = bytes(h)
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(len(rows)),))


def renumber(c):
    """Make global_seq 1..n again and every partner's seq 1..k (a compact event holds neither)."""
    rows = c.execute("SELECT global_seq, partner_id, event FROM lineage ORDER BY global_seq").fetchall()
    c.execute("DELETE FROM lineage")
    per = {}
    for i, (g, p, ev) in enumerate(rows, 1):
        per[p] = per.get(p, 0) + 1
        c.execute("INSERT INTO lineage VALUES (?,?,?,?,?)", (i, p, per[p], ev, b""))


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
    texts = E.texts(c)
    healths = [(g, ev) for g, ev in q(c, "SELECT global_seq, event FROM lineage ORDER BY global_seq") if E.decode(ev, texts)["kind"] == "health"]
    g, ev = healths[3]
    e = E.decode(ev, texts)
    e["health"] = 99.0
    # stored as pmf stores it (interned, the texts it names already in the table)
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (E.encode_interned(e, E.ids_of(texts)), g))
    return f"event #{g}: health -> 99 (interned, as pmf writes it)"


def a_edit_compact(c, d):
    texts = E.texts(c)
    g, ev = q(c, "SELECT global_seq, event FROM lineage ORDER BY global_seq LIMIT 1 OFFSET 60")[0]
    e = E.decode(ev, texts)
    e["detail"] = "version 9.9.9 released"
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (E.encode(e), g))
    return f"event #{g}: detail edited, stored compact (0x02, which a store still accepts)"


def time_as_text(body):
    """The same compact or interned body with its time written as text (bit 18 cleared)."""
    r = E.R(bytes(body))
    r.byte()
    r.byte()
    flags = r.varint()
    secs = r.varint()
    end = r.i
    return bytes(body[:2]) + E.varint(flags & ~(1 << 18)) + E.put_str(E.rfc3339(secs)) + bytes(body[end:])


def a_edit_whitespace(c, d):
    texts = E.texts(c)
    g, ev = q(c, "SELECT global_seq, event FROM lineage ORDER BY global_seq LIMIT 1 OFFSET 100")[0]
    e = E.decode(ev, texts)
    # The same event in the compact encoding, its time written as text instead of
    # seconds (bit 18 cleared): the bytes the chain hash covers change, the value not.
    same = time_as_text(E.encode(e))
    assert E.decode(same) == e and E.expand(same, texts) != E.expand(ev, texts)
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (same, g))
    return f"event #{g}: stored compact with its time as text (same event value, other hashed bytes)"


def a_same_expansion(c, d):
    texts = E.texts(c)
    rows = q(c, "SELECT global_seq, event FROM lineage ORDER BY global_seq LIMIT 2 OFFSET 110")
    (g1, ev1), (g2, ev2) = rows
    a = E.encode(E.decode(ev1, texts))          # the interned event stored as its expansion
    b = time_as_text(bytes(ev2))                # interned, its time as text
    assert E.expand(a, texts) == E.expand(ev1, texts) and E.expand(b, texts) == E.expand(ev2, texts)
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (a, g1))
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (b, g2))
    return (f"event #{g1} stored as its compact expansion, event #{g2} interned with its time as text: "
            "other bytes, the same event value and the same hashed (expanded) bytes")


def a_edit_partner_col(c, d):
    c.execute("UPDATE lineage SET partner_id='p-999' WHERE global_seq=(SELECT global_seq FROM lineage WHERE partner_id='p-003' LIMIT 1 OFFSET 2)")
    return "partner_id column of p-003's 3rd event set to p-999"


def a_edit_prev_col(c, d):
    c.execute("UPDATE lineage SET hash=? WHERE global_seq=50", (bytes.fromhex("ab" * 32),))
    return "hash column of #50 (schemas 3 and 4 keep no prev_hash column)"


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
    n = q(c, "SELECT count(*) FROM lineage")[0][0]
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(n),))
    # schema 4 keeps no head hash: the count is all the meta there is to fix (the
    # partner chains of the remaining rows are intact; the signed checkpoints are not)
    return "deleted the last 3 events (p-001's rollback) and set meta.global_count to the rows left (no head to fix in schema 4)"


def a_wipe_all(c, d):
    c.execute("DELETE FROM lineage")
    c.execute("DELETE FROM meta WHERE key='global_count'")
    return "deleted every lineage row and meta.global_count (partners kept)"


def a_swap_rows(c, d):
    r1 = q(c, "SELECT partner_id, seq, event, hash FROM lineage WHERE global_seq=20")[0]
    r2 = q(c, "SELECT partner_id, seq, event, hash FROM lineage WHERE global_seq=200")[0]
    assert r1[0] != r2[0]
    # UNIQUE(partner_id, seq): move one out of the way first
    c.execute("UPDATE lineage SET partner_id='__tmp', seq=-1 WHERE global_seq=20")
    c.execute("UPDATE lineage SET partner_id=?, seq=?, event=?, hash=? WHERE global_seq=200", r1)
    c.execute("UPDATE lineage SET partner_id=?, seq=?, event=?, hash=? WHERE global_seq=20", r2)
    # each partner's chain still links: only the signed Merkle roots bind the order
    return f"swapped rows #20 ({r1[0]}) and #200 ({r2[0]}) (all 4 columns but global_seq)"


def a_swap_adjacent_same_partner(c, d):
    (g1, e1), (g2, e2) = q(c, "SELECT global_seq, event FROM lineage WHERE partner_id='p-012' ORDER BY seq LIMIT 2 OFFSET 3")
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (e2, g1))
    c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (e1, g2))
    return f"swapped the event texts of p-012's events 4 and 5 (#{g1}, #{g2})"


def a_insert_forged_end(c, d):
    g, p = q(c, "SELECT max(global_seq), 'p-007' FROM lineage")[0]
    s = q(c, "SELECT max(seq) FROM lineage WHERE partner_id='p-007'")[0][0]
    ev = E.encode({"kind": "approved", "approvals": ["SCO"], "time": "2026-01-01T00:00:00Z"})
    c.execute("INSERT INTO lineage VALUES (?,?,?,?,?)", (g + 1, "p-007", s + 1, ev, bytes.fromhex("cd" * 32)))
    return "appended a forged `approved by SCO` event (compact) with a made-up hash"


def a_insert_forged_middle(c, d):
    c.execute("UPDATE lineage SET global_seq = global_seq + 1000000 WHERE global_seq > 100")
    c.execute("UPDATE lineage SET global_seq = global_seq - 1000000 + 1 WHERE global_seq > 1000000")
    ev = E.encode({"kind": "completed", "time": "2026-01-01T00:00:00Z"})
    h = E.chain(E.GENESIS, "zz-forged", 1, ev)
    c.execute("INSERT INTO lineage VALUES (101,'zz-forged',1,?,?)", (ev, h))
    c.execute("UPDATE meta SET value=(SELECT count(*) FROM lineage) WHERE key='global_count'")
    return "inserted a forged event (correct own chain hash) as #101, later rows shifted by one, meta.global_count fixed"


def a_forged_append_consistent(c, d):
    g = q(c, "SELECT max(global_seq) FROM lineage")[0][0]
    s, prev = q(c, "SELECT seq, hash FROM lineage WHERE partner_id='p-007' ORDER BY seq DESC LIMIT 1")[0]
    e = {"phase": "preparation", "kind": "approved", "approvals": ["SCO"], "time": "2026-12-01T00:00:00Z"}
    ev = E.encode_interned(e, E.interner(c))  # stored as pmf stores it; new texts added to `texts`
    h = E.chain(bytes(prev), "p-007", s + 1, E.encode(e))
    c.execute("INSERT INTO lineage VALUES (?,?,?,?,?)", (g + 1, "p-007", s + 1, ev, h))
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(g + 1),))
    return "appended a forged interned `approved by SCO` event to p-007 with a correct chain hash and meta.global_count"


def a_rewrite_partner_consistent(c, d):
    # p-012's history: pretend it was approved by SCO and completed cleanly at a health of 97
    rows = q(c, "SELECT global_seq, event FROM lineage WHERE partner_id='p-012' ORDER BY seq")
    first_g = rows[0][0]
    texts = E.texts(c)
    intern = E.interner(c)
    for g, ev in rows:
        e = E.decode(ev, texts)
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
        c.execute("UPDATE lineage SET event=? WHERE global_seq=?", (E.encode_interned(e, intern), g))
    rechain(c, first_g)
    return f"rewrote every event of p-012 (health, approvals, outcome; interned) and recomputed every chain hash from #{first_g}"


def a_erase_partner_consistent(c, d):
    c.execute("DELETE FROM lineage WHERE partner_id='p-019'")
    renumber(c)
    rechain(c, 1)
    return "deleted p-019's whole history, renumbered, recomputed every hash"


def edit_text(c, old, new):
    n = c.execute("UPDATE texts SET text=? WHERE text=?", (new, old)).rowcount
    assert n == 1, f"no text {old!r} in the store's table"
    return q(c, "SELECT id FROM texts WHERE text=?", new)[0][0]


def a_text_rite(c, d):
    i = edit_text(c, "The pattern reforms. Harmony returns.", "The pattern reforms. Harmony returns, approved.")
    return f"texts #{i}: the stabilization rite edited (every interned event naming it reads otherwise)"


def a_text_authority(c, d):
    texts = E.texts(c)
    old = next(t for t in texts.values() if t.startswith("SCO:"))
    i = edit_text(c, old, "SCO:" + "00" * 32)
    return f"texts #{i}: the SCO signer `authority:key` text given another key"


def a_text_key(c, d):
    i = edit_text(c, "permissions", "permissionz")
    return f"texts #{i}: the state key `permissions` renamed (every packed state naming it reads otherwise)"


def a_text_delete(c, d):
    i = q(c, "SELECT id FROM texts WHERE text='stabilization'")[0][0]
    c.execute("DELETE FROM texts WHERE id=?", (i,))
    return f"texts #{i} (`stabilization`) deleted: the interned events naming it no longer read"


def a_text_swap(c, d):
    (a, ta), (b, tb) = q(c, "SELECT id, text FROM texts WHERE text IN ('stable', 'vulnerable') ORDER BY id")
    c.execute("UPDATE texts SET text='__tmp' WHERE id=?", (a,))
    c.execute("UPDATE texts SET text=? WHERE id=?", (ta, b))
    c.execute("UPDATE texts SET text=? WHERE id=?", (tb, a))
    return f"texts #{a} `{ta}` and #{b} `{tb}` swapped (health bands of the events naming them)"


def a_packed_in_place(c, d):
    texts = E.texts(c)
    blob = bytes(q(c, "SELECT state FROM partners WHERE id='p-020'")[0][0])
    old, new = bytes([E.P_STRING, 5]) + b"write", bytes([E.P_STRING, 5]) + b"admin"
    assert blob.count(old) == 1, E.unpack_state(blob, texts)
    edited = blob.replace(old, new)
    st = E.state_json(edited, texts)
    assert "admin" in st["permissions"] and len(edited) == len(blob)
    c.execute("UPDATE partners SET state=? WHERE id='p-020'", (edited,))
    return f"p-020's packed state edited in place (`write` -> `admin`, same length): now {st['permissions']}"


def a_packed_damaged(c, d):
    blob = bytes(q(c, "SELECT state FROM partners WHERE id='p-022'")[0][0])
    c.execute("UPDATE partners SET state=? WHERE id='p-022'", (blob[:len(blob) // 2],))
    return "p-022's packed state cut in half (does not unpack)"


def a_state_as_json(c, d):
    texts = E.texts(c)
    st = E.state_json(q(c, "SELECT state FROM partners WHERE id='p-021'")[0][0], texts)
    st["permissions"] = st.get("permissions", []) + ["admin"]
    text = json.dumps(st, separators=(",", ":"), sort_keys=True)
    c.execute("UPDATE partners SET state=? WHERE id='p-021'", (text,))  # TEXT, as rows of older stores are
    return "p-021's state written back as canonical JSON text (as older stores hold it) with `admin` added"


def a_meta_count(c, d):
    c.execute("UPDATE meta SET value='5' WHERE key='global_count'")
    return "meta.global_count set to 5"


def a_meta_deleted(c, d):
    c.execute("DELETE FROM meta")
    return "meta rows deleted (lineage kept)"


def a_partner_state(c, d):
    st = E.state_json(q(c, "SELECT state FROM partners WHERE id='p-020'")[0][0], E.texts(c))
    st["permissions"] = st.get("permissions", []) + ["admin"]
    st["power"] = 99.0
    packed = E.pack_state(json.dumps(st, separators=(",", ":"), sort_keys=True), E.interner(c))
    assert packed
    c.execute("UPDATE partners SET state=?, version='9.9.9' WHERE id='p-020'", (packed,))
    return "partners row of p-020 (packed again): +admin permission, power 99, version 9.9.9"


def a_partner_status(c, d):
    c.execute("UPDATE partners SET status='active' WHERE status='restricted'")
    return "every restricted partner set back to active"


def a_partner_delete(c, d):
    c.execute("DELETE FROM partners WHERE id='p-021'")
    return "partners row of p-021 deleted"


def a_partner_insert(c, d):
    text = E.unpack_state(q(c, "SELECT state FROM partners WHERE id='p-020'")[0][0], E.texts(c)).replace('"p-020"', '"ghost-1"')
    c.execute("INSERT INTO partners VALUES ('ghost-1', ?, '1.6.0', 'active', '2026-01-01T00:00:00Z')",
              (E.pack_state(text, E.interner(c)),))
    return "a partner with no lineage inserted (p-020's state, packed)"


def a_stable_versions(c, d):
    st = E.state_json(q(c, "SELECT state FROM stable_versions WHERE partner_id='p-002' ORDER BY seq LIMIT 1")[0][0], E.texts(c))
    st["permissions"] = ["read", "write", "admin"]
    packed = E.pack_state(json.dumps(st, separators=(",", ":"), sort_keys=True), E.interner(c))
    assert packed
    c.execute("UPDATE stable_versions SET state=? WHERE partner_id='p-002' AND seq=1", (packed,))
    return "p-002's first stable version gets `admin`; then `pmf rollback p-002` is run"


def a_progress_delete(c, d):
    c.execute("DELETE FROM progress")
    return "progress rows deleted; then the same plan is applied again"


def a_corrupt_page(c, d):
    return None  # done on the file, below


def a_corrupt_partners_page(c, d):
    return None  # done on the file, below


def pages_of(db, table):
    """The table's leaf pages, the one holding the most row bytes first."""
    try:
        return [r[0] for r in C.db_rows(db, "SELECT pageno FROM dbstat WHERE name=? AND pagetype='leaf' ORDER BY payload DESC, pageno", (table,))]
    except Exception:
        return []


ATTACKS = [
    ("edit event text", a_edit_text),
    ("edit event, stored compact (0x02)", a_edit_compact),
    ("edit event: another encoding of the same event", a_edit_whitespace),
    ("design: an interned event re-encoded, same expansion (compact; time as text)", a_same_expansion),
    ("edit partner_id column", a_edit_partner_col),
    ("edit the hash column (schema 2: prev_hash)", a_edit_prev_col),
    ("delete a middle row", a_delete_middle),
    ("delete a middle row + renumber global_seq", a_delete_middle_renumbered),
    ("delete the last row", a_delete_last),
    ("delete the last 3 rows", a_delete_last3),
    ("delete the last 3 rows + fix meta count (no head in schema 4)", a_delete_last3_fix_meta),
    ("delete every lineage row + meta count", a_wipe_all),
    ("swap two rows (#20 <-> #200)", a_swap_rows),
    ("swap two adjacent events of one partner", a_swap_adjacent_same_partner),
    ("insert forged row at end (made-up hashes)", a_insert_forged_end),
    ("insert forged row in the middle (own hashes ok)", a_insert_forged_middle),
    ("append forged event, hashes + meta recomputed", a_forged_append_consistent),
    ("rewrite a partner's history, all hashes recomputed", a_rewrite_partner_consistent),
    ("erase a partner's history, all hashes recomputed", a_erase_partner_consistent),
    ("texts: edit a rite", a_text_rite),
    ("texts: edit a signer (authority:key)", a_text_authority),
    ("texts: rename the state key `permissions`", a_text_key),
    ("texts: delete a text events name", a_text_delete),
    ("texts: swap two texts", a_text_swap),
    ("partners: edit a packed state in place (write -> admin)", a_packed_in_place),
    ("partners: state written back as JSON text with admin", a_state_as_json),
    ("partners: a packed state that does not unpack", a_packed_damaged),
    ("edit meta.global_count", a_meta_count),
    ("delete meta", a_meta_deleted),
    ("partners: edit state (packed again)/version", a_partner_state),
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


def events_of(db):
    """Every lineage row as pmf reads it: (global_seq, partner, seq, event value, hash)."""
    texts = E.texts(db)
    out = []
    for g, p, s, ev, h in C.db_rows(db, "SELECT global_seq, partner_id, seq, event, hash FROM lineage ORDER BY global_seq"):
        try:
            e = E.decode(ev, texts)
        except Exception as ex:  # noqa: BLE001 (a row the attack made unreadable)
            e = f"unreadable: {ex}"
        out.append((g, p, s, json.dumps(e, sort_keys=True), bytes(h)))
    return out


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
        before_events = events_of(store)
        if fn in (a_corrupt_page, a_corrupt_partners_page):
            table = "lineage" if fn is a_corrupt_page else "partners"
            pages = pages_of(store, table) or [4]
            page = pages[0]
            psize = C.db_rows(store, "PRAGMA page_size")[0][0]
            with open(store, "r+b") as fh:
                # Overwrite the rows themselves: from the start of the page's cell content
                # area (header bytes 5-6; pages are 16 KiB since schema 4, so a fixed offset
                # can land in a leaf's free space, which holds no data and changes nothing).
                base = psize * (page - 1)
                fh.seek(base + (100 if page == 1 else 0) + 5)
                start = int.from_bytes(fh.read(2), "big") or 65536
                n = min(4096, psize - start)
                fh.seek(base + start)
                fh.write((bytes(range(256)) * 16)[:n])
            note = f"{n} bytes of row data overwritten in page {page} ({table}) of state.db (from offset {start})"
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
            perms = (C.partner_state(store, "p-002") or {}).get("permissions", [])
            extra += f"; p-002 now has admin: {'admin' in perms}"
            if "admin" in perms:
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
        if fn is a_same_expansion:
            # By design (crates/pmf-store/src/lineage.rs `expand`): the chain hash, the Merkle
            # leaves, checkpoints and proofs cover an interned event's compact expansion, not
            # its stored bytes, so another encoding with the same expansion is the same event.
            # Held when it verifies AND every event (and hash) reads back exactly as before.
            same = events_of(store) == before_events
            result = f"verify rc={rc}; every event reads back the same: {same}"
            T.add(name, rc == 0 and same, result, f"{note}; {msg[:240]}")
            rows[-1]["design"] = True
            continue
        if harm:
            result += "; " + harm
        T.add(name, named and not harm, result, f"{note}; {msg[:240]}; {extra}")


if __name__ == "__main__":
    sys.exit(main())
