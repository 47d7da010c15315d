"""The ``ccdsl`` command: a thin shell over the library.

Each command group lives in ``ccdsl/commands/<group>.py`` and exposes ``register(subparsers)``; those modules must
be cheap to import (heavy imports go inside the command functions) so that ``ccdsl resolve`` starts fast.  This is
the one place where a :class:`~ccdsl.errors.CcdslError` becomes a message and an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Any

from ccdsl.errors import CcdslError, ContractError, input_kinds, printable

COMMAND_MODULES = ("ccdsl.commands.contract", "ccdsl.commands.catalog", "ccdsl.commands.cluster", "ccdsl.commands.aws")

# What every argument of these names means, for the commands that do not say it themselves.
ARGUMENT_HELP = {
    "file": "a contract file (.ccc): named contracts such as `c = @cluster(node_count => 4)`; see "
            "examples/tutorial.ccc",
    "files": "contract files (.ccc) to check",
    "handle": "a cluster's handle: the 15-letter name `ccdsl deploy` prints and `ccdsl clusters` lists",
    "json": "print JSON instead of text, for scripts",
}

# 2 is argparse's code for bad usage and the code of the errors about an input ccdsl cannot use (errors.input_kinds)
_KINDS = input_kinds()
INPUT_ERRORS = f"2 bad usage, or a {', '.join(_KINDS[:-1])} or {_KINDS[-1]} file or value ccdsl cannot use"
EXIT_CODES = f"exit codes: 0 success, 1 a ccdsl error (the message says what to do), {INPUT_ERRORS}, 130 interrupted"

# Per command: an example and its exit codes (the default above when a command has none here).
EPILOGS = {
    "check": "example:\n  ccdsl check examples/tutorial.ccc\n\n"
             "exit codes: 0 every file is fine (warnings allowed), 2 a file has errors (each shown with a caret) or "
             "bad usage, 130 interrupted",
    "resolve": "examples:\n  ccdsl resolve examples/tutorial.ccc\n"
               "  ccdsl resolve examples/tutorial.ccc --contract mw --json\n"
               "  ccdsl resolve examples/on_premise.ccc --catalog examples/lab_hosts.toml\n\n"
               "exit codes: 0 every contract resolved, 1 a contract is unsatisfiable (the conflicting clauses are "
               f"named), {INPUT_ERRORS} (the contract file, a --catalog), 130 interrupted",
    "select": "example:\n  ccdsl select examples/tutorial.ccc --contract my_second_cluster_contract\n\n"
              f"exit codes: 0 every contract has a match, 1 a contract has none, {INPUT_ERRORS}, 130 interrupted",
    "deploy": "examples:\n  ccdsl deploy examples/local.ccc\n"
              "  ccdsl deploy examples/tutorial.ccc --contract my_first_cluster_contract --region eu-central-1\n\n"
              "The handle is printed on stdout; progress goes to stderr.\n\n" + EXIT_CODES,
    "clusters": "example:\n  ccdsl clusters --all\n\n" + EXIT_CODES,
    "nodes": "example:\n  ccdsl nodes HANDLE\n\n" + EXIT_CODES,
    "run": "examples:\n  ccdsl run HANDLE -- python examples/rank_sum.py --n 10\n"
           "  ccdsl run HANDLE -- python -c 'import socket; print(socket.gethostname())'\n"
           "  ccdsl run HANDLE --np 2 -- python -m mypackage.main\n"
           "  ccdsl run HANDLE -- hostname\n\n"
           f"exit codes: the program's (as mpiexec reports it), 1 a ccdsl error, {INPUT_ERRORS}, 130 interrupted",
    "catalog list": "examples:\n  ccdsl catalog list --region us-east-1 --gpu --min-vcpus 8\n"
                    "  ccdsl catalog list --provider ssh --limit 0\n\n"
                    "exit codes: 0 success, 2 an unknown column, region, provider or family (close names are "
                    f"suggested), {INPUT_ERRORS.removeprefix('2 ')}, 130 interrupted",
    "catalog show": "example:\n  ccdsl catalog show g6e.12xlarge --region us-east-1\n\n" + EXIT_CODES,
    "catalog add": "example:\n  ccdsl catalog add examples/lab_hosts.toml\n\n"
                   f"exit codes: 0 added, 2 a malformed row (file:line: column: reason), "
                   f"{INPUT_ERRORS.removeprefix('2 ')}, 130 interrupted",
    "catalog remove": "example:\n  ccdsl catalog remove lab_hosts\n\n" + EXIT_CODES,
}


def _version() -> str:
    from ccdsl.version import __version__

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
    parser.epilog = ("examples:\n  ccdsl resolve examples/tutorial.ccc\n  ccdsl deploy examples/local.ccc\n"
                     "  ccdsl run HANDLE -- python examples/rank_sum.py\n\n"
                     "`ccdsl COMMAND --help` describes a command.\n" + EXIT_CODES)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    _complete_help(parser, "")
    return parser


def _complete_help(parser: argparse.ArgumentParser, path: str) -> None:
    """Give every subcommand a description line (its one-line help), help for its FILE/HANDLE/--json arguments,
    and an epilog with an example and exit codes: the same for command groups added later."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                name = f"{path} {choice.dest}".strip()
                p = action.choices[choice.dest]
                if p.description is None and choice.help:
                    p.description = choice.help[0].upper() + choice.help[1:] + "."
                if p.epilog is None:
                    p.epilog = EPILOGS.get(name, EXIT_CODES)
                p.formatter_class = argparse.RawDescriptionHelpFormatter
                _complete_help(p, name)
        elif action.help is None and action.dest in ARGUMENT_HELP:
            action.help = ARGUMENT_HELP[action.dest]


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


class Interrupted(KeyboardInterrupt):
    """The KeyboardInterrupt a Ctrl-C raises in the ``ccdsl`` process (every ``except KeyboardInterrupt`` catches it).

    Why not KeyboardInterrupt itself: CPython remembers a KeyboardInterrupt of exactly that class that leaves code
    run by ``exec()`` or ``eval()`` of a string (dataclasses and namedtuples build their methods so, and a deploy
    creates many while it imports boto3).  Under ``python -m ccdsl`` the interpreter then kills itself with SIGINT
    at exit, whatever caught the exception since: ``interrupted`` was printed, yet the exit status was -2, not 130
    (issue 19).  CPython compares the class exactly, so a subclass is never remembered."""


_sigints = 0


def _on_sigint(signum: int, frame: Any) -> None:
    """The first Ctrl-C interrupts whatever runs (a deploy then removes what it created); a second one interrupts
    that clean-up too (the record stays, ``failed``, for ``ccdsl terminate``), and any later one is ignored while
    the process reports and exits."""
    global _sigints
    _sigints += 1
    if _sigints >= 2:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Interrupted


def entrypoint() -> None:
    """What ``[project.scripts]`` and ``python -m ccdsl`` call: :func:`main`, with Ctrl-C at any moment giving
    exit status 130, never a death by SIGINT (which a shell shows as 130 too, but Python's ``subprocess`` as -2,
    and which may come with a traceback or with nothing printed at all).

    What a user who presses Ctrl-C can count on: the first one interrupts the command, which cleans up (a deploy
    terminates what it created) and exits 130; a second one during that clean-up abandons it, says what to
    terminate, and exits 130; any more, and any Ctrl-C once the command has returned (the interpreter is only
    exiting then: its result stands), are ignored.  At most two KeyboardInterrupts are ever raised, and the two
    nested ``except`` clauses below catch the second wherever the first was being handled."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # an ignored SIGINT (nohup, &) stays so
        signal.signal(signal.SIGINT, _on_sigint)
    try:
        try:
            code = main()
        except KeyboardInterrupt:  # one that landed outside main's handlers (parsing, reporting an error)
            print("interrupted", file=sys.stderr)
            code = 130
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command is over: what is left is exiting
    except KeyboardInterrupt:  # the second, while the first was being handled above
        code = 130
    sys.exit(code)
