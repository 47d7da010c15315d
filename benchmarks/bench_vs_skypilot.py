"""Side by side with SkyPilot's optimizer: the same requests, each tool on its own catalog, timed end to end.

SkyPilot answers ``Resources(infra="aws/us-east-1", accelerators={NAME: COUNT}, cpus="N+", memory="M+")`` with its
whole ``sky.Optimizer.optimize`` on a one-task DAG (what ``sky launch`` runs before provisioning: resource
validation, feasibility per cloud, catalog lookups, cost and the plan), over its own AWS catalog: the SkyPilot-format
us-east-1 catalog in ``../shared/peer-data/skypilot`` placed where SkyPilot looks for it, AWS the only enabled
cloud.  ccdsl resolves the equivalent contract (``ccdsl.resolve``, Z3's proof included) over its shipped catalog
restricted to us-east-1.  The table shows each tool's choice and price, the median time per query of each, and
their ratio; differences in the choice come from the price dates and coverage of the two catalogs.

SkyPilot is heavy and is not a ccdsl dependency: install it in its own venv and point ``SKYPILOT_PYTHON`` at that
interpreter (default ``/tmp/skyvenv/bin/python``).  It runs in a subprocess, inside a fresh network namespace when
this runs as root (``unshare -n``: it cannot reach anything, so nothing is fetched or checked online).  Without
SkyPilot, only ccdsl's column is printed.

    python3 -m venv /tmp/skyvenv && /tmp/skyvenv/bin/pip install 'skypilot==0.14.1'
    python benchmarks/bench_vs_skypilot.py
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEER = Path(os.environ.get("CCDSL_PEER_DATA", ROOT.parent / "shared" / "peer-data" / "skypilot"))
RUNS = 21

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

# Runs in SkyPilot's interpreter.  argv: catalog dir, requests (JSON), runs, output file.
_SKY_SCRIPT = r"""
import json, os, shutil, statistics, sys, tempfile, time
peer, requests, runs, out = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
home = tempfile.mkdtemp(prefix="sky-home-")
catalogs = os.path.join(home, ".sky", "catalogs", "v8")
os.makedirs(os.path.join(catalogs, "aws")); os.makedirs(os.path.join(catalogs, "common"))
shutil.copy(os.path.join(peer, "aws_vms_us-east-1.csv"), os.path.join(catalogs, "aws", "vms.csv"))
for name in ("accelerators.csv", "metadata.csv"):
    shutil.copy(os.path.join(peer, name), os.path.join(catalogs, "common", name))
os.environ.update(HOME=home, SKY_RUNTIME_DIR=home, AWS_EC2_METADATA_DISABLED="true")
import pandas as pd
import sky
from sky import check, clouds, exceptions
from sky.optimizer import Optimizer
aws = clouds.AWS()
check.get_cached_enabled_clouds_or_refresh = lambda *a, **k: [aws]  # AWS only, no credential check
prices = pd.read_csv(os.path.join(catalogs, "aws", "vms.csv"))
def question(acc, count, cpus, mem):
    task = sky.Task(run="true")
    task.set_resources(sky.Resources(infra="aws/us-east-1", accelerators={acc: count},
                                     cpus=f"{cpus}+" if cpus else None, memory=f"{mem}+" if mem else None))
    with sky.Dag() as dag:
        dag.add(task)
    return dag, task
result = []
for label, acc, count, cpus, mem in requests:
    times, best = [], None
    for i in range(runs + 1):  # the first run loads the catalog: not counted
        dag, task = question(acc, count, cpus, mem)
        t0 = time.perf_counter()
        try:
            Optimizer.optimize(dag, quiet=True)
            best = task.best_resources.instance_type
        except exceptions.ResourcesUnavailableError:
            best = None
        if i:
            times.append(time.perf_counter() - t0)
    price = float(prices[prices.InstanceType == best].Price.min()) if best else None
    result.append([label, best, price, statistics.median(times)])
with open(out, "w") as f:
    json.dump({"version": sky.__version__, "results": result}, f)
"""


def skypilot_choices() -> dict | None:
    python = os.environ.get("SKYPILOT_PYTHON", "/tmp/skyvenv/bin/python")
    if not Path(python).exists() or not (PEER / "aws_vms_us-east-1.csv").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sky.json"
        cmd = [python, "-c", _SKY_SCRIPT, str(PEER), json.dumps(REQUESTS), str(RUNS), str(out)]
        if os.geteuid() == 0 and shutil.which("unshare"):
            cmd = ["unshare", "-n", *cmd]  # no network at all: SkyPilot cannot fetch or check anything
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0 or not out.exists():
            print("skypilot run failed:", proc.stderr[-2000:], file=sys.stderr)
            return None
        return json.loads(out.read_text())


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
        for _ in range(RUNS):
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
    print(f"requests: {len(REQUESTS)}; region us-east-1; median of {RUNS} warm runs per request, in-process")
    if sky is None:
        print("SkyPilot not available (set SKYPILOT_PYTHON); ccdsl only")
    else:
        print(f"SkyPilot {sky['version']}: the whole Optimizer.optimize per query; ccdsl: resolve with Z3's proof")
    header = f"{'request':<18} {'ccdsl':<34} {'ms':>6}"
    if sky:
        header += f"   {'skypilot':<34} {'ms':>7} {'ratio':>6}  same"
    print(header)
    agree = 0
    for i, (label, best, price, t) in enumerate(mine):
        line = f"{label:<18} {_fmt(best, price):<34} {t * 1e3:6.2f}"
        if sky:
            _, sbest, sprice, st = sky["results"][i]
            same = best == sbest
            agree += same
            line += f"   {_fmt(sbest, sprice):<34} {st * 1e3:7.2f} {st / t:5.1f}x  {'yes' if same else 'no'}"
        print(line)
    if sky:
        ratios = [s[3] / m[3] for s, m in zip(sky["results"], mine)]
        print(f"same instance type on {agree}/{len(REQUESTS)} requests")
        print(f"median per query: ccdsl {statistics.median(r[3] for r in mine) * 1e3:.2f} ms, "
              f"skypilot {statistics.median(r[3] for r in sky['results']) * 1e3:.2f} ms; "
              f"ratio skypilot/ccdsl: median {statistics.median(ratios):.1f}x "
              f"(range {min(ratios):.1f}x to {max(ratios):.1f}x)")


if __name__ == "__main__":
    main()
