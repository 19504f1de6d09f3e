"""The example notebook runs as written: its code cells, in order, in one namespace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "copy_with_progress.ipynb"


def test_example_notebook_runs(capsys) -> None:
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert len(code) >= 3
    namespace: dict[str, object] = {}
    try:
        for source in code:
            exec(compile(source, str(NOTEBOOK), "exec"), namespace)  # noqa: S102 - our own notebook
        result = namespace["result"]
        assert result.ok and result.files_copied == 101  # type: ignore[attr-defined]
        # Outside Jupyter the notebook view falls back to log lines and the summary.
        assert "rcp: 101 files" in capsys.readouterr().err
    finally:
        if "work" in namespace:
            shutil.rmtree(namespace["work"], ignore_errors=True)  # type: ignore[arg-type]
