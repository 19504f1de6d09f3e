"""A throwaway OpenSSH server on 127.0.0.1 for tests and benchmarks.

The `sshd` fixture (module scope) starts /usr/sbin/sshd as the current user on
a free port with freshly generated ed25519 host and user keys, and writes a
known_hosts file and an ssh config with a Host alias, so both rcp (libssh)
and plain ssh/scp/rsync can reach it:

    def test_x(sshd):
        sshd.run("echo hi")                       # ssh -F config rcptest 'echo hi'
        _core.SshSession.connect(sshd.alias, config_file=sshd.config)
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"  # absolute: sshd re-executes itself
ALIAS = "rcptest"
START_TIMEOUT = 10.0


def keygen(path: Path, comment: str) -> Path:
    """An ed25519 key pair without passphrase at `path` (+ `path`.pub)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path


def public_key(path: Path) -> str:
    """'ssh-ed25519 AAAA...' of a key pair (without the comment)."""
    return " ".join(Path(str(path) + ".pub").read_text().split()[:2])


def env_without_agent() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}


@dataclass
class Sshd:
    host: str
    port: int
    user: str
    key: Path  # the user's private key (authorized)
    host_key: Path  # the server's private host key
    known_hosts: Path  # holds the host key for [host]:port
    config: Path  # ssh config with `Host <alias>`
    alias: str
    dir: Path
    log_file: Path
    proc: subprocess.Popen = field(repr=False)

    @property
    def known_hosts_name(self) -> str:
        return f"[{self.host}]:{self.port}"

    def ssh_command(self, command: str) -> list[str]:
        return ["ssh", "-F", str(self.config), self.alias, command]

    def run(self, command: str, *, input: bytes | None = None, check: bool = True,
            timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Runs `command` with plain OpenSSH (`ssh -F config alias command`)."""
        return subprocess.run(self.ssh_command(command), input=input, capture_output=True, check=check,
                              timeout=timeout, env=env_without_agent())

    def log(self) -> str:
        """sshd's own log (LogLevel VERBOSE), for failure messages."""
        return self.log_file.read_text(errors="replace")


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_listening(proc: subprocess.Popen, host: str, port: int, deadline: float,
                    netns: str | None = None) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if netns:  # the address may be reachable only from inside the namespace
            out = subprocess.run(["ip", "netns", "exec", netns, "ss", "-Hltn", f"sport = :{port}"],
                                 capture_output=True, text=True, timeout=5)
            if out.stdout.strip():
                return True
            time.sleep(0.05)
            continue
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def start_sshd(directory: Path, listen: str = "127.0.0.1", *, netns: str | None = None,
               alias: str = ALIAS, allow_none_auth: bool = False, home: Path | None = None,
               extra_config: list[str] | None = None, sftp: bool = True, password: str | None = None) -> Sshd:
    """Starts sshd on `listen` (127.0.0.1 or ::1) with everything under `directory`;
    the caller stops it with `stop_sshd`. With `netns` it runs inside that
    network namespace (`ip netns exec`) on port 2222 of `listen`, an address of
    the namespace that this (root) namespace can reach.

    allow_none_auth (root only): the server lets root in with SSH's "none"
    method, i.e. without any credential. sshd then runs in a private mount
    namespace where /etc/shadow is a copy with root's password emptied
    (PermitEmptyPasswords); the real /etc/shadow is never touched.

    password (root only): the server takes this password for root (password
    authentication), the same way: a copy of /etc/shadow with root's hash
    replaced, seen only in sshd's private mount namespace.

    home (root only): the login's home directory is this directory instead of
    the real one, bound over it in sshd's private mount namespace, so what the
    login does there (and its shell startup files) stays in the test's tmp dir.
    extra_config: more sshd_config lines (e.g. "SetEnv PATH="); sftp=False
    leaves out the sftp subsystem."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        raise RuntimeError("OpenSSH server (/usr/sbin/sshd) and ssh-keygen are required: run scripts/bootstrap.sh")
    user = pwd.getpwuid(os.getuid()).pw_name
    host_key = keygen(directory / "ssh_host_ed25519_key", "rcp-test-host")
    key = keygen(directory / "id_ed25519", "rcp-test-user")
    authorized = directory / "authorized_keys"
    authorized.write_text(public_key(key) + "\n")
    if os.getuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
    binds: list[tuple[Path, str]] = []  # (source, target) bound in sshd's private mount namespace
    extra: list[str] = []
    if home is not None:
        if os.geteuid() != 0 or netns:
            raise RuntimeError("home needs root (a private mount namespace) and no netns")
        binds.append((home, pwd.getpwuid(os.getuid()).pw_dir))
    if allow_none_auth or password is not None:
        if os.geteuid() != 0 or netns:
            raise RuntimeError("allow_none_auth and password need root (a private mount namespace) and no netns")
        root_hash = "" if password is None else subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True, text=True, check=True,
            timeout=30).stdout.strip()
        shadow = directory / "shadow"
        lines = Path("/etc/shadow").read_text().splitlines()
        with os.fdopen(os.open(shadow, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write("".join((":".join([fields[0], root_hash] + fields[2:]) if fields[0] == "root" else line) + "\n"
                            for line in lines for fields in [line.split(":")]))
        binds.append((shadow, "/etc/shadow"))
        extra = ["PasswordAuthentication yes", "PermitRootLogin yes"]
        if allow_none_auth:
            extra.append("PermitEmptyPasswords yes")

    wrap: list[str] = []
    if binds:
        mounts = " && ".join(f"mount --bind {shlex.quote(str(src))} {shlex.quote(dst)}" for src, dst in binds)
        wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", mounts + ' && exec "$@"', "sh"]

    last_error = ""
    for _ in range(3):  # the free port may be taken between probing and binding
        # A fresh namespace has every port free; ours can only probe its own addresses.
        port = 2222 if netns else _free_port(listen)
        config = directory / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {listen}",
            f"Port {port}",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized}",
            "PubkeyAuthentication yes",
            *(extra or ["PasswordAuthentication no"]),
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            *([] if extra else ["PermitRootLogin prohibit-password"]),
            f"PidFile {directory / 'sshd.pid'}",
            *(["Subsystem sftp internal-sftp"] if sftp else []),
            "LogLevel VERBOSE",
            *(extra_config or []),
            "",
        ]))
        log_file = directory / "sshd.log"
        with open(log_file, "wb") as log:
            prefix = ["ip", "netns", "exec", netns] if netns else []  # ip execs sshd: proc is sshd
            proc = subprocess.Popen(prefix + wrap + [SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=subprocess.STDOUT)
        if _wait_listening(proc, listen, port, time.monotonic() + START_TIMEOUT, netns):
            break
        _stop(proc)
        last_error = log_file.read_text(errors="replace")
    else:
        if allow_none_auth or password is not None:
            (directory / "shadow").unlink(missing_ok=True)  # password hashes: not left in a kept tmp dir
        raise RuntimeError(f"sshd did not start:\n{last_error}")

    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[{listen}]:{port} {public_key(host_key)}\n")
    ssh_config = directory / "ssh_config"
    ssh_config.write_text("\n".join([
        f"Host {alias}",
        f"  HostName {listen}",
        f"  Port {port}",
        f"  User {user}",
        f"  IdentityFile {key}",
        f"  UserKnownHostsFile {known_hosts}",
        "  GlobalKnownHostsFile /dev/null",
        "  StrictHostKeyChecking yes",
        "  IdentitiesOnly yes",
        "  BatchMode yes",
        "",
    ]))
    return Sshd(host=listen, port=port, user=user, key=key, host_key=host_key, known_hosts=known_hosts,
                config=ssh_config, alias=alias, dir=directory, log_file=log_file, proc=proc)


def stop_sshd(server: Sshd) -> None:
    _stop(server.proc)
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def sshd() -> Iterator[Sshd]:
    # An agent of the developer's would make authentication tests pass or fail
    # for reasons outside the test; libssh reads SSH_AUTH_SOCK when connecting.
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    server = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-sshd-")))
    try:
        yield server
    finally:
        stop_sshd(server)
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent
