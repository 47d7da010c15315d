"""The seed's tutorial on the local provider, with no set-up at all: deploy, workers, run, ranks, interrupt,
resume, restart, several clusters side by side, reconnect from another process, terminate; and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import ClusterError
from ccdsl.executor.cluster import HANDLE_LENGTH, is_handle
from fixtures_executor import data_dir

pytest.importorskip("mpi4py")


def rank_sum(comm, scale=1):
    """The seed's MPI example: reduce the ranks to rank 0."""
    total = comm.reduce(comm.Get_rank() * scale, root=0)
    return (total, comm.Get_size())


@pytest.fixture()
def local2(data_dir):
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2))
    yield c
    if c.status != "terminated":
        ccdsl.terminate(c)


def test_tutorial_on_local(local2):
    c = local2
    assert is_handle(c.handle) and len(c.handle) == HANDLE_LENGTH
    assert c.status == "running" and c.provider == "local"
    first = c.workers()
    assert len(first) == 2 and first == sorted(first)
    assert [n.instance_id for n in c.nodes()] == ["local-0", "local-1"]
    assert c.run(rank_sum) == (1, 2)
    assert c.run(rank_sum, 10) == (10, 2)
    assert c.ranks() == {0: first[0], 1: first[1]}

    ccdsl.interrupt(c)
    assert c.status == "interrupted" and c.workers() == []
    with pytest.raises(ClusterError, match="interrupted"):
        c.run(rank_sum)
    ccdsl.resume(c)
    second = c.workers()
    assert len(second) == 2 and min(second) > max(first)  # new ids, like new pids
    assert c.run(rank_sum) == (1, 2)

    ccdsl.restart(c)
    third = c.workers()
    assert min(third) > max(second)
    assert c.ranks() == {0: third[0], 1: third[1]}

    assert [i.handle for i in ccdsl.clusters()] == [c.handle]
    ccdsl.terminate(c)
    assert ccdsl.clusters() == [] and c.workers() == []
    with pytest.raises(ClusterError, match="terminated"):
        ccdsl.resume(c)


def test_several_clusters_side_by_side(data_dir):
    contract = ccdsl.cluster(node_provider="Local", node_count=2)
    a, b = ccdsl.deploy(contract), ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=3))
    c = ccdsl.deploy(contract)
    try:
        assert len({a.handle, b.handle, c.handle}) == 3
        ids = a.workers() + b.workers() + c.workers()
        assert len(ids) == 7 and len(set(ids)) == 7
        assert b.run(rank_sum) == (3, 3) and a.run(rank_sum) == (1, 2)
        assert {i.handle for i in ccdsl.clusters()} == {a.handle, b.handle, c.handle}
    finally:
        for x in (a, b, c):
            ccdsl.terminate(x)


def test_processes_per_node_gives_a_worker_per_rank(data_dir):
    from ccdsl.executor.config import Config

    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2),
                     config=Config.from_dict({"mpi": {"processes_per_node": 2}}))
    try:
        assert c.run(rank_sum) == (0 + 1 + 2 + 3, 4)
        w = c.workers()
        assert len(w) == 4 and c.ranks() == dict(enumerate(w))
    finally:
        ccdsl.terminate(c)


def test_run_script_streams_output(local2, tmp_path):
    prog = tmp_path / "prog.py"
    prog.write_text("import sys\nfrom mpi4py import MPI\nc = MPI.COMM_WORLD\n"
                    "print('rank', c.Get_rank(), 'of', c.Get_size(), sys.argv[1:])\nsys.exit(3 if c.Get_rank() == 0 "
                    "and 'fail' in sys.argv else 0)\n")
    lines = []
    code = local2.run_script(str(prog), ["x", 1], stream=lambda line, stream: lines.append((stream, line)))
    assert code == 0
    assert sorted(line for s, line in lines if s == "stdout") == ["rank 0 of 2 ['x', '1']", "rank 1 of 2 ['x', '1']"]
    assert local2.run_script(str(prog), ["fail"], np=1, stream=lambda *a: None) == 3


def test_reconnect_from_another_process(local2, data_dir):
    code = (f"import ccdsl; c = ccdsl.reconnect({local2.handle!r}); "
            "print(c.workers(), c.run(lambda comm: comm.allreduce(comm.Get_rank())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "CCDSL_DATA_DIR": str(data_dir)})
    assert out.returncode == 0, out.stderr
    workers, total = out.stdout.strip().rsplit(" ", 1)
    assert int(total) == 1
    assert json.loads(workers) == local2.workers()  # the reconnect made them, and the record keeps them
    assert min(json.loads(workers)) > 3


def test_bad_handles_and_states(data_dir):
    with pytest.raises(ClusterError, match="not a cluster handle"):
        ccdsl.reconnect("nope")
    with pytest.raises(ClusterError, match="no cluster"):
        ccdsl.reconnect("AAAAAAAAAAAAAAA")
    with pytest.raises(ClusterError, match="no cluster"):
        ccdsl.terminate("AAAAAAAAAAAAAAA")


def test_cli_lifecycle(data_dir, tmp_path, capsys):
    (tmp_path / "c.ccc").write_text("two = @cluster(node_provider => Local, node_count => 2)\n"
                                    "three = @cluster(node_provider => Local, node_count => 3)\n")
    (tmp_path / "prog.py").write_text("from mpi4py import MPI\nc = MPI.COMM_WORLD\n"
                                      "s = c.reduce(c.Get_rank(), root=0)\nif c.Get_rank() == 0: print('sum', s)\n")
    assert main(["deploy", str(tmp_path / "c.ccc")]) == 1
    assert "--contract" in capsys.readouterr().err
    assert main(["deploy", str(tmp_path / "c.ccc"), "--contract", "three", "--json"]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)
    handle = info["handle"]
    assert info["status"] == "running" and len(info["workers"]) == 3 and len(info["nodes"]) == 3
    assert "worker 2: ready" in err
    assert main(["clusters", "--json"]) == 0
    assert [c["handle"] for c in json.loads(capsys.readouterr().out)] == [handle]
    assert main(["run", handle, "--", "python", str(tmp_path / "prog.py")]) == 0
    assert "sum 3" in capsys.readouterr().out
    assert main(["nodes", handle]) == 0
    assert capsys.readouterr().out.count("local-") == 3
    for action, status in (("interrupt", "interrupted"), ("resume", "running"), ("restart", "running")):
        assert main([action, handle, "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == status
    assert main(["run", handle, "--", "python", "-c", "import sys; print('argv', sys.argv[1:])", "x"]) == 0
    assert capsys.readouterr().out.count("argv ['x']") == 3
    assert main(["run", handle, "--np", "2", "--", "sh", "-c", "echo rank $PMI_RANK"]) == 0
    assert sorted(capsys.readouterr().out.split("\n")) == ["", "rank 0", "rank 1"]
    assert main(["run", handle, "--", "python"]) == 1
    assert "python needs a program to run on every rank" in capsys.readouterr().err
    assert main(["terminate", handle]) == 0
    assert main(["terminate", handle]) == 0  # again: the cluster is gone, as asked (issue 19 B17)
    assert capsys.readouterr().out.endswith(f"{handle}: already terminated\n")
    assert main(["clusters"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and "no clusters" in err


def test_command_module_is_cheap_to_import():
    code = ("import sys, ccdsl.commands.cluster, ccdsl.cli; ccdsl.cli.build_parser(); "
            "print([m for m in ('boto3', 'paramiko', 'mpi4py', 'ccdsl.executor') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_deploy_in_progress_elsewhere_is_left_alone_and_a_dead_one_is_failed(data_dir):
    import socket
    import time

    from ccdsl.executor.state import ClusterRecord, State

    state, now = State(), time.time()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for handle, pid in (("LiveLiveLiveLiv", os.getpid()), ("DeadDeadDeadDea", int(dead.stdout))):
        state.add_cluster(ClusterRecord(handle, "c", "local", "PeerWorkers", "deploying", now, now, owner_pid=pid,
                                        owner_host=socket.gethostname()))
    info = {i.handle: i for i in ccdsl.clusters()}
    assert info["LiveLiveLiveLiv"].status == "deploying"
    assert info["DeadDeadDeadDea"].status == "failed" and "interrupted" in info["DeadDeadDeadDea"].note
    with pytest.raises(ClusterError, match="being deployed by process"):
        ccdsl.terminate("LiveLiveLiveLiv")
    ccdsl.terminate("DeadDeadDeadDea")
    assert [i.handle for i in ccdsl.clusters()] == ["LiveLiveLiveLiv"]


def test_contract_configuration_survives_reconnect(data_dir):
    """Contract config parameters (here mpi_flags => "-l": MPICH labels output lines with the rank, allowed by
    ccdsl.toml) and node_process_count apply to the deploy and to every later session of the cluster."""
    (data_dir.parent / "ccdsl.toml").write_text('[security]\ncontract_may_set = ["mpi_flags"]\n')  # the cwd
    contract = ccdsl.parse('c = @cluster(node_provider => Local, node_count => 2, node_process_count => 2, '
                           'mpi_flags => "-l")')["c"]
    hello = data_dir.parent / "hello.py"
    hello.write_text("print('hello')\n")
    c = ccdsl.deploy(contract)
    try:
        assert c.config.mpi.extra_args == ["-l"] and len(c.workers()) == 4
        again = ccdsl.reconnect(c.handle)
        assert again.config.mpi.extra_args == ["-l"] and len(again.workers()) == 4
        lines = []
        assert again.run_script(str(hello), stream=lambda line, stream: lines.append(line)) == 0
        assert sorted(lines) == [f"[{r}] hello" for r in range(4)], lines
    finally:
        ccdsl.terminate(c)


def test_two_ccdsl_processes_deploy_at_once(data_dir, tmp_path):
    (tmp_path / "c.ccc").write_text("c = @cluster(node_provider => Local, node_count => 3)\n")
    env = {**os.environ, "CCDSL_DATA_DIR": str(data_dir)}
    procs = [subprocess.Popen([sys.executable, "-m", "ccdsl", "deploy", "--json", "-q", str(tmp_path / "c.ccc")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    infos = [json.loads(o) for o, _ in outs]
    workers = [w for i in infos for w in i["workers"]]
    assert len(workers) == 9 and sorted(workers) == list(range(2, 11))
    assert {c.handle for c in ccdsl.clusters()} == {i["handle"] for i in infos}
    for i in infos:
        ccdsl.terminate(i["handle"])


def test_a_contract_asking_too_many_ranks_per_node_is_refused_before_deploying(data_dir):
    from ccdsl.errors import ConfigError
    from ccdsl.executor.state import State

    contract = ccdsl.parse("c = @cluster(node_provider => Local, node_count => 1, node_process_count => 100000)")["c"]
    with pytest.raises(ConfigError, match=r"contract 'c'.*processes_per_node must be 1 to 256, not 100000"):
        ccdsl.deploy(contract)
    assert State().list_clusters(live_only=False) == []


def test_rank_counts_are_checked(local2, tmp_path, capsys):
    from ccdsl.errors import ExecutionError

    prog = tmp_path / "prog.py"
    prog.write_text("from mpi4py import MPI\nprint('size', MPI.COMM_WORLD.Get_size())\n")
    for np in (-5, 0):
        with pytest.raises(ExecutionError, match=f"at least 1, not {np}"):
            local2.run_script(str(prog), np=np, stream=lambda *a: None)
    with pytest.raises(ExecutionError, match="3 ranks asked for, but the cluster has 2 slot") as info:
        local2.run_script(str(prog), np=3, stream=lambda *a: None)
    assert "--oversubscribe" in info.value.hint
    lines = []
    assert local2.run_script(str(prog), np=3, oversubscribe=True, stream=lambda line, s: lines.append(line)) == 0
    assert lines == ["size 3"] * 3
    assert main(["run", local2.handle, "--np", "-5", "--", "python", str(prog)]) == 1
    assert "at least 1, not -5" in capsys.readouterr().err
    assert main(["run", local2.handle, "--np", "3", "--", "python", str(prog)]) == 1
    assert "--oversubscribe" in capsys.readouterr().err
    assert main(["run", local2.handle, "--np", "3", "--oversubscribe", "--", "python", str(prog)]) == 0
    assert capsys.readouterr().out.count("size 3") == 3
