"""Issue 14, the deploy side: each role launched in the market its Choice was priced in, spot roles in their spot
zones first, spot capacity errors failing over zone by zone and then to the next alternative, and the cost record
keeping the spot price the cluster was resolved with.

EC2 is moto's server (boto3 through the aws provider); the nodes are SSH hosts in network namespaces mapped with
``[aws] address_map`` -- nothing connects to an address moto reports.  Capacity errors are injected per zone with
botocore ``before-send`` handlers, as EC2 would answer them.
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
from ccdsl.executor.deploy import Plan
from ccdsl.executor.model import NodeRequest
from ccdsl.resolution import Choice, Resolution
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

MANAGED = ("managed = @cluster(cluster_type => ManagerWorkers, node_count => 2, node_provider => AmazonEC2, "
           "worker.node_vcpus_count => @atleast(4), cluster_locale => \"us-east-1\")")
PEERS = ("peers = @cluster(node_count => 2, node_provider => AmazonEC2, node_vcpus_count => @atleast(4), "
         "cluster_locale => \"us-east-1\")")
SPOT_PRICE, ON_DEMAND = 0.0512, 0.1664  # USD per node-hour of the made-up spot choice below


def choice(instance_type="t3.xlarge", count=2, *, market="spot", zones=("us-east-1c", "us-east-1a"), role="worker",
           price=SPOT_PRICE, on_demand=ON_DEMAND):
    """A resolver Choice as the resolver makes one for a spot contract (spot price, its zone, the on-demand price)."""
    spot = market == "spot"
    return Choice(provider="AmazonEC2", region="us-east-1", instance_type=instance_type, node_count=count,
                  price_per_node_hour=price, price_per_hour=round(price * count, 6), vcpus=4, memory_gib=16.0,
                  role=role, price_source="aws-api" if spot else "karpenter@test", price_date="2026-11-25",
                  market=market, spot_zone=zones[0] if spot and zones else "", spot_zones=tuple(zones) if spot else (),
                  on_demand_price_per_node_hour=on_demand if spot else None)


def worker_spot_resolution() -> Resolution:
    """ManagerWorkers with ``worker.spot => true``: the manager on-demand, the workers spot."""
    contract = ccdsl.parse(MANAGED)["managed"]
    manager = choice("t3.large", 1, market="on-demand", role="manager", price=0.0832)
    return Resolution(contract, choice(), manager=manager)


@pytest.fixture()
def config(aws_env, data_dir, netns_hosts, tmp_path, ec2_keys_on_hosts):
    hosts = netns_hosts.hosts
    return Config.from_dict({
        "aws": aws_settings(aws_env, user=netns_hosts.user, address_map={
            "manager.0": hosts[3].address, "0": hosts[0].address, "1": hosts[1].address}),
        "ssh": {"ready_timeout": 60.0, "connect_timeout": 5.0},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(tmp_path / "remote"),
                "authorized_keys": str(netns_hosts.authorized_keys)},
    })


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
def test_worker_only_spot_manager_on_demand_recorded_listed_and_reconnected(config, ec2, hooks, capsys, caplog):
    caplog.set_level("INFO", logger="ccdsl.executor")
    runs = run_instances(hooks)
    c = ccdsl.deploy(worker_spot_resolution(), config=config)
    try:
        (manager_run, worker_run) = runs
        assert (manager_run["InstanceType"], worker_run["InstanceType"]) == ("t3.large", "t3.xlarge")
        assert "InstanceMarketOptions" not in manager_run  # the manager is on-demand
        assert worker_run["InstanceMarketOptions"]["MarketType"] == "spot"
        spot_tags = [s for s in worker_run["TagSpecifications"] if s["ResourceType"] == "spot-instances-request"]
        assert spot_tags and not any(s["ResourceType"] == "spot-instances-request"
                                     for s in manager_run["TagSpecifications"])
        # both roles in the workers' cheapest spot zone: the manager goes where the workers are priced
        assert [zone_of(r) for r in runs] == ["us-east-1c", "us-east-1c"]
        assert {n.zone for n in c.nodes()} == {"us-east-1c"}
        lifecycles = {i["InstanceType"]: i.get("InstanceLifecycle", "") for r in ec2.describe_instances(
            InstanceIds=[n.instance_id for n in c.nodes()])["Reservations"] for i in r["Instances"]}
        assert lifecycles["t3.large"] != "spot"
        assert "markets: manager t3.large × 1: on-demand" in caplog.text
        assert "worker t3.xlarge × 2: spot at $0.0512/node-hour (cheapest in us-east-1c)" in caplog.text

        # the cost record: the spot price it was resolved with, its market, source, date and zone, and the
        # on-demand price beside it; the manager at its on-demand price
        prices = {p.role: p for p in st.State().prices(c.handle)}
        w, m = prices["worker"], prices["manager"]
        assert (w.market, w.price_per_node_hour, w.source, w.date, w.zone, w.on_demand_price_per_node_hour) == (
            "spot", SPOT_PRICE, "aws-api", "2026-11-25", "us-east-1c", ON_DEMAND)
        assert (m.market, m.price_per_node_hour, m.on_demand_price_per_node_hour) == ("on-demand", 0.0832, 0.0832)
        assert c.cost().price_per_hour == pytest.approx(2 * SPOT_PRICE + 0.0832)

        # listed, shown per node, in the cost report, and after a reconnect from the records
        (info,) = ccdsl.clusters(config=config)
        assert info.market == "manager on-demand, workers spot"
        assert "t3.xlarge × 2 (manager on-demand, workers spot), running" in info.describe()
        assert info.to_dict()["market"] == "manager on-demand, workers spot"
        assert main(["nodes", c.handle]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert "market" in lines[1].split()
        assert [line.split()[0] + " " + line.split()[7] for line in lines[2:]] == [
            "manager on-demand", "worker spot", "worker spot"]
        assert main(["cost-report", "--json"]) == 0
        (row,) = json.loads(capsys.readouterr().out)["clusters"]
        assert row["market"] == "manager on-demand, workers spot"
        assert {p["role"]: (p["market"], p["zone"], p["on_demand_price_per_node_hour"]) for p in row["prices"]} == {
            "manager": ("on-demand", None, 0.0832), "worker": ("spot", "us-east-1c", ON_DEMAND)}
        again = ccdsl.reconnect(c.handle, config=config)
        assert again.markets == {"manager": "on-demand", "worker": "spot"}
        assert " spot running>" in repr(again)

        # autostop --down stays refused: its workers are spot (the market deployed, not [aws] spot)
        assert config.aws.spot is False
        with pytest.raises(ConfigError, match="--down is not available for spot clusters"):
            again.autostop("1h", down=True)
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


# -- zone order, capacity errors, failover ---------------------------------------------------------------------------
@pytest.mark.netns
def test_spot_zones_in_price_order_then_the_other_usable_zones(config, ec2, hooks, caplog):
    """Workers priced cheapest in us-east-1e (moto's us-east-1 does not offer t3.xlarge there: skipped), then
    us-east-1c, then us-east-1a.  Spot capacity errors in c and a: the next zone is the first usable one that no
    spot price covers (b), where the cluster lands."""
    caplog.set_level("INFO", logger="ccdsl.executor")
    runs = run_instances(hooks)
    busy = {"us-east-1c": "SpotMaxPriceTooLow", "us-east-1a": "InsufficientInstanceCapacity"}
    handlers = [inject(None, code, f"no spot capacity in {zone}", when=lambda r, z=zone: request_zone(r) == z)
                for zone, code in busy.items()]
    hooks.extend(("before-send.ec2.RunInstances", h) for h in handlers)
    resolution = Resolution(ccdsl.parse(PEERS)["peers"],
                            choice(zones=("us-east-1e", "us-east-1c", "us-east-1a")))
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
def test_spot_failover_across_zones_then_to_the_next_alternative(config, ec2, hooks):
    """No spot t3.xlarge in any usable zone: every zone is tried (spot zones first), then the next alternative's
    spot zones; the cost record follows the plan that was created."""
    config = config.replace(aws={"zones": ["us-east-1a", "us-east-1b", "us-east-1c"]})
    runs = run_instances(hooks)
    none = inject(None, "UnfulfillableCapacity", "not enough spare capacity for Spot Instances",
                  when=lambda r: request_type(r) == "t3.xlarge")
    hooks.append(("before-send.ec2.RunInstances", none))
    resolution = Resolution(ccdsl.parse(PEERS)["peers"], choice(zones=("us-east-1c", "us-east-1f")),
                            alternatives=(choice("m5.xlarge", zones=("us-east-1b", "us-east-1a"), price=0.07),))
    c = ccdsl.deploy(resolution, config=config)
    try:
        assert [(r["InstanceType"], zone_of(r)) for r in runs] == [
            ("t3.xlarge", "us-east-1c"), ("t3.xlarge", "us-east-1a"), ("t3.xlarge", "us-east-1b"),
            ("m5.xlarge", "us-east-1b")]
        assert none.failed == 3
        assert {(n.instance_type, n.zone) for n in c.nodes()} == {("m5.xlarge", "us-east-1b")}
        assert any("trying the next-cheapest alternative: m5.xlarge" in n for n in notes(c.handle))
        (p,) = st.State().prices(c.handle)
        assert (p.instance_type, p.market, p.price_per_node_hour, p.zone) == ("m5.xlarge", "spot", 0.07, "us-east-1b")
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert tagged(ec2, c.handle) == {}


def test_spot_quota_skips_the_zones_and_no_capacity_anywhere_says_spot(aws_env, data_dir, ec2, hooks):
    """MaxSpotInstanceCountExceeded is the account's, for the whole region: one call, then the alternative;
    when that finds no spot capacity in any zone either, the error names every zone tried."""
    config = Config.from_dict({"aws": aws_settings(aws_env, zones=["us-east-1a", "us-east-1b"])})
    runs = run_instances(hooks)
    hooks.append(("before-send.ec2.RunInstances", inject(None, "MaxSpotInstanceCountExceeded", "spot quota",
                                                         when=lambda r: request_type(r) == "t3.xlarge")))
    hooks.append(("before-send.ec2.RunInstances", inject(None, "InsufficientInstanceCapacity", "no capacity",
                                                         when=lambda r: request_type(r) == "m5.xlarge")))
    resolution = Resolution(ccdsl.parse(PEERS)["peers"], choice(zones=("us-east-1b",)),
                            alternatives=(choice("m5.xlarge", zones=("us-east-1b",)),))
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


def test_down_is_refused_before_anything_is_created_for_a_spot_role(aws_env, data_dir, ec2, hooks):
    runs = run_instances(hooks)
    config = Config.from_dict({"aws": aws_settings(aws_env)})
    with pytest.raises(ConfigError, match="--down is not available for spot clusters"):
        ccdsl.deploy(worker_spot_resolution(), config=config, autostop="1h", down=True)
    assert runs == [] and st.State().list_clusters(live_only=False) == []


# -- the records ---------------------------------------------------------------------------------------------------
def test_plan_prices_keep_market_zone_and_the_on_demand_price():
    opts = cost.request_price(choice())
    spot = cost.plan_prices(Plan("aws", (NodeRequest("", "worker", "t3.xlarge", 2, spot=True,
                                                     options={**opts, "market": "spot"}),)))[0]
    assert (spot.market, spot.price_per_node_hour, spot.on_demand_price_per_node_hour, spot.zone, spot.source) == (
        "spot", SPOT_PRICE, ON_DEMAND, "us-east-1c", "aws-api")
    od = cost.request_price(choice(market="on-demand", price=0.2))
    (on_demand,) = cost.plan_prices(Plan("aws", (NodeRequest("", "worker", "t3.xlarge", 2,
                                                             options={**od, "market": "on-demand"}),)))
    assert (on_demand.market, on_demand.price_per_node_hour, on_demand.on_demand_price_per_node_hour,
            on_demand.zone) == ("on-demand", 0.2, 0.2, "")
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
