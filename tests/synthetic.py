"""Synthetic instance catalogs with the real schema, for resolver tests and the resolver benchmark.

Rows look like EC2's (families × sizes × regions, GPUs with real taxonomy labels, prices rounded to 1/10000 USD)
but are generated from a seed, so tests can build small catalogs where brute force is cheap and the benchmark can
build 1M-row ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ccdsl.catalog.schema import COLUMN_NAMES, DTYPES

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-south-1", "sa-east-1", "eu-central-1")
GPUS = (  # manufacturer, architecture, model, memory GiB, price per GPU-hour
    ("NVIDIA", "Turing", "T4", 16.0, 0.35),
    ("NVIDIA", "Ampere", "A10G", 24.0, 0.75),
    ("NVIDIA", "Ada Lovelace", "L4", 24.0, 0.55),
    ("NVIDIA", "Ada Lovelace", "L40S", 48.0, 1.4),
    ("NVIDIA", "Ampere", "A100", 40.0, 3.0),
    ("NVIDIA", "Hopper", "H100", 80.0, 6.0),
    ("NVIDIA", "Volta", "V100", 16.0, 2.1),
)
CPUS = (  # manufacturer, microarchitecture, architecture
    ("Intel", "Ice Lake", "x86_64"), ("Intel", "Sapphire Rapids", "x86_64"), ("AMD", "Zen 3", "x86_64"),
    ("AMD", "Zen 4", "x86_64"), ("AWS", "Graviton3", "arm64"), ("AWS", "Graviton2", "arm64"),
)
SIZES = (1, 2, 4, 8, 16, 32, 48, 64, 96, 192)


def catalog(rows: int = 1000, seed: int = 0, regions: tuple[str, ...] = REGIONS, extra_providers: bool = False,
            unknown_fraction: float = 0.02, unpriced_fraction: float = 0.0,
            spot: SpotData | None = None, burstable: bool = False) -> pd.DataFrame:
    """A catalog of about ``rows`` rows over ``regions`` (types × regions), schema columns in order.
    ``unpriced_fraction`` of the AWS rows have an unknown price (NaN, no source), as offered pairs no source
    prices.  ``spot`` adds synthetic spot prices and interruption buckets (:func:`with_spot`).  ``burstable``: every
    fourth type is burstable (no random draw: the other columns stay what they were)."""
    rng = np.random.default_rng(seed)
    n_types = max(1, rows // len(regions))
    t = np.arange(n_types)
    vcpus = rng.choice(SIZES, n_types)
    ratio = rng.choice([1.0, 2.0, 4.0, 8.0], n_types)
    memory = vcpus * ratio
    cpu = rng.integers(0, len(CPUS), n_types)
    has_gpu = rng.random(n_types) < 0.3
    gpu = rng.integers(0, len(GPUS), n_types)
    gpu_count = np.where(has_gpu, rng.choice([1, 2, 4, 8], n_types), 0)
    gpu_mem = np.where(has_gpu, np.array([g[3] for g in GPUS])[gpu], 0.0)
    gpu_price = np.where(has_gpu, np.array([g[4] for g in GPUS])[gpu] * gpu_count, 0.0)
    base = 0.02 * vcpus + 0.004 * memory + gpu_price
    network = rng.choice([5.0, 10.0, 12.5, 25.0, 50.0, 100.0], n_types)
    network = np.where(rng.random(n_types) < unknown_fraction, np.nan, network)
    storage = np.where(rng.random(n_types) < 0.4, rng.choice([75.0, 150.0, 900.0, 1900.0], n_types), 0.0)
    family = np.array([f"f{i // 7}" for i in t], dtype=object)
    # every fifth type has EFA, one in ten four interfaces; no random draw, so the other columns stay what they were
    efa = t % 5 == 2
    efa_interfaces = np.where(efa, np.where(t % 10 == 2, 4, 1), 0)
    single_thread = t % 3 != 1  # two in three types can run one thread per core (no random draw either)
    itype = np.array([f"f{i // 7}.s{i % 7}x{int(v)}" for i, v in zip(t, vcpus)], dtype=object)
    frames = []
    for r, region in enumerate(regions):
        factor = 1.0 + 0.07 * r
        price = np.round(base * factor * rng.uniform(0.9, 1.1, n_types), 4)
        price = np.maximum(price, 0.0001)
        # drawn only when asked for, so that catalogs without unpriced rows stay what they were
        unpriced = rng.random(n_types) < unpriced_fraction if unpriced_fraction else np.zeros(n_types, dtype=bool)
        price = np.where(unpriced, np.nan, price)
        offered = rng.random(n_types) < 0.9
        frames.append(pd.DataFrame({
            "provider": "aws", "region": region, "instance_type": itype, "family": family,
            "vcpus": vcpus, "cores": np.maximum(vcpus // 2, 1), "memory_gib": memory,
            "cpu_manufacturer": [CPUS[c][0] for c in cpu], "cpu_model": [f"{CPUS[c][1]} model" for c in cpu],
            "cpu_microarchitecture": [CPUS[c][1] for c in cpu], "cpu_architecture": [CPUS[c][2] for c in cpu],
            "clock_ghz": 3.0, "accelerator_count": gpu_count,
            "accelerator_type": np.where(has_gpu, "GPU", ""),
            "accelerator_manufacturer": np.where(has_gpu, [GPUS[g][0] for g in gpu], ""),
            "accelerator_model": np.where(has_gpu, [GPUS[g][2] for g in gpu], ""),
            "accelerator_architecture": np.where(has_gpu, [GPUS[g][1] for g in gpu], ""),
            "accelerator_memory_gib": gpu_mem, "accelerator_memory_total_gib": gpu_mem * gpu_count,
            "network_performance": [f"{x:g} Gigabit" for x in network], "network_gbps": network,
            "single_thread": single_thread,
            "efa": efa, "efa_interfaces": efa_interfaces, "network_cards": np.where(efa_interfaces > 1, 4, 1),
            "storage_type": np.where(storage > 0, "ssd", "ebs"), "storage_gib": storage,
            "spot": True, "burstable": (t % 4 == 1) if burstable else False, "bare_metal": False,
            "price_per_hour": price,
            "price_source": np.where(unpriced, "", "synthetic"), "price_date": np.where(unpriced, "", "2026-07-20"),
        })[offered])
    if extra_providers:  # ssh hosts: node1 one host, node2 a class of 3 hosts, node3 one host like node2
        frames.append(pd.DataFrame({
            "provider": ["local", "ssh", "ssh", "ssh"], "region": ["local", "onprem", "onprem", "onprem"],
            "instance_type": ["localhost", "node1", "node2", "node3"], "family": "", "vcpus": [4, 16, 32, 32],
            "max_nodes": [np.nan, 1.0, 3.0, 1.0],
            "cores": [2, 8, 16, 16], "memory_gib": [16.0, 64.0, 128.0, 128.0], "cpu_manufacturer": "Intel",
            "cpu_model": "",
            "cpu_microarchitecture": "", "cpu_architecture": "x86_64", "clock_ghz": np.nan,
            "accelerator_count": 0, "accelerator_type": "", "accelerator_manufacturer": "",
            "accelerator_model": "", "accelerator_architecture": "", "accelerator_memory_gib": 0.0,
            "accelerator_memory_total_gib": 0.0, "network_performance": "", "network_gbps": np.nan,
            "efa": False, "storage_type": "ssd", "storage_gib": 100.0, "spot": False, "burstable": False,
            "bare_metal": True, "price_per_hour": 0.0}))
    df = pd.concat(frames, ignore_index=True)
    for name in COLUMN_NAMES:  # columns the schema gained later: unknown
        if name not in df.columns:
            df[name] = {"string": "", "bool": False, "int64": 0}.get(DTYPES[name], np.nan)
    df = df[list(COLUMN_NAMES)]
    return with_spot(df, spot, seed) if spot is not None else df


@dataclass(frozen=True)
class SpotData:
    """How synthetic spot data looks: ``unpriced`` of the spot-capable AWS rows have no spot price, ``unsupported``
    of the AWS types do not support spot, ``unknown_interruption`` have no advisor bucket."""

    unpriced: float = 0.1
    unsupported: float = 0.1
    unknown_interruption: float = 0.1
    date: str = "2026-11-20T09:00:00+00:00"


BUCKETS = (0.05, 0.1, 0.15, 0.2, 1.0)  # the spot advisor's interruption-rate buckets (upper bounds)


def with_spot(df: pd.DataFrame, spot: SpotData, seed: int = 0) -> pd.DataFrame:
    """``df`` with SYNTHETIC spot columns (not real prices): each spot-capable AWS row gets a spot price of 20–80%
    of its on-demand one (the discount drawn per family and region, ±5% per row, so the cheapest spot type is
    often not the cheapest on-demand type; a row without an on-demand price is priced by its size), one to three
    zones, and an interruption bucket.  Its own random stream: the on-demand columns stay as they were."""
    rng = np.random.default_rng(10_000 + seed)
    df = df.copy()
    n = len(df)
    aws = (df["provider"] == "aws").to_numpy()
    types = df["instance_type"].astype(str).to_numpy()
    unsupported_types = {t for t in sorted(set(types[aws])) if rng.random() < spot.unsupported}
    supports = aws & ~np.isin(types, sorted(unsupported_types))
    od = df["price_per_hour"].to_numpy(dtype="float64", na_value=np.nan)
    size = 0.04 * df["vcpus"].to_numpy(dtype="float64") + 0.005 * df["memory_gib"].to_numpy(dtype="float64")
    base = np.where(np.isnan(od), size, od)  # an unpriced on-demand row may still have a spot price
    pools = pd.factorize(df["family"].astype(str) + "|" + df["region"].astype(str))[0]
    discount = rng.uniform(0.2, 0.8, int(pools.max()) + 1 if n else 0)[pools] * rng.uniform(0.95, 1.05, n)
    price = np.round(np.maximum(base * discount, 0.0001), 4)
    priced = supports & (rng.random(n) >= spot.unpriced)
    zones = []
    for region, p, ok, k in zip(df["region"].astype(str), price, priced, rng.integers(1, 4, n)):
        zones.append(" ".join(f"{region}{z}={p * (1 + 0.1 * i):.4f}" for i, z in enumerate("abc"[:k])) if ok else "")
    bucket = np.array(BUCKETS)[rng.integers(0, len(BUCKETS), n)]
    df["spot"] = supports
    df["spot_price_per_hour"] = np.where(priced, price, np.nan)
    df["spot_zones"] = zones
    df["spot_zone"] = [z.split("=", 1)[0] if z else "" for z in zones]
    df["spot_price_source"] = np.where(priced, "synthetic-spot", "")
    df["spot_price_date"] = np.where(priced, spot.date, "")
    df["spot_interruption"] = np.where(supports & (rng.random(n) >= spot.unknown_interruption), bucket, np.nan)
    return df
