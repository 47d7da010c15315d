"""The reviewed fact table: what the sources' model strings mean in the taxonomy.

The sources name processors and accelerators in their own words ("Intel Xeon 8375C (Ice Lake)", "AWS Graviton2
Processor", a GPU called "L40S").  The catalog stores taxonomy *labels*, so every string that occurs in the sources
must be mapped here by a person who checked it.  ``tests/test_catalog_facts.py`` scans the installed sources and
fails when a new, unmapped string appears: a new EC2 generation then needs one reviewed line here, never a guess
made silently by the build.

This module is imported by :mod:`ccdsl.taxonomy` (to register the processor models as leaves of the processor
tree), so it must stay dependency-free and cheap.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessorFact:
    """What a processor string means.  ``model`` is the label stored in ``cpu_model``; ``node`` the taxonomy node
    (a microarchitecture, or the manufacturer's group when the source does not pin one down)."""

    model: str
    node: str
    manufacturer: str  # taxonomy label: Intel | AMD | AWS | Apple


def _p(model: str, node: str, manufacturer: str) -> ProcessorFact:
    return ProcessorFact(model, node, manufacturer)


# libcloud's ``physicalProcessor`` strings (libcloud/compute/constants/ec2_instance_types.py) -> facts.
# Microarchitectures from Intel ARK / AMD / AWS documentation of the named part numbers.
PROCESSOR_STRINGS: dict[str, ProcessorFact | None] = {
    "AWS Graviton Processor": _p("AWS Graviton", "Graviton1", "AWS"),
    "AWS Graviton2 Processor": _p("AWS Graviton2", "Graviton2", "AWS"),
    "AWS Graviton3 Processor": _p("AWS Graviton3", "Graviton3", "AWS"),
    "AWS Graviton4 Processor": _p("AWS Graviton4", "Graviton4", "AWS"),
    "AMD EPYC 7571": _p("AMD EPYC 7571", "Zen1", "AMD"),  # Naples
    "AMD EPYC 7R32": _p("AMD EPYC 7R32", "Zen2", "AMD"),  # Rome
    "AMD EPYC 7R13 Processor": _p("AMD EPYC 7R13", "Zen3", "AMD"),  # Milan
    "AMD EPYC 9R14 Processor": _p("AMD EPYC 9R14", "Zen4", "AMD"),  # Genoa
    "Intel Xeon E5-2650": _p("Intel Xeon E5-2650", "SandyBridge", "Intel"),  # v1 parts are Sandy Bridge
    "Intel Xeon E5-2670": _p("Intel Xeon E5-2670", "SandyBridge", "Intel"),
    "Intel Xeon E5-2670 (Sandy Bridge)": _p("Intel Xeon E5-2670", "SandyBridge", "Intel"),
    "Intel Xeon E5-2670 v2 (Ivy Bridge)": _p("Intel Xeon E5-2670 v2", "IvyBridge", "Intel"),
    "Intel Xeon E5-2670 v2 (Ivy Bridge/Sandy Bridge)": _p("Intel Xeon E5-2670 v2", "IvyBridge", "Intel"),
    "Intel Xeon E5-2680 v2 (Ivy Bridge)": _p("Intel Xeon E5-2680 v2", "IvyBridge", "Intel"),
    "Intel Xeon E5-2666 v3 (Haswell)": _p("Intel Xeon E5-2666 v3", "Haswell", "Intel"),
    "Intel Xeon E5-2676 v3 (Haswell)": _p("Intel Xeon E5-2676 v3", "Haswell", "Intel"),
    "High Frequency Intel Xeon E7-8880 v3 (Haswell)": _p("Intel Xeon E7-8880 v3", "Haswell", "Intel"),
    "Intel Xeon E5-2686 v4 (Broadwell)": _p("Intel Xeon E5-2686 v4", "Broadwell", "Intel"),
    "Intel Skylake E5 2686 v5": _p("Intel Xeon E5-2686 v5", "Skylake", "Intel"),
    "Intel Xeon Platinum 8124M": _p("Intel Xeon Platinum 8124M", "Skylake", "Intel"),
    "Intel Xeon Platinum 8151": _p("Intel Xeon Platinum 8151", "Skylake", "Intel"),
    "Intel Xeon Platinum 8175": _p("Intel Xeon Platinum 8175M", "Skylake", "Intel"),
    "Intel Xeon Platinum 8175 (Skylake)": _p("Intel Xeon Platinum 8175M", "Skylake", "Intel"),
    "Intel Xeon Scalable (Skylake)": _p("Intel Xeon Scalable (Skylake)", "Skylake", "Intel"),
    "Intel Xeon Platinum 8252": _p("Intel Xeon Platinum 8252C", "CascadeLake", "Intel"),
    "Intel Xeon Platinum 8259 (Cascade Lake)": _p("Intel Xeon Platinum 8259CL", "CascadeLake", "Intel"),
    "Intel Xeon Platinum 8259CL": _p("Intel Xeon Platinum 8259CL", "CascadeLake", "Intel"),
    "Intel Xeon Platinum 8275CL (Cascade Lake)": _p("Intel Xeon Platinum 8275CL", "CascadeLake", "Intel"),
    "Intel Xeon Platinum 8275L": _p("Intel Xeon Platinum 8275L", "CascadeLake", "Intel"),
    "Intel Xeon Platinum 8280L (Cascade Lake)": _p("Intel Xeon Platinum 8280L", "CascadeLake", "Intel"),
    "Intel Xeon 8375C (Ice Lake)": _p("Intel Xeon Platinum 8375C", "IceLake", "Intel"),
    "Intel Xeon Scalable (Icelake)": _p("Intel Xeon Scalable (Ice Lake)", "IceLake", "Intel"),
    "Intel Xeon Scalable (Sapphire Rapids)": _p("Intel Xeon Scalable (Sapphire Rapids)", "SapphireRapids", "Intel"),
    "Intel Xeon Scalable (Emerald Rapids)": _p("Intel Xeon Scalable (Emerald Rapids)", "EmeraldRapids", "Intel"),
    # Reviewed but not specific: a Xeon of some generation (c1, m1, m2, t2 and g4dn use it); the family table
    # below refines g4dn.  "Variable" (t1.micro) names no processor at all.
    "Intel Xeon Family": _p("Intel Xeon (unspecified)", "Xeon", "Intel"),
    "Variable": None,
}

# Families whose processor is known from AWS's own instance-type pages but missing (or vaguer) in libcloud.
# Applied before the libcloud string.
FAMILY_PROCESSORS: dict[str, ProcessorFact] = {
    "g4dn": _p("Intel Xeon Platinum 8259CL", "CascadeLake", "Intel"),
    "mac1": _p("Intel Core i7-8700B", "CoffeeLake", "Intel"),
    "mac2": _p("Apple M1 SoC", "AppleM1", "Apple"),
    "mac2-m1ultra": _p("Apple M1 Ultra SoC", "AppleM1Ultra", "Apple"),
    "mac2-m2": _p("Apple M2 SoC", "AppleM2", "Apple"),
    "mac2-m2pro": _p("Apple M2 Pro SoC", "AppleM2Pro", "Apple"),
    "mac-m3ultra": _p("Apple M3 Ultra SoC", "AppleM3Ultra", "Apple"),
    "mac-m4": _p("Apple M4 SoC", "AppleM4", "Apple"),
    "mac-m4pro": _p("Apple M4 Pro SoC", "AppleM4Pro", "Apple"),
    "mac-m4max": _p("Apple M4 Max SoC", "AppleM4Max", "Apple"),
}


@dataclass(frozen=True)
class AcceleratorFact:
    """What an accelerator named by moto's DescribeInstanceTypes data is: its taxonomy model node and kind."""

    node: str  # accelerator taxonomy node (level "model")
    kind: str  # accelerator_type label: GPU | NPU | FPGA


# (section, manufacturer, name) as they occur in instance_types.json.gz.  Sections: GpuInfo, NeuronInfo,
# InferenceAcceleratorInfo, FpgaInfo, MediaAcceleratorInfo.  NeuronInfo entries name no manufacturer ("").
ACCELERATORS: dict[tuple[str, str, str], AcceleratorFact] = {
    ("GpuInfo", "NVIDIA", "V100"): AcceleratorFact("V100", "GPU"),
    ("GpuInfo", "NVIDIA", "T4"): AcceleratorFact("T4", "GPU"),
    ("GpuInfo", "NVIDIA", "T4g"): AcceleratorFact("T4g", "GPU"),
    ("GpuInfo", "NVIDIA", "A100"): AcceleratorFact("A100", "GPU"),
    ("GpuInfo", "NVIDIA", "A10G"): AcceleratorFact("A10G", "GPU"),
    ("GpuInfo", "NVIDIA", "L4"): AcceleratorFact("L4", "GPU"),
    ("GpuInfo", "NVIDIA", "L40S"): AcceleratorFact("L40S", "GPU"),
    ("GpuInfo", "NVIDIA", "H100"): AcceleratorFact("H100", "GPU"),
    ("GpuInfo", "NVIDIA", "H200"): AcceleratorFact("H200", "GPU"),
    ("GpuInfo", "NVIDIA", "B200"): AcceleratorFact("B200", "GPU"),
    ("GpuInfo", "NVIDIA", "B300"): AcceleratorFact("B300", "GPU"),
    ("GpuInfo", "NVIDIA", "RTX PRO 4500"): AcceleratorFact("RTXPRO4500", "GPU"),
    ("GpuInfo", "NVIDIA", "RTX PRO Server 6000"): AcceleratorFact("RTXPROServer6000", "GPU"),
    ("NeuronInfo", "", "Inferentia"): AcceleratorFact("Inferentia", "NPU"),
    ("NeuronInfo", "", "Inferentia2"): AcceleratorFact("Inferentia2", "NPU"),
    ("NeuronInfo", "", "Trainium"): AcceleratorFact("Trainium", "NPU"),
    ("NeuronInfo", "", "Trainium2"): AcceleratorFact("Trainium2", "NPU"),
    ("InferenceAcceleratorInfo", "AWS", "Inferentia"): AcceleratorFact("Inferentia", "NPU"),
    ("InferenceAcceleratorInfo", "AWS", "Inferentia2"): AcceleratorFact("Inferentia2", "NPU"),
    ("InferenceAcceleratorInfo", "Qualcomm", "Qualcomm AI100"): AcceleratorFact("QualcommAI100", "NPU"),
    ("FpgaInfo", "Xilinx", "Virtex UltraScale+ (VU47P)"): AcceleratorFact("VU47P", "FPGA"),
    # vt1's Xilinx Alveo U30 media accelerator is a Zynq UltraScale+ FPGA card.
    ("MediaAcceleratorInfo", "Xilinx", "U30"): AcceleratorFact("U30", "FPGA"),
}


# moto's network-performance ratings that are words, not numbers -> Gbit/s.  Conservative on purpose: these are
# the lowest sustained bandwidths AWS reports (BaselineBandwidthInGbps) for the smallest types with each rating,
# rounded down, so a contract asking for bandwidth never gets more promised than the wire delivers.
NETWORK_WORDS: dict[str, float] = {
    "Very Low": 0.05,
    "Low": 0.1,
    "Low to Moderate": 0.3,
    "Moderate": 0.5,
    "High": 1.0,
}


def processor_models() -> dict[str, str]:
    """Every ``cpu_model`` label the facts can produce -> its taxonomy node (for :mod:`ccdsl.taxonomy`)."""
    out: dict[str, str] = {}
    for fact in (*PROCESSOR_STRINGS.values(), *FAMILY_PROCESSORS.values()):
        if fact is not None:
            out[fact.model] = fact.node
    return out
