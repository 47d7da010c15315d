"""ccdsl: a contract language for compute clusters.

    >>> import ccdsl
    >>> contracts = ccdsl.parse('c = @cluster(node_count => 4, node_machinetype => EC2Type_T3_xLarge)')
    >>> ccdsl.resolve(contracts["c"]).instance_type
    't3.xlarge'

The public API is re-exported here lazily, so ``import ccdsl`` stays cheap and never imports boto3, paramiko or
mpi4py: those load only when a deploy or run needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ccdsl.errors import (
    CatalogError,
    CcdslError,
    ClusterError,
    ConfigError,
    ContractError,
    ContractSyntaxError,
    ExecutionError,
    ProviderError,
    UnsatisfiableError,
)
from ccdsl.version import __version__ as __version__  # re-exported: ccdsl.__version__

if TYPE_CHECKING:  # what the lazy names below resolve to, so that type checkers see the real signatures
    from ccdsl import catalog
    from ccdsl.contract import Clause, Contract
    from ccdsl.executor import (
        Cluster,
        autostop,
        clusters,
        cost_report,
        interrupt,
        reconnect,
        restart,
        resume,
        terminate,
    )
    from ccdsl.executor.deploy import deploy
    from ccdsl.language import check, cluster, load, parse
    from ccdsl.resolution import Choice, Resolution
    from ccdsl.resolver import resolve, select

# A new public name goes in _LAZY, __all__ and the TYPE_CHECKING imports above (tests/test_public_api.py checks).
_LAZY = {
    # language: text -> checked contracts
    "parse": "ccdsl.language",
    "load": "ccdsl.language",
    "check": "ccdsl.language",
    "cluster": "ccdsl.language",
    "Contract": "ccdsl.contract",
    "Clause": "ccdsl.contract",
    # resolver: contract -> resolution
    "resolve": "ccdsl.resolver",
    "select": "ccdsl.resolver",
    "Resolution": "ccdsl.resolution",
    "Choice": "ccdsl.resolution",
    # executor: resolution -> cluster
    "deploy": "ccdsl.executor",
    "interrupt": "ccdsl.executor",
    "resume": "ccdsl.executor",
    "restart": "ccdsl.executor",
    "terminate": "ccdsl.executor",
    "reconnect": "ccdsl.executor",
    "clusters": "ccdsl.executor",
    "autostop": "ccdsl.executor",
    "cost_report": "ccdsl.executor",
    "Cluster": "ccdsl.executor",
}

__all__ = [
    "CatalogError", "CcdslError", "Choice", "Clause", "Cluster", "ClusterError", "ConfigError", "Contract",
    "ContractError", "ContractSyntaxError", "ExecutionError", "ProviderError", "Resolution", "UnsatisfiableError",
    "autostop", "catalog", "check", "cluster", "clusters", "cost_report", "deploy", "interrupt", "load", "parse",
    "reconnect", "resolve", "restart", "resume", "select", "terminate",
]


def __getattr__(name: str) -> Any:
    if name == "catalog":
        return importlib.import_module("ccdsl.catalog")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'ccdsl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
