"""Rank 0's return value, rebuilt on this machine from the record it sent -- without letting a node run code here.

A pickle is a program: loading one may call any function it names.  Whoever controls rank 0's node (or can write to
its ccdsl directory, and so replace the rank bootstrap) chooses the bytes of the result record.  So by default a
result is loaded by :class:`DataUnpickler`, which rebuilds plain data only: ``None``, booleans, numbers, strings,
bytes, lists, tuples, dicts, sets, the stdlib's date/time, decimal, fraction and collections types, numpy arrays and
scalars, and pandas objects.  Any other class or function a record names is refused before it is touched.

Arbitrary objects (a function, an instance of the user's own class) come back only when the user says the nodes
are trusted: ``cluster.run(fn, ..., trust_nodes=True)`` or ``[security] trust_nodes = true`` in ccdsl.toml; then
the record is loaded with cloudpickle.  (The other direction -- ccdsl shipping the user's function to the nodes --
is code execution on the nodes by design: they are the user's machines.)
"""

from __future__ import annotations

import importlib
import io
import pickle
import sys
from typing import Any

from ccdsl.errors import ExecutionError

# (module, name) pairs rebuilt as is: builtins and stdlib value types whose construction runs no user code.
_PLAIN = frozenset({
    *(("builtins", n) for n in ("bool", "int", "float", "complex", "str", "bytes", "bytearray", "list", "tuple",
                                "dict", "set", "frozenset", "range", "slice", "Ellipsis", "NotImplemented")),
    *(("datetime", n) for n in ("date", "time", "datetime", "timedelta", "timezone")),
    ("decimal", "Decimal"), ("fractions", "Fraction"),
    *(("collections", n) for n in ("OrderedDict", "defaultdict", "deque", "Counter")),
})

# Objects of the array libraries (looked up by attribute path, so a renamed module in another version still finds
# the same object): their classes and the helpers their pickles call to rebuild data.
_LIBRARY_OBJECTS = {
    "numpy": ("ndarray", "dtype", "_core.multiarray._reconstruct", "_core.multiarray.scalar",
              "_core.numeric._frombuffer", "core.multiarray._reconstruct", "core.multiarray.scalar",
              "core.numeric._frombuffer", "ma.core.MaskedArray", "ma.core._mareconstruct"),
    "pandas": ("DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "CategoricalIndex", "DatetimeIndex",
               "TimedeltaIndex", "PeriodIndex", "IntervalIndex", "Categorical", "Timestamp", "Timedelta", "Period",
               "Interval", "NA", "NaT", "CategoricalDtype", "DatetimeTZDtype", "PeriodDtype", "IntervalDtype",
               "SparseDtype", "StringDtype", "BooleanDtype", "ArrowDtype", "Float32Dtype", "Float64Dtype",
               "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype",
               "UInt64Dtype", "arrays.ArrowStringArray", "arrays.BooleanArray", "arrays.DatetimeArray",
               "arrays.FloatingArray", "arrays.IntegerArray", "arrays.PeriodArray", "arrays.TimedeltaArray",
               "arrays.IntervalArray", "arrays.StringArray", "arrays.NumpyExtensionArray", "arrays.SparseArray",
               "arrays.ArrowExtensionArray",
               "_libs.arrays.__pyx_unpickle_NDArrayBacked", "_libs.internals._unpickle_block",
               "_libs.tslibs.nattype._nat_unpickle", "_libs.tslibs.timedeltas._timedelta_unpickle",
               "_libs.tslibs.timestamps._unpickle_timestamp", "core.indexes.base._new_Index",
               "core.indexes.datetimes._new_DatetimeIndex", "core.indexes.interval._new_IntervalIndex",
               "core.indexes.timedeltas._new_TimedeltaIndex", "core.indexes.period._new_PeriodIndex",
               "core.internals.managers.BlockManager", "core.internals.managers.SingleBlockManager",
               "core.internals.blocks.new_block", "core.arrays.sparse.array._make_sparse"),
    "pyarrow": ("lib._restore_array", "lib.py_buffer", "lib.type_for_alias", "lib.chunked_array",
                "lib.ChunkedArray"),
}


class UntrustedResultError(ExecutionError):
    """Rank 0's result names something that could run code here, and the nodes are not trusted."""


def _resolve(root: str, path: str) -> Any:
    obj: Any = importlib.import_module(root)
    for i, part in enumerate(path.split(".")):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            try:  # a submodule not imported by its package
                obj = importlib.import_module(".".join([root, *path.split(".")[:i + 1]]))
            except ImportError:
                return None
    return obj


_allowed_ids: dict[str, set[int]] = {}


def _library_allows(root: str, obj: Any) -> bool:
    if root not in _allowed_ids:
        paths = _LIBRARY_OBJECTS[root]
        if root == "numpy" and hasattr(sys.modules.get("numpy"), "_core"):  # numpy 2: numpy.core is a deprecated
            paths = tuple(p for p in paths if not p.startswith("core."))  # alias of numpy._core (same objects)
        found = (_resolve(root, path) for path in paths)
        _allowed_ids[root] = {id(o) for o in found if o is not None}
        if root == "pandas":  # date offsets (freq of a DatetimeIndex): Day, MonthEnd, ...
            offsets = _resolve("pandas", "_libs.tslibs.offsets")
            base = getattr(offsets, "BaseOffset", None)
            _allowed_ids[root] |= {id(c) for c in vars(offsets).values()
                                   if isinstance(c, type) and base is not None and issubclass(c, base)}
    return id(obj) in _allowed_ids[root]


class DataUnpickler(pickle.Unpickler):
    """Loads plain data only; every class or function a pickle names must be on the allow-list above."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PLAIN:
            return super().find_class(module, name)
        root = module.split(".")[0]
        if root in _LIBRARY_OBJECTS and (root in sys.modules or _importable(root)):
            try:
                obj = super().find_class(module, name)  # imports a module of that library, never another one
            except (ImportError, AttributeError):
                obj = None
            if obj is not None and _library_allows(root, obj):
                return obj
        raise UntrustedResultError(
            f"rank 0's result names {module}.{name}, which could run code on this machine when rebuilt; ccdsl "
            "rebuilds only plain data from nodes (numbers, strings, bytes, containers, dates, numpy arrays, pandas "
            "objects)",
            hint="return plain data from the function, or, if you trust the nodes and everyone who can write to "
                 "them: run(fn, ..., trust_nodes=True), or [security] trust_nodes = true in ccdsl.toml")


def _importable(root: str) -> bool:
    try:
        importlib.import_module(root)
        return True
    except ImportError:
        return False


def loads(data: bytes, *, trust_nodes: bool) -> Any:
    """The value in a result record; arbitrary objects only when ``trust_nodes``."""
    if trust_nodes:
        import cloudpickle

        return cloudpickle.loads(data)
    try:
        return DataUnpickler(io.BytesIO(data)).load()
    except UntrustedResultError:
        raise
    except Exception as exc:  # a damaged record: any of pickle's many error types
        raise ExecutionError(f"rank 0's result record cannot be read: {type(exc).__name__}: {exc}") from None
