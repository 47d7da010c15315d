"""User catalogs: merging with the shipped one, and errors that point at the file, line and column."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ccdsl.catalog import load
from ccdsl.catalog.loader import user_catalog_dir
from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES
from ccdsl.catalog.store import csv_bytes
from ccdsl.catalog.user import add, read_records
from ccdsl.errors import CatalogError, CatalogRowError

HOSTS_TOML = """\
# my lab
[defaults]
provider = "ssh"
region = "lab"
cpu_microarchitecture = "zen4"

[[instance]]
instance_type = "node01"
vcpus = 64
memory_gib = 256
accelerator_model = "l40s"
accelerator_count = 2
accelerator_memory_gib = 48

[[instance]]
instance_type = "node02"
vcpus = 16
cores = 8
memory_gib = 64
"""


def test_toml_hosts_merge_with_shipped(data_dir) -> None:
    shipped = load(user=False)
    (data_dir / "catalogs").mkdir(parents=True)
    (data_dir / "catalogs" / "lab.toml").write_text(HOSTS_TOML)
    df = load()
    assert len(df) == len(shipped) + 2
    assert tuple(df.columns) == COLUMN_NAMES and {c: str(df[c].dtype) for c in df} == dict(DTYPES)
    n1 = df[df.instance_type == "node01"].iloc[0]
    assert (n1.provider, n1.region, n1.price_per_hour) == ("ssh", "lab", 0.0)
    # symbols were canonicalized and completed from the taxonomy
    assert (n1.cpu_microarchitecture, n1.cpu_manufacturer, n1.cpu_architecture) == ("Zen 4", "AMD", "x86_64")
    assert (n1.accelerator_model, n1.accelerator_architecture, n1.accelerator_manufacturer,
            n1.accelerator_type) == ("L40S", "Ada Lovelace", "NVIDIA", "GPU")
    assert n1.accelerator_memory_total_gib == 96.0 and n1.cores == 64 and math.isnan(n1.network_gbps)
    n2 = df[df.instance_type == "node02"].iloc[0]
    assert n2.cpu_manufacturer == "AMD"
    assert (n2.cores, n2.accelerator_count, n2.accelerator_model) == (8, 0, "")
    assert len(load(user=False)) == len(shipped)


def test_user_rows_replace_shipped_rows_of_the_same_key(data_dir, tmp_path) -> None:
    shipped = load(user=False)
    old = shipped[(shipped.instance_type == "m5.large") & (shipped.region == "us-east-1")].iloc[0]
    row = {**old.to_dict(), "price_per_hour": 0.5}
    f = tmp_path / "fix.csv"
    f.write_bytes(csv_bytes([row]))
    df = load(paths=[f])
    hit = df[(df.instance_type == "m5.large") & (df.region == "us-east-1")]
    assert len(hit) == 1 and hit.iloc[0].price_per_hour == 0.5
    assert len(df) == len(shipped)
    # other regions keep their shipped price
    other = df[(df.instance_type == "m5.large") & (df.region == "eu-west-1")].iloc[0]
    assert other.price_per_hour == shipped[(shipped.instance_type == "m5.large")
                                           & (shipped.region == "eu-west-1")].iloc[0].price_per_hour


def test_cache_sees_new_user_files(data_dir) -> None:
    n = len(load())
    (data_dir / "catalogs").mkdir(parents=True)
    (data_dir / "catalogs" / "one.csv").write_text("provider,instance_type,vcpus,memory_gib\nlocal,laptop,8,16\n")
    assert len(load()) == n + 1
    df = load()
    df.loc[0, "vcpus"] = -5  # callers get a copy; the cache is not affected
    assert load().loc[0, "vcpus"] != -5


def test_load_columns_subset(data_dir) -> None:
    df = load(user=False, columns=["instance_type", "price_per_hour"])
    assert list(df.columns) == ["instance_type", "price_per_hour"]
    with pytest.raises(CatalogError, match="unknown catalog column"):
        load(columns=["price"])


BAD_CSV = [
    ("provider,instance_type,vcpus,memory_gib\nssh,a,4,8\nssh,b,four,8\n", 3, "vcpus", "whole number"),
    ("provider,instance_type,vcpus,memory_gib\nssh,a,4,8\n\nssh,b,4,-1\n", 4, "memory_gib", ">= 0"),
    ("provider,instance_type,vcpus,memory_gib\ngcp,a,4,8\n", 2, "provider", "unknown provider"),
    ("provider,instance_type,vcpus,memory_gib,cpu_microarchitecture\nssh,a,4,8,Zen7\n", 2,
     "cpu_microarchitecture", "unknown cpu microarchitecture"),
    ("provider,instance_type,vcpus,memory_gib,accelerator_model\nssh,a,4,8,Hopper\n", 2, "accelerator_model",
     "unknown accelerator model"),  # an architecture is not a model
    ("provider,instance_type,vcpus,memory_gib,gpus\nssh,a,4,8,1\n", 2, "gpus", "unknown column"),
    ("provider,instance_type,vcpus,memory_gib,accelerator_model,accelerator_architecture\nssh,a,4,8,L40S,Hopper\n",
     2, "accelerator_architecture", "contradicts"),
    ("provider,instance_type,vcpus,memory_gib,cpu_model,cpu_manufacturer\nssh,a,4,8,AMD EPYC 7R13,Intel\n",
     2, "cpu_manufacturer", "contradicts"),
    ("provider,instance_type,vcpus\nssh,a,4\n", 2, "memory_gib", "required"),
    ("provider,region,instance_type,vcpus,memory_gib\naws,us-east-1,m9.large,4,8\n", 2, "price_per_hour", ""),
    ("provider,instance_type,vcpus,memory_gib,efa\nssh,a,4,8,maybe\n", 2, "efa", "true or false"),
    ("provider,instance_type,vcpus,memory_gib,cores\nssh,a,4,8,16\n", 2, "cores", "exceed"),
    ("provider,instance_type,vcpus,memory_gib\nssh,a,4,8\nssh,a,4,8\n", 3, "instance_type", "duplicate"),
    ("provider,instance_type,vcpus,memory_gib\nssh,a,4\n", 2, "vcpus", "expected 4 fields"),
]


@pytest.mark.parametrize("text,line,column,words", BAD_CSV)
def test_bad_csv_rows_name_file_line_column(tmp_path, text, line, column, words) -> None:
    f = tmp_path / "hosts.csv"
    f.write_text(text)
    with pytest.raises(CatalogRowError) as info:
        read_records(f)
    err = info.value
    assert (err.path, err.line, err.column) == (str(f), line, column)
    assert words in err.message
    assert err.message.startswith(f"{f}:{line}: column '{column}':")


def test_bad_toml_rows_name_line_and_column(tmp_path) -> None:
    f = tmp_path / "lab.toml"
    f.write_text(HOSTS_TOML.replace("memory_gib = 64", 'memory_gib = "lots"'))
    with pytest.raises(CatalogRowError) as info:
        read_records(f)
    assert (info.value.line, info.value.column) == (HOSTS_TOML.splitlines().index("memory_gib = 64") + 1,
                                                    "memory_gib")
    # a bad default is reported where the default is written
    f.write_text(HOSTS_TOML.replace('cpu_microarchitecture = "zen4"', 'cpu_microarchitecture = "zen9"'))
    with pytest.raises(CatalogRowError) as info:
        read_records(f)
    assert (info.value.line, info.value.column) == (5, "cpu_microarchitecture")
    assert "did you mean" in info.value.message
    f.write_text("[[instance]\nvcpus = 1\n")
    with pytest.raises(CatalogRowError, match="not valid TOML") as info:
        read_records(f)
    assert info.value.line == 1


def test_bad_user_file_in_data_dir_fails_load_with_position(data_dir) -> None:
    (data_dir / "catalogs").mkdir(parents=True)
    (data_dir / "catalogs" / "x.csv").write_text("provider,instance_type,vcpus,memory_gib\nssh,a,0,8\n")
    with pytest.raises(CatalogRowError, match=r"x.csv:2: column 'vcpus'"):
        load()


def test_add_validates_then_copies_atomically(data_dir, tmp_path) -> None:
    good = tmp_path / "lab.toml"
    good.write_text(HOSTS_TOML)
    dest = add(good)
    assert dest == user_catalog_dir() / "lab.toml" and dest.read_text() == HOSTS_TOML
    assert oct(dest.stat().st_mode & 0o777) == "0o600"
    bad = tmp_path / "lab2.toml"
    bad.write_text(HOSTS_TOML.replace("vcpus = 64", "vcpus = -64"))
    with pytest.raises(CatalogRowError):
        add(bad, name="lab.toml")
    assert dest.read_text() == HOSTS_TOML  # the previous file is untouched
    assert sorted(p.name for p in dest.parent.iterdir()) == ["lab.toml"]  # no temp files


symbols = st.sampled_from(["", "Zen 4", "Ice Lake", "Graviton3", "Sapphire Rapids"])
rows = st.fixed_dictionaries({
    "provider": st.sampled_from(["ssh", "local"]),
    "region": st.text(st.characters(whitelist_categories=("Ll", "Nd"), whitelist_characters="-"), max_size=12),
    "instance_type": st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=".-_ ,\""),
                             min_size=1, max_size=16).filter(lambda s: s.strip() == s and not s.startswith("#")),
    "vcpus": st.integers(1, 4096),
    "memory_gib": st.floats(0, 1e5, allow_nan=False),
    "cpu_microarchitecture": symbols,
    "clock_ghz": st.one_of(st.just(math.nan), st.floats(0.1, 6.0)),
    "efa": st.booleans(),
    "price_per_hour": st.floats(0, 100, allow_nan=False),
    "max_nodes": st.sampled_from(["", 1, 2, 16]),  # "" = the default: 1 for ssh, NaN (unlimited) for local
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(rows, min_size=1, max_size=5, unique_by=lambda r: (r["provider"], r["region"], r["instance_type"])))
def test_csv_round_trip(tmp_path, records) -> None:
    """Whatever a valid row holds survives writing it as CSV and reading it back through the validator."""
    from ccdsl.catalog.user import validate_record

    full = [validate_record(r, "mem", lambda c: None) for r in records]
    f = tmp_path / "rt.csv"
    f.write_bytes(csv_bytes(full))
    back = read_records(f)
    assert len(back) == len(full)
    for a, b in zip(full, back):
        for c in COLUMN_NAMES:
            if isinstance(a[c], float) and math.isnan(a[c]):
                assert math.isnan(b[c])
            else:
                assert a[c] == b[c], c


def test_readme_examples_are_valid_user_catalogs(tmp_path) -> None:
    """The CSV and TOML examples in catalogs/README.md load as documented."""
    import re

    from ccdsl._resources import catalog_dir

    text = (catalog_dir() / "README.md").read_text()
    blocks = dict(re.findall(r"```(csv|toml)\n(.*?)```", text, flags=re.S))
    assert set(blocks) == {"csv", "toml"}
    (tmp_path / "lab.csv").write_text(blocks["csv"])
    (tmp_path / "lab.toml").write_text(blocks["toml"])
    csv_rows = read_records(tmp_path / "lab.csv")
    assert [r["instance_type"] for r in csv_rows] == ["node01", "node02", "laptop"]
    assert csv_rows[0]["accelerator_architecture"] == "Ada Lovelace" and csv_rows[0]["cpu_manufacturer"] == "AMD"
    toml_rows = read_records(tmp_path / "lab.toml")
    assert [(r["provider"], r["region"], r["cpu_microarchitecture"]) for r in toml_rows] == \
        [("ssh", "lab", "Sapphire Rapids")] * 2
    assert toml_rows[0]["accelerator_memory_total_gib"] == 320.0
    df = load(user=False, paths=[tmp_path / "lab.csv", tmp_path / "lab.toml"])
    assert len(df) == len(load(user=False)) + 3  # node01/node02 appear in both files: the TOML (later) wins
    assert set(df[df.provider == "ssh"].cpu_microarchitecture) == {"Sapphire Rapids"}


def test_known_cpu_model_implies_microarchitecture(tmp_path) -> None:
    f = tmp_path / "h.csv"
    f.write_text("provider,instance_type,vcpus,memory_gib,cpu_model\nssh,a,4,8,AMD EPYC 9R14\n"
                 "ssh,b,4,8,My Homebrew CPU\n")
    a, b = read_records(f)
    assert (a["cpu_microarchitecture"], a["cpu_manufacturer"], a["cpu_architecture"]) == ("Zen 4", "AMD", "x86_64")
    assert (b["cpu_model"], b["cpu_microarchitecture"], b["cpu_manufacturer"]) == ("My Homebrew CPU", "", "")
