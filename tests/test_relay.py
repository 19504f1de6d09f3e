"""The master's relay of rcpd log streams, against a real QUIC link whose
other end misbehaves: malformed progress and results are counted and
skipped, and a log flood waits on flow control instead of growing the master."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rcp
from rcp import _core
from rcp.model import CopyResult, Endpoint, Progress
from rcp.orchestration import MAX_LOG_LINE, Side, _Relay, _wait_result
from rcp.protocol import Msg
from test_faults import status_kib


class Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.updates: list[Progress] = []
        self.lines: list[str] = []
        self.got_last = threading.Event()

    def start(self) -> None: ...
    def finish(self, result: CopyResult) -> None: ...

    def update(self, p: Progress) -> None:
        self.updates.append(p)

    def log(self, role: str, level: str, text: str) -> None:
        time.sleep(self.delay)  # a slow terminal
        self.lines.append(text)
        if text == "last":
            self.got_last.set()


def _side(link: rcp.Link) -> Side:
    return Side("source", Endpoint(path="x"), link=link)


@pytest.mark.parametrize("bad", [
    [1, 2, 3],                   # too few fields
    ["1", 2, 3, 4],              # a string for a count
    [-1, 2, 3, 4],               # negative
    [None, [], {}, 1.5],
    [1, 2, 3, 4, 5],             # the file in flight (appended in protocol 5) not a string
])
def test_a_malformed_progress_message_does_not_kill_the_relay(peers, bad: list) -> None:
    server, client, master_end = peers.pair()
    side, sink = _side(master_end), Recorder()
    relay = _Relay(side, sink, time.monotonic())
    client.send_log(int(Msg.PROGRESS), bad)
    client.send_log(int(Msg.LOG), ["info"])  # a log line without its text
    client.send_log(int(Msg.PROGRESS), [10, 1, 20, 2])
    client.send_log(int(Msg.LOG), ["info", "last"])
    assert sink.got_last.wait(timeout=10), "the relay died on a malformed message"
    side.done.set()
    relay.thread.join(timeout=5)
    assert [(p.bytes_done, p.files_total) for p in sink.updates] == [(10, 2)]
    assert side.protocol_errors == 2


@pytest.mark.parametrize("bad", [[1, 2, 3], [1, 2, 3, 4, 5, "six", []], [1, 2, 3, 4, 5, 6, "not a list"],
                                 [1, 2, 3, 4, 5, 6, [["only a path"]]]])
def test_a_malformed_result_is_an_error_not_a_traceback(peers, bad: list) -> None:
    server, client, master_end = peers.pair()
    side = _side(master_end)

    class Alive:
        where = "test"

        def alive(self) -> bool:
            return True

        def diagnostics(self) -> str:
            return ""

    side.daemon = Alive()  # type: ignore[assignment]
    client.send(int(Msg.RESULT), bad)
    _wait_result(side, threading.Event())
    assert side.result is None
    assert side.error == "source rcpd sent a malformed result"
    assert side.protocol_errors == 1


def test_each_log_line_is_bounded(peers) -> None:
    server, client, master_end = peers.pair()
    side, sink = _side(master_end), Recorder()
    relay = _Relay(side, sink, time.monotonic())
    client.send_log(int(Msg.LOG), ["info", "y" * 100_000])
    client.send_log(int(Msg.LOG), ["info", "last"])
    assert sink.got_last.wait(timeout=10)
    side.done.set()
    relay.thread.join(timeout=5)
    assert len(sink.lines[0]) <= MAX_LOG_LINE + 10


FLOODER = r"""
import os, sys, time
from rcp import _core
port, server_fp, key = int(sys.argv[1]), sys.argv[2], bytes.fromhex(sys.argv[3])
cert = _core.Certificate.generate()
print(cert.fingerprint, flush=True)
sys.stdin.readline()  # pinned: go
opts = _core.QuicOptions(); opts.idle_timeout = 30.0
link = _core.connect("127.0.0.1", port, cert, server_fp, key, options=opts)
line = "z" * ((1 << 20) - 64)
for _ in range(int(sys.argv[4])):
    link.send_log(21, ["info", line])
link.send_log(21, ["info", "last"])
print("sent", flush=True)
sys.stdin.readline()
"""


def test_a_log_flood_waits_on_flow_control_not_in_master_memory(tmp_path: Path) -> None:
    """A pinned, keyed peer sends 200 lines of 1 MiB to a master whose
    terminal is slow: the master's memory stays near its start."""
    key = os.urandom(32)
    cert = _core.Certificate.generate()
    server = _core.QuicServer(cert, [], key, host="127.0.0.1", role="master")
    script = tmp_path / "flooder.py"
    script.write_text(FLOODER)
    proc = subprocess.Popen([sys.executable, str(script), str(server.port), cert.fingerprint, key.hex(), "200"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        server.add_pin(proc.stdout.readline().strip())
        proc.stdin.write("go\n")
        proc.stdin.flush()
        link = server.accept(timeout=10)
        base = status_kib(os.getpid(), "VmRSS")
        side, sink = _side(link), Recorder(delay=0.01)
        relay = _Relay(side, sink, time.monotonic())
        peak = base
        deadline = time.monotonic() + 60
        while not sink.got_last.is_set() and time.monotonic() < deadline:
            peak = max(peak, status_kib(os.getpid(), "VmRSS"))
            time.sleep(0.02)
        assert sink.got_last.is_set(), f"only {len(sink.lines)} lines arrived"
        side.done.set()
        relay.thread.join(timeout=5)
        assert len(sink.lines) == 201
        grew_mib = (peak - base) / 1024
        assert grew_mib < 48, f"the master grew by {grew_mib:.0f} MiB under a 200 MiB log flood"
    finally:
        proc.kill()
        proc.wait(timeout=10)
