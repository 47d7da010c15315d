"""What ``ccdsl run HANDLE -- COMMAND…`` runs on every rank, read from the command line the user typed.

``python`` is read the way CPython reads its own command line, so that what works on this machine works on the
cluster: interpreter options first (``-u``, ``-O``, ``-W error``, ``-X dev``, …), then the program — a script
(shipped from here, so it need not exist on the nodes), ``-c CODE`` or ``-m MODULE`` (which must be importable
on the nodes) — and then the program's own arguments, untouched.  The nodes' interpreter runs it under mpi4py.

Anything else (``hostname``, ``./a.out``, ``sh -c '…'``, and ``python`` with options that do not run a
program, such as ``-V``) runs as it is, once per rank, with the MPI environment that ``mpiexec`` sets
(``PMI_RANK``, ``PMI_SIZE``, …), like SkyPilot's ``exec``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ccdsl.errors import ExecutionError

PYTHON = re.compile(r"python(\d+(\.\d+)*)?")  # python, python3, python3.11 (any directory)
NO_ARGUMENT = set("bBdEiIOPqsSuvx")  # CPython's one-letter options without a value (i: see _NOT_A_RUN)
WITH_ARGUMENT = set("WX")  # ... and with one (-Werror or -W error)
LONG_WITH_ARGUMENT = ("--check-hash-based-pycs",)
_NOT_A_RUN = set("hV?i")  # help, version, interactive: not a program every rank can run
USAGE = "ccdsl run HANDLE -- python PROG.py [ARGS] | python -c CODE | python -m MODULE | PROGRAM [ARGS]"


@dataclass(frozen=True)
class Program:
    """One command line: ``kind`` is ``script`` (target: a path here), ``code`` (-c), ``module`` (-m) or ``exec``
    (target: the program, run as is); ``flags`` are the interpreter's options for the Python kinds."""

    kind: str
    target: str
    args: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()

    def describe(self) -> str:
        return {"script": self.target, "code": "python -c …", "module": f"python -m {self.target}"}.get(
            self.kind, self.target)


def parse(argv: Sequence[str]) -> Program:
    """The :class:`Program` of ``argv`` (what follows ``--``); :class:`ExecutionError` when it cannot run."""
    argv = list(argv)
    if not argv:
        raise ExecutionError("nothing to run", hint=USAGE)
    if not PYTHON.fullmatch(os.path.basename(argv[0])):
        return Program("exec", argv[0], tuple(argv[1:]))
    flags: list[str] = []
    i = 1
    while i < len(argv):
        token = argv[i]
        if token == "--":
            i += 1
            break
        if token == "-":
            raise ExecutionError("python cannot read the program from standard input on every rank",
                                 hint="pass it with -c CODE, or as a file: " + USAGE)
        if not token.startswith("-"):
            break
        if token.startswith("--"):
            name = token.split("=", 1)[0]
            if name not in LONG_WITH_ARGUMENT:  # --help, --version, …: the interpreter answers them itself
                return Program("exec", argv[0], tuple(argv[1:]))
            take = "=" not in token
            flags += argv[i:i + 1 + take]
            i += 1 + take
            continue
        j = 1
        while j < len(token):
            letter = token[j]
            if letter in "cm":
                value, i = (token[j + 1:], i + 1) if j + 1 < len(token) else (_value(argv, i, letter), i + 2)
                kind = "code" if letter == "c" else "module"
                return Program(kind, value, tuple(argv[i:]), tuple(flags + ([token[:j]] if j > 1 else [])))
            if letter in _NOT_A_RUN:
                return Program("exec", argv[0], tuple(argv[1:]))
            if letter in WITH_ARGUMENT:
                if j + 1 < len(token):
                    flags.append(token)
                    i += 1
                else:
                    flags += [token, _value(argv, i, letter)]
                    i += 2
                break
            if letter not in NO_ARGUMENT:
                raise ExecutionError(f"python has no option -{letter} (in {token!r})", hint=USAGE)
            j += 1
        else:
            flags.append(token)
            i += 1
    if i >= len(argv):
        raise ExecutionError("python needs a program to run on every rank: a script, -c CODE or -m MODULE",
                             hint=USAGE)
    return Program("script", argv[i], tuple(argv[i + 1:]), tuple(flags))


def _value(argv: list[str], i: int, letter: str) -> str:
    if i + 1 >= len(argv):
        raise ExecutionError(f"python's option -{letter} needs a value", hint=USAGE)
    return argv[i + 1]
