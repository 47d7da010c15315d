"""Per-node clauses as boolean masks over the catalog rows (vectorized, no Z3).

Semantics (one row = one instance type in one region of one provider):

- **Numbers** (``node_memory_size``, ``node_vcpus_count``, ``accelerator_count``, ``accelerator_memory``,
  ``storage_size``, ``network_performance``, ``node_price``, …) compare the parameter's catalog column with the
  clause's value in the catalog's unit: ``just`` is equality, ``atleast``/``atmost``/``between`` are inclusive
  bounds, ``oneof`` any of the values, ``not`` none of them.  Comparisons allow a relative slack of
  :data:`RELATIVE_TOLERANCE` (1e-9) so binary floating point never decides a boundary.  An unknown value (NaN)
  satisfies no numeric clause except ``@unrestricted``.
- **Symbols** (accelerator, processor, provider, storage type, …): a row matches symbol S of domain D when ANY
  column of ``taxonomy.DOMAIN_COLUMNS[D]`` holds a label in ``taxonomy.covered_labels(D, S)``; ``oneof`` is the
  union of its symbols, ``not`` the complement of that union (so ``accelerator_manufacturer => @not(NVIDIA)`` also
  matches rows without accelerators).
- **Ordered symbols** (``accelerator_architecture``, ``processor_microarchitecture``): ``@atleast(X)``,
  ``@atmost(X)`` and ``@between(X, Y)`` cover the generations of X's line on that side of X
  (``taxonomy.ordered_labels``); other makers' rows never match.
- **Machine types and regions** match the ``instance_type`` / ``region`` column exactly.

:func:`scope_mask` is the part that is not a clause: the default region and on-premise rows.  When no clause
of the role names ``cluster_locale``, AWS rows are restricted to the default region (``--region``, else
``$CCDSL_REGION``, else ``us-east-1``) unless ``any_region``; rows of other providers carry their own
pseudo-region and are never restricted by the default region.

**On-premise rows** (providers :data:`ON_PREMISE`: this machine, SSH hosts of user catalogs) compete only when
the role *names* them — a ``node_provider``, ``cluster_locale`` or ``node_machinetype`` clause (``=> v`` or
``@oneof``) that covers their provider, region or type — or when their catalog gives them a price above 0.  Why:
a free row wins every contract it fits, so once a user catalog of lab hosts is added they would take over
unrelated contracts (and hosts described but not reachable would be chosen).  A price is how a user catalog says
otherwise: a priced on-premise row competes on price like a cloud row.

**Burstable types** (t1, t2, t3, t3a, t4g: the ``burstable`` column) compete only when the role asks for them:
``burstable => true``, or a ``node_machinetype`` clause (``=> v`` or ``@oneof``) that names them.  Why: their list
price buys a baseline share of each vCPU (5 % for t3.nano); under the sustained load of an MPI run they are either
throttled to it (standard credits) or billed for the surplus (unlimited), so the cheapest-by-list-price answer
would be the wrong cluster (:mod:`ccdsl.burstable`).  ``burstable => false`` is a clause like any other: it
refuses burstable rows, also named ones.

**GovCloud** regions (``us-gov-*``) need an account of their own, so their rows compete only when a
``cluster_locale`` clause (just/oneof) or the default region names a GovCloud region — never under ``any_region``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ccdsl import taxonomy
from ccdsl.contract import Clause, Value
from ccdsl.parameters import ORDERED_QUALIFIERS, PARAMETERS
from ccdsl.resolver.view import CatalogView

RELATIVE_TOLERANCE = 1e-9
AWS = "aws"
LOCAL = "local"
ON_PREMISE = ("local", "ssh")
NAMING = {"node_provider": "provider", "cluster_locale": "region", "node_machinetype": "instance_type"}
GOVCLOUD_PREFIX = "us-gov-"


def is_govcloud(region: object) -> bool:
    return str(region).startswith(GOVCLOUD_PREFIX)


def tolerance(x: float) -> float:
    """The slack allowed when comparing with ``x``."""
    return RELATIVE_TOLERANCE * max(1.0, abs(float(x)))


def clause_mask(view: CatalogView, clause: Clause) -> np.ndarray:
    """Rows that satisfy one node-scope clause."""
    p = PARAMETERS[clause.parameter]
    if clause.qualifier == "unrestricted":
        return np.ones(view.size, dtype=bool)
    if p.kind == "symbol":
        return _symbol_mask(view, p.domain or "", clause)
    if p.kind in ("machinetype", "region"):
        return _exact_mask(view, p.column or "", clause)
    if p.kind == "flag":
        has = view.numbers[p.column or ""] > 0
        if p.requires:  # efa => true, smt => false: rows with the column; the other value: no filter
            return has if clause.values[0] is p.when else np.ones(view.size, dtype=bool)
        # burstable => true admits burstable rows (scope_mask); => false refuses them
        return np.ones(view.size, dtype=bool) if clause.values[0] is True else ~has
    return number_test(view.numbers[column_of(clause)], clause.qualifier, clause.values)


def column_of(clause: Clause) -> str:
    """The catalog column a clause reads: its parameter's, or the one its role set (``smt => false``: a node's
    vCPUs are its cores)."""
    return clause.column or PARAMETERS[clause.parameter].column or ""


def number_test(x: np.ndarray, qualifier: str, values: tuple[Value, ...]) -> np.ndarray:
    """``qualifier(values)`` applied to the numbers ``x`` (NaN never passes).  Shared with the count solver."""
    numbers = [float(v) for v in values]  # a numeric parameter's values are numbers (the checker saw to it)
    hit: np.ndarray
    with np.errstate(invalid="ignore"):
        if qualifier == "unrestricted":
            return np.ones(x.shape, dtype=bool)
        if qualifier == "atleast":
            hit = x >= numbers[0] - tolerance(numbers[0])
            return hit
        if qualifier == "atmost":
            hit = x <= numbers[0] + tolerance(numbers[0])
            return hit
        if qualifier == "between":
            lo, hi = numbers[0], numbers[1]
            hit = (x >= lo - tolerance(lo)) & (x <= hi + tolerance(hi))
            return hit
        hit = np.zeros(x.shape, dtype=bool)
        for v in numbers:
            hit |= np.abs(x - v) <= tolerance(v)
        if qualifier in ("just", "oneof"):
            return hit
        if qualifier == "not":
            hit = ~hit & ~np.isnan(x)
            return hit
    raise ValueError(f"unknown qualifier {qualifier!r}")


LABEL_MASKS = 64  # label masks kept per view (see _labels_mask)


def _labels_mask(view: CatalogView, columns: tuple[str, ...], labels: frozenset[str]) -> np.ndarray:
    """Rows whose label in one of ``columns`` is one of ``labels``: a copy of a mask remembered per view.

    Why remembered: a resolve asks for the same mask several times (a ``node_machinetype`` clause is a role's
    mask, then names rows for the burstable and the on-premise scopes), each a pass over every row of the view;
    apart from :meth:`CatalogView.memo`, whose few entries are the view's sort orders."""
    cache: dict[tuple[tuple[str, ...], frozenset[str]], np.ndarray] = view.__dict__.setdefault("_label_masks", {})
    found = cache.get((columns, labels))
    if found is None:
        if len(cache) >= LABEL_MASKS:
            del cache[next(iter(cache))]
        found = cache[(columns, labels)] = _labels_mask_of(view, columns, labels)
    return found.copy()


def _labels_mask_of(view: CatalogView, columns: tuple[str, ...], labels: frozenset[str]) -> np.ndarray:
    out = np.zeros(view.size, dtype=bool)
    for col in columns:
        index = view.index(col)
        hits = [index[lab] for lab in labels if lab in index]
        if hits:
            table = np.zeros(len(view.labels[col]), dtype=bool)
            table[hits] = True
            out |= table[view.codes[col]]
    return out


def _covered(domain: str, name: object) -> frozenset[str]:
    try:
        return taxonomy.covered_labels(domain, str(name))
    except KeyError:  # a clause built in code with a spelling instead of the canonical name
        node = taxonomy.lookup(domain, str(name))
        return taxonomy.covered_labels(domain, node.name) if node is not None else frozenset()


def _symbol_mask(view: CatalogView, domain: str, clause: Clause) -> np.ndarray:
    if clause.qualifier in ORDERED_QUALIFIERS:  # generations of one line (taxonomy.ORDERS)
        names = tuple(n.name if (n := taxonomy.lookup(domain, str(v))) else str(v) for v in clause.values)
        return _labels_mask(view, taxonomy.DOMAIN_COLUMNS[domain], taxonomy.ordered_labels(domain, clause.qualifier,
                                                                                            names))
    labels: frozenset[str] = frozenset().union(*(_covered(domain, v) for v in clause.values))
    hit = _labels_mask(view, taxonomy.DOMAIN_COLUMNS[domain], labels)
    return ~hit if clause.qualifier == "not" else hit


def _exact_mask(view: CatalogView, column: str, clause: Clause) -> np.ndarray:
    wanted = {str(v) for v in clause.values}
    hit = _labels_mask(view, (column,), frozenset(wanted))
    return ~hit if clause.qualifier == "not" else hit


def scope_mask(view: CatalogView, clauses: tuple[Clause, ...], region: str, any_region: bool) -> np.ndarray:
    """Rows a role may use before any clause is applied: everything, or AWS only in the default region; free
    on-premise rows only when named (see the module's docstring)."""
    allowed: np.ndarray = ~on_premise_unnamed(view, clauses) & ~burstable_unasked(view, clauses)
    if any_region or any(c.parameter == "cluster_locale" for c in clauses):
        # a locale dropped while minimizing a conflict (@unrestricted keeping its values) still names GovCloud:
        # dropping a clause widens what competes, never narrows it
        names_gov = any(c.parameter == "cluster_locale" and (c.qualifier in ("just", "oneof") or (
            c.qualifier == "unrestricted" and c.values)) and any(is_govcloud(v) for v in c.values) for c in clauses)
        if not names_gov:
            allowed &= ~view.memo(("govcloud rows",), lambda: _govcloud_rows(view))
        return allowed
    aws = view.code("provider", AWS)
    if aws is None:
        return allowed
    in_region = view.code("region", region)
    not_aws: np.ndarray = view.codes["provider"] != aws
    if in_region is None:
        scoped: np.ndarray = allowed & not_aws
    else:
        scoped = allowed & (not_aws | (view.codes["region"] == in_region))
    return scoped


def scope_key(clauses: tuple[Clause, ...], region: str, any_region: bool) -> tuple[object, ...] | None:
    """What :func:`scope_mask` of ``clauses`` depends on besides the view, when no clause bears on it (none
    names a provider, region or type, or is a ``burstable`` clause): then the mask is a property of the view, the
    default region and ``any_region`` alone, the same for every such contract; None otherwise."""
    if any(c.parameter in NAMING or c.parameter == "burstable" for c in clauses):
        return None
    return ("default scope", None if any_region else region)


def burstable_unasked(view: CatalogView, clauses: tuple[Clause, ...]) -> np.ndarray:
    """Burstable rows the clauses do not ask for: out of scope (see the module's docstring).  A ``burstable``
    clause dropped while a conflict is minimized (``@unrestricted`` keeping ``true``) still asks for them."""
    if any(c.parameter == "burstable" and True in c.values and c.qualifier in ("just", "unrestricted")
           for c in clauses):
        return np.zeros(view.size, dtype=bool)
    out: np.ndarray = view.memo(("burstable rows",), lambda: view.numbers["burstable"] > 0).copy()
    if not out.any():
        return out
    for c in naming_clauses(clauses):
        if c.parameter == "node_machinetype":
            out &= ~clause_mask(view, c)
    return out


def _govcloud_rows(view: CatalogView) -> np.ndarray:
    """Rows in a GovCloud region (a table over the region labels, indexed by the rows' codes)."""
    table = np.array([is_govcloud(r) for r in view.labels["region"]], dtype=bool)
    rows: np.ndarray = table[view.codes["region"]]
    return rows


def on_premise(view: CatalogView) -> np.ndarray:
    """Rows of an on-premise provider (this machine, SSH hosts)."""
    out = np.zeros(view.size, dtype=bool)
    for name in ON_PREMISE:
        code = view.code("provider", name)
        if code is not None:
            out |= view.codes["provider"] == code
    return out


def naming_clauses(clauses: tuple[Clause, ...]) -> list[Clause]:
    """The clauses that name on-premise rows: provider, locale or machine type, ``=> v`` or ``@oneof``.

    A clause dropped while a conflict is minimized (``@unrestricted`` keeping the values it had, see
    :func:`.explain.relaxed`) still names what it named, as a dropped locale does not bring back the default
    region: dropping a clause widens what competes, never narrows it."""
    out = []
    for c in clauses:
        if c.parameter in NAMING and c.qualifier in ("just", "oneof"):
            out.append(c)
        elif c.parameter in NAMING and c.qualifier == "unrestricted" and c.values:
            out.append(replace(c, qualifier="oneof"))
    return out


def on_premise_unnamed(view: CatalogView, clauses: tuple[Clause, ...]) -> np.ndarray:
    """Free on-premise rows that no clause of ``clauses`` names: out of scope.  (The free on-premise rows depend
    on the catalog alone: computed once per view.)"""
    free = view.memo(("free on-premise rows",), lambda: on_premise(view) & ~(view.numbers["price_per_hour"] > 0))
    out = free.copy()
    if not out.any():
        return out
    for c in naming_clauses(clauses):
        out &= ~clause_mask(view, c)
    return out
