"""The seed's tutorial end to end on a test cloud: EC2 through boto3 to a moto server on 127.0.0.1, with the
instances it launches mapped to real SSH hosts (sshd in network namespaces on this machine), and MPI across them.

    .venv/bin/python examples/tutorial_test_cloud.py        # as root: it builds network namespaces
    .venv/bin/python examples/tutorial_test_cloud.py --as-ec2-behaves   # with every tests/aws_like.py behaviour

Moto's instances do not exist, so ``[aws] address_map`` (a documented test hook) sends ccdsl to test host i for
launch index i; nothing ever connects to an address moto reports.  EC2 puts a key pair's public key on the
instances it launches; a botocore hook does the same for the test hosts.  Everything is removed at the end.

``--as-ec2-behaves`` turns on every behaviour of ``tests/aws_like.py`` (EC2 as documented, where moto is kinder:
eventual consistency, slow terminations, capacity errors as HTTP 500 -- the first zone is full --, filter limits,
listings in pages ...); the tutorial's output is the same.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test-host builder lives with the tests

import ccdsl
from ccdsl.executor.config import Config
from ccdsl.executor.providers import aws
from netns_hosts import NetnsHosts, missing_requirements

# Moto resolves these public SSM parameters to its own AMIs.
IMAGES = {"x86_64": "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
          "arm64": "resolve:ssm:/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"}


def rank_sum(comm):
    """The tutorial's MPI program: every rank says hello (with the address of the namespace it runs in), rank 0
    gets the sum of the ranks."""
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "eth0"], capture_output=True, text=True).stdout.split()
    where = out[3].split("/")[0] if len(out) > 3 else "?"
    print(f"I am {comm.Get_rank()} among {comm.Get_size()} processes, at {where}", flush=True)
    return comm.reduce(comm.Get_rank(), root=0)


def quiet_http_log() -> None:
    """Moto's server logs every HTTP request through werkzeug's logger; the tutorial's own lines are what to read."""
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def install_key_pairs_on(hosts: NetnsHosts) -> None:
    """What EC2 does at launch: authorize the cluster key pair's public key on the (test) instances."""
    import paramiko

    def install(parsed, **_):
        if "KeyMaterial" in parsed:
            key = paramiko.Ed25519Key.from_private_key(io.StringIO(parsed["KeyMaterial"]))
            with open(hosts.authorized_keys, "a") as f:
                f.write(f"{key.get_name()} {key.get_base64()} {parsed['KeyName']}\n")

    aws.EVENT_HOOKS.append(("after-call.ec2.CreateKeyPair", install))


def as_ec2_behaves(endpoint: str) -> list[str]:
    """Every behaviour of tests/aws_like.py on the provider's clients; the zones to try (the first one is full)."""
    import boto3

    from aws_like import BEHAVIOURS, AwsLike

    layer = AwsLike(boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")).enable(*BEHAVIOURS)
    layer.full_zones = frozenset({"us-east-1a"})  # no_capacity: the deploy fails over to us-east-1b
    aws.EVENT_HOOKS.extend(layer.hooks())
    return ["us-east-1a", "us-east-1b"]


def config_for(endpoint: str, hosts: NetnsHosts, scratch: Path, zones: list[str]) -> Config:
    return Config.from_dict({
        "aws": {"endpoint_url": endpoint, "ssm_endpoint_url": endpoint, "region": "us-east-1", "image": IMAGES,
                "user": hosts.user, "ssh_cidr": "203.0.113.0/24", "zones": zones, "poll_interval": 0.2,
                "address_map": {str(i): h.address for i, h in enumerate(hosts.hosts)},
                # the namespace hosts run no NFS server (the default shares node 0's folder over NFS): copies
                "shared": "none"},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(scratch / "remote"),
                "authorized_keys": str(hosts.authorized_keys)},
    })


def tutorial(config: Config, endpoint: str) -> None:
    contract = ccdsl.load(str(ROOT / "examples" / "tutorial.ccc"))["my_first_cluster_contract"]
    print(ccdsl.resolve(contract).explanation[0])
    cluster = ccdsl.deploy(contract, config=config, progress=lambda role, i, state: print(f"  {role} {i}: {state}"))
    try:
        print("handle", cluster.handle, "workers", cluster.workers())
        print("sum of ranks:", cluster.run(rank_sum), "ranks -> workers:", cluster.ranks())
        ccdsl.interrupt(cluster)
        ccdsl.resume(cluster)
        print("after resume, workers", cluster.workers(), "sum:", cluster.run(rank_sum))
        ccdsl.restart(cluster)
        print("after restart, workers", cluster.workers())
        print("clusters:", [(c.handle, c.status) for c in ccdsl.clusters(config=config)])
    finally:
        ccdsl.terminate(cluster)
    import boto3

    ec2 = boto3.client("ec2", endpoint_url=endpoint, region_name="us-east-1")
    left = [i["InstanceId"] for r in ec2.describe_instances(
        Filters=[{"Name": "tag:ccdsl:cluster", "Values": [cluster.handle]},
                 {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    )["Reservations"] for i in r["Instances"]]
    print("terminated; instances left:", left)
    if left:
        raise SystemExit("leaked instances: " + ", ".join(left))


def main() -> int:
    reason = missing_requirements()
    if reason:
        print(f"cannot build the test hosts: {reason}", file=sys.stderr)
        return 1
    from moto.server import ThreadedMotoServer

    from moto_patches import add_client_token_filter

    quiet_http_log()

    # The scratch folder holds the data dir (state, the cluster's private key, pinned host keys) and the nodes'
    # files: it goes when the tutorial ends, however it ends.
    scratch = Path(tempfile.mkdtemp(prefix="ccdsl-tutorial-"))
    try:
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "CCDSL_DATA_DIR": str(scratch / "data")})
        os.environ.pop("CCDSL_CONFIG", None)
        port = free_port()
        add_client_token_filter()  # moto lacks DescribeInstances' client-token filter
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            hosts = NetnsHosts(4).build()
            try:
                install_key_pairs_on(hosts)
                endpoint = f"http://127.0.0.1:{port}"
                zones = as_ec2_behaves(endpoint) if "--as-ec2-behaves" in sys.argv[1:] else ["us-east-1a"]
                tutorial(config_for(endpoint, hosts, scratch, zones), endpoint)
            finally:
                hosts.teardown()
        finally:
            server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
