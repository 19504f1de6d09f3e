"""The master's SSH connections: options, host-key warnings and the
StrictHostKeyChecking=ask prompt.

The host-key policy itself lives in the C++ core (cpp/ssh_session.cpp): a
changed key is always refused; an unknown key is refused (`yes`, rcp's
default), recorded with a warning (`accept-new`, `no`, --accept-new-host-keys)
or accepted only if the user says so on the terminal (`ask`).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import IO

from rcp import _core
from rcp.errors import ConnectionFailure
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


def terminal_confirm() -> Callable[[str], bool] | None:
    """The prompt for StrictHostKeyChecking=ask, or None when stdin is not a
    terminal (the C++ side then refuses the key, saying how to fix it)."""
    try:
        return ask_on_terminal if sys.stdin is not None and sys.stdin.isatty() else None
    except (AttributeError, ValueError):
        return None


def connect(ep: Endpoint, options: CopyOptions, warn: Callable[[str], None] | None = None) -> _core.SshSession:
    """An authenticated `_core.SshSession` to `ep`. Raises ConnectionFailure
    (host unreachable or refused by libssh, bad ssh config, host key,
    authentication). `warn` shows what the user must see (a new host key
    recorded); without it, the `rcp.ssh` logger does."""
    def _warn(text: str) -> None:
        if warn is not None:
            warn(text)
        else:
            log.warning("%s", text)

    assert ep.host is not None, "only remote endpoints connect"
    try:
        return _core.SshSession.connect(
            host=ep.host, port=ep.port, user=ep.user, config_file=options.ssh_config or None,
            identity_files=list(options.identity_files), accept_new_host_key=options.accept_new_host_keys,
            connect_timeout=options.connect_timeout, warn=_warn, confirm=terminal_confirm())
    except _core.RcpError as exc:
        raise ConnectionFailure(str(exc)) from exc
    except ValueError as exc:  # an ssh config rcp or libssh cannot use (a bad StrictHostKeyChecking, say)
        raise ConnectionFailure(f"{host_label(ep)}: {exc}") from exc
