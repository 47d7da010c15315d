"""Overhead of ``Launcher.run_function`` / ``run_script`` over a bare ``mpiexec`` of the same program on the same hosts.

    python benchmarks/bench_run.py [--repeat N] [--hosts N]

Program: every rank reduces its rank number to rank 0, which prints the sum.  Compared, medians of N runs:

- local: bare ``mpiexec -n N python prog.py`` vs the launcher's local mode (script and cloudpickled function);
- ssh (needs root, ``ip`` and ``sshd``; skipped otherwise): N hosts in network namespaces (tests/netns_hosts.py).
  Bare = mpiexec started *inside host 0's namespace* with the same ssh launcher, hosts and iface that ccdsl uses,
  i.e. exactly the command ccdsl runs but without ccdsl and without the SSH hop from this machine to node 0.
  The launcher numbers include that hop (one SSH channel on a pooled connection), the payload upload (SFTP) and,
  for functions, cloudpickle both ways.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from timing import timeit  # noqa: E402  (benchmarks/ is this script's folder)

PROG = """\
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.reduce(comm.rank, root=0)
if comm.rank == 0:
    print(total)
"""


def reduce_ranks(comm):
    return comm.reduce(comm.rank, root=0)




def interleaved(variants: dict, n: int) -> dict[str, list[float]]:
    """Time every variant n times, alternating between them, so load from other processes hits all alike."""
    for fn in variants.values():
        fn()  # warm-up
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for i in range(n):
        names = list(variants)
        for name in names[i % len(names):] + names[:i % len(names)]:
            t = time.perf_counter()
            variants[name]()
            samples[name].append(time.perf_counter() - t)
    return samples


def report(label: str, samples: list[float], base: float | None) -> float:
    med = statistics.median(samples)
    extra = f"   overhead {1000 * (med - base):+8.1f} ms ({med / base:.2f}x)" if base else ""
    print(f"  {label:<34} median {1000 * med:8.1f} ms  (min {1000 * min(samples):7.1f}, n={len(samples)}){extra}")
    return med


def bare(argv: list[str], expect: str) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == expect, out


def bench_local(n: int, repeat: int, prog: Path) -> None:
    from ccdsl.executor.model import Node
    from ccdsl.executor.mpi import Launcher, local_mpiexec

    expect = str(n * (n - 1) // 2)
    launcher = Launcher([Node(i, "worker", f"local-{i}", "local") for i in range(n)], mode="local")
    print(f"local mode, {n} ranks on this machine")
    s = interleaved({"bare": lambda: bare([local_mpiexec(), "-n", str(n), sys.executable, str(prog)], expect),
                     "script": lambda: launcher.run_script(prog, stream=None),
                     "function": lambda: launcher.run_function(reduce_ranks, stream=None)}, repeat)
    base = report("bare mpiexec -n N python prog.py", s["bare"], None)
    report("launcher.run_script", s["script"], base)
    report("launcher.run_function", s["function"], base)


def bench_ssh(n: int, repeat: int, prog: Path) -> None:
    from ccdsl.executor import mpi, nodedir, ssh
    from netns_hosts import NetnsHosts, missing_requirements

    reason = missing_requirements()
    if reason:
        print(f"ssh mode skipped: {reason}")
        return
    hosts = NetnsHosts(n).build()
    try:
        work = Path(tempfile.mkdtemp(prefix="ccdsl-bench-"))
        mopts = mpi.MpiOptions(python=sys.executable, iface="eth0", remote_dir=str(work / "remote"),
                               authorized_keys=str(hosts.authorized_keys))
        sopts = ssh.SshOptions(known_hosts=str(work / "known_hosts"), accept_new=True)
        t = time.perf_counter()
        nodes, _ = mpi.prepare_cluster("BenchmarkRunsXX", hosts.nodes(), options=mopts, ssh_options=sopts)
        prep = time.perf_counter() - t
        launcher = mpi.Launcher(nodes, options=mopts, ssh_options=sopts)
        d = nodes[0].extra["ccdsl_dir"]
        argv = ["ip", "netns", "exec", hosts.hosts[0].netns, nodes[0].extra["mpiexec"], "-launcher", "ssh",
                "-launcher-exec", f"{d}/ssh", "-hosts", ",".join(f"{h.address}:1" for h in hosts.hosts),
                "-iface", "eth0", "-n", str(n), sys.executable, str(prog)]
        expect = str(n * (n - 1) // 2)
        print(f"ssh mode, {n} hosts (network namespaces), 1 rank each; prepare_cluster took {1000 * prep:.0f} ms")
        s = interleaved({"bare": lambda: bare(argv, expect),
                         "script": lambda: launcher.run_script(prog, stream=None),
                         "function": lambda: launcher.run_function(reduce_ranks, stream=None)}, repeat)
        base = report("bare mpiexec on node 0", s["bare"], None)
        report("launcher.run_script", s["script"], base)
        report("launcher.run_function", s["function"], base)
        client = launcher.pool.get(nodes[0])
        report("(one SSH exec of 'true' on node 0)", timeit(lambda: ssh.run(client, "true"), repeat), None)
        print("  the launcher's overhead is about one SSH exec: a session on a pooled connection, whose cost is\n"
              "  dominated by the login shell's rc files on the node (e.g. pyenv init in ~/.bashrc)")
        launcher.close()
        nodedir.release_cluster("BenchmarkRunsXX", nodes, options=mopts, ssh_options=sopts)
    finally:
        hosts.teardown()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--hosts", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "prog.py"
        prog.write_text(PROG)
        bench_local(args.hosts, args.repeat, prog)
        bench_ssh(args.hosts, args.repeat, prog)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
