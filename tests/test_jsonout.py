"""rcp --json: JSON lines on stdout, each checked against docs/rcp-json.schema.json."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema  # python3-jsonschema, installed by bootstrap
import pytest

import rcp.daemon
from rcp.errors import EXIT_CONNECTION, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from rcp.jsonout import ENTRY_TYPES, RESULT_OMITS, JsonLines, JsonProgress, result_entry
from rcp.model import CopyResult, Progress
from sshd import Sshd
from treeutil import assert_same_tree, make_tree

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "docs" / "rcp-json.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
RCPD = str(rcp.daemon.rcpd_path())


def check(line: str) -> dict[str, Any]:
    entry = json.loads(line)
    errors = sorted(VALIDATOR.iter_errors(entry), key=str)
    assert not errors, f"{line}\n" + "\n".join(e.message for e in errors)
    return dict(entry)


def entries(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n") and "\r" not in text
    return [check(line) for line in text.splitlines()]


def rcp_json(*argv: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    out = subprocess.run([sys.executable, "-m", "rcp.cli", "--json", *argv], capture_output=True, text=True,
                         timeout=timeout, env=env)
    return out, entries(out.stdout)


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_schema_is_a_valid_schema_naming_every_entry_type() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert {ref["$ref"].rsplit("/", 1)[1] for ref in SCHEMA["oneOf"]} == set(ENTRY_TYPES)


def test_schema_result_has_every_copyresult_field() -> None:
    """A field added to CopyResult must be added to the schema (and README) too."""
    names = {f.name for f in dataclasses.fields(CopyResult)} - RESULT_OMITS
    extra = {"type", "ok", "bytes_per_second", "files_per_second", "exit_code"}
    documented = set(SCHEMA["$defs"]["result"]["properties"]) - extra
    assert names == documented, f"CopyResult fields missing from the schema: {sorted(names - documented)}"
    readme = (SCHEMA_PATH.parent.parent / "README.md").read_text()
    for name in names:
        assert f"`{name}`" in readme, f"README.md does not document the result field {name!r}"


def test_the_schema_refuses_what_it_should() -> None:
    good = {"type": "warning", "role": "source", "message": "x"}
    assert VALIDATOR.is_valid(good)
    assert not VALIDATOR.is_valid({**good, "extra": 1})  # names are fixed: a typo is caught
    assert not VALIDATOR.is_valid({**good, "type": "warn"})
    assert not VALIDATOR.is_valid({"type": "error", "role": "master", "message": "x", "fatal": True})  # no exit code


def test_sink_entries_follow_the_schema() -> None:
    out, err, clock = io.StringIO(), io.StringIO(), FakeClock()
    sink = JsonProgress(out, stderr=err, verbosity=1, interval=1.0, clock=clock)
    sink.begin(["a", "b\x1b"], "host:dst", "1.2.3")
    sink.phase("connecting")
    sink.start()
    sink.update(Progress("source", 0, 0, 1000, 10, 0.0))
    for i in range(1, 11):
        clock.t += 0.25
        sink.update(Progress("destination", 100 * i, i, 0, 0, clock.t, current=f"d/f{i}"))
    sink.log("destination", "warn", "disk nearly full")
    sink.log("source", "error", "a: Permission denied")
    sink.log("source", "info", "walked 10 files")
    sink.finish(CopyResult(files_copied=10, bytes_copied=1000, failed=1, errors=[("a", "Permission denied")],
                           duration=2.5, transport="quic"))
    sink.finish(None)  # once only
    got = entries(out.getvalue())
    assert [e["type"] for e in got] == ["start", "progress", "progress", "progress", "warning", "error",
                                        "progress", "result"]
    assert got[0]["sources"] == ["a", "b\\x1b"] and got[0]["version"] == "1.2.3"
    last = got[-2]
    assert (last["bytes_done"], last["bytes_total"], last["files_done"], last["files_total"]) == (1000, 1000, 10, 10)
    assert last["current"] == "d/f10" and last["sides"]["destination"]["current"] == "d/f10"
    assert last["bytes_per_second"] == pytest.approx(400.0)
    result = got[-1]
    assert result["errors"] == [{"path": "a", "message": "Permission denied"}]
    assert (result["ok"], result["exit_code"], result["bytes_per_second"]) == (False, EXIT_PARTIAL, 400.0)
    assert got[5] == {"type": "error", "role": "source", "message": "a: Permission denied", "fatal": False}
    assert err.getvalue() == "[source] info: walked 10 files\n"  # diagnostics stay text, on stderr


def test_entry_types_are_one_list() -> None:
    out = JsonLines(io.StringIO())
    with pytest.raises(ValueError, match="unknown JSON entry type"):
        out.emit("plans", entries=[])  # not an entry type: add it to ENTRY_TYPES and the schema first


def test_result_entry_is_generic_over_copyresult_fields() -> None:
    entry = result_entry(CopyResult(kept=1, kept_paths=["x"]))
    assert entry["kept_paths"] == ["x"] and "samples" not in entry
    assert entry["bytes_per_second"] is None and entry["exit_code"] == EXIT_PARTIAL


def test_cli_json_local_copy(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    dst = f"{tmp_path / 'dst'}/"
    out, got = rcp_json(str(src), dst)
    assert out.returncode == EXIT_OK, out.stderr
    assert out.stderr == ""  # no live view, no summary: everything is on stdout
    assert_same_tree(src, tmp_path / "dst" / "src")
    assert got[0]["type"] == "start" and got[0]["destination"] == dst
    assert got[-1]["type"] == "result" and got[-1]["ok"] and got[-1]["files_copied"] == 11
    assert got[-1]["exit_code"] == EXIT_OK
    assert any(e["type"] == "progress" for e in got)
    again, got = rcp_json(str(src), dst)  # all unchanged now
    assert again.returncode == EXIT_OK and got[-1]["unchanged"] >= 11 and got[-1]["files_copied"] == 0


def test_cli_json_kept_and_missing_exit_1(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "src").mkdir()
    (tmp_path / "dst" / "src" / "size-1").write_text("different")
    out, got = rcp_json(str(src), str(tmp_path / "nope"), str(tmp_path / "dst"))
    assert out.returncode == EXIT_PARTIAL, out.stderr
    result = got[-1]
    assert result["type"] == "result" and not result["ok"] and result["exit_code"] == EXIT_PARTIAL
    assert result["kept"] >= 1 and result["failed"] >= 1
    assert any("nope" in e["path"] + e["message"] for e in result["errors"])


def test_cli_json_dry_run_plan_lines_then_the_result(tmp_path: Path) -> None:
    """--dry-run --json: the plan as `plan` lines (schema-checked), before the
    result; nothing written, and no text plan mixed into stdout."""
    src = make_tree(tmp_path / "src")
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "src").mkdir()
    (dst / "src" / "extra").write_text("only here")
    out, got = rcp_json("--dry-run", "--delete", str(src), str(dst))
    assert out.returncode == EXIT_OK, out.stderr
    plan = [e for e in got if e["type"] == "plan"]
    assert got[-1]["type"] == "result" and got.index(plan[-1]) < len(got) - 1
    actions = {e["action"] for e in plan}
    assert "create" in actions and "delete" in actions, plan
    assert any(e["action"] == "delete" and e["path"].endswith("extra") for e in plan)
    assert sorted(p.name for p in (dst / "src").iterdir()) == ["extra"]  # nothing written or deleted


def test_cli_json_connection_failure_is_a_fatal_error_line(sshd: Sshd, tmp_path: Path) -> None:
    out, got = rcp_json("--ssh-config", str(sshd.config), "--rcpd-path", "/nonexistent/rcpd",
                        str(tmp_path), f"{sshd.alias}:{tmp_path / 'x'}")
    assert out.returncode == EXIT_CONNECTION
    assert [e["type"] for e in got] == ["start", "error"]
    assert got[-1]["fatal"] and got[-1]["exit_code"] == EXIT_CONNECTION and got[-1]["kind"] == "connection"
    assert "rcpd" in got[-1]["message"]


def test_cli_json_usage_error(tmp_path: Path) -> None:
    out, got = rcp_json("--connect-timeout", "5", "hostA:x", "hostB:y", "hostC:z")
    assert out.returncode == EXIT_USAGE
    assert got[-1]["type"] == "error" and got[-1]["kind"] == "usage" and got[-1]["fatal"]


def test_cli_json_remote_copy_with_verbose(sshd: Sshd, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    out, got = rcp_json("-v", "--ssh-config", str(sshd.config), "--rcpd-path", RCPD, str(src),
                        f"{sshd.alias}:{tmp_path / 'copy'}")
    assert out.returncode == EXIT_OK, out.stderr
    assert_same_tree(src, tmp_path / "copy")
    assert got[-1]["type"] == "result" and got[-1]["files_copied"] == 11
    assert "[destination] info: " in out.stderr  # -v: the rcpds' info lines, as text on stderr
    # The file in flight (progress' `current`, protocol 5): the destination names what it writes.
    last = got[-2]
    assert last["type"] == "progress" and last["current"].startswith(f"{tmp_path / 'copy'}/"), last
    assert last["sides"]["source"]["current"].startswith(f"{src}/"), last
