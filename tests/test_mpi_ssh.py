"""The MPI launcher across SSH hosts in network namespaces: a real multi-host mpiexec (Hydra, ssh launcher)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from ccdsl.errors import ExecutionError, RankError
from ccdsl.executor import mpi, nodedir, ssh
from ccdsl.executor.model import READY
from fixtures_netns import netns_hosts  # the fixture
from ranks import SLEEPER, assert_gone, kill_launcher_and_check_ranks_end

pytest.importorskip("paramiko")
pytest.importorskip("mpi4py")
pytestmark = pytest.mark.netns


def my_address(comm):
    """Inside a rank: the IPv4 address of this namespace's eth0 (proves which host the rank runs on)."""
    import subprocess

    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "eth0"], capture_output=True, text=True).stdout
    return out.split()[3].split("/")[0]


def sum_and_addresses(comm, scale):
    total = comm.reduce(comm.rank * scale, root=0)
    addresses = comm.gather(my_address(comm), root=0)
    return total, addresses


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("mpi-ssh")


@pytest.fixture(scope="module")
def options(netns_hosts, workdir):
    return (mpi.MpiOptions(python=sys.executable, iface="eth0", remote_dir=str(workdir / "remote"),
                           authorized_keys=str(netns_hosts.authorized_keys)),
            ssh.SshOptions(known_hosts=str(workdir / "known_hosts"), accept_new=True, connect_timeout=5,
                           liveness=3.0))


@pytest.fixture(scope="module")
def peers(netns_hosts, options):
    """A PeerWorkers cluster of hosts 0-2, prepared once for the module."""
    mopts, sopts = options
    nodes, manager = mpi.prepare_cluster("PeerWorkersTest", netns_hosts.nodes([0, 1, 2]), options=mopts,
                                         ssh_options=sopts)
    assert manager is None
    yield nodes
    nodedir.release_cluster("PeerWorkersTest", nodes, options=mopts, ssh_options=sopts)


@pytest.fixture()
def launcher(peers, options):
    mopts, sopts = options
    with mpi.Launcher(peers, options=mopts, ssh_options=sopts) as launcher:
        yield launcher


def test_prepare_installs_cluster_files(peers, netns_hosts, workdir):
    assert all(n.state == READY for n in peers)
    d = peers[0].extra["ccdsl_dir"]
    assert d == str(workdir / "remote" / "PeerWorkersTest")
    assert (os.stat(f"{d}/id_ed25519").st_mode & 0o777) == 0o600
    known = Path(f"{d}/known_hosts").read_text().split("\n")
    assert {line.split()[0] for line in known if line} == {h.address for h in netns_hosts.hosts[:3]}
    assert mpi.internal_key_comment("PeerWorkersTest") in netns_hosts.authorized_keys.read_text()
    assert "StrictHostKeyChecking yes" in Path(f"{d}/ssh_config").read_text()


def test_reduce_across_three_namespaces(launcher, netns_hosts):
    total, addresses = launcher.run_function(sum_and_addresses, (10,), stream=None)
    assert total == 10 * (0 + 1 + 2)
    expected = [h.address for h in netns_hosts.hosts[:3]]
    assert addresses == expected  # rank r runs on node r: three different hosts
    assert launcher.ranks() == {0: 0, 1: 1, 2: 2}
    assert len(set(addresses)) == 3


def test_several_ranks_per_node_follow_the_rank_map(peers, options, netns_hosts):
    mopts, sopts = options
    with mpi.Launcher(peers, processes_per_node=2, options=mopts, ssh_options=sopts) as launcher:
        total, addresses = launcher.run_function(sum_and_addresses, (1,), stream=None)
        mapping = launcher.ranks()
    assert total == sum(range(6))
    assert len(mapping) == 6
    for rank, address in enumerate(addresses):
        assert address == peers[mapping[rank]].private_address


def test_run_script_streams_output(launcher, tmp_path):
    flag = tmp_path / "seen"
    script = tmp_path / "prog.py"
    script.write_text(
        "import os, sys, time\n"
        "from mpi4py import MPI\n"
        "comm = MPI.COMM_WORLD\n"
        "if comm.rank == 2:\n"
        "    print('ready from rank', comm.rank, 'args', sys.argv[1:])\n"
        "    t = time.time()\n"
        "    while not os.path.exists(sys.argv[1]) and time.time() - t < 120:  # a fail-safe\n"
        "        time.sleep(0.02)\n"
        "    print('streamed' if os.path.exists(sys.argv[1]) else 'not streamed')\n"
        "comm.Barrier()\n"
        "print('bye', comm.rank, file=sys.stderr)\n"
        "sys.exit(5 if comm.rank == 0 else 0)\n")
    seen = []

    def on_line(line, stream):
        seen.append((stream, line))
        if line.startswith("ready"):
            flag.touch()

    code = launcher.run_script(script, [str(flag)], stream=on_line, timeout=60)
    out = [line for s, line in seen if s == "stdout"]  # (the nodes' login shells may add noise on stderr)
    assert out == [f"ready from rank 2 args ['{flag}']", "streamed"]
    assert sorted(line for s, line in seen if s == "stderr" and line.startswith("bye")) == ["bye 0", "bye 1", "bye 2"]
    assert code == 5


def test_remote_exception_names_rank_and_host(launcher):
    def explode(comm):
        if comm.rank == 2:
            raise RuntimeError(f"broken on {my_address(comm)}")
        comm.Barrier()

    with pytest.raises(RankError) as info:
        launcher.run_function(explode, stream=None, timeout=60)
    err = info.value
    assert err.rank == 2 and err.exc_type == "RuntimeError"
    assert "host2" in err.message and launcher.nodes[2].private_address in err.message
    assert f"broken on {launcher.nodes[2].private_address}" in err.message  # raised on that host indeed
    assert "in explode" in err.remote_traceback
    # the cluster is still usable afterwards
    assert launcher.run_function(lambda comm: comm.allreduce(1), stream=None) == 3


def test_timeout_kills_the_remote_job(launcher, tmp_path):
    def sleeper(comm, path):
        with open(f"{path}.{comm.rank}.tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(f"{path}.{comm.rank}.tmp", f"{path}.{comm.rank}")
        time.sleep(300)

    with pytest.raises(ExecutionError, match="did not finish within 3 s"):
        launcher.run_function(sleeper, (str(tmp_path / "pid"),), stream=None, timeout=3)
    assert_gone([int((tmp_path / f"pid.{r}").read_text()) for r in range(3)])


def test_manager_workers_reaches_only_the_manager(netns_hosts, options):
    """Workers have no address ccdsl could connect to: set-up goes through the manager, mpiexec runs there."""
    mopts, sopts = options
    workers = netns_hosts.nodes([0, 1, 2], reachable=False)
    manager = netns_hosts.node(3, role="manager", index=0)
    assert all(w.address is None for w in workers)
    nodes, manager = mpi.prepare_cluster("ManagerWorkersT", workers, manager=manager, options=mopts,
                                         ssh_options=sopts)
    try:
        assert manager.state == READY and all(n.state == READY for n in nodes)
        with mpi.Launcher(nodes, via=manager, options=mopts, ssh_options=sopts) as launcher:
            total, addresses = launcher.run_function(sum_and_addresses, (1,), stream=None)
        assert total == 3
        assert addresses == [h.address for h in netns_hosts.hosts[:3]]
        assert netns_hosts.hosts[3].address not in addresses  # no rank on the manager
    finally:
        nodedir.release_cluster("ManagerWorkersT", nodes, manager=manager, options=mopts, ssh_options=sopts)
    assert "ccdsl-ManagerWorkersT" not in netns_hosts.authorized_keys.read_text()
    assert not os.path.exists(nodes[0].extra["ccdsl_dir"])


def test_unreachable_node_at_prepare(netns_hosts, options):
    mopts, sopts = options
    netns_hosts.stop_sshd(1)
    try:
        with pytest.raises(Exception) as info:
            mpi.prepare_cluster("UnreachableTest", netns_hosts.nodes([0, 1]),
                                options=mpi.MpiOptions(**{**mopts.__dict__, "ready_timeout": 3}), ssh_options=sopts)
        assert "host1" in str(info.value) and "cannot reach" in str(info.value)
        assert "gave up after 3 s" in str(info.value)  # the ready_timeout ended it, not the 300 s default
    finally:
        netns_hosts.start_sshd(1)


@pytest.mark.parametrize("victim", [2, 0], ids=["worker-dies", "launching-node-dies"])
def test_node_dying_mid_run_is_a_clear_error(netns_hosts, options, victim):
    """Kill every process of one host (its sshd, the MPI proxy and ranks) during a long run."""
    mopts, sopts = options
    nodes, _ = mpi.prepare_cluster(f"DyingNodeTest{victim}X", netns_hosts.nodes([0, 1, 2]), options=mopts,
                                   ssh_options=sopts)
    pids_file = netns_hosts.workdir / f"dying{victim}"

    def long_run(comm, path):
        with open(f"{path}.{comm.rank}.tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(f"{path}.{comm.rank}.tmp", f"{path}.{comm.rank}")
        for _ in range(600):
            comm.Barrier()
            time.sleep(0.1)
        return "finished"

    def kill_when_started():
        deadline = time.monotonic() + 120  # a fail-safe: the wait ends when every rank wrote its pid
        while not all(os.path.exists(f"{pids_file}.{r}") for r in range(3)) and time.monotonic() < deadline:
            time.sleep(0.05)
        netns_hosts.kill_host(victim)

    killer = threading.Thread(target=kill_when_started)
    killer.start()
    try:
        with mpi.Launcher(nodes, options=mopts, ssh_options=sopts) as launcher, \
                pytest.raises(ExecutionError) as info:
            launcher.run_function(long_run, (str(pids_file),), stream=None, timeout=600)  # a fail-safe
        # named either by the liveness check during the run or by the probe after mpiexec gave up
        assert f"host{victim}" in info.value.message
        assert "does not answer" in info.value.message or "stopped answering" in info.value.message
        assert_gone([int(Path(f"{pids_file}.{r}").read_text()) for r in range(3)])  # no orphaned ranks
    finally:
        killer.join()
        netns_hosts.start_sshd(victim)


@pytest.mark.parametrize("victim", [2, 0], ids=["worker-lost", "launching-node-lost"])
def test_partitioned_node_is_a_clear_error(netns_hosts, options, victim):
    """A host vanishes without closing any connection (packets dropped): keepalives, not RSTs, must notice."""
    mopts, sopts = options
    nodes, _ = mpi.prepare_cluster(f"PartitionTest{victim}X", netns_hosts.nodes([0, 1, 2]), options=mopts,
                                   ssh_options=sopts)
    pids_file = netns_hosts.workdir / f"partition{victim}"

    def long_run(comm, path):
        with open(f"{path}.{comm.rank}.tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(f"{path}.{comm.rank}.tmp", f"{path}.{comm.rank}")
        for _ in range(1200):
            comm.Barrier()
            time.sleep(0.1)

    def cut_when_started():
        deadline = time.monotonic() + 120  # a fail-safe: the wait ends when every rank wrote its pid
        while not all(os.path.exists(f"{pids_file}.{r}") for r in range(3)) and time.monotonic() < deadline:
            time.sleep(0.05)
        netns_hosts.partition(victim)

    cutter = threading.Thread(target=cut_when_started)
    cutter.start()
    try:
        with mpi.Launcher(nodes, options=mopts, ssh_options=sopts) as launcher, \
                pytest.raises(ExecutionError) as info:
            launcher.run_function(long_run, (str(pids_file),), stream=None, timeout=600)  # a fail-safe
        assert "did not finish within" not in info.value.message  # the keepalives noticed, not the fail-safe
        assert f"host{victim}" in info.value.message
        survivors = [r for r in range(3) if r != victim]
        assert_gone([int(Path(f"{pids_file}.{r}").read_text()) for r in survivors])
    finally:
        cutter.join()
        netns_hosts.heal(victim)
        nodedir.kill_processes(nodes, ssh_options=sopts)


def test_missing_rank_bootstrap_is_reinstalled(launcher, peers):
    """Nodes prepared by another ccdsl version lack this version's bootstrap: the launcher copies it and retries."""
    path = f"{peers[0].extra['ccdsl_dir']}/{mpi.rank_script_name()}"
    os.unlink(path)  # the hosts share this filesystem: gone from every node
    assert launcher.run_function(lambda comm: comm.allreduce(comm.rank), stream=None) == 3
    assert os.path.exists(path)


CHILD = SLEEPER + """
import pickle, sys
from ccdsl.executor import mpi
nodes, mopts, sopts, path = pickle.load(open(sys.argv[1], "rb"))
mpi.Launcher(nodes, options=mopts, ssh_options=sopts).run_function(sleeper, (path,))
"""


def test_killed_ccdsl_leaves_no_job_behind(peers, options, tmp_path):
    """SIGKILL the process that launched a run: its SSH session ends, and the job on the nodes with it."""
    import pickle

    args = tmp_path / "args.pkl"
    args.write_bytes(pickle.dumps((peers, *options, str(tmp_path / "pid"))))
    kill_launcher_and_check_ranks_end(CHILD, [str(args)], tmp_path / "pid", ranks=3)


def test_error_reaches_us_even_when_the_rank_has_no_stderr(launcher):
    def silent_failure(comm):
        if comm.rank == 1:
            os.close(2)
            raise ValueError("said nothing")
        comm.Barrier()

    with pytest.raises(RankError, match=r"rank 1 on worker 1 .*ValueError: said nothing"):
        launcher.run_function(silent_failure, stream=None, timeout=60)


def test_any_program_and_python_c_run_on_every_node(launcher, peers):
    """``ccdsl run H -- hostname``-style programs run once per rank on the nodes, with the MPI environment."""
    from ccdsl.executor.program import parse

    seen: list[str] = []
    code = launcher.run_program(parse(["sh", "-c", "echo $PMI_RANK $(ip -4 -o addr show eth0 | awk '{print $4}')"]),
                                stream=lambda line, s: seen.append(line) if s == "stdout" else None, timeout=60)
    assert code == 0
    got = sorted(tuple(line.split()) for line in seen)
    assert got == [(str(r), f"{peers[r].private_address}/{got[r][1].split('/')[1]}") for r in range(3)]
    seen.clear()
    code = launcher.run_program(parse(["python3", "-u", "-c", "from mpi4py import MPI; print(MPI.COMM_WORLD.rank)"]),
                                stream=lambda line, s: seen.append(line) if s == "stdout" else None, timeout=60)
    assert code == 0 and sorted(seen) == ["0", "1", "2"]


def test_a_program_the_nodes_cannot_start_is_named_once(launcher):
    """Issue 19 B11: hydra's per-rank 'execvp error' lines become one ExecutionError naming the program; labelled
    output (``ccdsl run --json``) comes under each rank."""
    from ccdsl.executor.program import parse

    seen: list[tuple[str, str]] = []
    with pytest.raises(ExecutionError) as info:
        launcher.run_program(parse(["nonexistentcmd", "-x"]), stream=lambda line, s: seen.append((s, line)),
                             timeout=60)
    assert info.value.message.startswith("cannot run 'nonexistentcmd' on the nodes: No such file or directory")
    assert not [line for _, line in seen if "execvp" in line or "HYDU" in line or "proxy" in line]
    seen.clear()
    assert launcher.run_program(parse(["sh", "-c", "echo at $PMI_RANK"]), label_ranks=True, timeout=60,
                                stream=lambda line, s: seen.append((s, line))) == 0
    assert sorted(seen) == [("stdout", f"[{r}] at {r}") for r in range(3)]


def test_remote_dir_that_a_shell_would_run_is_refused_before_any_node_is_touched(netns_hosts, tmp_path):
    """``$(touch …)`` in remote_dir must never run: MPICH's launcher hands that path to a remote shell unquoted, so
    such a directory is refused (by ccdsl.toml's loader, and by prepare_cluster for options built in code)."""
    from ccdsl.errors import ConfigError
    from ccdsl.executor import config

    pwned = tmp_path / "pwned"
    for odd in (f"dir$(touch${{IFS}}{pwned})", f"dir`touch${{IFS}}{pwned}`", "my dir", "a;b", "x'y"):
        remote = str(tmp_path / odd)
        mopts = mpi.MpiOptions(python=sys.executable, remote_dir=remote,
                               authorized_keys=str(netns_hosts.authorized_keys))
        sopts = ssh.SshOptions(known_hosts=str(tmp_path / "known_hosts"), accept_new=True, connect_timeout=5)
        with pytest.raises(ConfigError, match="remote_dir") as info:
            mpi.prepare_cluster("OddPathsClustr", netns_hosts.nodes([0]), options=mopts, ssh_options=sopts)
        assert info.value.hint
        with pytest.raises(ConfigError, match="remote_dir"):
            config.Config.from_dict({"mpi": {"remote_dir": remote}})
        assert not os.path.exists(remote)
    assert not pwned.exists()


def test_odd_but_harmless_remote_dir_and_mpiexec_paths_work(netns_hosts, tmp_path):
    """Characters ssh_config would expand (``%h``) and the words the node probe once substituted ("DIR",
    "MPIEXEC") in remote_dir and in the mpiexec path: everything is passed as data."""
    odd = tmp_path / "DIR+MPIEXEC@x=1,2:%h~"
    bindir = tmp_path / "DIRbin"  # Hydra finds its proxy next to mpiexec
    bindir.mkdir()
    for tool in ("mpiexec", "hydra_pmi_proxy"):
        (bindir / tool).symlink_to(os.path.join(os.path.dirname(mpi.local_mpiexec()), tool))
    mopts = mpi.MpiOptions(python=sys.executable, iface="eth0", remote_dir=str(odd), mpiexec=str(bindir / "mpiexec"),
                           authorized_keys=str(netns_hosts.authorized_keys))
    sopts = ssh.SshOptions(known_hosts=str(tmp_path / "known_hosts"), accept_new=True, connect_timeout=5)
    nodes, _ = mpi.prepare_cluster("OddPathsClustr", netns_hosts.nodes([0, 1]), options=mopts, ssh_options=sopts)
    try:
        assert nodes[0].extra["ccdsl_dir"] == str(odd / "OddPathsClustr")
        assert nodes[0].extra["mpiexec"] == str(bindir / "mpiexec")
        with mpi.Launcher(nodes, options=mopts, ssh_options=sopts) as launcher:
            total, addresses = launcher.run_function(sum_and_addresses, (1,), stream=None)
        assert total == 1 and len(set(addresses)) == 2  # the ranks reached each other through the wrapper
    finally:
        nodedir.release_cluster("OddPathsClustr", nodes, options=mopts, ssh_options=sopts)
    assert not (odd / "OddPathsClustr").exists()
