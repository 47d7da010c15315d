"""The resolver's shortcuts around sorting give exactly what sorting gives.

Per-view orders (built once per catalog, restricted to a contract's rows in linear passes) replace the sorts of
the ranking and of the Pareto step; the alternatives are read from a prefix of the ranking.  Each shortcut is
compared here with the direct computation it replaces, on random inputs with many ties, and the whole resolver is
compared with the brute-force oracle with the shortcuts forced on for every size (the oracle's catalogs are far
below the size where they switch on by themselves).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from unittest import mock

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from ccdsl import resolver
from ccdsl.contract import Clause, Contract
from ccdsl.resolver import compile as comp
from ccdsl.resolver import resolve, solve
from ccdsl.resolver.view import nan_as, view_of
from synthetic import catalog
from test_resolver_oracle import REGION_SET, SETTINGS, _check, contracts
from test_resolver_spot import _check as _check_spot
from test_resolver_spot import spot_contracts

FORCED = mock.patch.object(comp, "PRESORT_MIN", 2)  # the per-view orders for every size


@functools.cache
def coarse_catalog(seed: int, rows: int = 3000):
    """About ``rows`` rows whose prices are rounded to 0.1 USD: many rows share a price, so ties decide orders."""
    df = catalog(rows=rows, seed=seed, unpriced_fraction=0.05 if seed % 2 else 0.0)
    df["price_per_hour"] = df["price_per_hour"].round(1).clip(lower=0.1)
    return df


better_values = st.sampled_from([-np.inf, -3.0, -1.0, 0.0, 0.5, 1.0, 2.0, 7.0])


@settings(SETTINGS, max_examples=600)
@given(st.integers(1, 4).flatmap(lambda d: st.lists(st.tuples(st.integers(0, 3), st.lists(
    better_values, min_size=d, max_size=d)), min_size=1, max_size=120)))
def test_pareto_from_a_presorted_order_keeps_the_same_rows(rows) -> None:
    group = np.array([g for g, _ in rows], dtype=np.int64)
    better = np.array([b for _, b in rows], dtype=np.float64)
    assert list(comp.pareto(group, better, comp.sort_order(better))) == list(comp.pareto(group, better))


@settings(SETTINGS, max_examples=60)
@given(st.integers(3, 4), st.integers(1, 1500), st.integers(2, 40), st.integers(0, 2**32 - 1))
def test_pareto_over_many_rows_keeps_exactly_the_undominated_ones(d: int, m: int, levels: int, draw: int) -> None:
    """Three or more columns go through the frontier in growing chunks (32 rows, then 64, … 512): whatever the
    chunk boundaries, the kept rows are the undominated ones, and of exact twins the first."""
    rng = np.random.default_rng(draw)
    better = rng.integers(0, levels, size=(m, d)).astype(float)
    assert list(comp.pareto(np.zeros(m, dtype=np.int64), better)) == brute_force_pareto(better)


@settings(SETTINGS, max_examples=300)
@given(st.integers(1, 400), st.integers(1, 30), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_pareto_of_one_column_keeps_the_first_best_row_of_each_group(m: int, groups: int, levels: int,
                                                                      draw: int) -> None:
    """One column and several groups (ManagerWorkers places) take a per-group maximum instead of the sorts: the
    same rows as the brute force, group by group (of twins the first, unknown values -inf)."""
    rng = np.random.default_rng(draw)
    better = rng.integers(0, levels, size=(m, 1)).astype(float)
    better[rng.random(m) < 0.1] = -np.inf
    group = rng.integers(0, groups, size=m)
    want = sorted(int(np.flatnonzero(group == g)[i]) for g in np.unique(group)
                  for i in brute_force_pareto(better[group == g]))
    assert list(comp.pareto(group, better)) == want
    assert list(comp.pareto(group, better, comp.sort_order(better))) == want


def brute_force_pareto(better: np.ndarray) -> list[int]:
    """The rows no other row dominates (>= everywhere, > somewhere), and of exact twins the first: all pairs."""
    ge = (better[:, None, :] >= better[None, :, :]).all(axis=2)  # ge[i, j]: i at least as good as j
    gt = (better[:, None, :] > better[None, :, :]).any(axis=2)
    earlier = np.tri(len(better), k=-1, dtype=bool).T  # earlier[i, j]: i < j
    return list(np.flatnonzero(~((ge & gt) | (ge & ~gt & earlier)).any(axis=0)))


@pytest.mark.parametrize("twins", [0, 300])
@pytest.mark.parametrize("dominated_first", [False, True])
def test_pareto_with_thousands_of_undominated_rows(twins: int, dominated_first: bool) -> None:
    """Rows whose last two columns sum to a constant dominate none of each other.  After a long run of dominated
    rows the slices have grown large, so one slice then holds more survivors than one piece of the pairwise step,
    which goes on piece by piece."""
    rng = np.random.default_rng(twins)
    a = rng.permutation(1500).astype(float)
    b = rng.permutation(1500).astype(float) + 200.0
    better = np.column_stack([a / 100, b, 4400.0 - b])  # sorted after the dominated run: lower first column
    if dominated_first:  # one row above 3,000 others, all sorted before the plane
        top = np.array([[100.0, 100.0, 100.0]])
        run = np.column_stack([rng.uniform(90, 100, 3000), rng.uniform(0, 100, 3000), rng.uniform(0, 100, 3000)])
        better = np.vstack([top, run, better])
    better = np.vstack([better, better[rng.integers(0, len(better), twins)]])
    better = better[rng.permutation(len(better))]
    assert list(comp.pareto(np.zeros(len(better), dtype=np.int64), better)) == brute_force_pareto(better)


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=40))
def test_ascending_is_strict_lexicographic_order(keys) -> None:
    arrays = [np.array(k) for k in zip(*keys)]
    assert solve.ascending(*arrays) == all(a < b for a, b in itertools.pairwise(keys))


@settings(SETTINGS, max_examples=300)
@given(st.integers(0, 3), st.integers(0, 2**32 - 1), st.booleans(), st.booleans(), st.booleans(), st.booleans())
def test_rank_order_is_the_lexsort_of_the_ranking_keys(seed: int, draw: int, one_count: bool, managers: bool,
                                                       huge: bool, bounded: bool) -> None:
    """``bounded``: some clusters have an unknown price with a bound (spot rows without a spot price), ranked after
    every priced one by the ``unknown`` flag (a stable partition in rank_order, not a sort)."""
    view = view_of(coarse_catalog(seed))
    rng = np.random.default_rng(draw)
    rows = np.flatnonzero(rng.random(view.size) < rng.uniform(0.05, 1.0))
    price = view.numbers["price_per_hour"][rows]
    most = 2**40 if huge else 9  # counts beyond 16 bits are sorted as they are
    counts = np.full(len(rows), int(rng.integers(1, most))) if one_count else rng.integers(1, most, len(rows))
    offset = rng.choice([0.0, 0.1, 0.3], len(rows)) if managers else 0.0
    totals = counts * price + offset
    cost_key = np.where(np.isnan(totals), np.inf, np.round(totals, 9))
    unknown = rng.random(len(rows)) < 0.2 if bounded else None
    with FORCED:
        got = solve.rank_order(view, rows, counts, cost_key, not managers, unknown)
    keys = (view.tie[rows], counts, cost_key) + ((unknown,) if unknown is not None else ())
    assert list(got) == list(np.lexsort(keys))


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.one_of(st.integers(-5, 5), st.integers(-2**62, 2**62)), min_size=1, max_size=60),
       st.booleans())
def test_digits_order_and_tie_as_the_keys_do(values: list[int], as_float: bool) -> None:
    """Integer keys close together become offsets, others (and floats, with inf and -0.0) dense ranks: either way
    two keys compare as their digits do, and every digit is below the count of digit values."""
    keys = np.array(values, dtype=np.float64 if as_float else np.int64)
    if as_float:
        keys[::7] = np.inf
        keys[keys == 0] = -0.0
    got, levels = solve.digits(keys)
    assert got.dtype == np.int64 and got.min() >= 0 and got.max() < levels
    for i, j in itertools.product(range(len(keys)), repeat=2):
        assert (keys[i] < keys[j]) == (got[i] < got[j]) and (keys[i] == keys[j]) == (got[i] == got[j])


@settings(SETTINGS, max_examples=300)
@given(st.integers(0, 3), st.integers(0, 2**32 - 1), st.booleans(), st.booleans(), st.booleans(),
       st.integers(1, 400))
def test_head_order_is_the_head_of_the_lexsort_of_the_ranking_keys(seed: int, draw: int, one_count: bool,
                                                                  managers: bool, bounded: bool, head: int) -> None:
    """The partial order of a resolve (:func:`solve.head_order`): its first ``head`` positions are the full sort's
    first ``head``, ties in price everywhere (prices rounded to 0.1 USD, few counts, few manager prices), and the
    rest follows in position order; None only where it says it leaves the sort to rank_order."""
    view = view_of(coarse_catalog(seed))
    rng = np.random.default_rng(draw)
    rows = np.flatnonzero(rng.random(view.size) < rng.uniform(0.01, 1.0))
    price = view.numbers["price_per_hour"][rows]
    counts = np.full(len(rows), int(rng.integers(1, 9))) if one_count else rng.integers(1, 4, len(rows))
    offset = rng.choice([0.0, 0.1, 0.3], len(rows)) if managers else 0.0
    totals = counts * price + offset
    cost_key = np.where(np.isnan(totals), np.inf, np.round(totals, 9))
    unknown = rng.random(len(rows)) < rng.choice([0.2, 0.99]) if bounded else None
    got = solve.head_order(view, rows, counts, cost_key, unknown, head)
    full = np.lexsort((view.tie[rows], counts, cost_key) + ((unknown,) if unknown is not None else ()))
    priced = len(rows) if unknown is None else int((~unknown).sum())
    if head >= len(rows) or priced < head:
        assert got is None
        return
    assert got is not None
    known = cost_key if unknown is None else cost_key[~unknown]
    tied = int((known <= cost_key[full[head - 1]]).sum())  # the clusters sorted by hand: Python's or packed
    event("sorted in Python" if tied <= 4 * head else "sorted packed")
    assert list(got[:head]) == list(full[:head])
    assert list(got[head:]) == sorted(set(range(len(rows))) - set(got[:head].tolist()))


def test_head_order_leaves_a_repeated_row_or_a_nan_cost_to_the_full_sort() -> None:
    view = view_of(coarse_catalog(0))
    rows = np.arange(0, 600, 2)
    counts = np.ones(len(rows), dtype=np.int64)
    cost_key = np.round(view.numbers["price_per_hour"][rows], 9)
    cost_key[np.isnan(cost_key)] = np.inf
    assert solve.head_order(view, rows, counts, cost_key, None, 10) is not None
    assert solve.head_order(view, np.sort(np.r_[rows[:-1], rows[:1]]), counts, cost_key, None, 10) is None
    cost_key[7] = np.nan
    assert solve.head_order(view, rows, counts, cost_key, None, 10) is None


@settings(SETTINGS, max_examples=60)
@given(st.one_of(contracts(), contracts(manager_workers=True)), st.integers(0, 3), st.booleans(),
       st.integers(1, 200))
def test_a_partial_ranking_is_the_head_of_the_full_one_and_completes_to_it(c: Contract, seed: int,
                                                                          any_region: bool, head: int) -> None:
    """:func:`solve.rank` with ``head`` against the full ranking: the same clusters, the same first ``ordered``
    positions, :meth:`Ranking.complete` gives the full ranking, and the alternatives read from it (completing
    it when its head holds too few types) are the full ranking's."""
    view = view_of(coarse_catalog(seed))
    with FORCED:
        full = solve.rank(view, c, "us-east-1", any_region)
        part = solve.rank(view, c, "us-east-1", any_region, head)
    arrays = ("rows", "counts", "totals", "managers")
    assert sorted(part.rows.tolist()) == sorted(full.rows.tolist())
    if part.ordered is None:
        event("fully sorted")
        for name in arrays:
            assert np.array_equal(getattr(part, name), getattr(full, name), equal_nan=True)
        return
    event("partial")
    assert part.ordered == head < len(full.rows)
    for name in arrays:
        assert np.array_equal(getattr(part, name)[:head], getattr(full, name)[:head], equal_nan=True)
        assert np.array_equal(getattr(part.complete(), name), getattr(full, name), equal_nan=True)
    for top in (1, 3, 5, 40):
        ranking, positions = solve.ranked_alternatives(part, top)
        assert positions == solve.alternatives(full, top)
        assert [int(ranking.rows[i]) for i in positions] == [int(full.rows[i]) for i in positions]


@settings(SETTINGS, max_examples=300)
@given(st.one_of(contracts(), contracts(manager_workers=True)), st.integers(0, 3), st.sampled_from(REGION_SET),
       st.booleans())
def test_random_contracts_agree_with_oracle_through_a_short_ranking_head(c: Contract, seed: int, region: str,
                                                                        any_region: bool) -> None:
    """A resolve sorting only the head it reads (here the shortest: top + 1 clusters), with the per-view orders
    forced on for every size: the oracle's answer, alternatives and select()."""
    with FORCED, mock.patch.object(resolver, "RANK_HEAD", 1):
        _check(c, seed, region, any_region)


@functools.cache
def burstable_spot_catalog(seed: int):
    from synthetic import SpotData

    return catalog(rows=60, seed=seed, regions=REGION_SET, extra_providers=seed % 2 == 1,
                   spot=SpotData(unpriced=0.1), burstable=True)


ASKS_BURSTABLE = Contract("b", (Clause("burstable", "just", (True,)),))


@settings(SETTINGS, max_examples=100)
@given(st.lists(st.one_of(contracts(), contracts(manager_workers=True), st.just(ASKS_BURSTABLE)), min_size=1,
                max_size=4),
       st.integers(0, 3), st.sampled_from(REGION_SET), st.booleans(), st.sampled_from([(), (None,), ("worker",)]))
def test_scope_rows_remembered_per_view_are_the_scope_of_each_contract(cs, seed: int, region: str, any_region: bool,
                                                                      roles) -> None:
    """A role's scope rows, remembered with the view when no clause bears on the scope (:func:`.filter.scope_key`),
    are its scope mask in its market for every contract resolved over the same view one after another (on-demand,
    all-spot and mixed-market views; clauses that name providers, regions, types or burstable rows included)."""
    from ccdsl.resolver import market
    from ccdsl.resolver.filter import scope_mask
    df = burstable_spot_catalog(seed)
    view = view_of(df) if not roles else market.view_of(df, roles, roles == ("worker",))
    for c in cs:
        wspec, mspec = comp.role_specs(c)
        for spec in (wspec,) if mspec is None else (wspec, mspec):
            allowed = scope_mask(view, spec.node, region, any_region)
            in_market = view.role_scope(spec.role)
            want = np.flatnonzero(allowed if in_market is None else allowed & in_market)
            assert solve.scope_rows(view, spec, region, any_region).tolist() == want.tolist()


@pytest.mark.parametrize("case", ["repeated row", "nan cost", "too wide"])
def test_packed_order_leaves_to_the_direct_sort_what_it_cannot_pack(case: str) -> None:
    """A row twice (its tie rank no longer distinguishes), a NaN cost (no rank), or more digit values than 63
    bits hold (a view claiming 2**61 rows, × 4 distinct costs): no packed order, and rank_order still gives the
    lexsort."""
    view = view_of(coarse_catalog(0))
    rng = np.random.default_rng(3)
    rows = np.flatnonzero(rng.random(view.size) < 0.5)
    counts = rng.integers(1, 9, len(rows))
    cost_key = np.round(counts * view.numbers["price_per_hour"][rows], 9)
    cost_key[np.isnan(cost_key)] = np.inf
    assert solve.packed_order(view, rows, counts, cost_key, None) is not None
    if case == "repeated row":
        rows = np.sort(np.r_[rows, rows[:50]])
        counts, cost_key = np.r_[counts, counts[:50]], np.r_[cost_key, cost_key[:50]]
    elif case == "nan cost":
        cost_key[::5] = np.nan
    else:
        view = dataclasses.replace(view, size=2**61)
    assert solve.packed_order(view, rows, counts, cost_key, None) is None
    with FORCED:
        got = solve.rank_order(view, rows, counts, cost_key, False)
    assert list(got) == list(np.lexsort((view.tie[rows], counts, cost_key)))


@settings(SETTINGS, max_examples=200)
@given(contracts(), st.integers(0, 3), st.integers(0, 2**32 - 1), st.booleans())
def test_classes_from_a_per_view_order_are_the_classes_of_the_direct_sort(c: Contract, seed: int, draw: int,
                                                                          location: bool) -> None:
    view = view_of(coarse_catalog(seed))
    rng = np.random.default_rng(draw)
    rows = np.flatnonzero(rng.random(view.size) < rng.uniform(0.05, 1.0))
    spec, _ = comp.role_specs(c)
    fails = rng.random((len(rows), len(spec.node))) < 0.3
    literal_of = {j: j for j in range(len(spec.node))}
    direct = comp.make_classes(view, rows, spec, fails, location, literal_of)
    with FORCED:
        shortcut = comp.make_classes(view, rows, spec, fails, location, literal_of)
    assert list(shortcut.rows) == list(direct.rows)
    assert shortcut.fails == direct.fails


@settings(SETTINGS, max_examples=200)
@given(st.integers(0, 3), st.integers(0, 2**32 - 1))
def test_each_worker_row_is_paired_with_the_first_manager_of_its_place(seed: int, draw: int) -> None:
    """Without a budget's lower bound a worker row is paired with its place's first manager by price (unknown
    last), more vCPUs, then type name (a table lookup of the places since issue 20): the pairs of a brute force
    over the places, in the worker rows' order, and places without a manager leave their workers out."""
    view = view_of(coarse_catalog(seed))
    rng = np.random.default_rng(draw)
    workers = np.flatnonzero(rng.random(view.size) < rng.uniform(0.01, 1.0))
    managers = np.flatnonzero(rng.random(view.size) < rng.uniform(0.001, 0.2))
    price, vcpus = view.numbers["price_per_hour"], np.nan_to_num(view.numbers["vcpus"])
    first = {}
    for m in managers:
        key = (bool(np.isnan(price[m])), float(np.nan_to_num(price[m])), -vcpus[m], view.codes["instance_type"][m])
        place = int(view.location[m])
        if place not in first or key < first[place][0]:
            first[place] = (key, int(m))
    want = [(int(w), first[int(view.location[w])][1]) for w in workers if int(view.location[w]) in first]
    got_w, got_m, pairs, _ = solve.pair_managers(view, workers, managers, False)
    assert list(zip(got_w.tolist(), got_m.tolist())) == want and pairs == len(want)


def test_alternatives_read_from_a_prefix_are_the_first_row_of_each_type() -> None:
    view = view_of(coarse_catalog(0))
    contract = Contract("c", (Clause("node_vcpus_count", "atleast", (2,)),))
    ranking = solve.rank(view, contract, "us-east-1", True)
    types = view.codes["instance_type"][ranking.rows]
    _, first = np.unique(types, return_index=True)
    first = np.sort(first)
    assert len(ranking.rows) > 64 * 8  # the prefix grows at least twice
    for top in (0, 1, 5, 60, len(first) - 1, len(first) + 3):
        assert solve.alternatives(ranking, top) == [int(i) for i in first[first != 0][:max(top, 0)]]


@settings(SETTINGS, max_examples=500)
@given(st.one_of(contracts(), contracts(manager_workers=True)), st.integers(0, 3), st.sampled_from(REGION_SET),
       st.booleans())
def test_random_contracts_agree_with_oracle_through_the_per_view_orders(c: Contract, seed: int, region: str,
                                                                       any_region: bool) -> None:
    with FORCED:
        _check(c, seed, region, any_region)


@settings(SETTINGS, max_examples=300)
@given(spot_contracts(), st.integers(0, 3), st.sampled_from(REGION_SET), st.booleans())
def test_random_spot_contracts_agree_with_oracle_through_the_per_view_orders(cs, seed: int, region: str,
                                                                            any_region: bool) -> None:
    """Market views (spot prices, mixed ManagerWorkers views) are views of their own, with orders of their own."""
    c, spot = cs
    with FORCED:
        _check_spot(c, spot, seed, region, any_region)


@pytest.mark.parametrize("clauses", [
    (Clause("node_vcpus_count", "atleast", (4,)), Clause("node_memory_size", "atleast", (16.0,))),
    (Clause("node_count", "between", (2, 32)), Clause("cluster_vcpus_count", "atleast", (256,))),
], ids=["per-node", "cluster total"])
def test_a_warm_resolve_over_a_large_catalog_sorts_nothing_whole(clauses) -> None:
    """The second resolve over the same catalog reuses the per-view orders: np.lexsort, the three-key sort of every
    matching row that each resolve used to pay, is not called (no timing: the work itself is left out)."""
    df = coarse_catalog(0, rows=10_000)
    contract = Contract("c", clauses)
    first = resolve(contract, df, any_region=True)
    assert first.matches >= comp.PRESORT_MIN
    with mock.patch.object(np, "lexsort", side_effect=AssertionError("a whole sort")):
        again = resolve(contract, df, any_region=True)
    assert again.to_dict() == first.to_dict()


@settings(SETTINGS, max_examples=300)
@given(st.one_of(st.none(), st.integers(1, 40).map(lambda n: Clause("node_count", "atleast", (n,))),
                 st.integers(1, 40).map(lambda n: Clause("node_count", "just", (n,))),
                 st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True).map(
                     lambda v: Clause("node_count", "not", tuple(sorted(v))))),
       st.lists(st.sampled_from([np.nan, 0.0, 1.0, 2.0, 3.0, 5.0, 40.0, 1e6]), min_size=1, max_size=30),
       st.booleans())
def test_counts_without_totals_are_the_first_count_the_row_can_give(count, limits, with_limit: bool) -> None:
    """A contract without cluster totals takes its first allowed count wherever a row has that many nodes: the
    shortcut gives what the general closed form gives (run here with a constraint that constrains nothing)."""
    from ccdsl.resolver.counts import Coupled, count_domain, min_counts

    domain = count_domain(count)
    limit = np.array(limits) if with_limit else None
    nothing = [Coupled(Clause("cluster_vcpus_count", "unrestricted"), np.ones(len(limits)))]
    assert list(min_counts(domain, [], len(limits), limit)) == list(min_counts(domain, nothing, len(limits), limit))


@settings(SETTINGS, max_examples=300)
@given(st.lists(st.tuples(st.integers(1, 60), st.integers(0, 40)), min_size=1, max_size=4),
       st.lists(st.sampled_from([np.nan, -np.inf, np.inf, -3.0, 0.0, 0.5, 1.0, 7.2, 30.0, 59.0, 61.0, 200.0]),
                min_size=1, max_size=30))
def test_smallest_count_of_one_interval_is_the_searched_one(intervals, lows) -> None:
    """The one-interval shortcut of CountDomain.smallest gives what the interval search gives."""
    from ccdsl.resolver.counts import CountDomain

    domain = CountDomain.of([(float(a), float(a + w)) for a, w in intervals])
    lo = np.array(lows)
    got = domain.smallest(lo)
    # the search over a copy with a far empty-able second interval appended and removed again: the general path
    wide = CountDomain(np.r_[domain.starts, 1e15], np.r_[domain.stops, 1e15])
    want = np.where(wide.smallest(lo) < 1e15, wide.smallest(lo), np.inf)
    assert list(got) == list(want)


_ODD_FLOATS = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0, 1e308, -1e308, 5e-324])


@given(st.lists(st.one_of(_ODD_FLOATS, st.floats(allow_nan=True, allow_infinity=True)), max_size=40),
       st.sampled_from([-np.inf, np.inf, -1.5, 0.0, 7.0, np.nan]), st.booleans())
def test_nan_as_is_numpys_nan_to_num_element_for_element(xs: list[float], nan: float, matrix: bool) -> None:
    """The resolver's faster ``nan_as`` replaces ``np.nan_to_num(x, nan=...)`` in the ranking's keys and Pareto
    columns: the same numbers, ±inf included, in a copy (the input is left as it was)."""
    x = np.array(xs, dtype=np.float64)
    if matrix and len(x) % 2 == 0:
        x = x.reshape(2, -1)
    before = x.copy()
    got, want = nan_as(x, nan), np.nan_to_num(x, nan=nan)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))
    np.testing.assert_array_equal(x, before)
