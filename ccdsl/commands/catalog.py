"""``ccdsl catalog build|info|list|show|export|refresh|add``: look at and maintain the instance catalog.

Cheap to import: pandas, the build sources and boto3 load inside the command functions only.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ccdsl.catalog.freshness import PRICE_MAX_AGE_DAYS, SPOT_PRICE_MAX_AGE_DAYS, price_age_days
from ccdsl.catalog.schema import SPOT_COLUMNS

if TYPE_CHECKING:
    import pandas as pd


LIST_COLUMNS = ("provider", "region", "instance_type", "vcpus", "memory_gib", "cpu_microarchitecture",
                "accelerator_count", "accelerator_model", "network_gbps", "price_per_hour")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("catalog", help="inspect, rebuild, refresh or extend the instance catalog")
    cs = p.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND")
    cs.required = True

    b = cs.add_parser("build", help="regenerate the shipped catalog from moto + apache-libcloud (ccdsl[build])")
    b.add_argument("--output", metavar="DIR", help="write here instead of the package's catalogs/ directory")
    b.set_defaults(func=cmd_build)

    i = cs.add_parser("info", help="sources, versions, price date and row counts")
    i.set_defaults(func=cmd_info)

    ls = cs.add_parser("list", help="list catalog rows as a table")
    ls.add_argument("--region", metavar="R", help="only this region (e.g. us-east-1; lab for your hosts)")
    ls.add_argument("--provider", metavar="P", help="only this provider: aws, ssh (your hosts) or local")
    ls.add_argument("--family", metavar="F", help="only this instance family (e.g. g6 for g6.xlarge, …)")
    ls.add_argument("--gpu", action="store_true", help="only rows with a GPU")
    ls.add_argument("--min-vcpus", type=int, default=0, metavar="N", help="only rows with at least N vCPUs")
    ls.add_argument("--limit", type=int, default=50, metavar="N", help="at most N rows (0 = all; default 50)")
    ls.add_argument("--sort", default="price_per_hour", metavar="COLUMN",
                    help="column to sort by (default price_per_hour; `catalog export` shows every column)")
    ls.set_defaults(func=cmd_list)

    s = cs.add_parser("show", help="every column of one instance type")
    s.add_argument("instance_type", metavar="TYPE", help="an instance type (g6.xlarge) or one of your hosts")
    s.add_argument("--region", help="one region (default: all regions, prices side by side)")
    s.set_defaults(func=cmd_show)

    e = cs.add_parser("export", help="write the merged catalog to stdout")
    e.add_argument("--format", choices=("csv", "json"), default="csv")
    e.add_argument("--no-user", action="store_true", help="only the shipped catalog")
    e.set_defaults(func=cmd_export)

    r = cs.add_parser("refresh", help="fetch current prices into a user catalog: AWS's public Price List files "
                                      "(--from price-list, no account) or the AWS APIs (boto3, credentials)")
    r.add_argument("--provider", default="aws", choices=("aws",))
    r.add_argument("--from", dest="source", choices=("api", "price-list"), default="api",
                   help="price-list: stream AWS's public Price List bulk CSV files (no credentials); api (default): "
                        "EC2 DescribeInstanceTypes + the Price List query API through boto3")
    r.add_argument("--price-list-url", metavar="URL", default=None,
                   help="base URL of the Price List bulk files (default https://pricing.us-east-1.amazonaws.com)")
    r.add_argument("--region", action="append", metavar="R",
                   help="region to refresh (repeatable; default: the AWS configuration's region)")
    r.add_argument("--endpoint-url", metavar="URL", help="EC2 endpoint (e.g. a moto server)")
    r.add_argument("--pricing-endpoint-url", metavar="URL",
                   help="Price List API endpoint (default: AWS's; never the --endpoint-url of EC2)")
    r.add_argument("--spot", action="store_true",
                   help="also fetch spot prices and interruption buckets: DescribeSpotPriceHistory (per zone) with "
                        "--from api, AWS's public spot feed with --from price-list; both read the public spot "
                        "advisor file")
    r.add_argument("--spot-only", action="store_true",
                   help="with --from price-list: only the spot columns (public spot feed and advisor, a few MB), "
                        "without the large on-demand offer file; updates the rows you already have for the region "
                        "(your earlier price-list refresh, and the shipped rows)")
    r.add_argument("--spot-feed-url", metavar="URL", default=None,
                   help="the public spot price feed (default $CCDSL_SPOT_FEED_URL, else AWS's spot.json)")
    r.add_argument("--spot-advisor-url", metavar="URL", default=None,
                   help="the spot advisor file (default $CCDSL_SPOT_ADVISOR_URL, else AWS's public file)")
    r.add_argument("--no-price-fallback", action="store_true",
                   help="fail if the Price List API is unavailable instead of keeping shipped prices")
    r.add_argument("--timeout", metavar="SECONDS", type=_seconds, default=20.0,
                   help="with --from api: how long to wait for each answer of the AWS APIs (default 20; a slow "
                        "endpoint, such as a test server on a busy machine, may need more)")
    r.set_defaults(func=cmd_refresh)

    a = cs.add_parser("add", help="validate a CSV/TOML user catalog and copy it into the user data directory")
    a.add_argument("file", metavar="FILE", help="a user catalog: .csv or .toml with the catalog's columns "
                                                "(see examples/lab_hosts.toml)")
    a.add_argument("--name", help="file name in the data directory (default: FILE's name)")
    a.set_defaults(func=cmd_add)

    rm = cs.add_parser("remove", help="delete a user catalog from the user data directory",
                       description="Delete a user catalog that `catalog add` or `catalog refresh` installed.\n"
                                   "`ccdsl catalog info` lists them.")
    rm.add_argument("name", metavar="NAME", help="its file name, with or without the suffix (e.g. lab_hosts)")
    rm.set_defaults(func=cmd_remove)


QUANTITY_SUFFIXES = ("_gib", "_gbps", "_ghz")  # sizes, shown rounded; prices keep every digit


def _fmt(value: Any, column: str = "") -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if column.replace(" ", "_").endswith(QUANTITY_SUFFIXES):
            from ccdsl.resolution import quantity

            return quantity(value)
        return f"{value:g}" if abs(value) < 1e6 else f"{value:.0f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def render_table(rows: list[list[Any]], header: list[str]) -> str:
    """A plain aligned text table (numbers right-aligned)."""
    rows = [[v.item() if hasattr(v, "item") else v for v in r] for r in rows]  # numpy scalars -> Python
    cells = [[_fmt(v, h) for v, h in zip(r, header)] for r in rows]
    numeric = [all(isinstance(r[i], (int, float)) and not isinstance(r[i], bool) for r in rows) if rows else False
               for i in range(len(header))]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(header)]

    def line(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if numeric[i] else v.ljust(w) for i, (v, w) in enumerate(zip(vals, widths)))

    return "\n".join(line(c).rstrip() for c in [header, ["-" * w for w in widths], *cells])


def cmd_build(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ccdsl.catalog.build import build

    prov = build(Path(args.output) if args.output else None)
    c = prov["counts"]
    prices = ", ".join(f"{s['rows']} {name}" + (f" ({s['date']})" if s["date"] else "")
                       for name, s in prov["price_sources"].items())
    print(f"built {c['rows']} rows ({c['instance_types']} instance types, {c['regions']} regions); "
          f"prices: {prices}; moto {prov['versions']['moto']}, "
          f"apache-libcloud {prov['versions']['apache-libcloud']}, karpenter@{prov['sources']['prices']['commit']}")
    return 0


def price_sources(frame: pd.DataFrame) -> list[tuple[str, int, str, str]]:
    """(price_source, rows, oldest date, newest date) of a catalog frame; unpriced rows as source "unknown"."""
    out = []
    source = frame["price_source"].fillna("").astype(str)
    date = frame["price_date"].fillna("").astype(str)
    for name in sorted(set(source)):
        dates = sorted(d for d in date[source == name] if d)
        out.append((name or "unknown", int((source == name).sum()), dates[0] if dates else "",
                    dates[-1] if dates else ""))
    return out


def cmd_info(args: argparse.Namespace) -> int:
    import json

    from ccdsl._resources import catalog_dir
    from ccdsl.catalog.loader import load, user_catalog_dir
    from ccdsl.errors import CatalogError

    path = catalog_dir() / "provenance.json"
    try:
        prov = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read catalog provenance {path}: {exc}",
                           hint="run `ccdsl catalog build`") from None
    c = prov["counts"]
    print(f"shipped catalog: {catalog_dir()}")
    print(f"  rows: {c['rows']}  instance types: {c['instance_types']}  regions: {c['regions']}")
    print(f"  moto's offered (type, region) pairs in the catalog: {c['moto_offered_pairs_in_catalog']} of "
          f"{c['moto_offered_pairs']}; {c['unpriced']} rows have no known price (they compete only when no priced "
          f"row fits); {c['priced_not_offered']} priced pairs are not offered")
    print(f"  prices: {prov['price_kind']}")
    print("  sources:")
    for name, s in prov["sources"].items():
        version = s.get("commit") or prov["versions"].get(s["package"], "")
        digest = s["sha256"] if isinstance(s["sha256"], str) else next(iter(s["sha256"].values()))
        print(f"    {name:<15} {s['package']} {version}: {s['file']}"
              f"{' [' + s['key'] + ']' if 'key' in s else ''}  sha256 {digest[:12]}")
    print(f"  spot prices: none shipped (no licensed offline source); {SPOT_HOW} fetches them")
    try:
        merged, which = load(), "shipped and user catalogs merged"
    except CatalogError:  # an unreadable user catalog is listed below; count the shipped rows alone
        merged, which = load(user=False), "shipped catalog; a user catalog is unreadable"
    rows = price_sources(merged)
    print(f"prices by source ({which}):")
    print("\n".join("  " + line for line in render_table(
        [[name, n, old or "-", new or "-"] for name, n, old, new in rows],
        ["price source", "rows", "oldest", "newest"]).splitlines()))
    print(spot_summary(merged))
    for name, n, old in stale_spot(merged):
        print(f"warning: the spot prices of {n} rows ({name}) date from {old}, {price_age_days(old)} days ago; "
              f"spot prices move daily (older than {SPOT_PRICE_MAX_AGE_DAYS} days is stale): {SPOT_HOW} brings current "
              "ones", file=sys.stderr)
    stale = [(name, n, old) for name, n, old, _new in rows if (price_age_days(old) or 0) > PRICE_MAX_AGE_DAYS]
    for name, n, old in stale:
        print(f"warning: {n} rows carry {name} prices from {old}, {price_age_days(old)} days old (older than "
              f"{PRICE_MAX_AGE_DAYS} days); `ccdsl catalog refresh --provider aws --from price-list --region R` "
              "brings current ones", file=sys.stderr)
    from ccdsl.catalog.user import installed

    users = installed()
    print(f"user catalogs: {user_catalog_dir()}" + ("" if users else " (none)"))
    for u, count in users:
        side = u.with_suffix(".json")
        extra = ""
        if side.exists():
            try:
                meta = json.loads(side.read_text())
                extra = f"  refreshed {meta.get('fetched_at')}, prices from {meta.get('price_source')}"
                if meta.get("spot_fetched_at"):
                    extra += f", spot feed of {meta['spot_fetched_at']}"
                elif meta.get("spot_prices"):
                    extra += ", spot prices per zone (DescribeSpotPriceHistory)"
            except ValueError:
                extra = "  (unreadable sidecar)"
        size = "unreadable" if count is None else f"{count} row{'s' * (count != 1)}"
        print(f"  {u.name} ({size}){extra}")
    if users:
        print("  (remove one with `ccdsl catalog remove NAME`)")
    return 0


def stale_spot(frame: pd.DataFrame, today: Any = None) -> list[tuple[str, int, str]]:
    """(spot_price_source, rows, oldest date) of each source whose oldest spot price is more than
    :data:`SPOT_PRICE_MAX_AGE_DAYS` old (a date that does not read as ISO 8601 is left alone)."""
    out = []
    priced = frame[frame["spot_price_per_hour"].notna()]
    source = priced["spot_price_source"].fillna("").astype(str)
    date = priced["spot_price_date"].fillna("").astype(str)
    for name in sorted(set(source)):
        dates = sorted(d for d in date[source == name] if d)
        if dates and (price_age_days(dates[0], today) or 0) > SPOT_PRICE_MAX_AGE_DAYS:
            out.append((name or "(no source)", int((source == name).sum()), dates[0]))
    return out


def spot_summary(frame: pd.DataFrame) -> str:
    """Rows with a spot price per ``spot_price_source`` with the oldest and newest ``spot_price_date``, and rows
    with an interruption bucket (spot dates are ISO 8601 UTC timestamps, so text order is time order)."""
    source = frame["spot_price_source"].fillna("").astype(str)
    priced = frame["spot_price_per_hour"].notna()
    buckets = int(frame["spot_interruption"].notna().sum())
    if not priced.any():
        return (f"spot prices: no row has one; {SPOT_HOW} brings them"
                + (f"\n  rows with a spot interruption bucket: {buckets}" if buckets else ""))
    date = frame["spot_price_date"].fillna("").astype(str)
    table = []
    for name in sorted(set(source[priced])):
        mask = priced & (source == name)
        dates = sorted(d for d in date[mask] if d)
        table.append([name or "(no source)", int(mask.sum()), dates[0] if dates else "-",
                      dates[-1] if dates else "-"])
    lines = ["spot prices by source (prices move: each is a dated snapshot):",
             *("  " + line for line in render_table(table, ["spot price source", "rows", "oldest", "newest"])
               .splitlines()),
             f"  rows with a spot interruption bucket: {buckets}"]
    return "\n".join(lines)


def _frame(user: bool = True) -> pd.DataFrame:
    from ccdsl.catalog.loader import load

    return load(user=user)


def cmd_list(args: argparse.Namespace) -> int:
    from ccdsl.catalog.schema import COLUMN_NAMES
    from ccdsl.errors import CatalogError

    df = full = _frame()
    for column in ("region", "provider", "family"):
        wanted = getattr(args, column)
        if wanted:
            _known(df, column, wanted)
            df = df[df[column] == wanted]
    if args.gpu:
        df = df[df["accelerator_type"] == "GPU"]
    if args.min_vcpus:
        df = df[df["vcpus"] >= args.min_vcpus]
    if args.sort not in COLUMN_NAMES:
        raise CatalogError(f"cannot sort by unknown column {args.sort!r}")
    total = len(df)
    df = df.sort_values([args.sort, "instance_type", "region"], kind="stable")
    if args.limit > 0:
        df = df.head(args.limit)
    rows = [list(r) for r in _with_shares(df, full, long=False)[list(LIST_COLUMNS)].itertuples(index=False)]
    print(render_table(rows, [c.replace("_", " ") for c in LIST_COLUMNS]))
    print(f"({len(rows)} of {total} rows)")
    from ccdsl.catalog.loader import user_files

    users = user_files()
    if users:
        print(f"user catalogs merged in: {', '.join(p.name for p in users)} (see `ccdsl catalog info`)")
    return 0


def _with_shares(rows: pd.DataFrame, catalog: pd.DataFrame, long: bool = True) -> pd.DataFrame:
    """``rows`` with ``accelerator_count`` as text: ``1/8 (a share of one L4: 2.79 GiB of 22.35)`` (``long``) or
    ``1/8 of one`` for a share of one accelerator (the catalog stores 0, as AWS reports it;
    :mod:`ccdsl.catalog.shares` reads the share against the whole accelerators of ``catalog``), else the count."""
    from ccdsl.catalog.shares import count_text, frame_counts, is_share
    from ccdsl.resolution import quantity

    counts = frame_counts(catalog).reindex(rows.index)
    out = rows.copy()

    def text(n: float, model: str, mem: float) -> str:
        if not is_share(n):
            return count_text(n)
        return f"{count_text(n)} (a share of one {model}: {quantity(mem)} GiB of {quantity(mem / n)})" if long \
            else f"{count_text(n)} of one"

    models, memory = rows["accelerator_model"], rows["accelerator_memory_gib"]
    out["accelerator_count"] = [text(*x) for x in zip(counts, models, memory)]
    return out


def _known(df: Any, column: str, value: str) -> None:
    """A filter value no row has is a typo or a region the catalog lacks: say so instead of printing nothing."""
    from ccdsl.catalog import unknown_hint
    from ccdsl.errors import CatalogError

    known = sorted(set(df[column].astype(str)) - {""})
    if value in known:
        return
    hint = unknown_hint(value, known, "families" if column == "family" else f"{column}s")
    raise CatalogError(f"unknown {column} {value!r}: no catalog row has it", hint=hint)


def cmd_show(args: argparse.Namespace) -> int:
    import difflib

    from ccdsl.catalog.schema import COLUMN_NAMES
    from ccdsl.errors import CatalogError

    df = _frame()
    hit = df[df["instance_type"] == args.instance_type]
    if hit.empty:
        types = sorted(set(df["instance_type"]))
        same = [t for t in types if t.lower() == args.instance_type.lower()]  # a difference of case comes first
        close = (same + [t for t in difflib.get_close_matches(args.instance_type, types, n=3) if t not in same])[:3]
        raise CatalogError(f"no instance type {args.instance_type!r} in the catalog",
                           hint=f"did you mean {', '.join(close)}?" if close else "see `ccdsl catalog list`")
    if args.region:
        regional = hit[hit["region"] == args.region]
        if regional.empty:
            raise CatalogError(f"{args.instance_type} is not offered in {args.region}",
                               hint="offered in: " + ", ".join(sorted(set(hit["region"]))))
        hit = regional
    first = _with_shares(hit, df).iloc[0]
    per_region = ("region", "price_per_hour", "price_source", "price_date", *SPOT_COLUMNS)
    rows = [[c, _fmt(first[c].item() if hasattr(first[c], "item") else first[c], c)]
            for c in COLUMN_NAMES if c not in per_region and c != "provider"]
    print(f"{first['provider']} {args.instance_type}")
    if first["accelerator_model"]:
        from ccdsl.resolution import accelerator_memory

        count = first["accelerator_count"]
        memory = accelerator_memory(float(first["accelerator_memory_gib"]),
                                    float(first["accelerator_memory_usable_gib"]))
        if isinstance(count, str) and " " in count:  # a share of one accelerator: '1/4 (a share of one L4: …)'
            print(f"{count.split(' ')[0]} of one {first['accelerator_model']}: {memory}")
        else:
            print(f"{count} × " if count else "", f"{first['accelerator_model']}, {memory}", sep="")
    print(render_table(rows, ["column", "value"]))
    print()
    prices = [[r.region, r.price_per_hour, r.price_source or "-", r.price_date or "-"]
              for r in hit.sort_values(["price_per_hour", "region"]).itertuples(index=False)]
    print(render_table(prices, ["region", "price per hour", "price source", "price date"]))
    if hit["price_per_hour"].isna().any():
        print("(- = price unknown in the shipped catalog; `ccdsl catalog refresh --provider aws --from price-list "
              "--region R` brings it)")
    print()
    print(spot_table(hit))
    return 0


SPOT_HOW = ("`ccdsl catalog refresh --provider aws --from price-list --spot-only --region R` (no account) or "
            "`ccdsl catalog refresh --spot --region R` (credentials, per zone)")


def spot_table(hit: pd.DataFrame) -> str:
    """The spot columns of one type's rows, one line per region (cheapest spot price first), with the interruption
    bucket as the advisor's label and every zone's price below; one line when no region has spot data."""
    from ccdsl.catalog.spot import interruption_label

    known = hit[hit["spot_price_per_hour"].notna() | hit["spot_interruption"].notna()]
    if known.empty:
        return f"spot: no spot price or interruption data for this type (none is shipped); {SPOT_HOW} brings them"
    ordered = known.sort_values(["spot_price_per_hour", "region"])
    rows = [[region, price, zone or "-", date or "-", source or "-", interruption_label(bound)]
            for region, price, zone, date, source, bound in zip(
                ordered["region"], ordered["spot_price_per_hour"], ordered["spot_zone"], ordered["spot_price_date"],
                ordered["spot_price_source"], ordered["spot_interruption"].astype(float))]
    lines = ["spot (Linux; prices move, each is a dated snapshot):",
             render_table(rows, ["spot region", "spot price per hour", "spot zone", "spot price date", "spot source",
                                 "interruption"])]
    lines += [f"  zones in {r.region!s}: {r.spot_zones!s}"
              for r in known.sort_values("region").itertuples(index=False) if r.spot_zones]
    missing = len(hit) - len(known)
    if missing:
        lines.append(f"({missing} other region(s) have no spot data for this type; {SPOT_HOW} brings it)")
    return "\n".join(lines)


def cmd_export(args: argparse.Namespace) -> int:
    from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES
    from ccdsl.catalog.store import csv_bytes

    df = _frame(user=not args.no_user)
    if args.format == "csv":
        records = df.to_dict("records")
        sys.stdout.write(csv_bytes(records, COLUMN_NAMES).decode())
    else:
        import json
        import math

        def clean(v: Any, dtype: str) -> Any:
            if dtype == "float64":
                v = float(v)
                return None if math.isnan(v) else v
            if dtype == "int64":
                return int(v)
            if dtype == "bool":
                return bool(v)
            return str(v)

        out = [{c: clean(r[c], DTYPES[c]) for c in COLUMN_NAMES} for r in df.to_dict("records")]
        json.dump(out, sys.stdout, indent=None, separators=(",", ":"))
        sys.stdout.write("\n")
    return 0


def _seconds(text: str) -> float:
    """``--timeout``'s value: a positive number of seconds, at most a day (argparse names the option)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 86400:
        raise argparse.ArgumentTypeError(f"a wait is a positive number of seconds up to 86400, not {text!r}")
    return value


def cmd_refresh(args: argparse.Namespace) -> int:
    from ccdsl.catalog.refresh import refresh
    from ccdsl.errors import CatalogError

    if args.source == "price-list":
        return refresh_price_list(args)
    if args.price_list_url:
        raise CatalogError("--price-list-url goes with --from price-list")
    if args.spot_only:
        raise CatalogError("--spot-only reads AWS's public spot feed: it goes with --from price-list",
                           hint="ccdsl catalog refresh --provider aws --from price-list --spot-only --region R")
    if args.spot_feed_url:
        raise CatalogError("--spot-feed-url goes with --from price-list --spot (the API path asks "
                           "DescribeSpotPriceHistory)")
    if args.spot_advisor_url and not args.spot:
        raise CatalogError("--spot-advisor-url goes with --spot")

    regions = args.region
    if not regions:
        from ccdsl.catalog.refresh import boto3_modules

        boto3, _c, _e = boto3_modules()
        default = boto3.session.Session().region_name
        if not default:
            raise CatalogError("no region given and none configured", hint="pass --region R")
        regions = [default]
    for region in regions:
        res = refresh(region, endpoint_url=args.endpoint_url, pricing_endpoint_url=args.pricing_endpoint_url,
                      spot=args.spot, price_fallback=not args.no_price_fallback,
                      spot_advisor_url=args.spot_advisor_url, timeout=args.timeout)
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        spot = (f"; spot prices for {res.spot_priced} rows (per zone, DescribeSpotPriceHistory), interruption "
                f"buckets for {res.spot_interruption}" if args.spot else "")
        print(f"{region}: {res.rows} rows ({res.instance_types_described} types described, {res.offered} offered, "
              f"{res.unpriced} without price); prices from {res.price_source}{spot} -> {res.path}")
    return 0


def refresh_price_list(args: argparse.Namespace) -> int:
    """``--from price-list``: no credentials, no boto3; one offer file per region, streamed; with ``--spot`` or
    ``--spot-only`` the public spot feed and advisor file, read once for every region."""
    from ccdsl.catalog.pricelist import BASE_URL, refresh_from_price_list, refresh_spot_only
    from ccdsl.catalog.spot import read_public
    from ccdsl.errors import CatalogError
    from ccdsl.resolver import default_region

    if args.endpoint_url or args.pricing_endpoint_url or args.no_price_fallback:
        raise CatalogError("--endpoint-url, --pricing-endpoint-url and --no-price-fallback go with --from api",
                           hint="--from price-list reads public files; --price-list-url points elsewhere")
    spot = args.spot or args.spot_only
    if (args.spot_feed_url or args.spot_advisor_url) and not spot:
        raise CatalogError("--spot-feed-url and --spot-advisor-url go with --spot or --spot-only")
    if args.spot_only and args.price_list_url:
        raise CatalogError("--spot-only reads no Price List file: --price-list-url does not apply")
    regions = list(dict.fromkeys(args.region or [default_region()]))
    public = None
    if spot:
        public = read_public(regions, feed=args.spot_feed_url, advisor=args.spot_advisor_url, progress=sys.stderr,
                             require_feed=args.spot_only)
        for w in public.warnings:
            print(f"warning: {w}", file=sys.stderr)
    for region in regions:
        if args.spot_only and public is not None:
            only = refresh_spot_only(region, public)
            for w in only.warnings:
                print(f"warning: {w}", file=sys.stderr)
            print(f"{region}: spot prices for {only.spot_priced} of {only.rows} rows (spot feed of {only.spot_date}), "
                  f"interruption buckets for {only.spot_interruption}; on-demand prices unchanged ({only.base}) "
                  f"-> {only.path}")
            continue
        res = refresh_from_price_list(region, base_url=args.price_list_url or BASE_URL, progress=sys.stderr,
                                      spot=public)
        for w in res.warnings:
            print(f"warning: {w}", file=sys.stderr)
        extra = f"; spot prices for {res.spot_priced} rows, interruption buckets for {res.spot_interruption}" \
            if spot or res.spot_priced or res.spot_interruption else ""
        print(f"{region}: {res.rows} rows ({res.priced_types} types priced, {res.rows_read:,} CSV rows, "
              f"{res.bytes_read / 1e6:.1f} MB); prices from {res.price_source} of {res.price_date}{extra} "
              f"-> {res.path}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from ccdsl.catalog.user import add, read_records

    rows = read_records(args.file)
    dest = add(args.file, args.name)
    print(f"added {len(rows)} rows -> {dest}")
    free = sorted({(r["provider"], r["region"]) for r in rows if r["provider"] in ("ssh", "local")
                   and not r["price_per_hour"] > 0})
    for provider, region in free:
        named = {"ssh": "SSH", "local": "Local"}[provider]
        print(f"note: the free {provider} rows compete only for contracts that name them (node_provider => {named}"
              + (f", cluster_locale => \"{region}\"" if region else "") + " or node_machinetype => \"HOST\")")
    print(f"undo with `ccdsl catalog remove {dest.stem}`")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ccdsl.catalog.user import remove

    for path in remove(args.name):
        print(f"removed {path}")
    return 0
