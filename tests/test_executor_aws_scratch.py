"""``[aws] scratch`` (issue 23 item 5): every boot, each node stripes its unused instance-store NVMe disks together,
formats them when they are new and mounts them at the folder; ``ccdsl interrupt`` warns that a stop empties them.

The boot script is the one in the user data the provider sends, read back from moto and run by a real bash with
stand-ins for the commands that touch disks (``lsblk``, ``blkid``, ``mdadm``, ``mkfs.ext4``, ``mount``,
``mountpoint``) first on its PATH: each writes down how it was called, and answers as a node with the described
disks would.
"""

from __future__ import annotations

import base64
import logging
import subprocess
from pathlib import Path

import pytest
import yaml

from aws_like import aws_like  # the fixture
from ccdsl.errors import ConfigError
from fixtures_executor import data_dir, ec2, ec2_config, hooks
from test_aws_behaviour import HANDLE, nothing_left, provider
from test_executor_aws_efa import request

STORE = 'MODEL="Amazon EC2 NVMe Instance Storage        "'  # as the NVMe controller names it, padded
EBS = 'MODEL="Amazon Elastic Block Store              "'

STUB = """#!/bin/bash
echo "$(basename "$0") $*" >> "$STUBS/calls"
case "$(basename "$0") $*" in
  "lsblk -dpnP -o NAME,MODEL,MOUNTPOINT") cat "$STUBS/disks" ;;
  "lsblk -nro NAME "*) cat "$STUBS/tree/$(basename "$3")" 2>/dev/null || basename "$3" ;;
  "blkid -L ccdsl-scratch") cat "$STUBS/labelled" 2>/dev/null || exit 2 ;;
  "mountpoint -q "*) [ -e "$STUBS/mounted" ] || exit 1 ;;
esac
"""


def boot_script(user_data: str) -> list[str]:
    """The argv cloud-init's bootcmd runs (user data is YAML: the provider writes the argv as JSON)."""
    (argv,) = yaml.safe_load(user_data)["bootcmd"]
    return argv


def run_boot(tmp_path: Path, argv: list[str], disks: list[str], tree: dict[str, str] | None = None,
             labelled: str = "", mounted: bool = False) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run the boot script with the stand-ins; returns the commands it issued, in order, and the process."""
    stubs = tmp_path / "stubs"
    (stubs / "bin").mkdir(parents=True)
    (stubs / "tree").mkdir()
    for name in ("lsblk", "blkid", "mdadm", "mkfs.ext4", "mount", "mountpoint"):
        (stubs / "bin" / name).write_text(STUB)
        (stubs / "bin" / name).chmod(0o755)
    (stubs / "disks").write_text("".join(line + "\n" for line in disks))
    for disk, lines in (tree or {}).items():
        (stubs / "tree" / disk).write_text(lines)
    if labelled:
        (stubs / "labelled").write_text(labelled + "\n")
    if mounted:
        (stubs / "mounted").touch()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{stubs / 'bin'}:/usr/bin:/bin", "STUBS": str(stubs)})
    calls = (stubs / "calls").read_text().splitlines() if (stubs / "calls").exists() else []
    return calls, proc


@pytest.fixture()
def script(tmp_path):
    """The boot script's argv for a scratch folder inside tmp_path (never a real /scratch)."""
    from ccdsl.executor.providers.aws import user_data

    folder = tmp_path / "scratch"
    argv = boot_script(user_data(False, str(folder)) or "")
    assert argv[:2] == ["bash", "-c"] and argv[3:] == ["ccdsl-scratch", str(folder)]
    return argv, folder


def test_several_unused_disks_are_striped_formatted_and_mounted(tmp_path, script):
    argv, folder = script
    disks = ['NAME="/dev/nvme0n1" ' + EBS + ' MOUNTPOINT="/"',
             'NAME="/dev/nvme1n1" ' + STORE + ' MOUNTPOINT=""',
             'NAME="/dev/nvme2n1" ' + STORE + ' MOUNTPOINT=""',
             'NAME="/dev/nvme3n1" ' + STORE + ' MOUNTPOINT=""',  # partitioned by someone: in use
             'NAME="/dev/nvme4n1" ' + STORE + ' MOUNTPOINT="/data"']  # mounted: in use
    calls, proc = run_boot(tmp_path, argv, disks, tree={"nvme3n1": "nvme3n1\nnvme3n1p1\n"})
    assert proc.returncode == 0, proc.stderr
    assert calls == [
        f"mountpoint -q {folder}",
        "blkid -L ccdsl-scratch",
        "lsblk -dpnP -o NAME,MODEL,MOUNTPOINT",
        "lsblk -nro NAME /dev/nvme1n1", "lsblk -nro NAME /dev/nvme2n1", "lsblk -nro NAME /dev/nvme3n1",
        "mdadm --create /dev/md/ccdsl-scratch --name=ccdsl-scratch --level=0 --raid-devices=2 --run /dev/nvme1n1 "
        "/dev/nvme2n1",
        "mkfs.ext4 -F -q -E nodiscard -L ccdsl-scratch /dev/md/ccdsl-scratch",
        f"mount -o noatime /dev/md/ccdsl-scratch {folder}"]
    assert folder.is_dir() and folder.stat().st_mode & 0o7777 == 0o1777  # every user may write, like /tmp


def test_one_disk_is_formatted_and_mounted_without_an_array(tmp_path, script):
    argv, folder = script
    calls, proc = run_boot(tmp_path, argv, ['NAME="/dev/nvme1n1" ' + STORE + ' MOUNTPOINT=""'])
    assert proc.returncode == 0, proc.stderr
    assert not any(c.startswith("mdadm") for c in calls)
    assert calls[-2:] == ["mkfs.ext4 -F -q -E nodiscard -L ccdsl-scratch /dev/nvme1n1",
                          f"mount -o noatime /dev/nvme1n1 {folder}"]


def test_after_a_reboot_the_labelled_file_system_is_mounted_as_it_is(tmp_path, script):
    """A reboot keeps instance storage (a stop does not): the array mdadm assembled again holds the file system
    labelled ccdsl-scratch, with the data: no mdadm --create, no mkfs."""
    argv, folder = script
    disks = ['NAME="/dev/nvme1n1" ' + STORE + ' MOUNTPOINT=""', 'NAME="/dev/nvme2n1" ' + STORE + ' MOUNTPOINT=""']
    calls, proc = run_boot(tmp_path, argv, disks, labelled="/dev/md127")
    assert proc.returncode == 0, proc.stderr
    assert calls == [f"mountpoint -q {folder}", "blkid -L ccdsl-scratch", f"mount -o noatime /dev/md127 {folder}"]


def test_a_mounted_folder_is_left_alone(tmp_path, script):
    argv, folder = script
    calls, proc = run_boot(tmp_path, argv, ['NAME="/dev/nvme1n1" ' + STORE + ' MOUNTPOINT=""'], mounted=True)
    assert proc.returncode == 0 and calls == [f"mountpoint -q {folder}"]


def test_a_node_without_instance_storage_keeps_a_plain_folder(tmp_path, script):
    argv, folder = script
    calls, proc = run_boot(tmp_path, argv, ['NAME="/dev/nvme0n1" ' + EBS + ' MOUNTPOINT="/"'])
    assert proc.returncode == 0  # the boot goes on
    assert "no unused instance-store disk" in proc.stderr
    assert not any(c.split()[0] in ("mdadm", "mkfs.ext4", "mount") for c in calls) and folder.is_dir()


def test_the_user_data_ec2_receives_holds_the_script_and_the_install(ec2_config, ec2, hooks, aws_like, caplog):
    from ccdsl.executor.providers import aws as aws_mod

    p = aws_mod.make(ec2_config.replace(aws={"scratch": "/scratch"}, mpi={"install": True}), {})
    nodes = p.wait_running(HANDLE, p.create(request("c6id.32xlarge", count=1), lambda *e: None), lambda *e: None)
    recorded = ec2.describe_instance_attribute(InstanceId=nodes[0].instance_id, Attribute="userData")
    text = base64.b64decode(recorded["UserData"]["Value"]).decode()
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert boot_script(text)[3:] == ["ccdsl-scratch", "/scratch"]
    assert boot_script(text)[2] == aws_mod.SCRATCH_SCRIPT
    assert "python3-venv" in str(doc["runcmd"])  # [mpi] install, as before
    with caplog.at_level(logging.WARNING, logger="ccdsl.executor"):
        p.stop(HANDLE, nodes)
    assert any("stopping empties the nodes' instance storage, and what /scratch holds is lost" in r.getMessage()
               for r in caplog.records)
    p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_a_type_without_instance_storage_is_said(ec2_config, ec2, hooks, aws_like, caplog):
    with caplog.at_level(logging.WARNING, logger="ccdsl.executor"):
        p = provider(ec2_config, scratch="/scratch")
        nodes = p.create(request("c6i.large", count=1), lambda *e: None)
    assert any("c6i.large has no instance storage: [aws] scratch = '/scratch' is a folder on its root volume"
               in r.getMessage() for r in caplog.records)
    p.terminate(HANDLE, nodes)
    nothing_left(ec2, aws_like)


def test_without_scratch_or_install_no_user_data_is_sent():
    from ccdsl.executor.providers.aws import user_data

    assert user_data(False, "") is None
    assert "bootcmd" not in yaml.safe_load(user_data(True, "") or "")


@pytest.mark.parametrize("value", ["/scratch", "/mnt/scratch", "/local_disk-0/x.y"])
def test_a_scratch_folder_is_accepted(data_dir, value):
    from ccdsl.executor.config import Config

    assert Config.from_dict({"aws": {"scratch": value}}).aws.scratch == value


@pytest.mark.parametrize("value, problem", [
    ("scratch", "not an absolute folder"), ("/", "not an absolute folder"), ("/scratch/", "not an absolute folder"),
    ("/a b", "not an absolute folder"), ("/x;reboot", "not an absolute folder"), ("/$(id)", "not an absolute folder"),
    ("/scratch/../etc", "not an absolute folder"), ("/home", "a folder the system needs"),
    ("/tmp", "a folder the system needs")])
def test_anything_else_is_refused_when_the_file_is_read(data_dir, value, problem):
    from ccdsl.executor.config import Config

    with pytest.raises(ConfigError, match=problem):
        Config.from_dict({"aws": {"scratch": value}})


def test_a_c6id_with_smt_off_and_scratch_gets_both(ec2_config, ec2, hooks, aws_like):
    """Issue 23's check: one RunInstances for c6id.32xlarge carries CpuOptions (64 cores, one thread each) and the
    scratch boot script (captured as sent: moto drops CpuOptions)."""
    from test_executor_aws_efa import create_and_terminate, only, sent

    calls = sent(hooks)
    create_and_terminate(provider(ec2_config, smt=False, scratch="/scratch"), request("c6id.32xlarge", count=1), ec2,
                         aws_like)
    (run,) = only(calls, "RunInstances")
    assert run["CpuOptions"] == {"CoreCount": 64, "ThreadsPerCore": 1}
    assert boot_script(base64.b64decode(run["UserData"]).decode())[3:] == ["ccdsl-scratch", "/scratch"]  # as sent
