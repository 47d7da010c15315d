"""Markets: which roles of a contract run on spot, and the catalog as a spot contract sees it.

A spot node is priced at its spot price: the objective, ``node_price`` and ``cluster_price_per_hour`` all read it.
Rather than teaching every step of the resolver (masks, counts, Pareto classes, Z3, explanations) a second price
column, the catalog is rewritten *per market* before the resolver sees it, and everything downstream stays as it
is.  A spot row of the rewritten catalog is the row with:

- ``price_per_hour`` = its ``spot_price_per_hour`` (the cheapest zone's), NaN when no spot price is known (or the
  catalog says 0: a spot price is never free).  So a row without a known spot price ranks after every priced one
  and meets no ``node_price`` or budget, as an unpriced row does (issue 7);
- ``price_source`` / ``price_date`` = the spot price's, ``on_demand_price_per_hour`` = the on-demand price it
  replaced (for the answer's saving), ``spot_zone`` / ``spot_zones`` for deploy;
- only rows whose type supports spot (``spot`` column true): the others never compete for a spot role.

**Ranking rows without a spot price** (:func:`ceiling`).  A spot node is never charged more than its type's
on-demand price: that is AWS's default maximum price for a spot request, and ccdsl sets none (``SpotOptions`` in
:mod:`ccdsl.executor.providers.aws` has no ``MaxPrice``).  So the on-demand price is a known upper bound of an
unknown spot price, and the resolver ranks such rows by it: first the clusters whose spot prices are known (by
price), then those whose spot price is unknown but bounded (by the cluster's on-demand cost, then the usual tie
rules), then those with neither (by the tie rules alone).  The bound only orders: the answer's price stays unknown,
a price clause is still not met by it, and Z3 still sees priced rows only.  Without it, the unpriced tie rules
(fewer nodes, then more vCPUs) chose the biggest machine of the shipped catalog (no spot prices) for a spot
contract.

Which roles are on spot (:func:`spot_roles`): ``resolve(spot=True)`` / ``--spot``: every role; ``spot=False``:
none; ``None``: the contract decides — ``spot => true`` puts every role on spot, ``worker.spot => true`` (or
``manager.spot``) one role of a ManagerWorkers cluster, and a role-scoped value wins over the unscoped one.

Views: when every role is on spot the view holds the spot rows only; when one role of a ManagerWorkers cluster is
(``worker.spot``) it holds both markets' rows and each role sees its own (:meth:`.CatalogView.role_scope`), so the
manager is priced on-demand.  On-demand rows of such a view have ``spot_interruption`` 0 (the spot market does not
interrupt them), so an unscoped ``spot_interruption`` bound constrains the spot role only.  Views are cached as the
on-demand one is: per DataFrame (weakly) and, for the default catalog, on disk (:func:`ccdsl.resolver._view`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from ccdsl.catalog import schema
from ccdsl.errors import CatalogError, ContractError, Diagnostic
from ccdsl.resolver import view as views

if TYPE_CHECKING:
    from ccdsl.contract import Clause, Contract

SPOT = "spot"
ON_DEMAND = "on-demand"
# The catalog columns a spot view is made of, besides the on-demand view's.
SPOT_COLUMNS = ("spot", *schema.SPOT_COLUMNS)
INTERRUPTION = "spot_interruption"
FORMAT = 2  # bump when a market view's layout or meaning changes (part of the on-disk cache key)


def roles_of(contract: Contract) -> tuple[str | None, ...]:
    """The node roles of a contract: the workers and the manager of a ManagerWorkers cluster, else the peers."""
    return contract.roles


def spot_roles(contract: Contract, spot: bool | None = None) -> tuple[str | None, ...]:
    """The roles whose nodes are spot (in :func:`roles_of` order): all or none when ``spot`` says so, else
    :attr:`~ccdsl.contract.Contract.spot_roles`."""
    if spot is not None:
        return contract.roles if spot else ()
    return contract.spot_roles


def check(contract: Contract, roles: tuple[str | None, ...]) -> None:
    """A ``spot_interruption`` clause must bound some spot node: raise a ContractError at the clause when every
    role it applies to is on-demand (e.g. ``resolve(spot=False)`` of a spot contract, or a contract built in
    code; the checker refuses such a contract text as soon as it is read)."""
    for c in contract.clauses:
        if c.parameter != INTERRUPTION:
            continue
        applies = (c.role,) if c.role is not None else roles_of(contract)
        if not any(r in roles for r in applies):
            raise ContractError([_on_demand_bound(c)])


def _on_demand_bound(c: Clause) -> Diagnostic:
    span = c.span
    whose = f"the {c.role}'s nodes are" if c.role else "this contract's nodes are"
    return Diagnostic(f"{c.text}: spot_interruption bounds spot nodes, but {whose} on-demand",
                      path=span.path if span else None, line=span.line if span else None,
                      column=span.column if span else None,
                      end_column=span.end_column if span and span.end_line == span.line else None,
                      hint="add spot => true (or worker.spot => true), resolve with --spot, or drop the clause")


# ------------------------------------------------------------------------------------------------ views

def spot_frame(df: Any) -> Any:
    """The spot rows of a catalog DataFrame, priced at their spot prices (see the module's docstring)."""
    import pandas as pd

    missing = [c for c in ("spot", "spot_price_per_hour") if c not in df.columns]
    if missing:
        raise CatalogError(f"the catalog lacks the column(s) {', '.join(missing)}, needed to resolve spot nodes")
    supports = df["spot"].fillna(False).astype(bool).to_numpy()
    rows = df[supports]
    spot = pd.to_numeric(rows["spot_price_per_hour"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore"):
        spot = np.where(spot > 0, spot, np.nan)
    known = ~np.isnan(spot)
    out = {c: rows[c].to_numpy() for c in views.VIEW_COLUMNS if c in rows.columns}
    out["on_demand_price_per_hour"] = rows["price_per_hour"].to_numpy()
    out["price_per_hour"] = spot
    for target, source in (("price_source", "spot_price_source"), ("price_date", "spot_price_date"),
                           ("spot_zone", "spot_zone"), ("spot_zones", "spot_zones")):
        values = rows[source].fillna("").astype(str).to_numpy() if source in rows.columns else np.full(len(rows), "")
        out[target] = np.where(known, values, "")
    # only the zones' order is kept (deploy's order; the prices are the catalog's): a few distinct orders per region
    # instead of one distinct text per row keeps the cached view small and fast to load
    out["spot_zones"] = np.array([" ".join(z.split("=", 1)[0] for z in text.split()) for text in out["spot_zones"]],
                                 dtype=object)
    out[INTERRUPTION] = (rows[INTERRUPTION].to_numpy(dtype="float64", na_value=np.nan)
                         if INTERRUPTION in rows.columns else np.full(len(rows), np.nan))
    out["market"] = np.ones(len(rows))
    return pd.DataFrame(out)


def on_demand_frame(df: Any) -> Any:
    """Every row at its on-demand price, in a market frame's columns (never interrupted by the spot market)."""
    import pandas as pd

    out = {c: df[c].to_numpy() for c in views.VIEW_COLUMNS if c in df.columns}
    out["on_demand_price_per_hour"] = df["price_per_hour"].to_numpy()
    out["spot_zone"] = out["spot_zones"] = np.full(len(df), "")
    out[INTERRUPTION] = np.zeros(len(df))
    out["market"] = np.zeros(len(df))
    return pd.DataFrame(out)


def market_frame(df: Any, mixed: bool) -> Any:
    """The frame a market view is built from: spot rows only, or both markets' rows (``mixed``)."""
    if not mixed:
        return spot_frame(df)
    import pandas as pd

    return pd.concat([on_demand_frame(df), spot_frame(df)], ignore_index=True)


def build(df: Any, roles: tuple[str | None, ...], mixed: bool) -> views.CatalogView:
    """The market view of a catalog DataFrame for ``roles`` on spot."""
    return views.build_view(market_frame(df, mixed), roles if mixed else ())


def view_of(catalog: Any, roles: tuple[str | None, ...], mixed: bool) -> views.CatalogView:
    """The (cached, per DataFrame object) market view of a catalog DataFrame."""
    if isinstance(catalog, views.CatalogView):
        if "market" not in catalog.numbers:
            raise CatalogError("a spot contract needs the catalog itself (a DataFrame), not an on-demand view")
        return catalog
    return views.cached_view(catalog, (SPOT, roles, mixed), lambda: build(catalog, roles, mixed))


def ceiling(view: views.CatalogView) -> np.ndarray:
    """The most a node of each row is charged per hour: the price of a row whose price is known; for a spot row
    without a known spot price, its on-demand price (AWS's default maximum price of a spot request; see the
    module's docstring); NaN otherwise (an unpriced on-demand row, or a spot row without either price).
    Remembered per view (:meth:`.CatalogView.memo`)."""
    def build() -> np.ndarray:
        price = view.numbers["price_per_hour"]
        market = view.numbers.get("market")
        if market is None:
            return price
        fallback = np.where(market > 0, view.numbers["on_demand_price_per_hour"], np.nan)
        return np.where(np.isnan(price), fallback, price)

    return view.memo(("price ceiling",), build)


# ------------------------------------------------------------------------------------------------ answers

def spot_fields(view: views.CatalogView, row: int) -> dict[str, Any]:
    """The :class:`~ccdsl.resolution.Choice` fields of a spot row (market, zones, the on-demand price beside the
    spot one); none for an on-demand row.  Given to the choice as it is made (:func:`.solve.choice`): a
    ``dataclasses.replace`` afterwards cost ~20 µs per spot choice."""
    market = view.numbers.get("market")
    if market is None or not market[row] > 0:
        return {}
    od = float(view.numbers["on_demand_price_per_hour"][row])
    zones = tuple(view.label("spot_zones", row).split())
    return {"market": SPOT, "spot_zone": view.label("spot_zone", row), "spot_zones": zones,
            "on_demand_price_per_node_hour": None if math.isnan(od) else od}
