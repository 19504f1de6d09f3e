"""The scp-shaped CLI and the typed API against a real sshd: -P, -F, -4/-6,
-v's account of the SSH phase, -vvv's trace, errors by kind and printed
once, and -l's bandwidth limit."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp.errors import EXIT_CONNECTION, EXIT_OK, EXIT_PARTIAL, ConnectionFailure, HostKeyError, SshAuthError
from sshd import Sshd

RCPD = str(rcp.daemon.rcpd_path())
MiB = 1 << 20


def rcp_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SSH_AUTH_SOCK", "RCP_LOG")}
    return subprocess.run([sys.executable, "-m", "rcp", *argv], capture_output=True, text=True,
                          timeout=timeout, env=env)


def portless_config(sshd: Sshd, tmp_path: Path, known_hosts: Path | None = None) -> Path:
    """An ssh config that names no port and no key: -P and -i must."""
    config = tmp_path / "portless_config"
    config.write_text(f"Host *\n  UserKnownHostsFile {known_hosts or sshd.known_hosts}\n"
                      "  GlobalKnownHostsFile /dev/null\n  StrictHostKeyChecking yes\n  IdentitiesOnly yes\n"
                      "  BatchMode yes\n")
    return config


def test_dash_P_F_i_as_scp(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"p" * 3000)
    config = portless_config(sshd, tmp_path)
    out = rcp_cli("-rpq", "-P", str(sshd.port), "-F", str(config), "-i", str(sshd.key), "--rcpd-path", RCPD,
                  f"{sshd.user}@{sshd.host}:{tmp_path / 'f'}", str(tmp_path / "g"))
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "g").read_bytes() == b"p" * 3000
    # Without -P the config's (none: 22) is used: nothing listens there for us.
    out = rcp_cli(f"-P{sshd.port}", "-4", "-F", str(config), "-i", str(sshd.key), "--rcpd-path", RCPD,
                  str(tmp_path / "f"), f"{sshd.user}@{sshd.host}:{tmp_path / 'h'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "h").read_bytes() == b"p" * 3000


def test_dash_6_refuses_an_ipv4_only_host(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    out = rcp_cli("-6", "-F", str(sshd.config), "--rcpd-path", RCPD, f"{sshd.alias}:{tmp_path / 'f'}",
                  str(tmp_path / "g"))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "over IPv6" in out.stderr and sshd.host in out.stderr, out.stderr
    with pytest.raises(rcp.SshError, match="over IPv6"):
        rcp.copy(f"{sshd.alias}:{tmp_path / 'f'}", tmp_path / "g", ssh_config=str(sshd.config), rcpd_path=RCPD,
                 address_family="inet6")
    result = rcp.copy(f"{sshd.alias}:{tmp_path / 'f'}", tmp_path / "g", ssh_config=str(sshd.config),
                      rcpd_path=RCPD, address_family="inet")
    assert result.ok


def test_verbose_logs_the_ssh_phase(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"v" * 100)
    config = portless_config(sshd, tmp_path)
    where = f"{sshd.user}@{sshd.host}"
    out = rcp_cli("-v", "--no-progress", "-F", str(config), "-P", str(sshd.port), "-i", str(sshd.key),
                  "--rcpd-path", RCPD, f"{where}:{tmp_path / 'f'}", str(tmp_path / "g"))
    assert out.returncode == EXIT_OK, out.stderr
    err = out.stderr
    assert f"[ssh] info: {where}: identity files {sshd.key}, then ssh-agent's and the default keys" in err, err
    assert f"[ssh] info: {where}: ssh: connecting to {sshd.host} port {sshd.port} as {sshd.user}" in err, err
    assert f"ssh config: {config}" in err, err
    assert f"checking it against {sshd.known_hosts}" in err, err
    assert f"tried {sshd.key}: accepted" in err, err
    assert f"[master] info: {where}: running {RCPD} --role source --log-level info" in err, err
    assert " trace: " not in err and " debug: " not in err
    # Without -v: none of it.
    quiet = rcp_cli("--no-progress", "-F", str(sshd.config), "--rcpd-path", RCPD, "--overwrite",
                    f"{sshd.alias}:{tmp_path / 'f'}", str(tmp_path / "g"))
    assert quiet.returncode == EXIT_OK and quiet.stderr == "", quiet.stderr


def test_vvv_adds_trace(sshd: Sshd, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"t" * 5000)
    vv = rcp_cli("-vv", "--no-progress", "-F", str(sshd.config), "--rcpd-path", RCPD,
                 f"{sshd.alias}:{tmp_path / 'f'}", str(tmp_path / "g"))
    assert vv.returncode == EXIT_OK, vv.stderr
    assert " debug: " in vv.stderr and " trace: " not in vv.stderr, vv.stderr
    vvv = rcp_cli("-vvv", "--no-progress", "-F", str(sshd.config), "--rcpd-path", RCPD,
                  f"{sshd.alias}:{tmp_path / 'f'}", str(tmp_path / "g2"))
    assert vvv.returncode == EXIT_OK, vvv.stderr
    assert f"[source] trace: {tmp_path / 'f'}: sent bytes 0..5000" in vvv.stderr, vvv.stderr


def test_host_key_error_by_kind_and_printed_once(sshd: Sshd, tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = portless_config(sshd, tmp_path, known_hosts=empty)
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(HostKeyError) as err:
        rcp.copy(f"{sshd.user}@{sshd.host}:{tmp_path / 'f'}", tmp_path / "g", ssh_config=str(config),
                 identity_files=[str(sshd.key)], port=sshd.port, rcpd_path=RCPD)
    assert isinstance(err.value, ConnectionFailure) and isinstance(err.value, rcp.SshError)
    assert "--accept-new-host-keys" in str(err.value) and "accept_new_host_keys=True" in str(err.value)
    out = rcp_cli("-P", str(sshd.port), "-F", str(config), "-i", str(sshd.key), "--rcpd-path", RCPD,
                  f"{sshd.user}@{sshd.host}:{tmp_path / 'f'}", str(tmp_path / "g"))
    assert out.returncode == EXIT_CONNECTION
    assert out.stderr.count("is unknown") == 1 and out.stderr.startswith("rcp: ssh: the host key of"), out.stderr
    # The option it names exists, and does what it says.
    out = rcp_cli("--accept-new-host-keys", "-P", str(sshd.port), "-F", str(config), "-i", str(sshd.key),
                  "--rcpd-path", RCPD, f"{sshd.user}@{sshd.host}:{tmp_path / 'f'}", str(tmp_path / "g"))
    assert out.returncode == EXIT_OK, out.stderr


def test_authentication_error_by_kind(sshd: Sshd, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)], check=True)
    config = portless_config(sshd, tmp_path)
    with pytest.raises(SshAuthError) as err:
        rcp.copy(f"{sshd.user}@{sshd.host}:x", tmp_path / "g", ssh_config=str(config),
                 identity_files=[str(stranger)], port=sshd.port, rcpd_path=RCPD)
    assert isinstance(err.value, ConnectionFailure) and str(stranger) in str(err.value)


def test_missing_source_error_printed_once_with_its_path(sshd: Sshd, tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    out = rcp_cli("--no-progress", "-F", str(sshd.config), "--rcpd-path", RCPD, f"{sshd.alias}:{missing}",
                  str(tmp_path / "g"))
    assert out.returncode == EXIT_PARTIAL, out.stderr
    assert out.stderr.count("No such file or directory") == 1 and str(missing) in out.stderr, out.stderr


def test_bandwidth_limit_paces_the_source(tmp_path: Path) -> None:
    """-l 16384 is 2 MiB/s: 4 MiB cannot take less than about 2 s (a lower
    bound only: the point is that the limit holds, not how fast rcp is)."""
    src = tmp_path / "four.bin"
    src.write_bytes(os.urandom(4 * MiB))
    began = time.monotonic()
    out = rcp_cli("-l", "16384", "--no-progress", str(src), str(tmp_path / "copy.bin"))
    took = time.monotonic() - began
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "copy.bin").read_bytes() == src.read_bytes()
    assert took >= 1.5, f"4 MiB at 2 MiB/s took {took:.2f} s"
    began = time.monotonic()
    result = rcp.copy(src, tmp_path / "api.bin", bandwidth_limit=2 * MiB)
    assert result.ok and result.duration >= 1.5 and time.monotonic() - began >= 1.5, result


def test_destination_error_printed_once_with_its_path(tmp_path: Path) -> None:
    """A failure the destination meets (a file where a directory must go) is
    printed once, with its path, at the end: not also as a warning line."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "sub" / "x").write_bytes(b"x")
    into = tmp_path / "into"
    (into / "src").mkdir(parents=True)
    (into / "src" / "sub").write_bytes(b"a file in the way")
    out = rcp_cli("--no-progress", str(src), str(into))
    assert out.returncode == EXIT_PARTIAL, out.stderr
    lines = out.stderr.splitlines()
    assert [line for line in lines if f"{into}/src/sub:" in line] == \
        [f"rcp: {into}/src/sub: 'sub' exists and is not a directory (symlinks are never followed)"], out.stderr
    assert all(line.startswith("rcp: ") for line in lines), out.stderr  # no warning lines besides
