"""Deploy: a contract (or its resolution) becomes a running cluster -- or nothing paid for.

    resolve -> record (state DB) -> per role: journal, provider.create (one call per role) -> wait running
            -> wait reachable / ready (all nodes in parallel) -> workers -> status "running"

Crash safety: the cluster record and a journal entry are written *before* every cloud call, and every cloud
resource carries the handle as a tag.  So whatever kills a deploy (an exception, Ctrl-C, SIGKILL), either the
deploy itself cleans up, or the next :func:`clusters` finds the cluster -- in the database, or by its tags in the
cloud (reconciliation) -- and ``ccdsl terminate`` removes it.

Failover: when a provider reports no capacity (or an unsupported type) in a zone, the next zone is tried; when no
zone works, the resolution's next-cheapest alternative; each step is logged (``ccdsl.executor`` logger, and the
record's note) so the user knows what they got and why.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from ccdsl import burstable, fabric, parameters
from ccdsl.errors import CapacityError, CcdslError, ClusterError, ConfigError, SetupError
from ccdsl.executor import cost, guard, model
from ccdsl.executor import state as st
from ccdsl.executor.access import NodeAccess, split_roles
from ccdsl.executor.cluster import Cluster, is_handle, make_ready, new_handle, node_access, quiet, reattach
from ccdsl.executor.model import Node, NodeRequest, Plan, Progress
from ccdsl.executor.providers import base

if TYPE_CHECKING:
    from typing import TypeAlias

    from ccdsl.contract import Contract, Value
    from ccdsl.executor.config import Config
    from ccdsl.executor.model import Provider
    from ccdsl.executor.providers.aws import AwsProvider
    from ccdsl.executor.workdir import Stream, SyncProgress
    from ccdsl.resolution import Choice, Resolution

    Scope: TypeAlias = tuple[str, str | None, str | None, str | None]  # (provider, region, endpoint, profile)

log = logging.getLogger("ccdsl.executor")


@dataclass(frozen=True)
class Spec:
    """What deploy works from: the contract's name and type, the plans in failover order, config overrides."""

    contract: str
    cluster_type: str
    plans: tuple[Plan, ...]
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterInfo:
    """One line of :func:`clusters`: what the seed's ``@clusters`` shows, plus status and nodes."""

    handle: str
    contract: str
    provider: str
    cluster_type: str
    status: str
    created_at: float
    nodes: int
    instance_type: str
    note: str = ""
    cost: cost.Cost | None = None  # the estimate from the prices recorded at deploy (None: not computed)
    autostop: Mapping[str, Any] | None = None  # {"idle", "idle_seconds", "down", "max_cost"} or None
    market: str = ""  # "spot", "on-demand", "manager on-demand, workers spot"; '' when none was recorded

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in dataclasses.asdict(self).items() if k not in ("cost", "autostop")}
        d.update(self.cost.to_dict() if self.cost is not None else {"price_per_hour": None, "cost_so_far": None,
                                                                      "started_at": None})
        d["created_at"] = cost.iso(self.created_at)  # as started_at: UTC with its zone
        # this machine and SSH hosts have no market: on-demand, as `ccdsl resolve --json` says of their rows
        d["market"] = self.market or ("on-demand" if self.provider != "aws" else None)
        d["autostop"] = dict(self.autostop) if self.autostop else None
        return d

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.created_at))
        note = f" -- {self.note}" if self.note else ""
        market = f" ({self.market})" if self.market else ""
        return (f"{self.cluster_type} {self.handle}, created at {when} on {self.provider}: {self.instance_type} × "
                f"{self.nodes}{market}, {self.status}{self.spending()}{note}")

    def spending(self) -> str:
        """``, age 2h 05m, $0.6656/h, $1.39 so far, autostop 30m`` (empty when no estimate was computed)."""
        if self.cost is None:
            return ""
        c = self.cost
        rate = f"{cost.dollars(c.price_per_hour)}/h" if c.price_per_hour is not None else "price unknown"
        spent = f"${c.cost_so_far:,.2f} so far" if c.cost_so_far is not None else "cost unknown"
        out = f", age {cost.age(c.at - c.started_at)}, {rate}, {spent}"
        if self.autostop and self.autostop.get("idle"):
            out += f", autostop {self.autostop['idle']}" + (" (down)" if self.autostop.get("down") else "")
        if c.max_cost is not None:
            out += f", cap {cost.dollars(c.max_cost)}"
        if c.warning:
            out += f" -- WARNING: {c.warning}"
        return out


# -- what to deploy ---------------------------------------------------------------------------------------------
# Contract configuration parameters (``image_id => "ami-..."``) and the ccdsl.toml keys they override.
CONTRACT_CONFIG = {
    "image_id": ("aws", "image"), "user": ("aws", "user"), "key_name": ("aws", "key_name"),
    "subnet_id": ("aws", "subnet_id"), "security_group_id": ("aws", "security_group_id"),
    "ssh_cidr": ("aws", "ssh_cidr"), "placement_group": ("aws", "placement_group"), "spot": ("aws", "spot"),
    "root_volume_size": ("aws", "volume_size"), "hosts": ("ssh", "hosts"), "mpi_flags": ("mpi", "extra_args"),
    "python": ("mpi", "python"), "tags": ("aws", "tags"),
}


def spec_of(target: Any, *, spot: bool | None = None) -> Spec:
    """A Spec from a Contract (resolved here; ``spot=True``: every role at spot prices, None: as the contract
    says), a Resolution, a Plan, or a sequence of Plans."""
    if isinstance(target, Spec):
        return target
    if isinstance(target, Plan):
        return Spec("plan", "PeerWorkers", (target,))
    if isinstance(target, (list, tuple)) and target and all(isinstance(p, Plan) for p in target):
        return Spec("plan", "PeerWorkers", tuple(target))
    if hasattr(target, "clauses"):  # a Contract
        target = _resolve(target, spot=spot)
        if isinstance(target, Spec):
            return target
    if hasattr(target, "choice"):  # a Resolution
        return _spec_from_resolution(target)
    raise TypeError(f"deploy() takes a contract or a resolution, not {type(target).__name__}")


def resolver_prices_spot() -> bool:
    """Whether the resolver can price a contract at spot prices (``resolve(..., spot=True)``, issue 14).  Until it
    can, a spot deploy keeps the older behaviour: every role launched as spot, priced at on-demand prices."""
    import inspect

    from ccdsl.resolver import resolve

    return "spot" in inspect.signature(resolve).parameters


def spot_option(contract: Contract, config: Config) -> bool | None:
    """What deploy passes as the resolver's ``spot``: True (every role at spot prices) for ``[aws] spot = true``
    when the contract says nothing about spot; None (the contract decides: ``spot``, ``worker.spot``,
    ``manager.spot``, which win over the file as every contract parameter does) otherwise."""
    said = {"spot", "worker.spot", "manager.spot"} & set(contract.config_dict())
    return True if config.aws.spot and not said and resolver_prices_spot() else None


def _resolve(contract: Contract, *, spot: bool | None = None) -> Resolution:
    """The contract's resolution (``node_provider => Local`` resolves to this machine's catalog row); ``spot``
    (from ``[aws] spot = true``): at spot prices, so that what is launched as spot is what was priced as spot."""
    from ccdsl.resolver import resolve

    options: dict[str, Any] = {"spot": spot} if spot is not None and resolver_prices_spot() else {}
    return resolve(contract, **options)


def market_of(choice: Choice) -> str:
    """``"spot"`` or ``"on-demand"``: the market a resolver Choice was priced in."""
    return "spot" if getattr(choice, "market", "on-demand") == "spot" else "on-demand"


def _spec_from_resolution(resolution: Resolution) -> Spec:
    """One plan per choice (the choice, then its alternatives), one request per role.  Each role is requested in
    the market its Choice was priced in (ManagerWorkers with ``worker.spot``: the manager on-demand, the workers
    spot).  A resolver that cannot price spot leaves every Choice on-demand: then the contract's ``spot`` flag
    makes every role spot, as before issue 14."""
    contract = resolution.contract
    overrides = contract_overrides(contract)
    manager = resolution.manager
    choices = [resolution.choice, *resolution.alternatives, *([manager] if manager is not None else [])]
    per_role = resolver_prices_spot() or any(market_of(c) == "spot" for c in choices)
    legacy_spot = bool(overrides.get("aws", {}).get("spot", False))

    def request(choice: Choice, role: str) -> NodeRequest:
        priced = per_role and base.canonical(choice.provider) == "aws"  # SSH hosts and this machine have no market
        # the role's efa => true|false (PeerWorkers' nodes take the unscoped clauses): the provider decides with it
        clauses = contract.clauses_for(role if manager is not None else None)
        efa = fabric.asked(clauses)
        return _request(choice, role, contract.name, market_of(choice) if priced else None, legacy_spot, efa,
                        parameters.asked(clauses, "smt"))

    def plan(choice: Choice) -> Plan:
        requests = []
        if manager is not None:
            requests.append(request(manager, "manager"))
        requests.append(request(choice, "worker"))
        label = choice.describe() if hasattr(choice, "describe") else ""
        return Plan(base.canonical(choice.provider), tuple(requests), label)

    plans = (plan(resolution.choice), *(plan(a) for a in resolution.alternatives))
    return Spec(contract.name, contract.cluster_type, plans, overrides)


def contract_overrides(contract: Contract) -> dict[str, dict[str, Any]]:
    """The contract's configuration parameters as ccdsl.toml keys (they win over the file)."""
    overrides: dict[str, dict[str, Any]] = {}
    for key, given in contract.config_dict().items():
        if key not in CONTRACT_CONFIG:
            continue
        section, name = CONTRACT_CONFIG[key]
        value: Value | dict[str, str] | list[str] = given  # as its ccdsl.toml key takes it
        if key == "image_id":
            value = {"x86_64": str(given), "arm64": str(given)}
        elif key == "placement_group" and isinstance(given, bool):
            value = "cluster" if given else ""
        elif key in ("hosts", "mpi_flags") and isinstance(given, str):
            value = given.split(",") if key == "hosts" else given.split()
        elif key == "root_volume_size":
            value = int(given)
        elif key == "tags":
            from ccdsl.security import tags

            value = tags(given) or {}
        overrides.setdefault(section, {})[name] = value
    ranks = contract.clause("node_process_count")
    if ranks is not None and ranks.qualifier == "just" and ranks.values:
        overrides.setdefault("mpi", {})["processes_per_node"] = int(ranks.values[0])
    return overrides


def _with_file_tags(overrides: Mapping[str, Mapping[str, Any]], config: Config) -> dict[str, dict[str, Any]]:
    """A contract's ``tags`` are added to those of ccdsl.toml (the contract's value wins for the same key)."""
    out = {k: dict(v) for k, v in overrides.items()}
    if "tags" in out.get("aws", {}):
        out["aws"]["tags"] = {**config.aws.tags, **out["aws"]["tags"]}
    return out


def _request(choice: Choice, role: str, contract: str, market: str | None, legacy_spot: bool,
             efa: bool | None = None, smt: bool | None = None) -> NodeRequest:
    """The request of one role.  ``market`` (None: the resolver priced no market) goes into the options, where
    the provider reads it; a spot role also carries its zones, the cheapest spot price's first.  ``efa``: the
    contract's ``efa => true|false`` for the role (None: not said, ``[aws] efa`` decides); ``smt`` likewise (``[aws]
    smt``)."""
    from ccdsl.executor.cost import request_price

    options: dict[str, Any] = {"contract": contract, **request_price(choice)}
    if efa is not None:
        options["efa"] = efa
    if smt is not None:
        options["smt"] = smt
    if market is not None:
        options["market"] = market
    if market == "spot":
        zones = [str(choice.spot_zone or ""), *(str(z) for z in (getattr(choice, "spot_zones", ()) or ()))]
        options["spot_zones"] = list(dict.fromkeys(z for z in zones if z))
    spot = market == "spot" if market is not None else legacy_spot
    return NodeRequest(handle="", role=role, instance_type=choice.instance_type, count=int(choice.node_count),
                       region=choice.region or None, spot=spot, options=options)


def is_spot(request: NodeRequest, config: Config) -> bool:
    """Whether ``request`` launches spot instances: its market when the resolution priced one, else (a bare Plan,
    an older resolver) its spot flag or ``[aws] spot``."""
    market = request.options.get("market")
    return market == "spot" if market else bool(request.spot or config.aws.spot)


def _check_markets(spec: Spec, config: Config, from_resolution: bool) -> None:
    """``[aws] spot = true`` with a resolution priced on-demand: launching it as spot would record on-demand
    prices for spot nodes (and on-demand as the file says would ignore it); either way launch and price disagree."""
    if not (config.aws.spot and from_resolution and resolver_prices_spot()):
        return
    aws = [r for p in spec.plans if p.provider == "aws" for r in p.requests]
    if aws and not any(r.options.get("market") == "spot" for r in aws):
        raise ConfigError("spot is asked for ([aws] spot = true, or the contract's spot => true), but this "
                          "resolution was priced at on-demand prices",
                          hint="resolve it at spot prices (ccdsl.resolve(contract, spot=True)), deploy the contract "
                               "itself, or set [aws] spot = false")


def _with_markets(plan: Plan, config: Config) -> Plan:
    """The plan with each AWS request's market settled (``options["market"]``, what the provider launches and
    the cost record keeps): the resolution's, else the spot flag or ``[aws] spot``.  A burstable type in
    ``[aws] cpu_credits = "unlimited"`` mode is priced at its worst-case surplus too
    (:func:`.cost.with_credit_surplus`)."""
    if plan.provider != "aws":
        return plan
    return replace(plan, requests=tuple(
        replace(r, spot=is_spot(r, config), options={
            **cost.with_credit_surplus(r.options, r.instance_type, config.aws.cpu_credits),
            "market": "spot" if is_spot(r, config) else "on-demand"}) for r in plan.requests))


def _announce_markets(handle: str, plan: Plan, config: Config, state: st.State) -> None:
    """Say which market each role is launched in (log, journal and the record's settings)."""
    markets = {r.role: ("spot" if is_spot(r, config) else "on-demand") for r in plan.requests}
    if plan.provider != "aws":
        return
    parts = []
    for r in plan.requests:
        text = f"{r.role} {r.instance_type} × {r.count}: {markets[r.role]}"
        price = r.options.get("price_per_node_hour")
        if isinstance(price, (int, float)):
            text += f" at {cost.dollars(price)}/node-hour"
        zones = _spot_zones(r)
        if markets[r.role] == "spot" and zones:
            text += f" (cheapest in {zones[0]})"
        parts.append(text)
    log.info("%s: markets: %s", handle, "; ".join(parts))
    state.journal(handle, "markets", **markets)
    state.update_cluster(handle, settings={"markets": markets})
    for r in plan.requests:  # what the CPU credit mode of a burstable type means (ccdsl.burstable)
        text = burstable.describe(r.instance_type, config.aws.cpu_credits)
        if text:
            _note(handle, state, f"{r.role} {r.instance_type}: {text}", phase="credits")


# -- deploy -----------------------------------------------------------------------------------------------------
def deploy(target: Any, *, workdir: str | os.PathLike[str] | None = None, setup: str | None = None,
           config: Config | None = None, progress: Progress | None = None, state: st.State | None = None,
           sync_progress: SyncProgress | None = None, setup_stream: Stream | None = None,
           autostop: str | float | None = None,
           down: bool = False, max_cost: float | None = None) -> Cluster:
    """Create the cluster ``target`` (a Contract, a Resolution, or Plans) asks for; return it running and ready.

    ``workdir`` (a local folder) is copied to every node and is where ranks and engines start; ``setup`` (a shell
    command, e.g. ``pip install -r requirements.txt``) then runs in it on every node, its output streamed with
    the node's name (``setup_stream(node, line)``; default: stderr).  ``sync_progress(files, total_files,
    bytes, total_bytes)`` follows the copy.

    ``progress(role, index, state)`` is called per node as it becomes requested, running, reachable, ready.
    On any failure or Ctrl-C, what was created is terminated before the exception propagates; if even that
    fails, the record stays (status ``failed``) for ``ccdsl terminate``.  A failing set-up command is the
    exception: the cluster stays, ``failed``, for a look at the node (:class:`~ccdsl.errors.SetupError` names
    it and the exit code) and ``ccdsl terminate``.

    ``autostop="30m"`` starts a watchdog on node 0 (or the manager) that stops the cluster after 30 idle minutes
    (``down=True``: terminates it); ``max_cost=50`` makes it warn at 80 % and stop at $50 of estimated compute."""
    from ccdsl.executor import config as cfg
    from ccdsl.executor import workdir as wd

    rule = guard.make(autostop, down, max_cost)  # a bad duration or cap fails before anything is created
    folder = str(wd.check_folder(workdir)) if workdir is not None else None  # bad input: nothing created yet
    if setup is not None and folder is None:
        raise ClusterError("a set-up command runs in the project's folder: give workdir= (--workdir DIR) too")
    config, spec = _checked_spec(target, config or cfg.load(), rule)
    state = state or st.State()
    report = progress or quiet
    handle = new_handle()
    current: list[Provider] = []  # the provider being used, for clean-up if anything below fails
    try:  # from the record on: a Ctrl-C before the first provider call leaves no record (_abort)
        _record(handle, spec, config, state, rule, folder, setup)
        provider, nodes = _create(handle, spec, config, state, report, current)
        if provider.name != "local":
            state.journal(handle, "ready-wait", nodes=len(nodes))
            nodes = make_ready(handle, nodes, config, report, deploying=True)
            state.set_nodes(handle, nodes)
        if folder:
            state.journal(handle, "sync", folder=folder)
            wd.sync_nodes(NodeAccess(handle, current[-1].name, tuple(nodes), config), folder, progress=sync_progress)
    except BaseException as exc:
        _abort(handle, current[-1] if current else None, state, exc,
               reached=any(getattr(p, "reached_cloud", True) for p in current))
        raise
    if setup:
        _setup(NodeAccess(handle, current[-1].name, tuple(nodes), config), setup, current[-1], state, setup_stream)
    return _running(handle, nodes, config, state, rule, current[-1])


def _checked_spec(target: Any, config: Config, rule: guard.Autostop) -> tuple[Config, Spec]:
    """The plans ``target`` asks for, and the configuration with the contract's overrides, checked before anything
    is recorded or created: what the contract may change about access, the markets, what autostop needs of the
    provider, and the ssh provider's hosts."""
    contract = target if hasattr(target, "clauses") else getattr(target, "contract", None)  # Spec.contract: a name
    if hasattr(contract, "clauses"):  # before anything is resolved or created: a contract may not widen access
        from ccdsl import security

        security.enforce(contract, config)
    # [aws] spot = true: a contract is resolved at spot prices (unless it says itself which roles are spot)
    spec = spec_of(target, spot=spot_option(target, config) if hasattr(target, "clauses") else None)
    spec = replace(spec, overrides=_with_file_tags(spec.overrides, config))
    if spec.overrides:
        config = config.replace(f"contract '{spec.contract}'", **{k: dict(v) for k, v in spec.overrides.items()})
    _check_markets(spec, config, from_resolution=hasattr(target, "choice"))
    if rule.active:
        for plan in spec.plans:
            guard.check_deploy(rule, plan.provider, spot=any(is_spot(r, config) for r in plan.requests))
        spec = _with_options(spec, shutdown_behavior=guard.shutdown_behavior(rule))
    if any(plan.provider == "ssh" for plan in spec.plans):  # read before the record: a refused deploy leaves none
        from ccdsl.executor.providers import ssh as ssh_hosts

        ssh_hosts.SshProvider(config).check()
    return config, spec


def _record(handle: str, spec: Spec, config: Config, state: st.State, rule: guard.Autostop, folder: str | None,
            setup: str | None) -> None:
    """The cluster's record, ``deploying``, with what a later process needs to reach and run it."""
    now = time.time()
    state.add_cluster(st.ClusterRecord(
        handle=handle, contract=spec.contract, provider=spec.plans[0].provider, cluster_type=spec.cluster_type,
        status=st.DEPLOYING, created_at=now, updated_at=now, owner_pid=os.getpid(), owner_host=socket.gethostname(),
        settings={"processes_per_node": config.mpi.processes_per_node,
                  "overrides": {k: dict(v) for k, v in spec.overrides.items()},
                  "autostop": rule.to_settings(), **({"workdir": folder, "setup": setup} if folder else {})}))
    state.journal(handle, "deploy", plans=[p.describe() for p in spec.plans])


def _setup(access: NodeAccess, setup: str, provider: Provider, state: st.State, stream: Stream | None) -> None:
    """The set-up command on every node.  When it fails the nodes stay, ``failed``, for a look (terminate removes
    them); anything else (Ctrl-C) takes the cluster down."""
    from ccdsl.executor import workdir as wd

    handle = access.handle
    state.journal(handle, "setup", command=setup)
    try:
        wd.setup_nodes(access, setup, stream=stream)
    except SetupError as exc:  # the nodes stay for a look; terminate removes them
        state.update_cluster(handle, status=st.FAILED, owner_pid=None, note=f"set-up failed: {exc.message}")
        state.journal(handle, "setup-failed", node=exc.node, exit_code=exc.exit_code)
        raise
    except BaseException as exc:
        _abort(handle, provider, state, exc)
        raise


def _running(handle: str, nodes: list[Node], config: Config, state: st.State, rule: guard.Autostop,
             provider: Provider) -> Cluster:
    """The record ``running`` and the cluster returned, its autostop armed first when asked for (an unguarded
    cluster the user asked to guard must not be left running)."""
    workers, _ = split_roles(nodes)
    state.new_workers(handle, len(workers) * config.mpi.processes_per_node)
    state.update_cluster(handle, status=st.RUNNING, owner_pid=None)
    cluster = Cluster(handle, config=config, state=state)
    if rule.active:
        try:
            guard.arm(node_access(cluster), state, rule)
        except BaseException as exc:
            _abort(handle, provider, state, exc)
            raise
    state.journal(handle, "ready")
    return cluster

def _with_options(spec: Spec, **options: Any) -> Spec:
    """Every request of every plan with ``options`` added (e.g. the EC2 shutdown behaviour autostop needs)."""
    plans = tuple(replace(p, requests=tuple(replace(r, options={**r.options, **options}) for r in p.requests))
                  for p in spec.plans)
    return replace(spec, plans=plans)


def _create(handle: str, spec: Spec, config: Config, state: st.State, report: Progress,
            current: list[Any]) -> tuple[Any, list[Node]]:
    """Try the plans in order; within a plan, every role in every zone; return (provider, nodes)."""
    failures: list[str] = []
    hints: list[str] = []
    kept: Provider | None = None  # the provider whose shared resources (security group, key pair) the next plan reuses
    for number, plan in enumerate(spec.plans):
        provider = kept or base.get(plan.provider, config)
        if provider is not kept:
            current.append(provider)
        if hasattr(provider, "on_record"):  # its launch journal is on record before each launch goes out
            provider.on_record = lambda p=provider: state.update_cluster(handle, settings=_settings(p))
        state.update_cluster(handle, provider=plan.provider, settings=_settings(provider))
        plan = _with_markets(plan, config)
        cost.record_plan(state, handle, plan)  # priced before anything is created: a crashed deploy is priced too
        try:
            return provider, _create_plan(handle, plan, provider, state, report,
                                          announce=partial(_announce_markets, handle, plan, config, state))
        except CapacityError as exc:
            failures.append(f"{plan.describe()}: {exc.message}")
            if exc.hint and exc.hint not in hints:
                hints.append(exc.hint)
            nxt = spec.plans[number + 1] if number + 1 < len(spec.plans) else None
            kept = None
            if nxt is not None and _same_place(plan, nxt) and hasattr(provider, "release"):
                state.journal(handle, "cleanup", keep="security group, key pair")
                provider.release(handle, state.nodes(handle))
                state.clear_nodes(handle)
                kept = provider
            else:
                _cleanup(handle, provider, state)
            if nxt is not None:
                _note(handle, state, f"{plan.describe()} is not available ({exc.message}); trying the next-cheapest "
                                     f"alternative: {nxt.describe()}")
    raise CapacityError("no capacity for any resolution of the contract:\n  " + "\n  ".join(failures),
                        hint="; ".join(hints) or "try later, another region (cluster_locale => ...), or relax the "
                                                 "contract")


def _same_place(plan: Plan, other: Plan) -> bool:
    """Whether two plans launch with the same provider in the same region (so they can share its resources)."""
    def region(p: Plan) -> str | None:
        return p.requests[0].region if p.requests else None

    return plan.provider == other.provider and region(plan) == region(other)


def _create_plan(handle: str, plan: Plan, provider: Provider, state: st.State, report: Progress,
                 announce: Callable[[], None] | None = None) -> list[Node]:
    """Create every role of ``plan``; ``announce()`` runs once, just before the first create call: a deploy that
    fails before it (no credentials, a refused region) leaves no record, so it must not name markets of a handle
    that never existed."""
    created: list[Node] = []
    preferred: str | None = None
    # The spot zones of the plan's spot roles, cheapest first: an on-demand role starts in the first of them it can
    # use, so the cluster stays in one zone when it can (ManagerWorkers with spot workers: the manager beside them).
    lead = [z for r in plan.requests for z in _spot_zones(r)]
    if hasattr(provider, "check_plan"):  # what the provider would refuse of any role: before the first create
        provider.check_plan(plan.requests)
    for request in plan.requests:
        request = replace(request, handle=handle)
        zones = provider.zones(request) if hasattr(provider, "zones") else [None]
        state.update_cluster(handle, settings=_settings(provider))  # the region is known now: before any create
        spot_order = _spot_zones(request)
        if spot_order:
            zones = _spot_zone_order(handle, request, zones, spot_order, state)
        else:
            first = preferred if preferred in zones else next((z for z in lead if z in zones), None)
            if first is not None:  # keep the roles of a cluster in one zone when possible
                zones = [first, *(z for z in zones if z != first)]
        tried = []
        for position, zone in enumerate(zones):
            attempt = replace(request, options={**request.options, "zone": zone}) if zone else request
            if announce is not None:
                announce()
                announce = None
            state.journal(handle, "create", role=request.role, instance_type=request.instance_type,
                          count=request.count, zone=zone, market=request.options.get("market"))
            try:
                nodes = provider.create(attempt, report)
            except CapacityError as exc:
                if getattr(exc, "scope", "zone") == "region":  # an account quota: no other zone helps
                    raise
                tried.append(f"{zone}: {exc.message}" if zone else exc.message)
                state.update_cluster(handle, settings=_settings(provider))
                if zone is not None and position + 1 < len(zones):
                    if spot_order:
                        _note(handle, state, f"{request.instance_type} × {request.count} ({request.role}, spot): "
                                             f"no capacity in {zone} ({getattr(exc, 'code', '') or 'capacity'}); "
                                             f"trying the next zone, {zones[position + 1]}")
                    else:
                        _note(handle, state, f"{request.instance_type} × {request.count} ({request.role}): no "
                                             f"capacity in {zone}; trying the next zone")
                continue
            state.set_nodes(handle, nodes)
            state.update_cluster(handle, settings=_settings(provider))
            state.journal(handle, "created", role=request.role, ids=[n.instance_id for n in nodes], zone=zone)
            fabric_line = provider.fabric_line(attempt) if hasattr(provider, "fabric_line") else ""
            if fabric_line:  # "EFA on: 1 of 32 interfaces (…)": what the role's nodes got, and why
                log.info("%s: %s: %s", handle, request.role, fabric_line)
                state.journal(handle, "efa", role=request.role, text=fabric_line)
            if spot_order and zone is not None and zone != spot_order[0]:
                _note(handle, state, f"{request.role}s run as spot in {zone}; the recorded spot price is that of "
                                     f"{spot_order[0]} (the cheapest zone), the price in {zone} may differ")
            if hasattr(provider, "wait_running"):
                nodes = provider.wait_running(handle, nodes, report)
                state.set_nodes(handle, nodes)
            created += nodes
            preferred = zone
            break
        else:
            raise CapacityError(f"{request.instance_type} × {request.count}"
                                + (" (spot)" if request.options.get("market") == "spot" else "")
                                + " could not be created in any zone" + (f" ({'; '.join(tried)})" if tried else ""))
    return created


def _spot_zones(request: NodeRequest) -> list[str]:
    """A spot request's priced zones, cheapest first (empty for on-demand and for spot priced region-wide)."""
    if request.options.get("market") != "spot":
        return []
    return [str(z) for z in request.options.get("spot_zones") or ()]  # type: ignore[attr-defined]


def _spot_zone_order(handle: str, request: NodeRequest, usable: list[str | None], priced: list[str],
                     state: st.State) -> list[str | None]:
    """The zones a spot role tries: its spot zone (the cheapest spot price), the other priced zones in price order,
    then every other usable zone -- all of them among the usable ones (a default subnet there, the type offered
    there, or ``[aws] zones``).  Logged and journaled, as failover is."""
    what = f"{request.instance_type} × {request.count} ({request.role}, spot)"
    if usable == [None]:  # [aws] subnet_id: the subnet decides the zone
        log.info("%s: %s: [aws] subnet_id fixes the zone; the cheapest spot zone %s is not chosen here", handle,
                 what, priced[0])
        state.journal(handle, "zones", role=request.role, market="spot", order=[], priced=priced)
        return usable
    order: list[str | None] = [z for z in priced if z in usable]
    order += [z for z in usable if z not in order]
    skipped = [z for z in priced if z not in usable]
    text = f"{what}: zones in order {', '.join(str(z) for z in order)}"
    if order and order[0] == priced[0]:
        text += f" ({priced[0]}: the cheapest spot price)"
    if skipped:
        text += f"; priced but not usable here: {', '.join(skipped)}"
    log.info("%s: %s", handle, text)
    state.journal(handle, "zones", role=request.role, market="spot", order=order, priced=priced, skipped=skipped)
    return order


def _settings(provider: Provider) -> dict[str, Any]:
    return provider.settings() if hasattr(provider, "settings") else {}


def _note(handle: str, state: st.State, text: str, phase: str = "note") -> None:
    """Append ``text`` to the record's note and journal it (``phase``: "note" warns; others, e.g. "credits", only
    inform)."""
    (log.warning if phase == "note" else log.info)("%s: %s", handle, text)
    record = state.get_cluster(handle)
    joined = f"{record.note}; {text}" if record is not None and record.note else text
    state.update_cluster(handle, note=joined)
    state.journal(handle, phase, text=text)


def _cleanup(handle: str, provider: Provider, state: st.State) -> None:
    """Terminate whatever the handle owns at ``provider`` (tags find what the records may have missed)."""
    state.journal(handle, "cleanup")
    provider.terminate(handle, state.nodes(handle))
    state.clear_nodes(handle)


def _abort(handle: str, provider: Provider | None, state: st.State, exc: BaseException, *,
           reached: bool = True) -> None:
    """Undo a failed deploy.  One that never sent a call that could create something (no credentials, a bad
    region, an unknown image) leaves nothing to clean and no record: a record it left could not be terminated
    without the very access that was missing, and would be warned about forever."""
    if not reached:
        state.forget(handle)
        return
    reason = exc.message if isinstance(exc, CcdslError) else (
        "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}")
    # Nothing is created before the journal says "create" (zones, prices and checks come first): a deploy that
    # fails before that (no credentials, a refused call) has nothing to clean up, and must not leave a failed
    # cluster behind that asks for a terminate which would fail the same way.
    attempted = any(e.phase == "create" for e in state.journal_of(handle))
    state.journal(handle, "abort", error=reason)
    try:
        if provider is not None and attempted:
            _cleanup(handle, provider, state)
        state.clear_workers(handle)
        state.update_cluster(handle, status=st.TERMINATED, owner_pid=None,
                             note=f"deploy failed ({reason}); " + ("everything it created was removed" if attempted
                                                                   else "nothing was created"))
    except BaseException as cleanup_exc:  # a second Ctrl-C, or the cloud refusing
        what = cleanup_exc.message if isinstance(cleanup_exc, CcdslError) else type(cleanup_exc).__name__
        state.update_cluster(handle, status=st.FAILED, owner_pid=None,
                             note=f"deploy failed ({reason}) and clean-up failed ({what})")
        log.error("%s: deploy failed and its resources may remain; run: ccdsl terminate %s", handle, handle)


# -- reconciliation ---------------------------------------------------------------------------------------------
def _scopes(records: Iterable[st.ClusterRecord],
            config: Config) -> dict[Scope, tuple[Provider, list[st.ClusterRecord]]]:
    """Authoritative providers to ask, one per (provider, region, endpoint), with the records they own."""
    from ccdsl.executor.config import AwsConfig

    scopes: dict[Scope, tuple[Provider, list[st.ClusterRecord]]] = {}

    def scope_of(provider_name: str, settings: Mapping[str, Any]) -> Scope:
        return (provider_name, settings.get("resolved_region") or settings.get("region") or config.aws.region,
                settings.get("endpoint_url", config.aws.endpoint_url), settings.get("profile", config.aws.profile))

    for r in records:
        if r.provider == "local":
            continue
        key = scope_of(r.provider, r.settings) if r.provider == "aws" else (r.provider, None, None, None)
        if key not in scopes:
            scopes[key] = (base.get(r.provider, config, dict(r.settings)), [])
        scopes[key][1].append(r)
    if config.aws != AwsConfig():  # the user configured AWS: look there too, for clusters this machine forgot
        key = scope_of("aws", {})
        if key not in scopes:
            scopes[key] = (base.get("aws", config, {}), [])
    if config.ssh.hosts and ("ssh", None, None, None) not in scopes:
        scopes[("ssh", None, None, None)] = (base.get("ssh", config, {}), [])
    return scopes


def reconcile(config: Config, state: st.State) -> list[str]:
    """Bring the records in line with the clouds; return warnings (a cloud that could not be asked)."""
    warnings = []
    records = state.list_clusters()
    interrupted: dict[str, str] = {}  # handle -> the lifecycle verb whose process died half way
    for r in records:  # a deploy whose process is gone will never finish
        if r.status == st.DEPLOYING and not st.owner_alive(r):
            state.update_cluster(r.handle, status=st.FAILED, owner_pid=None,
                                 note="the deploy was interrupted (its process is gone); run 'ccdsl terminate "
                                      f"{r.handle}' to remove what it created")
        elif r.owner_pid is not None and r.status != st.DEPLOYING and not st.owner_alive(r):
            interrupted[r.handle] = _interrupted_verb(r, state)
    for (name, region, _endpoint, _), (provider, owned) in _scopes(state.list_clusters(), config).items():
        try:
            found = set(provider.discover())
        except CcdslError as exc:
            warnings.append(f"could not check {name} {region or ''}: {exc.message}")
            continue
        if not getattr(provider, "authoritative", False):
            continue
        for r in owned:
            if r.handle in found:
                if not guard.reconcile_record(r, provider, state, config):  # what a watchdog did, if anything
                    _refresh_nodes(r, provider, state, interrupted.get(r.handle))
            elif r.status in (st.RUNNING, st.INTERRUPTED):
                state.update_cluster(r.handle, status=st.TERMINATED, note="nothing of it exists in the cloud any more "
                                                                          "(terminated outside ccdsl)")
                state.clear_workers(r.handle)
            elif r.status == st.FAILED:
                state.update_cluster(r.handle, note=(r.note + "; " if r.note else "") + "nothing of it exists in "
                                                    "the cloud")
        known = {r.handle for r in state.list_clusters(live_only=False)}
        for handle in sorted(found - known):
            _adopt(handle, provider, state)
    return warnings


def _interrupted_verb(record: st.ClusterRecord, state: st.State) -> str:
    """A lifecycle verb whose process died after recording its intent: say so, and give the cluster the fresh
    workers the verb would have given it when it is running (a restart's old worker ids are stale).  The status
    itself then follows the cloud (:func:`_refresh_nodes`)."""
    verb = st.pending_verb(state, record.handle) or "lifecycle step"
    state.journal(record.handle, f"{verb}-interrupted")
    text = f"a '{verb}' was interrupted (its process is gone); the status follows what the cloud reports"
    state.update_cluster(record.handle, owner_pid=None, note=text)
    if record.status == st.RUNNING and verb == "restart":
        _fresh_workers(record, state)
    return verb


def _fresh_workers(record: st.ClusterRecord, state: st.State) -> None:
    workers, _ = split_roles(state.nodes(record.handle))
    state.new_workers(record.handle, len(workers) * int(record.settings.get("processes_per_node", 1)))


_UP, _DOWN = {"pending", "running"}, {"stopping", "stopped"}


def _refresh_nodes(record: st.ClusterRecord, provider: Provider, state: st.State, verb: str | None = None) -> None:
    """The record's nodes as the cloud has them: states and addresses refreshed, rows of instances that no longer
    exist dropped (else every later terminate/interrupt would name them), the status following the nodes.

    Running (or starting) instances are never shown as stopped: an ``interrupted`` cluster whose nodes all run is
    ``running`` again, one with only some running is ``failed`` (with what to do).  ``verb`` is a lifecycle verb
    whose process died half way (see ``Cluster._intent``)."""
    if record.status == st.DEPLOYING:
        return
    live = {(n.role, n.index): n for n in provider.describe(record.handle)}
    if not live:
        if verb is not None and record.status in (st.RUNNING, st.INTERRUPTED):  # e.g. a terminate killed half way
            state.clear_workers(record.handle)
            state.update_cluster(record.handle, status=st.FAILED,
                                 note=f"a '{verb}' was interrupted: no instance of it runs any more, but other "
                                      f"resources remain; run 'ccdsl terminate {record.handle}' to finish")
        elif provider.name == "aws" and record.status in (st.RUNNING, st.INTERRUPTED):
            _all_gone(record, cast("AwsProvider", provider), state)  # its name says which class it is
        return
    ours = {(n.role, n.index): n for n in state.nodes(record.handle)}
    merged = [replace(ours[k], state=n.state, address=n.address, private_address=n.private_address, zone=n.zone,
                      instance_id=n.instance_id) if k in ours else n for k, n in live.items()]
    gone = sorted(f"{ours[k].role} {ours[k].index} ({ours[k].instance_id})" for k in ours if k not in live)
    if gone:
        state.clear_nodes(record.handle)
        _note(record.handle, state, f"node(s) {', '.join(gone)} no longer exist in the cloud")
    state.set_nodes(record.handle, merged)
    if provider.name != "aws":  # bring-your-own hosts are never stopped: their state says nothing about ours
        return
    if record.owner_pid is not None and st.owner_alive(record):  # a verb in progress: its process sets the status
        return
    states = {n.state for n in merged}
    why = f"a '{verb}' was interrupted" if verb else None
    if record.status == st.RUNNING and states <= _DOWN:
        state.clear_workers(record.handle)
        state.update_cluster(record.handle, status=st.INTERRUPTED,
                             note=f"{why}: its nodes are stopped" if why else _stopped_note(record, provider))
    elif record.status == st.INTERRUPTED and states <= _UP:
        # A persistent spot request with stop-on-interruption: EC2 starts the nodes again when capacity returns;
        # or a resume whose process died after StartInstances.
        _fresh_workers(record, state)
        note = (f"{why}: its nodes are running" if why else
                "its nodes were started again outside ccdsl (a spot cluster restarts when capacity returns)")
        if record.settings.get(guard.STALE):  # their boot script started the watchdog armed before the change
            note += "; " + guard.stale_note(record.handle)
        state.update_cluster(record.handle, status=st.RUNNING, note=note)
    elif record.status == st.RUNNING and not verb and states & _UP and not states <= _UP:
        _note_mixed(record, merged, state)  # e.g. one spot node interrupted, or one a watchdog's shutdown missed
    elif record.status == st.RUNNING and states <= _UP and _MIXED in record.note:
        state.update_cluster(record.handle, note="")  # every node runs again
    elif (record.status == st.INTERRUPTED or (verb and record.status == st.RUNNING)) and states & _UP \
            and not states <= _UP:
        up = sum(n.state in _UP for n in merged)
        state.clear_workers(record.handle)
        state.update_cluster(record.handle, status=st.FAILED, note=(
            f"{why or 'changed outside ccdsl'}: {up} of {len(merged)} nodes are running in the cloud (paid); "
            f"'ccdsl interrupt {record.handle}' stops them, 'ccdsl terminate {record.handle}' removes the cluster"))


_MIXED = "nodes are running in the cloud (paid)"


def _note_mixed(record: st.ClusterRecord, nodes: list[Node], state: st.State) -> None:
    """A running cluster with some nodes stopped: its runs cannot use them, and the running ones cost."""
    up = sum(n.state in _UP for n in nodes)
    down = ", ".join(f"{n.role} {n.index}" for n in nodes if n.state not in _UP)
    note = (f"{up} of {len(nodes)} {_MIXED}; stopped: {down}. 'ccdsl interrupt {record.handle}' stops the rest, "
            f"'ccdsl terminate {record.handle}' removes the cluster")
    if record.note != note:
        state.update_cluster(record.handle, note=note)
        state.journal(record.handle, "note", text=note)
        log.warning("%s: %s", record.handle, note)


def _stopped_note(record: st.ClusterRecord, provider: Provider) -> str:
    """Why every node of a running cluster is stopped: EC2 interrupted its spot nodes (their requests say so), the
    watchdog, or someone outside ccdsl."""
    held = provider.ec2_stopped(record.handle) if hasattr(provider, "ec2_stopped") else {}  # a rare event: ask
    if not held:
        return guard.stopped_note(record)
    return (f"EC2 stopped {len(held)} spot node(s) ({', '.join(sorted(set(held.values())))}): only EC2 can start "
            f"them again, which it does when capacity returns (then this shows running); 'ccdsl terminate "
            f"{record.handle}' ends it")


def _all_gone(record: st.ClusterRecord, provider: AwsProvider, state: st.State) -> None:
    """Every instance of a running or interrupted cluster is gone (EC2 forgets terminated ids soon): nothing can
    come back, so what is left (security group, key pair, spot requests) is removed and the cluster recorded as
    terminated, saying so -- as an autostop with --down is (guard.reconcile_record)."""
    ours = [n for n in state.nodes(record.handle) if n.instance_id.startswith("i-")]
    if ours and any(n.state not in (model.TERMINATED, "shutting-down")
                    for n in provider.describe_ids(n.instance_id for n in ours)):
        return  # asked by id, one still exists: the listing by tag was behind (eventual consistency)
    provider.terminate(record.handle, ours)
    state.set_nodes(record.handle, [replace(n, state=model.TERMINATED) for n in state.nodes(record.handle)])
    state.clear_workers(record.handle)
    note = ("none of its instances exist in the cloud any more (terminated outside ccdsl, or by EC2), and nothing "
            "can bring them back; the rest of it (security group, key pair, spot requests) was removed")
    state.update_cluster(record.handle, status=st.TERMINATED, note=note)
    state.journal(record.handle, "vanished", note=note)
    log.warning("%s: %s", record.handle, note)


def _adopt(handle: str, provider: Provider, state: st.State) -> None:
    """A cluster found by its tags that no record knows (made on another machine, or records lost)."""
    if not is_handle(handle):
        return
    nodes = provider.describe(handle)
    contract = next((n.extra.get("contract") for n in nodes if n.extra.get("contract")), "") or "?"
    cluster_type = "ManagerWorkers" if any(n.role == "manager" for n in nodes) else "PeerWorkers"
    now = time.time()
    states = {n.state for n in nodes}
    status = st.RUNNING if states == {"running"} else st.INTERRUPTED if states == {"stopped"} else st.FAILED
    settings = {k: v for k, v in _settings(provider).items() if not k.endswith("_created")}
    if provider.name == "aws":  # the market each role runs in, as EC2 says it (a spot instance has its request)
        settings["markets"] = {n.role: "spot" if any(m.extra.get("spot_request") for m in nodes if m.role == n.role)
                               else "on-demand" for n in nodes}
    state.add_cluster(st.ClusterRecord(handle=handle, contract=contract, provider=provider.name,
                                       cluster_type=cluster_type, status=status, created_at=now, updated_at=now,
                                       settings=settings, note="found in the cloud by its tags (no local record)"))
    state.set_nodes(handle, nodes)


def clusters(*, config: Config | None = None, state: st.State | None = None,
             reconcile_cloud: bool = True) -> list[ClusterInfo]:
    """The clusters that are not terminated (the seed's ``@clusters``), reconciled with the clouds first."""
    from ccdsl.executor import config as cfg

    config = config or cfg.load()
    state = state or st.State()
    if reconcile_cloud:
        for w in reconcile(config, state):
            log.warning("%s", w)
    out = []
    for r in state.list_clusters():
        workers, _ = split_roles(state.nodes(r.handle))
        out.append(info_of(r, state, workers))
        stale = guard.stale_watchdog(r, state, config)
        if stale:
            log.warning("%s", stale)
        expiry = spot_expiry(r)
        if expiry:
            log.warning("%s", expiry)
    return out


SPOT_EXPIRY_WARNING = 7 * 86400.0  # seconds before a spot cluster's requests end that 'clusters' warns


def spot_expiry(record: st.ClusterRecord, now: float | None = None) -> str | None:
    """A warning in the last week of a spot cluster's persistent requests (their ValidUntil, recorded at deploy):
    after it EC2 cancels them, terminates a stopped node, and a running one can no longer be interrupted."""
    until = record.settings.get("spot_valid_until")
    if record.status not in (st.RUNNING, st.INTERRUPTED) or not isinstance(until, (int, float)):
        return None
    now = time.time() if now is None else now
    if now < until - SPOT_EXPIRY_WARNING:
        return None
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(until))
    done = "ended" if now >= until else "end"
    return (f"{record.handle}: its spot requests {done} on {when}: EC2 then cancels them, terminates a stopped node "
            f"and a running one can no longer be interrupted and resumed; copy what you need, then 'ccdsl terminate "
            f"{record.handle}' and deploy again")


def cost_report(*, all: bool = False, days: float = 30, config: Config | None = None,
                state: st.State | None = None) -> list[ClusterInfo]:
    """Every cluster with its cost estimate, terminated ones included: the live ones (reconciled first, so a
    cluster stopped outside ccdsl stops costing from then on) and those started in the last ``days`` days
    (``all``: every record).  Never reads the catalog: prices are the ones recorded at deploy."""
    from ccdsl.executor import config as cfg

    state = state or st.State()
    infos = clusters(config=config or cfg.load(), state=state)
    live = {i.handle for i in infos}
    since = time.time() - days * 86400
    infos += [info_of(r, state) for r in state.list_clusters(live_only=False)
              if r.handle not in live and (all or r.created_at >= since)]
    return sorted(infos, key=lambda i: i.created_at)


def info_of(r: st.ClusterRecord, state: st.State, workers: list[Node] | None = None) -> ClusterInfo:
    """One :class:`ClusterInfo` from a record, with its cost estimate and autostop settings."""
    if workers is None:
        workers, _ = split_roles(state.nodes(r.handle))
    instance_type = workers[0].instance_type if workers else next(
        (p.instance_type for p in state.prices(r.handle) if p.role != "manager"), "-")
    count = len(workers) or next((p.node_count for p in state.prices(r.handle) if p.role != "manager"), 0)
    estimate = cost.estimate(state, r)
    market = cost.market_summary(estimate.prices) or cost.market_summary(
        st.RolePrice(role, "", 0, None, market=str(m)) for role, m in (r.settings.get("markets") or {}).items())
    return ClusterInfo(handle=r.handle, contract=r.contract, provider=r.provider, cluster_type=r.cluster_type,
                       status=r.status, created_at=r.created_at, nodes=count, instance_type=instance_type,
                       note=r.note, cost=estimate, autostop=r.settings.get("autostop") or None,
                       market=market)


def reconnect(handle: str, *, config: Config | None = None, state: st.State | None = None,
              progress: Progress | None = None) -> Cluster:
    """A :class:`Cluster` for a cluster of an earlier session, with fresh workers.  Looks in the cloud (by tags)
    when this machine has no record of it."""
    from ccdsl.executor import config as cfg

    if not is_handle(handle):
        raise ClusterError(f"'{handle}' is not a cluster handle (15 letters)")
    config = config or cfg.load()
    state = state or st.State()
    record = state.get_cluster(handle)
    if record is None or record.live:
        reconcile(config, state)
        record = state.get_cluster(handle)
    if record is None:
        raise ClusterError(f"no cluster with handle {handle}, here or in the cloud",
                           hint="'ccdsl clusters' lists the known ones")
    if record.status == st.TERMINATED:
        raise ClusterError(f"cluster {handle} is terminated" + (f" ({record.note})" if record.note else ""))
    if record.status in (st.FAILED, st.DEPLOYING):
        raise ClusterError(f"cluster {handle} is {record.status}: {record.note or 'not usable'}",
                           hint=f"ccdsl terminate {handle}")
    cluster = Cluster(handle, config=config, state=state)
    if record.status == st.RUNNING:
        reattach(cluster, progress or quiet)
    state.journal(handle, "reconnect")
    return cluster


def get(cluster: Cluster | str, *, config: Config | None = None, state: st.State | None = None) -> Cluster:
    """A Cluster for a Cluster or a handle (what the lifecycle functions accept)."""
    if isinstance(cluster, Cluster):
        return cluster
    if isinstance(cluster, str):
        return Cluster(cluster, config=config, state=state)
    raise TypeError(f"expected a Cluster or a handle, not {type(cluster).__name__}")


__all__ = ["ClusterInfo", "Plan", "Spec", "clusters", "cost_report", "deploy", "get", "reconcile", "reconnect",
           "spec_of"]
