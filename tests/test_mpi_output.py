"""How the launcher reads a job's output: lines for the user, framed records for ccdsl, however the bytes arrive."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ccdsl
from ccdsl.errors import ExecutionError
from ccdsl.executor.mpi import MARK, _Output
from ccdsl.executor.nodedir import pkill_pattern as _pkill_pattern
from fixtures_executor import data_dir

text = st.text(st.characters(blacklist_characters="\n\x1e", blacklist_categories=("Cs",)), max_size=40)
record = st.tuples(st.sampled_from(["result.n1", "error", "pid"]), st.binary(max_size=64))
item = st.one_of(text.map(lambda t: ("line", t)), record.map(lambda r: ("record", r)))


def encode(items) -> bytes:
    out = []
    for kind, value in items:
        if kind == "line":
            out.append(value + "\n")
        else:
            out.append(MARK + value[0] + ":" + base64.b64encode(value[1]).decode() + "\n")
    return "".join(out).encode()


@settings(max_examples=200, deadline=None)
@given(st.lists(item, max_size=30), st.lists(st.integers(1, 50), max_size=60))
def test_any_chunking_gives_the_same_lines_and_records(items, cuts):
    data = encode(items)
    seen: list[str] = []
    out = _Output(lambda line, stream: seen.append(line), nonce="n1")
    pos = 0
    for n in cuts:
        out.feed("stdout", data[pos:pos + n])
        pos += n
    out.feed("stdout", data[pos:])
    out.close()
    assert seen == [v for k, v in items if k == "line"]
    assert [(k, base64.b64decode(d)) for k, d in out.records] == [
        (v[0].partition(".")[0], v[1]) for k, v in items if k == "record"]


def test_record_after_a_partial_line_splits_it_off():
    seen = []
    out = _Output(lambda line, stream: seen.append((stream, line)))
    out.feed("stderr", b"no newline here")
    out.feed("stderr", (MARK + "error:" + base64.b64encode(b"{}").decode() + "\n").encode())
    out.feed("stdout", b"tail without newline")
    out.close()
    assert seen == [("stderr", "no newline here"), ("stdout", "tail without newline")]
    assert out.record("error") == [base64.b64encode(b"{}").decode()]


def test_pkill_pattern_matches_the_path_but_not_itself():
    import re
    import shlex

    path = "/home/u/.ccdsl/AbCdEfGhIjKlMnO/run-0123.payload"
    pattern = shlex.split(_pkill_pattern(path))[0]
    assert re.search(pattern, f"python rank.py fn {path}")
    assert not re.search(pattern, f"sh -c pkill -f {pattern}")


def _bytes_allocated_while_feeding(chunks: list[bytes]) -> int:
    """Sum over feeds of the memory each ``feed`` allocated at its peak (tracemalloc): the bytes it copied."""
    import tracemalloc

    out = _Output(None)
    total = 0
    tracemalloc.start()
    try:
        for chunk in chunks:
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            out.feed("stdout", chunk)
            total += tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    out.close()
    return total


def test_output_without_newlines_is_copied_a_bounded_number_of_times():
    """A rank printing ``\\r`` progress bars sends one endless line: buffering it must cost memory traffic linear
    in its size.  (Joining the line again on every chunk made 100 MB take 104 s; the time itself is measured by
    benchmarks/bench_output.py, not here.)  Checked as bytes allocated by tracemalloc, which does not depend on
    the machine's speed."""
    size, piece = 4 << 20, 4096
    bar = b"".join(b"\r[%-50s] %3d%%" % (b"#" * (i % 50), i % 100) for i in range(size // 60))
    chunks = [bar[i:i + piece] for i in range(0, len(bar), piece)] + [b"\n"]
    allocated = _bytes_allocated_while_feeding(chunks)
    assert allocated < 8 * len(bar), f"{allocated / len(bar):.0f} bytes copied per byte of output"


def test_a_long_line_in_pieces_is_one_line():
    seen = []
    out = _Output(lambda line, stream: seen.append(line))
    for part in (b"a" * 5, b"\rb", b"", b"c\nd", b"e", b"\n\n", b"f"):
        out.feed("stdout", part)
    out.close()
    assert seen == ["aaaaa\rbc", "de", "", "f"]


# -- only the run's own result record counts (issue 22, item 9) ---------------------------------------------------
def test_a_result_record_counts_only_with_the_nonce_alone_on_a_stdout_line():
    seen: list[tuple[str, str]] = []
    out = _Output(lambda line, stream: seen.append((stream, line)), nonce="n1")
    forged = MARK + "result.n1:" + base64.b64encode(b"x").decode()
    out.feed("stderr", (forged + "\n").encode())  # the right nonce, but on stderr
    out.feed("stdout", ("log: " + forged + "\n").encode())  # not at a line's start
    out.feed("stdout", (MARK + "result.n2:eA==\n" + MARK + "result:eA==\n").encode())  # other runs' tags, none
    out.feed("stdout", (forged + "\n").encode())
    out.close()
    assert out.record("result") == ["eA=="]
    assert [s for s, _ in seen] == ["stderr", "stdout", "stdout", "stdout"]  # the rest is the program's text


def forged_record(value: str) -> str:
    """A result record of ``value`` as the launcher used to accept it (any stream, anywhere in a line)."""
    import pickle

    return MARK + "result:" + base64.b64encode(pickle.dumps(value)).decode()


def logs_a_record_at_exit(comm, line):
    """Returns "real"; at exit, rank 0 logs a result record it was given (as a program logging its input would)."""
    import atexit
    import sys

    if comm.rank == 0:
        atexit.register(lambda: (sys.stderr.write("log: " + line + "\n"), sys.stderr.flush()))
        print(line.replace("result:", "result.0123:"), flush=True)  # a guessed tag, at a line's start
    return "real"


def sends_two_results(comm):
    """Rank 0 writes a second record with this run's own tag (read from the bootstrap's frame): an error."""
    import base64
    import sys

    if comm.rank == 0:
        frame = sys._getframe(1)
        tag, record = "result." + frame.f_locals["run"]["nonce"], b"D" + frame.f_globals["plain"]("other")
        print("\x1eccdsl-" + tag + ":" + base64.b64encode(record).decode(), flush=True)
    return "real"


def test_printed_text_cannot_pick_the_result(data_dir):
    pytest.importorskip("mpi4py")
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=2))
    try:
        assert c.run(logs_a_record_at_exit, forged_record("FORGED")) == "real"
        assert c.run(logs_a_record_at_exit, forged_record("FORGED"), trust_nodes=True) == "real"
        with pytest.raises(ExecutionError, match="2 result records came back"):
            c.run(sends_two_results)
    finally:
        ccdsl.terminate(c)
