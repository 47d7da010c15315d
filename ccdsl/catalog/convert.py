"""One DescribeInstanceTypes entry -> the catalog's per-type facts.

The same function serves the shipped build (moto's recorded DescribeInstanceTypes output) and ``catalog refresh``
(the live API answer has the same shape), so a type means the same thing whichever way it arrived.  Every
model name is translated through the reviewed table in :mod:`ccdsl.catalog.facts`; a name that table does not
know stops the build with a :class:`CatalogError` instead of landing in the catalog unmapped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from ccdsl import burstable, taxonomy
from ccdsl.catalog.facts import ACCELERATORS, FAMILY_PROCESSORS, NETWORK_WORDS, PROCESSOR_STRINGS, ProcessorFact
from ccdsl.errors import CatalogError

_FACTS_HINT = "add a reviewed line to ccdsl/catalog/facts.py (and a taxonomy node if the model is new)"

# Accelerator sections in precedence order.  NeuronInfo comes before InferenceAcceleratorInfo because inf1/inf2
# report the same Inferentia chips in both; only one is counted.
_ACCEL_SECTIONS = (
    ("GpuInfo", "Gpus"),
    ("NeuronInfo", "NeuronDevices"),
    ("InferenceAcceleratorInfo", "Accelerators"),
    ("FpgaInfo", "Fpgas"),
    ("MediaAcceleratorInfo", "Accelerators"),
)

_NETWORK_RE = re.compile(r"^(?:Up to )?(?:(\d+)x )?(\d+(?:\.\d+)?) Gigabit$")

GB_PER_GIB = 2**30 / 1e9


def family_of(instance_type: str) -> str:
    """``g4dn.xlarge`` -> ``g4dn``; ``mac2-m2pro.metal`` -> ``mac2-m2pro``."""
    return instance_type.split(".", 1)[0]


def network_gbps(rating: str) -> float:
    """Peak Gbit/s of an EC2 network rating: "Up to 25 Gigabit" -> 25, "4x 100 Gigabit" -> 400, "High" -> 1.0."""
    rating = (rating or "").strip()
    if rating in NETWORK_WORDS:
        return NETWORK_WORDS[rating]
    m = _NETWORK_RE.match(rating)
    if not m:
        raise CatalogError(f"unknown network performance rating {rating!r}",
                           hint="add it to NETWORK_WORDS in ccdsl/catalog/facts.py")
    return float(m.group(1) or 1) * float(m.group(2))


def known_processors(strings: Mapping[str, str]) -> dict[str, ProcessorFact | None]:
    """libcloud's type -> physicalProcessor table translated through the fact table; unmapped strings fail."""
    out: dict[str, ProcessorFact | None] = {}
    for t, text in strings.items():
        if text not in PROCESSOR_STRINGS:
            raise CatalogError(f"processor model {text!r} (instance type {t}) is not in the fact table",
                               hint=_FACTS_HINT)
        out[t] = PROCESSOR_STRINGS[text]
    return out


def processor_fact(instance_type: str, known: Mapping[str, ProcessorFact | None],
                   vcpus: Mapping[str, int] | None = None) -> ProcessorFact | None:
    """The reviewed processor fact for a type, given the facts ``known`` per type.

    Order: the family table (facts that libcloud lacks or states vaguely), then the type's own entry, then — for
    types the table does not list, which are the ``.metal`` variants — the entry of the family's largest listed
    type: a bare-metal type is the whole host whose biggest virtual slice the source does describe.
    """
    family = family_of(instance_type)
    if family in FAMILY_PROCESSORS:
        return FAMILY_PROCESSORS[family]
    if instance_type in known:
        return known[instance_type]
    siblings = [t for t in known if family_of(t) == family]
    if not siblings:
        return None
    size = vcpus or {}
    return known[max(siblings, key=lambda t: (size.get(t, 0), t))]


def _accelerator(spec: Mapping[str, Any]) -> dict[str, Any]:
    none = {"accelerator_count": 0, "accelerator_type": "", "accelerator_manufacturer": "",
            "accelerator_model": "", "accelerator_architecture": "", "accelerator_memory_gib": 0.0,
            "accelerator_memory_usable_gib": 0.0, "accelerator_memory_total_gib": 0.0}
    for section, key in _ACCEL_SECTIONS:
        entries = (spec.get(section) or {}).get(key) or []
        if not entries:
            continue
        names = {(e.get("Manufacturer", ""), e.get("Name", "")) for e in entries}
        if len(names) > 1:
            raise CatalogError(f"{spec['InstanceType']}: mixed accelerators {sorted(names)} cannot be one row")
        manufacturer, name = names.pop()
        fact = ACCELERATORS.get((section, manufacturer, name))
        if fact is None:
            raise CatalogError(f"accelerator {manufacturer} {name!r} ({section}, instance type "
                               f"{spec['InstanceType']}) is not in the fact table", hint=_FACTS_HINT)
        node = taxonomy.node("accelerator", fact.node)
        levels = {a.level: a.label for a in taxonomy.ancestors(node)}
        count = sum(int(e.get("Count", 0)) for e in entries)
        usable = entries[0].get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024
        per = taxonomy.sold_memory(node.label, usable)  # what the maker sells: what contracts compare
        if per is None:
            raise CatalogError(f"accelerator {node.label} with {usable:g} GiB (instance type {spec['InstanceType']}) "
                               "has no entry in the memory table (the memory its maker sells it with)",
                               hint="add it to ACCELERATOR_MEMORY in ccdsl/taxonomy.py with its datasheet source")
        return {"accelerator_count": count, "accelerator_type": fact.kind,
                "accelerator_manufacturer": levels.get("manufacturer", ""), "accelerator_model": node.label,
                "accelerator_architecture": levels.get("architecture", ""), "accelerator_memory_gib": per,
                "accelerator_memory_usable_gib": usable, "accelerator_memory_total_gib": count * per}
    return none


def _cpu_architecture(archs: list[str]) -> str:
    if any(a.startswith("x86_64") for a in archs):
        return "x86_64"
    if any(a.startswith("arm64") for a in archs):
        return "arm64"
    raise CatalogError(f"unknown processor architectures {archs}")


def single_thread(spec: Mapping[str, Any]) -> bool:
    """Whether an instance of the type can run one thread per core (``smt => false``): it does already, or a launch
    may say ``CpuOptions.ThreadsPerCore = 1`` -- not on bare metal, where EC2 takes no CPU options."""
    vcpu = spec.get("VCpuInfo") or {}
    if int(vcpu.get("DefaultThreadsPerCore", 1)) <= 1:
        return True
    return 1 in vcpu.get("ValidThreadsPerCore", []) and not spec.get("BareMetal", False)


def type_facts(spec: Mapping[str, Any], processor: ProcessorFact | None) -> dict[str, Any]:
    """Every catalog column except provider, region and price, for one DescribeInstanceTypes entry."""
    t = spec["InstanceType"]
    cpu = spec.get("ProcessorInfo", {})
    manufacturer = cpu.get("Manufacturer", "")
    if processor is not None and processor.manufacturer != manufacturer:
        raise CatalogError(f"{t}: fact table says {processor.manufacturer} ({processor.model}) but the source "
                           f"says {manufacturer}", hint=_FACTS_HINT)
    micro = ""
    if processor is not None:
        n = taxonomy.node("processor", processor.node)
        micro = n.label if n.level == "microarchitecture" else ""
    vcpu = spec["VCpuInfo"]
    net = spec.get("NetworkInfo", {})
    storage = spec.get("InstanceStorageInfo") or {}
    disks = storage.get("Disks") or []
    clock = cpu.get("SustainedClockSpeedInGhz")
    rating = net.get("NetworkPerformance", "")
    return {
        "instance_type": t,
        "family": family_of(t),
        "vcpus": int(vcpu["DefaultVCpus"]),
        "cores": int(vcpu.get("DefaultCores", vcpu["DefaultVCpus"])),
        "single_thread": single_thread(spec),
        "memory_gib": spec["MemoryInfo"]["SizeInMiB"] / 1024,
        "cpu_manufacturer": manufacturer,
        "cpu_model": processor.model if processor else "",
        "cpu_microarchitecture": micro,
        "cpu_architecture": _cpu_architecture(cpu.get("SupportedArchitectures", [])),
        "clock_ghz": float(clock) if clock is not None else math.nan,
        **_accelerator(spec),
        "network_performance": rating,
        "network_gbps": network_gbps(rating),
        "efa": bool(net.get("EfaSupported", False)),
        "efa_interfaces": int((net.get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0))
        if net.get("EfaSupported") else 0,
        "network_cards": int(net.get("MaximumNetworkCards", 1)),
        "storage_type": disks[0]["Type"] if disks else "ebs",
        "storage_gib": round(storage.get("TotalSizeInGB", 0) * 1e9 / 2**30, 3) if disks else 0.0,
        "spot": "spot" in spec.get("SupportedUsageClasses", []),
        "burstable": bool(spec.get("BurstablePerformanceSupported", False)) or burstable.is_burstable(t),
        "bare_metal": bool(spec.get("BareMetal", False)),
    }
