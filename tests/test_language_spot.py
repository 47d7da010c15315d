"""Spot in the language (issue 14): percent literals (``10%`` = 0.10) for the ``spot_interruption`` rate, with
positioned errors for bad ones; ``spot`` is true or false; ``worker.spot`` / ``manager.spot`` scope it to a role of a
ManagerWorkers cluster; a ``spot_interruption`` bound on nodes that are all on-demand is a checker error."""

from __future__ import annotations

import pytest

from ccdsl.cli import main
from ccdsl.contract import Clause
from ccdsl.errors import ContractError
from ccdsl.language import atmost, cluster, parse
from ccdsl.language.printer import format_contract

SPOT = "spot => true"


def error_of(text: str):
    with pytest.raises(ContractError) as info:
        parse(text)
    errors = [d for d in info.value.diagnostics if d.severity == "error"]
    assert errors, info.value.diagnostics
    return errors[0], info.value


@pytest.mark.parametrize(("written", "value"), [("10%", 0.1), ("5%", 0.05), ("0%", 0.0), ("100%", 1.0),
                                                 ("12.5%", 0.125), ("0.1", 0.1), ("1", 1), ("15%", 0.15)])
def test_percent_literals_are_rates(written: str, value: float) -> None:
    c = parse(f"c = @cluster({SPOT}, spot_interruption => @atmost({written}))")["c"]
    assert c.clause("spot_interruption") == Clause("spot_interruption", "atmost", (value,), span=c.clauses[0].span)
    assert c.clause("spot_interruption").values == (pytest.approx(value, abs=0),)


@pytest.mark.parametrize(("value", "message", "hint"), [
    ("150%", "spot_interruption is a rate between 0% and 100%, not 150%", "10%"),
    ("10", "spot_interruption is a rate between 0% and 100%, not 10 (1000%)", "did you mean 10%?"),
    ("-5%", "spot_interruption is a rate between 0% and 100%, not -5%", None),
    ("10G", "spot_interruption is a rate and takes '%' or no suffix, but '10G' has 'G'", "10%"),
])
def test_bad_rates_are_errors_at_the_value(value: str, message: str, hint: str | None) -> None:
    text = f"c = @cluster({SPOT},\n  spot_interruption => @atmost({value}))"
    d, err = error_of(text)
    assert d.message == message
    assert (d.line, d.column, d.end_column) == (2, 32, 32 + len(value))
    if hint:
        assert hint in (d.hint or "")
    assert "^" * len(value) in err.render() or "^" + "~" * (len(value) - 1) in err.render()


def test_a_percentage_of_a_size_or_a_count_is_an_error() -> None:
    d, _ = error_of("c = @cluster(node_memory_size => @atleast(10%))")
    assert "node_memory_size is a size, not a rate: '10%' cannot be a percentage" in d.message
    assert (d.line, d.column) == (1, 43)
    d, _ = error_of("c = @cluster(node_count => 10%)")
    assert "'10%' cannot be a percentage" in d.message


def test_check_shows_the_percent_error_with_a_caret(tmp_path, capsys) -> None:
    path = tmp_path / "bad.ccc"
    path.write_text(f"c = @cluster({SPOT}, spot_interruption => @atmost(150%))\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1:57: error: spot_interruption is a rate between 0% and 100%, not 150%" in err
    assert "^~~~" in err


def test_a_percent_sign_alone_is_a_syntax_error_with_a_position() -> None:
    d, _ = error_of("c = @cluster(node_count => %)")
    assert (d.line, d.column) == (1, 28)


def test_interruption_bound_without_spot_is_an_error_with_a_hint() -> None:
    d, _ = error_of("c = @cluster(node_count => 2,\n  spot_interruption => @atmost(10%))")
    assert d.message == ("spot_interruption bounds the interruption rate of spot nodes, but this contract's nodes "
                         "are on-demand")
    assert (d.line, d.column) == (2, 3) and "spot => true" in d.hint
    d, _ = error_of("c = @cluster(cluster_type => ManagerWorkers, worker.spot => true, "
                    "manager.spot_interruption => @atmost(10%))")
    assert "but the manager is on-demand" in d.message and "manager.spot => true" in d.hint
    ok = parse("c = @cluster(cluster_type => ManagerWorkers, worker.spot => true, "
               "spot_interruption => @atmost(10%))")["c"]  # unscoped: bounds the spot workers
    assert ok.spot_roles == ("worker",)


def test_spot_is_true_or_false_and_may_be_scoped_to_a_role() -> None:
    d, _ = error_of("c = @cluster(spot => 5)")
    assert d.message == "spot takes true or false, not the number 5"
    assert parse("c = @cluster(spot => false)")["c"].spot_roles == ()
    assert parse("c = @cluster(spot => true)")["c"].spot_roles == (None,)
    mw = "cluster_type => ManagerWorkers"
    assert parse(f"c = @cluster({mw}, spot => true)")["c"].spot_roles == ("worker", "manager")
    assert parse(f"c = @cluster({mw}, worker.spot => true)")["c"].spot_roles == ("worker",)
    assert parse(f"c = @cluster({mw}, spot => true, worker.spot => false)")["c"].spot_roles == ("manager",)
    d, _ = error_of("c = @cluster(worker.spot => true)")
    assert "only applies to a ManagerWorkers cluster" in d.message


def test_role_scoped_spot_passes_the_configuration_checks(tmp_path, capsys, data_dir) -> None:
    path = tmp_path / "mw.ccc"
    path.write_text("mw = @cluster(cluster_type => ManagerWorkers, worker.spot => true, "
                    "worker.node_vcpus_count => @atleast(2))\n")
    assert main(["check", str(path)]) == 0
    path.write_text("mw = @cluster(cluster_type => ManagerWorkers, worker.image_id => \"ami-1\")\n")
    assert main(["check", str(path)]) == 2
    assert "configuration applies to the whole cluster" in capsys.readouterr().err


def test_code_and_text_agree_and_print_back() -> None:
    text = parse("c = @cluster(cluster_type => ManagerWorkers, worker.spot => true, "
                 "spot_interruption => @atmost(10%))")["c"]
    code = cluster("c", cluster_type="ManagerWorkers", worker__spot=True, spot_interruption=atmost("10%"))
    assert [(x.parameter, x.qualifier, x.values, x.role) for x in code.clauses] == [
        (x.parameter, x.qualifier, x.values, x.role) for x in text.clauses]
    assert code.config == text.config == (("worker.spot", True),)
    again = parse(format_contract(text))["c"]
    assert [(x.parameter, x.values) for x in again.clauses] == [(x.parameter, x.values) for x in text.clauses]
    assert again.config == text.config
    with pytest.raises(ContractError, match="between 0% and 100%"):
        cluster("c", spot=True, spot_interruption=atmost("150%"))
