"""Deploying rcpd on demand (issue 10 item 2): a host with only sshd, whose
login has an EMPTY PATH and no rcpd anywhere, gets this rcp's rcpd over the
SSH session, by SFTP or, where the server has none, through the shell.

The sshd here runs in a private mount namespace with a tmp dir bound over the
login's home (root only: CI runs as root), so the default ~/.cache/rcp is
exercised without touching the real home; most tests still pass --deploy-dir.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import rcp
from rcp import _core
from rcp.cli import build_parser, options_from_args, parse_args
from rcp.daemon import rcpd_path
from rcp.deploy import (Elf, Plan, _install, check_platform, local_rcpd, parse_elf, parse_ls, parse_probe, plan,
                        probe_script, target_for)
from rcp.errors import EXIT_CONNECTION, EXIT_OK, DeployError
from rcp.model import CopyOptions
from sshd import Sshd, start_sshd, stop_sshd


LOCAL = local_rcpd()


def rcp_cli(*argv: str, env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"} | (env_extra or {})
    return subprocess.run([sys.executable, "-m", "rcp.cli", *argv], capture_output=True, text=True, timeout=120,
                          env=env)


class Bare:
    """An sshd whose login has an empty PATH, no rcpd, and `home` as its home."""

    def __init__(self, sftp: bool, path: str = "", extra: tuple[str, ...] = ()) -> None:
        if os.geteuid() != 0:
            pytest.skip("the bare sshd binds a tmp home over the login's home in a private mount namespace, "
                        "which needs root (CI runs as root)")
        self.home = Path(tempfile.mkdtemp(prefix="rcp-bare-home-"))
        self.server: Sshd = start_sshd(Path(tempfile.mkdtemp(prefix="rcp-bare-sshd-")), home=self.home,
                                       extra_config=[f"SetEnv PATH={path}", *extra], sftp=sftp)

    def stop(self) -> None:
        stop_sshd(self.server)
        shutil.rmtree(self.home, ignore_errors=True)

    def cli(self, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return rcp_cli("--no-progress", "--ssh-config", str(self.server.config), *argv, env_extra=env)

    def copy(self, src: Path, dst: Path, *argv: str, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
        return self.cli(*argv, str(src), f"{self.server.alias}:{dst}", env=env)


@pytest.fixture(scope="module")
def bare() -> Iterator[Bare]:
    saved_agent = os.environ.pop("SSH_AUTH_SOCK", None)
    b = Bare(sftp=True)
    try:
        yield b
    finally:
        b.stop()
        if saved_agent is not None:
            os.environ["SSH_AUTH_SOCK"] = saved_agent


@pytest.fixture(scope="module")
def bare_no_sftp() -> Iterator[Bare]:
    b = Bare(sftp=False)
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def with_rcpd_on_path(tmp_path: Path) -> Iterator[tuple[Bare, Path]]:
    """A host whose login PATH is one directory, for an rcpd put there."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    b = Bare(sftp=True, path=str(bin_dir))
    try:
        yield b, bin_dir
    finally:
        b.stop()


@pytest.fixture
def one_byte(tmp_path: Path) -> Path:
    f = tmp_path / "one"
    f.write_bytes(b"x")
    return f


def deploy_dir(tmp_path: Path, name: str = "deploy") -> Path:
    d = tmp_path / name
    d.mkdir(mode=0o700)
    return d


def cached(directory: Path) -> Path:
    return directory / LOCAL.name


def assert_deployed(path: Path) -> None:
    st = path.lstat()
    assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700, oct(st.st_mode)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == LOCAL.sha256
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")], "a temporary file was left"


def test_the_bare_login_has_an_empty_path_and_no_rcpd(bare: Bare) -> None:
    out = bare.server.run('printf "[%s]" "$PATH"; command -v rcpd; echo " $?"', check=False)
    assert out.stdout.decode() == "[] 127\n" or out.stdout.decode().startswith("[] 1"), out
    sh = bare.server.run("/bin/sh -c 'printf \"[%s]\" \"$PATH\"; command -v rcpd || echo none'", check=False)
    assert sh.stdout.decode() == "[]none\n", sh


def test_without_deploy_a_bare_host_fails_as_before(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    out = bare.copy(one_byte, tmp_path / "got", "--no-deploy")
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "no such rcpd there" in out.stderr and "deploying" not in out.stderr
    assert not (bare.home / ".cache").exists()


def test_first_copy_deploys_by_sftp_and_the_second_reuses_it(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    into = deploy_dir(tmp_path)
    started = time.monotonic()
    first = bare.copy(one_byte, tmp_path / "got1", "--deploy-dir", str(into))
    first_s = time.monotonic() - started
    assert first.returncode == EXIT_OK, first.stderr
    assert (tmp_path / "got1").read_bytes() == b"x"
    assert f"deploying rcpd {LOCAL.version} to {bare.server.alias}:{into}/{LOCAL.name}" in first.stderr
    assert "MB)" in first.stderr
    binary = cached(into)
    assert_deployed(binary)
    before = binary.stat()

    started = time.monotonic()
    second = bare.copy(one_byte, tmp_path / "got2", "--deploy-dir", str(into))
    second_s = time.monotonic() - started
    assert second.returncode == EXIT_OK, second.stderr
    assert "deploying" not in second.stderr, second.stderr
    after = binary.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns), "uploaded again"
    assert (tmp_path / "got2").read_bytes() == b"x"
    print(f"\n1-byte copy to a bare host: first (deploying {len(LOCAL.data) / 1e6:.1f} MB by SFTP) "
          f"{first_s:.2f} s, second (cached) {second_s:.2f} s")


@pytest.mark.parametrize("server", ["bare", "bare_no_sftp"])
def test_a_deploy_dir_with_shell_metacharacters_stays_literal(server: str, request: pytest.FixtureRequest,
                                                              one_byte: Path, tmp_path: Path) -> None:
    b: Bare = request.getfixturevalue(server)
    into = deploy_dir(tmp_path, "it's a $(touch pwned) `dir`; *")
    out = b.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_OK, out.stderr
    assert_deployed(cached(into))
    assert not (b.home / "pwned").exists() and not Path("pwned").exists()


def test_quiet_silences_the_deploy_line(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    into = deploy_dir(tmp_path)
    out = bare.copy(one_byte, tmp_path / "got", "-q", "--deploy-dir", str(into))
    assert out.returncode == EXIT_OK, out.stderr
    assert out.stderr == ""
    assert_deployed(cached(into))


def test_without_sftp_the_shell_deploys(bare_no_sftp: Bare, one_byte: Path, tmp_path: Path) -> None:
    into = tmp_path / "deploy"  # made by the deploy, 0700
    started = time.monotonic()
    out = bare_no_sftp.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_OK, out.stderr
    print(f"\n1-byte copy to a bare host without SFTP (deploying through the shell): "
          f"{time.monotonic() - started:.2f} s")
    assert "deploying rcpd" in out.stderr
    assert "subsystem request for sftp" in bare_no_sftp.server.log()  # refused: the shell did it
    assert_deployed(cached(into))
    assert stat.S_IMODE(into.lstat().st_mode) == 0o700
    again = bare_no_sftp.copy(one_byte, tmp_path / "got2", "--deploy-dir", str(into))
    assert again.returncode == EXIT_OK and "deploying" not in again.stderr, again.stderr


def test_an_rcpd_on_path_speaking_this_protocol_is_used(with_rcpd_on_path: tuple[Bare, Path], one_byte: Path,
                                                        tmp_path: Path) -> None:
    b, bin_dir = with_rcpd_on_path
    (bin_dir / "rcpd").symlink_to(rcpd_path())
    into = tmp_path / "deploy"
    out = b.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_OK, out.stderr
    assert "deploying" not in out.stderr and not into.exists()
    assert (tmp_path / "got").read_bytes() == b"x"


def test_an_rcpd_on_path_speaking_another_protocol_is_bypassed(with_rcpd_on_path: tuple[Bare, Path],
                                                               one_byte: Path, tmp_path: Path) -> None:
    b, bin_dir = with_rcpd_on_path
    old = bin_dir / "rcpd"
    old.write_text(f"#!/bin/sh\necho 'rcpd 0.0.1 protocol {_core.PROTOCOL_VERSION + 1}'\n")
    old.chmod(0o755)
    into = deploy_dir(tmp_path)
    out = b.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_OK, out.stderr
    assert "deploying rcpd" in out.stderr
    assert_deployed(cached(into))


def test_both_sides_on_one_bare_host_deploy_at_once(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    """Source and destination on the same host probe and deploy in parallel
    into the same missing directory: both succeed, one binary is left."""
    into = tmp_path / "deploy"
    alias = bare.server.alias
    out = bare.cli("--deploy-dir", str(into), f"{alias}:{one_byte}", f"{alias}:{tmp_path / 'got'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert (tmp_path / "got").read_bytes() == b"x"
    assert_deployed(cached(into))
    assert [p.name for p in into.iterdir()] == [LOCAL.name]


@pytest.mark.parametrize("server", ["bare", "bare_no_sftp"])
def test_a_corrupted_cached_binary_is_replaced(server: str, request: pytest.FixtureRequest, one_byte: Path,
                                               tmp_path: Path) -> None:
    b: Bare = request.getfixturevalue(server)
    into = deploy_dir(tmp_path)
    assert b.copy(one_byte, tmp_path / "got1", "-q", "--deploy-dir", str(into)).returncode == EXIT_OK
    binary = cached(into)
    data = bytearray(binary.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, same mode
    binary.write_bytes(bytes(data))
    out = b.copy(one_byte, tmp_path / "got2", "--deploy-dir", str(into))
    assert out.returncode == EXIT_OK, out.stderr
    assert "replacing a cached copy that does not match" in out.stderr
    assert_deployed(binary)


def test_a_symlinked_deploy_dir_is_refused(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    real = deploy_dir(tmp_path, "real")
    link = tmp_path / "link"
    link.symlink_to(real)
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(link))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert f"{link} is a symbolic link" in out.stderr and "will not deploy" in out.stderr
    assert list(real.iterdir()) == [] and not (tmp_path / "got").exists()


@pytest.mark.parametrize("mode,who", [(0o777, "other users"), (0o1777, "other users"), (0o770, "its group")])
def test_a_group_or_world_writable_deploy_dir_is_refused(bare: Bare, one_byte: Path, tmp_path: Path, mode: int,
                                                         who: str) -> None:
    into = deploy_dir(tmp_path)
    into.chmod(mode)
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert f"{into} is writable by {who}" in out.stderr
    assert list(into.iterdir()) == []


def test_a_deploy_dir_of_another_user_is_refused(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    into = deploy_dir(tmp_path)
    os.chown(into, 65534, 65534)
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert f"{into} belongs to uid 65534, not to the login user (uid 0)" in out.stderr


# ---- every directory from / down to the cache (docs/security.md, "Deploying rcpd") ----


@pytest.mark.parametrize("depth", [1, 2])
def test_a_deploy_dir_below_a_group_writable_dir_is_refused(bare: Bare, one_byte: Path, tmp_path: Path,
                                                            depth: int) -> None:
    """/srv/shared 0775 (a shared group, no sticky bit): a member could rename
    the user's directory away and plant their own rcpd after the probe."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o775)
    below = shared / "sub" if depth == 2 else shared
    below.mkdir(exist_ok=True)
    into = deploy_dir(below)
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert f"will not deploy rcpd to {bare.server.alias}:{into}/" in out.stderr
    assert f"{shared} is writable by its group (rwxrwxr-x)" in out.stderr, out.stderr
    assert list(into.iterdir()) == [] and not (tmp_path / "got").exists()


def test_a_deploy_dir_in_a_sticky_world_writable_dir_is_accepted(bare: Bare, one_byte: Path,
                                                                 tmp_path: Path) -> None:
    """Like /tmp: others cannot rename what is the user's there."""
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    into = deploy_dir(sticky)
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_OK, out.stderr
    assert_deployed(cached(into))


def test_a_dir_of_another_user_in_a_sticky_dir_is_refused(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    theirs = sticky / "theirs"
    theirs.mkdir()
    os.chown(theirs, 65534, 65534)
    into = theirs / "deploy"
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert f"{theirs} is in {sticky}, which others can write to (sticky), but belongs to uid 65534" in out.stderr, \
        out.stderr
    assert not into.exists()


def test_a_symlinked_ancestor_is_resolved_then_checked(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    """Symlinks above the last level are resolved by the probe (`pwd -P`),
    once; what is checked and used is the resolved path."""
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(tmp_path / "link" / "deploy"))
    assert out.returncode == EXIT_OK, out.stderr
    assert_deployed(cached(real / "deploy"))

    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o770)
    (tmp_path / "to-shared").symlink_to(shared)
    refused = bare.copy(one_byte, tmp_path / "got2", "--deploy-dir", str(tmp_path / "to-shared" / "deploy"))
    assert refused.returncode == EXIT_CONNECTION, refused.stderr
    assert f"{shared} is writable by its group" in refused.stderr, refused.stderr
    assert list(shared.iterdir()) == []


def _probe_for(uid: int, chain: list[str]) -> list[str]:
    """A probe's lines for the home /home/u and ~/.cache/rcp; `chain` holds
    `ls -lnd`'s first fields for /, /home, /home/u, .cache, .cache/rcp."""
    def ls(spec: str, path: str) -> str:
        mode, owner = spec.split()
        return f"{mode} 2 {owner} {owner} 4096 Nov 30 08:41 {path}"
    root, home_parent, home, cache, rcp_dir = chain
    return [f"uid {uid}", "uname Linux x86_64", "base /home/u", f"basedir {ls(home, '/home/u')}",
            f"up {ls(home_parent, '/home')}", f"up {ls(root, '/')}", f"dir {ls(cache, '/home/u/.cache')}",
            f"dir {ls(rcp_dir, '/home/u/.cache/rcp')}", "file "]


@pytest.mark.parametrize("chain,why", [
    (["drwxr-xr-x 0", "drwxr-xr-x 0", "drwx------ 1000", "drwx------ 1000", "drwx------ 1000"], None),
    (["drwxr-xr-x 0", "drwxrwxrwt 0", "drwx------ 1000", "drwx------ 1000", "drwx------ 1000"], None),
    (["drwxr-xr-x 0", "drwxrwxr-x 0", "drwx------ 1000", "drwx------ 1000", "drwx------ 1000"],
     "/home is writable by its group"),
    (["drwxr-xrwx 0", "drwxr-xr-x 0", "drwx------ 1000", "drwx------ 1000", "drwx------ 1000"],
     "/ is writable by other users"),
    (["drwxr-xr-x 0", "drwxr-xr-x 1001", "drwx------ 1000", "drwx------ 1000", "drwx------ 1000"],
     "/home belongs to uid 1001"),
    (["drwxr-xr-x 0", "lrwxrwxrwx 0", "drwx------ 1000", "drwx------ 1000", "drwx------ 1000"],
     "/home is a symbolic link"),
    (["drwxr-xr-x 0", "drwxr-xr-x+ 0", "drwx------ 1000", "drwx------ 1000", "drwx------ 1000"],
     "/home has an ACL"),
    # In a sticky dir only what is the user's cannot be renamed by others.
    (["drwxr-xr-x 0", "drwxrwxrwt 0", "drwxr-xr-x 0", "drwx------ 1000", "drwx------ 1000"],
     "/home/u is in /home, which others can write to (sticky), but belongs to uid 0"),
    (["drwxr-xr-x 0", "drwxr-xr-x 0", "drwxrwxrwt 1000", "drwx------ 1000", "drwx------ 1000"], None),
    (["drwxr-xr-x 0", "drwxr-xr-x 0", "drwx------ 1000", "drwxrwxrwt 1000", "drwx------ 1000"],
     "/home/u/.cache is writable by other users"),  # rcp's own directories: never
])
def test_every_ancestor_is_judged_like_sshd_strict_modes(chain: list[str], why: str | None) -> None:
    probe = parse_probe(_probe_for(1000, chain), 2)
    target = target_for(None)
    if why is None:
        p = plan(probe, target, "h", LOCAL)
        assert (p.directory, p.missing, p.cached) == ("/home/u/.cache/rcp", (), "absent")
    else:
        with pytest.raises(DeployError, match="will not deploy") as info:
            plan(probe, target, "h", LOCAL)
        assert why in str(info.value)


def test_a_chatty_login_shell_does_not_confuse_the_probe(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    """A ~/.bashrc that prints (an "unclean" shell, as rsync says) before
    every command: its lines come before the probe's tag and are skipped."""
    bashrc = bare.home / ".bashrc"
    bashrc.write_text("echo 'Welcome to the bare host'\necho 'uid 12345'\necho 'RCPPROBE 2'\n")
    try:
        assert bare.server.run("true").stdout.startswith(b"Welcome"), "the banner is not printed"
        into = deploy_dir(tmp_path)
        out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
        assert out.returncode == EXIT_OK, out.stderr
        assert_deployed(cached(into))
        again = bare.copy(one_byte, tmp_path / "got2", "--deploy-dir", str(into))
        assert again.returncode == EXIT_OK and "deploying" not in again.stderr, again.stderr
    finally:
        bashrc.unlink()


def test_a_login_rc_printing_without_a_newline_does_not_confuse_the_probe(bare: Bare, one_byte: Path,
                                                                          tmp_path: Path) -> None:
    """An rc that sets the terminal title (no newline after it): the probe's
    tag must still be found on a line of its own."""
    bashrc = bare.home / ".bashrc"
    bashrc.write_text("printf '\\033]0;bare host\\007'\n")
    try:
        assert bare.server.run("true").stdout == b"\x1b]0;bare host\x07", "the title is not printed"
        into = deploy_dir(tmp_path)
        out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
        assert out.returncode == EXIT_OK, out.stderr
        assert_deployed(cached(into))
        assert (tmp_path / "got").read_bytes() == b"x"
        again = bare.copy(one_byte, tmp_path / "got2", "--deploy-dir", str(into))
        assert again.returncode == EXIT_OK and "deploying" not in again.stderr, again.stderr
    finally:
        bashrc.unlink()


def test_the_default_cache_in_the_home(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    """~/.cache/rcp (in the bare host's tmp home, never the real one): created
    0700 where missing, reused, and a symlinked ~/.cache refused."""
    cache = bare.home / ".cache"
    assert not cache.exists()
    real = Path(os.path.expanduser("~/.cache/rcp")) / LOCAL.name
    real_before = real.exists()
    try:
        out = bare.copy(one_byte, tmp_path / "got1")
        assert out.returncode == EXIT_OK, out.stderr
        assert f"to {bare.server.alias}:~/.cache/rcp/{LOCAL.name}" in out.stderr
        assert stat.S_IMODE(cache.stat().st_mode) == 0o700 and stat.S_IMODE((cache / "rcp").stat().st_mode) == 0o700
        assert_deployed(cache / "rcp" / LOCAL.name)
        again = bare.copy(one_byte, tmp_path / "got2")
        assert again.returncode == EXIT_OK and "deploying" not in again.stderr, again.stderr

        shutil.rmtree(cache)
        elsewhere = deploy_dir(tmp_path, "elsewhere")
        cache.symlink_to(elsewhere)
        refused = bare.copy(one_byte, tmp_path / "got3")
        assert refused.returncode == EXIT_CONNECTION, refused.stderr
        assert "/.cache is a symbolic link" in refused.stderr
        assert list(elsewhere.iterdir()) == []
    finally:
        if cache.is_symlink():
            cache.unlink()
        else:
            shutil.rmtree(cache, ignore_errors=True)
    assert real.exists() == real_before, "the real home was touched"


def test_an_existing_cache_dir_is_used_and_kept(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    """A ~/.cache/rcp that exists already (with other files) is used as it
    is; the test removes exactly what the copy added."""
    rcp_dir = bare.home / ".cache" / "rcp"
    rcp_dir.mkdir(parents=True, mode=0o755)
    (rcp_dir / "rcpd-0.0.1-old").write_bytes(b"an older one")
    try:
        out = bare.copy(one_byte, tmp_path / "got")
        assert out.returncode == EXIT_OK, out.stderr
        assert sorted(p.name for p in rcp_dir.iterdir()) == sorted([LOCAL.name, "rcpd-0.0.1-old"])
        assert_deployed(rcp_dir / LOCAL.name)
        assert stat.S_IMODE(rcp_dir.stat().st_mode) == 0o755  # kept as it was
    finally:
        (rcp_dir / LOCAL.name).unlink(missing_ok=True)
        (rcp_dir / "rcpd-0.0.1-old").unlink()
        rcp_dir.rmdir()
        rcp_dir.parent.rmdir()


def test_a_foreign_architecture_is_refused_naming_both(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    fake = tmp_path / "rcpd-aarch64"
    header = bytearray(LOCAL.data[:64])
    header[18:20] = (183).to_bytes(2, "little")  # e_machine: AArch64
    fake.write_bytes(bytes(header) + b"\0" * 4096)
    fake.chmod(0o755)
    into = deploy_dir(tmp_path)
    out = bare.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into), env={"RCP_RCPD": str(fake)})
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "runs Linux x86_64" in out.stderr and "Linux AArch64 (ELF64)" in out.stderr, out.stderr
    assert list(into.iterdir()) == []


def test_an_explicit_rcpd_path_that_fails_is_an_error_not_a_deploy(bare: Bare, one_byte: Path,
                                                                   tmp_path: Path) -> None:
    into = tmp_path / "deploy"
    out = bare.copy(one_byte, tmp_path / "got", "--rcpd-path", "/nonexistent/rcpd", "--deploy-dir", str(into))
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert "deploying" not in out.stderr and not into.exists()


def test_the_python_api_deploys(bare: Bare, one_byte: Path, tmp_path: Path) -> None:
    into = deploy_dir(tmp_path)
    result = rcp.copy(one_byte, f"{bare.server.alias}:{tmp_path / 'got'}", ssh_config=str(bare.server.config),
                      deploy_dir=str(into))
    assert result.ok, result.errors
    assert_deployed(cached(into))
    with pytest.raises(DeployError, match="is writable by other users"):
        into.chmod(0o777)
        rcp.copy(one_byte, f"{bare.server.alias}:{tmp_path / 'got2'}", ssh_config=str(bare.server.config),
                 deploy_dir=str(into))


def test_no_local_rcpd_is_needed_for_a_host_with_one_on_path(with_rcpd_on_path: tuple[Bare, Path],
                                                             tmp_path: Path) -> None:
    """The local rcpd is read only when the probe says a deploy (or a cache
    check) is needed: a missing or bad RCP_RCPD does not stop a remote copy
    to a host that has a compatible rcpd on its PATH."""
    b, bin_dir = with_rcpd_on_path
    (bin_dir / "rcpd").symlink_to(rcpd_path())
    src = tmp_path / "src"
    src.write_bytes(b"x")
    not_elf = tmp_path / "not-elf"
    not_elf.write_text("#!/bin/sh\n")
    alias = b.server.alias
    for n, bad in enumerate([tmp_path / "none", not_elf]):
        got = tmp_path / f"got{n}"
        out = b.cli(f"{alias}:{src}", f"{alias}:{got}", "--deploy-dir", str(tmp_path / "deploy"),
                    env={"RCP_RCPD": str(bad)})
        assert out.returncode == EXIT_OK, out.stderr
        assert got.read_bytes() == b"x" and not (tmp_path / "deploy").exists()
    (bin_dir / "rcpd").unlink()  # now a deploy is needed: the missing local rcpd is the error
    out = b.cli(f"{alias}:{src}", f"{alias}:{tmp_path / 'got'}", env={"RCP_RCPD": str(tmp_path / "none")})
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert f"cannot read the rcpd to deploy ({tmp_path / 'none'})" in out.stderr, out.stderr


# A mkdir that ignores the mode asked for, as some SFTP servers do (0775 here:
# a umask of 002 and no mode).
_MKDIR_IGNORING_THE_MODE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/stat.h>
#include <sys/types.h>
int mkdir(const char *path, mode_t mode) {
    int (*real)(const char *, mode_t) = (int (*)(const char *, mode_t))dlsym(RTLD_NEXT, "mkdir");
    (void)mode;
    mode_t old = umask(0);
    int r = real(path, 0775);
    umask(old);
    return r;
}
"""


@pytest.fixture
def sftp_ignoring_the_mode(tmp_path: Path) -> Iterator[Bare]:
    """A bare host whose SFTP server is OpenSSH's sftp-server with mkdir's mode ignored."""
    d = tmp_path / "sftp-server"
    d.mkdir()
    (d / "shim.c").write_text(_MKDIR_IGNORING_THE_MODE)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(d / "shim.so"), str(d / "shim.c"), "-ldl"], check=True,
                   timeout=60)
    server = d / "sftp-server"
    server.write_text(f"#!/bin/sh\nLD_PRELOAD={d / 'shim.so'} exec /usr/lib/openssh/sftp-server \"$@\"\n")
    server.chmod(0o755)
    b = Bare(sftp=False, extra=(f"Subsystem sftp {server}",))
    try:
        yield b
    finally:
        b.stop()


def test_a_directory_the_sftp_server_made_with_another_mode_is_refused(sftp_ignoring_the_mode: Bare,
                                                                       one_byte: Path, tmp_path: Path) -> None:
    b = sftp_ignoring_the_mode
    into = tmp_path / "deploy"  # missing: made over SFTP
    out = b.copy(one_byte, tmp_path / "got", "--deploy-dir", str(into))
    assert stat.S_IMODE(into.lstat().st_mode) == 0o775, "the server honoured the mode"
    assert out.returncode == EXIT_CONNECTION, out.stderr
    assert f"{into} is writable by its group" in out.stderr and "SFTP server" in out.stderr, out.stderr
    assert list(into.iterdir()) == []


@pytest.mark.parametrize("owner,mode,why", [(65534, 0o755, "belongs to uid 65534"),
                                            (0, 0o777, "is writable by other users"),
                                            (0, 0o770, "is writable by its group")])
def test_the_shell_checks_a_directory_that_appeared_meanwhile(bare_no_sftp: Bare, tmp_path: Path, owner: int,
                                                              mode: int, why: str) -> None:
    """A directory the probe found missing but that exists when the install
    script runs (made meanwhile, e.g. by another user in a sticky parent) is
    used only if it is the user's and nobody else can write to it."""
    made = tmp_path / "deploy"
    made.mkdir()
    made.chmod(mode)
    os.chown(made, owner, owner)
    p = Plan(directory=str(made), missing=(str(made),), final=str(made / LOCAL.name), shown=f"h:{made}",
             cached="absent", uid=os.getuid())
    ssh = _core.SshSession.connect(bare_no_sftp.server.alias, config_file=str(bare_no_sftp.server.config))
    try:
        with pytest.raises(DeployError, match="failed") as info:
            _install(ssh, "h", p, LOCAL, f"{made}/.{LOCAL.name}.x.tmp", upload_by_shell=True)
        assert f"{made} {why}" in str(info.value)
    finally:
        ssh.close()
    assert list(made.iterdir()) == []


@pytest.fixture
def noexec_dir(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs mounted noexec, made before its sshd starts (whose private mount namespace copies it)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mnt = tmp_path / "noexec"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "noexec,mode=0700,size=64m", "tmpfs", str(mnt)], check=True,
                   timeout=10)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False, timeout=10)


def test_a_noexec_deploy_dir_is_a_clear_error(noexec_dir: Path, one_byte: Path, tmp_path: Path) -> None:
    b = Bare(sftp=True)  # after the mount: its namespace has it
    try:
        out = b.copy(one_byte, tmp_path / "got", "--deploy-dir", str(noexec_dir / "rcp"))
        assert out.returncode == EXIT_CONNECTION, out.stderr
        assert "mounted noexec" in out.stderr and "--deploy-dir" in out.stderr, out.stderr
        assert list((noexec_dir / "rcp").iterdir()) == [], "the temporary file was left"
    finally:
        b.stop()


def test_sftp_does_what_the_deploy_needs_and_no_more(sshd: Sshd, tmp_path: Path) -> None:
    """The SFTP bindings against a real sshd: lstat does not follow symlinks,
    create is exclusive (nor does it follow a planted symlink), modes hold."""
    ssh = _core.SshSession.connect(sshd.alias, config_file=str(sshd.config))
    sftp = ssh.sftp()
    d = tmp_path / "d"
    sftp.mkdir(str(d), 0o700)
    attrs = sftp.lstat(str(d))
    assert attrs is not None and (attrs.type, attrs.uid, attrs.mode) == ("directory", os.getuid(), 0o700)
    with pytest.raises(_core.RcpError, match="mkdir"):
        sftp.mkdir(str(d), 0o700)
    assert sftp.lstat(str(tmp_path / "none")) is None
    (tmp_path / "link").symlink_to(d)
    link = sftp.lstat(str(tmp_path / "link"))
    assert link is not None and link.type == "symlink"

    data = os.urandom(700_000)  # several SFTP requests
    f = sftp.create(str(d / "f"), 0o700)
    f.write(data)
    f.close()
    f.close()  # idempotent
    assert (d / "f").read_bytes() == data and stat.S_IMODE((d / "f").stat().st_mode) == 0o700
    written = sftp.lstat(str(d / "f"))
    assert written is not None and (written.type, written.size) == ("file", len(data))
    with pytest.raises(_core.RcpError, match="create"):
        sftp.create(str(d / "f"), 0o700)  # exists: O_EXCL
    (tmp_path / "planted").symlink_to(tmp_path / "target")
    with pytest.raises(_core.RcpError, match="create"):
        sftp.create(str(tmp_path / "planted"), 0o700)  # a dangling symlink is not followed
    assert not (tmp_path / "target").exists()
    sftp.unlink(str(d / "f"))
    assert not (d / "f").exists()
    ssh.close()
    with pytest.raises(_core.ConnectionClosedError):
        sftp.lstat(str(d))


# ---- options, the probe's output and the ELF check, as parsed (no SSH) ----


def test_deploy_options_on_the_command_line() -> None:
    def options(*argv: str) -> CopyOptions:
        return options_from_args(parse_args([*argv, "a", "h:b"]), stderr_is_tty=False).options

    assert options() == CopyOptions(deploy=True, deploy_dir=None)
    assert options("--no-deploy").deploy is False
    assert options("--deploy-dir", "/srv/rcp").deploy_dir == "/srv/rcp"
    assert "--deploy-dir" in build_parser().format_help() and "--no-deploy" in build_parser().format_help()


def test_probe_output_is_parsed_strictly() -> None:
    good = ["uid 0", "uname Linux x86_64", "base /root", "basedir drwx------ 9 0 0 4096 Nov 30 08:41 /root",
            "up drwxr-xr-x 18 0 0 4096 Nov 30 08:41 /",
            "dir drwx------ 2 0 0 40 Nov 30 08:41 /root/.cache", "dir ", "file ", "sha256 " + "a" * 64]
    probe = parse_probe(good, 2)
    assert probe.uid == 0 and probe.dirs[1] is None and probe.file is None
    for bad, why in [
        (good + ["uid 1"], "twice"),
        (good + ["rm -rf /"], "unexpected"),
        (good[:4], "incomplete"),
        (good[:4] + good[5:], "incomplete"),  # no line for /
        (good[:5] + [good[4]] + good[5:], "incomplete"),  # one too many
        ([good[0], "uname " + "x" * 5000] + good[2:], "over-long"),
        (good[:-1] + ["sha256 $(reboot)"], "unexpected"),
        (good[:5] + ["dir total 0", "dir "] + good[7:], "ls -lnd"),
    ]:
        with pytest.raises(DeployError, match=why):
            parse_probe(bad, 2)
    assert parse_ls("drwxrwxrwt+ 2 0 0 40 Nov 30 /tmp") is not None


def test_probe_script_quotes_what_it_is_given() -> None:
    script = probe_script(target_for("/srv/it's here/rcp dir"), "rcpd-0-x")
    assert "'/srv/it'\\''s here'" in script and "'rcp dir'" in script
    assert "PATH=/usr/bin:/bin" in script and "\n" not in script
    with pytest.raises(DeployError):
        target_for("a/../../etc")


def test_elf_header_against_uname() -> None:
    here = parse_elf(LOCAL.data[:20], "rcpd")
    check_platform(here, "Linux x86_64", "h", "rcpd")  # this machine (CI is x86-64)
    arm = Elf(bits=64, little_endian=True, machine=183, osabi=0)
    check_platform(arm, "Linux aarch64", "h", "rcpd")
    for elf, uname in [(arm, "Linux x86_64"), (here, "FreeBSD amd64"), (here, "Linux i686"), (here, "")]:
        with pytest.raises(DeployError, match="install an rcpd built for"):
            check_platform(elf, uname, "h", "rcpd")
    with pytest.raises(DeployError, match="not an ELF"):
        parse_elf(b"#!/bin/sh\n", "x")


def test_the_packaged_rcpd_is_what_deploys() -> None:
    assert LOCAL.path == rcpd_path() and LOCAL.version == _core.__version__
