"""Autostop and the spending cap on real parts: the watchdog runs on SSH hosts in network namespaces (the EC2
power-off command replaced by a recorder), EC2 is moto's server, the local provider is this machine.

Periods are seconds here (``[autostop] check_interval`` 1 s, its least, ``autostop="3s"``) so the tests stay quick.  The
watchdog decides by itself on the host; the tests only wait for what it did to show up in ``ccdsl.clusters()``
(reconciliation), as a user would.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import ConfigError
from ccdsl.executor import cost, guard
from ccdsl.executor import state as st
from ccdsl.executor.config import Config
from ccdsl.executor.deploy import Plan
from ccdsl.executor.model import NodeRequest
from fixtures_executor import aws_settings, data_dir, ec2, ec2_keys_on_hosts, hooks, tagged
from fixtures_netns import netns_hosts

pytest.importorskip("mpi4py")

INTERVAL = 1.0  # [autostop] check_interval is 1..86,400 s (issue 22 item 3)
TWO_NODES = "two = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)"


def wait_for(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.3)


def status_of(handle: str, config: Config) -> st.ClusterRecord:
    ccdsl.clusters(config=config)  # reconciliation, as 'ccdsl clusters' does
    record = st.State().get_cluster(handle)
    assert record is not None
    return record


def interrupted_at(handle: str) -> float:
    """When the cluster last entered 'interrupted' (the state database's status log)."""
    return max(change.at for change in st.State().status_history(handle) if change.status == "interrupted")


def sleeper(comm, seconds):
    import time

    time.sleep(seconds)
    return comm.Get_size()


def watchdogs_of(handle: str) -> list[int]:
    """Live watchdog processes of the cluster (namespaces share the pid space, so /proc shows every host's)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "watchdog.py run" in cmd and f"/{handle}/" in cmd:
                found.append(int(name))
    return found


# -- settings ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("1h30m", 5400), ("90s", 90), ("2d", 172800),
                                           ("15", 900), (10, 600), ("0.5h", 1800)])
def test_durations(text, seconds):
    assert guard.parse_duration(text) == seconds


@pytest.mark.parametrize("kwargs, message", [
    ({"autostop": "soon"}, "duration like 30m"), ({"autostop": "0m"}, "positive"),
    ({"autostop": "30m", "max_cost": -1}, "positive"), ({"down": True}, "--down needs"),
    ({"max_cost": "lots"}, "number of US dollars")])
def test_bad_settings_fail_before_anything_is_created(data_dir, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1), **kwargs)
    assert st.State().list_clusters(live_only=False) == []


def test_cli_rejects_a_bad_period_with_a_message(data_dir, tmp_path, capsys):
    f = tmp_path / "c.ccc"
    f.write_text('c = @cluster(node_provider => Local, node_count => 1)\n')
    assert main(["deploy", str(f), "--autostop", "whenever"]) == ConfigError("").exit_code
    assert "duration like 30m" in capsys.readouterr().err
    assert st.State().list_clusters(live_only=False) == []


def test_cli_deploy_with_autostop_then_change_and_turn_off(data_dir, tmp_path, capsys):
    f = tmp_path / "c.ccc"
    f.write_text('c = @cluster(node_provider => Local, node_count => 1)\n')
    assert main(["deploy", str(f), "--quiet", "--autostop", "30m", "--max-cost", "5"]) == 0
    handle = capsys.readouterr().out.strip()
    assert len(watchdogs_of(handle)) == 1
    assert main(["clusters", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["autostop"] == {"idle": "30m", "idle_seconds": 1800.0, "down": False, "max_cost": 5.0}
    assert row["max_cost"] == 5.0 and row["started_at"] and row["cost_so_far"] == 0.0
    assert main(["autostop", handle, "1h", "--down"]) == 0
    assert capsys.readouterr().out.strip() == f"{handle}: autostop terminates after 1h idle"
    wait_for(lambda: len(watchdogs_of(handle)) == 1, 120, "one watchdog: replaced, not added")
    assert main(["autostop", handle, "off"]) == 0
    assert capsys.readouterr().out.strip() == f"{handle}: autostop off"
    wait_for(lambda: not watchdogs_of(handle), 120, "the watchdog to stop")
    assert main(["terminate", handle]) == 0


# -- local provider -------------------------------------------------------------------------------------------------
def test_local_busy_then_idle_interrupts(data_dir):
    config = Config.from_dict({"autostop": {"check_interval": INTERVAL}})
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2), config=config, autostop="5s")
    try:
        assert c.run(sleeper, 11) == 2  # more than twice the period: the run keeps it alive
        ended = time.time()
        # the watchdog interrupts the cluster, then records why (two updates: wait for both)
        wait_for(lambda: c.status == "interrupted" and c.record.note, 120,
                 "the local watchdog to interrupt the cluster and say why")
        assert interrupted_at(c.handle) >= ended  # not during the run (an order of events, not a duration)
        assert c.record.note.startswith("autostopped: idle for 5s")
        wait_for(lambda: not watchdogs_of(c.handle), 120, "the watchdog to exit")
    finally:
        if c.status != "terminated":
            ccdsl.terminate(c)


def test_local_engine_task_longer_than_the_period_keeps_it_alive(data_dir):
    """An ipyparallel engine task counts as activity for as long as it runs (the engines' '<pid>.busy' flag)."""
    pytest.importorskip("ipyparallel")
    config = Config.from_dict({"autostop": {"check_interval": INTERVAL}})
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2), config=config, autostop="3s")
    try:
        rc = c.engines()
        task = rc[:].apply_async(time.sleep, 7)  # more than twice the period
        task.get(timeout=120)
        ended = time.time()
        # the watchdog's stop records 'interrupted', then the note, then lets the record go: wait for all three, or
        # the terminate below meets a cluster "being interrupted by" it (seen in a loaded full run)
        wait_for(lambda: c.status == "interrupted" and c.record.note and not st.owner_alive(c.record), 120,
                 "autostop after the engine task")
        assert interrupted_at(c.handle) >= ended  # not during the task (an order of events, not a duration)
        wait_for(lambda: not watchdogs_of(c.handle), 120, "the watchdog to exit")
    finally:
        if c.status != "terminated":
            ccdsl.terminate(c)


def test_warning_at_80_percent_in_clusters_and_at_the_next_run(data_dir, capsys, tmp_path):
    plan = Plan("local", (NodeRequest("", "worker", "localhost", 1, options={"price_per_node_hour": 36.0}),))
    c = ccdsl.deploy(plan, max_cost=10.0)  # $0.01 per second: the cap is 1000 s away
    try:
        s = st.State()
        assert cost.estimate(s, c.record).warning is None
        # 850 s of running at $36/h is $8.50: 85 % of the cap (moving the recorded start is the test's clock)
        db = s._connect()
        db.execute("UPDATE status_log SET at = at - 850 WHERE handle = ?", (c.handle,))
        db.close()
        (info,) = ccdsl.clusters()
        assert info.to_dict()["max_cost"] == 10.0
        assert "85%" in info.to_dict()["cost_warning"] and "WARNING" in info.describe()
        script = tmp_path / "hello.py"
        script.write_text("print('hello')\n")
        assert main(["run", c.handle, "--", "python", str(script)]) == 0
        out = capsys.readouterr()
        assert "hello" in out.out and "85%" in out.err and "cap" in out.err
    finally:
        ccdsl.terminate(c)


# -- SSH hosts ------------------------------------------------------------------------------------------------------
def host_config(netns_hosts, tmp_path, **autostop) -> Config:
    return Config.from_dict({
        "ssh": {"user": "root", "key_path": str(netns_hosts.client_key), "connect_timeout": 30.0,
                "ready_timeout": 120.0,  # fail-safes: a loaded machine's handshakes may take seconds
                "hosts": [{"name": h.name, "address": h.address, "type": "rack"} for h in netns_hosts.hosts[:2]]},
        "mpi": {"python": sys.executable, "iface": "eth0", "authorized_keys": str(netns_hosts.authorized_keys),
                "remote_dir": str(tmp_path / "remote")},
        "autostop": {"check_interval": INTERVAL, **autostop}})


def ssh_plan(price: float | None = None) -> Plan:
    options = {"price_per_node_hour": price, "price_source": "test", "price_date": "2026-11-26"} if price else {}
    return Plan("ssh", (NodeRequest("", "worker", "rack", 2, options=options),))


@pytest.mark.netns
def test_ssh_long_run_keeps_it_alive_then_idle_ends_our_processes(netns_hosts, data_dir, tmp_path):
    from ccdsl.executor.providers.ssh import SshProvider

    config = host_config(netns_hosts, tmp_path)
    c = ccdsl.deploy(ssh_plan(), config=config, autostop="5s")
    try:
        assert len(watchdogs_of(c.handle)) == 1
        assert c.run(sleeper, 11) == 2  # more than twice the period, busy all along
        assert status_of(c.handle, config).status == "running"
        record = wait_for(lambda: (r := status_of(c.handle, config)).status == "interrupted" and r, 120,
                          "the cluster to be autostopped")
        assert "autostopped: idle for 5s" in record.note and "not ours to stop" in record.note
        wait_for(lambda: not watchdogs_of(c.handle), 120, "the watchdog to exit after acting")
        for i in (0, 1):
            netns_hosts.wait_listening(i)  # the hosts themselves were left running
        assert SshProvider(config).leftovers(c.handle) == ["host0", "host1"]  # still held for a resume
        ccdsl.resume(c, config=config)  # the claim was kept: same hosts, and the watchdog watches again
        assert c.status == "running" and len(watchdogs_of(c.handle)) == 1
        assert c.run(sleeper, 0) == 2
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert not watchdogs_of(c.handle)


@pytest.mark.netns
def test_ssh_interactive_session_on_a_worker_keeps_it_alive(netns_hosts, data_dir, tmp_path):
    import paramiko

    config = host_config(netns_hosts, tmp_path)
    c = ccdsl.deploy(ssh_plan(), config=config, autostop="4s")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    try:
        # node 1 is not where the watchdog runs: it asks the other nodes before acting
        client.connect(netns_hosts.hosts[1].address, username="root", key_filename=str(netns_hosts.client_key),
                       look_for_keys=False, allow_agent=False)
        shell = client.invoke_shell()  # a pseudo-terminal: what 'ssh host' gives a person
        time.sleep(9)
        assert status_of(c.handle, config).status == "running"
        shell.close()
        client.close()
        wait_for(lambda: status_of(c.handle, config).status == "interrupted", 120, "autostop after the session")
    finally:
        client.close()
        ccdsl.terminate(c.handle, config=config)


@pytest.mark.netns
def test_ssh_cap_reached_with_down_releases_the_hosts(netns_hosts, data_dir, tmp_path):
    from ccdsl.executor.providers.ssh import SshProvider

    config = host_config(netns_hosts, tmp_path)
    c = ccdsl.deploy(ssh_plan(price=3600.0), config=config, max_cost=6.0, down=True)  # $2/s: cap in ~3 s
    record = wait_for(lambda: (r := status_of(c.handle, config)).status == "terminated" and r, 120,
                      "the cap to terminate the cluster")
    assert "spending cap reached" in record.note and "released" in record.note
    assert SshProvider(config).leftovers(c.handle) == []  # the claims are released
    assert not (tmp_path / "remote" / c.handle).exists()  # and ccdsl's files are gone from the hosts
    assert c.handle not in netns_hosts.authorized_keys.read_text()
    wait_for(lambda: not watchdogs_of(c.handle), 120, "the watchdog to exit after acting")
    report = ccdsl.cost_report()
    (row,) = [i for i in report if i.handle == c.handle]
    assert row.cost.cost_so_far >= 6.0 * 0.9  # it was stopped near the cap (the client's clock, not the node's)


@pytest.mark.netns
def test_forget_of_an_ssh_cluster_ends_the_watchdog_on_its_hosts(netns_hosts, data_dir, tmp_path):
    """``terminate --forget`` ends the watchdog for every provider that can be reached (issue 19 B5): on SSH hosts
    it must not go on watching (and, idle, acting on) a cluster nothing here follows any more."""
    from ccdsl.executor import forget

    config = host_config(netns_hosts, tmp_path)
    c = ccdsl.deploy(ssh_plan(), config=config, autostop="1h")
    assert len(watchdogs_of(c.handle)) == 1
    message = forget(c.handle, config=config)
    assert message.endswith("; its autostop watchdog on its hosts was ended"), message
    wait_for(lambda: not watchdogs_of(c.handle), 120, "the watchdog to exit")  # SIGTERM sent: it ends
    assert st.State().get_cluster(c.handle) is None


@pytest.mark.netns
def test_watchdog_survives_the_users_ssh_connection_dropping(netns_hosts, data_dir, tmp_path):
    config = host_config(netns_hosts, tmp_path)
    c = ccdsl.deploy(ssh_plan(), config=config, autostop="4s")
    try:
        (pid,) = watchdogs_of(c.handle)
        # every sshd process of node 0's namespace dies: the user's connections and their sessions drop
        import subprocess

        pids = subprocess.run(["ip", "netns", "pids", netns_hosts.hosts[0].netns], capture_output=True,
                              text=True).stdout.split()
        for p in pids:
            try:
                if Path(f"/proc/{p}/comm").read_text().strip() == "sshd":
                    os.kill(int(p), 9)
            except OSError:
                pass
        netns_hosts.hosts[0].proc = None
        time.sleep(1.0)
        assert watchdogs_of(c.handle) == [pid]  # still watching
        netns_hosts.start_sshd(0)
        record = wait_for(lambda: (r := status_of(c.handle, config)).status == "interrupted" and r, 120,
                          "the surviving watchdog to stop the cluster")
        assert "idle for 4s" in record.note
    finally:
        netns_hosts.start_sshd(0)
        ccdsl.terminate(c.handle, config=config)


# -- EC2 (moto) with the instances mapped to the SSH hosts ----------------------------------------------------------
@pytest.fixture()
def aws_config(aws_env, data_dir, netns_hosts, tmp_path, ec2_keys_on_hosts):
    """EC2 on moto; the power-off command is a recorder that writes the address of the host it ran on."""
    recorder = tmp_path / "power-off"
    recorder.write_text(f"#!/bin/sh\nip -4 -o addr show eth0 | awk '{{print $4}}' | cut -d/ -f1 >> "
                        f"{tmp_path / 'powered-off'}\n")
    recorder.chmod(0o755)
    addresses = {str(i): h.address for i, h in enumerate(netns_hosts.hosts)}
    return Config.from_dict({
        "aws": aws_settings(aws_env, user=netns_hosts.user, address_map=addresses),
        "ssh": {"ready_timeout": 60.0, "connect_timeout": 5.0},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(tmp_path / "remote"),
                "authorized_keys": str(netns_hosts.authorized_keys)},
        "autostop": {"check_interval": INTERVAL, "shutdown_command": str(recorder),
                     "boot_dir": str(tmp_path / "per-boot")}})  # cloud-init's folder: the hosts share this machine's


def shutdown_behaviour(ec2, ids):
    return {ec2.describe_instance_attribute(InstanceId=i, Attribute="instanceInitiatedShutdownBehavior")
            ["InstanceInitiatedShutdownBehavior"]["Value"] for i in ids}


@pytest.mark.netns
def test_ec2_idle_cluster_powers_off_every_node_and_shows_autostopped(aws_config, ec2, netns_hosts, hooks, tmp_path):
    runs = []
    hooks.append(("before-parameter-build.ec2.RunInstances", lambda params, **_: runs.append(params)))
    c = ccdsl.deploy(ccdsl.parse(TWO_NODES)["two"], config=aws_config, autostop="3s")
    try:
        assert [r["InstanceInitiatedShutdownBehavior"] for r in runs] == ["stop"]  # set at launch
        ids = [n.instance_id for n in c.nodes()]
        assert shutdown_behaviour(ec2, ids) == {"stop"}
        (info,) = ccdsl.clusters(config=aws_config)
        assert info.to_dict()["autostop"]["idle"] == "3s" and info.to_dict()["price_per_hour"] > 0
        record_file = tmp_path / "powered-off"
        lines = wait_for(lambda: record_file.exists() and len(record_file.read_text().split()) >= 2
                         and record_file.read_text().split(), 120, "the watchdog to power off both nodes")
        assert sorted(lines) == sorted(h.address for h in netns_hosts.hosts[:2])  # each node, once
        # EC2 does what the shutdown behaviour says; moto cannot run the command, so the test plays EC2's part
        ec2.stop_instances(InstanceIds=ids)
        record = status_of(c.handle, aws_config)
        assert record.status == "interrupted" and record.note.startswith("autostopped")
        spent = cost.estimate(st.State(), record).cost_so_far
        assert cost.estimate(st.State(), record, now=time.time() + 3600).cost_so_far == spent  # stopped: no cost
    finally:
        ccdsl.terminate(c.handle, config=aws_config)
    assert tagged(ec2, c.handle) == {}


@pytest.mark.netns
def test_ec2_autostop_down_set_later_and_reconciled_after_out_of_band_termination(aws_config, ec2, capsys):
    c = ccdsl.deploy(ccdsl.parse(TWO_NODES)["two"], config=aws_config.replace(autostop={"check_interval": 60.0}))
    try:
        ids = [n.instance_id for n in c.nodes()]
        assert shutdown_behaviour(ec2, ids) == {"stop"}  # EC2's default: nothing was asked at deploy
        ccdsl.autostop(c.handle, "1h", down=True, config=aws_config)
        assert shutdown_behaviour(ec2, ids) == {"terminate"}  # changed from here: the nodes hold no credentials
        ccdsl.autostop(c.handle, "off", config=aws_config)
        assert shutdown_behaviour(ec2, ids) == {"stop"} and not watchdogs_of(c.handle)
        ccdsl.autostop(c.handle, "1h", down=True, config=aws_config)
        assert st.State().get_cluster(c.handle).settings["autostop"]["down"] is True
        ec2.terminate_instances(InstanceIds=ids)  # what the watchdog's shutdown does with 'terminate'
        record = status_of(c.handle, aws_config)
        assert record.status == "terminated" and "autostopped and terminated" in record.note
        assert tagged(ec2, c.handle) == {}  # the security group and key pair went too
        assert main(["cost-report", "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)["clusters"]
        assert row["status"] == "terminated" and row["price_per_hour"] > 0
    finally:
        if st.State().get_cluster(c.handle).status != "terminated":
            ccdsl.terminate(c.handle, config=aws_config)
