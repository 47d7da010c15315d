"""Rank 0's result comes back as plain data: a node cannot run code on this machine through it (issue 8, item 1;
issue 22, items 2 and 9).

The runs are real (local mpiexec, mpi4py, the rank bootstrap); a rank that returns an object whose pickle calls a
function stands for a node whose owner rewrote the bootstrap to send any record it likes.  Records a hostile rank 0
could write by hand are given to :func:`loads` directly.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import os
import pickle
import struct
import sys
from collections import Counter, OrderedDict, defaultdict, deque

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ccdsl
from ccdsl.errors import ExecutionError
from ccdsl.executor import _rank
from ccdsl.executor.model import Node
from ccdsl.executor.mpi import Launcher
from ccdsl.executor.results import PLAIN_TYPES, UntrustedResultError, loads
from fixtures_executor import data_dir

pytest.importorskip("mpi4py")


def local(n: int = 2) -> Launcher:
    return Launcher([Node(i, "worker", f"local-{i}", "local") for i in range(n)], mode="local")


def touching(marker: str):
    """What a hostile rank 0 sends: a record that, when loaded, runs ``touch marker`` on the user's machine."""
    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    def fn(comm):
        return {"answer": 42, "extra": Payload()} if comm.rank == 0 else None

    return fn


def test_a_result_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "ran"
    with local() as launcher, pytest.raises(UntrustedResultError) as info:
        launcher.run_function(touching(str(marker)), stream=None)
    assert not marker.exists()
    assert "Payload at ['extra']" in info.value.message and "not plain data" in info.value.message
    assert "trust_nodes=True" in info.value.hint


def test_with_trust_nodes_arbitrary_objects_come_back(tmp_path):
    with local() as launcher:
        with pytest.raises(UntrustedResultError) as info:
            launcher.run_function(lambda comm: (lambda x: x + comm.size), stream=None)
        assert "trust_nodes" in info.value.hint
        fn = launcher.run_function(lambda comm: (lambda x, n=comm.size: x + n), stream=None, trust_nodes=True)
    assert fn(1) == 3


def test_cluster_run_takes_trust_nodes_from_the_call_or_the_config(data_dir):
    from ccdsl.executor.config import Config

    def make_fn(comm):
        return lambda: "from rank 0"
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1))
    try:
        with pytest.raises(UntrustedResultError):
            c.run(make_fn)
        assert c.run(make_fn, trust_nodes=True)() == "from rank 0"
    finally:
        ccdsl.terminate(c)
    trusting = Config.from_dict({"security": {"trust_nodes": True}})
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1), config=trusting)
    try:
        assert c.run(make_fn)() == "from rank 0"
        with pytest.raises(UntrustedResultError):
            c.run(make_fn, trust_nodes=False)
    finally:
        ccdsl.terminate(c)


PLAIN = {
    "none": None, "bools": [True, False], "int": 10**40, "negative": -(10**40), "float": 1.5, "inf": float("inf"),
    "complex": 1 + 2j, "str": "héllo\x1e\n", "bytes": b"\x00\xff", "tuple": (1, (2, 3)), "set": {1, 2},
    "frozenset": frozenset("ab"), "empty": ([], (), {}, set(), "", b""), (1, "key"): {"nested": [[[]]]},
    "int run": list(range(-10, 10)), "float run": tuple(i / 3 for i in range(20)), "bool run": [True] * 20,
    "big int in a run": [1] * 10 + [2**70], "int64 edges": [-(2**63), 2**63 - 1, 2**63, -(2**63) - 1],
}

NOT_PLAIN = {  # each comes back only with trust_nodes
    "bytearray": bytearray(b"ab"), "range": range(3), "date": datetime.date(2026, 11, 26),
    "timedelta": datetime.timedelta(seconds=5), "decimal": decimal.Decimal("1.10"),
    "fraction": fractions.Fraction(1, 3), "OrderedDict": OrderedDict(a=1), "defaultdict": defaultdict(list),
    "deque": deque([1]), "Counter": Counter("aab"), "namedtuple": collections.namedtuple("P", "x")(1),
    "strings array": np.array(["a"]), "objects array": np.array([1], dtype=object),
    "datetime64": np.datetime64("2026-01-01"), "structured": np.zeros(2, dtype=[("a", "i4")]),
    "frame": pd.DataFrame({"a": [1]}), "timestamp": pd.Timestamp("2026-11-26"),
}


def numbers(comm):
    import numpy as np

    return {"array": np.arange(6, dtype="f4").reshape(2, 3), "scalar": np.float64(2.5), "bools": np.array([True]),
            "big-endian": np.arange(3, dtype=">i8"), "complex": np.complex64(1j), "empty": np.zeros((0, 3)),
            "fortran": np.asfortranarray(np.arange(6).reshape(2, 3)), "zero-d": np.array(7, dtype="u2")}


def frames(comm):
    import pandas as pd

    return pd.DataFrame({"rank": [comm.rank], "t": pd.to_datetime(["2026-11-26"])})


def test_plain_data_and_numeric_numpy_come_back_by_default():
    with local() as launcher:
        assert launcher.run_function(lambda comm: PLAIN, stream=None) == PLAIN
        got = launcher.run_function(numbers, stream=None)
    assert got["array"].dtype == np.float32 and got["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert type(got["scalar"]) is np.float64 and got["scalar"] == 2.5 and got["bools"].tolist() == [True]
    assert got["big-endian"].dtype == np.dtype(">i8") and got["big-endian"].tolist() == [0, 1, 2]
    assert got["complex"] == np.complex64(1j) and got["empty"].shape == (0, 3) and got["zero-d"].shape == ()
    assert got["fortran"].tolist() == [[0, 1, 2], [3, 4, 5]]
    got["array"][0, 0] = 9  # a writable array of its own


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.complex_numbers(allow_nan=False)
    | st.text() | st.binary(),
    lambda inner: st.lists(inner) | st.lists(inner).map(tuple) | st.dictionaries(st.integers() | st.text(), inner)
    | st.frozensets(st.integers() | st.text()) | st.sets(st.floats(allow_nan=False)),
    max_leaves=40)


@settings(max_examples=300, deadline=None)
@given(plain_values)
def test_plain_data_round_trips_with_its_types(value):
    got = loads(b"D" + _rank.plain(value), trust_nodes=False)
    assert got == value and types_in(got) == types_in(value)  # the same types all the way down (1 is not True)


def types_in(value) -> Counter:
    """How many of each type a value holds, itself included (order-free: sets iterate in any order)."""
    seen: Counter = Counter()
    todo = [value]
    while todo:
        v = todo.pop()
        seen[type(v)] += 1
        if isinstance(v, dict):
            todo += [*v.keys(), *v.values()]
        elif isinstance(v, (list, tuple, set, frozenset)):
            todo += list(v)
    return seen


def test_everything_else_needs_trust_nodes():
    for value in NOT_PLAIN.values():
        with pytest.raises(_rank.NotPlain, match="not plain data"):
            _rank.plain(value)
        with pytest.raises(_rank.NotPlain, match=r"at \[0\]\['k'\]"):
            _rank.plain([{"k": value}])
    with local() as launcher:
        with pytest.raises(UntrustedResultError, match=r"pandas.*DataFrame") as info:
            launcher.run_function(frames, stream=None)
        assert PLAIN_TYPES in info.value.hint
        got = launcher.run_function(frames, stream=None, trust_nodes=True)
        assert got["rank"].tolist() == [0] and str(got["t"].dtype).startswith("datetime64")
        assert launcher.run_function(lambda comm: NOT_PLAIN, stream=None, trust_nodes=True).keys() == NOT_PLAIN.keys()


# -- records a hostile rank 0 could send -------------------------------------------------------------------------
def forged_arrow_array(length: int) -> bytes:
    """pyarrow's own pickle of ``pa.array(["abc", "de"])``, with its length changed: indexing it reads past the
    buffers (a crash)."""
    pa = pytest.importorskip("pyarrow")
    fn, (state,) = pa.array(["abc", "de"]).__reduce__()

    class Forged:
        def __reduce__(self):
            return fn, ((state[0], length, *state[2:]),)

    return pickle.dumps(Forged(), protocol=5)


# a class's BUILD: Fraction.__add__ = bool, then 42 (protocol 0, as pickle writes it)
SET_FRACTION_ADD = b"cfractions\nFraction\n(N(dS'__add__'\ncbuiltins\nbool\nstb0I42\n."


def plain_array(dtype: str, shape: tuple[int, ...], buffer: bytes) -> bytes:
    dt = dtype.encode()
    return (b"D" + _rank.PLAIN_MAGIC + b"a" + struct.pack("<B", len(dt)) + dt + struct.pack("<B", len(shape))
            + struct.pack(f"<{len(shape)}Q", *shape) + struct.pack("<Q", len(buffer)) + buffer)


def test_a_forged_arrow_array_is_refused():
    record = forged_arrow_array(50_000_000)
    for sent in (record, b"P" + record):  # as the old bootstrap sent it, and as a pickle in the new format
        with pytest.raises(ExecutionError):
            loads(sent, trust_nodes=False)
    with local() as launcher, pytest.raises(UntrustedResultError, match="pyarrow"):
        launcher.run_function(lambda comm: __import__("pyarrow").array(["abc"]), stream=None)


def test_a_record_cannot_rewrite_a_class():
    assert pickle.loads(SET_FRACTION_ADD) == 42 and fractions.Fraction.__add__ is bool  # what the record does
    del fractions.Fraction.__add__
    fractions.Fraction.__add__ = fractions.Fraction._add  # restored: the test's own doing, undone
    try:
        for sent in (SET_FRACTION_ADD, b"P" + SET_FRACTION_ADD):
            with pytest.raises(ExecutionError):
                loads(sent, trust_nodes=False)
        assert fractions.Fraction(1, 2) + fractions.Fraction(1, 3) == fractions.Fraction(5, 6)
    finally:
        fractions.Fraction.__add__ = fractions.Fraction._add


def test_an_array_must_match_its_buffer():
    with pytest.raises(ExecutionError, match="needs 400000000 bytes, not 24"):
        loads(plain_array("<f8", (50_000_000,), bytes(24)), trust_nodes=False)
    with pytest.raises(ExecutionError, match="needs 0 bytes, not 24"):
        loads(plain_array("<f8", (2**63, 0), bytes(24)), trust_nodes=False)
    with pytest.raises(ExecutionError, match="not bool or numeric"):
        loads(plain_array("|O8", (1,), bytes(8)), trust_nodes=False)  # object pointers
    with pytest.raises(ExecutionError, match="not bool or numeric"):
        loads(plain_array("<M8[s]", (1,), bytes(8)), trust_nodes=False)
    assert loads(plain_array("<i4", (2, 1), bytes(8)), trust_nodes=False).tolist() == [[0], [0]]


def test_deep_nesting_is_an_error_and_the_process_lives_on():
    deep = b"l" + struct.pack("<Q", 1)
    record = b"D" + _rank.PLAIN_MAGIC + deep * 100_000 + b"N"
    with pytest.raises(ExecutionError, match="nested deeper than 1000"):
        loads(record, trust_nodes=False)
    nested = b"\x80\x04" + b"]" * 100_000 + b"a" * 99_999 + b"."  # the same as a pickle (the old format)
    with pytest.raises(ExecutionError):
        loads(nested, trust_nodes=False)

    def deep_value(comm):
        value: list = []
        for _ in range(100_000):
            value = [value]
        return value

    with local() as launcher, pytest.raises(ExecutionError, match="nested deeper than 1000"):
        launcher.run_function(deep_value, stream=None)  # rank 0 writes it (no recursion there either)
    assert sys.getrecursionlimit() < 100_000  # the test ran in this process, which is still here


def test_damaged_records_are_clear_errors():
    for record in (b"", b"D", b"Dgarbage", b"D" + _rank.PLAIN_MAGIC + b"s" + struct.pack("<Q", 2**63),
                   b"D" + _rank.PLAIN_MAGIC + b"l" + struct.pack("<Q", 10**12) + b"N",
                   b"D" + _rank.PLAIN_MAGIC + b"NN",
                   b"D" + _rank.PLAIN_MAGIC + b"d" + struct.pack("<Q", 1) + b"l" + struct.pack("<Q", 0) + b"N",
                   b"D" + _rank.PLAIN_MAGIC + b"Il" + struct.pack("<Q", 2**61) + bytes(16),
                   b"D" + _rank.PLAIN_MAGIC + b"Ix" + struct.pack("<Q", 1) + bytes(8),
                   b"D" + _rank.PLAIN_MAGIC + b"q" + bytes(3),
                   b"\x80\x05garbage"):
        with pytest.raises(ExecutionError, match="cannot be read"):
            loads(record, trust_nodes=False)


def test_the_docs_the_docstring_and_the_config_reference_state_the_rule():
    """Where users read the trust boundary, the plain types are the ones :func:`loads` rebuilds."""
    import re
    from pathlib import Path

    from ccdsl.executor import config
    from ccdsl.executor.cluster import Cluster

    page = (Path(__file__).resolve().parents[1] / "docs" / "clusters" / "index.md").read_text()
    boundary = page[page.index("## Trust boundary"):page.index("- **Opting in.**")]
    doc = " ".join((Cluster.run.__doc__ or "").split())
    reference = " ".join(re.sub(r"\n# ?", " ", config.reference()).split())
    for text in (" ".join(boundary.split()), doc, reference):
        assert PLAIN_TYPES in text, text[:200]
    assert "tagged data format, not a pickle" in boundary and "shape times its item size" in boundary
    for value in (None, True, 1, 1.5, 1j, "s", b"b", [1], (1,), {1: 2}, {1}, frozenset(), np.zeros(1, "?"),
                  np.int16(1)):  # each type named comes back without trust
        got = loads(b"D" + _rank.plain(value), trust_nodes=False)
        assert type(got) is type(value) and (got == value if not isinstance(got, np.ndarray) else (got == value).all())
    assert "trust_nodes=True" in doc and "`[security] trust_nodes = true`" in page
