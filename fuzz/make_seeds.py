#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ (checked in; rerun to regenerate).

A minimal msgpack encoder keeps this free of dependencies: the seeds only need
to be well-formed protocol messages for the fuzzers to start from."""

from __future__ import annotations

import hashlib
import hmac
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def pack(v: object) -> bytes:
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
        b = v.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(v, bytes):
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        assert len(v) < 16
        return bytes([0x90 | len(v)]) + b"".join(pack(x) for x in v)
    raise TypeError(type(v))


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


FP = "ab" * 32
MESSAGES = {
    "hello": [1, 1, "source", FP, "rcp 0.1.0"],
    "listening": [11, 50000, ["127.0.0.1", "::1"]],
    "connect_peer": [12, ["198.19.0.1"], 50000, FP],
    "receive": [15, "/backup", 1, True, False],
    "result": [23, 3, 3000, 1, 0, 0, 1, [["a/b", "No such file"]]],
    "root": [30, 0, "data", "d", ""],
    "dir": [31, 0, "a/b", 0o755, 1_600_000_000, 5],
    "symlink": [32, 0, "a/link", "../target", 1_600_000_000, 0],
    "chunk": [40, 7, 0, "dir/file.bin", 1 << 20, 0o644, 1_600_000_000, 123, 0, 1, 0, 1 << 20],
    "chunk_huge": [40, 7, 0, "x", (1 << 64) - 1, 0o4755, -1, 0, 0, (1 << 32) - 1, 0, (1 << 64) - 1],
    "escape_name": [30, 0, "../../etc", "f", ""],
}
PATHS = ["a/b/c", "dir/file", "../x", "a/../../x", "/etc/x", "", ".", "..", "a\0b", "a//b", "a/", "ünï/cødé",
         "-leading", "x" * 300]


def main() -> None:
    out = HERE / "corpus"
    for name in ("fuzz_frame", "fuzz_message", "fuzz_path"):
        (out / name).mkdir(parents=True, exist_ok=True)
    key = bytes(32)
    for name, msg in MESSAGES.items():
        body = pack(msg)
        (out / "fuzz_message" / name).write_bytes(body)
        # Sealed as the control channel does: tag over direction, sequence, message.
        tag = hmac.new(key, bytes([1]) + struct.pack(">Q", 0) + body, hashlib.sha256).digest()
        (out / "fuzz_frame" / name).write_bytes(b"\x40\x03" + frame(body + tag) + frame(body)[:5])
    (out / "fuzz_frame" / "oversize").write_bytes(b"\x00\x01" + b"\xff\xff\xff\xff")
    for i, p in enumerate(PATHS):
        (out / "fuzz_path" / f"path-{i:02d}").write_bytes(p.encode())


if __name__ == "__main__":
    main()
