"""Deploy cost: wall time of 1 vs 4 nodes, per phase, and EC2 API calls per deploy / terminate.

    python benchmarks/bench_deploy.py [--repeat N]

EC2 is a moto server on 127.0.0.1 (so cloud latency is moto's, not AWS's: what this measures is ccdsl's own
work and how it scales with the node count).  Instances are mapped (``[aws] address_map``) to SSH hosts in network
namespaces (tests/netns_hosts.py; needs root, ``ip`` and ``sshd``), so "reachable" and "ready" are real SSH
connections and real node preparation (probe python/mpi4py/mpiexec, install the cluster key and files).  Node
set-up runs in parallel, so 4 nodes should cost about what 1 costs.  API calls are counted with a botocore
``before-call`` event hook on every EC2/SSM client ccdsl creates (``providers.aws.EVENT_HOOKS``).
DescribeInstances polling uses ``poll_interval = 0.1`` s (default 5 s against real AWS).
"""

from __future__ import annotations

import argparse
import collections
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

IMAGE = "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from netns_hosts import NetnsHosts, missing_requirements

    reason = missing_requirements()
    if reason:
        print(f"skipped: cannot build SSH test hosts ({reason})")
        return 0
    tmp = Path(tempfile.mkdtemp(prefix="ccdsl-bench-deploy-"))
    os.environ.update({"CCDSL_DATA_DIR": str(tmp / "data"), "AWS_ACCESS_KEY_ID": "bench",
                       "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    from moto.server import ThreadedMotoServer

    from conftest import free_port
    from moto_patches import add_client_token_filter

    port = free_port()
    add_client_token_filter()  # moto lacks DescribeInstances' client-token filter
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    import logging

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    hosts = NetnsHosts(4).build()
    try:
        run(f"http://127.0.0.1:{port}", hosts, tmp, args.repeat)
    finally:
        hosts.teardown()
        server.stop()
    return 0


def run(url: str, hosts, tmp: Path, repeat: int) -> None:
    import paramiko

    import ccdsl
    from ccdsl.executor.config import Config
    from ccdsl.executor.deploy import Plan
    from ccdsl.executor.model import NodeRequest
    from ccdsl.executor.providers import aws

    calls: collections.Counter[str] = collections.Counter()

    def count(model, **_):
        calls[model.name] += 1

    def authorize(parsed, **_):  # what EC2 does for its instances: install the key pair's public key
        if "KeyMaterial" in parsed:
            key = paramiko.Ed25519Key.from_private_key(io.StringIO(parsed["KeyMaterial"]))
            with open(hosts.authorized_keys, "a") as f:
                f.write(f"{key.get_name()} {key.get_base64()} ec2-{parsed['KeyName']}\n")

    aws.EVENT_HOOKS[:] = [("before-call", count), ("after-call.ec2.CreateKeyPair", authorize)]
    config = Config.from_dict({
        "aws": {"endpoint_url": url, "ssm_endpoint_url": url, "region": "us-east-1", "image": {"x86_64": IMAGE},
                "ssh_cidr": "203.0.113.0/24", "user": hosts.user, "poll_interval": 0.1, "zones": ["us-east-1a"],
                "address_map": {str(i): h.address for i, h in enumerate(hosts.hosts)},
                # The namespace hosts share this machine's kernel, which has no nfsd: no shared folder, as the
                # tests' fixtures do (the NFS export's cost is a node's, not ccdsl's, and absent before issue 23).
                "shared": "none"},
        "ssh": {"ready_timeout": 60.0},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(tmp / "remote"),
                "authorized_keys": str(hosts.authorized_keys)},
    })
    print(f"deploy on moto (127.0.0.1) + {len(hosts.hosts)} netns SSH hosts; median of {repeat} runs each")
    print(f"{'nodes':>5} {'deploy s':>9} {'requested':>10} {'running':>8} {'reachable':>10} {'ready':>7} "
          f"{'terminate s':>12} {'API calls deploy':>17} {'terminate':>10}")
    details = {}
    for n in (1, 4):
        rows = collections.defaultdict(list)
        for _ in range(repeat):
            events: dict[str, float] = {}
            start = time.perf_counter()

            def progress(role, index, state, events=events, start=start):
                events[state] = time.perf_counter() - start  # the last node to reach each state

            calls.clear()
            c = ccdsl.deploy(Plan("aws", (NodeRequest("", "worker", "t3.xlarge", n, region="us-east-1"),)),
                             config=config, progress=progress)
            rows["deploy"].append(time.perf_counter() - start)
            rows["deploy_calls"].append(sum(calls.values()))
            deploy_calls = dict(calls)
            for state in ("requested", "running", "reachable", "ready"):
                rows[state].append(events[state])
            assert c.run(lambda comm: comm.allreduce(1)) == n
            calls.clear()
            t = time.perf_counter()
            ccdsl.terminate(c)
            rows["terminate"].append(time.perf_counter() - t)
            rows["terminate_calls"].append(sum(calls.values()))
            terminate_calls = dict(calls)
        med = {k: statistics.median(v) for k, v in rows.items()}
        print(f"{n:>5} {med['deploy']:>9.2f} {med['requested']:>10.2f} {med['running']:>8.2f} "
              f"{med['reachable']:>10.2f} {med['ready']:>7.2f} {med['terminate']:>12.2f} "
              f"{med['deploy_calls']:>17.0f} {med['terminate_calls']:>10.0f}")
        details[n] = (deploy_calls, terminate_calls)
    for n, (d, t) in details.items():
        print(f"\nAPI calls, {n} node(s), last deploy:    " + ", ".join(f"{k} {v}" for k, v in sorted(d.items())))
        print(f"API calls, {n} node(s), last terminate: " + ", ".join(f"{k} {v}" for k, v in sorted(t.items())))

    run_overhead(config, hosts, tmp, repeat)

    local = []
    for _ in range(repeat):
        t = time.perf_counter()
        c = ccdsl.deploy(Plan("local", (NodeRequest("", "worker", "local", 4),)))
        local.append(time.perf_counter() - t)
        ccdsl.terminate(c)
    print(f"\nlocal provider, 4 nodes: deploy median {1000 * statistics.median(local):.1f} ms")


def reduce_ranks(comm):
    return comm.reduce(comm.rank, root=0)


def run_overhead(config, hosts, tmp: Path, repeat: int) -> None:
    """``Cluster.run`` / ``run_script`` on the deployed 4-node cluster vs the same mpiexec started by hand inside
    node 0's namespace (what ccdsl runs there, minus ccdsl).  See bench_run.py for the launcher alone."""
    import subprocess

    import ccdsl
    from ccdsl.executor.deploy import Plan
    from ccdsl.executor.model import NodeRequest

    n = len(hosts.hosts)
    prog = tmp / "prog.py"
    prog.write_text("from mpi4py import MPI\ncomm = MPI.COMM_WORLD\ntotal = comm.reduce(comm.rank, root=0)\n"
                    "if comm.rank == 0:\n    print(total)\n")
    c = ccdsl.deploy(Plan("aws", (NodeRequest("", "worker", "t3.xlarge", n, region="us-east-1"),)), config=config)
    try:
        first = c.nodes()[0]
        d = first.extra["ccdsl_dir"]
        argv = ["ip", "netns", "exec", hosts.hosts[0].netns, first.extra["mpiexec"], "-launcher", "ssh",
                "-launcher-exec", f"{d}/ssh", "-hosts", ",".join(f"{h.address}:1" for h in hosts.hosts),
                "-iface", "eth0", "-n", str(n), sys.executable, str(prog)]
        expect = str(n * (n - 1) // 2)

        def bare():
            out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
            assert out.split()[-1] == expect, out

        def timed(fn):
            fn()
            samples = []
            for _ in range(max(repeat, 5)):
                t = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - t)
            return statistics.median(samples)

        base = timed(bare)
        script = timed(lambda: c.run_script(str(prog), stream=lambda *a: None))
        function = timed(lambda: c.run(reduce_ranks))
        print(f"\nrun on the deployed {n}-node cluster (medians):")
        print(f"  bare mpiexec on node 0       {1000 * base:7.1f} ms")
        print(f"  Cluster.run_script           {1000 * script:7.1f} ms  overhead {1000 * (script - base):+7.1f} ms")
        print(f"  Cluster.run (cloudpickled)   {1000 * function:7.1f} ms  overhead {1000 * (function - base):+7.1f} ms")
    finally:
        ccdsl.terminate(c)


if __name__ == "__main__":
    sys.exit(main())
