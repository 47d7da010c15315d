"""End to end: deploy on EC2 (moto server) -> connect (instances mapped to SSH hosts in network namespaces) ->
run MPI across them -> interrupt -> resume -> run -> restart -> reconnect -> terminate -> nothing tagged left.

Moto's instances do not exist, so ``[aws] address_map`` (a documented test hook) maps launch index i to netns
host i; ccdsl never connects to an address moto reports.  EC2 installs a key pair's public key on the instances
it launches; the ``CreateKeyPair`` hook below does the same for the netns hosts (their shared authorized_keys).
"""

from __future__ import annotations

import os
import sys

import pytest

import ccdsl
from ccdsl.errors import ClusterError
from ccdsl.executor.config import Config
from fixtures_executor import (  # fixtures
    aws_settings,
    data_dir,
    ec2,
    ec2_keys_on_hosts,
    hooks,
    inject,
    request_type,
    request_zone,
    tagged,
)
from fixtures_netns import netns_hosts

pytest.importorskip("paramiko")
pytest.importorskip("mpi4py")
pytestmark = pytest.mark.netns

TUTORIAL = "my_first_cluster_contract = @cluster(node_count => 3, node_machinetype => EC2Type_T3_xLarge)"
FLEXIBLE = ('flexible = @cluster(node_count => 2, node_provider => AmazonEC2, node_vcpus_count => @atleast(4), '
            'node_memory_size => @atleast(16G), cluster_locale => "us-east-1")')


def where_am_i(comm, scale):
    """Inside a rank: the reduce of the seed's tutorial, plus the address of the namespace the rank runs in."""
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "eth0"], capture_output=True, text=True).stdout
    total = comm.reduce(comm.Get_rank() * scale, root=0)
    return total, comm.gather(out.split()[3].split("/")[0], root=0)


@pytest.fixture()
def config(aws_env, data_dir, netns_hosts, tmp_path, ec2_keys_on_hosts):
    addresses = {str(i): h.address for i, h in enumerate(netns_hosts.hosts)}
    return Config.from_dict({
        "aws": aws_settings(aws_env, user=netns_hosts.user, address_map=addresses,
                            zones=["us-east-1a", "us-east-1b"]),
        "ssh": {"ready_timeout": 60.0, "connect_timeout": 5.0},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(tmp_path / "remote"),
                "authorized_keys": str(netns_hosts.authorized_keys)},
    })


def test_tutorial_end_to_end(config, ec2, netns_hosts):
    contract = ccdsl.parse(TUTORIAL)["my_first_cluster_contract"]
    events: list[tuple[str, int, str]] = []
    c = ccdsl.deploy(contract, config=config, progress=lambda *e: events.append(e))
    try:
        for i in range(3):
            mine = [s for role, index, s in events if index == i]
            assert mine == ["requested", "running", "reachable", "ready"], mine
        nodes = c.nodes()
        assert [n.address for n in nodes] == [h.address for h in netns_hosts.hosts[:3]]
        assert all(n.instance_id.startswith("i-") and n.instance_type == "t3.xlarge" for n in nodes)
        assert len(tagged(ec2, c.handle)["instances"]) == 3

        first = c.workers()
        assert len(first) == 3
        total, where = c.run(where_am_i, 10)
        assert total == 10 * (0 + 1 + 2)
        assert where == [h.address for h in netns_hosts.hosts[:3]]  # three ranks, three namespaces
        assert c.ranks() == dict(enumerate(first))

        ccdsl.interrupt(c)
        states = {i["State"]["Name"] for r in ec2.describe_instances(
            InstanceIds=[n.instance_id for n in nodes])["Reservations"] for i in r["Instances"]}
        assert states == {"stopped"} and c.workers() == []
        with pytest.raises(ClusterError, match="interrupted"):
            c.run(where_am_i, 1)

        ccdsl.resume(c, config=config)
        second = c.workers()
        assert min(second) > max(first)
        assert c.run(where_am_i, 1)[0] == 3

        ccdsl.restart(c)
        third = c.workers()
        assert min(third) > max(second)

        again = ccdsl.reconnect(c.handle, config=config)
        assert min(again.workers()) > max(third)
        assert again.run(where_am_i, 2)[0] == 6
        assert [i.handle for i in ccdsl.clusters(config=config)] == [c.handle]
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}
    assert ccdsl.clusters(config=config) == []


def test_zone_failover_says_so(config, ec2, hooks, caplog):
    busy = inject(None, "InsufficientInstanceCapacity", "no capacity",
                  when=lambda request: request_zone(request) == "us-east-1a")
    hooks.append(("before-send.ec2.RunInstances", busy))
    c = ccdsl.deploy(ccdsl.parse(TUTORIAL)["my_first_cluster_contract"], config=config)
    try:
        assert busy.failed == 1
        assert {n.zone for n in c.nodes()} == {"us-east-1b"}
        assert "no capacity in us-east-1a; trying the next zone" in c.record.note
        assert "us-east-1a" in caplog.text
        assert c.run(where_am_i, 1)[0] == 3
    finally:
        ccdsl.terminate(c)
    assert tagged(ec2, c.handle) == {}


def test_failover_to_next_cheapest_alternative(config, ec2, hooks):
    contract = ccdsl.parse(FLEXIBLE)["flexible"]
    resolution = ccdsl.resolve(contract)
    cheapest, runner_up = resolution.choice.instance_type, resolution.alternatives[0].instance_type
    none_left = inject(None, "InsufficientInstanceCapacity", "no capacity",
                       when=lambda request: request_type(request) == cheapest)
    hooks.append(("before-send.ec2.RunInstances", none_left))
    c = ccdsl.deploy(resolution, config=config)
    try:
        assert none_left.failed == 2  # both configured zones
        assert {n.instance_type for n in c.nodes()} == {runner_up}
        assert f"trying the next-cheapest alternative: {runner_up}" in c.record.note
        assert c.run(where_am_i, 1)[0] == 1
    finally:
        ccdsl.terminate(c)
    assert tagged(ec2, c.handle) == {}


MANAGED = ('managed = @cluster(cluster_type => ManagerWorkers, node_count => 2, node_provider => AmazonEC2, '
           'node_process_count => 2, worker.node_vcpus_count => @atleast(4), cluster_locale => "us-east-1", '
           'spot => true)')


def test_manager_workers_spot_cluster(config, ec2, hooks, netns_hosts):
    """A manager of its own type (one RunInstances per role) drives the workers; the user reaches the manager."""
    runs = []
    hooks.append(("before-parameter-build.ec2.RunInstances", lambda params, **_: runs.append(params)))
    hosts = netns_hosts.hosts
    config = config.replace(aws={"address_map": {"manager.0": hosts[3].address, "0": hosts[0].address,
                                                 "1": hosts[1].address}})
    resolution = ccdsl.resolve(ccdsl.parse(MANAGED)["managed"])
    c = ccdsl.deploy(resolution, config=config)
    try:
        manager, worker = resolution.manager.instance_type, resolution.choice.instance_type
        assert [(r["InstanceType"], r["MinCount"], r["MaxCount"]) for r in runs] == [(manager, 1, 1), (worker, 2, 2)]
        assert all(r["InstanceMarketOptions"]["MarketType"] == "spot" for r in runs)
        assert [(n.role, n.index, n.address) for n in c.nodes()] == [
            ("manager", 0, hosts[3].address), ("worker", 0, hosts[0].address), ("worker", 1, hosts[1].address)]
        assert c.cluster_type == "ManagerWorkers"
        assert len(c.workers()) == 4  # 2 workers x node_process_count 2
        total, where = c.run(where_am_i, 1)
        assert total == 0 + 1 + 2 + 3
        assert where == [hosts[0].address] * 2 + [hosts[1].address] * 2  # ranks on the workers, not the manager
    finally:
        ccdsl.terminate(c)
    assert tagged(ec2, c.handle) == {}


def test_failed_resume_stops_the_nodes_again(config, ec2, netns_hosts):
    c = ccdsl.deploy(ccdsl.parse(TUTORIAL)["my_first_cluster_contract"], config=config)
    try:
        ccdsl.interrupt(c)
        netns_hosts.stop_sshd(1)
        try:  # short waits for the host that refuses connections only: the live ones may be slow under load
            with pytest.raises(ccdsl.ProviderError, match=r"host1|worker 1"):
                ccdsl.resume(c, config=config.replace(ssh={"ready_timeout": 3.0, "connect_timeout": 1.0}))
        finally:
            netns_hosts.start_sshd(1)
        ids = [n.instance_id for n in c.nodes()]
        states = {i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                  for i in r["Instances"]}
        assert states == {"stopped"}  # nothing left running (and paid for) after the failure
        assert c.status == "interrupted" and "stopped again" in c.record.note
        ccdsl.resume(c, config=config)
        assert c.run(where_am_i, 1)[0] == 3
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


def long_run(comm, seconds, started=None):
    import time

    if started:  # say that this rank runs (the hosts share this file system)
        open(f"{started}.{comm.rank}", "w").close()
    for _ in range(int(seconds * 10)):
        comm.Barrier()
        time.sleep(0.1)
    return "finished"


def test_node_dying_mid_run_is_clear_and_terminate_still_cleans(config, ec2, netns_hosts, tmp_path):
    import threading
    import time

    c = ccdsl.deploy(ccdsl.parse(TUTORIAL)["my_first_cluster_contract"], config=config)
    started = tmp_path / "started"

    def kill_once_running() -> None:  # mid-run: once every rank said it runs (a fail-safe bounds the wait)
        deadline = time.monotonic() + 120
        while not all(os.path.exists(f"{started}.{r}") for r in range(3)) and time.monotonic() < deadline:
            time.sleep(0.05)
        netns_hosts.kill_host(2)

    killer = threading.Thread(target=kill_once_running)
    try:
        killer.start()
        with pytest.raises(ccdsl.ExecutionError) as info:
            c.run(long_run, 300, str(started))
        assert "host2" in info.value.message or netns_hosts.hosts[2].address in info.value.message
    finally:
        killer.join()
        netns_hosts.start_sshd(2)
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


def test_two_clusters_side_by_side_terminating_one_leaves_the_other(config, ec2):
    contract = ccdsl.parse(TUTORIAL.replace("node_count => 3", "node_count => 2"))["my_first_cluster_contract"]
    a = ccdsl.deploy(contract, config=config)
    try:
        b = ccdsl.deploy(contract, config=config)
        try:
            assert a.handle != b.handle and not set(a.workers()) & set(b.workers())
            before = tagged(ec2, b.handle)
            assert len(before["instances"]) == 2 and before["security_groups"] and before["key_pairs"]
            ccdsl.terminate(a)
            assert tagged(ec2, a.handle) == {}
            assert tagged(ec2, b.handle) == before  # scoped by tag: nothing of b was touched
            assert b.run(where_am_i, 1)[0] == 1
            assert [i.handle for i in ccdsl.clusters(config=config)] == [b.handle]
        finally:
            ccdsl.terminate(b)
        assert tagged(ec2, b.handle) == {}
    finally:
        if a.status != "terminated":
            ccdsl.terminate(a)


def test_cli_on_ec2(config, ec2, netns_hosts, tmp_path, monkeypatch, capsys):
    """The CLI over the same infrastructure: deploy (progress on stderr), clusters, nodes, run, lifecycle."""
    import dataclasses
    import json

    from ccdsl.cli import main
    from ccdsl.executor.config import SECTIONS

    lines = []
    for name in SECTIONS:
        lines.append(f"[{name}]")
        for key, value in dataclasses.asdict(getattr(config, name)).items():
            lines.append(f"{key} = {json.dumps(value) if not isinstance(value, dict) else _toml_table(value)}")
    (tmp_path / "ccdsl.toml").write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("CCDSL_CONFIG", str(tmp_path / "ccdsl.toml"))
    (tmp_path / "tutorial.ccc").write_text(TUTORIAL.replace("node_count => 3", "node_count => 2") + "\n")
    (tmp_path / "prog.py").write_text("import sys\nfrom mpi4py import MPI\nc = MPI.COMM_WORLD\n"
                                      "s = c.reduce(c.Get_rank() * int(sys.argv[1]), root=0)\n"
                                      "if c.Get_rank() == 0: print('sum', s)\n")
    assert main(["deploy", str(tmp_path / "tutorial.ccc")]) == 0
    out, err = capsys.readouterr()
    handle = out.strip()
    for step in ("requested", "running", "reachable", "ready"):
        assert f"worker 0: {step}" in err and f"worker 1: {step}" in err
    try:
        assert main(["clusters"]) == 0
        assert f"PeerWorkers {handle}" in capsys.readouterr().out
        assert main(["nodes", handle, "--json"]) == 0
        nodes = json.loads(capsys.readouterr().out)
        assert [n["address"] for n in nodes] == [h.address for h in netns_hosts.hosts[:2]]
        assert main(["run", handle, "--", "python", str(tmp_path / "prog.py"), "7"]) == 0
        assert "sum 7" in capsys.readouterr().out
        assert main(["interrupt", handle]) == 0 and main(["resume", handle]) == 0
        assert main(["run", handle, "--np", "1", "--", "python", str(tmp_path / "prog.py"), "7"]) == 0
        assert "sum 0" in capsys.readouterr().out
    finally:
        assert main(["terminate", handle]) == 0
    assert tagged(ec2, handle) == {}


def _toml_table(d: dict) -> str:
    import json

    return "{ " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in d.items()) + " }"
