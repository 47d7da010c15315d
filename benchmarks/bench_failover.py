"""EC2 at the sizes and failures of a real spot cluster, on moto's server (issue 21): how long a full zone holds up
failover, and a 250-node lifecycle under EC2's 200-value filter limit.

    python benchmarks/bench_failover.py [--repeat 5] [--nodes 250]

A full zone answers RunInstances with ``InsufficientInstanceCapacity``, HTTP 500, as EC2 does (a server error, which
botocore retried ten times with backoff before ccdsl stopped it).  The lifecycle runs with the ``filter_limit``
behaviour of tests/aws_like.py on: launch, stop, start, terminate, then nothing is left.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=250)
    args = parser.parse_args()
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1", "CCDSL_DATA_DIR": tempfile.mkdtemp(prefix="ccdsl-bench-")})
    os.environ.pop("CCDSL_CONFIG", None)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import ThreadedMotoServer

    from moto_patches import add_client_token_filter

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    add_client_token_filter()  # moto lacks DescribeInstances' client-token filter
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        full_zone(f"http://127.0.0.1:{port}", args.repeat)
        lifecycle(f"http://127.0.0.1:{port}", args.nodes)
    finally:
        server.stop()
    return 0


def full_zone(url: str, repeat: int) -> None:
    from ccdsl.errors import CapacityError
    from ccdsl.executor.config import Config
    from ccdsl.executor.model import NodeRequest
    from ccdsl.executor.providers import aws
    from fixtures_executor import aws_settings, inject

    cfg = Config.from_dict({"aws": aws_settings(url)})
    full = inject(None, "InsufficientInstanceCapacity", "no capacity")
    aws.EVENT_HOOKS[:] = [("before-send.ec2.RunInstances", full)]
    seconds = []
    for n in range(repeat):
        p = aws.make(cfg, {})
        request = NodeRequest(handle=f"BenchFullZone{n:02d}", role="worker", instance_type="m5.large", count=1,
                              region="us-east-1", options={"zone": "us-east-1a"})
        p.check_plan([request])  # the image and type, once per deploy: not part of a zone's failover
        p.prepare(request.handle, None)
        t = time.perf_counter()
        try:
            p.create(request, lambda *e: None)
        except CapacityError:
            pass
        seconds.append(time.perf_counter() - t)
        p.terminate(request.handle, [])
    aws.EVENT_HOOKS.clear()
    print(f"a full zone (InsufficientInstanceCapacity, HTTP 500): median {statistics.median(seconds) * 1000:.0f} ms "
          f"over {repeat} zones, {full.sent / repeat:.0f} RunInstances send(s) per zone")


def lifecycle(url: str, nodes: int) -> None:
    import boto3

    from aws_like import AwsLike
    from ccdsl.executor.config import Config
    from ccdsl.executor.model import NodeRequest
    from ccdsl.executor.providers import aws
    from fixtures_executor import aws_settings, tagged

    layer = AwsLike(boto3.client("ec2", endpoint_url=url, region_name="us-east-1")).enable("filter_limit")
    aws.EVENT_HOOKS[:] = layer.hooks()
    p = aws.make(Config.from_dict({"aws": aws_settings(url, poll_interval=0.2)}), {})
    handle = "BenchTwoFifty00"
    request = NodeRequest(handle=handle, role="worker", instance_type="m5.large", count=nodes, region="us-east-1",
                          options={"zone": "us-east-1b"})
    steps = {}
    t = time.perf_counter()
    running = p.wait_running(handle, p.create(request, lambda *e: None), lambda *e: None)
    steps["launch"] = time.perf_counter() - t
    t = time.perf_counter()
    stopped = p.stop(handle, running)
    steps["stop"] = time.perf_counter() - t
    t = time.perf_counter()
    started = p.start(handle, stopped)
    steps["start"] = time.perf_counter() - t
    t = time.perf_counter()
    p.terminate(handle, started)
    steps["terminate"] = time.perf_counter() - t
    left = tagged(layer.ec2, handle)
    aws.EVENT_HOOKS.clear()
    print(f"{nodes} nodes under the 200-value filter limit: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items())
          + f"; refused calls {layer.fired['filter_limit']}; left: {left or 'nothing'}")


if __name__ == "__main__":
    sys.exit(main())
