"""Issue 20, item 5: what every subcommand's --help says about exit codes is what it does.

Each failure below is run twice: with ``--debug`` to see which ccdsl error it is, and plainly for the exit code.
The help of that subcommand must list the code, and describe it with the error's kind (a CatalogError's code must
read "catalog"): the old help said 1 for a catalog error that exits 2."""

from __future__ import annotations

import re

import pytest

from ccdsl.cli import build_parser, main
from ccdsl.errors import CcdslError, input_kinds


def subparsers(parser, path=""):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, p in action.choices.items():
                full = f"{path} {name}".strip()
                yield full, p
                yield from subparsers(p, full)


HELP = dict(subparsers(build_parser()))


def codes(command: str) -> dict[str, str]:
    """The exit codes a subcommand's help lists: code -> its description."""
    line = next(x for x in (HELP[command].epilog or "").splitlines() if x.startswith("exit codes:"))
    body = line.removeprefix("exit codes:")
    parts = re.split(r",\s*(?=(?:\d+|the program's) )", body.strip())
    return {p.split(" ", 1)[0]: p.split(" ", 1)[1] for p in parts}


def test_every_subcommand_documents_usage_and_interrupt_codes() -> None:
    for command in HELP:
        if command in ("catalog",):  # a group: its subcommands run
            continue
        listed = codes(command)
        assert "2" in listed and "130" in listed, command


def test_the_input_kinds_are_read_from_the_error_hierarchy() -> None:
    assert set(input_kinds()) == {"contract", "catalog", "config", "state"}
    for cls in (c for c in CcdslError.__subclasses__() if c.exit_code == 2):
        assert cls.__name__.removesuffix("Error").lower() in codes("catalog refresh")["2"]


@pytest.fixture()
def files(tmp_path, monkeypatch):
    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CCDSL_CONFIG", raising=False)
    (tmp_path / "bad.csv").write_text("instance_type,vcpus\nx,abc\n")
    (tmp_path / "bad.ccc").write_text("c = @cluster(node_count => -1)\n")
    (tmp_path / "unsat.ccc").write_text("c = @cluster(accelerator => A10G, accelerator_compute_capability => "
                                        "@atleast(8.9))\n")
    return tmp_path


CASES = [
    ("catalog show", ["catalog", "show", "no.such"]),
    ("catalog list", ["catalog", "list", "--sort", "bogus"]),
    ("catalog add", ["catalog", "add", "{tmp}/bad.csv"]),
    ("catalog remove", ["catalog", "remove", "nothing_here"]),
    ("catalog refresh", ["catalog", "refresh", "--provider", "aws", "--from", "price-list", "--region", "mars-1"]),
    ("resolve", ["resolve", "{tmp}/unsat.ccc"]),
    ("resolve", ["resolve", "{tmp}/bad.ccc"]),
    ("select", ["select", "{tmp}/unsat.ccc"]),
    ("deploy", ["deploy", "{tmp}/missing.ccc"]),
    ("nodes", ["nodes", "AAAAAAAAAAAAAAA"]),
    ("terminate", ["terminate", "AAAAAAAAAAAAAAA"]),
]


@pytest.mark.parametrize(("command", "argv"), CASES, ids=[" ".join(a[:3]) for _, a in CASES])
def test_help_and_behaviour_agree(files, capsys, command, argv) -> None:
    argv = [a.format(tmp=files) for a in argv]
    try:  # an unsatisfiable contract is an answer (exit 1), not an exception
        main(["--debug", *argv])
        error = None
    except CcdslError as exc:
        error = exc
    code = main(argv)
    capsys.readouterr()
    assert code != 0
    listed = codes(command)
    assert str(code) in listed, (command, code, listed)
    if error is not None:
        assert code == error.exit_code
    if error is not None and code == 2:  # an input ccdsl cannot use: the help says which kinds
        kind = next(k for k in input_kinds() if isinstance(error, _error_class(k)))
        assert kind in listed["2"], (command, kind, listed["2"])


def _error_class(kind: str) -> type:
    import ccdsl.errors as errors

    return {"contract": errors.ContractError, "catalog": errors.CatalogError, "config": errors.ConfigError,
            "state": errors.StateError}[kind]
