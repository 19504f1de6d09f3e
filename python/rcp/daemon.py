"""Starting rcpd: as a local process, or through SSH on a remote host.

Both kinds expose the same small interface to the orchestration: read the
hello line, hand over the session key on stdin, open the control link over
the rcpd's stdin/stdout (docs/protocol.md, "Link over a byte stream"), tell
whether the daemon is still alive, stop it.
"""

from __future__ import annotations

import functools
import logging
import os
import select
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rcp import _core
from rcp.errors import RcpdError

HELLO_TIMEOUT = 30.0
log = logging.getLogger(__name__)


def rcpd_path() -> Path:
    """The rcpd installed with this package (override with RCP_RCPD)."""
    override = os.environ.get("RCP_RCPD")
    if override:
        return Path(override)
    return _installed_rcpd()


@functools.cache
def _installed_rcpd() -> Path:
    # The wheel installs rcpd as a script (a venv's bin/, ~/.local/bin, ...) so that it is on PATH
    # as well; the installed files list (RECORD) says where, whatever the install scheme.
    import importlib.metadata  # here: ~50 ms that a copy given --rcpd-path never needs

    try:
        files = importlib.metadata.distribution("rcp").files or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    for file in files:
        if file.name == "rcpd":
            return Path(str(file.locate())).resolve()
    return Path(sys.prefix) / "bin" / "rcpd"  # not installed: named in the error that follows


@dataclass(frozen=True)
class Hello:
    protocol: int
    fingerprint: str
    version: str


MAX_BANNER_LINES = 100
EXIT_NOT_FOUND = 127  # the shell's status for a command it cannot find


def joined(*parts: str) -> str:
    """The non-empty parts, "; "-separated: a missing exit status or stderr
    leaves no stray separator (once "...; , stderr: ...")."""
    return "; ".join(p for p in parts if p)


def parse_hello(line: str, where: str) -> Hello:
    parts = line.split()
    if len(parts) != 4 or parts[0] != "RCPD" or not parts[1].isdigit():
        raise RcpdError(f"{where}: rcpd did not answer with a hello line (got {line[:120]!r}); "
                        f"is --rcpd-path right?")
    hello = Hello(int(parts[1]), parts[2], parts[3])
    if hello.protocol != _core.PROTOCOL_VERSION:
        raise RcpdError(f"{where}: rcpd {hello.version} speaks protocol {hello.protocol}, this rcp "
                        f"{_core.__version__} speaks {_core.PROTOCOL_VERSION}; install the same rcp version "
                        f"there or point --rcpd-path at a matching rcpd")
    return hello


def daemon_args(binary: str, role: str, port_range: str, congestion_control: str = "", verbose: int = 0) -> list[str]:
    """rcpd's command line: public facts only. Its control link is its stdin/stdout."""
    args = [binary, "--role", role]
    if verbose >= 1:  # -v info, -vv debug, -vvv trace (otherwise RCP_LOG's, else warn)
        args += ["--log-level", ("info", "debug", "trace")[min(verbose, 3) - 1]]
    if port_range:
        args += ["--port-range", port_range]
    if congestion_control:
        args += ["--cc", congestion_control]
    return args


class Daemon(Protocol):
    role: str
    where: str

    def hello(self, timeout: float) -> Hello: ...
    def send_key(self, key: bytes) -> None: ...
    def link(self, cert: _core.Certificate, key: bytes, fingerprint: str, timeout: float) -> _core.Link: ...
    def alive(self) -> bool: ...
    def diagnostics(self) -> str: ...
    def stop(self, timeout: float = 5.0) -> None: ...


class LocalDaemon:
    """rcpd as a child process of the master; its pipes carry the control link."""

    def __init__(self, role: str, args: list[str]) -> None:
        self.role = role
        self.where = "local"
        try:
            # Unbuffered: the link's bytes follow the hello line in the same pipe, and a
            # buffered reader would take them.
            self._proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, start_new_session=True, bufsize=0)
        except OSError as exc:
            raise RcpdError(f"cannot start {args[0]}: {exc.strerror}") from exc
        self._stderr: list[str] = []
        self._drainer = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drainer.start()

    def _drain_stderr(self) -> None:
        assert self._proc.stderr is not None
        for raw in self._proc.stderr:
            self._stderr.append(raw.decode("utf-8", "replace").rstrip("\n"))
            del self._stderr[:-50]

    def _read_line(self, timeout: float) -> str | None:
        """The next stdout line, read a byte at a time; None at the end of output."""
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        line = bytearray()
        while len(line) < 4096:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise RcpdError(f"local rcpd ({self.role}) sent no hello within {timeout:.0f} s")
            byte = os.read(fd, 1)
            if not byte:
                return None
            if byte == b"\n":
                break
            line += byte
        return line.decode("utf-8", "replace")

    def hello(self, timeout: float) -> Hello:
        line = self._read_line(timeout)
        if line is None:
            self._proc.wait(timeout=5)
            raise RcpdError(f"local rcpd ({self.role}) exited: {self.diagnostics()}")
        return parse_hello(line, "local rcpd")

    def send_key(self, key: bytes) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.write(key.hex().encode() + b"\n")

    def link(self, cert: _core.Certificate, key: bytes, fingerprint: str, timeout: float) -> _core.Link:
        assert self._proc.stdout is not None and self._proc.stdin is not None
        try:
            return _core.link_over_fds(self._proc.stdout.fileno(), self._proc.stdin.fileno(), cert, key, fingerprint,
                                       timeout=timeout)
        except _core.RcpError as exc:
            raise RcpdError(joined(f"local rcpd ({self.role}): no control link ({exc})", self.diagnostics())) from exc

    def alive(self) -> bool:
        return self._proc.poll() is None

    def diagnostics(self) -> str:
        status = self._proc.poll()
        if status is not None:  # its last words may still be in the pipe: read them first
            self._drainer.join(timeout=2.0)
        tail = "; ".join(self._stderr[-3:])
        return joined(f"exit status {status}" if status is not None else "", f"stderr: {tail}" if tail else "")

    def stop(self, timeout: float = 5.0) -> None:
        if self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()  # the link (closed first) holds its own copy of the pipe
            except OSError:
                pass
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)


class RemoteDaemon:
    """rcpd started through an SSH exec channel; its stdin is the channel's."""

    def __init__(self, role: str, ssh: "_core.SshSession", where: str, args: list[str]) -> None:
        self.role = role
        self.where = where
        self._ssh = ssh
        command = " ".join(shlex.quote(a) for a in args)
        log.info("%s: running %s", where, command)
        self._channel = ssh.exec(command)
        self._stopped = False

    def hello(self, timeout: float) -> Hello:
        deadline = time.monotonic() + timeout
        first: str | None = None
        # A login shell may print a banner first (an "unclean" shell, as rsync
        # calls it): skip a bounded number of lines that can't be the hello.
        for _ in range(MAX_BANNER_LINES):
            try:
                line = self._channel.read_line(timeout=max(0.1, deadline - time.monotonic()))
            except _core.RcpError as exc:
                seen = f"; it printed {first[:120]!r}" if first is not None else ""
                # The exit status may come just after the end of the output.
                status = self._channel.exit_status(timeout=1.0)
                missing = ("; no such rcpd there: check --rcpd-path, or let rcp deploy its own (without "
                           "--no-deploy)" if status == EXIT_NOT_FOUND else "")
                raise RcpdError(joined(f"{self.where}: rcpd did not start ({exc}){seen}", self.diagnostics())
                                + missing) from exc
            # ...nor a newline after its last output (a terminal title, say).
            at = line.rfind("RCPD ")
            if at >= 0:
                return parse_hello(line[at:], self.where)
            first = line if first is None else first
        raise RcpdError(f"{self.where}: no rcpd hello in the first {MAX_BANNER_LINES} lines (the first "
                        f"was {first!r:.120}); is --rcpd-path right, and does the login shell print "
                        f"nothing on non-interactive logins?")

    def send_key(self, key: bytes) -> None:
        self._channel.write(key.hex().encode() + b"\n")

    def link(self, cert: _core.Certificate, key: bytes, fingerprint: str, timeout: float) -> _core.Link:
        try:
            return _core.link_over_ssh(self._channel, cert, key, fingerprint, timeout=timeout)
        except _core.RcpError as exc:
            raise RcpdError(joined(f"{self.where}: rcpd gave no control link ({exc})", self.diagnostics())) from exc

    def alive(self) -> bool:
        return self._channel.exit_status() is None and not self._channel.eof()

    def diagnostics(self) -> str:
        try:
            err = self._channel.read_stderr()
        except _core.RcpError:
            err = ""
        status = self._channel.exit_status()
        return joined(f"exit status {status}" if status is not None else "",
                      f"stderr: {err.strip()}" if err.strip() else "")

    def stop(self, timeout: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        try:
            self._channel.close_stdin()
            # Blocks until the status arrives (no polling: it comes a round trip after the stdin's EOF).
            self._channel.exit_status(timeout=timeout)
            self._channel.close()
        except _core.RcpError:
            pass
