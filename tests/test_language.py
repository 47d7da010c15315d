"""The contract language: the seed's tutorial, text == ccdsl.cluster(), files that cannot be read, the parser
cache, syntax error labels, units and machine type names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ccdsl
from ccdsl.contract import Clause
from ccdsl.errors import ContractError, ContractSyntaxError
from ccdsl.language import (
    atleast,
    atmost,
    between,
    check,
    cluster,
    just,
    load,
    not_,
    oneof,
    parse,
    unrestricted,
    without_positions,
)
from ccdsl.language import parser as language_parser
from ccdsl.language.values import machinetype_name

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.ccc"))


def clauses(contract) -> list[tuple]:
    return [(c.role, c.parameter, c.qualifier, c.values) for c in contract.clauses]


# --- the seed's tutorial ------------------------------------------------------------------------------------------

def test_tutorial_contracts() -> None:
    contracts = load(ROOT / "examples" / "tutorial.ccc")
    assert list(contracts) == ["my_first_cluster_contract", "my_second_cluster_contract", "mw"]
    assert clauses(contracts["my_first_cluster_contract"]) == [
        (None, "node_count", "just", (4,)), (None, "node_machinetype", "just", ("t3.xlarge",))]
    assert clauses(contracts["my_second_cluster_contract"]) == [
        (None, "node_count", "just", (8,)), (None, "accelerator_count", "just", (1,)),
        (None, "accelerator_architecture", "just", ("Turing",)), (None, "accelerator_memory", "atleast", (16.0,))]
    mw = contracts["mw"]
    assert mw.cluster_type == "ManagerWorkers"
    assert clauses(mw) == [
        (None, "cluster_type", "just", ("ManagerWorkers",)), (None, "node_count", "just", (8,)),
        ("manager", "node_machinetype", "just", ("t3.xlarge",)), ("worker", "accelerator_count", "just", (8,)),
        ("worker", "accelerator_architecture", "just", ("AdaLovelace",)),
        ("worker", "node_memory_size", "atleast", (512.0,))]
    assert {c.parameter for c in mw.clauses_for("manager")} == {"node_machinetype"}
    first = contracts["my_first_cluster_contract"].clauses[0]
    assert (first.span.line, first.span.column, first.span.text) == (4, 39, "node_count => 4")


def test_seed_spelling_parses_with_warnings() -> None:
    contracts, diagnostics = check((ROOT / "examples" / "seed_spellings.ccc").read_text())
    seed = contracts["my_second_cluster_contract"]
    tutorial = load(ROOT / "examples" / "tutorial.ccc")["my_second_cluster_contract"]
    assert without_positions(seed) == without_positions(tutorial)
    assert seed.warnings == ("'nodes_count' is the seed's spelling of node_count; prefer 'node_count'",)
    assert [d.severity for d in diagnostics] == ["warning"] * 4


def test_every_example_is_valid() -> None:
    assert len(EXAMPLES) >= 13
    names = set()
    for path in EXAMPLES:
        contracts, diagnostics = check(path.read_text(), str(path))
        assert not [d for d in diagnostics if d.severity == "error"], path
        assert contracts, path
        names |= set(contracts)
    assert {"infeasible", "my_first_cluster_contract", "mw"} <= names


# --- ccdsl.cluster() builds the same contracts ------------------------------------------------------------------

BUILT = {
    "my_first_cluster_contract": lambda: cluster("my_first_cluster_contract", node_count=4,
                                                 node_machinetype="EC2Type_T3_xLarge"),
    "my_second_cluster_contract": lambda: cluster("my_second_cluster_contract", node_count=8,
                                                  accelerator_count=just(1), accelerator_architecture="Turing",
                                                  accelerator_memory=atleast("16G")),
    "mw": lambda: cluster("mw", cluster_type="ManagerWorkers", node_count=8,
                          manager__node_machinetype="EC2Type_T3_xLarge",
                          worker={"accelerator_count": just(8), "accelerator_architecture": "Ada",
                                  "node_memory_size": atleast(512)}),
    "cpu_batch": lambda: cluster("cpu_batch", node_count=between(2, 16), cluster_vcpus_count=atleast(256),
                                 processor_architecture="x86_64", node_process_count=1),
    "zen4_solver": lambda: cluster("zen4_solver", node_count=2, processor_microarchitecture="Zen4",
                                   node_vcpus_count=between(32, 96),
                                   cluster_locale=not_("us-west-1", "us-west-2")),
    "budgeted": lambda: cluster("budgeted", node_count=between(1, 8), cluster_vcpus_count=atleast(64),
                                cluster_memory_size=atleast("256G"), cluster_price_per_hour=atmost(10.5)),
    "graviton_new": lambda: cluster("graviton_new", processor_microarchitecture=oneof("Graviton3", "Graviton4"),
                                    node_vcpus_count=atleast(16 * 4)),
    "trainer": lambda: cluster("trainer", cluster_type="ManagerWorkers", node_count=4, node_provider="AmazonEC2",
                               manager__node_machinetype="EC2Type_T3_Large",
                               worker__accelerator_architecture="Turing", worker__accelerator_count=1,
                               worker__node_vcpus_count=atleast(4),
                               user="ubuntu"),
    "cheap_nodes": lambda: cluster("cheap_nodes", node_count=4, node_vcpus_count=atleast(4),
                                   node_price=atmost(0.25)),
    "hpc_network": lambda: cluster("hpc_network", cluster_type="PeerWorkersMPI", node_count=4,
                                   network_performance=atleast("100G"), node_vcpus_count=atleast(32),
                                   placement_group="cluster"),
}


@pytest.mark.parametrize("name", list(BUILT))
def test_text_and_code_give_equal_contracts(name: str) -> None:
    texts = {}
    for path in EXAMPLES:
        texts.update(load(path))
    assert without_positions(texts[name]) == BUILT[name]()


def test_cluster_defaults_and_helpers() -> None:
    c = ccdsl.cluster(node_count=2, storage_type=unrestricted(), node_memory_size="1.5T")
    assert c.name == "contract"
    assert clauses(c) == [(None, "node_count", "just", (2,)), (None, "storage_type", "unrestricted", ()),
                          (None, "node_memory_size", "just", (1536.0,))]
    assert cluster(storage_type=unrestricted) == cluster(storage_type=unrestricted())
    assert cluster(network_performance="500M").clause("network_performance").values == (0.5,)
    assert cluster(nodes_count=3).warnings == ("'nodes_count' is the seed's spelling of node_count; "
                                               "prefer 'node_count'",)


@pytest.mark.parametrize("text, kwargs", [
    ("node_count => -1", {"node_count": -1}),
    ("node_count => @between(8, 2)", {"node_count": between(8, 2)}),
    ("acelerator_count => 1", {"acelerator_count": 1}),
    ("accelerator => @atleast(T4)", {"accelerator": atleast("T4")}),
    ("accelerator_architecture => @atleast(NeuronCoreV2)", {"accelerator_architecture": atleast("NeuronCoreV2")}),
    ("accelerator_architecture => Turign", {"accelerator_architecture": "Turign"}),
    ("node_count => 4K", {"node_count": "4K"}),
    ("node_count => 2.5", {"node_count": 2.5}),
    ("manager.node_machinetype => \"t3.large\"", {"manager__node_machinetype": "t3.large"}),
    ("boss.node_count => 1", {"boss__node_count": 1}),
])
def test_code_errors_have_the_text_messages(text: str, kwargs: dict) -> None:
    with pytest.raises(ContractError) as from_text:
        parse(f"contract = @cluster({text})")
    with pytest.raises(ContractError) as from_code:
        cluster(**kwargs)
    assert [d.message for d in from_code.value.diagnostics] == [d.message for d in from_text.value.diagnostics]
    assert all(d.line is None and d.column is None for d in from_code.value.diagnostics)


@pytest.mark.parametrize("kwargs, fragment", [
    ({"node_count": [1, 2]}, "not list"),
    ({"node_count": None}, "not NoneType"),
    ({"manager": "t3.large"}, "takes a dict"),
    ({"node_memory_size": float("inf")}, "not a number"),
    ({"node_count": 10**400}, "too large"),
])
def test_code_rejects_wrong_python_values(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ContractError) as info:
        cluster(**kwargs)
    assert fragment in str(info.value)


def test_contract_name_in_code_must_be_a_name() -> None:
    with pytest.raises(ContractError, match="must be a name"):
        cluster("my contract", node_count=1)


# --- errors ---------------------------------------------------------------------------------------------------------

def test_parse_collects_every_error() -> None:
    text = "a = @cluster(node_count 4)\nb = @cluster(node_count => 0)\nc = @cluster(x => 1)\n"
    with pytest.raises(ContractSyntaxError) as info:
        parse(text, "f.ccc")
    assert [(d.line, d.column) for d in info.value.diagnostics] == [(1, 25), (2, 28), (3, 14)]
    assert "(and 2 more)" in str(info.value)
    rendered = info.value.render()
    assert "f.ccc:2:28: error: node_count must be at least 1, not 0" in rendered
    assert "    b = @cluster(node_count => 0)\n                               ^" in rendered


def test_semantic_errors_raise_contract_error_not_syntax_error() -> None:
    with pytest.raises(ContractError) as info:
        parse("a = @cluster(node_count => 0)")
    assert not isinstance(info.value, ContractSyntaxError)
    assert isinstance(info.value, ccdsl.CcdslError) and info.value.exit_code == 2


def test_check_returns_the_good_contracts_and_never_raises() -> None:
    contracts, diagnostics = check("good = @cluster(node_count => 2)\nbad = @cluster(node_count => -2)\n")
    assert list(contracts) == ["good"]
    assert len(diagnostics) == 1


def test_labelled_syntax_examples_get_their_label() -> None:
    """Every example in CONTRACT_SYNTAX_ERRORS yields its own label, also as a later contract of a file: catches
    examples that collide on one parser state."""
    parser = language_parser.lark_parser()
    for label, examples in language_parser.CONTRACT_SYNTAX_ERRORS:
        for example in examples:
            for prefix in ("", "x = @cluster a => 1\n", "y = @cluster(a => 1)\n\n"):
                try:
                    parser.parse(prefix + example)
                except language_parser.UnexpectedToken as e:
                    assert language_parser._label(e) == label, (prefix + example)
                except language_parser.UnexpectedInput:
                    pass
                else:
                    pytest.fail(f"example parses: {example!r}")


def test_unreadable_files_are_contract_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ccc"
    with pytest.raises(ContractError, match="cannot read"):
        load(missing)
    with pytest.raises(ContractError, match="cannot read"):
        load(tmp_path)
    binary = tmp_path / "binary.ccc"
    binary.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    with pytest.raises(ContractError, match="binary file"):
        load(binary)
    latin1 = tmp_path / "latin1.ccc"
    latin1.write_bytes("c = @cluster(user => \"ren\xe9\")\n".encode("latin-1"))
    with pytest.raises(ContractError) as info:
        load(latin1)
    (d,) = info.value.diagnostics
    assert (d.line, d.column, d.path) == (1, 26, str(latin1))
    bom = tmp_path / "bom.ccc"
    bom.write_bytes("\ufeffc = @cluster(node_count => 2)\n".encode("utf-8"))
    assert list(load(bom)) == ["c"]


def test_bytes_are_checked_like_files() -> None:
    contracts, diagnostics = check(b"c = @cluster(node_count => 2)\n")
    assert list(contracts) == ["c"] and not diagnostics
    _, diagnostics = check(b"\xff\xfe")
    assert "not UTF-8" in diagnostics[0].message


# --- parser cache -------------------------------------------------------------------------------------------------

def _fresh_parse(env: dict) -> subprocess.CompletedProcess:
    code = "import ccdsl.language as l; print(sorted(l.parse('c = @cluster(node_count => 2)')))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env},
                          cwd=ROOT)


def test_parser_cache_is_written_and_reused(tmp_path: Path) -> None:
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    assert _fresh_parse(env).stdout.strip() == "['c']"
    (cache,) = (tmp_path / "ccdsl").glob("grammar-*.lark.pickle")
    stamp = cache.stat().st_mtime_ns
    assert _fresh_parse(env).stdout.strip() == "['c']"
    assert cache.stat().st_mtime_ns == stamp  # loaded, not rewritten
    assert not list((tmp_path / "ccdsl").glob("*.tmp"))


def test_parser_cache_that_cannot_be_used_is_ignored(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    proc = _fresh_parse({"XDG_CACHE_HOME": str(not_a_dir)})  # unwritable cache location
    assert proc.returncode == 0 and proc.stdout.strip() == "['c']", proc.stderr
    corrupt = tmp_path / "corrupt"
    assert _fresh_parse({"XDG_CACHE_HOME": str(corrupt)}).returncode == 0
    (cache,) = (corrupt / "ccdsl").glob("grammar-*")
    cache.write_bytes(b"garbage")
    proc = _fresh_parse({"XDG_CACHE_HOME": str(corrupt)})
    assert proc.returncode == 0 and proc.stdout.strip() == "['c']", proc.stderr


# --- values ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("symbol, name", [
    ("EC2Type_T3_xLarge", "t3.xlarge"), ("EC2Type_G4DN_2xLarge", "g4dn.2xlarge"),
    ("EC2Type_M7I_Flex_Large", "m7i-flex.large"), ("EC2Type_M7I_Metal_48xl", "m7i.metal-48xl"),
    ("EC2Type_P5_48xLarge", "p5.48xlarge"), ("EC2Type_C7GN_Metal", "c7gn.metal"), ("T3_xLarge", None),
    ("EC2Type_T3", None),
])
def test_machinetype_names(symbol: str, name: str | None) -> None:
    assert machinetype_name(symbol) == name


@pytest.mark.parametrize("text, parameter, value", [
    ("16G", "node_memory_size", 16.0), ("16", "node_memory_size", 16.0), ("512M", "node_memory_size", 0.5),
    ("1T", "storage_size", 1024.0), ("1P", "storage_size", 1024.0**2), ("1048576K", "node_memory_size", 1.0),
    ("25G", "network_performance", 25.0), ("500M", "network_performance", 0.5), ("100", "network_performance", 100.0),
    ("1T", "network_performance", 1000.0), ("10.5", "cluster_price_per_hour", 10.5), ("1e3", "node_count", 1000),
    ("4.0", "node_count", 4),
])
def test_units(text: str, parameter: str, value: float) -> None:
    c = parse(f"c = @cluster({parameter} => @atleast({text}))")["c"]
    (got,) = c.clause(parameter).values
    assert got == value and type(got) is type(value)


def test_clause_text_is_what_the_user_wrote() -> None:
    c = parse("c = @cluster(node_memory_size=>@atleast( 16G ))")["c"]
    assert c.clauses[0].text == "node_memory_size=>@atleast( 16G )"
    assert Clause("node_count", "between", (2, 8)).text == "node_count => @between(2, 8)"


def test_cluster_name_keyword_and_role_dict() -> None:
    a = cluster(name="mw", cluster_type="ManagerWorkers", manager={"node_vcpus_count": 2},
                worker__node_vcpus_count=atleast(8))
    b = without_positions(parse("mw = @cluster(cluster_type => ManagerWorkers, manager.node_vcpus_count => 2,\n"
                                "              worker.node_vcpus_count => @atleast(8))")["mw"])
    assert a == b and a.name == "mw"


def test_printer_writes_the_tutorial_as_the_tutorial_does() -> None:
    from ccdsl.language import format_contract

    text = (ROOT / "examples" / "tutorial.ccc").read_text()
    second = load(ROOT / "examples" / "tutorial.ccc")["my_second_cluster_contract"]
    assert format_contract(second) in text.replace("@just(1)", "1")  # @just is the default qualifier
    assert format_contract(cluster("c", network_performance=atleast("500M"), node_memory_size=between(0.5, 16))) == (
        "c = @cluster(network_performance => @atleast(0.5),\n"
        "             node_memory_size => @between(0.5, 16G))")
