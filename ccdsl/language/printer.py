"""Contract -> ``.ccc`` text that parses back to the same contract (the round trip the tests check).

Numbers are printed in the parameter's own unit without a suffix (a bare number means that unit), using
``repr`` for floats so they read back bit for bit; symbols print as their canonical names, machine types and
regions as strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from ccdsl.contract import Clause, Contract, Value
from ccdsl.parameters import PARAMETERS

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_contract(contract: Contract) -> str:
    """One contract in the parenthesized form, one clause per line."""
    items = [_clause(c) for c in contract.clauses]
    items += [f"{name} => {_atom(value, quote_names=True)}" for name, value in contract.config]
    if not items:
        return f"{contract.name} = @cluster()"
    indent = " " * (len(contract.name) + len(" = @cluster("))
    return f"{contract.name} = @cluster(" + (",\n" + indent).join(items) + ")"


def format_contracts(contracts: Mapping[str, Contract] | Iterable[Contract]) -> str:
    """Several contracts (a dict or an iterable of them), one after the other."""
    values = contracts.values() if isinstance(contracts, Mapping) else contracts
    return "\n\n".join(format_contract(c) for c in values) + "\n"


def _clause(clause: Clause) -> str:
    name = f"{clause.role}.{clause.parameter}" if clause.role else clause.parameter
    kind = PARAMETERS[clause.parameter].kind
    if clause.qualifier == "unrestricted":
        return f"{name} => @unrestricted"
    args = [_value(v, kind) for v in clause.values]
    if clause.qualifier == "just":
        return f"{name} => {args[0]}"
    return f"{name} => @{clause.qualifier}({', '.join(args)})"


def _value(value: Value, kind: str) -> str:
    """Sizes and bandwidths print with the ``G`` suffix when whole (``16G``), otherwise as bare numbers in the
    parameter's unit (``0.5``); both read back to the same float."""
    if kind in ("memory", "bandwidth") and isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return f"{int(value)}G"
    return _atom(value, quote_names=kind in ("machinetype", "region"))


def _atom(value: Value, quote_names: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if not quote_names and _IDENT.fullmatch(text) and text not in ("true", "false"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
