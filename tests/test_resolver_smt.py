"""SMT (issue 23 item 5): ``smt => false`` keeps only the types that can run one thread per core, and then a node's
vCPUs are its cores: ``node_vcpus_count`` and ``cluster_vcpus_count`` count what the user gets.

The oracle agreement for ``smt`` clauses beside the vCPU clauses is in ``test_resolver_oracle.py`` (``smt`` is one of
its node clauses, with the brute force's own reading of the rule, ``oracle._seen``); here: the shipped catalog's
types, the sentences and the conflicts.
"""

from __future__ import annotations

import pytest

from ccdsl.catalog import load
from ccdsl.contract import Clause, Contract
from ccdsl.errors import ContractError, UnsatisfiableError
from ccdsl.language import parse
from ccdsl.resolver import resolve

COLUMNS = ["instance_type", "region", "vcpus", "cores", "single_thread", "bare_metal"]


def _resolve(text: str, **kw):
    (contract,) = parse(text).values()
    return resolve(contract, **kw)


@pytest.fixture(scope="module")
def rows():
    return load(columns=COLUMNS).set_index(["instance_type", "region"])


def test_the_catalog_knows_which_types_can_run_one_thread_per_core(rows):
    one = lambda t: bool(rows.loc[(t, "us-east-1"), "single_thread"])  # noqa: E731
    assert one("c6id.32xlarge")  # two by default; ValidThreadsPerCore lists 1
    assert one("hpc7g.16xlarge") and one("c7g.metal")  # Graviton: one already, bare metal or not
    assert not one("c6i.metal")  # bare metal takes no CPU options, and runs two
    metal_two = rows[(rows["bare_metal"]) & (rows["vcpus"] > rows["cores"])]
    assert len(metal_two) > 0 and not metal_two["single_thread"].any()


def test_smt_false_keeps_only_such_rows_and_counts_cores(rows):
    r = _resolve("c = @cluster(node_count => 2, smt => false, node_vcpus_count => @atleast(64))", top=10)
    for choice in (r.choice, *r.alternatives):
        row = rows.loc[(choice.instance_type, choice.region)]
        assert row["single_thread"], choice.instance_type
        assert row["cores"] >= 64 and choice.cores == row["cores"]
    # counted as vCPUs, 64 vCPUs are 32 cores on the types with SMT: without the clause some answer has fewer cores
    unasked = _resolve("c = @cluster(node_count => 2, node_vcpus_count => @atleast(64))", top=10)
    assert any(rows.loc[(a.instance_type, a.region), "cores"] < 64 for a in (unasked.choice, *unasked.alternatives))


def test_smt_false_counts_the_cores_of_a_two_thread_type_and_says_what_the_launch_does():
    r = _resolve('c = @cluster(node_count => 2, smt => false, node_machinetype => "c6id.32xlarge", '
                 "node_vcpus_count => @atleast(64), cluster_vcpus_count => @atleast(128))")
    assert (r.instance_type, r.choice.vcpus, r.choice.cores) == ("c6id.32xlarge", 128, 64)
    assert "node_vcpus_count => @atleast(64) (counting cores: smt => false): 64 ≥ 64" in r.explanation
    assert ("cluster_vcpus_count => @atleast(128) (counting cores: smt => false): 2 × 64 = 128 ≥ 128"
            in r.explanation)
    assert ("SMT off: 64 cores, one thread each (EC2 sells 128 vCPUs; the launch sets CpuOptions ThreadsPerCore = 1)"
            in r.explanation)


def test_more_vcpus_than_cores_is_a_conflict_that_names_smt():
    with pytest.raises(UnsatisfiableError) as err:
        _resolve('c = @cluster(smt => false, node_machinetype => "c6id.32xlarge", node_vcpus_count => @atleast(128))')
    assert [c.parameter for c in err.value.conflict] == ["smt", "node_machinetype", "node_vcpus_count"]
    assert "c6id.32xlarge (us-east-1): node_vcpus_count 64 cores < 128" in err.value.near_misses
    # without smt => false the same type has the vCPUs
    assert _resolve('c = @cluster(node_machinetype => "c6id.32xlarge", node_vcpus_count => @atleast(128))')


def test_a_metal_type_that_runs_two_threads_conflicts_with_smt_false():
    with pytest.raises(UnsatisfiableError) as err:
        resolve(Contract("c", (Clause("smt", "just", (False,)), Clause("node_machinetype", "just", ("c6i.metal",)))))
    assert {c.parameter for c in err.value.conflict} == {"smt", "node_machinetype"}
    assert "c6i.metal (us-east-1): two threads per core, fixed (wants smt => false)" in err.value.near_misses


def test_smt_true_is_no_filter_and_counts_vcpus():
    with_true = _resolve("c = @cluster(node_count => 2, smt => true, node_vcpus_count => @atleast(16))")
    without = _resolve("c = @cluster(node_count => 2, node_vcpus_count => @atleast(16))")
    assert (with_true.instance_type, with_true.price_per_hour) == (without.instance_type, without.price_per_hour)
    assert not any(x.startswith("SMT") for x in with_true.explanation)


def test_manager_workers_scopes_smt_to_the_workers(rows):
    r = _resolve("c = @cluster(cluster_type => ManagerWorkers, node_count => 2, worker.smt => false, "
                 "worker.node_vcpus_count => @atleast(8), manager.node_vcpus_count => @atleast(8), "
                 "manager.processor_manufacturer => Intel)")
    assert rows.loc[(r.instance_type, r.region), "cores"] >= 8
    manager = rows.loc[(r.manager.instance_type, r.manager.region)]
    assert manager["vcpus"] >= 8 > manager["cores"]  # the manager counts vCPUs: 8 of them are 4 Intel cores
    assert any(x.startswith("workers: SMT off:") for x in r.explanation)
    assert not any(x.startswith("manager: SMT") for x in r.explanation)


def test_smt_takes_true_or_false_only():
    with pytest.raises(ContractError, match="smt"):
        parse("c = @cluster(smt => 2)")


def test_a_user_host_runs_one_thread_per_core_only_when_it_has_no_smt():
    """ccdsl cannot reconfigure a host of yours: single_thread defaults to cores = vcpus, and smt => false keeps
    only such hosts (counting their cores)."""
    from ccdsl.catalog.store import frame_from_rows
    from ccdsl.catalog.user import validate_record

    rows = [validate_record({"provider": "ssh", "region": "lab", "instance_type": name, "vcpus": vcpus,
                             "cores": cores, "memory_gib": 64}, "<test>", lambda _column: None)
            for name, vcpus, cores in (("smt-host", 32, 16), ("plain-host", 16, 16))]
    assert [r["single_thread"] for r in rows] == [False, True]
    df = frame_from_rows(rows)
    ssh = Clause("node_provider", "just", ("SSH",))  # on-premise rows compete when named
    smt_off = Clause("smt", "just", (False,))
    assert resolve(Contract("c", (ssh, smt_off, Clause("node_vcpus_count", "atleast", (16,)))), df).instance_type \
        == "plain-host"
    with pytest.raises(UnsatisfiableError):
        resolve(Contract("c", (ssh, smt_off, Clause("node_vcpus_count", "atleast", (32,)))), df)
    assert resolve(Contract("c", (ssh, Clause("node_vcpus_count", "atleast", (32,)))), df).instance_type == "smt-host"
