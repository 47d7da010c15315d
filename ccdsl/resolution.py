"""The answer of the resolver: which instance type, how many nodes, at what price, and why.

These are plain frozen values so that the executor, the CLI and embedding programs can pass them around, compare
them and print them without touching the catalog or Z3 again.

Prices: :attr:`Choice.price_per_hour` is the cost of *that role's* nodes (``node_count × price_per_node_hour``);
a worker choice of a ManagerWorkers cluster also carries the price of the manager that goes with it (the cheapest
fitting one in its region), and :attr:`Choice.cluster_price_per_hour` is the sum.  :attr:`Resolution.price_per_hour`
is the whole cluster.  In :meth:`Resolution.to_dict` the top-level ``price_per_hour`` and every alternative's
``price_per_hour`` are whole-cluster prices, so the numbers a user compares are comparable.

A price may be unknown (the catalog row is offered, but no source prices it): then it is ``None`` here and
``null`` in JSON, and so is every sum it takes part in.  Such a choice is only ever made when no priced one
satisfies the contract.  ``price_source`` and ``price_date`` say where each price comes from.

Spot (issue 14): a choice with ``market == "spot"`` is priced at its spot price (``price_*`` fields, source and
date are the spot price's), and carries the on-demand price beside it, the zone of its spot price and every priced
zone, cheapest first (deploy tries them in that order).  In JSON every choice says its ``market``; a spot one adds
``spot_zone``, ``spot_zones``, ``on_demand_price_per_node_hour`` and ``saving_percent``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ccdsl.contract import Contract
    from ccdsl.fabric import Fabric

# The fields every JSON object describing a choice carries (issue 3, "Interfaces").
JSON_FIELDS = ("provider", "region", "instance_type", "node_count", "price_per_node_hour", "price_per_hour",
               "price_source", "price_date", "market", "accelerators")


def accelerator_memory(sold: float, usable: float) -> str:
    """``24 GiB (22.35 GiB usable)``: the memory an accelerator is sold with, and what EC2 reports usable when that
    differs (the same words in answers and ``catalog show``)."""
    if usable and abs(usable - sold) > 1e-9 * max(1.0, sold):
        return f"{quantity(sold)} GiB ({quantity(usable)} GiB usable)"
    return f"{quantity(sold)} GiB"


@dataclass(frozen=True)
class Choice:
    """One instance type in one region with a node count, plus the facts a user wants to see about it."""

    provider: str
    region: str
    instance_type: str
    node_count: int
    price_per_node_hour: float | None  # None: unknown
    price_per_hour: float | None  # node_count × price_per_node_hour (this role only); None: unknown
    vcpus: int = 0
    memory_gib: float = 0.0
    cores: int = 0  # physical cores: the vCPUs a node has with smt => false (one thread per core)
    accelerator_count: float = 0  # a share of one accelerator is its fraction: 0.125 = 1/8 of an L4
    accelerator_model: str = ""
    accelerator_architecture: str = ""
    accelerator_memory_gib: float = 0.0  # as its maker sells it (what accelerator_memory compares)
    accelerator_memory_usable_gib: float = 0.0  # as EC2 reports it
    cpu_model: str = ""
    network_gbps: float = 0.0
    efa_interfaces: int = 0  # EFA interfaces the type may have (0: no EFA)
    role: str | None = None  # "manager", "worker" or None (peer workers)
    manager_price_per_hour: float | None = 0.0  # workers of a ManagerWorkers cluster: their manager's (None: unknown)
    price_source: str = ""  # e.g. karpenter@6fc13b52, libcloud-3.9.1, aws-price-list@<version>, user ('' unknown)
    price_date: str = ""  # ISO date of the price ('' unknown)
    # Spot (issue 14).  market "spot": price_per_node_hour, price_source and price_date are the spot price's.
    market: str = "on-demand"  # "on-demand" | "spot"
    spot_zone: str = ""  # spot: the zone of the (cheapest) spot price; '' when unknown or priced region-wide
    spot_zones: tuple[str, ...] = ()  # spot: every priced zone, cheapest first (deploy tries them in this order)
    on_demand_price_per_node_hour: float | None = None  # spot: the on-demand price beside it (None: unknown)

    @property
    def spot(self) -> bool:
        return self.market == "spot"

    @property
    def saving(self) -> float | None:
        """A spot node's saving against its on-demand price, as a fraction (0.7 = 70% less); None when either
        price is unknown (or this is not a spot choice)."""
        od, p = self.on_demand_price_per_node_hour, self.price_per_node_hour
        if not self.spot or od is None or p is None or od <= 0:
            return None
        return 1.0 - p / od

    @property
    def price_known(self) -> bool:
        return self.cluster_price_per_hour is not None

    @property
    def cluster_price_per_hour(self) -> float | None:
        """This choice's nodes plus its manager (if any); None when either price is unknown."""
        if self.price_per_hour is None or self.manager_price_per_hour is None:
            return None
        return _money(self.price_per_hour + self.manager_price_per_hour)

    def to_dict(self) -> dict[str, Any]:
        """The JSON fields; ``price_per_hour`` is the whole cluster's (manager included); unknown prices are None."""
        d = {k: getattr(self, k) for k in JSON_FIELDS}
        d["price_per_hour"] = self.cluster_price_per_hour
        d["price_per_node_hour"] = None if self.price_per_node_hour is None else _money(self.price_per_node_hour)
        d["price_source"] = self.price_source or None  # unknown: null, like the price
        d["price_date"] = self.price_date or None
        d["accelerators"] = self._accelerators_json()
        if self.spot:  # price_* above are the spot price's; the on-demand price beside it, and the saving
            od = self.on_demand_price_per_node_hour
            d["spot_zone"] = self.spot_zone or None
            d["spot_zones"] = list(self.spot_zones)
            d["on_demand_price_per_node_hour"] = None if od is None else _money(od)
            d["saving_percent"] = None if self.saving is None else round(100 * self.saving, 2)
        return d

    @property
    def accelerators(self) -> str:
        """``8 × L4 (Ada Lovelace) 24 GiB (22.35 GiB usable)``; a share of one: ``1/8 × L4 (Ada Lovelace) 3 GiB of
        24``; '' without."""
        from ccdsl.catalog.shares import count_text, is_share

        if not self.accelerator_count:
            return ""
        arch = f" ({self.accelerator_architecture})" if self.accelerator_architecture else ""
        text = f"{count_text(self.accelerator_count)} × {self.accelerator_model or 'accelerator'}{arch} "
        if is_share(self.accelerator_count):  # its memory is the share's: of the whole accelerator's
            return text + (f"{quantity(self.accelerator_memory_gib)} GiB of "
                           f"{quantity(self.accelerator_memory_gib / self.accelerator_count)}")
        return text + accelerator_memory(self.accelerator_memory_gib, self.accelerator_memory_usable_gib)

    def _accelerators_json(self) -> dict[str, Any] | None:
        """``{"model": "L4", "count": 0.125, "share": "1/8", "memory_gib": 2.79}`` per node (``share`` only for a
        share of one accelerator, ``memory_gib`` then the share's); None without accelerators."""
        from ccdsl.catalog.shares import count_text, is_share

        if not self.accelerator_count:
            return None
        d: dict[str, Any] = {"model": self.accelerator_model, "count": self.accelerator_count}
        if is_share(self.accelerator_count):
            d["share"] = count_text(self.accelerator_count)
        d["memory_gib"] = round(self.accelerator_memory_gib, 2)
        if self.accelerator_memory_usable_gib and not is_share(self.accelerator_count):
            d["memory_usable_gib"] = round(self.accelerator_memory_usable_gib, 2)
        return d

    def describe(self) -> str:
        """A one-line summary, e.g. ``g4dn.xlarge × 8 (aws us-east-1): 4 vCPUs, 16 GiB, 1 × T4 16 GiB``."""
        hw = f"{self.vcpus} vCPUs, {quantity(self.memory_gib)} GiB"
        if self.accelerator_count:
            hw += ", " + self.accelerators
        place = place_of(self.provider, self.region)
        return f"{self.instance_type} × {self.node_count} ({place}): {hw}"


@dataclass(frozen=True, repr=False)
class Resolution:
    """The cost-optimal answer for one contract.

    ``choice`` is the (worker) nodes, ``manager`` the manager node of a ManagerWorkers cluster (else None),
    ``alternatives`` the next-best distinct instance types for the workers (each with its own optimal count),
    ``explanation`` human sentences saying why, ``matches`` how many (type, region) rows satisfied the contract.
    """

    contract: Contract
    choice: Choice
    manager: Choice | None = None
    alternatives: tuple[Choice, ...] = ()
    explanation: tuple[str, ...] = field(default=(), compare=False)
    matches: int = 0
    problem: str = field(default="", compare=False, repr=False)  # the SMT-LIB problem Z3 minimized (``--smt``)

    @property
    def provider(self) -> str:
        return self.choice.provider

    @property
    def region(self) -> str:
        return self.choice.region

    @property
    def instance_type(self) -> str:
        return self.choice.instance_type

    @property
    def node_count(self) -> int:
        return self.choice.node_count

    @property
    def manager_price_per_hour(self) -> float | None:
        return self.manager.price_per_hour if self.manager is not None else 0.0

    @property
    def price_per_hour(self) -> float | None:
        """Whole cluster, manager included, USD per hour; None when a price is unknown."""
        return self.choice.cluster_price_per_hour

    @property
    def fabric(self) -> Fabric:
        """EFA for the (worker) nodes as a deploy with the default ``[aws] efa = "auto"`` and public nodes would
        set it up (:mod:`ccdsl.fabric`)."""
        from ccdsl.fabric import asked, decide

        role = "worker" if self.manager is not None else None
        return decide(self.choice.instance_type, self.choice.efa_interfaces, self.choice.node_count,
                      asked(self.contract.clauses_for(role)))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object ``ccdsl resolve --json`` prints for this contract."""
        d: dict[str, Any] = {"contract": self.contract.name, **self.choice.to_dict()}
        d["efa"] = self.fabric.to_dict()
        d["alternatives"] = [a.to_dict() for a in self.alternatives]
        if self.manager is not None:
            d["manager"] = self.manager.to_dict()
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def with_alternatives(self, alternatives: tuple[Choice, ...]) -> Resolution:
        return replace(self, alternatives=alternatives)

    def render(self) -> str:
        """The human answer ``ccdsl resolve`` prints: headline, why, and a table of the choice and its
        alternatives."""
        place, price = place_of(self.provider, self.region), money(self.price_per_hour)
        head = f"{self.contract.name}: {self.instance_type} × {self.node_count} in {place} — {price}"
        lines = [head, *(f"  {x}" for x in self.explanation)]
        rows = []
        if self.manager is not None:
            rows.append(["manager", *_cells(self.manager)])
        rows.append(["*", *_cells(self.choice)])
        rows += [[str(i), *_cells(a)] for i, a in enumerate(self.alternatives, start=2)]
        header = ["", "instance_type", "provider", "region", "nodes", "$/node/h", "$/h (cluster)", "price source",
                  "price date"]
        choices = [c for c in (self.manager, self.choice, *self.alternatives) if c is not None]
        if any(c.spot for c in choices):  # spot: the market, the zone, and the on-demand price beside the spot one
            header[5:5] = ["market", "zone"]
            header[8:8] = ["$/node/h on-demand", "saving"]
            for row, c in zip(rows, choices):
                row[5:5] = [c.market, c.spot_zone or "-"]
                row[8:8] = [price_cell(c.on_demand_price_per_node_hour) if c.spot else "-",
                            f"{100 * c.saving:.1f}%" if c.saving is not None else "-"]
        lines.append(table(header, rows, indent=2))
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        """What ``ccdsl resolve`` prints (a terminal, ``print`` and the REPL show the same answer; the fields are
        attributes, and :meth:`to_dict` has them all)."""
        return self.render()

    def _repr_html_(self) -> str:
        """Jupyter: the chosen row (and manager), the whole cluster's price, then the alternatives, as a table."""
        rows = [("chosen", self.choice)] + ([("manager", self.manager)] if self.manager is not None else [])
        rows += [(f"alternative {i}", a) for i, a in enumerate(self.alternatives, 1)]
        head: tuple[str, ...] = ("", "provider", "region", "instance type", "nodes", "vCPUs", "memory GiB",
                                 "accelerators", "$/node-hour", "$/hour (cluster)", "price source", "price date")
        body: list[tuple[Any, ...]] = []
        for label, c in rows:
            accel = c.accelerators
            hourly = c.price_per_hour if label == "manager" else c.cluster_price_per_hour
            body.append((label, c.provider, c.region, c.instance_type, c.node_count, c.vcpus, quantity(c.memory_gib),
                         accel, _price(c.price_per_node_hour), _price(hourly), c.price_source, c.price_date))
        if any(c.spot for _, c in rows):  # spot: the market, zone and on-demand price beside (on-demand: as before)
            head += ("market", "spot zone", "on-demand $/node-hour")
            body = [(*b, c.market, c.spot_zone, _price(c.on_demand_price_per_node_hour) if c.spot else "")
                    for b, (_, c) in zip(body, rows)]
        total = "price unknown" if self.price_per_hour is None else f"${self.price_per_hour:.4f}/hour"
        title = (f"<b>{html_escape(self.contract.name)}</b>: {html_escape(self.choice.instance_type)} "
                 f"× {self.node_count}, {total}")
        return html_table(title, head, body)


def _price(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.4f}"


def price_cell(x: float | None) -> str:
    """A price in a table cell: up to six decimals (every catalog price exactly), or "unknown"."""
    if x is None:
        return "unknown"
    return f"{x:.6f}".rstrip("0").rstrip(".")


def money(x: float | None, digits: int = 6) -> str:
    """``$21.957642/h`` (up to six decimals: every catalog price exactly), or ``price unknown``."""
    if x is None:
        return "price unknown"
    text = f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return f"${text}/h"


def _cells(c: Choice) -> list[str]:
    return [c.instance_type, c.provider, c.region, str(c.node_count), price_cell(c.price_per_node_hour),
            price_cell(c.cluster_price_per_hour), c.price_source or "-", c.price_date or "-"]


def table(header: list[str], rows: list[list[str]], indent: int = 0) -> str:
    """A plain-text table: columns padded to their widths, prices and counts right-aligned."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    numeric = {i for i, h in enumerate(header) if h.startswith(("$", "nodes", "vcpus", "mem", "acc"))}

    def fmt(cells: list[str]) -> str:
        out = [(str(x).rjust(w) if i in numeric else str(x).ljust(w)) for i, (x, w) in enumerate(zip(cells, widths))]
        return " " * indent + "  ".join(out).rstrip()

    return "\n".join([fmt(header), *(fmt(r) for r in rows)])


def html_escape(value: Any) -> str:
    """Any value as text safe inside HTML (the notebook tables of a resolution and of a cluster)."""
    import html

    return html.escape(str(value))


def html_table(title: str, head: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    """A small HTML table with a title line (Jupyter reprs of resolutions and clusters)."""
    th = "".join(f"<th>{html_escape(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{html_escape(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<div><p>{title}</p><table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table></div>"


def _money(x: float) -> float:
    """Prices are shown to 1/10000 of a cent: enough for every catalog price, free of float noise."""
    return round(float(x), 6)


def place_of(provider: str, region: str) -> str:
    """``aws us-east-1``, ``ssh lab``; ``local`` for this machine (its region is its provider), ``ssh`` for hosts of
    a user catalog without a region."""
    return " ".join(dict.fromkeys(x for x in (provider, region) if x))


def quantity(x: float) -> str:
    """A size as users read it (GiB, Gbit/s, GHz): whole numbers as they are, others to at most two decimals, so
    an L4's 24 GB shows as 22.35 GiB rather than 22.3516 GiB.  Prices are not quantities: they keep every digit."""
    x = float(x)
    if x != x:
        return "unknown"
    if abs(x) >= 1e15:  # 1e308 as 1e+308, not its 300 digits
        return f"{x:.4g}"
    r = round(x, 2)
    return str(int(r)) if r.is_integer() else f"{r:.2f}".rstrip("0")
