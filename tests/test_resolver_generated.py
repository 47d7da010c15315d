"""Generated contracts, laid out every way the grammar allows, through parse → resolve (issue 18).

The contracts come from ``contract_gen`` (built from ``ccdsl.parameters.PARAMETERS`` and ``ccdsl.taxonomy``); each
is written in two independent layouts and resolved in a child process (``resolve_worker``) that holds it to a time
and a memory limit.  Properties, per example:

1. parse → resolve returns an answer or raises a ``CcdslError``, never anything else, and prints nothing on stderr;
2. both layouts get the same answer (or the same error: class, conflict, messages);
3. on the small synthetic catalogs, the answer agrees with the brute-force oracle (``tests/oracle.py``, through the
   same checks as ``test_resolver_oracle`` and ``test_resolver_spot``);
4. each example finishes within the worker's limits (60 s, 1.5 GiB above its start-up size): generous, so that a
   loaded CI machine never trips them; they catch a hang or a blow-up.

Profiles (``tests/conftest.py``): ``ci`` (the default: 1,000 examples per test, derandomized) and ``deep``
(``python -m pytest -m fuzz --hypothesis-profile=deep``: 25,000 per test, random).  A shrunk failure found here is
kept as a plain regression test in ``test_resolver_layout.py``.
"""

from __future__ import annotations

import functools
import os

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import ccdsl
from contract_gen import Universe, contract_specs, layouts, specs_of
from resolve_worker import Worker
from test_resolver_oracle import REGION_SET, small_catalog
from test_resolver_oracle import _check as check_plain
from test_resolver_spot import _check as check_spot
from test_resolver_spot import spot_catalog

# pytest-timeout's 600 s is for a test; these run max_examples examples, each held to its own limit by the worker
pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(max(600, settings.default.max_examples))]
LOG = os.environ.get("CCDSL_FUZZ_LOG")  # a file to append one line per example to (for long runs)

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                      HealthCheck.filter_too_much])


@pytest.fixture(scope="module")
def worker(tmp_path_factory):
    scratch = tmp_path_factory.mktemp("worker")
    w = Worker(scratch, env={**os.environ, "CCDSL_DATA_DIR": str(scratch / "data")})
    w.start()
    yield w
    w.stop()


@functools.cache
def shipped_universe() -> Universe:
    from ccdsl.catalog import loader

    frame = loader.load(columns=("instance_type", "region"))
    return Universe(tuple(sorted(set(frame["instance_type"].astype(str)))),
                    tuple(sorted(r for r in set(frame["region"].astype(str)) if r != "local")))


@functools.cache
def synthetic_universe(kind: str, seed: int) -> Universe:
    frame = small_catalog(seed) if kind == "plain" else spot_catalog(seed)
    return Universe(tuple(sorted(set(frame["instance_type"].astype(str)))), REGION_SET, oracle=True)


def _resolved(worker: Worker, texts: list[str], catalog: list, region: str, any_region: bool) -> list:
    """Both layouts through the worker, with properties 1, 2 and 4 checked; the common outcome."""
    answer = worker.ask({"texts": texts, "name": "c", "catalog": catalog, "region": region, "any_region": any_region})
    assert "limit" not in answer, f"over the example's limit: {answer.get('limit')}\n{texts[0]!r}"
    first, second = answer["outcomes"]
    for text, got in zip(texts, answer["outcomes"]):
        assert got[0] != "crash", f"not a CcdslError:\n{text!r}\n{got[1]}"
    assert answer["stderr"] == "", f"printed on stderr:\n{answer['stderr']}\n{texts!r}"
    assert first == second, f"the layouts disagree:\n{texts[0]!r}: {first}\n{texts[1]!r}: {second}"
    event(first[0] if first[0] == "ok" else f"{first[0]}: {first[1]}")
    if LOG:  # a long run counts its examples as it goes (it may be stopped before hypothesis reports)
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(f"{catalog[0]} {first[0]} {first[1] if first[0] == 'error' else ''}\n")
    return first


@FUZZ
@given(st.data())
def test_generated_contracts_resolve_alike_in_any_layout_on_the_shipped_catalog(worker, data) -> None:
    specs = data.draw(contract_specs(shipped_universe()))
    texts = [data.draw(layouts(specs)).text for _ in range(2)]
    any_region = data.draw(st.integers(0, 3)) == 0  # an infeasible one explains itself over every region: dearer
    note(f"any_region={any_region}")
    _resolved(worker, texts, ["shipped"], "us-east-1", any_region)


@FUZZ
@given(st.data())
def test_generated_contracts_agree_with_the_oracle_in_any_layout(worker, data) -> None:
    kind = data.draw(st.sampled_from(["plain", "spot"]))
    seed = data.draw(st.integers(0, 3))
    specs = data.draw(contract_specs(synthetic_universe(kind, seed), max_clauses=5))
    if any(s.name == "spot" and s.atoms == ("true",) for s in specs):
        kind = "spot"  # a role on spot: the spot checks know how markets rank (test_resolver_oracle's do not)
    texts = [data.draw(layouts(specs)).text for _ in range(2)]
    region = data.draw(st.sampled_from(REGION_SET))
    any_region = data.draw(st.booleans())
    note(f"{kind} catalog, seed {seed}, region {region}, any_region={any_region}")
    got = _resolved(worker, texts, [kind, seed], region, any_region)
    if got[:2] == ["error", "ContractError"] or got[:2] == ["error", "ContractSyntaxError"]:
        return
    contract = ccdsl.parse(texts[0])["c"]
    if kind == "plain":
        check_plain(contract, seed, region, any_region)
    else:
        check_spot(contract, None, seed, region, any_region)


def _repository_contracts() -> list[tuple[str, str, list]]:
    """(file, contract name, clause specs) of every contract of examples/ and tests/contracts/ok/."""
    from pathlib import Path

    from ccdsl.language.parser import parse_ast

    root = Path(__file__).resolve().parents[1]
    out = []
    for path in sorted([*(root / "examples").glob("*.ccc"), *(root / "tests" / "contracts" / "ok").glob("*.ccc")]):
        nodes, _ = parse_ast(path.read_text(encoding="utf-8"))
        out += [(f"{path.parent.name}/{path.name}", n.name, specs_of(n)) for n in nodes]
    return out


REPOSITORY = _repository_contracts()


@settings(FUZZ, max_examples=4 * len(REPOSITORY))
@given(st.sampled_from(REPOSITORY), st.data())
def test_every_repository_contract_answers_alike_in_any_layout(worker, contract, data) -> None:
    """Each contract of the repository, as written there (parenthesized, on one line) and laid out anew."""
    path, name, specs = contract
    note(f"{path}: {name}")
    written = "c = @cluster(" + ", ".join(" ".join(s.tokens()) for s in specs) + ")\n"
    _resolved(worker, [written, data.draw(layouts(specs)).text], ["shipped"], "us-east-1",
              data.draw(st.booleans()))


def test_the_worker_reports_an_example_over_its_memory_limit(tmp_path) -> None:
    """The limit is real: a worker allowed no memory beyond its start-up size cannot resolve on a catalog of a
    million rows (hundreds of MB), and the parent sees a failure (the worker's MemoryError, or its death), never an
    answer; the same worker then answers a small example again."""
    import os

    w = Worker(tmp_path, env={**os.environ, "CCDSL_DATA_DIR": str(tmp_path / "data"), "CCDSL_WORKER_MEMORY": "1"})
    w.start()
    request = {"texts": ["c = @cluster(node_vcpus_count => @atleast(8))\n"], "name": "c", "region": "us-east-1",
               "any_region": True}
    try:
        big = w.ask({**request, "catalog": ["synthetic", 1_000_000, 0]})
        small = w.ask({**request, "catalog": ["plain", 0]})
    finally:
        w.stop()
    assert "limit" in big or (big["outcomes"][0][0] == "crash" and "MemoryError" in big["outcomes"][0][1]), big
    assert small["outcomes"][0][0] == "ok", small


def test_a_manager_workers_budget_on_the_shipped_catalog_over_every_region_answers_within_the_limits(worker) -> None:
    """``cluster_price_per_hour => @atleast(0)`` on a ManagerWorkers contract paired every worker row with every
    manager row of the shipped catalog (10 s, 0.9 GB with ``--any-region`` before the resolver's BudgetPairs; found by
    the deep profile, which is why the generator left such budgets out until then).  Through the worker, so held to
    its limits, in two layouts."""
    texts = ["c = @cluster(cluster_type => ManagerWorkers, cluster_price_per_hour => @atleast(0))\n",
             "c = @cluster cluster_price_per_hour=>@atleast(\n0), cluster_type=>ManagerWorkers,\r\n"]
    answer = worker.ask({"texts": texts, "name": "c", "catalog": ["shipped"], "region": "us-east-1",
                         "any_region": True})
    assert "limit" not in answer, answer
    assert answer["stderr"] == "", answer["stderr"]
    first, second = answer["outcomes"]
    assert first[0] == "ok" and first == second, answer["outcomes"]
