#!/usr/bin/env python3
"""A byte-exact transfer through a proxy, for the shell tests (package, container).

  transfer.py backend OUT    listen on 127.0.0.1 (a port of the kernel's choosing, printed first),
                             take one connection and write what it sends to OUT, to its EOF
  transfer.py client IN PORT send the file IN to 127.0.0.1:PORT, half-close, read to EOF
Every socket wait is bounded (120 s): a hang fails, it never blocks.
"""
import socket
import sys

LIMIT = 120


def backend(out_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    print(s.getsockname()[1], flush=True)
    s.settimeout(LIMIT)
    c, _ = s.accept()
    c.settimeout(LIMIT)
    with open(out_path, "wb") as out:
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            out.write(b)
    c.close()


def client(in_path, port):
    c = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
    with open(in_path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            c.sendall(b)
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    c.close()


if __name__ == "__main__":
    if sys.argv[1] == "backend":
        backend(sys.argv[2])
    else:
        client(sys.argv[2], int(sys.argv[3]))
