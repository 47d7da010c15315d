"""A new user's first week with clusters (issue 19, B5, B6, B10, B14-B17), on the local provider and the CLI as
typed: ``terminate --forget`` ends the local watchdog, a note goes when the state it explains ends, a killed deploy's
set-up command is ended by ``terminate``, ``--max-cost`` errors in words, ``sync`` refuses to swap folders
silently, ``clusters --json`` has one time format and the market ``resolve`` gave, and the small things: prices
with thousands separators, a second terminate is fine, no ``autostop/`` folder outlives its cluster, no log line
about a cluster that was never created."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ccdsl
from ccdsl.errors import ProviderError
from ccdsl.executor import guard
from ccdsl.executor.config import Config
from ccdsl.executor.deploy import Plan
from ccdsl.executor.model import NodeRequest
from ccdsl.executor.state import ClusterRecord, RolePrice, State
from fixtures_executor import aws_settings, data_dir

pytest.importorskip("mpi4py")

ROOT = Path(__file__).resolve().parent.parent


def ccdsl_cli(*argv: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ccdsl", *argv], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture()
def env(data_dir):
    e = {**os.environ, "CCDSL_DATA_DIR": str(data_dir)}
    e.pop("CCDSL_CONFIG", None)
    return e


def deploy(env: dict, *options: str) -> str:
    proc = ccdsl_cli("deploy", "examples/local.ccc", "-q", *options, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def clusters_line(env: dict, handle: str) -> str:
    proc = ccdsl_cli("clusters", "--all", env=env)
    assert proc.returncode == 0, proc.stderr
    return next(line for line in proc.stdout.splitlines() if handle in line)


def until(check):
    """Wait for an event another process causes (a file it writes); pytest-timeout bounds the wait."""
    while not (value := check()):
        time.sleep(0.02)
    return value


def wait_exit(pid: int, fd: int) -> None:
    """Block until process ``pid`` (not our child) has ended: its pidfd becomes readable."""
    select.select([fd], [], [])
    os.close(fd)


# -- B5: terminate --forget ends the local watchdog ------------------------------------------------------------------
def test_forget_ends_the_local_watchdog_in_local_words(env, data_dir) -> None:
    handle = deploy(env, "--max-cost", "50")  # $0/h: this watchdog would never stop by itself
    pid = int(until(lambda: (data_dir / "autostop" / handle / "watchdog.pid").exists()
                    and (data_dir / "autostop" / handle / "watchdog.pid").read_text().strip()))
    fd = os.pidfd_open(pid)
    assert "watchdog.py" in Path(f"/proc/{pid}/cmdline").read_text()
    proc = ccdsl_cli("terminate", "--forget", handle, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith(f"forgot cluster {handle} (running): it ran on this machine")
    assert "warning" not in proc.stderr and "tag" not in proc.stderr and "cloud" not in proc.stderr
    wait_exit(pid, fd)  # the old code left it running for good
    assert not (data_dir / "autostop" / handle).exists() and not (data_dir / "local" / handle).exists()


# -- B6: a note goes when its state ends -----------------------------------------------------------------------------
def test_a_resumed_autostopped_cluster_has_no_autostop_note(env, data_dir) -> None:
    handle = deploy(env, "--autostop", "1h")
    (data_dir / "autostop" / f"{handle}.autostop").write_text(json.dumps({"reason": "idle for 20s"}))
    stop = subprocess.run([sys.executable, "-c", guard._LOCAL_STOP, "local-stop", handle], env=env,
                          capture_output=True, text=True, timeout=300)  # what the local watchdog runs
    assert stop.returncode == 0, stop.stderr
    assert clusters_line(env, handle).endswith("-- autostopped: idle for 20s")
    assert ccdsl_cli("resume", handle, env=env).returncode == 0
    line = clusters_line(env, handle)
    assert ", running, " in line and "autostopped" not in line and " -- " not in line
    assert ccdsl_cli("terminate", handle, env=env).returncode == 0


# -- B6 and B10: a SIGKILLed deploy's set-up is ended by terminate, and its note goes ----------------------------------
def test_terminate_ends_the_setup_of_a_killed_deploy_and_its_note(env, tmp_path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    pid_file = tmp_path / "sleeper.pid"
    setup = f"sleep 300 & echo $! > {pid_file}; echo set-up started; wait"
    child = subprocess.Popen([sys.executable, "-m", "ccdsl", "deploy", "examples/local.ccc", "--workdir", str(project),
                              "--setup", setup], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True)
    try:
        for line in child.stderr:  # the set-up's output comes on stderr, with the node's name
            if "set-up started" in line:
                break
        else:
            pytest.fail("the deploy ended before its set-up started")
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    sleeper = int(pid_file.read_text())
    fd = os.pidfd_open(sleeper)  # raises if the set-up's child is already gone
    listed = json.loads(ccdsl_cli("clusters", "--json", env=env).stdout)
    assert [c["status"] for c in listed] == ["failed"] and "the deploy was interrupted" in listed[0]["note"]
    handle = listed[0]["handle"]
    assert ccdsl_cli("terminate", handle, env=env).returncode == 0
    wait_exit(sleeper, fd)  # the old code left `sleep 300` running, and terminate did not end it
    line = clusters_line(env, handle)
    assert ", terminated" in line and "interrupted" not in line and "ccdsl terminate" not in line


# -- B14: --max-cost in words ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-5", "0", "abc", "nan", "inf"])
def test_a_bad_spending_cap_is_named_in_words(env, value) -> None:
    proc = ccdsl_cli("deploy", "examples/local.ccc", "--max-cost", value, env=env)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines()[-1] == (f"ccdsl deploy: error: argument --max-cost: the spending cap is a "
                                            f"positive number of US dollars (such as 50), not {value!r}")
    assert "_usd" not in proc.stderr
    assert State().list_clusters(live_only=False) == []


# -- B15: sync refuses another folder without --replace --------------------------------------------------------------
def test_sync_of_another_folder_needs_replace(env, tmp_path, data_dir) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "only_in_a.txt").write_text("a")
    (b / "only_in_b.txt").write_text("b")
    handle = deploy(env, "--workdir", str(a))
    copy = data_dir / "local" / handle
    assert [p.name for p in copy.rglob("*.txt")] == ["only_in_a.txt"]
    proc = ccdsl_cli("sync", handle, str(b), env=env)
    assert proc.returncode == 1
    assert f"holds a copy of {a}, not of {b}" in proc.stderr and f"ccdsl sync {handle} {b} --replace" in proc.stderr
    assert [p.name for p in copy.rglob("*.txt")] == ["only_in_a.txt"]  # nothing was deleted
    assert ccdsl_cli("sync", handle, str(a), env=env).returncode == 0  # the same folder, as before
    proc = ccdsl_cli("sync", handle, str(b), "--replace", env=env)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in copy.rglob("*.txt")] == ["only_in_b.txt"]
    assert ccdsl_cli("sync", handle, env=env).returncode == 0  # b is the cluster's folder now
    assert ccdsl_cli("terminate", handle, env=env).returncode == 0


# -- B16: clusters --json: one time format, the market resolve gave ---------------------------------------------------
def test_clusters_json_times_and_market_agree_with_resolve(env) -> None:
    handle = deploy(env)
    [info] = json.loads(ccdsl_cli("clusters", "--json", env=env).stdout)
    resolved = json.loads(ccdsl_cli("resolve", "examples/local.ccc", "--json", env=env).stdout)
    assert info["handle"] == handle and info["market"] == resolved[0]["market"] == "on-demand"
    assert info["created_at"].endswith("+00:00") and info["started_at"].endswith("+00:00")
    assert info["created_at"] <= info["started_at"] and len(info["created_at"]) == len(info["started_at"])
    assert ccdsl_cli("terminate", handle, env=env).returncode == 0


# -- B17: the small things -------------------------------------------------------------------------------------------
def test_a_large_price_has_thousands_separators(data_dir, capsys) -> None:
    from ccdsl.cli import main

    state, now = State(), time.time()
    state.add_cluster(ClusterRecord("BigBigBigBigBig", "big", "local", "PeerWorkers", "running", now, now))
    state.set_prices("BigBigBigBigBig", [RolePrice("worker", "huge", 4, 3600.0, "test", "2026-12-01")])
    assert main(["clusters"]) == 0
    out = capsys.readouterr().out
    assert "$14,400/h" in out and "e+" not in out


def test_terminate_twice_is_fine_and_removes_the_autostop_folder(env, data_dir) -> None:
    handle = deploy(env, "--autostop", "1h")
    assert (data_dir / "autostop" / handle).is_dir()
    assert ccdsl_cli("terminate", handle, env=env).returncode == 0
    assert not (data_dir / "autostop" / handle).exists()  # no folder per cluster ever deployed
    again = ccdsl_cli("terminate", handle, env=env)
    assert again.returncode == 0 and again.stdout == f"{handle}: already terminated\n", again.stderr
    again = ccdsl_cli("terminate", handle, "--json", env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["status"] == "terminated"


def test_a_deploy_without_credentials_names_no_markets(aws_env, data_dir, monkeypatch, tmp_path, caplog) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    plan = Plan("aws", (NodeRequest("", "worker", "t3.xlarge", 1, region="us-east-1", options={"contract": "c"}),))
    with caplog.at_level(logging.INFO, logger="ccdsl"), pytest.raises(ProviderError, match="no AWS credentials"):
        ccdsl.deploy(plan, config=Config.from_dict({"aws": aws_settings(aws_env)}))
    assert State().list_clusters(live_only=False) == []
    assert not [r for r in caplog.records if "markets" in r.getMessage()]  # of a handle that never existed


def test_forget_of_a_cloud_cluster_says_its_watchdog_still_guards_it(data_dir, capsys) -> None:
    from ccdsl.cli import main

    state, now = State(), time.time()
    autostop = guard.make("30m").to_settings()
    state.add_cluster(ClusterRecord("CloudCloudCloud", "c", "aws", "PeerWorkers", "running", now, now,
                                    settings={"resolved_region": "eu-north-1", "autostop": autostop}))
    assert main(["terminate", "--forget", "CloudCloudCloud"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("warning: forgot cluster CloudCloudCloud (running) without asking aws eu-north-1")
    assert err.rstrip().endswith("; its autostop watchdog, on its nodes, still stops after 30m idle")
