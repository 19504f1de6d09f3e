"""Message types of the master <-> rcpd protocol, from rcp._core (the C++
definition in cpp/wire/message.h; docs/protocol.md gives their fields)."""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

from rcp import _core

if TYPE_CHECKING:
    # The stub describes the table as an IntEnum (stubtest checks it against the module).
    Msg = _core.MsgType
else:
    # An IntEnum (names for messages, plain ints on the wire) built from the one table.
    Msg = IntEnum("Msg", {name: int(value) for name, value in _core.MsgType.__members__.items()})
