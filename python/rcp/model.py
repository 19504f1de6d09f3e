"""Plain data shared by the API, the orchestration, the CLI and the progress view."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


# The data link's kinds, as --transport and CopyOptions.transport name them.
TRANSPORTS = ("auto", "quic", "tcp")
MAX_FALLBACK_TIMEOUT = 600.0  # seconds: the wire's bound (ConnectPeerMsg)


@dataclass(frozen=True)
class Endpoint:
    """One side of a copy: a local path, or [user@]host[:port]:path."""

    path: str
    host: str | None = None  # None = local
    user: str | None = None
    port: int | None = None

    @property
    def is_local(self) -> bool:
        return self.host is None


def host_label(ep: Endpoint) -> str:
    """[user@]host[:port] for messages; "local" for the local host."""
    if ep.is_local:
        return "local"
    return f"{ep.user + '@' if ep.user else ''}{ep.host}{':' + str(ep.port) if ep.port else ''}"


@dataclass
class CopyOptions:
    # A destination file that exists: the same size and mtime (at the coarser
    # precision of the two filesystems) is unchanged and left alone; one that
    # differs is kept and reported (CopyResult.kept) unless one of these says
    # otherwise (at most one of the three):
    overwrite: bool = False  # replace it
    update: bool = False  # replace it only when the source's is newer; a newer one stays, quietly
    ignore_existing: bool = False  # never touch an existing file
    # "The same" means the same content (xxh3-128 on both sides), not size and mtime.
    checksum: bool = False
    # fsync each file before its rename and each directory after its entries:
    # the copy survives a power cut once rcp returns, at the cost of waiting
    # for the disk (much slower for many small files).
    fsync: bool = False
    ssh_config: str | None = None
    identity_files: list[str] = field(default_factory=list)
    accept_new_host_keys: bool = False
    # ProxyJump for every remote host ("[user@]host[:port],..." or "none"), as
    # ssh -J; None: each host's ssh config says.
    proxy_jump: str | None = None
    # ssh_config options for every remote host, as ssh -o Key=Value (keys are
    # case-insensitive; rcp.ssh.SSH_OPTIONS lists those rcp applies).
    ssh_options: dict[str, str] = field(default_factory=dict)
    # Answers what SSH authentication asks (a key's passphrase, a password, a
    # keyboard-interactive question): prompt(question, echo) -> the answer, or
    # None to decline; `echo` False means a secret. None: ask on the terminal
    # when stdin is one, else nobody is asked (for notebooks: pass one).
    prompt: Callable[[str, bool], str | None] | None = None
    # Remote rcpd binary, used as given (never a reason to deploy); None = rcpd
    # on the login's PATH if it speaks this protocol, else this rcp's own,
    # deployed to the host (docs/security.md, "Deploying rcpd").
    rcpd_path: str | None = None
    deploy: bool = True  # False: never upload rcpd, run 'rcpd' from the login's PATH
    # Remote directory for deployed rcpds (absolute, or relative to the remote
    # home); None = ~/.cache/rcp. For a home mounted noexec.
    deploy_dir: str | None = None
    port_range: str = ""  # the source's listener ports (UDP, and TCP on the same number)
    # Where the destination reaches the source (hosts with several addresses),
    # tried in order; empty = the source's SSH address, then what it advertises.
    source_addresses: list[str] = field(default_factory=list)
    # Where remote rcpds reach the master; None = the local address of the
    # master's SSH connection to each host (behind NAT, say, set it).
    master_address: str | None = None
    # Of the data link: "bbr" keeps a long, lossy path full where loss-based
    # "cubic" and "reno" back off at every random loss. Over TCP, the kernel's
    # (TCP_CONGESTION) where it has it, else its default with a warning.
    congestion_control: str = "bbr"
    # The data link between source and destination: "quic", "tcp" (TLS 1.3
    # over several TCP connections) or "auto": QUIC, and TCP when the QUIC
    # handshake gets no answer within fallback_timeout seconds (UDP blocked).
    transport: str = "auto"
    fallback_timeout: float = 2.0
    # Data through the master (scp -3): the source and destination never talk
    # directly; every byte crosses this machine, decrypted here (a warning
    # says so). Only when asked: a last resort when no direct path exists.
    relay: bool = False
    connect_timeout: float = 15.0
    verbose: int = 0  # 2+: the rcpds log at debug (3: trace) level too


@dataclass
class Progress:
    """One update from one side, as the rcpds report it."""

    role: str  # "source" or "destination"
    bytes_done: int
    files_done: int
    bytes_total: int  # source's totals once its walk is done, else 0
    files_total: int
    elapsed: float  # seconds since the copy started (master clock)
    current: str = ""  # the file in flight, as that side names it ("" = none, or an older rcpd)


@dataclass(frozen=True)
class Sample:
    """The destination's verified totals at one moment of a copy (CopyResult.samples)."""

    elapsed: float  # seconds since the copy started
    bytes_done: int
    files_done: int


@dataclass
class CopyResult:
    files_copied: int = 0
    bytes_copied: int = 0
    dirs_created: int = 0
    symlinks_copied: int = 0
    kept: int = 0  # existed and differed, left alone (no --overwrite, --update or --ignore-existing)
    failed: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, message)
    duration: float = 0.0
    protocol_errors: int = 0  # malformed messages the rcpds sent (logged, then ignored)
    # How the data went: "quic" or "tcp" (direct), "relay" (through the
    # master); "" when no link was made.
    transport: str = ""
    unchanged: int = 0  # already there: same size and mtime (or content, with checksum)
    ignored: int = 0  # existed, left alone as update / ignore_existing asked
    kept_paths: list[str] = field(default_factory=list)  # the first kept (the destination reports 100)
    # The destination's progress over time, oldest first, for result.plot(): at most
    # rcp.samples.MAX_SAMPLES, evenly thinned on long copies.
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True exactly when the CLI exits 0: nothing failed and nothing that
        differs was left alone unasked."""
        return self.failed == 0 and not self.errors and self.kept == 0

    def plot(self, ax: Any = None) -> Any:
        """Throughput over time (bytes/s and files/s) from `samples`, with
        matplotlib (imported only here); draws on `ax` if given. Returns the Axes."""
        from rcp.samples import plot

        return plot(self.samples, ax)
