"""The MPI launcher: run a Python function or a script on every rank of a cluster with a real ``mpiexec``.

Where mpiexec runs decides who must reach whom:

- ``local``: ``mpiexec.gforker -n N`` on this machine (hydra's ``mpiexec`` where gforker is absent; see
  :func:`local_command`); no SSH at all (``pip install mpich mpi4py`` is the whole set-up).
- ``ssh``, PeerWorkers: ccdsl reaches every node for set-up, and runs ``mpiexec`` *on node 0* (over SSH) with
  ``-launcher ssh -hosts <private addresses>``, so MPI traffic never needs to reach the user's machine.
- ``ssh``, ManagerWorkers: ccdsl reaches only the manager (``via``); workers are set up through it (SSH jump) and
  mpiexec runs on the manager across the workers.

Nodes reach each other with a cluster-internal key that :func:`prepare_cluster` generates and installs, together
with an ssh config and a known_hosts built from the host keys ccdsl pinned, so the nodes' own SSH is not trusting
blindly either.  Functions travel with cloudpickle in one payload file on rank 0's node; rank 0 broadcasts it.
Results and remote exceptions come back as framed records on the output streams (see ``_rank.py``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccdsl.errors import ExecutionError, MissingDependencyError, ProviderError, RankError
from ccdsl.executor import access, mpirun, shm, ssh
from ccdsl.executor.config import Config, check_node_dir
from ccdsl.executor.lines import CHUNK, Lines
from ccdsl.executor.model import Node
from ccdsl.executor.nodedir import authorize_command, internal_key_comment, pkill_pattern
from ccdsl.executor.parallel import parallel

if TYPE_CHECKING:  # pragma: no cover
    from types import ModuleType

    import paramiko  # no types (see ssh.py): paramiko.SSHClient reads as Any

Stream = Callable[[str, str], None]  # (line without newline, "stdout" | "stderr")

_RANK_FILE = Path(__file__).with_name("_rank.py")
_HOLD_FILE = Path(__file__).with_name("_hold.py")  # what a gforker rank starts with (see local_command)
MARK = "\x1eccdsl-"
MAX_RANKS = 1 << 24  # above any job's size: a rank in an error record at or past it is not a rank
STALE = 98  # exit code of the launch command when the rank bootstrap is missing on the node
# hydra's line when a rank's program cannot be started: "[proxy:0@vm] HYDU_create_process (…/launch.c:73): execvp
# error on file nonexistentcmd (No such file or directory)", once per rank; ccdsl says it once, in its own words.
# The forked children write its three pieces apart, so on a loaded machine pieces of several ranks interleave.
_EXECVP = re.compile(r"execvp error on file (.+?) \(([^()]*)\)")
_HYDRA_PIECES = re.compile(r"\[proxy:[^\]\s]*\] ?|HYDU_create_process \([^)]*\): ?")
RUN_PREFIX = "ccdsl-run-"  # local runs' private folders in the temporary directory (payload, error records)
LABEL_RANKS = ("-prepend-rank",)  # hydra: each output line starts with "[rank] "
RANK_LABEL = re.compile(r"\[(\d+)\] ?")  # ... that label


@dataclass(frozen=True)
class MpiOptions:
    """How MPI runs on the nodes (``[mpi]`` in ccdsl.toml).  Paths are on the nodes, relative to the login dir."""

    python: str = "python3"  # the nodes' interpreter (must import mpi4py and cloudpickle)
    mpiexec: str | None = None  # None: next to python, else on PATH
    iface: str | None = None  # network interface MPI uses between nodes (e.g. "eth0")
    remote_dir: str = ".ccdsl"  # per-cluster files live in <remote_dir>/<handle>
    authorized_keys: str = ".ssh/authorized_keys"  # where the cluster-internal public key is installed
    install: bool = False  # pip-install mpich/mpi4py/cloudpickle into a venv on nodes that lack them
    packages: tuple[str, ...] = ("mpich", "mpi4py", "cloudpickle")
    ready_timeout: float = 300.0
    run_timeout: float | None = None  # default limit for one run (None: no limit)
    extra_args: tuple[str, ...] = ()  # more mpiexec arguments
    local_python: str | None = None  # interpreter of local-mode ranks; None: the one running ccdsl


def rank_script_name() -> str:
    """The rank bootstrap's file name on nodes, versioned by content so a stale copy is never used."""
    digest = hashlib.sha256(_RANK_FILE.read_bytes()).hexdigest()[:10]
    return f"ccdsl_rank_{digest}.py"


def local_mpiexec() -> str:
    """The mpiexec of this interpreter's environment (the mpich wheel puts it next to python), else PATH's."""
    candidate = Path(sys.executable).parent / "mpiexec"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("mpiexec")
    if found:
        return found
    raise MissingDependencyError("mpich", "mpi")


# What keeps a job on this machine to the loopback interface.  MPICH's ``mpiexec.gforker`` (which the mpich wheel
# ships beside ``mpiexec``) forks the ranks itself and opens no port of its own; hydra, the fallback where gforker is
# absent, binds its control port to every address whatever it is told (``-iface lo`` only names the address its
# proxies connect to).  Either way the netmods' interface settings (UCX for MPICH's default ch4:ucx, libfabric's tcp
# and sockets providers for ch4:ofi) keep the ranks' own listeners on 127.0.0.1.  UCX's transports are shared
# memory only (all ranks are on this machine), so the ranks of a local run open no TCP listener at all.
LOOPBACK_ARGS = ("-iface", "lo")
LOOPBACK_ENV = {"UCX_NET_DEVICES": "lo", "UCX_TLS": "self,sm", "FI_TCP_IFACE": "lo", "FI_SOCKETS_IFACE": "lo"}
# gforker's lines about its ranks: "[0]1:Return code = 0, signaled with Killed" (its exit code stays 0), and
# "Error in system call mpiexec: No such file or directory" then "mpiexec could not exec nonexistentcmd"
_GFORKER_SIGNAL = re.compile(r"\[\d+\]\d+:Return code = \d+, signaled with (.+)")
_GFORKER_SYSCALL = re.compile(r"Error in system call mpiexec: (.+)")
_GFORKER_EXEC = re.compile(r"mpiexec could not exec (.+)")
_SIGNAL_NUMBERS = {signal.strsignal(s): int(s) for s in signal.Signals if signal.strsignal(s)}


def gforker_signal(reports: Sequence[str]) -> int | None:
    """The signal a gforker job died of, from its reports: the signal names (``Killed``), or its whole output (read
    for "signaled with" lines).  The first one gforker did not send itself: once a rank died, it ends the others
    with SIGINT, then SIGQUIT a second later (``MPIE_KillWorld``, MPICH's src/pm/util/process.c)."""
    names = [n for r in reports for n in (_GFORKER_SIGNAL.findall(r) if "signaled with" in r else [r])]
    numbers = [n for n in (_SIGNAL_NUMBERS.get(name.strip(), 0) for name in names) if n]
    first = [n for n in numbers if n not in (signal.SIGINT, signal.SIGQUIT)] or numbers
    return first[0] if first else None


@dataclass(frozen=True)
class LocalCommand:
    """An mpiexec command line for a job on this machine, and which mpiexec it is (their output differs)."""

    argv: tuple[str, ...]
    gforker: bool
    pipes: tuple[list[int], list[int]] = ([], [])  # the ranks' output pipes (gforker): (read ends, write ends)


def local_gforker(mpiexec: str) -> str | None:
    """``mpiexec.gforker`` beside ``mpiexec``, if it is there."""
    candidate = Path(mpiexec).with_name("mpiexec.gforker")
    return str(candidate) if candidate.is_file() and os.access(candidate, os.X_OK) else None


def local_command(np: int, program: Sequence[str], *, output: Sequence[int] = (), env: Sequence[tuple[str, str]] = (),
                  wdir: str | None = None, label: bool = False, hydra_args: Sequence[str] = (),
                  python: Sequence[str] = ()) -> LocalCommand:
    """This machine's mpiexec running ``program`` on ``np`` ranks, the job on the loopback interface (with
    :func:`local_env`): ``env`` set on every rank, in ``wdir``.  Under hydra each output line is labelled with its
    rank (``label``).  Under gforker the ranks write to files of their own instead of mpiexec's stdout and stderr:
    ``output`` (one pair of file descriptors for every rank), else a new pipe per rank and stream
    (:func:`rank_pipes`, returned in ``pipes``, read by :class:`_LocalProcess`, which labels their lines); either
    way the caller passes them to mpiexec (``pass_fds``).

    ``mpiexec.gforker`` beside the resolved mpiexec when it is there: it forks the ranks and listens on nothing.
    Hydra with ``-iface lo`` otherwise (its control port then listens on every address), and also when the
    configuration asks for mpiexec arguments (``hydra_args``, ``[mpi] extra_args``): they are hydra's, which gforker
    does not know.

    Under gforker each rank starts as ``_hold.py --output FDS PROGRAM``, which keeps gforker from ending the job
    1-2 s late and from cutting output at its first non-ASCII byte (the why is in that file).  ``python``
    (``python FLAGS``): ``program`` is a Python script (and its arguments) that interpreter runs; under gforker
    ``_hold.py --run`` runs it in the same interpreter, which saves starting a second python per rank."""
    mpiexec = local_mpiexec()
    gforker = None if hydra_args else local_gforker(mpiexec)
    common = [*(a for name, value in env for a in ("-genv", name, value)), *(["-wdir", wdir] if wdir else [])]
    if gforker is not None:
        pipes = rank_pipes(np) if not output else ([], [])
        hold = (str(_HOLD_FILE), "--output", ",".join(str(fd) for fd in (output or pipes[1])))
        held = ((*python, *hold, "--run", *program) if python else (sys.executable, "-I", "-S", *hold, *program))
        return LocalCommand((gforker, "-n", str(np), *common, *held), True, pipes)
    return LocalCommand((mpiexec, *LOOPBACK_ARGS, "-n", str(np), *hydra_args, *(LABEL_RANKS if label else ()),
                         *common, *python, *program), False)


def rank_pipes(np: int) -> tuple[list[int], list[int]]:
    """A pipe per rank and stream for a gforker job's output: (read ends, write ends), each ordered rank 0's stdout,
    rank 0's stderr, rank 1's stdout, ... (``local_command``'s ``output``)."""
    pairs = [os.pipe() for _ in range(2 * np)]
    return [r for r, _ in pairs], [w for _, w in pairs]


def local_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` for a job on this machine: its ranks listen on the loopback interface only."""
    return {**env, **LOOPBACK_ENV}


# -- cluster set-up -------------------------------------------------------------------------------------------------
def _internal_key(handle: str) -> tuple[bytes, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, f"{public.decode()} {internal_key_comment(handle)}"


def _ssh_wrapper(directory: str) -> bytes:
    """The ssh that mpiexec launches through.  It runs in the cluster directory so that the ssh config names its
    files relatively: ssh expands ``%`` and ``${…}`` in the paths of a config, and a node directory may hold both;
    the directory itself reaches only the shell, quoted."""
    return f"#!/bin/sh\ncd {shlex.quote(directory)} || exit 255\nexec ssh -F ssh_config \"$@\"\n".encode()


def _ssh_config(directory: str, user: str | None) -> str:
    lines = ["Host *", "  IdentityFile id_ed25519", "  IdentitiesOnly yes",  # relative: see _ssh_wrapper
             "  UserKnownHostsFile known_hosts", "  StrictHostKeyChecking yes", "  BatchMode yes",
             "  ConnectTimeout 10", "  ServerAliveInterval 5", "  ServerAliveCountMax 3", "  LogLevel ERROR"]
    if user:
        lines.insert(1, f"  User {user}")
    return "\n".join(lines) + "\n"


def prepare_cluster(handle: str, nodes: Sequence[Node], *, manager: Node | None = None,
                    options: MpiOptions = MpiOptions(), ssh_options: ssh.SshOptions = ssh.SshOptions(),
                    connections: ssh.Connections | None = None,
                    progress: Callable[[str, int, str], None] | None = None) -> tuple[list[Node], Node | None]:
    """Make ``nodes`` (and the ``manager``, if any) ready to run MPI together; all nodes in parallel.

    Waits until each node is reachable and ready (:func:`ssh.wait_ready`), then writes into
    ``<remote_dir>/<handle>`` on every node: a fresh cluster-internal key, an ssh config and known_hosts for the
    nodes' private addresses, the ssh wrapper mpiexec launches through, and the rank bootstrap; and installs the
    internal public key in ``authorized_keys``.  Returns the nodes (state ``ready``, ``extra`` filled in)."""
    directory = f"{options.remote_dir.rstrip('/')}/{handle}"
    check_node_dir(directory)
    pool = connections or ssh.Connections(ssh_options, jump=manager, members=nodes)
    report = progress or (lambda role, index, state: None)
    try:
        def ready(node: Node) -> Node:
            efa = node.extra.get("fabric") == "efa"  # Open MPI's mpirun, and mpi4py without pip's MPICH
            node = ssh.wait_ready(node, options.ready_timeout, ssh_options, python=options.python,
                                  mpiexec=options.mpiexec or (mpirun.MPIRUN if efa else None), directory=directory,
                                  install=options.install,
                                  packages=mpirun.packages(options.packages) if efa else options.packages,
                                  connections=pool)
            check_node_dir(node.extra["ccdsl_dir"])  # the absolute path: the login dir is part of it
            report(node.role, node.index, node.state)
            return node

        everyone = [*([manager] if manager is not None else []), *nodes]
        if manager is not None:  # workers are reached through the manager: it must be up first
            everyone = [ready(manager), *parallel(ready, list(nodes))]
        else:
            everyone = parallel(ready, everyone)
        private, public = _internal_key(handle)
        known = "".join(ssh.host_key_line(pool.get(n), _known_name(n)) + "\n" for n in everyone)
        rank_source = _RANK_FILE.read_bytes()
        rank_name = rank_script_name()

        def install(node: Node) -> None:
            client = pool.get(node)
            d = node.extra["ccdsl_dir"]
            ssh.put_many(client, [
                (private.rstrip(b"\n") + b"\n", f"{d}/id_ed25519", 0o600),
                (known.encode(), f"{d}/known_hosts", 0o600),
                (_ssh_config(d, node.user).encode(), f"{d}/ssh_config", 0o600),
                (_ssh_wrapper(d), f"{d}/ssh", 0o755),
                (rank_source, f"{d}/{rank_name}", 0o644),
            ], directory=d, node=node)
            ssh.run(client, authorize_command(options.authorized_keys, handle, public), node=node, check=True,
                    timeout=ssh_options.command_timeout)

        parallel(install, everyone)
        if manager is not None:
            return everyone[1:], everyone[0]
        return everyone, None
    finally:
        if connections is None:
            pool.close()


def _known_name(node: Node) -> str:
    addr = node.private_address or node.address or ""
    return addr if node.port == 22 else f"[{addr}]:{node.port}"


class _Deadline(Exception):
    """A run's time limit passed (not TimeoutError: that is an OSError, which means a broken connection here)."""


# -- output handling ----------------------------------------------------------------------------------------------
def print_stream(line: str, stream: str) -> None:
    """The default stream callback: the program's output goes to ours, stdout to stdout, stderr to stderr."""
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.write(line + "\n")
    out.flush()


TAIL_WIDTH = 500


class _Output:
    """Splits output chunks into lines for the callback (``lines.Lines``: a line without an end is passed on a
    piece at a time) and picks out ccdsl's framed records."""

    def __init__(self, callback: Stream | None, nonce: str | None = None, gforker: bool = False,
                 label: bool = False) -> None:
        self.callback = callback
        self.gforker = gforker  # gforker's lines are translated into hydra's (see :meth:`_gforker_line`)
        self.label = label  # a rank's own lines (fed with their rank) start with "[RANK] ", as hydra's -prepend-rank
        self._syscall = "No such file or directory"  # gforker's reason for the next "could not exec"
        self.nonce = nonce  # this run's: a result record is "\x1eccdsl-result.<nonce>:..." alone on a stdout line
        # the result record is the one line kept whole, however long (it is only useful whole)
        keep = (MARK + f"result.{nonce}:").encode() if nonce is not None else None
        self._keep = keep
        self.lines: dict[tuple[str, int | None], Lines] = {("stdout", None): Lines(keep), ("stderr", None): Lines()}
        self.records: list[tuple[str, str]] = []
        self.tail: deque[str] = deque(maxlen=25)

    def feed(self, stream: str, chunk: bytes, rank: int | None = None) -> None:
        """A chunk of mpiexec's ``stream``, or of one rank's (``rank``: its own pipe, under gforker)."""
        lines = self.lines.get((stream, rank))
        if lines is None:
            lines = self.lines[stream, rank] = Lines(self._keep if stream == "stdout" else None)
        for line in lines.feed(chunk):
            self._line(stream, line.decode(errors="replace"), rank)

    def close(self) -> None:
        for (stream, rank), lines in self.lines.items():
            for line in lines.close():
                self._line(stream, line.decode(errors="replace"), rank)

    def _gforker_line(self, stream: str, text: str) -> str | None:
        """gforker's line in hydra's terms: its reports of a rank that could not be started or died of a signal
        become records (None: nothing left to show)."""
        if stream != "stderr":
            return text
        for pattern, kind in ((_GFORKER_SYSCALL, "syscall"), (_GFORKER_EXEC, "exec"), (_GFORKER_SIGNAL, "signal")):
            found = pattern.fullmatch(text)
            if found is None:
                continue
            if kind == "syscall":
                self._syscall = found.group(1).strip()
            elif kind == "exec":
                self.records.append(("execvp", f"{found.group(1).strip()}\t{self._syscall}"))
            else:
                self.records.append(("signal", found.group(1).strip()))
                return text  # hydra says it too ("YOUR APPLICATION TERMINATED ... (signal 9)")
            return None
        return text

    def exit_code(self, code: int) -> int:
        """mpiexec's exit code as hydra gives it: gforker exits 0 when a rank died of a signal; hydra exits with
        the signal's number (the first one not sent by gforker itself, which ends the other ranks with SIGQUIT)."""
        if code != 0 or not self.gforker:
            return code
        return gforker_signal(self.record("signal")) or code

    def _line(self, stream: str, text: str, rank: int | None = None) -> None:
        if self.gforker:
            gforker = self._gforker_line(stream, text)
            if gforker is None:
                return
            text = gforker
        if rank is not None and self.label:
            text = f"[{rank}] {text}"
        if stream == "stderr" and ("execvp error on file" in text or _HYDRA_PIECES.match(text)):
            # reported once by the launcher (Launcher.run_program), not once per rank in hydra's words
            found = _EXECVP.findall(text)
            rest = _HYDRA_PIECES.sub("", _EXECVP.sub("", text)).strip()
            if found or not rest:
                self.records += [("execvp", f"{name}\t{reason}") for name, reason in found]
                if not rest:
                    return
                text = rest
        if MARK in text:
            before, _, record = text.partition(MARK)
            kind, _, data = record.partition(":")
            if not kind.startswith("result"):
                self.records.append((kind, data.strip()))
                text = before
                if not text or RANK_LABEL.fullmatch(text):  # nothing before the record but its rank's label
                    return
            elif stream == "stdout" and not before and self.nonce is not None and kind == f"result.{self.nonce}":
                self.records.append(("result", data.strip()))
                return
            # else: text the program printed that looks like a result record; it is only text
        # for the message of a failed job: the last lines, each up to its last TAIL_WIDTH characters (a line may
        # be a 1 MiB piece of output without newlines)
        self.tail.append(text if len(text) <= TAIL_WIDTH else "..." + text[-TAIL_WIDTH:])
        if self.callback is not None:
            self.callback(text, stream)

    def record(self, kind: str) -> list[str]:
        return [data for k, data in self.records if k == kind]


def _run_dir() -> tuple[str, int]:
    """A private folder for one local run and the descriptor of its lock, held while the run lasts.  First, the
    folders of runs whose process died without cleaning up (SIGKILL runs no ``finally``) are removed: their lock
    is free and names a pid.  A folder whose lock file is still empty is being set up, and is left alone."""
    import fcntl

    parent = tempfile.gettempdir()
    try:
        names = [n for n in os.listdir(parent) if n.startswith(RUN_PREFIX)]
    except OSError:
        names = []
    for name in names:
        path = os.path.join(parent, name)
        try:
            fd = os.open(os.path.join(path, "lock"), os.O_RDONLY)
        except OSError:  # another user's folder, or one not set up yet
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.read(fd, 32):  # its run wrote its pid under the lock, and is gone
                shutil.rmtree(path, ignore_errors=True)
        except OSError:  # locked: that run is going on
            pass
        finally:
            os.close(fd)
    tmp = tempfile.mkdtemp(prefix=RUN_PREFIX)
    fd = os.open(os.path.join(tmp, "lock"), os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.write(fd, str(os.getpid()).encode())
    return tmp, fd


def die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGTERM when ccdsl dies (even by SIGKILL), so mpiexec ends the job
    instead of leaving ranks running with nobody to read their results."""
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass


# How a local gforker job is ended: its process group (mpiexec.gforker and its ranks) at once with SIGKILL, as
# hydra's proxies end their ranks.  A SIGTERM would have gforker take a rank's death by it for an abort and sleep a
# second per rank in its SIGCHLD handler (MPIE_OnAbend -> MPIE_KillWorld: SIGINT, sleep(1), SIGQUIT).
GFORKER_END = signal.SIGKILL


def end_session(proc: subprocess.Popen[bytes], first: int = signal.SIGTERM) -> None:
    """End a child started with ``start_new_session=True`` and everything it started (its process group):
    ``first`` (SIGTERM) to the whole group, then SIGKILL if the child is still there 3 s later; the child is
    reaped."""
    try:
        os.killpg(proc.pid, first)
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(3)
    except (ProcessLookupError, PermissionError):
        pass


class _LocalProcess:
    """mpiexec on this machine.  ``pipes`` (:func:`rank_pipes`, for gforker): the ranks' own output pipes, read
    beside mpiexec's stdout and stderr (which then carry only mpiexec's own lines)."""

    def __init__(self, argv: list[str], env: dict[str, str], gforker: bool = False,
                 pipes: tuple[list[int], list[int]] = ([], [])) -> None:
        self.end_with = GFORKER_END if gforker else signal.SIGTERM
        self.ranks, writes = pipes
        shm.sweep()  # a segment a killed job left could carry this job's name (see ccdsl.executor.shm)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, start_new_session=True,
                                         preexec_fn=die_with_parent, pass_fds=writes)
        except BaseException:
            self._close(self.ranks)
            raise
        finally:
            self._close(writes)

    @staticmethod
    def _close(fds: list[int]) -> None:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def pump(self, out: _Output, deadline: float | None, health: Callable[[], None] | None = None) -> int:
        """``health``: unused (a child of this machine needs no liveness check); the remote process's signature."""
        stdout, stderr = self.proc.stdout, self.proc.stderr
        assert stdout is not None and stderr is not None  # Popen(stdout=PIPE, stderr=PIPE)
        sel = selectors.DefaultSelector()
        sel.register(stdout, selectors.EVENT_READ, ("stdout", None))
        sel.register(stderr, selectors.EVENT_READ, ("stderr", None))
        for i, fd in enumerate(self.ranks):
            sel.register(fd, selectors.EVENT_READ, ("stderr" if i % 2 else "stdout", i // 2))
        try:
            while sel.get_map():
                if deadline is not None and time.monotonic() > deadline:
                    raise _Deadline
                for key, _ in sel.select(timeout=0.5):
                    chunk = os.read(key.fd, CHUNK)
                    stream, rank = key.data
                    if chunk:
                        out.feed(stream, chunk, rank)
                    else:
                        sel.unregister(key.fileobj)
                        if rank is not None:  # a rank's own pipe: closed here once at its end
                            self.ranks.remove(key.fd)
                            os.close(key.fd)
            while True:
                try:
                    return self.proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    if deadline is not None and time.monotonic() > deadline:
                        raise _Deadline from None
        finally:
            sel.close()

    def kill(self) -> None:
        end_session(self.proc, self.end_with)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        self._close(self.ranks)


class _RemoteProcess:
    """mpiexec started in the background on the ``via`` node.  A watchdog on the session's stdin kills it when the
    SSH session ends for any reason (ccdsl killed, connection lost), so no job outlives its caller."""

    def __init__(self, client: paramiko.SSHClient, node: Node, argv: list[str], ssh_options: ssh.SshOptions,
                 payload: tuple[bytes, str] | None = None, requires: str | None = None) -> None:
        self.client, self.node, self.options = client, node, ssh_options
        self.pid: str | None = None
        # the payload, if any, comes first on stdin (saves an SFTP session per run)
        receive = (f"umask 077; head -c {len(payload[0])} > {shlex.quote(payload[1])} || exit 97; "
                   if payload else "")
        if requires:  # exit STALE when the node lacks this ccdsl's rank bootstrap (prepared by another version)
            cleanup = f"rm -f {shlex.quote(payload[1])}; " if payload else ""
            receive += f"test -f {shlex.quote(requires)} || {{ {cleanup}exit {STALE}; }}; "
        command = (f"{receive}exec 3<&0; {shlex.join(argv)} </dev/null 3<&- & p=$!; printf '\\036ccdsl-pid:%s\\n' $p; "
                   f"(cat <&3 >/dev/null 2>&1; kill -TERM $p) >/dev/null 2>&1 3<&3 & w=$!; "
                   f"wait $p; rc=$?; kill $w 2>/dev/null; exit $rc")
        try:
            self.chan = client.get_transport().open_session(timeout=ssh_options.connect_timeout)
            self.chan.exec_command(command)
            if payload:
                self.chan.sendall(payload[0])
        except Exception as exc:  # paramiko raises several unrelated types
            reason = str(exc) or type(exc).__name__  # a dropped connection is an EOFError without text
            raise ExecutionError(f"cannot start mpiexec on {ssh.describe(node)}: {reason}") from exc

    def pump(self, out: _Output, deadline: float | None, health: Callable[[], None] | None = None) -> int:
        chan, transport = self.chan, self.client.get_transport()
        last = time.monotonic()
        try:
            while True:
                got = False
                while chan.recv_ready():
                    out.feed("stdout", chan.recv(CHUNK))
                    got = True
                while chan.recv_stderr_ready():
                    out.feed("stderr", chan.recv_stderr(CHUNK))
                    got = True
                if self.pid is None and out.record("pid"):
                    self.pid = out.record("pid")[0]
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    status: int = chan.recv_exit_status()
                    return status
                if self.options.liveness and time.monotonic() - last > self.options.liveness:
                    if health is not None:
                        health()
                    last = time.monotonic()
                if got:
                    continue
                if chan.closed or not transport.is_active():
                    if chan.exit_status_ready():  # it ended between the checks above: drain, then its status
                        continue
                    raise ExecutionError(f"lost the SSH connection to {ssh.describe(self.node)} while mpiexec was "
                                         "running there")
                if deadline is not None and time.monotonic() > deadline:
                    raise _Deadline
                ssh.wait_channel(chan, 0.02)
        except (OSError, EOFError) as exc:
            raise ExecutionError(f"lost the SSH connection to {ssh.describe(self.node)}: {exc}") from exc

    def kill(self) -> None:
        try:
            if self.pid:
                pid = int(self.pid)
                ssh.run(self.client, f"kill -TERM {pid} 2>/dev/null; (sleep 3; kill -KILL {pid} 2>/dev/null) "
                        ">/dev/null 2>&1 </dev/null & true", timeout=3)
        except Exception:  # best effort: the stdin watchdog kills it when the channel closes
            pass
        self.chan.close()


def _script_text(raw: bytes, path: str) -> str:
    """A Python script's text, or an ExecutionError at its first undecodable byte (``ccdsl run H -- python
    /bin/ls`` must say what is wrong, not raise UnicodeDecodeError)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ExecutionError(f"{path}:{line}: not a Python script: not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                             hint="ccdsl run runs Python programs: ccdsl run HANDLE -- python PROG.py [ARGS]"
                             ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ExecutionError(f"{path}:{line}: not a Python script: a binary file (it contains NUL bytes)",
                             hint="ccdsl run runs Python programs: ccdsl run HANDLE -- python PROG.py [ARGS]")
    return text


# -- the launcher -------------------------------------------------------------------------------------------------
_pickle_lock = threading.Lock()


def _user_module(name: str | None) -> ModuleType | None:
    """The module to pickle by value: user code the nodes cannot import (not stdlib, not site-packages)."""
    module = sys.modules.get(name or "")
    file = getattr(module, "__file__", None)
    if module is None or name == "__main__" or not file:
        return None
    path = os.path.realpath(file)
    system = {os.path.realpath(p) for k in ("stdlib", "platstdlib", "purelib", "platlib")
              if (p := sysconfig.get_paths().get(k))}
    return None if any(path.startswith(p + os.sep) for p in system) else module


def dumps_call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], run: dict[str, Any]) -> bytes:
    """cloudpickle ``(fn, args, kwargs, run)``; functions of the user's own modules are shipped by value.  ``run``
    tells rank 0 how to send the result: ``{"trust": whether it may be a pickle, "nonce": its record's tag}``."""
    try:
        import cloudpickle
    except ImportError as exc:  # pragma: no cover
        raise MissingDependencyError("cloudpickle", "mpi") from exc
    with _pickle_lock:
        modules = {m for obj in (fn, *args, *kwargs.values())
                   if (m := _user_module(getattr(obj, "__module__", None))) is not None}
        registered = []
        for m in modules:
            try:
                cloudpickle.register_pickle_by_value(m)
                registered.append(m)
            except ValueError:
                pass
        try:
            payload: bytes = cloudpickle.dumps((fn, tuple(args), dict(kwargs), run))
            return payload
        except Exception as exc:
            raise ExecutionError(f"cannot ship {getattr(fn, '__name__', fn)!r} to the nodes: {exc}") from exc
        finally:
            for m in registered:
                cloudpickle.unregister_pickle_by_value(m)


class JobWatch:
    """What a :class:`Launcher` does around a job on its nodes: reach them, check a request against them, pump a
    job's output, check that the nodes still answer while it runs, and after a failure say why and clean up."""

    nodes: list[Node]  # set by Launcher.__init__
    ppn: int
    mode: str
    via: Node | None
    workdir: str | None
    pool: ssh.Connections | None

    @property
    def _ssh_pool(self) -> ssh.Connections:
        """The SSH connections of an ssh-mode launcher (local mode has none, and never asks)."""
        if self.pool is None:
            raise RuntimeError("a local-mode launcher has no SSH connections")
        return self.pool

    @property
    def size(self) -> int:
        return len(self.nodes) * self.ppn

    def _unstartable(self, target: str) -> str | None:
        """Why ``target`` cannot be started where the ranks run (None: it can, or that cannot be told): the same
        lookup a rank's exec does, from the working folder, on this machine or on the first node."""
        if self.mode == "local":
            here = self.workdir or os.getcwd()
            if "/" in target:
                path = os.path.join(here, target)
                return None if os.access(path, os.X_OK) else "No such file or directory"
            return None if shutil.which(target) else "No such file or directory"
        node = self.nodes[0]
        folder = f"cd {shlex.quote(self.workdir)} 2>/dev/null; " if self.workdir else ""
        try:
            answer = ssh.run(self._ssh_pool.get(node), f"{folder}command -v -- {shlex.quote(target)} >/dev/null "
                                                       "2>&1 && echo found || echo missing", node=node, timeout=60)
        except (ExecutionError, OSError):
            return None
        return "No such file or directory" if answer.stdout.strip() == "missing" else None

    def check_np(self, np: int | None, oversubscribe: bool = False) -> None:
        """A rank count is a whole number from 1 to the cluster's slots (beyond them only when asked for)."""
        if np is None:
            return
        if isinstance(np, bool) or not isinstance(np, int) or np < 1:
            raise ExecutionError(f"the number of ranks must be a whole number of at least 1, not {np!r}")
        if np > self.size and not oversubscribe:
            raise ExecutionError(f"{np} ranks asked for, but the cluster has {self.size} slot(s) "
                                 f"({len(self.nodes)} node(s) × {self.ppn} per node)",
                                 hint="ask for fewer, or allow ranks to share cores explicitly: --oversubscribe")

    @staticmethod
    def _pump(proc: _LocalProcess | _RemoteProcess, out: _Output, timeout: float | None, where: str,
              health: Callable[[], None] | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            code = proc.pump(out, deadline, health)
        except _Deadline:
            proc.kill()
            out.close()
            raise ExecutionError(f"the MPI job on {where} did not finish within {timeout:g} s; it was killed") from None
        except BaseException:
            proc.kill()
            out.close()
            raise
        out.close()
        return code

    def _extra(self, node: Node, key: str) -> str:
        value = node.extra.get(key)
        if not value:
            raise ExecutionError(f"{ssh.describe(node)} was not prepared for MPI (no '{key}' recorded)",
                                 hint="nodes must go through mpi.prepare_cluster (deploy does it)")
        return value

    def _check_python(self) -> None:
        if self.mode == "local":
            return
        mine = "{}.{}".format(*sys.version_info[:2])
        theirs = self.nodes[0].extra.get("python_version")
        if theirs and theirs != mine:
            raise ExecutionError(f"the nodes run Python {theirs} but this is Python {mine}; functions can only be "
                                 "shipped between equal versions",
                                 hint="use run_script, or set [mpi] python to a matching interpreter")

    def _node_of_rank(self, rank: int) -> str:
        if self.mode == "local":
            return "this machine"
        return ssh.describe(self.nodes[min(rank // self.ppn, len(self.nodes) - 1)])

    def _job_error(self, out: _Output, code: int, dead: list[str]) -> ExecutionError:
        """Why a job failed without a Python exception: name the nodes that no longer answer, if any."""
        tail = "\n".join(out.tail)
        shown = f"\n  last output:\n{_indent(tail)}" if tail else ""
        if dead:
            return ExecutionError(f"the MPI job failed: {'; '.join(dead)}" + shown)
        what = "lost the connection" if code == -1 else f"exit {code}" if code != 0 else "no result came back"
        return ExecutionError(f"the MPI job failed ({what})" + shown)

    def _targets(self) -> list[Node]:
        return list({n.instance_id: n for n in [*([self.via] if self.via else []), *self.nodes]}.values())

    def _health(self) -> None:
        """During a run, every ``liveness`` seconds: does every node's sshd still answer?  mpiexec does not notice
        a node that vanished without closing its connections (power loss, partition); the job would hang."""
        wait = min(10.0, max(2.0, self._ssh_pool.options.connect_timeout))

        def check(node: Node) -> str | None:
            try:
                self._ssh_pool.get(node).get_transport().open_session(timeout=wait).close()
                return None
            except Exception as exc:  # SSHException on timeout, EOFError/OSError on a dead socket
                self._ssh_pool.drop(node)
                return f"{ssh.describe(node)} stopped answering during the run ({str(exc) or type(exc).__name__})"

        dead = [m for m in parallel(check, self._targets()) if m]
        if dead:
            raise ExecutionError("the MPI job was stopped: " + "; ".join(dead))

    def _after_failure(self, out: _Output | None = None) -> list[str]:
        """After a failed ssh-mode run: kill what is left of the run on every node that answers (ranks of a job
        whose launcher died would otherwise wait forever), collect the error records ranks left in files into
        ``out``, and name the nodes that do not answer."""
        if self.mode != "ssh":
            return []
        tag = getattr(self, "_last_run", None)
        quick = replace(self._ssh_pool.options, connect_timeout=min(5.0, self._ssh_pool.options.connect_timeout))
        probe_pool = ssh.Connections(quick, jump=self._ssh_pool.jump)
        probe_pool.store = self._ssh_pool.store
        command = "true"
        if tag:
            # the path is split across a variable so that this shell's own command line does not match pkill's
            # pattern (it would kill the shell before it finished)
            head, last = shlex.quote(tag[:-1]), shlex.quote(tag[-1])
            command = (f"t={head}; for f in \"${{t}}\"{last}.error.*; do case $f in *.tmp) ;; *) [ -f \"$f\" ] "
                       f"&& cat \"$f\";; esac; done; rm -f \"${{t}}\"{last}.error.*; "
                       f"pkill -f {pkill_pattern(tag)} 2>/dev/null; true")
        lock = threading.Lock()

        def check(node: Node) -> str | None:
            try:
                res = ssh.run(probe_pool.get(node), command, node=node, timeout=10)
                if out is not None and MARK in res.stdout:
                    with lock:
                        for line in res.stdout.split("\n"):  # not splitlines(): it splits at MARK's \x1e
                            if line.startswith(MARK):
                                out.feed("stderr", (line + "\n").encode())
                return None
            except (ProviderError, ExecutionError) as exc:
                return f"{ssh.describe(node)} does not answer ({exc.message})"

        try:
            return [m for m in parallel(check, self._targets()) if m]
        finally:
            probe_pool.close()

    def _install_rank_script(self) -> None:
        """Copy this version's rank bootstrap to every node (nodes prepared by an older ccdsl lack it)."""
        source, name = _RANK_FILE.read_bytes(), rank_script_name()

        def install(node: Node) -> None:
            ssh.put(self._ssh_pool.get(node), source, f"{self._extra(node, 'ccdsl_dir')}/{name}", mode=0o644, node=node)

        parallel(install, self._targets())

    def _raise_rank_error(self, out: _Output) -> None:
        errors = out.record("error")
        if not errors:
            return
        try:  # files + stderr; a node writes these records, so a damaged one is an error, not a traceback
            records = [json.loads(base64.b64decode(e)) for e in errors]
            by_rank: dict[int, dict[str, Any]] = {
                int(i["rank"]): {"rank": int(i["rank"]), "type": str(i["type"]), "message": str(i["message"]),
                                 "traceback": str(i["traceback"])} for i in records}
        except (ValueError, TypeError, KeyError, OverflowError, RecursionError):
            by_rank = {}
        if not by_rank or any(r < 0 or r >= MAX_RANKS for r in by_rank):  # a rank is an index below the job's size
            where = "this machine" if self.mode == "local" else ssh.describe(self.via or self.nodes[0])
            raise ExecutionError(f"a rank's error record from the job on {where} is damaged; the job failed")
        # the failing rank first: when one calls MPI_Abort, mpiexec.gforker interrupts the others (SIGINT), and
        # their KeyboardInterrupt is the consequence, not the cause
        infos = sorted(by_rank.values(), key=lambda i: (i["type"] == "KeyboardInterrupt", i["rank"]))
        first = infos[0]
        others = f" (and {len(infos) - 1} more rank(s))" if len(infos) > 1 else ""
        where = self._node_of_rank(first["rank"])
        raise RankError(f"rank {first['rank']} on {where} raised {first['type']}: {first['message']}{others}",
                        rank=first["rank"], node=where, exc_type=first["type"],
                        remote_traceback=first["traceback"])


class Launcher(JobWatch):
    """Runs programs on a cluster's nodes under one mpiexec.

    ``nodes`` are the worker nodes in rank order (node i hosts ranks ``i*ppn … i*ppn+ppn-1``); ``via`` is where
    mpiexec runs in ssh mode (the manager of a ManagerWorkers cluster; default node 0).  Nodes should come from
    :func:`prepare_cluster` (their ``extra`` says where python, mpiexec and the cluster files are)."""

    def __init__(self, nodes: Sequence[Node], *, processes_per_node: int = 1, mode: str = "ssh",
                 via: Node | None = None, options: MpiOptions = MpiOptions(),
                 ssh_options: ssh.SshOptions = ssh.SshOptions(), connections: ssh.Connections | None = None,
                 handle: str | None = None, workdir: str | None = None) -> None:
        if mode not in ("ssh", "local"):
            raise ValueError(f"mode must be 'ssh' or 'local', not {mode!r}")
        if not nodes:
            raise ExecutionError("the cluster has no nodes to run on")
        if processes_per_node < 1:
            raise ExecutionError(f"processes_per_node must be at least 1, not {processes_per_node}")
        self.nodes, self.ppn, self.mode, self.options = list(nodes), processes_per_node, mode, options
        self.via = via
        self.handle = handle
        self.workdir = workdir  # the synced project folder (same path on every node): ranks start there
        self._own_pool = connections is None and mode == "ssh"
        manager = via if via is not None and all(via.instance_id != n.instance_id for n in nodes) else None
        self.pool = connections if connections is not None else (
            ssh.Connections(ssh_options, jump=manager, members=nodes) if mode == "ssh" else None)

    # -- public ---------------------------------------------------------------------------------------------------
    def ranks(self) -> dict[int, int]:
        """MPI rank -> index of the node it runs on (block placement, as the ``-hosts a:ppn,b:ppn`` list asks)."""
        return {r: self.nodes[r // self.ppn].index for r in range(self.size)}

    def run_function(self, fn: Callable[..., Any], args: Sequence[Any] = (), kwargs: dict[str, Any] | None = None, *,
                     stream: Stream | None = print_stream, timeout: float | None = None,
                     trust_nodes: bool = False) -> Any:
        """Run ``fn(comm, *args, **kwargs)`` on every rank; return rank 0's value.  A rank that raises aborts the
        job and becomes a :class:`RankError` naming the rank, its node and the remote traceback.  The value is
        rebuilt as plain data unless ``trust_nodes`` (see :mod:`ccdsl.executor.results`).  The result is the one
        record tagged with this run's random nonce, alone on a line of stdout: text the program prints (a log of a
        record, on either stream) cannot stand in for it."""
        import secrets

        self._check_python()
        nonce = secrets.token_hex(16)
        payload = dumps_call(fn, tuple(args), dict(kwargs or {}), {"trust": bool(trust_nodes), "nonce": nonce})
        out, code = self._launch("fn", payload, [], self.size, stream, timeout, nonce=nonce)
        results = out.record("result")
        if len(results) > 1:
            raise ExecutionError(f"{len(results)} result records came back from one run (rank 0 sends one); "
                                 "none is used")
        if code != 0 or not results:
            dead = self._after_failure(out)
            self._raise_rank_error(out)
            raise self._job_error(out, code, dead)
        from ccdsl.executor import results as result_records

        try:
            data = base64.b64decode(results[0], validate=True)
        except ValueError:
            raise ExecutionError("rank 0's result record is damaged (not base64)") from None
        return result_records.loads(data, trust_nodes=trust_nodes)

    def run_script(self, path: str | os.PathLike[str], args: Sequence[str] = (), np: int | None = None, *,
                   stream: Stream | None = print_stream, timeout: float | None = None,
                   oversubscribe: bool = False) -> int:
        """Run the Python script at ``path`` (on this machine; it is shipped) on ``np`` ranks (default: every
        slot), streaming its output lines to ``stream`` as they come.  Returns mpiexec's exit code.  More ranks
        than slots only with ``oversubscribe`` (they then share cores)."""
        from ccdsl.executor.program import Program

        return self.run_program(Program("script", str(path), tuple(str(a) for a in args)), np, stream=stream,
                                timeout=timeout, oversubscribe=oversubscribe)

    def run_program(self, program: Any, np: int | None = None, *, stream: Stream | None = print_stream,
                    timeout: float | None = None, oversubscribe: bool = False, label_ranks: bool = False) -> int:
        """Run a :class:`~ccdsl.executor.program.Program` on ``np`` ranks: a Python script (shipped), ``-c`` code
        or ``-m`` module under the rank bootstrap, or any other program as is (once per rank, MPI environment
        set).  Streams the output; returns mpiexec's exit code.  ``label_ranks``: every output line starts with
        ``[RANK] `` (hydra's ``-prepend-rank``; gforker's ``-l`` labels are rewritten so), for output sorted by
        rank.  A program the nodes cannot start is an :class:`ExecutionError` naming it."""
        import pickle

        self.check_np(np, oversubscribe)
        if program.kind == "script":
            p = Path(program.target)
            try:
                raw = p.read_bytes()
            except OSError as exc:
                raise ExecutionError(f"cannot read the script {program.target}: {exc.strerror}") from exc
            mode, payload = "script", pickle.dumps((str(p), _script_text(raw, program.target)))
        elif program.kind == "code":
            mode, payload = "script", pickle.dumps(("-c", program.target))
        elif program.kind == "module":
            mode, payload = "module", pickle.dumps(program.target)
        else:
            mode, payload = "exec", b""
        argv = [program.target, *program.args] if mode == "exec" else [*program.args]
        out, code = self._launch(mode, payload, [str(a) for a in argv], np or self.size, stream, timeout,
                                 flags=tuple(program.flags), label=label_ranks)
        if code != 0:
            dead = self._after_failure()
            if dead:
                raise ExecutionError(f"the MPI job failed (exit {code}): {'; '.join(dead)}")
            missing = out.record("execvp")
            if not missing and mode == "exec":  # hydra may die of SIGPIPE (exit 141) before it reports the execvp
                reason = self._unstartable(program.target)  # error: ask the nodes whether the program is there
                missing = [f"{program.target}\t{reason}"] if reason else []
            if missing:
                name, _, reason = missing[0].partition("\t")
                where, path = (("this machine", "its PATH") if self.mode == "local" else
                               ("the nodes", "their PATH"))
                raise ExecutionError(f"cannot run {name!r} on {where}: {reason} (it must be a program on {path}, or "
                                     "a path relative to the working folder)")
        return code

    def close(self) -> None:
        if self._own_pool and self.pool is not None:
            self.pool.close()

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running --------------------------------------------------------------------------------------------------
    def _launch(self, mode: str, payload: bytes, args: list[str], np: int, stream: Stream | None,
                timeout: float | None, retried: bool = False, flags: tuple[str, ...] = (),
                label: bool = False, nonce: str | None = None) -> tuple[_Output, int]:
        """Start mpiexec for one run.  ``exec`` mode runs ``args`` (a program and its arguments) as they are;
        the other modes run the rank bootstrap under the nodes' python with ``flags`` (interpreter options).
        ``label``: each output line starts with its rank's label (``[RANK] ``)."""
        timeout = timeout if timeout is not None else self.options.run_timeout
        extra = (*self.options.extra_args, *(LABEL_RANKS if label else ()))
        if mode == "exec":
            return self._launch_exec(args, np, stream, timeout, extra, label)
        if self.mode == "local":
            tmp, lock = _run_dir()
            try:
                payload_path = os.path.join(tmp, "payload")
                with open(payload_path, "wb") as f:
                    f.write(payload)
                env = dict(os.environ)
                if self.workdir:
                    env["CCDSL_WORKDIR"] = self.workdir
                python = self.options.local_python or sys.executable
                command = local_command(np, [str(_RANK_FILE), mode, payload_path, *args], python=[python, *flags],
                                        label=label, hydra_args=self.options.extra_args)
                out = _Output(stream, nonce, gforker=command.gforker, label=label)
                process = _LocalProcess(list(command.argv), local_env(env), command.gforker, command.pipes)
                code = out.exit_code(self._pump(process, out, timeout, "this machine"))
                if code != 0:  # error records a rank also left in files (see _rank._fail)
                    for name in sorted(os.listdir(tmp)):
                        if ".error." in name and not name.endswith(".tmp"):
                            with open(os.path.join(tmp, name), "rb") as f:
                                out.feed("stderr", f.read())
                    out.close()
                return out, code
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
                os.close(lock)
        out = _Output(stream, nonce)
        first = self.nodes[0]
        via = self.via or first
        directory = self._extra(first, "ccdsl_dir")
        payload_path = f"{directory}/run-{uuid.uuid4().hex}.payload"
        self._last_run: str | None = payload_path
        inline = via.instance_id == first.instance_id
        if not inline:  # ManagerWorkers: rank 0's node is a worker, reached through the manager
            ssh.put(self._ssh_pool.get(first), payload, payload_path, node=first)
        hosts = ",".join(f"{n.private_address or n.address}:{self.ppn}" for n in self.nodes)
        via_dir = self._extra(via, "ccdsl_dir")
        program = [self._extra(first, "python"), *flags, f"{directory}/{rank_script_name()}", mode, payload_path,
                   *args]
        argv = self._mpirun(via, np, program, extra, wdir=None) or [
                self._extra(via, "mpiexec"), "-launcher", "ssh", "-launcher-exec", f"{via_dir}/ssh",
                "-hosts", hosts, *(["-iface", self.options.iface] if self.options.iface else []),
                *extra, *(["-genv", "CCDSL_WORKDIR", self.workdir] if self.workdir else []),
                "-n", str(np), *program]
        proc = _RemoteProcess(self._ssh_pool.get(via), via, argv, self._ssh_pool.options,
                              payload=(payload, payload_path) if inline else None,
                              requires=f"{directory}/{rank_script_name()}" if inline else None)
        try:
            code = self._pump(proc, out, timeout, ssh.describe(via), self._health)
        except BaseException:
            self._after_failure()
            raise
        if code == STALE and not out.tail and not retried:
            self._install_rank_script()
            return self._launch(mode, payload, args, np, stream, timeout, retried=True, flags=flags, label=label,
                                nonce=nonce)
        return out, code

    def _launch_exec(self, argv: list[str], np: int, stream: Stream | None, timeout: float | None,
                     extra: tuple[str, ...], label: bool) -> tuple[_Output, int]:
        """``mpiexec -n NP PROGRAM ARGS``: any program, once per rank (on this machine, or on node 0 or the manager
        in ssh mode).  ``extra``: mpiexec arguments of a remote run (``label`` says the same for a local one)."""
        if self.mode == "local":
            local = local_command(np, argv, env=[("CCDSL_WORKDIR", self.workdir)] if self.workdir else [],
                                  wdir=self.workdir, label=label, hydra_args=self.options.extra_args)
            out = _Output(stream, gforker=local.gforker, label=label)
            process = _LocalProcess(list(local.argv), local_env(dict(os.environ)), local.gforker, local.pipes)
            return out, out.exit_code(self._pump(process, out, timeout, "this machine"))
        out = _Output(stream)
        here = ["-genv", "CCDSL_WORKDIR", self.workdir, "-wdir", self.workdir] if self.workdir else []
        via = self.via or self.nodes[0]
        hosts = ",".join(f"{n.private_address or n.address}:{self.ppn}" for n in self.nodes)
        via_dir = self._extra(via, "ccdsl_dir")
        command = self._mpirun(via, np, argv, extra, wdir=self.workdir) or [
                   self._extra(via, "mpiexec"), "-launcher", "ssh", "-launcher-exec", f"{via_dir}/ssh",
                   "-hosts", hosts, *(["-iface", self.options.iface] if self.options.iface else []),
                   *extra, *here, "-n", str(np), *argv]
        self._last_run = None
        proc = _RemoteProcess(self._ssh_pool.get(via), via, command, self._ssh_pool.options)
        try:
            code = self._pump(proc, out, timeout, ssh.describe(via), self._health)
        except BaseException:
            self._after_failure()
            raise
        return out, code

    def _mpirun(self, via: Node, np: int, program: list[str], extra: tuple[str, ...],
                wdir: str | None) -> list[str] | None:
        """Open MPI's mpirun for a cluster with EFA (:mod:`ccdsl.executor.mpirun`), None for Hydra's mpiexec."""
        if not mpirun.wanted([via, *self.nodes]):
            return None
        return mpirun.argv(self._extra(via, "mpiexec"), [n.private_address or n.address or "" for n in self.nodes],
                           self.ppn, np, program, agent=f"{self._extra(via, 'ccdsl_dir')}/ssh",
                           env={"CCDSL_WORKDIR": self.workdir} if self.workdir else None, iface=self.options.iface,
                           extra=extra, wdir=wdir)



def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def options_from_config(config: Config, *, known_hosts: str | None = None,
                        deploying: bool = False) -> tuple[MpiOptions, ssh.SshOptions]:
    """``[mpi]`` and ``[ssh]`` of a :class:`ccdsl.executor.config.Config` as launcher and transport options.

    ``known_hosts`` and ``deploying`` decide which host keys are accepted (:func:`ccdsl.executor.access.ssh_options`).
    """
    m, s = config.mpi, config.ssh
    return (MpiOptions(python=m.python, mpiexec=m.mpiexec or None, iface=m.iface or None, remote_dir=m.remote_dir,
                       authorized_keys=m.authorized_keys, install=m.install, packages=tuple(m.packages),
                       ready_timeout=s.ready_timeout, run_timeout=m.timeout or None, extra_args=tuple(m.extra_args)),
            access.ssh_options(config, known_hosts=known_hosts, deploying=deploying))
