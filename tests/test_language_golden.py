"""Golden contracts: every ``tests/contracts/ok/*.ccc`` parses to the values in its ``.json``; every
``tests/contracts/bad/*.ccc`` yields exactly the diagnostics of its ``.err.txt`` (``LINE:COL SEVERITY substring``
per line, in order).  Add a failure mode by adding a file pair."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccdsl.errors import ContractError
from ccdsl.language import check, load

HERE = Path(__file__).parent / "contracts"
OK = sorted((HERE / "ok").glob("*.ccc"))
BAD = sorted((HERE / "bad").glob("*.ccc"))


def _expected_diagnostics(path: Path) -> list[tuple[int, int, str, str]]:
    out = []
    for line in path.read_text().splitlines():
        if line.strip():
            where, severity, message = line.split(" ", 2)
            row, column = where.split(":")
            out.append((int(row), int(column), severity, message))
    return out


def _assert_diagnostics(diagnostics, expected, path: Path) -> None:
    got = [(d.line, d.column, d.severity, d.message) for d in diagnostics]
    assert len(got) == len(expected), "\n".join(d.render(path.read_text()) for d in diagnostics)
    for (line, column, severity, message), (eline, ecolumn, eseverity, fragment) in zip(got, expected):
        assert (line, column, severity) == (eline, ecolumn, eseverity), message
        assert fragment in message
    for d in diagnostics:
        assert d.path == str(path)


@pytest.mark.parametrize("path", OK, ids=[p.stem for p in OK])
def test_ok_contract(path: Path) -> None:
    contracts, diagnostics = check(path.read_text(encoding="utf-8"), str(path))
    err = path.with_suffix(".err.txt")
    _assert_diagnostics(diagnostics, _expected_diagnostics(err) if err.exists() else [], path)
    expected = json.loads(path.with_suffix(".json").read_text())
    assert list(contracts) == list(expected)
    for name, want in expected.items():
        c = contracts[name]
        got = [[cl.role, cl.parameter, cl.qualifier, list(cl.values)] for cl in c.clauses]
        assert got == want["clauses"], name
        assert [list(kv) for kv in c.config] == want.get("config", [])
        assert len(c.warnings) == want.get("warnings", 0)
        for cl in c.clauses:
            assert cl.span is not None and cl.span.path == str(path) and cl.span.text
    assert load(path) == contracts


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_contract(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    _, diagnostics = check(text, str(path))
    _assert_diagnostics(diagnostics, _expected_diagnostics(path.with_suffix(".err.txt")), path)
    with pytest.raises(ContractError) as info:
        load(path)
    assert list(info.value.diagnostics) == diagnostics
    rendered = info.value.render()
    assert rendered.count("^") >= sum(d.severity == "error" for d in diagnostics)


def test_every_bad_file_has_expectations() -> None:
    for path in BAD:
        assert path.with_suffix(".err.txt").exists(), path
    for path in OK:
        assert path.with_suffix(".json").exists(), path
