"""Side by side with SkyPilot's optimizer: the same requests, each tool on its own catalog.

SkyPilot picks an AWS instance type for ``accelerators={NAME: COUNT}, cpus='N+', memory='M+'`` with
``sky.catalog.common.get_instance_type_for_accelerator_impl`` (cheapest matching row) over its own catalog; here it
reads the SkyPilot-format us-east-1 catalog in ``../shared/peer-data/skypilot`` (no network).  ccdsl resolves the
equivalent contract over its shipped catalog restricted to us-east-1.  The table shows each tool's choice, its
price, and the median time per selection; differences come from price dates and coverage of the two catalogs.

SkyPilot is heavy and is not a ccdsl dependency: install it in its own venv and point ``SKYPILOT_PYTHON`` at that
interpreter (default ``/tmp/skyvenv/bin/python``).  Without it, only ccdsl's column is printed.

    python3 -m venv /tmp/skyvenv && /tmp/skyvenv/bin/pip install skypilot
    python benchmarks/bench_vs_skypilot.py
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(os.environ.get("CCDSL_PEER_DATA", ROOT.parent / "shared" / "peer-data" / "skypilot"))

# (label, accelerator model or None, accelerator count, min vCPUs or None, min memory GiB or None)
REQUESTS = [
    ("T4 x1", "T4", 1, None, None),
    ("T4 x1, 16+ vCPU", "T4", 1, 16, None),
    ("T4 x4", "T4", 4, None, None),
    ("A10G x1", "A10G", 1, None, None),
    ("A10G x4", "A10G", 4, None, None),
    ("L4 x1", "L4", 1, None, None),
    ("L4 x8", "L4", 8, None, None),
    ("L40S x1", "L40S", 1, None, None),
    ("V100 x1", "V100", 1, None, None),
    ("A100 x8", "A100", 8, None, None),
    ("H100 x8", "H100", 8, None, None),
    ("T4 x1, 64+ GiB", "T4", 1, None, 64),
]

_SKY_SCRIPT = r"""
import json, sys, time, statistics
import pandas as pd
from sky.catalog import common
df = pd.read_csv(sys.argv[1])
out = []
for label, acc, count, cpus, mem in json.loads(sys.argv[2]):
    kw = dict(df=df, acc_name=acc, acc_count=count, region="us-east-1",
              cpus=f"{cpus}+" if cpus else None, memory=f"{mem}+" if mem else None)
    times = []
    for _ in range(21):
        t0 = time.perf_counter(); types, _fuzzy = common.get_instance_type_for_accelerator_impl(**kw)
        times.append(time.perf_counter() - t0)
    best = types[0] if types else None
    price = float(df[(df.InstanceType == best)].Price.min()) if best else None
    out.append([label, best, price, statistics.median(times)])
print(json.dumps(out))
"""


def skypilot_choices() -> list | None:
    python = os.environ.get("SKYPILOT_PYTHON", "/tmp/skyvenv/bin/python")
    csv = PEER / "aws_vms_us-east-1.csv"
    if not Path(python).exists() or not csv.exists():
        return None
    proc = subprocess.run([python, "-c", _SKY_SCRIPT, str(csv), json.dumps(REQUESTS)], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        print("skypilot run failed:", proc.stderr[-2000:], file=sys.stderr)
        return None
    return json.loads(proc.stdout)


def ccdsl_choices() -> list:
    import ccdsl
    from ccdsl.language import atleast

    catalog = ccdsl.catalog.load()
    out = []
    for label, acc, count, cpus, mem in REQUESTS:
        kw: dict = {"accelerator": acc, "accelerator_count": count, "cluster_locale": "us-east-1"}
        if cpus:
            kw["node_vcpus_count"] = atleast(cpus)
        if mem:
            kw["node_memory_size"] = atleast(mem)
        contract = ccdsl.cluster(**kw)
        times, res = [], None
        for _ in range(21):
            t0 = time.perf_counter()
            try:
                res = ccdsl.resolve(contract, catalog)
            except ccdsl.UnsatisfiableError:
                res = None
            times.append(time.perf_counter() - t0)
        if res is None:
            out.append([label, None, None, statistics.median(times)])
        else:
            out.append([label, res.instance_type, res.choice.price_per_node_hour, statistics.median(times)])
    return out


def _fmt(choice: str | None, price: float | None) -> str:
    return f"{choice} ${price:.4f}/h" if choice else "(none)"


def main() -> None:
    mine = ccdsl_choices()
    sky = skypilot_choices()
    print(f"requests: {len(REQUESTS)}; region us-east-1; medians of 21 runs per request (warm, in-process)")
    if sky is None:
        print("SkyPilot not available (set SKYPILOT_PYTHON); ccdsl only")
    header = f"{'request':<18} {'ccdsl':<34} {'ms':>6}"
    if sky:
        header += f"   {'skypilot':<34} {'ms':>6}  same"
    print(header)
    agree = 0
    for i, (label, best, price, t) in enumerate(mine):
        line = f"{label:<18} {_fmt(best, price):<34} {t * 1e3:6.2f}"
        if sky:
            _, sbest, sprice, st = sky[i]
            same = best == sbest
            agree += same
            line += f"   {_fmt(sbest, sprice):<34} {st * 1e3:6.2f}  {'yes' if same else 'no'}"
        print(line)
    if sky:
        print(f"same instance type on {agree}/{len(REQUESTS)} requests")
        print(f"median selection time: ccdsl {statistics.median(r[3] for r in mine) * 1e3:.2f} ms, "
              f"skypilot {statistics.median(r[3] for r in sky) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
