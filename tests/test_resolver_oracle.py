"""The resolver against the brute-force oracle on thousands of random contracts (hypothesis).

Checked per contract: the optimal cluster price agrees; ``select`` finds exactly the oracle's feasible rows with
the same cheapest counts; infeasible contracts are infeasible for both, and the reported conflict is really
unsatisfiable and minimal (dropping any one of its clauses makes it satisfiable) — judged by the oracle.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import oracle
from ccdsl.contract import Clause, Contract
from ccdsl.errors import UnsatisfiableError
from ccdsl.resolver import resolve, select
from synthetic import REGIONS, catalog

REGION_SET = (*REGIONS[:3], "us-gov-west-1")  # GovCloud competes only when named


@functools.cache
def small_catalog(seed: int):
    """Seeds 2 and 3 have AWS rows with unknown prices (15% and 40%)."""
    return catalog(rows=60, seed=seed, regions=REGION_SET, extra_providers=seed % 2 == 1,
                   unpriced_fraction={2: 0.15, 3: 0.4}.get(seed, 0.0), burstable=True)


SETTINGS = settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

bounded_counts = st.one_of(
    st.integers(1, 12).map(lambda n: Clause("node_count", "just", (n,))),
    st.tuples(st.integers(1, 10), st.integers(0, 30))
    .map(lambda t: Clause("node_count", "between", (t[0], t[0] + t[1]))),
    st.integers(1, 40).map(lambda n: Clause("node_count", "atmost", (n,))),
    st.lists(st.integers(1, 64), min_size=1, max_size=4, unique=True).map(
        lambda v: Clause("node_count", "oneof", tuple(sorted(v)))),
)
counts = st.one_of(
    st.none(),
    bounded_counts,
    st.integers(1, 40).map(lambda n: Clause("node_count", "atleast", (n,))),
    st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True).map(
        lambda v: Clause("node_count", "not", tuple(sorted(v)))),
    st.just(Clause("node_count", "unrestricted")),
)


def numeric(parameter: str, values: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        values.map(lambda v: Clause(parameter, "atleast", (v,))),
        values.map(lambda v: Clause(parameter, "atmost", (v,))),
        st.tuples(values, values).map(lambda t: Clause(parameter, "between", (min(t), max(t)))),
        values.map(lambda v: Clause(parameter, "just", (v,))),
        st.lists(values, min_size=1, max_size=3, unique=True).map(lambda v: Clause(parameter, "oneof", tuple(v))),
        st.lists(values, min_size=1, max_size=2, unique=True).map(lambda v: Clause(parameter, "not", tuple(v))),
        st.just(Clause(parameter, "unrestricted")),
    )


def symbol(parameter: str, names: list[str]) -> st.SearchStrategy:
    pick = st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)
    return st.one_of(
        st.sampled_from(names).map(lambda v: Clause(parameter, "just", (v,))),
        pick.map(lambda v: Clause(parameter, "oneof", tuple(v))),
        pick.map(lambda v: Clause(parameter, "not", tuple(v))),
    )


def ordered(parameter: str, domain: str) -> st.SearchStrategy:
    """@atleast / @atmost / @between over the generations of one line of taxonomy.ORDERS (between: in order)."""
    from ccdsl import taxonomy

    lines = [taxonomy.line_names(domain, line) for line in taxonomy.ORDERS[domain]]
    one = st.sampled_from(lines).flatmap(lambda names: st.sampled_from(names))
    pair = st.sampled_from(lines).flatmap(lambda names: st.lists(st.sampled_from(names), min_size=2, max_size=2))

    def between(two: list[str]) -> Clause:
        a, b = sorted(two, key=lambda n: taxonomy.position(domain, n))
        return Clause(parameter, "between", (a, b))

    return st.one_of(one.map(lambda v: Clause(parameter, "atleast", (v,))),
                     one.map(lambda v: Clause(parameter, "atmost", (v,))), pair.map(between))


# every type name of the small catalogs: pinning a type (in a region) is how a contract meets an unpriced row
TYPE_NAMES = sorted(set().union(*(set(small_catalog(seed)["instance_type"]) for seed in range(4))))

NODE = {
    "node_machinetype": symbol("node_machinetype", TYPE_NAMES),
    "node_vcpus_count": numeric("node_vcpus_count", st.sampled_from([1, 2, 4, 8, 16, 32, 64, 96])),
    "node_memory_size": numeric("node_memory_size", st.sampled_from([1.0, 4.0, 8.0, 16.0, 64.0, 256.0, 0.5])),
    "accelerator_count": numeric("accelerator_count", st.sampled_from([0, 1, 2, 4, 8])),
    "accelerator_memory": numeric("accelerator_memory", st.sampled_from([0.0, 16.0, 24.0, 40.0, 80.0])),
    "network_performance": numeric("network_performance", st.sampled_from([5.0, 10.0, 25.0, 50.0])),
    "node_price": numeric("node_price", st.sampled_from([0.05, 0.5, 1.25, 5.0])),
    "accelerator_architecture": st.one_of(symbol("accelerator_architecture",
                                                 ["Turing", "Ampere", "AdaLovelace", "Hopper", "Volta"]),
                                          ordered("accelerator_architecture", "accelerator")),
    "accelerator_compute_capability": numeric("accelerator_compute_capability",
                                              st.sampled_from([7.0, 7.5, 8.0, 8.6, 8.9, 9.0])),
    "accelerator_manufacturer": symbol("accelerator_manufacturer", ["NVIDIA", "AMD"]),
    "accelerator": symbol("accelerator", ["T4", "A10G", "L4", "A100", "NVIDIA", "AdaLovelace"]),
    "processor_microarchitecture": st.one_of(symbol("processor_microarchitecture",
                                                    ["Zen", "Zen4", "IceLake", "Graviton"]),
                                             ordered("processor_microarchitecture", "processor")),
    "processor_manufacturer": symbol("processor_manufacturer", ["Intel", "AMD", "AWS"]),
    "storage_type": symbol("storage_type", ["SSD", "EBSOnly"]),
    "node_provider": symbol("node_provider", ["AmazonEC2", "SSH", "Local"]),
    "burstable": st.booleans().map(lambda v: Clause("burstable", "just", (v,))),
    "efa": st.booleans().map(lambda v: Clause("efa", "just", (v,))),
    "smt": st.booleans().map(lambda v: Clause("smt", "just", (v,))),  # false: vCPU clauses count cores
    "cluster_locale": st.lists(st.sampled_from(list(REGION_SET) + ["onprem"]), min_size=1, max_size=2,
                               unique=True).map(lambda v: Clause("cluster_locale", "oneof" if len(v) > 1 else "just",
                                                                 tuple(v))),
}
TOTAL = {
    "cluster_vcpus_count": numeric("cluster_vcpus_count", st.sampled_from([4, 16, 64, 100, 256, 1000, 3000])),
    "cluster_memory_size": numeric("cluster_memory_size", st.sampled_from([16.0, 100.0, 512.0, 2048.0])),
    "cluster_accelerator_count": numeric("cluster_accelerator_count", st.sampled_from([1, 4, 8, 16, 64])),
    "cluster_accelerator_memory": numeric("cluster_accelerator_memory", st.sampled_from([16.0, 80.0, 640.0])),
    "cluster_price_per_hour": st.one_of(
        st.integers(1, 200000).map(lambda c: Clause("cluster_price_per_hour", "atmost", (c / 1000,))),
        st.integers(1, 20000).map(lambda c: Clause("cluster_price_per_hour", "between", (c / 1000, c / 100)))),
}


@st.composite
def contracts(draw, manager_workers: bool = False) -> Contract:
    clauses = []
    count = draw(bounded_counts if manager_workers else counts)  # bounded: the oracle tries managers × workers × counts
    if count is not None:
        clauses.append(count)
    for name in draw(st.lists(st.sampled_from(sorted(NODE)), max_size=3, unique=True)):
        clauses.append(draw(NODE[name]))
    for name in draw(st.lists(st.sampled_from(sorted(TOTAL)), max_size=2, unique=True)):
        clauses.append(draw(TOTAL[name]))
    if manager_workers:
        clauses.insert(0, Clause("cluster_type", "just", ("ManagerWorkers",)))
        for name in draw(st.lists(st.sampled_from(["node_vcpus_count", "node_memory_size", "processor_manufacturer"]),
                                  max_size=1)):
            clauses.append(dataclasses.replace(draw(NODE[name]), role="manager"))
    return Contract("random", tuple(clauses))


def _check(c: Contract, seed: int, region: str, any_region: bool) -> None:
    df = small_catalog(seed)
    solutions = oracle.solutions(df, c, region, any_region)
    expected = oracle.best(solutions)
    event("infeasible" if expected is None else f"feasible, {min(len(solutions), 5)}+ matches"
          + ("" if expected.priced else ", unpriced answer"))
    if expected is None:
        with pytest.raises(UnsatisfiableError) as info:
            resolve(c, df, region=region, any_region=any_region)
        _check_conflict(c, info.value, df, region, any_region)
        assert select(c, df, region=region, any_region=any_region) == []
        return
    r = resolve(c, df, region=region, any_region=any_region, top=3)
    if expected.priced:
        assert r.price_per_hour == pytest.approx(expected.cost, abs=1e-6, rel=1e-12)
    else:  # no priced cluster fits: the tie rules choose among the unpriced ones
        w = expected.worker
        assert r.price_per_hour is None
        assert (r.provider, r.region, r.instance_type, r.node_count) == (w["provider"], w["region"],
                                                                        w["instance_type"], expected.count)
    ranked = select(c, df, region=region, any_region=any_region)
    assert ranked[0] == r.choice
    prices = [x.cluster_price_per_hour for x in ranked]
    known = [p for p in prices if p is not None]
    assert prices[:len(known)] == known  # priced first
    # cheapest first: the rank uses the vectorized sum, the shown price is summed again; at 1e13 $/h they may differ
    # by an ulp
    assert all(a <= b or a == pytest.approx(b, rel=1e-12) for a, b in itertools.pairwise(known))
    tail = [(x.node_count, -x.vcpus, x.provider, x.region, x.instance_type) for x in ranked[len(known):]]
    assert tail == sorted(tail)  # then the unpriced ones by the tie rules
    distinct = [x for i, x in enumerate(ranked) if x.instance_type not in {y.instance_type for y in ranked[:i]}]
    assert list(r.alternatives) == distinct[1:4]  # the next distinct types, each at its best (type, region)
    got = {(x.provider, x.region, x.instance_type): x.node_count for x in ranked}
    want = {(a.worker["provider"], a.worker["region"], a.worker["instance_type"]): a.count for a in solutions}
    assert got == want


def _check_conflict(c: Contract, err: UnsatisfiableError, df, region: str, any_region: bool) -> None:
    if not err.conflict:  # the scope itself is empty (no row in the default region), or the roles share no place
        assert "no instance types" in err.message or "no provider and region in common" in err.message, err.message
        if "in common" in err.message:  # infeasible with every clause dropped
            assert oracle.optimum(df, oracle.subcontract(c, [], False), region, any_region) is None
        return
    event(f"conflict of {len(err.conflict)} clause(s)")
    default = any(x.text.endswith("(default)") for x in err.conflict)
    core = oracle.core_clauses(c, err.conflict)
    assert oracle.optimum(df, oracle.subcontract(c, core, default), region, any_region) is None, "core is satisfiable"
    for i in range(len(core)):
        rest = core[:i] + core[i + 1:]
        assert oracle.optimum(df, oracle.subcontract(c, rest, default), region, any_region) is not None, \
            f"core is not minimal: {core[i].text} is redundant"
    if default:
        assert oracle.optimum(df, oracle.subcontract(c, core, False), region, any_region) is not None, \
            "core is not minimal: the default node count is redundant"


@SETTINGS
@given(contracts(), st.integers(0, 3), st.sampled_from(REGION_SET), st.booleans())
def test_random_contracts_agree_with_oracle(c: Contract, seed: int, region: str, any_region: bool) -> None:
    _check(c, seed, region, any_region)


@settings(SETTINGS, max_examples=400)
@given(contracts(manager_workers=True), st.integers(0, 3), st.booleans())
def test_random_manager_workers_agree_with_oracle(c: Contract, seed: int, any_region: bool) -> None:
    _check(c, seed, "us-east-1", any_region)


@settings(SETTINGS, max_examples=400)
@given(st.one_of(contracts(), contracts(manager_workers=True)), st.integers(0, 3))
def test_contracts_written_as_text_resolve_the_same_and_conflicts_point_into_the_text(c: Contract, seed: int) -> None:
    """Through the language front end: the printed contract parses back and resolves alike; a conflict's line and
    column point at the clause in the text."""
    from hypothesis import assume

    from ccdsl.language import parse
    from ccdsl.language.printer import format_contract

    assume(all("onprem" not in cl.values for cl in c.clauses))  # not an AWS region name: the checker refuses it
    df = small_catalog(seed)
    text = format_contract(c)
    parsed = parse(text)[c.name]
    try:
        want = resolve(c, df, any_region=True)
    except UnsatisfiableError as e:
        with pytest.raises(UnsatisfiableError) as got:
            resolve(parsed, df, any_region=True)
        assert [(x.parameter, x.role) for x in got.value.conflict] == [(x.parameter, x.role) for x in e.conflict]
        lines = text.splitlines()
        for x in got.value.conflict:
            if x.text.endswith("(default)"):
                continue
            name = f"{x.role}.{x.parameter}" if x.role else x.parameter
            if "(implied by " in x.text:  # a whole accelerator, implied by the clause it points at
                name = x.text.split("(implied by ", 1)[1].split(" =>")[0]
            assert lines[x.line - 1][x.column - 1:].startswith(name), (x, text)
        return
    assert resolve(parsed, df, any_region=True).to_dict() == want.to_dict()


@settings(SETTINGS, max_examples=300)
@given(st.one_of(contracts(), contracts(manager_workers=True)), st.integers(0, 3), st.booleans())
def test_without_z3_the_vectorized_fallback_agrees_with_oracle(c: Contract, seed: int, any_region: bool) -> None:
    """Problems over Z3's class limit are answered and minimized by the vectorized path alone: same guarantees."""
    from unittest import mock

    from ccdsl.resolver import solve

    with mock.patch.object(solve, "Z3_CLASS_LIMIT", 0):
        _check(c, seed, "us-east-1", any_region)


@settings(SETTINGS, max_examples=400)
@given(st.one_of(contracts(), contracts(manager_workers=True)), st.sampled_from([2, 3]),
       st.sampled_from(REGION_SET), st.booleans(), st.data())
def test_contracts_that_meet_unpriced_rows_agree_with_oracle(c: Contract, seed: int, region: str, any_region: bool,
                                                             data) -> None:
    """Seeds 2 and 3 have unpriced AWS rows; pinning a few of the seed's own types makes "only unpriced rows fit"
    common: the answer is then the first unpriced row by the tie rules, with no price, and bounds on the price
    never hold for it."""
    types = sorted(set(small_catalog(seed)["instance_type"]))
    pinned = Clause("node_machinetype", "oneof", tuple(data.draw(st.lists(st.sampled_from(types), min_size=1,
                                                                           max_size=3, unique=True))))
    clauses = [cl for cl in c.clauses if cl.parameter != "node_machinetype"]
    _check(dataclasses.replace(c, clauses=(*clauses, pinned)), seed, region, any_region)


@settings(SETTINGS, max_examples=300)
@given(st.one_of(contracts(), contracts(manager_workers=True)), st.sampled_from([1, 3]), st.booleans())
def test_random_ssh_contracts_respect_host_capacity_like_the_oracle(c: Contract, seed: int, any_region: bool) -> None:
    """Only the catalog's SSH hosts (node1: one host, node2: a class of three, node3: one host like node2) compete,
    so counts, managers on the workers' own row and conflicts all meet ``max_nodes``."""
    clauses = [cl for cl in c.clauses if cl.parameter != "node_provider"]
    c = dataclasses.replace(c, clauses=(*clauses, Clause("node_provider", "just", ("SSH",))))
    _check(c, seed, "us-east-1", any_region)


HUGE = st.sampled_from([1025, 99_999, 10**6, 10**9 + 7, 10**11, 3 * 10**13, 2**53 - 1, 2**53])
huge_counts = st.one_of(
    HUGE.map(lambda n: Clause("node_count", "just", (n,))),
    HUGE.map(lambda n: Clause("node_count", "atleast", (n,))),
    HUGE.map(lambda n: Clause("node_count", "atmost", (n,))),
    st.tuples(st.integers(1, 10**12), HUGE).map(lambda t: Clause("node_count", "between", (min(t), max(t)))),
    st.lists(HUGE, min_size=1, max_size=3, unique=True).map(lambda v: Clause("node_count", "oneof", tuple(sorted(v)))),
    st.lists(st.one_of(HUGE, st.integers(1, 4)), min_size=1, max_size=3, unique=True).map(
        lambda v: Clause("node_count", "not", tuple(sorted(v)))),
)
HUGE_TOTAL = {
    "cluster_vcpus_count": numeric("cluster_vcpus_count", st.sampled_from([64, 128, 10**6, 10**12, 2**53])),
    "cluster_memory_size": numeric("cluster_memory_size", st.sampled_from([16.0, 1e9, 3.5e12, 1e15])),
    "cluster_accelerator_count": numeric("cluster_accelerator_count", st.sampled_from([8, 10**7, 10**13])),
    "cluster_price_per_hour": numeric("cluster_price_per_hour", st.sampled_from([1.5, 1e6, 2.5e9, 1e13])),
}


@st.composite
def huge_contracts(draw) -> Contract:
    clauses = [draw(huge_counts)]
    for name in draw(st.lists(st.sampled_from(sorted(NODE)), max_size=2, unique=True)):
        clauses.append(draw(NODE[name]))
    for name in draw(st.lists(st.sampled_from(sorted(HUGE_TOTAL)), max_size=2, unique=True)):
        clauses.append(draw(HUGE_TOTAL[name]))
    return Contract("huge", tuple(clauses))


@settings(SETTINGS, max_examples=300)
@given(huge_contracts(), st.integers(0, 3), st.booleans())
def test_huge_counts_and_totals_agree_with_oracle(c: Contract, seed: int, any_region: bool) -> None:
    """Counts up to 2**53 with every qualifier, and totals far beyond what fits the count cap: the closed forms
    (never a list of counts) agree with the oracle, which tries the counts next to every boundary."""
    _check(c, seed, "us-east-1", any_region)
