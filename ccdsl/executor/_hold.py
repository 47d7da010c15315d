"""What a rank of a local job starts with: ``python -I -S _hold.py [--output FDS] PROGRAM [ARGS...]`` leaves a process
holding the rank's stdout until ``mpiexec.gforker`` has reaped the rank, sends the rank's output to ``FDS`` (see
:func:`direct_output`), then becomes PROGRAM (``exec``: same process, so gforker sees the program's exit status and
signals as before).  ``python [FLAGS] _hold.py [--output FDS] --run SCRIPT [ARGS...]`` does the same for a Python
script, which it runs in this interpreter as ``__main__`` (one python started per rank, not two).

Why: gforker leaves its I/O loop once every rank's stdout, stderr and PMI socket are closed, then waits for the
ranks with ``MPIE_WaitForProcesses(&pUniv, 2)`` (MPICH's src/pm/util/process.c), whose loop sets its count of live
ranks to 0 once, before the loop, and only adds to it::

    nactive = 0;
    do {
        ... if (pState[i].status != PROCESS_GONE && pState[i].pid > 0) nactive++; ...
    } while (nactive > 0 && TimeoutGetRemaining() > 0);

A process's files are closed before its parent is signalled (the kernel's exit closes them, then notifies), so
gforker often sees the last rank's pipes close before its SIGCHLD handler marked the rank gone; the loop then spins
on one core until ``time()`` has passed two whole seconds: every such job ends 1 to 2 s late.  Holding a rank's
stdout until the rank is reaped (its SIGCHLD handled: gforker reaps in the handler) means the loop starts with every
rank gone, and gforker exits at once.

The holder is a grandchild (double fork): no child of the program, which may wait for its own children.  It ignores
SIGINT, SIGTERM and SIGHUP, so that ending the job's process group (``stop_engines``, a timeout) ends the ranks
first and the holders after them; SIGKILL ends it like the rest.  Stdlib only, no ccdsl import: it starts before
every rank."""

from __future__ import annotations

import os
import select
import signal
import sys
import time

REAP_FAIL_SAFE = 10.0  # seconds a holder waits for its exited rank to be reaped (gforker stuck or gone) before it
# lets go anyway: the job then ends as late as without a holder, not never


def hold_stdout() -> None:
    """Leave a process holding this process's stdout until this process has exited and been reaped.  Without pidfds
    (Linux before 5.3) nothing is held: the job runs, gforker may end it 1-2 s late."""
    try:
        me = os.pidfd_open(os.getpid())  # this process, also once it is the program (exec keeps the pid)
    except (AttributeError, OSError):
        return
    middle = os.fork()
    if middle == 0:
        try:
            if os.fork() == 0:
                _hold(me)
        finally:
            os._exit(0)
    os.close(me)
    os.waitpid(middle, 0)


def _hold(rank: int) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    os.close(0)  # every file but stdout (what gforker waits on) and the pidfd
    os.closerange(2, rank)
    os.closerange(rank + 1, os.sysconf("SC_OPEN_MAX"))
    select.select([rank], [], [])  # readable once the rank has exited
    give_up, pause = time.monotonic() + REAP_FAIL_SAFE, 0.0002
    while time.monotonic() < give_up:
        try:
            signal.pidfd_send_signal(rank, 0)  # succeeds while the rank is a zombie: not reaped yet
        except ProcessLookupError:
            return
        time.sleep(pause)
        pause = min(2 * pause, 0.05)


def direct_output(fds: list[int]) -> None:
    """This rank's stdout and stderr straight to the files ccdsl gave the job (``fds``: one pair for every rank, or
    a pair per rank, picked by ``PMI_RANK``), not through gforker: its relay ends a rank's output at the first byte
    above 0x7f (``IOLabelWriteLine``, MPICH's src/pm/util/labelout.c, compares what ``fputc`` returns, an unsigned
    char, with the byte read as a signed char, takes the difference for an error and closes the pipe)."""
    rank = int(os.environ.get("PMI_RANK", "0"))
    out, err = fds[2 * rank:2 * rank + 2] if len(fds) > 2 else fds
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in set(fds) - {1, 2}:
        os.close(fd)


def main(argv: list[str]) -> None:
    outputs = [int(fd) for fd in argv[1].split(",")] if argv[:1] == ["--output"] else []
    argv = argv[2:] if outputs else argv
    hold_stdout()  # first: the holder keeps gforker's pipe, which the rank's stdout is until direct_output
    if outputs:
        direct_output(outputs)
    if argv[:1] == ["--run"]:
        import runpy

        sys.argv = argv[1:]
        runpy.run_path(argv[1], run_name="__main__")
        return
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # as gforker leaves it; SIGPIPE stays ignored, as gforker sets it
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:  # in gforker's words (mpi._Output reads them as gforker's own)
        sys.stderr.write(f"Error in system call mpiexec: {os.strerror(exc.errno or 0)}\n"
                         f"mpiexec could not exec {argv[0]}\n")
        sys.stderr.flush()
        os._exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
