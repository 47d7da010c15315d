"""The raw inputs of ``ccdsl catalog build``: moto's EC2 data, libcloud's price and processor tables, and
Karpenter's generated on-demand price tables vendored in ``catalogs/sources/karpenter/``.

moto and libcloud are build-time extras (``pip install 'ccdsl[build]'``); the shipped catalog is generated from
them once and committed, so resolving never imports either.  This module only *finds and reads* the files; what the
values mean is decided in :mod:`ccdsl.catalog.convert`.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ccdsl.errors import CatalogError

_HINT = "pip install 'ccdsl[build]'   (the catalog build reads moto's and apache-libcloud's data files)"


@dataclass(frozen=True)
class Sources:
    """Everything the build reads, keyed the way the sources key it."""

    specs: dict[str, dict[str, Any]]  # instance type -> DescribeInstanceTypes entry
    offerings: dict[str, frozenset[str]]  # region -> instance types offered there
    prices: dict[str, dict[str, float]]  # instance type -> region -> USD/h (0.0 = unknown)
    processors: dict[str, str]  # instance type -> libcloud physicalProcessor string
    price_updated: int  # unix time of libcloud's pricing.json "updated"
    karpenter: dict[str, tuple[str, dict[str, float]]]  # region -> (generated at, instance type -> USD/h)
    karpenter_commit: str  # short upstream commit of the vendored tables
    files: dict[str, Path]  # logical name -> file read
    versions: dict[str, str]  # package -> version


def _package_dir(name: str, dist: str) -> Path:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # a blocked or broken installation
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise CatalogError(f"building the catalog needs the Python package '{dist}', which is not installed",
                           hint=_HINT)
    return Path(next(iter(spec.submodule_search_locations)))


def karpenter_dir() -> Path:
    from ccdsl._resources import catalog_dir

    return catalog_dir() / "sources" / "karpenter"


def source_paths() -> dict[str, Path]:
    """The source files (without reading them); raises :class:`CatalogError` when a package is missing."""
    from ccdsl.catalog.karpenter import FILES

    moto = _package_dir("moto", "moto") / "ec2" / "resources"
    libcloud = _package_dir("libcloud", "apache-libcloud")
    paths = {
        "instance_types": moto / "instance_types.json.gz",
        "offerings": moto / "instance_type_offerings" / "region",
        "pricing": libcloud / "data" / "pricing.json",
        "processors": libcloud / "compute" / "constants" / "ec2_instance_types.py",
        **{f"karpenter/{name}": karpenter_dir() / name for name in FILES},
    }
    for name, path in paths.items():
        if not path.exists():
            raise CatalogError(f"catalog source '{name}' not found at {path}",
                               hint="restore catalogs/sources/ from the repository" if name.startswith("karpenter")
                               else _HINT)
    return paths


def versions() -> dict[str, str]:
    return {dist: metadata.version(dist) for dist in ("moto", "apache-libcloud")}


def digest(path: Path) -> str:
    """sha256 of a file, or of a directory's files (sorted by name), for provenance."""
    h = hashlib.sha256()
    for f in sorted(path.glob("*")) if path.is_dir() else [path]:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()


def read_offerings(region_dir: Path) -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for f in sorted(region_dir.glob("*.json.gz")):
        entries = json.loads(gzip.decompress(f.read_bytes()))
        out[f.name[: -len(".json.gz")]] = frozenset(e["InstanceType"] for e in entries)
    return out


def read_processors(path: Path) -> dict[str, str]:
    """libcloud's ``INSTANCE_TYPES[t]["extra"]["physicalProcessor"]``, read as data (the module is a literal)."""
    import ast

    tree = ast.parse(path.read_text())
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(getattr(t, "id", None) == "INSTANCE_TYPES" for t in stmt.targets):
            table = ast.literal_eval(stmt.value)
            return {t: v["extra"]["physicalProcessor"] for t, v in table.items()
                    if v.get("extra", {}).get("physicalProcessor")}
    raise CatalogError(f"{path}: no INSTANCE_TYPES table found (libcloud changed its layout?)", hint=_HINT)


def read_sources() -> Sources:
    from ccdsl.catalog import karpenter

    paths = source_paths()
    commit, tables = karpenter.read(karpenter_dir())
    specs = json.loads(gzip.decompress(paths["instance_types"].read_bytes()))
    pricing = json.loads(paths["pricing"].read_text())
    try:
        prices = pricing["compute"]["ec2_linux"]
        updated = int(pricing["updated"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"{paths['pricing']}: no compute.ec2_linux prices or 'updated' date ({exc})") from None
    return Sources(specs=specs, offerings=read_offerings(paths["offerings"]), prices=prices,
                   processors=read_processors(paths["processors"]), price_updated=updated, karpenter=tables,
                   karpenter_commit=commit, files=paths, versions=versions())
