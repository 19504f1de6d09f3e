"""rcpd is one static executable (issue 10): no dynamic loader, no shared
library, so it runs on any x86-64 Linux, even in an empty root, and a copy
whose remote rcpd is that lone binary works."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import rcp
import rcp.daemon
from rcp import _core
from rcp.errors import UsageError
from sshd import Sshd

RCPD = rcp.daemon.rcpd_path()

PT_DYNAMIC, PT_INTERP = 2, 3
DT_NULL, DT_NEEDED = 0, 1
EM_X86_64 = 62
ET_DYN = 3  # position-independent: the kernel loads it at a random address


@dataclass(frozen=True)
class ElfFacts:
    type: int
    machine: int
    interpreter: bool  # a PT_INTERP header: the kernel would start a dynamic loader
    needed: int  # DT_NEEDED entries: shared libraries the loader would map


def elf_facts(path: Path) -> ElfFacts:
    """The parts of a 64-bit little-endian ELF file that make it dynamic."""
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{path} is not a 64-bit LE ELF file"
    elf_type, machine = struct.unpack_from("<HH", data, 16)
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    interpreter, needed = False, 0
    for i in range(phnum):
        header = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        p_type, p_offset, p_filesz = header[0], header[2], header[5]
        if p_type == PT_INTERP:
            interpreter = True
        elif p_type == PT_DYNAMIC:
            for off in range(p_offset, p_offset + p_filesz, 16):
                tag = struct.unpack_from("<q", data, off)[0]
                if tag == DT_NULL:
                    break
                needed += tag == DT_NEEDED
    return ElfFacts(elf_type, machine, interpreter, needed)


def test_elf_reader_sees_a_dynamic_executable() -> None:
    """The check below can fail: the same reader finds the loader and libraries of a dynamic program."""
    facts = elf_facts(Path(shutil.which("ssh") or "/usr/bin/ssh"))
    assert facts.interpreter and facts.needed > 0, facts


def test_rcpd_has_no_interpreter_and_no_shared_libraries() -> None:
    facts = elf_facts(RCPD)
    # static-pie: no loader, no library, and still ASLR
    assert facts == ElfFacts(ET_DYN, EM_X86_64, interpreter=False, needed=0), f"{RCPD} is not static: {facts}"


def test_rcpd_runs_in_an_empty_root(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chroot needs root (CI runs as root)")
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy2(RCPD, root / "rcpd")
    assert sorted(p.name for p in root.iterdir()) == ["rcpd"]  # nothing else: no /lib, no /etc, no /dev
    out = subprocess.run(["chroot", str(root), "/rcpd", "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["rcpd", _core.__version__, "protocol", str(_core.PROTOCOL_VERSION)], out.stdout


def test_copy_with_the_lone_static_binary_as_remote_rcpd(sshd: Sshd, tmp_path: Path) -> None:
    # A copy of the binary alone, away from the build tree and the package.
    lone = tmp_path / "bin" / "rcpd"
    lone.parent.mkdir()
    shutil.copy2(RCPD, lone)
    assert elf_facts(lone).needed == 0
    payload = os.urandom(3 << 20) + b"tail"
    (tmp_path / "src.bin").write_bytes(payload)
    into = tmp_path / "into"
    into.mkdir()
    options = {"ssh_config": str(sshd.config), "rcpd_path": str(lone)}
    result = rcp.copy(str(tmp_path / "src.bin"), f"{sshd.alias}:{into}/", **options)
    assert result.ok, result.errors
    assert (into / "src.bin").read_bytes() == payload
    # And back, the remote lone rcpd now the source.
    back = rcp.copy(f"{sshd.alias}:{into / 'src.bin'}", str(tmp_path / "back.bin"), **options)
    assert back.ok, back.errors
    assert (tmp_path / "back.bin").read_bytes() == payload


def test_names_in_address_options_are_resolved_by_the_master(sshd: Sshd, tmp_path: Path) -> None:
    """The static rcpd parses numeric addresses only (no NSS): the master resolves
    --master-address and --source-address names before handing them out."""
    (tmp_path / "f").write_bytes(b"by name")
    result = rcp.copy(f"{sshd.alias}:{tmp_path / 'f'}", f"{sshd.alias}:{tmp_path / 'g'}",
                      ssh_config=str(sshd.config), rcpd_path=str(RCPD), master_address="localhost",
                      source_addresses=["localhost"])
    assert result.ok, result.errors
    assert (tmp_path / "g").read_bytes() == b"by name"


def test_unresolvable_address_option_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(UsageError, match="no-such-host.invalid"):
        rcp.copy(str(tmp_path / "f"), str(tmp_path / "g"), source_addresses=["no-such-host.invalid"])
    assert not (tmp_path / "g").exists()
