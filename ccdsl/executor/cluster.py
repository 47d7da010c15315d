"""The :class:`Cluster` a deploy returns: a handle plus what ccdsl knows about its nodes and workers.

A ``Cluster`` is a thin view on a record of the state database, so two ``Cluster`` objects for the same handle
(one from ``deploy``, one from ``reconnect`` in another process) agree.  Runs go to the MPI launcher
(:mod:`ccdsl.executor.mpi`); lifecycle steps go to the provider and then update the record.

Worker ids are like the seed's process ids: one per MPI rank slot (``processes_per_node`` per node), allocated
from a global counter in the state database, new after every resume, restart or reconnect.
"""

from __future__ import annotations

import logging
import secrets
import string
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ccdsl.errors import ClusterError
from ccdsl.executor import access, lifecycle, model
from ccdsl.executor import state as st
from ccdsl.executor.access import NodeAccess, split_roles
from ccdsl.executor.lifecycle import remove_local_files as remove_local_files  # ccdsl.executor.forget's, from here
from ccdsl.executor.model import Node, Progress
from ccdsl.executor.parallel import parallel

if TYPE_CHECKING:
    from ccdsl.executor import engines, mpi
    from ccdsl.executor.config import Config
    from ccdsl.executor.cost import Cost
    from ccdsl.executor.workdir import Synced, SyncProgress

log = logging.getLogger("ccdsl.executor")

HANDLE_LENGTH = 15


def new_handle() -> str:
    """15 random ASCII letters, e.g. ``FXqElAnSeTEpQAm`` (52**15 ~ 5e25 values: collisions are not a concern,
    and the database refuses one anyway)."""
    return "".join(secrets.choice(string.ascii_letters) for _ in range(HANDLE_LENGTH))


def is_handle(text: str) -> bool:
    return len(text) == HANDLE_LENGTH and all(c in string.ascii_letters for c in text)


def quiet(role: str, index: int, state: str) -> None:
    """The default progress callback: say nothing."""


def known_hosts_path(handle: str) -> str:
    """The pinned host keys of the cluster ``handle`` (:func:`ccdsl.executor.access.known_hosts_path`, for the
    provider its record names)."""
    record = st.State().get_cluster(handle)
    return access.known_hosts_path(handle, record.provider if record is not None else "")


def node_access(cluster: Cluster, *, with_folder: bool = False) -> NodeAccess:
    """How the services reach ``cluster``'s nodes, from its record now.  ``with_folder``: with the synced folder as
    the nodes see it (where runs and engines start; it needs prepared nodes)."""
    return cluster._target.access(with_folder=with_folder)


def make_ready(handle: str, nodes: Sequence[Node], config: Config, progress: Progress, *,
               deploying: bool) -> list[Node]:
    """Wait until every node is reachable (reported per node as it happens, all nodes in parallel), then let the
    launcher prepare them for MPI (:func:`ccdsl.executor.mpi.prepare_cluster`, also parallel).  Host keys are
    pinned on first contact while ``deploying`` and checked afterwards."""
    from ccdsl.executor import fabric_check, mpi, ssh
    from ccdsl.executor.providers import shared_fs

    workers, manager = split_roles(nodes)
    mpi_options, ssh_options = mpi.options_from_config(config, known_hosts=known_hosts_path(handle),
                                                       deploying=deploying)
    pool = ssh.Connections(ssh_options, jump=manager, members=workers)
    try:
        def reachable(node: Node) -> Node:
            node = ssh.wait_reachable(node, config.ssh.ready_timeout, ssh_options, connections=pool)
            progress(node.role, node.index, model.REACHABLE)
            return node

        if manager is not None:  # workers are reached through the manager
            manager = reachable(manager)
        parallel(reachable, workers)
        # The launcher reports "ready" when a node's probe passed, but a node can run programs only once the
        # cluster files (which need every node's host key) are installed: report "ready" after that.
        workers, manager = mpi.prepare_cluster(handle, workers, manager=manager, options=mpi_options,
                                               ssh_options=ssh_options, connections=pool,
                                               progress=lambda role, index, state: None)
        # nodes launched with EFA: fi_info must list every device, or MPI would fail (or crawl over TCP)
        fabric_check.check([*([manager] if manager is not None else []), *workers], pool,
                           timeout=ssh_options.command_timeout)
        # [aws] shared: the folder every node sees (a no-op for nodes whose provider asked for none)
        workers, manager = shared_fs.prepare(handle, workers, manager, pool, timeout=ssh_options.command_timeout)
    finally:
        pool.close()
    ready = [*([manager] if manager is not None else []), *workers]
    for node in ready:
        progress(node.role, node.index, model.READY)
    return ready


class Cluster:
    """A deployed cluster.  Get one from :func:`ccdsl.deploy` or :func:`ccdsl.reconnect`.

    >>> c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2))   # doctest: +SKIP
    >>> c.run(lambda comm: comm.allreduce(comm.Get_rank()))                   # doctest: +SKIP
    1
    """

    def __init__(self, handle: str, *, config: Config | None = None, state: st.State | None = None) -> None:
        target = lifecycle.Target.load(handle, config, state)
        self.handle, self.config, self.state = target.handle, target.config, target.state
        self._launcher: mpi.Launcher | None = None
        self._engines: engines.Engines | None = None
        self._lock = threading.RLock()

    # -- what it is ------------------------------------------------------------------------------------------
    @property
    def record(self) -> st.ClusterRecord:
        return self._target.record

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def contract(self) -> str:
        return self.record.contract

    @property
    def provider(self) -> str:
        return self.record.provider

    @property
    def cluster_type(self) -> str:
        return self.record.cluster_type

    @property
    def processes_per_node(self) -> int:
        return self._target.processes_per_node

    @property
    def markets(self) -> dict[str, str]:
        """Role -> ``"spot"`` or ``"on-demand"``, as deployed (from the cost record; for a cluster found in the cloud
        by its tags, as EC2 reports its instances); empty when none was recorded (a provider without markets, a
        cluster deployed before markets were recorded)."""
        return self._target.markets

    def nodes(self) -> list[Node]:
        """The nodes (manager first): id, instance id, addresses, state."""
        return self.state.nodes(self.handle)

    def workers(self) -> list[int]:
        """Worker ids, one per MPI rank slot; empty while interrupted or terminated."""
        return self.state.workers(self.handle)

    def ranks(self) -> dict[int, int]:
        """MPI rank -> worker id (rank r runs in worker ``ranks()[r]``)."""
        return lifecycle.rank_workers(self._target, self._get_launcher)

    def __repr__(self) -> str:
        return lifecycle.summary(self._target)

    def _repr_html_(self) -> str:
        """Jupyter: handle, status, price and the nodes as a table."""
        return lifecycle.html(self._target)

    # -- running ---------------------------------------------------------------------------------------------
    def run(self, fn: Callable[..., Any], *args: Any, trust_nodes: bool | None = None, **kwargs: Any) -> Any:
        """Run ``fn(comm, *args, **kwargs)`` on every rank under MPI; return rank 0's value.

        By default the value comes back as plain data only: None, bool, int, float, complex, str, bytes, list,
        tuple, dict, set, frozenset, and numpy arrays and scalars of bool or numeric dtype; anything else raises
        :class:`~ccdsl.executor.results.UntrustedResultError` (a node cannot make this machine run code through
        its result).  ``trust_nodes=True`` (default: ``[security] trust_nodes``) also accepts arbitrary objects,
        loaded with cloudpickle, which lets whoever controls rank 0's node run code here."""
        from ccdsl.executor import guard

        trust = self.config.security.trust_nodes if trust_nodes is None else bool(trust_nodes)
        with self._lock:
            launcher = self._get_launcher()
            guard.warn_near_cap(self.state, self.record)
            with guard.busy(self.record):
                return launcher.run_function(fn, args, kwargs, trust_nodes=trust)

    def run_script(self, path: str, args: Sequence[str] = (), np: int | None = None, *,
                   stream: Callable[[str, str], None] | None = None, oversubscribe: bool = False) -> int:
        """Run a Python script on ``np`` ranks (default: every slot; more only with ``oversubscribe``), streaming
        its output; returns the exit code."""
        from ccdsl.executor import guard, mpi

        with self._lock:
            launcher = self._get_launcher()
            guard.warn_near_cap(self.state, self.record)
            with guard.busy(self.record):
                return launcher.run_script(path, [str(a) for a in args], np, stream=stream or mpi.print_stream,
                                           oversubscribe=oversubscribe)

    # -- spending ----------------------------------------------------------------------------------------------
    def cost(self) -> Cost:
        """The cost estimate so far (:class:`ccdsl.executor.cost.Cost`): recorded price × running time."""
        from ccdsl.executor import cost

        return cost.estimate(self.state, self.record)

    def autostop(self, idle: str | float | None, *, down: bool = False, max_cost: float | None = None) -> None:
        """Stop the cluster after ``idle`` (``"30m"``; None or ``"off"``: never) without activity, and/or when
        its estimated cost reaches ``max_cost`` USD; ``down`` terminates instead.  The watchdog runs on the
        cluster itself, so this holds with this machine switched off."""
        from ccdsl.executor import guard

        with self._lock:
            guard.set_autostop(node_access(self), self.state, guard.make(idle, down, max_cost))

    def run_program(self, argv: Sequence[str], np: int | None = None, *,
                    stream: Callable[[str, str], None] | None = None, oversubscribe: bool = False,
                    label_ranks: bool = False) -> int:
        """Run a command line as ``ccdsl run`` takes it (:mod:`ccdsl.executor.program`): ``python`` with a script,
        ``-c`` or ``-m`` and its options, or any other program once per rank.  Returns the exit code.  ``np``: 1
        to the cluster's slots, more only with ``oversubscribe``; ``label_ranks``: each output line starts with
        ``[RANK] ``."""
        from ccdsl.executor import guard, mpi
        from ccdsl.executor.program import parse

        program = parse([str(a) for a in argv])
        with self._lock:
            launcher = self._get_launcher()
            guard.warn_near_cap(self.state, self.record)
            with guard.busy(self.record):
                return launcher.run_program(program, np, stream=stream or mpi.print_stream,
                                            oversubscribe=oversubscribe, label_ranks=label_ranks)

    def _get_launcher(self) -> mpi.Launcher:
        with self._lock:
            lifecycle.require_running(self._target)
            if self._launcher is None:
                self._launcher = lifecycle.launcher(self._target)
            return self._launcher

    # -- persistent engines --------------------------------------------------------------------------------------
    def engines(self, *, timeout: float = 120.0) -> Any:
        """A connected ``ipyparallel.Client`` with one engine per MPI rank (engine id == rank), started by the
        cluster's own mpiexec in the synced folder, kept running between calls; attaches to the engines another
        process started.  Views block by default (``rc[0].pull("x")`` returns the value).

        >>> rc = cluster.engines()                                                            # doctest: +SKIP
        >>> rc[:].execute("from mpi4py import MPI; comm = MPI.COMM_WORLD; s = comm.reduce(comm.rank)")  # doctest: +SKIP
        >>> rc[0].pull("s")                                                                   # doctest: +SKIP
        6
        """
        from ccdsl.executor import guard

        with self._lock:
            lifecycle.require(self._target, st.RUNNING, action="start engines on")
            self._engines = lifecycle.engines_for(self._target, self._engines)
            with guard.busy(self.record):  # starting engines is activity: autostop must not end them half-started
                return self._engines.client_for(timeout)

    def stop_engines(self) -> None:
        """Stop the engines and their controller on every node (the next ``engines()`` starts fresh ones)."""
        with self._lock:
            lifecycle.stop_engines(self._target, self._engines)
            self._engines = None

    def _end_engines(self) -> None:
        """Before interrupt, restart and terminate: stop the engines if any run (best effort)."""
        current, self._engines = self._engines, None
        lifecycle.end_engines(self._target, current)

    # -- the project's folder ---------------------------------------------------------------------------------
    @property
    def workdir(self) -> str | None:
        """The local folder synced to every node (None: none)."""
        return self._target.workdir

    def _workdir_on_nodes(self) -> str | None:  # where ranks and engines start (None: no folder)
        return self._target.workdir_on_nodes()

    def sync(self, path: str | None = None, *, setup: bool = False, progress: SyncProgress | None = None,
             stream: Callable[[str, str], None] | None = None, replace: bool = False) -> list[Synced]:
        """Copy the project's folder (``path``, default: the deploy's ``workdir``) to every node, sending only
        what changed and deleting what was deleted; with ``setup``, run the set-up command again on every node.
        Nodes that had no copy (replaced nodes) get the set-up anyway.  Returns what was done per node.

        A ``path`` other than the cluster's folder replaces the nodes' copy (what only the old folder has is
        deleted there), so it needs ``replace=True``; it then becomes the cluster's folder."""
        with self._lock:
            lifecycle.require(self._target, st.RUNNING, action="sync")
            return lifecycle.sync(self._target, path, setup=setup, replace=replace, progress=progress,
                                  stream=stream)

    def _drop_launcher(self) -> None:
        with self._lock:
            if self._launcher is not None:
                self._launcher.close()
                self._launcher = None

    # -- lifecycle (the steps are in :mod:`ccdsl.executor.lifecycle`) ----------------------------------------------
    @property
    def _target(self) -> lifecycle.Target:
        return lifecycle.Target(self.handle, self.config, self.state)

    def _kill_processes(self) -> None:
        """Kill what ccdsl started on the nodes (they keep running: restart, or hosts that are never stopped)."""
        lifecycle.kill_processes(self._target)

    def interrupt(self) -> None:
        """Stop the nodes (no cost for compute while stopped; running programs are lost)."""
        with self._lock:
            lifecycle.require(self._target, st.RUNNING, st.FAILED, action="interrupt")  # failed: stopping is safe
            self._end_engines()
            self._drop_launcher()
            lifecycle.interrupt(self._target)

    def resume(self, progress: Progress | None = None) -> None:
        """Start the nodes again (they may come back with new addresses) and create fresh workers."""
        with self._lock:
            lifecycle.require(self._target, st.INTERRUPTED, action="resume")
            lifecycle.resume(self._target, progress or quiet, make_ready)

    def restart(self) -> None:
        """Kill every process ccdsl started on the nodes and create fresh workers (new ids)."""
        with self._lock:
            lifecycle.require(self._target, st.RUNNING, action="restart")
            self._end_engines()
            self._drop_launcher()
            with lifecycle.intent(self._target, "restart"):
                self._kill_processes()
                lifecycle.new_workers(self._target)

    def terminate(self) -> None:
        """Release every resource of the cluster.  The provider checks that nothing remains."""
        with self._lock:
            record = lifecycle.require_terminable(self._target)
            if record.status == st.RUNNING:
                self._end_engines()
            self._drop_launcher()
            lifecycle.terminate(self._target)

    def close(self) -> None:
        """Close open connections (the cluster keeps running, and so do its engines)."""
        self._drop_launcher()
        if self._engines is not None:
            self._engines.close()
            self._engines = None

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def reattach(cluster: Cluster, progress: Progress) -> None:
    """What ``reconnect`` does to a running cluster of an earlier session: check that the provider still runs
    every node, make them ready over SSH, create fresh workers and arm the autostop watchdog again."""
    t = cluster._target
    handle, config, state = t.handle, t.config, t.state
    nodes = t.nodes()
    provider = t.provider()
    if getattr(provider, "authoritative", False):
        live = {(n.role, n.index): n for n in provider.describe(handle)}
        missing = [n for n in nodes if (n.role, n.index) not in live or live[(n.role, n.index)].state != "running"]
        if missing:
            raise ClusterError(f"cluster {handle} is not fully running in the cloud "
                               f"({len(missing)} node(s) missing or stopped)", hint=f"ccdsl terminate {handle}")
    if provider.name != "local":
        # never trust on first use here: a key not pinned at deploy (a lost known_hosts file, another
        # machine) is refused with a hint on how to record it after checking its fingerprint
        nodes = make_ready(handle, nodes, config, progress, deploying=False)
        state.set_nodes(handle, nodes)
    lifecycle.new_workers(t)
    lifecycle.rearm(t)  # a watchdog that died with its node (or was never armed) watches again


def local_stop(handle: str) -> int:
    """What the local provider's watchdog runs: interrupt (or with ``down`` terminate) the cluster in the records."""
    import json

    from ccdsl.executor import guard

    marker = st.data_dir() / "autostop" / f"{handle}.autostop"
    try:
        reason = guard.marker_reason(json.loads(marker.read_text()), None, handle) or ""
    except (OSError, ValueError, RecursionError):
        reason = ""
    cluster = Cluster(handle)
    if cluster.status != st.RUNNING:
        return 0
    a = guard.Autostop.from_settings(cluster.record.settings.get("autostop"))
    if a.down:
        cluster.terminate()
        cluster.state.update_cluster(handle, note=f"autostopped and terminated (--down): {reason}")
    else:
        cluster.interrupt()
        cluster.state.update_cluster(handle, note=f"autostopped: {reason}")
    cluster.state.journal(handle, "autostopped", reason=reason)
    return 0


def local_stop_main(argv: list[str]) -> int:
    """``local-stop HANDLE``: the command line of :data:`ccdsl.executor.guard._LOCAL_STOP`."""
    import sys

    if len(argv) == 2 and argv[0] == "local-stop":
        return local_stop(argv[1])
    print("usage: local-stop HANDLE", file=sys.stderr)
    return 2
