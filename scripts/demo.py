#!/usr/bin/env python3
"""Demo: a pinned QUIC transfer over loopback with live progress.

Two ephemeral identities pin each other's certificate fingerprint, exchange a
sealed hello, and stream random bytes; the receiver verifies SHA-256.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import threading
import time

import rcp


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=512, help="MiB to transfer (default 512)")
    args = parser.parse_args()
    total = args.mib << 20

    server_cert, client_cert = rcp.Certificate.generate(), rcp.Certificate.generate()
    key = os.urandom(32)
    server = rcp.QuicServer(server_cert, [client_cert.fingerprint], key)
    print(f"server  {server.host}:{server.port}  fingerprint {server_cert.fingerprint[:16]}...")
    print(f"client  pins the server, presents {client_cert.fingerprint[:16]}...")
    accepted: dict[str, rcp.Link] = {}
    t = threading.Thread(target=lambda: accepted.setdefault("link", server.accept(timeout=10)))
    t.start()
    client = rcp.connect(server.host, server.port, client_cert, server_cert.fingerprint, key)
    t.join()
    receiver = accepted["link"]
    print(f"handshake done: both pins verified (peer role '{receiver.peer_role}')")

    block = os.urandom(4 << 20)
    expect = hashlib.sha256()

    def send() -> None:
        sid = client.open_data()
        for off in range(0, total, len(block)):
            chunk = block[: min(len(block), total - off)]
            client.write(sid, chunk)
        client.finish(sid)

    for off in range(0, total, len(block)):
        expect.update(block[: min(len(block), total - off)])
    sender = threading.Thread(target=send)
    start = time.monotonic()
    sender.start()
    sid = receiver.accept_data()
    got, digest, last = 0, hashlib.sha256(), 0.0
    while chunk := receiver.read(sid, 4 << 20):
        got += len(chunk)
        digest.update(chunk)
        now = time.monotonic()
        if now - last > 0.1 or got == total:
            last = now
            rate = got / max(now - start, 1e-9) / 1e6
            sys.stdout.write(f"\r  {got / 2**20:8.1f} / {total / 2**20:.0f} MiB  {rate:8.1f} MB/s")
            sys.stdout.flush()
    elapsed = time.monotonic() - start
    sender.join()
    print()
    ok = got == total and digest.digest() == expect.digest()
    stats = client.stats()
    print(f"{'verified' if ok else 'MISMATCH'}: {got} bytes in {elapsed:.2f} s = {got / elapsed / 1e6:.1f} MB/s "
          f"(udp payload {stats['max_udp_payload']} B, gso {'on' if stats['gso'] else 'off'}, "
          f"rtt {stats['smoothed_rtt_ms']:.2f} ms)")
    client.close("demo done")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
