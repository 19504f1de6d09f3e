"""RCP_TRACE=1: one stderr line per start-up step, for docs/performance.md.

Each line is `rcp-trace <unix time> <step>`: absolute times, so a caller
that noted when it started the process (bench/startup_bench.py) can tell
how long Python took to get here as well as each step after.
"""

from __future__ import annotations

import os
import sys
import time

ENABLED = bool(os.environ.get("RCP_TRACE"))


def mark(step: str) -> None:
    """Notes that `step` is done (nothing unless RCP_TRACE is set)."""
    if ENABLED:
        sys.stderr.write(f"rcp-trace {time.time():.6f} {step}\n")
        sys.stderr.flush()
