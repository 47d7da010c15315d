"""Spot prices and interruption buckets in the catalog (issue 14, the catalog side).

Per-zone history logic is checked with hand-written ``SpotPriceHistory`` entries (moto answers the real call with
placeholders: equal prices in every zone; ``test_catalog_refresh`` checks that plumbing against the moto server).
The public spot feed and advisor file are the hand-written fixtures of ``tests/data/spot`` served on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math

import pytest

from ccdsl.catalog import load, spot
from ccdsl.catalog.loader import user_catalog_dir
from ccdsl.catalog.pricelist import refresh_from_price_list, refresh_spot_only
from ccdsl.catalog.refresh import latest_spot_prices
from ccdsl.catalog.spot import ZonePrice, latest_by_zone, spot_columns
from ccdsl.catalog.user import read_records
from ccdsl.errors import CatalogError, CatalogRowError
from fixtures_spot import ADVISOR_PATH, FEED_PATH, SPOT_DATA, SpotFiles, spot_files
from test_catalog_pricelist import SOURCE, price_list

T0 = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.timezone.utc)


def entry(itype: str, zone: str, price: str, stamp: dt.datetime | None) -> dict:
    return {"InstanceType": itype, "AvailabilityZone": zone, "ProductDescription": "Linux/UNIX",
            "SpotPrice": price, "Timestamp": stamp}


HISTORY = [
    # m5.large: zone a was cheapest an hour ago, but its latest price is the highest now
    entry("m5.large", "us-east-1a", "0.0300", T0 - dt.timedelta(hours=1)),
    entry("m5.large", "us-east-1a", "0.0450", T0),
    entry("m5.large", "us-east-1b", "0.0419", T0 - dt.timedelta(minutes=5)),
    entry("m5.large", "us-east-1c", "0.0419", T0 - dt.timedelta(minutes=9)),  # a tie with b: zone name decides
    entry("m5.large", "us-east-1d", "0.0600", T0 - dt.timedelta(days=2)),
    # c5.xlarge: one zone; an older entry listed after the newer one must not replace it
    entry("c5.xlarge", "us-east-1f", "0.0700", T0),
    entry("c5.xlarge", "us-east-1f", "0.0100", T0 - dt.timedelta(days=1)),
    # an unreadable and a zero price are no prices
    entry("t3.micro", "us-east-1a", "n/a", T0),
    entry("t3.micro", "us-east-1b", "0", T0),
]


def test_each_zone_keeps_its_latest_price_and_zones_are_ordered_by_price_then_name() -> None:
    zones = latest_by_zone(HISTORY)
    assert set(zones) == {"m5.large", "c5.xlarge"}
    assert [(z.zone, z.price) for z in zones["m5.large"]] == [
        ("us-east-1b", 0.0419), ("us-east-1c", 0.0419), ("us-east-1a", 0.045), ("us-east-1d", 0.06)]
    assert zones["m5.large"][0].timestamp == T0 - dt.timedelta(minutes=5)
    assert [(z.zone, z.price, z.timestamp) for z in zones["c5.xlarge"]] == [("us-east-1f", 0.07, T0)]
    # the summary per type is the cheapest zone's *latest* price (not 0.03, zone a's price of an hour ago)
    assert latest_spot_prices(HISTORY) == {"m5.large": 0.0419, "c5.xlarge": 0.07}


def test_a_row_gets_the_cheapest_zone_with_its_own_timestamp() -> None:
    cols = spot_columns(latest_by_zone(HISTORY)["m5.large"])
    assert cols == {"spot_price_per_hour": 0.0419, "spot_zone": "us-east-1b",
                    "spot_zones": "us-east-1b=0.0419 us-east-1c=0.0419 us-east-1a=0.045 us-east-1d=0.06",
                    "spot_price_source": "aws-api", "spot_price_date": "2026-11-26T11:55:00Z"}
    none = spot_columns([])
    assert math.isnan(none.pop("spot_price_per_hour"))
    assert none == {"spot_zone": "", "spot_zones": "", "spot_price_source": "", "spot_price_date": ""}


def test_history_timestamps_in_other_forms() -> None:
    """The API gives aware datetimes; hand-written history may give ISO text or naive UTC datetimes."""
    history = [entry("m5.large", "eu-west-1a", "0.05", None),
               {**entry("m5.large", "eu-west-1a", "0.04", None), "Timestamp": "2026-11-26T10:00:00Z"},
               entry("m5.large", "eu-west-1b", "0.03", dt.datetime(2026, 11, 26, 9, 30)),
               entry("m5.large", "eu-west-1c", "0.02", None)]
    zones = latest_by_zone(history)["m5.large"]
    # a: the stamped entry replaces the unstamped one; c has no timestamp at all
    assert [(z.zone, z.price) for z in zones] == [("eu-west-1c", 0.02), ("eu-west-1b", 0.03), ("eu-west-1a", 0.04)]
    assert spot_columns(zones)["spot_price_date"] == ""
    assert spot_columns(zones[1:])["spot_price_date"] == "2026-11-26T09:30:00Z"
    assert spot.iso_utc(dt.datetime(2026, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))) == \
        "2025-12-31T23:00:00Z"


@pytest.mark.parametrize(("label", "code"), [
    ("us-east", "us-east-1"), ("us-west", "us-west-1"), ("eu-ireland", "eu-west-1"), ("eu-west", "eu-west-1"),
    ("eu-frankfurt", "eu-central-1"), ("apac-sin", "ap-southeast-1"), ("apac-syd", "ap-southeast-2"),
    ("apac-tokyo", "ap-northeast-1"), ("us-west-2", "us-west-2"), ("us-east-2", "us-east-2"),
    ("ap-south-2", "ap-south-2"), ("us-gov-west-1", "us-gov-west-1"), ("eu-central-2", "eu-central-2"),
])
def test_feed_region_labels_map_to_region_codes(label: str, code: str) -> None:
    assert spot.region_code(label) == code


@pytest.mark.parametrize("label", ["mars-north-1x", "apac-mumbai", "eu-stockholm", "", "US-EAST-1", "useast1",
                                   "us-east-1a"])
def test_unknown_feed_labels_are_not_guessed(label: str) -> None:
    assert spot.region_code(label) is None


def test_advisor_buckets_and_labels() -> None:
    assert [spot.interruption_bound(r) for r in range(5)] == [0.05, 0.1, 0.15, 0.2, 1.0]
    assert [spot.interruption_bound(r) for r in (-1, 5, 7, None, "1", True, 1.0)] == [None] * 7
    assert [spot.interruption_label(b) for b in (0.05, 0.1, 0.15, 0.2, 1.0)] == \
        ["<5%", "5-10%", "10-15%", "15-20%", ">20%"]
    assert spot.interruption_label(math.nan) == "unknown"
    assert spot.interruption_label(0.07) == "5-10%" and spot.interruption_label(0.0) == "<5%"


@pytest.mark.parametrize(("text", "parsed"), [
    ("us-east-1b=0.0419 us-east-1a=0.045", [("us-east-1b", 0.0419), ("us-east-1a", 0.045)]),
    ("us-west-2-lax-1a=0.5", [("us-west-2-lax-1a", 0.5)]),
    ("  eu-west-1a=1   eu-west-1b=1 ", [("eu-west-1a", 1.0), ("eu-west-1b", 1.0)]),
    ("", []),
])
def test_spot_zones_text_round_trips(text: str, parsed: list) -> None:
    assert spot.parse_zones(text) == parsed
    if parsed:
        assert spot.parse_zones(spot.format_zones(ZonePrice(z, p) for z, p in parsed)) == parsed


@pytest.mark.parametrize(("text", "message"), [
    ("us-east-1b:0.04", "is not ZONE=PRICE"),
    ("us-east-1b=abc", "is not ZONE=PRICE"),
    ("us-east-1b=0", "must be a number > 0"),
    ("us-east-1b=0.04 us-east-1b=0.05", "listed twice"),
    ("us-east-1a=0.05 us-east-1b=0.04", "cheapest first"),
    ("us-east-1b=0.04 us-east-1a=0.04", "cheapest first"),  # a tie is ordered by zone name
    ("US-EAST-1A=0.04", "is not ZONE=PRICE"),
])
def test_bad_spot_zones_text_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spot.parse_zones(text)


def test_prices_are_written_without_exponent_or_lost_digits() -> None:
    assert [spot.format_price(p) for p in (0.00001, 0.0419, 98.32, 0.1234567891, 3.0)] == \
        ["0.00001", "0.0419", "98.32", "0.1234567891", "3"]



# ------------------------------------------------------------------------------------------------ the public files

def test_the_feed_is_read_by_region_code_and_odd_entries_are_skipped() -> None:
    doc = json.loads((SPOT_DATA / "spot.json").read_text())
    prices, warnings = spot.parse_feed(doc, ["us-east-1", "us-east-2", "eu-west-1", "ap-northeast-1", "us-west-2"])
    # us-east -> us-east-1, eu-ireland -> eu-west-1, apac-tokyo -> ap-northeast-1, us-east-2 as it is
    assert prices == {
        # t3.micro's Linux price is N/A*, c5.xlarge has only a Windows price: neither is a Linux spot price
        "us-east-1": {"m5.large": 0.0391, "m7i.large": 0.0422, "t3.xlarge": 0.063, "c5.metal": 1.37,
                      "g5.xlarge": 0.4102, "zz9.nano": 0.0003},
        "us-east-2": {"m5.large": 0.0355},
        "eu-west-1": {"m7i.large": 0.0481, "t3.xlarge": 0.0701, "g5.xlarge": 0.399},
        "ap-northeast-1": {"m5.large": 0.0444},
    }
    assert warnings == ["the spot feed names 1 region label(s) ccdsl does not know, skipped: mars-north-1x",
                        "1 spot feed entries of the requested regions name no instance type (e.g. 'xl'), skipped"]
    with pytest.raises(CatalogError, match=r"no config\.regions"):
        spot.parse_feed({"vers": 1}, ["us-east-1"])


@pytest.mark.parametrize("label", ["us-west-2-phx-1", "us-east-1-bos-1", "us-west-2-lax-1a"])
def test_local_zone_labels_are_skipped_quietly(label: str) -> None:
    """AWS's feed lists Local Zones as regions: zones of their parent region, not unknown labels (no warning on
    every refresh), and their prices are not the region's."""
    zone = {"region": label, "instanceTypes": [{"sizes": [
        {"size": "m5.large", "valueColumns": [{"name": "linux", "prices": {"USD": "0.5"}}]}]}]}
    region = {"region": "us-west-2", "instanceTypes": [{"sizes": [
        {"size": "m5.large", "valueColumns": [{"name": "linux", "prices": {"USD": "0.04"}}]}]}]}
    prices, warnings = spot.parse_feed({"config": {"regions": [zone, region]}}, ["us-west-2", "us-east-1"])
    assert prices == {"us-west-2": {"m5.large": 0.04}} and warnings == []
    _, warned = spot.parse_feed({"config": {"regions": [{"region": "mars-north-1x"}]}}, ["us-west-2"])
    assert warned and "mars-north-1x" in warned[0]  # other unknown labels still warn


def test_the_advisor_gives_bucket_bounds() -> None:
    doc = json.loads((SPOT_DATA / "spot-advisor-data.json").read_text())
    bounds, warnings = spot.parse_advisor(doc, ["us-east-1", "eu-west-1", "sa-east-1"])
    assert bounds == {"us-east-1": {"m5.large": 0.05, "m7i.large": 0.1, "t3.xlarge": 0.15, "c5.xlarge": 0.2,
                                    "g4dn.xlarge": 1.0, "g5.xlarge": 1.0},  # Windows buckets are not Linux ones
                      "eu-west-1": {"g5.xlarge": 0.2, "m7i.large": 0.05}}
    assert warnings == ["1 spot advisor entries have no bucket 0..4 and were skipped"]  # t3.micro's r = 7


def test_public_files_over_http_with_retries(spot_files) -> None:
    """Both files over HTTP from 127.0.0.1; two 503 answers for the feed are retried; progress goes to stderr."""
    SpotFiles.failures = {FEED_PATH: 2}
    before = spot.now_utc()
    out = io.StringIO()
    public = spot.read_public(["us-east-1", "eu-west-1"], progress=out)
    assert SpotFiles.seen.count(FEED_PATH) == 3 and SpotFiles.seen.count(ADVISOR_PATH) == 1
    assert public.feed is not None and public.advisor is not None
    assert public.feed.url == spot_files.feed and before <= public.feed.fetched_at <= spot.now_utc()
    assert public.prices("eu-west-1") == {"m7i.large": 0.0481, "t3.xlarge": 0.0701, "g5.xlarge": 0.399}
    assert public.bounds("eu-west-1") == {"g5.xlarge": 0.2, "m7i.large": 0.05}
    size = (SPOT_DATA / "spot.json").stat().st_size
    assert f"spot feed: {size / 1e6:.1f} of {size / 1e6:.1f} MB (100%)" in out.getvalue().splitlines()


def test_an_oversized_or_broken_public_file_is_refused(spot_files, monkeypatch) -> None:
    with monkeypatch.context() as m, pytest.raises(CatalogError, match="more than 0 MB; that is not the spot feed"):
        m.setattr(spot, "MAX_PUBLIC_FILE_BYTES", 1000)
        spot.read_feed(["us-east-1"])
    with pytest.raises(CatalogError, match=r"spot feed .* answered HTTP 404") as info:
        spot.read_feed(["us-east-1"], spot_files.base + "/nothing.json")
    assert "--spot-feed-url" in (info.value.hint or "")
    # without --spot-only a failed file is a warning; the other file is still used
    public = spot.read_public(["us-east-1"], feed=spot_files.base + "/nothing.json")
    assert public.feed is None and public.bounds("us-east-1") is not None
    assert any("HTTP 404" in w and "no new spot prices" in w for w in public.warnings)


def _row(frame, region: str, itype: str):
    hit = frame[(frame.region == region) & (frame.instance_type == itype)]
    assert len(hit) == 1, (region, itype)
    return hit.iloc[0]


def test_price_list_refresh_with_spot(price_list, spot_files, data_dir) -> None:
    """On-demand prices from the offer file and spot prices from the feed, in one file: the feed prices the region
    as a whole (no zone), dated by the fetch, with the advisor's buckets."""
    public = spot.read_public(["us-east-1"])
    res = refresh_from_price_list("us-east-1", base_url=price_list, progress=io.StringIO(), spot=public)
    assert (res.rows, res.spot_priced, res.spot_interruption) == (5, 4, 3)
    merged = load()
    m7i = _row(merged, "us-east-1", "m7i.large")
    assert (m7i.price_per_hour, m7i.price_source) == (0.1008, SOURCE)
    assert (m7i.spot_price_per_hour, m7i.spot_zone, m7i.spot_zones, m7i.spot_price_source, m7i.spot_price_date) == \
        (0.0422, "", "", "aws-spot-feed", public.feed.fetched_at)
    assert m7i.spot_interruption == 0.1
    assert (_row(merged, "us-east-1", "c5.metal").spot_price_per_hour,
            _row(merged, "us-east-1", "g5.xlarge").spot_interruption) == (1.37, 1.0)
    p5 = _row(merged, "us-east-1", "p5.48xlarge")  # priced on demand, in neither spot file
    assert math.isnan(p5.spot_price_per_hour) and p5.spot_price_source == "" and math.isnan(p5.spot_interruption)
    meta = json.loads(res.path.with_suffix(".json").read_text())
    assert (meta["spot_feed_url"], meta["spot_fetched_at"], meta["spot_price_rows"]) == \
        (spot_files.feed, public.feed.fetched_at, 4)
    # rows of the region the refresh does not price keep the shipped (empty) spot columns
    assert math.isnan(_row(merged, "us-east-1", "m5.large").spot_price_per_hour)


def test_an_on_demand_refresh_keeps_the_previous_spot_data(price_list, spot_files, data_dir) -> None:
    first = spot.read_public(["us-east-1"])
    refresh_from_price_list("us-east-1", base_url=price_list, progress=io.StringIO(), spot=first)
    res = refresh_from_price_list("us-east-1", base_url=price_list, progress=io.StringIO())  # no --spot
    assert (res.spot_priced, res.spot_interruption) == (4, 3)
    m7i = _row(load(), "us-east-1", "m7i.large")
    assert (m7i.spot_price_per_hour, m7i.spot_price_date, m7i.spot_interruption) == \
        (0.0422, first.feed.fetched_at, 0.1)
    # a --spot refresh whose feed cannot be read keeps the old prices too, but takes the advisor's new answer
    broken = spot.read_public(["us-east-1"], feed=spot_files.base + "/gone.json")
    refresh_from_price_list("us-east-1", base_url=price_list, progress=io.StringIO(), spot=broken)
    assert _row(load(), "us-east-1", "m7i.large").spot_price_per_hour == 0.0422


def test_spot_only_updates_the_shipped_rows_without_the_offer_file(spot_files, data_dir) -> None:
    """No Price List server at all: --spot-only reads the two small files and adds spot columns to the shipped
    rows of the region, whose on-demand prices (and their provenance) stay as they were."""
    shipped = load(user=False)
    public = spot.read_public(["us-east-1"], require_feed=True)
    res = refresh_spot_only("us-east-1", public)
    region_rows = shipped[(shipped.region == "us-east-1") & (shipped.provider == "aws")]
    assert res.path == user_catalog_dir() / "aws-us-east-1.price-list.csv" and res.base == "shipped catalog"
    # prices: m5.large, m7i.large, t3.xlarge, c5.metal, g5.xlarge (zz9.nano is not a catalog type); buckets: those
    # but c5.metal, and c5.xlarge, g4dn.xlarge (t3.micro's bucket is invalid)
    assert (res.rows, res.spot_priced, res.spot_interruption) == (len(region_rows), 5, 6)
    merged = load()
    assert len(merged) == len(shipped)
    for t in ("m5.large", "t3.micro", "p5.48xlarge"):
        new, old = _row(merged, "us-east-1", t), _row(shipped, "us-east-1", t)
        assert (new.price_per_hour, new.price_source, new.price_date) == \
            (old.price_per_hour, old.price_source, old.price_date) or math.isnan(old.price_per_hour)
    m5 = _row(merged, "us-east-1", "m5.large")
    assert (m5.spot_price_per_hour, m5.spot_price_source, m5.spot_interruption) == (0.0391, "aws-spot-feed", 0.05)
    assert math.isnan(_row(merged, "us-east-1", "t3.micro").spot_price_per_hour)  # N/A* in the feed
    assert math.isnan(_row(merged, "us-east-1", "c5.xlarge").spot_price_per_hour)  # Windows only
    assert _row(merged, "us-east-1", "c5.xlarge").spot_interruption == 0.2  # but the advisor knows it
    assert FEED_PATH in SpotFiles.seen and all(p in (FEED_PATH, ADVISOR_PATH) for p in SpotFiles.seen)


def test_spot_only_keeps_an_earlier_price_list_refresh(price_list, spot_files, data_dir) -> None:
    refresh_from_price_list("eu-west-1", base_url=price_list, progress=io.StringIO())
    before = {r.instance_type: (r.price_per_hour, r.price_source) for r in load(user=True).itertuples()
              if r.region == "eu-west-1" and r.price_source == SOURCE}
    assert len(before) == 3
    shipped = load(user=False)
    res = refresh_spot_only("eu-west-1", spot.read_public(["eu-west-1"], require_feed=True))
    assert res.base == "aws-eu-west-1.price-list.csv and the shipped rows of other types"
    region_rows = shipped[(shipped.region == "eu-west-1") & (shipped.provider == "aws")]
    assert (res.rows, res.spot_priced, res.spot_interruption) == (len(region_rows), 3, 2)
    merged = load()
    assert len(merged) == len(shipped)
    for t, (price, source) in before.items():
        row = _row(merged, "eu-west-1", t)
        assert (row.price_per_hour, row.price_source, row.spot_price_source) == (price, source, "aws-spot-feed")
    assert _row(merged, "eu-west-1", "g5.xlarge").spot_price_per_hour == 0.399
    meta = json.loads(res.path.with_suffix(".json").read_text())
    assert meta["version"] == "20260801000000" and meta["spot_price_rows"] == 3  # the on-demand provenance stays


def test_spot_only_fails_cleanly(spot_files, data_dir) -> None:
    with pytest.raises(CatalogError, match="HTTP 404"):
        spot.read_public(["us-east-1"], feed=spot_files.base + "/gone.json", require_feed=True)
    with pytest.raises(CatalogError, match="prices no type in us-west-2; nothing written"):
        refresh_spot_only("us-west-2", spot.read_public(["us-west-2"], require_feed=True))
    assert not user_catalog_dir().exists() or not list(user_catalog_dir().iterdir())
    # an unreadable earlier file is not silently replaced by shipped rows
    d = user_catalog_dir()
    d.mkdir(parents=True, exist_ok=True)
    bad = d / "aws-us-east-1.price-list.csv"
    bad.write_text("provider,region,instance_type,vcpus,memory_gib,price_per_hour\naws,us-east-1,m5.large,two,8,1\n")
    with pytest.raises(CatalogError, match="cannot be read") as info:
        refresh_spot_only("us-east-1", spot.read_public(["us-east-1"], require_feed=True))
    assert "catalog remove" in (info.value.hint or "") and "two" in bad.read_text()


def test_a_later_user_catalog_that_hides_the_refresh_is_named(spot_files, data_dir) -> None:
    d = user_catalog_dir()
    d.mkdir(parents=True)
    (d / "aws-us-east-1.refresh.csv").write_text(
        "provider,region,instance_type,vcpus,memory_gib,price_per_hour\naws,us-east-1,m5.large,2,8,0.1\n")
    res = refresh_spot_only("us-east-1", spot.read_public(["us-east-1"], require_feed=True))
    assert any("aws-us-east-1.refresh.csv is merged after aws-us-east-1.price-list.csv and replaces 1 of its rows"
               in w for w in res.warnings), res.warnings
    assert math.isnan(_row(load(), "us-east-1", "m5.large").spot_price_per_hour)  # as the warning says


def test_refresh_cli_spot(price_list, spot_files, data_dir, capsys, monkeypatch) -> None:
    from ccdsl.cli import main

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    code = main(["catalog", "refresh", "--provider", "aws", "--from", "price-list", "--spot", "--region",
                 "us-east-1", "--region", "eu-west-1", "--price-list-url", price_list])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert SpotFiles.seen.count(FEED_PATH) == 1 and SpotFiles.seen.count(ADVISOR_PATH) == 1  # once for both
    assert "us-east-1: 5 rows (6 types priced" in out.out and "spot prices for 4 rows, interruption buckets " \
        "for 3" in out.out
    assert "eu-west-1: 3 rows" in out.out and "spot prices for 3 rows, interruption buckets for 2" in out.out
    assert "spot feed: " in out.err and "spot advisor file: " in out.err  # progress
    assert "warning: the spot feed names 1 region label(s) ccdsl does not know, skipped: mars-north-1x" in out.err
    # --spot-only: no offer file, other regions
    SpotFiles.seen.clear()
    code = main(["catalog", "refresh", "--from", "price-list", "--spot-only", "--region", "ap-northeast-1",
                 "--spot-feed-url", spot_files.feed, "--spot-advisor-url", spot_files.advisor])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "ap-northeast-1: spot prices for 1 of " in out.out and "on-demand prices unchanged (shipped catalog)" \
        in out.out and "interruption buckets for 1" in out.out
    assert sorted(set(SpotFiles.seen)) == [ADVISOR_PATH, FEED_PATH]
    for argv, message in [
        (["--spot-only", "--region", "us-east-1"], "--spot-only reads AWS's public spot feed: it goes with --from "
                                                   "price-list"),
        (["--from", "price-list", "--spot-feed-url", "http://127.0.0.1:9/x"], "go with --spot or --spot-only"),
        (["--spot-feed-url", "http://127.0.0.1:9/x", "--spot"], "--spot-feed-url goes with --from price-list"),
        (["--from", "price-list", "--spot-only", "--price-list-url", price_list], "--price-list-url does not apply"),
        (["--from", "price-list", "--spot-only", "--region", "us-west-2"], "prices no type in us-west-2"),
    ]:
        assert main(["catalog", "refresh", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv


# ------------------------------------------------------------------------------------------------ user catalogs

HEAD = "provider,region,instance_type,vcpus,memory_gib,price_per_hour,"


def _csv(tmp_path, spot_header: str, *cells: str):
    f = tmp_path / "mine.csv"
    f.write_text(HEAD + spot_header + "\n" + "".join(f"aws,us-east-1,m5.large,2,8,0.096,{c}\n" for c in cells))
    return f


def test_hand_written_spot_columns_are_completed_from_the_zones(tmp_path) -> None:
    f = _csv(tmp_path, "spot_zones,spot_interruption,spot_price_date",
             '"us-east-1b=0.0419 us-east-1a=0.045",0.1,2026-11-26T13:00:00+01:00')
    (row,) = read_records(f)
    assert (row["spot_price_per_hour"], row["spot_zone"], row["spot_zones"], row["spot_price_source"],
            row["spot_price_date"], row["spot_interruption"]) == \
        (0.0419, "us-east-1b", "us-east-1b=0.0419 us-east-1a=0.045", "user", "2026-11-26T12:00:00Z", 0.1)


def test_hand_written_spot_columns_in_toml(tmp_path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text('[[instance]]\nprovider = "aws"\nregion = "eu-west-1"\ninstance_type = "m5.large"\nvcpus = 2\n'
                 'memory_gib = 8\nprice_per_hour = 0.107\nspot_price_per_hour = 0.03\nspot_zone = "eu-west-1c"\n'
                 "spot_price_date = 2026-11-20\nspot_interruption = 0.2\n")
    (row,) = read_records(f)
    assert (row["spot_price_per_hour"], row["spot_zone"], row["spot_zones"], row["spot_price_date"],
            row["spot_price_source"], row["spot_interruption"]) == (0.03, "eu-west-1c", "", "2026-11-20", "user", 0.2)


@pytest.mark.parametrize(("header", "cell", "column", "message"), [
    ("spot_zones", "us-east-1a=0.05 us-east-1b=0.04", "spot_zones", "cheapest first"),
    ("spot_zones", "us-east-1a:0.05", "spot_zones", "is not ZONE=PRICE"),
    ("spot_zones", "us-east-1a=0.05 us-east-1a=0.06", "spot_zones", "listed twice"),
    ("spot_price_per_hour,spot_zones", '0.05,"us-east-1b=0.04 us-east-1a=0.05"', "spot_price_per_hour",
     "cheapest zone is us-east-1b=0.04"),
    ("spot_zone,spot_zones", "us-east-1a,us-east-1b=0.04", "spot_zone", "the cheapest zone in spot_zones is"),
    ("spot_interruption", "1.5", "spot_interruption", "from 0 to 1"),
    ("spot_interruption", "-0.1", "spot_interruption", ">= 0"),
    ("spot_price_per_hour", "0", "spot_price_per_hour", "must be > 0"),
    ("spot_price_per_hour,spot_price_date", "0.04,last tuesday", "spot_price_date", "ISO 8601"),
    ("spot_price_per_hour,spot_price_date", "0.04,2026-13-01", "spot_price_date", "ISO 8601 date or UTC time"),
    ("spot_zone", "us-east-1a", "spot_zone", "no spot price"),
    ("spot_price_source", "my notes", "spot_price_source", "no spot price"),
])
def test_bad_hand_written_spot_columns_name_file_line_and_column(tmp_path, header, cell, column, message) -> None:
    f = tmp_path / "mine.csv"
    empty = "," * header.count(",")  # the first row leaves the spot cells empty: valid
    f.write_text(HEAD + header + "\n# a comment line\n" + f"aws,us-east-1,c5.large,2,4,0.085,{empty}\n"
                 + f"aws,us-east-1,m5.large,2,8,0.096,{cell}\n")
    with pytest.raises(CatalogRowError) as info:
        read_records(f)
    assert (info.value.path, info.value.line, info.value.column) == (str(f), 4, column)
    assert message in info.value.message and info.value.message.startswith(f"{f}:4: column '{column}':")


def test_what_refreshes_write_reads_back_through_the_validation(tmp_path) -> None:
    """A refresh file is a user catalog: the API path's zones (moto's 0.00001 too) must pass the checks."""
    from ccdsl.catalog.schema import COLUMN_NAMES
    from ccdsl.catalog.store import csv_bytes

    (base,) = read_records(_csv(tmp_path, "spot_interruption", "0.05"))
    zones = latest_by_zone([entry("m5.large", "us-east-1a", "0.00001", T0), entry("m5.large", "us-east-1b",
                                                                                   "0.1234567891", T0)])["m5.large"]
    f = tmp_path / "aws-us-east-1.refresh.csv"
    f.write_bytes(csv_bytes([{**base, **spot_columns(zones)}], COLUMN_NAMES))
    (row,) = read_records(f)
    assert (row["spot_price_per_hour"], row["spot_zones"]) == (0.00001, "us-east-1a=0.00001 us-east-1b=0.1234567891")


# ------------------------------------------------------------------------------------------------ info and show

def test_info_and_show_name_spot_sources_dates_zones_and_buckets(spot_files, data_dir, capsys) -> None:
    from ccdsl.catalog.user import add
    from ccdsl.cli import main

    assert main(["catalog", "info"]) == 0
    out = capsys.readouterr().out
    assert "spot prices: none shipped (no licensed offline source)" in out and "--spot-only" in out
    assert "spot prices: no row has one" in out
    assert main(["catalog", "show", "g5.xlarge"]) == 0
    assert "spot: no spot price or interruption data for this type (none is shipped)" in capsys.readouterr().out

    public = spot.read_public(["us-east-1", "eu-west-1"], require_feed=True)
    refresh_spot_only("us-east-1", public)
    refresh_spot_only("eu-west-1", public)
    hand = data_dir.parent / "zones.csv"
    hand.write_text(HEAD + "spot_zones,spot_price_date,spot_price_source,spot_interruption\n"
                    'aws,us-east-2,g5.xlarge,4,16,1.006,"us-east-2b=0.35 us-east-2a=0.41",2026-11-20T08:00:00Z,'
                    "aws-api,0.07\n")
    add(hand)
    assert main(["catalog", "info"]) == 0
    out = capsys.readouterr().out
    assert "spot prices: none shipped" in out  # still true of the shipped catalog
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines()
             if line.startswith("  aws-")}
    assert table["aws-spot-feed"] == ["8", public.feed.fetched_at, public.feed.fetched_at]
    assert table["aws-api"] == ["1", "2026-11-20T08:00:00Z", "2026-11-20T08:00:00Z"]
    # buckets: us-east-1 6 (test above) + eu-west-1 2 + the hand-written row 1
    assert "rows with a spot interruption bucket: 9" in out

    assert main(["catalog", "show", "g5.xlarge"]) == 0
    out = capsys.readouterr().out
    spot_part = out[out.index("spot (Linux"):]
    rows = {line.split()[0]: line.split()[1:] for line in spot_part.splitlines()[3:] if line[:1].isalpha()}
    assert rows["us-east-2"] == ["0.35", "us-east-2b", "2026-11-20T08:00:00Z", "aws-api", "5-10%"]
    assert rows["eu-west-1"] == ["0.399", "-", public.feed.fetched_at, "aws-spot-feed", "15-20%"]
    assert rows["us-east-1"] == ["0.4102", "-", public.feed.fetched_at, "aws-spot-feed", ">20%"]
    assert list(rows)[:3] == ["us-east-2", "eu-west-1", "us-east-1"]  # cheapest spot price first
    assert "  zones in us-east-2: us-east-2b=0.35 us-east-2a=0.41" in spot_part
    assert "other region(s) have no spot data for this type" in spot_part
    # a type the advisor knows but the feed does not price: bucket shown, price unknown
    assert main(["catalog", "show", "c5.xlarge", "--region", "us-east-1"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out[out.index("spot (Linux"):].splitlines() if x.startswith("us-east-1"))
    assert line.split() == ["us-east-1", "-", "-", "-", "-", "15-20%"]


def test_info_warns_about_stale_spot_prices(data_dir, capsys, tmp_path) -> None:
    from ccdsl.catalog.user import add
    from ccdsl.cli import main
    from ccdsl.commands.catalog import stale_spot

    hand = tmp_path / "old-spot.csv"
    today = dt.datetime.now(dt.timezone.utc)
    old, fresh = (today - dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"), spot.now_utc()
    hand.write_text(HEAD + "spot_price_per_hour,spot_price_date,spot_price_source\n"
                    f"aws,us-east-1,m5.large,2,8,0.096,0.04,{old},aws-api\n"
                    f"aws,us-east-1,c5.large,2,4,0.085,0.03,{fresh},aws-spot-feed\n")
    add(hand)
    assert main(["catalog", "info"]) == 0
    err = capsys.readouterr().err
    assert f"warning: the spot prices of 1 rows (aws-api) date from {old}, 30 days ago" in err
    assert "(aws-spot-feed)" not in err
    assert [s for s, _n, _d in stale_spot(load())] == ["aws-api"]



def test_the_retired_jsonp_feed_is_a_clear_error(spot_files, tmp_path) -> None:
    """The frozen spot.js wraps a JavaScript object literal (unquoted keys) in callback(...): not the JSON feed."""
    (tmp_path / "spot.js").write_text("/* written by hand for ccdsl's tests */\ncallback({vers:0.01,config:{}});\n")
    SpotFiles.root = tmp_path
    with pytest.raises(CatalogError, match="is not valid JSON") as info:
        spot.read_feed(["ap-southeast-2"], spot_files.base + "/spot.js")
    assert "--spot-feed-url" in (info.value.hint or "") and "spot.js" in (info.value.hint or "")
