"""Message types of the master <-> rcpd protocol (mirror of cpp/message.h)."""

from __future__ import annotations

from enum import IntEnum


class Msg(IntEnum):
    EXPECT_PEER = 10
    LISTENING = 11
    CONNECT_PEER = 12
    PEER_CONNECTED = 13
    SEND = 14
    RECEIVE = 15
    ABORT = 16
    PROGRESS = 20
    LOG = 21
    ERROR = 22
    RESULT = 23
    # source <-> destination
    ROOT = 30
    DIR = 31
    SYMLINK = 32
    SOURCE_ERROR = 35
    DONE = 36
    FINISHED = 37
    CHUNK = 40
