"""Node counts: the values ``node_count`` may take, and the cheapest count per candidate type in closed form.

Rules:

- ``node_count`` defaults to 1 (when the contract does not name it).  A manager is always 1 node.
- A range is capped: counts lie in ``1 .. max(MAX_NODES, every count the clause names)``, so ``@atleast(2)`` or
  ``@unrestricted`` means 2..1024 and ``@just(2000)`` still means 2000.
- Cluster totals are over the worker nodes: ``node_count × per-node value`` (vCPUs, memory, accelerators,
  accelerator memory).  ``cluster_price_per_hour`` is ``node_count × price + manager price``.
- A row's ``max_nodes`` (NaN = unlimited) caps its count: an SSH host row exists once, a host class as often
  as it has hosts.  When the manager of a ManagerWorkers cluster is the same row as the workers it takes one of
  those nodes, so the workers get ``max_nodes - 1`` (the caller passes that as the row's limit).
- Price never decreases with the count (prices are ≥ 0), so for one instance type the cheapest feasible count is
  the smallest count that satisfies every coupled constraint.  For interval qualifiers (atleast/atmost/between)
  that is ``ceil(low / value)`` clipped to the allowed counts, computed for all rows at once; ``just``/``oneof``/
  ``not`` on a total check the allowed counts row by row (vectorized, in chunks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from ccdsl.contract import Clause
from ccdsl.resolver.filter import number_test, tolerance

MAX_NODES = 1024
_CHUNK = 4096


def count_cap(clause: Clause | None) -> int:
    """The largest count considered for a node_count clause."""
    named = [int(v) for v in (clause.values if clause is not None else ()) if isinstance(v, (int, float))]
    return max([MAX_NODES, *named])


def count_domain(clause: Clause | None, fixed: int | None = None) -> np.ndarray:
    """Sorted allowed node counts (int64)."""
    if fixed is not None:
        return np.array([fixed], dtype=np.int64)
    if clause is None:
        return np.array([1], dtype=np.int64)
    full = np.arange(1, count_cap(clause) + 1, dtype=np.int64)
    return full[number_test(full.astype(np.float64), clause.qualifier, clause.values)]


@dataclass(frozen=True)
class Coupled:
    """A constraint on ``count × per_node + offset`` (a cluster total or the budget) for each candidate row."""

    clause: Clause
    per_node: np.ndarray
    offset: Union[np.ndarray, float] = 0.0


def min_counts(domain: np.ndarray, coupled: list[Coupled], size: int,
               limit: np.ndarray | None = None) -> np.ndarray:
    """The smallest allowed count satisfying every coupled constraint, per row; 0 where none does.  ``limit``:
    the most nodes each row has (NaN = unlimited)."""
    if len(domain) == 0 or size == 0:
        return np.zeros(size, dtype=np.int64)
    lo = np.full(size, float(domain[0]))
    hi = np.full(size, float(domain[-1]))
    if limit is not None:
        hi = np.fmin(hi, np.asarray(limit, dtype=np.float64))  # fmin: NaN (unlimited) leaves the cap as it is
    exotic: list[Coupled] = []
    with np.errstate(divide="ignore", invalid="ignore"):
        for c in coupled:
            q, vals = c.clause.qualifier, c.clause.values
            v = np.asarray(c.per_node, dtype=np.float64)
            off = np.broadcast_to(np.asarray(c.offset, dtype=np.float64), v.shape)
            if q == "unrestricted":
                continue
            bad = np.isnan(v) | np.isnan(off)
            zero = v == 0
            if q in ("atleast", "between"):
                need = float(vals[0]) - tolerance(vals[0]) - off  # count × v ≥ need
                lo = np.maximum(lo, np.where(zero, np.where(need <= 0, -np.inf, np.inf), np.ceil(need / v)))
            if q in ("atmost", "between"):
                room = float(vals[-1]) + tolerance(vals[-1]) - off  # count × v ≤ room
                hi = np.minimum(hi, np.where(zero, np.where(room >= 0, np.inf, -np.inf), np.floor(room / v)))
            if q in ("just", "oneof", "not"):
                exotic.append(c)
            lo = np.where(bad, np.inf, lo)
    idx = np.searchsorted(domain, lo, side="left")
    safe = np.minimum(idx, len(domain) - 1)
    n = domain[safe]
    ok = (idx < len(domain)) & (n <= hi)
    if exotic:
        n, ok = _exotic(domain, exotic, lo, hi, n, ok)
    return np.where(ok, n, 0)


def _exotic(domain: np.ndarray, exotic: list[Coupled], lo: np.ndarray, hi: np.ndarray, n: np.ndarray,
            ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check every allowed count for rows whose constraints are not intervals (in chunks to bound memory)."""
    n = n.copy()
    ok = ok.copy()
    rows = np.flatnonzero(ok)
    counts = domain.astype(np.float64)[None, :]
    for start in range(0, len(rows), _CHUNK):
        r = rows[start:start + _CHUNK]
        valid = (counts >= lo[r, None]) & (counts <= hi[r, None])
        for c in exotic:
            v = np.asarray(c.per_node, dtype=np.float64)[r, None]
            off = np.broadcast_to(np.asarray(c.offset, dtype=np.float64), np.shape(c.per_node))[r, None]
            valid &= number_test(counts * v + off, c.clause.qualifier, c.clause.values)
        first = valid.argmax(axis=1)
        n[r] = domain[first]
        ok[r] = valid.any(axis=1)
    return n, ok
