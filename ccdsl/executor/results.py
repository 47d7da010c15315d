"""Rank 0's return value, rebuilt on this machine from the record it sent -- without letting a node run code here.

Whoever controls rank 0's node (or can write to its ccdsl directory, and so replace the rank bootstrap) chooses the
bytes of the result record.  A pickle is a program, and even a restricted unpickler hands out constructors and
classes (pyarrow's ``_restore_array`` trusts the lengths it is given; pickle's BUILD calls ``setattr`` on any class
it may name).  So by default rank 0 sends no pickle but a tagged data format (``_rank.plain``), and this machine
rebuilds only: ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``list``, ``tuple``,
``dict``, ``set``, ``frozenset``, and numpy arrays and scalars of bool or numeric dtype -- an array only when its
shape times its item size is exactly the bytes it came with.  No other constructor is called; there is nothing to
let through.  Dates, ``Decimal``, ``Fraction``, ``collections``, pandas, pyarrow, functions and the user's own
classes come back only when the user says the nodes are trusted: ``cluster.run(fn, ..., trust_nodes=True)`` or
``[security] trust_nodes = true`` in ccdsl.toml; then rank 0 sends a cloudpickle, loaded as is.  (The other
direction -- ccdsl shipping the user's function to the nodes -- is code execution on the nodes by design: they are
the user's machines.)

The record is one format byte and its body (see ``_rank``): ``D`` plain data, ``U`` rank 0's note that the value
is not plain data, ``P`` a pickle (refused unless trusted, whatever rank 0 was asked for).
"""

from __future__ import annotations

import re
import struct
import sys
from array import array
from typing import Any

from ccdsl.errors import ExecutionError, printable
from ccdsl.executor._rank import PLAIN_MAGIC

PLAIN_TYPES = ("None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset, and numpy arrays "
               "and scalars of bool or numeric dtype")
_TRUST_HINT = ("return plain data from the function (" + PLAIN_TYPES + "), or, if you trust the nodes and "
               "everyone who can write to them: run(fn, ..., trust_nodes=True), or [security] trust_nodes = true "
               "in ccdsl.toml")
MAX_DEPTH = 1000  # containers nested deeper would make repr, == and pickle of the result raise RecursionError here
_DTYPE = re.compile(r"[<>|=]?[biufc]\d{1,2}")  # bool, signed, unsigned, float, complex; nothing else


class UntrustedResultError(ExecutionError):
    """Rank 0's result is not plain data, and the nodes are not trusted."""


class _Damaged(Exception):
    pass


def loads(record: bytes, *, trust_nodes: bool) -> Any:
    """The value in a result record; anything but plain data only when ``trust_nodes``."""
    fmt, body = record[:1], record[1:]
    if fmt == b"D":
        try:
            return from_plain(body)
        except (_Damaged, ValueError, TypeError, OverflowError, MemoryError, IndexError, struct.error) as exc:
            raise ExecutionError(f"rank 0's result record cannot be read: {printable(str(exc))[:300]}") from None
    if fmt == b"U":
        note = printable(body.decode("utf-8", "replace"))[:300]
        raise UntrustedResultError(f"{note}; ccdsl rebuilds only plain data from nodes", hint=_TRUST_HINT)
    if fmt == b"P":
        if not trust_nodes:  # whatever rank 0 was asked for, a pickle is code
            raise UntrustedResultError("rank 0 sent its result as a pickle, which could run code on this machine "
                                       "when loaded; the nodes are not trusted", hint=_TRUST_HINT)
        import cloudpickle

        try:
            return cloudpickle.loads(body)
        except Exception as exc:  # any of pickle's many error types
            raise ExecutionError(f"rank 0's result record cannot be read: {type(exc).__name__}: {exc}") from None
    raise ExecutionError("rank 0's result record cannot be read: unknown format")


_Q, _I, _q, _d, _dd, _B = (struct.Struct(f) for f in ("<Q", "<I", "<q", "<d", "<dd", "<B"))
_CONTAINERS = frozenset(b"ltSZd")
_N, _T, _F, _INT64, _INT, _FLOAT, _COMPLEX, _STR, _BYTES, _DICT, _INTS, _FLOATS, _ARRAY, _SCALAR = b"NTFqifcsbdIRag"


def from_plain(data: bytes) -> Any:
    """Rebuild a value written by ``_rank.plain``.  Iterative (no recursion: a deep record cannot crash this
    process; deeper than ``MAX_DEPTH`` is refused), every length checked against the bytes left before anything is
    allocated."""
    if not data.startswith(PLAIN_MAGIC):
        raise _Damaged("not ccdsl's data format")
    pos = len(PLAIN_MAGIC)
    end = len(data)
    # a stack of open containers: [tag, items still to read, items read]; a value completes the top one
    stack: list[list[Any]] = []
    while True:
        tag = data[pos]
        pos += 1
        value: Any
        if tag in _CONTAINERS:
            n, pos = _sized(data, pos)
            n *= 2 if tag == _DICT else 1
            if n > end - pos:  # each item takes a byte at least
                raise _Damaged(f"a container of {n} items in {end - pos} bytes")
            if n:
                if len(stack) >= MAX_DEPTH:
                    raise _Damaged(f"containers are nested deeper than {MAX_DEPTH} levels")
                stack.append([tag, n, []])
                continue
            value = _container(tag, [])
        else:
            value, pos = _leaf(tag, data, pos)
        while True:  # hand the value to the open container; close every container it completes
            if not stack:
                if pos != end:
                    raise _Damaged(f"{end - pos} bytes left over")
                return value
            top = stack[-1]
            top[2].append(value)
            top[1] -= 1
            if top[1]:
                break
            stack.pop()
            value = _container(top[0], top[2])


def _sized(data: bytes, pos: int) -> tuple[int, int]:
    """A length and the position after it; the length must fit in what is left."""
    (n,) = _Q.unpack_from(data, pos)
    if n > len(data) - pos - 8:
        raise _Damaged(f"a length of {n} runs past the record's end")
    return n, pos + 8


def _leaf(tag: int, data: bytes, pos: int) -> tuple[Any, int]:
    """The value of tag ``tag`` (not a container) whose bytes start at ``pos``, and the position after it."""
    end = len(data)
    value: Any
    if tag == _INT64:
        (value,) = _q.unpack_from(data, pos)
        pos += 8
    elif tag == _FLOAT:
        (value,) = _d.unpack_from(data, pos)
        pos += 8
    elif tag == _STR:
        n, pos = _sized(data, pos)
        value = data[pos:pos + n].decode("utf-8", "surrogatepass")
        pos += n
    elif tag == _N:
        value = None
    elif tag in (_T, _F):
        value = tag == _T
    elif tag in (_INTS, _FLOATS):
        kind = data[pos:pos + 1]
        pos += 1
        (n,) = _Q.unpack_from(data, pos)
        pos += 8
        if n > (end - pos) // 8:
            raise _Damaged(f"{n} numbers run past the record's end")
        block = array("q" if tag == _INTS else "d")
        block.frombytes(data[pos:pos + 8 * n])
        pos += 8 * n
        if sys.byteorder != "little":
            block.byteswap()
        if kind not in (b"l", b"t"):
            raise _Damaged(f"unknown sequence kind {kind!r}")
        value = block.tolist() if kind == b"l" else tuple(block)
    elif tag == _BYTES:
        n, pos = _sized(data, pos)
        value = data[pos:pos + n]
        pos += n
    elif tag == _INT:
        (n,) = _I.unpack_from(data, pos)
        pos += 4
        if n > end - pos:
            raise _Damaged(f"an int of {n} bytes runs past the record's end")
        value = int.from_bytes(data[pos:pos + n], "little", signed=True)
        pos += n
    elif tag == _COMPLEX:
        value = complex(*_dd.unpack_from(data, pos))
        pos += 16
    elif tag in (_ARRAY, _SCALAR):
        value, pos = _numpy(tag, data, pos)
    else:
        raise _Damaged(f"unknown tag {bytes([tag])!r}")
    return value, pos


def _container(tag: int, items: list[Any]) -> Any:
    if tag == b"l"[0]:
        return items
    if tag == b"t"[0]:
        return tuple(items)
    if tag == b"S"[0]:
        return set(items)
    if tag == b"Z"[0]:
        return frozenset(items)
    return dict(zip(items[::2], items[1::2]))


def _numpy(tag: int, data: bytes, pos: int) -> tuple[Any, int]:
    """A numpy array (``a``) or scalar (``g``) of bool or numeric dtype, and the position after it; an array only
    if its shape times its item size is exactly the length of its buffer."""
    (n,) = _B.unpack_from(data, pos)
    name = data[pos + 1:pos + 1 + n].decode("ascii")
    pos += 1 + n
    if not _DTYPE.fullmatch(name):
        raise _Damaged(f"the dtype {name!r} is not bool or numeric")
    try:
        import numpy as np
    except ImportError:
        raise _Damaged("the result holds a numpy array, and numpy is not installed here") from None
    dtype = np.dtype(name)
    if dtype.kind not in "biufc":
        raise _Damaged(f"the dtype {name!r} is not bool or numeric")
    shape: tuple[int, ...] = ()
    if tag == _ARRAY:
        (ndim,) = _B.unpack_from(data, pos)
        if ndim > 64:
            raise _Damaged(f"an array of {ndim} dimensions")
        shape = struct.unpack_from(f"<{ndim}Q", data, pos + 1)
        pos += 1 + 8 * ndim
    (length,) = _Q.unpack_from(data, pos)
    pos += 8
    if length > len(data) - pos:
        raise _Damaged(f"a buffer of {length} bytes runs past the record's end")
    raw = data[pos:pos + length]
    pos += length
    if tag == _SCALAR:
        if length != dtype.itemsize:
            raise _Damaged(f"a {name} scalar of {length} bytes")
        return np.frombuffer(raw, dtype)[0], pos
    size = 1
    for d in shape:
        size *= d
    if size * dtype.itemsize != length:
        raise _Damaged(f"an array of shape {shape} and dtype {name} needs {size * dtype.itemsize} bytes, "
                       f"not {length}")
    if size == 0:
        return np.zeros(shape, dtype), pos
    return np.frombuffer(bytearray(raw), dtype).reshape(shape), pos
