"""The one exception hierarchy of ccdsl.

Every failure a user can cause or fix (a bad contract, an infeasible one, a malformed catalog row, a cloud that
says no) is raised as a subclass of :class:`CcdslError`.  The CLI turns these into a message and an exit code; it
never shows a Python traceback for them.  Errors are data first: a :class:`Diagnostic` keeps the position, so tests
assert on fields and the renderer draws the caret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

# How many diagnostics a report shows before it only counts the rest, and how much of a long source line.
MAX_SHOWN = 50
LINE_WINDOW = 120

# Control characters (C0 but tab and newline, DEL, C1) and the bidirectional overrides: a contract's text echoed in
# a message must not move the cursor, recolour the terminal or reorder what the user reads.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with terminal control characters shown as escapes (``\x1b``), so echoing it is harmless.
    Idempotent: the escapes it writes are plain characters."""
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", text)


@dataclass(frozen=True)
class Diagnostic:
    """One problem found in a source file, in the user's terms.

    ``line`` and ``column`` are 1-based; ``end_column`` (exclusive) lets the renderer underline a whole token.
    ``severity`` is ``"error"`` or ``"warning"``.
    """

    message: str
    path: str | None = None
    line: int | None = None
    column: int | None = None
    end_column: int | None = None
    hint: str | None = None
    severity: str = "error"

    def render(self, source: str | None = None, lines: list[str] | None = None) -> str:
        """Format as ``path:line:col: error: message`` plus the source line and a caret under the offending text.

        ``lines`` (``source.split("\\n")``) lets a caller rendering many diagnostics split the source once.  A
        long line is cut to a window around the column, and control characters are escaped (:func:`printable`)."""
        where = self.path or "<contract>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        out = [printable(f"{where}: {self.severity}: {self.message}")]
        if lines is None and source is not None and self.line is not None:
            lines = source.split("\n")  # as the parser counts lines (splitlines also splits at \r, \f, …)
        if lines is not None and self.line is not None and 1 <= self.line <= len(lines):
            out += _excerpt(lines[self.line - 1], self.column, self.end_column)
        if self.hint:
            out.append(printable(f"  hint: {self.hint}"))
        return "\n".join(out)


def _excerpt(line: str, column: int | None, end_column: int | None) -> list[str]:
    """The source line (a window of it when long, control characters escaped) and the caret line under it."""
    col = max(1, column or 1)
    end = max(col + 1, end_column or col + 1)
    line = line.rstrip("\r")
    start = max(0, min(col - 1 - LINE_WINDOW // 3, len(line) - LINE_WINDOW))
    stop = start + LINE_WINDOW
    raw = line[col - 1:min(end - 1, stop)]
    before = ("…" if start else "") + printable(line[start:col - 1].expandtabs(1))
    marked = printable(raw.expandtabs(1))
    after = printable(line[min(end - 1, stop):stop].expandtabs(1)) + ("…" if stop < len(line) else "")
    width = max(1, min(end - col + len(marked) - len(raw), LINE_WINDOW))
    return [f"    {before}{marked}{after}", "    " + " " * len(before) + "^" + "~" * (width - 1)]


def render_all(diagnostics: Iterable[Diagnostic], source: str | None = None, limit: int = MAX_SHOWN) -> str:
    """Every diagnostic up to ``limit`` errors (warnings among them kept), then how many more there are: a file with
    thousands of errors gives a readable report in time linear in its size."""
    lines = source.split("\n") if source is not None else None
    out, shown, hidden = [], 0, 0
    for d in diagnostics:
        if d.severity == "error":
            if shown >= limit:
                hidden += 1
                continue
            shown += 1
        elif shown >= limit:
            continue
        out.append(d.render(source, lines))
    if hidden:
        out.append(f"… and {hidden} more error{'s' * (hidden != 1)} (the first {limit} are shown)")
    return "\n".join(out)


class CcdslError(Exception):
    """Base of every error ccdsl raises on purpose.  ``exit_code`` is what the CLI returns for it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The text the CLI prints (without the leading ``error:``), control characters escaped."""
        return printable(self.message + (f"\n  hint: {self.hint}" if self.hint else ""))


class ContractError(CcdslError):
    """A contract file (or a contract built in code) is malformed.

    Carries every diagnostic found, not only the first.
    """

    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...], source: str | None = None) -> None:
        self.diagnostics = tuple(diagnostics)
        self.source = source
        errors = [d for d in self.diagnostics if d.severity == "error"]
        first = errors[0].message if errors else "invalid contract"
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(first + more)

    def render(self) -> str:
        return render_all(self.diagnostics, self.source)


class ContractSyntaxError(ContractError):
    """The text is not in the contract language's grammar."""


@dataclass(frozen=True)
class Conflict:
    """One clause of an unsatisfiable contract, as named by the unsat core."""

    parameter: str
    text: str
    line: int | None = None
    column: int | None = None
    role: str | None = None


class UnsatisfiableError(CcdslError):
    """No instance type (and node count) satisfies the contract.  ``conflict`` is a minimal set of clauses that
    cannot hold together; ``near_misses`` are human sentences about the closest candidates."""

    exit_code = 1

    def __init__(self, contract: str, conflict: tuple[Conflict, ...] = (), near_misses: tuple[str, ...] = (),
                 message: str | None = None) -> None:
        self.contract = contract
        self.conflict = tuple(conflict)
        self.near_misses = tuple(near_misses)
        super().__init__(message or f"contract '{contract}' is unsatisfiable")

    def render(self) -> str:
        lines = [self.message]
        if self.conflict:
            lines.append("  these clauses cannot hold together:")
            for c in self.conflict:
                where = f"line {c.line}, column {c.column}: " if c.line is not None else ""
                lines.append(f"    {where}{printable(c.text)}")
        if self.near_misses:
            lines.append("  nearest misses:")
            lines.extend(f"    {m}" for m in self.near_misses)
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return printable("\n".join(lines))


class SolverError(CcdslError):
    """Z3 failed on the problem written for a contract (a bug of ccdsl, not of the contract).  It names the
    contract; the solver it happened in is dropped, so the next resolve in the same process starts clean."""

    exit_code = 1

    def __init__(self, contract: str, detail: str) -> None:
        self.contract = contract
        super().__init__(f"contract '{contract}': the solver failed: {detail}",
                         hint="this is a bug of ccdsl, not of your contract: please report it with the contract "
                              "(other contracts still resolve)")


class CatalogError(CcdslError):
    """The catalog cannot be built, read or merged (missing source, bad user row, unmapped model, …).  Exit code 2,
    like every other input error: 1 means "unsatisfiable"."""

    exit_code = 2


class CatalogRowError(CatalogError):
    """A user catalog row is malformed.  ``path``, ``line`` (1-based) and ``column`` (the catalog column's name)
    say where, so the message can point at the cell to fix."""

    def __init__(self, message: str, *, path: str, line: int | None, column: str | None,
                 hint: str | None = None) -> None:
        self.path = path
        self.line = line
        self.column = column
        where = path + (f":{line}" if line is not None else "")
        col = f" column '{column}':" if column else ""
        super().__init__(f"{where}:{col} {message}", hint=hint)


class ConfigError(CcdslError):
    """``ccdsl.toml`` is malformed or names an unknown key."""

    exit_code = 2


class ProviderError(CcdslError):
    """A provider (EC2, SSH hosts, local) refused or failed an operation."""


class CapacityError(ProviderError):
    """The provider has no capacity for the requested type in a zone; the deployer may fail over."""


class DeployError(ProviderError):
    """A node came up but lacks what its deploy set up on it (e.g. ``fi_info -p efa`` does not list every EFA
    device the node was launched with).  The message names the node and what it printed."""


class HostKeyError(ProviderError):
    """A node presented a host key other than the one recorded for it (or an unknown one after deploy)."""


class StateError(CcdslError):
    """ccdsl's own state (the database in the data dir) cannot be used: damaged, locked, read-only, not a file.
    The message is one line that says what to do."""

    exit_code = 2


class ClusterError(CcdslError):
    """A cluster operation is not possible in the cluster's state (unknown handle, already terminated, …)."""


class ExecutionError(CcdslError):
    """A program run on a cluster failed (non-zero exit, unreachable node, MPI error)."""


class RankError(ExecutionError):
    """A function run under MPI raised on some rank.  ``rank``/``node`` say where; ``remote_traceback`` is the
    traceback text as the remote python printed it."""

    def __init__(self, message: str, *, rank: int, node: str, exc_type: str, remote_traceback: str) -> None:
        super().__init__(message)
        self.rank, self.node, self.exc_type, self.remote_traceback = rank, node, exc_type, remote_traceback

    def render(self) -> str:
        return self.message + "\n  remote traceback:\n" + "\n".join(
            "    " + line for line in self.remote_traceback.rstrip().splitlines())


class SetupError(ExecutionError):
    """The set-up command of a deploy or sync failed on a node.  ``node`` names it, ``exit_code`` is its exit."""

    def __init__(self, message: str, *, node: str, exit_code: int) -> None:
        super().__init__(message, hint="fix the command or the folder, then: ccdsl sync HANDLE --setup; or "
                                       "ccdsl terminate HANDLE")
        self.node, self.exit_code = node, exit_code


class MissingDependencyError(CcdslError):
    """An optional package (boto3, paramiko, mpi4py, …) is needed for this command but not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"this needs the Python package '{package}', which is not installed",
                         hint=f"pip install 'ccdsl[{extra}]'")


__all__ = [
    "CapacityError",
    "CatalogError",
    "CatalogRowError",
    "CcdslError",
    "ClusterError",
    "ConfigError",
    "Conflict",
    "ContractError",
    "ContractSyntaxError",
    "DeployError",
    "Diagnostic",
    "ExecutionError",
    "HostKeyError",
    "MissingDependencyError",
    "ProviderError",
    "RankError",
    "SetupError",
    "SolverError",
    "StateError",
    "UnsatisfiableError",
    "printable",
    "render_all",
]


def input_kinds() -> list[str]:
    """What the errors that exit 2 are about (``contract``, ``catalog``, ``config``, ``state``), read from the
    hierarchy itself so that the help texts (:mod:`ccdsl.cli`) cannot drift from the codes."""
    out: list[str] = []
    stack = list(CcdslError.__subclasses__())
    while stack:
        cls = stack.pop(0)
        if cls.exit_code == 2 and all(getattr(b, "exit_code", None) != 2 for b in cls.__bases__):
            out.append(cls.__name__.removesuffix("Error").lower())
        stack.extend(cls.__subclasses__())
    return out
