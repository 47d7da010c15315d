"""Hostile sizes: huge node counts, thousands of errors, long literals and large files (issue 8, items 3, 10, 11),
and short contracts that used to take seconds and gigabytes (issue 18, item 3).

    python benchmarks/bench_limits.py [--quick] [table]   (table: only the issue-18 section)

Prints medians (ms) and peak traced memory (MiB, tracemalloc: Python objects and numpy buffers) per size, so that
linear growth (or none, for counts) can be read off the table.  The issue-18 section runs each contract in a child
process (catalog loaded, then parse + check + resolve timed) and prints the medians of wall and CPU time and of the
child's peak RSS (``VmHWM``, the whole process: Python, the catalog and its view included), against the limit
of 2 s and 600 MB.
"""

from __future__ import annotations

import statistics
import sys
import time
import tracemalloc
from functools import partial

QUICK = "--quick" in sys.argv


def measure(fn, runs: int) -> tuple[float, float]:
    """(median ms, peak MiB of one run)."""
    fn()  # warm: the parser, the catalog view
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    tracemalloc.start()
    try:
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return statistics.median(times) * 1000, peak / 2**20


def counts() -> None:
    from ccdsl.language import parse
    from ccdsl.resolver import resolve

    print("node counts (shipped catalog, us-east-1): resolve with Z3")
    print(f"  {'contract':<80} {'median':>9} {'peak':>9}")
    for text in ["node_count => 4", "node_count => 100000000", "node_count => 100000000000",
                 "node_count => @atleast(9007199254740992)", "node_count => @not(1, 2, 100000000000000)",
                 "node_count => @between(1, 1000000), cluster_vcpus_count => @oneof(64, 128)",
                 "node_count => @between(1, 10000000000), cluster_memory_size => @just(1000000G)"]:
        c = parse(f"c = @cluster({text})")["c"]
        ms, mib = measure(partial(resolve, c), 3 if QUICK else 7)
        print(f"  {text:<80} {ms:8.1f}ms {mib:8.1f}M")


def diagnostics() -> None:
    from ccdsl.errors import ContractError
    from ccdsl.language import check, parse

    print("\ndiagnostics: N unknown parameters, one contract per line; check + the capped report")
    print(f"  {'errors':>7} {'bytes':>9} {'median':>9} {'per error':>10} {'peak':>9} {'report':>8}")
    for n in ((500, 1000, 2000) if QUICK else (1000, 2000, 4000, 8000)):
        text = "".join(f"c{i} = @cluster(nodez_count => 4)\n" for i in range(n))

        def go(text: str = text) -> int:
            check(text)
            try:
                parse(text)
            except ContractError as e:
                return len(e.render())
            return 0

        ms, mib = measure(go, 3)
        print(f"  {n:>7} {len(text):>9} {ms:8.0f}ms {1000 * ms / n:8.1f}µs {mib:8.1f}M {go():>8}")


def sizes() -> None:
    import os

    from ccdsl.language import check

    os.environ["CCDSL_MAX_CONTRACT_BYTES"] = str(64 << 20)
    print("\ninput size (limit raised): one string literal of S bytes; a valid file of S/4 bytes (V)")
    print(f"  {'S':>9} {'literal':>9} {'peak':>8} {'V':>9} {'file':>9} {'peak':>8} {'contracts':>9}")
    line = "c{} = @cluster(node_count => @between(2, 16), node_memory_size => @atleast(16G), accelerator_count => 1)\n"
    for size in ((250_000, 500_000, 1_000_000) if QUICK else (500_000, 1_000_000, 2_000_000, 4_000_000)):
        literal = 'c = @cluster(node_count => 4, image_id => "' + "a" * size + '")\n'
        lms, lmib = measure(partial(check, literal), 1 if QUICK else 3)
        n = size // len(line.format(0))
        valid = "".join(line.format(i) for i in range(n // 4))  # a quarter: Lark takes ~0.3 ms per contract
        vms, vmib = measure(partial(check, valid), 1)
        print(f"  {size:>9} {lms:8.0f}ms {lmib:7.1f}M {len(valid):>9} {vms:8.0f}ms {vmib:7.1f}M {n // 4:>9}")


CHILD = r"""
import json, sys, time
from ccdsl.errors import CcdslError, UnsatisfiableError
from ccdsl.language import parse
from ccdsl.resolver import resolve
text, any_region = open(sys.argv[1]).read(), sys.argv[2] == "1"
resolve(parse("w = @cluster(node_count => 1)")["w"])  # the catalog and its view: loaded before the clock starts
t, c = time.perf_counter(), time.process_time()
try:
    contract = next(iter(parse(text).values()))
    r = resolve(contract, any_region=any_region)
    answer = f"{r.instance_type} x {r.node_count} in {r.region}" + (f", manager {r.manager.instance_type}"
                                                                    if r.manager else "")
except UnsatisfiableError as e:
    answer = "unsatisfiable: " + ", ".join(x.parameter for x in e.conflict)
except CcdslError as e:
    answer = "refused: " + str(e).splitlines()[0][:60]
with open("/proc/self/status") as f:  # this process's peak RSS (ru_maxrss would count the parent's, see table())
    rss = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"wall": time.perf_counter() - t, "cpu": time.process_time() - c, "answer": answer, "rss": rss}))
"""


def _listed(prefix: str, values: list[str], suffix: str, limit: int = 1 << 20) -> str:
    """The contract with as many of ``values`` as fit in ``limit`` bytes (the input limit: 1 MiB)."""
    lo, hi = 1, len(values)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len((prefix + ", ".join(values[:mid]) + suffix).encode()) < limit:
            lo = mid
        else:
            hi = mid - 1
    return prefix + ", ".join(values[:lo]) + suffix


def issue18_contracts() -> list[tuple[str, str, bool]]:
    """(label, contract text, any region) of issue 18's table, then the largest lists that fit in 1 MiB."""
    def nots(k: int) -> str:
        return ("c = @cluster(node_count => @between(1, 1000), cluster_vcpus_count => @not("
                + ", ".join(str(v) for v in range(1, k + 1)) + "))\n")
    evens = [str(v) for v in range(2, 2049, 2)]
    return [
        ("@just(100) budget, ManagerWorkers, eu-west-1",
         'c = @cluster(cluster_price_per_hour => @just(100), cluster_locale => "eu-west-1", '
         "cluster_type => ManagerWorkers)\n", False),
        ("budget 1e-9, ManagerWorkers",
         "c = @cluster(cluster_price_per_hour => 1e-9, cluster_type => ManagerWorkers)\n", True),
        ("mw budget 10, node_count 4", "mw = @cluster(cluster_type => ManagerWorkers, node_count => 4, "
         "cluster_price_per_hour => 10)\n", True),
        ("vcpus @not(1..400), 1..1000 nodes", nots(400), False),
        ("vcpus @not(1..1600), 1..1000 nodes", nots(1600), False),
        ("135-byte MW, @not, @oneof budget, 100000 nodes",
         "c = @cluster(cluster_type => ManagerWorkers, node_count => 100000, cluster_vcpus_count => @not(8, 16), "
         "cluster_price_per_hour => @oneof(10, 20))\n", True),
        # past the table: the largest lists that fit in the 1 MiB input limit, and the worst cases under the cap
        ("vcpus @not(1..K), K to fill 1 MiB",
         _listed("c = @cluster(node_count => @between(1, 1000000), cluster_vcpus_count => @not(",
                 [str(v) for v in range(1, 200_000)], "))\n"), False),
        ("node_count @not(1..K), K to fill 1 MiB",
         _listed("c = @cluster(node_count => @not(", [str(v) for v in range(1, 200_000)], "))\n"), True),
        ("vcpus @not(2, 4, .., 2048): 1,024 apart",
         "c = @cluster(node_count => @between(1, 100000), node_vcpus_count => @atleast(2), cluster_vcpus_count => "
         "@not(" + ", ".join(evens) + "))\n", False),
        ("memory @oneof of 1,024 values",
         "c = @cluster(node_count => @between(1, 100000), cluster_memory_size => @oneof("
         + ", ".join(f"{v}.5G" for v in range(1000, 2024)) + "))\n", True),
        ("vcpus @oneof, 200k values (refused)",
         _listed("c = @cluster(cluster_vcpus_count => @oneof(", [str(v) for v in range(2, 400_000, 2)], "))\n"),
         False),
        ("MW @just(100) budget, 1..1000 nodes",
         "c = @cluster(cluster_type => ManagerWorkers, node_count => @between(1, 1000), "
         "cluster_price_per_hour => @just(100))\n", True),
        ("MW @atleast(100) budget, 1..1000 nodes",
         "c = @cluster(cluster_type => ManagerWorkers, node_count => @between(1, 1000), "
         "cluster_price_per_hour => @atleast(100))\n", True),
        # @not on the budget excludes one price, yet paired every worker row with every manager price (7.7 s CPU,
        # 1.5 GB); and an @atleast budget next to a @not total paired every manager too (2.6 s CPU)
        ("MW @not(13.34) budget, at most 1060 nodes",
         "c = @cluster(cluster_type => ManagerWorkers, node_count => @atmost(1060), "
         "cluster_price_per_hour => @not(13.34))\n", True),
        ("MW @atleast(13.34) budget, vcpus @not(64, 128)",
         "c = @cluster(cluster_type => ManagerWorkers, node_count => @atmost(1060), "
         "cluster_price_per_hour => @atleast(13.34), cluster_vcpus_count => @not(64, 128))\n", True),
        # each listed price was a coincidence looked for in every worker × manager pair (3.7 million pairs): 4-9 s
        # CPU for 38-45 listed prices; now a join of the values with each region's manager prices
        *((f"MW @oneof budget of {k} prices, at most 1060 nodes",
           "c = @cluster(cluster_type => ManagerWorkers, node_count => @atmost(1060), cluster_price_per_hour => "
           "@oneof(" + ", ".join(f"{v / 100:g}" for v in range(5, 5 + k * step, step)) + "))\n", True)
          for k, step in ((38, 37), (64, 22))),
        # with 1..10**6 nodes a row's window of counts is up to a million wide, and the join looked each count up:
        # 38 prices up to $988/h 1.7 s CPU, 1,024 prices up to $9,995/h over 100 s; now each row's managers are
        # sorted by residue once and the values walked cheapest first (_residue_pairs)
        *((f"MW {k:,} prices to ${(5 + (k - 1) * step) / 100:,.0f}/h, 1..10**6 nodes",
           "c = @cluster(cluster_type => ManagerWorkers, node_count => @between(1, 1000000), "
           "cluster_price_per_hour => @oneof(" + ", ".join(f"{v / 100:g}" for v in range(5, 5 + k * step, step))
           + "))\n", True)
          for k, step in ((38, 2670), (64, 15865))),
        # the checker's cap (MAX_LISTED_BUDGET = 64; 1,024 before): prices a fraction of a cent off the catalog's
        # grid meet no cluster, so every worker row looks every price up (and the conflict is ranked again); 128
        # such prices took 1.8 s CPU, 256 3.3 s, 1,024 8 s
        *((f"MW 64 off-grid prices, step ${step:g}, {label}",
           f"c = @cluster(cluster_type => ManagerWorkers, node_count => {count}, cluster_price_per_hour => "
           "@oneof(" + ", ".join(f"{(k + 1) * step + 0.0000037:.7f}" for k in range(64)) + "))\n", True)
          for step, count, label in ((15, "@between(1, 1000000)", "1..10**6 nodes"),
                                     (9.76, "@atmost(1060)", "<= 1060 nodes"),
                                     (15, "@between(1, 1000000000000)", "1..10**12 nodes"))),
        ("MW 1,024 prices (refused: at most 64)",
         "c = @cluster(cluster_type => ManagerWorkers, node_count => @between(1, 1000000), "
         "cluster_price_per_hour => @oneof(" + ", ".join(f"{v / 100:g}" for v in range(5, 5 + 1024 * 977, 977))
         + "))\n", True),
        ("2**53 vcpus total", "c = @cluster(node_count => @between(1, 9007199254740992), "
         "cluster_vcpus_count => @atleast(9007199254740992))\n", False),
    ]


def table(quick: bool) -> None:
    import json
    import os
    import subprocess
    import tempfile

    runs = 3 if quick else 5
    print(f"\nissue 18: each contract in a child process, median of {runs} (limit: 2 s, 600 MB peak RSS)")
    print(f"  {'contract':<46} {'bytes':>8} {'wall':>7} {'CPU':>7} {'RSS':>7}  answer")
    with tempfile.TemporaryDirectory() as tmp:
        for label, text, any_region in issue18_contracts():
            path = os.path.join(tmp, "c.ccc")
            with open(path, "w") as f:
                f.write(text)
            wall, cpu, rss, answer = [], [], [], ""
            for _ in range(runs):
                child = subprocess.Popen([sys.executable, "-c", CHILD, path, "1" if any_region else "0"],
                                         stdout=subprocess.PIPE, text=True)
                out = child.stdout.read() if child.stdout else ""
                child.wait()
                got = json.loads(out)
                wall.append(got["wall"])
                cpu.append(got["cpu"])
                # the child's VmHWM (KiB), not wait4's ru_maxrss: Linux carries the forked parent's peak across
                # exec into it, so after the sections above every child showed the parent's 632 MB
                rss.append(got["rss"] / 1024)
                answer = got["answer"]
            where = " (any region)" if any_region else ""
            print(f"  {label + where:<46.46} {len(text.encode()):>8} {statistics.median(wall):6.2f}s "
                  f"{statistics.median(cpu):6.2f}s {statistics.median(rss):5.0f}MB  {answer[:70]}")


if __name__ == "__main__":
    if "table" not in sys.argv[1:]:
        counts()
        diagnostics()
        sizes()
    table(QUICK)
