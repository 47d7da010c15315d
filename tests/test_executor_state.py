"""The state database: records, nodes, worker ids, journal; two processes at once."""

from __future__ import annotations

import multiprocessing
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ccdsl.errors import ClusterError
from ccdsl.executor.model import Node
from ccdsl.executor.state import ClusterRecord, State, node_from_json, node_to_json
from fixtures_executor import data_dir


def record(handle="AAAAAAAAAAAAAAA", **kw):
    now = time.time()
    return ClusterRecord(**{"handle": handle, "contract": "c", "provider": "local", "cluster_type": "PeerWorkers",
                            "status": "deploying", "created_at": now, "updated_at": now, **kw})


def test_default_location_is_the_data_dir(data_dir):
    s = State()
    assert s.path == data_dir / "state.db"
    s.add_cluster(record())
    assert State().get_cluster("AAAAAAAAAAAAAAA").contract == "c"


def test_records_nodes_and_settings_merge(data_dir):
    s = State()
    s.add_cluster(record(settings={"region": "us-east-1"}))
    with pytest.raises(ClusterError, match="already exists"):
        s.add_cluster(record())
    r = s.update_cluster("AAAAAAAAAAAAAAA", status="running", settings={"key": "k"})
    assert r.status == "running" and dict(r.settings) == {"region": "us-east-1", "key": "k"}
    nodes = [Node(index=i, role="worker", instance_id=f"i-{i}", instance_type="t3.xlarge", extra={"a": "b"})
             for i in (1, 0)] + [Node(index=0, role="manager", instance_id="i-m", instance_type="m5.large")]
    s.set_nodes("AAAAAAAAAAAAAAA", nodes)
    assert [(n.role, n.index) for n in s.nodes("AAAAAAAAAAAAAAA")] == [("manager", 0), ("worker", 0), ("worker", 1)]
    s.set_nodes("AAAAAAAAAAAAAAA", nodes[:1], replace_role="worker")
    assert [(n.role, n.index) for n in s.nodes("AAAAAAAAAAAAAAA")] == [("manager", 0), ("worker", 1)]
    s.update_cluster("AAAAAAAAAAAAAAA", status="terminated")
    assert s.list_clusters() == [] and len(s.list_clusters(live_only=False)) == 1
    with pytest.raises(ClusterError, match="no cluster"):
        s.update_cluster("BBBBBBBBBBBBBBB", status="running")


def test_worker_ids_are_fresh_like_pids(data_dir):
    s = State()
    s.add_cluster(record("A" * 15))
    s.add_cluster(record("B" * 15))
    assert s.new_workers("A" * 15, 4) == [2, 3, 4, 5]
    assert s.new_workers("B" * 15, 8) == list(range(6, 14))
    assert s.new_workers("A" * 15, 4) == [14, 15, 16, 17]  # a restart: new ids, old ones gone
    assert s.workers("A" * 15) == [14, 15, 16, 17]
    s.clear_workers("A" * 15)
    assert s.workers("A" * 15) == [] and s.workers("B" * 15) == list(range(6, 14))


def test_journal_keeps_order_and_detail(data_dir):
    s = State()
    s.journal("A" * 15, "create", role="worker", zone="us-east-1a")
    s.journal("A" * 15, "created", ids=["i-1"])
    assert [(e.phase, dict(e.detail)) for e in s.journal_of("A" * 15)] == [
        ("create", {"role": "worker", "zone": "us-east-1a"}), ("created", {"ids": ["i-1"]})]


@settings(max_examples=40, deadline=None)
@given(st.builds(Node, index=st.integers(0, 1000), role=st.sampled_from(["worker", "manager"]),
                 instance_id=st.text(min_size=1, max_size=20), instance_type=st.text(max_size=12),
                 address=st.none() | st.ip_addresses().map(str), port=st.integers(1, 65535),
                 extra=st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3)))
def test_node_json_round_trip(node):
    assert node_from_json(node_to_json(node)) == node


def _hammer(path: str, handle: str, rounds: int, out) -> None:
    s = State(path)
    got = []
    for i in range(rounds):
        got += s.new_workers(handle, 3)
        s.journal(handle, "tick", i=i)
        s.update_cluster(handle, settings={f"k{i % 5}": i})
    out.put(got)


def test_two_processes_at_once_never_share_a_worker_id(data_dir):
    s = State()
    s.add_cluster(record("A" * 15))
    s.add_cluster(record("B" * 15))
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(str(s.path), h, 60, out)) for h in ("A" * 15, "B" * 15)]
    for p in procs:
        p.start()
    ids = out.get(timeout=120) + out.get(timeout=120)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(ids) == 360 and len(set(ids)) == 360
    assert sorted(ids) == list(range(2, 362))  # no gap, no duplicate: every increment was serialized
    assert len(s.journal_of("A" * 15)) == len(s.journal_of("B" * 15)) == 60


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("ABC"), st.integers(0, 6)), max_size=25))
def test_worker_ids_never_repeat_model(tmp_path_factory, steps):
    """Any sequence of (re)allocations over clusters: each cluster holds exactly its last allocation, and no id
    is ever handed out twice."""
    s = State(tmp_path_factory.mktemp("model") / "state.db")
    for h in "ABC":
        s.add_cluster(record(h * 15))
    seen: list[int] = []
    last = {h: [] for h in "ABC"}
    for h, n in steps:
        ids = s.new_workers(h * 15, n)
        assert len(ids) == n
        seen += ids
        last[h] = ids
    assert len(seen) == len(set(seen))
    assert all(s.workers(h * 15) == last[h] for h in "ABC")


def test_a_write_waits_for_this_process_own_lock_instead_of_blaming_another_process(tmp_path):
    """Issue 19: a thread found the database locked by another thread of the same process and was told 'locked
    by another process' once SQLite's busy timeout ran out.  A thread's write now waits for this process's other
    writers, however long they take (here: longer than a zero busy timeout)."""
    import sys
    import threading

    path = tmp_path / "state.db"
    holder_state, waiter_state = State(path, busy_timeout=0), State(path, busy_timeout=0)
    holder_state.add_cluster(record("HoLdErAaAaAaAaA"))
    holding, release = threading.Event(), threading.Event()

    class SlowDetail:  # written inside the holder's write transaction (json's default=str calls __str__)
        def __str__(self) -> str:
            holding.set()
            release.wait(120)  # a fail-safe only: the waiter below releases it
            return "slow"

    holder = threading.Thread(target=lambda: holder_state.journal("HoLdErAaAaAaAaA", "hold", detail=SlowDetail()))
    holder.start()
    assert holding.wait(120)
    outcome: list[object] = []

    def write() -> None:
        try:
            waiter_state.add_cluster(record("WaItErAaAaAaAaA"))
            outcome.append("written")
        except Exception as exc:  # the old behaviour: StateError naming "another process"
            outcome.append(exc)

    waiter = threading.Thread(target=write)
    waiter.start()
    # Release the holder once the waiter has reached the database: either it waits for its turn, or it has failed.
    while waiter.is_alive():
        frames = sys._current_frames().get(waiter.ident)
        stack = []
        while frames is not None:
            stack.append(frames.f_code.co_name)
            frames = frames.f_back
        if "_writer" in stack:
            break
        waiter.join(0.01)
    release.set()
    holder.join(120)
    waiter.join(120)
    assert outcome == ["written"]
    assert [r.handle for r in State(path).list_clusters()] == ["HoLdErAaAaAaAaA", "WaItErAaAaAaAaA"]
    assert [e.phase for e in State(path).journal_of("HoLdErAaAaAaAaA")] == ["hold"]
