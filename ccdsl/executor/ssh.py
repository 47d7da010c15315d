"""SSH transport of the executor: connect to nodes, run commands, copy files, wait until a node is usable.

paramiko is imported lazily (only when a connection is made), so importing this module is cheap.

Host keys are pinned: the first key a node presents is recorded (cloud instances in the cluster's ``known_hosts``
file in the data dir, keyed by *instance id*, which survives the new addresses a resume brings; the ssh provider's
hosts in one file for all clusters, keyed by host name, after the user's own ``~/.ssh/known_hosts``), and every
later connection must present the same key.  A node is never trusted blindly after first contact: ``accept_new``
is only set while a cluster is being deployed.  Messages name keys by their SHA256 fingerprints, as OpenSSH does.

Every failure is a :class:`~ccdsl.errors.ProviderError` (cannot reach, cannot log in, key changed) or an
:class:`~ccdsl.errors.ExecutionError` (a command failed) that names the host.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, cast

from ccdsl.errors import ExecutionError, MissingDependencyError, ProviderError, printable
from ccdsl.errors import HostKeyError as HostKeyError  # re-exported: the transport's "key changed" failure
from ccdsl.executor.model import REACHABLE, READY, Node

if TYPE_CHECKING:  # pragma: no cover
    # paramiko ships no types (ignore_missing_imports in pyproject.toml): its classes in the annotations below name
    # what travels, and read as Any -- the one untyped boundary of this module
    import paramiko


@dataclass(frozen=True)
class Jump:
    """How ccdsl reaches nodes it cannot connect to directly (``[aws] private`` with ``jump_host``).

    ``bastion``: every node is reached through this host (a ``direct-tcpip`` channel to the node's private
    address), whose key is checked in ``known_hosts`` (the user's OpenSSH file) first.  Else (``"auto"``) through
    the cluster's own public node: the manager of a ManagerWorkers cluster, PeerWorkers' node 0.  Only the
    connection pool reads it: the services ask the pool for a node and never learn how it was reached."""

    bastion: Node | None = None
    known_hosts: str | None = None  # an OpenSSH known_hosts consulted first for the bastion's key


@dataclass(frozen=True)
class SshOptions:
    """How ccdsl talks SSH.  ``known_hosts`` is the cluster's pinned-keys file (None: pin in memory only)."""

    known_hosts: str | None = None
    accept_new: bool = False  # record keys of nodes not seen before (deploy only)
    user_known_hosts: str | None = None  # an OpenSSH known_hosts consulted first, by address (ssh-provider hosts)
    connect_timeout: float = 10.0
    command_timeout: float = 120.0
    keepalive: float = 5.0
    liveness: float = 10.0  # during a long silent run, check the node still answers after this many seconds
    jump: Jump | None = None  # None: nodes are reached directly (or workers through the manager, ManagerWorkers)


def describe(node: Node) -> str:
    """How errors name a node: role, index, instance id and address."""
    addr = node.address or node.private_address or "?"
    return f"{node.role} {node.index} ({node.instance_id} at {addr})"


def _paramiko() -> Any:  # the paramiko module, untyped
    try:
        import paramiko
    except ImportError as exc:  # pragma: no cover - paramiko is in the mpi extra
        raise MissingDependencyError("paramiko", "mpi") from exc
    return paramiko


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a broken SSH or SFTP conversation raises (paramiko's own errors, a closed socket, an end of file): the
    errors a caller turns into an :class:`~ccdsl.errors.ExecutionError` naming the node."""
    return OSError, EOFError, _paramiko().SSHException


# -- pinned host keys ---------------------------------------------------------------------------------------------
class HostKeyStore:
    """A known_hosts file keyed by instance id.  Thread-safe; writes are atomic (temp file + rename, mode 0600)."""

    _locks: ClassVar[dict[str, threading.Lock]] = {}  # one lock per file, shared by every store of that file
    _locks_guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: str | None, user_known_hosts: str | None = None) -> None:
        self.path = path
        self.user_known_hosts = user_known_hosts
        self._memory: dict[str, Any] = {}
        key = path or f"memory-{id(self)}"
        with self._locks_guard:
            self._lock = self._locks.setdefault(key, threading.Lock())

    def _load(self) -> paramiko.HostKeys:
        paramiko = _paramiko()
        keys = paramiko.HostKeys()
        if self.path and os.path.exists(self.path):
            keys.load(self.path)
        return keys

    def lookup(self, name: str) -> paramiko.PKey | None:
        if self.path is None:
            return self._memory.get(name)
        entry = self._load().lookup(name)
        return next(iter(entry.values())) if entry else None

    def add(self, name: str, key: paramiko.PKey) -> None:
        if self.path is None:
            self._memory[name] = key
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        lock_path = os.path.join(os.path.dirname(os.path.abspath(self.path)), ".known_hosts.lock")
        with self._lock, open(lock_path, "a+") as lock:  # threads, then other ccdsl processes (one lock per dir)
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._load()
            keys.add(name, key.get_name(), key)
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=".known_hosts.")
            os.close(fd)
            try:
                keys.save(tmp)
                os.chmod(tmp, 0o600)
                os.replace(tmp, self.path)
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)

    def _user_keys(self, node: Node) -> list[paramiko.PKey]:
        """The keys the user's OpenSSH known_hosts lists for the node's addresses (hashed entries included)."""
        if not self.user_known_hosts or not os.path.isfile(self.user_known_hosts):
            return []
        paramiko = _paramiko()
        keys = paramiko.HostKeys()
        try:
            keys.load(self.user_known_hosts)
        except (OSError, UnicodeDecodeError, paramiko.SSHException):
            return []
        found = []
        for addr in dict.fromkeys(a for a in (node.address, node.private_address) if a):
            entry = keys.lookup(addr if node.port == 22 else f"[{addr}]:{node.port}")
            found += list(entry.values()) if entry else []
        return found

    def check(self, node: Node, key: paramiko.PKey, accept_new: bool) -> None:
        """Accept ``key`` only if it is the one recorded for the node: in the user's known_hosts (when consulted
        and it lists the node), else in ours; a node with no record only while ``accept_new`` (deploy)."""
        user = self._user_keys(node)
        if user:
            if any(k.asbytes() == key.asbytes() for k in user):
                return
            raise HostKeyError(
                f"the host key of {describe(node)} ({fingerprint(key)}) is not the one {self.user_known_hosts} "
                f"records for it ({', '.join(fingerprint(k) for k in user)}); refusing to connect (possible "
                "man-in-the-middle, or the machine was rebuilt)",
                hint=f"if the change is expected: ssh-keygen -R {node.address} -f {self.user_known_hosts}")
        known = self.lookup(node.instance_id)
        if known is None:
            if not accept_new:
                raise HostKeyError(
                    f"no host key is recorded for {describe(node)}; refusing to trust the key it offers "
                    f"({fingerprint(key)})", hint=self._record_hint(node, key))
            self.add(node.instance_id, key)
        elif known.get_name() != key.get_name() or known.asbytes() != key.asbytes():
            raise HostKeyError(
                f"the host key of {describe(node)} changed since it was recorded ({fingerprint(known)} -> "
                f"{fingerprint(key)}); refusing to connect (possible man-in-the-middle, or the machine was rebuilt)",
                hint=f"if the change is expected, remove the line for {node.instance_id} from {self.path}")

    def _record_hint(self, node: Node, key: paramiko.PKey) -> str:
        where = [f"add the line '{node.instance_id} {key.get_name()} {key.get_base64()}' to {self.path}"]
        if self.user_known_hosts:
            where.append(f"record it in {self.user_known_hosts} (ssh-keyscan -p {node.port} {node.address})")
        return (f"if {fingerprint(key)} is the node's key (on the node: ssh-keygen -lf "
                f"/etc/ssh/ssh_host_{_KEY_FILES.get(key.get_name(), 'ecdsa')}_key.pub), " + ", or ".join(where))


_KEY_FILES = {"ssh-ed25519": "ed25519", "ssh-rsa": "rsa"}


def fingerprint(key: paramiko.PKey) -> str:
    """A key's fingerprint as OpenSSH prints it: ``SHA256:`` and the unpadded base64 of the key blob's hash."""
    import base64
    import hashlib

    return "SHA256:" + base64.b64encode(hashlib.sha256(key.asbytes()).digest()).decode().rstrip("=")


def _policy(store: HostKeyStore, node: Node, accept_new: bool) -> paramiko.MissingHostKeyPolicy:
    _paramiko()  # a clear error when it is missing
    import paramiko

    class Pinned(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]  # paramiko's class: Any to mypy
        def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
            store.check(node, key, accept_new)

    return Pinned()


# -- connecting ---------------------------------------------------------------------------------------------------
def connect(node: Node, options: SshOptions = SshOptions(), *, jump: paramiko.SSHClient | None = None,
            store: HostKeyStore | None = None, via: Node | None = None) -> paramiko.SSHClient:
    """Open an authenticated SSH connection to ``node``.

    With ``jump`` (a connection to the manager, node 0 or a bastion: ``via``, named in errors) the node is reached
    through it at its private address, so only the jump host needs to be reachable from here."""
    paramiko = _paramiko()
    store = store or HostKeyStore(options.known_hosts, options.user_known_hosts)
    address = (node.private_address or node.address) if jump is not None else (node.address or node.private_address)
    if not address:
        raise ProviderError(f"{describe(node)} has no address to connect to")
    if node.key_path and not os.path.isfile(node.key_path):
        raise ProviderError(f"the private key {node.key_path} for {describe(node)} does not exist")
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(_policy(store, node, options.accept_new))
    sock = None
    try:
        if jump is not None:
            sock = jump.get_transport().open_channel("direct-tcpip", (address, node.port), ("127.0.0.1", 0),
                                                     timeout=options.connect_timeout)
        client.connect(address, port=node.port, username=node.user or getpass.getuser(),
                       key_filename=node.key_path, allow_agent=True,
                       look_for_keys=node.key_path is None, timeout=options.connect_timeout,
                       banner_timeout=options.connect_timeout, auth_timeout=options.connect_timeout,
                       channel_timeout=options.connect_timeout, sock=sock)
    except ProviderError:
        client.close()
        raise
    except paramiko.PasswordRequiredException as exc:
        client.close()
        raise ProviderError(f"the key {node.key_path} for {describe(node)} is protected by a passphrase",
                            hint="load it into ssh-agent (ssh-add), or use a key without a passphrase") from exc
    except paramiko.AuthenticationException as exc:
        client.close()
        raise ProviderError(f"cannot log in to {describe(node)} as {node.user}: {exc}",
                            hint=f"check that the key {node.key_path} is authorized on the host") from exc
    except (OSError, paramiko.SSHException, EOFError) as exc:
        client.close()
        reason = str(exc) or type(exc).__name__
        if isinstance(exc, socket.timeout):
            reason = f"no answer within {options.connect_timeout:g} s"
        through = f" through {describe(via)}" if via is not None else ""
        raise ProviderError(f"cannot reach {describe(node)} on port {node.port}{through}: {reason}") from exc
    transport = client.get_transport()
    if options.keepalive:
        transport.set_keepalive(max(1, int(options.keepalive)))
    return client


class Connections:
    """A pool of open connections, one per node (keyed by instance id), reused by every operation of a cluster.

    The one place that decides how a node is reached (:meth:`route`): directly; through ``jump``, the manager of
    a ManagerWorkers cluster; with ``options.jump`` set (``[aws] jump_host``), through its bastion, or ("auto")
    through ``jump`` or, without a manager, worker 0 of ``members`` (PeerWorkers' public node 0).  A hop is itself
    a pooled connection, so every run, copy, tunnel and launch of a node shares it."""

    def __init__(self, options: SshOptions = SshOptions(), jump: Node | None = None, *,
                 members: Sequence[Node] = ()) -> None:
        self.options = options
        if jump is None and options.jump is not None and options.jump.bastion is None:
            jump = next((n for n in members if n.role != "manager" and n.index == 0), None)
        self.jump = jump
        self.store = HostKeyStore(options.known_hosts, options.user_known_hosts)
        self._bastion_store = HostKeyStore(options.known_hosts, options.jump.known_hosts if options.jump else None)
        self._clients: dict[str, paramiko.SSHClient] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def route(self, node: Node) -> Node | None:
        """The node ``node`` is reached through, None: directly."""
        bastion = self.options.jump.bastion if self.options.jump is not None else None
        if bastion is not None:
            return None if node.instance_id == bastion.instance_id else bastion
        if self.jump is not None and node.instance_id != self.jump.instance_id:
            return self.jump
        return None

    def get(self, node: Node) -> paramiko.SSHClient:
        with self._guard:
            lock = self._locks.setdefault(node.instance_id, threading.Lock())
        with lock:
            client = self._clients.get(node.instance_id)
            if client is not None and client.get_transport() is not None and client.get_transport().is_active():
                return client
            via = self.route(node)
            hop = self.get(via) if via is not None else None
            bastion = self.options.jump is not None and self.options.jump.bastion is not None and (
                node.instance_id == self.options.jump.bastion.instance_id)
            client = connect(node, self.options, jump=hop, store=self._bastion_store if bastion else self.store,
                             via=via)
            self._clients[node.instance_id] = client
            return client

    def drop(self, node: Node) -> None:
        with self._guard:
            client = self._clients.pop(node.instance_id, None)
        if client is not None:
            client.close()

    def close(self) -> None:
        with self._guard:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    def __enter__(self) -> Connections:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- commands and files -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str


def run(client: paramiko.SSHClient, command: str, *, node: Node | None = None, timeout: float = 120.0,
        check: bool = False, stdin: bytes | None = None) -> Result:
    """Run ``command`` (a shell string) and wait for it, at most ``timeout`` seconds."""
    where = describe(node) if node else "the node"
    try:
        chan = client.get_transport().open_session(timeout=timeout)
        chan.settimeout(timeout)
        chan.exec_command(command)
        if stdin is not None:
            chan.sendall(stdin)
        chan.shutdown_write()
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        while True:
            if chan.recv_ready():
                out += chan.recv(65536)
            elif chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            elif chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                break
            elif chan.closed or not client.get_transport().is_active():
                raise ExecutionError(f"lost the connection to {where} while running: {command[:80]}")
            else:
                if time.monotonic() > deadline:
                    chan.close()
                    raise ExecutionError(f"command on {where} did not finish within {timeout:g} s: {command[:80]}")
                wait_channel(chan, 0.02)
        code = chan.recv_exit_status()
        chan.close()
    except (OSError, EOFError, _paramiko().SSHException) as exc:
        raise ExecutionError(f"lost the connection to {where}: {str(exc) or type(exc).__name__}") from exc
    result = Result(code, out.decode(errors="replace"), err.decode(errors="replace"))
    if check and code != 0:
        raise ExecutionError(f"command failed on {where} (exit {code}): {command[:80]}\n{result.stderr[-2000:]}")
    return result


exec = run  # the name the executor's design uses


def wait_channel(chan: paramiko.Channel, seconds: float) -> None:
    """Wait until ``chan`` (a paramiko channel) has something to read, at most ``seconds``: the loops that stream a
    command's output poll with it instead of spinning."""
    import select

    try:
        select.select([chan], [], [], seconds)
    except (OSError, ValueError):
        time.sleep(seconds)


def put(client: paramiko.SSHClient, data: bytes, path: str, *, mode: int = 0o600, node: Node | None = None) -> None:
    """Write ``data`` to ``path`` on the node atomically (temp file + rename) with ``mode``."""
    put_many(client, [(data, path, mode)], node=node)


def put_many(client: paramiko.SSHClient, files: list[tuple[bytes, str, int]], *, directory: str | None = None,
             node: Node | None = None) -> None:
    """Write several ``(data, path, mode)`` files over one SFTP session, each atomically (temp file + rename);
    first create ``directory`` (mode 0700, parents as needed) if given."""
    current = "?"
    try:
        with client.open_sftp() as sftp:
            if directory:
                current = directory
                makedirs(sftp, directory)
            for data, path, mode in files:
                current = path
                tmp = f"{path}.tmp{os.getpid()}.{threading.get_ident()}"
                with sftp.open(tmp, "wb") as f:
                    f.set_pipelined(True)
                    f.write(data)
                sftp.chmod(tmp, mode)
                sftp.posix_rename(tmp, path)
    except (OSError, EOFError, _paramiko().SSHException) as exc:
        where = describe(node) if node else "the node"
        raise ExecutionError(f"cannot write {current} on {where}: {str(exc) or type(exc).__name__}") from exc


def makedirs(sftp: paramiko.SFTPClient, directory: str) -> None:
    """``mkdir -p`` over SFTP: each missing folder of ``directory`` made with mode 0700."""
    parts = directory.rstrip("/").split("/")
    for i in range(1, len(parts) + 1):
        path = "/".join(parts[:i])
        if not path:
            continue
        try:
            sftp.stat(path)
        except FileNotFoundError:
            try:
                sftp.mkdir(path, 0o700)
            except OSError:
                sftp.stat(path)  # made meanwhile by another node sharing this filesystem (NFS homes): fine


# -- readiness ----------------------------------------------------------------------------------------------------
_PROBE = r"""
import json, os, shutil, sys
MPIEXEC, DIR = json.loads(sys.argv[1])
out = {"python": sys.executable, "version": "%d.%d" % sys.version_info[:2], "missing": []}
for m in ("mpi4py", "cloudpickle"):
    try:
        __import__(m)
    except Exception as e:
        out["missing"].append(m)
want = MPIEXEC
mx = want or os.path.join(os.path.dirname(sys.executable), "mpiexec")
if not (os.path.isfile(mx) and os.access(mx, os.X_OK)):
    mx = shutil.which(want or "mpiexec")
out["mpiexec"] = mx or ""
out["dir"] = os.path.abspath(os.path.expanduser(DIR))
print(json.dumps(out))
"""


class Probed(TypedDict):
    """What :func:`probe` found on a node."""

    python: str  # the interpreter's path
    version: str  # "3.11"
    missing: list[str]  # of mpi4py and cloudpickle
    mpiexec: str  # its path; empty: none found
    dir: str  # the absolute ccdsl dir


def probe(client: paramiko.SSHClient, node: Node, *, python: str, mpiexec: str | None, directory: str,
          timeout: float) -> Probed:
    """What the node offers: python path and version, missing modules, mpiexec path, absolute ccdsl dir."""
    # the paths travel as one JSON argument, never pasted into the code (a path may contain anything)
    arg = json.dumps([mpiexec, directory])
    res = run(client, f"{shlex.quote(python)} -c {shlex.quote(_PROBE)} {shlex.quote(arg)}", node=node,
              timeout=timeout)
    if res.code != 0:
        raise ProviderError(f"{describe(node)}: cannot run '{python}' (exit {res.code}): {res.stderr.strip()[-300:]}",
                            hint="set [mpi] python in ccdsl.toml to the node's python")
    lines = res.stdout.strip().splitlines()
    try:
        info = json.loads(lines[-1]) if lines else None
    except (ValueError, RecursionError):
        info = None
    shape = {"python": str, "version": str, "missing": list, "mpiexec": str, "dir": str}
    if not isinstance(info, dict) or not all(isinstance(info.get(k), t) for k, t in shape.items()) \
            or not all(isinstance(m, str) for m in info["missing"]):
        said = printable(lines[-1][:80]) if lines else "nothing"
        raise ExecutionError(f"{describe(node)}: '{python}' did not answer ccdsl's probe (it printed {said})",
                             hint="set [mpi] python in ccdsl.toml to the node's python 3")
    return cast(Probed, info)  # its shape checked above


def wait_reachable(node: Node, timeout: float, options: SshOptions = SshOptions(), *,
                   connections: Connections | None = None) -> Node:
    """Retry connecting until TCP and SSH authentication succeed or ``timeout`` passes (a booting machine refuses
    connections, then may reject the key until cloud-init installed it).  A changed host key is not retried."""
    pool = connections or Connections(options)
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            pool.get(node)
            return replace(node, state=REACHABLE)
        except HostKeyError:
            raise
        except ProviderError as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ProviderError(f"{exc.message} (gave up after {timeout:g} s)", hint=exc.hint) from exc
            time.sleep(min(delay, left))
            delay = min(delay * 2, 2.0)
        finally:
            if connections is None:
                pool.close()


def wait_ready(node: Node, timeout: float, options: SshOptions = SshOptions(), *, python: str = "python3",
               mpiexec: str | None = None, directory: str = ".ccdsl", install: bool = False,
               packages: tuple[str, ...] = ("mpich", "mpi4py", "cloudpickle"),
               connections: Connections | None = None) -> Node:
    """Wait until ``node`` is reachable, then check it is ready: its python imports mpi4py and cloudpickle and an
    ``mpiexec`` exists.  With ``install``, a node that is not ready gets a venv in ``directory/venv`` with
    ``packages`` pip-installed (a fresh cloud image).  Returns the node in state ``ready`` with ``extra`` holding
    ``python``, ``python_version``, ``mpiexec`` and ``ccdsl_dir`` as found on the node."""
    pool = connections or Connections(options)
    try:
        deadline = time.monotonic() + timeout
        node = wait_reachable(node, timeout, options, connections=pool)
        client = pool.get(node)
        left = max(5.0, deadline - time.monotonic())
        if node.extra.get("boot_wait"):  # the provider's "still booting" check (cloud-init installing packages)
            run(client, node.extra["boot_wait"], node=node, timeout=left)
            left = max(5.0, deadline - time.monotonic())
        info = probe(client, node, python=python, mpiexec=mpiexec, directory=directory, timeout=left)
        if (info["missing"] or not info["mpiexec"]) and install:
            venv = f"{info['dir']}/venv"
            cmd = (f"mkdir -p {shlex.quote(info['dir'])} && {shlex.quote(python)} -m venv {shlex.quote(venv)} && "
                   f"{shlex.quote(venv)}/bin/pip install --quiet {' '.join(map(shlex.quote, packages))}")
            res = run(client, cmd, node=node, timeout=max(60.0, deadline - time.monotonic()))
            if res.code != 0:
                raise ProviderError(f"{describe(node)}: installing {', '.join(packages)} failed: "
                                    f"{res.stderr.strip()[-500:]}")
            python = f"{venv}/bin/python"
            # the venv's own mpiexec (pip's MPICH), unless it has none: then the one asked for (EFA's mpirun)
            own = any(p.split("=")[0].strip().lower() == "mpich" for p in packages)
            info = probe(client, node, python=python, mpiexec=None if own else mpiexec, directory=directory,
                         timeout=left)
        problems = [f"'{info['python']}' cannot import {m}" for m in info["missing"]]
        if not info["mpiexec"]:
            problems.append(f"no mpiexec ({mpiexec or 'next to python or on PATH'})")
        if problems:
            raise ProviderError(f"{describe(node)} is reachable but not ready: {'; '.join(problems)}",
                                hint="install them on the node (pip install mpich mpi4py cloudpickle) or set "
                                     "[mpi] install = true in ccdsl.toml")
        extra = {**node.extra, "python": info["python"], "python_version": info["version"],
                 "mpiexec": info["mpiexec"], "ccdsl_dir": info["dir"]}
        return replace(node, state=READY, extra=extra)
    finally:
        if connections is None:
            pool.close()


def host_key_line(client: paramiko.SSHClient, name: str) -> str:
    """``name keytype base64`` for the key the connected server presented (for the nodes' own known_hosts)."""
    key = client.get_transport().get_remote_server_key()
    return f"{name} {key.get_name()} {key.get_base64()}"
