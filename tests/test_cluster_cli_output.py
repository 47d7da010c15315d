"""What ``ccdsl clusters`` and ``ccdsl nodes`` print for a new user: a table, a sentence when there is nothing, no
claims that nodes of a failed cluster are ready, and a hint when a cluster cannot run programs."""

from __future__ import annotations

import time

import pytest

from ccdsl.cli import main
from ccdsl.executor.model import Node
from ccdsl.executor.state import ClusterRecord, State
from fixtures_executor import data_dir

pytest.importorskip("mpi4py")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_clusters_says_when_there_are_none(data_dir, capsys) -> None:
    code, out, err = run(capsys, "clusters")
    assert (code, out) == (0, "") and "no clusters (terminated ones: ccdsl clusters --all)" in err
    code, out, err = run(capsys, "clusters", "--all")
    assert (code, out) == (0, "") and err.startswith("no clusters; create one with `ccdsl deploy FILE`")


def test_nodes_is_a_table_and_terminated_clusters_keep_their_shape(data_dir, tmp_path, capsys) -> None:
    (tmp_path / "c.ccc").write_text("two = @cluster(node_provider => Local, node_count => 2)\n")
    code, handle, _ = run(capsys, "deploy", str(tmp_path / "c.ccc"), "-q")
    handle = handle.strip()
    code, out, _ = run(capsys, "nodes", handle)
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"{handle}: PeerWorkers on local, running"
    assert lines[1].split() == ["role", "index", "instance_id", "instance_type", "address", "private_address", "zone",
                                "state"]
    assert [line.split()[:3] for line in lines[2:]] == [["worker", "0", "local-0"], ["worker", "1", "local-1"]]
    assert run(capsys, "terminate", handle)[0] == 0
    _, out, _ = run(capsys, "clusters", "--all")
    assert f"{handle}, created at" in out and "localhost × 2, terminated" in out and "- × " not in out


def test_a_failed_cluster_has_no_ready_nodes_and_run_says_what_to_do(data_dir, capsys) -> None:
    state, now = State(), time.time()
    handle = "FailFailFailFai"
    state.add_cluster(ClusterRecord(handle, "c", "local", "PeerWorkers", "failed", now, now,
                                    note="deploy failed (boom) and clean-up failed (refused)"))
    state.set_nodes(handle, [Node(i, "worker", f"local-{i}", "localhost", state="ready") for i in range(2)])
    code, out, _ = run(capsys, "nodes", handle)
    assert code == 0 and f"{handle}: PeerWorkers on local, failed" in out
    assert out.count("not ready (cluster failed)") == 2 and " ready\n" not in out
    assert f"`ccdsl terminate {handle}` removes what is left" in out
    code, _, err = run(capsys, "run", handle, "--", "hostname")
    assert code == 1 and f"cluster {handle} is failed, not running" in err
    assert "hint: it failed (deploy failed (boom) and clean-up failed (refused)); `ccdsl terminate" in err
