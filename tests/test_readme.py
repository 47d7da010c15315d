"""The README shows what users see: its quoted outputs are lines of the real output, and its shell session on this
machine runs as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def block_after(marker: str) -> str:
    """The first fenced block after ``marker`` in the README."""
    tail = README[README.index(marker):]
    m = re.search(r"```[a-z]*\n(.*?)```", tail, re.S)
    assert m, marker
    return m.group(1)


def block_with(marker: str) -> str:
    """The fenced block of the README that contains ``marker``."""
    return next(b for b in re.findall(r"```[a-z]*\n(.*?)```", README, re.S) if marker in b)


def ccdsl(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ccdsl", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def quoted_lines(block: str) -> list[str]:
    return [line for line in block.splitlines() if line.strip() not in ("", "…") and not line.startswith("$ ")]


@pytest.fixture()
def env(tmp_path):
    return {**os.environ, "CCDSL_DATA_DIR": str(tmp_path / "data"), "CCDSL_REGION": ""}


def test_the_quick_start_output_is_what_resolve_prints(env) -> None:
    proc = ccdsl("resolve", "examples/tutorial.ccc", env=env)
    assert proc.returncode == 0, proc.stderr
    real = proc.stdout.splitlines()
    for line in quoted_lines(block_after("Output of the first command")):
        assert line in real, line


def test_the_infeasible_example_is_what_resolve_prints(env) -> None:
    proc = ccdsl("resolve", "examples/infeasible.ccc", env=env)
    assert proc.returncode == 1
    real = proc.stderr.splitlines()
    for line in quoted_lines(block_with("$ ccdsl resolve examples/infeasible.ccc")):
        assert line in real, line


def test_the_check_example_is_what_check_prints(env) -> None:
    proc = ccdsl("check", "tests/contracts/bad/unknown_symbol.ccc", env=env)
    assert proc.returncode == 2
    real = proc.stderr.splitlines()
    for line in quoted_lines(block_with("$ ccdsl check tests/contracts/bad/unknown_symbol.ccc")):
        if line.startswith("  hint: valid values:"):  # abridged with …
            assert any(r.startswith(line.rstrip(" …")) for r in real), line
        else:
            assert line in real, line


def test_the_shell_session_on_this_machine_runs_as_written(env) -> None:
    pytest.importorskip("mpi4py")
    session = block_after("The same from the shell")
    script = f'set -e\nccdsl() {{ "{sys.executable}" -m ccdsl "$@"; }}\n' + session
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "sum of the ranks × 10: 60" in out  # 4 ranks: (0 + 1 + 2 + 3) × 10
    assert out.count("I am ") == 4 and out.count("['-c', 'a', 'b']") == 4
    assert re.search(r"worker\s+3\s+local-3", out)  # the nodes table
    assert out.rstrip().endswith("terminated")
