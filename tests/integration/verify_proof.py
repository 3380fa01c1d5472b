#!/usr/bin/env python3
"""An independent verifier of `pmf lineage prove` output (python3 stdlib only).

Written from RFC 6962 / RFC 9162 and docs/security.md, not from pmf's code:
  chain hash  = sha256(prev_hash_hex + "\\n" + event_json)   (hex; events stored
                as JSON, before schema 3)
  chain hash  = sha256("pmf-event-v2" 0x00 || prev_hash || varint(seq) ||
                varint(len(partner)) || partner || body)       (events in the
                compact encoding, `"format": "pmf-event-v2"`)
  leaf hash   = sha256(0x00 || bytes(chain hash))
  node hash   = sha256(0x01 || left || right)
Checks every inclusion proof against the checkpoint's root, and the
consistency proof between two checkpoints. Exit 0 when all hold, 1 otherwise.
"""
import hashlib
import json
import sys


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def node(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def inclusion_ok(index, size, leaf, proof, root):
    # RFC 9162 2.1.3.2
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def consistency_ok(first, second, first_root, second_root, proof):
    # RFC 9162 2.1.4.2
    if first == second:
        return not proof and first_root == second_root
    if first == 0 or first > second:
        return False
    if first & (first - 1) == 0:
        proof = [first_root] + proof
    if not proof:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node(c, fr)
            sr = node(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


def main():
    doc = json.load(open(sys.argv[1]))
    cp = doc["checkpoint"]
    root, size = bytes.fromhex(cp["root"]), cp["size"]
    n = 0
    for inc in doc["inclusion"]:
        if inc.get("format") == "pmf-event-v2":
            partner = inc["partner"].encode()
            data = (b"pmf-event-v2\x00" + bytes.fromhex(inc["prev_hash"]) + varint(inc["seq"])
                    + varint(len(partner)) + partner + bytes.fromhex(inc["body"]))
            chain = hashlib.sha256(data).hexdigest()
        else:
            chain = hashlib.sha256((inc["prev_hash"] + "\n" + inc["event"]).encode()).hexdigest()
        if chain != inc["hash"]:
            print(f"event #{inc['global_seq']}: its content does not match its hash")
            return 1
        leaf = hashlib.sha256(b"\x00" + bytes.fromhex(chain)).digest()
        proof = [bytes.fromhex(p) for p in inc["proof"]]
        if not inclusion_ok(inc["leaf_index"], size, leaf, proof, root):
            print(f"event #{inc['global_seq']}: not in the tree of the checkpoint")
            return 1
        n += 1
    print(f"{n} inclusion proofs ok against the checkpoint of {size} events")
    c = doc.get("consistency")
    if c:
        ok = consistency_ok(c["first"], c["second"], bytes.fromhex(c["first_root"]),
                            bytes.fromhex(c["second_root"]), [bytes.fromhex(p) for p in c["proof"]])
        if not ok:
            print(f"the log of {c['second']} events does not extend the checkpoint of {c['first']}")
            return 1
        print(f"consistency ok: {c['first']} -> {c['second']} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
