"""The wheel a user installs must carry the grammar and the shipped catalog, and work outside the checkout."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"building the wheel failed:\n{proc.stdout}\n{proc.stderr}")
    (wheel,) = out.glob("ccdsl-*.whl")
    target = out / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(target)
    return target


def test_wheel_contains_grammar_and_catalog(wheel_dir: Path) -> None:
    assert (wheel_dir / "ccdsl" / "_data" / "ccdsl.lark").read_text() == (ROOT / "grammar" / "ccdsl.lark").read_text()
    shipped = sorted(p.name for p in (ROOT / "catalogs").iterdir() if p.is_file())
    packaged = sorted(p.name for p in (wheel_dir / "ccdsl" / "_data" / "catalogs").iterdir() if p.is_file())
    assert packaged == shipped


def test_wheel_ships_py_typed(wheel_dir: Path) -> None:
    """PEP 561: without the marker, type checkers treat an installed ccdsl as untyped (every call is Any)."""
    assert (wheel_dir / "ccdsl" / "py.typed").is_file()


def test_installed_wheel_resolves_outside_the_checkout(wheel_dir: Path, tmp_path: Path) -> None:
    contract = tmp_path / "c.ccc"
    contract.write_text("c = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)\n")
    code = (
        "import sys, ccdsl, ccdsl._resources as r;"
        f"assert str(r.grammar_path()).startswith({str(wheel_dir)!r}), r.grammar_path();"
        f"assert str(r.catalog_dir()).startswith({str(wheel_dir)!r}), r.catalog_dir();"
        f"res = ccdsl.resolve(ccdsl.load({str(contract)!r})['c']);"
        "print(res.instance_type, res.node_count)"
    )
    # Only the unpacked wheel and the venv's dependencies are on the path; the checkout is not.
    env = {"PYTHONPATH": str(wheel_dir), "PATH": "/usr/bin:/bin", "CCDSL_DATA_DIR": str(tmp_path / "data"),
           "HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(wheel_dir)!r}); {code}"],
                          capture_output=True, text=True, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["t3.xlarge", "2"]


def test_wheel_ships_the_iam_policy(wheel_dir: Path) -> None:
    """``ccdsl iam-policy`` reads it from the package (importlib.resources), so an installed ccdsl has it."""
    shipped = wheel_dir / "ccdsl" / "executor" / "providers" / "aws_policy.json"
    assert shipped.read_text() == (ROOT / "ccdsl" / "executor" / "providers" / "aws_policy.json").read_text()
