"""What every MPI rank runs: ``python [FLAGS] _rank.py fn|script|module PAYLOAD [ARGS...]``.

This file is copied to the nodes as is (``mpi.prepare_cluster``) and must not import ccdsl: nodes only need
python, mpi4py and cloudpickle.  Rank 0 reads the payload file (only rank 0's node has it) and broadcasts it, so
ccdsl uploads one file per run instead of one per node.

Results travel back on the output streams, framed by a record separator the user's program will not print:
``\\x1eccdsl-result.<nonce>:<base64 record>`` alone on a line of stdout (rank 0, after every rank finished; the
nonce is fresh for each run and known only from the payload, so text the program prints cannot pass for it) and
``\\x1eccdsl-error:<base64 json>`` on stderr (the rank that raised, before it aborts the job so the others do not
wait forever in a collective).  The error record is also left in ``<payload>.error.<rank>`` on the rank's node,
because MPI_Abort may end the job before the process manager forwarded the rank's last output.

A result record is one format byte and its body: ``D`` + :func:`plain` (data only, the default: rebuilding it
calls no constructor on this machine), ``U`` + a message (the value is not plain data and the nodes are not
trusted), or ``P`` + a cloudpickle (only when the run trusts the nodes).
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import struct
import sys
import traceback
from collections.abc import Callable
from typing import IO, Any, NoReturn

MARK = "\x1eccdsl-"


def _emit(stream: IO[str], kind: str, data: bytes) -> None:
    stream.flush()
    stream.write(MARK + kind + ":" + base64.b64encode(data).decode("ascii") + "\n")
    stream.flush()


PLAIN_MAGIC = b"CCD1"
_Q, _I, _q, _d, _dd, _B = (struct.Struct(f) for f in ("<Q", "<I", "<q", "<d", "<dd", "<B"))
_SEQ_TAGS: dict[type, bytes] = {list: b"l", tuple: b"t", set: b"S", frozenset: b"Z"}
_RUN_TAGS: dict[tuple[type, type], bytes] = {(list, int): b"Il", (tuple, int): b"It", (list, float): b"Rl",
                                             (tuple, float): b"Rt"}


class NotPlain(TypeError):
    """A value outside the plain-data types (see :func:`plain`)."""


def plain(value: Any) -> bytes:
    """``value`` in ccdsl's tagged data format: None, bool, int, float, complex, str, bytes, list, tuple, dict,
    set, frozenset, and numpy arrays and scalars of bool or numeric dtype (exact types: a subclass, such as a
    namedtuple, is not plain).  Anything else raises :class:`NotPlain` naming its type and where it is.

    Tags: ``N T F`` None and the bools, ``q`` an int64, ``i`` a larger int, ``f c`` float and complex, ``s b`` str
    and bytes (length first), ``l t S Z d`` containers (item count first; a dict's keys and values alternate),
    ``Il It Rl Rt`` a list or tuple of only int64s or only floats in one block, ``a g`` numpy array and scalar."""
    out = [PLAIN_MAGIC]
    add = out.append
    todo = [value]  # a stack, not recursion: depth is no limit here, only the record's size
    pop, push, extend = todo.pop, todo.append, todo.extend
    while todo:
        v = pop()
        t = type(v)
        if t is int:
            if -(1 << 63) <= v < (1 << 63):
                add(b"q" + _q.pack(v))
            else:
                raw = v.to_bytes((v + (v < 0)).bit_length() // 8 + 1, "little", signed=True)
                add(b"i" + _I.pack(len(raw)) + raw)
        elif t is float:
            add(b"f" + _d.pack(v))
        elif t is str:
            raw = v.encode("utf-8", "surrogatepass")
            add(b"s" + _Q.pack(len(raw)))
            add(raw)
        elif v is None:
            add(b"N")
        elif t is bool:
            add(b"T" if v else b"F")
        elif t in _SEQ_TAGS:
            if len(v) > 8 and (t is list or t is tuple) and _run(v, t, add):
                continue
            add(_SEQ_TAGS[t] + _Q.pack(len(v)))
            extend(reversed(v) if t is list or t is tuple else list(v))
        elif t is dict:
            add(b"d" + _Q.pack(len(v)))
            for k, x in reversed(list(v.items())):
                push(x)
                push(k)
        elif t is bytes:
            add(b"b" + _Q.pack(len(v)))
            add(v)
        elif t is complex:
            add(b"c" + _dd.pack(v.real, v.imag))
        elif _numeric(v):
            import numpy as np

            dt = v.dtype.str.encode("ascii")
            if isinstance(v, np.ndarray):
                raw = np.ascontiguousarray(v).tobytes()
                add(b"a" + _B.pack(len(dt)) + dt + _B.pack(v.ndim) + struct.pack(f"<{v.ndim}Q", *v.shape)
                    + _Q.pack(len(raw)))
                add(raw)
            else:
                raw = v.tobytes()
                add(b"g" + _B.pack(len(dt)) + dt + _Q.pack(len(raw)) + raw)
        else:
            name = f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
            where = _where(value, v)
            raise NotPlain(f"rank 0's result holds a {name}{' at ' + where if where else ''}, which is not plain data")
    return b"".join(out)


def _run(v: Any, t: type, add: Callable[[bytes], None]) -> bool:
    """A list or tuple of only int64s or only floats, in one block (far faster than one tag per item)."""
    from array import array

    kinds = set(map(type, v))
    if len(kinds) != 1:
        return False
    kind = kinds.pop()
    tag = _RUN_TAGS.get((t, kind))
    if tag is None:
        return False
    try:
        block = array("q" if kind is int else "d", v)
    except OverflowError:  # an int beyond 64 bits: one tag per item
        return False
    if sys.byteorder != "little":
        block.byteswap()
    add(tag + _Q.pack(len(v)))
    add(block.tobytes())
    return True


def _where(value: Any, bad: Any) -> str:
    """Where ``bad`` sits in ``value`` (``[2]['x']``), found again only when a value is refused."""
    todo = [(value, "")]
    while todo:
        v, path = todo.pop()
        if v is bad:
            return path[:200]
        if type(v) in (list, tuple):
            todo.extend((x, f"{path}[{i}]") for i, x in enumerate(v))
        elif type(v) in (set, frozenset):
            todo.extend((x, f"{path} (an element)") for x in v)
        elif type(v) is dict:
            for k, x in v.items():
                todo.append((k, f"{path} (a key)"))
                todo.append((x, f"{path}[{k!r:.60}]"))
    return ""


def _numeric(v: Any) -> bool:
    """A numpy array or scalar (exact types) of bool or numeric dtype?"""
    np = sys.modules.get("numpy")
    if np is None:
        return False
    if type(v) is not np.ndarray and not (isinstance(v, np.generic) and type(v).__module__ == "numpy"):
        return False
    return v.dtype.kind in "biufc" and v.dtype.fields is None


def _result_record(value: Any, trust: bool) -> bytes:
    """Rank 0's result record (see the module's docstring)."""
    if trust:
        import cloudpickle

        pickled: bytes = cloudpickle.dumps(value)
        return b"P" + pickled
    try:
        return b"D" + plain(value)
    except NotPlain as exc:
        return b"U" + str(exc).encode()


ERROR_TEXT = 20000  # characters of an error's message (its start) and traceback (its end) in the error record


def _fail(comm: Any, exc: BaseException, payload_path: str, code: int = 1) -> NoReturn:
    # bounded, so the record stays one line to the launcher: it passes longer lines on in 1 MiB pieces (at most
    # 12 bytes per character in the JSON, 4/3 of that in base64: well below)
    message, trace = str(exc), "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if len(message) > ERROR_TEXT:
        message = message[:ERROR_TEXT] + f"... ({len(message) - ERROR_TEXT} more characters)"
    if len(trace) > ERROR_TEXT:
        trace = f"({len(trace) - ERROR_TEXT} characters before) ..." + trace[-ERROR_TEXT:]
    info = {"rank": comm.Get_rank(), "type": type(exc).__name__[:200], "message": message, "traceback": trace}
    record = MARK + "error:" + base64.b64encode(json.dumps(info).encode()).decode("ascii") + "\n"
    # also in a file next to the payload: MPI_Abort may kill the process manager before it forwards stderr
    path = f"{payload_path}.error.{comm.Get_rank()}"
    try:
        with open(path + ".tmp", "w") as f:
            f.write(record)
        os.replace(path + ".tmp", path)
    except OSError:
        pass
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stderr.write(record)
        sys.stderr.flush()
    except (OSError, ValueError):  # output closed: the file above carries the record
        pass
    if comm.Get_size() > 1:
        comm.Abort(code)
    sys.exit(code)


def main(argv: list[str]) -> int:
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    workdir = os.environ.get("CCDSL_WORKDIR")
    if workdir:  # the project's folder synced to the node: the ranks' working directory, importable
        os.chdir(workdir)
        sys.path.insert(0, workdir)
    for stream in (sys.stdout, sys.stderr):  # one write per line, so lines of different ranks do not mix
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True, write_through=False)  # (python -u: lines still come at once)
    mode, payload_path, args = argv[0], argv[1], argv[2:]
    data = None
    if comm.Get_rank() == 0:
        with open(payload_path, "rb") as f:
            data = f.read()
        try:
            os.unlink(payload_path)  # read once; nothing is left behind on the node
        except OSError:
            pass
    data = comm.bcast(data, root=0)
    if mode == "fn":
        try:
            import cloudpickle

            fn, fargs, fkwargs, run = cloudpickle.loads(data)
            value = fn(comm, *fargs, **fkwargs)
        except BaseException as exc:  # every failure is reported, with its traceback
            _fail(comm, exc, payload_path)
        sys.stdout.flush()
        sys.stderr.flush()
        comm.Barrier()
        if comm.Get_rank() == 0:
            try:
                blob = _result_record(value, run["trust"])
            except BaseException as exc:
                _fail(comm, TypeError(f"rank 0's return value cannot be pickled: {exc}"), payload_path)
            _emit(sys.stdout, "result." + run["nonce"], blob)
        return 0
    if mode == "module":  # python -m NAME: as CPython does it, with the working directory first on sys.path
        import runpy

        name = pickle.loads(data)
        sys.argv = [name, *args]
        sys.path.insert(0, os.getcwd())
        return _as_main(comm, payload_path, lambda: runpy.run_module(name, run_name="__main__", alter_sys=True))
    path, source = pickle.loads(data)  # a script, or python -c CODE (path "-c")
    sys.argv = [path, *args]
    module = {"__name__": "__main__", "__builtins__": __builtins__}
    if path != "-c":
        module["__file__"] = path
    sys.path.insert(0, os.getcwd() if path == "-c" else os.path.dirname(os.path.abspath(path)))
    filename = "<string>" if path == "-c" else path
    return _as_main(comm, payload_path, lambda: exec(compile(source, filename, "exec"), module))


def _as_main(comm: Any, payload_path: str, run: Callable[[], object]) -> int:
    """Run a program as ``__main__``: its exit status, or its exception reported (and the job aborted)."""
    try:
        run()
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    except BaseException as exc:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # the user's frames, not ours
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        _fail(comm, exc, payload_path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
