#!/usr/bin/env python3
"""Attacks on approvals (ed25519 signatures over the plan's BLAKE3 hash).

  PMF=path/to/pmf python3 approvals.py

On the fleet example: TSC, ERC and SCO have keys in the keyring. Each case
applies on a fresh store and records whether apply refused (and how) or
accepted; "accepted" means partners needing the approval went through.
In the fleet, p-010..p-034 (guided) need TSC, p-013 TSC+ERC, p-014 TSC+SCO.
"""

import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common as C  # noqa: E402


def apply(d, plan, approvals, keyring=None, tag="s"):
    store = os.path.join(d, f"{tag}.db")
    for suf in ("", "-wal", "-shm"):
        if os.path.exists(store + suf):
            os.remove(store + suf)
    args = [C.pmf_bin(), "apply", plan, "--store", store, "--observed", os.path.join(C.fleet_dir(), "observed.json")]
    for a in approvals:
        args += ["--approvals", a]
    if keyring:
        args += ["--keyring", keyring]
    rc, o, e, _ = C.run(args, cwd=d)
    approved, missing = set(), set()
    if os.path.exists(store):
        for p, ev in C.db_rows(store, "SELECT partner_id, event FROM lineage"):
            x = json.loads(ev)
            if x.get("kind") == "approved":
                approved.update(x.get("approvals", []))
            if x.get("kind") == "approvals_missing":
                missing.add(p)
    return rc, e.strip(), sorted(approved), sorted(missing), store


def jload(p):
    return json.load(open(p))


def jdump(p, v):
    with open(p, "w") as fh:
        json.dump(v, fh, indent=1)


def main():
    d = C.scratch("approvals")
    pmf = C.pmf_bin()
    f = C.fleet_dir()
    os.makedirs(os.path.join(d, ".pmf"))
    C.plan(d, os.path.join(f, "partners.json"), os.path.join(f, "target.json"), os.path.join(f, "observed.json"), "planA.json")
    # plan B: same partners, another target
    tB = jload(os.path.join(f, "target.json"))
    tB["all"]["version"] = "1.7.0"
    jdump(os.path.join(d, "targetB.json"), tB)
    C.plan(d, os.path.join(f, "partners.json"), os.path.join(d, "targetB.json"), os.path.join(f, "observed.json"), "planB.json")
    import shutil
    for a in ("TSC", "ERC", "SCO"):
        shutil.copy(os.path.join(f, "keys", a + ".key"), os.path.join(d, a + ".key"))
    C.run([pmf, "approve", "planA.json", "--key", "TSC.key", "-o", "A.json", "--yes"], cwd=d)
    C.run([pmf, "approve", "planA.json", "--key", "ERC.key", "-o", "A.json", "--yes"], cwd=d)
    C.run([pmf, "approve", "planA.json", "--key", "SCO.key", "-o", "A_sco.json", "--yes"], cwd=d)
    A = jload(os.path.join(d, "A.json"))
    hashB = json.loads(C.run([pmf, "plan", "--policy", C.policy_path(), "--partners", os.path.join(f, "partners.json"),
                              "--target", os.path.join(d, "targetB.json"), "--observed", os.path.join(f, "observed.json"),
                              "-o", "planB.json", "--format", "json"], cwd=d)[1])["plan_hash"]
    ring = jload(os.path.join(d, ".pmf", "keyring.json"))
    cases = []

    def case(name, plan, approvals, expect, keyring=None, note=""):
        rc, err, approved, missing, _ = apply(d, os.path.join(d, plan), [os.path.join(d, a) for a in approvals], keyring)
        refused = rc in (1, 2) and "approv" in err.lower() or "keyring" in err.lower()
        verdict = "refused" if rc in (1, 2) else "accepted"
        cases.append({"case": name, "expect": expect, "rc": rc, "verdict": verdict, "message": err.splitlines()[0][:220] if err else "",
                      "authorities_recorded_as_approving": approved, "partners_awaiting_approval": len(missing), "note": note})
        print(json.dumps(cases[-1]))

    case("baseline: TSC+ERC approvals of plan A", "planA.json", ["A.json"], "accepted")

    # 1. plan edited after approval: p-010's own target
    pa = open(os.path.join(d, "planA.json")).read()
    edited = pa.replace('"id":"p-010"', '"id":"p-010"', 1)
    lines = pa.split("\n")
    for i, ln in enumerate(lines):
        if ln.startswith('{"id":"p-010"'):
            lines[i] = ln.replace('"target":{"version":"2.0.0"}', '"target":{"version":"3.9.0"}').replace('"to":"2.0.0"', '"to":"3.9.0"')
    edited = "\n".join(lines)
    assert edited != pa
    open(os.path.join(d, "planA_edited.json"), "w").write(edited)
    case("plan edited after approval (p-010 target 2.0.0 -> 3.9.0)", "planA_edited.json", ["A.json"], "refused")
    open(os.path.join(d, "planA_ws.json"), "w").write(pa + "\n")
    case("plan edited after approval (one trailing newline only)", "planA_ws.json", ["A.json"], "refused")

    # 2. approval of plan A on plan B
    case("approvals of plan A reused on plan B", "planB.json", ["A.json"], "refused")
    X = json.loads(json.dumps(A))
    X["plan_hash"] = hashB
    jdump(os.path.join(d, "A_as_B.json"), X)
    case("approvals of A with plan_hash rewritten to B's", "planB.json", ["A_as_B.json"], "refused")

    # 3. a key of another authority
    erc = jload(os.path.join(d, "ERC.key"))
    fake = dict(erc, authority="TSC")
    jdump(os.path.join(d, "ERC_as_TSC.key"), fake)
    rc, o, e, _ = C.run([pmf, "approve", "planA.json", "--key", "ERC_as_TSC.key", "-o", "wrongauth.json"], cwd=d)
    case("ERC's key signs as TSC (key file's authority edited)", "planA.json", ["wrongauth.json"], "refused",
         note=f"pmf approve itself: rc={rc} {o.strip()[:80]}")
    X = json.loads(json.dumps(A))
    X["approvals"][0]["public_key"] = ring["authorities"]["ERC"][0]
    jdump(os.path.join(d, "tsc_sig_erc_key.json"), X)
    case("TSC signature presented with ERC's public key", "planA.json", ["tsc_sig_erc_key.json"], "refused")

    # 4. forged signatures
    for label, mut in [("random 64 bytes", lambda s: os.urandom(64).hex()),
                       ("one bit flipped", lambda s: s[:10] + format(int(s[10], 16) ^ 1, "x") + s[11:]),
                       ("all zeros", lambda s: "0" * 128),
                       ("non-hex", lambda s: "zz" * 64),
                       ("truncated", lambda s: s[:100]),
                       ("S + group order (malleable)", None)]:
        X = json.loads(json.dumps(A))
        sig = X["approvals"][0]["signature"]
        if mut is None:
            L = 2**252 + 27742317777372353535851937790883648493
            b = bytes.fromhex(sig)
            s_int = int.from_bytes(b[32:], "little") + L
            if s_int >= 2**256:
                continue
            X["approvals"][0]["signature"] = (b[:32] + s_int.to_bytes(32, "little")).hex()
        else:
            X["approvals"][0]["signature"] = mut(sig)
        jdump(os.path.join(d, "forged.json"), X)
        case(f"forged signature: {label}", "planA.json", ["forged.json"], "refused")
    X = json.loads(json.dumps(A))
    X["approvals"].append({"authority": "SCO", "public_key": ring["authorities"]["SCO"][0], "signature": "ab" * 64})
    jdump(os.path.join(d, "mixed.json"), X)
    case("valid TSC+ERC plus a forged SCO in one file", "planA.json", ["mixed.json"], "refused")

    # 5. garbage approvals files
    garbage = {
        "empty file": b"",
        "random bytes": os.urandom(300),
        "JSON null": b"null",
        "approvals not a list": json.dumps({"format_version": 1, "plan_hash": A["plan_hash"], "approvals": "TSC"}).encode(),
        "missing plan_hash": json.dumps({"format_version": 1, "approvals": A["approvals"]}).encode(),
        "format_version 99": json.dumps(dict(A, format_version=99)).encode(),
        "empty approvals list": json.dumps(dict(A, approvals=[])).encode(),
        "non-UTF-8": b'{"format_version":1,"plan_hash":"\xff\xfe"}',
        "deep nesting 100k": b"[" * 100000 + b"]" * 100000,
        "extra unknown fields": json.dumps(dict(A, admin=True, approvals=[dict(x, role="root") for x in A["approvals"]])).encode(),
    }
    for label, data in garbage.items():
        open(os.path.join(d, "garbage.json"), "wb").write(data)
        exp = "accepted (no approvals)" if label == "empty approvals list" else "refused"
        case(f"approvals file: {label}", "planA.json", ["garbage.json"], exp)
    case("approvals file: a directory", "planA.json", [".pmf"], "refused")
    case("approvals file: missing", "planA.json", ["nope.json"], "refused")

    # 6. keyring edited: swap TSC and ERC keys, ERC's holder then signs as TSC
    sw = json.loads(json.dumps(ring))
    sw["authorities"]["TSC"], sw["authorities"]["ERC"] = ring["authorities"]["ERC"], ring["authorities"]["TSC"]
    jdump(os.path.join(d, "swapped.json"), sw)
    C.run([pmf, "approve", "planA.json", "--key", "ERC_as_TSC.key", "-o", "erc_signs_tsc.json"], cwd=d)
    case("keyring with TSC/ERC keys swapped; the genuine approvals", "planA.json", ["A.json"], "refused", keyring=os.path.join(d, "swapped.json"))
    case("keyring with TSC/ERC keys swapped; ERC's holder signs as TSC", "planA.json", ["erc_signs_tsc.json"], "refused?",
         keyring=os.path.join(d, "swapped.json"), note="the keyring is a plain file with no integrity check")
    # in place: the default keyring edited
    shutil.copy(os.path.join(d, ".pmf", "keyring.json"), os.path.join(d, "keyring.orig"))
    jdump(os.path.join(d, ".pmf", "keyring.json"), sw)
    case("default .pmf/keyring.json edited in place (swap); ERC's holder signs as TSC", "planA.json", ["erc_signs_tsc.json"], "refused?")
    shutil.copy(os.path.join(d, "keyring.orig"), os.path.join(d, ".pmf", "keyring.json"))
    open(os.path.join(d, "badring.json"), "w").write("{garbage")
    case("keyring file is garbage", "planA.json", ["A.json"], "refused", keyring=os.path.join(d, "badring.json"))
    case("keyring path missing (empty keyring)", "planA.json", ["A.json"], "refused", keyring=os.path.join(d, "none.json"))

    # 7. anyone can mint an authority: keygen registers the key in the keyring itself
    C.run([pmf, "keygen", "--authority", "SCO", "-o", "mallory_sco.key"], cwd=d)
    C.run([pmf, "approve", "planA.json", "--key", "mallory_sco.key", "-o", "mallory.json"], cwd=d)
    case("Mallory runs `pmf keygen --authority SCO` and approves", "planA.json", ["A.json", "mallory.json"], "refused?",
         note="keygen appends Mallory's key to .pmf/keyring.json without any authorization")
    # a keyring of one's own on the command line
    mring = os.path.join(d, "mallory_ring.json")
    for a in ("TSC", "ERC", "SCO"):
        C.run([pmf, "keygen", "--authority", a, "-o", f"m_{a}.key", "--keyring", mring], cwd=d)
        C.run([pmf, "approve", "planA.json", "--key", f"m_{a}.key", "-o", "mallory_all.json"], cwd=d)
    case("--keyring pointing to Mallory's own keyring, all three signed by Mallory", "planA.json", ["mallory_all.json"], "refused?",
         keyring=mring, note="the keyring is chosen by whoever runs apply")

    # 8. governance bypasses without any approval
    w = os.path.join(d, "bypass")
    os.makedirs(w)
    rc, err, approved, missing, store = apply(d, os.path.join(d, "planA.json"), [os.path.join(d, "A.json"), os.path.join(d, "A_sco.json")], tag="bypass")
    before = json.loads(C.db_rows(store, "SELECT state FROM partners WHERE id='p-014'")[0][0])
    rc2, o2, e2, _ = C.run([pmf, "rollback", "p-014", "--store", store], cwd=d)
    after = json.loads(C.db_rows(store, "SELECT state FROM partners WHERE id='p-014'")[0][0])
    cases.append({"case": "rollback undoes an approved TSC+SCO permission cut with no approval", "expect": "refused?",
                  "rc": rc2, "verdict": "accepted" if rc2 == 0 else "refused", "message": (o2 + e2).strip().splitlines()[0][:200],
                  "note": f"p-014 permissions {before.get('permissions')} -> {after.get('permissions')}"})
    print(json.dumps(cases[-1]))
    st = dict(after)
    st["permissions"] = ["read", "write", "admin"]
    st["power"] = 7
    imp = os.path.join(d, "import.json")
    jdump(imp, [st])
    n_before = C.db_rows(store, "SELECT count(*) FROM lineage")[0][0]
    rc3, o3, e3, _ = C.run([pmf, "state", "import", imp, "--policy", C.policy_path(), "--store", store], cwd=d)
    n_after = C.db_rows(store, "SELECT count(*) FROM lineage")[0][0]
    vrc, _v = C.verify(store, d)
    cases.append({"case": "`pmf state import` gives p-014 `admin` (no plan, no approval)", "expect": "refused?",
                  "rc": rc3, "verdict": "accepted" if rc3 == 0 else "refused", "message": (o3 + e3).strip()[:200],
                  "note": f"lineage events {n_before} -> {n_after}; lineage verify rc={vrc}"})
    print(json.dumps(cases[-1]))
    # replay on another store: approvals are not bound to a store
    rc4, err4, approved4, missing4, _ = apply(d, os.path.join(d, "planA.json"), [os.path.join(d, "A.json")], tag="other_store")
    cases.append({"case": "the same approved plan applied to a second, unrelated store", "expect": "design",
                  "rc": rc4, "verdict": "accepted" if rc4 in (0, 3) else "refused", "message": err4[:120],
                  "note": "approvals name a plan hash, not a store"})
    print(json.dumps(cases[-1]))

    print("\n| case | expected | rc | verdict | message |")
    print("|---|---|---|---|---|")
    for c in cases:
        print(f"| {c['case']} | {c['expect']} | {c['rc']} | {c['verdict']} | {c['message'][:150]} {c.get('note','')} |")
    C.write_json_report("approvals", cases)
    C.cleanup(d)


if __name__ == "__main__":
    main()
