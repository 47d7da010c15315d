"""Where catalogs live: the shipped files, the user catalog directory and the files in it.

This module sits below both the loader (which reads and merges these files) and the user-catalog code (which
validates and writes them), so neither has to import the other back.  A writer calls :func:`changed` after it
adds, replaces or removes a file; the loader's cache key includes :func:`generation`, so the next ``load()`` reads
the files again even when a replaced file has the same size and timestamp as the old one.
"""

from __future__ import annotations

from pathlib import Path

USER_SUFFIXES = (".csv", ".toml")

_generation = 0


def data_dir() -> Path:
    """ccdsl's user data directory (:func:`ccdsl.datadir.location`; creates nothing)."""
    from ccdsl import datadir

    return datadir.location()


def user_catalog_dir() -> Path:
    """The folder whose CSV and TOML files are the user's catalogs (``catalog add`` and ``catalog refresh`` write
    there)."""
    return data_dir() / "catalogs"


def shipped_files() -> list[Path]:
    """The shipped catalog's Parquet files, sorted (one per region)."""
    from ccdsl._resources import catalog_dir

    return sorted(catalog_dir().glob("*.parquet"))


def user_files() -> list[Path]:
    """The user catalogs, sorted by file name (the order in which their rows override earlier ones); hidden files
    (a writer's temporaries) are not catalogs."""
    d = user_catalog_dir()
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.suffix in USER_SUFFIXES and not p.name.startswith("."))


def changed() -> None:
    """Say that a catalog file was written or removed in this process."""
    global _generation
    _generation += 1


def generation() -> int:
    """How many times :func:`changed` was called in this process."""
    return _generation
