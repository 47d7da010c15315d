"""``ccdsl.cluster(**kw)``: the same contract as the text, built in Python.

Keyword arguments become the same AST nodes the parser makes (without positions) and go through the same checker,
so a mistake gets the same message in both worlds::

    ccdsl.cluster(node_count=4, accelerator_architecture="Turing", accelerator_memory=atleast("16G"))
    ccdsl.cluster("mw", cluster_type="ManagerWorkers", manager__node_machinetype="t3.xlarge",
                  worker={"accelerator_count": 8})
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ccdsl.contract import ROLES, Contract
from ccdsl.errors import ContractError, Diagnostic
from ccdsl.language import ast
from ccdsl.language.checker import check_contracts
from ccdsl.parameters import PARAMETERS, canonical

_NUMBER_TEXT = re.compile(r"[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?(%|[A-Za-z]*)")
_NUMERIC = ("count", "memory", "bandwidth", "price", "fraction")


@dataclass(frozen=True)
class Q:
    """A qualified value built in code: ``atleast("16G")`` is ``@atleast(16G)``."""

    qualifier: str
    values: tuple[Any, ...] = ()


def just(value: Any) -> Q:
    return Q("just", (value,))


def atleast(value: Any) -> Q:
    return Q("atleast", (value,))


def atmost(value: Any) -> Q:
    return Q("atmost", (value,))


def between(low: Any, high: Any) -> Q:
    return Q("between", (low, high))


def oneof(*values: Any) -> Q:
    return Q("oneof", tuple(values))


def not_(*values: Any) -> Q:
    return Q("not", tuple(values))


def unrestricted() -> Q:
    return Q("unrestricted", ())


def cluster(_name: str = "contract", /, **kwargs: Any) -> Contract:
    """Build a checked contract from keyword arguments.

    Args:
        _name: the contract's name (positional or ``name=``; default ``"contract"``).
        kwargs: ``parameter=value``; a value is a number, a string (``"16G"``, ``"Turing"``, ``"t3.xlarge"``) or a
            qualifier (``atleast(16)``).  Scope to a role with ``manager__node_machinetype=…`` or
            ``manager={"node_machinetype": …}``.

    Raises:
        ContractError: with the same messages as for text (no line or column).
    """
    if "name" in kwargs and "name" not in PARAMETERS:  # cluster(name="x", ...) reads naturally too
        _name = kwargs.pop("name")
    problems: list[Diagnostic] = []
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(_name)):
        problems.append(Diagnostic(f"contract name '{_name}' must be a name (letters, digits, '_')"))
    clauses = []
    for role, name, value in _flatten(kwargs, problems):
        atom_value = _value(name, value, problems)
        if atom_value is not None:
            clauses.append(ast.ClauseNode(ast.Parameter(name, role), atom_value))
    contracts, diagnostics = check_contracts([ast.ContractNode(str(_name), tuple(clauses))])
    problems.extend(diagnostics)
    if any(d.severity == "error" for d in problems):
        raise ContractError(problems)
    return contracts[str(_name)]


def _flatten(kwargs: dict[str, Any], problems: list[Diagnostic]) -> Iterator[tuple[str | None, str, Any]]:
    for key, value in kwargs.items():
        if key in ROLES:
            if not isinstance(value, dict):
                problems.append(Diagnostic(f"{key}= takes a dict of parameters, not {type(value).__name__}"))
                continue
            for name, v in value.items():
                yield key, str(name), v
        elif "__" in key:
            role, name = key.split("__", 1)
            yield role, name, value
        else:
            yield None, key, value


def _value(name: str, value: Any, problems: list[Diagnostic]) -> ast.Value | None:
    canon = canonical(name)
    kind = PARAMETERS[canon].kind if canon else None
    if isinstance(value, Q):
        found = [_atom(name, kind, v, problems) for v in value.values]
        atoms = tuple(a for a in found if a is not None)
        if len(atoms) < len(found):
            return None
        return ast.Qualified(value.qualifier, atoms, parens=bool(atoms))
    if value is unrestricted:
        return ast.Qualified("unrestricted", (), parens=False)
    return _atom(name, kind, value, problems)


def _atom(name: str, kind: str | None, value: Any, problems: list[Diagnostic]) -> ast.Atom | None:
    if isinstance(value, bool):
        return ast.Symbol("true" if value else "false")
    if isinstance(value, int):
        return ast.Number(str(value) if abs(value) < 10**300 else "1e999")
    if isinstance(value, float):
        return ast.Number(repr(value))
    if isinstance(value, str):
        if kind in _NUMERIC and _NUMBER_TEXT.fullmatch(value.strip()):
            return ast.Number(value.strip())
        if kind not in (None, "config") and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            return ast.Symbol(value)
        return ast.String(value)
    problems.append(Diagnostic(f"{name}: a value must be a number, a string or a qualifier such as atleast(…), "
                               f"not {type(value).__name__}"))
    return None
