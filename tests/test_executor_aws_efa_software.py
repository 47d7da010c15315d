"""The EFA software on nodes launched with EFA (issue 23 item 1): the cloud-init user data that installs it and sets
``kernel.yama.ptrace_scope``, the NAT route private nodes need to download the installer, and what the nodes carry
for the deploy's fi_info check and the launcher (``extra["efa"]``, ``extra["fabric"]``).  EC2 is moto's server;
the user data is read back as moto stored it and parsed as YAML, and the installer's script runs for real with a
stand-in for the download (curl) and for AWS's installer."""

from __future__ import annotations

import base64
import io
import os
import shutil
import subprocess
import tarfile

import pytest
import yaml

from aws_like import aws_like  # the fixture
from ccdsl.errors import ConfigError
from ccdsl.executor.providers import efa_boot
from ccdsl.executor.providers.aws import INSTALL_USER_DATA, user_data
from fixtures_executor import data_dir, ec2, ec2_config, hooks, nat_subnet
from moto_patches import LOOPBACK_ONLY
from test_aws_behaviour import HANDLE, everything_tagged, nothing_left, provider
from test_executor_aws_efa import only, request, sent
from test_executor_aws_private import BASTION, default_vpc_to_the_internet


def stored_user_data(ec2, node) -> dict:
    """The node's user data as EC2 (moto) stored it, parsed as cloud-init parses it."""
    recorded = ec2.describe_instance_attribute(InstanceId=node.instance_id, Attribute="userData")
    value = (recorded.get("UserData") or {}).get("Value")
    if not value:
        return {}
    text = base64.b64decode(value).decode()
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


def efa_commands(config: dict) -> list[list[str]]:
    return [c for c in config.get("runcmd", []) if (c[:2] == ["bash", "-c"] and "efa_installer.sh" in c[2])
            or (c[:2] == ["sh", "-c"] and "ptrace_scope" in c[2])]


def test_efa_nodes_install_the_efa_software_and_set_ptrace_scope(ec2_config, ec2, aws_like):
    p = provider(ec2_config)
    nodes = p.wait_running(HANDLE, p.create(request("hpc7g.16xlarge"), lambda *e: None), lambda *e: None)
    try:
        for node in nodes:
            config = stored_user_data(ec2, node)
            installer, sysctl = config["runcmd"]
            assert installer == ["bash", "-c", efa_boot.INSTALL_SCRIPT, "ccdsl-efa", efa_boot.INSTALLER_URL]
            assert "./efa_installer.sh -y\n" in installer[2] and 'curl -fsSL --retry 5 -o' in installer[2]
            assert efa_boot.INSTALLER_URL == "https://efa-installer.amazonaws.com/aws-efa-installer-latest.tar.gz"
            assert sysctl[:2] == ["sh", "-c"]
            assert "echo 'kernel.yama.ptrace_scope = 0' > /etc/sysctl.d/99-ccdsl-efa.conf\n" in sysctl[2]
            assert "sysctl -w kernel.yama.ptrace_scope=0\n" in sysctl[2]
            assert node.extra["efa"] == 1 and node.extra["fabric"] == "efa"
        found = p.describe(HANDLE)  # nodes found again by their tags (another process) say the same
        assert {(n.extra.get("efa"), n.extra.get("fabric")) for n in found} == {(1, "efa")}
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_the_venvs_packages_come_first_then_efa(ec2_config, ec2, aws_like):
    p = provider(ec2_config.replace(mpi={"install": True}))
    nodes = p.wait_running(HANDLE, p.create(request("hpc7g.16xlarge"), lambda *e: None), lambda *e: None)
    try:
        runcmd = stored_user_data(ec2, nodes[0])["runcmd"]
        venv = yaml.safe_load(INSTALL_USER_DATA)["runcmd"]
        assert runcmd[:1] == venv and runcmd[1:] == efa_commands({"runcmd": runcmd}) and len(runcmd) == 3
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_nodes_without_efa_get_no_efa_software(ec2_config, ec2, aws_like):
    p = provider(ec2_config)
    nodes = p.wait_running(HANDLE, p.create(request("hpc7g.16xlarge", efa=False), lambda *e: None),
                           lambda *e: None)
    try:
        assert stored_user_data(ec2, nodes[0]) == {}  # no user data at all, as before EFA
        assert "efa" not in nodes[0].extra and "fabric" not in nodes[0].extra
    finally:
        p.terminate(HANDLE, nodes)
    assert user_data(False, "", efa=False) is None
    assert efa_commands(yaml.safe_load(user_data(True, "/scratch") or "")) == []


def test_a_manager_beside_efa_workers_gets_the_software_but_no_device_to_check(ec2_config, ec2, aws_like):
    """ManagerWorkers: mpirun runs on the manager, so it needs Open MPI built for EFA, though it has no EFA."""
    p = provider(ec2_config)
    manager_request, workers_request = request("m5.large", count=1, role="manager"), request("hpc7g.16xlarge")
    p.check_plan([manager_request, workers_request])  # the deployer's order: the plan first, then each role
    manager = p.wait_running(HANDLE, p.create(manager_request, lambda *e: None), lambda *e: None)
    workers = p.wait_running(HANDLE, p.create(workers_request, lambda *e: None), lambda *e: None)
    try:
        assert len(efa_commands(stored_user_data(ec2, manager[0]))) == 2
        assert manager[0].extra["fabric"] == "efa" and "efa" not in manager[0].extra
        assert all(w.extra["efa"] == 1 for w in workers)
    finally:
        p.terminate(HANDLE, manager + workers)
    nothing_left(ec2, aws_like)


def test_private_efa_nodes_need_a_nat_route_for_the_installer(ec2_config, ec2, hooks):
    """Without [mpi] install, EFA alone makes the nodes download: a subnet routed to an internet gateway (where a
    private node's traffic goes nowhere) is refused before anything is created."""
    igw = default_vpc_to_the_internet(ec2)
    calls = sent(hooks)
    p = provider(ec2_config, **BASTION, connect_address="private")
    with pytest.raises(ConfigError, match=rf"cannot download: its route table sends 0.0.0.0/0 to {igw}, not to a NAT "
                                          r"gateway, and EFA on hpc7g.16xlarge \(the EFA installer") as info:
        p.check_plan([request("hpc7g.16xlarge")])
    assert '[aws] efa = "off"' in (info.value.hint or "")
    assert only(calls, "RunInstances") == [] and only(calls, "CreateSecurityGroup") == []
    assert everything_tagged(ec2) == []


def test_private_efa_nodes_launch_in_a_subnet_with_a_nat_route(ec2_config, ec2, hooks, aws_like, nat_subnet):
    calls = sent(hooks)
    p = provider(ec2_config, **BASTION, connect_address="private", subnet_id=nat_subnet)
    p.check_plan([request("hpc7g.16xlarge")])
    nodes = p.create(request("hpc7g.16xlarge"), lambda *e: None)
    try:
        (run,) = only(calls, "RunInstances")
        assert run["NetworkInterfaces"][0]["SubnetId"] == nat_subnet
        assert "efa_installer.sh" in base64.b64decode(run["UserData"]).decode()
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


# -- the installer's script, run --------------------------------------------------------------------------------
def _tarball() -> bytes:
    """A stand-in for AWS's installer archive: aws-efa-installer/efa_installer.sh records how it was run (its
    arguments, and the apt setting the script wrote before it) in $EFA_RECORD."""
    script = (b'#!/bin/sh\n{ echo "args: $*"; cat /etc/apt/apt.conf.d/90ccdsl-lock-timeout; } > "$EFA_RECORD"\n')
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        info = tarfile.TarInfo("aws-efa-installer/efa_installer.sh")
        info.size, info.mode = len(script), 0o755
        tar.addfile(info, io.BytesIO(script))
    return out.getvalue()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="runs the script in a mount namespace of its own (needs root and unshare)")
def test_the_install_script_downloads_and_runs_the_installer_with_yes(tmp_path):
    """The script as the user data carries it, run by bash: curl (a stand-in that serves the archive) fetches the
    URL, the archive is unpacked, ``efa_installer.sh -y`` runs with apt told to wait for its lock.  It runs in a
    mount namespace whose /etc/apt/apt.conf.d is a fresh tmpfs: this machine's apt settings are not touched."""
    assert not os.path.exists(f"{efa_boot.EFA_BIN}/fi_info")  # else the script rightly skips the download
    (tmp_path / "archive.tar.gz").write_bytes(_tarball())
    stubs = tmp_path / "bin"
    stubs.mkdir()
    (stubs / "curl").write_text('#!/bin/sh\n'  # curl -fsSL --retry 5 -o FILE URL
                                'echo "$*" > "$CURL_RECORD"\n'
                                'while [ "$1" != -o ]; do shift; done\n'
                                f'cp {tmp_path / "archive.tar.gz"} "$2"\n')
    (stubs / "curl").chmod(0o755)
    (argv,) = [c for c in yaml.safe_load(user_data(False, "", efa=True) or "")["runcmd"] if c[0] == "bash"]
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "EFA_RECORD": str(tmp_path / "installer"),
           "CURL_RECORD": str(tmp_path / "curl")}
    if not os.path.isdir("/etc/apt/apt.conf.d"):
        pytest.skip("no /etc/apt/apt.conf.d to put a tmpfs on")
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                           'mount -t tmpfs ccdsl-test /etc/apt/apt.conf.d && exec "$@"', "sh", *argv],
                          env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "curl").read_text().split() == ["-fsSL", "--retry", "5", "-o", "aws-efa-installer.tar.gz",
                                                       efa_boot.INSTALLER_URL]
    assert (tmp_path / "installer").read_text() == 'args: -y\nDPkg::Lock::Timeout "600";\n'
    assert not os.path.exists("/etc/apt/apt.conf.d/90ccdsl-lock-timeout")  # it was in the namespace's tmpfs


# -- the smoke test's --efa run, on moto ---------------------------------------------------------------------------
# SSH stubbed, as moto's instances cannot be reached (never contact them): what runs is the smoke test's own code,
# ccdsl's deploy and terminate on moto's EC2 (with tests/aws_like.py's placement groups on every EC2 client), and
# a stand-in for the programs it runs on the nodes that records them and prints what a real ping-pong prints.
EFA_SMOKE_DRIVER = LOOPBACK_ONLY + r"""
import importlib, json, sys
from dataclasses import replace
sys.path.insert(0, sys.argv[1])
import aws_smoke
import boto3
from aws_like import AwsLike
from ccdsl.executor import cluster, workdir
from ccdsl.executor.providers import aws

layer = AwsLike(boto3.client("ec2"))
aws.EVENT_HOOKS.extend(layer.hooks())  # EC2's placement groups, which moto lacks: ccdsl's clients ...
_client = boto3.client

def client(*args, **kwargs):  # ... and the smoke test's own
    made = _client(*args, **kwargs)
    if (args[:1] or [kwargs.get("service_name")])[0] == "ec2":
        for event, handler in layer.hooks():
            made.meta.events.register(event, handler)
    return made

boto3.client = client
deploy = importlib.import_module("ccdsl.executor.deploy")
deploy.make_ready = lambda handle, nodes, *a, **k: [
    replace(n, state="ready", extra={**n.extra, "python": "/venv/bin/python"}) for n in nodes]
workdir.sync_nodes = lambda *a, **k: []
_config = aws_smoke.smoke_config
aws_smoke.smoke_config = lambda args: _config(args).replace("test", aws={"image": {"x86_64": sys.argv[2],
                                                                                    "arm64": sys.argv[3]}})

def run_program(self, argv, np=None, *, stream=None, **kw):
    print("RAN " + json.dumps([argv, sorted({n.extra.get("fabric") for n in self.nodes()}),
                               sorted({n.extra.get("efa") for n in self.nodes()})]), flush=True)
    provider = next((a.split("=")[1] for a in argv if str(a).startswith("FI_PROVIDER=")), "efa")
    if stream is not None:
        stream(f"PINGPONG FI_PROVIDER={provider} (x): 1048576 bytes: 9.00 GB/s, median round trip 233 us", "stdout")
    return 0

cluster.Cluster.run_program = run_program
sys.exit(aws_smoke.main(["--yes", "--efa", "--region", "us-east-1", "--ssh-cidr", "203.0.113.0/24"]))
"""


def test_the_smoke_tests_efa_run_on_moto_deploys_with_efa_and_leaves_nothing(aws_env, ec2, tmp_path):
    import json
    import sys
    from pathlib import Path

    from fixtures_executor import MOTO_IMAGE, MOTO_IMAGE_ARM

    root = Path(__file__).resolve().parents[1]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "CCDSL_DATA_DIR": str(tmp_path / "data"),
           "PYTHONPATH": f"{root}:{root / 'tests'}", "AWS_ENDPOINT_URL": aws_env, "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    proc = subprocess.run([sys.executable, "-c", EFA_SMOKE_DRIVER, str(root / "examples"), MOTO_IMAGE,
                           MOTO_IMAGE_ARM], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = [json.loads(line.removeprefix("RAN ")) for line in proc.stdout.splitlines() if line.startswith("RAN ")]
    assert [argv for argv, _, _ in ran] == [
        ["sh", "-c", 'echo "== $(hostname)"; /opt/amazon/efa/bin/fi_info -p efa'],
        ["/venv/bin/python", ran[1][0][1], "as ccdsl runs it"],
        ["env", "FI_PROVIDER=tcp", "/venv/bin/python", "ping_pong.py", "overridden"]]
    assert ran[1][0][1].endswith("/ping_pong.py")
    assert all(fabrics == ["efa"] and devices == [1] for _, fabrics, devices in ran)  # nodes of an EFA cluster
    out = proc.stdout
    assert "smoke_efa: worker: EFA on: 1 interface" in out
    assert "PINGPONG FI_PROVIDER=efa" in out and "PINGPONG FI_PROVIDER=tcp" in out
    assert "placement groups left after terminate: none" in out and "(cluster)" in out
    assert "Left behind (instances, volumes, security groups, key pairs, open spot requests): nothing" in out
    assert everything_tagged(ec2) == []
