#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The checks behind test_docs.sh: that the operator documents say what the
code does. Each subcommand prints "PASS: name", "FAIL: name: why" or
"SKIP: name: why" lines. It starts no daemon itself (test_docs.sh starts
and ends viod by PID); it only talks to the socket it is given, runs the
binaries' --help, and reads files.

  rpc-setup DOC TMP           make the session's files, print viod's argv
  rpc-session DOC TMP SOCK    replay every example of DOC, compare answers
  rpc-update DOC TMP SOCK     the same, but write the real answers into DOC
  rpc-coverage DOC RPC_H SOCK every method and error code has its place in DOC
  rpc-limits SOCK             the documented limits of the management socket
  options ROOT VIOD VIOCTL    long options: getopt tables vs --help vs man pages
  links ROOT                  relative links of README.md and docs/*.md
  config ROOT                 config.c's keys vs docs/viod.md
"""
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

# The session's paths in the document, and where the test puts them.
DOC_PATHS = ("/run/viod", "/var/lib/viod")


def out(kind, name, why=""):
    print(f"{kind}: docs/{name}" + (f": {why}" if why else ""), flush=True)


def local_paths(tmp):
    return (os.path.join(tmp, "run"), os.path.join(tmp, "lib"))


def to_local(text, tmp):
    for doc, loc in zip(DOC_PATHS, local_paths(tmp)):
        text = text.replace(doc, loc)
    return text


def to_doc(value, tmp):
    """Map the test's paths back to the document's, in every string of value."""
    if isinstance(value, str):
        for doc, loc in zip(DOC_PATHS, local_paths(tmp)):
            value = value.replace(loc, doc)
        return value
    if isinstance(value, list):
        return [to_doc(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: to_doc(v, tmp) for k, v in value.items()}
    return value


# ------------------------------------------------------------ rpc.md parsing

def code_blocks(text):
    """(start line index, lines, the line before the fence) of every fenced block."""
    lines = text.split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            before = lines[i - 1] if i else ""
            blocks.append((i + 1, lines[i + 1:j], before))
            i = j + 1
        else:
            i += 1
    return blocks, lines


def session_examples(text):
    """[(request line, answer text or None, (first, last) line indexes of the answer)]."""
    blocks, _ = code_blocks(text)
    examples = []
    for start, body, _ in blocks:
        k = 0
        while k < len(body):
            if not body[k].startswith("--> "):
                k += 1
                continue
            req = body[k][4:]
            k += 1
            if k < len(body) and body[k].startswith("<-- "):
                first = k
                ans = [body[k][4:]]
                k += 1
                while k < len(body) and not body[k].startswith(("--> ", "<-- ")):
                    ans.append(body[k])
                    k += 1
                examples.append((req, "\n".join(ans), (start + first, start + k - 1)))
            else:
                examples.append((req, None, None))
    return examples


def setup_block(text):
    blocks, _ = code_blocks(text)
    for _, body, before in blocks:
        if "session-setup" in before:
            return [l[2:] for l in body if l.startswith("$ ")]
    return None


# ------------------------------------------------------------- shape check

def jtype(v):
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if v is None:
        return "null"
    return "array" if isinstance(v, list) else "object"


def shape_diff(doc, real, where="$"):
    """None if real has the shape of doc: same keys, same types, same array
    lengths, same error codes; else the first difference."""
    if jtype(doc) != jtype(real):
        return f"{where}: the document has {jtype(doc)}, viod answered {jtype(real)}"
    if isinstance(doc, dict):
        if set(doc) != set(real):
            return (f"{where}: keys differ: only in the document {sorted(set(doc) - set(real))}, "
                    f"only in viod's answer {sorted(set(real) - set(doc))}")
        if where.endswith(".error") and doc.get("code") != real.get("code"):
            return f"{where}.code: the document has {doc.get('code')}, viod answered {real.get('code')}"
        for k in doc:
            d = shape_diff(doc[k], real[k], f"{where}.{k}")
            if d:
                return d
    if isinstance(doc, list):
        if len(doc) != len(real):
            return f"{where}: the document has {len(doc)} elements, viod answered {len(real)}"
        for i, (a, b) in enumerate(zip(doc, real)):
            d = shape_diff(a, b, f"{where}[{i}]")
            if d:
                return d
    return None


# ------------------------------------------------------------- formatting

def dump(v, indent=0, width=92):
    """Compact (as on the wire) when it fits, else one member per line."""
    flat = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    if len(flat) + indent <= width or not isinstance(v, (dict, list)) or not v:
        return flat
    pad = " " * (indent + 2)
    if isinstance(v, dict):
        items = [f'{pad}{json.dumps(k)}: {dump(x, indent + 2, width)}' for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    items = [pad + dump(x, indent + 2, width) for x in v]
    return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"


def shorten(v):
    """Long strings (the Prometheus text) are cut in the document; only their type is checked."""
    if isinstance(v, str) and len(v) > 160:
        return v[:v.index("\n", 100) + 1] + "..." if "\n" in v[100:] else v[:150] + "..."
    if isinstance(v, list):
        return [shorten(x) for x in v]
    if isinstance(v, dict):
        return {k: shorten(x) for k, x in v.items()}
    return v


# ------------------------------------------------------------- the session

class Conn:
    def __init__(self, path, timeout=10):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        deadline = time.time() + timeout
        while True:  # the listener's backlog may be full for a moment
            try:
                self.s.connect(path)
                break
            except BlockingIOError:
                if time.time() > deadline:
                    raise
                time.sleep(0.01)
        self.buf = b""

    def send(self, line):
        self.s.sendall(line.encode() + b"\n")

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("viod closed the connection")
            self.buf += chunk
        l, _, self.buf = self.buf.partition(b"\n")
        return l.decode()

    def close(self):
        self.s.close()


def rpc_setup(doc, tmp):
    with open(doc) as f:
        cmds = setup_block(f.read())
    if not cmds:
        print("no session-setup block in " + doc, file=sys.stderr)
        return 1
    argv = None
    for cmd in cmds:
        # Nothing outside the test's directory: every path must be one the test maps.
        stray = [p for p in re.findall(r"(?:^|[=,\s])(/[^,\s]*)", cmd)
                 if not p.startswith(DOC_PATHS)]
        words = to_local(cmd, tmp).split()
        if stray:
            print(f"session-setup: '{cmd}' has paths outside {DOC_PATHS}: {stray}", file=sys.stderr)
            return 1
        if words[:2] == ["mkdir", "-p"]:
            for d in words[2:]:
                os.makedirs(d, exist_ok=True)
        elif words[:2] == ["truncate", "-s"] and len(words) == 4:
            size = int(words[2][:-1]) << {"K": 10, "M": 20, "G": 30}[words[2][-1]]
            with open(words[3], "ab") as f:
                f.truncate(size)
        elif words[0] == "viod":
            argv = words[1:]
        else:
            print(f"session-setup: '{cmd}' is not mkdir -p, truncate -s or viod", file=sys.stderr)
            return 1
    if argv is None:
        print("session-setup: no viod command", file=sys.stderr)
        return 1
    print("\n".join(argv))
    return 0


def rpc_session(doc, tmp, sock, update):
    with open(doc) as f:
        text = f.read()
    examples = session_examples(text)
    if not examples:
        out("FAIL", "rpc.md/examples", "no --> examples found")
        return 1
    conn = Conn(sock)
    fails, answers = 0, []
    for n, (req, doc_ans, span) in enumerate(examples, 1):
        name = f"rpc.md/example-{n}"
        conn.send(to_local(req, tmp))
        if doc_ans is None:
            answers.append(None)
            continue  # a notification: the next answer read must be the next example's
        try:
            real = json.loads(conn.line())
        except (EOFError, OSError, ValueError) as e:
            out("FAIL", name, f"{req[:60]}: no answer ({e})")
            return 1
        real = to_doc(real, tmp)
        answers.append((real, span))
        if update:
            continue
        try:
            want = json.loads(doc_ans)
        except ValueError as e:
            out("FAIL", name, f"the document's answer is not JSON ({e})")
            fails += 1
            continue
        diff = shape_diff(want, real)
        # A request's id comes back as it was sent.
        if not diff and isinstance(want, dict) and want.get("id") != real.get("id"):
            diff = f"id: the document has {want.get('id')!r}, viod answered {real.get('id')!r}"
        if diff:
            out("FAIL", name, f"{req[:60]}: {diff}")
            fails += 1
        else:
            what = "error " + str(real["error"]["code"]) if isinstance(real, dict) and "error" in real \
                else "result"
            print(f"PASS: docs/{name} ({what})")
    # Notifications have no answer: a version request now must be answered next.
    conn.send('{"jsonrpc":"2.0","id":"last","method":"version"}')
    try:
        last = json.loads(conn.line())
        if last.get("id") != "last":
            out("FAIL", "rpc.md/notifications-unanswered", f"an unexpected answer {last}")
            fails += 1
        else:
            out("PASS", "rpc.md/notifications-unanswered")
    except (EOFError, OSError, ValueError) as e:
        out("FAIL", "rpc.md/notifications-unanswered", str(e))
        fails += 1
    conn.close()
    if update:
        lines = text.split("\n")
        for a in reversed([a for a in answers if a]):
            real, (first, last) = a
            body = ("<-- " + dump(shorten(real), 0)).split("\n")
            lines[first:last + 1] = body
        with open(doc, "w") as f:
            f.write("\n".join(lines))
        print(f"updated {sum(1 for a in answers if a)} answers in {doc}")
    return 1 if fails else 0


def rpc_limits(sock):
    fails = 0
    # Past 1 MiB without a newline: one -32600 error, the rest of the line
    # skipped, the next request answered on the same connection.
    c = Conn(sock)
    try:
        c.s.sendall(b"x" * ((1 << 20) + 8192))
        first = json.loads(c.line())
        c.s.sendall(b"yyy\n")
        c.send('{"jsonrpc":"2.0","id":5,"method":"version"}')
        after = json.loads(c.line())
        ok = first.get("error", {}).get("code") == -32600 and after.get("id") == 5
    except (OSError, EOFError, ValueError):
        ok = False
    c.close()
    out("PASS" if ok else "FAIL", "rpc.md/limit-line-1MiB",
        "" if ok else "a line past 1 MiB did not get one -32600 error and the next request an answer")
    fails += not ok
    # 64 clients: the 65th is told -32000 and closed at once.
    held = []
    for _ in range(64):  # each one answered before the next: all are really served
        held.append(Conn(sock))
        held[-1].send('{"jsonrpc":"2.0","id":1,"method":"version"}')
        held[-1].line()
    extra = Conn(sock, timeout=5)
    try:
        busy = json.loads(extra.line())
        ok = busy.get("error", {}).get("code") == -32000 and extra.s.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError, EOFError, ValueError):
        ok = False
    except socket.timeout:
        ok = False
    extra.close()
    for h in held:
        h.close()
    out("PASS" if ok else "FAIL", "rpc.md/limit-64-clients",
        "" if ok else "a 65th client was served")
    fails += not ok
    # A client that does not read its answers: dropped past 16 MiB.
    c = Conn(sock, timeout=20)
    req = b'{"jsonrpc":"2.0","id":1,"method":"prometheus"}\n'
    c.send('{"jsonrpc":"2.0","id":1,"method":"prometheus"}')
    size = len(c.line()) + 1
    n = (24 << 20) // size + 1  # answers for 24 MiB, more than the limit and any socket buffer
    try:
        c.s.setblocking(True)
        c.s.settimeout(20)
        for i in range(0, n, 256):
            c.s.sendall(req * min(256, n - i))
    except (ConnectionResetError, BrokenPipeError):
        pass
    got, t0 = 0, time.time()
    try:
        while time.time() - t0 < 20:
            chunk = c.s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    except (ConnectionResetError, socket.timeout):
        pass
    c.close()
    ok = got < n * size
    out("PASS" if ok else "FAIL", "rpc.md/limit-16MiB-unread",
        f"read {got >> 20} MiB of {(n * size) >> 20} MiB before the close" if ok else
        f"all {n} answers ({(n * size) >> 20} MiB) were kept for a client that did not read")
    fails += not ok
    # The control: as many answers to a client that keeps at most 64 requests
    # outstanding (about 0.5 MiB of answers) are all delivered.
    c = Conn(sock, timeout=20)
    k = 0
    try:
        while k < n:
            w = min(64, n - k)
            c.s.sendall(req * w)
            for _ in range(w):
                c.line()
            k += w
    except (EOFError, OSError):
        pass
    c.close()
    ok = k == n
    out("PASS" if ok else "FAIL", "rpc.md/limit-16MiB-reader-served",
        "" if ok else f"a client that reads got {k} of {n} answers")
    fails += not ok
    return 1 if fails else 0


def rpc_coverage(doc, rpc_h, sock):
    """Every method viod has is a section of DOC; every error code of rpc.h is in its table."""
    text = open(doc).read()
    c = Conn(sock)
    c.send('{"jsonrpc":"2.0","id":1,"method":"help"}')
    methods = json.loads(c.line())["result"]["methods"]
    c.close()
    fails = 0
    missing = [m for m in methods if not re.search(rf"^### {m}$", text, re.M)]
    if len(methods) < 5 or missing:
        out("FAIL", "rpc.md/every-method", f"viod's methods {missing or methods} have no section")
        fails += 1
    else:
        print(f"PASS: docs/rpc.md/every-method ({len(methods)} methods)")
    codes = re.findall(r"^#define RPC_\w+ (-\d+)", open(rpc_h).read(), re.M)
    errors = text[text.index("## Errors"):]
    missing = [c for c in codes if not re.search(rf"^\| {c} \|", errors, re.M)]
    if len(codes) < 8 or missing:
        out("FAIL", "rpc.md/every-error-code", f"codes {missing or codes} are not in the table")
        fails += 1
    else:
        print(f"PASS: docs/rpc.md/every-error-code ({len(codes)} codes)")
    return 1 if fails else 0


# ------------------------------------------------------------ long options

def longopts(c_file):
    src = open(c_file).read()
    m = re.search(r"struct option longopts\[\]\s*=\s*\{(.*?)\};", src, re.S)
    return re.findall(r'\{\s*"([a-z0-9-]+)"', m.group(1)) if m else []


def render_man(path):
    r = subprocess.run(["groff", "-man", "-Tascii", "-P-cbou", "-ww", path],
                       capture_output=True, text=True)
    return r.stdout, r.stderr


def options(root, viod, vioctl):
    fails = 0
    for prog, binary, src, man in (("viod", viod, "src/daemon/viod.c", "docs/man/viod.8"),
                                   ("vioctl", vioctl, "tools/vioctl/vioctl.c", "docs/man/vioctl.8")):
        opts = longopts(os.path.join(root, src))
        if len(opts) < 4:
            out("FAIL", f"{prog}-options", f"found only {opts} in {src}'s longopts table")
            fails += 1
            continue
        helptext = subprocess.run([binary, "--help"], capture_output=True, text=True).stdout
        missing = [o for o in opts if f"--{o}" not in helptext]
        if missing:
            out("FAIL", f"{prog}-help", f"--help does not mention --{', --'.join(missing)}")
            fails += 1
        else:
            print(f"PASS: docs/{prog}-help ({len(opts)} long options)")
        manpath = os.path.join(root, man)
        if not shutil.which("groff"):
            out("SKIP", f"{prog}-man", "groff not found (Debian package groff-base)")
            continue
        if not os.path.exists(manpath):
            out("FAIL", f"{prog}-man", f"{man} is missing")
            fails += 1
            continue
        text, warnings = render_man(manpath)
        missing = [o for o in opts if f"--{o}" not in text]
        if missing or not text.strip():
            out("FAIL", f"{prog}-man", f"{man} does not mention --{', --'.join(missing)}")
            fails += 1
        else:
            print(f"PASS: docs/{prog}-man ({len(opts)} long options)")
        if warnings.strip():
            out("FAIL", f"{prog}-man-clean", f"groff -ww: {warnings.strip().splitlines()[0]}")
            fails += 1
        else:
            out("PASS", f"{prog}-man-clean")
    # vioctl's commands: each in its man page.
    if not shutil.which("groff"):
        return 1 if fails else 0
    helptext = subprocess.run([vioctl, "--help"], capture_output=True, text=True).stdout
    sect = helptext.split("Commands:")[1].split("Options:")[0]
    cmds = re.findall(r"^  ([a-z]+)", sect, re.M)
    text, _ = render_man(os.path.join(root, "docs/man/vioctl.8"))
    missing = [c for c in cmds if not re.search(rf"^ +{c}\b", text, re.M)]
    if len(cmds) < 5 or missing:
        out("FAIL", "vioctl-man-commands", f"commands {missing or cmds} not described")
        fails += 1
    else:
        print(f"PASS: docs/vioctl-man-commands ({len(cmds)} commands)")
    return 1 if fails else 0


# ------------------------------------------------------------------ links

def links(root):
    fails = 0
    files = ["README.md"] + sorted("docs/" + f for f in os.listdir(os.path.join(root, "docs"))
                                   if f.endswith(".md"))
    for rel in files:
        path = os.path.join(root, rel)
        text = open(path).read()
        # Inline links outside code: [text](target), not images of the web.
        text = re.sub(r"```.*?```", "", text, flags=re.S)
        text = re.sub(r"`[^`\n]*`", "", text)
        targets = re.findall(r"\]\(([^)\s]+)\)", text)
        bad = []
        for t in targets:
            if re.match(r"^[a-z]+:", t) or t.startswith("#"):
                continue
            t = t.split("#")[0]
            if not os.path.exists(os.path.normpath(os.path.join(os.path.dirname(path), t))):
                bad.append(t)
        if bad:
            out("FAIL", f"links/{rel}", "missing: " + ", ".join(bad))
            fails += 1
        else:
            print(f"PASS: docs/links/{rel} ({len(targets)} links)")
    return 1 if fails else 0


# ----------------------------------------------------------------- config

def config(root):
    src = open(os.path.join(root, "src/daemon/config.c")).read()
    body = src[src.index("static int one("):]
    keys = sorted(set(re.findall(r'!strcmp\(key, "([a-z_]+)"\)', body)))
    doc = open(os.path.join(root, "docs/viod.md")).read()
    table = doc[doc.index("## Configuration file"):doc.index("## Device descriptions")]
    documented = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    fails = 0
    if len(keys) < 8 or sorted(documented) != keys:
        out("FAIL", "viod.md/config-keys",
            f"config.c knows {keys}, docs/viod.md's table has {sorted(documented)}")
        fails += 1
    else:
        print(f"PASS: docs/viod.md/config-keys ({len(keys)} keys)")
    example = re.search(r"```json\n(.*?)```", table, re.S)
    try:
        ex = json.loads(example.group(1))
        unknown = sorted(set(ex) - set(keys))
        if unknown:
            raise ValueError(f"keys config.c does not know: {unknown}")
        print(f"PASS: docs/viod.md/config-example ({len(ex)} keys)")
    except (AttributeError, ValueError) as e:
        out("FAIL", "viod.md/config-example", str(e))
        fails += 1
    return 1 if fails else 0


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "rpc-setup" and len(argv) == 4:
        return rpc_setup(argv[2], argv[3])
    if cmd in ("rpc-session", "rpc-update") and len(argv) == 5:
        return rpc_session(argv[2], argv[3], argv[4], cmd == "rpc-update")
    if cmd == "rpc-coverage" and len(argv) == 5:
        return rpc_coverage(*argv[2:])
    if cmd == "rpc-limits" and len(argv) == 3:
        return rpc_limits(argv[2])
    if cmd == "options" and len(argv) == 5:
        return options(*argv[2:])
    if cmd == "links" and len(argv) == 3:
        return links(argv[2])
    if cmd == "config" and len(argv) == 3:
        return config(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
