"""Generated contract *text* for the resolver's property tests (issue 18): every parameter of
``ccdsl.parameters.PARAMETERS`` with the qualifiers it takes, values of its kind (unit suffixes, percentages, symbols
and aliases of ``ccdsl.taxonomy``, instance types and regions of the catalog in use, in symbol or string form),
``manager.``/``worker.`` scopes in ManagerWorkers contracts, totals and budgets — laid out in every way
``grammar/ccdsl.lark`` allows: the parenthesized and the bare form, optional and trailing commas, line breaks, blank
lines and comments inside parentheses (the post-lexer drops newlines at depth > 0, qualifier lists included),
``\\`` continuations anywhere, spaces around ``.`` and ``=>``, CRLF, other contracts around it.

A contract is drawn once as a list of :class:`ClauseSpec` (what it says) and rendered by :func:`layouts` as many
times as wanted (how it is written), so "the same clauses, another layout" is one draw of the spec and two of the
layout.

Ranges (issue 18 item 3).  Since the resolver's bounded-cost fix (``counts.py`` ``_exotic``, ``solve.py``
``BudgetPairs``, the checker's cap of 1,024 listed values) the generator draws ``@oneof``/``@not`` lists of up to
:data:`LONG_LIST` values one time in eight, ManagerWorkers node counts over the whole range on the shipped catalog,
and ManagerWorkers budgets there too (``cluster_price_per_hour => @atleast(0)`` with ``--any-region`` took 10 s and
0.9 GB before ``BudgetPairs``; a plain test in ``test_resolver_generated`` keeps it).  Still narrow: ManagerWorkers
node counts stay at ``SMALL_COUNTS`` on the oracle's catalogs (it tries managers × workers × counts).

ManagerWorkers totals take every qualifier, and roles every qualifier including ``@unrestricted``: they were
narrowed while a conflict left out a role's override (``c=@cluster(cluster_type=>ManagerWorkers,
manager.node_provider=>@unrestricted, node_provider=>"Local")`` named only ``node_provider=>"Local"``; kept in
``test_resolver_layout``, fixed by ``explain._as_written``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from hypothesis import strategies as st

from ccdsl import taxonomy
from ccdsl.contract import ROLES
from ccdsl.language import ast
from ccdsl.language.units import FACTORS, PERCENT
from ccdsl.parameters import ALIASES, MAX_COUNT, ORDERED_QUALIFIERS, PARAMETERS, Parameter

MAX_LIST = 4  # values of a usual @oneof/@not list
LONG_LIST = 64  # values of a long one, drawn sometimes (check caps at 1,024; at 64 for a ManagerWorkers @oneof budget)
SMALL_COUNTS = 64  # ManagerWorkers node counts on the oracle's catalogs (it tries managers × workers × counts)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
PUNCTUATION = {"(", ")", ",", "=", "=>", "."}


@dataclass(frozen=True)
class ClauseSpec:
    """One clause as written: ``role.name => @qualifier(atoms)``; ``qualifier`` None is the bare value form
    (``name => atom``); ``parens`` False writes a qualifier without its parentheses (``@unrestricted``)."""

    name: str  # as written: a canonical name or an alias
    role: str | None
    qualifier: str | None
    atoms: tuple[str, ...]
    parens: bool = True

    def tokens(self) -> list[str]:
        out = [self.role, ".", self.name] if self.role else [self.name]
        out.append("=>")
        if self.qualifier is None:
            return [*out, self.atoms[0]]
        out.append("@" + self.qualifier)
        if not self.parens:
            return out
        body: list[str] = []
        for i, a in enumerate(self.atoms):
            body += [",", a] if i else [a]
        return [*out, "(", *body, ")"]


@dataclass(frozen=True)
class Universe:
    """The names values are drawn from: the catalog's instance types and regions (catalog facts, not a hand
    list), and what the oracle can afford."""

    types: tuple[str, ...]
    regions: tuple[str, ...]
    oracle: bool = False  # keep to what the brute-force oracle can try (bounded ManagerWorkers counts)


def _number(x: float | int) -> str:
    if isinstance(x, int):
        return str(x)
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def _spellings(x: float | int) -> list[str]:
    """Ways the grammar's NUMBER writes the same value: ``4``, ``+4``, ``4.``, ``4.0``, ``4e0``, ``.5``."""
    plain = _number(x)
    out = [plain, "+" + plain, f"{float(x):e}"]
    if "." not in plain and "e" not in plain:
        out += [plain + ".", plain + ".0"]
    if plain.startswith("0."):
        out.append(plain[1:])
    return out


def _string(text: str) -> str:
    """``text`` as a STRING token (the escapes the parser reads back: ``\\n``, ``\\t``, ``\\"``, ``\\\\``)."""
    body = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return '"' + body + '"'


def _symbol_or_string(draw, name: str) -> str:
    """A symbol when the name is one (``Ada``), else a string (``"Ada Lovelace"``); sometimes a string anyway."""
    if NAME.fullmatch(name) and draw(st.integers(0, 4)):
        return name
    return _string(name)


@st.composite
def count_atom(draw, p: Parameter, universe: Universe, manager_workers: bool) -> str:
    low = 1 if p.name in ("node_count", "node_process_count") else 0
    if p.name == "node_count" and manager_workers and universe.oracle:  # the oracle tries managers × workers × counts
        return str(draw(st.integers(1, SMALL_COUNTS)))
    if p.scope == "total":
        big = st.sampled_from([10**4, 10**6, 10**9, 2**40, MAX_COUNT])
        n = draw(st.integers(low, 4096) | st.sampled_from([0, 1, 2, 8, 64, 96, 128, 192, 256]) | big)
    elif p.name == "node_count":
        n = draw(st.integers(1, 40) | st.integers(1, 1100) | st.sampled_from([1024, 1025, 10**5, 10**9, MAX_COUNT]))
    else:
        n = draw(st.integers(low, 8) | st.sampled_from([0, 1, 2, 4, 8, 16, 32, 48, 64, 96, 128, 192, 448]))
    n = max(n, low)
    return draw(st.sampled_from(_spellings(n) if n < 10**15 else [str(n), f"+{n}"]))


@st.composite
def measure_atom(draw, p: Parameter) -> str:
    """A memory or bandwidth: a number in the parameter's unit, or with a suffix of :data:`units.FACTORS`."""
    factors = FACTORS[p.kind]
    value = draw(st.sampled_from([0, 0.5, 1, 2, 4, 8, 12.5, 16, 24, 25, 32, 40, 48, 64, 80, 100, 128, 192, 256,
                                  384, 512, 768, 1024, 1536, 2048, 4096, 24576]) | st.integers(0, 2048))
    suffix = draw(st.sampled_from(["", *factors]))
    if suffix:
        scaled = value / factors[suffix]
        if scaled == int(scaled) and scaled < 10**9:
            return f"{int(scaled)}{suffix}"
    return draw(st.sampled_from(_spellings(value)))


@st.composite
def price_atom(draw, p: Parameter) -> str:
    if p.scope == "total":
        cents = draw(st.integers(0, 200_000) | st.sampled_from([1, 5, 10, 100, 1000, 10**6]))
    else:
        cents = draw(st.integers(0, 3000) | st.sampled_from([0, 1, 5, 10, 50, 100, 2000, 10_000]))
    return draw(st.sampled_from(_spellings(cents / 100 if cents % 100 else cents // 100)))


@st.composite
def fraction_atom(draw) -> str:
    percent = draw(st.sampled_from([0, 5, 10, 15, 20, 50, 100]) | st.integers(0, 100))
    if draw(st.booleans()):
        return f"{percent}{PERCENT}"
    return draw(st.sampled_from(_spellings(percent / 100)))


@st.composite
def symbol_atom(draw, p: Parameter) -> str:
    """A node of the parameter's taxonomy domain (at an accepted level), by name, alias or catalog label."""
    node = draw(st.sampled_from(taxonomy.nodes(p.domain or "", p.levels)))
    spelling = draw(st.sampled_from([node.name, node.label, *node.aliases]))
    return _symbol_or_string(draw, spelling)


def _ec2type(instance_type: str) -> str | None:
    """``t3.xlarge`` as ``EC2Type_T3_xlarge`` (the symbol form; None when the name has no such form)."""
    family, _, size = instance_type.partition(".")
    if not size or not NAME.fullmatch(family.replace("-", "_")) or not re.fullmatch(r"[A-Za-z0-9]+", size):
        return None
    return f"EC2Type_{family.replace('-', '_').upper()}_{size}"


@st.composite
def machinetype_atom(draw, universe: Universe) -> str:
    t = draw(st.sampled_from(universe.types))
    symbol = _ec2type(t)
    return symbol if symbol is not None and draw(st.booleans()) else _string(t)


@st.composite
def region_atom(draw, universe: Universe) -> str:
    r = draw(st.sampled_from(universe.regions))
    return r.replace("-", "_") if draw(st.booleans()) and NAME.fullmatch(r.replace("-", "_")) else _string(r)


# Configuration values are free text carried to deploy (no table says what they look like): a plausible one each.
CONFIG_VALUES = {"image_id": ['"ami-0123456789abcdef0"'], "user": ['"ubuntu"', "ec2_user"],
                 "key_name": ['"my-key"'], "subnet_id": ['"subnet-1"'], "security_group_id": ['"sg-1"'],
                 "ssh_cidr": ['"10.0.0.0/8"'], "placement_group": ['"cluster"'], "spot": ["true", "false"],
                 "root_volume_size": ["100", "64G"], "tags": ['"team=hpc, project=x"'],
                 "mpi_flags": ['"-bind-to core"'], "python": ['"python3"'], "hosts": ['"node1,node2"'],
                 "sshflags": ['"-A"']}


@st.composite
def value_atom(draw, p: Parameter, universe: Universe, manager_workers: bool) -> str:
    if p.kind == "count":
        return draw(count_atom(p, universe, manager_workers))
    if p.kind in FACTORS:
        return draw(measure_atom(p))
    if p.kind == "price":
        return draw(price_atom(p))
    if p.kind == "fraction":
        return draw(fraction_atom())
    if p.kind == "symbol":
        return draw(symbol_atom(p))
    if p.kind == "machinetype":
        return draw(machinetype_atom(universe))
    if p.kind == "region":
        return draw(region_atom(universe))
    if p.kind == "number":  # a plain number: compute capabilities the catalog has, and others around them
        known = sorted(set(taxonomy.COMPUTE_CAPABILITY.values()))
        return draw(st.one_of(st.sampled_from([_number(x) for x in known]),
                              st.integers(0, 1300).map(lambda x: _number(x / 100))))
    if p.kind == "flag":
        return draw(st.sampled_from(["true", "false"]))
    return draw(st.sampled_from(CONFIG_VALUES.get(p.name, ['"x"'])))


@st.composite
def generation_atom(draw, p: Parameter) -> str:
    """A generation of one of the parameter's ordered lines (taxonomy.ORDERS), for @atleast/@atmost/@between;
    now and then any symbol (no order: a ContractError with a position, which is an answer too)."""
    lines = taxonomy.ORDERS.get(p.domain or "", {})
    if not lines or not draw(st.integers(0, 9)):
        return draw(symbol_atom(p))
    line = draw(st.sampled_from(sorted(lines)))
    return _symbol_or_string(draw, draw(st.sampled_from(taxonomy.line_names(p.domain or "", line))))


def _generation_rank(p: Parameter, atom: str) -> int:
    """The rank of a generation in its line (0 when it has none), to order the two bounds of @between."""
    where = taxonomy.position(p.domain or "", atom.strip('"'))
    return where[1] if where else 0


def _numeric_value(atom: str) -> float:
    """The magnitude of an atom, to order the two bounds of @between (units ignored: a wrong order is a
    ContractError, which is an answer too)."""
    from ccdsl.language.units import convert

    return float(convert(atom, "memory") if atom[-1:] in FACTORS["memory"] else
                 convert(atom, "fraction") if atom.endswith(PERCENT) else convert(atom, "count"))


@st.composite
def clause_spec(draw, p: Parameter, role: str | None, universe: Universe, manager_workers: bool) -> ClauseSpec:
    """One clause of parameter ``p``: a qualifier it takes and values of its kind."""
    qualifiers = list(p.qualifiers)
    if p.name == "node_count" and manager_workers and universe.oracle:  # bounded: the oracle lists the counts
        qualifiers = [q for q in qualifiers if q in ("just", "oneof", "between", "atmost")]
    name = p.name
    aliases = [a for a, canonical in ALIASES.items() if canonical == p.name]
    if aliases and not draw(st.integers(0, 5)):
        name = draw(st.sampled_from(aliases))
    q = draw(st.sampled_from(qualifiers))
    ordered_symbol = p.kind == "symbol" and q in ORDERED_QUALIFIERS
    atom = generation_atom(p) if ordered_symbol else value_atom(p, universe, manager_workers)
    if q == "unrestricted":
        return ClauseSpec(name, role, q, (), parens=draw(st.booleans()))
    if q == "between":
        a, b = draw(atom), draw(atom)
        if draw(st.integers(0, 9)):  # mostly in order; sometimes reversed (a ContractError with a position)
            a, b = sorted((a, b), key=(lambda x: _generation_rank(p, x)) if ordered_symbol else _numeric_value)
        return ClauseSpec(name, role, q, (a, b))
    if q in ("oneof", "not"):
        low, high = (MAX_LIST + 1, LONG_LIST) if not draw(st.integers(0, 7)) else (1, MAX_LIST)  # sometimes long
        return ClauseSpec(name, role, q, tuple(draw(st.lists(atom, min_size=low, max_size=high))))
    value = draw(atom)
    if q == "just" and draw(st.booleans()):
        return ClauseSpec(name, role, None, (value,))  # the bare value form
    return ClauseSpec(name, role, q, (value,))


@st.composite
def contract_specs(draw, universe: Universe, max_clauses: int = 6) -> list[ClauseSpec]:
    """The clauses of one contract: distinct (role, parameter) pairs over every parameter (config included);
    ManagerWorkers about a third of the time, then node-scope and config parameters scoped to a role or not."""
    kind = draw(st.sampled_from(["PeerWorkers", "ManagerWorkers", "ManagerWorkers", "PeerWorkersMPI", None]))
    mw = kind == "ManagerWorkers"
    names = draw(st.lists(st.sampled_from(sorted(n for n in PARAMETERS if n != "cluster_type")), max_size=max_clauses,
                          unique=True))
    specs: list[ClauseSpec] = []
    if kind is not None:
        specs.append(ClauseSpec("cluster_type", None, draw(st.sampled_from([None, "just"])), (kind,)))
    seen: set[tuple[str | None, str]] = set()
    for n in names:
        p = PARAMETERS[n]
        roles: list[str | None] = [None]
        if mw and p.scope in ("node", "config"):
            roles = draw(st.lists(st.sampled_from([None, *ROLES]), min_size=1, max_size=2, unique=True))
        for role in roles:
            if (role, n) not in seen:
                seen.add((role, n))
                specs.append(draw(clause_spec(p, role, universe, mw)))
    return draw(st.permutations(specs))


def specs_of(node: ast.ContractNode) -> list[ClauseSpec]:
    """The clauses of a parsed contract as specs, to lay a contract someone wrote out again."""
    out = []
    for c in node.clauses:
        v = c.value
        if isinstance(v, ast.Qualified):
            out.append(ClauseSpec(c.parameter.name, c.parameter.role, v.name, tuple(_atom(a) for a in v.args),
                                  parens=v.parens))
        else:
            out.append(ClauseSpec(c.parameter.name, c.parameter.role, None, (_atom(v),)))
    return out


def _atom(a: ast.Atom) -> str:
    if isinstance(a, ast.Number):
        return a.text
    if isinstance(a, ast.String):
        return _string(a.value)
    return a.name


# -- layout ---------------------------------------------------------------------------------------------------------

# Comments hold what would mean something outside one: brackets, arrows, qualifiers, quotes, backslashes.
COMMENTS = ("#", "# note", "#(x, y) => @oneof(", '# "unterminated', "#\\", "## été", "#)", "#\t=> 4,")
FLAT = ("  ", "\t", " \f", " \\\n", "\\\n  ", " \\ \n\t")  # spaces and continuations: allowed anywhere
NEWLINES = ("\n", "\n    ", "\n\n  ", " {c}\n  ", "\n{c}\n", "\t{c}\n\n", " \\\n  {c}\n")  # inside parentheses
GAP_CHOICES = 16


def gap(choice: int, depth: int, left: str, right: str) -> str:
    """What goes between two tokens, picked by ``choice`` (0..GAP_CHOICES - 1): mostly one space (or nothing
    next to punctuation); at depth 0 only spaces and ``\\`` continuations (a line break ends the contract);
    inside parentheses also line breaks, blank lines and comments."""
    may_touch = left in PUNCTUATION or right in PUNCTUATION
    if choice < 8:
        return "" if may_touch and choice < 3 else " "
    if depth == 0 or choice < 10:
        return FLAT[choice % len(FLAT)]
    return NEWLINES[choice % len(NEWLINES)].format(c=COMMENTS[(choice * 7 + len(left)) % len(COMMENTS)])


@dataclass(frozen=True)
class Rendered:
    text: str
    name: str


@st.composite
def layouts(draw, specs: Sequence[ClauseSpec], name: str = "c") -> Rendered:
    """``specs`` written as one contract of a file, in a layout drawn here."""
    bare = draw(st.integers(0, 3)) == 0
    tokens = [name, "=", "@cluster"]
    if not bare:
        tokens.append("(")
    for i, spec in enumerate(specs):
        if i and (not bare or draw(st.integers(0, 3))):
            tokens.append(",")
        tokens += spec.tokens()
    if specs and draw(st.integers(0, 3)) == 0:
        tokens.append(",")  # a trailing comma (both forms allow one)
    if not bare:
        tokens.append(")")
    choices = draw(st.lists(st.integers(0, GAP_CHOICES - 1), min_size=len(tokens) - 1, max_size=len(tokens) - 1))
    out = [tokens[0]]
    depth = 0
    for left, right, choice in zip(tokens, tokens[1:], choices):
        depth += left == "("
        depth -= left == ")"
        out.append(gap(choice, depth, left, right))
        out.append(right)
    body = "".join(out)
    before = draw(st.sampled_from(["", "\n", "# contracts\n", "\n\n# a file\n\n", "other = @cluster node_count => 1\n",
                                   "other = @cluster(node_count =>\n 2)\n\n"]))
    after = draw(st.sampled_from(["\n", "", "  # the end\n", "\n\n", "\nlater = @cluster(node_vcpus_count => 2)\n"]))
    text = before + body + after
    if draw(st.integers(0, 3)) == 0:
        text = text.replace("\n", "\r\n")  # CRLF throughout
    return Rendered(text, name)

