"""The ``netns_hosts`` fixture: real SSH hosts (network namespaces + sshd) built once per test session.

Import it into a test module (``from fixtures_netns import netns_hosts``).  pytest registers an imported
session fixture once per importing module, so the hosts themselves are shared here (reference-counted): every
module gets the same hosts, built on first use and torn down after the last user's session teardown.
Skips, with the reason, only when the machine cannot build them (not root, no ``ip`` or ``sshd``).
"""

from __future__ import annotations

import pytest

from netns_hosts import NetnsHosts, missing_requirements

HOST_COUNT = 4
_shared: dict[str, object] = {"hosts": None, "users": 0}


@pytest.fixture(scope="session")
def netns_hosts():
    """``NetnsHosts`` with 4 hosts (``.hosts[i].address``, ``.client_key``, ``.node(i)``, ``.nodes()``).

    Tests that break a host (stop sshd, partition it, change its key) must restore it before returning."""
    reason = missing_requirements()
    if reason:
        pytest.skip(f"cannot build SSH test hosts: {reason}")
    if _shared["hosts"] is None:
        _shared["hosts"] = NetnsHosts(HOST_COUNT).build()
    _shared["users"] += 1
    try:
        yield _shared["hosts"]
    finally:
        _shared["users"] -= 1
        if _shared["users"] == 0:
            hosts, _shared["hosts"] = _shared["hosts"], None
            hosts.teardown()
