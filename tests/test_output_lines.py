"""Output without newlines (issue 22 item 5): the one splitter every output reader shares passes on each 1 MiB of an
unfinished line as a line, so nothing is lost, memory stays bounded, and ``\\r`` progress bars flow; the run's
result record is the one line kept whole.  Speed is measured by benchmarks/bench_output.py, not here."""

from __future__ import annotations

import base64
import hashlib
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ccdsl
from ccdsl.errors import ExecutionError, RankError
from ccdsl.executor import workdir
from ccdsl.executor.lines import CHUNK, PIECE, Lines
from ccdsl.executor.model import Node
from ccdsl.executor.mpi import MARK, Launcher, _Output
from fake_channel import FakeChannel, FakePool
from fixtures_executor import data_dir
from fixtures_netns import netns_hosts

__all__ = ["data_dir", "netns_hosts"]
MB = 1_000_000


def bars(size: int) -> bytes:
    """``size`` bytes of ``\\r`` progress bars, no newline; a 3-byte character here and there (a piece is cut
    before a character, never inside one)."""
    bar = b"".join(b"\r[%-50s] %3d%% \xe2\x96\x88" % (b"#" * (i % 50), i % 100) for i in range(100))
    return (bar * (size // len(bar) + 1))[:size]


class Digest:
    """Collects lines as their sizes and one hash of the bytes joined (100 MB need not be kept to compare)."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.hash = hashlib.sha256()

    def add(self, line: bytes | str) -> None:
        data = line.encode() if isinstance(line, str) else line
        self.sizes.append(len(data))
        self.hash.update(data)


# -- the splitter -------------------------------------------------------------------------------------------------
def test_100_mb_without_a_newline_come_in_pieces_that_join_to_the_input():
    size = 100 * MB
    blob = bars(size)
    lines, got, held = Lines(), Digest(), 0
    for i in range(0, size, CHUNK):
        for piece in lines.feed(blob[i:i + CHUNK]):
            got.add(piece)
        held = max(held, lines.buffered)
    for piece in lines.close():
        got.add(piece)
    assert max(got.sizes) <= PIECE and len(got.sizes) >= size // PIECE
    assert sum(got.sizes) == size and got.hash.digest() == hashlib.sha256(blob).digest()
    assert held < PIECE  # after each chunk; during one: this and the chunk, at most 1 MiB + 64 KiB
    assert all(p.decode() for p in _pieces(blob[:3 * PIECE]))  # each piece is whole characters


def _pieces(blob: bytes) -> list[bytes]:
    lines = Lines()
    out = [p for i in range(0, len(blob), CHUNK) for p in lines.feed(blob[i:i + CHUNK])]
    return out + lines.close()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400), st.lists(st.integers(1, 90), max_size=40), st.integers(4, 64))
def test_any_bytes_any_chunking_join_to_the_input(data, cuts, piece):
    """Lines and pieces, joined with the newlines where lines ended, are the input; no piece is longer than
    ``piece``; whole lines come out whole."""
    lines, out, pos = Lines(piece=piece), [], 0
    for n in [*cuts, len(data)]:
        out += lines.feed(data[pos:pos + n])
        pos += n
        assert lines.buffered < piece
    out += lines.close()
    assert all(len(p) <= piece for p in out)
    assert b"".join(out) == data.replace(b"\n", b"")
    short = [line for line in data.split(b"\n")[:-1] if len(line) < piece]
    assert set(short) <= set(out)


def test_the_result_record_stays_whole_and_other_lines_do_not():
    keep = b"\x1eccdsl-result.n1:"
    lines = Lines(keep, piece=64)
    record = keep + b"A" * 1000
    out = []
    for i in range(0, len(record), 10):
        out += lines.feed(record[i:i + 10])
    assert out == [] and lines.buffered == len(record)
    out += lines.feed(b"\n" + b"x" * 100 + keep + b"y" * 100)  # not at a line's start: pieces
    assert out[0] == record and all(len(p) <= 64 for p in out[1:])
    assert b"".join(out[1:] + lines.close()) == b"x" * 100 + keep + b"y" * 100


def test_the_launcher_keeps_a_result_record_of_many_pieces_whole():
    big = base64.b64encode(bytes(3 * PIECE)).decode()
    seen: list[str] = []
    out = _Output(lambda line, stream: seen.append(line), nonce="n1")
    data = ("x" * (3 * PIECE) + "\n" + MARK + "result.n1:" + big + "\n").encode()
    for i in range(0, len(data), CHUNK):
        out.feed("stdout", data[i:i + CHUNK])
    out.close()
    assert out.record("result") == [big]
    assert len(seen) == 3 and "".join(seen) == "x" * (3 * PIECE)


# -- the set-up, over a fake SSH channel and on this machine ------------------------------------------------------
def test_remote_setup_output_without_newlines_is_passed_on_in_pieces():
    import tracemalloc

    size = 100 * MB
    pool = FakePool(FakeChannel(size, bars(4 * CHUNK)))
    got = Digest()
    node = Node(0, "worker", "i-1", "ssh", extra={"ccdsl_dir": "/tmp/x"})
    expected = hashlib.sha256()
    unit = pool.chan.unit
    for i in range(0, size, CHUNK):
        start = i % len(unit)
        expected.update((unit[start:] + unit)[:min(CHUNK, size - i)])
    tracemalloc.start()
    try:
        workdir.setup_remote(pool, [node], "progress", lambda name, line: got.add(line))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pool.chan.closed and sum(got.sizes) == size and max(got.sizes) <= PIECE
    assert got.hash.digest() == expected.digest()
    assert peak < 8 * PIECE, f"{peak / MB:.1f} MB held while reading {size / MB:.0f} MB"


def drawn(n: int) -> str:
    """What PROGRESS prints."""
    return b"".join(b"\r[%-50s] %3d%%" % (b"#" * (i % 50), i % 100) for i in range(n)).decode()


def in_pieces(got: list[str], want: str) -> bool:
    """``got`` is ``want`` in as few pieces of at most 1 MiB as it takes."""
    return (len(got) == -(-len(want.encode()) // PIECE) and all(len(p.encode()) <= PIECE for p in got)
            and "".join(got) == want)


PROGRESS = "python -c \"import sys; b = sys.stdout.buffer; [b.write(b'\\r[%-50s] %3d%%' % (b'#' * (i % 50), " \
           "i % 100)) for i in range({n})]\""


def test_a_local_setup_with_progress_bars_streams_pieces(data_dir, tmp_path):
    """``deploy --setup`` of a command drawing ``\\r`` progress bars without a newline: its output arrives in
    pieces as it goes, none longer than 1 MiB, all of it."""
    pytest.importorskip("mpi4py")
    (tmp_path / "proj").mkdir()
    got: list[str] = []
    n = 60_000  # 58 bytes each: 3.48 MB
    c = ccdsl.deploy(ccdsl.cluster(node_provider="Local", node_count=1), workdir=tmp_path / "proj",
                     setup=PROGRESS.format(n=n), setup_stream=lambda node, line: got.append(line))
    c.terminate()
    want = drawn(n)
    assert in_pieces(got, want)


@pytest.mark.netns
def test_a_remote_setup_with_progress_bars_streams_pieces(netns_hosts, data_dir, tmp_path):
    from test_workdir import ssh_deploy

    (tmp_path / "proj").mkdir()
    got: dict[str, list[str]] = {}
    n = 40_000
    c = ssh_deploy(netns_hosts, workdir=tmp_path / "proj", setup=PROGRESS.format(n=n).replace("python", sys.executable),
                   setup_stream=lambda node, line: got.setdefault(node, []).append(line))
    c.terminate()
    want = drawn(n)
    assert sorted(got) == ["worker 0", "worker 1", "worker 2"]
    for pieces in got.values():
        assert in_pieces(pieces, want)


# -- runs ---------------------------------------------------------------------------------------------------------
def raises_a_long_message(comm):
    raise ValueError("m" * (3 * PIECE))


def test_an_error_with_a_message_longer_than_a_piece_is_reported(data_dir):
    """The rank's error record stays one line below a piece: its message and traceback are shortened."""
    pytest.importorskip("mpi4py")
    from test_mpi_local import local_nodes

    with pytest.raises(RankError, match=r"rank 0 on this machine raised ValueError: m+\.\.\. \(\d+ more characters\)"):
        Launcher(local_nodes(1), mode="local").run_function(raises_a_long_message, stream=None)


def test_a_local_run_printing_without_newlines_streams_pieces(tmp_path):
    pytest.importorskip("mpi4py")
    from test_mpi_local import local_nodes

    prog = tmp_path / "bars.py"
    prog.write_text("import sys\nb = sys.stdout.buffer\nfor i in range(100_000):\n"
                    "    b.write(b'\\r[%-50s] %3d%%' % (b'#' * (i % 50), i % 100))\n")
    got: list[str] = []
    assert Launcher(local_nodes(1), mode="local").run_script(prog, stream=lambda line, s: got.append(line)) == 0
    want = drawn(100_000)
    assert in_pieces(got, want)



def prints_then_dies(comm):
    import os
    import sys

    sys.stdout.write("#" * 3_000_000 + "END")
    sys.stdout.flush()
    os._exit(3)


def test_a_failed_job_quotes_the_end_of_its_long_last_lines():
    """The message of a failed job shows its last lines, each cut to its end: not megabytes of a progress bar."""
    pytest.importorskip("mpi4py")
    from test_mpi_local import local_nodes

    with pytest.raises(ExecutionError, match=r"the MPI job failed") as info:
        Launcher(local_nodes(1), mode="local").run_function(prints_then_dies, stream=None)
    assert info.value.message.rstrip().endswith("#END") and len(info.value.message) < 4 * 520
