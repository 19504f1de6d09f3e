"""The example notebooks, executed in a real Jupyter kernel (ipykernel, run by
nbclient) on this venv's Python, registered as a kernel in a temporary
JUPYTER_PATH: the live view is HTML updated in place, result.plot() draws,
and the second notebook moves a dataset between two hosts (the sshd
fixture's alias, twice) and checks it."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import nbformat  # python3-nbformat, python3-nbclient and python3-ipykernel: installed by bootstrap
import pytest
from nbclient import NotebookClient

import rcp.daemon
from sshd import Sshd

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "rcp-test"


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This interpreter as the kernel `rcp-test`, and every Jupyter, IPython
    and matplotlib directory under tmp_path (nothing in the real home)."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "rcp test (venv)", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    for var, sub in (("JUPYTER_DATA_DIR", "jupyter-data"), ("JUPYTER_RUNTIME_DIR", "jupyter-runtime"),
                     ("JUPYTER_CONFIG_DIR", "jupyter-config"), ("IPYTHONDIR", "ipython"),
                     ("MPLCONFIGDIR", "matplotlib")):
        (tmp_path / sub).mkdir()
        monkeypatch.setenv(var, str(tmp_path / sub))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.delenv("MPLBACKEND", raising=False)
    return KERNEL


def execute(name: str, kernel: str, cwd: Path) -> Any:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=240, resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def outputs(cell: Any, mime: str) -> list[str]:
    return [o["data"][mime] for o in cell.get("outputs", []) if mime in o.get("data", {})]


def cell_with(nb: Any, text: str) -> Any:
    [cell] = [c for c in nb.cells if c.cell_type == "code" and text in c.source]
    return cell


def check_live_view_and_plot(nb: Any, copy_cell: str, files: int) -> None:
    cell = cell_with(nb, copy_cell)
    views = [o for o in cell.outputs if o.get("output_type") == "display_data"]
    assert len(views) == 1, cell.outputs  # one display, updated in place (display_id), not one per update
    page = views[0]["data"]["text/html"]
    assert 'class="rcp-progress"' in page and f"<b>rcp:</b> {files} files" in page, page  # the summary, at the end
    assert [o["output_type"] for o in cell.outputs][-1] == "execute_result"  # the CopyResult
    assert not [o for o in cell.outputs if o.get("output_type") == "stream" and o.get("name") == "stdout"]
    plot = cell_with(nb, "result.plot()")
    [png] = outputs(plot, "image/png")
    assert base64.b64decode(png).startswith(b"\x89PNG")


def test_copy_with_progress_notebook(kernel: str, tmp_path: Path) -> None:
    nb = execute("copy_with_progress.ipynb", kernel, tmp_path)
    check_live_view_and_plot(nb, 'progress="notebook"', 101)
    [text] = [o["text"] for o in cell_with(nb, "len(result.samples)").outputs if o.get("name") == "stdout"]
    assert text.startswith("101 files, 40.1 MB in "), text
    # A background transfer, shown and cancelled: its result says so.
    [page] = outputs(cell_with(nb, "transfer.cancel()"), "text/html")[-1:]
    assert "cancelled" in page, page


def test_move_dataset_notebook(kernel: str, sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var, value in (("HOST_A", sshd.alias), ("HOST_B", sshd.alias), ("DIR_A", str(tmp_path / "host-a")),
                       ("DIR_B", str(tmp_path / "host-b")), ("SSH_CONFIG", str(sshd.config)),
                       ("RCPD", str(rcp.daemon.rcpd_path()))):
        monkeypatch.setenv(f"RCP_DEMO_{var}", value)
    nb = execute("move_dataset.ipynb", kernel, tmp_path)
    check_live_view_and_plot(nb, 'progress="notebook"', 201)
    moved = tmp_path / "host-b" / "dataset"
    assert sum(1 for p in moved.rglob("*") if p.is_file()) == 201
    assert not (tmp_path / "host-a" / "dataset").exists()  # moved: checked, then removed from A
    [text] = [o["text"] for o in cell_with(nb, "checksum=True").outputs if o.get("name") == "stdout"]
    assert text == f"all 201 files identical on {sshd.alias}\n"


def test_sharded_copy_notebook(kernel: str, sshd: Sshd, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """notebooks/sharded_copy.ipynb: two pairs (aliases of one sshd), the shards on a Dask LocalCluster."""
    config = tmp_path / "ssh_config"
    text = sshd.config.read_text()
    config.write_text("\n".join(text.replace(f"Host {sshd.alias}\n", f"Host {n}\n") for n in ("a1", "a2", "b1", "b2")))
    for var, value in (("SOURCE_HOSTS", "a1,a2"), ("DESTINATION_HOSTS", "b1,b2"), ("SRC_DIR", str(tmp_path / "a")),
                       ("DST_DIR", str(tmp_path / "b")), ("SSH_CONFIG", str(config)),
                       ("RCPD", str(rcp.daemon.rcpd_path()))):
        monkeypatch.setenv(f"RCP_DEMO_{var}", value)
    nb = execute("sharded_copy.ipynb", kernel, tmp_path)
    assert sum(1 for p in (tmp_path / "b" / "data").rglob("*") if p.is_file()) == 200
    [text] = [o["text"] for o in cell_with(nb, "for s in sharded.shards").outputs if o.get("name") == "stdout"]
    assert "shard 0 on a1->b1" in text and "shard 1 on a2->b2" in text, text
    [page] = outputs(cell_with(nb, "progress=\"notebook\""), "text/html")[-1:]
    assert "200 files" in page, page
