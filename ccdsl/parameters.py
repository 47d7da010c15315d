"""The parameters a contract may name: their kind, unit, catalog column and which qualifiers they take.

One table serves the checker (unknown names, "did you mean", qualifier and value checks), the ``ccdsl.cluster()``
builder and the resolver (which column a clause constrains).  Kinds:

- ``count``: non-negative integer (``node_count``, ``accelerator_count``, ``node_vcpus_count``);
- ``memory``: a size in GiB; unit suffixes K, M, G, T, P are binary (``16G`` = 16 GiB);
- ``bandwidth``: Gbit/s; suffixes are bits per second (``25G`` = 25 Gbit/s);
- ``price``: USD per hour;
- ``number``: a plain number without unit (``accelerator_compute_capability => @atleast(8.0)``);
- ``fraction``: a rate between 0 and 1, written as a percentage (``10%`` = 0.10) or a plain fraction (``0.1``);
- ``symbol``: a node of a :mod:`ccdsl.taxonomy` domain (``levels`` restricts which levels are accepted);
- ``machinetype``: a provider instance type name (``EC2Type_T3_xLarge`` or ``"t3.xlarge"``);
- ``region``: a region name (``us_east_1`` or ``"us-east-1"``);
- ``flag``: true or false.  Most flags *require* their column for one value (``when``) and change nothing for the
  other (``efa => true``: only EFA types; ``smt => false``: only types that can run one thread per core, whose
  ``node_vcpus_count`` and ``cluster_vcpus_count`` then count cores); ``burstable`` (``requires=False``) *admits*
  burstable types when true (they are out of scope otherwise, see :mod:`ccdsl.burstable`) and refuses them when
  false;
- ``config``: carried to deploy, never used to resolve.

Scopes: ``cluster`` (shape of the cluster), ``node`` (filters instance types row by row), ``total`` (sums over the
worker nodes: vCPUs, memory, accelerators, price) and ``config``.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# The largest number a count parameter may be written as: float64 holds every whole number up to it exactly, so
# the resolver's closed forms and Z3's exact integers agree (a larger count is refused with the clause's position).
MAX_COUNT = 2**53

NUMERIC_QUALIFIERS = ("just", "atleast", "atmost", "between", "unrestricted", "oneof", "not")
SYMBOL_QUALIFIERS = ("just", "unrestricted", "oneof", "not")
NUMERIC_KINDS = ("count", "memory", "bandwidth", "price", "fraction", "number")
ORDERED_QUALIFIERS = ("atleast", "atmost", "between")  # symbols of an ordered line (taxonomy.ORDERS) take these too


@dataclass(frozen=True)
class Parameter:
    name: str
    kind: str
    scope: str
    column: str | None = None  # catalog column (node scope) or the per-node column summed (total scope)
    domain: str | None = None  # taxonomy domain, for symbols
    levels: tuple[str, ...] | None = None  # accepted taxonomy levels; None = all
    unit: str = ""
    doc: str = ""
    ordered: bool = False  # a symbol whose generations are ordered (taxonomy.ORDERS): @atleast/@atmost/@between
    requires: bool = True  # a flag: ``when`` requires the column; False (burstable): true admits, false refuses
    when: bool = True  # a flag that requires its column: the value that does (smt: false)

    @property
    def qualifiers(self) -> tuple[str, ...]:
        if self.kind in NUMERIC_KINDS:
            return NUMERIC_QUALIFIERS
        if self.kind in ("config", "flag"):
            return ("just",)
        if self.name == "cluster_type":
            return ("just",)
        if self.ordered:
            return SYMBOL_QUALIFIERS[:1] + ORDERED_QUALIFIERS + SYMBOL_QUALIFIERS[1:]
        return SYMBOL_QUALIFIERS


def _p(*args: Any, **kw: Any) -> Parameter:
    return Parameter(*args, **kw)


_ALL = [
    # shape of the cluster
    _p("cluster_type", "symbol", "cluster", domain="cluster_type",
       doc="PeerWorkers (default), PeerWorkersMPI, ManagerWorkers"),
    _p("node_count", "count", "cluster", unit="nodes",
       doc="worker nodes (default 1); a range lets the resolver choose"),
    _p("node_process_count", "count", "cluster", unit="ranks", doc="MPI ranks per node (default 1)"),
    # per node
    _p("node_provider", "symbol", "node", column="provider", domain="provider", doc="AmazonEC2, Local, SSH"),
    _p("cluster_locale", "region", "node", column="region", doc="region, e.g. us_east_1 or \"us-east-1\""),
    _p("node_machinetype", "machinetype", "node", column="instance_type", doc="EC2Type_T3_xLarge or \"t3.xlarge\""),
    _p("node_memory_size", "memory", "node", column="memory_gib", unit="GiB", doc="memory per node"),
    _p("node_vcpus_count", "count", "node", column="vcpus", unit="vCPUs", doc="vCPUs per node"),
    _p("node_cores_count", "count", "node", column="cores", unit="cores", doc="physical cores per node"),
    _p("accelerator_count", "count", "node", column="accelerator_count", unit="accelerators",
       doc="accelerators (GPUs, …) per node; 0 = none"),
    _p("accelerator_memory", "memory", "node", column="accelerator_memory_gib", unit="GiB",
       doc="memory per accelerator as its maker sells it (an L4 is 24G; EC2 reports 22.35 GiB usable)"),
    _p("accelerator_type", "symbol", "node", column="accelerator_type", domain="accelerator_type",
       doc="GPU, NPU, FPGA"),
    _p("accelerator_architecture", "symbol", "node", domain="accelerator", levels=("architecture",),
       doc="Turing, Ampere, Ada, Hopper, …; @atleast(Ampere): Ampere or a later NVIDIA generation (Kepler < Maxwell "
           "< Pascal < Volta < Turing < Ampere < Ada < Hopper < Blackwell)", ordered=True),
    _p("accelerator_compute_capability", "number", "node", column="accelerator_compute_capability",
       doc="CUDA compute capability of an NVIDIA accelerator, e.g. @atleast(8.0) for bf16, @atleast(8.9) for FP8 "
           "(other accelerators have none: they meet no bound)"),
    _p("accelerator_manufacturer", "symbol", "node", domain="accelerator", levels=("manufacturer",),
       doc="NVIDIA, AWS, …"),
    _p("accelerator", "symbol", "node", domain="accelerator", doc="a model (T4, A100, …) or any group above it"),
    _p("processor", "symbol", "node", domain="processor", doc="a processor model or any group above it"),
    _p("processor_manufacturer", "symbol", "node", domain="processor", levels=("manufacturer",), doc="Intel, AMD, AWS"),
    _p("processor_microarchitecture", "symbol", "node", domain="processor", levels=("group", "microarchitecture"),
       doc="IceLake, SapphireRapids, Zen, Zen4, Graviton3, …; @atleast(IceLake): within one maker's line (Skylake "
           "< CascadeLake < IceLake < SapphireRapids < EmeraldRapids < GraniteRapids; Zen1 … Zen5; Graviton1 … "
           "Graviton4)", ordered=True),
    _p("processor_architecture", "symbol", "node", column="cpu_architecture", domain="cpu_architecture",
       doc="x86_64 or arm64"),
    _p("storage_type", "symbol", "node", column="storage_type", domain="storage_type", doc="SSD, HDD, EBSOnly"),
    _p("storage_size", "memory", "node", column="storage_gib", unit="GiB", doc="local instance storage"),
    _p("network_performance", "bandwidth", "node", column="network_gbps", unit="Gbit/s",
       doc="network bandwidth per node (\"Up to 25 Gigabit\" counts as 25)"),
    _p("burstable", "flag", "node", column="burstable",
       doc="true: burstable types (t2, t3, t3a, t4g) may compete too, run in standard CPU credit mode (they compete "
           "anyway when node_machinetype names them); false: never", requires=False),
    _p("efa", "flag", "node", column="efa",
       doc="true: only types with an Elastic Fabric Adapter (low-latency MPI between nodes); false: no filter (EFA "
           "is then used where [aws] efa allows)"),
    _p("smt", "flag", "node", column="single_thread",
       doc="false: one thread per core (simultaneous multithreading off, as many HPC codes run fastest): only types "
           "that can (not *.metal ones that run two), and node_vcpus_count and cluster_vcpus_count count what a node "
           "then has, its cores; true: no filter, each type as EC2 runs it", when=False),
    _p("node_price", "price", "node", column="price_per_hour", unit="USD/h",
       doc="price per node and hour (a spot node's spot price)"),
    _p("spot_interruption", "fraction", "node", column="spot_interruption",
       doc="spot nodes: the spot advisor's monthly interruption-rate bucket, e.g. @atmost(10%) (unknown meets no "
           "bound; needs spot => true)"),
    # totals over the worker nodes
    _p("cluster_vcpus_count", "count", "total", column="vcpus", unit="vCPUs", doc="vCPUs summed over the workers"),
    _p("cluster_memory_size", "memory", "total", column="memory_gib", unit="GiB",
       doc="memory summed over the workers"),
    _p("cluster_accelerator_count", "count", "total", column="accelerator_count", unit="accelerators",
       doc="accelerators summed over the workers"),
    _p("cluster_accelerator_memory", "memory", "total", column="accelerator_memory_total_gib", unit="GiB",
       doc="accelerator memory summed over the workers"),
    _p("cluster_price_per_hour", "price", "total", column="price_per_hour", unit="USD/h",
       doc="budget for the whole cluster (manager included)"),
]
_CONFIG = ["image_id", "user", "sshflags", "key_name", "subnet_id", "security_group_id", "ssh_cidr",
           "placement_group", "spot", "root_volume_size", "tags", "hosts", "mpi_flags", "python"]

PARAMETERS: dict[str, Parameter] = {p.name: p for p in _ALL}
# What each configuration parameter is for (read by deploy, never by the resolver).
_CONFIG_DOCS = {
    "image_id": "machine image (AMI) of the nodes", "user": "SSH login user on the nodes",
    "sshflags": "not supported (ccdsl connects with paramiko): refused", "key_name": "EC2 key pair name",
    "subnet_id": "EC2 subnet",
    "security_group_id": "EC2 security group", "ssh_cidr": "address range allowed to reach port 22",
    "placement_group": "EC2 placement group (\"cluster\" for low latency)",
    "spot": "true: spot instances, resolved at spot prices (worker.spot: the workers only)",
    "root_volume_size": "root volume size in GiB", "tags": 'instance tags: "key=value, key=value"',
    "hosts": "hosts of the SSH provider",
    "mpi_flags": "extra flags for mpiexec", "python": "Python interpreter on the nodes (a command or a path)",
}
PARAMETERS.update({n: Parameter(n, "config", "config", doc=_CONFIG_DOCS.get(n, "")) for n in _CONFIG})

# The form of the configuration values deploy reads as more than text (the rest are kept as written), checked by
# ``check`` so that a wrong one fails with its position rather than half-way through a deploy:
# ``flag`` true/false; ``gib`` a whole size in GiB within 0..MAX_VOLUME_GIB (EBS's largest volume); ``placement``
# an EC2 placement strategy (or true/false: cluster/none); ``login`` a POSIX login name.
CONFIG_KINDS: dict[str, str] = {"spot": "flag", "root_volume_size": "gib", "placement_group": "placement",
                                "user": "login"}
MAX_VOLUME_GIB = 65_536
PLACEMENT_STRATEGIES = ("cluster", "spread", "partition")
MAX_LOGIN = 32

# The seed's other spellings: accepted with a warning naming the preferred one.
ALIASES: dict[str, str] = {
    "nodes_count": "node_count",
    "accelerator_arch": "accelerator_architecture",
    "accelerator_memory_size": "accelerator_memory",
    "node_vcpus_unit": "node_vcpus_count",
    "processor_arch": "processor_architecture",
}


# With ``smt => false`` a node runs one thread per core: these parameters count its cores (see :func:`asked`).
SMT_COUNTED = {"node_vcpus_count": "cores", "cluster_vcpus_count": "cores"}


def asked(clauses: Iterable[Any], name: str) -> bool | None:
    """The ``name => true|false`` among one role's clauses (None: not said).  A clause dropped while a conflict is
    minimized (``@unrestricted``) says nothing."""
    for c in clauses:
        if c.parameter == name and c.qualifier == "just":
            return bool(c.values[0])
    return None


def canonical(name: str) -> str | None:
    """The canonical name for ``name`` (itself or through an alias), or None when unknown."""
    if name in PARAMETERS:
        return name
    return ALIASES.get(name)


def suggest(name: str, n: int = 3) -> list[str]:
    """Known parameter names close to ``name``, for "did you mean" (remembered: a file may misspell one name
    thousands of times)."""
    return list(_suggest(name, n))


@functools.lru_cache(maxsize=1024)
def _suggest(name: str, n: int) -> tuple[str, ...]:
    return tuple(difflib.get_close_matches(name, list(PARAMETERS) + list(ALIASES), n=n, cutoff=0.6))
