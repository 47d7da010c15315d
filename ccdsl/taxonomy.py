"""Symbol hierarchies: what a symbol in a contract covers.

A contract says ``accelerator_architecture => Ada`` or ``processor_microarchitecture => Zen``; the catalog stores the
most specific fact it knows per row ("Ada Lovelace", "Zen 4", "L40S", "AMD EPYC 9R14").  Symbols are nodes of a
tree per *domain*; a symbol covers its own label and every label below it, so ``Zen`` covers "Zen 3" and "Zen 4",
``NVIDIA`` covers every NVIDIA architecture and model.  A row matches a symbol when any of the domain's catalog
columns holds a covered label (labels are unique across levels of a domain).

This module is the reviewed fact table the catalog build checks against: every GPU model and processor model that
occurs in the sources must be a node here (the catalog build fails on an unmapped one).  Names are looked up
ignoring case, spaces, dashes, dots and underscores, so ``AdaLovelace``, ``Ada``, ``"Ada Lovelace"`` and
``ada_lovelace`` name the same node.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class Node:
    """One symbol.  ``label`` is the value the catalog stores; ``level`` says which column holds it."""

    domain: str
    name: str  # canonical identifier users write, e.g. "AdaLovelace"
    label: str  # catalog value, e.g. "Ada Lovelace"
    level: str  # e.g. "manufacturer", "architecture", "model", "group"
    parent: str | None  # canonical name of the parent node
    aliases: tuple[str, ...] = ()


# Catalog columns holding each domain's labels, most general first.
DOMAIN_COLUMNS: dict[str, tuple[str, ...]] = {
    "accelerator": ("accelerator_manufacturer", "accelerator_architecture", "accelerator_model"),
    "processor": ("cpu_manufacturer", "cpu_microarchitecture", "cpu_model"),
    "provider": ("provider",),
    "accelerator_type": ("accelerator_type",),
    "storage_type": ("storage_type",),
    "cpu_architecture": ("cpu_architecture",),
    "cluster_type": (),
}

# (name, label, level, parent, aliases) per domain.  Groups ("Zen", "Graviton") are levels of their own that
# only exist to cover their children.
_TREE: dict[str, list[tuple[str, str, str, str | None, tuple[str, ...]]]] = {
    "provider": [
        ("AmazonEC2", "aws", "provider", None, ("EC2", "AWS")),
        ("Local", "local", "provider", None, ("Localhost",)),
        ("SSH", "ssh", "provider", None, ("OnPremise", "Cluster")),
    ],
    "accelerator_type": [
        ("GPU", "GPU", "type", None, ()),
        ("NPU", "NPU", "type", None, ("Neuron", "ML")),  # AWS Inferentia/Trainium, Qualcomm AI100
        ("FPGA", "FPGA", "type", None, ()),
    ],
    "storage_type": [
        ("SSD", "ssd", "type", None, ("NVMe",)),
        ("HDD", "hdd", "type", None, ()),
        ("EBSOnly", "ebs", "type", None, ("EBS", "NoInstanceStorage")),
    ],
    "cpu_architecture": [
        ("x86_64", "x86_64", "isa", None, ("X86", "AMD64", "Intel64")),
        ("arm64", "arm64", "isa", None, ("ARM", "AArch64")),
    ],
    "cluster_type": [
        ("PeerWorkers", "PeerWorkers", "type", None, ()),
        ("PeerWorkersMPI", "PeerWorkersMPI", "type", None, ()),
        ("ManagerWorkers", "ManagerWorkers", "type", None, ()),
    ],
    "accelerator": [
        # manufacturers
        ("NVIDIA", "NVIDIA", "manufacturer", None, ()),
        ("AMD", "AMD", "manufacturer", None, ()),
        ("AWS", "AWS", "manufacturer", None, ("Amazon",)),
        ("Xilinx", "Xilinx", "manufacturer", None, ()),
        ("Qualcomm", "Qualcomm", "manufacturer", None, ()),
        ("Habana", "Habana", "manufacturer", None, ("Intel Habana",)),
        # NVIDIA architectures and models
        ("Kepler", "Kepler", "architecture", "NVIDIA", ()),
        ("Maxwell", "Maxwell", "architecture", "NVIDIA", ()),
        ("Pascal", "Pascal", "architecture", "NVIDIA", ()),
        ("Volta", "Volta", "architecture", "NVIDIA", ()),
        ("Turing", "Turing", "architecture", "NVIDIA", ()),
        ("Ampere", "Ampere", "architecture", "NVIDIA", ()),
        ("AdaLovelace", "Ada Lovelace", "architecture", "NVIDIA", ("Ada",)),
        ("Hopper", "Hopper", "architecture", "NVIDIA", ()),
        ("Blackwell", "Blackwell", "architecture", "NVIDIA", ()),
        ("K80", "K80", "model", "Kepler", ("TeslaK80",)),  # p2 (previous generation)
        ("M60", "M60", "model", "Maxwell", ("TeslaM60",)),  # g3 (previous generation)
        ("V100", "V100", "model", "Volta", ("TeslaV100",)),
        ("T4", "T4", "model", "Turing", ("TeslaT4",)),
        ("T4g", "T4g", "model", "Turing", ()),
        ("A100", "A100", "model", "Ampere", ()),
        ("A10G", "A10G", "model", "Ampere", ()),
        ("L4", "L4", "model", "AdaLovelace", ()),
        ("L40S", "L40S", "model", "AdaLovelace", ()),
        ("H100", "H100", "model", "Hopper", ()),
        ("H200", "H200", "model", "Hopper", ()),
        ("B200", "B200", "model", "Blackwell", ()),
        ("B300", "B300", "model", "Blackwell", ()),
        ("RTXPRO4500", "RTX PRO 4500", "model", "Blackwell", ()),
        ("RTXPROServer6000", "RTX PRO Server 6000", "model", "Blackwell", ("RTXPRO6000",)),
        # AWS machine-learning chips
        ("NeuronCoreV1", "NeuronCore-v1", "architecture", "AWS", ()),
        ("NeuronCoreV2", "NeuronCore-v2", "architecture", "AWS", ()),
        ("NeuronCoreV3", "NeuronCore-v3", "architecture", "AWS", ()),
        ("Inferentia", "Inferentia", "model", "NeuronCoreV1", ("Inferentia1",)),
        ("Inferentia2", "Inferentia2", "model", "NeuronCoreV2", ()),
        ("Trainium", "Trainium", "model", "NeuronCoreV2", ("Trainium1",)),
        ("Trainium2", "Trainium2", "model", "NeuronCoreV3", ()),
        # others
        ("CloudAI100", "Cloud AI 100", "architecture", "Qualcomm", ()),
        ("QualcommAI100", "Qualcomm AI100", "model", "CloudAI100", ("AI100",)),
        ("UltraScalePlus", "UltraScale+", "architecture", "Xilinx", ("UltraScale",)),
        ("VU47P", "Virtex UltraScale+ (VU47P)", "model", "UltraScalePlus", ("VirtexUltraScalePlusVU47P",)),
        ("U30", "U30", "model", "UltraScalePlus", ("AlveoU30",)),  # vt1 media accelerator (Zynq UltraScale+)
    ],
    "processor": [
        ("Intel", "Intel", "manufacturer", None, ()),
        ("AMD", "AMD", "manufacturer", None, ()),
        ("AWS", "AWS", "manufacturer", None, ("Amazon",)),
        ("Apple", "Apple", "manufacturer", None, ()),
        # Intel Xeon microarchitectures
        ("Xeon", "Xeon", "group", "Intel", ()),
        ("SandyBridge", "Sandy Bridge", "microarchitecture", "Xeon", ()),
        ("IvyBridge", "Ivy Bridge", "microarchitecture", "Xeon", ()),
        ("Haswell", "Haswell", "microarchitecture", "Xeon", ()),
        ("Broadwell", "Broadwell", "microarchitecture", "Xeon", ()),
        ("Skylake", "Skylake", "microarchitecture", "Xeon", ()),
        ("CascadeLake", "Cascade Lake", "microarchitecture", "Xeon", ()),
        ("IceLake", "Ice Lake", "microarchitecture", "Xeon", ()),
        ("SapphireRapids", "Sapphire Rapids", "microarchitecture", "Xeon", ()),
        ("EmeraldRapids", "Emerald Rapids", "microarchitecture", "Xeon", ()),
        ("GraniteRapids", "Granite Rapids", "microarchitecture", "Xeon", ()),
        # Intel Core (EC2 Mac, mac1)
        ("Core", "Core", "group", "Intel", ()),
        ("CoffeeLake", "Coffee Lake", "microarchitecture", "Core", ()),
        # AMD EPYC
        ("Zen", "Zen", "group", "AMD", ("EPYC",)),
        ("Zen1", "Zen 1", "microarchitecture", "Zen", ("Naples",)),
        ("Zen2", "Zen 2", "microarchitecture", "Zen", ("Rome",)),
        ("Zen3", "Zen 3", "microarchitecture", "Zen", ("Milan",)),
        ("Zen4", "Zen 4", "microarchitecture", "Zen", ("Genoa",)),
        ("Zen5", "Zen 5", "microarchitecture", "Zen", ("Turin",)),
        # AWS Graviton
        ("Graviton", "Graviton", "group", "AWS", ()),
        ("Graviton1", "Graviton1", "microarchitecture", "Graviton", ("GravitonA1",)),
        ("Graviton2", "Graviton2", "microarchitecture", "Graviton", ()),
        ("Graviton3", "Graviton3", "microarchitecture", "Graviton", ()),
        ("Graviton3E", "Graviton3E", "microarchitecture", "Graviton", ()),
        ("Graviton4", "Graviton4", "microarchitecture", "Graviton", ()),
        # Apple silicon (EC2 Mac)
        ("AppleM1", "M1", "microarchitecture", "Apple", ("M1",)),
        ("AppleM1Ultra", "M1 Ultra", "microarchitecture", "Apple", ("M1Ultra",)),
        ("AppleM2", "M2", "microarchitecture", "Apple", ("M2",)),
        ("AppleM2Pro", "M2 Pro", "microarchitecture", "Apple", ("M2Pro",)),
        ("AppleM3Ultra", "M3 Ultra", "microarchitecture", "Apple", ("M3Ultra",)),
        ("AppleM4", "M4", "microarchitecture", "Apple", ("M4",)),
        ("AppleM4Pro", "M4 Pro", "microarchitecture", "Apple", ("M4Pro",)),
        ("AppleM4Max", "M4 Max", "microarchitecture", "Apple", ("M4Max",)),
    ],
}

# Generations in order, per line (issue 20.4; the seed's PlatformAware.jl chains them too).  ``@atleast(X)``,
# ``@atmost(X)`` and ``@between(X, Y)`` on an ordered parameter cover the nodes of X's line on that side of X (and
# everything below those nodes); a line never reaches another maker's nodes, so a bound on an NVIDIA generation
# never matches an Inferentia, and a bound on IceLake never matches a Zen.  Nodes in one tuple rank the same.
# Sources: NVIDIA's CUDA compute capability table, https://developer.nvidia.com/cuda-gpus (Kepler 3.x, Maxwell
# 5.x, Pascal 6.x, Volta 7.0, Turing 7.5, Ampere 8.0/8.6, Ada 8.9, Hopper 9.0, Blackwell 10.x/12.x); Intel's Xeon
# Scalable generations, https://www.intel.com/content/www/us/en/products/details/processors/xeon/scalable.html
# (1st Skylake, 2nd Cascade Lake, 3rd Ice Lake, 4th Sapphire Rapids, 5th Emerald Rapids, Xeon 6 Granite Rapids;
# the E5 v1-v4 Sandy Bridge .. Broadwell before them); AMD EPYC 7001 Naples (Zen 1), 7002 Rome (Zen 2), 7003 Milan
# (Zen 3), 9004 Genoa (Zen 4), 9005 Turin (Zen 5), https://www.amd.com/en/products/processors/server/epyc.html;
# AWS Graviton 1-4, https://aws.amazon.com/ec2/graviton/ (Graviton3E is a Graviton3 variant: the same rank).
ORDERS: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    "accelerator": {
        "NVIDIA": (("Kepler",), ("Maxwell",), ("Pascal",), ("Volta",), ("Turing",), ("Ampere",), ("AdaLovelace",),
                   ("Hopper",), ("Blackwell",)),
    },
    "processor": {
        "Xeon": (("SandyBridge",), ("IvyBridge",), ("Haswell",), ("Broadwell",), ("Skylake",), ("CascadeLake",),
                 ("IceLake",), ("SapphireRapids",), ("EmeraldRapids",), ("GraniteRapids",)),
        "Zen": (("Zen1",), ("Zen2",), ("Zen3",), ("Zen4",), ("Zen5",)),
        "Graviton": (("Graviton1",), ("Graviton2",), ("Graviton3", "Graviton3E"), ("Graviton4",)),
    },
}

# CUDA compute capability of each NVIDIA model (https://developer.nvidia.com/cuda-gpus): what
# ``accelerator_compute_capability`` compares (bf16 needs 8.0, FP8 needs 8.9).
COMPUTE_CAPABILITY: dict[str, float] = {
    "K80": 3.7, "M60": 5.2, "V100": 7.0, "T4": 7.5, "T4g": 7.5, "A100": 8.0, "A10G": 8.6, "L4": 8.9, "L40S": 8.9,
    "H100": 9.0, "H200": 9.0, "B200": 10.0, "B300": 10.3, "RTXPRO4500": 12.0, "RTXPROServer6000": 12.0,
}

# Memory per accelerator as its maker sells it (issue 20.2), the figure ``accelerator_memory`` compares: each model's
# variants as (sold GiB, the GiB EC2's DescribeInstanceTypes reports for it).  EC2 reports the memory left usable
# (22,888 MiB for the 24 GB A10G and L4); a contract's "24G" means the 24 GB card.  A row reporting a fraction of
# a variant's figure (g6f: 1/8, 1/4, 1/2 of an L4) has that fraction of its sold memory.  The catalog build fails on
# a model without an entry, or a reported figure that is neither a variant nor such a fraction of one.
# Sources (datasheets): NVIDIA https://www.nvidia.com/en-us/data-center/ (K80 12 GB per GPU, M60 8 GB per GPU,
# V100 16/32 GB, T4 16 GB, A100 40/80 GB, A10G: A10 24 GB, L4 24 GB, L40S 48 GB, H100 80 GB, H200 141 GB,
# B200 180 GB (DGX B200: 1,440 GB for 8), B300 288 GB, RTX PRO 4500 Blackwell 32 GB, RTX PRO 6000 Blackwell
# Server 96 GB); AWS https://aws.amazon.com/ai/machine-learning/inferentia/ and /trainium/ (Inferentia 8 GB,
# Inferentia2 32 GB, Trainium 32 GB, Trainium2 96 GB per chip); Qualcomm Cloud AI 100 Standard 16 GB; AMD/Xilinx
# VU47P on F2 (64 GiB DDR4 + 16 GiB HBM per FPGA, https://aws.amazon.com/ec2/instance-types/f2/) and U30 on VT1
# (https://aws.amazon.com/ec2/instance-types/vt1/): as EC2 reports them.
ACCELERATOR_MEMORY: dict[str, tuple[tuple[float, float], ...]] = {
    "K80": ((12.0, 12.0),), "M60": ((8.0, 8.0),), "V100": ((16.0, 16.0), (32.0, 32.0)), "T4": ((16.0, 16.0),),
    "T4g": ((16.0, 16.0),), "A100": ((40.0, 40.0), (80.0, 80.0)), "A10G": ((24.0, 22888 / 1024),),
    "L4": ((24.0, 22888 / 1024),), "L40S": ((48.0, 45776 / 1024),), "H100": ((80.0, 80.0),),
    "H200": ((141.0, 141.0),), "B200": ((180.0, 183359 / 1024),), "B300": ((288.0, 275040 / 1024),),
    "RTXPRO4500": ((32.0, 32.0),), "RTXPROServer6000": ((96.0, 96.0),),
    "Inferentia": ((8.0, 8.0),), "Inferentia2": ((32.0, 32.0),), "Trainium": ((32.0, 32.0),),
    "Trainium2": ((96.0, 512.0),), "QualcommAI100": ((16.0, 16000 / 1024),),
    "VU47P": ((80.0, 80.0),), "U30": ((24.0, 24.0),),
}
FRACTIONS = (1 / 8, 1 / 4, 1 / 2)  # of one accelerator: EC2's fractional GPU rows (g6f, gr6f)


def sold_memory(model_label: str, reported_gib: float) -> float | None:
    """The memory a maker sells for the accelerator a row reports ``reported_gib`` of (None: not in the table,
    or a figure that matches no variant nor a fraction of one)."""
    node = lookup("accelerator", model_label)
    variants = ACCELERATOR_MEMORY.get(node.name, ()) if node is not None else ()
    for sold, reported in variants:
        for share in (1.0, *FRACTIONS):
            if abs(reported_gib - share * reported) <= 1e-6 * max(1.0, reported):
                return sold * share
    return None


# Processor *models* are many and come from the sources; the reviewed table in ccdsl/catalog/facts.py fills this
# (model label -> microarchitecture node name, or the group node when the source names no microarchitecture).
PROCESSOR_MODELS: dict[str, str] = {}


def _load_processor_facts() -> None:
    from ccdsl.catalog.facts import processor_models  # dependency-free module; no cycle

    PROCESSOR_MODELS.update(processor_models())


_load_processor_facts()


def norm(text: str) -> str:
    """The lookup key of a symbol: lower case, without spaces, dashes, dots, underscores, quotes or parentheses."""
    return re.sub(r"[\s\-_.'\"()+]", "", str(text)).lower()


@cache
def _index(domain: str) -> tuple[dict[str, Node], dict[str, Node]]:
    """(by canonical name, by normalized key incl. aliases and labels) for one domain."""
    if domain not in _TREE:
        raise KeyError(domain)
    by_name: dict[str, Node] = {}
    for name, label, level, parent, aliases in _TREE[domain]:
        by_name[name] = Node(domain, name, label, level, parent, aliases)
    if domain == "processor":
        for model, micro in PROCESSOR_MODELS.items():
            key = re.sub(r"\W", "", model)
            by_name.setdefault(key, Node(domain, key, model, "model", micro))
    by_key: dict[str, Node] = {}
    for node in by_name.values():
        for spelling in (node.name, node.label, *node.aliases):
            by_key.setdefault(norm(spelling), node)
    return by_name, by_key


def register_processor_models(models: dict[str, str]) -> None:
    """Add processor models (label -> microarchitecture node name) as leaves of the processor tree."""
    PROCESSOR_MODELS.update(models)
    _index.cache_clear()
    covered_labels.cache_clear()


def domains() -> tuple[str, ...]:
    return tuple(_TREE)


def lookup(domain: str, text: str) -> Node | None:
    """The node a user's spelling names in ``domain``, or None."""
    return _index(domain)[1].get(norm(text))


def node(domain: str, name: str) -> Node:
    """The node with canonical ``name`` (KeyError if none)."""
    return _index(domain)[0][name]


def nodes(domain: str, levels: tuple[str, ...] | None = None) -> list[Node]:
    """All nodes of a domain, optionally only those at ``levels``, in definition order."""
    return [n for n in _index(domain)[0].values() if levels is None or n.level in levels]


def ancestors(n: Node) -> list[Node]:
    """Parent, grandparent, … of a node."""
    by_name = _index(n.domain)[0]
    out = []
    while n.parent is not None:
        n = by_name[n.parent]
        out.append(n)
    return out


@cache
def covered_labels(domain: str, name: str) -> frozenset[str]:
    """Labels of the node ``name`` and every node below it: the catalog values a symbol covers."""
    by_name = _index(domain)[0]
    children: dict[str | None, list[Node]] = {}
    for n in by_name.values():
        children.setdefault(n.parent, []).append(n)
    out: set[str] = set()
    stack = [by_name[name]]
    while stack:
        n = stack.pop()
        out.add(n.label)
        stack.extend(children.get(n.name, []))
    return frozenset(out)


def suggest(domain: str, text: str, levels: tuple[str, ...] | None = None, n: int = 3) -> list[str]:
    """Canonical names close to ``text`` (for "did you mean")."""
    candidates = {norm(x.name): x.name for x in nodes(domain, levels)}
    for x in nodes(domain, levels):
        for a in x.aliases:
            candidates.setdefault(norm(a), x.name)
    hits = difflib.get_close_matches(norm(text), list(candidates), n=n, cutoff=0.6)
    return list(dict.fromkeys(candidates[h] for h in hits))


def position(domain: str, name: str) -> tuple[str, int] | None:
    """(line, rank) of the node ``name`` in :data:`ORDERS`, or None when it has no order."""
    for line, ranks in ORDERS.get(domain, {}).items():
        for rank, names in enumerate(ranks):
            if name in names:
                return line, rank
    return None


def line_names(domain: str, line: str) -> list[str]:
    """The node names of one ordered line, oldest first (for messages)."""
    return [n for names in ORDERS[domain][line] for n in names]


@cache
def ordered_labels(domain: str, qualifier: str, names: tuple[str, ...]) -> frozenset[str]:
    """Labels an ordered bound covers: ``atleast``/``atmost`` ``names[0]``, ``between`` ``names[0]`` and
    ``names[1]`` (of one line): the nodes of that line within the bound, with everything below them.  A name
    without an order covers nothing (the checker refuses it first)."""
    where = [position(domain, n) for n in names]
    if any(w is None for w in where) or len({w[0] for w in where if w}) != 1:
        return frozenset()
    line = where[0][0] if where[0] else ""
    ranks = [w[1] for w in where if w]
    lo, hi = {"atleast": (ranks[0], None), "atmost": (None, ranks[0])}.get(qualifier, (ranks[0], ranks[-1]))
    out: set[str] = set()
    for rank, group in enumerate(ORDERS[domain][line]):
        if (lo is None or rank >= lo) and (hi is None or rank <= hi):
            for name in group:
                out |= covered_labels(domain, name)
    return frozenset(out)


def compute_capability(model_label: str) -> float:
    """The CUDA compute capability of an accelerator model label (NaN: not an NVIDIA model ccdsl knows)."""
    node = lookup("accelerator", model_label)
    return COMPUTE_CAPABILITY.get(node.name, float("nan")) if node is not None else float("nan")
