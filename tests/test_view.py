"""The progress view as a user sees it: the real CLI through the sshd fixture,
under a pseudo-terminal (with rich, and without), on a pipe, and with
IPython importable or not."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

import rcp.daemon
from rcp.errors import EXIT_OK
from sshd import Sshd
from treeutil import assert_same_tree, make_tree

RCPD = str(rcp.daemon.rcpd_path())
COLUMNS = 120
SUMMARY = re.compile(r"^rcp: 12 files \(\+5 dirs, 3 symlinks\), 5\.0 MiB in \S+ \(\S+ \S+/s\), 0 unchanged, 0 kept, "
                     r"0 failed$")


def _env(tmp_path: Path, block: tuple[str, ...] = ()) -> dict[str, str]:
    """The environment of the CLI, with the named packages made unimportable."""
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    env.update(TERM="xterm-256color", COLUMNS=str(COLUMNS), LINES="40")
    if block:
        blocker = tmp_path / "blocked"
        for name in block:
            (blocker / name).mkdir(parents=True, exist_ok=True)
            (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} blocked by the test')\n")
        env["PYTHONPATH"] = os.pathsep.join([str(blocker)] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, bytes]:
    """Runs `argv` with stdin, stdout and stderr on a pseudo-terminal of
    COLUMNS columns; returns its exit status and everything it wrote."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, COLUMNS, 0, 0))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the child side is closed
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=10), bytes(out)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


_CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])|\x1b[()][A-Z0-9]|\x1b[=>]")


def screen(raw: bytes, width: int = COLUMNS) -> list[str]:
    """What a terminal shows after `raw`: enough of one to follow rcp's
    view (and rich's): text, \\r, \\n, cursor up/down/column, erase line;
    colours and modes are ignored."""
    text = raw.decode("utf-8", "replace").replace("\r\n", "\n")  # the pty's onlcr
    lines: list[list[str]] = [[]]
    row = col = 0

    def put(ch: str) -> None:
        nonlocal col
        line = lines[row]
        if col >= width:
            return
        line.extend(" " * (col - len(line) + 1)) if col >= len(line) else None
        line[col] = ch
        col += 1

    i = 0
    while i < len(text):
        m = _CSI.match(text, i)
        if m:
            arg, cmd = (m.group(1) or ""), (m.group(2) or "")
            n = int(arg) if arg.isdigit() else 1
            if cmd == "A":
                row = max(0, row - n)
            elif cmd == "B":
                row += n
                while len(lines) <= row:
                    lines.append([])
            elif cmd == "G":
                col = n - 1
            elif cmd == "K":
                if arg in ("", "0"):
                    del lines[row][col:]
                else:
                    lines[row] = []
            elif cmd == "J" and arg in ("", "0"):
                del lines[row][col:]
                del lines[row + 1:]
            i = m.end()
            continue
        ch = text[i]
        i += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row += 1
            col = 0
            while len(lines) <= row:
                lines.append([])
        elif ch == "\x08":
            col = max(0, col - 1)
        elif ch >= " ":
            put(ch)
    return [("".join(line)).rstrip() for line in lines if "".join(line).strip()]


@pytest.fixture
def src(tmp_path: Path) -> Path:
    tree = make_tree(tmp_path / "src")
    (tree / "big.bin").write_bytes(os.urandom(4 << 20))
    return tree


def cli(sshd: Sshd, *argv: str) -> list[str]:
    return [sys.executable, "-m", "rcp.cli", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD, *argv]


@pytest.mark.parametrize("rich", ["rich", "no rich"])
def test_terminal_view_ends_in_the_summary_line(sshd: Sshd, src: Path, tmp_path: Path, rich: str) -> None:
    env = _env(tmp_path, () if rich == "rich" else ("rich",))
    code, raw = run_in_pty(cli(sshd, str(src), f"{sshd.alias}:{tmp_path / 'copy'}"), env)
    shown = screen(raw)
    assert code == EXIT_OK, shown
    assert_same_tree(src, tmp_path / "copy")
    # The view was there from the first moment, then replaced by the summary line.
    assert "connecting to " in raw.decode(errors="replace")
    assert len(shown) == 1 and SUMMARY.match(shown[0]), shown
    if rich == "no rich":
        assert b"\x1b" not in raw  # the plain view: one line, rewritten with '\r' and spaces
        assert b"\r[" in raw


def test_terminal_view_with_v_shows_each_side(sshd: Sshd, src: Path, tmp_path: Path) -> None:
    code, raw = run_in_pty(cli(sshd, "-v", str(src), f"{sshd.alias}:{tmp_path / 'copy'}"),
                           _env(tmp_path, ("rich",)))
    shown = screen(raw)
    assert code == EXIT_OK, shown
    assert SUMMARY.match(shown[-1]), shown
    assert any(line.startswith("[destination] info: ") for line in shown), shown  # the log lines stay
    assert not any(line.lstrip().startswith(("source ", "destination ")) for line in shown), shown  # the view went


def test_not_a_terminal_plain_lines_only_with_progress(sshd: Sshd, src: Path, tmp_path: Path) -> None:
    argv = cli(sshd, str(src), f"{sshd.alias}:{tmp_path / 'copy'}")
    quiet = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert quiet.returncode == EXIT_OK and quiet.stderr == ""  # stderr not a terminal: no view unless asked
    out = subprocess.run(argv[:3] + ["--progress"] + argv[3:-1] + [f"{sshd.alias}:{tmp_path / 'again'}"],
                         capture_output=True, text=True, timeout=120, env=_env(tmp_path))
    assert out.returncode == EXIT_OK, out.stderr
    assert "\r" not in out.stderr and "\x1b" not in out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == f"rcp: connecting to {sshd.alias}...", lines
    assert any(" ETA " in line for line in lines), lines
    assert SUMMARY.match(lines[-1]), lines
    assert out.stdout == ""


def _normal(stderr: str) -> str:
    """stderr without what differs from run to run: times, rates and the progress lines."""
    return re.sub(r"in \S+ \(\S+ \S+/s\)", "", re.sub(r"(?m)^rcp: .* ETA .*\n", "", stderr))


def test_cli_and_api_are_the_same_with_or_without_ipython(tmp_path: Path) -> None:
    """Installing IPython changes nothing outside a kernel: same stdout, same stderr."""
    tree = make_tree(tmp_path / "src")
    script = ("import sys, rcp\n"
              "r = rcp.copy(sys.argv[1], sys.argv[2], progress=sys.argv[3])\n"
              "print(r.files_copied, r.ok)\n")
    runs = {}
    for block in ((), ("IPython",)):
        env = _env(tmp_path, block)
        name = "without" if block else "with"
        check = subprocess.run([sys.executable, "-c", "import IPython"], capture_output=True, env=env)
        assert (check.returncode == 0) == (not block)  # IPython is installed (bootstrap), and blocked here
        got = []
        for i, kind in enumerate(["notebook", "plain", "auto"]):
            api = subprocess.run([sys.executable, "-c", script, str(tree), str(tmp_path / f"{name}-{i}"), kind],
                                 capture_output=True, text=True, timeout=60, env=env)
            got.append((api.returncode, api.stdout, _normal(api.stderr)))
        cli_run = subprocess.run([sys.executable, "-m", "rcp.cli", "--progress", str(tree),
                                  str(tmp_path / f"{name}-cli")], capture_output=True, text=True, timeout=60,
                                 env=env)
        got.append((cli_run.returncode, cli_run.stdout, _normal(cli_run.stderr)))
        runs[name] = got
    assert runs["with"] == runs["without"], runs
    summary = "rcp: 11 files (+5 dirs, 3 symlinks), 1.0 MiB , 0 unchanged, 0 kept, 0 failed\n"
    phases = ("rcp: starting rcpd...\nrcp: starting rcpd on both sides...\n"
              "rcp: linking the source and the destination...\n")
    notebook, plain, auto, cli_run = runs["with"]
    assert notebook == (0, "11 True\n", summary)  # outside a kernel: log lines and the summary, on stderr
    assert plain == (0, "11 True\n", "")
    assert auto == (0, "11 True\n", phases + summary)  # a terminal view on a pipe: plain lines
    assert cli_run == (0, "", phases + summary)
