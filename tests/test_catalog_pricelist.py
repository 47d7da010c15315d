"""``catalog refresh --from price-list``: AWS's public Price List bulk files, streamed over real HTTP.

The files are the hand-written fixtures in ``tests/data/price-list`` (see its README: written by hand in the
documented shapes, not captured), served by a small HTTP server on 127.0.0.1 that can answer byte ranges, cut a
response short (a dropped connection) and ignore ranges.  No test reaches AWS.
"""

from __future__ import annotations

import io
import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlparse

import pytest

from ccdsl.catalog import load, pricelist, stream
from ccdsl.catalog.loader import user_catalog_dir
from ccdsl.catalog.pricelist import Progress, read_offer, refresh_from_price_list
from ccdsl.catalog.schema import COLUMN_NAMES
from ccdsl.errors import CatalogError

FIXTURES = Path(__file__).parent / "data" / "price-list"
US = "/offers/v1.0/aws/AmazonEC2/20260801000000/us-east-1/index.csv"
SOURCE = "aws-price-list@20260801000000"


class Files(BaseHTTPRequestHandler):
    """Static files under ``root`` with HTTP range support; ``cuts[path]`` lists, per coming response, how many
    body bytes to send before dropping the connection."""

    root: Path = FIXTURES
    cuts: ClassVar[dict[str, list[int]]] = {}  # shared by every request's handler
    ignore_range = False
    seen: ClassVar[list[tuple[str, str | None]]] = []
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        type(self).seen.append((path, self.headers.get("Range")))
        f = self.root / path.lstrip("/")
        if not f.is_file():
            self.send_error(404, "no such key")
            return
        size = f.stat().st_size
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if m and not self.ignore_range:
            start = int(m.group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(size - start))
        self.end_headers()
        cuts = self.cuts.get(path)
        cut = bool(cuts)
        limit = cuts.pop(0) if cut else size - start
        with f.open("rb") as src:  # streamed here too, so that the memory test measures the client alone
            src.seek(start)
            while limit > 0:
                chunk = src.read(min(limit, 1 << 16))
                if not chunk:
                    break
                self.wfile.write(chunk)
                limit -= len(chunk)
        self.wfile.flush()
        if cut:  # drop the connection before the announced length
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def price_list(monkeypatch):
    """The fixture files on http://127.0.0.1:<port>; no waiting between retries."""
    monkeypatch.setattr(stream, "BACKOFF", 0.0)
    Files.cuts, Files.ignore_range, Files.seen, Files.root = {}, False, [], FIXTURES
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


EXPECTED_US = {"t3.xlarge": 0.1664, "m7i.large": 0.1008, "g5.xlarge": 1.006, "p5.48xlarge": 55.04,
               "c5.metal": 4.08, "zz9.nano": 0.001}


def test_the_offer_file_is_filtered_as_aws_generators_do(price_list) -> None:
    """Only OnDemand, Linux, shared, no software, capacity Used, hourly USD rows of the region count: Windows,
    dedicated, reserved, unused reservations, SQL Server, a Local Zone and GB-month rows are ignored."""
    offer = read_offer("us-east-1", price_list + US)
    assert offer.prices == EXPECTED_US
    assert (offer.version, offer.publication_date, offer.source, offer.date) == (
        "20260801000000", "2026-08-01T00:00:00Z", SOURCE, "2026-08-01")
    assert offer.rows_read == 14 and offer.bytes_read == (FIXTURES / US.lstrip("/")).stat().st_size


def test_refresh_writes_a_user_catalog_with_provenance(price_list, data_dir) -> None:
    shipped = load(user=False)
    res = refresh_from_price_list("us-east-1", base_url=price_list, progress=io.StringIO())
    assert res.path == user_catalog_dir() / "aws-us-east-1.price-list.csv"
    assert res.unknown_types == ("zz9.nano",) and "zz9.nano" in res.warnings[0]
    assert (res.rows, res.price_source, res.price_date) == (5, SOURCE, "2026-08-01")
    # the documented path: service index, EC2's region index, then the region's CSV (not its JSON)
    assert [p for p, _ in Files.seen] == ["/offers/v1.0/aws/index.json",
                                          "/offers/v1.0/aws/AmazonEC2/current/region_index.json", US]
    meta = json.loads(res.path.with_suffix(".json").read_text())
    assert (meta["version"], meta["publication_date"], meta["rows"]) == ("20260801000000", "2026-08-01T00:00:00Z", 5)
    merged = load()
    assert len(merged) == len(shipped)  # every type was already a shipped row of us-east-1: replaced, not added
    for t, price in EXPECTED_US.items():
        if t == "zz9.nano":
            continue
        new = merged[(merged.instance_type == t) & (merged.region == "us-east-1")].iloc[0]
        old = shipped[(shipped.instance_type == t) & (shipped.region == "us-east-1")].iloc[0]
        assert (new.price_per_hour, new.price_source, new.price_date) == (price, SOURCE, "2026-08-01")
        for c in COLUMN_NAMES:  # the facts are the shipped catalog's
            if c not in ("price_per_hour", "price_source", "price_date"):
                assert new[c] == old[c] or (isinstance(old[c], float) and math.isnan(old[c])), (t, c)


def test_an_unpriced_shipped_pair_gets_its_price(price_list, data_dir) -> None:
    """g5.xlarge in eu-west-1 has no price in the shipped catalog; after the refresh it resolves priced."""
    from ccdsl.contract import Clause, Contract
    from ccdsl.resolver import resolve

    c = Contract("b", (Clause("node_machinetype", "just", ("g5.xlarge",)), Clause("cluster_locale", "just",
                                                                                   ("eu-west-1",))))
    assert resolve(c).price_per_hour is None
    refresh_from_price_list("eu-west-1", base_url=price_list, progress=io.StringIO())
    r = resolve(c)
    assert (r.price_per_hour, r.choice.price_source, r.choice.price_date) == (1.123, SOURCE, "2026-08-01")


@pytest.mark.parametrize("ignore_range", [False, True])
def test_a_dropped_connection_is_resumed(price_list, data_dir, ignore_range) -> None:
    """Cut twice mid-file: the client asks for the rest (Range); a server that ignores ranges is read again and
    the bytes already seen are skipped.  The result is the same as without cuts."""
    Files.cuts = {US: [1000, 2500]}
    Files.ignore_range = ignore_range
    offer = read_offer("us-east-1", price_list + US)
    assert offer.prices == EXPECTED_US and offer.rows_read == 14
    ranges = [r for p, r in Files.seen if p == US]
    assert ranges == [None, "bytes=1000-", "bytes=3500-" if not ignore_range else "bytes=2500-"]


def test_a_connection_that_keeps_dropping_fails_cleanly(price_list, data_dir) -> None:
    d = user_catalog_dir()
    d.mkdir(parents=True)
    previous = d / "aws-us-east-1.price-list.csv"
    previous.write_text("provider,region,instance_type,vcpus,memory_gib,price_per_hour\naws,us-east-1,m5.large,2,8,0.1\n")
    before = previous.read_bytes()
    Files.cuts = {US: [1000] + [0] * 50}  # one good piece, then nothing at all
    with pytest.raises(CatalogError, match="keeps dropping at byte 1000") as info:
        refresh_from_price_list("us-east-1", base_url=price_list, progress=io.StringIO())
    assert "unchanged" in info.value.hint
    assert previous.read_bytes() == before and sorted(p.name for p in d.iterdir()) == [previous.name]


def test_unknown_region_and_wrong_url_are_clear_errors(price_list, data_dir) -> None:
    with pytest.raises(CatalogError, match="no EC2 offer file for region 'eu-west-9'") as info:
        refresh_from_price_list("eu-west-9", base_url=price_list)
    assert "eu-west-1" in info.value.hint
    with pytest.raises(CatalogError, match="HTTP 404"):
        refresh_from_price_list("us-east-1", base_url=price_list + "/nothing-here")
    assert not user_catalog_dir().exists()


def test_progress_counts_bytes_and_rows() -> None:
    out = io.StringIO()
    p = Progress("us-east-1", out)
    for done in range(0, 1_000_001, 50_000):
        p.update(done, 1_000_000, done // 100)
    p.update(1_000_000, 1_000_000, 10_000, final=True)
    lines = out.getvalue().splitlines()
    assert 10 <= len(lines) <= 12  # every 10%, not every call
    assert lines[-1] == "us-east-1: 1.0 of 1.0 MB (100%), 10,000 rows"


def test_the_file_is_streamed_not_held_in_memory(price_list, tmp_path) -> None:
    """A 6 MB offer file (the fixture's rows repeated) is read with a peak of well under its size."""
    import tracemalloc

    text = (FIXTURES / US.lstrip("/")).read_text()
    head, body = text.split("\n", 6)[:6], text.split("\n", 6)[6]
    big = tmp_path / US.lstrip("/")
    big.parent.mkdir(parents=True)
    with big.open("w") as f:
        f.write("\n".join(head) + "\n")
        while f.tell() < 6_000_000:
            f.write(body)
    Files.root = tmp_path
    tracemalloc.start()
    try:
        offer = read_offer("us-east-1", price_list + US)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert offer.prices == EXPECTED_US and offer.bytes_read == big.stat().st_size
    assert peak < 1_500_000, peak


def test_refresh_cli_needs_no_credentials(price_list, data_dir, capsys, monkeypatch) -> None:
    from ccdsl.cli import main

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    code = main(["catalog", "refresh", "--provider", "aws", "--from", "price-list", "--region", "us-east-1",
                 "--region", "eu-west-1", "--price-list-url", price_list])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"us-east-1: 5 rows (6 types priced, 14 CSV rows, 0.0 MB); prices from {SOURCE} of 2026-08-01" in out.out
    assert "eu-west-1: 3 rows" in out.out
    assert "us-east-1: 0.0 of 0.0 MB (100%), 14 rows" in out.err  # the progress line
    assert main(["catalog", "info"]) == 0
    info = capsys.readouterr().out
    row = next(line.split() for line in info.splitlines() if line.strip().startswith(SOURCE))
    assert row[1:] == ["8", "2026-08-01", "2026-08-01"]
