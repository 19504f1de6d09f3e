"""Plain data shared by the API, the orchestration, the CLI and the progress view."""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


# The data link's kinds, as --transport and CopyOptions.transport name them.
TRANSPORTS = ("auto", "quic", "tcp")
MAX_FALLBACK_TIMEOUT = 600.0  # seconds: the wire's bound (ConnectPeerMsg)


@dataclass(frozen=True)
class Endpoint:
    """One side of a copy: a local path, or [user@]host:path."""

    path: str
    host: str | None = None  # None = local
    user: str | None = None
    port: int | None = None  # never from an operand (scp has no such syntax): CopyOptions.port

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
    """How to copy: every option of `rcp.copy` (each is also a keyword of
    `copy`, `start` and `copy_async`, which override the fields of an
    `options=` given with them). The comments on each field say what it does;
    the defaults are rcp's (and the CLI's)."""

    # A destination file that exists: the same size and mtime (at the coarser
    # precision of the two filesystems) is unchanged and left alone; one that
    # differs is kept and reported (CopyResult.kept) unless one of these says
    # otherwise (at most one of the three):
    overwrite: bool = False  # replace it
    update: bool = False  # replace it only when the source's is newer; a newer one stays, quietly
    ignore_existing: bool = False  # never touch an existing file
    # "The same" means the same content (xxh3-128 on both sides), not size and mtime.
    checksum: bool = False
    # What to leave out, with rsync's filter rules in order: "- PATTERN"
    # excludes, "+ PATTERN" includes, the first rule matching an entry decides
    # (README, "Filters"). The source's walk applies them.
    filters: list[str] = field(default_factory=list)
    # Remove destination entries under each copied directory that the source
    # does not have, once nothing failed (excluded ones stay unless
    # delete_excluded, which implies delete).
    delete: bool = False
    delete_excluded: bool = False
    # Write and delete nothing: CopyResult.plan says what the copy would do.
    dry_run: bool = False
    # An interrupted large file keeps what was verified, in hidden files beside
    # it (a block record and the partial file); the next run with partial sends
    # only the blocks the destination does not have verified (CopyResult.resumed_bytes).
    partial: bool = False
    # fsync each file before its rename and each directory after its entries:
    # the copy survives a power cut once rcp returns, at the cost of waiting
    # for the disk (much slower for many small files).
    fsync: bool = False
    # What of each file besides content, mode and mtime (rsync -a's set and more):
    sparse: bool = True  # holes (SEEK_DATA/SEEK_HOLE) neither travel nor get written (rsync -S)
    hard_links: bool = False  # names sharing an inode at the source share one at the destination (rsync -H)
    # Owner and group by name (numeric fallback); None: when the destination's
    # rcpd runs as root (rsync -a, cp -a); True without root: a warning.
    owner: bool | None = None
    group: bool | None = None
    numeric_ids: bool = False  # map owners by id, not by name
    xattrs: bool = False  # user.* extended attributes (and trusted.* as root at both ends) (rsync -X)
    acls: bool = False  # POSIX ACLs, as their system.posix_acl_* attributes: ids by number (rsync -A)
    keep_capabilities: bool = False  # security.capability (file capabilities grant privilege)
    dereference: bool = False  # copy what symlinks point to; loops are reported (rsync -L)
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
    verbose: int = 0  # 1: the rcpds log at info level too, 2: debug, 3: trace
    # SSH port for every remote host (scp -P); None: the ssh config's, else 22.
    # Wins over ssh_options' Port.
    port: int | None = None
    # Reach SSH hosts over IPv4 only ("inet", scp -4), IPv6 only ("inet6",
    # -6), or either ("any"), as ssh's AddressFamily.
    address_family: str = "any"
    # File data at most this many bytes per second, paced at the source
    # (scp -l KBIT is KBIT * 128 bytes/s); 0: no limit.
    bandwidth_limit: int = 0


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


PLAN_ACTIONS = ("create", "update", "unchanged", "kept", "ignored", "delete")
MAX_PLAN_ENTRIES = 100000  # kept in CopyResult.plan; the rest are counted (plan_omitted)
# ...and at most this many bytes of them, each entry counted as its path plus
# PLAN_ENTRY_COST (as the destination rcpd bounds its own: wire/messages.h).
MAX_PLAN_BYTES = 12 << 20
PLAN_ENTRY_COST = 24
PLAN_INODE_COST = 20  # added for an entry with an inode


@dataclass(frozen=True)
class PlanEntry:
    """What a dry run found the copy would do to one destination path."""

    action: str  # one of PLAN_ACTIONS
    path: str  # as the destination names it; a directory to delete ends in '/'
    size: int  # bytes of a file, 0 otherwise
    # hard_links: the source's (device, inode) of a file with several names, else None
    inode: tuple[int, int] | None = None


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # not reached


@dataclass(frozen=True, repr=False)
class CopyResult:
    """What a copy did, as the destination verified it.

    files_copied, bytes_copied, dirs_created, symlinks_copied: what was written.
    unchanged: files already there (same size and mtime, or content with checksum).
    kept: files that existed and differed, left alone (no overwrite/update/ignore_existing);
    kept_paths names the first of them. ignored: left alone as update/ignore_existing asked.
    failed and errors: entries that could not be copied, as (path, message).
    duration: seconds; transport: "quic", "tcp", "relay", or "" when no link was made.
    protocol_errors: malformed messages the rcpds sent (logged, then ignored).
    cancelled: the copy was stopped (Transfer.cancel) before it ended; the
    counts are then what the destination had confirmed by then.
    `ok` is True exactly when the CLI would exit 0.
    """

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
    deleted: int = 0  # removed by delete (with dry_run: to be removed)
    # dry_run: the plan, in the order the destination decided it (at most
    # MAX_PLAN_ENTRIES and MAX_PLAN_BYTES; plan_omitted counts the rest).
    plan: tuple[PlanEntry, ...] = ()
    plan_omitted: int = 0
    cancelled: bool = False  # stopped by Transfer.cancel before it ended
    sparse_bytes: int = 0  # holes of sparse files: neither sent nor written
    hard_links: int = 0  # files made as hard links to one copied before (hard_links option)
    resumed_bytes: int = 0  # not sent: verified blocks of an interrupted file reused (partial)

    # The destination's progress over time, oldest first, for result.plot(): at most
    # rcp.samples.MAX_SAMPLES, evenly thinned on long copies.
    samples: list[Sample] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True exactly when the CLI exits 0: nothing failed, nothing that
        differs was left alone unasked, and the copy was not cancelled."""
        return self.failed == 0 and not self.errors and self.kept == 0 and not self.cancelled

    @property
    def rate(self) -> float:
        """Average bytes per second over the whole copy."""
        return self.bytes_copied / self.duration if self.duration > 0 else 0.0

    def plot(self, ax: Any = None) -> Any:
        """Throughput over time (bytes/s and files/s) from `samples`, with
        matplotlib (imported only here); draws on `ax` if given. Returns the Axes."""
        from rcp.samples import plot

        return plot(self.samples, ax)

    def _facts(self) -> list[tuple[str, str]]:
        status = "cancelled" if self.cancelled else "ok" if self.ok else "not ok"
        facts = [("status", status),
                 ("copied", f"{self.files_copied} files, {_size(self.bytes_copied)}"),
                 ("time", f"{self.duration:.2f} s, {_size(self.rate)}/s"
                  + (f" over {self.transport}" if self.transport else ""))]
        for name in ("dirs_created", "symlinks_copied", "unchanged", "ignored", "kept", "failed",
                     "protocol_errors"):
            value = getattr(self, name)
            if value:
                facts.append((name.replace("_", " "), str(value)))
        for path, message in self.errors[:5]:
            facts.append(("error", f"{path}: {message}" if path else message))
        if len(self.errors) > 5:
            facts.append(("error", f"... {len(self.errors) - 5} more"))
        return facts

    def __repr__(self) -> str:
        return "CopyResult(" + "; ".join(f"{k}: {v}" for k, v in self._facts()) + ")"

    def _repr_html_(self) -> str:
        """A small table, for Jupyter."""
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in self._facts())
        return f"<table class='rcp-result'><caption>rcp copy</caption>{rows}</table>"


@dataclass(frozen=True)
class ShardResult:
    """What one shard's copy did: the pair of its last attempt, how many attempts."""

    index: int
    pair: str
    attempts: int
    result: CopyResult
    error: str = ""  # the last attempt's failure, "" when it succeeded

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(frozen=True)
class ShardedResult:
    """A sharded copy: the total (as one copy's result), each shard's, and the final pass's."""

    result: CopyResult
    shards: tuple[ShardResult, ...]
    final: CopyResult | None
    entries: int  # entries the listing found
    listing_seconds: float
    shards_seconds: float
    final_seconds: float

    @property
    def ok(self) -> bool:
        return self.result.ok
