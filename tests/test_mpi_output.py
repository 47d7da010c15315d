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
