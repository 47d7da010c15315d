"""The launcher in local mode: a real ``mpiexec -n N`` on this machine, no SSH, no set-up."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from ccdsl.errors import ExecutionError, RankError
from ccdsl.executor.model import Node
from ccdsl.executor.mpi import Launcher, local_mpiexec
from ranks import SLEEPER, assert_gone, kill_launcher_and_check_ranks_end

pytest.importorskip("mpi4py")


def local_nodes(n: int) -> list[Node]:
    return [Node(i, "worker", f"local-{i}", "local") for i in range(n)]


def rank_sum(comm, scale):
    return comm.reduce(comm.rank * scale, root=0)


def who(comm):
    return comm.gather((comm.rank, os.getpid(), comm.size), root=0)


def test_finds_mpiexec_next_to_python():
    assert os.access(local_mpiexec(), os.X_OK)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_reduce_of_ranks_on_n_processes(n):
    with Launcher(local_nodes(n), mode="local") as launcher:
        assert launcher.run_function(rank_sum, (3,), stream=None) == 3 * n * (n - 1) // 2
        gathered = launcher.run_function(who, stream=None)
    assert [r for r, _, _ in gathered] == list(range(n))
    assert {size for _, _, size in gathered} == {n}
    assert len({pid for _, pid, _ in gathered}) == n  # really n processes
    assert os.getpid() not in {pid for _, pid, _ in gathered}


def test_processes_per_node_and_rank_map():
    launcher = Launcher(local_nodes(2), mode="local", processes_per_node=2)
    assert launcher.size == 4
    assert launcher.ranks() == {0: 0, 1: 0, 2: 1, 3: 1}
    assert launcher.run_function(lambda comm: comm.size, stream=None) == 4


def test_kwargs_and_closures_travel():
    base = 100

    def fn(comm, a, *, b):
        return comm.allreduce(a + b + base) // comm.size

    assert Launcher(local_nodes(2), mode="local").run_function(fn, (1,), {"b": 2}, stream=None) == 103


def test_exception_on_one_rank_names_rank_with_traceback():
    def fails_on_rank_one(comm):
        if comm.rank == 1:
            raise KeyError("missing-thing")
        comm.Barrier()  # would wait forever if the failing rank did not abort the job

    with pytest.raises(RankError) as info:
        Launcher(local_nodes(3), mode="local").run_function(fails_on_rank_one, stream=None, timeout=60)
    err = info.value
    assert err.rank == 1 and err.exc_type == "KeyError"
    assert "missing-thing" in err.message and "rank 1" in err.message
    assert "fails_on_rank_one" in err.remote_traceback
    assert "remote traceback" in err.render()


def test_output_lines_reach_the_callback():
    lines = []

    def chatty(comm):
        print(f"line from {comm.rank}")
        return "done"

    result = Launcher(local_nodes(3), mode="local").run_function(chatty, stream=lambda line, s: lines.append((s, line)))
    assert result == "done"
    assert sorted(lines) == [("stdout", f"line from {r}") for r in range(3)]


def test_unpicklable_result_is_a_clear_error():
    with pytest.raises(ExecutionError, match="cannot be pickled"):
        Launcher(local_nodes(2), mode="local").run_function(lambda comm: (x for x in []), stream=None,
                                                            trust_nodes=True)
    with pytest.raises(ExecutionError, match="holds a generator at \\[1\\], which is not plain data"):
        Launcher(local_nodes(2), mode="local").run_function(lambda comm: [1, (x for x in [])], stream=None)


def test_run_script_streams_as_lines_come(tmp_path):
    """The script blocks until the test saw its first line: passes only if output is streamed, not collected."""
    flag = tmp_path / "seen"
    script = tmp_path / "prog.py"
    script.write_text(
        "import os, sys, time\n"
        "from mpi4py import MPI\n"
        "comm = MPI.COMM_WORLD\n"
        "if comm.rank == 0:\n"
        "    print('ready', sys.argv[1:])\n"
        "    t = time.time()\n"
        "    while not os.path.exists(sys.argv[1]) and time.time() - t < 120:  # a fail-safe\n"
        "        time.sleep(0.02)\n"
        "    print('streamed' if os.path.exists(sys.argv[1]) else 'not streamed')\n"
        "comm.Barrier()\n"
        "sys.exit(3 if comm.rank == 0 else 0)\n")
    seen = []

    def on_line(line, stream):
        seen.append(line)
        if line.startswith("ready"):
            flag.touch()

    code = Launcher(local_nodes(2), mode="local").run_script(script, [str(flag)], stream=on_line, timeout=60)
    assert seen[0] == f"ready ['{flag}']"
    assert "streamed" in seen
    assert code == 3


def test_script_exception_gives_nonzero_exit(tmp_path):
    script = tmp_path / "bad.py"
    script.write_text("from mpi4py import MPI\nif MPI.COMM_WORLD.rank == 1:\n    1/0\nMPI.COMM_WORLD.Barrier()\n")
    lines = []
    code = Launcher(local_nodes(2), mode="local").run_script(script, stream=lambda line, s: lines.append(line),
                                                            timeout=60)
    assert code != 0
    assert any("ZeroDivisionError" in line for line in lines)


def test_missing_script_is_a_clear_error(tmp_path):
    with pytest.raises(ExecutionError, match="cannot read the script"):
        Launcher(local_nodes(1), mode="local").run_script(tmp_path / "nope.py")


def test_timeout_kills_the_job(tmp_path):
    marker = tmp_path / "pids"

    def sleeper(comm, path):
        with open(f"{path}.{comm.rank}.tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(f"{path}.{comm.rank}.tmp", f"{path}.{comm.rank}")
        time.sleep(120)

    # The error is the timeout's (the ranks would have returned after 120 s): no clock needed to tell.
    with pytest.raises(ExecutionError, match="did not finish within 3 s"):
        Launcher(local_nodes(2), mode="local").run_function(sleeper, (str(marker),), stream=None, timeout=3)
    assert_gone([int(Path(f"{marker}.{r}").read_text()) for r in range(2)])


def test_an_ended_local_job_ends_at_once_with_its_ranks():
    """Ending a local job (a timeout, Ctrl-C) kills mpiexec.gforker's process group with SIGKILL, as hydra's proxies
    kill their ranks.  Under SIGTERM, gforker would take each rank's death for an abort and sleep a second per rank
    before exiting (then with 0, having reported "signaled with Terminated")."""
    import signal

    from ccdsl.executor.mpi import _LocalProcess, local_command, local_env

    command = local_command(1, ["sh", "-c", "echo up; exec sleep 120"])
    assert command.gforker
    job = _LocalProcess(list(command.argv), local_env(dict(os.environ)), command.gforker, command.pipes)
    assert os.read(job.ranks[0], 100) == b"up\n"  # rank 0's own stdout: it runs (an event, not a wait)
    job.kill()
    assert job.proc.returncode == -signal.SIGKILL


def test_options_from_config_maps_every_key():
    from ccdsl.executor.config import Config
    from ccdsl.executor.mpi import options_from_config

    cfg = Config.from_dict({"mpi": {"python": "/opt/py/bin/python", "mpiexec": "/opt/mpi/bin/mpiexec",
                                    "iface": "ens5", "remote_dir": "work", "authorized_keys": "ak",
                                    "install": True, "packages": ["mpich==4.2"], "extra_args": ["-v"],
                                    "timeout": 30},
                            "ssh": {"connect_timeout": 4, "ready_timeout": 50, "host_key_policy": "accept-new"}})
    m, s = options_from_config(cfg, known_hosts="/kh", deploying=True)
    assert (m.python, m.mpiexec, m.iface, m.remote_dir, m.authorized_keys) == (
        "/opt/py/bin/python", "/opt/mpi/bin/mpiexec", "ens5", "work", "ak")
    assert m.install and m.packages == ("mpich==4.2",) and m.extra_args == ("-v",) and m.run_timeout == 30
    assert m.ready_timeout == 50
    assert (s.known_hosts, s.connect_timeout, s.accept_new) == ("/kh", 4, True)
    assert not options_from_config(cfg, known_hosts="/kh")[1].accept_new  # only while deploying
    strict = Config.from_dict({"ssh": {"host_key_policy": "strict"}})
    assert not options_from_config(strict, deploying=True)[1].accept_new
    d, _ = options_from_config(Config())
    assert d.mpiexec is None and d.iface is None and d.local_python is None and d.run_timeout is None


def test_local_python_is_used(tmp_path):
    from ccdsl.executor.mpi import MpiOptions

    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexport CCDSL_TEST_WRAPPED=yes\nexec {sys.executable} \"$@\"\n")
    wrapper.chmod(0o755)
    launcher = Launcher(local_nodes(2), mode="local", options=MpiOptions(local_python=str(wrapper)))
    assert launcher.run_function(lambda comm: os.environ.get("CCDSL_TEST_WRAPPED"), stream=None) == "yes"


CHILD = SLEEPER + """
import sys
from ccdsl.executor.model import Node
from ccdsl.executor.mpi import Launcher
nodes = [Node(i, "worker", f"local-{i}", "local") for i in range(2)]
Launcher(nodes, mode="local").run_function(sleeper, (sys.argv[1],))
"""


def test_killed_ccdsl_leaves_no_local_job_behind(tmp_path):
    kill_launcher_and_check_ranks_end(CHILD, [str(tmp_path / "pid")], tmp_path / "pid", ranks=2)


def test_error_reaches_us_even_when_the_rank_has_no_stderr():
    """The record a failing rank leaves in a file is enough (MPI_Abort can end a job before stderr is forwarded)."""
    def silent_failure(comm):
        if comm.rank == 1:
            os.close(2)
            raise ValueError("said nothing")
        comm.Barrier()

    with pytest.raises(RankError, match=r"rank 1 .*ValueError: said nothing"):
        Launcher(local_nodes(2), mode="local").run_function(silent_failure, stream=None, timeout=60)


def test_the_failing_rank_is_named_before_the_ranks_its_abort_interrupted():
    """On MPI_Abort, mpiexec.gforker interrupts the other ranks: their KeyboardInterrupt records come along with
    the failing rank's, whose error is the one raised (whatever the ranks' order)."""
    import base64
    import json

    from ccdsl.executor.mpi import _Output

    def record(rank: int, kind: str, message: str) -> tuple[str, str]:
        info = {"rank": rank, "type": kind, "message": message, "traceback": f"Traceback: {kind}"}
        return "error", base64.b64encode(json.dumps(info).encode()).decode()

    out = _Output(None)
    out.records += [record(0, "KeyboardInterrupt", ""), record(2, "KeyboardInterrupt", ""),
                    record(1, "ValueError", "said nothing")]
    with pytest.raises(RankError, match=r"^rank 1 on this machine raised ValueError: said nothing \(and 2 more"):
        Launcher(local_nodes(3), mode="local")._raise_rank_error(out)
    out = _Output(None)
    out.records += [record(1, "KeyboardInterrupt", "")]  # an interrupt alone is still said
    with pytest.raises(RankError, match=r"^rank 1 on this machine raised KeyboardInterrupt"):
        Launcher(local_nodes(3), mode="local")._raise_rank_error(out)
