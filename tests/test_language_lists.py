"""Qualifier argument lists read outside Lark (``parser._collapsed``, issue 18: a 1 MiB ``@not(1, 2, …)`` took
2.5 s in Lark) give exactly what Lark gives: the same nodes (atoms, positions, clause text) and the same
diagnostics, for every layout the grammar allows and for broken text around and inside lists."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccdsl.language import parser
from contract_gen import Universe, contract_specs, layouts
from test_language_fuzz import ALPHABET, EXAMPLES, MUTATION, mutate

UNIVERSE = Universe(("t3.xlarge", "g4dn.xlarge", "c7g.large"), ("us-east-1", "eu-west-1"))
CHECKS = settings(max_examples=300, deadline=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def by_lark_alone(text: str) -> tuple:
    """``parse_ast`` with every list left to Lark (the parser as it was before the lists were read outside it)."""
    keep = parser._collapsed
    parser._collapsed = lambda t: (t, {})
    try:
        return parser.parse_ast(text)
    finally:
        parser._collapsed = keep


def assert_alike(text: str) -> None:
    assert parser.parse_ast(text) == by_lark_alone(text), repr(text)


@CHECKS
@given(st.data())
def test_generated_layouts_parse_as_lark_parses_them(data) -> None:
    specs = data.draw(contract_specs(UNIVERSE))
    assert_alike(data.draw(layouts(specs)).text)


LIST_PIECES = ALPHABET + ["@oneof(", "@not (", "@just\n(", ", ", ",", " # (x, @oneof(1\n", "\\\n", '"a,b"', '"x\\"',
                          "16G", "-1e3", ".5", "us_east_1", "@cluster(", "\r", "é"]


@CHECKS
@given(st.lists(st.sampled_from(LIST_PIECES), max_size=50).map("".join))
def test_list_soup_parses_as_lark_parses_it(text: str) -> None:
    assert_alike("c = @cluster(a => " + text)
    assert_alike("c = @cluster a => @oneof(" + text)


@CHECKS
@given(st.sampled_from(sorted(EXAMPLES)), st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_examples_parse_as_lark_parses_them(name: str, mutations) -> None:
    assert_alike(mutate(EXAMPLES[name], mutations))


@pytest.mark.parametrize("text", [
    'c = @cluster(node_count => @oneof(1, # x (\n 2 ,\\\n 4), a => @not ( "x\\"y",b ,c), z=>@oneof(3,\r\n4))\n',
    "c = @cluster x => @oneof(1,2)\nd = @cluster(y => @not(1, 2 3))\ne = @cluster z => @oneof(4, 5)\n",
    "c = @cluster(x => @oneof(1,\n2)\n",  # unclosed: the error points at the '(' of @cluster
    "c = @cluster x => @oneof(1,\n2) y => 3\n",
])
def test_written_lists_parse_as_lark_parses_them(text: str) -> None:
    nodes, _ = parser.parse_ast(text)
    assert_alike(text)
    assert parser._collapsed(text)[1] or not nodes  # the lists were read outside Lark when the text parses


def test_a_long_list_keeps_every_atom_and_position() -> None:
    values = [str(v) for v in range(1, 5001)]
    text = "c = @cluster(node_count => 2,\n  cluster_vcpus_count => @not(" + ",\n    ".join(values) + "))\n"
    (node,), diagnostics = parser.parse_ast(text)
    args = node.clauses[1].value.args
    assert not diagnostics and [a.text for a in args] == values
    assert (args[-1].pos.line, args[-1].pos.column) == (2 + 4999, 5)
    assert text[args[-1].pos.start:args[-1].pos.end] == "5000"
