"""One value of one parameter: an AST atom -> the normalized value a :class:`~ccdsl.contract.Clause` holds.

Each function raises :class:`~ccdsl.language.units.ValueProblem` with a message in the user's terms; the checker
attaches the position.  Kinds are those of :mod:`ccdsl.parameters`.
"""

from __future__ import annotations

import re

from ccdsl import taxonomy
from ccdsl.contract import Value
from ccdsl.language import ast, units
from ccdsl.language.units import ValueProblem
from ccdsl.parameters import (
    CONFIG_KINDS,
    MAX_COUNT,
    MAX_LOGIN,
    MAX_VOLUME_GIB,
    NUMERIC_KINDS,
    PARAMETERS,
    PLACEMENT_STRATEGIES,
    Parameter,
)

_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d+")
_MACHINETYPE = re.compile(r"EC2Type_([A-Za-z0-9]+(?:_[A-Za-z0-9]+)*)_([A-Za-z0-9]+)")
_MAX_LISTED = 24
# A POSIX login name: the portable filename characters, not starting with '-' (useradd's own rule is stricter).
_LOGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")

# The smallest value each count parameter allows (counts are otherwise >= 0).
MINIMUM = {"node_count": 1, "node_process_count": 1}


def describe(atom: ast.Atom) -> str:
    if isinstance(atom, ast.Number):
        return f"the number {atom.text}"
    if isinstance(atom, ast.String):
        return f'the string "{atom.value}"'
    return f"the symbol {atom.name}"


def normalize(param: Parameter, atom: ast.Atom) -> Value:
    """The value of ``atom`` for ``param`` in canonical form (see :class:`ccdsl.contract.Clause`)."""
    kind = param.kind
    if kind in NUMERIC_KINDS:
        return _number(param, atom)
    form = CONFIG_KINDS.get(param.name)
    if form == "flag" or kind == "flag":
        return _flag(param, atom)
    if form == "gib":
        return _gib(param, atom)
    if form == "placement":
        return _placement(param, atom)
    if form == "login":
        return _login(param, atom)
    if kind == "symbol":
        return _symbol(param, atom)
    if kind == "machinetype":
        return _machinetype(atom)
    if kind == "region":
        return _region(atom)
    return _config(atom)


# Counts that may be fractional: accelerators are sold in shares of one GPU (issue 20 item 3); every other count
# stays a whole number.
SHARED_COUNTS = ("accelerator_count", "cluster_accelerator_count")


def _number(param: Parameter, atom: ast.Atom) -> int | float:
    if not isinstance(atom, ast.Number):
        hint = None
        if isinstance(atom, ast.String) and re.fullmatch(r"\s*[-+.\d][\w.+-]*\s*", atom.value):
            hint = f"write it without quotes: {atom.value.strip()}"
        raise ValueProblem(f"{param.name} takes a {_kind_word(param)}, not {describe(atom)}", hint=hint)
    value = units.convert(atom.text, param.kind, param.name)
    if value < 0:
        raise ValueProblem(f"{param.name} cannot be negative ({atom.text})")
    if param.kind == "count":
        if isinstance(value, float):
            if param.name in SHARED_COUNTS and not value.is_integer() and (
                    value < 1 or param.name == "cluster_accelerator_count"):
                return value  # a share of one accelerator (1/8 of an L4): @atleast(0.125) admits it
            if not value.is_integer() and param.name in SHARED_COUNTS:
                raise ValueProblem(f"{param.name} is a count of {param.unit}: a whole number, or a share of one "
                                   f"below 1 (0.125 = 1/8), not {atom.text}")
            if not value.is_integer():
                raise ValueProblem(f"{param.name} is a count of {param.unit or 'items'}: it must be a whole number, "
                                   f"not {atom.text}")
            value = int(value)
        if value > MAX_COUNT:
            raise ValueProblem(f"{param.name} is at most 2**53 = {MAX_COUNT}, not {_short(atom.text)}",
                               hint="write a smaller count" + (", or a range such as @atleast(2)"
                                                               if param.name == "node_count" else ""))
        low = MINIMUM.get(param.name, 0)
        if value < low:
            raise ValueProblem(f"{param.name} must be at least {low}, not {atom.text}")
    return value


def _flag(param: Parameter, atom: ast.Atom) -> bool:
    """``spot => true``: a yes/no switch (``spot => 1`` or ``"yes"`` would be a guess at what was meant)."""
    if isinstance(atom, ast.Symbol) and atom.name in ("true", "false"):
        return atom.name == "true"
    raise ValueProblem(f"{param.name} takes true or false, not {describe(atom)}", hint=f"write {param.name} => true")


def _gib(param: Parameter, atom: ast.Atom) -> int:
    """A whole size in GiB (``100`` or ``100G``; ``0``: the image's own size), at most EBS's largest volume."""
    if not isinstance(atom, ast.Number):
        raise ValueProblem(f"{param.name} takes a size in GiB, not {describe(atom)}",
                           hint=f"write {param.name} => 100 (GiB)")
    value = units.convert(atom.text, "memory", param.name)
    if value < 0 or value > MAX_VOLUME_GIB:
        raise ValueProblem(f"{param.name} is a size between 0 and {MAX_VOLUME_GIB} GiB, not {_short(atom.text)}",
                           hint="0 keeps the image's own size")
    if not float(value).is_integer():
        raise ValueProblem(f"{param.name} is a whole number of GiB, not {_short(atom.text)}")
    return int(value)


def _placement(param: Parameter, atom: ast.Atom) -> str | bool:
    """An EC2 placement strategy, or true (cluster) / false (none)."""
    if isinstance(atom, ast.Symbol) and atom.name in ("true", "false"):
        return atom.name == "true"
    text = atom.value if isinstance(atom, ast.String) else atom.name if isinstance(atom, ast.Symbol) else None
    if text not in PLACEMENT_STRATEGIES:
        raise ValueProblem(f"{param.name} takes {', '.join(PLACEMENT_STRATEGIES)}, true or false, not "
                           f"{_short(describe(atom))}", hint=f"write {param.name} => cluster")
    return text


def _login(param: Parameter, atom: ast.Atom) -> str:
    """A login name of at most 32 characters (what ``useradd`` and sshd accept)."""
    text = atom.value if isinstance(atom, ast.String) else atom.name if isinstance(atom, ast.Symbol) else None
    if text is None or len(text) > MAX_LOGIN or not _LOGIN.fullmatch(text):
        raise ValueProblem(f"{param.name} takes a login name (letters, digits, '_', '.', '-', at most {MAX_LOGIN} "
                           f"characters, not starting with '-'), not {_short(describe(atom))}",
                           hint=f'e.g. {param.name} => "ubuntu"')
    return text


def _short(text: str) -> str:
    return text if len(text) <= 30 else text[:24] + "…"


def _kind_word(param: Parameter) -> str:
    return {"count": "whole number", "memory": "size (e.g. 16G)", "bandwidth": "bandwidth (e.g. 25G)",
            "price": "price in USD per hour (e.g. 10.5)", "fraction": "rate (e.g. 10%)"}.get(param.kind, param.kind)


def _symbol(param: Parameter, atom: ast.Atom) -> str:
    if isinstance(atom, ast.Number):
        valid = valid_symbols(param)
        raise ValueProblem(f"{param.name} takes a symbol, not {describe(atom)}", hint=f"valid values: {valid}")
    text = atom.name if isinstance(atom, ast.Symbol) else atom.value
    domain = param.domain or ""
    node = taxonomy.lookup(domain, text)
    if node is None:
        near = taxonomy.suggest(domain, text, param.levels)
        mean = f"; did you mean {' or '.join(near)}?" if near else ""
        raise ValueProblem(f"unknown {_domain_word(param)} '{text}' for {param.name}{mean}",
                           hint=f"valid values: {valid_symbols(param)}")
    if param.levels is not None and node.level not in param.levels:
        better = [p.name for p in PARAMETERS.values()
                  if p.domain == param.domain and p.kind == "symbol" and (p.levels is None or node.level in p.levels)]
        hint = f"write {better[0]} => {node.name}" if better else None
        raise ValueProblem(f"'{text}' is {_article(node.level)} {node.level}, but {param.name} takes "
                           f"{' or '.join(param.levels)} names: {valid_symbols(param)}", hint=hint)
    return node.name


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _domain_word(param: Parameter) -> str:
    return {"accelerator": "accelerator", "processor": "processor", "provider": "provider",
            "accelerator_type": "accelerator type", "storage_type": "storage type",
            "cpu_architecture": "CPU architecture", "cluster_type": "cluster type"}.get(param.domain or "", "symbol")


def valid_symbols(param: Parameter) -> str:
    """The accepted names of a symbol parameter, for messages (long lists are cut)."""
    domain = param.domain or ""
    names = [n.name for n in taxonomy.nodes(domain, param.levels)]
    if domain == "processor" and param.levels is None:
        names = [n.name for n in taxonomy.nodes(domain, ("manufacturer", "group", "microarchitecture"))]
        models = " or a processor model of the catalog" if taxonomy.PROCESSOR_MODELS else ""
        return ", ".join(names) + models
    more = ", …" if len(names) > _MAX_LISTED else ""
    return ", ".join(names[:_MAX_LISTED]) + more


def machinetype_name(symbol: str) -> str | None:
    """``EC2Type_T3_xLarge`` -> ``t3.xlarge``; ``EC2Type_M7I_Flex_Large`` -> ``m7i-flex.large``;
    ``EC2Type_M7I_Metal_48xl`` -> ``m7i.metal-48xl``.  None when ``symbol`` is not of that shape."""
    m = _MACHINETYPE.fullmatch(symbol)
    if m is None:
        return None
    family, size = m.group(1).split("_"), m.group(2)
    if len(family) > 1 and family[-1].lower() == "metal" and re.fullmatch(r"\d+xl", size, re.IGNORECASE):
        family, size = family[:-1], f"metal-{size}"
    return f"{'-'.join(family)}.{size}".lower()


def _machinetype(atom: ast.Atom) -> str:
    if isinstance(atom, ast.String):
        value = atom.value.strip()
        converted = machinetype_name(value)
        if converted:
            return converted
        if not value or re.search(r"\s", value):
            raise ValueProblem(f'"{atom.value}" is not an instance type name', hint='e.g. "t3.xlarge"')
        return value
    if isinstance(atom, ast.Symbol):
        converted = machinetype_name(atom.name)
        if converted is None:
            raise ValueProblem(f"'{atom.name}' is not an instance type",
                               hint='write EC2Type_<Family>_<Size> (EC2Type_T3_xLarge) or a string ("t3.xlarge")')
        return converted
    raise ValueProblem(f"node_machinetype takes an instance type, not {describe(atom)}",
                       hint='write EC2Type_T3_xLarge or "t3.xlarge"')


def _region(atom: ast.Atom) -> str:
    if isinstance(atom, ast.Number):
        raise ValueProblem(f"cluster_locale takes a region, not {describe(atom)}", hint='e.g. us_east_1 or "us-east-1"')
    text = atom.name.replace("_", "-") if isinstance(atom, ast.Symbol) else atom.value
    if not _REGION.fullmatch(text):
        raise ValueProblem(f"'{atom.name if isinstance(atom, ast.Symbol) else atom.value}' is not a region name",
                           hint='e.g. us_east_1 or "us-east-1"')
    return text


def _config(atom: ast.Atom) -> Value:
    """Configuration values are kept as written: numbers as int/float (with a unit suffix: the text), strings,
    symbols as their name, ``true``/``false`` as booleans."""
    if isinstance(atom, ast.String):
        return atom.value
    if isinstance(atom, ast.Symbol):
        return {"true": True, "false": False}.get(atom.name, atom.name)
    value, suffix = units.split(atom.text)
    return atom.text if suffix else value
