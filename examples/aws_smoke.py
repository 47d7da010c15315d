"""Smoke test on a REAL AWS account: what the moto-based tests cannot prove.

    COSTS MONEY (a few cents): two t3.micro instances -- one on-demand, one spot -- for about 10 to 20 minutes,
    plus their 8 GiB root volumes.  It needs AWS credentials (the usual boto3 chain) with the IAM permissions the
    README lists, and you should have a budget alarm on the account (AWS Budgets) before running it.
    It is NOT part of CI and never runs without ``--yes``.

    python examples/aws_smoke.py --yes [--region us-east-1] [--ssh-cidr CIDR] [--image AMI]
    python examples/aws_smoke.py --yes --efa [--region us-east-1] [--ssh-cidr CIDR]
    python examples/aws_smoke.py --yes --shared nfs|efs [...]

``--efa`` instead deploys 2 × hpc7g.4xlarge ($1.68/h each, the cheapest type that ships EFA; about 20 minutes, so
under $2) with ``efa => true``: one EFA interface each, a ``cluster`` placement group, the EFA software installed
by cloud-init.  It prints ``fi_info -p efa`` of both nodes (the deploy has already checked that it lists the EFA
device) and an mpi4py ping-pong bandwidth between the nodes under Open MPI's mpirun, first with
``FI_PROVIDER=efa`` (what ccdsl sets), then with ``FI_PROVIDER=tcp``; then it terminates the cluster and checks
that nothing is left (placement group included).  hpc7g is offered in a few regions and zones only (us-east-1
among them): the deployer tries the zones that offer it.

With ``--shared nfs`` or ``--shared efs`` it deploys instead one cluster of two on-demand t3.micro with ``[aws]
shared`` set so: the project folder is written once, node 0 writes a file into it and node 1 reads it back (an
MPI run of two ranks, one per node); then it terminates and checks that nothing is left, EFS file systems
included (``efs`` adds an EFS file system of a few KB for those minutes).

For each of the two clusters (on-demand, spot) it deploys a one-node cluster through ccdsl with ``[mpi] install``
(the default Ubuntu image, cloud-init user data, a venv with mpich/mpi4py/cloudpickle), runs the rank sum over MPI
(2 ranks), interrupts, resumes, runs again, and terminates.  The on-demand cluster is in a ``spread`` placement
group with ``autostop="2m"``: its watchdog must stop it by itself (this waits for that, up to 15 minutes), and
the resume arms it again.  For the spot cluster it prints its spot requests (state, status, ``ValidUntil``) after
each step.  Then it checks with its own boto3 client that nothing tagged ``ccdsl:cluster`` is left: no instance,
volume, security group, key pair, or open spot request.  Last it prints the facts about AWS that the tests here
could only assume (among them the HTTP status of a capacity error, if one came).  Exit code 0 when everything
held.

Whatever ends it -- a failure, Ctrl-C, SIGTERM, SIGHUP -- it terminates what it deployed and prints what is left.
It reads no ``ccdsl.toml`` (yours could point elsewhere): every setting is ccdsl's default or an option below.

SSH to the nodes goes from this machine to their public addresses: the security group allows port 22 only from
this machine's public address (found through checkip.amazonaws.com), and the nodes need outbound internet for pip.
"""

from __future__ import annotations

import argparse
import os
import signal
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


# Ping-pong between rank 0 and rank 1 (one per node): the median round trip per message size, as bandwidth.
PING_PONG = """\
import os, statistics, sys, time
from mpi4py import MPI
comm = MPI.COMM_WORLD
rank = comm.Get_rank()
label = sys.argv[1]
for size in (1 << 16, 1 << 20, 1 << 24):
    buf = bytearray(size)
    rounds = []
    for _ in range(30):
        comm.Barrier()
        start = time.perf_counter()
        if rank == 0:
            comm.Send([buf, MPI.BYTE], dest=1)
            comm.Recv([buf, MPI.BYTE], source=1)
        elif rank == 1:
            comm.Recv([buf, MPI.BYTE], source=0)
            comm.Send([buf, MPI.BYTE], dest=0)
        rounds.append(time.perf_counter() - start)
    if rank == 0:
        median = statistics.median(rounds[5:])
        print(f"PINGPONG FI_PROVIDER={os.environ.get('FI_PROVIDER')} ({label}): {size} bytes: "
              f"{2 * size / median / 1e9:.2f} GB/s, median round trip {median * 1e6:.0f} us", flush=True)
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

    def errors(self, http_response, parsed, **_):
        code = (parsed.get("Error") or {}).get("Code", "")
        if http_response.status_code >= 300 and (code in aws_provider.CAPACITY_CODES or code in
                                                 aws_provider.QUOTA_CODES):
            self.facts[f"HTTP status of {code}"] = str(http_response.status_code)

    def hooks(self):
        return [("after-call.ec2.CreateKeyPair", self.key_pair), ("after-call.ec2.RunInstances", self.run_instances),
                ("after-call.ec2", self.errors)]


class Stopped(BaseException):
    """SIGTERM or SIGHUP: end as Ctrl-C does -- terminate what was deployed, then report."""


def _stop(signum, frame):
    raise Stopped(signal.Signals(signum).name)


SHARED_SCRIPT = """\
import os, socket
from pathlib import Path
from mpi4py import MPI
comm = MPI.COMM_WORLD
if comm.Get_rank() == 0:
    Path("from-node-0.txt").write_text(f"written on {socket.gethostname()}")
comm.Barrier()
if comm.Get_rank() == 1:
    print(f"node 1 ({socket.gethostname()}) in {os.getcwd()} reads:", Path("from-node-0.txt").read_text())
    print("project file:", Path("project.txt").read_text().strip())
"""


def shared_cluster(mode: str, config: cfg.Config) -> None:
    """Two nodes sharing a folder (``[aws] shared = mode``): node 1 reads the file node 0 wrote."""
    text = (f'shared_{mode} = @cluster(node_count => 2, node_machinetype => "t3.micro", node_provider => AmazonEC2, '
            f'cluster_locale => "{config.aws.region}")')
    contract = ccdsl.parse(text)[f"shared_{mode}"]
    config = config.replace(aws={"shared": mode})
    with tempfile.TemporaryDirectory() as project:
        with open(os.path.join(project, "project.txt"), "w") as f:
            f.write("synced once, to node 0\n")
        cluster = ccdsl.deploy(contract, config=config, workdir=project,
                               progress=lambda role, i, state: print(f"  {role} {i}: {state}"))
        try:
            print(f"shared {mode}: deployed {cluster.handle}; the folder is {cluster.nodes()[0].extra['work_dir']}")
            print(f"shared {mode}: sync wrote to {[s.node for s in cluster.sync()]}")
            run_on(cluster, SHARED_SCRIPT)
        finally:
            ccdsl.terminate(cluster.handle, config=config)
            print(f"shared {mode}: terminated {cluster.handle}")


def leftovers(ec2, efs=None) -> list[str]:
    """Everything any ccdsl cluster still owns in the region, seen by independent clients (with ``efs``, EFS file
    systems too; one kept on purpose, tagged ccdsl:kept, is not a leftover)."""
    f = [{"Name": "tag-key", "Values": [TAG]}]
    found = [i["InstanceId"] for r in ec2.describe_instances(Filters=f + [{"Name": "instance-state-name", "Values": [
        "pending", "running", "shutting-down", "stopping", "stopped"]}])["Reservations"] for i in r["Instances"]]
    found += [v["VolumeId"] for v in ec2.describe_volumes(Filters=f)["Volumes"]
              if v["State"] not in ("deleting", "deleted")]  # being deleted: gone in a moment, no cost
    found += [g["GroupId"] for g in ec2.describe_security_groups(Filters=f)["SecurityGroups"]]
    found += [k["KeyName"] for k in ec2.describe_key_pairs(Filters=f)["KeyPairs"]]
    found += [r["SpotInstanceRequestId"] for r in ec2.describe_spot_instance_requests(Filters=f + [
        {"Name": "state", "Values": ["open", "active", "disabled"]}])["SpotInstanceRequests"]]
    systems = efs.describe_file_systems().get("FileSystems", []) if efs is not None else []  # one page is plenty
    for fs in systems:
        keys = {t["Key"] for t in fs.get("Tags", [])}
        if TAG in keys and "ccdsl:kept" not in keys and fs["LifeCycleState"] not in ("deleting", "deleted"):
            found.append(fs["FileSystemId"])
    return found


def run_on(cluster, script: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(script)
    try:
        code = cluster.run_script(f.name)
    finally:
        os.unlink(f.name)
    if code != 0:  # a failure of this cluster: the next one still runs, and the report is printed
        raise RuntimeError(f"script failed on {cluster.handle} (exit {code})")


def spot_requests(ec2, cluster, name: str, when: str, observer: Observer | None = None) -> None:
    """The cluster's spot requests as EC2 has them: state, status, ValidUntil (ccdsl asks for a year)."""
    found = ec2.describe_spot_instance_requests(Filters=[{"Name": f"tag:{TAG}", "Values": [cluster.handle]}])[
        "SpotInstanceRequests"]
    for r in found:
        line = (f"state {r['State']}, status {r.get('Status', {}).get('Code')}, ValidUntil "
                f"{r.get('ValidUntil', '(none: 7 days)')}")
        print(f"{name}: {when}: spot request {r['SpotInstanceRequestId']}: {line}")
        if observer is not None:
            observer.facts[f"spot request {when}"] = line
    if not found:
        print(f"{name}: {when}: no spot request listed")


def wait_autostopped(cluster, config: cfg.Config, name: str, limit: float = 900.0) -> None:
    """Until the cluster's own watchdog stopped it (``ccdsl clusters`` shows it interrupted)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        time.sleep(20)
        (info,) = [i for i in ccdsl.clusters(config=config) if i.handle == cluster.handle] or [None]
        if info is not None and info.status == "interrupted":
            print(f"{name}: autostopped by its watchdog after {time.monotonic() - started:.0f} s: {info.note}")
            return
    raise RuntimeError(f"{cluster.handle} was not autostopped within {limit:.0f} s")


def one_cluster(name: str, spot: bool, config: cfg.Config, ec2, observer: Observer | None = None) -> None:
    text = (f'{name} = @cluster(node_count => 1, node_machinetype => "t3.micro", node_process_count => 2, '
            f'node_provider => AmazonEC2, cluster_locale => "{config.aws.region}"' + (", spot => true" if spot else "")
            + ")")
    contract = ccdsl.parse(text)[name]
    started = time.monotonic()
    guarded = not spot  # the on-demand cluster: in a spread placement group, autostopped by its watchdog
    if guarded:
        config = config.replace(aws={"placement_group": "spread"})
    cluster = ccdsl.deploy(contract, config=config, progress=lambda role, i, state: print(f"  {role} {i}: {state}"),
                           autostop="2m" if guarded else None)
    try:
        print(f"{name}: deployed {cluster.handle} in {time.monotonic() - started:.0f} s: {cluster.nodes()}")
        if spot:
            spot_requests(ec2, cluster, name, "deployed", observer)
        run_on(cluster, RANK_SUM)
        run_on(cluster, FACTS_SCRIPT)
        node_python = cluster.nodes()[0].extra.get("python_version")
        if node_python == "{}.{}".format(*sys.version_info[:2]):
            assert cluster.run(rank_sum) == 1, "rank sum of run(fn) is not 0 + 1"
            print(f"{name}: run(fn) works (both sides Python {node_python})")
        else:
            print(f"{name}: run(fn) skipped: the node has Python {node_python}, this is "
                  f"{sys.version_info[0]}.{sys.version_info[1]} (run_script works across versions)")
        ids = [n.instance_id for n in cluster.nodes()]
        if guarded:
            wait_autostopped(cluster, config, name)
        else:
            ccdsl.interrupt(cluster, config=config)
        states = {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                  for i in r["Instances"]}
        if states != {"stopped"}:
            raise RuntimeError(f"{name}: stopping left {states}")
        print(f"{name}: stopped ({states})")
        if spot:
            spot_requests(ec2, cluster, name, "interrupted", observer)
        ccdsl.resume(cluster, config=config)
        run_on(cluster, RANK_SUM)
        print(f"{name}: resumed and ran again")
        if spot:
            spot_requests(ec2, cluster, name, "resumed", observer)
    finally:
        ccdsl.terminate(cluster.handle, config=config)
        print(f"{name}: terminated {cluster.handle}")


def efa_cluster(config: cfg.Config, ec2, observer: Observer) -> None:
    """2 × hpc7g.4xlarge with EFA: fi_info on both nodes, then the ping-pong under FI_PROVIDER=efa and =tcp."""
    name = "smoke_efa"
    text = (f'{name} = @cluster(node_count => 2, node_machinetype => "hpc7g.4xlarge", node_process_count => 1, '
            f'node_provider => AmazonEC2, cluster_locale => "{config.aws.region}", efa => true)')
    contract = ccdsl.parse(text)[name]
    started = time.monotonic()
    left: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        with open(os.path.join(folder, "ping_pong.py"), "w") as f:
            f.write(PING_PONG)
        cluster = None
        try:
            cluster = ccdsl.deploy(contract, config=config, workdir=folder,
                                   progress=lambda role, i, state: print(f"  {role} {i}: {state}"))
            print(f"{name}: deployed {cluster.handle} in {time.monotonic() - started:.0f} s: {cluster.nodes()}")
            for entry in cluster.state.journal_of(cluster.handle):
                if entry.phase == "efa":  # "EFA on: 1 interface"
                    print(f"{name}: {entry.detail.get('role')}: {entry.detail.get('text')}")
                    observer.facts[f"EFA ({entry.detail.get('role')})"] = str(entry.detail.get("text"))
            groups = ec2.describe_placement_groups(Filters=[{"Name": f"tag:{TAG}", "Values": [cluster.handle]}])
            observer.facts["placement group"] = ", ".join(f"{g['GroupName']} ({g['Strategy']})"
                                                          for g in groups["PlacementGroups"]) or "(none)"
            print(f"{name}: fi_info -p efa on every node:")
            if cluster.run_program(["sh", "-c", 'echo "== $(hostname)"; /opt/amazon/efa/bin/fi_info -p efa']) != 0:
                raise RuntimeError("fi_info -p efa failed on a node")
            python = cluster.nodes()[0].extra["python"]
            bandwidth: list[str] = []

            def keep(line: str, stream: str) -> None:
                print(line, file=sys.stderr if stream == "stderr" else sys.stdout)
                if line.startswith("PINGPONG"):
                    bandwidth.append(line)

            for provider in ("efa", "tcp"):  # ccdsl's mpirun says efa; env overrides it for the comparison
                argv = [python, os.path.join(folder, "ping_pong.py"), "as ccdsl runs it"] if provider == "efa" else [
                    "env", f"FI_PROVIDER={provider}", python, "ping_pong.py", "overridden"]  # the synced copy
                if cluster.run_program(argv, stream=keep) != 0:
                    raise RuntimeError(f"the ping-pong failed under FI_PROVIDER={provider}")
            for line in bandwidth:
                observer.facts[line.split(":")[0] + ": " + line.split(":")[1].strip()] = line.split(":", 2)[2].strip()
        finally:
            if cluster is not None:
                ccdsl.terminate(cluster.handle, config=config)
                print(f"{name}: terminated {cluster.handle}")
                groups = ec2.describe_placement_groups(Filters=[{"Name": f"tag:{TAG}", "Values": [cluster.handle]}])
                left = [g["GroupName"] for g in groups["PlacementGroups"] if g.get("State") != "deleted"]
                observer.facts["placement groups left after terminate"] = ", ".join(left) or "none"
    if left:
        raise RuntimeError(f"{name}: placement group(s) left after terminate: {', '.join(left)}")


def smoke_config(args: argparse.Namespace) -> cfg.Config:
    """ccdsl's defaults and the options given: never the user's ccdsl.toml (it could name another endpoint,
    region, image or addresses, and the facts printed would not be AWS's)."""
    aws: dict = {"region": args.region}
    if args.ssh_cidr:
        aws["ssh_cidr"] = args.ssh_cidr
    if args.image:
        aws["image"] = {"x86_64": args.image, "arm64": cfg.AwsConfig().image["arm64"]}
    return cfg.Config().replace("aws_smoke.py", aws=aws, mpi={"install": True})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--yes", action="store_true", help="I know this costs a few cents and have a budget alarm")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    parser.add_argument("--ssh-cidr", help="who may SSH in (default: this machine's public address)")
    parser.add_argument("--image", help="x86_64 AMI id or resolve:ssm: name (default: ccdsl's Ubuntu)")
    parser.add_argument("--efa", action="store_true",
                        help="instead: 2 × hpc7g.4xlarge with EFA (about $2): fi_info and ping-pong efa vs tcp")
    parser.add_argument("--shared", choices=["nfs", "efs"],
                        help="instead: two nodes sharing a folder ([aws] shared); node 1 reads node 0's file")
    args = parser.parse_args(argv)
    if args.efa and args.shared:
        parser.error("--efa and --shared deploy different clusters: pass one of them")
    if not args.yes:
        print(__doc__)
        print("Not run: pass --yes to launch " + ("two hpc7g.4xlarge" if args.efa else "two t3.micro")
              + " instances on your AWS account.")
        return 2
    import boto3

    observer = Observer()
    aws_provider.EVENT_HOOKS.extend(observer.hooks())
    config = smoke_config(args)
    ec2 = boto3.client("ec2", region_name=args.region)
    efs = boto3.client("efs", region_name=args.region)
    before = leftovers(ec2, efs)
    if before:
        print(f"note: resources of other ccdsl clusters exist already and are not counted: {before}")
    failures: list[str] = []
    stopped = ""
    handlers = {s: signal.signal(s, _stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    runs = ([("smoke_efa", None)] if args.efa else [(f"shared_{args.shared}", None)] if args.shared
            else [("smoke_on_demand", False), ("smoke_spot", True)])
    try:
        for name, spot in runs:
            try:
                if spot is None and args.efa:
                    efa_cluster(config, ec2, observer)
                elif spot is None:
                    shared_cluster(args.shared, config)
                else:
                    one_cluster(name, spot, config, ec2, observer)
            except Exception as exc:  # report and go on to the other cluster and the checks
                failures.append(f"{name}: {type(exc).__name__}: {exc}")
                print(f"FAILED {failures[-1]}")
            except (KeyboardInterrupt, SystemExit, Stopped) as exc:  # one_cluster terminated what it deployed
                stopped = {KeyboardInterrupt: "Ctrl-C", SystemExit: f"SystemExit({exc})"}.get(type(exc), str(exc))
                failures.append(f"{name}: stopped by {stopped}")
                print(f"STOPPED {failures[-1]}; no further cluster is deployed")
                break
    finally:
        for s in handlers:  # the report is printed whatever happened above
            signal.signal(s, signal.SIG_IGN)
        report(ec2, efs, before, observer, failures)
        for s, handler in handlers.items():
            signal.signal(s, handler)
    if stopped:
        return 130
    return 1 if failures else 0


def report(ec2, efs, before: list[str], observer: Observer, failures: list[str]) -> None:
    left = [x for x in leftovers(ec2, efs) if x not in before]
    print("\nLeft behind (instances, volumes, security groups, key pairs, open spot requests):", left or "nothing")
    print("\nFacts the moto-based tests could not verify:")
    for fact, value in observer.facts.items():
        print(f"  {fact}: {value}")
    print("  (image python3 / python3-venv: see the FACT lines above)")
    if left:
        failures.append(f"resources left: {left}; remove them with 'ccdsl clusters' / 'ccdsl terminate HANDLE'")
    for f in failures:
        print("FAILED", f)
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
