"""Folder trees: what a folder holds, what differs between two, and the manager's relay to the workers.

This file is also copied as is to the manager of a ManagerWorkers cluster and run there with the node's python
(``python _tree.py relay SRC DST SSH HOST=PYTHON ...``), so it must not import ccdsl: nodes need only python.

A tree is ``{relative path: (size, mtime in whole seconds, permission bits)}`` for files plus the set of
directories.  Whole seconds because SFTP (v3) carries whole seconds: a copied file must compare equal to its
source, or every re-sync would send everything again.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
import sys
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import tarfile
    from collections.abc import Iterator

# A tree entry: a file is (size, whole-second mtime, permission bits), a link (0, 0, 0, target).
Entry = Any

MANIFEST = ".ccdsl-tree.json"  # on a node: the source's mtimes in nanoseconds, as of the last complete sync
ALWAYS_IGNORED = (".git", "__pycache__", ".venv", MANIFEST)
IGNORE_FILE = ".ccdslignore"


def ignore_patterns(root: str) -> list[str]:
    """The patterns that leave files out: ``.git``, ``__pycache__``, ``.venv`` and the lines of ``.ccdslignore``
    (glob patterns; ``#`` starts a comment; a trailing ``/`` matches directories only)."""
    patterns = list(ALWAYS_IGNORED)
    try:
        with open(os.path.join(root, IGNORE_FILE)) as f:
            for line in f:
                line = line.strip()
                if line and not line.startswith("#"):
                    patterns.append(line)
    except OSError:
        pass
    return patterns


def is_ignored(rel: str, is_dir: bool, patterns: list[str]) -> bool:
    """Does ``rel`` (a path relative to the root, ``/``-separated) match a pattern?  A pattern without ``/``
    matches any path component's name; one with ``/`` matches the whole relative path."""
    name = rel.rsplit("/", 1)[-1]
    for p in patterns:
        if p.endswith("/"):
            if not is_dir:
                continue
            p = p.rstrip("/")
        p = p.lstrip("/")
        if "/" in p:
            if fnmatch.fnmatchcase(rel, p):
                return True
        elif fnmatch.fnmatchcase(name, p):
            return True
    return False


class OutsideLinks(Exception):
    """Symbolic links in a source folder that resolve outside it: ``paths`` (relative), none of them sent."""

    def __init__(self, paths: list[str]) -> None:
        super().__init__(", ".join(paths))
        self.paths = paths


def is_link(entry: Entry) -> bool:
    """Is a tree entry a symbolic link (``(0, 0, 0, target)``) rather than a file (``(size, mtime, mode)``)?"""
    return len(entry) == 4


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def scan(root: str, patterns: list[str] | None = None, stamps: dict[str, int] | None = None,
         source: bool = False) -> tuple[dict[str, Entry], set[str]]:
    """``(files, dirs)`` of the folder ``root``; ``patterns`` (None: none) leave paths out; a missing root is an
    empty tree.  Nothing is followed (``os.lstat``): a symbolic link is an entry ``(0, 0, 0, target)``, and only
    regular files and links are listed (devices, sockets and FIFOs are never opened).  With ``source``, a link
    must resolve inside ``root`` and its target becomes relative (what is sent); links resolving outside raise
    ``OutsideLinks`` naming them all, so nothing outside the folder (``~/.aws/credentials``, ``/proc``) ever
    leaves this machine.  ``stamps`` (a dict), if given, receives every file's mtime in nanoseconds: two versions
    of a file written within one second, of equal size, differ there."""
    files: dict[str, Entry] = {}
    dirs: set[str] = set()
    if not os.path.isdir(root):
        return files, dirs
    real_root = os.path.realpath(root)
    outside: list[str] = []
    for here, subdirs, names in os.walk(root):  # os.walk does not descend into links to directories
        rel_here = os.path.relpath(here, root).replace(os.sep, "/")
        rel_here = "" if rel_here == "." else rel_here + "/"
        keep = []
        for d in sorted(subdirs):
            rel = rel_here + d
            if patterns and is_ignored(rel, True, patterns):
                continue
            if os.path.islink(os.path.join(here, d)):  # a link to a directory: an entry, never entered
                names.append(d)
                continue
            keep.append(d)
            dirs.add(rel)
        subdirs[:] = keep
        for n in names:
            rel = rel_here + n
            if patterns and is_ignored(rel, False, patterns):
                continue
            path = os.path.join(here, n)
            try:
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(path)
                    if source:
                        resolved = os.path.realpath(path)
                        if not _inside(resolved, real_root):
                            outside.append(rel)
                            continue
                        target = os.path.relpath(resolved, os.path.realpath(here))
                    files[rel] = (0, 0, 0, target)
                    continue
            except OSError:  # removed meanwhile
                continue
            if stat.S_ISREG(st.st_mode):
                files[rel] = (st.st_size, int(st.st_mtime), stat.S_IMODE(st.st_mode))
                if stamps is not None:
                    stamps[rel] = st.st_mtime_ns
    if outside:
        raise OutsideLinks(sorted(outside))
    return files, dirs


def open_regular(path: str) -> IO[bytes]:
    """``path`` opened for reading, only if it is (still) a regular file and not a link: a FIFO or device put in
    its place since the scan is neither waited on nor read."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is no longer a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_upto(f: IO[bytes], size: int, chunk: int = 1 << 20) -> Iterator[bytes]:
    """The chunks of ``f``, ``size`` bytes at most in all (the size the scan saw: a growing file sends no more)."""
    while size > 0:
        data = f.read(min(chunk, size))
        if not data:
            return
        size -= len(data)
        yield data


def link_ok(rel: str, target: str) -> bool:
    """May a node create the link ``rel`` -> ``target``?  Only a relative target that stays in the folder."""
    if not target or target.startswith("/"):
        return False
    joined = os.path.normpath(os.path.join(os.path.dirname(rel), target))
    return joined != ".." and not joined.startswith("../") and not joined.startswith("/")


def read_manifest(root: str) -> dict[str, Any] | None:
    """The stamps recorded by the last complete sync into ``root`` (None: no record)."""
    try:
        with open(os.path.join(root, MANIFEST)) as f:
            recorded = json.load(f)
    except (OSError, ValueError, RecursionError):
        return None
    return recorded if isinstance(recorded, dict) else None  # a node's file: anything else is no record


def compare(source: tuple[dict[str, Entry], set[str]], target: tuple[dict[str, Entry], set[str]],
            stamps: dict[str, Any] | None = None, recorded: dict[str, Any] | None = None) -> dict[str, Any]:
    """What makes ``target`` equal to ``source``: ``{"send": [...], "chmod": {path: mode}, "delete": [...],
    "rmdirs": [...], "mkdirs": [...]}``.  A file (or link) is sent when it is missing or its size or mtime (or
    link target) differ, or its nanosecond stamp differs from the one ``recorded`` at the target's last sync; only
    its mode differs: chmod.  Deletions and rmdirs come deepest first."""
    (sfiles, sdirs), (tfiles, tdirs) = source, target
    send: list[str] = []
    chmod: dict[str, int] = {}
    for rel, entry in sorted(sfiles.items()):
        have = tfiles.get(rel)
        stale = stamps is not None and recorded is not None and recorded.get(rel) != stamps.get(rel)
        if have is None or tuple(have[:2]) != tuple(entry[:2]) or tuple(have[3:]) != tuple(entry[3:]) or stale:
            send.append(rel)  # a link whose target changed, or a file that became a link, is sent again
        elif have[2] != entry[2]:
            chmod[rel] = entry[2]
    delete = sorted((r for r in tfiles if r not in sfiles), reverse=True)
    # a directory in the target where the source has a file (or vice versa) goes first
    rmdirs = sorted((d for d in tdirs if d not in sdirs), key=lambda d: (-d.count("/"), d))
    mkdirs = sorted(d for d in sdirs if d not in tdirs)
    return {"send": send, "chmod": chmod, "delete": delete, "rmdirs": rmdirs, "mkdirs": mkdirs}


# -- on a node ----------------------------------------------------------------------------------------------------
def _list(dst: str, patterns: list[str] | None) -> None:
    files, dirs = scan(dst, patterns)
    print(json.dumps({"files": files, "dirs": sorted(dirs), "manifest": read_manifest(dst)}))


def _apply(dst: str) -> None:
    """Read a JSON line (the changes) and then a tar stream of the files to send from stdin; apply both."""
    import shutil
    import tarfile

    stdin = sys.stdin.buffer
    changes = json.loads(stdin.readline())
    for rel in changes["delete"]:
        try:
            os.unlink(os.path.join(dst, rel))
        except FileNotFoundError:
            pass
    for rel in changes["rmdirs"]:
        shutil.rmtree(os.path.join(dst, rel), ignore_errors=True)
    os.makedirs(dst, exist_ok=True)
    for rel in changes["mkdirs"]:
        os.makedirs(os.path.join(dst, rel), exist_ok=True)
    with tarfile.open(fileobj=stdin, mode="r|") as tar:
        for member in tar:
            path = os.path.join(dst, member.name)
            if member.name.startswith("/") or ".." in member.name.split("/"):
                continue
            tmp = path + ".ccdsl-tmp"
            if member.issym() and link_ok(member.name, member.linkname):
                os.makedirs(os.path.dirname(path), exist_ok=True)
                if os.path.lexists(tmp):
                    os.unlink(tmp)
                os.symlink(member.linkname, tmp)
                os.replace(tmp, path)
                continue
            if not member.isfile():
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            src = tar.extractfile(member)
            if src is None:  # only regular files are extracted (checked above); extractfile gives None otherwise
                continue
            with open(tmp, "wb") as f:
                shutil.copyfileobj(src, f, 1 << 20)
            os.chmod(tmp, member.mode)
            os.utime(tmp, (member.mtime, member.mtime))
            os.replace(tmp, path)
    for rel, mode in changes["chmod"].items():
        os.chmod(os.path.join(dst, rel), mode)
    if changes.get("manifest") is not None:
        write_manifest(dst, changes["manifest"])


def write_manifest(root: str, stamps: dict[str, Any]) -> None:
    """Record ``stamps`` in ``root`` (last, so an interrupted sync leaves the old record: all is re-checked)."""
    tmp = os.path.join(root, MANIFEST + ".tmp")
    with open(tmp, "w") as f:
        json.dump(stamps, f)
    os.replace(tmp, os.path.join(root, MANIFEST))


def _on_node(python: str, action: str, dst: str, *args: str) -> tuple[list[str], bytes]:
    """The argv that runs this file's ``action`` on a node that does not have this file: the source travels
    first on stdin (its length is in the command), the action's own input follows."""
    with open(os.path.abspath(__file__), "rb") as f:
        source = f.read()
    argv = ["_tree", action, dst, *args]
    code = f"import sys;s=sys.stdin.buffer.read({len(source)});sys.argv={argv!r};exec(compile(s,'_tree.py','exec'))"
    return [python, "-c", code], source


def add(tar: tarfile.TarFile, root: str, rel: str, entry: Entry) -> None:
    """Put the tree entry ``rel`` of ``root`` into ``tar``: a link as a link, a file's first ``size`` bytes."""
    import tarfile

    info = tarfile.TarInfo(rel)
    if is_link(entry):
        info.type, info.linkname = tarfile.SYMTYPE, entry[3]
        tar.addfile(info)
        return
    info.size, info.mtime, info.mode = entry
    with open_regular(os.path.join(root, rel)) as f:
        tar.addfile(info, f)  # reads exactly info.size bytes (an error if the file shrank meanwhile)


def _relay(src: str, dst: str, ssh: str, targets: list[str]) -> None:
    """On the manager: make ``dst`` on every worker (``host=python`` in ``targets``) equal to ``src`` here,
    all workers at once.  Prints one JSON line per worker: sent files and bytes, deleted, or the error."""
    import shlex
    import subprocess
    import tarfile
    import threading

    patterns = ignore_patterns(src)
    try:
        source = scan(src, patterns, source=True)
    except OutsideLinks as exc:
        for target in targets:
            print(json.dumps({"host": target.partition("=")[0], "error": f"links leading out of the folder: {exc}"}))
        return
    stamps = read_manifest(src)
    lock = threading.Lock()

    def one(target: str) -> None:
        host, _, python = target.partition("=")
        argv, code = _on_node(python, "serve", dst, json.dumps(patterns))
        try:  # one SSH session per worker: its listing comes back, then the changes and files go out
            proc = subprocess.Popen([ssh, host, shlex.join(argv)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE)
            assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None  # PIPEs
            try:
                proc.stdin.write(code)
                proc.stdin.flush()
                line = proc.stdout.readline()
                if not line:
                    raise RuntimeError("no listing came back")
                listed = json.loads(line)
                theirs = ({k: tuple(v) for k, v in listed["files"].items()}, set(listed["dirs"]))
                changes = compare(source, theirs, stamps, listed["manifest"])
                changes["manifest"] = stamps
                proc.stdin.write(json.dumps(changes).encode() + b"\n")
                with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
                    for rel in changes["send"]:
                        add(tar, src, rel, source[0][rel])
                proc.stdin.close()
                err = proc.stderr.read()
            finally:
                code_ = proc.wait()
            if code_ != 0:
                raise RuntimeError(f"exit {code_}: {err.decode(errors='replace')[-500:]}")
            report = {"host": host, "files": len(changes["send"]), "fresh": not theirs[0],
                      "bytes": sum(source[0][r][0] for r in changes["send"]), "deleted": len(changes["delete"])}
        except Exception as exc:  # reported per worker
            report = {"host": host, "error": str(exc)}
        with lock:
            print(json.dumps(report), flush=True)

    threads = [threading.Thread(target=one, args=(t,)) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(argv: list[str]) -> int:
    action = argv[0]
    if action == "list":
        _list(argv[1], json.loads(argv[2]) if len(argv) > 2 else None)
    elif action == "serve":
        _list(argv[1], json.loads(argv[2]))
        sys.stdout.flush()
        _apply(argv[1])
    elif action == "relay":
        _relay(argv[1], argv[2], argv[3], argv[4:])
    else:
        raise SystemExit(f"unknown action {action!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
