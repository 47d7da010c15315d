"""What :class:`~ccdsl.executor.cluster.Cluster`'s methods do, as steps over a small value: describe the cluster,
build its MPI launcher and engines client, and the lifecycle (interrupt, resume, restart, terminate, sync).

A :class:`Target` says which cluster (handle, configuration in force, records); each step reads the record when it
needs it and writes what it did back, so the facade keeps only what belongs to one ``Cluster`` object (its lock,
its MPI launcher, its engines client) and calls these steps under its lock.  The steps compose the services
beneath (providers, ``mpi``, ``workdir``, ``guard``, ``nodedir``) and never import the facade.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from ccdsl.errors import ClusterError
from ccdsl.executor import model
from ccdsl.executor import state as st
from ccdsl.executor.access import NodeAccess, split_roles
from ccdsl.executor.model import Node, Progress

if TYPE_CHECKING:
    from ccdsl.executor import engines, mpi
    from ccdsl.executor.config import Config
    from ccdsl.executor.model import Provider
    from ccdsl.executor.workdir import Stream, Synced, SyncProgress

log = logging.getLogger("ccdsl.executor")
MakeReady = Callable[..., list[Node]]  # (handle, nodes, config, progress, *, deploying) -> the nodes, ready


@dataclass(frozen=True)
class Target:
    """A cluster as the steps see it: its handle, its configuration (the contract's overrides applied) and the
    records.  Everything else is read from the record when a step needs it: another process may have changed it."""

    handle: str
    config: Config
    state: st.State

    @classmethod
    def load(cls, handle: str, config: Config | None = None, state: st.State | None = None) -> Target:
        """The cluster ``handle`` of the records (default: the data directory's), with ``config`` (default:
        ``ccdsl.toml``) under the contract's config parameters, which win over the file."""
        from ccdsl.executor import config as cfg

        state = state or st.State()
        record = state.get_cluster(handle)
        if record is None:
            raise ClusterError(f"no cluster with handle {handle}", hint="'ccdsl clusters' lists the known ones")
        overrides = record.settings.get("overrides") or {}
        return cls(handle, (config or cfg.load()).replace(**overrides), state)

    @property
    def record(self) -> st.ClusterRecord:
        record = self.state.get_cluster(self.handle)
        assert record is not None  # records are never deleted
        return record

    def nodes(self) -> list[Node]:
        return self.state.nodes(self.handle)

    @property
    def processes_per_node(self) -> int:
        return int(self.record.settings.get("processes_per_node", self.config.mpi.processes_per_node))

    @property
    def workdir(self) -> str | None:
        return self.record.settings.get("workdir")

    @property
    def markets(self) -> dict[str, str]:
        """Role -> market as deployed (see ``Cluster.markets``)."""
        recorded = {p.role: p.market for p in self.state.prices(self.handle) if p.market}
        return recorded or {str(k): str(v) for k, v in (self.record.settings.get("markets") or {}).items()}

    def workdir_on_nodes(self) -> str | None:
        """Where ranks and engines start: the synced folder as the nodes see it (None: no folder)."""
        from ccdsl.executor import workdir

        if not self.workdir:
            return None
        if self.record.provider == "local":
            return str(workdir.local_dir(self.handle))
        workers, _ = split_roles(self.nodes())
        return workdir.remote_dir(workers[0])

    def access(self, *, with_folder: bool = False) -> NodeAccess:
        """How the services reach the nodes, from the record now.  ``with_folder``: with the synced folder as the
        nodes see it (where runs and engines start; it needs prepared nodes)."""
        return NodeAccess(self.handle, self.record.provider, tuple(self.nodes()), self.config,
                          processes_per_node=self.processes_per_node,
                          folder=self.workdir_on_nodes() if with_folder else None)

    def provider(self) -> Provider:
        from ccdsl.executor.providers import base

        record = self.record
        return base.get(record.provider, self.config, dict(record.settings))


# -- what the facade shows and holds ----------------------------------------------------------------------------------
def summary(t: Target) -> str:
    """One line: handle, type, provider, shape, market and status (``repr(cluster)``, which must not fail)."""
    try:
        r = t.record
        workers, _manager = split_roles(t.nodes())
        shape = f"{workers[0].instance_type}×{len(workers)}" if workers else "no nodes"
        spot = " spot" if "spot" in t.markets.values() else ""
        return f"<Cluster {t.handle} {r.cluster_type} {r.provider} {shape}{spot} {r.status}>"
    except Exception:  # repr must not fail
        return f"<Cluster {t.handle}>"


def html(t: Target) -> str:
    """Jupyter: handle, status, price and the nodes as a table."""
    from ccdsl.executor import cost
    from ccdsl.resolution import html_escape, html_table

    r = t.record
    try:
        rate = cost.estimate(t.state, r).price_per_hour
    except Exception:  # a repr must not fail
        rate = None
    price = f", ${rate:.4f}/hour" if rate is not None else ""
    market = cost.market_summary(t.state.prices(t.handle))
    price += f" ({market})" if market else ""
    title = (f"<b>{html_escape(r.contract)}</b> {html_escape(t.handle)}: "
             f"{html_escape(r.cluster_type)} on {html_escape(r.provider)}, "
             f"{html_escape(r.status)}{html_escape(price)}")
    head = ("role", "index", "instance id", "instance type", "address", "private address", "state")
    rows = [(n.role, n.index, n.instance_id, n.instance_type, n.address or "", n.private_address or "", n.state)
            for n in t.nodes()]
    return html_table(title, head, rows)


def launcher(t: Target) -> mpi.Launcher:
    """The MPI launcher for the running cluster's nodes, starting ranks in the synced folder."""
    from ccdsl.executor import mpi

    reach = t.access(with_folder=True)
    options, ssh_options = mpi.options_from_config(
        t.config, known_hosts=None if reach.local else reach.known_hosts())
    return mpi.Launcher(reach.workers, processes_per_node=reach.processes_per_node,
                        mode="local" if reach.local else "ssh", via=reach.manager,
                        options=options, ssh_options=ssh_options, handle=t.handle,
                        workdir=reach.folder)


def rank_workers(t: Target, get_launcher: Callable[[], mpi.Launcher]) -> dict[int, int]:
    """MPI rank -> worker id: the workers are ``processes_per_node`` slots per node in the launcher's node order."""
    workers = t.state.workers(t.handle)
    if not workers:
        raise ClusterError(f"cluster {t.handle} has no workers ({t.record.status})")
    launcher = get_launcher()
    ppn = launcher.ppn
    position = {n.index: i for i, n in enumerate(launcher.nodes)}
    used: dict[int, int] = {}
    out = {}
    for rank, node_index in sorted(launcher.ranks().items()):
        slot = used.get(node_index, 0)
        used[node_index] = slot + 1
        out[rank] = workers[position[node_index] * ppn + slot]
    return out


def engines_for(t: Target, current: engines.Engines | None) -> engines.Engines:
    """This process's client of the engines: ``current``, or a new one; one not started yet gets the folder as it is
    now (a sync may have changed it since)."""
    from ccdsl.executor import engines

    if current is None:
        return engines.Engines(t.access(with_folder=True), t.state)
    if current.client is None:  # not started yet: a sync may have changed the folder since
        current.access = t.access(with_folder=True)
    return current


def stop_engines(t: Target, current: engines.Engines | None) -> None:
    """Stop the engines and their controller on every node (``current``: this process's client of them)."""
    from ccdsl.executor import engines

    if current is None:
        current = engines.Engines(t.access(), t.state)
    t.state.journal(t.handle, "engines-stop")
    current.stop()


def end_engines(t: Target, current: engines.Engines | None) -> None:
    """Before interrupt, restart and terminate: stop the engines if any run (best effort: the nodes may be
    gone; their processes are killed with the rest)."""
    from ccdsl.executor import engines

    if current is None and not (engines.state_dir(t.handle) / "engines.json").exists():
        return
    try:
        stop_engines(t, current)
    except Exception as exc:  # reported, the lifecycle step goes on
        log.warning("%s: could not stop the engines cleanly: %s", t.handle, getattr(exc, "message", exc))
        for name in ("engines.json", "client.json"):
            (engines.state_dir(t.handle) / name).unlink(missing_ok=True)


# -- owning a step ---------------------------------------------------------------------------------------------------
def require(t: Target, *statuses: str, action: str) -> st.ClusterRecord:
    """The record, if the cluster is in one of ``statuses`` and no other live process is changing it."""
    record = t.record
    if record.status not in statuses:
        hint = f"ccdsl terminate {t.handle}" if record.status == st.FAILED else None
        raise ClusterError(f"cannot {action} cluster {t.handle}: it is {record.status}", hint=hint)
    if (record.owner_pid is not None and record.owner_pid != os.getpid() and record.status != st.DEPLOYING
            and st.owner_alive(record)):
        verb = st.pending_verb(t.state, t.handle) or "changed"
        raise ClusterError(f"cluster {t.handle} is being {_past(verb)} by process {record.owner_pid}",
                           hint="wait for it to finish")
    return record


def require_terminable(t: Target) -> st.ClusterRecord:
    """:func:`require` for terminate: any live status, but not a deploy still under way in a live process."""
    record = require(t, *st.LIVE_STATUSES, action="terminate")
    if record.status == st.DEPLOYING and st.owner_alive(record):
        raise ClusterError(f"cluster {t.handle} is being deployed by process {record.owner_pid}",
                           hint="wait for it, or press Ctrl-C there: an interrupted deploy cleans up")
    return record


def _past(verb: str) -> str:
    return {"interrupt": "interrupted", "resume": "resumed", "restart": "restarted", "terminate": "terminated"}.get(
        verb, verb)


@contextmanager
def intent(t: Target, verb: str) -> Iterator[None]:
    """Record ``verb`` and this process as its owner *before* any call to the cloud, and clear the owner when
    the verb ends however it ends.  A process killed in between leaves the intent behind: ``clusters`` then
    sees a verb whose process is gone and sets the status from what the cloud reports (``deploy.reconcile``)."""
    t.state.update_cluster(t.handle, owner_pid=os.getpid(), owner_host=socket.gethostname())
    t.state.journal(t.handle, verb)
    try:
        yield
    finally:
        t.state.update_cluster(t.handle, owner_pid=None)
        t.state.journal(t.handle, f"{verb}-done")


def require_running(t: Target) -> None:
    """Runs need a running cluster: what to do when it is not."""
    status = t.record.status
    if status != st.RUNNING:
        raise ClusterError(f"cluster {t.handle} is {status}, not running", hint=not_running_hint(t))


def not_running_hint(t: Target) -> str:
    """What to do with a cluster that cannot run programs, by its status (and why it got there)."""
    record = t.record
    why = f" ({record.note})" if record.note else ""
    return {st.INTERRUPTED: f"resume it first: ccdsl resume {t.handle}",
            st.FAILED: f"it failed{why}; `ccdsl terminate {t.handle}` removes what is left of it, then "
                       "deploy a new one",
            st.DEPLOYING: "its deploy has not finished; `ccdsl clusters` shows when it is running",
            st.TERMINATED: f"it is gone{why}; deploy a new one (`ccdsl deploy FILE`)"}.get(
        record.status, "see `ccdsl clusters`")


# -- nodes and workers -----------------------------------------------------------------------------------------------
def store_nodes(t: Target, nodes: Sequence[Node]) -> None:
    """Keep the provider's answer as the nodes: a node it no longer reports (its instance is gone) is dropped
    from the record, or every later step would name it again."""
    keep = {(n.role, n.index) for n in nodes}
    gone = [n for n in t.nodes() if (n.role, n.index) not in keep]
    if gone:
        log.warning("%s: node(s) %s no longer exist; the cluster goes on without them", t.handle,
                    ", ".join(f"{n.role} {n.index} ({n.instance_id})" for n in gone))
        t.state.clear_nodes(t.handle)
    t.state.set_nodes(t.handle, nodes)


def new_workers(t: Target) -> list[int]:
    workers, _ = split_roles(t.nodes())
    return t.state.new_workers(t.handle, len(workers) * t.processes_per_node)


def kill_processes(t: Target) -> None:
    """Kill what ccdsl started on the nodes (they keep running: restart, or hosts that are never stopped)."""
    if t.record.provider == "local":
        return
    from ccdsl.executor import nodedir

    reach = t.access()
    nodedir.kill_processes(reach.workers, manager=reach.manager, ssh_options=reach.ssh_options())


# -- the steps -------------------------------------------------------------------------------------------------------
def interrupt(t: Target) -> None:
    """Stop the nodes (bring-your-own hosts: end ccdsl's processes on them) and forget the workers."""
    with intent(t, "interrupt"):
        provider = t.provider()
        if provider.name == "ssh":  # bring-your-own hosts are not ours to stop: end our processes only
            kill_processes(t)
        nodes = provider.stop(t.handle, t.nodes())
        store_nodes(t, nodes)
        t.state.clear_workers(t.handle)
        t.state.update_cluster(t.handle, status=st.INTERRUPTED)
        if provider.name == "local":  # remote watchdogs end with their nodes (or ccdsl's processes)
            from ccdsl.executor import guard

            guard.disarm(t.access(), t.state)


def resume(t: Target, report: Progress, make_ready: MakeReady) -> None:
    """Start the nodes again (they may come back with new addresses), make them ready (``make_ready``: the deploy's
    :func:`ccdsl.executor.cluster.make_ready`), create fresh workers, sync the folder again and arm the autostop
    watchdog again."""
    provider = t.provider()
    _refuse_ec2_stopped(t, provider)
    with intent(t, "resume"):
        try:
            nodes = provider.start(t.handle, t.nodes())
            store_nodes(t, nodes)
            for n in nodes:
                report(n.role, n.index, model.RUNNING)
            if provider.name != "local":
                nodes = make_ready(t.handle, nodes, t.config, report, deploying=False)
                t.state.set_nodes(t.handle, nodes)
        except BaseException as exc:
            _stop_again(t, provider, exc)
            raise
        new_workers(t)
        # the note said why it was not running (autostopped, stopped outside ccdsl, a resume that failed)
        t.state.update_cluster(t.handle, status=st.RUNNING, note="")
    folder = t.workdir
    if folder:  # stopped disks keep the folder (a no-change sync); a replaced node gets it again
        if not os.path.isdir(folder):
            log.warning("%s: the working folder %s is gone from this machine; the nodes keep their copy "
                        "(ccdsl sync %s DIR names another)", t.handle, folder, t.handle)
        else:
            sync_folder(t, folder, setup=False)
    rearm(t)


def _refuse_ec2_stopped(t: Target, provider: Provider) -> None:
    """Spot nodes EC2 stopped itself (interrupted) cannot be started by anyone else: say so instead of
    sending StartInstances (refused) and stopping the rest again."""
    from ccdsl.executor import guard

    if not hasattr(provider, "ec2_stopped") or not guard.deployed_spot(t.record, t.config):
        return
    held = provider.ec2_stopped(t.handle)
    if held:
        why = ", ".join(sorted(set(held.values())))
        raise ClusterError(f"cannot resume cluster {t.handle}: EC2 stopped {len(held)} of its spot nodes "
                           f"({why}); only EC2 can start them again, which it does when capacity returns",
                           hint=f"'ccdsl clusters' shows it running then; 'ccdsl terminate {t.handle}' ends "
                                "it (deploy again, on-demand or elsewhere, to go on now)")


def _stop_again(t: Target, provider: Provider, exc: BaseException) -> None:
    """A resume that failed half way must not leave running (paid) nodes behind: stop them again; if even
    that fails, mark the cluster failed so ``ccdsl clusters`` shows it."""
    reason = getattr(exc, "message", None) or type(exc).__name__
    t.state.journal(t.handle, "resume-failed", error=reason)
    try:
        t.state.set_nodes(t.handle, provider.stop(t.handle, t.nodes()))
        t.state.update_cluster(t.handle, note=f"resume failed ({reason}); the nodes were stopped again")
    except BaseException as again:
        what = getattr(again, "message", None) or type(again).__name__
        t.state.update_cluster(t.handle, status=st.FAILED,
                               note=f"resume failed ({reason}) and stopping again failed ({what})")


def rearm(t: Target) -> None:
    """Start the autostop watchdog again (stopping the nodes ended it), or, when autostop was turned off while
    the nodes were stopped (:data:`guard.STALE`), remove the old watchdog their boot script started with the old
    config; a failure is a warning and a note."""
    from ccdsl.errors import CcdslError
    from ccdsl.executor import guard

    settings = t.record.settings
    if not settings.get("autostop") and not settings.get(guard.STALE):
        return
    try:
        guard.arm(t.access(), t.state)  # autostop off: disarms
        note = t.record.note
        if guard.stale_note(t.handle) in note:  # reconcile's, when EC2 started the nodes: done now
            t.state.update_cluster(t.handle, note=note.replace("; " + guard.stale_note(t.handle), ""))
    except CcdslError as exc:
        what = "armed again" if settings.get("autostop") else "removed from the nodes (it was turned off)"
        text = f"autostop could not be {what} ({exc.message}); run 'ccdsl autostop {t.handle} ...'"
        log.warning("%s: %s", t.handle, text)
        t.state.update_cluster(t.handle, note=text)


def terminate(t: Target) -> None:
    """Release every resource of the cluster (the provider checks that nothing remains), then what this machine
    keeps for it."""
    with intent(t, "terminate"):
        if t.record.provider == "local":
            from ccdsl.executor import guard

            guard.disarm(t.access(), t.state)
        t.provider().terminate(t.handle, t.nodes())
        t.state.set_nodes(t.handle, [replace(n, state=model.TERMINATED) for n in t.nodes()])
        t.state.clear_workers(t.handle)
        # a note said what to do about the cluster (or why it failed): it is gone now, as asked
        t.state.update_cluster(t.handle, status=st.TERMINATED, owner_pid=None, note="")
        t.state.journal(t.handle, "terminated")
    remove_local_files(t.handle)


def remove_local_files(handle: str) -> None:
    """What this machine keeps for a live cluster and nothing needs once it is gone: its pinned host keys, its
    engines' connection files and its autostop folder (the watchdog's config, pid and log, activity marks)."""
    import shutil

    data = st.data_dir()
    (data / "known_hosts" / handle).unlink(missing_ok=True)
    shutil.rmtree(data / "engines" / handle, ignore_errors=True)
    shutil.rmtree(data / "autostop" / handle, ignore_errors=True)
    (data / "autostop" / f"{handle}.autostop").unlink(missing_ok=True)


# -- the project's folder --------------------------------------------------------------------------------------------
def sync(t: Target, path: str | None, *, setup: bool, replace: bool, progress: SyncProgress | None = None,
         stream: Stream | None = None) -> list[Synced]:
    """``Cluster.sync`` once the cluster is known to be running: check the request, record the folder, sync."""
    from ccdsl.executor import workdir

    folder = path or t.workdir
    if not folder:
        raise ClusterError(f"cluster {t.handle} has no working folder",
                           hint=f"name one: cluster.sync('proj/'), or ccdsl sync {t.handle} proj/")
    folder = str(workdir.check_folder(folder))
    current = t.workdir
    if current and folder != current and not replace:
        raise ClusterError(
            f"cluster {t.handle} holds a copy of {current}, not of {folder}: syncing {folder} would "
            f"replace it on every node (the files only {current} has would be deleted there)",
            hint=f"to switch folders: ccdsl sync {t.handle} {folder} --replace (Python: "
                 "cluster.sync(path, replace=True)); to update the nodes' copy: ccdsl sync "
                 f"{t.handle}")
    command = t.record.settings.get("setup")
    if setup and not command:
        raise ClusterError(f"cluster {t.handle} has no set-up command",
                           hint="deploy with setup='pip install -r requirements.txt' (--setup CMD)")
    t.state.update_cluster(t.handle, settings={"workdir": folder})
    t.state.journal(t.handle, "sync", folder=folder, setup=setup)
    return sync_folder(t, folder, setup=setup, progress=progress, stream=stream)


def sync_folder(t: Target, folder: str, *, setup: bool, progress: SyncProgress | None = None,
                stream: Stream | None = None) -> list[Synced]:
    """Copy ``folder`` to every node; run the set-up command where asked (``setup``) or where the copy is new."""
    from ccdsl.executor import workdir

    reach = t.access()
    synced = workdir.sync_nodes(reach, folder, progress=progress)
    command = t.record.settings.get("setup")
    fresh = {s.instance_id for s in synced if s.fresh}
    if command and (setup or fresh):  # a fresh shared folder is every node's: the set-up runs on all
        workdir.setup_nodes(reach, command, stream=stream,
                            only=None if setup or reach.local or workdir.shared(reach) else fresh)
    return synced
