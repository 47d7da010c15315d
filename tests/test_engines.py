"""Persistent engines (issue 9, part 2): one ipyparallel engine per MPI rank, started by the cluster's mpiexec,
reached through SSH; on the local provider and on SSH hosts in network namespaces (PeerWorkers, ManagerWorkers).

Engines take seconds to start, so each module-scoped cluster starts them once and the tests that only use them
share it; the lifecycle tests (restart, a dead rank, terminate) come last in each group."""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ccdsl
from ccdsl.errors import ExecutionError
from fixtures_netns import netns_hosts
from test_workdir import make_project, ssh_deploy, ssh_settings

pytest.importorskip("mpi4py")
pytest.importorskip("ipyparallel")

TUTORIAL = "from mpi4py import MPI; comm = MPI.COMM_WORLD; rank_sum = comm.reduce(comm.rank, root=0)"


@pytest.fixture(scope="module")
def module_data(tmp_path_factory):
    """A data dir (state DB, connection files) shared by the module's tests, and a project folder."""
    d = tmp_path_factory.mktemp("engines")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CCDSL_DATA_DIR", str(d / "data"))
        mp.delenv("CCDSL_CONFIG", raising=False)
        yield d, make_project(d / "proj")


def ranks_and_nodes(rc):
    """engine id -> (MPI rank, host address) as each engine sees itself."""
    rc[:].execute("import subprocess; from mpi4py import MPI; _ip = subprocess.run(['hostname', '-I'], "
                  "capture_output=True, text=True).stdout.split(); me = (MPI.COMM_WORLD.rank, _ip[0] if _ip else '')")
    return dict(zip(rc.ids, rc[:].pull("me")))


def second_process(data: Path, handle: str, code: str, settings: dict | None = None) -> dict:
    """Run ``code`` in another python (it has ``rc`` = reconnect(handle).engines() and IPython's %px) and
    return the JSON it prints last."""
    script = textwrap.dedent("""
        import json, sys
        import ccdsl
        from ccdsl.executor.config import Config
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance()
        rc = ccdsl.reconnect(HANDLE, config=CONFIG).engines()
        rc.activate()  # registers %px / %%px in this IPython
    """).replace("HANDLE", repr(handle)).replace(
        "CONFIG", f"Config.from_dict(json.loads({json.dumps(settings)!r}))" if settings else "None",
    ) + textwrap.dedent(code)
    env = {**os.environ, "CCDSL_DATA_DIR": str(data / "data"), "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_everything_on_engines(c, rc, size: int, addresses: list[str] | None):
    """The seed's tutorial with engines, state across calls, an allreduce, the folder's module and data."""
    assert rc.ids == list(range(size))
    seen = ranks_and_nodes(rc)
    assert {i: r for i, (r, _) in seen.items()} == {i: i for i in range(size)}  # engine id == MPI rank
    if addresses is not None:
        assert [a for _, a in (seen[i] for i in range(size))] == addresses
    rc[:].execute(TUTORIAL, block=True)
    assert rc[0].pull("rank_sum") == sum(range(size))  # @fetchfrom ranks(cluster)[0] rank_sum; blocks by default
    rc[:].execute("counter = comm.rank * 10")
    rc[:].execute("counter += 1")  # globals persist between calls
    assert rc[:].pull("counter") == [r * 10 + 1 for r in range(size)]
    rc[:].execute("total = comm.allreduce(counter)")
    assert rc[:].pull("total") == [sum(r * 10 + 1 for r in range(size))] * size
    folder = c._workdir_on_nodes()
    if folder is None:  # no project folder: the engines start in the cluster directory of their node
        rc[:].execute("import os; here = os.getcwd()")
        assert rc[:].pull("here") == [c.nodes()[-1].extra.get("ccdsl_dir")] * size
        return
    rc[:].execute("import os, pkg.mod; here = (os.getcwd(), pkg.mod.X, open('data.txt').read().strip())")
    assert rc[:].pull("here") == [(folder, 41, "hello")] * size


def no_engine_processes(pids_of, handle: str) -> list[str]:
    """Command lines of processes that belong to the cluster (its engines, controller, ranks, mpiexec)."""
    left = []
    for pid in pids_of():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if handle in cmd:
            left.append(cmd)
    return left


# -- local provider -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def local4(module_data):
    _data, proj = module_data
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=4), workdir=proj)
    yield c
    if c.status != "terminated":
        c.terminate()


def test_local_engines_tutorial_state_allreduce_folder(local4):
    rc = local4.engines()
    check_everything_on_engines(local4, rc, 4, None)
    assert local4.engines() is rc  # the same client while the engines run
    saved = Path(os.environ["CCDSL_DATA_DIR"]) / "engines" / local4.handle / "client.json"
    assert saved.stat().st_mode & 0o777 == 0o600


def test_local_engine_tasks_leave_activity_markers(local4):
    """The hook of the autostop watchdog: engines touch their marker while they work, not while idle."""
    import time

    from ccdsl.executor import engines

    rc = local4.engines()
    marks = Path(engines.activity_dir(local4))
    before = time.time()
    time.sleep(0.05)
    rc[:].execute("y = 1")
    stamps = {p.name: p.stat().st_mtime for p in marks.iterdir() if not p.name.endswith(".busy")}
    assert len(stamps) == 4 and all(name.startswith("engine-") for name in stamps)
    assert all(t >= before for t in stamps.values())
    time.sleep(1.1)  # idle engines leave them alone, and no '<pid>.busy' flag stays behind
    assert {p.name: p.stat().st_mtime for p in marks.iterdir()} == stamps


def test_local_changed_file_is_seen_by_engines(local4, module_data):
    _, proj = module_data
    (proj / "data.txt").write_text("again\n")
    local4.sync()
    rc = local4.engines()
    rc[:].execute("text = open('data.txt').read().strip()")
    assert rc[:].pull("text") == ["again"] * 4
    (proj / "data.txt").write_text("hello\n")
    local4.sync()


def test_local_reconnect_from_another_process_and_px(local4, module_data):
    data, _ = module_data
    rc = local4.engines()
    rc[:].execute("mark = 'from the first process'")
    got = second_process(data, local4.handle, """
        shell.run_line_magic("px", "mark2 = mark + ' and %px'")
        shell.run_cell_magic("px", "", "mark3 = comm.rank")
        print(json.dumps([rc.ids, rc[0].pull("mark2"), rc[:].pull("mark3")]))
    """)
    assert got == [[0, 1, 2, 3], "from the first process and %px", [0, 1, 2, 3]]


def test_local_restart_gives_fresh_engines_and_a_dead_rank_is_named(local4):
    from ccdsl.executor import engines

    rc = local4.engines()
    rc[:].execute("kept = 1")
    local4.restart()
    rc = local4.engines()
    assert rc.ids == [0, 1, 2, 3]
    with pytest.raises(Exception, match="kept"):  # a NameError from the fresh engines
        rc[0].pull("kept")
    saved = json.loads((engines.state_dir(local4.handle) / "engines.json").read_text())
    rc[2].execute("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", block=False)
    with pytest.raises(ExecutionError, match="a rank died on this machine") as info:
        import time

        deadline = time.monotonic() + 120  # a fail-safe: ends on the error
        while time.monotonic() < deadline:
            local4.engines()
            time.sleep(0.2)
    assert "stop_engines" in info.value.hint and "(exit status 9)" in str(info.value)
    local4.stop_engines()
    assert not engines._pid_alive(saved["mpiexec_pid"]) and not engines._pid_alive(saved["controller_pid"])
    assert local4.engines().ids == [0, 1, 2, 3]  # fresh ones again


def test_local_engines_json_that_is_no_object_is_no_record(local4):
    """An engines.json that is JSON but not an object (a foreign or hand-edited file) is no record: engines() starts
    fresh engines, as without the file.  Before, it failed with a TypeError (the file read as a dict)."""
    from ccdsl.executor import engines

    local4.stop_engines()
    (engines.state_dir(local4.handle, create=True) / "engines.json").write_text("[1, 2]")
    assert local4.engines().ids == [0, 1, 2, 3]


def test_local_interrupt_stops_engines_and_terminate_leaves_no_process(local4):
    from ccdsl.executor import engines

    local4.engines()
    saved = json.loads((engines.state_dir(local4.handle) / "engines.json").read_text())
    assert saved["gforker"] is True  # the record says how to end the job (see the test below)
    local4.interrupt()
    assert not engines._pid_alive(saved["mpiexec_pid"]) and not engines._pid_alive(saved["controller_pid"])
    local4.resume()
    local4.engines()
    saved = json.loads((engines.state_dir(local4.handle) / "engines.json").read_text())
    local4.terminate()
    assert not engines._pid_alive(saved["mpiexec_pid"]) and not engines._pid_alive(saved["controller_pid"])
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert local4.handle not in ps
    assert not engines.state_dir(local4.handle).exists()


def test_local_stop_kills_a_recorded_process_that_is_already_exiting(module_data):
    """A recorded process that is exiting (its memory, command line included, already released; here a zombie
    whose group still holds a child) is still the engines' process: its group is killed.  Before, the empty
    command line made it "no longer theirs": nothing was killed nor waited for, and right after ``interrupt()``
    the engines' mpiexec could still be alive (issue 19)."""
    from ccdsl.executor import engines

    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1))
    controller = subprocess.Popen(["sleep", "600"], start_new_session=True)
    leader = subprocess.Popen(["sh", "-c", "sleep 600 & echo $!; read _"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, start_new_session=True)
    recorded = {str(p): engines.identity(p) for p in (controller.pid, leader.pid)}
    member = int(leader.stdout.readline())  # the group's other process, as a rank is in mpiexec's
    member_ended = os.pidfd_open(member)  # readable once it has exited: an event
    try:
        leader.stdin.close()  # sh reads end of file and exits; unreaped, it stays a zombie
        os.waitid(os.P_PID, leader.pid, os.WEXITED | os.WNOWAIT)
        assert engines.identity(leader.pid)[1] == ""  # what an exiting process shows
        d = engines.state_dir(c.handle, create=True)
        (d / "engines.json").write_text(json.dumps({
            "mode": "local", "size": 1, "controller_pid": controller.pid, "mpiexec_pid": leader.pid,
            "identity": recorded, "log": str(d / "engines.log")}))
        c.stop_engines()
        assert not engines._pid_alive(controller.pid) and not engines._pid_alive(leader.pid)
        assert select.select([member_ended], [], [], 60)[0], "the exiting process' group was not killed"
    finally:
        os.close(member_ended)
        for p in (controller.pid, member):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, 9)
        controller.wait()
        leader.wait()
        c.terminate()


def test_local_stop_ends_a_gforker_job_with_sigkill(module_data, tmp_path):
    """The engines' job under mpiexec.gforker is ended with SIGKILL, as hydra's proxies end their ranks: under
    SIGTERM, gforker would take each rank's death for an abort and sleep a second per rank (past the 3 s grace with
    4 ranks).  Here the recorded job is a process group whose leader says when it sees a SIGTERM."""
    from ccdsl.executor import engines

    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1))
    seen = tmp_path / "term"
    controller = subprocess.Popen(["sleep", "600"], start_new_session=True)
    job = subprocess.Popen(["sh", "-c", f"trap 'echo TERM > {seen}; exit 0' TERM; echo up; sleep 600 & wait"],
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert job.stdout.readline() == "up\n"  # its command line is set up by now
        d = engines.state_dir(c.handle, create=True)
        (d / "engines.json").write_text(json.dumps({
            "mode": "local", "size": 1, "controller_pid": controller.pid, "mpiexec_pid": job.pid, "gforker": True,
            "identity": {str(p): engines.identity(p) for p in (controller.pid, job.pid)},
            "log": str(d / "engines.log")}))
        c.stop_engines()  # (which reaps the job: it is a child of this process)
        assert not engines._pid_alive(job.pid) and not seen.exists()
    finally:
        for p in (controller, job):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 9)
            p.wait()
        c.terminate()


# -- SSH hosts ----------------------------------------------------------------------------------------------------
def all_pids(netns_hosts):
    return lambda: [p for i in range(netns_hosts.count) for p in netns_hosts.pids(i)]


@pytest.fixture(scope="module")
def peers(netns_hosts, module_data):
    _, proj = module_data
    c = ssh_deploy(netns_hosts, workdir=proj)
    yield c
    if c.status != "terminated":
        c.terminate()


@pytest.mark.netns
def test_ssh_engines_tutorial_state_allreduce_folder(peers, netns_hosts):
    rc = peers.engines()
    check_everything_on_engines(peers, rc, 3, [h.address for h in netns_hosts.hosts[:3]])
    # the controller's client ports listen on node 0's loopback only; this machine reaches them through SSH
    info = json.loads((Path(os.environ["CCDSL_DATA_DIR"]) / "engines" / peers.handle / "client.json").read_text())
    assert info["interface"] == "tcp://127.0.0.1"
    ss = subprocess.run(["ip", "netns", "exec", netns_hosts.hosts[0].netns, "ss", "-Hltn"], capture_output=True,
                        text=True).stdout
    assert f"127.0.0.1:{info['mux']}" in ss and f"{netns_hosts.hosts[0].address}:{info['mux']}" not in ss


@pytest.mark.netns
def test_ssh_changed_file_and_reconnect_from_another_process(peers, module_data, netns_hosts):
    data, proj = module_data
    (proj / "data.txt").write_text("again\n")
    peers.sync()
    rc = peers.engines()
    rc[:].execute("text = open('data.txt').read().strip()")
    assert rc[:].pull("text") == ["again"] * 3
    (proj / "data.txt").write_text("hello\n")
    rc[:].execute("mark = comm.rank + 100")
    got = second_process(data, peers.handle, """
        shell.run_line_magic("px", "mark2 = comm.allreduce(mark)")
        print(json.dumps([rc.ids, rc[1].pull("mark2")]))
    """, ssh_settings(netns_hosts))
    assert got == [[0, 1, 2], 303]


@pytest.mark.netns
def test_ssh_dead_rank_names_its_node_and_terminate_leaves_nothing(peers, netns_hosts):
    import time

    rc = peers.engines()
    rc[2].execute("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", block=False)
    deadline = time.monotonic() + 120  # a fail-safe: ends on the error
    with pytest.raises(ExecutionError, match=rf"a rank died on worker 2 \(host2 at {netns_hosts.hosts[2].address}"):
        while time.monotonic() < deadline:
            peers.engines()
            time.sleep(0.3)
    peers.stop_engines()
    peers.restart()
    assert peers.engines().ids == [0, 1, 2]  # fresh ones after restart
    peers.terminate()
    assert no_engine_processes(all_pids(netns_hosts), peers.handle) == []


@pytest.mark.netns
def test_ssh_manager_workers_engines_without_a_folder(netns_hosts, module_data):
    """The controller and mpiexec on the manager, engines on the workers; no project folder (the engines must
    not start in a directory only the manager has). A second process attaches to the running engines through the
    manager."""
    data, _ = module_data
    c = ssh_deploy(netns_hosts, manager=True)
    try:
        rc = c.engines()
        check_everything_on_engines(c, rc, 3, [h.address for h in netns_hosts.hosts[:3]])
        # the controller runs on the manager (host3), not on a worker
        ps = subprocess.run(["ip", "netns", "pids", netns_hosts.hosts[3].netns], capture_output=True, text=True)
        cmds = [Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace") for p in ps.stdout.split()
                if Path(f"/proc/{p}/cmdline").exists()]
        assert any("ipyparallel.controller" in cmd for cmd in cmds)
        rc[:].execute("mark = comm.rank + 100")
        got = second_process(data, c.handle, """
            shell.run_line_magic("px", "mark2 = comm.allreduce(mark)")
            print(json.dumps([rc.ids, rc[1].pull("mark2")]))
        """, ssh_settings(netns_hosts, manager=True))
        assert got == [[0, 1, 2], 303]
        assert rc[:].pull("mark2") == [303] * 3  # the same engines, seen from the first process too
    finally:
        c.terminate()
    assert no_engine_processes(all_pids(netns_hosts), c.handle) == []


def test_engines_of_two_sessions_then_terminate_leave_stderr_clean(tmp_path):
    """Issue 19 B3: in IPython (where ipyparallel draws progress bars), ``c.engines()``, then
    ``ccdsl.reconnect(h).engines()``, then ``c.terminate()``: no progress bar left at 0/4, and no ZMQError
    tracebacks from the second client when the first one shuts the controller down."""
    script = textwrap.dedent("""
        import ccdsl
        c = ccdsl.deploy(ccdsl.load("examples/local.ccc")["local_cluster"])
        rc = c.engines()
        rc2 = ccdsl.reconnect(c.handle).engines()
        assert rc.ids == rc2.ids == [0, 1, 2, 3]
        c.terminate()
        print("done", c.status)
    """)
    env = {**os.environ, "CCDSL_DATA_DIR": str(tmp_path / "data")}
    env.pop("CCDSL_CONFIG", None)
    proc = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "--quick", "--colors=NoColor", "-c",
                           script], cwd=Path(__file__).resolve().parent.parent, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("done terminated"), proc.stdout + proc.stderr
    assert proc.stderr == ""
