"""Stale MPICH segments are removed before a local job starts, and nothing else is (ccdsl.executor.shm).

Under mpiexec.gforker (which local jobs use) MPICH names a job's segment after mpiexec's pid alone, so a segment
a killed job left makes a later job with the same pid fail ("Out of memory" in MPIDI_POSIX_comm_bootstrap) or
hang.  The last test shows that clash with a real job: in a new pid namespace mpiexec always gets the same pid,
hence the same segment name."""

from __future__ import annotations

import mmap
import os
import shutil
import subprocess
import sys
import time

import pytest

from ccdsl.executor import shm

OLD = time.time() - 3600


def _file(folder, name, age=OLD):
    path = folder / name
    path.write_bytes(b"\0" * 4096)
    os.utime(path, (age, age))
    return str(path)


def test_an_old_unmapped_segment_is_removed_and_the_rest_are_kept(tmp_path):
    stale = _file(tmp_path, "mpich_shm_1234abcd_0")
    fresh = _file(tmp_path, "mpich_shm_5678abcd_0", age=time.time())
    other = _file(tmp_path, "ucx_shm_posix_0")
    mapped = _file(tmp_path, "mpich_shm_9abcdef0_0")
    with open(mapped, "r+b") as f, mmap.mmap(f.fileno(), 4096) as view:  # a live job's segment
        assert shm.sweep(str(tmp_path)) == [stale]
        view[0] = 1
    os.utime(mapped, (OLD, OLD))  # the write above made it new
    assert sorted(os.listdir(tmp_path)) == sorted(os.path.basename(p) for p in (fresh, other, mapped))
    assert shm.sweep(str(tmp_path)) == [mapped]  # unmapped now, and old


def test_a_missing_folder_is_no_error(tmp_path):
    assert shm.sweep(str(tmp_path / "nothing")) == []


def _job_in_new_pid_namespace(timeout):
    """A 2-rank gforker job whose mpiexec gets the same pid every time (it runs in a new pid namespace); returns
    the segment it mapped."""
    bin_dir = os.path.dirname(sys.executable)
    prog = ("from mpi4py import MPI\nc = MPI.COMM_WORLD\n"
            "if c.rank == 0:\n"
            "    print(sorted({l.split()[-1] for l in open('/proc/self/maps') if 'mpich_shm' in l})[0])\n"
            "c.Barrier()\n")
    return subprocess.run(["unshare", "--pid", "--fork", "--kill-child", "--mount-proc",
                           os.path.join(bin_dir, "mpiexec.gforker"), "-n", "2", sys.executable, "-c", prog],
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="needs root and unshare for a pid namespace")
def test_a_left_segment_with_the_next_jobs_name_is_swept_and_the_job_runs():
    first = _job_in_new_pid_namespace(timeout=300)
    assert first.returncode == 0, first.stderr
    name = first.stdout.strip().splitlines()[-1]
    assert name.startswith(f"{shm.SHM_DIR}/{shm.PREFIX}")
    with open(name, "wb") as f:  # what a killed job leaves: the segment, unmapped, older than a minute
        f.write(b"\0" * 4096)
    os.chmod(name, 0o600)
    os.utime(name, (OLD, OLD))
    try:
        assert name in shm.sweep()
        again = _job_in_new_pid_namespace(timeout=300)
        assert again.returncode == 0 and again.stdout.strip().splitlines()[-1] == name, again.stderr
    finally:
        if os.path.exists(name):
            os.unlink(name)
