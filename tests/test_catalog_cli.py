"""``ccdsl catalog ...`` through ``ccdsl.cli.main`` (and once as a real subprocess)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest

from ccdsl.catalog import load
from ccdsl.catalog.schema import COLUMN_NAMES
from ccdsl.cli import main


@pytest.fixture(autouse=True)
def _isolated(data_dir):
    return data_dir


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_info_shows_provenance_and_warns_about_old_prices(capsys) -> None:
    code, out, err = run(capsys, "catalog", "info")
    prov = json.loads((__import__("ccdsl._resources", fromlist=["x"]).catalog_dir() / "provenance.json").read_text())
    assert code == 0
    assert f"rows: {prov['counts']['rows']}" in out
    assert prov["versions"]["moto"] in out and prov["versions"]["apache-libcloud"] in out
    from ccdsl.commands.catalog import price_age_days

    # one line per price source with its row count and oldest/newest date, counted from the catalog itself
    df = load()
    table = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith("  ")}
    for source, group in df.groupby(df["price_source"].replace("", "unknown")):
        dates = sorted(d for d in group["price_date"] if d)
        assert table[source] == [str(len(group)), dates[0] if dates else "-", dates[-1] if dates else "-"], source
    assert table["karpenter@6fc13b52"][1:] == ["2026-07-20", "2026-07-20"]
    assert "spot prices: none shipped" in out
    for source, s in prov["price_sources"].items():
        old = s["date"] and price_age_days(s["date"]) > 180
        assert (f"carry {source} prices from" in err) == bool(old), source


def test_price_age() -> None:
    import datetime as dt

    from ccdsl.commands.catalog import price_age_days

    assert price_age_days("2025-03-02", dt.date(2025, 8, 29)) == 180
    assert price_age_days("2025-03-02", dt.date(2025, 8, 30)) == 181


def test_list_filters(capsys) -> None:
    code, out, _ = run(capsys, "catalog", "list", "--region", "us-east-1", "--gpu", "--min-vcpus", "8",
                       "--limit", "0")
    assert code == 0
    lines = out.strip().splitlines()
    df = load()
    want = df[(df.region == "us-east-1") & (df.accelerator_type == "GPU") & (df.vcpus >= 8)]
    assert lines[-1] == f"({len(want)} of {len(want)} rows)"
    body = lines[2:-1]
    assert len(body) == len(want)
    assert {line.split()[2] for line in body} == set(want.instance_type)
    prices = [float(line.split()[-1]) for line in body]
    assert prices == sorted(prices)
    code, out, _ = run(capsys, "catalog", "list", "--family", "t3", "--limit", "3")
    assert code == 0 and out.strip().splitlines()[-1].startswith("(3 of ")
    assert all(line.split()[2].startswith("t3.") for line in out.strip().splitlines()[2:-1])


def test_show(capsys) -> None:
    code, out, _ = run(capsys, "catalog", "show", "g6e.12xlarge", "--region", "us-east-1")
    assert code == 0
    assert "L40S" in out and "Ada Lovelace" in out and "us-east-1" in out
    code, _, err = run(capsys, "catalog", "show", "g6e.12xlarg")
    assert code == 2 and "did you mean g6e.12xlarge" in err and "Traceback" not in err
    code, _, err = run(capsys, "catalog", "show", "g6e.12xlarge", "--region", "sa-east-1")
    assert code == 2 and "offered in:" in err


def test_export_csv_and_json(capsys) -> None:
    code, out, _ = run(capsys, "catalog", "export", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    df = load()
    assert len(rows) == len(df) and tuple(rows[0]) == COLUMN_NAMES
    code, out, _ = run(capsys, "catalog", "export", "--format", "json")
    records = json.loads(out)
    assert len(records) == len(df) and set(records[0]) == set(COLUMN_NAMES)
    assert records[0]["spot_price_per_hour"] is None  # NaN -> null, valid JSON


def test_add_then_list_and_export(capsys, tmp_path) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text("provider,region,instance_type,vcpus,memory_gib,cpu_microarchitecture\n"
                 "ssh,lab,node01,32,128,Zen 4\nssh,lab,node02,32,128,icelake\n")
    code, out, _ = run(capsys, "catalog", "add", str(f))
    assert code == 0 and "added 2 rows" in out
    code, out, _ = run(capsys, "catalog", "list", "--provider", "ssh")
    assert "node01" in out and "node02" in out and "Ice Lake" in out
    code, out, _ = run(capsys, "catalog", "export")
    assert "ssh,lab,node02" in out
    code, out, _ = run(capsys, "catalog", "export", "--no-user")
    assert "ssh,lab,node02" not in out


def test_add_bad_file_is_an_error_not_a_traceback(capsys, tmp_path) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text("provider,instance_type,vcpus,memory_gib\nssh,node01,32,128\nssh,node02,32,12x8\n")
    code, _, err = run(capsys, "catalog", "add", str(f))
    assert code == 2
    assert err.startswith(f"error: {f}:3: column 'memory_gib':")


def test_build_output(capsys, tmp_path) -> None:
    pytest.importorskip("moto")
    pytest.importorskip("libcloud")
    code, out, _ = run(capsys, "catalog", "build", "--output", str(tmp_path))
    assert code == 0 and "built" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SCHEMA.md", "aws.csv", "aws.parquet", "provenance.json"]


def test_subprocess_list_and_import_cost(tmp_path) -> None:
    """The installed entry point works, and `catalog list` never imports boto3 or the build sources."""
    code = ("import sys, runpy\n"
            "sys.argv = ['ccdsl', 'catalog', 'list', '--region', 'eu-west-1', '--limit', '2']\n"
            "from ccdsl.cli import main\n"
            "rc = main()\n"
            "bad = [m for m in ('boto3', 'moto', 'libcloud', 'paramiko', 'mpi4py') if m in sys.modules]\n"
            "print('IMPORTED', bad)\n"
            "sys.exit(rc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "CCDSL_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "IMPORTED []" in proc.stdout
    assert "(2 of " in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "ccdsl", "catalog", "show", "nope.large"], capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "CCDSL_DATA_DIR": str(tmp_path)})
    assert proc.returncode == 2 and "error: no instance type 'nope.large'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_add_lists_and_removes_a_user_catalog(capsys) -> None:
    code, out, _ = run(capsys, "catalog", "add", "examples/lab_hosts.toml")
    assert code == 0 and "added 2 rows" in out and "undo with `ccdsl catalog remove lab_hosts`" in out
    assert 'compete only for contracts that name them (node_provider => SSH, cluster_locale => "lab"' in out
    _, out, _ = run(capsys, "catalog", "info")
    assert "  lab_hosts.toml (2 rows)" in out and "ccdsl catalog remove NAME" in out
    _, out, _ = run(capsys, "catalog", "list", "--limit", "3")
    assert out.rstrip().endswith("user catalogs merged in: lab_hosts.toml (see `ccdsl catalog info`)")
    code, _, err = run(capsys, "catalog", "remove", "lab_host")
    assert code == 2 and "did you mean 'lab_hosts'?" in err and "installed: lab_hosts.toml" in err
    code, out, _ = run(capsys, "catalog", "remove", "lab_hosts")
    assert code == 0 and out.startswith("removed ") and out.rstrip().endswith("lab_hosts.toml")
    assert "ssh" not in set(load()["provider"])
    _, out, _ = run(capsys, "catalog", "info")
    assert "(none)" in out.splitlines()[-1]
    code, _, err = run(capsys, "catalog", "remove", "lab_hosts")
    assert code == 2 and "there are none" in err


def test_remove_takes_a_refresh_sidecar_with_it(capsys, data_dir) -> None:
    d = data_dir / "catalogs"
    d.mkdir(parents=True, exist_ok=True)
    (d / "aws-eu-west-1.refresh.csv").write_text("provider,region,instance_type,vcpus,memory_gib,price_per_hour\n"
                                                 "aws,eu-west-1,t3.xlarge,4,16,0.1824\n")
    (d / "aws-eu-west-1.refresh.json").write_text("{}")
    code, out, _ = run(capsys, "catalog", "remove", "aws-eu-west-1.refresh.csv")
    assert code == 0 and len(out.splitlines()) == 2 and not list(d.iterdir())


def test_list_says_when_a_filter_matches_nothing_known(capsys) -> None:
    code, out, err = run(capsys, "catalog", "list", "--region", "nowhere")
    assert code == 2 and out == ""
    assert "unknown region 'nowhere'" in err and "us-east-1" in err  # lists the known ones
    code, _, err = run(capsys, "catalog", "list", "--region", "eu-west")
    assert code == 2 and "did you mean eu-west-" in err
    code, _, err = run(capsys, "catalog", "list", "--family", "g6x")
    assert code == 2 and "unknown family 'g6x'" in err and "g6" in err
    code, out, _ = run(capsys, "catalog", "list", "--region", "eu-west-1", "--limit", "1")
    assert code == 0 and "(1 of " in out


def test_sizes_in_catalog_tables_are_rounded(capsys) -> None:
    _, out, _ = run(capsys, "catalog", "show", "g6.xlarge", "--region", "us-east-1")
    assert "22.35" in out and "22.3516" not in out


def test_show_names_each_regions_price_source_and_unknown_prices(capsys) -> None:
    _, out, _ = run(capsys, "catalog", "show", "g5.xlarge")
    by_region = {line.split()[0]: line.split()[1:4] for line in out.splitlines()
                 if line.split() and line.split()[0] in ("us-east-1", "eu-west-1")}
    assert by_region["us-east-1"] == ["1.006", "karpenter@6fc13b52", "2026-07-20"]
    assert by_region["eu-west-1"] == ["-", "-", "-"]
    assert "price unknown in the shipped catalog" in out


def test_show_suggests_the_type_that_differs_only_in_case_first(capsys) -> None:
    """Issue 19 B17: difflib ranks t3.large above t3.xlarge for 't3.XLarge'; what the user meant comes first."""
    code, _, err = run(capsys, "catalog", "show", "t3.XLarge")
    assert code == 2 and "hint: did you mean t3.xlarge, " in err
