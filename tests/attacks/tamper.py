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
the `texts` table), states packed (object keys as ids into `texts`). A lineage
row holds one event, or a partner's whole run of them (RUN, 0x04: what apply,
rollback and review write, a walk in one row): varint n, then each stored event
(varint length, bytes); its `hash` column the n chain hashes concatenated. The
row's global_seq and seq are its first event's; event i is at global_seq + i,
seq + i. The attacks work on EVENTS (positions `#N` are of events; pmfevent.rows
/ events split rows, join_row writes them back). The consistent rewrites
recompute the hashes exactly as the store does:
  hash = sha256("pmf-event-v2" 0 prev varint(seq) varint(len(partner)) partner compact)
where `compact` is the event's COMPACT encoding (an interned body expanded
with the texts, pmfevent.expand), and meta.global_count = number of EVENTS.
There is no global chain column and no meta.global_head any more: the order
of the events is bound by the Merkle tree over every event's hash (log order)
whose roots the operator signs (`checkpoints`), so runs swapped across
partners, and the consistent rewrites, are caught by the checkpoint ("events
#a-#b do not match the checkpoint signed at ...") rather than by a global link.
The texts table and the packed states are attacked too: an edited text changes
every event (hash) and state (the lineage's row digests are of the JSON text)
naming it.

Two controls keep the verdicts honest: the untouched store must verify (exit
0), and so must the store after an honest second plan applied on it.
"""

import hashlib
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
    """Recompute every partner chain hash from log position start_gseq on (over the bodies
    expanded to the compact encoding; event i of a row at global_seq + i, seq + i), write
    every row back with its events' hashes, and set meta.global_count to the number of
    EVENTS (schema 4 rules; there is no global chain or head to recompute: only the
    signed checkpoints bind the order)."""
    texts = E.texts(c)
    rows = E.rows(c)
    heads = {}
    out = []
    n = 0
    for g, p, s, evs in rows:
        new = []
        for i, (body, h) in enumerate(evs):
            prev = heads.get(p, E.GENESIS)
            if g + i >= start_gseq:
                h = E.stored_hash(prev, p, s + i, body, texts)
            heads[p] = bytes(h)
            new.append((body, h))
            n += 1
        out.append((g, p, s, new))
    E.write_rows(c, out)
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(n),))


def renumber(c, rows=None):
    """Write `rows` (default: the store's) back with global_seq 1, 1+n1, ... (each row's
    first event's log position) and every partner's seq 1..k counted in events (a
    compact event holds neither); rows with no events are dropped. Hashes unchanged."""
    rows = E.rows(c) if rows is None else rows
    out, g, per = [], 1, {}
    for _g, p, _s, evs in rows:
        if not evs:
            continue
        out.append((g, p, per.get(p, 0) + 1, evs))
        g += len(evs)
        per[p] = per.get(p, 0) + len(evs)
    E.write_rows(c, out)
    return out


def at(c, pos):
    """The row holding the event at log position `pos`: (index of the row in E.rows, row, i in the row)."""
    for k, (g, p, s, evs) in enumerate(rows := E.rows(c)):
        if g <= pos < g + len(evs):
            return k, rows[k], pos - g
    raise KeyError(f"no event #{pos}")


def set_event(c, pos, body=None, hash_=None):
    """Replace the body (and/or hash) of the event at log position `pos` inside its row
    (a RUN row is written back whole, the other events as they were)."""
    _k, (g, p, s, evs), i = at(c, pos)
    b, h = evs[i]
    evs = list(evs)
    evs[i] = (b if body is None else body, h if hash_ is None else hash_)
    E.update_row(c, g, evs)
    return g, p, s + i


def last_pos(c):
    g, p, s, evs = E.rows(c)[-1]
    return g + len(evs) - 1


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
# Positions (#N) are of EVENTS: a row may hold a partner's whole walk (a RUN), and
# its event i is at global_seq + i; every edit below is of events, written back as rows.
def a_edit_text(c, d):
    texts = E.texts(c)
    healths = [(g, ev) for g, _p, _s, ev, _h in E.events(c) if E.decode(ev, texts)["kind"] == "health"]
    g, ev = healths[3]
    e = E.decode(ev, texts)
    e["health"] = 99.0
    # stored as pmf stores it (interned, the texts it names already in the table), inside its row
    row = set_event(c, g, E.encode_interned(e, E.ids_of(texts)))
    return f"event #{g} ({row[1]} seq {row[2]}, inside its RUN row): health -> 99 (interned, as pmf writes it)"


def a_edit_compact(c, d):
    texts = E.texts(c)
    g, _p, _s, ev, _h = E.events(c)[60]
    e = E.decode(ev, texts)
    e["detail"] = "version 9.9.9 released"
    set_event(c, g, E.encode(e))
    return f"event #{g}: detail edited, stored compact (0x02, which a store still accepts) inside its RUN row"


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
    g, _p, _s, ev, _h = E.events(c)[100]
    e = E.decode(ev, texts)
    # The same event in the compact encoding, its time written as text instead of
    # seconds (bit 18 cleared): the bytes the chain hash covers change, the value not.
    same = time_as_text(E.encode(e))
    assert E.decode(same) == e and E.expand(same, texts) != E.expand(ev, texts)
    set_event(c, g, same)
    return f"event #{g}: stored compact with its time as text inside its RUN row (same event value, other hashed bytes)"


def a_same_expansion(c, d):
    texts = E.texts(c)
    (g1, _p1, _s1, ev1, _h1), (g2, _p2, _s2, ev2, _h2) = E.events(c)[110:112]
    a = E.encode(E.decode(ev1, texts))          # the interned event stored as its expansion
    b = time_as_text(bytes(ev2))                # interned, its time as text
    assert E.expand(a, texts) == E.expand(ev1, texts) and E.expand(b, texts) == E.expand(ev2, texts)
    set_event(c, g1, a)
    set_event(c, g2, b)
    return (f"event #{g1} stored as its compact expansion, event #{g2} interned with its time as text (inside "
            "their RUN rows): other bytes, the same event value and the same hashed (expanded) bytes")


def a_edit_partner_col(c, d):
    g, p, s, ev, h = [e for e in E.events(c) if e[1] == "p-003"][2]
    _k, (rg, _p, _s, evs), i = at(c, g)
    c.execute("UPDATE lineage SET partner_id='p-999' WHERE global_seq=?", (rg,))
    return f"partner_id column of the row holding p-003's 3rd event (#{g}; row #{rg}, its {len(evs)} events) set to p-999"


def a_edit_partner_one_event(c, d):
    # the finer edit: p-003's 3rd event alone moved to another partner (its RUN row cut in
    # three rows: events 1-2, event 3 under p-999, events 4..; every hash kept)
    g = [e for e in E.events(c) if e[1] == "p-003"][2][0]
    k, (rg, p, s, evs), i = at(c, g)
    rows = E.rows(c)
    parts = [(rg, p, s, evs[:i]), (rg + i, "p-999", s + i, evs[i:i + 1]), (rg + i + 1, p, s + i + 1, evs[i + 1:])]
    E.write_rows(c, rows[:k] + [r for r in parts if r[3]] + rows[k + 1:])
    return f"p-003's 3rd event (#{g}) split out of its RUN row into a row of its own under partner p-999 (hashes kept)"


def a_edit_prev_col(c, d):
    g, p, s = set_event(c, 50, hash_=bytes.fromhex("ab" * 32))
    return f"the hash of event #50 ({p} seq {s}) inside its row's hash column (schemas 3 and 4 keep no prev_hash column)"


def a_truncate_run_hashes(c, d):
    # a RUN row's hash column cut by one hash: the row no longer splits (7 events, 6 hashes)
    g, p, s, evs = next(r for r in E.rows(c) if r[1] == "p-020")
    body, hashes = E.join_row(evs)
    c.execute("UPDATE lineage SET hash=? WHERE global_seq=?", (hashes[:-32], g))
    return f"row #{g} ({p}, a RUN of {len(evs)} events): its hash column cut to {len(evs) - 1} hashes"


def a_run_count(c, d):
    # a RUN row whose count says one event fewer, the last event and its hash dropped: a
    # consistent-looking shorter run (the next row then starts one position late)
    g, p, s, evs = next(r for r in E.rows(c) if r[1] == "p-021")
    E.update_row(c, g, evs[:-1])
    return f"row #{g} ({p}): its RUN rewritten without its last event (count {len(evs)} -> {len(evs) - 1}, hash dropped too)"


def a_reorder_in_run(c, d):
    # two events inside one RUN row swapped, bodies AND their hashes (each keeps its own hash)
    g, p, s, evs = next(r for r in E.rows(c) if r[1] == "p-012")
    evs = list(evs)
    evs[3], evs[4] = evs[4], evs[3]
    E.update_row(c, g, evs)
    return f"p-012's RUN row #{g}: events 4 and 5 (#{g + 3}, #{g + 4}) swapped with their hashes"


def a_merge_partners_run(c, d):
    # two partners' walks (adjacent rows) merged into one RUN row under the first partner
    rows = E.rows(c)
    k = next(k for k, r in enumerate(rows) if r[1] == "p-012")
    (g, p, s, evs), (g2, p2, _s2, evs2) = rows[k], rows[k + 1]
    assert p2 != p and g2 == g + len(evs)
    E.write_rows(c, rows[:k] + [(g, p, s, list(evs) + list(evs2))] + rows[k + 2:])
    return f"rows #{g} ({p}) and #{g2} ({p2}) merged into one RUN row of {len(evs) + len(evs2)} events under {p} (hashes kept)"


def a_split_run_rows(c, d):
    # design: a RUN row written as single-event rows, the same events and hashes at the same
    # positions (what pmf writes for a walk of one event)
    rows = E.rows(c)
    k = next(k for k, r in enumerate(rows) if r[1] == "p-012")
    g, p, s, evs = rows[k]
    singles = [(g + i, p, s + i, [ev]) for i, ev in enumerate(evs)]
    E.write_rows(c, rows[:k] + singles + rows[k + 1:])
    return f"p-012's RUN row #{g} ({len(evs)} events) written as {len(evs)} single-event rows, same events and hashes"


def a_delete_middle_row(c, d):
    _k, (g, p, s, evs), _i = at(c, 150)
    c.execute("DELETE FROM lineage WHERE global_seq=?", (g,))
    return f"deleted row #{g} (the one holding #150: {p}'s whole walk, {len(evs)} events)"


def remove_event(c, pos):
    """The event at `pos` taken out of its row (the row rewritten without it, or deleted
    when it was the row's only one); the other rows as they are."""
    _k, (g, p, s, evs), i = at(c, pos)
    evs = list(evs)
    del evs[i]
    if i == 0 and evs:
        # the row's first event gone: the row now starts at the next one
        c.execute("DELETE FROM lineage WHERE global_seq=?", (g,))
        c.execute("INSERT INTO lineage VALUES (?,?,?,?,?)", (g + 1, p, s + 1) + E.join_row(evs))
    else:
        E.update_row(c, g, evs)
    return g, p, s + i


def a_delete_middle(c, d):
    g, p, s = remove_event(c, 150)
    return f"deleted event #150 ({p} seq {s}) from inside its RUN row #{g} (the row rewritten without it)"


def a_delete_middle_renumbered(c, d):
    k, (g, p, s, evs), i = at(c, 150)
    rows = E.rows(c)
    evs = list(evs)
    del evs[i]
    rows[k] = (g, p, s, evs)
    # close the gap: every later row one position earlier (not the hashes)
    rows = [(rg - 1 if rg > g else rg, rp, rs, re) for rg, rp, rs, re in rows]
    E.write_rows(c, rows)
    return f"deleted event #150 ({p} seq {s + i}) from its RUN row #{g} and moved every later row one position back"


def delete_last(c, n):
    """Delete the last `n` events of the log (shortening or removing rows, last first)."""
    gone = []
    for _ in range(n):
        pos = last_pos(c)
        gone.append(pos)
        _k, (g, p, s, evs), i = at(c, pos)
        E.update_row(c, g, evs[:-1])
    return gone


def a_delete_last(c, d):
    gone = delete_last(c, 1)
    return f"deleted the last event (#{gone[0]}, the last of its RUN row)"


def a_delete_last3(c, d):
    gone = delete_last(c, 3)
    return f"deleted the last 3 events (#{gone[-1]}-#{gone[0]}: p-001's rollback run cut to its first event)"


def a_delete_last3_fix_meta(c, d):
    delete_last(c, 3)
    n = last_pos(c)
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(n),))
    # schema 4 keeps no head hash: the count is all the meta there is to fix (the
    # partner chains of the remaining events are intact; the signed checkpoints are not)
    return f"deleted the last 3 events (p-001's rollback run cut to one event) and set meta.global_count to the {n} events left"


def a_wipe_all(c, d):
    c.execute("DELETE FROM lineage")
    c.execute("DELETE FROM meta WHERE key='global_count'")
    return "deleted every lineage row and meta.global_count (partners kept)"


def a_swap_rows(c, d):
    # two partners' walks of the same length swapped (all 4 columns but global_seq):
    # every position still follows on, each partner's chain still links
    _k, r1, _i = at(c, 20)
    r2 = next(r for r in reversed(E.rows(c)) if len(r[3]) == len(r1[3]) and r[1] != r1[1] and not r[1].startswith("@"))
    g1, g2 = r1[0], r2[0]
    c.execute("UPDATE lineage SET partner_id='__tmp', seq=-1 WHERE global_seq=?", (g1,))  # UNIQUE(partner_id, seq)
    c.execute("UPDATE lineage SET partner_id=?, seq=?, event=?, hash=? WHERE global_seq=?", (r1[1], r1[2]) + E.join_row(r1[3]) + (g2,))
    c.execute("UPDATE lineage SET partner_id=?, seq=?, event=?, hash=? WHERE global_seq=?", (r2[1], r2[2]) + E.join_row(r2[3]) + (g1,))
    # only the signed Merkle roots bind the order
    return f"swapped rows #{g1} ({r1[1]}) and #{g2} ({r2[1]}), RUNs of {len(r1[3])} events each (all 4 columns but global_seq)"


def a_swap_adjacent_same_partner(c, d):
    g, p, s, evs = next(r for r in E.rows(c) if r[1] == "p-012")
    evs = list(evs)
    (b1, h1), (b2, h2) = evs[3], evs[4]
    evs[3], evs[4] = (b2, h1), (b1, h2)
    E.update_row(c, g, evs)
    return f"swapped the event bodies (not the hashes) of p-012's events 4 and 5 (#{g + 3}, #{g + 4}) inside its RUN row"


def a_insert_forged_end(c, d):
    g = last_pos(c)
    s = max(e[2] for e in E.events(c, "partner_id='p-007'"))
    ev = E.encode({"kind": "approved", "approvals": ["SCO"], "time": "2026-01-01T00:00:00Z"})
    c.execute("INSERT INTO lineage VALUES (?,?,?,?,?)", (g + 1, "p-007", s + 1, ev, bytes.fromhex("cd" * 32)))
    return "appended a forged `approved by SCO` event (compact) with a made-up hash"


def a_insert_forged_middle(c, d):
    # the row holding #101 cut in two before it (the same events), the forged row put between,
    # every later row one position on
    k, (g, p, s, evs), i = at(c, 101)
    rows = E.rows(c)
    ev = E.encode({"kind": "completed", "time": "2026-01-01T00:00:00Z"})
    h = E.chain(E.GENESIS, "zz-forged", 1, ev)
    forged = (101, "zz-forged", 1, [(ev, h)])
    head = [(g, p, s, evs[:i])] if i else []
    tail = [(101 + 1, p, s + i, evs[i:])]
    later = [(rg + 1, rp, rs, re) for rg, rp, rs, re in rows[k + 1:]]
    E.write_rows(c, rows[:k] + head + [forged] + tail + later)
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(last_pos(c)),))
    return (f"inserted a forged event (correct own chain hash) as #101 (row #{g} of {p} cut before it), later events "
            "shifted by one, meta.global_count fixed")


def a_forged_append_consistent(c, d):
    g = last_pos(c)
    _g, _p, s, _b, prev = E.events(c, "partner_id='p-007'")[-1]
    e = {"phase": "preparation", "kind": "approved", "approvals": ["SCO"], "time": "2026-12-01T00:00:00Z"}
    ev = E.encode_interned(e, E.interner(c))  # stored as pmf stores it; new texts added to `texts`
    h = E.chain(bytes(prev), "p-007", s + 1, E.encode(e))
    c.execute("INSERT INTO lineage VALUES (?,?,?,?,?)", (g + 1, "p-007", s + 1, ev, h))
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(g + 1),))
    return "appended a forged interned `approved by SCO` event to p-007 with a correct chain hash and meta.global_count"


def a_forged_into_last_run(c, d):
    # the last RUN row (p-001's rollback walk) given one more event, its hash chained on
    g, p, s, evs = E.rows(c)[-1]
    assert len(evs) >= 2
    e = {"phase": "preparation", "kind": "approved", "approvals": ["SCO"], "time": "2026-12-01T00:00:00Z"}
    ev = E.encode_interned(e, E.interner(c))
    h = E.chain(bytes(evs[-1][1]), p, s + len(evs), E.encode(e))
    E.update_row(c, g, list(evs) + [(ev, h)])
    c.execute("UPDATE meta SET value=? WHERE key='global_count'", (str(g + len(evs)),))
    return (f"the last RUN row (#{g}, {p}) extended with a forged interned `approved by SCO` event (#{g + len(evs)}), "
            "correct chain hash and meta.global_count")


def edit_chain(c, partner, edit):
    """Every event of `partner`'s chain edited by `edit` (a dict, in place), stored interned
    in its rows as pmf stores it, then every chain hash recomputed from its first row; that
    row's global position."""
    texts = E.texts(c)
    intern = E.interner(c)
    rows = E.rows(c, "partner_id=?", (partner,))
    for g, _p, _s, evs in rows:
        new = []
        for ev, h in evs:
            e = E.decode(ev, texts)
            edit(e)
            new.append((E.encode_interned(e, intern), h))
        E.update_row(c, g, new)
    rechain(c, rows[0][0])
    return rows[0][0]


def a_rewrite_partner_consistent(c, d):
    # p-012's history: pretend it was approved by SCO and completed cleanly at a health of 97
    def healthy(e):
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
    first_g = edit_chain(c, "p-012", healthy)
    return f"rewrote every event of p-012 (health, approvals, outcome; interned, in its RUN row) and recomputed every chain hash from #{first_g}"


def a_rewrite_then_write(c, d):
    note = a_rewrite_partner_consistent(c, d)
    return note + "; then a new partner is imported and an honest second plan approved and applied"


def a_edit_last_then_write(c, d):
    # p-003's last event re-encoded with another time, its chain hash kept: the log's
    # Merkle root is still the signed one; only the event's own hash tells.
    texts = E.texts(c)
    g, _p, _s, evs = E.rows(c, "partner_id='p-003'")[-1]
    ev, h = evs[-1]
    e = E.decode(ev, texts)
    e["time"] = "2020-01-01T00:00:00Z"
    E.update_row(c, g, list(evs[:-1]) + [(E.encode_interned(e, E.interner(c)), h)])
    return ("p-003's last event given another time, its chain hash kept; then a new partner is imported "
            "and an honest second plan approved and applied (p-003's walk must not go on)")


WRITE_AFTER = (a_rewrite_then_write, a_edit_last_then_write)


def forge_illumination(c):
    """The last `@illumination` event (the outcome counts fallback risks are predicted from)
    made to say every migration succeeded a thousand times: a risky migration looks safe to
    the plan's signers. Its chain hash kept; returns its global position."""
    texts = E.texts(c)
    g, _p, _s, evs = E.rows(c, "partner_id='@illumination'")[-1]
    ev, h = evs[-1]
    e = E.decode(ev, texts)
    e["detail"] = "; ".join(count.split(": ")[0] + ": 1000 migrated, 0 fell back"
                            for count in e["detail"].split("; "))
    E.update_row(c, g, list(evs[:-1]) + [(E.encode_interned(e, E.interner(c)), h)])
    return g + len(evs) - 1


def a_illumination_in_place(c, d):
    pos = forge_illumination(c)
    return (f"the illumination counts (#{pos}, `@illumination`) made to say every migration succeeded, "
            "the chain hash kept; then the fleet is planned again (its risks must not come from them)")


def a_illumination_consistent(c, d):
    pos = forge_illumination(c)
    rechain(c, pos)
    return (f"the illumination counts (#{pos}) made to say every migration succeeded, every hash recomputed; "
            "then the fleet is planned again, approved and applied")


def illumination_used(pmf, w, store, consistent):
    """Plan the fleet again from the forged counts: edited in place, `plan` must refuse to read
    them; rewritten consistently, the plan made from them must apply nothing."""
    rc, cur, e, _ = C.run([pmf, "state", "export", "--format", "ndjson"], cwd=w)
    open(os.path.join(w, "current.ndjson"), "w").write(cur)
    f = C.fleet_dir()
    prc, o, pe, _ = C.run([pmf, "plan", "--policy", C.policy_path(), "--partners", "current.ndjson", "--target",
                           os.path.join(f, "target.json"), "-o", "plan2.json"], cwd=w)
    extra = f"plan rc={prc} ({(pe or o).strip()[:160]})"
    if not consistent:
        return extra, "" if prc == 2 else "the plan read counts edited in place as its history"
    before = C.db_rows(store, "SELECT COUNT(*) FROM lineage WHERE partner_id NOT LIKE '@%'")[0][0]
    for a in ("TSC", "ERC", "SCO"):
        C.run([pmf, "approve", "plan2.json", "--key", a + ".key", "-o", "approvals2.json", "--yes"], cwd=w)
    arc, o, ae, _ = C.run([pmf, "apply", "plan2.json", "--approvals", "approvals2.json"], cwd=w)
    after = C.db_rows(store, "SELECT COUNT(*) FROM lineage WHERE partner_id NOT LIKE '@%'")[0][0]
    extra += f"; apply rc={arc} ({(ae or o).strip()[:160]}); partner events {before} -> {after}"
    harm = "" if prc == 0 and arc in (1, 2) and after == before else "a plan made from forged counts was applied"
    return extra, harm


def write_after(pmf, w, store, partner=None):
    """`state import` of a new partner, then an honest second plan applied: on a log its
    checkpoints do not vouch for, both must refuse and write nothing. With `partner` (whose
    last event was edited, the log's root intact), the apply must refuse and write nothing
    of it (an import of another partner starts from nothing of it)."""
    where = f" WHERE partner_id='{partner}'" if partner else ""
    rows = lambda: C.db_rows(store, f"SELECT COUNT(*), (SELECT COUNT(*) FROM partners) FROM lineage{where}")[0]
    before = rows()
    p = json.load(open(os.path.join(C.fleet_dir(), "partners.json")))[0]
    p["id"] = "p-new"
    json.dump([p], open(os.path.join(w, "new.json"), "w"))
    irc, o, e, _ = C.run([pmf, "state", "import", "new.json", "--policy", C.policy_path()], cwd=w)
    arc, summary = control_replan(pmf, w)
    after = rows()
    extra = (f"import rc={irc} ({(e or o).strip()[:140]}); apply rc={arc} ({summary[:140]}); "
             f"lineage rows and partners before {before}, after {after}")
    harm = ""
    refused = lambda rc: rc in (1, 2)
    if partner and (after[0] != before[0] or not refused(arc)):
        harm = f"the plan over {partner} was applied from its edited last event"
    elif not partner and (after != before or not refused(irc) or not refused(arc)):
        harm = "the store was written over a log its checkpoints do not vouch for"
    return extra, harm


def a_erase_partner_consistent(c, d):
    c.execute("DELETE FROM lineage WHERE partner_id='p-019'")
    renumber(c)
    rechain(c, 1)
    return "deleted p-019's whole history, renumbered (positions counted in events), recomputed every hash"


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


def a_kept_policy(c, d):
    """The text the store keeps of its governing policy, a ceiling relaxed:
    an auditor reading the rules from the store would read others than
    those in force (schema 6 on)."""
    import json as _json
    h, src = q(c, "SELECT hash, sources FROM policies")[0]
    sources = _json.loads(src)
    for k, t in sources.items():
        if "override ceiling power <= 7" in t:
            sources[k] = t.replace("override ceiling power <= 7", "override ceiling power <= 9")
            break
    else:
        raise AssertionError("the kept policy has no power ceiling to relax")
    c.execute("UPDATE policies SET sources=? WHERE hash=?", (_json.dumps(sources), h))
    return f"policies: the kept text of {h[:12]} given `power <= 9`"


def a_kept_policy_deleted(c, d):
    """The text the store keeps of its governing policy, deleted: the rules
    hidden from an auditor, as if the policy had governed before schema 6."""
    h = q(c, "SELECT hash FROM policies")[0][0]
    c.execute("DELETE FROM policies")
    return f"policies: the kept text of {h[:12]} deleted"


def a_operator_key_pinned(c, d):
    """Whoever can write the store file, without the operator key, pins a key of
    their own (made by pmf in a store of their own) and then has pmf record its
    succession to another of theirs (`pmf state rekey`, run after this edit): the
    checkpoints before it are signed by the store's real key, not by the key the
    forged succession replaces."""
    scratch = os.path.join(d, "mallory")
    os.makedirs(scratch, exist_ok=True)
    rc, o, e, _ = C.run([C.pmf_bin(), "state", "import", os.path.join(C.fleet_dir(), "partners.json"),
                         "--policy", C.policy_path(), "--reason", "mine"], cwd=scratch)
    assert rc == 0, e
    shutil.copy(os.path.join(scratch, ".pmf", "operator.key"), os.path.join(d, "mallory.key"))
    key = json.load(open(os.path.join(d, "mallory.key")))["public_key"]
    c.execute("UPDATE meta SET value=? WHERE key='operator_key'", (key,))
    return f"meta.operator_key set to a key of the attacker's ({key[:12]}…), then `pmf state rekey` to another"


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
    c.execute("INSERT INTO partners VALUES ('ghost-1', ?, '1.6.0', 'active')",
              (E.pack_state(text, E.interner(c)),))
    return "a partner with no lineage inserted (p-020's state, packed)"


def a_legacy_count_raised(c, d):
    note = a_partner_insert(c, d)
    c.execute("UPDATE meta SET value='100000' WHERE key='checkpoints_from'")
    return (note + "; meta.checkpoints_from (events before signed checkpoints, a schema-1 store's) raised to 100000, "
            "so the row would pass as a legacy store's; then the fleet is planned again with it, approved and applied")


def legacy_used(pmf, w, store):
    """A plan over the inserted partner must apply nothing of it."""
    before = C.db_rows(store, "SELECT COUNT(*) FROM lineage WHERE partner_id='ghost-1'")[0][0]
    arc, summary = control_replan(pmf, w)
    after = C.db_rows(store, "SELECT COUNT(*) FROM lineage WHERE partner_id='ghost-1'")[0][0]
    extra = f"apply rc={arc} ({summary[:160]}); ghost-1's events {before} -> {after}"
    return extra, "" if arc in (1, 2) and after == before else "the partner inserted without lineage was migrated"


def a_partner_row_deleted(c, d):
    st = E.state_json(q(c, "SELECT state FROM partners WHERE id='p-014'")[0][0], E.texts(c))
    st["permissions"] = ["read", "write", "admin"]
    with open(os.path.join(d, "import.json"), "w") as fh:
        json.dump([st], fh)
    c.execute("DELETE FROM partners WHERE id='p-014'")
    return ("p-014's row deleted, so it looks like a new partner; then `pmf state import` of its state with `admin` "
            "(no `--replace`, no approval)")


def a_merkle_head_edited(c, d):
    peaks = q(c, "SELECT value FROM meta WHERE key='merkle_peaks'")[0][0]
    c.execute("UPDATE meta SET value=? WHERE key='merkle_peaks'", (peaks[:-1] + ("0" if peaks[-1] != "0" else "1"),))
    return "meta.merkle_peaks (the head writers extend the log from) edited: every write refuses it"


def a_checkpoint_deleted(c, d):
    sizes = [r[0] for r in q(c, "SELECT size FROM checkpoints ORDER BY size")]
    c.execute("DELETE FROM checkpoints WHERE size=?", (sizes[-2],))
    return (f"the checkpoint of {sizes[-2]} events (of {len(sizes)}) deleted from before the latest: the checkpoints "
            "chain since schema 10 (6077184's verify passed it)")


def a_stable_planted(c, d):
    c.execute("INSERT INTO stable_versions (partner_id, seq, version, state) "
              "SELECT 'p-777', 1, '1.0.0', state FROM stable_versions WHERE partner_id='p-002' ORDER BY seq LIMIT 1")
    return ("a stable version planted for a partner to come (p-777, none yet): the first apply of p-777 failed on "
            "SQLite's `UNIQUE constraint failed` saying a re-run resumes, and an import of it joined the plant; "
            "f8da10e's verify passed it (storefuzz.py's audit oracle found it)")


def a_plan_marks_lowered(c, d):
    first_g = edit_chain(c, "@plans", lambda e: e.update(detail="3 partners"))
    return (f"the plans' marks (`@plans`, from #{first_g}) made to say each plan held 3 partners, every chain hash "
            "recomputed: fewer partners seem to have been in the plans")


def a_text_as_blob(c, d):
    c.execute("UPDATE texts SET text=CAST(text AS BLOB) || x'ff' WHERE id=(SELECT MIN(id) FROM texts)")
    return "a text of the table of texts stored as a blob, not UTF-8 (SQLite keeps any value in any column; 9f6342f's verify stopped with SQLite's words, exit 2)"


def row_deleted_used(pmf, w, store):
    """The import must not take p-014 for a new partner."""
    rc, o, e, _ = C.run([pmf, "state", "import", "import.json", "--policy", C.policy_path()], cwd=w)
    perms = (C.partner_state(store, "p-014") or {}).get("permissions", [])
    extra = f"import rc={rc} ({(e or o).strip()[:160]}); p-014 has admin: {'admin' in perms}"
    return extra, "p-014's state was rewritten by an import, with no approval" if "admin" in perms else ""


def a_stable_versions(c, d):
    st = E.state_json(q(c, "SELECT state FROM stable_versions WHERE partner_id='p-002' ORDER BY seq LIMIT 1")[0][0], E.texts(c))
    st["permissions"] = ["read", "write", "admin"]
    packed = E.pack_state(json.dumps(st, separators=(",", ":"), sort_keys=True), E.interner(c))
    assert packed
    c.execute("UPDATE stable_versions SET state=? WHERE partner_id='p-002' AND seq=1", (packed,))
    return "p-002's first stable version gets `admin`; then `pmf rollback p-002` is run"


def stable_digest(seq, version, state_text):
    """crates/pmf-store/src/lib.rs `stable_digest`: SHA-256 over its number, version and state."""
    h = hashlib.sha256(b"pmf-stable-v1\0" + str(seq).encode() + b"\0" + (version or "").encode() + b"\0"
                       + state_text.encode())
    return h.hexdigest()


def a_stable_versions_consistent(c, d):
    # As a_stable_versions, and the digest p-002's lineage records of that stable version
    # rewritten to match, with every chain hash recomputed after it: only the signed
    # checkpoints still bind the old log.
    texts = E.texts(c)
    seq, version, old = q(c, "SELECT seq, version, state FROM stable_versions WHERE partner_id='p-002' ORDER BY seq LIMIT 1")[0]
    before = stable_digest(seq, version, E.unpack_state(old, texts))
    st = E.state_json(old, texts)
    st["permissions"] = ["read", "write", "admin"]
    packed = E.pack_state(json.dumps(st, separators=(",", ":"), sort_keys=True), E.interner(c))
    c.execute("UPDATE stable_versions SET state=? WHERE partner_id='p-002' AND seq=?", (packed, seq))
    after = stable_digest(seq, version, E.unpack_state(packed, E.texts(c)))
    texts = E.texts(c)
    intern = E.interner(c)
    rewritten = None
    for g, _p, _s, evs in E.rows(c, "partner_id='p-002'"):
        new = []
        for ev, h in evs:
            e = E.decode(ev, texts)
            if before in e.get("stable", []):
                e["stable"] = [after if x == before else x for x in e["stable"]]
                rewritten = rewritten or g
                new.append((E.encode_interned(e, intern), h))
            else:
                new.append((ev, h))
        E.update_row(c, g, new)
    assert rewritten, "no event of p-002 records its first stable version"
    rechain(c, rewritten)
    return ("p-002's first stable version gets `admin`, the digest its lineage records rewritten to match and every "
            f"chain hash recomputed from #{rewritten}; then `pmf rollback p-002` is planned, approved and applied")


def a_progress_delete(c, d):
    c.execute("DELETE FROM progress")
    return "progress rows deleted; then the same plan is applied again"


def a_progress_marked_done(c, d):
    (p,) = q(c, "SELECT partner_id FROM progress WHERE outcome='awaiting_review' ORDER BY partner_id LIMIT 1")[0]
    c.execute("UPDATE progress SET outcome='completed' WHERE partner_id=?", (p,))
    return f"progress row of {p} (paused, awaiting review) set to `completed`; then the same plan is applied again"


def a_rolled_back(c, d):
    return ("a new partner imported (the operator key remembers the checkpoint it signed), then the store "
            "before the import put back (a backup restored: no key needed), then another partner imported")


def rolled_back(pmf, w, store):
    """The store copied, a partner imported, the copy put back, another partner imported: the
    second import must be refused (the key remembers a checkpoint the store no longer holds)."""
    shutil.copy(store, store + ".backup")
    p = json.load(open(os.path.join(C.fleet_dir(), "partners.json")))[0]
    for n in ("1", "2"):
        q_ = dict(p, id="p-new-" + n)
        json.dump([q_], open(os.path.join(w, f"new{n}.json"), "w"))
    rc1, o1, e1, _ = C.run([pmf, "state", "import", "new1.json", "--policy", C.policy_path()], cwd=w)
    for suf in ("-wal", "-shm"):
        if os.path.exists(store + suf):
            os.remove(store + suf)
    shutil.copy(store + ".backup", store)
    before = C.db_rows(store, "SELECT COUNT(*) FROM partners")[0][0]
    rc2, o2, e2, _ = C.run([pmf, "state", "import", "new2.json", "--policy", C.policy_path()], cwd=w)
    after = C.db_rows(store, "SELECT COUNT(*) FROM partners")[0][0]
    extra = (f"first import rc={rc1}; after the restore, import rc={rc2} ({(e2 or o2).strip()[:160]}); "
             f"partners {before} -> {after}")
    harm = ""
    if rc1 != 0 or rc2 not in (1, 2) or after != before:
        harm = "the store rolled back behind what its key signed was written"
    memory = [f for f in os.listdir(os.path.join(w, ".pmf")) if f.startswith("operator.key.signed-")]
    return extra, harm, [os.path.join(w, ".pmf", memory[0])] if memory else []


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
    ("edit partner_id column (a whole RUN row)", a_edit_partner_col),
    ("edit partner_id of one event (split out of its RUN row)", a_edit_partner_one_event),
    ("edit an event's hash in a RUN row's hash column (schema 2: prev_hash)", a_edit_prev_col),
    ("RUN: truncate a row's hash column by one hash", a_truncate_run_hashes),
    ("RUN: drop a row's last event and its hash (count fixed)", a_run_count),
    ("RUN: reorder two events inside a row (bodies and hashes)", a_reorder_in_run),
    ("RUN: merge two partners' rows into one RUN", a_merge_partners_run),
    ("design: a RUN row split into single-event rows (same events, hashes)", a_split_run_rows),
    ("delete a middle row (a partner's whole walk)", a_delete_middle_row),
    ("delete a middle event (from inside its RUN row)", a_delete_middle),
    ("delete a middle event + renumber global_seq", a_delete_middle_renumbered),
    ("delete the last event", a_delete_last),
    ("delete the last 3 events", a_delete_last3),
    ("delete the last 3 events + fix meta count (no head in schema 4)", a_delete_last3_fix_meta),
    ("delete every lineage row + meta count", a_wipe_all),
    ("swap two partners' RUN rows (the one holding #20 <-> a later one)", a_swap_rows),
    ("swap two adjacent events of one partner (bodies only)", a_swap_adjacent_same_partner),
    ("insert forged row at end (made-up hashes)", a_insert_forged_end),
    ("insert forged row in the middle (own hashes ok)", a_insert_forged_middle),
    ("append forged event, hashes + meta recomputed", a_forged_append_consistent),
    ("RUN: forged event appended inside the last RUN row, hash + meta consistent", a_forged_into_last_run),
    ("rewrite a partner's history, all hashes recomputed", a_rewrite_partner_consistent),
    ("erase a partner's history, all hashes recomputed", a_erase_partner_consistent),
    ("rewrite a partner's history, all hashes recomputed, then import and apply", a_rewrite_then_write),
    ("edit a partner's last event, its chain hash kept, then import and apply", a_edit_last_then_write),
    ("texts: edit a rite", a_text_rite),
    ("texts: edit a signer (authority:key)", a_text_authority),
    ("texts: rename the state key `permissions`", a_text_key),
    ("texts: delete a text events name", a_text_delete),
    ("policies: the kept text of the governing policy, a ceiling relaxed", a_kept_policy),
    ("policies: the kept text of the governing policy deleted", a_kept_policy_deleted),
    ("meta: the operator key pinned to the attacker's, then succeeded by pmf", a_operator_key_pinned),
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
    ("meta: the count of events before checkpoints raised, a row inserted with no lineage, then apply", a_legacy_count_raised),
    ("partners: a partner's row deleted, then its state imported as a new partner's", a_partner_row_deleted),
    ("meta: the Merkle head edited", a_merkle_head_edited),
    ("checkpoints: one deleted from before the latest", a_checkpoint_deleted),
    ("stable_versions: a row planted for a partner the store does not hold yet", a_stable_planted),
    ("@plans: every plan's count of partners lowered, chain hashes recomputed", a_plan_marks_lowered),
    ("texts: a text stored as a blob", a_text_as_blob),
    ("stable_versions: edit, then rollback", a_stable_versions),
    ("stable_versions: edit with its recorded digest and every hash recomputed, then rollback", a_stable_versions_consistent),
    ("illumination: the counts edited in place (a risky migration made to look safe), then plan", a_illumination_in_place),
    ("illumination: the counts rewritten, all hashes recomputed, then plan, approve and apply", a_illumination_consistent),
    ("progress: delete, then re-apply", a_progress_delete),
    ("progress: a paused partner marked done, then re-apply", a_progress_marked_done),
    ("rolled back: a backup restored after a write, then another write", a_rolled_back),
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
    """Every EVENT as pmf reads it (rows split): (global_seq, partner, seq, event value, hash)."""
    texts = E.texts(db)
    out = []
    for g, p, s, ev, h in E.events(db):
        try:
            e = E.decode(ev, texts)
        except Exception as ex:  # noqa: BLE001 (a row the attack made unreadable)
            e = f"unreadable: {ex}"
        out.append((g, p, s, json.dumps(e, sort_keys=True), bytes(h)))
    return out


DESIGN = (a_same_expansion, a_split_run_rows)


def pmf_views(pmf, w, evs):
    """What pmf shows of the lineage (`lineage show --format json`) and the inclusion
    proofs of p-012 and of the partner of event #111 (the events the design rows touch)."""
    out = [C.run([pmf, "lineage", "show", "--format", "json"], cwd=w)[:2]]
    for p in sorted({"p-012", evs[110][1]}):
        out.append(C.run([pmf, "lineage", "prove", p], cwd=w)[:2])
    return out


def verify_msg(pmf, w, witness=None):
    rc, o, e, _ = C.run([pmf, "lineage", "verify"] + (["--checkpoint", witness] if witness else []), cwd=w)
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
        if fn in DESIGN:
            before_views = pmf_views(pmf, w, before_events)
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
        if fn in (a_stable_versions, a_stable_versions_consistent):
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
        if fn is a_operator_key_pinned:
            rc, o, e, _ = C.run([pmf, "state", "rekey", "--operator-key", "mallory.key", "--new-key", "mallory2.key",
                                 "--reason", "mine"], cwd=w)
            extra = f"rekey rc={rc} ({(e or o).strip()[:120]})"
        witness = None
        if fn is a_rolled_back:
            # Alone, the restored store is consistent: the key's memory, a witness's
            # checkpoint, says what was lost.
            extra, harm, memory = rolled_back(pmf, w, store)
            witness = memory[0] if memory else None
            before_export = C.export_state(store, w)[1]
        if fn in WRITE_AFTER:
            extra, harm = write_after(pmf, w, store, "p-003" if fn is a_edit_last_then_write else None)
        if fn is a_legacy_count_raised:
            extra, harm = legacy_used(pmf, w, store)
        if fn is a_partner_row_deleted:
            extra, harm = row_deleted_used(pmf, w, store)
        if fn in (a_illumination_in_place, a_illumination_consistent):
            extra, harm = illumination_used(pmf, w, store, fn is a_illumination_consistent)
        if fn is a_progress_marked_done:
            rc, o, e, _ = C.run([pmf, "apply", "plan.json", "--approvals", "approvals.json", "--observed",
                                 os.path.join(C.fleet_dir(), "observed.json")], cwd=w)
            extra = f"re-apply rc={rc} ({(e or o).strip()[:160]})"
            if rc not in (1, 2):
                harm = "the re-apply went on with the paused partner skipped as done"
        if fn is a_progress_delete:
            rc, o, e, _ = C.run([pmf, "apply", "plan.json", "--approvals", "approvals.json", "--observed",
                                 os.path.join(C.fleet_dir(), "observed.json")], cwd=w)
            walks, _t = C.walk_counts(store)
            twice = sorted(p for p, n in walks.items() if n > 1)
            extra = f"re-apply rc={rc} ({e.strip()[:160]}); partners walked twice: {len(twice)}"
            if twice:
                harm = f"partners walked twice after the re-apply: {twice[:5]}"
        rc, msg = verify_msg(pmf, w, witness)
        after_export = C.export_state(store, w)
        detected = rc == 1
        named = detected and "#" in msg
        if fn in (a_corrupt_page, a_corrupt_partners_page):
            extra = f"state export rc={after_export[0]}, changed={after_export[1] != before_export}"
        rows.append({"attack": name, "what": note, "verify_rc": rc, "message": msg[:300], "detected": detected,
                     "names_place": named, "export_changed": after_export[1] != before_export, "after": extra})
        result = f"verify rc={rc}" + (", named" if named else (", place not named" if detected else ", NOT detected"))
        if fn in DESIGN:
            # By design (crates/pmf-store/src/lineage.rs `expand`): the chain hash, the Merkle
            # leaves, checkpoints and proofs cover an interned event's compact expansion, not
            # its stored bytes, so another encoding with the same expansion is the same event.
            # Likewise (`row_events`) how events are grouped into rows is no part of what is
            # hashed: a RUN row written as single-event rows holds the same events at the same
            # positions with the same hashes.
            # Held when it verifies AND every event (and hash) reads back exactly as before,
            # here and through pmf (`lineage show`, `lineage prove`, `state export`).
            same = events_of(store) == before_events
            views = pmf_views(pmf, w, before_events) == before_views
            unchanged = after_export[1] == before_export
            result = f"verify rc={rc}; every event reads back the same: {same}; pmf shows and proves the same: {views}; export the same: {unchanged}"
            T.add(name, rc == 0 and same and views and unchanged, result, f"{note}; {msg[:240]}")
            rows[-1]["design"] = True
            continue
        if harm:
            result += "; " + harm
        T.add(name, named and not harm, result, f"{note}; {msg[:240]}; {extra}")


if __name__ == "__main__":
    sys.exit(main())
