"""The ``local`` provider: N "nodes" on this machine, no SSH, nothing to pay for.

Each node is a slot for ``processes_per_node`` ranks that the launcher's local mode starts with this machine's
``mpiexec``.  There is no cloud to ask, so the state database is the only truth (``authoritative = False``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
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

    from ccdsl.executor import state, workdir

    workdir.end_local_setup(handle)
    shutil.rmtree(state.data_dir() / "local" / handle, ignore_errors=True)
