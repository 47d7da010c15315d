"""The README shows what users see: its quoted outputs are lines of the real output, and its shell session on this
machine runs as written."""

from __future__ import annotations

import json
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


def in_order(quoted: list[str], real: list[str]) -> None:
    """Every quoted line is a line of the real output, in the same order (``…`` abridges what is between)."""
    at = 0
    for line in quoted:
        assert line in real[at:], f"stale or out of order: {line!r}"
        at = real.index(line, at) + 1


def test_the_quick_start_output_is_what_resolve_prints(env) -> None:
    proc = ccdsl("resolve", "examples/tutorial.ccc", env=env)
    assert proc.returncode == 0, proc.stderr
    in_order(quoted_lines(block_after("Output of the first command")), proc.stdout.splitlines())


def test_the_infeasible_example_is_what_resolve_prints(env) -> None:
    """Not abridged: every line, the nearest misses all there."""
    proc = ccdsl("resolve", "examples/infeasible.ccc", env=env)
    assert proc.returncode == 1
    assert quoted_lines(block_with("$ ccdsl resolve examples/infeasible.ccc")) == proc.stderr.splitlines()


def test_print_of_a_resolution_is_what_the_readme_shows(env) -> None:
    script = 'import ccdsl\nprint(ccdsl.resolve(ccdsl.load("examples/tutorial.ccc")["mw"]), end="")\n'
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    quoted = block_after('`print(ccdsl.resolve(ccdsl.load("examples/tutorial.ccc")["mw"]))` prints')
    assert quoted.splitlines() == proc.stdout.splitlines()


def _resolved(env, path: str, name: str, *options: str) -> dict:
    proc = ccdsl("resolve", path, "--contract", name, "--json", *options, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_deploy_comment_names_what_resolve_answers(env) -> None:
    """``ccdsl deploy FILE --contract C   # 4 × t3.xlarge, $0.6656/h …``: count, type and price as resolved now."""
    claims = re.findall(r"ccdsl deploy (\S+\.ccc) --contract (\w+)\s+# (\d+) × ([\w.]+), \$([\d.]+)/h", README)
    assert claims, "the README's deploy example moved: update this test"
    for path, name, count, itype, price in claims:
        d = _resolved(env, path, name)
        assert (d["node_count"], d["instance_type"], d["price_per_hour"]) == (int(count), itype, float(price)), name


def test_the_clusters_example_costs_what_the_tutorial_resolves_to(env) -> None:
    """``age 2h 05m, $0.6656/h, $1.39 so far``: the first tutorial contract's price, and 125 minutes of it."""
    m = re.search(r"age (\d+)h (\d+)m, \$([\d.]+)/h, \$([\d.]+) so far", README)
    assert m, "the README's clusters example moved: update this test"
    hours = int(m[1]) + int(m[2]) / 60
    price = _resolved(env, "examples/tutorial.ccc", "my_first_cluster_contract")["price_per_hour"]
    assert float(m[3]) == price and float(m[4]) == round(price * hours, 2)


def test_the_spot_prose_quotes_what_resolve_prints(env) -> None:
    shipped = ccdsl("resolve", "examples/spot.ccc", env=env).stdout
    m = re.search(r'The answer says "(no spot price known; ranked by its on-demand price \$[\d.]+/h, the most a spot'
                  r'\s+node is charged \(AWS\'s default maximum price\); `ccdsl catalog refresh --spot` brings them)"',
                  README)
    assert m and " ".join(m[1].split()) in shipped
    priced = ccdsl("resolve", "examples/spot.ccc", "--catalog", "examples/spot_prices.toml", env=env).stdout
    saving = re.search(r'\("spot saves ([\d.]+)%"\)', README)
    assert saving and f"spot saves {saving[1]}%" in priced
    pair = re.search(r"\((\S+) against (\S+) in the example\)", README)
    assert pair and f"spot_workers: {pair[1]} × " in priced and "spot_workers: " + pair[2] not in priced


def test_the_catalog_counts_are_the_shipped_catalogs() -> None:
    from ccdsl.catalog.loader import load

    df = load(user=False, local=False)
    source = df["price_source"].fillna("")
    m = re.search(r"Of ([\d,]+) rows, ([\d,]+) are Karpenter's, ([\d,]+) Libcloud's and\s+([\d,]+) \(offered, but "
                  r"priced by neither\)", README)
    assert m, "the README's catalog counts moved: update this test"
    assert [int(x.replace(",", "")) for x in m.groups()] == [
        len(df), int(source.str.startswith("karpenter").sum()), int(source.str.startswith("libcloud").sum()),
        int(df["price_per_hour"].isna().sum())]
    m = re.search(r"shipped catalog \(([\d,]+) AWS rows, ([\d,]+) priced", README)
    assert m and [int(x.replace(",", "")) for x in m.groups()] == [len(df), int(df["price_per_hour"].notna().sum())]


def test_the_catalog_file_sizes_are_the_shipped_files() -> None:
    m = re.search(r"aws\.parquet is (\d+) KiB; the CSV is ([\d.]+) MiB", README)
    assert m, "the README's bench_catalog row moved: update this test"
    assert int(m[1]) == round((ROOT / "catalogs" / "aws.parquet").stat().st_size / 1024)
    assert float(m[2]) == round((ROOT / "catalogs" / "aws.csv").stat().st_size / 2**20, 1)


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
