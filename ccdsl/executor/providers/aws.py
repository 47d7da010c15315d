"""EC2 through boto3: the ``aws`` provider.

Everything a cluster creates is tagged ``ccdsl:cluster=<handle>`` (plus role and contract), so the cloud itself
answers "what does this cluster own?" -- that is how a cluster of a crashed session is found (``discover``) and
how ``terminate`` proves that nothing remains.  Per cluster: a security group (SSH from one CIDR, all traffic
between members), a fresh key pair (private key 0600 in the data dir), optionally a placement group, and ONE
``RunInstances`` per role (MinCount = MaxCount = node count, idempotency ``ClientToken`` derived from the handle),
IMDSv2 required, encrypted root volume.

boto3 is imported lazily.  ``EVENT_HOOKS`` is a documented test and benchmark hook: ``(event, handler)`` pairs
registered on every EC2 client this module creates (fault injection with ``before-send.ec2.RunInstances``,
API-call counting with ``before-call``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ccdsl.burstable import NO_CREDITS, credits
from ccdsl.errors import CapacityError, CcdslError, ClusterError, ConfigError, MissingDependencyError, ProviderError
from ccdsl.executor import model
from ccdsl.executor.config import AwsConfig, Config
from ccdsl.executor.model import Node, NodeRequest, Progress
from ccdsl.executor.providers import efa_boot, shared_fs
from ccdsl.executor.providers.base import TAG_CLUSTER, TAG_CONTRACT, TAG_ROLE, poll, split_host_port

if TYPE_CHECKING:
    import datetime

    from ccdsl.fabric import Fabric

T = TypeVar("T")

EVENT_HOOKS: list[tuple[str, Callable[..., Any]]] = []
# On the nodes of a role launched in two RunInstances (PeerWorkers behind its own node 0: node 0 alone with a public
# address, then the others): the index of the second launch's first node.  Launch indices restart at 0 per call.
TAG_FIRST_INDEX = "ccdsl:first-index"
log = logging.getLogger("ccdsl.executor")

# Error codes meaning "this type cannot be had here right now": fail over to another zone or type.
# DescribeInstanceTypes answers InvalidInstanceType (not an empty list) for a type the region does not offer.
# Spot adds its own: SpotMaxPriceTooLow (the zone's spot price is above the maximum price) and
# UnfulfillableCapacity ("not enough spare capacity to fulfill your request for Spot Instances"); a spot request
# that is not fulfilled reports capacity-not-available, capacity-oversubscribed or price-too-low as its status.
CAPACITY_CODES = frozenset({"InsufficientInstanceCapacity", "InsufficientCapacity", "InsufficientHostCapacity",
                            "Unsupported", "InsufficientCapacityOnHost", "SpotMaxPriceTooLow",
                            "UnfulfillableCapacity", "capacity-not-available", "capacity-oversubscribed",
                            "price-too-low", "InsufficientFreeAddressesInSubnet", "InvalidInstanceType"})
# Account limits: no zone of the region helps, a smaller alternative or another region may.  The deployer
# skips the region's other zones and fails over to the next alternative, saying why.
QUOTA_CODES = {
    "VcpuLimitExceeded": "the account's vCPU quota for this instance family in the region is used up; ask for more "
                         "in Service Quotas (EC2 'Running On-Demand ... instances' or 'All ... Spot Instance "
                         "Requests'), or choose fewer or smaller nodes",
    "InstanceLimitExceeded": "the account's instance limit in the region is reached; ask for more in Service Quotas",
    "MaxSpotInstanceCountExceeded": "the account's spot instance quota in the region is used up; ask for more in "
                                    "Service Quotas, or deploy without spot",
    "OptInRequired": "the account is not subscribed to this region or service; opt in (AWS console, Account "
                     "settings), or choose another region (cluster_locale)",
}
# Codes that name the account or its policies rather than a type (API "Error codes for the Amazon EC2 API").  A
# new account's region is verified for a while (PendingVerification) and another region may work; a blocked
# account works nowhere; an explicit deny in a service control policy (an Organizations guard-rail, commonly "only
# these regions") may allow another region, a missing IAM permission does not.
ACCOUNT_HINTS = {
    "PendingVerification": "AWS is still verifying the account for this region (new accounts, usually minutes, up "
                           "to 4 hours); try again later or choose another region (cluster_locale)",
    "Blocked": "the account is blocked; contact AWS Support (billing or verification) before ccdsl can launch",
    "UnauthorizedOperation": "the credentials lack an IAM permission ccdsl needs (README, 'IAM permissions "
                             "needed'); decode the message with 'aws sts decode-authorization-message'",
    "AuthFailure": "check the credentials (aws sts get-caller-identity) and, for a region that must be enabled "
                   "first, its opt-in (AWS console, Account settings)",
}
_SCP_HINT = ("a service control policy of the account's organization denies this in the region; choose a region it "
             "allows (cluster_locale), or ask the organization's administrator")
OPT_IN_HINT = QUOTA_CODES["OptInRequired"]
# Capacity and quota answers are final for this call: botocore would retry them (InsufficientInstanceCapacity is an
# HTTP 500) up to max_attempts with backoff -- half a minute per zone before failover.  Throttling still retries.
_NO_RETRY_OPERATIONS = ("RunInstances", "StartInstances")
# A (rack) spread placement group holds at most seven running instances per zone (UG "Placement groups").
SPREAD_PER_ZONE = 7
# EC2 refuses more than 200 values in one filter (FilterLimitExceeded); id lists are sent in chunks of this size too.
CHUNK = 200
# How often terminate looks for the instances of a launch whose answer was lost before it concludes there are none
# (with backoff from [aws] poll_interval: the default 5 s gives about a minute; EC2 lists within seconds).
LOST_LOOKS = 8
# Right after a resource is created, EC2 may not know it yet for a while (eventual consistency): these codes then
# mean "not visible yet", and the call is retried with backoff.
NOT_VISIBLE_CODES = frozenset({"InvalidInstanceID.NotFound", "InvalidGroup.NotFound", "InvalidKeyPair.NotFound"})
SERVICE_NAMES = {"ec2": "EC2", "ssm": "SSM (Systems Manager)", "pricing": "AWS Price List", "efs": "EFS"}

SHUTTING_DOWN = "shutting-down"  # terminating, not yet terminated: its volumes and security group are still in use
_STATES = {"pending": model.PENDING, "running": model.RUNNING, "stopping": model.STOPPING, "stopped": model.STOPPED,
           "shutting-down": SHUTTING_DOWN, "terminated": model.TERMINATED}
_LIVE_EC2_STATES = ["pending", "running", "stopping", "stopped"]
_LIVE_SPOT_STATES = ["open", "active", "disabled"]  # a request in these states can still launch an instance
SPOT_VALIDITY = 365 * 86400.0  # seconds a persistent spot request lives (ValidUntil); EC2's default is 7 days
# Instance types that earn CPU credits: a cluster placement group cannot hold them.
_BURSTABLE_HINT = "use a type that is not burstable (not t2/t3/t3a/t4g), or another placement_group strategy"


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


_MUTATING = ("create_", "run_", "authorize_", "start_", "stop_", "import_", "allocate_", "request_")


def make(config: Config, settings: Mapping[str, Any]) -> AwsProvider:
    return AwsProvider(config.aws, settings, install=config.mpi.install)


def client_token(handle: str, params: Mapping[str, Any], launch_round: int = 0) -> str:
    """RunInstances' idempotency token: derived from the handle, EVERY launch parameter and the launch round, so a
    retried call (botocore retries, a re-issue after a lost answer) cannot launch twice.  AWS refuses a token
    reused with other parameters (IdempotentParameterMismatch) -- a new security group after failover, another
    type or zone -- and answers a reused token with the original, possibly terminated, instances: so every launch
    after a clean-up is a new round."""
    import hashlib
    import json

    what = json.dumps({k: v for k, v in params.items() if k != "ClientToken"}, sort_keys=True, default=str)
    digest = hashlib.sha256(f"{launch_round}|{what}".encode()).hexdigest()[:16]
    return f"ccdsl-{handle}-{digest}"


def tags_for(handle: str, role: str | None, contract: str | None) -> list[dict[str, str]]:
    tags = [{"Key": TAG_CLUSTER, "Value": handle}, {"Key": "Name", "Value": f"ccdsl-{handle}" + (f"-{role}" if role
                                                                                               else "")}]
    if role:
        tags.append({"Key": TAG_ROLE, "Value": role})
    if contract:
        tags.append({"Key": TAG_CONTRACT, "Value": contract})
    return tags


class AwsProvider:
    """One region (and endpoint) of EC2.  ``settings`` come from a cluster record and take precedence over the
    configuration, so a later process reaches exactly the resources the deploy created."""

    name = "aws"
    authoritative = True  # EC2 is the source of truth: reconcile records with ``describe``/``discover``

    def __init__(self, config: AwsConfig, settings: Mapping[str, Any] | None = None, *, install: bool = False) -> None:
        settings = dict(settings or {})
        if "user" in settings and "shared" not in settings:  # a record older than [aws] shared: nodes share nothing
            settings["shared"] = "none"
        self.install = install  # [mpi] install: new nodes get user data that installs what the venv needs
        known = {f.name for f in dataclasses.fields(AwsConfig)}
        self.config = dataclasses.replace(config, **{k: v for k, v in settings.items() if k in known})
        self.region = settings.get("resolved_region") or self.config.region or None
        self.resources: dict[str, Any] = {k: settings[k] for k in ("security_group_id_created", "key_name_created",
                                                                    "key_path_created", "placement_group_created",
                                                                    "vpc_id", "spot_valid_until", "efa_rules",
                                                                    "launches", "jump_group_created",
                                                                    "efa_interfaces", "efs_token", "efs_id",
                                                                    "efs_mount_target", "efs_address")
                          if k in settings}
        self._ec2 = None
        self._launch_round = 0  # bumped by every clean-up: a later launch must not reuse an earlier token
        # Called (by the deployer) whenever ``resources`` changed in a way that must be on record before the next
        # call goes out: the launch journal below.
        self.on_record: Callable[[], None] | None = None
        self._fresh: set[str] = set()  # ids launched by this process: "not listed" means "not visible yet"
        self._not_opted_in: set[str | None] = set()  # regions that answered AuthFailure and are not enabled
        self._types: dict[tuple[str | None, str], dict[str, Any]] = {}  # (region, type) -> DescribeInstanceTypes
        self._images: dict[tuple[str | None, str], tuple[str, str, int]] = {}  # (region, arch) -> image
        self._checked_regions: set[str | None] = set()  # regions whose region-bound settings exist
        self._default_subnets: dict[tuple[str | None, str], str] = {}  # (region, zone) -> default subnet
        # Whether a call that can create something was sent (its answer may have been lost): until then a failed
        # deploy left nothing in the cloud, and its record can go.
        self.reached_cloud = False
        self._roles: set[str] = set()  # the roles of the plan being launched (check_plan, create)
        self._nat_checked: set[str] = set()  # subnets whose route to a NAT gateway was found

    # -- boto3 plumbing --------------------------------------------------------------------------------------
    def client(self, service: str = "ec2", region: str | None = None) -> Any:
        """The boto3 client of ``service`` in this provider's region (``region``: another one, not cached)."""
        if service == "ec2" and region is None and self._ec2 is not None:
            return self._ec2
        try:
            import boto3
            import botocore.config
        except ModuleNotFoundError:
            raise MissingDependencyError("boto3", "aws") from None
        session = boto3.session.Session(profile_name=self.config.profile or None, region_name=region or self.region)
        if session.region_name is None:
            raise ConfigError("no AWS region: set [aws] region in ccdsl.toml, or AWS_DEFAULT_REGION")
        if region is None:
            self.region = session.region_name
        from ccdsl.version import __version__

        # ccdsl/<version> in the User-Agent: CloudTrail shows which calls were ccdsl's (and the tests check every
        # one against the IAM policy ccdsl documents, aws_policy.json beside this module)
        cfg = botocore.config.Config(retries={"mode": "adaptive", "max_attempts": self.config.max_attempts},
                                     user_agent_extra=f"ccdsl/{__version__}",
                                     connect_timeout=10, read_timeout=60)
        # SSM's public parameters live at AWS's own endpoint: an EC2 endpoint override (a test cloud, a VPC
        # endpoint) does not move them -- [aws] ssm_endpoint_url does.
        endpoint = self.config.ssm_endpoint_url if service == "ssm" else self.config.endpoint_url
        client = session.client(service, endpoint_url=endpoint or None, config=cfg)
        if service == "ec2":
            for operation in _NO_RETRY_OPERATIONS:  # more specific than botocore's own handler: asked first
                client.meta.events.register(f"needs-retry.ec2.{operation}", _no_retry_when_final)
            client.meta.events.register("before-send.ec2.RunInstances", self._sending)  # before any test hook
        for event, handler in EVENT_HOOKS:
            client.meta.events.register(event, handler)
        if service == "ec2" and region is None:
            self._ec2 = client
        return client

    def call(self, operation: str, service: str = "ec2", **params: Any) -> dict[str, Any]:
        """One API call; botocore errors become ccdsl errors (capacity errors as CapacityError)."""
        import botocore.exceptions

        try:
            client = self.client(service)
            if operation.startswith(_MUTATING):
                self.reached_cloud = True
            answer: dict[str, Any] = getattr(client, operation)(**params)  # boto3 is untyped: JSON-shaped Any
            return answer
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", str(exc))
            raise self._error(service, operation, code, message) from None
        except botocore.exceptions.NoCredentialsError:
            raise ProviderError("no AWS credentials found",
                                hint="configure them as for the aws CLI (aws configure, AWS_PROFILE, or env vars)"
                                ) from None
        except botocore.exceptions.BotoCoreError as exc:
            raise ProviderError(f"{SERVICE_NAMES.get(service, service)} {operation} failed: {exc}") from None

    def _error(self, service: str, operation: str, code: str, message: str) -> ProviderError:
        """The ccdsl error for an API error; ``scope`` says what a failover skips: "zone" (try the next zone) or
        "region" (the next plan).  An AuthFailure in a region the account has not opted in to (13 regions need
        that) is such a region-scope CapacityError, found through DescribeRegions from the configured region;
        everywhere else it means bad credentials."""
        what = f"{SERVICE_NAMES.get(service, service)} {operation} failed: {code}: {message}"
        scope = "zone"
        if code in CAPACITY_CODES:
            err: type[ProviderError] = CapacityError
            hint = None
        elif code in QUOTA_CODES or code == "PendingVerification":
            err, hint, scope = CapacityError, QUOTA_CODES.get(code) or ACCOUNT_HINTS[code], "region"
        elif code == "UnauthorizedOperation" and "service control polic" in message.lower():
            err, hint, scope = CapacityError, _SCP_HINT, "region"
        elif code == "AuthFailure" and service == "ec2" and self._opt_in_status() == "not-opted-in":
            err, hint, scope = CapacityError, OPT_IN_HINT, "region"
            what = f"region {self.region} is not enabled for this account ({what})"
            self._not_opted_in.add(self.region)
        else:
            err, hint = ProviderError, ACCOUNT_HINTS.get(code)
        e = err(what, hint=hint)
        e.code = code  # type: ignore[attr-defined]
        e.scope = scope  # type: ignore[attr-defined]
        return e

    def _opt_in_status(self) -> str:
        """This region's ``OptInStatus`` as DescribeRegions answers it in the configured region (``[aws] region``,
        else boto3's default) -- '' when unknown: no other region to ask, or that call fails too (then the
        credentials are what is wrong)."""
        import boto3
        import botocore.exceptions

        home = self.config.region or boto3.session.Session(profile_name=self.config.profile or None).region_name
        if not home or home == self.region:
            return ""
        try:
            regions = self.client("ec2", region=home).describe_regions(AllRegions=True, RegionNames=[self.region])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
            return ""
        return next((str(r.get("OptInStatus", "")) for r in regions.get("Regions", [])), "")

    def settings(self) -> dict[str, Any]:
        """What a cluster record must keep to reach this provider's resources from another process."""
        return {**dataclasses.asdict(self.config), "resolved_region": self.region, **self.resources}

    # -- Provider protocol -----------------------------------------------------------------------------------
    def zones(self, request: NodeRequest) -> list[str | None]:
        """Zones to try for ``request`` in order (None: let the subnet decide)."""
        self._set_region(request)
        if self.config.subnet_id:
            return [None]
        if self.resources.get("placement_zone"):  # a cluster placement group lives in one zone: every role there
            return [self.resources["placement_zone"]]
        if self.config.zones:
            return list(self.config.zones)
        # A zone is usable if the default VPC has a subnet there (older accounts have none in newer zones, and
        # RunInstances would fail) and the type is offered there.
        subnets = self._paginate("describe_subnets", "Subnets", Filters=[
            {"Name": "default-for-az", "Values": ["true"]}, {"Name": "state", "Values": ["available"]}])
        with_subnet = {s["AvailabilityZone"] for s in subnets}
        self._default_subnets.update({(self.region, s["AvailabilityZone"]): s["SubnetId"] for s in subnets})
        if not with_subnet:
            self._vpc_id()  # no default VPC at all is a setting to make ([aws] subnet_id), not "no capacity"
        offered = {o["Location"] for o in self._paginate(
            "describe_instance_type_offerings", "InstanceTypeOfferings", LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": [request.instance_type]}])}
        zones = sorted(with_subnet & offered)
        if not zones:
            raise CapacityError(f"{request.instance_type} is not offered in any zone of {self.region} that has a "
                                f"default subnet (default subnets: {', '.join(sorted(with_subnet)) or 'none'}; "
                                f"offered in: {', '.join(sorted(offered)) or 'none'})")
        return zones

    def prepare(self, handle: str, contract: str | None, region: str | None = None, *, efa: bool = False,
                placement: str | None = None) -> None:
        """Create the per-cluster resources shared by every role: security group, key pair, placement group
        (``placement``: its strategy, default ``[aws] placement_group``).  ``efa``: a role uses EFA, whose traffic
        the security group must allow to and from itself, both ways (EC2 UG "Get started with EFA and MPI")."""
        if region:
            self._set_region_name(region)
        if "vpc_id" not in self.resources:
            self.resources["vpc_id"] = self._vpc_id()
        if not self.config.security_group_id and "security_group_id_created" not in self.resources:
            self.resources["security_group_id_created"] = self._create_security_group(handle, contract)
        if efa and not self.config.security_group_id and not self.resources.get("efa_rules"):
            group = self.resources["security_group_id_created"]  # its ingress rule from itself exists already
            self._retry_not_visible(lambda: self.call("authorize_security_group_egress", GroupId=group, IpPermissions=[
                {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group, "Description": "ccdsl: EFA"}]}]))
            self.resources["efa_rules"] = True
        if not self.config.key_name and "key_name_created" not in self.resources:
            self._create_key_pair(handle, contract)
        strategy = self.config.placement_group if placement is None else placement
        if strategy and "placement_group_created" not in self.resources:
            name = f"ccdsl-{handle}"
            self.call("create_placement_group", GroupName=name, Strategy=strategy,
                      TagSpecifications=[{"ResourceType": "placement-group",
                                          "Tags": self._tags(handle, None, contract)}])
            self.resources["placement_group_created"] = name

    def create(self, request: NodeRequest, progress: Progress) -> list[Node]:
        """ONE RunInstances for the role; returns the nodes as EC2 reported them (pending).  ``wait_running``
        follows.  ``request.options["zone"]`` pins the zone (the deployer's failover loop sets it)."""
        self._set_region(request)
        contract = str(request.options.get("contract", "")) or None
        spot = self._spot(request)
        zone = request.options.get("zone")
        image, root_device, image_size, burstable = self._check_request(request)  # before anything is created
        efa = self._fabric(request)
        strategy = self._strategy(spot, efa)
        self.prepare(request.handle, contract, efa=efa.on, placement=strategy)
        # role -> EFA interfaces per node, in the record: the nodes carry it (extra["efa"]) for the deploy's
        # fi_info check and the launcher's choice of Open MPI's mpirun, also when found again by their tags
        fabrics = self.resources.setdefault("efa_interfaces", {})
        if efa.on:
            fabrics[request.role] = efa.interfaces
        else:
            fabrics.pop(request.role, None)
        group = self.config.security_group_id or self.resources["security_group_id_created"]
        params: dict[str, Any] = {
            "ImageId": image, "InstanceType": request.instance_type,
            "MinCount": request.count, "MaxCount": request.count,
            "KeyName": self.config.key_name or self.resources["key_name_created"],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "BlockDeviceMappings": [{"DeviceName": root_device, "Ebs": {
                "Encrypted": True, "DeleteOnTermination": True, "VolumeType": self.config.volume_type,
                "VolumeSize": max(self.config.volume_size, image_size)}}],
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": self._tags(request.handle, request.role, contract)},
                {"ResourceType": "volume", "Tags": self._tags(request.handle, request.role, contract)}],
        }
        params.update(self._network(zone, strategy, efa, group))
        cpu = self._cpu_options(request)
        if cpu:
            params["CpuOptions"] = cpu
        if self.config.instance_profile:
            params["IamInstanceProfile"] = instance_profile(self.config.instance_profile)
        data = user_data(self.install, self.config.scratch, self._shared_runcmd(request.handle, contract, zone),
                         efa=self._efa_software(request))
        if data:
            params["UserData"] = data  # boto3 base64-encodes it
        if self.config.scratch:
            self._check_scratch(request.instance_type)
        if spot:
            # persistent + stop: a spot cluster can still be interrupted (stopped) and resumed.  Its spot requests
            # are tagged too: terminate cancels them first, or EC2 would launch new instances for them.
            params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop",
                "ValidUntil": self._spot_valid_until()}}
            params["TagSpecifications"].append({"ResourceType": "spot-instances-request",
                                                "Tags": self._tags(request.handle, request.role, contract)})
        if (burstable or credits(request.instance_type) is not None) and request.instance_type not in NO_CREDITS:
            # T2/T3/T3a/T4g: standard unless [aws] cpu_credits says unlimited (T3 and newer default to unlimited,
            # which bills sustained load above the baseline: ccdsl.burstable)
            params["CreditSpecification"] = {"CpuCredits": self.config.cpu_credits}
        if request.options.get("shutdown_behavior"):  # autostop: the watchdog's shutdown stops or terminates
            params["InstanceInitiatedShutdownBehavior"] = str(request.options["shutdown_behavior"])
        try:
            instances = self._launch_private(request, params, contract) if self.config.private else None
            if instances is None:
                params["ClientToken"] = client_token(request.handle, params, self._launch_round)
                instances = self._run_instances(params)["Instances"]
        except ProviderError as exc:
            raise self._profile_error(exc) from None
        nodes = sorted((self._node(i, request.role) for i in instances), key=lambda n: n.index)
        if strategy == "cluster" and nodes and nodes[0].zone:
            self.resources["placement_zone"] = nodes[0].zone
        for n in nodes:
            progress(n.role, n.index, model.REQUESTED)
        return nodes

    def _network(self, zone: object, strategy: str, efa: Fabric, group: str) -> dict[str, Any]:
        """RunInstances' placement and network parameters: the zone and placement group, then either network
        interfaces (EFA, private nodes) or the top-level group and subnet, never both."""
        params: dict[str, Any] = {}
        placement: dict[str, str] = {}
        if zone:
            placement["AvailabilityZone"] = str(zone)
        if strategy:
            placement["GroupName"] = self.resources["placement_group_created"]
        if placement:
            params["Placement"] = placement
        if efa.on:  # EC2 refuses top-level groups and subnet beside NetworkInterfaces (InvalidParameterCombination)
            params["NetworkInterfaces"] = efa_interfaces(efa.interfaces, group, self._subnet_for(zone),
                                                         public=not self.config.private)
        elif self.config.private:
            params["NetworkInterfaces"] = private_interface(group, self._subnet_for(zone), public=False)
        else:
            params["SecurityGroupIds"] = [group]
            if self.config.subnet_id:
                params["SubnetId"] = self.config.subnet_id
        return params

    def _shared_runcmd(self, handle: str, contract: str | None, zone: object) -> list[list[str]]:
        """The user data of ``[aws] shared`` (:mod:`.shared_fs`): for ``efs`` the file system and its mount target
        are created first (once per cluster, in the subnet of the first role's zone), since the nodes mount it."""
        if self.config.shared == "efs":
            address = shared_fs.ensure_efs(self, handle, contract, self._subnet_for(zone))
            return shared_fs.runcmd("efs", self.config.shared_dir, address)
        return shared_fs.runcmd(self.config.shared, self.config.shared_dir)

    def _check_scratch(self, instance_type: str) -> None:
        """Say when ``[aws] scratch`` finds no disk on ``instance_type``: then the folder is one on the root volume
        (a manager of another type than its workers may well have none)."""
        info = self._type_info(instance_type)
        storage = info.get("InstanceStorageInfo") or {}
        if not info.get("InstanceStorageSupported") or storage.get("NvmeSupport") == "unsupported":
            what = "no instance storage" if not info.get("InstanceStorageSupported") else "no NVMe instance storage"
            log.warning("%s has %s: [aws] scratch = %r is a folder on its root volume", instance_type, what,
                        self.config.scratch)

    def _profile_error(self, exc: ProviderError) -> CcdslError:
        """RunInstances' refusal as the user can act on it: EC2 answers ``InvalidParameterValue`` ("Value (…) for
        parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name") for an instance profile
        it does not know, a ConfigError naming ``[aws] instance_profile``; a refusal of the credentials while a
        profile is passed may be the missing ``iam:PassRole``.  Any other error unchanged."""
        profile = self.config.instance_profile
        code = getattr(exc, "code", "")
        if profile and code == "InvalidParameterValue" and "instance profile" in exc.message.lower():
            return ConfigError(f"[aws] instance_profile = {profile!r}: EC2 knows no such instance profile in this "
                               f"account ({exc.message})",
                               hint="check the name or ARN with 'aws iam list-instance-profiles' (an instance "
                                    "profile is not its role: 'aws iam create-instance-profile' and "
                                    "'add-role-to-instance-profile' make one); a profile created a moment ago may "
                                    "need a few seconds before EC2 sees it, or empty instance_profile for none")
        if profile and code == "UnauthorizedOperation":
            exc.hint = (f"launching with [aws] instance_profile = {profile!r} needs iam:PassRole on its role for "
                        "ec2.amazonaws.com ('ccdsl iam-policy' grants it); " + (exc.hint or ""))
        return exc

    def _spot_valid_until(self) -> datetime.datetime:
        """When the cluster's persistent spot requests end: a year from the first spot launch, recorded (one date
        for every role and retry, so a re-sent RunInstances keeps its token).  AWS's default is 7 days: then EC2
        cancels the request, a stopped instance is terminated and a running one can no longer stop."""
        import datetime

        at = float(self.resources.setdefault("spot_valid_until", round(time.time()) + SPOT_VALIDITY))
        return datetime.datetime.fromtimestamp(at, datetime.timezone.utc)

    # -- the launch journal ------------------------------------------------------------------------------------
    # A RunInstances whose answer is lost (Ctrl-C, a dropped connection, a crash) may have launched instances that
    # no record names, and whose tags EC2 may not list for a while.  So every launch is on record, by its token,
    # before it goes out: ``launches`` maps the token to "pending" (not sent yet) or "sent" (botocore's
    # before-send), and the entry goes when the answer is in.  Terminate -- in this process or in a new one after a
    # crash -- finds what a sent launch created with DescribeInstances' ``client-token`` filter.  It never sends
    # the launch again: a request that never reached EC2 would launch then.

    def _journal(self) -> None:
        if self.on_record is not None:
            self.on_record()

    def _sending(self, request: Any, **_: Any) -> None:
        """botocore's before-send of RunInstances: its token is "sent" from here on (and on record so)."""
        from urllib.parse import parse_qs

        body = request.body if isinstance(request.body, (bytes, str)) else b""
        text = body.decode() if isinstance(body, bytes) else body
        launches = self.resources.get("launches") or {}
        for token in parse_qs(text).get("ClientToken", []):
            if launches.get(token) == "pending":
                launches[token] = "sent"
                self._journal()

    def _run_instances(self, params: dict[str, Any]) -> dict[str, Any]:
        """RunInstances, journaled (see above): a refusal from EC2 launched nothing and leaves no entry; a lost
        answer leaves the entry for :meth:`_lost_launches`."""
        token = params["ClientToken"]
        launches = self.resources.setdefault("launches", {})
        launches[token] = "pending"
        self._journal()
        try:
            answer = self._retry_not_visible(lambda: self.call("run_instances", **params))
        except ProviderError as exc:
            if getattr(exc, "code", "") or launches.get(token) == "pending":  # refused, or never sent
                launches.pop(token, None)
                self._journal()
            raise
        except BaseException:
            if launches.get(token) == "pending":  # interrupted before it was sent: nothing can exist
                launches.pop(token, None)
                self._journal()
            raise
        self._fresh.update(i["InstanceId"] for i in answer["Instances"])
        launches.pop(token, None)  # the caller records the nodes
        return answer

    def _lost_launches(self, deadline: float) -> set[str]:
        """Ids of the instances of every sent launch whose answer was lost, by the ``client-token`` filter.  EC2
        lists a fresh instance only after a while, so each token is looked for until it shows or ``LOST_LOOKS``
        looks (with backoff) found nothing: then its request launched nothing (it was refused or never arrived)."""
        launches = self.resources.get("launches") or {}
        tokens = sorted(t for t, how in launches.items() if how == "sent")
        ids: set[str] = set()
        delay = self.config.poll_interval
        for look in range(LOST_LOOKS):
            for token in list(tokens):  # one or two: a lost answer is rare
                found = {i["InstanceId"] for r in self._paginate("describe_instances", "Reservations", Filters=[
                    {"Name": "client-token", "Values": [token]}]) for i in r["Instances"]}
                if found:
                    ids |= found
                    tokens.remove(token)
            if not tokens or look + 1 == LOST_LOOKS or time.monotonic() >= deadline:
                break
            log.info("looking for the instances of %d launch(es) whose answer was lost (EC2 lists new ones late)",
                     len(tokens))
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        if tokens:
            log.warning("%d launch(es) whose answer was lost show no instance: EC2 refused them or never got them "
                        "(client token %s)", len(tokens), ", ".join(tokens))
        self.resources.pop("launches", None)
        self._fresh |= ids
        self._journal()
        return ids

    def wait_running(self, handle: str, nodes: Sequence[Node], progress: Progress) -> list[Node]:
        """Poll until every node runs (and has its addresses); reports ``running`` per node as it happens.  A node
        EC2 does not list yet is not visible yet (eventual consistency after RunInstances), not an error."""
        ids = [n.instance_id for n in nodes]
        roles = {n.instance_id: n.role for n in nodes}
        seen: set[str] = set()

        def check() -> list[Node] | None:
            current = self._describe_ids(ids, roles)
            for n in current:
                if n.state == model.RUNNING and not n.address and not self.config.jump_host:
                    raise ProviderError(
                        f"instance {n.instance_id} ({n.role} {n.index}) runs but has no public IP address, and "
                        f"[aws] connect_address = 'public'",
                        hint="launch in a subnet that assigns public IPv4 addresses ([aws] subnet_id), or set [aws] "
                             "connect_address = 'private' when this machine reaches the VPC (VPN, Direct Connect)")
                if n.state == model.RUNNING and n.instance_id not in seen:
                    seen.add(n.instance_id)
                    progress(n.role, n.index, model.RUNNING)
                if n.state in (model.TERMINATED, SHUTTING_DOWN):
                    raise ProviderError(f"instance {n.instance_id} ({n.role} {n.index}) terminated while starting"
                                        f" ({n.extra.get('reason', 'no reason given')})")
            return current if len(seen) == len(ids) and len(current) == len(ids) else None

        return poll(check, what=f"{len(ids)} instance(s) of {handle} to run", timeout=self.config.wait_timeout,
                    interval=self.config.poll_interval)

    def start(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        """Start the stopped nodes; a node whose instance no longer exists is dropped (and logged).  None left:
        nothing can be started (a cluster of zero nodes is not running)."""
        ids = self._act_on_instances("start_instances", [n.instance_id for n in nodes], handle)
        if not ids:
            raise ClusterError(f"cluster {handle}: none of its {len(nodes)} instance(s) exist any more, so nothing "
                               "can be started", hint=f"ccdsl terminate {handle} removes what is left")
        return self.wait_running(handle, [n for n in nodes if n.instance_id in ids], lambda *a: None)

    def stop(self, handle: str, nodes: Sequence[Node]) -> list[Node]:
        """Stop the nodes; a node whose instance no longer exists is dropped (and logged).  With ``[aws] scratch``
        it warns first: a stop empties instance storage, so what the scratch folder held is lost."""
        if self.config.scratch:
            log.warning("[aws] scratch = %r: stopping empties the nodes' instance storage, and what %s holds is lost "
                        "(resume mounts it again, empty); copy what you need out first", self.config.scratch,
                        self.config.scratch)
        ids = self._act_on_instances("stop_instances", [n.instance_id for n in nodes], handle)
        roles = {n.instance_id: n.role for n in nodes}
        return self._wait_state(ids, model.STOPPED, f"{len(ids)} instance(s) of {handle} to stop", roles)

    def terminate(self, handle: str, nodes: Sequence[Node]) -> None:
        """Terminate every instance tagged with the handle (and the given ones), delete the cluster's security
        group, key pair and placement group, then verify by tag that nothing remains.

        EC2 is eventually consistent and slow to let go: an instance is ``shutting-down`` (its root volume in use,
        its security group a dependency) for a while before it is ``terminated``; a fresh instance may not be listed
        yet; an id may be long gone.  So each round terminates what is listed, waits for ``terminated``, deletes
        the rest (retrying "in use"), and looks again, until nothing is left or ``wait_timeout`` passes."""
        deadline = time.monotonic() + self.config.wait_timeout
        self._launch_round += 1
        if self.region in self._not_opted_in:  # a region the account cannot use holds nothing (and answers nothing)
            return
        ids = {n.instance_id for n in nodes if n.instance_id.startswith("i-")} | self._lost_launches(deadline)
        delay = self.config.poll_interval
        while True:
            self._end_instances(handle, ids, deadline)
            self._delete_cluster_resources(handle, deadline)
            left = self.leftovers(handle)
            if not left:
                break
            if time.monotonic() >= deadline:
                raise ProviderError(f"cluster {handle}: resources still exist after terminate: {', '.join(left)}",
                                    hint=f"run 'ccdsl terminate {handle}' again, or delete them in the EC2 console")
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
            ids = set()
        key = self.resources.get("key_path_created")
        if key:
            Path(key).unlink(missing_ok=True)
        self.resources = {k: v for k, v in self.resources.items() if k == "vpc_id"}

    def release(self, handle: str, nodes: Sequence[Node]) -> None:
        """Terminate the cluster's instances (and cancel its spot requests) but keep its security group, key pair
        and placement group: the deployer's failover to another type in the same region launches again at once,
        and deleting then recreating same-named resources races EC2's eventual consistency."""
        deadline = time.monotonic() + self.config.wait_timeout
        self._launch_round += 1
        if self.region in self._not_opted_in:
            return
        ids = {n.instance_id for n in nodes if n.instance_id.startswith("i-")} | self._lost_launches(deadline)
        self._end_instances(handle, ids, deadline)
        self.resources.pop("placement_zone", None)

    def _end_instances(self, handle: str, ids: set[str], deadline: float) -> None:
        """Cancel the spot requests, then terminate ``ids`` and whatever is listed by tag, and wait for it."""
        listed = self.describe(handle)
        known = sorted(ids | {n.instance_id for n in listed})
        self._cancel_spot_requests(handle, listed)
        if known:
            known = self._act_on_instances("terminate_instances", known, handle)
            self._wait_gone(known, f"{len(known)} instance(s) of {handle} to terminate", deadline)

    def _cancel_spot_requests(self, handle: str, nodes: Sequence[Node]) -> None:
        """Cancel the cluster's persistent spot requests BEFORE its instances terminate: terminating the instance
        of an open persistent request makes EC2 launch a new one.  Requests are found by tag and, in case the
        tags are not visible yet, through the instances' SpotInstanceRequestId."""
        sirs = {r["SpotInstanceRequestId"] for r in self._spot_requests(handle)}
        sirs |= {n.extra["spot_request"] for n in nodes if n.extra.get("spot_request")}
        for part in chunks(sorted(sirs)):
            try:
                self.call("cancel_spot_instance_requests", SpotInstanceRequestIds=part)
            except ProviderError as exc:
                if getattr(exc, "code", "") != "InvalidSpotInstanceRequestID.NotFound":
                    raise
                for sir in part:  # one unknown id fails the whole call: cancel one by one
                    self._retry_in_use(partial(self.call, "cancel_spot_instance_requests",
                                               SpotInstanceRequestIds=[sir]),
                                       set(), {"InvalidSpotInstanceRequestID.NotFound"}, time.monotonic())

    def _spot_requests(self, handle: str | None) -> list[dict[str, Any]]:
        """Spot requests that can still launch an instance, tagged with ``handle`` (None: any ccdsl handle)."""
        tag = ({"Name": f"tag:{TAG_CLUSTER}", "Values": [handle]} if handle else
               {"Name": "tag-key", "Values": [TAG_CLUSTER]})
        return self._paginate("describe_spot_instance_requests", "SpotInstanceRequests",
                              Filters=[tag, {"Name": "state", "Values": _LIVE_SPOT_STATES}])

    def ec2_stopped(self, handle: str) -> dict[str, str]:
        """The cluster's spot instances that EC2 itself stopped (interrupted: no capacity, price, an experiment),
        with their request's status code.  Only EC2 can start them again, when capacity returns; StartInstances
        is refused (EC2 User Guide, "Stop interrupted Spot Instances" and "Spot request status")."""
        out = {}
        for r in self._spot_requests(handle):
            code = (r.get("Status") or {}).get("Code", "")
            if r.get("InstanceId") and (code == "marked-for-stop" or (
                    code.startswith("instance-stopped-") and code != "instance-stopped-by-user")):
                out[r["InstanceId"]] = code
        return out

    def _delete_cluster_resources(self, handle: str, deadline: float) -> None:
        """Security groups, key pairs, placement group and detached volumes tagged with ``handle``."""
        # [aws] shared = "efs": its mount targets hold the security group.  Looked for whatever the settings say: a
        # cluster adopted after its record was lost has the settings of today's file
        shared_fs.delete_efs(self, handle, deadline)
        for sg in self._tagged("describe_security_groups", "SecurityGroups", handle):
            self._retry_in_use(partial(self.call, "delete_security_group", GroupId=sg["GroupId"]),
                               {"DependencyViolation"}, {"InvalidGroup.NotFound"}, deadline)
        for kp in self._tagged("describe_key_pairs", "KeyPairs", handle):
            self._retry_in_use(partial(self.call, "delete_key_pair", KeyName=kp["KeyName"]), set(),
                               {"InvalidKeyPair.NotFound"}, deadline)
        if "placement_group_created" in self.resources or self.config.placement_group:
            for pg in self._tagged("describe_placement_groups", "PlacementGroups", handle):
                self._retry_in_use(partial(self.call, "delete_placement_group", GroupName=pg["GroupName"]),
                                   {"InvalidPlacementGroup.InUse"}, {"InvalidPlacementGroup.Unknown"}, deadline)
        for volume in self._volumes(handle):  # root volumes go with their instances; a detached one would leak
            if volume["State"] == "available":
                self._retry_in_use(partial(self.call, "delete_volume", VolumeId=volume["VolumeId"]),
                                   {"VolumeInUse"}, {"InvalidVolume.NotFound"}, deadline)

    def leftovers(self, handle: str) -> list[str]:
        """Every resource still tagged with ``handle`` (terminated instances excluded), by id."""
        if self.region in self._not_opted_in:
            return []
        left = [n.instance_id for n in self._describe_tagged(handle, [*_LIVE_EC2_STATES, "shutting-down"])]
        left += [g["GroupId"] for g in self._tagged("describe_security_groups", "SecurityGroups", handle)]
        left += [k["KeyName"] for k in self._tagged("describe_key_pairs", "KeyPairs", handle)]
        left += [v["VolumeId"] for v in self._volumes(handle)]
        left += [r["SpotInstanceRequestId"] for r in self._spot_requests(handle)]
        if "placement_group_created" in self.resources or self.config.placement_group:
            left += [p["GroupName"] for p in self._tagged("describe_placement_groups", "PlacementGroups", handle)]
        left += shared_fs.leftovers(self, handle)
        return left

    def describe(self, handle: str) -> list[Node]:
        """The cluster's instances as EC2 sees them now (terminated and terminating ones excluded)."""
        return self._describe_tagged(handle, _LIVE_EC2_STATES)

    def _describe_tagged(self, handle: str, states: list[str]) -> list[Node]:
        answer = self._paginate("describe_instances", "Reservations", Filters=[
            {"Name": f"tag:{TAG_CLUSTER}", "Values": [handle]}, {"Name": "instance-state-name", "Values": states}])
        nodes = [self._node(i) for r in answer for i in r["Instances"]]
        self._fresh.difference_update(n.instance_id for n in nodes)
        return sorted(nodes, key=lambda n: (n.role != "manager", n.role, n.index))

    def discover(self) -> list[str]:
        """Handles of every cluster that owns something in this region: live instances, security groups or key
        pairs (a deploy that crashed before RunInstances leaves only those)."""
        handles: set[str] = set()
        tag_filter = [{"Name": "tag-key", "Values": [TAG_CLUSTER]}]
        for r in self._paginate("describe_instances", "Reservations", Filters=tag_filter + [
                {"Name": "instance-state-name", "Values": _LIVE_EC2_STATES}]):
            handles.update(_tag(i, TAG_CLUSTER) for i in r["Instances"])
        for g in self._paginate("describe_security_groups", "SecurityGroups", Filters=tag_filter):
            handles.add(_tag(g, TAG_CLUSTER))
        for k in self.call("describe_key_pairs", Filters=tag_filter)["KeyPairs"]:
            handles.add(_tag(k, TAG_CLUSTER))
        for r in self._spot_requests(None):  # an open request launches instances again: it is a leftover too
            handles.add(_tag(r, TAG_CLUSTER))
        handles |= shared_fs.discover(self)  # a file system bills on its own ([aws] shared = "efs")
        handles.discard("")
        return sorted(handles)

    # -- helpers ---------------------------------------------------------------------------------------------
    def _tags(self, handle: str, role: str | None, contract: str | None) -> list[dict[str, str]]:
        own = tags_for(handle, role, contract)
        taken = {t["Key"] for t in own}
        return own + [{"Key": str(k), "Value": str(v)} for k, v in self.config.tags.items() if k not in taken]

    def _set_region(self, request: NodeRequest) -> None:
        if request.region:
            self._set_region_name(request.region)

    def _set_region_name(self, region: str) -> None:
        if region != self.region:
            self.region = region
            self._ec2 = None

    def _paginate(self, operation: str, key: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        token = None
        while True:
            answer = self.call(operation, **params, **({"NextToken": token} if token else {}))
            out.extend(answer.get(key, []))
            token = answer.get("NextToken")
            if not token:
                return out

    def _tagged(self, operation: str, key: str, handle: str) -> list[dict[str, Any]]:
        """Resources tagged with ``handle``, every page.  A placement group that is ``deleted`` (EC2 lists it for
        a while) is not one any more, nor is one being deleted (as volumes)."""
        filters = [{"Name": f"tag:{TAG_CLUSTER}", "Values": [handle]}]
        if operation == "describe_placement_groups":
            filters.append({"Name": "state", "Values": ["pending", "available"]})
        return self._paginate(operation, key, Filters=filters)

    def _volumes(self, handle: str) -> list[dict[str, Any]]:
        """Volumes tagged with the handle that still exist (being deleted does not count)."""
        return [v for v in self._tagged("describe_volumes", "Volumes", handle)
                if v["State"] in ("creating", "available", "in-use", "error")]

    def describe_ids(self, ids: Iterable[str]) -> list[Node]:
        """The instances among ``ids`` that EC2 lists now, asked by id: reconcile's check that instances the listing
        by tag no longer shows are really gone (that listing can lag behind)."""
        return self._describe_ids(ids)

    def _describe_ids(self, ids: Iterable[str], roles: Mapping[str, str] | None = None) -> list[Node]:
        """The instances among ``ids`` that EC2 lists now.  A filter, not ``InstanceIds``: an id EC2 does not know
        (not visible yet, or gone) is simply absent instead of failing the whole call."""
        answer = [r for part in chunks(list(ids)) for r in self._paginate(
            "describe_instances", "Reservations", Filters=[{"Name": "instance-id", "Values": part}])]
        roles = roles or {}
        nodes = [self._node(i, roles.get(i["InstanceId"])) for r in answer for i in r["Instances"]]
        self._fresh.difference_update(n.instance_id for n in nodes)  # listed once: visible from now on
        return sorted(nodes, key=lambda n: (n.role, n.index))

    def _wait_state(self, ids: list[str], state: str, what: str,
                    roles: Mapping[str, str] | None = None) -> list[Node]:
        def check() -> list[Node] | None:
            nodes = self._describe_ids(ids, roles)
            return nodes if len(nodes) == len(ids) and all(n.state == state for n in nodes) else None

        return poll(check, what=what, timeout=self.config.wait_timeout, interval=self.config.poll_interval)

    def _wait_gone(self, ids: list[str], what: str, deadline: float) -> None:
        """Until every instance is ``terminated`` (or no longer listed at all) -- ``shutting-down`` is not done."""
        def check() -> bool | None:
            return True if all(n.state == model.TERMINATED for n in self._describe_ids(ids)) else None

        poll(check, what=what, timeout=max(1.0, deadline - time.monotonic()), interval=self.config.poll_interval)

    def _act_on_instances(self, operation: str, ids: list[str], handle: str) -> list[str]:
        """``operation`` (terminate/stop/start) on ``ids``, :data:`CHUNK` ids per call; returns the ids it acted
        on."""
        return [i for part in chunks(ids) for i in self._act_on_chunk(operation, part, handle)]

    def _act_on_chunk(self, operation: str, ids: list[str], handle: str) -> list[str]:
        """``operation`` on at most :data:`CHUNK` ids.

        EC2 fails the whole call when one id is unknown.  Then the ids EC2 does list are kept and the call is
        retried; an id that is not listed is gone (dropped, and logged) -- or, right after RunInstances, not
        visible yet: while every id is listed but the call still says NotFound, wait with backoff."""
        deadline = time.monotonic() + min(self.config.wait_timeout, 120.0)
        delay = self.config.poll_interval
        ids = list(ids)
        while ids:
            try:
                self.call(operation, InstanceIds=ids)
                return ids
            except ProviderError as exc:
                if getattr(exc, "code", "") != "InvalidInstanceID.NotFound" or time.monotonic() >= deadline:
                    raise
            listed = {n.instance_id for n in self._describe_ids(ids)} | self._fresh  # fresh: not visible yet
            gone = [i for i in ids if i not in listed]
            if gone:
                log.warning("%s: instance(s) %s no longer exist; %s goes on without them", handle,
                            ", ".join(gone), operation.replace("_instances", ""))
                ids = [i for i in ids if i in listed]
            else:
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
        return []

    def _retry_in_use(self, action: Callable[[], Any], busy: set[str], done: set[str], deadline: float) -> None:
        """Run a delete: error codes in ``busy`` ("still in use" -- a security group or placement group stays a
        dependency for minutes after its instances terminate) are retried with backoff until ``deadline``; codes in
        ``done`` mean it is gone already."""
        delay = self.config.poll_interval
        while True:
            try:
                action()
                return
            except ProviderError as exc:
                code = getattr(exc, "code", "")
                if code in done:
                    return
                if code not in busy or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 15.0)

    def _retry_not_visible(self, action: Callable[[], T]) -> T:
        """``action`` retried with backoff while EC2 says a resource just created does not exist (eventual
        consistency: a fresh security group, key pair or instance)."""
        deadline = time.monotonic() + min(self.config.wait_timeout, 120.0)
        delay = self.config.poll_interval
        while True:
            try:
                return action()
            except ProviderError as exc:
                if getattr(exc, "code", "") not in NOT_VISIBLE_CODES or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _vpc_id(self) -> str:
        if self.config.subnet_id:
            subnets = self.call("describe_subnets", SubnetIds=[self.config.subnet_id])["Subnets"]
            subnet_vpc: str = subnets[0]["VpcId"]
            return subnet_vpc
        vpcs = self.call("describe_vpcs", Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise ConfigError(f"region {self.region} has no default VPC",
                              hint="set [aws] subnet_id in ccdsl.toml to a subnet of your VPC")
        default_vpc: str = vpcs[0]["VpcId"]
        return default_vpc

    def _create_security_group(self, handle: str, contract: str | None) -> str:
        # "auto" jump host: SSH from outside reaches only it (its own group, :meth:`_jump_group`); members, the jump
        # host among them, reach each other through the rule on this group itself
        cidr = "" if self._jump_auto else self._ssh_cidr()
        group: str = self.call("create_security_group", GroupName=f"ccdsl-{handle}", VpcId=self.resources["vpc_id"],
                          Description=f"ccdsl cluster {handle}: " + (f"SSH from {cidr}, " if cidr else "")
                          + "all traffic between members",
                          TagSpecifications=[{"ResourceType": "security-group",
                                              "Tags": self._tags(handle, None, contract)}])["GroupId"]
        self.resources["security_group_id_created"] = group  # recorded before the rules: terminate deletes it
        self._retry_not_visible(lambda: self.call("authorize_security_group_ingress", GroupId=group, IpPermissions=[
            *([_ssh_rule(cidr)] if cidr else []),
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group, "Description": "ccdsl: cluster members"}]},
        ]))
        return group

    def _ssh_cidr(self) -> str:
        """The configured CIDR, or this machine's public address as a /32 (never 0.0.0.0/0 by default)."""
        if self.config.ssh_cidr:
            from ccdsl.security import network

            net, problem = network(self.config.ssh_cidr)  # host bits are refused, never widened (x.y.z.9/0)
            if problem:
                raise ConfigError(f"[aws] ssh_cidr = {self.config.ssh_cidr!r} {problem}")
            return str(net)
        url = self.config.ip_discovery_url
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:  # URL from the user's config
                text = answer.read(100).decode("ascii", "replace").strip()
            address = ipaddress.ip_address(text)
        except (OSError, ValueError) as exc:
            raise ProviderError(f"cannot find this machine's public address from {url}: {exc}",
                                hint="set [aws] ssh_cidr in ccdsl.toml to the CIDR allowed to SSH in") from None
        return f"{address}/{address.max_prefixlen}"

    def _create_key_pair(self, handle: str, contract: str | None) -> None:
        from ccdsl.executor.state import data_dir

        name = f"ccdsl-{handle}"
        answer = self.call("create_key_pair", KeyName=name, KeyType="ed25519",
                           TagSpecifications=[{"ResourceType": "key-pair", "Tags": self._tags(handle, None, contract)}])
        keys = data_dir() / "keys"
        keys.mkdir(exist_ok=True, mode=0o700)
        path = keys / f"{handle}.pem"
        write_private(path, openssh_private_key(answer["KeyMaterial"]))
        self.resources["key_name_created"] = name
        self.resources["key_path_created"] = str(path)

    def check_plan(self, requests: Sequence[NodeRequest]) -> None:
        """Everything EC2 would refuse about a whole plan, checked before ANY role is created (an on-demand manager
        must not launch when the spot workers are then refused): the region-bound settings exist in the region,
        and each role's type and market fit the placement group.  A type or region that does not fit is a
        region-scope CapacityError (the deployer tries the next plan); settings that contradict each other are a
        ConfigError."""
        self._roles = {r.role for r in requests}  # whether a manager is the jump host ([aws] jump_host = "auto")
        # known before the first role is created: a manager launched before EFA workers gets the EFA software too
        # (Open MPI's mpirun runs there), though no EFA device
        fabrics: dict[str, int] = {}
        for request in requests:
            self._set_region(request)
            self._check_region_settings()  # its refusal first, as _check_request says it
            if (fabric := self._fabric(request)).on:
                fabrics[request.role] = fabric.interfaces
        self.resources["efa_interfaces"] = fabrics
        for request in requests:
            self._check_request(request)

    def _check_request(self, request: NodeRequest) -> tuple[str, str, int, bool]:
        """The checks of :meth:`check_plan` for one role; returns its image (as :meth:`_image_for`)."""
        self._set_region(request)
        self._check_region_settings()
        image = self._image_for(request.instance_type)
        spot = self._spot(request)
        efa = self._fabric(request)
        if efa.needs_private:
            raise ConfigError(f"{request.count} × {request.instance_type} ({request.role}) with EFA on every one of "
                              f"its {efa.available} network cards need private nodes: a node with a public address "
                              "takes a single network interface",
                              hint='set [aws] private = true (and connect_address = "private"), or [aws] efa = '
                                   '"auto" for one EFA interface per node (not with the contract\'s efa => true)')
        if efa.on and self.config.private and self.config.connect_address == "public" and not self.config.address_map:
            raise ConfigError(f"{request.instance_type} ({request.role}) with EFA and [aws] private = true gets no "
                              "public address, and [aws] connect_address = \"public\"",
                              hint='set [aws] connect_address = "private" when this machine reaches the VPC (VPN, '
                                   "Direct Connect, a host inside it), or [aws] private = false")
        self._check_placement(request, spot, image[3], self._strategy(spot, efa))
        self._cpu_options(request)
        self._check_private(request)
        return image

    def _fabric(self, request: NodeRequest) -> Fabric:
        """Whether the role's nodes use EFA, and through how many interfaces (:mod:`ccdsl.fabric` decides, from
        DescribeInstanceTypes' answer, the contract's ``efa`` clause in ``options["efa"]`` and ``[aws] efa`` and
        ``private``)."""
        from ccdsl import fabric

        net = self._type_info(request.instance_type).get("NetworkInfo") or {}
        available = int((net.get("EfaInfo") or {}).get("MaximumEfaInterfaces", 0)) if net.get("EfaSupported") else 0
        asked = request.options.get("efa")
        return fabric.decide(request.instance_type, available, request.count,
                             None if asked is None else bool(asked), self.config.efa, self.config.private)

    def fabric_line(self, request: NodeRequest) -> str:
        """What the deployer journals after a role is created: ``EFA on: 32 interfaces``, ``EFA on: 1 of 32
        interfaces (…)``, or why it is off when the contract asked; empty when EFA was never in question."""
        efa = self._fabric(request)
        return efa.line() if efa.on or request.options.get("efa") is not None else ""

    def _strategy(self, spot: bool, efa: Fabric) -> str:
        """The role's placement strategy: ``[aws] placement_group``, else ``cluster`` for EFA (its low latency is
        what EFA is for), except for spot roles, which ccdsl cannot launch into a placement group."""
        return self.config.placement_group or ("cluster" if efa.on and not spot else "")

    def _cpu_options(self, request: NodeRequest) -> dict[str, int] | None:
        """CpuOptions for one thread per core (the contract's ``smt => false`` for the role, in
        ``options["smt"]``, else ``[aws] smt = false``), None when nothing is to be sent: SMT on, or a type that runs
        one thread per core already (Graviton, the AMD HPC types).  A type that cannot be changed is refused: bare
        metal takes no CPU options (EC2 UG "CPU options for Amazon EC2 instances"; aws-parallelcluster#1855), and
        a few older types list no ThreadsPerCore = 1."""
        instance_type = request.instance_type
        asked = request.options.get("smt")
        smt = self.config.smt if asked is None else bool(asked)
        if smt:
            return None
        info = self._type_info(instance_type)
        vcpu = info.get("VCpuInfo") or {}
        if int(vcpu.get("DefaultThreadsPerCore", 1)) <= 1:
            return None
        who = "the contract's smt => false" if asked is not None else "[aws] smt = false"
        hint = ("choose another type, or write smt => false in the contract (it resolves only to types that can run "
                "one thread per core), or [aws] smt = true" if asked is None else
                "a resolved contract never names such a type (smt => false keeps them out): choose another type")
        if info.get("BareMetal") or ".metal" in instance_type:
            raise ConfigError(f"{instance_type} is a bare-metal type that runs two threads per core: EC2 takes no "
                              f"CPU options for bare metal, so {who} cannot turn its second threads off", hint=hint)
        if 1 not in vcpu.get("ValidThreadsPerCore", []):
            raise ConfigError(f"EC2 cannot run {instance_type} with one thread per core ({who})", hint=hint)
        return {"CoreCount": int(vcpu["DefaultCores"]), "ThreadsPerCore": 1}

    def _subnet_for(self, zone: object) -> str | None:  # a request option: str(zone) names it
        """The one subnet of every EFA interface: ``[aws] subnet_id``, else the default subnet of ``zone`` (known
        from :meth:`zones`, asked once otherwise); None: EC2's choice."""
        if self.config.subnet_id or not zone:
            return self.config.subnet_id or None
        key = (self.region, str(zone))
        if key not in self._default_subnets:
            subnets = self.call("describe_subnets", Filters=[
                {"Name": "default-for-az", "Values": ["true"]}, {"Name": "availability-zone", "Values": [str(zone)]}])
            if not subnets.get("Subnets"):
                return None
            self._default_subnets[key] = subnets["Subnets"][0]["SubnetId"]
        return self._default_subnets[key]

    def _spot(self, request: NodeRequest) -> bool:
        # The deployer settles each role's market (``options["market"]``: ManagerWorkers may put only the workers on
        # spot); a bare request has only its spot flag and [aws] spot.
        market = request.options.get("market")
        return market == "spot" if market else bool(request.spot or self.config.spot)

    def _check_region_settings(self) -> None:
        """``[aws] subnet_id``, ``security_group_id`` and ``key_name`` name resources of ONE region: elsewhere they
        do not exist, and that region cannot be used (an id does not say which region it belongs to).  Once per
        region."""
        if self.region in self._checked_regions:
            return
        checks: tuple[tuple[str, str, dict[str, Any], str], ...] = (
            ("subnet_id", "describe_subnets", {"SubnetIds": [self.config.subnet_id]}, "Subnets"),
            ("security_group_id", "describe_security_groups", {"GroupIds": [self.config.security_group_id]},
             "SecurityGroups"),
            ("key_name", "describe_key_pairs", {"KeyNames": [self.config.key_name]}, "KeyPairs"))
        for key, operation, params, answer_key in checks:
            value = getattr(self.config, key)
            if not value:
                continue
            try:
                found = self.call(operation, **params).get(answer_key, [])
            except ProviderError as exc:
                code = getattr(exc, "code", "")
                if not code.endswith((".NotFound", ".Malformed")):
                    raise
                found = []
            if not found:
                instead = "the region's default VPC" if key == "subnet_id" else "one ccdsl creates per cluster"
                raise _region_refusal(f"[aws] {key} = {value!r} does not exist in {self.region}",
                                      hint=f"{key} names a resource of one region: choose that region, or leave "
                                           f"{key} empty for {instead}", code="RegionBound")
        self._checked_regions.add(self.region)

    def _type_info(self, instance_type: str) -> dict[str, Any]:
        """DescribeInstanceTypes for one type, once per region."""
        key = (self.region, instance_type)
        if key not in self._types:
            types = self.call("describe_instance_types", InstanceTypes=[instance_type])["InstanceTypes"]
            if not types:
                raise CapacityError(f"EC2 does not offer {instance_type} in {self.region}")
            self._types[key] = types[0]
        return self._types[key]

    def _image_for(self, instance_type: str) -> tuple[str, str, int, bool]:
        """(AMI id, root device name, root volume GiB, burstable?) for the type's CPU architecture.  The image is
        resolved once per region and architecture, so every role of a cluster boots the same AMI even when the
        SSM parameter moves on during the deploy; it is recorded in the cluster's settings (``images``)."""
        info = self._type_info(instance_type)
        burstable = bool(info.get("BurstablePerformanceSupported", False))
        archs = info["ProcessorInfo"]["SupportedArchitectures"]
        if any(str(a).endswith("_mac") for a in archs):
            raise _region_refusal(f"{instance_type} is a Mac instance: it runs only on a Dedicated Host, which "
                                  "ccdsl does not allocate", hint="choose a type that is not *.mac (node_machinetype)",
                                  code="MacInstance")
        arch = "arm64" if "arm64" in archs and "x86_64" not in archs else "x86_64"
        key = (self.region, arch)
        if key not in self._images:
            self._images[key] = self._resolve_image(arch)
            self.resources.setdefault("images", {})[f"{self.region}/{arch}"] = self._images[key][0]
        return (*self._images[key], burstable)

    def _resolve_image(self, arch: str) -> tuple[str, str, int]:
        image = self.config.image[arch]
        if image.startswith("resolve:ssm:"):
            name = image[len("resolve:ssm:"):]
            image = self.call("get_parameter", service="ssm", Name=name)["Parameter"]["Value"]
        try:
            images = self.call("describe_images", ImageIds=[image])["Images"]
        except ProviderError as exc:
            if not getattr(exc, "code", "").startswith("InvalidAMIID"):
                raise
            images = []
        if not images:
            raise _region_refusal(f"image {image} ([aws] image.{arch}) does not exist in {self.region}",
                                  hint="an AMI id names an image of one region: choose that region, copy the image "
                                       "there, or use 'resolve:ssm:<parameter>' (the same image in every region)",
                                  code="InvalidAMIID.NotFound")
        root = images[0].get("RootDeviceName", "/dev/xvda")
        sizes = [m["Ebs"].get("VolumeSize", 0) for m in images[0].get("BlockDeviceMappings", [])
                 if m.get("DeviceName") == root and "Ebs" in m]
        return image, root, int(sizes[0]) if sizes and sizes[0] else 8

    def _check_placement(self, request: NodeRequest, spot: bool, burstable: bool, strategy: str) -> None:
        """What EC2 would refuse after the security group and key pair exist: refuse it first.  ``strategy``: the
        role's placement strategy (:meth:`_strategy`)."""
        instance_type = request.instance_type
        info = self._type_info(instance_type)
        if spot and "spot" not in info.get("SupportedUsageClasses", ["spot"]):
            raise _region_refusal(f"EC2 does not offer {instance_type} as spot in {self.region}",
                                  hint="deploy it on-demand (no spot), or choose another type", code="Unsupported")
        if not strategy:
            return
        if spot:
            raise ConfigError("spot instances that stop on interruption (how ccdsl requests them, so a spot "
                              "cluster can be interrupted and resumed) cannot be launched in a placement group",
                              hint="drop placement_group, or spot")
        if strategy == "cluster" and burstable:
            raise _region_refusal(f"{instance_type} is a burstable type: EC2 does not put it in a cluster "
                                  "placement group", hint=_BURSTABLE_HINT, code="Unsupported")
        supported = (info.get("PlacementGroupInfo") or {}).get("SupportedStrategies")
        if supported is not None and strategy not in supported:
            raise _region_refusal(f"EC2 does not put {instance_type} in a {strategy} placement group (it supports: "
                                  f"{', '.join(supported) or 'none'})",
                                  hint="choose another type, or another placement_group strategy", code="Unsupported")
        if strategy == "spread" and request.count > SPREAD_PER_ZONE:
            raise _region_refusal(f"{request.count} × {instance_type} ({request.role}) do not fit a spread placement "
                                  f"group: it holds at most {SPREAD_PER_ZONE} running instances per zone",
                                  hint="fewer nodes, or another placement_group strategy (partition)",
                                  code="SpreadLimit")

    # -- private nodes ([aws] private, jump_host) ---------------------------------------------------------------
    @property
    def _jump_auto(self) -> bool:
        """Whether one node of the cluster itself is the jump host: the manager, else PeerWorkers' node 0."""
        return self.config.private and self.config.jump_host == "auto"

    def _check_private(self, request: NodeRequest) -> None:
        """What private nodes need, refused before anything is created: a bastion's address admitted to port 22
        (``ssh_cidr``: this machine's public address is no use behind a bastion), a jump node that can take a
        public address (a single network interface), and, for nodes that download, a NAT route."""
        self._roles.add(request.role)
        bastion = bool(self.config.jump_host) and self.config.jump_host != "auto"
        if bastion and not self.config.ssh_cidr and not self.config.security_group_id:
            raise ConfigError(f"[aws] jump_host = {self.config.jump_host!r} reaches the nodes from the bastion, but "
                              "[aws] ssh_cidr is empty (ccdsl would admit this machine's public address to port 22, "
                              "not the bastion's)",
                              hint="set [aws] ssh_cidr to the address the nodes see the bastion from (its private "
                                   "address/32, or its subnet), or security_group_id to a group that admits it")
        if not self.config.private:
            return
        if self._jump_auto and self._is_jump_role(request) and self._fabric(request).interfaces > 1:
            raise ConfigError(f"{request.instance_type} ({request.role}) would be the jump host ([aws] jump_host = "
                              f"\"auto\") with {self._fabric(request).interfaces} EFA interfaces, but a node with a "
                              "public address takes a single network interface",
                              hint='use a bastion (jump_host = "user@host:port"), or [aws] efa = "auto"')
        needs = self._downloads(request)
        if needs and self._jump_auto:
            raise ConfigError(f"private nodes that download ({needs}) need a subnet routed through a NAT gateway, "
                              "where the public address of the \"auto\" jump host, launched in the same subnet, "
                              "would not answer (its replies would leave through the NAT gateway)",
                              hint='use a bastion (jump_host = "user@host:port") in a public subnet, or an image '
                                   "with mpich, mpi4py and cloudpickle ([mpi] install = false); for EFA, "
                                   '[aws] efa = "off" (or the contract\'s efa => false); for the shared folder, '
                                   '[aws] shared = "none"')
        if needs:
            for subnet in self._private_subnets():
                self._check_nat(subnet, needs)

    def _is_jump_role(self, request: NodeRequest) -> bool:
        """Whether ``request`` holds the "auto" jump host: the manager, or the workers when there is none."""
        return request.role == "manager" or "manager" not in self._roles

    def _downloads(self, request: NodeRequest) -> str:
        """What makes ``request``'s new nodes download from the internet (empty: nothing): ``[mpi] install`` (apt
        and pip), EFA (the EFA installer, :mod:`efa_boot`), ``[aws] shared`` (the NFS packages)."""
        needs = ["[mpi] install = true (apt-get and pip on every new node)"] if self.install else []
        if self._efa_software(request):
            needs.append(f"EFA on {request.instance_type} (the EFA installer, {efa_boot.INSTALLER_URL})")
        return ", ".join(needs + shared_fs.downloads(self.config.shared))

    def _efa_software(self, request: NodeRequest) -> bool:
        """Whether ``request``'s nodes get the EFA software (:mod:`efa_boot`): they use EFA, or another role of the
        cluster does (the manager, where mpirun runs, needs Open MPI built for it)."""
        return self._fabric(request).on or bool(self.resources.get("efa_interfaces"))

    def _private_subnets(self) -> list[str]:
        """The subnets private nodes may be launched in: ``[aws] subnet_id``, else the default subnets (of
        ``[aws] zones`` when given)."""
        if self.config.subnet_id:
            return [self.config.subnet_id]
        filters = [{"Name": "default-for-az", "Values": ["true"]}]
        if self.config.zones:
            filters.append({"Name": "availability-zone", "Values": list(self.config.zones)})
        return sorted(s["SubnetId"] for s in self._paginate("describe_subnets", "Subnets", Filters=filters))

    def _check_nat(self, subnet: str, needs: str) -> None:
        """Refuse ``subnet`` unless its route table (its own, else its VPC's main one) sends 0.0.0.0/0 to a NAT
        gateway: a node without a public address reaches the internet only so (VPC UG "NAT gateways")."""
        if subnet in self._nat_checked:
            return
        tables = self.call("describe_route_tables", Filters=[
            {"Name": "association.subnet-id", "Values": [subnet]}])["RouteTables"]
        if not tables:
            vpc = self.call("describe_subnets", SubnetIds=[subnet])["Subnets"][0]["VpcId"]
            tables = self.call("describe_route_tables", Filters=[
                {"Name": "vpc-id", "Values": [vpc]}, {"Name": "association.main", "Values": ["true"]}])["RouteTables"]
        routes = [r for t in tables for r in t.get("Routes", []) if r.get("DestinationCidrBlock") == "0.0.0.0/0"]
        if not any(r.get("NatGatewayId") and r.get("State", "active") == "active" for r in routes):
            instead = next((v for r in routes for k, v in r.items() if k.endswith("Id")), "")
            raise ConfigError(f"private nodes in subnet {subnet} cannot download: its route table sends 0.0.0.0/0 "
                              + (f"to {instead}, not to a NAT gateway" if instead else "nowhere") + f", and {needs}",
                              hint="set [aws] subnet_id to a private subnet whose route table sends 0.0.0.0/0 to a "
                                   "NAT gateway, or use an image with MPI installed ([mpi] install = false); for EFA, "
                                   '[aws] efa = "off" (or the contract\'s efa => false); for the shared folder, '
                                   '[aws] shared = "none"')
        self._nat_checked.add(subnet)

    def _launch_private(self, request: NodeRequest, params: dict[str, Any],
                        contract: str | None) -> list[dict[str, Any]] | None:
        """RunInstances for a role of private nodes when one of them is the jump host (``jump_host = "auto"``);
        None: the one launch as built (every node private).  The manager is launched with a public address; a
        PeerWorkers cluster has node 0 launched alone with one, then the other nodes (indices from 1, tagged so)."""
        if not self._jump_auto or not self._is_jump_role(request):
            return None
        jump = self._as_jump(params, request.handle, contract)
        if request.role == "manager" or request.count == 1:
            jump["ClientToken"] = client_token(request.handle, jump, self._launch_round)
            return list(self._run_instances(jump)["Instances"])
        jump.update(MinCount=1, MaxCount=1)
        jump["ClientToken"] = client_token(request.handle, jump, self._launch_round)
        first = list(self._run_instances(jump)["Instances"])
        offset = {"Key": TAG_FIRST_INDEX, "Value": "1"}
        rest = {**params, "MinCount": request.count - 1, "MaxCount": request.count - 1, "TagSpecifications": [
            {**t, "Tags": [*t["Tags"], offset]} if t["ResourceType"] == "instance" else t
            for t in params["TagSpecifications"]]}
        rest["ClientToken"] = client_token(request.handle, rest, self._launch_round)
        try:
            others = self._run_instances(rest)["Instances"]
        except ProviderError:  # node 0 alone is no cluster: the next zone launches both again
            self._act_on_instances("terminate_instances", [i["InstanceId"] for i in first], request.handle)
            raise
        return [*first, *({**i, "Tags": [*(i.get("Tags") or []), offset]} for i in others)]

    def _as_jump(self, params: dict[str, Any], handle: str, contract: str | None) -> dict[str, Any]:
        """``params`` for the jump host: a public address on its one interface, and the jump group, the only one
        that admits SSH from ``ssh_cidr`` (the others admit the cluster's members only)."""
        groups = list(params["NetworkInterfaces"][0]["Groups"])
        if not self.config.security_group_id:
            groups.append(self._jump_group(handle, contract))
        first = {**params["NetworkInterfaces"][0], "Groups": groups, "AssociatePublicIpAddress": True}
        return {**params, "NetworkInterfaces": [first, *params["NetworkInterfaces"][1:]]}

    def _jump_group(self, handle: str, contract: str | None) -> str:
        """The security group of the "auto" jump host: SSH from ``ssh_cidr``; created once, tagged, deleted with
        the cluster's other groups."""
        if "jump_group_created" not in self.resources:
            cidr = self._ssh_cidr()
            group = self.call("create_security_group", GroupName=f"ccdsl-{handle}-jump",
                              VpcId=self.resources["vpc_id"], Description=f"ccdsl cluster {handle}: SSH from {cidr} "
                              "to the jump host", TagSpecifications=[{"ResourceType": "security-group",
                                                                      "Tags": self._tags(handle, None, contract)}]
                              )["GroupId"]
            self.resources["jump_group_created"] = group
            self._retry_not_visible(lambda: self.call("authorize_security_group_ingress", GroupId=group,
                                                      IpPermissions=[_ssh_rule(cidr)]))
        return str(self.resources["jump_group_created"])

    def _node(self, instance: Mapping[str, Any], role: str | None = None) -> Node:
        """A Node from an EC2 instance.  ``role``: what ccdsl asked for, when known -- whether RunInstances'
        answer carries the tags is not documented, so the tag is the fallback."""
        role = role or _tag(instance, TAG_ROLE) or "worker"
        index = int(instance.get("AmiLaunchIndex", 0)) + int(_tag(instance, TAG_FIRST_INDEX) or 0)
        public, private = instance.get("PublicIpAddress"), instance.get("PrivateIpAddress")
        # No silent fallback to the private address for 'public': from outside the VPC it never answers.
        address = public if self.config.connect_address == "public" else private
        port = 22
        mapped = self.config.address_map.get(f"{role}.{index}") or (
            self.config.address_map.get(str(index)) if role == "worker" else None)
        if mapped:
            where, _, inside = str(mapped).partition(",")
            address, port = split_host_port(where)
            private = inside.strip() or address
            if not public and self.config.connect_address == "public":
                address = None  # a private node: reached only through the jump host, as on EC2
        key = self.config.key_path or self.resources.get("key_path_created")
        extra = {"ec2_state": instance["State"]["Name"], "contract": _tag(instance, TAG_CONTRACT),
                 "spot_request": instance.get("SpotInstanceRequestId") or "",
                 "boot_wait": self.config.boot_wait,  # ssh.wait_ready runs it before the probe
                 "public_ip": public or "", "private_ip": instance.get("PrivateIpAddress") or "",
                 # [aws] shared: what the nodes share, made when they are made ready (shared_fs.prepare)
                 "shared": "" if self.config.shared == "none" else self.config.shared,
                 "shared_dir": self.config.shared_dir,
                 "reason": instance.get("StateReason", {}).get("Message", "")}
        fabrics = self.resources.get("efa_interfaces") or {}
        if fabrics:  # a cluster with EFA: every node has its software, and MPI runs under Open MPI's mpirun
            extra["fabric"] = "efa"
        if fabrics.get(role):  # the EFA interfaces the node was launched with: fi_info must list as many devices
            extra["efa"] = int(fabrics[role])
        return Node(index=index, role=role, instance_id=instance["InstanceId"],
                    instance_type=instance["InstanceType"], state=_STATES.get(instance["State"]["Name"], model.FAILED),
                    address=address, private_address=private, port=port, user=self.config.user,
                    key_path=str(key) if key else None, zone=instance.get("Placement", {}).get("AvailabilityZone"),
                    extra=extra)


def efa_interfaces(count: int, group: str, subnet: str | None, *, public: bool) -> list[dict[str, Any]]:
    """RunInstances' ``NetworkInterfaces`` for ``count`` EFA interfaces, all in ``group`` and one subnet.  One: an
    ``efa`` interface (IP and EFA) on card 0, with a public address when ``public``.  More (private nodes only: a
    public address needs a single interface): an ``interface`` (IP) at card 0 device 0, then ``efa-only`` at card 0
    device 1 and device 0 of each further card, ``count`` of them (EC2 UG "Maximize network bandwidth on Amazon EC2
    instances with multiple network cards": 33 entries for a p5.48xlarge)."""
    def entry(card: int, device: int, kind: str) -> dict[str, Any]:
        e: dict[str, Any] = {"NetworkCardIndex": card, "DeviceIndex": device, "InterfaceType": kind,
                             "Groups": [group], "DeleteOnTermination": True}
        if subnet:
            e["SubnetId"] = subnet
        return e

    if count <= 1:
        return [{**entry(0, 0, "efa"), "AssociatePublicIpAddress": public}]
    return [entry(0, 0, "interface"), entry(0, 1, "efa-only"), *(entry(i, 0, "efa-only") for i in range(1, count))]


def instance_profile(value: str) -> dict[str, str]:
    """RunInstances' ``IamInstanceProfile`` for ``[aws] instance_profile``: ``{"Arn": …}`` for an ARN, else
    ``{"Name": …}`` (API ``IamInstanceProfileSpecification``)."""
    return {"Arn": value} if value.startswith("arn:") else {"Name": value}


def private_interface(group: str, subnet: str | None, *, public: bool) -> list[dict[str, Any]]:
    """RunInstances' ``NetworkInterfaces`` for a node of ``[aws] private`` without EFA: one interface, in
    ``group`` and ``subnet``, a public address only when ``public`` (the "auto" jump host)."""
    entry: dict[str, Any] = {"DeviceIndex": 0, "Groups": [group], "DeleteOnTermination": True,
                             "AssociatePublicIpAddress": public}
    if subnet:
        entry["SubnetId"] = subnet
    return [entry]


def _ssh_rule(cidr: str) -> dict[str, Any]:
    """The ingress rule that admits SSH from ``cidr`` (IPv4 or IPv6)."""
    v6 = ":" in cidr
    return {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
            "Ipv6Ranges" if v6 else "IpRanges": [{"CidrIpv6" if v6 else "CidrIp": cidr, "Description": "ccdsl: SSH"}]}


def _region_refusal(message: str, *, hint: str, code: str) -> CapacityError:
    """A CapacityError that no other zone of the region can help with: the deployer goes on to the next plan."""
    e = CapacityError(message, hint=hint)
    e.code = code  # type: ignore[attr-defined]
    e.scope = "region"  # type: ignore[attr-defined]
    return e


def _no_retry_when_final(response: Any = None, **_: Any) -> bool | None:
    """botocore ``needs-retry`` handler: False (do not retry) for a capacity or quota answer; None leaves the
    decision to botocore's own retry handler (throttling, connection errors)."""
    if not response:
        return None
    code = (response[1] or {}).get("Error", {}).get("Code", "")
    return False if code in CAPACITY_CODES or code in QUOTA_CODES else None


def chunks(items: Sequence[str], size: int = CHUNK) -> list[list[str]]:
    """``items`` in lists of at most ``size`` (EC2's limit on filter values; id lists are sent the same way)."""
    return [list(items[i:i + size]) for i in range(0, len(items), size)]


def _tag(resource: Mapping[str, Any], key: str) -> str:
    for t in resource.get("Tags", []) or []:
        if t["Key"] == key:
            value: str = t["Value"]
            return value
    return ""


def openssh_private_key(material: str) -> str:
    """The key pair's private key in OpenSSH format, which paramiko needs for ed25519.  AWS is known to return that
    format; should it return PKCS#8 PEM instead, convert it (``cryptography`` comes with paramiko)."""
    if "BEGIN OPENSSH PRIVATE KEY" in material:
        return material
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(material.encode(), password=None)
    except (ValueError, TypeError):
        return material  # not a PEM key either: write it as it came; loading it will name the problem
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                             serialization.NoEncryption()).decode()


def write_private(path: Path, text: str) -> None:
    """Write a secret atomically with mode 0600 from the first byte (temp file + rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
