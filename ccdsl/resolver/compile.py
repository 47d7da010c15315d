"""Compile a contract's roles over candidate catalog rows into a visible Z3 problem — and the way back.

The problem (SMT-LIB 2 text, kept on the :class:`Problem` so it can be printed and inspected):

- ``k`` (Int) picks a worker *class* (a representative catalog row), ``n`` (Int) the worker count, ``km`` the
  manager class of a ManagerWorkers cluster; ``cost = wcost + mcost`` is the cluster price per hour.
- Every clause the user wrote is a Boolean literal ``c<i>`` asserted only as an assumption, so an unsat core names
  clauses.  A per-node clause a class fails becomes ``(= k i) → ¬c<i>``; a cluster total is a Real
  ``total<j>`` with ``(= k i) → total<j> = n·v_i`` per class and ``c<j> → total<j> ⋈ bound`` once (so a list of
  K values is written once, not once per class); the budget is ``c<j> → cost ⋈ bound``; ``node_count`` a
  constraint on ``n`` (its default, 1, is the pseudo-clause ``cdefault``).  Manager and workers sit in the same
  provider and region (``wloc = mloc``).
- A class whose row has a finite ``max_nodes`` bounds ``n`` by it: ``(= k i) → n ≤ max_nodes``, a fact rather
  than a clause (no literal), so a count the hosts cannot give shows up in the core as the clauses that force
  the count and the row (``node_count``, ``node_provider``, …).  A manager on the workers' own row takes one node:
  ``(= k i) ∧ (= km j) → n ≤ max_nodes − 1``.
- A row with an unknown price (NaN) appears only in the problems that explain a conflict (the optimization is
  given priced rows only): its cost is left free, and it meets no budget (``¬c<i>`` for
  ``cluster_price_per_hour``, also when it is the manager); ``node_price`` already fails for it as a node clause.
- Comparisons carry the same relative slack (1e-9) as the vectorized filters, with exact rationals for the
  decimal values of the catalog and the contract (``0.526`` is 263/500), so Z3 and numpy agree on boundaries.
  Node counts are whole numbers and compared exactly (:func:`count_formula`), and so are count totals (vCPUs,
  accelerators: :func:`qualify`), as in :mod:`.counts`.

Classes keep the problem small without changing its answer: rows are grouped by everything the problem can see
(failed clauses, location when the manager couples it, values the clauses compare exactly) and only the Pareto
frontier of each group is kept — a row is dropped when another row of its group is no more expensive and at least
as good for every cluster total (higher for lower bounds, lower for upper bounds) and has at least as many
nodes (``max_nodes``; see :func:`make_classes` for ManagerWorkers).  Every count feasible for the
dropped row is feasible for its dominator at no higher price, for every subset of the clauses, so both the
optimum and the unsat cores are preserved.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from ccdsl.contract import Clause, Contract, Value
from ccdsl.parameters import PARAMETERS, SMT_COUNTED, asked
from ccdsl.resolver.filter import RELATIVE_TOLERANCE, column_of
from ccdsl.resolver.view import CatalogView, nan_as

BUDGET = "cluster_price_per_hour"
DEFAULT_COUNT = "cdefault"
_TOL = Fraction(RELATIVE_TOLERANCE).limit_denominator(10**12)  # exactly 1e-9
_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")  # what a problem's comment leaves out (see comment())
_UNLIMITED = 1e18  # max_nodes NaN as a "better" column (finite: the Pareto sort adds columns up)


@dataclass(frozen=True)
class RoleSpec:
    """One role's clauses, split by what they constrain."""

    role: str | None  # None (peer workers), "worker" or "manager"
    node: tuple[Clause, ...]  # per-node filters
    coupled: tuple[Clause, ...]  # cluster totals and the budget: count × per-node value
    count: Clause | None  # node_count (None: the default 1)
    fixed: int | None = None  # the manager is one node


def role_specs(contract: Contract) -> tuple[RoleSpec, RoleSpec | None]:
    """(workers, manager or None) of a contract."""
    manager_workers = contract.cluster_type == "ManagerWorkers"
    workers = _spec(contract.clauses_for("worker" if manager_workers else None),
                    "worker" if manager_workers else None)
    manager = _spec(contract.clauses_for("manager"), "manager", fixed=1) if manager_workers else None
    return workers, manager


def _spec(clauses: tuple[Clause, ...], role: str | None, fixed: int | None = None) -> RoleSpec:
    node, coupled, count = [], [], None
    clauses = counted_columns(clauses)
    for c in clauses:
        p = PARAMETERS.get(c.parameter)
        if p is None or p.kind == "config":
            continue
        if p.scope == "node":
            node.append(c)
        elif p.scope == "total":
            coupled.append(c)
        elif c.parameter == "node_count":
            count = c
    implied = whole_accelerator(clauses, role)
    if implied is not None:
        node.append(implied)
    if fixed == 1:  # a single node: its "totals" are per-node bounds
        node, coupled = node + coupled, []
    return RoleSpec(role, tuple(node), tuple(coupled), count, fixed)


COUNTING_CORES = " (counting cores: smt => false)"


def counted_columns(clauses: tuple[Clause, ...]) -> tuple[Clause, ...]:
    """One role's clauses with the column each vCPU clause reads: ``cores`` when the role says ``smt => false``
    (one thread per core: what a node then has), else the parameter's own.  Set afresh on every call, so a contract
    rebuilt from a role's clauses without its ``smt`` clause (a conflict being minimized) counts vCPUs again.

    Such a clause's text says so (:data:`COUNTING_CORES`): it is one literal of the problem, whose meaning depends
    on the ``smt`` clause, so a conflict may name it without naming ``smt => false``."""
    off = asked(clauses, "smt") is False
    out = []
    for c in clauses:
        if c.parameter in SMT_COUNTED:
            span = c.span
            if off and span is not None and span.text and not span.text.endswith(COUNTING_CORES):
                span = replace(span, text=span.text + COUNTING_CORES)
            c = replace(c, column=SMT_COUNTED[c.parameter] if off else "", span=span)
        out.append(c)
    return tuple(out)


# Clauses that ask for an accelerator.  Without an accelerator_count clause they mean at least one whole one: a
# share of a GPU (g6f.large: 1/8 of an L4) competes only when accelerator_count admits it (@atleast(0.125)).
ACCELERATOR_PARAMETERS = ("accelerator", "accelerator_architecture", "accelerator_manufacturer", "accelerator_type",
                          "accelerator_memory", "cluster_accelerator_count", "cluster_accelerator_memory")


def whole_accelerator(clauses: tuple[Clause, ...], role: str | None) -> Clause | None:
    """``accelerator_count => @atleast(1)``, implied by the first clause that asks for an accelerator (a symbol
    it must be, a positive lower bound) when the role has no accelerator_count clause; None otherwise."""
    if any(c.parameter == "accelerator_count" for c in clauses):
        return None
    for c in clauses:
        if c.parameter not in ACCELERATOR_PARAMETERS:
            continue
        kind = PARAMETERS[c.parameter].kind
        if (kind == "symbol" and c.qualifier in ("just", "oneof")) or (
                kind != "symbol" and c.qualifier in ("atleast", "between", "just", "oneof")
                and min(float(v) for v in c.values) > 0):
            text = f"accelerator_count => @atleast(1) (implied by {c.text})"
            span = replace(c.span, text=text) if c.span is not None else None
            return Clause("accelerator_count", "atleast", (1,), role, span)
    return None


def coupled_column(clause: Clause) -> str:
    return column_of(clause)


# --------------------------------------------------------------------------------------------- classes (Pareto)

@dataclass(frozen=True)
class Classes:
    """Representative rows of one role and what the problem needs to know about each."""

    rows: np.ndarray  # catalog view row of each class
    price: np.ndarray
    location: np.ndarray
    values: tuple[np.ndarray, ...]  # per coupled clause: per-node value
    fails: tuple[tuple[int, ...], ...]  # per class: indexes (into the literal table) of failed clauses
    limit: np.ndarray  # per class: max_nodes of its row (NaN = unlimited)


def pareto(group: np.ndarray, better: np.ndarray, presorted: np.ndarray | None = None) -> np.ndarray:
    """Indexes of rows not dominated within their group.  ``better``: (m, d), larger is better in every column.

    Row j is dominated by row i of the same group when ``better[i] >= better[j]`` everywhere and i is strictly
    better somewhere; of exact duplicates the first is kept.  Rows are sorted so that every dominator comes before
    what it dominates (first column descending, then the sum of the others descending); then a row is dominated
    iff a kept row dominates it (dominance is transitive).  One and two columns take a sort and a running
    maximum; more columns are checked in chunks, first against the frontier so far (which removes almost all),
    then the few survivors among themselves.

    ``presorted`` (optional): that sort without the groups, ``sort_order(better)``, for instance restricted
    from a per-view order (:func:`presorted_rows`); then only the group ids are sorted, stably.
    """
    m, d = better.shape
    if m <= 1:
        return np.arange(m)
    one_group = bool((group == group[0]).all())
    if d == 1 and one_group:  # one group, one column (per-node contracts): the first best row
        return np.array([int(np.argmax(better[:, 0]))])
    if d == 1 and int(group.min()) >= 0 and int(group.max()) < 4 * m:  # dense group ids (as group_ids makes)
        return _first_best(group, better[:, 0])
    # No separate pass for exact duplicates: the sort is stable, so of equal rows the first comes first, and the
    # frontier test drops the later ones as dominated (>= everywhere).  (A row-wise np.unique was most of a
    # resolve's time on the 22k-row catalog.)
    first = np.arange(m)
    g, b = group, better
    if presorted is None:
        order = np.lexsort((-_rest(b), -b[:, 0], g))
    elif one_group:
        order = presorted
    else:
        ids = g[presorted]
        if len(ids) and int(ids.min()) >= -(2**15) and int(ids.max()) < 2**15:
            ids = ids.astype(np.int16)  # 16-bit keys: numpy's stable sort is a radix sort
        order = presorted[np.argsort(ids, kind="stable")]
    g, b, first = g[order], b[order], first[order]
    keep = np.zeros(len(g), dtype=bool)
    bounds = np.flatnonzero(np.diff(g)) + 1
    starts, ends = np.r_[0, bounds], np.r_[bounds, len(g)]
    single = ends - starts == 1  # a group of one row keeps it (a ManagerWorkers budget: thousands of such groups)
    keep[starts[single]] = True
    for lo, hi in zip(starts[~single], ends[~single]):
        keep[lo:hi] = _frontier(b[lo:hi])
    return np.sort(first[keep])


def _first_best(group: np.ndarray, column: np.ndarray) -> np.ndarray:
    """:func:`pareto` of one column: each group's first row of its largest value, found without sorting the rows
    (a maximum per group, then the first row that reaches it).  ManagerWorkers classes without totals are this
    case: the cheapest row of each place, out of ~13,000 rows over every region."""
    top = np.full(int(group.max()) + 1, -np.inf)
    np.maximum.at(top, group, column)
    hit = np.flatnonzero(column == top[group])
    _, first = np.unique(group[hit], return_index=True)  # a stable sort: the first row of each group
    found: np.ndarray = np.sort(hit[first])
    return found


def _rest(b: np.ndarray) -> np.ndarray:
    """The second sort key of :func:`pareto`: the sum of every column but the first (zeros for one column)."""
    rest: np.ndarray = b[:, 1:].sum(axis=1) if b.shape[1] > 1 else np.zeros(len(b))
    return rest


def sort_order(better: np.ndarray) -> np.ndarray:
    """The order :func:`pareto` sorts one group's rows in: first column descending, then the sum of the others
    descending, ties in row order (a stable sort)."""
    return np.lexsort((-_rest(better), -better[:, 0]))


# Below this many rows a direct sort is cheaper than restricting a per-view order (which costs a few passes over
# the whole view); above it the restriction wins (~0.1 ms against ~1 ms for 11k rows of the 22.5k-row catalog).
PRESORT_MIN = 2048


def presorted_rows(view: CatalogView, rows: np.ndarray, key: tuple[object, ...],
                   build: Callable[[], np.ndarray]) -> np.ndarray | None:
    """Positions into ``rows`` in the order of a per-view order of every row (``build()``, memoized on the view
    under ``key``), or None when ``rows`` is too short to gain or not strictly ascending.

    Why it is the same order as sorting ``rows`` directly: the per-view order is a stable sort of keys computed
    row by row, so restricted to a subset it is the stable sort of that subset's keys, ties in view-row order —
    which is ``rows`` order because ``rows`` ascends."""
    if len(rows) < PRESORT_MIN or not bool((rows[1:] > rows[:-1]).all()):
        return None
    full = view.memo(key, build)
    wanted = np.zeros(view.size, dtype=bool)
    wanted[rows] = True
    position = np.empty(view.size, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    restricted: np.ndarray = position[full[wanted[full]]]
    return restricted


def _frontier(b: np.ndarray) -> np.ndarray:
    """Keep-mask of one group's rows, sorted as :func:`pareto` sorts them (no exact duplicates)."""
    m, d = b.shape
    if d == 1:
        keep = np.zeros(m, dtype=bool)
        keep[0] = True
        return keep
    if d == 2:  # cheaper rows first: a row survives iff it beats the best second column seen so far
        seen = np.maximum.accumulate(np.r_[-np.inf, b[:-1, 1]])
        keep = b[:, 1] > seen
        keep[0] = True  # the first (cheapest) row is undominated even when its value is unknown (-inf)
        return keep
    # Rows are decided in sorted order.  A slice of the undecided rows is first checked against the frontier so
    # far (cheap: column by column), then its first 512 survivors among themselves (quadratic, so bounded).  The
    # slice grows while the frontier catches nearly everything and shrinks when many rows survive it.
    keep = np.zeros(m, dtype=bool)
    frontier: np.ndarray = np.empty((0, d))
    start, size = 0, 32
    while start < m:
        idx = np.arange(start, min(start + size, m))
        if len(frontier):
            idx = idx[~_dominated(frontier, b[idx])]
        piece = idx[:512]
        sub = b[piece]
        ge = np.ones((len(sub), len(sub)), dtype=bool)  # ge[j, i]: i at least as good as j
        for col in range(d):
            ge &= sub[None, :, col] >= sub[:, None, col]
        dominated = (ge & np.tri(len(sub), k=-1, dtype=bool)).any(axis=1)  # only earlier rows can dominate
        survivors = piece[~dominated]
        keep[survivors] = True
        frontier = np.vstack([frontier, b[survivors]])
        if len(idx) > len(piece):  # more survivors than one piece: go on from the first one not decided
            start, size = int(idx[len(piece)]), max(32, size // 2)
        else:
            start, size = start + size, min(4 * size, 16384) if len(idx) * 8 < size else size
    return keep


def _dominated(frontier: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which ``rows`` some row of ``frontier`` is at least as good as in every column.  Compared column by column
    over (rows × frontier) blocks of at most 2**18 cells: element-wise work only, no reduction over the short
    column axis."""
    out = np.zeros(len(rows), dtype=bool)
    step = max(1, (1 << 18) // max(1, len(frontier)))
    for lo in range(0, len(rows), step):
        block = rows[lo:lo + step]
        hit = block[:, None, 0] <= frontier[None, :, 0]
        for col in range(1, rows.shape[1]):
            hit &= block[:, None, col] <= frontier[None, :, col]
        out[lo:lo + step] = hit.any(axis=1)
    return out


def group_ids(keys: list[np.ndarray], size: int) -> np.ndarray:
    """One integer per distinct combination of the key columns (column by column: 1-D sorts are fast, a row-wise
    ``np.unique(axis=0)`` is not)."""
    code = np.zeros(size, dtype=np.int64)
    for i, k in enumerate(keys):
        _, inverse = np.unique(k, return_inverse=True)
        if i == 0:  # already one integer per distinct value, 0, 1, ...
            code = inverse.ravel().astype(np.int64)
            continue
        code = code * (int(inverse.max(initial=0)) + 1) + inverse.ravel()
        _, code = np.unique(code, return_inverse=True)
        code = code.ravel()
    return code


def better_columns(view: CatalogView, rows: np.ndarray | slice, spec: RoleSpec, capacity: bool) -> np.ndarray:
    """The Pareto step's "larger is better" columns of ``rows`` (a slice: every row): the price negated, each
    cluster total bounded from below (as is) or above (negated), and with ``capacity`` the rows' ``max_nodes``
    (unlimited as a large finite number).  Unknown values are -inf: never better than anything."""
    cols: list[np.ndarray] = [-view.numbers["price_per_hour"][rows]]
    seen = {("price_per_hour", -1)}
    for c in spec.coupled:
        sign = {"atleast": 1, "atmost": -1}.get(c.qualifier)
        # a column already there (the budget bounds the price from above: the price again) adds nothing to
        # dominance, and one column fewer can be the difference between a linear pass and pairwise checks
        if sign is None or (coupled_column(c), sign) in seen:
            continue
        seen.add((coupled_column(c), sign))
        cols.append(sign * view.numbers[coupled_column(c)][rows])
    if capacity:
        limit = view.numbers["max_nodes"][rows]
        cols.append(np.where(np.isnan(limit), _UNLIMITED, limit))
    better: np.ndarray = nan_as(np.column_stack(cols), -np.inf)
    return better


def make_classes(view: CatalogView, rows: np.ndarray, spec: RoleSpec, fail_bits: np.ndarray | None,
                 group_location: bool, literal_of: dict[int, int], exact_price: bool = False) -> Classes:
    """Group and prune candidate ``rows`` of one role into problem classes.

    ``fail_bits`` (m, c) says which node clauses each row fails (None: all pass).  ``literal_of`` maps a node
    clause's position in ``spec.node`` to its literal index.  ``exact_price`` keeps every distinct price (for a
    manager when the budget has a lower bound, where a dearer manager can be the only way to meet it).

    Capacity (``max_nodes``): more nodes is better, so it is one more "better" column — a row is only dropped for
    one with at least as many nodes.  When the manager couples the roles (``group_location``), a limited row is
    never merged at all: whether it is the same row as the other role's choice decides its workers' limit, so it
    keeps its identity (limited rows are SSH hosts and host classes: few).
    """
    price = view.numbers["price_per_hour"][rows]
    limit = view.numbers["max_nodes"][rows]
    limited = ~np.isnan(limit)
    exact: list[np.ndarray] = [price] if exact_price else []
    values = []
    for c in spec.coupled:
        v = view.numbers[coupled_column(c)][rows]
        values.append(v)
        if c.qualifier not in ("atleast", "atmost", "unrestricted"):
            exact.append(v)
    keys: list[np.ndarray] = []
    any_limited = bool(limited.any())
    if any_limited and group_location:
        keys.append(np.where(limited, rows, -1).astype(np.float64))
    capacity = any_limited and not group_location  # max_nodes is a "better" column
    location = view.location[rows]
    if group_location:
        keys.append(location)
    if fail_bits is not None and fail_bits.shape[1]:
        # the failed clauses as the bits of integers, 52 clauses a key (exact as float64), by integer shifts: a
        # float matrix product would go through BLAS, whose threads burn CPU while they wait on a loaded machine
        for start in range(0, fail_bits.shape[1], 52):
            bits = np.zeros(len(rows), dtype=np.int64)
            for j in range(start, min(start + 52, fail_bits.shape[1])):
                bits |= fail_bits[:, j].astype(np.int64) << (j - start)
            keys.append(bits.astype(np.float64))
    keys.extend(exact)
    if group_location and len(keys) == 1:  # the place alone: its code already is a group id (no sort)
        group = location.astype(np.int64)
    else:
        group = group_ids([nan_as(k, -1.5) for k in keys], len(rows))
    better = better_columns(view, rows, spec, capacity)
    key = ("pareto", tuple((coupled_column(c), c.qualifier) for c in spec.coupled
                           if c.qualifier in ("atleast", "atmost")), capacity)
    presorted = None if better.shape[1] == 1 else presorted_rows(  # one column: pareto sorts nothing
        view, rows, key, lambda: sort_order(better_columns(view, slice(None), spec, capacity)))
    keep = pareto(group, better, presorted)
    fails: tuple[tuple[int, ...], ...]
    if fail_bits is None:
        fails = tuple(() for _ in keep)
    else:
        fails = tuple(tuple(literal_of[int(j)] for j in np.flatnonzero(fail_bits[i])) for i in keep)
    return Classes(rows[keep], price[keep], location[keep], tuple(v[keep] for v in values), fails, limit[keep])


# --------------------------------------------------------------------------------------------- the Z3 problem

@dataclass(frozen=True)
class Literal:
    """A tracked clause: its SMT name, the clause (None for the default node count) and its role."""

    name: str
    clause: Clause | None
    role: str | None


@dataclass(frozen=True)
class Problem:
    """SMT-LIB text plus the way back: literal names → clauses, class indexes → catalog rows."""

    text: str
    literals: tuple[Literal, ...]
    worker: Classes
    manager: Classes | None
    cap: int

    def decode(self, model: Any, terms: dict[str, Any] | None = None) -> tuple[int, int, int]:  # z3 is untyped
        """A Z3 model back to catalog view rows: (worker row, node count, manager row or -1).  ``terms``: the
        constants ``k``, ``n`` and ``km`` of the model's context, when the caller has them already."""
        import z3

        if terms is None:
            terms = {"k": z3.Int("k", model.ctx), "n": z3.Int("n", model.ctx), "km": z3.Int("km", model.ctx)}
        k = model.eval(terms["k"]).as_long()
        n = model.eval(terms["n"]).as_long()
        manager = -1
        if self.manager is not None:
            manager = int(self.manager.rows[model.eval(terms["km"]).as_long()])
        return int(self.worker.rows[k]), int(n), manager


def compile_problem(workers: RoleSpec, worker_classes: Classes, manager: RoleSpec | None,
                    manager_classes: Classes | None, literals: tuple[Literal, ...], literal_index: dict[int, int],
                    cap: int, name: Callable[[int], str] | None = None) -> Problem:
    """Write the SMT problem.  ``literal_index`` maps ``id(clause)`` to its literal; ``name`` (optional) labels a
    catalog row in the comments, so the printed problem reads as what it decides."""
    out = ["(declare-const n Int)", "(declare-const k Int)", "(declare-const wcost Real)",
           "(declare-const mcost Real)", "(declare-const cost Real)", "(declare-const wloc Int)"]
    out += [f"(declare-const {lit.name} Bool) ; "
            f"{comment(lit.clause.text) if lit.clause else 'node_count => 1 (default)'}" for lit in literals]
    out.append(f"(assert (and (>= n 1) (<= n {cap})))")
    out.append(f"(assert (and (>= k 0) (< k {len(worker_classes.rows)})))")
    out.append("(assert (= cost (+ wcost mcost)))")
    nreal = "(to_real n)"
    if workers.count is not None:
        out.append(f"(assert (=> {literals[literal_index[id(workers.count)]].name} "
                   f"{count_formula(workers.count)}))")
    else:
        out.append(f"(assert (=> {DEFAULT_COUNT} (= n 1)))")
    coupled_lits = [literals[literal_index[id(c)]].name for c in workers.coupled]
    # each cluster total is one Real, defined by the chosen class, and each clause is asserted once on it: a
    # @oneof/@not of K values is K comparisons, not K per class (the budget's total is ``cost`` itself)
    totals = [("cost" if c.parameter == BUDGET else f"total{j}") for j, c in enumerate(workers.coupled)]
    out += [f"(declare-const {t} Real)" for t in totals if t != "cost"]
    whole = [bool(np.all(np.isnan(v) | (v == np.floor(v)))) for v in worker_classes.values]  # shares: not whole
    out += [f"(assert (=> {lit} {qualify(c, t, w)}))"
            for c, lit, t, w in zip(workers.coupled, coupled_lits, totals, whole)]
    # the classes' arrays as Python lists: a problem reads every element once, and a numpy scalar costs more
    wrows, wprice, wloc, wlimit = (a.tolist() for a in (worker_classes.rows, worker_classes.price,
                                                         worker_classes.location, worker_classes.limit))
    wvalues = [v.tolist() for v in worker_classes.values]
    for i, row in enumerate(wrows):
        pick = f"(= k {i})"
        if name is not None:
            out.append(f"; k = {i}: {comment(name(int(row)))}")
        facts = [f"(= wloc {int(wloc[i])})"]
        if not math.isnan(wprice[i]):  # unknown: free (only conflicts see such rows), no budget below
            facts.insert(0, f"(= wcost (* {num(wprice[i])} {nreal}))")
        if not math.isnan(wlimit[i]):  # a fact of the catalog, not a clause: no literal
            facts.append(f"(<= n {int(wlimit[i])})")
        facts += [f"(not {literals[j].name})" for j in worker_classes.fails[i]]
        for lit, v, total in zip(coupled_lits, wvalues, totals):
            if math.isnan(v[i]):
                facts.append(f"(not {lit})")
            elif total != "cost":  # the budget's total is wcost + mcost
                facts.append(f"(= {total} (* {num(v[i])} {nreal}))")
        out.append(f"(assert (=> {pick} (and {' '.join(facts)})))")
    if manager is None or manager_classes is None:
        out.append("(assert (= mcost 0.0))")
    else:
        out += ["(declare-const km Int)", "(declare-const mloc Int)",
                f"(assert (and (>= km 0) (< km {len(manager_classes.rows)})))", "(assert (= wloc mloc))"]
        mrows, mprice, mloc = (a.tolist() for a in (manager_classes.rows, manager_classes.price,
                                                    manager_classes.location))
        for j, row in enumerate(mrows):
            if name is not None:
                out.append(f"; km = {j}: {comment(name(int(row)))}")
            facts = [f"(= mloc {int(mloc[j])})"]
            if math.isnan(mprice[j]):  # an unknown manager price meets no budget
                facts += [f"(not {lit})" for c, lit in zip(workers.coupled, coupled_lits) if c.parameter == BUDGET]
            else:
                facts.insert(0, f"(= mcost {num(mprice[j])})")
            facts += [f"(not {literals[x].name})" for x in manager_classes.fails[j]]
            out.append(f"(assert (=> (= km {j}) (and {' '.join(facts)})))")
        # the manager on the workers' own limited row takes one of its nodes
        worker_class = {int(r): i for i, r in enumerate(wrows)}
        for j, row in enumerate(mrows):
            w = worker_class.get(int(row))
            if w is not None and not math.isnan(wlimit[w]):
                out.append(f"(assert (=> (and (= k {w}) (= km {j})) (<= n {int(wlimit[w]) - 1})))")
    return Problem("\n".join(out), literals, worker_classes, manager_classes, cap)


@functools.lru_cache(maxsize=1 << 12)
def comment(text: str) -> str:
    """``text`` made safe for a ``;`` comment of the problem: one line of printable ASCII.  A comment ends at the
    line break, so a clause written over several lines (or a catalog name holding one) would otherwise hand the
    rest of its text to Z3 as commands (issue 18).  Runs of whitespace become one space (the clause reads as
    written on one line); any other character outside printable ASCII is written as its Python escape."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), " ".join(text.split()))


def count_formula(clause: Clause) -> str:
    """A node_count clause on the Int ``n``: whole numbers compared exactly (no slack), as :mod:`.counts` does."""
    q, vals = clause.qualifier, exact_values(clause.values)
    whole = [int(v) for v in vals if v.denominator == 1]
    if q == "unrestricted":
        return "true"
    if q == "atleast":
        return f"(>= n {math.ceil(vals[0])})"
    if q == "atmost":
        return f"(<= n {math.floor(vals[0])})"
    if q == "between":
        return f"(and (>= n {math.ceil(vals[0])}) (<= n {math.floor(vals[1])}))"
    return _listed(q, _equal_runs("n", whole[:1 if q == "just" else None]))


def qualify(clause: Clause, term: str, whole: bool = True) -> str:
    """The clause's qualifier applied to an SMT real term, with the filters' relative slack — none for a count
    total (vCPUs, accelerators: whole numbers compared exactly, as :mod:`.counts` does)."""
    q, vals = clause.qualifier, clause.values
    if PARAMETERS[clause.parameter].kind == "count":
        return _exact_count(q, exact_values(vals), term, whole)
    if q == "unrestricted":
        return "true"
    if q == "atleast":
        return f"(>= {term} {_bound(vals[0], -1)})"
    if q == "atmost":
        return f"(<= {term} {_bound(vals[0], +1)})"
    if q == "between":
        return f"(and (>= {term} {_bound(vals[0], -1)}) (<= {term} {_bound(vals[1], +1)}))"
    near = [f"(and (>= {term} {_bound(v, -1)}) (<= {term} {_bound(v, +1)}))" for v in vals]
    if q == "just":
        return near[0]
    if q == "oneof":
        return f"(or {' '.join(near)})"
    if q == "not":
        return f"(and {' '.join(f'(not {x})' for x in near)})" if near else "true"
    raise ValueError(q)


def _exact_count(q: str, vals: list[int | Fraction], term: str, whole_total: bool = True) -> str:
    """:func:`qualify` for a count total: ``term`` against the values exactly.  ``whole_total``: every class's
    per-node value is whole, so the total is too: a value that is not whole is never equal to it, and a run of
    consecutive values is a range.  Otherwise (accelerator shares: 1/8 of a GPU) each value is compared as is."""
    if q == "unrestricted":
        return "true"
    if q == "atleast":
        return f"(>= {term} {num(vals[0])})"
    if q == "atmost":
        return f"(<= {term} {num(vals[0])})"
    if q == "between":
        return f"(and (>= {term} {num(vals[0])}) (<= {term} {num(vals[1])}))"
    listed = vals[:1 if q == "just" else None]
    if whole_total:  # a value that is not whole is never equal to a whole total
        return _listed(q, _equal_runs(term, [int(v) for v in listed if v.denominator == 1], ".0"))
    return _listed(q, [f"(= {term} {num(v)})" for v in sorted(set(listed))])


def _equal_runs(term: str, whole: list[int], suffix: str = "") -> list[str]:
    """``term`` equal to one of the whole values, each run of consecutive values written as one range:
    ``@not(1, 2, …, 4096)`` is one comparison, not 4096.  ``suffix`` ``.0`` writes the numbers as Reals."""
    return [f"(= {term} {a}{suffix})" if a == b else f"(and (>= {term} {a}{suffix}) (<= {term} {b}{suffix}))"
            for a, b in runs(sorted(set(whole)))]


def _listed(q: str, equal: list[str]) -> str:
    """A ``just``/``oneof``/``not`` clause over its equalities: any of them, or none of them."""
    if q in ("just", "oneof"):
        return "false" if not equal else equal[0] if len(equal) == 1 else f"(or {' '.join(equal)})"
    if q == "not":
        return f"(and {' '.join(f'(not {x})' for x in equal)})" if equal else "true"
    raise ValueError(q)


def runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted distinct whole numbers as maximal runs of consecutive ones, ``(first, last)``."""
    out: list[tuple[int, int]] = []
    for v in values:
        if out and v == out[-1][1] + 1:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def exact(x: float | int | Fraction) -> Fraction:
    """The decimal a float was written as (``0.526`` → 263/500), exactly."""
    if isinstance(x, Fraction):
        return x
    if isinstance(x, (int, np.integer)):
        return Fraction(int(x))
    return Fraction(repr(float(x)))


def exact_values(values: tuple[Value, ...]) -> list[int | Fraction]:
    """A numeric clause's values, exactly: ints as they are (a Fraction per value costs ~5 µs: seconds for a list
    of a megabyte, issue 18), others as :func:`exact` writes them."""
    return [v if type(v) is int else exact(_number(v)) for v in values]


def _number(v: Value) -> float | int:
    """A numeric clause's value: the checker only lets numbers through."""
    if isinstance(v, str):
        raise TypeError(f"not a number: {v!r}")
    return v


def _slack(v: Value, sign: int) -> Fraction:
    e = exact(_number(v))
    return e + sign * _TOL * max(Fraction(1), abs(e))


@functools.lru_cache(maxsize=1 << 12)
def _bound(v: Value, sign: int) -> str:
    """``num(_slack(v, sign))``, remembered: :func:`qualify` writes the same bound for every class."""
    return num(_slack(v, sign))


def num(x: float | int | Fraction) -> str:
    """An exact SMT-LIB real literal."""
    if isinstance(x, (float, np.floating)):
        return _float_literal(float(x))
    return _literal(exact(x))


@functools.lru_cache(maxsize=1 << 14)
def _float_literal(x: float) -> str:
    """:func:`num` of a float, remembered: a problem writes every class's price and values, and the next resolve
    over the same catalog writes mostly the same ones (``Fraction(repr(x))`` and its arithmetic cost ~8 µs)."""
    return _literal(exact(x))


def _literal(f: Fraction) -> str:
    body = f"{abs(f.numerator)}.0" if f.denominator == 1 else f"(/ {abs(f.numerator)}.0 {f.denominator}.0)"
    return f"(- {body})" if f < 0 else body
