"""Local jobs: ``mpiexec.gforker`` (which listens on nothing) against hydra's ``mpiexec`` (a control port on every
address), medians of N interleaved runs.

    python benchmarks/bench_local_mpi.py [--repeat N] [--np N] [--engines N]

- bare: ``mpiexec.gforker -n NP true`` as is, the same under ccdsl's ``_hold.py`` (what a local rank starts with),
  and ``mpiexec -iface lo -n NP true`` (hydra).  Bare gforker often ends 1-2 s late, spinning on a core meanwhile
  (see ccdsl/executor/_hold.py): its samples are bimodal, so the benchmark also prints how many took over 0.5 s and
  the median CPU time of mpiexec and its ranks.
- ``ccdsl run H -- python prog.py`` (script mode: mpi4py in every rank) and ``ccdsl run H -- true`` (any program)
  on a local cluster of NP nodes, a fresh ``ccdsl`` process each time, as users run it: gforker (what ccdsl does)
  against hydra (``local_gforker`` patched away: ccdsl's local jobs before gforker).
- local engines: ``cluster.engines()`` from nothing running until every engine registered, then
  ``stop_engines()``, on a local cluster of NP nodes; gforker against hydra.

On a machine shared with other sessions, Linux's autogroup scheduler gives each session one share of the CPUs:
hydra puts every rank in a session of its own, gforker keeps the job in one (ending that process group ends the
job), so under load hydra's ranks get NP shares to gforker's one.  For a like-for-like comparison, run the
benchmark inside one cpu cgroup (as root: ``mkdir /sys/fs/cgroup/cpu/bench; echo $$ >
/sys/fs/cgroup/cpu/bench/tasks``), where autogroup does not apply; the CPU medians compare either way.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROG = """\
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.reduce(comm.rank, root=0)
if comm.rank == 0:
    print(total)
"""
# ``ccdsl`` with local jobs under hydra, as before gforker: local_command finds no gforker
HYDRA_CLI = ("import sys\nimport ccdsl.executor.mpi as mpi\nmpi.local_gforker = lambda mpiexec: None\n"
             "from ccdsl.cli import entrypoint\nsys.exit(entrypoint())\n")


def interleaved(variants: dict[str, Callable[[], object]], n: int) -> dict[str, tuple[list[float], list[float]]]:
    """(wall seconds, children's CPU seconds) of every variant n times, alternating between them so that load from
    other processes hits all alike.  One warm-up run each first."""
    for fn in variants.values():
        fn()
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in variants}
    for i in range(n):
        names = list(variants)
        for name in names[i % len(names):] + names[:i % len(names)]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            variants[name]()
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            samples[name][0].append(wall)
            samples[name][1].append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return samples


def report(label: str, wall: list[float], cpu: list[float] | None = None) -> None:
    slow = sum(1 for w in wall if w > 0.5)
    extra = f"  children's CPU median {1000 * statistics.median(cpu):7.1f} ms" if cpu else ""
    print(f"  {label:<44} median {1000 * statistics.median(wall):8.1f} ms  (min {1000 * min(wall):7.1f}, "
          f"max {1000 * max(wall):7.1f}, {slow}/{len(wall)} over 0.5 s){extra}", flush=True)


def quiet(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True, env=env)


def bench_bare(np: int, repeat: int) -> None:
    from ccdsl.executor.mpi import _HOLD_FILE, local_env, local_gforker, local_mpiexec

    hydra = local_mpiexec()
    gforker = local_gforker(hydra)
    if gforker is None:
        print("  bare: no mpiexec.gforker beside mpiexec; skipped")
        return
    env = local_env(dict(os.environ))
    held = [sys.executable, "-I", "-S", str(_HOLD_FILE)]
    s = interleaved({"gforker": lambda: quiet([gforker, "-n", str(np), "true"], env),
                     "held": lambda: quiet([gforker, "-n", str(np), *held, "true"], env),
                     "hydra": lambda: quiet([hydra, "-iface", "lo", "-n", str(np), "true"], env)}, repeat)
    print(f"bare, {np} ranks of 'true'")
    report("mpiexec.gforker -n NP true", *s["gforker"])
    report("mpiexec.gforker -n NP python _hold.py true", *s["held"])
    report("mpiexec (hydra) -iface lo -n NP true", *s["hydra"])


def bench_cli(np: int, repeat: int, tmp: Path) -> None:
    env = dict(os.environ, CCDSL_DATA_DIR=str(tmp / "data"), CCDSL_CONFIG=str(tmp / "empty.toml"))
    Path(env["CCDSL_CONFIG"]).write_text("")
    prog = tmp / "prog.py"
    prog.write_text(PROG)
    contract = tmp / "c.ccc"
    contract.write_text(f"c = @cluster(node_provider => Local, node_count => {np})\n")
    handle = subprocess.run([sys.executable, "-m", "ccdsl", "deploy", str(contract), "--quiet"], env=env,
                            capture_output=True, text=True, check=True).stdout.strip()
    try:
        gforker = [sys.executable, "-m", "ccdsl", "run", handle, "--"]
        hydra = [sys.executable, "-c", HYDRA_CLI, "run", handle, "--"]
        script = [sys.executable, str(prog)]
        s = interleaved({"gforker script": lambda: quiet([*gforker, *script], env),
                         "hydra script": lambda: quiet([*hydra, *script], env),
                         "gforker true": lambda: quiet([*gforker, "true"], env),
                         "hydra true": lambda: quiet([*hydra, "true"], env)}, repeat)
        print(f"ccdsl run on a local cluster of {np} nodes ({np} ranks), a fresh ccdsl process each")
        report("ccdsl run H -- python prog.py   (gforker)", *s["gforker script"])
        report("ccdsl run H -- python prog.py   (hydra)", *s["hydra script"])
        report("ccdsl run H -- true             (gforker)", *s["gforker true"])
        report("ccdsl run H -- true             (hydra)", *s["hydra true"])
    finally:
        subprocess.run([sys.executable, "-m", "ccdsl", "terminate", handle], env=env, capture_output=True)


def bench_engines(np: int, repeat: int, tmp: Path) -> None:
    try:
        import ipyparallel  # noqa: F401
    except ImportError:
        print("  engines: ipyparallel is not installed; skipped")
        return
    import ccdsl
    import ccdsl.executor.mpi as mpi

    os.environ["CCDSL_DATA_DIR"] = str(tmp / "engines-data")
    os.environ.pop("CCDSL_CONFIG", None)
    found = mpi.local_gforker
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=np))
    starts: dict[str, list[float]] = {"gforker": [], "hydra": []}
    stops: dict[str, list[float]] = {"gforker": [], "hydra": []}
    try:
        for i in range(repeat + 1):  # the first round warms up
            for name in (["gforker", "hydra"] if i % 2 else ["hydra", "gforker"]):
                mpi.local_gforker = found if name == "gforker" else (lambda mpiexec: None)  # type: ignore[assignment]
                t = time.perf_counter()
                rc = c.engines()
                started = time.perf_counter() - t
                assert len(rc.ids) == np, rc.ids
                t = time.perf_counter()
                c.stop_engines()
                stopped = time.perf_counter() - t
                if i:
                    starts[name].append(started)
                    stops[name].append(stopped)
    finally:
        mpi.local_gforker = found
        c.terminate()
    print(f"local engines, {np} nodes")
    for name in ("gforker", "hydra"):
        report(f"cluster.engines() from nothing   ({name})", starts[name])
        report(f"cluster.stop_engines()           ({name})", stops[name])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--np", type=int, default=3)
    ap.add_argument("--engines", type=int, default=None, help="engine start/stop rounds (default: --repeat)")
    args = ap.parse_args()
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    bench_bare(args.np, args.repeat)
    with tempfile.TemporaryDirectory(prefix="ccdsl-bench-") as tmp:
        bench_cli(args.np, args.repeat, Path(tmp))
        bench_engines(args.np, args.engines if args.engines is not None else args.repeat, Path(tmp))
    print(f"load at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
