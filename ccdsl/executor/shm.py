"""Stale MPICH shared-memory segments on this machine, removed before a local job starts.

MPICH's ranks on one machine share a POSIX segment named ``/dev/shm/mpich_shm_<hash>_<n>``, where the hash comes
from the job's PMI name.  Under ``mpiexec.gforker``, which local jobs use, that name is made of mpiexec's pid alone
(hydra's adds a random part).  The segment is removed at ``MPI_Finalize``; a job that is
killed first (Ctrl-C, a timeout, ``stop_engines``, a rank that dies) leaves it behind.  Pids come round again
(``kernel.pid_max`` is 32,768 on many systems), and a later job whose mpiexec gets the same pid finds a segment
of that name already there: its ranks fail in ``MPIDI_POSIX_comm_bootstrap`` with "Out of memory", or wait for
each other for ever.  A long-lived machine that runs many jobs meets this sooner or later.

So before a local job starts, segments of this user that no live process has mapped and that are older than
:data:`MIN_AGE` are removed.  Both conditions are needed: a segment just created is mapped by its creator at
once, and the age covers the instant between its creation and that mapping.  The common case (no stale segment)
costs one directory listing.
"""

from __future__ import annotations

import logging
import os
import time

log = logging.getLogger(__name__)

SHM_DIR = "/dev/shm"
PREFIX = "mpich_shm_"
MIN_AGE = 60.0  # seconds


def _mapped(folder: str) -> set[str]:
    """The files under ``folder`` that any process we may read has mapped (``/proc/PID/maps``).  A process we may
    not read (another user's) cannot map our segments, which are created with mode 0600."""
    found: set[str] = set()
    prefix = folder.rstrip("/") + "/"
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
                for line in f:
                    at = line.find(prefix)
                    if at >= 0:
                        found.add(line[at:].rstrip("\n").removesuffix(" (deleted)"))
        except OSError:  # gone, or not ours
            continue
    return found


def sweep(folder: str = SHM_DIR, prefix: str = PREFIX, min_age: float = MIN_AGE) -> list[str]:
    """Remove this user's segments under ``folder`` named ``prefix*`` that are older than ``min_age`` seconds and
    mapped by no process; return their paths.  Never raises: a segment that cannot be removed is left, and the
    job that meets it reports its own error."""
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return []
    now, uid = time.time(), os.getuid()
    old = []
    for name in names:
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid == uid and now - st.st_mtime > min_age:
            old.append(path)
    if not old:
        return []
    in_use = _mapped(folder)
    removed = []
    for path in old:
        if path in in_use:
            continue
        try:
            os.unlink(path)
        except OSError:
            continue
        removed.append(path)
    if removed:
        log.info("removed %d shared-memory segment(s) left by killed MPI jobs", len(removed))
    return removed
