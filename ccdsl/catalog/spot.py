"""Spot prices and interruption buckets: the values of the catalog's ``spot_*`` columns, from every source.

Three sources, one meaning (``ccdsl/catalog/schema.py``):

- ``DescribeSpotPriceHistory`` (credentials; :mod:`ccdsl.catalog.refresh`): entries per (type, zone) with a
  timestamp.  :func:`latest_by_zone` keeps each zone's *latest* entry, and :func:`spot_columns` turns a type's
  zones into the row's columns: the cheapest zone's price and name, every zone cheapest first (ties by zone
  name, so the order is deterministic), and the chosen entry's timestamp as ``spot_price_date``.
- AWS's public spot feed (``spot.json``, no account; :func:`read_feed`): one Linux price per (region, type).  It
  prices a region as a whole, so ``spot_zone`` and ``spot_zones`` stay '' and the date is the time of the fetch.
  Its region names are partly older labels (``us-east``, ``eu-ireland``, ``apac-tokyo``); :func:`region_code`
  maps those it knows and region codes, and an unknown label is reported and skipped, never guessed.
- AWS's public spot advisor file (:func:`read_advisor`): per region and type the bucket ``r`` 0..4 of the
  monthly interruption rate, stored as the bucket's upper bound (:data:`INTERRUPTION_BOUNDS`).

Both public files are snapshots that move and are a few MB: each is read once per refresh (with the Price List
path's resumable, retrying stream), refused above :data:`MAX_PUBLIC_FILE_BYTES`, and only the requested regions
are kept.  Their URLs come from the command line, else ``CCDSL_SPOT_FEED_URL`` / ``CCDSL_SPOT_ADVISOR_URL``,
else AWS's.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TextIO

from ccdsl.catalog.schema import SPOT_PRICE_COLUMNS
from ccdsl.errors import CatalogError

FEED_URL = "https://website.spot.ec2.aws.a2z.com/spot.json"
ADVISOR_URL = "https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json"
FEED_URL_ENV = "CCDSL_SPOT_FEED_URL"
ADVISOR_URL_ENV = "CCDSL_SPOT_ADVISOR_URL"
FEED_SOURCE = "aws-spot-feed"
API_SOURCE = "aws-api"
MAX_PUBLIC_FILE_BYTES = 64 << 20  # both files are a few MB; a bigger answer is not the file we expect

# The advisor's bucket index r -> the bucket's upper bound (a fraction of instances interrupted per month).
INTERRUPTION_BOUNDS: tuple[float, ...] = (0.05, 0.1, 0.15, 0.2, 1.0)
INTERRUPTION_LABELS: tuple[str, ...] = ("<5%", "5-10%", "10-15%", "15-20%", ">20%")

# Older region labels of the spot feed (and of the retired JSONP feeds) -> region codes.  A label that is itself
# a region code needs no entry.  Anything else is unknown: skipped with a warning.
FEED_REGION_LABELS: dict[str, str] = {
    "us-east": "us-east-1",
    "us-west": "us-west-1",
    "eu-ireland": "eu-west-1",
    "eu-west": "eu-west-1",
    "eu-frankfurt": "eu-central-1",
    "apac-sin": "ap-southeast-1",
    "apac-syd": "ap-southeast-2",
    "apac-tokyo": "ap-northeast-1",
}
_REGION_CODE = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
# A Local Zone as the feed names it: its parent region's code, the metro and a number (``us-west-2-phx-1``).  Its
# prices are a zone's of the parent region, not the region's: skipped quietly (they are not unknown labels).
_LOCAL_ZONE = re.compile(r"^([a-z]{2}(?:-[a-z]+)+-\d+)-[a-z]+-\d+[a-z]?$")
# a zone (us-east-1b, a Local Zone us-west-2-lax-1a) and a price, as written in spot_zones
_ZONE_ENTRY = re.compile(r"^([a-z]{2}(?:-[a-z0-9]+)+)=((?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$")


# ------------------------------------------------------------------------------------------------ values

@dataclass(frozen=True)
class ZonePrice:
    """One zone's latest spot price for a type; ``timestamp`` is None when the source gave none."""

    zone: str
    price: float
    timestamp: _dt.datetime | None = None


def iso_utc(stamp: _dt.datetime) -> str:
    """An ISO 8601 UTC timestamp to the second with a 'Z' (a naive datetime is taken as UTC)."""
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=_dt.timezone.utc)
    return stamp.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_utc() -> str:
    return iso_utc(_dt.datetime.now(_dt.timezone.utc))


def format_price(price: float) -> str:
    """A price as plain decimal text (0.0419, 0.00001, 3): no exponent, and exactly the float written (the
    shortest text that reads back as the same number), so that spot_zones and spot_price_per_hour agree."""
    text = format(Decimal(repr(float(price))), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def format_zones(zones: Iterable[ZonePrice]) -> str:
    return " ".join(f"{z.zone}={format_price(z.price)}" for z in zones)


def parse_zones(text: str) -> list[tuple[str, float]]:
    """``'us-east-1b=0.0419 us-east-1a=0.045'`` -> [(zone, price), ...]; ValueError saying what is wrong.

    The text must list each zone once, with a price > 0, cheapest first (ties by zone name) — the order deploy
    tries the zones in, so an out-of-order list is an error rather than silently re-sorted.
    """
    out: list[tuple[str, float]] = []
    for entry in text.split():
        m = _ZONE_ENTRY.match(entry)
        if m is None:
            raise ValueError(f"{entry!r} is not ZONE=PRICE (e.g. 'us-east-1b=0.0419 us-east-1a=0.045')")
        zone, price = m.group(1), float(m.group(2))
        if not (price > 0 and math.isfinite(price)):
            raise ValueError(f"{entry!r}: a spot price must be a number > 0")
        if any(zone == z for z, _ in out):
            raise ValueError(f"zone {zone} is listed twice")
        out.append((zone, price))
    for (z1, p1), (z2, p2) in itertools.pairwise(out):
        if (p2, z2) < (p1, z1):
            raise ValueError(f"list the zones cheapest first (deploy tries them in this order): "
                             f"{z2}={format_price(p2)} belongs before {z1}={format_price(p1)}")
    return out


def normalize_date(text: str) -> str:
    """A hand-written ``spot_price_date`` -> the catalog's form: a date stays a date, a date-time becomes ISO 8601
    UTC with a 'Z' (a time without a zone is taken as UTC); ValueError for anything else."""
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            _dt.date.fromisoformat(text)
            return text
        return iso_utc(_dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))
    except ValueError:
        raise ValueError(f"expected an ISO 8601 date or UTC time such as 2026-11-26T12:00:00Z, got {text!r}") from None


def interruption_bound(r: Any) -> float | None:
    """The advisor's bucket index (0..4) -> its upper bound; None for anything else."""
    if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r < len(INTERRUPTION_BOUNDS):
        return None
    return INTERRUPTION_BOUNDS[r]


def interruption_label(value: float) -> str:
    """A ``spot_interruption`` value -> the advisor's bucket label (<5%, 5-10%, ..., >20%), or 'unknown'.

    A hand-written value between the bounds (0.07) is shown by the bucket it falls in (5-10%)."""
    if value is None or math.isnan(value):
        return "unknown"
    for bound, label in zip(INTERRUPTION_BOUNDS, INTERRUPTION_LABELS):
        if value <= bound + 1e-12:
            return label
    return INTERRUPTION_LABELS[-1]


# ------------------------------------------------------------------------------------------------ the API's history

def latest_by_zone(history: Iterable[dict[str, Any]]) -> dict[str, list[ZonePrice]]:
    """``SpotPriceHistory`` entries -> instance type -> each zone's latest price, cheapest first (ties by zone).

    Entries without a zone count as one zone named ''.  Of two entries of one (type, zone) the one with the later
    timestamp wins; an entry without a timestamp never replaces one that has one.  Unreadable or non-positive
    prices are skipped (no price is better than a wrong one).
    """
    latest: dict[tuple[str, str], ZonePrice] = {}
    for h in history:
        try:
            price = float(h["SpotPrice"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (price > 0 and math.isfinite(price)):
            continue
        key = (str(h["InstanceType"]), str(h.get("AvailabilityZone") or ""))
        stamp = h.get("Timestamp")
        if isinstance(stamp, str):
            stamp = _dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        seen = latest.get(key)
        if seen is None or (stamp is not None and (seen.timestamp is None or _utc(stamp) > _utc(seen.timestamp))):
            latest[key] = ZonePrice(key[1], price, stamp)
    out: dict[str, list[ZonePrice]] = {}
    for (itype, _zone), zp in latest.items():
        out.setdefault(itype, []).append(zp)
    for zones in out.values():
        zones.sort(key=lambda z: (z.price, z.zone))
    return out


def _utc(stamp: _dt.datetime) -> _dt.datetime:
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=_dt.timezone.utc)


def spot_columns(zones: Sequence[ZonePrice], source: str = API_SOURCE) -> dict[str, Any]:
    """A type's zones (cheapest first, as :func:`latest_by_zone` gives them) -> the row's spot price columns."""
    if not zones:
        return {"spot_price_per_hour": math.nan, "spot_zone": "", "spot_zones": "", "spot_price_source": "",
                "spot_price_date": ""}
    best = zones[0]
    return {"spot_price_per_hour": best.price, "spot_zone": best.zone,
            "spot_zones": format_zones(zones) if all(z.zone for z in zones) else "", "spot_price_source": source,
            "spot_price_date": iso_utc(best.timestamp) if best.timestamp is not None else ""}


# ------------------------------------------------------------------------------------------------ public files

def feed_url(option: str | None = None) -> str:
    return option or os.environ.get(FEED_URL_ENV) or FEED_URL


def advisor_url(option: str | None = None) -> str:
    return option or os.environ.get(ADVISOR_URL_ENV) or ADVISOR_URL


def region_code(label: str) -> str | None:
    """A spot feed region label -> its region code; None when the label is neither known nor a region code."""
    label = label.strip()
    if label in FEED_REGION_LABELS:
        return FEED_REGION_LABELS[label]
    return label if _REGION_CODE.match(label) else None


@dataclass(frozen=True)
class SpotFeed:
    """The spot feed's Linux prices of the requested regions, and when and where it was read."""

    url: str
    fetched_at: str  # ISO 8601 UTC: the price date of every price in it
    prices: dict[str, dict[str, float]]  # region -> instance type -> USD/h
    warnings: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class Advisor:
    """The spot advisor's interruption buckets (upper bounds) of the requested regions."""

    url: str
    fetched_at: str
    bounds: dict[str, dict[str, float]]  # region -> instance type -> upper bound of the bucket
    warnings: tuple[str, ...] = field(default=())


def _fetch_json(url: str, what: str, option: str, progress: TextIO | None, timeout: float,
                attempts: int | None) -> Any:
    """A public JSON file through the Price List path's resumable stream, with progress; at most
    :data:`MAX_PUBLIC_FILE_BYTES`.  JSON only: the retired JSONP feed (spot.js, frozen since 2024-05) is JavaScript."""
    from ccdsl.catalog import stream

    return stream.read_json(url, limit=MAX_PUBLIC_FILE_BYTES, what=what, option=option, expected="a few MB",
                            timeout=timeout, attempts=attempts, progress=progress,
                            not_json=" (the JSON file, not the retired spot.js)")


def _shaped(value: Any, kind: type, where: str, what: str = "spot feed") -> Any:
    """``value`` when it is a ``kind`` (a missing one, None, is an empty one); else a CatalogError naming where in
    the file: a file of another shape is not guessed at."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        noun = "a list" if kind is list else "an object" if kind is dict else kind.__name__
        raise CatalogError(f"the {what}'s {where} is {type(value).__name__} {json.dumps(value)[:30]}, not {noun} "
                           "(not the shape of AWS's file)")
    return value


def parse_feed(doc: Any, regions: Iterable[str]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The feed's JSON -> (region -> type -> Linux USD/h for the requested regions, warnings).

    Shape: ``{config: {regions: [{region, instanceTypes: [{type, sizes: [{size, valueColumns: [{name: "linux",
    prices: {USD: "0.0125"}}]}]}]}]}}``.  ``size`` is the instance type; a price that is not a number > 0
    ("N/A*") is skipped.  Local Zones (``us-west-2-phx-1``: zones of their parent region) are skipped quietly;
    other unknown region labels are skipped with one warning naming them.
    """
    wanted = set(regions)
    regs = (doc.get("config") or {}).get("regions") if isinstance(doc, dict) else None
    if not isinstance(regs, list):
        raise CatalogError("the spot feed has no config.regions list (not the shape of AWS's spot.json)")
    out: dict[str, dict[str, float]] = {}
    unknown: list[str] = []
    odd_sizes: list[str] = []  # the retired feeds named sizes ("xl") instead of types: no type to price
    for r, reg in enumerate(regs):
        if not isinstance(reg, dict):
            continue
        label = str(reg.get("region", ""))
        code = region_code(label)
        if code is None and _LOCAL_ZONE.match(label.strip()):
            continue  # a Local Zone of its parent region
        if code is None:
            unknown.append(label)
            continue
        if code not in wanted:
            continue
        prices = out.setdefault(code, {})
        at = f"config.regions[{r}]"
        for g, group in enumerate(_shaped(reg.get("instanceTypes"), list, f"{at}.instanceTypes")):
            group = _shaped(group, dict, f"{at}.instanceTypes[{g}]")
            for z, size in enumerate(_shaped(group.get("sizes"), list, f"{at}.instanceTypes[{g}].sizes")):
                where = f"{at}.instanceTypes[{g}].sizes[{z}]"
                size = _shaped(size, dict, where)
                itype = str(size.get("size", ""))
                if "." not in itype:
                    odd_sizes.append(itype)
                    continue
                for c, col in enumerate(_shaped(size.get("valueColumns"), list, f"{where}.valueColumns")):
                    if not isinstance(col, dict) or col.get("name") != "linux":
                        continue
                    usd = _shaped(col.get("prices"), dict, f"{where}.valueColumns[{c}].prices").get("USD", "nan")
                    try:
                        price = float(usd) if isinstance(usd, (str, int, float)) else math.nan
                    except (ValueError, OverflowError):
                        continue
                    if itype and price > 0 and math.isfinite(price):
                        prices[itype] = min(price, prices.get(itype, math.inf))
    warnings = []
    if unknown:
        warnings.append(f"the spot feed names {len(unknown)} region label(s) ccdsl does not know, skipped: "
                        f"{', '.join(sorted(set(unknown)))}")
    if odd_sizes:
        warnings.append(f"{len(odd_sizes)} spot feed entries of the requested regions name no instance type (e.g. "
                        f"{odd_sizes[0]!r}), skipped")
    return out, warnings


def parse_advisor(doc: Any, regions: Iterable[str]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """The advisor's JSON -> (region -> type -> interruption bound for the requested regions, warnings).

    Shape: ``{ranges: [...], spot_advisor: {<region>: {Linux: {<type>: {s: <savings %>, r: <0..4>}}}}}``; an entry
    whose ``r`` is not 0..4 is skipped and counted in a warning.
    """
    adv = doc.get("spot_advisor") if isinstance(doc, dict) else None
    if not isinstance(adv, dict):
        raise CatalogError("the spot advisor file has no spot_advisor object (not the shape of AWS's file)")
    out: dict[str, dict[str, float]] = {}
    odd = 0
    for region in regions:
        entry_of = _shaped(adv.get(region), dict, f"spot_advisor.{region}", "spot advisor file")
        linux = _shaped(entry_of.get("Linux"), dict, f"spot_advisor.{region}.Linux", "spot advisor file")
        bounds: dict[str, float] = {}
        for itype, entry in linux.items():
            bound = interruption_bound((entry or {}).get("r") if isinstance(entry, dict) else None)
            if bound is None:
                odd += 1
                continue
            bounds[str(itype)] = bound
        if bounds:
            out[region] = bounds
    warnings = [f"{odd} spot advisor entries have no bucket 0..4 and were skipped"] if odd else []
    return out, warnings


def read_feed(regions: Iterable[str], url: str | None = None, progress: TextIO | None = None,
              timeout: float = 30.0) -> SpotFeed:
    """Fetch the public spot feed once and keep the requested regions' Linux prices."""
    url = feed_url(url)
    fetched = now_utc()
    doc = _fetch_json(url, "spot feed", "--spot-feed-url", progress, timeout, None)
    prices, warnings = parse_feed(doc, regions)
    return SpotFeed(url, fetched, prices, tuple(warnings))


def read_advisor(regions: Iterable[str], url: str | None = None, progress: TextIO | None = None,
                 timeout: float = 30.0, attempts: int | None = None) -> Advisor:
    """Fetch the public spot advisor file once and keep the requested regions' interruption buckets."""
    url = advisor_url(url)
    fetched = now_utc()
    doc = _fetch_json(url, "spot advisor file", "--spot-advisor-url", progress, timeout, attempts)
    bounds, warnings = parse_advisor(doc, regions)
    return Advisor(url, fetched, bounds, tuple(warnings))


# ------------------------------------------------------------------------------------------------ both public files

@dataclass(frozen=True)
class PublicSpot:
    """What the public files said for the requested regions; None for a file that could not be read (its
    failure is among the warnings)."""

    feed: SpotFeed | None
    advisor: Advisor | None
    warnings: tuple[str, ...] = field(default=())

    def prices(self, region: str) -> dict[str, float] | None:
        """The feed's prices of ``region``; None when the feed was not read or does not price the region."""
        return None if self.feed is None else self.feed.prices.get(region)

    def bounds(self, region: str) -> dict[str, float] | None:
        return None if self.advisor is None else self.advisor.bounds.get(region)


def read_public(regions: Sequence[str], *, feed: str | None = None, advisor: str | None = None,
                progress: TextIO | None = None, timeout: float = 30.0, require_feed: bool = False) -> PublicSpot:
    """Read the spot feed and the advisor file once for all ``regions``.  A file that cannot be read is a warning,
    except the feed when ``require_feed`` (``--spot-only``: without prices there is nothing to write)."""
    warnings: list[str] = []
    got_feed: SpotFeed | None = None
    got_advisor: Advisor | None = None
    try:
        got_feed = read_feed(regions, feed, progress, timeout)
        warnings.extend(got_feed.warnings)
        missing = [r for r in regions if r not in got_feed.prices]
        if missing:
            warnings.append(f"the spot feed prices no type in {', '.join(missing)}")
    except CatalogError as exc:
        if require_feed:
            raise
        warnings.append(f"{exc.message}; no new spot prices")
    try:
        got_advisor = read_advisor(regions, advisor, progress, timeout)
        warnings.extend(got_advisor.warnings)
        missing = [r for r in regions if r not in got_advisor.bounds]
        if missing:
            warnings.append(f"the spot advisor file has no interruption data for {', '.join(missing)}")
    except CatalogError as exc:
        warnings.append(f"{exc.message}; no new interruption data")
    return PublicSpot(got_feed, got_advisor, tuple(warnings))




def apply_public(row: dict[str, Any], public: PublicSpot, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """``row`` with its spot columns from the public files.

    A file that answered for the row's region decides: the feed's price (or none, when the feed has no Linux
    price for the type now), the advisor's bucket (or unknown).  A file that did not answer leaves the columns
    as ``previous`` had them (the earlier refresh's dated values) or empty: no answer is no news, not "no spot".
    """
    region, itype = str(row["region"]), str(row["instance_type"])
    out = dict(row)
    prices = public.prices(region)
    if prices is not None and public.feed is not None:
        price = prices.get(itype)
        out.update({"spot_price_per_hour": price if price is not None else math.nan, "spot_zone": "",
                    "spot_zones": "", "spot_price_source": FEED_SOURCE if price is not None else "",
                    "spot_price_date": public.feed.fetched_at if price is not None else ""})
    else:
        out.update({c: (previous or {}).get(c, "" if c != "spot_price_per_hour" else math.nan)
                    for c in SPOT_PRICE_COLUMNS})
    bounds = public.bounds(region)
    if bounds is not None:
        out["spot_interruption"] = bounds.get(itype, math.nan)
    else:
        out["spot_interruption"] = (previous or {}).get("spot_interruption", math.nan)
    return out
