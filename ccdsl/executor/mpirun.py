"""Open MPI's ``mpirun`` command line for clusters whose nodes talk over EFA (beside Hydra's in :mod:`mpi`).

Why not Hydra's ``mpiexec`` there: the EFA installer ships Open MPI built on its libfabric (``/opt/amazon/openmpi``),
and pip's MPICH knows no EFA.  Why so many flags: Open MPI picks a transport by itself and falls back to TCP when the
EFA one cannot start, so a cluster whose EFA is missing would run -- at a fraction of the bandwidth paid for --
without a word (skypilot-org/skypilot#10055).  Here it cannot: the ``cm`` PML over the ``ofi`` MTL is forced (no
fallback to ``ob1``/TCP) and libfabric is told ``FI_PROVIDER=efa`` (no fallback to its ``tcp`` provider), so a run
without EFA fails.  A command line may still ask for another provider on purpose (``env FI_PROVIDER=tcp python
…``: the benchmark that compares both).

The ranks' python must import an mpi4py that loads this Open MPI: mpi4py's PyPI wheels load whichever ``libmpi``
they are told (``MPI4PY_LIBMPI``), so the nodes install mpi4py without pip's MPICH (:func:`packages`).

Nodes say they belong to such a cluster with ``extra["fabric"] == "efa"`` (the ``aws`` provider sets it).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence

from ccdsl.executor.model import Node

PREFIX = "/opt/amazon/openmpi"  # where the EFA installer puts Open MPI
MPIRUN = f"{PREFIX}/bin/mpirun"
PROVIDER = "efa"
# Hydra's flag that starts every output line with "[rank] " has no Open MPI twin (--tag-output writes
# "[job,rank]<stdout>:"): the ranks' output is left unlabelled rather than mislabelled.
HYDRA_ONLY = ("-prepend-rank",)


def wanted(nodes: Sequence[Node]) -> bool:
    """Whether a job over ``nodes`` (the ranks' nodes and the one mpirun runs on) runs under Open MPI for EFA."""
    return bool(nodes) and all(n.extra.get("fabric") == "efa" for n in nodes)


def packages(hydra: Sequence[str]) -> tuple[str, ...]:
    """What a node's venv needs under mpirun: the Hydra set without pip's MPICH (mpi4py would load it first)."""
    return tuple(p for p in hydra if not is_mpich(p))


def is_mpich(requirement: str) -> bool:
    """Whether a pip requirement (``mpich``, ``mpich==4.2.1``) names pip's MPICH."""
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower() == "mpich"


def argv(mpirun: str, hosts: Sequence[str], processes_per_node: int, np: int, program: Sequence[str], *,
         agent: str, env: Mapping[str, str] | None = None, iface: str | None = None, extra: Sequence[str] = (),
         wdir: str | None = None, provider: str = PROVIDER) -> list[str]:
    """``mpirun`` running ``program`` on ``np`` ranks over ``hosts`` (addresses, ``processes_per_node`` slots each).

    ``agent``: the ssh mpirun starts its daemons through (the cluster's ssh wrapper); ``env``: variables every rank
    gets; ``iface``: the interface Open MPI's own TCP traffic (its daemons' wiring) uses; ``extra``: more mpirun
    arguments (``[mpi] extra_args``, minus Hydra-only flags); ``wdir``: where ranks start.  ``--prefix`` (the folder
    above ``bin/mpirun``) makes the daemons on other nodes find Open MPI's programs and libraries without a login
    shell's PATH."""
    prefix = posixpath.dirname(posixpath.dirname(mpirun))
    variables = {"FI_PROVIDER": provider, "MPI4PY_LIBMPI": f"{prefix}/lib64:{prefix}/lib", **(env or {})}
    out = [mpirun, "--prefix", prefix, "--host", ",".join(f"{h}:{processes_per_node}" for h in hosts),
           "-n", str(np), "--mca", "plm_rsh_agent", agent, "--mca", "pml", "cm", "--mca", "mtl", "ofi"]
    if iface:
        out += ["--mca", "oob_tcp_if_include", iface]
    for name, value in variables.items():
        out += ["-x", f"{name}={value}"]
    if wdir:
        out += ["--wdir", wdir]
    return [*out, *(a for a in extra if a not in HYDRA_ONLY), *program]
