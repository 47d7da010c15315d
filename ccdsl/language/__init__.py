"""The contract language: ``.ccc`` text (or keyword arguments) -> checked :class:`~ccdsl.contract.Contract` values.

Pipeline: ``text -> parser.parse_ast (Lark, grammar/ccdsl.lark) -> ast nodes -> checker.check_contracts ->
Contract``.  :func:`check` returns every diagnostic (errors and warnings) and never raises for a bad contract;
:func:`parse` and :func:`load` raise them all together as one :class:`~ccdsl.errors.ContractError`.

    >>> from ccdsl.language import parse
    >>> c = parse("c = @cluster(node_count => 4, node_memory_size => @atleast(16G))")["c"]
    >>> c.clause("node_memory_size").values
    (16.0,)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ccdsl.contract import Contract
from ccdsl.errors import ContractError, ContractSyntaxError, Diagnostic
from ccdsl.language.builder import Q, atleast, atmost, between, cluster, just, not_, oneof, unrestricted
from ccdsl.language.checker import check_contracts
from ccdsl.language.parser import parse_ast
from ccdsl.language.printer import format_contract, format_contracts

# Contracts are a few lines; a larger input is refused before it is read whole, so that a stray binary, a log file
# or /dev/zero ends in a clear error, not in minutes of work or a MemoryError.  $CCDSL_MAX_CONTRACT_BYTES raises it.
MAX_BYTES = 1 << 20
LIMIT_VARIABLE = "CCDSL_MAX_CONTRACT_BYTES"


def max_bytes() -> int:
    """The input size limit: ``$CCDSL_MAX_CONTRACT_BYTES`` if set (a whole number), else :data:`MAX_BYTES`."""
    value = os.environ.get(LIMIT_VARIABLE, "").strip()
    if not value:
        return MAX_BYTES
    if not value.isascii() or not value.isdigit():
        raise ContractError([Diagnostic(f"${LIMIT_VARIABLE} = {value!r} is not a whole number of bytes")])
    return int(value)


def _too_large(size: str, path: str | None) -> Diagnostic:
    return Diagnostic(f"the contract is larger than the limit of {max_bytes()} bytes ({size})", path=path,
                      hint=f"contracts are small; if this one really is this large, set {LIMIT_VARIABLE} to a "
                           "larger number of bytes")


def without_positions(contract: Contract) -> Contract:
    """``contract`` without spans and path: what equality between text and code (``ccdsl.cluster``) compares."""
    clauses = tuple(dataclasses.replace(c, span=None) for c in contract.clauses)
    return dataclasses.replace(contract, clauses=clauses, span=None, path=None, config_spans=())


def check(text: str, path: str | None = None) -> tuple[dict[str, Contract], list[Diagnostic]]:
    """Parse and check ``text``: the contracts without errors (in file order) and every diagnostic."""
    contracts, diagnostics, _ = _check(text, path)
    return contracts, diagnostics


def _check(text: str, path: str | None) -> tuple[dict[str, Contract], list[Diagnostic], bool]:
    if len(text) > max_bytes():
        return {}, [_too_large(f"{len(text)} {'bytes' if isinstance(text, bytes) else 'characters'}", path)], False
    if isinstance(text, bytes):
        text, problem = _decode(text, path)
        if problem is not None:
            return {}, [problem], False
    path = str(path) if path is not None else None
    text = text.replace("\r\n", "\n")  # CRLF files: same lines and columns, clean span texts
    nodes, syntax = parse_ast(text, path)
    contracts, semantic = check_contracts(nodes, path, text)
    diagnostics = sorted(syntax + semantic, key=lambda d: (d.line or 0, d.column or 0))
    return contracts, diagnostics, bool(syntax)


def parse(text: str, path: str | None = None) -> dict[str, Contract]:
    """The contracts of ``text`` by name, in file order.

    Raises:
        ContractSyntaxError: the text is not in the grammar (with every syntax error found).
        ContractError: a contract is malformed (unknown parameter, bad value, …), with every diagnostic.
    """
    contracts, diagnostics, syntax = _check(text, path)
    if any(d.severity == "error" for d in diagnostics):
        source = text.replace("\r\n", "\n") if isinstance(text, str) else None
        raise (ContractSyntaxError if syntax else ContractError)(diagnostics, source)
    return contracts


def load(path: str | Path) -> dict[str, Contract]:
    """The contracts of a ``.ccc`` file.  An unreadable, binary or non-UTF-8 file is a :class:`ContractError`."""
    return parse(read(path), str(path))


def read(path: str | Path) -> str:
    """The text of a contract file, or a :class:`ContractError` saying why it cannot be read."""
    limit = max_bytes()
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)  # never more: /dev/zero or a huge file end here
    except OSError as e:
        raise ContractError([Diagnostic(f"cannot read {path}: {e.strerror or e}", path=str(path))]) from None
    if len(data) > limit:
        raise ContractError([_too_large("or more: it goes on past the limit", str(path))])
    text, problem = _decode(data, str(path))
    if problem is not None:
        raise ContractError([problem])
    return text


def _decode(data: bytes, path: str | None) -> tuple[str, Diagnostic | None]:
    if b"\x00" in data:
        return "", Diagnostic("this is a binary file, not a contract (it contains NUL bytes)", path=path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        before = data[: e.start]
        line = before.count(b"\n") + 1
        column = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        return "", Diagnostic(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x})", path=path, line=line,
                              column=column, end_column=column + 1)
    return text.removeprefix("\ufeff"), None


__all__ = ["Q", "atleast", "atmost", "between", "check", "cluster", "format_contract", "format_contracts", "just",
           "load", "not_", "oneof", "parse", "read", "unrestricted", "without_positions"]
