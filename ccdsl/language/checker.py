"""Semantic checks: contract nodes -> checked :class:`~ccdsl.contract.Contract` values plus every diagnostic.

The checker never stops at the first problem: each clause is checked on its own and every error and warning is
collected (sqlglot's ErrorLevel.RAISE).  A contract with an error is left out of the result; the caller decides
whether to raise.  Text and :func:`ccdsl.cluster` go through the same code, so their messages agree.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from ccdsl import taxonomy
from ccdsl.contract import QUALIFIERS, ROLES, Clause, Contract, Span, Value
from ccdsl.errors import Diagnostic
from ccdsl.language import ast
from ccdsl.language.units import ValueProblem
from ccdsl.language.values import normalize
from ccdsl.parameters import ORDERED_QUALIFIERS, PARAMETERS, Parameter, canonical, suggest

# How many values each qualifier takes: (min, max); None = no upper bound.
ARITY = {"just": (1, 1), "atleast": (1, 1), "atmost": (1, 1), "between": (2, 2), "unrestricted": (0, 0),
         "oneof": (1, None), "not": (1, None)}
# The most separate values a @oneof/@not of node_count or of a cluster total may list (for a count, a run of
# consecutive whole numbers such as 1, 2, …, 150000 is one).  Why a cap: these lists go into the SMT problem Z3
# minimizes, one comparison per value or run, and an unstructured list of 4,096 takes Z3 seconds to prove optimal
# (1,024: about 0.5 s, see benchmarks/bench_limits.py); numpy alone needs none.  Per-node clauses are not capped
# (numpy alone decides them).
MAX_LISTED = 1024
# The most prices a ManagerWorkers contract's @oneof budget (cluster_price_per_hour) may list.  Why a cap: each
# price is a total the workers plus any manager price of their region may meet, so the pairing of workers with
# managers (BudgetPairs in ccdsl/resolver/solve.py) looks every price up in every worker row's window of counts
# over every region: rows × prices.  A list few clusters meet (prices a fraction of a cent off the catalog's grid,
# unsatisfiable, ranked twice) took 1.8 s CPU for 128 prices with 1..10**6 nodes and --any-region, 3.3 s for 256
# and 8 s for 1,024; 64 take at most about 1.2 s (benchmarks/bench_limits.py).  PeerWorkers budgets keep MAX_LISTED.
MAX_LISTED_BUDGET = 64


@dataclass
class _Report:
    path: str | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    errors: int = 0  # counted as they are added: recounting per contract made checking quadratic

    def add(self, message: str, pos: ast.Pos | None, hint: str | None = None, severity: str = "error") -> Diagnostic:
        d = Diagnostic(message, path=self.path, line=pos.line if pos else None, column=pos.column if pos else None,
                       end_column=_end_column(pos), hint=hint, severity=severity)
        self.diagnostics.append(d)
        self.errors += severity == "error"
        return d


def _end_column(pos: ast.Pos | None) -> int | None:
    if pos is None:
        return None
    return pos.end_column if pos.end_line == pos.line else pos.column + 1


def check_contracts(nodes: list[ast.ContractNode], path: str | None = None,
                    source: str | None = None) -> tuple[dict[str, Contract], list[Diagnostic]]:
    """Check every contract of a file.  Returns the contracts without errors (in file order) and all diagnostics."""
    report = _Report(path)
    contracts: dict[str, Contract] = {}
    first_seen: dict[str, ast.ContractNode] = {}
    for node in nodes:
        before = _errors(report)
        if node.name in first_seen:
            other = first_seen[node.name]
            where = f" on line {other.name_pos.line}" if other.name_pos else ""
            report.add(f"duplicate contract name '{node.name}' (first defined{where})", node.name_pos,
                       hint="give each contract its own name")
        else:
            first_seen[node.name] = node
        contract = _check_contract(node, report)
        if _errors(report) == before and contract is not None:
            contracts[node.name] = contract
    return contracts, report.diagnostics


def _errors(report: _Report) -> int:
    return report.errors


def _check_contract(node: ast.ContractNode, report: _Report) -> Contract | None:
    clauses: list[Clause] = []
    config: list[tuple[str, Value]] = []
    config_spans: list[tuple[str, Span | None]] = []
    warnings: list[str] = []
    seen: dict[tuple[str | None, str], ast.ClauseNode] = {}
    roles_used: list[ast.Parameter] = []
    for clause in node.clauses:
        checked = _check_clause(clause, report, warnings)
        if checked is None:
            continue
        param, role = checked
        key = (role, param.name)
        if key in seen:
            first = seen[key]
            where = f" (first given on line {first.pos.line})" if first.pos else ""
            written = _scoped(role, clause.parameter.name)
            same = _scoped(role, param.name)
            what = written if written == same else f"{written} (another spelling of {same})"
            report.add(f"duplicate parameter {what}{where}", clause.parameter.pos,
                       hint="give each parameter once per contract")
            continue
        seen[key] = clause
        if role is not None:
            roles_used.append(clause.parameter)
        value = _check_value(param, clause.value, report)
        if value is None:
            continue
        qualifier, values = value
        if param.kind == "config":
            config.append((_scoped(role, param.name), values[0]))
            config_spans.append((_scoped(role, param.name), _span(clause.pos, clause.text, report.path)))
        else:
            clauses.append(Clause(param.name, qualifier, values, role, _span(clause.pos, clause.text, report.path)))
    _check_roles(clauses, roles_used, seen, report)
    contract = Contract(node.name, tuple(clauses), tuple(config), _span(node.pos, node.text, report.path),
                        report.path, tuple(warnings), tuple(config_spans))
    _check_spot_bounds(contract, seen, report)
    _check_listed_budget(contract, seen, report)
    return contract


def _check_listed_budget(contract: Contract, seen: dict[tuple[str | None, str], ast.ClauseNode],
                         report: _Report) -> None:
    """A ManagerWorkers cluster's ``@oneof`` budget lists at most :data:`MAX_LISTED_BUDGET` prices (see there
    why); checked once the contract is whole, as cluster_type may come before or after the budget."""
    budget = contract.clause("cluster_price_per_hour")
    if contract.cluster_type != "ManagerWorkers" or budget is None or budget.qualifier != "oneof" \
            or len(budget.values) <= MAX_LISTED_BUDGET:
        return
    node = seen.get(budget.key)
    pos = node.value.pos if node is not None and isinstance(node.value, ast.Qualified) else None
    report.add(f"@oneof of cluster_price_per_hour lists {len(budget.values)} prices; a ManagerWorkers cluster's "
               f"budget may list at most {MAX_LISTED_BUDGET}", pos,
               hint=f"bound the budget with a range (@atmost, @between) instead, or list the {MAX_LISTED_BUDGET} "
                    "prices that matter most")


def _check_spot_bounds(contract: Contract, seen: dict[tuple[str | None, str], ast.ClauseNode],
                       report: _Report) -> None:
    """``spot_interruption`` bounds the interruption rate of spot nodes: a contract whose nodes it would bound are
    all on-demand most likely forgot ``spot => true`` (on-demand nodes are not interrupted by the spot market, so
    the clause would mean nothing).  ``resolve --spot`` cannot rescue it: the contract itself says spot."""
    spot = contract.spot_roles
    for c in contract.clauses:
        if c.parameter != "spot_interruption":
            continue
        applies = (c.role,) if c.role is not None else contract.roles
        if any(r in spot for r in applies):
            continue
        node = seen.get(c.key)
        who = f"the {c.role}" if c.role else "this contract's nodes"
        fix = f"{c.role}.spot => true" if c.role else "spot => true" + (
            " (or worker.spot => true)" if contract.cluster_type == "ManagerWorkers" else "")
        report.add(f"spot_interruption bounds the interruption rate of spot nodes, but {who} "
                   f"{'is' if c.role else 'are'} on-demand", node.parameter.pos if node is not None else None,
                   hint=f"add {fix}, or drop spot_interruption")


def _scoped(role: str | None, name: str) -> str:
    return f"{role}.{name}" if role else name


def _span(pos: ast.Pos | None, text: str, path: str | None) -> Span | None:
    if pos is None:
        return None
    return Span(pos.line, pos.column, pos.end_line, pos.end_column, text, path)


def _check_clause(clause: ast.ClauseNode, report: _Report, warnings: list[str]) -> tuple[Parameter, str | None] | None:
    """The parameter a clause names (aliases resolved, with a warning) and its role; None after an error."""
    p = clause.parameter
    ok = True
    if p.role is not None and p.role not in ROLES:
        near = difflib.get_close_matches(p.role, ROLES, n=1, cutoff=0.5)
        mean = f"; did you mean {near[0]}?" if near else ""
        report.add(f"unknown role '{p.role}'{mean}", p.role_pos,
                   hint="a parameter can be scoped to manager or worker of a ManagerWorkers cluster")
        ok = False
    name = canonical(p.name)
    if name is None:
        near = suggest(p.name)
        mean = f"; did you mean {' or '.join(near)}?" if near else ""
        report.add(f"unknown parameter '{p.name}'{mean}", p.name_pos,
                   hint=None if near else "the parameters are listed by: python -m ccdsl.language.reference")
        return None
    if name != p.name:
        d = report.add(f"'{p.name}' is the seed's spelling of {name}; prefer '{name}'", p.name_pos, severity="warning")
        warnings.append(d.message)
    param = PARAMETERS[name]
    if p.role is not None and ok and param.scope in ("cluster", "total"):
        report.add(f"{name} describes the whole cluster; it cannot be scoped to the {p.role}", p.role_pos,
                   hint=f"write {name} without '{p.role}.'")
        ok = False
    return (param, p.role) if ok else None


def _check_roles(clauses: list[Clause], roles_used: list[ast.Parameter],
                 seen: dict[tuple[str | None, str], ast.ClauseNode], report: _Report) -> None:
    """``manager.`` / ``worker.`` only make sense in a ManagerWorkers cluster."""
    if not roles_used:
        return
    cluster_type = next((c for c in clauses if c.parameter == "cluster_type" and c.role is None), None)
    if cluster_type is None and (None, "cluster_type") in seen:
        return  # cluster_type is wrong and already reported
    kind = str(cluster_type.values[0]) if cluster_type and cluster_type.values else "PeerWorkers"
    if kind == "ManagerWorkers":
        return
    for p in roles_used:
        how = "is the default" if cluster_type is None else f"is set on line {cluster_type.span.line}" \
            if cluster_type.span else "is given"
        fix = "add cluster_type => ManagerWorkers" if cluster_type is None else "make it cluster_type => ManagerWorkers"
        report.add(f"'{p.role}.' only applies to a ManagerWorkers cluster, but this contract's cluster_type is "
                   f"{kind} (which {how})", p.role_pos, hint=f"{fix}, or drop '{p.role}.'")


def _check_value(param: Parameter, value: ast.Value, report: _Report) -> tuple[str, tuple[Value, ...]] | None:
    """(qualifier, normalized values) of a clause's value; None after an error."""
    if isinstance(value, ast.Qualified):
        qualifier, args, where = value.name, value.args, value.name_pos
    else:
        qualifier, args, where = "just", (value,), value.pos
    if qualifier not in QUALIFIERS:
        near = difflib.get_close_matches(qualifier, QUALIFIERS, n=1, cutoff=0.5)
        mean = f"; did you mean @{near[0]}?" if near else ""
        report.add(f"unknown qualifier '@{qualifier}'{mean}", where,
                   hint="qualifiers: " + ", ".join("@" + q for q in QUALIFIERS))
        return None
    if qualifier not in param.qualifiers:
        ordered = [p.name for p in PARAMETERS.values() if p.ordered]
        extra = (f"; generations are ordered on {' and '.join(ordered)} only (e.g. accelerator_architecture => "
                 "@atleast(Ampere))" if param.kind == "symbol" and qualifier in ORDERED_QUALIFIERS else "")
        report.add(f"{param.name} cannot take @{qualifier}: it is {_kind_phrase(param)}", where,
                   hint="use " + ", ".join("@" + q for q in param.qualifiers) + extra)
        return None
    low, high = ARITY[qualifier]
    if len(args) < low or (high is not None and len(args) > high):
        report.add(_arity_message(qualifier, len(args)), value.pos if isinstance(value, ast.Qualified) else where)
        return None
    values: list[Value] = []
    ok = True
    for arg in args:
        try:
            values.append(normalize(param, arg))
        except ValueProblem as problem:
            report.add(problem.message, arg.pos, hint=problem.hint)
            ok = False
    if not ok:
        return None
    if qualifier == "between":
        # two numbers: the arity is checked above and normalize() rejected anything else (isinstance narrows)
        first, last = args[0], args[1]
        if isinstance(first, ast.Number) and isinstance(last, ast.Number) and float(values[0]) > float(values[1]):
            report.add(f"@between({first.text}, {last.text}) is empty: the lower bound is above the upper bound",
                       value.pos, hint=f"write @between({last.text}, {first.text})")
            return None
    if param.kind == "symbol" and qualifier in ORDERED_QUALIFIERS and not _ordered_bound(param, qualifier, args,
                                                                                        values, value, report):
        return None
    if qualifier in ("oneof", "not"):
        values = list(dict.fromkeys(values))
        pieces = _pieces(param, values)
        if pieces > MAX_LISTED and (param.name == "node_count" or param.scope == "total"):
            runs = " (a run of consecutive whole numbers counts once)" if param.kind == "count" else ""
            report.add(f"@{qualifier} of {param.name} lists {pieces} separate values{runs}; it may list at most "
                       f"{MAX_LISTED}", value.pos if isinstance(value, ast.Qualified) else where,
                       hint="use a range (@atleast, @atmost, @between) for most of them")
            return None
    return qualifier, tuple(values)


def _ordered_bound(param: Parameter, qualifier: str, args: tuple[ast.Atom, ...], values: list[Value],
                   value: ast.Value, report: _Report) -> bool:
    """A bound on generations: every symbol has an order (taxonomy.ORDERS), both ends of @between are of one line
    and in order.  Reports each problem at its position; False after one."""
    domain = param.domain or ""
    lines = "; ".join(f"{line}: {' < '.join(taxonomy.line_names(domain, line))}" for line in taxonomy.ORDERS[domain])
    where = [taxonomy.position(domain, str(v)) for v in values]
    ok = True
    for arg, v, w in zip(args, values, where):
        if w is None:
            report.add(f"{v} has no order: @{qualifier} on {param.name} needs a generation of one line",
                       arg.pos, hint=f"ordered generations: {lines}; or use @oneof({v}, …)")
            ok = False
    if ok and qualifier == "between":
        (line_a, rank_a), (line_b, rank_b) = where[0] or ("", 0), where[1] or ("", 0)
        if line_a != line_b:
            report.add(f"@between({values[0]}, {values[1]}) mixes two lines ({line_a} and {line_b}): generations "
                       "are ordered within one maker's line only", value.pos, hint=f"ordered generations: {lines}")
            ok = False
        elif rank_a > rank_b:
            report.add(f"@between({values[0]}, {values[1]}) is empty: {values[0]} is newer than {values[1]}",
                       value.pos, hint=f"write @between({values[1]}, {values[0]})")
            ok = False
    return ok


def _pieces(param: Parameter, values: list[Value]) -> int:
    """How many separate values a list has for the cap :data:`MAX_LISTED`: for a count, each run of consecutive
    whole numbers is one (the SMT problem writes it as one range); for memory or prices each value is one."""
    if param.kind != "count" or len(values) <= MAX_LISTED:
        return len(values)
    whole = sorted({int(v) for v in values if isinstance(v, int)})
    return sum(1 for i, v in enumerate(whole) if i == 0 or v != whole[i - 1] + 1) + sum(
        1 for v in values if not isinstance(v, int))


def _kind_phrase(param: Parameter) -> str:
    if param.kind == "config":
        return "a configuration value (given as is)"
    if param.name == "cluster_type":
        return "a single cluster type"
    return {"symbol": "a symbol", "machinetype": "an instance type", "region": "a region",
            "flag": "true or false"}.get(param.kind, param.kind)


def _arity_message(qualifier: str, n: int) -> str:
    low, high = ARITY[qualifier]
    if qualifier == "unrestricted":
        return f"@unrestricted takes no values, but {n} {'was' if n == 1 else 'were'} given"
    if low == high:
        want = "one value" if low == 1 else "two values (low, high)"
        return f"@{qualifier} takes {want}, but {n} {'was' if n == 1 else 'were'} given"
    return f"@{qualifier} takes at least one value"


__all__ = ["ARITY", "check_contracts"]
