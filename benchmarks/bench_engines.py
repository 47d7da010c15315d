"""Persistent engines and the project folder's sync, on SSH hosts in network namespaces (issue 9's targets).

    python benchmarks/bench_engines.py [--repeat N]

- engines ready: ``cluster.engines()`` from nothing running until every engine registered (controller start on
  node 0, mpiexec across the nodes, the SSH tunnel, the client), then ``stop_engines()``; 1 and 4 nodes.
  Target: <= 5 s for 4 nodes.
- round trip: ``rc[:].apply_sync(f)`` on 4 engines through the tunnel (and ``rc[0].apply_sync`` for reference).
  Target: <= 20 ms.
- sync: a folder of 100 files, 50 MB in all, to 4 nodes (SFTP, all nodes at once), then a re-sync with no change.
  Target for the no-change re-sync: <= 0.5 s.

Needs root, ``ip`` and ``sshd`` (the hosts are built by tests/netns_hosts.py); says so and exits 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def med(samples: list[float]) -> str:
    return f"median {1000 * statistics.median(samples):8.1f} ms  (min {1000 * min(samples):7.1f}, n={len(samples)})"


def config(hosts, count: int):
    from ccdsl.executor.config import Config

    return Config.from_dict({
        "ssh": {"user": "root", "key_path": str(hosts.client_key), "connect_timeout": 5.0, "ready_timeout": 30.0,
                "hosts": [{"name": h.name, "address": h.address, "type": "rack"} for h in hosts.hosts[:count]]},
        "mpi": {"python": sys.executable, "iface": "eth0", "authorized_keys": str(hosts.authorized_keys),
                "remote_dir": str(hosts.private / "remote")}})


def deploy(hosts, count: int, **kw):
    from ccdsl.executor.deploy import Plan, deploy
    from ccdsl.executor.model import NodeRequest

    return deploy(Plan("ssh", (NodeRequest("", "worker", "rack", count),)), config=config(hosts, count), **kw)


def make_folder(root: Path, files: int = 100, total: int = 50_000_000) -> None:
    root.mkdir(parents=True)
    size = total // files
    for i in range(files):
        sub = root / f"d{i % 10}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{i:03d}.bin").write_bytes(os.urandom(size))


def bench_engines(hosts, repeat: int) -> None:
    for count in (1, 4):
        c = deploy(hosts, count)
        try:
            ready = []
            for _ in range(repeat):
                t = time.perf_counter()
                rc = c.engines()
                ready.append(time.perf_counter() - t)
                assert rc.ids == list(range(count))
                if count == 4:
                    trips = []
                    all_, one = rc[:], rc[0]
                    all_.apply_sync(os.getpid)  # warm-up
                    for _ in range(50):
                        t = time.perf_counter()
                        all_.apply_sync(os.getpid)
                        trips.append(time.perf_counter() - t)
                    singles = []
                    for _ in range(50):
                        t = time.perf_counter()
                        one.apply_sync(os.getpid)
                        singles.append(time.perf_counter() - t)
                c.stop_engines()
            print(f"  engines ready, {count} node(s)              {med(ready)}")
            if count == 4:
                print(f"  rc[:].apply_sync round trip, 4 engines {med(trips)}")
                print(f"  rc[0].apply_sync round trip            {med(singles)}")
        finally:
            c.terminate()


def bench_sync(hosts, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="ccdsl-bench-sync-") as tmp:
        folder = Path(tmp) / "proj"
        make_folder(folder)
        size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
        print(f"  folder: {sum(1 for p in folder.rglob('*') if p.is_file())} files, {size / 1e6:.1f} MB; 4 nodes")
        first, again = [], []
        for _ in range(repeat):
            c = deploy(hosts, 4)
            try:
                t = time.perf_counter()
                synced = c.sync(str(folder))
                first.append(time.perf_counter() - t)
                assert all(s.files == 100 for s in synced), synced
                for _ in range(5):
                    t = time.perf_counter()
                    synced = c.sync()
                    again.append(time.perf_counter() - t)
                    assert all(s.files == 0 for s in synced)
            finally:
                c.terminate()
        print(f"  first sync (100 files, 50 MB, x4 nodes) {med(first)}")
        print(f"  re-sync, no change                      {med(again)}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from netns_hosts import NetnsHosts, missing_requirements

    reason = missing_requirements()
    if reason:
        print(f"  skipped: cannot build SSH hosts ({reason})")
        return 0
    with tempfile.TemporaryDirectory(prefix="ccdsl-bench-data-") as data:
        os.environ["CCDSL_DATA_DIR"] = data
        hosts = NetnsHosts(4).build()
        try:
            print(f"SSH hosts in network namespaces: {hosts.count}; {os.cpu_count()} cores, load "
                  f"{os.getloadavg()[0]:.1f}")
            bench_engines(hosts, args.repeat)
            bench_sync(hosts, args.repeat)
        finally:
            hosts.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
