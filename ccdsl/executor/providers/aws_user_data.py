"""The nodes' cloud-config (EC2 user data): ``[aws] scratch`` at every boot, and once at the first boot what
``[mpi] install``, EFA (:mod:`.efa_boot`) and ``[aws] shared`` (:mod:`.shared_fs`) need.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ccdsl.executor.providers import efa_boot

# cloud-config for [mpi] install: ``python3 -m venv`` needs ensurepip, which Debian/Ubuntu ship separately
# (python3-venv is not in Ubuntu's cloud images: "ensurepip is not available").  Installed only where missing and
# only with apt; pip then needs outbound internet from the node (a private subnet needs a NAT gateway).
# On a fresh Ubuntu instance unattended-upgrades holds the dpkg lock for minutes: apt-get waits for it (up to 10 min)
# instead of failing at once.
INSTALL_USER_DATA = (
    "#cloud-config\n"
    "runcmd:\n"
    "  - [sh, -c, \"python3 -c 'import ensurepip' 2>/dev/null || ! command -v apt-get >/dev/null || "
    "(apt-get -o DPkg::Lock::Timeout=600 update -q && DEBIAN_FRONTEND=noninteractive apt-get "
    "-o DPkg::Lock::Timeout=600 install -y -q python3-venv)\"]\n"
)
# [aws] scratch: every boot (cloud-init bootcmd; a stop empties instance storage, so it runs again at resume), the
# instance-store NVMe disks no one uses (EC2 names their model "Amazon EC2 NVMe Instance Storage"; the EBS root is
# "Amazon Elastic Block Store"; a disk with partitions or in an array is in use) are striped together (RAID 0, when
# there are several), formatted and mounted at the folder, open to every user like /tmp.  After a reboot (not a
# stop) the disks keep their data: the file system labelled ccdsl-scratch (on the array mdadm assembled again) is
# mounted as it is.  A node without such disks keeps the folder on its root volume.  Argument: the folder.
SCRATCH_SCRIPT = r"""set -eu
dir=$1
if mountpoint -q "$dir"; then exit 0; fi
mkdir -p "$dir"
dev=$(blkid -L ccdsl-scratch || true)
if [ -z "$dev" ]; then
  unused='^NAME="([^"]+)" MODEL="Amazon EC2 NVMe Instance Storage *" MOUNTPOINT=""$'
  disks=()
  while IFS= read -r line; do
    [[ $line =~ $unused ]] || continue
    [ "$(lsblk -nro NAME "${BASH_REMATCH[1]}" | wc -l)" = 1 ] || continue
    disks+=("${BASH_REMATCH[1]}")
  done < <(lsblk -dpnP -o NAME,MODEL,MOUNTPOINT)
  if [ ${#disks[@]} = 0 ]; then
    echo "ccdsl: no unused instance-store disk to mount at $dir" >&2
    exit 0
  fi
  if [ ${#disks[@]} = 1 ]; then
    dev=${disks[0]}
  else
    dev=/dev/md/ccdsl-scratch
    mdadm --create "$dev" --name=ccdsl-scratch --level=0 --raid-devices=${#disks[@]} --run "${disks[@]}"
  fi
  mkfs.ext4 -F -q -E nodiscard -L ccdsl-scratch "$dev"
fi
mount -o noatime "$dev" "$dir"
chmod 1777 "$dir"
"""


def user_data(install: bool, scratch: str, runcmd: Sequence[Sequence[str]] = (), efa: bool = False) -> str | None:
    """The nodes' cloud-config: ``bootcmd`` for ``[aws] scratch`` (:data:`SCRATCH_SCRIPT`, every boot), ``runcmd``
    for ``[mpi] install`` (:data:`INSTALL_USER_DATA`, once), for EFA (``efa``: :mod:`efa_boot`, once) and the argv
    lists ``runcmd`` (``[aws] shared``: :func:`.shared_fs.runcmd`); None when nothing is asked for.  Argv lists are
    written as JSON, which YAML reads as it is."""
    if not install and not scratch and not runcmd and not efa:
        return None
    out = "#cloud-config\n"
    if scratch:
        out += "bootcmd:\n  - " + json.dumps(["bash", "-c", SCRATCH_SCRIPT, "ccdsl-scratch", scratch]) + "\n"
    if install or runcmd or efa:
        out += "runcmd:\n"
    if install:
        out += INSTALL_USER_DATA.removeprefix("#cloud-config\nruncmd:\n")
    if efa:
        out += efa_boot.runcmd()
    out += "".join("  - " + json.dumps(list(argv)) + "\n" for argv in runcmd)
    return out
