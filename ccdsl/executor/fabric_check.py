"""The deploy's check that EFA works on every node launched with it: ``fi_info -p efa`` lists every device.

Why: a node launched with EFA interfaces can still lack a working EFA -- the installer failed (no internet, a
locked package manager), the kernel driver did not load, the image is not one the installer supports.  MPI would
then fail at its first run (Open MPI is told ``FI_PROVIDER=efa``, :mod:`ccdsl.executor.mpirun`) or, without that,
silently run over TCP at a fraction of the bandwidth paid for (skypilot-org/skypilot#8391, #10055).  So the deploy
asks libfabric itself, on every such node, before it calls the cluster ready, and fails with what it printed.

A node's expected device count is ``node.extra["efa"]``: the EFA interfaces it was launched with (the ``aws``
provider puts it there).  Each interface is one device (``rdmap0s31``), which ``fi_info`` lists once per endpoint
type (domains ``rdmap0s31-rdm`` and ``rdmap0s31-dgrm``).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from itertools import pairwise

from ccdsl.errors import DeployError, printable
from ccdsl.executor import ssh
from ccdsl.executor.model import Node
from ccdsl.executor.parallel import parallel
from ccdsl.executor.providers.efa_boot import EFA_BIN

_ENTRY = re.compile(r"^provider:\s*(\S+)\s*$", re.M)
_DOMAIN = re.compile(r"^\s*domain:\s*(\S+)\s*$", re.M)
_ENDPOINT_SUFFIX = re.compile(r"-(rdm|dgrm)$")
TAIL = 600  # characters of what fi_info printed that an error quotes


def command(bin_dir: str = EFA_BIN) -> str:
    """The shell command run on a node: the installer's ``fi_info`` first (``bin_dir`` is not on the PATH of an SSH
    command), else one on the PATH."""
    return f"PATH={shlex.quote(bin_dir)}:\"$PATH\" fi_info -p efa 2>&1"


def devices(listing: str) -> list[str]:
    """The EFA devices in ``fi_info -p efa``'s listing, in order, each once: the ``domain`` of every ``efa``
    entry without its endpoint suffix."""
    found: list[str] = []
    starts = [m.start() for m in _ENTRY.finditer(listing)] + [len(listing)]
    for start, end in pairwise(starts):
        entry = listing[start:end]
        provider = _ENTRY.match(entry)
        domain = _DOMAIN.search(entry)
        if provider is None or domain is None or provider.group(1) != "efa":
            continue
        device = _ENDPOINT_SUFFIX.sub("", domain.group(1))
        if device not in found:
            found.append(device)
    return found


def check(nodes: Sequence[Node], connections: ssh.Connections, *, timeout: float = 120.0,
          bin_dir: str = EFA_BIN) -> None:
    """Run ``fi_info -p efa`` on every node with ``extra["efa"]`` (all at once); raise a DeployError naming each
    node that lists fewer devices than it was launched with, and what it printed.  Nodes without EFA are left
    alone."""
    def one(node: Node) -> str | None:
        expected = int(node.extra["efa"])
        res = ssh.run(connections.get(node), command(bin_dir), node=node, timeout=timeout)
        found = devices(res.stdout) if res.code == 0 else []
        if len(found) >= expected:
            return None
        said = printable((res.stdout + res.stderr).strip()[-TAIL:]) or "nothing"
        return (f"{ssh.describe(node)}: fi_info -p efa lists {len(found)} of its {expected} EFA device"
                f"{'s' * (expected != 1)} ({', '.join(found) or 'none'}; exit {res.code}); it printed:\n    "
                + said.replace("\n", "\n    "))

    problems = [p for p in parallel(one, [n for n in nodes if n.extra.get("efa")]) if p]
    if problems:
        raise DeployError("EFA does not work on every node it was launched on:\n  " + "\n  ".join(problems),
                          hint="see /var/log/cloud-init-output.log on the node (the EFA installer's output); an "
                               "image the EFA installer supports, or an AWS Deep Learning Base AMI ([aws] image), "
                               "has it; [aws] efa = \"off\" deploys without EFA")
