"""A column-array view of the catalog, built once per catalog and reused by every resolve.

Why: the resolver's budget is a few milliseconds.  Pandas column access, string comparisons and ``isin`` over ~11k
rows cost more than the whole solve, so the catalog is turned once into plain numpy arrays: numbers as float64
(NaN = unknown), strings as integer codes into a *sorted* table of distinct values (so comparing codes orders
names alphabetically, which the tie-breaking rule relies on).  Matching a symbol then means looking up which of a
few dozen distinct labels it covers and indexing a boolean table with the codes.

``max_nodes`` (how many nodes of a row exist) is NaN = unlimited, also for catalogs without the column.

Rows without a known price (NaN: offered, but no source prices them) stay in the view: the resolver ranks them
after every priced row (:func:`ccdsl.resolver.solve.rank`).  ``price_source`` and ``price_date`` travel with each
row so that every answer can name where its price comes from.  The view is cached per DataFrame object (weakly):
treat a catalog DataFrame as immutable once handed to the resolver.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ccdsl.catalog.shares import accelerator_counts
from ccdsl.errors import CatalogError

STRING_COLUMNS = (
    "provider", "region", "instance_type", "cpu_manufacturer", "cpu_model", "cpu_microarchitecture",
    "cpu_architecture", "accelerator_type", "accelerator_manufacturer", "accelerator_model",
    "accelerator_architecture", "storage_type", "price_source", "price_date",
)
NUMBER_COLUMNS = (
    "vcpus", "cores", "memory_gib", "accelerator_count", "accelerator_memory_gib", "accelerator_memory_total_gib",
    "accelerator_memory_usable_gib",
    "network_gbps", "storage_gib", "price_per_hour", "max_nodes", "burstable", "efa", "efa_interfaces",
    "single_thread",
)
# Derived from the catalog's columns when the view is built, never read from a catalog: each accelerator model's
# CUDA compute capability (taxonomy.COMPUTE_CAPABILITY; NaN for other accelerators and rows without one).
DERIVED_NUMBERS = ("accelerator_compute_capability",)
REQUIRED = ("provider", "region", "instance_type", "price_per_hour")
VIEW_COLUMNS = STRING_COLUMNS + NUMBER_COLUMNS  # what the resolver reads of a catalog
# What a market view (:mod:`.market`) carries besides: its spot rows' zones, the on-demand price beside the spot
# one, the interruption bucket, and each row's market (1.0 spot, 0.0 on-demand).
MARKET_STRINGS = ("spot_zone", "spot_zones")
MARKET_NUMBERS = ("on_demand_price_per_hour", "spot_interruption", "market")
FORMAT = 8  # bump when the saved view's layout or meaning changes (it is part of the cache key)
MEMO_LIMIT = 32  # derived arrays kept per view (CatalogView.memo): a few sort orders, ~8 bytes a row each


@dataclass(frozen=True, eq=False)
class CatalogView:
    """Numpy arrays of the priced catalog rows.  ``codes[col]`` indexes ``labels[col]`` (sorted distinct values)."""

    size: int
    numbers: dict[str, np.ndarray]
    codes: dict[str, np.ndarray]
    labels: dict[str, tuple[str, ...]]
    location: np.ndarray  # code of (provider, region), for "same place" constraints
    location_labels: tuple[tuple[str, str], ...]
    tie: np.ndarray  # each row's place in the tie rules after price and count: more vCPUs, provider, region, type
    # A market view holding both markets' rows: the roles whose nodes are spot (None: peer workers).  Each role
    # sees only its own market's rows (:meth:`role_scope`).  Empty for one-market views.
    spot_roles: tuple[str | None, ...] = ()

    @property
    def mixed(self) -> bool:
        return bool(self.spot_roles)

    def role_scope(self, role: str | None) -> np.ndarray | None:
        """Rows of the market ``role`` is on, in a mixed view; None (every row) otherwise."""
        if not self.spot_roles:
            return None
        spot = self.memo(("spot rows",), lambda: self.numbers["market"] > 0)
        return spot if role in self.spot_roles else ~spot

    def label(self, column: str, row: int) -> str:
        return self.labels[column][int(self.codes[column][row])]

    def code(self, column: str, value: str) -> int | None:
        """The code of ``value`` in ``column``, or None when no row holds it."""
        return self.index(column).get(value)

    def index(self, column: str) -> dict[str, int]:
        """label -> code of one column, built on first use (a dict lookup per symbol instead of a scan of the
        column's labels: the instance-type column has ~1,400)."""
        cache: dict[str, dict[str, int]] = self.__dict__.setdefault("_index", {})
        found = cache.get(column)
        if found is None:
            found = cache[column] = {label: i for i, label in enumerate(self.labels[column])}
        return found

    def number(self, column: str, row: int) -> float:
        return float(self.numbers[column][row])

    def memo(self, key: tuple[object, ...], build: Callable[[], np.ndarray]) -> np.ndarray:
        """An array derived from this view alone (a sort order of every row, say), built on first use and kept
        with the view: the view lives as long as its catalog, so a cost paid once per catalog is not paid again
        by every resolve.  At most :data:`MEMO_LIMIT` entries (the oldest goes first)."""
        cache: dict[tuple[object, ...], np.ndarray] = self.__dict__.setdefault("_memo", {})
        found = cache.get(key)
        if found is None:
            if len(cache) >= MEMO_LIMIT:
                del cache[next(iter(cache))]
            found = cache[key] = build()
        return found


_CACHE: dict[tuple[Any, ...], tuple[weakref.ref[Any], CatalogView]] = {}


def cached_view(catalog: Any, key: tuple[Any, ...], build: Callable[[], CatalogView]) -> CatalogView:
    """The view ``build`` makes of a catalog DataFrame, remembered per DataFrame object (weakly: a DataFrame that
    is gone, or a new one at the same address, never gets an old view) and ``key`` (e.g. the market)."""
    k = (id(catalog), *key)
    hit = _CACHE.get(k)
    if hit is not None and hit[0]() is catalog:
        return hit[1]
    view = build()
    try:
        _CACHE[k] = (weakref.ref(catalog), view)
    except TypeError:  # not weak-referenceable: just do not cache
        pass
    return view


def view_of(catalog: Any) -> CatalogView:
    """The (cached) :class:`CatalogView` of a catalog DataFrame (or of a view, returned as is)."""
    if isinstance(catalog, CatalogView):
        return catalog
    return cached_view(catalog, (), lambda: build_view(catalog))


def build_view(df: Any, spot_roles: tuple[str | None, ...] = ()) -> CatalogView:
    """Turn a catalog DataFrame (columns of :mod:`ccdsl.catalog.schema`) into arrays.  A market frame
    (:mod:`.market`, with a ``market`` column) also keeps :data:`MARKET_STRINGS` and :data:`MARKET_NUMBERS`;
    ``spot_roles`` makes it a mixed view (see :attr:`CatalogView.spot_roles`)."""
    import pandas as pd

    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise CatalogError(f"the catalog lacks the column(s) {', '.join(missing)}")
    market = "market" in df.columns
    numbers: dict[str, np.ndarray] = {}
    for col in NUMBER_COLUMNS + (MARKET_NUMBERS if market else ()):
        if col in df.columns:
            values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        elif col == "accelerator_memory_total_gib" and "accelerator_memory_gib" in df.columns:
            values = numbers["accelerator_count"] * numbers["accelerator_memory_gib"]
            numbers[col] = values  # already filtered below via the sources
            continue
        elif col == "accelerator_memory_usable_gib" and "accelerator_memory_gib" in df.columns:
            numbers[col] = numbers["accelerator_memory_gib"]  # a catalog of one figure: the card's
            continue
        else:
            values = np.full(len(df), np.nan)
        numbers[col] = values
    codes: dict[str, np.ndarray] = {}
    labels: dict[str, tuple[str, ...]] = {}
    for col in STRING_COLUMNS + (MARKET_STRINGS if market else ()):
        series = df[col] if col in df.columns else pd.Series([""] * len(df))
        inverse, uniques = pd.factorize(series.fillna(""), sort=True)  # hashing: fast on 1M rows
        codes[col] = inverse.astype(np.int32)
        labels[col] = tuple(str(u) for u in uniques)
    numbers["burstable"] = _burstable(numbers["burstable"], codes, labels)
    from ccdsl.taxonomy import compute_capability

    capability = np.array([compute_capability(m) for m in labels["accelerator_model"]], dtype="float64")
    numbers["accelerator_compute_capability"] = capability[codes["accelerator_model"]]
    # a share of one accelerator (g6f.large: 1/8 of an L4) counts as its fraction, and its memory is the share's
    numbers["accelerator_count"] = accelerator_counts(codes["accelerator_model"], numbers["accelerator_count"],
                                                      numbers["accelerator_memory_gib"])
    shares = (numbers["accelerator_count"] > 0) & (numbers["accelerator_count"] < 1)
    numbers["accelerator_memory_total_gib"] = np.where(shares, numbers["accelerator_memory_gib"],
                                                       numbers["accelerator_memory_total_gib"])
    pairs = codes["provider"].astype(np.int64) * (len(labels["region"]) + 1) + codes["region"]
    loc_uniques, loc = np.unique(pairs, return_inverse=True)
    n_regions = len(labels["region"]) + 1
    location_labels = tuple((labels["provider"][int(p // n_regions)], labels["region"][int(p % n_regions)])
                            for p in loc_uniques)
    return CatalogView(len(df), numbers, codes, labels, loc.astype(np.int32), location_labels,
                       tie_order(numbers, codes), tuple(spot_roles))


def _burstable(flags: np.ndarray, codes: dict[str, np.ndarray], labels: dict[str, tuple[str, ...]]) -> np.ndarray:
    """1.0 for a burstable row: the catalog says so, or it is an AWS type AWS documents as burstable (t1.micro, and
    the T types of a user catalog without the column); else 0.0 (never NaN: unknown is not burstable)."""
    from ccdsl.burstable import is_burstable

    documented = np.array([is_burstable(t) for t in labels["instance_type"]], dtype=bool)[codes["instance_type"]]
    aws = [i for i, p in enumerate(labels["provider"]) if p == "aws"]
    if aws:
        documented &= codes["provider"] == aws[0]
    else:
        documented[:] = False
    out: np.ndarray = np.where(documented | (np.nan_to_num(flags) > 0), 1.0, 0.0)
    return out


def nan_as(x: Any, nan: float) -> np.ndarray:
    """``np.nan_to_num(x, nan=nan)`` for a float array, element for element (NaN as ``nan``, ±inf as the largest
    finite float of its sign), in a fifth of the time: numpy's version runs ``isposinf``/``isneginf`` through their
    generic ufunc path, about 70 µs a call, and a warm resolve made three such calls (issue 20's 4 ms target)."""
    a = np.array(x, dtype=np.float64)  # a copy, as nan_to_num makes
    if np.isfinite(a).all():
        return a
    isnan, posinf, neginf = np.isnan(a), a == np.inf, a == -np.inf  # from the input, as nan_to_num reads them
    big = np.finfo(np.float64).max
    a[isnan] = nan
    a[posinf] = big
    a[neginf] = -big
    return a


def tie_order(numbers: dict[str, np.ndarray], codes: dict[str, np.ndarray]) -> np.ndarray:
    """The rank of every row by the tie rules that do not depend on the contract (more vCPUs first, then
    provider, region and type name), computed once so that a ranking sorts on two keys instead of six."""
    order = np.lexsort((codes["instance_type"], codes["region"], codes["provider"], -np.nan_to_num(numbers["vcpus"])))
    tie = np.empty(len(order), dtype=np.int64)
    tie[order] = np.arange(len(order))
    return tie


# ------------------------------------------------------------------------------------------ on-disk cache
# A cold ``ccdsl resolve`` should not pay for pandas (~0.2 s to import) just to read columns it turns into arrays
# anyway: the view of the default catalog is saved as a plain .npz next to the user's data, keyed by the catalog
# files' names, sizes and modification times, and loaded with numpy alone.

def save(view: CatalogView, path: Any) -> None:
    """Write ``view`` to ``path`` atomically (temp file + rename); errors are ignored (it is only a cache)."""
    import os
    import tempfile

    arrays: dict[str, np.ndarray] = {"size": np.array([view.size]), "location": view.location, "tie": view.tie,
                                     "location_labels": np.array(view.location_labels, dtype=str).reshape(-1, 2),
                                     "spot_roles": np.array([r or "" for r in view.spot_roles], dtype=str)}
    for col, values in view.numbers.items():
        arrays[f"n_{col}"] = values
    for col in view.codes:
        arrays[f"c_{col}"] = view.codes[col]
        arrays[f"l_{col}"] = np.array(view.labels[col], dtype=str)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, allow_pickle=False, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def load(path: Any) -> CatalogView | None:
    """A view saved by :func:`save`, or None when there is none or it is unreadable."""
    try:
        with np.load(path, allow_pickle=False) as z:
            numbers = {k[2:]: z[k] for k in z.files if k.startswith("n_")}
            codes = {k[2:]: z[k] for k in z.files if k.startswith("c_")}
            labels = {k[2:]: tuple(str(x) for x in z[k]) for k in z.files if k.startswith("l_")}
            locs = tuple((str(a), str(b)) for a, b in z["location_labels"])
            roles = tuple(str(r) or None for r in z["spot_roles"]) if "spot_roles" in z.files else ()
            view = CatalogView(int(z["size"][0]), numbers, codes, labels, z["location"], locs, z["tie"], roles)
    except (OSError, ValueError, KeyError, EOFError):
        return None
    market = "market" in numbers
    if set(codes) != set(STRING_COLUMNS + (MARKET_STRINGS if market else ())) or \
            set(numbers) != set(NUMBER_COLUMNS + DERIVED_NUMBERS + (MARKET_NUMBERS if market else ())):
        return None
    return view
