"""Catalog files on disk: typed columns in, typed DataFrame out, and every write atomic.

Parquet is the fast form the library loads; CSV is the human-readable twin (also a valid user-catalog file).
Both are written byte-for-byte deterministically so that ``catalog build`` run twice gives identical files and a
diff of the CSV shows exactly which facts changed.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES

if TYPE_CHECKING:
    import pandas as pd


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` via a temp file in the same directory and a rename: readers see old or new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _arrow_schema() -> Any:  # a pyarrow.Schema (pyarrow ships no types)
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "float64": pa.float64(), "bool": pa.bool_()}
    return pa.schema([(name, types[DTYPES[name]]) for name in COLUMN_NAMES])


def parquet_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _arrow_schema()
    table = pa.table({name: [r[name] for r in rows] for name in COLUMN_NAMES}, schema=schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", use_dictionary=True, write_statistics=False)
    return buf.getvalue()


def format_value(value: Any, dtype: str) -> str:
    """One CSV cell: shortest round-tripping float, '' for NaN, true/false for booleans."""
    if dtype == "bool":
        return "true" if value else "false"
    if dtype == "float64":
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        f = float(value)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    return str(value)


def csv_bytes(rows: Iterable[Mapping[Any, Any]], columns: tuple[str, ...] = COLUMN_NAMES) -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([format_value(r[c], DTYPES.get(c, "string")) for c in columns])
    return buf.getvalue().encode()


def frame_from_arrow(table: Any) -> pd.DataFrame:
    """Arrow table -> DataFrame with exactly the schema's dtypes (strings as pandas ``string``)."""
    import pandas as pd
    import pyarrow as pa

    string = pd.StringDtype()
    frame: pd.DataFrame = table.to_pandas(types_mapper={pa.string(): string, pa.large_string(): string}.get)
    return frame


def read_parquet(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return frame_from_arrow(pq.read_table(path, columns=columns))


def frame_from_rows(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Validated row dicts (user catalogs) -> DataFrame with the schema's dtypes."""
    import pyarrow as pa

    schema = _arrow_schema()
    return frame_from_arrow(pa.table({n: [r[n] for r in rows] for n in COLUMN_NAMES}, schema=schema))
