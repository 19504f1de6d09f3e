"""rcp._core over real UDP sockets on loopback: pinning, messages, bulk data."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time

import pytest

import rcp


def test_certificate_fingerprint_is_sha256_of_der() -> None:
    cert = rcp.Certificate.generate()
    assert cert.fingerprint == hashlib.sha256(cert.der).hexdigest()
    assert rcp.Certificate.generate().fingerprint != cert.fingerprint


def test_pinned_handshake_and_messages(peers) -> None:
    server, client, accepted = peers.pair()
    assert client.peer_fingerprint == peers.server_cert.fingerprint
    assert accepted.peer_fingerprint == peers.client_cert.fingerprint
    assert accepted.peer_role == "client"
    client.send_message({"op": "hello", "n": 1, "blob": b"\x00\x01", "list": [1, -2, 3.5, None, True]})
    assert accepted.recv_message(timeout=3) == {"op": "hello", "n": 1, "blob": b"\x00\x01",
                                                "list": [1, -2, 3.5, None, True]}
    accepted.send_message(["reply"])
    assert client.recv_message(timeout=3) == ["reply"]


def test_wrong_server_fingerprint_refused_by_client(peers) -> None:
    server = peers.server()
    stranger = rcp.Certificate.generate()
    with pytest.raises(rcp.PinMismatchError, match="does not match"):
        peers.connect(server, pinned=stranger.fingerprint)


def test_wrong_client_fingerprint_refused_by_server(peers) -> None:
    stranger = rcp.Certificate.generate()
    server = peers.server(pinned=[stranger.fingerprint])
    with pytest.raises(rcp.PinMismatchError, match="refused our certificate"):
        peers.connect(server)
    deadline = time.monotonic() + 3
    while server.rejected == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.rejected >= 1
    assert "does not match the pinned fingerprint" in server.last_rejection
    with pytest.raises(rcp.TimeoutError):
        server.accept(timeout=0.2)


def test_wrong_session_key_fails_authentication(peers) -> None:
    server = peers.server()
    with pytest.raises(rcp.AuthenticationError):
        peers.connect(server, key=os.urandom(32))


def test_bad_arguments_are_value_errors(peers) -> None:
    with pytest.raises(ValueError, match="64 hex digits"):
        rcp.QuicServer(peers.server_cert, ["nothex"], peers.key)
    with pytest.raises(ValueError, match="32 bytes"):
        rcp.QuicServer(peers.server_cert, [peers.client_cert.fingerprint], b"short")
    opts = rcp.QuicOptions()
    with pytest.raises(ValueError, match="congestion control"):
        opts.congestion_control = "vegas"
    opts.congestion_control = "bbr"
    assert opts.congestion_control == "bbr"


def _transfer(sender: rcp.Link, receiver: rcp.Link, data: bytes) -> bytes:
    errors: list[BaseException] = []

    def send() -> None:
        try:
            sid = sender.open_data()
            view = memoryview(data)
            for off in range(0, len(data), 4 << 20):
                sender.write(sid, view[off:off + (4 << 20)])
            sender.finish(sid)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    t = threading.Thread(target=send)
    t.start()
    sid = receiver.accept_data(timeout=10)
    parts = []
    while chunk := receiver.read(sid, 1 << 20, timeout=30):
        parts.append(chunk)
    t.join(timeout=30)
    assert not errors, errors
    return b"".join(parts)


def test_64mib_transfer_intact(peers) -> None:
    server, client, accepted = peers.pair()
    data = os.urandom(64 << 20)
    got = _transfer(client, accepted, data)
    assert len(got) == len(data)
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
    stats = client.stats()
    assert stats["bytes_sent"] > len(data)
    assert stats["max_udp_payload"] >= 1200


def test_server_to_client_transfer_over_ipv6(peers) -> None:
    server, client, accepted = peers.pair(host="::1")
    data = os.urandom(3 << 20)
    assert _transfer(accepted, client, data) == data


def test_close_reaches_peer(peers) -> None:
    server, client, accepted = peers.pair()
    client.close("finished")
    with pytest.raises(rcp.ConnectionClosedError, match="finished"):
        accepted.recv_message(timeout=3)


def test_keylog_file_written(peers, tmp_path) -> None:
    keylog = tmp_path / "keys.log"
    opts = peers.options()
    opts.keylog_file = str(keylog)
    server = peers.server()
    t = threading.Thread(target=lambda: server.accept(timeout=5))
    t.start()
    rcp.connect(server.host, server.port, peers.client_cert, peers.server_cert.fingerprint, peers.key, options=opts)
    t.join(timeout=10)
    text = keylog.read_text()
    assert "CLIENT_HANDSHAKE_TRAFFIC_SECRET" in text
    assert "CLIENT_TRAFFIC_SECRET_0" in text


@pytest.mark.parametrize("how", ["option", "SSLKEYLOGFILE"])
def test_keylog_file_is_created_owner_only(peers, tmp_path, monkeypatch, how) -> None:
    """The key log decrypts every captured session: 0600 whatever the umask."""
    keylog = tmp_path / "keys.log"
    opts = peers.options()
    if how == "option":
        opts.keylog_file = str(keylog)
    else:
        monkeypatch.setenv("SSLKEYLOGFILE", str(keylog))
    old_umask = os.umask(0o022)
    try:
        server = peers.server()
        t = threading.Thread(target=lambda: server.accept(timeout=5))
        t.start()
        rcp.connect(server.host, server.port, peers.client_cert, peers.server_cert.fingerprint, peers.key,
                    options=opts)
        t.join(timeout=10)
    finally:
        os.umask(old_umask)
    assert "CLIENT_TRAFFIC_SECRET_0" in keylog.read_text()
    assert stat.S_IMODE(keylog.stat().st_mode) == 0o600


@pytest.mark.parametrize("planted", ["world-readable", "symlink", "other-owner"])
def test_a_keylog_file_others_can_read_is_refused(peers, tmp_path, planted: str) -> None:
    """Another local user may have made the file first: the secrets never go into it."""
    keylog = tmp_path / "keys.log"
    if planted == "symlink":
        (tmp_path / "elsewhere").write_text("")
        os.chmod(tmp_path / "elsewhere", 0o600)
        keylog.symlink_to(tmp_path / "elsewhere")
    else:
        keylog.write_text("")
        os.chmod(keylog, 0o666 if planted == "world-readable" else 0o600)
        if planted == "other-owner":
            os.chown(keylog, 65534, 65534)
    opts = peers.options()
    opts.keylog_file = str(keylog)
    server = peers.server()
    with pytest.raises(rcp.RcpError, match="SSLKEYLOGFILE"):
        rcp.connect(server.host, server.port, peers.client_cert, peers.server_cert.fingerprint, peers.key,
                    options=opts)
    assert "SECRET" not in (tmp_path / ("elsewhere" if planted == "symlink" else "keys.log")).read_text()


def test_streams_queued_behind_a_busy_reader_cannot_starve_it(peers) -> None:
    """Eight writers fill eight streams at once through a 2 MiB window while a
    single reader takes the streams one by one. With max_uni_streams = 1 the
    next stream opens only when the previous one has been read, so the window
    never fills with data nobody is reading (the head-of-line deadlock)."""
    opts = peers.options()
    opts.stream_window = opts.max_stream_window = 1 << 20
    opts.conn_window = opts.max_conn_window = 2 << 20
    opts.max_uni_streams = 1
    server = rcp.QuicServer(peers.server_cert, [peers.client_cert.fingerprint], peers.key, host="127.0.0.1",
                            options=opts)
    accepted: dict[str, rcp.Link] = {}
    t = threading.Thread(target=lambda: accepted.setdefault("link", server.accept(timeout=5.0)))
    t.start()
    client = peers.connect(server)
    t.join(timeout=10)
    receiver = accepted["link"]
    payloads = [bytes([i]) * (768 << 10) for i in range(8)]
    errors: list[BaseException] = []

    def write(data: bytes) -> None:
        try:
            sid = client.open_data()
            for off in range(0, len(data), 64 << 10):
                client.write(sid, data[off:off + (64 << 10)])
            client.finish(sid)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writers = [threading.Thread(target=write, args=(p,)) for p in payloads]
    for w in writers:
        w.start()
    got = []
    for _ in payloads:
        sid = receiver.accept_data(timeout=10.0)
        chunks = []
        while (piece := receiver.read(sid, 1 << 20, timeout=10.0)):
            chunks.append(piece)
        got.append(b"".join(chunks))
    for w in writers:
        w.join(timeout=10)
    assert not errors, errors
    assert sorted(got) == sorted(payloads)
