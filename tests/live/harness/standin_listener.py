"""Run inside the stand-in network namespace: a TCP banner and a UDP echo on each
ADDRESS:PORT/PROTO given, logging every packet's source, so a leak is seen by a listener,
not inferred. Answers like the probe's own listener ("probe-ok")."""

from __future__ import annotations

import json
import selectors
import socket
import sys

BANNER = b"probe-ok\n"


def main(log_path: str, specs: list[str]) -> None:
    sel = selectors.DefaultSelector()
    for spec in specs:
        where, proto = spec.rsplit("/", 1)
        address, port = where.rsplit(":", 1)
        kind = socket.SOCK_STREAM if proto == "TCP" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, int(port)))
        if proto == "TCP":
            s.listen(128)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, (proto, address, int(port)))
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - lives as long as the process
    print("listening", *specs, flush=True)
    while True:
        for key, _ in sel.select():
            proto, address, port = key.data
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                if proto == "TCP":
                    conn, peer = sock.accept()
                    conn.sendall(BANNER)
                    conn.close()
                else:
                    _, peer = sock.recvfrom(512)
                    sock.sendto(BANNER.strip(), peer)
            except OSError:
                continue
            record = {"proto": proto, "address": address, "port": port, "source": peer[0]}
            log.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
