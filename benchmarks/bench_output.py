"""How long ccdsl takes to read a program's output that has no newlines (``\\r`` progress bars), against the same
amount of output in lines, and how much memory it holds meanwhile.  It used to be quadratic (issue 8: 25 MB 6.6 s,
50 MB 22 s, 100 MB 104 s; issue 22 item 5: 40 MB of set-up output 15.6 s) and to hold a line whole (400 MB without
a newline from a local ``run``: 1.59 GB peak).

    python benchmarks/bench_output.py [--repeat N] [--sizes 25,50,100] [--setup 40] [--rss 400]

Medians of N runs per size:

- ``feed``: the launcher's output splitter alone (``mpi._Output``), fed in 64 KiB chunks as the pump reads them;
- ``run``: end to end, ``Launcher.run_script`` in local mode of a one-rank program that writes the bytes, its
  output streamed to a callback that drops it;
- ``setup``: set-up output without newlines, read by ``workdir.setup_local`` from a real command and by
  ``workdir.setup_remote`` from a stand-in for paramiko's channel that hands out 64 KiB chunks (the reading alone,
  without SSH's own cost);
- ``rss``: the peak resident memory of a ``ccdsl run H -- python bars.py`` process (a local cluster; the output
  goes to /dev/null) while the program prints that many MB without a newline.
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
sys.path.insert(0, str(ROOT / "tests"))

from fake_channel import FakeChannel, FakePool  # noqa: E402

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


def bench_setup(size: int, repeat: int) -> tuple[float, float]:
    """Seconds to read ``size`` bytes of set-up output without a newline: (this machine, over a channel)."""
    from ccdsl.executor import workdir
    from ccdsl.executor.model import Node

    local, remote = [], []
    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "bars.py"
        prog.write_text(PROG)
        for _ in range(repeat):
            t0 = time.perf_counter()
            workdir.setup_local(Path(tmp), f"{sys.executable} {prog} {size} '\r'", lambda node, line: None)
            local.append(time.perf_counter() - t0)
            node = Node(0, "worker", "i-0", "ssh", extra={"ccdsl_dir": tmp})
            pool = FakePool(FakeChannel(size, data(1 << 20, b"\r")[:-1]))
            t0 = time.perf_counter()
            workdir.setup_remote(pool, [node], "bars", lambda node, line: None)  # type: ignore[arg-type]
            remote.append(time.perf_counter() - t0)
    return statistics.median(local), statistics.median(remote)


# The peak is the process's own VmHWM: ru_maxrss would not do, as Linux keeps it across fork and exec (a child of
# this benchmark, after the 100 MB above, would start at this process's size).
RSS_PROBE = """\
import re, sys
from ccdsl.cli import main
rc = main(sys.argv[1:])
with open("/proc/self/status") as f:
    print(rc, re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1), file=sys.stderr)
"""


def bench_rss(size: int, repeat: int) -> tuple[float, float, float]:
    """Peak RSS (MB) of ``ccdsl run H -- python bars.py SIZE`` on a local cluster: median and largest; and its
    seconds: median."""
    import os
    import subprocess

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, CCDSL_DATA_DIR=str(Path(tmp) / "data"), CCDSL_CONFIG=str(Path(tmp) / "empty.toml"))
        Path(env["CCDSL_CONFIG"]).write_text("")
        prog = Path(tmp) / "bars.py"
        prog.write_text(PROG)
        contract = Path(tmp) / "c.ccc"
        contract.write_text("c = @cluster(node_provider => Local, node_count => 1)\n")
        handle = subprocess.run([sys.executable, "-m", "ccdsl", "deploy", str(contract), "--quiet"], env=env,
                                capture_output=True, text=True, check=True).stdout.strip()
        peaks, times = [], []
        try:
            for _ in range(repeat):
                t0 = time.perf_counter()
                res = subprocess.run([sys.executable, "-c", RSS_PROBE, "run", handle, "--", sys.executable, str(prog),
                                      str(size), "\r"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
                times.append(time.perf_counter() - t0)
                rc, kib = res.stderr.strip().splitlines()[-1].split()
                if rc != "0":
                    raise SystemExit(f"ccdsl run failed: {res.stderr[-2000:]}")
                peaks.append(int(kib) / 1024)
        finally:
            subprocess.run([sys.executable, "-m", "ccdsl", "terminate", handle], env=env, capture_output=True)
    return statistics.median(peaks), max(peaks), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="25,50,100", help="MB, comma separated")
    parser.add_argument("--setup", type=int, default=40, help="MB of set-up output")
    parser.add_argument("--rss", type=int, default=400, help="MB printed without a newline by a local run")
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
    local, remote = bench_setup(args.setup * MB, args.repeat)
    print(f"setup {args.setup:3d} MB without a newline: this machine {local:6.2f} s   over a channel {remote:6.2f} s",
          flush=True)
    peak, largest, seconds = bench_rss(args.rss * MB, args.repeat)
    base, _, _ = bench_rss(0, args.repeat)
    print(f"rss  {args.rss:4d} MB without a newline from `ccdsl run` (local): peak RSS {peak:6.1f} MB (largest "
          f"{largest:.1f} MB; {base:.1f} MB printing nothing), {seconds:6.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
