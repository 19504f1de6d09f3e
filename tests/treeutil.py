"""Building sample trees and comparing copies, for the end-to-end tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rcp.model import CopyResult, Progress

SIZES = [0, 1, 1199, 1200, 1201, (1 << 20) + 1]
NAMES = ["plain.txt", "with space.bin", "ünïcødé-名前.dat", "-leading-dash", "--also"]


def make_tree(root: Path, big: int = 0) -> Path:
    """A tree with every size of interest, odd names, empty dirs and symlinks."""
    root.mkdir(parents=True)
    for i, size in enumerate(SIZES):
        (root / f"size-{size}").write_bytes(os.urandom(size))
        os.chmod(root / f"size-{size}", 0o640 if i % 2 else 0o755)
    sub = root / "sub dir" / "deeper"
    sub.mkdir(parents=True)
    for name in NAMES:
        (sub / name).write_bytes(os.urandom(3000))
    (root / "empty").mkdir()
    (root / "sub dir" / "empty too").mkdir()
    os.symlink("size-1", root / "link-to-file")
    os.symlink("../outside/nowhere", root / "dangling-link")
    os.symlink("sub dir", root / "link-to-dir")
    if big:
        with open(root / "big.bin", "wb") as f:
            block = os.urandom(1 << 20)
            for _ in range(big >> 20):
                f.write(block)
    # Distinct, old mtimes (ns precision) so preservation is visible.
    for n, p in enumerate(sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True)):
        os.utime(p, ns=(1_500_000_000_123_456_789 + n * 1_000_000_007,) * 2, follow_symlinks=False)
    return root


def snapshot(root: Path) -> dict[str, tuple]:
    """Relative path -> (kind, mode, mtime_ns, content or link target)."""
    out: dict[str, tuple] = {}
    for p in [root, *root.rglob("*")]:
        st = p.lstat()
        rel = str(p.relative_to(root))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p), st.st_mtime_ns)
        elif stat.S_ISDIR(st.st_mode):
            out[rel] = ("dir", stat.S_IMODE(st.st_mode), st.st_mtime_ns)
        else:
            out[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_mtime_ns, p.read_bytes())
    return out


def assert_same_tree(src: Path, dst: Path) -> None:
    a, b = snapshot(src), snapshot(dst)
    assert sorted(a) == sorted(b), f"entries differ: only in src {sorted(set(a) - set(b))[:5]}, " \
                                   f"only in dst {sorted(set(b) - set(a))[:5]}"
    for rel in a:
        assert a[rel] == b[rel], f"{rel}: {a[rel][:3]} != {b[rel][:3]}"


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob(".rcp-*.tmp")]


def temporaries(pid: int, directory: Path, below: bool = False) -> list[Path]:
    """The files rcpd `pid` is writing in `directory` (`below`: or under it):
    named `.rcp-*.tmp`, or (O_TMPFILE) nameless ones it holds open, reached
    through /proc/<pid>/fd."""
    found = list(directory.glob("**/.rcp-*.tmp" if below else ".rcp-*.tmp"))
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        inside = os.path.dirname(target) == str(directory) or (below and target.startswith(f"{directory}/"))
        if inside and target.endswith("(deleted)"):
            found.append(fd)
    return found


def make_non_utf8_tree(root: Path) -> Path:
    """A tree whose root and inner names are not UTF-8 (Latin-1 bytes, as old
    systems wrote them): `root` itself may be such a name (os.fsdecode'd)."""
    r = os.fsencode(root)
    os.mkdir(r)
    os.mkdir(r + b"/r\xe9pertoire")
    for name in (b"caf\xe9.txt", b"r\xe9pertoire/\xff\xfe-raw", b"r\xe9pertoire/ok-utf8-\xc3\xa9", b"plain"):
        with open(r + b"/" + name, "wb") as f:
            f.write(os.urandom(1500) + name)
    os.symlink(b"caf\xe9.txt", r + b"/lien-\xe9")
    return root


class LogLines:
    """A progress sink that keeps every log line the rcpds and the master show
    the user, as (role, level, text); a copy without a sink shows none."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, str]] = []

    def start(self) -> None:
        pass

    def update(self, p: Progress) -> None:
        pass

    def log(self, role: str, level: str, text: str) -> None:
        self.lines.append((role, level, text))

    def finish(self, result: CopyResult | None) -> None:
        pass

    def matching(self, *words: str) -> list[str]:
        """The lines whose text holds every word (lower case), as the user sees them."""
        return [f"[{role}] {level}: {text}" for role, level, text in self.lines
                if all(w in text.lower() for w in words)]
