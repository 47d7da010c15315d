"""``ccdsl catalog refresh --from price-list``: on-demand prices from AWS's public Price List bulk files.

No AWS account is needed: the files are public HTTPS.  The path is the one AWS documents: the service index
(``/offers/v1.0/aws/index.json``) names EC2's region index, which names each region's offer file; ccdsl reads the
CSV form of that file.  A large region's file is hundreds of MB, so it is *streamed*: bytes go through a CSV
reader row by row and only the lowest matching price per instance type is kept.  A dropped connection is resumed
where it stopped (an HTTP ``Range`` request; a server that ignores it is read again from the start and the bytes
already seen are skipped), a few times with backoff.  Progress (bytes of the total, rows read) goes to stderr.

Which rows count is the filter AWS's own price generators share (Karpenter, SkyPilot, ec2instances.info): term
OnDemand, Linux, shared tenancy, no pre-installed software, capacity status Used, market OnDemand where the column
exists, hourly USD, product family "Compute Instance" (or its bare-metal variant).  A zero price is unknown.

Specs are not in question here: a priced type gets the shipped catalog's facts for that type (moto's
DescribeInstanceTypes snapshot), so a refreshed row means what a shipped row means; a type the shipped catalog
does not describe is counted and left out.  Every row records ``price_source = aws-price-list@<version>`` and
``price_date`` = the file's publication date.  The user catalog ``aws-<region>.price-list.csv`` and its ``.json``
sidecar are written atomically after the whole file was read, so a failure leaves the previous ones.

Spot (``--spot``, ``--spot-only``): the public spot feed and advisor file (:mod:`ccdsl.catalog.spot`, a few MB,
read once for all regions) fill the same file's spot columns.  ``--spot-only`` skips the offer file and updates the
spot columns of the rows the user already has for the region (the previous file, else the shipped rows), so a
user who wants spot prices alone never downloads hundreds of MB.  An on-demand refresh keeps the previous file's
spot columns (they carry their own date) unless new spot data replaces them.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ccdsl.catalog.stream import CHUNK, Progress, ResumableStream, read_json
from ccdsl.errors import CatalogError

if TYPE_CHECKING:
    from ccdsl.catalog.spot import PublicSpot

BASE_URL = "https://pricing.us-east-1.amazonaws.com"
SERVICE_INDEX = "/offers/v1.0/aws/index.json"
OFFER_CODE = "AmazonEC2"
SOURCE_PREFIX = "aws-price-list"
MAX_INDEX_BYTES = 8 << 20  # AWS's indexes are tens of KB; a bigger answer is not an index

_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d+$")
FAMILIES = ("Compute Instance", "Compute Instance (bare metal)")
# column -> accepted values ("" = empty cell); a column absent from the file is not checked
FILTER: dict[str, tuple[str, ...]] = {
    "TermType": ("OnDemand",),
    "Operating System": ("Linux",),
    "Tenancy": ("Shared",),
    "Pre Installed S/W": ("", "NA"),
    "CapacityStatus": ("Used",),
    "MarketOption": ("OnDemand",),
    "Unit": ("Hrs",),
    "Currency": ("USD",),
    "Product Family": FAMILIES,
}


@dataclass(frozen=True)
class Offer:
    """What one region's offer file says: its provenance and the lowest on-demand Linux price per type."""

    region: str
    url: str
    version: str
    publication_date: str  # as the file states it (ISO date-time)
    prices: dict[str, float]
    rows_read: int
    bytes_read: int

    @property
    def source(self) -> str:
        return f"{SOURCE_PREFIX}@{self.version}"

    @property
    def date(self) -> str:
        return self.publication_date[:10]


@dataclass(frozen=True)
class PriceListResult:
    region: str
    path: Path
    rows: int
    priced_types: int
    unknown_types: tuple[str, ...]  # priced in the file, not described by the shipped catalog
    price_source: str
    price_date: str
    bytes_read: int
    rows_read: int
    warnings: tuple[str, ...] = field(default=())
    spot_priced: int = 0  # rows with a spot price (new from the feed, or kept from the previous refresh)
    spot_interruption: int = 0  # rows with an interruption bucket


@dataclass(frozen=True)
class SpotOnlyResult:
    """``--spot-only``: the spot columns of rows the user already had were updated; nothing else changed."""

    region: str
    path: Path
    rows: int
    base: str  # where the rows (and their on-demand prices) come from: the previous file or the shipped catalog
    spot_priced: int
    spot_interruption: int
    spot_date: str  # when the feed was fetched
    warnings: tuple[str, ...] = field(default=())


# ------------------------------------------------------------------------------------------------ HTTP

def get_json(url: str, timeout: float = 30.0) -> dict[str, Any]:
    """A small JSON document (the indexes), with the same retries as the offer files; at most
    :data:`MAX_INDEX_BYTES` are read."""
    doc = read_json(url, limit=MAX_INDEX_BYTES, what="Price List index", option="--price-list-url",
                    expected="tens of KB", timeout=timeout)
    if not isinstance(doc, dict):
        raise CatalogError(f"{url}: expected a JSON object", hint="check --price-list-url")
    return doc


# ------------------------------------------------------------------------------------------------ indexes

def offer_url(region: str, base_url: str = BASE_URL, timeout: float = 30.0) -> tuple[str, dict[str, Any]]:
    """The CSV offer file of ``region``: service index -> EC2's region index -> the region's current version."""
    base = base_url.rstrip("/")
    service = get_json(base + SERVICE_INDEX, timeout)
    offers = service.get("offers")
    ec2 = offers.get(OFFER_CODE) if isinstance(offers, dict) else None
    index_path = ec2.get("currentRegionIndexUrl") if isinstance(ec2, dict) else None
    if not index_path or not isinstance(index_path, str):
        raise CatalogError(f"{base + SERVICE_INDEX} names no {OFFER_CODE} region index")
    index_url = _same_place(base, index_path, base + SERVICE_INDEX)
    regions = get_json(index_url, timeout).get("regions")
    if not isinstance(regions, dict):
        raise CatalogError(f"{index_url}: no 'regions' object (not the shape of AWS's region index)")
    known = sorted(k for k in regions if _REGION.match(k))
    if region not in known:
        import difflib

        close = difflib.get_close_matches(region, known, n=3)
        raise CatalogError(f"the Price List has no EC2 offer file for region {region!r}",
                           hint=f"did you mean {', '.join(close)}?" if close else f"regions: {', '.join(known)}")
    entry = regions[region]
    version_path = entry.get("currentVersionUrl") if isinstance(entry, dict) else None
    if not version_path or not isinstance(version_path, str):
        raise CatalogError(f"{index_url}: region {region} names no currentVersionUrl")
    csv_path = re.sub(r"\.json$", ".csv", version_path)
    return _same_place(base, csv_path, index_url), entry


def _same_place(base: str, path: str, named_in: str) -> str:
    """``path`` (named by the index ``named_in``) resolved against ``base``; only on ``base``'s scheme and host:
    an index must not send ccdsl to a local file (``file:///…``) or to another server."""
    url = urllib.parse.urljoin(base + "/", path)
    want, got = urllib.parse.urlsplit(base), urllib.parse.urlsplit(url)
    if (got.scheme, got.netloc) != (want.scheme, want.netloc):
        raise CatalogError(f"{named_in} points at {url[:80]}, not at {want.scheme}://{want.netloc}: refused",
                           hint="check --price-list-url; the previous catalog is unchanged")
    return url


def _lines(stream: ResumableStream) -> Iterator[str]:
    return io.TextIOWrapper(io.BufferedReader(stream, CHUNK), encoding="utf-8-sig", newline="")


def _rows(reader: Any, url: str) -> Iterator[list[str]]:
    """The CSV's rows; a row the csv module refuses (a field above its 128 KB limit, a NUL) or bytes that are not
    UTF-8 end the refresh as a CatalogError naming the line."""
    try:
        yield from reader
    except (csv.Error, UnicodeDecodeError) as exc:
        raise CatalogError(f"{url}: line {reader.line_num}: not a Price List CSV row ({str(exc)[:80]})",
                           hint="check --price-list-url; the previous catalog is unchanged") from None


def read_offer(region: str, url: str, progress: Progress | None = None, timeout: float = 30.0) -> Offer:
    """Stream one region's CSV offer file: metadata rows, the header, then rows filtered as documented."""
    stream = ResumableStream(url, timeout=timeout)
    reader = _rows(csv.reader(_lines(stream)), url)
    meta: dict[str, str] = {}
    header: list[str] | None = None
    for row in reader:
        if len(row) >= 2 and row[0] in ("FormatVersion", "Disclaimer", "Publication Date", "Version", "OfferCode"):
            meta[row[0]] = row[1]
            continue
        header = row
        break
    if header is None or "SKU" not in header:
        raise CatalogError(f"{url}: no CSV header row (expected the Price List's 'SKU, OfferTermCode, …' header)")
    col = {name: i for i, name in enumerate(header)}
    for needed in ("Instance Type", "PricePerUnit", "TermType"):
        if needed not in col:
            raise CatalogError(f"{url}: the CSV has no '{needed}' column")
    checks = [(col[name], allowed) for name, allowed in FILTER.items() if name in col]
    itype_i, price_i = col["Instance Type"], col["PricePerUnit"]
    region_i = col.get("Region Code")
    width = len(header)
    prices: dict[str, float] = {}
    rows = 0
    for row in reader:
        rows += 1
        if progress is not None and rows % 20000 == 0:
            progress.update(stream.position, stream.total, rows)
        if len(row) < width:
            continue
        if any(row[i] not in allowed for i, allowed in checks):
            continue
        if region_i is not None and row[region_i] not in ("", region):
            continue
        itype = row[itype_i]
        try:
            price = float(row[price_i])
        except ValueError:
            continue
        if itype and price > 0 and not math.isnan(price):
            prices[itype] = min(price, prices.get(itype, math.inf))
    if progress is not None:
        progress.update(stream.position, stream.total, rows, final=True)
    stream.close()
    version, published = meta.get("Version", ""), meta.get("Publication Date", "")
    if not version or not published:
        raise CatalogError(f"{url}: the metadata rows name no Version or Publication Date")
    return Offer(region, url, version, published, prices, rows, stream.position)


# ------------------------------------------------------------------------------------------------ the refresh

def _shipped_rows(region: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """(this region's shipped rows by type, any region's shipped row by type): the facts a priced type gets."""
    from ccdsl.catalog.loader import load

    frame = load(user=False, local=False)
    here = frame[frame["region"] == region]
    anywhere = frame[frame["provider"] == "aws"].drop_duplicates("instance_type")
    return ({str(r["instance_type"]): {str(k): v for k, v in r.items()} for r in here.to_dict("records")},
            {str(r["instance_type"]): {str(k): v for k, v in r.items()} for r in anywhere.to_dict("records")})


def refresh_from_price_list(region: str, *, base_url: str = BASE_URL, progress: TextIO | None = None,
                            timeout: float = 30.0, spot: PublicSpot | None = None) -> PriceListResult:
    """Read ``region``'s offer file and write its user catalog; see the module docstring.

    ``spot`` (``--spot``: the public spot feed and advisor, read once for every region) fills the spot columns.
    Without it, or where a spot file did not answer, the rows keep the spot columns the previous file of this
    region had: they carry their own date, and an on-demand refresh is no reason to forget them.
    """
    from ccdsl.catalog.loader import user_catalog_dir
    from ccdsl.catalog.schema import COLUMN_NAMES, NO_SPOT
    from ccdsl.catalog.spot import PublicSpot, apply_public

    url, _entry = offer_url(region, base_url, timeout)
    offer = read_offer(region, url, Progress(region, progress), timeout)
    if not offer.prices:
        raise CatalogError(f"{url}: no on-demand Linux prices for {region}; nothing written")
    out = user_catalog_dir() / f"aws-{region}.price-list.csv"
    warnings: list[str] = []
    previous, _meta = previous_rows(out, warnings)
    here, anywhere = _shipped_rows(region)
    public = spot if spot is not None else PublicSpot(None, None)
    rows, unknown = [], []
    for itype in sorted(offer.prices):
        base = here.get(itype) or anywhere.get(itype)
        if base is None:
            unknown.append(itype)
            continue
        row = {**{c: base[c] for c in COLUMN_NAMES}, "provider": "aws", "region": region,
               "price_per_hour": offer.prices[itype], "price_source": offer.source, "price_date": offer.date,
               **NO_SPOT, "max_nodes": math.nan}
        rows.append(apply_public(row, public, previous.get(itype)))
    if not rows:
        raise CatalogError(f"none of the {len(offer.prices)} types priced in {region} is in the shipped catalog; "
                           "nothing written")
    if unknown:
        warnings.append(f"{len(unknown)} types priced in {region} are not in the shipped catalog (no specs) and "
                        f"were left out: {', '.join(unknown[:5])}{', …' if len(unknown) > 5 else ''}")
    sidecar = {
        "provider": "aws", "region": region,
        "fetched_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "price_source": offer.source, "url": url, "version": offer.version,
        "publication_date": offer.publication_date, "bytes": offer.bytes_read, "csv_rows": offer.rows_read,
        "priced_types": len(offer.prices), "rows": len(rows), "types_not_in_shipped_catalog": unknown,
        **_spot_sidecar(rows, public, _meta),
    }
    _write(out, rows, sidecar)
    warnings.extend(_shadowed(out, region, {str(r["instance_type"]) for r in rows}))
    spot_priced, with_bucket = _spot_counts(rows)
    return PriceListResult(region, out, len(rows), len(offer.prices), tuple(unknown), offer.source, offer.date,
                           offer.bytes_read, offer.rows_read, tuple(warnings), spot_priced, with_bucket)


def refresh_spot_only(region: str, spot: PublicSpot) -> SpotOnlyResult:
    """``--spot-only``: update the spot columns of the rows the user already has for ``region``, without the
    hundreds-of-MB offer file.  The rows are those of the previous ``aws-<region>.price-list.csv`` if there is
    one (its on-demand prices and their provenance unchanged) and the shipped catalog's rows of the region for the
    other types (with the shipped prices and their own source and date).  The result is that same file, so a later
    on-demand refresh replaces the on-demand part and keeps this spot data.
    """
    from ccdsl.catalog.loader import user_catalog_dir
    from ccdsl.catalog.schema import COLUMN_NAMES
    from ccdsl.catalog.spot import apply_public

    if spot.prices(region) is None:
        raise CatalogError(f"the spot feed ({spot.feed.url if spot.feed else 'not read'}) prices no type in "
                           f"{region}; nothing written", hint="check the region name (e.g. us-east-1)")
    out = user_catalog_dir() / f"aws-{region}.price-list.csv"
    warnings: list[str] = []
    previous, meta = previous_rows(out, warnings, strict=True)
    here, _anywhere = _shipped_rows(region)
    # the previous file's rows win; the shipped rows of types it lacks come along (they show in the merged catalog
    # anyway), so that every row of the region gets its spot columns
    by_type = {t: r for t, r in here.items() if r["provider"] == "aws"}
    by_type.update(previous)
    if not by_type:
        raise CatalogError(f"the catalog has no AWS rows in {region}; nothing to add spot prices to",
                           hint="check the region name, or run `ccdsl catalog refresh --provider aws --from "
                                f"price-list --spot --region {region}` for its on-demand prices too")
    if previous:
        base = out.name + (" and the shipped rows of other types" if len(by_type) > len(previous) else "")
    else:
        base = "shipped catalog"
        meta = {"provider": "aws", "region": region, "price_source": "shipped catalog (no on-demand refresh)",
                "fetched_at": spot.feed.fetched_at if spot.feed else ""}
    rows = [apply_public({c: r[c] for c in COLUMN_NAMES}, spot, r) for _t, r in sorted(by_type.items())]
    sidecar = {**meta, "spot_refreshed_at": spot.feed.fetched_at if spot.feed else "", "rows": len(rows),
               **_spot_sidecar(rows, spot, meta)}
    _write(out, rows, sidecar)
    warnings.extend(_shadowed(out, region, {str(r["instance_type"]) for r in rows}))
    priced, with_bucket = _spot_counts(rows)
    return SpotOnlyResult(region, out, len(rows), base, priced, with_bucket,
                          spot.feed.fetched_at if spot.feed else "", tuple(warnings))


def previous_rows(path: Path, warnings: list[str], strict: bool = False) -> tuple[dict[str, dict[str, Any]],
                                                                             dict[str, Any]]:
    """The rows (by type) and sidecar of the previous refresh file, or ({}, {}) when there is none.  An unreadable
    file is an error when ``strict`` (spot-only would otherwise replace it), else a warning."""
    if not path.exists():
        return {}, {}
    from ccdsl.catalog.user import read_records

    try:
        rows = {str(r["instance_type"]): r for r in read_records(path) if r["provider"] == "aws"}
    except CatalogError as exc:
        if strict:
            raise CatalogError(f"the previous {path.name} cannot be read ({exc.message})",
                               hint=f"fix or remove it (`ccdsl catalog remove {path.stem}`); nothing written") from None
        warnings.append(f"the previous {path.name} cannot be read ({exc.message}); its spot data is not kept")
        return {}, {}
    try:
        meta = json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        meta = {}
    return rows, meta if isinstance(meta, dict) else {}


def _spot_counts(rows: list[dict[str, Any]]) -> tuple[int, int]:
    return (sum(1 for r in rows if r["spot_price_source"]),
            sum(1 for r in rows if not math.isnan(float(r["spot_interruption"]))))


def _spot_sidecar(rows: list[dict[str, Any]], public: PublicSpot, previous: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's spot keys: the files that answered this time, else what the previous sidecar said."""
    priced, with_bucket = _spot_counts(rows)
    keys = ("spot_feed_url", "spot_fetched_at", "spot_advisor_url", "spot_advisor_fetched_at")
    keep: dict[str, Any] = {k: previous[k] for k in keys if k in previous}
    if public.feed is not None:
        keep.update({"spot_feed_url": public.feed.url, "spot_fetched_at": public.feed.fetched_at})
    if public.advisor is not None:
        keep.update({"spot_advisor_url": public.advisor.url, "spot_advisor_fetched_at": public.advisor.fetched_at})
    return {**keep, "spot_price_rows": priced, "spot_interruption_rows": with_bucket,
            "spot_warnings": list(public.warnings)}


def _write(out: Path, rows: list[dict[str, Any]], sidecar: dict[str, Any]) -> None:
    from ccdsl import datadir
    from ccdsl.catalog.loader import clear_cache
    from ccdsl.catalog.schema import COLUMN_NAMES
    from ccdsl.catalog.store import atomic_write, csv_bytes

    datadir.ensure()
    atomic_write(out, csv_bytes(rows, COLUMN_NAMES), mode=0o600)
    atomic_write(out.with_suffix(".json"), (json.dumps(sidecar, indent=2) + "\n").encode(), mode=0o600)
    clear_cache()


def _shadowed(out: Path, region: str, types: set[str]) -> list[str]:
    """Warnings for user catalogs merged after ``out`` (file name order) that replace some of its rows: the user
    would otherwise wonder why the refreshed prices do not show."""
    from ccdsl.catalog.loader import user_files
    from ccdsl.catalog.user import read_records

    out_warnings = []
    for path in user_files():
        if path.name <= out.name:
            continue
        try:
            hits = {str(r["instance_type"]) for r in read_records(path)
                    if r["provider"] == "aws" and r["region"] == region} & types
        except CatalogError:
            continue
        if hits:
            out_warnings.append(f"{path.name} is merged after {out.name} and replaces {len(hits)} of its rows "
                                f"(e.g. {sorted(hits)[0]}); refresh or remove it (`ccdsl catalog remove "
                                f"{path.stem}`) to see these prices")
    return out_warnings
