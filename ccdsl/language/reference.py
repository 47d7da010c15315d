"""The language reference generated from the one parameter table: ``python -m ccdsl.language.reference``.

Printed as Markdown so the README's table and the "unknown parameter" hint never disagree with
:mod:`ccdsl.parameters`.
"""

from __future__ import annotations

from ccdsl.parameters import ALIASES, PARAMETERS

_UNITS = {"memory": "GiB (K M G T P binary: 16G = 16 GiB)", "bandwidth": "Gbit/s (K M G T P bit/s: 25G = 25 Gbit/s)",
          "price": "USD/h", "count": "whole number", "fraction": "rate: 10% = 0.10 (0%..100%)",
          "number": "number (no unit)"}
_SCOPES = {"cluster": "cluster shape", "node": "per node", "total": "sum over workers", "config": "carried to deploy"}


def parameter_table() -> str:
    rows = ["| parameter | scope | value | qualifiers | notes |", "|---|---|---|---|---|"]
    for p in PARAMETERS.values():
        value = _UNITS.get(p.kind) or {"symbol": f"symbol ({p.domain})", "machinetype": "instance type",
                                       "region": "region", "config": "number, string or symbol",
                                       "flag": "true or false"}[p.kind]
        if p.kind == "count" and p.unit:
            value = f"whole number ({p.unit})"
        if p.name == "spot" or p.kind == "flag":
            value = "true or false"
        quals = " ".join("@" + q for q in p.qualifiers)
        rows.append(f"| `{p.name}` | {_SCOPES[p.scope]} | {value} | {quals} | {p.doc} |")
    aliases = ", ".join(f"`{a}` → `{c}`" for a, c in ALIASES.items())
    return "\n".join(rows) + f"\n\nOlder spellings (accepted with a warning): {aliases}.\n"


if __name__ == "__main__":
    print(parameter_table())
