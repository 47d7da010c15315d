"""``ccdsl catalog build``: regenerate ``catalogs/`` from the installed moto and apache-libcloud and the vendored
Karpenter price tables.

One row per (provider, region, instance type) that moto's offerings list for the region, plus the GovCloud
regions (us-gov-east-1, us-gov-west-1) that moto does not list: there a type Karpenter prices counts as offered.
Specs come from moto.  The price is Karpenter's where it has one (AWS's own tables, 2026), else Libcloud's (a
0.0 there means unknown), else unknown: NaN, with ``price_source`` and ``price_date`` empty.  Every row says where
its price comes from and how old it is (``price_source``, ``price_date``).

The output is deterministic: rows sorted by (region, instance type), no timestamps except the sources' own price
dates, so rebuilding with the same package versions gives byte-identical files.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from pathlib import Path
from typing import Any

from ccdsl.catalog import schema
from ccdsl.catalog.convert import known_processors, processor_fact, type_facts
from ccdsl.catalog.schema import NO_SPOT
from ccdsl.catalog.sources import Sources, digest, read_sources
from ccdsl.catalog.store import atomic_write, csv_bytes, parquet_bytes

PARQUET = "aws.parquet"
CSV = "aws.csv"
PROVENANCE = "provenance.json"
SCHEMA_DOC = "SCHEMA.md"


def libcloud_date(src: Sources) -> str:
    return _dt.datetime.fromtimestamp(src.price_updated, _dt.timezone.utc).strftime("%Y-%m-%d")


def offerings(src: Sources) -> dict[str, frozenset[str]]:
    """moto's offerings, plus every region Karpenter prices that moto does not list (GovCloud): there a priced
    type counts as offered."""
    out = dict(src.offerings)
    for region, (_generated, prices) in src.karpenter.items():
        if region not in out:
            out[region] = frozenset(t for t, p in prices.items() if p > 0)
    return out


def price_of(src: Sources, itype: str, region: str) -> tuple[float, str, str]:
    """(USD/h, price_source, price_date) of one pair: Karpenter's price wins, then Libcloud's; else unknown."""
    generated, table = src.karpenter.get(region, ("", {}))
    if table.get(itype, 0.0) > 0:
        return float(table[itype]), f"karpenter@{src.karpenter_commit}", generated[:10]
    price = src.prices.get(itype, {}).get(region, 0.0)
    if price and price > 0:  # libcloud's 0.0 means unknown, never free
        return float(price), f"libcloud-{src.versions['apache-libcloud']}", libcloud_date(src)
    return math.nan, "", ""


def build_rows(src: Sources) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The catalog rows and the counts of what was left out (for provenance)."""
    vcpus = {t: s["VCpuInfo"]["DefaultVCpus"] for t, s in src.specs.items()}
    known = known_processors(src.processors)
    per_type: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    dropped = {"offered_no_spec": 0}
    offered = offerings(src)
    for region in sorted(offered):
        for t in sorted(offered[region]):
            if t not in src.specs:
                dropped["offered_no_spec"] += 1
                continue
            if t not in per_type:
                per_type[t] = type_facts(src.specs[t], processor_fact(t, known, vcpus))
            price, source, date = price_of(src, t, region)
            rows.append({"provider": "aws", "region": region, **per_type[t], "price_per_hour": price,
                         "price_source": source, "price_date": date, **NO_SPOT,
                         "max_nodes": math.nan})
    pairs = {(t, r) for r, ts in offered.items() for t in ts}
    priced = {(t, r) for t, by in src.prices.items() for r, p in by.items() if p}
    priced |= {(t, r) for r, (_g, by) in src.karpenter.items() for t, p in by.items() if p}
    dropped["priced_not_offered"] = len(priced - pairs)
    return rows, dropped


def _site_relative(path: Path) -> str:
    """``moto/ec2/resources/...``: the path inside site-packages, so provenance does not leak the build host."""
    parts = path.parts
    for anchor in ("moto", "libcloud"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[i:])
    return path.name


def provenance(src: Sources, rows: list[dict[str, Any]], dropped: dict[str, int],
               files: dict[str, bytes]) -> dict[str, Any]:
    import hashlib
    from collections import Counter

    from ccdsl.version import __version__

    by_source = Counter(r["price_source"] or "unknown" for r in rows)
    dates = {r["price_source"]: r["price_date"] for r in rows if r["price_source"]}
    moto_pairs = {(t, r) for r, ts in src.offerings.items() for t in ts}
    covered = sum(1 for r in rows if (r["instance_type"], r["region"]) in moto_pairs)
    karpenter = {name.split("/", 1)[1]: path for name, path in src.files.items() if name.startswith("karpenter/")}
    return {
        "format": 2,
        "generator": f"ccdsl {__version__} catalog build",
        "provider": "aws",
        "sources": {
            "specs": {"package": "moto", "file": _site_relative(src.files["instance_types"]),
                      "sha256": digest(src.files["instance_types"])},
            "offerings": {"package": "moto", "file": _site_relative(src.files["offerings"]) + "/*.json.gz",
                          "sha256": digest(src.files["offerings"])},
            "prices": {"package": "karpenter", "file": "catalogs/sources/karpenter/zz_generated.pricing_aws*.go",
                       "commit": src.karpenter_commit,
                       "regions": sorted(src.karpenter),
                       "sha256": {name: digest(path) for name, path in sorted(karpenter.items())}},
            "prices_fallback": {"package": "apache-libcloud", "file": _site_relative(src.files["pricing"]),
                                "key": "compute.ec2_linux", "sha256": digest(src.files["pricing"])},
            "processors": {"package": "apache-libcloud", "file": _site_relative(src.files["processors"]),
                           "sha256": digest(src.files["processors"])},
        },
        "versions": dict(sorted(src.versions.items())),
        "price_kind": "on-demand Linux, shared tenancy, USD per hour",
        "price_sources": {name: {"rows": by_source[name], "date": dates.get(name, "")}
                          for name in sorted(by_source)},
        "counts": {
            "rows": len(rows),
            "priced": sum(1 for r in rows if r["price_source"]),
            "unpriced": by_source.get("unknown", 0),
            "instance_types": len({r["instance_type"] for r in rows}),
            "regions": len({r["region"] for r in rows}),
            "moto_offered_pairs": len(moto_pairs),
            "moto_offered_pairs_in_catalog": covered,
            **dropped,
        },
        "regions": sorted({r["region"] for r in rows}),
        "files": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


def schema_doc() -> str:
    lines = ["# Catalog columns", "", "Generated by `ccdsl catalog build` from `ccdsl/catalog/schema.py`; "
             "see README.md for units and provenance.", "", "| column | dtype | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {dtype} | {meaning.replace('|', '&#124;')} |" for name, dtype, meaning in schema.COLUMNS]
    return "\n".join(lines) + "\n"


def build(output: Path | None = None) -> dict[str, Any]:
    """Build the shipped catalog into ``output`` (default: the package's ``catalogs/``); return the provenance.

    Everything is computed in memory first; files are then replaced one by one atomically, so an error (missing
    package, unmapped model) leaves the previous catalog exactly as it was.
    """
    from ccdsl._resources import catalog_dir

    out = Path(output) if output is not None else catalog_dir()
    src = read_sources()
    rows, dropped = build_rows(src)
    files = {PARQUET: parquet_bytes(rows), CSV: csv_bytes(rows), SCHEMA_DOC: schema_doc().encode()}
    prov = provenance(src, rows, dropped, files)
    files[PROVENANCE] = (json.dumps(prov, indent=2, sort_keys=False) + "\n").encode()
    for name, data in files.items():
        atomic_write(out / name, data)
    from ccdsl.catalog import loader as _load

    _load.clear_cache()
    return prov
