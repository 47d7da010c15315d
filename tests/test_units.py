"""Units a reader can hold in mind: no class over 250 lines and no function over 80 in ``ccdsl/`` (issue 24).

A unit may be longer when a comment says why: a comment starting ``# long:`` followed by the reason, on the
``class``/``def`` line or in the comment lines right above it (above its decorators).  ``KNOWN_LONG`` lists the units
still waiting to be split, each with its reason; the test fails when one of them is short enough now (so the list
only shrinks) and when a new long unit appears.  A unit's size counts every line from its ``def``/``class`` line to
its last line, docstring and comments included (decorators are not counted).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ccdsl"
CLASS_LIMIT = 250
FUNCTION_LIMIT = 80
MARK = "# long:"

# "path:qualified name" -> why it is still long.
KNOWN_LONG: dict[str, str] = {}  # empty since issue 24's last splits; a new long unit needs a "# long:" reason


def _reason(lines: list[str], node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The text after ``# long:`` on the unit's first line or in the comment block right above it, if any."""
    candidates = [lines[node.lineno - 1]]
    above = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 2
    while above >= 0 and lines[above].lstrip().startswith("#"):
        candidates.append(lines[above])
        above -= 1
    for line in candidates:
        if MARK in line and line.split(MARK, 1)[1].strip():
            return line.split(MARK, 1)[1].strip()
    return None


def long_units(package: Path = PACKAGE) -> dict[str, int]:
    """``path:Qualified.name`` -> lines, for every class over ``CLASS_LIMIT`` and function over ``FUNCTION_LIMIT``
    lines without a ``# long:`` reason."""
    found: dict[str, int] = {}

    def visit(node: ast.AST, prefix: str, path: str, lines: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                size = (child.end_lineno or child.lineno) - child.lineno + 1
                limit = CLASS_LIMIT if isinstance(child, ast.ClassDef) else FUNCTION_LIMIT
                if size > limit and _reason(lines, child) is None:
                    found[f"{path}:{name}"] = size
                visit(child, f"{name}.", path, lines)
            else:
                visit(child, prefix, path, lines)

    for file in sorted(package.rglob("*.py")):
        text = file.read_text(encoding="utf-8")
        visit(ast.parse(text), "", file.relative_to(package.parent).as_posix(), text.splitlines())
    return found


def test_no_long_unit_without_a_reason():
    new = {unit: size for unit, size in long_units().items() if unit not in KNOWN_LONG}
    assert not new, (f"over {CLASS_LIMIT} lines (class) or {FUNCTION_LIMIT} (function), with no '{MARK} why' "
                     f"comment: split them, or say why not: {new}")


def test_known_long_units_are_still_long():
    """An entry that got short enough must leave the list, so the list records what is left to do."""
    gone = sorted(set(KNOWN_LONG) - set(long_units()))
    assert not gone, f"these units are short enough now (or gone); remove them from KNOWN_LONG: {gone}"


def test_long_units_sees_sizes_nesting_and_reasons(tmp_path):
    """The walker itself, on a package written for the purpose (a broken walker must not pass silently)."""
    pkg = tmp_path / "ccdsl"
    pkg.mkdir()
    body = "    x = 1\n"
    (pkg / "a.py").write_text(
        "def short():\n" + body * (FUNCTION_LIMIT - 1)
        + "def long():\n" + body * FUNCTION_LIMIT
        + "# long: one table, read top to bottom\n@staticmethod\ndef excused():\n" + body * FUNCTION_LIMIT
        + "def marked():  # long:\n" + body * FUNCTION_LIMIT  # a mark without a reason does not count
        + "class Big:\n    def method(self):\n" + "        y = 2\n" * FUNCTION_LIMIT + body * CLASS_LIMIT
        + "async def waits():\n" + body * FUNCTION_LIMIT)
    assert long_units(pkg) == {"ccdsl/a.py:long": FUNCTION_LIMIT + 1, "ccdsl/a.py:marked": FUNCTION_LIMIT + 1,
                               "ccdsl/a.py:Big": CLASS_LIMIT + FUNCTION_LIMIT + 2,
                               "ccdsl/a.py:Big.method": FUNCTION_LIMIT + 1,
                               "ccdsl/a.py:waits": FUNCTION_LIMIT + 1}
