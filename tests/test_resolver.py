"""The resolver's documented rules on hand-made catalogs, plus the shipped catalog end to end."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import oracle
from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES
from ccdsl.contract import Clause, Contract, Span
from ccdsl.errors import CatalogError, UnsatisfiableError
from ccdsl.resolution import JSON_FIELDS
from ccdsl.resolver import resolve, select
from ccdsl.resolver.solve import prove, rank
from ccdsl.resolver.view import view_of

DEFAULTS = {"string": "", "bool": False, "int64": 0, "float64": 0.0}


def frame(*rows: dict) -> pd.DataFrame:
    """A catalog from a few rows; unspecified columns get neutral values."""
    base = {"provider": "aws", "region": "us-east-1", "vcpus": 2, "memory_gib": 4.0, "cpu_architecture": "x86_64",
            "storage_type": "ebs", "network_gbps": 10.0}
    full = [{**{c: DEFAULTS[DTYPES[c]] for c in COLUMN_NAMES}, "max_nodes": float("nan"), **base, **r} for r in rows]
    for r in full:
        r["accelerator_memory_total_gib"] = r["accelerator_count"] * r["accelerator_memory_gib"]
    return pd.DataFrame(full, columns=list(COLUMN_NAMES))


def gpu(name: str, model: str, arch: str, mem: float, price: float, count: int = 1, **kw) -> dict:
    return {"instance_type": name, "accelerator_count": count, "accelerator_type": "GPU",
            "accelerator_manufacturer": "NVIDIA", "accelerator_model": model, "accelerator_architecture": arch,
            "accelerator_memory_gib": mem, "price_per_hour": price, **kw}


def contract(*clauses: Clause, name: str = "c") -> Contract:
    return Contract(name, tuple(clauses))


def C(parameter: str, qualifier: str, *values, role: str | None = None, line: int | None = None) -> Clause:
    span = Span(line, 5, line, 20, "") if line else None
    return Clause(parameter, qualifier, tuple(values), role, span)


GPUS = frame(
    gpu("g4dn.xlarge", "T4", "Turing", 16.0, 0.526, vcpus=4),
    gpu("g6.xlarge", "L4", "Ada Lovelace", 22.35, 0.8048, vcpus=4),
    gpu("g6e.xlarge", "L40S", "Ada Lovelace", 44.7, 1.861, vcpus=4),
    gpu("p3.2xlarge", "V100", "Volta", 16.0, 3.06, vcpus=8),
    {"instance_type": "c5.large", "vcpus": 2, "price_per_hour": 0.085},
    {"instance_type": "c5.xlarge", "vcpus": 4, "price_per_hour": 0.17},
    {"instance_type": "c5.large", "region": "eu-west-1", "vcpus": 2, "price_per_hour": 0.096},
)


def names(choices) -> list[str]:
    return [c.instance_type for c in choices]


# ------------------------------------------------------------------------------------------------ symbols

def test_a_symbol_covers_everything_below_it() -> None:
    ada = select(contract(C("accelerator_architecture", "just", "AdaLovelace")), GPUS)
    assert sorted(names(ada)) == ["g6.xlarge", "g6e.xlarge"]
    nvidia = select(contract(C("accelerator_manufacturer", "just", "NVIDIA")), GPUS)
    assert len(nvidia) == 4


def test_not_is_the_complement_and_oneof_the_union() -> None:
    not_nvidia = select(contract(C("accelerator_manufacturer", "not", "NVIDIA")), GPUS)
    assert sorted(names(not_nvidia)) == ["c5.large", "c5.xlarge"]  # rows without accelerators match
    either = select(contract(C("accelerator", "oneof", "T4", "V100")), GPUS)
    assert sorted(names(either)) == ["g4dn.xlarge", "p3.2xlarge"]


def test_unknown_values_satisfy_no_bound() -> None:
    df = frame({"instance_type": "a.large", "price_per_hour": 0.1, "network_gbps": np.nan},
               {"instance_type": "b.large", "price_per_hour": 0.2, "network_gbps": 25.0})
    assert names(select(contract(C("network_performance", "atleast", 10.0)), df)) == ["b.large"]
    assert names(select(contract(C("network_performance", "not", 25.0)), df)) == []
    assert names(select(contract(C("network_performance", "unrestricted")), df)) == ["a.large", "b.large"]


# ------------------------------------------------------------------------------------------------ unknown prices

UNPRICED = frame(
    {"instance_type": "big.xlarge", "vcpus": 16, "price_per_hour": np.nan},
    {"instance_type": "wide.xlarge", "vcpus": 16, "price_per_hour": np.nan},
    {"instance_type": "huge.xlarge", "vcpus": 32, "price_per_hour": np.nan},
    {"instance_type": "small.large", "vcpus": 2, "price_per_hour": 1.0, "price_source": "karpenter@6fc13b52",
     "price_date": "2026-07-20"},
    {"instance_type": "mid.large", "vcpus": 8, "price_per_hour": 5.0, "price_source": "libcloud-3.9.1",
     "price_date": "2025-03-02"},
)


def test_unpriced_rows_rank_after_every_priced_row() -> None:
    """Priced rows compete on price; unpriced ones follow, by the tie rules (more vCPUs, then names)."""
    assert names(select(contract(), UNPRICED)) == ["small.large", "mid.large", "huge.xlarge", "big.xlarge",
                                                   "wide.xlarge"]
    r = resolve(contract(), UNPRICED)
    assert r.instance_type == "small.large" and r.price_per_hour == 1.0


def test_an_unpriced_row_is_chosen_only_when_no_priced_row_fits() -> None:
    r = resolve(contract(C("node_vcpus_count", "atleast", 16), C("node_count", "just", 2)), UNPRICED)
    assert (r.instance_type, r.node_count, r.price_per_hour) == ("huge.xlarge", 2, None)
    assert r.choice.price_per_node_hour is None and not r.choice.price_known
    d = r.to_dict()
    assert d["price_per_hour"] is None and d["price_per_node_hour"] is None and d["price_source"] is None
    assert json.loads(r.to_json())["price_per_hour"] is None
    text = "\n".join(r.explanation)
    assert "price unknown in the shipped catalog" in text and "ccdsl catalog refresh" in text
    assert "Z3 finds no priced row that satisfies it" in text
    assert [a.instance_type for a in r.alternatives] == ["big.xlarge", "wide.xlarge"]


def test_an_unknown_price_never_meets_a_price_bound() -> None:
    big = C("node_vcpus_count", "atleast", 16)
    for bound in (C("node_price", "atmost", 1000.0), C("cluster_price_per_hour", "atmost", 1000.0),
                  C("node_price", "unrestricted")):
        if bound.qualifier == "unrestricted":
            assert resolve(contract(big, bound), UNPRICED).instance_type == "huge.xlarge"
            continue
        with pytest.raises(UnsatisfiableError) as info:
            resolve(contract(big, bound), UNPRICED)
        assert {c.parameter for c in info.value.conflict} == {"node_vcpus_count", bound.parameter}
        assert oracle.optimum(UNPRICED, contract(big, bound)) is None
    # a priced row under the bound still wins
    assert resolve(contract(C("node_price", "atmost", 2.0)), UNPRICED).instance_type == "small.large"


def test_a_manager_without_a_known_price_makes_the_cluster_price_unknown() -> None:
    df = frame({"instance_type": "m.large", "vcpus": 2, "price_per_hour": np.nan},
               {"instance_type": "m.xlarge", "vcpus": 4, "price_per_hour": 0.5},
               {"instance_type": "w.large", "vcpus": 8, "price_per_hour": 1.0})
    def mw(*extra):
        return contract(C("cluster_type", "just", "ManagerWorkers"),
                                     C("node_vcpus_count", "atleast", 8, role="worker"), *extra)
    r = resolve(mw(), df)
    assert (r.manager.instance_type, r.price_per_hour) == ("m.xlarge", 1.5)  # the priced manager, though dearer
    r = resolve(mw(C("node_vcpus_count", "atmost", 2, role="manager")), df)
    assert (r.manager.instance_type, r.manager.price_per_hour, r.price_per_hour) == ("m.large", None, None)
    assert r.choice.price_per_hour == 1.0 and r.choice.cluster_price_per_hour is None
    with pytest.raises(UnsatisfiableError):
        resolve(mw(C("node_vcpus_count", "atmost", 2, role="manager"), C("cluster_price_per_hour", "atmost", 99.0)),
                df)


def test_answers_name_their_price_source_and_date() -> None:
    r = resolve(contract(C("node_vcpus_count", "atleast", 2)), UNPRICED, top=3)
    d = r.to_dict()
    assert (d["price_source"], d["price_date"]) == ("karpenter@6fc13b52", "2026-07-20")
    alt = d["alternatives"][0]
    assert (alt["instance_type"], alt["price_source"], alt["price_date"]) == ("mid.large", "libcloud-3.9.1",
                                                                                  "2025-03-02")
    assert any("(karpenter@6fc13b52, 2026-07-20)" in line for line in r.explanation)
    assert not any("days old" in line for line in r.explanation)
    old = resolve(contract(C("node_vcpus_count", "atleast", 8)), UNPRICED)
    assert old.instance_type == "mid.large"
    assert any(line.startswith("warning: the price of mid.large in us-east-1 is") and "days old" in line
               for line in old.explanation)


def test_price_age_warning_starts_after_180_days() -> None:
    import datetime as dt

    from ccdsl.resolver.explain import price_age_days

    assert price_age_days("2026-07-20", dt.date(2027, 1, 16)) == 180
    assert price_age_days("2026-07-20", dt.date(2027, 1, 17)) == 181
    assert price_age_days("", dt.date(2027, 1, 17)) is None


# ------------------------------------------------------------------------------------------------ GovCloud

GOV = frame({"instance_type": "m5.large", "price_per_hour": 0.096},
            {"instance_type": "m5.large", "region": "us-gov-west-1", "price_per_hour": 0.05},
            {"instance_type": "m5.large", "region": "eu-west-1", "price_per_hour": 0.107})


def test_govcloud_competes_only_when_named(monkeypatch) -> None:
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    def where(*cl, **kw):
        return [c.region for c in select(contract(*cl), GOV, **kw)]
    assert where(any_region=True) == ["us-east-1", "eu-west-1"]  # cheaper, but another account
    assert where() == ["us-east-1"]
    assert where(region="us-gov-west-1") == ["us-gov-west-1"]
    monkeypatch.setenv("CCDSL_REGION", "us-gov-west-1")
    assert where() == ["us-gov-west-1"]
    assert where(any_region=True) == ["us-east-1", "eu-west-1"]
    assert where(C("cluster_locale", "oneof", "us-gov-west-1", "eu-west-1")) == ["us-gov-west-1", "eu-west-1"]
    assert where(C("cluster_locale", "not", "eu-west-1")) == ["us-east-1"]
    assert where(C("cluster_locale", "unrestricted")) == ["us-east-1", "eu-west-1"]
    for kw in ({"any_region": True}, {"region": "us-gov-west-1"}, {}):
        for cl in ((), (C("cluster_locale", "oneof", "us-gov-west-1", "eu-west-1"),)):
            want = sorted(a.worker["region"] for a in oracle.solutions(GOV, contract(*cl),
                                                                       region=kw.get("region", "us-gov-west-1"),
                                                                       any_region=kw.get("any_region", False)))
            got = sorted(c.region for c in select(contract(*cl), GOV, region=kw.get("region", "us-gov-west-1"),
                                                  any_region=kw.get("any_region", False)))
            assert got == want, (kw, cl)


# ------------------------------------------------------------------------------------------------ scope

def test_default_region_restricts_aws_rows_only(monkeypatch) -> None:
    df = frame({"instance_type": "c5.large", "price_per_hour": 0.085},
               {"instance_type": "c5.large", "region": "eu-west-1", "price_per_hour": 0.05},
               {"provider": "ssh", "region": "onprem", "instance_type": "node1", "price_per_hour": 0.01})
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    assert [(c.provider, c.region) for c in select(contract(), df)] == [("ssh", "onprem"), ("aws", "us-east-1")]
    monkeypatch.setenv("CCDSL_REGION", "eu-west-1")
    assert [c.region for c in select(contract(C("node_provider", "just", "AmazonEC2")), df)] == ["eu-west-1"]
    assert [c.region for c in select(contract(C("node_provider", "just", "AmazonEC2")), df, region="us-east-1")] \
        == ["us-east-1"]
    everywhere = select(contract(C("node_provider", "just", "AmazonEC2")), df, any_region=True)
    assert [c.region for c in everywhere] == ["eu-west-1", "us-east-1"]


def test_cluster_locale_replaces_the_default_region() -> None:
    r = resolve(contract(C("cluster_locale", "just", "eu-west-1")), GPUS)
    assert (r.region, r.instance_type) == ("eu-west-1", "c5.large")


def test_an_empty_region_says_so(monkeypatch) -> None:
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    with pytest.raises(UnsatisfiableError, match="no instance types in region us-east-1"):  # the default region
        resolve(contract(), GPUS[GPUS.region != "us-east-1"])


def test_a_region_asked_for_that_no_row_has_is_a_typo() -> None:
    with pytest.raises(CatalogError, match="unknown region 'eu-west-2' \\(the region asked for\\)") as e:
        resolve(contract(), GPUS, region="eu-west-2")
    assert e.value.hint == "did you mean eu-west-1 or us-east-1?" and e.value.exit_code == 2


# ------------------------------------------------------------------------------------------------ counts

def test_type_and_count_are_chosen_together() -> None:
    df = frame({"instance_type": "small", "vcpus": 4, "price_per_hour": 0.17},
               {"instance_type": "big", "vcpus": 64, "price_per_hour": 2.5},
               {"instance_type": "mid", "vcpus": 16, "price_per_hour": 0.7})
    c = contract(C("node_count", "between", 2, 32), C("cluster_vcpus_count", "atleast", 256))
    r = resolve(c, df)
    # small needs 64 nodes (> 32); mid 16 × 0.7 = 11.2; big 4 × 2.5 = 10.0
    assert (r.instance_type, r.node_count, r.price_per_hour) == ("big", 4, 10.0)
    assert [(a.instance_type, a.node_count) for a in r.alternatives] == [("mid", 16)]
    budget = contract(*c.clauses, C("cluster_price_per_hour", "atmost", 9.99, line=3))
    with pytest.raises(UnsatisfiableError) as e:
        resolve(budget, df)
    assert {x.parameter for x in e.value.conflict} == {"cluster_vcpus_count", "cluster_price_per_hour"}
    assert [x.line for x in e.value.conflict if x.parameter == "cluster_price_per_hour"] == [3]


def test_counts_default_to_one_and_ranges_are_capped() -> None:
    df = frame({"instance_type": "x", "vcpus": 1, "price_per_hour": 0.01})
    with pytest.raises(UnsatisfiableError) as e:
        resolve(contract(C("cluster_vcpus_count", "atleast", 8)), df)
    assert [x.text for x in e.value.conflict] == ["cluster_vcpus_count => @atleast(8)", "node_count => 1 (default)"]
    assert resolve(contract(C("node_count", "atleast", 2), C("cluster_vcpus_count", "atleast", 8)), df).node_count == 8
    unbounded = contract(C("node_count", "unrestricted"), C("cluster_vcpus_count", "atleast", 1024))
    assert resolve(unbounded, df).node_count == 1024
    with pytest.raises(UnsatisfiableError):
        resolve(contract(C("node_count", "unrestricted"), C("cluster_vcpus_count", "atleast", 1025)), df)
    assert resolve(contract(C("node_count", "just", 2000)), df).node_count == 2000


def test_exact_totals_pick_exact_multiples() -> None:
    df = frame({"instance_type": "a", "vcpus": 6, "price_per_hour": 0.1},
               {"instance_type": "b", "vcpus": 4, "price_per_hour": 0.2})
    r = resolve(contract(C("node_count", "between", 1, 20), C("cluster_vcpus_count", "just", 16)), df)
    assert (r.instance_type, r.node_count) == ("b", 4)  # 16 is no multiple of 6


# ------------------------------------------------------------------------------------------------ ties

def test_ties_prefer_fewer_nodes_then_more_vcpus_then_region_then_name() -> None:
    df = frame({"instance_type": "two", "vcpus": 8, "price_per_hour": 0.5},
               {"instance_type": "one", "vcpus": 16, "price_per_hour": 1.0},
               {"instance_type": "one-b", "vcpus": 16, "price_per_hour": 1.0},
               {"instance_type": "one-small", "vcpus": 12, "price_per_hour": 1.0},
               {"instance_type": "aaa", "vcpus": 16, "price_per_hour": 1.0, "region": "eu-west-1"})
    c = contract(C("node_count", "between", 1, 4), C("cluster_vcpus_count", "atleast", 12))
    ranked = select(c, df, any_region=True)
    assert [(x.instance_type, x.region, x.node_count) for x in ranked] == [
        ("aaa", "eu-west-1", 1), ("one", "us-east-1", 1), ("one-b", "us-east-1", 1),
        ("one-small", "us-east-1", 1), ("two", "us-east-1", 2)]
    assert resolve(c, df, any_region=True).instance_type == "aaa"


def test_alternatives_are_distinct_types_and_top_limits_them() -> None:
    c = contract(C("node_count", "just", 2))
    r = resolve(c, GPUS, any_region=True, top=3)
    assert r.instance_type == "c5.large" and r.region == "us-east-1"
    assert names(r.alternatives) == ["c5.xlarge", "g4dn.xlarge", "g6.xlarge"]  # c5.large in eu-west-1 not repeated
    assert resolve(c, GPUS, top=0).alternatives == ()


# ------------------------------------------------------------------------------------------------ manager/workers

def test_manager_and_workers_resolve_on_their_own_and_share_the_budget() -> None:
    c = contract(C("cluster_type", "just", "ManagerWorkers"), C("node_count", "just", 2),
                 C("node_vcpus_count", "atleast", 4, role="manager"),
                 C("accelerator_architecture", "just", "AdaLovelace", role="worker"),
                 C("cluster_price_per_hour", "atmost", 2.0))
    r = resolve(c, GPUS)
    assert (r.manager.instance_type, r.instance_type, r.node_count) == ("c5.xlarge", "g6.xlarge", 2)
    assert r.price_per_hour == pytest.approx(0.17 + 2 * 0.8048)
    d = r.to_dict()
    assert d["price_per_hour"] == pytest.approx(0.17 + 2 * 0.8048) and d["manager"]["instance_type"] == "c5.xlarge"
    tight = replace(c, clauses=c.clauses[:-1] + (C("cluster_price_per_hour", "atmost", 1.7),))
    with pytest.raises(UnsatisfiableError) as e:
        resolve(tight, GPUS)
    assert {(x.parameter, x.role) for x in e.value.conflict} == {
        ("cluster_price_per_hour", None), ("node_vcpus_count", "manager"), ("accelerator_architecture", "worker"),
        ("node_count", None)}


# ------------------------------------------------------------------------------------------------ output, proof

def test_resolution_json_has_the_documented_fields() -> None:
    r = resolve(contract(C("accelerator_architecture", "just", "Turing"), C("node_count", "just", 8)), GPUS)
    d = json.loads(r.to_json())
    assert list(d) == ["contract", *JSON_FIELDS, "efa", "alternatives"]  # efa: issue 23, the fabric decision
    assert (d["instance_type"], d["node_count"], d["price_per_hour"]) == ("g4dn.xlarge", 8, 4.208)
    assert "8 nodes × $0.526/h = $4.208/h" in r.explanation


def test_z3_finds_the_same_optimum_and_rejects_a_worse_ranking() -> None:
    c = contract(C("node_count", "between", 1, 8), C("cluster_accelerator_memory", "atleast", 64.0))
    view = view_of(GPUS)
    ranking = rank(view, c, "us-east-1", False)
    proof = prove(ranking)
    assert proof.cost == pytest.approx(float(ranking.totals[0]))
    assert "(declare-const k Int)" in proof.problem.text
    worse = replace(ranking, rows=ranking.rows[1:], counts=ranking.counts[1:], totals=ranking.totals[1:],
                    managers=ranking.managers[1:])
    with pytest.raises(RuntimeError, match="cheaper"):
        prove(worse)


def test_the_view_is_built_once_per_catalog() -> None:
    assert view_of(GPUS) is view_of(GPUS)


# ------------------------------------------------------------------------------------------------ shipped catalog

@pytest.fixture(scope="module")
def shipped():
    from ccdsl.catalog import load

    return load(user=False)


def test_tutorial_contract_on_the_shipped_catalog_matches_the_oracle(shipped) -> None:
    from ccdsl.language import load

    contracts = load("examples/tutorial.ccc")
    for c in contracts.values():
        r = resolve(c, shipped)
        best = oracle.optimum(shipped, c)
        assert r.price_per_hour == pytest.approx(best.cost, abs=1e-6), c.name
    second = resolve(contracts["my_second_cluster_contract"], shipped)
    assert second.node_count == 8 and second.choice.accelerator_architecture == "Turing"
    assert "g4dn.xlarge" in [second.instance_type, *names(second.alternatives)]


def test_infeasible_example_names_its_clauses_and_near_misses(shipped) -> None:
    from ccdsl.language import load

    c = load("examples/infeasible.ccc")["infeasible"]
    with pytest.raises(UnsatisfiableError) as e:
        resolve(c, shipped)
    assert [(x.parameter, x.line) for x in e.value.conflict] == [("accelerator_architecture", 4),
                                                                  ("accelerator_memory", 5)]
    assert any(m.startswith("g4dn.xlarge (us-east-1): accelerator_memory 16 GiB < 32 GiB")
               for m in e.value.near_misses)


def test_done_when_of_the_prices_issue(tmp_path, capsys, monkeypatch) -> None:
    """Issue 7's end-to-end checks through the CLI on the shipped catalog: p4d.24xlarge at Karpenter's
    $21.957642/h with its source and date; g5.xlarge in eu-west-1 resolves (exit 0) with an unknown price and the
    refresh hint instead of "unsatisfiable"; a GovCloud contract resolves there."""
    from ccdsl.cli import main

    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    f = tmp_path / "prices.ccc"
    f.write_text("a = @cluster(accelerator => A100, accelerator_count => @just(8))\n"
                 "b = @cluster(node_machinetype => \"g5.xlarge\", cluster_locale => eu_west_1)\n"
                 "g = @cluster(node_vcpus_count => @atleast(4), cluster_locale => us_gov_west_1)\n")
    assert main(["resolve", str(f), "--json"]) == 0
    a, b, g = json.loads(capsys.readouterr().out)
    assert (a["instance_type"], a["price_per_hour"], a["price_source"], a["price_date"]) == (
        "p4d.24xlarge", 21.957642, "karpenter@6fc13b52", "2026-07-20")
    assert (b["instance_type"], b["region"], b["price_per_hour"], b["price_per_node_hour"]) == (
        "g5.xlarge", "eu-west-1", None, None)
    assert g["region"] == "us-gov-west-1" and g["price_source"] == "karpenter@6fc13b52"
    assert main(["resolve", str(f), "--contract", "b"]) == 0
    out = capsys.readouterr().out
    assert "g5.xlarge × 1 in aws eu-west-1 — price unknown" in out
    assert "price unknown in the shipped catalog; `ccdsl catalog refresh --provider aws --from price-list" in out
    assert main(["resolve", str(f), "--contract", "a"]) == 0
    assert "p4d.24xlarge × 1 in aws us-east-1 — $21.957642/h" in capsys.readouterr().out


def test_near_misses_and_the_other_regions_hint_with_unpriced_rows() -> None:
    """An unpriced row elsewhere still makes the "resolves in other regions" hint, and near misses list rows whose
    price is unknown after the priced ones."""
    df = frame({"instance_type": "g5.xlarge", "region": "eu-west-1", "vcpus": 4, "price_per_hour": np.nan},
               {"instance_type": "g5.xlarge", "vcpus": 4, "price_per_hour": 1.006},
               {"instance_type": "m5.xlarge", "region": "eu-west-1", "vcpus": 4, "price_per_hour": np.nan},
               {"instance_type": "m5.large", "region": "eu-west-1", "vcpus": 2, "price_per_hour": 0.09})
    with pytest.raises(UnsatisfiableError) as e:
        resolve(contract(C("node_vcpus_count", "atleast", 4), C("node_price", "atmost", 0.5)), df)
    assert "g5.xlarge (us-east-1): node_price $1.006/h > $0.5/h" in e.value.near_misses
    with pytest.raises(UnsatisfiableError) as e:
        resolve(contract(C("node_vcpus_count", "atleast", 4), C("node_price", "atmost", 0.5),
                         C("cluster_locale", "just", "eu-west-1")), df)
    assert e.value.near_misses[0] == "m5.large (eu-west-1): node_vcpus_count 2 < 4"
    assert "m5.xlarge (eu-west-1): node_price unknown (wants ≤ $0.5/h)" in e.value.near_misses
    df2 = frame({"instance_type": "g5.xlarge", "region": "eu-west-1", "vcpus": 4, "price_per_hour": np.nan},
                {"instance_type": "m5.large", "vcpus": 2, "price_per_hour": 0.09})
    with pytest.raises(UnsatisfiableError) as e:
        resolve(contract(C("node_machinetype", "just", "g5.xlarge")), df2, region="us-east-1")
    assert "it resolves in other regions (cheapest: g5.xlarge × 1 in eu-west-1, price unknown)" in e.value.hint


# ------------------------------------------------------------------------------------------------ Pareto classes

@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_pareto_keeps_exactly_the_undominated_rows(d: int) -> None:
    from ccdsl.resolver.compile import pareto

    rng = np.random.default_rng(d)
    for trial in range(30):
        m = int(rng.integers(1, 120))
        better = rng.integers(0, 6, size=(m, d)).astype(float)
        better[rng.random((m, d)) < 0.05] = -np.inf
        group = rng.integers(0, 3, size=m)
        kept = set(pareto(group, better).tolist())
        for j in range(m):
            same = [i for i in range(m) if group[i] == group[j] and i != j]
            strictly = any((better[i] >= better[j]).all() and (better[i] > better[j]).any() for i in same)
            earlier_twin = any((better[i] == better[j]).all() and i < j for i in same)
            if not (strictly or earlier_twin):
                assert j in kept, (trial, j)  # sound: nothing undominated is ever dropped
            elif not np.isinf(better[j]).any():
                assert j not in kept, (trial, j)  # compact: dominated rows go (unknown values may stay)


# ------------------------------------------------------------------------------------------------ hints

def test_hint_when_only_the_default_region_is_at_fault() -> None:
    c = contract(C("node_machinetype", "just", "c5.large"), C("node_count", "just", 2))
    with pytest.raises(UnsatisfiableError) as e:
        resolve(c, GPUS.iloc[[0, 6]])  # c5.large only in eu-west-1
    assert [x.parameter for x in e.value.conflict] == ["node_machinetype"]
    assert "c5.large × 2 in eu-west-1, $0.192/h" in e.value.hint and "hint:" in e.value.render()


def test_hint_when_the_catalog_lacks_a_provider() -> None:
    with pytest.raises(UnsatisfiableError) as e:
        resolve(contract(C("node_provider", "just", "SSH")), GPUS)
    assert "no 'ssh' rows" in e.value.hint


def test_the_z3_model_decodes_to_an_equally_cheap_choice() -> None:
    c = contract(C("cluster_type", "just", "ManagerWorkers"), C("node_count", "between", 1, 8),
                 C("cluster_accelerator_memory", "atleast", 64.0, role="worker"),
                 C("node_vcpus_count", "atleast", 4, role="manager"))
    view = view_of(GPUS)
    ranking = rank(view, c, "us-east-1", False)
    proof = prove(ranking)
    price = view.numbers["price_per_hour"]
    assert proof.node_count * price[proof.worker_row] + price[proof.manager_row] == pytest.approx(
        float(ranking.totals[0]))
    assert view.label("instance_type", proof.manager_row) == "c5.xlarge"


def test_a_dropped_locale_still_names_govcloud_when_a_conflict_is_minimized() -> None:
    """Dropping a clause widens what competes, never narrows it: with the locale dropped (kept as @unrestricted
    with its values), the GovCloud row it named still competes, for the vectorized core and the oracle alike."""
    from ccdsl.resolver.compile import Literal
    from ccdsl.resolver.explain import relaxed

    cheap = C("node_price", "atmost", 0.06)
    c = contract(C("cluster_locale", "oneof", "us-gov-west-1", "eu-west-1"), cheap)
    assert resolve(c, GOV).region == "us-gov-west-1"
    ranking = rank(view_of(GOV), relaxed(c, [Literal("c1", cheap, None)]), "us-east-1", False)
    assert ranking.feasible and view_of(GOV).label("region", int(ranking.rows[0])) == "us-gov-west-1"
    best = oracle.optimum(GOV, oracle.subcontract(c, [cheap], True))
    assert best is not None and best.worker["region"] == "us-gov-west-1"
