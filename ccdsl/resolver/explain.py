"""Why: sentences for a resolution, and for an infeasible contract a minimal conflict and the nearest misses.

Conflicts come from Z3.  The whole problem — every row in scope (not only those passing the per-node clauses),
grouped into Pareto classes that remember which clauses they fail — is checked with one assumption literal per
clause.  The unsat core is then shrunk by deletion (drop a clause; if the rest is still unsat, keep it dropped),
so the reported set is *minimal*: it is unsatisfiable, and removing any one of its clauses makes it satisfiable.
When ``node_count`` is not written its default (1) takes part as the pseudo-clause ``node_count => 1 (default)``
without a position.  The default region is not a clause: when it empties the candidates the error says so.

Near misses are the cheapest rows of distinct instance types that fail the fewest clauses, with the failing
values in the user's units ("g4dn.xlarge: accelerator_memory 16 GiB < 32 GiB"), or the row's capacity
("gpu01 (lab): 1 host available < 2 nodes").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ccdsl import fabric, taxonomy
from ccdsl.burstable import answer_line
from ccdsl.catalog.freshness import PRICE_MAX_AGE_DAYS, SPOT_PRICE_MAX_AGE_DAYS, price_age_days
from ccdsl.catalog.shares import count_text
from ccdsl.contract import Clause, Contract
from ccdsl.errors import Conflict, UnsatisfiableError
from ccdsl.language.values import SHARED_COUNTS
from ccdsl.parameters import PARAMETERS, asked
from ccdsl.resolution import Choice, money, place_of, quantity
from ccdsl.resolver import compile as comp
from ccdsl.resolver import solve
from ccdsl.resolver.counts import MAX_NODES, count_cap, count_domain
from ccdsl.resolver.filter import AWS, NAMING, ON_PREMISE, clause_mask, column_of, naming_clauses
from ccdsl.resolver.solve import Ranking, RoleRows, literal_table, lower_budget, rank, row_name, solver_for
from ccdsl.resolver.view import CatalogView

UNITS = {"memory": "GiB", "bandwidth": "Gbit/s", "price": "USD/h"}
REFRESH_HINT = "`ccdsl catalog refresh --provider aws --from price-list --region {region}` brings it"
SPOT_REFRESH_HINT = "`ccdsl catalog refresh --spot` brings them"


# ------------------------------------------------------------------------------------------- infeasible

def unsatisfiable(ranking: Ranking, contract: Contract) -> UnsatisfiableError:
    """The error for a contract nothing satisfies, with a minimal conflict from Z3's unsat core."""
    workers, manager = ranking.workers, ranking.manager
    if len(workers.scope) == 0 or (manager is not None and len(manager.scope) == 0):
        return UnsatisfiableError(
            contract.name, message=f"contract '{contract.name}' is unsatisfiable: the catalog has no instance "
                                   f"types in region {ranking.region}; name another with cluster_locale, "
                                   "--region or --any-region")
    core = minimal_core(ranking)
    if not core and manager is not None:  # no clause to blame: the two roles' rows share no provider and region
        return UnsatisfiableError(contract.name,
                                  message=f"contract '{contract.name}' is unsatisfiable: {_apart(ranking)}")
    conflict = tuple(_conflict(lit) for lit in core)
    pinned = _pinned_elsewhere(ranking, core)
    if pinned is not None:  # the other types of the region are no help: say where the pinned one is instead
        error = UnsatisfiableError(contract.name, conflict, message=f"contract '{contract.name}' is unsatisfiable: "
                                                                    f"{pinned}")
        error.hint = _elsewhere(ranking, contract) or "name one of those regions with cluster_locale, --region R " \
                                                      "or --any-region"
        return error
    error = UnsatisfiableError(contract.name, conflict, tuple(near_misses(ranking)))
    error.hint = (_missing_provider(ranking, core) or _no_spot_type(ranking, core) or _missing_spot_data(ranking, core)
                  or _elsewhere(ranking, contract))
    return error


def _apart(ranking: Ranking) -> str:
    """Why a ManagerWorkers contract fails with every clause dropped: the manager and the workers sit in the same
    provider and region, and their rows have none in common (say, workers in a GovCloud default region and a
    manager whose own cluster_locale lets every region but GovCloud compete: GovCloud competes only when named)."""
    view = ranking.view

    def places(rows: np.ndarray) -> str:
        names = [" ".join(view.location_labels[int(c)]) for c in np.unique(view.location[rows])]
        return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")

    manager = ranking.manager
    assert manager is not None
    return (f"the manager and the workers have no provider and region in common (workers: "
            f"{places(ranking.workers.scope)}; manager: {places(manager.scope)}); GovCloud regions compete only "
            "when named: give both roles the same cluster_locale")


def _no_spot_type(ranking: Ranking, core: list[comp.Literal]) -> str | None:
    """When the conflict pins a spot role to types that no spot-capable row has (a type without spot support never
    competes for a spot role)."""
    view = ranking.view
    if "market" not in view.numbers:
        return None
    for lit in core:
        c = lit.clause
        if c is None or c.parameter != "node_machinetype" or c.qualifier not in ("just", "oneof"):
            continue
        rr = ranking.manager if lit.role == "manager" and ranking.manager is not None else ranking.workers
        spot = view.numbers["market"] > 0
        if not spot[rr.scope].any() or clause_mask(view, c)[spot].any():
            continue
        names = ", ".join(str(v) for v in c.values)
        return (f"no row of {names} supports spot (the catalog's spot column): a type without spot never competes "
                "for a spot node; pick a type that supports spot, or drop spot => true")
    return None


# The clauses that read spot data on a spot row, and the column each one needs.
_SPOT_DATA = {"node_price": "price_per_hour", "cluster_price_per_hour": "price_per_hour",
              "spot_interruption": "spot_interruption"}


def _missing_spot_data(ranking: Ranking, core: list[comp.Literal]) -> str | None:
    """When the conflict bounds spot prices or interruption rates that the catalog does not know for the spot
    rows the role's other clauses leave (the shipped catalog has no spot data)."""
    view = ranking.view
    if "market" not in view.numbers:
        return None
    for lit in core:
        c = lit.clause
        column = _SPOT_DATA.get(c.parameter) if c is not None else None
        if c is None or column is None:
            continue
        rr = ranking.manager if lit.role == "manager" and ranking.manager is not None else ranking.workers
        others = np.ones(len(rr.scope), dtype=bool)
        for clause, mask in zip(rr.spec.node, rr.masks):
            if clause is not c:
                others &= mask
        rows = rr.scope[others]
        spot = rows[view.numbers["market"][rows] > 0]
        if len(spot) and np.isnan(view.numbers[column][spot]).all():
            what = "spot price" if column == "price_per_hour" else "spot interruption rate"
            return f"no {what} known for these rows: `ccdsl catalog refresh --spot` brings them"
    return None


def _pinned_elsewhere(ranking: Ranking, core: list[comp.Literal]) -> str | None:
    """``the pinned type t3.xlarge has no row in the catalog for region eu-west-1; …``: when the conflict
    names an instance type that the catalog has, only not where the contract looks.  Then the nearest misses (the
    region's other types) are noise, and where the pinned type is offered is the answer."""
    view = ranking.view
    for lit in core:
        c = lit.clause
        if c is None or c.parameter != "node_machinetype" or c.qualifier not in ("just", "oneof"):
            continue
        rr = ranking.manager if c.role == "manager" and ranking.manager is not None else ranking.workers
        anywhere = clause_mask(view, c)
        if anywhere[rr.scope].any() or not anywhere.any():
            continue
        regions = sorted({view.label("region", int(r)) for r in np.flatnonzero(anywhere)})
        where = f"region {ranking.region}" if ranking.default_region else "the regions the contract allows"
        shown = ", ".join(regions[:6]) + (", …" if len(regions) > 6 else "")
        kind = "type" if len(c.values) == 1 else "types"
        return (f"the pinned {kind} {', '.join(str(v) for v in c.values)} {'has' if len(c.values) == 1 else 'have'}"
                f" no row in the catalog for {where}; the catalog has {'it' if len(c.values) == 1 else 'them'} in "
                f"other regions ({len(regions)}: {shown})")
    return None


def _missing_provider(ranking: Ranking, core: list[comp.Literal]) -> str | None:
    """When the conflict asks for a provider the catalog has no rows of (on-premise hosts not described yet)."""
    for lit in core:
        c = lit.clause
        if c is None or c.parameter != "node_provider" or c.qualifier not in ("just", "oneof"):
            continue
        have = set(ranking.view.labels["provider"])
        wanted = sorted(label for v in c.values for label in taxonomy.covered_labels("provider", str(v)))
        if wanted and not have.intersection(wanted):
            return (f"the catalog has no '{'/'.join(wanted)}' rows: describe your hosts in a user catalog "
                    "(CSV or TOML in the user data directory's catalogs/, or --catalog FILE)")
    return None


def _elsewhere(ranking: Ranking, contract: Contract) -> str | None:
    """When only the default region is at fault: where the contract would resolve instead."""
    if not ranking.default_region:
        return None
    anywhere = rank(ranking.view, contract, ranking.region, True)
    if not anywhere.feasible:
        return None
    view, best = ranking.view, int(anywhere.rows[0])
    total = float(anywhere.totals[0])
    price = "price unknown" if np.isnan(total) else f"${total:.6g}/h"
    return (f"it resolves in other regions (cheapest: {view.label('instance_type', best)} × {int(anywhere.counts[0])}"
            f" in {view.label('region', best)}, {price}): use --any-region, --region or cluster_locale")


def minimal_core(ranking: Ranking) -> list[comp.Literal]:
    """A minimal unsatisfiable set of the contract's clauses (deletion-based shrinking of Z3's core).

    Z3 runs in a fresh context so that the same contract always names the same conflict (a contract can have
    several minimal conflicts, and in the shared global context Z3's core depends on earlier solves)."""
    import z3

    problem = _full_problem(ranking)
    if problem is None:
        return _vectorized_core(ranking)
    try:
        core = _z3_core(problem)
    except z3.Z3Exception as e:  # the context is this call's own: nothing of it outlives the error
        raise solve.solver_error(ranking.contract, e) from e
    return _as_written(ranking, core) if _overrides(ranking.contract) or _counts_cores(ranking) else core


def _overrides(contract: Contract) -> bool:
    """Whether a role's clause replaces an unscoped clause of the same parameter for that role
    (``manager.node_provider => @unrestricted`` beside ``node_provider => "Local"``).

    Why it matters: Z3's problem is built over each role's rows in scope for the whole contract, and there dropping
    a clause leaves its role unconstrained.  Dropping a role's override means something else: the role inherits
    the unscoped clause again, which can narrow it (``Local`` for the manager) or widen its scope (the on-premise
    rows ``Local`` names).  So Z3's core can miss the override, or keep one it no longer needs."""
    unscoped = {c.parameter for c in contract.clauses if c.role is None}
    return any(c.role is not None and c.parameter in unscoped for c in contract.clauses)


def _counts_cores(ranking: Ranking) -> bool:
    """Whether a role's vCPU clause counts cores (``smt => false``, :func:`.compile.counted_columns`).  Like an
    override, dropping ``smt => false`` changes what another clause means (its vCPUs are counted again), which Z3's
    problem, built over fixed masks, does not know: its core could name the vCPU clause without ``smt``."""
    specs = (ranking.workers.spec, ranking.manager.spec if ranking.manager is not None else None)
    return any(c.column for spec in specs if spec is not None for c in spec.node + spec.coupled)


def _as_written(ranking: Ranking, core: list[comp.Literal]) -> list[comp.Literal]:
    """A minimal conflict under what dropping a clause means to the contract (:func:`relaxed`, checked by the
    ranking): deletion over every clause, those outside Z3's ``core`` tried first so that its clauses stay when
    they can, repeated until no clause can go (an override makes dropping non-monotone: one pass is not enough)."""
    wspec = ranking.workers.spec
    lits, _ = literal_table(wspec, ranking.manager.spec if ranking.manager is not None else None)
    names = {lit.name for lit in core}
    return _shrunk(ranking, [lit for lit in lits if lit.name not in names] + list(core), until_fixed=True)


def _z3_core(problem: comp.Problem) -> list[comp.Literal]:
    """Z3's core of ``problem`` shrunk to a minimal one, in a fresh context (see :func:`minimal_core`)."""
    import z3

    s, assumptions = solver_for(problem, z3.Context())
    by_name = {lit.name: lit for lit in problem.literals}
    if s.check(*assumptions) != z3.unsat:
        raise RuntimeError(f"internal: Z3 satisfies a contract the ranking found infeasible\n{problem.text}")
    core = _ordered(s.unsat_core(), assumptions)
    i = 0
    while i < len(core):
        trial = core[:i] + core[i + 1:]
        if s.check(*trial) == z3.unsat:
            core = _ordered(s.unsat_core(), trial)
        else:
            i += 1
    return [by_name[str(a)] for a in core]


def _vectorized_core(ranking: Ranking) -> list[comp.Literal]:
    """The same deletion-based minimization, with the vectorized ranking as the feasibility check (for problems
    over a limit of :func:`.solve.z3_limit`).  Dropping a clause means what it means to the solver: a dropped node count
    (written or the default 1) allows any count up to the cap (1024, or the largest count the clause named), a
    dropped locale lets every region compete."""
    wspec = ranking.workers.spec
    lits, _ = literal_table(wspec, ranking.manager.spec if ranking.manager is not None else None)
    return _shrunk(ranking, list(lits), until_fixed=_overrides(ranking.contract) or _counts_cores(ranking))


def _shrunk(ranking: Ranking, core: list[comp.Literal], until_fixed: bool) -> list[comp.Literal]:
    """Deletion-based shrinking of the unsatisfiable ``core`` with the ranking as the feasibility check, in
    ``core``'s order; passes repeated while one drops a clause when ``until_fixed``."""
    while True:
        size = len(core)
        i = 0
        while i < len(core):
            trial = core[:i] + core[i + 1:]
            if not rank(ranking.view, relaxed(ranking.contract, trial), ranking.region, ranking.any_region).feasible:
                core = trial
            else:
                i += 1
        if not until_fixed or len(core) == size:
            return core


def relaxed(contract: Contract, keep: list[comp.Literal]) -> Contract:
    """``contract`` with only the clauses of ``keep`` (and its cluster_type)."""
    from dataclasses import replace

    from ccdsl.contract import Clause as C

    kept = [lit.clause for lit in keep if lit.clause is not None]
    kept_ids = {id(c) for c in kept}
    clauses = [c for c in contract.clauses if c.parameter == "cluster_type"] + kept
    for c in contract.clauses:
        if id(c) in kept_ids:
            continue
        if c.parameter == "node_count" and count_cap(c) > MAX_NODES:  # any count up to the cap the clause raised
            clauses.append(C(c.parameter, "atmost", (count_cap(c),), c.role, c.span))
        elif c.parameter == "node_count":
            clauses.append(C(c.parameter, "unrestricted", (), c.role, c.span))
        elif c.parameter == "cluster_locale" or (c.parameter in NAMING and c.qualifier in ("just", "oneof")):
            # every region competes; the on-premise rows the clause named still do (see filter.naming_clauses)
            named = c.values if c.qualifier in ("just", "oneof") else ()
            clauses.append(C(c.parameter, "unrestricted", named, c.role, c.span))
        elif c.parameter == "burstable" and c.values == (True,):  # still asks for burstable rows (filter.py)
            clauses.append(C(c.parameter, "unrestricted", (True,), c.role, c.span))
    if contract.clause("node_count") is None and contract.clause("node_count", "worker") is None and not any(
            lit.clause is None for lit in keep):
        clauses.append(C("node_count", "unrestricted"))
    return replace(contract, clauses=tuple(clauses))


def _ordered(core: Any, assumptions: list[Any]) -> list[Any]:  # z3 terms (z3 is untyped)
    names = {str(c) for c in core}
    return [a for a in assumptions if str(a) in names]


def _full_problem(ranking: Ranking) -> comp.Problem | None:
    view = ranking.view
    wspec = ranking.workers.spec
    mspec = ranking.manager.spec if ranking.manager is not None else None
    lits, index = literal_table(wspec, mspec)
    mw = ranking.manager is not None

    def classes(rr: RoleRows, spec: comp.RoleSpec, exact_price: bool = False) -> comp.Classes:
        fails = ~np.column_stack(rr.masks) if rr.masks else np.zeros((len(rr.scope), 0), dtype=bool)
        local = {j: index[id(c)] for j, c in enumerate(spec.node)}
        return comp.make_classes(view, rr.scope, spec, fails, mw, local, exact_price)

    worker_classes = classes(ranking.workers, wspec)
    manager_classes = None
    if ranking.manager is not None and mspec is not None:
        manager_classes = classes(ranking.manager, mspec, lower_budget(wspec))
    size = len(worker_classes.rows) + (len(manager_classes.rows) if manager_classes is not None else 0)
    if solve.z3_limit(size, wspec) is not None:
        return None
    return comp.compile_problem(wspec, worker_classes, mspec, manager_classes, lits, index, count_cap(wspec.count),
                                lambda row: row_name(view, row))


def _conflict(lit: comp.Literal) -> Conflict:
    c = lit.clause
    if c is None:
        return Conflict("node_count", "node_count => 1 (default)", None, None, lit.role)
    line = c.span.line if c.span is not None else None
    column = c.span.column if c.span is not None else None
    return Conflict(c.parameter, c.text, line, column, c.role)


def near_misses(ranking: Ranking, limit: int = 3) -> list[str]:
    """The closest rows: fewest failed per-node clauses, then cheapest; one per instance type."""
    view, rr = ranking.view, ranking.workers
    out: list[str] = []
    if len(rr.scope) == 0:
        return out
    fails = (~np.column_stack(rr.masks)).sum(axis=1) if rr.masks else np.zeros(len(rr.scope), dtype=int)
    gap = np.zeros(len(rr.scope))
    for c, mask in zip(rr.spec.node, rr.masks):
        gap += _gap(view, rr.scope, c, mask)
    price = [k[rr.scope] for k in solve.price_keys(view)]  # cheapest first, as the ranking orders prices
    order = np.lexsort((*price, -_reach(view, rr), gap, fails))
    seen: set[int] = set()
    manager_places = set(view.location[ranking.manager.candidates].tolist()) if ranking.manager is not None else set()
    for i in order:
        t = int(view.codes["instance_type"][rr.scope[i]])
        if t in seen:
            continue
        seen.add(t)
        row = int(rr.scope[i])
        reasons = [why_not(view, row, c) for c, m in zip(rr.spec.node, rr.masks) if not m[i]]
        if not reasons and ranking.manager is not None and view.location[row] not in manager_places:
            reasons = [f"no manager fits in {view.label('provider', row)} {view.label('region', row)}"]
        if not reasons:
            reasons = [_capacity_reason(view, row, rr.spec, ranking) or _count_reason(view, row, rr.spec)]
        out.append(f"{view.label('instance_type', row)} ({view.label('region', row)}): " + "; ".join(reasons))
        if len(out) >= limit:
            break
    return out


# How far a row is from a clause it fails, beyond any relative gap of two numbers (which is at most 1): a clause
# without an order (a symbol, a value @not excludes) counts 1; a type, region or provider the contract does not
# name 1.5 (the user asked for those by name: a named type that fails another clause is nearer); an unknown value 2.
UNORDERED_GAP, UNNAMED_GAP, UNKNOWN_GAP = 1.0, 1.5, 2.0


def _gap(view: CatalogView, scope: np.ndarray, c: Clause, mask: np.ndarray) -> np.ndarray:
    """How far each row of ``scope`` is from satisfying the per-node clause ``c`` (0 where it does, ``mask``):
    for a number, the relative gap to the nearest value the clause allows, |x − v| / max(|x|, |v|), so that
    ``node_vcpus_count => @atleast(100000)`` lists the largest types first and ``@atmost(0.25G)`` of memory the
    smallest; the others as :data:`UNORDERED_GAP` says."""
    p = PARAMETERS[c.parameter]
    named = c.parameter in NAMING and c.qualifier in ("just", "oneof")
    gap = np.where(mask, 0.0, UNNAMED_GAP if named else UNORDERED_GAP)
    if p.kind not in ("count", "memory", "bandwidth", "price", "fraction") or c.qualifier in ("not", "unrestricted"):
        return gap
    x = view.numbers[column_of(c)][scope]
    values = [float(v) for v in c.values]  # a numeric clause's values are numbers
    targets = values if c.qualifier in ("just", "oneof", "between") else values[:1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.min([np.abs(x - v) / np.maximum(np.maximum(np.abs(x), abs(v)), 1e-300) for v in targets], axis=0)
    rel = np.where(np.isnan(x), UNKNOWN_GAP, np.fmin(rel, UNORDERED_GAP))
    return np.where(mask, 0.0, rel)


def _reach(view: CatalogView, rr: RoleRows) -> np.ndarray:
    """How close each row gets to the cluster totals' bounds (1 = meets them all): a lower bound with the most
    nodes allowed, an upper bound with the fewest, so that count-only near misses list the types that come
    closest first (the most vCPUs for ``cluster_vcpus_count => @atleast(…)``, the fewest for ``@atmost``)."""
    domain = count_domain(rr.spec.count, rr.spec.fixed)
    reach = np.ones(len(rr.scope))
    if domain.empty:
        return reach
    most = np.fmin(float(domain.last), view.numbers["max_nodes"][rr.scope])  # NaN max_nodes: unlimited
    least = float(domain.first)
    # Bounds and counts up to 2**53 and down to 1e-300 overflow a ratio to inf, which is only "far past the
    # bound" (minimum() with 1 takes care of it): not worth a RuntimeWarning on the user's terminal.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for c in rr.spec.coupled:
            if c.qualifier not in ("atleast", "atmost", "between"):  # no side to come closer from
                continue
            raw = view.numbers[comp.coupled_column(c)][rr.scope]
            v = np.nan_to_num(raw)  # unknown: no reach (0 nodes' worth of a lower bound, and no upper bound met)
            low, high = float(c.values[0]), float(c.values[-1])  # a total's values are numbers
            if c.qualifier in ("atleast", "between") and low > 0:
                reach = np.minimum(reach, v * most / low)
            if c.qualifier in ("atmost", "between"):
                over = np.where(v * least > high, high / (v * least), 1.0)
                reach = np.minimum(reach, np.where(np.isnan(raw), 0.0, over))
    return reach


def _limit(view: CatalogView, row: int) -> float:
    """How many nodes of ``row`` exist (inf: unlimited)."""
    limit = view.number("max_nodes", row)
    return float("inf") if np.isnan(limit) else limit


def _capacity_reason(view: CatalogView, row: int, spec: comp.RoleSpec, ranking: Ranking) -> str | None:
    """``gpu01 … 1 host available < 2 nodes``: when the row has fewer nodes than the smallest count allowed (less
    the manager's, when the only manager of the place is this row)."""
    domain = count_domain(spec.count, spec.fixed)
    limit = _limit(view, row)
    if domain.empty or limit == float("inf"):
        return None
    unit = "host" if view.label("provider", row) == "ssh" else "node"
    have = f"{int(limit)} {unit}{'s' * (limit != 1)} available"
    lo = domain.first
    if limit < lo:
        return f"{have} < {lo} node{'s' * (lo != 1)}"
    if ranking.manager is not None:
        places = ranking.manager.candidates[view.location[ranking.manager.candidates] == view.location[row]]
        if len(places) and (places == row).all() and limit - 1 < lo:
            return f"{have}, the manager takes 1, {int(limit) - 1} left < {lo} worker node{'s' * (lo != 1)}"
    return None


def _count_reason(view: CatalogView, row: int, spec: comp.RoleSpec) -> str:
    domain = count_domain(spec.count, spec.fixed)
    domain = domain.at_most(_limit(view, row))
    if domain.empty:
        return "no node count satisfies " + (spec.count.text if spec.count else "node_count")
    lo, hi = domain.first, domain.last
    parts = []
    for c in spec.coupled:
        v = view.number(comp.coupled_column(c), row)
        n = hi if c.qualifier in ("atleast", "between") else lo
        parts.append(f"{c.parameter} {_fmt(n * v, c.parameter)} with {n} node{'s' * (n != 1)} "
                     f"(wants {_want(c)})")
    counts = f"{lo}" if lo == hi else f"{lo}..{hi}"
    return "no node count in " + counts + " fits: " + ", ".join(parts) if parts else "no node count fits"


def why_not(view: CatalogView, row: int, c: Clause) -> str:
    """``accelerator_memory 16 GiB < 32 GiB``: the row's value against the clause, in the user's units."""
    p = PARAMETERS[c.parameter]
    verb = "is excluded:" if c.qualifier == "not" else "is not"  # "4 is excluded: not 4, 8"
    if p.kind == "symbol":
        cols = taxonomy.DOMAIN_COLUMNS.get(p.domain or "", ())
        have = next((view.label(col, row) for col in reversed(cols) if view.label(col, row)), "none")
        return f"{c.parameter} {have} {verb} {_want(c)}"
    if p.kind in ("machinetype", "region"):
        return f"{c.parameter} {view.label(p.column or '', row)} {verb} {_want(c)}"
    if p.kind == "flag":  # "two threads per core, fixed (wants smt => false)"
        return f"{_have(view, row, c)} (wants {c.parameter} => {str(c.values[0]).lower()})"
    v = view.number(column_of(c), row)
    if np.isnan(v):
        return f"{c.parameter} unknown (wants {_want(c)})"
    op = {"atleast": "<", "atmost": ">", "just": "≠"}.get(c.qualifier)
    cores = " cores" if c.column == "cores" else ""
    if op:
        return f"{c.parameter} {_fmt(v, c.parameter)}{cores} {op} {_fmt(c.values[0], c.parameter)}"
    return f"{c.parameter} {_fmt(v, c.parameter)}{cores} {verb} {_want(c)}"


# A value list in an answer's sentence shows this many values, then how many there are: a sentence is read, and a
# list of a megabyte (issue 18) took ~0.2 s to format in full.
SHOWN_VALUES = 12


def _want(c: Clause) -> str:
    vals = [_fmt(v, c.parameter) for v in c.values[:SHOWN_VALUES]]
    if len(c.values) > SHOWN_VALUES:
        vals.append(f"… ({len(c.values)} values)")
    if c.qualifier == "atleast":
        return "≥ " + vals[0]
    if c.qualifier == "atmost":
        return "≤ " + vals[0]
    if c.qualifier == "between":
        return f"{vals[0]}..{vals[1]}"
    if c.qualifier == "oneof":
        return "one of " + ", ".join(vals)
    if c.qualifier == "not":
        return "not " + ", ".join(vals)
    if c.qualifier == "unrestricted":
        return "anything"
    return vals[0] if vals else ""


def _fmt(v: object, parameter: str) -> str:
    p = PARAMETERS.get(parameter)
    if not isinstance(v, (int, float, np.floating, np.integer)) or isinstance(v, bool):
        return str(v)
    x = float(v)
    text = quantity(x)
    if p is None:
        return text
    if parameter in SHARED_COUNTS:  # 1/8 of an accelerator, not 0.12
        return count_text(x)
    if p.kind == "price":
        return "price unknown" if x != x else f"${x:.4g}/h"
    if p.kind == "fraction":
        return f"{100 * x:g}%"
    unit = UNITS.get(p.kind, "")
    return f"{text} {unit}".strip()


# --------------------------------------------------------------------------------------------- success

REGION_ORIGINS = {"default": "the default", "env": "from $CCDSL_REGION", "given": "the region asked for"}


def explanation(ranking: Ranking, chosen: Choice, manager: Choice | None, alternatives: list[Choice],
                proof: solve.Proof | None, region_origin: str = "default",
                next_position: int | None = None, top: int = 5) -> tuple[str, ...]:
    """Sentences saying why this choice: what it is, how it meets each clause, what it costs, what came next.

    ``region_origin`` says where the default region came from (a key of :data:`REGION_ORIGINS`);
    ``next_position`` is the ranked position of the first alternative (to bound its price when it is unknown);
    ``top`` how many alternatives were asked for (when fewer are listed though more rows match, a line says why)."""
    view, row = ranking.view, int(ranking.rows[0])
    lines = [chosen.describe()]
    for c in ranking.workers.spec.node:
        lines.append(f"{c.text}: {_have(view, row, c)}")
    for c in ranking.workers.spec.coupled:
        v = view.number(comp.coupled_column(c), row)
        total = chosen.node_count * v + ((manager.price_per_hour or 0.0) if manager and c.parameter == comp.BUDGET
                                         else 0)
        with_manager = manager is not None and c.parameter == comp.BUDGET
        plus = f" + manager {_fmt(manager.price_per_hour or 0.0, c.parameter)}" if with_manager and manager else ""
        lines.append(f"{c.text}: {chosen.node_count} × {_fmt(v, _counted(c))}{plus} = {_fmt(total, _counted(c))}"
                     + _meets(c))
    lines += cost_lines(chosen, manager)
    lines += [line for line in (answer_line(chosen.instance_type, "workers:" if manager else ""),
                                answer_line(manager.instance_type, "manager:") if manager else "") if line]
    efa = fabric.asked(ranking.workers.spec.node)
    if efa is not None or (chosen.provider == AWS and chosen.efa_interfaces):  # a type without EFA: said if asked
        lines.append(("workers: " if manager else "") + fabric.decide(chosen.instance_type, chosen.efa_interfaces,
                                                                     chosen.node_count, efa).line())
    for role, choice, spec in (("workers: " if manager else "", chosen, ranking.workers.spec),
                               ("manager: ", manager, ranking.manager.spec if ranking.manager else None)):
        if choice is not None and spec is not None and asked(spec.node, "smt") is False:
            lines.append(role + smt_line(choice))
    if ranking.default_region and chosen.provider == AWS:  # other providers' rows are not limited by region
        lines.append(f"region {ranking.region} ({REGION_ORIGINS[region_origin]}; --any-region lets every region "
                     "compete)")
    if chosen.provider in ON_PREMISE:
        lines.append(on_premise_note(ranking, row, chosen))
    if alternatives:
        a = alternatives[0]
        bound = ""
        cap = _ceiling(ranking, next_position) if next_position is not None else None
        if a.cluster_price_per_hour is None and cap is not None:  # spot without a spot price: at most on-demand
            bound = f" (at most {money(cap)}, its on-demand price)"
        lines.append(f"next cheapest: {a.instance_type} × {a.node_count} ({a.region}) "
                     f"{money(a.cluster_price_per_hour)}{bound}")
    z3_note = ""
    if proof is not None:
        classes = f"{proof.classes} Pareto class{'es' * (proof.classes != 1)}"
        if not proof.checked:
            z3_note = f"; not checked with Z3 ({proof.unchecked})"
        elif proof.priced:
            z3_note = f"; Z3 finds the same optimum over {classes}"
        else:
            z3_note = "; Z3 finds no priced row that satisfies it" + (
                f" ({classes} of priced rows)" if proof.classes else " (none is a candidate)")
    n = len(ranking.rows)
    lines.append(f"{n} (type, region) row{'s satisfy' if n != 1 else ' satisfies'} the contract{z3_note}")
    if len(alternatives) < top and n > len(alternatives) + 1:  # fewer listed than asked though more rows match
        types = len(np.unique(view.codes["instance_type"][ranking.rows]))
        others = f"only {types - 1} other instance type{'s' * (types != 2)}" if types > 1 else "no other instance type"
        lines.append(f"{others} among them, and the alternatives list one row (its cheapest) per instance type; "
                     "`ccdsl select` lists every row")
    return tuple(lines)


def _ceiling(ranking: Ranking, i: int) -> float | None:
    """The most the cluster at ranked position ``i`` is charged per hour (workers and manager, each at
    :func:`.market.ceiling`: a spot node without a spot price at its on-demand price); None when unbounded."""
    from ccdsl.resolver.market import ceiling

    most = ceiling(ranking.view)
    cap = int(ranking.counts[i]) * float(most[int(ranking.rows[i])])
    manager = int(ranking.managers[i])
    if manager >= 0:
        cap += float(most[manager])
    return None if np.isnan(cap) else cap


def on_premise_note(ranking: Ranking, row: int, chosen: Choice) -> str:
    """Why an on-premise row took part: the clause that names it, or its price (see :mod:`.filter`)."""
    place = place_of(chosen.provider, chosen.region)
    where = (f"{chosen.instance_type} is this machine, on-premise" if chosen.provider == "local"
             else f"{chosen.instance_type} is on-premise ({place}, from your catalog)")
    if (chosen.price_per_node_hour or 0) > 0:
        return f"{where}; it competes with the cloud on its catalog price"
    named = [c for c in naming_clauses(ranking.workers.spec.node) if clause_mask(ranking.view, c)[row]]
    if named:
        return f"{where}; it competes because {named[0].text} names it"
    return where


def price_note(c: Choice) -> str:
    """``(karpenter@6fc13b52, 2026-07-20)``: where a price comes from and its date; a spot price says so, with its
    zone: ``(spot in us-east-1b, aws-api, 2026-11-20T09:00:00Z)``."""
    parts = [p for p in (c.price_source, c.price_date) if p]
    if c.spot:
        parts.insert(0, f"spot in {c.spot_zone}" if c.spot_zone else "spot")
    return f" ({', '.join(parts)})" if parts else ""


def cost_lines(chosen: Choice, manager: Choice | None) -> list[str]:
    """What the cluster costs, where the prices come from, and what to do when one is unknown or old."""
    n = chosen.node_count
    cost = f"{n} node{'s' * (n != 1)} × {money(chosen.price_per_node_hour)}{price_note(chosen)}"
    if chosen.price_per_node_hour is not None:
        cost += f" = {money(chosen.price_per_hour)}"
    if manager is not None:
        cost += f" + manager {manager.instance_type} {money(manager.price_per_hour)}{price_note(manager)}"
        cost += f" = {money(chosen.cluster_price_per_hour)}"
    lines = [cost]
    lines += [spot_line(c) for c in (manager, chosen) if c is not None and c.spot]
    unknown = [c for c in (chosen, manager) if c is not None and c.price_per_node_hour is None]
    for c in unknown:
        if c.spot and c.on_demand_price_per_node_hour is not None:
            lines.append(f"{c.instance_type} in {c.region}: no spot price known; ranked by its on-demand price "
                         f"{money(c.on_demand_price_per_node_hour)}, the most a spot node is charged (AWS's default "
                         f"maximum price); {SPOT_REFRESH_HINT}; no row with a known spot price satisfies the "
                         "contract")
        elif c.spot:
            lines.append(f"{c.instance_type} in {c.region}: no spot price known; {SPOT_REFRESH_HINT}; no row "
                         "with a known spot price satisfies the contract")
        else:
            lines.append(f"{c.instance_type} in {c.region}: price unknown in the shipped catalog; "
                         + REFRESH_HINT.format(region=c.region) + "; no priced row satisfies the contract")
    warnings: list[str] = []
    for role in (chosen, manager):
        age = price_age_days(role.price_date) if role is not None and role.price_date else None
        if role is None or age is None:
            continue
        if role.spot and age > SPOT_PRICE_MAX_AGE_DAYS:
            warnings.append(f"warning: the spot price of {role.instance_type} in {role.region} is {age} days old "
                            f"({role.price_source}, {role.price_date}); spot prices move within days: "
                            "`ccdsl catalog refresh --spot` brings a current one")
        elif not role.spot and age > PRICE_MAX_AGE_DAYS:
            warnings.append(f"warning: the price of {role.instance_type} in {role.region} is {age} days old "
                            f"({role.price_source}, {role.price_date}); " + REFRESH_HINT.format(region=role.region)
                            .replace("brings it", "brings a current one"))
    # a manager of the workers' type, region and market has the same price row: its warning is said once
    return lines + list(dict.fromkeys(warnings))


def smt_line(c: Choice) -> str:
    """``SMT off: 64 cores, one thread each (EC2 sells 128 vCPUs)``: what ``smt => false`` makes of the type."""
    if c.cores >= c.vcpus:
        return f"SMT off: {c.cores} cores, one thread each (as the type runs anyway)"
    return (f"SMT off: {c.cores} cores, one thread each (EC2 sells {c.vcpus} vCPUs; the launch sets "
            "CpuOptions ThreadsPerCore = 1)")


def spot_line(c: Choice) -> str:
    """``workers on spot: on-demand $0.17/h per node, spot saves 75.35%`` (or why the saving is unknown)."""
    who = {"manager": "manager", "worker": "workers"}.get(c.role or "", "nodes")
    od = c.on_demand_price_per_node_hour
    line = f"{who} on spot: on-demand {money(od)} per node"
    if od is not None and c.node_count != 1:
        line += f" ({money(od * c.node_count)} for {c.node_count})"
    saving = c.saving
    return line + (f", spot saves {100 * saving:.2f}%" if saving is not None else "; saving unknown")


def _have(view: CatalogView, row: int, c: Clause) -> str:
    p = PARAMETERS[c.parameter]
    if p.kind == "symbol":
        cols = taxonomy.DOMAIN_COLUMNS.get(p.domain or "", ())
        return ", ".join(x for x in (view.label(col, row) for col in cols) if x) or "none"
    if p.kind in ("machinetype", "region"):
        return view.label(p.column or "", row)
    if p.kind == "flag":
        has = view.number(p.column or "", row) > 0
        return FLAG_WORDS[p.name][not has] if p.name in FLAG_WORDS else f"{'' if has else 'not '}{p.name}"
    return _fmt(view.number(column_of(c), row), _counted(c)) + _meets(c)


# What a row has of a flag whose name does not say it: (has, has not).
FLAG_WORDS = {"smt": ("one thread per core", "two threads per core, fixed")}
_BOUND_SIGN = {"atleast": "≥", "atmost": "≤"}


def _counted(c: Clause) -> str:
    """The parameter whose unit a clause's numbers are in: its own, or ``node_cores_count`` for a vCPU clause of a
    role with ``smt => false`` (its nodes' vCPUs are their cores)."""
    return "node_cores_count" if c.column == "cores" else c.parameter


def _meets(c: Clause) -> str:
    """`` ≥ 16 GiB``: the bound a satisfied numeric clause was checked against."""
    if c.qualifier in ("atleast", "atmost"):
        return f" {_BOUND_SIGN[c.qualifier]} {_fmt(c.values[0], _counted(c))}"
    if c.qualifier in ("just", "unrestricted"):
        return ""
    return f" ({_want(c)})"
