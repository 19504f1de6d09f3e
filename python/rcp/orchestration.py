"""The master's side of a copy: start both rcpds, wire them together, relay
progress and logs, and collect the result.

Flow (docs/architecture.md): both rcpds start in parallel and their control
links run over their stdin/stdout (the SSH channel, or a local child's
pipes); the master tells the source which destination fingerprint to pin,
the source reports where it listens, the destination connects straight to
it (QUIC, or TLS over TCP: --transport), and then the master hands out the
job. File data never passes through here, unless asked to (--relay:
_start_relay).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from rcp import _core, deploy, ssh
from rcp.daemon import Daemon, LocalDaemon, RemoteDaemon, daemon_args, rcpd_path
from rcp.errors import ConnectionFailure, RcpdError, UsageError
from rcp.model import (
    MAX_FALLBACK_TIMEOUT, MAX_PLAN_BYTES, MAX_PLAN_ENTRIES, PLAN_ACTIONS, PLAN_ENTRY_COST, PLAN_INODE_COST, TRANSPORTS,
    CopyOptions, CopyResult, Endpoint, PlanEntry, Progress, host_label,
)
from rcp.operands import has_wildcard, root_rule
from rcp.progress import NullProgress, ProgressSink
from rcp.protocol import Msg
from rcp.samples import SampleLog
from rcp.sanitize import printable
from rcp.trace import mark

SETUP_TIMEOUT = 30.0
POLL = 0.1
MAX_LOG_LINE = 4096  # characters of one rcpd log line shown; the rest is cut
# What a side says when it only saw the other side fail (cpp/link: Link, TunnelStream).
ECHOES = ("closed the connection", "the relay through the master ended")
RELAY_WARNING = ("--relay: the data goes through this machine (source -> master -> destination), "
                 "decrypted here, and at most as fast as its SSH connections")

log = logging.getLogger(__name__)
TRACE = 5  # below DEBUG: rcp -vvv
logging.addLevelName(TRACE, "TRACE")
# rcpd's log levels as logging's.
LOG_LEVELS = {"error": logging.ERROR, "warn": logging.WARNING, "warning": logging.WARNING,
              "notice": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG, "trace": TRACE}
# Marks a record the progress sink has shown already (rcp.cli shows the others through it).
SHOWN = "rcp_shown"


class Cancelled(Exception):
    """Transfer.cancel() asked the copy to stop (internal: run_copy returns a cancelled CopyResult)."""


def _visible(sink: ProgressSink) -> bool:
    return not isinstance(sink, NullProgress)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled()


@dataclass
class Side:
    role: str
    endpoint: Endpoint
    daemon: Daemon | None = None
    ssh: _core.SshSession | None = None  # remote sides only
    rcpd: str | None = None  # remote sides: the rcpd to run there (deploy.ensure_rcpd), else options.rcpd_path
    master_host: str = "127.0.0.1"  # how this side's host reaches the master's (for a local source's address)
    link: _core.Link | None = None
    fingerprint: str = ""
    result: list[Any] | None = None
    error: str | None = None
    protocol_errors: int = 0  # malformed messages from this side's rcpd
    transport: str = ""  # the destination: what its link to the source runs on
    done: threading.Event = field(default_factory=threading.Event)
    plan: list[PlanEntry] = field(default_factory=list)  # the destination's, with dry_run
    plan_dropped: int = 0  # past MAX_PLAN_ENTRIES or MAX_PLAN_BYTES
    plan_bytes: int = 0  # held in `plan`
    last_progress: Progress | None = None  # this side's latest report


def _connect_ssh(side: Side, options: CopyOptions, sink: ProgressSink) -> _core.SshSession:
    # Host-key warnings (a new key recorded) go where the user sees the copy's logs.
    shown = _visible(sink)
    warn = (lambda text: sink.log(side.role, "warn", text)) if shown else None
    session = ssh.connect(side.endpoint, options, warn)
    if options.deploy and not options.rcpd_path:  # an explicit --rcpd-path is never a reason to deploy
        def notice(text: str) -> None:
            log.info("%s", text, extra={SHOWN: shown})
            if shown:
                sink.log(side.role, "notice", text)
        side.rcpd = deploy.ensure_rcpd(session, host_label(side.endpoint), options.deploy_dir, notice)
    return session


def _start(side: Side, options: CopyOptions) -> None:
    ep = side.endpoint
    port_range = options.port_range if side.role == "source" else ""
    if ep.is_local:
        side.daemon = LocalDaemon(side.role, daemon_args(str(rcpd_path()), side.role, port_range,
                                                         options.congestion_control, options.verbose))
        return
    assert side.ssh is not None, "remote sides are connected first"
    side.master_host = options.master_address or side.ssh.local_address
    args = daemon_args(side.rcpd or options.rcpd_path or "rcpd", side.role, port_range, options.congestion_control,
                       options.verbose)
    side.daemon = RemoteDaemon(side.role, side.ssh, host_label(ep), args)


def _numeric_address(host: str) -> str:
    """`host` as a numeric address: rcpd is static and cannot resolve names (no
    NSS), so the master resolves a name given in --master-address or
    --source-address itself, once, and hands out the first address."""
    bare = host.strip("[]")
    try:
        ipaddress.ip_address(bare.split("%")[0])
        return bare
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(bare, None, type=socket.SOCK_DGRAM)
    except OSError as e:
        raise UsageError(f"cannot resolve {host!r}: {e}") from e
    return str(infos[0][4][0])


def _with_numeric_addresses(options: CopyOptions) -> CopyOptions:
    if options.relay or (not options.master_address and not options.source_addresses):
        return options  # relayed, the hosts never connect: names it will not use must not fail it
    return replace(options,
                   master_address=_numeric_address(options.master_address) if options.master_address else None,
                   source_addresses=[_numeric_address(a) for a in options.source_addresses])


def _source_addresses(source: Side, destination: Side, advertised: list[str],
                      explicit: list[str] | None = None) -> list[str]:
    """Where the destination should try to reach the source, best first."""
    if explicit:
        return [a.strip("[]") for a in explicit]  # the user knows the topology: only these
    first: list[str] = []
    if source.endpoint.is_local:
        # The destination reached the master (this host) at master_host.
        first.append(destination.master_host if not destination.endpoint.is_local else "127.0.0.1")
    else:
        assert source.ssh is not None
        first.append(source.ssh.remote_address)
    seen: list[str] = []
    for a in first + advertised:
        if a and a not in seen:
            seen.append(a)
    return seen


def _count(value: object) -> int:
    """A non-negative integer field, or ValueError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count, got {type(value).__name__}")
    return value


def _progress(side: Side, fields: list[Any], elapsed: float) -> Progress:
    if len(fields) < 4:
        raise ValueError(f"{len(fields)} fields, expected 4")
    done, files, total, files_total = (_count(f) for f in fields[:4])
    current = fields[4] if len(fields) > 4 else ""  # appended in protocol 5
    if not isinstance(current, str):
        raise ValueError(f"current is a {type(current).__name__}, not a path")
    return Progress(side.role, done, files, total, files_total, elapsed=elapsed,
                    current=printable(current[:MAX_LOG_LINE]))


def _log_line(fields: list[Any]) -> tuple[str, str]:
    if len(fields) < 2:
        raise ValueError(f"{len(fields)} fields, expected 2")
    level, text = str(fields[0])[:16], str(fields[1])
    if len(text) > MAX_LOG_LINE:
        text = text[:MAX_LOG_LINE] + " [cut]"
    return printable(level), printable(text)


def _protocol_error(side: Side, what: str, exc: Exception) -> None:
    side.protocol_errors += 1
    log.warning("%s rcpd sent a malformed %s message (%s); ignored", side.role, what, exc)


class _Relay:
    """Reads one rcpd's log stream and feeds the progress sink. A malformed
    message is logged and counted, never the end of the relay: a dead relay
    would leave the rcpd's later lines piling up unread."""

    def __init__(self, side: Side, sink: ProgressSink, start: float, samples: SampleLog | None = None) -> None:
        self.side, self.sink, self.start = side, sink, start
        self.samples = samples  # the destination's verified totals, kept for CopyResult.samples
        self.thread = threading.Thread(target=self._run, daemon=True, name=f"relay-{side.role}")
        self.thread.start()

    def _run(self) -> None:
        link = self.side.link
        assert link is not None
        while True:
            try:
                # Short waits: once the side is done, what is left is drained quickly.
                kind, fields = link.recv_log(timeout=0.05 if self.side.done.is_set() else POLL)
            except _core.TimeoutError:
                if self.side.done.is_set():
                    return
                continue
            except _core.RcpError:
                return
            try:
                if kind == Msg.PROGRESS:
                    p = _progress(self.side, fields, time.monotonic() - self.start)
                    self.side.last_progress = p
                    if self.samples is not None:
                        self.samples.add(p.elapsed, p.bytes_done, p.files_done)
                    self.sink.update(p)
                elif kind == Msg.LOG:
                    level, text = _log_line(fields)
                    self.sink.log(self.side.role, level, text)
                    logging.getLogger(f"rcp.{self.side.role}").log(
                        LOG_LEVELS.get(level.lower(), logging.INFO), "%s", text,
                        extra={SHOWN: _visible(self.sink)})
                else:
                    raise ValueError(f"type {kind} on the log stream")
            except (ValueError, TypeError) as exc:
                _protocol_error(self.side, "log-stream", exc)


def _expect(side: Side, want: Msg, timeout: float) -> list[Any]:
    assert side.link is not None
    deadline = time.monotonic() + timeout
    while True:
        if side.daemon is not None and not side.daemon.alive():
            raise RcpdError(f"{side.role} rcpd ({side.daemon.where}) exited: {side.daemon.diagnostics()}")
        try:
            kind, fields = side.link.recv(timeout=min(POLL * 5, max(0.01, deadline - time.monotonic())))
        except _core.TimeoutError:
            if time.monotonic() >= deadline:
                raise RcpdError(f"{side.role} rcpd did not answer within {timeout:.0f} s") from None
            continue
        except _core.RcpError as exc:
            raise RcpdError(f"{side.role} rcpd: {exc}") from exc
        if kind == Msg.ERROR:
            raise RcpdError(f"{side.role} rcpd: {printable(str(fields[0]) if fields else 'error')}")
        if kind != want:
            raise RcpdError(f"{side.role} rcpd sent message {kind}, expected {want.name}")
        return fields


def _check_transport(options: CopyOptions) -> None:
    if options.transport not in TRANSPORTS:
        raise UsageError(f"transport must be one of {', '.join(TRANSPORTS)}, not {options.transport!r}")
    t = options.fallback_timeout
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) \
            or not 0 < t <= MAX_FALLBACK_TIMEOUT:
        raise UsageError(f"fallback_timeout must be a number of seconds in (0, {MAX_FALLBACK_TIMEOUT:g}], not {t!r}")


def _peer_transport(fields: list[Any]) -> str:
    """What the destination's peer_connected says its link runs on (absent: an older rcpd, QUIC)."""
    if not fields:
        return "quic"
    if fields[0] not in ("quic", "tcp"):
        raise RcpdError("destination rcpd sent a malformed 'peer_connected' message")
    return str(fields[0])


def _listening(fields: list[Any]) -> tuple[int, list[str]]:
    """The source's [port, [addresses]], checked."""
    if (len(fields) < 2 or not isinstance(fields[0], int) or not 0 < fields[0] < 65536
            or not isinstance(fields[1], list) or not all(isinstance(a, str) for a in fields[1])):
        raise RcpdError("source rcpd sent a malformed 'listening' message")
    return fields[0], fields[1]


def _wait_result(side: Side, changed: threading.Event) -> None:
    """Blocks until `side` reports its result or fails; fills side.result / side.error."""
    assert side.link is not None and side.daemon is not None
    while True:
        try:
            kind, fields = side.link.recv(timeout=POLL * 3)
        except _core.TimeoutError:
            if not side.daemon.alive():
                side.error = f"{side.role} rcpd ({side.daemon.where}) died: {side.daemon.diagnostics()}"
                break
            continue
        except _core.RcpError as exc:
            side.error = f"{side.role} rcpd: {exc}"
            break
        if kind == Msg.PLAN:
            try:
                _add_plan(side, fields)
            except (ValueError, TypeError) as exc:
                _protocol_error(side, "plan", exc)
            continue
        if kind == Msg.RESULT:
            try:
                side.result = _result_fields(fields)
            except (ValueError, TypeError) as exc:
                _protocol_error(side, "result", exc)
                side.error = f"{side.role} rcpd sent a malformed result"
            break
        if kind == Msg.ERROR:
            side.error = printable(str(fields[0]) if fields else "error")
            break
    side.done.set()
    changed.set()


def _add_plan(side: Side, fields: list[Any]) -> None:
    """[[[action, path, size, (appended) [device, inode] or []]...]]: kept up to
    MAX_PLAN_ENTRIES and MAX_PLAN_BYTES, the rest counted."""
    if not fields or not isinstance(fields[0], list):
        raise ValueError("plan entries are not a list")
    for entry in fields[0]:
        if (not isinstance(entry, list) or len(entry) < 3 or entry[0] not in PLAN_ACTIONS
                or not isinstance(entry[2], int) or entry[2] < 0):
            raise ValueError("a plan entry is not [action, path, size]")
        inode = _inode(entry[3]) if len(entry) > 3 else None
        cost = len(str(entry[1])) + PLAN_ENTRY_COST + (PLAN_INODE_COST if inode else 0)
        if len(side.plan) < MAX_PLAN_ENTRIES and side.plan_bytes + cost <= MAX_PLAN_BYTES:
            side.plan_bytes += cost
            side.plan.append(PlanEntry(str(entry[0]), printable(str(entry[1])), int(entry[2]), inode))
        else:
            side.plan_dropped += 1


def _inode(field: Any) -> tuple[int, int] | None:
    """A plan entry's [device, inode] (or [] for none), checked."""
    if not isinstance(field, list) or len(field) not in (0, 2) or not all(
            isinstance(n, int) and 0 <= n < 1 << 64 for n in field):
        raise ValueError("a plan entry's inode is not [device, inode]")
    return (int(field[0]), int(field[1])) if field else None


def _result_fields(fields: list[Any]) -> list[Any]:
    """[files, bytes, dirs, symlinks, kept, failed, [[path, error]...], unchanged, ignored, [kept paths],
    deleted, plan_omitted, sparse_bytes, hard_links, resumed_bytes], checked; unchanged, ignored, kept paths
    were appended in protocol 4 and default to 0, 0, []; the last five in protocol 5, default 0."""
    if len(fields) < 7 or not isinstance(fields[6], list):
        raise ValueError("expected six counts and a list of errors")
    counts = [_count(f) for f in fields[:6]]
    errors = []
    for entry in fields[6]:
        if not isinstance(entry, list) or len(entry) < 2:
            raise ValueError("an error entry is not [path, message]")
        errors.append([printable(str(entry[0])), printable(str(entry[1]))])
    more = [_count(f) for f in fields[7:9]] + [0] * (2 - len(fields[7:9]))
    kept_paths = fields[9] if len(fields) > 9 else []
    if not isinstance(kept_paths, list):
        raise ValueError("kept paths are not a list")
    # Appended in protocol 5: deleted, plan_omitted, sparse_bytes, hard_links, resumed_bytes.
    v5 = [_count(f) for f in fields[10:15]] + [0] * (5 - len(fields[10:15]))
    return counts + [errors] + more + [[printable(str(p)) for p in kept_paths]] + v5


def run_copy(sources: list[Endpoint], destination: Endpoint, options: CopyOptions,
             sink: ProgressSink | None = None, cancel: threading.Event | None = None) -> CopyResult:
    """The connection flow of docs/architecture.md, one named step at a time.
    Setting `cancel` stops the copy at the next step (or, copying, within
    POLL seconds): both rcpds are hung up on and the result says cancelled."""
    sink = sink or NullProgress()
    if not sources:
        raise UsageError("no source given")
    _check_transport(options)
    options = _with_numeric_addresses(options)
    started = time.monotonic()
    src = Side("source", sources[0])
    dst = Side("destination", destination)
    sides = [src, dst]
    samples = SampleLog()
    splice: _core.TunnelSplice | None = None
    relays: list[_Relay] = []
    result: CopyResult
    try:
        mark("copy called")
        cert = _core.Certificate.generate()
        key = os.urandom(32)
        mark("master certificate")
        remote = sorted({host_label(s.endpoint) for s in sides if not s.endpoint.is_local})
        _phase(sink, f"connecting to {', '.join(remote)}" if remote else "starting rcpd")
        _connect_ssh_sessions(sides, options, sink)
        mark("ssh connected")
        _check(cancel)
        _phase(sink, "starting rcpd on both sides")
        _start_daemons(sides, options)
        mark("rcpd started")
        _exchange_hellos(sides, key)
        mark("hellos")
        _open_links(sides, cert, key)
        mark("control links")
        _check(cancel)
        sink.start()
        _phase(sink, "linking the source and the destination")
        relays = [_Relay(s, sink, started, samples if s is dst else None) for s in sides]
        if options.relay:
            splice = _start_relay(src, dst, sink, options)
            _await_relayed_peer(src, dst, splice)
        else:
            _wire_peers(src, dst, options)
        mark("peers connected")
        _check(cancel)
        _hand_out_job(src, dst, sources, destination, options)
        _wait_results(sides, cancel)
        mark("results")
        # Each rcpd's last logs came before its result on the one ordered
        # stream of its control link, so they are queued already: hanging up
        # now lets the relays drain them and end at once, with no timed wait.
        _close_links(sides)
        for r in relays:
            r.thread.join(timeout=2.0)
        mark("relays joined")
        result = replace(_build_result(src, dst, time.monotonic() - started, relayed=splice is not None),
                         samples=samples.samples())
    except Cancelled:
        result = replace(_build_result(src, dst, time.monotonic() - started, relayed=splice is not None,
                                       cancelled=True), samples=samples.samples())
        log.info("copy cancelled after %.1f s", result.duration)
    finally:
        _hang_up(sides)
        mark("hung up")
        if splice is not None:
            _end_relay(splice)
    sink.finish(result)
    return result


def _phase(sink: ProgressSink, text: str) -> None:
    """What the copy is doing before its first progress ("connecting to host"),
    for a sink that shows it (an optional method: a ProgressSink need not have it)."""
    phase = getattr(sink, "phase", None)
    if callable(phase):
        phase(text)


def _connect_ssh_sessions(sides: list[Side], options: CopyOptions, sink: ProgressSink) -> None:
    """SSH sessions to the remote sides, in parallel."""
    remote = [s for s in sides if not s.endpoint.is_local]
    with ThreadPoolExecutor(max_workers=2) as pool:
        for s, session in zip(remote, pool.map(lambda s: _connect_ssh(s, options, sink), remote)):
            s.ssh = session


def _start_daemons(sides: list[Side], options: CopyOptions) -> None:
    """Both rcpds, in parallel: local children or over SSH."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        for f in [pool.submit(_start, s, options) for s in sides]:
            f.result()


def _exchange_hellos(sides: list[Side], key: bytes) -> None:
    """Each rcpd's hello line (its fingerprint, which the destination or the
    source will pin), then the session key on its stdin."""
    for s in sides:
        assert s.daemon is not None
        hello = s.daemon.hello(SETUP_TIMEOUT)
        s.fingerprint = hello.fingerprint
        s.daemon.send_key(key)


def _open_links(sides: list[Side], cert: _core.Certificate, key: bytes) -> None:
    """Each rcpd's control link over its stdin/stdout, hellos exchanged
    (sealed with the session key), in parallel."""
    def open_one(s: Side) -> _core.Link:
        assert s.daemon is not None
        return s.daemon.link(cert, key, s.fingerprint, SETUP_TIMEOUT)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for s, link in zip(sides, pool.map(open_one, sides)):
            s.link = link


def _wire_peers(src: Side, dst: Side, options: CopyOptions) -> None:
    """The source listens pinning the destination; the destination connects to it."""
    assert src.link is not None and dst.link is not None
    src.link.send(Msg.EXPECT_PEER, [dst.fingerprint, options.transport])
    port, advertised = _listening(_expect(src, Msg.LISTENING, SETUP_TIMEOUT))
    mark("source listening")
    dst.link.send(Msg.CONNECT_PEER, [_source_addresses(src, dst, advertised, options.source_addresses),
                                     port, src.fingerprint, options.transport,
                                     max(1, round(options.fallback_timeout * 1000))])
    try:
        connected = _expect(dst, Msg.PEER_CONNECTED, SETUP_TIMEOUT + 10)
    except ConnectionFailure as exc:
        if "pin" in str(exc) or (dst.daemon is not None and not dst.daemon.alive()):
            raise
        # Most often no direct path between the hosts: name the way out, never take it silently.
        raise RcpdError(f"{exc} (if the destination cannot reach the source directly, --relay sends "
                        "the data through this machine)") from exc
    dst.transport = _peer_transport(connected)


def _warn(sink: ProgressSink, text: str) -> None:
    """A warning of the master's, where the user sees the copy's logs, and to logging."""
    if _visible(sink):
        sink.log("master", "warn", text)
    log.warning("%s", text, extra={SHOWN: _visible(sink)})


def _start_relay(src: Side, dst: Side, sink: ProgressSink, options: CopyOptions) -> _core.TunnelSplice:
    """--relay (scp -3): the source and the destination each open a tunnel
    stream on their control link, and the master copies each to the other
    (C++ threads, no parsing, bounded by flow control); the source listens on
    nothing, the destination connects to nothing. Never chosen silently.
    The caller ends the splice (_end_relay) after hanging up, whatever happens."""
    assert src.link is not None and dst.link is not None
    _warn(sink, RELAY_WARNING)
    direct_only = [flag for flag, given in (("--source-address", bool(options.source_addresses)),
                                            ("--master-address", bool(options.master_address)),
                                            ("--port-range", bool(options.port_range))) if given]
    if direct_only:
        _warn(sink, f"--relay: {', '.join(direct_only)} ignored (the hosts do not connect to each other)")
    src.link.send(Msg.EXPECT_PEER, [dst.fingerprint, "relay"])
    dst.link.send(Msg.CONNECT_PEER, [[], 0, src.fingerprint, "relay"])
    return _core.splice_tunnel(src.link, dst.link, accept_timeout=SETUP_TIMEOUT,
                               names=("source", "destination"))


def _await_relayed_peer(src: Side, dst: Side, splice: _core.TunnelSplice) -> None:
    """The destination's PEER_CONNECTED. Either rcpd or the splice may fail
    first, and a failure on one side soon ends the other's tunnel too: watch
    all three, and name the cause, not its echo on the other side."""
    deadline = time.monotonic() + SETUP_TIMEOUT + 10
    failures: dict[str, str] = {}  # by role, or "relay" for the splice
    until: float | None = None  # once something failed: until when to look for its cause
    while True:
        for side, wait in ((src, 0.01), (dst, POLL)):
            if side.role not in failures:
                report = _setup_report(side, wait)
                if report == "":
                    return
                if report:
                    failures[side.role] = report
        if splice.error and "relay" not in failures:
            failures["relay"] = f"relay through the master: {splice.error}"
        now = time.monotonic()
        if failures:
            until = until or now + 1.0
            causes = [failures[k] for k in ("source", "destination", "relay")
                      if k in failures and not any(e in failures[k] for e in ECHOES)]
            if causes or now >= until:
                raise ConnectionFailure((causes or list(failures.values()))[0])
        elif now >= deadline:
            raise RcpdError(f"destination rcpd did not answer within {SETUP_TIMEOUT + 10:.0f} s")


def _setup_report(side: Side, timeout: float) -> str | None:
    """One look at a side while the relay is set up: "" when the destination
    reported PEER_CONNECTED, None when there is nothing new, else what failed.
    Before its job a source sends nothing on its control link but an error."""
    assert side.link is not None
    if side.daemon is not None and not side.daemon.alive():
        return f"{side.role} rcpd ({side.daemon.where}) exited: {side.daemon.diagnostics()}"
    try:
        kind, fields = side.link.recv(timeout=timeout)
    except _core.TimeoutError:
        return None
    except _core.RcpError as exc:
        return f"{side.role} rcpd: {exc}"
    if kind == Msg.PEER_CONNECTED and side.role == "destination":
        return ""
    if kind == Msg.ERROR:
        return f"{side.role} rcpd: {printable(str(fields[0]) if fields else 'error')}"
    return f"{side.role} rcpd sent message {kind} while the relay was set up"


def _end_relay(splice: _core.TunnelSplice) -> None:
    """After the hang-up: the pumps end with the links; stop them regardless."""
    splice.stop()
    if not splice.wait(timeout=5.0):
        log.warning("the relay's threads did not end within 5 s")
    elif splice.error:
        log.debug("relay ended: %s", splice.error)


def _hand_out_job(src: Side, dst: Side, sources: list[Endpoint], destination: Endpoint,
                  options: CopyOptions) -> None:
    """send to the source, receive (with each operand's root rule) to the destination.
    A remote side's rcpd resolves its paths as scp means them (home, ~user,
    wildcards: rcp.operands); a local side's are the local shell's, literal."""
    assert src.link is not None and dst.link is not None
    # Fields appended in protocol 5 (docs/protocol.md): filters, the fidelity options, bandwidth_limit, partial,
    # inodes (a -H dry run's plan names each hard-linked file's inode: a sharded copy groups names by it).
    src.link.send(Msg.SEND, [[s.path for s in sources], not src.endpoint.is_local, bool(options.checksum),
                             list(options.filters), bool(options.sparse), bool(options.hard_links),
                             options.owner is not False or options.group is not False,
                             bool(options.xattrs), bool(options.acls), bool(options.keep_capabilities),
                             bool(options.dereference), int(options.bandwidth_limit), bool(options.partial),
                             bool(options.hard_links and options.dry_run)])
    rules = [part for s in sources for part in root_rule(s.path, local=s.is_local)]
    # Which operands may stand for several roots: one without a wildcard stands for one.
    wildcards = bytes(has_wildcard(s.path, local=s.is_local) for s in sources)
    dst.link.send(Msg.RECEIVE, [destination.path, len(sources), destination.path.endswith("/"),
                                bool(options.overwrite), rules, bool(options.fsync), not destination.is_local,
                                wildcards, bool(options.update), bool(options.ignore_existing),
                                bool(options.checksum), list(options.filters),
                                bool(options.delete or options.delete_excluded), bool(options.delete_excluded),
                                bool(options.dry_run), _tristate(options.owner), _tristate(options.group),
                                bool(options.numeric_ids), bool(options.xattrs), bool(options.acls),
                                bool(options.keep_capabilities), bool(options.partial), bool(options.hard_links)])


def _tristate(value: bool | None) -> int:
    """receive's owner/group: 0 off, 1 on, 2 when the destination rcpd runs as root."""
    return 2 if value is None else int(value)


def _wait_results(sides: list[Side], cancel: threading.Event | None = None) -> None:
    """Until both sides reported, or one failed and the other did not follow
    in time, or `cancel` is set (Cancelled)."""
    changed = threading.Event()
    waiters = [threading.Thread(target=_wait_result, args=(s, changed), daemon=True) for s in sides]
    for t in waiters:
        t.start()
    while not all(s.done.is_set() for s in sides):
        _check(cancel)
        # One side failing usually stalls the other: stop waiting for it.
        if any(s.done.is_set() and s.error for s in sides):
            for s in sides:
                if not s.done.wait(timeout=3.0):
                    s.error = s.error or f"{s.role} rcpd stopped after the other side failed"
                    s.done.set()
            break
        changed.wait(timeout=POLL)
        changed.clear()


def _close_links(sides: list[Side]) -> None:
    """Hangs up each control link (again is a no-op): its rcpd then exits on its own."""
    for s in sides:
        if s.link is not None:
            s.link.close("copy over")


def _hang_up(sides: list[Side]) -> None:
    """Links first (the rcpds then exit on their own), then the daemons."""
    _close_links(sides)
    for s in sides:
        if s.daemon is not None:
            s.daemon.stop()
            mark(f"{s.role} rcpd stopped")


def _build_result(src: Side, dst: Side, duration: float, *, relayed: bool = False,
                  cancelled: bool = False) -> CopyResult:
    """CopyResult is frozen: its fields are gathered here, then made once."""
    f: dict[str, Any] = {"duration": duration, "transport": "relay" if relayed else dst.transport,
                         "cancelled": cancelled}
    errors: list[tuple[str, str]] = []
    failed = 0
    if dst.result is not None:
        (files, nbytes, dirs, links, kept, failed, errs, unchanged, ignored, kept_paths, deleted, omitted, sparse,
         hard, resumed) = dst.result
        f.update(files_copied=files, bytes_copied=nbytes, dirs_created=dirs, symlinks_copied=links, kept=kept,
                 unchanged=unchanged, ignored=ignored, kept_paths=kept_paths, deleted=deleted,
                 plan=tuple(dst.plan), plan_omitted=omitted + dst.plan_dropped, sparse_bytes=sparse, hard_links=hard,
                 resumed_bytes=resumed)
        errors = [(p, m) for p, m in errs]
    elif dst.last_progress is not None:  # cut short: what the destination had confirmed by then
        f.update(files_copied=dst.last_progress.files_done, bytes_copied=dst.last_progress.bytes_done)
    if cancelled:
        src.error = dst.error = None  # the hang-up's echoes, not failures
    failures = [(side.role, side.error) for side in (src, dst) if side.error]
    if len(failures) == 2:
        # One side failing closes the link (or ends its relay), and the other reports that: show the cause.
        echoes = [f for f in failures if any(e in f[1] for e in ECHOES)]
        if len(echoes) == 1:
            failures.remove(echoes[0])
    failed += len(failures)
    errors.extend((role, error) for role, error in failures if error)
    if src.result is not None and dst.result is not None:
        # Source-side errors the destination never heard of (e.g. unreadable directories).
        known = {m for _, m in errors}
        for p, m in src.result[6]:
            if not any(m in k for k in known):
                failed += 1
                errors.append((p, m))
    return CopyResult(failed=failed, errors=errors, protocol_errors=src.protocol_errors + dst.protocol_errors, **f)
