"""The data directory is 0700 and state.db 0600 whichever command runs first (issue 8, item 13)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("first", [["resolve", "examples/tutorial.ccc"], ["catalog", "add", "HOSTS"]])
def test_resolve_or_catalog_add_first_then_state(tmp_path, first: list[str]) -> None:
    d = tmp_path / "data"
    hosts = tmp_path / "hosts.csv"
    hosts.write_text("provider,instance_type,vcpus,memory_gib\nssh,node01,4,16\n")
    env = {**os.environ, "CCDSL_DATA_DIR": str(d)}
    env.pop("CCDSL_CACHE_DIR", None)
    argv = [str(hosts) if a == "HOSTS" else a for a in first]
    code = ("import os, sys; os.umask(0o022); from ccdsl.cli import main; rc = main(sys.argv[1:]); "
            "from ccdsl.executor.state import State; State(); sys.exit(rc)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", code, *argv], env=env, cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert mode(d) == 0o700
    assert mode(d / "state.db") == 0o600
    for extra in ("state.db-wal", "state.db-shm"):
        if (d / extra).exists():
            assert mode(d / extra) & 0o077 == 0


def test_an_existing_readable_data_dir_and_db_are_tightened(tmp_path, monkeypatch) -> None:
    d = tmp_path / "data"
    d.mkdir(mode=0o755)
    os.chmod(d, 0o755)
    (d / "state.db").touch()
    os.chmod(d / "state.db", 0o644)
    monkeypatch.setenv("CCDSL_DATA_DIR", str(d))
    from ccdsl.executor.state import State

    State()
    assert (mode(d), mode(d / "state.db")) == (0o700, 0o600)
