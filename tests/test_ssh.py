"""The SSH transport against real sshd's in network namespaces: connect, run, put, pinned host keys, timeouts."""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from ccdsl.errors import ExecutionError, HostKeyError, ProviderError
from ccdsl.executor import ssh
from ccdsl.executor.model import REACHABLE, READY
from fixtures_netns import netns_hosts  # the fixture

pytest.importorskip("paramiko")
pytestmark = pytest.mark.netns


@pytest.fixture()
def opts(tmp_path):
    return ssh.SshOptions(known_hosts=str(tmp_path / "known_hosts"), accept_new=True, connect_timeout=5)


def test_connect_run_and_put(netns_hosts, opts, tmp_path):
    node = netns_hosts.node(1)
    with ssh.Connections(opts) as pool:
        client = pool.get(node)
        res = ssh.run(client, "ip -4 -o addr show eth0; echo err >&2; exit 7", node=node)
        assert res.code == 7 and netns_hosts.hosts[1].address in res.stdout and res.stderr == "err\n"
        target = tmp_path / "put.bin"
        data = os.urandom(300_000)
        ssh.put(client, data, str(target), mode=0o640, node=node)
        assert target.read_bytes() == data and (target.stat().st_mode & 0o777) == 0o640
        assert pool.get(node) is client  # pooled
        with pytest.raises(ExecutionError, match="host1"):
            ssh.run(client, "exit 3", node=node, check=True)
        with pytest.raises(ExecutionError, match="did not finish within"):
            ssh.run(client, "sleep 30", node=node, timeout=1)


def test_first_key_is_recorded_then_enforced(netns_hosts, opts):
    node = netns_hosts.node(0)
    ssh.connect(node, opts).close()
    recorded = Path(opts.known_hosts).read_text()
    assert recorded.startswith("host0 ssh-ed25519 ")
    assert (os.stat(opts.known_hosts).st_mode & 0o777) == 0o600
    # later connections do not accept new keys, but the recorded one is fine
    strict = replace(opts, accept_new=False)
    ssh.connect(node, strict).close()
    with pytest.raises(HostKeyError, match="no host key is recorded for worker 1"):
        ssh.connect(netns_hosts.node(1), strict)


def test_changed_host_key_is_refused(netns_hosts, opts, tmp_path):
    i = 2
    node = netns_hosts.node(i)
    ssh.connect(node, opts).close()
    host = netns_hosts.hosts[i]
    saved = tmp_path / "saved_key"
    shutil.copy(host.host_key, saved)
    shutil.copy(str(host.host_key) + ".pub", str(saved) + ".pub")
    try:
        netns_hosts.stop_sshd(i)
        netns_hosts.new_host_key(i)
        netns_hosts.start_sshd(i)
        for policy in (opts, replace(opts, accept_new=False)):  # accept_new never overrides a recorded key
            with pytest.raises(HostKeyError, match=r"host key of worker 2 .*changed"):
                ssh.connect(node, policy)
        with pytest.raises(HostKeyError):  # and wait_ready does not retry it away
            ssh.wait_ready(node, 30, opts, python=sys.executable)
    finally:
        netns_hosts.stop_sshd(i)
        shutil.copy(saved, host.host_key)
        shutil.copy(str(saved) + ".pub", str(host.host_key) + ".pub")
        netns_hosts.start_sshd(i)
    ssh.connect(node, opts).close()


def test_unreachable_node_fails_in_bounded_time_naming_it(netns_hosts, opts):
    i = 3
    netns_hosts.stop_sshd(i)
    try:
        with pytest.raises(ProviderError) as info:
            ssh.wait_ready(netns_hosts.node(i), 3, opts, python=sys.executable)
        assert "host3" in info.value.message and netns_hosts.hosts[i].address in info.value.message
        assert "gave up after 3 s" in info.value.message
    finally:
        netns_hosts.start_sshd(i)


def test_silent_address_times_out(netns_hosts, opts):
    """An address where no machine answers at all (no RST): the connect timeout bounds it."""
    node = replace(netns_hosts.node(0), instance_id="ghost", address=netns_hosts.gateway.rsplit(".", 1)[0] + ".250")
    with pytest.raises(ProviderError, match="cannot reach worker 0 \\(ghost") as info:
        ssh.connect(node, replace(opts, connect_timeout=2))
    assert "no answer within 2 s" in info.value.message  # the connect timeout ended it, not the kernel's


def test_wrong_key_is_an_authentication_error(netns_hosts, opts, tmp_path):
    import subprocess

    key = tmp_path / "other"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    node = replace(netns_hosts.node(0), key_path=str(key))
    with pytest.raises(ProviderError, match="cannot log in to worker 0"):
        ssh.connect(node, opts)


def test_wait_ready_reports_what_the_node_offers(netns_hosts, opts, tmp_path):
    node = ssh.wait_ready(netns_hosts.node(0), 30, opts, python=sys.executable, directory=str(tmp_path / "d"))
    assert node.state == READY
    assert node.extra["python"] == sys.executable
    assert node.extra["python_version"] == "{}.{}".format(*sys.version_info[:2])
    assert os.path.samefile(node.extra["mpiexec"], os.path.join(os.path.dirname(sys.executable), "mpiexec"))
    assert node.extra["ccdsl_dir"] == str(tmp_path / "d")
    assert ssh.wait_reachable(netns_hosts.node(1), 10, opts).state == REACHABLE


def test_node_without_mpi4py_is_not_ready(netns_hosts, opts, tmp_path):
    bare = tmp_path / "bare"
    import subprocess

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(ProviderError, match=r"not ready: .*cannot import mpi4py") as info:
        ssh.wait_ready(netns_hosts.node(0), 30, opts, python=str(bare / "bin" / "python"))
    assert "install" in info.value.hint
    with pytest.raises(ProviderError, match="cannot run"):
        ssh.wait_ready(netns_hosts.node(0), 30, opts, python="/nonexistent/python3")


def test_install_failure_names_the_node(netns_hosts, opts, tmp_path):
    """``install = true`` on a node without mpi4py: a venv is made and pip runs; pip's failure is reported."""
    import subprocess

    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    with pytest.raises(ProviderError, match=r"worker 0 .*installing --no-index, ccdsl-no-such-package failed"):
        ssh.wait_ready(netns_hosts.node(0), 120, opts, python=str(bare / "bin" / "python"),
                       directory=str(tmp_path / "d"), install=True,
                       packages=("--no-index", "ccdsl-no-such-package"))
    assert (tmp_path / "d" / "venv" / "bin" / "python").exists()


def test_missing_or_encrypted_key_is_named(netns_hosts, opts, tmp_path):
    import subprocess

    with pytest.raises(ProviderError, match=r"private key .*nope for worker 0 .*does not exist"):
        ssh.connect(replace(netns_hosts.node(0), key_path=str(tmp_path / "nope")), opts)
    key = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "secret", "-f", str(key)], check=True)
    with pytest.raises(ProviderError, match="protected by a passphrase"):
        ssh.connect(replace(netns_hosts.node(0), key_path=str(key)), opts)


def test_concurrent_first_contacts_record_every_key(netns_hosts, opts):
    import threading

    errors = []

    def first_contact(i):
        try:
            ssh.connect(netns_hosts.node(i), opts).close()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_contact, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    names = sorted(line.split()[0] for line in Path(opts.known_hosts).read_text().splitlines() if line)
    assert names == ["host0", "host1", "host2", "host3"]
