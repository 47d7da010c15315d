"""How to reach a cluster's nodes: the one value the services (workdir sync, MPI launching, engines, the autostop
guard) take instead of the :class:`~ccdsl.executor.cluster.Cluster` facade.

The facade builds a :class:`NodeAccess` from its record (``Cluster.access``), and so does a deploy before any
``Cluster`` exists.  A service reads from it where the nodes are, which is the manager, how ccdsl's SSH connections
are set up and which host keys they check; it never reaches back up to the facade, so the data flows one way:
record → access → service.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ccdsl.executor import ssh
from ccdsl.executor import state as st
from ccdsl.executor.model import Node

if TYPE_CHECKING:
    from ccdsl.executor.config import Config

SSH_HOSTS_KNOWN = "ssh-hosts"  # not a handle (15 letters): the ssh provider's hosts, pinned across clusters


def split_roles(nodes: Sequence[Node]) -> tuple[list[Node], Node | None]:
    """(worker nodes in index order, the manager or None)."""
    workers = sorted((n for n in nodes if n.role != "manager"), key=lambda n: n.index)
    managers = [n for n in nodes if n.role == "manager"]
    return workers, managers[0] if managers else None


def known_hosts_path(handle: str, provider: str) -> str:
    """The pinned host keys a cluster's connections check.  Cloud instances: one file per cluster, keyed by
    instance id (a new cluster is new machines).  Bring-your-own SSH hosts (``provider == "ssh"``) outlive
    clusters: one file for all of them, keyed by host name, so a key that changed between two clusters is caught
    (and the user's ~/.ssh/known_hosts is consulted first, see :func:`ssh_options`)."""
    d = st.data_dir() / "known_hosts"
    d.mkdir(exist_ok=True, mode=0o700)
    return str(d / (SSH_HOSTS_KNOWN if provider == "ssh" else handle))


def ssh_options(config: Config, *, known_hosts: str | None = None, deploying: bool = False) -> ssh.SshOptions:
    """``[ssh]`` of a config as transport options.

    ``known_hosts`` is the cluster's pinned-keys file.  New host keys are accepted only while ``deploying`` (and
    only with ``host_key_policy = "accept-new"``); every later connection must match what was recorded.  For the
    ssh provider's hosts (the shared ``ssh-hosts`` file) the user's OpenSSH known_hosts is consulted first."""
    s = config.ssh
    ssh_hosts = bool(known_hosts) and os.path.basename(str(known_hosts)) == SSH_HOSTS_KNOWN
    return ssh.SshOptions(known_hosts=known_hosts, connect_timeout=s.connect_timeout,
                          accept_new=deploying and s.host_key_policy == "accept-new",
                          user_known_hosts=os.path.expanduser(s.user_known_hosts) if s.user_known_hosts
                          and ssh_hosts else None, jump=None if ssh_hosts else jump_from_config(config))


def jump_from_config(config: Config) -> ssh.Jump | None:
    """``[aws] jump_host`` as the transport's :class:`ssh.Jump` (None: connect directly).  A bastion is a node of
    its own (``jump user@host:port``), its key pinned in the cluster's known_hosts after the user's."""
    from ccdsl.executor.config import jump_target

    a = config.aws
    if not a.jump_host:
        return None
    known = os.path.expanduser(config.ssh.user_known_hosts) if config.ssh.user_known_hosts else None
    target = jump_target(a.jump_host)
    if target is None:
        return ssh.Jump(known_hosts=known)
    user, host, port = target
    bastion = Node(index=0, role="jump", instance_id=f"jump-{user}@{host}:{port}", instance_type="bastion",
                   state="running", address=host, private_address=host, port=port, user=user,
                   key_path=os.path.expanduser(a.jump_key_path) if a.jump_key_path else None)
    return ssh.Jump(bastion=bastion, known_hosts=known)


@dataclass(frozen=True)
class NodeAccess:
    """A cluster's nodes and how to reach them, as one value.

    ``nodes`` are the cluster's nodes (any order; :meth:`nodes` gives the manager first), ``config`` the
    configuration its connections use (with the contract's overrides), ``folder`` the synced project folder as the
    nodes see it (None: no folder), where ranks and engines start."""

    handle: str
    provider: str
    all_nodes: tuple[Node, ...]
    config: Config
    processes_per_node: int = 1
    folder: str | None = None

    @property
    def local(self) -> bool:
        """The local provider's nodes are this machine: no SSH."""
        return self.provider == "local"

    def nodes(self) -> list[Node]:
        """The nodes, the manager first (as ``Cluster.nodes()``)."""
        workers, manager = split_roles(self.all_nodes)
        return [*([manager] if manager is not None else []), *workers]

    @property
    def workers(self) -> list[Node]:
        return split_roles(self.all_nodes)[0]

    @property
    def manager(self) -> Node | None:
        return split_roles(self.all_nodes)[1]

    def known_hosts(self) -> str:
        """The pinned-keys file of this cluster's nodes (creates its folder)."""
        return known_hosts_path(self.handle, self.provider)

    def ssh_options(self, *, deploying: bool = False) -> ssh.SshOptions:
        """How ccdsl's own SSH connections to these nodes are made (and which keys they accept)."""
        return ssh_options(self.config, known_hosts=self.known_hosts(), deploying=deploying)

    def connections(self) -> ssh.Connections:
        """A pool of SSH connections to the nodes, the workers reached through the manager if there is one (or
        through ``[aws] jump_host``: a bastion, or PeerWorkers' node 0 among the members)."""
        return ssh.Connections(self.ssh_options(), jump=self.manager, members=self.all_nodes)
