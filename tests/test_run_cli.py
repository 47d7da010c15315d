"""``ccdsl run`` as a new user types it (issue 19, B1, B10, B11): its own options are its own (an unknown one is
a usage error, never handed to mpiexec), ``--json`` prints one object per run, a program the ranks cannot start is
one ccdsl line, and a run killed with SIGKILL leaves no folder behind once the next run has started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mpi4py")

ROOT = Path(__file__).resolve().parent.parent


def ccdsl(*argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ccdsl", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """A local cluster of 4 (examples/local.ccc) deployed with the CLI, and the environment that finds it; a private
    temporary directory, so that the runs' folders there are this module's alone."""
    d = tmp_path_factory.mktemp("run-cli")
    (d / "tmp").mkdir()
    env = {**os.environ, "CCDSL_DATA_DIR": str(d / "data"), "TMPDIR": str(d / "tmp")}
    env.pop("CCDSL_CONFIG", None)
    proc = ccdsl("deploy", "examples/local.ccc", "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    handle = proc.stdout.strip()
    yield handle, env, d / "tmp"
    ccdsl("terminate", handle, env=env)


@pytest.mark.parametrize("argv,unknown", [
    (["H", "-n", "8", "--", "hostname"], "-n"),  # was: mpiexec's "duplicate setting: n"
    (["H", "--np", "2", "--bogus", "--", "hostname"], "--bogus"),
    (["H", "-l", "hostname"], "-l"),
])
def test_unknown_options_are_ccdsl_usage_errors(local, argv, unknown) -> None:
    handle, env, _ = local
    proc = ccdsl("run", *[handle if a == "H" else a for a in argv], env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("usage: ccdsl run ")
    assert f"unknown option {unknown!r} before the program" in proc.stderr and "--np N" in proc.stderr
    assert "mpiexec" not in proc.stderr and "HYD" not in proc.stderr


@pytest.mark.parametrize("before", [True, False])
def test_json_gives_the_exit_code_and_each_ranks_output(local, before) -> None:
    handle, env, _ = local
    # python -u writes 'out', ' 1' and the newline apart: ranks' lines still come whole (the rank bootstrap writes
    # one line at a time), each under its rank
    code = ("import sys; from mpi4py import MPI; r = MPI.COMM_WORLD.rank; print('out', r); print('err', r, "
            "file=sys.stderr); sys.exit(3 if r == 1 else 0)")
    argv = ["--json", handle] if before else [handle, "--json"]  # README: "Add --json for scripts"
    proc = ccdsl("run", *argv, "--np", "3", "--", "python", "-u", "-c", code, env=env)
    data = json.loads(proc.stdout)
    assert proc.returncode == data["rc"] != 0
    assert data["handle"] == handle and data["np"] == 3 and data["command"][:2] == ["python", "-u"]
    assert [(r["rank"], r["stdout"], r["stderr"]) for r in data["ranks"]] == [
        (r, [f"out {r}"], [f"err {r}"]) for r in range(3)]


def test_json_of_any_program(local) -> None:
    handle, env, _ = local
    proc = ccdsl("run", handle, "--json", "--", "sh", "-c", "echo out $PMI_RANK; echo err $PMI_RANK >&2", env=env)
    data = json.loads(proc.stdout)
    assert proc.returncode == data["rc"] == 0 and data["np"] == 4
    assert [(r["rank"], r["stdout"], r["stderr"]) for r in data["ranks"]] == [
        (r, [f"out {r}"], [f"err {r}"]) for r in range(4)]


def test_json_of_a_python_script_on_every_slot(local) -> None:
    handle, env, _ = local
    proc = ccdsl("run", handle, "--json", "--", "python", "examples/rank_sum.py", "--n", "10", env=env)
    data = json.loads(proc.stdout)
    assert proc.returncode == data["rc"] == 0 and data["np"] == 4 and len(data["ranks"]) == 4
    assert any(r["stdout"] for r in data["ranks"])
    assert data["mpiexec"] == {"stdout": [], "stderr": []}


def test_a_program_the_ranks_cannot_start_is_one_ccdsl_line(local) -> None:
    handle, env, _ = local
    proc = ccdsl("run", handle, "--", "nonexistentcmd", "--flag", env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == [
        "error: cannot run 'nonexistentcmd' on this machine: No such file or directory (it must be a program on "
        "its PATH, or a path relative to the working folder)"]


def start_run(handle: str, env: dict, code: str) -> subprocess.Popen:
    """``ccdsl run`` of ``python -u -c code`` on one rank, its output on a pipe: the test reads the line the rank
    prints when it is under way (an event, no sleeping)."""
    return subprocess.Popen([sys.executable, "-m", "ccdsl", "run", handle, "--np", "1", "--", "python", "-u", "-c",
                             code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_dirs(tmp: Path) -> list[Path]:
    return [p for p in tmp.iterdir() if p.name.startswith("ccdsl-run-")]


def test_a_killed_run_leaves_no_folder_once_the_next_run_started(local) -> None:
    handle, env, tmp = local
    child = start_run(handle, env, "import time; print('started'); time.sleep(300)")
    try:
        assert child.stdout.readline() == "started\n", child.stderr.read()
        assert len(run_dirs(tmp)) == 1  # the run's folder, while it runs
        child.send_signal(signal.SIGKILL)  # no finally, no clean-up
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
    assert len(run_dirs(tmp)) == 1  # what the old code left for good
    proc = ccdsl("run", handle, "--np", "1", "--", "python", "-c", "print('next')", env=env)
    assert proc.returncode == 0 and proc.stdout == "next\n"
    assert run_dirs(tmp) == []


def test_a_running_run_keeps_its_folder_while_another_run_starts(local, tmp_path) -> None:
    handle, env, tmp = local
    fifo = tmp_path / "release"
    os.mkfifo(fifo)
    child = start_run(handle, env, f"print('started'); open({str(fifo)!r}).read(); print('first')")
    try:
        assert child.stdout.readline() == "started\n", child.stderr.read()
        proc = ccdsl("run", handle, "--np", "1", "--", "python", "-c", "print('second')", env=env)
        assert proc.returncode == 0 and proc.stdout == "second\n"
        assert len(run_dirs(tmp)) == 1  # the first run's, kept: it is still running
        with open(fifo, "w") as f:  # lets the first rank go on
            f.write("go")
        out, err = child.communicate(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0 and out == "first\n", err
    assert run_dirs(tmp) == []
