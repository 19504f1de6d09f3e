"""Exceptions of the rcp master, each tied to a CLI exit code."""

from __future__ import annotations

from rcp._core import RcpError

EXIT_OK = 0
EXIT_PARTIAL = 1  # some entries failed
EXIT_USAGE = 2
EXIT_CONNECTION = 3  # SSH, authentication, host key, QUIC setup


class UsageError(RcpError):
    """Bad operands or options (exit 2)."""


class ConnectionFailure(RcpError):
    """Could not reach or authenticate a host, or start/keep its rcpd (exit 3)."""
