"""``ccdsl.toml``: how ccdsl reaches the machines a contract resolves to.

The contract says *what* to run on; this file says *how to get there*: region, machine images, the SSH user,
network settings, bring-your-own SSH hosts, MPI launcher options.  (The seed calls it ``CCconfig.EC2.toml``.)

Where it is read from, first found wins:

1. the path in the ``CCDSL_CONFIG`` environment variable (it must exist);
2. ``ccdsl.toml`` in the working directory;
3. ``ccdsl.toml`` in the user config dir (``platformdirs.user_config_dir("ccdsl")``).

No file at all is fine: every key has a default, documented next to it below (``python -m ccdsl.executor.config``
prints the reference).  A key ccdsl does not know is an error that names the key and the file, because a typo
(``secuirty_group_id``) silently ignored could open a port or leak money.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccdsl.errors import ConfigError
from ccdsl.fabric import SETTINGS as FABRIC_SETTINGS

UBUNTU_SSM = "resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/{arch}/hvm/ebs-gp3/ami-id"


def _key(default: Any, doc: str) -> Any:
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata={"doc": doc})
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class AwsConfig:
    """EC2 through boto3.  Credentials come from the usual boto3 chain (env, ~/.aws, instance role)."""

    region: str = _key("", "Region used when the resolution does not name one; empty: boto3's default region.")
    profile: str = _key("", "boto3 profile name; empty: the default credential chain.")
    endpoint_url: str = _key("", "EC2 endpoint override (tests point it at a moto server); empty: AWS itself.")
    ssm_endpoint_url: str = _key("", "SSM endpoint override (where 'resolve:ssm:' image parameters are read); empty: "
                                     "AWS itself, whatever endpoint_url says.")
    image: dict[str, str] = _key({"x86_64": UBUNTU_SSM.format(arch="amd64"), "arm64": UBUNTU_SSM.format(arch="arm64")},
                       "AMI per CPU architecture (image.x86_64, image.arm64): an AMI id or 'resolve:ssm:<parameter>'."
                       " Default: Ubuntu 24.04 (Python 3.12) from Canonical's public SSM parameters.")
    user: str = _key("ubuntu", "SSH login user of the image.")
    subnet_id: str = _key("", "Subnet to launch in (pins the zone); empty: the default VPC, zone chosen by ccdsl.")
    security_group_id: str = _key("", "Use this existing security group instead of creating one per cluster.")
    ssh_cidr: str = _key("", "CIDR allowed to reach port 22.  Empty: this machine's public address /32, found "
                             "through ip_discovery_url.  0.0.0.0/0 is used only if written here explicitly.")
    ip_discovery_url: str = _key("https://checkip.amazonaws.com",
                                 "URL answering with the caller's public IP address (used when ssh_cidr is empty).")
    key_name: str = _key("", "Existing EC2 key pair to use; empty: a fresh key pair per cluster, private key "
                             "written with mode 0600 in the data dir and deleted at terminate.")
    key_path: str = _key("", "Private key file of key_name (required when key_name is set).")
    spot: bool = _key(False, "Request spot instances (a contract's 'spot' config parameter also turns it on).")
    placement_group: str = _key("", "Placement strategy for a per-cluster placement group: 'cluster', 'spread', "
                                    "'partition'; empty: no placement group.")
    cpu_credits: str = _key("standard", "CPU credit mode of burstable types (t2, t3, t3a, t4g): 'standard' keeps the "
                                        "bill at the list price (sustained load is throttled to the baseline); "
                                        "'unlimited' runs at full speed and may add the surplus rate, which the cost "
                                        "record, cost-report and max_cost then count at its worst case.")
    efa: str = _key("auto", "Elastic Fabric Adapter between nodes: 'auto' (on for 2+ nodes of a type that has it), "
                            "'on' (every type that has it), 'off'.  A contract's 'efa => true|false' decides its "
                            "role instead.  On: every interface the type has when the nodes are private, else one; "
                            "a 'cluster' placement group for roles that are not spot, unless placement_group says "
                            "otherwise; security group rules for all traffic to and from the group itself; the EFA "
                            "installer in the user data (a download: private nodes need a NAT route); fi_info checked "
                            "at deploy; MPI under Open MPI's mpirun with FI_PROVIDER=efa.")
    private: bool = _key(False, "Nodes without public addresses (AssociatePublicIpAddress = false).  ccdsl reaches "
                                "them through jump_host, or at their private addresses (connect_address = "
                                "'private', inside a VPN).  A private node of a type with several network cards "
                                "gets every EFA interface (one with a public address can take only one).  Nodes "
                                "that download ([mpi] install) need a route 0.0.0.0/0 to a NAT gateway in their "
                                "subnet's route table, checked before anything is created (so not with "
                                "jump_host = 'auto', whose public jump host would share that subnet).")
    jump_host: str = _key("", "How ccdsl reaches private nodes over SSH (every use: set-up, run, sync, engines, "
                              "autostop): 'auto': through the manager of a ManagerWorkers cluster, or PeerWorkers' "
                              "node 0, launched alone with a public address (port 22 from ssh_cidr reaches only "
                              "it; the members reach each other through the cluster's own rule); "
                              "'user@host:port': through that bastion (set ssh_cidr to the address the nodes see "
                              "it from, e.g. its private address/32, since port 22 of the nodes admits only "
                              "ssh_cidr); empty: connect directly.  MPI and engines stay on private addresses.")
    jump_key_path: str = _key("", "Private key for a 'user@host:port' jump_host; empty: the SSH agent / ~/.ssh keys. "
                                  "Its host key is checked against [ssh] user_known_hosts first, else pinned at "
                                  "deploy like the nodes'.")
    smt: bool = _key(True, "Simultaneous multithreading (hyper-threads).  false: one thread per core (CpuOptions), as "
                           "many HPC codes run fastest; *.metal types that run two threads are refused (they take "
                           "no CPU options).  A contract's 'smt => true|false' decides its role instead, and 'smt => "
                           "false' also resolves only to types that can, counting their cores as vCPUs.")
    instance_profile: str = _key("", "IAM instance profile the nodes run with, by name or ARN ('arn:aws:iam::…:"
                                     "instance-profile/…'): programs on the nodes get its role's credentials from "
                                     "the instance metadata.  Launching with it needs iam:PassRole on the role "
                                     "(ccdsl iam-policy).  Empty: no profile.")
    scratch: str = _key("", "Folder where each node mounts its instance-store NVMe disks (striped together, RAID 0, "
                            "when there are several; formatted ext4 when blank), e.g. '/scratch': fast local space "
                            "for temporary files, open to every user like /tmp.  Made at every boot, since a stop "
                            "(interrupt, autostop, a spot interruption) empties instance storage: its contents are "
                            "lost.  Empty: off.")
    shared: str = _key("nfs", "A folder every node sees, where the project's folder lives (so 'sync' writes it once, "
                              "to node 0 or the manager): 'nfs': node 0 (ManagerWorkers: the manager) exports "
                              "shared_dir over NFS to the cluster's members only, the others mount it (free; it is "
                              "on node 0's root volume and goes with the cluster); 'efs': an encrypted Amazon EFS "
                              "file system, created per cluster and mounted by every node (billed per GB-month, "
                              "deleted at terminate unless shared_keep); 'none': no shared folder, every node gets "
                              "its own copy.")
    shared_dir: str = _key("/shared", "Where the shared folder is mounted on every node (an absolute folder); the "
                                      "project's folder is <shared_dir>/<handle>/work.")
    shared_keep: bool = _key(False, "With shared = 'efs': keep the file system (and what the cluster wrote there) "
                                    "when the cluster is terminated; it is tagged ccdsl:kept and is yours to delete "
                                    "(aws efs delete-file-system).")
    zones: list[str] = _key([], "Availability zones to try, in order; empty: every available zone of the region.")
    volume_size: int = _key(0, "Root volume size in GiB (at least the image's own size); 0: the image's size.  "
                               "Always encrypted.")
    volume_type: str = _key("gp3", "Root volume type.")
    connect_address: str = _key("public", "Which address ccdsl connects to: 'public' or 'private' (inside a VPN).")
    address_map: dict[str, str] = _key({}, "TEST HOOK: connect to these hosts instead of the addresses EC2 reports.  "
                                           "Keys '<role>.<launch index>' (or '<launch index>' for workers), values "
                                           "'host', 'host:port' or 'host:port,private-host'.  The private address of "
                                           "a mapped node is the host after the comma, else the same host.")
    tags: dict[str, str] = _key({}, "Extra tags put on every resource (ccdsl's own ccdsl:* tags are always added).")
    boot_wait: str = _key("if command -v cloud-init >/dev/null 2>&1 && [ -d /run/cloud-init ]; then "
                          "cloud-init status --wait >/dev/null; fi",
                          "Shell command run on each new node before ccdsl probes it: by default it waits until "
                          "cloud-init has finished (the user data that installs python3-venv for [mpi] install); "
                          "a machine where cloud-init did not run this boot is not waited for. Empty: probe at once.")
    poll_interval: float = _key(5.0, "Seconds between DescribeInstances polls while waiting for a state.")
    wait_timeout: float = _key(900.0, "Seconds to wait for instances to reach a state before giving up.")
    max_attempts: int = _key(10, "botocore attempts per call (adaptive retry mode handles throttling).")


@dataclass(frozen=True)
class SshConfig:
    """SSH transport, and bring-your-own hosts for the ``ssh`` provider."""

    hosts: list[Any] = _key([], "Hosts of the ssh provider: strings 'user@host:port' or tables {address, user, port, "
                           "key_path, ...}.")
    user: str = _key("", "Default SSH user for ssh-provider hosts; empty: the local user name.")
    port: int = _key(22, "Default SSH port for ssh-provider hosts.")
    key_path: str = _key("", "Default private key for ssh-provider hosts; empty: the SSH agent / ~/.ssh keys.")
    connect_timeout: float = _key(10.0, "Seconds for one TCP+SSH connection attempt.")
    command_timeout: float = _key(120.0, "Seconds for one set-up command on a node.")
    keepalive: float = _key(5.0, "Seconds between SSH keepalives (a dead node is noticed within a few of these).")
    ready_timeout: float = _key(600.0, "Seconds deploy/resume wait for every node to become reachable and ready.")
    host_key_policy: str = _key("accept-new", "'accept-new': pin each node's host key when the cluster is deployed "
                                              "(kept per cluster in the data dir; the ssh provider's hosts once for "
                                              "all clusters), refuse a changed key later; 'strict': only keys "
                                              "recorded beforehand (user_known_hosts or an earlier cluster).")
    user_known_hosts: str = _key("~/.ssh/known_hosts", "OpenSSH known_hosts consulted first for the ssh provider's "
                                                      "hosts: a host listed there must present that key; empty: "
                                                      "not consulted.")


@dataclass(frozen=True)
class LocalConfig:
    """Ranks on this machine, no SSH (try a program before paying)."""

    max_nodes: int = _key(64, "Largest node count the local provider accepts (each node is one or more ranks).")


@dataclass(frozen=True)
class MpiConfig:
    """How programs are launched (mpiexec of MPICH/Hydra, mpi4py, cloudpickle on every node)."""

    processes_per_node: int = _key(1, "MPI ranks per node (one worker id per rank); 1 to max_processes_per_node.")
    max_processes_per_node: int = _key(256, "Largest processes_per_node (or contract node_process_count) accepted; "
                                            "raise it here to run more ranks per node on purpose.")
    python: str = _key("python3", "Python interpreter on the nodes (must import mpi4py and cloudpickle).  The "
                                  "local provider always uses the interpreter running ccdsl.")
    mpiexec: str = _key("", "mpiexec on the nodes; empty: next to python, else on PATH (with EFA: "
                            "/opt/amazon/openmpi/bin/mpirun).")
    iface: str = _key("", "Network interface MPI uses between nodes (e.g. 'eth0'); empty: MPICH's choice.")
    remote_dir: str = _key(".ccdsl", "Directory on the nodes (relative to the login dir) for per-cluster files.")
    authorized_keys: str = _key(".ssh/authorized_keys", "Where the cluster-internal public key is installed.")
    install: bool = _key(False, "pip-install the packages below into a venv on nodes that lack them.")
    packages: list[str] = _key(["mpich", "mpi4py", "cloudpickle"], "What 'install' installs.")
    extra_args: list[str] = _key([], "Extra arguments passed to mpiexec.")
    timeout: float = _key(0.0, "Seconds one run may take; 0: no limit.")


@dataclass(frozen=True)
class SecurityConfig:
    """What a contract may change.  A contract may narrow security, never widen it: the keys that decide who reaches
    the nodes or what runs on this machine are refused in a contract unless listed here."""

    contract_may_set: list[str] = _key([], "Contract parameters accepted although they can widen access: any of "
                                      "security_group_id, subnet_id, key_name, image_id, hosts, mpi_flags, python, "
                                      "ssh_cidr (a contract's ssh_cidr must otherwise lie inside [aws] ssh_cidr).")
    trust_nodes: bool = _key(False, "Accept any object as a run's result (cloudpickle).  false: only None, bool, "
                                    "int, float, complex, str, bytes, list, tuple, dict, set, frozenset, and numpy "
                                    "arrays and scalars of bool or numeric dtype come back (sent as tagged data, not "
                                    "a pickle), so a node cannot run code on this machine through them.")


@dataclass(frozen=True)
class AutostopConfig:
    """The autostop watchdog on node 0 / the manager (``deploy --autostop``, ``--max-cost``)."""

    shutdown_command: str = _key("sudo shutdown -h now", "What the watchdog runs on every EC2 node to stop (or, with "
                                 "--down, terminate) it: the instances' shutdown behaviour, set at launch, decides "
                                 "which.  Never run on ssh hosts, which are not ours to shut down.")
    check_interval: float = _key(60.0, "Seconds between the watchdog's activity checks.")
    boot_dir: str = _key("/var/lib/cloud/scripts/per-boot", "Where arming writes (with sudo) the script that "
                         "cloud-init runs at every boot of an EC2 node to start the watchdog again: EC2 restarts "
                         "an interrupted spot node by itself.  Disarming deletes it.")


SECTIONS: dict[str, type] = {"aws": AwsConfig, "ssh": SshConfig, "local": LocalConfig, "mpi": MpiConfig,
                             "security": SecurityConfig, "autostop": AutostopConfig}


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``source`` is the file it came from (None: defaults only)."""

    aws: AwsConfig = field(default_factory=AwsConfig)
    ssh: SshConfig = field(default_factory=SshConfig)
    local: LocalConfig = field(default_factory=LocalConfig)
    mpi: MpiConfig = field(default_factory=MpiConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    autostop: AutostopConfig = field(default_factory=AutostopConfig)
    source: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str | None = None) -> Config:
        """Validate a parsed TOML document: unknown sections/keys and wrong types are ConfigErrors."""
        where = source or "<config>"
        sections: dict[str, Any] = {}
        for name, table in data.items():
            if name not in SECTIONS:
                raise _unknown(f"section [{name}]", name, list(SECTIONS), where)
            if not isinstance(table, Mapping):
                raise ConfigError(f"{where}: [{name}] must be a table")
            sections[name] = _section(SECTIONS[name], name, table, where)
        return cls(**sections, source=source)

    def replace(self, _where: str = "<replace>", **sections: Mapping[str, Any]) -> Config:
        """A copy with some keys changed, e.g. ``cfg.replace(aws={"endpoint_url": url})`` (validated too).
        ``_where`` names the source of the changes in errors (a contract, say)."""
        changed = {}
        for name, values in sections.items():
            if name not in SECTIONS:
                raise _unknown(f"section [{name}]", name, list(SECTIONS), _where)
            current = dataclasses.asdict(getattr(self, name))
            _section(SECTIONS[name], name, values, _where, check_limits=False)  # the new keys alone: types
            changed[name] = _section(SECTIONS[name], name, {**current, **values}, _where)
        return dataclasses.replace(self, **changed)


# Numeric keys and their ranges (low, high), high None: unbounded; a bound naming another key of the section is
# that key's value.  Floats must also be finite.
LIMITS: dict[tuple[str, str], tuple[float, Any]] = {
    ("aws", "poll_interval"): (0.01, None), ("aws", "wait_timeout"): (1.0, None), ("aws", "max_attempts"): (1, 100),
    ("aws", "volume_size"): (0, 65536),
    ("ssh", "port"): (1, 65535), ("ssh", "connect_timeout"): (0.1, None), ("ssh", "command_timeout"): (0.1, None),
    ("ssh", "keepalive"): (0, None), ("ssh", "ready_timeout"): (0.1, None),
    ("local", "max_nodes"): (1, None),
    ("mpi", "processes_per_node"): (1, "max_processes_per_node"), ("mpi", "max_processes_per_node"): (1, None),
    ("mpi", "timeout"): (0, None),
    ("autostop", "check_interval"): (1.0, 86400.0),  # a watchdog that never sleeps, or never wakes, guards nothing
}


def _check_limits(name: str, values: Mapping[str, Any], where: str) -> None:
    import math

    for (section, key), (low, high) in LIMITS.items():
        if section != name or key not in values:
            continue
        value = values[key]
        bound = values.get(high, getattr(SECTIONS[name](), high)) if isinstance(high, str) else high
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where}: [{name}] {key} must be a finite number, not {value!r}")
        if value < low or (bound is not None and value > bound):
            span = f"at least {low:g}" if bound is None else f"{low:g} to {bound:g}"
            hint = (f"raise [{name}] {high} in ccdsl.toml to allow more, on purpose" if isinstance(high, str)
                    and value > bound else None)
            raise ConfigError(f"{where}: [{name}] {key} must be {span}, not {value!r}", hint=hint)


def _section(cls: type, name: str, table: Mapping[str, Any], where: str, *, check_limits: bool = True) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in table.items():
        f = known.get(key)
        if f is None:
            raise _unknown(f"key '{key}' in [{name}]", key, list(known), where)
        values[key] = _check_type(f, value, f"{where}: [{name}] {key}")
    if check_limits:
        _check_limits(name, values, where)
    if name == "ssh" and values.get("host_key_policy", "accept-new") not in ("accept-new", "strict"):
        raise ConfigError(f"{where}: [ssh] host_key_policy must be 'accept-new' or 'strict', not "
                          f"{values['host_key_policy']!r}")
    if name == "aws" and values.get("cpu_credits", "standard") not in ("standard", "unlimited"):
        raise ConfigError(f"{where}: [aws] cpu_credits must be 'standard' or 'unlimited', not "
                          f"{values['cpu_credits']!r}")
    if name == "aws" and values.get("efa", "auto") not in FABRIC_SETTINGS:
        raise ConfigError(f"{where}: [aws] efa must be one of {', '.join(map(repr, FABRIC_SETTINGS))}, not "
                          f"{values['efa']!r}")
    if name == "aws" and values.get("instance_profile"):
        why = instance_profile_problem(values["instance_profile"])
        if why:
            raise ConfigError(f"{where}: [aws] instance_profile = {values['instance_profile']!r} {why}",
                              hint="write the instance profile's name (as in 'aws iam list-instance-profiles') or "
                                   "its ARN, arn:aws:iam::<account>:instance-profile/<name>")
    if name == "aws" and values.get("scratch"):
        why = scratch_problem(values["scratch"])
        if why:
            raise ConfigError(f"{where}: [aws] scratch = {values['scratch']!r} {why}",
                              hint="an absolute folder of letters, digits and ._-/, e.g. '/scratch'; empty for none")
    if name == "aws" and values.get("shared", "nfs") not in SHARED_MODES:
        raise ConfigError(f"{where}: [aws] shared must be one of {', '.join(map(repr, SHARED_MODES))}, not "
                          f"{values['shared']!r}", hint="'nfs' (default): node 0 or the manager shares a folder; "
                                                         "'efs': an Amazon EFS file system; 'none': copies")
    if name == "aws" and "shared_dir" in values:
        why = scratch_problem(values["shared_dir"])
        if why or values["shared_dir"] == values.get("scratch"):
            raise ConfigError(f"{where}: [aws] shared_dir = {values['shared_dir']!r} "
                              f"{why or 'is the scratch folder too'}",
                              hint="an absolute folder of letters, digits and ._-/, e.g. '/shared'")
    if name == "aws" and values.get("jump_host"):
        try:
            jump_target(values["jump_host"])
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
        if values["jump_host"] == "auto" and not values.get("private", False):
            raise ConfigError(f"{where}: [aws] jump_host = 'auto' reaches private nodes through one public node, "
                              "but [aws] private is false (every node has a public address)",
                              hint="set [aws] private = true, or leave jump_host empty")
    if name == "mpi" and "remote_dir" in values:
        try:
            check_node_dir(values["remote_dir"])
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None
    if name == "aws" and "image" in values:
        bad = set(values["image"]) - {"x86_64", "arm64"}
        if bad:
            raise ConfigError(f"{where}: unknown key 'image.{sorted(bad)[0]}' in [aws]",
                              hint="image keys are x86_64 and arm64")
        values["image"] = {**AwsConfig().image, **values["image"]}
    if name == "aws" and values.get("ssh_cidr"):
        from ccdsl.security import network

        problem = network(values["ssh_cidr"])[1]
        if problem:
            raise ConfigError(f"{where}: [aws] ssh_cidr = {values['ssh_cidr']!r} {problem}")
    if name == "security":
        from ccdsl.security import GUARDED

        for key in values.get("contract_may_set", []):
            if key not in GUARDED:
                raise _unknown(f"contract_may_set entry {key!r} in [security]", str(key), sorted(GUARDED), where)
    return cls(**values)


# IAM's instance profile names (API CreateInstanceProfile: 1-128 of [\w+=,.@-]) and ARNs (a path may precede
# the name): checked when the file is read, so a typo fails before anything is launched.
_PROFILE_NAME = re.compile(r"[\w+=,.@-]{1,128}", re.ASCII)
_PROFILE_ARN = re.compile(r"arn:aws[\w-]*:iam::\d{12}:instance-profile/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,128}", re.ASCII)


def instance_profile_problem(value: str) -> str:
    """Why ``value`` is neither an instance profile name nor its ARN ('' when it is one)."""
    if value.startswith("arn:"):
        return "" if _PROFILE_ARN.fullmatch(value) else "is not an instance profile ARN"
    return "" if _PROFILE_NAME.fullmatch(value) else "is not an instance profile name (1-128 of letters, digits " \
        "and +=,.@_-)"


# [aws] shared: what the nodes share (ccdsl.executor.providers.shared_fs builds it)
SHARED_MODES = ("nfs", "efs", "none")
_SCRATCH = re.compile(r"(/[A-Za-z0-9._-]+)+", re.ASCII)
# Folders the system needs as they are: a file system mounted over one would hide them.
_SYSTEM_DIRS = frozenset({"bin", "boot", "dev", "etc", "home", "lib", "lib32", "lib64", "proc", "root", "run", "sbin",
                          "snap", "sys", "tmp", "usr", "var"})


def scratch_problem(path: str) -> str:
    """Why ``path`` cannot be ``[aws] scratch`` ('' when it can): it goes into the nodes' boot script and has a
    file system mounted over it."""
    if not _SCRATCH.fullmatch(path) or any(part in (".", "..") for part in path.split("/")):
        return "is not an absolute folder of letters, digits and ._-"
    if path.split("/")[1] in _SYSTEM_DIRS and path.count("/") == 1:
        return "is a folder the system needs: mounting over it would hide what it holds"
    return ""
def jump_target(text: str) -> tuple[str, str, int] | None:
    """``[aws] jump_host`` read: None for ``"auto"``, else the bastion's (user, host, port) from
    ``user@host[:port]`` (port 22 by default; an IPv6 host in brackets)."""
    if text == "auto":
        return None
    user, at, rest = text.rpartition("@")
    host, port = rest, "22"
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        port = tail[1:] if tail.startswith(":") else ("22" if not tail else "x")
    elif rest.count(":") == 1:
        host, port = rest.split(":")
    if not at or not user or not host or not port.isdigit() or not 0 < int(port) < 65536 or any(
            c.isspace() for c in text):
        raise ConfigError(f"[aws] jump_host = {text!r} is neither 'auto' nor 'user@host:port'",
                          hint='e.g. jump_host = "ubuntu@bastion.example.org:22", or "auto" (the manager or node 0)')
    return user, host, int(port)


_NODE_DIR_PUNCTUATION = frozenset("._/~+@=,:%-")


def check_node_dir(path: str) -> None:
    """Refuse a node directory holding characters a shell on the nodes would interpret.  ccdsl quotes the
    directory in every command it builds, but MPICH's Hydra passes its ``-launcher-exec`` path (which lies in
    this directory) to a remote shell unquoted, so ``$(…)``, quotes, spaces and the like cannot be made safe."""
    if not path:
        raise ConfigError("[mpi] remote_dir is empty", hint="the default is .ccdsl (in the login directory)")
    bad = next((c for c in path if not (c.isalnum() or c in _NODE_DIR_PUNCTUATION)), None)
    if bad is not None:
        raise ConfigError(f"[mpi] remote_dir {path!r} contains {bad!r}, which MPI's launcher would pass to a shell "
                          "on the nodes", hint="use letters, digits and . _ / ~ + @ = , : % - only")


def _default(f: dataclasses.Field[Any]) -> Any:
    """A key's default (a fresh copy for lists and tables, see :func:`_key`)."""
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def _check_type(f: dataclasses.Field[Any], value: Any, what: str) -> Any:
    expected = type(_default(f))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (expected is int and isinstance(value, bool)) or not isinstance(value, expected):
        raise ConfigError(f"{what} must be {_TYPE_NAMES[expected]}, not {value!r}")
    return value


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean", list: "a list",
               dict: "a table"}


def _unknown(what: str, key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'?" if close else "known: " + ", ".join(sorted(known))
    return ConfigError(f"{where}: unknown {what}", hint=hint)


def config_path() -> Path | None:
    """The file :func:`load` reads, or None when there is none."""
    env = os.environ.get("CCDSL_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"CCDSL_CONFIG names {env}, which is not a file")
        return path
    here = Path.cwd() / "ccdsl.toml"
    if here.is_file():
        return here
    import platformdirs

    user = Path(platformdirs.user_config_dir("ccdsl")) / "ccdsl.toml"
    return user if user.is_file() else None


def load(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the configuration (``path`` or the search order above)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib

    file = Path(path) if path is not None else config_path()
    if file is None:
        return Config()
    try:
        raw = file.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {file}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{file}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x})",
                          hint="save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return Config.from_dict(data, str(file))


def reference() -> str:
    """The ``ccdsl.toml`` reference: every section and key with its default and meaning (used in the README)."""
    out = []
    for name, cls in SECTIONS.items():
        out.append(f"[{name}]  # {(cls.__doc__ or name).splitlines()[0]}")
        for f in dataclasses.fields(cls):
            out.append(f"{f.name} = {_toml(_default(f))}  # {f.metadata['doc']}")
        out.append("")
    return "\n".join(out)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, dict):
        return "{ " + ", ".join(f'{k} = {_toml(x)}' for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return repr(v)


if __name__ == "__main__":
    print(reference())
