"""This machine is a free ``local`` catalog row that competes only when a contract asks for it."""

from __future__ import annotations

import os

import pytest

import ccdsl
from ccdsl.catalog import local


@pytest.fixture(autouse=True)
def _isolated(data_dir):
    return data_dir


def test_the_local_row_describes_this_machine() -> None:
    df = ccdsl.catalog.load()
    rows = df[df.provider == "local"]
    assert len(rows) == 1
    row = rows.iloc[0]
    assert (row.region, row.instance_type, row.price_per_hour) == ("local", "localhost", 0.0)
    assert row.vcpus == os.cpu_count()
    assert row.memory_gib == pytest.approx(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, rel=1e-3)


def test_local_resolves_only_when_asked() -> None:
    asked = ccdsl.resolve(ccdsl.cluster(node_provider="Local", node_count=3))
    assert (asked.choice.provider, asked.instance_type, asked.node_count, asked.price_per_hour) == (
        "local", "localhost", 3, 0.0)
    # The same shape without naming the provider: the free row fits but must not win.
    other = ccdsl.resolve(ccdsl.cluster(node_count=3))
    assert other.choice.provider == "aws" and other.price_per_hour > 0
    both = ccdsl.resolve(ccdsl.cluster(node_provider=ccdsl.language.oneof("AmazonEC2", "Local"), node_count=3))
    assert both.choice.provider == "local"


def test_a_user_row_replaces_the_detected_one(tmp_path) -> None:
    mine = tmp_path / "me.toml"
    mine.write_text('[[instance]]\nprovider = "local"\nregion = "local"\ninstance_type = "localhost"\n'
                    'vcpus = 1\nmemory_gib = 1.5\n')
    df = ccdsl.catalog.load(paths=[mine])
    rows = df[df.provider == "local"]
    assert len(rows) == 1 and rows.iloc[0].vcpus == 1 and rows.iloc[0].memory_gib == 1.5


def test_local_asks_that_do_not_fit_this_machine_are_unsatisfiable() -> None:
    too_big = local.local_record()["vcpus"] + 1
    with pytest.raises(ccdsl.UnsatisfiableError) as info:
        ccdsl.resolve(ccdsl.cluster(node_provider="Local", node_vcpus_count=ccdsl.language.atleast(too_big)))
    assert {c.parameter for c in info.value.conflict} == {"node_provider", "node_vcpus_count"}
