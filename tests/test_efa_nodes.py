"""EFA on the nodes (issue 23 item 1, software): the deploy's ``fi_info -p efa`` check and the launcher's Open MPI
``mpirun`` command line, run for real over SSH against hosts in network namespaces.

The node software is fake -- this machine has no EFA device, no libfabric and no Open MPI -- but everything around
it is real: paramiko to a real sshd, the check's shell command on the node, the cluster's ssh wrapper.  Each host
sees its own ``netns_hosts.private`` folder, so the fake ``fi_info`` there prints what that host's listing says: a
realistic listing (libfabric's format, one ``-rdm`` and one ``-dgrm`` domain per device), or libfabric's answer
without EFA."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ccdsl.errors import DeployError
from ccdsl.executor import fabric_check, mpi, nodedir, ssh
from ccdsl.executor.program import parse
from fixtures_executor import data_dir  # the fixture
from fixtures_netns import netns_hosts  # the fixture

pytest.importorskip("paramiko")
pytestmark = pytest.mark.netns

NO_EFA = "fi_getinfo: -61 (No data available)\n"  # what fi_info -p efa prints (exit 1) on a node without EFA


def listing(devices: list[str]) -> str:
    """``fi_info -p efa`` as libfabric prints it: two entries (RDM and datagram endpoints) per device."""
    return "".join(f"provider: efa\n    fabric: efa\n    domain: {d}-{kind}\n    version: 122.0\n"
                   f"    type: FI_EP_{kind.upper()}\n    protocol: FI_PROTO_EFA\n"
                   for d in devices for kind in ("rdm", "dgrm"))


@pytest.fixture()
def fake_fi_info(netns_hosts):
    """``say(i, text, code)``: host i's ``fi_info`` prints ``text`` and exits ``code``.  Returns the folder the
    nodes find it in; removed afterwards."""
    made: list[Path] = []

    def say(i: int, text: str, code: int = 0) -> None:
        folder = netns_hosts.private_of(i)
        (folder / "fi_info.out").write_text(text)
        bin_dir = folder / "efa-bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / "fi_info"
        here = netns_hosts.private  # the path every host sees its own private folder at
        script.write_text(f"#!/bin/sh\n[ \"$*\" = '-p efa' ] || exit 2\ncat {here}/fi_info.out\nexit {code}\n")
        script.chmod(0o755)
        made.append(folder)

    yield say, str(netns_hosts.private / "efa-bin")
    for folder in made:
        shutil.rmtree(folder / "efa-bin", ignore_errors=True)
        (folder / "fi_info.out").unlink(missing_ok=True)


def efa_nodes(netns_hosts, interfaces: dict[int, int]) -> list:
    """Hosts as nodes launched with ``interfaces[i]`` EFA interfaces (0: none, as the aws provider leaves it)."""
    return [replace(n, extra={"efa": interfaces[i]} if interfaces[i] else {})
            for i, n in zip(interfaces, netns_hosts.nodes(list(interfaces)))]


def sopts(tmp_path) -> ssh.SshOptions:
    return ssh.SshOptions(known_hosts=str(tmp_path / "known_hosts"), accept_new=True, connect_timeout=5)


def test_every_device_listed_passes_and_nodes_without_efa_are_not_asked(netns_hosts, fake_fi_info, tmp_path):
    say, bin_dir = fake_fi_info
    say(0, listing(["rdmap0s6"]))
    say(1, listing(["rdmap0s6"]))  # host 2 has no fi_info at all: asking it would fail
    nodes = efa_nodes(netns_hosts, {0: 1, 1: 1, 2: 0})
    with ssh.Connections(sopts(tmp_path)) as pool:
        fabric_check.check(nodes, pool, bin_dir=bin_dir)


def test_a_node_without_efa_fails_the_check_naming_it_and_what_fi_info_said(netns_hosts, fake_fi_info, tmp_path):
    say, bin_dir = fake_fi_info
    say(0, listing(["rdmap0s6"]))
    say(1, NO_EFA, code=1)
    nodes = efa_nodes(netns_hosts, {0: 1, 1: 1})
    with ssh.Connections(sopts(tmp_path)) as pool, pytest.raises(DeployError) as info:
        fabric_check.check(nodes, pool, bin_dir=bin_dir)
    message = info.value.message
    assert ssh.describe(nodes[1]) in message and ssh.describe(nodes[0]) not in message
    assert "lists 0 of its 1 EFA device (none; exit 1)" in message and "fi_getinfo: -61" in message
    assert "cloud-init-output.log" in (info.value.hint or "")


def test_one_device_missing_of_thirty_two_fails(netns_hosts, fake_fi_info, tmp_path):
    say, bin_dir = fake_fi_info
    devices = [f"rdmap{79 + i}s0" for i in range(32)]
    say(0, listing(devices))
    say(1, listing(devices[:31]))
    nodes = efa_nodes(netns_hosts, {0: 32, 1: 32})
    with ssh.Connections(sopts(tmp_path)) as pool, pytest.raises(DeployError) as info:
        fabric_check.check(nodes, pool, bin_dir=bin_dir)
    assert f"{ssh.describe(nodes[1])}: fi_info -p efa lists 31 of its 32 EFA devices" in info.value.message
    assert ssh.describe(nodes[0]) not in info.value.message


def test_make_ready_refuses_nodes_whose_efa_software_is_missing(netns_hosts, data_dir, tmp_path):
    """The deploy's own path (``make_ready``, as deploy and resume call it): nodes launched with EFA where no
    fi_info exists (this machine has none) are a DeployError, not a ready cluster."""
    from ccdsl.executor import config as cfg
    from ccdsl.executor.cluster import make_ready

    assert shutil.which("fi_info") is None and not os.path.exists(f"{fabric_check.EFA_BIN}/fi_info")
    config = cfg.Config().replace("test", mpi={"python": sys.executable, "iface": "eth0",
                                               "remote_dir": str(tmp_path / "remote"),
                                               "authorized_keys": str(netns_hosts.authorized_keys)})
    nodes = efa_nodes(netns_hosts, {0: 1, 1: 0})
    with pytest.raises(DeployError, match=re.escape(f"{ssh.describe(nodes[0])}: fi_info -p efa lists 0 of its 1 EFA "
                                                    "device (none; exit 127)")):
        make_ready("EfaMissingTestX", nodes, config, lambda *a: None, deploying=True)
    nodedir.release_cluster("EfaMissingTestX", nodes, options=mpi.options_from_config(config)[0],
                            ssh_options=sopts(tmp_path))


# -- the launcher under EFA ---------------------------------------------------------------------------------------
# A stand-in for Open MPI's mpirun: prints its argv as JSON, then reaches every host of --host through the agent
# it was given (the cluster's ssh wrapper) and prints which eth0 address answered.
FAKE_MPIRUN = """#!{python}
import json, subprocess, sys
argv = sys.argv
print("ARGV " + json.dumps(argv), flush=True)
agent = argv[argv.index("plm_rsh_agent") + 1]
for host in argv[argv.index("--host") + 1].split(","):
    out = subprocess.run([agent, host.split(":")[0], "ip -4 -o addr show eth0"], capture_output=True, text=True)
    print("REACHED " + (out.stdout.split()[3].split("/")[0] if out.returncode == 0 else "error " + out.stderr),
          flush=True)
"""


@pytest.fixture()
def efa_cluster(netns_hosts, tmp_path):
    """Hosts 0 and 1 prepared as an EFA cluster whose mpirun is :data:`FAKE_MPIRUN`."""
    prefix = tmp_path / "openmpi"
    (prefix / "bin").mkdir(parents=True)
    fake = prefix / "bin" / "mpirun"
    fake.write_text(FAKE_MPIRUN.format(python=sys.executable))
    fake.chmod(0o755)
    options = mpi.MpiOptions(python=sys.executable, mpiexec=str(fake), iface="eth0",
                             remote_dir=str(tmp_path / "remote"), authorized_keys=str(netns_hosts.authorized_keys))
    nodes = [replace(n, extra={"fabric": "efa", "efa": 1}) for n in netns_hosts.nodes([0, 1])]
    nodes, _ = mpi.prepare_cluster("EfaLauncherTest", nodes, options=options, ssh_options=sopts(tmp_path))
    yield nodes, options, str(prefix)
    nodedir.release_cluster("EfaLauncherTest", nodes, options=options, ssh_options=sopts(tmp_path))


def test_an_efa_cluster_runs_under_mpirun_with_the_efa_provider(efa_cluster, netns_hosts, tmp_path):
    nodes, options, prefix = efa_cluster
    lines: list[str] = []
    with mpi.Launcher(nodes, processes_per_node=2, options=options, ssh_options=sopts(tmp_path),
                      workdir=str(tmp_path)) as launcher:
        code = launcher.run_program(parse(["hostname"]), 3, stream=lambda line, stream: lines.append(line),
                                    label_ranks=True)
    assert code == 0, lines
    (argv,) = [json.loads(x.removeprefix("ARGV ")) for x in lines if x.startswith("ARGV ")]
    directory = nodes[0].extra["ccdsl_dir"]
    hosts = ",".join(f"{netns_hosts.hosts[i].address}:2" for i in (0, 1))
    assert argv == [f"{prefix}/bin/mpirun", "--prefix", prefix, "--host", hosts, "-n", "3",
                    "--mca", "plm_rsh_agent", f"{directory}/ssh", "--mca", "pml", "cm", "--mca", "mtl", "ofi",
                    "--mca", "oob_tcp_if_include", "eth0", "-x", "FI_PROVIDER=efa",
                    "-x", f"MPI4PY_LIBMPI={prefix}/lib64:{prefix}/lib", "-x", f"CCDSL_WORKDIR={tmp_path}",
                    "--wdir", str(tmp_path), "hostname"]  # no Hydra-only -prepend-rank
    assert [x.removeprefix("REACHED ") for x in lines if x.startswith("REACHED ")] == [
        netns_hosts.hosts[i].address for i in (0, 1)]  # the agent is the cluster's working ssh wrapper


def test_a_function_run_goes_to_mpirun_too(efa_cluster, tmp_path):
    """The rank bootstrap (what run_function and run_script start) under mpirun: the fake runs no rank, so only
    the command line is looked at."""
    nodes, options, prefix = efa_cluster
    lines: list[str] = []
    with mpi.Launcher(nodes, options=options, ssh_options=sopts(tmp_path)) as launcher:
        _, code = launcher._launch("call", b"payload", [], 2, lambda line, stream: lines.append(line), None)
    (argv,) = [json.loads(x.removeprefix("ARGV ")) for x in lines if x.startswith("ARGV ")]
    assert code == 0 and argv[0] == f"{prefix}/bin/mpirun" and "FI_PROVIDER=efa" in argv
    assert argv[argv.index("-n") + 1] == "2" and "--wdir" not in argv
    assert argv[-4:-1] == [sys.executable, f"{nodes[0].extra['ccdsl_dir']}/{mpi.rank_script_name()}", "call"]
    assert argv[-1].endswith(".payload")
