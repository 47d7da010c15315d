"""What a cluster costs so far: the prices recorded at deploy × the time it spent in billable states.

Why records and not the catalog: the price a cluster was deployed at is copied into the state database
(:class:`~ccdsl.executor.state.RolePrice`, with its source and date), and every status change is logged
(:class:`~ccdsl.executor.state.StatusChange`).  A later catalog refresh never changes a recorded cost, and an
instance type that has left the catalog never breaks a report, because nothing here reads the catalog.

The estimate is compute only: running time × recorded price.  Stopped (interrupted) and terminated clusters add
nothing; storage (root volumes of stopped instances), data transfer and taxes are not counted.  A cluster that
is deploying or failed counts as running: its instances may exist and be billed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ccdsl.executor import state as st
from ccdsl.executor.model import Plan

BILLABLE = (st.DEPLOYING, st.RUNNING, st.FAILED)
WARN_FRACTION = 0.8  # the spending cap warns at 80 %
NOT_COUNTED = "compute only: storage, data transfer and taxes are not counted"


@dataclass(frozen=True)
class Cost:
    """The estimate for one cluster at ``at``.  ``price_per_hour`` and ``cost_so_far`` are None when a role's price
    was never known (a deploy from a bare Plan, a cluster adopted from the cloud)."""

    handle: str
    status: str
    started_at: float
    at: float
    running_seconds: float
    price_per_hour: float | None
    cost_so_far: float | None
    prices: tuple[st.RolePrice, ...] = ()
    max_cost: float | None = None
    ended_at: float | None = None
    seconds_by_status: Mapping[str, float] = field(default_factory=dict)  # time spent in each state

    @property
    def warning(self) -> str | None:
        """A sentence when the estimate reached 80 % of the spending cap (or the cap itself)."""
        if self.max_cost is None or self.cost_so_far is None:
            return None
        if self.cost_so_far >= self.max_cost:
            return f"reached its spending cap: ${self.cost_so_far:.2f} of ${self.max_cost:.2f}"
        if self.cost_so_far >= WARN_FRACTION * self.max_cost:
            return (f"has spent ${self.cost_so_far:.2f}, {self.cost_so_far / self.max_cost:.0%} of its "
                    f"${self.max_cost:.2f} cap; it stops at the cap")
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"price_per_hour": self.price_per_hour, "cost_so_far": money(self.cost_so_far),
                "started_at": iso(self.started_at), "running_hours": round(self.running_seconds / 3600, 4),
                "ended_at": iso(self.ended_at) if self.ended_at is not None else None,
                "max_cost": self.max_cost, "cost_warning": self.warning,
                "hours_by_status": {k: round(v / 3600, 4) for k, v in self.seconds_by_status.items()},
                "market": market_summary(self.prices) or None,
                "prices": [{"role": p.role, "instance_type": p.instance_type, "node_count": p.node_count,
                            "price_per_node_hour": p.price_per_node_hour, "source": p.source, "date": p.date,
                            "market": p.market or None, "zone": p.zone or None,
                            "on_demand_price_per_node_hour": p.on_demand_price_per_node_hour}
                           for p in self.prices]}


def market_summary(prices: Iterable[st.RolePrice]) -> str:
    """``spot``, ``on-demand``, or per role (``manager on-demand, workers spot``); '' when none was recorded."""
    markets = {p.role: p.market for p in prices if p.market}
    if not markets:
        return ""
    if len(set(markets.values())) == 1:
        return next(iter(markets.values()))
    return ", ".join(f"{role}{'s' if role == 'worker' else ''} {m}" for role, m in markets.items())


def money(x: float | None) -> float | None:
    return None if x is None else round(float(x), 6)


def dollars(x: float) -> str:
    """A price or amount as people write it: ``$0.6656``, ``$14.5``, ``$14,400`` (four significant digits below
    $1,000, whole dollars with thousands separators above, never ``1.44e+04``)."""
    x = float(x)
    return f"${x:,.0f}" if abs(x) >= 999.95 else f"${x:.4g}"  # (999.97 in four digits would be 1e+03)


def iso(t: float) -> str:
    """UTC ISO 8601 to the second: what ``--json`` prints for times."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds")


def age(seconds: float) -> str:
    """``45s``, ``12m``, ``3h 05m``, ``2d 4h``: how long ago, for humans."""
    s = max(0, int(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


# -- recording ------------------------------------------------------------------------------------------------------
def _number(x: Any) -> float | None:
    try:
        x = float(x) if x is not None else None
    except (TypeError, ValueError):
        return None
    return None if x is None or math.isnan(x) else x


def request_price(choice: Any) -> dict[str, Any]:
    """The price facts of a resolver Choice, as NodeRequest options (source and date when the catalog has them).
    A spot Choice's price is its spot price (of ``spot_zone``); the on-demand price beside it is kept too."""
    out = {"price_per_node_hour": _number(getattr(choice, "price_per_node_hour", None)),
           "price_source": str(getattr(choice, "price_source", "") or "catalog"),
           "price_date": str(getattr(choice, "price_date", "") or "")}
    if getattr(choice, "market", "on-demand") == "spot":
        out["on_demand_price_per_node_hour"] = _number(getattr(choice, "on_demand_price_per_node_hour", None))
        out["price_zone"] = str(getattr(choice, "spot_zone", "") or "")
    return out


def with_credit_surplus(options: Mapping[str, Any], instance_type: str, cpu_credits: str) -> dict[str, Any]:
    """A request's price options with the worst-case CPU surplus of a burstable type in ``unlimited`` mode added
    (vCPUs × (1 − baseline) × the surplus rate, :mod:`ccdsl.burstable`): what the cap and the report must count,
    since an MPI run keeps every vCPU busy.  ``standard`` mode, other types or an unknown price: unchanged."""
    from ccdsl.burstable import UNLIMITED, surplus_per_hour

    surplus = surplus_per_hour(instance_type) if cpu_credits == UNLIMITED else 0.0
    price = options.get("price_per_node_hour")
    if not surplus or not isinstance(price, (int, float)) or options.get("cpu_surplus_per_node_hour"):
        return dict(options)
    source = str(options.get("price_source") or "catalog")
    return {**options, "price_per_node_hour": round(float(price) + surplus, 6), "cpu_surplus_per_node_hour": surplus,
            "price_source": f"{source} + unlimited CPU credits at most ${surplus:.4f}/node-hour"}


def plan_prices(plan: Plan) -> list[st.RolePrice]:
    """The prices a plan's requests carry (None where a request carries none)."""
    now = time.time()
    out = []
    for r in plan.requests:
        o: Mapping[str, Any] = r.options
        price = o.get("price_per_node_hour")
        market = str(o.get("market") or "")
        on_demand = o.get("on_demand_price_per_node_hour")
        if market == "on-demand" and on_demand is None:
            on_demand = price
        out.append(st.RolePrice(role=r.role, instance_type=r.instance_type, node_count=r.count,
                                price_per_node_hour=float(price) if price is not None else None,
                                source=str(o.get("price_source", "") if price is not None else ""),
                                date=str(o.get("price_date", "") if price is not None else ""), recorded_at=now,
                                market=market,
                                on_demand_price_per_node_hour=float(on_demand) if on_demand is not None else None,
                                zone=str(o.get("price_zone") or "")))
    return out


def record_plan(state: st.State, handle: str, plan: Plan) -> None:
    """Remember what ``plan`` costs per hour, before anything of it is created (a crashed deploy is priced too)."""
    state.set_prices(handle, plan_prices(plan))


# -- estimating -----------------------------------------------------------------------------------------------------
def billable_seconds(history: Sequence[st.StatusChange], now: float) -> float:
    """Seconds spent in billable states according to the status log."""
    total = 0.0
    for change, nxt in zip(history, [*history[1:], None]):
        if change.status in BILLABLE:
            end = nxt.at if nxt is not None else now
            total += max(0.0, end - change.at)
    return total


def seconds_by_status(history: Sequence[st.StatusChange], now: float) -> dict[str, float]:
    """Seconds spent in each status according to the status log (the last one up to ``now``, unless terminated)."""
    out: dict[str, float] = {}
    for change, nxt in zip(history, [*history[1:], None]):
        if change.status == st.TERMINATED:
            continue
        end = nxt.at if nxt is not None else now
        out[change.status] = out.get(change.status, 0.0) + max(0.0, end - change.at)
    return out


def price_per_hour(prices: Iterable[st.RolePrice]) -> float | None:
    prices = list(prices)
    if not prices:
        return None
    total = 0.0
    for p in prices:
        if p.price_per_node_hour is None:
            return None
        total += p.price_per_node_hour * p.node_count
    return money(total)


def estimate(state: st.State, record: st.ClusterRecord, now: float | None = None) -> Cost:
    """The cost estimate of ``record`` from its recorded prices and status log (never from the catalog)."""
    now = time.time() if now is None else now
    history = state.status_history(record.handle) or [st.StatusChange(record.status, record.created_at)]
    prices = tuple(state.prices(record.handle))
    rate = price_per_hour(prices)
    seconds = billable_seconds(history, now)
    ended = history[-1].at if history[-1].status == st.TERMINATED else None
    cap = (record.settings.get("autostop") or {}).get("max_cost")
    return Cost(handle=record.handle, status=record.status, started_at=history[0].at, at=now,
                running_seconds=seconds, price_per_hour=rate,
                cost_so_far=None if rate is None else rate * seconds / 3600.0, prices=prices,
                max_cost=float(cap) if cap is not None else None, ended_at=ended,
                seconds_by_status=seconds_by_status(history, now))


__all__ = [
    "BILLABLE",
    "NOT_COUNTED",
    "Cost",
    "age",
    "billable_seconds",
    "estimate",
    "market_summary",
    "plan_prices",
    "price_per_hour",
    "record_plan",
    "request_price",
    "with_credit_surplus",
]
