"""Timing shared by the benchmark scripts, which run as ``python benchmarks/bench_<area>.py`` (so this folder is
on ``sys.path``): one way to take samples, so that every script's medians mean the same thing."""

from __future__ import annotations

import time
from collections.abc import Callable


def timeit(fn: Callable[[], object], n: int, *, warm_up: bool = True) -> list[float]:
    """Wall-clock seconds of ``n`` calls of ``fn``, after one call that is not counted when ``warm_up`` (it opens
    connections and fills the page cache, which a steady state has already paid for)."""
    if warm_up:
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out
