"""Catalog loading: cold (fresh interpreter) and warm (in-process) medians, parquet vs CSV, and file sizes.

    python benchmarks/bench_catalog.py [--repeat N]

"cold" runs ``import ccdsl.catalog; load()`` in a new interpreter each time and reports the time measured inside
it (import + read + convert), plus the whole process wall time.  "warm" is a second ``load()`` in the same
process (the in-process cache: a copy of the cached DataFrame).  "uncached" re-reads the file every time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from timing import timeit  # noqa: E402  (benchmarks/ is this script's folder)

COLD = """
import time
t = time.perf_counter()
from ccdsl.catalog import load
df = load(user=False{cols})
print(time.perf_counter() - t, len(df))
"""


def median_ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:8.2f} ms"




def cold(n: int, cols: str = "") -> tuple[list[float], list[float]]:
    inner, wall = [], []
    env = {**os.environ, "CCDSL_DATA_DIR": tempfile.mkdtemp(prefix="ccdsl-bench-")}
    for _ in range(n):
        t = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", COLD.format(cols=cols)], capture_output=True, text=True,
                             check=True, cwd=ROOT, env=env).stdout.split()
        wall.append(time.perf_counter() - t)
        inner.append(float(out[0]))
    return inner, wall


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    n = ap.parse_args().repeat
    os.environ["CCDSL_DATA_DIR"] = tempfile.mkdtemp(prefix="ccdsl-bench-")  # no user catalogs

    import pandas as pd

    from ccdsl._resources import catalog_dir
    from ccdsl.catalog import load
    from ccdsl.catalog.loader import clear_cache
    from ccdsl.catalog.schema import DTYPES
    from ccdsl.catalog.store import read_parquet
    from ccdsl.catalog.user import read_user_catalog

    parquet, csv = catalog_dir() / "aws.parquet", catalog_dir() / "aws.csv"
    df = load(user=False)
    rows = []
    ci, cw = cold(n)
    rows.append(("cold load() [parquet, in-process]", median_ms(ci)))
    rows.append(("cold process wall (python -c ...)", median_ms(cw)))
    imp = []
    for _ in range(n):
        imp.append(float(subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); "
                                         "import pandas, pyarrow.parquet; print(time.perf_counter() - t)"],
                                        capture_output=True, text=True, check=True).stdout))
    rows.append(("  of which: import pandas + pyarrow", median_ms(imp)))
    ci2, _ = cold(n, cols=", columns=['instance_type','region','vcpus','memory_gib','price_per_hour']")
    rows.append(("cold load(columns=5 cols)", median_ms(ci2)))
    load(user=False)
    rows.append(("warm load() (cached copy)", median_ms(timeit(lambda: load(user=False), 200, warm_up=False))))

    def uncached():
        clear_cache()
        load(user=False)

    rows.append(("uncached load() [parquet read]", median_ms(timeit(uncached, max(20, n)))))
    rows.append(("parquet read_parquet only", median_ms(timeit(lambda: read_parquet(parquet), max(20, n)))))
    dtypes = {c: ("boolean" if d == "bool" else d) for c, d in DTYPES.items()}
    floats = {c: [""] for c, d in DTYPES.items() if d == "float64"}
    rows.append(("csv pandas.read_csv (typed)", median_ms(timeit(
        lambda: pd.read_csv(csv, dtype=dtypes, keep_default_na=False, na_values=floats), n))))
    rows.append(("csv validated user-catalog reader", median_ms(timeit(lambda: read_user_catalog(csv), 3))))

    print(f"catalog: {len(df)} rows, {df['instance_type'].nunique()} instance types, {df['region'].nunique()} regions,"
          f" {len(df.columns)} columns")
    print(f"files:   aws.parquet {parquet.stat().st_size / 1024:8.1f} KiB"
          f"   aws.csv {csv.stat().st_size / 1024:8.1f} KiB"
          f"   (csv/parquet = {csv.stat().st_size / parquet.stat().st_size:.1f}x)")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  median (n={n}; warm n=200)")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
