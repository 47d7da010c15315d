"""Whether a cluster's nodes talk over EFA (the Elastic Fabric Adapter), and through how many interfaces.

One decision, made here for both sides that need it: ``ccdsl resolve`` says what a deploy will do ("EFA on: 32
interfaces", or why it is off), and the ``aws`` provider sends it.  An HPC user's MPI over TCP on one ENA interface
gets at most one network card's bandwidth (100 of a p5.48xlarge's 3,200 Gbit/s), so EFA is on by default wherever the
type has it and the cluster has two nodes or more, as AWS ParallelCluster and SkyPilot do.

The inputs:

- ``asked``: the contract's ``efa`` clause for the role (``efa => true``: on, and the resolver kept only EFA types;
  ``efa => false``: off; None: not said, so ``setting`` decides);
- ``setting``: ``[aws] efa`` in ``ccdsl.toml``: ``"auto"`` (the default: on where supported with 2+ nodes), ``"on"``,
  ``"off"``;
- ``private``: ``[aws] private``.  A node with a public address takes a single network interface (EC2 refuses
  ``AssociatePublicIpAddress`` with several), so a public multi-card node gets one EFA interface under ``auto``,
  and ``on`` (or ``efa => true``) with several cards is refused by deploy unless the nodes are private.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SETTINGS = ("auto", "on", "off")


@dataclass(frozen=True)
class Fabric:
    """The decision for one role: ``interfaces`` EFA interfaces per node (0: off) of the type's ``available``."""

    on: bool
    interfaces: int
    available: int
    why: str  # what decided it, in the user's words
    needs_private: bool = False  # on with every interface of a multi-card type: deploy refuses public nodes

    def line(self) -> str:
        """``EFA on: 32 interfaces``, ``EFA on: 1 of 32 interfaces (…)`` or ``EFA off: …``."""
        if not self.on:
            return f"EFA off: {self.why}"
        count = (f"{self.interfaces} of {self.available} interfaces" if self.interfaces < self.available
                 else f"{self.interfaces} interface{'s' * (self.interfaces != 1)}")
        return f"EFA on: {count}" + (f" ({self.why})" if self.why else "")

    def to_dict(self) -> dict[str, Any]:
        return {"on": self.on, "interfaces": self.interfaces, "available": self.available, "why": self.why}


def asked(clauses: Any) -> bool | None:
    """The ``efa => true|false`` among one role's clauses (None: not said).  A clause dropped while a conflict is
    minimized (``@unrestricted``) says nothing."""
    for c in clauses:
        if c.parameter == "efa" and c.qualifier == "just":
            return bool(c.values[0])
    return None


def decide(instance_type: str, available: int, node_count: int, asked: bool | None = None, setting: str = "auto",
           private: bool = False) -> Fabric:
    """The fabric of ``node_count`` nodes of ``instance_type``, which has ``available`` EFA interfaces (0: no EFA).
    See the module's docstring for the rules."""
    if setting not in SETTINGS:
        raise ValueError(f"[aws] efa must be one of {', '.join(SETTINGS)}, not {setting!r}")
    if asked is False:
        return Fabric(False, 0, available, "the contract says efa => false")
    if available <= 0:
        return Fabric(False, 0, 0, f"{instance_type} has no EFA")
    if asked is None and setting == "off":
        return Fabric(False, 0, available, '[aws] efa = "off"')
    if asked is None and setting == "auto":
        if node_count < 2:
            return Fabric(False, 0, available, "one node needs no fabric between nodes")
        if available > 1 and not private:
            return Fabric(True, 1, available, f'[aws] efa = "auto": a node with a public address takes one '
                                              f"interface; [aws] private = true attaches all {available}")
        return Fabric(True, available, available, "")
    needs_private = available > 1 and not private
    why = (f"{available} network cards: deploy needs [aws] private = true, since a node with a public address takes "
           "a single interface") if needs_private else ""
    return Fabric(True, available, available, why, needs_private)
