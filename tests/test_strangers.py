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
        f.truncate(3 << 30)  # sparse: seconds of copying (as zeros: sparse=False) while the strangers keep at it
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
        result = rcp.copy(str(src), str(tmp_path / "copy.bin"), port_range=str(PORT), sparse=False)
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


REPLAY_PORT = PORT + 1
REPLAY_SECONDS = 60.0  # an upper bound; the test stops the replay when its copy ends


def capture_initials(n: int) -> list[bytes]:
    """n real client Initials (ClientHello, ALPN rcp/1, distinct connection
    IDs), captured at sockets that never answer: what a stranger who once saw
    a copy's first packets can replay."""
    def one(out: list[bytes]) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
            sink.bind(("127.0.0.1", 0))
            sink.settimeout(5)
            opts = _core.QuicOptions()
            opts.handshake_timeout = 1.0
            port = sink.getsockname()[1]

            def hello() -> None:
                try:
                    _core.connect("127.0.0.1", port, _core.Certificate.generate(), "00" * 32, os.urandom(32),
                                  options=opts)
                except _core.RcpError:
                    pass  # nobody answers: expected

            client = threading.Thread(target=hello, daemon=True)
            client.start()
            out.append(sink.recvfrom(70000)[0])
            client.join(timeout=5)

    captured: list[bytes] = []
    threads = [threading.Thread(target=one, args=(captured,)) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(captured) == n and all(len(p) >= 1200 for p in captured), [len(p) for p in captured]
    return captured


class Replay:
    """Replays captured Initials byte for byte at the source's listener
    (~400/s). It sends from 127.0.0.2, another address than the rcpds'. (The
    master has no listener to aim at: its rcpds' links are their stdin/stdout.)"""

    def __init__(self, to_source: list[bytes]) -> None:
        self.to_source = to_source
        self.stop = threading.Event()
        self.sent_source = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.2", 0))
            deadline = time.monotonic() + REPLAY_SECONDS
            while not self.stop.is_set() and time.monotonic() < deadline:
                for p in self.to_source:
                    try:
                        s.sendto(p, ("127.0.0.1", REPLAY_PORT))
                    except OSError:
                        continue
                    self.sent_source += 1
                time.sleep(0.0025)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def test_replayed_initials_hold_no_slot_at_the_source(tmp_path: Path, monkeypatch) -> None:
    """A captured ClientHello replayed at the source's listener took its only
    slot for the whole handshake timeout: the copy failed after 40 s. Now a
    token-less Initial costs a stateless Retry while any handshake is in
    progress (and one evictable slot when none is), so the copy runs at its
    usual speed. The master opens no QUIC server at all: nothing to replay at."""
    src = tmp_path / "big.bin"
    size = 256 << 20
    with open(src, "wb") as f:
        f.truncate(size)  # sparse, sent as zeros (sparse=False): the time goes to the link, not the disk
    servers: list = []
    real_server = _core.QuicServer

    def recording_server(*args, **kwargs):  # any server the master would open
        servers.append(real_server(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(_core, "QuicServer", recording_server)

    def timed_copy(name: str) -> float:
        started = time.monotonic()
        result = rcp.copy(str(src), str(tmp_path / name), port_range=str(REPLAY_PORT), sparse=False)
        took = time.monotonic() - started
        assert result.ok, (name, result.errors)
        assert (tmp_path / name).stat().st_size == size
        (tmp_path / name).unlink()
        return took

    baseline = [timed_copy("quiet1.bin")]
    replay = Replay(capture_initials(1))
    try:
        time.sleep(0.2)  # the replay is already running when the listener opens
        flooded = timed_copy("flooded.bin")
    finally:
        replay.close()
    baseline.append(timed_copy("quiet2.bin"))  # before and after: the machine's load drifts
    quiet = sum(baseline) / len(baseline)
    print(f"copy of {size >> 20} MiB: {baseline} s quiet, {flooded:.2f} s under the replay")
    assert replay.sent_source > 100, replay.sent_source
    assert servers == [], "the master opened a QUIC server"
    assert flooded <= 1.5 * quiet, f"with the replay {flooded:.2f} s, without {baseline} s"


def test_rcpds_get_no_master_address() -> None:
    """No rcpd connects back to the master: its command line names no master
    (and no fingerprint), its control link is its stdin/stdout."""
    from rcp.daemon import daemon_args
    args = daemon_args("rcpd", "source", "8000-8999", "bbr", 2)
    assert "--master" not in args and "--master-fingerprint" not in args, args
