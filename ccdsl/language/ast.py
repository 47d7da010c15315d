"""The syntax tree of a ``.ccc`` file: one frozen dataclass per grammar rule, each with its source position.

The parser builds these from Lark's tree; :func:`ccdsl.cluster` builds the same nodes from Python keyword
arguments (with ``pos=None``), so both go through the one checker and give the same messages.  Values are kept as
written (``Number("16G")``): units and symbols are the checker's business, not the parser's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True)
class Pos:
    """1-based line/column of the first character, end exclusive; ``start``/``end`` are character offsets."""

    line: int
    column: int
    end_line: int
    end_column: int
    start: int
    end: int


@dataclass(frozen=True)
class Number:
    """A number as written, with its unit suffix: ``4``, ``10.5``, ``16G``, ``500M``."""

    text: str
    pos: Pos | None = None


@dataclass(frozen=True)
class String:
    """A double-quoted string, unescaped: ``"t3.xlarge"`` -> ``t3.xlarge``."""

    value: str
    pos: Pos | None = None


@dataclass(frozen=True)
class Symbol:
    """A bare identifier: ``Turing``, ``EC2Type_T3_xLarge``, ``us_east_1``, ``true``."""

    name: str
    pos: Pos | None = None


Atom: TypeAlias = Number | String | Symbol


@dataclass(frozen=True)
class Qualified:
    """``@name(args…)``; ``@unrestricted`` has no parentheses (``parens`` False)."""

    name: str
    args: tuple[Atom, ...]
    parens: bool
    pos: Pos | None = None
    name_pos: Pos | None = None


Value: TypeAlias = Qualified | Number | String | Symbol


@dataclass(frozen=True)
class Parameter:
    """``name`` or ``role.name`` (``manager.node_machinetype``)."""

    name: str
    role: str | None = None
    pos: Pos | None = None
    name_pos: Pos | None = None
    role_pos: Pos | None = None


@dataclass(frozen=True)
class ClauseNode:
    parameter: Parameter
    value: Value
    pos: Pos | None = None
    text: str = ""


@dataclass(frozen=True)
class ContractNode:
    name: str
    clauses: tuple[ClauseNode, ...]
    pos: Pos | None = None
    name_pos: Pos | None = None
    text: str = ""
