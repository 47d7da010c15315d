"""Language front end speed: import cost, parser construction (cached / uncached) and parse+check per contract.

Run: ``python benchmarks/bench_language.py``.  Prints medians; cold numbers come from fresh processes.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_TIMED_IMPORT = ("import time; t = time.perf_counter(); import ccdsl.language as l; t1 = time.perf_counter(); "
                 "l.parse('c = @cluster(node_count => 2)'); t2 = time.perf_counter(); print(t1 - t, t2 - t1)")


def _fresh(env: dict | None = None, runs: int = 15) -> tuple[float, float, float]:
    """Medians (ms) over fresh processes: import ccdsl.language, first parse (parser build or cache load), wall."""
    imports, firsts, walls = [], [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", _TIMED_IMPORT], capture_output=True, text=True, check=True,
                             cwd=ROOT, env={**os.environ, **(env or {})}).stdout.split()
        walls.append(time.perf_counter() - t0)
        imports.append(float(out[0]))
        firsts.append(float(out[1]))
    return tuple(statistics.median(x) * 1000 for x in (imports, firsts, walls))


def _baseline(runs: int = 15) -> float:
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls) * 1000


def _median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    print(f"python -c pass: wall {_baseline():.1f} ms (median of 15)")
    with tempfile.TemporaryDirectory() as cache:
        env = {"XDG_CACHE_HOME": cache}
        subprocess.run([sys.executable, "-c", _TIMED_IMPORT], check=True, cwd=ROOT, env={**os.environ, **env},
                       capture_output=True)
        imp, first, wall = _fresh(env)
        print(f"fresh process, parser cache warm : import ccdsl.language {imp:.1f} ms, first parse {first:.1f} ms, "
              f"wall {wall:.1f} ms")
    with tempfile.NamedTemporaryFile() as not_a_dir:
        imp, first, wall = _fresh({"XDG_CACHE_HOME": not_a_dir.name})
        print(f"fresh process, no usable cache  : import ccdsl.language {imp:.1f} ms, first parse {first:.1f} ms "
              f"(builds the LALR tables), wall {wall:.1f} ms")

    from ccdsl.language import check, parse

    print("\nwarm process, parse + check (median of 200):")
    total_contracts = 0
    for path in sorted((ROOT / "examples").glob("*.ccc")):
        text = path.read_text()
        n = len(parse(text))
        total_contracts += n
        ms = _median_ms(partial(check, text), 200)
        print(f"  {path.name:24s} {n} contracts  {ms:.3f} ms  = {ms / n * 1000:.0f} us per contract")

    one = "c{i} = @cluster(node_count => @between(2, 16), cluster_vcpus_count => @atleast(256),\n" \
          "     accelerator_architecture => Ampere, accelerator_memory => @atleast(24G))\n"
    for n in (100, 1000):
        text = "".join(one.format(i=i) for i in range(n))
        ms = _median_ms(partial(check, text), 5)
        print(f"  generated file, {n:5d} contracts: {ms:.1f} ms = {ms / n * 1000:.0f} us per contract")
        bad = text.replace("=> @between", "=> @between(", 10)
        ms = _median_ms(partial(check, bad), 5)
        print(f"  same with 10 syntax errors (per-contract recovery): {ms:.1f} ms")


if __name__ == "__main__":
    main()
