"""``[aws] shared``: one folder every node of an EC2 cluster sees, where the project's folder lives.

Why: without it ``sync`` copies the folder to every node (this machine's uplink carries it N times, or the
manager relays it), and what one rank writes the others cannot read.  With it the folder is written once, to the
*server* (node 0, or the manager of a ManagerWorkers cluster), and every node reads it at
``<shared_dir>/<handle>/work``.

- ``nfs`` (default; how AWS ParallelCluster shares its head node's volumes): free, and nothing outlives the cluster.
  The nodes' user data installs the NFS packages (:func:`runcmd`).  Which addresses to export to is known only
  after launch, so the export and the mounts are made over SSH when the nodes are made ready (:func:`prepare`,
  again at every resume and reconnect, each step idempotent): the server exports ``shared_dir`` to the other
  members' private addresses only (:func:`exports`), the others mount it (:func:`fstab_nfs`).  Port 2049 passes the
  security group ccdsl creates, whose rule admits all traffic between its members.
- ``efs``: an encrypted Amazon EFS file system per cluster and one mount target in the cluster's subnet with its
  security group (:func:`ensure_efs`, journaled in the cluster's record before each create, found by its creation
  token and tags after a crash), mounted by the nodes' user data (:func:`fstab_efs`: the EFS User Guide's options).
  Terminate deletes the mount targets, waits, then the file system (:func:`delete_efs`), unless ``shared_keep``:
  then the file system is tagged ``ccdsl:kept`` when created and is left alone (its mount targets still go: they
  hold the cluster's security group).
- ``none``: every node keeps its own copy, as before.

Either way :func:`prepare` proves the folder is shared before anything relies on it: the server writes a random
token under ``shared_dir``, every other node must read it back.
"""

from __future__ import annotations

import logging
import secrets
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ccdsl.errors import ProviderError
from ccdsl.executor.model import Node
from ccdsl.executor.parallel import parallel
from ccdsl.executor.providers.base import TAG_CLUSTER, poll

if TYPE_CHECKING:
    from ccdsl.executor import ssh
    from ccdsl.executor.providers.aws_api import Ec2

log = logging.getLogger("ccdsl.executor")

EXPORT_OPTIONS = "rw,sync,no_subtree_check"
# hard: a program waits for a rebooting server instead of getting I/O errors; _netdev: mounted once the network is
# up; nofail: a node that boots before the server (a resume) still boots, and prepare() mounts it then.
NFS_MOUNT_OPTIONS = "rw,hard,_netdev,nofail"
# EFS User Guide, "Mounting EFS file systems using the NFS client" (and _netdev for /etc/fstab)
EFS_MOUNT_OPTIONS = "nfsvers=4.1,rsize=1048576,wsize=1048576,hard,timeo=600,retrans=2,noresvport"
EXPORTS_FILE = "/etc/exports.d/ccdsl.exports"  # read by exportfs beside /etc/exports, one line per member
TOKEN_FILE = ".ccdsl-shared"  # in <shared_dir>/<handle>: the server's proof that every node sees its folder
TAG_KEPT = "ccdsl:kept"  # on a file system created with shared_keep: terminate leaves it
_GONE = ("deleting", "deleted")
_APT = "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600"


def work_dir(shared_dir: str, handle: str) -> str:
    """Where the project's folder lives when the nodes share ``shared_dir``."""
    return f"{shared_dir.rstrip('/')}/{handle}/work"


def exports(shared_dir: str, addresses: Sequence[str]) -> str:
    """The server's export lines (``/etc/exports`` format): ``shared_dir`` to each member address, no one else."""
    return "".join(f"{shared_dir} {a}({EXPORT_OPTIONS})\n" for a in dict.fromkeys(addresses))


def fstab_nfs(server: str, shared_dir: str) -> str:
    """A member's ``/etc/fstab`` line for the server's export."""
    return f"{server}:{shared_dir} {shared_dir} nfs {NFS_MOUNT_OPTIONS} 0 0"


def fstab_efs(address: str, shared_dir: str) -> str:
    """A node's ``/etc/fstab`` line for an EFS mount target."""
    return f"{address}:/ {shared_dir} nfs4 {EFS_MOUNT_OPTIONS},_netdev 0 0"


def _install(tools: str, packages_apt: str, packages_dnf: str) -> str:
    """Install the packages unless every one of ``tools`` is there already (an image that has them downloads
    nothing)."""
    have = " && ".join(f"command -v {t} >/dev/null" for t in tools.split())
    return (f"if {have}; then :; elif command -v apt-get >/dev/null; then {_APT} update -q && {_APT} install -y -q "
            f"{packages_apt}; elif command -v dnf >/dev/null; then dnf install -y -q {packages_dnf}; fi")


def downloads(mode: str) -> list[str]:
    """What ``mode`` makes a new node download (private nodes need a NAT route for it, checked before launch)."""
    if mode not in ("nfs", "efs"):
        return []
    return [f'[aws] shared = "{mode}" (apt-get installs the NFS packages where the image lacks them; "none" '
            "downloads nothing)"]


def runcmd(mode: str, shared_dir: str, efs_address: str = "") -> list[list[str]]:
    """The cloud-config ``runcmd`` entries (argv lists) for ``mode``: NFS packages on every node (server and
    clients: node 0 is launched with the others), an EFS mount at ``shared_dir`` in ``/etc/fstab``; nothing for
    ``none``."""
    d = shlex.quote(shared_dir)
    if mode == "nfs":
        script = (f"{_install('exportfs mount.nfs', 'nfs-kernel-server nfs-common', 'nfs-utils')}; "
                  f"mkdir -p {d} && chmod 1777 {d}")
    elif mode == "efs":
        line = shlex.quote(fstab_efs(efs_address, shared_dir))
        # the mount target answers once it is available (ensure_efs waited); a few tries cover a slow network
        script = (f"{_install('mount.nfs4', 'nfs-common', 'nfs-utils')}; mkdir -p {d}; grep -qxF {line} /etc/fstab || "
                  f"echo {line} >> /etc/fstab; for i in 1 2 3 4 5 6 7 8 9 10; do mountpoint -q {d} && break; "
                  f"mount {d} || sleep 6; done; chmod 1777 {d}")
    else:
        return []
    return [["sh", "-c", script]]


def server_script(shared_dir: str, members: Sequence[str]) -> str:
    """What the server runs (as root): the folder, open to every user like /tmp, exported to ``members``."""
    d = shlex.quote(shared_dir)
    text = shlex.quote(exports(shared_dir, members))
    return (f"set -e; command -v exportfs >/dev/null || {{ echo 'no exportfs: nfs-kernel-server is not installed' "
            f">&2; exit 3; }}; mkdir -p {d} && chmod 1777 {d}; mkdir -p /etc/exports.d; "
            f"printf %s {text} > {EXPORTS_FILE}.tmp && mv {EXPORTS_FILE}.tmp {EXPORTS_FILE}; "
            "systemctl enable --now nfs-kernel-server >/dev/null 2>&1 || systemctl enable --now nfs-server "
            ">/dev/null 2>&1 || true; exportfs -ra")


def client_script(server: str, shared_dir: str) -> str:
    """What a member runs (as root): the server's export in ``/etc/fstab`` (once), mounted unless it is."""
    d = shlex.quote(shared_dir)
    line = shlex.quote(fstab_nfs(server, shared_dir))
    return (f"set -e; mkdir -p {d}; grep -qxF {line} /etc/fstab || echo {line} >> /etc/fstab; "
            f"mountpoint -q {d} || mount {d}")


def as_root(script: str) -> str:
    """``script`` run by root: directly when the login user is root, else through ``sudo -n`` (EC2 images give
    their login user password-less sudo)."""
    quoted = shlex.quote(script)
    return f'if [ "$(id -u)" = 0 ]; then sh -c {quoted}; else sudo -n sh -c {quoted}; fi'


# -- over SSH, when the nodes are made ready ------------------------------------------------------------------
def prepare(handle: str, workers: list[Node], manager: Node | None, pool: ssh.Connections, *,
            timeout: float) -> tuple[list[Node], Node | None]:
    """Share the folder between the nodes of a cluster whose provider asked for it (``extra["shared"]``: "nfs" or
    "efs"; nothing else happens without it), prove that every node sees it, and return the nodes with
    ``extra["work_dir"]``, where the project's folder lives.  Idempotent: deploy, resume and reconnect run it."""
    from ccdsl.executor import ssh

    everyone = [*([manager] if manager is not None else []), *workers]
    server = everyone[0]
    mode, shared_dir = str(server.extra.get("shared") or ""), str(server.extra.get("shared_dir") or "")
    if mode not in ("nfs", "efs") or not shared_dir:
        return workers, manager
    others = everyone[1:]

    def run(node: Node, command: str, what: str) -> str:
        res = ssh.run(pool.get(node), command, node=node, timeout=timeout)
        if res.code != 0:
            raise ProviderError(f"{ssh.describe(node)} could not {what} (exit {res.code}): "
                                f"{res.stderr.strip()[-500:] or res.stdout.strip()[-500:]}",
                                hint=_HINTS[mode])
        return res.stdout

    if mode == "nfs":
        address = server.private_address or server.address or ""
        run(server, as_root(server_script(shared_dir, [n.private_address or n.address or "" for n in others])),
            f"export {shared_dir} over NFS")
        parallel(lambda n: run(n, as_root(client_script(address, shared_dir)), f"mount {address}:{shared_dir}"),
                 others)
    token = secrets.token_hex(16)
    folder = f"{shared_dir.rstrip('/')}/{handle}"
    run(server, f"mkdir -p {shlex.quote(folder + '/work')} && printf %s {token} > "
                f"{shlex.quote(folder + '/' + TOKEN_FILE)}", f"write in {shared_dir}")

    def check(node: Node) -> None:
        seen = run(node, f"cat {shlex.quote(folder + '/' + TOKEN_FILE)} 2>/dev/null || true", f"read {folder}")
        if seen.strip() != token:
            raise ProviderError(f"{ssh.describe(node)} does not see the shared folder {shared_dir} of "
                                f"{ssh.describe(server)} ([aws] shared = {mode!r}): what the one writes the other "
                                "does not read", hint=_HINTS[mode])

    parallel(check, others)
    work = work_dir(shared_dir, handle)

    def shared(node: Node) -> Node:
        return replace(node, extra={**node.extra, "work_dir": work})

    return [shared(w) for w in workers], shared(manager) if manager is not None else None


_HINTS = {
    "nfs": "the nodes' user data installs nfs-kernel-server and nfs-common with apt or dnf (see "
           "/var/log/cloud-init-output.log on the node); an image without them, or a security group of yours that "
           "does not admit port 2049 between the nodes, cannot share: set [aws] shared = \"none\" for copies",
    "efs": "the nodes' user data mounts the file system (see /var/log/cloud-init-output.log on the node); a "
           "security group of yours must admit port 2049 between the nodes and the mount target: set [aws] "
           "shared = \"none\" for copies",
}


# -- EFS ---------------------------------------------------------------------------------------------------------
def creation_token(handle: str) -> str:
    """CreateFileSystem's idempotency token: a retried create answers the same file system, and a process that
    lost the answer finds it by this token."""
    return f"ccdsl-{handle}"


def ensure_efs(p: Ec2, handle: str, contract: str | None, subnet: str | None) -> str:
    """The address of the cluster's EFS mount target, creating the file system and the mount target the first
    time (``subnet``: where the first role is launched; None: a default subnet of the cluster's VPC).  Each create
    is on record before it is sent (``efs_token``, then ``efs_id``; a mount target is found through its file
    system), so terminate finds what a crash left."""
    r = p.resources
    if r.get("efs_address"):
        return str(r["efs_address"])
    token = creation_token(handle)
    if not r.get("efs_id"):
        r["efs_token"] = token
        p.journal()
        tags = p.tags(handle, None, contract) + ([{"Key": TAG_KEPT, "Value": "true"}] if p.config.shared_keep
                                                  else [])
        try:
            fs = p.call("create_file_system", service="efs", CreationToken=token, Encrypted=True,
                        PerformanceMode="generalPurpose", Tags=tags)
        except ProviderError as exc:
            if getattr(exc, "code", "") != "FileSystemAlreadyExists":  # a retry whose first answer was lost
                raise
            fs = p.call("describe_file_systems", service="efs", CreationToken=token)["FileSystems"][0]
        r["efs_id"] = fs["FileSystemId"]
        p.journal()
    fs_id = str(r["efs_id"])
    _wait_file_system(p, fs_id)
    if not r.get("efs_mount_target"):
        group = p.config.security_group_id or p.resources["security_group_id_created"]
        target = p.call("create_mount_target", service="efs", FileSystemId=fs_id,
                        SubnetId=subnet or _default_subnet(p), SecurityGroups=[group])
        r["efs_mount_target"] = target["MountTargetId"]
        p.journal()
    address = _wait_mount_target(p, str(r["efs_mount_target"]))
    r["efs_address"] = address
    p.journal()
    log.info("%s: EFS file system %s, mounted from %s", handle, fs_id, address)
    return address


def _default_subnet(p: Ec2) -> str:
    subnets = p.call("describe_subnets", Filters=[{"Name": "vpc-id", "Values": [p.resources["vpc_id"]]},
                                                  {"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    if not subnets:
        raise ProviderError(f"no default subnet in {p.resources['vpc_id']} for the EFS mount target",
                            hint="set [aws] subnet_id")
    return str(sorted(subnets, key=lambda s: s["AvailabilityZone"])[0]["SubnetId"])


def _wait_file_system(p: Ec2, fs_id: str) -> None:
    """Until the file system is ``available`` (a mount target can be created only then)."""
    def check() -> bool | None:
        (fs,) = p.call("describe_file_systems", service="efs", FileSystemId=fs_id)["FileSystems"]
        if fs["LifeCycleState"] in ("error", *_GONE):
            raise ProviderError(f"EFS file system {fs_id} is {fs['LifeCycleState']} instead of available")
        return True if fs["LifeCycleState"] == "available" else None

    poll(check, what=f"EFS file system {fs_id} to be available", timeout=p.config.wait_timeout,
         interval=p.config.poll_interval)


def _wait_mount_target(p: Ec2, target: str) -> str:
    """Until the mount target is ``available``; its IP address."""
    def check() -> str | None:
        (mt,) = p.call("describe_mount_targets", service="efs", MountTargetId=target)["MountTargets"]
        if mt["LifeCycleState"] in ("error", *_GONE):
            raise ProviderError(f"EFS mount target {target} is {mt['LifeCycleState']} instead of available")
        return str(mt["IpAddress"]) if mt["LifeCycleState"] == "available" else None

    return poll(check, what=f"EFS mount target {target} to be available", timeout=p.config.wait_timeout,
                interval=p.config.poll_interval)


def file_systems(p: Ec2, handle: str | None) -> list[dict[str, Any]]:
    """EFS file systems tagged with ``handle`` (None: any ccdsl handle), and the one created with its token (its
    tags may not be listed yet), being deleted or not."""
    out: dict[str, dict[str, Any]] = {}
    marker = None
    while True:
        answer = p.call("describe_file_systems", service="efs", **({"Marker": marker} if marker else {}))
        for fs in answer.get("FileSystems", []):
            tags = {t["Key"]: t["Value"] for t in fs.get("Tags") or []}
            if (handle is None and tags.get(TAG_CLUSTER)) or (handle is not None and tags.get(TAG_CLUSTER) == handle):
                out[fs["FileSystemId"]] = fs
        marker = answer.get("NextMarker")
        if not marker:
            break
    if handle is not None:
        for fs in p.call("describe_file_systems", service="efs",
                         CreationToken=creation_token(handle)).get("FileSystems", []):
            out.setdefault(fs["FileSystemId"], fs)
    return list(out.values())


def kept(fs: dict[str, Any]) -> bool:
    return any(t["Key"] == TAG_KEPT for t in fs.get("Tags") or [])


def _mount_targets(p: Ec2, fs_id: str) -> list[dict[str, Any]]:
    try:
        targets: list[dict[str, Any]] = p.call("describe_mount_targets", service="efs",
                                               FileSystemId=fs_id)["MountTargets"]
    except ProviderError as exc:
        if getattr(exc, "code", "") == "FileSystemNotFound":
            return []
        raise
    return [t for t in targets if t.get("LifeCycleState") != "deleted"]


def delete_efs(p: Ec2, handle: str, deadline: float) -> None:
    """Terminate's part: every mount target of the cluster's file systems deleted and gone (they hold its security
    group), then each file system deleted and gone -- except one created with ``shared_keep``."""
    for fs in file_systems(p, handle):
        fs_id = fs["FileSystemId"]
        if fs.get("LifeCycleState") == "deleted":
            continue
        for mt in _mount_targets(p, fs_id):
            if mt.get("LifeCycleState") != "deleting":
                p.retry_in_use(partial(p.call, "delete_mount_target", service="efs",
                                        MountTargetId=mt["MountTargetId"]), set(), {"MountTargetNotFound"}, deadline)
        _wait_until(p, partial(_no_mount_targets, p, fs_id), f"the mount targets of EFS file system {fs_id} to be "
                    "deleted", deadline)
        if kept(fs):
            log.warning("%s: EFS file system %s is kept ([aws] shared_keep = true): it is billed until you delete "
                        "it (aws efs delete-file-system --file-system-id %s)", handle, fs_id, fs_id)
            continue
        if fs.get("LifeCycleState") != "deleting":
            p.retry_in_use(partial(p.call, "delete_file_system", service="efs", FileSystemId=fs_id),
                            {"FileSystemInUse"}, {"FileSystemNotFound"}, deadline)
        _wait_until(p, partial(_gone, p, fs_id), f"EFS file system {fs_id} to be deleted", deadline)
    for key in ("efs_id", "efs_mount_target", "efs_address", "efs_token"):
        p.resources.pop(key, None)


def _wait_until(p: Ec2, done: Callable[[], bool], what: str, deadline: float) -> None:
    poll(lambda: True if done() else None, what=what, timeout=max(1.0, deadline - time.monotonic()),
         interval=p.config.poll_interval)


def _no_mount_targets(p: Ec2, fs_id: str) -> bool:
    return not _mount_targets(p, fs_id)


def _gone(p: Ec2, fs_id: str) -> bool:
    return not _exists(p, fs_id)


def _exists(p: Ec2, fs_id: str) -> bool:
    try:
        listed = p.call("describe_file_systems", service="efs", FileSystemId=fs_id)["FileSystems"]
    except ProviderError as exc:
        if getattr(exc, "code", "") == "FileSystemNotFound":
            return False
        raise
    return any(fs.get("LifeCycleState") != "deleted" for fs in listed)


def leftovers(p: Ec2, handle: str) -> list[str]:
    """The cluster's file systems (not a kept one) and mount targets that still exist, by id."""
    out = []
    for fs in file_systems(p, handle):
        if fs.get("LifeCycleState") == "deleted":
            continue
        out += [t["MountTargetId"] for t in _mount_targets(p, fs["FileSystemId"])]
        if not kept(fs):
            out.append(fs["FileSystemId"])
    return out


def discover(p: Ec2) -> set[str]:
    """Handles owning an EFS file system that is not kept (a deploy that crashed after creating it)."""
    return {t["Value"] for fs in file_systems(p, None) if not kept(fs) and fs.get("LifeCycleState") != "deleted"
            for t in fs.get("Tags") or [] if t["Key"] == TAG_CLUSTER}

