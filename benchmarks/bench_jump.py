"""What a jump host costs (``[aws] jump_host``): SSH to a private node through it vs directly to a node.

    python benchmarks/bench_jump.py [--repeat N] [--mib M]

Hosts: tests/netns_hosts.py's ``JumpHosts`` (needs root, ``ip`` and ``sshd``; skipped otherwise): a jump host this
machine reaches, private hosts only it reaches.  "direct" is the jump host itself, a node reached without a hop;
"through" is a private host, reached over a ``direct-tcpip`` channel of the pooled connection to the jump host.
Medians of N of:

- connect: a new pool, then one command (``true``); through = the jump host's handshake plus the node's;
- connect, hop pooled: the jump host's connection already open (what every node after the first costs);
- command: ``true`` on an open connection (one channel round trip);
- copy: M MiB written over SFTP (``ssh.put``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from timing import timeit  # noqa: E402  (benchmarks/ is this script's folder)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--mib", type=int, default=16)
    args = parser.parse_args()
    from netns_hosts import JumpHosts, missing_requirements

    reason = missing_requirements()
    if reason:
        print(f"skipped: {reason}")
        return 0
    from ccdsl.executor import ssh

    hosts = JumpHosts(1).build()
    try:
        jump, private = hosts.node(1, index=0), hosts.node(0, index=1)
        options = ssh.SshOptions(accept_new=True, jump=ssh.Jump())
        members = [jump, private]

        def connect(node, hop_open: ssh.Connections | None = None):
            def go():
                pool = ssh.Connections(options, members=members)
                if hop_open is not None:  # share the open hop: only the node's own handshake is new
                    pool._clients[jump.instance_id] = hop_open.get(jump)
                ssh.run(pool.get(node), "true", node=node, check=True)
                if hop_open is not None:
                    pool._clients.pop(jump.instance_id)
                pool.close()
            return go

        data = os.urandom(args.mib << 20)
        remote = str(hosts.private / "bench.bin")
        rows = []
        copies = max(3, args.repeat // 3)
        with ssh.Connections(options, members=members) as pool:
            for name, node in (("direct", jump), ("through", private)):
                rows.append((f"connect + true, {name}", timeit(connect(node), args.repeat)))
            rows.append(("connect + true, through, hop pooled", timeit(connect(private, pool), args.repeat)))
            for name, node in (("direct", jump), ("through", private)):
                client = pool.get(node)
                rows.append((f"true on an open connection, {name}",
                             timeit(lambda c=client, n=node: ssh.run(c, "true", node=n, check=True), args.repeat)))
            for name, node in (("direct", jump), ("through", private)):
                client = pool.get(node)
                rows.append((f"put {args.mib} MiB, {name}",
                             timeit(lambda c=client, n=node: ssh.put(c, data, remote, node=n), copies)))
        print(f"JumpHosts: 1 private host behind a jump host; medians of {args.repeat} (copies: {copies})")
        for name, times in rows:
            extra = f"  ({args.mib / statistics.median(times):.0f} MiB/s)" if name.startswith("put") else ""
            print(f"  {name:42s} {statistics.median(times) * 1000:8.1f} ms{extra}")
    finally:
        hosts.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
