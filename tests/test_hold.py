"""``_hold.py``, what every rank of a local gforker job starts with: the rank's stdout stays open until the rank has
been reaped, so that gforker's wait for its ranks starts with all of them gone (else it spins 1-2 s: see the module).

Here this test plays gforker: it starts a program under ``_hold.py`` with stdout on a pipe, lets it become a zombie
without reaping it, and looks at the pipe; then reaps it and reads the pipe to its end."""

from __future__ import annotations

import os
import select
import subprocess
import sys

import pytest

from ccdsl.executor.mpi import _HOLD_FILE


def start(*program: str, run: bool = False) -> tuple[int, int]:
    """(pid, read end of its stdout) of ``_hold.py PROGRAM`` (``--run``: a script in the same python), not reaped
    by anything but this test."""
    read, write = os.pipe()
    argv = ([sys.executable, str(_HOLD_FILE), "--run", *program] if run
            else [sys.executable, "-I", "-S", str(_HOLD_FILE), *program])
    pid = os.posix_spawn(argv[0], argv, dict(os.environ), file_actions=[(os.POSIX_SPAWN_DUP2, write, 1)])
    os.close(write)
    return pid, read


def exited_unreaped(pid: int) -> None:
    """Wait (an event, not a time) until ``pid`` has exited, leaving it a zombie."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def drain_now(fd: int) -> tuple[bytes, bool]:
    """What the pipe holds at this instant, and whether it is at its end (every writer gone)."""
    out = b""
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return out, True
        out += chunk
    return out, False


def read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 1 << 16):
        out += chunk
    os.close(fd)
    return out


@pytest.mark.parametrize("run", [False, True])
def test_the_stdout_of_a_rank_stays_open_until_the_rank_is_reaped(run, tmp_path) -> None:
    if run:
        script = tmp_path / "prog.py"
        script.write_text("import sys\nprint('out', sys.argv[1:])\nsys.exit(3)\n")
        pid, out = start(str(script), "a", run=True)
    else:
        pid, out = start("sh", "-c", "echo out; exit 3")
    exited_unreaped(pid)
    # the program closed its stdout when it exited; the holder keeps it open while the program is a zombie (without
    # it, gforker would see the end of the rank's output here and wait for the rank 1-2 s, spinning)
    printed, ended = drain_now(out)
    assert not ended
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3  # the program's status: _hold.py became the program
    printed += read_all(out)  # the holder lets go once the rank is reaped
    assert printed == (b"out ['a']\n" if run else b"out\n")


def test_the_holder_is_no_child_of_the_program() -> None:
    """A program that waits for all its children (a shell's ``wait``) must not wait for its holder."""
    check = ("import os, sys\ntry:\n    os.waitpid(-1, os.WNOHANG)\nexcept ChildProcessError:\n    sys.exit(3)\n"
             "sys.exit(4)\n")
    pid, out = start(sys.executable, "-c", check)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    assert read_all(out) == b""


def test_a_program_that_cannot_start_is_reported_in_gforkers_words() -> None:
    # stdout not read: its holder lets go only once the process is reaped, which run() does after reading
    proc = subprocess.run([sys.executable, "-I", "-S", str(_HOLD_FILE), "no-such-program-here"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["Error in system call mpiexec: No such file or directory",
                                        "mpiexec could not exec no-such-program-here"]
