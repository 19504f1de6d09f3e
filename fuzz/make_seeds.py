#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/ (checked in; rerun to regenerate
with the venv's python, as it uses tests/wire.py): well-formed protocol
messages and hostile ones for the fuzzers to start from."""

from __future__ import annotations

import hashlib
import hmac
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from wire import frame, pack  # noqa: E402


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
    "files": [33, 0, [[0, "a/b", 4096, 1_600_000_000, 5, 0o644, b""], [0, "c", 0, -1, 0, 0o600, b"\x01" * 16]]],
    "verdicts": [38, 0, bytes([0, 2, 3, 5])],
    "send_filters": [14, ["src"], False, False, ["- *.o", "+ keep/", "- /a/**/[!x]?", "- [ab"]],
    "receive_delete": [15, "/backup", 1, False, False, ["any", ""], False, False, b"\x00", False, False, False,
                       ["- *.o", "- build/"], True, False, True],
    "result_deleted": [23, 3, 3000, 1, 0, 0, 0, [], 2, 0, [], 7, 1],
    "plan": [24, [["create", "a/b", 5], ["delete", "x/", 0], ["unchanged", "c", 1 << 40]]],
    "chunk_sparse": [40, 7, 0, "disk.img", 1 << 30, 0o644, 1_600_000_000, 0, 0, 16, 0, 1 << 26,
                     [4096, 8192, 1 << 20, 1]],
    "dir_owner_xattrs": [31, 0, "a", 0o755, 1_600_000_000, 0, [1000, 100, "alice", "users"], ["user.a", b"\x00v"]],
    "files_links": [33, 0, [[0, "a", 1, 0, 0, 0o644, b"", True, [], [0, 0, "root", "root"], []],
                            [0, "b", 1, 0, 0, 0o644, b"", False, [0]]]],
    "chunk_sparse_bad": [40, 7, 0, "x", 1 << 20, 0o644, 0, 0, 0, 1, 0, 1 << 20, [10, 5, 0, (1 << 64) - 1]],
    # Protocol 5 (--partial): send/receive with partial, a resume offer, a chunk of a resumed file.
    "send_partial": [14, ["/data/big"], False, False, [], True, False, False, False, False, False, False, 0, True],
    "receive_partial": [15, "/backup", 1, False, False, ["any", ""], False, False, b"\x00", False, False, False, [],
                        False, False, False, 0, 0, False, False, False, False, True],
    "verdicts_resume": [38, 0, bytes([0, 1]), [[1, b"\x05", b"\x11" * 64]]],
    "verdicts_resume_bad": [38, 0, bytes([2]), [[0, b"\xff" * 200, b""]]],
    "chunk_reused": [40, 7, 0, "big", 3 * (4 << 20) + 100, 0o644, 1_600_000_000, 0, 1, 4, 4 << 20, 4 << 20,
                     [0, 4 << 20], b"\x05"],
    "result_resumed": [23, 1, 1 << 30, 0, 0, 0, 0, [], 0, 0, [], 0, 0, 0, 0, 1 << 29],
}
# The --partial record of a file "big.bin" of 3 blocks and 100 bytes (fuzz/fuzz_partial.cpp).
PARTIAL_SIZE = 3 * (4 << 20) + 100
PARTIAL_HEADER = b"RCPPART1" + struct.pack(">QqIQH", PARTIAL_SIZE, 1700000000, 123456789, 4 << 20, 7) + b"big.bin"
PARTIAL = {
    "header-only": PARTIAL_HEADER,
    "two-blocks": PARTIAL_HEADER + struct.pack(">I", 0) + b"\x01" * 32 + struct.pack(">I", 3) + b"\x02" * 32,
    "torn": PARTIAL_HEADER + struct.pack(">I", 1) + b"\x01" * 20,
    "twice": PARTIAL_HEADER + (struct.pack(">I", 2) + b"\x03" * 32) * 2,
    "past-end": PARTIAL_HEADER + struct.pack(">I", 4) + b"\x01" * 32,
    "other-file": PARTIAL_HEADER.replace(b"big.bin", b"big.bim"),
}
RULES = ["- *.o", "+ a/**/b/", "- [!a-z]?\\*", "- [ab", "- a/***", "- " + "*a" * 40 + "b"]
PATHS = ["a/b/c", "dir/file", "../x", "a/../../x", "/etc/x", "", ".", "..", "a\0b", "a//b", "a/", "ünï/cødé",
         "-leading", "x" * 300] + RULES


PASSWD = [
    "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n"
    "alice:x:1000:1000::/home/alice:/bin/sh\n",
    "~alice/notes.txt\nalice:x:1000:1000::/home/alice:/bin/sh\n",
    "staff:x:50:alice,bob\n+nis::::::\n# comment\n\n",
    "a:x:4294967295:1::/h:/bin/sh\nb:x:99999999999:1::/h:/bin/sh\n:x:1:1::/h:\n",
    "odd:x:1:1::/srv/[odd]*home/:/bin/sh\n~odd/*.txt\n",
]


def main() -> None:
    out = HERE / "corpus"
    for name in ("fuzz_frame", "fuzz_message", "fuzz_path", "fuzz_passwd", "fuzz_partial"):
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
    for i, p in enumerate(PASSWD):
        (out / "fuzz_passwd" / f"passwd-{i:02d}").write_bytes(p.encode())
    for name, record in PARTIAL.items():
        (out / "fuzz_partial" / name).write_bytes(record)


if __name__ == "__main__":
    main()
