"""Robustness and round trip, by property: whatever text, bytes or keyword arguments come in, the language only
ever raises ContractError, and every diagnostic points inside the file.  Valid contracts survive
Contract -> text (printer) -> Contract unchanged."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ccdsl import taxonomy
from ccdsl.errors import ContractError
from ccdsl.language import check, cluster, load, parse, without_positions
from ccdsl.language.builder import Q
from ccdsl.language.printer import format_contract, format_contracts
from ccdsl.parameters import PARAMETERS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = {str(p.relative_to(ROOT)): p.read_text()
            for p in sorted([*(ROOT / "examples").glob("*.ccc"), *(ROOT / "tests" / "contracts").glob("*/*.ccc")])}
FUZZ = settings(max_examples=int(os.environ.get("CCDSL_FUZZ_EXAMPLES", 250)), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def assert_inside(text: str, diagnostics) -> None:
    lines = text.replace("\r\n", "\n").split("\n")
    for d in diagnostics:
        assert d.line is not None and d.column is not None, d
        assert 1 <= d.line <= len(lines), d
        width = len(lines[d.line - 1])
        assert 1 <= d.column <= width + 1, (d, lines[d.line - 1])
        assert d.column < d.end_column <= width + 2, (d, lines[d.line - 1])
        assert d.severity in ("error", "warning")
        d.render(text)


def exercise(text: str) -> None:
    contracts, diagnostics = check(text, "fuzz.ccc")
    assert_inside(text, diagnostics)
    try:
        parsed = parse(text, "fuzz.ccc")
    except ContractError as e:
        assert any(d.severity == "error" for d in e.diagnostics)
        assert e.render()
    else:
        assert parsed == contracts


@FUZZ
@given(st.text(max_size=300))
def test_random_text(text: str) -> None:
    exercise(text)


ALPHABET = list("()=>,.@\"#\\\n\t -_+") + ["=>", "@cluster", "@between(", "node_count", "16G", "x", "1", "\r\n"]


@FUZZ
@given(st.lists(st.sampled_from(ALPHABET), max_size=40).map("".join))
def test_random_token_soup(text: str) -> None:
    exercise(text)


MUTATION = st.tuples(st.sampled_from(["delete", "insert", "duplicate", "swap"]), st.floats(0, 1), st.floats(0, 1),
                     st.sampled_from(ALPHABET + list("aZ9{}[];:'") + ["\x00", "\u2028", "é"]))


def mutate(text: str, mutations) -> str:
    for kind, a, b, piece in mutations:
        if not text:
            text = piece
            continue
        i, j = sorted((int(a * len(text)), int(b * len(text))))
        j = min(j, i + 12)
        if kind == "delete":
            text = text[:i] + text[j + 1:]
        elif kind == "insert":
            text = text[:i] + piece + text[i:]
        elif kind == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        else:
            text = text[:i] + text[j:j + (j - i)] + text[i:j] + text[j + (j - i):]
    return text


@FUZZ
@given(st.sampled_from(sorted(EXAMPLES)), st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_examples(name: str, mutations) -> None:
    exercise(mutate(EXAMPLES[name], mutations))


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_from_a_file(tmp_path_factory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("bytes") / "random.ccc"
    path.write_bytes(data)
    try:
        load(path)
    except ContractError as e:
        assert e.diagnostics
    _contracts, diagnostics = check(data)
    if diagnostics and diagnostics[0].line is not None:
        assert_inside(data.decode("utf-8", "replace").removeprefix("\ufeff"), diagnostics)


PYTHON_VALUES = st.one_of(st.integers(-5, 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                          st.text(max_size=12), st.none(), st.lists(st.integers(), max_size=2),
                          st.sampled_from(["16G", "Turing", "t3.xlarge", "us-east-1", "EC2Type_T3_xLarge", "Ada"]))
QUALIFIED = st.builds(lambda q, vs: Q(q, tuple(vs)),
                      st.sampled_from(["just", "atleast", "atmost", "between", "oneof", "not", "unrestricted",
                                       "nonsense"]),
                      st.lists(PYTHON_VALUES, max_size=3))
KEYS = st.sampled_from(list(PARAMETERS) + ["nodes_count", "bogus", "manager__node_count", "worker__accelerator",
                                           "boss__node_vcpus_count", "manager__image_id"])


@FUZZ
@given(st.dictionaries(KEYS, PYTHON_VALUES | QUALIFIED, max_size=6))
def test_cluster_keyword_fuzz(kwargs: dict) -> None:
    try:
        c = cluster(**kwargs)
    except ContractError as e:
        assert e.diagnostics and all(d.line is None for d in e.diagnostics)
    else:
        assert without_positions(parse(format_contract(c))["contract"]) == c


# --- round trip: Contract -> text -> Contract -------------------------------------------------------------------

def _symbol_values(p) -> st.SearchStrategy:
    return st.sampled_from([n.name for n in taxonomy.nodes(p.domain, p.levels)])


def _value(p) -> st.SearchStrategy:
    if p.kind == "count":
        return st.integers(max(1, 0) if p.name in ("node_count", "node_process_count") else 0, 10**6)
    if p.kind in ("memory", "bandwidth", "price"):
        return st.floats(0, 1e9, allow_nan=False) | st.integers(0, 10**6) | \
            st.builds(lambda n, s: f"{n}{s}", st.integers(0, 4096), st.sampled_from("KMGTP"))
    if p.kind == "symbol":
        return _symbol_values(p)
    if p.kind == "machinetype":
        return st.sampled_from(["t3.xlarge", "EC2Type_G4DN_2xLarge", "m7i-flex.large", "p5.48xlarge"])
    if p.kind == "region":
        return st.sampled_from(["us-east-1", "us_west_2", "eu-central-1", "ap-southeast-2"])
    return st.text(max_size=10) | st.integers(-10**9, 10**9) | st.booleans() | \
        st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def clause_value(draw, p):
    qualifier = draw(st.sampled_from(p.qualifiers))
    if qualifier == "unrestricted":
        return Q("unrestricted")
    if qualifier == "between":
        low, high = draw(_value(p)), draw(_value(p))
        return Q("between", (low, high))
    if qualifier in ("oneof", "not"):
        return Q(qualifier, tuple(draw(st.lists(_value(p), min_size=1, max_size=3))))
    return Q(qualifier, (draw(_value(p)),))


@st.composite
def contracts(draw):
    names = draw(st.lists(st.sampled_from(list(PARAMETERS)), max_size=8, unique=True))
    kwargs = {}
    manager_workers = draw(st.booleans())
    if manager_workers:
        kwargs["cluster_type"] = "ManagerWorkers"
    for name in names:
        if name == "cluster_type" and manager_workers:
            continue
        p = PARAMETERS[name]
        role = draw(st.sampled_from([None, "manager", "worker"])) if manager_workers and p.scope == "node" else None
        kwargs[f"{role}__{name}" if role else name] = draw(clause_value(p))
    name = draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True))
    try:
        return cluster(name, **kwargs)
    except ContractError:
        assume(False)


@settings(max_examples=int(os.environ.get("CCDSL_FUZZ_EXAMPLES", 300)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(contracts())
def test_round_trip(contract) -> None:
    text = format_contract(contract)
    again = parse(text)[contract.name]
    assert without_positions(again) == contract, text
    for a, b in zip(again.clauses, contract.clauses):
        assert [type(v) for v in a.values] == [type(v) for v in b.values]
        assert all(not isinstance(v, float) or math.isfinite(v) for v in a.values)


@pytest.mark.parametrize("name", [n for n in EXAMPLES if "/bad/" not in n])  # bad files hold errors
def test_examples_round_trip(name: str) -> None:
    contracts, diagnostics = check(EXAMPLES[name])
    assert not any(d.severity == "error" for d in diagnostics)
    again = parse(format_contracts(contracts))
    assert {k: without_positions(v) for k, v in again.items()} == {k: without_positions(v)
                                                                   for k, v in contracts.items()}
