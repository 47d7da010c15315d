"""The ``local`` provider: N "nodes" on this machine, no SSH, nothing to pay for.

Each node is a slot for ``processes_per_node`` ranks that the launcher's local mode starts with this machine's
``mpiexec``.  There is no cloud to ask, so the state database is the only truth (``authoritative = False``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from ccdsl.errors import ProviderError
from ccdsl.executor import model
from ccdsl.executor.config import Config, LocalConfig
from ccdsl.executor.model import Node, NodeRequest, Progress


def make(config: Config, settings: Mapping[str, Any]) -> LocalProvider:
    return LocalProvider(config.local)


class LocalProvider:
    name = "local"
    authoritative = False

    def __init__(self, config: LocalConfig) -> None:
        self.config = config

    def settings(self) -> dict[str, Any]:
        return {}

    def create(self, request: NodeRequest, progress: Progress) -> list[Node]:
        if not 1 <= request.count <= self.config.max_nodes:
            raise ProviderError(f"the local provider runs 1 to {self.config.max_nodes} nodes, not {request.count}",
                                hint="raise [local] max_nodes in ccdsl.toml")
        nodes = [Node(index=i, role=request.role, instance_id=f"local-{i}" if request.role == "worker"
                      else f"local-{request.role}-{i}", instance_type=request.instance_type or "local",
                      state=model.READY, address="127.0.0.1", private_address="127.0.0.1")
                 for i in range(request.count)]
        for n in nodes:
            for state in (model.REQUESTED, model.RUNNING, model.READY):
                progress(n.role, n.index, state)
        return nodes

    def start(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        return [replace(n, state=model.READY) for n in nodes]

    def stop(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        return [replace(n, state=model.STOPPED) for n in nodes]

    def terminate(self, handle: str, nodes: Sequence[Node]) -> None:
        end(handle)

    def describe(self, handle: str) -> list[Node]:
        return []

    def discover(self) -> list[str]:
        return []


def end(handle: str) -> None:
    """Remove what a local cluster has on this machine: a set-up command still running (its deploy was killed,
    say) and the cluster's copy of the project's folder.  Runs end with their ``ccdsl run``."""
    import shutil

    end_local_setup(handle)
    shutil.rmtree(folder(handle), ignore_errors=True)


def folder(handle: str) -> Path:
    """What a local cluster keeps on this machine: its copy of the project's folder and its set-up's pid file."""
    from ccdsl.executor import state

    return state.data_dir() / "local" / handle


SETUP_TAG = "CCDSL_SETUP_OF"  # in the local set-up's environment: which cluster's set-up a process group is


def setup_pid_file(handle: str) -> Path:
    """Where the local set-up of ``handle`` names its process group: beside the cluster's copy of the folder."""
    return folder(handle) / "setup.pid"


def end_local_setup(handle: str) -> None:
    """End the local set-up of ``handle`` if any of it still runs (its deploy was killed before it ended: the
    shell got SIGTERM then, what it started may live on in its process group)."""
    try:
        group = int(setup_pid_file(handle).read_text())
    except (OSError, ValueError):
        return
    if _members(group, handle):  # pids are reused: only a group whose processes carry this cluster's tag is ours
        end_group(group, handle)
    setup_pid_file(handle).unlink(missing_ok=True)


def _members(group: int, handle: str | None) -> list[int]:
    """The live processes of process group ``group`` (with ``handle``: those whose environment names it)."""
    tag = f"{SETUP_TAG}={handle}".encode()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] == "Z" or int(fields[2]) != group:
                continue
            if handle is not None and tag not in Path(f"/proc/{name}/environ").read_bytes().split(b"\0"):
                continue
        except (OSError, IndexError, ValueError):
            continue
        out.append(int(name))
    return out


def end_group(group: int, handle: str | None = None) -> None:
    """SIGTERM to process group ``group``; SIGKILL to whatever of it is left after 5 s (a command that ignores
    SIGTERM).  Its processes need not be our children (the deploy that started them was killed): watched in /proc."""
    import signal

    try:
        os.killpg(group, signal.SIGTERM)
    except OSError:
        return
    for _ in range(50):
        if not _members(group, handle):
            return
        time.sleep(0.1)
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
