"""What SSH authentication asks the user: a key's passphrase and a password,
on the terminal (a pty) or through the API's prompt callback, and a clear
failure when there is nobody to ask. Against a real OpenSSH server
(tests/sshd.py).

Keyboard-interactive is not tested end to end: OpenSSH's sshd offers it on
Linux only through PAM, which the fixture cannot use without real accounts."""

from __future__ import annotations

import os
import select
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
from rcp.errors import EXIT_CONNECTION, EXIT_OK, ConnectionFailure
from rcp.model import CopyOptions, Endpoint
from rcp.ssh import connect
from sshd import Sshd, public_key, start_sshd, stop_sshd

RCPD = str(rcp.daemon.rcpd_path())
PASSPHRASE = "open sesame"


@dataclass
class Keyed:
    sshd: Sshd
    key: Path  # passphrase-protected, authorized
    config: Path  # Host enc: only that key (as IdentityFile), no BatchMode
    batch_config: Path  # the same with BatchMode yes


@pytest.fixture(scope="module")
def keyed() -> Iterator[Keyed]:
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    server = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-sshd-enc-")))
    try:
        key = server.dir / "id_encrypted"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-C", "enc", "-f", str(key)],
                       check=True, capture_output=True, timeout=30)
        with open(server.dir / "authorized_keys", "a") as f:
            f.write(public_key(key) + "\n")
        block = ["Host enc", f"  HostName {server.host}", f"  Port {server.port}", f"  User {server.user}",
                 f"  IdentityFile {key}", f"  UserKnownHostsFile {server.known_hosts}",
                 "  GlobalKnownHostsFile /dev/null", "  IdentitiesOnly yes", ""]
        config = server.dir / "enc_config"
        config.write_text("\n".join(block))
        batch = server.dir / "enc_batch_config"
        batch.write_text("\n".join(block[:-1] + ["  BatchMode yes", ""]))
        yield Keyed(server, key, config, batch)
    finally:
        stop_sshd(server)
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent


class Answers:
    """A prompt callback that records what it was asked."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, bool]] = []

    def __call__(self, question: str, echo: bool) -> str | None:
        self.asked.append((question, echo))
        return self.answers.pop(0) if self.answers else None


def echo_through(session: _core.SshSession) -> str:
    return session.exec("echo in").read_line(timeout=10)


def test_prompt_supplies_an_explicit_keys_passphrase(keyed: Keyed, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("")
    prompt = Answers(PASSPHRASE)
    session = _core.SshSession.connect(
        keyed.sshd.host, port=keyed.sshd.port, user=keyed.sshd.user, config_file=str(empty),
        identity_files=[str(keyed.key)], known_hosts_file=str(keyed.sshd.known_hosts), prompt=prompt,
        connect_timeout=10)
    assert echo_through(session) == "in"
    assert prompt.asked == [(f"Enter passphrase for key '{keyed.key}': ", False)]


def test_prompt_supplies_a_configured_keys_passphrase(keyed: Keyed) -> None:
    prompt = Answers(PASSPHRASE)
    session = _core.SshSession.connect("enc", config_file=str(keyed.config), prompt=prompt, connect_timeout=10)
    assert echo_through(session) == "in"
    assert len(prompt.asked) == 1 and "passphrase" in prompt.asked[0][0] and prompt.asked[0][1] is False


def test_wrong_passphrase_is_asked_again_then_fails(keyed: Keyed) -> None:
    prompt = Answers("nope", "still no", "no again")
    with pytest.raises(_core.SshAuthError, match="wrong passphrase"):
        _core.SshSession.connect("enc", config_file=str(keyed.config), identity_files=[str(keyed.key)],
                                 prompt=prompt, connect_timeout=10)
    assert len([q for q, _ in prompt.asked if str(keyed.key) in q]) == 3


def test_second_try_of_the_passphrase_works(keyed: Keyed) -> None:
    prompt = Answers("typo", PASSPHRASE)
    session = _core.SshSession.connect("enc", config_file=str(keyed.config), identity_files=[str(keyed.key)],
                                       prompt=prompt, connect_timeout=10)
    assert echo_through(session) == "in" and len(prompt.asked) == 2


def test_without_a_prompt_the_error_says_why(keyed: Keyed) -> None:
    with pytest.raises(_core.SshAuthError) as err:
        _core.SshSession.connect("enc", config_file=str(keyed.config), identity_files=[str(keyed.key)],
                                 connect_timeout=10)
    message = str(err.value)
    assert f"{keyed.key} (passphrase-protected, and no terminal to ask on" in message, message


def test_batch_mode_never_asks(keyed: Keyed) -> None:
    prompt = Answers(PASSPHRASE)
    with pytest.raises(_core.SshAuthError, match="passphrase-protected"):
        _core.SshSession.connect("enc", config_file=str(keyed.batch_config), identity_files=[str(keyed.key)],
                                 prompt=prompt, connect_timeout=10)
    assert prompt.asked == []


def test_dash_o_batch_mode_never_asks(keyed: Keyed) -> None:
    prompt = Answers(PASSPHRASE)
    options = CopyOptions(ssh_config=str(keyed.config), identity_files=[str(keyed.key)],
                          ssh_options={"BatchMode": "yes"}, prompt=prompt)
    with pytest.raises(ConnectionFailure, match="passphrase-protected"):
        connect(Endpoint(path="x", host="enc"), options)
    assert prompt.asked == []
    # The same without BatchMode: the callback answers.
    session = connect(Endpoint(path="x", host="enc"), CopyOptions(ssh_config=str(keyed.config), prompt=prompt))
    assert echo_through(session) == "in" and len(prompt.asked) == 1


def test_an_exception_in_the_prompt_reaches_the_caller(keyed: Keyed) -> None:
    def interrupted(question: str, echo: bool) -> str | None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _core.SshSession.connect("enc", config_file=str(keyed.config), prompt=interrupted, connect_timeout=10)


def test_api_copy_with_a_prompt_callback(keyed: Keyed, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("asked nicely")
    prompt = Answers(PASSPHRASE)
    result = rcp.copy(str(tmp_path / "f"), f"enc:{tmp_path / 'dst'}", ssh_config=str(keyed.config),
                      rcpd_path=RCPD, prompt=prompt)
    assert result.ok, result.errors
    assert (tmp_path / "dst").read_text() == "asked nicely" and len(prompt.asked) == 1


def cli(keyed: Keyed, tmp_path: Path) -> list[str]:
    return [sys.executable, "-m", "rcp.cli", "--no-progress", "--ssh-config", str(keyed.config), "--rcpd-path", RCPD,
            "-i", str(keyed.key), str(tmp_path / "f"), f"enc:{tmp_path / 'dst'}"]


def test_cli_asks_for_the_passphrase_on_the_terminal(keyed: Keyed, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("typed")
    master, slave = os.openpty()
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    proc = subprocess.Popen(cli(keyed, tmp_path), stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    os.close(slave)
    try:
        assert proc.stderr is not None
        seen = b""
        deadline = time.monotonic() + 30
        while b"Enter passphrase" not in seen and time.monotonic() < deadline:
            if select.select([proc.stderr], [], [], 0.5)[0]:
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        assert f"Enter passphrase for key '{keyed.key}': ".encode() in seen, seen
        os.write(master, PASSPHRASE.encode() + b"\n")
        rest = proc.stderr.read().decode()
        proc.wait(timeout=60)
        echoed = b""
        while select.select([master], [], [], 0.2)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            echoed += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
        os.close(master)
    assert proc.returncode == EXIT_OK, rest
    assert (tmp_path / "dst").read_text() == "typed"
    assert PASSPHRASE.encode() not in echoed  # not shown on the terminal


def test_cli_without_a_terminal_fails_clearly(keyed: Keyed, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    out = subprocess.run(cli(keyed, tmp_path), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "passphrase-protected, and no terminal to ask on" in out.stderr, out.stderr
    assert "Enter passphrase" not in out.stderr
    assert not (tmp_path / "dst").exists()


# ---- password authentication (root only: the fixture's private /etc/shadow) ----

@pytest.fixture
def password_sshd(tmp_path: Path) -> Iterator[Sshd]:
    if os.geteuid() != 0:
        pytest.skip("a password login needs root: the fixture swaps /etc/shadow in a private mount namespace")
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    (tmp_path / "pw").mkdir()
    server = start_sshd(tmp_path / "pw", password="letmein-test")
    try:
        yield server
    finally:
        stop_sshd(server)
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent


def password_config(server: Sshd, tmp_path: Path, *extra: str) -> Path:
    config = tmp_path / "pw_config"
    config.write_text("\n".join(["Host pw", f"  HostName {server.host}", f"  Port {server.port}", "  User root",
                                 f"  UserKnownHostsFile {server.known_hosts}", "  IdentitiesOnly yes",
                                 "  IdentityFile /dev/null", *[f"  {e}" for e in extra], ""]))
    return config


def test_password_is_asked_and_used(password_sshd: Sshd, tmp_path: Path) -> None:
    prompt = Answers("wrong", "letmein-test")
    session = _core.SshSession.connect("pw", config_file=str(password_config(password_sshd, tmp_path)),
                                       prompt=prompt, connect_timeout=10)
    assert echo_through(session) == "in"
    assert prompt.asked == [(f"root@[{password_sshd.host}]:{password_sshd.port}'s password: ", False)] * 2


def test_password_authentication_no_in_the_config_never_asks(password_sshd: Sshd, tmp_path: Path) -> None:
    prompt = Answers("letmein-test")
    config = password_config(password_sshd, tmp_path, "PasswordAuthentication no")
    with pytest.raises(_core.SshAuthError, match="permission denied"):
        _core.SshSession.connect("pw", config_file=str(config), prompt=prompt, connect_timeout=10)
    assert prompt.asked == []


def test_password_without_a_prompt_says_why(password_sshd: Sshd, tmp_path: Path) -> None:
    with pytest.raises(_core.SshAuthError, match=r"password \(no terminal to ask on\)"):
        _core.SshSession.connect("pw", config_file=str(password_config(password_sshd, tmp_path)),
                                 connect_timeout=10)


def test_dash_o_password_authentication_no_never_asks(password_sshd: Sshd, tmp_path: Path) -> None:
    prompt = Answers("letmein-test")
    options = CopyOptions(ssh_config=str(password_config(password_sshd, tmp_path)), prompt=prompt,
                          ssh_options={"PasswordAuthentication": "no"})
    with pytest.raises(ConnectionFailure, match="permission denied"):
        connect(Endpoint(path="x", host="pw"), options)
    assert prompt.asked == []
