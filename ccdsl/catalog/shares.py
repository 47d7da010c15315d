"""Fractional accelerators (issue 20 item 3): a row that sells a share of one GPU (``g6f.large``: 1/8 of an L4).

AWS reports such a type with no whole accelerator (``accelerator_count`` 0 in the catalog) and the memory of its
share (2.79 GiB of an L4's 22.35).  Its share is that memory over the memory of the same model in a row with whole
accelerators of the catalog, in eighths (AWS sells 1/8, 1/4 and 1/2).  Why derived and not stored: the catalog
keeps what the API says; the share is a reading of it that the resolver, ``catalog show/list`` and the answers
agree on by calling this one function.  A share of a model with no whole row in the catalog stays 0 (unknown: it
is never taken for a whole accelerator).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

EIGHTHS = 8


def accelerator_counts(models: Any, counts: Any, memory: Any) -> np.ndarray:
    """Each row's accelerators: ``counts`` where whole, the share in eighths (0.125, 0.25, 0.5 …) where the row
    has none but the memory of a share.  ``models`` are labels or codes (equal ones name the same model)."""
    count = np.asarray(counts, dtype="float64")
    mem = np.nan_to_num(np.asarray(memory, dtype="float64"))
    _, model = np.unique(np.asarray(models), return_inverse=True)
    whole_rows = count >= 1
    whole = np.zeros(int(model.max()) + 1 if len(model) else 0)
    np.maximum.at(whole, model[whole_rows], mem[whole_rows])
    full = whole[model] if len(model) else np.zeros(0)
    share = (count == 0) & (mem > 0) & (full > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        eighths = np.clip(np.round(mem / np.where(full > 0, full, 1.0) * EIGHTHS), 1, EIGHTHS - 1) / EIGHTHS
    return np.where(share, eighths, count)


def is_share(count: float) -> bool:
    """A share of one accelerator (0 < count < 1)."""
    return 0 < count < 1


def count_text(count: float) -> str:
    """``1/8`` for a share, ``8`` for whole accelerators."""
    if is_share(count):
        f = Fraction(count).limit_denominator(EIGHTHS)
        return f"{f.numerator}/{f.denominator}"
    return f"{count:g}"


def frame_counts(df: Any) -> Any:
    """:func:`accelerator_counts` of a catalog DataFrame, as a Series aligned with it."""
    import pandas as pd

    models = df["accelerator_model"].fillna("").astype(str).to_numpy()
    return pd.Series(accelerator_counts(models, df["accelerator_count"].to_numpy(dtype="float64", na_value=0.0),
                                        df["accelerator_memory_gib"].to_numpy(dtype="float64", na_value=0.0)),
                     index=df.index)
