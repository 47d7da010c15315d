"""Shared fixtures.  Area-specific fixtures live in their own modules (imported below) to keep ownership clear."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from hypothesis import settings

import iam_record

# moto's server records every request from here on (moto is imported later, by the fixtures): the run ends by
# checking every AWS call ccdsl made against the IAM policy it documents (tests/iam_record.py)
IAM_RECORDING = iam_record.prepare()

# Hypothesis profiles.  `ci` (the default) is derandomized, so every run tries the same examples and a failure
# found in CI is found again on any machine; `deep` (`python -m pytest -m fuzz --hypothesis-profile=deep`) is random
# and 25x longer, and keeps what it finds in .hypothesis/ to replay it.  Tests that name their own max_examples
# keep them; the generated-contract tests (test_resolver_generated.py) take the profile's.
settings.register_profile("ci", max_examples=1000, derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("deep", max_examples=25_000, derandomize=False, deadline=None, print_blob=True)
settings.load_profile("ci")


# The SSH hosts of the tests are this machine: a test that arms autostop on "EC2" nodes must point [autostop]
# boot_dir into its tmp_path, or cloud-init's real per-boot folder here would get ccdsl's scripts (checked below).
PER_BOOT = Path("/var/lib/cloud/scripts/per-boot")
PER_BOOT_BEFORE = set(PER_BOOT.glob("ccdsl-autostop-*")) if PER_BOOT.is_dir() else set()


def pytest_sessionfinish(session, exitstatus):
    """Fail the run, naming them, when ccdsl called AWS actions its IAM policy (``ccdsl iam-policy``) lacks, or
    when a test left a boot script in this machine's own cloud-init folder."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    left = sorted(set(PER_BOOT.glob("ccdsl-autostop-*")) - PER_BOOT_BEFORE) if PER_BOOT.is_dir() else []
    if left:
        if reporter is not None:
            reporter.write_line(f"a test wrote autostop boot scripts into this machine's {PER_BOOT}: "
                                f"{', '.join(p.name for p in left)} (set [autostop] boot_dir in the test)", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    seen, lacking = iam_record.check(IAM_RECORDING)
    if lacking:
        text = (f"IAM: ccdsl called {', '.join(lacking)}, which ccdsl/executor/providers/aws_policy.json does not "
                f"allow ({len(seen)} actions recorded)")
        if reporter is not None:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _iam_recorder(monkeypatch):
    """Every client ccdsl creates records its calls first (tests/iam_record.py); the ``hooks`` fixtures add theirs
    after it."""
    from ccdsl.catalog import refresh
    from ccdsl.executor.providers import aws

    monkeypatch.setattr(aws, "EVENT_HOOKS", [iam_record.RECORDER])
    monkeypatch.setattr(refresh, "EVENT_HOOKS", [iam_record.RECORDER])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    """A private ccdsl data dir (user catalogs, state DB, keys, caches) and a catalog cache that cannot leak
    between tests."""
    from ccdsl.catalog.loader import clear_cache

    d = tmp_path / "data"
    monkeypatch.setenv("CCDSL_DATA_DIR", str(d))
    clear_cache()
    yield d
    clear_cache()


@pytest.fixture(scope="session")
def moto_server():
    """A real moto server on 127.0.0.1 (HTTP).  Yields its endpoint URL.  Reset it with ``moto_reset(url)``."""
    moto_server_mod = pytest.importorskip("moto.server")
    from moto_patches import add_client_token_filter

    add_client_token_filter()
    port = free_port()
    server = moto_server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def moto_reset(url: str) -> None:
    """Forget every resource the moto server holds (between tests)."""
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(url + "/moto-api/reset", method="POST"), timeout=60).read()


@pytest.fixture()
def aws_env(moto_server, monkeypatch):
    """Fake credentials and a clean moto server for one test; yields the endpoint URL."""
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(k, v)
    moto_reset(moto_server)
    yield moto_server


@pytest.fixture(autouse=True)
def _public_spot_files_stay_on_loopback(monkeypatch):
    """Network rule: no test reads AWS's public spot feed or advisor file.  A test that does not serve them
    (``fixtures_spot.spot_files``) finds nothing listening at these loopback addresses: a spot refresh then warns
    (or fails) as it would offline, and nothing leaves the machine."""
    monkeypatch.setenv("CCDSL_SPOT_FEED_URL", "http://127.0.0.1:9/no-spot-feed-in-tests/spot.json")
    monkeypatch.setenv("CCDSL_SPOT_ADVISOR_URL", "http://127.0.0.1:9/no-spot-advisor-in-tests/advisor.json")
