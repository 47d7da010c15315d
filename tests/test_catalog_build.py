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

from catalog_sources import raw_karpenter, raw_offerings, raw_prices, raw_processors, raw_specs
from ccdsl._resources import catalog_dir
from ccdsl.catalog.build import build
from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES
from ccdsl.catalog.store import read_parquet


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A catalog built now from the installed packages, and its provenance."""
    out = tmp_path_factory.mktemp("catalog")
    prov = build(out)
    return out, prov, read_parquet(out / "aws.parquet")


def shipped_matches_installed() -> bool:
    prov = json.loads((catalog_dir() / "provenance.json").read_text())
    return all(metadata.version(p) == v for p, v in prov["versions"].items())


def expected_pairs() -> set[tuple[str, str]]:
    """moto's offered pairs, plus GovCloud's: there a type Karpenter prices counts as offered (with moto specs)."""
    moto = raw_offerings()
    regions = {r for _, r in moto}
    specs = raw_specs()
    gov = {(t, r) for r, by in raw_karpenter().items() if r not in regions for t, p in by.items() if p > 0}
    return {(t, r) for t, r in moto | gov if t in specs}


def expected_price(t: str, r: str) -> float:
    k = raw_karpenter().get(r, {}).get(t, 0.0)
    if k > 0:
        return k
    lib = raw_prices()["compute"]["ec2_linux"].get(t, {}).get(r, 0.0)
    return lib if lib > 0 else math.nan


def test_pair_count_recomputed_from_sources(fresh) -> None:
    """Every offered pair is a row, priced or not."""
    _, prov, df = fresh
    expected = expected_pairs()
    got = set(zip(df["instance_type"], df["region"]))
    assert got == expected
    assert len(df) == len(expected) == prov["counts"]["rows"]
    assert prov["counts"]["instance_types"] == len({t for t, _ in expected})
    assert prov["counts"]["regions"] == len({r for _, r in expected})
    # the issue's numbers at the packages this was written against (moto 5.2.5, libcloud 3.9.1): 21,255 offered
    # pairs in 30 regions, plus GovCloud
    assert 21_000 < len(expected) < 24_000


def test_at_least_99_percent_of_motos_offered_pairs_are_rows(fresh) -> None:
    _, prov, df = fresh
    moto = raw_offerings()
    got = set(zip(df["instance_type"], df["region"]))
    assert len(moto & got) / len(moto) >= 0.99
    assert prov["counts"]["moto_offered_pairs_in_catalog"] == len(moto & got)


def test_prices_karpenter_first_then_libcloud_else_unknown(fresh) -> None:
    """Every row's price, source and date, recomputed from the raw files: Karpenter wins, Libcloud's 0.0 is
    unknown (NaN, no source, no date), never free."""
    _, _, df = fresh
    import datetime as dt

    lib_date = dt.datetime.fromtimestamp(int(raw_prices()["updated"]), dt.timezone.utc).date().isoformat()
    karpenter = raw_karpenter()
    for t, r, price, source, date in zip(df["instance_type"], df["region"], df["price_per_hour"],
                                         df["price_source"], df["price_date"]):
        want = expected_price(t, r)
        if math.isnan(want):
            assert math.isnan(price) and source == "" and date == "", (t, r)
        elif karpenter.get(r, {}).get(t, 0.0) > 0:
            assert (price, source, date) == (want, "karpenter@6fc13b52", "2026-07-20"), (t, r)
        else:
            assert (price, source, date) == (want, "libcloud-3.9.1", lib_date), (t, r)
    assert not (df["price_per_hour"] == 0).any()


def test_sentinel_prices_of_the_issue(fresh) -> None:
    """us-east-1 prices equal Karpenter's table (AWS's 2025 GPU price cuts are in); g5.xlarge in eu-west-1 is
    offered, unpriced; GovCloud rows exist."""
    _, _, df = fresh
    at = df.set_index(["region", "instance_type"])
    for t, p in {"p5.48xlarge": 55.04, "p4d.24xlarge": 21.957642, "p4de.24xlarge": 27.44705, "g5.xlarge": 1.006,
                 "g6.xlarge": 0.8048, "t3.xlarge": 0.1664, "m7i.large": 0.1008}.items():
        assert at.loc[("us-east-1", t), "price_per_hour"] == p, t
    for t in ("g5.xlarge", "t3.xlarge", "m7i.large"):
        row = at.loc[("eu-west-1", t)]
        assert math.isnan(row["price_per_hour"]) and row["price_source"] == "", t
    gov = df[df["region"].str.startswith("us-gov-")]
    assert set(gov["region"]) == {"us-gov-east-1", "us-gov-west-1"}
    assert (gov["price_source"] == "karpenter@6fc13b52").all()
    assert len(gov) == len({(t, r) for t, r in expected_pairs() if r.startswith("us-gov-")})


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
    assert not (tmp_path / "sources").exists()  # the vendored sources are read, never rewritten
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
    specs = raw_specs()
    procs = raw_processors()
    rng = random.Random(20260324)
    sample = df.iloc[sorted(rng.sample(range(len(df)), 150))]
    # plus every accelerator row of one region, so GPU/Neuron/FPGA paths are always covered
    import pandas as pd

    sample = pd.concat([sample, df[(df["accelerator_count"] > 0) & (df["region"] == "us-east-1")],
                        df[df["bare_metal"] & (df["region"] == "us-east-1")]])  # and the bare-metal SMT rule
    for row in sample.to_dict("records"):
        s = specs[row["instance_type"]]
        assert row["provider"] == "aws"
        want = expected_price(row["instance_type"], row["region"])
        assert row["price_per_hour"] == want or (math.isnan(want) and math.isnan(row["price_per_hour"]))
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
        efa_info = s["NetworkInfo"].get("EfaInfo") or {}
        assert row["efa_interfaces"] == (efa_info.get("MaximumEfaInterfaces", 0) if row["efa"] else 0)
        assert row["network_cards"] == s["NetworkInfo"].get("MaximumNetworkCards", 1)
        threads = s["VCpuInfo"].get("DefaultThreadsPerCore", 1)
        assert row["single_thread"] == (threads == 1 or (1 in s["VCpuInfo"].get("ValidThreadsPerCore", [])
                                                          and not s["BareMetal"]))
        assert row["spot"] == ("spot" in s["SupportedUsageClasses"])
        assert row["burstable"] == (s["BurstablePerformanceSupported"] or s["InstanceType"] == "t1.micro")
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
            # EC2's figure is the usable memory; the sold one is the datasheet's, never less (issue 20.2)
            assert row["accelerator_memory_usable_gib"] == group[0]["MemoryInfo"]["SizeInMiB"] / 1024
            assert row["accelerator_memory_gib"] >= row["accelerator_memory_usable_gib"] or \
                row["accelerator_model"] == "Trainium2"  # EC2 reports 512 GiB per Trainium2; AWS sells 96 GiB
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
    assert df[df.instance_type == "t1.micro"].burstable.all()  # previous generation, burstable without credits


def test_accelerator_memory_is_the_memory_as_sold_with_the_usable_figure_beside_it() -> None:
    """Issue 20.2: a 24 GB card is 24 GiB to a contract; EC2's usable 22,888 MiB stays in its own column."""
    from ccdsl.catalog import load

    df = load(user=False)
    us = df[df.region == "us-east-1"].set_index("instance_type")
    for t, sold, usable in (("g6.xlarge", 24.0, 22888 / 1024), ("g5.xlarge", 24.0, 22888 / 1024),
                            ("g6e.xlarge", 48.0, 45776 / 1024), ("g6f.large", 3.0, 22888 / 1024 / 8),
                            ("p4d.24xlarge", 40.0, 40.0), ("g4dn.xlarge", 16.0, 16.0)):
        assert (us.loc[t, "accelerator_memory_gib"], us.loc[t, "accelerator_memory_usable_gib"]) == (sold, usable), t
    assert us.loc["g6.12xlarge", "accelerator_memory_total_gib"] == 4 * 24.0
    gpus = df[df.accelerator_model != ""]
    assert (gpus.accelerator_memory_gib > 0).all()


def test_an_accelerator_without_a_memory_entry_fails_the_build() -> None:
    from ccdsl.catalog.convert import type_facts
    from ccdsl.errors import CatalogError

    spec = {"InstanceType": "g6.xlarge", "VCpuInfo": {"DefaultVCpus": 4}, "MemoryInfo": {"SizeInMiB": 16384},
            "ProcessorInfo": {"SupportedArchitectures": ["x86_64"]},
            "NetworkInfo": {"NetworkPerformance": "Up to 10 Gigabit"},
            "GpuInfo": {"Gpus": [{"Name": "L4", "Manufacturer": "NVIDIA", "Count": 1,
                                  "MemoryInfo": {"SizeInMiB": 20000}}]}}
    with pytest.raises(CatalogError, match="no entry in the memory table") as info:
        type_facts(spec, None)
    assert "ACCELERATOR_MEMORY" in info.value.hint
    spec["GpuInfo"]["Gpus"][0]["MemoryInfo"]["SizeInMiB"] = 22888
    assert type_facts(spec, None)["accelerator_memory_gib"] == 24.0


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
