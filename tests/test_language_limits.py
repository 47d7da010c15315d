"""Hostile or careless input to the language front end (issue 8, items 10, 11, 15, 16): ASCII digits only, terminal
escapes never echoed raw, reports capped at the first errors plus a count, and a size limit with memory linear in
the input.  Times are measured by ``benchmarks/bench_limits.py``, not asserted here."""

from __future__ import annotations

import tracemalloc

import pytest

import ccdsl
from ccdsl.cli import main
from ccdsl.errors import MAX_SHOWN, ContractError, ContractSyntaxError, Diagnostic, printable
from ccdsl.language import MAX_BYTES, check, parse


@pytest.mark.parametrize("text,char,ascii_digit", [
    ("c = @cluster(node_count => ٣)", "٣", "3"),
    ("c = @cluster(node_memory_size => @atleast(１６G))", "１", "1"),
    ("c = @cluster(node_count => 1٣)", "٣", "3"),
    ("c = @cluster(node_count => ৪)", "৪", "4"),
])
def test_only_ascii_digits_are_numbers(text: str, char: str, ascii_digit: str) -> None:
    with pytest.raises(ContractSyntaxError) as e:
        parse(text)
    (d,) = e.value.diagnostics
    assert "not an ASCII digit" in d.message and d.column == text.index(char) + 1
    assert d.hint == f"write {ascii_digit} instead of '{char}'"


def test_code_built_contracts_take_ascii_digits_only() -> None:
    with pytest.raises(ContractError, match="whole number"):
        ccdsl.cluster(node_count="٣")
    with pytest.raises(ContractError, match="size"):
        ccdsl.cluster(node_memory_size="１６G")
    assert ccdsl.cluster(node_count="3").clause("node_count").values == (3,)


ESC = "\x1b[2J\x1b[31mred\x07"


@pytest.mark.parametrize("text", [
    f'c = @cluster(accelerator => "{ESC}")',            # a value echoed in the message
    f'c = @cluster(node_count => 4 "{ESC}")',           # a syntax error on the line echoed under it
    'c = @cluster(node_count => 4, processor => "a\u202eb")',  # a bidi override
])
def test_terminal_escapes_in_a_contract_are_shown_escaped(text: str, capsys, tmp_path) -> None:
    f = tmp_path / "c.ccc"
    f.write_text(text)
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\x07" not in err and "\u202e" not in err
    assert "\\x1b" in err or "\\u202e" in err


def test_an_unsatisfiable_conflict_echoes_clause_text_escaped(capsys, tmp_path) -> None:
    f = tmp_path / "c.ccc"
    f.write_text(f'c = @cluster(node_machinetype => "t3.micro{ESC}")\n')
    assert main(["resolve", str(f)]) == 1
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b[2J" in err


def test_printable_is_idempotent_and_keeps_the_caret_aligned() -> None:
    assert printable(printable(ESC)) == printable(ESC) == "\\x1b[2J\\x1b[31mred\\x07"
    d = Diagnostic("m", line=1, column=5, end_column=8)
    _, line, caret = d.render('a\x1bb "xyz"').split("\n")
    assert line == '    a\\x1bb "xyz"' and caret.index("^") == line.index('"xyz"')


def test_a_report_shows_the_first_errors_and_counts_the_rest(capsys, tmp_path) -> None:
    f = tmp_path / "many.ccc"
    f.write_text("".join(f"c{i} = @cluster(nodez_count => 4)\n" for i in range(3000)))
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.count("error: unknown parameter") == MAX_SHOWN
    assert f"… and {3000 - MAX_SHOWN} more errors" in err and "3000 errors" in err
    with pytest.raises(ContractError) as e:
        ccdsl.load(f)
    assert len(e.value.diagnostics) == 3000 and len(e.value.render()) < 30_000


def test_a_long_line_is_shown_as_a_window_around_the_error(capsys, tmp_path) -> None:
    """A 95 KB line with 8,000 errors wrote the whole line once per error (over 1 GB)."""
    f = tmp_path / "oneline.ccc"
    f.write_text("c = @cluster(" + ", ".join(f"x{i} => 1" for i in range(8000)) + ")\n")
    assert main(["check", str(f)]) == 2
    err = capsys.readouterr().err
    assert len(err) < 50 * 400 and "x49 => 1" in err and "x4000 " not in err


def test_input_over_the_limit_is_refused_before_it_is_read(capsys, tmp_path, monkeypatch) -> None:
    assert main(["check", "/dev/zero"]) == 2
    assert f"larger than the limit of {MAX_BYTES} bytes" in capsys.readouterr().err
    big = tmp_path / "big.ccc"
    big.write_text("c = @cluster(node_count => 4)\n" + "# padding\n" * (MAX_BYTES // 10))
    assert main(["check", str(big)]) == 2
    assert "CCDSL_MAX_CONTRACT_BYTES" in capsys.readouterr().err
    with pytest.raises(ContractError, match="larger than the limit"):
        parse("x" * (MAX_BYTES + 1))
    monkeypatch.setenv("CCDSL_MAX_CONTRACT_BYTES", str(4 * MAX_BYTES))
    assert main(["check", str(big)]) == 0
    monkeypatch.setenv("CCDSL_MAX_CONTRACT_BYTES", "lots")
    with pytest.raises(ContractError, match="not a whole number"):
        parse("c = @cluster(node_count => 4)")


def test_a_long_string_literal_takes_memory_linear_in_its_length(monkeypatch) -> None:
    """4 MB in one string took 1.9 GB (the regex engine kept state per character)."""
    monkeypatch.setenv("CCDSL_MAX_CONTRACT_BYTES", str(5 * MAX_BYTES))
    text = 'c = @cluster(node_count => 4, image_id => "' + "a" * (4 * MAX_BYTES) + '")\n'
    check("c = @cluster(node_count => 1)")  # the parser is built outside the measurement
    tracemalloc.start()
    try:
        contracts, diagnostics = check(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert diagnostics == [] and len(contracts["c"].config_dict()["image_id"]) == 4 * MAX_BYTES
    assert peak < 12 * len(text), peak  # a few copies of the text, not hundreds


def test_a_resolution_echoing_a_clause_shows_escapes(capsys, tmp_path) -> None:
    f = tmp_path / "c.ccc"
    f.write_text('c = @cluster(node_count => 2, node_machinetype => @not("a\x1b]0;owned\x07"))\n')
    assert main(["resolve", str(f)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and '@not("a\\x1b]0;owned\\x07")' in out
