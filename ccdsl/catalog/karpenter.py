"""Karpenter's generated on-demand price tables (AWS's own, from the Price List API), read as data.

Why this source: Libcloud's price file is years old and misses AWS's 2025 GPU price cuts; Karpenter (Apache-2.0,
published by AWS) regenerates its tables weekly from the Price List API.  The tables are vendored under
``catalogs/sources/karpenter/`` with their LICENSE, NOTICE and SOURCE.md, so a fresh clone rebuilds the catalog
without a network or a Go toolchain: the files are gofmt'd Go map literals, regular enough to read line by line.

    >>> t = parse('// generated at 2026-07-20T13:44:30Z for us-east-1\\nvar Prices = map[string]float64{\\n'
    ...           '\\t"us-east-1": {\\n\\t\\t// a1 family\\n'
    ...           '\\t\\t"a1.large": 0.051000, "c7i-flex.large": 0.084780,\\n\\t},\\n')
    >>> t.generated, t.prices["us-east-1"]["c7i-flex.large"]
    ('2026-07-20T13:44:30Z', 0.08478)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ccdsl.errors import CatalogError

FILES = ("zz_generated.pricing_aws.go", "zz_generated.pricing_aws_us_gov.go")

_GENERATED = re.compile(r"^//\s*generated at (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)")
_REGION = re.compile(r'^"([a-z]{2}(?:-[a-z]+)+-\d+)":\s*\{$')
_ENTRY = re.compile(r'"([A-Za-z0-9][A-Za-z0-9.\-]*)":\s*([0-9]+(?:\.[0-9]+)?),')
_COMMIT = re.compile(r"Commit:\s*([0-9a-f]{7,40})")


@dataclass(frozen=True)
class Table:
    """One generated file: when it was generated and region -> instance type -> USD/h."""

    generated: str  # ISO timestamp from the file's "generated at" comment
    prices: dict[str, dict[str, float]]


def parse(text: str, name: str = "<karpenter table>") -> Table:
    """Read one generated Go file; a line that is neither a comment, a region, a closing brace nor entries fails
    the build (the upstream layout changed, and guessing would put wrong prices in the catalog)."""
    generated = ""
    prices: dict[str, dict[str, float]] = {}
    region: str | None = None
    in_map = False
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not in_map:
            m = _GENERATED.match(line)
            if m:
                generated = m.group(1)
            in_map = line.startswith("var ") and line.endswith("{")
            continue
        if not line or line.startswith("//"):
            continue
        m = _REGION.match(line)
        if m:
            region = m.group(1)
            prices.setdefault(region, {})
            continue
        if line in ("},", "}"):
            region = None
            continue
        entries = _ENTRY.findall(line)
        if region is None or not entries or _ENTRY.sub("", line).strip():
            raise CatalogError(f"{name}:{number}: unexpected line {line[:60]!r} in Karpenter's price table",
                               hint="the upstream file format changed; see catalogs/sources/karpenter/SOURCE.md")
        for itype, price in entries:
            prices[region][itype] = float(price)
    if not generated or not prices:
        raise CatalogError(f"{name}: no 'generated at' stamp or no prices found in Karpenter's price table")
    return Table(generated, prices)


def commit(source_md: str) -> str:
    """The short upstream commit named in SOURCE.md (the ``price_source`` label is ``karpenter@<commit>``)."""
    m = _COMMIT.search(source_md)
    if not m:
        raise CatalogError("catalogs/sources/karpenter/SOURCE.md names no 'Commit: <sha>'")
    return m.group(1)[:8]


def read(directory: Path) -> tuple[str, dict[str, tuple[str, dict[str, float]]]]:
    """(short commit, region -> (generated timestamp, type -> USD/h)) of every vendored table in ``directory``."""
    try:
        label = commit((directory / "SOURCE.md").read_text())
        out: dict[str, tuple[str, dict[str, float]]] = {}
        for name in FILES:
            table = parse((directory / name).read_text(), name)
            for region, prices in table.prices.items():
                out[region] = (table.generated, prices)
    except OSError as exc:
        raise CatalogError(f"cannot read Karpenter's vendored price tables: {exc}",
                           hint="catalogs/sources/karpenter/ ships with ccdsl; restore it from the repository",
                           ) from None
    return label, out
