"""Reading public HTTPS files that may be large and whose connections may drop: a resumable byte stream and a
progress line.

Both the Price List path (:mod:`ccdsl.catalog.pricelist`, hundreds of MB per region) and the public spot feeds
(:mod:`ccdsl.catalog.spot`, a few MB) read this way, so this module sits below both of them and imports neither.
"""

from __future__ import annotations

import http.client
import io
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from ccdsl.errors import CatalogError

ATTEMPTS = 6  # per file: the first try and five resumes
BACKOFF = 0.5  # seconds, doubled per retry
CHUNK = 1 << 16


# ------------------------------------------------------------------------------------------------ HTTP

def _open(url: str, timeout: float, start: int = 0):  # type: ignore[no-untyped-def]
    headers = {"User-Agent": "ccdsl catalog refresh", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)


def unreachable(url: str, exc: BaseException, what: str = "Price List file",
                 option: str = "--price-list-url") -> CatalogError:
    """The error for a file that cannot be read: an HTTP answer is quoted, anything else is a network problem;
    either way the hint says the previous catalog is unchanged."""
    if isinstance(exc, urllib.error.HTTPError):
        return CatalogError(f"the {what} {url} answered HTTP {exc.code} {exc.reason}",
                            hint=f"check {option} and the region; the previous catalog is unchanged")
    return CatalogError(f"cannot read the {what} {url}: {getattr(exc, 'reason', exc)}",
                        hint=f"check the network (or {option}); the previous catalog is unchanged")


class ResumableStream(io.RawIOBase):
    """A read-only byte stream over one URL that survives dropped connections.

    After an error or a short read it reconnects asking for the rest (``Range: bytes=<seen>-``); a ``206`` goes on
    where it stopped, a ``200`` (the server ignores ranges) is read from the start with the seen bytes skipped.
    ``total`` is the size the server announced (None if unknown), ``position`` the bytes delivered so far.
    """

    def __init__(self, url: str, timeout: float = 30.0, attempts: int | None = None, backoff: float | None = None,
                 sleep: Callable[[float], None] = time.sleep, what: str = "Price List file",
                 option: str = "--price-list-url") -> None:
        super().__init__()
        # the module's ATTEMPTS and BACKOFF are read now, not at definition time, so that tests can lower them
        self.url, self.timeout, self._sleep = url, timeout, sleep
        self.attempts = ATTEMPTS if attempts is None else attempts
        self.backoff = BACKOFF if backoff is None else backoff
        self.what, self.option = what, option
        self.position = 0
        self.total: int | None = None
        self.retries = 0
        self._response = None
        self._skip = 0
        self._stalls = 0  # reconnects in a row that brought no new byte
        self._mark = 0
        self._connect()

    def readable(self) -> bool:
        return True

    def _connect(self) -> None:
        last: BaseException | None = None
        for attempt in range(self.attempts):
            if attempt:
                self.retries += 1
                self._sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = _open(self.url, self.timeout, self.position)
            except urllib.error.HTTPError as exc:
                if exc.code < 500 and exc.code != 429:
                    raise unreachable(self.url, exc, self.what, self.option) from None
                last = exc
                continue
            except (OSError, urllib.error.URLError, http.client.HTTPException) as exc:
                last = exc
                continue
            status = getattr(response, "status", 200)
            length = response.headers.get("Content-Length")
            if status == 206:
                self._skip = 0
                if self.total is None:
                    m = re.search(r"/(\d+)$", response.headers.get("Content-Range", ""))
                    self.total = int(m.group(1)) if m else None
            else:
                self._skip = self.position  # a full answer: throw away what was delivered already
                self.total = int(length) if length and length.isdigit() else self.total
            self._response = response
            return
        raise unreachable(self.url, last or OSError("no answer"), self.what, self.option)

    def readinto(self, buffer: Any) -> int:
        while True:
            try:
                n = self._response.readinto(buffer) if self._response is not None else 0
            except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError):  # reset, timeout, cut
                n = -1
            if n and n > 0 and self._skip:
                drop = min(n, self._skip)
                self._skip -= drop
                if drop == n:
                    continue
                view = memoryview(buffer)
                view[: n - drop] = view[drop:n]
                n -= drop
            if n and n > 0:
                self.position += n
                return n
            if n == 0 and (self.total is None or self.position >= self.total):
                return 0  # the end, as announced (or nothing was announced)
            self._close_response()
            self._stalls = self._stalls + 1 if self.position == self._mark else 1
            self._mark = self.position
            if self._stalls > self.attempts:
                raise unreachable(self.url, OSError(f"the connection keeps dropping at byte {self.position}"),
                                   self.what, self.option)
            self._connect()  # dropped before the announced end: resume

    def chunks(self) -> Iterator[bytes]:
        while True:
            buf = bytearray(CHUNK)
            n = self.readinto(buf)
            if not n:
                self._close_response()
                return
            yield bytes(buf[:n])

    def _close_response(self) -> None:
        if self._response is not None:
            try:
                self._response.close()
            except OSError:
                pass
            self._response = None

    def close(self) -> None:
        self._close_response()
        super().close()


# ------------------------------------------------------------------------------------------------ progress

class Progress:
    """``us-east-1: 123.4 of 456.7 MB (27%), 1,234,567 rows``: redrawn in place on a terminal, otherwise printed
    at most every 10% (and once at the end) so that logs stay short."""

    def __init__(self, label: str, stream: TextIO | None = None, interval: float = 0.25) -> None:
        self.label, self.stream, self.interval = label, stream if stream is not None else sys.stderr, interval
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last = 0.0
        self._decile = -1
        self.lines: list[str] = []

    def text(self, done: int, total: int | None, rows: int | None) -> str:
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * done // max(total, 1)}%)" if total \
            else f"{done / 1e6:.1f} MB"
        return f"{self.label}: {size}" + (f", {rows:,} rows" if rows is not None else "")

    def update(self, done: int, total: int | None, rows: int | None, final: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if final or now - self._last >= self.interval:
                self._last = now
                self.stream.write("\r" + self.text(done, total, rows) + ("\n" if final else ""))
                self.stream.flush()
            return
        decile = 10 * done // total if total else -1
        if final or (total and decile > self._decile):
            self._decile = decile
            line = self.text(done, total, rows)
            self.lines.append(line)
            self.stream.write(line + "\n")




def read_json(url: str, *, limit: int, what: str, option: str, expected: str, timeout: float = 30.0,
              attempts: int | None = None, progress: TextIO | None = None, not_json: str = "") -> Any:
    """A public JSON file read whole through a :class:`ResumableStream`, refused past ``limit`` bytes.

    The indexes of the Price List and the spot feeds are small, so a bigger answer is a wrong URL (an offer file, an
    HTML page, a hostile server) and is refused before it fills memory.  ``expected`` says how big the right file is
    ("tens of KB"); every failure is a CatalogError naming ``option``, so the user knows what to change, and says the
    previous catalog is unchanged (nothing is written before the whole download parses).  ``not_json`` adds a
    likely reason to the hint of a file that does not parse.
    """
    keep = f"check {option}; the previous catalog is unchanged"
    stream = ResumableStream(url, timeout=timeout, attempts=attempts, what=what, option=option)
    meter = Progress(what, progress) if progress is not None else None
    data = bytearray()
    try:
        for chunk in stream.chunks():
            data += chunk
            if len(data) > limit:
                raise CatalogError(f"{url}: more than {limit >> 20} MB; that is not the {what} ({expected})",
                                   hint=keep)
            if meter is not None and (stream.total is None or len(data) < stream.total):  # the end: once, below
                meter.update(len(data), stream.total, None)
    finally:
        stream.close()
    if meter is not None:
        meter.update(len(data), stream.total, None, final=True)
    try:
        return json.loads(bytes(data))
    except RecursionError:
        raise CatalogError(f"the {what} {url} nests deeper than any JSON file of AWS's", hint=keep) from None
    except ValueError as exc:
        raise CatalogError(f"the {what} {url} is not valid JSON ({exc})",
                           hint=f"check {option}{not_json}; the previous catalog is unchanged") from None
