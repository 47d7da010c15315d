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


__all__ = ["COLUMNS", "COLUMN_NAMES", "DTYPES", "load"]
