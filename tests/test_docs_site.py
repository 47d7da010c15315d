"""The documentation's references are generated from the code (tools/docgen.py through the mkdocs hook): a parameter
added to ccdsl/parameters.py reaches the site with no other edit, and every command, config key, error and grammar
rule is on its page."""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import docgen

PROBE = ('    _p("docs_probe_gpus_count", "count", "node", column="accelerator_count", unit="accelerators",\n'
         '       doc="a parameter only this test adds, to see it reach the site"),\n')


def _copy_with_a_new_parameter(tmp_path: Path) -> Path:
    """The repository's sources and docs in ``tmp_path``, with one row more in ccdsl/parameters.py's table."""
    copy = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("ccdsl", "tools", "docs", "grammar"):
        shutil.copytree(ROOT / d, copy / d, ignore=ignore)
    for f in ("README.md", "ARCHITECTURE.md", "mkdocs.yml", "pyproject.toml"):
        shutil.copy2(ROOT / f, copy / f)
    table = copy / "ccdsl" / "parameters.py"
    text = table.read_text()
    assert "\n_ALL = [\n" in text, "the parameter table moved: update this test"
    table.write_text(text.replace("\n_ALL = [\n", "\n_ALL = [\n" + PROBE, 1))
    return copy


def _run(copy: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(copy), "NO_MKDOCS_2_WARNING": "1"}  # the copy's ccdsl, not this one
    return subprocess.run([sys.executable, *argv], cwd=copy, capture_output=True, text=True, timeout=600, env=env)


def test_a_parameter_added_to_the_table_is_on_the_generated_page(tmp_path) -> None:
    copy = _copy_with_a_new_parameter(tmp_path)
    proc = _run(copy, "tools/docgen.py", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "out" / "reference" / "parameters.md").read_text()
    assert "### `docs_probe_gpus_count`" in page
    assert "a parameter only this test adds, to see it reach the site" in page
    assert "docs_probe" not in docgen.parameters_page()  # this checkout's page is not the copy's


def test_a_parameter_added_to_the_table_reaches_the_built_site(tmp_path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("mkdocstrings_handlers.python")
    copy = _copy_with_a_new_parameter(tmp_path)
    proc = _run(copy, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    html = (tmp_path / "site" / "reference" / "parameters" / "index.html").read_text()
    assert "docs_probe_gpus_count" in html
    assert "a parameter only this test adds, to see it reach the site" in html


def test_every_parameter_and_symbol_is_on_the_parameter_page() -> None:
    from ccdsl import taxonomy
    from ccdsl.parameters import ALIASES, PARAMETERS

    page = docgen.parameters_page()
    for p in PARAMETERS.values():
        assert f"### `{p.name}`" in page and p.doc in page, p.name
    assert all(f"`{alias}`" in page for alias in ALIASES)
    for domain in taxonomy.domains():
        assert all(f"`{n.name}`" in page for n in taxonomy.nodes(domain)), domain


def test_every_command_is_on_the_cli_page() -> None:
    from ccdsl.cli import build_parser

    page = docgen.cli_page()
    commands = [path for path, _ in docgen._commands(build_parser(), "ccdsl")]
    assert len(commands) > 10
    for path in commands:
        assert f"## `{path}`" in page, path
    # the options of a command are its help's, as argparse prints them
    resolve = next(p for path, p in docgen._commands(build_parser(), "ccdsl") if path == "ccdsl resolve")
    for action in resolve._actions:
        if action.option_strings and action.help is not argparse.SUPPRESS:
            assert action.option_strings[-1] in page, action.option_strings


def test_every_config_key_is_on_the_config_page_with_its_default_and_range() -> None:
    from ccdsl.executor import config

    page = docgen.config_page()
    for name, cls in config.SECTIONS.items():
        assert f"## `[{name}]`" in page
        for f in dataclasses.fields(cls):
            assert f"| `{f.name}` |" in page, (name, f.name)
    assert "| `check_interval` | `60.0` | a number, 1 to 86400 |" in page
    assert "a number, at least 0.01" in page  # [aws] poll_interval


def test_every_error_is_on_the_exit_code_page() -> None:
    from ccdsl import errors

    page = docgen.exit_codes_page()
    stack = [errors.CcdslError]
    while stack:
        cls = stack.pop()
        assert f"`{cls.__name__}`" in page, cls
        stack.extend(cls.__subclasses__())
    assert "| `ContractError` | 2 |" in page.replace("↳ ", "").replace("&nbsp;", "")


def test_every_command_has_its_exit_codes_on_the_exit_code_page() -> None:
    from ccdsl.cli import build_parser

    page = docgen.exit_codes_page()
    for path, _ in list(docgen._commands(build_parser(), "ccdsl"))[1:]:
        assert f"| [`{path}`](cli.md#{path.replace(' ', '-')}) |" in page, path
    assert "1 a contract is unsatisfiable (the conflicting clauses are named)" in page


def test_the_grammar_page_is_the_grammar_file() -> None:
    assert (ROOT / "grammar" / "ccdsl.lark").read_text().rstrip() in docgen.grammar_page()


def test_the_front_page_is_the_readme_with_links_into_the_site() -> None:
    page = docgen.front_page()
    assert "](docs/" not in page
    body = page.split("-->\n\n", 1)[1]
    assert body.replace("](design/architecture.md)", "](ARCHITECTURE.md)") == \
        (ROOT / "README.md").read_text().replace("](docs/", "](")
