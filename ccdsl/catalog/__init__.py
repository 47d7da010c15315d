"""The instance catalog: one row per (provider, region, instance type), shipped in ``catalogs/`` and merged with
the user's own catalogs.  ``load()`` is what the resolver reads.

Importing this package is cheap (pandas loads on the first ``load()``), because ``ccdsl.taxonomy`` imports the
fact table from here and command modules import it at startup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ccdsl.catalog.schema import COLUMN_NAMES, COLUMNS, DTYPES

if TYPE_CHECKING:
    import pandas as pd


def load(*args: Any, **kwargs: Any) -> pd.DataFrame:
    """The merged catalog DataFrame; see :func:`ccdsl.catalog.loader.load`."""
    from ccdsl.catalog.loader import load as _load

    return _load(*args, **kwargs)


def unknown_hint(value: str, known: list[str], plural: str) -> str:
    """The hint for a value no catalog row has (a typo, or something the catalog lacks): the close names, else
    every known one when they are few, else where to look."""
    import difflib

    close = difflib.get_close_matches(value, known, n=3, cutoff=0.5)
    return (f"did you mean {' or '.join(close)}?" if close else
            f"known {plural}: {', '.join(known)}" if len(known) <= 40 else
            f"none of the {len(known)} known {plural} is close; `ccdsl catalog list --limit 0` shows every row")


__all__ = ["COLUMNS", "COLUMN_NAMES", "DTYPES", "load", "unknown_hint"]
