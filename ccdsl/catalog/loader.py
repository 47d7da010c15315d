"""``ccdsl.catalog.load()``: the shipped catalog merged with the user's, cached in-process.

Precedence is by (provider, region, instance_type): shipped rows first, then every user catalog in the data
directory (sorted by file name), then ``paths`` in the order given; a later row replaces an earlier one.  That is
how ``catalog refresh`` output overrides stale shipped prices and how a user can correct a row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ccdsl.catalog import places
from ccdsl.catalog.places import USER_SUFFIXES, data_dir, shipped_files, user_catalog_dir, user_files

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["KEY", "USER_SUFFIXES", "clear_cache", "data_dir", "load", "shipped_files", "user_catalog_dir",
           "user_files"]

KEY = ("provider", "region", "instance_type")

_CACHE: dict[Any, pd.DataFrame] = {}


def _stamp(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    out = []
    for p in paths:
        st = p.stat()
        out.append((str(p), st.st_mtime_ns, st.st_size))
    return tuple(out)


def clear_cache() -> None:
    """Forget every merged frame (tests, and writers that want the memory back)."""
    _CACHE.clear()


def load(*, user: bool = True, paths: Iterable[str | os.PathLike[str]] | None = None,
         columns: Iterable[str] | None = None, local: bool = True) -> pd.DataFrame:
    """The catalog as a pandas DataFrame with exactly the columns and dtypes of :mod:`ccdsl.catalog.schema`.

    ``local`` adds this machine as a free ``local`` row (:mod:`ccdsl.catalog.local`) between the shipped rows
    and the user's, so a user row with its key replaces it.
    ``user=False`` gives only the shipped catalog (and this machine); ``paths`` adds user catalogs (CSV or TOML) on top;
    ``columns`` selects columns (a cheaper frame for callers that need few).  Results are cached per process and
    invalidated when any file involved changes; callers get their own copy, so mutating it is harmless.
    """
    from ccdsl.catalog.schema import COLUMN_NAMES
    from ccdsl.errors import CatalogError

    shipped = shipped_files()
    if not shipped:
        raise CatalogError("no shipped catalog found", hint="run `ccdsl catalog build` (needs 'ccdsl[build]')")
    extra = [Path(p) for p in (paths or ())]
    for p in extra:
        if not p.is_file():
            raise CatalogError(f"catalog file not found: {p}")
    users = (user_files() if user else []) + extra
    cols = tuple(columns) if columns is not None else None
    if cols is not None:
        unknown = [c for c in cols if c not in COLUMN_NAMES]
        if unknown:
            raise CatalogError(f"unknown catalog column(s): {', '.join(unknown)}")
    key = (_stamp(shipped), _stamp(users), cols, local, places.generation())
    frame = _CACHE.get(key)
    if frame is None:
        frame = _merge(shipped, users, cols, local)
        _CACHE[key] = frame
    return frame.copy()


def _merge(shipped: list[Path], users: list[Path], cols: tuple[str, ...] | None,
           local: bool) -> pd.DataFrame:
    import pandas as pd

    from ccdsl.catalog.store import read_parquet

    read_cols = None if cols is None else list(dict.fromkeys([*KEY, *cols])) if users or local else list(cols)
    frames = [read_parquet(p, read_cols) for p in shipped]
    if local:
        from ccdsl.catalog.local import local_frame

        frames.append(local_frame()[read_cols] if read_cols else local_frame())
    if users:
        from ccdsl.catalog.user import read_user_catalog

        frames += [read_user_catalog(p)[read_cols] if read_cols else read_user_catalog(p) for p in users]
    frame: pd.DataFrame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
    if len(frames) > 1:
        frame = frame.drop_duplicates(subset=list(KEY), keep="last").reset_index(drop=True)
    if cols is not None:
        frame = frame[list(cols)]
    return frame
