"""The checked contract: the value every later stage (resolver, executor) consumes.

The language front end (``ccdsl.language``) turns ``.ccc`` text into these values, and ``ccdsl.cluster(...)`` builds
the same values from Python.  Values are already normalized to the catalog's units (GiB, Gbit/s, USD/h, counts)
and symbols to canonical taxonomy names, so no later stage re-parses text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias

Value: TypeAlias = int | float | str | bool

QUALIFIERS = ("just", "atleast", "atmost", "between", "unrestricted", "oneof", "not")
ROLES = ("manager", "worker")


@dataclass(frozen=True)
class Span:
    """Where a clause was written.  1-based line and column; ``end_column`` exclusive; ``text`` is the source."""

    line: int
    column: int
    end_line: int
    end_column: int
    text: str = ""
    path: str | None = None


@dataclass(frozen=True)
class Clause:
    """One ``parameter => qualifier(values)`` of a contract.

    ``parameter`` is the canonical name from :mod:`ccdsl.parameters`; ``role`` is ``"manager"``, ``"worker"`` or
    None (unscoped).  ``values`` are normalized: numbers in the parameter's unit, symbols as canonical taxonomy
    names (``"AdaLovelace"``), machine types as provider names (``"t3.xlarge"``).

    ``just``: one value; ``atleast``/``atmost``: one bound (inclusive); ``between``: (low, high) inclusive;
    ``unrestricted``: no values; ``oneof``: several allowed values; ``not``: values excluded.
    """

    parameter: str
    qualifier: str
    values: tuple[Value, ...] = ()
    role: str | None = None
    span: Span | None = None
    # The catalog column the clause reads when it is not its parameter's: a role with ``smt => false`` counts cores
    # as its vCPUs (set by the resolver for each role, :func:`ccdsl.resolver.compile.role_specs`).
    column: str = field(default="", compare=False, repr=False)

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.role, self.parameter)

    @property
    def text(self) -> str:
        """The clause as the user wrote it (or a canonical rendering when built in code)."""
        if self.span is not None and self.span.text:
            return self.span.text
        name = f"{self.role}.{self.parameter}" if self.role else self.parameter
        if self.qualifier == "unrestricted":
            return f"{name} => @unrestricted"
        args = ", ".join(_show(v) for v in self.values)
        return f"{name} => @{self.qualifier}({args})"


def _show(v: Value) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return str(v)


@dataclass(frozen=True)
class Contract:
    """A named, checked cluster contract.

    ``clauses`` hold everything the resolver reads (``cluster_type`` and ``node_count`` included); ``config`` holds
    configuration parameters (``image_id``, ``user``, ``sshflags``, …) carried through to deploy untouched.
    """

    name: str
    clauses: tuple[Clause, ...]
    config: tuple[tuple[str, Value], ...] = ()
    span: Span | None = None
    path: str | None = None
    warnings: tuple[str, ...] = field(default=(), compare=False)
    config_spans: tuple[tuple[str, Span | None], ...] = field(default=(), compare=False)  # where each was written

    def clause(self, parameter: str, role: str | None = None) -> Clause | None:
        """The clause for ``parameter`` scoped exactly to ``role`` (None: unscoped), if any."""
        for c in self.clauses:
            if c.parameter == parameter and c.role == role:
                return c
        return None

    @property
    def cluster_type(self) -> str:
        c = self.clause("cluster_type")
        return str(c.values[0]) if c is not None and c.values else "PeerWorkers"

    def clauses_for(self, role: str | None) -> tuple[Clause, ...]:
        """The clauses that constrain one role's nodes: the role's own clauses, plus unscoped ones the role does not
        override.  For PeerWorkers clusters ``role`` is None and every unscoped clause applies.  Cluster-level
        parameters (node_count, cluster_* totals) apply to the workers only."""
        own = [c for c in self.clauses if c.role == role] if role else []
        overridden = {c.parameter for c in own}
        shared = [c for c in self.clauses if c.role is None and c.parameter not in overridden]
        if role == "manager":
            from ccdsl.parameters import PARAMETERS  # local: parameters imports nothing heavy, but avoid a cycle

            shared = [c for c in shared if PARAMETERS[c.parameter].scope == "node"]
        return tuple(shared + own)

    def config_dict(self) -> dict[str, Value]:
        return dict(self.config)

    @property
    def roles(self) -> tuple[str | None, ...]:
        """The node roles: the workers and the manager of a ManagerWorkers cluster, else the peers (None)."""
        return ("worker", "manager") if self.cluster_type == "ManagerWorkers" else (None,)

    @property
    def spot_roles(self) -> tuple[str | None, ...]:
        """The roles the contract puts on spot: ``spot => true`` every role, ``worker.spot => true`` (or
        ``manager.spot``) one role of a ManagerWorkers cluster; a role's own value wins over the unscoped one."""
        config = self.config_dict()
        return tuple(r for r in self.roles
                     if (config.get(f"{r}.spot", config.get("spot")) if r else config.get("spot")) is True)
