"""The store's encodings (schema 4), read and written from docs/security.md and
crates/pmf-store/src/{lineage,interned,packed}.rs, for the attacks.

Events (`lineage.event`), by their first byte:
  `{`   JSON (stores of schema 2 and before);
  0x02  COMPACT (schema 3): the tag, the kind's code, a varint of flags (a bit per
        optional field present, bit 18 when the time is kept as seconds), the time,
        then each field present; strings `put_str` (varint len<<1, bytes; lowercase hex
        of 16+ even chars kept as its bytes, len<<1|1), lists a varint count and items;
  0x03  INTERNED (schema 4): the compact layout under tag 0x03, except that phase,
        from, to, type, outcome, band, action, each approval, rite, policy_hash,
        plan_hash, each signer and detail are a varint id into the `texts` table. Time,
        state, each stable digest, signature and waits stay `put_str` / `put_list`.
  0x04  RUN (schema 4, rows written by apply, rollback and review): not an event but
        a row holding n >= 2 of one partner's events, a partner's whole walk: 0x04,
        varint n, then for each event varint(len) and its stored bytes (interned);
        the row's `hash` is the n chain hashes concatenated (32*n bytes), in order.
        The row's `global_seq` and `seq` are its FIRST event's: event i (0-based) is
        at log position global_seq + i and partner position seq + i; the next row's
        global_seq is global_seq + n. A RUN row that does not split into exactly as
        many events as it has 32-byte hashes (or n < 2) reads as ONE event whose hash
        is all zeros (verify reports it). A row of one event holds it as it is, its
        `hash` its 32-byte chain hash (any other length reads as zeros).
        `split_row` / `join_row`; `rows` / `events` read a store's lineage,
        `write_rows` writes rows back.
Every chain hash covers the COMPACT encoding (an interned event expanded, `expand`):
  hash = sha256("pmf-event-v2" 0x00 prev varint(seq) varint(len(partner)) partner compact)
(a JSON event: sha256(hex(prev) "\\n" json)). There is no global chain any more: the
order of the events is bound by the Merkle tree over the `hash` column (global_seq
order) whose roots the operator signs in `checkpoints`. The Merkle leaves are every
EVENT's hash in log order (the rows split into events), and meta.global_count is the
number of events, not of rows.

States (`partners.state`, `stable_versions.state`): either TEXT (canonical JSON, from
older stores) or a packed BLOB: 0x01, then a value: tag 0 null, 1 false, 2 true,
3 number as its text (varint len, bytes), 4 whole number N (varint), 5 `N.0` (varint
N), 6 string as written between its quotes, escapes kept (varint len, bytes), 7 array
(varint count, values), 8 object (varint count, then (varint key id into `texts`,
value)*). The lineage's digests are of the JSON text (`unpack_state`).
"""
import calendar
import hashlib
import sqlite3
import struct
import time as _time

COMPACT = 2
INTERNED = 3
RUN = 4
PACKED = 1  # the first byte of a packed state
KINDS = ["unknown", "phase_entered", "approvals_missing", "approved", "validated", "health",
         "phase_failed", "fallback", "resumed", "completed", "released", "restricted",
         "awaiting_review", "throttled", "promoted", "unchanged", "rollback", "imported",
         "replaced", "review_promoted", "review_aborted", "governed", "refused",
         "operator_rekeyed", "outcomes_counted", "plan_begun", "plan_finished"]
# bit order of the optional fields
STR1 = ["phase", "from", "to", "type", "outcome"]          # bits 0-4 (interned)
# 5 health, 6 band*, 7 action*, 8 approvals*, 9 rite*, 10 policy_hash*, 11 plan_hash*,
# 12 state, 13 stable, 14 signers*, 15 signature, 16 waits, 17 detail*, 18 time as seconds,
# 19 categories* (a list, maybe empty: on a paused walk's last event),
# 20 expires_at* (until when a paused walk's plan may continue it: on its last event)
# (* interned in schema 4)
GENESIS = bytes(32)


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def put_str(s):
    b = s.encode()
    if len(b) >= 16 and len(b) % 2 == 0 and all(c in b"0123456789abcdef" for c in b):
        return varint(((len(b) // 2) << 1) | 1) + bytes.fromhex(s)
    return varint(len(b) << 1) + b


def put_list(xs):
    return varint(len(xs)) + b"".join(put_str(x) for x in xs)


def secs_of(t):
    try:
        st = _time.strptime(t, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None
    s = calendar.timegm(st)
    return s if _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(s)) == t and s >= 0 else None


def rfc3339(secs):
    """The time pmf writes for `secs` (what bit 18 keeps as seconds)."""
    return _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(secs))


def _write(e, tag, text):
    """The encoding under `tag`, the interned fields written by `text(s) -> bytes`."""
    flags = 0
    fields = []

    def opt(bit, key, enc):
        nonlocal flags
        v = e.get(key)
        if v is None or v == []:
            return
        flags |= 1 << bit
        fields.append(enc(v))
    tlist = lambda xs: varint(len(xs)) + b"".join(text(x) for x in xs)
    for i, k in enumerate(STR1):
        opt(i, k, text)
    opt(5, "health", lambda h: struct.pack("<d", float(h)))
    opt(6, "band", text)
    opt(7, "action", text)
    opt(8, "approvals", tlist)
    opt(9, "rite", text)
    opt(10, "policy_hash", text)
    opt(11, "plan_hash", text)
    opt(12, "state", put_str)
    opt(13, "stable", put_list)
    opt(14, "signers", tlist)
    opt(15, "signature", put_str)
    opt(16, "waits", put_str)
    opt(17, "detail", text)
    secs = secs_of(e["time"])
    if secs is not None:
        flags |= 1 << 18
        t = varint(secs)
    else:
        t = put_str(e["time"])
    if e.get("categories") is not None:  # present even when empty
        flags |= 1 << 19
        fields.append(tlist(e["categories"]))
    opt(20, "expires_at", text)
    return bytes([tag, KINDS.index(e["kind"])]) + varint(flags) + t + b"".join(fields)


def encode(e):
    """The compact encoding (tag 0x02): what a chain hash covers, and a body a store still accepts."""
    return _write(e, COMPACT, put_str)


def encode_interned(e, intern):
    """The interned encoding (tag 0x03) as schema 4 stores events; `intern(text) -> id`
    (a dict {text: id} is accepted too: every text must be in it)."""
    f = intern.__getitem__ if isinstance(intern, dict) else intern
    return _write(e, INTERNED, lambda s: varint(f(s)))


def interner(conn):
    """intern(text) -> id on a writable connection: the id of `text` in `texts`,
    inserted (as pmf does) when the table does not have it."""
    def intern(s):
        r = conn.execute("SELECT id FROM texts WHERE text=?", (s,)).fetchone()
        if r:
            return r[0]
        return conn.execute("INSERT INTO texts (text) VALUES (?)", (s,)).lastrowid
    return intern


class R:
    def __init__(self, b):
        self.b, self.i = b, 0

    def byte(self):
        if self.i >= len(self.b):
            raise ValueError("truncated")
        self.i += 1
        return self.b[self.i - 1]

    def varint(self):
        n, s = 0, 0
        while True:
            c = self.byte()
            n |= (c & 0x7F) << s
            s += 7
            if not c & 0x80:
                return n

    def bytes(self, n):
        if self.i + n > len(self.b):
            raise ValueError("truncated")
        self.i += n
        return self.b[self.i - n:self.i]

    def str(self):
        h = self.varint()
        b = self.bytes(h >> 1)
        return b.hex() if h & 1 else b.decode()

    def list(self):
        return [self.str() for _ in range(self.varint())]


def texts(conn_or_db):
    """The store's table of texts, {id: text} ({} for a store without one). Takes a
    sqlite3 connection or the path of a state.db (opened read-only)."""
    own = not isinstance(conn_or_db, sqlite3.Connection)
    c = sqlite3.connect(f"file:{conn_or_db}?mode=ro", uri=True, timeout=30) if own else conn_or_db
    try:
        return {i: t for i, t in c.execute("SELECT id, text FROM texts")}
    except sqlite3.OperationalError:
        return {}
    finally:
        if own:
            c.close()


def ids_of(texts_by_id):
    """{text: id} from {id: text}."""
    return {t: i for i, t in texts_by_id.items()}


def decode(b, texts=None):
    """An event (dict, as its JSON) from its stored body: JSON, COMPACT, or INTERNED
    (its texts from `texts`, {id: text}; KeyError for an id the table does not have)."""
    b = bytes(b)
    if b[:1] == b"{":
        import json
        return json.loads(b)
    r = R(b)
    tag = r.byte()
    if tag == COMPACT:
        text = r.str
    elif tag == INTERNED:
        if texts is None:
            raise ValueError("an interned event needs the store's texts (pmfevent.texts)")
        text = lambda: texts[r.varint()]
    else:
        raise ValueError(f"not an event: tag {tag:#x}")
    tlist = lambda: [text() for _ in range(r.varint())]
    e = {"kind": KINDS[r.byte()]}
    flags = r.varint()
    e["time"] = rfc3339(r.varint()) if flags >> 18 & 1 else r.str()
    has = lambda bit: flags >> bit & 1
    for i, k in enumerate(STR1):
        if has(i):
            e[k] = text()
    if has(5):
        e["health"] = struct.unpack("<d", r.bytes(8))[0]
    for bit, k, f in [(6, "band", text), (7, "action", text), (8, "approvals", tlist), (9, "rite", text),
                      (10, "policy_hash", text), (11, "plan_hash", text), (12, "state", r.str),
                      (13, "stable", r.list), (14, "signers", tlist), (15, "signature", r.str),
                      (16, "waits", r.str), (17, "detail", text), (19, "categories", tlist),
                      (20, "expires_at", text)]:
        if has(bit):
            e[k] = f()
    if r.i != len(b) or flags >> 21:
        raise ValueError("trailing bytes or unknown flags")
    return e


def expand(body, texts):
    """The bytes a stored event's chain hash covers: an interned event's compact
    encoding (its texts in place), any other body as it is."""
    body = bytes(body)
    if body[:1] != bytes([INTERNED]):
        return body
    return encode(decode(body, texts))


def chain(prev, partner, seq, compact):
    """The chain hash of an event in the compact encoding (`expand` an interned one first)."""
    p = partner.encode()
    return hashlib.sha256(b"pmf-event-v2\x00" + prev + varint(seq) + varint(len(p)) + p + bytes(compact)).digest()


def stored_hash(prev, partner, seq, body, texts):
    """The chain hash of a stored body of any encoding, after `prev` (32 bytes)."""
    body = bytes(body)
    if body[:1] == b"{":
        return hashlib.sha256(prev.hex().encode() + b"\n" + body).digest()
    return chain(prev, partner, seq, expand(body, texts))


# ---- rows (lineage.rs `row_events`, batch.rs `append_all`) ----

def _split_run(body, hashes):
    r = R(body)
    r.byte()
    n = r.varint()
    if n < 2 or len(hashes) != 32 * n:
        return None
    out = []
    for i in range(n):
        out.append((r.bytes(r.varint()), hashes[32 * i:32 * i + 32]))
    return out if r.i == len(body) else None


def split_row(body, hashes):
    """The events of one lineage row, [(stored event bytes, 32-byte hash)], as pmf reads
    them (`row_events`): a RUN's events, each with its hash; a RUN that does not split
    into exactly as many events as it has 32-byte hashes is ONE event (the whole row)
    whose hash is all zeros; any other row is its one event (its hash zeros unless the
    column holds exactly 32 bytes)."""
    body, hashes = bytes(body or b""), bytes(hashes or b"")
    if body[:1] == bytes([RUN]):
        try:
            out = _split_run(body, hashes)
        except ValueError:
            out = None
        return out if out is not None else [(body, GENESIS)]
    return [(body, hashes if len(hashes) == 32 else GENESIS)]


def join_row(events):
    """A row's (event, hash) columns from [(stored event bytes, hash)], as pmf writes
    it: one event as it is; n >= 2 as a RUN, the hashes concatenated."""
    events = [(bytes(b), bytes(h)) for b, h in events]
    if not events:
        raise ValueError("a row holds at least one event")
    if len(events) == 1:
        return events[0]
    body = bytearray([RUN]) + varint(len(events))
    for b, _h in events:
        body += varint(len(b)) + b
    return bytes(body), b"".join(h for _b, h in events)


def _conn(conn_or_db):
    if isinstance(conn_or_db, sqlite3.Connection):
        return conn_or_db, False
    return sqlite3.connect(f"file:{conn_or_db}?mode=ro", uri=True, timeout=30), True


def rows(conn_or_db, where="", args=()):
    """The lineage rows in global_seq order, each split: [(global_seq, partner, seq,
    [(body, hash), ...])] (`where`: an SQL condition on the rows, e.g. "partner_id=?")."""
    c, own = _conn(conn_or_db)
    try:
        sql = "SELECT global_seq, partner_id, seq, event, hash FROM lineage"
        sql += (" WHERE " + where if where else "") + " ORDER BY global_seq"
        return [(g, p, s, split_row(ev, h)) for g, p, s, ev, h in c.execute(sql, args).fetchall()]
    finally:
        if own:
            c.close()


def events(conn_or_db, where="", args=()):
    """Every event as pmf reads it, in log order: [(global_seq, partner, seq, body, hash)],
    event i of a row at global_seq + i and seq + i."""
    return [(g + i, p, s + i, b, h)
            for g, p, s, evs in rows(conn_or_db, where, args) for i, (b, h) in enumerate(evs)]


def write_rows(c, rows_):
    """Replace the whole lineage table with `rows_` [(global_seq, partner, seq,
    [(body, hash), ...])] (rows with no events are left out)."""
    c.execute("DELETE FROM lineage")
    for g, p, s, evs in rows_:
        if evs:
            c.execute("INSERT INTO lineage VALUES (?,?,?,?,?)", (g, p, s) + join_row(evs))


def update_row(c, g, evs):
    """Write row `g` back with the events `evs` [(body, hash)] (deleted when empty)."""
    if not evs:
        c.execute("DELETE FROM lineage WHERE global_seq=?", (g,))
    else:
        c.execute("UPDATE lineage SET event=?, hash=? WHERE global_seq=?", join_row(evs) + (g,))


# ---- packed states (packed.rs) ----

P_NULL, P_FALSE, P_TRUE, P_NUMBER, P_WHOLE, P_WHOLE0, P_STRING, P_ARRAY, P_OBJECT = range(9)


def unpack_state(v, texts):
    """A state column's value as its JSON text: TEXT as it is, a packed BLOB unpacked
    with the store's texts ({id: text}). ValueError / KeyError when it does not unpack."""
    if isinstance(v, str):
        return v
    b = bytes(v)
    r = R(b)
    if r.byte() != PACKED:
        raise ValueError("not a packed state")
    out = []

    def value(depth):
        if depth > 200:
            raise ValueError("too deep")
        t = r.byte()
        if t == P_NULL:
            out.append("null")
        elif t == P_FALSE:
            out.append("false")
        elif t == P_TRUE:
            out.append("true")
        elif t == P_NUMBER:
            out.append(r.bytes(r.varint()).decode())
        elif t == P_WHOLE:
            out.append(str(r.varint()))
        elif t == P_WHOLE0:
            out.append(str(r.varint()) + ".0")
        elif t == P_STRING:
            out.append('"' + r.bytes(r.varint()).decode() + '"')
        elif t == P_ARRAY:
            out.append("[")
            for i in range(r.varint()):
                if i:
                    out.append(",")
                value(depth + 1)
            out.append("]")
        elif t == P_OBJECT:
            out.append("{")
            for i in range(r.varint()):
                if i:
                    out.append(",")
                out.append('"' + texts[r.varint()] + '":')
                value(depth + 1)
            out.append("}")
        else:
            raise ValueError(f"unknown tag {t}")
    value(0)
    if r.i != len(b):
        raise ValueError("trailing bytes")
    return "".join(out)


def state_json(v, texts):
    """A state column's value, parsed."""
    import json
    return json.loads(unpack_state(v, texts))


def pack_state(text, intern):
    """The packed encoding of canonical JSON `text` (as pmf packs it: every token kept
    exactly), keys numbered by `intern(key) -> id` (or a dict {text: id}); None when
    the text is not one the encoding keeps exactly."""
    get = intern.__getitem__ if isinstance(intern, dict) else intern
    seen = {}  # {id: key} of the keys numbered here

    def f(k):
        i = get(k)
        seen[i] = k
        return i
    t = text.encode()
    pos = [0]
    out = bytearray([PACKED])

    def peek():
        return t[pos[0]] if pos[0] < len(t) else None

    def string():
        i = start = pos[0] + 1
        while True:
            if i >= len(t):
                raise ValueError("unterminated string")
            if t[i] == 0x5C:
                i += 2
            elif t[i] == 0x22:
                break
            else:
                i += 1
        pos[0] = i + 1
        return t[start:i]

    def whole(d):
        if (d == b"0" or (d[:1] in [bytes([c]) for c in b"123456789"])) and d.isdigit():
            n = int(d)
            return n if n < 1 << 64 else None
        return None

    def value(depth):
        if depth > 200:
            raise ValueError("too deep")
        c = peek()
        for word, tag in ((b"null", P_NULL), (b"false", P_FALSE), (b"true", P_TRUE)):
            if c == word[0]:
                if t[pos[0]:pos[0] + len(word)] != word:
                    raise ValueError("bad literal")
                pos[0] += len(word)
                out.append(tag)
                return
        if c == 0x22:
            s = string()
            out.append(P_STRING)
            out.extend(varint(len(s)) + s)
        elif c is not None and (c == 0x2D or 0x30 <= c <= 0x39):
            start = pos[0]
            while peek() is not None and peek() in b"0123456789-+.eE":
                pos[0] += 1
            d = t[start:pos[0]]
            if whole(d) is not None:
                out.append(P_WHOLE)
                out.extend(varint(whole(d)))
            elif d.endswith(b".0") and whole(d[:-2]) is not None:
                out.append(P_WHOLE0)
                out.extend(varint(whole(d[:-2])))
            else:
                out.append(P_NUMBER)
                out.extend(varint(len(d)) + d)
        elif c == 0x5B or c == 0x7B:
            obj = c == 0x7B
            pos[0] += 1
            out.append(P_OBJECT if obj else P_ARRAY)
            at, n = len(out), 0
            close = 0x7D if obj else 0x5D
            if peek() == close:
                pos[0] += 1
            else:
                while True:
                    if obj:
                        if peek() != 0x22:
                            raise ValueError("bad key")
                        out.extend(varint(f(string().decode())))
                        if peek() != 0x3A:
                            raise ValueError("no colon")
                        pos[0] += 1
                    value(depth + 1)
                    n += 1
                    if peek() == 0x2C:
                        pos[0] += 1
                    elif peek() == close:
                        pos[0] += 1
                        break
                    else:
                        raise ValueError("bad container")
            out[at:at] = varint(n)
        else:
            raise ValueError("bad value")
    try:
        value(0)
    except ValueError:
        return None
    if pos[0] != len(t):
        return None
    b = bytes(out)
    # exact, as pmf requires (a text the encoding does not give back is kept as text)
    return b if unpack_state(b, seen) == text else None
