"""The resolver: a checked contract + the catalog → the cost-optimal instance type and node count.

    >>> from ccdsl.contract import Clause, Contract
    >>> c = Contract("c", (Clause("node_count", "just", (4,)), Clause("node_machinetype", "just", ("t3.xlarge",))))
    >>> resolve(c).instance_type
    't3.xlarge'

Rules (details in the modules):

- **Scope**: ``cluster_locale`` restricts regions; otherwise AWS rows are restricted to the default region
  (``region=``, else ``$CCDSL_REGION``, else ``us-east-1``) unless ``any_region=True``.  Rows of other providers
  (``local``, ``ssh`` hosts of a user catalog) are not AWS regions.  A free on-premise row competes only when the
  contract names its provider, region or type (:mod:`.filter`); ``node_provider`` restricts providers.
- **Per-node clauses** filter rows (:mod:`.filter`); **counts** default to 1 and ranges are capped at 1024
  (:mod:`.counts`); **cluster totals** are count × per-node value over the workers; the **budget**
  ``cluster_price_per_hour`` covers the whole cluster, manager included.
- **Capacity**: a cluster is one row × a node count, and the count is at most the row's ``max_nodes`` (NaN =
  unlimited: cloud types, this machine; an SSH host row is 1 host, a host class as many as it has).  When a
  ManagerWorkers manager is the same row as its workers it takes one of those nodes: workers ≤ ``max_nodes − 1``.
- **Unknown prices** (offered rows no source prices): such a cluster ranks after every priced one, so it is
  chosen only when no priced row fits; its price is None in the answer, and it never meets ``node_price`` or
  ``cluster_price_per_hour``.  GovCloud rows (``us-gov-*``) compete only when named (:mod:`.filter`).
- **Spot** (:mod:`.market`): a role on spot (``spot => true``, ``worker.spot => true``, ``spot=True``) is priced
  at spot prices, over the rows whose type supports spot; a row with no known spot price is an unpriced row,
  ranked among the unpriced ones by its on-demand price (the most a spot node is charged, :func:`.market.ceiling`).
- **Objective**: the lowest cluster price per hour.  ManagerWorkers: the manager (one node) and the workers are
  resolved on their own clauses in the same provider and region; the cheapest manager there plus the cheapest
  workers under the remaining budget is optimal.
- **Ties** (:mod:`.solve`): total price, then fewer nodes, then more vCPUs, then provider, region, type name.
- **Z3**: chooses type and count together (minimizing by iterative search) over the Pareto classes and must agree
  with the vectorized ranking (:func:`.solve.prove`); when nothing fits, its unsat core, shrunk to a minimal set, names
  the conflicting clauses (:mod:`.explain`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ccdsl.resolution import Choice, Resolution

if TYPE_CHECKING:
    from pathlib import Path

    from ccdsl.contract import Contract
    from ccdsl.resolver.solve import Ranking
    from ccdsl.resolver.view import CatalogView

DEFAULT_REGION = "us-east-1"

# how many leading clusters of the ranking a resolve has sorted (the rest only when its alternatives need them)
RANK_HEAD = 64

__all__ = ["DEFAULT_REGION", "default_region", "known_regions", "resolve", "select"]


def default_region() -> str:
    """``$CCDSL_REGION`` or ``us-east-1``."""
    return os.environ.get("CCDSL_REGION") or DEFAULT_REGION


_DEFAULT: dict[tuple[object, ...], CatalogView] = {}


def _view(catalog: Any, spot: tuple[str | None, ...] = (), mixed: bool = False) -> CatalogView:
    """The array view of ``catalog``; for the default catalog, cached until one of its files changes (the
    loader hands out a fresh copy per call, so caching by DataFrame identity would never hit).  ``spot``: the
    roles on spot (then the market view of :mod:`.market`; ``mixed`` when other roles are on-demand)."""
    from ccdsl.resolver import view as views

    if catalog is not None:
        if spot:
            from ccdsl.resolver import market

            return market.view_of(catalog, spot, mixed)
        return views.view_of(catalog)
    from ccdsl.catalog import loader
    from ccdsl.catalog.local import local_record

    files = [*loader.shipped_files(), *loader.user_files()]
    key = (*((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files if p.exists()),
           repr(sorted(local_record().items())))
    variant = (spot, mixed) if spot else ()
    view = _DEFAULT.get((key, variant))
    if view is None:
        import hashlib

        digest = hashlib.sha1(repr((views.FORMAT, key, *variant)).encode()).hexdigest()[:16]
        if spot:
            from ccdsl.resolver import market

            digest = hashlib.sha1(repr((market.FORMAT, digest)).encode()).hexdigest()[:16]
        name = "resolver-view" if not spot else "resolver-spot-view"
        cached = _cache_dir() / f"{name}-{digest}.npz"
        view = views.load(cached)
        if view is None:
            if spot:
                frame = loader.load(columns=(*views.VIEW_COLUMNS, *market.SPOT_COLUMNS))
                view = market.build(frame, spot, mixed)
            else:
                view = views.view_of(loader.load(columns=views.VIEW_COLUMNS))
            views.save(view, cached)
        for stale in [k for k in _DEFAULT if k[0] != key]:  # another catalog's views (a file changed)
            del _DEFAULT[stale]
        _DEFAULT[(key, variant)] = view
    return view


def _ranking(contract: Contract, catalog: Any, region: str | None, any_region: bool,
             spot: bool | None = None, head: int | None = None) -> Ranking:
    from ccdsl.resolver import market
    from ccdsl.resolver.solve import rank

    roles = market.spot_roles(contract, spot)
    market.check(contract, roles)
    view = _view(catalog, roles, mixed=bool(roles) and len(roles) < len(market.roles_of(contract)))
    _check_regions(view, contract, catalog, region)
    return rank(view, contract, region or default_region(), any_region, head)


def region_origin(region: str | None) -> str:
    """Where the default region comes from: ``given`` (``region=``, ``--region``), ``env`` or ``default``."""
    return "given" if region else "env" if os.environ.get("CCDSL_REGION") else "default"


def known_regions(catalog: Any = None) -> frozenset[str]:
    """Every region of the catalog (of ``ccdsl.catalog.load()`` when None: shipped rows and user catalogs)."""
    return frozenset(_view(catalog).labels["region"])


def _check_regions(view: CatalogView, contract: Contract, catalog: Any, region: str | None) -> None:
    """A region the user named that no catalog row has is a typo (:mod:`.regions`).  The ranked view answers
    for the names it holds; only a miss reads every region (a spot view holds the spot rows only)."""
    from ccdsl.resolver import regions

    index = view.index("region")
    default = region or default_region()
    if default not in index:
        regions.check_default(default, region_origin(region), known_regions(catalog))
    if catalog is None and any(c.parameter == "cluster_locale" and any(str(v) not in index for v in c.values)
                               for c in contract.clauses):
        regions.check_clauses(contract, known_regions(None))


def _choice(view: CatalogView, row: int, count: int, role: str | None, manager: int = -1) -> Choice:
    """:func:`.solve.choice`, with the market of a spot row (:func:`.market.spot_fields`)."""
    from ccdsl.resolver import market, solve

    return solve.choice(view, row, count, role, manager, **market.spot_fields(view, row))


def _cache_dir() -> Path:
    """``$CCDSL_CACHE_DIR``; else ``$CCDSL_DATA_DIR/cache`` (so a data dir set for isolation keeps its cache
    with it); else the platform's user cache directory."""
    from pathlib import Path

    if os.environ.get("CCDSL_CACHE_DIR"):
        return Path(os.environ["CCDSL_CACHE_DIR"])
    if os.environ.get("CCDSL_DATA_DIR"):
        from ccdsl import datadir

        return datadir.ensure() / "cache"  # the first command may be a resolve: the data dir is made private
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("ccdsl"))


def resolve(contract: Contract, catalog: Any = None, *, region: str | None = None, any_region: bool = False,
            top: int = 5, prove: bool = True, spot: bool | None = None) -> Resolution:
    """The cost-optimal :class:`~ccdsl.resolution.Resolution` of ``contract``.

    Args:
        contract: a checked :class:`~ccdsl.contract.Contract`.
        catalog: a catalog DataFrame (default: ``ccdsl.catalog.load()``, the shipped one merged with user rows).
        region: the default region for AWS rows (default ``$CCDSL_REGION`` or ``us-east-1``).
        any_region: let every region compete.
        top: how many alternatives (next-best distinct instance types) to list.
        prove: let Z3 find the optimum too and check it agrees (on by default; off to measure the closed form).
        spot: True: every role on spot, priced at spot prices (``--spot``); False: every role on-demand; None: the
            contract decides (``spot => true``, ``worker.spot => true``).  See :mod:`.market`.

    Raises:
        UnsatisfiableError: nothing satisfies the contract; ``conflict`` is a minimal set of clauses.
    """
    from ccdsl.resolver import explain, solve

    # the answer reads the best cluster and a prefix for the alternatives: only a head of the ranking is sorted
    ranking = _ranking(contract, catalog, region, any_region, spot, head=max(RANK_HEAD, top + 1))
    if not ranking.feasible:
        raise explain.unsatisfiable(ranking, contract)
    view = ranking.view
    best = int(ranking.rows[0])
    wrole = ranking.workers.spec.role
    chosen = _choice(view, best, int(ranking.counts[0]), wrole, int(ranking.managers[0]))
    manager = None
    if ranking.manager is not None:
        manager = _choice(view, int(ranking.managers[0]), 1, "manager")
    proof = solve.prove(ranking) if prove else None
    ranking, positions = solve.ranked_alternatives(ranking, top)
    alts = [_choice(view, int(ranking.rows[i]), int(ranking.counts[i]), wrole, int(ranking.managers[i]))
            for i in positions]
    origin = region_origin(region)
    why = explain.explanation(ranking, chosen, manager, alts, proof, origin, positions[0] if positions else None, top)
    return Resolution(contract, chosen, manager, tuple(alts), why, matches=len(ranking.rows),
                      problem=proof.problem.text if proof is not None and proof.problem is not None else "")


def select(contract: Contract, catalog: Any = None, *, region: str | None = None,
           any_region: bool = False, spot: bool | None = None) -> list[Choice]:
    """Every matching (type, region) with its cheapest node count, best first (like the seed's ``@select``).

    For a ManagerWorkers contract these are the worker choices (each priced for the workers only; the manager is
    the cheapest one in the same region).  An infeasible contract gives an empty list.
    """
    ranking = _ranking(contract, catalog, region, any_region, spot)
    role = ranking.workers.spec.role
    return [_choice(ranking.view, int(r), int(n), role, int(m))
            for r, n, m in zip(ranking.rows, ranking.counts, ranking.managers)]
