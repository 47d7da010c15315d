"""``ccdsl catalog refresh --provider aws``: live specs and prices into a user catalog.

Specs come from EC2 ``DescribeInstanceTypes`` and ``DescribeInstanceTypeOfferings`` (paginated), translated by
the same :func:`ccdsl.catalog.convert.type_facts` as the shipped build, so a refreshed row means what a shipped
row means.  On-demand prices come from the AWS Price List API (``pricing.get_products``, served from us-east-1);
``spot=True`` adds spot prices from ``DescribeSpotPriceHistory``: each zone's latest price with its timestamp, the
cheapest zone's in ``spot_price_per_hour`` / ``spot_zone``, every zone cheapest first in ``spot_zones``
(:mod:`ccdsl.catalog.spot`), and the public spot advisor's interruption buckets; a failure of either is a warning
(the on-demand refresh is still written).  Without ``--spot``, or where a spot source did not answer, the rows
keep the spot columns of the previous file of the region: they carry their own date.  The Price List client never
inherits the EC2 endpoint override, and every client retries in botocore's adaptive mode (up to 10 attempts),
because GetProducts pages are throttled.  EC2 does not name processor models, so those come from the shipped
catalog's facts for the same type (or family).

The result is written, atomically and only after everything was fetched, to
``<data dir>/catalogs/aws-<region>.refresh.csv`` with a ``.json`` sidecar recording when and from where; the
loader lets these rows replace shipped rows of the same (provider, region, type).  Any failure leaves the
previous files untouched.  boto3 is imported here only.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ccdsl.errors import CatalogError, MissingDependencyError

if TYPE_CHECKING:
    from ccdsl.catalog.facts import ProcessorFact
    from ccdsl.catalog.spot import ZonePrice

PRICING_REGION = "us-east-1"  # the Price List API is served from us-east-1 (and ap-south-1) only
PRICE_FILTERS = {"operatingSystem": "Linux", "tenancy": "Shared", "preInstalledSw": "NA", "capacitystatus": "Used"}
API_SOURCE = "aws-api"  # price_source of prices from the credentialed GetProducts call
# botocore's adaptive mode adds client-side rate limiting to the standard retries (throttling, 5xx, dropped
# connections); GetProducts pages through thousands of products, so a few throttles are normal.
RETRIES = {"max_attempts": 10, "mode": "adaptive"}
# (event name, handler) registered on every client refresh creates: how tests inject AWS's failures.
EVENT_HOOKS: list[tuple[str, Any]] = []


@dataclass(frozen=True)
class RefreshResult:
    region: str
    path: Path
    rows: int
    instance_types_described: int
    offered: int
    price_source: str
    unpriced: int
    warnings: tuple[str, ...] = field(default=())
    spot_priced: int = 0  # rows with a spot price (--spot)
    spot_interruption: int = 0  # rows with an interruption bucket (--spot)


def boto3_modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    try:
        import boto3
        import botocore.config
        import botocore.exceptions
    except ModuleNotFoundError:
        raise MissingDependencyError("boto3", "aws") from None
    return boto3, botocore.config, botocore.exceptions


def _api_error(exc: Exception, what: str, endpoint: str | None) -> CatalogError:
    name = type(exc).__name__
    where = f" at {endpoint}" if endpoint else ""
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return CatalogError(f"{what}: no AWS credentials found",
                            hint="configure credentials (aws configure, AWS_PROFILE or AWS_ACCESS_KEY_ID/...)")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ReadTimeoutError", "ConnectionClosedError"):
        return CatalogError(f"{what}: cannot reach the AWS API{where} ({exc})",
                            hint="check the network or --endpoint-url; the previous catalog is unchanged")
    return CatalogError(f"{what} failed{where}: {exc}", hint="the previous catalog is unchanged")


def parse_price_list(items: Iterable[str | dict[str, Any]], region: str | None = None) -> dict[str, float]:
    """Price List ``GetProducts`` items (JSON strings) -> instance type -> on-demand USD/h.

    Only hourly, USD, OnDemand terms of products matching :data:`PRICE_FILTERS` count (a response may contain
    other tenancies or capacity statuses if the filters were looser); zero prices are "unknown" and skipped.  If a
    type has several qualifying prices, the lowest wins — deterministic, and what a user would be charged.
    """
    out: dict[str, float] = {}
    for item in items:
        doc = json.loads(item) if isinstance(item, str) else item
        attrs = doc.get("product", {}).get("attributes", {})
        itype = attrs.get("instanceType")
        if not itype or any(attrs.get(k, v) != v for k, v in PRICE_FILTERS.items()):
            continue
        if region is not None and attrs.get("regionCode", region) != region:
            continue
        for term in doc.get("terms", {}).get("OnDemand", {}).values():
            for dim in term.get("priceDimensions", {}).values():
                if dim.get("unit") not in ("Hrs", "Hours", "Hour"):
                    continue
                try:
                    price = float(dim.get("pricePerUnit", {}).get("USD", "nan"))
                except ValueError:
                    continue
                if price > 0 and not math.isnan(price):
                    out[itype] = min(price, out.get(itype, math.inf))
    return out


def latest_spot_prices(history: Iterable[dict[str, Any]]) -> dict[str, float]:
    """``SpotPriceHistory`` entries -> instance type -> lowest over zones of each zone's latest price (the
    per-zone detail, with timestamps, is :func:`ccdsl.catalog.spot.latest_by_zone`)."""
    from ccdsl.catalog.spot import latest_by_zone

    return {t: zones[0].price for t, zones in latest_by_zone(history).items()}


def _shipped_processor_facts() -> tuple[dict[str, ProcessorFact | None], dict[str, int]]:
    """instance type -> ProcessorFact, and type -> vcpus, from the shipped catalog (facts EC2 does not return)."""
    from ccdsl.catalog.facts import FAMILY_PROCESSORS, PROCESSOR_STRINGS
    from ccdsl.catalog.loader import load

    by_model = {f.model: f for f in (*PROCESSOR_STRINGS.values(), *FAMILY_PROCESSORS.values()) if f is not None}
    frame = load(user=False, columns=["instance_type", "cpu_model", "vcpus"]).drop_duplicates("instance_type")
    known = {t: by_model.get(m) for t, m in zip(frame["instance_type"], frame["cpu_model"])}
    return known, dict(zip(frame["instance_type"], frame["vcpus"].astype(int)))


def _shipped_prices(region: str) -> dict[str, tuple[float, str, str]]:
    """instance type -> (price, price_source, price_date) of the shipped catalog's priced rows in ``region``."""
    from ccdsl.catalog.loader import load

    frame = load(user=False, columns=["region", "instance_type", "price_per_hour", "price_source", "price_date"])
    frame = frame[(frame["region"] == region) & frame["price_per_hour"].notna()]
    return {t: (float(p), str(s), str(d)) for t, p, s, d in zip(frame["instance_type"], frame["price_per_hour"],
                                                                 frame["price_source"], frame["price_date"])}


def publication_date(items: Iterable[str | dict[str, Any]]) -> str:
    """The newest ``publicationDate`` (ISO date) of GetProducts items; '' when they carry none."""
    dates = []
    for item in items:
        doc = json.loads(item) if isinstance(item, str) else item
        stamp = str(doc.get("publicationDate", ""))
        if len(stamp) >= 10:
            dates.append(stamp[:10])
    return max(dates, default="")


def _client(session, service: str, **kwargs):  # type: ignore[no-untyped-def]
    client = session.client(service, **kwargs)
    for event, handler in EVENT_HOOKS:
        client.meta.events.register(event, handler)
    return client


def _spot_history(ec2, region: str) -> dict[str, list[ZonePrice]]:  # type: ignore[no-untyped-def]
    """Every (type, zone)'s current Linux spot price in ``region``: the history from now on (AWS answers each
    pair's price in effect at StartTime, and any change since)."""
    from ccdsl.catalog.spot import latest_by_zone

    history: list[dict[str, Any]] = []
    for page in ec2.get_paginator("describe_spot_price_history").paginate(
            ProductDescriptions=["Linux/UNIX"], StartTime=_dt.datetime.now(_dt.timezone.utc)):
        history.extend(page["SpotPriceHistory"])
    return latest_by_zone(history)


def refresh(region: str, *, endpoint_url: str | None = None, pricing_endpoint_url: str | None = None,
            spot: bool = False, price_fallback: bool = True, timeout: float = 20.0,
            spot_advisor_url: str | None = None) -> RefreshResult:
    """Fetch one region and write its user catalog; see the module docstring.  ``spot_advisor_url`` overrides
    where the interruption buckets come from (else ``CCDSL_SPOT_ADVISOR_URL``, else AWS's public file)."""
    boto3, bconfig, bexc = boto3_modules()
    from ccdsl.catalog.loader import clear_cache, user_catalog_dir
    from ccdsl.catalog.schema import COLUMN_NAMES
    from ccdsl.catalog.store import atomic_write, csv_bytes
    from ccdsl.version import __version__

    # ccdsl/<version> in the User-Agent: CloudTrail shows which calls were ccdsl's (and tests check them against
    # the IAM policy ccdsl documents, ccdsl/executor/providers/aws_policy.json)
    config = bconfig.Config(connect_timeout=min(5.0, timeout), read_timeout=timeout, retries=dict(RETRIES),
                            user_agent_extra=f"ccdsl/{__version__}")
    session = boto3.session.Session()
    api = _Api(session, config, (bexc.BotoCoreError, bexc.ClientError), endpoint_url, pricing_endpoint_url)
    warnings: list[str] = []
    ec2, specs, offered = _instance_types(api, region)
    spot_data = _spot_data(api, ec2, region, spot_advisor_url, timeout, warnings) if spot else _SpotData()
    prices, price_source = _prices(api, region, price_fallback, warnings)
    out = user_catalog_dir() / f"aws-{region}.refresh.csv"
    rows, unpriced = _rows(region, specs, offered, prices, spot_data, out, warnings)
    from ccdsl import datadir

    datadir.ensure()
    spot_priced = sum(1 for r in rows if r["spot_price_source"])
    with_bucket = sum(1 for r in rows if not math.isnan(r["spot_interruption"]))
    sidecar = {
        "provider": "aws", "region": region,
        "fetched_at": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endpoint_url": endpoint_url, "pricing_endpoint_url": pricing_endpoint_url, "price_source": price_source,
        "spot_prices": spot_data.history_read and bool(spot_data.zones), "spot_price_rows": spot_priced,
        "spot_interruption_rows": with_bucket,
        "spot_advisor_url": spot_data.advisor_source, "rows": len(rows), "instance_types_described": len(specs),
        "offered": len(offered), "unpriced": unpriced, "warnings": warnings,
    }
    atomic_write(out, csv_bytes(rows, COLUMN_NAMES), mode=0o600)
    atomic_write(out.with_suffix(".json"), (json.dumps(sidecar, indent=2) + "\n").encode(), mode=0o600)
    clear_cache()
    return RefreshResult(region, out, len(rows), len(specs), len(offered), price_source, unpriced, tuple(warnings),
                         spot_priced, with_bucket)


@dataclass(frozen=True)
class _Api:
    """How :func:`refresh` calls AWS: the boto3 session and client config, the errors that mean "AWS did not
    answer", and the endpoints (None: AWS's)."""

    session: Any  # a boto3 Session: boto3 ships no types
    config: Any  # a botocore Config
    errors: Any  # a tuple of botocore's exception classes (botocore ships no types)
    endpoint_url: str | None
    pricing_endpoint_url: str | None


@dataclass(frozen=True)
class _SpotData:
    """What the spot sources said.  A source that did not answer (``*_read`` false) leaves the previous file's
    spot columns."""

    zones: dict[str, list[ZonePrice]] = field(default_factory=dict)
    interruption: dict[str, float] = field(default_factory=dict)
    advisor_source: str = ""
    history_read: bool = False
    advisor_read: bool = False


def _instance_types(api: _Api, region: str) -> tuple[Any, list[dict[str, Any]], set[str]]:
    """(the EC2 client, every instance type EC2 describes in ``region``, the names offered there)."""
    try:
        ec2 = _client(api.session, "ec2", region_name=region, endpoint_url=api.endpoint_url, config=api.config)
        specs: list[dict[str, Any]] = []
        for page in ec2.get_paginator("describe_instance_types").paginate():
            specs.extend(page["InstanceTypes"])
        offered: set[str] = set()
        for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
                LocationType="region", Filters=[{"Name": "location", "Values": [region]}]):
            offered.update(o["InstanceType"] for o in page["InstanceTypeOfferings"])
    except api.errors as exc:
        raise _api_error(exc, f"EC2 DescribeInstanceTypes in {region}", api.endpoint_url) from None
    if not specs:
        raise CatalogError(f"EC2 in {region} described no instance types; nothing written")
    return ec2, specs, offered


def _spot_data(api: _Api, ec2: Any, region: str, spot_advisor_url: str | None, timeout: float,
               warnings: list[str]) -> _SpotData:
    """Spot prices and interruption buckets: an extra, so a source that fails is a warning (without them the
    on-demand refresh is still worth writing)."""
    from ccdsl.catalog.spot import read_advisor

    zones: dict[str, list[ZonePrice]] = {}
    interruption: dict[str, float] = {}
    advisor_source = ""
    history_read = advisor_read = False
    try:
        zones = _spot_history(ec2, region)
        history_read = True
    except api.errors as exc:
        err = _api_error(exc, f"EC2 DescribeSpotPriceHistory in {region}", api.endpoint_url)
        warnings.append(f"{err.message}; no spot prices written for {region}")
    try:  # public and unsigned: a plain HTTPS file, fewer attempts than the offer files (it is an extra)
        advisor = read_advisor([region], spot_advisor_url, timeout=timeout, attempts=3)
        interruption = advisor.bounds.get(region, {})
        advisor_source = advisor.url
        advisor_read = bool(interruption)
        warnings.extend(advisor.warnings)
        if not interruption:
            warnings.append(f"the spot advisor file has no interruption data for {region}")
    except CatalogError as exc:
        warnings.append(f"{exc.message}; no interruption data written for {region}")
    return _SpotData(zones, interruption, advisor_source, history_read, advisor_read)


def _prices(api: _Api, region: str, price_fallback: bool,
            warnings: list[str]) -> tuple[dict[str, tuple[float, str, str]], str]:
    """(type -> (on-demand price, source, date), the source's name): the Price List API, else (with
    ``price_fallback``) the shipped catalog's prices and a warning."""
    today = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d")
    # The Price List API has its own endpoint: an EC2 override (a test server, a VPC endpoint) is not one.
    pricing_url = api.pricing_endpoint_url
    try:
        pricing = _client(api.session, "pricing", region_name=PRICING_REGION, endpoint_url=pricing_url,
                          config=api.config)
        filters = [{"Type": "TERM_MATCH", "Field": "regionCode", "Value": region}]
        filters += [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in PRICE_FILTERS.items()]
        items: list[str] = []
        for page in pricing.get_paginator("get_products").paginate(ServiceCode="AmazonEC2", Filters=filters,
                                                                      FormatVersion="aws_v1"):
            items.extend(page["PriceList"])
        found = parse_price_list(items, region)
        price_source = "AWS Price List API (pricing.get_products)"
        if not found:
            raise CatalogError(f"the Price List API returned no Linux on-demand prices for {region}")
        date = publication_date(items) or today
        prices = {t: (p, API_SOURCE, date) for t, p in found.items()}
    except (*api.errors, CatalogError) as exc:
        err = exc if isinstance(exc, CatalogError) else _api_error(exc, "Price List GetProducts", pricing_url)
        if not price_fallback:
            raise err from None
        prices = _shipped_prices(region)
        price_source = "shipped catalog (Price List API unavailable)"
        warnings.append(f"{err.message}; using the shipped catalog's on-demand prices for {region}")
    return prices, price_source


def _rows(region: str, specs: list[dict[str, Any]], offered: set[str], prices: dict[str, tuple[float, str, str]],
          spot: _SpotData, out: Path, warnings: list[str]) -> tuple[list[dict[str, Any]], int]:
    """(the catalog rows of the types both offered and priced, how many offered types had no price).  A spot source
    that did not answer keeps the spot columns of the previous file ``out``."""
    from ccdsl.catalog.convert import processor_fact, type_facts
    from ccdsl.catalog.loader import user_catalog_dir
    from ccdsl.catalog.pricelist import previous_rows
    from ccdsl.catalog.schema import NO_SPOT, SPOT_PRICE_COLUMNS
    from ccdsl.catalog.spot import API_SOURCE as SPOT_API_SOURCE
    from ccdsl.catalog.spot import spot_columns

    previous, _meta = previous_rows(out, warnings)
    known, vcpus = _shipped_processor_facts()
    vcpus.update({s["InstanceType"]: int(s["VCpuInfo"]["DefaultVCpus"]) for s in specs})
    rows = []
    unpriced = 0
    for spec in sorted(specs, key=lambda s: s["InstanceType"]):
        t = spec["InstanceType"]
        if t not in offered:
            continue
        if t not in prices:
            unpriced += 1
            continue
        price, source, date = prices[t]
        facts = type_facts(spec, processor_fact(t, known, vcpus))
        before = previous.get(t, NO_SPOT)
        rows.append({"provider": "aws", "region": region, **facts, "price_per_hour": price,
                     "price_source": source, "price_date": date,
                     **(spot_columns(spot.zones.get(t, ()), SPOT_API_SOURCE) if spot.history_read
                        else {c: before[c] for c in SPOT_PRICE_COLUMNS}),
                     "spot_interruption": spot.interruption.get(t, math.nan) if spot.advisor_read
                     else before["spot_interruption"], "max_nodes": math.nan})
    if not rows:
        raise CatalogError(f"no instance type in {region} is both offered and priced; nothing written")
    earlier = user_catalog_dir() / f"aws-{region}.price-list.csv"  # merged before this file: its rows lose
    spotted, _m = previous_rows(earlier, [])
    hidden = [r["instance_type"] for r in rows if not r["spot_price_source"]
              and spotted.get(r["instance_type"], {}).get("spot_price_source")]
    if hidden:
        warnings.append(f"{earlier.name} has spot prices for {len(hidden)} type{'s' * (len(hidden) != 1)} whose "
                        f"rows this file replaces without one (e.g. {hidden[0]}); add --spot to this refresh")
    return rows, unpriced
