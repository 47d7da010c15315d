"""Issue 14, the deploy side: each role launched in the market its Choice was priced in, spot roles in their spot
zones first, spot capacity errors failing over zone by zone and then to the next alternative, and the cost record
keeping the spot price the cluster was resolved with.

Resolutions are the resolver's, over a hand-written catalog of spot prices per zone (:func:`spot_catalog`, merged
on top of the shipped catalog as ``--catalog`` does).  EC2 is moto's server (boto3 through the aws provider); the
nodes are SSH hosts in network namespaces mapped with ``[aws] address_map`` -- nothing connects to an address moto
reports.  Capacity errors are injected per zone with botocore ``before-send`` handlers, as EC2 would answer them.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import time

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import CapacityError, ConfigError
from ccdsl.executor import cost, guard
from ccdsl.executor import state as st
from ccdsl.executor.config import Config
from ccdsl.executor.deploy import Plan, spec_of, spot_option
from ccdsl.executor.model import NodeRequest
from fixtures_executor import (  # fixtures
    aws_settings,
    data_dir,
    ec2,
    ec2_keys_on_hosts,
    hooks,
    inject,
    request_type,
    request_zone,
    tagged,
)
from fixtures_netns import netns_hosts

pytest.importorskip("paramiko")

WHERE = 'node_provider => AmazonEC2, cluster_locale => "us-east-1", burstable => true'  # t3.xlarge competes
MANAGED = ("managed = @cluster(cluster_type => ManagerWorkers, node_count => 2, worker.node_vcpus_count => "
           f"@atleast(4), worker.node_memory_size => @atleast(16G), worker.spot => true, {WHERE})")
PEERS = f"peers = @cluster(node_count => 2, node_vcpus_count => @atleast(4), node_memory_size => @atleast(16G), {WHERE}"
SPOT_PEERS = PEERS + ", spot => true)"
PEERS += ")"
SPOT_PRICE, ON_DEMAND = 0.0512, 0.1664  # t3.xlarge below: its spot price in its cheapest zone, its on-demand price

# Specs and on-demand prices as the shipped catalog has them (us-east-1); the spot prices are made up for the tests.
_ROW = """
[[instance]]
instance_type = "{type}"
vcpus = 4
cores = 2
memory_gib = 16.0
cpu_manufacturer = "Intel"
cpu_model = "{cpu}"
cpu_microarchitecture = "Skylake"
cpu_architecture = "x86_64"
network_gbps = {net}
burstable = {burstable}
price_per_hour = {on_demand}
spot_price_per_hour = {price}
spot_zone = "{zone}"
spot_zones = "{zones}"
"""


def spot_catalog(tmp_path, t3=(("us-east-1c", SPOT_PRICE), ("us-east-1a", 0.0561)),
                 m5=(("us-east-1b", 0.0702), ("us-east-1a", 0.0733))):
    """A user catalog (TOML) pricing t3.xlarge and m5.xlarge at spot prices per zone, cheapest first; t3.xlarge is
    the cheaper, so a spot contract for 4 vCPUs and 16 GiB resolves to it with m5.xlarge as first alternative."""
    rows = []
    for name, zones, cpu, net, burstable, on_demand in (
            ("t3.xlarge", t3, "Intel Xeon E5-2686 v5", 5.0, "true", ON_DEMAND),
            ("m5.xlarge", m5, "Intel Xeon Platinum 8175M", 10.0, "false", 0.192)):
        rows.append(_ROW.format(type=name, cpu=cpu, net=net, burstable=burstable, on_demand=on_demand,
                                price=zones[0][1], zone=zones[0][0],
                                zones=" ".join(f"{z}={p}" for z, p in zones)))
    path = tmp_path / "spot_prices.toml"
    path.write_text('[defaults]\nprovider = "aws"\nregion = "us-east-1"\nspot = true\nspot_price_source = '
                    '"test-spot"\nspot_price_date = "2026-11-25T08:00:00+00:00"\nprice_source = '
                    '"karpenter@6fc13b52"\nprice_date = "2026-07-20"\nstorage_type = "ebs"\n' + "".join(rows))
    return path


def resolve(text: str, catalog_path, **kw):
    from ccdsl.catalog import load
    from ccdsl.resolver import market
    from ccdsl.resolver.view import VIEW_COLUMNS

    catalog = load(paths=[str(catalog_path)], columns=VIEW_COLUMNS + market.SPOT_COLUMNS)
    (contract,) = ccdsl.parse(text).values()
    return ccdsl.resolve(contract, catalog, **kw)


def settings_of(aws_env, netns_hosts, tmp_path, **aws):
    hosts = netns_hosts.hosts
    return {
        "aws": aws_settings(aws_env, user=netns_hosts.user, address_map={
            "manager.0": hosts[3].address, "0": hosts[0].address, "1": hosts[1].address}, **aws),
        "ssh": {"ready_timeout": 60.0, "connect_timeout": 5.0},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(tmp_path / "remote"),
                "authorized_keys": str(netns_hosts.authorized_keys)},
    }


@pytest.fixture()
def config(aws_env, data_dir, netns_hosts, tmp_path, ec2_keys_on_hosts):
    return Config.from_dict(settings_of(aws_env, netns_hosts, tmp_path))


def offline(aws_env, **aws) -> Config:
    """A config for tests that must fail before any node is reached: should one get that far, every node maps to a
    closed port on 127.0.0.1 (never to an address moto reports)."""
    from conftest import free_port

    closed = f"127.0.0.1:{free_port()}"
    return Config.from_dict({"aws": aws_settings(aws_env, address_map={"manager.0": closed, "0": closed,
                                                                         "1": closed}, **aws),
                             "ssh": {"ready_timeout": 2.0, "connect_timeout": 1.0}})


def toml_text(d: dict, section: str = "") -> str:
    """Enough TOML for a ccdsl.toml: tables of strings, numbers, booleans, string lists and inline tables."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"

    return "".join(f"[{name}]\n" + "".join(f"{k} = {value(v)}\n" for k, v in table.items()) for name, table in
                   d.items())


def run_instances(hooks) -> list[dict]:
    """The parameters of every RunInstances the provider sends (failed ones included), in order."""
    runs: list[dict] = []
    hooks.append(("before-parameter-build.ec2.RunInstances", lambda params, **_: runs.append(dict(params))))
    return runs


def zone_of(params: dict) -> str | None:
    return (params.get("Placement") or {}).get("AvailabilityZone")


def notes(handle: str) -> list[str]:
    return [e.detail.get("text", "") for e in st.State().journal_of(handle) if e.phase == "note"]


# -- worker-only spot on ManagerWorkers ------------------------------------------------------------------------------
@pytest.mark.netns
def test_worker_only_spot_manager_on_demand_deployed_recorded_listed_and_reconnected(
        aws_env, data_dir, netns_hosts, ec2_keys_on_hosts, tmp_path, ec2, hooks, capsys, caplog, monkeypatch):
    """``ccdsl deploy`` of a ManagerWorkers contract with ``worker.spot => true``: the manager's RunInstances has no
    InstanceMarketOptions, the workers' does; both in the workers' cheapest spot zone; the deploy says which market
    each role uses; the cost record, ``clusters``, ``nodes``, ``cost-report`` and a reconnect show it."""
    prices = spot_catalog(tmp_path)
    contract = tmp_path / "managed.ccc"
    contract.write_text(MANAGED + "\n")
    config_file = tmp_path / "ccdsl.toml"
    config_file.write_text(toml_text(settings_of(aws_env, netns_hosts, tmp_path)))
    monkeypatch.setenv("CCDSL_CONFIG", str(config_file))
    resolution = resolve(MANAGED, prices)
    manager, workers = resolution.manager, resolution.choice
    assert (manager.market, workers.market, workers.instance_type) == ("on-demand", "spot", "t3.xlarge")
    runs = run_instances(hooks)
    caplog.set_level("INFO", logger="ccdsl.executor")  # the CLI logs to stderr too; caplog sees every test's

    assert main(["deploy", str(contract), "--catalog", str(prices)]) == 0
    out = capsys.readouterr()
    handle = out.out.strip()
    try:
        assert "; workers spot (cheapest in us-east-1c), manager on-demand" in out.err
        assert f"markets: manager {manager.instance_type} × 1: on-demand" in caplog.text
        assert f"worker t3.xlarge × 2: spot at ${SPOT_PRICE:.4g}/node-hour (cheapest in us-east-1c)" in caplog.text
        (manager_run, worker_run) = runs
        assert (manager_run["InstanceType"], worker_run["InstanceType"]) == (manager.instance_type, "t3.xlarge")
        assert "InstanceMarketOptions" not in manager_run  # the manager is on-demand
        assert worker_run["InstanceMarketOptions"]["MarketType"] == "spot"
        assert not any(s["ResourceType"] == "spot-instances-request" for s in manager_run["TagSpecifications"])
        assert any(s["ResourceType"] == "spot-instances-request" for s in worker_run["TagSpecifications"])
        # both roles in the workers' cheapest spot zone: the manager goes where the workers are priced
        assert [zone_of(r) for r in runs] == ["us-east-1c", "us-east-1c"]
        c = ccdsl.reconnect(handle)
        assert {n.zone for n in c.nodes()} == {"us-east-1c"}

        # the cost record: the spot price it was resolved with, its market, source, date and zone, and the
        # on-demand price beside it; the manager at its on-demand price
        recorded = {p.role: p for p in st.State().prices(handle)}
        w, m = recorded["worker"], recorded["manager"]
        assert (w.market, w.price_per_node_hour, w.source, w.date, w.zone, w.on_demand_price_per_node_hour) == (
            "spot", SPOT_PRICE, "test-spot", "2026-11-25T08:00:00Z", "us-east-1c", ON_DEMAND)
        assert (m.market, m.price_per_node_hour, m.on_demand_price_per_node_hour) == (
            "on-demand", manager.price_per_node_hour, manager.price_per_node_hour)
        assert c.cost().price_per_hour == pytest.approx(resolution.price_per_hour)

        # listed, shown per node, in the cost report, and after the reconnect
        assert main(["clusters"]) == 0
        assert "t3.xlarge × 2 (manager on-demand, workers spot), running" in capsys.readouterr().out
        (info,) = ccdsl.clusters()
        assert info.market == "manager on-demand, workers spot"
        assert main(["nodes", handle]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1].split()[7] == "market"
        assert [(line.split()[0], line.split()[7]) for line in lines[2:]] == [
            ("manager", "on-demand"), ("worker", "spot"), ("worker", "spot")]
        assert main(["cost-report"]) == 0
        (row,) = [line for line in capsys.readouterr().out.splitlines() if line.startswith(handle)]
        assert " mixed " in row
        assert main(["cost-report", "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)["clusters"]
        assert row["market"] == "manager on-demand, workers spot"
        assert {p["role"]: (p["market"], p["zone"], p["on_demand_price_per_node_hour"]) for p in row["prices"]} == {
            "manager": ("on-demand", None, manager.price_per_node_hour), "worker": ("spot", "us-east-1c", ON_DEMAND)}
        assert c.markets == {"manager": "on-demand", "worker": "spot"}
        assert " spot running>" in repr(c)

        # autostop --down stays refused: its workers are spot (the market deployed; [aws] spot is not set)
        assert c.config.aws.spot is False
        with pytest.raises(ConfigError, match="--down is not available for spot clusters"):
            c.autostop("1h", down=True)
    finally:
        assert main(["terminate", handle]) == 0
    assert tagged(ec2, handle) == {}


@pytest.mark.netns
def test_aws_spot_in_the_config_resolves_the_contract_at_spot_prices(config, ec2, hooks, tmp_path, capsys):
    """``[aws] spot = true`` and a contract that says nothing about spot: deploy resolves it at spot prices, so
    what is launched as spot is what was priced as spot (the user catalog holds the spot prices)."""
    assert main(["catalog", "add", str(spot_catalog(tmp_path))]) == 0
    capsys.readouterr()
    (contract,) = ccdsl.parse(PEERS).values()
    expected = ccdsl.resolve(contract, spot=True).choice
    assert (expected.instance_type, expected.market, expected.price_per_node_hour) == ("t3.xlarge", "spot",
                                                                                       SPOT_PRICE)
    runs = run_instances(hooks)
    c = ccdsl.deploy(contract, config=config.replace(aws={"spot": True}))
    try:
        assert [(r["InstanceType"], zone_of(r), r["InstanceMarketOptions"]["MarketType"]) for r in runs] == [
            ("t3.xlarge", "us-east-1c", "spot")]
        (p,) = st.State().prices(c.handle)
        assert (p.market, p.price_per_node_hour, p.source, p.zone, p.on_demand_price_per_node_hour) == (
            "spot", SPOT_PRICE, "test-spot", "us-east-1c", ON_DEMAND)
    finally:
        ccdsl.terminate(c)
    assert tagged(ec2, c.handle) == {}


def test_which_market_the_config_and_the_contract_ask_for(data_dir, tmp_path, capsys):
    """The contract's own spot parameters win over ``[aws] spot``, as every contract parameter does."""
    assert main(["catalog", "add", str(spot_catalog(tmp_path))]) == 0
    capsys.readouterr()
    spot_file = Config.from_dict({"aws": {"spot": True}})

    def markets(text, config):
        (contract,) = ccdsl.parse(text).values()
        plan = spec_of(contract, spot=spot_option(contract, config)).plans[0]
        return [(r.role, r.options["market"], r.spot) for r in plan.requests]

    assert markets(PEERS, spot_file) == [("worker", "spot", True)]
    assert markets(PEERS, Config.from_dict({})) == [("worker", "on-demand", False)]
    assert markets(PEERS[:-1] + ", spot => false)", spot_file) == [("worker", "on-demand", False)]
    assert markets(MANAGED, spot_file) == [("manager", "on-demand", False), ("worker", "spot", True)]


def test_spot_config_with_an_on_demand_resolution_is_refused_before_anything(aws_env, data_dir, tmp_path, hooks):
    runs = run_instances(hooks)
    config = offline(aws_env, spot=True)
    on_demand = resolve(PEERS, spot_catalog(tmp_path))
    assert on_demand.choice.market == "on-demand"
    with pytest.raises(ConfigError, match="priced at on-demand prices") as refused:
        ccdsl.deploy(on_demand, config=config)
    assert "spot=True" in (refused.value.hint or "")
    assert runs == [] and st.State().list_clusters(live_only=False) == []


def test_cli_deploy_spot_puts_every_role_on_spot(aws_env, data_dir, tmp_path, hooks, capsys, monkeypatch):
    """``ccdsl deploy --spot`` (as ``resolve --spot``): seen here by --down being refused before anything is created,
    which it is only for a cluster with a spot role."""
    from conftest import free_port

    closed = f"127.0.0.1:{free_port()}"
    config_file = tmp_path / "ccdsl.toml"
    config_file.write_text(toml_text({"aws": aws_settings(aws_env, address_map={"0": closed, "1": closed}),
                                      "ssh": {"ready_timeout": 2.0, "connect_timeout": 1.0}}))
    monkeypatch.setenv("CCDSL_CONFIG", str(config_file))
    contract = tmp_path / "peers.ccc"
    contract.write_text(PEERS + "\n")
    runs = run_instances(hooks)
    assert main(["deploy", str(contract), "--spot", "--catalog", str(spot_catalog(tmp_path)), "--autostop", "1h",
                 "--down"]) == 2  # a configuration error
    err = capsys.readouterr().err
    assert "deploying t3.xlarge × 2" in err and "; workers spot (cheapest in us-east-1c)" in err
    assert "--down is not available for spot clusters" in err
    assert runs == [] and st.State().list_clusters(live_only=False) == []


# -- zone order, capacity errors, failover ---------------------------------------------------------------------------
@pytest.mark.netns
def test_spot_zones_in_price_order_then_the_other_usable_zones(config, ec2, hooks, tmp_path, caplog):
    """t3.xlarge priced cheapest in us-east-1e (moto's us-east-1 does not offer it there: skipped), then
    us-east-1c, then us-east-1a.  Spot capacity errors in c and a: the next zone is the first usable one that no
    spot price covers (b), where the cluster lands."""
    caplog.set_level("INFO", logger="ccdsl.executor")
    runs = run_instances(hooks)
    busy = {"us-east-1c": "SpotMaxPriceTooLow", "us-east-1a": "InsufficientInstanceCapacity"}
    handlers = [inject(None, code, f"no spot capacity in {zone}", when=lambda r, z=zone: request_zone(r) == z)
                for zone, code in busy.items()]
    hooks.extend(("before-send.ec2.RunInstances", h) for h in handlers)
    resolution = resolve(SPOT_PEERS, spot_catalog(tmp_path, t3=(("us-east-1e", SPOT_PRICE), ("us-east-1c", 0.053),
                                                               ("us-east-1a", 0.0561))))
    assert resolution.choice.spot_zones == ("us-east-1e", "us-east-1c", "us-east-1a")
    c = ccdsl.deploy(resolution, config=config)
    try:
        assert [zone_of(r) for r in runs] == ["us-east-1c", "us-east-1a", "us-east-1b"]
        assert all(r["InstanceMarketOptions"]["MarketType"] == "spot" for r in runs)
        assert [h.failed for h in handlers] == [1, 1]
        assert {n.zone for n in c.nodes()} == {"us-east-1b"}
        (zones,) = [e.detail for e in st.State().journal_of(c.handle) if e.phase == "zones"]
        assert zones["order"] == ["us-east-1c", "us-east-1a", "us-east-1b", "us-east-1d", "us-east-1f"]
        assert zones["skipped"] == ["us-east-1e"]
        assert "priced but not usable here: us-east-1e" in caplog.text
        said = notes(c.handle)
        assert "no capacity in us-east-1c (SpotMaxPriceTooLow); trying the next zone, us-east-1a" in said[0]
        assert "no capacity in us-east-1a (InsufficientInstanceCapacity); trying the next zone, us-east-1b" in said[1]
        assert "the recorded spot price is that of us-east-1e" in said[2]  # honest about the zone it landed in
        (p,) = st.State().prices(c.handle)
        assert (p.market, p.zone, p.price_per_node_hour) == ("spot", "us-east-1e", SPOT_PRICE)
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


@pytest.mark.netns
def test_spot_failover_across_zones_then_to_the_next_alternative(config, ec2, hooks, tmp_path):
    """No spot t3.xlarge in any usable zone: every zone is tried (spot zones first), then the next alternative's
    spot zones; the cost record follows the plan that was created."""
    config = config.replace(aws={"zones": ["us-east-1a", "us-east-1b", "us-east-1c"]})
    runs = run_instances(hooks)
    none = inject(None, "UnfulfillableCapacity", "not enough spare capacity for Spot Instances",
                  when=lambda r: request_type(r) == "t3.xlarge")
    hooks.append(("before-send.ec2.RunInstances", none))
    resolution = resolve(SPOT_PEERS, spot_catalog(tmp_path, t3=(("us-east-1c", SPOT_PRICE), ("us-east-1f", 0.06))))
    assert resolution.alternatives[0].instance_type == "m5.xlarge"
    c = ccdsl.deploy(resolution, config=config)
    try:
        assert [(r["InstanceType"], zone_of(r)) for r in runs] == [
            ("t3.xlarge", "us-east-1c"), ("t3.xlarge", "us-east-1a"), ("t3.xlarge", "us-east-1b"),
            ("m5.xlarge", "us-east-1b")]
        assert none.failed == 3
        assert {(n.instance_type, n.zone) for n in c.nodes()} == {("m5.xlarge", "us-east-1b")}
        assert any("trying the next-cheapest alternative: m5.xlarge" in n for n in notes(c.handle))
        (p,) = st.State().prices(c.handle)
        assert (p.instance_type, p.market, p.price_per_node_hour, p.zone) == ("m5.xlarge", "spot", 0.0702,
                                                                              "us-east-1b")
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


def test_spot_quota_skips_the_zones_and_no_capacity_anywhere_says_spot(aws_env, data_dir, ec2, hooks, tmp_path):
    """MaxSpotInstanceCountExceeded is the account's, for the whole region: one call, then the alternative;
    when that finds no spot capacity in any zone either, the error names every zone tried."""
    config = offline(aws_env, zones=["us-east-1a", "us-east-1b"])
    runs = run_instances(hooks)
    hooks.append(("before-send.ec2.RunInstances", inject(None, "MaxSpotInstanceCountExceeded", "spot quota",
                                                         when=lambda r: request_type(r) == "t3.xlarge")))
    hooks.append(("before-send.ec2.RunInstances", inject(None, "InsufficientInstanceCapacity", "no capacity",
                                                         when=lambda r: request_type(r) == "m5.xlarge")))
    resolution = resolve(SPOT_PEERS, spot_catalog(tmp_path, t3=(("us-east-1b", SPOT_PRICE),),
                                                  m5=(("us-east-1b", 0.0702),)))
    resolution = resolution.with_alternatives(resolution.alternatives[:1])
    with pytest.raises(CapacityError) as failed:
        ccdsl.deploy(resolution, config=config)
    assert [(r["InstanceType"], zone_of(r)) for r in runs] == [
        ("t3.xlarge", "us-east-1b"), ("m5.xlarge", "us-east-1b"), ("m5.xlarge", "us-east-1a")]
    assert "MaxSpotInstanceCountExceeded" in failed.value.message
    assert "m5.xlarge × 2 (spot) could not be created in any zone (us-east-1b:" in failed.value.message
    assert "ask for more in Service Quotas" in (failed.value.hint or "")
    (record,) = st.State().list_clusters(live_only=False)
    assert record.status == "terminated"
    assert tagged(ec2, record.handle) == {}


def test_down_is_refused_before_anything_is_created_for_a_spot_role(aws_env, data_dir, ec2, hooks, tmp_path):
    runs = run_instances(hooks)
    config = offline(aws_env)
    with pytest.raises(ConfigError, match="--down is not available for spot clusters"):
        ccdsl.deploy(resolve(MANAGED, spot_catalog(tmp_path)), config=config, autostop="1h", down=True)
    assert runs == [] and st.State().list_clusters(live_only=False) == []


# -- the records ---------------------------------------------------------------------------------------------------
def test_plan_prices_keep_market_zone_and_the_on_demand_price(data_dir, tmp_path):
    prices = spot_catalog(tmp_path)
    opts = cost.request_price(resolve(SPOT_PEERS, prices).choice)
    spot = cost.plan_prices(Plan("aws", (NodeRequest("", "worker", "t3.xlarge", 2, spot=True,
                                                     options={**opts, "market": "spot"}),)))[0]
    assert (spot.market, spot.price_per_node_hour, spot.on_demand_price_per_node_hour, spot.zone, spot.source) == (
        "spot", SPOT_PRICE, ON_DEMAND, "us-east-1c", "test-spot")
    on_demand_choice = resolve(PEERS, prices).choice
    od = cost.request_price(on_demand_choice)
    (on_demand,) = cost.plan_prices(Plan("aws", (NodeRequest("", "worker", "t3.xlarge", 2,
                                                             options={**od, "market": "on-demand"}),)))
    assert (on_demand.market, on_demand.price_per_node_hour, on_demand.on_demand_price_per_node_hour,
            on_demand.zone) == ("on-demand", on_demand_choice.price_per_node_hour,
                                on_demand_choice.price_per_node_hour, "")
    (bare,) = cost.plan_prices(Plan("local", (NodeRequest("", "worker", "localhost", 1),)))
    assert (bare.market, bare.on_demand_price_per_node_hour) == ("", None)


def test_a_database_from_before_markets_gets_the_columns_and_reads_unknown(data_dir):
    """A state database written by an older ccdsl: its prices table gains the columns, its rows read as unknown
    market (''), and new rows keep theirs."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "state.db"
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE prices (handle TEXT NOT NULL, role TEXT NOT NULL, instance_type TEXT NOT NULL,
            node_count INTEGER NOT NULL, price_per_node_hour REAL, source TEXT NOT NULL DEFAULT '',
            price_date TEXT NOT NULL DEFAULT '', recorded_at REAL NOT NULL, PRIMARY KEY (handle, role));
        INSERT INTO prices VALUES ('OldOldOldOldOld', 'worker', 't3.xlarge', 2, 0.1664, 'karpenter@x', '', 1.0);
    """)
    db.close()
    s = st.State(path)
    (old,) = s.prices("OldOldOldOldOld")
    assert (old.market, old.zone, old.on_demand_price_per_node_hour, old.price_per_node_hour) == ("", "", None,
                                                                                                   0.1664)
    now = time.time()
    s.add_cluster(st.ClusterRecord("NewNewNewNewNew", "c", "aws", "PeerWorkers", st.RUNNING, now, now))
    s.set_prices("NewNewNewNewNew", [st.RolePrice("worker", "t3.xlarge", 2, SPOT_PRICE, "aws-api", "2026-11-25",
                                                  now, "spot", ON_DEMAND, "us-east-1c")])
    (new,) = st.State(path).prices("NewNewNewNewNew")
    assert (new.market, new.zone, new.on_demand_price_per_node_hour) == ("spot", "us-east-1c", ON_DEMAND)


def test_down_keys_off_the_deployed_market_per_role(data_dir):
    now = time.time()
    plain = Config.from_dict({})
    spot_file = Config.from_dict({"aws": {"spot": True}})

    def record(markets):
        return st.ClusterRecord("AAAAAAAAAAAAAAA", "c", "aws", "ManagerWorkers", st.RUNNING, now, now,
                                settings={"markets": markets} if markets is not None else {})

    assert guard.deployed_spot(record({"manager": "on-demand", "worker": "spot"}), plain)
    assert not guard.deployed_spot(record({"manager": "on-demand", "worker": "on-demand"}), spot_file)
    assert guard.deployed_spot(record(None), spot_file) and not guard.deployed_spot(record(None), plain)
