"""Independent readers of the raw catalog sources (moto, apache-libcloud) for the catalog tests.

Deliberately not ``ccdsl.catalog.sources``: the tests recompute expectations with their own plain code.
"""

from __future__ import annotations

import ast
import gzip
import json
from functools import lru_cache
from importlib import metadata
from pathlib import Path

SITE = Path(metadata.distribution("moto").locate_file(""))


def raw_specs() -> dict:
    return json.loads(gzip.decompress((SITE / "moto/ec2/resources/instance_types.json.gz").read_bytes()))


@lru_cache(maxsize=1)
def raw_offerings() -> frozenset[tuple[str, str]]:
    pairs = set()
    for f in (SITE / "moto/ec2/resources/instance_type_offerings/region").glob("*.json.gz"):
        pairs |= {(o["InstanceType"], o["Location"]) for o in json.loads(gzip.decompress(f.read_bytes()))}
    return frozenset(pairs)


@lru_cache(maxsize=1)
def raw_prices() -> dict:
    return json.loads((Path(metadata.distribution("apache-libcloud").locate_file(""))
                       / "libcloud/data/pricing.json").read_text())


def raw_processors() -> dict[str, str]:
    path = Path(metadata.distribution("apache-libcloud").locate_file("")) / \
        "libcloud/compute/constants/ec2_instance_types.py"
    tree = ast.parse(path.read_text())
    (table,) = [ast.literal_eval(s.value) for s in tree.body if isinstance(s, ast.Assign)
                and getattr(s.targets[0], "id", "") == "INSTANCE_TYPES"]
    return {t: v["extra"].get("physicalProcessor", "") for t, v in table.items()}


KARPENTER = Path(__file__).resolve().parents[1] / "catalogs" / "sources" / "karpenter"


@lru_cache(maxsize=1)
def raw_karpenter() -> dict[str, dict[str, float]]:
    """region -> type -> USD/h from the vendored Go files (every quoted name followed by a number)."""
    import re

    out: dict[str, dict[str, float]] = {}
    for f in sorted(KARPENTER.glob("zz_generated.pricing_aws*.go")):
        region = None
        for line in f.read_text().splitlines():
            m = re.fullmatch(r'\s*"([a-z0-9-]+)": \{', line)
            if m:
                region = m.group(1)
                continue
            for name, price in re.findall(r'"([^"]+)": ([0-9.]+)', line):
                out.setdefault(region, {})[name] = float(price)
    return out
