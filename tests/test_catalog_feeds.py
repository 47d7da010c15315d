"""Files fed to ``ccdsl catalog refresh`` that are not the shape of AWS's (issue 22 item 7): each is one error line
(exit 1 or 2; for the spot advisor, a warning and the refresh goes on), never a traceback, a local file read as
prices, or a 300 MB index held in memory.  Served on 127.0.0.1 by the refresh tests' own servers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ccdsl.catalog import pricelist
from ccdsl.cli import main
from fixtures_spot import SPOT_DATA, SpotFiles, spot_files
from test_catalog_pricelist import FIXTURES, US, Files, price_list

__all__ = ["price_list", "spot_files"]
SERVICE = "offers/v1.0/aws/index.json"
REGIONS = "offers/v1.0/aws/AmazonEC2/current/region_index.json"


def _one_error(capsys, code: int, *words: str) -> str:
    out = capsys.readouterr()
    assert code in (1, 2), out.err
    assert "Traceback" not in out.err
    errors = [line for line in out.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.err
    for w in words:
        assert w in errors[0], errors[0]
    return errors[0]


@pytest.fixture()
def offers(price_list, tmp_path):
    """A copy of the Price List fixtures that a test may spoil (the server serves it)."""
    root = tmp_path / "price-list"
    shutil.copytree(FIXTURES, root)
    Files.root = root
    return price_list, root


def _refresh(url: str) -> int:
    return main(["catalog", "refresh", "--provider", "aws", "--from", "price-list", "--region", "us-east-1",
                 "--price-list-url", url])


def test_a_version_url_to_a_local_file_is_refused(offers, data_dir, capsys, tmp_path) -> None:
    url, root = offers
    local = tmp_path / "prices.csv"
    shutil.copy(root / US.lstrip("/"), local)  # a valid offer file: the old code made it the catalog's prices
    doc = json.loads((root / REGIONS).read_text())
    doc["regions"]["us-east-1"]["currentVersionUrl"] = local.as_uri()
    (root / REGIONS).write_text(json.dumps(doc))
    _one_error(capsys, _refresh(url), "file://", "refused")
    assert not (data_dir / "catalogs").exists() or not list((data_dir / "catalogs").iterdir())


def test_a_region_index_on_another_host_is_refused(offers, data_dir, capsys) -> None:
    url, root = offers
    doc = json.loads((root / SERVICE).read_text())
    doc["offers"]["AmazonEC2"]["currentRegionIndexUrl"] = "http://127.0.0.2:9/region_index.json"
    (root / SERVICE).write_text(json.dumps(doc))
    _one_error(capsys, _refresh(url), "points at http://127.0.0.2:9", "refused")


@pytest.mark.parametrize("spoil", ["offers-list", "regions-list", "entry-str", "deep"])
def test_an_index_of_another_shape_is_one_error(offers, data_dir, capsys, spoil) -> None:
    url, root = offers
    if spoil == "offers-list":
        (root / SERVICE).write_text(json.dumps({"offers": ["AmazonEC2"]}))
    elif spoil == "regions-list":
        (root / REGIONS).write_text(json.dumps({"regions": ["us-east-1"]}))
    elif spoil == "entry-str":
        (root / REGIONS).write_text(json.dumps({"regions": {"us-east-1": "abc"}}))
    else:
        (root / SERVICE).write_text("[" * 200_000)
    _one_error(capsys, _refresh(url))


def test_an_index_above_8_mb_is_not_read_to_the_end(offers, data_dir, capsys, monkeypatch) -> None:
    url, root = offers
    doc = json.loads((root / SERVICE).read_text())
    doc["padding"] = "x" * (9 << 20)  # a valid index, only too big to be one
    (root / SERVICE).write_text(json.dumps(doc))
    read = []
    real = pricelist.ResumableStream.chunks

    def counted(self):
        for chunk in real(self):
            read.append(len(chunk))
            yield chunk
    monkeypatch.setattr(pricelist.ResumableStream, "chunks", counted)
    _one_error(capsys, _refresh(url), "more than 8 MB")
    assert sum(read) <= pricelist.MAX_INDEX_BYTES + pricelist.CHUNK


def test_a_csv_field_above_the_csv_limit_is_one_error(offers, data_dir, capsys) -> None:
    url, root = offers
    offer = root / US.lstrip("/")
    lines = offer.read_text().splitlines(keepends=True)
    lines.insert(7, '"' + "x" * 200_000 + '"\n')
    offer.write_text("".join(lines))
    _one_error(capsys, _refresh(url), "line")


@pytest.fixture()
def spot_copy(spot_files, tmp_path):
    root = tmp_path / "spot"
    shutil.copytree(SPOT_DATA, root)
    SpotFiles.root = root
    return spot_files, root


def _spot_only() -> int:
    return main(["catalog", "refresh", "--from", "price-list", "--spot-only", "--region", "us-east-1"])


@pytest.mark.parametrize("spoil", ["instanceTypes-str", "sizes-int", "prices-list", "deep"])
def test_a_spot_feed_of_another_shape_is_one_error(spot_copy, data_dir, capsys, spoil) -> None:
    _, root = spot_copy
    feed = root / "spot.json"
    doc = json.loads(feed.read_text())
    region = doc["config"]["regions"][0]
    if spoil == "instanceTypes-str":
        region["instanceTypes"] = "abc"
    elif spoil == "sizes-int":
        region["instanceTypes"][0]["sizes"] = 3
    elif spoil == "prices-list":
        region["instanceTypes"][0]["sizes"][0]["valueColumns"][0]["prices"] = ["0.1"]
    feed.write_text("[" * 200_000 if spoil == "deep" else json.dumps(doc))
    _one_error(capsys, _spot_only(), "spot feed")


def test_a_spot_advisor_of_another_shape_is_a_warning(spot_copy, data_dir, capsys) -> None:
    _, root = spot_copy
    advisor = root / "spot-advisor-data.json"
    doc = json.loads(advisor.read_text())
    doc["spot_advisor"]["us-east-1"] = {"Linux": "abc"}
    advisor.write_text(json.dumps(doc))
    assert _spot_only() == 0
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "spot_advisor.us-east-1.Linux" in out.err and "warning" in out.err
