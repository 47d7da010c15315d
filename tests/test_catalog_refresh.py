"""``catalog refresh`` over real HTTP: EC2 from the moto server, prices from a replay of the Price List API.

moto (5.x) has no ``pricing`` service, so the Price List API is served by a small HTTP server on 127.0.0.1 that
replays ``tests/data/aws_pricing_get_products_us-east-1.json`` — GetProducts pages in the real API's JSON shape
(assembled offline to that shape; tests may not reach AWS).  boto3 talks to both exactly as it would to AWS.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

pytest.importorskip("boto3")

from ccdsl.catalog import load
from ccdsl.catalog.loader import user_catalog_dir
from ccdsl.catalog.refresh import latest_spot_prices, parse_price_list, refresh
from ccdsl.catalog.schema import COLUMN_NAMES
from ccdsl.errors import CatalogError
from conftest import free_port
from fixtures_spot import spot_files

RECORDED = Path(__file__).parent / "data" / "aws_pricing_get_products_us-east-1.json"

# moto answers DescribeInstanceTypes with every type: on a loaded machine that takes longer than refresh's
# default 20 s read timeout.  A fail-safe, not a measure.
MOTO_FAIL_SAFE = 300.0


class PriceListReplay(BaseHTTPRequestHandler):
    pages: ClassVar[list[dict]] = []  # the server builds a handler per request: state lives on the class
    requests: ClassVar[list[dict]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        target = self.headers.get("X-Amz-Target", "")
        type(self).requests.append({"target": target, **body})
        if target != "AWSPriceListService.GetProducts":
            return self._send(400, {"__type": "InvalidParameterException", "Message": f"unexpected {target}"})
        index = 1 if body.get("NextToken") == "page-2-token" else 0
        self._send(200, self.pages[index])

    def _send(self, status: int, doc: dict) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def price_list_api():
    PriceListReplay.pages = json.loads(RECORDED.read_text())["pages"]
    server = ThreadingHTTPServer(("127.0.0.1", 0), PriceListReplay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def recorded_prices() -> dict[str, float]:
    items = [i for p in json.loads(RECORDED.read_text())["pages"] for i in p["PriceList"]]
    return parse_price_list(items, "us-east-1")


def test_parse_recorded_price_list() -> None:
    prices = recorded_prices()
    # the recorded pages hold 9 products; 3 must be ignored (reservation capacity, dedicated tenancy, zero price)
    assert prices == {"m5.large": 0.096, "c5.xlarge": 0.17, "g4dn.xlarge": 0.526, "t3.micro": 0.0104,
                      "r6i.large": 0.126, "p5.48xlarge": 98.32}


def test_latest_spot_price_per_type() -> None:
    import datetime as dt

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    history = [
        {"InstanceType": "m5.large", "AvailabilityZone": "a", "SpotPrice": "0.05", "Timestamp": t0},
        {"InstanceType": "m5.large", "AvailabilityZone": "a", "SpotPrice": "0.03", "Timestamp": t0 - dt.timedelta(1)},
        {"InstanceType": "m5.large", "AvailabilityZone": "b", "SpotPrice": "0.04", "Timestamp": t0},
    ]
    assert latest_spot_prices(history) == {"m5.large": 0.04}


def test_refresh_against_moto_and_price_list(aws_env, price_list_api, data_dir, spot_files) -> None:
    PriceListReplay.requests.clear()
    shipped = load(user=False)
    result = refresh("us-east-1", endpoint_url=aws_env, pricing_endpoint_url=price_list_api, spot=True,
                     timeout=MOTO_FAIL_SAFE)
    assert result.price_source.startswith("AWS Price List API")
    # the Price List API was paged and filtered as documented
    assert len(PriceListReplay.requests) == 2
    filters = {f["Field"]: f["Value"] for f in PriceListReplay.requests[0]["Filters"]}
    assert filters == {"regionCode": "us-east-1", "operatingSystem": "Linux", "tenancy": "Shared",
                       "preInstalledSw": "NA", "capacitystatus": "Used"}
    assert PriceListReplay.requests[0]["ServiceCode"] == "AmazonEC2"
    prices = recorded_prices()
    import boto3

    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=aws_env)
    offered = {o["InstanceType"] for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="region", Filters=[{"Name": "location", "Values": ["us-east-1"]}])
        for o in page["InstanceTypeOfferings"]}
    expected = sorted(set(prices) & offered)
    assert len(expected) >= 5
    written = result.path
    assert written.parent == user_catalog_dir() and written.name == "aws-us-east-1.refresh.csv"
    meta = json.loads(written.with_suffix(".json").read_text())
    assert meta["rows"] == result.rows == len(expected) and meta["spot_prices"] is True

    merged = load()
    assert len(merged) == len(shipped)  # refreshed rows replaced shipped rows of the same key
    for t in expected:
        new = merged[(merged.instance_type == t) & (merged.region == "us-east-1")]
        old = shipped[(shipped.instance_type == t) & (shipped.region == "us-east-1")]
        assert len(new) == 1 and len(old) == 1
        new, old = new.iloc[0], old.iloc[0]
        assert new.price_per_hour == prices[t]
        assert (new.price_source, new.price_date) == ("aws-api", "2025-11-20")  # the items' publicationDate
        assert new.spot_price_per_hour > 0 and math.isnan(old.spot_price_per_hour)
        assert new.spot_price_source == "aws-api" and old.spot_price_source == ""
        # moto answers the history with placeholders (0.00001 in every zone that offers the type, a 2006
        # timestamp): this checks the plumbing, test_catalog_spot the per-zone choice with real differences.
        zones = sorted(o["Location"] for page in ec2.get_paginator("describe_instance_type_offerings").paginate(
            LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [t]}])
            for o in page["InstanceTypeOfferings"])
        assert len(zones) >= 2, (t, zones)
        assert new.spot_zones == " ".join(f"{z}=0.00001" for z in zones)  # equal prices: ordered by zone name
        assert (new.spot_price_per_hour, new.spot_zone) == (0.00001, zones[0])
        assert new.spot_price_date == "2006-01-02T15:04:05Z" and old.spot_price_date == ""
        # the live API and the shipped build describe the type identically (same converter, same facts)
        for c in COLUMN_NAMES:
            if c not in ("price_per_hour", "price_source", "price_date") and not c.startswith("spot_"):
                assert new[c] == old[c] or (isinstance(old[c], float) and math.isnan(old[c])
                                            and math.isnan(new[c])), (t, c)
    # interruption buckets from the (hand-written) advisor file; t3.micro's bucket there is invalid: unknown
    interruption = {t: merged[(merged.instance_type == t) & (merged.region == "us-east-1")].iloc[0].spot_interruption
                    for t in expected}
    assert {t: b for t, b in interruption.items() if not math.isnan(b)} == {
        t: b for t, b in {"m5.large": 0.05, "c5.xlarge": 0.2, "g4dn.xlarge": 1.0}.items() if t in expected}
    assert math.isnan(interruption["t3.micro"]) and any("no bucket 0..4" in w for w in result.warnings)
    assert meta["spot_advisor_url"] == spot_files.advisor
    assert meta["spot_interruption_rows"] == sum(not math.isnan(b) for b in interruption.values())


@pytest.fixture()
def few_retries(monkeypatch):
    """Two attempts instead of ten: for tests of failures that retrying cannot fix (minutes of backoff otherwise)."""
    from ccdsl.catalog import refresh as module

    monkeypatch.setattr(module, "RETRIES", {"max_attempts": 2, "mode": "adaptive"})


def test_pricing_api_missing_in_moto_falls_back_to_shipped_prices(aws_env, data_dir, few_retries) -> None:
    """moto has no Price List API: refresh keeps shipped prices (and says so), or fails when asked to."""
    with pytest.raises(CatalogError, match="Price List GetProducts failed"):
        refresh("eu-west-1", endpoint_url=aws_env, pricing_endpoint_url=aws_env, price_fallback=False,
                timeout=MOTO_FAIL_SAFE)
    assert not user_catalog_dir().exists() or not list(user_catalog_dir().iterdir())
    result = refresh("eu-west-1", endpoint_url=aws_env, pricing_endpoint_url=aws_env, timeout=MOTO_FAIL_SAFE)
    assert result.price_source.startswith("shipped catalog") and result.warnings
    shipped = load(user=False)
    priced = shipped[(shipped.region == "eu-west-1") & shipped.price_per_hour.notna()]
    assert result.rows == len(priced)
    # each row keeps the shipped price's own source and date
    written = load(paths=[result.path], user=False)
    row = written[(written.region == "eu-west-1") & (written.instance_type == priced.iloc[0].instance_type)].iloc[0]
    assert (row.price_source, row.price_date) == (priced.iloc[0].price_source, priced.iloc[0].price_date)


@pytest.fixture()
def refresh_hooks(monkeypatch):
    """botocore event handlers registered on every client ``refresh`` creates (AWS behaviour moto lacks)."""
    from ccdsl.catalog import refresh as module

    registered: list = list(module.EVENT_HOOKS)  # the IAM recorder (conftest) first
    monkeypatch.setattr(module, "EVENT_HOOKS", registered)
    return registered


def _pricing_error(request, **_):
    from botocore.awsrequest import AWSResponse

    _pricing_error.urls.append(request.url)
    body = json.dumps({"__type": "AccessDeniedException", "Message": "injected"}).encode()
    return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.1"}, _Body(body))


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_):
        yield self.data


def test_pricing_client_does_not_inherit_the_ec2_endpoint(aws_env, data_dir, refresh_hooks) -> None:
    """Issue 13.16: --endpoint-url is EC2's; the Price List client goes to AWS's pricing endpoint (answered here by
    a before-send hook, so nothing leaves the machine)."""
    _pricing_error.urls = []
    refresh_hooks.append(("before-send.pricing.GetProducts", _pricing_error))
    result = refresh("us-east-1", endpoint_url=aws_env, timeout=MOTO_FAIL_SAFE)
    assert _pricing_error.urls and all(u.startswith("https://api.pricing.us-east-1.amazonaws.com")
                                       for u in _pricing_error.urls), _pricing_error.urls
    assert result.warnings and "AccessDenied" in result.warnings[0]


def test_spot_history_failure_is_a_warning(aws_env, price_list_api, data_dir, refresh_hooks) -> None:
    """Issue 13.16: the on-demand refresh is written without spot prices, and the failure is a warning."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from fixtures_executor import inject

    denied = inject(None, "UnauthorizedOperation", "not allowed: ec2:DescribeSpotPriceHistory", status=403)
    refresh_hooks.append(("before-send.ec2.DescribeSpotPriceHistory", denied))
    result = refresh("us-east-1", endpoint_url=aws_env, pricing_endpoint_url=price_list_api, spot=True,
                     timeout=MOTO_FAIL_SAFE)
    assert denied.failed >= 1
    assert result.rows > 0 and any("DescribeSpotPriceHistory" in w for w in result.warnings)
    written = load(paths=[result.path], user=False)
    assert written[written.region == "us-east-1"].spot_price_per_hour.isna().all()
    assert json.loads(result.path.with_suffix(".json").read_text())["spot_prices"] is False
    # the advisor file is not served here (conftest points it at a closed loopback port): a warning too
    assert any("spot advisor file" in w and "no interruption data" in w for w in result.warnings)
    assert written[written.region == "us-east-1"].spot_interruption.isna().all()


def test_throttling_is_retried_adaptively(aws_env, price_list_api, data_dir, refresh_hooks) -> None:
    """Issue 13.16: two throttles in a row used to end the refresh (2 attempts); adaptive retries ride them out."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from fixtures_executor import inject

    throttled = inject(2, "RequestLimitExceeded", "Request limit exceeded.", status=503)
    refresh_hooks.append(("before-send.ec2.DescribeInstanceTypes", throttled))
    result = refresh("us-east-1", endpoint_url=aws_env, pricing_endpoint_url=price_list_api, timeout=MOTO_FAIL_SAFE)
    assert throttled.failed == 2 and throttled.sent >= 3
    assert result.rows > 0


def test_unreachable_api_leaves_previous_catalog_untouched(aws_env, data_dir, few_retries) -> None:
    d = user_catalog_dir()
    d.mkdir(parents=True)
    previous = d / "aws-us-east-1.refresh.csv"
    previous.write_text("provider,region,instance_type,vcpus,memory_gib,price_per_hour\n"
                        "aws,us-east-1,m5.large,2,8,0.1\n")
    before = previous.read_bytes()
    with pytest.raises(CatalogError, match="cannot reach the AWS API") as info:
        refresh("us-east-1", endpoint_url=f"http://127.0.0.1:{free_port()}", timeout=2)
    assert "unchanged" in (info.value.hint or "")
    assert previous.read_bytes() == before
    assert sorted(p.name for p in d.iterdir()) == ["aws-us-east-1.refresh.csv"]


def test_no_credentials_is_a_clear_error(moto_server, data_dir, monkeypatch, tmp_path) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    with pytest.raises(CatalogError, match="no AWS credentials"):
        refresh("us-east-1", endpoint_url=moto_server, timeout=MOTO_FAIL_SAFE)
    assert not user_catalog_dir().exists()


def test_refresh_cli(aws_env, price_list_api, data_dir, capsys) -> None:
    from ccdsl.cli import main

    code = main(["catalog", "refresh", "--provider", "aws", "--region", "us-east-1", "--endpoint-url", aws_env,
                 "--pricing-endpoint-url", price_list_api, "--timeout", str(MOTO_FAIL_SAFE)])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "us-east-1:" in out.out and "AWS Price List API" in out.out
    assert main(["catalog", "info"]) == 0
    assert "aws-us-east-1.refresh.csv" in capsys.readouterr().out


@pytest.mark.parametrize("value", ["0", "-5", "nan", "inf", "abc", "86401"])
def test_refresh_cli_refuses_a_bad_timeout(data_dir, capsys, value) -> None:
    from ccdsl.cli import main

    with pytest.raises(SystemExit) as info:
        main(["catalog", "refresh", "--region", "us-east-1", "--timeout", value])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--timeout" in err and "positive number of seconds" in err


SPOT_COLUMNS = ("spot_price_per_hour", "spot_zone", "spot_zones", "spot_price_source", "spot_price_date",
                "spot_interruption")


def _spot_of(path: Path) -> dict[str, tuple]:
    from ccdsl.catalog.user import read_records

    return {r["instance_type"]: tuple(r[c] for c in SPOT_COLUMNS) for r in read_records(path)}


def test_spot_data_survives_a_refresh_that_fetches_none(aws_env, price_list_api, data_dir, spot_files,
                                                        refresh_hooks) -> None:
    """Spot prices carry their own date: a refresh without --spot, or one whose history call fails, keeps them."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from fixtures_executor import inject

    first = refresh("us-east-1", endpoint_url=aws_env, pricing_endpoint_url=price_list_api, spot=True,
                    timeout=MOTO_FAIL_SAFE)
    spot = _spot_of(first.path)
    assert first.spot_priced == len(spot) and first.spot_interruption == 3
    second = refresh("us-east-1", endpoint_url=aws_env, pricing_endpoint_url=price_list_api, timeout=MOTO_FAIL_SAFE)
    assert _spot_of(second.path) == spot and (second.spot_priced, second.spot_interruption) == (first.rows, 3)
    denied = inject(None, "UnauthorizedOperation", "not allowed: ec2:DescribeSpotPriceHistory", status=403)
    refresh_hooks.append(("before-send.ec2.DescribeSpotPriceHistory", denied))
    third = refresh("us-east-1", endpoint_url=aws_env, pricing_endpoint_url=price_list_api, spot=True,
                    timeout=MOTO_FAIL_SAFE)
    assert any("DescribeSpotPriceHistory" in w for w in third.warnings)
    assert _spot_of(third.path) == spot
    assert json.loads(third.path.with_suffix(".json").read_text())["spot_prices"] is False


def test_a_refresh_without_spot_names_the_spot_prices_it_hides(aws_env, price_list_api, data_dir,
                                                               spot_files) -> None:
    """aws-<region>.price-list.csv (spot feed prices) is merged before aws-<region>.refresh.csv: say so."""
    from ccdsl.catalog import spot
    from ccdsl.catalog.pricelist import refresh_spot_only

    refresh_spot_only("us-east-1", spot.read_public(["us-east-1"], require_feed=True))
    result = refresh("us-east-1", endpoint_url=aws_env, pricing_endpoint_url=price_list_api, timeout=MOTO_FAIL_SAFE)
    # m5.large is the one type both the recorded Price List pages and the hand-written feed price
    assert any(w.startswith("aws-us-east-1.price-list.csv has spot prices for 1 type whose rows this file "
                            "replaces without one (e.g. m5.large)") for w in result.warnings), result.warnings
