"""rcp.protocol.Msg is built from rcp._core's table, not copied by hand."""

from __future__ import annotations

import pytest

from rcp import _core
from rcp.daemon import parse_hello
from rcp.errors import ConnectionFailure
from rcp.protocol import Msg


def test_msg_is_the_core_table() -> None:
    assert {m.name: int(m) for m in Msg} == {name: int(v) for name, v in _core.MsgType.__members__.items()}


def test_msg_values_are_the_wire_numbers() -> None:
    # docs/protocol.md; a change here is a protocol change (kProtocolVersion).
    assert (Msg.EXPECT_PEER, Msg.LISTENING, Msg.CONNECT_PEER, Msg.PEER_CONNECTED, Msg.SEND, Msg.RECEIVE) == (
        10, 11, 12, 13, 14, 15)
    assert (Msg.ABORT, Msg.PROGRESS, Msg.LOG, Msg.ERROR, Msg.RESULT) == (16, 20, 21, 22, 23)
    assert (Msg.ROOT, Msg.DIR, Msg.SYMLINK, Msg.SOURCE_ERROR, Msg.DONE, Msg.FINISHED, Msg.CHUNK) == (
        30, 31, 32, 35, 36, 37, 40)
    assert (Msg.FILES, Msg.VERDICTS, Msg.PLAN) == (33, 38, 24)
    assert Msg(21).name == "LOG" and Msg.RECEIVE == 15


def test_an_rcpd_from_before_the_transport_field_is_refused() -> None:
    """A protocol-2 rcpd ignores expect_peer's and connect_peer's transport
    (--relay): a relayed copy would wait on a QUIC listener, or fail on port
    0. The master refuses it at its hello line instead, saying why."""
    assert _core.PROTOCOL_VERSION >= 3
    with pytest.raises(ConnectionFailure, match=f"speaks protocol 2, this rcp .* speaks {_core.PROTOCOL_VERSION}"):
        parse_hello(f"RCPD 2 {'a' * 64} 0.1.0", "test host")
