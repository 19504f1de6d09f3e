"""rcp: copy files between machines over pinned QUIC, bootstrapped through SSH."""

from __future__ import annotations

from rcp import _core
from rcp._core import (
    AuthenticationError,
    Certificate,
    ConnectionClosedError,
    HostKeyError,
    Link,
    PinMismatchError,
    ProtocolError,
    QuicOptions,
    QuicServer,
    RcpError,
    SshAuthError,
    SshError,
    SshSession,
    TimeoutError,  # subclass of the builtin TimeoutError
    TlsError,
    connect,
    shell_quote,
)
from rcp.api import copy
from rcp.errors import ConnectionFailure, DeployError, UsageError
from rcp.model import CopyOptions, CopyResult, Endpoint, PlanEntry, Progress
from rcp.progress import NotebookProgress, NullProgress, ProgressSink, TerminalProgress, make_progress

__version__: str = _core.__version__

__all__ = [
    "AuthenticationError",
    "Certificate",
    "ConnectionClosedError",
    "ConnectionFailure",
    "CopyOptions",
    "CopyResult",
    "DeployError",
    "Endpoint",
    "HostKeyError",
    "Link",
    "NotebookProgress",
    "NullProgress",
    "PlanEntry",
    "PinMismatchError",
    "Progress",
    "ProgressSink",
    "ProtocolError",
    "QuicOptions",
    "QuicServer",
    "RcpError",
    "SshAuthError",
    "SshError",
    "SshSession",
    "TerminalProgress",
    "TimeoutError",
    "TlsError",
    "UsageError",
    "connect",
    "copy",
    "make_progress",
    "shell_quote",
    "__version__",
]
