"""An autostop that is shown on must be on (issue 22 item 3): ``[autostop] check_interval`` is 1..86,400 s; a check
that fails is logged and the watchdog goes on; ``clusters`` warns when the watchdog of a running cluster has not
checked for 3 intervals (it was killed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccdsl.cli import main
from ccdsl.executor import guard
from ccdsl.executor import state as st
from fixtures_executor import data_dir

__all__ = ["data_dir"]
LOCAL = "c = @cluster(node_provider => Local, node_count => 1)\n"


def _setup(tmp_path, monkeypatch, interval: str) -> Path:
    (tmp_path / "ccdsl.toml").write_text(f"[autostop]\ncheck_interval = {interval}\n")
    monkeypatch.setenv("CCDSL_CONFIG", str(tmp_path / "ccdsl.toml"))
    (tmp_path / "c.ccc").write_text(LOCAL)
    return tmp_path / "c.ccc"


@pytest.mark.parametrize("interval", ["-1", "nan", "inf", "0.5", "86401"])
def test_a_check_interval_out_of_range_is_refused(data_dir, tmp_path, monkeypatch, capsys, interval):
    contract = _setup(tmp_path, monkeypatch, interval)
    code = main(["deploy", str(contract), "--quiet", "--autostop", "1m"])
    err = capsys.readouterr().err
    assert code in (1, 2) and "check_interval" in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("error: ")]) == 1
    assert st.State().list_clusters(live_only=False) == []


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_clusters_warns_when_the_watchdog_no_longer_checks(data_dir, tmp_path, monkeypatch, capsys):
    contract = _setup(tmp_path, monkeypatch, "1")
    assert main(["deploy", str(contract), "--quiet", "--autostop", "1h"]) == 0
    handle = capsys.readouterr().out.strip()
    d = data_dir / "autostop" / handle
    try:
        assert main(["clusters"]) == 0
        assert "watchdog" not in capsys.readouterr().err  # armed just now: nothing to say
        pid = int((d / "watchdog.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        while not _gone(pid):  # the kill is delivered: wait for the process to end (no timing)
            os.sched_yield()
        # its last check, as the status file says, was 10 intervals ago (the clock of this test)
        config = json.loads((d / "autostop.json").read_text())
        config["armed_at"] = time.time() - 10
        (d / "autostop.json").write_text(json.dumps(config))
        (d / "autostop.status").write_text(json.dumps({"checked_at": time.time() - 10}))
        assert main(["clusters"]) == 0
        err = capsys.readouterr().err
        assert f"{handle}: its autostop watchdog last checked 10 s ago (it checks every 1 s)" in err, err
        assert "will not act" in err
    finally:
        assert main(["terminate", handle]) == 0


def test_a_failing_check_is_logged_and_the_watchdog_goes_on(tmp_path):
    """The watchdog in the foreground (``watch``) with a config whose spent_before is not a number: each check
    fails."""
    d = tmp_path / "w"
    d.mkdir()
    config = {"handle": "H", "dir": str(d), "token": "t", "action": "local", "idle_seconds": 3600, "interval": 1,
              "interactive": False, "spent_before": "abc"}
    (d / "autostop.json").write_text(json.dumps(config))
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import watchdog; sys.exit(watchdog.watch(sys.argv[2]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(Path(guard.WATCHDOG).parent), str(d / "autostop.json")])
    log = d / "watchdog.log"
    try:
        while log.read_text().count("check failed") < 2 if log.exists() else True:  # two checks: it went on
            assert proc.poll() is None, "the watchdog ended at a failed check"
            os.sched_yield()
        (d / "autostop.json").unlink()  # disarmed: it ends at its next check
        assert proc.wait(timeout=60) == 0
        assert "disarmed" in log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
