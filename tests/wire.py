"""Hand-made protocol bytes for tests that play a malicious peer, and for the
fuzz seeds: a minimal msgpack encoder, frames and data-stream records."""

from __future__ import annotations

import struct

from rcp import _core
from rcp.protocol import Msg


def pack(v: object) -> bytes:
    """msgpack for the types the protocol uses (ints up to 64 bits, str, bytes, lists)."""
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if 0 <= v < 1 << 32:
            return b"\xce" + struct.pack(">I", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, str):
        v = v.encode("utf-8", "surrogateescape")
        return (b"\xd9" + bytes([len(v)]) if len(v) < 256 else b"\xda" + struct.pack(">H", len(v))) + v
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        assert len(v) < 16
        return bytes([0x90 | len(v)]) + b"".join(pack(x) for x in v)
    raise TypeError(type(v))


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def record(relpath: str, payload: bytes, *, file_id: int = 1, root: int = 0, size: int | None = None,
           mode: int = 0o644, mtime: int = 1_600_000_000, chunk: int = 0, nchunks: int = 1, offset: int = 0,
           length: int | None = None, digest: bytes | None = None, verdict: int = 0) -> bytes:
    """One data-stream record: frame(chunk header) | payload | xxh3-128 | verdict,
    with every field overridable to lie."""
    size = len(payload) if size is None else size
    length = len(payload) if length is None else length
    header = pack([Msg.CHUNK, file_id, root, relpath, size, mode, mtime, 0, chunk, nchunks, offset, length])
    return frame(header) + payload + (_core.xxh3_128(payload) if digest is None else digest) + bytes([verdict])
