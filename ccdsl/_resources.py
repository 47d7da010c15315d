"""Where the grammar and the shipped catalog live: the source tree (editable installs) or the wheel's ``_data``."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent


def _first(*candidates: Path) -> Path:
    for c in candidates:
        if c.exists():
            return c
    return candidates[0]


def grammar_path() -> Path:
    """``grammar/ccdsl.lark`` in a checkout, ``ccdsl/_data/ccdsl.lark`` in an installed wheel."""
    return _first(_PKG.parent / "grammar" / "ccdsl.lark", _PKG / "_data" / "ccdsl.lark")


def catalog_dir() -> Path:
    """``catalogs/`` in a checkout, ``ccdsl/_data/catalogs`` in an installed wheel."""
    return _first(_PKG.parent / "catalogs", _PKG / "_data" / "catalogs")
