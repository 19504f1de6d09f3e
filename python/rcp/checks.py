"""Option values checked before anything connects: a bad value is a
UsageError naming what would be right, never rcpd's usage text later on."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import fields
from typing import Any, get_type_hints

from rcp.errors import UsageError
from rcp.model import MAX_FALLBACK_TIMEOUT, TRANSPORTS, CopyOptions
from rcp.ssh import parse_ssh_options

CONGESTION_CONTROLS = ("bbr", "cubic", "reno")
ADDRESS_FAMILIES = ("any", "inet", "inet6")
LOG_LEVELS = ("error", "warn", "info", "debug", "trace")  # RCP_LOG, as the C++ core reads it
_PORT_RANGE = re.compile(r"^\d+(-\d+)?$")


def check_port_range(text: str) -> str:
    """'8000-8999,9100' style port lists, normalized (empty = any port)."""
    text = text.strip()
    if not text:
        return ""
    for part in text.split(","):
        part = part.strip()
        if not _PORT_RANGE.match(part):
            raise UsageError(f"bad port range {text!r}: expected ports or ranges like 8000-8999,9100")
        lo, _, hi = part.partition("-")
        low, high = int(lo), int(hi or lo)
        if not (1 <= low <= 65535 and 1 <= high <= 65535) or low > high:
            raise UsageError(f"bad port range {part!r} in {text!r}: ports are 1..65535, low to high")
    return ",".join(p.strip() for p in text.split(","))


def rcp_log_level(environ: Mapping[str, str] | None = None) -> str | None:
    """RCP_LOG's level (None when unset); an unknown one is a UsageError
    listing the valid ones (the C++ core would ignore it without a word)."""
    value = (os.environ if environ is None else environ).get("RCP_LOG")
    if value is None or value == "":
        return None
    if value.strip().lower() not in LOG_LEVELS:
        raise UsageError(f"RCP_LOG={value!r} is not a log level: use one of {', '.join(LOG_LEVELS)}")
    return value.strip().lower()


def _is_type(value: Any, hint: Any) -> bool:
    """Plain isinstance against a field's annotation (int/float/str/bool,
    their `| None`, list[str], dict[str, str]); callables pass through."""
    text = str(hint)
    if "Callable" in text:
        return value is None or callable(value)
    if value is None:
        return "None" in text
    if isinstance(value, bool):
        return "bool" in text
    if isinstance(value, int):
        return "int" in text or "float" in text
    if isinstance(value, float):
        return "float" in text
    if isinstance(value, str):
        return "str" in text and not text.startswith(("list", "dict"))
    if isinstance(value, list):
        return text.startswith("list") and all(isinstance(v, str) for v in value)
    if isinstance(value, Mapping):
        return text.startswith("dict")
    return False


def check_options(opts: CopyOptions) -> None:
    """Raises UsageError for a value rcp cannot use, naming the field and
    what it takes. Called by copy/start before connecting anywhere."""
    if not isinstance(opts, CopyOptions):
        raise UsageError(f"options must be a CopyOptions, not {type(opts).__name__}")
    hints = get_type_hints(CopyOptions)
    for f in fields(CopyOptions):
        value = getattr(opts, f.name)
        hint = hints[f.name]
        if not _is_type(value, hint):
            shown = hint.__name__ if hint in (bool, int, float, str) else str(hint)
            raise UsageError(f"{f.name} must be {shown}, not {type(value).__name__} {value!r}")
    if sum(bool(x) for x in (opts.overwrite, opts.update, opts.ignore_existing)) > 1:
        raise UsageError("overwrite, update and ignore_existing exclude each other: give at most one")
    if opts.congestion_control not in CONGESTION_CONTROLS:
        raise UsageError(f"congestion_control must be one of {', '.join(CONGESTION_CONTROLS)}, "
                         f"not {opts.congestion_control!r}")
    if opts.transport not in TRANSPORTS:
        raise UsageError(f"transport must be one of {', '.join(TRANSPORTS)}, not {opts.transport!r}")
    t = opts.fallback_timeout
    if not math.isfinite(t) or not 0 < t <= MAX_FALLBACK_TIMEOUT:
        raise UsageError(f"fallback_timeout must be a number of seconds in (0, {MAX_FALLBACK_TIMEOUT:g}], not {t!r}")
    if not math.isfinite(opts.connect_timeout) or opts.connect_timeout <= 0:
        raise UsageError(f"connect_timeout must be a number of seconds > 0, not {opts.connect_timeout!r}")
    if opts.port is not None and not 1 <= opts.port <= 65535:
        raise UsageError(f"port must be 1..65535, not {opts.port!r}")
    if opts.address_family not in ADDRESS_FAMILIES:
        raise UsageError(f"address_family must be one of {', '.join(ADDRESS_FAMILIES)}, not {opts.address_family!r}")
    if opts.bandwidth_limit < 0:
        raise UsageError(f"bandwidth_limit must be bytes per second >= 0 (0: no limit), not {opts.bandwidth_limit!r}")
    if not 0 <= opts.verbose <= 3:
        raise UsageError(f"verbose must be 0..3, not {opts.verbose!r}")
    if opts.port_range:
        check_port_range(opts.port_range)
    parse_ssh_options(opts.ssh_options)  # an option rcp does not apply is refused before connecting
    rcp_log_level()
