"""Costs recorded at deploy: each role's price (with source and date) copied from the resolution, the time spent
in each state, ``clusters`` / ``cost-report`` estimates that never read the catalog again."""

from __future__ import annotations

import json
import time

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.executor import cost
from ccdsl.executor import state as st
from ccdsl.executor.deploy import Plan
from ccdsl.executor.model import NodeRequest
from fixtures_executor import data_dir

pytest.importorskip("mpi4py")

PRICE = 1.25  # USD per node-hour of the made-up type below


def priced_catalog(instance_type: str = "x9.vanished", price: float = PRICE):
    """A one-row catalog: this machine (provider local) sold as ``instance_type`` at ``price`` per hour."""
    import ccdsl.catalog as cat
    from ccdsl.catalog.local import local_record

    full = cat.load()
    row = full[full.provider == "aws"].iloc[[0]].copy()
    for key, value in {**local_record(), "instance_type": instance_type, "price_per_hour": price}.items():
        row[key] = value
    return row


@pytest.fixture()
def priced(data_dir):
    """A 2-node local cluster deployed from a resolution that priced its type at $1.25 per node-hour."""
    resolution = ccdsl.resolve(ccdsl.cluster(node_provider="Local", node_count=2), catalog=priced_catalog())
    assert resolution.choice.price_per_node_hour == PRICE
    c = ccdsl.deploy(resolution)
    yield c
    if c.status != "terminated":
        ccdsl.terminate(c)


def test_billable_seconds_count_only_running_states():
    h = [st.StatusChange(st.DEPLOYING, 0.0), st.StatusChange(st.RUNNING, 10.0), st.StatusChange(st.INTERRUPTED, 70.0),
         st.StatusChange(st.RUNNING, 1000.0), st.StatusChange(st.TERMINATED, 1030.0)]
    assert cost.billable_seconds(h, now=5000.0) == 10 + 60 + 30
    assert cost.billable_seconds(h[:4], now=1100.0) == 10 + 60 + 100  # still running: up to now
    assert cost.seconds_by_status(h, now=5000.0) == {st.DEPLOYING: 10, st.RUNNING: 90, st.INTERRUPTED: 930}


def test_status_changes_are_logged_once_each(data_dir):
    s = st.State()
    now = time.time()
    s.add_cluster(st.ClusterRecord("AAAAAAAAAAAAAAA", "c", "local", "PeerWorkers", st.DEPLOYING, now, now))
    s.update_cluster("AAAAAAAAAAAAAAA", status=st.RUNNING)
    s.update_cluster("AAAAAAAAAAAAAAA", note="not a status change")
    s.update_cluster("AAAAAAAAAAAAAAA", status=st.INTERRUPTED)
    history = s.status_history("AAAAAAAAAAAAAAA")
    assert [h.status for h in history] == [st.DEPLOYING, st.RUNNING, st.INTERRUPTED]
    assert history[0].at == now and history[0].at <= history[1].at <= history[2].at


def test_deploy_records_the_resolutions_price_and_clusters_shows_it(priced):
    (p,) = st.State().prices(priced.handle)
    assert (p.role, p.instance_type, p.node_count, p.price_per_node_hour) == ("worker", "x9.vanished", 2, PRICE)
    assert p.source  # where the price came from (the catalog's source column when it has one)
    (info,) = ccdsl.clusters()
    d = info.to_dict()
    assert d["price_per_hour"] == 2 * PRICE
    assert d["started_at"].endswith("+00:00") and d["autostop"] is None
    assert 0 <= d["cost_so_far"] < 2 * PRICE * (time.time() - info.created_at + 1) / 3600
    assert "$2.5/h" in info.describe() and "so far" in info.describe()


def test_stopped_adds_nothing_and_the_estimate_grows_only_while_running(priced):
    s = st.State()
    ccdsl.interrupt(priced)
    record = s.get_cluster(priced.handle)
    later = cost.estimate(s, record, now=time.time() + 7200)
    now = cost.estimate(s, record)
    assert later.cost_so_far == now.cost_so_far  # two hours stopped cost nothing
    ccdsl.resume(priced)
    record = s.get_cluster(priced.handle)
    hour = cost.estimate(s, record, now=time.time() + 3600)
    assert hour.cost_so_far == pytest.approx(now.cost_so_far + 2 * PRICE, abs=0.01)


def test_cost_report_never_reads_the_catalog(priced, monkeypatch, capsys):
    """A refreshed catalog with another price, or with the type gone, must not change or break the report
    (SkyPilot #7304 crashed on exactly that)."""
    import ccdsl.catalog.loader as loader

    ccdsl.terminate(priced)
    before = cost.estimate(st.State(), st.State().get_cluster(priced.handle))

    def gone(*a, **k):
        raise AssertionError("the cost report read the catalog")

    monkeypatch.setattr(loader, "load", gone)
    assert main(["cost-report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["clusters"]
    assert row["handle"] == priced.handle and row["status"] == "terminated"
    assert row["price_per_hour"] == 2 * PRICE and row["prices"][0]["instance_type"] == "x9.vanished"
    assert row["cost_so_far"] == pytest.approx(before.cost_so_far, abs=1e-6)
    assert set(row["hours_by_status"]) == {"deploying", "running"}  # the time spent in each state
    assert report["total_cost"] == pytest.approx(before.cost_so_far, abs=1e-6)
    assert "storage" in report["not_counted"]
    assert main(["cost-report"]) == 0
    text = capsys.readouterr().out
    assert priced.handle in text and "terminated" in text and "storage" in text


def test_unknown_price_is_shown_as_unknown_not_a_crash(data_dir, capsys):
    c = ccdsl.deploy(Plan("local", (NodeRequest("", "worker", "localhost", 1),)))
    try:
        (info,) = ccdsl.clusters()
        assert info.to_dict()["price_per_hour"] is None and info.to_dict()["cost_so_far"] is None
        assert "price unknown" in info.describe()
        assert main(["cost-report"]) == 0
        assert "unknown price" in capsys.readouterr().out
    finally:
        ccdsl.terminate(c)


def test_failover_records_the_plan_actually_tried_last(data_dir):
    """Prices are replaced per plan attempt: the cluster is priced as what was created."""
    s = st.State()
    now = time.time()
    s.add_cluster(st.ClusterRecord("BBBBBBBBBBBBBBB", "c", "aws", "PeerWorkers", st.DEPLOYING, now, now))
    opts = {"price_per_node_hour": 0.5, "price_source": "karpenter@abc", "price_date": "2026-11-01"}
    cost.record_plan(s, "BBBBBBBBBBBBBBB", Plan("aws", (NodeRequest("", "worker", "a.large", 2, options=opts),)))
    cost.record_plan(s, "BBBBBBBBBBBBBBB", Plan("aws", (NodeRequest("", "manager", "m.large", 1, options=opts),
                                                        NodeRequest("", "worker", "b.large", 3, options=opts))))
    prices = s.prices("BBBBBBBBBBBBBBB")
    assert [(p.role, p.instance_type, p.node_count) for p in prices] == [("manager", "m.large", 1),
                                                                          ("worker", "b.large", 3)]
    assert {(p.source, p.date) for p in prices} == {("karpenter@abc", "2026-11-01")}
    assert cost.price_per_hour(prices) == 2.0
