"""The shipped examples keep working: every contract file checks and resolves (or fails as it says it should),
the Python embedding example runs, and the seed's tutorial runs end to end on the test cloud."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccdsl.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
CONTRACTS = sorted(EXAMPLES.glob("*.ccc"))
EXTRA_CATALOG = {"on_premise.ccc": [str(EXAMPLES / "lab_hosts.toml")], "spot.ccc": [str(EXAMPLES / "spot_prices.toml")]}


@pytest.fixture(autouse=True)
def _isolated(data_dir):
    return data_dir


def test_there_are_a_dozen_examples() -> None:
    assert len(CONTRACTS) >= 12


@pytest.mark.parametrize("scope", [[], ["--any-region"]], ids=["region", "any-region"])
@pytest.mark.parametrize("path", CONTRACTS, ids=lambda p: p.name)
def test_example_checks_and_resolves(path: Path, scope: list[str], capsys) -> None:
    assert main(["check", str(path)]) == 0
    capsys.readouterr()
    extra = [a for c in EXTRA_CATALOG.get(path.name, []) for a in ("--catalog", c)]
    code = main(["resolve", str(path), "--json", *extra, *scope])
    out = json.loads(capsys.readouterr().out)
    answers = out if isinstance(out, list) else [out]
    if path.name == "infeasible.ccc":
        assert code == 1 and all(a.get("error") == "unsatisfiable" and a["conflict"] for a in answers)
    else:
        assert code == 0, answers
        assert all(a["node_count"] >= 1 and a["price_per_hour"] >= 0 for a in answers)


def test_embed_api_example_runs(tmp_path) -> None:
    proc = subprocess.run([sys.executable, str(EXAMPLES / "embed_api.py")], cwd=ROOT, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "CCDSL_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr


@pytest.mark.netns
@pytest.mark.parametrize("flags", [[], ["--as-ec2-behaves"]], ids=["moto", "as-ec2-behaves"])
def test_tutorial_on_the_test_cloud(tmp_path, flags) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from netns_hosts import missing_requirements

    reason = missing_requirements()
    if reason:
        pytest.skip(reason)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc = subprocess.run([sys.executable, str(EXAMPLES / "tutorial_test_cloud.py"), *flags], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "TMPDIR": str(scratch)})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [p.name for p in scratch.iterdir()] == []  # no folder left behind (it held the cluster's private key)
    lines = proc.stdout.splitlines()
    assert "sum of ranks: 6 ranks -> workers: {0: 2, 1: 3, 2: 4, 3: 5}" in lines
    hello = {line.rsplit(" at ", 1)[1] for line in lines if line.startswith("I am ")}
    assert len(hello) == 4  # four ranks in four different network namespaces
    assert "after resume, workers [6, 7, 8, 9] sum: 6" in lines
    assert lines[-1] == "terminated; instances left: []"
    assert "HTTP/1.1" not in proc.stdout + proc.stderr  # moto's access log stays out of the tutorial's output
