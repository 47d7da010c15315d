"""The :class:`Cluster` a deploy returns: a handle plus what ccdsl knows about its nodes and workers.

A ``Cluster`` is a thin view on a record of the state database, so two ``Cluster`` objects for the same handle
(one from ``deploy``, one from ``reconnect`` in another process) agree.  Runs go to the MPI launcher
(:mod:`ccdsl.executor.mpi`); lifecycle steps go to the provider and then update the record.

Worker ids are like the seed's process ids: one per MPI rank slot (``processes_per_node`` per node), allocated
from a global counter in the state database, new after every resume, restart or reconnect.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import string
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ccdsl.errors import ClusterError
from ccdsl.executor import access, model
from ccdsl.executor import state as st
from ccdsl.executor.access import NodeAccess, split_roles
from ccdsl.executor.model import Node, Progress
from ccdsl.executor.parallel import parallel

if TYPE_CHECKING:
    from ccdsl.executor import engines, mpi
    from ccdsl.executor.config import Config
    from ccdsl.executor.cost import Cost
    from ccdsl.executor.model import Provider
    from ccdsl.executor.workdir import Stream, Synced, SyncProgress

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
    return NodeAccess(cluster.handle, cluster.provider, tuple(cluster.nodes()), cluster.config,
                      processes_per_node=cluster.processes_per_node,
                      folder=cluster._workdir_on_nodes() if with_folder else None)


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
        from ccdsl.executor import config as cfg

        self.state = state or st.State()
        record = self.state.get_cluster(handle)
        if record is None:
            raise ClusterError(f"no cluster with handle {handle}", hint="'ccdsl clusters' lists the known ones")
        self.handle = handle
        overrides = record.settings.get("overrides") or {}  # the contract's config parameters win over the file
        self.config = (config or cfg.load()).replace(**overrides)
        self._launcher: mpi.Launcher | None = None
        self._engines: engines.Engines | None = None
        self._lock = threading.RLock()

    # -- what it is ------------------------------------------------------------------------------------------
    @property
    def record(self) -> st.ClusterRecord:
        record = self.state.get_cluster(self.handle)
        assert record is not None  # records are never deleted
        return record

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
        return int(self.record.settings.get("processes_per_node", self.config.mpi.processes_per_node))

    @property
    def markets(self) -> dict[str, str]:
        """Role -> ``"spot"`` or ``"on-demand"``, as deployed (from the cost record; for a cluster found in the cloud
        by its tags, as EC2 reports its instances); empty when none was recorded (a provider without markets, a
        cluster deployed before markets were recorded)."""
        recorded = {p.role: p.market for p in self.state.prices(self.handle) if p.market}
        return recorded or {str(k): str(v) for k, v in (self.record.settings.get("markets") or {}).items()}

    def nodes(self) -> list[Node]:
        """The nodes (manager first): id, instance id, addresses, state."""
        return self.state.nodes(self.handle)

    def workers(self) -> list[int]:
        """Worker ids, one per MPI rank slot; empty while interrupted or terminated."""
        return self.state.workers(self.handle)

    def ranks(self) -> dict[int, int]:
        """MPI rank -> worker id (rank r runs in worker ``ranks()[r]``)."""
        workers = self.workers()
        if not workers:
            raise ClusterError(f"cluster {self.handle} has no workers ({self.status})")
        launcher = self._get_launcher()
        ppn = launcher.ppn
        position = {n.index: i for i, n in enumerate(launcher.nodes)}
        used: dict[int, int] = {}
        out = {}
        for rank, node_index in sorted(launcher.ranks().items()):
            slot = used.get(node_index, 0)
            used[node_index] = slot + 1
            out[rank] = workers[position[node_index] * ppn + slot]
        return out

    def __repr__(self) -> str:
        try:
            r = self.record
            workers, _manager = split_roles(self.nodes())
            shape = f"{workers[0].instance_type}×{len(workers)}" if workers else "no nodes"
            spot = " spot" if "spot" in self.markets.values() else ""
            return f"<Cluster {self.handle} {r.cluster_type} {r.provider} {shape}{spot} {r.status}>"
        except Exception:  # repr must not fail
            return f"<Cluster {self.handle}>"

    def _repr_html_(self) -> str:
        """Jupyter: handle, status, price and the nodes as a table."""
        from ccdsl.executor import cost
        from ccdsl.resolution import html_escape, html_table

        r = self.record
        try:
            rate = cost.estimate(self.state, r).price_per_hour
        except Exception:  # a repr must not fail
            rate = None
        price = f", ${rate:.4f}/hour" if rate is not None else ""
        market = cost.market_summary(self.state.prices(self.handle))
        price += f" ({market})" if market else ""
        title = (f"<b>{html_escape(r.contract)}</b> {html_escape(self.handle)}: "
                 f"{html_escape(r.cluster_type)} on {html_escape(r.provider)}, "
                 f"{html_escape(r.status)}{html_escape(price)}")
        head = ("role", "index", "instance id", "instance type", "address", "private address", "state")
        rows = [(n.role, n.index, n.instance_id, n.instance_type, n.address or "", n.private_address or "", n.state)
                for n in self.nodes()]
        return html_table(title, head, rows)

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
        from ccdsl.executor import mpi

        with self._lock:
            if self.status != st.RUNNING:
                raise ClusterError(f"cluster {self.handle} is {self.status}, not running",
                                   hint=self._not_running_hint())
            if self._launcher is None:
                reach = node_access(self, with_folder=True)
                options, ssh_options = mpi.options_from_config(
                    self.config, known_hosts=None if reach.local else reach.known_hosts())
                self._launcher = mpi.Launcher(reach.workers, processes_per_node=reach.processes_per_node,
                                              mode="local" if reach.local else "ssh", via=reach.manager,
                                              options=options, ssh_options=ssh_options, handle=self.handle,
                                              workdir=reach.folder)
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
        from ccdsl.executor import engines, guard

        with self._lock:
            self._require(st.RUNNING, action="start engines on")
            if self._engines is None:
                self._engines = engines.Engines(node_access(self, with_folder=True), self.state)
            elif self._engines.client is None:  # not started yet: a sync may have changed the folder since
                self._engines.access = node_access(self, with_folder=True)
            with guard.busy(self.record):  # starting engines is activity: autostop must not end them half-started
                return self._engines.client_for(timeout)

    def stop_engines(self) -> None:
        """Stop the engines and their controller on every node (the next ``engines()`` starts fresh ones)."""
        from ccdsl.executor import engines

        with self._lock:
            if self._engines is None:
                self._engines = engines.Engines(node_access(self), self.state)
            self.state.journal(self.handle, "engines-stop")
            self._engines.stop()
            self._engines = None

    def _end_engines(self) -> None:
        """Before interrupt, restart and terminate: stop the engines if any run (best effort: the nodes may be
        gone; their processes are killed with the rest)."""
        from ccdsl.executor import engines

        if self._engines is None and not (engines.state_dir(self.handle) / "engines.json").exists():
            return
        try:
            self.stop_engines()
        except Exception as exc:  # reported, the lifecycle step goes on
            log.warning("%s: could not stop the engines cleanly: %s", self.handle, getattr(exc, "message", exc))
            self._engines = None
            for name in ("engines.json", "client.json"):
                (engines.state_dir(self.handle) / name).unlink(missing_ok=True)

    # -- the project's folder ---------------------------------------------------------------------------------
    @property
    def workdir(self) -> str | None:
        """The local folder synced to every node (None: none)."""
        return self.record.settings.get("workdir")

    def _workdir_on_nodes(self) -> str | None:
        """Where ranks and engines start: the synced folder as the nodes see it (None: no folder)."""
        from ccdsl.executor import workdir

        if not self.workdir:
            return None
        if self.provider == "local":
            return str(workdir.local_dir(self.handle))
        workers, _ = split_roles(self.nodes())
        return workdir.remote_dir(workers[0])

    def sync(self, path: str | None = None, *, setup: bool = False, progress: SyncProgress | None = None,
             stream: Callable[[str, str], None] | None = None, replace: bool = False) -> list[Synced]:
        """Copy the project's folder (``path``, default: the deploy's ``workdir``) to every node, sending only
        what changed and deleting what was deleted; with ``setup``, run the set-up command again on every node.
        Nodes that had no copy (replaced nodes) get the set-up anyway.  Returns what was done per node.

        A ``path`` other than the cluster's folder replaces the nodes' copy (what only the old folder has is
        deleted there), so it needs ``replace=True``; it then becomes the cluster's folder."""
        from ccdsl.executor import workdir

        with self._lock:
            self._require(st.RUNNING, action="sync")
            folder = path or self.workdir
            if not folder:
                raise ClusterError(f"cluster {self.handle} has no working folder",
                                   hint=f"name one: cluster.sync('proj/'), or ccdsl sync {self.handle} proj/")
            folder = str(workdir.check_folder(folder))
            if self.workdir and folder != self.workdir and not replace:
                raise ClusterError(
                    f"cluster {self.handle} holds a copy of {self.workdir}, not of {folder}: syncing {folder} would "
                    f"replace it on every node (the files only {self.workdir} has would be deleted there)",
                    hint=f"to switch folders: ccdsl sync {self.handle} {folder} --replace (Python: "
                         "cluster.sync(path, replace=True)); to update the nodes' copy: ccdsl sync "
                         f"{self.handle}")
            command = self.record.settings.get("setup")
            if setup and not command:
                raise ClusterError(f"cluster {self.handle} has no set-up command",
                                   hint="deploy with setup='pip install -r requirements.txt' (--setup CMD)")
            self.state.update_cluster(self.handle, settings={"workdir": folder})
            self.state.journal(self.handle, "sync", folder=folder, setup=setup)
            return self._sync(folder, setup=setup, progress=progress, stream=stream)

    def _sync(self, folder: str, *, setup: bool, progress: SyncProgress | None = None,
              stream: Stream | None = None) -> list[Synced]:
        from ccdsl.executor import workdir

        reach = node_access(self)
        synced = workdir.sync_nodes(reach, folder, progress=progress)
        command = self.record.settings.get("setup")
        fresh = {s.instance_id for s in synced if s.fresh}
        if command and (setup or fresh):  # a fresh shared folder is every node's: the set-up runs on all
            workdir.setup_nodes(reach, command, stream=stream,
                                only=None if setup or reach.local or workdir.shared(reach) else fresh)
        return synced

    def _not_running_hint(self) -> str:
        """What to do with a cluster that cannot run programs, by its status (and why it got there)."""
        record = self.record
        why = f" ({record.note})" if record.note else ""
        return {st.INTERRUPTED: f"resume it first: ccdsl resume {self.handle}",
                st.FAILED: f"it failed{why}; `ccdsl terminate {self.handle}` removes what is left of it, then "
                           "deploy a new one",
                st.DEPLOYING: "its deploy has not finished; `ccdsl clusters` shows when it is running",
                st.TERMINATED: f"it is gone{why}; deploy a new one (`ccdsl deploy FILE`)"}.get(
            record.status, "see `ccdsl clusters`")

    def _drop_launcher(self) -> None:
        with self._lock:
            if self._launcher is not None:
                self._launcher.close()
                self._launcher = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    def _provider(self) -> Provider:
        from ccdsl.executor.providers import base

        return base.get(self.provider, self.config, dict(self.record.settings))

    def _require(self, *statuses: str, action: str) -> st.ClusterRecord:
        record = self.record
        if record.status not in statuses:
            hint = f"ccdsl terminate {self.handle}" if record.status == st.FAILED else None
            raise ClusterError(f"cannot {action} cluster {self.handle}: it is {record.status}", hint=hint)
        if (record.owner_pid is not None and record.owner_pid != os.getpid() and record.status != st.DEPLOYING
                and st.owner_alive(record)):
            verb = st.pending_verb(self.state, self.handle) or "changed"
            raise ClusterError(f"cluster {self.handle} is being {_past(verb)} by process {record.owner_pid}",
                               hint="wait for it to finish")
        return record

    @contextmanager
    def _intent(self, verb: str) -> Iterator[None]:
        """Record ``verb`` and this process as its owner *before* any call to the cloud, and clear the owner when
        the verb ends however it ends.  A process killed in between leaves the intent behind: ``clusters`` then
        sees a verb whose process is gone and sets the status from what the cloud reports (``deploy.reconcile``)."""
        self.state.update_cluster(self.handle, owner_pid=os.getpid(), owner_host=socket.gethostname())
        self.state.journal(self.handle, verb)
        try:
            yield
        finally:
            self.state.update_cluster(self.handle, owner_pid=None)
            self.state.journal(self.handle, f"{verb}-done")

    def _store_nodes(self, nodes: Sequence[Node]) -> None:
        """Keep the provider's answer as the nodes: a node it no longer reports (its instance is gone) is dropped
        from the record, or every later step would name it again."""
        keep = {(n.role, n.index) for n in nodes}
        gone = [n for n in self.nodes() if (n.role, n.index) not in keep]
        if gone:
            log.warning("%s: node(s) %s no longer exist; the cluster goes on without them", self.handle,
                        ", ".join(f"{n.role} {n.index} ({n.instance_id})" for n in gone))
            self.state.clear_nodes(self.handle)
        self.state.set_nodes(self.handle, nodes)

    def _new_workers(self) -> list[int]:
        workers, _ = split_roles(self.nodes())
        return self.state.new_workers(self.handle, len(workers) * self.processes_per_node)

    def _kill_processes(self) -> None:
        """Kill what ccdsl started on the nodes (they keep running: restart, or hosts that are never stopped)."""
        if self.provider == "local":
            return
        from ccdsl.executor import nodedir

        reach = node_access(self)
        nodedir.kill_processes(reach.workers, manager=reach.manager, ssh_options=reach.ssh_options())

    def interrupt(self) -> None:
        """Stop the nodes (no cost for compute while stopped; running programs are lost)."""
        with self._lock:
            self._require(st.RUNNING, st.FAILED, action="interrupt")  # failed: stopping is always safe
            self._end_engines()
            self._drop_launcher()
            with self._intent("interrupt"):
                provider = self._provider()
                if provider.name == "ssh":  # bring-your-own hosts are not ours to stop: end our processes only
                    self._kill_processes()
                nodes = provider.stop(self.handle, self.nodes())
                self._store_nodes(nodes)
                self.state.clear_workers(self.handle)
                self.state.update_cluster(self.handle, status=st.INTERRUPTED)
                if provider.name == "local":  # remote watchdogs end with their nodes (or ccdsl's processes)
                    from ccdsl.executor import guard

                    guard.disarm(node_access(self), self.state)

    def resume(self, progress: Progress | None = None) -> None:
        """Start the nodes again (they may come back with new addresses) and create fresh workers."""
        with self._lock:
            self._require(st.INTERRUPTED, action="resume")
            provider = self._provider()
            self._refuse_ec2_stopped(provider)
            with self._intent("resume"):
                report = progress or quiet
                try:
                    nodes = provider.start(self.handle, self.nodes())
                    self._store_nodes(nodes)
                    for n in nodes:
                        report(n.role, n.index, model.RUNNING)
                    if provider.name != "local":
                        nodes = make_ready(self.handle, nodes, self.config, report, deploying=False)
                        self.state.set_nodes(self.handle, nodes)
                except BaseException as exc:
                    self._stop_again(provider, exc)
                    raise
                self._new_workers()
                # the note said why it was not running (autostopped, stopped outside ccdsl, a resume that failed)
                self.state.update_cluster(self.handle, status=st.RUNNING, note="")
            if self.workdir:  # stopped disks keep the folder (a no-change sync); a replaced node gets it again
                if not os.path.isdir(self.workdir):
                    log.warning("%s: the working folder %s is gone from this machine; the nodes keep their copy "
                                "(ccdsl sync %s DIR names another)", self.handle, self.workdir, self.handle)
                else:
                    self._sync(self.workdir, setup=False)
            self._rearm()

    def _refuse_ec2_stopped(self, provider: Provider) -> None:
        """Spot nodes EC2 stopped itself (interrupted) cannot be started by anyone else: say so instead of
        sending StartInstances (refused) and stopping the rest again."""
        from ccdsl.executor import guard

        if not hasattr(provider, "ec2_stopped") or not guard.deployed_spot(self.record, self.config):
            return
        held = provider.ec2_stopped(self.handle)
        if held:
            why = ", ".join(sorted(set(held.values())))
            raise ClusterError(f"cannot resume cluster {self.handle}: EC2 stopped {len(held)} of its spot nodes "
                               f"({why}); only EC2 can start them again, which it does when capacity returns",
                               hint=f"'ccdsl clusters' shows it running then; 'ccdsl terminate {self.handle}' ends "
                                    "it (deploy again, on-demand or elsewhere, to go on now)")

    def _rearm(self) -> None:
        """Start the autostop watchdog again (stopping the nodes ended it), or, when autostop was turned off while
        the nodes were stopped (:data:`guard.STALE`), remove the old watchdog their boot script started with the old
        config; a failure is a warning and a note."""
        from ccdsl.errors import CcdslError
        from ccdsl.executor import guard

        settings = self.record.settings
        if not settings.get("autostop") and not settings.get(guard.STALE):
            return
        try:
            guard.arm(node_access(self), self.state)  # autostop off: disarms
            note = self.record.note
            if guard.stale_note(self.handle) in note:  # reconcile's, when EC2 started the nodes: done now
                self.state.update_cluster(self.handle, note=note.replace("; " + guard.stale_note(self.handle), ""))
        except CcdslError as exc:
            what = "armed again" if settings.get("autostop") else "removed from the nodes (it was turned off)"
            text = f"autostop could not be {what} ({exc.message}); run 'ccdsl autostop {self.handle} ...'"
            log.warning("%s: %s", self.handle, text)
            self.state.update_cluster(self.handle, note=text)

    def _stop_again(self, provider: Provider, exc: BaseException) -> None:
        """A resume that failed half way must not leave running (paid) nodes behind: stop them again; if even
        that fails, mark the cluster failed so ``ccdsl clusters`` shows it."""
        reason = getattr(exc, "message", None) or type(exc).__name__
        self.state.journal(self.handle, "resume-failed", error=reason)
        try:
            self.state.set_nodes(self.handle, provider.stop(self.handle, self.nodes()))
            self.state.update_cluster(self.handle, note=f"resume failed ({reason}); the nodes were stopped again")
        except BaseException as again:
            what = getattr(again, "message", None) or type(again).__name__
            self.state.update_cluster(self.handle, status=st.FAILED,
                                      note=f"resume failed ({reason}) and stopping again failed ({what})")

    def restart(self) -> None:
        """Kill every process ccdsl started on the nodes and create fresh workers (new ids)."""
        with self._lock:
            self._require(st.RUNNING, action="restart")
            self._end_engines()
            self._drop_launcher()
            with self._intent("restart"):
                self._kill_processes()
                self._new_workers()

    def terminate(self) -> None:
        """Release every resource of the cluster.  The provider checks that nothing remains."""
        with self._lock:
            record = self._require(*st.LIVE_STATUSES, action="terminate")
            if record.status == st.DEPLOYING and st.owner_alive(record):
                raise ClusterError(f"cluster {self.handle} is being deployed by process {record.owner_pid}",
                                   hint="wait for it, or press Ctrl-C there: an interrupted deploy cleans up")
            if record.status == st.RUNNING:
                self._end_engines()
            self._drop_launcher()
            with self._intent("terminate"):
                if self.provider == "local":
                    from ccdsl.executor import guard

                    guard.disarm(node_access(self), self.state)
                self._provider().terminate(self.handle, self.nodes())
                self.state.set_nodes(self.handle, [replace(n, state=model.TERMINATED) for n in self.nodes()])
                self.state.clear_workers(self.handle)
                # a note said what to do about the cluster (or why it failed): it is gone now, as asked
                self.state.update_cluster(self.handle, status=st.TERMINATED, owner_pid=None, note="")
                self.state.journal(self.handle, "terminated")
            remove_local_files(self.handle)

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
    handle, config, state = cluster.handle, cluster.config, cluster.state
    nodes = cluster.nodes()
    provider = cluster._provider()
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
    cluster._new_workers()
    cluster._rearm()  # a watchdog that died with its node (or was never armed) watches again


def remove_local_files(handle: str) -> None:
    """What this machine keeps for a live cluster and nothing needs once it is gone: its pinned host keys, its
    engines' connection files and its autostop folder (the watchdog's config, pid and log, activity marks)."""
    import shutil

    data = st.data_dir()
    (data / "known_hosts" / handle).unlink(missing_ok=True)
    shutil.rmtree(data / "engines" / handle, ignore_errors=True)
    shutil.rmtree(data / "autostop" / handle, ignore_errors=True)
    (data / "autostop" / f"{handle}.autostop").unlink(missing_ok=True)


def _past(verb: str) -> str:
    return {"interrupt": "interrupted", "resume": "resumed", "restart": "restarted", "terminate": "terminated"}.get(
        verb, verb)


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
