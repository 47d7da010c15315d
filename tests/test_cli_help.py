"""Every command explains itself: a description line, what FILE/HANDLE/--json mean, an example, exit codes."""

from __future__ import annotations

import argparse

import pytest

from ccdsl.cli import build_parser, main


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from commands(sub, (*path, name))


ALL = sorted(commands(build_parser()), key=lambda x: x[0])


@pytest.mark.parametrize("path,parser", ALL, ids=[" ".join(p) for p, _ in ALL])
def test_each_command_has_a_description_an_example_or_exit_codes_and_explained_arguments(path, parser) -> None:
    text = parser.format_help()
    _usage, _, rest = text.partition("\n\n")
    assert rest.splitlines()[0].endswith("."), text  # the description line, right under the usage
    assert "exit codes:" in text, text
    for action in parser._actions:
        if action.dest in ("file", "files", "handle", "json"):
            assert action.help, (path, action.dest)


def test_the_main_commands_show_an_example_and_their_exit_codes(capsys) -> None:
    for argv, wanted in ((["resolve"], ["ccdsl resolve examples/tutorial.ccc", "1 a contract is unsatisfiable"]),
                         (["run"], ["-- python -c", "-- hostname", "the program's (as mpiexec reports it)"]),
                         (["catalog", "list"], ["--region R", "only this provider", "at least N vCPUs"]),
                         ([], ["examples:", "exit codes: 0 success"])):
        with pytest.raises(SystemExit) as done:
            main([*argv, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        for w in wanted:
            assert w in out, (argv, w, out)


def test_help_explains_handle_and_file(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["nodes", "--help"])
    assert "a cluster's handle: the 15-letter name `ccdsl deploy` prints" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["deploy", "--help"])
    out = capsys.readouterr().out
    assert "a contract file (.ccc)" in out
    assert "--catalog PATH" in out and "--region R" in out and "--any-region" in out


def test_deploy_resolves_with_the_same_options_as_resolve(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CCDSL_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "c.ccc").write_text("c = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)\n"
                                    "lab = @cluster(node_provider => SSH, node_count => 2)\n")
    assert main(["deploy", str(tmp_path / "c.ccc"), "--contract", "c", "--region", "mars-1"]) == 2
    assert "unknown region 'mars-1'" in capsys.readouterr().err  # nothing was created: resolved first
    assert main(["deploy", str(tmp_path / "c.ccc"), "--contract", "lab"]) == 1
    assert "the catalog has no 'ssh' rows" in capsys.readouterr().err
    assert main(["deploy", str(tmp_path / "c.ccc"), "--contract", "lab", "--catalog", "examples/lab_hosts.toml"]) == 1
    err = capsys.readouterr().err
    assert "deploying zen3 × 2 (ssh lab)" in err and "the catalog has no" not in err
    assert main(["clusters", "--all", "--json"]) == 0
    assert all(c["status"] != "running" for c in __import__("json").loads(capsys.readouterr().out))


def test_the_files_the_help_examples_name_exist() -> None:
    import re
    from pathlib import Path

    from ccdsl.cli import EPILOGS

    root = Path(__file__).resolve().parents[1]
    named = {m for text in [build_parser().epilog, *EPILOGS.values()] for m in re.findall(r"examples/\S+", text)}
    assert named and all((root / m).exists() for m in named), named
