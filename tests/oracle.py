"""A brute-force oracle for the resolver, written independently of ``ccdsl.resolver``.

Plain Python over ``DataFrame.to_dict("records")``: every row, every node count, every clause checked one by one. It
shares only the *facts* with the resolver (``ccdsl.parameters`` for which column a parameter reads,
``ccdsl.taxonomy`` for what a symbol covers) and re-implements the documented semantics: inclusive bounds with a
relative slack of 1e-9 (none for count totals: vCPUs and accelerators summed over the workers are whole numbers
compared exactly), NaN satisfies nothing but ``@unrestricted``, ``not`` of a symbol is the complement, AWS rows
restricted to the default region unless ``cluster_locale`` or any-region, ``us-gov-*`` rows only when the default
region or a just/oneof ``cluster_locale`` names a GovCloud region, free on-premise rows (``local``, ``ssh``) only
when a ``node_provider``, ``cluster_locale`` or ``node_machinetype`` clause (just/oneof) names their provider,
region or type (a priced one competes like a cloud row), burstable rows (the ``burstable`` column, or an AWS type
:mod:`ccdsl.burstable` documents) only with ``burstable => true`` or a just/oneof ``node_machinetype`` naming them
(``burstable => false`` refuses them), ordered symbol bounds (``@atleast(Ampere)``) over the generations of one line
of ``taxonomy.ORDERS``, compute capability from ``taxonomy.COMPUTE_CAPABILITY``, node_count default 1, compared
exactly (whole numbers, no slack), and ranges capped at max(1024, named counts) (domains too large to list are tried
at the counts next to every boundary, see ``_edges``), a row's count at most its ``max_nodes`` (NaN = unlimited) and
one less when the manager is that same row, totals = count × per-node value, budget = workers + manager, manager and
workers in the same provider and region. Unknown prices (NaN): such a row meets no ``node_price`` and no budget; a
cluster with an unknown price competes only when no priced cluster satisfies the contract, and then the tie rules
choose (fewer nodes, more vCPUs, provider, region, type name). Slow by design; use small catalogs.

Markets (issue 14): a role on spot (``spot=True`` for every role; ``spot=None`` reads the contract: ``spot => true``
every role, ``worker.spot``/``manager.spot`` one role, the role's own value first) uses only the rows whose
``spot`` column is true, each priced at its ``spot_price_per_hour`` (unknown when NaN or not above 0), so every
rule above (unknown prices, node_price, budget) reads the spot price.  An on-demand role of a contract with a spot
role has ``spot_interruption`` 0 (the spot market does not interrupt it).  A spot node is never charged more than
its on-demand price (AWS's default maximum price), so a cluster whose spot price is unknown has an upper bound when
every unknown spot price has a known on-demand one: such clusters rank after the priced ones, by that bound, then
the tie rules; the clusters with no bound come last (``Answer.rank_key``).

Fractional accelerators (issue 20 item 3): a share of one GPU counts as its fraction (:func:`_shares`), and a role
that asks for an accelerator without an ``accelerator_count`` clause needs a whole one (:func:`_whole_accelerator`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ccdsl import burstable, taxonomy
from ccdsl.contract import Clause, Contract
from ccdsl.parameters import PARAMETERS

TOL = 1e-9
CAP = 1024


@dataclass(frozen=True)
class Answer:
    cost: float  # NaN: unknown (the worker's or the manager's price is unknown)
    worker: dict
    count: int
    manager: dict | None

    @property
    def priced(self) -> bool:
        return not math.isnan(self.cost)

    @property
    def most(self) -> float:
        """The most the cluster can cost: its price; when unknown, the same sum with each unknown spot price
        replaced by the row's on-demand price; NaN when that is unknown too."""
        m = self.manager
        return self.count * _most(self.worker) + (_most(m) if m is not None else 0.0)

    def rank_key(self) -> tuple:
        """Priced first (by price), then bounded (by the bound), then the rest; then the tie rules."""
        if self.priced:
            return (0, round(self.cost, 9), *self.tie_key())
        if not math.isnan(self.most):
            return (1, round(self.most, 9), *self.tie_key())
        return (2, 0.0, *self.tie_key())

    def tie_key(self) -> tuple:
        """The tie rules after the price: fewer nodes, more vCPUs, then provider, region, type name."""
        w = self.worker
        return (self.count, -_num(w["vcpus"]), _str(w["provider"]), _str(w["region"]), _str(w["instance_type"]))


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def _most(row: dict) -> float:
    """The most a node of ``row`` is charged: its price; an unknown spot price is at most the on-demand one."""
    price = _num(row["price_per_hour"])
    if math.isnan(price) and row.get("market") == "spot":
        return _num(row.get("on_demand_price"))
    return price


def _str(x) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else str(x)


def tester(qualifier: str, values: tuple, exact: bool = False):
    """``compare`` with the bounds worked out once (the oracle's inner loop).  ``exact``: a count total (vCPUs,
    accelerators), whole numbers compared with no slack, in Python integers."""
    if qualifier == "unrestricted":
        return lambda x: True
    if exact:
        return _exact_tester(qualifier, values)
    lo = [v - TOL * max(1.0, abs(v)) for v in values]
    hi = [v + TOL * max(1.0, abs(v)) for v in values]
    if qualifier == "atleast":
        return lambda x: x >= lo[0]
    if qualifier == "atmost":
        return lambda x: x <= hi[0]
    if qualifier == "between":
        return lambda x: lo[0] <= x <= hi[1]
    bands = list(zip(lo, hi))
    if qualifier in ("just", "oneof"):
        return lambda x: any(a <= x <= b for a, b in bands)
    return lambda x: x == x and not any(a <= x <= b for a, b in bands)


def _exact_tester(qualifier: str, values: tuple):
    """A count total against the values, exactly: the total is a Fraction (``n * Fraction(per)``), never a
    float."""
    vals = [Fraction(v) for v in values]
    if qualifier == "atleast":
        return lambda x: x == x and Fraction(x) >= vals[0]
    if qualifier == "atmost":
        return lambda x: x == x and Fraction(x) <= vals[0]
    if qualifier == "between":
        return lambda x: x == x and vals[0] <= Fraction(x) <= vals[1]
    listed = set(vals)
    if qualifier in ("just", "oneof"):
        return lambda x: x == x and Fraction(x) in listed
    return lambda x: x == x and Fraction(x) not in listed


def compare(x: float, qualifier: str, values: tuple) -> bool:
    if qualifier == "unrestricted":
        return True
    if math.isnan(x):
        return False
    near = [abs(x - v) <= TOL * max(1.0, abs(v)) for v in values]
    if qualifier == "just" or qualifier == "oneof":
        return any(near)
    if qualifier == "not":
        return not any(near)
    if qualifier == "atleast":
        return x >= values[0] - TOL * max(1.0, abs(values[0]))
    if qualifier == "atmost":
        return x <= values[0] + TOL * max(1.0, abs(values[0]))
    if qualifier == "between":
        return (x >= values[0] - TOL * max(1.0, abs(values[0]))) and (x <= values[1] + TOL * max(1.0, abs(values[1])))
    raise AssertionError(qualifier)


def row_ok(row: dict, c: Clause) -> bool:
    """One node-scope clause against one row."""
    p = PARAMETERS[c.parameter]
    if c.qualifier == "unrestricted":
        return True
    if p.kind == "symbol" and c.qualifier in ("atleast", "atmost", "between"):
        return any(_str(row[col]) in _generations(p.domain, c.qualifier, c.values)
                   for col in taxonomy.DOMAIN_COLUMNS[p.domain])
    if p.kind == "symbol":
        covered = set()
        for v in c.values:
            covered |= taxonomy.covered_labels(p.domain, v)
        hit = any(_str(row[col]) in covered for col in taxonomy.DOMAIN_COLUMNS[p.domain])
        return (not hit) if c.qualifier == "not" else hit
    if p.kind in ("machinetype", "region"):
        hit = _str(row[p.column]) in {str(v) for v in c.values}
        return (not hit) if c.qualifier == "not" else hit
    if p.kind == "flag" and p.requires:  # efa => true (smt => false): the row has it; the other value: anything
        return c.values[0] is not p.when or _flag(row[p.column])
    if p.kind == "flag":
        return c.values[0] is True or not _burstable(row)
    if p.column == "accelerator_compute_capability":  # not a catalog column: the model's, from the fact table
        model = _str(row["accelerator_model"])
        node = taxonomy.lookup("accelerator", model) if model else None
        return compare(taxonomy.COMPUTE_CAPABILITY.get(node.name, math.nan) if node else math.nan, c.qualifier,
                       c.values)
    return compare(_num(row[p.column]), c.qualifier, c.values)


def _generations(domain: str, qualifier: str, values: tuple) -> set[str]:
    """Labels an ordered bound covers: walk every line of taxonomy.ORDERS, keep the line holding the bound's
    symbols, and take each generation on the right side of them with everything below it."""
    out: set[str] = set()
    for line in taxonomy.ORDERS.get(domain, {}).values():
        rank = {name: i for i, names in enumerate(line) for name in names}
        if not all(str(v) in rank for v in values):
            continue
        lo = rank[str(values[0])] if qualifier in ("atleast", "between") else 0
        hi = rank[str(values[-1])] if qualifier in ("atmost", "between") else len(line) - 1
        for i in range(lo, hi + 1):
            for name in line[i]:
                out |= taxonomy.covered_labels(domain, name)
    return out


LISTED = 4096  # domains up to this many counts are listed and tried one by one; larger ones by their edges


def count_ok(n: int, c: Clause) -> bool:
    """A whole node count against a node_count clause: exact (counts have no slack)."""
    q, vals = c.qualifier, c.values
    if q == "unrestricted":
        return True
    if q == "atleast":
        return n >= vals[0]
    if q == "atmost":
        return n <= vals[0]
    if q == "between":
        return vals[0] <= n <= vals[1]
    if q in ("just", "oneof"):
        return any(n == v for v in vals)
    return all(n != v for v in vals)


@dataclass(frozen=True)
class Counts:
    """The allowed node counts: ``1..cap`` filtered by the node_count clause (None: the default, 1)."""

    clause: Clause | None
    cap: int

    def __contains__(self, n: int) -> bool:
        return n == 1 if self.clause is None else 1 <= n <= self.cap and count_ok(n, self.clause)

    @property
    def listed(self) -> list[int] | None:
        """Every allowed count, or None when there are too many to try one by one."""
        if self.cap > LISTED:
            return None
        return [n for n in range(1, self.cap + 1) if n in self]


def counts(contract_clauses: list[Clause]) -> Counts:
    c = next((x for x in contract_clauses if x.parameter == "node_count"), None)
    if c is None:
        return Counts(None, 1)
    return Counts(c, max([CAP, *[math.floor(v) for v in c.values]]))


def _role_clauses(contract: Contract, role: str | None) -> list[Clause]:
    own = [c for c in contract.clauses if c.role == role] if role else []
    names = {c.parameter for c in own}
    shared = [c for c in contract.clauses if c.role is None and c.parameter not in names]
    if role == "manager":
        shared = [c for c in shared if PARAMETERS[c.parameter].scope == "node"]
    return shared + own


def _named(row: dict, clauses: list[Clause]) -> bool:
    """Whether a just/oneof clause on the provider, the locale or the machine type names this row."""
    for c in clauses:
        if c.qualifier not in ("just", "oneof") and not (c.qualifier == "unrestricted" and c.values):
            continue
        for v in c.values:
            if c.parameter == "node_provider":
                node = taxonomy.lookup("provider", str(v))
                if node is not None and _str(row["provider"]) in taxonomy.covered_labels("provider", node.name):
                    return True
            elif (c.parameter, str(v)) in (("cluster_locale", _str(row["region"])),
                                           ("node_machinetype", _str(row["instance_type"]))):
                return True
    return False


def _flag(value: object) -> bool:
    return value is True or str(value).lower() == "true" or (isinstance(value, (int, float)) and value == 1)


def _burstable(row: dict) -> bool:
    marked = _flag(row.get("burstable"))
    return marked or (_str(row["provider"]) == "aws" and burstable.is_burstable(_str(row["instance_type"])))


def _asks_burstable(row: dict, clauses: list[Clause]) -> bool:
    """``burstable => true`` (kept as @unrestricted(true) when dropped), or a machine type clause naming the row."""
    if any(c.parameter == "burstable" and c.values == (True,) for c in clauses):
        return True
    return _named(row, [c for c in clauses if c.parameter == "node_machinetype"])


def _in_scope(row: dict, clauses: list[Clause], region: str, any_region: bool) -> bool:
    free = not _num(row["price_per_hour"]) > 0
    if _burstable(row) and not _asks_burstable(row, clauses):
        return False
    if _str(row["provider"]) in ("local", "ssh") and free and not _named(row, clauses):
        return False
    if any_region or any(c.parameter == "cluster_locale" for c in clauses):
        if _str(row["region"]).startswith("us-gov-"):
            return any(c.parameter == "cluster_locale" and (c.qualifier in ("just", "oneof") or (
                c.qualifier == "unrestricted" and c.values)) and any(str(v).startswith("us-gov-") for v in c.values)
                for c in clauses)  # a dropped locale keeps its values: it still names GovCloud
        return True
    return _str(row["provider"]) != "aws" or _str(row["region"]) == region


def _seen(row: dict, clauses: list[Clause]) -> dict:
    """The row as a role's clauses read it: with ``smt => false`` a node runs one thread per core, so its vCPUs (per
    node and summed) are its cores."""
    off = any(c.parameter == "smt" and c.qualifier == "just" and c.values == (False,) for c in clauses)
    return {**row, "vcpus": row["cores"]} if off else row


def _node_ok(row: dict, clauses: list[Clause], single: bool) -> bool:
    for c in clauses:
        scope = PARAMETERS[c.parameter].scope
        if (scope == "node" or (single and scope == "total")) and not row_ok(row, c):
            return False
    return True


def _edges(row: dict, domain: Counts, clauses: list[Clause], manager_price: float, room: float) -> list[int]:
    """Every count that can be the smallest feasible one of a domain too large to list.

    The feasible counts are those where every test holds; each test (the node_count clause, ``n ≤ room``, a total
    ``n × per + extra`` against a bound) changes its answer only next to its own boundary.  The smallest
    feasible count n is 1, or n − 1 fails a test that n passes, so n sits next to a boundary: next to a value the
    node_count clause names, or where ``n × per + extra`` crosses a bound (± its slack).  A few counts either side
    of each are enough (floats round), and each is then checked in full by the caller."""
    points = {1}
    if domain.clause is not None:
        points.update(math.floor(v) + d for v in domain.clause.values for d in (-1, 0, 1, 2))
    for c in clauses:
        p = PARAMETERS[c.parameter]
        if p.scope != "total":
            continue
        per = _num(row[p.column])
        if not per > 0:
            continue
        extra = manager_price if c.parameter == "cluster_price_per_hour" else 0.0
        for v in c.values:
            if p.kind == "count":  # an exact count total: the counts next to v / per
                points.update(math.floor(Fraction(v) / Fraction(per)) + d for d in range(-1, 3))
            for edge in (v - TOL * max(1.0, abs(v)), v + TOL * max(1.0, abs(v))):
                x = (edge - extra) / per
                if math.isfinite(x) and abs(x) < 2.0**60:
                    points.update(math.floor(x) + d for d in range(-2, 4))
    top = domain.cap if room != room else min(domain.cap, int(room))
    return sorted(n for n in points if 1 <= n <= top and n in domain)


def _first_count(row: dict, domain: list[int], clauses: list[Clause], manager_price: float) -> int | None:
    """The first count (in increasing order) whose totals satisfy every total clause — each count checked."""
    ok = [True] * len(domain)
    for c in clauses:
        p = PARAMETERS[c.parameter]
        if p.scope != "total":
            continue
        per = _num(row[p.column])
        if per != per:  # unknown: no count satisfies a bound
            if c.qualifier == "unrestricted":
                continue
            return None
        extra = manager_price if c.parameter == "cluster_price_per_hour" else 0.0
        exact = p.kind == "count"  # a count total: n × the per-node value (whole, or a share), exactly
        test = tester(c.qualifier, c.values, exact)
        for i, n in enumerate(domain):
            if ok[i] and not test(n * Fraction(per) if exact else n * per + extra):
                ok[i] = False
        if not any(ok):
            return None
    return next((n for n, good in zip(domain, ok) if good), None)


_RECORDS: dict[int, tuple[object, list[dict]]] = {}


def _records(df) -> list[dict]:
    """Every row as a dict, priced or not (cached per DataFrame: the oracle is called many times per catalog),
    with the accelerator shares of :func:`_shares`."""
    hit = _RECORDS.get(id(df))
    if hit is None or hit[0] is not df:
        rows = _shares(list(df.to_dict("records")))
        _RECORDS[id(df)] = hit = (df, rows)
    return hit[1]


def _shares(rows: list[dict]) -> list[dict]:
    """A row with no whole accelerator but the memory of a model's share (g6f.large: 2.79 GiB of an L4) has that
    share as its accelerator count, in eighths of the model's memory in the catalog's rows with whole ones (1/8,
    1/4, 1/2), and the share's memory as its total; a model without a whole row gives no share."""
    whole: dict[str, float] = {}
    for r in rows:
        if _num(r["accelerator_count"]) >= 1:
            model = _str(r["accelerator_model"])
            whole[model] = max(whole.get(model, 0.0), _num(r["accelerator_memory_gib"]))
    out = []
    for r in rows:
        mem, full = _num(r["accelerator_memory_gib"]), whole.get(_str(r["accelerator_model"]), 0.0)
        if _num(r["accelerator_count"]) == 0 and mem > 0 and full > 0:
            eighths = min(max(round(mem / full * 8), 1), 7)
            r = dict(r, accelerator_count=eighths / 8, accelerator_memory_total_gib=mem)
        out.append(r)
    return out


# Asking for an accelerator without an accelerator_count clause means at least one whole one.
_ACCELERATOR = ("accelerator", "accelerator_architecture", "accelerator_manufacturer", "accelerator_type",
                "accelerator_memory", "cluster_accelerator_count", "cluster_accelerator_memory")


def _whole_accelerator(clauses: list[Clause], role: str | None) -> list[Clause]:
    """``clauses`` and, when one asks for an accelerator (a symbol with just/oneof, a number with a lower bound
    above 0) and none is an accelerator_count, ``accelerator_count => @atleast(1)``."""
    if any(c.parameter == "accelerator_count" for c in clauses):
        return clauses
    for c in clauses:
        if c.parameter not in _ACCELERATOR:
            continue
        if PARAMETERS[c.parameter].kind == "symbol":
            asks = c.qualifier in ("just", "oneof")
        else:
            asks = c.qualifier in ("atleast", "between", "just", "oneof") and min(c.values) > 0
        if asks:
            return [*clauses, Clause("accelerator_count", "atleast", (1,), role)]
    return clauses


def on_spot(contract: Contract, role: str | None, spot: bool | None) -> bool:
    """Whether ``role``'s nodes are spot."""
    if spot is not None:
        return spot
    config = dict(contract.config)
    value = config.get(f"{role}.spot", config.get("spot")) if role else config.get("spot")
    return value is True


def market_rows(rows: list[dict], spot: bool, any_spot: bool) -> list[dict]:
    """The rows a role sees: spot-capable rows at their spot prices, or every row at its on-demand price."""
    if not spot:
        return [dict(r, spot_interruption=0.0, market="on-demand") for r in rows] if any_spot else rows
    out = []
    for r in rows:
        if r.get("spot") not in (True, 1):  # a numpy bool compares equal to True
            continue
        price = _num(r.get("spot_price_per_hour"))
        out.append(dict(r, price_per_hour=price if price > 0 else math.nan, market="spot",
                        on_demand_price=r["price_per_hour"]))
    return out


def _same_row(a: dict, b: dict) -> bool:
    """The same catalog row in the same market (a row's key is provider, region, type)."""
    return (a["provider"], a["region"], a["instance_type"], a.get("market")) == (
        b["provider"], b["region"], b["instance_type"], b.get("market"))


def solutions(df, contract: Contract, region: str = "us-east-1", any_region: bool = False,
              spot: bool | None = None) -> list[Answer]:
    """Every feasible worker row with its cheapest (count, manager) — brute force."""
    rows = _records(df)
    mw = contract.cluster_type == "ManagerWorkers"
    wrole = "worker" if mw else None
    any_spot = on_spot(contract, wrole, spot) or (mw and on_spot(contract, "manager", spot))
    wclauses = _whole_accelerator(_role_clauses(contract, wrole), wrole)
    domain = counts(wclauses)
    listed = domain.listed
    wrows = market_rows(rows, on_spot(contract, wrole, spot), any_spot)
    workers = [r for r in wrows if _in_scope(r, wclauses, region, any_region)
               and _node_ok(_seen(r, wclauses), wclauses, False)]
    managers: list[dict | None] = [None]
    if mw:
        mclauses = _whole_accelerator(_role_clauses(contract, "manager"), "manager")
        mrows = market_rows(rows, on_spot(contract, "manager", spot), any_spot)
        managers = [r for r in mrows if _in_scope(r, mclauses, region, any_region)
                    and _node_ok(_seen(r, mclauses), mclauses, True)]
    out = []
    for w in workers:
        best = None
        for m in managers:
            if m is not None and (m["provider"], m["region"]) != (w["provider"], w["region"]):
                continue
            mp = float(m["price_per_hour"]) if m is not None else 0.0
            room = _num(w.get("max_nodes", math.nan))  # how many nodes of this row exist
            if m is not None and _same_row(m, w):  # the manager takes one of them
                room -= 1
            if listed is None:
                usable = _edges(_seen(w, wclauses), domain, wclauses, mp, room)
            else:
                usable = [n for n in listed if not n > room]  # NaN room: every count
            n = _first_count(_seen(w, wclauses), usable, wclauses, mp)  # prices are ≥ 0: more nodes never cost less
            if n is not None:
                cost = n * float(w["price_per_hour"]) + mp  # NaN when either price is unknown
                a = Answer(cost, w, n, m)
                if best is None or (a.cost < best.cost - 1e-12 if a.priced and best.priced
                                    else a.rank_key()[:2] < best.rank_key()[:2]):
                    best = a
        if best is not None:
            out.append(best)
    return out


def optimum(df, contract: Contract, region: str = "us-east-1", any_region: bool = False,
            spot: bool | None = None) -> Answer | None:
    """The cheapest priced answer; only when there is none, the first unpriced one (:meth:`Answer.rank_key`)."""
    return best(solutions(df, contract, region, any_region, spot))


def best(sols: list[Answer]) -> Answer | None:
    priced = [a for a in sols if a.priced]
    if priced:
        return min(priced, key=lambda a: a.cost)
    return min(sols, key=Answer.rank_key) if sols else None


def core_clauses(contract: Contract, conflict) -> list[Clause]:
    """The clauses a resolver's conflict names (``UnsatisfiableError.conflict``), without the default node count;
    a whole accelerator implied by another clause (:func:`_whole_accelerator`) as that implied clause."""
    by_key = {(c.parameter, c.role): c for c in contract.clauses}
    return [by_key.get((x.parameter, x.role)) or Clause("accelerator_count", "atleast", (1,), x.role)
            for x in conflict if not x.text.endswith("(default)")]


def subcontract(contract: Contract, keep: list[Clause], keep_default_count: bool) -> Contract:
    """The contract with only ``keep`` (plus its cluster_type).  A node count that is not kept (the written clause
    or the default 1) is relaxed to any count up to the cap, which is what dropping its assumption means to the
    solver."""
    clauses = [c for c in contract.clauses if c.parameter == "cluster_type"] + list(keep)
    kept_count = any(c.parameter == "node_count" for c in keep) or (
        contract.clause("node_count") is None and keep_default_count)
    if not kept_count:  # any count up to the cap, which a written count above 1024 raised
        written = contract.clause("node_count")
        cap = counts([written]).cap if written is not None else CAP
        clauses.append(Clause("node_count", "atmost", (cap,)) if cap > CAP else Clause("node_count", "unrestricted"))
    for c in contract.clauses:  # a dropped locale lets every region compete (it does not bring back the default);
        if c in keep:           # a dropped clause still names the on-premise rows it named (widens, never narrows)
            continue
        named = c.values if c.qualifier in ("just", "oneof") else ()
        if c.parameter == "cluster_locale":
            clauses.append(Clause("cluster_locale", "unrestricted", named, role=c.role))
        elif c.parameter in ("node_provider", "node_machinetype") and named:
            clauses.append(Clause(c.parameter, "unrestricted", named, role=c.role))
        elif c.parameter == "burstable" and c.values == (True,):  # a dropped burstable => true still asks
            clauses.append(Clause(c.parameter, "unrestricted", (True,), role=c.role))
    return Contract(contract.name, tuple(clauses), contract.config)  # the config: which roles are on spot
