"""Values shared by the executor's parts: what a node is, what a provider must do, what a deploy plans.

Providers (``providers/aws.py``, ``providers/ssh.py``, ``providers/local.py``) create and control machines and
return :class:`Node` values; the SSH transport (``ssh.py``) and the MPI launcher (``mpi.py``) only read them.
Nothing here imports boto3, paramiko or mpi4py.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

# Node states, in the order a deploy walks through them.
REQUESTED, PENDING, RUNNING, REACHABLE, READY = "requested", "pending", "running", "reachable", "ready"
STOPPING, STOPPED, TERMINATED, FAILED = "stopping", "stopped", "terminated", "failed"


@dataclass(frozen=True)
class Node:
    """One machine of a cluster.

    ``address`` is where ccdsl itself connects (SSH); ``private_address`` is where the other cluster members reach
    it (MPI traffic).  Tests map provider instance ids to their own hosts, so neither is necessarily what the
    provider reported.
    """

    index: int  # position within its role, 0-based
    role: str  # "worker" | "manager"
    instance_id: str  # provider id: EC2 instance id, SSH host name, "local-0"
    instance_type: str
    state: str = REQUESTED
    address: str | None = None
    private_address: str | None = None
    port: int = 22
    user: str | None = None
    key_path: str | None = None
    zone: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class NodeRequest:
    """What to create for one role of a cluster."""

    handle: str
    role: str
    instance_type: str
    count: int
    region: str | None = None
    spot: bool = False
    options: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    """One way to build a cluster: a provider and one request per role (manager first).  Here, below both
    ``deploy``, which tries plans in order, and ``cost``, which prices them."""

    provider: str
    requests: tuple[NodeRequest, ...]
    label: str = ""

    def describe(self) -> str:
        return self.label or ", ".join(f"{r.instance_type} × {r.count}" + (f" ({r.role})" if r.role == "manager"
                                                                             else "") for r in self.requests)


Progress = Callable[[str, int, str], None]  # (role, node index, state) -> None


class Provider(Protocol):
    """The function-level interface every provider implements.  All methods are idempotent where the provider
    allows it; ``describe`` and ``discover`` report the provider's truth (tags), not ccdsl's records."""

    name: str

    def create(self, request: NodeRequest, progress: Progress) -> list[Node]: ...

    def start(self, handle: str, nodes: Sequence[Node]) -> list[Node]: ...

    def stop(self, handle: str, nodes: Sequence[Node]) -> list[Node]: ...

    def terminate(self, handle: str, nodes: Sequence[Node]) -> None: ...

    def describe(self, handle: str) -> list[Node]: ...

    def discover(self) -> list[str]: ...
