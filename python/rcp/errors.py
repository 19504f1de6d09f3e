"""Exceptions of the rcp master, each tied to a CLI exit code.

Catch them by what failed or by what it means:

    RcpError
    ├── UsageError                 bad operands or option values (exit 2), before connecting
    └── ConnectionFailure          could not connect or keep going (exit 3)
        ├── SshError               SSH: unreachable host, bad ssh config, ...
        │   ├── HostKeyError       unknown or changed host key
        │   └── SshAuthError       authentication failed
        └── RcpdError              an rcpd did not start, answer or keep running
            └── DeployError        rcpd could not be deployed to a host

ConnectionFailure, SshError, HostKeyError and SshAuthError come from the C++
core, which raises them; the master raises the others.
"""

from __future__ import annotations

from rcp._core import ConnectionFailure, HostKeyError, RcpError, SshAuthError, SshError

EXIT_OK = 0
EXIT_PARTIAL = 1  # some entries failed
EXIT_USAGE = 2
EXIT_CONNECTION = 3  # SSH, authentication, host key, QUIC setup, deploying rcpd

__all__ = ["EXIT_CONNECTION", "EXIT_OK", "EXIT_PARTIAL", "EXIT_USAGE", "ConnectionFailure", "DeployError",
           "HostKeyError", "RcpError", "RcpdError", "SshAuthError", "SshError", "UsageError"]


class UsageError(RcpError):
    """Bad operands or options (exit 2)."""


class RcpdError(ConnectionFailure):
    """An rcpd (the source's or the destination's) did not start, did not
    answer, or exited or failed before the copy could run (exit 3)."""


class DeployError(RcpdError):
    """rcpd could not be deployed to a host (exit 3, as a ConnectionFailure):
    its architecture or OS differs from the binary's, a directory on the way
    to the cache could be changed by other users, the upload or the remote
    SHA-256 check failed, or the binary cannot run there (a noexec mount)."""
