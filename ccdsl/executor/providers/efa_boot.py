"""What a node launched with EFA runs once at first boot (cloud-init ``runcmd``): the EFA software and the kernel
setting MPI needs.

The steps are AWS's ("Get started with EFA and MPI for HPC workloads on Amazon EC2", steps 3 and 4):

- the EFA installer (``efa_installer.sh -y``) installs the EFA kernel driver, libfabric with its ``efa`` provider
  (``/opt/amazon/efa``, where ``fi_info`` is) and Open MPI built on it (``/opt/amazon/openmpi``).  An image that
  has it already -- an AWS Deep Learning Base AMI ships EFA, the image to choose for GPU types (``[aws]
  image``) -- skips the download.  The download needs the internet: private nodes need a NAT route, which the
  ``aws`` provider checks before anything is created;
- ``kernel.yama.ptrace_scope = 0`` (persisted in ``/etc/sysctl.d``, and set now): Ubuntu's default (1) stops Open
  MPI's ranks on one node from reading each other's memory (CMA), which its shared-memory transport needs.

The installer runs ``apt-get``/``yum``, and on a fresh Ubuntu instance unattended-upgrades holds the dpkg lock for
minutes: an apt configuration file makes every ``apt-get`` wait for the lock (up to 10 minutes) instead of failing.
``ssh.wait_ready`` waits for cloud-init (``[aws] boot_wait``), and the deploy then checks that ``fi_info -p efa``
lists every EFA device (:mod:`ccdsl.executor.fabric_check`).

Kept apart from :func:`ccdsl.executor.providers.aws.user_data`, which only adds these lines to its ``runcmd``.
"""

from __future__ import annotations

import json

INSTALLER_URL = "https://efa-installer.amazonaws.com/aws-efa-installer-latest.tar.gz"
EFA_BIN = "/opt/amazon/efa/bin"  # fi_info; not on the PATH of an SSH command
SYSCTL_FILE = "/etc/sysctl.d/99-ccdsl-efa.conf"
PTRACE = "kernel.yama.ptrace_scope = 0"
APT_LOCK_FILE = "/etc/apt/apt.conf.d/90ccdsl-lock-timeout"

# Argument: the installer's URL.  Runs as root from cloud-init, in a folder of its own.
INSTALL_SCRIPT = f"""set -eu
if [ -x {EFA_BIN}/fi_info ]; then
  echo "ccdsl: EFA software already installed ({EFA_BIN})"
else
  if [ -d /etc/apt/apt.conf.d ]; then
    echo 'DPkg::Lock::Timeout "600";' > {APT_LOCK_FILE}
  fi
  work=$(mktemp -d)
  cd "$work"
  curl -fsSL --retry 5 -o aws-efa-installer.tar.gz "$1"
  tar -xzf aws-efa-installer.tar.gz
  cd aws-efa-installer
  ./efa_installer.sh -y
  cd /
  rm -rf "$work"
fi
"""
SYSCTL_SCRIPT = f"""set -eu
echo '{PTRACE}' > {SYSCTL_FILE}
sysctl -w {PTRACE.replace(' ', '')}
"""


def runcmd() -> str:
    """The cloud-config ``runcmd`` entries (YAML list items, two spaces in; each argv written as JSON, which YAML
    reads as it is): the installer, then the sysctl."""
    return "".join("  - " + json.dumps(argv) + "\n" for argv in (
        ["bash", "-c", INSTALL_SCRIPT, "ccdsl-efa", INSTALLER_URL],
        ["sh", "-c", SYSCTL_SCRIPT]))
