"""rcp: copy files between machines over pinned QUIC, bootstrapped through SSH."""

from __future__ import annotations

import logging

from rcp import _core
from rcp._core import (
    AuthenticationError,
    Certificate,
    ConnectionClosedError,
    Link,
    PinMismatchError,
    ProtocolError,
    QuicOptions,
    QuicServer,
    SshSession,
    TimeoutError,  # subclass of the builtin TimeoutError
    TlsError,
    connect,
    shell_quote,
)
from rcp.api import copy, copy_async, copy_sharded, start
from rcp.errors import (
    ConnectionFailure,
    DeployError,
    HostKeyError,
    RcpdError,
    RcpError,
    SshAuthError,
    SshError,
    UsageError,
)
from rcp.model import CopyOptions, CopyResult, Endpoint, PlanEntry, Progress, ShardedResult, ShardResult
from rcp.progress import NotebookProgress, NullProgress, ProgressSink, TerminalProgress, make_progress
from rcp.transfer import Transfer

__version__: str = _core.__version__

# A library's logging: records go to logging.getLogger("rcp") and its
# children (rcp.ssh, rcp.source, rcp.destination...), shown as the
# application configures logging; the CLI shows them itself.
logging.getLogger("rcp").addHandler(logging.NullHandler())

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
    "RcpdError",
    "QuicOptions",
    "QuicServer",
    "RcpError",
    "ShardResult",
    "ShardedResult",
    "SshAuthError",
    "SshError",
    "SshSession",
    "TerminalProgress",
    "TimeoutError",
    "TlsError",
    "Transfer",
    "UsageError",
    "connect",
    "copy",
    "copy_async",
    "copy_sharded",
    "make_progress",
    "shell_quote",
    "start",
    "__version__",
]
