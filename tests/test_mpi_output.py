"""How the launcher reads a job's output: lines for the user, framed records for ccdsl, however the bytes arrive."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st

from ccdsl.executor.mpi import MARK, _Output, _pkill_pattern

text = st.text(st.characters(blacklist_characters="\n\x1e", blacklist_categories=("Cs",)), max_size=40)
record = st.tuples(st.sampled_from(["result", "error", "pid"]), st.binary(max_size=64))
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
    out = _Output(lambda line, stream: seen.append(line))
    pos = 0
    for n in cuts:
        out.feed("stdout", data[pos:pos + n])
        pos += n
    out.feed("stdout", data[pos:])
    out.close()
    assert seen == [v for k, v in items if k == "line"]
    assert [(k, base64.b64decode(d)) for k, d in out.records] == [v for k, v in items if k == "record"]


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
