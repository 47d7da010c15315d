"""The executor: deploy a resolved contract, run MPI programs on it, manage its lifecycle.

The seed's macros, the Python way::

    c = ccdsl.deploy(contract)          # @deploy       -> Cluster (handle: 15 random letters)
    c.workers(); c.nodes(); c.ranks()   # workers(...)
    c.run(fn, *args)                    # @everywhere + @fetchfrom rank 0
    ccdsl.interrupt(c); ccdsl.resume(c); ccdsl.restart(c); ccdsl.terminate(c)
    ccdsl.clusters(); ccdsl.reconnect("FXqElAnSeTEpQAm")

Every function takes a :class:`Cluster` or a handle.  Nothing here imports boto3, paramiko or mpi4py until a
provider or the launcher needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccdsl.executor.cluster import Cluster, node_access
from ccdsl.executor.deploy import ClusterInfo, Plan, clusters, cost_report, deploy, get, reconnect

if TYPE_CHECKING:
    from ccdsl.executor.config import Config
    from ccdsl.executor.model import Progress


def interrupt(cluster: Cluster | str, *, config: Config | None = None) -> Cluster:
    """Stop the cluster's nodes (``@interrupt``): no compute cost while stopped; running programs are lost."""
    c = get(cluster, config=config)
    c.interrupt()
    return c


def resume(cluster: Cluster | str, *, config: Config | None = None, progress: Progress | None = None) -> Cluster:
    """Start an interrupted cluster again (``@resume``), with fresh workers (new ids)."""
    c = get(cluster, config=config)
    c.resume(progress)
    return c


def restart(cluster: Cluster | str, *, config: Config | None = None) -> Cluster:
    """Kill the cluster's processes and create fresh workers (``@restart``)."""
    c = get(cluster, config=config)
    c.restart()
    return c


def autostop(cluster: Cluster | str, idle: str | float | None, *, down: bool = False,
             max_cost: float | None = None, config: Config | None = None) -> Cluster:
    """Stop the cluster after ``idle`` (``"30m"``; ``"off"``: never) without activity, or when its estimated cost
    reaches ``max_cost`` USD; ``down`` terminates instead.  A watchdog on the cluster decides (laptop closed)."""
    c = get(cluster, config=config)
    c.autostop(idle, down=down, max_cost=max_cost)
    return c


def terminate(cluster: Cluster | str, *, config: Config | None = None) -> None:
    """Release every resource of the cluster (``@terminate``), and check that nothing remains."""
    get(cluster, config=config).terminate()


def forget(handle: str, *, config: Config | None = None) -> str:
    """Remove this machine's record of a cluster without asking its cloud (``ccdsl terminate --forget``), for a
    record that cannot be terminated (credentials gone, a cloud account closed).  Whatever the cluster has on this
    machine goes with the record (a watchdog here, its files; for a local cluster, all of it).  On SSH hosts (your
    own machines) the watchdog there is ended too, if they answer: nothing here follows up on what it would do.  On
    a cloud, the watchdog on the nodes stays: once forgotten, it is all that still stops them.
    Returns what to tell the user: for a cloud cluster, the warning that what it still has there is no longer
    tracked here."""
    from ccdsl.errors import ClusterError
    from ccdsl.executor import state as st

    state = st.State()
    record = state.get_cluster(handle, damaged_ok=True)  # a damaged record is what --forget is for
    if record is None:
        raise ClusterError(f"no cluster with handle {handle}", hint="'ccdsl clusters --all' lists the known ones")
    if record.status == st.DEPLOYING and st.owner_alive(record):
        raise ClusterError(f"cluster {handle} is being deployed by process {record.owner_pid}",
                           hint="wait for it, or press Ctrl-C there: an interrupted deploy cleans up")
    from ccdsl.executor import guard
    from ccdsl.executor.cluster import remove_local_files

    guard.stop_local_watchdog(handle)  # a watchdog here would go on guarding (and at $0/h never end)
    ended = _end_host_watchdog(record, config) if record.provider == "ssh" else ""
    released = _release_hosts(handle) if record.provider == "ssh" else ""
    state.forget(handle)
    remove_local_files(handle)
    if record.status == st.TERMINATED:
        return f"forgot cluster {handle} (it was terminated)"
    if record.provider == "ssh":  # your own machines: free again, but not cleaned (nothing was asked of them)
        return (f"forgot cluster {handle} ({record.status}) without cleaning its hosts: {released}; what ccdsl "
                f"left on them (its folder and key for cluster {handle}, any process still running) stays{ended}")
    if record.provider == "local":  # nothing of it is anywhere else: ending it here is the whole of it
        from ccdsl.executor.providers import local

        local.end(handle)
        return (f"forgot cluster {handle} ({record.status}): it ran on this machine, and its watchdog, processes "
                "and files here are gone with the record")
    where = record.provider + (f" {record.settings.get('resolved_region') or record.settings.get('region')}"
                               if record.provider == "aws" and (record.settings.get("resolved_region")
                                                                or record.settings.get("region")) else "")
    guarded = guard.Autostop.from_settings(record.settings.get("autostop"))
    watchdog = ended or (f"; its autostop watchdog, on its nodes, still {guarded.describe()}"
                         if guarded.active and record.status == st.RUNNING else "")
    return (f"forgot cluster {handle} ({record.status}) without asking {where}: anything it still has there (tagged "
            f"ccdsl:cluster={handle}) is no longer tracked by this machine and may still cost money; 'ccdsl "
            f"clusters' finds it again by its tags when it can reach {where}{watchdog}")


def _release_hosts(handle: str) -> str:
    """Free the SSH hosts a forgotten cluster holds (its claims), so that the next deploy can use them: a claim
    whose record is gone would keep them taken for ever (issue 19).  What to tell the user."""
    from ccdsl.errors import ProviderError
    from ccdsl.executor import state as st
    from ccdsl.executor.providers.ssh import Claims

    claims = Claims(st.data_dir())
    try:
        names = claims.release(handle)
    except ProviderError as exc:  # a damaged claims file: say so, the record goes all the same
        return f"its hosts could not be released ({exc.message})"
    return f"its hosts {', '.join(names)} are free for other clusters again" if names else "it held no host"


def _end_host_watchdog(record: Any, config: Config | None) -> str:
    """End the watchdog of a running SSH-hosts cluster on its node 0, if it has one and the node answers; what to
    add to the user's message."""
    from ccdsl.errors import CcdslError
    from ccdsl.executor import guard
    from ccdsl.executor import state as st

    if record.status != st.RUNNING or not guard.Autostop.from_settings(record.settings.get("autostop")).active:
        return ""
    try:
        cluster = Cluster(record.handle, config=config)
        guard.disarm(node_access(cluster), cluster.state)
    except (CcdslError, OSError, EOFError) as exc:  # paramiko's errors are OSError or EOFError subclasses, or ours
        reason = exc.message if isinstance(exc, CcdslError) else str(exc) or type(exc).__name__
        return (f"; its autostop watchdog on its hosts could not be reached to end it ({reason}): it ends itself "
                "once the hosts are idle")
    return "; its autostop watchdog on its hosts was ended"


__all__ = ["Cluster", "ClusterInfo", "Plan", "autostop", "clusters", "cost_report", "deploy", "forget", "get",
           "interrupt", "reconnect", "restart", "resume", "terminate"]
