"""Persistent engines: one ipyparallel engine per MPI rank, kept running between calls, like the seed's
Distributed.jl workers.

    this machine                      node 0 (PeerWorkers) / the manager (ManagerWorkers)      every worker node
    ipp.Client --paramiko SSH-->  ipcontroller (client ports on 127.0.0.1 only)  <-- engines (cluster network)
               (direct-tcpip channels,                mpiexec -launcher ssh ... python -m ipyparallel.engine --mpi
                one SSH connection)

- The controller's client-facing ports listen on the node's 127.0.0.1, so the only way in is SSH: no port opens
  in the security group and nothing listens on a public address.  Engines reach the controller at the node's
  private address (``engine_ip``/``location`` are always given: ipyparallel's default is localhost).
- Engines are started by the cluster's own ``mpiexec`` (the same launcher, hosts and ssh wrapper as ``run``) with
  ``--mpi``, so engine id == MPI rank; they start in the synced project folder with it on ``sys.path``.
- The controller's connection files hold the session key: the node keeps them 0600 in the cluster directory,
  and this machine keeps a copy of the client file with the cluster's state, ``<data dir>/engines/<handle>/``,
  also 0600, which lets ``ccdsl.reconnect(handle).engines()`` in another process attach to the same engines.
- Local provider: controller and engines run on this machine, detached from the process that started them.

Trust: ipyparallel unpickles what engines send back.  The nodes are trusted, as for ``run``.

Activity (for the autostop watchdog): while an engine handles a request it touches a marker
``engine-<pid>`` in ``<cluster dir>/activity/`` on its node (``<data dir>/autostop/<handle>/activity/`` for the local
provider): at the start, every 30 s, at the end.  This machine's tunnel also touches
``<data dir>/engines/<handle>/activity`` on traffic (:func:`last_activity`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccdsl.errors import ExecutionError, MissingDependencyError
from ccdsl.executor import mpirun, shm
from ccdsl.executor.model import Node
from ccdsl.executor.parallel import parallel

if TYPE_CHECKING:
    from ccdsl.executor import ssh
    from ccdsl.executor import state as st
    from ccdsl.executor.access import NodeAccess

log = logging.getLogger(__name__)
CLIENT_PORTS = ("registration", "control", "mux", "task", "iopub", "notification", "broadcast")
REMOTE = "engines"  # inside the cluster directory on the controller's node
START_TIMEOUT = 120.0
# Stopping local engines: how long a process group has after SIGTERM to end cleanly, and the fail-safe after
# SIGKILL (which the kernel acts on at once: this bounds only a stuck kernel, never a normal stop).
TERM_GRACE = 3.0
KILL_FAIL_SAFE = 30.0


# Which process a pid is: its start time (field 22 of /proc/PID/stat, clock ticks since boot), its command line and
# the boot it belongs to.  engines.json keeps the pids for a later process to kill; after a reboot, or once the
# engines are gone, the same numbers may name someone else's processes, which must not be killed.  The same code
# runs here (local engines) and on the controller's node (``python -c``, pids as arguments).
_IDENTITY = r"""
import json, sys
def identity(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            start = f.read().rsplit(b")", 1)[1].split()[19].decode()
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read().decode("utf-8", "replace")
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except (OSError, IndexError, ValueError):
        return None
    return [start, cmdline, boot]
if __name__ == "__main__":
    print(json.dumps({p: identity(int(p)) for p in sys.argv[1:]}))
"""
_identity_code: dict[str, Any] = {"__name__": "ccdsl_identity"}
exec(compile(_IDENTITY, "<ccdsl identity>", "exec"), _identity_code)  # the function, defined once for both sides


def identity(pid: int) -> list[str] | None:
    """[start time, command line, boot id] of the local process ``pid``; None when there is none."""
    found: list[str] | None = _identity_code["identity"](pid)
    return found


def same_process(recorded: object, now: object) -> bool:
    """Whether the identity ``now`` (see :data:`_IDENTITY`) is the process ``recorded`` at start.

    Start time and boot id decide (a reused pid starts later).  The command line must match too, unless it now
    reads empty: a process that is exiting has released its memory, command line included, before it becomes a
    zombie.  The engines' mpiexec is often just there when they are stopped (its ranks end with the controller's
    shutdown), and was left unkilled and unwaited-for as "no longer theirs" (issue 19).  Nor does an empty
    *recorded* command line count against it: ``Popen`` returns once the child's exec has begun, and
    /proc/PID/cmdline reads empty until the kernel has set up the new program's arguments (most of the time, on
    this machine: 238 of 300 ``Popen`` calls), so the engines' mpiexec was recorded so and left running."""
    if not (isinstance(recorded, list) and isinstance(now, list) and len(recorded) == len(now) == 3):
        return False
    same_command = recorded[1] == now[1] or "" in (recorded[1], now[1])
    return bool(recorded[0] == now[0] and recorded[2] == now[2] and same_command)


def state_dir(handle: str, *, create: bool = False) -> Path:
    """Where this machine keeps a cluster's engine connection file and pids (mode 0700)."""
    from ccdsl.executor import state

    d = state.data_dir() / "engines" / handle
    if create:
        d.parent.mkdir(exist_ok=True, mode=0o700)
        d.mkdir(exist_ok=True, mode=0o700)
    return d


def last_activity(handle: str) -> float | None:
    """When engine traffic last passed through a tunnel of this machine (epoch seconds), None if never.
    The hook an autostop watchdog reads to count engine tasks as activity."""
    try:
        return (state_dir(handle) / "activity").stat().st_mtime
    except OSError:
        return None


def _write_private(path: Path, data: str) -> None:
    fd = os.open(str(path) + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.replace(str(path) + ".tmp", path)


def _import_ipp() -> Any:
    try:
        import ipyparallel
    except ImportError as exc:
        raise MissingDependencyError("ipyparallel", "mpi") from exc
    return ipyparallel


# -- the tunnel ---------------------------------------------------------------------------------------------------
class Tunnel:
    """Local ports on 127.0.0.1 forwarded to ports of the controller node's 127.0.0.1 (``opener(port)`` returns
    a connected socket-like object: a paramiko direct-tcpip channel, or a plain socket in local mode)."""

    def __init__(self, opener: Callable[[int], Any], ports: Sequence[int], activity: Path | None = None) -> None:
        self.opener, self.activity = opener, activity
        self._closed = False
        self._last_mark = 0.0
        self._listeners: dict[int, socket.socket] = {}
        self._conns: list[Any] = []
        self._lock = threading.Lock()
        for port in ports:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            self._listeners[port] = listener
            threading.Thread(target=self._accept, args=(listener, port), daemon=True,
                             name=f"ccdsl-tunnel-{port}").start()

    def local_port(self, remote: int) -> int:
        port: int = self._listeners[remote].getsockname()[1]  # typeshed: getsockname() is Any (by family)
        return port

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self._closed:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = self.opener(port)
            except Exception:  # the client sees a closed connection and reconnects
                conn.close()
                continue
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns += [conn, upstream]
            threading.Thread(target=self._pump, args=(conn, upstream), daemon=True).start()

    def _mark(self) -> None:
        now = time.time()
        if self.activity is not None and now - self._last_mark >= 1.0:
            self._last_mark = now
            try:
                self.activity.touch(mode=0o600)
                os.utime(self.activity, (now, now))
            except OSError:
                pass

    def _pump(self, conn: socket.socket, upstream: Any) -> None:
        try:
            while not self._closed:
                ready, _, _ = select.select([conn, upstream], [], [], 1.0)
                for src in ready:
                    data = src.recv(262144)
                    if not data:
                        return
                    (upstream if src is conn else conn).sendall(data)
                    self._mark()
        except (OSError, EOFError):
            pass
        finally:
            for s in (conn, upstream):
                try:
                    s.close()
                except Exception:
                    pass

    def close(self) -> None:
        self._closed = True
        for listener in self._listeners.values():
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.close()
            except Exception:
                pass


def client_info(info: dict[str, Any], tunnel: Tunnel) -> dict[str, Any]:
    """The controller's client connection info, pointed at the tunnel's local ends."""
    out = dict(info)
    out["interface"] = "tcp://127.0.0.1"
    out["location"] = "127.0.0.1"
    out["ssh"] = ""
    for key in CLIENT_PORTS:
        out[key] = tunnel.local_port(int(info[key]))
    return out


# -- starting -----------------------------------------------------------------------------------------------------
def _controller_args(python: str, profile: str, address: str) -> list[str]:
    # client sockets on 127.0.0.1 only (reached through SSH); engine sockets on the cluster address
    return [python, "-m", "ipyparallel.controller", f"--profile-dir={profile}",
            f"--IPController.engine_ip={address}", "--IPController.client_ip=127.0.0.1", f"--location={address}",
            # a new engine is registered about two heartbeats after it connects: beat every 300 ms (not 1 s), and
            # call an engine dead after 50 missed beats (15 s, ipyparallel's default is 10 s)
            "--ping=300", "--HeartMonitor.max_heartmonitor_misses=50", "--log-level=WARN"]


# Run in every engine at start (``--IPEngine.startup_command``): while the engine handles a request (execute,
# apply, ...), keep touching ``$CCDSL_ACTIVITY_DIR/engine-<pid>`` (at the start, every 30 s, at the end), so an
# autostop watchdog on the node sees engine tasks, long ones included, as activity.  Idle engines touch nothing.
# ``<pid>.busy`` exists while a request runs: the watchdog counts it as activity for as long as the engine
# process lives, whatever the idle period (a task longer than the period keeps the cluster up).
_ACTIVITY_HOOK = """
def _ccdsl_activity():
    import os, threading, time
    d = os.environ.get("CCDSL_ACTIVITY_DIR")
    if not d:
        return
    path = os.path.join(d, "engine-%d" % os.getpid())
    flag = os.path.join(d, "%d.busy" % os.getpid())
    busy = [0]
    def mark(on):
        try:
            if on:
                open(flag, "a").close()
            else:
                os.unlink(flag)
        except OSError:
            pass
    def touch():
        try:
            os.makedirs(d, exist_ok=True)
            with open(path, "a"):
                pass
            os.utime(path, None)
        except OSError:
            pass
    def beat():
        while True:
            time.sleep(30)
            if busy[0]:
                touch()
    threading.Thread(target=beat, daemon=True, name="ccdsl-activity").start()
    kernel = get_ipython().kernel
    pre, post = kernel.pre_handler_hook, kernel.post_handler_hook
    def pre_hook():
        busy[0] += 1
        touch()
        mark(True)
        pre()
    def post_hook():
        busy[0] = max(0, busy[0] - 1)
        touch()
        if not busy[0]:
            mark(False)
        post()
    kernel.pre_handler_hook, kernel.post_handler_hook = pre_hook, post_hook
_ccdsl_activity()
del _ccdsl_activity
"""


def _engine_args(python: str, profile: str) -> list[str]:
    import base64

    hook = base64.b64encode(_ACTIVITY_HOOK.encode()).decode()
    # no nanny: ipyparallel starts it in a session of its own, where killing the MPI job does not reach it
    return [python, "-m", "ipyparallel.engine", "--mpi", f"--profile-dir={profile}", "--log-level=WARN",
            "--IPEngine.enable_nanny=False",
            f"--IPEngine.startup_command=import base64; exec(base64.b64decode('{hook}').decode()); del base64"]


def activity_dir(access: NodeAccess) -> str:
    """Where engines leave their activity markers: ``<cluster dir>/activity`` on a node; for the local provider,
    ``<data dir>/autostop/<handle>/activity`` (where the autostop watchdog of issue 11 looks)."""
    from ccdsl.executor import state
    from ccdsl.executor.access import split_roles

    if access.provider == "local":
        return str(state.data_dir() / "autostop" / access.handle / "activity")
    workers, _ = split_roles(access.nodes())
    return f"{workers[0].extra['ccdsl_dir']}/activity"


class EngineJob:
    """The engines' controller and MPI job as processes of one cluster: where they run, whether they still live,
    what their log says, and ending them.  :class:`Engines` adds starting them, the client's connection and what
    to say when they died."""

    def __init__(self, access: NodeAccess, state: st.State) -> None:
        self.access = access
        self.state = state
        self.handle = access.handle
        self._pool: ssh.Connections | None = None

    # -- where things are ---------------------------------------------------------------------------------------
    @property
    def local(self) -> bool:
        return self.access.local

    def _roles(self) -> tuple[list[Node], Node]:
        workers, manager = self._split()
        return workers, manager or workers[0]

    def _ssh(self) -> ssh.Connections:
        if self._pool is None:
            self._pool = self.access.connections()
        return self._pool

    def _split(self) -> tuple[list[Node], Node | None]:
        return self.access.workers, self.access.manager

    def _run(self, node: Node, command: str, timeout: float = 60.0) -> ssh.Result:
        from ccdsl.executor import ssh

        return ssh.run(self._ssh().get(node), command, node=node, timeout=timeout)

    def _saved(self) -> dict[str, Any] | None:
        try:
            saved = json.loads((state_dir(self.handle) / "engines.json").read_text())
        except (OSError, ValueError):
            return None
        return saved if isinstance(saved, dict) else None  # any other JSON is no record either

    # -- health and stopping ------------------------------------------------------------------------------------
    def _job_alive(self, saved: dict[str, Any]) -> bool:
        pids = [saved["controller_pid"], saved["mpiexec_pid"]]
        if saved["mode"] == "local":
            return all(_pid_alive(p) for p in pids)
        _, via = self._roles()
        try:
            res = self._run(via, " && ".join(f"kill -0 {int(p)}" for p in pids) + " 2>/dev/null", timeout=20)
        except ExecutionError:
            return False
        return res.code == 0

    def _log(self, saved: dict[str, Any]) -> str:
        try:
            if saved["mode"] == "local":
                return Path(saved["log"]).read_text(errors="replace")[-4000:]
            _, via = self._roles()
            return self._run(via, f"tail -c 4000 {shlex.quote(saved['log'])}", timeout=20).stdout
        except Exception:  # the error names what it can
            return ""

    def _identities(self, saved: dict[str, Any]) -> dict[str, list[str] | None]:
        """The identity (see :data:`_IDENTITY`) of each pid of ``saved`` now, where they run."""
        pids = [int(saved["controller_pid"]), int(saved["mpiexec_pid"])]
        if saved["mode"] == "local":
            return {str(p): identity(p) for p in pids}
        _, via = self._roles()
        python = via.extra.get("python") or "python3"
        res = self._run(via, shlex.join([python, "-c", _IDENTITY, *map(str, pids)]), timeout=30)
        try:
            found = json.loads(res.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError, RecursionError):
            return {}
        return found if isinstance(found, dict) else {}

    def _kill(self, saved: dict[str, Any]) -> None:
        """Kill the process groups of the controller and mpiexec, each only while its pid is still the process
        recorded at start (start time, command line, boot): a reused pid is someone else's."""
        recorded = saved.get("identity")
        now = self._identities(saved)
        groups = [int(p) for p in (saved["mpiexec_pid"], saved["controller_pid"])
                  if isinstance(recorded, dict) and same_process(recorded.get(str(p)), now.get(str(p)))]
        if len(groups) < 2:
            log.info("%s: %d of the engines' recorded processes are no longer theirs; not killed", self.handle,
                     2 - len(groups))
        if saved["mode"] == "local":
            from ccdsl.executor import mpi

            for pid in groups:
                gforker = pid == saved["mpiexec_pid"] and saved.get("gforker") is True
                _kill_local(pid, first=mpi.GFORKER_END if gforker else signal.SIGTERM)
            return
        from ccdsl.executor import nodedir

        workers, via = self._roles()
        if groups:
            kill = " ".join(f"-{p}" for p in groups)
            # SIGTERM, then SIGKILL only to a group still there once it had TERM_GRACE to go: a loaded node gets
            # its grace, and an idle one is not kept waiting a fixed time
            alive = " || ".join(f"kill -0 -- -{p} 2>/dev/null" for p in groups)
            self._run(via, f"kill -TERM -- {kill} 2>/dev/null; i=0; while [ $i -lt {int(TERM_GRACE * 20)} ] && "
                           f"{{ {alive}; }}; do sleep 0.05; i=$((i + 1)); done; kill -KILL -- {kill} 2>/dev/null; "
                           "true", timeout=30 + TERM_GRACE)
        # engines on the other nodes end with their mpiexec; anything left is killed by its profile path
        e = f"{via.extra['ccdsl_dir']}/{REMOTE}/"
        pattern = nodedir.pkill_pattern(e)

        def clean(node: Node) -> None:
            self._run(node, f"pkill -KILL -f {pattern} 2>/dev/null; true", timeout=30)

        parallel(clean, list({n.instance_id: n for n in [via, *workers]}.values()))


class Engines(EngineJob):
    """The engines of one cluster, seen from this process: start, attach, stop.  ``Cluster.engines()`` owns one.

    ``access`` says where the nodes are; the cluster gives a fresh one before each start (a sync may have changed
    the folder the engines start in).  ``state`` records what happened in the cluster's journal."""

    def __init__(self, access: NodeAccess, state: st.State) -> None:
        super().__init__(access, state)
        self.client: Any = None  # an ipyparallel.Client: ipyparallel ships no types
        self.tunnel: Tunnel | None = None

    # -- public -------------------------------------------------------------------------------------------------
    def client_for(self, timeout: float = START_TIMEOUT) -> Any:
        """A connected Client with every engine registered: attach to running engines, else start them."""
        if self.client is not None:
            self._check_alive()
            return self.client
        saved = self._saved()
        if saved is not None and not self._job_alive(saved):
            self._raise_dead(saved)
        if saved is None:
            saved = self._start()
        client = self._connect(saved, timeout)
        if "identity" not in saved:  # remote: recorded once the engines registered (every exec is done by then)
            saved = {**saved, "identity": self._identities(saved)}
            _write_private(state_dir(self.handle) / "engines.json", json.dumps(saved, indent=1))
        return client

    def stop(self) -> None:
        """Stop the engines and the controller (on every node), close the tunnel, forget the connection file."""
        saved = self._saved()
        self._disconnect(shutdown=True)
        if saved is not None:
            try:
                self._kill(saved)
            except Exception:  # a node that is gone has nothing left to kill
                pass
        d = state_dir(self.handle)
        for name in ("engines.json", "client.json"):
            (d / name).unlink(missing_ok=True)
        self.close()

    def close(self) -> None:
        """Close this process' client, tunnel and connections (the engines keep running)."""
        self._disconnect(shutdown=False)
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    # -- start --------------------------------------------------------------------------------------------------
    def _start(self) -> dict[str, Any]:
        self.state.journal(self.handle, "engines-start")
        saved = self._start_local() if self.local else self._start_remote()
        d = state_dir(self.handle, create=True)
        _write_private(d / "client.json", json.dumps(saved.pop("client"), indent=1))
        _write_private(d / "engines.json", json.dumps(saved, indent=1))
        return saved

    def _start_local(self) -> dict[str, Any]:
        from ccdsl.executor import mpi

        d = state_dir(self.handle, create=True)
        profile, engine_profile = d / "profile", d / "engine-profile"
        security = profile / "security"
        for f in ("ipcontroller-client.json", "ipcontroller-engine.json"):
            (security / f).unlink(missing_ok=True)
        engine_profile.mkdir(exist_ok=True, mode=0o700)
        with open(d / "controller.log", "ab") as log:  # the controller keeps its own copy of the descriptor
            controller = subprocess.Popen(_controller_args(sys.executable, str(profile), "127.0.0.1"),
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        engine_file = security / "ipcontroller-engine.json"
        client_file = security / "ipcontroller-client.json"
        deadline = time.monotonic() + 60
        while not (engine_file.exists() and client_file.exists()):
            if controller.poll() is not None or time.monotonic() > deadline:
                _kill_local(controller.pid)
                raise ExecutionError("the ipyparallel controller did not start on this machine: "
                                     + _tail((d / "controller.log").read_text(errors="replace")))
            time.sleep(0.05)
        time.sleep(0.05)  # the files are written whole, then closed: let the writer finish
        size = self.access.processes_per_node * len(self._split()[0])
        env = dict(os.environ)
        env["IPP_CONNECTION_INFO"] = engine_file.read_text()
        env["CCDSL_ACTIVITY_DIR"] = activity_dir(self.access)
        folder = self.access.folder
        if folder:
            env["PYTHONPATH"] = folder + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        shm.sweep()  # a segment a killed job left could carry this job's name (see ccdsl.executor.shm)
        with open(d / "engines.log", "ab") as log:  # the engines write it themselves under gforker (output=)
            command = mpi.local_command(size, _engine_args(sys.executable, str(engine_profile)),
                                        output=(log.fileno(), log.fileno()))
            job = subprocess.Popen(command.argv, cwd=folder or str(d), env=mpi.local_env(env),
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                   pass_fds=(log.fileno(),) if command.gforker else ())
        return {"mode": "local", "size": size, "controller_pid": controller.pid, "mpiexec_pid": job.pid,
                "gforker": command.gforker,
                "identity": {str(p): identity(p) for p in (controller.pid, job.pid)},
                "log": str(d / "engines.log"), "client": json.loads(client_file.read_text()),
                "started": time.time()}

    def _start_remote(self) -> dict[str, Any]:
        """One SSH command on the controller's node: start the controller, wait for its connection files, start
        the engines' mpiexec; print both pids and the client connection file."""
        workers, via = self._roles()
        base = via.extra["ccdsl_dir"]
        e = f"{base}/{REMOTE}"
        address = via.private_address or via.address or ""
        python = via.extra.get("python") or "python3"
        q = shlex.quote
        security = f"{e}/profile/security"
        controller = shlex.join(_controller_args(python, f"{e}/profile", address))
        ppn = self.access.processes_per_node
        hosts = ",".join(f"{n.private_address or n.address}:{ppn}" for n in workers)
        options = self.access.config.mpi
        folder = self.access.folder
        engine_profile = f"{e}/engine-profile"
        # ipengine does not create its profile folder, and every node needs its own: each rank makes it first
        engine = ["sh", "-c", f"umask 077; mkdir -p {q(engine_profile)} && exec \"$@\"", "ccdsl-engine",
                  *_engine_args(workers[0].extra.get("python") or python, engine_profile)]
        argv = [via.extra.get("mpiexec") or "mpiexec", "-launcher", "ssh", "-launcher-exec", f"{base}/ssh",
                "-hosts", hosts, *(["-iface", options.iface] if options.iface else []), *options.extra_args,
                # hydra starts ranks in mpiexec's working directory unless told: that is node 0's only
                "-wdir", folder or base, *(["-genv", "PYTHONPATH", folder] if folder else []),
                "-genv", "CCDSL_ACTIVITY_DIR", activity_dir(self.access), "-n", str(ppn * len(workers)), *engine]
        if mpirun.wanted([via, *workers]):  # EFA: Open MPI's mpirun, the same job
            argv = mpirun.argv(via.extra["mpiexec"], [n.private_address or n.address or "" for n in workers], ppn,
                               ppn * len(workers), engine, agent=f"{base}/ssh", iface=options.iface or None,
                               env={**({"PYTHONPATH": folder} if folder else {}),
                                    "CCDSL_ACTIVITY_DIR": activity_dir(self.access)},
                               extra=options.extra_args, wdir=folder or base)
        client_file, engine_file = f"{security}/ipcontroller-client.json", f"{security}/ipcontroller-engine.json"
        # 'cd X; setsid nohup ... &' (not 'cd X && ... &', which backgrounds the whole list and keeps SSH's output
        # open); the connection files appear about a second after the controller starts
        res = self._run(via, f"umask 077; mkdir -p {q(e)} && rm -f {q(security)}/ipcontroller-*.json; cd {q(e)}; "
                             f"setsid nohup {controller} > {q(e)}/controller.log 2>&1 < /dev/null & p=$!; "
                             f"for i in $(seq 600); do [ -s {q(client_file)} ] && [ -s {q(engine_file)} ] && break; "
                             f"kill -0 $p 2>/dev/null || exit 0; sleep 0.05; done; sleep 0.05; "
                             f"IPP_CONNECTION_INFO=\"$(cat {q(engine_file)})\" setsid nohup {shlex.join(argv)} "
                             f"> {q(e)}/engines.log 2>&1 < /dev/null & echo $p $!; cat {q(client_file)}", timeout=90)
        lines = res.stdout.strip().splitlines()
        try:
            controller_pid, mpiexec_pid = (int(x) for x in lines[0].split())
            client = json.loads("\n".join(lines[1:]))
        except (IndexError, ValueError):
            log = self._run(via, f"tail -c 1500 {q(e)}/controller.log").stdout
            raise ExecutionError(f"the ipyparallel controller did not start on {_name(via)}: {_tail(log)}",
                                 hint="the nodes' python needs ipyparallel: pip install ipyparallel") from None
        return {"mode": "ssh", "size": ppn * len(workers), "via": via.instance_id, "controller_pid": controller_pid,
                "mpiexec_pid": mpiexec_pid, "log": f"{e}/engines.log", "client": client, "started": time.time()}

    # -- connect ------------------------------------------------------------------------------------------------
    def _connect(self, saved: dict[str, Any], timeout: float) -> Any:
        ipp = _import_ipp()
        info = json.loads((state_dir(self.handle) / "client.json").read_text())
        ports = [int(info[k]) for k in CLIENT_PORTS]
        activity = state_dir(self.handle) / "activity"
        if saved["mode"] == "local":
            self.tunnel = Tunnel(lambda port: socket.create_connection(("127.0.0.1", port), timeout=10), ports,
                                 activity)
        else:
            _, via = self._roles()
            transport = self._ssh().get(via).get_transport()
            self.tunnel = Tunnel(lambda port: transport.open_channel("direct-tcpip", ("127.0.0.1", port),
                                                                     ("127.0.0.1", 0), timeout=10), ports, activity)
        client = ipp.Client(client_info(info, self.tunnel))  # positionally: url_file= is ignored in 9.x
        client.block = True  # views on one engine (rc[0]) would otherwise return AsyncResults
        _close_quietly_on_shutdown(client)
        deadline = time.monotonic() + timeout
        try:
            while len(client.ids) < saved["size"]:
                if not self._job_alive(saved):
                    self._raise_dead(saved)
                if time.monotonic() > deadline:
                    raise ExecutionError(f"only {len(client.ids)} of {saved['size']} engines registered within "
                                         f"{timeout:g} s: {_tail(self._log(saved))}")
                try:
                    # no progress bar: in IPython each 1 s wait would leave one behind, stuck at 0/N
                    client.wait_for_engines(saved["size"], timeout=1.0, interactive=False)
                except TimeoutError:
                    pass
        except BaseException:
            client.close()
            self.tunnel.close()
            self.tunnel = None
            raise
        self.client = client
        return client

    def _disconnect(self, *, shutdown: bool) -> None:
        client, self.client = self.client, None
        if client is not None:
            if shutdown:
                try:
                    client.shutdown(hub=True, block=False)
                except Exception:  # the processes are killed below anyway
                    pass
            try:
                client.close()
            except Exception:
                pass
        if self.tunnel is not None:
            self.tunnel.close()
            self.tunnel = None

    def _check_alive(self) -> None:
        saved = self._saved()
        if saved is None or not self._job_alive(saved):
            self._disconnect(shutdown=False)
            if saved is None:
                raise ExecutionError(f"the engines of cluster {self.handle} were stopped")
            self._raise_dead(saved)

    def _raise_dead(self, saved: dict[str, Any]) -> None:
        """One dead rank ends the MPI job: say so, naming the node where it died (from mpiexec's report)."""
        log = self._log(saved)
        where = "this machine" if saved["mode"] == "local" else None
        if where is None:
            workers = self._split()[0]
            by_address = {a: n for n in workers for a in (n.private_address, n.address) if a}
            nodes = [by_address[a] for a in re.findall(r"RUNNING AT (\S+)", log) if a in by_address]
            # hydra's proxy N runs on the N-th host of -hosts (a proxy that failed names itself so)
            nodes += [workers[int(i)] for i in re.findall(r"\[proxy:(\d+)@", log) if int(i) < len(workers)]
            where = _name(nodes[0]) if nodes else "a node mpiexec did not name"
        exit_status = re.findall(r"EXIT STATUS: (\S+)", log)
        if not exit_status and saved["mode"] == "local":  # mpiexec.gforker reports "signaled with Killed"
            from ccdsl.executor import mpi

            died_of = mpi.gforker_signal([log])
            exit_status = [str(died_of)] if died_of else []
        detail = f" (exit status {exit_status[0]})" if exit_status else ""
        self.state.journal(self.handle, "engines-died", node=where)
        raise ExecutionError(f"the engines of cluster {self.handle} are gone: a rank died on {where}{detail}, and "
                             "one dead rank ends the whole MPI job" + (f"\n  last output:\n{_indent(_tail(log))}"
                                                                      if log.strip() else ""),
                             hint="cluster.stop_engines(), then cluster.engines() starts fresh ones")


def _close_quietly_on_shutdown(client: Any) -> None:
    """When the controller shuts down (another Client of the same engines stopped them: ``terminate`` in one
    session while ``reconnect(h).engines()`` holds another), ipyparallel closes the Client's sockets from inside
    its own I/O loop, under streams still registered there: two ``ZMQError: Socket operation on non-socket``
    tracebacks.  Closing from another thread stops that loop first, then closes the sockets: no noise."""
    handlers = getattr(client, "_notification_handlers", None)
    if isinstance(handlers, dict) and "shutdown_notification" in handlers:
        handlers["shutdown_notification"] = lambda msg: threading.Thread(
            target=client.close, name="ccdsl-engines-closed", daemon=True).start()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as dead
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def _kill_local(pid: int, first: int = signal.SIGTERM) -> None:
    """End the process group of ``pid`` (``first``, SIGTERM, then SIGKILL after a grace) and return once ``pid``
    itself has exited: the caller (``interrupt``, ``terminate``, ``stop_engines``) may say the engines are gone.
    Waits on a pidfd (an event: readable when the process has exited), reaping ``pid`` when it is a child of this
    process."""
    try:
        exited = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        for sig, wait in ((first, TERM_GRACE), (signal.SIGKILL, KILL_FAIL_SAFE)):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):  # no such group (any more), or not ours
                break
            if select.select([exited], [], [], wait)[0]:
                break
        else:
            log.warning("process %d did not exit %g s after SIGKILL", pid, KILL_FAIL_SAFE)
    finally:
        os.close(exited)
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it when it is a child of this process (a zombie is gone for ps)
    except ChildProcessError:
        pass


def _name(node: Node) -> str:
    from ccdsl.executor import ssh

    return ssh.describe(node)


def _tail(text: str, n: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())
