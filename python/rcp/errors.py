"""Exceptions of the rcp master, each tied to a CLI exit code."""

from __future__ import annotations

from rcp._core import RcpError

EXIT_OK = 0
EXIT_PARTIAL = 1  # some entries failed
EXIT_USAGE = 2
EXIT_CONNECTION = 3  # SSH, authentication, host key, QUIC setup, deploying rcpd


class UsageError(RcpError):
    """Bad operands or options (exit 2)."""


class ConnectionFailure(RcpError):
    """Could not reach or authenticate a host, or start/keep its rcpd (exit 3)."""


class DeployError(ConnectionFailure):
    """rcpd could not be deployed to a host (exit 3, as a ConnectionFailure):
    its architecture or OS differs from the binary's, a directory on the way
    to the cache could be changed by other users, the upload or the remote
    SHA-256 check failed, or the binary cannot run there (a noexec mount)."""
