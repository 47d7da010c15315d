"""Result records: ccdsl's tagged data format (``_rank.plain`` on rank 0, ``results.loads`` here) against pickle.

    python benchmarks/bench_results.py [--repeat N]

Prints, per value, the record's size and the medians of encoding (rank 0's side) and decoding (this machine's
side), for the data format and for pickle protocol 5 (what ``trust_nodes=True`` sends, via cloudpickle).
"""

from __future__ import annotations

import argparse
import pickle
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def median(fn, n: int) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    import numpy as np

    from ccdsl.executor import _rank, results

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    n = parser.parse_args(argv).repeat
    values = {
        "1e6 ints": list(range(1_000_000)),
        "1e6 floats": [i / 3 for i in range(1_000_000)],
        "1e6 ints and strs": [i if i % 2 else str(i) for i in range(1_000_000)],
        "1e5 small dicts": [{"a": i, "b": str(i)} for i in range(100_000)],
        "80 MB float64 array": np.arange(10_000_000, dtype="f8"),
    }
    print(f"{'value':22} {'plain MB':>9} {'enc s':>7} {'dec s':>7}   {'pickle MB':>9} {'enc s':>7} {'dec s':>7}")
    for name, value in values.items():
        record = b"D" + _rank.plain(value)
        blob = pickle.dumps(value, protocol=5)
        print(f"{name:22} {len(record) / 1e6:9.1f} {median(lambda v=value: _rank.plain(v), n):7.3f} "
              f"{median(lambda r=record: results.loads(r, trust_nodes=False), n):7.3f}   {len(blob) / 1e6:9.1f} "
              f"{median(lambda v=value: pickle.dumps(v, protocol=5), n):7.3f} "
              f"{median(lambda b=blob: pickle.loads(b), n):7.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
