"""Issue 20, item 1: burstable types compete only when the contract asks for them, and the answer says which CPU
credit mode they run in."""

from __future__ import annotations

import json

import pytest

import oracle
from ccdsl import burstable
from ccdsl.errors import UnsatisfiableError
from ccdsl.resolver import resolve, select
from ccdsl.resolver.view import view_of
from test_resolver import C, contract, frame

T = frame(
    {"instance_type": "t3.nano", "vcpus": 2, "price_per_hour": 0.0052, "burstable": True},
    {"instance_type": "t3.xlarge", "vcpus": 4, "price_per_hour": 0.1664, "burstable": True},
    {"instance_type": "t1.micro", "vcpus": 1, "price_per_hour": 0.02},  # the catalog may not say so: AWS does
    {"instance_type": "c6g.large", "vcpus": 2, "memory_gib": 8.0, "price_per_hour": 0.068},
)


def types(c) -> list[str]:
    return [x.instance_type for x in select(c, T)]


def test_burstable_types_compete_only_when_asked_for() -> None:
    two = C("node_vcpus_count", "just", 2)
    assert types(contract(two)) == ["c6g.large"]
    assert types(contract(two, C("burstable", "just", True))) == ["t3.nano", "c6g.large"]
    assert types(contract(C("node_vcpus_count", "atmost", 4), C("burstable", "just", True))) == [
        "t3.nano", "t1.micro", "c6g.large", "t3.xlarge"]
    # naming a type lets it compete; naming several (a family written out) too
    assert types(contract(C("node_machinetype", "just", "t3.xlarge"))) == ["t3.xlarge"]
    assert types(contract(C("node_machinetype", "oneof", "t3.nano", "t3.xlarge", "c6g.large"))) == [
        "t3.nano", "c6g.large", "t3.xlarge"]
    assert types(contract(C("node_machinetype", "not", "c6g.large"))) == []


def test_t1_micro_is_burstable_even_when_the_catalog_says_otherwise() -> None:
    view = view_of(T)
    flags = {view.label("instance_type", i): view.number("burstable", i) for i in range(view.size)}
    assert flags == {"t3.nano": 1.0, "t3.xlarge": 1.0, "t1.micro": 1.0, "c6g.large": 0.0}


def test_burstable_false_refuses_even_a_named_type() -> None:
    c = contract(C("node_machinetype", "just", "t3.xlarge", line=1), C("burstable", "just", False, line=2))
    with pytest.raises(UnsatisfiableError) as e:
        resolve(c, T)
    assert {x.parameter for x in e.value.conflict} == {"node_machinetype", "burstable"}


@pytest.mark.parametrize("z3", [True, False])
def test_a_conflict_minimized_around_burstable_true_keeps_the_burstable_rows(z3: bool) -> None:
    """Dropping ``burstable => true`` while the core is shrunk must not take the T rows away (it would make a
    satisfiable subset look unsatisfiable and put the burstable clause in the conflict).  Without Z3 (over its
    class limit) the vectorized path shrinks the core by re-ranking relaxed contracts."""
    from unittest import mock

    from ccdsl.resolver import solve

    c = contract(C("burstable", "just", True, line=1), C("node_vcpus_count", "just", 2, line=2),
                 C("node_price", "atmost", 0.01, line=3), C("node_memory_size", "atleast", 8, line=4))
    with mock.patch.object(solve, "Z3_CLASS_LIMIT", solve.Z3_CLASS_LIMIT if z3 else 0), \
            pytest.raises(UnsatisfiableError) as e:
        resolve(c, T)
    assert {x.parameter for x in e.value.conflict} == {"node_price", "node_memory_size"}


@pytest.mark.parametrize("clauses", [
    (C("node_vcpus_count", "just", 2),),
    (C("node_vcpus_count", "just", 2), C("burstable", "just", True)),
    (C("node_machinetype", "oneof", "t3.nano", "c6g.large"), C("node_count", "between", 1, 4)),
    (C("burstable", "just", False),),
])
def test_the_oracle_agrees(clauses) -> None:
    c = contract(*clauses)
    best = oracle.optimum(T, c)
    assert resolve(c, T).price_per_hour == pytest.approx(best.cost)


def test_the_answer_names_the_credit_mode_and_what_it_means() -> None:
    r = resolve(contract(C("node_vcpus_count", "just", 2), C("burstable", "just", True)), T)
    assert r.instance_type == "t3.nano"
    line = next(x for x in r.explanation if "burstable" in x and "credits" in x)
    assert "CPU credits standard" in line and "sustains 5%" in line and "$0.0950 per node-hour" in line
    plain = resolve(contract(C("node_vcpus_count", "just", 2)), T)
    assert not any("credits" in x for x in plain.explanation)


def test_surplus_bound_follows_the_documented_table() -> None:
    # t3.xlarge: 4 vCPUs, 40 % baseline, $0.05 per vCPU-hour -> 4 × 0.6 × 0.05
    assert burstable.surplus_per_hour("t3.xlarge") == pytest.approx(0.12)
    assert burstable.surplus_per_hour("t4g.nano") == pytest.approx(2 * 0.95 * 0.04)
    assert burstable.surplus_per_hour("t1.micro") == 0.0 and burstable.surplus_per_hour("c6g.large") == 0.0
    assert burstable.credits("t1.micro") is None and burstable.is_burstable("t1.micro")


def test_done_when_on_the_shipped_catalog(tmp_path, capsys, monkeypatch) -> None:
    from ccdsl.cli import main

    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    f = tmp_path / "b.ccc"
    f.write_text("b = @cluster(node_count => 8, node_vcpus_count => 2)\n"
                 "t = @cluster(node_count => 8, node_vcpus_count => 2, burstable => true)\n"
                 "r = @cluster(node_count => @between(8, 32), cluster_vcpus_count => @atleast(32))\n")
    assert main(["resolve", str(f), "--json"]) == 0
    b, t, r = json.loads(capsys.readouterr().out)
    assert not burstable.is_burstable(b["instance_type"]) and not burstable.is_burstable(r["instance_type"])
    assert burstable.is_burstable(t["instance_type"])
    assert main(["resolve", str(f), "--contract", "t"]) == 0
    assert "CPU credits standard" in capsys.readouterr().out
    assert main(["resolve", "examples/tutorial.ccc", "--contract", "my_first_cluster_contract", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["instance_type"] == "t3.xlarge"
