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
# A stand-in for Open MPI's mpirun (this machine has neither Open MPI nor EFA): it records its command line, checks
# that it was told what makes a missing EFA fail (cm PML over the ofi MTL, FI_PROVIDER=efa), and runs the same job
# with Hydra's mpiexec over the same ssh agent -- so the ranks really run on the hosts.  FI_PROVIDER is not passed
# on: pip's MPICH would look for EFA and find none.  Its --prefix holds a lib/ with pip's MPICH (MPI4PY_LIBMPI).
SHIM = """#!{python}
import json, os, sys
with open({record!r}, "a") as f:
    f.write(json.dumps(sys.argv) + "\\n")
args, mca, env, seen = sys.argv[1:], {{}}, [], {{}}
while args and args[0].startswith("-"):
    flag = args.pop(0)
    if flag == "--mca":
        key = args.pop(0)
        mca[key] = args.pop(0)
    elif flag == "-x":
        name, _, value = args.pop(0).partition("=")
        seen[name] = value
        if name != "FI_PROVIDER":
            env += ["-genv", name, value]
    else:
        seen[flag] = args.pop(0)
if (mca.get("pml"), mca.get("mtl"), seen.get("FI_PROVIDER")) != ("cm", "ofi", "efa"):
    sys.exit("mpirun stand-in: EFA is not forced: " + json.dumps([mca, seen]))
hydra = [{mpiexec!r}, "-launcher", "ssh", "-launcher-exec", mca["plm_rsh_agent"], "-hosts", seen["--host"],
         "-iface", mca["oob_tcp_if_include"], *env, *(["-wdir", seen["--wdir"]] if "--wdir" in seen else []),
         "-n", seen["-n"], *args]
os.execv(hydra[0], hydra)
"""


def add_rank(comm, scale):
    import os

    return comm.allreduce(comm.rank * scale), os.environ.get("MPI4PY_LIBMPI", "")


def shim(tmp_path: Path) -> tuple[Path, Path, Path]:
    """:data:`SHIM` installed as ``<prefix>/bin/mpirun``: (its path, the prefix, the file it records in)."""
    prefix = tmp_path / "openmpi"
    (prefix / "bin").mkdir(parents=True)
    (prefix / "lib").symlink_to(Path(mpi.local_mpiexec()).parent.parent / "lib")
    fake = prefix / "bin" / "mpirun"
    record = tmp_path / "mpirun.jsonl"
    fake.write_text(SHIM.format(python=sys.executable, record=str(record), mpiexec=mpi.local_mpiexec()))
    fake.chmod(0o755)
    return fake, prefix, record


@pytest.fixture()
def efa_cluster(netns_hosts, tmp_path):
    """Hosts 0 and 1 prepared as an EFA cluster whose mpirun is :data:`SHIM`; yields the nodes, the options, the
    Open MPI prefix and the file the shim records its command lines in."""
    fake, prefix, record = shim(tmp_path)
    options = mpi.MpiOptions(python=sys.executable, mpiexec=str(fake), iface="eth0",
                             remote_dir=str(tmp_path / "remote"), authorized_keys=str(netns_hosts.authorized_keys))
    nodes = [replace(n, extra={"fabric": "efa", "efa": 1}) for n in netns_hosts.nodes([0, 1])]
    nodes, _ = mpi.prepare_cluster("EfaLauncherTest", nodes, options=options, ssh_options=sopts(tmp_path))
    yield nodes, options, str(prefix), record
    nodedir.release_cluster("EfaLauncherTest", nodes, options=options, ssh_options=sopts(tmp_path))


def recorded(record: Path) -> list[list[str]]:
    return [json.loads(line) for line in record.read_text().splitlines()]


def test_an_efa_cluster_runs_programs_under_mpirun_with_the_efa_provider(efa_cluster, netns_hosts, tmp_path):
    nodes, options, prefix, record = efa_cluster
    lines: list[str] = []
    with mpi.Launcher(nodes, processes_per_node=2, options=options, ssh_options=sopts(tmp_path),
                      workdir=str(tmp_path)) as launcher:
        code = launcher.run_program(parse(["sh", "-c", "ip -4 -o addr show eth0 | cut -d' ' -f7"]), 3,
                                    stream=lambda line, stream: lines.append(line), label_ranks=True)
    assert code == 0, lines
    directory = nodes[0].extra["ccdsl_dir"]
    hosts = ",".join(f"{netns_hosts.hosts[i].address}:2" for i in (0, 1))
    assert recorded(record) == [[
        f"{prefix}/bin/mpirun", "--prefix", prefix, "--host", hosts, "-n", "3",
        "--mca", "plm_rsh_agent", f"{directory}/ssh", "--mca", "pml", "cm", "--mca", "mtl", "ofi",
        "--mca", "oob_tcp_if_include", "eth0", "-x", "FI_PROVIDER=efa",
        "-x", f"MPI4PY_LIBMPI={prefix}/lib64:{prefix}/lib", "-x", f"CCDSL_WORKDIR={tmp_path}",
        "--wdir", str(tmp_path), "sh", "-c", "ip -4 -o addr show eth0 | cut -d' ' -f7"]]  # no Hydra -prepend-rank
    a, b = (netns_hosts.hosts[i].address for i in (0, 1))
    assert sorted(lines) == sorted([f"{a}/24", f"{a}/24", f"{b}/24"])  # 2 slots on host 0, then host 1


def test_a_function_runs_on_every_rank_under_mpirun(efa_cluster, tmp_path):
    nodes, options, prefix, record = efa_cluster
    with mpi.Launcher(nodes, processes_per_node=2, options=options, ssh_options=sopts(tmp_path)) as launcher:
        total, libmpi = launcher.run_function(add_rank, (10,))
    assert total == 10 * (0 + 1 + 2 + 3) and libmpi == f"{prefix}/lib64:{prefix}/lib"
    (argv,) = recorded(record)
    assert argv[:2] == [f"{prefix}/bin/mpirun", "--prefix"] and "--wdir" not in argv
    assert argv[argv.index("-n") + 1] == "4"
    assert argv[-4:-1] == [sys.executable, f"{nodes[0].extra['ccdsl_dir']}/{mpi.rank_script_name()}", "fn"]


def test_engines_start_under_mpirun(netns_hosts, data_dir, tmp_path):
    """A deployed cluster whose nodes are of an EFA cluster (as the aws provider records them): its persistent
    engines are one mpirun job too, and work."""
    pytest.importorskip("ipyparallel")
    from test_workdir import ssh_deploy

    fake, prefix, record = shim(tmp_path)
    c = ssh_deploy(netns_hosts)
    try:
        c.state.set_nodes(c.handle, [replace(n, extra={**n.extra, "fabric": "efa", "mpiexec": str(fake)})
                                     for n in c.nodes()])
        rc = c.engines()
        rc[:].execute("from mpi4py import MPI; total = MPI.COMM_WORLD.allreduce(MPI.COMM_WORLD.rank)")
        assert rc[:].pull("total") == [0 + 1 + 2] * 3
        (argv,) = recorded(record)
        assert argv[:3] == [str(fake), "--prefix", str(prefix)] and argv[argv.index("-n") + 1] == "3"
        assert "FI_PROVIDER=efa" in argv and argv[argv.index("pml") + 1] == "cm"
    finally:
        c.terminate()
