"""The public spot files (feed and advisor) served from ``tests/data/spot`` on 127.0.0.1.

The files are hand-written (see ``tests/data/spot/README.md``).  ``SpotFiles.failures[path]`` makes the next N
requests for ``path`` answer 503 (the retry path); ``SpotFiles.seen`` lists every path asked for.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlparse

import pytest

SPOT_DATA = Path(__file__).parent / "data" / "spot"
FEED_PATH = "/spot.json"
ADVISOR_PATH = "/spot-advisor-data.json"


class SpotFiles(BaseHTTPRequestHandler):
    root: ClassVar[Path] = SPOT_DATA
    failures: ClassVar[dict[str, int]] = {}
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        type(self).seen.append(path)
        if self.failures.get(path, 0) > 0:
            self.failures[path] -= 1
            self.send_error(503, "slow down")
            return
        f = self.root / path.lstrip("/")
        if not f.is_file():
            self.send_error(404, "no such key")
            return
        data = f.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@dataclass(frozen=True)
class SpotServer:
    base: str

    @property
    def feed(self) -> str:
        return self.base + FEED_PATH

    @property
    def advisor(self) -> str:
        return self.base + ADVISOR_PATH


@pytest.fixture()
def spot_files(monkeypatch):
    """The fixture files on http://127.0.0.1:<port>, named by CCDSL_SPOT_FEED_URL / CCDSL_SPOT_ADVISOR_URL (so
    every path that reads them, with no option given, reads these); no waiting between retries."""
    from ccdsl.catalog import stream

    monkeypatch.setattr(stream, "BACKOFF", 0.0)
    SpotFiles.root, SpotFiles.failures, SpotFiles.seen = SPOT_DATA, {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), SpotFiles)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    files = SpotServer(f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("CCDSL_SPOT_FEED_URL", files.feed)
    monkeypatch.setenv("CCDSL_SPOT_ADVISOR_URL", files.advisor)
    yield files
    server.shutdown()
    server.server_close()
