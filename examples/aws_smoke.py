"""Smoke test on a REAL AWS account: what the moto-based tests cannot prove.

    COSTS MONEY (a few cents): two t3.micro instances -- one on-demand, one spot -- for about 10 to 20 minutes,
    plus their 8 GiB root volumes.  It needs AWS credentials (the usual boto3 chain) with the IAM permissions the
    README lists, and you should have a budget alarm on the account (AWS Budgets) before running it.
    It is NOT part of CI and never runs without ``--yes``.

    python examples/aws_smoke.py --yes [--region us-east-1]

For each of the two clusters (on-demand, spot) it deploys a one-node cluster through ccdsl with ``[mpi] install``
(the default Ubuntu image, cloud-init user data, a venv with mpich/mpi4py/cloudpickle), runs the rank sum over MPI
(2 ranks), interrupts, resumes, runs again, and terminates.  Then it checks with its own boto3 client that nothing
tagged ``ccdsl:cluster`` is left: no instance, volume, security group, key pair, or open spot request.  Last it
prints the facts about AWS that the tests here could only assume.  Exit code 0 when everything held.

SSH to the nodes goes from this machine to their public addresses: the security group allows port 22 only from
this machine's public address (found through checkip.amazonaws.com), and the nodes need outbound internet for pip.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import ccdsl
from ccdsl.executor import config as cfg
from ccdsl.executor.providers import aws as aws_provider

TAG = "ccdsl:cluster"
RANK_SUM = """\
from mpi4py import MPI
comm = MPI.COMM_WORLD
total = comm.allreduce(comm.Get_rank())
if comm.Get_rank() == 0:
    print(f"rank sum {total} over {comm.Get_size()} ranks")
"""
# What the image offered before cloud-init ran, read on the node (apt's log shows what the user data installed).
FACTS_SCRIPT = """\
import os, subprocess, sys
from mpi4py import MPI
if MPI.COMM_WORLD.Get_rank() == 0:
    system = subprocess.run(["/usr/bin/python3", "--version"], capture_output=True, text=True).stdout.strip()
    history = open("/var/log/apt/history.log").read() if os.path.exists("/var/log/apt/history.log") else ""
    print("FACT image python3:", system)
    print("FACT python3-venv installed by the user data:", "python3-venv" in history)
    print("FACT release:", open("/etc/os-release").read().split("PRETTY_NAME=")[1].split(chr(10))[0])
"""


def rank_sum(comm):
    return comm.allreduce(comm.Get_rank())


class Observer:
    """botocore hooks on ccdsl's own EC2 clients: record the facts about AWS's answers (never key material)."""

    def __init__(self) -> None:
        self.facts: dict[str, str] = {}

    def key_pair(self, parsed, **_):
        material = parsed.get("KeyMaterial", "")
        self.facts["key pair material format"] = material.splitlines()[0] if material else "(none)"

    def run_instances(self, parsed, **_):
        instances = parsed.get("Instances", [])
        self.facts.setdefault("RunInstances answer carries the instances' tags",
                              str(bool(instances) and all("Tags" in i for i in instances)))

    def hooks(self):
        return [("after-call.ec2.CreateKeyPair", self.key_pair), ("after-call.ec2.RunInstances", self.run_instances)]


def leftovers(ec2) -> list[str]:
    """Everything any ccdsl cluster still owns in the region, seen by an independent client."""
    f = [{"Name": "tag-key", "Values": [TAG]}]
    found = [i["InstanceId"] for r in ec2.describe_instances(Filters=f + [{"Name": "instance-state-name", "Values": [
        "pending", "running", "shutting-down", "stopping", "stopped"]}])["Reservations"] for i in r["Instances"]]
    found += [v["VolumeId"] for v in ec2.describe_volumes(Filters=f)["Volumes"]]
    found += [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]]
    found += [k["KeyName"] for k in ec2.describe_key_pairs(Filters=f)["KeyPairs"]]
    found += [r["SpotInstanceRequestId"] for r in ec2.describe_spot_instance_requests(Filters=f + [
        {"Name": "state", "Values": ["open", "active", "disabled"]}])["SpotInstanceRequests"]]
    return found


def run_on(cluster, script: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        code = cluster.run_script(f.name)
    finally:
        os.unlink(f.name)
    if code != 0:
        raise SystemExit(f"script failed on {cluster.handle} (exit {code})")


def one_cluster(name: str, spot: bool, config: cfg.Config, ec2) -> None:
    text = (f'{name} = @cluster(node_count => 1, node_machinetype => "t3.micro", node_process_count => 2, '
            f'node_provider => AmazonEC2, cluster_locale => "{config.aws.region}"' + (", spot => true" if spot else "")
            + ")")
    contract = ccdsl.parse(text)[name]
    started = time.monotonic()
    cluster = ccdsl.deploy(contract, config=config, progress=lambda role, i, state: print(f"  {role} {i}: {state}"))
    try:
        print(f"{name}: deployed {cluster.handle} in {time.monotonic() - started:.0f} s: {cluster.nodes()}")
        run_on(cluster, RANK_SUM)
        run_on(cluster, FACTS_SCRIPT)
        node_python = cluster.nodes()[0].extra.get("python_version")
        if node_python == "{}.{}".format(*sys.version_info[:2]):
            assert cluster.run(rank_sum) == 1, "rank sum of run(fn) is not 0 + 1"
            print(f"{name}: run(fn) works (both sides Python {node_python})")
        else:
            print(f"{name}: run(fn) skipped: the node has Python {node_python}, this is "
                  f"{sys.version_info[0]}.{sys.version_info[1]} (run_script works across versions)")
        ccdsl.interrupt(cluster, config=config)
        ids = [n.instance_id for n in cluster.nodes()]
        states = {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                  for i in r["Instances"]}
        assert states == {"stopped"}, f"interrupt left {states}"
        print(f"{name}: interrupted ({states})")
        ccdsl.resume(cluster, config=config)
        run_on(cluster, RANK_SUM)
        print(f"{name}: resumed and ran again")
    finally:
        ccdsl.terminate(cluster.handle, config=config)
        print(f"{name}: terminated {cluster.handle}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--yes", action="store_true", help="I know this costs a few cents and have a budget alarm")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    if not args.yes:
        print(__doc__)
        print("Not run: pass --yes to launch two t3.micro instances on your AWS account.")
        return 2
    import boto3

    observer = Observer()
    aws_provider.EVENT_HOOKS.extend(observer.hooks())
    config = cfg.load().replace(aws={"region": args.region}, mpi={"install": True})
    ec2 = boto3.client("ec2", region_name=args.region)
    before = leftovers(ec2)
    if before:
        print(f"note: resources of other ccdsl clusters exist already and are not counted: {before}")
    failures = []
    for name, spot in (("smoke_on_demand", False), ("smoke_spot", True)):
        try:
            one_cluster(name, spot, config, ec2)
        except Exception as exc:  # report and go on to the other cluster and the checks
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"FAILED {failures[-1]}")
    left = [x for x in leftovers(ec2) if x not in before]
    print("\nLeft behind (instances, volumes, security groups, key pairs, open spot requests):", left or "nothing")
    print("\nFacts the moto-based tests could not verify:")
    for fact, value in observer.facts.items():
        print(f"  {fact}: {value}")
    print("  (image python3 / python3-venv: see the FACT lines above)")
    if left:
        failures.append(f"resources left: {left}; remove them with 'ccdsl clusters' / 'ccdsl terminate HANDLE'")
    for f in failures:
        print("FAILED", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
