"""Issue 20, item 4: generations are ordered.  ``@atleast(Ampere)`` on accelerator_architecture, the same on
processor_microarchitecture within one maker's line, and accelerator_compute_capability as a number."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oracle
from ccdsl import taxonomy
from ccdsl.language import check
from ccdsl.resolver import resolve, select
from test_resolver import C, contract, frame, gpu

ROWS = frame(
    gpu("p3.2xlarge", "V100", "Volta", 16.0, 3.06, vcpus=8),
    gpu("g4dn.xlarge", "T4", "Turing", 16.0, 0.526, vcpus=4),
    gpu("g5.xlarge", "A10G", "Ampere", 22.35, 1.006, vcpus=4),
    gpu("g6.xlarge", "L4", "Ada Lovelace", 22.35, 0.8048, vcpus=4),
    gpu("p5.48xlarge", "H100", "Hopper", 80.0, 55.04, count=8, vcpus=192),
    {"instance_type": "inf2.xlarge", "accelerator_count": 1, "accelerator_type": "NPU",
     "accelerator_manufacturer": "AWS", "accelerator_model": "Inferentia2", "accelerator_architecture": "NeuronCore-v2",
     "accelerator_memory_gib": 32.0, "price_per_hour": 0.7582, "vcpus": 4},
    {"instance_type": "m6i.large", "cpu_manufacturer": "Intel", "cpu_microarchitecture": "Ice Lake",
     "price_per_hour": 0.096},
    {"instance_type": "m7i.large", "cpu_manufacturer": "Intel", "cpu_microarchitecture": "Sapphire Rapids",
     "price_per_hour": 0.1008},
    {"instance_type": "m5.large", "cpu_manufacturer": "Intel", "cpu_microarchitecture": "Skylake",
     "price_per_hour": 0.096},
    {"instance_type": "m7a.large", "cpu_manufacturer": "AMD", "cpu_microarchitecture": "Zen 4",
     "price_per_hour": 0.05},
    {"instance_type": "c7gn.large", "cpu_manufacturer": "AWS", "cpu_microarchitecture": "Graviton3E",
     "price_per_hour": 0.04},
    {"instance_type": "m8g.large", "cpu_manufacturer": "AWS", "cpu_microarchitecture": "Graviton4",
     "price_per_hour": 0.045},
)


def types(*clauses) -> set[str]:
    return {x.instance_type for x in select(contract(*clauses), ROWS)}


def test_accelerator_generations_are_ordered_by_cuda_generation() -> None:
    arch = "accelerator_architecture"
    assert types(C(arch, "atleast", "Ampere")) == {"g5.xlarge", "g6.xlarge", "p5.48xlarge"}
    assert types(C(arch, "atmost", "Turing")) == {"p3.2xlarge", "g4dn.xlarge"}
    assert types(C(arch, "between", "Turing", "AdaLovelace")) == {"g4dn.xlarge", "g5.xlarge", "g6.xlarge"}
    # an Inferentia (or any other maker's chip) never meets an NVIDIA generation bound, either side
    assert "inf2.xlarge" not in types(C(arch, "atleast", "Kepler")) | types(C(arch, "atmost", "Blackwell"))


def test_processor_generations_stay_within_one_makers_line() -> None:
    micro = "processor_microarchitecture"
    assert types(C(micro, "atleast", "IceLake")) == {"m6i.large", "m7i.large"}
    assert types(C(micro, "atmost", "CascadeLake")) == {"m5.large"}
    assert types(C(micro, "atleast", "Zen3")) == {"m7a.large"}
    assert types(C(micro, "atleast", "Graviton3")) == {"c7gn.large", "m8g.large"}  # 3E ranks as a Graviton3
    assert types(C(micro, "atmost", "Graviton3")) == {"c7gn.large"}


def test_compute_capability_is_a_number_per_model() -> None:
    cc = "accelerator_compute_capability"
    assert types(C(cc, "atleast", 8.9)) == {"g6.xlarge", "p5.48xlarge"}  # A10G is 8.6
    assert types(C(cc, "atleast", 8.0)) == {"g5.xlarge", "g6.xlarge", "p5.48xlarge"}
    assert "inf2.xlarge" not in types(C(cc, "atmost", 100))  # no compute capability: meets no bound


@pytest.mark.parametrize("clause", [
    C("accelerator_architecture", "atleast", "Ampere"), C("accelerator_architecture", "between", "Volta", "Ampere"),
    C("processor_microarchitecture", "atleast", "IceLake"), C("processor_microarchitecture", "atmost", "Graviton3"),
    C("accelerator_compute_capability", "between", 7.5, 8.6),
])
def test_the_oracle_agrees(clause) -> None:
    c = contract(clause)
    assert resolve(c, ROWS).price_per_hour == pytest.approx(oracle.optimum(ROWS, c).cost)
    want = {(a.worker["instance_type"]) for a in oracle.solutions(ROWS, c)}
    assert {x.instance_type for x in select(c, ROWS)} == want


LINES = [(domain, line) for domain in taxonomy.ORDERS for line in taxonomy.ORDERS[domain]]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.sampled_from(LINES), st.data())
def test_bounds_are_monotone_and_split_each_line(where, data) -> None:
    """@atleast(X) grows as X gets older; @atleast(X) and @atmost(X) together cover the line and meet at X."""
    domain, line = where
    names = taxonomy.line_names(domain, line)
    i, j = sorted(data.draw(st.lists(st.integers(0, len(names) - 1), min_size=2, max_size=2)))
    older, newer = names[i], names[j]

    def labels(q, *n):
        return taxonomy.ordered_labels(domain, q, n)

    assert labels("atleast", newer) <= labels("atleast", older)
    assert labels("atmost", older) <= labels("atmost", newer)
    assert labels("between", older, newer) == labels("atleast", older) & labels("atmost", newer)
    everything = frozenset().union(*(taxonomy.covered_labels(domain, n) for n in names))
    assert labels("atleast", older) | labels("atmost", older) == everything
    assert taxonomy.covered_labels(domain, older) <= labels("atleast", older) & labels("atmost", older)


def test_the_orders_cover_every_generation_the_taxonomy_knows() -> None:
    """Every NVIDIA architecture and every Xeon, EPYC and Graviton microarchitecture has a place in its line, and
    every NVIDIA model a compute capability (the data are complete, not a sample)."""
    ordered = {n for lines in taxonomy.ORDERS.values() for line in lines.values() for g in line for n in g}
    nvidia = [n for n in taxonomy.nodes("accelerator") if n.parent == "NVIDIA"]
    assert {n.name for n in nvidia} <= ordered
    assert {n.name for n in taxonomy.nodes("accelerator", ("model",))
            if "NVIDIA" in [a.name for a in taxonomy.ancestors(n)]} == set(taxonomy.COMPUTE_CAPABILITY)
    for group in ("Xeon", "Zen", "Graviton"):
        assert {n.name for n in taxonomy.nodes("processor", ("microarchitecture",)) if n.parent == group} <= ordered


@pytest.mark.parametrize(("text", "message", "column"), [
    ("processor_microarchitecture => @atleast(Zen)", "Zen has no order", 54),
    ("accelerator_architecture => @atmost(NeuronCoreV2)", "NeuronCoreV2 has no order", 50),
    ("processor_microarchitecture => @between(IceLake, Zen4)", "mixes two lines (Xeon and Zen)", 45),
    ("accelerator_architecture => @between(Hopper, Ampere)", "is empty: Hopper is newer than Ampere", 42),
    ("accelerator => @atleast(A100)", "accelerator cannot take @atleast", 29),
])
def test_check_explains_a_bound_on_a_symbol_without_an_order(text, message, column) -> None:
    _, diagnostics = check(f"c = @cluster({text})\n")
    (d,) = diagnostics
    assert message in d.message and (d.line, d.column) == (1, column)
    assert d.hint


def test_done_when_on_the_shipped_catalog(tmp_path, capsys, monkeypatch) -> None:
    from ccdsl.cli import main

    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CCDSL_REGION", raising=False)
    f = tmp_path / "g.ccc"
    f.write_text("a = @cluster(accelerator_architecture => @atleast(Ampere), accelerator_count => @just(1))\n"
                 "b = @cluster(accelerator => A10G, accelerator_compute_capability => @atleast(8.9))\n")
    assert main(["resolve", str(f), "--json", "--contract", "a"]) == 0
    a = json.loads(capsys.readouterr().out)
    assert (a["instance_type"], a["price_per_hour"]) == ("g6.xlarge", 0.8048)
    assert main(["resolve", str(f), "--contract", "b"]) == 1
    assert "accelerator_compute_capability => @atleast(8.9)" in capsys.readouterr().err


def test_the_language_reference_lists_the_new_parameters() -> None:
    from ccdsl.language.reference import parameter_table

    table = parameter_table()
    assert "| `accelerator_compute_capability` | per node | number (no unit) |" in table
    assert "| `burstable` | per node | true or false | @just |" in table
    assert "@atleast @atmost @between" in next(x for x in table.splitlines() if "`accelerator_architecture`" in x)
