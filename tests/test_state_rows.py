"""A damaged row in the state database (issue 22 item 11): an unknown key in a node row is ignored (a newer ccdsl
may add one); a row that cannot be read is one line naming the cluster, exit 2, for ``nodes``, ``clusters`` and
``terminate``; ``terminate --forget`` removes it."""

from __future__ import annotations

import json
import os
import sqlite3
import time

import pytest

from ccdsl.executor import state as st
from ccdsl.executor.model import Node
from test_state_errors import assert_one_line_exit_2, ccdsl

HANDLE = "BADROWBADROW123"


def _cluster(data: str) -> st.State:
    state = st.State(os.path.join(data, "state.db"))
    now = time.time()
    state.add_cluster(st.ClusterRecord(HANDLE, "c", "local", "PeerWorkers", st.RUNNING, now, now,
                                          settings={"processes_per_node": 1}))
    state.set_nodes(HANDLE, [Node(0, "worker", "local-0", "local", "running",
                                  address="127.0.0.1")])
    return state


def _write(data: str, sql: str, *args: object) -> None:
    db = sqlite3.connect(os.path.join(data, "state.db"))
    with db:
        db.execute(sql, args)
    db.close()


def test_unknown_key_in_a_node_row_is_ignored(tmp_path):
    data = str(tmp_path / "data")
    state = _cluster(data)
    row = json.loads(st.node_to_json(state.nodes(HANDLE)[0]))
    _write(data, "UPDATE nodes SET data = ? WHERE handle = ?", json.dumps({**row, "added_later": 1}), HANDLE)
    assert [n.instance_id for n in state.nodes(HANDLE)] == ["local-0"]
    proc = ccdsl(data, "nodes", HANDLE)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "local-0" in proc.stdout


@pytest.mark.parametrize("damage", ["settings", "node-text", "node-list", "node-missing"])
def test_a_damaged_row_is_one_line_naming_the_cluster_and_forget_removes_it(tmp_path, damage):
    data = str(tmp_path / "data")
    _cluster(data)
    if damage == "settings":
        _write(data, "UPDATE clusters SET settings = ? WHERE handle = ?", "{not json", HANDLE)
    else:
        bad = {"node-text": "{not json", "node-list": "[]", "node-missing": json.dumps({"role": "worker"})}[damage]
        _write(data, "UPDATE nodes SET data = ? WHERE handle = ?", bad, HANDLE)
    commands = [["nodes", HANDLE], ["terminate", HANDLE]] + ([["clusters"]] if damage == "settings" else [])
    for args in commands:
        assert_one_line_exit_2(ccdsl(data, *args), HANDLE, "damaged", "--forget")
    proc = ccdsl(data, "terminate", "--forget", HANDLE)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert st.State(os.path.join(data, "state.db")).get_cluster(HANDLE) is None
    assert ccdsl(data, "clusters").returncode == 0
