"""Resolver speed: warm resolve on the shipped catalog, cold ``ccdsl resolve`` processes, and catalog-size scaling.

    python benchmarks/bench_resolve.py [--quick] [warm] [spot] [cold] [scaling]   (default: every section)

Prints medians (milliseconds) and sizes.  Warm numbers are with Z3's decision included (the default) and, for
comparison, without it (``prove=False``: the vectorized closed form alone).  Each warm line says which of the
targets of issue 7 it is held to: per-node contracts ≤ 2 ms in one region and ≤ 4 ms with ``--any-region``,
contracts with cluster totals or a budget ≤ 8 ms; the cold ``ccdsl resolve examples/tutorial.ccc`` ≤ 0.3 s.

Where the time goes (measured 2026-11-26 at load 2–5, CPU medians): the vectorized closed form (scope, masks,
counts, the ranking) is 0.2–1.5 ms; the rest is the Z3 proof: Pareto classes, the SMT text, one parse and two
checks, ~0.5 ms for a one-class problem and ~1.5–2 ms for the 13–40 classes of a cluster total over all regions
or a ManagerWorkers contract.  Sorting 11–17k matching rows was most of a resolve before: the ranking and the
Pareto step now restrict orders computed once per catalog view (``resolver.compile.presorted_rows``); where
counts vary or a manager's price is added, the ranking sorts one packed integer per cluster
(``resolver.solve.packed_order``: numpy's stable sort of 64-bit keys, a merge sort, was ~0.8 ms of spot_workers'
12,853 rows over every region), and a resolve sorts only the head it reads (``resolver.solve.head_order``: a
selection, then a sort of a few dozen clusters; ``select()`` sorts them all).  An infeasible contract's time is
its minimal conflict (a fresh Z3 context, deletion-based shrinking) and the nearest misses.

The machine is often shared: the CPU column (this process's time) is what a resolve costs; wall time also counts
waiting for a core, and at a load of 15 on 2 cores both grow (other processes evict the caches between time
slices), Z3's part most (spot_workers over every region, 2026-12-07: the proof alone in a loop ~2.5 ms CPU at
load 11; resolve minus closed form ~4.5 ms at load 15).

The spot section (issue 14) resolves spot contracts on a copy of the shipped catalog with SYNTHETIC spot prices
and interruption buckets written into it (``tests/synthetic.with_spot``: 20–80% of each on-demand price, drawn per
row; not AWS's prices: the shipped catalog has none), held to the same targets, plus the shipped catalog itself
(no spot price known: the unpriced answer) and a cold ``ccdsl resolve`` of a spot contract.
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
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ccdsl.contract import Contract

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

TYPICAL = """
tutorial_t3 = @cluster node_count => 4 node_machinetype => EC2Type_T3_xLarge
tutorial_gpu = @cluster(node_count => 8, accelerator_count => @just(1), accelerator_architecture => Turing,
                        accelerator_memory => @atleast(16G))
cpu_heavy = @cluster(node_count => @between(2, 32), cluster_vcpus_count => @atleast(256),
                     processor_manufacturer => @oneof(Intel, AMD))
gpu_budget = @cluster(node_count => @between(1, 16), accelerator_architecture => Ada,
                      cluster_accelerator_count => @atleast(8), cluster_price_per_hour => @atmost(40))
memory = @cluster(node_memory_size => @atleast(512G), network_performance => @atleast(25G))
manager_workers = @cluster(cluster_type => ManagerWorkers, node_count => 8,
                           manager.node_machinetype => EC2Type_T3_xLarge,
                           worker.accelerator_count => @just(8), worker.accelerator_architecture => Ada,
                           worker.node_memory_size => @atleast(512G))
infeasible = @cluster(node_count => 2, accelerator_architecture => Turing, accelerator_memory => @atleast(32G))
vcpu_memory = @cluster(node_vcpus_count => @atleast(4), node_memory_size => @atleast(16G))
a100_x8 = @cluster(accelerator => A100, accelerator_count => @just(8))
unpriced_g5 = @cluster(node_machinetype => "g5.xlarge", cluster_locale => eu_west_1)
mw_budget = @cluster(cluster_type => ManagerWorkers, node_count => 4, cluster_price_per_hour => 10)
"""
# issue 18: a ManagerWorkers cluster whose budget is a value (every manager price of each region may be the one that
# meets it) — 1.9 s and 1.44 GB over all regions before the pairs were pruned; held to 50 ms
OWN_TARGETS = {"mw_budget": 50.0}

# issue 7's targets, ms (Z3 included): (one region, any region)
PER_NODE_TARGET = (2.0, 4.0)
TOTALS_TARGET = 8.0
COLD_TARGET = 0.3  # seconds


def target(contract, any_region: bool) -> float:
    """The target a contract is held to: its own (:data:`OWN_TARGETS`), else totals or a budget (any
    cluster-scope clause), else per-node."""
    from ccdsl.parameters import PARAMETERS

    if contract.name in OWN_TARGETS:
        return OWN_TARGETS[contract.name]

    totals = any(PARAMETERS[c.parameter].scope == "total" for c in contract.clauses if c.parameter in PARAMETERS)
    return TOTALS_TARGET if totals else PER_NODE_TARGET[any_region]

SCALING = """
scaling = @cluster(node_count => @between(2, 32), cluster_vcpus_count => @atleast(256),
                   accelerator_manufacturer => NVIDIA, cluster_price_per_hour => @atmost(500))
"""


def median_ms(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def medians_ms(fn, runs: int) -> tuple[float, float]:
    """(wall, CPU) medians of the same runs.  CPU is this process's time: on a machine shared with other jobs,
    wall time also counts the time spent waiting for a core; CPU time is what the resolve itself costs.  Both come
    from one loop, so they describe the same runs (two loops can meet different conditions: the CPU median of
    one then exceeds the wall median of the other, which looks like threads and is not)."""
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - t)
    return statistics.median(wall) * 1000, statistics.median(cpu) * 1000


def warm(quick: bool) -> None:
    from ccdsl import UnsatisfiableError
    from ccdsl.catalog import load
    from ccdsl.language import parse
    from ccdsl.resolver import resolve
    from ccdsl.resolver.view import view_of

    t = time.perf_counter()
    catalog = load(user=False)
    print(f"shipped catalog: {len(catalog)} rows, load {1000 * (time.perf_counter() - t):.1f} ms (first, in-process)")
    t = time.perf_counter()
    view_of(catalog)
    print(f"array view built once: {1000 * (time.perf_counter() - t):.1f} ms")
    runs = 50 if quick else 300
    print(f"\nwarm resolve, median of {runs} (ms):")
    print(f"  {'contract':<18} {'region':<10} {'with Z3':>8} {'target':>7} {'CPU':>6} {'closed form':>12}  answer")
    met = total = 0
    for name, contract in parse(TYPICAL).items():
        for any_region in (False, True):
            def go(prove: bool = True, contract: Contract = contract, any_region: bool = any_region) -> str:
                try:
                    r = resolve(contract, catalog, any_region=any_region, prove=prove)
                    price = "price unknown" if r.price_per_hour is None else f"${r.price_per_hour:g}/h"
                    return f"{r.instance_type} × {r.node_count} {price} ({r.matches} matches)"
                except UnsatisfiableError as e:
                    return f"unsatisfiable: {', '.join(c.parameter for c in e.conflict)}"
            answer = go()
            proved, cpu = medians_ms(go, runs)
            closed = median_ms(lambda: go(False), runs)
            where = "all" if any_region else "us-east-1"
            goal = target(contract, any_region)
            ok = "infeasible" in name or proved <= goal  # an unsatisfiable contract's conflict search has no target
            met += ok and "infeasible" not in name
            total += "infeasible" not in name
            mark = "" if "infeasible" in name else ("ok" if proved <= goal else "MISSED")
            print(f"  {name:<18} {where:<10} {proved:8.2f} {goal:3.0f} {mark:<6} {cpu:6.2f} {closed:10.2f}  {answer}")
    print(f"  targets met: {met} of {total} (per-node ≤ {PER_NODE_TARGET[0]:g} ms one region, ≤ "
          f"{PER_NODE_TARGET[1]:g} ms any region; totals/budget ≤ {TOTALS_TARGET:g} ms; "
          + ", ".join(f"{k} ≤ {v:g} ms" for k, v in OWN_TARGETS.items()) + ")")


SPOT = """
spot_vcpu_memory = @cluster(node_vcpus_count => @atleast(4), node_memory_size => @atleast(16G), spot => true)
spot_gpu = @cluster(node_count => 8, accelerator_count => @just(1), accelerator_architecture => Turing,
                    accelerator_memory => @atleast(16G), spot => true)
spot_calm = @cluster(node_count => 4, node_vcpus_count => @atleast(8), spot => true,
                     spot_interruption => @atmost(10%))
spot_cpu_budget = @cluster(node_count => @between(2, 32), cluster_vcpus_count => @atleast(256),
                           cluster_price_per_hour => @atmost(20), spot => true)
spot_workers = @cluster(cluster_type => ManagerWorkers, node_count => 8, manager.node_machinetype => EC2Type_T3_xLarge,
                        worker.node_vcpus_count => @atleast(16), worker.spot => true)
"""


def spot(quick: bool) -> None:
    from ccdsl import UnsatisfiableError
    from ccdsl.catalog import load
    from ccdsl.language import parse
    from ccdsl.resolver import market, resolve
    from synthetic import SpotData, with_spot

    shipped = load(user=False)
    catalog = with_spot(shipped, SpotData(unpriced=0.05, unsupported=0.02, unknown_interruption=0.05), seed=14)
    priced = int(catalog["spot_price_per_hour"].notna().sum())
    print(f"\nspot: the shipped catalog with SYNTHETIC spot prices written into a copy ({priced} of {len(catalog)} "
          "rows priced; not AWS's prices)")
    for roles, mixed, what in (((None,), False, "spot rows only"),
                               (("worker",), True, "both markets (worker.spot)")):
        t = time.perf_counter()
        view = market.build(catalog, roles, mixed)
        print(f"  market view, {what}: {view.size} rows, built once in {1000 * (time.perf_counter() - t):.1f} ms")
    runs = 50 if quick else 300
    print(f"  warm resolve, median of {runs} (ms):")
    print("    (on-demand: the same contract resolved with spot=False on the same catalog, for comparison)")
    print(f"    {'contract':<18} {'region':<10} {'with Z3':>8} {'target':>7} {'CPU':>6} {'closed form':>12}"
          f" {'on-demand':>10}  answer")
    for name, contract in parse(SPOT).items():
        for any_region in (False, True):
            def go(prove: bool = True, contract: Contract = contract, any_region: bool = any_region,
                   df: object = catalog, spot: bool | None = None) -> str:
                try:
                    r = resolve(contract, df, any_region=any_region, prove=prove, spot=spot)
                    price = "price unknown" if r.price_per_hour is None else f"${r.price_per_hour:g}/h"
                    return f"{r.instance_type} × {r.node_count} {price} ({r.matches} matches)"
                except UnsatisfiableError as e:
                    return f"unsatisfiable: {', '.join(c.parameter for c in e.conflict)}"
            answer = go()
            proved, cpu = medians_ms(go, runs)
            closed = median_ms(lambda go=go: go(False), runs)
            # an interruption bound has no on-demand meaning (an error): nan
            bounded = any(c.parameter == "spot_interruption" for c in contract.clauses)
            on_demand = float("nan") if bounded else median_ms(lambda go=go: go(spot=False), runs)
            goal = target(contract, any_region)
            mark = "ok" if proved <= goal else "MISSED"
            where = "all" if any_region else "us-east-1"
            print(f"    {name:<18} {where:<10} {proved:8.2f} {goal:3.0f} {mark:<6} {cpu:6.2f} {closed:8.2f}"
                  f" {on_demand:10.2f}  {answer}")
    contract = parse(SPOT)["spot_vcpu_memory"]
    resolve(contract, shipped)
    unpriced = median_ms(lambda: resolve(contract, shipped), runs)
    print(f"  the shipped catalog (no spot price known, the unpriced answer), spot_vcpu_memory: {unpriced:.2f} ms")


def cold(quick: bool) -> None:
    runs = 5 if quick else 11
    cmd = [sys.executable, "-m", "ccdsl", "resolve", "examples/tutorial.ccc", "--json"]
    # an installed ccdsl has its bytecode compiled; without this, PYTHONDONTWRITEBYTECODE=1 would make every run
    # compile the modules again
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "ccdsl")], check=True)
    with tempfile.TemporaryDirectory() as data:
        env = {**os.environ, "CCDSL_DATA_DIR": data}
        subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)  # writes the view cache

        def cached() -> None:
            subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, check=True)

        def uncached() -> None:
            with tempfile.TemporaryDirectory() as fresh:
                subprocess.run(cmd, cwd=ROOT, env={**os.environ, "CCDSL_DATA_DIR": fresh}, capture_output=True,
                               check=True)

        bare = median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), runs)
        print(f"\ncold `ccdsl resolve examples/tutorial.ccc --json` process, median of {runs} (ms):")
        usual = median_ms(cached, runs)
        print(f"  with the cached array view (usual case): {usual:7.1f}   target {COLD_TARGET * 1000:.0f}: "
              f"{'ok' if usual <= COLD_TARGET * 1000 else 'MISSED'}")
        print(f"  first run (pandas reads the catalog):   {median_ms(uncached, runs):7.1f}")
        print(f"  bare python interpreter for reference:  {bare:7.1f}")
        spot_file = Path(data) / "spot.ccc"
        spot_file.write_text(SPOT)
        spot_cmd = [sys.executable, "-m", "ccdsl", "resolve", str(spot_file), "--contract", "spot_vcpu_memory",
                    "--json"]
        subprocess.run(spot_cmd, cwd=ROOT, env=env, capture_output=True, check=True)  # writes the spot view cache
        spot_cached = median_ms(lambda: subprocess.run(spot_cmd, cwd=ROOT, env=env, capture_output=True, check=True),
                                runs)
        print(f"  a spot contract (shipped catalog), cached spot view: {spot_cached:7.1f}")


def scaling(quick: bool) -> None:
    from ccdsl.language import parse
    from ccdsl.resolver import resolve
    from ccdsl.resolver.solve import prove, rank
    from ccdsl.resolver.view import view_of
    from synthetic import catalog

    contract = parse(SCALING)["scaling"]
    sizes = (1_000, 10_000, 100_000) if quick else (1_000, 10_000, 100_000, 1_000_000)
    print("\nresolve time vs synthetic catalog size (6 regions; contract: 2..32 NVIDIA nodes, ≥256 vCPUs, ≤$500/h):")
    print(f"  {'rows':>9} {'view build':>11} {'one region':>11} {'all regions':>12} {'candidates':>11}"
          f" {'Z3 classes':>11}")
    for n in sizes:
        df = catalog(rows=n, seed=7)
        t = time.perf_counter()
        view = view_of(df)
        build = 1000 * (time.perf_counter() - t)
        runs = 5 if n >= 1_000_000 else 21
        one = median_ms(partial(resolve, contract, view), runs)
        everywhere = median_ms(partial(resolve, contract, view, any_region=True), runs)
        ranking = rank(view, contract, "us-east-1", True)
        classes = prove(ranking).classes
        print(f"  {len(df):>9} {build:9.1f}ms {one:9.2f}ms {everywhere:10.2f}ms {len(ranking.rows):>11} {classes:>11}")


def main() -> None:
    quick = "--quick" in sys.argv
    sections = {"warm": warm, "spot": spot, "cold": cold, "scaling": scaling}
    chosen = [name for name in sys.argv[1:] if name in sections] or list(sections)
    for name in chosen:
        sections[name](quick)


if __name__ == "__main__":
    main()
