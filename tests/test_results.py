"""Rank 0's result comes back as plain data: a node cannot run code on this machine through it (issue 8, item 1).

The runs are real (local mpiexec, mpi4py, the rank bootstrap); a rank that returns an object whose pickle calls a
function stands for a node whose owner rewrote the bootstrap to send any record it likes.
"""

from __future__ import annotations

import datetime
import decimal
import fractions
import os
import pickle
from collections import Counter, OrderedDict, defaultdict, deque

import numpy as np
import pandas as pd
import pytest

import ccdsl
from ccdsl.errors import ExecutionError
from ccdsl.executor.model import Node
from ccdsl.executor.mpi import Launcher
from ccdsl.executor.results import DataUnpickler, UntrustedResultError, loads
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
    assert "system" in info.value.message and "could run code" in info.value.message
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
    "none": None, "bools": [True, False], "int": 10**40, "float": 1.5, "nan": float("inf"), "complex": 1 + 2j,
    "str": "héllo", "bytes": b"\x00\xff", "bytearray": bytearray(b"ab"), "tuple": (1, (2, 3)), "set": {1, 2},
    "frozenset": frozenset("ab"), "range": range(3), "slice": slice(1, 9, 2),
    "dates": [datetime.date(2026, 11, 26), datetime.datetime(2026, 11, 26, 13, 0, tzinfo=datetime.timezone.utc),
              datetime.timedelta(seconds=5), datetime.time(1, 2)],
    "decimal": decimal.Decimal("1.10"), "fraction": fractions.Fraction(1, 3),
    "collections": [OrderedDict(a=1), defaultdict(list, b=[1]), deque([1, 2]), Counter("aab")],
}


def numpy_and_pandas(comm):
    import numpy as np
    import pandas as pd

    frame = pd.DataFrame({"rank": [comm.rank], "name": ["r0"], "t": pd.to_datetime(["2026-11-26"]),
                          "c": pd.Categorical(["x"]), "i": pd.array([1], dtype="Int64")})
    return {"array": np.arange(6, dtype="f4").reshape(2, 3), "scalar": np.float64(2.5), "strings": np.array(["a"]),
            "objects": np.array([1, "x", None], dtype=object), "frame": frame,
            "series": pd.Series([1.0, 2.0], index=pd.date_range("2026-01-01", periods=2, tz="UTC")),
            "multi": pd.MultiIndex.from_tuples([(1, "a")]), "stamp": pd.Timestamp("2026-11-26", tz="UTC"),
            "na": [pd.NA, pd.NaT], "interval": pd.interval_range(0, 2)}


def test_plain_data_numpy_and_pandas_come_back_by_default():
    with local() as launcher:
        assert launcher.run_function(lambda comm: PLAIN, stream=None) == PLAIN
        got = launcher.run_function(numpy_and_pandas, stream=None)
    assert got["array"].dtype == np.float32 and got["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert got["scalar"] == 2.5 and got["strings"].tolist() == ["a"] and got["objects"].tolist() == [1, "x", None]
    assert got["frame"]["name"].tolist() == ["r0"] and str(got["frame"]["c"].dtype) == "category"
    assert str(got["frame"]["i"].dtype) == "Int64" and got["series"].index.tz is not None
    assert got["multi"].tolist() == [(1, "a")] and got["stamp"].year == 2026
    assert got["na"][0] is pd.NA and got["na"][1] is pd.NaT and len(got["interval"]) == 2


@pytest.mark.parametrize("record", [
    b"cos\nsystem\n(S'touch /tmp/ccdsl-pwned'\ntR.",  # protocol 0: GLOBAL os.system, REDUCE
    b"cbuiltins\neval\n(S'1'\ntR.",
    b"cbuiltins\ngetattr\n.",
    b"c__builtin__\nopen\n.",
    b"csubprocess\nPopen\n.",
    b"cnumpy\nload\n.",  # a numpy function that is not a rebuild helper
    b"cpandas\nread_pickle\n.",
    b"cpandas\nExcelWriter\n.",
    b"ccopyreg\n_reconstructor\n.",
], ids=["os.system", "eval", "getattr", "open", "Popen", "numpy.load", "pandas.read_pickle", "ExcelWriter",
        "copyreg"])
def test_handwritten_records_naming_callables_are_refused(record):
    with pytest.raises(UntrustedResultError):
        loads(record, trust_nodes=False)


def test_a_callable_hidden_in_an_object_array_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    record = pickle.dumps(np.array([1, Payload()], dtype=object), protocol=5)
    with pytest.raises(UntrustedResultError, match="system"):
        loads(record, trust_nodes=False)
    assert not marker.exists()


def test_a_damaged_record_is_a_clear_error():
    with pytest.raises(ExecutionError, match="cannot be read"):
        loads(b"\x80\x05garbage", trust_nodes=False)
    assert isinstance(DataUnpickler, type)
