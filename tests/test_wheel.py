"""The wheel from `make wheel`, installed as a new user would: a fresh venv without the
system's site packages, no package index, no view of the build tree (cwd, PYTHONPATH and
PATH all elsewhere). `make py-test` builds the wheel first."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# What glibc provides; anything else in DT_NEEDED would have to be on the user's machine.
GLIBC_LIBS = {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1", "ld-linux-x86-64.so.2"}


@dataclass(frozen=True)
class Venv:
    root: Path
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=self.env,
                              cwd=self.cwd, stdin=subprocess.DEVNULL)

    def python(self, code: str) -> str:
        out = self.run(str(self.root / "bin" / "python"), "-c", code)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()


def wheel_file() -> Path:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    wheel = ROOT / "dist" / f"rcp-{version}-cp311-cp311-linux_x86_64.whl"
    assert wheel.is_file(), f"{wheel} is missing: run `make wheel` first"
    return wheel


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    base = tmp_path_factory.mktemp("wheel")
    home, work = base / "home", base / "work"
    home.mkdir()
    work.mkdir()
    root = base / "v"
    env = {"PATH": f"{root / 'bin'}:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    made = subprocess.run(["/usr/bin/python3", "-m", "venv", str(root)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=work)
    assert made.returncode == 0, made.stderr
    v = Venv(root, env, work)
    installed = v.run(str(root / "bin" / "pip"), "install", "--no-index", "--no-cache-dir", str(wheel_file()))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return v


def needed(binary: Path) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, timeout=30, check=True)
    return {line.split("[", 1)[1].rstrip("]") for line in out.stdout.splitlines() if "(NEEDED)" in line}


def test_wheel_installs_outside_the_build_tree_without_system_packages(venv: Venv) -> None:
    where = venv.python("import rcp, sys; print(rcp.__file__); print(sys.flags.no_site, *sys.path, sep='\\n')")
    package, *path = where.splitlines()
    assert Path(package).is_relative_to(venv.root), package
    assert not any(p.startswith(str(ROOT)) or "dist-packages" in p for p in path), path
    # rich is an optional extra: not in this venv, so the plain view is the one used
    assert venv.python("import importlib.util; print(importlib.util.find_spec('rich'))") == "None"


def test_wheel_rcp_and_rcpd_are_on_the_venv_path(venv: Venv) -> None:
    out = venv.run("rcp", "--version")
    assert out.returncode == 0, out.stderr
    version = venv.python("import rcp; print(rcp.__version__)")
    assert out.stdout.startswith(f"rcp {version} (rcpd {version} protocol "), out.stdout
    rcpd = venv.run("rcpd", "--version")
    assert rcpd.returncode == 0 and version in rcpd.stdout, rcpd.stdout + rcpd.stderr
    assert venv.python("import rcp.daemon; print(rcp.daemon.rcpd_path())") == str(venv.root / "bin" / "rcpd")


def run_on_a_terminal(venv: Venv, *args: str) -> tuple[int, str]:
    """Runs with stderr on a pseudo-terminal, where rcp would pick rich's live view if it could."""
    master, slave = os.openpty()
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the last writer has gone
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        proc = subprocess.run(list(args), stdout=subprocess.DEVNULL, stderr=slave, stdin=subprocess.DEVNULL,
                              env=venv.env, cwd=venv.cwd, timeout=120)
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_wheel_copies_a_tree_with_the_plain_progress_view(venv: Venv) -> None:
    src = venv.cwd / "src"
    (src / "sub").mkdir(parents=True)
    payload = os.urandom(300_000)
    (src / "big.bin").write_bytes(payload)
    (src / "sub" / "small.txt").write_bytes(b"x")
    code, stderr = run_on_a_terminal(venv, "rcp", "--progress", "--summary", "src", "dst")
    assert code == 0, stderr
    assert (venv.cwd / "dst" / "big.bin").read_bytes() == payload
    assert (venv.cwd / "dst" / "sub" / "small.txt").read_bytes() == b"x"
    assert "Traceback" not in stderr and "2 files" in stderr, stderr


def test_wheel_binaries_need_only_glibc(venv: Venv) -> None:
    cores = list(venv.root.glob("lib/python3*/site-packages/rcp/_core*.so"))
    assert len(cores) == 1, cores
    for binary in (cores[0], venv.root / "bin" / "rcpd"):
        assert needed(binary) <= GLIBC_LIBS, (binary, needed(binary) - GLIBC_LIBS)


def test_build_without_the_bootstrap_says_to_run_it(tmp_path: Path) -> None:
    """A checkout whose third_party/prefix was never built stops at once with the remedy,
    and the failed build leaves nothing in the checkout (its build directory is elsewhere)."""
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True,
                             timeout=30).stdout.decode().split("\0")
    checkout = tmp_path / "rcp"
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (checkout / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, checkout / name)
    before = sorted(p.relative_to(checkout) for p in checkout.rglob("*"))
    out = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--no-index",
                          "-w", str(tmp_path / "dist"), "."], capture_output=True, text=True, timeout=300,
                         cwd=checkout)
    assert out.returncode != 0
    assert "run `make bootstrap` (scripts/bootstrap.sh" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "Check for working C compiler" not in out.stdout + out.stderr  # stopped before CMake's compiler checks
    assert sorted(p.relative_to(checkout) for p in checkout.rglob("*")) == before
