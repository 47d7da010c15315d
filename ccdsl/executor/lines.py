"""Output bytes, as they arrive in chunks, split into lines: in time linear in the output and in bounded memory.

Every reader of a program's output shares this one splitter: the local and the remote set-up (``workdir.py``) and
the launcher's job output (``mpi._Output``).  A program may print without newlines for as long as it likes
(``\\r`` progress bars, a binary dump): each :data:`PIECE` of an unfinished line is passed on as a line of its own
(flushed, not cut: joined again, the pieces are the output, byte for byte), so the buffer never holds more than
one piece and one chunk.  A line starting with ``keep`` (the launcher's result record, tagged with the run's
nonce) is the exception: it is buffered whole, as the record is only useful whole.

The unfinished line is a list of chunks, joined once when its newline (or a full piece) arrives: joining on every
chunk would copy the whole line again each time (quadratic).
"""

from __future__ import annotations

PIECE = 1 << 20  # an unfinished line is passed on in pieces of at most this many bytes
CHUNK = 65536  # what the readers ask the operating system or the SSH channel for at a time


def _boundary(blob: bytes, cut: int, start: int) -> int:
    """``cut``, or the start of the UTF-8 character it would split (so that every piece decodes on its own), if
    that is after ``start``.  Bytes that are not UTF-8 are cut where they are."""
    for at in range(cut - 1, max(start, cut - 4), -1):
        lead = blob[at]
        if lead & 0xC0 == 0x80:  # a continuation byte: the character starts further back
            continue
        length = 2 if lead & 0xE0 == 0xC0 else 3 if lead & 0xF0 == 0xE0 else 4 if lead & 0xF8 == 0xF0 else 1
        return at if at + length > cut else cut
    return cut


class Lines:
    """Feed chunks, get whole lines (without their ``\\n``) and pieces of long unfinished ones."""

    def __init__(self, keep: bytes | None = None, piece: int = PIECE) -> None:
        self.keep = keep
        self.piece = piece
        self._parts: list[bytes] = []
        self._size = 0  # bytes in _parts
        self._kept = False  # the unfinished line starts with ``keep``: no pieces until its newline
        self._middle = False  # the buffer holds the rest of a line already passed on in part

    @property
    def buffered(self) -> int:
        """Bytes of the unfinished line held now (below :attr:`piece` unless the line is kept whole)."""
        return self._size

    def feed(self, chunk: bytes) -> list[bytes]:
        out: list[bytes] = []
        end = chunk.rfind(b"\n")
        if end >= 0:
            parts = self._parts
            parts.append(chunk[:end])
            done = (b"".join(parts) if len(parts) > 1 else parts[0]).split(b"\n")
            out += done[1:] if self._middle and not done[0] else done  # (a line ending just after its last piece)
            self._parts, self._size, self._kept, self._middle = [], 0, False, False
            chunk = chunk[end + 1:]
        if chunk:
            self._parts.append(bytes(chunk))
            self._size += len(chunk)
            if self._size >= self.piece and not self._kept:
                self._flush(out)
        return out

    def close(self) -> list[bytes]:
        """The rest of the unfinished line, if any (the output ended without a newline)."""
        rest = b"".join(self._parts)
        self._parts, self._size, self._kept, self._middle = [], 0, False, False
        return [rest] if rest else []

    def _flush(self, out: list[bytes]) -> None:
        blob = b"".join(self._parts)
        if self.keep is not None and not self._middle and blob.startswith(self.keep):
            self._parts, self._kept = [blob], True
            return
        start = 0
        while len(blob) - start >= self.piece:
            cut = _boundary(blob, start + self.piece, start)
            out.append(blob[start:cut])
            start = cut
        rest = blob[start:]
        self._parts, self._size, self._middle = ([rest] if rest else []), len(rest), True
