"""Region names the catalog does not know: a typo is a check error with a suggestion, not an unsatisfiable
contract (issue 19 B4).

Which regions exist is the catalog's to say (as for ``ccdsl catalog list --region``): the shipped rows, the user's
catalogs and ``--catalog`` files, so a user catalog's on-premise region (``lab``) is as known as ``us-east-1``.
The default region is checked when the user gave it (``--region``, ``region=``, ``$CCDSL_REGION``);
``cluster_locale`` values are checked in ``ccdsl check``, ``resolve``, ``select`` and ``deploy``, where the
catalog is the loaded one.  A contract resolved against a DataFrame of its own (a test, a hand-made catalog) is
not told which regions exist beyond that frame, so its locale clauses are left to the resolver.
"""

from __future__ import annotations

from collections.abc import Collection

from ccdsl.catalog import unknown_hint
from ccdsl.contract import Contract
from ccdsl.errors import CatalogError, ContractError, Diagnostic

# Where a default region came from, as the answers say it (see explain.REGION_ORIGINS).
ORIGINS = {"given": "the region asked for", "env": "from $CCDSL_REGION"}
USER_CATALOG = "A region of your own hosts comes from a user catalog or --catalog FILE."


def hint(value: str, known: Collection[str]) -> str:
    return unknown_hint(value, sorted(known), "regions")


def check_default(region: str, origin: str, known: Collection[str]) -> None:
    """Raise a :class:`CatalogError` (exit 2) when a default region the user gave is not in the catalog."""
    if origin in ORIGINS and region not in known:
        raise CatalogError(f"unknown region {region!r} ({ORIGINS[origin]}): no catalog row has it",
                           hint=hint(region, known))


def diagnostics(contract: Contract, known: Collection[str], path: str | None = None) -> list[Diagnostic]:
    """One error per ``cluster_locale`` value that no catalog row has, at its clause."""
    out = []
    for c in contract.clauses:
        if c.parameter != "cluster_locale":
            continue
        for v in c.values:
            if str(v) in known:
                continue
            span = c.span
            out.append(Diagnostic(f"unknown region '{v}' in {c.text}: no catalog row has it",
                                  path=(span.path if span is not None else None) or path or contract.path,
                                  line=span.line if span is not None else None,
                                  column=span.column if span is not None else None,
                                  end_column=span.end_column if span is not None and span.line == span.end_line
                                  else None,
                                  hint=f"{hint(str(v), known)} {USER_CATALOG}"))
    return out


def check_clauses(contract: Contract, known: Collection[str], source: str | None = None) -> None:
    """Raise a :class:`ContractError` (exit 2) naming every unknown ``cluster_locale`` value of ``contract``."""
    found = diagnostics(contract, known)
    if found:
        raise ContractError(found, source)
