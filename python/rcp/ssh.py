"""The master's SSH connections: options (-J, -o), host-key warnings, the
StrictHostKeyChecking=ask prompt and the authentication prompts.

The host-key policy itself lives in the C++ core (cpp/ssh_session.cpp): a
changed key is always refused; an unknown key is refused (`yes`, rcp's
default), recorded with a warning (`accept-new`, `no`, --accept-new-host-keys)
or accepted only if the user says so on the terminal (`ask`).
"""

from __future__ import annotations

import logging
import os
import re
import sys
import termios
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO

from rcp import _core
from rcp.errors import ConnectionFailure, UsageError
from rcp.model import CopyOptions, Endpoint, host_label

log = logging.getLogger("rcp.ssh")

MAX_ANSWERS = 5  # a terminal that keeps answering nonsense is a "no"

# Both sides connect in parallel: one question on the terminal at a time.
_prompt_lock = threading.Lock()


def ask_on_terminal(question: str, stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> bool:
    """Asks `question` on stderr and reads yes/no from stdin, as ssh does for
    StrictHostKeyChecking=ask. End of input or no clear answer is a no."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    with _prompt_lock:
        stderr.write(question)
        stderr.flush()
        for _ in range(MAX_ANSWERS):
            line = stdin.readline()
            if not line:
                return False
            answer = line.strip().lower()
            if answer in ("yes", "y"):
                return True
            if answer in ("no", "n"):
                return False
            stderr.write("Please type 'yes' or 'no': ")
            stderr.flush()
        return False


def ask_secret_on_terminal(question: str, echo: bool, stdin: IO[str] | None = None,
                           stderr: IO[str] | None = None) -> str | None:
    """Asks `question` on stderr and reads one line from the terminal on
    stdin, not shown unless `echo` (a passphrase, a password). End of input is
    None: the user declined."""
    stdin = stdin or sys.stdin
    stderr = stderr or sys.stderr
    with _prompt_lock:
        fd = stdin.fileno()
        saved = termios.tcgetattr(fd)
        if not echo:  # before the question shows, so a quick answer is not echoed either
            quiet = termios.tcgetattr(fd)
            quiet[3] &= ~termios.ECHO
            termios.tcsetattr(fd, termios.TCSANOW, quiet)
        try:
            stderr.write(question)
            stderr.flush()
            line = stdin.readline()
        finally:
            termios.tcsetattr(fd, termios.TCSANOW, saved)
            if not echo:
                stderr.write("\n")
                stderr.flush()
    return line.rstrip("\r\n") if line else None


def terminal_prompt() -> Callable[[str, bool], str | None] | None:
    """The prompt for passphrases, passwords and keyboard-interactive
    questions, or None when stdin is not a terminal (they are then skipped,
    and the error says so)."""
    try:
        return ask_secret_on_terminal if sys.stdin is not None and sys.stdin.isatty() else None
    except (AttributeError, ValueError):
        return None


def terminal_confirm() -> Callable[[str], bool] | None:
    """The prompt for StrictHostKeyChecking=ask, or None when stdin is not a
    terminal (the C++ side then refuses the key, saying how to fix it)."""
    try:
        return ask_on_terminal if sys.stdin is not None and sys.stdin.isatty() else None
    except (AttributeError, ValueError):
        return None


# The ssh_config options that -o (and the API's ssh_options) may set: those
# rcp applies to a connection. Others are refused by name before connecting,
# rather than silently ignored.
SSH_OPTIONS = ("BatchMode", "ConnectTimeout", "IdentityFile", "KbdInteractiveAuthentication", "PasswordAuthentication",
               "Port", "ProxyCommand", "ProxyJump", "StrictHostKeyChecking", "User", "UserKnownHostsFile")
_FLAGS = {"yes": True, "true": True, "no": False, "false": False}
_HOST_KEY_POLICIES = ("yes", "no", "accept-new", "ask", "true", "false", "off")


@dataclass(frozen=True)
class SshOverrides:
    """What -o options set, already checked; None/empty: not set."""

    port: int | None = None
    user: str | None = None
    identity_files: tuple[str, ...] = ()
    known_hosts_file: str | None = None
    strict_host_key_checking: str | None = None
    connect_timeout: float | None = None
    proxy_jump: str | None = None
    proxy_command: str | None = None
    password_authentication: bool | None = None
    kbd_interactive_authentication: bool | None = None
    batch_mode: bool | None = None


def parse_option_arg(text: str) -> tuple[str, str]:
    """One -o argument, "Key=Value" or "Key Value" as ssh takes it."""
    match = re.fullmatch(r"\s*([A-Za-z]+)\s*(?:=|\s)\s*(.*?)\s*", text)
    if match is None or not match.group(2):
        raise UsageError(f"-o {text!r}: expected Key=Value")
    return match.group(1), match.group(2)


def parse_ssh_options(options: Mapping[str, str]) -> SshOverrides:
    """Checks `options` (ssh_config keywords, any case) and turns them into
    connect parameters. Raises UsageError naming an option rcp does not apply
    or a value it cannot take."""
    canonical = {name.lower(): name for name in SSH_OPTIONS}
    values: dict[str, str] = {}
    for key, value in options.items():
        name = canonical.get(str(key).lower())
        if name is None:
            raise UsageError(f"ssh option {key!r} is not supported by rcp (supported: {', '.join(SSH_OPTIONS)})")
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"ssh option {name} needs a value")
        values[name] = value.strip()
    port = timeout = None
    if "Port" in values:
        try:
            port = int(values["Port"])
        except ValueError:
            port = 0
        if not 1 <= port <= 65535:
            raise UsageError(f"ssh option Port must be 1..65535, not {values['Port']!r}")
    if "ConnectTimeout" in values:
        try:
            timeout = float(values["ConnectTimeout"])
        except ValueError:
            timeout = 0.0
        if not timeout > 0:
            raise UsageError("ssh option ConnectTimeout must be a number of seconds > 0, "
                             f"not {values['ConnectTimeout']!r}")
    policy = values.get("StrictHostKeyChecking")
    if policy is not None and policy.lower() not in _HOST_KEY_POLICIES:
        raise UsageError(f"ssh option StrictHostKeyChecking must be yes, accept-new, no or ask, not {policy!r}")
    flags: dict[str, bool | None] = {}
    for name in ("PasswordAuthentication", "KbdInteractiveAuthentication", "BatchMode"):
        flags[name] = None
        if name in values:
            if values[name].lower() not in _FLAGS:
                raise UsageError(f"ssh option {name} must be yes or no, not {values[name]!r}")
            flags[name] = _FLAGS[values[name].lower()]
    identity = values.get("IdentityFile")
    return SshOverrides(port=port, user=values.get("User"),
                        identity_files=(os.path.expanduser(identity),) if identity else (),
                        known_hosts_file=os.path.expanduser(values["UserKnownHostsFile"])
                        if "UserKnownHostsFile" in values else None,
                        strict_host_key_checking=policy.lower() if policy else None, connect_timeout=timeout,
                        proxy_jump=values.get("ProxyJump"), proxy_command=values.get("ProxyCommand"),
                        password_authentication=flags["PasswordAuthentication"],
                        kbd_interactive_authentication=flags["KbdInteractiveAuthentication"],
                        batch_mode=flags["BatchMode"])


def connect(ep: Endpoint, options: CopyOptions, warn: Callable[[str], None] | None = None) -> _core.SshSession:
    """An authenticated `_core.SshSession` to `ep`. Raises SshError (a
    ConnectionFailure; HostKeyError, SshAuthError by kind) or
    ConnectionFailure (a bad ssh config). `warn` shows what the user must see
    (a new host key recorded); without it, the `rcp.ssh` logger does. What
    the connection does (host, port, user, keys, known_hosts) is logged at
    info level on `rcp.ssh` (rcp -v)."""
    def _warn(text: str) -> None:
        if warn is not None:
            warn(text)
        else:
            log.warning("%s", text)

    assert ep.host is not None, "only remote endpoints connect"
    o = parse_ssh_options(options.ssh_options)
    # What the operand names wins over -o, and -J over -o ProxyJump (as in ssh).
    proxy_jump = options.proxy_jump or o.proxy_jump
    identity_files = list(options.identity_files) + list(o.identity_files)
    label = host_label(ep)
    log.info("%s: identity files %s, then ssh-agent's and the default keys; known_hosts: %s", label,
             ", ".join(identity_files) or "(none given)", o.known_hosts_file or "the ssh config's, else "
             "~/.ssh/known_hosts")

    def debug(text: str) -> None:
        log.info("%s: %s", label, text)

    try:
        session = _core.SshSession.connect(
            host=ep.host, port=ep.port or options.port or o.port, user=ep.user or o.user,
            config_file=options.ssh_config or None, identity_files=identity_files,
            known_hosts_file=o.known_hosts_file, accept_new_host_key=options.accept_new_host_keys,
            connect_timeout=o.connect_timeout or options.connect_timeout,
            strict_host_key_checking=o.strict_host_key_checking, warn=_warn, confirm=terminal_confirm(),
            prompt=options.prompt or terminal_prompt(), password_authentication=o.password_authentication,
            kbd_interactive_authentication=o.kbd_interactive_authentication, batch_mode=o.batch_mode,
            proxy_jump=proxy_jump, proxy_command=None if proxy_jump else o.proxy_command, debug=debug,
            address_family=options.address_family)
    except _core.SshError:
        raise  # HostKeyError, SshAuthError...: already ConnectionFailures, caught by kind
    except _core.RcpError as exc:
        raise ConnectionFailure(str(exc)) from exc
    except ValueError as exc:  # an ssh config rcp or libssh cannot use (a bad StrictHostKeyChecking, say)
        raise ConnectionFailure(f"{label}: {exc}") from exc
    log.info("%s: connected as %s to %s port %d", label, session.user, session.host, session.port)
    return session
