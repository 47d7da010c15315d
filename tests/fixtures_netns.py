"""The ``netns_hosts`` fixture: real SSH hosts (network namespaces + sshd) built once per test session.

Import it into a test module (``from fixtures_netns import netns_hosts``) or register this module in conftest.
Skips, with the reason, only when the machine cannot build them (not root, no ``ip`` or ``sshd``).
"""

from __future__ import annotations

import pytest

from netns_hosts import NetnsHosts, missing_requirements

HOST_COUNT = 4


@pytest.fixture(scope="session")
def netns_hosts():
    """``NetnsHosts`` with 4 hosts (``.hosts[i].address``, ``.client_key``, ``.node(i)``, ``.nodes()``).

    Tests that break a host (stop sshd, change its key) must restore it before returning."""
    reason = missing_requirements()
    if reason:
        pytest.skip(f"cannot build SSH test hosts: {reason}")
    hosts = NetnsHosts(HOST_COUNT).build()
    try:
        yield hosts
    finally:
        hosts.teardown()
