"""Locating the rcpd executable shipped with this package."""

from __future__ import annotations

import os
from pathlib import Path


def rcpd_path() -> Path:
    """The rcpd installed beside this package (override with RCP_RCPD)."""
    override = os.environ.get("RCP_RCPD")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "bin" / "rcpd"
