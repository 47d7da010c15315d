"""``[aws] shared`` (issue 23 item 3): a folder every node sees, where the project's folder lives.

- The keys are checked when the file is read.
- ``nfs``: what the nodes run (user data, the server's exports, the members' fstab line) is checked as text; the
  development VM's kernel has neither ``nfs`` nor ``nfsd``, so the mount itself is tested only where it has them.
- ``efs``: the file system's whole life on the moto server, with ``aws_like`` making it and its mount target pass
  through ``creating`` and ``deleting`` as EFS does; a crash between its create and its record; ``shared_keep``.
- The shared project folder on namespace hosts (which share this machine's filesystem, so a folder outside their
  private one is shared as an EFS mount would be): ``sync`` writes once, node 1 reads what node 0 wrote; where the
  hosts do NOT share the folder, the deploy fails saying so and leaves nothing.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pytest
import yaml

import ccdsl
from aws_like import aws_like  # the fixture
from ccdsl.errors import ConfigError, ProviderError
from ccdsl.executor.config import Config
from ccdsl.executor.providers import shared_fs
from ccdsl.executor.state import State
from fixtures_executor import aws_settings, data_dir, ec2, ec2_config, ec2_keys_on_hosts, hooks, tagged
from fixtures_netns import netns_hosts
from test_aws_behaviour import HANDLE, nothing_left, provider
from test_executor_aws_efa import default_subnet, request


@pytest.fixture()
def efs(aws_env):
    """The test's own EFS client on the moto server (no hooks)."""
    import boto3

    return boto3.client("efs", endpoint_url=aws_env, region_name="us-east-1")


def file_systems(efs) -> list[dict]:
    return efs.describe_file_systems()["FileSystems"]


def tags(resource: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def cloud_config(text: str) -> dict:
    assert text.startswith("#cloud-config\n")
    return yaml.safe_load(text)


# -- the keys ------------------------------------------------------------------------------------------------------
def test_the_defaults_share_over_nfs_at_shared(data_dir):
    aws = Config().aws
    assert (aws.shared, aws.shared_dir, aws.shared_keep) == ("nfs", "/shared", False)
    assert Config.from_dict({"aws": {"shared": "efs", "shared_dir": "/mnt/team", "shared_keep": True}}).aws.shared_keep


@pytest.mark.parametrize("table, message", [
    ({"shared": "lustre"}, r"\[aws\] shared must be one of 'nfs', 'efs', 'none', not 'lustre'"),
    ({"shared": True}, r"\[aws\] shared must be a string"),
    ({"shared_dir": "shared"}, r"\[aws\] shared_dir = 'shared' is not an absolute folder"),
    ({"shared_dir": "/x;reboot"}, r"\[aws\] shared_dir = '/x;reboot' is not an absolute folder"),
    ({"shared_dir": "/home"}, r"\[aws\] shared_dir = '/home' is a folder the system needs"),
    ({"shared_dir": "/scratch", "scratch": "/scratch"}, r"\[aws\] shared_dir = '/scratch' is the scratch folder"),
    ({"shared_keep": "yes"}, r"\[aws\] shared_keep must be a boolean")])
def test_bad_values_are_refused_naming_the_key(data_dir, table, message):
    with pytest.raises(ConfigError, match=message):
        Config.from_dict({"aws": table})
    with pytest.raises(ConfigError, match=message):  # a contract's overrides go through the same checks
        Config().replace(aws=table)


# -- nfs, as text ----------------------------------------------------------------------------------------------------
def test_the_server_exports_to_each_member_only():
    assert shared_fs.exports("/shared", ["10.0.0.5", "10.0.0.6", "10.0.0.5"]) == (
        "/shared 10.0.0.5(rw,sync,no_subtree_check)\n/shared 10.0.0.6(rw,sync,no_subtree_check)\n")
    script = shared_fs.server_script("/shared", ["10.0.0.5", "10.0.0.6"])
    assert "/shared 10.0.0.5(rw,sync,no_subtree_check)" in script and "*" not in shared_fs.exports("/s", ["1.2.3.4"])
    assert "exportfs -ra" in script and shared_fs.EXPORTS_FILE in script and "chmod 1777 /shared" in script


def test_a_member_mounts_the_export_hard_after_the_network():
    line = shared_fs.fstab_nfs("10.0.0.4", "/shared")
    source, target, kind, options, *_ = line.split()
    assert (source, target, kind) == ("10.0.0.4:/shared", "/shared", "nfs")
    assert {"hard", "_netdev"} <= set(options.split(","))
    script = shared_fs.client_script("10.0.0.4", "/shared")
    assert line in script and "mountpoint -q /shared || mount /shared" in script


def test_the_efs_mount_uses_the_user_guides_options():
    source, target, kind, options, *_ = shared_fs.fstab_efs("172.31.0.4", "/shared").split()
    assert (source, target, kind) == ("172.31.0.4:/", "/shared", "nfs4")
    assert options == "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport,_netdev"


def test_root_runs_the_scripts_itself_others_through_sudo(tmp_path):
    import subprocess

    out = subprocess.run(["sh", "-c", shared_fs.as_root("id -u")], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "0"  # this suite runs as root: no sudo needed
    assert "sudo -n sh -c" in shared_fs.as_root("true")


def test_user_data_installs_nfs_mounts_efs_and_none_sends_nothing():
    from ccdsl.executor.providers.aws import user_data

    nfs = cloud_config(user_data(False, "", shared_fs.runcmd("nfs", "/shared")) or "")
    (argv,) = nfs["runcmd"]
    assert argv[:2] == ["sh", "-c"] and "install -y -q nfs-kernel-server nfs-common" in argv[2]
    efs = cloud_config(user_data(True, "", shared_fs.runcmd("efs", "/shared", "172.31.0.4")) or "")
    install, mount = efs["runcmd"]
    assert "python3-venv" in install[2]  # [mpi] install beside it, one runcmd list
    assert shared_fs.fstab_efs("172.31.0.4", "/shared") in mount[2] and "mount /shared" in mount[2]
    assert user_data(False, "", shared_fs.runcmd("none", "/shared")) is None  # as before: no user data


def test_ec2_receives_the_nfs_user_data_and_the_self_rule_admits_2049(ec2_config, ec2, hooks, aws_like):
    """The security group's rule from itself admits every protocol and port (IpProtocol -1): NFS's 2049 too."""
    p = provider(ec2_config, shared="nfs")
    nodes = p.create(request("t3.xlarge"), lambda *e: None)
    try:
        data = ec2.describe_instance_attribute(InstanceId=nodes[0].instance_id, Attribute="userData")
        (argv,) = cloud_config(base64.b64decode(data["UserData"]["Value"]).decode())["runcmd"]
        assert "nfs-kernel-server" in argv[2]
        (group,) = ec2.describe_security_groups(GroupIds=[p.resources["security_group_id_created"]])["SecurityGroups"]
        (own,) = [r for r in group["IpPermissions"] if r.get("UserIdGroupPairs")]
        assert own["IpProtocol"] == "-1" and own["UserIdGroupPairs"][0]["GroupId"] == group["GroupId"]
        assert {n.extra["shared"] for n in nodes} == {"nfs"} and nodes[0].extra["shared_dir"] == "/shared"
    finally:
        p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_private_nodes_that_install_nfs_need_a_nat_route_before_anything_is_created(ec2_config, ec2, hooks):
    """The NFS packages are downloaded where the image lacks them: a private subnet without a NAT route is refused
    first, as for [mpi] install; shared = "none" downloads nothing and passes."""
    from test_executor_aws_efa import only, sent
    from test_executor_aws_private import BASTION, default_vpc_to_the_internet

    default_vpc_to_the_internet(ec2)
    calls = sent(hooks)
    for mode in ("nfs", "efs"):
        p = provider(ec2_config, shared=mode, **BASTION)
        with pytest.raises(ConfigError, match=rf'cannot download: .*\[aws\] shared = "{mode}" \(apt-get installs'):
            p.check_plan([request("t3.xlarge")])
        assert not p.reached_cloud
    provider(ec2_config, shared="none", **BASTION).check_plan([request("t3.xlarge")])
    assert only(calls, "RunInstances") == [] and only(calls, "CreateSecurityGroup") == []


def test_a_cluster_recorded_before_shared_existed_keeps_its_copies(ec2_config, ec2, hooks, aws_like):
    """Its record has no ``shared``: a resume must not turn today's default (nfs) on for nodes that have no NFS."""
    from ccdsl.executor.providers import aws as aws_mod

    p = provider(ec2_config.replace(aws={"shared": "nfs"}))
    nodes = p.create(request("t3.xlarge"), lambda *e: None)
    old = {k: v for k, v in p.settings().items() if not k.startswith("shared")}
    later = aws_mod.make(ec2_config.replace(aws={"shared": "nfs"}), old)
    assert {n.extra["shared"] for n in later.describe(HANDLE)} == {""}
    assert {n.extra["shared"] for n in aws_mod.make(ec2_config, p.settings()).describe(HANDLE)} == {"nfs"}
    p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


# -- efs on moto ---------------------------------------------------------------------------------------------------
def test_efs_lifecycle(ec2_config, ec2, efs, hooks, aws_like):
    aws_like.enable("efs_states", polls=2)
    p = provider(ec2_config, shared="efs")
    nodes = p.create(request("t3.xlarge"), lambda *e: None)
    try:
        (fs,) = file_systems(efs)
        assert fs["CreationToken"] == f"ccdsl-{HANDLE}" and fs["Encrypted"] is True
        assert tags(fs)["ccdsl:cluster"] == HANDLE and "ccdsl:kept" not in tags(fs)
        (target,) = efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"]
        assert target["SubnetId"] == default_subnet(ec2, "us-east-1b")  # the subnet of the nodes' zone
        groups = efs.describe_mount_target_security_groups(MountTargetId=target["MountTargetId"])["SecurityGroups"]
        assert groups == [p.resources["security_group_id_created"]]
        assert aws_like.fired["efs_states"] >= 4  # waited through creating, twice each
        data = ec2.describe_instance_attribute(InstanceId=nodes[0].instance_id, Attribute="userData")
        (argv,) = cloud_config(base64.b64decode(data["UserData"]["Value"]).decode())["runcmd"]
        assert shared_fs.fstab_efs(target["IpAddress"], "/shared") in argv[2]
        assert p.settings()["efs_address"] == target["IpAddress"]  # on record
        assert set(p.leftovers(HANDLE)) >= {fs["FileSystemId"], target["MountTargetId"]}
        assert HANDLE in p.discover()
    finally:
        before = aws_like.fired["efs_states"]
        p.terminate(HANDLE, nodes)
    assert aws_like.fired["efs_states"] > before  # waited through deleting
    assert file_systems(efs) == [] and p.leftovers(HANDLE) == []
    nothing_left(ec2, aws_like)


def test_shared_keep_keeps_the_file_system_and_nothing_else(ec2_config, ec2, efs, hooks, aws_like, caplog):
    aws_like.enable("efs_states", polls=1)
    p = provider(ec2_config, shared="efs", shared_keep=True)
    nodes = p.create(request("t3.xlarge"), lambda *e: None)
    p.terminate(HANDLE, nodes)
    (fs,) = file_systems(efs)
    assert tags(fs)["ccdsl:kept"] == "true"
    assert efs.describe_mount_targets(FileSystemId=fs["FileSystemId"])["MountTargets"] == []  # they held the group
    assert p.leftovers(HANDLE) == [] and HANDLE not in p.discover()
    assert any("is kept ([aws] shared_keep = true)" in r.getMessage() for r in caplog.records)
    nothing_left(ec2, aws_like)
    efs.delete_file_system(FileSystemId=fs["FileSystemId"])


class Crash(BaseException):
    """The process dies: nothing after this point runs in it."""


@pytest.mark.parametrize("record", ["journal", "lost"])
def test_a_crash_between_create_and_record_is_found_and_removed(ec2_config, ec2, efs, hooks, aws_like, record):
    """CreateFileSystem reached EFS but its answer never came back.  A later process finds the file system with
    the journaled creation token (``journal``), or, with no record at all (``lost``), by its tag."""
    from ccdsl.executor.providers import aws as aws_mod

    aws_like.enable("efs_states", polls=1)

    def crash(**_):
        raise Crash

    hooks.append(("after-call.efs.CreateFileSystem", crash))
    p = provider(ec2_config, shared="efs")
    with pytest.raises(Crash):
        p.create(request("t3.xlarge"), lambda *e: None)
    settings = p.settings()
    assert settings["efs_token"] == f"ccdsl-{HANDLE}" and "efs_id" not in settings  # journaled before the call
    (fs,) = file_systems(efs)
    hooks.remove(("after-call.efs.CreateFileSystem", crash))
    later = aws_mod.make(ec2_config, settings if record == "journal" else {})  # another process; "lost": shared none
    assert HANDLE in later.discover()
    assert fs["FileSystemId"] in later.leftovers(HANDLE)
    later.terminate(HANDLE, [])
    assert file_systems(efs) == []
    nothing_left(ec2, aws_like)


def test_a_failed_deploy_removes_its_file_system(aws_env, data_dir, ec2, efs, hooks, aws_like):
    """The deploy's own clean-up (no SSH hosts: the nodes never answer) deletes the file system with the rest."""
    config = Config.from_dict({"aws": aws_settings(aws_env, shared="efs", zones=["us-east-1a"],
                                                   address_map={"0": "127.0.0.1:9", "1": "127.0.0.1:9"}),
                               "ssh": {"ready_timeout": 0.5, "connect_timeout": 0.2}})
    contract = ccdsl.parse("c = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)")["c"]
    with pytest.raises(ccdsl.CcdslError):
        ccdsl.deploy(contract, config=config)
    assert file_systems(efs) == []
    (record,) = State().list_clusters(live_only=False)
    assert tagged(ec2, record.handle) == {}


# -- the shared project folder on namespace hosts ------------------------------------------------------------------
def ranks_share(comm):
    """Rank 0 writes a file into the folder; after a barrier every rank reads it."""
    import os
    from pathlib import Path

    if comm.Get_rank() == 0:
        Path("from-node-0.txt").write_text(f"written by rank 0 in {os.getcwd()}")
    comm.Barrier()
    return comm.gather((os.getcwd(), Path("from-node-0.txt").read_text()), root=0)


def netns_config(aws_env, hosts, tmp_path, shared_dir: Path) -> Config:
    addresses = {str(i): h.address for i, h in enumerate(hosts.hosts)}
    return Config.from_dict({
        "aws": aws_settings(aws_env, user=hosts.user, address_map=addresses, zones=["us-east-1a"], shared="efs",
                            shared_dir=str(shared_dir)),
        "ssh": {"ready_timeout": 60.0, "connect_timeout": 5.0},
        "mpi": {"python": sys.executable, "iface": "eth0", "remote_dir": str(hosts.private / "remote"),
                "authorized_keys": str(hosts.authorized_keys)},
    })


TWO = "two = @cluster(node_count => 2, node_machinetype => EC2Type_T3_xLarge)"


@pytest.mark.netns
def test_sync_writes_once_and_node_1_reads_what_node_0_wrote(aws_env, data_dir, ec2, efs, netns_hosts,
                                                             ec2_keys_on_hosts, aws_like, tmp_path):
    aws_like.enable("efs_states", polls=1)
    shared = tmp_path / "shared"  # outside the hosts' private folder: one folder for every host, as a mount is
    shared.mkdir()
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "data.txt").write_text("hello\n")
    config = netns_config(aws_env, netns_hosts, tmp_path, shared)
    c = ccdsl.deploy(ccdsl.parse(TWO)["two"], config=config, workdir=proj)
    try:
        work = shared / c.handle / "work"
        assert (work / "data.txt").read_text() == "hello\n"
        assert not any((netns_hosts.private_of(i) / "remote" / c.handle / "work").exists() for i in range(2))
        (proj / "data.txt").write_text("changed\n")
        synced = c.sync()
        assert [(s.instance_id, s.files) for s in synced] == [(c.nodes()[0].instance_id, 1)]  # node 0 alone
        assert c.run(ranks_share) == [(str(work), f"written by rank 0 in {work}")] * 2
        assert len(file_systems(efs)) == 1
    finally:
        ccdsl.terminate(c.handle, config=config)
    assert file_systems(efs) == [] and tagged(ec2, c.handle) == {}


@pytest.mark.netns
def test_nodes_that_do_not_share_the_folder_fail_the_deploy(aws_env, data_dir, ec2, efs, netns_hosts,
                                                            ec2_keys_on_hosts, tmp_path):
    """Each host sees its own ``private`` folder: what node 0 writes there node 1 cannot read, as when a mount
    failed.  The deploy says so and removes what it created."""
    for i in range(2):
        (netns_hosts.private_of(i) / "shared").mkdir()
    config = netns_config(aws_env, netns_hosts, tmp_path, netns_hosts.private / "shared")
    with pytest.raises(ProviderError, match=r"worker 1 .* does not see the shared folder .* of worker 0") as info:
        ccdsl.deploy(ccdsl.parse(TWO)["two"], config=config)
    assert 'shared = "none"' in (info.value.hint or "")
    assert file_systems(efs) == []
    (record,) = State().list_clusters(live_only=False)
    assert record.status == "terminated" and tagged(ec2, record.handle) == {}


def _kernel_nfs() -> str | None:
    """Why the kernel cannot serve or mount NFS here (None: it can)."""
    try:
        known = {line.split()[-1] for line in Path("/proc/filesystems").read_text().splitlines() if line.strip()}
    except OSError:
        return "/proc/filesystems cannot be read"
    lacking = [f for f in ("nfs", "nfsd") if f not in known]
    if lacking:
        return f"this kernel has no {' and no '.join(lacking)} (/proc/filesystems), and no modules to load"
    import shutil

    if shutil.which("exportfs") is None or shutil.which("mount.nfs") is None:
        return "nfs-kernel-server / nfs-common are not installed (no exportfs or mount.nfs)"
    return None


@pytest.mark.netns
@pytest.mark.skipif(_kernel_nfs() is not None, reason=f"NFS mount between namespace hosts: {_kernel_nfs()}")
def test_nfs_between_namespace_hosts(aws_env, data_dir, ec2, netns_hosts, ec2_keys_on_hosts, tmp_path):
    """Node 0 exports a folder of its private disk, node 1 mounts it: node 1 reads what node 0 wrote."""
    for i in range(2):
        (netns_hosts.private_of(i) / "shared").mkdir()
    config = netns_config(aws_env, netns_hosts, tmp_path, netns_hosts.private / "shared").replace(
        aws={"shared": "nfs"})
    fstab = Path("/etc/fstab").read_text()  # the hosts share this machine's /etc: put it back afterwards
    try:
        c = ccdsl.deploy(ccdsl.parse(TWO)["two"], config=config)
        try:
            work = netns_hosts.private / "shared" / c.handle / "work"
            assert c.run(ranks_share) == [(str(work), f"written by rank 0 in {work}")] * 2
            assert (netns_hosts.private_of(0) / "shared" / c.handle / "work" / "from-node-0.txt").exists()
            assert not (netns_hosts.private_of(1) / "shared" / c.handle).exists()  # node 1 saw node 0's disk
        finally:
            ccdsl.terminate(c.handle, config=config)
    finally:
        Path("/etc/fstab").write_text(fstab)
        Path(shared_fs.EXPORTS_FILE).unlink(missing_ok=True)
