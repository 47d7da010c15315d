"""From a contract and the catalog view to ranked choices, and Z3's proof that the first one is optimal.

Pipeline (one data-flow direction):

1. :func:`rank` — vectorized: scope (default region) and per-node masks per role (:mod:`.filter`), the cheapest
   manager per provider+region, the cheapest worker count per candidate row in closed form (:mod:`.counts`), and
   the ranking of every feasible (type, region, count).
2. :func:`prove` — Z3: the coupled choice of type and count over the Pareto classes of the candidates
   (:mod:`.compile`) must be satisfiable at the ranked optimum's price and unsatisfiable below it.  The optimum
   is therefore certified by the solver, not only computed; a disagreement is a bug and raises.

**Tie-breaking** (deterministic, documented in the README): lowest total price per hour (manager included,
compared to 1e-9 USD), then fewer nodes, then more vCPUs per node, then provider, region and instance type name in
alphabetical order.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ccdsl.resolution import Choice
from ccdsl.resolver import compile as comp
from ccdsl.resolver.counts import Coupled, count_cap, count_domain, min_counts
from ccdsl.resolver.filter import clause_mask, scope_mask
from ccdsl.resolver.view import CatalogView


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
    manager_row: dict[int, int]  # location code -> best manager view row
    region: str

    @property
    def feasible(self) -> bool:
        return len(self.rows) > 0


def role_rows(view: CatalogView, spec: comp.RoleSpec, region: str, any_region: bool) -> RoleRows:
    scope = np.flatnonzero(scope_mask(view, spec.node, region, any_region))
    masks = tuple(clause_mask(view, c)[scope] for c in spec.node)
    ok = np.ones(len(scope), dtype=bool)
    for m in masks:
        ok &= m
    return RoleRows(spec, scope, masks, scope[ok])


def rank(view: CatalogView, contract, region: str, any_region: bool) -> Ranking:
    """Rank every feasible worker (type, region) by the tie-breaking rule."""
    wspec, mspec = comp.role_specs(contract)
    workers = role_rows(view, wspec, region, any_region)
    manager = role_rows(view, mspec, region, any_region) if mspec is not None else None
    rows = workers.candidates
    price = view.numbers["price_per_hour"]
    manager_row: dict[int, int] = {}
    offset = np.zeros(len(rows))
    if manager is not None:
        manager_row = best_per_location(view, manager.candidates)
        best_price = np.full(len(view.location_labels), np.inf)
        for loc, r in manager_row.items():
            best_price[loc] = price[r]
        offset = best_price[view.location[rows]]
        rows, offset = rows[np.isfinite(offset)], offset[np.isfinite(offset)]
    coupled = [Coupled(c, view.numbers[comp.coupled_column(c)][rows], offset if c.parameter == comp.BUDGET else 0.0)
               for c in wspec.coupled]
    counts = min_counts(count_domain(wspec.count, wspec.fixed), coupled, len(rows))
    ok = counts > 0
    rows, counts, offset = rows[ok], counts[ok], offset[ok]
    totals = counts * price[rows] + offset
    order = np.lexsort((view.codes["instance_type"][rows], view.codes["region"][rows], view.codes["provider"][rows],
                        -np.nan_to_num(view.numbers["vcpus"][rows]), counts, np.round(totals, 9)))
    return Ranking(view, workers, manager, rows[order], counts[order], totals[order], manager_row, region)


def best_per_location(view: CatalogView, rows: np.ndarray) -> dict[int, int]:
    """The cheapest row (tie rule: more vCPUs, then name) in each provider+region."""
    if len(rows) == 0:
        return {}
    loc = view.location[rows]
    order = np.lexsort((view.codes["instance_type"][rows], -np.nan_to_num(view.numbers["vcpus"][rows]),
                        view.numbers["price_per_hour"][rows], loc))
    first = np.r_[True, np.diff(loc[order]) != 0]
    return {int(loc[i]): int(rows[i]) for i in order[first]}


def choice(view: CatalogView, row: int, count: int, role: str | None) -> Choice:
    num, lab = view.numbers, view.label
    p = num["price_per_hour"][row]
    return Choice(
        provider=lab("provider", row), region=lab("region", row), instance_type=lab("instance_type", row),
        node_count=int(count), price_per_node_hour=float(p), price_per_hour=round(float(count * p), 9),
        vcpus=int(np.nan_to_num(num["vcpus"][row])), memory_gib=float(np.nan_to_num(num["memory_gib"][row])),
        accelerator_count=int(np.nan_to_num(num["accelerator_count"][row])),
        accelerator_model=lab("accelerator_model", row), accelerator_architecture=lab("accelerator_architecture", row),
        accelerator_memory_gib=float(np.nan_to_num(num["accelerator_memory_gib"][row])),
        cpu_model=lab("cpu_model", row), network_gbps=float(np.nan_to_num(num["network_gbps"][row])), role=role)


def alternatives(ranking: Ranking, top: int) -> list[int]:
    """Ranked positions of the best row of each instance type other than the chosen one, up to ``top``."""
    if top <= 0 or len(ranking.rows) <= 1:
        return []
    types = ranking.view.codes["instance_type"][ranking.rows]
    _, first = np.unique(types, return_index=True)
    first = np.sort(first)
    return [int(i) for i in first[first != 0][:top]]


# ------------------------------------------------------------------------------------------------ Z3 proof

@dataclass(frozen=True)
class Proof:
    """What Z3 established: the optimum's price, the model it found at that price, and the problem's size."""

    cost: Fraction
    worker_row: int
    node_count: int
    manager_row: int | None
    classes: int
    problem: comp.Problem


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


def solver_for(problem: comp.Problem):
    import z3

    s = z3.Solver()
    s.from_string(problem.text)
    return s, [z3.Bool(lit.name) for lit in problem.literals]


def prove(ranking: Ranking) -> Proof:
    """Certify with Z3 that no (type, count) is cheaper than the ranked optimum; return its model."""
    import z3

    view = ranking.view
    wspec, mspec = ranking.workers.spec, ranking.manager.spec if ranking.manager else None
    lits, index = literal_table(wspec, mspec)
    mw = ranking.manager is not None
    worker_classes = comp.make_classes(view, ranking.workers.candidates, wspec, None, mw, index)
    manager_classes = None
    if ranking.manager is not None:
        manager_classes = comp.make_classes(view, np.array(sorted(ranking.manager_row.values()), dtype=np.int64),
                                            ranking.manager.spec, None, True, index)
    best = int(ranking.rows[0])
    bound = int(ranking.counts[0]) * comp.exact(view.numbers["price_per_hour"][best])
    mbest = ranking.manager_row.get(int(view.location[best])) if mw else None
    if mbest is not None:
        bound += comp.exact(view.numbers["price_per_hour"][mbest])
    problem = comp.compile_problem(wspec, worker_classes, mspec, manager_classes, lits, index,
                                   count_cap(wspec.count), bound)
    s, assumptions = solver_for(problem)
    if s.check(*assumptions, z3.Bool("ble")) != z3.sat:
        raise RuntimeError(f"internal: Z3 finds no solution at the ranked optimum's price {bound}\n{problem.text}")
    model = s.model()
    k = model.eval(z3.Int("k")).as_long()
    n = model.eval(z3.Int("n")).as_long()
    km = model.eval(z3.Int("km")).as_long() if manager_classes is not None else None
    if s.check(*assumptions, z3.Bool("blt")) != z3.unsat:
        raise RuntimeError(f"internal: Z3 finds a cluster cheaper than the ranked optimum {bound}\n{problem.text}")
    return Proof(bound, int(worker_classes.rows[k]), n,
                 int(manager_classes.rows[km]) if manager_classes is not None and km is not None else None,
                 len(worker_classes.rows) + (len(manager_classes.rows) if manager_classes is not None else 0),
                 problem)
