#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# A minimal QMP client for the interop tests: connects to a QEMU's QMP unix
# socket, leaves capabilities negotiation, runs one command and prints its
# "return" value as JSON on stdout. Exits 1 (message on stderr) on an error
# reply, a closed socket or the timeout; never waits unbounded.
#   qmp.py SOCK COMMAND [ARGS-JSON]
import json
import socket
import sys


def main():
    if len(sys.argv) not in (3, 4):
        print("usage: qmp.py SOCK COMMAND [ARGS-JSON]", file=sys.stderr)
        return 2
    path, cmd = sys.argv[1], sys.argv[2]
    args = json.loads(sys.argv[3]) if len(sys.argv) == 4 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.connect(path)
        f = s.makefile("rw")

        def reply():
            # Events may come before the answer: skip them.
            while True:
                line = f.readline()
                if not line:
                    raise OSError("QMP socket closed")
                msg = json.loads(line)
                if "return" in msg or "error" in msg:
                    return msg

        if "QMP" not in json.loads(f.readline()):
            raise OSError("no QMP greeting")
        f.write(json.dumps({"execute": "qmp_capabilities"}) + "\n")
        f.flush()
        reply()
        req = {"execute": cmd}
        if args is not None:
            req["arguments"] = args
        f.write(json.dumps(req) + "\n")
        f.flush()
        msg = reply()
    except (OSError, ValueError) as e:
        print(f"qmp.py: {cmd}: {e}", file=sys.stderr)
        return 1
    if "error" in msg:
        print(f"qmp.py: {cmd}: {msg['error'].get('desc', msg['error'])}", file=sys.stderr)
        return 1
    print(json.dumps(msg["return"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
