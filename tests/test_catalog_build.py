"""The shipped catalog against the raw sources it claims to be built from.

The expectations here are recomputed from moto's and libcloud's files directly (json/gzip/ast, not the build's
own readers), so a bug in ``ccdsl.catalog.sources`` or ``convert`` cannot make its own test pass.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from importlib import metadata

import pytest

pytest.importorskip("moto")
pytest.importorskip("libcloud")

from ccdsl._resources import catalog_dir  # noqa: E402
from ccdsl.catalog.build import build  # noqa: E402
from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES  # noqa: E402
from ccdsl.catalog.store import read_parquet  # noqa: E402

from catalog_sources import raw_offerings, raw_prices, raw_processors, raw_specs  # noqa: E402


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A catalog built now from the installed packages, and its provenance."""
    out = tmp_path_factory.mktemp("catalog")
    prov = build(out)
    return out, prov, read_parquet(out / "aws.parquet")


def shipped_matches_installed() -> bool:
    prov = json.loads((catalog_dir() / "provenance.json").read_text())
    return all(metadata.version(p) == v for p, v in prov["versions"].items())


def test_pair_count_recomputed_from_sources(fresh) -> None:
    _, prov, df = fresh
    prices = raw_prices()["compute"]["ec2_linux"]
    expected = {(t, r) for t, r in raw_offerings() if prices.get(t, {}).get(r, 0.0) > 0}
    got = set(zip(df["instance_type"], df["region"]))
    assert got == expected
    assert len(df) == len(expected) == prov["counts"]["rows"]
    assert prov["counts"]["instance_types"] == len({t for t, _ in expected})
    assert prov["counts"]["regions"] == len({r for _, r in expected})
    # the ballpark at the packages this was written against (moto 5.2.5, libcloud 3.9.1): 11,212 / 849 / 30
    assert 10_000 < len(expected) < 13_000


@pytest.mark.skipif(not shipped_matches_installed(), reason="installed moto/libcloud differ from the shipped build")
def test_shipped_catalog_is_the_build_of_the_installed_sources(fresh) -> None:
    """The committed catalog is exactly what the installed sources give.  CSV and docs byte for byte; the Parquet
    file by content (its bytes also carry the pyarrow version that wrote it, which CI may not share)."""
    import pandas.testing as pdt

    out, prov, df = fresh
    for name in ("aws.csv", "SCHEMA.md"):
        assert (out / name).read_bytes() == (catalog_dir() / name).read_bytes(), name
    pdt.assert_frame_equal(df, read_parquet(catalog_dir() / "aws.parquet"))
    shipped = json.loads((catalog_dir() / "provenance.json").read_text())
    for doc in (prov, shipped):
        doc["files"].pop("aws.parquet")
    assert prov == shipped


def test_build_twice_is_byte_identical(fresh, tmp_path) -> None:
    out, _, _ = fresh
    build(tmp_path)
    for name in ("aws.parquet", "aws.csv", "provenance.json", "SCHEMA.md"):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name
    assert not list(tmp_path.glob(".*.tmp")), "temp files left behind"


def test_schema_columns_and_dtypes(fresh) -> None:
    _, _, df = fresh
    assert tuple(df.columns) == COLUMN_NAMES
    assert {c: str(df[c].dtype) for c in df.columns} == dict(DTYPES)


def test_csv_twin_equals_parquet(fresh) -> None:
    """The human-readable CSV holds the same values (read back through the user-catalog reader)."""
    from ccdsl.catalog.user import read_user_catalog

    out, _, df = fresh
    csv_df = read_user_catalog(out / "aws.csv")
    import pandas.testing as pdt

    pdt.assert_frame_equal(csv_df, df)


def _net(rating: str) -> float:
    words = {"Very Low": 0.05, "Low": 0.1, "Low to Moderate": 0.3, "Moderate": 0.5, "High": 1.0}
    if rating in words:
        return words[rating]
    text = rating.removeprefix("Up to ").removesuffix(" Gigabit")
    mult, _, num = text.rpartition("x ")
    return float(num) * (float(mult) if mult else 1.0)


def test_sample_rows_match_raw_sources_field_by_field(fresh) -> None:
    _, _, df = fresh
    specs, prices = raw_specs(), raw_prices()["compute"]["ec2_linux"]
    procs = raw_processors()
    rng = random.Random(20260324)
    sample = df.iloc[sorted(rng.sample(range(len(df)), 150))]
    # plus every accelerator row of one region, so GPU/Neuron/FPGA paths are always covered
    import pandas as pd

    sample = pd.concat([sample, df[(df["accelerator_count"] > 0) & (df["region"] == "us-east-1")]])
    for row in sample.to_dict("records"):
        s = specs[row["instance_type"]]
        assert row["provider"] == "aws"
        assert row["price_per_hour"] == prices[row["instance_type"]][row["region"]]
        assert math.isnan(row["spot_price_per_hour"])
        assert row["vcpus"] == s["VCpuInfo"]["DefaultVCpus"]
        assert row["cores"] == s["VCpuInfo"].get("DefaultCores", s["VCpuInfo"]["DefaultVCpus"])
        assert row["memory_gib"] == s["MemoryInfo"]["SizeInMiB"] / 1024
        assert row["family"] == row["instance_type"].split(".")[0]
        assert row["cpu_manufacturer"] == s["ProcessorInfo"]["Manufacturer"]
        archs = s["ProcessorInfo"]["SupportedArchitectures"]
        assert row["cpu_architecture"] == ("x86_64" if any("x86_64" in a for a in archs) else "arm64")
        clock = s["ProcessorInfo"].get("SustainedClockSpeedInGhz")
        assert (math.isnan(row["clock_ghz"]) and clock is None) or row["clock_ghz"] == clock
        assert row["network_performance"] == s["NetworkInfo"]["NetworkPerformance"]
        assert row["network_gbps"] == _net(s["NetworkInfo"]["NetworkPerformance"])
        assert row["efa"] == s["NetworkInfo"].get("EfaSupported", False)
        assert row["spot"] == ("spot" in s["SupportedUsageClasses"])
        assert row["burstable"] == s["BurstablePerformanceSupported"]
        assert row["bare_metal"] == s["BareMetal"]
        disks = (s.get("InstanceStorageInfo") or {}).get("Disks") or []
        assert row["storage_type"] == (disks[0]["Type"] if disks else "ebs")
        total_gb = sum(d["Count"] * d["SizeInGB"] for d in disks)
        assert row["storage_gib"] == pytest.approx(total_gb * 1e9 / 2**30, abs=1e-3)
        # accelerators: GPU first, then Neuron devices (which include inf1/inf2's Inferentia), then the rest
        groups = [(s.get(sec) or {}).get(key) for sec, key in
                  (("GpuInfo", "Gpus"), ("NeuronInfo", "NeuronDevices"), ("InferenceAcceleratorInfo", "Accelerators"),
                   ("FpgaInfo", "Fpgas"), ("MediaAcceleratorInfo", "Accelerators"))]
        group = next((g for g in groups if g), None)
        if group is None:
            assert row["accelerator_count"] == 0 and row["accelerator_model"] == "" and row["accelerator_type"] == ""
        else:
            assert row["accelerator_count"] == sum(g["Count"] for g in group)
            assert row["accelerator_memory_gib"] == group[0]["MemoryInfo"]["SizeInMiB"] / 1024
            assert row["accelerator_memory_total_gib"] == row["accelerator_count"] * row["accelerator_memory_gib"]
            assert row["accelerator_model"] in (group[0]["Name"], group[0]["Name"].replace("Qualcomm ", ""))
            assert row["accelerator_type"] in ("GPU", "NPU", "FPGA")
        # the processor model came from libcloud's string for this type (through the reviewed facts)
        from ccdsl.catalog.facts import FAMILY_PROCESSORS, PROCESSOR_STRINGS

        if row["family"] not in FAMILY_PROCESSORS and row["instance_type"] in procs:
            fact = PROCESSOR_STRINGS[procs[row["instance_type"]]]
            assert row["cpu_model"] == (fact.model if fact else "")


def test_known_rows() -> None:
    """A few facts a person checked against AWS's pages, on the shipped catalog."""
    from ccdsl.catalog import load

    df = load(user=False)
    g6e = df[(df.instance_type == "g6e.12xlarge") & (df.region == "us-east-1")].iloc[0]
    assert (g6e.accelerator_count, g6e.accelerator_model, g6e.accelerator_architecture,
            g6e.accelerator_manufacturer, g6e.accelerator_type) == (4, "L40S", "Ada Lovelace", "NVIDIA", "GPU")
    p5 = df[df.instance_type == "p5.48xlarge"].iloc[0]
    assert (p5.accelerator_model, p5.accelerator_architecture, p5.efa, p5.network_gbps) == ("H100", "Hopper", True,
                                                                                               3200.0)
    inf2 = df[df.instance_type == "inf2.xlarge"].iloc[0]
    assert (inf2.accelerator_type, inf2.accelerator_model, inf2.accelerator_count) == ("NPU", "Inferentia2", 1)
    m7g = df[df.instance_type == "m7g.large"].iloc[0]
    assert (m7g.cpu_manufacturer, m7g.cpu_microarchitecture, m7g.cpu_architecture) == ("AWS", "Graviton3", "arm64")
    c7a = df[df.instance_type == "c7a.large"].iloc[0]
    assert (c7a.cpu_manufacturer, c7a.cpu_microarchitecture) == ("AMD", "Zen 4")
    t3 = df[df.instance_type == "t3.micro"].iloc[0]
    assert t3.burstable and t3.network_gbps == 5.0 and t3.storage_type == "ebs"


def test_build_without_sources_fails_cleanly(tmp_path) -> None:
    """With moto missing, `catalog build` is a ccdsl error with the install hint, and writes nothing."""
    code = ("import sys; sys.modules['moto'] = None\n"
            "from ccdsl.cli import main\n"
            f"sys.exit(main(['catalog', 'build', '--output', {str(tmp_path)!r}]))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "pip install 'ccdsl[build]'" in proc.stderr
    assert list(tmp_path.iterdir()) == []
