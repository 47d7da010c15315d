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
- Count totals (``cluster_vcpus_count``, ``cluster_accelerator_count``: whole per-node values) are compared
  exactly, in integers (``@atleast(10**10)`` is met, not missed by 10); memory and prices keep the relative slack
  of :func:`.filter.tolerance`.  A count total's values are at most 2**53 (the checker; :func:`total_too_large`
  for a clause built in code), so every quotient is exact in int64 and float64.
- Price never decreases with the count (prices are ≥ 0), so for one instance type the cheapest feasible count is
  the smallest count that satisfies every coupled constraint.  For interval qualifiers (atleast/atmost/between)
  that is ``ceil(low / value)`` moved to the next allowed count, computed for all rows at once.  ``just``/
  ``oneof``/``not`` on a total allow a union of count intervals; the smallest count of their intersection is found
  by moving a count forward clause by clause with binary searches in the values, sorted once (see
  :func:`_exotic`): time O((rows + values) · log values), memory O(rows + values), never rows × values.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from ccdsl.contract import Clause, Value
from ccdsl.errors import ContractError, Diagnostic
from ccdsl.parameters import MAX_COUNT, PARAMETERS
from ccdsl.resolver.filter import RELATIVE_TOLERANCE, tolerance

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
    return MAX_NODES if clause is None else _count_cap(clause)


# count_cap and count_domain of a clause, remembered: a resolve asks for them about ten times (the ranking, the
# proof, the conflict and each near miss), and a node_count clause may list a megabyte of values (issue 18:
# 0.2 s per call for @not(1, …, 144951)).  Keyed by the clause's value (hashing its values is a C loop); a few
# only, since a clause of a megabyte of text holds tens of megabytes of values.
@functools.lru_cache(maxsize=8)
def _count_cap(clause: Clause) -> int:
    return int(max([MAX_NODES, *(math.floor(v) for v in _whole(clause.values, clause))]))


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

    def rank(self, x: np.ndarray) -> np.ndarray:
        """Per element of ``x`` (whole floats): how many allowed counts are below it (float64, exact)."""
        x = np.asarray(x, dtype=np.float64)
        if self.empty:
            return np.zeros(x.shape)
        before = np.r_[0.0, np.cumsum(self.stops - self.starts + 1)]
        i = np.searchsorted(self.stops, x, side="left")  # the first interval ending at or after x
        safe = np.minimum(i, len(self.starts) - 1)
        inside = np.clip(x - self.starts[safe], 0, None)
        out: np.ndarray = np.where(i < len(self.starts), before[safe] + inside, before[-1])
        return out

    def select(self, r: np.ndarray) -> np.ndarray:
        """The allowed count with ``r`` allowed counts below it (the inverse of :meth:`rank`; inf past the last)."""
        r = np.asarray(r, dtype=np.float64)
        before = np.r_[0.0, np.cumsum(self.stops - self.starts + 1)]
        i = np.searchsorted(before, r, side="right") - 1
        safe = np.clip(i, 0, max(len(self.starts) - 1, 0))
        out: np.ndarray = np.where((i < len(self.starts)) & (r >= 0), self.starts[safe] + (r - before[safe]),
                                   np.inf) if not self.empty else np.full(r.shape, np.inf)
        return out

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
    return _clause_domain(clause)


@functools.lru_cache(maxsize=8)
def _clause_domain(clause: Clause) -> CountDomain:
    """:func:`count_domain` of a clause (remembered, see :func:`_count_cap`: its arrays are made read-only)."""
    domain = _domain_of(clause)
    domain.starts.flags.writeable = False
    domain.stops.flags.writeable = False
    return domain


def _domain_of(clause: Clause) -> CountDomain:
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



def exact_total(clause: Clause) -> bool:
    """Whether a cluster total is a count (vCPUs, accelerators): whole numbers, compared exactly (no slack)."""
    p = PARAMETERS.get(clause.parameter)
    return p is not None and p.kind == "count"


def total_too_large(clause: Clause, value: float) -> ContractError:
    """The error for a count total above :data:`MAX_COUNT` (a clause built in code: the checker refuses it)."""
    span = clause.span
    return ContractError([Diagnostic(
        f"{clause.text}: a count total is at most 2**53 = {MAX_COUNT}, not {float(value):.4g}",
        path=span.path if span else None, line=span.line if span else None, column=span.column if span else None,
        hint="write a smaller count")])


def _whole_values(clause: Clause) -> list[float]:
    """A count total's values (every one ≤ :data:`MAX_COUNT`, else a :class:`ContractError`)."""
    out = []
    for v in clause.values:
        x = float(v)
        if not abs(x) <= MAX_COUNT:  # also NaN
            raise total_too_large(clause, x)
        out.append(x)
    return out


def min_counts(domain: CountDomain, coupled: list[Coupled], size: int,
               limit: np.ndarray | None = None, least: np.ndarray | None = None) -> np.ndarray:
    """The smallest allowed count satisfying every coupled constraint, per row; 0 where none does.  ``limit``:
    the most nodes each row has (NaN = unlimited); ``least``: the smallest count to consider per row (a caller
    asking for the first allowed count past some count of its own, :class:`.solve.BudgetPairs`)."""
    if domain.empty or size == 0:
        return np.zeros(size, dtype=np.int64)
    if not coupled and least is None:  # per-node contracts: the first count wherever the row has that many
        n = np.full(size, domain.first, dtype=np.int64)
        if limit is not None:
            with np.errstate(invalid="ignore"):
                n[np.asarray(limit, dtype=np.float64) < domain.first] = 0  # NaN (unlimited) is never less
        return n
    lo, hi, exotic = count_bounds(domain, coupled, size, limit)
    if least is not None:
        lo = np.maximum(lo, least)  # NaN: none
    n = domain.smallest(lo)
    ok = n <= hi
    if exotic:
        n, ok = _exotic(domain, exotic, hi, n, ok)
    return np.where(ok, n, 0).astype(np.int64)


def count_bounds(domain: CountDomain, coupled: list[Coupled], size: int,
                 limit: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, list[Coupled]]:
    """Per row, the interval ``[lo, hi]`` of counts the range clauses (atleast/atmost/between) and ``limit``
    allow (``lo`` inf for a row with an unknown value), and the just/oneof/not clauses left to :func:`_exotic`.

    Count totals are exact: ``count × v ≥ t`` is ``count ≥ ⌈t / v⌉`` in integers (v and t whole, ≤ 2**53, so the
    int64 division is exact); memory and prices keep the relative slack of :func:`.filter.tolerance`."""
    lo = np.full(size, float(domain.first))
    hi = np.full(size, float(domain.last))
    if limit is not None:
        hi = np.fmin(hi, np.asarray(limit, dtype=np.float64))  # fmin: NaN (unlimited) leaves the cap as it is
    exotic: list[Coupled] = []
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for c in coupled:
            q = c.clause.qualifier
            v = np.asarray(c.per_node, dtype=np.float64)
            off = np.broadcast_to(np.asarray(c.offset, dtype=np.float64), v.shape)
            if q == "unrestricted":
                continue
            bad = np.isnan(v) | np.isnan(off)
            zero = v == 0
            exact = exact_total(c.clause) and not off.any()
            if exact:
                vals = _whole_values(c.clause)
                if q in ("atleast", "between"):
                    lo = np.maximum(lo, _exact_ceil(vals[0], v))
                if q in ("atmost", "between"):
                    hi = np.minimum(hi, _exact_floor(vals[-1], v))
            else:
                vals = [float(x) for x in c.clause.values]
                if q in ("atleast", "between"):
                    need = vals[0] - tolerance(vals[0]) - off  # count × v ≥ need
                    lo = np.maximum(lo, np.where(zero, np.where(need <= 0, -np.inf, np.inf), np.ceil(need / v)))
                if q in ("atmost", "between"):
                    room = vals[-1] + tolerance(vals[-1]) - off  # count × v ≤ room
                    hi = np.minimum(hi, np.where(zero, np.where(room >= 0, np.inf, -np.inf), np.floor(room / v)))
            if q in ("just", "oneof", "not"):
                exotic.append(c)
            lo = np.where(bad, np.inf, lo)
    return lo, hi, exotic


def _as_int(v: np.ndarray) -> np.ndarray:
    """Whole per-node values as int64 (1 where the value is not a positive whole number: the caller masks it)."""
    whole = (v > 0) & (v == np.floor(v)) & (v <= MAX_COUNT)
    out: np.ndarray = np.where(whole, v, 1).astype(np.int64)
    return out


def _exact_ceil(t: float, v: np.ndarray) -> np.ndarray:
    """The smallest count with ``count × v ≥ t``, with no slack, per row (-inf: every count; inf: none).  A whole
    v gives a whole total, so ``t`` rounds up and the division is in integers; a share of an accelerator (1/8: a
    binary fraction) divides exactly in floats."""
    vi = _as_int(v)
    q = (-((-math.ceil(t)) // vi)).astype(np.float64)  # ≤ 2**53: exact as float64
    share = np.ceil(t / v)
    return np.where(v == 0, -np.inf if t <= 0 else np.inf, np.where(vi == v, q, share))


def _exact_floor(t: float, v: np.ndarray) -> np.ndarray:
    """The largest count with ``count × v ≤ t``, with no slack, per row (inf: every count; -inf: none)."""
    vi = _as_int(v)
    q = (math.floor(t) // vi).astype(np.float64)
    share = np.floor(t / v)
    return np.where(v == 0, np.inf if t >= 0 else -np.inf, np.where(vi == v, q, share))


# How many rounds the vectorized search of :func:`_exotic` takes before the rows still undecided (long chains of
# excluded or empty bands, which only contrived value lists make) are decided by listing their candidates.
ROUNDS = 48
_CELLS = 1 << 21  # candidate-matrix cells per chunk in that last step: bounded memory


@dataclass(frozen=True)
class _Part:
    """One just/oneof/not total over the undecided rows: its values sorted once, and each row's per-node value and
    offset.  ``exact`` (a count total, no offset): whole numbers compared exactly; else the relative slack."""

    keep: bool  # just/oneof: the counts whose total is near a value; not: the others
    exact: bool
    values: np.ndarray  # sorted, distinct (int64 when exact)
    slack: np.ndarray  # tolerance(value), float only
    v: np.ndarray
    off: np.ndarray
    listed: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, compare=False)

    @staticmethod
    def of(c: Coupled, rows: np.ndarray) -> _Part:
        v = np.asarray(c.per_node, dtype=np.float64)[rows]
        off = np.broadcast_to(np.asarray(c.offset, dtype=np.float64), np.shape(c.per_node))[rows]
        keep = c.clause.qualifier != "not"
        count = exact_total(c.clause)
        if count and not off.any() and bool((v == np.floor(v)).all()):
            whole = np.unique(np.array([x for x in _whole_values(c.clause) if x == math.floor(x)], dtype=np.int64))
            return _Part(keep, True, whole, np.zeros(0), v, off)
        vals = np.unique(np.array([float(x) for x in c.clause.values], dtype=np.float64))
        # memory and prices: tolerance(value) element-wise; a count total over accelerator shares (1/8: binary
        # fractions, exact in floats): no slack
        slack = np.zeros(len(vals)) if count else RELATIVE_TOLERANCE * np.maximum(1.0, np.abs(vals))
        return _Part(keep, False, vals, slack, v, off)

    def near(self, y: np.ndarray) -> np.ndarray:
        """Float totals: whether ``|y - t| ≤ tolerance(t)`` for some value t (NaN: never) — :func:`number_test`'s
        rule, with the two values either side of y only (for values ≥ 0 the nearest is the only one that can be
        close enough: the slack grows with the value)."""
        t, s = self.values, self.slack
        if len(t) == 0:
            return np.zeros(np.shape(y), dtype=bool)
        k = np.searchsorted(t, y)
        a = np.clip(k - 1, 0, len(t) - 1)
        b = np.minimum(k, len(t) - 1)
        with np.errstate(invalid="ignore"):
            hit: np.ndarray = (np.abs(y - t[a]) <= s[a]) | (np.abs(y - t[b]) <= s[b])
        return hit

    def allowed(self, n: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Whether counts ``n`` (whole floats; a matrix with one row per element of ``at``) pass this clause,
        for the rows ``at`` (positions into the part's rows)."""
        shape = (-1,) + (1,) * (n.ndim - 1)
        v, off = self.v[at].reshape(shape), self.off[at].reshape(shape)
        if self.exact:
            t = self.values
            with np.errstate(invalid="ignore", over="ignore"):
                total = n * v  # exact where ≤ 2**53; anything larger is above every value
                small = np.isfinite(total) & (total <= MAX_COUNT)
                ti = np.where(small, total, -1).astype(np.int64)
                k = np.minimum(np.searchsorted(t, ti), len(t) - 1)
                hit = small & (t[k] == ti) if len(t) else np.zeros(n.shape, dtype=bool)
        else:
            with np.errstate(invalid="ignore", over="ignore"):
                total = n * v + off
            hit = self.near(total)
        if self.keep:
            return hit
        out: np.ndarray = ~hit & ~np.isnan(n * v + off)
        return out

    def next(self, x: np.ndarray, at: np.ndarray) -> np.ndarray:
        """Per row ``at``: a count ≥ ``x`` that is at most the smallest count ≥ ``x`` this clause allows, equal to
        ``x`` exactly when ``x`` is allowed (inf: none is).  Each call passes at least one band, so repeating it
        with the other clauses (:func:`_exotic`) reaches the smallest count they all allow."""
        if self.exact:
            return self._next_exact(x, at)
        v, off = self.v[at], self.off[at]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            y = x * v + off
            inside = self.near(y)
            t, s = self.values, self.slack
            last = len(t) - 1
            if self.keep:  # the first band at or after y holding a count: try its first count and the next band's
                b = np.searchsorted(t + s, y)  # the first band whose upper edge is at or above y
                best = np.full(len(x), np.inf)
                for j in (b, b + 1):
                    jj = np.minimum(j, last)
                    e = np.ceil((t[jj] - s[jj] - off) / v)  # the first count reaching band j (± rounding)
                    for cand in (np.maximum(e - 1, x + 1), np.maximum(e, x + 1)):
                        good = (j <= last) & self.near(cand * v + off) & (cand < best)
                        best = np.where(good, cand, best)
                j = np.minimum(b + 2, last)
                beyond = np.where(b + 2 <= last, np.maximum(np.ceil((t[j] - s[j] - off) / v) - 1, x + 1), np.inf)
                out = np.where(inside, x, np.where(np.isfinite(best), best, beyond))
            else:  # x inside a band: the first count past it (or a lower bound of it)
                k = np.clip(np.searchsorted(t - s, y, side="right") - 1, 0, last)
                edge = np.floor((t[k] + s[k] - off) / v) + 1
                first = np.maximum(edge - 1, x + 1)
                out = np.where(inside, np.where(self.near(first * v + off), np.maximum(edge, x + 1), first), x)
            zero = v == 0  # a constant total: every count or none
            const = self.near(off) == self.keep
            result: np.ndarray = np.where(zero, np.where(const, x, np.inf), out)
        return result

    def _next_exact(self, x: np.ndarray, at: np.ndarray) -> np.ndarray:
        """:meth:`next` for a count total: per distinct per-node value v, the counts whose total is a value
        (``t / v`` for the values v divides) are listed once; then one search per row.  For ``not``, runs of
        consecutive excluded counts are jumped over whole."""
        out = np.array(x, dtype=np.float64)
        v = self.v[at]
        uniq, inverse = np.unique(v, return_inverse=True)
        for u, value in enumerate(uniq):
            sel = np.flatnonzero(inverse.ravel() == u)
            xs = x[sel]
            if value == 0:  # the total is 0 for every count
                hit = bool(len(self.values)) and self.values[0] == 0
                out[sel] = np.where(hit == self.keep, xs, np.inf)
                continue
            listed, run_end = self._listed(int(value))
            xi = np.where(np.isfinite(xs), xs, MAX_COUNT + 2).astype(np.int64)
            i = np.searchsorted(listed, xi)
            ii = np.minimum(i, max(len(listed) - 1, 0))
            if self.keep:
                out[sel] = np.where(i < len(listed), listed[ii].astype(np.float64) if len(listed) else np.inf,
                                    np.inf)
            else:
                hit = (i < len(listed)) & (listed[ii] == xi) if len(listed) else np.zeros(len(xs), dtype=bool)
                out[sel] = np.where(hit, run_end[ii].astype(np.float64) + 1 if len(listed) else xs, xs)
            out[sel] = np.where(np.isfinite(xs), out[sel], np.inf)
        return out

    def _listed(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """The counts whose total ``count × v`` is one of the values, ascending, and for each the last count of
        its run of consecutive ones."""
        if v in self.listed:
            return self.listed[v]
        t = self.values
        listed = t[(t % v == 0) & (t > 0)] // v
        breaks = np.flatnonzero(np.diff(listed) != 1)
        ends = np.r_[breaks, len(listed) - 1] if len(listed) else np.zeros(0, dtype=np.int64)
        run = np.r_[0, np.cumsum(np.diff(listed) != 1)] if len(listed) else np.zeros(0, dtype=np.int64)
        run_end = listed[ends][run] if len(listed) else listed
        self.listed[v] = (listed, run_end)
        return listed, run_end

    def left_ends(self, at: np.ndarray) -> np.ndarray:
        """Per row ``at``: every count where this clause's allowed set can begin (a matrix, one column per value):
        the first count of each band, for ``not`` the first count after one (and the count before, against
        rounding).  The smallest allowed count of several clauses is the smallest allowed count at or after one
        of these (or the lower bound)."""
        v, off = self.v[at, None], self.off[at, None]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if self.exact:
                t = self.values[None, :].astype(np.float64)
                e = np.ceil(t / v) if self.keep else np.floor(t / v) + 1
                return np.where(v == 0, -np.inf, e)
            t, s = self.values[None, :], self.slack[None, :]
            e = np.ceil((t - s - off) / v) if self.keep else np.floor((t + s - off) / v) + 1
            e = np.where(v == 0, -np.inf, e)
            out: np.ndarray = np.concatenate([e, e - 1], axis=1)
        return out


def _exotic(domain: CountDomain, exotic: list[Coupled], hi: np.ndarray, n: np.ndarray,
            ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest count for rows with ``just``/``oneof``/``not`` totals, without listing the counts.

    Each such clause allows a union of count intervals: for ``just``/``oneof`` one band per value (the counts whose
    total is the value, within the slack for memory and prices), for ``not`` the gaps between the excluded bands.
    Starting from the first count the range clauses allow (``n``), every clause and the domain in turn move the
    count to the smallest one they allow at or after it (:meth:`_Part.next`: a binary search in the values,
    sorted once); when none moves it, it is the answer.  So a row costs a few searches, not one test per value:
    time O((rows + values) · log values) and memory O(rows + values).  Rows still moving after :data:`ROUNDS`
    rounds (a value list built to make a long chain of excluded counts) are decided by the candidates: the
    smallest allowed count at or after a left end of some clause's intervals, in bounded chunks."""
    rows = np.flatnonzero(ok)
    if len(rows) == 0:
        return n, ok
    # rows alike in everything the search reads (start, cap, each clause's per-node value and offset) have the same
    # answer: solve one of each (catalog rows share a few memory sizes and vCPU counts)
    keys = [n[rows].astype(np.float64), np.asarray(hi[rows], dtype=np.float64)]
    for c in exotic:
        keys.append(np.asarray(c.per_node, dtype=np.float64)[rows])
        keys.append(np.broadcast_to(np.asarray(c.offset, dtype=np.float64), np.shape(c.per_node))[rows])
    order = np.lexsort(keys[::-1])
    change = np.zeros(len(rows), dtype=bool)
    change[0] = True
    for k in keys:
        change[1:] |= k[order][1:] != k[order][:-1]
    group = np.empty(len(rows), dtype=np.int64)
    group[order] = np.cumsum(change) - 1
    reps = rows[order[change]]  # one row of each group
    parts = [_Part.of(c, reps) for c in exotic]
    x = n[reps].astype(np.float64)
    top = np.asarray(hi[reps], dtype=np.float64)
    todo = np.arange(len(reps))
    for _ in range(ROUNDS):
        if len(todo) == 0:
            break
        start = x[todo]
        y = start
        for p in parts:
            y = domain.smallest(p.next(y, todo))
        y = np.where(y <= top[todo], y, np.inf)
        x[todo] = y
        todo = todo[(y != start) & np.isfinite(y)]
    if len(todo):
        x[todo] = _listed_candidates(domain, parts, todo, x[todo], top[todo])
    x = x[group]
    n = n.copy()
    ok = ok.copy()
    n[rows] = np.where(np.isfinite(x), x, 0)
    ok[rows] = np.isfinite(x)
    return n, ok


def allows(c: Coupled, n: np.ndarray) -> np.ndarray:
    """Whether each count of ``n`` (one per row of ``c``; whole floats) meets the just/oneof/not total ``c``, by the
    rule :func:`min_counts` uses (a NaN total never does): for a caller that tests a few (count, offset) pairs
    itself instead of searching the counts, such as the ManagerWorkers pairing of a ``@not`` budget."""
    at = np.arange(len(n))
    out: np.ndarray = _Part.of(c, at).allowed(np.asarray(n, dtype=np.float64), at)
    return out


def _listed_candidates(domain: CountDomain, parts: list[_Part], todo: np.ndarray, x: np.ndarray,
                       top: np.ndarray) -> np.ndarray:
    """The smallest count ≥ ``x`` (and ≤ ``top``) every clause allows, for the rows ``todo``: every left end of
    every clause's intervals is a candidate (moved to the domain), each checked against every clause; in chunks of
    rows so that memory stays bounded."""
    width = 1 + sum(len(p.values) * (1 if p.exact else 2) for p in parts)
    step = max(1, _CELLS // width)
    out = np.full(len(todo), np.inf)
    for a in range(0, len(todo), step):
        at = todo[a:a + step]
        lo = x[a:a + step, None]
        starts = [lo] + [p.left_ends(at) for p in parts]
        cand = domain.smallest(np.maximum(np.concatenate(starts, axis=1), lo))
        valid = np.isfinite(cand) & (cand <= top[a:a + step, None])
        for p in parts:
            valid &= p.allowed(np.where(valid, cand, 0.0), at)
        out[a:a + step] = np.where(valid, cand, np.inf).min(axis=1)
    return out
