"""The ssh provider (bring-your-own hosts) against real sshd's in network namespaces."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from ccdsl.errors import CapacityError, ConfigError, ProviderError
from ccdsl.executor import model
from ccdsl.executor.config import Config
from ccdsl.executor.model import NodeRequest
from ccdsl.executor.providers.ssh import SshProvider, parse_hosts
from fixtures_executor import data_dir  # private data dir, no config from the environment
from fixtures_netns import netns_hosts  # the fixture

pytest.importorskip("paramiko")


def quiet(role, index, state):
    pass


# -- configuration (no hosts needed) ------------------------------------------------------------------------------
def test_parse_hosts_strings_tables_and_defaults():
    cfg = Config.from_dict({"ssh": {"user": "hpc", "port": 2200, "key_path": "/k/id", "hosts": [
        "node01", "alice@node02:2222", "[fe80::1]:23",
        {"name": "gpu1", "address": "10.0.0.7", "private_address": "192.168.1.7", "type": "gpu-rack"}]}})
    a, b, c, d = parse_hosts(cfg)
    assert (a.name, a.address, a.user, a.port, a.key_path, a.type) == \
        ("node01", "node01", "hpc", 2200, "/k/id", "node01")
    assert (b.user, b.address, b.port) == ("alice", "node02", 2222)
    assert (c.address, c.port) == ("fe80::1", 23)
    assert (d.name, d.address, d.private_address, d.type, d.port) == \
        ("gpu1", "10.0.0.7", "192.168.1.7", "gpu-rack", 2200)


@pytest.mark.parametrize("entry, message", [
    ({"address": "x", "adress": "y"}, "unknown key 'adress'"),
    ({"name": "x"}, "'address' .* is required"),
    ({"address": "x", "port": 0}, "'port' must be a port number"),
    ({"address": "x", "user": 5}, "'user' must be a string"),
    (7, "must be a string 'user@host:port' or a table"),
])
def test_bad_host_entries_are_config_errors(entry, message):
    with pytest.raises(ConfigError, match=message):
        parse_hosts(Config.from_dict({"ssh": {"hosts": [entry]}}))


def test_duplicate_host_names_are_refused():
    with pytest.raises(ConfigError, match="names 'a' twice"):
        parse_hosts(Config.from_dict({"ssh": {"hosts": ["a", {"address": "b", "name": "a"}]}}))


def test_no_hosts_or_no_such_type(tmp_path):
    p = SshProvider(Config(), data_dir=tmp_path)
    with pytest.raises(ProviderError, match="no hosts"):
        p.create(NodeRequest("H", "worker", "x", 1), quiet)
    p = SshProvider(Config.from_dict({"ssh": {"hosts": ["a"]}}), data_dir=tmp_path)
    with pytest.raises(ProviderError, match="no host of type 'x'"):
        p.create(NodeRequest("H", "worker", "x", 1), quiet)


# -- against hosts ------------------------------------------------------------------------------------------------
def host_config(netns_hosts, *, indices=range(4), type_="rack") -> Config:
    return Config.from_dict({
        "ssh": {"user": "root", "key_path": str(netns_hosts.client_key), "connect_timeout": 30.0,
                "ready_timeout": 120.0,  # fail-safes: a loaded machine's handshakes may take seconds
                "hosts": [{"name": netns_hosts.hosts[i].name, "address": netns_hosts.hosts[i].address,
                           "type": type_} for i in indices]},
        "mpi": {"python": sys.executable, "iface": "eth0", "authorized_keys": str(netns_hosts.authorized_keys),
                "remote_dir": str(netns_hosts.workdir / "remote")}})


@pytest.mark.netns
def test_create_claims_hosts_and_terminate_releases(netns_hosts, data_dir):
    provider = SshProvider(host_config(netns_hosts))
    states = []
    nodes = provider.create(NodeRequest("ClusterAAAAAAAA", "worker", "rack", 3),
                            lambda r, i, s: states.append((i, s)))
    assert [n.instance_id for n in nodes] == ["host0", "host1", "host2"]
    assert [n.index for n in nodes] == [0, 1, 2] and all(n.state == model.RUNNING for n in nodes)
    assert {s for _, s in states} == {model.REQUESTED, model.REACHABLE}
    assert provider.describe("ClusterAAAAAAAA") == nodes
    assert provider.discover() == ["ClusterAAAAAAAA"]
    # another cluster gets the one free host, not more
    other = SshProvider(host_config(netns_hosts))
    with pytest.raises(CapacityError, match="held by cluster\\(s\\) ClusterAAAAAAAA"):
        other.create(NodeRequest("ClusterBBBBBBBB", "worker", "rack", 2), quiet)
    created = other.create(NodeRequest("ClusterBBBBBBBB", "worker", "rack", 1), quiet)
    assert [n.instance_id for n in created] == ["host3"]
    # stop/start leave the machines alone
    assert all(n.state == model.STOPPED for n in provider.stop("ClusterAAAAAAAA", nodes))
    assert provider.start("ClusterAAAAAAAA", nodes) == nodes
    provider.terminate("ClusterAAAAAAAA", nodes)
    assert provider.describe("ClusterAAAAAAAA") == [] and provider.leftovers("ClusterAAAAAAAA") == []
    assert provider.discover() == ["ClusterBBBBBBBB"]
    other.terminate("ClusterBBBBBBBB", other.describe("ClusterBBBBBBBB"))
    assert provider.discover() == []


@pytest.mark.netns
def test_dead_host_is_skipped_for_a_live_one(netns_hosts, data_dir):
    netns_hosts.stop_sshd(1)
    try:
        provider = SshProvider(host_config(netns_hosts))
        nodes = provider.create(NodeRequest("ClusterDDDDDDDD", "worker", "rack", 3), quiet)
        assert [n.instance_id for n in nodes] == ["host0", "host2", "host3"]
        assert [n.index for n in nodes] == [0, 1, 2]
        provider.terminate("ClusterDDDDDDDD", nodes)
        with pytest.raises(CapacityError, match="not answering: host1"):
            provider.create(NodeRequest("ClusterEEEEEEEE", "worker", "rack", 4), quiet)
        assert provider.discover() == []  # nothing stays claimed after a failed create
    finally:
        netns_hosts.start_sshd(1)


@pytest.mark.netns
def test_concurrent_claims_never_share_a_host(netns_hosts, data_dir):
    results: dict[str, object] = {}

    def claim(handle):
        try:
            results[handle] = [n.instance_id for n in
                               SshProvider(host_config(netns_hosts)).create(NodeRequest(handle, "worker", "rack", 1),
                                                                            quiet)]
        except CapacityError as exc:
            results[handle] = exc

    threads = [threading.Thread(target=claim, args=(f"Concurrent{i:05d}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r[0] for r in results.values() if isinstance(r, list)]
    assert sorted(won) == ["host0", "host1", "host2", "host3"]
    assert sum(isinstance(r, CapacityError) for r in results.values()) == 2
    provider = SshProvider(host_config(netns_hosts))
    for handle in provider.discover():
        provider.terminate(handle, provider.describe(handle))


@pytest.mark.netns
def test_deploy_run_interrupt_resume_terminate_on_ssh_hosts(netns_hosts, data_dir):
    """The whole lifecycle through the public API on bring-your-own hosts."""
    from ccdsl.executor.deploy import Plan, deploy

    config = host_config(netns_hosts)
    cluster = deploy(Plan("ssh", (NodeRequest("", "worker", "rack", 3),)), config=config)
    try:
        def where(comm):
            import subprocess

            ip = subprocess.run(["ip", "-4", "-o", "addr", "show", "eth0"], capture_output=True, text=True).stdout
            return comm.reduce(comm.rank), comm.gather(ip.split()[3].split("/")[0])

        total, addresses = cluster.run(where)
        assert total == 3 and addresses == [h.address for h in netns_hosts.hosts[:3]]
        first = cluster.workers()
        cluster.interrupt()
        cluster.resume()
        assert set(cluster.workers()).isdisjoint(first)
        assert cluster.run(where)[0] == 3
    finally:
        cluster.terminate()
    assert SshProvider(config).discover() == []
    assert cluster.handle not in netns_hosts.authorized_keys.read_text()



@pytest.mark.netns
def test_forget_releases_the_hosts_for_the_next_deploy(netns_hosts, data_dir):
    """``terminate --forget`` of a cluster on SSH hosts frees its hosts: their claims used to outlive the record,
    so no later deploy could have them and nothing listed who held them (issue 19)."""
    from ccdsl.executor import forget
    from ccdsl.executor.deploy import Plan, deploy

    config = host_config(netns_hosts, indices=range(2))
    plan = Plan("ssh", (NodeRequest("", "worker", "rack", 2),))
    first = deploy(plan, config=config)
    message = forget(first.handle, config=config)
    names = ", ".join(h.name for h in netns_hosts.hosts[:2])
    assert f"its hosts {names} are free for other clusters again" in message, message
    assert SshProvider(config).discover() == []
    second = deploy(plan, config=config)  # every host again: none is still held by the forgotten cluster
    try:
        assert sorted(n.instance_id for n in second.nodes()) == sorted(h.name for h in netns_hosts.hosts[:2])
    finally:
        second.terminate()


@pytest.mark.netns
def test_manager_workers_cluster_on_ssh_hosts(netns_hosts, data_dir):
    """A manager of its own type drives three workers; ranks run on the workers only."""
    from ccdsl.executor.deploy import Plan, Spec, deploy

    hosts = [{"name": h.name, "address": h.address, "type": "mgr" if h.index == 3 else "rack"}
             for h in netns_hosts.hosts]
    config = host_config(netns_hosts).replace(ssh={"hosts": hosts})
    plan = Plan("ssh", (NodeRequest("", "manager", "mgr", 1), NodeRequest("", "worker", "rack", 3)))
    cluster = deploy(Spec("mw", "ManagerWorkers", (plan,)), config=config)
    try:
        def where(comm):
            import subprocess

            ip = subprocess.run(["ip", "-4", "-o", "addr", "show", "eth0"], capture_output=True, text=True).stdout
            return comm.gather(ip.split()[3].split("/")[0])

        assert cluster.run(where) == [h.address for h in netns_hosts.hosts[:3]]
        roles = {n.instance_id: n.role for n in cluster.nodes()}
        assert roles == {"host0": "worker", "host1": "worker", "host2": "worker", "host3": "manager"}
    finally:
        cluster.terminate()
    assert SshProvider(config).discover() == []


LAB_CATALOG = """
[defaults]
provider = "ssh"
region = "lab"
price_per_hour = 0.0

[[instance]]
instance_type = "rack"  # a host class: host_config gives its four hosts type = "rack"
max_nodes = 4
vcpus = 8
memory_gib = 16

[[instance]]
instance_type = "bigmem"
vcpus = 8
memory_gib = 512
"""


@pytest.mark.netns
def test_contract_resolves_to_ssh_hosts_and_runs(netns_hosts, data_dir):
    """Contract text -> resolver over the user's catalog of hosts -> ssh provider -> MPI run -> terminate."""
    import ccdsl
    from ccdsl.executor.deploy import deploy

    (data_dir / "catalogs").mkdir(parents=True)
    (data_dir / "catalogs" / "lab.toml").write_text(LAB_CATALOG)
    text = "lab = @cluster(node_provider => SSH, node_count => 3, node_memory_size => @atmost(64G))"
    contract = ccdsl.parse(text)["lab"]  # bigmem is excluded by the contract: the 3 'rack' hosts are chosen
    cluster = deploy(contract, config=host_config(netns_hosts))
    try:
        assert {n.instance_type for n in cluster.nodes()} == {"rack"}
        assert cluster.run(lambda comm: comm.allreduce(comm.rank + 1)) == 6
    finally:
        cluster.terminate()
    assert SshProvider(host_config(netns_hosts)).discover() == []


# -- host keys of bring-your-own hosts (issue 8, item 5) -----------------------------------------------------------
def _fingerprint_by_ssh_keygen(pub) -> str:
    import subprocess

    return subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout.split()[1]


def _one_host(netns_hosts, tmp_path, **ssh):
    base = host_config(netns_hosts, indices=[0])
    return base.replace(ssh={"user_known_hosts": str(tmp_path / "user_known_hosts"), **ssh})


def _replace_host_key(netns_hosts, i, saved):
    import shutil

    host = netns_hosts.hosts[i]
    shutil.copy(host.host_key, saved)
    shutil.copy(str(host.host_key) + ".pub", str(saved) + ".pub")
    netns_hosts.stop_sshd(i)
    netns_hosts.new_host_key(i)
    netns_hosts.start_sshd(i)


def _restore_host_key(netns_hosts, i, saved):
    import shutil

    host = netns_hosts.hosts[i]
    netns_hosts.stop_sshd(i)
    shutil.copy(saved, host.host_key)
    shutil.copy(str(saved) + ".pub", str(host.host_key) + ".pub")
    netns_hosts.start_sshd(i)


@pytest.mark.netns
def test_a_host_key_that_changed_between_two_clusters_is_refused(netns_hosts, data_dir, tmp_path):
    from ccdsl.errors import HostKeyError
    from ccdsl.executor.deploy import Plan, deploy

    config = _one_host(netns_hosts, tmp_path)
    plan = Plan("ssh", (NodeRequest("", "worker", "rack", 1),))
    old_fp = _fingerprint_by_ssh_keygen(str(netns_hosts.hosts[0].host_key) + ".pub")
    deploy(plan, config=config).terminate()
    saved = tmp_path / "saved_key"
    _replace_host_key(netns_hosts, 0, saved)
    try:
        new_fp = _fingerprint_by_ssh_keygen(str(netns_hosts.hosts[0].host_key) + ".pub")
        with pytest.raises(HostKeyError, match="changed since it was recorded") as info:
            deploy(plan, config=config)
        assert f"({old_fp} -> {new_fp})" in info.value.message  # SHA256 fingerprints, as OpenSSH prints them
    finally:
        _restore_host_key(netns_hosts, 0, saved)
    deploy(plan, config=config).terminate()  # the pinned key is the host's again


@pytest.mark.netns
def test_strict_mode_deploys_with_keys_recorded_beforehand(netns_hosts, data_dir, tmp_path):
    from ccdsl.errors import HostKeyError
    from ccdsl.executor.deploy import Plan, deploy

    config = _one_host(netns_hosts, tmp_path, host_key_policy="strict")
    plan = Plan("ssh", (NodeRequest("", "worker", "rack", 1),))
    with pytest.raises(HostKeyError, match="no host key is recorded") as info:
        deploy(plan, config=config)
    assert "ssh-keyscan" in info.value.hint and "SHA256:" in info.value.hint
    host = netns_hosts.hosts[0]
    kind, blob = Path(str(host.host_key) + ".pub").read_text().split()[:2]
    (tmp_path / "user_known_hosts").write_text(f"{host.address} {kind} {blob}\n")  # what ssh-keyscan would add
    cluster = deploy(plan, config=config)
    try:
        assert cluster.run(lambda comm: comm.allreduce(1)) == 1
    finally:
        cluster.terminate()
    (tmp_path / "user_known_hosts").write_text(f"{host.address} ssh-ed25519 "
                                              "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n")
    with pytest.raises(HostKeyError, match=r"is not the one .*user_known_hosts records"):
        deploy(plan, config=config.replace(ssh={"host_key_policy": "accept-new"}))  # the user's record wins


@pytest.mark.netns
def test_reconnect_with_no_pinned_key_refuses_with_a_hint(netns_hosts, data_dir, tmp_path):
    from ccdsl.errors import HostKeyError
    from ccdsl.executor.deploy import Plan, deploy, reconnect

    config = _one_host(netns_hosts, tmp_path)
    cluster = deploy(Plan("ssh", (NodeRequest("", "worker", "rack", 1),)), config=config)
    try:
        for pinned in (data_dir / "known_hosts").iterdir():
            pinned.unlink()
        with pytest.raises(HostKeyError, match="no host key is recorded") as info:
            reconnect(cluster.handle, config=config)
        assert "SHA256:" in info.value.message and "add the line" in info.value.hint
    finally:
        cluster.terminate()
