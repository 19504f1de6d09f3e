"""rcp's SSH client (libssh) against a real OpenSSH server (tests/sshd.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from rcp import _core
from sshd import keygen, public_key, start_sshd, stop_sshd


@pytest.fixture
def empty_config(tmp_path: Path) -> str:
    """An ssh config with nothing in it: only explicit options apply."""
    path = tmp_path / "empty_ssh_config"
    path.write_text("")
    return str(path)


def connect_explicit(sshd, config: str, **kw) -> _core.SshSession:
    """Connect by address and options, without the alias."""
    args = dict(port=sshd.port, user=sshd.user, config_file=config, identity_files=[str(sshd.key)],
                known_hosts_file=str(sshd.known_hosts), connect_timeout=5)
    args.update(kw)
    return _core.SshSession.connect(sshd.host, **args)


def sha256_fingerprint(key: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(key) + ".pub"], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]  # "256 SHA256:... comment (ED25519)"


def accepted_logins(sshd) -> int:
    return sshd.log().count("Accepted publickey")


def read_all_stderr(channel: _core.SshChannel, timeout: float = 5.0) -> str:
    text, deadline = "", time.monotonic() + timeout
    while time.monotonic() < deadline:
        text += channel.read_stderr(timeout=0.2)
        if channel.eof() and channel.exit_status() is not None:
            return text + channel.read_stderr()
    return text


def test_fixture_serves_plain_openssh(sshd):
    out = sshd.run("echo plain-ssh-ok")
    assert out.stdout == b"plain-ssh-ok\n"


def test_connect_via_alias_and_config_file(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config), connect_timeout=5)
    # HostName, Port and User came from the config file.
    assert (session.host, session.port, session.user) == ("127.0.0.1", sshd.port, sshd.user)
    channel = session.exec("echo via-alias")
    assert channel.read_line(timeout=5) == "via-alias"


def test_exec_stdout_stderr_and_exit_status(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("echo hello; echo err >&2; exit 3")
    assert channel.read_line(timeout=5) == "hello"
    with pytest.raises(_core.ConnectionClosedError):
        channel.read_line(timeout=5)  # end of output
    assert read_all_stderr(channel) == "err\n"
    assert channel.exit_status(timeout=5) == 3
    assert channel.eof()
    channel.close()
    assert channel.exit_status() == 3  # kept after close


def test_death_by_signal_has_no_exit_status(sshd):
    # sshd sends exit-signal, not exit-status: libssh 0.11 reports it as a code of UINT32_MAX.
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("echo up; kill -KILL $$")
    assert channel.read_line(timeout=5) == "up"
    assert channel.exit_status(timeout=5) is None
    assert channel.eof()


def test_stdin_round_trip(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("cat")
    channel.write(b"line one\nline two\n")
    assert channel.read_line(timeout=5) == "line one"
    assert channel.read_line(timeout=5) == "line two"
    channel.close_stdin()
    with pytest.raises(_core.ConnectionClosedError):
        channel.read_line(timeout=5)
    assert channel.exit_status(timeout=5) == 0
    with pytest.raises(_core.ConnectionClosedError):
        channel.write(b"after eof")


def test_large_stdin_waits_for_window(sshd):
    # Several times the SSH channel window: write_stdin has to wait for window adjusts.
    data = os.urandom(8 << 20)
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("wc -c")
    channel.write(data, timeout=30)
    channel.close_stdin()
    assert channel.read_line(timeout=30).strip() == str(len(data))


def test_last_line_without_newline_and_long_lines(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("printf 'a\\nb'")
    assert channel.read_line(timeout=5) == "a"
    assert channel.read_line(timeout=5) == "b"
    with pytest.raises(_core.ConnectionClosedError):
        channel.read_line(timeout=5)

    channel = session.exec("head -c 70000 /dev/zero | tr '\\0' x; echo")
    with pytest.raises(_core.ProtocolError, match="line over"):
        channel.read_line(timeout=5)


def test_read_line_times_out(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("sleep 10")
    start = time.monotonic()
    with pytest.raises(_core.TimeoutError):
        channel.read_line(timeout=0.3)
    assert 0.25 < time.monotonic() - start < 2.0
    assert channel.exit_status() is None and not channel.eof()
    channel.close()


def test_reader_and_status_watcher_threads(sshd):
    # The master reads a channel on one thread while another polls exit_status.
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("sleep 0.5; echo done")
    got: dict[str, object] = {}
    reader = threading.Thread(target=lambda: got.setdefault("line", channel.read_line(timeout=10)))
    start = time.monotonic()
    reader.start()
    polls = 0
    while reader.is_alive() and time.monotonic() - start < 10:
        channel.exit_status()
        polls += 1
        time.sleep(0.01)
    reader.join(timeout=10)
    assert got.get("line") == "done"
    assert time.monotonic() - start < 3.0
    assert polls > 5
    assert channel.exit_status(timeout=5) == 0


def test_channel_outlives_session_object(sshd):
    channel = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config)).exec("echo still-here")
    assert channel.read_line(timeout=5) == "still-here"


def test_closed_session_fails_channels(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("sleep 10")
    session.close()
    with pytest.raises(_core.ConnectionClosedError):
        channel.read_line(timeout=1)
    with pytest.raises(_core.ConnectionClosedError):
        session.exec("true")


def test_local_address_is_loopback(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    assert session.local_address == "127.0.0.1"
    assert session.remote_address == "127.0.0.1"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback")
def test_local_address_ipv6(tmp_path, empty_config):
    directory = tmp_path / "v6"
    directory.mkdir()
    server = start_sshd(directory, listen="::1")
    try:
        session = connect_explicit(server, empty_config)
        assert session.local_address == "::1"
        assert session.remote_address == "::1"
        assert session.exec("echo v6").read_line(timeout=5) == "v6"
    finally:
        stop_sshd(server)


def test_explicit_options_and_user_at_host(sshd, empty_config):
    session = connect_explicit(sshd, empty_config, user=None)  # the local user, as with ssh
    assert session.user == sshd.user
    session = _core.SshSession.connect(f"{sshd.user}@{sshd.host}", port=sshd.port, config_file=empty_config,
                                       identity_files=[str(sshd.key)], known_hosts_file=str(sshd.known_hosts))
    assert session.user == sshd.user
    assert session.exec("echo ok").read_line(timeout=5) == "ok"
    # No config_file: ~/.ssh/config (if any) and the system ssh_config are read.
    session = connect_explicit(sshd, None)
    assert session.exec("echo default-config").read_line(timeout=5) == "default-config"


def test_unknown_host_key_is_refused(sshd, tmp_path, empty_config):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    before = accepted_logins(sshd)
    with pytest.raises(_core.HostKeyError) as err:
        connect_explicit(sshd, empty_config, known_hosts_file=str(known_hosts))
    message = str(err.value)
    assert f"[127.0.0.1]:{sshd.port}" in message
    assert sha256_fingerprint(sshd.host_key) in message
    assert str(known_hosts) in message
    assert "unknown" in message and "accept-new" in message
    assert isinstance(err.value, _core.SshError) and isinstance(err.value, _core.RcpError)
    assert known_hosts.read_text() == ""
    assert accepted_logins(sshd) == before  # never authenticated


def test_missing_known_hosts_file_is_refused(sshd, tmp_path, empty_config):
    with pytest.raises(_core.HostKeyError, match="unknown"):
        connect_explicit(sshd, empty_config, known_hosts_file=str(tmp_path / "nope" / "known_hosts"))


def test_accept_new_records_the_key_then_connects(sshd, tmp_path, empty_config):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    session = connect_explicit(sshd, empty_config, known_hosts_file=str(known_hosts), accept_new_host_key=True)
    assert session.exec("echo accepted").read_line(timeout=5) == "accepted"
    assert public_key(sshd.host_key) in known_hosts.read_text()
    found = subprocess.run(["ssh-keygen", "-F", f"[127.0.0.1]:{sshd.port}", "-f", str(known_hosts)],
                           capture_output=True, text=True)
    assert found.returncode == 0, found.stdout + found.stderr
    # Now known: a strict connection succeeds.
    connect_explicit(sshd, empty_config, known_hosts_file=str(known_hosts))


@pytest.mark.parametrize("accept_new", [False, True])
def test_changed_host_key_is_refused(sshd, tmp_path, empty_config, accept_new):
    other = keygen(tmp_path / "other_host_key", "impostor")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {public_key(other)}\n")
    before_text, before_logins = known_hosts.read_text(), accepted_logins(sshd)
    with pytest.raises(_core.HostKeyError) as err:
        connect_explicit(sshd, empty_config, known_hosts_file=str(known_hosts), accept_new_host_key=accept_new)
    message = str(err.value)
    assert "CHANGED" in message
    assert f"[127.0.0.1]:{sshd.port}" in message
    assert sha256_fingerprint(sshd.host_key) in message
    assert "ssh-keygen -R" in message and str(known_hosts) in message
    assert known_hosts.read_text() == before_text  # accept-new never replaces a key
    assert accepted_logins(sshd) == before_logins


def test_changed_host_key_via_alias(sshd, tmp_path):
    other = keygen(tmp_path / "other_host_key", "impostor")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {public_key(other)}\n")
    with pytest.raises(_core.HostKeyError, match=f"{sshd.alias} .*CHANGED"):
        # known_hosts_file overrides the config's UserKnownHostsFile.
        _core.SshSession.connect(sshd.alias, config_file=str(sshd.config), known_hosts_file=str(known_hosts))


def test_wrong_user_key_is_refused(sshd, tmp_path, empty_config):
    wrong = keygen(tmp_path / "wrong_key", "not-authorized")
    with pytest.raises(_core.SshAuthError) as err:
        connect_explicit(sshd, empty_config, identity_files=[str(wrong), str(tmp_path / "missing_key")])
    message = str(err.value)
    assert f"{sshd.user}@[127.0.0.1]:{sshd.port}" in message
    assert str(wrong) in message
    assert "missing_key (No such file or directory)" in message
    assert "server accepts: publickey" in message
    assert isinstance(err.value, _core.SshError)


def test_shell_quote_keeps_metacharacters_literal(sshd, tmp_path):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    payload = f"a;touch {tmp_path}/x$(id -u)"
    channel = session.exec("printf '%s\\n' " + _core.shell_quote(payload))
    assert channel.read_line(timeout=5) == payload
    assert channel.exit_status(timeout=5) == 0
    assert list(tmp_path.iterdir()) == []
    # The payload is live when not quoted, so the check above means something.
    channel = session.exec("printf '%s\\n' " + payload)
    assert channel.exit_status(timeout=5) == 0
    assert [p.name for p in tmp_path.iterdir()] == [f"x{os.getuid()}"]


def test_shell_quote_and_host_checks():
    assert _core.shell_quote("") == "''"
    assert _core.shell_quote("a'b") == "'a'\\''b'"
    assert _core.shell_quote("plain-word") == "plain-word"
    with pytest.raises(ValueError):
        _core.check_host_operand("-oProxyCommand=x")
    with pytest.raises(ValueError, match="starts with '-'"):
        _core.SshSession.connect("-oProxyCommand=touch /tmp/pwned")
    with pytest.raises(ValueError):
        _core.SshSession.connect("")


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="config"):
        _core.SshSession.connect("localhost", config_file=str(tmp_path / "absent"))


def test_connection_refused_fails_fast(empty_config):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(_core.SshError) as err:
        _core.SshSession.connect("127.0.0.1", port=port, config_file=empty_config, connect_timeout=5)
    assert time.monotonic() - start < 3.0
    assert not isinstance(err.value, (_core.HostKeyError, _core.SshAuthError))
    assert f"127.0.0.1:{port}" in str(err.value)


def test_silent_server_times_out(empty_config):
    # TCP accepts (backlog) but no SSH banner ever comes: the connect timeout bounds the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        start = time.monotonic()
        with pytest.raises(_core.SshError, match="[Tt]imeout"):
            _core.SshSession.connect("127.0.0.1", port=silent.getsockname()[1], config_file=empty_config,
                                     connect_timeout=1)
        assert time.monotonic() - start < 4.0


def test_write_to_a_command_not_reading_times_out(sshd):
    session = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    channel = session.exec("sleep 10")  # never reads stdin: the window fills up
    start = time.monotonic()
    with pytest.raises(_core.TimeoutError):
        channel.write(b"\0" * (64 << 20), timeout=1.0)
    assert time.monotonic() - start < 4.0
    channel.close()


# ---- StrictHostKeyChecking, as rcp resolves it from the ssh config ----

def config_with(sshd, tmp_path: Path, known_hosts: Path, strict: str | None) -> Path:
    """The fixture's config with another known_hosts file and StrictHostKeyChecking value (None: unset)."""
    text = sshd.config.read_text().replace(str(sshd.known_hosts), str(known_hosts))
    text = text.replace("  StrictHostKeyChecking yes\n", f"  StrictHostKeyChecking {strict}\n" if strict else "")
    path = tmp_path / "ssh_config"
    path.write_text(text)
    return path


def forged_known_hosts(sshd, tmp_path: Path) -> Path:
    other = keygen(tmp_path / "other_host_key", "impostor")
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{sshd.port} {public_key(other)}\n")
    return known_hosts


@pytest.mark.parametrize("strict", ["yes", "no", "accept-new", "ask", "No", None])
def test_changed_host_key_is_refused_whatever_the_config_says(sshd, tmp_path, strict):
    known_hosts = forged_known_hosts(sshd, tmp_path)
    config = config_with(sshd, tmp_path, known_hosts, strict)
    before_text, before_logins = known_hosts.read_text(), accepted_logins(sshd)
    asked: list[str] = []
    with pytest.raises(_core.HostKeyError) as err:
        _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5,
                                 confirm=lambda q: asked.append(q) or True)
    message = str(err.value)
    assert "CHANGED" in message and sha256_fingerprint(sshd.host_key) in message, message
    assert f"{sshd.alias} ([127.0.0.1]:{sshd.port})" in message
    assert known_hosts.read_text() == before_text
    assert accepted_logins(sshd) == before_logins
    assert asked == []  # a changed key is never even offered


@pytest.mark.parametrize("strict", ["no", "accept-new"])
def test_accept_new_and_no_record_an_unknown_key_with_a_warning(sshd, tmp_path, strict):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = config_with(sshd, tmp_path, known_hosts, strict)
    warnings: list[str] = []
    session = _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5,
                                       warn=warnings.append)
    assert session.exec("echo in").read_line(timeout=5) == "in"
    assert public_key(sshd.host_key) in known_hosts.read_text()
    assert len(warnings) == 1, warnings
    assert f"[127.0.0.1]:{sshd.port}" in warnings[0] and sha256_fingerprint(sshd.host_key) in warnings[0]
    assert str(known_hosts) in warnings[0]
    # Recorded: the next connection is silent.
    _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5, warn=warnings.append)
    assert len(warnings) == 1


@pytest.mark.parametrize("strict", ["yes", None])
def test_yes_and_unset_refuse_an_unknown_key(sshd, tmp_path, strict):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = config_with(sshd, tmp_path, known_hosts, strict)
    with pytest.raises(_core.HostKeyError, match="unknown.*accept-new"):
        _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5, warn=pytest.fail)
    assert known_hosts.read_text() == ""


def test_ask_without_a_terminal_refuses_and_says_how_to_fix_it(sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = config_with(sshd, tmp_path, known_hosts, "ask")
    before = accepted_logins(sshd)
    with pytest.raises(_core.HostKeyError) as err:
        _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5)  # confirm=None: no tty
    message = str(err.value)
    assert "StrictHostKeyChecking ask" in message and "terminal" in message, message
    assert sha256_fingerprint(sshd.host_key) in message and "accept-new" in message
    assert known_hosts.read_text() == "" and accepted_logins(sshd) == before


@pytest.mark.parametrize("answer", [True, False])
def test_ask_names_host_and_fingerprint_and_obeys_the_answer(sshd, tmp_path, answer):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = config_with(sshd, tmp_path, known_hosts, "ask")
    asked: list[str] = []

    def confirm(question: str) -> bool:
        asked.append(question)
        return answer

    if answer:
        session = _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5, confirm=confirm)
        assert session.exec("echo yes").read_line(timeout=5) == "yes"
        assert public_key(sshd.host_key) in known_hosts.read_text()
    else:
        with pytest.raises(_core.HostKeyError, match="not accepted"):
            _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5, confirm=confirm)
        assert known_hosts.read_text() == ""
    assert len(asked) == 1
    assert f"[127.0.0.1]:{sshd.port}" in asked[0] and sha256_fingerprint(sshd.host_key) in asked[0]
    assert "(yes/no)" in asked[0]


def test_exception_in_the_prompt_reaches_the_caller(sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = config_with(sshd, tmp_path, known_hosts, "ask")

    def interrupted(question: str) -> bool:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5, confirm=interrupted)
    assert known_hosts.read_text() == ""


def test_strict_host_key_checking_follows_host_blocks(sshd, tmp_path):
    """First value wins, per Host block matching the name as given, as ssh reads it."""
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    base = config_with(sshd, tmp_path, known_hosts, "yes").read_text()
    config = tmp_path / "blocks"
    # A block for another host and a negated pattern must not apply; a '*' block after the alias's does not win.
    config.write_text("Host other-host\n  StrictHostKeyChecking accept-new\n"
                      f"Host * !{sshd.alias}\n  StrictHostKeyChecking accept-new\n"
                      + base + "Host *\n  StrictHostKeyChecking accept-new\n")
    with pytest.raises(_core.HostKeyError, match="unknown"):
        _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5)
    config.write_text(f"Host nomatch {sshd.alias.upper()[:3]}*\n  StrictHostKeyChecking=accept-new\n" + base)
    _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5)
    assert public_key(sshd.host_key) in known_hosts.read_text()


def test_explicit_policy_and_flag_override_the_config(sshd, tmp_path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("")
    config = config_with(sshd, tmp_path, known_hosts, "no")
    with pytest.raises(_core.HostKeyError, match="unknown"):
        _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5,
                                 strict_host_key_checking="yes")
    config = config_with(sshd, tmp_path, known_hosts, "yes")
    _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5, accept_new_host_key=True)
    assert public_key(sshd.host_key) in known_hosts.read_text()
    with pytest.raises(ValueError, match="accept-new"):
        _core.SshSession.connect(sshd.alias, config_file=str(config), strict_host_key_checking="maybe")


def test_bad_strict_host_key_checking_value_in_config(sshd, tmp_path):
    config = config_with(sshd, tmp_path, sshd.known_hosts, "sometimes")
    with pytest.raises(ValueError, match="StrictHostKeyChecking.*sometimes"):
        _core.SshSession.connect(sshd.alias, config_file=str(config), connect_timeout=5)


def test_host_key_is_checked_before_none_authentication(tmp_path, empty_config):
    """A server that lets anyone in with the "none" method must still prove its
    host key first: unknown or changed, the connection ends before any
    authentication request, whatever StrictHostKeyChecking says."""
    if os.geteuid() != 0:
        pytest.fail("needs root: sshd with an empty root password in a private mount namespace, as CI runs it")
    directory = tmp_path / "none-sshd"
    directory.mkdir()
    server = start_sshd(directory, allow_none_auth=True)
    try:
        def connect(known_hosts: Path, config: str = empty_config) -> _core.SshSession:
            # No identity file and no agent: only "none" can let us in.
            return _core.SshSession.connect(server.host, port=server.port, user="root", config_file=config,
                                            known_hosts_file=str(known_hosts), connect_timeout=5)

        session = connect(server.known_hosts)  # the server really accepts "none"
        assert session.exec("echo in").read_line(timeout=5) == "in"
        session.close()
        assert server.log().count("Accepted none for root") == 1, server.log()

        unknown = tmp_path / "unknown_hosts"
        unknown.write_text("")
        with pytest.raises(_core.HostKeyError, match="unknown"):
            connect(unknown)
        forged = tmp_path / "forged_hosts"
        forged.write_text(f"[{server.host}]:{server.port} {public_key(keygen(tmp_path / 'other', 'impostor'))}\n")
        lax = tmp_path / "lax_config"
        lax.write_text("Host *\n  StrictHostKeyChecking no\n")
        with pytest.raises(_core.HostKeyError, match="CHANGED"):
            connect(forged, str(lax))
        assert unknown.read_text() == ""
        assert server.log().count("Accepted none for root") == 1, server.log()
    finally:
        stop_sshd(server)
