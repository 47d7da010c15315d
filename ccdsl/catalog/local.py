"""This machine as a catalog row: ``provider = local``, ``region = local``, ``instance_type = localhost``.

``node_provider => Local`` is how a user tries a program before paying, so the resolver must be able to answer it
with no set-up at all.  The facts are read from the operating system (CPU count, memory, ISA, CPU vendor) each
time the catalog is loaded; the price is 0.  Because a free row would win every contract, the resolver lets the
``local`` provider (like every free on-premise row) compete only when a contract names it (see
:mod:`ccdsl.resolver.filter`).  A
user catalog row with the same key (local, local, localhost) replaces this one.  The facts are read once per
process (the resolver keys its cache on them at every call).  ``max_nodes`` is NaN
(unlimited): several local "nodes" are processes on this one machine.
"""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

PROVIDER = REGION = "local"
INSTANCE_TYPE = "localhost"

_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD"}


def _memory_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def _cpuinfo() -> dict[str, str]:
    """The first processor's fields of /proc/cpuinfo (empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def _cores(vcpus: int, info: dict[str, str]) -> int:
    try:
        per_socket = int(info.get("cpu cores", ""))
        siblings = int(info.get("siblings", ""))
        return max(1, min(vcpus, vcpus * per_socket // siblings))
    except (ValueError, ZeroDivisionError):
        return vcpus


def local_record() -> dict[str, Any]:
    """The raw record for this machine, in the user-catalog form (validated and completed by the loader)."""
    return dict(_machine_facts())


@lru_cache(maxsize=1)
def _machine_facts() -> tuple[tuple[str, Any], ...]:
    info = _cpuinfo()
    vcpus = os.cpu_count() or 1
    machine = platform.machine().lower()
    isa = "arm64" if machine in ("arm64", "aarch64") else "x86_64" if machine in ("x86_64", "amd64") else ""
    record: dict[str, Any] = {
        "provider": PROVIDER, "region": REGION, "instance_type": INSTANCE_TYPE, "family": "local",
        "vcpus": vcpus, "cores": _cores(vcpus, info), "memory_gib": round(_memory_gib(), 3),
        "price_per_hour": 0.0, "price_source": "local",
    }
    if isa:
        record["cpu_architecture"] = isa
    vendor = _VENDORS.get(info.get("vendor_id", ""))
    if vendor:
        record["cpu_manufacturer"] = vendor
    return tuple(record.items())


def local_frame() -> pd.DataFrame:
    """This machine's row as a one-row DataFrame with the schema's columns and dtypes."""
    from ccdsl.catalog.store import frame_from_rows
    from ccdsl.catalog.user import validate_record

    row = validate_record(local_record(), "<this machine>", lambda _column: None)
    return frame_from_rows([row])
