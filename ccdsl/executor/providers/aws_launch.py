"""Launching a role of the ``aws`` provider: ONE ``RunInstances`` per role (MinCount = MaxCount = node count,
idempotency ``ClientToken`` from :mod:`.aws_journal`), IMDSv2 required, encrypted root volume, the role's network
interfaces, market (persistent spot requests that stop), CPU options, credits and user data; private nodes behind
an "auto" jump host launched with it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ccdsl.burstable import NO_CREDITS, credits
from ccdsl.errors import CcdslError, ConfigError, ProviderError
from ccdsl.executor import model
from ccdsl.executor.model import Node, NodeRequest, Progress
from ccdsl.executor.providers import shared_fs
from ccdsl.executor.providers.aws_api import Ec2
from ccdsl.executor.providers.aws_checks import PlanChecks
from ccdsl.executor.providers.aws_instances import TAG_FIRST_INDEX, Instances, node_of
from ccdsl.executor.providers.aws_journal import LaunchJournal
from ccdsl.executor.providers.aws_network import Network
from ccdsl.executor.providers.aws_private import jump_auto
from ccdsl.executor.providers.aws_types import is_spot, placement_strategy
from ccdsl.executor.providers.aws_user_data import user_data

if TYPE_CHECKING:
    import datetime

    from ccdsl.fabric import Fabric

SPOT_VALIDITY = 365 * 86400.0  # seconds a persistent spot request lives (ValidUntil); EC2's default is 7 days


class Launch:
    """RunInstances for one role at a time, after its checks and the cluster's shared resources."""

    def __init__(self, ec2: Ec2, instances: Instances, checks: PlanChecks, network: Network,
                 journal: LaunchJournal, *, install: bool) -> None:
        self.ec2 = ec2
        self.instances = instances
        self.config = ec2.config
        self.checks = checks
        self.facts = checks.facts
        self.private = checks.private
        self.network = network
        self.journal = journal
        self.install = install  # [mpi] install: new nodes get user data that installs what the venv needs

    def create(self, request: NodeRequest, progress: Progress) -> list[Node]:
        """ONE RunInstances for the role; returns the nodes as EC2 reported them (pending).  ``wait_running``
        follows.  ``request.options["zone"]`` pins the zone (the deployer's failover loop sets it)."""
        ec2, config = self.ec2, self.config
        ec2.set_region(request.region)
        contract = str(request.options.get("contract", "")) or None
        spot = is_spot(request, config)
        zone = request.options.get("zone")
        image, root_device, image_size, burstable = self.checks.check_request(request)  # before anything is made
        efa = self.facts.fabric(request)
        strategy = placement_strategy(config, spot, efa)
        self.network.prepare(request.handle, contract, efa=efa.on, placement=strategy)
        # role -> EFA interfaces per node, in the record: the nodes carry it (extra["efa"]) for the deploy's
        # fi_info check and the launcher's choice of Open MPI's mpirun, also when found again by their tags
        fabrics = ec2.resources.setdefault("efa_interfaces", {})
        if efa.on:
            fabrics[request.role] = efa.interfaces
        else:
            fabrics.pop(request.role, None)
        group = config.security_group_id or ec2.resources["security_group_id_created"]
        tags = ec2.tags(request.handle, request.role, contract)
        params: dict[str, Any] = {
            "ImageId": image, "InstanceType": request.instance_type,
            "MinCount": request.count, "MaxCount": request.count,
            "KeyName": config.key_name or ec2.resources["key_name_created"],
            "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled"},
            "BlockDeviceMappings": [{"DeviceName": root_device, "Ebs": {
                "Encrypted": True, "DeleteOnTermination": True, "VolumeType": config.volume_type,
                "VolumeSize": max(config.volume_size, image_size)}}],
            "TagSpecifications": [{"ResourceType": "instance", "Tags": tags},
                                  {"ResourceType": "volume", "Tags": ec2.tags(request.handle, request.role, contract)}],
        }
        params.update(self.network_params(zone, strategy, efa, group))
        params.update(self.role_params(request, contract, zone, burstable))
        if spot:
            # persistent + stop: a spot cluster can still be interrupted (stopped) and resumed.  Its spot requests
            # are tagged too: terminate cancels them first, or EC2 would launch new instances for them.
            params["InstanceMarketOptions"] = {"MarketType": "spot", "SpotOptions": {
                "SpotInstanceType": "persistent", "InstanceInterruptionBehavior": "stop",
                "ValidUntil": self.spot_valid_until()}}
            params["TagSpecifications"].append({"ResourceType": "spot-instances-request",
                                                "Tags": ec2.tags(request.handle, request.role, contract)})
        try:
            instances = self.launch_private(request, params, contract) if config.private else None
            if instances is None:
                params["ClientToken"] = self.journal.token(request.handle, params)
                instances = self.journal.run_instances(params)["Instances"]
        except ProviderError as exc:
            raise self.profile_error(exc) from None
        nodes = sorted((node_of(i, config, ec2.resources, request.role) for i in instances), key=lambda n: n.index)
        if strategy == "cluster" and nodes and nodes[0].zone:
            ec2.resources["placement_zone"] = nodes[0].zone
        for n in nodes:
            progress(n.role, n.index, model.REQUESTED)
        return nodes

    def role_params(self, request: NodeRequest, contract: str | None, zone: object,
                    burstable: bool) -> dict[str, Any]:
        """RunInstances' parameters that follow from the role and the configuration: CPU options, instance profile,
        user data, CPU credits and the shutdown behaviour (a user data for ``[aws] scratch`` warns about a type
        without instance storage)."""
        config = self.config
        params: dict[str, Any] = {}
        cpu = self.facts.cpu_options(request)
        if cpu:
            params["CpuOptions"] = cpu
        if config.instance_profile:
            params["IamInstanceProfile"] = instance_profile(config.instance_profile)
        data = user_data(self.install, config.scratch, self.shared_runcmd(request.handle, contract, zone),
                         efa=self.facts.efa_software(request))
        if data:
            params["UserData"] = data  # boto3 base64-encodes it
        if config.scratch:
            self.facts.check_scratch(request.instance_type)
        if (burstable or credits(request.instance_type) is not None) and request.instance_type not in NO_CREDITS:
            # T2/T3/T3a/T4g: standard unless [aws] cpu_credits says unlimited (T3 and newer default to unlimited,
            # which bills sustained load above the baseline: ccdsl.burstable)
            params["CreditSpecification"] = {"CpuCredits": config.cpu_credits}
        if request.options.get("shutdown_behavior"):  # autostop: the watchdog's shutdown stops or terminates
            params["InstanceInitiatedShutdownBehavior"] = str(request.options["shutdown_behavior"])
        return params

    def network_params(self, zone: object, strategy: str, efa: Fabric, group: str) -> dict[str, Any]:
        """RunInstances' placement and network parameters: the zone and placement group, then either network
        interfaces (EFA, private nodes) or the top-level group and subnet, never both."""
        params: dict[str, Any] = {}
        placement: dict[str, str] = {}
        if zone:
            placement["AvailabilityZone"] = str(zone)
        if strategy:
            placement["GroupName"] = self.ec2.resources["placement_group_created"]
        if placement:
            params["Placement"] = placement
        if efa.on:  # EC2 refuses top-level groups and subnet beside NetworkInterfaces (InvalidParameterCombination)
            params["NetworkInterfaces"] = efa_interfaces(efa.interfaces, group, self.network.subnet_for(zone),
                                                         public=not self.config.private)
        elif self.config.private:
            params["NetworkInterfaces"] = private_interface(group, self.network.subnet_for(zone), public=False)
        else:
            params["SecurityGroupIds"] = [group]
            if self.config.subnet_id:
                params["SubnetId"] = self.config.subnet_id
        return params

    def shared_runcmd(self, handle: str, contract: str | None, zone: object) -> list[list[str]]:
        """The user data of ``[aws] shared`` (:mod:`.shared_fs`): for ``efs`` the file system and its mount target
        are created first (once per cluster, in the subnet of the first role's zone), since the nodes mount it."""
        if self.config.shared == "efs":
            address = shared_fs.ensure_efs(self.ec2, handle, contract, self.network.subnet_for(zone))
            return shared_fs.runcmd("efs", self.config.shared_dir, address)
        return shared_fs.runcmd(self.config.shared, self.config.shared_dir)

    def profile_error(self, exc: ProviderError) -> CcdslError:
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

    def spot_valid_until(self) -> datetime.datetime:
        """When the cluster's persistent spot requests end: a year from the first spot launch, recorded (one date
        for every role and retry, so a re-sent RunInstances keeps its token).  AWS's default is 7 days: then EC2
        cancels the request, a stopped instance is terminated and a running one can no longer stop."""
        import datetime

        at = float(self.ec2.resources.setdefault("spot_valid_until", round(time.time()) + SPOT_VALIDITY))
        return datetime.datetime.fromtimestamp(at, datetime.timezone.utc)

    def launch_private(self, request: NodeRequest, params: dict[str, Any],
                       contract: str | None) -> list[dict[str, Any]] | None:
        """RunInstances for a role of private nodes when one of them is the jump host (``jump_host = "auto"``);
        None: the one launch as built (every node private).  The manager is launched with a public address; a
        PeerWorkers cluster has node 0 launched alone with one, then the other nodes (indices from 1, tagged so)."""
        if not jump_auto(self.config) or not self.private.is_jump_role(request):
            return None
        journal = self.journal
        jump = self.as_jump(params, request.handle, contract)
        if request.role == "manager" or request.count == 1:
            jump["ClientToken"] = journal.token(request.handle, jump)
            return list(journal.run_instances(jump)["Instances"])
        jump.update(MinCount=1, MaxCount=1)
        jump["ClientToken"] = journal.token(request.handle, jump)
        first = list(journal.run_instances(jump)["Instances"])
        offset = {"Key": TAG_FIRST_INDEX, "Value": "1"}
        rest = {**params, "MinCount": request.count - 1, "MaxCount": request.count - 1, "TagSpecifications": [
            {**t, "Tags": [*t["Tags"], offset]} if t["ResourceType"] == "instance" else t
            for t in params["TagSpecifications"]]}
        rest["ClientToken"] = journal.token(request.handle, rest)
        try:
            others = journal.run_instances(rest)["Instances"]
        except ProviderError:  # node 0 alone is no cluster: the next zone launches both again
            self.instances.act_on_instances("terminate_instances", [i["InstanceId"] for i in first], request.handle)
            raise
        return [*first, *({**i, "Tags": [*(i.get("Tags") or []), offset]} for i in others)]

    def as_jump(self, params: dict[str, Any], handle: str, contract: str | None) -> dict[str, Any]:
        """``params`` for the jump host: a public address on its one interface, and the jump group, the only one
        that admits SSH from ``ssh_cidr`` (the others admit the cluster's members only)."""
        groups = list(params["NetworkInterfaces"][0]["Groups"])
        if not self.config.security_group_id:
            groups.append(self.network.jump_group(handle, contract))
        first = {**params["NetworkInterfaces"][0], "Groups": groups, "AssociatePublicIpAddress": True}
        return {**params, "NetworkInterfaces": [first, *params["NetworkInterfaces"][1:]]}


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
