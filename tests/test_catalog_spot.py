"""Spot prices and interruption buckets in the catalog (issue 14, the catalog side).

Per-zone history logic is checked with hand-written ``SpotPriceHistory`` entries (moto answers the real call with
placeholders: equal prices in every zone; ``test_catalog_refresh`` checks that plumbing against the moto server).
The public spot feed and advisor file are the hand-written fixtures of ``tests/data/spot`` served on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import math

import pytest

from ccdsl.catalog import spot
from ccdsl.catalog.refresh import latest_spot_prices
from ccdsl.catalog.spot import ZonePrice, latest_by_zone, spot_columns

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
