"""Per-row capacity (``max_nodes``): an SSH host exists once, a host class as often as it has hosts.

A cluster is one catalog row × a node count, so the count is capped at the row's ``max_nodes`` — in the closed
form, in Z3's problem (optimum and unsat cores) and in the Pareto classes.  A ManagerWorkers manager on the
workers' own row takes one of its nodes.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ccdsl.catalog import load
from ccdsl.catalog.loader import clear_cache
from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES
from ccdsl.catalog.user import read_records, read_user_catalog
from ccdsl.contract import Clause, Contract
from ccdsl.errors import CatalogRowError, UnsatisfiableError
from ccdsl.language import parse
from ccdsl.resolver import resolve, select
from ccdsl.resolver import view as views

ROOT = Path(__file__).resolve().parent.parent
LAB = ROOT / "examples" / "lab_hosts.toml"
DEFAULTS = {"string": "", "bool": False, "int64": 0, "float64": 0.0}


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    clear_cache()
    yield
    clear_cache()


def hosts(*rows: dict) -> pd.DataFrame:
    """ssh rows (price 0, region lab) plus one cheap AWS row that must never help an SSH contract."""
    base = {"provider": "ssh", "region": "lab", "vcpus": 8, "cores": 4, "memory_gib": 32.0, "price_per_hour": 0.0,
            "cpu_architecture": "x86_64", "max_nodes": 1.0}
    cloud = {"provider": "aws", "region": "us-east-1", "instance_type": "c5.large", "price_per_hour": 0.085,
             "max_nodes": math.nan}
    full = [{**{c: DEFAULTS[DTYPES[c]] for c in COLUMN_NAMES}, **base, **r} for r in (*rows, cloud)]
    return pd.DataFrame(full, columns=list(COLUMN_NAMES))


def ssh(*clauses: Clause, manager_workers: bool = False) -> Contract:
    head = (Clause("cluster_type", "just", ("ManagerWorkers",)),) if manager_workers else ()
    return Contract("c", (*head, Clause("node_provider", "just", ("SSH",)), *clauses))


def count(n: int) -> Clause:
    return Clause("node_count", "just", (n,))


def conflict_of(c: Contract, df) -> set[tuple[str, str | None]]:
    with pytest.raises(UnsatisfiableError) as info:
        resolve(c, df)
    return {(x.parameter, x.role) for x in info.value.conflict}, info.value


# ---------------------------------------------------------------------------------------------- the catalog

def test_user_rows_default_to_one_host_for_ssh_and_unlimited_otherwise(tmp_path) -> None:
    f = tmp_path / "h.csv"
    f.write_text("provider,region,instance_type,vcpus,memory_gib,price_per_hour,max_nodes\n"
                 "ssh,lab,node01,8,16,0,\n"
                 "ssh,lab,zen3,8,16,0,4\n"
                 "aws,us-east-1,m9.large,2,8,0.1,\n"
                 "local,,laptop,4,8,0,\n")
    node01, zen3, cloud, laptop = read_records(f)
    assert node01["max_nodes"] == 1.0 and zen3["max_nodes"] == 4.0
    assert math.isnan(cloud["max_nodes"]) and math.isnan(laptop["max_nodes"])
    df = read_user_catalog(f)
    assert str(df["max_nodes"].dtype) == "float64"


@pytest.mark.parametrize("value", ["0", "-1", "1.5", "two", "true", "nan", "inf"])
def test_max_nodes_must_be_a_whole_number_of_hosts(tmp_path, value) -> None:
    f = tmp_path / "h.csv"
    f.write_text(f"provider,instance_type,vcpus,memory_gib,max_nodes\nssh,a,4,8,1\nssh,b,4,8,{value}\n")
    with pytest.raises(CatalogRowError) as info:
        read_records(f)
    assert (info.value.path, info.value.line, info.value.column) == (str(f), 3, "max_nodes")
    assert "whole number of hosts" in info.value.message


def test_bad_max_nodes_in_toml_points_at_its_line(tmp_path) -> None:
    text = LAB.read_text().replace("max_nodes = 2", "max_nodes = 0")
    f = tmp_path / "lab.toml"
    f.write_text(text)
    with pytest.raises(CatalogRowError) as info:
        read_records(f)
    assert (info.value.line, info.value.column) == (text.splitlines().index("max_nodes = 0") + 1, "max_nodes")


def test_shipped_and_local_rows_are_unlimited() -> None:
    df = load(user=False)
    assert df["max_nodes"].isna().all()
    from ccdsl.catalog.local import local_frame

    assert local_frame()["max_nodes"].isna().all()


def test_the_lab_example_describes_a_host_class() -> None:
    rows = {r["instance_type"]: r for r in read_records(LAB)}
    assert set(rows) == {"zen3", "gpu01"}
    assert rows["zen3"]["max_nodes"] == 2.0 and rows["gpu01"]["max_nodes"] == 1.0


# ---------------------------------------------------------------------------------------------- the resolver

def test_on_premise_example_resolves_to_the_zen3_class() -> None:
    contracts = parse((ROOT / "examples" / "on_premise.ccc").read_text())
    df = load(user=False, paths=[LAB])
    r = resolve(contracts["on_premise"], df)
    assert (r.choice.provider, r.choice.instance_type, r.choice.node_count) == ("ssh", "zen3", 2)
    assert "(<= n 2)" in r.problem  # the class's capacity is in Z3's problem


def test_more_nodes_than_hosts_is_unsatisfiable_with_the_count_in_the_conflict() -> None:
    df = load(user=False, paths=[LAB])
    core, err = conflict_of(ssh(count(3)), df)
    assert core == {("node_provider", None), ("node_count", None)}
    assert "zen3 (lab): 2 hosts available < 3 nodes" in err.near_misses
    assert "gpu01 (lab): 1 host available < 3 nodes" in err.near_misses
    # two GPU nodes: only gpu01 has GPUs, and it is one host
    core, err = conflict_of(ssh(count(2), Clause("accelerator_count", "atleast", (1,))), df)
    assert core == {("node_provider", None), ("node_count", None), ("accelerator_count", None)}
    assert err.near_misses[0] == "gpu01 (lab): 1 host available < 2 nodes"


def test_hosts_described_one_by_one_cannot_form_a_two_node_cluster() -> None:
    """A cluster is homogeneous (one row × count): two one-host rows are not a two-node cluster."""
    df = hosts({"instance_type": "node01"}, {"instance_type": "node02"})
    core, _ = conflict_of(ssh(count(2)), df)
    assert core == {("node_provider", None), ("node_count", None)}
    assert resolve(ssh(count(1)), df).choice.instance_type == "node01"
    assert resolve(Contract("c", (count(2),)), df).choice.instance_type == "c5.large"  # the cloud has no limit


def test_range_counts_stop_at_the_capacity() -> None:
    df = hosts({"instance_type": "rack", "max_nodes": 3.0})
    assert resolve(ssh(Clause("node_count", "atleast", (2,))), df).choice.node_count == 2
    # 3 × 8 vCPUs is the most the rack gives
    assert resolve(ssh(Clause("cluster_vcpus_count", "atleast", (24,)), Clause("node_count", "unrestricted")),
                   df).choice.node_count == 3
    core, err = conflict_of(ssh(Clause("cluster_vcpus_count", "atleast", (25,)), Clause("node_count", "unrestricted")),
                            df)
    assert core == {("node_provider", None), ("cluster_vcpus_count", None)}
    assert any("no node count in 1..3 fits" in m for m in err.near_misses)


def test_pareto_classes_do_not_merge_rows_of_different_capacity() -> None:
    """Two rows alike in everything but max_nodes: the one-host row must not stand for the class of three."""
    for small, big in (("a", "b"), ("b", "a")):
        df = hosts({"instance_type": small, "max_nodes": 1.0}, {"instance_type": big, "max_nodes": 3.0})
        r = resolve(ssh(count(3)), df)  # prove=True: Z3 must reach the same optimum over its classes
        assert (r.choice.instance_type, r.choice.node_count) == (big, 3)
        assert "Z3 finds the same optimum" in r.explanation[-1]
        assert [c.instance_type for c in select(ssh(count(2)), df)] == [big]


# ---------------------------------------------------------------------------------------------- ManagerWorkers

def test_the_manager_takes_a_node_of_its_row() -> None:
    df = load(user=False, paths=[LAB])
    amd = Clause("processor_manufacturer", "just", ("AMD",), role="manager")
    # the manager is a zen3 host, so one zen3 host is left for the workers
    r = resolve(ssh(count(1), amd, Clause("processor_manufacturer", "just", ("AMD",), role="worker"),
                    manager_workers=True), df)
    assert (r.choice.instance_type, r.choice.node_count, r.manager.instance_type) == ("zen3", 1, "zen3")
    core, err = conflict_of(ssh(count(2), amd, manager_workers=True), df)
    assert core == {("node_provider", None), ("node_count", None), ("processor_manufacturer", "manager")}
    assert "zen3 (lab): 2 hosts available, the manager takes 1, 1 left < 2 worker nodes" in err.near_misses
    # without the manager's constraint the manager goes to gpu01 and both zen3 hosts work
    r = resolve(ssh(count(2), manager_workers=True), df)
    assert (r.choice.instance_type, r.choice.node_count, r.manager.instance_type) == ("zen3", 2, "gpu01")


def test_a_dearer_manager_is_chosen_when_the_cheapest_would_take_a_worker_host() -> None:
    df = hosts({"instance_type": "big", "vcpus": 16, "max_nodes": 2.0},
               {"instance_type": "small", "vcpus": 4, "price_per_hour": 0.5})
    c = ssh(count(2), Clause("node_vcpus_count", "atleast", (16,), role="worker"), manager_workers=True)
    r = resolve(c, df)
    assert (r.choice.instance_type, r.choice.node_count, r.manager.instance_type) == ("big", 2, "small")
    assert r.price_per_hour == pytest.approx(0.5)
    assert "Z3 finds the same optimum" in r.explanation[-1]
    one = resolve(ssh(count(1), Clause("node_vcpus_count", "atleast", (16,), role="worker"), manager_workers=True), df)
    assert (one.manager.instance_type, one.price_per_hour) == ("big", 0.0)  # 1 + 1 of the 2 big hosts


def test_without_z3_the_closed_form_respects_capacity_too(monkeypatch) -> None:
    from ccdsl.resolver import solve

    monkeypatch.setattr(solve, "Z3_CLASS_LIMIT", 0)
    df = load(user=False, paths=[LAB])
    core, _ = conflict_of(ssh(count(3)), df)
    assert core == {("node_provider", None), ("node_count", None)}
    assert resolve(ssh(count(2)), df).choice.instance_type == "zen3"


def test_a_saved_view_without_max_nodes_is_not_reused(tmp_path) -> None:
    df = hosts({"instance_type": "rack", "max_nodes": 3.0})
    view = views.build_view(df)
    assert np.isnan(view.numbers["max_nodes"]).tolist() == [False, True]
    path = tmp_path / "v.npz"
    views.save(view, path)
    assert views.load(path).numbers["max_nodes"][0] == 3.0
    old = {k: v for k, v in np.load(path).items() if k != "n_max_nodes"}  # a view saved before the column
    np.savez(path, **old)
    assert views.load(path) is None
    assert views.FORMAT >= 2  # part of the cache key of the default catalog's saved view


def test_manager_workers_classes_keep_limited_rows_apart() -> None:
    """Two identical 2-host classes, the manager may only be 'a': the workers must be b × 2, which Z3 finds only
    if 'b' is not merged into 'a' (where the manager would leave one host)."""
    df = hosts({"instance_type": "a", "max_nodes": 2.0}, {"instance_type": "b", "max_nodes": 2.0})
    c = ssh(count(2), Clause("node_machinetype", "just", ("a",), role="manager"), manager_workers=True)
    r = resolve(c, df)
    assert (r.choice.instance_type, r.choice.node_count, r.manager.instance_type) == ("b", 2, "a")
    assert "Z3 finds the same optimum" in r.explanation[-1]
