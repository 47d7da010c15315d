"""The README is the site's front page: at most 200 lines, its first two commands as they always were, its quoted
output what ``ccdsl resolve`` prints, and its links lead into docs/.  (The checks of what moved from it into docs/
are in test_docs_pages.py; every example of both is run by test_docs_examples.py.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from doc_blocks import block_after, block_with, in_order, quiet_env, quoted_lines, run_ccdsl

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.fixture()
def env(tmp_path):
    return quiet_env(tmp_path / "data")


def test_the_quick_start_output_is_what_resolve_prints(env) -> None:
    proc = run_ccdsl("resolve", "examples/tutorial.ccc", env=env)
    assert proc.returncode == 0, proc.stderr
    in_order(quoted_lines(block_after("Output of the first command", README)), proc.stdout.splitlines())


# The README's first two commands: what a newcomer types first, kept exactly as they are.
FIRST_COMMANDS = [
    "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]' && ccdsl resolve examples/tutorial.ccc",
    "python -m pytest -q",
]


def test_the_readme_is_a_front_page_of_at_most_200_lines() -> None:
    assert len(README.splitlines()) <= 200


def test_the_first_two_commands_stay_as_they_are() -> None:
    bash = [b.strip() for b in re.findall(r"```bash\n(.*?)```", README, re.S)]
    assert bash[:2] == FIRST_COMMANDS


def test_the_readme_links_into_the_docs_and_every_link_leads_somewhere() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    local = [link for link in links if "://" not in link]
    assert sum(link.startswith("docs/") for link in local) >= 10
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"links to nothing: {missing}"
    pages = {str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")} - {"docs/index.md"}
    unlinked = sorted(p for p in pages if p not in local and not p.startswith("docs/reference/"))
    assert not unlinked, f"pages the front page does not lead to: {unlinked}"
