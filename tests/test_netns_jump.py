"""Private nodes behind a jump host (issue 23 item 2), on real sshd in network namespaces.

``JumpHosts`` (tests/netns_hosts.py): three private hosts on a bridge this machine cannot reach (a connection
fails at once: an ``unreachable`` route, nothing leaves the machine) and a jump host on both bridges.  The seed's
tutorial on EC2 (moto's server; ``[aws] address_map`` sends ccdsl to the namespaces, never to an address moto
reports) runs through the jump host two ways: ``jump_host = "auto"`` (PeerWorkers' node 0 is the jump host) and a
bastion (``user@host:port``, not a cluster node).  Deploy, an MPI program across the three nodes, sync and
terminate go through the one connection pool, which alone knows the hops."""

from __future__ import annotations

import errno
import socket
import sys

import pytest

import ccdsl
from ccdsl.errors import ProviderError
from ccdsl.executor import ssh
from ccdsl.executor.config import Config
from fixtures_executor import aws_settings, data_dir, ec2, ec2_keys_on_hosts, hooks, tagged  # fixtures
from netns_hosts import JumpHosts, missing_requirements

pytest.importorskip("paramiko")
pytest.importorskip("mpi4py")
pytestmark = pytest.mark.netns

TUTORIAL = "my_first_cluster_contract = @cluster(node_count => 3, node_machinetype => EC2Type_T3_xLarge)"


@pytest.fixture(scope="module")
def jump_hosts():
    reason = missing_requirements()
    if reason:
        pytest.skip(f"cannot build SSH test hosts: {reason}")
    hosts = JumpHosts(3).build()
    try:
        yield hosts
    finally:
        hosts.teardown()


@pytest.fixture()
def netns_hosts(jump_hosts):
    """The hosts ``ec2_keys_on_hosts`` authorizes the cluster's key pair on."""
    return jump_hosts


def where_am_i(comm):
    """Inside a rank: the address of eth0 (the inner bridge) of the namespace it runs in, gathered on rank 0."""
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "eth0"], capture_output=True, text=True).stdout
    return comm.gather(out.split()[3].split("/")[0], root=0)


def address_of_eth0(pool, node) -> str:
    return ssh.run(pool.get(node), "ip -4 -o addr show eth0", node=node, check=True).stdout.split()[3].split("/")[0]


def test_private_hosts_are_reached_only_through_the_jump_host(jump_hosts):
    private = [jump_hosts.node(i, index=i + 1) for i in range(3)]
    for node in private:
        with pytest.raises(OSError) as info:
            socket.create_connection((node.private_address, 22), timeout=30).close()
        assert info.value.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH)
        with pytest.raises(ProviderError, match="cannot reach"):
            ssh.connect(node, ssh.SshOptions(accept_new=True, connect_timeout=30))
    node0 = jump_hosts.node(3, index=0)
    auto = ssh.SshOptions(accept_new=True, jump=ssh.Jump())
    with ssh.Connections(auto, members=[node0, *private]) as pool:
        assert pool.route(node0) is None and {pool.route(n).instance_id for n in private} == {"jump"}
        assert [address_of_eth0(pool, n) for n in private] == [h.address for h in jump_hosts.hosts[:3]]
        assert address_of_eth0(pool, node0) == jump_hosts.inner
    bastion = ssh.Jump(bastion=jump_hosts.node(3, role="jump"))
    with ssh.Connections(ssh.SshOptions(accept_new=True, jump=bastion)) as pool:
        assert [address_of_eth0(pool, n) for n in private] == [h.address for h in jump_hosts.hosts[:3]]


def config_for(url, hosts, tmp_path, **aws) -> Config:
    return Config.from_dict({
        "aws": aws_settings(url, user=hosts.user, zones=["us-east-1a"], private=True, **aws),
        "ssh": {"ready_timeout": 120.0, "connect_timeout": 30.0, "user_known_hosts": ""},
        # the test hosts are this machine's namespaces: no shutdown, and cloud-init's per-boot folder in tmp_path
        "autostop": {"shutdown_command": "true", "boot_dir": str(tmp_path / "per-boot")},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(hosts.private / "remote"),
                "authorized_keys": str(hosts.authorized_keys)},
    })


def tutorial(config, ec2, hosts, order, tmp_path, *, contract=TUTORIAL, copies=None, public=None,
             lifecycle=False, autostop=None) -> None:
    """Deploy ``contract``, run MPI across its nodes, sync a folder, start engines, reconnect, terminate.
    ``order``: the host of each rank's node; ``copies``: the hosts that get the folder (default: ``order``);
    ``public``: the nodes' addresses as ccdsl records them (None where only the jump host reaches the node);
    ``autostop``: armed at deploy, the watchdog must then run on node 0."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "data.txt").write_text("through the jump host\n")
    c = ccdsl.deploy(ccdsl.parse(contract).popitem()[1], config=config, autostop=autostop)
    try:
        if autostop:  # armed through the jump host: the watchdog runs in node 0's namespace
            assert any(f"/{c.handle}/watchdog.py run" in cmd for cmd in commands_in(hosts.hosts[order[0]].netns))
        assert [n.address for n in c.nodes()] == public  # nothing else is reachable from here
        assert c.run(where_am_i) == [hosts.inner if i == 3 else hosts.hosts[i].address for i in order]
        c.sync(str(project))
        for i in copies or order:
            assert (hosts.private_of(i) / "remote" / c.handle / "work" / "data.txt").read_text() == (
                "through the jump host\n")
        rc = c.engines()
        rc[:].execute("from mpi4py import MPI; total = MPI.COMM_WORLD.allreduce(MPI.COMM_WORLD.rank)", block=True)
        assert rc[:].pull("total", block=True) == [sum(range(len(order)))] * len(order)
        if lifecycle:  # node 0's public address changes on resume: the pool asks EC2's answer anew
            ccdsl.interrupt(c)
            ccdsl.resume(c, config=config)
        again = ccdsl.reconnect(c.handle, config=config)
        assert len(again.run(where_am_i)) == len(order)
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


def commands_in(netns: str) -> list[str]:
    import subprocess
    from pathlib import Path

    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    out = []
    for pid in pids:
        try:
            out.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return out


def test_tutorial_through_node_0_auto(aws_env, data_dir, ec2, ec2_keys_on_hosts, jump_hosts, tmp_path):
    hosts = jump_hosts.hosts
    config = config_for(aws_env, jump_hosts, tmp_path, jump_host="auto", address_map={
        "0": f"{jump_hosts.jump.address},{jump_hosts.inner}", "1": hosts[0].address, "2": hosts[1].address})
    tutorial(config, ec2, jump_hosts, [3, 0, 1], tmp_path, public=[jump_hosts.jump.address, None, None],
             lifecycle=True)


MANAGED = ('managed = @cluster(cluster_type => ManagerWorkers, node_count => 2, node_provider => AmazonEC2, '
           'worker.node_vcpus_count => @atleast(4), cluster_locale => "us-east-1")')


def test_manager_workers_through_the_manager_auto(aws_env, data_dir, ec2, ec2_keys_on_hosts, jump_hosts, tmp_path):
    hosts = jump_hosts.hosts
    config = config_for(aws_env, jump_hosts, tmp_path, jump_host="auto", address_map={
        "manager.0": f"{jump_hosts.jump.address},{jump_hosts.inner}", "0": hosts[0].address,
        "1": hosts[1].address})
    tutorial(config, ec2, jump_hosts, [0, 1], tmp_path, contract=MANAGED, copies=[3, 0, 1],
             public=[jump_hosts.jump.address, None, None])


def test_tutorial_through_a_bastion(aws_env, data_dir, ec2, ec2_keys_on_hosts, jump_hosts, tmp_path):
    hosts = jump_hosts.hosts
    config = config_for(aws_env, jump_hosts, tmp_path, jump_host=f"root@{jump_hosts.jump.address}:22",
                        jump_key_path=str(jump_hosts.client_key), ssh_cidr=f"{jump_hosts.inner}/32",
                        address_map={str(i): hosts[i].address for i in range(3)})
    tutorial(config, ec2, jump_hosts, [0, 1, 2], tmp_path, public=[None, None, None], autostop="1h")
