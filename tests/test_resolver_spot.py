"""Spot contracts (issue 14): resolved at spot prices, over the rows whose type supports spot, with the on-demand
price beside the spot one; ``worker.spot`` puts only the workers on spot; ``spot_interruption`` bounds the advisor's
interruption bucket.  Against the brute-force oracle on synthetic spot data (hypothesis), on hand-made catalogs,
and on the shipped catalog (no spot prices) overlaid with a hand-written user catalog (examples/spot_prices.toml).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import oracle
from ccdsl.contract import Clause, Contract
from ccdsl.errors import ContractError, UnsatisfiableError
from ccdsl.resolver import resolve, select
from fixtures_spot import spot_files
from synthetic import SpotData, catalog
from test_resolver import contract, frame
from test_resolver_oracle import REGION_SET, contracts

ROOT = Path(__file__).resolve().parents[1]
SPOT_PRICES = ROOT / "examples" / "spot_prices.toml"


@functools.cache
def spot_catalog(seed: int):
    """Synthetic spot data: seed 0 every spot-capable row priced, 1 a tenth unpriced (and SSH hosts, never spot),
    2 a third unpriced (and unpriced on-demand rows), 3 most unpriced; a tenth of the types never support spot."""
    return catalog(rows=60, seed=seed, regions=REGION_SET, extra_providers=seed % 2 == 1,
                   unpriced_fraction={2: 0.15}.get(seed, 0.0),
                   spot=SpotData(unpriced={0: 0.0, 1: 0.1, 2: 0.35, 3: 0.7}[seed]))


SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
INTERRUPTION = st.sampled_from([0.05, 0.1, 0.15, 0.2, 1.0, 0.12]).flatmap(lambda v: st.sampled_from([
    Clause("spot_interruption", "atmost", (v,)), Clause("spot_interruption", "atleast", (v,)),
    Clause("spot_interruption", "just", (v,)), Clause("spot_interruption", "not", (v,))]))


@st.composite
def spot_contracts(draw) -> tuple[Contract, bool | None]:
    """A random contract and how it goes on spot: ``resolve(spot=True)``, ``spot => true``, or (ManagerWorkers)
    ``worker.spot => true`` / ``manager.spot => true``; sometimes with a spot_interruption bound."""
    mw = draw(st.booleans())
    c = draw(contracts(manager_workers=mw))
    how = draw(st.sampled_from(["param", "config", "worker", "manager"] if mw else ["param", "config"]))
    config = {"param": (), "config": (("spot", True),), "worker": (("worker.spot", True),),
              "manager": (("spot", True), ("worker.spot", False))}[how]
    clauses = list(c.clauses)
    if draw(st.booleans()):
        clauses.append(draw(INTERRUPTION))
    event(f"spot via {how}")
    return Contract(c.name, tuple(clauses), config), (True if how == "param" else None)


def _check(c: Contract, spot: bool | None, seed: int, region: str, any_region: bool) -> None:
    df = spot_catalog(seed)
    solutions = oracle.solutions(df, c, region, any_region, spot)
    expected = oracle.best(solutions)
    if expected is None:
        with pytest.raises(UnsatisfiableError) as info:
            resolve(c, df, region=region, any_region=any_region, spot=spot)
        _check_conflict(c, spot, info.value, df, region, any_region)
        assert select(c, df, region=region, any_region=any_region, spot=spot) == []
        event("infeasible")
        return
    event("feasible" + ("" if expected.priced else ", no known (spot) price fits"))
    r = resolve(c, df, region=region, any_region=any_region, top=3, spot=spot)
    if expected.priced:
        assert r.price_per_hour == pytest.approx(expected.cost, abs=1e-6, rel=1e-12)
    else:
        w = expected.worker
        assert r.price_per_hour is None
        assert (r.provider, r.region, r.instance_type, r.node_count) == (w["provider"], w["region"],
                                                                        w["instance_type"], expected.count)
    _check_markets(r, c, spot, df)
    ranked = select(c, df, region=region, any_region=any_region, spot=spot)
    assert ranked[0] == r.choice
    known = [x.cluster_price_per_hour for x in ranked if x.cluster_price_per_hour is not None]
    assert [x.cluster_price_per_hour for x in ranked[:len(known)]] == known  # priced first
    assert all(a <= b or a == pytest.approx(b, rel=1e-12) for a, b in itertools.pairwise(known))
    got = {(x.provider, x.region, x.instance_type): x.node_count for x in ranked}
    want = {(a.worker["provider"], a.worker["region"], a.worker["instance_type"]): a.count for a in solutions}
    assert got == want
    # the whole ranking in the oracle's order: priced, then bounded by the on-demand prices, then neither
    by_row = {(a.worker["provider"], a.worker["region"], a.worker["instance_type"]): a for a in solutions}
    keys = [by_row[(x.provider, x.region, x.instance_type)].rank_key()[:2] for x in ranked]
    assert keys == sorted(keys)
    tiers = {k[0] for k in keys}
    event("ranked tiers " + "+".join(["priced", "bounded", "neither"][t] for t in sorted(tiers)))


def _check_markets(r, c: Contract, spot: bool | None, df) -> None:
    """Every choice says its market; a spot one carries the row's on-demand price, zones and spot provenance."""
    rows = {(row["provider"], row["region"], row["instance_type"]): row for row in oracle._records(df)}
    wrole = "worker" if c.cluster_type == "ManagerWorkers" else None
    choices = [(x, oracle.on_spot(c, wrole, spot)) for x in (r.choice, *r.alternatives)]
    if r.manager is not None:
        choices.append((r.manager, oracle.on_spot(c, "manager", spot)))
    for x, on in choices:
        row = rows[(x.provider, x.region, x.instance_type)]
        assert x.market == ("spot" if on else "on-demand")
        if not on:
            continue
        assert row["spot"]  # a type without spot never competes for a spot role
        od = row["price_per_hour"]
        assert x.on_demand_price_per_node_hour == (None if math.isnan(od) else od)
        if x.price_per_node_hour is not None:
            assert x.price_per_node_hour == row["spot_price_per_hour"]
            assert (x.price_source, x.price_date) == (row["spot_price_source"], row["spot_price_date"])
            assert x.spot_zone == row["spot_zone"] and x.spot_zones[0] == x.spot_zone
        else:
            assert (x.price_source, x.spot_zones) == ("", ())


def _check_conflict(c: Contract, spot: bool | None, err: UnsatisfiableError, df, region: str,
                    any_region: bool) -> None:
    if not err.conflict:  # the scope itself is empty (no row in the default region), or the roles share no place
        assert "no instance types" in err.message or "no provider and region in common" in err.message, err.message
        if "in common" in err.message:  # infeasible with every clause dropped
            assert oracle.optimum(df, oracle.subcontract(c, [], False), region, any_region, spot) is None
        return
    default = any(x.text.endswith("(default)") for x in err.conflict)
    core = oracle.core_clauses(c, err.conflict)
    assert oracle.optimum(df, oracle.subcontract(c, core, default), region, any_region, spot) is None
    for i in range(len(core)):
        rest = core[:i] + core[i + 1:]
        assert oracle.optimum(df, oracle.subcontract(c, rest, default), region, any_region, spot) is not None, \
            f"core is not minimal: {core[i].text} is redundant"


@SETTINGS
@given(spot_contracts(), st.integers(0, 3), st.sampled_from(REGION_SET), st.booleans())
def test_random_spot_contracts_agree_with_oracle(cs, seed: int, region: str, any_region: bool) -> None:
    c, spot = cs
    _check(c, spot, seed, region, any_region)


@settings(SETTINGS, max_examples=200)
@given(spot_contracts(), st.sampled_from([2, 3]), st.data())
def test_spot_contracts_that_meet_rows_without_spot_prices_agree_with_oracle(cs, seed: int, data) -> None:
    """Pinning a few types makes "no row with a known spot price fits" common: then the tie rules choose."""
    c, spot = cs
    types = sorted(set(spot_catalog(seed)["instance_type"]))
    pinned = Clause("node_machinetype", "oneof", tuple(data.draw(st.lists(st.sampled_from(types), min_size=1,
                                                                           max_size=3, unique=True))))
    clauses = [cl for cl in c.clauses if cl.parameter != "node_machinetype"]
    _check(dataclasses.replace(c, clauses=(*clauses, pinned)), spot, seed, "us-east-1", False)


@settings(SETTINGS, max_examples=150)
@given(spot_contracts(), st.integers(0, 3))
def test_without_z3_spot_contracts_agree_with_oracle(cs, seed: int) -> None:
    from unittest import mock

    from ccdsl.resolver import solve

    c, spot = cs
    with mock.patch.object(solve, "Z3_CLASS_LIMIT", 0):
        _check(c, spot, seed, "us-east-1", True)


# ----------------------------------------------------------------------------------- hand-made catalogs

def row(name: str, od: float, spot: float, *, supports: bool = True, **kw) -> dict:
    return {"instance_type": name, "price_per_hour": od, "price_source": "karpenter@test", "price_date": "2026-07-20",
            "spot": supports, "spot_price_per_hour": spot, "spot_zone": "us-east-1b" if spot == spot else "",
            "spot_zones": f"us-east-1b={spot} us-east-1a={spot + 0.001:.4f}" if spot == spot else "",
            "spot_price_source": "aws-api" if spot == spot else "", "spot_price_date": _days_ago(1),
            "spot_interruption": 0.05, **kw}


def _days_ago(days: int) -> str:
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).isoformat(timespec="seconds")


NAN = float("nan")


def test_a_type_without_spot_never_competes_for_a_spot_role() -> None:
    df = frame(row("nospot.large", 0.05, 0.001, supports=False), row("a.large", 0.2, 0.06),
               row("b.large", 0.1, 0.07))
    r = resolve(contract(name="c"), df, spot=True)
    assert (r.instance_type, r.choice.market, r.price_per_hour) == ("a.large", "spot", 0.06)
    assert r.choice.on_demand_price_per_node_hour == 0.2 and r.choice.saving == pytest.approx(0.7)
    assert r.choice.spot_zones == ("us-east-1b", "us-east-1a")
    assert "nospot.large" not in {a.instance_type for a in r.alternatives}
    assert resolve(contract(name="c"), df).instance_type == "nospot.large"  # on-demand: unchanged


def test_a_pinned_type_without_spot_support_is_named_in_the_hint() -> None:
    df = frame(row("nospot.large", 0.05, NAN, supports=False), row("a.large", 0.2, 0.06))
    pinned = contract(Clause("node_machinetype", "just", ("nospot.large",)))
    with pytest.raises(UnsatisfiableError) as info:
        resolve(pinned, df, spot=True)
    assert [x.parameter for x in info.value.conflict] == ["node_machinetype"]
    assert "no row of nospot.large supports spot" in info.value.hint
    assert resolve(pinned, df).instance_type == "nospot.large"


def test_a_row_without_a_spot_price_ranks_after_priced_ones_and_meets_no_price_bound() -> None:
    df = frame(row("big.xlarge", 0.1, NAN, vcpus=64), row("small.large", 0.5, 0.3))
    r = resolve(contract(), df, spot=True)
    assert r.instance_type == "small.large"
    assert [a.instance_type for a in r.alternatives] == ["big.xlarge"]
    assert r.alternatives[0].price_per_node_hour is None and r.alternatives[0].market == "spot"
    pinned = contract(Clause("node_machinetype", "just", ("big.xlarge",)))
    r = resolve(pinned, df, spot=True)
    assert r.price_per_hour is None and r.choice.on_demand_price_per_node_hour == 0.1
    assert any("no spot price known; ranked by its on-demand price $0.1/h" in line for line in r.explanation)
    with pytest.raises(UnsatisfiableError) as info:
        resolve(contract(Clause("node_machinetype", "just", ("big.xlarge",)),
                         Clause("node_price", "atmost", (1.0,))), df, spot=True)
    assert "no spot price known" in info.value.hint



def test_next_cheapest_without_a_spot_price_names_its_on_demand_bound() -> None:
    df = frame(row("big.xlarge", 0.1, NAN, vcpus=64), row("small.large", 0.5, 0.3))
    r = resolve(contract(Clause("node_count", "just", (3,))), df, spot=True)
    line = next(x for x in r.explanation if x.startswith("next cheapest:"))
    assert line == "next cheapest: big.xlarge × 3 (us-east-1) price unknown (at most $0.3/h, its on-demand price)"


def test_manager_workers_with_only_the_workers_on_spot_price_the_manager_on_demand() -> None:
    df = frame(row("a.large", 0.1, 0.01), row("b.large", 0.05, 0.04))
    mw = Clause("cluster_type", "just", ("ManagerWorkers",))
    budget = Clause("cluster_price_per_hour", "atmost", (0.08,))
    workers_only = Contract("w", (mw, Clause("node_count", "just", (3,)), budget), (("worker.spot", True),))
    r = resolve(workers_only, df)
    assert (r.instance_type, r.choice.market, r.choice.price_per_node_hour) == ("a.large", "spot", 0.01)
    assert (r.manager.instance_type, r.manager.market, r.manager.price_per_hour) == ("b.large", "on-demand", 0.05)
    assert r.price_per_hour == pytest.approx(3 * 0.01 + 0.05)
    # the budget line's sum adds up: the workers' nodes, then the manager
    assert "cluster_price_per_hour => @atmost(0.08): 3 × $0.01/h + manager $0.05/h = $0.08/h ≤ $0.08/h" in r.explanation
    everyone = Contract("e", (mw, Clause("node_count", "just", (3,)), budget), (("spot", True),))
    r = resolve(everyone, df)
    assert (r.manager.instance_type, r.manager.market, r.manager.price_per_hour) == ("a.large", "spot", 0.01)
    manager_only = Contract("m", (mw, Clause("node_count", "just", (3,))), (("spot", True), ("worker.spot", False)))
    r = resolve(manager_only, df)
    assert (r.choice.market, r.choice.instance_type, r.manager.market) == ("on-demand", "b.large", "spot")
    assert resolve(manager_only, df, spot=False).manager.market == "on-demand"
    with pytest.raises(UnsatisfiableError):  # on-demand, the budget does not stretch to 3 workers and a manager
        resolve(workers_only, df, spot=False)
    for c in (workers_only, everyone, manager_only):
        assert resolve(c, df).price_per_hour == pytest.approx(oracle.optimum(df, c).cost)


def test_an_unscoped_interruption_bound_constrains_only_the_spot_role() -> None:
    df = frame(row("calm.large", 0.1, 0.05, spot_interruption=0.05), row("wild.large", 0.09, 0.01,
                                                                         spot_interruption=1.0))
    c = Contract("w", (Clause("cluster_type", "just", ("ManagerWorkers",)),
                       Clause("spot_interruption", "atmost", (0.1,))), (("worker.spot", True),))
    r = resolve(c, df)
    assert (r.instance_type, r.manager.instance_type) == ("calm.large", "wild.large")  # the manager is on-demand
    assert r.price_per_hour == pytest.approx(oracle.optimum(df, c).cost)


def test_an_interruption_bound_on_on_demand_nodes_is_an_error_at_resolve() -> None:
    c = contract(Clause("spot_interruption", "atmost", (0.1,)))
    with pytest.raises(ContractError, match="bounds spot nodes"):
        resolve(c, frame(row("a.large", 0.1, 0.05)))
    assert resolve(c, frame(row("a.large", 0.1, 0.05)), spot=True).instance_type == "a.large"


def test_an_old_spot_price_is_warned_about_and_a_recent_one_is_not() -> None:
    old = resolve(contract(), frame(row("a.large", 0.1, 0.05, spot_price_date=_days_ago(30))), spot=True)
    assert any("spot price of a.large in us-east-1 is 30 days old" in line and "spot prices move" in line
               for line in old.explanation)
    recent = resolve(contract(), frame(row("a.large", 0.1, 0.05, spot_price_date=_days_ago(2))), spot=True)
    assert not any("days old" in line for line in recent.explanation)


# ------------------------------------------------------------------- the shipped catalog (+ a user catalog)

@pytest.fixture()
def overlay(data_dir):
    """The shipped catalog overlaid with the hand-written spot prices of examples/spot_prices.toml."""
    from ccdsl.catalog import load

    return load(paths=[str(SPOT_PRICES)])


def _spot_text(extra: str = "") -> Contract:
    from ccdsl.language import parse

    return parse("c = @cluster(node_count => 4, node_vcpus_count => @atleast(2), node_memory_size => @atleast(8G), "
                 f"spot => true, burstable => true{extra})")["c"]


def test_the_cheapest_spot_type_differs_from_the_cheapest_on_demand_type(overlay) -> None:
    r = resolve(_spot_text(), overlay)
    assert (r.instance_type, r.price_per_hour, r.choice.spot_zone) == ("m6g.large", pytest.approx(4 * 0.0281),
                                                                       "us-east-1b")
    assert r.choice.spot_zones == ("us-east-1b", "us-east-1f")
    assert (r.choice.price_source, r.choice.on_demand_price_per_node_hour) == ("illustrative", 0.077)
    on_demand = resolve(_spot_text(), overlay, spot=False)
    assert (on_demand.instance_type, on_demand.choice.market) == ("t4g.large", "on-demand")
    assert on_demand.to_dict() == resolve(_spot_text(), spot=False).to_dict()  # the overlay keeps on-demand prices


def test_an_interruption_bound_excludes_the_cheapest_spot_type(overlay) -> None:
    assert resolve(_spot_text(", spot_interruption => @atmost(10%)"), overlay).instance_type == "t4g.large"
    assert resolve(_spot_text(", spot_interruption => @atmost(15%)"), overlay).instance_type == "m6g.large"
    assert resolve(_spot_text(", spot_interruption => @atleast(20%)"), overlay).instance_type == "t3.large"
    with pytest.raises(UnsatisfiableError) as info:
        resolve(_spot_text(", spot_interruption => @atmost(4%)"), overlay)
    (conflict,) = info.value.conflict
    assert (conflict.parameter, conflict.line, conflict.column) == ("spot_interruption", 1, 131)
    assert conflict.text == "spot_interruption => @atmost(4%)"
    assert any("spot_interruption 5% > 4%" in m for m in info.value.near_misses)


def test_no_spot_price_known_on_the_shipped_catalog(data_dir, tmp_path, capsys) -> None:
    from ccdsl.cli import main

    r = resolve(_spot_text())
    assert r.price_per_hour is None and r.choice.market == "spot" and r.choice.on_demand_price_per_node_hour
    assert any("no spot price known; ranked by its on-demand price" in x and
               "`ccdsl catalog refresh --spot` brings them" in x for x in r.explanation)
    path = tmp_path / "s.ccc"
    path.write_text("s = @cluster(node_vcpus_count => @atleast(2), spot => true)\n"
                    "t = @cluster(node_price => @atmost(0.25), spot => true)\n")
    assert main(["resolve", str(path), "--contract", "s"]) == 0
    assert "`ccdsl catalog refresh --spot` brings them" in capsys.readouterr().out
    assert main(["resolve", str(path), "--contract", "t"]) == 1
    assert "no spot price known for these rows" in capsys.readouterr().err


def test_resolve_json_has_the_spot_fields_for_the_choice_the_manager_and_each_alternative(data_dir, capsys) -> None:
    from ccdsl.cli import main

    code = main(["resolve", str(ROOT / "examples" / "spot.ccc"), "--json", "--contract", "spot_workers_only",
                 "--catalog", str(SPOT_PRICES), "--top", "2"])
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert {k: d[k] for k in ("instance_type", "market", "spot_zone", "spot_zones", "price_per_node_hour",
                              "price_source", "price_date", "on_demand_price_per_node_hour", "saving_percent")} == {
        "instance_type": "m6g.large", "market": "spot", "spot_zone": "us-east-1b",
        "spot_zones": ["us-east-1b", "us-east-1f"], "price_per_node_hour": 0.0281, "price_source": "illustrative",
        "price_date": "2026-11-20T09:00:00Z", "on_demand_price_per_node_hour": 0.077, "saving_percent": 63.51}
    assert d["price_per_hour"] == pytest.approx(4 * 0.0281 + 0.0042)
    assert (d["manager"]["market"], d["manager"]["price_source"]) == ("on-demand", "karpenter@6fc13b52")
    assert "spot_zone" not in d["manager"]
    assert [(a["instance_type"], a["market"], a["spot_zone"]) for a in d["alternatives"]] == [
        ("t3.large", "spot", "us-east-1c"), ("t4g.large", "spot", "us-east-1d")]
    assert all(a["on_demand_price_per_node_hour"] and a["saving_percent"] > 0 for a in d["alternatives"])


def test_the_jupyter_table_shows_the_market_of_spot_choices_only(overlay) -> None:
    spot = resolve(_spot_text(), overlay)._repr_html_()
    assert "<th>market</th>" in spot and "<td>us-east-1b</td>" in spot and "<td>0.0770</td>" in spot
    assert "market" not in resolve(_spot_text(), overlay, spot=False)._repr_html_()


def test_the_spot_flag_puts_an_on_demand_contract_on_spot(data_dir, tmp_path, capsys) -> None:
    from ccdsl.cli import main

    path = tmp_path / "od.ccc"
    path.write_text("od = @cluster(node_count => 4, node_vcpus_count => @atleast(2), "
                    "node_memory_size => @atleast(8G), burstable => true)\n")
    assert main(["resolve", str(path), "--json", "--catalog", str(SPOT_PRICES)]) == 0
    (plain,) = json.loads(capsys.readouterr().out)
    assert (plain["instance_type"], plain["market"]) == ("t4g.large", "on-demand") and "spot_zone" not in plain
    assert main(["resolve", str(path), "--json", "--catalog", str(SPOT_PRICES), "--spot"]) == 0
    (spot,) = json.loads(capsys.readouterr().out)
    assert (spot["instance_type"], spot["market"], spot["spot_zone"]) == ("m6g.large", "spot", "us-east-1b")
    assert main(["resolve", str(path), "--catalog", str(SPOT_PRICES), "--spot"]) == 0
    text = capsys.readouterr().out
    assert "4 nodes × $0.0281/h (spot in us-east-1b, illustrative, 2026-11-20T09:00:00Z)" in text
    assert "nodes on spot: on-demand $0.077/h per node ($0.308/h for 4), spot saves 63.51%" in text
    assert main(["select", str(path), "--json", "--catalog", str(SPOT_PRICES), "--spot"]) == 0
    (selected,) = json.loads(capsys.readouterr().out)
    assert selected["matches"][0]["instance_type"] == "m6g.large"
    assert main(["select", str(path), "--catalog", str(SPOT_PRICES), "--spot"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:6] == ["instance_type", "provider", "region", "nodes", "market", "zone"]
    assert lines[2].split()[:6] == ["m6g.large", "aws", "us-east-1", "4", "spot", "us-east-1b"]


def test_on_demand_text_output_is_unchanged_by_markets(data_dir, capsys) -> None:
    from ccdsl.cli import main

    assert main(["resolve", str(ROOT / "examples" / "tutorial.ccc")]) == 0
    out = capsys.readouterr().out
    assert "market" not in out and "spot" not in out


def test_resolve_reads_what_the_credential_free_spot_refresh_writes(spot_files, data_dir) -> None:
    """End to end over the default catalog and its cached views: the shipped catalog knows no spot price; after
    ``catalog refresh --from price-list --spot-only`` (the hand-written public feed on 127.0.0.1) the same spot
    contract is priced at the feed's cheapest spot price, and on-demand answers stay as they were."""
    from ccdsl.catalog import load, spot
    from ccdsl.catalog.pricelist import refresh_spot_only

    contract_ = _spot_text()
    on_demand = resolve(contract_, spot=False).to_dict()
    assert resolve(contract_).price_per_hour is None  # no spot price known yet
    refresh_spot_only("us-east-1", spot.read_public(["us-east-1"], require_feed=True))
    after = resolve(contract_)
    merged = load()
    fits = merged[(merged.region == "us-east-1") & (merged.provider == "aws") & merged.spot
                  & merged.spot_price_per_hour.notna() & (merged.vcpus >= 2) & (merged.memory_gib >= 8)]
    assert len(fits) > 0
    cheapest = fits.spot_price_per_hour.min()
    assert after.choice.price_per_node_hour == cheapest and after.price_per_hour == pytest.approx(4 * cheapest)
    assert after.instance_type in set(fits[fits.spot_price_per_hour == cheapest].instance_type)
    assert (after.choice.market, after.choice.price_source) == ("spot", "aws-spot-feed")
    assert resolve(contract_, spot=False).to_dict() == on_demand


# ------------------------------------------------------------------ ranking rows without a spot price

def test_a_spot_contract_on_the_shipped_catalog_takes_the_cheapest_on_demand_spot_type(data_dir, capsys) -> None:
    """The shipped catalog has no spot prices: a spot node costs at most its on-demand price (AWS's default
    maximum price), so the cheapest spot-capable type on-demand is chosen — not the biggest (issue 7's unpriced
    tie rules chose c8i.96xlarge × 4, $72/h on-demand).  The expectation is read from the catalog DataFrame."""
    from ccdsl.catalog.loader import load
    from ccdsl.cli import main

    df = load(user=False)
    assert df["spot_price_per_hour"].isna().all()  # the premise: no spot price is shipped
    fits = df[(df["provider"] == "aws") & (df["region"] == "us-east-1") & df["spot"].fillna(False).astype(bool)
              & (df["vcpus"] >= 2) & (df["memory_gib"] >= 8) & df["price_per_hour"].notna()]
    cheapest = fits["price_per_hour"].min()
    best = fits[fits["price_per_hour"] == cheapest].sort_values(["vcpus", "instance_type"],
                                                                  ascending=[False, True]).iloc[0]
    r = resolve(_spot_text())
    assert (r.instance_type, r.node_count) == (best["instance_type"], 4)
    assert r.price_per_hour is None and r.choice.on_demand_price_per_node_hour == cheapest
    assert [a.on_demand_price_per_node_hour for a in r.alternatives] == sorted(
        a.on_demand_price_per_node_hour for a in r.alternatives)
    path = data_dir.parent / "s.ccc"
    path.write_text("s = @cluster(node_count => 4, node_vcpus_count => @atleast(2), node_memory_size => @atleast(8G),"
                    " spot => true, burstable => true)\n")
    assert main(["resolve", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"s: {best['instance_type']} × 4 in aws us-east-1 — price unknown" in out
    assert (f"no spot price known; ranked by its on-demand price ${cheapest:g}/h, the most a spot node is charged "
            "(AWS's default maximum price); `ccdsl catalog refresh --spot` brings them") in out
    assert main(["resolve", str(path), "--json"]) == 0
    (d,) = json.loads(capsys.readouterr().out)
    assert (d["instance_type"], d["price_per_hour"], d["on_demand_price_per_node_hour"]) == (
        best["instance_type"], None, cheapest)


def test_rows_without_a_spot_price_rank_after_priced_ones_by_their_on_demand_price() -> None:
    """Priced spot rows first (by spot price), then rows with an unknown spot price by their on-demand price, then
    rows with neither price, by the tie rules (more vCPUs first)."""
    df = frame(row("priced.large", 0.9, 0.5, vcpus=2), row("huge.metal", 9.0, NAN, vcpus=96),
               row("mid.xlarge", 0.2, NAN, vcpus=4), row("cheap.large", 0.1, NAN, vcpus=2),
               row("dark.xlarge", NAN, NAN, vcpus=8), row("dark.large", NAN, NAN, vcpus=2))
    r = resolve(contract(), df, spot=True, top=5)
    assert [x.instance_type for x in (r.choice, *r.alternatives)] == [
        "priced.large", "cheap.large", "mid.xlarge", "huge.metal", "dark.xlarge", "dark.large"]
    pinned = contract(Clause("node_machinetype", "oneof", ("huge.metal", "mid.xlarge", "dark.xlarge")))
    assert resolve(pinned, df, spot=True).instance_type == "mid.xlarge"
    # on-demand, the unpriced ordering is unchanged: the tie rules (more vCPUs first)
    r = resolve(contract(Clause("node_machinetype", "oneof", ("dark.xlarge", "dark.large"))), df)
    assert (r.instance_type, r.price_per_hour) == ("dark.xlarge", None)
    assert resolve(contract(), df).instance_type == "cheap.large"


def test_a_manager_workers_spot_cluster_without_spot_prices_is_ranked_by_on_demand_cost() -> None:
    """worker.spot: the manager is priced on-demand; the workers' unknown spot prices are bounded by their on-demand
    prices, so the cluster bound is count × on-demand + manager.  With every role on spot, the workers' price unknown
    makes the cluster's unknown whatever the manager: the manager with the lowest bound is paired (mgr.large, $0.05
    on-demand) rather than the one with a known spot price ($0.3)."""
    df = frame(row("big.xlarge", 1.0, NAN, vcpus=16), row("small.large", 0.1, NAN, vcpus=2),
               row("mgr.large", 0.05, NAN, vcpus=2), row("pricedmgr.large", 0.4, 0.3, vcpus=2))
    mw = Clause("cluster_type", "just", ("ManagerWorkers",))
    workers = Clause("node_machinetype", "oneof", ("big.xlarge", "small.large"), role="worker")
    for config in ((("worker.spot", True),), (("spot", True),)):
        c = Contract("w", (mw, Clause("node_count", "just", (3,)), workers), config)
        r = resolve(c, df)
        assert (r.instance_type, r.manager.instance_type) == ("small.large", "mgr.large")
        assert r.price_per_hour is None if config[0][0] == "spot" else r.manager.price_per_hour == 0.05
        expected = oracle.optimum(df, c)
        assert (expected.worker["instance_type"], expected.manager["instance_type"]) == ("small.large", "mgr.large")


def test_a_partly_refreshed_catalog_lists_the_rows_without_spot_prices_by_on_demand_price(overlay) -> None:
    """After the rows with spot prices (examples/spot_prices.toml over the shipped catalog) come the rows without
    one, cheapest on-demand first — not the biggest machines.  The expectation is read from the DataFrame."""
    r = resolve(_spot_text(), overlay, top=12)
    ranked = [r.choice, *r.alternatives]
    priced = [x for x in ranked if x.price_per_hour is not None]
    assert priced and ranked[:len(priced)] == priced
    rest = ranked[len(priced):]
    assert rest and all(x.price_per_hour is None for x in rest)
    df = overlay
    fits = df[(df["provider"] == "aws") & (df["region"] == "us-east-1") & df["spot"].fillna(False).astype(bool)
              & (df["vcpus"] >= 2) & (df["memory_gib"] >= 8) & df["spot_price_per_hour"].isna()
              & df["price_per_hour"].notna()]
    want = fits.sort_values(["price_per_hour", "vcpus", "instance_type"], ascending=[True, False, True])
    assert [x.instance_type for x in rest] == list(want["instance_type"][:len(rest)])
