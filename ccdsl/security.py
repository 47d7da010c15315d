"""What a contract may change about how its cluster is reached: it may narrow security, never widen it.

A contract is text that travels (shared in a repository, pasted from a tutorial), while ``ccdsl.toml`` is the
user's own.  So configuration parameters in a contract that decide *who reaches the nodes* or *what runs on this
machine* are refused unless ``ccdsl.toml`` lists them in ``[security] contract_may_set``:

- ``security_group_id``, ``subnet_id``: another network's rules instead of the per-cluster group (SSH from this
  machine's /32 only);
- ``key_name``, ``image_id``, ``hosts``: whose key, whose image, which machines receive the code;
- ``mpi_flags``: arguments of ``mpiexec``, which runs on this machine for a local cluster;
- ``python``: the interpreter every node runs (a command or a path on the nodes, not a version);
- ``ssh_cidr``: allowed without listing only *inside* ``[aws] ssh_cidr`` of ``ccdsl.toml``.  With no range there
  the default is this machine's address alone, which a contract cannot narrow further.

Always refused, whatever the file says: an ``ssh_cidr`` with host bits (``203.0.113.9/0`` would mean the whole
internet), and ``sshflags`` (ccdsl connects with paramiko, not the ``ssh`` command, so the flags would be
silently dropped; the ``[ssh]`` section of ``ccdsl.toml`` has the settings), and configuration scoped to a role
(``manager.user``: deploy configures the whole cluster, so it would be dropped).  ``tags`` must be
``key=value`` pairs.  ``check``, ``resolve`` and ``deploy`` report every violation with its line and column.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from ccdsl.errors import ContractError, Diagnostic

GUARDED = {
    "security_group_id": "decides who can reach the nodes",
    "subnet_id": "decides which network the nodes join",
    "key_name": "decides whose key logs in to the nodes",
    "image_id": "decides what the nodes run, including who may log in",
    "hosts": "decides which machines receive your code and data",
    "mpi_flags": "is passed to mpiexec, which runs on this machine for a local cluster",
    "python": "is the program every node runs with your code",
    "ssh_cidr": "decides who can reach port 22",
}
_TAG = re.compile(r"\s*([^=,\s][^=,]*?)\s*=\s*([^,]*?)\s*")


def network(text: str) -> tuple[Any, str | None]:
    """(the network, None) for a CIDR without host bits; (None, why not) otherwise."""
    try:
        return ipaddress.ip_network(str(text).strip(), strict=True), None
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(str(text).strip(), strict=False)
    except ValueError:
        return None, "is not a CIDR (e.g. 203.0.113.0/24)"
    host = str(text).strip().split("/")[0]
    single = f"{host}/{loose.max_prefixlen}"
    return None, (f"has host bits set: it would widen to {loose}; write {single} for that address alone, or {loose} "
                  "if you mean the whole range")


def tags(value: Any) -> dict[str, str] | None:
    """``"team=ml, project=x"`` as a dict; None when it is not such a list."""
    parts = str(value).split(",")
    out = {}
    for part in parts:
        m = _TAG.fullmatch(part)
        if m is None:
            return None
        out[m.group(1)] = m.group(2)
    return out


# Configuration a role of a ManagerWorkers cluster may set on its own: ``worker.spot => true`` puts only the workers
# on spot (the resolver prices them at spot prices; deploy reads each choice's market).
PER_ROLE = frozenset({"spot"})


def violations(contract: Any, config: Any) -> list[Diagnostic]:
    """Every configuration parameter of ``contract`` that ``config`` (a :class:`~ccdsl.executor.config.Config`)
    does not let it set, with the clause's position."""
    allowed = set(config.security.contract_may_set)
    where = config.source or "ccdsl.toml"
    spans = dict(getattr(contract, "config_spans", ()))
    out: list[Diagnostic] = []
    for key, value in contract.config:
        name = key.rsplit(".", 1)[-1]
        problem: str | None
        hint: str | None
        if name != key and name not in PER_ROLE:  # deploy reads the rest for the whole cluster: a role's would be lost
            problem, hint = (f"configuration applies to the whole cluster, so {key} would be ignored",
                             f"write {name} => … without '{key.split('.')[0]}.'")
        else:
            problem, hint = _problem(name, value, allowed, config, where)
        if problem:
            span = spans.get(key)
            out.append(Diagnostic(
                f"{key} => {_show(value)}: {problem}", path=span.path if span else contract.path,
                line=span.line if span else None, column=span.column if span else None,
                end_column=span.end_column if span and span.end_line == span.line else None, hint=hint))
    return out


def check_all(contracts: Any, load_config: Callable[[], Any]) -> list[Diagnostic]:
    """:func:`violations` of several contracts; ``load_config`` (which reads ``ccdsl.toml``) is called only when one
    of them has configuration parameters, so ``check`` and ``resolve`` of plain contracts never depend on it.  The
    caller passes the loader, so this module stays below the executor that owns the configuration."""
    contracts = list(contracts)
    if not any(c.config for c in contracts):
        return []
    config = load_config()
    return [d for c in contracts for d in violations(c, config)]


def enforce(contract: Any, config: Any) -> None:
    """Raise a :class:`~ccdsl.errors.ContractError` with every violation (nothing when there is none)."""
    found = violations(contract, config)
    if found:
        raise ContractError(found)


def _problem(name: str, value: Any, allowed: set[str], config: Any, where: str) -> tuple[str | None, str | None]:
    if name == "sshflags":
        return ("not supported: ccdsl connects with paramiko, not the ssh command, so these flags would be ignored",
                "set [ssh] port, key_path, connect_timeout or user in ccdsl.toml instead")
    if name == "tags":
        pairs = tags(value)
        if pairs is None:
            return 'tags are key=value pairs separated by commas, e.g. tags => "team=ml, project=weather"', None
        reserved = [k for k in pairs if k.lower().startswith(("aws:", "ccdsl:")) or k == "Name"]
        if reserved:
            return (f"tag {reserved[0]!r} is reserved (aws:*, ccdsl:* and Name are set by AWS and ccdsl)", None)
        return None, None
    if name == "ssh_cidr":
        net, why = network(value)
        if why:
            return why, None
        if name in allowed:
            return None, None
        configured = config.aws.ssh_cidr
        if not configured:
            return ("a contract may only narrow the SSH range of ccdsl.toml, which sets none (so SSH is open to this "
                    "machine's own address alone)",
                    f'set [aws] ssh_cidr in {where} to the range to allow, or add "ssh_cidr" to [security] '
                    "contract_may_set there")
        outer = network(configured)[0]
        if outer is None or net.version != outer.version or not net.subnet_of(outer):
            return (f"outside the range ccdsl.toml allows ([aws] ssh_cidr = {configured!r}); a contract may narrow "
                    "it, never widen it",
                    f'widen [aws] ssh_cidr in {where}, or add "ssh_cidr" to [security] contract_may_set there')
        return None, None
    if name == "python" and not isinstance(value, str):
        return ("python is the interpreter on the nodes (a command or a path), not a version number",
                f'write python => "python{_show(value)}" or an absolute path such as "/usr/bin/python3"')
    if name in GUARDED and name not in allowed:
        return (f"a contract may not set {name} unless ccdsl.toml allows it: it {GUARDED[name]}",
                f'add [security] contract_may_set = ["{name}"] to {where}, or set it in ccdsl.toml itself')
    return None, None


def _show(value: Any) -> str:
    text = f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= 60 else text[:57] + "…"
