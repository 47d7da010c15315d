"""The documentation shows what users see: its quoted outputs are lines of the real output, its figures are what the
code and the shipped files say, and its shell session on this machine runs as written.  (These checks read the
README before its content moved into docs/; each names the page it reads now.  The generic check of every example is
tests/test_docs_examples.py: the ones here are stricter, or read figures in prose.)"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from doc_blocks import block_after, block_with, in_order, quiet_env, quoted_lines, run_ccdsl

ROOT = Path(__file__).resolve().parents[1]


def page(name: str) -> str:
    """A page of the documentation (``docs/NAME``)."""
    return (ROOT / "docs" / name).read_text()


# Everything a user reads: the README (the site's front page) and every page of docs/.
EVERYWHERE = "\n".join(p.read_text() for p in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))])


@pytest.fixture()
def env(tmp_path):
    return quiet_env(tmp_path / "data")


def test_the_infeasible_example_is_what_resolve_prints(env) -> None:
    """Not abridged: every line, the nearest misses all there."""
    proc = run_ccdsl("resolve", "examples/infeasible.ccc", env=env)
    assert proc.returncode == 1
    quoted = block_with("$ ccdsl resolve examples/infeasible.ccc", page("resolving.md"))
    assert quoted_lines(quoted) == proc.stderr.splitlines()


def test_print_of_a_resolution_is_what_the_docs_show(env) -> None:
    script = 'import ccdsl\nprint(ccdsl.resolve(ccdsl.load("examples/tutorial.ccc")["mw"]), end="")\n'
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    marker = '`print(ccdsl.resolve(ccdsl.load("examples/tutorial.ccc")["mw"]))` prints'
    quoted = block_after(marker, page("resolving.md"))
    assert quoted.splitlines() == proc.stdout.splitlines()


def _resolved(env, path: str, name: str, *options: str) -> dict:
    proc = run_ccdsl("resolve", path, "--contract", name, "--json", *options, env=env)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_deploy_comment_names_what_resolve_answers(env) -> None:
    """``ccdsl deploy FILE --contract C   # 4 × t3.xlarge, $0.6656/h …``: count, type and price as resolved now."""
    claims = re.findall(r"ccdsl deploy (\S+\.ccc) --contract (\w+)\s+# (\d+) × ([\w.]+), \$([\d.]+)/h", EVERYWHERE)
    assert claims, "the deploy example on docs/clusters/aws.md moved: update this test"
    for path, name, count, itype, price in claims:
        d = _resolved(env, path, name)
        assert (d["node_count"], d["instance_type"], d["price_per_hour"]) == (int(count), itype, float(price)), name


def test_the_clusters_example_costs_what_the_tutorial_resolves_to(env) -> None:
    """``age 2h 05m, $0.6656/h, $1.39 so far``: the first tutorial contract's price, and 125 minutes of it."""
    m = re.search(r"age (\d+)h (\d+)m, \$([\d.]+)/h, \$([\d.]+) so far", page("clusters/spending.md"))
    assert m, "the clusters example of docs/clusters/spending.md moved: update this test"
    hours = int(m[1]) + int(m[2]) / 60
    price = _resolved(env, "examples/tutorial.ccc", "my_first_cluster_contract")["price_per_hour"]
    assert float(m[3]) == price and float(m[4]) == round(price * hours, 2)


def test_the_spot_prose_quotes_what_resolve_prints(env) -> None:
    resolving = page("resolving.md")
    shipped = run_ccdsl("resolve", "examples/spot.ccc", env=env).stdout
    m = re.search(r'The answer says "(no spot price known; ranked by its on-demand price \$[\d.]+/h, the most a spot'
                  r'\s+node is charged \(AWS\'s default maximum price\); `ccdsl catalog refresh --spot` brings them)"',
                  resolving)
    assert m and " ".join(m[1].split()) in shipped
    priced = run_ccdsl("resolve", "examples/spot.ccc", "--catalog", "examples/spot_prices.toml", env=env).stdout
    saving = re.search(r'\("spot saves ([\d.]+)%"\)', resolving)
    assert saving and f"spot saves {saving[1]}%" in priced
    pair = re.search(r"\((\S+) against (\S+) in the example\)", resolving)
    assert pair and f"spot_workers: {pair[1]} × " in priced and "spot_workers: " + pair[2] not in priced


def test_the_catalog_counts_are_the_shipped_catalogs() -> None:
    from ccdsl.catalog.loader import load

    df = load(user=False, local=False)
    source = df["price_source"].fillna("")
    m = re.search(r"Of ([\d,]+) rows, ([\d,]+) are Karpenter's, ([\d,]+) Libcloud's and\s+([\d,]+) \(offered, but "
                  r"priced by neither\)", page("catalog.md"))
    assert m, "the catalog counts of docs/catalog.md moved: update this test"
    assert [int(x.replace(",", "")) for x in m.groups()] == [
        len(df), int(source.str.startswith("karpenter").sum()), int(source.str.startswith("libcloud").sum()),
        int(df["price_per_hour"].isna().sum())]
    m = re.search(r"shipped catalog \(([\d,]+) AWS rows, ([\d,]+) priced", page("benchmarks.md"))
    assert m and [int(x.replace(",", "")) for x in m.groups()] == [len(df), int(df["price_per_hour"].notna().sum())]


def test_the_catalog_file_sizes_are_the_shipped_files() -> None:
    m = re.search(r"aws\.parquet is (\d+) KiB; the CSV is ([\d.]+) MiB", page("benchmarks.md"))
    assert m, "the bench_catalog row of docs/benchmarks.md moved: update this test"
    assert int(m[1]) == round((ROOT / "catalogs" / "aws.parquet").stat().st_size / 1024)
    assert float(m[2]) == round((ROOT / "catalogs" / "aws.csv").stat().st_size / 2**20, 1)


def test_the_check_example_is_what_check_prints(env) -> None:
    proc = run_ccdsl("check", "tests/contracts/bad/unknown_symbol.ccc", env=env)
    assert proc.returncode == 2
    real = proc.stderr.splitlines()
    for line in quoted_lines(block_with("$ ccdsl check tests/contracts/bad/unknown_symbol.ccc", page("language.md"))):
        if line.startswith("  hint: valid values:"):  # abridged with …
            assert any(r.startswith(line.rstrip(" …")) for r in real), line
        else:
            assert line in real, line


def test_the_shell_session_on_this_machine_runs_as_written(env) -> None:
    pytest.importorskip("mpi4py")
    session = block_after("The same from the shell", page("clusters/index.md"))
    script = f'set -e\nccdsl() {{ "{sys.executable}" -m ccdsl "$@"; }}\n' + session
    proc = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = proc.stdout
    assert "sum of the ranks × 10: 60" in out  # 4 ranks: (0 + 1 + 2 + 3) × 10
    assert out.count("I am ") == 4 and out.count("['-c', 'a', 'b']") == 4
    assert re.search(r"worker\s+3\s+local-3", out)  # the nodes table
    assert out.rstrip().endswith("terminated")
