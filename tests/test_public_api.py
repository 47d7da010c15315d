"""The public API in ``ccdsl/__init__.py``: ``__all__``, the lazy names and the type checkers' view agree."""

from __future__ import annotations

import ast
from pathlib import Path

import ccdsl

INIT = Path(ccdsl.__file__)
ERRORS = {"CatalogError", "CcdslError", "ClusterError", "ConfigError", "ContractError", "ContractSyntaxError",
          "ExecutionError", "ProviderError", "UnsatisfiableError"}


def _type_checking_names() -> set[str]:
    """Names imported under ``if TYPE_CHECKING:``: what mypy and IDEs see for the lazily loaded names."""
    tree = ast.parse(INIT.read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in stmt.names)
    return names


def test_all_lists_every_lazy_name_and_error_once() -> None:
    assert len(ccdsl.__all__) == len(set(ccdsl.__all__))
    assert set(ccdsl.__all__) == {*ccdsl._LAZY, "catalog", *ERRORS}


def test_type_checkers_see_every_lazy_name() -> None:
    assert _type_checking_names() == {*ccdsl._LAZY, "catalog"}


def test_every_public_name_resolves() -> None:
    for name in ccdsl.__all__:
        assert getattr(ccdsl, name) is not None, name
