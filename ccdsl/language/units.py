"""Numbers with unit suffixes, converted to the unit of the parameter they constrain.

Decisions (documented in the README):

- memory and storage (``memory`` kind) are in GiB; suffixes are binary: ``K`` = KiB, ``M`` = MiB, ``G`` = GiB,
  ``T`` = TiB, ``P`` = PiB, so ``16G`` is exactly 16 GiB (the memory of a T4) and ``512M`` is 0.5 GiB;
- network bandwidth (``bandwidth`` kind) is in Gbit/s; suffixes are decimal bits per second: ``25G`` = 25 Gbit/s,
  ``500M`` = 0.5 Gbit/s, ``1T`` = 1000 Gbit/s;
- a bare number is already in the parameter's unit: ``@atleast(16)`` = ``@atleast(16G)`` = 16 GiB;
- counts and prices take no suffix;
- a rate (``fraction`` kind: ``spot_interruption``) is a fraction between 0 and 1; ``%`` is its suffix, so ``10%``
  is 0.10, and a plain ``0.1`` means the same.  Only rates take ``%`` (``16%`` of memory means nothing).
"""

from __future__ import annotations

import math
import re

SUFFIXES = ("K", "M", "G", "T", "P")
_BINARY = {"K": 2.0**-20, "M": 2.0**-10, "G": 1.0, "T": 2.0**10, "P": 2.0**20}  # to GiB
_DECIMAL = {"K": 1e-6, "M": 1e-3, "G": 1.0, "T": 1e3, "P": 1e6}  # to Gbit/s
FACTORS = {"memory": _BINARY, "bandwidth": _DECIMAL}

_NUMBER = re.compile(r"([-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)([A-Za-z]*|%)")  # ASCII digits
_INTEGER = re.compile(r"[-+]?[0-9]+")
PERCENT = "%"


class ValueProblem(Exception):
    """A value that cannot mean what the parameter needs; the checker turns it into a diagnostic."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def split(text: str) -> tuple[int | float, str]:
    """``"16G"`` -> ``(16, "G")``; ``"10.5"`` -> ``(10.5, "")``.  Integers stay ``int``."""
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise ValueProblem(f"'{text}' is not a number")
    mantissa, suffix = m.groups()
    if _INTEGER.fullmatch(mantissa):
        if len(mantissa) > 300:
            raise ValueProblem(f"'{text[:20]}…' is too large")
        return int(mantissa), suffix
    return _finite(float(mantissa), text), suffix


def convert(text: str, kind: str, name: str | None = None) -> int | float:
    """The number ``text`` in the unit of a parameter of ``kind`` (count, memory, bandwidth, price); ``name``
    (the parameter) only makes messages clearer."""
    value, suffix = split(text)
    if kind == "fraction":
        return _fraction(value, suffix, text, name)
    if suffix == PERCENT:
        what = {"memory": "a size", "bandwidth": "a bandwidth", "count": "a count", "price": "a price"}.get(
            kind, f"a {kind}")
        who = f"{name} is {what}" if name else what
        raise ValueProblem(f"{who}, not a rate: '{text}' cannot be a percentage",
                           hint=f"write the plain number, e.g. {value}; percentages are for rates such as "
                                "spot_interruption")
    if suffix:
        factors = FACTORS.get(kind)
        if factors is None:
            who = f"{name} is a {kind}" if name else f"a {kind}"
            raise ValueProblem(f"{who} and takes no unit suffix, but '{text}' has '{suffix}'",
                               hint=f"write the plain number, e.g. {value}")
        if suffix not in factors:
            raise ValueProblem(f"unknown unit suffix '{suffix}' in '{text}'",
                               hint="use one of K, M, G, T, P (e.g. 16G)")
        return _finite(value, text, factors[suffix])
    if kind in FACTORS or kind == "price":
        return _finite(value, text)
    return value


def _fraction(value: int | float, suffix: str, text: str, name: str | None) -> float:
    """A rate: ``10%`` or ``0.1`` -> 0.1, within 0..1 (a monthly interruption rate above 100% means nothing)."""
    who = name or "a rate"
    if suffix not in ("", PERCENT):
        raise ValueProblem(f"{who} is a rate and takes '%' or no suffix, but '{text}' has '{suffix}'",
                           hint="write a percentage such as 10%")
    rate = _finite(value, text) / (100.0 if suffix == PERCENT else 1.0)
    if rate < 0 or rate > 1:
        shown = text if suffix == PERCENT else f"{text} ({_finite(value, text) * 100:g}%)"
        raise ValueProblem(f"{who} is a rate between 0% and 100%, not {shown}",
                           hint="write a percentage such as 10%" if suffix == PERCENT else
                           f"write a percentage such as 10%, or a fraction ≤ 1 (did you mean {text}%?)")
    return rate


def _finite(value: int | float, text: str, factor: float = 1.0) -> float:
    try:
        result = float(value) * factor
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        raise ValueProblem(f"'{text}' is too large")
    return result
