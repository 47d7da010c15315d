"""Every example of the documentation runs: each ```ccc block checks (and resolves, unless marked), each console
session prints what it quotes, each pycon session is a passing doctest, and each bash or python block marked
runnable exits 0.  The conventions are in ``doc_blocks.py``."""

from __future__ import annotations

import doctest
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ccdsl.cli import main
from doc_blocks import ROOT, Block, all_blocks, blocks, console_commands, doc_files, match_in_order

CCC = all_blocks("ccc")
CONSOLE = all_blocks("console")
PYCON_PAGES = sorted({b.path for b in all_blocks("pycon")})
RUNNABLE = [b for b in all_blocks("bash", "python", "sh", "shell") if b.mark == "run"]
BY_TEST = [b for b in all_blocks("bash", "python", "sh", "shell", "console", "pycon") if b.mark.startswith("run: by ")]


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "CCDSL_DATA_DIR": str(tmp_path / "data"), "CCDSL_REGION": "", "COLUMNS": "120"}


def _needs_mpi(body: str) -> None:
    if re.search(r"\bdeploy\b", body):
        pytest.importorskip("mpi4py")


def test_the_docs_have_examples_of_every_kind() -> None:
    """A regression guard for the parser of the pages: a fence it stops seeing would pass silently."""
    assert len(CCC) >= 10 and len(CONSOLE) >= 3 and PYCON_PAGES and RUNNABLE


@pytest.mark.parametrize("block", CCC, ids=lambda b: b.id)
def test_ccc_block_checks_and_resolves(block: Block, tmp_path, data_dir, capsys) -> None:
    mark = block.mark.removeprefix("ccc:").strip() if block.mark.startswith("ccc:") else ""
    path = tmp_path / "example.ccc"
    path.write_text(block.body)
    code = main(["check", str(path)])
    err = capsys.readouterr().err
    if mark == "error":
        assert code == 2 and ": error: " in err, err
        return
    assert code == 0, err
    if mark == "check-only":
        return
    catalogs = [a for c in re.findall(r"catalog=(\S+)", mark) for a in ("--catalog", str(ROOT / c))]
    code = main(["resolve", str(path), "--json", *catalogs])
    out = json.loads(capsys.readouterr().out)
    answers = out if isinstance(out, list) else [out]
    if mark == "unsatisfiable":
        assert code == 1 and all(a.get("error") == "unsatisfiable" for a in answers), answers
    else:
        assert code == 0 and all(a["node_count"] >= 1 for a in answers), answers


@pytest.mark.parametrize("block", CONSOLE, ids=lambda b: b.id)
def test_console_block_prints_what_it_quotes(block: Block, tmp_path) -> None:
    if block.mark.startswith("run: by "):
        pytest.skip(block.mark)
    _needs_mpi(block.body)
    commands = console_commands(block.body)
    assert commands, "a console block without a $ command"
    # one bash for the whole session (variables carry over), each command's output and exit code fenced off
    script = [f'ccdsl() {{ "{sys.executable}" -m ccdsl "$@"; }}', "export -f ccdsl"]
    for i, c in enumerate(commands):
        script += [f"echo '@@start {i}'", "{ " + c.line, "} 2>&1", f"echo \"@@rc {i} $?\""]
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for i, c in enumerate(commands):
        m = re.search(rf"^@@start {i}\n(.*?)^@@rc {i} (\d+)$", proc.stdout, re.S | re.M)
        assert m, f"{c.line!r} did not finish:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        assert int(m[2]) == c.exit_code, f"{c.line!r} exited {m[2]}, not {c.exit_code}:\n{m[1][-2000:]}"
        problem = match_in_order(c.expected, m[1].splitlines())
        assert problem is None, f"{c.line!r}: {problem}\nreal output:\n{m[1]}"


@pytest.mark.parametrize("page", PYCON_PAGES)
def test_pycon_blocks_are_passing_doctests(page: str, tmp_path, data_dir, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CCDSL_REGION", "")
    sessions = [b for b in blocks(ROOT / page) if b.lang == "pycon"]
    _needs_mpi("\n".join(b.body for b in sessions))
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    names: dict[str, object] = {}
    for b in sessions:
        text = re.sub(r"^([ \t]*)…[ \t]*$", r"\1...", b.body, flags=re.M)  # "…" alone abridges, as "..." does
        test = parser.get_doctest(text, names, b.id, b.path, b.line)
        runner.run(test, clear_globs=False)
    assert runner.summarize(verbose=False).failed == 0, "see the doctest report above"


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.id)
def test_runnable_block_runs(block: Block, tmp_path) -> None:
    _needs_mpi(block.body)
    if block.lang == "python":
        argv = [sys.executable, "-c", block.body]
    else:
        argv = ["bash", "-c", f'set -e\nccdsl() {{ "{sys.executable}" -m ccdsl "$@"; }}\n' + block.body]
    proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, env=_env(tmp_path))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.mark.parametrize("block", BY_TEST, ids=lambda b: b.id)
def test_blocks_run_by_their_own_test_name_one_that_exists(block: Block) -> None:
    name = block.mark.removeprefix("run: by ").strip()
    defined = "\n".join(p.read_text() for p in (ROOT / "tests").glob("test_*.py"))
    assert re.search(rf"^def {re.escape(name)}\(", defined, re.M), f"{block.id}: no test named {name}"


def test_every_fence_is_of_a_known_kind() -> None:
    """A block in a language the tests do not know would be neither run nor highlighted: name it."""
    known = {"ccc", "console", "pycon", "bash", "python", "toml", "text", "csv", "json", ""}
    odd = [f"{b.id} ({b.lang})" for p in doc_files() for b in blocks(p) if b.lang not in known]
    assert not odd, odd


@pytest.mark.parametrize("block", all_blocks("toml"), ids=lambda b: b.id)
def test_toml_block_is_a_valid_config_or_catalog(block: Block, tmp_path) -> None:
    """A ``ccdsl.toml`` example loads as a configuration, a catalog example as a user catalog."""
    from ccdsl.catalog.user import read_records
    from ccdsl.executor.config import load

    path = tmp_path / "example.toml"
    path.write_text(block.body)
    if re.search(r"^\[\[instance\]\]", block.body, re.M):
        assert read_records(path)
    else:
        load(path)  # raises a ConfigError naming the key on a mistake
