"""Text -> :mod:`ccdsl.language.ast` nodes, with syntax errors as positioned diagnostics.

The grammar (``grammar/ccdsl.lark``) is the spec; this module builds the LALR parser from it once per process
(cached on disk, so a cold ``ccdsl resolve`` skips grammar analysis), turns Lark's tree into typed nodes, and turns
Lark's ``UnexpectedInput`` into messages in the user's terms.  After a syntax error it re-parses each contract on its
own (a contract starts at a line ``name = @cluster``), so one bad contract does not hide the errors of the others
and the good contracts still reach the checker.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken
from lark.lark import PostLex
from lark.tree import Meta

from ccdsl._resources import grammar_path
from ccdsl.errors import Diagnostic
from ccdsl.language import ast

# Labelled examples of wrong text: Lark's ``match_examples`` finds the one whose parser state matches an error.
# Same idea as GRAMMAR_ERRORS in lark/load_grammar.py.
CONTRACT_SYNTAX_ERRORS: list[tuple[str, list[str]]] = [
    ("expected '=>' after the parameter name", [
        "c = @cluster(node_count 4)", "c = @cluster(node_count = 4)", "c = @cluster(node_count)",
        "c = @cluster(manager.node_count 4)", "c = @cluster node_count 4", "c = @cluster node_count",
        "c = @cluster node_count\n", "c = @cluster(node_count: 4)", "c = @cluster node_count = 4",
        "c = @cluster(a => 1, node_count 4)", "c = @cluster(a.b)", "c = @cluster a.b 4",
    ]),
    ("expected a value after '=>'", [
        "c = @cluster(node_count => )", "c = @cluster(node_count => , a => 1)", "c = @cluster node_count =>",
        "c = @cluster node_count =>\n", "c = @cluster(node_count =>", "c = @cluster(a => =>)",
        "c = @cluster a => =>", "c = @cluster(a => ()", "c = @cluster a => (",
    ]),
    ("expected ',' or ')' after a clause", [
        "c = @cluster(node_count => 4 node_machinetype => x)", "c = @cluster(a => 4 b)",
        "c = @cluster(a => @just(1) b => 2)", "c = @cluster(a => x y)", "c = @cluster(a => \"x\" y)",
        "c = @cluster(a => 1", "c = @cluster(a => x", "c = @cluster(a => @unrestricted", "c = @cluster(a => \"s\"",
        "c = @cluster(a => 1 =>", "c = @cluster(a => x =>", "c = @cluster(a => 1 (", "c = @cluster(a => @just(1)(",
    ]),
    ("expected a parameter name", [
        "c = @cluster(=> 4)", "c = @cluster(, a => 1)", "c = @cluster(a => 1,, b => 2)", "c = @cluster(4)",
        "c = @cluster(\"a\" => 1)", "c = @cluster(@just(1))", "c = @cluster(a => 1, 4)", "c = @cluster(",
        "c = @cluster(,", "c = @cluster(a.", "c = @cluster(a.4", "c = @cluster a. => 1", "c = @cluster(a => 1,",
    ]),
    ("expected a parameter name or the end of the line", [
        "c = @cluster 4", "c = @cluster a => 1 4", "c = @cluster a => 1 \"s\"", "c = @cluster a => 1 =>",
        "c = @cluster a => 1 )", "c = @cluster a => 1, ,", "c = @cluster a => 1 @just", "c = @cluster )",
        "c = @cluster a => x (", "c = @cluster ,",
    ]),
    ("qualifier arguments must be numbers, strings or symbols, separated by ','", [
        "c = @cluster(a => @between(1 2))", "c = @cluster(a => @just(@atleast(1)))",
        "c = @cluster(a => @oneof(a, ))", "c = @cluster(a => @just(", "c = @cluster(a => @just(1",
        "c = @cluster a => @just(1",
        "c = @cluster(a => @just(,))", "c = @cluster(a => @just(1,", "c = @cluster(a => @just(x =>",
        "c = @cluster(a => @just(x y)",
    ]),
    ("expected '@cluster' after '='", [
        "c = cluster(a => 1)", "c = (a => 1)", "c = ", "c =\n", "c = 4", "c = @just(1)", "c = \"x\"", "c = = @cluster",
        "c = @clusters(a => 1)",
    ]),
    ("expected '=' after the contract name", [
        "c @cluster(a => 1)", "c", "c\n", "c => @cluster", "c.d = @cluster", "c 4", "c (", "c = @cluster\nd",
        "c = @cluster(a => 1)\nd\n",
    ]),
    ("a contract starts with its name: name = @cluster(...)", [
        "= @cluster", "@cluster(a => 1)", "4", "\"c\" = @cluster", "(", ")", ",", "=>", "@just", "\n=",
        "c = @cluster\n=", "c = @cluster\n@cluster",
    ]),
    ("each contract starts on a new line", [
        "c = @cluster a => 1 d = @cluster", "c = @cluster(a => 1) d = @cluster", "c = @cluster() d",
        "c = @cluster(a => 1) 4", "c = @cluster(a => 1) (", "c = @cluster(a => 1),", "c = @cluster(a => 1) a => 1",
        "c = @cluster(a => 1))", "c = @cluster(a => 1) =>",
    ]),
]

# How the checker and the messages name grammar terminals.
_TERMINAL_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a string", "QUALIFIER": "a qualifier such as @atleast",
    "_NL": "end of line", "$END": "end of file",
}

_CONTRACT_START = re.compile(r"^[ \t\f]*[A-Za-z_][A-Za-z0-9_]*[ \t\f]*=[ \t\f]*@cluster\b", re.MULTILINE)


class _ParenNewlines(PostLex):
    """Drop line ends inside parentheses: the parenthesized form may span lines, the bare one ends at its line."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        for token in stream:
            if token.type == "LPAR":
                depth += 1
            elif token.type == "RPAR":
                depth = max(0, depth - 1)
            elif token.type == "_NL" and depth:
                continue
            yield token


_PARSER: Lark | None = None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ccdsl"


def _cache_file(grammar: str) -> Path:
    import lark

    key = hashlib.sha256(f"{grammar}\0{lark.__version__}\0{sys.version_info[:2]}".encode()).hexdigest()[:20]
    return _cache_dir() / f"grammar-{key}.lark.pickle"


def lark_parser() -> Lark:
    """The process-wide LALR parser.  Loaded from the user cache when the grammar has not changed; a cache that
    cannot be read or written (read-only home, concurrent writers) only costs the ~15 ms of building it."""
    global _PARSER
    if _PARSER is None:
        grammar = grammar_path().read_text(encoding="utf-8")
        cache = _cache_file(grammar)
        parser = None
        try:
            with open(cache, "rb") as f:  # Lark.load() takes no options; _load is what Lark's own cache=True uses
                parser = Lark.__new__(Lark)._load(f, postlex=_ParenNewlines(), propagate_positions=True)
        except Exception:  # missing, stale or corrupt cache: rebuild below
            parser = None
        if parser is None:
            parser = Lark(grammar, parser="lalr", lexer="contextual", propagate_positions=True,
                          postlex=_ParenNewlines(), maybe_placeholders=True)
            _save(parser, cache)
        _PARSER = parser
    return _PARSER


def _save(parser: Lark, cache: Path) -> None:
    """Write the cache atomically (temp file + rename); silently skip when the directory is not writable."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache.parent, prefix=".grammar-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                parser.save(f, exclude_options=("postlex",))
            os.replace(tmp, cache)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except Exception:  # the cache is an optimization only
        pass


def _unescape(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def _set(position: int | None) -> int:
    """Lark types token positions as optional (a token made by hand has none); the parser sets them all."""
    if position is None:
        raise AssertionError("a parsed token without a position")
    return position


class _ToAst(Transformer[Token, list[ast.ContractNode]]):
    """Lark tree -> ast nodes; one method per grammar rule."""

    def __init__(self, text: str, line: int = 0, offset: int = 0,
                 lists: dict[int, tuple[ast.Atom, ...]] | None = None) -> None:
        """``text`` is the whole file; ``line``/``offset`` shift positions when a chunk of it was parsed alone
        (chunks start at the beginning of a line, so columns need no shift); ``lists`` holds the argument lists
        Lark was given only the first atom of (:func:`_collapsed`), by that atom's offset."""
        super().__init__()
        self.text = text
        self.line = line
        self.offset = offset
        self.lists = lists or {}

    def _pos(self, x: Token | Meta) -> ast.Pos:
        """Position of a Lark token or rule meta, in the whole file."""
        return ast.Pos(_set(x.line) + self.line, _set(x.column), _set(x.end_line) + self.line, _set(x.end_column),
                       _set(x.start_pos) + self.offset, _set(x.end_pos) + self.offset)

    def number(self, children: list[Token]) -> ast.Number:
        (tok,) = children
        return ast.Number(str(tok), self._pos(tok))

    def string(self, children: list[Token]) -> ast.String:
        (tok,) = children
        return ast.String(_unescape(str(tok)), self._pos(tok))

    def symbol(self, children: list[Token]) -> ast.Symbol:
        (tok,) = children
        return ast.Symbol(str(tok), self._pos(tok))

    @v_args(meta=True)
    def qualified(self, meta: Meta, children: list[Any]) -> ast.Qualified:
        tok, *args = children
        parens = len(args) > 0
        atoms = tuple(a for a in args if a is not None)
        if len(atoms) == 1 and atoms[0].pos is not None:  # the whole list, when Lark saw only its first atom
            atoms = self.lists.get(atoms[0].pos.start, atoms)
        return ast.Qualified(str(tok)[1:], atoms, parens, self._pos(meta), self._pos(tok))

    @v_args(meta=True)
    def parameter(self, meta: Meta, children: list[Token]) -> ast.Parameter:
        if len(children) == 1:
            return ast.Parameter(str(children[0]), None, self._pos(meta), self._pos(children[0]))
        role, name = children
        return ast.Parameter(str(name), str(role), self._pos(meta), self._pos(name), self._pos(role))

    @v_args(meta=True)
    def clause(self, meta: Meta, children: list[Any]) -> ast.ClauseNode:
        param, value = children
        return ast.ClauseNode(param, value, self._pos(meta),
                              self.text[meta.start_pos + self.offset:meta.end_pos + self.offset])

    def paren_clauses(self, children: list[ast.ClauseNode | None]) -> tuple[ast.ClauseNode, ...]:
        return tuple(c for c in children if c is not None)

    bare_clauses = paren_clauses

    @v_args(meta=True)
    def contract(self, meta: Meta, children: list[Any]) -> ast.ContractNode:
        name, clauses = children
        return ast.ContractNode(str(name), tuple(clauses), self._pos(meta), self._pos(name),
                                self.text[meta.start_pos + self.offset:meta.end_pos + self.offset])

    def start(self, children: list[ast.ContractNode | None]) -> list[ast.ContractNode]:
        return [c for c in children if c is not None]


def parse_ast(text: str, path: str | None = None) -> tuple[list[ast.ContractNode], list[Diagnostic]]:
    """Parse ``text`` into contract nodes.  Never raises for bad text: syntax errors come back as diagnostics,
    together with the contracts that did parse.

    The cycle collector is paused meanwhile: parsing allocates many small objects and no cycles, and its full
    collections, each walking everything allocated so far, made large files superlinear."""
    import gc

    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_ast(text, path)
    finally:
        if paused:
            gc.enable()


def _parse_ast(text: str, path: str | None) -> tuple[list[ast.ContractNode], list[Diagnostic]]:
    parser = lark_parser()
    given, lists = _collapsed(text)
    try:
        return _ToAst(text, lists=lists).transform(parser.parse(given)), []
    except UnexpectedInput as whole_error:
        first = whole_error
    contracts: list[ast.ContractNode] = []
    diagnostics: list[Diagnostic] = []
    line, counted = 0, 0
    for start, end in _chunks(text):
        line += text.count("\n", counted, start)  # lines before this chunk, counted once over the whole text
        counted = start
        chunk = text[start:end]
        try:
            contracts.extend(_ToAst(text, line, start, lists).transform(parser.parse(given[start:end])))
        except UnexpectedInput as e:
            d = _diagnostic(e, chunk, path)
            diagnostics.append(dataclasses.replace(d, line=None if d.line is None else d.line + line))
    if not diagnostics:  # every contract parses alone but not together: report the error as found
        diagnostics.append(_diagnostic(first, text, path))
    return contracts, diagnostics


# Between two tokens of an argument list, what the lexer skips there: spaces, `\` continuations, comments and
# line ends (inside parentheses the post-lexer drops them).
_GAP = r"(?:[\t \f]+|\\[\t \f]*\r?\n|\r?\n|#[^\n]*)*"
_LIST_PATTERNS: tuple[re.Pattern[str], re.Pattern[str]] | None = None
_BLANK = re.compile(r"[^\n]+")


def _list_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(the opening of a qualifier's argument list, skipping strings and comments; one argument and the ',' or
    ')' after it), with the atoms' patterns read from the grammar's own terminals."""
    global _LIST_PATTERNS
    if _LIST_PATTERNS is None:
        term = {t: lark_parser().get_terminal(t).pattern.value for t in ("NUMBER", "STRING", "NAME", "QUALIFIER")}
        opening = re.compile(rf'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|#[^\n]*|(?!@cluster\b)({term["QUALIFIER"]}){_GAP}\(')
        argument = re.compile(rf'{_GAP}(?:(?P<n>{term["NUMBER"]})|(?P<s>{term["STRING"]})|(?P<y>{term["NAME"]}))'
                              rf'{_GAP}(?P<end>[,)])')
        _LIST_PATTERNS = opening, argument
    return _LIST_PATTERNS


def _collapsed(text: str) -> tuple[str, dict[int, tuple[ast.Atom, ...]]]:
    """``text`` with each well-formed qualifier argument list of two or more atoms cut to its first atom (the
    rest blanked: spaces, line ends kept), and those lists as atoms by their first atom's offset.

    Why: Lark spends ~8 µs per token, and a 1 MiB ``@not(1, 2, …)`` holds ~290,000 of them (2.5 s).  A list
    whose every argument is an atom and every separator a ',' (the grammar's ``[atom ("," atom)*]``) is read here
    with the grammar's own terminal patterns, in C-speed regex steps; anything else (an error anywhere in it) is
    left to Lark whole, so errors and their positions are Lark's.  Offsets, lines and columns of everything else
    stay the same: only characters inside the list change, one for one, and line ends stay."""
    opening, argument = _list_patterns()
    lists: dict[int, tuple[ast.Atom, ...]] = {}
    pieces: list[str] = []
    done = 0  # text[:done] is in pieces
    line, line_start, counted = 1, 0, 0  # the line of text[counted], and where it starts
    for m in opening.finditer(text):
        if m.group(1) is None:
            continue  # a string or a comment
        pos, found = m.end(), list[re.Match[str]]()
        while True:
            a = argument.match(text, pos)
            if a is None:
                found = []
                break
            found.append(a)
            pos = a.end()
            if a.group("end") == ")":
                break
        if len(found) < 2:
            continue
        atoms: list[ast.Atom] = []
        for a in found:
            kind = "n" if a.group("n") is not None else "s" if a.group("s") is not None else "y"
            start, end = a.span(kind)
            newlines = text.count("\n", counted, start)
            if newlines:
                line += newlines
                line_start = text.rfind("\n", counted, start) + 1
            counted = start
            where = ast.Pos(line, start - line_start + 1, line, end - line_start + 1, start, end)
            raw = a.group(kind)
            atoms.append(ast.Number(raw, where) if kind == "n" else
                         ast.String(_unescape(raw), where) if kind == "s" else ast.Symbol(raw, where))
        first = atoms[0].pos
        assert first is not None
        first_end, close = first.end, pos - 1  # the list's ')' is text[pos - 1]
        lists[first.start] = tuple(atoms)
        pieces += [text[done:first_end], _BLANK.sub(lambda b: " " * len(b.group()), text[first_end:close])]
        done = close
    if not lists:
        return text, lists
    pieces.append(text[done:])
    return "".join(pieces), lists


def _chunks(text: str) -> list[tuple[int, int]]:
    starts = [m.start() for m in _CONTRACT_START.finditer(text)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    ends = starts[1:] + [len(text)]
    return list(zip(starts, ends))


_Key = tuple[object, ...]  # (LALR states, accepted terminals?, token type?): see _keys
_LABELS: dict[_Key, str] | None = None
_EARLIER = "earlier = @cluster(node_count => 1)\n"  # examples are also learnt as the second contract of a file


def _labels() -> dict[_Key, str]:
    """(LALR state, token type) and (LALR state,) -> label, from :data:`CONTRACT_SYNTAX_ERRORS`.  Like Lark's
    ``match_examples`` but keyed on the state alone, not the stack depth, so an error in the tenth contract of a
    file matches an example written as the first."""
    global _LABELS
    if _LABELS is None:
        table: dict[_Key, str] = {}
        for label, examples in CONTRACT_SYNTAX_ERRORS:
            for example in [p + x for p in ('', '\n', _EARLIER) for x in examples]:
                try:
                    lark_parser().parse(example)
                except UnexpectedToken as e:
                    for key in _keys(e):
                        table.setdefault(key, label)
                except UnexpectedInput:
                    pass
        _LABELS = table
    return _LABELS


def _label(e: UnexpectedInput) -> str | None:
    if not isinstance(e, UnexpectedToken) or e.state is None:
        return None
    table = _labels()
    return next((table[k] for k in _keys(e) if k in table), None)


def _keys(e: UnexpectedToken) -> list[_Key]:
    """Most specific first: the top of the LALR state stack (three, two, one states), with and without the token.
    LALR merges states that the clause value and a qualifier argument share, so the state alone cannot tell
    "after a clause" from "inside @between(...)"; the states below it can, and they do not depend on how many
    contracts came before.  The accepted terminals tell the bare form from the parenthesized one."""
    stack = tuple(e.state.state_stack)
    accepts = frozenset(e.accepts or e.expected)
    keys: list[_Key] = []
    for k in (3, 2, 1):
        keys += [(stack[-k:], accepts, e.token.type), (stack[-k:], accepts)]
    for k in (3, 2, 1):
        keys += [(stack[-k:], e.token.type), (stack[-k:],)]
    return keys


def _diagnostic(e: UnexpectedInput, text: str, path: str | None) -> Diagnostic:
    unclosed = _unclosed_paren(text) if isinstance(e, UnexpectedToken) and e.token.type == "$END" else None
    if unclosed is not None:
        line, column = unclosed
        return Diagnostic("unclosed '(': expected ')' before the end of the contract", path=path, line=line,
                          column=column, end_column=column + 1, hint="close it after the last clause")
    line, column, width = _where(e, text)
    stray = _stray_clause(text, line)
    if stray is not None:
        return Diagnostic("a clause on a line of its own: the form without parentheses ends at the end of its line",
                          path=path, line=line, column=stray[0], end_column=stray[1],
                          hint="put the clauses in @cluster(...), which may span lines")
    label = _label(e)
    message = label or _generic_message(e)
    if isinstance(e, UnexpectedToken) and label:
        message = f"{message} (found {_describe_token(e.token)})"
    return Diagnostic(message, path=path, line=line, column=column, end_column=column + width,
                      hint=_hint(e, text), severity="error")


def _stray_clause(text: str, line: int) -> tuple[int, int] | None:
    """(column, end_column) of ``name =>`` when the error's line starts with a clause outside any parentheses."""
    offsets = [m.start() for m in re.finditer("\n", text)]
    start = offsets[line - 2] + 1 if line >= 2 else 0
    m = re.match(r"[ \t\f]*(([A-Za-z_][A-Za-z0-9_]*\.)?[A-Za-z_][A-Za-z0-9_]*)[ \t\f]*=>", text[start:])
    if m is None or _unclosed_paren(text[:start]) is not None:
        return None
    return m.start(1) + 1, m.end(1) + 1


def _unclosed_paren(text: str) -> tuple[int, int] | None:
    """(line, column) of the last '(' never closed, skipping strings and comments; None if all are closed."""
    stack: list[int] = []
    for m in re.finditer(r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|#[^\n]*|[()]', text):
        if m.group() == "(":
            stack.append(m.start())
        elif m.group() == ")" and stack:
            stack.pop()
    if not stack:
        return None
    offset = stack[-1]
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _where(e: UnexpectedInput, text: str) -> tuple[int, int, int]:
    """(line, column, width) of the offending text, always inside the file."""
    lines = text.split("\n")
    if isinstance(e, UnexpectedToken) and e.token.type == "$END":
        return len(lines), len(lines[-1]) + 1, 1
    line = max(1, min(getattr(e, "line", 1) or 1, len(lines)))
    column = max(1, min(getattr(e, "column", 1) or 1, len(lines[line - 1]) + 1))
    width = 1
    if isinstance(e, UnexpectedToken) and e.token.type not in ("_NL",):
        width = max(1, min(len(str(e.token)), len(lines[line - 1]) + 2 - column))
    return line, column, width


def _describe_token(token: Token) -> str:
    if token.type in ("_NL", "$END"):
        return _TERMINAL_WORDS[token.type]
    value = str(token)
    return f"'{value}'" if len(value) <= 30 else f"'{value[:27]}...'"


def _describe_char(char: str) -> str:
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return f"character U+{ord(char):04X}"


def _generic_message(e: UnexpectedInput) -> str:
    if isinstance(e, UnexpectedCharacters):
        if e.char == '"':
            return "unterminated string: a string must end with '\"' on the same line"
        if e.char == "-":
            return "unexpected '-': names cannot contain '-'"
        if e.char == "'":
            return "unexpected \"'\": strings are written in double quotes"
        if e.char == "@":
            return "'@' must start a qualifier such as @atleast(…) or @cluster"
        if _foreign_digit(e.char) is not None:
            return f"{_describe_char(e.char)} is not an ASCII digit: numbers are written with the digits 0-9"
        return f"unexpected {_describe_char(e.char)}"
    assert isinstance(e, UnexpectedToken)
    expected = sorted({_describe_terminal(t) for t in e.accepts or e.expected})
    found = _describe_token(e.token)
    if not expected:
        return f"unexpected {found}"
    head = ", ".join(expected[:-1]) + " or " if len(expected) > 1 else ""
    return f"unexpected {found}; expected {head}{expected[-1]}"


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    term = lark_parser().get_terminal(name)
    return f"'{term.pattern.value}'"


def _foreign_digit(char: str) -> int | None:
    """The value of a decimal digit other than 0-9 (Arabic-Indic ٣, fullwidth １, …), else None."""
    import unicodedata

    return None if "0" <= char <= "9" else unicodedata.decimal(char, None)


def _hint(e: UnexpectedInput, text: str = "") -> str | None:
    if isinstance(e, UnexpectedCharacters):
        if _foreign_digit(e.char) is not None:
            return f"write {_foreign_digit(e.char)} instead of {_describe_char(e.char)}"
        if e.char == "-":
            return "names cannot contain '-': quote the value (\"us-east-1\") or write it with '_' (us_east_1)"
        return None
    if not isinstance(e, UnexpectedToken):
        return None
    kind = e.token.type
    if kind == "EQUAL":
        return "write '=>' between a parameter and its value; a new contract starts on a line of its own"
    if kind == "DOT":
        return "quote values that contain '.': \"t3.xlarge\" ('.' only follows manager or worker in a name)"
    if kind == "LPAR" and text[: e.token.start_pos].rstrip().endswith("@cluster"):
        return "the '(' of @cluster(...) must be on the same line as @cluster"
    if kind == "_NL":
        return "the form without parentheses ends at the end of its line; use @cluster(...) to span lines"
    return None
