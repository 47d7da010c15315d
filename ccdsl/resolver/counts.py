"""Node counts: the values ``node_count`` may take, and the cheapest count per candidate type in closed form.

Rules:

- ``node_count`` defaults to 1 (when the contract does not name it).  A manager is always 1 node.
- A range is capped: counts lie in ``1 .. max(MAX_NODES, every count the clause names)``, so ``@atleast(2)`` or
  ``@unrestricted`` means 2..1024 and ``@just(2000)`` still means 2000.
- Node counts are whole numbers compared exactly (no relative slack: ``@just(10**11)`` is that count, not one
  within 100 of it), and at most :data:`~ccdsl.parameters.MAX_COUNT` (2**53, where float64 still counts exactly);
  the checker refuses a larger one, and so does :func:`count_domain` for a clause built in code
  (a :class:`~ccdsl.errors.ContractError` naming the clause).
- The allowed counts are kept as a few integer intervals (:class:`CountDomain`), never as one array element per
  count, so memory and time do not depend on how large the counts are.
- Cluster totals are over the worker nodes: ``node_count × per-node value`` (vCPUs, memory, accelerators,
  accelerator memory).  ``cluster_price_per_hour`` is ``node_count × price + manager price``.
- A row's ``max_nodes`` (NaN = unlimited) caps its count: an SSH host row exists once, a host class as often
  as it has hosts.  When the manager of a ManagerWorkers cluster is the same row as the workers it takes one of
  those nodes, so the workers get ``max_nodes - 1`` (the caller passes that as the row's limit).
- Price never decreases with the count (prices are ≥ 0), so for one instance type the cheapest feasible count is
  the smallest count that satisfies every coupled constraint.  For interval qualifiers (atleast/atmost/between)
  that is ``ceil(low / value)`` moved to the next allowed count, computed for all rows at once.  ``just``/
  ``oneof``/``not`` on a total allow a union of count intervals; the smallest count of an intersection of such
  unions lies at one of their left ends, so only those few candidates are checked (see :func:`_exotic`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ccdsl.contract import Clause, Value
from ccdsl.errors import ContractError, Diagnostic
from ccdsl.parameters import MAX_COUNT
from ccdsl.resolver.filter import number_test, tolerance

MAX_NODES = 1024


def _whole(values: tuple[Value, ...], clause: Clause) -> list[float]:
    """The numeric values of a node_count clause, refused above :data:`MAX_COUNT`."""
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
            continue
        if not v <= MAX_COUNT:  # also NaN
            raise too_many(clause, v)
        out.append(float(v))
    return out


def too_many(clause: Clause, value: float) -> ContractError:
    """The error for a node count above :data:`MAX_COUNT`, at the clause's position."""
    span = clause.span
    shown = value if isinstance(value, int) and len(str(value)) <= 30 else f"{float(value):.4g}"
    return ContractError([Diagnostic(
        f"{clause.text}: a node count is at most 2**53 = {MAX_COUNT}, not {shown}",
        path=span.path if span else None, line=span.line if span else None, column=span.column if span else None,
        end_column=span.end_column if span and span.end_line == span.line else None,
        hint="write a smaller count, or a range such as @atleast(2)")])


def count_cap(clause: Clause | None) -> int:
    """The largest count considered for a node_count clause."""
    named = _whole(clause.values, clause) if clause is not None else []
    return int(max([MAX_NODES, *(math.floor(v) for v in named)]))


@dataclass(frozen=True)
class CountDomain:
    """Allowed node counts: sorted, disjoint, inclusive integer intervals ``[starts[i], stops[i]]`` (float64
    arrays of whole numbers ≤ 2**53, so exact)."""

    starts: np.ndarray
    stops: np.ndarray

    @staticmethod
    def of(intervals: list[tuple[float, float]]) -> CountDomain:
        """From any inclusive intervals (empty ones dropped, overlapping or adjacent ones merged)."""
        merged: list[list[float]] = []
        for a, b in sorted((a, b) for a, b in intervals if a <= b):
            if merged and a <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        return CountDomain(np.array([a for a, _ in merged], dtype=np.float64),
                           np.array([b for _, b in merged], dtype=np.float64))

    @property
    def empty(self) -> bool:
        return len(self.starts) == 0

    @property
    def first(self) -> int:
        return int(self.starts[0])

    @property
    def last(self) -> int:
        return int(self.stops[-1])

    def at_most(self, limit: float) -> CountDomain:
        """The counts ≤ ``limit``."""
        if not limit < math.inf:
            return self
        keep = self.starts <= limit
        return CountDomain(self.starts[keep], np.minimum(self.stops[keep], math.floor(limit)))

    def smallest(self, lo: np.ndarray) -> np.ndarray:
        """Per element of ``lo``: the smallest allowed count ≥ ``lo`` (inf where there is none)."""
        lo = np.ceil(np.asarray(lo, dtype=np.float64))
        if self.empty:
            return np.full(lo.shape, np.inf)
        with np.errstate(invalid="ignore"):
            if len(self.starts) == 1:  # one interval (every range qualifier): no search
                inside: np.ndarray = lo <= self.stops[0]  # NaN: never
                return np.where(inside, np.maximum(self.starts[0], lo), np.inf)
            idx = np.searchsorted(self.stops, lo, side="left")  # the first interval ending at or after lo
            safe = np.minimum(idx, len(self.starts) - 1)
            n = np.maximum(self.starts[safe], lo)
        return np.where((idx < len(self.starts)) & ~np.isnan(lo), n, np.inf)

    def contains(self, n: np.ndarray) -> np.ndarray:
        n = np.asarray(n, dtype=np.float64)
        if self.empty:
            return np.zeros(n.shape, dtype=bool)
        idx = np.searchsorted(self.stops, n, side="left")
        safe = np.minimum(idx, len(self.starts) - 1)
        inside: np.ndarray = (idx < len(self.starts)) & (self.starts[safe] <= n) & (n == np.floor(n))
        return inside


def count_domain(clause: Clause | None, fixed: int | None = None) -> CountDomain:
    """The allowed node counts of a role: ``fixed``, the default 1, or what the node_count clause allows."""
    if fixed is not None:
        return CountDomain.of([(fixed, fixed)])
    if clause is None:
        return CountDomain.of([(1, 1)])
    cap = float(count_cap(clause))
    q, vals = clause.qualifier, _whole(clause.values, clause)
    if q == "unrestricted":
        return CountDomain.of([(1, cap)])
    if q == "atleast":
        return CountDomain.of([(max(1.0, math.ceil(vals[0])), cap)])
    if q == "atmost":
        return CountDomain.of([(1, min(cap, math.floor(vals[0])))])
    if q == "between":
        return CountDomain.of([(max(1.0, math.ceil(vals[0])), min(cap, math.floor(vals[1])))])
    whole = sorted({v for v in vals if v == math.floor(v) and 1 <= v <= cap})
    if q in ("just", "oneof"):
        return CountDomain.of([(v, v) for v in whole[:1 if q == "just" else None]])
    if q == "not":
        edges = [0.0, *whole, cap + 1]
        return CountDomain.of([(a + 1, b - 1) for a, b in itertools.pairwise(edges)])
    raise ValueError(f"unknown qualifier {q!r}")


@dataclass(frozen=True)
class Coupled:
    """A constraint on ``count × per_node + offset`` (a cluster total or the budget) for each candidate row."""

    clause: Clause
    per_node: np.ndarray
    offset: np.ndarray | float = 0.0


def min_counts(domain: CountDomain, coupled: list[Coupled], size: int,
               limit: np.ndarray | None = None) -> np.ndarray:
    """The smallest allowed count satisfying every coupled constraint, per row; 0 where none does.  ``limit``:
    the most nodes each row has (NaN = unlimited)."""
    if domain.empty or size == 0:
        return np.zeros(size, dtype=np.int64)
    if not coupled:  # per-node contracts: the first allowed count wherever the row has that many nodes
        n = np.full(size, domain.first, dtype=np.int64)
        if limit is not None:
            with np.errstate(invalid="ignore"):
                n[np.asarray(limit, dtype=np.float64) < domain.first] = 0  # NaN (unlimited) is never less
        return n
    lo = np.full(size, float(domain.first))
    hi = np.full(size, float(domain.last))
    if limit is not None:
        hi = np.fmin(hi, np.asarray(limit, dtype=np.float64))  # fmin: NaN (unlimited) leaves the cap as it is
    exotic: list[Coupled] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for c in coupled:
            q, vals = c.clause.qualifier, c.clause.values
            v = np.asarray(c.per_node, dtype=np.float64)
            off = np.broadcast_to(np.asarray(c.offset, dtype=np.float64), v.shape)
            if q == "unrestricted":
                continue
            bad = np.isnan(v) | np.isnan(off)
            zero = v == 0
            if q in ("atleast", "between"):
                need = float(vals[0]) - tolerance(float(vals[0])) - off  # count × v ≥ need
                lo = np.maximum(lo, np.where(zero, np.where(need <= 0, -np.inf, np.inf), np.ceil(need / v)))
            if q in ("atmost", "between"):
                room = float(vals[-1]) + tolerance(float(vals[-1])) - off  # count × v ≤ room
                hi = np.minimum(hi, np.where(zero, np.where(room >= 0, np.inf, -np.inf), np.floor(room / v)))
            if q in ("just", "oneof", "not"):
                exotic.append(c)
            lo = np.where(bad, np.inf, lo)
    n = domain.smallest(lo)
    ok = n <= hi
    if exotic:
        n, ok = _exotic(domain, exotic, lo, hi, n, ok)
    return np.where(ok, n, 0).astype(np.int64)


def _exotic(domain: CountDomain, exotic: list[Coupled], lo: np.ndarray, hi: np.ndarray, n: np.ndarray,
            ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest count for rows with ``just``/``oneof``/``not`` totals, without listing the counts.

    Each such clause allows a union of count intervals: for ``just``/``oneof`` one band per value (the counts whose
    total lies within the slack of it), for ``not`` the gaps between the excluded bands.  The smallest count of
    the intersection of these unions with ``[lo, hi]`` and the domain is the smallest allowed count at or after a
    left end of one of their intervals: ``lo``, the first count of a band, or the first count after an excluded
    band.  So each row checks those candidates only (one less as well, against rounding at a band's edge)."""
    rows = np.flatnonzero(ok)
    if len(rows) == 0:
        return n, ok
    starts = [lo[rows]]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for c in exotic:
            v = np.asarray(c.per_node, dtype=np.float64)[rows]
            off = np.broadcast_to(np.asarray(c.offset, dtype=np.float64), np.shape(c.per_node))[rows]
            for t in c.clause.values:
                t = float(t)
                if c.clause.qualifier == "not":  # the first count past the band around t
                    edge = np.floor((t + tolerance(t) - off) / v) + 1
                else:  # the first count reaching the band around t
                    edge = np.ceil((t - tolerance(t) - off) / v)
                edge = np.where(v == 0, -np.inf, edge)  # a constant total: in or out for every count
                starts += [edge, edge - 1]
    candidates = np.column_stack([domain.smallest(np.maximum(s, lo[rows])) for s in starts])
    valid = np.isfinite(candidates) & (candidates <= hi[rows, None])
    for c in exotic:
        v = np.asarray(c.per_node, dtype=np.float64)[rows, None]
        off = np.broadcast_to(np.asarray(c.offset, dtype=np.float64), np.shape(c.per_node))[rows, None]
        with np.errstate(invalid="ignore", over="ignore"):
            valid &= number_test(np.where(valid, candidates, 0.0) * v + off, c.clause.qualifier, c.clause.values)
    best = np.where(valid, candidates, np.inf).min(axis=1)
    n = n.copy()
    ok = ok.copy()
    n[rows] = np.where(np.isfinite(best), best, 0)
    ok[rows] = np.isfinite(best)
    return n, ok
