"""User catalogs a careless (or hostile) user writes: ccdsl errors with file and line, never a traceback, and
``catalog add --name`` never writes outside the catalog directory (issue 8, items 8, 14 and 17)."""

from __future__ import annotations

import pytest

from ccdsl.catalog.loader import user_catalog_dir
from ccdsl.catalog.user import add, read_records
from ccdsl.cli import main
from ccdsl.errors import CatalogError, CatalogRowError

CSV = "provider,instance_type,vcpus,memory_gib\nssh,node01,4,16\n"


@pytest.mark.parametrize("text,suffix,line", [
    ('[[instance]]\nprovider = "ssh"\ninstance_type = "n1"\nvcpus = 1e29\nmemory_gib = 4\n', ".toml", 4),
    ("provider,instance_type,vcpus,memory_gib\nssh,n1,100000000000000000000000000000,4\n", ".csv", 2),
])
def test_a_huge_whole_number_is_a_row_error(tmp_path, text: str, suffix: str, line: int) -> None:
    f = tmp_path / f"hosts{suffix}"
    f.write_text(text)
    with pytest.raises(CatalogRowError) as e:
        read_records(f)
    assert (e.value.line, e.value.column) == (line, "vcpus") and "too large" in e.value.message


@pytest.mark.parametrize("text", ["instance = [1, 2]\n", 'x = 1\ninstance = ["a"]\n', "instance = [[1]]\n"])
def test_instances_that_are_not_tables_are_a_row_error(tmp_path, text: str) -> None:
    f = tmp_path / "hosts.toml"
    f.write_text(text)
    with pytest.raises(CatalogError) as e:
        read_records(f)
    assert str(f) in e.value.message and "[[instance]]" in e.value.message


@pytest.mark.parametrize("name", ["../../x.csv", "../x.csv", "/tmp/evil.csv", "sub/x.csv", "..", ".hidden.csv",
                                  "x.csv/"])
def test_add_refuses_a_name_that_leaves_the_catalog_dir(data_dir, tmp_path, name: str) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text(CSV)
    before = set(tmp_path.rglob("*"))
    with pytest.raises(CatalogError, match="plain file name"):
        add(f, name)
    assert set(tmp_path.rglob("*")) == before  # nothing written anywhere under tmp (the data dir included)
    assert add(f, "lab-hosts.csv") == user_catalog_dir() / "lab-hosts.csv"


def test_catalog_errors_exit_2_not_1(data_dir, tmp_path, capsys) -> None:
    """1 means "unsatisfiable"; a bad catalog is an input error like a bad contract."""
    f = tmp_path / "hosts.toml"
    f.write_text("instance = [1, 2]\n")
    assert main(["catalog", "add", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {f}:1:") and "Traceback" not in err
    g = tmp_path / "hosts.csv"
    g.write_text(CSV)
    assert main(["catalog", "add", str(g), "--name", "../../x.csv"]) == 2
    assert main(["catalog", "show", "no-such.type"]) == 2
