"""From a contract and the catalog view to ranked choices, and Z3's proof that the first one is optimal.

Pipeline (one data-flow direction):

1. :func:`rank` — vectorized: scope (default region) and per-node masks per role (:mod:`.filter`), the cheapest
   manager per provider+region, the cheapest worker count per candidate row in closed form (:mod:`.counts`), and
   the ranking of every feasible (type, region, count).
2. :func:`prove` — Z3 chooses type and count together over the Pareto classes of the candidates
   (:mod:`.compile`), minimizing the cluster price by iterative search.  Its optimum must equal the ranked one (exact
   rationals); a disagreement is a bug and raises.  Two independent computations thus agree on every answer,
   and the ranking contributes the documented tie-breaking and the alternatives.

**Tie-breaking** (deterministic, documented in the README): lowest total price per hour (manager included,
compared to 1e-9 USD), then fewer nodes, then more vCPUs per node, then provider, region and instance type name in
alphabetical order.

**Unknown prices** (NaN: offered, but no source prices the row): a cluster whose workers or manager have no known
price has no known total.  Priced clusters rank first, by the rule above; unpriced ones after all of them, by the
same rule without the price (fewer nodes, more vCPUs, names).  So an unpriced row is chosen only when no priced
one satisfies the contract.  Among the unpriced clusters, those whose price has a known upper bound (a spot row
without a spot price: its on-demand price, :func:`.market.ceiling`) come first, by that bound (then the same tie
rules).  An unknown price never meets ``node_price`` or ``cluster_price_per_hour`` (NaN satisfies no bound).
Z3 is given the priced candidates only: it proves the optimum among them, or — when the answer is unpriced — that
no priced candidate satisfies the contract.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np

from ccdsl.errors import SolverError
from ccdsl.resolution import Choice
from ccdsl.resolver import compile as comp
from ccdsl.resolver import market
from ccdsl.resolver.counts import CountDomain, Coupled, allows, count_bounds, count_cap, count_domain, min_counts
from ccdsl.resolver.filter import RELATIVE_TOLERANCE, clause_mask, scope_key, scope_mask, tolerance
from ccdsl.resolver.view import CatalogView, nan_as

if TYPE_CHECKING:
    from ccdsl.contract import Clause, Contract


@dataclass(frozen=True)
class RoleRows:
    """One role's rows: in scope, passing every per-node clause, and each node clause's mask over the scope."""

    spec: comp.RoleSpec
    scope: np.ndarray  # view rows in scope
    masks: tuple[np.ndarray, ...]  # per spec.node clause, over ``scope``
    candidates: np.ndarray  # view rows passing every node clause


@dataclass(frozen=True)
class Ranking:
    """Every feasible worker row with its cheapest count and cluster price, best first."""

    view: CatalogView
    workers: RoleRows
    manager: RoleRows | None
    rows: np.ndarray  # view rows, ranked
    counts: np.ndarray
    totals: np.ndarray  # cluster price per hour (manager included)
    managers: np.ndarray  # the manager view row that goes with each ranked row (-1: no manager)
    region: str
    default_region: bool  # whether AWS rows were restricted to ``region`` (no cluster_locale, not any-region)
    any_region: bool
    contract: Contract
    pairs: int = 0  # (worker row, manager row) pairs whose counts were computed (no manager: the rows)
    # how many leading positions are in rank order (None: all); the rest follow in worker-row order
    # (:func:`rank` with ``head``; :meth:`complete` sorts them)
    ordered: int | None = None

    @property
    def feasible(self) -> bool:
        return len(self.rows) > 0

    def complete(self) -> Ranking:
        """This ranking with every position in rank order: itself when it is, else its clusters sorted as
        :func:`rank` sorts them without ``head`` (a partial ranking's rows are distinct)."""
        if self.ordered is None:
            return self
        back = np.argsort(self.rows)  # worker rows ascending again, as rank_order expects them
        rows, counts, totals, managers = self.rows[back], self.counts[back], self.totals[back], self.managers[back]
        cost_key, unknown = cost_keys(self.view, rows, counts, managers, totals)
        order = rank_order(self.view, rows, counts, cost_key, self.manager is None, unknown)
        return dataclasses.replace(self, rows=rows[order], counts=counts[order], totals=totals[order],
                                   managers=managers[order], ordered=None)


def role_rows(view: CatalogView, spec: comp.RoleSpec, region: str, any_region: bool) -> RoleRows:
    scope = scope_rows(view, spec, region, any_region)
    masks = tuple(clause_mask(view, c)[scope] for c in spec.node)
    ok = np.ones(len(scope), dtype=bool)
    for m in masks:
        ok &= m
    return RoleRows(spec, scope, masks, scope[ok])


def scope_rows(view: CatalogView, spec: comp.RoleSpec, region: str, any_region: bool) -> np.ndarray:
    """The view rows in a role's scope (:func:`.filter.scope_mask`), in its market (a mixed-market view).  When
    none of the role's clauses bears on the scope (:func:`.filter.scope_key`), it is the same for every contract
    over the view: remembered with it (read-only), which saves a few passes over every row of the view."""
    key = scope_key(spec.node, region, any_region)

    def build() -> np.ndarray:
        allowed = scope_mask(view, spec.node, region, any_region)
        market = view.role_scope(spec.role)  # a mixed-market view: this role's market only
        rows = np.flatnonzero(allowed if market is None else allowed & market)
        rows.setflags(write=False)
        return rows

    if key is None:
        return build()
    spot = None if not view.spot_roles else spec.role in view.spot_roles  # which market, as role_scope says
    return view.memo((*key, spot), build)


def rank(view: CatalogView, contract: Contract, region: str, any_region: bool, head: int | None = None) -> Ranking:
    """Rank every feasible worker (type, region) by the tie-breaking rule.

    ``head``: only the first ``head`` positions need to be in rank order (a resolve reads the best cluster and a
    prefix for the alternatives; ``select`` reads them all).  Where the ranking would sort every cluster (counts
    vary, or a manager's price is added), it then sorts only those (:func:`head_order`) and says so in
    :attr:`Ranking.ordered`."""
    wspec, mspec = comp.role_specs(contract)
    workers = role_rows(view, wspec, region, any_region)
    manager = role_rows(view, mspec, region, any_region) if mspec is not None else None
    rows = workers.candidates
    price = view.numbers["price_per_hour"]
    managers = np.full(len(rows), -1, dtype=np.int64)
    domain = count_domain(wspec.count, wspec.fixed)
    if manager is not None:
        budget = BudgetPairs(wspec, domain) if lower_budget(wspec) else None
        rows, managers, pairs, least = pair_managers(view, rows, manager.candidates, budget is not None, budget)
    else:
        pairs, least = len(rows), None
    offset = np.where(managers >= 0, price[managers], 0.0)
    coupled = [Coupled(c, view.numbers[comp.coupled_column(c)][rows], offset if c.parameter == comp.BUDGET else 0.0)
               for c in wspec.coupled]
    counts = min_counts(domain, coupled, len(rows), worker_limit(view, rows, managers), least)
    ok = counts > 0
    if not ok.all():
        rows, counts, offset, managers = rows[ok], counts[ok], offset[ok], managers[ok]
    # worker rows ascend here; a row appears more than once only when several managers are paired with it
    paired_more = manager is not None and not bool((rows[1:] > rows[:-1]).all())
    totals = counts * price[rows] + offset
    # price (to 1e-9 USD; unknown after every known one), then fewer nodes, then the view's precomputed tie rank
    # (more vCPUs, provider, region, type): three sort keys instead of seven (counts go up to 2**53, so they
    # cannot share an int64 key with the tie rank)
    cost_key, unknown = cost_keys(view, rows, counts, managers, totals)
    order, ordered = None, None
    if head is not None and not paired_more and len(rows) >= comp.PRESORT_MIN and not (
            manager is None and bool((counts == counts[0]).all())):  # where rank_order would sort every cluster
        order = head_order(view, rows, counts, cost_key, unknown, head)
        ordered = None if order is None else head
    if order is None:
        order = rank_order(view, rows, counts, cost_key, manager is None, unknown)
    rows, counts, totals, managers = rows[order], counts[order], totals[order], managers[order]
    if paired_more:  # several managers tried per worker row: keep its best
        _, first = np.unique(rows, return_index=True)
        first = np.sort(first)
        rows, counts, totals, managers = rows[first], counts[first], totals[first], managers[first]
    located = any(c.parameter == "cluster_locale" for spec in (wspec, mspec) if spec is not None for c in spec.node)
    return Ranking(view, workers, manager, rows, counts, totals, managers, region, not (any_region or located),
                   any_region, contract, pairs, ordered)


def cost_keys(view: CatalogView, rows: np.ndarray, counts: np.ndarray, managers: np.ndarray,
              totals: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The ranking's cost keys of the clusters (``rows`` × ``counts`` + ``managers``): ``(cost_key, unknown)``.

    ``cost_key`` is the cluster price to 1e-9 USD; for a cluster of unknown price, its bound (the same sum over
    :func:`.market.ceiling`: a spot row's on-demand price), inf when that is unknown too.  ``unknown`` (ranked
    before the cost) puts every bounded cluster after every priced one; it is None when no unknown price has a
    bound (every on-demand view): then inf alone puts the unknown prices last, as before."""
    missing = np.isnan(totals)
    cost_key = np.where(missing, np.inf, np.round(totals, 9))
    if "market" not in view.numbers:
        return cost_key, None
    at = np.flatnonzero(missing)  # usually a few rows: the bounds are computed for them only
    most, m = market.ceiling(view), managers[at]
    bound = counts[at] * most[rows[at]] + np.where(m >= 0, most[m], 0.0)
    if np.isnan(bound).all():
        return cost_key, None
    cost_key[at] = np.where(np.isnan(bound), np.inf, np.round(bound, 9))
    return cost_key, missing


def price_keys(view: CatalogView) -> tuple[np.ndarray, ...]:
    """Each row's price as the ranking orders it, as ``np.lexsort`` keys (the last one first): whether the price
    is unknown, then the price or its bound (:func:`.market.ceiling`; unknown last, see :func:`price_key`).  Only
    the bound for an on-demand view: no unknown price has one, so the first key adds nothing."""
    if "market" not in view.numbers:
        return (price_key(view.numbers["price_per_hour"]),)
    return (view.memo(("price key", "ceiling"), lambda: price_key(market.ceiling(view))),
            view.memo(("price key", "unknown"), lambda: np.isnan(view.numbers["price_per_hour"]).astype(np.int8)))


def rank_order(view: CatalogView, rows: np.ndarray, counts: np.ndarray, cost_key: np.ndarray,
               no_offset: bool, unknown: np.ndarray | None = None) -> np.ndarray:
    """``np.lexsort((view.tie[rows], counts, cost_key, unknown))``: the ranking's order, found without sorting when
    it can (``unknown``, from :func:`cost_keys`, only when it is not None).

    Every (cost, count, tie) key is distinct when no row comes twice (the tie rank is a row's own), so the sorted
    order is unique: any order that checks out as sorted, or that sorts keys as distinct as these, *is* it.

    - One count for every row and no manager price added (per-node contracts): the cost is that count × the
      price, so the rows by (price, tie), restricted from a per-view order (:meth:`CatalogView.memo`, a few linear
      passes), are in cost order — no sort at all.  With ``unknown``, the per-view order ranks by the price or its
      bound (:func:`price_keys`), and a stable partition by ``unknown`` puts the priced clusters first.  Rounding
      (costs to 1e-9 USD) can make this order wrong; the check then finds it out and the direct sort decides.
    - Otherwise (counts vary, or a ManagerWorkers manager's price is added): the keys packed into one integer
      per cluster (:func:`packed_order`), sorted once by numpy's default sort.  Numpy's stable sort of 64-bit
      keys is a merge sort, several times slower: a ManagerWorkers ranking over every region (12,853 rows) took
      0.9 ms as a per-view order then stable sorts, 0.35 ms packed."""
    first = () if unknown is None else (unknown,)

    def direct() -> np.ndarray:
        return np.lexsort((view.tie[rows], counts, cost_key, *first))

    if len(rows) < comp.PRESORT_MIN:
        return direct()
    if not (no_offset and bool((counts == counts[0]).all())):
        packed = packed_order(view, rows, counts, cost_key, unknown)
        return direct() if packed is None else packed
    order = comp.presorted_rows(view, rows, ("rank", "price"), lambda: np.lexsort((view.tie, *price_keys(view))))
    if order is None:
        return direct()
    segments = [order]
    if unknown is not None:  # a stable sort by a flag is a stable partition: no sort
        flag = unknown[order]
        order = np.concatenate([order[~flag], order[flag]])
        split = int(len(order) - flag.sum())
        segments = [order[:split], order[split:]]  # priced, then unknown: each part checked on its own
    if not all(ascending(cost_key[o], counts[o], view.tie[rows[o]]) for o in segments):
        return direct()
    return order


def head_order(view: CatalogView, rows: np.ndarray, counts: np.ndarray, cost_key: np.ndarray,
               unknown: np.ndarray | None, head: int) -> np.ndarray | None:
    """The first ``head`` positions of :func:`rank_order`'s order, then every other position in ascending order;
    None (the caller sorts everything) when there are no more than ``head`` clusters, a row comes twice, a cost is
    NaN, or fewer than ``head`` clusters are priced while ``unknown`` is given.

    Why it is the head of the full order: the first key after ``unknown`` is the cost.  The ``head``-th least cost
    v (a selection, not a sort) splits the clusters: every one costing more than v ranks after every one costing
    at most v, and at least ``head`` cost at most v.  So sorting those by the full keys (a few dozen rows, plus
    any that tie with v) gives the first ``head`` of the full order; the keys are distinct (a row's tie rank is
    its own), so that order is the only one, which a sort of those few finds.  With ``unknown``, the clusters of
    known price come first: the head is taken among them.  Where counts vary or a manager's price is added, this
    replaces two sorts of every cluster (~12,900 over every region for a ManagerWorkers contract) by one
    selection."""
    n = len(rows)
    if head <= 0 or head >= n or not bool((rows[1:] > rows[:-1]).all()) or bool(np.isnan(cost_key).any()):
        return None
    key = cost_key if unknown is None else np.where(unknown, np.nan, cost_key)  # NaN: after every number
    v = np.partition(key, head - 1)[head - 1]
    if np.isnan(v):  # fewer than ``head`` clusters of known price
        return None
    near = np.flatnonzero(key <= v)  # ascending, as rows; they share the unknown flag
    if len(near) <= 4 * head:  # a few dozen: Python's sort of the keys as tuples (numpy's calls cost more)
        costs, numbers, ties = cost_key[near].tolist(), counts[near].tolist(), view.tie[rows[near]].tolist()
        within = np.array(sorted(range(len(near)), key=lambda i: (costs[i], numbers[i], ties[i])), dtype=np.int64)
    else:
        packed = packed_order(view, rows[near], counts[near], cost_key[near], None)
        within = np.lexsort((view.tie[rows[near]], counts[near], cost_key[near])) if packed is None else packed
    first = near[within[:head]]
    rest = np.ones(n, dtype=bool)
    rest[first] = False
    order: np.ndarray = np.concatenate([first, np.flatnonzero(rest)])
    return order


def packed_order(view: CatalogView, rows: np.ndarray, counts: np.ndarray, cost_key: np.ndarray,
                 unknown: np.ndarray | None) -> np.ndarray | None:
    """:func:`rank_order`'s order from one sort of one integer per cluster: ``unknown``, the dense rank of its
    cost, its count (or the count's dense rank) and its tie rank, as the digits of a mixed-radix number, which
    orders as the keys do lexicographically.  The numbers are distinct (the tie rank is a row's own), so the
    default sort's order is the only sorted one, the lexsort's.  None (the caller sorts the keys themselves) when
    a row comes twice (several managers paired with one worker row), a cost is NaN, or the number would not fit
    in 63 bits."""
    if not bool((rows[1:] > rows[:-1]).all()) or bool(np.isnan(cost_key).any()):
        return None
    cost, costs = digits(cost_key)
    count, count_levels = digits(counts)
    flags = 1 if unknown is None else 2
    if flags * costs * count_levels * view.size >= 2**63:  # Python integers: no overflow in the test itself
        return None
    key = (cost * count_levels + count) * view.size + view.tie[rows]
    if unknown is not None:
        key += unknown.astype(np.int64) * (costs * count_levels * view.size)
    order: np.ndarray = np.argsort(key)
    return order


def digits(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Each key as an int64 digit in the keys' order (equal keys, equal digits), and how many digit values there
    are: integers whose range is no wider than their number as their offset from the least; else the dense rank
    (one sort).  No NaN."""
    if keys.dtype.kind in "iu":
        least, most = int(keys.min()), int(keys.max())
        if most - least < max(len(keys), 1):
            return keys.astype(np.int64) - least, most - least + 1
    order = np.argsort(keys)
    ordered = keys[order]
    rank = np.empty(len(keys), dtype=np.int64)
    rank[order] = np.r_[0, np.cumsum(ordered[1:] != ordered[:-1])]
    return rank, int(rank.max(initial=0)) + 1


def ascending(*keys: np.ndarray) -> bool:
    """Whether rows are in strictly ascending lexicographic order of ``keys`` (the first key first).  Each next
    key is compared only where the keys before it tie."""
    a, b = keys[0][:-1], keys[0][1:]
    if bool((a > b).any()):
        return False
    pairs = np.flatnonzero(a == b)  # (row i, row i + 1) pairs still tied
    for k in keys[1:]:
        if len(pairs) == 0:
            return True
        a, b = k[pairs], k[pairs + 1]
        if bool((a > b).any()):
            return False
        pairs = pairs[a == b]
    return len(pairs) == 0  # equal in every key: not strictly ascending


def worker_limit(view: CatalogView, rows: np.ndarray, managers: np.ndarray) -> np.ndarray:
    """The most worker nodes each row can give (NaN = unlimited): its ``max_nodes``, less the one node the manager
    takes when the manager is the same row (an SSH host class shared by both roles)."""
    limit: np.ndarray = view.numbers["max_nodes"][rows]
    return np.where(managers == rows, limit - 1, limit)


def lower_budget(spec: comp.RoleSpec) -> bool:
    """Whether the budget bounds the price from below (``@atleast``, ``@between``, ``@just``, …): then the cheapest
    manager is not always best, and every manager price must be tried."""
    return any(c.parameter == comp.BUDGET and c.qualifier not in ("atmost", "unrestricted") for c in spec.coupled)


def pair_managers(view: CatalogView, workers: np.ndarray, managers: np.ndarray,
                  every_price: bool, budget: BudgetPairs | None = None
                  ) -> tuple[np.ndarray, np.ndarray, int, np.ndarray | None]:
    """(worker rows, manager rows) pairs in the same provider and region, how many pairs had their counts
    computed to choose them (the pairs themselves, plus those :class:`BudgetPairs` tried and left out), and a
    count no pair's smallest feasible count is below (None: 1; see :meth:`BudgetPairs.pairs`).

    With an upper-bound budget (or none) the cheapest manager of the region is optimal for every worker row: it
    leaves the most budget and adds the least cost.  Otherwise every distinct manager price of the region is
    paired (the cheapest-by-tie-rule row of each price).

    Capacity: a manager that is the same row as the workers takes one of its ``max_nodes``.  So when the first
    manager of a group has a finite ``max_nodes``, the next one (by the same order: possibly dearer) is paired
    too; for the worker row that is the first manager, the next one is the best manager that leaves every node to
    the workers, and for any other worker row the first one stays best.  :func:`rank` keeps each worker row's best
    pair.

    Unknown prices (a market view, :func:`price_keys`): managers are ordered priced first, then by their bound.  A
    worker row of unknown price makes every cluster's price unknown, and then the manager with the lowest bound is
    best, priced or not: that one (and its runner-up) is paired too.

    ``budget`` (with ``every_price``): only the pairs that can be a worker row's best are made
    (:class:`BudgetPairs`), not every worker × every manager price of its region (9 million pairs over all
    regions).
    """
    if len(managers) == 0 or len(workers) == 0:
        return workers[:0], workers[:0], 0, None
    keys = [k[managers] for k in price_keys(view)]
    if len(keys) > 1 and not (keys[1] & (keys[0] < _UNKNOWN_KEY)).any():
        keys = keys[:1]  # no manager of unknown price has a bound: the bound alone orders them (as the price)
    chosen, rank_of = _first_managers(view, managers, keys, every_price)
    if len(keys) > 1:
        extra, _ = _first_managers(view, managers, keys[:1], every_price)
        chosen = np.unique(np.r_[chosen, extra])
        chosen = chosen[np.argsort(rank_of[chosen], kind="stable")]
    m = managers[chosen]
    loc = view.location[m]  # ascending: the orders group managers by place first
    wloc = view.location[workers]
    if budget is None and bool((loc[1:] > loc[:-1]).all()):
        # one manager per place (the usual case): each worker row's is a lookup in a table of the places, which
        # gives the pairs below in the same order without two binary searches over every worker row
        table = np.full(len(view.location_labels), -1, dtype=np.int64)
        table[loc] = m
        paired = table[wloc]
        has = paired >= 0
        return workers[has], paired[has], int(has.sum()), None
    start = np.searchsorted(loc, wloc, side="left")
    stop = np.searchsorted(loc, wloc, side="right")
    if budget is not None:
        w_at, m_at, tried, least = budget.pairs(view, workers, m, start, stop)
        return workers[w_at], m[m_at], tried, least
    reps = stop - start
    pair_w = np.repeat(workers, reps)
    pair_m = m[np.repeat(start, reps) + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))]
    return pair_w, pair_m, len(pair_w), None


def _counted(pairs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Pairs with their number and no known count: what :meth:`BudgetPairs.pairs` returns when every pair it makes
    is ranked."""
    return pairs[0], pairs[1], len(pairs[0]), np.zeros(len(pairs[0]))


def _every_pair(start: np.ndarray, stop: np.ndarray, w_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (worker position, manager index) pair of the workers ``w_at``: managers ``start..stop`` each."""
    reps = (stop - start)[w_at]
    first = np.repeat(start[w_at], reps)
    m_at = first + (np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps))
    return np.repeat(w_at, reps), m_at


@dataclass(frozen=True)
class BudgetPairs:
    """The (worker, manager) pairs worth trying when the budget has a lower bound, a value list or excluded values,
    so that every manager price of the region may be the best one.

    Why few suffice: for one worker row and one count n, the cheapest manager that meets the budget with n is the
    best of that count (the others cost more at the same count, and a manager whose smallest feasible count is
    below n is found at that count).  So a worker row needs, for each count it may take, the first manager price at
    or after each bound the budget puts on ``manager price`` (``bound − n × price``; one searchsorted in the
    region's sorted prices, with its neighbours against rounding).  The counts a row may take are the domain's
    between the bounds of the other clauses, cut to those where some manager price can meet the budget (and for
    ``@atleast`` to the first count that meets it with the cheapest manager: larger ones cost more).  A row with
    more such counts × values than its region has manager prices gets every manager instead, as before.
    :func:`rank` then computes each pair's count and keeps each row's best pair, as for the full pairing.

    ``@not`` excludes a few totals instead of bounding them: each row takes its cheapest managers up to the first
    that meets the budget at its smallest count (:meth:`_not_pairs`: one pair per row nearly always).
    """

    spec: comp.RoleSpec
    domain: CountDomain

    def pairs(self, view: CatalogView, workers: np.ndarray, m: np.ndarray, start: np.ndarray,
              stop: np.ndarray) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
        """(worker positions, manager indexes into ``m``) in pairing order: workers ascending, then managers; how
        many pairs had their counts computed (these, and those of the rows paired with every manager that
        :meth:`_best_of_every_pair` left out); and per pair its smallest feasible count where a search below found
        it (0 elsewhere), for :func:`rank`'s :func:`.counts.min_counts` to start from: a list of 1,024 prices
        takes that search through every value's band otherwise (0.5 s over every region)."""
        budget = next(c for c in self.spec.coupled if c.parameter == comp.BUDGET)
        limits = view.numbers["max_nodes"]
        every = np.arange(len(workers))
        if (budget.qualifier not in ("atleast", "between", "just", "oneof", "not") or self.domain.empty
                or not np.isnan(limits[workers]).all() or not np.isnan(limits[m]).all()):
            return _counted(_every_pair(start, stop, every))
        price = view.numbers["price_per_hour"]
        mp = price[m]
        same = np.diff(view.location[m]) == 0
        with np.errstate(invalid="ignore"):  # each region's managers: priced ones first, ascending (else: all)
            unordered = same & ((mp[1:] < mp[:-1]) | (np.isnan(mp[:-1]) & ~np.isnan(mp[1:])))
        if unordered.any():
            return _counted(_every_pair(start, stop, every))
        if budget.qualifier == "not":
            return _counted(self._not_pairs(view, workers, m, start, stop, budget))
        win = self._window(view, workers, mp, start, stop, budget)
        usable, width, priced = win.usable, win.width, win.count_priced
        listed = budget.qualifier in ("just", "oneof")
        if listed:
            # per row the cheapest of three exact searches: a few counts × values against the sorted prices (the
            # per-count search below: no per-region loop, so a one-value budget such as bench_resolve's mw_budget
            # stays at its 17 ms CPU); a few counts against the region's sorted residuals (_listed_pairs); else
            # the values walked cheapest first against each row's sorted manager residues (_residue_pairs) for a
            # window wider than the list, whose work does not grow with the window (1..10**6 nodes) — or, for a
            # row priced within a few slacks of nothing, every pair against every value (_best_of_every_pair)
            small = usable & (width * 3 * len(win.values) <= priced)
            joined = usable & ~small & (width > 0) & ((4 * width <= priced) | (width <= len(win.values)))
            fine = win.p > RESIDUE_PRICE * max(win.slack)
            residue = usable & ~small & ~joined & (width > 0) & fine
        else:
            joined = residue = np.zeros(len(workers), dtype=bool)
            small = usable & (width * 3 <= priced)
        w_full = np.flatnonzero((usable & ~joined & ~small & ~residue & (width > 0)) | win.free)
        cand_w, cand_m = _per_count_pairs(self.domain, win, np.flatnonzero(small & (width > 0)), mp, start, budget)
        cand_n = [np.zeros(len(w)) for w in cand_w]  # the per-count search does not test the other totals
        found = [self._best_of_every_pair(view, workers, m, start, stop, w_full, win.a, win.b)]
        if listed:
            # a row that walks an eighth of its window's counts in values without settling (each value costs
            # about three counts' searches) is left to the join over its counts: a list few clusters can meet
            # (prices between the catalog's cents) then costs little more than the join alone
            *hits, rest = _residue_pairs(self.domain, budget, win.exotic, win.p, mp, start, priced,
                                         np.flatnonzero(residue), win.a, win.b, width / 8)
            found += [(hits[0], hits[1], hits[2]),
                      _listed_pairs(self.domain, budget, win.exotic, win.p, mp, start, priced,
                                    np.union1d(np.flatnonzero(joined), rest), win.r0, width)]
        w_at = np.concatenate([*cand_w, *(f[0] for f in found)])
        m_at = np.concatenate([*cand_m, *(f[1] for f in found)])
        least = np.concatenate([*cand_n, *(f[2] for f in found)]).astype(np.float64)
        tried = int((stop - start)[w_full].sum())  # _best_of_every_pair's pairs
        if len(w_at) == 0:
            return w_at, m_at, tried, least
        order = np.lexsort((least, m_at, w_at))  # a pair found twice: its smaller count first
        w_at, m_at, least = w_at[order], m_at[order], least[order]
        keep = np.r_[True, (np.diff(w_at) != 0) | (np.diff(m_at) != 0)]
        return w_at[keep], m_at[keep], tried + int(keep.sum()), least[keep]

    def _window(self, view: CatalogView, workers: np.ndarray, mp: np.ndarray, start: np.ndarray,
                stop: np.ndarray, budget: Clause) -> _Window:
        """Each worker row's window of counts that can meet ``budget`` with some manager of its region (see
        :class:`_Window`): the domain's counts between the bounds of the other clauses, cut to those where some
        manager price can meet the budget (and for ``@atleast`` to the first count that meets it with the
        cheapest manager: larger ones cost more)."""
        price = view.numbers["price_per_hour"]
        p = price[workers]
        others = [Coupled(c, view.numbers[comp.coupled_column(c)][workers]) for c in self.spec.coupled
                  if c is not budget]
        lo, hi, exotic = count_bounds(self.domain, others, len(workers))
        n1 = self.domain.smallest(lo)
        values = [float(v) for v in budget.values]
        slack = [tolerance(v) for v in values]
        # per worker: the cheapest and dearest priced manager of its region (NaN prices sort last)
        priced = np.isfinite(mp)
        m_min = np.full(len(workers), np.inf)
        m_max = np.full(len(workers), -np.inf)
        has = stop > start
        m_min[has] = mp[start[has]]
        count_priced = np.zeros(len(workers), dtype=np.int64)
        cum = np.r_[0, np.cumsum(priced)]
        count_priced[has] = cum[stop[has]] - cum[start[has]]
        top = start + count_priced - 1  # the last priced manager of each region (priced ones come first)
        m_max[count_priced > 0] = mp[top[count_priced > 0]]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            low_t, high_t = min(values) - max(slack), max(values) + max(slack)
            first = np.floor((low_t - m_max) / p) - 1  # fewer nodes: even the dearest manager falls short
            after = np.ceil((high_t - m_min) / p) + 1  # more nodes: even the cheapest manager is too much
            if budget.qualifier in ("atleast", "between"):
                # from the first allowed count where even the cheapest manager meets the lower bound, more nodes
                # only cost more (and for @between, when that cluster is over the upper bound, so is every larger
                # one): the window ends there
                reach = np.ceil((values[0] + slack[0] - m_min) / p) + 1
                past = np.maximum(n1, reach)
                if exotic:  # the just/oneof/not totals decide which counts are allowed: their search finds it
                    found = min_counts(self.domain, others, len(workers), least=past).astype(np.float64)
                    ends = np.where(found > 0, found, np.fmin(hi, past))  # none allowed past it: up to there
                else:
                    ends = self.domain.smallest(past)
                after = np.fmin(after if budget.qualifier == "between" else np.inf, ends)
            a = np.maximum(n1, first)
            b = np.fmin(hi, after)
        usable = (p > 0) & np.isfinite(p) & (count_priced > 0) & np.isfinite(a) & np.isfinite(b)
        # a free worker row (price 0: no window from the budget) pairs with every manager, in the window of its
        # other clauses; a row of unknown price, or with no count or no priced manager, meets no budget
        free = (p == 0) & (count_priced > 0) & np.isfinite(n1) & (n1 <= hi)
        a = np.where(usable, a, np.where(free, n1, 1))
        b = np.where(usable, b, np.where(free, hi, 0))
        r0 = self.domain.rank(a)
        width = np.where(b >= a, self.domain.rank(b + 1) - r0, 0)
        return _Window(p, a, b, r0, width, usable, free, count_priced, values, slack, exotic)

    def _not_pairs(self, view: CatalogView, workers: np.ndarray, m: np.ndarray, start: np.ndarray,
                   stop: np.ndarray, budget: Clause) -> tuple[np.ndarray, np.ndarray]:
        """The pairs for a ``@not`` budget: each worker row with its region's cheapest manager prices up to the
        first one whose cluster meets the budget at the row's smallest count.

        Why that suffices: ``@not`` excludes a few totals (bands of the 1e-9 slack), not a range.  Let n1 be the
        smallest count the row's other clauses allow and m0 < m1 < … its region's distinct manager prices (``m``
        holds one manager per price, cheapest first, by the tie rules), and let (n1, mJ) be the first of (n1, m0),
        (n1, m1), … that the budget allows.  Any pair with a dearer manager (n ≥ n1, mj > mJ) costs more than
        (n1, mJ), which meets every clause, so the row's best pair has one of m0 … mJ; :func:`rank` finds each
        one's smallest count (the exotic search of :mod:`.counts`) and keeps the best.  Nearly always J = 0 (the
        cheapest cluster is not exactly an excluded price): one pair per row, where pairing every manager price
        made rows × prices pairs (9 million over every region: 8 s and 1.5 GB for one excluded price).  Each round
        below moves only the rows whose pair was excluded, so the work is the rows plus the excluded pairs.

        A row with no count its other clauses allow, an unknown price or no priced manager meets no ``@not``
        budget (an unknown total is never allowed): it gets no pair, as it would get no count with every pair."""
        price = view.numbers["price_per_hour"]
        p, mp = price[workers], price[m]
        others = [Coupled(c, view.numbers[comp.coupled_column(c)][workers]) for c in self.spec.coupled
                  if c is not budget]
        n1 = min_counts(self.domain, others, len(workers)).astype(np.float64)
        priced = np.r_[0, np.cumsum(np.isfinite(mp))]
        last = start + (priced[stop] - priced[start])  # one past the region's last priced manager (they come first)
        upto = start.copy()  # one past the last manager paired with each row
        j = start.copy()  # each row's next manager to try
        todo = np.flatnonzero((n1 > 0) & np.isfinite(p) & (last > start))
        while len(todo):
            upto[todo] = j[todo] + 1
            ok = allows(Coupled(budget, p[todo], mp[j[todo]]), n1[todo])
            move = todo[~ok]
            j[move] += 1
            todo = move[j[move] < last[move]]
        return _every_pair(start, upto, np.flatnonzero(upto > start))

    def _best_of_every_pair(self, view: CatalogView, workers: np.ndarray, m: np.ndarray, start: np.ndarray,
                            stop: np.ndarray, w_at: np.ndarray, a: np.ndarray,
                            b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the workers ``w_at`` that pair with every manager of their region: the pairs, and their counts
        (in chunks of about 2**20, so memory stays bounded), whose smallest count and cost are their worker's
        best, ties kept — the same counts and costs :func:`rank` computes (:func:`min_counts`, the price to 1e-9),
        so its choice among them is its choice among all the pairs.  For a value-list budget a pair is first kept
        only when some count in the worker's window ``a..b`` puts the total within a value's slack (a cheap test
        that drops nearly all pairs before the full count search)."""
        budget = next(c for c in self.spec.coupled if c.parameter == comp.BUDGET)
        price = view.numbers["price_per_hour"]
        out_w, out_m, out_n = [], [], []
        reps = (stop - start)[w_at]
        bounds = np.r_[0, np.cumsum(reps)]
        i = 0
        while i < len(w_at):
            j = max(i + 1, int(np.searchsorted(bounds, bounds[i] + (1 << 20), side="right")) - 1)
            pw, pm = _every_pair(start, stop, w_at[i:j])
            i = j
            p, off = price[workers[pw]], price[m[pm]]
            if budget.qualifier in ("just", "oneof"):
                hit = np.zeros(len(pw), dtype=bool)
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    for t in (float(v) for v in budget.values):
                        e = np.ceil((t - tolerance(t) - off) / p)
                        for n in (np.maximum(e - 1, a[pw]), np.maximum(e, a[pw])):
                            hit |= (n <= b[pw]) & (np.abs(n * p + off - t) <= tolerance(t))
                pw, pm = pw[hit], pm[hit]
                off = off[hit]
            rows = workers[pw]
            coupled = [Coupled(c, view.numbers[comp.coupled_column(c)][rows], off if c is budget else 0.0)
                       for c in self.spec.coupled]
            counts = min_counts(self.domain, coupled, len(rows), view.numbers["max_nodes"][rows])
            feasible = counts > 0
            pw, pm, counts = pw[feasible], pm[feasible], counts[feasible]
            if len(pw) == 0:
                continue
            cost = np.round(counts * price[workers[pw]] + price[m[pm]], 9)
            order = np.lexsort((counts, cost, pw))
            pw, pm, counts, cost = pw[order], pm[order], counts[order], cost[order]
            head = np.r_[True, np.diff(pw) != 0]
            group = np.cumsum(head) - 1
            first = np.flatnonzero(head)
            best = (cost == cost[first][group]) & (counts == counts[first][group])
            out_w.append(pw[best])
            out_m.append(pm[best])
            out_n.append(counts[best])
        if not out_w:
            return w_at[:0], w_at[:0], w_at[:0]
        return np.concatenate(out_w), np.concatenate(out_m), np.concatenate(out_n)


def _per_count_pairs(domain: CountDomain, win: _Window, w_small: np.ndarray, mp: np.ndarray, start: np.ndarray,
                     budget: Clause) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The pairs of the rows ``w_small``, whose windows hold a few counts: for each count n and each bound
    ``t`` the budget puts on the total, the first manager price at or after ``t − n × price`` (one binary search
    in the region's sorted prices, with its neighbours against rounding), kept if it meets the bound at n, as
    min_counts tests it (a pair that meets it at another count is found at that count)."""
    reps = win.width[w_small].astype(np.int64)
    w_rep = np.repeat(w_small, reps)
    within = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
    n = domain.select(np.repeat(win.r0[w_small], reps) + within)
    values, slack = win.values, win.slack
    bounds = values[:1] if budget.qualifier in ("atleast", "between") else values
    cand_w, cand_m = [], []
    upper = values[1] + slack[1] if budget.qualifier == "between" else np.inf
    seg_lo, seg_hi = start[w_rep], start[w_rep] + win.count_priced[w_rep]
    workers_part = n * win.p[w_rep]  # as min_counts computes a total: n × price, then + the manager's price
    for t, sl in zip(bounds, slack):
        z = t - sl - workers_part  # the least manager price that meets the bound t with n nodes
        k = _search_segments(mp, seg_lo, seg_hi, z)  # in each region's sorted prices
        for d in (-1, 0, 1):  # the neighbours too, against rounding
            j = k + d
            ok = (j >= seg_lo) & (j < seg_hi)
            total = workers_part + mp[np.clip(j, 0, max(len(mp) - 1, 0))]
            with np.errstate(invalid="ignore"):
                if budget.qualifier in ("atleast", "between"):
                    ok &= (total >= t - sl) & (total <= upper)
                else:
                    ok &= np.abs(total - t) <= sl
            cand_w.append(w_rep[ok])
            cand_m.append(j[ok])
    return cand_w, cand_m


def _listed_values(budget: Clause, ascending: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """A ``@just``/``@oneof`` budget's values (as listed, or ascending) and each one's slack
    (:func:`.filter.tolerance`, element-wise)."""
    values = np.array([float(v) for v in budget.values])
    if ascending:
        values = np.sort(values)
    return values, RELATIVE_TOLERANCE * np.maximum(1.0, np.abs(values))


def _by_region(w_at: np.ndarray, start: np.ndarray, count_priced: np.ndarray,
               mp: np.ndarray) -> Iterator[tuple[np.ndarray, int, np.ndarray]]:
    """The workers ``w_at`` grouped by region, each group with the index of its region's first manager and the
    prices of the region's priced managers (a region's managers are one segment of ``mp`` from ``start``)."""
    w_at = w_at[np.argsort(start[w_at], kind="stable")]
    heads = np.r_[np.flatnonzero(np.r_[True, np.diff(start[w_at]) != 0]), len(w_at)]
    for g0, g1 in itertools.pairwise(heads):
        ws = w_at[g0:g1]
        s0 = int(start[ws[0]])
        yield ws, s0, mp[s0:s0 + int(count_priced[ws[0]])]


def _allowed(budget: Clause, exotic: list[Coupled], p: np.ndarray, hw: np.ndarray, manager_price: np.ndarray,
             hn: np.ndarray) -> np.ndarray:
    """Which hits (worker row ``hw``, its manager's price, count ``hn``) the rules of :func:`.counts.min_counts`
    allow (:func:`.counts.allows`): the budget at that count with that manager, and the other just/oneof/not
    totals."""
    ok = allows(Coupled(budget, p[hw], manager_price), hn)
    for c in exotic:
        ok &= allows(Coupled(c.clause, np.asarray(c.per_node)[hw]), hn)
    return ok


def _listed_pairs(domain: CountDomain, budget: Clause, exotic: list[Coupled], p: np.ndarray, mp: np.ndarray,
                  start: np.ndarray, count_priced: np.ndarray, w_at: np.ndarray, r0: np.ndarray,
                  width: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For a ``@just``/``@oneof`` budget: each worker of ``w_at`` with its best managers (ties kept) and their count
    (the pair's smallest feasible one: a smaller one would be a cheaper hit), found from the
    counts of its window (the ``width[w]`` allowed counts from rank ``r0[w]``) where the cluster's total meets a
    value, ``|n × p + mp − t| ≤ slack(t)``.

    A join, not a test of every pair against every value (workers × managers × values: 3.7 million pairs × 38
    values took 4–9 s CPU over every region): per region, the residuals ``t − mp`` of its values × priced manager
    prices are sorted once; each count n of a worker's window is two binary searches for the residuals within the
    slack of ``n × p``.  Each hit (worker, count, manager) is then tested by the rules :func:`.counts.min_counts`
    applies (:func:`.counts.allows`: the budget at that count with that manager, and the other just/oneof/not
    totals; the range clauses and the domain hold in the window), so the feasible hits are exactly the (pair,
    count) combinations min_counts allows in the window.  A pair's smallest feasible count is its first hit, and a
    cluster's price grows with its count, so the worker's best pairs are its hits of least (price to 1e-9, count):
    only those go to :func:`rank`, which finds the same counts for them (a value list of 1,024 prices made
    760,000 candidate pairs, each searched again there).  Work: the region's values × prices, plus the window
    counts times a logarithm, plus the hits; memory in chunks of about 2**20 counts."""
    out_w, out_m, out_n = [], [], []
    values, slack = _listed_values(budget)
    if len(w_at) == 0 or len(values) == 0:
        return w_at[:0], w_at[:0], w_at[:0]
    margin = 2 * float(slack.max()) + 1e-12 * (1 + float(np.abs(values).max()) + float(np.nanmax(np.abs(mp))))
    for ws, s0, offs in _by_region(w_at, start, count_priced, mp):
        lowest = float(np.min(domain.select(r0[ws]) * p[ws])) - margin
        highest = float(np.max(domain.select(r0[ws] + width[ws] - 1) * p[ws])) + margin
        res = np.subtract.outer(values, offs).ravel()  # value i, manager j at i × len(offs) + j
        at_r = np.flatnonzero((res >= lowest) & (res <= highest))  # only residuals some count can reach
        r = res[at_r]
        order = np.argsort(r)
        r, at_r = r[order], at_r[order]
        bounds = np.r_[0, np.cumsum(width[ws])]
        i = 0
        while i < len(ws):  # chunks of whole workers: each worker's hits are all in its chunk
            j = max(i + 1, int(np.searchsorted(bounds, bounds[i] + (1 << 20), side="right")) - 1)
            chunk = ws[i:j]
            i = j
            reps = width[chunk].astype(np.int64)
            w_rep = np.repeat(chunk, reps)
            within = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
            n = domain.select(np.repeat(r0[chunk], reps) + within)
            q = n * p[w_rep]
            lo = np.searchsorted(r, q - margin, side="left")
            hits = np.searchsorted(r, q + margin, side="right") - lo
            at = np.repeat(np.arange(len(q)), hits)  # hits in query order: grouped by worker
            k = np.repeat(lo, hits) + (np.arange(hits.sum()) - np.repeat(np.cumsum(hits) - hits, hits))
            ti, hm = np.divmod(at_r[k], len(offs))
            hw, hn = w_rep[at], n[at]
            with np.errstate(invalid="ignore", over="ignore"):
                ok = np.abs(hn * p[hw] + offs[hm] - values[ti]) <= slack[ti]
            hw, hn, hm = hw[ok], hn[ok], hm[ok]
            ok = _allowed(budget, exotic, p, hw, offs[hm], hn)
            hw, hn, hm = hw[ok], hn[ok], hm[ok]
            if len(hw) == 0:
                continue
            cost = np.round(hn * p[hw] + offs[hm], 9)  # as rank computes and rounds a total
            head = np.flatnonzero(np.r_[True, hw[1:] != hw[:-1]])
            group = np.repeat(np.arange(len(head)), np.diff(np.r_[head, len(hw)]))
            least = cost == np.minimum.reduceat(cost, head)[group]
            best = least & (hn == np.minimum.reduceat(np.where(least, hn, np.inf), head)[group])
            out_w.append(hw[best])
            out_m.append(s0 + hm[best])
            out_n.append(hn[best])
    if not out_w:
        return w_at[:0], w_at[:0], w_at[:0]
    return np.concatenate(out_w), np.concatenate(out_m), np.concatenate(out_n)


@dataclass(frozen=True)
class _Window:
    """Per worker row of :meth:`BudgetPairs.pairs`: the counts ``a..b`` that can meet the budget with some manager
    of its region (the ``width`` allowed counts from rank ``r0`` of the domain), whether the row can meet it at all
    (``usable``: priced above 0, with a priced manager and a count) or is free (price 0: every manager), how many
    priced managers its region has, and the budget's values, their slacks and the other just/oneof/not totals."""

    p: np.ndarray  # the worker rows' prices
    a: np.ndarray
    b: np.ndarray
    r0: np.ndarray
    width: np.ndarray
    usable: np.ndarray
    free: np.ndarray
    count_priced: np.ndarray
    values: list[float]
    slack: list[float]
    exotic: list[Coupled]


# _residue_pairs takes a row only when its price is above this many times the budget's largest slack: then at most
# one count of a manager's residue is within the slack of a value (the residues' band is under a quarter of a
# node's price), and that count is the residue's nearest whole number.  Cheaper rows (none in the shipped catalog
# for values up to $10**6/h) test every pair.
RESIDUE_PRICE = 8.0
_RESIDUE_CELLS = 1 << 19  # rows × managers per chunk of _residue_pairs: bounded memory (a few MiB per array)


def _residue_pairs(domain: CountDomain, budget: Clause, exotic: list[Coupled], p: np.ndarray, mp: np.ndarray,
                   start: np.ndarray, count_priced: np.ndarray, w_at: np.ndarray, a: np.ndarray, b: np.ndarray,
                   walk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a ``@just``/``@oneof`` budget: each worker of ``w_at`` with its best managers (ties kept) and their count
    (as :func:`_listed_pairs`); and the workers left undecided, which walked ``walk`` values (per worker) with no
    hit cheaper than the next value's band (the caller decides them another way).  Found by walking
    the values from the cheapest, with work that does not grow with the count window.

    Why it is exact: a cluster meets a listed value t when ``|n × p + mp − t| ≤ slack(t)``, so its price is
    within the slack of t: a hit near a smaller value is cheaper than any hit near a larger one whose band starts
    above it.  A worker's hits near t are the managers whose price, in units of the worker's price, has a
    fractional part within ``slack(t) / p`` of that of ``t / p`` (then ``n`` is the nearest whole number of
    ``(t − mp) / p``).  So each row's managers are sorted once by that fractional part, and each value is two
    binary searches per row (three, across the wrap at 1), widened against floating-point error: the candidates
    include every hit.  Each candidate is then tested by the rules :func:`.counts.min_counts` applies (the count in
    the row's window and the domain, the budget by :func:`.counts.allows`, the other just/oneof/not totals), as
    in :func:`_listed_pairs`.  A row stops once it has a hit cheaper than the next value's band: its best pairs are
    its hits of least (price to 1e-9, count), as :func:`rank` ranks them.  Values are taken in blocks doubling from
    8 (most rows of the shipped catalog hit within 8 values; a few never do and take every value).

    Work: per row, its region's managers sorted once, plus a few searches per value walked — where the join over
    the counts (:func:`_listed_pairs`) or testing every pair against every value (:meth:`BudgetPairs.
    _best_of_every_pair`) grew with the window (1..10**6 nodes and 1,024 prices over every region: over 100 s)."""
    values, slack = _listed_values(budget, ascending=True)
    if len(w_at) == 0 or len(values) == 0:
        return w_at[:0], w_at[:0], w_at[:0], w_at[:0]
    out_w, out_m, out_n, out_rest = [], [], [], []
    for ws, s0, offs in _by_region(w_at, start, count_priced, mp):
        step = max(1, _RESIDUE_CELLS // len(offs))
        for c0 in range(0, len(ws), step):
            hw, hm, hn, rest = _residue_chunk(domain, budget, exotic, values, slack, p, offs, ws[c0:c0 + step],
                                              a, b, walk)
            out_w.append(hw)
            out_m.append(s0 + hm)
            out_n.append(hn)
            out_rest.append(rest)
    return np.concatenate(out_w), np.concatenate(out_m), np.concatenate(out_n), np.concatenate(out_rest)


def _residue_chunk(domain: CountDomain, budget: Clause, exotic: list[Coupled], values: np.ndarray,
                   slack: np.ndarray, p: np.ndarray, offs: np.ndarray, ws: np.ndarray, a: np.ndarray,
                   b: np.ndarray, walk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_residue_pairs` for the workers ``ws`` of one region (managers ``offs``): (workers, manager indexes
    into ``offs``, counts) of each worker's best hits, and the workers left undecided."""
    pw = p[ws]
    x = offs[None, :] / pw[:, None]
    fx = x - np.floor(x)
    order = np.argsort(fx, axis=1)
    # row i's fractional parts at 3i + [0, 1): one ascending array, and a search never leaves its row
    keys = (np.take_along_axis(fx, order, axis=1) + 3.0 * np.arange(len(ws))[:, None]).ravel()
    # floating-point error of the fractional parts and of the keys, and of the total min_counts compares
    error = 8e-16 * (float(np.abs(x).max(initial=0.0)) + 3.0 * len(ws) + 4.0)
    top = float(np.abs(offs).max(initial=0.0))
    best = np.full(len(ws), np.inf)
    open_ = np.arange(len(ws))
    hits: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    gave_up = np.zeros(len(ws), dtype=bool)
    i, block = 0, 8
    while len(open_) and i < len(values):
        t, s = values[i:i + block], slack[i:i + block]
        i += block
        block *= 2
        y = t[None, :] / pw[open_, None]
        fy = y - np.floor(y)
        eps = (s + 4e-16 * (2.0 * np.abs(t) + 2.0 * top + 1.0))[None, :] / pw[open_, None] + error \
            + 8e-16 * np.abs(y)
        centre = fy + 3.0 * open_[:, None]
        at, k = [], []
        for shift in (-1.0, 0.0, 1.0):  # across the wrap: a fractional part near 0 against one near 1
            lo = np.searchsorted(keys, (centre + shift - eps).ravel(), side="left")
            n_hit = np.searchsorted(keys, (centre + shift + eps).ravel(), side="right") - lo
            q = np.repeat(np.arange(len(lo)), n_hit)
            at.append(q)
            k.append(np.repeat(lo, n_hit) + (np.arange(n_hit.sum()) - np.repeat(np.cumsum(n_hit) - n_hit, n_hit)))
        q = np.concatenate(at)
        row = open_[q // len(t)]
        tv = t[q % len(t)]
        sv = s[q % len(t)]
        kk = np.concatenate(k)
        hm = order[kk // len(offs), kk % len(offs)]
        hw = ws[row]
        with np.errstate(invalid="ignore", over="ignore"):
            hn = np.rint((tv - offs[hm]) / pw[row])
            ok = (hn >= a[hw]) & (hn <= b[hw]) & (np.abs(hn * pw[row] + offs[hm] - tv) <= sv)
        row, hw, hm, hn = row[ok], hw[ok], hm[ok], hn[ok]
        ok = domain.contains(hn) & _allowed(budget, exotic, p, hw, offs[hm], hn)
        row, hm, hn = row[ok], hm[ok], hn[ok]
        cost = np.round(hn * pw[row] + offs[hm], 9)  # as rank computes and rounds a total
        np.minimum.at(best, row, cost)
        hits.append((row, hm, hn, cost))
        if i < len(values):  # settled: a hit cheaper than the next value's band (to 1e-9 USD)
            open_ = open_[~(best[open_] < values[i] - slack[i] - 1e-9)]
            gave_up[open_[i >= walk[ws[open_]]]] = True
            open_ = open_[i < walk[ws[open_]]]
    row, hm, hn, cost = (np.concatenate(h) for h in zip(*hits)) if hits else (ws[:0],) * 4
    decided = ~gave_up[row]
    row, hm, hn, cost = row[decided], hm[decided], hn[decided], cost[decided]
    if len(row) == 0:
        return ws[:0], ws[:0], ws[:0], ws[gave_up]
    order_h = np.lexsort((hm, hn, cost, row))
    row, hm, hn, cost = row[order_h], hm[order_h], hn[order_h], cost[order_h]
    head = np.r_[True, row[1:] != row[:-1]]
    first = np.flatnonzero(head)[np.cumsum(head) - 1]
    best_hit = (cost == cost[first]) & (hn == hn[first])
    return ws[row[best_hit]], hm[best_hit], hn[best_hit], ws[gave_up]


def _search_segments(values: np.ndarray, seg_lo: np.ndarray, seg_hi: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Per element: ``seg_lo + searchsorted(values[seg_lo:seg_hi], z)`` (each segment ascending), vectorized by a
    binary search over all segments at once."""
    lo = seg_lo.copy()
    hi = seg_hi.copy()
    while True:
        open_ = lo < hi
        if not open_.any():
            return lo
        mid = (lo + hi) // 2
        below = np.zeros(len(lo), dtype=bool)
        below[open_] = values[mid[open_]] < z[open_]
        lo = np.where(open_ & below, mid + 1, lo)
        hi = np.where(open_ & ~below, mid, hi)


def _first_managers(view: CatalogView, managers: np.ndarray, keys: list[np.ndarray],
                    every_price: bool) -> tuple[np.ndarray, np.ndarray]:
    """Positions (into ``managers``) of the first manager of each place, by ``keys`` (lexsort keys, the last
    first) and then the tie rules: of each distinct price too when ``every_price``, and the runner-up of a
    limited first (see :func:`pair_managers`); in that order, with every manager's rank in it."""
    loc = view.location[managers]
    order = np.lexsort((view.codes["instance_type"][managers], -nan_as(view.numbers["vcpus"][managers], 0.0),
                        *keys, loc))
    changed = np.zeros(max(len(order) - 1, 0), dtype=bool)
    for k in keys:
        changed |= np.diff(k[order]) != 0
    first = np.r_[True, (np.diff(loc[order]) != 0) | (changed & every_price)]
    limited = ~np.isnan(view.numbers["max_nodes"][managers[order]])
    if limited.any():  # the runner-up of a group whose first manager is a limited row
        group = np.cumsum(first) - 1
        head = np.flatnonzero(first)
        first = first | (~first & np.r_[False, first[:-1]] & limited[head[group]])
    rank_of = np.empty(len(order), dtype=np.int64)
    rank_of[order] = np.arange(len(order))
    return order[first], rank_of


_UNKNOWN_KEY = float(np.finfo(np.float64).max)


def price_key(price: np.ndarray) -> np.ndarray:
    """Prices for sorting: an unknown price (NaN) after every known one, and equal to every other unknown."""
    return np.where(np.isnan(price), _UNKNOWN_KEY, price)


def known(x: float) -> float | None:
    """A price as the answer carries it: None when unknown."""
    return None if np.isnan(x) else float(x)


def _or0(x: float) -> float:
    """A scalar with NaN as 0 (np.nan_to_num costs ~40 µs per scalar; a choice reads five)."""
    x = float(x)
    return 0.0 if x != x else x


def choice(view: CatalogView, row: int, count: int, role: str | None, manager: int = -1, **extra: Any) -> Choice:
    """The :class:`~ccdsl.resolution.Choice` of ``count`` nodes of a view row; ``extra``: more of its fields (a
    spot row's, :func:`.market.spot_fields`)."""
    num, lab = view.numbers, view.label
    p = known(num["price_per_hour"][row])
    mp = known(num["price_per_hour"][manager]) if manager >= 0 else 0.0
    return Choice(
        provider=lab("provider", row), region=lab("region", row), instance_type=lab("instance_type", row),
        node_count=int(count), price_per_node_hour=p, price_per_hour=None if p is None else round(count * p, 9),
        vcpus=int(_or0(num["vcpus"][row])), memory_gib=_or0(num["memory_gib"][row]),
        cores=int(_or0(num["cores"][row])),
        accelerator_count=_whole(_or0(num["accelerator_count"][row])),  # a share: its fraction (0.125)
        accelerator_model=lab("accelerator_model", row), accelerator_architecture=lab("accelerator_architecture", row),
        accelerator_memory_gib=_or0(num["accelerator_memory_gib"][row]),
        accelerator_memory_usable_gib=_or0(num["accelerator_memory_usable_gib"][row]),
        cpu_model=lab("cpu_model", row), network_gbps=_or0(num["network_gbps"][row]),
        efa_interfaces=efa_interfaces(view, row), role=role,
        manager_price_per_hour=mp, price_source=lab("price_source", row), price_date=lab("price_date", row), **extra)


def efa_interfaces(view: CatalogView, row: int) -> int:
    """The row's EFA interfaces; a catalog that says only ``efa = true`` (an older user catalog) has one."""
    n = int(_or0(view.numbers["efa_interfaces"][row]))
    return n if n > 0 or not view.numbers["efa"][row] > 0 else 1


def _whole(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def row_name(view: CatalogView, row: int) -> str:
    """``g4dn.xlarge (aws us-east-1, $0.526/h)``: a catalog row in a problem's comments (remembered per view:
    the next problems over the same catalog name mostly the same rows)."""
    names: dict[int, str] = view.__dict__.setdefault("_row_names", {})
    found = names.get(row)
    if found is None:
        found = names[row] = _row_name(view, row)
    return found


def _row_name(view: CatalogView, row: int) -> str:
    limit = view.number("max_nodes", row)
    most = "" if np.isnan(limit) else f", at most {int(limit)} node{'s' * (limit != 1)}"
    price = view.number("price_per_hour", row)
    cost = "price unknown" if np.isnan(price) else f"${price:g}/h"
    return (f"{view.label('instance_type', row)} ({view.label('provider', row)} {view.label('region', row)}, "
            f"{cost}{most})")


def alternatives(ranking: Ranking, top: int) -> list[int] | None:
    """Ranked positions of the best row of each instance type other than the chosen one, up to ``top``; None
    when a partial ranking's ordered head (:attr:`Ranking.ordered`) holds too few types to tell (see
    :func:`ranked_alternatives`)."""
    if top <= 0 or len(ranking.rows) <= 1:
        return []
    # the first rows of each type, read from a growing prefix of the ranking: once a prefix holds top + 1 types,
    # every type that first appears later ranks after them (no np.unique over every matching row)
    codes, size = ranking.view.codes["instance_type"], 64
    limit = len(ranking.rows) if ranking.ordered is None else ranking.ordered
    while True:
        _, first = np.unique(codes[ranking.rows[:min(size, limit)]], return_index=True)
        if len(first) > top or size >= limit:
            break
        size *= 8
    if len(first) <= top and limit < len(ranking.rows):
        return None
    first = np.sort(first)
    return [int(i) for i in first[first != 0][:top]]


def ranked_alternatives(ranking: Ranking, top: int) -> tuple[Ranking, list[int]]:
    """:func:`alternatives` of ``ranking``, with the ranking they index: itself, or its :meth:`~Ranking.complete`
    order when its ordered head holds fewer than ``top`` + 1 instance types."""
    positions = alternatives(ranking, top)
    if positions is None:
        ranking = ranking.complete()
        positions = alternatives(ranking, top) or []
    return ranking, positions


# ------------------------------------------------------------------------------------------------ Z3 proof

# Z3 is given at most this many classes.  Typical contracts compile to a few dozen; the rare problems above it
# (a ManagerWorkers budget with a lower bound over every region keeps every distinct manager price) would take
# seconds to minutes in Z3, so the vectorized answer stands unchecked and the conflict is minimized with the
# vectorized feasibility check instead (the explanation / error says which).
Z3_CLASS_LIMIT = 400

# Nor more than this many (class, listed value) pairs of the cluster totals' @oneof lists.  Z3 meets a total
# against a list of K values by searching node counts class by class, and its time grows faster than K: measured
# on the shipped catalog over every region (57 classes, ``cluster_memory_size => @oneof(…)``, CPU on a loaded
# 2-core machine): 64 values 0.25 s, 256 values 1.2 s, 512 values 3 s, 1,024 values 7 s — past issue 18's 2 s
# for any contract.  Over the limit the vectorized answer stands unchecked, as over Z3_CLASS_LIMIT.
Z3_LIST_LIMIT = 8192


def z3_limit(classes: int, workers: comp.RoleSpec) -> str | None:
    """Why a problem of ``classes`` classes is not given to Z3 (the explanation's words), or None when it is."""
    if classes > Z3_CLASS_LIMIT:
        return f"{classes} Pareto class{'es' * (classes != 1)}, over its limit of {Z3_CLASS_LIMIT}"
    listed = sum(len(c.values) for c in workers.coupled if c.qualifier == "oneof")
    if classes * listed > Z3_LIST_LIMIT:
        return (f"{classes} Pareto class{'es' * (classes != 1)} × {listed} listed values, over its limit of "
                f"{Z3_LIST_LIMIT}")
    return None


@dataclass(frozen=True)
class Proof:
    """What Z3 found: the optimal price, the model (a worker row, count and manager row at that price), and the
    problem's size.  ``cost`` is None when the answer has no known price: then Z3 found that no priced candidate
    satisfies the contract."""

    cost: Fraction | None
    worker_row: int
    node_count: int
    manager_row: int  # -1: no manager
    classes: int
    problem: comp.Problem | None  # None: over a limit of z3_limit (or no priced candidate at all), not checked
    unchecked: str = ""  # why not checked: z3_limit's words

    @property
    def checked(self) -> bool:
        return self.problem is not None

    @property
    def priced(self) -> bool:
        return self.cost is not None


def literal_table(workers: comp.RoleSpec, manager: comp.RoleSpec | None) -> tuple[tuple[comp.Literal, ...],
                                                                                  dict[int, int]]:
    """One literal per distinct clause (an unscoped clause shared by both roles is one literal)."""
    lits: list[comp.Literal] = []
    index: dict[int, int] = {}
    for spec in (workers, manager):
        if spec is None:
            continue
        for c in (*spec.node, *spec.coupled, *((spec.count,) if spec.count is not None else ())):
            if id(c) not in index:
                index[id(c)] = len(lits)
                lits.append(comp.Literal(f"c{len(lits)}", c, spec.role))
    if workers.count is None:
        lits.append(comp.Literal(comp.DEFAULT_COUNT, None, workers.role))
    return tuple(lits), index


def new_solver(ctx: Any = None) -> Any:
    """A Z3 solver (the SMT core without the tactic front end: ~2x faster on these problems) that leaves SIGINT
    alone.  By default every ``check`` swaps in Z3's own SIGINT handler and puts the old one back with
    ``signal()``, which adds SA_RESTART: from then on a Ctrl-C no longer interrupts a blocking read in this
    process (``ccdsl deploy`` waiting for its set-up's output sat through it, issue 19), and checks in two threads
    at once can leave Z3's handler installed.  Our checks take milliseconds; Python's KeyboardInterrupt follows."""
    import z3

    s = z3.SimpleSolver(ctx=ctx)
    s.set("ctrl_c", False)
    return s


def solver_for(problem: comp.Problem, ctx: Any = None) -> tuple[Any, list[Any]]:  # z3 is untyped: Any
    """A solver holding ``problem`` and the assumption literal of each clause, in ``ctx`` (default: Z3's global
    context).  Pass a fresh ``z3.Context()`` where the answer must depend on the problem alone: in the global
    context, an unsat core can vary with what the process solved before."""
    import z3

    keep_heap_for_z3()
    s = new_solver(ctx)
    s.from_string(problem.text)
    return s, [z3.Bool(lit.name, ctx) for lit in problem.literals]


_HEAP_PAD = 64 << 20
_heap_kept = False


def keep_heap_for_z3() -> None:
    """Ask glibc's malloc to keep 64 MiB at the top of the heap when it trims (``mallopt(M_TOP_PAD)``), once
    per process.

    Why: a conflict is minimized in a fresh Z3 context (see :func:`solver_for`), and a context allocates ~16 MiB
    that it frees when it goes.  Whether glibc then hands those pages back to the kernel depends on what else
    happens to lie above them on the heap; when it does, the next context faults every page in again — measured
    on the 22.5k-row catalog: ~4,100 minor faults and ~7.5 ms of system time per infeasible resolve, twice its
    user time, from one unrelated allocation moved elsewhere.  With the pad the pages stay for the next context
    (0 faults).  The pad is address space: it costs resident memory only for pages once used.  Other C
    libraries (musl, macOS, Windows) have no ``mallopt``: nothing happens there."""
    global _heap_kept
    if _heap_kept:
        return
    _heap_kept = True
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.mallopt(ctypes.c_int(-2), ctypes.c_int(_HEAP_PAD))  # M_TOP_PAD is -2 in glibc's malloc.h
    except (OSError, AttributeError, TypeError):
        pass


class _ProofSolver:
    """One Z3 solver per process for the optimality proofs, each problem in its own push/pop scope.

    Why: a fresh solver's first check costs about 0.7 ms of set-up, more than the whole proof of a typical
    problem.  Z3 keeps a solver's declarations after ``pop``, so each name is declared once (every problem uses
    the same names with the same sorts: ``n``, ``k``, ``cost``, ``c<i>``…).  The unsat cores of conflicts use a
    fresh context instead (:func:`solver_for`), where the answer must not depend on what was solved before.
    """

    def __init__(self) -> None:
        import threading

        self.lock = threading.Lock()
        self.solver: Any = None  # a z3.Solver once first used (z3 ships no types)
        self.declared: set[str] = set()
        self.terms: dict[str, Any] = {}  # the constants the proof reads, built once (z3.Int() costs ~20 µs a call)

    def load(self, text: str) -> None:
        """Assert ``text`` in the current scope, leaving out declarations this solver has already seen.  Names
        count as declared only once Z3 has read the text: when it rejects it, it keeps none of them."""
        lines = []
        new = []
        for line in text.split("\n"):
            if line.startswith("(declare-const "):
                name = line.split(" ", 2)[1]
                if name in self.declared:
                    continue
                new.append(name)
            lines.append(line)
        self.solver.from_string("\n".join(lines))
        self.declared.update(new)

    def reset(self) -> None:
        """Forget the solver (the next use builds a new one): after a failure inside Z3, what the solver still
        holds is unknown, and one bad problem must not fail every later resolve of the process (issue 18)."""
        self.solver = None
        self.declared = set()
        self.terms = {}

    def __enter__(self):  # type: ignore[no-untyped-def]
        import z3

        self.lock.acquire()
        if self.solver is None:
            keep_heap_for_z3()
            self.solver = new_solver()
            # Z3's older simplex arithmetic (theory_arith) decides these small mixed Int/Real problems in about
            # half the time of the default solver (measured: 0.66 against 1.35 ms for the unsat check of a
            # 13-class cluster-total problem); both are complete decision procedures for linear arithmetic.
            self.solver.set("arith.solver", 2)
            # Nor do these problems gain from the preprocessing pass that propagates values into every assertion
            # or from relevancy filtering (both meant for large formulas): without them the proof of a 40-class
            # ManagerWorkers problem over every region took ~15% less CPU (1.5 against 1.75 ms, load, parse and
            # both checks), and no bench_resolve proof took more.  Neither changes what is proved.
            self.solver.set("propagate_values", False)
            self.solver.set("relevancy", 0)
            self.terms = {"k": z3.Int("k"), "n": z3.Int("n"), "km": z3.Int("km"), "cost": z3.Real("cost"),
                          AT_MOST_RANKED: z3.Bool(AT_MOST_RANKED), BELOW_RANKED: z3.Bool(BELOW_RANKED),
                          RANKED: z3.Bool(RANKED)}
        self.solver.push()
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        try:
            if kind is None:
                self.solver.pop()
            else:  # a failure (Z3's, or a disagreement) may have left the scope half loaded: start again
                self.reset()
        finally:
            self.lock.release()


_PROVER = _ProofSolver()


def prove(ranking: Ranking) -> Proof:
    """Let Z3 choose type and count, minimizing the cluster price over the Pareto classes of the candidates, and
    check its optimum against the ranked one: equal prices or a RuntimeError (a bug, not a user error).  The
    ranking then only breaks ties among equally cheap choices.

    The proof is two checks on one incremental solver: a solution whose cost is at most the ranked optimum
    exists, then "cheaper than that" is unsat.  That is the same proof as ``z3.Optimize`` or an iterative search
    gives (nothing is cheaper than the model), in the fewest checks: the ranking supplies the bound.  When the
    ranked choice is itself a class (its worker row and manager row are class representatives), the first check
    is whether that choice meets every clause at that cost: Z3 then confirms the ranked answer instead of
    searching for one, and no model needs to be read back.

    Only priced rows are given to Z3 (an unknown price has no value to minimize).  When the ranked answer is
    unpriced, Z3 must find the priced problem unsatisfiable: that is the proof that no priced row fits.
    """

    view = ranking.view
    wspec, mspec = ranking.workers.spec, ranking.manager.spec if ranking.manager else None
    lits, index = literal_table(wspec, mspec)
    mw = ranking.manager is not None
    price = view.numbers["price_per_hour"]
    workers = ranking.workers.candidates
    workers = workers[~np.isnan(price[workers])]
    manager_classes = None
    if ranking.manager is not None:  # only places that have both roles can host the cluster
        managers = ranking.manager.candidates
        managers = managers[~np.isnan(price[managers])]
        # location codes are small integers: a table per role says which places it has (no sorting set ops)
        places = len(view.location_labels)
        has_workers = np.zeros(places, dtype=bool)
        has_workers[view.location[workers]] = True
        has_managers = np.zeros(places, dtype=bool)
        has_managers[view.location[managers]] = True
        shared = has_workers & has_managers
        workers = workers[shared[view.location[workers]]]
        managers = managers[shared[view.location[managers]]]
        manager_classes = comp.make_classes(view, managers, ranking.manager.spec, None, True, index,
                                            exact_price=lower_budget(wspec))
    worker_classes = comp.make_classes(view, workers, wspec, None, mw, index)
    size = len(worker_classes.rows) + (len(manager_classes.rows) if manager_classes is not None else 0)
    best = int(ranking.rows[0])
    mbest = int(ranking.managers[0])
    bound: Fraction | None = None
    if not np.isnan(ranking.totals[0]):
        bound = int(ranking.counts[0]) * comp.exact(price[best])
        if mbest >= 0:
            bound += comp.exact(price[mbest])
    over = z3_limit(size, wspec)
    if over is not None:
        return Proof(bound, best, int(ranking.counts[0]), mbest, size, None, over)
    problem = comp.compile_problem(wspec, worker_classes, mspec, manager_classes, lits, index,
                                   count_cap(wspec.count), lambda row: row_name(view, row))
    ranked = None  # the ranked choice as (k, n, km) of the problem, when its rows are class representatives
    k = np.flatnonzero(worker_classes.rows == best)
    km = np.flatnonzero(manager_classes.rows == mbest) if manager_classes is not None else np.zeros(1, dtype=int)
    if len(k) and len(km):
        ranked = (int(k[0]), int(ranking.counts[0]), int(km[0]))
    import z3

    try:
        with _PROVER as prover:
            return _prove(prover, problem, bound, best, int(ranking.counts[0]), mbest, size, ranked)
    except z3.Z3Exception as e:
        raise solver_error(ranking.contract, e) from e


def solver_error(contract: Contract, error: Exception) -> SolverError:
    """A failure inside Z3 as the ccdsl error the user sees: the contract's name and Z3's first message."""
    detail: object = getattr(error, "value", error)  # a Z3Exception keeps Z3's message (bytes or str) in .value
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    return SolverError(contract.name, " ".join(text.split())[:300])


AT_MOST_RANKED = "at_most_ranked"
BELOW_RANKED = "below_ranked"
RANKED = "ranked_choice"


def _prove(prover: _ProofSolver, problem: comp.Problem, bound: Fraction | None, best: int, count: int, mbest: int,
           size: int, ranked: tuple[int, int, int] | None = None) -> Proof:
    import z3

    # every clause holds (the literals are asserted), in the problem's own text: far fewer calls through the Python
    # API, which cost more than the solving on these problems.  The two bounds on the cost and the ranked choice
    # are assumption literals of the same text, so the problem is parsed once.
    facts = [f"(assert {lit.name})" for lit in problem.literals]
    if bound is not None:
        limit = comp.num(bound)
        facts += [f"(declare-const {AT_MOST_RANKED} Bool)", f"(assert (=> {AT_MOST_RANKED} (<= cost {limit})))",
                  f"(declare-const {BELOW_RANKED} Bool)", f"(assert (=> {BELOW_RANKED} (< cost {limit})))"]
        if ranked is not None:
            k, n, km = ranked
            choice = f"(= k {k}) (= n {n})" + (f" (= km {km})" if problem.manager is not None else "")
            facts += [f"(declare-const {RANKED} Bool)", f"(assert (=> {RANKED} (and {choice})))"]
    prover.load(problem.text + "\n" + "\n".join(facts))
    s, terms = prover.solver, prover.terms
    if bound is None:
        if s.check() != z3.unsat:
            raise RuntimeError(f"internal: Z3 satisfies the contract with a priced row, the ranking found only "
                               f"unpriced ones\n{problem.text}")
        return Proof(None, best, count, mbest, size, problem)
    # Two checks: a cluster at most as dear as the ranked one exists (the ranked one itself, or Z3's model), and
    # none is cheaper (unsat).  Together they make Z3's optimum exactly the ranked price: a solution's cost is
    # <= bound and not < bound.
    if ranked is not None and s.check(terms[AT_MOST_RANKED], terms[RANKED]) == z3.sat:
        worker_row, n, manager_row = best, count, mbest
    elif s.check(terms[AT_MOST_RANKED]) == z3.sat:
        worker_row, n, manager_row = problem.decode(s.model(), terms)
    else:
        raise RuntimeError(f"internal: Z3 finds no solution as cheap as the ranked optimum {bound}\n{problem.text}")
    if s.check(terms[BELOW_RANKED]) != z3.unsat:
        value = s.model().eval(terms["cost"])
        cheaper = Fraction(value.numerator_as_long(), value.denominator_as_long())
        raise RuntimeError(f"internal: Z3 finds a cheaper cluster ({cheaper}) than the ranked optimum {bound}\n"
                           f"{problem.text}")
    return Proof(bound, worker_row, n, manager_row, size, problem)
