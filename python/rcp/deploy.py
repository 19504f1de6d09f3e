"""Deploying rcpd to a host that has none (docs/security.md, "Deploying rcpd").

Over the SSH session the master already has, one probe (a POSIX sh script run
with PATH=/usr/bin:/bin) reports rcpd on the login's PATH and its protocol,
`uname -sm`, the home directory (or --deploy-dir's parent), resolved, every
directory from / down to the cache, and the cached binary's SHA-256. When the
cache holds this master's rcpd that is all: one exec. Otherwise the binary is
written under a temporary unique name with mode 0700 (SFTP when the server
offers it, else `cat` over an exec'd shell), its SHA-256 checked on the
remote, run once (`--version`, which also tells a `noexec` mount), then
renamed into place (`mv -f`: SFTP v3's rename would not replace a cached
copy).

The probe's output is the remote's word: bounded, parsed strictly, and only
ever compared with what the master expects.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from rcp import _core
from rcp.daemon import rcpd_path
from rcp.errors import DeployError

log = logging.getLogger(__name__)

CACHE_DIR = ".cache/rcp"  # under the remote home
SAFE_PATH = "PATH=/usr/bin:/bin; export PATH; LC_ALL=C; export LC_ALL"
PROBE_TAG = "RCPPROBE 1"
PROBE_TIMEOUT = 30.0
INSTALL_TIMEOUT = 120.0
MAX_PROBE_LINES = 160  # after the banner lines a login shell may print; one per directory from /
MAX_BANNER_LINES = 100
MAX_LINE = 4096
UPLOAD_BLOCK = 1 << 20  # bytes per SFTP write call into the SSH layer
SHELL_BLOCK = 256 << 10  # bytes per write to the upload script's stdin, well within an SSH window
HASH_PREFIX = 16  # hex digits of the SHA-256 in the cached name
EXIT_CANNOT_EXECUTE = 126  # the shell's status for "found but not executable"

Notice = Callable[[str], None]


# ---------------------------------------------------------------------------
# The local binary


@dataclass(frozen=True)
class Elf:
    """What an ELF header says about where the executable can run."""

    bits: int  # 32 or 64 (EI_CLASS)
    little_endian: bool  # EI_DATA
    machine: int  # e_machine
    osabi: int  # EI_OSABI

    def describe(self) -> str:
        arch = _MACHINE_NAMES.get(self.machine, f"machine {self.machine}")
        order = "" if self.little_endian or self.machine in (21, 22) else " big-endian"
        return f"{_OSABI_NAMES.get(self.osabi, f'OS ABI {self.osabi}')} {arch}{order} (ELF{self.bits})"


_MACHINE_NAMES = {3: "i386", 8: "MIPS", 21: "ppc64", 22: "s390x", 40: "ARM", 62: "x86-64", 183: "AArch64",
                  243: "RISC-V", 258: "LoongArch"}
_OSABI_NAMES = {0: "Linux", 3: "Linux", 2: "NetBSD", 9: "FreeBSD", 12: "OpenBSD", 6: "Solaris"}
_LINUX_ABIS = (0, 3)  # System V (what Linux toolchains write) and GNU/Linux
# `uname -m` -> (bits, little endian, e_machine) of the executables that run there.
_UNAME_MACHINES: dict[str, tuple[int, bool, int]] = {
    "x86_64": (64, True, 62), "amd64": (64, True, 62),
    "i386": (32, True, 3), "i486": (32, True, 3), "i586": (32, True, 3), "i686": (32, True, 3),
    "aarch64": (64, True, 183), "arm64": (64, True, 183),
    "armv6l": (32, True, 40), "armv7l": (32, True, 40), "armv8l": (32, True, 40),
    "riscv64": (64, True, 243), "ppc64le": (64, True, 21), "ppc64": (64, False, 21), "s390x": (64, False, 22),
    "loongarch64": (64, True, 258),
}


def parse_elf(header: bytes, where: str) -> Elf:
    """The first 20 bytes of an ELF file; DeployError when they are not one."""
    if len(header) < 20 or header[:4] != b"\x7fELF" or header[4] not in (1, 2) or header[5] not in (1, 2):
        raise DeployError(f"{where} is not an ELF executable: cannot deploy it")
    little = header[5] == 1
    return Elf(bits=32 if header[4] == 1 else 64, little_endian=little,
               machine=int.from_bytes(header[18:20], "little" if little else "big"), osabi=header[7])


def check_platform(elf: Elf, uname: str, where: str, binary: str) -> None:
    """DeployError (exit 3) naming both when the binary cannot run on a host
    whose `uname -sm` is `uname`."""
    system, _, machine = uname.partition(" ")
    expected = _UNAME_MACHINES.get(machine)
    runs = (system == "Linux" and elf.osabi in _LINUX_ABIS and expected is not None
            and expected == (elf.bits, elf.little_endian, elf.machine))
    if not runs:
        raise DeployError(f"{where} runs {uname or 'an unknown system'}, but the rcpd this rcp would deploy "
                          f"({binary}) is a {elf.describe()} executable; install an rcpd built for {where} "
                          f"there and pass --rcpd-path")


@dataclass(frozen=True)
class LocalRcpd:
    path: Path
    data: bytes = field(repr=False)
    sha256: str
    version: str
    elf: Elf

    @property
    def name(self) -> str:
        return f"rcpd-{self.version}-{self.sha256[:HASH_PREFIX]}"


_local_lock = threading.Lock()
_local_cache: dict[tuple[str, int, int], LocalRcpd] = {}  # (path, size, mtime) -> read once per process


def local_rcpd(path: Path | None = None) -> LocalRcpd:
    """The rcpd installed with this package (rcpd_path()), read and hashed once."""
    path = path or rcpd_path()
    try:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with _local_lock:
            if key not in _local_cache:
                import hashlib  # here, not at the top: loading OpenSSL costs start-up, and --rcpd-path needs none

                data = path.read_bytes()
                _local_cache[key] = LocalRcpd(path, data, hashlib.sha256(data).hexdigest(), _core.__version__,
                                              parse_elf(data[:20], str(path)))
            return _local_cache[key]
    except OSError as exc:
        raise DeployError(f"cannot read the rcpd to deploy ({path}): {exc.strerror}") from exc


# ---------------------------------------------------------------------------
# Where it goes


@dataclass(frozen=True)
class Target:
    """The cache directory: `base` (the home, or an explicit --deploy-dir's
    parent) and the components below it, each checked, created if missing."""

    base: str | None  # None: the login's home (found by the probe)
    components: tuple[str, ...]

    def shown(self, host: str, name: str) -> str:
        below = "/".join(self.components + (name,))
        return f"{host}:~/{below}" if self.base is None else f"{host}:{self.base.rstrip('/')}/{below}"


def target_for(deploy_dir: str | None) -> Target:
    """~/.cache/rcp, or --deploy-dir DIR (relative: to the home)."""
    text = deploy_dir if deploy_dir else CACHE_DIR
    if "\n" in text or "\0" in text:
        raise DeployError(f"--deploy-dir {text!r}: a directory name with a newline or NUL cannot be used")
    path = PurePosixPath(text)
    parts = tuple(p for p in path.parts if p not in ("/", "."))
    if not parts or ".." in parts:
        raise DeployError(f"--deploy-dir {text!r}: give a directory (without '..') below '/'")
    if path.is_absolute():
        return Target("/" + "/".join(parts[:-1]), parts[-1:])
    return Target(None, parts)


# ---------------------------------------------------------------------------
# The probe


def tag_line() -> str:
    """Prints the tag on a line of its own, even after a login rc's output
    that has no final newline (a terminal title, say)."""
    return f"echo; echo {_core.shell_quote(PROBE_TAG)}"


def probe_script(target: Target, name: str | None) -> str:
    """The probe: POSIX sh on one line (also parsed by csh-like login shells'
    `sh -c`), every value from the master quoted. Without `name` (no local
    rcpd to deploy) it does not look at the cache's file."""
    q = _core.shell_quote
    # The base resolved (`pwd -P`): symlinks above the cache are followed once, here, and
    # every directory of the resolved path is then checked ("up": from the base's parent to /).
    where = "" if target.base is None else f" -- {q(target.base)} 2>/dev/null"
    file_lines = [] if name is None else [
        f"f=$d/{q(name)}",
        "printf 'file '; ls -lndq -- \"$f\" 2>/dev/null || echo",
        "if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then h=$(sha256sum < \"$f\" 2>/dev/null); "
        "printf 'sha256 %s\\n' \"${h%% *}\"; fi",
    ]
    return "; ".join([
        "p=$(command -v rcpd 2>/dev/null) || p=",  # the login's PATH, before ours replaces it
        SAFE_PATH,
        tag_line(),
        "printf 'uid %s\\n' \"$(id -u)\"",
        "printf 'uname %s\\n' \"$(uname -sm)\"",
        f"b=$(cd{where} && pwd -P) || b=",
        "printf 'base %s\\n' \"$b\"",
        "printf 'basedir '; ls -lndq -- \"$b\" 2>/dev/null || echo",
        "a=$b; while [ -n \"$a\" ] && [ \"$a\" != / ]; do a=${a%/*}; a=${a:-/}; printf 'up '; "
        "ls -lndq -- \"$a\" 2>/dev/null || echo; done",
        "case $p in /*) printf 'onpath %s\\n' \"$p\"; "
        "printf 'onpath-version %s\\n' \"$(\"$p\" --version </dev/null 2>/dev/null | head -n 1)\";; esac",
        "d=$b",
        f"for c in {' '.join(q(c) for c in target.components)}; do d=$d/$c; printf 'dir '; "
        "ls -lndq -- \"$d\" 2>/dev/null || echo; done",
        *file_lines,
        "echo end",
    ])


@dataclass(frozen=True)
class Entry:
    """One `ls -lnd` line: a path's type, owner and mode bits."""

    kind: str  # '-', 'd', 'l', ... (ls's first letter)
    uid: int
    mode: str  # the 9 permission letters
    acl: bool  # ls marks an ACL with '+'


_LS = re.compile(r"^([-a-zA-Z])([-rwxsStT]{9})([.+@]?)\s+\d+\s+(\d+)\s")


def parse_ls(line: str) -> Entry | None:
    """None for an empty line (the path does not exist); DeployError for anything unexpected."""
    if not line:
        return None
    m = _LS.match(line)
    if not m:
        raise DeployError(f"unexpected `ls -lnd` output from the remote: {line[:120]!r}")
    return Entry(m.group(1), int(m.group(4)), m.group(2), m.group(3) == "+")


@dataclass
class Probe:
    uid: int = -1
    uname: str = ""
    base: str = ""
    base_entry: Entry | None = None
    on_path: str = ""
    on_path_version: str = ""
    ups: list[Entry | None] = field(default_factory=list)  # the base's parent, its parent, ..., /
    dirs: list[Entry | None] = field(default_factory=list)
    file: Entry | None = None
    sha256: str = ""


def parse_probe(lines: list[str], components: int) -> Probe:
    """The probe's lines after its tag, strictly: known keys, in a bounded
    number, values checked; DeployError otherwise."""
    probe = Probe()
    seen: set[str] = set()
    for line in lines:
        if len(line) > MAX_LINE:
            raise DeployError("the probe printed an over-long line")
        key, _, value = line.partition(" ")
        if key in ("dir", "up"):
            (probe.dirs if key == "dir" else probe.ups).append(parse_ls(value))
            continue
        if key in seen:
            raise DeployError(f"the probe printed {key!r} twice")
        seen.add(key)
        if key == "uid" and value.isdigit():
            probe.uid = int(value)
        elif key == "uname":
            probe.uname = value
        elif key == "base" and (value.startswith("/") or not value):
            probe.base = value
        elif key == "basedir":
            probe.base_entry = parse_ls(value)
        elif key == "onpath" and value.startswith("/"):
            probe.on_path = value
        elif key == "onpath-version":
            probe.on_path_version = value
        elif key == "file":
            probe.file = parse_ls(value)
        elif key == "sha256" and re.fullmatch(r"[0-9a-f]{64}", value):
            probe.sha256 = value
        else:
            raise DeployError(f"unexpected probe output {line[:120]!r}")
    ups = len(PurePosixPath(probe.base).parents) if probe.base else 0
    if probe.uid < 0 or "base" not in seen or len(probe.dirs) != components or len(probe.ups) != ups:
        raise DeployError("the probe's output is incomplete (is /bin/sh a POSIX shell there?)")
    return probe


def run_script(ssh: _core.SshSession, script: str, where: str, timeout: float,
               stdin: bytes | None = None) -> list[str]:
    """Runs `script` with /bin/sh (whatever the login shell), feeding it
    `stdin`; returns its lines after PROBE_TAG up to "end"."""
    try:
        channel = ssh.exec("/bin/sh -c " + _core.shell_quote(script))
    except _core.RcpError as exc:
        raise DeployError(f"{where}: cannot run the deploy script: {exc}") from exc
    try:
        try:
            if stdin is not None:
                for at in range(0, len(stdin), SHELL_BLOCK):
                    # A script that stopped early (it printed why) reads no more:
                    # a write would wait for window space until its timeout.
                    if channel.eof() or channel.exit_status() is not None:
                        break
                    channel.write(memoryview(stdin)[at:at + SHELL_BLOCK], timeout=min(timeout, 30.0))
            channel.close_stdin()
        except _core.RcpError as exc:  # the script stopped reading: what it printed says why
            log.debug("%s: writing to the deploy script: %s", where, exc)
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        tagged = False
        for _ in range(MAX_BANNER_LINES + MAX_PROBE_LINES):
            try:
                line = channel.read_line(timeout=max(0.1, deadline - time.monotonic()))
            except _core.RcpError as exc:
                err = _stderr(channel)
                raise DeployError(f"{where}: the deploy script did not finish ({exc})"
                                  + (f"; stderr: {err}" if err else "")) from exc
            if not tagged:
                tagged = line == PROBE_TAG
                continue
            if line == "end":
                return lines
            lines.append(line)
        raise DeployError(f"{where}: the deploy script printed too many lines")
    finally:
        channel.close()


def _stderr(channel: _core.SshChannel) -> str:
    try:
        return channel.read_stderr(timeout=0.5).strip()[-300:]
    except _core.RcpError:
        return ""


# ---------------------------------------------------------------------------
# Judging what the probe saw


def writable_by_others(entry: Entry) -> bool:
    return entry.mode[4] == "w" or entry.mode[7] == "w"  # group, other


def sticky(entry: Entry) -> bool:
    return entry.mode[8] in "tT"


def unsafe(entry: Entry, uid: int, path: str, *, kind: str = "d", above: bool = False) -> str | None:
    """Why `path` cannot be trusted to hold the binary, or None. `above`: a
    directory above the cache's own (the home, --deploy-dir's parent and
    theirs), as sshd's StrictModes judges them: root's or the user's, and
    writable by others only with the sticky bit (see plan())."""
    if entry.kind == "l":
        return f"{path} is a symbolic link"
    if entry.kind != kind:
        return f"{path} is not a {'directory' if kind == 'd' else 'regular file'}"
    if entry.uid != uid and not (above and entry.uid == 0):
        return f"{path} belongs to uid {entry.uid}, not to {'root or ' if above else ''}the login user (uid {uid})"
    if writable_by_others(entry) and not (above and sticky(entry)):
        return f"{path} is writable by {'other users' if entry.mode[7] == 'w' else 'its group'} ({entry.mode})"
    if entry.acl:
        return f"{path} has an ACL, which may let other users write to it"
    return None


@dataclass(frozen=True)
class Plan:
    directory: str  # absolute, on the remote
    missing: tuple[str, ...]  # directories to create (absolute), in order
    final: str
    shown: str  # for messages: host:~/.cache/rcp/rcpd-...
    cached: str  # "absent", "match" or "mismatch"
    uid: int  # the login user's


def plan(probe: Probe, target: Target, host: str, binary: LocalRcpd) -> Plan:
    """Where the binary goes and whether it is there already; DeployError when
    a directory on the way, from / down, could be changed by someone else."""
    base = probe.base.rstrip("/")
    refuse = f"{host}: will not deploy rcpd to {target.shown(host, binary.name)}: "
    advice = "; fix its ownership or permissions, or pass --deploy-dir (or --rcpd-path)"
    if not probe.base:
        raise DeployError(refuse + (f"{target.base} does not exist or cannot be entered (--deploy-dir creates only "
                                    "its last level)" if target.base is not None else
                                    "the remote login has no usable home directory ($HOME); pass --deploy-dir"))
    # From / down to the base: another user who can rename any of them can swap the cache.
    above = [str(a) for a in reversed(PurePosixPath(probe.base).parents)] + [probe.base]
    entries = list(reversed(probe.ups)) + [probe.base_entry]
    for at, (path, entry) in enumerate(zip(above, entries)):
        if entry is None:
            raise DeployError(refuse + f"{path} does not exist or cannot be examined")
        why = unsafe(entry, probe.uid, path, above=True)
        if why:
            raise DeployError(refuse + why + advice)
        below = entries[at + 1] if at + 1 < len(entries) else None  # the first cache level: unsafe() judges it
        if below is not None and writable_by_others(entry) and below.uid != probe.uid:
            # Sticky (unsafe() let it through): only what is the user's cannot be renamed by others.
            raise DeployError(refuse + f"{above[at + 1]} is in {path}, which others can write to (sticky), but "
                              f"belongs to uid {below.uid}, not to the login user (uid {probe.uid})" + advice)
    path, missing = base, list[str]()
    for component, entry in zip(target.components, probe.dirs):
        path = f"{path}/{component}"
        if entry is None or missing:
            missing.append(path)
            continue
        why = unsafe(entry, probe.uid, path)
        if why:
            raise DeployError(refuse + why + advice)
    final = f"{path}/{binary.name}"
    cached = "absent"
    if probe.file is not None and not missing:
        why = unsafe(probe.file, probe.uid, final, kind="-")
        if why and probe.file.kind != "-":
            raise DeployError(refuse + why + "; remove it")
        cached = "match" if not why and probe.sha256 == binary.sha256 else "mismatch"
    return Plan(path, tuple(missing), final, target.shown(host, binary.name), cached, probe.uid)


def _protocol_of(version_line: str) -> int | None:
    m = re.fullmatch(r"rcpd \S+ protocol (\d+)", version_line.strip())
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------
# Deploying


def ensure_rcpd(ssh: _core.SshSession, where: str, deploy_dir: str | None, notice: Notice) -> str:
    """The rcpd to run on the host behind `ssh`: its own on PATH when that
    speaks this master's protocol, else this master's, deployed if need be.
    Raises DeployError (a ConnectionFailure: exit 3)."""
    target = target_for(deploy_dir)
    # The cache's name holds the local binary's hash, so the probe asks for it when the binary is
    # there to read; when it is not (or is no ELF), that matters only if the host has no rcpd of its own.
    try:
        binary: LocalRcpd | None = local_rcpd()
        unavailable: DeployError | None = None
    except DeployError as exc:
        binary, unavailable = None, exc
    lines = run_script(ssh, probe_script(target, binary.name if binary else None), where, PROBE_TIMEOUT)
    probe = parse_probe(lines, len(target.components))
    if probe.on_path and _protocol_of(probe.on_path_version) == _core.PROTOCOL_VERSION:
        log.debug("%s: using rcpd on PATH, %s (%s)", where, probe.on_path, probe.on_path_version)
        return probe.on_path
    if binary is None:
        assert unavailable is not None
        raise unavailable
    check_platform(binary.elf, probe.uname, where, str(binary.path))
    p = plan(probe, target, where, binary)
    if p.cached == "match":
        log.debug("%s: using the cached %s", where, p.final)
        return p.final
    size = f"{len(binary.data) / 1e6:.1f} MB"
    replacing = " (replacing a cached copy that does not match)" if p.cached == "mismatch" else ""
    notice(f"deploying rcpd {binary.version} to {p.shown} ({size}){replacing}")
    started = time.monotonic()
    tmp = f"{p.directory}/.{binary.name}.{os.urandom(8).hex()}.tmp"
    try:
        sftp = ssh.sftp()
    except _core.RcpError as exc:
        log.debug("%s: no SFTP (%s): deploying through the shell", where, exc)
        _install(ssh, where, p, binary, tmp, upload_by_shell=True)
    else:
        _upload_sftp(sftp, where, p, binary, tmp)
        _install(ssh, where, p, binary, tmp, upload_by_shell=False, sftp=sftp)
    log.info("%s: deployed %s in %.2f s", where, p.final, time.monotonic() - started)
    return p.final


_SFTP_TYPES = {"directory": "d", "file": "-", "symlink": "l"}


def _upload_sftp(sftp: _core.SftpSession, where: str, p: Plan, binary: LocalRcpd, tmp: str) -> None:
    created = False
    try:
        for directory in p.missing:
            try:
                sftp.mkdir(directory, 0o700)
                made = True
            except _core.RcpError:
                made = False  # made meanwhile, by another rcp of this user or (sticky parent) by someone else
            # Judged as made: some servers ignore the mode asked for.
            attrs = sftp.lstat(directory)
            if attrs is None:
                raise DeployError(f"{where}: cannot create {directory} for rcpd over SFTP")
            entry = Entry(_SFTP_TYPES.get(attrs.type, "?"), attrs.uid, stat.filemode(stat.S_IFDIR | attrs.mode)[1:],
                          False)
            why = unsafe(entry, p.uid, directory)
            if why:
                raise DeployError(f"{where}: will not deploy rcpd to {p.shown}: {why}"
                                  + ("; the SFTP server made it so (it ignored the mode 0700 asked for): chmod "
                                     "700 it" if made else "; fix its ownership or permissions")
                                  + ", or pass --deploy-dir (or --rcpd-path)")
        f = sftp.create(tmp, 0o700)
        created = True
        try:
            view = memoryview(binary.data)
            for at in range(0, len(view), UPLOAD_BLOCK):
                f.write(view[at:at + UPLOAD_BLOCK])
        finally:
            f.close()
    except DeployError:
        raise
    except _core.RcpError as exc:
        if created:  # only ours: create is exclusive
            _remove(sftp, tmp)
        raise DeployError(f"{where}: cannot upload rcpd to {p.shown}: {exc}") from exc


def _remove(sftp: _core.SftpSession, path: str) -> None:
    try:
        sftp.unlink(path)
    except _core.RcpError:
        pass  # never created, or already gone


def _install(ssh: _core.SshSession, where: str, p: Plan, binary: LocalRcpd, tmp: str, *, upload_by_shell: bool,
             sftp: _core.SftpSession | None = None) -> None:
    """On the remote: (write `tmp` from stdin,) check its SHA-256, run it
    once, rename it into place. One exec."""
    q = _core.shell_quote
    steps = [SAFE_PATH, "umask 077", "set -f", tag_line(), f"t={q(tmp)}", f"f={q(p.final)}", "u=$(id -u)"]
    for directory in p.missing:
        # Made here (or over SFTP, or meanwhile by another rcp of this user, or, in a sticky
        # parent, by someone else): used only if it is a directory of the user's that nobody
        # else can write to. The master says why from the `made` line.
        d = q(directory)
        if upload_by_shell:
            steps.append(f"mkdir -m 700 -- {d} 2>/dev/null")
        steps.append(f"l=$(ls -lndq -- {d} 2>/dev/null); printf 'made %s\\n' \"$l\"; set -- $l; "
                     "case $1:$3 in d????[!w]??[!w]?:\"$u\"|d????[!w]??[!w]?.:\"$u\") ;; "
                     "*) rm -f -- \"$t\"; echo end; exit 0;; esac")
    if upload_by_shell:
        steps.append("set -C; cat > \"$t\" || { echo 'error cannot write the temporary file'; echo end; exit 0; }; "
                     "set +C")
    steps += [
        "chmod 700 -- \"$t\"",  # whatever umask the SFTP server applied
        "h=$(sha256sum < \"$t\"); printf 'sha256 %s\\n' \"${h%% *}\"",
        f"if [ \"${{h%% *}}\" != {q(binary.sha256)} ]; then rm -f -- \"$t\"; echo end; exit 0; fi",
        "v=$(\"$t\" --version </dev/null 2>&1); s=$?; printf 'exec %s\\n' \"$s\"",
        "printf 'output %s\\n' \"$(printf '%s\\n' \"$v\" | head -n 1)\"",
        "if [ \"$s\" != 0 ]; then rm -f -- \"$t\"; echo end; exit 0; fi",
    ]
    # rename(2) as the user, replacing a cached copy atomically (SFTP v3's
    # rename would refuse an existing target). Not into a directory or
    # through a symlink planted at the name: only the user could have.
    steps.append("if [ -d \"$f\" ] || [ -L \"$f\" ]; then rm -f -- \"$t\"; echo 'error not a regular file'; "
                 "echo end; exit 0; fi; mv -f -- \"$t\" \"$f\" && echo installed")
    steps.append("echo end")
    try:
        lines = run_script(ssh, "; ".join(steps), where, INSTALL_TIMEOUT,
                           stdin=binary.data if upload_by_shell else None)
    except DeployError:
        if sftp is not None:
            _remove(sftp, tmp)
        raise
    made, report = _parse_install(lines, len(p.missing))
    failed = f"{where}: deploying rcpd to {p.shown} failed: "
    for directory, line in zip(p.missing, made):
        entry = parse_ls(line)
        why = f"{directory} could not be made" if entry is None else unsafe(entry, p.uid, directory)
        if why:
            raise DeployError(failed + why)
    if len(made) < len(p.missing):
        raise DeployError(failed + f"{p.missing[len(made) - 1] if made else p.missing[0]} is not a directory "
                          "only the login user can write to")
    if "error" in report:
        raise DeployError(failed + report["error"])
    if not report.get("sha256"):
        raise DeployError(failed + "sha256sum is not available there (in /usr/bin or /bin)")
    if report.get("sha256") != binary.sha256:
        raise DeployError(failed + f"the file written there has SHA-256 {report.get('sha256', '?')[:64]!r}, "
                          f"not {binary.sha256} (was it changed while being written?)")
    status = report.get("exec", "")
    if status != "0":
        output = report.get("output", "")
        if status == str(EXIT_CANNOT_EXECUTE) or "ermission denied" in output:
            raise DeployError(failed + f"it cannot be executed there ({output[:200]}): the file system is probably "
                              f"mounted noexec; pass --deploy-dir with a directory where programs may run")
        raise DeployError(failed + f"it does not run there (exit status {status[:8]}: {output[:200]})")
    if "installed" not in report:
        raise DeployError(failed + "it could not be renamed into place")


def _parse_install(lines: list[str], dirs: int) -> tuple[list[str], dict[str, str]]:
    """The `made` lines (`ls -lnd` of the directories made), and the rest by key."""
    made: list[str] = []
    report: dict[str, str] = {}
    for line in lines[:8 + dirs]:
        key, _, value = line.partition(" ")
        if key == "made" and len(made) < dirs and not report:
            made.append(value[:MAX_LINE])
            continue
        if key not in ("sha256", "exec", "output", "error", "installed") or key in report:
            raise DeployError(f"unexpected output from the deploy script: {line[:120]!r}")
        report[key] = value[:MAX_LINE]
    if len(lines) > 8 + dirs:
        raise DeployError("the deploy script printed too much")
    return made, report
