"""Local MPI listens on loopback only (issue 22 item 14): every TCP listener of a local run's and of local engines'
MPI job (mpiexec and its ranks) is on 127.0.0.1 or ::1, never on an address another machine reaches.  Read from
/proc while the job waits on an event.  Hydra's mpiexec binds its control port to every address whatever it is
told, so a local job runs under MPICH's ``mpiexec.gforker``, which listens on nothing itself (the ranks of a run,
on shared memory only, listen on nothing either; the engines' ipyparallel sockets are on 127.0.0.1)."""

from __future__ import annotations

import ipaddress
import json
import os
import threading
import time
from pathlib import Path

import pytest

import ccdsl
from ccdsl.executor.mpi import Launcher
from fixtures_executor import data_dir
from test_mpi_local import local_nodes

pytest.importorskip("mpi4py")
__all__ = ["data_dir"]


def _other_interface() -> bool:
    """Whether this machine has an address besides loopback (else a listener on every address is no exposure the
    test could see)."""
    names = {line.split()[0] for line in Path("/proc/net/route").read_text().splitlines()[1:]}
    if Path("/proc/net/if_inet6").exists():
        names |= {line.split()[-1] for line in Path("/proc/net/if_inet6").read_text().splitlines()}
    return bool(names - {"lo"})


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    return str(ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))))


def listeners(pid: int) -> dict[int, str]:
    """Socket inode -> ``address:port`` of every TCP socket process ``pid`` holds that listens."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    out = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in inodes:  # 0A: LISTEN
                address, port = fields[1].split(":")
                out[int(fields[9])] = f"{_address(address)}:{int(port, 16)}"
    return out


def children(pid: int) -> list[int]:
    """Every descendant of ``pid``."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(stat[1]), []).append(int(name))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def job_listeners(mpiexec: int) -> dict[int, str]:
    """The listeners of mpiexec and of its job (by socket inode)."""
    found = listeners(mpiexec)
    job = children(mpiexec)
    assert job, "mpiexec has no ranks: nothing checked"
    for pid in job:
        try:
            found.update(listeners(pid))
        except OSError:  # ended meanwhile
            continue
    return found


def exposed(mpiexec: int) -> dict[int, str]:
    """The listeners of mpiexec and of its job (by socket inode) on an address other than loopback."""
    return {i: a for i, a in job_listeners(mpiexec).items()
            if not ipaddress.ip_address(a.rsplit(":", 1)[0]).is_loopback}


def wait_for(path: Path, what: str) -> None:
    deadline = time.monotonic() + 120  # a fail-safe for a loaded machine; the wait ends when the file appears
    while not path.exists():
        assert time.monotonic() < deadline, f"{what} did not happen"
        time.sleep(0.05)


def holds(comm, flag):
    """Every rank is up: rank 0 reports its pid, then waits for ``flag + '.go'``."""
    import os
    import time

    comm.Barrier()
    if comm.rank == 0:
        with open(flag + ".tmp", "w") as f:
            f.write(str(os.getpid()))
        os.replace(flag + ".tmp", flag)
    while not os.path.exists(flag + ".go"):
        time.sleep(0.05)
    comm.Barrier()
    return "done"


def _mpiexec_of(rank: int) -> int:
    """The mpiexec above a rank: its ancestor that this process started (hydra has a proxy between them)."""
    while True:
        parent = int(Path(f"/proc/{rank}/stat").read_text().rsplit(")", 1)[1].split()[1])
        if parent == os.getpid():
            return rank
        assert parent > 1, "the rank is not below this process"
        rank = parent


@pytest.mark.skipif(not _other_interface(), reason="this machine has no address but loopback")
def test_the_ranks_of_a_local_run_listen_on_loopback_only(tmp_path):
    flag = tmp_path / "up"
    result: list[object] = []
    run = threading.Thread(target=lambda: result.append(
        Launcher(local_nodes(2), mode="local").run_function(holds, (str(flag),), stream=None)))
    run.start()
    try:
        wait_for(flag, "the ranks' start")
        mpiexec = _mpiexec_of(int(flag.read_text()))
        outside = exposed(mpiexec)
        assert outside == {}, f"the job listens beyond loopback: {sorted(outside.values())}"
        assert job_listeners(mpiexec) == {}  # as the docs say: a run's ranks, on shared memory, listen on nothing
    finally:
        (tmp_path / "up.go").write_text("")
        run.join()
    assert result == ["done"]


@pytest.mark.skipif(not _other_interface(), reason="this machine has no address but loopback")
def test_local_engines_listen_on_loopback_only(data_dir, tmp_path):
    pytest.importorskip("ipyparallel")
    from ccdsl.executor.engines import state_dir

    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2))
    try:
        rc = c.engines()
        rc[:].execute("from mpi4py import MPI; MPI.COMM_WORLD.Barrier()", block=True)  # every rank is up
        saved = json.loads((state_dir(c.handle) / "engines.json").read_text())
        outside = exposed(int(saved["mpiexec_pid"]))
        assert outside == {}, f"the engines' job listens beyond loopback: {sorted(outside.values())}"
        controller = listeners(int(saved["controller_pid"]))
        assert controller and all(a.startswith("127.0.0.1:") for a in controller.values())
    finally:
        c.terminate()


def test_the_docs_say_what_local_jobs_listen_on() -> None:
    """The security section names the launcher and every loopback setting ccdsl gives a local job."""
    from ccdsl.executor.mpi import LOOPBACK_ENV

    docs = (Path(__file__).resolve().parents[1] / "docs" / "clusters" / "index.md").read_text()
    start = docs.index("**Local jobs listen on loopback.**")
    section = " ".join(docs[start:docs.index("\n- **", start)].split())
    assert "`mpiexec.gforker`" in section and "opens no port" in section and "listen on nothing" in section
    for name, value in LOOPBACK_ENV.items():
        assert f"`{name}={value}`" in section, name
    assert "127.0.0.1" in section and "`[mpi] extra_args`" in section  # the controller; the fallback to hydra
