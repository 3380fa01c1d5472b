"""The lineage's compact event encoding (schema 3), read and written from
docs/security.md and crates/pmf-store/src/lineage.rs, for the attacks."""
import hashlib
import calendar
import time as _time
import struct

COMPACT = 2
KINDS = ["unknown", "phase_entered", "approvals_missing", "approved", "validated", "health",
         "phase_failed", "fallback", "resumed", "completed", "released", "restricted",
         "awaiting_review", "throttled", "promoted", "unchanged", "rollback", "imported",
         "replaced", "review_promoted", "review_aborted", "governed"]
# bit order of the optional fields
STR1 = ["phase", "from", "to", "type", "outcome"]          # bits 0-4
# 5 health, 6 band, 7 action, 8 approvals, 9 rite, 10 policy_hash, 11 plan_hash,
# 12 state, 13 stable, 14 signers, 15 signature, 16 waits, 17 detail, 18 time as seconds
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


def encode(e):
    flags = 0
    fields = []
    def opt(bit, key, enc):
        nonlocal flags
        v = e.get(key)
        if v is None or v == []:
            return
        flags |= 1 << bit
        fields.append(enc(v))
    for i, k in enumerate(STR1):
        opt(i, k, put_str)
    opt(5, "health", lambda h: struct.pack("<d", float(h)))
    opt(6, "band", put_str)
    opt(7, "action", put_str)
    opt(8, "approvals", put_list)
    opt(9, "rite", put_str)
    opt(10, "policy_hash", put_str)
    opt(11, "plan_hash", put_str)
    opt(12, "state", put_str)
    opt(13, "stable", put_list)
    opt(14, "signers", put_list)
    opt(15, "signature", put_str)
    opt(16, "waits", put_str)
    opt(17, "detail", put_str)
    secs = secs_of(e["time"])
    if secs is not None:
        flags |= 1 << 18
        t = varint(secs)
    else:
        t = put_str(e["time"])
    return bytes([COMPACT, KINDS.index(e["kind"])]) + varint(flags) + t + b"".join(fields)


class R:
    def __init__(self, b):
        self.b, self.i = b, 0

    def byte(self):
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
        self.i += n
        return self.b[self.i - n:self.i]

    def str(self):
        h = self.varint()
        b = self.bytes(h >> 1)
        return b.hex() if h & 1 else b.decode()

    def list(self):
        return [self.str() for _ in range(self.varint())]


def decode(b):
    b = bytes(b)
    if b[:1] == b"{":
        import json
        return json.loads(b)
    r = R(b)
    assert r.byte() == COMPACT
    e = {"kind": KINDS[r.byte()]}
    flags = r.varint()
    e["time"] = _time.strftime("%Y-%m-%dT%H:%M:%SZ", _time.gmtime(r.varint())) if flags >> 18 & 1 else r.str()
    has = lambda bit: flags >> bit & 1
    for i, k in enumerate(STR1):
        if has(i):
            e[k] = r.str()
    if has(5):
        e["health"] = struct.unpack("<d", r.bytes(8))[0]
    for bit, k, f in [(6, "band", r.str), (7, "action", r.str), (8, "approvals", r.list), (9, "rite", r.str),
                      (10, "policy_hash", r.str), (11, "plan_hash", r.str), (12, "state", r.str),
                      (13, "stable", r.list), (14, "signers", r.list), (15, "signature", r.str),
                      (16, "waits", r.str), (17, "detail", r.str)]:
        if has(bit):
            e[k] = f()
    assert r.i == len(b)
    return e


def chain(prev, partner, seq, body):
    p = partner.encode()
    return hashlib.sha256(b"pmf-event-v2\x00" + prev + varint(seq) + varint(len(p)) + p + bytes(body)).digest()


def glink(prev, h):
    return hashlib.sha256(b"pmf-global-v2\x00" + prev + h).digest()
