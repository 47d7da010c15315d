"""Burstable (T family) instance types: the CPU each sustains and what running above it costs.

Why this exists: a burstable type's list price buys a *baseline* share of each vCPU.  Above it, a ``standard``
instance spends earned credits and is then throttled back to the baseline; an ``unlimited`` instance keeps running
and is billed for the surplus vCPU-hours.  T3, T3a and T4g launch as ``unlimited`` by default, and an MPI run busy-
polls every vCPU, so the list price is not what AWS bills.  ccdsl therefore lets burstable types compete only when
a contract asks for them (:mod:`ccdsl.resolver.filter`), launches them ``standard`` (``[aws] cpu_credits``), and
in ``unlimited`` mode counts the worst case: every vCPU at 100 % (:func:`surplus_per_hour`).

The numbers are AWS's documented tables, kept here as data with their sources:

- baseline utilization per vCPU: "Key concepts for burstable performance instances", table "CPU credits and
  baseline utilization for burstable performance instances",
  https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/burstable-credits-baseline-concepts.html
- surplus credit rate (Linux, per vCPU-hour): "T2/T3/T3a/T4g Unlimited Mode Pricing" on
  https://aws.amazon.com/ec2/pricing/on-demand/ (the us-east-1 figures; most regions charge the same).

``t1.micro`` (previous generation) is burstable but has no credit specification: EC2 throttles it and never bills
a surplus, so it has no baseline row and RunInstances gets no ``CreditSpecification`` for it.
"""

from __future__ import annotations

from dataclasses import dataclass

BASELINE_SOURCE = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/burstable-credits-baseline-concepts.html"
RATE_SOURCE = "https://aws.amazon.com/ec2/pricing/on-demand/"
STANDARD = "standard"
UNLIMITED = "unlimited"
MODES = (STANDARD, UNLIMITED)

# family -> surplus credit rate, USD per vCPU-hour (Linux)
SURPLUS_RATE: dict[str, float] = {"t2": 0.05, "t3": 0.05, "t3a": 0.05, "t4g": 0.04}

# size -> (vCPUs, baseline utilization per vCPU) for the T3, T3a and T4g families (the same table for all three)
_T3_LIKE: dict[str, tuple[int, float]] = {
    "nano": (2, 0.05), "micro": (2, 0.10), "small": (2, 0.20), "medium": (2, 0.20),
    "large": (2, 0.30), "xlarge": (4, 0.40), "2xlarge": (8, 0.40),
}
_T2: dict[str, tuple[int, float]] = {
    "nano": (1, 0.05), "micro": (1, 0.10), "small": (1, 0.20), "medium": (2, 0.20),
    "large": (2, 0.30), "xlarge": (4, 0.225), "2xlarge": (8, 0.16875),
}
# Burstable types without credits (EC2 throttles them; no surplus is billed).
NO_CREDITS: frozenset[str] = frozenset({"t1.micro"})


@dataclass(frozen=True)
class Credits:
    """One burstable type's credit facts."""

    instance_type: str
    vcpus: int
    baseline: float  # sustained share of each vCPU, 0..1
    rate: float  # surplus USD per vCPU-hour in unlimited mode


def _table() -> dict[str, Credits]:
    out: dict[str, Credits] = {}
    for family, sizes in (("t2", _T2), ("t3", _T3_LIKE), ("t3a", _T3_LIKE), ("t4g", _T3_LIKE)):
        for size, (vcpus, baseline) in sizes.items():
            name = f"{family}.{size}"
            out[name] = Credits(name, vcpus, baseline, SURPLUS_RATE[family])
    return out


CREDITS: dict[str, Credits] = _table()


def is_burstable(instance_type: str) -> bool:
    """Whether AWS documents ``instance_type`` as a burstable performance type."""
    return instance_type in CREDITS or instance_type in NO_CREDITS


def credits(instance_type: str) -> Credits | None:
    """The credit facts of a type with CPU credits (None: not burstable, or t1.micro)."""
    return CREDITS.get(instance_type)


def surplus_per_hour(instance_type: str) -> float:
    """The most ``unlimited`` mode adds per node-hour: every vCPU busy, vCPUs × (1 − baseline) × rate."""
    c = CREDITS.get(instance_type)
    return 0.0 if c is None else round(c.vcpus * (1.0 - c.baseline) * c.rate, 6)


def describe(instance_type: str, mode: str = STANDARD) -> str:
    """What a credit mode means for ``instance_type``, for answers and deploy notes ('' when not burstable)."""
    if instance_type in NO_CREDITS:
        return f"{instance_type} is burstable without CPU credits: EC2 throttles it under sustained load"
    c = CREDITS.get(instance_type)
    if c is None:
        return ""
    if mode == UNLIMITED:
        return (f"CPU credits unlimited: load above the {c.baseline * 100:.4g}% baseline per vCPU is billed at "
                f"${c.rate:.2f} per vCPU-hour, at most ${surplus_per_hour(instance_type):.4f} per node-hour more")
    return (f"CPU credits standard: each vCPU sustains {c.baseline * 100:.4g}% (the baseline) and bursts above it "
            f"only on earned credits; no surplus is billed")


def answer_line(instance_type: str, role: str = "") -> str:
    """The resolve answer's sentence for a burstable choice ('' otherwise): the mode ccdsl launches it in, what
    that mode means, and what the other mode would cost."""
    who = f"{role} " if role else ""
    if instance_type in NO_CREDITS:
        return f"{who}{describe(instance_type)}"
    c = CREDITS.get(instance_type)
    if c is None:
        return ""
    return (f"{who}{instance_type} is burstable, launched with {describe(instance_type, STANDARD)} "
            f"([aws] cpu_credits = \"unlimited\" lifts the cap: up to ${surplus_per_hour(instance_type):.4f} per "
            f"node-hour more at ${c.rate:.2f} per vCPU-hour)")
