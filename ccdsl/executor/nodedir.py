"""What ccdsl keeps on each node of a cluster, and how it is removed again.

Every node holds a cluster directory (``<remote_dir>/<handle>``, from ``[mpi] remote_dir``) with the cluster's
internal SSH key, its ssh config and what its runs start (written by :func:`ccdsl.executor.mpi.prepare_cluster`),
plus one line in ``authorized_keys`` naming the cluster.  This module names that line and the processes started
from the directory, and removes them: the SSH provider releases its bring-your-own hosts with it, and the services
(the launcher, engines, the autostop guard) build their commands from the same names.  It sits with the transport
so that a provider can clean its hosts without the MPI launcher above it.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Protocol

from ccdsl.executor import ssh
from ccdsl.executor.config import MpiConfig
from ccdsl.executor.model import Node
from ccdsl.executor.parallel import parallel


class DirOptions(Protocol):
    """Where the cluster directory and the authorized keys are on a node: ``[mpi]`` of the config
    (:class:`~ccdsl.executor.config.MpiConfig`) or the launcher's :class:`~ccdsl.executor.mpi.MpiOptions`."""

    @property
    def remote_dir(self) -> str: ...

    @property
    def authorized_keys(self) -> str: ...


_DEFAULTS = MpiConfig()


def internal_key_comment(handle: str) -> str:
    """The comment that marks this cluster's internal key in ``authorized_keys``.  It must differ from the EC2 key
    pair's name (``ccdsl-<handle>``): cloud-init writes the login key with that name as its comment, and replacing
    our line must never remove the key ccdsl logs in with."""
    return f"ccdsl-internal-{handle}"


def authorize_command(path: str, handle: str, public: str | None) -> str:
    """Shell that replaces this cluster's line in ``authorized_keys`` (none when ``public`` is None)."""
    f = shlex.quote(path)
    add = f"printf '%s\\n' {shlex.quote(public)} >> \"$t\"; " if public else ""
    return (f"mkdir -p \"$(dirname {f})\" && touch {f} && t={f}.ccdsl.$$ && "
            f"(grep -v ' {internal_key_comment(handle)}$' {f} > \"$t\" || true) && "
            f"{add}chmod 600 \"$t\" && mv \"$t\" {f}")


def pkill_pattern(path: str) -> str:
    """A ``pkill -f`` regex for ``path`` that does not match the shell running the pkill (whose command line
    contains the pattern itself)."""
    return shlex.quote(path[:-1] + "[" + path[-1] + "]")


def release_cluster(handle: str, nodes: Sequence[Node], *, manager: Node | None = None,
                    options: DirOptions = _DEFAULTS, ssh_options: ssh.SshOptions = ssh.SshOptions(),
                    connections: ssh.Connections | None = None) -> None:
    """Undo :func:`ccdsl.executor.mpi.prepare_cluster` (bring-your-own hosts outlive the cluster): kill the
    cluster's processes, remove its directory and its internal key from ``authorized_keys``."""
    pool = connections or ssh.Connections(ssh_options, jump=manager, members=nodes)
    directory = f"{options.remote_dir.rstrip('/')}/{handle}"
    try:
        def clean(node: Node) -> None:
            d = node.extra.get("ccdsl_dir", directory)
            ssh.run(pool.get(node), f"pkill -f {pkill_pattern(d + '/')} 2>/dev/null; rm -rf {shlex.quote(d)}; "
                    + authorize_command(options.authorized_keys, handle, None), node=node, check=True,
                    timeout=ssh_options.command_timeout)

        parallel(clean, [*([manager] if manager is not None else []), *nodes])
    finally:
        if connections is None:
            pool.close()


def kill_processes(nodes: Sequence[Node], *, manager: Node | None = None,
                   ssh_options: ssh.SshOptions = ssh.SshOptions(),
                   connections: ssh.Connections | None = None) -> None:
    """Kill every process ccdsl started on the nodes (interrupt/restart of SSH hosts, which are not stopped)."""
    pool = connections or ssh.Connections(ssh_options, jump=manager, members=nodes)
    try:
        def kill(node: Node) -> None:
            d = node.extra.get("ccdsl_dir")
            if d:
                ssh.run(pool.get(node), f"pkill -f {pkill_pattern(d + '/')} 2>/dev/null; true", node=node,
                        timeout=ssh_options.command_timeout)

        parallel(kill, [*([manager] if manager is not None else []), *nodes])
    finally:
        if connections is None:
            pool.close()
