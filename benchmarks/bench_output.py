"""How long the launcher takes to read a rank's output that has no newlines (``\\r`` progress bars), against the same
amount of output in lines.  It used to be quadratic (issue 8: 25 MB 6.6 s, 50 MB 22 s, 100 MB 104 s).

    python benchmarks/bench_output.py [--repeat N] [--sizes 25,50,100]

Two measurements, medians of N runs per size:

- ``feed``: the output splitter alone (``mpi._Output``), fed in 64 KiB chunks as the pump reads them;
- ``run``: end to end, ``Launcher.run_script`` in local mode of a one-rank program that writes the bytes, its
  output streamed to a callback that drops it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MB = 1_000_000
PROG = """\
import sys
size, sep = int(sys.argv[1]), sys.argv[2].encode()
bar = b"".join(b"[%-50s] %3d%%" % (b"#" * (i % 50), i % 100) + sep for i in range(100))
out = sys.stdout.buffer
for _ in range(size // len(bar)):
    out.write(bar)
out.write(b"\\n")
out.flush()
"""


def data(size: int, sep: bytes) -> bytes:
    bar = b"".join(b"[%-50s] %3d%%" % (b"#" * (i % 50), i % 100) + sep for i in range(100))
    return bar * (size // len(bar)) + b"\n"


def bench_feed(size: int, sep: bytes, repeat: int) -> float:
    from ccdsl.executor.mpi import _Output

    blob = data(size, sep)
    times = []
    for _ in range(repeat):
        out = _Output(lambda line, stream: None)
        t0 = time.perf_counter()
        for i in range(0, len(blob), 65536):
            out.feed("stdout", blob[i:i + 65536])
        out.close()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_run(size: int, sep: str, repeat: int) -> float:
    from ccdsl.executor.model import Node
    from ccdsl.executor.mpi import Launcher

    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "bars.py"
        prog.write_text(PROG)
        launcher = Launcher([Node(0, "worker", "local-0", "local", state="ready")], mode="local")
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            code = launcher.run_script(prog, [str(size), sep], 1, stream=lambda line, stream: None)
            times.append(time.perf_counter() - t0)
            assert code == 0
        return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="25,50,100", help="MB, comma separated")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"output splitter and local run_script, medians of {args.repeat}")
    for size in sizes:
        cr = bench_feed(size * MB, b"\r", args.repeat)
        nl = bench_feed(size * MB, b"\n", args.repeat)
        print(f"feed {size:4d} MB: \\r only {cr:6.2f} s   lines {nl:6.2f} s", flush=True)
    for size in sizes:
        cr = bench_run(size * MB, "\r", args.repeat)
        nl = bench_run(size * MB, "\n", args.repeat)
        print(f"run  {size:4d} MB: \\r only {cr:6.2f} s   lines {nl:6.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
