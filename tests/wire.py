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
        head = bytes([0x90 | len(v)]) if len(v) < 16 else b"\xdc" + struct.pack(">H", len(v))
        return head + b"".join(pack(x) for x in v)
    raise TypeError(type(v))


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def record(relpath: str, payload: bytes, *, file_id: int = 1, root: int = 0, size: int | None = None,
           mode: int = 0o644, mtime: int = 1_600_000_000, chunk: int = 0, nchunks: int = 1, offset: int = 0,
           length: int | None = None, digest: bytes | None = None, verdict: int = 0,
           extents: list[int] | None = None) -> bytes:
    """One data-stream record: frame(chunk header) | payload | xxh3-128 | verdict,
    with every field overridable to lie. `extents` (flat [start, length, ...]):
    a sparse chunk (protocol 5), whose payload is only those extents' bytes."""
    size = len(payload) if size is None else size
    length = len(payload) if length is None else length
    fields = [Msg.CHUNK, file_id, root, relpath, size, mode, mtime, 0, chunk, nchunks, offset, length]
    header = pack(fields + ([extents] if extents is not None else []))
    return frame(header) + payload + (_core.xxh3_128(payload) if digest is None else digest) + bytes([verdict])


def unpack(data: bytes, at: int = 0) -> tuple[object, int]:
    """The inverse of pack() for what it makes: (value, offset after it); ValueError otherwise."""
    if at >= len(data):
        raise ValueError("truncated")
    b = data[at]
    if b < 0x80:
        return b, at + 1
    if 0x90 <= b <= 0x9F:
        out, at = [], at + 1
        for _ in range(b & 0x0F):
            v, at = unpack(data, at)
            out.append(v)
        return out, at
    if b in (0xC2, 0xC3):
        return b == 0xC3, at + 1
    sizes = {0xCE: (">I", 4), 0xCF: (">Q", 8), 0xD3: (">q", 8)}
    if b in sizes:
        fmt, n = sizes[b]
        if at + 1 + n > len(data):
            raise ValueError("truncated")
        return struct.unpack(fmt, data[at + 1:at + 1 + n])[0], at + 1 + n
    if b in (0xD9, 0xDA, 0xC4):
        n, start = (data[at + 1], at + 2) if b != 0xDA else (struct.unpack(">H", data[at + 1:at + 3])[0], at + 3)
        raw = data[start:start + n]
        if len(raw) != n:
            raise ValueError("truncated")
        return (raw if b == 0xC4 else raw.decode("utf-8", "surrogateescape")), start + n
    raise ValueError(f"msgpack type {b:#x} not handled")


def record_files(data: bytes) -> list[tuple[int, str, int, int]]:
    """(root, relpath, size, mode) of each well-formed record at the start of a
    data stream's bytes (kind byte excluded), for announcing them first."""
    out, at = [], 0
    while at + 4 <= len(data):
        n = struct.unpack(">I", data[at:at + 4])[0]
        try:
            header, _ = unpack(data[at + 4:at + 4 + n])
        except ValueError:
            break
        if not isinstance(header, list) or len(header) < 12 or header[0] != Msg.CHUNK:
            break
        _, _, root, rel, size, mode, *_rest = header
        if not (isinstance(root, int) and isinstance(rel, str) and isinstance(size, int) and isinstance(mode, int)):
            break
        out.append((root, rel, size, mode))
        length = header[11]
        if len(header) > 12 and isinstance(header[12], list):  # sparse: only the extents travel
            length = sum(x for x in header[12][1::2] if isinstance(x, int))
        if not isinstance(length, int):
            break
        at += 4 + n + length + 17
    return out
