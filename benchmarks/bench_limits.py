"""Hostile sizes: huge node counts, thousands of errors, long literals and large files (issue 8, items 3, 10, 11).

    python benchmarks/bench_limits.py [--quick]

Prints medians (ms) and peak traced memory (MiB, tracemalloc: Python objects and numpy buffers) per size, so that
linear growth (or none, for counts) can be read off the table.
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


if __name__ == "__main__":
    counts()
    diagnostics()
    sizes()
