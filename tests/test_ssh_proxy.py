"""ProxyJump, ProxyCommand and -o against two real OpenSSH servers on
127.0.0.1 (tests/sshd.py): a jump host and a target. Every hop's host key is
checked like the target's; a hop that cannot be verified stops the connection
before anything is sent to the target."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp import _core
from rcp.errors import EXIT_CONNECTION, EXIT_OK, EXIT_USAGE, ConnectionFailure, UsageError
from rcp.model import CopyOptions, Endpoint
from rcp.ssh import connect, parse_option_arg, parse_ssh_options
from sshd import Sshd, keygen, public_key, start_sshd, stop_sshd

RCPD = str(rcp.daemon.rcpd_path())

# A ProxyCommand without nc: relays stdin/stdout to host:port.
RELAY = """\
import os, socket, sys, threading
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while data := os.read(0, 65536):
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := s.recv(65536):
    os.write(1, data)
"""


@dataclass
class Lab:
    jump: Sshd
    target: Sshd
    config: Path  # Host jump, Host target, Host via-jump (ProxyJump jump), known_hosts of both
    known_hosts: Path
    dir: Path

    def accepted(self, server: Sshd) -> int:
        return server.log().count("Accepted publickey")


def host_block(alias: str, server: Sshd, known_hosts: Path, *extra: str) -> str:
    return "\n".join([f"Host {alias}", f"  HostName {server.host}", f"  Port {server.port}", f"  User {server.user}",
                      f"  IdentityFile {server.key}", f"  UserKnownHostsFile {known_hosts}",
                      "  GlobalKnownHostsFile /dev/null", "  StrictHostKeyChecking yes", "  IdentitiesOnly yes",
                      *[f"  {line}" for line in extra], ""])


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    jump = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-jump-")), alias="jump")
    target = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-target-")), alias="target")
    work = Path(tempfile.mkdtemp(prefix="rcp-proxy-"))
    try:
        known_hosts = work / "known_hosts"
        known_hosts.write_text(jump.known_hosts.read_text() + target.known_hosts.read_text())
        config = work / "ssh_config"
        config.write_text(host_block("jump", jump, known_hosts) + host_block("target", target, known_hosts)
                          + host_block("via-jump", target, known_hosts, "ProxyJump jump"))
        yield Lab(jump, target, config, known_hosts, work)
    finally:
        stop_sshd(jump)
        stop_sshd(target)
        subprocess.run(["rm", "-rf", str(work)], check=False)
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent


def echo(session: _core.SshSession, text: str = "through") -> str:
    return session.exec(f"echo {text}").read_line(timeout=10)


# ---- ProxyJump ----

def test_proxy_jump_option_goes_through_the_jump_host(lab: Lab) -> None:
    jumps, direct = lab.accepted(lab.jump), lab.accepted(lab.target)
    session = _core.SshSession.connect("target", config_file=str(lab.config), proxy_jump="jump", connect_timeout=10)
    assert echo(session) == "through"
    assert lab.accepted(lab.jump) == jumps + 1  # the hop logged in ...
    assert lab.accepted(lab.target) == direct + 1  # ... and the target too
    # The target is still named by its HostName and Port, as known_hosts has it.
    assert (session.host, session.port) == (lab.target.host, lab.target.port)
    assert session.local_address == "127.0.0.1"  # our end of the first hop's connection


def test_proxy_jump_from_the_config(lab: Lab) -> None:
    jumps = lab.accepted(lab.jump)
    session = _core.SshSession.connect("via-jump", config_file=str(lab.config), connect_timeout=10)
    assert echo(session, "configured") == "configured"
    assert lab.accepted(lab.jump) == jumps + 1


def test_proxy_jump_none_connects_directly(lab: Lab) -> None:
    jumps = lab.accepted(lab.jump)
    session = _core.SshSession.connect("via-jump", config_file=str(lab.config), proxy_jump="none", connect_timeout=10)
    assert echo(session) == "through"
    assert lab.accepted(lab.jump) == jumps


def test_closing_one_jumped_session_leaves_another_working(lab: Lab) -> None:
    """Each connection has its own relay (libssh's own ProxyJump stops every
    relay of the process when any session disconnects)."""
    first = _core.SshSession.connect("via-jump", config_file=str(lab.config), connect_timeout=10)
    second = _core.SshSession.connect("via-jump", config_file=str(lab.config), connect_timeout=10)
    direct = _core.SshSession.connect("target", config_file=str(lab.config), connect_timeout=10)
    first.close()
    direct.close()
    del first
    for n in range(3):
        assert echo(second, f"still{n}") == f"still{n}"
        time.sleep(0.2)


def test_two_hops_in_order(lab: Lab) -> None:
    """jump,jump: the second hop is reached through the first, the target through the second."""
    jumps = lab.accepted(lab.jump)
    session = _core.SshSession.connect("target", config_file=str(lab.config), proxy_jump="jump,jump",
                                       connect_timeout=10)
    assert echo(session) == "through"
    assert lab.accepted(lab.jump) == jumps + 2


def test_user_at_host_port_hop(lab: Lab, tmp_path: Path) -> None:
    """A hop written user@address:port, with no Host entry of its own: the
    known_hosts file and keys given to the connection serve every hop."""
    empty = tmp_path / "empty_config"
    empty.write_text("")
    jumps = lab.accepted(lab.jump)
    session = _core.SshSession.connect(
        lab.target.host, port=lab.target.port, user=lab.target.user, config_file=str(empty),
        identity_files=[str(lab.jump.key), str(lab.target.key)], known_hosts_file=str(lab.known_hosts),
        proxy_jump=f"{lab.jump.user}@{lab.jump.host}:{lab.jump.port}", connect_timeout=10)
    assert echo(session) == "through"
    assert lab.accepted(lab.jump) == jumps + 1


def test_jump_host_with_an_unknown_key_is_refused_naming_the_hop(lab: Lab, tmp_path: Path) -> None:
    only_target = tmp_path / "known_hosts"
    only_target.write_text(lab.target.known_hosts.read_text())
    config = tmp_path / "config"
    config.write_text(lab.config.read_text().replace(str(lab.known_hosts), str(only_target)))
    jumps, direct = lab.accepted(lab.jump), lab.accepted(lab.target)
    with pytest.raises(_core.HostKeyError) as err:
        _core.SshSession.connect("via-jump", config_file=str(config), connect_timeout=10)
    message = str(err.value)
    assert "through the jump host jump" in message and "is unknown" in message, message
    assert f"[{lab.jump.host}]:{lab.jump.port}" in message, message
    assert lab.accepted(lab.jump) == jumps and lab.accepted(lab.target) == direct  # no login anywhere
    assert only_target.read_text() == lab.target.known_hosts.read_text()  # nothing recorded


def test_jump_host_with_a_changed_key_is_refused_even_with_accept_new(lab: Lab, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_host_key", "impostor")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"{lab.jump.known_hosts_name} {public_key(other)}\n" + lab.target.known_hosts.read_text())
    config = tmp_path / "config"
    config.write_text(lab.config.read_text().replace(str(lab.known_hosts), str(known_hosts)))
    with pytest.raises(_core.HostKeyError, match="CHANGED") as err:
        _core.SshSession.connect("via-jump", config_file=str(config), accept_new_host_key=True, connect_timeout=10)
    assert "through the jump host jump" in str(err.value)


def test_unknown_target_key_behind_a_good_hop_is_refused(lab: Lab, tmp_path: Path) -> None:
    only_jump = tmp_path / "known_hosts"
    only_jump.write_text(lab.jump.known_hosts.read_text())
    config = tmp_path / "config"
    config.write_text(lab.config.read_text().replace(str(lab.known_hosts), str(only_jump)))
    with pytest.raises(_core.HostKeyError) as err:
        _core.SshSession.connect("via-jump", config_file=str(config), connect_timeout=10)
    message = str(err.value)
    assert f"[{lab.target.host}]:{lab.target.port}" in message and "through the jump host" not in message, message


def test_jump_host_that_cannot_forward_is_a_clear_error(tmp_path: Path) -> None:
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    (tmp_path / "j").mkdir()
    jump = start_sshd(tmp_path / "j", alias="jump", extra_config=["AllowTcpForwarding no"])
    try:
        config = tmp_path / "config"
        config.write_text(host_block("jump", jump, jump.known_hosts))
        with pytest.raises(_core.SshError, match="cannot open a connection to 127.0.0.1:1"):
            _core.SshSession.connect("127.0.0.1", port=1, config_file=str(config), proxy_jump="jump",
                                     connect_timeout=10)
    finally:
        stop_sshd(jump)
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent


def test_proxy_jump_loop_in_the_config_ends(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text("Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n")
    with pytest.raises(ValueError, match="ProxyJump loop"):
        _core.SshSession.connect("a", config_file=str(config), connect_timeout=5)


def test_bad_proxy_jump_is_refused() -> None:
    with pytest.raises(ValueError, match="bad port"):
        _core.SshSession.connect("target", proxy_jump="jump:99999", connect_timeout=5)


# ---- ProxyCommand ----

def test_proxy_command_python_relay(lab: Lab, tmp_path: Path) -> None:
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    session = _core.SshSession.connect("target", config_file=str(lab.config),
                                       proxy_command=f"{sys.executable} {relay} %h %p", connect_timeout=10)
    assert echo(session, "relayed") == "relayed"
    with pytest.raises(_core.SshError, match="not a TCP socket"):
        session.local_address


def test_proxy_command_ssh_w_from_the_config(lab: Lab, tmp_path: Path) -> None:
    """The classic form, through OpenSSH's client and the jump host; rcp still checks the target's key."""
    config = tmp_path / "config"
    config.write_text(lab.config.read_text()
                      + host_block("via-w", lab.target, lab.known_hosts,
                                   f"ProxyCommand ssh -F {lab.config} -o BatchMode=yes -W %h:%p jump"))
    jumps = lab.accepted(lab.jump)
    session = _core.SshSession.connect("via-w", config_file=str(config), connect_timeout=10)
    assert echo(session, "via-w") == "via-w"
    assert lab.accepted(lab.jump) == jumps + 1


def test_proxy_command_that_fails_says_so(lab: Lab) -> None:
    with pytest.raises(_core.SshError, match="exited with status 7"):
        _core.SshSession.connect("target", config_file=str(lab.config), proxy_command="sh -c 'exit 7'",
                                 connect_timeout=10)


def test_proxy_command_unknown_escape_is_refused(lab: Lab) -> None:
    with pytest.raises(ValueError, match="unknown escape '%x'"):
        _core.SshSession.connect("target", config_file=str(lab.config), proxy_command="nc %x", connect_timeout=5)


def test_proxy_command_refuses_a_user_name_with_shell_syntax(lab: Lab, tmp_path: Path) -> None:
    owned = tmp_path / "owned"
    with pytest.raises(ValueError, match="user name"):
        _core.SshSession.connect("target", user=f"x;touch {owned}", config_file=str(lab.config),
                                 proxy_command="echo %r", connect_timeout=5)
    assert not owned.exists()


def test_first_of_proxy_jump_and_proxy_command_wins(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(lab.config.read_text()
                      + host_block("both", lab.target, lab.known_hosts, "ProxyJump jump", "ProxyCommand exit 9"))
    jumps = lab.accepted(lab.jump)
    session = _core.SshSession.connect("both", config_file=str(config), connect_timeout=10)
    assert echo(session) == "through" and lab.accepted(lab.jump) == jumps + 1


# ---- copies, -J and -o ----

def rcp_cli(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    return subprocess.run([sys.executable, "-m", "rcp.cli", "--no-progress", "--rcpd-path", RCPD, *argv],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_cli_copy_through_dash_j(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"jumped" * 1000)
    jumps = lab.accepted(lab.jump)
    out = rcp_cli("--ssh-config", str(lab.config), "-J", "jump", str(tmp_path / "f"), f"target:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "dst").read_bytes() == b"jumped" * 1000
    assert lab.accepted(lab.jump) == jumps + 1


def test_api_copy_through_a_configured_proxy_jump(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"configured")
    jumps = lab.accepted(lab.jump)
    result = rcp.copy(f"via-jump:{tmp_path / 'f'}", str(tmp_path / "dst"), ssh_config=str(lab.config),
                      rcpd_path=RCPD)
    assert result.ok, result.errors
    assert (tmp_path / "dst").read_bytes() == b"configured"
    assert lab.accepted(lab.jump) == jumps + 1


def test_cli_copy_through_an_unknown_jump_host_exits_3(lab: Lab, tmp_path: Path) -> None:
    only_target = tmp_path / "known_hosts"
    only_target.write_text(lab.target.known_hosts.read_text())
    config = tmp_path / "config"
    config.write_text(lab.config.read_text().replace(str(lab.known_hosts), str(only_target)))
    (tmp_path / "f").write_bytes(b"x")
    out = rcp_cli("--ssh-config", str(config), str(tmp_path / "f"), f"via-jump:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "through the jump host jump" in out.stderr and "unknown" in out.stderr, out.stderr
    assert not (tmp_path / "dst").exists()


def test_cli_dash_o_proxy_jump_and_port(lab: Lab, tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"dash-o")
    jumps = lab.accepted(lab.jump)
    out = rcp_cli("--ssh-config", str(lab.config), "-o", "ProxyJump=jump", "-o", f"Port {lab.target.port}",
                  str(tmp_path / "f"), f"target:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "dst").read_bytes() == b"dash-o" and lab.accepted(lab.jump) == jumps + 1


@pytest.mark.parametrize("option, message", [
    ("Compression=yes", "'Compression' is not supported"),
    ("LocalForward=1 a:2", "'LocalForward' is not supported"),
    ("Port=http", "Port must be 1..65535"),
    ("StrictHostKeyChecking=maybe", "StrictHostKeyChecking must be"),
    ("ConnectTimeout=0", "ConnectTimeout must be"),
    ("BatchMode=maybe", "BatchMode must be yes or no"),
    ("ProxyJump", "expected Key=Value"),
])
def test_cli_dash_o_refuses_before_connecting(tmp_path: Path, option: str, message: str) -> None:
    # A host that does not exist: refusing must come before any connection.
    out = rcp_cli("-o", option, str(tmp_path), "no-such-host.invalid:x")
    assert out.returncode == EXIT_USAGE, out.stderr
    assert message in out.stderr, out.stderr


def test_api_ssh_options_are_checked_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="'ForwardAgent' is not supported"):
        rcp.copy(str(tmp_path), "no-such-host.invalid:x", ssh_options={"ForwardAgent": "yes"})


def test_ssh_options_apply_to_the_connection(lab: Lab) -> None:
    """-o settings reach the connection: a StrictHostKeyChecking that the config would not give, and
    UserKnownHostsFile, User, Port and IdentityFile for a host with no config entry at all."""
    empty = lab.dir / "empty_config"
    empty.write_text("")
    options = CopyOptions(ssh_config=str(empty), ssh_options={
        "user": lab.target.user, "Port": str(lab.target.port), "IdentityFile": str(lab.target.key),
        "UserKnownHostsFile": str(lab.target.known_hosts), "StrictHostKeyChecking": "yes", "ConnectTimeout": "5"})
    session = connect(Endpoint(path="x", host=lab.target.host), options)
    assert echo(session) == "through" and session.port == lab.target.port
    wrong = CopyOptions(ssh_config=str(empty), ssh_options={**options.ssh_options, "UserKnownHostsFile": "/dev/null"})
    with pytest.raises(ConnectionFailure, match="unknown"):
        connect(Endpoint(path="x", host=lab.target.host), wrong)


def test_parse_option_arg_forms() -> None:
    assert parse_option_arg("ProxyJump=a,b") == ("ProxyJump", "a,b")
    assert parse_option_arg("ProxyCommand ssh -W %h:%p gw") == ("ProxyCommand", "ssh -W %h:%p gw")
    assert parse_option_arg(" Port = 22 ") == ("Port", "22")
    assert parse_ssh_options({"port": "22"}).port == 22


def test_cli_copy_through_a_proxy_command(lab: Lab, tmp_path: Path) -> None:
    """Through a ProxyCommand the master cannot tell its own address from the
    connection (a socketpair): until the control link runs over SSH, the
    remote rcpd is told it with --master-address, and without it rcp says so."""
    relay = tmp_path / "relay.py"
    relay.write_text(RELAY)
    (tmp_path / "f").write_bytes(b"proxied")
    command = f"ProxyCommand={sys.executable} {relay} %h %p"
    out = rcp_cli("--ssh-config", str(lab.config), "-o", command, str(tmp_path / "f"), f"target:{tmp_path / 'no'}")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "not a TCP socket" in out.stderr and "--master-address" in out.stderr, out.stderr
    assert not (tmp_path / "no").exists()
    out = rcp_cli("--ssh-config", str(lab.config), "-o", command, "--master-address", "127.0.0.1",
                  str(tmp_path / "f"), f"target:{tmp_path / 'dst'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "dst").read_bytes() == b"proxied"
