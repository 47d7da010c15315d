"""``ccdsl check``, ``ccdsl resolve`` and ``ccdsl select``: contract files in, answers out.

Cheap to import (everything heavy is imported inside the commands): ``ccdsl resolve`` loads the language, the
resolver, numpy, pandas (for the catalog) and Z3 — never boto3, paramiko or mpi4py.

Output contract:

- ``resolve --json`` prints one JSON object per contract with ``contract, provider, region, instance_type,
  node_count, price_per_node_hour, price_per_hour, price_source, price_date, market, accelerators, alternatives``
  (``accelerators``: ``{"model", "count", "memory_gib"}`` per node, plus ``"share": "1/8"`` for a share of one GPU;
  null without) (and ``manager`` for
  ManagerWorkers; the manager and every alternative carry the same price fields); an unknown price is ``null``; an
  infeasible contract is ``{"contract", "error": "unsatisfiable", "conflict": [{"parameter", "line", "column",
  "text"}, …], "near_misses": […]}``.  Every choice has ``market`` ("on-demand" or "spot"); a spot one (``--spot``,
  ``spot => true``) also ``spot_zone``, ``spot_zones``, ``on_demand_price_per_node_hour`` and ``saving_percent``,
  and its ``price_*`` fields are the spot price's.  With ``--contract NAME`` the object itself is printed,
  otherwise a list.
- Exit codes: 0 every contract resolved; 1 some contract is unsatisfiable; 2 the file is malformed (diagnostics
  with carets on stderr, rendered by :mod:`ccdsl.cli`).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def count(text: str) -> int:
    """argparse type for a count: a whole number >= 0 (argparse turns the ValueError into a usage error)."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="check contract files and report every problem")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--catalog", metavar="PATH", action="append",
                   help="a catalog file (CSV/TOML) whose regions cluster_locale may name, beside the shipped and "
                        "user catalogs; repeatable")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("resolve", help="the cost-optimal instance type and node count of each contract")
    _common(p)
    p.add_argument("--top", type=count, default=5, metavar="K", help="alternatives to list (default 5)")
    p.add_argument("--smt", action="store_true", help="also print the SMT-LIB problem Z3 minimized")
    p.set_defaults(func=cmd_resolve)

    p = sub.add_parser("select", help="every instance type (and region) that satisfies each contract")
    _common(p)
    p.set_defaults(func=cmd_select)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE")
    p.add_argument("--contract", metavar="NAME", help="only this contract of the file")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--region", metavar="R", help="default region (else $CCDSL_REGION, else us-east-1)")
    where.add_argument("--any-region", action="store_true", help="let every region compete")
    p.add_argument("--catalog", metavar="PATH", action="append",
                   help="a catalog file (CSV/TOML) merged on top of the shipped and user catalogs; repeatable")
    p.add_argument("--json", action="store_true",
                   help="print JSON: a list with one object per contract (with --contract, the object itself)")
    p.add_argument("--spot", action="store_true", default=None,
                   help="put every node on spot, priced at spot prices (else the contract's spot => true decides)")


# ------------------------------------------------------------------------------------------------ check

def cmd_check(args: argparse.Namespace) -> int:
    from ccdsl.errors import render_all
    from ccdsl.language import check, read
    from ccdsl.security import check_all

    status = 0
    for path in args.files:
        text = read(path)
        contracts, diagnostics = check(text, path)
        # what ccdsl.toml does not let a contract set
        diagnostics = diagnostics + check_all(contracts.values(), _config)
        diagnostics = diagnostics + locale_errors(contracts.values(), _catalog_files(args.catalog), path)
        if diagnostics:
            print(render_all(diagnostics, text), file=sys.stderr)
        errors = sum(d.severity == "error" for d in diagnostics)
        warnings = len(diagnostics) - errors
        if errors:
            status = 2
            print(f"{path}: {errors} error{'s' * (errors != 1)}", file=sys.stderr)
        else:
            names = ", ".join(contracts) or "no contracts"
            tail = f", {warnings} warning{'s' * (warnings != 1)}" if warnings else ""
            print(f"{path}: ok ({len(contracts)} contract{'s' * (len(contracts) != 1)}: {names}{tail})")
    return status


def _config() -> Any:
    """``ccdsl.toml``, read only when a contract sets a configuration parameter (the executor's config module is
    imported then, not at start-up)."""
    from ccdsl.executor import config as cfg

    return cfg.load()


def locale_errors(contracts: Any, catalog: Any, path: str) -> list[Any]:
    """The ``cluster_locale`` values no region of the catalog has, as diagnostics with a suggestion (a typo is an
    error, exit 2; see :mod:`ccdsl.resolver.regions`).  The catalog is read only when a clause names a region."""
    if not any(c.parameter == "cluster_locale" for contract in contracts for c in contract.clauses):
        return []
    from ccdsl.resolver import known_regions, regions

    known = known_regions(catalog)
    return [d for contract in contracts for d in regions.diagnostics(contract, known, path)]


def _catalog_files(paths: list[str] | None) -> Any:
    """The catalog with ``--catalog`` files merged in; None (the loaded one) without."""
    if not paths:
        return None
    from ccdsl.catalog import load
    from ccdsl.resolver.view import VIEW_COLUMNS

    return load(paths=paths, columns=VIEW_COLUMNS)


# ------------------------------------------------------------------------------------------------ resolve

def _contracts(args: argparse.Namespace) -> dict[str, Any]:
    from ccdsl.errors import ContractError, Diagnostic
    from ccdsl.language import load

    contracts = load(args.file)
    from ccdsl.language import read
    from ccdsl.security import check_all

    refused = check_all(contracts.values(), _config)
    if refused:
        raise ContractError(refused, read(args.file))
    for c in contracts.values():
        for w in c.warnings:
            print(f"{args.file}: warning: {w}", file=sys.stderr)
    if args.contract is not None:
        if args.contract not in contracts:
            import difflib

            close = difflib.get_close_matches(args.contract, list(contracts), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"the file defines: {', '.join(contracts) or 'none'}"
            raise ContractError([Diagnostic(f"no contract named '{args.contract}'", path=args.file, hint=hint)])
        return {args.contract: contracts[args.contract]}
    return contracts


def _catalog(args: argparse.Namespace, contracts: dict[str, Any]) -> Any:
    if not args.catalog:
        return None
    from ccdsl.catalog import load
    from ccdsl.resolver import market
    from ccdsl.resolver.view import VIEW_COLUMNS

    spot = any(market.spot_roles(c, args.spot) for c in contracts.values())  # the spot columns only when read
    return load(paths=args.catalog, columns=VIEW_COLUMNS + (market.SPOT_COLUMNS if spot else ()))


def check_locales(contracts: Any, catalog: Any, path: str) -> None:
    """``resolve``, ``select``: raise when a ``cluster_locale`` value names no region of the catalog."""
    from ccdsl.errors import ContractError
    from ccdsl.language import read

    found = locale_errors(contracts, catalog, path)
    if found:
        raise ContractError(found, read(path))


def cmd_resolve(args: argparse.Namespace) -> int:
    from ccdsl.errors import UnsatisfiableError, printable
    from ccdsl.resolver import resolve

    contracts = _contracts(args)
    catalog = _catalog(args, contracts)
    check_locales(contracts.values(), catalog, args.file)
    status = 0
    objects = []
    for name, contract in contracts.items():
        try:
            r = resolve(contract, catalog, region=args.region, any_region=args.any_region, top=args.top,
                        spot=args.spot)
        except UnsatisfiableError as e:
            status = 1
            objects.append(unsat_object(e))
            if not args.json:
                print(f"error: {e.render()}", file=sys.stderr)
            continue
        objects.append(r.to_dict())
        if not args.json:
            print(printable(r.render()))  # clause texts are echoed: no terminal escapes
        if args.smt:
            print(f"; {name}: the problem Z3 minimized (cost) over the Pareto classes\n{r.problem}\n",
                  file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(objects[0] if args.contract is not None else objects, indent=2, ensure_ascii=False))
    return status


def unsat_object(e: Any) -> dict[str, Any]:
    return {"contract": e.contract, "error": "unsatisfiable", "message": e.message,
            "conflict": [{"parameter": c.parameter, "line": c.line, "column": c.column, "text": c.text}
                         for c in e.conflict],
            "near_misses": list(e.near_misses), **({"hint": e.hint} if e.hint else {})}


# ------------------------------------------------------------------------------------------------ select

def cmd_select(args: argparse.Namespace) -> int:
    from ccdsl.resolution import price_cell, quantity, table
    from ccdsl.resolver import select

    contracts = _contracts(args)
    catalog = _catalog(args, contracts)
    check_locales(contracts.values(), catalog, args.file)
    status = 0
    objects: list[dict[str, Any]] = []
    for name, contract in contracts.items():
        choices = select(contract, catalog, region=args.region, any_region=args.any_region, spot=args.spot)
        if not choices:
            status = 1
        if args.json:
            objects.append({"contract": name, "matches": [c.to_dict() for c in choices]})
            continue
        print(f"{name}: {len(choices)} match{'es' * (len(choices) != 1)}"
              + (" (workers)" if contract.cluster_type == "ManagerWorkers" else ""))
        if choices:
            rows = [[c.instance_type, c.provider, c.region, str(c.node_count), price_cell(c.price_per_node_hour),
                     price_cell(c.cluster_price_per_hour), str(c.vcpus), quantity(c.memory_gib),
                     _accelerators(c)]
                    for c in choices]
            header = ["instance_type", "provider", "region", "nodes", "$/node/h", "$/h (cluster)", "vcpus",
                      "mem GiB", "accelerators"]
            if any(c.spot for c in choices):  # spot workers: the market and zone (on-demand output unchanged)
                header[4:4] = ["market", "zone"]
                for row, c in zip(rows, choices):
                    row[4:4] = [c.market, c.spot_zone or "-"]
            print(table(header, rows, indent=2))
        print()
    if args.json:
        print(json.dumps(objects[0] if args.contract is not None else objects, indent=2, ensure_ascii=False))
    return status


def _accelerators(c: Any) -> str:
    """``8 × L4``, ``1/8 × L4`` (a share of one), or ``-``."""
    from ccdsl.catalog.shares import count_text

    return f"{count_text(c.accelerator_count)} × {c.accelerator_model}" if c.accelerator_count else "-"
