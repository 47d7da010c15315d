"""A deploy refused by the provider's own files leaves no record (issue 22 item 12): with ``ssh_hosts.json`` not
an object of claims, ``ccdsl deploy`` of an SSH contract is one line, exit 1 or 2, and ``clusters --all`` stays
empty (before the fix each attempt left a ``failed`` record that a terminate failed on the same way)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CONFIG = """\
[ssh]
hosts = [{ name = "node01", address = "127.0.0.1:1", type = "zen3" },
         { name = "node02", address = "127.0.0.1:2", type = "zen3" }]
"""


def ccdsl(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CCDSL_DATA_DIR": str(tmp_path / "data"), "CCDSL_CONFIG": str(tmp_path / "ccdsl.toml")}
    return subprocess.run([sys.executable, "-m", "ccdsl", *args], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("claims", ["[]", "{not json", '{"node01": 3}'])
def test_a_refused_ssh_deploy_leaves_no_record(tmp_path, claims):
    (tmp_path / "ccdsl.toml").write_text(CONFIG)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "ssh_hosts.json").write_text(claims)
    proc = ccdsl(tmp_path, "deploy", str(EXAMPLES / "on_premise.ccc"), "--contract", "on_premise",
                 "--catalog", str(EXAMPLES / "lab_hosts.toml"), "--quiet")
    assert proc.returncode in (1, 2), proc.stderr
    assert "Traceback" not in proc.stderr and "ssh_hosts.json" in proc.stderr, proc.stderr
    assert len([line for line in proc.stderr.splitlines() if line.startswith("error: ")]) == 1, proc.stderr
    listed = ccdsl(tmp_path, "clusters", "--all", "--json")
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [], listed.stdout
