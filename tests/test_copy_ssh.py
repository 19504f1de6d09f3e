"""End-to-end copies through a real OpenSSH server on 127.0.0.1: rcpds started
over SSH (libssh), QUIC back to the master, data straight source→destination."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp.errors import EXIT_CONNECTION, EXIT_OK, EXIT_PARTIAL
from sshd import Sshd
from test_faults import kill_mid_copy, rcpd_pids
from treeutil import assert_same_tree, leftovers, make_non_utf8_tree, make_tree

RCPD = str(rcp.daemon.rcpd_path())


def opts(sshd: Sshd, **extra: object) -> dict[str, object]:
    return {"ssh_config": str(sshd.config), "rcpd_path": RCPD, **extra}


def rcp_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run([sys.executable, "-m", "rcp.cli", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_no_rcpd(sshd: Sshd, timeout: float = 10.0) -> list[int]:
    mine = {sshd.proc.pid}
    deadline = time.monotonic() + timeout
    while (left := rcpd_pids("source", mine) + rcpd_pids("destination", mine)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "src tree")


@pytest.mark.parametrize("direction", ["local->remote", "remote->local", "remote->remote"])
def test_every_direction(sshd: Sshd, tree: Path, tmp_path: Path, direction: str) -> None:
    into = tmp_path / "into"
    into.mkdir()
    remote = f"{sshd.alias}:"
    src = (remote if direction.startswith("remote") else "") + str(tree)
    dst = (remote if direction.endswith("remote") else "") + str(into)
    result = rcp.copy(src, dst, **opts(sshd))
    assert result.ok, result.errors
    assert result.files_copied == 11 and result.symlinks_copied == 3
    assert_same_tree(tree, into / tree.name)
    assert not leftovers(into)
    assert not wait_no_rcpd(sshd), "an rcpd outlived the copy"


def test_large_file_remote_to_remote_as_new_name(sshd: Sshd, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    with open(src, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(1 << 20))
    os.utime(src, ns=(1_600_000_000_000_000_001,) * 2)
    result = rcp.copy(f"{sshd.alias}:{src}", f"{sshd.alias}:{tmp_path / 'copy.bin'}", **opts(sshd))
    assert result.ok and result.bytes_copied == 64 << 20, result.errors
    assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()
    assert (tmp_path / "copy.bin").stat().st_mtime_ns == 1_600_000_000_000_000_001


def test_user_at_host_operand_with_port_option(sshd: Sshd, tmp_path: Path) -> None:
    """`user@host:path` and the port as a keyword (scp -P), with keys and
    known_hosts from the config's `Host *`."""
    config = tmp_path / "config"
    config.write_text(f"Host *\n  IdentityFile {sshd.key}\n  UserKnownHostsFile {sshd.known_hosts}\n"
                      "  StrictHostKeyChecking yes\n")
    (tmp_path / "f").write_bytes(b"x" * 5000)
    result = rcp.copy(f"{sshd.user}@{sshd.host}:{tmp_path / 'f'}", tmp_path / "g",
                      ssh_config=str(config), rcpd_path=RCPD, port=sshd.port)
    assert result.ok, result.errors
    assert (tmp_path / "g").read_bytes() == b"x" * 5000


def test_cli_progress_summary_and_remote_logs(sshd: Sshd, tree: Path, tmp_path: Path) -> None:
    out = rcp_cli("--progress", "--summary", "-v", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD,
                  str(tree), f"{sshd.alias}:{tmp_path / 'copy'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert_same_tree(tree, tmp_path / "copy")
    assert "rcp: 11 files" in out.stderr, out.stderr
    # -v shows the remote rcpds' own log lines, tagged with their role.
    assert "[destination] info: connected to the source" in out.stderr, out.stderr
    assert "bytes verified" not in out.stderr
    out = rcp_cli("--no-progress", "-vv", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD,
                  str(tree), f"{sshd.alias}:{tmp_path / 'again'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert "[destination] debug: " in out.stderr and "size-1201: 1201 bytes verified" in out.stderr, out.stderr


def test_existing_files_are_kept_without_overwrite(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "new").write_bytes(b"new")
    (tmp_path / "old").write_bytes(b"old")
    os.utime(tmp_path / "old", (1_000_000_000, 1_000_000_000))  # differs (same size): kept
    out = rcp_cli("--no-progress", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD,
                  str(tmp_path / "new"), f"{sshd.alias}:{tmp_path / 'old'}")
    assert out.returncode == EXIT_PARTIAL, out.stderr
    assert (tmp_path / "old").read_bytes() == b"old"
    out = rcp_cli("--no-progress", "--overwrite", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD,
                  str(tmp_path / "new"), f"{sshd.alias}:{tmp_path / 'old'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "old").read_bytes() == b"new"


def test_missing_remote_source_is_reported(sshd: Sshd, tmp_path: Path) -> None:
    out = rcp_cli("--no-progress", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD,
                  f"{sshd.alias}:{tmp_path / 'missing'}", str(tmp_path / "dst"))
    assert out.returncode == EXIT_PARTIAL, out.stderr
    assert "missing" in out.stderr and "No such file or directory" in out.stderr
    assert not (tmp_path / "dst").exists()


def test_unknown_host_key_exits_3(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "config"
    config.write_text(sshd.config.read_text().replace(str(sshd.known_hosts), str(empty)))
    out = rcp_cli("--no-progress", "--ssh-config", str(config), "--rcpd-path", RCPD,
                  str(tmp_path / "nothing"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert sshd.host in out.stderr and "known_hosts" in out.stderr, out.stderr
    assert empty.read_text() == ""  # nothing accepted silently
    # The explicit flag records the key, and the copy then goes through.
    (tmp_path / "nothing").write_text("now something")
    out = rcp_cli("--no-progress", "--accept-new-host-keys", "--ssh-config", str(config), "--rcpd-path", RCPD,
                  str(tmp_path / "nothing"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "dst").read_text() == "now something"
    assert empty.read_text().strip()


def test_changed_host_key_exits_3(sshd: Sshd, tmp_path: Path) -> None:
    forged = tmp_path / "known_hosts"
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                           capture_output=True, check=True)
    assert other.returncode == 0
    forged.write_text(f"[{sshd.host}]:{sshd.port} {(tmp_path / 'k.pub').read_text().split(maxsplit=2)[0]} "
                      f"{(tmp_path / 'k.pub').read_text().split()[1]}\n")
    config = tmp_path / "config"
    config.write_text(sshd.config.read_text().replace(str(sshd.known_hosts), str(forged)))
    (tmp_path / "f").write_text("x")
    out = rcp_cli("--no-progress", "--accept-new-host-keys", "--ssh-config", str(config), "--rcpd-path", RCPD,
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "changed" in out.stderr.lower(), out.stderr
    assert not (tmp_path / "dst").exists()


def test_wrong_rcpd_version_is_refused(sshd: Sshd, tmp_path: Path) -> None:
    fake = tmp_path / "old-rcpd"
    fake.write_text("#!/bin/sh\necho 'RCPD 999 " + "ab" * 32 + " 9.9.9'\nsleep 30\n")
    fake.chmod(0o755)
    (tmp_path / "f").write_text("x")
    started = time.monotonic()
    out = rcp_cli("--no-progress", "--ssh-config", str(sshd.config), "--rcpd-path", str(fake),
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "protocol" in out.stderr.lower() and "999" in out.stderr, out.stderr
    assert time.monotonic() - started < 25
    assert not (tmp_path / "dst").exists()


def test_banner_before_the_hello_is_skipped(sshd: Sshd, tmp_path: Path) -> None:
    chatty = tmp_path / "chatty-rcpd"
    chatty.write_text(f"#!/bin/sh\necho 'Welcome to the cluster'\necho\nexec {RCPD} \"$@\"\n")
    chatty.chmod(0o755)
    (tmp_path / "f").write_text("through the banner")
    result = rcp.copy(str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'g'}", ssh_config=str(sshd.config),
                      rcpd_path=str(chatty))
    assert result.ok, result.errors
    assert (tmp_path / "g").read_text() == "through the banner"


def test_not_an_rcpd_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    out = rcp_cli("--no-progress", "--ssh-config", str(sshd.config), "--rcpd-path", "/bin/echo",
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "--role" in out.stderr and "rcpd" in out.stderr, out.stderr  # echo printed its arguments
    assert not (tmp_path / "dst").exists()


def test_missing_remote_rcpd_is_a_clear_error(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    out = rcp_cli("--no-progress", "--ssh-config", str(sshd.config), "--rcpd-path", "/nonexistent/rcpd",
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "/nonexistent/rcpd" in out.stderr, out.stderr


def test_master_address_override(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("via ::1")
    # A local source: the remote destination is told to reach it at --master-address first.
    result = rcp.copy(str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'g'}", **opts(sshd, master_address="::1"))
    assert result.ok, result.errors
    assert (tmp_path / "g").read_text() == "via ::1"
    # An address where nothing listens: no rcpd connects back to the master (their
    # control links are their SSH channels), so a remote source copies as usual.
    started = time.monotonic()
    out = rcp_cli("--no-progress", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD,
                  "--master-address", "192.0.2.1",
                  f"{sshd.alias}:{tmp_path / 'f'}", str(tmp_path / "h"))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "h").read_text() == "via ::1"
    assert time.monotonic() - started < 25


def test_shell_metacharacters_in_remote_paths_stay_literal(sshd: Sshd, tmp_path: Path) -> None:
    # A remote shell would run these in the login directory.
    name = f"rcp-pwned-{os.getpid()}"
    marker = Path.home() / name
    odd = tmp_path / f"a; touch {name}; $(touch {name}) `touch {name}` 'q\" b"
    odd.mkdir()
    (odd / "f").write_text("literal")
    result = rcp.copy(f"{sshd.alias}:{odd}", f"{sshd.alias}:{tmp_path / 'out'}", **opts(sshd))
    assert result.ok, result.errors
    assert (tmp_path / "out" / "f").read_text() == "literal"
    assert not marker.exists()


@pytest.mark.parametrize("victim", ["destination", "source"])
def test_killed_remote_rcpd_fails_fast_and_cleanly(sshd: Sshd, tmp_path: Path, victim: str) -> None:
    kill_mid_copy(tmp_path, victim, wrap=lambda p: f"{sshd.alias}:{p}", ancestors={sshd.proc.pid}, **opts(sshd))


def _config_with(sshd: Sshd, tmp_path: Path, strict: str) -> tuple[Path, Path]:
    """A config like the fixture's, with an empty known_hosts and StrictHostKeyChecking `strict`."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = tmp_path / "config"
    config.write_text(sshd.config.read_text().replace(str(sshd.known_hosts), str(known_hosts))
                      .replace("StrictHostKeyChecking yes", f"StrictHostKeyChecking {strict}"))
    return config, known_hosts


def _host_fingerprint(sshd: Sshd) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(sshd.host_key) + ".pub"], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


@pytest.mark.parametrize("strict", ["accept-new", "no"])
def test_cli_records_an_unknown_key_with_a_warning(sshd: Sshd, tmp_path: Path, strict: str) -> None:
    config, known_hosts = _config_with(sshd, tmp_path, strict)
    (tmp_path / "f").write_text("hello")
    out = rcp_cli("--no-progress", "--ssh-config", str(config), "--rcpd-path", RCPD,
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_OK, out.stderr
    warning = [line for line in out.stderr.splitlines() if "permanently added" in line]
    assert len(warning) == 1, out.stderr
    assert f"[{sshd.host}]:{sshd.port}" in warning[0] and _host_fingerprint(sshd) in warning[0], out.stderr
    assert (tmp_path / "dst").read_text() == "hello"
    assert sshd.known_hosts.read_text().split()[1:] == known_hosts.read_text().split()[1:]


def test_cli_ask_without_a_terminal_exits_3(sshd: Sshd, tmp_path: Path) -> None:
    config, known_hosts = _config_with(sshd, tmp_path, "ask")
    (tmp_path / "f").write_text("x")
    out = rcp_cli("--no-progress", "--ssh-config", str(config), "--rcpd-path", RCPD,
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")  # stdin: not a terminal
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "StrictHostKeyChecking ask" in out.stderr and "terminal" in out.stderr, out.stderr
    assert _host_fingerprint(sshd) in out.stderr and "accept-new" in out.stderr
    assert known_hosts.read_text() == "" and not (tmp_path / "dst").exists()


@pytest.mark.parametrize("answer", ["yes", "no"])
def test_cli_ask_prompts_on_the_terminal(sshd: Sshd, tmp_path: Path, answer: str) -> None:
    config, known_hosts = _config_with(sshd, tmp_path, "ask")
    (tmp_path / "f").write_text("asked")
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    proc = subprocess.Popen([sys.executable, "-m", "rcp.cli", "--no-progress", "--ssh-config", str(config),
                             "--rcpd-path", RCPD, str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    os.close(slave)
    try:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"(yes/no)?" not in seen and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.5)[0]:
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        assert b"(yes/no)?" in seen, seen
        text = seen.decode()
        assert f"[{sshd.host}]:{sshd.port}" in text and _host_fingerprint(sshd) in text, text
        os.write(master, answer.encode() + b"\n")
        rest = proc.stderr.read().decode()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)
    if answer == "yes":
        assert proc.returncode == EXIT_OK, rest
        assert (tmp_path / "dst").read_text() == "asked"
        assert known_hosts.read_text().strip()
    else:
        assert proc.returncode == EXIT_CONNECTION, rest
        assert "not accepted" in rest, rest
        assert known_hosts.read_text() == "" and not (tmp_path / "dst").exists()


def test_cli_strict_no_still_refuses_a_changed_key(sshd: Sshd, tmp_path: Path) -> None:
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")],
                           capture_output=True, check=True)
    assert other.returncode == 0
    config, known_hosts = _config_with(sshd, tmp_path, "no")
    known_hosts.write_text(f"[{sshd.host}]:{sshd.port} {' '.join((tmp_path / 'k.pub').read_text().split()[:2])}\n")
    (tmp_path / "f").write_text("x")
    out = rcp_cli("--no-progress", "--ssh-config", str(config), "--rcpd-path", RCPD,
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "CHANGED" in out.stderr and "StrictHostKeyChecking no never accepts" in out.stderr, out.stderr
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("hostname", ["bad_host.example", "a;touch${IFS}x", "-oProxyCommand=x"])
def test_cli_hostname_libssh_refuses_in_the_config_exits_3(sshd: Sshd, tmp_path: Path, hostname: str) -> None:
    """libssh silently drops a HostName it refuses (and would resolve the alias itself): say so instead."""
    config = tmp_path / "config"
    config.write_text(f"Host badalias\n  HostName {hostname}\n" + sshd.config.read_text())
    (tmp_path / "f").write_text("x")
    out = rcp_cli("--no-progress", "--ssh-config", str(config), "--rcpd-path", RCPD, "--connect-timeout", "5",
                  str(tmp_path / "f"), f"badalias:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("rcp: ssh: ") and "badalias" in out.stderr and hostname in out.stderr, out.stderr
    assert "HostName" in out.stderr and str(config) in out.stderr, out.stderr
    assert not (tmp_path / "dst").exists() and not (tmp_path / "x").exists()


def test_cli_alias_libssh_refuses_exits_3(sshd: Sshd, tmp_path: Path) -> None:
    """An alias libssh will not take as a host name (underscore), even though the config defines it."""
    config = tmp_path / "config"
    config.write_text(sshd.config.read_text().replace(f"Host {sshd.alias}", "Host my_alias"))
    (tmp_path / "f").write_text("x")
    out = rcp_cli("--no-progress", "--ssh-config", str(config), "--rcpd-path", RCPD, "--connect-timeout", "5",
                  str(tmp_path / "f"), f"my_alias:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert out.stderr.startswith("rcp: ssh: ") and "my_alias" in out.stderr and "Traceback" not in out.stderr, \
        out.stderr
    assert not (tmp_path / "dst").exists()


@pytest.mark.parametrize("operand, message", [("bad host:/x", "invalid character"), ("-oProxyCommand=x:/y", "'-'"),
                                              ("user@:/x", "empty host"), ("[::1:/x", "unclosed")])
def test_cli_operand_syntax_errors_exit_2(tmp_path: Path, operand: str, message: str) -> None:
    out = rcp_cli("--no-progress", "--", str(tmp_path / "f"), operand)
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("rcp: ") and message in out.stderr and "Traceback" not in out.stderr, out.stderr


@pytest.mark.parametrize("direction", ["local->remote", "remote->local"])
def test_non_utf8_names_through_ssh(sshd: Sshd, tmp_path: Path, direction: str) -> None:
    src = make_non_utf8_tree(tmp_path / os.fsdecode(b"d\xe9p\xf4t"))
    into = tmp_path / "into"
    into.mkdir()
    remote = f"{sshd.alias}:"
    result = rcp.copy((remote if direction == "remote->local" else "") + str(src),
                      (remote if direction == "local->remote" else "") + str(into), **opts(sshd))
    assert result.ok, result.errors
    assert_same_tree(src, into / src.name)
    # One non-UTF-8 file as the root operand, renamed to another, from bytes argv.
    file = os.fsencode(src) + b"/caf\xe9.txt"
    dst = os.fsencode(into) + b"/renomm\xe9"
    if direction == "local->remote":
        dst = remote.encode() + dst
    else:
        file = remote.encode() + file
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    out = subprocess.run([sys.executable, "-m", "rcp.cli", "--no-progress", "--ssh-config", str(sshd.config),
                          "--rcpd-path", RCPD, file, dst], capture_output=True, timeout=120, env=env)
    assert out.returncode == EXIT_OK, out.stderr
    assert (into / os.fsdecode(b"renomm\xe9")).read_bytes() == (src / os.fsdecode(b"caf\xe9.txt")).read_bytes()
    assert not leftovers(into)


def test_cli_bad_strict_host_key_checking_value_exits_3(sshd: Sshd, tmp_path: Path) -> None:
    config, _ = _config_with(sshd, tmp_path, "perhaps")
    out = rcp_cli("--no-progress", "--ssh-config", str(config), "--rcpd-path", RCPD,
                  str(tmp_path / "f"), f"{sshd.alias}:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "StrictHostKeyChecking" in out.stderr and "perhaps" in out.stderr and "Traceback" not in out.stderr
