"""Strangers on the network: the source's listener (fixed with --port-range so
the test knows where it is) and the master's server get garbage datagrams,
floods of Initial-looking packets and rogue QUIC clients with the wrong
certificate while a real copy runs. The copy must still succeed, intact, and
the rcpds must stay small."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from pathlib import Path

import rcp
from rcp import _core
from test_faults import rcpd_pids, status_kib

PORT = 31911  # below Linux's ephemeral range, so no client socket of the test machine holds it
FLOOD_SECONDS = 20.0


class Flood:
    """Garbage and Initial-shaped datagrams to 127.0.0.1:PORT, plus rogue
    handshakes with a certificate nobody pinned, until stopped."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.sent = 0
        self.rogue_refused = 0
        self.rogue_accepted = 0
        self.threads = [threading.Thread(target=self._datagrams, daemon=True),
                        threading.Thread(target=self._rogues, daemon=True)]
        for t in self.threads:
            t.start()

    def _datagrams(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            deadline = time.monotonic() + FLOOD_SECONDS
            while not self.stop.is_set() and time.monotonic() < deadline:
                for _ in range(200):
                    junk = os.urandom(1200)
                    # Half look like QUIC v1 Initials (long header, version 1), half are noise.
                    pkt = (b"\xc3\x00\x00\x00\x01\x08" + junk[6:]) if self.sent % 2 else junk[: 1 + self.sent % 1200]
                    try:
                        s.sendto(pkt, ("127.0.0.1", PORT))
                    except OSError:
                        pass
                    self.sent += 1
                time.sleep(0.002)

    def _rogues(self) -> None:
        """Keeps trying to get in with a certificate nobody pinned, pinning the
        listener's real fingerprint once a refused handshake has named it."""
        cert = _core.Certificate.generate()
        opts = _core.QuicOptions()
        opts.handshake_timeout = 1.0
        pin = "00" * 32
        deadline = time.monotonic() + FLOOD_SECONDS
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                link = _core.connect("127.0.0.1", PORT, cert, pin, os.urandom(32), options=opts)
                self.rogue_accepted += 1
                link.close("rogue")
            except _core.RcpError as exc:
                found = re.search(r"peer certificate ([0-9a-f]{64}) (?:is not pinned|does not match)", str(exc))
                if found:
                    pin = found.group(1)  # now we pin the real listener: it must refuse us
                # Refused, or (once the destination is in) no answer at all.
                self.rogue_refused += 1
            time.sleep(0.02)

    def close(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=5)


def test_copy_survives_garbage_floods_and_rogue_clients(tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        f.truncate(3 << 30)  # sparse: seconds of copying while the strangers keep at it
    peaks: dict[int, int] = {}
    flood = Flood()
    done = threading.Event()

    def watch_memory() -> None:
        while not done.is_set():
            for pid in rcpd_pids("source") + rcpd_pids("destination"):
                peaks[pid] = max(peaks.get(pid, 0), status_kib(pid, "VmRSS"))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch_memory, daemon=True)
    watcher.start()
    try:
        time.sleep(0.5)  # the flood is already running when the listener opens
        result = rcp.copy(str(src), str(tmp_path / "copy.bin"), port_range=str(PORT))
    finally:
        done.set()
        flood.close()
        watcher.join(timeout=5)
    assert result.ok, result.errors
    assert (tmp_path / "copy.bin").stat().st_size == 3 << 30
    assert flood.sent > 10_000, flood.sent
    assert flood.rogue_accepted == 0, "a client with an unpinned certificate got a connection"
    assert flood.rogue_refused > 0
    assert peaks and max(peaks.values()) < 400 * 1024, peaks  # KiB
