"""What nodes send back is checked before it is used (issue 22 item 8): a python that prints nothing for the probe,
a ``.ccdsl-tree.json`` that is not an object, an error record whose rank is ``Infinity`` or 5,000 ``[`` deep.
Each is an ExecutionError naming where (or, for the manifest, no record: files are compared by size and time), never an
IndexError, AttributeError, OverflowError or RecursionError."""

from __future__ import annotations

import json

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import ExecutionError
from ccdsl.executor.config import Config
from ccdsl.executor.mpi import Launcher
from fixtures_executor import data_dir
from fixtures_netns import netns_hosts
from test_mpi_local import local_nodes
from test_workdir import make_project, node_copy, ssh_deploy, ssh_settings

pytest.importorskip("mpi4py")
__all__ = ["data_dir", "netns_hosts"]
MANIFEST = ".ccdsl-tree.json"


def test_a_manifest_that_is_not_an_object_is_no_record_local(data_dir, tmp_path, capsys):
    proj = make_project(tmp_path / "proj")
    contract = tmp_path / "c.ccc"
    contract.write_text("c = @cluster(node_provider => Local, node_count => 1)\n")
    assert main(["deploy", str(contract), "--workdir", str(proj), "--quiet"]) == 0
    handle = capsys.readouterr().out.strip()
    try:
        for text in ("[]", "[" * 5000, "3"):
            (data_dir / "local" / handle / "work" / MANIFEST).write_text(text)
            assert main(["sync", handle, "--json"]) == 0  # no record: files are compared by size and time
            out = capsys.readouterr()
            assert "Traceback" not in out.err and len(json.loads(out.out)) == 1
    finally:
        assert main(["terminate", handle]) == 0


def _forger(record: str):
    def forge(comm):
        import base64
        import os
        import sys

        sys.stderr.write("\x1eccdsl-error:" + base64.b64encode(record.encode()).decode() + "\n")
        sys.stderr.flush()
        os._exit(3)
    return forge


@pytest.mark.parametrize("rank", ["Infinity", "-1", "1e300", "[" * 5000])
def test_a_damaged_error_record_is_an_execution_error(rank):
    record = '{"rank": ' + rank + ', "type": "X", "message": "m", "traceback": ""}'
    with pytest.raises(ExecutionError, match="error record from the job on this machine is damaged"):
        Launcher(local_nodes(1), mode="local").run_function(_forger(record), stream=None)


@pytest.mark.netns
def test_a_manifest_that_is_not_an_object_is_no_record_ssh(netns_hosts, data_dir, tmp_path):
    proj = make_project(tmp_path / "proj")
    c = ssh_deploy(netns_hosts, workdir=proj)
    try:
        for i in range(3):
            (node_copy(netns_hosts, i, c.handle) / MANIFEST).write_text("[]")
        assert len(c.sync(str(proj))) == 3
    finally:
        c.terminate()


@pytest.mark.netns
def test_a_python_that_does_not_answer_the_probe_is_named(netns_hosts, data_dir):
    from ccdsl.executor.deploy import Plan, Spec, deploy
    from ccdsl.executor.model import NodeRequest

    settings = ssh_settings(netns_hosts)
    settings["mpi"]["python"] = "true"
    spec = Spec("p", "PeerWorkers", (Plan("ssh", (NodeRequest("", "worker", "rack", 1),)),))
    with pytest.raises(ExecutionError, match=r"'true' did not answer ccdsl's probe \(it printed nothing\)") as info:
        deploy(spec, config=Config.from_dict(settings))
    assert netns_hosts.hosts[0].name in info.value.message or netns_hosts.hosts[0].address in info.value.message
    assert ccdsl.clusters() == []


@pytest.mark.netns
def test_a_manager_relay_report_of_any_shape_is_an_error_naming_the_nodes(netns_hosts, data_dir, tmp_path):
    """The manager's copy to the workers reports one JSON line per worker; a manager that prints anything else (no
    report, a list, 5,000 ``[``, counts that are no counts, a worker twice, hosts that are no workers, terminal
    escapes) fails the sync with an ExecutionError naming the manager and the workers concerned."""
    import dataclasses

    from ccdsl.executor import mpi, ssh, workdir
    from ccdsl.executor.cluster import known_hosts_path, split_roles
    from test_workdir import ssh_config

    proj = make_project(tmp_path / "proj")
    c = ssh_deploy(netns_hosts, manager=True, workdir=proj)
    try:
        workers, manager = split_roles(c.nodes())
        assert manager is not None
        first = workers[0].private_address or workers[0].address

        def report(host, files=1, **kw):
            return json.dumps({"host": host, "files": files, "bytes": 10, "deleted": 0, **kw})

        others = "\n".join(report(f"10.9.9.{i}") for i in range(len(workers)))
        cases = {
            "": "no report",
            "[]\n3\n\"x\"": "no report",
            "[" * 5000: "no report",
            "\n".join([report(first)] * len(workers)): "a second report",
            others: "a report for a host that is no worker",
            report(first, 1e400): "a damaged report",
            report(first, True): "a damaged report",
            report(first, -1): "a damaged report",
            report("\x1b[2J", 1): "a report for a host that is no worker",
            json.dumps({"host": first, "error": "disk full\x1b[2J"}): "disk full",
        }
        printed = tmp_path / "printed"
        fake = tmp_path / "manager-python"
        fake.write_text(f"#!/bin/sh\ncat {printed}\n")
        fake.chmod(0o755)
        forged = dataclasses.replace(manager, extra={**manager.extra, "python": str(fake)})
        _, options = mpi.options_from_config(ssh_config(netns_hosts, manager=True),
                                             known_hosts=known_hosts_path(c.handle))
        with ssh.Connections(options) as pool:
            for text, expected in cases.items():
                printed.write_text(text)
                with pytest.raises(ExecutionError, match=expected) as info:
                    workdir.relay(pool.get(manager), forged, workers, workdir.Counter(None), 60)
                message = info.value.message
                assert message.startswith(f"the manager {ssh.describe(manager)} could not copy"), text[:40]
                assert "\x1b" not in message and len(message) < 2000
                if expected == "no report":
                    assert all(ssh.describe(w) in message for w in workers)
            printed.write_text("\n".join(report(w.private_address or w.address) for w in workers))
            assert len(workdir.relay(pool.get(manager), forged, workers, workdir.Counter(None), 60)) == len(workers)
    finally:
        c.terminate()
