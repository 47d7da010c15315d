"""EFA (issue 23 item 1): ``efa => true`` keeps only EFA types, and the answer says what a deploy will attach.

The oracle agreement for ``efa`` clauses in every combination is in ``test_resolver_oracle.py`` (``efa`` is one of
its node clauses); here: the shipped catalog's HPC types, the sentence, the JSON, and the rules of
:func:`ccdsl.fabric.decide` one by one.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ccdsl.catalog import load
from ccdsl.contract import Clause, Contract
from ccdsl.errors import ContractError, UnsatisfiableError
from ccdsl.fabric import Fabric, decide
from ccdsl.language import parse
from ccdsl.resolver import resolve


def _resolve(text: str, **kw):
    (contract,) = parse(text).values()
    return resolve(contract, **kw)


def test_efa_true_keeps_only_efa_rows_in_every_alternative():
    r = _resolve("c = @cluster(node_count => 2, efa => true, node_vcpus_count => @atleast(16))", top=10)
    rows = load(columns=["instance_type", "region", "efa", "efa_interfaces"]).set_index(["instance_type", "region"])
    for choice in (r.choice, *r.alternatives):
        assert rows.loc[(choice.instance_type, choice.region), "efa"], choice.instance_type
        assert choice.efa_interfaces == rows.loc[(choice.instance_type, choice.region), "efa_interfaces"] >= 1
    unasked = _resolve("c = @cluster(node_count => 2, node_vcpus_count => @atleast(16))")
    assert not rows.loc[(unasked.instance_type, unasked.region), "efa"]  # cheaper without: the clause did filter
    assert r.price_per_hour > unasked.price_per_hour


def test_p5_says_every_interface_and_that_deploy_needs_private_nodes():
    r = _resolve("c = @cluster(node_count => 2, efa => true, node_machinetype => \"p5.48xlarge\", "
                 "cluster_locale => us_east_1)")
    assert r.instance_type == "p5.48xlarge" and r.choice.efa_interfaces == 32
    line = next(x for x in r.explanation if x.startswith("EFA"))
    assert line.startswith("EFA on: 32 interfaces (32 network cards: deploy needs [aws] private = true")
    assert r.to_dict()["efa"] == {"on": True, "interfaces": 32, "available": 32, "why": line[len("EFA on: 32 "
                                                                                                   "interfaces ("):-1]}


def test_efa_false_is_no_filter_and_says_off():
    with_false = _resolve("c = @cluster(node_count => 2, efa => false, node_vcpus_count => @atleast(16))")
    without = _resolve("c = @cluster(node_count => 2, node_vcpus_count => @atleast(16))")
    assert (with_false.instance_type, with_false.price_per_hour) == (without.instance_type, without.price_per_hour)
    assert "EFA off: the contract says efa => false" in with_false.explanation


def test_unasked_efa_type_with_two_nodes_gets_one_public_interface_of_many():
    r = _resolve("c = @cluster(node_count => 2, node_machinetype => \"p5.48xlarge\", cluster_locale => us_east_1)")
    line = next(x for x in r.explanation if x.startswith("EFA"))
    assert line.startswith("EFA on: 1 of 32 interfaces ([aws] efa = \"auto\"")


def test_manager_workers_scopes_efa_to_the_workers():
    r = _resolve("c = @cluster(cluster_type => ManagerWorkers, node_count => 2, worker.efa => true, "
                 "manager.node_vcpus_count => @atleast(2))")
    rows = load(columns=["instance_type", "region", "efa"]).set_index(["instance_type", "region"])
    assert rows.loc[(r.instance_type, r.region), "efa"]
    assert not rows.loc[(r.manager.instance_type, r.manager.region), "efa"]  # the manager is not filtered
    assert any(x.startswith("workers: EFA on:") for x in r.explanation)
    assert r.to_dict()["efa"]["on"] is True


def test_efa_with_a_type_that_has_none_names_both_clauses():
    with pytest.raises(UnsatisfiableError) as err:
        resolve(Contract("c", (Clause("efa", "just", (True,)), Clause("node_machinetype", "just", ("t3.micro",)))))
    assert {c.parameter for c in err.value.conflict} == {"efa", "node_machinetype"}


def test_efa_takes_true_or_false_only():
    with pytest.raises(ContractError, match="efa"):
        parse("c = @cluster(efa => @atleast(1))")


def test_resolve_json_carries_the_decision(tmp_path):
    f = tmp_path / "c.ccc"
    f.write_text("c = @cluster(node_count => 4, efa => true)\n")
    out = subprocess.run([sys.executable, "-m", "ccdsl", "resolve", "--json", str(f)], capture_output=True,
                         text=True, check=True).stdout
    d = json.loads(out)
    entry = d[0] if isinstance(d, list) else d.get("c", d)
    assert entry["efa"]["on"] is True and entry["efa"]["interfaces"] >= 1


@pytest.mark.parametrize(("args", "expected"), [
    (("x", 32, 2, True), Fabric(True, 32, 32, "32 network cards: deploy needs [aws] private = true, since a node "
                                               "with a public address takes a single interface", True)),
    (("x", 32, 2, True, "auto", True), Fabric(True, 32, 32, "")),
    (("x", 32, 2, None, "on", True), Fabric(True, 32, 32, "")),
    (("x", 1, 2, True), Fabric(True, 1, 1, "")),
    (("x", 1, 2, None), Fabric(True, 1, 1, "")),
    (("x", 1, 1, None), Fabric(False, 0, 1, "one node needs no fabric between nodes")),
    (("x", 1, 1, True), Fabric(True, 1, 1, "")),  # asked for: on even for one node
    (("x", 1, 2, False), Fabric(False, 0, 1, "the contract says efa => false")),
    (("x", 1, 2, None, "off"), Fabric(False, 0, 1, '[aws] efa = "off"')),
    (("x", 1, 2, True, "off"), Fabric(True, 1, 1, "")),  # the contract's word wins over the default setting
    (("x", 0, 8, None), Fabric(False, 0, 0, "x has no EFA")),
])
def test_decide(args, expected):
    assert decide(*args) == expected


def test_lines():
    assert Fabric(True, 32, 32, "").line() == "EFA on: 32 interfaces"
    assert Fabric(True, 1, 1, "").line() == "EFA on: 1 interface"
    assert Fabric(True, 1, 32, "why").line() == "EFA on: 1 of 32 interfaces (why)"
    assert Fabric(False, 0, 0, "x has no EFA").line() == "EFA off: x has no EFA"
    with pytest.raises(ValueError, match="auto"):
        decide("x", 1, 2, None, "sometimes")
