"""rcp: copy files between machines over pinned QUIC, bootstrapped through SSH."""

from __future__ import annotations

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
    RcpError,
    TimeoutError,  # subclass of the builtin TimeoutError
    TlsError,
    connect,
)

__version__: str = _core.__version__

__all__ = [
    "AuthenticationError",
    "Certificate",
    "ConnectionClosedError",
    "Link",
    "PinMismatchError",
    "ProtocolError",
    "QuicOptions",
    "QuicServer",
    "RcpError",
    "TimeoutError",
    "TlsError",
    "connect",
    "__version__",
]
