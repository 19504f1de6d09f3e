"""--relay (scp -3): the data goes source -> master -> destination over the
rcpds' SSH channels (or a local rcpd's pipes), through a real OpenSSH server
that forbids every kind of forwarding. Intact trees both ways, the warning,
a side killed mid-relay, a destination that stops reading (the master's
memory stays bounded), and -3 on the command line."""

from __future__ import annotations

import os
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp import _core
from rcp.cli import options_from_args, parse_args
from rcp.daemon import LocalDaemon, daemon_args
from rcp.errors import ConnectionFailure
from rcp.model import CopyOptions, CopyResult, Endpoint, Progress
from rcp.orchestration import RELAY_WARNING, Side, _await_relayed_peer, _end_relay, _start_relay
from rcp.progress import NullProgress
from rcp.protocol import Msg
from sshd import Sshd, start_sshd, stop_sshd
from test_copy_ssh import rcp_cli
from test_faults import kill_mid_copy, rcpd_pids, status_kib
from treeutil import LogLines, assert_same_tree, leftovers, make_tree

RCPD = str(rcp.daemon.rcpd_path())
UNREACHABLE = "192.0.2.1"  # TEST-NET-1: a direct QUIC link could never get there


@pytest.fixture(scope="module")
def nofwd() -> Iterator[Sshd]:
    """An sshd that forwards nothing (as where scp -3 is the only way)."""
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    forwarding = ["AllowTcpForwarding no", "AllowStreamLocalForwarding no", "DisableForwarding yes"]
    server = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-sshd-nofwd-")), extra_config=forwarding)
    try:
        yield server
    finally:
        stop_sshd(server)
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent


def opts(sshd: Sshd, **extra: object) -> dict[str, object]:
    return {"ssh_config": str(sshd.config), "rcpd_path": RCPD, "relay": True, **extra}


class Recorder(LogLines):
    """Keeps the log lines and notices when bytes flow."""

    def __init__(self) -> None:
        super().__init__()
        self.flowing = threading.Event()

    def update(self, p: Progress) -> None:
        if p.bytes_done > 0:
            self.flowing.set()


def _many_small_and_one_large(root: Path, small: int = 400, large: int = 24 << 20) -> Path:
    make_tree(root)
    many = root / "many"
    many.mkdir()
    for i in range(small):
        (many / f"f{i:04d}").write_bytes(os.urandom(i * 37 % 3000))
    with open(root / "large.bin", "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(large >> 20):
            f.write(block[i:] + block[:i])
    return root


def test_relayed_tree_remote_to_remote_is_intact_and_says_so(nofwd: Sshd, tmp_path: Path) -> None:
    tree = _many_small_and_one_large(tmp_path / "src")
    into = tmp_path / "into"
    into.mkdir()
    sink = Recorder()
    result = rcp.copy(f"{nofwd.alias}:{tree}", f"{nofwd.alias}:{into}", progress=sink, **opts(nofwd))
    assert result.ok, result.errors
    assert result.transport == "relay"
    assert_same_tree(tree, into / "src")
    assert not leftovers(into)
    # One warning, at warning level, from the master.
    assert sink.lines.count(("master", "warn", RELAY_WARNING)) == 1, sink.lines
    # Each rcpd linked to the other through the master (the source listened on nothing).
    texts = [t for _, _, t in sink.lines]
    assert "destination connected through the master (its hello names the expected fingerprint)" in texts, texts
    assert "source connected through the master (its hello names the expected fingerprint)" in texts, texts
    assert not any("listening on UDP port" in t for t in texts), texts


@pytest.mark.parametrize("direction", ["local->remote", "remote->local"])
def test_relayed_copy_between_local_and_remote(nofwd: Sshd, tmp_path: Path, direction: str) -> None:
    tree = _many_small_and_one_large(tmp_path / "src", small=50, large=4 << 20)
    into = tmp_path / "into"
    into.mkdir()
    remote = f"{nofwd.alias}:"
    src = (remote if direction.startswith("remote") else "") + str(tree)
    dst = (remote if direction.endswith("remote") else "") + str(into)
    result = rcp.copy(src, dst, **opts(nofwd))
    assert result.ok, result.errors
    assert result.transport == "relay"
    assert_same_tree(tree, into / "src")


def test_without_a_sink_the_warning_goes_to_the_log(nofwd: Sshd, tmp_path: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "f").write_bytes(b"x" * 1000)
    with caplog.at_level("WARNING", logger="rcp"):
        result = rcp.copy(str(tmp_path / "f"), f"{nofwd.alias}:{tmp_path / 'g'}", **opts(nofwd))
    assert result.ok, result.errors
    assert (tmp_path / "g").read_bytes() == b"x" * 1000
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [RELAY_WARNING]


def test_a_direct_copy_is_not_relayed(nofwd: Sshd, tmp_path: Path) -> None:
    """Never chosen silently: without relay=True the data goes direct (and no warning)."""
    (tmp_path / "f").write_bytes(b"y" * 1000)
    sink = Recorder()
    result = rcp.copy(str(tmp_path / "f"), f"{nofwd.alias}:{tmp_path / 'g'}", progress=sink,
                      ssh_config=str(nofwd.config), rcpd_path=RCPD)
    assert result.ok, result.errors
    assert result.transport == "quic"
    assert not any(level == "warn" for _, level, _ in sink.lines), sink.lines


@pytest.mark.parametrize("victim", ["source", "destination"])
def test_a_side_killed_mid_relay_fails_cleanly(nofwd: Sshd, tmp_path: Path, victim: str) -> None:
    """Clean error, no rcpd left, no partial file under a final name; a killed
    source leaves the destination to remove its temporaries."""
    outcome = kill_mid_copy(tmp_path, victim, wrap=lambda p: f"{nofwd.alias}:{p}", ancestors={nofwd.proc.pid},
                            **opts(nofwd))
    result = outcome.get("result")
    if isinstance(result, CopyResult):
        # One cause, one entry: the survivor's "the relay ... ended" is its echo.
        assert len(result.errors) == 1 and result.failed == 1, result.errors
        assert result.errors[0][0] == victim, result.errors


def test_a_stopped_destination_holds_the_source_back_not_the_masters_memory(nofwd: Sshd, tmp_path: Path) -> None:
    """The destination stops reading (SIGSTOP) for 3 s in the middle of a
    512 MiB relayed copy: the master's memory stays within a few windows
    (unbounded, it would take in the ~40 MB/s the source sends), then the
    copy completes intact."""
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.truncate(512 << 20)  # sparse: the source reads it at memory speed (sent as zeros: sparse=False)
    dst = tmp_path / "out"
    sink = Recorder()
    outcome: dict[str, object] = {}
    base = status_kib(os.getpid(), "VmRSS")

    def run() -> None:
        try:
            outcome["result"] = rcp.copy(f"{nofwd.alias}:{src}", f"{nofwd.alias}:{dst}", progress=sink,
                                         sparse=False, **opts(nofwd))
        except rcp.RcpError as exc:
            outcome["error"] = exc

    t = threading.Thread(target=run)
    t.start()
    assert sink.flowing.wait(timeout=60), "the copy never started"
    pids = rcpd_pids("destination", {nofwd.proc.pid})
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGSTOP)
    peak = base
    try:
        stop_until = time.monotonic() + 3
        while time.monotonic() < stop_until:
            peak = max(peak, status_kib(os.getpid(), "VmRSS"))
            time.sleep(0.02)
    finally:
        os.kill(pids[0], signal.SIGCONT)
    t.join(timeout=120)
    assert not t.is_alive(), "the copy did not finish after the destination resumed"
    result = outcome.get("result")
    assert isinstance(result, CopyResult) and result.ok, outcome
    assert dst.stat().st_size == 512 << 20
    with open(dst, "rb") as f:
        zeros = bytes(1 << 20)
        assert all(f.read(1 << 20) == zeros for _ in range(512)), "the copy is not all zeros"
    grew_mib = (peak - base) / 1024
    print(f"master RSS: {base / 1024:.0f} MiB before, peak {peak / 1024:.0f} MiB while the destination was stopped")
    # docs/security.md: about 12 MiB per direction held along the way (one direction is stuck here).
    assert grew_mib < 24, f"the master grew by {grew_mib:.0f} MiB while the destination was stopped"


def test_cli_dash_3_is_relay(nofwd: Sshd, tmp_path: Path) -> None:
    a, b = (options_from_args(parse_args([flag, "h:x", str(tmp_path)]), stderr_is_tty=False)
            for flag in ("-3", "--relay"))
    assert a.options.relay and b.options.relay and a == b
    assert not options_from_args(parse_args(["h:x", str(tmp_path)]), stderr_is_tty=False).options.relay
    (tmp_path / "f").write_bytes(os.urandom(5000))
    out = rcp_cli("-3", "--no-progress", "--ssh-config", str(nofwd.config), "--rcpd-path", RCPD,
                  "--source-address", UNREACHABLE, f"{nofwd.alias}:{tmp_path / 'f'}", f"{nofwd.alias}:{tmp_path / 'g'}")
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "g").read_bytes() == (tmp_path / "f").read_bytes()
    assert out.stderr.splitlines() == [f"[master] warn: {RELAY_WARNING}",
                                       "[master] warn: --relay: --source-address ignored "
                                       "(the hosts do not connect to each other)"], out.stderr


def test_direct_only_options_are_ignored_with_a_warning_and_never_resolved(nofwd: Sshd, tmp_path: Path) -> None:
    """Relayed, the hosts never connect to each other: --master-address and
    --port-range mean nothing, and a name there must not fail the copy."""
    (tmp_path / "f").write_bytes(b"z" * 1000)
    sink = Recorder()
    result = rcp.copy(str(tmp_path / "f"), f"{nofwd.alias}:{tmp_path / 'g'}", progress=sink,
                      **opts(nofwd, master_address="no-such-host.invalid", port_range="40000-40010"))
    assert result.ok, result.errors
    assert (tmp_path / "g").read_bytes() == b"z" * 1000
    assert ("master", "warn", "--relay: --master-address, --port-range ignored "
            "(the hosts do not connect to each other)") in sink.lines, sink.lines


class LocalPair:
    """A source and a destination rcpd, local, with this test as their master."""

    def __init__(self) -> None:
        key, cert = os.urandom(32), _core.Certificate.generate()
        self.daemons: list[LocalDaemon] = []
        self.links: list[_core.Link] = []
        self.fingerprints: list[str] = []
        for role in ("source", "destination"):
            daemon = LocalDaemon(role, daemon_args(RCPD, role, ""))
            self.daemons.append(daemon)
            hello = daemon.hello(15)
            daemon.send_key(key)
            self.fingerprints.append(hello.fingerprint)
            self.links.append(daemon.link(cert, key, hello.fingerprint, 15))

    def answer(self, side: int, timeout: float = 20) -> tuple[int, list]:
        kind, fields = self.links[side].recv(timeout=timeout)
        return kind, fields

    def sides(self) -> tuple[Side, Side]:
        """The two as the orchestration sees them."""
        src, dst = (Side(role, Endpoint("/"), daemon=d, link=link, fingerprint=fp)
                    for role, d, link, fp in zip(("source", "destination"), self.daemons, self.links,
                                                 self.fingerprints))
        return src, dst

    def close(self) -> None:
        for link in self.links:
            link.close("test over")
        for daemon in self.daemons:
            daemon.stop()


def test_a_relayed_peer_must_be_the_rcpd_the_master_named() -> None:
    """The sealed hello proves the session key; through the relay the
    destination also checks that the peer's hello names the fingerprint the
    master gave it (QUIC pins it in the handshake)."""
    pair = LocalPair()
    try:
        src, dst = pair.links
        src.send(Msg.EXPECT_PEER, [pair.fingerprints[1], "relay"])
        dst.send(Msg.CONNECT_PEER, [[], 0, _core.Certificate.generate().fingerprint, "relay"])
        splice = _core.splice_tunnel(src, dst, accept_timeout=10)
        kind, fields = pair.answer(1)
        assert kind == Msg.ERROR and "not the source the master named" in fields[0], (kind, fields)
        splice.stop()
        assert splice.wait(timeout=5)
    finally:
        pair.close()


def test_a_relayed_peer_must_be_the_destination_the_master_named() -> None:
    """The same check at the source: the peer's hello must name the
    destination fingerprint the master gave it in expect_peer."""
    pair = LocalPair()
    try:
        src, dst = pair.links
        src.send(Msg.EXPECT_PEER, [_core.Certificate.generate().fingerprint, "relay"])
        dst.send(Msg.CONNECT_PEER, [[], 0, pair.fingerprints[0], "relay"])
        splice = _core.splice_tunnel(src, dst, accept_timeout=10)
        kind, fields = pair.answer(0)
        assert kind == Msg.ERROR and "not the destination the master named" in fields[0], (kind, fields)
        splice.stop()
        assert splice.wait(timeout=5)
    finally:
        pair.close()


def test_an_unknown_transport_is_refused_by_name() -> None:
    pair = LocalPair()
    try:
        pair.links[1].send(Msg.CONNECT_PEER, [[], 1, pair.fingerprints[0], "carrier-pigeon"])
        kind, fields = pair.answer(1)
        assert kind == Msg.ERROR and "unknown transport 'carrier-pigeon'" in fields[0], (kind, fields)
    finally:
        pair.close()


def test_a_side_that_opens_no_tunnel_fails_the_other_at_once() -> None:
    """Only the destination is told to relay: the source never opens its
    tunnel stream. The splice gives up after its accept timeout and ends the
    destination's tunnel, so the destination answers an error then, not
    after its own 60 s set-up timeout; the splice names the source."""
    pair = LocalPair()
    try:
        src, dst = pair.links
        dst.send(Msg.CONNECT_PEER, [[], 0, pair.fingerprints[0], "relay"])
        started = time.monotonic()
        splice = _core.splice_tunnel(src, dst, accept_timeout=2, names=("source", "destination"))
        kind, fields = pair.answer(1, timeout=10)
        assert kind == Msg.ERROR and "relay" in fields[0], (kind, fields)
        assert time.monotonic() - started < 10
        assert splice.wait(timeout=5)
        assert splice.error == "the source opened no relay stream within the set-up time", splice.error
    finally:
        pair.close()


def test_a_source_dying_during_relay_setup_is_named_at_once() -> None:
    """The source rcpd dies right after it was told to relay: the master
    says so within seconds (not the destination's 40 s silence, nor the
    destination's echo of it)."""
    pair = LocalPair()
    splice = None
    try:
        src, dst = pair.sides()
        pids = rcpd_pids("source")
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGSTOP)  # so that it dies before it reads its orders, never after
        splice = _start_relay(src, dst, NullProgress(), CopyOptions(relay=True))
        os.kill(pids[0], signal.SIGKILL)
        started = time.monotonic()
        with pytest.raises(ConnectionFailure, match="^source rcpd") as failure:
            _await_relayed_peer(src, dst, splice)
        assert time.monotonic() - started < 5, failure.value
    finally:
        pair.close()
        if splice is not None:
            _end_relay(splice)
