"""What EFA adds to a deploy and a run on this machine's side: the ``fi_info -p efa`` check and mpirun's command line.

    python benchmarks/bench_efa.py [--repeat N]

Hosts: tests/netns_hosts.py (needs root, ``ip`` and ``sshd``; the check is skipped otherwise), each with a stand-in
``fi_info`` that prints a realistic listing (libfabric's format, two entries per device) -- the node's real
``fi_info`` takes its own time, which only a real account shows.  Medians of N of:

- check: :func:`ccdsl.executor.fabric_check.check` on 1 and on 4 nodes over open SSH connections (all nodes at once),
  with 1 device per node (hpc7g) and with 32 (p5.48xlarge);
- parse: reading a 32-device listing (:func:`fabric_check.devices`);
- argv: building mpirun's command line for 64 hosts (:func:`ccdsl.executor.mpirun.argv`).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from timing import timeit  # noqa: E402  (benchmarks/ is this script's folder)


def listing(devices: int) -> str:
    return "".join(f"provider: efa\n    fabric: efa\n    domain: rdmap{79 + i}s0-{kind}\n    version: 122.0\n"
                   f"    type: FI_EP_{kind.upper()}\n    protocol: FI_PROTO_EFA\n"
                   for i in range(devices) for kind in ("rdm", "dgrm"))


def ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1e3:.2f} ms"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    from ccdsl.executor import fabric_check, mpirun

    text = listing(32)
    print(f"parse: a 32-device listing ({len(text)} bytes): {ms(timeit(lambda: fabric_check.devices(text), 200))}")
    hosts64 = [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(64)]
    print("argv: mpirun for 64 hosts: "
          + ms(timeit(lambda: mpirun.argv(mpirun.MPIRUN, hosts64, 4, 256, ["python3", "x.py"], agent="/s"), 200)))

    from netns_hosts import NetnsHosts, missing_requirements

    reason = missing_requirements()
    if reason:
        print(f"check: skipped: {reason}")
        return 0
    from ccdsl.executor import ssh

    hosts = NetnsHosts(4).build()
    try:
        bin_dir = hosts.private / "efa-bin"
        for devices in (1, 32):
            for i in range(4):
                folder = hosts.private_of(i)
                (folder / "fi_info.out").write_text(listing(devices))
                (folder / "efa-bin").mkdir(exist_ok=True)
                script = folder / "efa-bin" / "fi_info"
                script.write_text(f"#!/bin/sh\ncat {hosts.private}/fi_info.out\n")
                script.chmod(0o755)
            with ssh.Connections(ssh.SshOptions(accept_new=True)) as pool:
                for count in (1, 4):
                    nodes = [replace(n, extra={"efa": devices}) for n in hosts.nodes(list(range(count)))]
                    samples = timeit(lambda nodes=nodes: fabric_check.check(nodes, pool, bin_dir=str(bin_dir)),
                                     args.repeat)
                    print(f"check: {count} node(s) × {devices} device(s): {ms(samples)} (median of {args.repeat})")
    finally:
        for i in range(4):
            shutil.rmtree(hosts.private_of(i) / "efa-bin", ignore_errors=True)
        hosts.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
