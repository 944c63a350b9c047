#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A raw client of viod's management socket for the interop tests: sends
exact bytes (well-formed or hostile) and judges the answers, and checks
Prometheus text. Owns no process; every socket operation has a timeout.

  rpc_probe.py send SOCK TEXT          send TEXT (escapes: \\n \\r), print answer lines
  rpc_probe.py error SOCK CODE TEXT    true if the one answer to TEXT is an error CODE
  rpc_probe.py huge SOCK MIB           a MIB MiB line with no newline, then a request
  rpc_probe.py garbage SOCK            random bytes with newlines, then a request
  rpc_probe.py slow SOCK SECS          a request a byte per second for SECS seconds
  rpc_probe.py many SOCK N             N connections at once, each asking 'version'
  rpc_probe.py prom FILE               validate Prometheus text exposition
Exit 0 when the check holds; 1 with the reason on stdout otherwise.
"""
import json
import os
import random
import re
import socket
import sys
import time


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_line(s, timeout=5.0):
    s.settimeout(timeout)
    buf = b""
    while b"\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf.split(b"\n", 1)[0].decode(errors="replace")


def unescape(text):
    return text.replace("\\n", "\n").replace("\\r", "\r")


def cmd_send(path, text):
    with connect(path) as s:
        s.sendall(unescape(text).encode())
        print(read_line(s))
    return 0


def check_error(line, code):
    try:
        ans = json.loads(line)
    except ValueError:
        print(f"answer is not JSON: {line[:200]!r}")
        return 1
    err = ans.get("error") if isinstance(ans, dict) else None
    if ans.get("jsonrpc") != "2.0" or not isinstance(err, dict):
        print(f"no error object: {line[:300]}")
        return 1
    if err.get("code") != code or not isinstance(err.get("message"), str) or not err["message"]:
        print(f"error {err.get('code')} {err.get('message')!r}, want code {code} with a message")
        return 1
    if "id" not in ans:
        print(f"no id member: {line[:300]}")
        return 1
    print(f"code {code}: {err['message']}")
    return 0


def cmd_error(path, code, text):
    with connect(path) as s:
        s.sendall(unescape(text).encode())
        return check_error(read_line(s), int(code))


def version_ok(s):
    s.sendall(b'{"jsonrpc":"2.0","id":7,"method":"version"}\n')
    line = read_line(s)
    try:
        ans = json.loads(line)
        return ans.get("id") == 7 and "version" in ans.get("result", {})
    except ValueError:
        return False


def cmd_huge(path, mib):
    with connect(path, timeout=30) as s:
        chunk = b"x" * 65536
        try:
            for _ in range(int(mib) * 16):
                s.sendall(chunk)
        except OSError as e:
            print(f"viod stopped reading the huge line: {e}")
            return 1
        # Its answer: one error for the oversized line.
        if check_error(read_line(s, 10), -32600):
            return 1
        s.sendall(b"\n")
        if not version_ok(s):
            print("no answer to a request after the oversized line")
            return 1
    return 0


def cmd_garbage(path):
    rnd = random.Random(15)
    with connect(path) as s:
        data = bytes(rnd.getrandbits(8) for _ in range(200000)).replace(b"\n", b"") + b"\n"
        s.sendall(data)
        line = read_line(s)
        if check_error(line, -32700):
            return 1
        if not version_ok(s):
            print("no answer to a request after garbage")
            return 1
    return 0


def cmd_slow(path, secs):
    req = b'{"jsonrpc":"2.0","id":7,"method":"version"}'
    secs = int(secs)
    with connect(path) as s:
        for i in range(min(secs, len(req))):
            s.sendall(req[i:i + 1])
            time.sleep(1)
        s.sendall(req[min(secs, len(req)):] + b"\n")
        line = read_line(s)
        if '"id":7' not in line:
            print(f"slow client got {line[:200]!r}")
            return 1
    return 0


def cmd_many(path, n):
    socks, ok, busy = [], 0, 0
    try:
        for _ in range(int(n)):
            # A full listen backlog is EAGAIN at once for a Unix socket: retry a little.
            for _ in range(50):
                try:
                    socks.append(connect(path))
                    break
                except BlockingIOError:
                    time.sleep(0.01)
        for s in socks:
            try:
                s.sendall(b'{"jsonrpc":"2.0","id":7,"method":"version"}\n')
            except OSError:
                pass
        for s in socks:
            try:
                line = read_line(s, 5)
                if '"id":7' in line:
                    ok += 1
                elif '"code":-32000' in line:
                    busy += 1
            except OSError:
                pass
    finally:
        for s in socks:
            s.close()
    print(f"{len(socks)} of {n} connected: {ok} answered, {busy} told viod is busy")
    # viod serves 64 clients at once; the rest are told so, never left hanging.
    return 0 if len(socks) == int(n) and 0 < ok <= 64 and ok + busy == int(n) else 1


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def cmd_prom(path):
    text = open(path).read()
    types, helps, samples = {}, set(), []
    problems = []
    for ln in text.splitlines():
        if ln.startswith("# TYPE "):
            _, _, name, typ = ln.split(" ", 3)
            if name in types:
                problems.append(f"# TYPE {name} twice")
            types[name] = typ
        elif ln.startswith("# HELP "):
            name = ln.split(" ", 3)[2]
            if name in helps:
                problems.append(f"# HELP {name} twice")
            helps.add(name)
        elif ln.startswith("#") or not ln:
            continue
        else:
            m = SAMPLE.match(ln)
            if not m:
                problems.append(f"bad sample line {ln!r}")
                continue
            try:
                float(m.group(3))
            except ValueError:
                problems.append(f"bad value {ln!r}")
            samples.append((m.group(1), m.group(2) or "", m.group(3)))
    def family(name):
        for suf in ("_bucket", "_sum", "_count"):
            if name.endswith(suf) and types.get(name[: -len(suf)]) == "histogram":
                return name[: -len(suf)]
        return name
    for name, _, _ in samples:
        if family(name) not in types:
            problems.append(f"{name} has no # TYPE")
    # Histograms: per label set, cumulative buckets ending in +Inf, _sum, _count == +Inf.
    hist = {}
    for name, labels, val in samples:
        fam = family(name)
        if types.get(fam) != "histogram":
            continue
        le = re.search(r'le="([^"]*)"', labels)
        key = (fam, re.sub(r',?le="[^"]*"', "", labels))
        h = hist.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name.endswith("_bucket"):
            h["buckets"].append((le.group(1) if le else None, float(val)))
        elif name.endswith("_sum"):
            h["sum"] = float(val)
        elif name.endswith("_count"):
            h["count"] = float(val)
    if not hist and any(t == "histogram" for t in types.values()):
        problems.append("a histogram family without samples")
    for (fam, labels), h in hist.items():
        b = h["buckets"]
        if not b or b[-1][0] != "+Inf":
            problems.append(f"{fam}{labels}: buckets do not end with le=\"+Inf\"")
        les = [float(x[0]) for x in b[:-1]]
        if les != sorted(les) or len(set(les)) != len(les):
            problems.append(f"{fam}{labels}: le bounds not increasing")
        vals = [x[1] for x in b]
        if any(v2 < v1 for v1, v2 in zip(vals, vals[1:])):
            problems.append(f"{fam}{labels}: buckets not cumulative")
        if h["sum"] is None or h["count"] is None:
            problems.append(f"{fam}{labels}: no _sum or _count")
        elif b and h["count"] != b[-1][1]:
            problems.append(f"{fam}{labels}: _count {h['count']} != +Inf bucket {b[-1][1]}")
    if problems:
        print("; ".join(problems[:5]))
        return 1
    print(f"{len(types)} families, {len(samples)} samples, {len(hist)} histograms")
    return 0


def main(argv):
    cmds = {"send": cmd_send, "error": cmd_error, "huge": cmd_huge, "garbage": cmd_garbage,
            "slow": cmd_slow, "many": cmd_many, "prom": cmd_prom}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__)
        return 2
    try:
        return cmds[argv[1]](*argv[2:])
    except (OSError, ValueError) as e:
        print(f"{argv[1]}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
