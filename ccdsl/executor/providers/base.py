"""Helpers every provider shares, and the registry that maps a provider name to its module.

Provider modules are imported only when used, so ``import ccdsl`` never loads boto3 or paramiko.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ccdsl.errors import ProviderError

if TYPE_CHECKING:
    from ccdsl.executor.config import Config
    from ccdsl.executor.model import Provider

# Canonical provider names and the spellings contracts and catalogs use for them (taxonomy: "AmazonEC2").
ALIASES = {
    "aws": "aws", "amazonec2": "aws", "ec2": "aws", "amazon": "aws", "amazonwebservices": "aws",
    "ssh": "ssh", "onpremises": "ssh", "onpremise": "ssh", "hosts": "ssh", "byoh": "ssh",
    "local": "local", "localhost": "local",
}
MODULES = {"aws": "ccdsl.executor.providers.aws", "ssh": "ccdsl.executor.providers.ssh",
           "local": "ccdsl.executor.providers.local"}

TAG_CLUSTER = "ccdsl:cluster"
TAG_ROLE = "ccdsl:role"
TAG_CONTRACT = "ccdsl:contract"


def canonical(name: str) -> str:
    """``"AmazonEC2"`` -> ``"aws"``; unknown names are a ProviderError that lists the known ones."""
    key = name.replace("_", "").replace("-", "").replace(" ", "").lower()
    if key not in ALIASES:
        raise ProviderError(f"unknown provider '{name}'", hint="providers: aws (AmazonEC2), ssh, local")
    return ALIASES[key]


def get(name: str, config: Config, settings: dict[str, Any] | None = None) -> Provider:
    """An instance of the provider ``name`` configured by ``config`` (and a cluster record's ``settings``)."""
    canon = canonical(name)
    try:
        module = importlib.import_module(MODULES[canon])
    except ModuleNotFoundError as exc:
        if exc.name == MODULES[canon]:
            raise ProviderError(f"the {canon} provider is not available in this build") from None
        raise
    provider: Provider = module.make(config, settings or {})
    return provider


def split_host_port(text: str, default_port: int = 22) -> tuple[str, int]:
    """``"10.0.0.2:2222"`` -> ``("10.0.0.2", 2222)``; ``"[::1]:22"`` works too."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


T = TypeVar("T")


def poll(check: Callable[[], T | None], *, what: str, timeout: float, interval: float) -> T:
    """Call ``check`` until it returns something other than None; ProviderError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise ProviderError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
