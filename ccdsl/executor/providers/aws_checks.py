"""Everything EC2 would refuse about a plan, checked before anything of it is created: the region-bound settings
exist in the region, each role's image exists, its type and market fit the placement group, its CPU options can
be had, and private nodes get what they need (:mod:`.aws_private`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ccdsl.errors import ConfigError, ProviderError
from ccdsl.executor.model import NodeRequest
from ccdsl.executor.providers.aws_api import Ec2, region_refusal
from ccdsl.executor.providers.aws_private import PrivateChecks
from ccdsl.executor.providers.aws_types import TypeFacts, is_spot, placement_strategy

# A (rack) spread placement group holds at most seven running instances per zone (UG "Placement groups").
SPREAD_PER_ZONE = 7
# Instance types that earn CPU credits: a cluster placement group cannot hold them.
_BURSTABLE_HINT = "use a type that is not burstable (not t2/t3/t3a/t4g), or another placement_group strategy"


class PlanChecks:
    """The checks of a plan and of each of its roles; region-bound settings are checked once per region."""

    def __init__(self, ec2: Ec2, facts: TypeFacts, private: PrivateChecks) -> None:
        self.ec2 = ec2
        self.config = ec2.config
        self.facts = facts
        self.private = private
        self.checked_regions: set[str | None] = set()  # regions whose region-bound settings exist

    def check_plan(self, requests: Sequence[NodeRequest]) -> None:
        """Everything EC2 would refuse about a whole plan, checked before ANY role is created (an on-demand manager
        must not launch when the spot workers are then refused): the region-bound settings exist in the region,
        and each role's type and market fit the placement group.  A type or region that does not fit is a
        region-scope CapacityError (the deployer tries the next plan); settings that contradict each other are a
        ConfigError."""
        self.private.roles = {r.role for r in requests}  # whether a manager is the jump host (jump_host = "auto")
        # known before the first role is created: a manager launched before EFA workers gets the EFA software too
        # (Open MPI's mpirun runs there), though no EFA device
        fabrics: dict[str, int] = {}
        for request in requests:
            self.ec2.set_region(request.region)
            self.check_region_settings()  # its refusal first, as check_request says it
            if (fabric := self.facts.fabric(request)).on:
                fabrics[request.role] = fabric.interfaces
        self.ec2.resources["efa_interfaces"] = fabrics
        for request in requests:
            self.check_request(request)

    def check_request(self, request: NodeRequest) -> tuple[str, str, int, bool]:
        """The checks of :meth:`check_plan` for one role; returns its image (as :meth:`.TypeFacts.image_for`)."""
        self.ec2.set_region(request.region)
        self.check_region_settings()
        image = self.facts.image_for(request.instance_type)
        spot = is_spot(request, self.config)
        efa = self.facts.fabric(request)
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
        self.check_placement(request, spot, image[3], placement_strategy(self.config, spot, efa))
        self.facts.cpu_options(request)
        self.private.check(request)
        return image

    def check_region_settings(self) -> None:
        """``[aws] subnet_id``, ``security_group_id`` and ``key_name`` name resources of ONE region: elsewhere they
        do not exist, and that region cannot be used (an id does not say which region it belongs to).  Once per
        region."""
        region = self.ec2.region
        if region in self.checked_regions:
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
                found = self.ec2.call(operation, **params).get(answer_key, [])
            except ProviderError as exc:
                code = getattr(exc, "code", "")
                if not code.endswith((".NotFound", ".Malformed")):
                    raise
                found = []
            if not found:
                instead = "the region's default VPC" if key == "subnet_id" else "one ccdsl creates per cluster"
                raise region_refusal(f"[aws] {key} = {value!r} does not exist in {self.ec2.region}",
                                     hint=f"{key} names a resource of one region: choose that region, or leave "
                                          f"{key} empty for {instead}", code="RegionBound")
        self.checked_regions.add(self.ec2.region)

    def check_placement(self, request: NodeRequest, spot: bool, burstable: bool, strategy: str) -> None:
        """What EC2 would refuse after the security group and key pair exist: refuse it first.  ``strategy``: the
        role's placement strategy (:func:`.placement_strategy`)."""
        instance_type = request.instance_type
        info = self.facts.type_info(instance_type)
        if spot and "spot" not in info.get("SupportedUsageClasses", ["spot"]):
            raise region_refusal(f"EC2 does not offer {instance_type} as spot in {self.ec2.region}",
                                 hint="deploy it on-demand (no spot), or choose another type", code="Unsupported")
        if not strategy:
            return
        if spot:
            raise ConfigError("spot instances that stop on interruption (how ccdsl requests them, so a spot "
                              "cluster can be interrupted and resumed) cannot be launched in a placement group",
                              hint="drop placement_group, or spot")
        if strategy == "cluster" and burstable:
            raise region_refusal(f"{instance_type} is a burstable type: EC2 does not put it in a cluster "
                                 "placement group", hint=_BURSTABLE_HINT, code="Unsupported")
        supported = (info.get("PlacementGroupInfo") or {}).get("SupportedStrategies")
        if supported is not None and strategy not in supported:
            raise region_refusal(f"EC2 does not put {instance_type} in a {strategy} placement group (it supports: "
                                 f"{', '.join(supported) or 'none'})",
                                 hint="choose another type, or another placement_group strategy", code="Unsupported")
        if strategy == "spread" and request.count > SPREAD_PER_ZONE:
            raise region_refusal(f"{request.count} × {instance_type} ({request.role}) do not fit a spread placement "
                                 f"group: it holds at most {SPREAD_PER_ZONE} running instances per zone",
                                 hint="fewer nodes, or another placement_group strategy (partition)",
                                 code="SpreadLimit")
