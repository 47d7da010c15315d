"""Autostop survives a restart of its node (issue 21 item 1, issue 22 item 3): EC2 starts a stopped spot node by
itself when capacity returns, and nothing from this machine re-arms the watchdog then.  Arming writes a cloud-init
per-boot script that starts it again (same token, fresh idle clock, the money spent carried); disarming deletes it;
``clusters`` warns when the watchdog of a running cloud or SSH cluster has stopped checking.

EC2 is moto's server with the instances mapped to SSH hosts in network namespaces (as tests/test_autostop.py); the
test plays cloud-init's part by running the script in the node's namespace, as root, as cloud-init does.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

import ccdsl
from ccdsl.executor import guard
from ccdsl.executor import state as st
from fixtures_executor import data_dir, ec2, ec2_keys_on_hosts, hooks, tagged
from fixtures_netns import netns_hosts
from test_autostop import TWO_NODES, aws_config, wait_for, watchdogs_of

pytest.importorskip("mpi4py")
__all__ = ["aws_config", "data_dir", "ec2", "ec2_keys_on_hosts", "hooks", "netns_hosts"]


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    while True:  # delivered: wait for the process to end (an event, not a duration)
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return
        except OSError:
            return
        os.sched_yield()


def _status(d: Path) -> dict:
    try:
        return json.loads((d / "autostop.status").read_text())
    except (OSError, ValueError):
        return {}


@pytest.mark.netns
def test_a_restarted_node_gets_its_watchdog_back_and_a_dead_one_is_warned_about(aws_config, ec2, netns_hosts,
                                                                               tmp_path, caplog):
    config = aws_config
    boot_dir = Path(config.autostop.boot_dir)  # cloud-init's /var/lib/cloud/scripts/per-boot on a real node
    assert boot_dir.is_relative_to(tmp_path)
    c = ccdsl.deploy(ccdsl.parse(TWO_NODES)["two"], config=config, autostop="1h")
    try:
        token = c.record.settings["autostop_token"]
        home = next(n for n in c.nodes() if n.index == 0)
        d = Path(home.extra["ccdsl_dir"])  # the hosts share this file system
        script = boot_dir / guard.boot_name(c.handle)
        assert script.exists() and os.access(script, os.X_OK)
        (pid,) = watchdogs_of(c.handle)
        wait_for(lambda: _status(d).get("pid") == pid, 120, "the watchdog's first check")
        # the node stops and starts again: its watchdog is gone; 12.5 USD were spent before (the test's books)
        _kill(pid)
        (d / "autostop.status").write_text(json.dumps({**_status(d), "spent": 12.5}))
        netns = netns_hosts.hosts[0].netns  # worker 0: the address map's "0"
        subprocess.run(["ip", "netns", "exec", netns, "sh", str(script)], check=True, timeout=120)
        (again,) = wait_for(lambda: watchdogs_of(c.handle), 120, "the watchdog started at boot")
        assert again != pid
        status = wait_for(lambda: (s := _status(d)).get("pid") == again and s, 120, "the new watchdog's check")
        assert status["token"] == token == json.loads((d / "autostop.json").read_text())["token"]
        assert status["spent"] >= 12.5  # carried, not started from the deploy's estimate again
        assert "restarted at boot with $12.5000 spent" in (d / "watchdog.log").read_text()
        assert st.State().get_cluster(c.handle).status == "running"

        # a watchdog that died and was not restarted: 'clusters' says so (its last check 10 intervals ago)
        caplog.set_level(logging.WARNING, logger="ccdsl.executor")
        ccdsl.clusters(config=config)
        assert "watchdog last checked" not in caplog.text  # it checks: nothing to say
        _kill(again)
        armed = json.loads((d / "autostop.json").read_text())
        (d / "autostop.json").write_text(json.dumps({**armed, "armed_at": time.time() - 10}))
        (d / "autostop.status").write_text(json.dumps({**_status(d), "checked_at": time.time() - 10}))
        ccdsl.clusters(config=config)
        assert f"{c.handle}: its autostop watchdog last checked" in caplog.text
        assert "will not act" in caplog.text

        ccdsl.autostop(c.handle, "off", config=config)  # disarming deletes the boot script
        assert not script.exists()
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


@pytest.mark.netns
def test_a_shutdown_command_that_fails_once_is_run_again(aws_config, ec2, netns_hosts, tmp_path):
    """Issue 21 item 10: the watchdog ran the shutdown command once per node; one that failed (sudo, a held lock)
    left that node running, paid and unguarded.  It is tried again until it works or the node stops answering."""
    flags = tmp_path / "flags"
    flags.mkdir()
    powered = tmp_path / "powered-off"
    command = tmp_path / "flaky-power-off"
    command.write_text("#!/bin/sh\n"
                       "a=$(ip -4 -o addr show eth0 | awk '{print $4}' | cut -d/ -f1)\n"
                       f'if [ ! -e {flags}/"$a" ]; then touch {flags}/"$a"; echo "sudo: busy" >&2; exit 1; fi\n'
                       f'echo "$a" >> {powered}\n')
    command.chmod(0o755)
    config = aws_config.replace(autostop={"shutdown_command": str(command)})
    c = ccdsl.deploy(ccdsl.parse(TWO_NODES)["two"], config=config, autostop="3s")
    try:
        both = sorted(h.address for h in netns_hosts.hosts[:2])
        lines = wait_for(lambda: powered.exists() and len(powered.read_text().split()) >= 2
                         and powered.read_text().split(), 120, "both nodes powered off after a failed attempt each")
        assert sorted(lines) == both  # each once: a command that worked is not run again
        assert sorted(p.name for p in flags.iterdir()) == both  # and each failed once first
        home = next(n for n in c.nodes() if n.index == 0)
        log = (Path(home.extra["ccdsl_dir"]) / "watchdog.log").read_text()
        assert log.count("failed; trying again") == 2, log
    finally:
        ccdsl.terminate(c.handle, config=config)


@pytest.mark.netns
@pytest.mark.parametrize("change", ["off", "2h"])
def test_autostop_changed_while_stopped_replaces_the_old_arming_at_resume(aws_config, ec2, netns_hosts, change):
    """Stopped nodes cannot be reached: ``ccdsl autostop H off`` (or a new period) while the cluster is interrupted
    left the old boot script and config on them, so at the next boot the old watchdog watched again with the old
    settings -- autostopping a cluster whose user had turned autostop off.  The record now says the nodes' arming is
    stale, and resume removes it (off) or replaces it (a new period)."""
    config = aws_config
    boot_dir = Path(config.autostop.boot_dir)
    c = ccdsl.deploy(ccdsl.parse(TWO_NODES)["two"], config=config, autostop="1h")
    try:
        d = Path(next(n for n in c.nodes() if n.index == 0).extra["ccdsl_dir"])
        script = boot_dir / guard.boot_name(c.handle)
        (pid,) = watchdogs_of(c.handle)
        ccdsl.interrupt(c.handle, config=config)
        _kill(pid)  # the node stopped: its watchdog ended with it (the netns host itself keeps running)
        ccdsl.autostop(c.handle, change, config=config)
        assert st.State().get_cluster(c.handle).settings[guard.STALE] is True
        assert script.exists()  # the node could not be reached
        # the node starts: cloud-init runs the boot script, which starts the watchdog with the config it still has
        subprocess.run(["ip", "netns", "exec", netns_hosts.hosts[0].netns, "sh", str(script)], check=True,
                       timeout=120)
        (old,) = wait_for(lambda: watchdogs_of(c.handle), 120, "the old watchdog started at boot")
        assert json.loads((d / "autostop.json").read_text())["idle"] == "1h"

        ccdsl.resume(c.handle, config=config)
        record = st.State().get_cluster(c.handle)
        assert record.status == "running" and not record.settings.get(guard.STALE) and not record.note
        if change == "off":
            assert not script.exists() and not (d / "autostop.json").exists()
            wait_for(lambda: not watchdogs_of(c.handle), 120, "the old watchdog to end")
        else:
            armed = json.loads((d / "autostop.json").read_text())
            assert armed["idle"] == "2h" and armed["token"] == record.settings["autostop_token"]
            assert script.exists()  # the boot script starts the new config's watchdog
            (new,) = wait_for(lambda: [p for p in watchdogs_of(c.handle) if p != old], 120, "the new watchdog")
            wait_for(lambda: old not in watchdogs_of(c.handle), 120, "the old watchdog to end")
            status = wait_for(lambda: (s := _status(d)).get("pid") == new and s, 120, "the new watchdog's check")
            assert status["token"] == armed["token"]
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


@pytest.mark.netns
def test_stale_nodes_started_by_ec2_are_noted_and_reconnect_disarms_them(aws_config, ec2, netns_hosts):
    """EC2 starts a stopped spot node by itself when capacity returns: nothing on this machine runs then, so the
    old boot script's watchdog guards with the settings of before the change.  ``clusters`` says so and how to fix
    it; ``reconnect`` then removes it (autostop is off)."""
    config = aws_config
    c = ccdsl.deploy(ccdsl.parse(TWO_NODES)["two"], config=config, autostop="1h")
    try:
        script = Path(config.autostop.boot_dir) / guard.boot_name(c.handle)
        (pid,) = watchdogs_of(c.handle)
        ccdsl.interrupt(c.handle, config=config)
        _kill(pid)
        ccdsl.autostop(c.handle, "off", config=config)
        ec2.start_instances(InstanceIds=[n.instance_id for n in c.nodes()])  # the test plays EC2's part
        subprocess.run(["ip", "netns", "exec", netns_hosts.hosts[0].netns, "sh", str(script)], check=True,
                       timeout=120)  # and cloud-init's
        wait_for(lambda: watchdogs_of(c.handle), 120, "the old watchdog started at boot")
        ccdsl.clusters(config=config)
        record = st.State().get_cluster(c.handle)
        assert record.status == "running" and f"'ccdsl reconnect {c.handle}' applies the current" in record.note

        ccdsl.reconnect(c.handle, config=config)
        record = st.State().get_cluster(c.handle)
        assert not script.exists() and not record.settings.get(guard.STALE)
        assert "reconnect" not in record.note and "started again outside ccdsl" in record.note
        wait_for(lambda: not watchdogs_of(c.handle), 120, "the old watchdog to end")
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}
