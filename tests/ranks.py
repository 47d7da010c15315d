"""Helpers for tests that watch MPI rank processes: rank pids left in files, "are they gone?", and "SIGKILL the
launching ccdsl process and check its ranks die with it"."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# A function for ``run_function`` (paste into a child program): it records the rank's pid atomically in
# ``<path>.<rank>``, then sleeps until killed.
SLEEPER = '''
def sleeper(comm, path):
    import os, time
    with open(f"{path}.{comm.rank}.tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(f"{path}.{comm.rank}.tmp", f"{path}.{comm.rank}")
    time.sleep(300)
'''


def alive(pid: int) -> bool:
    """The process exists and is not a zombie.  A process that ends between the open and the read of its stat file
    gives ESRCH (ProcessLookupError) rather than ENOENT: gone either way."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def describe(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().split()
        return f"{pid} state {stat[2]} parent {stat[3]}"
    except (FileNotFoundError, ProcessLookupError):
        return f"{pid} gone"


def assert_gone(pids: list[int], within: float = 120.0) -> None:
    """Every process in ``pids`` ends (``within`` seconds is a fail-safe for a loaded machine, not a measure)."""
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids):
        if time.monotonic() > deadline:
            pytest.fail(f"processes survived: {[describe(p) for p in pids if alive(p)]}")
        time.sleep(0.1)


def read_pids(prefix: Path | str, ranks) -> list[int]:
    return [int(Path(f"{prefix}.{r}").read_text()) for r in ranks]


def kill_launcher_and_check_ranks_end(child_program: str, args: list[str], pid_prefix: Path, ranks: int) -> None:
    """Start ``child_program`` (which runs :data:`SLEEPER` on ``ranks`` ranks writing pids to ``pid_prefix``),
    wait until every rank runs, SIGKILL the child, and require every rank to end within 30 s."""
    child = subprocess.Popen([sys.executable, "-c", child_program, *args])
    try:
        deadline = time.monotonic() + 120  # a fail-safe: the wait ends when every rank wrote its pid
        while not all(Path(f"{pid_prefix}.{r}").exists() for r in range(ranks)):
            assert time.monotonic() < deadline and child.poll() is None, "the run did not start"
            time.sleep(0.05)
        time.sleep(0.3)
        pids = read_pids(pid_prefix, range(ranks))
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert_gone(pids)
    finally:
        if child.poll() is None:
            child.kill()
