#!/usr/bin/env python3
"""Independent verifier of attachd audit logs (SPEC section 6), standard library only.

Usage: verify_audit.py FILE [FILE...]   (oldest rotated file first, the current file last)

Prints {"ok": bool, "records": n, "first_bad_seq": n|null, "message": "..."} and exits 0 only
when the chain is intact (1 when it is not, 2 on bad usage). It deliberately shares no code with
the Rust implementation; it follows the SPEC text:

  hash = sha256_hex(prev + json.dumps(record_without_hash, sort_keys=True,
                                      separators=(",", ":"), ensure_ascii=False))
  prev of seq 1 = 64 zeros; seq increases by one across files; every file after the first
  starts with an "audit.rotated" record whose prev is the previous file's last hash.

first_bad_seq: with `expected` = last verified seq + 1, a malformed or partial line or a record
whose content does not match its own hash fails at `expected`; an intact record that does not
continue the chain fails at its own seq when that is larger (records missing or reordered),
else at `expected`.
"""

import hashlib
import json
import re
import sys

GENESIS = "0" * 64
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def has_float(value):
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(has_float(v) for v in value.values())
    if isinstance(value, list):
        return any(has_float(v) for v in value)
    return False


def own_hash(record):
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((record["prev"] + canonical).encode("utf-8")).hexdigest()


def verify(paths):
    expected = 1
    prev = GENESIS
    records = 0

    def bad(seq, message):
        return {"ok": False, "records": records, "first_bad_seq": seq, "message": message}

    for index, path in enumerate(paths):
        must_be_rotated = index > 0 and expected > 1
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return bad(expected, "cannot read %s: %s" % (path, e))
        lines = data.split(b"\n")
        tail = lines.pop()  # b"" when the file ends with a newline
        for lineno, raw in enumerate(lines, start=1):
            where = "%s:%d" % (path, lineno)
            try:
                record = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as e:
                return bad(expected, "%s: not valid JSON: %s" % (where, e))
            if not isinstance(record, dict):
                return bad(expected, "%s: not a JSON object" % where)
            h, p, seq = record.get("hash"), record.get("prev"), record.get("seq")
            if not isinstance(h, str) or not HEX64.match(h):
                return bad(expected, "%s: missing or malformed hash" % where)
            if not isinstance(p, str) or not HEX64.match(p):
                return bad(expected, "%s: missing or malformed prev" % where)
            if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
                return bad(expected, "%s: missing or malformed seq" % where)
            if has_float(record):
                return bad(expected, "%s: non-integer number" % where)
            try:
                ok_self = own_hash(record) == h
            except UnicodeEncodeError:
                ok_self = False
            if not ok_self:
                return bad(expected, "%s: content does not match its hash" % where)
            if seq != expected or p != prev:
                at = seq if seq > expected else expected
                return bad(at, "%s: found seq %d, expected %d with the previous hash" % (where, seq, expected))
            if must_be_rotated and record.get("type") != "audit.rotated":
                return bad(expected, "%s: file does not start with audit.rotated" % where)
            must_be_rotated = False
            expected += 1
            prev = h
            records += 1
        if tail:
            return bad(expected, "%s: partial last line (truncated)" % path)
    return {"ok": True, "records": records, "first_bad_seq": None,
            "message": "%d records verified" % records}


def main(argv):
    if len(argv) < 2:
        print("usage: verify_audit.py FILE [FILE...]", file=sys.stderr)
        return 2
    report = verify(argv[1:])
    print(json.dumps(report, separators=(",", ":"), sort_keys=True))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
