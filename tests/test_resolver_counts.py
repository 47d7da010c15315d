"""Node counts of any size: closed forms, never one array element per count (issue 8, item 3).

Memory is measured with tracemalloc (numpy reports its buffers to it), so a count domain built as an array of
every count shows up as gigabytes; times are left to ``benchmarks/bench_limits.py``.
"""

from __future__ import annotations

import tracemalloc

import pytest

from ccdsl.contract import Clause, Contract, Span
from ccdsl.errors import ContractError
from ccdsl.language import parse
from ccdsl.resolver import resolve, select
from ccdsl.resolver.counts import CountDomain, count_domain
from test_resolver import GPUS, C, contract


def peak_mib(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("n", [10**8, 10**11, 2**53])
def test_a_fixed_huge_count_resolves_in_little_memory(n: int) -> None:
    c = contract(C("node_count", "just", n), C("node_vcpus_count", "atleast", 4))
    got = []
    assert peak_mib(lambda: got.append(resolve(c, GPUS))) < 64
    assert got[0].node_count == n and got[0].instance_type == "c5.xlarge"


@pytest.mark.parametrize("qualifier,values,first", [
    ("atleast", (10**12,), 10**12), ("between", (10**12, 10**13), 10**12), ("atmost", (10**13,), 1),
    ("oneof", (10**12 + 1, 10**9), 10**9), ("not", (1, 2, 10**14), 3), ("unrestricted", (), 1)])
def test_every_qualifier_takes_memory_independent_of_the_count(qualifier: str, values: tuple, first: int) -> None:
    c = contract(C("node_count", qualifier, *values))
    got = []
    assert peak_mib(lambda: got.append(resolve(c, GPUS))) < 64
    assert got[0].node_count == first


def test_a_wide_range_with_oneof_total_is_small_and_exact() -> None:
    """The issue's case: 1..10**6 nodes with 64 or 128 vCPUs in all (over 20 s and 17 GB before)."""
    c = contract(C("node_count", "between", 1, 10**6), C("cluster_vcpus_count", "oneof", 64, 128))
    got = []
    assert peak_mib(lambda: got.append(select(c, GPUS))) < 64
    by_type = {x.instance_type: x.node_count for x in got[0] if x.region == "us-east-1"}
    assert by_type == {"c5.large": 32, "c5.xlarge": 16, "g4dn.xlarge": 16, "g6.xlarge": 16, "g6e.xlarge": 16,
                       "p3.2xlarge": 8}


def test_totals_far_beyond_the_cap_use_the_counts_the_clause_allows() -> None:
    """just/not on a total with a count range of 10**12: the smallest count in a band, or after an excluded one."""
    rng, four = C("node_count", "between", 1, 10**12), C("node_vcpus_count", "atleast", 4)
    r = resolve(contract(rng, four, C("cluster_vcpus_count", "just", 4 * 10**11)), GPUS)
    assert (r.instance_type, r.node_count) == ("c5.xlarge", 10**11)  # a count total is exact (issue 18, item 4)
    r = resolve(contract(C("node_count", "between", 10**11, 10**12), C("node_vcpus_count", "just", 4),
                         C("cluster_vcpus_count", "not", 4 * 10**11)), GPUS)
    assert (r.instance_type, r.node_count) == ("c5.xlarge", 10**11 + 1)  # the first count past 4e11 exactly
    # memory keeps the relative slack: 4 GiB per node, 4e11 ± 400 GiB in all is 1e11 - 100 nodes
    r = resolve(contract(rng, four, C("cluster_memory_size", "just", 4 * 10**11)), GPUS)
    assert (r.instance_type, r.node_count) == ("c5.xlarge", 10**11 - 100)


def test_node_counts_are_exact_not_within_the_relative_slack() -> None:
    """With a slack of 1e-9, @just(10**11) would accept 10**11 - 100; counts are whole numbers."""
    assert resolve(contract(C("node_count", "just", 10**11)), GPUS).node_count == 10**11
    assert count_domain(Clause("node_count", "oneof", (10**11, 2.5))).starts.tolist() == [1e11]


@pytest.mark.parametrize("n", [2**53 + 1, 10**19, 2**63, 1e308])
def test_a_count_above_two_to_the_53_is_an_error_naming_the_clause(n) -> None:
    c = Contract("c", (Clause("node_count", "atleast", (n,), span=Span(3, 5, 3, 30, "node_count => @atleast(…)")),))
    with pytest.raises(ContractError) as e:
        resolve(c, GPUS)
    d = e.value.diagnostics[0]
    assert (d.line, d.column) == (3, 5) and "2**53" in d.message and "node_count => @atleast(…)" in d.message


@pytest.mark.parametrize("text,number", [("node_count => 10000000000000000000", "1000"),
                                         ("node_count => 9223372036854775808", "9223"),
                                         ("node_count => @atmost(1e308)", "1e308"),
                                         ("cluster_vcpus_count => @atleast(1e17)", "1e17")])
def test_the_checker_refuses_counts_above_two_to_the_53(text: str, number: str) -> None:
    with pytest.raises(ContractError) as e:
        parse(f"c = @cluster({text})")
    d = e.value.diagnostics[0]
    assert d.line == 1 and d.column == text.index(number) + 14 and "at most 2**53" in d.message


def test_count_domain_intervals() -> None:
    d = count_domain(Clause("node_count", "not", (3, 5, 6, 2000)))
    assert list(zip(d.starts.tolist(), d.stops.tolist())) == [(1, 2), (4, 4), (7, 1999)]
    assert d.smallest([0, 3, 5, 1999, 2000]).tolist() == [1, 4, 7, 1999, float("inf")]
    assert d.at_most(4).last == 4 and CountDomain.of([]).empty


@pytest.mark.parametrize("text", ["cluster_memory_size => @atmost(1e308)", "node_memory_size => @atmost(1e308)",
                                  "cluster_price_per_hour => @atmost(1e308)"])
def test_a_huge_bound_is_shown_short_and_without_numpy_warnings(text: str) -> None:
    """@atmost(1e308) printed a numpy overflow warning and a 300-digit integer (issue 8, item 17)."""
    import re
    import warnings

    c = parse(f"c = @cluster({text})")["c"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = resolve(c, GPUS)
    shown = "\n".join(r.explanation)
    assert "1e+308" in shown and not re.search(r"\d{20}", shown + r.to_json())
