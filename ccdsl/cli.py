"""The ``ccdsl`` command: a thin shell over the library.

Each command group lives in ``ccdsl/commands/<group>.py`` and exposes ``register(subparsers)``; those modules must
be cheap to import (heavy imports go inside the command functions) so that ``ccdsl resolve`` starts fast.  This is
the one place where a :class:`~ccdsl.errors.CcdslError` becomes a message and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ccdsl.errors import CcdslError, ContractError, printable

COMMAND_MODULES = ("ccdsl.commands.contract", "ccdsl.commands.catalog", "ccdsl.commands.cluster")


def _version() -> str:
    from ccdsl import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccdsl", description="Contracts for compute clusters: resolve, deploy, run.")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for errors")
    parser.add_argument("--version", action="version", version=f"ccdsl {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command group not built yet must not break the others
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv``; return the exit code (tests call this directly)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ContractError as exc:
        if args.debug:
            raise
        print(printable(exc.render()), file=sys.stderr)  # no terminal escapes from a contract reach the terminal
        return exc.exit_code
    except CcdslError as exc:
        if args.debug or os.environ.get("CCDSL_DEBUG"):
            raise
        print(f"error: {printable(exc.render())}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


def entrypoint() -> None:
    """What ``[project.scripts]`` calls."""
    sys.exit(main())
