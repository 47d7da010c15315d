"""The project's folder on every node: copy only what changed, then run the set-up command.

    local folder --scan--> tree --compare with each node's tree--> changes --SFTP (all nodes at once)--> nodes
                                                                        \\--> manager --relay (_tree.py)--> workers

- PeerWorkers (and the EC2/SSH nodes of any cluster without a manager): this machine writes to every node over
  SFTP, all nodes in parallel, each file atomically (temporary name, then rename) with its mode and mtime.
- ManagerWorkers: this machine writes to the manager only; the manager copies on to the workers with
  ``_tree.py relay`` over the cluster's internal SSH (so the user's uplink carries the folder once).
- local provider: the nodes are this machine; the folder is copied once, to ``<data dir>/local/<handle>/work``.
- ``[aws] shared`` (nfs, efs): the nodes share ``<shared_dir>/<handle>/work``; this machine writes it once, to node 0
  or the manager (``providers/shared_fs.py``).

Ranks, scripts and engines start in the copy (``<cluster dir>/work`` on a node) with it on ``sys.path``.
``.git``, ``__pycache__``, ``.venv`` and the patterns of ``.ccdslignore`` are neither sent nor deleted on the nodes
(so a ``.venv`` a set-up command creates there survives every sync).  Other files that programs write into the
folder on a node are deleted by the next sync, as any file that is not in the local folder; list them in
``.ccdslignore`` to keep them.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ccdsl.errors import ConfigError, ExecutionError, SetupError, printable
from ccdsl.executor import _tree, ssh
from ccdsl.executor.lines import CHUNK, Lines
from ccdsl.executor.model import Node
from ccdsl.executor.parallel import parallel

if TYPE_CHECKING:
    from typing import TypeAlias

    # paramiko ships no types (ignore_missing_imports in pyproject.toml): its classes below name what travels, and
    # read as Any -- the untyped boundary of this module
    import paramiko

    from ccdsl.executor.access import NodeAccess

    # A folder's tree as ``_tree.scan`` returns it: relative path -> entry, and the relative directories.
    Tree: TypeAlias = tuple[dict[str, _tree.Entry], set[str]]

WORK = "work"  # the folder's name inside a node's cluster directory
SyncProgress = Callable[[int, int, int, int], None]  # (files done, files total, bytes done, bytes total)
Stream = Callable[[str, str], None]  # (node name, line)


@dataclass(frozen=True)
class Synced:
    """What one sync did on one node (``fresh``: the node had no copy yet, e.g. a replaced node)."""

    node: str
    instance_id: str
    files: int
    bytes: int
    deleted: int
    fresh: bool


def check_folder(path: str | os.PathLike[str]) -> Path:
    """The absolute folder, or a ConfigError a user can act on."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise ConfigError(f"the working folder {path} does not exist or is not a folder",
                          hint="pass the project's folder: workdir='proj/' or --workdir proj/")
    return p.resolve()


def remote_dir(node: Node) -> str:
    """Where the folder lives on a prepared node: in the folder the nodes share (``[aws] shared``, set when the
    nodes were made ready), else in the node's cluster directory."""
    if node.extra.get("work_dir"):
        return str(node.extra["work_dir"])
    base = node.extra.get("ccdsl_dir")
    if not base:
        raise ExecutionError(f"node {node.role} {node.index} was not prepared (no cluster directory recorded)")
    return f"{base}/{WORK}"


def local_dir(handle: str) -> Path:
    """Where the local provider's cluster keeps its copy of the folder."""
    from ccdsl.executor.providers import local

    return local.folder(handle) / WORK


def local_tree(root: Path) -> tuple[Tree, dict[str, int]]:
    """The folder's tree and its files' nanosecond stamps; a ConfigError naming the symbolic links that lead out
    of the folder (checked before anything is sent: none of the folder is sent then)."""
    stamps: dict[str, int] = {}
    try:
        return _tree.scan(str(root), _tree.ignore_patterns(str(root)), stamps, source=True), stamps
    except _tree.OutsideLinks as exc:
        raise ConfigError(f"the working folder {root} has symbolic links leading out of it: {exc}; "
                          "nothing was sent", hint="remove them, or list them in .ccdslignore to leave them out "
                          "(links are sent only when they resolve inside the folder)") from None


class Counter:
    """Adds up the progress of all nodes (threads) and calls ``progress`` at most every 0.1 s (and at the end)."""

    def __init__(self, progress: SyncProgress | None) -> None:
        self.progress = progress
        self.files = self.bytes = self.total_files = self.total_bytes = 0
        self._lock = threading.Lock()
        self._last = 0.0

    def plan(self, files: int, size: int) -> None:
        with self._lock:
            self.total_files += files
            self.total_bytes += size
        self._tell()

    def done(self, files: int, size: int) -> None:
        with self._lock:
            self.files += files
            self.bytes += size
        self._tell()

    def _tell(self, force: bool = False) -> None:
        if self.progress is None:
            return
        now = time.monotonic()
        if force or now - self._last >= 0.1 or self.files == self.total_files:
            self._last = now
            self.progress(self.files, self.total_files, self.bytes, self.total_bytes)

    def finish(self) -> None:
        self._tell(force=True)


# -- copying ------------------------------------------------------------------------------------------------------
def sync_local(source: Path, target: Path, counter: Counter) -> Synced:
    """Copy ``source`` to ``target`` on this machine (the local provider)."""
    import shutil

    patterns = _tree.ignore_patterns(str(source))
    mine, stamps = local_tree(source)
    theirs = _tree.scan(str(target), patterns)
    changes = _tree.compare(mine, theirs, stamps, _tree.read_manifest(str(target)))
    size = sum(mine[0][r][0] for r in changes["send"])
    counter.plan(len(changes["send"]), size)
    for rel in changes["delete"]:
        (target / rel).unlink(missing_ok=True)
    for rel in changes["rmdirs"]:
        shutil.rmtree(target / rel, ignore_errors=True)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    for rel in changes["mkdirs"]:
        (target / rel).mkdir(parents=True, exist_ok=True)
    for rel in changes["send"]:
        dst = target / rel
        tmp = dst.with_name(dst.name + ".ccdsl-tmp")
        tmp.unlink(missing_ok=True)
        entry = mine[0][rel]
        if _tree.is_link(entry):
            os.symlink(entry[3], tmp)
        else:
            fsize, mtime, mode = entry
            with _tree.open_regular(str(source / rel)) as src, open(tmp, "wb") as out:
                for chunk in _tree.read_upto(src, fsize):
                    out.write(chunk)
            os.chmod(tmp, mode)
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, dst)
        counter.done(1, mine[0][rel][0])
    for rel, mode in changes["chmod"].items():
        os.chmod(target / rel, mode)
    _tree.write_manifest(str(target), stamps)
    return Synced("this machine", "local", len(changes["send"]), size, len(changes["delete"]), fresh=not theirs[0])


def _sftp_tree(sftp: paramiko.SFTPClient, root: str, patterns: list[str]) -> Tree:
    """The tree at ``root`` on a node, read over SFTP (one listing per directory)."""
    files: dict[str, _tree.Entry] = {}  # (size, mtime, mode), or (0, 0, 0, target) for a link
    dirs: set[str] = set()
    todo = [""]
    while todo:
        rel_dir = todo.pop()
        try:
            entries = sftp.listdir_attr(f"{root}/{rel_dir}" if rel_dir else root)
        except FileNotFoundError:
            continue
        for a in entries:
            rel = f"{rel_dir}/{a.filename}" if rel_dir else a.filename
            is_dir = stat.S_ISDIR(a.st_mode or 0)
            if _tree.is_ignored(rel, is_dir, patterns):
                continue
            if is_dir:
                dirs.add(rel)
                todo.append(rel)
            elif stat.S_ISLNK(a.st_mode or 0):  # a listing is lstat's: links are not followed
                files[rel] = (0, 0, 0, sftp.readlink(f"{root}/{rel}"))
            elif stat.S_ISREG(a.st_mode or 0):
                files[rel] = (a.st_size, int(a.st_mtime), stat.S_IMODE(a.st_mode))
    return files, dirs


def _sftp_rmtree(sftp: paramiko.SFTPClient, path: str) -> None:
    for a in sftp.listdir_attr(path):
        p = f"{path}/{a.filename}"
        if stat.S_ISDIR(a.st_mode or 0):
            _sftp_rmtree(sftp, p)
        else:
            sftp.remove(p)
    sftp.rmdir(path)


def sync_sftp(client: paramiko.SSHClient, node: Node, source: Path, local: tuple[Tree, dict[str, int]],
              counter: Counter) -> Synced:
    """Make the node's copy equal to ``source`` over one SFTP session: list, delete, send what changed."""
    import json

    root = remote_dir(node)
    mine, stamps = local
    patterns = _tree.ignore_patterns(str(source))
    where = ssh.describe(node)
    current = root
    try:
        with client.open_sftp() as sftp:
            theirs = _sftp_tree(sftp, root, patterns)
            recorded = None
            if theirs[0]:
                try:
                    with sftp.open(f"{root}/{_tree.MANIFEST}", "rb") as f:
                        recorded = json.loads(f.read())
                except (OSError, ValueError, RecursionError):
                    pass
                if not isinstance(recorded, dict):  # a node's file: anything else is no record (all is sent)
                    recorded = None
            changes = _tree.compare(mine, theirs, stamps, recorded)
            size = sum(mine[0][r][0] for r in changes["send"])
            counter.plan(len(changes["send"]), size)
            for rel in changes["delete"]:
                current = f"{root}/{rel}"
                sftp.remove(current)
            for rel in changes["rmdirs"]:
                current = f"{root}/{rel}"
                _sftp_rmtree(sftp, current)
            if not theirs[0] and not theirs[1]:
                ssh.makedirs(sftp, root)
            for rel in changes["mkdirs"]:
                current = f"{root}/{rel}"
                try:
                    sftp.mkdir(current, 0o755)
                except OSError:
                    sftp.stat(current)
            for rel in changes["send"]:
                current = f"{root}/{rel}"
                entry = mine[0][rel]
                tmp = f"{current}.ccdsl-tmp"
                if _tree.is_link(entry):
                    try:
                        sftp.remove(tmp)
                    except OSError:
                        pass
                    sftp.symlink(entry[3], tmp)  # OpenSSH's argument order: target, then the link's path
                    sftp.posix_rename(tmp, current)
                    counter.done(1, 0)
                    continue
                fsize, mtime, mode = entry
                with _tree.open_regular(str(source / rel)) as src, sftp.open(tmp, "wb") as dst:
                    dst.set_pipelined(True)
                    for chunk in _tree.read_upto(src, fsize):
                        dst.write(chunk)
                sftp.chmod(tmp, mode)
                sftp.utime(tmp, (mtime, mtime))
                sftp.posix_rename(tmp, current)
                counter.done(1, fsize)
            for rel, mode in changes["chmod"].items():
                current = f"{root}/{rel}"
                sftp.chmod(current, mode)
            if changes["send"] or changes["delete"] or recorded is None:
                current = f"{root}/{_tree.MANIFEST}"
                with sftp.open(current + ".tmp", "wb") as f:
                    f.write(json.dumps(stamps).encode())
                sftp.posix_rename(current + ".tmp", current)
    except ssh.transport_errors() as exc:
        raise ExecutionError(f"cannot sync {current} on {where}: {exc or type(exc).__name__}") from exc
    return Synced(where, node.instance_id, len(changes["send"]), size, len(changes["delete"]), fresh=not theirs[0])


def relay(client: paramiko.SSHClient, manager: Node, workers: Sequence[Node], counter: Counter,
          timeout: float) -> list[Synced]:
    """On the manager: copy its folder on to every worker (``_tree.py relay``), all at once."""
    import json

    d = manager.extra["ccdsl_dir"]
    script = f"{d}/ccdsl_tree.py"
    ssh.put(client, Path(_tree.__file__).read_bytes(), script, mode=0o644, node=manager)
    targets = [f"{w.private_address or w.address}={w.extra.get('python') or 'python3'}" for w in workers]
    command = shlex.join([manager.extra.get("python") or "python3", script, "relay", remote_dir(manager),
                          remote_dir(workers[0]), f"{d}/ssh", *targets])
    res = ssh.run(client, command, node=manager, timeout=timeout)
    by_address = {w.private_address or w.address: w for w in workers}
    out: list[Synced] = []
    errors: list[str] = []
    seen: set[str] = set()  # workers with a report
    for line in res.stdout.splitlines():
        try:
            report = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if not isinstance(report, dict) or not isinstance(report.get("host"), str):
            continue  # not a report: output of the manager's shell, say
        node = by_address.get(report["host"])
        name = ssh.describe(node) if node else printable(report["host"][:80])
        if node is None or node.instance_id in seen:
            # a worker reported twice, or a host that is no worker, must not stand in for a worker left out
            errors.append(f"{name}: {'a second report' if node else 'a report for a host that is no worker'}")
            continue
        seen.add(node.instance_id)
        if "error" in report:
            errors.append(f"{name}: {printable(str(report['error'])[:500])}")
        elif not all(_count(report.get(k)) for k in ("files", "bytes", "deleted")):
            errors.append(f"{name}: a damaged report from the manager's copy ({printable(line[:80])})")
        else:
            counter.plan(report["files"], report["bytes"])
            counter.done(report["files"], report["bytes"])
            out.append(Synced(name, node.instance_id, report["files"], report["bytes"], report["deleted"],
                              bool(report.get("fresh"))))
    errors += [f"{ssh.describe(w)}: no report" for w in workers if w.instance_id not in seen]
    if errors or res.code != 0:
        detail = "; ".join(errors) or printable(res.stderr.strip()[-500:]) or f"exit {res.code}"
        raise ExecutionError(f"the manager {ssh.describe(manager)} could not copy the folder to the workers: "
                             f"{detail}")
    return out


def _count(value: object) -> bool:
    """A number of files or bytes in a node's report: a whole number within what a folder can hold."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62


# -- set-up -------------------------------------------------------------------------------------------------------
def print_setup_line(node: str, line: str) -> None:
    """The default set-up stream: ``[worker 1] line`` on stderr."""
    sys.stderr.write(f"[{node}] {line}\n")
    sys.stderr.flush()


def node_name(node: Node) -> str:
    return f"{node.role} {node.index}"


def _shell(directory: str, command: str, python: str | None) -> str:
    """``command`` in ``directory``, with the node's python (and its pip) first on PATH."""
    path = f"PATH={shlex.quote(os.path.dirname(python))}:\"$PATH\"; export PATH; " if python and "/" in python else ""
    return f"cd {shlex.quote(directory)} && {path}exec sh -c {shlex.quote(command)}"


def _stream_lines(read: Callable[[], bytes], line: Callable[[str], None]) -> None:
    """Pass on each line (and each piece of a line without an end: ``lines.Lines``) of what ``read`` returns,
    until it returns nothing."""
    lines = Lines()
    while chunk := read():
        for one in lines.feed(chunk):
            line(one.decode(errors="replace"))
    for one in lines.close():
        line(one.decode(errors="replace"))


def setup_local(directory: Path, command: str, stream: Stream, *, handle: str | None = None) -> None:
    """Run the set-up on this machine (the local provider), streaming its output.  It runs in a process group of
    its own, named in ``setup.pid`` beside the folder, so that ``terminate`` ends it (and what it started) when
    the deploy that ran it was killed; it gets SIGTERM when that deploy dies."""
    from ccdsl.executor.mpi import die_with_parent
    from ccdsl.executor.providers.local import SETUP_TAG, end_group, setup_pid_file

    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env[SETUP_TAG] = handle or ""
    proc = subprocess.Popen(["sh", "-c", command], cwd=directory, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                            preexec_fn=die_with_parent)
    pid_file = setup_pid_file(handle) if handle else None
    if pid_file is not None:
        pid_file.write_text(str(proc.pid))
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    try:
        _stream_lines(lambda: os.read(fd, CHUNK), lambda line: stream("this machine", line))
        code = proc.wait()
    except BaseException:  # Ctrl-C: the set-up ends with the deploy
        end_group(proc.pid)
        proc.wait()
        raise
    finally:
        if pid_file is not None:
            pid_file.unlink(missing_ok=True)
        proc.stdout.close()
    if code != 0:
        raise SetupError(f"the set-up command failed on this machine (exit {code}): {command}",
                         node="this machine", exit_code=code)


def setup_remote(pool: ssh.Connections, nodes: Sequence[Node], command: str, stream: Stream) -> None:
    """Run the set-up in the folder on every node at once, streaming each output line with the node's name.
    Every node runs to its end; then a failure names the node(s) and exit code(s)."""

    def one(node: Node) -> tuple[Node, int]:
        name = node_name(node)
        client = pool.get(node)
        chan = client.get_transport().open_session(timeout=pool.options.connect_timeout)
        chan.set_combine_stderr(True)
        chan.exec_command(_shell(remote_dir(node), command, node.extra.get("python")))

        def read() -> bytes:  # the next chunk; nothing once the command ended and its output is read
            while not chan.recv_ready():
                if chan.exit_status_ready() or chan.closed:
                    if not chan.recv_ready():
                        return b""
                    break
                ssh.wait_channel(chan, 0.05)
            chunk: bytes = chan.recv(CHUNK)  # paramiko is untyped (Any to mypy): typed here, at the boundary
            return chunk

        _stream_lines(read, lambda line: stream(name, line))
        code = chan.recv_exit_status()
        chan.close()
        return node, code

    results = parallel(one, list(nodes))
    failed = [(n, c) for n, c in results if c != 0]
    if failed:
        what = "; ".join(f"{ssh.describe(n)} exit {c}" for n, c in failed)
        raise SetupError(f"the set-up command failed on {what}: {command}", node=ssh.describe(failed[0][0]),
                         exit_code=failed[0][1])


# -- progress bar -------------------------------------------------------------------------------------------------
class ProgressBar:
    """``sync [#######-------]  42/100 files  21.0/50.0 MB`` on stderr, redrawn in place on a terminal and
    printed once at the end otherwise."""

    def __init__(self, stream: TextIO | None = None, width: int = 24) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.last = ""

    def __call__(self, files: int, total_files: int, size: int, total_size: int) -> None:
        frac = 1.0 if total_size == 0 and files >= total_files else (size / total_size if total_size else 0.0)
        filled = round(frac * self.width)
        self.last = (f"sync [{'#' * filled}{'-' * (self.width - filled)}] {files:>4}/{total_files} files  "
                     f"{size / 1e6:.1f}/{total_size / 1e6:.1f} MB")
        if self.tty:
            self.stream.write("\r" + self.last)
            self.stream.flush()

    def close(self) -> None:
        if self.last:
            self.stream.write(("\r" if self.tty else "") + self.last + "\n")
            self.stream.flush()


# -- a cluster's nodes --------------------------------------------------------------------------------------------
def sync_nodes(access: NodeAccess, source: str | Path, *, progress: SyncProgress | None = None) -> list[Synced]:
    """Make the folder on every node of a cluster equal to ``source``; report per node."""
    source = check_folder(source)
    counter = Counter(progress)
    if access.local:
        out = [sync_local(source, local_dir(access.handle), counter)]
        counter.finish()
        return out
    workers, manager = access.workers, access.manager
    ssh_options = access.ssh_options()
    mine = local_tree(source)  # first: a link leading out of the folder fails the sync before any connection
    with ssh.Connections(ssh_options, jump=manager, members=workers) as pool:
        if shared(access):  # one copy every node sees: written once, to the node that serves it
            server = manager or workers[0]
            out = [sync_sftp(pool.get(server), server, source, mine, counter)]
        elif manager is None:
            out = parallel(lambda n: sync_sftp(pool.get(n), n, source, mine, counter), workers)
        else:
            out = [sync_sftp(pool.get(manager), manager, source, mine, counter)]
            out += relay(pool.get(manager), manager, workers, counter, ssh_options.command_timeout * 10)
    counter.finish()
    return out


def shared(access: NodeAccess) -> bool:
    """Whether every node sees the same folder (``[aws] shared``): then one copy serves them all."""
    dirs = {n.extra.get("work_dir") for n in access.all_nodes}
    return len(dirs) == 1 and bool(dirs.pop())


def setup_nodes(access: NodeAccess, command: str, *, stream: Stream | None = None,
                only: set[str] | None = None) -> None:
    """Run the set-up command in the folder on every node (``only``: those instance ids), manager included;
    on this machine once for the local provider."""
    out = stream or print_setup_line
    if access.local:
        setup_local(local_dir(access.handle), command, out, handle=access.handle)
        return
    chosen = [n for n in access.all_nodes if only is None or n.instance_id in only]
    with access.connections() as pool:
        setup_remote(pool, chosen, command, out)
