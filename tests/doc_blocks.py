"""The fenced blocks of the documentation (docs/**/*.md and README.md) and what each promises, for
``test_docs_examples.py``.

The conventions (written up for authors in docs/design/index.md, *Writing the docs*):

- ```` ```ccc ````: a contract file. It must check without errors and resolve on the shipped catalog. An HTML comment
  on the line before changes that: ``<!-- ccc: check-only -->`` (checked, not resolved), ``<!-- ccc: unsatisfiable
  -->`` (every contract has a conflict), ``<!-- ccc: error -->`` (the checker must report an error),
  ``<!-- ccc: catalog=FILE -->`` (resolved with that user catalog too).
- ```` ```console ````: a shell session. Each ``$ `` line is run (in one bash, from the repository's root, with a
  fresh data dir), and the lines under it are lines of its output (stdout and stderr), in order. ``…`` alone on a
  line abridges; ``…`` inside a line matches anything (a price that varies, a time). A command exits 0 unless its
  line ends with ``# exits N``.
- ```` ```toml ````: a ``ccdsl.toml`` that loads, or (with ``[[instance]]``) a user catalog that loads.
- ```` ```pycon ````: a Python session, run as a doctest (``...`` matches anything, ``…`` alone on a line abridges);
  the blocks of one page share their names.
- ```` ```bash ```` and ```` ```python ````: run when marked ``<!-- run -->`` (bash with ``set -e``; each must exit 0),
  or ``<!-- run: by test_name -->`` when a test of its own runs them with stronger checks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)
_MARK = re.compile(r"<!--\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository's root
    line: int  # of the opening fence, 1-based
    lang: str
    body: str
    mark: str  # the HTML comment on the line before the fence ("" when none)

    @property
    def id(self) -> str:
        return f"{self.path}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def blocks(path: Path) -> list[Block]:
    text = path.read_text()
    out = []
    for m in _FENCE.finditer(text):
        before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = _MARK.search(before)
        out.append(Block(str(path.relative_to(ROOT)), text.count("\n", 0, m.start()) + 1, m["lang"],
                         textwrap.dedent(m["body"]), mark[1] if mark else ""))
    return out


def all_blocks(*langs: str) -> list[Block]:
    return [b for p in doc_files() for b in blocks(p) if b.lang in langs]


@dataclass(frozen=True)
class Command:
    line: str  # without "$ "
    expected: tuple[str, ...]  # quoted output lines
    exit_code: int


def console_commands(body: str) -> list[Command]:
    out: list[Command] = []
    for raw in body.splitlines():
        if raw.startswith("$ "):
            m = re.search(r"#\s*exits?\s+(\d+)\s*$", raw)
            out.append(Command(raw[2:], (), int(m[1]) if m else 0))
        elif out and raw.strip():
            last = out[-1]
            out[-1] = Command(last.line, (*last.expected, raw.rstrip()), last.exit_code)
    return out


def line_pattern(quoted: str) -> re.Pattern[str]:
    """A quoted output line as a pattern: ``…`` inside it matches anything."""
    return re.compile(".*".join(re.escape(part) for part in quoted.split("…")) + r"\Z")


def match_in_order(quoted: tuple[str, ...], real: list[str]) -> str | None:
    """None when every quoted line is a line of ``real`` in the same order (``…`` alone skips), else what failed."""
    at = 0
    real = [line.rstrip() for line in real]
    for line in quoted:
        if line.strip() == "…":
            continue
        pattern = line_pattern(line)
        hit = next((i for i in range(at, len(real)) if pattern.match(real[i])), None)
        if hit is None:
            return f"stale or out of order: {line!r}"
        at = hit + 1
    return None


# ------------------------------------------------------------------ for the stricter page checks (test_readme.py,
# test_docs_pages.py), which quote a command's output and hold it to what the command prints now


def block_after(marker: str, text: str) -> str:
    """The first fenced block after ``marker`` in ``text``."""
    tail = text[text.index(marker):]
    m = re.search(r"```[a-z]*\n(.*?)```", tail, re.S)
    assert m, marker
    return m.group(1)


def block_with(marker: str, text: str) -> str:
    """The fenced block of ``text`` that contains ``marker``."""
    return next(b for b in re.findall(r"```[a-z]*\n(.*?)```", text, re.S) if marker in b)


def run_ccdsl(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m ccdsl ARGV`` from the repository's root, as a reader would type it."""
    return subprocess.run([sys.executable, "-m", "ccdsl", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=env)


def quiet_env(data_dir: Path) -> dict[str, str]:
    """This environment with a fresh data dir and no default region: the output a newcomer sees."""
    return {**os.environ, "CCDSL_DATA_DIR": str(data_dir), "CCDSL_REGION": ""}


def quoted_lines(block: str) -> list[str]:
    """The output lines a block quotes: not its commands, blank lines or ``…``."""
    return [line for line in block.splitlines() if line.strip() not in ("", "…") and not line.startswith("$ ")]


def in_order(quoted: list[str], real: list[str]) -> None:
    """Every quoted line is a line of the real output, in the same order (``…`` abridges what is between)."""
    at = 0
    for line in quoted:
        assert line in real[at:], f"stale or out of order: {line!r}"
        at = real.index(line, at) + 1
