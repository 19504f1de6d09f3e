"""Deploying rcpd to a host that has none (docs/security.md, "Deploying rcpd").

Over the SSH session the master already has, one probe (a POSIX sh script run
with PATH=/usr/bin:/bin) reports rcpd on the login's PATH and its protocol,
`uname -sm`, the home directory, every directory from there to the cache, and
the cached binary's SHA-256. When the cache holds this master's rcpd that is
all: one exec. Otherwise the binary is written under a temporary unique name
with mode 0700 (SFTP when the server offers it, else `cat` over an exec'd
shell), its SHA-256 checked on the remote, run once (`--version`, which also
tells a `noexec` mount), then renamed into place (`mv -f`: SFTP v3's rename
would not replace a cached copy).

The probe's output is the remote's word: bounded, parsed strictly, and only
ever compared with what the master expects.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
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
MAX_PROBE_LINES = 64  # after the banner lines a login shell may print
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


def probe_script(target: Target, name: str) -> str:
    """The probe: POSIX sh on one line (also parsed by csh-like login shells'
    `sh -c`), every value from the master quoted."""
    q = _core.shell_quote
    base = "b=$(cd && pwd -P) || b=" if target.base is None else f"b={q(target.base)}"
    return "; ".join([
        "p=$(command -v rcpd 2>/dev/null) || p=",  # the login's PATH, before ours replaces it
        SAFE_PATH,
        f"echo {q(PROBE_TAG)}",
        "printf 'uid %s\\n' \"$(id -u)\"",
        "printf 'uname %s\\n' \"$(uname -sm)\"",
        base,
        "printf 'base %s\\n' \"$b\"",
        "printf 'basedir '; ls -lndq -- \"$b\" 2>/dev/null || echo",
        "case $p in /*) printf 'onpath %s\\n' \"$p\"; "
        "printf 'onpath-version %s\\n' \"$(\"$p\" --version </dev/null 2>/dev/null | head -n 1)\";; esac",
        "d=$b",
        f"for c in {' '.join(q(c) for c in target.components)}; do d=$d/$c; printf 'dir '; "
        "ls -lndq -- \"$d\" 2>/dev/null || echo; done",
        f"f=$d/{q(name)}",
        "printf 'file '; ls -lndq -- \"$f\" 2>/dev/null || echo",
        "if [ -f \"$f\" ] && [ ! -L \"$f\" ]; then h=$(sha256sum < \"$f\" 2>/dev/null); "
        "printf 'sha256 %s\\n' \"${h%% *}\"; fi",
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
        if key == "dir":
            probe.dirs.append(parse_ls(value))
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
    if probe.uid < 0 or "base" not in seen or len(probe.dirs) != components:
        raise DeployError("the probe's output is incomplete (is /bin/sh a POSIX shell there?)")
    if not probe.base:
        raise DeployError("the remote login has no usable home directory ($HOME); pass --deploy-dir")
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


def unsafe(entry: Entry, uid: int, path: str, *, kind: str = "d", allow_root: bool = False) -> str | None:
    """Why `path` cannot be trusted to hold the binary, or None."""
    if entry.kind == "l":
        return f"{path} is a symbolic link"
    if entry.kind != kind:
        return f"{path} is not a {'directory' if kind == 'd' else 'regular file'}"
    if entry.uid != uid and not (allow_root and entry.uid == 0):
        return f"{path} belongs to uid {entry.uid}, not to the login user (uid {uid})"
    if entry.mode[4] == "w" or entry.mode[7] == "w":
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


def plan(probe: Probe, target: Target, host: str, binary: LocalRcpd) -> Plan:
    """Where the binary goes and whether it is there already; DeployError when
    a directory on the way could be changed by someone else."""
    base = probe.base.rstrip("/")
    refuse = f"{host}: will not deploy rcpd to {target.shown(host, binary.name)}: "
    advice = "; fix its ownership or permissions, or pass --deploy-dir (or --rcpd-path)"
    if target.base is not None and probe.base_entry is None:
        raise DeployError(refuse + f"{probe.base} does not exist (--deploy-dir creates only its last level)")
    if target.base is None:  # the home itself: the user's, or root's
        if probe.base_entry is None:
            raise DeployError(refuse + f"the home directory {probe.base} does not exist")
        why = unsafe(probe.base_entry, probe.uid, probe.base, allow_root=True)
        if why:
            raise DeployError(refuse + why + advice)
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
    return Plan(path, tuple(missing), final, target.shown(host, binary.name), cached)


def _protocol_of(version_line: str) -> int | None:
    m = re.fullmatch(r"rcpd \S+ protocol (\d+)", version_line.strip())
    return int(m.group(1)) if m else None


# ---------------------------------------------------------------------------
# Deploying


def ensure_rcpd(ssh: _core.SshSession, where: str, deploy_dir: str | None, notice: Notice) -> str:
    """The rcpd to run on the host behind `ssh`: its own on PATH when that
    speaks this master's protocol, else this master's, deployed if need be.
    Raises DeployError (a ConnectionFailure: exit 3)."""
    binary = local_rcpd()
    target = target_for(deploy_dir)
    lines = run_script(ssh, probe_script(target, binary.name), where, PROBE_TIMEOUT)
    probe = parse_probe(lines, len(target.components))
    if probe.on_path and _protocol_of(probe.on_path_version) == _core.PROTOCOL_VERSION:
        log.debug("%s: using rcpd on PATH, %s (%s)", where, probe.on_path, probe.on_path_version)
        return probe.on_path
    check_platform(binary.elf, probe.uname, where, str(binary.path))
    p = plan(probe, target, where, binary)
    if p.cached == "match":
        log.debug("%s: using the cached %s", where, p.final)
        return p.final
    size = f"{len(binary.data) / 1e6:.1f} MB"
    replacing = " (replacing a cached copy that does not match)" if p.cached == "mismatch" else ""
    notice(f"deploying rcpd {binary.version} to {p.shown} ({size}){replacing}")
    started = time.monotonic()
    tmp = f"{p.directory}/.{binary.name}.{secrets.token_hex(8)}.tmp"
    try:
        sftp = ssh.sftp()
    except _core.RcpError as exc:
        log.debug("%s: no SFTP (%s): deploying through the shell", where, exc)
        _install(ssh, where, p, binary, tmp, upload_by_shell=True)
    else:
        _upload_sftp(sftp, where, p, binary, tmp, probe.uid)
        _install(ssh, where, p, binary, tmp, upload_by_shell=False, sftp=sftp)
    log.info("%s: deployed %s in %.2f s", where, p.final, time.monotonic() - started)
    return p.final


def _upload_sftp(sftp: _core.SftpSession, where: str, p: Plan, binary: LocalRcpd, tmp: str, uid: int) -> None:
    created = False
    try:
        for directory in p.missing:
            try:
                sftp.mkdir(directory, 0o700)
            except _core.RcpError:
                # Another rcp of this user may have made it meanwhile (nobody
                # else can write to the parent): accepted only if it is safe now.
                attrs = sftp.lstat(directory)
                if attrs is None or attrs.type != "directory" or attrs.uid != uid or attrs.mode & 0o022:
                    raise
        f = sftp.create(tmp, 0o700)
        created = True
        try:
            view = memoryview(binary.data)
            for at in range(0, len(view), UPLOAD_BLOCK):
                f.write(view[at:at + UPLOAD_BLOCK])
        finally:
            f.close()
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
    steps = [SAFE_PATH, "umask 077", f"echo {q(PROBE_TAG)}", f"t={q(tmp)}", f"f={q(p.final)}"]
    if upload_by_shell:
        for directory in p.missing:  # created here, or by another rcp of this user meanwhile
            d = q(directory)
            steps.append(f"mkdir -m 700 -- {d} 2>/dev/null || {{ [ -d {d} ] && [ ! -L {d} ]; }} || "
                         f"{{ printf 'error cannot create %s\\n' {d}; echo end; exit 0; }}")
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
    report = _parse_install(lines)
    failed = f"{where}: deploying rcpd to {p.shown} failed: "
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


def _parse_install(lines: list[str]) -> dict[str, str]:
    report: dict[str, str] = {}
    for line in lines[:8]:
        key, _, value = line.partition(" ")
        if key not in ("sha256", "exec", "output", "error", "installed") or key in report:
            raise DeployError(f"unexpected output from the deploy script: {line[:120]!r}")
        report[key] = value[:MAX_LINE]
    if len(lines) > 8:
        raise DeployError("the deploy script printed too much")
    return report
